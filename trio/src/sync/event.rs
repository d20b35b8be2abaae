//! [`Event`]: a flag that tasks can wait for.

use std::cell::Cell;
use std::rc::Rc;

use crate::Result;
use crate::lowlevel::{ParkingLot, checkpoint};

struct EventInner {
    flag: Cell<bool>,
    lot: ParkingLot,
}

impl Default for EventInner {
    fn default() -> Self {
        EventInner {
            flag: Cell::new(false),
            // Task dumps show a waiter as "blocked in Event::wait".
            lot: ParkingLot::with_label("Event::wait"),
        }
    }
}

/// A one-shot flag: tasks [`wait`](Self::wait) until some task calls [`set`](Self::set).
///
/// Once set it stays set (there is no `clear`, as in Trio: make a new event instead). Clones
/// are handles to the same event.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let event = trio::Event::new();
///     trio::open_nursery(|nursery| async move {
///         let waiter = event.clone();
///         nursery.start_soon(async move {
///             waiter.wait().await // blocks until the parent sets it
///         })?;
///         event.set();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<EventInner>,
}

/// Statistics of an [`Event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventStatistics {
    /// Tasks blocked in [`Event::wait`].
    pub tasks_waiting: usize,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .field("tasks_waiting", &self.inner.lot.len())
            .finish()
    }
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the event has been set.
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Sets the event and wakes every waiting task. Setting it again does nothing.
    /// Not a checkpoint.
    pub fn set(&self) {
        if !self.inner.flag.replace(true) {
            self.inner.lot.unpark_all();
        }
    }

    /// Waits until the event is set.
    ///
    /// # Checkpoint
    /// Yes, always: on an event that is already set it still yields once, and in a cancelled
    /// scope it fails with `Cancelled` whether or not the event is set.
    ///
    /// # Cancel safety
    /// Safe: a cancelled or dropped wait leaves the queue and changes nothing.
    pub async fn wait(&self) -> Result<()> {
        if self.is_set() {
            checkpoint().await
        } else {
            self.inner.lot.park().await
        }
    }

    /// Trio's statistics: how many tasks wait.
    pub fn statistics(&self) -> EventStatistics {
        EventStatistics {
            tasks_waiting: self.inner.lot.len(),
        }
    }
}
