//! Where run-local and task-local values are stored (the API is `local.rs`).
//!
//! A run keeps one [`RunValues`]; a task keeps an optional [`LocalMap`], shared
//! copy-on-write with the tasks it spawns. Both are keyed by the address of the `static`
//! variable that declares the value.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
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
}

impl RunValues {
    /// The value stored under `key`, if any.
    pub(crate) fn get(&self, key: usize) -> Option<RunValue> {
        self.values.borrow().get(&key).cloned()
    }

    /// The value under `key`, storing `value` there first if there is none.
    pub(crate) fn get_or_insert(&self, key: usize, value: RunValue) -> RunValue {
        self.values.borrow_mut().entry(key).or_insert(value).clone()
    }

    /// Stores `value` under `key`; returns the value it replaced.
    pub(crate) fn insert(&self, key: usize, value: RunValue) -> Option<RunValue> {
        self.values.borrow_mut().insert(key, value)
    }
}
