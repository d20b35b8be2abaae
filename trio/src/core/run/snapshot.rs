//! Taking a task dump: the run's task tree, read from the cancel-scope tree, as data
//! (`dump_data.rs`).
//!
//! The tree is walked from the root scope. Every node of the cancel-scope tree knows the task
//! that entered it (its owner), so a task's own scopes are the nodes under its base (its
//! nursery's scope) that it owns, and their nodes it owns in turn; a node that is the scope of
//! one of the task's open nurseries is shown as that nursery, with the nursery's child tasks
//! inside it. Each nursery's nodes are grouped by owner once, so a nursery of 10,000 tasks is
//! walked in linear time.
//!
//! What a blocked task waits for comes from the record its blocking operation left
//! (`blocked.rs`), described now: a lot's label and describer, a sleep's deadline in seconds
//! from now, an fd, the nursery children still running.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use super::runner::Runner;
use crate::core::blocked::BlockedOn;
use crate::core::cancel::ScopeState;
use crate::core::dump_data::{
    ScopeKind, ScopeNode, TaskDump, TaskKind, TaskNode, TaskState, WaitFor, seconds,
};
use crate::core::nursery::NurseryInner;
use crate::core::task::{TaskInner, TaskKey};

/// How many children a "waiting for children" line names before "and N more".
const NAMED_CHILDREN: usize = 3;

/// What one walk needs at hand.
struct Walk<'a> {
    runner: &'a Runner,
    now: f64,
    current: Option<TaskKey>,
}

impl Runner {
    /// The task tree now, as data. `None` before the init task exists.
    pub(crate) fn snapshot(&self) -> Option<TaskDump> {
        let root = self.root_task()?;
        let walk = Walk {
            runner: self,
            now: self.current_time(),
            current: self.with_polled_task(|t| t.key),
        };
        let mut owned = group_by_owner(&self.root_scope);
        let scopes = owned.remove(&root.key).unwrap_or_default();
        Some(TaskDump {
            time: walk.now,
            root: walk.task(&root, scopes),
        })
    }

    /// The task tree now, as text (what `task_dump()` returns).
    pub(crate) fn dump_text(&self) -> String {
        match self.snapshot() {
            Some(dump) => dump.to_string(),
            None => "task dump: the run has no tasks yet\n".to_string(),
        }
    }
}

/// The nodes under `node`, grouped by the task that entered them.
fn group_by_owner(node: &ScopeState) -> HashMap<TaskKey, Vec<Rc<ScopeState>>> {
    let mut groups: HashMap<TaskKey, Vec<Rc<ScopeState>>> = HashMap::new();
    for child in node.child_nodes() {
        if let Some(owner) = child.owner() {
            groups.entry(owner).or_default().push(child);
        }
    }
    groups
}

impl Walk<'_> {
    /// `task`, with `scopes` the nodes under its base that it entered.
    fn task(&self, task: &Rc<TaskInner>, scopes: Vec<Rc<ScopeState>>) -> TaskNode {
        let nurseries: Vec<Rc<NurseryInner>> = task
            .child_nurseries
            .borrow()
            .iter()
            .filter_map(std::rc::Weak::upgrade)
            .filter(|n| !n.closed.get())
            .collect();
        let kind = if Some(task.key) == self.runner.init_task.get() {
            TaskKind::Init
        } else if Some(task.key) == self.runner.main_task.get() {
            TaskKind::Main
        } else if task.system {
            TaskKind::System
        } else {
            TaskKind::Regular
        };
        let state = if self.current == Some(task.key) {
            TaskState::Running
        } else if task.scheduled.get() {
            TaskState::Runnable
        } else {
            TaskState::Blocked
        };
        let (waiting_for, wait_channels) = if state == TaskState::Blocked {
            (self.waiting_for(task, &nurseries), task.blocked_wchans())
        } else {
            (None, Vec::new())
        };
        TaskNode {
            id: task.id,
            name: task.display_name(),
            spawn_site: task.spawn_site.get(),
            kind,
            state,
            wait_channels,
            waiting_for,
            scopes: scopes
                .iter()
                .map(|s| self.scope(s, task.key, &nurseries))
                .collect(),
        }
    }

    /// A node `owner` entered, with what it entered inside it (and, for a nursery, its tasks).
    fn scope(
        &self,
        node: &Rc<ScopeState>,
        owner: TaskKey,
        nurseries: &[Rc<NurseryInner>],
    ) -> ScopeNode {
        let nursery = nurseries.iter().find(|n| Rc::ptr_eq(&n.scope, node));
        let mut groups = group_by_owner(node);
        let own = groups.remove(&owner).unwrap_or_default();
        let scopes = own
            .iter()
            .map(|s| self.scope(s, owner, nurseries))
            .collect();
        let mut tasks: Vec<TaskNode> = Vec::new();
        let kind = match nursery {
            None => ScopeKind::CancelScope,
            Some(n) => {
                let mut children: Vec<Rc<TaskInner>> = n.scope.tasks.borrow().clone();
                children.sort_by_key(|t| t.id);
                tasks = children
                    .iter()
                    .map(|child| {
                        let scopes = groups.remove(&child.key).unwrap_or_default();
                        self.task(child, scopes)
                    })
                    .collect();
                if n.is_start {
                    ScopeKind::Start
                } else {
                    ScopeKind::Nursery
                }
            }
        };
        let deadline = node.deadline();
        ScopeNode {
            kind,
            deadline_in: deadline.is_finite().then_some(deadline - self.now),
            shield: node.shield.get(),
            cancel_called: node.cancel_called.get(),
            cancelled: node.is_cancelled(),
            scopes,
            tasks,
        }
    }

    /// What a blocked task waits for, from the record its operation left.
    fn waiting_for(&self, task: &TaskInner, nurseries: &[Rc<NurseryInner>]) -> Option<WaitFor> {
        let wait = |operation: &'static str, detail: Option<String>| {
            Some(WaitFor {
                operation: Cow::Borrowed(operation),
                detail,
            })
        };
        match task.blocked_record() {
            BlockedOn::Unknown => None,
            BlockedOn::Lot(info) => {
                // SAFETY: the record is current (its poll count matches, and the task is
                // blocked: the caller checked), so the park that wrote it is still queued
                // in this lot and holds it alive (`blocked.rs`, Safety).
                let info = unsafe { info.as_ref() };
                wait(info.label(), info.detail())
            }
            BlockedOn::Sleep { deadline } if deadline.is_finite() => wait(
                "sleep",
                Some(format!(
                    "until t={deadline:.3}, {} from now",
                    seconds(deadline - self.now)
                )),
            ),
            BlockedOn::Sleep { .. } => wait("sleep_forever", None),
            BlockedOn::Io { fd, writable } => wait(
                if writable {
                    "wait_writable"
                } else {
                    "wait_readable"
                },
                Some(format!("fd {fd}")),
            ),
            BlockedOn::FdReady { fd, writable } => wait(
                if writable {
                    "I/O (fd writable)"
                } else {
                    "I/O (fd readable)"
                },
                Some(format!("fd {fd}")),
            ),
            BlockedOn::Children => {
                let nursery = nurseries.iter().rev().find(|n| !n.is_start);
                let children = nursery
                    .map(|n| n.scope.tasks.borrow().clone())
                    .unwrap_or_default();
                wait("nursery", Some(children_line(&children)))
            }
            BlockedOn::Start => {
                let starting: Vec<Rc<TaskInner>> = nurseries
                    .iter()
                    .filter(|n| n.is_start)
                    .flat_map(|n| n.scope.tasks.borrow().clone())
                    .collect();
                let detail = match starting.as_slice() {
                    [task] => format!(
                        "waiting for task {} {:?} to call started()",
                        task.id,
                        task.display_name()
                    ),
                    _ => "waiting for its task to call started()".to_string(),
                };
                wait("Nursery::start", Some(detail))
            }
            BlockedOn::AllTasksBlocked => wait("wait_all_tasks_blocked", None),
        }
    }
}

/// "waiting for 2 children: task 4 "a", task 5 "b"".
fn children_line(children: &[Rc<TaskInner>]) -> String {
    let mut sorted: Vec<&Rc<TaskInner>> = children.iter().collect();
    sorted.sort_by_key(|t| t.id);
    let named: Vec<String> = sorted
        .iter()
        .take(NAMED_CHILDREN)
        .map(|t| format!("task {} {:?}", t.id, t.display_name()))
        .collect();
    let count = children.len();
    let noun = if count == 1 { "child" } else { "children" };
    let mut line = format!("waiting for {count} {noun}: {}", named.join(", "));
    if count > NAMED_CHILDREN {
        line.push_str(&format!(" and {} more", count - NAMED_CHILDREN));
    }
    line
}
