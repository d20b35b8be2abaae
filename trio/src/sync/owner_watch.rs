//! Wakes the waiters of a lock whose explicit owner exits without releasing it.
//!
//! The public lowlevel API has no "call me when this task exits" hook, so this uses an
//! [`Instrument`]: one per run (in a [`RunVar`]), installed only while some lock that tasks
//! wait for is held through `Lock::acquire`, and removed again when none is (instruments
//! cost a little on every task step). Its `task_exited` hook breaks the locks that task
//! still owns, which fails their waiters with `BrokenResourceError`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::lock::LockCore;
use crate::lowlevel::{Instrument, RunVar, Task, add_instrument, remove_instrument};

#[derive(Default)]
struct OwnerWatch {
    /// Task id of an owner → the locks it holds that tasks wait for.
    locks: RefCell<HashMap<u64, Vec<Weak<LockCore>>>>,
}

static WATCH: RunVar<Option<Rc<OwnerWatch>>> =
    RunVar::with_default("trio::sync lock owner watch", || None);

fn current() -> Option<Rc<OwnerWatch>> {
    WATCH
        .with(|watch| watch.get_or_insert_with(Default::default).clone())
        .ok()
}

fn as_instrument(watch: Rc<OwnerWatch>) -> Rc<dyn Instrument> {
    watch
}

/// Watches `owner` for the sake of `lock`'s waiters.
pub(super) fn watch(owner: &Task, lock: &Rc<LockCore>) {
    let Some(watch) = current() else {
        return;
    };
    let first = {
        let mut locks = watch.locks.borrow_mut();
        let first = locks.is_empty();
        locks
            .entry(owner.id())
            .or_default()
            .push(Rc::downgrade(lock));
        first
    };
    if first {
        // Fails only outside a run, where there is nothing to watch.
        let _ = add_instrument(as_instrument(watch));
    }
}

/// Stops watching `owner` for `lock` (it released the lock).
pub(super) fn unwatch(owner: &Task, lock: &LockCore) {
    let Some(watch) = current() else {
        return;
    };
    let empty = {
        let mut locks = watch.locks.borrow_mut();
        if let Some(list) = locks.get_mut(&owner.id()) {
            list.retain(|l| !std::ptr::eq(l.as_ptr(), lock));
            if list.is_empty() {
                locks.remove(&owner.id());
            }
        }
        locks.is_empty()
    };
    if empty {
        let _ = remove_instrument(&as_instrument(watch));
    }
}

impl Instrument for OwnerWatch {
    fn task_exited(&self, task: &Task) {
        let Some(locks) = self.locks.borrow_mut().remove(&task.id()) else {
            return;
        };
        for lock in locks.iter().filter_map(Weak::upgrade) {
            lock.owner_exited(task);
        }
        if self.locks.borrow().is_empty() {
            if let Some(watch) = current() {
                let _ = remove_instrument(&as_instrument(watch));
            }
        }
    }
}
