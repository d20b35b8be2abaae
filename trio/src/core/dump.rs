//! Task dumps: the task tree as text, for deadlock reports and debugging, and the wait-channel
//! frames (`#[trio::wchan]`) that say what a blocked task waits for.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::run::Runner;
use super::task::{TaskInner, TaskKey};

/// The run's task tree, one task a line, children indented under their nurseries.
pub(crate) fn task_tree(runner: &Runner) -> String {
    let mut out = String::from("task tree:\n");
    let init = runner.root_task();
    let current = runner.with_polled_task(|t| t.key);
    if let Some(init) = init {
        write_task(&mut out, &init, 1, current);
    }
    out
}

fn write_task(out: &mut String, task: &Rc<TaskInner>, depth: usize, current: Option<TaskKey>) {
    let indent = "  ".repeat(depth);
    let state = if current == Some(task.key) {
        "running".to_string()
    } else if task.scheduled.get() {
        "runnable".to_string()
    } else {
        match task.wchan.get() {
            Some(wchan) => format!("blocked in {wchan}"),
            None => "blocked".to_string(),
        }
    };
    let _ = writeln!(
        out,
        "{indent}task {} {:?}: {state}",
        task.id,
        task.display_name()
    );
    let nurseries: Vec<_> = task
        .child_nurseries
        .borrow()
        .iter()
        .filter_map(|n| n.upgrade())
        .filter(|n| !n.closed.get())
        .collect();
    for nursery in nurseries {
        let _ = writeln!(out, "{indent}  nursery:");
        let children: Vec<_> = nursery.scope.tasks.borrow().clone();
        for child in children {
            write_task(out, &child, depth + 2, current);
        }
    }
}

pin_project_lite::pin_project! {
    /// A `#[trio::wchan]` frame around an async fn body: while the task is blocked inside
    /// it (and inside no outer frame), the frame's label is the task's wait channel in dumps.
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
