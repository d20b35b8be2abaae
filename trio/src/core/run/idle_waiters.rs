//! The tasks blocked in `wait_all_tasks_blocked`, by cushion.
//!
//! The run loop asks for the smallest cushion when it is about to idle (the waiters with that
//! cushion wake once every other task has been blocked that long) and wakes those waiters.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::core::task::TaskKey;

/// A waiter: its task and the flag set when it is woken.
type IdleWaiter = (TaskKey, Rc<Cell<bool>>);

/// `wait_all_tasks_blocked` waiters by (cushion bits, arrival).
#[derive(Default)]
pub(crate) struct IdleWaiters {
    waiters: RefCell<BTreeMap<(u64, u64), IdleWaiter>>,
    next_seq: Cell<u64>,
}

impl IdleWaiters {
    /// Adds a waiter; returns its slot (for `remove`).
    pub(crate) fn add(&self, cushion: f64, key: TaskKey, flag: Rc<Cell<bool>>) -> (u64, u64) {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let slot = (cushion.to_bits(), seq);
        self.waiters.borrow_mut().insert(slot, (key, flag));
        slot
    }

    pub(crate) fn remove(&self, slot: (u64, u64)) {
        self.waiters.borrow_mut().remove(&slot);
    }

    /// The smallest cushion waited for, as bits (cushions are non-negative, so their bits
    /// order as the numbers do).
    pub(crate) fn smallest_cushion(&self) -> Option<u64> {
        self.waiters
            .borrow()
            .first_key_value()
            .map(|(&(bits, _), _)| bits)
    }

    /// Takes every waiter whose cushion is `cushion_bits`, marking each woken; returns their
    /// tasks, in arrival order, for the caller to schedule.
    pub(crate) fn take_with_cushion(&self, cushion_bits: u64) -> Vec<TaskKey> {
        let mut waiters = self.waiters.borrow_mut();
        let mut woken = Vec::new();
        while let Some(entry) = waiters.first_entry() {
            if entry.key().0 != cushion_bits {
                break;
            }
            let (key, flag) = entry.remove();
            flag.set(true);
            woken.push(key);
        }
        woken
    }
}
