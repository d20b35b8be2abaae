//! Where run-local and task-local values are stored (the API is `local.rs`).
//!
//! A run keeps one [`RunValues`]; a task keeps an optional [`LocalMap`], shared
//! copy-on-write with the tasks it spawns. Both are keyed by the address of the `static`
//! variable that declares the value.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A task's local values, shared copy-on-write with the tasks it spawned.
pub(crate) type LocalMap = HashMap<usize, Rc<dyn Any>>;

/// One run-local value. Each sits in its own cell so that the code using one value may use
/// other run variables.
pub(crate) type RunValue = Rc<RefCell<Box<dyn Any>>>;

/// The run-local values of a run.
#[derive(Default)]
pub(crate) struct RunValues {
    values: RefCell<HashMap<usize, RunValue>>,
    /// The keys whose value came from the variable's default rather than a `set` (Trio
    /// stores nothing for those: a default given to `get` comes before them).
    defaulted: RefCell<HashSet<usize>>,
}

impl RunValues {
    /// The value stored under `key`, if any.
    pub(crate) fn get(&self, key: usize) -> Option<RunValue> {
        self.values.borrow().get(&key).cloned()
    }

    /// The value stored under `key` by a `set` (not one that came from the default).
    pub(crate) fn get_set(&self, key: usize) -> Option<RunValue> {
        if self.defaulted.borrow().contains(&key) {
            return None;
        }
        self.get(key)
    }

    /// The value under `key`, storing the default `value` there first if there is none.
    pub(crate) fn get_or_insert_default(&self, key: usize, value: RunValue) -> RunValue {
        let mut values = self.values.borrow_mut();
        values
            .entry(key)
            .or_insert_with(|| {
                self.defaulted.borrow_mut().insert(key);
                value
            })
            .clone()
    }

    /// Removes the value under `key` (the variable has none in this run again).
    pub(crate) fn remove(&self, key: usize) -> Option<RunValue> {
        self.defaulted.borrow_mut().remove(&key);
        self.values.borrow_mut().remove(&key)
    }

    /// Stores `value` under `key`; returns the value it replaced.
    pub(crate) fn insert(&self, key: usize, value: RunValue) -> Option<RunValue> {
        self.defaulted.borrow_mut().remove(&key);
        self.values.borrow_mut().insert(key, value)
    }
}
