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
//! The public handle, `CancelScope`, and the future that runs a body in a scope are in
//! `cancel_scope.rs`; deadline scopes that enter the tree only when their body blocks are in
//! `timeout.rs`.
//!
//! A scope with a deadline registers it with the run's deadline driver (`deadlines.rs`) when
//! it is entered and unregisters it when it is left; the run loop cancels the scopes whose
//! deadlines pass.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

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
pub(crate) enum Phase {
    Unentered,
    Entered,
    Exited,
}

/// One cancel scope: its settings and its node in the cancel-status tree.
pub(crate) struct ScopeState {
    pub(crate) cancel_called: Cell<bool>,
    reason: RefCell<Option<CancelReason>>,
    pub(crate) cancelled_caught: Cell<bool>,
    pub(crate) shield: Cell<bool>,
    pub(crate) deadline: Cell<f64>,
    pub(crate) relative_deadline: Cell<f64>,
    pub(crate) phase: Cell<Phase>,
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

    /// Sets the absolute deadline of a node that is not entered yet.
    pub(crate) fn set_deadline_before_entry(&self, deadline: f64) {
        debug_assert_eq!(self.phase.get(), Phase::Unentered);
        self.deadline.set(deadline);
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

    /// The task that entered the scope (task dumps hang a scope under its owner).
    pub(crate) fn owner(&self) -> Option<TaskKey> {
        self.owner.get()
    }

    /// The nodes entered under this one, for task dumps.
    pub(crate) fn child_nodes(&self) -> Vec<Rc<ScopeState>> {
        self.children.borrow().clone()
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
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "trio::cancel",
            source = ?reason.source,
            reason = reason.reason.as_deref().unwrap_or(""),
            failed_task = reason.task.as_deref().unwrap_or(""),
            "cancel scope cancelled"
        );
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
        self.effectively_cancelled.set(self.computed_state());
    }

    /// What the effective state of this node should be: cancelled itself, or reached by its
    /// parent's cancellation through no shield.
    #[inline]
    fn computed_state(&self) -> bool {
        let parent_cancelled = self
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| p.is_cancelled());
        self.cancel_called.get() || (!self.shield.get() && parent_cancelled)
    }

    /// Recomputes the effective state of this node and, where it changed, of its subtree;
    /// wakes the tasks under every node that became cancelled.
    #[inline]
    pub(crate) fn recalculate(self: &Rc<Self>, runner: &Runner) {
        // Fast path (every scope entry comes here): nothing changes, nothing to push down.
        if self.effectively_cancelled.get() != self.computed_state() {
            self.propagate(runner);
        }
    }

    /// The slow half of `recalculate`: pushes a changed state down the subtree and wakes the
    /// tasks under every node that became cancelled.
    #[inline(never)]
    fn propagate(self: &Rc<Self>, runner: &Runner) {
        // A leaf that only its owner runs in (a timeout's, a `join`'s): no walk, no lists.
        if self.children.borrow().is_empty() && self.tasks.borrow().is_empty() {
            let new = self.computed_state();
            if self.effectively_cancelled.replace(new) != new
                && new
                && let Some(owner) = self.owner.get()
            {
                wake_for_cancel(runner, owner);
            }
            return;
        }
        let mut to_wake: Vec<TaskKey> = Vec::new();
        let mut stack: Vec<Rc<ScopeState>> = vec![self.clone()];
        while let Some(node) = stack.pop() {
            let new = node.computed_state();
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
            wake_for_cancel(runner, key);
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

/// Wakes a task that cancellation has reached: schedules it, and wakes the wakers of
/// operations blocked under a combinator's waker, which must be re-polled too.
fn wake_for_cancel(runner: &Runner, key: TaskKey) {
    runner.schedule(key);
    let task = runner.task(key);
    if let Some(task) = task
        && !task.cancel_wakers.borrow().is_empty()
    {
        task.wake_cancel_wakers();
    }
}
