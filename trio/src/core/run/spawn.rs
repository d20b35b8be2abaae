//! Creating tasks and retiring them: spawn, a task's last step, and dropping a task with its
//! nursery.
//!
//! A task is born in a nursery (`spawn`), runs until its future is ready, and then reports its
//! outcome to that nursery (`finish_task`), which may wake the task waiting on it. A task
//! whose nursery future is dropped is discarded instead (`discard_task`): its future is
//! dropped without running again. Either way the task's parking-lot breakers fire and the
//! instruments hear of the exit.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::runner::Runner;
use crate::core::blocked::BlockedOn;
use crate::core::nursery::{NurseryInner, Outcome};
use crate::core::task::{Task, TaskFuture, TaskInner, TaskLabel};
use crate::error::{Error, Result};

impl Runner {
    /// Creates a task in `nursery` and schedules it.
    pub(crate) fn spawn(
        &self,
        nursery: &Rc<NurseryInner>,
        future: TaskFuture,
        label: TaskLabel,
        system: bool,
    ) -> Result<Rc<TaskInner>> {
        if nursery.closed.get() {
            return Err(Error::usage(
                "this nursery is closed to new tasks (its block has finished)",
            ));
        }
        // A system task starts from the run's context, not its spawner's (Trio's
        // `system_context`): no task-locals.
        let locals = if system {
            None
        } else {
            self.with_polled_task(|t| t.locals.borrow().clone())
                .flatten()
        };
        let mut tasks = self.tasks.borrow_mut();
        let key = tasks.next_key();
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 1);
        let status = nursery.scope.clone();
        let index = status.tasks.borrow().len();
        let spare = self.pools.tasks.borrow_mut().pop();
        let task = match spare {
            Some(mut task) => {
                let Some(inner) = Rc::get_mut(&mut task) else {
                    unreachable!("spare tasks are not shared")
                };
                self.wakers.borrow_mut().rekey(&mut inner.waker, key);
                inner.occupy(
                    id,
                    key,
                    label,
                    future,
                    status.clone(),
                    nursery.clone(),
                    index,
                    locals,
                    system,
                );
                task
            }
            None => Rc::new(TaskInner {
                id,
                key,
                name: RefCell::new(label.name),
                default_name: Cell::new(label.is_type_name),
                spawn_site: Cell::new(label.site),
                future: RefCell::new(Some(future)),
                waker: self.wakers.borrow_mut().make(key),
                scheduled: Cell::new(false),
                current_status: RefCell::new(status.clone()),
                reparented: Cell::new(false),
                parent: RefCell::new(Some(nursery.clone())),
                index_in_parent: Cell::new(index),
                child_nurseries: RefCell::new(Vec::new()),
                locals: RefCell::new(locals),
                polls: Cell::new(0),
                cancel_points: Cell::new(0),
                cancel_yielded_in: Cell::new(u64::MAX),
                blocked_on: Cell::new(BlockedOn::Unknown),
                blocked_at: Cell::new(u64::MAX),
                wchans: RefCell::new(None),
                system,
                finished: Cell::new(false),
                lot_breakers: RefCell::new(Vec::new()),
                cancel_wakers: RefCell::new(Vec::new()),
                lazy_deadline: Cell::new(f64::INFINITY),
                lazy_scope: RefCell::new(None),
            }),
        };
        tasks.insert(task.clone());
        drop(tasks);
        {
            let mut children = status.tasks.borrow_mut();
            if children.capacity() == 0
                && let Some(list) = self.take_spare_child_list()
            {
                *children = list;
            }
            children.push(task.clone());
        }
        if self.instruments.active() {
            let parent = nursery.parent_task.get().and_then(|key| self.task(key));
            self.debug.task_spawned(&task, parent.as_deref());
            self.instruments
                .task_spawned(&Task::from_inner(task.clone()));
            self.schedule(key);
        } else {
            // A new task is known and not scheduled yet: no lookup, no check.
            task.scheduled.set(true);
            self.runq.push(task.clone());
        }
        Ok(task)
    }

    /// Takes a task out of the run without running it again (its nursery is being dropped).
    /// Returns its future, for the caller to drop once it holds no runtime borrows.
    pub(crate) fn discard_task(&self, task: &Rc<TaskInner>) -> Option<TaskFuture> {
        self.tasks.borrow_mut().remove(task.key);
        task.finished.set(true);
        break_lots_of(task);
        if self.instruments.active() {
            self.task_exited_hook(task);
        }
        // A task discarded from inside its own poll (its nursery dropped by itself, through
        // shared ownership) has its future borrowed by `step`, which drops it after the poll.
        task.future.try_borrow_mut().ok().and_then(|mut f| f.take())
    }

    /// Calls the `task_exited` hooks in the task's context (as Trio does: `current_task()`
    /// there is the task that exited), then restores the context of the caller (a task that
    /// drops a nursery discards its children from inside its own step).
    fn task_exited_hook(&self, task: &Rc<TaskInner>) {
        let outer = self.current.replace(Some(std::ptr::NonNull::from(task)));
        self.instruments
            .task_exited(&Task::from_inner(task.clone()));
        self.current.set(outer);
        self.debug.task_exited(task);
    }

    /// The end of a task's last step. Out of line, so the step loop stays small.
    #[inline(never)]
    pub(super) fn finish_step(&self, task: Rc<TaskInner>, outcome: Outcome) {
        self.finish_task(&task, outcome);
        self.recycle_task(task);
    }

    /// Delivers a finished task's outcome to its nursery (or the run) and forgets the task.
    fn finish_task(&self, task: &Rc<TaskInner>, outcome: Outcome) {
        task.finished.set(true);
        self.tasks.borrow_mut().remove(task.key);
        // The task keeps its link to the nursery (Trio keeps upward links after exit).
        let parent = task.parent.borrow().clone();
        if let Some(nursery) = &parent {
            nursery.remove_child(task);
        }
        break_lots_of(task);
        if Some(task.key) == self.main_task.get() {
            *self.main_outcome.borrow_mut() = Some(outcome);
            if let Some(init) = self.init_task.get() {
                self.schedule(init);
            }
        } else if Some(task.key) == self.init_task.get() {
            *self.init_outcome.borrow_mut() = Some(outcome);
            self.init_done.set(true);
            self.loop_attention.set(true);
        } else if let Some(nursery) = &parent {
            nursery.child_finished(outcome, task);
        }
        if let Some(nursery) = &parent {
            nursery.wake_parent_if_done(self);
        }
        task.child_nurseries.borrow_mut().clear();
        // Last, as in Trio: the hooks see the outcome delivered (siblings cancelled, the
        // parent woken).
        if self.instruments.active() {
            self.task_exited_hook(task);
        }
    }

    /// Drops every task that is still alive (after a deadlock or a crash of the loop).
    pub(super) fn drop_all_tasks(&self) {
        loop {
            let task = self.tasks.borrow().iter().next().cloned();
            let Some(task) = task else { break };
            let future = self.discard_task(&task);
            drop_quietly(future);
        }
    }
}

/// Breaks the parking lots registered with `add_parking_lot_breaker` for a task that exits.
/// The check is inlined into every task exit; the rare work is not.
#[inline(always)]
fn break_lots_of(task: &Rc<TaskInner>) {
    if !task.lot_breakers.borrow().is_empty() {
        break_lots_of_slow(task);
    }
}

#[cold]
#[inline(never)]
fn break_lots_of_slow(task: &Rc<TaskInner>) {
    let lots = std::mem::take(&mut *task.lot_breakers.borrow_mut());
    let handle = Task::from_inner(task.clone());
    for lot in lots {
        lot.break_lot(Some(&handle));
    }
}

/// Drops a value, swallowing a panic from its destructor (the task already failed or ended;
/// a panicking destructor must not take the run loop down with it).
#[inline]
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value)));
}
