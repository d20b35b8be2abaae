//! Checkpoints and the other small entry points of `trio::lowlevel`.
//!
//! A checkpoint is a schedule point (the task yields and other tasks run) followed by a cancel
//! point (if the task's current scope is cancelled, `Err(Cancelled)`). The schedule point comes
//! first, as in Trio, so that the cancel point sees deadlines the loop just expired.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::run::{Runner, not_in_run};
use super::seconds::IntoSeconds;
use super::task::Task;
use crate::error::{Error, Result};

/// The cancel point of the checkpoint futures: `Ok` unless the task being polled is inside an
/// effectively cancelled scope; a usage error (naming `what`) outside a task.
///
/// Performance: the common case is one cached flag load returning a pointer-sized `Result`;
/// building the `Cancelled` (walking the scope tree for the reason) is kept out of line, so
/// this inlines into every checkpoint (~28 instructions less per `checkpoint()` in
/// benches/callgrind.rs, switch).
#[inline]
fn cancel_point(what: &'static str) -> Result<()> {
    match Runner::with_current_task(|_, task| task.current_status.borrow().is_cancelled()) {
        Some(false) => Ok(()),
        Some(true) => Err(current_cancelled_error()),
        None => Err(not_in_run(what)),
    }
}

/// The schedule point of a checkpoint: the task goes back on the run queue.
#[inline]
pub(crate) fn yield_to_scheduler(cx: &Context<'_>) {
    if !Runner::with_current(|runner| runner.reschedule_current(cx.waker())).unwrap_or(false) {
        cx.waker().wake_by_ref();
    }
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

    // Performance: always inlined into the awaiting future, so a checkpoint costs no call;
    // left to the inliner, it was inlined or not depending on unrelated code elsewhere
    // (benches/callgrind.rs, switch: 267 -> 223 Ir).
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.yielded {
            self.yielded = true;
            yield_to_scheduler(cx);
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
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(cancel_point("checkpoint_if_cancelled"))
    }
}

/// A cancel point only: fails with `Cancelled` if the current scope is cancelled, and otherwise
/// returns at once without yielding.
///
/// # Checkpoint
/// A cancel point, not a schedule point. Pair it with [`cancel_shielded_checkpoint`] to make a
/// full checkpoint in two halves.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub fn checkpoint_if_cancelled() -> CheckpointIfCancelled {
    CheckpointIfCancelled { _private: () }
}

/// The future of [`cancel_shielded_checkpoint`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug, Default)]
pub struct CancelShieldedCheckpoint {
    yielded: bool,
}

impl Future for CancelShieldedCheckpoint {
    type Output = ();

    /// Performance: always inlined, so the second poll (the common `Ready`) is a flag test in
    /// the caller, not a call whose prologue saves every register the first poll's
    /// rescheduling needs (benches/callgrind.rs, pingpong).
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        yield_to_scheduler(cx);
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

/// The task being polled right now. Fails outside a task.
pub fn current_task() -> Result<Task> {
    Runner::with_current_task(|_, task| Task::from_inner(task.clone()))
        .ok_or_else(|| not_in_run("current_task"))
}

/// The root of the task tree (Trio's init task, parent of the main and system tasks).
pub fn current_root_task() -> Result<Task> {
    Runner::with_current(|runner| runner.init_task_rc.borrow().clone().map(Task::from_inner))
        .flatten()
        .ok_or_else(|| not_in_run("current_root_task"))
}

/// Starts a system task: a child of the run's system nursery, outside the main task's tree.
///
/// System tasks are cancelled when the main task finishes. A system task that fails tears the
/// run down (`run` returns a `TrioInternalError`), so handle expected errors inside it.
/// Not a checkpoint.
pub fn spawn_system_task<F>(
    name: impl Into<std::borrow::Cow<'static, str>>,
    task: F,
) -> Result<Task>
where
    F: Future<Output = Result<()>> + 'static,
{
    let name = name.into();
    Runner::with_current(|runner| {
        let nursery = runner.system_nursery.clone();
        runner
            .spawn(
                &nursery,
                super::task_future::TaskFuture::new(task),
                name,
                true,
            )
            .map(Task::from_inner)
    })
    .unwrap_or_else(|| Err(not_in_run("spawn_system_task")))
}

/// A thread-safe handle to the current run, for other threads to call back into it.
pub fn current_trio_token() -> Result<super::entry::TrioToken> {
    Runner::with_current(|runner| super::entry::TrioToken::new(runner.entry.clone()))
        .ok_or_else(|| not_in_run("current_trio_token"))
}

/// The current time on the run's clock, in seconds. Fails outside a run.
pub fn current_time() -> Result<f64> {
    Runner::with_current(Runner::current_time).ok_or_else(|| not_in_run("current_time"))
}

/// The run's clock (the one given to `RunConfig::clock`, or the system clock). Fails outside
/// a run. Not a checkpoint.
pub fn current_clock() -> Result<std::rc::Rc<dyn super::clock::Clock>> {
    Runner::with_current(|runner| runner.clock.clone()).ok_or_else(|| not_in_run("current_clock"))
}

/// The earliest deadline that can cancel the code calling this (`-inf` if it is already
/// cancelled, `+inf` if nothing can). Fails outside a task.
pub fn current_effective_deadline() -> Result<f64> {
    Runner::with_current_task(|_, task| task.current_status.borrow().clone().effective_deadline())
        .ok_or_else(|| not_in_run("current_effective_deadline"))
}

/// The seed of the run's scheduling order (pass it to `RunConfig::seed` or `TRIO_SEED` to
/// replay a run).
pub fn current_seed() -> Result<u64> {
    Runner::with_current(|runner| runner.seed).ok_or_else(|| not_in_run("current_seed"))
}

/// Numbers about the current run, as Trio's `current_statistics()`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunStatistics {
    /// Tasks alive (including system tasks and the init task).
    pub tasks_living: usize,
    /// Tasks on the run queue.
    pub tasks_runnable: usize,
    /// Seconds until the earliest deadline (infinite if none).
    pub seconds_to_next_deadline: f64,
    /// Callbacks and remote wakes waiting in the entry queue.
    pub run_sync_soon_queue_size: usize,
    /// Tasks waiting for fd readiness.
    pub io_waiters: usize,
}

/// Statistics of the current run. Fails outside a run. Not a checkpoint.
pub fn current_statistics() -> Result<RunStatistics> {
    Runner::with_current(|runner| {
        let next = runner.deadlines.borrow_mut().next_deadline();
        RunStatistics {
            tasks_living: runner.tasks.borrow().len(),
            tasks_runnable: runner.runnable_count(),
            seconds_to_next_deadline: next - runner.current_time(),
            run_sync_soon_queue_size: runner.entry.queued(),
            io_waiters: runner.reactor.waiter_count(),
        }
    })
    .ok_or_else(|| not_in_run("current_statistics"))
}

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

impl Future for WaitAllTasksBlocked {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
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
                    let status = task.current_status.borrow().clone();
                    if status.is_cancelled() {
                        return Err(Error::new(status.cancelled_error()));
                    }
                    let flag = Rc::new(Cell::new(false));
                    let slot = runner.add_idle_waiter(cushion, task.key, flag.clone());
                    Ok((slot, flag))
                });
                match started {
                    None => Poll::Ready(Err(not_in_run("wait_all_tasks_blocked"))),
                    Some(Err(e)) => Poll::Ready(Err(e)),
                    Some(Ok((slot, flag))) => {
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

/// Checks the cushion before building the future (kept separate so the error is clear).
pub(crate) fn check_cushion(cushion: f64) -> Result<f64> {
    super::cancel::check_duration(cushion, "cushion")
}
