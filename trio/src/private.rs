//! Support for the macros of `trio-macros`. Not a public API: names here may change in any
//! release. See `docs/macro-contract.md`.

use std::fmt::Debug;
use std::future::Future;

pub use crate::lowlevel::{Wchan, wchan};
use crate::{KeyboardInterrupt, RunConfig};

pub use inventory;

/// What an `async fn main` / test may return.
pub trait MainOutput {
    /// `Err` carries the error's `Debug` text.
    fn into_main_result(self) -> Result<(), String>;
}

impl MainOutput for () {
    fn into_main_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> MainOutput for Result<(), E> {
    fn into_main_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// The body of a `#[trio::main]` function: runs it with Ctrl-C wiring and turns the outcome
/// into the process status (0, 1 with the error on stderr, or 130 after Ctrl-C).
pub fn run_main<F, R>(fut: F)
where
    F: Future<Output = R> + 'static,
    R: MainOutput + 'static,
{
    let outcome = RunConfig::new().run(async move { Ok(fut.await.into_main_result()) });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            eprintln!("Error: {message}");
            std::process::exit(1);
        }
        Err(e) if e.is::<KeyboardInterrupt>() => std::process::exit(130),
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::exit(1);
        }
    }
}

/// The configuration `#[trio::test]` starts from: deadlock detection on, no Ctrl-C handler.
pub fn test_config() -> RunConfig {
    RunConfig::new().fail_on_deadlock(true).ctrl_c(false)
}

/// The body of a `#[trio::test]` function: panics (failing the test) on an error, a
/// deadlock (with a task dump) or an `Err` return.
pub fn run_test<F, R>(config: RunConfig, fut: F)
where
    F: Future<Output = R> + 'static,
    R: MainOutput + 'static,
{
    match config.run(async move { Ok(fut.await.into_main_result()) }) {
        Ok(Ok(())) => {}
        Ok(Err(message)) => panic!("test returned an error: {message}"),
        Err(e) => panic!("trio run failed: {e}"),
    }
}

/// Tells whether the current task yielded to the scheduler since it was created.
#[derive(Debug)]
pub struct ScheduleTracker {
    polls: Option<u64>,
}

impl ScheduleTracker {
    /// Records the current task's schedule-point count.
    pub fn new() -> Self {
        ScheduleTracker {
            polls: current_schedule_points(),
        }
    }

    /// Whether the task was scheduled again since `new` (so a schedule point happened).
    pub fn scheduled(&self) -> bool {
        current_schedule_points() != self.polls
    }
}

fn current_schedule_points() -> Option<u64> {
    crate::lowlevel::current_task()
        .ok()
        .map(|task| task.schedule_points())
}

impl Default for ScheduleTracker {
    fn default() -> Self {
        Self::new()
    }
}

/// A function marked `#[checkpoint]`: the list of them is the list of cancellation points.
#[derive(Debug)]
pub struct CheckpointSite {
    /// The function's name.
    pub function: &'static str,
    /// `module_path!()` where it is defined.
    pub module: &'static str,
    /// `file!()` where it is defined.
    pub file: &'static str,
    /// `line!()` where it is defined.
    pub line: u32,
}

inventory::collect!(CheckpointSite);

/// Fixes the output type of a macro-wrapped body (`async move { body }`), so that `?` and
/// `return` inside it convert to the function's declared return type.
pub fn typed_body<R, F: Future<Output = R>>(body: F) -> F {
    body
}
