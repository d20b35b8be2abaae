//! The deadlines of the run's entered cancel scopes: a min-heap the run loop reads between
//! batches, plus a short list of registrations not yet moved into it.
//!
//! A scope with a deadline registers when it is entered and unregisters when it is left (or
//! its deadline changes). The heap is only read by the run loop, between batches
//! (`expire`, `next_deadline`), so a registration can wait until then: it goes into `pending`,
//! and is moved into the heap when the loop next looks. A scope entered and left within one
//! task step (a `move_on_after` around a body that did not block, a `fail_after` that was not
//! needed) never touches the heap: its registration is pushed onto and popped off the end of
//! `pending`.
//! A heap push and the later lazy removal of the stale entry would otherwise be most of the
//! cost of such a scope.
//!
//! The driver knows nothing of cancel scopes: it stores `Weak` handles to anything that
//! implements [`DeadlineOwner`] (a cell for the registration token) and hands back the owners
//! whose deadlines passed; the run loop decides what that means (it cancels the scopes).
//!
//! Heap entries are removed lazily: leaving a scope only zeroes its token, and an entry whose
//! token no longer matches its scope's is stale and skipped (dropped when it reaches the top,
//! or all at once when there are many).

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::rc::{Rc, Weak};

/// What can be registered: something that keeps the token of its registration (0: none).
pub(crate) trait DeadlineOwner {
    /// The cell the driver writes the registration token into.
    fn deadline_token(&self) -> &Cell<u64>;
}

/// A deadline registration in the heap.
struct DeadlineEntry<T> {
    deadline: f64,
    token: u64,
    scope: Weak<T>,
}

impl<T> PartialEq for DeadlineEntry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for DeadlineEntry<T> {}

impl<T> PartialOrd for DeadlineEntry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for DeadlineEntry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.deadline
            .total_cmp(&other.deadline)
            .then(self.token.cmp(&other.token))
    }
}

impl<T: DeadlineOwner> DeadlineEntry<T> {
    /// The owner, if it is still registered with this entry's token.
    fn live_scope(&self) -> Option<Rc<T>> {
        self.scope
            .upgrade()
            .filter(|s| s.deadline_token().get() == self.token)
    }
}

/// The deadlines of every entered scope that has one.
pub(crate) struct Deadlines<T> {
    heap: BinaryHeap<Reverse<DeadlineEntry<T>>>,
    /// Registrations not yet in the heap, oldest first: their tokens are all above
    /// `flushed_token`.
    pending: Vec<DeadlineEntry<T>>,
    next_token: u64,
    /// Every token up to this one was registered before the last flush (is in the heap, or
    /// was never moved there because it was unregistered first).
    flushed_token: u64,
    /// Heap entries known to be stale.
    stale: usize,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            pending: Vec::new(),
            next_token: 0,
            flushed_token: 0,
            stale: 0,
        }
    }
}

impl<T: DeadlineOwner> Deadlines<T> {
    /// Registers `scope` with `deadline`. Only through `Runner::register_deadline`, which
    /// tells the run loop.
    #[inline]
    pub(crate) fn register(&mut self, scope: &Rc<T>, deadline: f64) {
        self.next_token += 1;
        scope.deadline_token().set(self.next_token);
        self.pending.push(DeadlineEntry {
            deadline,
            token: self.next_token,
            scope: Rc::downgrade(scope),
        });
    }

    /// Forgets the registration of `scope`, if it has one.
    #[inline]
    pub(crate) fn unregister(&mut self, scope: &T) {
        let token = scope.deadline_token().replace(0);
        if token == 0 {
            return;
        }
        if token > self.flushed_token {
            // Still pending: usually the last registration (scopes nest).
            if self.pending.last().is_some_and(|e| e.token == token) {
                self.pending.pop();
            } else if let Some(i) = self.pending.iter().position(|e| e.token == token) {
                self.pending.remove(i);
            }
            return;
        }
        self.stale += 1;
        self.drop_stale_top();
        if self.stale > 64 && self.stale * 2 > self.heap.len() {
            self.heap.retain(|Reverse(e)| e.live_scope().is_some());
            self.stale = 0;
        }
    }

    /// Moves the pending registrations that are still live into the heap.
    fn flush(&mut self) {
        for entry in self.pending.drain(..) {
            if entry.live_scope().is_some() {
                self.heap.push(Reverse(entry));
            }
        }
        self.flushed_token = self.next_token;
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.live_scope().is_some() {
                break;
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// The earliest live deadline, or infinity.
    pub(crate) fn next_deadline(&mut self) -> f64 {
        if !self.pending.is_empty() {
            self.flush();
        }
        self.drop_stale_top();
        self.heap
            .peek()
            .map_or(f64::INFINITY, |Reverse(e)| e.deadline)
    }

    /// Whether no deadline is registered (stale heap entries aside).
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.pending.is_empty()
    }

    /// Removes and returns every scope whose deadline is at or before `now`.
    #[inline]
    pub(crate) fn expire(&mut self, now: f64) -> Vec<Rc<T>> {
        // The run loop asks between batches, and almost always nothing is due: answer that
        // without moving the pending registrations (the next `expire` that finds one due, or
        // `next_deadline`, moves them).
        if self.pending.iter().all(|e| e.deadline > now)
            && self
                .heap
                .peek()
                .is_none_or(|Reverse(top)| top.deadline > now)
        {
            return Vec::new();
        }
        self.expire_due(now)
    }

    #[inline(never)]
    fn expire_due(&mut self, now: f64) -> Vec<Rc<T>> {
        self.flush();
        let mut expired = Vec::new();
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            if let Some(Reverse(entry)) = self.heap.pop() {
                match entry.live_scope() {
                    Some(scope) => {
                        scope.deadline_token().set(0);
                        expired.push(scope);
                    }
                    None => self.stale = self.stale.saturating_sub(1),
                }
            }
        }
        expired
    }
}
