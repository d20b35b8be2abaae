//! A run: `run` and `RunConfig`, the `Runner` every other core module talks to, and the loop.
//!
//! - `config.rs`: [`RunConfig`], the builder a run starts from;
//! - this file: [`run`] itself: set up the drivers and the runner, start the init and main
//!   tasks, drive the loop, tear down, and turn the outcome into the run's result;
//! - `runner.rs`: the runner's state, the thread's pointer to it, and scheduling;
//! - `spawn.rs`: creating tasks and retiring them; `pools.rs`: reusing their records;
//! - `run_loop.rs`: the loop itself; `run_queue.rs`: the queue of runnable tasks;
//! - `idle_waiters.rs`: `wait_all_tasks_blocked`'s waiters; `instruments.rs`: the hooks;
//! - `debug_hooks.rs`: slow steps and tracing spans; `console.rs`: tokio-console's spans.
//!
//! The run's structure is Trio's: an *init* task (the root of the task tree) opens the
//! *system nursery*; the main task and every system task are its children. When the main task
//! ends, init cancels the system nursery, waits for the system tasks, and the run ends.

mod config;
#[cfg(feature = "console")]
mod console;
pub(crate) mod debug_hooks;
mod idle_waiters;
pub(crate) mod instruments;
mod pools;
mod run_loop;
mod run_queue;
mod runner;
mod snapshot;
mod spawn;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{Location, resume_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

pub use config::RunConfig;
pub(crate) use runner::{Runner, not_in_run, schedule_point};
pub(crate) use spawn::drop_quietly;

use crate::core::blocked::BlockedOn;
use crate::core::cancel::{CancelReason, ScopeState};
use crate::core::clock::SystemClock;
use crate::core::dump_signal::DumpSignal;
use crate::core::entry::EntryShared;
use crate::core::io::reactor::Reactor;
use crate::core::ki::CtrlC;
use crate::core::nursery::{NurseryInner, NurseryRun, Outcome};
use crate::core::task::{TaskFuture, TaskLabel};
use crate::error::{CancelSource, Error, KeyboardInterrupt, Result, TrioInternalError};
use debug_hooks::DebugHooks;
use instruments::Instruments;
use runner::RunnerParts;

static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `main` as the main task of a new trio run and returns its result.
///
/// The run ends when the main task and every system task have finished. A panic in the main
/// task (or one that reached it from a nursery) resumes here. After Ctrl-C the run cancels
/// everything, lets shielded cleanup run, and returns `Err(KeyboardInterrupt)`. Calling `run`
/// from inside a run is an error.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// let n = trio::run(async {
///     trio::sleep(0.0).await?;
///     Ok(1 + 1)
/// })?;
/// assert_eq!(n, 2);
/// # Ok(())
/// # }
/// ```
#[track_caller]
pub fn run<F, T>(main: F) -> Result<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    run_with(RunConfig::new(), main)
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

fn random_seed() -> u64 {
    if let Some(seed) = std::env::var("TRIO_SEED").ok().and_then(|s| s.parse().ok()) {
        return seed;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT_RUN_ID.load(Ordering::Relaxed));
    h.finish()
}

/// `#[track_caller]` down to `start_tasks`: the main task's spawn site (in task dumps) is
/// where the run was started.
#[track_caller]
fn run_with<F, T>(mut config: RunConfig, main: F) -> Result<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    if let Some(invalid) = config.invalid.take() {
        return Err(invalid);
    }
    if Runner::with_current(|_| ()).is_some() {
        return Err(Error::usage(
            "trio::run was called inside a running trio run; nested runs are not allowed",
        ));
    }
    let run_id = NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed);
    let debug = DebugHooks::new(config.slow_steps);
    let reactor = Reactor::new().map_err(Error::new)?;
    let entry = Arc::new(EntryShared::new(reactor.make_waker()?));
    let root_scope = ScopeState::new();
    root_scope.enter_as_root();
    let runner = Runner::new(RunnerParts {
        run_id,
        seed: config.seed.unwrap_or_else(random_seed),
        clock: config.clock.unwrap_or_else(|| Rc::new(SystemClock::new())),
        reactor,
        entry,
        instruments: Instruments::new(config.instruments, debug.any()),
        debug,
        root_scope,
        system_nursery: NurseryInner::new(),
    });
    let guard = Runner::set_current(&runner);
    *runner.dump_signal.borrow_mut() = config
        .dump_signal
        .and_then(|signal| DumpSignal::install(&runner.reactor, signal));
    runner
        .has_dump_signal
        .set(runner.dump_signal.borrow().is_some());
    let ctrl_c = if config.ctrl_c {
        CtrlC::install(&runner.reactor)
    } else {
        None
    };

    runner.clock.start_clock();
    runner.instruments.before_run();
    let result: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    let loop_result = start_tasks(&runner, main, result.clone())
        .and_then(|()| runner.run_loop(ctrl_c.as_ref(), config.fail_on_deadlock));
    if loop_result.is_err() {
        runner.drop_all_tasks();
    }
    runner.close_entries();
    runner.instruments.after_run();
    let ki_in_teardown = ctrl_c.is_some_and(|ctrl_c| ctrl_c.uninstall(&runner.reactor));
    let dump_signal = runner.dump_signal.borrow_mut().take();
    if let Some(dump_signal) = dump_signal {
        dump_signal.uninstall(&runner.reactor);
    }
    let main_outcome = runner.main_outcome.borrow_mut().take();
    let init_outcome = runner.init_outcome.borrow_mut().take();
    let internal = runner.internal_error.borrow_mut().take();
    let ki = runner.ki_received.get() || ki_in_teardown;
    runner.init_task_rc.borrow_mut().take();
    drop(guard);
    drop(runner);
    loop_result?;
    let value = result.borrow_mut().take();
    run_result(main_outcome, init_outcome, internal, ki, value)
}

/// What `run` returns, from how the main and init tasks ended.
fn run_result<T>(
    main_outcome: Option<Outcome>,
    init_outcome: Option<Outcome>,
    internal: Option<String>,
    ki: bool,
    value: Option<T>,
) -> Result<T> {
    if let Some(Outcome::Panic(payload)) = main_outcome {
        resume_unwind(payload);
    }
    if let Some(message) = internal {
        return Err(Error::new(TrioInternalError { message }));
    }
    match init_outcome {
        Some(Outcome::Panic(payload)) => resume_unwind(payload),
        Some(Outcome::Err(e)) if !e.is_cancelled() => {
            return Err(Error::new(TrioInternalError {
                message: format!("a system task failed: {e}"),
            }));
        }
        _ => {}
    }
    match main_outcome {
        Some(Outcome::Ok) => match value {
            Some(value) if !ki => Ok(value),
            _ => Err(Error::new(KeyboardInterrupt::new())),
        },
        // After Ctrl-C, the main task's error (cleanup that failed) travels inside the
        // KeyboardInterrupt, so neither is lost.
        Some(Outcome::Err(e)) if ki => Err(Error::new(KeyboardInterrupt::carrying(e))),
        Some(Outcome::Err(e)) => Err(e),
        Some(Outcome::Panic(payload)) => resume_unwind(payload),
        None => Err(Error::new(TrioInternalError {
            message: "the main task never finished".into(),
        })),
    }
}

/// Creates the init task (which runs the system nursery) and the main task.
#[track_caller]
fn start_tasks<F, T>(runner: &Runner, main: F, result: Rc<RefCell<Option<T>>>) -> Result<()>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let system = runner.system_nursery.clone();
    let init_future = NurseryRun::for_system(system.clone(), InitBody);
    // The init task has no parent nursery: it lives directly under the root scope.
    let root_holder = NurseryInner::with_scope(runner.root_scope.clone());
    let init = runner.spawn(
        &root_holder,
        TaskFuture::new(init_future),
        TaskLabel::given("<init>".into(), Location::caller()),
        true,
    )?;
    root_holder.remove_child(&init);
    init.parent.borrow_mut().take();
    runner.root_scope.set_owner(init.key);
    runner.init_task.set(Some(init.key));
    *runner.init_task_rc.borrow_mut() = Some(init.clone());
    system.enter_eagerly(runner, runner.root_scope.clone(), init.key);
    // The system nursery is the init task's one child nursery (task trees and dumps walk it).
    init.child_nurseries
        .borrow_mut()
        .push(Rc::downgrade(&system));

    let main_future = async move {
        let value = main.await?;
        *result.borrow_mut() = Some(value);
        Ok(())
    };
    let main_task = runner.spawn(
        &system,
        TaskFuture::new(main_future),
        TaskLabel::given("<main>".into(), Location::caller()),
        false,
    )?;
    runner.main_task.set(Some(main_task.key));
    Ok(())
}

/// The init task's nursery body: wait for the main task, then cancel the system tasks.
struct InitBody;

impl Future for InitBody {
    type Output = Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        let done = Runner::with_current(|runner| {
            if runner.main_outcome.borrow().is_some() {
                runner.system_nursery.scope.cancel(CancelReason {
                    source: CancelSource::Nursery,
                    reason: Some("the main task finished; system tasks are cancelled".into()),
                    task: None,
                });
                true
            } else {
                // For task dumps: init waits for its nursery's children (the main task).
                runner.with_polled_task(|t| t.note_blocked(BlockedOn::Children));
                false
            }
        });
        match done {
            Some(false) => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
}
