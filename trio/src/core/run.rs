//! The run loop: `run`, `RunConfig`, and the `Runner` every other core module talks to.
//!
//! One thread drives one run. The loop works in batches, as Trio's does:
//!
//! 1. take the callbacks and wakes that other threads queued (the entry queue);
//! 2. wait for I/O: without blocking when tasks are runnable (and then only every few batches,
//!    since an `epoll_wait` per batch is the cost Trio measured in python-trio/trio#1595),
//!    otherwise blocking until the next deadline, a `wait_all_tasks_blocked` cushion, or the
//!    clock's autojump threshold;
//! 3. expire deadlines (cancelling their scopes);
//! 4. if still nothing is runnable: wake the `wait_all_tasks_blocked` waiters with the smallest
//!    cushion, or else let the clock autojump to the next deadline;
//! 5. run every task that was runnable when the batch began, in an order that a seeded random
//!    generator reverses half of the time, so a failing interleaving can be replayed.
//!
//! The run's structure is Trio's too: an *init* task (the root of the task tree) opens the
//! *system nursery*; the main task and every system task are its children. When the main task
//! ends, init cancels the system nursery, waits for the system tasks, and the run ends.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use super::cancel::{CancelReason, ScopeState};
use super::clock::{Clock, SystemClock};
use super::deadlines::Deadlines;
use super::entry::{Entry, EntryShared};
use super::instrument::{Instrument, Instruments};
use super::io::Reactor;
use super::ki::CtrlC;
use super::local::RunVars;
use super::nursery::{NurseryInner, NurseryRun, Outcome};
use super::task::{BoxedTaskFuture, Task, TaskInner, TaskKey, TaskTable, WakerPool};
use super::task_future::TaskFuture;
use crate::error::{
    CancelSource, DeadlockError, Error, KeyboardInterrupt, Result, TrioInternalError,
};

static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: Cell<*const Runner> = const { Cell::new(std::ptr::null()) };
}

/// The error for a trio function used outside `trio::run`.
pub(crate) fn not_in_run(what: &str) -> Error {
    Error::usage(format!(
        "{what} must be called from inside trio::run (no trio run is active on this thread)"
    ))
}

/// How to run: clock, instruments, scheduling seed, Ctrl-C handling, deadlock detection.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// let answer = trio::RunConfig::new().seed(7).run(async { Ok(42) })?;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
pub struct RunConfig {
    clock: Option<Rc<dyn Clock>>,
    instruments: Vec<Rc<dyn Instrument>>,
    seed: Option<u64>,
    ctrl_c: bool,
    fail_on_deadlock: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RunConfig {
    /// The defaults: system clock, no instruments, a random seed (or `TRIO_SEED` from the
    /// environment), Ctrl-C handled, no deadlock detection.
    pub fn new() -> Self {
        RunConfig {
            clock: None,
            instruments: Vec::new(),
            seed: None,
            ctrl_c: true,
            fail_on_deadlock: false,
        }
    }

    /// Uses `clock` for time (for example `trio_test::MockClock`).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Rc::new(clock));
        self
    }

    /// Adds an instrument; it sees every event of the run.
    pub fn instrument(mut self, instrument: impl Instrument + 'static) -> Self {
        self.instruments.push(Rc::new(instrument));
        self
    }

    /// Adds an instrument that the caller keeps a handle to.
    pub fn instrument_rc(mut self, instrument: Rc<dyn Instrument>) -> Self {
        self.instruments.push(instrument);
        self
    }

    /// Fixes the seed of the scheduling order, to replay a run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Whether to turn Ctrl-C into cancellation (default true). Even when true, the handler is
    /// only installed on the main thread and only over SIGINT's default disposition.
    pub fn ctrl_c(mut self, enabled: bool) -> Self {
        self.ctrl_c = enabled;
        self
    }

    /// Ends the run with a [`DeadlockError`] (and a task dump) when every task is blocked and
    /// nothing can wake one, instead of hanging. `#[trio::test]` turns this on.
    pub fn fail_on_deadlock(mut self, enabled: bool) -> Self {
        self.fail_on_deadlock = enabled;
        self
    }

    /// Runs `main` to completion with this configuration. See [`run`].
    pub fn run<F, T>(self, main: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        run_with(self, main)
    }
}

/// Runs `main` as the main task of a new trio run and returns its result.
///
/// The run ends when the main task and every system task have finished. A panic in the main
/// task (or one that reached it from a nursery) resumes here. After Ctrl-C the run cancels
/// everything, lets shielded cleanup run, and returns `Err(KeyboardInterrupt)`. Calling `run`
/// from inside a run is an error.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// let n = trio::run(async {
///     trio::sleep(0.0).await?;
///     Ok(1 + 1)
/// })?;
/// assert_eq!(n, 2);
/// # Ok(())
/// # }
/// ```
pub fn run<F, T>(main: F) -> Result<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    run_with(RunConfig::new(), main)
}

/// The state of one run. Reached through a thread-local pointer while the run is active.
pub(crate) struct Runner {
    pub(crate) run_id: u64,
    pub(crate) tasks: RefCell<TaskTable>,
    /// Runnable tasks, each with a strong reference of its own.
    ///
    /// Performance: the queue holds the tasks, not their keys, so `step` takes its task from
    /// the batch without the table lookup (borrow, bounds and generation checks, a reference
    /// count increment). A task that finished or was discarded while queued stays alive until
    /// its entry is stepped (and skipped, its future being gone) (benches/callgrind.rs, switch
    /// and pingpong).
    runq: RunQueue,
    wakers: RefCell<WakerPool>,
    /// The task being polled: points at `step`'s own handle to it, only while `step` polls it.
    ///
    /// Performance: a pointer, not an `Option<Rc>` in a `RefCell`: setting it costs no reference
    /// count traffic and reading it (every checkpoint, park and spawn) no borrow flag.
    current: Cell<Option<std::ptr::NonNull<Rc<TaskInner>>>>,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) deadlines: RefCell<Deadlines>,
    pub(crate) reactor: Reactor,
    pub(crate) entry: Arc<EntryShared>,
    pub(crate) instruments: Instruments,
    rng: Cell<u64>,
    /// Random bits not used yet, above a sentinel 1 bit (`coin_flip`).
    coin_bits: Cell<u64>,
    pub(crate) seed: u64,
    /// `wait_all_tasks_blocked` waiters by (cushion, arrival).
    idle_waiters: RefCell<BTreeMap<(u64, u64), IdleWaiter>>,
    idle_seq: Cell<u64>,
    next_task_id: Cell<u64>,
    pub(crate) root_scope: Rc<ScopeState>,
    pub(crate) system_nursery: Rc<NurseryInner>,
    init_task: Cell<Option<TaskKey>>,
    main_task: Cell<Option<TaskKey>>,
    pub(crate) init_task_rc: RefCell<Option<Rc<TaskInner>>>,
    main_outcome: RefCell<Option<Outcome>>,
    init_outcome: RefCell<Option<Outcome>>,
    /// Whether `init_outcome` is set: the run is over.
    ///
    /// Performance: the loop checks a flag per batch instead of borrowing the outcome.
    init_done: Cell<bool>,
    /// False only while the run is not over, no deadline is registered and the reactor has no
    /// waiters: the run loop's fast path checks this one flag for all three. Set with
    /// `init_done`, by every deadline registration (`register_deadline`) and I/O wait
    /// (`loop_needs_attention`); recomputed by the loop's slow path.
    ///
    /// Performance: one flag instead of `init_done`, a borrow of the deadlines and the
    /// reactor's waiter count per batch (benches/callgrind.rs, switch 142.9 -> 135.1 Ir,
    /// pingpong1 1286 -> 1255).
    loop_attention: Cell<bool>,
    pub(crate) run_vars: RunVars,
    internal_error: RefCell<Option<String>>,
    ki_received: Cell<bool>,
    batches_since_io: Cell<u32>,
    /// Empty child lists of closed nurseries, for new nurseries to reuse.
    ///
    /// Performance: a nursery's first `start_soon` takes one of these instead of growing an
    /// empty `Vec` (a malloc, and a free when the nursery's scope is dropped): ~115
    /// instructions less per `open_nursery` with children (benches/callgrind.rs, spawn_join).
    spare_child_lists: RefCell<Vec<Vec<Rc<TaskInner>>>>,
    /// Allocations of finished tasks, for new tasks to reuse (see `recycle_task`).
    spare_tasks: RefCell<Vec<Rc<TaskInner>>>,
    /// Finished nurseries, reset, for `open_nursery` to reuse (see `recycle_nursery`).
    spare_nurseries: RefCell<Vec<Rc<NurseryInner>>>,
    /// Scope nodes that were left, reset, for new scopes to reuse (see `recycle_scope`).
    spare_scopes: RefCell<Vec<Rc<ScopeState>>>,
}

/// How many spare scope nodes the run keeps.
const SPARE_SCOPES: usize = 64;

/// How many finished nurseries the run keeps.
const SPARE_NURSERIES: usize = 64;

/// How many finished task allocations the run keeps.
const SPARE_TASKS: usize = 1024;

/// How many empty child lists the run keeps, and the largest capacity it keeps.
const SPARE_CHILD_LISTS: usize = 64;

/// Non-blocking I/O polls happen at most once per this many batches while tasks are runnable.
const IO_POLL_INTERVAL: u32 = 8;

/// Clears the thread's current-run pointer when the run ends, also by unwinding.
struct CurrentGuard;

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

impl Runner {
    /// Calls `f` with the run active on this thread, if there is one.
    #[inline(always)]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Runner) -> R) -> Option<R> {
        let ptr = CURRENT.with(Cell::get);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `CURRENT` is set by `run_with` to a `Runner` that it keeps alive (boxed, never
        // moved) until the `CurrentGuard` clears the pointer, and only this thread reads it.
        // The runner is only reached through shared references; its state is in cells.
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
        // SAFETY: `step` points `current` at its local `Rc<TaskInner>` only while it polls
        // that task, and clears it before the local goes away. Everything that gets here runs
        // on the run's thread inside that poll, and the reference does not leave `f`.
        Some(f(unsafe { ptr.as_ref() }))
    }

    pub(crate) fn current_time(&self) -> f64 {
        self.clock.current_time()
    }

    pub(crate) fn current_task_name(&self) -> Option<String> {
        self.with_polled_task(|t| t.name.borrow().to_string())
    }

    /// Puts the task being polled back on the run queue, if `waker` is its own waker (a
    /// schedule point); returns whether it did. Under a combinator's waker the caller wakes
    /// that waker instead.
    ///
    /// Performance: the same as waking the task's waker, without the waker's thread check and
    /// table lookup (benches/callgrind.rs, switch); the waker test is an address comparison in
    /// the common case (`TaskInner::is_own_waker`: switch 155.4 -> 152.4 Ir).
    #[inline]
    pub(crate) fn reschedule_current(&self, waker: &std::task::Waker) -> bool {
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
    ///
    /// Performance: no waker vtable call, thread check or table lookup, and no reference-count
    /// increment and decrement (benches/callgrind.rs, pingpong and lock_contended).
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

    /// Puts a task on the run queue unless it is there already.
    ///
    /// Performance: the uninstrumented path is small enough to inline into its callers
    /// (a nursery waking its parent, benches/callgrind.rs, spawn_join); instruments take
    /// an out-of-line path.
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
    /// the one place the three ways of scheduling (`schedule`, `reschedule_current`,
    /// `wake_task`) meet (`wake_task` inlines its own copy, to move its reference in).
    #[inline(always)]
    fn enqueue(&self, task: &Rc<TaskInner>) {
        if self.instruments.active() {
            self.schedule_instrumented(task);
        } else if !task.scheduled.replace(true) {
            self.runq.push(task.clone());
        }
    }

    /// `enqueue` when instruments are active: they hear of every task put on the queue.
    #[inline(never)]
    fn schedule_instrumented(&self, task: &Rc<TaskInner>) {
        if task.scheduled.replace(true) {
            return;
        }
        self.runq.push(task.clone());
        self.instruments
            .task_scheduled(&Task::from_inner(task.clone()));
    }

    /// One random bit. Performance: a batch order needs one bit, so one `next_random` serves
    /// 63 batches (benches/callgrind.rs, switch and pingpong).
    #[inline]
    fn coin_flip(&self) -> bool {
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

    /// Creates a task in `nursery` and schedules it.
    pub(crate) fn spawn(
        &self,
        nursery: &Rc<NurseryInner>,
        future: BoxedTaskFuture,
        name: std::borrow::Cow<'static, str>,
        system: bool,
    ) -> Result<Rc<TaskInner>> {
        if nursery.closed.get() {
            return Err(Error::usage(
                "this nursery is closed to new tasks (its block has finished)",
            ));
        }
        let locals = self
            .with_polled_task(|t| t.locals.borrow().clone())
            .flatten();
        let mut tasks = self.tasks.borrow_mut();
        let key = tasks.next_key();
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 1);
        let status = nursery.scope.clone();
        let index = status.tasks.borrow().len();
        let spare = self.spare_tasks.borrow_mut().pop();
        let task = match spare {
            Some(mut task) => {
                let Some(inner) = Rc::get_mut(&mut task) else {
                    unreachable!("spare tasks are not shared")
                };
                self.wakers.borrow_mut().rekey(&mut inner.waker, key);
                inner.occupy(
                    id,
                    key,
                    name,
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
                name: RefCell::new(name),
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
                wchan: Cell::new(None),
                wchan_depth: Cell::new(0),
                system,
                finished: Cell::new(false),
                lot_breakers: RefCell::new(Vec::new()),
                cancel_wakers: RefCell::new(Vec::new()),
            }),
        };
        tasks.insert(task.clone());
        drop(tasks);
        {
            let mut children = status.tasks.borrow_mut();
            if children.capacity() == 0
                && let Some(list) = self.spare_child_lists.borrow_mut().pop()
            {
                *children = list;
            }
            children.push(task.clone());
        }
        if self.instruments.active() {
            self.instruments
                .task_spawned(&Task::from_inner(task.clone()));
            self.schedule(key);
        } else {
            // Performance: a new task is not scheduled yet and is known; `schedule` would
            // look it up again.
            task.scheduled.set(true);
            self.runq.push(task.clone());
        }
        Ok(task)
    }

    /// A reset scope node from the pool, if there is one.
    pub(crate) fn take_spare_scope(&self) -> Option<Rc<ScopeState>> {
        self.spare_scopes.borrow_mut().pop()
    }

    /// Keeps a scope node that has been left, if nothing but the caller holds it, for the next
    /// scope of the run.
    ///
    /// Performance: a timeout or sleep reuses its node instead of a malloc/free pair
    /// (benches/callgrind.rs, cancel_scope).
    pub(crate) fn recycle_scope(&self, scope: &mut Rc<ScopeState>) {
        if !scope.is_exited() {
            return;
        }
        let mut spare = self.spare_scopes.borrow_mut();
        if spare.len() < SPARE_SCOPES && ScopeState::reset(scope) {
            spare.push(scope.clone());
        }
    }

    /// A reset nursery from the pool, if there is one.
    pub(crate) fn take_spare_nursery(&self) -> Option<Rc<NurseryInner>> {
        self.spare_nurseries.borrow_mut().pop()
    }

    /// Keeps a nursery whose `open_nursery` call finished, if nothing else holds it, for the
    /// next `open_nursery` of the run.
    ///
    /// Performance: the nursery record and its scope node are reused in place instead of two
    /// malloc/free pairs per `open_nursery` (benches/callgrind.rs, spawn_join).
    pub(crate) fn recycle_nursery(&self, nursery: &mut Rc<NurseryInner>) {
        let mut spare = self.spare_nurseries.borrow_mut();
        if spare.len() < SPARE_NURSERIES && NurseryInner::reset(nursery).is_some() {
            spare.push(nursery.clone());
        } else {
            drop(spare);
            self.recycle_child_list(&nursery.scope);
        }
    }

    /// Keeps the (empty) child list of a closed nursery's scope for the next nursery.
    pub(crate) fn recycle_child_list(&self, scope: &ScopeState) {
        let mut children = scope.tasks.borrow_mut();
        if !children.is_empty() || !(1..=SPARE_CHILD_LISTS).contains(&children.capacity()) {
            return;
        }
        let mut spare = self.spare_child_lists.borrow_mut();
        if spare.len() < SPARE_CHILD_LISTS {
            spare.push(std::mem::take(&mut *children));
        }
    }

    /// Takes a task out of the run without running it again (its nursery is being dropped).
    /// Returns its future, for the caller to drop once it holds no runtime borrows.
    pub(crate) fn discard_task(&self, task: &Rc<TaskInner>) -> Option<BoxedTaskFuture> {
        self.tasks.borrow_mut().remove(task.key);
        task.finished.set(true);
        task.parent.borrow_mut().take();
        break_lots_of(task);
        if self.instruments.active() {
            self.instruments
                .task_exited(&Task::from_inner(task.clone()));
        }
        // A task discarded from inside its own poll (its nursery dropped by itself, through
        // shared ownership) has its future borrowed by `step`, which drops it after the poll.
        task.future.try_borrow_mut().ok().and_then(|mut f| f.take())
    }

    /// Runs one step of a task.
    ///
    /// Performance: the uninstrumented step is a copy of its own with no `Task` handle to
    /// make, check and drop; instruments take an out-of-line copy (benches/callgrind.rs,
    /// switch and pingpong).
    #[inline(always)]
    fn step(&self, task: Rc<TaskInner>) {
        if self.instruments.active() {
            self.step_instrumented(task);
        } else {
            self.step_with::<false>(task);
        }
    }

    #[cold]
    #[inline(never)]
    fn step_instrumented(&self, task: Rc<TaskInner>) {
        self.step_with::<true>(task);
    }

    #[inline(always)]
    fn step_with<const INSTRUMENTED: bool>(&self, task: Rc<TaskInner>) {
        task.scheduled.set(false);
        // Performance: the future is polled where it lies (its block never moves), not taken
        // out of the cell and put back on every step.
        let mut future = task.future.borrow_mut();
        let Some(poll_target) = future.as_mut() else {
            return;
        };
        if task.reparented.get() {
            task.reparented.set(false);
            let base = task.parent.borrow().as_ref().map(|n| n.scope.clone());
            if let Some(base) = base {
                *task.current_status.borrow_mut() = base;
            }
        }
        task.polls.set(task.polls.get() + 1);
        let handle = INSTRUMENTED.then(|| Task::from_inner(task.clone()));
        if let Some(handle) = &handle {
            self.instruments.before_task_step(handle);
        }
        self.current.set(Some(std::ptr::NonNull::from(&task)));
        let mut cx = Context::from_waker(&task.waker);
        let mut ready = None;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            poll_target.poll_into(&mut cx, &mut ready)
        }));
        self.current.set(None);
        if let Some(handle) = handle {
            self.instruments.after_task_step(&handle);
        }
        if task.finished.get() {
            // Discarded during its own poll (see `discard_task`): only the future is left.
            let dead = future.take();
            drop(future);
            drop_quietly(dead);
            return;
        }
        let outcome = match polled {
            Ok(()) => match ready {
                None => {
                    drop(future);
                    return;
                }
                Some(result) => Outcome::from_result(result),
            },
            Err(payload) => Outcome::Panic(payload),
        };
        let finished = future.take();
        drop(future);
        drop_quietly(finished);
        self.finish_step(task, outcome);
    }

    /// The end of a task's last step.
    ///
    /// Performance: out of line, so the step loop stays small and the task's exit gets its own
    /// inlining budget (`TaskInner::vacate`, `NurseryInner::wake_parent_if_done` stay inlined;
    /// benches/callgrind.rs, spawn_join_batch).
    #[inline(never)]
    fn finish_step(&self, task: Rc<TaskInner>, outcome: Outcome) {
        self.finish_task(&task, outcome);
        self.recycle_task(task);
    }

    /// Keeps the allocation of a finished task that nobody else holds for the next spawn.
    ///
    /// Performance: everything the task held is dropped here, as before (its waker goes back
    /// to the waker pool); only the memory is kept, emptied in place (`TaskInner::vacate`).
    /// Spawning then fills it in place (`TaskInner::occupy`) instead of allocating: a
    /// malloc/free pair per task, which costs far more when many tasks end at once and the
    /// allocator's per-size caches run dry (~390 instructions less per task in
    /// benches/callgrind.rs, spawn_join_batch).
    fn recycle_task(&self, mut task: Rc<TaskInner>) {
        let Some(inner) = Rc::get_mut(&mut task) else {
            return;
        };
        inner.vacate(&self.root_scope);
        let mut spare = self.spare_tasks.borrow_mut();
        if spare.len() < SPARE_TASKS {
            spare.push(task);
        }
    }

    /// Delivers a finished task's outcome to its nursery (or the run) and forgets the task.
    fn finish_task(&self, task: &Rc<TaskInner>, outcome: Outcome) {
        task.finished.set(true);
        self.tasks.borrow_mut().remove(task.key);
        let parent = task.parent.borrow_mut().take();
        if let Some(nursery) = &parent {
            nursery.remove_child(task);
        }
        break_lots_of(task);
        if self.instruments.active() {
            self.instruments
                .task_exited(&Task::from_inner(task.clone()));
        }
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
            nursery.child_finished(self, outcome);
        }
        if let Some(nursery) = &parent {
            nursery.wake_parent_if_done(self);
        }
        task.child_nurseries.borrow_mut().clear();
    }

    /// Wakes every task of the idle-waiter list with the smallest cushion.
    fn wake_idle_waiters(&self, cushion_bits: u64) {
        let mut waiters = self.idle_waiters.borrow_mut();
        let mut woken = Vec::new();
        while let Some(entry) = waiters.first_entry() {
            if entry.key().0 != cushion_bits {
                break;
            }
            woken.push(entry.remove());
        }
        drop(waiters);
        for (key, flag) in woken {
            flag.set(true);
            self.schedule(key);
        }
    }

    pub(crate) fn add_idle_waiter(
        &self,
        cushion: f64,
        key: TaskKey,
        flag: Rc<Cell<bool>>,
    ) -> (u64, u64) {
        let seq = self.idle_seq.get();
        self.idle_seq.set(seq + 1);
        let slot = (cushion.to_bits(), seq);
        self.idle_waiters.borrow_mut().insert(slot, (key, flag));
        slot
    }

    pub(crate) fn remove_idle_waiter(&self, slot: (u64, u64)) {
        self.idle_waiters.borrow_mut().remove(&slot);
    }

    /// Registers the deadline of an entered scope: the one way to add a deadline, since the
    /// run loop's fast path must hear of it (`loop_attention`).
    #[inline]
    pub(crate) fn register_deadline(&self, scope: &Rc<ScopeState>) {
        self.deadlines.borrow_mut().register(scope);
        self.loop_attention.set(true);
    }

    /// Tells the run loop to leave its fast path: the reactor has a new waiter.
    #[inline]
    pub(crate) fn loop_needs_attention(&self) {
        self.loop_attention.set(true);
    }

    pub(crate) fn runnable_count(&self) -> usize {
        self.runq.len()
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

    fn process_entries(&self) {
        for entry in self.entry.drain() {
            match entry {
                Entry::Wake(bits) => self.schedule(super::task::key_from_bits(bits)),
                Entry::Call(f) => {
                    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
                        self.crash(format!(
                            "a run_sync_soon callback panicked: {}",
                            panic_message(&*p)
                        ));
                    }
                }
                Entry::Idempotent(f) => {
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f())) {
                        self.crash(format!(
                            "a run_sync_soon callback panicked: {}",
                            panic_message(&*p)
                        ));
                    }
                }
            }
        }
    }

    fn on_ctrl_c(&self) {
        if !self.ki_received.replace(true) {
            self.root_scope.cancel(CancelReason {
                source: CancelSource::KeyboardInterrupt,
                reason: Some("Ctrl-C".into()),
                task: None,
            });
        }
    }

    /// The main loop; returns when the init task has finished, or with a deadlock.
    fn run_loop(&self, ctrl_c: Option<&CtrlC>, fail_on_deadlock: bool) -> Result<()> {
        // Performance: the batch being run is the loop's own (swapped with the run queue), not
        // a cell of the runner (benches/callgrind.rs, switch).
        let mut batch = Vec::new();
        loop {
            if self.init_done.get() {
                return Ok(());
            }
            if self.entry.has_pending() {
                self.process_entries();
            }
            if !self.ki_received.get() && ctrl_c.is_some_and(CtrlC::is_pending) {
                self.on_ctrl_c();
            }
            let runnable = !self.runq.is_empty();
            let mut idle_primed = None;
            // Performance: batches are only counted while the reactor has waiters, so a run
            // without I/O pays one check per batch (benches/callgrind.rs, switch).
            let poll_io = if runnable {
                self.reactor.has_waiters() && {
                    let n = self.batches_since_io.get() + 1;
                    self.batches_since_io.set(n);
                    n >= IO_POLL_INTERVAL
                }
            } else {
                true
            };
            if poll_io {
                self.batches_since_io.set(0);
                let mut timeout = 0.0;
                if !runnable {
                    let deadline = self.deadlines.borrow_mut().next_deadline();
                    timeout = if deadline == f64::INFINITY {
                        f64::INFINITY
                    } else {
                        self.clock.deadline_to_sleep_time(deadline).max(0.0)
                    };
                    if let Some((&(cushion_bits, _), _)) =
                        self.idle_waiters.borrow().first_key_value()
                    {
                        let cushion = f64::from_bits(cushion_bits);
                        if cushion < timeout {
                            timeout = cushion;
                            idle_primed = Some(Idle::Waiters(cushion_bits));
                        }
                    } else if deadline != f64::INFINITY {
                        // Autojump only has somewhere to jump to when a deadline exists;
                        // otherwise the run is idle for good (or deadlocked).
                        let threshold = self.clock.autojump_threshold();
                        if threshold < timeout {
                            timeout = threshold;
                            idle_primed = Some(Idle::Autojump);
                        }
                    }
                    if timeout == f64::INFINITY
                        && fail_on_deadlock
                        && !self.reactor.has_waiters()
                        && !self.entry.may_receive()
                    {
                        return Err(Error::new(DeadlockError {
                            dump: super::dump::task_tree(self),
                        }));
                    }
                }
                if self.instruments.active() {
                    self.instruments.before_io_wait(timeout);
                }
                let events = self.reactor.poll(timeout, self);
                if self.instruments.active() {
                    self.instruments.after_io_wait(timeout);
                }
                if events.ctrl_c && ctrl_c.is_some_and(CtrlC::take_pending) {
                    self.on_ctrl_c();
                }
                if events.entry && self.entry.has_pending() {
                    self.process_entries();
                }
            }
            if !self.deadlines.borrow().is_empty() {
                let now = self.clock.current_time();
                let expired = self.deadlines.borrow_mut().expire(now);
                if !expired.is_empty() {
                    idle_primed = None;
                }
                for scope in expired {
                    scope.cancel(CancelReason {
                        source: CancelSource::Deadline,
                        reason: None,
                        task: None,
                    });
                }
            }
            // Nothing takes tasks off the run queue in between: runnable then is runnable now.
            if !runnable && self.runq.is_empty() {
                match idle_primed {
                    Some(Idle::Waiters(cushion)) => self.wake_idle_waiters(cushion),
                    Some(Idle::Autojump) => {
                        let next = self.deadlines.borrow_mut().next_deadline();
                        self.clock.autojump(next);
                    }
                    None => {}
                }
            }
            // From here on only tasks run, and they set the flag again if they register a
            // deadline, wait for I/O or end the run.
            self.loop_attention.set(
                self.init_done.get()
                    || !self.deadlines.borrow().is_empty()
                    || self.reactor.has_waiters(),
            );
            self.runq.swap(&mut batch);
            self.run_batch(&mut batch);
            // The fast path: while the run queue is all that needs attention, one batch
            // follows another without the bookkeeping above, which would do nothing: no
            // entries or Ctrl-C to take, no I/O to poll (the reactor has no waiters, so batches
            // are not counted) and no deadlines to expire (both `loop_attention`), and runnable
            // tasks (so no idling).
            // Every condition is checked again before every batch, since a task can change
            // any of them (and other threads the entry queue and Ctrl-C).
            //
            // Performance: benches/callgrind.rs, switch 162.6 -> 155.4 Ir, pingpong1 1342 -> 1313.
            loop {
                if self.loop_attention.get()
                    || self.entry.has_pending()
                    || (!self.ki_received.get() && ctrl_c.is_some_and(CtrlC::is_pending))
                {
                    break;
                }
                // An empty run queue swapped in is an empty batch: the loop above then sees
                // the (equally empty) queue.
                self.runq.swap(&mut batch);
                if batch.is_empty() {
                    break;
                }
                self.run_batch(&mut batch);
            }
        }
    }

    /// Runs every task of `batch` (the run queue of a moment ago) once; what they schedule
    /// waits for the next batch.
    #[inline(always)]
    fn run_batch(&self, batch: &mut Vec<Rc<TaskInner>>) {
        // Tasks are moved out from the back (`pop`), each with the strong reference the queue
        // took, so the batch runs in queue order when it was reversed and backwards otherwise:
        // the same order for the same seed as iterating a reversed-or-not batch forwards.
        // Performance: two tasks (a ping-pong) are swapped rather than `reverse`d
        // (benches/callgrind.rs, pingpong).
        if batch.len() > 1 && !self.coin_flip() {
            if let [a, b] = &mut batch[..] {
                std::mem::swap(a, b);
            } else {
                batch.reverse();
            }
        }
        while let Some(task) = batch.pop() {
            self.step(task);
        }
    }

    /// Drops every task that is still alive (after a deadlock or a crash of the loop).
    fn drop_all_tasks(&self) {
        loop {
            let task = self.tasks.borrow().iter().next().cloned();
            let Some(task) = task else { break };
            let future = self.discard_task(&task);
            drop_quietly(future);
        }
    }
}

enum Idle {
    Waiters(u64),
    Autojump,
}

/// The run queue: a `Vec` in an `UnsafeCell`. Every access is one of the methods below, and
/// none of them calls anything (no user code, no allocation, no drop) while it holds its
/// reference into the cell, so no two references to the `Vec` are ever alive at once; the
/// runner is `!Sync`, so only the run's thread reaches it.
///
/// Performance: a `RefCell` checked, set and reset its borrow flag on every push (each
/// schedule point and wake) and every batch (benches/callgrind.rs, switch 135.1 -> 130.1 Ir,
/// pingpong1 1255 -> 1222, pingpong0 1516 -> 1471).
struct RunQueue(UnsafeCell<Vec<Rc<TaskInner>>>);

impl RunQueue {
    /// Appends `task`; growing the queue is out of line.
    ///
    /// Performance: with growth out of line nothing is live across a call, so a schedule
    /// point (`reschedule_current`) saves no registers (benches/callgrind.rs, switch 178.6 ->
    /// 162.6 Ir, pingpong1 1428 -> 1389).
    #[inline(always)]
    fn push(&self, task: Rc<TaskInner>) {
        // SAFETY: see the type; `Vec::push` does not allocate when the capacity suffices
        // (documented), so this block calls nothing while `queue` is alive.
        let queue = unsafe { &mut *self.0.get() };
        if queue.len() == queue.capacity() {
            self.push_grow(task);
        } else {
            queue.push(task);
        }
    }

    /// Appends `task` to a full queue. The `Vec` is taken out of the cell while it grows, so
    /// no reference into the cell is alive during the allocation.
    #[cold]
    #[inline(never)]
    fn push_grow(&self, task: Rc<TaskInner>) {
        // SAFETY: see the type; `take` leaves an empty `Vec` (no allocation) and calls nothing.
        let mut queue = std::mem::take(unsafe { &mut *self.0.get() });
        queue.push(task);
        // SAFETY: see the type; `replace` calls nothing.
        let meanwhile = std::mem::replace(unsafe { &mut *self.0.get() }, queue);
        // Nothing can have been queued during the allocation, but if something was, it stays
        // queued.
        for task in meanwhile {
            self.push(task);
        }
    }

    /// Exchanges the queue with `batch`.
    #[inline(always)]
    fn swap(&self, batch: &mut Vec<Rc<TaskInner>>) {
        // SAFETY: see the type; `swap` calls nothing.
        std::mem::swap(batch, unsafe { &mut *self.0.get() });
    }

    #[inline(always)]
    fn len(&self) -> usize {
        // SAFETY: see the type; the shared reference ends within this expression.
        unsafe { &*self.0.get() }.len()
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops a value, swallowing a panic from its destructor (the task already failed or ended;
/// a panicking destructor must not take the run loop down with it).
///
/// Performance: inlined, so dropping a finished task's future in `step` costs no extra call
/// (benches/callgrind.rs, spawn_join).
#[inline]
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

fn random_seed() -> u64 {
    if let Some(seed) = std::env::var("TRIO_SEED").ok().and_then(|s| s.parse().ok()) {
        return seed;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT_RUN_ID.load(Ordering::Relaxed));
    h.finish()
}

fn run_with<F, T>(config: RunConfig, main: F) -> Result<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    if Runner::with_current(|_| ()).is_some() {
        return Err(Error::usage(
            "trio::run was called inside a running trio run; nested runs are not allowed",
        ));
    }
    let run_id = NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed);
    let reactor = Reactor::new().map_err(Error::new)?;
    let entry = Arc::new(EntryShared::new(reactor.make_waker()?));
    let seed = config.seed.unwrap_or_else(random_seed);
    let clock = config.clock.unwrap_or_else(|| Rc::new(SystemClock::new()));
    let root_scope = ScopeState::new();
    root_scope.enter_as_root();
    let system_nursery = NurseryInner::new();
    let runner = Box::new(Runner {
        run_id,
        tasks: RefCell::new(TaskTable::default()),
        runq: RunQueue(UnsafeCell::new(Vec::new())),
        wakers: RefCell::new(WakerPool::new(run_id, entry.clone())),
        current: Cell::new(None),
        clock,
        deadlines: RefCell::new(Deadlines::default()),
        reactor,
        entry,
        instruments: Instruments::new(config.instruments),
        rng: Cell::new(seed | 1),
        coin_bits: Cell::new(1),
        seed,
        idle_waiters: RefCell::new(BTreeMap::new()),
        idle_seq: Cell::new(0),
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
        run_vars: RunVars::default(),
        internal_error: RefCell::new(None),
        ki_received: Cell::new(false),
        batches_since_io: Cell::new(0),
        spare_child_lists: RefCell::new(Vec::new()),
        spare_tasks: RefCell::new(Vec::new()),
        spare_nurseries: RefCell::new(Vec::new()),
        spare_scopes: RefCell::new(Vec::new()),
    });
    CURRENT.with(|c| c.set(&*runner));
    let guard = CurrentGuard;
    let ctrl_c = if config.ctrl_c {
        CtrlC::install(&runner.reactor)
    } else {
        None
    };

    runner.clock.start_clock();
    runner.instruments.before_run();
    let result: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    let loop_result = start_tasks(&runner, main, result.clone())
        .and_then(|()| runner.run_loop(ctrl_c.as_ref(), config.fail_on_deadlock));
    if loop_result.is_err() {
        runner.drop_all_tasks();
    }
    runner.instruments.after_run();
    runner.entry.close();
    if let Some(ctrl_c) = ctrl_c {
        ctrl_c.uninstall(&runner.reactor);
    }
    let main_outcome = runner.main_outcome.borrow_mut().take();
    let init_outcome = runner.init_outcome.borrow_mut().take();
    let internal = runner.internal_error.borrow_mut().take();
    let ki = runner.ki_received.get();
    runner.init_task_rc.borrow_mut().take();
    drop(guard);
    drop(runner);
    loop_result?;

    if let Some(Outcome::Panic(payload)) = main_outcome {
        resume_unwind(payload);
    }
    if let Some(message) = internal {
        return Err(Error::new(TrioInternalError { message }));
    }
    match init_outcome {
        Some(Outcome::Panic(payload)) => resume_unwind(payload),
        Some(Outcome::Err(e)) if !e.is_cancelled() => {
            return Err(Error::new(TrioInternalError {
                message: format!("a system task failed: {e}"),
            }));
        }
        _ => {}
    }
    match main_outcome {
        Some(Outcome::Ok) => match result.borrow_mut().take() {
            Some(value) if !ki => Ok(value),
            _ => Err(Error::new(KeyboardInterrupt::new())),
        },
        // After Ctrl-C, the main task's error (cleanup that failed) travels inside the
        // KeyboardInterrupt, so neither is lost.
        Some(Outcome::Err(e)) if ki => Err(Error::new(KeyboardInterrupt::carrying(e))),
        Some(Outcome::Err(e)) => Err(e),
        Some(Outcome::Panic(payload)) => resume_unwind(payload),
        None => Err(Error::new(TrioInternalError {
            message: "the main task never finished".into(),
        })),
    }
}

/// Creates the init task (which runs the system nursery) and the main task.
fn start_tasks<F, T>(runner: &Runner, main: F, result: Rc<RefCell<Option<T>>>) -> Result<()>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let system = runner.system_nursery.clone();
    let init_future = NurseryRun::for_system(system.clone(), InitBody);
    // The init task has no parent nursery: it lives directly under the root scope.
    let root_holder = NurseryInner::with_scope(runner.root_scope.clone());
    let init = runner.spawn(
        &root_holder,
        TaskFuture::new(init_future),
        "<init>".into(),
        true,
    )?;
    root_holder.remove_child(&init);
    init.parent.borrow_mut().take();
    runner.root_scope.set_owner(init.key);
    runner.init_task.set(Some(init.key));
    *runner.init_task_rc.borrow_mut() = Some(init.clone());
    system.enter_eagerly(runner, runner.root_scope.clone(), init.key);
    // The system nursery is the init task's one child nursery (task trees and dumps walk it).
    init.child_nurseries
        .borrow_mut()
        .push(Rc::downgrade(&system));

    let main_future = async move {
        let value = main.await?;
        *result.borrow_mut() = Some(value);
        Ok(())
    };
    let main_task = runner.spawn(
        &system,
        TaskFuture::new(main_future),
        "<main>".into(),
        false,
    )?;
    runner.main_task.set(Some(main_task.key));
    Ok(())
}

/// The init task's nursery body: wait for the main task, then cancel the system tasks.
struct InitBody;

impl Future for InitBody {
    type Output = Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        let done = Runner::with_current(|runner| {
            if runner.main_outcome.borrow().is_some() {
                runner.system_nursery.scope.cancel(CancelReason {
                    source: CancelSource::Nursery,
                    reason: Some("the main task finished; system tasks are cancelled".into()),
                    task: None,
                });
                true
            } else {
                false
            }
        });
        match done {
            Some(false) => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// A `wait_all_tasks_blocked` waiter: its task and the flag set when it is woken.
type IdleWaiter = (TaskKey, Rc<Cell<bool>>);

/// Breaks the parking lots registered with `add_parking_lot_breaker` for a task that exits.
///
/// Performance: the check is inlined into every task exit and the rare work is not
/// (~20 instructions per task in benches/callgrind.rs, spawn_join).
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
