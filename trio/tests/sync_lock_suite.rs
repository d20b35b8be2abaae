//! Every lock-like primitive runs the one lock suite (`trio_test::check_lock_like`, Trio's
//! generic lock tests and more): a new primitive gets it with one line here. What is
//! particular to a primitive stays in its own file (sync_lock.rs, sync_semaphore.rs, ...).

mod common;

use std::future::Future;

use common::run;
use trio::{
    CapacityLimiter, Condition, Lock, MemoryReceiveChannel, MemorySendChannel, Result, Semaphore,
    StrictFIFOLock,
};
use trio_test::{LockLike, check_lock_like};

#[test]
fn lock() {
    run(check_lock_like(Lock::new));
}

#[test]
fn strict_fifo_lock() {
    run(check_lock_like(StrictFIFOLock::new));
}

#[test]
fn semaphore_with_one_token() {
    run(check_lock_like(|| Semaphore::new(1)));
}

#[test]
fn bounded_semaphore_with_one_token() {
    run(check_lock_like(|| Semaphore::with_max(1, 1).unwrap()));
}

#[test]
fn capacity_limiter_with_one_token() {
    run(check_lock_like(|| CapacityLimiter::new(1)));
}

#[test]
fn condition_lock() {
    run(check_lock_like(Condition::new));
}

#[test]
fn channel_lock_receiving_a_token() {
    run(check_lock_like(|| TokenChannelLock::new(10)));
}

/// Trio's `ChannelLock2`: the lock is a token in a channel's buffer; `acquire` receives it,
/// `release` puts it back (straight into the oldest waiting receiver).
///
/// Trio's `ChannelLock1` (acquire sends into the one free slot of a buffer, release empties a
/// slot) is not lock-like here: a `send` dropped after its value went into the buffer has sent
/// it, as a channel must (the value is not lost), so the "lock" stays taken by a future that
/// is gone. Python has no dropped futures, and Trio's suite has no such check.
#[derive(Clone)]
struct TokenChannelLock {
    tx: MemorySendChannel<()>,
    rx: MemoryReceiveChannel<()>,
}

impl TokenChannelLock {
    fn new(capacity: usize) -> Self {
        let (tx, rx) = trio::open_memory_channel(capacity);
        tx.try_send(()).expect("room for the token");
        TokenChannelLock { tx, rx }
    }
}

/// Releases a channel lock when dropped.
struct ChannelGuard<L: LockLike>(L);

impl<L: LockLike> Drop for ChannelGuard<L> {
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

impl LockLike for TokenChannelLock {
    type Guard = ChannelGuard<Self>;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        self.rx.receive()
    }

    async fn acquire_guard(&self) -> Result<Self::Guard> {
        self.rx.receive().await?;
        Ok(ChannelGuard(self.clone()))
    }

    fn try_acquire(&self) -> Result<()> {
        self.rx.try_receive()
    }

    fn release(&self) -> Result<()> {
        Ok(self.tx.try_send(())?)
    }

    fn locked(&self) -> bool {
        self.rx.statistics().current_buffer_used == 0
    }

    fn tasks_waiting(&self) -> usize {
        self.rx.statistics().tasks_waiting_receive
    }
}
