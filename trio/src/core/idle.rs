//! `wait_all_tasks_blocked`: wait until every other task is blocked.
//!
//! The waiter registers with the run (`run/idle_waiters.rs`); when nothing is runnable the run
//! loop wakes the waiters with the smallest cushion once that cushion has passed in real time,
//! before the clock may autojump.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::blocked::BlockedOn;
use super::clock::IntoSeconds;
use super::run::{Runner, not_in_run};
use crate::error::{Error, Result};

enum IdleStage {
    Start,
    Waiting((u64, u64), Rc<Cell<bool>>),
    /// The cushion was changed after the wait had started.
    LateCushion,
    Done,
}

/// The future of [`wait_all_tasks_blocked`]; [`cushion`](Self::cushion) sets how long
/// everything must have stayed blocked.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitAllTasksBlocked {
    cushion: f64,
    stage: IdleStage,
}

impl WaitAllTasksBlocked {
    /// Waits until every other task has been blocked for `seconds` of real time (any
    /// [`IntoSeconds`](crate::IntoSeconds) type) instead of the default 0. Among several
    /// waiters, the smallest cushion wakes first. Negative or NaN cushions are errors (from the
    /// future). Set it before the first poll: a cushion set on a wait that has started is a
    /// `UsageError` (the wait would otherwise go on with the old one).
    pub fn cushion(mut self, seconds: impl IntoSeconds) -> Self {
        self.cushion = seconds.into_seconds();
        if let IdleStage::Waiting(slot, flag) = &self.stage {
            if !flag.get() {
                let slot = *slot;
                Runner::with_current(|runner| runner.remove_idle_waiter(slot));
            }
            self.stage = IdleStage::LateCushion;
        }
        self
    }
}

impl std::fmt::Debug for WaitAllTasksBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            IdleStage::Start => "not started",
            IdleStage::Waiting(..) => "waiting",
            IdleStage::LateCushion | IdleStage::Done => "done",
        };
        f.debug_struct("WaitAllTasksBlocked")
            .field("cushion", &self.cushion)
            .field("stage", &stage)
            .finish()
    }
}

impl Future for WaitAllTasksBlocked {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match std::mem::replace(&mut self.stage, IdleStage::Done) {
            IdleStage::Done => Poll::Ready(Err(Error::usage(
                "wait_all_tasks_blocked polled after it finished",
            ))),
            IdleStage::LateCushion => Poll::Ready(Err(Error::usage(
                "wait_all_tasks_blocked: the cushion was set after the wait had started; \
                 set it before the first poll",
            ))),
            IdleStage::Start => {
                let cushion = match check_cushion(self.cushion) {
                    Ok(cushion) => cushion,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                let started = Runner::with_current_task(|runner, task| {
                    match task.entry_cancel_point(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Err(e),
                        // Cancelled: yield first; the next poll starts over and raises.
                        Poll::Pending => return Ok(None),
                    }
                    let flag = Rc::new(Cell::new(false));
                    let slot = runner.add_idle_waiter(cushion, task.key, flag.clone());
                    task.note_blocked(BlockedOn::AllTasksBlocked);
                    Ok(Some((slot, flag)))
                });
                match started {
                    None => Poll::Ready(Err(not_in_run("wait_all_tasks_blocked"))),
                    Some(Err(e)) => Poll::Ready(Err(e)),
                    Some(Ok(None)) => {
                        self.stage = IdleStage::Start;
                        Poll::Pending
                    }
                    Some(Ok(Some((slot, flag)))) => {
                        self.stage = IdleStage::Waiting(slot, flag);
                        Poll::Pending
                    }
                }
            }
            IdleStage::Waiting(slot, flag) => {
                if flag.get() {
                    return Poll::Ready(Ok(()));
                }
                let cancelled = Runner::with_current_task(|runner, task| {
                    let status = task.current_status.borrow().clone();
                    if status.is_cancelled() {
                        runner.remove_idle_waiter(slot);
                        Some(status.cancelled_error())
                    } else {
                        task.note_blocked(BlockedOn::AllTasksBlocked);
                        None
                    }
                })
                .flatten();
                match cancelled {
                    Some(c) => Poll::Ready(Err(Error::new(c))),
                    None => {
                        self.stage = IdleStage::Waiting(slot, flag);
                        Poll::Pending
                    }
                }
            }
        }
    }
}

impl Drop for WaitAllTasksBlocked {
    fn drop(&mut self) {
        if let IdleStage::Waiting(slot, flag) = &self.stage {
            if !flag.get() {
                let slot = *slot;
                Runner::with_current(|runner| runner.remove_idle_waiter(slot));
            }
        }
    }
}

/// Waits until every other task is blocked: as soon as nothing else can run, or, with
/// [`.cushion(seconds)`](WaitAllTasksBlocked::cushion), once everything has stayed blocked for
/// that long in real time (Trio's `wait_all_tasks_blocked(cushion)`; its default cushion is 0
/// as here).
///
/// "Blocked" means the run queue is empty and no I/O or deadline is ready. Waiters with the
/// smallest cushion wake first, and a waiter beats a mock clock's autojump (the clock only
/// jumps when nobody is waiting here). This is a testing tool: with it, a test can say "let
/// everything settle, then check".
///
/// ```
/// # fn main() -> trio::Result<()> {
/// # trio::run(async {
/// use trio::lowlevel::wait_all_tasks_blocked;
/// wait_all_tasks_blocked().await?;
/// wait_all_tasks_blocked().cushion(0.01).await?;
/// # Ok(())
/// # })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always blocks at least once.
///
/// # Cancel safety
/// Safe: cancelling or dropping it unregisters the waiter.
pub fn wait_all_tasks_blocked() -> WaitAllTasksBlocked {
    WaitAllTasksBlocked {
        cushion: 0.0,
        stage: IdleStage::Start,
    }
}

/// Checks the cushion before waiting (kept separate so the error is clear). A -0.0 cushion
/// becomes 0.0: waiters are ordered by the cushion's bits, and -0.0's sort after every other.
fn check_cushion(cushion: f64) -> Result<f64> {
    super::cancel_scope::check_duration(cushion, "cushion").map(|c| c + 0.0)
}
