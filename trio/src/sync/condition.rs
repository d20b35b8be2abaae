//! [`Condition`]: wait for a notification while holding a [`Lock`].

use std::pin::Pin;
use std::rc::Rc;

use super::lock::{Held, Kind, Lock, LockCore, LockGuard, LockStatistics};
use super::usage;
use crate::lowlevel::{DescribeWait, Park, ParkingLot, checkpoint_if_cancelled, current_task};
use crate::{BrokenResourceError, CancelScope, Result};

/// Statistics of a [`Condition`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConditionStatistics {
    /// Tasks blocked in [`Condition::wait`] (not yet notified).
    pub tasks_waiting: usize,
    /// The statistics of the underlying lock.
    pub lock_statistics: LockStatistics,
}

struct CondInner {
    lock: Lock,
    lot: ParkingLot,
}

/// A condition variable: tasks holding the lock [`wait`](Self::wait) until another task holding
/// it calls [`notify`](Self::notify) or [`notify_all`](Self::notify_all).
///
/// Notified waiters do not run at once: they move, in order and without waking, to the lock's
/// queue (`ParkingLot::repark`), and each returns from `wait` when the lock is handed to it.
/// Clones are handles to the same condition.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// use std::cell::Cell;
/// use std::rc::Rc;
/// trio::run(async {
///     let cond = trio::Condition::new();
///     let ready = Rc::new(Cell::new(false));
///     trio::open_nursery(|nursery| async move {
///         let (c, r) = (cond.clone(), ready.clone());
///         nursery.start_soon(async move {
///             let _guard = c.lock().await?;
///             while !r.get() {
///                 c.wait().await?; // releases the lock while it waits
///             }
///             Ok(())
///         })?;
///         let _guard = cond.lock().await?;
///         ready.set(true);
///         cond.notify_all()?;
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct Condition {
    inner: Rc<CondInner>,
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("tasks_waiting", &self.inner.lot.len())
            .field("lock", &self.inner.lock)
            .finish()
    }
}

/// Passes the lock on when a `wait` whose waiter was already handed the lock is dropped.
impl DescribeWait for CondInner {
    /// "2 waiting; lock free; 0 waiting": the waiters for a notification, then the lock.
    fn describe_wait(&self) -> String {
        format!(
            "{} waiting; lock {}",
            self.lot.len(),
            self.lock.core.describe()
        )
    }
}

struct CondWait<'a, 'p> {
    core: &'a LockCore,
    park: Pin<&'p mut Park>,
}

impl Drop for CondWait<'_, '_> {
    fn drop(&mut self) {
        if self.park.is_unparked() {
            self.core.hand_off();
        }
    }
}

impl Condition {
    /// A condition with a new lock of its own.
    pub fn new() -> Self {
        Self::with_lock(Lock::new())
    }

    /// A condition that uses `lock` (a handle to it: the lock stays usable on its own).
    pub fn with_lock(lock: Lock) -> Self {
        let inner = Rc::new(CondInner {
            lock,
            lot: ParkingLot::with_label("Condition::wait"),
        });
        inner.lot.set_describer(&inner);
        Condition { inner }
    }

    /// The underlying lock.
    pub fn as_lock(&self) -> &Lock {
        &self.inner.lock
    }

    fn core(&self) -> &Rc<LockCore> {
        &self.inner.lock.core
    }

    /// Acquires the underlying lock ([`Lock::acquire`]).
    ///
    /// # Checkpoint
    /// Yes, as [`Lock::acquire`].
    ///
    /// # Cancel safety
    /// As [`Lock::acquire`].
    pub async fn acquire(&self) -> Result<()> {
        self.inner.lock.acquire().await
    }

    /// [`Lock::try_acquire`] on the underlying lock. Not a checkpoint.
    pub fn try_acquire(&self) -> Result<()> {
        self.inner.lock.try_acquire()
    }

    /// [`Lock::release`] on the underlying lock. Not a checkpoint.
    pub fn release(&self) -> Result<()> {
        self.inner.lock.release()
    }

    /// Acquires the underlying lock and returns a guard ([`Lock::lock`]).
    ///
    /// # Checkpoint
    /// Yes, as [`Lock::lock`].
    ///
    /// # Cancel safety
    /// As [`Lock::lock`].
    pub async fn lock(&self) -> Result<LockGuard> {
        self.inner.lock.lock().await
    }

    /// Whether the underlying lock is held.
    pub fn locked(&self) -> bool {
        self.inner.lock.locked()
    }

    fn held_by_current(&self, what: &str) -> Result<Held> {
        let me = current_task()?;
        match self.core().held_by(&me) {
            Some(held) => Ok(held),
            None => Err(usage(format!("must hold the Condition's lock to {what}"))),
        }
    }

    /// Releases the lock, waits to be notified, and takes the lock back before returning.
    ///
    /// The current task must hold the lock ([`UsageError`](crate::UsageError) otherwise), by
    /// `acquire` or through a guard: either way it holds it the same way again afterwards.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry (after the ownership check, before the lock is
    /// released), and it always blocks.
    ///
    /// # Cancel safety
    /// Cancelled while waiting, it takes the lock back (shielded from the cancellation, as
    /// Trio does) and then returns the `Cancelled`, so the caller always holds the lock when
    /// `wait` returns. Dropped while waiting, it cannot wait for the lock: the task then does
    /// not hold it (a guard for it does nothing when dropped), and a lock already handed to it
    /// passes on to the next waiter.
    pub async fn wait(&self) -> Result<()> {
        // Trio's order: not holding the lock is a usage error even in a cancelled scope.
        let held = self.held_by_current("wait")?;
        checkpoint_if_cancelled().await?;
        let core = self.core();
        core.hand_off();
        let park = std::pin::pin!(self.inner.lot.park());
        let mut wait = CondWait { core, park };
        // Ok means notify moved us to the lock's queue and the lock was handed to us.
        let parked = wait.park.as_mut().await;
        drop(wait);
        match parked {
            Ok(()) => {
                core.restore(held);
                Ok(())
            }
            Err(e) => {
                if e.is::<BrokenResourceError>() {
                    // Reparked into a broken lock's queue: report the lock's own error.
                    return Err(core.broken_now());
                }
                let reacquired = CancelScope::new()
                    .shielded(true)
                    .run(core.acquire(Kind::Explicit))
                    .await;
                let e = match reacquired {
                    Ok(Some(_)) => {
                        core.restore(held);
                        e
                    }
                    Ok(None) => e,
                    Err(other) => other,
                };
                Err(e)
            }
        }
    }

    /// Wakes up to `n` of the oldest waiters: they move, in order, to the lock's queue. The
    /// current task must hold the lock ([`UsageError`](crate::UsageError) otherwise).
    /// Not a checkpoint.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.held_by_current("notify")?;
        self.core().take_waiters_from(&self.inner.lot, n);
        Ok(())
    }

    /// Wakes every waiter (see [`notify`](Self::notify)). Not a checkpoint.
    pub fn notify_all(&self) -> Result<()> {
        self.notify(usize::MAX)
    }

    /// Trio's statistics: waiters not yet notified, and the lock's statistics.
    pub fn statistics(&self) -> ConditionStatistics {
        ConditionStatistics {
            tasks_waiting: self.inner.lot.len(),
            lock_statistics: self.inner.lock.statistics(),
        }
    }
}
