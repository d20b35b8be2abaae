//! Task dumps: the task tree as text, for deadlock reports and debugging.

use std::fmt::Write;
use std::rc::Rc;

use super::run::Runner;
use super::task::{TaskInner, TaskKey};

/// The run's task tree, one task a line, children indented under their nurseries.
pub(crate) fn task_tree(runner: &Runner) -> String {
    let mut out = String::from("task tree:\n");
    let init = runner.init_task_rc.borrow().clone();
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
        task.name.borrow()
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
