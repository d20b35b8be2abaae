//! tokio-console's view of a run (feature `console`): the spans and events that
//! `console-subscriber` reads, emitted by trio's own tasks and wakers.
//!
//! tokio-console knows nothing of tokio's internals: it reads `tracing` data shaped by a
//! naming convention, so any runtime that emits the same shapes is observed by it.
//!
//! - **A `runtime.spawn` span per task** (target `runtime::spawn`, no parent), with
//!   `kind = "task"`, `task.name`, `task.id` and the spawn site as `loc.file`, `loc.line`,
//!   `loc.col`. It is entered for each step, which gives the console its poll counts and
//!   busy, idle and scheduled times. These spans never nest: a step runs one task.
//! - **A `runtime::waker` event per waker operation** (`waker.clone`, `waker.drop`,
//!   `waker.wake_by_ref`) whose `task.id` is the id of the task's *span*, the key the
//!   console files them under (`waker.rs`).
//! - **Wake-ups are reported where they happen: when the run schedules a task.** A parking
//!   lot, a deadline or the reactor wakes a task through its key, not through a waker, so
//!   the run reports each scheduling of a waiting task as a `waker.wake_by_ref` (from inside
//!   the task's own step, the console counts it as a self-wake, which a checkpoint is). A
//!   waker woken by value is then reported as dropped, and the wake as the scheduling.
//! - **The run's own hold on a task's waker counts as one.** Trio wakes a blocked task
//!   through its key (a parking lot or the reactor keeps the key, not a clone of the
//!   waker), so the console would see idle tasks with no waker and call each one lost. Each
//!   task's own waker is therefore reported as cloned when the task starts and dropped when
//!   it ends, which is what the run does with it.
//!
//! # Using it
//! Build trio with the `console` feature and install `console-subscriber` as the global
//! subscriber, with `--cfg console_without_tokio_unstable` in `RUSTFLAGS` (it refuses to
//! start otherwise). Its filter lets these names and targets through. The run checks once,
//! at its start, whether a subscriber wants them: a run without one pays nothing more than
//! a run built without the feature.

use std::cell::RefCell;
use std::collections::HashMap;

use tracing::span::EnteredSpan;

use crate::core::task::TaskInner;
use crate::core::waker;

/// The console spans of one run, by task id.
pub(crate) struct ConsoleSpans {
    spans: RefCell<HashMap<u64, tracing::Span>>,
}

impl ConsoleSpans {
    /// The run's console spans, if a subscriber wants them.
    ///
    /// Asked with a probe span named in the console's convention (`runtime.*`), because
    /// console-subscriber filters spans by name; an `enabled!` check carries a name of its
    /// own and would be refused. The console ignores spans it has no use for, as this one.
    pub(crate) fn for_this_run() -> Option<Self> {
        let probe =
            tracing::trace_span!(target: "runtime::spawn", parent: None, "runtime.trio.probe");
        (!probe.is_disabled()).then(|| ConsoleSpans {
            spans: RefCell::new(HashMap::new()),
        })
    }

    /// A task was spawned: its span, and its waker's id and first reference.
    pub(crate) fn task_spawned(&self, task: &TaskInner) {
        let site = task.spawn_site.get();
        let name = task.display_name();
        let span = tracing::trace_span!(
            target: "runtime::spawn",
            parent: None,
            "runtime.spawn",
            kind = "task",
            task.name = %name,
            task.id = task.id,
            loc.file = site.file(),
            loc.line = site.line(),
            loc.col = site.column(),
        );
        if let Some(id) = span.id() {
            waker::set_console_id(&task.waker, id.into_u64());
            waker::report(&task.waker, "waker.clone");
        }
        self.spans.borrow_mut().insert(task.id, span);
    }

    /// A task has ended: the run lets go of its waker, and its span closes.
    pub(crate) fn task_exited(&self, task: &TaskInner) {
        let span = self.spans.borrow_mut().remove(&task.id);
        if span.is_some_and(|span| span.id().is_some()) {
            waker::report(&task.waker, "waker.drop");
            waker::set_console_id(&task.waker, 0);
        }
    }

    /// The run put a task that had already run on its queue: a wake-up.
    pub(crate) fn task_woken(&self, task: &TaskInner) {
        if task.polls.get() > 0 {
            waker::report(&task.waker, "waker.wake_by_ref");
        }
    }

    /// The task's span, entered for one step.
    pub(crate) fn enter(&self, task: &TaskInner) -> Option<EnteredSpan> {
        let span = self.spans.borrow().get(&task.id).cloned()?;
        Some(span.entered())
    }
}
