//! [`Semaphore`]: a counter of tokens, with fair FIFO hand-off.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;

use super::usage;
use crate::lowlevel::{
    DescribeWait, Park, ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled,
};
use crate::{Error, Result, WouldBlock};

struct SemCore {
    value: Cell<usize>,
    max: Option<usize>,
    lot: ParkingLot,
}

impl SemCore {
    fn try_take(&self) -> Result<()> {
        match self.value.get() {
            0 => Err(Error::new(WouldBlock)),
            n => {
                self.value.set(n - 1);
                Ok(())
            }
        }
    }

    /// Returns a token: to the oldest waiter if there is one, else to the counter.
    fn give_back(&self) {
        if self.lot.unpark_one().is_none() {
            self.value.set(self.value.get() + 1);
        }
    }

    fn release(&self) -> Result<()> {
        // A waiter takes the token straight from the releaser (the value stays 0), so
        // `max_value` bounds only tokens that go back into the semaphore (Trio's order).
        if self.lot.unpark_one().is_some() {
            return Ok(());
        }
        if self.max == Some(self.value.get()) {
            return Err(usage(format!(
                "Semaphore released too many times (its max_value is {})",
                self.value.get()
            )));
        }
        self.value.set(self.value.get() + 1);
        Ok(())
    }

    async fn acquire(&self) -> Result<()> {
        checkpoint_if_cancelled().await?;
        if self.try_take().is_ok() {
            let mut undo = Undo {
                core: self,
                park: None,
                owned: true,
            };
            cancel_shielded_checkpoint().await;
            undo.owned = false;
            return Ok(());
        }
        let park = std::pin::pin!(self.lot.park());
        let mut wait = Undo {
            core: self,
            park: Some(park),
            owned: false,
        };
        let parked = match wait.park.as_mut() {
            Some(park) => park.as_mut().await,
            None => unreachable!("the park was just set"),
        };
        // Ok: the releaser handed its token to this task.
        wait.park = None;
        parked
    }
}

/// Gives the token back when an acquire that got one is dropped before returning it.
impl DescribeWait for SemCore {
    /// "value 0 (max 2); 3 waiting".
    fn describe_wait(&self) -> String {
        let max = match self.max {
            Some(max) => format!(" (max {max})"),
            None => String::new(),
        };
        format!(
            "value {}{max}; {} waiting",
            self.value.get(),
            self.lot.len()
        )
    }
}

struct Undo<'a, 'p> {
    core: &'a SemCore,
    park: Option<Pin<&'p mut Park>>,
    owned: bool,
}

impl Drop for Undo<'_, '_> {
    fn drop(&mut self) {
        if self.owned || self.park.as_ref().is_some_and(|park| park.is_unparked()) {
            self.core.give_back();
        }
    }
}

/// Statistics of a [`Semaphore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemaphoreStatistics {
    /// Tasks waiting in [`Semaphore::acquire`].
    pub tasks_waiting: usize,
}

/// A semaphore: a counter of tokens that [`acquire`](Self::acquire) takes (waiting while it
/// is 0) and [`release`](Self::release) gives back, optionally bounded by a `max_value`.
///
/// Unlike a [`CapacityLimiter`](super::CapacityLimiter), tokens are anonymous: any task may
/// release. A release hands its token straight to the oldest waiter (fair FIFO). Clones are
/// handles to the same semaphore.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let sem = trio::Semaphore::with_max(1, 1)?;
///     sem.acquire().await?;
///     assert_eq!(sem.value(), 0);
///     assert!(sem.try_acquire().is_err()); // WouldBlock
///     sem.release()?;
///     assert!(sem.release().is_err()); // over max_value
///     let _token = sem.acquire_guard().await?; // released on drop
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Rc<SemCore>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("max_value", &self.max_value())
            .field("tasks_waiting", &self.core.lot.len())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `initial` tokens and no maximum.
    pub fn new(initial: usize) -> Self {
        Self::build(initial, None)
    }

    fn build(initial: usize, max: Option<usize>) -> Self {
        let core = Rc::new(SemCore {
            value: Cell::new(initial),
            max,
            lot: ParkingLot::with_label("Semaphore::acquire"),
        });
        core.lot.set_describer(&core);
        Semaphore { core }
    }

    /// A semaphore with `initial` tokens whose value may never exceed `max_value` (releasing
    /// past it is an error). `initial > max_value` is a [`UsageError`](crate::UsageError).
    pub fn with_max(initial: usize, max_value: usize) -> Result<Self> {
        if initial > max_value {
            return Err(usage(format!(
                "Semaphore initial value {initial} is over its max_value {max_value}"
            )));
        }
        Ok(Self::build(initial, Some(max_value)))
    }

    /// Tokens available now.
    pub fn value(&self) -> usize {
        self.core.value.get()
    }

    /// The maximum value, if one was given.
    pub fn max_value(&self) -> Option<usize> {
        self.core.max
    }

    /// Takes a token, waiting for one if the value is 0.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when a token was free.
    ///
    /// # Cancel safety
    /// Safe. Cancelled or dropped while waiting, nothing was taken. If a token was handed
    /// over just before the cancellation, `acquire` returns `Ok`; if the future is dropped
    /// instead, the token passes on to the next waiter (or back to the counter).
    pub async fn acquire(&self) -> Result<()> {
        self.core.acquire().await
    }

    /// Takes a token if one is free; [`WouldBlock`] otherwise. Not a checkpoint.
    pub fn try_acquire(&self) -> Result<()> {
        self.core.try_take()
    }

    /// Gives a token back (to the oldest waiter, if any). Fails with a
    /// [`UsageError`](crate::UsageError) if no task waits and the value is already at
    /// `max_value`. Not a checkpoint.
    pub fn release(&self) -> Result<()> {
        self.core.release()
    }

    /// Takes a token and returns a guard that releases it when dropped.
    ///
    /// # Checkpoint
    /// Yes, as [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire): either no guard and no token, or a guard.
    pub async fn acquire_guard(&self) -> Result<SemaphoreGuard> {
        self.core.acquire().await?;
        Ok(SemaphoreGuard {
            core: self.core.clone(),
        })
    }

    /// [`try_acquire`](Self::try_acquire), returning a guard. Not a checkpoint.
    pub fn try_acquire_guard(&self) -> Result<SemaphoreGuard> {
        self.core.try_take()?;
        Ok(SemaphoreGuard {
            core: self.core.clone(),
        })
    }

    /// Trio's statistics: how many tasks wait.
    pub fn statistics(&self) -> SemaphoreStatistics {
        SemaphoreStatistics {
            tasks_waiting: self.core.lot.len(),
        }
    }
}

/// Holds one token of a [`Semaphore`] and releases it when dropped.
///
/// If the semaphore is already at its `max_value` when the guard drops (it was released too
/// many times another way), the extra release is ignored.
#[must_use = "the token is released as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    core: Rc<SemCore>,
}

impl std::fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        let _ = self.core.release();
    }
}
