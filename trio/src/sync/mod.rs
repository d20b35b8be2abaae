//! Synchronization primitives: [`Event`], [`Lock`], [`StrictFIFOLock`], [`Semaphore`],
//! [`CapacityLimiter`] and [`Condition`] (Trio's `trio.Event`, `trio.Lock`, ...).
//!
//! They are built only from [`trio::lowlevel`](crate::lowlevel): each keeps its waiters in a
//! [`ParkingLot`](crate::lowlevel::ParkingLot), and nothing here reaches into the run loop.
//!
//! # Rules shared by every primitive
//! - **Checkpoints.** Every async method is a checkpoint: a cancel point on entry and a
//!   schedule point on every normal return, even when it did not have to wait (an uncontended
//!   [`Lock::acquire`] still yields once). Sync methods (`try_acquire`, `release`, `set`, ...)
//!   never are.
//! - **Fair hand-off.** A release hands ownership (the lock, the token) straight to the oldest
//!   waiter; the releaser cannot take it back by acquiring again at once.
//! - **Lossless cancellation.** A cancelled or dropped wait either had no effect (the task left
//!   the queue) or completed (it returns `Ok` even though its scope was cancelled meanwhile).
//!   When a future that was handed something is dropped before it could return it, the
//!   hand-off passes on to the next waiter.
//! - **Handles.** Every primitive is a cheap handle: `clone` gives another handle to the same
//!   primitive (never a new one), so tasks can each hold one (task futures are `'static`) and
//!   no `Rc` is needed around any of them. This holds for everything here, for
//!   [`ParkingLot`](crate::lowlevel::ParkingLot), and for the memory channels'
//!   [`MemorySendChannel`](crate::MemorySendChannel) and
//!   [`MemoryReceiveChannel`](crate::MemoryReceiveChannel), whose clones add Trio's rule
//!   that each handle is closed on its own (the channel ends when every send handle is
//!   closed). Guards ([`LockGuard`], [`SemaphoreGuard`], [`CapacityLimiterGuard`]) are not
//!   handles: each is one ownership, released on drop.

mod capacity_limiter;
mod condition;
mod event;
mod lock;
mod semaphore;

pub use capacity_limiter::{
    Borrower, CapacityLimiter, CapacityLimiterGuard, CapacityLimiterStatistics,
};
pub use condition::{Condition, ConditionStatistics};
pub use event::{Event, EventStatistics};
pub use lock::{Lock, LockAcquire, LockFuture, LockGuard, LockStatistics, StrictFIFOLock};
pub use semaphore::{Semaphore, SemaphoreGuard, SemaphoreStatistics};

use crate::{Error, UsageError};

/// Shorthand for a [`UsageError`] wrapped in an [`Error`].
fn usage(message: impl Into<String>) -> Error {
    Error::new(UsageError::new(message))
}
