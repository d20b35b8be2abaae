//! External waits: work outside the run that a task is waiting for, counted by the run.
//!
//! A task that waits for a worker thread is not blocked in the sense of
//! `wait_all_tasks_blocked` or a `MockClock`'s autojump: the thread may finish at any moment
//! and wake it. Trio does not know this (python-trio/trio#456: autojump fires while a thread
//! runs). Here the code that hands work to another thread holds an [`ExternalWait`] for as
//! long as that work runs; while any is held, the run loop neither wakes
//! `wait_all_tasks_blocked` waiters nor autojumps, and does not call the run deadlocked. It
//! blocks in the reactor instead, until the worker's completion (a waker, or a
//! `TrioToken::run_sync_soon` callback) wakes it.

use std::cell::Cell;
use std::rc::Rc;

use super::run::{Runner, not_in_run};
use crate::error::Result;

/// A count of work in flight outside the run, held while a task waits for it.
///
/// Take one when a task hands work to something that will wake it from outside the run (a
/// worker thread) and drop it once that work is over (its result arrived, or the task gave
/// up on it). While any is held, the run is not idle: `wait_all_tasks_blocked` waiters stay
/// blocked and a mock clock does not autojump. `trio::to_thread` holds one per call.
///
/// Holding one that nothing outside will ever end keeps those waiters (and autojump) from
/// ever firing, so drop it as soon as the outside work is done. The guard belongs to the
/// run's thread (it is `!Send`); dropping it after the run has ended does nothing.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// use trio::lowlevel::{ExternalWait, current_statistics};
/// trio::run(async {
///     let wait = ExternalWait::begin()?;
///     assert_eq!(current_statistics()?.external_waits, 1);
///     drop(wait);
///     assert_eq!(current_statistics()?.external_waits, 0);
///     Ok(())
/// })
/// # }
/// ```
#[must_use = "the wait ends as soon as the guard is dropped"]
pub struct ExternalWait {
    count: Rc<Cell<usize>>,
}

impl ExternalWait {
    /// Counts one external wait in the current run until the guard is dropped. Fails outside
    /// a run. Not a checkpoint.
    pub fn begin() -> Result<ExternalWait> {
        Runner::with_current(|runner| {
            let count = runner.external_waits().clone();
            count.set(count.get() + 1);
            ExternalWait { count }
        })
        .ok_or_else(|| not_in_run("ExternalWait::begin"))
    }
}

impl Drop for ExternalWait {
    fn drop(&mut self) {
        self.count.set(self.count.get() - 1);
    }
}

impl std::fmt::Debug for ExternalWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalWait")
            .field("in_flight", &self.count.get())
            .finish()
    }
}
