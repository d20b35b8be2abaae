//! Instruments: hooks that observe a run (for profiling, tracing, tests).
//!
//! The run loop calls the hooks of every instrument of the run. When there are none, a flag
//! test is all an instrument hook point costs: the loop and the scheduler have uninstrumented
//! copies of their hot paths (`run_loop.rs`, `runner.rs`).
//!
//! An instrument that panics is removed from the run and the panic is reported on stderr;
//! the run goes on, as Trio does with an instrument that raises.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use super::panic_message;
use crate::core::task::Task;

/// Hooks called by the run loop. Every method has an empty default; implement the ones you
/// need. Methods take `&self`: use `Cell`/`RefCell` to record.
pub trait Instrument {
    /// The run is starting.
    fn before_run(&self) {}
    /// The run has finished.
    fn after_run(&self) {}
    /// A task was created.
    fn task_spawned(&self, task: &Task) {
        let _ = task;
    }
    /// A task was put on the run queue.
    fn task_scheduled(&self, task: &Task) {
        let _ = task;
    }
    /// A task is about to run one step. Called in the task's context (as the step hooks
    /// and `task_exited` are): `current_task()` is `task`.
    fn before_task_step(&self, task: &Task) {
        let _ = task;
    }
    /// A task has run one step (after `task_exited`, if that step was its last).
    fn after_task_step(&self, task: &Task) {
        let _ = task;
    }
    /// A task has finished, inside its last step (as in Trio).
    fn task_exited(&self, task: &Task) {
        let _ = task;
    }
    /// The loop is about to wait for I/O for up to `timeout` seconds. Unlike Trio's, the loop
    /// skips the I/O poll between batches of runnable tasks when no task waits for I/O (and
    /// polls only every few batches otherwise), so this fires for the polls that happen, not
    /// on every pass.
    fn before_io_wait(&self, timeout: f64) {
        let _ = timeout;
    }
    /// The loop has waited for I/O.
    fn after_io_wait(&self, timeout: f64) {
        let _ = timeout;
    }
}

/// The instruments of a run.
pub(crate) struct Instruments {
    list: RefCell<Vec<Rc<dyn Instrument>>>,
    active: Cell<bool>,
    /// The run's debugging hooks are on (`debug_hooks.rs`): the instrumented paths stay on
    /// even with no instrument.
    forced: bool,
}

impl Instruments {
    pub(crate) fn new(list: Vec<Rc<dyn Instrument>>, forced: bool) -> Self {
        let active = !list.is_empty() || forced;
        Instruments {
            list: RefCell::new(list),
            active: Cell::new(active),
            forced,
        }
    }

    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.get()
    }

    pub(crate) fn add(&self, instrument: Rc<dyn Instrument>) {
        let mut list = self.list.borrow_mut();
        if !list.iter().any(|i| Rc::ptr_eq(i, &instrument)) {
            list.push(instrument);
        }
        self.active.set(true);
    }

    pub(crate) fn remove(&self, instrument: &Rc<dyn Instrument>) -> bool {
        let mut list = self.list.borrow_mut();
        let before = list.len();
        list.retain(|i| !Rc::ptr_eq(i, instrument));
        self.active.set(!list.is_empty() || self.forced);
        list.len() != before
    }

    fn call(&self, hook: &str, f: impl Fn(&dyn Instrument)) {
        if !self.active.get() || self.list.borrow().is_empty() {
            return;
        }
        let snapshot: Vec<Rc<dyn Instrument>> = self.list.borrow().clone();
        for instrument in snapshot {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&*instrument))) {
                eprintln!(
                    "trio: instrument {hook} hook panicked ({}); the instrument was removed",
                    panic_message(&*payload)
                );
                self.remove(&instrument);
            }
        }
    }

    pub(crate) fn before_run(&self) {
        self.call("before_run", |i| i.before_run());
    }
    pub(crate) fn after_run(&self) {
        self.call("after_run", |i| i.after_run());
    }
    pub(crate) fn task_spawned(&self, t: &Task) {
        self.call("task_spawned", |i| i.task_spawned(t));
    }
    pub(crate) fn task_scheduled(&self, t: &Task) {
        self.call("task_scheduled", |i| i.task_scheduled(t));
    }
    pub(crate) fn before_task_step(&self, t: &Task) {
        self.call("before_task_step", |i| i.before_task_step(t));
    }
    pub(crate) fn after_task_step(&self, t: &Task) {
        self.call("after_task_step", |i| i.after_task_step(t));
    }
    pub(crate) fn task_exited(&self, t: &Task) {
        self.call("task_exited", |i| i.task_exited(t));
    }
    pub(crate) fn before_io_wait(&self, timeout: f64) {
        self.call("before_io_wait", |i| i.before_io_wait(timeout));
    }
    pub(crate) fn after_io_wait(&self, timeout: f64) {
        self.call("after_io_wait", |i| i.after_io_wait(timeout));
    }
}
