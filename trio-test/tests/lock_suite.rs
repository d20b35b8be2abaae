//! `check_lock_like` catches broken primitives: three locks, each with one flaw a real
//! primitive could have, each failing the check that names the flaw.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use common::run;
use trio::lowlevel::{ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled};
use trio::{Error, Result, WouldBlock};
use trio_test::{LockLike, check_lock_like};

#[derive(Clone, Copy, Debug)]
enum Flaw {
    /// Takes a free lock without a checkpoint.
    NoCheckpointWhenFree,
    /// Release frees the lock and wakes a waiter, who must try again: the releaser can take
    /// the lock back first (no hand-off).
    Barging,
    /// Hands off, but a waiter's future dropped after the hand-off keeps the lock forever.
    LosesHandOffOnDrop,
}

/// A lock built on a flag and a `ParkingLot`, with one flaw.
#[derive(Clone)]
struct FlawedLock {
    flaw: Flaw,
    held: Rc<Cell<bool>>,
    lot: ParkingLot,
}

impl FlawedLock {
    fn new(flaw: Flaw) -> Self {
        FlawedLock {
            flaw,
            held: Rc::default(),
            lot: ParkingLot::new(),
        }
    }

    async fn take(&self) -> Result<()> {
        match self.flaw {
            Flaw::NoCheckpointWhenFree => {
                if !self.held.replace(true) {
                    return Ok(());
                }
                self.lot.park().await
            }
            Flaw::Barging => {
                checkpoint_if_cancelled().await?;
                while self.held.get() {
                    self.lot.park().await?;
                }
                self.held.set(true);
                cancel_shielded_checkpoint().await;
                Ok(())
            }
            Flaw::LosesHandOffOnDrop => {
                checkpoint_if_cancelled().await?;
                if self.held.replace(true) {
                    // Ok: the releaser handed the lock over (it stays held).
                    return self.lot.park().await;
                }
                cancel_shielded_checkpoint().await;
                Ok(())
            }
        }
    }
}

struct FlawedGuard(FlawedLock);

impl Drop for FlawedGuard {
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

impl LockLike for FlawedLock {
    type Guard = FlawedGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        self.take()
    }

    async fn acquire_guard(&self) -> Result<FlawedGuard> {
        self.take().await?;
        Ok(FlawedGuard(self.clone()))
    }

    fn try_acquire(&self) -> Result<()> {
        if self.held.get() || !self.lot.is_empty() {
            return Err(Error::new(WouldBlock));
        }
        self.held.set(true);
        Ok(())
    }

    fn release(&self) -> Result<()> {
        match self.flaw {
            Flaw::Barging => {
                self.held.set(false);
                self.lot.unpark_one();
            }
            _ => {
                if self.lot.unpark_one().is_none() {
                    self.held.set(false);
                }
            }
        }
        Ok(())
    }

    fn locked(&self) -> bool {
        self.held.get()
    }

    fn tasks_waiting(&self) -> usize {
        self.lot.len()
    }
}

fn check(flaw: Flaw) {
    run(async move { check_lock_like(move || FlawedLock::new(flaw)).await });
}

#[test]
#[should_panic(
    expected = "FlawedLock: checkpoints: acquire on a free lock returned Ok without a cancel point and a schedule point"
)]
fn a_lock_that_does_not_checkpoint_when_free_fails() {
    check(Flaw::NoCheckpointWhenFree);
}

#[test]
#[should_panic(
    expected = "FlawedLock: fair turns: tasks looping over the lock must take strict turns"
)]
fn a_lock_that_lets_the_releaser_barge_back_in_fails() {
    check(Flaw::Barging);
}

#[test]
#[should_panic(
    expected = "FlawedLock: dropped after hand-off: an acquire dropped after the lock was handed to it must pass it to the next waiter"
)]
fn a_lock_that_loses_a_hand_off_to_a_dropped_waiter_fails() {
    check(Flaw::LosesHandOffOnDrop);
}

/// The flaws are all that is wrong: a lock with none passes (the suite's own control).
#[test]
fn trios_lock_passes() {
    run(async { check_lock_like(trio::Lock::new).await });
}
