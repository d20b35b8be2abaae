//! Nurseries: where tasks live, and the only way to start one.
//!
//! [`open_nursery`] runs a body that gets a [`Nursery`] handle; tasks started through the handle
//! are children of the nursery, and `open_nursery` does not return until every child has
//! finished. A child's error cancels the nursery (its siblings and the body); when everything
//! has ended the nursery returns an [`ErrorGroup`] of every error that is not `Cancelled`. A
//! child's panic also cancels the nursery and is resumed in the parent once all children ended.
//!
//! The body is polled inline by the parent task, so it may borrow from the caller; children are
//! independently scheduled tasks, so their futures are `'static` (share state with `Rc`).
//!
//! Dropping an `open_nursery` future early (for example because an enclosing `select` lost
//! interest) drops every child synchronously: nothing outlives its nursery.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::blocked::BlockedOn;
use super::cancel::{CancelReason, ScopeState};
use super::cancel_scope::{CancelScope, StatusSwap};
use super::run::{Runner, drop_quietly, not_in_run, panic_message};
use super::start::{Start, TaskStatus};
use super::task::{Task, TaskFuture, TaskInner, TaskKey, TaskLabel};
use crate::error::{CancelSource, Error, ErrorGroup, Result};

/// How a task ended.
pub(crate) enum Outcome {
    Ok,
    Err(Error),
    Panic(Box<dyn Any + Send>),
}

impl Outcome {
    pub(crate) fn from_result(result: Result<()>) -> Self {
        match result {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::Err(e),
        }
    }
}

/// A nursery's shared state.
pub(crate) struct NurseryInner {
    /// The nursery's cancel scope; its `tasks` list is the nursery's child list.
    pub(crate) scope: Rc<ScopeState>,
    pub(crate) parent_task: Cell<Option<TaskKey>>,
    /// The parent task's record, kept once the nursery has closed while something else still
    /// holds the nursery: Trio's upward links outlive the tasks (`parent_task` after exit).
    parent_kept: RefCell<Option<Rc<TaskInner>>>,
    pub(crate) pending_starts: Cell<usize>,
    pub(crate) closed: Cell<bool>,
    body_done: Cell<bool>,
    entered: Cell<bool>,
    pub(crate) errors: RefCell<Vec<Error>>,
    /// Who failed with each of `errors`: `task "name"`, or the nursery's body.
    origins: RefCell<Vec<String>>,
    pub(crate) cancelled: RefCell<Option<Error>>,
    pub(crate) panic: RefCell<Option<Box<dyn Any + Send>>>,
    /// The private nursery of a `start()` call: any child exit wakes the caller.
    pub(crate) is_start: bool,
    /// For the private nursery of a `start()` call: the nursery its task moves to when it
    /// calls `started()` (`Task::eventual_parent_nursery`).
    pub(crate) start_target: RefCell<Option<Rc<NurseryInner>>>,
    /// The waker the future waiting on this nursery was last polled with, when it is not the
    /// parent task's own (a combinator that gives each child future its own waker and re-polls
    /// only those whose waker fired, such as `FuturesUnordered`): the nursery's completion
    /// wakes it as well as the task.
    waiter_waker: RefCell<Option<Waker>>,
    /// Whether `waiter_waker` is set (tested without a borrow).
    has_waiter_waker: Cell<bool>,
}

impl NurseryInner {
    pub(crate) fn new() -> Rc<Self> {
        Self::with_scope(ScopeState::new())
    }

    pub(crate) fn with_scope(scope: Rc<ScopeState>) -> Rc<Self> {
        Self::build(scope, false)
    }

    pub(crate) fn build(scope: Rc<ScopeState>, is_start: bool) -> Rc<Self> {
        Rc::new(NurseryInner {
            scope,
            parent_task: Cell::new(None),
            parent_kept: RefCell::new(None),
            pending_starts: Cell::new(0),
            closed: Cell::new(false),
            body_done: Cell::new(false),
            entered: Cell::new(false),
            errors: RefCell::new(Vec::new()),
            origins: RefCell::new(Vec::new()),
            cancelled: RefCell::new(None),
            panic: RefCell::new(None),
            is_start,
            start_target: RefCell::new(None),
            waiter_waker: RefCell::new(None),
            has_waiter_waker: Cell::new(false),
        })
    }

    /// Makes a finished nursery that nothing else holds (no handle, no task, no cancel scope
    /// handle) as good as new for the run's pool; `None` if something still holds it.
    ///
    #[inline]
    pub(crate) fn reset(this: &mut Rc<Self>) -> Option<()> {
        if Rc::weak_count(this) != 0 {
            return None;
        }
        let inner = Rc::get_mut(this)?;
        if inner.is_start || inner.pending_starts.get() != 0 {
            return None;
        }
        if !ScopeState::reset(&mut inner.scope) {
            return None;
        }
        let NurseryInner {
            scope: _,
            parent_task,
            parent_kept,
            pending_starts: _,
            closed,
            body_done,
            entered,
            errors,
            origins,
            cancelled,
            panic,
            is_start: _,
            start_target: _,
            waiter_waker,
            has_waiter_waker,
        } = inner;
        parent_task.set(None);
        *parent_kept.get_mut() = None;
        closed.set(false);
        body_done.set(false);
        entered.set(false);
        // The result fields are normally taken already; checking first skips
        // their drop glue.
        if !errors.get_mut().is_empty() {
            errors.get_mut().clear();
            origins.get_mut().clear();
        }
        if cancelled.get_mut().is_some() {
            *cancelled.get_mut() = None;
        }
        if panic.get_mut().is_some() {
            *panic.get_mut() = None;
        }
        if has_waiter_waker.replace(false) {
            *waiter_waker.get_mut() = None;
        }
        Some(())
    }

    /// Enters the nursery's scope under `parent`, owned by task `owner`.
    #[inline]
    pub(crate) fn enter_eagerly(&self, runner: &Runner, parent: Rc<ScopeState>, owner: TaskKey) {
        if self.entered.replace(true) {
            return;
        }
        self.parent_task.set(Some(owner));
        // A fresh scope cannot fail to enter.
        let _ = self.scope.enter(runner, parent, Some(owner));
    }

    #[inline]
    pub(crate) fn remove_child(&self, task: &Rc<TaskInner>) {
        let mut tasks = self.scope.tasks.borrow_mut();
        let index = task.index_in_parent.get();
        if index < tasks.len() && Rc::ptr_eq(&tasks[index], task) {
            tasks.swap_remove(index);
            if let Some(moved) = tasks.get(index) {
                moved.index_in_parent.set(index);
            }
        }
    }

    pub(crate) fn add_child(&self, task: &Rc<TaskInner>) {
        let mut tasks = self.scope.tasks.borrow_mut();
        task.index_in_parent.set(tasks.len());
        tasks.push(task.clone());
    }

    /// Cancels the nursery because `who` failed: the reason names it and its error.
    fn cancel_for_failure(&self, reason: String, task: Option<String>) {
        self.scope.cancel(CancelReason {
            source: CancelSource::Nursery,
            reason: Some(reason),
            task,
        });
    }

    /// Records how a child (`Some`) or the body (`None`) ended. A success (the common case)
    /// is checked inline, the rest is not.
    #[inline(always)]
    fn record(&self, outcome: Outcome, child: Option<&TaskInner>) {
        if matches!(outcome, Outcome::Ok) {
            // `Ok` owns nothing: forgetting it skips a call to the drop glue of `Outcome`.
            std::mem::forget(outcome);
        } else {
            self.record_failure(outcome, child);
        }
    }

    #[inline(never)]
    fn record_failure(&self, outcome: Outcome, child: Option<&TaskInner>) {
        let name = child.map(TaskInner::display_name);
        let who = match &name {
            Some(name) => format!("task {name:?}"),
            None => "the nursery's body".to_string(),
        };
        match outcome {
            Outcome::Ok => {}
            Outcome::Err(e) if e.is_cancelled() => {
                self.cancelled.borrow_mut().get_or_insert(e);
            }
            Outcome::Err(e) => {
                let reason = format!("{who} failed: {e}");
                #[cfg(feature = "tracing")]
                tracing::warn!(target: "trio::nursery", failed = %who, error = %e, "a task in a nursery failed");
                self.errors.borrow_mut().push(e);
                self.origins.borrow_mut().push(who);
                self.cancel_for_failure(reason, name);
            }
            Outcome::Panic(payload) => {
                let reason = format!("{who} panicked: {}", panic_message(&*payload));
                #[cfg(feature = "tracing")]
                tracing::error!(target: "trio::nursery", failed = %who, panic = %panic_message(&*payload), "a task in a nursery panicked");
                self.panic.borrow_mut().get_or_insert(payload);
                self.cancel_for_failure(reason, name);
            }
        }
    }

    /// A child task ended with `outcome`.
    #[inline]
    pub(crate) fn child_finished(&self, outcome: Outcome, child: &TaskInner) {
        self.record(outcome, Some(child));
    }

    #[inline]
    fn can_finish(&self) -> bool {
        self.body_done.get()
            && self.pending_starts.get() == 0
            && self.scope.tasks.borrow().is_empty()
    }

    /// Wakes the task waiting on this nursery if it can now finish.
    #[inline]
    pub(crate) fn wake_parent_if_done(&self, runner: &Runner) {
        if self.is_start || self.can_finish() {
            if let Some(parent) = self.parent_task.get() {
                runner.schedule(parent);
            }
            self.wake_waiter_waker();
        }
    }

    /// Notes the waker the future waiting on this nursery was polled with (see
    /// `waiter_waker`); the parent task's own waker needs no note.
    ///
    /// The usual case (the task's own waker, nothing noted) is a pointer compare and a flag
    /// test.
    #[inline]
    pub(crate) fn note_waiter(&self, task: &TaskInner, waker: &Waker) {
        if waker.will_wake(&task.waker) && !self.has_waiter_waker.get() {
            return;
        }
        self.note_waiter_slow(task, waker);
    }

    fn note_waiter_slow(&self, task: &TaskInner, waker: &Waker) {
        let mut noted = self.waiter_waker.borrow_mut();
        if waker.will_wake(&task.waker) {
            *noted = None;
        } else if !noted.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *noted = Some(waker.clone());
        }
        self.has_waiter_waker.set(noted.is_some());
    }

    /// Wakes the noted foreign waker of the waiting future, if there is one.
    #[inline]
    pub(crate) fn wake_waiter_waker(&self) {
        if !self.has_waiter_waker.get() {
            return;
        }
        let waker = self.waiter_waker.borrow().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Leaves the scope and closes the nursery to new tasks.
    pub(crate) fn close(&self, runner: Option<&Runner>) {
        self.close_keeping_child_list(runner);
        if let Some(runner) = runner {
            runner.recycle_child_list(&self.scope);
        }
    }

    /// As `close`, but the empty child list stays with the scope: the nursery goes back to
    /// the run's pool with it (or gives it up in `Runner::recycle_nursery`).
    #[inline]
    fn close_keeping_child_list(&self, runner: Option<&Runner>) {
        self.closed.set(true);
        self.scope.exit(runner);
    }

    /// The nursery's result once everything ended (the panic, if any, is resumed by the caller).
    ///
    /// The check for "nothing to report" is inlined, the rest is not.
    #[inline(always)]
    fn take_result(&self, absorbs: bool) -> Result<()> {
        if self.errors.borrow().is_empty() && self.cancelled.borrow().is_none() {
            return Ok(());
        }
        self.take_failures(absorbs)
    }

    #[inline(never)]
    fn take_failures(&self, absorbs: bool) -> Result<()> {
        let errors = std::mem::take(&mut *self.errors.borrow_mut());
        let origins = std::mem::take(&mut *self.origins.borrow_mut());
        let cancelled = self.cancelled.borrow_mut().take();
        if !errors.is_empty() {
            return Err(Error::new(ErrorGroup::with_origins(errors, origins)));
        }
        match cancelled {
            Some(_) if absorbs => {
                self.scope.set_cancelled_caught();
                Ok(())
            }
            Some(c) => Err(c),
            None => Ok(()),
        }
    }

    /// Drops every child synchronously (the nursery's future is being dropped).
    pub(crate) fn drop_children(&self) {
        let children = std::mem::take(&mut *self.scope.tasks.borrow_mut());
        let futures: Vec<_> = Runner::with_current(|runner| {
            children
                .iter()
                .filter_map(|child| runner.discard_task(child))
                .collect()
        })
        .unwrap_or_default();
        drop(children);
        for future in futures {
            drop_quietly(future);
        }
    }
}

/// A handle to an open nursery: start tasks in it, reach its cancel scope, list its children.
///
/// Cheap to clone and pass to other tasks (it is `'static`). Once the nursery has closed (its
/// `open_nursery` call finished), starting a task in it is an error.
#[derive(Clone)]
pub struct Nursery {
    inner: Rc<NurseryInner>,
}

impl std::fmt::Debug for Nursery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nursery")
            .field("children", &self.inner.scope.tasks.borrow().len())
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

impl Nursery {
    pub(crate) fn from_inner(inner: Rc<NurseryInner>) -> Self {
        Nursery { inner }
    }

    /// Starts `task` as a child of this nursery; it begins running at the next schedule point.
    ///
    /// Not a checkpoint (a sync fn). Fails if the nursery is closed or if called outside a run.
    #[track_caller]
    pub fn start_soon<F>(&self, task: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + 'static,
    {
        self.spawn(TaskLabel::of_type::<F>(Location::caller()), task)
    }

    /// [`start_soon`](Self::start_soon) with a name for the task (shown in task dumps and
    /// by [`Task::name`]).
    #[track_caller]
    pub fn start_soon_named<F>(&self, name: impl Into<Cow<'static, str>>, task: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + 'static,
    {
        self.spawn(TaskLabel::given(name.into(), Location::caller()), task)
    }

    fn spawn<F>(&self, label: TaskLabel, task: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + 'static,
    {
        Runner::with_current(|runner| {
            runner
                .spawn(&self.inner, TaskFuture::new(task), label, false)
                .map(drop)
        })
        .unwrap_or_else(|| Err(not_in_run("Nursery::start_soon")))
    }

    /// Starts a task and waits until it reports that it is ready, returning the value it
    /// passes to [`TaskStatus::started`].
    ///
    /// Until it calls `started`, the task runs inside the caller's cancel scope and its errors
    /// come out of `start` as they are (not in a group); afterwards it is a child of this
    /// nursery. A `start` that is still waiting keeps this nursery open. A task that returns
    /// without calling `started` makes `start` fail.
    ///
    /// # Checkpoint
    /// Yes: it waits for the task to run.
    ///
    /// # Cancel safety
    /// Dropping the future before `started` drops the new task with it (nothing was started);
    /// after `started` the task keeps running in this nursery and only the value is lost.
    #[track_caller]
    pub fn start<V, F, Fut>(&self, task: F) -> Start<V, F>
    where
        F: FnOnce(TaskStatus<V>) -> Fut,
        Fut: Future<Output = Result<()>> + 'static,
        V: 'static,
    {
        Start::new(self.inner.clone(), task, None, Location::caller())
    }

    /// [`start`](Self::start) with a name for the task (Trio's `start(..., name=)`).
    ///
    /// # Checkpoint
    /// As [`start`](Self::start).
    ///
    /// # Cancel safety
    /// As [`start`](Self::start).
    #[track_caller]
    pub fn start_named<V, F, Fut>(&self, name: impl Into<Cow<'static, str>>, task: F) -> Start<V, F>
    where
        F: FnOnce(TaskStatus<V>) -> Fut,
        Fut: Future<Output = Result<()>> + 'static,
        V: 'static,
    {
        Start::new(
            self.inner.clone(),
            task,
            Some(name.into()),
            Location::caller(),
        )
    }

    /// The nursery's cancel scope: cancelling it cancels the body and every child.
    pub fn cancel_scope(&self) -> CancelScope {
        CancelScope::from_state(self.inner.scope.clone())
    }

    /// The tasks running in the nursery right now.
    pub fn child_tasks(&self) -> Vec<Task> {
        self.inner
            .scope
            .tasks
            .borrow()
            .iter()
            .cloned()
            .map(Task::from_inner)
            .collect()
    }

    /// The task that opened the nursery (also after the task and the nursery have ended).
    pub fn parent_task(&self) -> Option<Task> {
        if let Some(task) = &*self.inner.parent_kept.borrow() {
            return Some(Task::from_inner(task.clone()));
        }
        let key = self.inner.parent_task.get()?;
        Runner::with_current(|runner| runner.task(key))
            .flatten()
            .map(Task::from_inner)
    }

    /// Whether the nursery has closed (its `open_nursery` call finished).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }
}

impl PartialEq for Nursery {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Nursery {}

/// Opens a nursery, runs `body` with a handle to it, and waits for every child task.
///
/// Returns `Ok(())` when the body and every child succeeded (or the nursery's own cancel scope
/// was cancelled and absorbed the resulting `Cancelled`s); an [`ErrorGroup`] of every failure
/// otherwise. A `Cancelled` from an enclosing scope comes out as it is.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// use std::cell::Cell;
/// use std::rc::Rc;
/// trio::run(async {
///     let count = Rc::new(Cell::new(0));
///     trio::open_nursery(|nursery| async move {
///         for _ in 0..3 {
///             let count = count.clone();
///             nursery.start_soon(async move {
///                 trio::sleep(0.01).await?;
///                 count.set(count.get() + 1);
///                 Ok(())
///             })?;
///         }
///         Ok(())
///     })
///     .await?;
///     Ok(())
/// })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: leaving the nursery is a schedule point when nothing inside it yielded. Cancellation
/// reaches the body and the children through the checkpoints they make.
///
/// # Cancel safety
/// Dropping the future cancels and drops the body and every child synchronously.
pub fn open_nursery<F, B>(body: F) -> NurseryRun<B>
where
    F: FnOnce(Nursery) -> B,
    B: Future<Output = Result<()>>,
{
    // A nursery from the run's pool costs no allocation (see `Runner::recycle_nursery`).
    let inner = Runner::with_current(Runner::take_spare_nursery)
        .flatten()
        .unwrap_or_else(NurseryInner::new);
    let handle = Nursery::from_inner(inner.clone());
    NurseryRun {
        nursery: inner,
        body: Some(body(handle)),
        polls_at_entry: 0,
        pending_result: None,
        done: false,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`open_nursery`].
    #[must_use = "a nursery does nothing unless awaited"]
    pub struct NurseryRun<B> {
        nursery: Rc<NurseryInner>,
        #[pin]
        body: Option<B>,
        polls_at_entry: u64,
        pending_result: Option<Result<()>>,
        done: bool,
    }

    impl<B> PinnedDrop for NurseryRun<B> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if *this.done {
                Runner::with_current(|runner| runner.recycle_nursery(this.nursery));
                return;
            }
            if !this.nursery.entered.get() {
                return;
            }
            // Closed first, so that nothing dropped below can start a task in it.
            this.nursery.closed.set(true);
            this.nursery.drop_children();
            let _ = catch_unwind(AssertUnwindSafe(|| this.body.set(None)));
            let nursery = this.nursery.clone();
            Runner::with_current(|runner| nursery.close(Some(runner)))
                .unwrap_or_else(|| nursery.close(None));
        }
    }
}

impl<B> NurseryRun<B> {
    /// The init task's nursery: already entered by the runner.
    pub(crate) fn for_system(nursery: Rc<NurseryInner>, body: B) -> Self {
        NurseryRun {
            nursery,
            body: Some(body),
            polls_at_entry: 1,
            pending_result: None,
            done: false,
        }
    }
}

impl<B> Future for NurseryRun<B>
where
    B: Future<Output = Result<()>>,
{
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut this = self.project();
        if let Some(result) = this.pending_result.take() {
            *this.done = true;
            return Poll::Ready(result);
        }
        let nursery: &Rc<NurseryInner> = this.nursery;
        let polled = Runner::with_current_task(|runner, task| {
            if !nursery.entered.get() {
                super::timeout::enter_lazy_deadline(task, runner);
                let parent = task.current_status.borrow().clone();
                nursery.enter_eagerly(runner, parent, task.key);
                let mut open = task.child_nurseries.borrow_mut();
                // Entries leave when their nursery finishes (below); only those of
                // nurseries dropped early linger, and are swept here once there are a few.
                if open.len() >= 8 {
                    open.retain(|n| n.upgrade().is_some_and(|n| !n.closed.get()));
                }
                open.push(Rc::downgrade(nursery));
                *this.polls_at_entry = task.polls.get();
            }
            if let Some(body) = this.body.as_mut().as_pin_mut() {
                let swap = StatusSwap::new(task, nursery.scope.clone());
                let polled = catch_unwind(AssertUnwindSafe(|| body.poll(cx)));
                drop(swap);
                let outcome = match polled {
                    Ok(Poll::Pending) => None,
                    Ok(Poll::Ready(result)) => Some(Outcome::from_result(result)),
                    Err(payload) => Some(Outcome::Panic(payload)),
                };
                if let Some(outcome) = outcome {
                    nursery.body_done.set(true);
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| this.body.set(None))) {
                        nursery.record(Outcome::Panic(payload), None);
                    }
                    nursery.record(outcome, None);
                }
            }
            if !nursery.can_finish() {
                // Waiting for the children is a cancel point (Trio's wait in `__aexit__`
                // counts one), though cancellation only cancels the nursery's scope here.
                task.count_cancel_point();
                nursery.note_waiter(task, cx.waker());
                if nursery.body_done.get() {
                    task.note_blocked(BlockedOn::Children);
                }
                return None;
            }
            let absorbs =
                nursery.scope.is_cancelled() && !nursery.scope.parent_cancellation_is_visible();
            nursery.close_keeping_child_list(Some(runner));
            if Rc::strong_count(nursery) > 1 {
                // A handle (or a child task's record) outlives the nursery: keep the upward
                // link valid after the parent exits.
                *nursery.parent_kept.borrow_mut() = Some(task.clone());
            }
            let mut open = task.child_nurseries.borrow_mut();
            let is_this = |n: &Weak<NurseryInner>| std::ptr::eq(n.as_ptr(), Rc::as_ptr(nursery));
            if open.last().is_some_and(is_this) {
                open.pop();
            } else {
                open.retain(|n| !is_this(n));
            }
            drop(open);
            let yielded = task.polls.get() != *this.polls_at_entry;
            Some((nursery.take_result(absorbs), yielded))
        });
        let Some(polled) = polled else {
            *this.done = true;
            return Poll::Ready(Err(not_in_run("open_nursery")));
        };
        let Some((result, yielded)) = polled else {
            return Poll::Pending;
        };
        if let Some(payload) = nursery.panic.borrow_mut().take() {
            *this.done = true;
            resume_unwind(payload);
        }
        if result.is_ok() && !yielded {
            // Leaving the nursery is a schedule point even when nothing inside yielded.
            *this.pending_result = Some(result);
            super::run::schedule_point(cx);
            return Poll::Pending;
        }
        *this.done = true;
        Poll::Ready(result)
    }
}
