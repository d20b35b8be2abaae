//! The run's debugging hooks: slow-step detection and, with the `tracing` feature, a span per
//! task and events for what goes wrong.
//!
//! Both ride on the instrumented copy of the loop's hot paths (`run_loop.rs`, `runner.rs`,
//! `spawn.rs`): a run with either on is an instrumented run, so a run with neither pays nothing
//! for them, not even a flag test beyond the one the instruments already have.
//!
//! - **Slow steps.** A step that runs longer than the threshold blocks every other task for
//!   that long (tokio#4730's ask). Each instrumented step reads the monotonic clock before and
//!   after the poll, and reports a step over the threshold with the task's name, spawn site and
//!   the step's duration: to stderr, to a callback, and as a `tracing` event.
//! - **tracing** (feature `tracing`): every task gets a span named `task` with its name and id,
//!   whose parent is the span of the task that opened its nursery, so the spans form the task
//!   tree; the span is entered for each step. Cancellations (with their reason), nursery
//!   failures and slow steps are events (`cancel.rs`, `nursery.rs`, here).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::core::task::{Task, TaskInner};

/// A task step that ran longer than the slow-step threshold
/// ([`RunConfig::detect_slow_steps`](crate::RunConfig::detect_slow_steps)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SlowStep {
    /// The task that blocked the loop (its name and spawn site say where).
    pub task: Task,
    /// How long the step ran.
    pub duration: Duration,
    /// The threshold it went over.
    pub threshold: Duration,
}

impl std::fmt::Display for SlowStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trio: slow step: task {} {:?} (spawned at {}) ran for {:.3} s without yielding \
             (threshold {:.3} s); every other task waited that long",
            self.task.id(),
            self.task.name(),
            self.task.spawn_site(),
            self.duration.as_secs_f64(),
            self.threshold.as_secs_f64()
        )
    }
}

/// What to do with a slow step.
pub(crate) type SlowStepReport = Rc<dyn Fn(&SlowStep)>;

/// The slow-step settings of a run.
pub(crate) struct SlowSteps {
    pub(crate) threshold: Duration,
    /// `None`: print to stderr.
    pub(crate) report: Option<SlowStepReport>,
}

/// The debugging hooks of one run.
pub(crate) struct DebugHooks {
    slow_steps: Option<SlowSteps>,
    #[cfg(feature = "tracing")]
    spans: Option<RefCell<std::collections::HashMap<u64, tracing::Span>>>,
    #[cfg(not(feature = "tracing"))]
    spans: Option<RefCell<()>>,
    #[cfg(feature = "console")]
    console: Option<super::console::ConsoleSpans>,
}

/// What `before_step` started, for `after_step` to finish.
pub(crate) struct StepWatch {
    started: Option<Instant>,
    #[cfg(feature = "tracing")]
    _entered: Option<tracing::span::EnteredSpan>,
    #[cfg(feature = "console")]
    _console: Option<tracing::span::EnteredSpan>,
}

impl DebugHooks {
    pub(crate) fn new(slow_steps: Option<SlowSteps>) -> Self {
        DebugHooks {
            slow_steps,
            spans: tracing_spans(),
            #[cfg(feature = "console")]
            console: super::console::ConsoleSpans::for_this_run(),
        }
    }

    /// Whether any hook is on: the run must take its instrumented paths.
    pub(crate) fn any(&self) -> bool {
        #[cfg(feature = "console")]
        if self.console.is_some() {
            return true;
        }
        self.slow_steps.is_some() || self.spans.is_some()
    }

    /// A task was spawned in a nursery opened by `parent` (`None`: the init task).
    pub(crate) fn task_spawned(&self, task: &TaskInner, parent: Option<&TaskInner>) {
        #[cfg(feature = "console")]
        if let Some(console) = &self.console {
            console.task_spawned(task);
        }
        #[cfg(feature = "tracing")]
        if let Some(spans) = &self.spans {
            let mut spans = spans.borrow_mut();
            let parent = parent.and_then(|p| spans.get(&p.id)).cloned();
            let name = task.display_name();
            let span = match parent {
                Some(parent) => tracing::info_span!(
                    target: "trio::task", parent: &parent, "task", name = %name, id = task.id
                ),
                None => tracing::info_span!(
                    target: "trio::task", parent: None, "task", name = %name, id = task.id
                ),
            };
            spans.insert(task.id, span);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (task, parent);
    }

    /// A task was put on the run queue.
    #[inline]
    pub(crate) fn task_scheduled(&self, task: &TaskInner) {
        #[cfg(feature = "console")]
        if let Some(console) = &self.console {
            console.task_woken(task);
        }
        #[cfg(not(feature = "console"))]
        let _ = task;
    }

    /// A task has exited: its span closes.
    pub(crate) fn task_exited(&self, task: &TaskInner) {
        #[cfg(feature = "console")]
        if let Some(console) = &self.console {
            console.task_exited(task);
        }
        #[cfg(feature = "tracing")]
        if let Some(spans) = &self.spans {
            let span = spans.borrow_mut().remove(&task.id);
            drop(span);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = task;
    }

    /// Before a step: the clock, and the task's span entered.
    #[inline]
    pub(crate) fn before_step(&self, task: &TaskInner) -> StepWatch {
        #[cfg(not(feature = "tracing"))]
        let _ = task;
        // The console's span is entered first, so that trio's task span is the current one
        // (the one events and child spans hang from) and the two exit in reverse order
        // (`_entered` is dropped first).
        #[cfg(feature = "console")]
        let console = self.console.as_ref().and_then(|c| c.enter(task));
        StepWatch {
            started: self.slow_steps.as_ref().map(|_| Instant::now()),
            #[cfg(feature = "tracing")]
            _entered: self.spans.as_ref().and_then(|spans| {
                let span = spans.borrow().get(&task.id).cloned()?;
                Some(span.entered())
            }),
            #[cfg(feature = "console")]
            _console: console,
        }
    }

    /// After a step: report it if it was slow.
    #[inline]
    pub(crate) fn after_step(&self, watch: StepWatch, task: &Rc<TaskInner>) {
        let (Some(started), Some(slow)) = (watch.started, &self.slow_steps) else {
            return;
        };
        let duration = started.elapsed();
        if duration <= slow.threshold {
            return;
        }
        let step = SlowStep {
            task: Task::from_inner(task.clone()),
            duration,
            threshold: slow.threshold,
        };
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "trio::slow_step",
            task = %step.task.name(),
            id = step.task.id(),
            spawn_site = %step.task.spawn_site(),
            seconds = duration.as_secs_f64(),
            "slow step: the task ran without yielding and every other task waited"
        );
        match &slow.report {
            Some(report) => report(&step),
            None => eprintln!("{step}"),
        }
        // `watch` (the task's span, entered) lasts until here: the report is inside it.
    }
}

/// The span table, if this run traces: built with the `tracing` feature, and only when a
/// subscriber wants trio's task spans.
#[cfg(feature = "tracing")]
fn tracing_spans() -> Option<RefCell<std::collections::HashMap<u64, tracing::Span>>> {
    tracing::enabled!(target: "trio::task", tracing::Level::INFO)
        .then(|| RefCell::new(std::collections::HashMap::new()))
}

#[cfg(not(feature = "tracing"))]
fn tracing_spans() -> Option<RefCell<()>> {
    None
}
