//! Per-run pools of finished tasks, nurseries, cancel-scope nodes and child lists.
//!
//! Spawning a task, opening a nursery and entering a scope each need a heap record; ending
//! them frees it. A run that does these steadily reuses the records instead: a finished task
//! is refilled in place by the next spawn, a closed nursery and a left scope node are reset
//! in place. Only records that nothing else holds (no handle, no `Weak`) are kept, and each
//! pool is bounded so a burst does not pin its memory for the rest of the run.

use std::cell::RefCell;
use std::rc::Rc;

use super::runner::Runner;
use crate::core::cancel::ScopeState;
use crate::core::nursery::NurseryInner;
use crate::core::task::TaskInner;

/// How many spare scope nodes the run keeps.
const SPARE_SCOPES: usize = 64;

/// How many finished nurseries the run keeps.
const SPARE_NURSERIES: usize = 64;

/// How many finished task allocations the run keeps.
const SPARE_TASKS: usize = 1024;

/// How many empty child lists the run keeps, and the largest capacity it keeps.
const SPARE_CHILD_LISTS: usize = 64;

/// The spare records of a run.
#[derive(Default)]
pub(crate) struct Pools {
    /// Empty child lists of closed nurseries, for new nurseries to reuse.
    child_lists: RefCell<Vec<Vec<Rc<TaskInner>>>>,
    /// Allocations of finished tasks, for new tasks to reuse.
    pub(super) tasks: RefCell<Vec<Rc<TaskInner>>>,
    nurseries: RefCell<Vec<Rc<NurseryInner>>>,
    scopes: RefCell<Vec<Rc<ScopeState>>>,
}

impl Runner {
    /// A reset scope node from the pool, if there is one.
    pub(crate) fn take_spare_scope(&self) -> Option<Rc<ScopeState>> {
        self.pools.scopes.borrow_mut().pop()
    }

    /// Keeps a scope node that has been left, if nothing but the caller holds it, for the next
    /// scope of the run (a timeout or a sleep reuses its node).
    pub(crate) fn recycle_scope(&self, scope: &mut Rc<ScopeState>) {
        if !scope.is_exited() {
            return;
        }
        let mut spare = self.pools.scopes.borrow_mut();
        if spare.len() < SPARE_SCOPES && ScopeState::reset(scope) {
            spare.push(scope.clone());
        }
    }

    /// A reset nursery from the pool, if there is one.
    pub(crate) fn take_spare_nursery(&self) -> Option<Rc<NurseryInner>> {
        self.pools.nurseries.borrow_mut().pop()
    }

    /// Keeps a nursery whose `open_nursery` call finished, if nothing else holds it, for the
    /// next `open_nursery` of the run: the nursery record and its scope node are reused in
    /// place.
    pub(crate) fn recycle_nursery(&self, nursery: &mut Rc<NurseryInner>) {
        let mut spare = self.pools.nurseries.borrow_mut();
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
        let mut spare = self.pools.child_lists.borrow_mut();
        if spare.len() < SPARE_CHILD_LISTS {
            spare.push(std::mem::take(&mut *children));
        }
    }

    /// An empty child list with room, if the pool has one (a nursery's first child takes it
    /// instead of growing an empty `Vec`).
    pub(super) fn take_spare_child_list(&self) -> Option<Vec<Rc<TaskInner>>> {
        self.pools.child_lists.borrow_mut().pop()
    }

    /// Keeps the allocation of a finished task that nobody else holds for the next spawn.
    /// Everything the task held is dropped here (its waker stays for the next task, see
    /// `WakerPool::rekey`); only the memory is kept, emptied in place (`TaskInner::vacate`),
    /// and spawning fills it in place (`TaskInner::occupy`).
    pub(super) fn recycle_task(&self, mut task: Rc<TaskInner>) {
        let Some(inner) = Rc::get_mut(&mut task) else {
            return;
        };
        inner.vacate(&self.root_scope);
        let mut spare = self.pools.tasks.borrow_mut();
        if spare.len() < SPARE_TASKS {
            spare.push(task);
        }
    }
}
