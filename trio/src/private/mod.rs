//! Support for the macros of `trio-macros`. Not a public API: names here may change in any
//! release. See `docs/macro-contract.md`.

use std::future::Future;

pub use crate::lowlevel::{Wchan, wchan};

mod bounds;
mod entry;

pub use bounds::{
    CheckpointError, CheckpointReturn, MainOutput, TestClock, TestOutput, checkpoint_cancelled,
    test_clock,
};
pub use entry::{run_main, run_main_with, run_test, test_config};
pub use inventory;

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

/// For tests of the fallback on Linux: children spawned from now on are waited for by a
/// waiter thread instead of a pidfd (`true`), or by a pidfd again where the kernel has them.
pub fn force_process_waiter_thread(force: bool) {
    crate::process::force_waiter_thread(force);
}
