//! Task dumps for tasks to take (`task_dump`, `task_dump_data`), and the wait-channel frames
//! (`#[trio::wchan]`) that say what a blocked task is doing in its own terms.
//!
//! The dump itself is taken by the run (`run/snapshot.rs`), which the loop also uses for
//! deadlock reports and the dump on a signal; its types and text are in `dump_data.rs`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::dump_data::TaskDump;
use super::run::{Runner, not_in_run};
use crate::error::Result;

/// The current run's task tree as text: every task in its nursery, with its name, spawn site,
/// state, what it is blocked in, its wait channels and its cancel scopes (see [`TaskDump`]
/// for the layout). Fails outside a run. Not a checkpoint.
///
/// ```
/// use trio::lowlevel::{task_dump, wait_all_tasks_blocked};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let lock = trio::Lock::new();
///     let _held = lock.lock().await?;
///     trio::open_nursery(|nursery| async move {
///         let waiter = lock.clone();
///         nursery.start_soon_named("waiter", async move { waiter.acquire().await })?;
///         wait_all_tasks_blocked().await?;
///         let dump = task_dump()?;
///         assert!(dump.contains(r#"task 2 "waiter""#), "{dump}");
///         assert!(dump.contains(r#": blocked in Lock::acquire (held by task 1 "<main>"; 1 waiting)"#), "{dump}");
///         nursery.cancel_scope().cancel();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
pub fn task_dump() -> Result<String> {
    Runner::with_current(Runner::dump_text).ok_or_else(|| not_in_run("task_dump"))
}

/// The current run's task tree as data, for tools: [`TaskDump`]. Fails outside a run. Not a
/// checkpoint.
pub fn task_dump_data() -> Result<TaskDump> {
    Runner::with_current(Runner::snapshot)
        .flatten()
        .ok_or_else(|| not_in_run("task_dump_data"))
}

pin_project_lite::pin_project! {
    /// A `#[trio::wchan]` frame around an async fn body: while the task is blocked inside
    /// it, the frame's label is one of the task's wait channels in dumps (outermost first).
    #[must_use = "futures do nothing unless awaited"]
    pub struct Wchan<F> {
        label: &'static str,
        #[pin]
        inner: F,
    }
}

/// Wraps an async fn body as a wait-channel frame labelled `label` (what `#[trio::wchan]`
/// expands to).
///
/// # Checkpoint
/// As the body: the frame adds no checkpoint.
///
/// # Cancel safety
/// As the body.
pub fn wchan<F: Future>(label: &'static str, fut: F) -> Wchan<F> {
    Wchan { label, inner: fut }
}

/// Pops the frame pushed by `Wchan::poll` (also if the body panics).
struct FrameGuard {
    pending: bool,
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        let pending = self.pending;
        Runner::with_current_task(|_, task| {
            let polls = task.polls.get();
            if let Some(frames) = task.wchans.borrow_mut().as_mut() {
                // The innermost frame to return `Pending` in this poll takes the picture;
                // the frames outside it are in it already.
                if pending && frames.blocked_at != polls {
                    frames.blocked.clear();
                    frames.blocked.extend_from_slice(&frames.live);
                    frames.blocked_at = polls;
                }
                frames.live.pop();
            }
        });
    }
}

impl<F: Future> Future for Wchan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let label = *this.label;
        Runner::with_current_task(|_, task| {
            task.wchans
                .borrow_mut()
                .get_or_insert_with(Default::default)
                .live
                .push(label);
        });
        let mut guard = FrameGuard { pending: false };
        let result = this.inner.poll(cx);
        guard.pending = result.is_pending();
        drop(guard);
        result
    }
}
