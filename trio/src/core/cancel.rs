//! Cancel scopes, the cancel-status tree, and the deadline heap.
//!
//! Every entered scope is a node of one tree per run. A node's parent is the status that was
//! current when it was entered: the enclosing scope of the same task, or, for a nursery's
//! scope, the status of the code that opened the nursery. A nursery's child tasks hang off the
//! nursery's node. Each node caches `effectively_cancelled`:
//!
//! ```text
//! effectively_cancelled = cancel_called || (!shield && parent.effectively_cancelled)
//! ```
//!
//! so a checkpoint answers "am I cancelled?" with one load. When a node's state flips to
//! cancelled, the change is pushed down the subtree and every task that could be blocked under
//! it is woken; its trio futures re-check on their next poll and abort (level-triggered
//! cancellation: every checkpoint in a cancelled scope fails until the scope is left).
//!
//! A `CancelScope` is Trio's `with CancelScope():` block as a future combinator,
//! [`CancelScope::run`]. The scope swaps its node in as the task's current status around every
//! poll of its body, so nested scopes, `join`-style combinators inside one task, and nurseries
//! all see the right status without a per-task stack.
//!
//! A scope with a deadline registers it with the run's deadline driver (`deadlines.rs`) when
//! it is entered and unregisters it when it is left; the run loop cancels the scopes whose
//! deadlines pass.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::deadlines::DeadlineOwner;
use super::run::Runner;
use super::task::{TaskInner, TaskKey};
use crate::error::{CancelSource, Cancelled, Error};

/// Why a scope was cancelled, kept for the `Cancelled` errors it causes.
#[derive(Clone, Debug)]
pub(crate) struct CancelReason {
    pub(crate) source: CancelSource,
    pub(crate) reason: Option<String>,
    pub(crate) task: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Unentered,
    Entered,
    Exited,
}

/// One cancel scope: its settings and its node in the cancel-status tree.
pub(crate) struct ScopeState {
    cancel_called: Cell<bool>,
    reason: RefCell<Option<CancelReason>>,
    cancelled_caught: Cell<bool>,
    shield: Cell<bool>,
    deadline: Cell<f64>,
    relative_deadline: Cell<f64>,
    phase: Cell<Phase>,
    /// Registration with the deadline driver (0: none).
    deadline_token: Cell<u64>,
    effectively_cancelled: Cell<bool>,
    parent: RefCell<Option<Rc<ScopeState>>>,
    children: RefCell<Vec<Rc<ScopeState>>>,
    index_in_parent: Cell<usize>,
    /// The task that entered the scope; woken when the scope becomes cancelled.
    owner: Cell<Option<TaskKey>>,
    /// For a nursery's scope: its child tasks (the nursery's child list lives here).
    pub(crate) tasks: RefCell<Vec<Rc<TaskInner>>>,
}

impl DeadlineOwner for ScopeState {
    fn deadline_token(&self) -> &Cell<u64> {
        &self.deadline_token
    }
}

impl ScopeState {
    /// A fresh scope node: from the run's pool when there is one (see
    /// `Runner::recycle_scope`), else a new allocation.
    pub(crate) fn new() -> Rc<Self> {
        Runner::with_current(Runner::take_spare_scope)
            .flatten()
            .unwrap_or_else(Self::allocate)
    }

    fn allocate() -> Rc<Self> {
        Rc::new(ScopeState {
            cancel_called: Cell::new(false),
            reason: RefCell::new(None),
            cancelled_caught: Cell::new(false),
            shield: Cell::new(false),
            deadline: Cell::new(f64::INFINITY),
            relative_deadline: Cell::new(f64::INFINITY),
            phase: Cell::new(Phase::Unentered),
            deadline_token: Cell::new(0),
            effectively_cancelled: Cell::new(false),
            parent: RefCell::new(None),
            children: RefCell::new(Vec::new()),
            index_in_parent: Cell::new(0),
            owner: Cell::new(None),
            tasks: RefCell::new(Vec::new()),
        })
    }

    /// Makes an exited scope that nothing else holds as good as new, keeping the capacity of
    /// its lists (for the run's pools); `false`, leaving it alone, if anything else holds it,
    /// even a `Weak` (a stale deadline-heap entry): such a node is not pooled.
    ///
    /// The node is reset through `&mut`, without a borrow flag check per list.
    #[inline]
    pub(crate) fn reset(this: &mut Rc<Self>) -> bool {
        let Some(state) = Rc::get_mut(this) else {
            return false;
        };
        let ScopeState {
            cancel_called,
            reason,
            cancelled_caught,
            shield,
            deadline,
            relative_deadline,
            phase,
            deadline_token,
            effectively_cancelled,
            parent,
            children,
            index_in_parent,
            owner,
            tasks,
        } = state;
        *cancel_called.get_mut() = false;
        if reason.get_mut().is_some() {
            *reason.get_mut() = None;
        }
        *cancelled_caught.get_mut() = false;
        *shield.get_mut() = false;
        *deadline.get_mut() = f64::INFINITY;
        *relative_deadline.get_mut() = f64::INFINITY;
        *phase.get_mut() = Phase::Unentered;
        *deadline_token.get_mut() = 0;
        *effectively_cancelled.get_mut() = false;
        if parent.get_mut().is_some() {
            *parent.get_mut() = None;
        }
        children.get_mut().clear();
        *index_in_parent.get_mut() = 0;
        *owner.get_mut() = None;
        tasks.get_mut().clear();
        true
    }

    /// The absolute deadline (infinite: none).
    pub(crate) fn deadline(&self) -> f64 {
        self.deadline.get()
    }

    /// Whether the scope has been left (the run's pools take only such scopes).
    pub(crate) fn is_exited(&self) -> bool {
        self.phase.get() == Phase::Exited
    }

    /// The cached effective state: is a checkpoint under this node cancelled?
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.effectively_cancelled.get()
    }

    pub(crate) fn parent(&self) -> Option<Rc<ScopeState>> {
        self.parent.borrow().clone()
    }

    /// Whether a cancellation of the parent reaches code in this scope.
    pub(crate) fn parent_cancellation_is_visible(&self) -> bool {
        !self.shield.get()
            && self
                .parent
                .borrow()
                .as_ref()
                .is_some_and(|p| p.is_cancelled())
    }

    /// Links the scope under `parent` (owned by `owner`), fixes a relative deadline, registers
    /// the deadline, and computes the effective state.
    /// `parent` is taken by value: the caller's handle becomes the link to the parent.
    #[inline]
    pub(crate) fn enter(
        self: &Rc<Self>,
        runner: &Runner,
        parent: Rc<ScopeState>,
        owner: Option<TaskKey>,
    ) -> Result<(), Error> {
        if self.phase.get() != Phase::Unentered {
            return Err(Error::usage(
                "each CancelScope may only be entered once; make a new CancelScope",
            ));
        }
        self.phase.set(Phase::Entered);
        self.owner.set(owner);
        let relative = self.relative_deadline.get();
        let mut now = None;
        if relative.is_finite() {
            let t = runner.current_time();
            now = Some(t);
            self.deadline.set(t + relative);
        }
        self.attach(parent);
        let deadline = self.deadline.get();
        // As in Trio, a deadline that has already passed cancels the scope on entry, so even
        // a cancel point before the first schedule point sees it.
        let expired =
            deadline != f64::INFINITY && deadline <= now.unwrap_or_else(|| runner.current_time());
        if deadline != f64::INFINITY && !expired {
            runner.register_deadline(self);
        }
        self.recalculate(runner);
        if expired {
            self.cancel(CancelReason {
                source: CancelSource::Deadline,
                reason: None,
                task: None,
            });
        }
        Ok(())
    }

    /// Marks the run's root scope as entered (it has no parent).
    pub(crate) fn enter_as_root(&self) {
        self.phase.set(Phase::Entered);
    }

    pub(crate) fn set_cancelled_caught(&self) {
        self.cancelled_caught.set(true);
    }

    pub(crate) fn set_owner(&self, owner: TaskKey) {
        self.owner.set(Some(owner));
    }

    /// Unlinks the scope from the tree and drops its deadline. Idempotent.
    #[inline]
    pub(crate) fn exit(self: &Rc<Self>, runner: Option<&Runner>) {
        if self.phase.get() != Phase::Entered {
            return;
        }
        self.phase.set(Phase::Exited);
        // Most scopes never had a deadline: the driver is not touched for them.
        if let Some(runner) = runner
            && self.deadline_token.get() != 0
        {
            runner.unregister_deadline(self);
        }
        self.detach();
        // A scope that is left stops pushing cancellation into anything that was under it.
        self.children.borrow_mut().clear();
    }

    #[inline]
    fn attach(self: &Rc<Self>, parent: Rc<ScopeState>) {
        let mut siblings = parent.children.borrow_mut();
        self.index_in_parent.set(siblings.len());
        siblings.push(self.clone());
        drop(siblings);
        *self.parent.borrow_mut() = Some(parent);
    }

    #[inline]
    fn detach(self: &Rc<Self>) {
        let Some(parent) = self.parent.borrow_mut().take() else {
            return;
        };
        let mut siblings = parent.children.borrow_mut();
        let index = self.index_in_parent.get();
        if index < siblings.len() && Rc::ptr_eq(&siblings[index], self) {
            siblings.swap_remove(index);
            if let Some(moved) = siblings.get(index) {
                moved.index_in_parent.set(index);
            }
        }
    }

    /// Moves every child node of `self` under `new_parent`.
    pub(crate) fn move_children_to(self: &Rc<Self>, runner: &Runner, new_parent: &Rc<ScopeState>) {
        let children = std::mem::take(&mut *self.children.borrow_mut());
        for child in children {
            *child.parent.borrow_mut() = None;
            child.attach(new_parent.clone());
            child.recalculate(runner);
        }
    }

    /// Marks the scope cancelled (the first reason wins) and pushes the change down the tree.
    pub(crate) fn cancel(self: &Rc<Self>, reason: CancelReason) {
        if self.cancel_called.get() {
            return;
        }
        self.cancel_called.set(true);
        *self.reason.borrow_mut() = Some(reason);
        if self.phase.get() == Phase::Entered {
            // Outside a run there is nothing to wake; the state is computed at entry.
            match Runner::with_current(|runner| self.recalculate(runner)) {
                Some(()) => {}
                None => self.effectively_cancelled.set(true),
            }
        }
    }

    pub(crate) fn set_shield(self: &Rc<Self>, shield: bool) {
        if self.shield.replace(shield) != shield
            && self.phase.get() == Phase::Entered
            && Runner::with_current(|runner| self.recalculate(runner)).is_none()
        {
            self.recalculate_without_wakes();
        }
    }

    fn recalculate_without_wakes(&self) {
        let parent = self
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| p.is_cancelled());
        self.effectively_cancelled
            .set(self.cancel_called.get() || (!self.shield.get() && parent));
    }

    /// Recomputes the effective state of this node and, where it changed, of its subtree;
    /// wakes the tasks under every node that became cancelled.
    #[inline]
    pub(crate) fn recalculate(self: &Rc<Self>, runner: &Runner) {
        // Fast path (every scope entry comes here): nothing changes, nothing to push down.
        let parent_cancelled = self
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| p.is_cancelled());
        let new = self.cancel_called.get() || (!self.shield.get() && parent_cancelled);
        if self.effectively_cancelled.get() != new {
            self.propagate(runner);
        }
    }

    /// The slow half of `recalculate`: pushes a changed state down the subtree and wakes the
    /// tasks under every node that became cancelled.
    #[inline(never)]
    fn propagate(self: &Rc<Self>, runner: &Runner) {
        let mut to_wake: Vec<TaskKey> = Vec::new();
        let mut stack: Vec<Rc<ScopeState>> = vec![self.clone()];
        while let Some(node) = stack.pop() {
            let parent_cancelled = node
                .parent
                .borrow()
                .as_ref()
                .is_some_and(|p| p.is_cancelled());
            let new = node.cancel_called.get() || (!node.shield.get() && parent_cancelled);
            if node.effectively_cancelled.replace(new) == new {
                continue;
            }
            if new {
                to_wake.extend(node.owner.get());
                to_wake.extend(node.tasks.borrow().iter().map(|t| t.key));
            }
            stack.extend(node.children.borrow().iter().cloned());
        }
        for key in to_wake {
            runner.schedule(key);
            // Operations blocked under a combinator's waker must be re-polled too.
            let task = runner.task(key);
            if let Some(task) = task
                && !task.cancel_wakers.borrow().is_empty()
            {
                task.wake_cancel_wakers();
            }
        }
    }

    /// The `Cancelled` a checkpoint under this node raises: the innermost cancelled scope
    /// whose cancellation reaches here.
    pub(crate) fn cancelled_error(self: &Rc<Self>) -> Cancelled {
        let mut node = Some(self.clone());
        while let Some(n) = node {
            if n.cancel_called.get() {
                if let Some(r) = n.reason.borrow().as_ref() {
                    return Cancelled::new(r.source, r.reason.clone(), r.task.clone());
                }
            }
            if n.shield.get() {
                break;
            }
            node = n.parent();
        }
        Cancelled::new(CancelSource::Explicit, None, None)
    }

    /// The earliest deadline that can cancel code under this node.
    pub(crate) fn effective_deadline(self: &Rc<Self>) -> f64 {
        let mut node = Some(self.clone());
        let mut deadline = f64::INFINITY;
        while let Some(n) = node {
            if n.cancel_called.get() {
                return f64::NEG_INFINITY;
            }
            deadline = deadline.min(n.deadline.get());
            if n.shield.get() {
                break;
            }
            node = n.parent();
        }
        deadline
    }
}

/// A cancel scope: a region of code that can be cancelled, by a call or by a deadline.
///
/// Make one, configure it, then run a body in it with [`run`](Self::run). The handle is cheap to
/// clone; any clone can cancel the scope or move its deadline, from any task of the run. A scope
/// can be entered once.
///
/// When the scope is cancelled, every checkpoint inside it (in this task and in the tasks of
/// nurseries opened inside it) fails with [`Cancelled`] until the body returns. The `Cancelled`
/// travels out with `?` and the scope absorbs it: `run` returns `Ok(None)` and
/// [`cancelled_caught`](Self::cancelled_caught) becomes true. When an enclosing scope is
/// cancelled too, the outermost cancelled one absorbs.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let scope = trio::CancelScope::new();
///     let out = scope
///         .run(async {
///             scope.cancel();
///             trio::sleep(1.0).await?; // fails at once: the scope is cancelled
///             Ok("not reached")
///         })
///         .await?;
///     assert_eq!(out, None);
///     assert!(scope.cancelled_caught());
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct CancelScope {
    pub(crate) state: Rc<ScopeState>,
}

impl Default for CancelScope {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelScope")
            .field("cancel_called", &self.cancel_called())
            .field("shield", &self.shield())
            .field("deadline", &self.deadline())
            .field("phase", &self.state.phase.get())
            .finish()
    }
}

fn check_deadline(deadline: f64) -> Result<f64, Error> {
    if deadline.is_nan() {
        Err(Error::usage("deadline must not be NaN"))
    } else {
        Ok(deadline)
    }
}

pub(crate) fn check_duration(seconds: f64, what: &str) -> Result<f64, Error> {
    if seconds.is_nan() {
        Err(Error::usage(format!("{what} must not be NaN")))
    } else if seconds < 0.0 {
        Err(Error::usage(format!(
            "{what} must be non-negative (got {seconds})"
        )))
    } else {
        Ok(seconds)
    }
}

impl CancelScope {
    /// A scope with no deadline, not shielded, not cancelled.
    pub fn new() -> Self {
        CancelScope {
            state: ScopeState::new(),
        }
    }

    pub(crate) fn from_state(state: Rc<ScopeState>) -> Self {
        CancelScope { state }
    }

    /// A scope with an absolute deadline (on the run's clock, see [`current_time`](crate::current_time)).
    ///
    /// A NaN deadline is an error.
    pub fn with_deadline(deadline: f64) -> Result<Self, Error> {
        let scope = Self::new();
        scope.state.deadline.set(check_deadline(deadline)?);
        Ok(scope)
    }

    /// A scope whose deadline is `seconds` after the moment it is entered.
    ///
    /// Negative or NaN durations are errors.
    pub fn with_relative_deadline(seconds: f64) -> Result<Self, Error> {
        let scope = Self::new();
        scope
            .state
            .relative_deadline
            .set(check_duration(seconds, "relative deadline")?);
        Ok(scope)
    }

    /// Sets the shield (builder form of [`set_shield`](Self::set_shield)).
    pub fn shielded(self, shield: bool) -> Self {
        self.set_shield(shield);
        self
    }

    /// Cancels the scope. Idempotent: a second call changes nothing.
    pub fn cancel(&self) {
        self.cancel_inner(CancelSource::Explicit, None);
    }

    /// Cancels the scope, recording a reason that the resulting `Cancelled` errors carry.
    pub fn cancel_with_reason(&self, reason: impl Into<String>) {
        self.cancel_inner(CancelSource::Explicit, Some(reason.into()));
    }

    pub(crate) fn cancel_inner(&self, source: CancelSource, reason: Option<String>) {
        let task = Runner::with_current(|r| r.current_task_name()).flatten();
        self.state.cancel(CancelReason {
            source,
            reason,
            task,
        });
    }

    /// Whether `cancel` was called or the deadline has passed.
    ///
    /// As in Trio, a scope that is running (or not entered yet) whose deadline is now or
    /// earlier counts as cancelled at once, before the run loop gets to expire it: asking
    /// cancels it, with the deadline as the source. Not a checkpoint.
    pub fn cancel_called(&self) -> bool {
        let state = &self.state;
        if !state.cancel_called.get()
            && state.phase.get() != Phase::Exited
            && state.deadline.get() != f64::INFINITY
            && Runner::with_current(|runner| runner.current_time() >= state.deadline.get())
                == Some(true)
        {
            state.cancel(CancelReason {
                source: CancelSource::Deadline,
                reason: None,
                task: None,
            });
        }
        state.cancel_called.get()
    }

    /// Whether the scope absorbed a `Cancelled` when its body returned.
    pub fn cancelled_caught(&self) -> bool {
        self.state.cancelled_caught.get()
    }

    /// The absolute deadline (`f64::INFINITY`: none). Before a scope with a relative deadline
    /// is entered this is infinite; use [`relative_deadline`](Self::relative_deadline).
    pub fn deadline(&self) -> f64 {
        self.state.deadline.get()
    }

    /// Moves the deadline; takes effect at once, also while the scope is running.
    ///
    /// A NaN deadline is an error, and so is setting an absolute deadline on a scope that has
    /// an unentered relative one (say which one you mean).
    pub fn set_deadline(&self, deadline: f64) -> Result<(), Error> {
        let deadline = check_deadline(deadline)?;
        let state = &self.state;
        if state.phase.get() == Phase::Unentered && state.relative_deadline.get().is_finite() {
            return Err(Error::usage(
                "this scope has a relative deadline; set one or the other, not both",
            ));
        }
        state.deadline.set(deadline);
        if state.phase.get() == Phase::Entered {
            Runner::with_current(|runner| {
                runner.unregister_deadline(state);
                if deadline != f64::INFINITY {
                    runner.register_deadline(state);
                }
            });
        }
        Ok(())
    }

    /// The relative deadline in seconds (`f64::INFINITY`: none). It is turned into an absolute
    /// deadline when the scope is entered.
    pub fn relative_deadline(&self) -> f64 {
        self.state.relative_deadline.get()
    }

    /// Sets the relative deadline. Before entry it is fixed at entry; on a running scope it
    /// moves the deadline to now + `seconds`. Negative or NaN durations are errors.
    pub fn set_relative_deadline(&self, seconds: f64) -> Result<(), Error> {
        let seconds = check_duration(seconds, "relative deadline")?;
        let state = &self.state;
        match state.phase.get() {
            Phase::Unentered if state.deadline.get() != f64::INFINITY => Err(Error::usage(
                "this scope has an absolute deadline; set one or the other, not both",
            )),
            Phase::Entered => {
                state.relative_deadline.set(seconds);
                let now = Runner::with_current(|r| r.current_time()).unwrap_or(0.0);
                self.set_deadline(now + seconds)
            }
            _ => {
                state.relative_deadline.set(seconds);
                Ok(())
            }
        }
    }

    /// Whether the scope is shielded from the cancellation of enclosing scopes.
    pub fn shield(&self) -> bool {
        self.state.shield.get()
    }

    /// Shields (or unshields) the scope; takes effect at once, also while it is running.
    pub fn set_shield(&self, shield: bool) {
        self.state.set_shield(shield);
    }

    /// Runs `body` inside this scope.
    ///
    /// Returns `Ok(Some(value))` when the body finished, `Ok(None)` when the scope was cancelled
    /// and absorbed the body's `Cancelled`, and `Err` for every other error (a `Cancelled` that
    /// belongs to an enclosing scope included). Running a scope a second time is an error.
    ///
    /// # Checkpoint
    /// Entering and leaving a scope is not a checkpoint of its own (as Trio's
    /// `with CancelScope():`); the body's checkpoints are the only ones.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the scope (it unlinks from the cancel tree and its deadline
    /// is dropped) and drops the body, with whatever cancel safety the body has.
    pub fn run<F, T>(&self, body: F) -> ScopeRun<F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        ScopeRun {
            scope: self.state.clone(),
            entered: false,
            body,
        }
    }

    /// As [`run`](Self::run), giving up this handle: nothing outside can see the scope, so the
    /// run may reuse its node once the body is done (timeouts and sleeps use this).
    pub(crate) fn into_run<F, T>(self, body: F) -> ScopeRun<F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        ScopeRun {
            scope: self.state,
            entered: false,
            body,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CancelScope::run`].
    #[must_use = "a scope does nothing unless awaited"]
    pub struct ScopeRun<F> {
        scope: Rc<ScopeState>,
        entered: bool,
        #[pin]
        body: F,
    }

    impl<F> PinnedDrop for ScopeRun<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let in_run = Runner::with_current(|runner| {
                if *this.entered {
                    this.scope.exit(Some(runner));
                }
                runner.recycle_scope(this.scope);
            });
            if in_run.is_none() && *this.entered {
                this.scope.exit(None);
            }
        }
    }
}

/// Restores the task's previous cancel status when a poll of a scope's body ends, also by
/// unwinding.
pub(crate) struct StatusSwap<'a> {
    task: &'a TaskInner,
    previous: Option<Rc<ScopeState>>,
}

impl<'a> StatusSwap<'a> {
    #[inline]
    pub(crate) fn new(task: &'a TaskInner, status: Rc<ScopeState>) -> Self {
        let previous = std::mem::replace(&mut *task.current_status.borrow_mut(), status);
        StatusSwap {
            task,
            previous: Some(previous),
        }
    }
}

impl Drop for StatusSwap<'_> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            *self.task.current_status.borrow_mut() = previous;
        }
    }
}

impl<F, T> Future for ScopeRun<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<Option<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let scope = this.scope.clone();
        let polled = Runner::with_current_task(|runner, task| {
            if !*this.entered {
                let parent = task.current_status.borrow().clone();
                scope.enter(runner, parent, Some(task.key))?;
                *this.entered = true;
            }
            let _swap = StatusSwap::new(task, scope.clone());
            Ok(this.body.poll(cx))
        });
        let output = match polled {
            None => return Poll::Ready(Err(super::run::not_in_run("CancelScope::run"))),
            Some(Err(e)) => return Poll::Ready(Err(e)),
            Some(Ok(Poll::Pending)) => return Poll::Pending,
            Some(Ok(Poll::Ready(output))) => output,
        };
        let absorbs = scope.is_cancelled() && !scope.parent_cancellation_is_visible();
        *this.entered = false;
        Runner::with_current(|runner| scope.exit(Some(runner)));
        Poll::Ready(match output {
            Ok(value) => Ok(Some(value)),
            Err(e) if absorbs && e.is_cancelled() => {
                scope.cancelled_caught.set(true);
                Ok(None)
            }
            Err(e) => Err(e),
        })
    }
}
