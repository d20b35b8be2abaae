//! The small entry points of `trio::lowlevel` that ask the run about itself: the current
//! task and root task, the run's token, clock, seed and statistics, system tasks,
//! instruments.

use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use super::clock::Clock;
use super::entry::TrioToken;
use super::run::instruments::Instrument;
use super::run::{Runner, not_in_run};
use super::task::{Task, TaskFuture, TaskLabel};
use crate::error::{Error, Result};

/// The task being polled right now. Fails outside a task.
pub fn current_task() -> Result<Task> {
    Runner::with_current_task(|_, task| Task::from_inner(task.clone()))
        .ok_or_else(|| not_in_run("current_task"))
}

/// Whether this thread is inside a trio run (in a task, an instrument or a `run_sync_soon`
/// callback): whether [`current_trio_token`] would succeed. Trio's `in_trio_run`.
pub fn in_trio_run() -> bool {
    Runner::with_current(|_| ()).is_some()
}

/// Whether a trio task is being polled on this thread: whether [`current_task`] would
/// succeed. Trio's `in_trio_task`.
pub fn in_trio_task() -> bool {
    Runner::with_current_task(|_, _| ()).is_some()
}

/// The root of the task tree (Trio's init task, parent of the main and system tasks).
pub fn current_root_task() -> Result<Task> {
    Runner::with_current(|runner| runner.root_task().map(Task::from_inner))
        .flatten()
        .ok_or_else(|| not_in_run("current_root_task"))
}

/// Starts a system task: a child of the run's system nursery, outside the main task's tree.
///
/// System tasks are cancelled when the main task finishes. A system task that fails tears the
/// run down (`run` returns a `TrioInternalError`), so handle expected errors inside it.
/// Not a checkpoint.
#[track_caller]
pub fn spawn_system_task<F>(
    name: impl Into<std::borrow::Cow<'static, str>>,
    task: F,
) -> Result<Task>
where
    F: Future<Output = Result<()>> + 'static,
{
    let label = TaskLabel::given(name.into(), Location::caller());
    Runner::with_current(|runner| {
        let nursery = runner.system_nursery().clone();
        runner
            .spawn(&nursery, TaskFuture::new(task), label, true)
            .map(Task::from_inner)
    })
    .unwrap_or_else(|| Err(not_in_run("spawn_system_task")))
}

/// A thread-safe handle to the current run, for other threads to call back into it.
pub fn current_trio_token() -> Result<TrioToken> {
    Runner::with_current(|runner| TrioToken::new(runner.entry().clone()))
        .ok_or_else(|| not_in_run("current_trio_token"))
}

/// The current time on the run's clock, in seconds. Fails outside a run.
pub fn current_time() -> Result<f64> {
    Runner::with_current(Runner::current_time).ok_or_else(|| not_in_run("current_time"))
}

/// The run's clock (the one given to `RunConfig::clock`, or the system clock). Fails outside
/// a run. Not a checkpoint.
pub fn current_clock() -> Result<Rc<dyn Clock>> {
    Runner::with_current(|runner| runner.clock().clone()).ok_or_else(|| not_in_run("current_clock"))
}

/// The earliest deadline that can cancel the code calling this (`-inf` if it is already
/// cancelled, `+inf` if nothing can). Fails outside a task.
pub fn current_effective_deadline() -> Result<f64> {
    Runner::with_current_task(|_, task| {
        let deadline = task.current_status.borrow().clone().effective_deadline();
        // A timeout whose body runs without a node yet (`timeout.rs`) counts too.
        // (NaN and infinity mean no frame or an entered one; `min` ignores NaN.)
        deadline.min(task.lazy_deadline.get())
    })
    .ok_or_else(|| not_in_run("current_effective_deadline"))
}

/// The seed of the run's scheduling order (pass it to `RunConfig::seed` or `TRIO_SEED` to
/// replay a run).
pub fn current_seed() -> Result<u64> {
    Runner::with_current(Runner::seed).ok_or_else(|| not_in_run("current_seed"))
}

/// Numbers about the current run, as Trio's `current_statistics()`.
///
/// Trio's fields (its `io_statistics` as one count of tasks waiting for fd readiness). Figures
/// of work running on other threads join them with the thread pool (`trio::to_thread`); the
/// struct is `#[non_exhaustive]` for that. Task dumps ([`task_dump`](crate::lowlevel::task_dump))
/// say what each task waits for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunStatistics {
    /// Tasks alive (including system tasks and the init task). One fewer than Trio counts for
    /// the same program: trio-rs runs `run_sync_soon` callbacks from the loop itself, not
    /// from a system task.
    pub tasks_living: usize,
    /// Tasks on the run queue. Cancelling a scope reschedules every task in it, the running
    /// one included (part of it may be blocked inside a combinator), so right after a task
    /// cancels its own scope it is counted here, where Trio counts only blocked tasks woken.
    pub tasks_runnable: usize,
    /// Seconds until the earliest deadline (infinite if none).
    pub seconds_to_next_deadline: f64,
    /// Callbacks and remote wakes waiting in the entry queue.
    pub run_sync_soon_queue_size: usize,
    /// Tasks waiting for fd readiness.
    pub io_waiters: usize,
    /// Waits for work outside the run in flight ([`ExternalWait`](crate::lowlevel::ExternalWait),
    /// e.g. `trio::to_thread` calls whose thread is running).
    pub external_waits: usize,
}

/// Statistics of the current run. Fails outside a run. Not a checkpoint.
pub fn current_statistics() -> Result<RunStatistics> {
    Runner::with_current(|runner| {
        let next = runner.next_deadline();
        RunStatistics {
            tasks_living: runner.living_tasks(),
            tasks_runnable: runner.runnable_count(),
            seconds_to_next_deadline: next - runner.current_time(),
            run_sync_soon_queue_size: runner.entry().queued(),
            io_waiters: runner.reactor().waiter_count(),
            external_waits: runner.external_waits().get(),
        }
    })
    .ok_or_else(|| not_in_run("current_statistics"))
}

/// Adds an instrument to the current run (no effect if it is already there).
/// Not a checkpoint. Fails outside a run.
pub fn add_instrument(instrument: Rc<dyn Instrument>) -> Result<()> {
    Runner::with_current(|r| r.instruments().add(instrument))
        .ok_or_else(|| not_in_run("add_instrument"))
}

/// Removes an instrument from the current run. Fails if it was not there (a clear error, as
/// Trio's `KeyError`) or outside a run. Not a checkpoint.
pub fn remove_instrument(instrument: &Rc<dyn Instrument>) -> Result<()> {
    match Runner::with_current(|r| r.instruments().remove(instrument)) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::usage(
            "remove_instrument: that instrument is not installed in this run",
        )),
        None => Err(not_in_run("remove_instrument")),
    }
}
