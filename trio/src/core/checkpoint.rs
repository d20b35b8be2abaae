//! Checkpoints: the schedule points and cancel points everything else is made of.
//!
//! A checkpoint is a schedule point (the task yields and other tasks run) followed by a cancel
//! point (if the task's current scope is cancelled, `Err(Cancelled)`). The schedule point comes
//! first, as in Trio, so that the cancel point sees deadlines the loop just expired.
//! [`sleep_forever`] is the other primitive wait of this file: it blocks until cancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::blocked::BlockedOn;
use super::run::{Runner, not_in_run};
use crate::error::{Error, Result};

/// The cancel point of the checkpoint futures: `Ok` unless the task being polled is inside an
/// effectively cancelled scope; a usage error (naming `what`) outside a task.
///
/// The common case is one cached flag load returning a pointer-sized `Result`; building the
/// `Cancelled` (walking the scope tree for the reason) is kept out of line, so this inlines
/// into every checkpoint.
#[inline]
fn cancel_point(what: &'static str) -> Result<()> {
    match Runner::with_current_task(|_, task| {
        task.count_cancel_point();
        task.current_status.borrow().is_cancelled()
    }) {
        Some(false) => Ok(()),
        Some(true) => Err(current_cancelled_error()),
        None => Err(not_in_run(what)),
    }
}

/// A cancel point on entry that found the task cancelled: yield first, raise next poll
/// (`TaskInner::entry_cancel_point`).
#[cold]
#[inline(never)]
fn cancelled_entry(cx: &Context<'_>) -> Poll<Result<()>> {
    Runner::with_current_task(|_, task| task.cancelled_entry(cx))
        .unwrap_or_else(|| Poll::Ready(Err(not_in_run("checkpoint_if_cancelled"))))
}

/// The `Cancelled` for the task being polled (known to be cancelled).
#[cold]
#[inline(never)]
fn current_cancelled_error() -> Error {
    Runner::with_current_task(|_, task| Error::new(task.current_status.borrow().cancelled_error()))
        .unwrap_or_else(|| not_in_run("checkpoint"))
}

/// The future of [`checkpoint`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug, Default)]
pub struct Checkpoint {
    yielded: bool,
}

impl Future for Checkpoint {
    type Output = Result<()>;

    // Always inlined into the awaiting future, so a checkpoint costs no call; left to the
    // inliner, it is inlined or not depending on unrelated code elsewhere.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.yielded {
            self.yielded = true;
            super::run::schedule_point(cx);
            return Poll::Pending;
        }
        Poll::Ready(cancel_point("checkpoint"))
    }
}

/// A full checkpoint: yield to the scheduler, then fail with `Cancelled` if the current scope
/// is cancelled.
///
/// # Checkpoint
/// Yes, by definition.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub fn checkpoint() -> Checkpoint {
    Checkpoint { yielded: false }
}

/// The future of [`checkpoint_if_cancelled`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct CheckpointIfCancelled {
    _private: (),
}

impl Future for CheckpointIfCancelled {
    type Output = Result<()>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // The common case is the same flag load as a checkpoint's cancel point; a cancelled
        // scope (yield, then raise) is out of line.
        match Runner::with_current_task(|_, task| {
            task.count_cancel_point();
            task.current_status.borrow().is_cancelled()
        }) {
            Some(false) => Poll::Ready(Ok(())),
            Some(true) => cancelled_entry(cx),
            None => Poll::Ready(Err(not_in_run("checkpoint_if_cancelled"))),
        }
    }
}

/// A cancel point only: returns at once, without yielding, unless the current scope is
/// cancelled; then it is a full checkpoint that fails with `Cancelled` (Trio's
/// `checkpoint_if_cancelled`: a `Cancelled` is only ever raised after a yield).
///
/// Polled in place by a hand-written future, it is `Ready(Ok)` or, in a cancelled scope,
/// first `Pending` (the task is rescheduled: return `Pending` and poll it again from the
/// same state) and then `Ready(Err)`.
///
/// # Checkpoint
/// A cancel point, and a schedule point only when cancelled. Pair it with
/// [`cancel_shielded_checkpoint`] to make a full checkpoint in two halves.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub fn checkpoint_if_cancelled() -> CheckpointIfCancelled {
    CheckpointIfCancelled { _private: () }
}

/// The current task, if it passes a cancel point: `Some(task)` when it is not inside an
/// effectively cancelled scope, `None` when it is. For hand-written futures whose entry is
/// "cancel point, then act as this task" (a lock's acquire): one look at the run instead of
/// [`checkpoint_if_cancelled`] followed by [`current_task`](super::introspect::current_task).
///
/// On `None`, poll [`checkpoint_if_cancelled`] to yield and then raise `Cancelled`, as Trio
/// does. Only a `Some` counts as a cancel point of the task ([`Task::cancel_points`]), so that
/// path counts it once.
///
/// Not a checkpoint itself (it never yields); fails only outside a run.
///
/// [`Task::cancel_points`]: super::task::Task::cancel_points
#[inline]
pub fn current_task_if_not_cancelled() -> Result<Option<super::task::Task>> {
    match Runner::with_current_task(|_, task| {
        if task.current_status.borrow().is_cancelled() {
            return None;
        }
        task.count_cancel_point();
        Some(super::task::Task::from_inner(task.clone()))
    }) {
        Some(task) => Ok(task),
        None => Err(not_in_run("current_task_if_not_cancelled")),
    }
}

/// For a hand-written future that waits on something trio knows nothing of (a foreign
/// future, a waker it stored by hand), on each poll that is about to return `Pending`:
/// `Err(Cancelled)` if the current task is cancelled; otherwise `Ok(())`, and `cx`'s waker is
/// woken when the task becomes cancelled. Waits through a
/// [`ParkingLot`](super::parking::ParkingLot) or the reactor do this themselves.
///
/// The task's own waker is always woken on cancellation; a combinator's waker (a
/// `FuturesUnordered` gives each child its own) is registered so that the combinator polls
/// the waiting child again. Not a checkpoint: it never yields, so an error from it must come
/// after a yield of the caller (a poll after a `Pending`), and it is not counted as a cancel
/// point: make the entry cancel point with [`checkpoint_if_cancelled`]. Fails outside a task.
pub fn wake_on_cancel(cx: &Context<'_>) -> Result<()> {
    match Runner::with_current_task(|_, task| {
        let status = task.current_status.borrow();
        if status.is_cancelled() {
            return Err(Error::new(status.cancelled_error()));
        }
        drop(status);
        task.register_cancel_waker(cx.waker());
        Ok(())
    }) {
        Some(result) => result,
        None => Err(not_in_run("wake_on_cancel")),
    }
}

/// The future of [`cancel_shielded_checkpoint`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug, Default)]
pub struct CancelShieldedCheckpoint {
    yielded: bool,
}

impl Future for CancelShieldedCheckpoint {
    type Output = ();

    /// Always inlined, so the second poll (the common `Ready`) is a flag test in the caller,
    /// not a call whose prologue saves every register the first poll's rescheduling needs.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        super::run::schedule_point(cx);
        Poll::Pending
    }
}

/// A schedule point only: yields to the scheduler and never fails, even in a cancelled scope.
///
/// # Checkpoint
/// A schedule point, not a cancel point.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub fn cancel_shielded_checkpoint() -> CancelShieldedCheckpoint {
    CancelShieldedCheckpoint { yielded: false }
}

/// The future of [`sleep_forever`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug, Default)]
pub struct SleepForever {
    /// Past the entry cancel point: the task sleeps until its scope is cancelled.
    waiting: bool,
}

impl Future for SleepForever {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // The cancel-status tree wakes this task (and `cx`'s waker, if it is not the task's
        // own) when its scope becomes cancelled.
        let waiting = self.waiting;
        // `Ok(true)`: now sleeping; `Ok(false)`: yielding before raising `Cancelled`.
        let polled = Runner::with_current_task(|_, task| {
            if !waiting {
                // On entry, a cancelled scope yields before it raises (Trio's rule).
                match task.entry_cancel_point(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(false),
                }
            } else {
                let status = task.current_status.borrow();
                if status.is_cancelled() {
                    return Err(Error::new(status.cancelled_error()));
                }
            }
            task.register_cancel_waker(cx.waker());
            // For task dumps: `sleep` is this inside a scope with a deadline.
            let deadline = task.current_status.borrow().deadline();
            task.note_blocked(BlockedOn::Sleep {
                deadline: deadline.min(task.lazy_deadline.get()),
            });
            Ok(true)
        });
        match polled {
            None => Poll::Ready(Err(not_in_run("sleep_forever"))),
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok(sleeping)) => {
                self.waiting = sleeping;
                Poll::Pending
            }
        }
    }
}

/// Sleeps until cancelled; always returns `Err(Cancelled)` (or an error for misuse).
///
/// # Checkpoint
/// Yes: it blocks until its scope is cancelled.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub fn sleep_forever() -> SleepForever {
    SleepForever { waiting: false }
}
