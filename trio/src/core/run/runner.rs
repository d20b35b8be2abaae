//! The state of one run (`Runner`), how the thread finds it, and how tasks are scheduled.
//!
//! One thread drives one run, and the runner is reached through a thread-local pointer that
//! `run` sets for the duration of the run. Everything in it sits in cells and is only ever
//! used through `&Runner`: a task's poll, a waker, a parking lot and the loop itself all reach
//! the same state, one at a time, on one thread.
//!
//! The runner owns the drivers (reactor, deadlines, entry queue) and the pools; the loop
//! (`run_loop.rs`) drives them, and `spawn.rs` creates and retires tasks.
//!
//! # Safety
//!
//! Two raw pointers are dereferenced here: the thread's current runner (set by `run_with` to a
//! boxed runner it keeps alive and unmoved until the pointer is cleared) and the current task
//! (set by `step` to a handle it holds only while it polls that task and runs its step hooks, and
//! by `task_exited_hook` to a handle it borrows only while the exit hooks run). Both are only
//! read on the run's thread and neither reference leaves the closure it is lent to.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use super::debug_hooks::DebugHooks;
use super::idle_waiters::IdleWaiters;
use super::instruments::Instruments;
use super::pools::Pools;
use super::run_queue::RunQueue;
use crate::core::cancel::{CancelReason, ScopeState};
use crate::core::clock::Clock;
use crate::core::deadlines::Deadlines;
use crate::core::dump_signal::DumpSignal;
use crate::core::entry::EntryShared;
use crate::core::io::reactor::Reactor;
use crate::core::nursery::{NurseryInner, Outcome};
use crate::core::storage::RunValues;
use crate::core::task::{Task, TaskInner, TaskKey, TaskTable};
use crate::core::waker::WakerPool;
use crate::error::{CancelSource, Error};

thread_local! {
    static CURRENT: Cell<*const Runner> = const { Cell::new(std::ptr::null()) };
}

/// The schedule point of a checkpoint: the task being polled goes back on the run queue (or,
/// under a combinator's waker, that waker is woken). The caller returns `Pending`.
#[inline]
pub(crate) fn schedule_point(cx: &std::task::Context<'_>) {
    if !Runner::with_current(|runner| runner.reschedule_current(cx.waker())).unwrap_or(false) {
        cx.waker().wake_by_ref();
    }
}

/// The error for a trio function used outside `trio::run`.
pub(crate) fn not_in_run(what: &str) -> Error {
    Error::usage(format!(
        "{what} must be called from inside trio::run (no trio run is active on this thread)"
    ))
}

/// The state of one run.
pub(crate) struct Runner {
    pub(crate) run_id: u64,
    pub(super) tasks: RefCell<TaskTable>,
    pub(super) runq: RunQueue,
    pub(super) wakers: RefCell<WakerPool>,
    /// The task being polled: points at `step`'s own handle to it, only while `step` polls it.
    /// A pointer rather than an `Option<Rc>` in a `RefCell`, so that setting it costs no
    /// reference counting and reading it (every checkpoint, park and spawn) no borrow flag.
    pub(super) current: Cell<Option<NonNull<Rc<TaskInner>>>>,
    pub(super) clock: Rc<dyn Clock>,
    pub(super) deadlines: RefCell<Deadlines<ScopeState>>,
    pub(super) reactor: Reactor,
    pub(super) entry: Arc<EntryShared>,
    pub(super) instruments: Instruments,
    /// Slow-step detection and tracing (`debug_hooks.rs`), on the instrumented paths.
    pub(super) debug: DebugHooks,
    /// The dump-on-signal handler, if the run has one (`dump_signal.rs`), and whether it
    /// does (tested without a borrow on the loop's slow path).
    pub(super) dump_signal: RefCell<Option<DumpSignal>>,
    pub(super) has_dump_signal: Cell<bool>,
    rng: Cell<u64>,
    /// Random bits not used yet, above a sentinel 1 bit (`coin_flip`).
    coin_bits: Cell<u64>,
    pub(super) seed: u64,
    pub(super) idle_waiters: IdleWaiters,
    pub(super) next_task_id: Cell<u64>,
    pub(super) root_scope: Rc<ScopeState>,
    pub(super) system_nursery: Rc<NurseryInner>,
    pub(super) init_task: Cell<Option<TaskKey>>,
    pub(super) main_task: Cell<Option<TaskKey>>,
    pub(super) init_task_rc: RefCell<Option<Rc<TaskInner>>>,
    pub(super) main_outcome: RefCell<Option<Outcome>>,
    pub(super) init_outcome: RefCell<Option<Outcome>>,
    /// Whether `init_outcome` is set: the run is over (a flag, so the loop need not borrow).
    pub(super) init_done: Cell<bool>,
    /// False only while the run is not over, no deadline is registered and the reactor has no
    /// waiters, so the loop's fast path tests one flag for all three. Set with `init_done`, by
    /// every deadline registration and every new I/O waiter; recomputed by the loop's slow
    /// path before each batch it runs.
    pub(super) loop_attention: Cell<bool>,
    pub(super) run_values: RunValues,
    pub(super) internal_error: RefCell<Option<String>>,
    pub(super) ki_received: Cell<bool>,
    pub(super) batches_since_io: Cell<u32>,
    pub(super) pools: Pools,
    /// Work outside the run that tasks wait for (`lowlevel::ExternalWait`): while it is not
    /// zero the loop does not idle (no `wait_all_tasks_blocked` wake-ups, no autojump, no
    /// deadlock). Shared with the guards, which may outlive the run.
    pub(super) external_waits: Rc<Cell<usize>>,
}

/// Everything a runner starts from; the rest of its state starts empty.
pub(super) struct RunnerParts {
    pub(super) run_id: u64,
    pub(super) seed: u64,
    pub(super) clock: Rc<dyn Clock>,
    pub(super) reactor: Reactor,
    pub(super) entry: Arc<EntryShared>,
    pub(super) instruments: Instruments,
    pub(super) debug: DebugHooks,
    pub(super) root_scope: Rc<ScopeState>,
    pub(super) system_nursery: Rc<NurseryInner>,
}

/// Clears the thread's current-run pointer when the run ends, also by unwinding.
pub(super) struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

impl Runner {
    pub(super) fn new(parts: RunnerParts) -> Box<Runner> {
        let RunnerParts {
            run_id,
            seed,
            clock,
            reactor,
            entry,
            instruments,
            debug,
            root_scope,
            system_nursery,
        } = parts;
        Box::new(Runner {
            run_id,
            tasks: RefCell::new(TaskTable::default()),
            runq: RunQueue::new(),
            wakers: RefCell::new(WakerPool::new(run_id, entry.clone())),
            current: Cell::new(None),
            clock,
            deadlines: RefCell::new(Deadlines::default()),
            reactor,
            entry,
            instruments,
            debug,
            dump_signal: RefCell::new(None),
            has_dump_signal: Cell::new(false),
            rng: Cell::new(seed | 1),
            coin_bits: Cell::new(1),
            seed,
            idle_waiters: IdleWaiters::default(),
            next_task_id: Cell::new(0),
            root_scope,
            system_nursery,
            init_task: Cell::new(None),
            main_task: Cell::new(None),
            init_task_rc: RefCell::new(None),
            main_outcome: RefCell::new(None),
            init_outcome: RefCell::new(None),
            init_done: Cell::new(false),
            loop_attention: Cell::new(true),
            run_values: RunValues::default(),
            internal_error: RefCell::new(None),
            ki_received: Cell::new(false),
            batches_since_io: Cell::new(0),
            pools: Pools::default(),
            external_waits: Rc::new(Cell::new(0)),
        })
    }

    /// Makes `runner` the thread's current run until the guard is dropped.
    pub(super) fn set_current(runner: &Runner) -> CurrentGuard {
        CURRENT.with(|c| c.set(runner));
        CurrentGuard(())
    }

    /// Calls `f` with the run active on this thread, if there is one.
    #[inline(always)]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Runner) -> R) -> Option<R> {
        let ptr = CURRENT.with(Cell::get);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: see the module docs: `run_with` keeps the boxed runner alive and unmoved
        // while the pointer is set, and only this thread reads it. The runner is only reached
        // through shared references; its state is in cells.
        Some(f(unsafe { &*ptr }))
    }

    /// Calls `f` with the run and the task being polled, if a task is being polled.
    #[inline(always)]
    pub(crate) fn with_current_task<R>(f: impl FnOnce(&Runner, &Rc<TaskInner>) -> R) -> Option<R> {
        Self::with_current(|runner| runner.with_polled_task(|task| f(runner, task))).flatten()
    }

    /// Calls `f` with the task being polled, if one is.
    #[inline(always)]
    pub(crate) fn with_polled_task<R>(&self, f: impl FnOnce(&Rc<TaskInner>) -> R) -> Option<R> {
        let ptr = self.current.get()?;
        // SAFETY: see the module docs: `step` and `task_exited_hook` point `current` at a
        // handle they hold for as long as it is set, on this thread, and the reference does
        // not leave `f`.
        Some(f(unsafe { ptr.as_ref() }))
    }

    pub(crate) fn current_time(&self) -> f64 {
        self.clock.current_time()
    }

    pub(crate) fn current_task_name(&self) -> Option<String> {
        self.with_polled_task(|t| t.display_name())
    }

    /// The run's clock.
    pub(crate) fn clock(&self) -> &Rc<dyn Clock> {
        &self.clock
    }

    /// The seed of the run's scheduling order.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The run's reactor (the I/O driver).
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// The thread-safe half of the run (the entry queue).
    pub(crate) fn entry(&self) -> &Arc<EntryShared> {
        &self.entry
    }

    /// The run's instruments.
    pub(crate) fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    /// The count of external waits in flight (`lowlevel::ExternalWait`).
    pub(crate) fn external_waits(&self) -> &Rc<Cell<usize>> {
        &self.external_waits
    }

    /// The run-local values (`RunVar`).
    pub(crate) fn run_values(&self) -> &RunValues {
        &self.run_values
    }

    /// The init task: the root of the task tree.
    pub(crate) fn root_task(&self) -> Option<Rc<TaskInner>> {
        self.init_task_rc.borrow().clone()
    }

    /// The nursery system tasks live in.
    pub(crate) fn system_nursery(&self) -> &Rc<NurseryInner> {
        &self.system_nursery
    }

    /// A live task of this run, by key.
    pub(crate) fn task(&self, key: TaskKey) -> Option<Rc<TaskInner>> {
        self.tasks.borrow().get(key).cloned()
    }

    /// How many tasks are alive.
    pub(crate) fn living_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// How many tasks are on the run queue.
    pub(crate) fn runnable_count(&self) -> usize {
        self.runq.len()
    }

    /// The earliest registered deadline (infinite if none).
    pub(crate) fn next_deadline(&self) -> f64 {
        self.deadlines.borrow_mut().next_deadline()
    }

    /// Registers the deadline of an entered scope: the one way to add a deadline, since the
    /// run loop's fast path must hear of it (`loop_attention`).
    #[inline]
    pub(crate) fn register_deadline(&self, scope: &Rc<ScopeState>) {
        self.deadlines
            .borrow_mut()
            .register(scope, scope.deadline());
        self.loop_attention.set(true);
    }

    /// Forgets the deadline registration of `scope`, if it has one.
    #[inline]
    pub(crate) fn unregister_deadline(&self, scope: &ScopeState) {
        self.deadlines.borrow_mut().unregister(scope);
    }

    /// Tells the run loop to leave its fast path: the reactor has a new waiter.
    #[inline]
    pub(crate) fn loop_needs_attention(&self) {
        self.loop_attention.set(true);
    }

    /// Puts the task being polled back on the run queue, if `waker` is its own waker (a
    /// schedule point); returns whether it did. Under a combinator's waker the caller wakes
    /// that waker instead. The same as waking the task's waker, without the waker's thread
    /// check and table lookup.
    #[inline]
    pub(crate) fn reschedule_current(&self, waker: &Waker) -> bool {
        self.with_polled_task(|task| {
            if !task.is_own_waker(waker) {
                return false;
            }
            self.enqueue(task);
            true
        })
        .unwrap_or(false)
    }

    /// Puts a live task of the running run on its run queue, found through the task itself
    /// rather than a waker: for parking lots, which hold the tasks they park. The caller's
    /// reference to the task moves into the queue.
    ///
    /// A finished task is left alone: its key may already name another task. Every task of an
    /// earlier run on this thread is finished, so a live task belongs to the run in progress.
    #[inline]
    pub(crate) fn wake_task(task: Rc<TaskInner>) {
        if task.finished.get() {
            return;
        }
        Runner::with_current(move |runner| {
            if runner.instruments.active() {
                runner.schedule_instrumented(&task);
            } else if !task.scheduled.replace(true) {
                runner.runq.push(task);
            }
        });
    }

    /// Puts a task on the run queue unless it is there already. The uninstrumented path is
    /// small enough to inline into its callers; instruments take an out-of-line path.
    #[inline(always)]
    pub(crate) fn schedule(&self, key: TaskKey) {
        let tasks = self.tasks.borrow();
        let Some(task) = tasks.get(key) else {
            return;
        };
        if self.instruments.active() {
            // Instruments may look at the task table.
            let task = task.clone();
            drop(tasks);
            self.schedule_instrumented(&task);
        } else if !task.scheduled.replace(true) {
            self.runq.push(task.clone());
        }
    }

    /// Puts `task` (a live task of this run) on the run queue unless it is there already;
    /// where `schedule` and `reschedule_current` meet (`wake_task` inlines its own copy, to
    /// move its reference in).
    #[inline(always)]
    pub(super) fn enqueue(&self, task: &Rc<TaskInner>) {
        if self.instruments.active() {
            self.schedule_instrumented(task);
        } else if !task.scheduled.replace(true) {
            self.runq.push(task.clone());
        }
    }

    /// `enqueue` when instruments are active: they hear of every task put on the queue.
    #[inline(never)]
    pub(super) fn schedule_instrumented(&self, task: &Rc<TaskInner>) {
        if task.scheduled.replace(true) {
            return;
        }
        self.runq.push(task.clone());
        self.debug.task_scheduled(task);
        self.instruments
            .task_scheduled(&Task::from_inner(task.clone()));
    }

    /// One random bit. A batch order needs one bit, so one `next_random` serves 63 batches.
    #[inline]
    pub(super) fn coin_flip(&self) -> bool {
        let mut bits = self.coin_bits.get();
        let mut rest = bits >> 1;
        // Only the sentinel left (the shift tests it for free).
        if rest == 0 {
            bits = (self.next_random() >> 1) | (1 << 63);
            rest = bits >> 1;
        }
        self.coin_bits.set(rest);
        bits & 1 == 1
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: small, fast, and good enough to pick batch orders.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Records a failure that breaks trio's guarantees and cancels the whole run.
    pub(crate) fn crash(&self, message: String) {
        self.internal_error.borrow_mut().get_or_insert(message);
        self.root_scope.cancel(CancelReason {
            source: CancelSource::Nursery,
            reason: Some("trio internal error".into()),
            task: None,
        });
    }

    /// Registers a `wait_all_tasks_blocked` waiter; returns its slot.
    pub(crate) fn add_idle_waiter(
        &self,
        cushion: f64,
        key: TaskKey,
        flag: Rc<Cell<bool>>,
    ) -> (u64, u64) {
        self.idle_waiters.add(cushion, key, flag)
    }

    /// Forgets a `wait_all_tasks_blocked` waiter that is no longer waiting.
    pub(crate) fn remove_idle_waiter(&self, slot: (u64, u64)) {
        self.idle_waiters.remove(slot);
    }
}
