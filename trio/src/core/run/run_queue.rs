//! The run queue: the tasks to run in the next batch.
//!
//! # Safety
//!
//! The queue is a `Vec` in an `UnsafeCell`, reached only through the methods below. None of
//! them calls anything (no user code, no allocation, no drop) while it holds its reference
//! into the cell, so no two references to the `Vec` are ever alive at once; growing takes the
//! `Vec` out of the cell first. The runner that owns the queue is `!Sync`, so only the run's
//! thread reaches it. A `RefCell` would check and set a borrow flag on every schedule point
//! and every batch, which is most of a task switch's cost (docs/benchmarks.md).
//!
//! Checked by the run loop's tests under Miri (`scripts/miri.sh`; docs/decisions.md).

use std::cell::UnsafeCell;
use std::rc::Rc;

use crate::core::task::TaskInner;

/// Runnable tasks, each with a strong reference of its own.
pub(crate) struct RunQueue(UnsafeCell<Vec<Rc<TaskInner>>>);

impl RunQueue {
    pub(crate) fn new() -> Self {
        RunQueue(UnsafeCell::new(Vec::new()))
    }

    /// Appends `task`. Growing is out of line, so a schedule point that does not grow the
    /// queue keeps nothing live across a call.
    #[inline(always)]
    pub(crate) fn push(&self, task: Rc<TaskInner>) {
        // SAFETY: see the module docs; `Vec::push` does not allocate when the capacity
        // suffices (documented), so this block calls nothing while `queue` is alive.
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
        // SAFETY: see the module docs; `take` leaves an empty `Vec` (no allocation) and calls
        // nothing.
        let mut queue = std::mem::take(unsafe { &mut *self.0.get() });
        queue.push(task);
        // SAFETY: see the module docs; `replace` calls nothing.
        let meanwhile = std::mem::replace(unsafe { &mut *self.0.get() }, queue);
        // Nothing can have been queued during the allocation, but if something was, it stays
        // queued.
        for task in meanwhile {
            self.push(task);
        }
    }

    /// Exchanges the queue with `batch`.
    #[inline(always)]
    pub(crate) fn swap(&self, batch: &mut Vec<Rc<TaskInner>>) {
        // SAFETY: see the module docs; `swap` calls nothing.
        std::mem::swap(batch, unsafe { &mut *self.0.get() });
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        // SAFETY: see the module docs; the shared reference ends within this expression.
        unsafe { &*self.0.get() }.len()
    }

    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
