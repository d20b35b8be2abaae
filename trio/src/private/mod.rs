//! Support for the macros of `trio-macros`. Not a public API: names here may change in any
//! release. See `docs/macro-contract.md`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::run::Runner;

mod bounds;
mod entry;

pub use bounds::{
    CheckpointError, CheckpointReturn, MainOutput, TestClock, TestOutput, checkpoint_cancelled,
    test_clock,
};
pub use entry::{run_main, run_test, test_config};
pub use inventory;

/// Tells whether the current task yielded to the scheduler since it was created.
#[derive(Debug)]
pub struct ScheduleTracker {
    polls: Option<u64>,
}

impl ScheduleTracker {
    /// Records the current task's poll count.
    pub fn new() -> Self {
        ScheduleTracker {
            polls: Runner::with_current_task(|_, task| task.polls.get()),
        }
    }

    /// Whether the task was polled again since `new` (so a schedule point happened).
    pub fn scheduled(&self) -> bool {
        let now = Runner::with_current_task(|_, task| task.polls.get());
        now != self.polls
    }
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

pin_project_lite::pin_project! {
    /// A `#[trio::wchan]` frame around an async fn body.
    pub struct Wchan<F> {
        label: &'static str,
        #[pin]
        inner: F,
    }
}

/// Wraps an async fn body as a wait-channel frame labelled `label`.
pub fn wchan<F: Future>(label: &'static str, fut: F) -> Wchan<F> {
    Wchan { label, inner: fut }
}

impl<F: Future> Future for Wchan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let depth = Runner::with_current_task(|_, task| {
            let depth = task.wchan_depth.get();
            task.wchan_depth.set(depth + 1);
            depth
        });
        let result = this.inner.poll(cx);
        Runner::with_current_task(|_, task| {
            task.wchan_depth
                .set(task.wchan_depth.get().saturating_sub(1));
            if depth == Some(0) {
                task.wchan.set(if result.is_pending() {
                    Some(*this.label)
                } else {
                    None
                });
            }
        });
        result
    }
}

/// Fixes the output type of a macro-wrapped body (`async move { body }`), so that `?` and
/// `return` inside it convert to the function's declared return type.
pub fn typed_body<R, F: Future<Output = R>>(body: F) -> F {
    body
}
