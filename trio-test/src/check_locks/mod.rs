//! One conformance suite for every lock-like primitive (Trio's `test_sync.py` runs its generic
//! lock tests over every primitive that can act as a lock): [`LockLike`] says how to use a
//! primitive as a lock, [`check_lock_like`] checks that it behaves as trio's locks do.

mod checks;

use std::future::Future;

use trio::{
    CapacityLimiter, CapacityLimiterGuard, Condition, Lock, LockGuard, Result, Semaphore,
    SemaphoreGuard, StrictFIFOLock,
};

/// A primitive used as a lock with one token: what [`check_lock_like`] needs to drive it.
///
/// It is implemented here for every lock-like primitive of trio ([`Lock`], [`StrictFIFOLock`],
/// [`Semaphore`] and [`CapacityLimiter`] made with one token, and a [`Condition`] as its lock);
/// implement it for your own primitive to run the suite on it. Handles are cloned into the
/// tasks the suite starts, so a clone must be another handle to the same primitive.
pub trait LockLike: Clone + 'static {
    /// What [`acquire_guard`](Self::acquire_guard) returns: it holds the lock until dropped.
    type Guard: 'static;

    /// Takes the lock, waiting while another holder has it; a release hands it to the oldest
    /// waiter.
    ///
    /// # Checkpoint
    /// Required: a cancel point on entry and a schedule point on every `Ok`, even when the
    /// lock was free (it takes the lock before it yields).
    ///
    /// # Cancel safety
    /// Required: cancelled or dropped while waiting, it took nothing; handed the lock just
    /// before a cancellation, it returns `Ok`; dropped after a hand-off (or during the
    /// schedule point of its fast path), it passes the lock on.
    fn acquire(&self) -> impl Future<Output = Result<()>>;

    /// As [`acquire`](Self::acquire), returning a guard that releases when dropped.
    ///
    /// # Checkpoint
    /// As [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire): either no guard and no lock, or a guard.
    fn acquire_guard(&self) -> impl Future<Output = Result<Self::Guard>>;

    /// Takes the lock if it is free, without waiting; an error ([`WouldBlock`] when another
    /// holder has it) otherwise. Not a checkpoint.
    ///
    /// [`WouldBlock`]: trio::WouldBlock
    fn try_acquire(&self) -> Result<()>;

    /// Releases the lock, handing it to the oldest waiter if there is one. The suite calls it
    /// from the task that acquired. Not a checkpoint.
    fn release(&self) -> Result<()>;

    /// Whether the lock is held (by anyone).
    fn locked(&self) -> bool;

    /// How many tasks wait in `acquire` (from the primitive's statistics).
    fn tasks_waiting(&self) -> usize;
}

impl LockLike for Lock {
    type Guard = LockGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        Lock::acquire(self)
    }

    fn acquire_guard(&self) -> impl Future<Output = Result<LockGuard>> {
        Lock::lock(self)
    }

    fn try_acquire(&self) -> Result<()> {
        Lock::try_acquire(self)
    }

    fn release(&self) -> Result<()> {
        Lock::release(self)
    }

    fn locked(&self) -> bool {
        Lock::locked(self)
    }

    fn tasks_waiting(&self) -> usize {
        self.statistics().tasks_waiting
    }
}

impl LockLike for StrictFIFOLock {
    type Guard = LockGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        self.as_lock().acquire()
    }

    fn acquire_guard(&self) -> impl Future<Output = Result<LockGuard>> {
        self.as_lock().lock()
    }

    fn try_acquire(&self) -> Result<()> {
        self.as_lock().try_acquire()
    }

    fn release(&self) -> Result<()> {
        self.as_lock().release()
    }

    fn locked(&self) -> bool {
        self.as_lock().locked()
    }

    fn tasks_waiting(&self) -> usize {
        self.statistics().tasks_waiting
    }
}

/// A semaphore with one token (the suite's maker must return it so: `Semaphore::new(1)` or
/// `Semaphore::with_max(1, 1)`); "locked" means no token is free.
impl LockLike for Semaphore {
    type Guard = SemaphoreGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        Semaphore::acquire(self)
    }

    fn acquire_guard(&self) -> impl Future<Output = Result<SemaphoreGuard>> {
        Semaphore::acquire_guard(self)
    }

    fn try_acquire(&self) -> Result<()> {
        Semaphore::try_acquire(self)
    }

    fn release(&self) -> Result<()> {
        Semaphore::release(self)
    }

    fn locked(&self) -> bool {
        self.value() == 0
    }

    fn tasks_waiting(&self) -> usize {
        self.statistics().tasks_waiting
    }
}

/// A capacity limiter with one token (`CapacityLimiter::new(1)`), borrowed by the calling
/// task; "locked" means no token is free.
impl LockLike for CapacityLimiter {
    type Guard = CapacityLimiterGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        CapacityLimiter::acquire(self)
    }

    fn acquire_guard(&self) -> impl Future<Output = Result<CapacityLimiterGuard>> {
        CapacityLimiter::acquire_guard(self)
    }

    fn try_acquire(&self) -> Result<()> {
        CapacityLimiter::try_acquire(self)
    }

    fn release(&self) -> Result<()> {
        CapacityLimiter::release(self)
    }

    fn locked(&self) -> bool {
        self.available_tokens() == 0
    }

    fn tasks_waiting(&self) -> usize {
        self.statistics().tasks_waiting
    }
}

/// A condition's lock, through the condition's own methods.
impl LockLike for Condition {
    type Guard = LockGuard;

    fn acquire(&self) -> impl Future<Output = Result<()>> {
        Condition::acquire(self)
    }

    fn acquire_guard(&self) -> impl Future<Output = Result<LockGuard>> {
        Condition::lock(self)
    }

    fn try_acquire(&self) -> Result<()> {
        Condition::try_acquire(self)
    }

    fn release(&self) -> Result<()> {
        Condition::release(self)
    }

    fn locked(&self) -> bool {
        Condition::locked(self)
    }

    fn tasks_waiting(&self) -> usize {
        self.statistics().lock_statistics.tasks_waiting
    }
}

/// Checks that a lock-like primitive behaves as trio's locks do (Trio's generic lock tests,
/// and the rules of [`trio::sync`]); `make` returns a fresh, free primitive each time it is
/// called. Call it inside a run (it needs no particular clock):
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async { trio_test::check_lock_like(|| trio::Semaphore::new(1)).await })
/// # }
/// ```
///
/// What it checks, with both explicit release and guards where both apply:
/// - **checkpoints**: `acquire` and `acquire_guard` are checkpoints even when the lock is
///   free, and in a cancelled scope fail with `Cancelled` and take nothing; `try_acquire`
///   and `release` are not checkpoints and work in a cancelled scope; a held lock refuses
///   `try_acquire`.
/// - **exclusion**: five tasks looping over a critical section that checkpoints are never in
///   it together (Trio's `test_generic_lock_exclusion`).
/// - **fair turns**: three tasks looping take strict turns (Trio's
///   `test_generic_lock_fifo_fairness`).
/// - **try_acquire blocks acquire**: a lock taken with `try_acquire` blocks `acquire` until
///   released (Trio's `test_generic_lock_acquire_nowait_blocks_acquire`).
/// - **hand-off**: a release hands the lock to the oldest waiter at once, so it stays locked,
///   the releaser's `try_acquire` gets `WouldBlock`, and waiters get it in queue order.
/// - **cancelled waiter**: a waiter cancelled while it waits leaves the queue and takes
///   nothing, whether or not someone waits behind it.
/// - **cancel after hand-off**: a waiter handed the lock just before its cancellation returns
///   `Ok` and holds it.
/// - **dropped after hand-off**: a waiter's future dropped after the lock was handed to it
///   passes the lock on (to the next waiter, or back to free).
/// - **dropped while yielding or waiting**: an `acquire` dropped during the schedule point of
///   its fast path gives the lock back; one dropped while queued leaves the queue.
///
/// Each release happens in the task that acquired, so a primitive with owners (a [`Lock`], a
/// [`CapacityLimiter`]) also shows that ownership moved with each hand-off.
///
/// # Panics
/// When the primitive fails a check: the message names the primitive's type and the check.
///
/// # Checkpoint
/// Yes: it runs many lock operations.
///
/// # Cancel safety
/// Cancelled, it stops where it was; the primitives it made are dropped.
pub async fn check_lock_like<L: LockLike>(mut make: impl FnMut() -> L) -> Result<()> {
    checks::checkpoints(make()).await?;
    for mode in [checks::Mode::Explicit, checks::Mode::Guard] {
        checks::exclusion(make(), mode).await?;
        checks::fair_turns(make(), mode).await?;
    }
    checks::try_acquire_blocks_acquire(make()).await?;
    checks::hand_off_in_queue_order(make()).await?;
    checks::cancelled_waiter_takes_nothing(make()).await?;
    checks::cancel_after_hand_off_completes(make()).await?;
    checks::dropped_after_hand_off_passes_on(make()).await?;
    checks::dropped_while_yielding_or_waiting(make()).await
}
