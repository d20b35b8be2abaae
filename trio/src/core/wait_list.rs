//! The intrusive FIFO under [`ParkingLot`](super::parking::ParkingLot).
//!
//! A waiter's [`Node`] lives inside its `Park` future, and the list links nodes in place: parking
//! allocates nothing, and a waiter that leaves (cancelled, or its future dropped) unlinks itself
//! in O(1) instead of leaving a tombstone to sweep.
//!
//! # Safety
//!
//! The list holds raw pointers to nodes it does not own. It relies on these rules, which
//! `parking.rs` keeps:
//!
//! - A node is linked only after its `Park` is pinned (from its first poll), and a `Park` whose
//!   node is linked unlinks it in `Drop`. The pin guarantee then means a linked node's memory
//!   is valid: it cannot move, and it cannot go away without that `Drop` running first.
//! - A node is in at most one list, and the owner knows which: the lot its `Park` was made for,
//!   or the one it was reparked to (which the node keeps alive), so a list never dies while it
//!   holds a node.
//! - Every field of a node is a `Cell`, so the list and the `Park` only ever share the node
//!   (`&Node`), never hold `&mut` to it, and the `Park` type is `!Unpin` (`PhantomPinned`).
//! - A pointer taken out of the list ([`WaitList::pop_front`]) is used only until code runs
//!   that could drop its `Park` (a waker, a callback, a value's `Drop`), unless the owner has
//!   been told to report its drop (the hand-off flag in `parking.rs`).
//!
//! Checked by `trio/tests/core_parking_lot*.rs` and the sync and channel suites under Miri
//! (`scripts/miri.sh`, Stacked and Tree Borrows).

use std::cell::Cell;
use std::marker::PhantomPinned;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::Waker;

use super::run::Runner;
use super::task::TaskInner;

/// Where a waiter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeState {
    /// Not queued yet (or never will be).
    Idle,
    /// Linked in a lot's list.
    Parked,
    /// Taken out of the list by `unpark_one_with`, which is running its callback on the
    /// waiter's data and then wakes it.
    Handoff,
    /// Taken out of the list by `unpark_all_where`, which is running its callback on the
    /// waiter's data and then wakes it or puts it back; still counted as waiting.
    Sorting,
    Unparked,
    /// Left the lot before being woken (cancelled or dropped).
    Left,
    /// Failed by `break_lot` (the reason is in the lot).
    Broken,
}

pub(super) type NodePtr<D> = NonNull<Node<D>>;

/// One waiter, embedded in its `Park` future.
pub(super) struct Node<D> {
    prev: Cell<Option<NodePtr<D>>>,
    next: Cell<Option<NodePtr<D>>>,
    pub(super) state: Cell<NodeState>,
    /// The waiter's data, from `park_with` until it is taken.
    pub(super) data: Cell<Option<D>>,
    /// The waker to wake, when it is not the parked task's own waker (`None`).
    ///
    /// A task parked directly (not under a combinator that gives it another
    /// waker) is woken through its task (`Runner::wake_task`), so parking clones no `Waker`.
    pub(super) waker: Cell<Option<Waker>>,
    /// The parked task, while it is parked; taken by the wake-up.
    pub(super) task: Cell<Option<Rc<TaskInner>>>,
    /// While the state is `Handoff` or `Sorting`: the flag the unparker watches, which the `Park` clears if
    /// it is dropped before the unparker is done.
    pub(super) handoff: Cell<Option<NonNull<Cell<bool>>>>,
    _pinned: PhantomPinned,
}

impl<D> Node<D> {
    pub(super) fn new(data: D) -> Self {
        Node {
            prev: Cell::new(None),
            next: Cell::new(None),
            state: Cell::new(NodeState::Idle),
            data: Cell::new(Some(data)),
            waker: Cell::new(None),
            task: Cell::new(None),
            handoff: Cell::new(None),
            _pinned: PhantomPinned,
        }
    }

    /// What waking this waiter takes: its waker or its task. Taking them out first lets the
    /// caller wake after it is done with the node (a waker can run any code, even code that
    /// drops the `Park`).
    #[inline]
    pub(super) fn take_wake(&self) -> Wake {
        Wake {
            waker: self.waker.take(),
            task: self.task.take(),
        }
    }

    /// The parked task, cloned.
    pub(super) fn task(&self) -> Option<Rc<TaskInner>> {
        let task = self.task.take();
        let clone = task.clone();
        self.task.set(task);
        clone
    }
}

/// A waiter's wake-up, taken out of its node.
pub(super) struct Wake {
    waker: Option<Waker>,
    task: Option<Rc<TaskInner>>,
}

impl Wake {
    /// The task this wake-up is for.
    pub(super) fn task(&self) -> Option<&Rc<TaskInner>> {
        self.task.as_ref()
    }

    #[inline(always)]
    pub(super) fn wake(self) {
        if let Some(waker) = self.waker {
            // A combinator's waker may never reschedule the task, whose record of the lot
            // would then outlive the park (`blocked.rs`): forget it. (Woken through its own
            // task, the task becomes runnable and the record stale by its poll count.)
            if let Some(task) = &self.task {
                task.forget_blocked();
            }
            waker.wake();
        } else if let Some(task) = self.task {
            Runner::wake_task(task);
        }
    }
}

/// A FIFO of linked nodes (see the module's safety rules).
pub(super) struct WaitList<D> {
    head: Option<NodePtr<D>>,
    tail: Option<NodePtr<D>>,
    len: usize,
}

impl<D> Default for WaitList<D> {
    fn default() -> Self {
        WaitList {
            head: None,
            tail: None,
            len: 0,
        }
    }
}

impl<D> WaitList<D> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    /// `node` is valid, pinned and in no list, and it stays valid until it is unlinked.
    #[inline]
    pub(super) unsafe fn push_back(&mut self, node: NodePtr<D>) {
        // SAFETY: the caller guarantees `node` is valid.
        let n = unsafe { node.as_ref() };
        n.prev.set(self.tail);
        n.next.set(None);
        match self.tail {
            // SAFETY: a linked node is valid (module rules).
            Some(tail) => unsafe { tail.as_ref() }.next.set(Some(node)),
            None => self.head = Some(node),
        }
        self.tail = Some(node);
        self.len += 1;
    }

    /// Links `node` at the front.
    ///
    /// # Safety
    /// As [`push_back`](Self::push_back).
    pub(super) unsafe fn push_front(&mut self, node: NodePtr<D>) {
        // SAFETY: the caller guarantees `node` is valid.
        let n = unsafe { node.as_ref() };
        n.next.set(self.head);
        n.prev.set(None);
        match self.head {
            // SAFETY: a linked node is valid (module rules).
            Some(head) => unsafe { head.as_ref() }.prev.set(Some(node)),
            None => self.tail = Some(node),
        }
        self.head = Some(node);
        self.len += 1;
    }

    /// Unlinks and returns the oldest node. The pointer stays valid only until code runs that
    /// could drop its `Park` (module rules).
    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<NodePtr<D>> {
        let node = self.head?;
        // SAFETY: a linked node is valid (module rules).
        let n = unsafe { node.as_ref() };
        let next = n.next.take();
        match next {
            // SAFETY: a linked node is valid (module rules).
            Some(next) => unsafe { next.as_ref() }.prev.set(None),
            None => self.tail = None,
        }
        self.head = next;
        n.prev.set(None);
        self.len -= 1;
        Some(node)
    }

    /// Unlinks `node` from wherever it is in the list.
    ///
    /// # Safety
    /// `node` is linked in this list.
    pub(super) unsafe fn unlink(&mut self, node: NodePtr<D>) {
        // SAFETY: the caller guarantees `node` is linked here, so valid.
        let n = unsafe { node.as_ref() };
        let (prev, next) = (n.prev.take(), n.next.take());
        match prev {
            // SAFETY: a linked node is valid (module rules).
            Some(prev) => unsafe { prev.as_ref() }.next.set(next),
            None => self.head = next,
        }
        match next {
            // SAFETY: a linked node is valid (module rules).
            Some(next) => unsafe { next.as_ref() }.prev.set(prev),
            None => self.tail = prev,
        }
        self.len -= 1;
    }

    /// Calls `f` on every node, oldest first. `f` must not run code that could drop a `Park`
    /// or reach this list.
    pub(super) fn for_each(&self, mut f: impl FnMut(&Node<D>)) {
        let mut cursor = self.head;
        while let Some(node) = cursor {
            // SAFETY: a linked node is valid (module rules), and `f` unlinks nothing.
            let n = unsafe { node.as_ref() };
            f(n);
            cursor = n.next.get();
        }
    }
}
