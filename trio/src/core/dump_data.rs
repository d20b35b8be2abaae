//! A task dump as data: the run's task tree at one moment, with what every task waits for and
//! the cancel scopes it is in, and its text form (`Display`).
//!
//! Built by `snapshot.rs` from the run's state; shown by `task_dump()`, deadlock errors, the
//! dump-on-signal option and `examples/debug.rs`. The types are plain data (no handle into the
//! run), so a tool may keep, compare or serialise them after the run has moved on.

use std::borrow::Cow;
use std::fmt::{self, Write};
use std::panic::Location;

/// The run's task tree at one moment ([`task_dump_data`](crate::lowlevel::task_dump_data)).
///
/// Its `Display` is the text of [`task_dump`](crate::lowlevel::task_dump): one task a line,
/// each nursery's children indented under it, with the wait channels and cancel scopes of each
/// task under its line.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskDump {
    /// The run's clock when the dump was taken ([`current_time`](crate::current_time)).
    pub time: f64,
    /// The root of the tree: trio's init task, parent of the main task and the system tasks.
    pub root: TaskNode,
}

/// One task of a [`TaskDump`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskNode {
    /// [`Task::id`](crate::lowlevel::Task::id).
    pub id: u64,
    /// [`Task::name`](crate::lowlevel::Task::name).
    pub name: String,
    /// Where it was spawned ([`Task::spawn_site`](crate::lowlevel::Task::spawn_site)); for
    /// the main task, where the run was started.
    pub spawn_site: &'static Location<'static>,
    /// What kind of task it is.
    pub kind: TaskKind,
    /// Whether it is running, runnable or blocked.
    pub state: TaskState,
    /// The `#[trio::wchan]` frames it is blocked in, outermost first.
    pub wait_channels: Vec<&'static str>,
    /// The blocking operation it is parked in, when that operation says (every blocking
    /// operation of trio does).
    pub waiting_for: Option<WaitFor>,
    /// The cancel scopes and nurseries this task has entered, outermost first; the tasks of
    /// its nurseries are inside them.
    pub scopes: Vec<ScopeNode>,
}

/// The kind of a task in a [`TaskDump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    /// Trio's own init task, the root of the tree: it runs the system nursery.
    Init,
    /// The main task (what `run` was given).
    Main,
    /// A task started with `spawn_system_task`.
    System,
    /// Any other task.
    Regular,
}

/// Whether a task is running, runnable or blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Being polled now (the task that took the dump).
    Running,
    /// On the run queue: it runs in this batch or the next.
    Runnable,
    /// Waiting to be woken.
    Blocked,
}

/// What a blocked task is parked in: the operation, and details of the primitive's state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WaitFor {
    /// The operation: `Lock::acquire`, `MemoryReceiveChannel::receive`, `sleep`,
    /// `wait_readable`, `nursery`... (a parking lot's label, see
    /// [`ParkingLot::with_label`](crate::lowlevel::ParkingLot::with_label)).
    pub operation: Cow<'static, str>,
    /// The primitive's state: its owner, its statistics, a deadline, an fd.
    pub detail: Option<String>,
}

/// A cancel scope or nursery of a [`TaskDump`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScopeNode {
    /// A plain cancel scope, a nursery, or the private nursery of a `start` call.
    pub kind: ScopeKind,
    /// Seconds from the dump's moment to the scope's deadline (negative once passed); `None`
    /// without a deadline.
    pub deadline_in: Option<f64>,
    /// Whether the scope is shielded.
    pub shield: bool,
    /// Whether the scope itself was cancelled.
    pub cancel_called: bool,
    /// Whether code in the scope is cancelled (by this scope or one outside it).
    pub cancelled: bool,
    /// The scopes and nurseries the same task entered inside this one, outermost first.
    pub scopes: Vec<ScopeNode>,
    /// For a nursery: its child tasks, by id.
    pub tasks: Vec<TaskNode>,
}

/// The kind of a [`ScopeNode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeKind {
    /// A cancel scope (`CancelScope`, a timeout, a sleep's deadline).
    CancelScope,
    /// A nursery.
    Nursery,
    /// The nursery a `Nursery::start` call keeps its task in until `started()`.
    Start,
}

impl TaskDump {
    /// Every task, depth first from the root (a task before the tasks of its nurseries).
    pub fn tasks(&self) -> Vec<&TaskNode> {
        let mut out = Vec::new();
        self.root.collect(&mut out);
        out
    }

    /// The first task (depth first) with this name.
    pub fn find(&self, name: &str) -> Option<&TaskNode> {
        self.tasks().into_iter().find(|t| t.name == name)
    }

    /// How many tasks are running, runnable and blocked.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for task in self.tasks() {
            match task.state {
                TaskState::Running => counts.0 += 1,
                TaskState::Runnable => counts.1 += 1,
                TaskState::Blocked => counts.2 += 1,
            }
        }
        counts
    }
}

impl TaskNode {
    fn collect<'a>(&'a self, out: &mut Vec<&'a TaskNode>) {
        out.push(self);
        for scope in &self.scopes {
            scope.collect(out);
        }
    }

    /// Every task of this task's nurseries (children, grandchildren...), depth first.
    pub fn descendants(&self) -> Vec<&TaskNode> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.remove(0);
        out
    }

    /// The cancel scopes and nurseries around the point where the task is (its innermost
    /// chain of scopes of its own), outermost first.
    pub fn innermost_scopes(&self) -> Vec<&ScopeNode> {
        let mut chain = Vec::new();
        let mut level = &self.scopes;
        while let Some(last) = level.last() {
            chain.push(last);
            level = &last.scopes;
        }
        chain
    }
}

impl ScopeNode {
    fn collect<'a>(&'a self, out: &mut Vec<&'a TaskNode>) {
        for scope in &self.scopes {
            scope.collect(out);
        }
        for task in &self.tasks {
            task.collect(out);
        }
    }
}

impl fmt::Display for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.operation)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Runnable => "runnable",
            TaskState::Blocked => "blocked",
        })
    }
}

/// Seconds as the dumps write them: three decimals.
pub(crate) fn seconds(s: f64) -> String {
    format!("{s:.3} s")
}

impl TaskNode {
    /// The task's line, without indentation: `task 3 "fetch" (spawned at src/main.rs:12:9):
    /// blocked in Lock::acquire (held by task 2 "writer"; 1 waiting)`.
    pub fn summary(&self) -> String {
        let mut line = format!("task {} {:?}", self.id, self.name);
        match self.kind {
            TaskKind::Init => line.push_str(" (trio's own system task)"),
            TaskKind::System => {
                let _ = write!(line, " (system task, spawned at {})", self.spawn_site);
            }
            TaskKind::Main | TaskKind::Regular => {
                let _ = write!(line, " (spawned at {})", self.spawn_site);
            }
        }
        let _ = write!(line, ": {}", self.state);
        if self.state == TaskState::Blocked
            && let Some(wait) = &self.waiting_for
        {
            let _ = write!(line, " in {wait}");
        }
        line
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        let _ = writeln!(out, "{indent}{}", self.summary());
        if !self.wait_channels.is_empty() {
            let _ = writeln!(
                out,
                "{indent}  wait channels: {}",
                self.wait_channels.join(" > ")
            );
        }
        for scope in &self.scopes {
            scope.write(out, depth + 1);
        }
    }
}

impl ScopeNode {
    /// The scope's line, without indentation: `cancel scope: deadline in 2.500 s, shielded`.
    pub fn summary(&self) -> String {
        let mut line = String::from(match self.kind {
            ScopeKind::CancelScope => "cancel scope",
            ScopeKind::Nursery => "nursery",
            ScopeKind::Start => "nursery of a start() call",
        });
        let mut attrs = Vec::new();
        if let Some(d) = self.deadline_in {
            attrs.push(if d >= 0.0 {
                format!("deadline in {}", seconds(d))
            } else {
                format!("deadline passed {} ago", seconds(-d))
            });
        }
        if self.shield {
            attrs.push("shielded".to_string());
        }
        if self.cancel_called {
            attrs.push("cancel called".to_string());
        } else if self.cancelled {
            attrs.push("cancelled from outside".to_string());
        }
        if !attrs.is_empty() {
            let _ = write!(line, ": {}", attrs.join(", "));
        }
        line
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        let _ = writeln!(out, "{indent}{}", self.summary());
        for scope in &self.scopes {
            scope.write(out, depth + 1);
        }
        for task in &self.tasks {
            task.write(out, depth + 1);
        }
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (running, runnable, blocked) = self.counts();
        let mut out = format!(
            "task dump at t={:.3}: {} tasks ({running} running, {runnable} runnable, {blocked} \
             blocked)\n",
            self.time,
            running + runnable + blocked
        );
        self.root.write(&mut out, 0);
        f.write_str(&out)
    }
}
