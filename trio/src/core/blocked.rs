//! What a blocked task waits for: the record a blocking operation leaves in its task, and the
//! label and describer a parking lot carries, which task dumps turn into "blocked in
//! `Lock::acquire` (held by task 4 "writer"; 2 waiting)".
//!
//! The record is written on the blocking path, so it is two stores: what the task parked on
//! ([`BlockedOn`], a `Copy` value) and the task's poll count at that moment. Nothing is
//! cleared when the task wakes: a dump trusts a record only while the task is neither running
//! nor runnable and has not been polled since it was written (the counts match). Everything
//! else about the description (the lock's owner, the channel's statistics, the sleep's
//! deadline in seconds from now) is computed when a dump is taken.
//!
//! # Safety
//!
//! A [`BlockedOn::Lot`] record holds a raw pointer to the [`LotInfo`] inside a parking lot's
//! shared block. The pointer is only read (`TaskInner::parked_lot`) while the record is valid
//! in the sense above, and then the `Park` future that wrote it is still queued in that lot
//! (or in the lot `repark` moved it to, which rewrites the record), and a queued `Park` holds a
//! strong reference to its lot. The ways a `Park` can stop being queued without its task being
//! polled again all clear or rewrite the record (`parking.rs`, `wait_list.rs`):
//! - it is woken through its own task: the task becomes runnable, then is polled;
//! - it is woken through a foreign waker (a combinator's): `Wake::wake` clears the record;
//! - it is dropped while queued or in a hand-off (a future shared with another task):
//!   `Park::leave_queue` and `Park::drop_in_handoff` clear the record if it is theirs;
//! - it is moved to another lot: `ParkingLot::repark` points the record at the new lot.
//!
//! A finished task's record is never read, and `TaskInner::occupy` resets it.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};

use super::parking::ParkingLot;

/// Describes the state of a blocking primitive for task dumps: a lock's owner, a channel's
/// statistics. Called only when a dump is taken, never on the blocking path.
///
/// A primitive built on [`ParkingLot`] gives its lot a label ([`ParkingLot::with_label`]) and,
/// for details, a describer ([`ParkingLot::set_describer`]): a weak handle to its own shared
/// state, so the lot keeps nothing alive.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use trio::lowlevel::{DescribeWait, ParkingLot, task_dump, wait_all_tasks_blocked};
///
/// struct Gate {
///     passes: Cell<u32>,
///     lot: ParkingLot,
/// }
///
/// impl DescribeWait for Gate {
///     fn describe_wait(&self) -> String {
///         format!("{} passes so far", self.passes.get())
///     }
/// }
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let gate = Rc::new(Gate { passes: Cell::new(3), lot: ParkingLot::with_label("Gate::pass") });
///     gate.lot.set_describer(&gate);
///     trio::open_nursery(|nursery| async move {
///         let waiter = gate.clone();
///         nursery.start_soon_named("visitor", async move { waiter.lot.park().await })?;
///         wait_all_tasks_blocked().await?;
///         let dump = task_dump()?;
///         assert!(dump.contains("blocked in Gate::pass (3 passes so far)"), "{dump}");
///         gate.lot.unpark_all();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
pub trait DescribeWait {
    /// One line about the primitive's state, shown in parentheses after its label.
    fn describe_wait(&self) -> String;
}

/// The label and describer of a parking lot, kept beside its queue (outside the queue's
/// `RefCell`, so a dump reads it without borrowing the queue).
pub(crate) struct LotInfo {
    label: Cell<&'static str>,
    describer: Cell<Option<Weak<dyn DescribeWait>>>,
}

impl LotInfo {
    pub(crate) fn new(label: &'static str) -> Self {
        LotInfo {
            label: Cell::new(label),
            describer: Cell::new(None),
        }
    }

    pub(crate) fn label(&self) -> &'static str {
        self.label.get()
    }

    /// The describer's line, if the lot has a describer whose primitive is still alive.
    pub(crate) fn detail(&self) -> Option<String> {
        let describer = self.describer.take();
        let target = describer.as_ref().and_then(Weak::upgrade);
        self.describer.set(describer);
        target.map(|t| t.describe_wait())
    }
}

/// The label of a lot made with [`ParkingLot::new`].
pub(crate) const DEFAULT_LOT_LABEL: &str = "ParkingLot::park";

impl<D> ParkingLot<D> {
    /// An empty lot whose waiters show as "blocked in `label`" in task dumps (a lot made
    /// with [`new`](ParkingLot::new) says `ParkingLot::park`). Name it after the operation
    /// that parks, as trio's own primitives do (`Lock::acquire`, `Event::wait`).
    pub fn with_label(label: &'static str) -> Self {
        let lot = Self::new();
        lot.inner.info.label.set(label);
        lot
    }

    /// The label task dumps show for this lot's waiters.
    pub fn label(&self) -> &'static str {
        self.inner.info.label()
    }

    /// Sets the label task dumps show for this lot's waiters (see [`with_label`](Self::with_label)).
    pub fn set_label(&self, label: &'static str) {
        self.inner.info.label.set(label);
    }

    /// Gives the lot a describer: task dumps call it for a line about the primitive's state
    /// after the label (see [`DescribeWait`]). Usually the primitive's own shared state, which
    /// owns the lot: the lot holds it weakly (no cycle), and once it is gone the dump shows
    /// the label alone.
    pub fn set_describer<T: DescribeWait + 'static>(&self, describer: &Rc<T>) {
        let weak: Weak<T> = Rc::downgrade(describer);
        let weak: Weak<dyn DescribeWait> = weak;
        self.inner.info.describer.set(Some(weak));
    }

    /// The lot's describer's line now, if it has one (what a task dump shows).
    pub fn describe(&self) -> Option<String> {
        self.inner.info.detail()
    }
}

/// What a blocked task waits for, as its blocking operation recorded it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum BlockedOn {
    /// Nothing recorded (an operation that does not say, such as a foreign future).
    #[default]
    Unknown,
    /// Parked in a lot (see the module's safety notes).
    Lot(NonNull<LotInfo>),
    /// `sleep_forever`, inside a scope whose own deadline is this (infinite: none).
    Sleep { deadline: f64 },
    /// `wait_readable` / `wait_writable`.
    Io { fd: RawFd, writable: bool },
    /// A poll-level wait on a registered fd (`FdRegistration`: a socket, a pipe).
    FdReady { fd: RawFd, writable: bool },
    /// A nursery whose body is done waits for its children.
    Children,
    /// `Nursery::start` waits for its task to call `started()`.
    Start,
    /// `wait_all_tasks_blocked`.
    AllTasksBlocked,
}
