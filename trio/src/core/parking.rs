//! `ParkingLot`: the one blocking primitive trio builds everything else on.
//!
//! A parking lot is a FIFO queue of parked tasks. [`ParkingLot::park`] blocks the calling task
//! until another task unparks it; [`unpark`](ParkingLot::unpark) wakes the oldest waiters,
//! [`repark`](ParkingLot::repark) moves waiters to another lot without waking them (keeping
//! their order), and [`break_lot`](ParkingLot::break_lot) fails every current and future
//! waiter with [`BrokenResourceError`].
//!
//! Cancellation is lossless by construction: a parked task that is cancelled (or whose `Park`
//! future is dropped) leaves the queue and nothing happened; a task that was already unparked
//! returns success even if its scope was cancelled meanwhile. Code that hands something to the
//! unparked task (a lock, a value) checks [`Park::is_unparked`] when its future is dropped
//! and passes the hand-off on.
//!
//! ## Data carried by a waiter
//!
//! A `ParkingLot<D>` parks each task with a value of type `D` (`()` by default) that the
//! unparker can read and change before it wakes the task ([`ParkingLot::unpark_one_with`],
//! [`ParkingLot::unpark_all_where`]) or swap for another ([`ParkingLot::unpark_one_replacing`]),
//! and that the parked task gets back ([`Park::take_data`]). Memory channels park a blocked
//! send with its value and a blocked receive with the slot its value is delivered into.
//!
//! Why not a wait queue of their own beside a lot: then every blocked operation lives in two
//! FIFOs that must be kept in step (two allocations, two pushes, two pops, two tombstones).
//! One queue that carries the data is both simpler and cheaper, and the lot stays the one
//! blocking primitive (docs/decisions.md).
//!
//! ## Waiters live in their futures
//!
//! The queue is intrusive (`wait_list.rs`): each waiter's node is a field of its [`Park`]
//! future, linked in place once the future is pinned by its first poll. Parking allocates
//! nothing and leaving is O(1). The price is that `Park` is `!Unpin`: a future that holds one
//! pins it (`pin!`, or a pin projection).
//!
//! Why not a reference-counted slot per waiter, pooled per lot: every park would then clone
//! and drop the slot's handle twice, pop and push the pool, and leave a tombstone in the queue
//! when it was cancelled (docs/decisions.md).
//!
//! An unparker that runs a callback on a waiter's data ([`ParkingLot::unpark_one_with`],
//! [`ParkingLot::unpark_all_where`]) releases the lot while the callback runs, so the callback
//! may use the lot. The waiter is then out of the queue in the `Handoff` state, and the
//! unparker watches a flag that the waiter's `Park` clears if it is dropped meanwhile; a guard
//! finishes the hand-off (or puts the waiters back) even if the callback panics.
//!
//! # Safety
//!
//! The unsafe code here is the use of the intrusive list's node pointers; the rules it keeps
//! are written out in `wait_list.rs` (a node is linked only once its `Park` is pinned, a linked
//! node is unlinked by its `Park`'s `Drop`, a pointer taken out of the list is used only until
//! code runs that could drop its `Park`, unless the hand-off flag reports that drop). The
//! dangerous paths (callbacks that drop the waiter they are handed, callbacks that panic,
//! waiters that outlive their new lot's handle) are driven by
//! `trio/tests/core_parking_lot_handoff.rs`, which passes under Miri (`scripts/miri.sh`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::blocked::{BlockedOn, DEFAULT_LOT_LABEL, LotInfo};
use super::run::{Runner, not_in_run};
use super::task::Task;
use super::wait_list::{Node, NodePtr, NodeState, WaitList, Wake};
use crate::error::{BrokenResourceError, Error, Result};

pub(super) struct LotInner<D> {
    queue: WaitList<D>,
    /// Waiters out of the queue in an `unpark_all_where` whose callback has not decided on
    /// them yet: still counted as waiting.
    sorting: usize,
    broken: Option<String>,
    /// The tasks whose exit (or `break_lot` call) broke the lot, in order (Trio's list:
    /// breaking a broken lot adds a breaker).
    broken_by: Vec<Task>,
}

impl<D> Default for LotInner<D> {
    fn default() -> Self {
        LotInner {
            queue: WaitList::default(),
            sorting: 0,
            broken: None,
            broken_by: Vec::new(),
        }
    }
}

/// What a lot's handles share: the queue, and beside it (readable without borrowing the
/// queue) the label and describer that task dumps show (`blocked.rs`).
pub(super) struct LotShared<D> {
    pub(super) info: LotInfo,
    state: RefCell<LotInner<D>>,
}

impl<D> std::ops::Deref for LotShared<D> {
    type Target = RefCell<LotInner<D>>;

    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

type Lot<D> = Rc<LotShared<D>>;

/// Statistics of a [`ParkingLot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParkingLotStatistics {
    /// Tasks parked now.
    pub tasks_waiting: usize,
}

/// A FIFO queue of parked tasks: the one blocking primitive the rest of trio is built on.
///
/// [`park`](ParkingLot::park) blocks the calling task until another task unparks it;
/// [`unpark`](ParkingLot::unpark) wakes the oldest waiters; [`repark`](ParkingLot::repark)
/// moves waiters to another lot without waking them, keeping their order; and
/// [`break_lot`](ParkingLot::break_lot) fails every current and future waiter with
/// [`BrokenResourceError`].
///
/// Each waiter can carry a value of type `D` ([`park_with`](ParkingLot::park_with)) that the
/// unparker reads or changes before waking it ([`unpark_one_with`](ParkingLot::unpark_one_with),
/// [`unpark_all_where`](ParkingLot::unpark_all_where)) and that the waiter takes back
/// ([`Park::take_data`]): a hand-off travels with the wake-up.
///
/// Cancellation is lossless: a parked task that is cancelled (or whose [`Park`] future is
/// dropped) leaves the queue and nothing happened; a task that was already unparked returns
/// success even if its scope was cancelled meanwhile. Code that hands something to the
/// unparked task (a lock, a value) checks [`Park::is_unparked`] when its future is dropped and
/// passes the hand-off on.
///
/// A hand-off with data: the waiter parks with a value, the unparker changes it, the waiter
/// takes it back. A [`Park`] is `!Unpin`, so a waiter that wants its data after the wait pins
/// the future where it can still reach it:
///
/// A `ParkingLot` is a handle, like every trio primitive: a clone is another handle to the
/// same lot, so each task can hold one (task futures are `'static`).
///
/// ```
/// use std::pin::pin;
/// use trio::lowlevel::{ParkingLot, wait_all_tasks_blocked};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let lot = ParkingLot::<String>::new();
///     let waiter = lot.clone();
///     trio::open_nursery(|nursery| async move {
///         nursery.start_soon(async move {
///             let mut park = pin!(waiter.park_with(String::from("ping")));
///             park.as_mut().await?;
///             assert_eq!(park.take_data().as_deref(), Some("ping, pong"));
///             Ok(())
///         })?;
///         wait_all_tasks_blocked().await?;
///         assert_eq!(lot.statistics().tasks_waiting, 1);
///         let len = lot.unpark_one_with(|data| {
///             data.push_str(", pong");
///             data.len()
///         });
///         assert_eq!(len, Some(10));
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
pub struct ParkingLot<D = ()> {
    pub(super) inner: Lot<D>,
}

impl<D> Default for ParkingLot<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> Clone for ParkingLot<D> {
    /// Another handle to the same lot (not a new, empty lot).
    fn clone(&self) -> Self {
        ParkingLot {
            inner: self.inner.clone(),
        }
    }
}

impl<D> std::fmt::Debug for ParkingLot<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkingLot")
            .field("tasks_waiting", &self.len())
            .finish()
    }
}

impl ParkingLot {
    /// Parks the current task until it is unparked.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and it always blocks.
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before being unparked, the task leaves the queue and nothing
    /// happened. Once unparked it returns `Ok` even if cancelled meanwhile; if the future is
    /// dropped after being unparked, [`Park::is_unparked`] tells the owner of the hand-off.
    pub fn park(&self) -> Park {
        self.park_with(())
    }
}

impl<D> ParkingLot<D> {
    /// An empty lot.
    pub fn new() -> Self {
        ParkingLot {
            inner: Rc::new(LotShared {
                info: LotInfo::new(DEFAULT_LOT_LABEL),
                state: RefCell::new(LotInner::default()),
            }),
        }
    }

    /// Parks the current task with `data` until it is unparked. The unparker may read and
    /// change `data`; the parked task gets it back from [`Park::take_data`] (whether it was
    /// unparked, cancelled, or the lot broke).
    ///
    /// The returned future is `!Unpin` (its waiter is linked in place): pin it to poll it.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and it always blocks.
    ///
    /// # Cancel safety
    /// As [`park`](ParkingLot::park). A `Park` dropped with its data still in it drops the
    /// data; take it out first with [`Park::take_data`] if it matters.
    #[inline]
    pub fn park_with(&self, data: D) -> Park<D> {
        Park {
            node: Node::new(data),
            lot: self.inner.clone(),
            reparked_to: Cell::new(None),
            stage: Cell::new(ParkStage::New),
        }
    }

    /// Wakes up to `count` of the oldest parked tasks; returns them in wake order.
    pub fn unpark(&self, count: usize) -> Vec<Task> {
        let mut woken = Vec::new();
        for _ in 0..count {
            match self.unpark_one() {
                Some(task) => woken.push(task),
                None => break,
            }
        }
        woken
    }

    /// Wakes the oldest parked task, if any, and returns it. Does not allocate.
    pub fn unpark_one(&self) -> Option<Task> {
        let (task, wake) = {
            let mut lot = self.inner.borrow_mut();
            let node = lot.queue.pop_front()?;
            // SAFETY: just unlinked with the lot borrowed and no code run since: its `Park`
            // is still alive (module docs of `wait_list`).
            let n = unsafe { node.as_ref() };
            n.state.set(NodeState::Unparked);
            (n.task().map(Task::from_inner), n.take_wake())
        };
        wake.wake();
        task
    }

    /// Wakes the oldest parked task with `data` as its data, and returns the data it parked
    /// with (`None` if that was taken already). With no task parked, `data` comes back as
    /// the error.
    ///
    /// The hand-off of a value that does not depend on the waiter's data: a memory channel
    /// gives a blocked receiver its value, or takes a blocked sender's value.
    ///
    /// No code but moves runs between taking the waiter out of the queue and waking it, so
    /// there is no callback to guard against ([`unpark_one_with`] releases the lot and
    /// watches the waiter while its callback runs).
    ///
    /// [`unpark_one_with`]: ParkingLot::unpark_one_with
    #[inline]
    pub fn unpark_one_replacing(&self, data: D) -> std::result::Result<Option<D>, D> {
        let (old, wake) = {
            let mut lot = self.inner.borrow_mut();
            let Some(node) = lot.queue.pop_front() else {
                return Err(data);
            };
            // SAFETY: just unlinked with the lot borrowed, and only moves happen before the
            // node is last used: its `Park` is alive.
            let n = unsafe { node.as_ref() };
            let old = n.data.replace(Some(data));
            n.state.set(NodeState::Unparked);
            (old, n.take_wake())
        };
        // The node is not used again: waking (and dropping `old`, by the caller) may run any
        // code.
        wake.wake();
        Ok(old)
    }

    /// Calls `f` on the data of the oldest parked task, then wakes that task; returns what `f`
    /// returned, or `None` (without calling `f`) if no task is parked or its data was taken.
    ///
    /// The lot is not borrowed while `f` runs, so `f` may use it. (Should `f` drop the very
    /// `Park` it is handed, the data is dropped with it.)
    #[inline]
    pub fn unpark_one_with<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        let node = {
            let mut lot = self.inner.borrow_mut();
            let node = lot.queue.pop_front()?;
            // SAFETY: just unlinked, no code run since: the `Park` is alive.
            unsafe { node.as_ref() }.state.set(NodeState::Handoff);
            node
        };
        let alive = Cell::new(true);
        let mut handoff = HandoffOne {
            node,
            alive: &alive,
            data: None,
        };
        // SAFETY: no code has run since the node was unlinked: its `Park` is alive. From here
        // on the `Park`'s `Drop` clears `alive` before it goes away, and `handoff` only uses
        // the node while `alive` is set.
        let n = unsafe { node.as_ref() };
        n.handoff.set(Some(NonNull::from(&alive)));
        handoff.data = n.data.take();
        handoff.data.as_mut().map(f)
    }

    /// Calls `f` on the data of every parked task, oldest first, and wakes those for which it
    /// returns `true` (the others stay parked, in order, ahead of any that park meanwhile).
    /// Returns how many were woken.
    ///
    /// The waiters leave the queue while `f` runs (so `f` may use the lot) but stay counted
    /// as waiting until they are woken.
    pub fn unpark_all_where(&self, mut f: impl FnMut(&mut D) -> bool) -> usize {
        let nodes: Vec<NodePtr<D>> = {
            let mut lot = self.inner.borrow_mut();
            let mut nodes = Vec::with_capacity(lot.queue.len());
            while let Some(node) = lot.queue.pop_front() {
                nodes.push(node);
            }
            lot.sorting += nodes.len();
            nodes
        };
        let flags: Box<[Cell<bool>]> = nodes.iter().map(|_| Cell::new(true)).collect();
        let mut sorting = Sorting {
            lot: &self.inner,
            decided: vec![false; nodes.len()],
            nodes,
            flags: &flags,
            current: None,
        };
        for (node, flag) in sorting.nodes.iter().zip(flags.iter()) {
            // SAFETY: unlinked with the lot borrowed, no code run since: every `Park` is alive.
            let n = unsafe { node.as_ref() };
            n.state.set(NodeState::Sorting);
            n.handoff.set(Some(NonNull::from(flag)));
        }
        let mut woken = 0;
        for i in 0..sorting.nodes.len() {
            if !flags[i].get() {
                continue;
            }
            // SAFETY: its flag is set, so its `Park` has not been dropped.
            let data = unsafe { sorting.nodes[i].as_ref() }.data.take();
            // Held by the guard while `f` runs, so a panic in `f` gives it back.
            let (_, data) = sorting.current.insert((i, data));
            let chosen = data.as_mut().map(&mut f) == Some(true);
            let Some((_, data)) = sorting.current.take() else {
                unreachable!("set just above")
            };
            if !flags[i].get() {
                // Its `Park` was dropped by `f`: the data goes with it.
                continue;
            }
            // SAFETY: its flag is still set, so its `Park` is alive.
            let n = unsafe { sorting.nodes[i].as_ref() };
            n.data.set(data);
            if chosen {
                sorting.decided[i] = true;
                n.handoff.set(None);
                n.state.set(NodeState::Unparked);
                let wake = n.take_wake();
                self.inner.borrow_mut().sorting -= 1;
                // The node is not used again: waking may run any code.
                wake.wake();
                woken += 1;
            }
        }
        // Dropping `sorting` puts the waiters not woken back in the queue, in order.
        drop(sorting);
        woken
    }

    /// Wakes every parked task.
    pub fn unpark_all(&self) -> Vec<Task> {
        self.unpark(usize::MAX)
    }

    /// Moves up to `count` of the oldest parked tasks to `new_lot`, behind its own waiters and
    /// in their current order, without waking them.
    pub fn repark(&self, new_lot: &ParkingLot<D>, count: usize) {
        if Rc::ptr_eq(&self.inner, &new_lot.inner) {
            return;
        }
        let mut from = self.inner.borrow_mut();
        let mut to = new_lot.inner.borrow_mut();
        let mut wakes = Vec::new();
        // The lots each node leaves behind, dropped once nothing is borrowed.
        let mut old_lots = Vec::new();
        for _ in 0..count {
            let Some(node) = from.queue.pop_front() else {
                break;
            };
            // SAFETY: just unlinked with both lots borrowed; nothing that could drop a `Park`
            // runs until the node is linked again (or woken, after the loop).
            let n = unsafe { node.as_ref() };
            // SAFETY: the owner of the node field is a `Park` (the only place nodes are made).
            let park = unsafe { Park::from_node(node) };
            old_lots.push(park.reparked_to.replace(Some(new_lot.inner.clone())));
            // A task dump now shows the waiter in its new lot (`blocked.rs`).
            if let Some(task) = n.task() {
                task.move_lot(
                    NonNull::from(&self.inner.info),
                    NonNull::from(&new_lot.inner.info),
                );
            }
            if to.broken.is_some() {
                n.state.set(NodeState::Broken);
                wakes.push(n.take_wake());
            } else {
                // SAFETY: the node is valid and pinned (it was linked), in no list now, and its
                // `Park` unlinks it from `new_lot` (its `reparked_to`) before going away.
                unsafe { to.queue.push_back(node) };
            }
        }
        drop((from, to));
        drop(old_lots);
        wakes.into_iter().for_each(Wake::wake);
    }

    /// Moves every parked task to `new_lot`.
    pub fn repark_all(&self, new_lot: &ParkingLot<D>) {
        self.repark(new_lot, usize::MAX);
    }

    /// Breaks the lot: every parked task, and every later `park`, fails with
    /// [`BrokenResourceError`] naming `cause` (for example the task that died holding a lock).
    /// `None` names the calling task (Trio's default), or no task outside a run. Breaking a
    /// broken lot adds `cause` to [`broken_by`](Self::broken_by) and changes nothing else.
    pub fn break_lot(&self, cause: Option<&Task>) {
        let cause = cause
            .cloned()
            .or_else(|| Runner::with_current_task(|_, task| Task::from_inner(task.clone())));
        let wakes: Vec<Wake> = {
            let mut inner = self.inner.borrow_mut();
            if inner.broken.is_some() {
                inner.broken_by.extend(cause);
                return;
            }
            inner.broken = Some(match &cause {
                Some(task) => format!("the parking lot was broken by task {:?}", task.name()),
                None => "the parking lot was broken".to_string(),
            });
            inner.broken_by.extend(cause);
            let mut wakes = Vec::new();
            while let Some(node) = inner.queue.pop_front() {
                // SAFETY: just unlinked with the lot borrowed; nothing else runs meanwhile.
                let n = unsafe { node.as_ref() };
                n.state.set(NodeState::Broken);
                wakes.push(n.take_wake());
            }
            wakes
        };
        wakes.into_iter().for_each(Wake::wake);
    }

    /// Whether the lot is broken.
    pub fn is_broken(&self) -> bool {
        self.inner.borrow().broken.is_some()
    }

    /// The tasks named as causes each time the lot was broken, oldest first (empty: not
    /// broken, or broken with no task named).
    pub fn broken_by(&self) -> Vec<Task> {
        self.inner.borrow().broken_by.clone()
    }

    /// How many tasks are parked.
    pub fn len(&self) -> usize {
        let inner = self.inner.borrow();
        inner.queue.len() + inner.sorting
    }

    /// Whether no task is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parked tasks, oldest first.
    pub fn parked_tasks(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        self.inner.borrow().queue.for_each(|n| {
            if let Some(task) = n.task() {
                tasks.push(Task::from_inner(task));
            }
        });
        tasks
    }

    /// Trio's statistics: how many tasks wait.
    pub fn statistics(&self) -> ParkingLotStatistics {
        ParkingLotStatistics {
            tasks_waiting: self.len(),
        }
    }
}

/// The rest of an `unpark_one_with`: once the callback is done (or has panicked), gives the
/// waiter its data and wakes it, unless its `Park` was dropped meanwhile.
struct HandoffOne<'a, D> {
    node: NodePtr<D>,
    alive: &'a Cell<bool>,
    data: Option<D>,
}

impl<D> Drop for HandoffOne<'_, D> {
    #[inline]
    fn drop(&mut self) {
        if !self.alive.get() {
            return;
        }
        // SAFETY: `alive` is still set, so the `Park` has not been dropped (its `Drop` clears
        // the flag), and it stays pinned where it is.
        let n = unsafe { self.node.as_ref() };
        n.handoff.set(None);
        n.data.set(self.data.take());
        n.state.set(NodeState::Unparked);
        let wake = n.take_wake();
        // The node is not used again: waking may run any code.
        wake.wake();
    }
}

/// The rest of an `unpark_all_where`: puts the waiters it did not wake back at the front of
/// the queue, in order (or fails them if the lot broke meanwhile), even if the callback
/// panicked.
struct Sorting<'a, D> {
    lot: &'a Lot<D>,
    nodes: Vec<NodePtr<D>>,
    flags: &'a [Cell<bool>],
    /// Woken already.
    decided: Vec<bool>,
    /// The waiter whose data the callback has now, with that data.
    current: Option<(usize, Option<D>)>,
}

impl<D> Drop for Sorting<'_, D> {
    fn drop(&mut self) {
        // The callback panicked holding a waiter's data: give it back.
        if let Some((i, data)) = self.current.take()
            && self.flags[i].get()
        {
            // SAFETY: its flag is set, so its `Park` is alive.
            unsafe { self.nodes[i].as_ref() }.data.set(data);
        }
        let mut lot = self.lot.borrow_mut();
        let mut wakes = Vec::new();
        for i in (0..self.nodes.len()).rev() {
            if self.decided[i] || !self.flags[i].get() {
                continue;
            }
            // SAFETY: its flag is set, so its `Park` is alive; the lot is borrowed and nothing
            // else runs until the loop ends.
            let n = unsafe { self.nodes[i].as_ref() };
            n.handoff.set(None);
            lot.sorting -= 1;
            if lot.broken.is_some() {
                n.state.set(NodeState::Broken);
                wakes.push(n.take_wake());
            } else {
                n.state.set(NodeState::Parked);
                // SAFETY: valid and pinned (it was linked before), in no list now, and its
                // `Park` unlinks it from this lot before going away.
                unsafe { lot.queue.push_front(self.nodes[i]) };
            }
        }
        drop(lot);
        wakes.into_iter().for_each(Wake::wake);
    }
}

/// The future of [`ParkingLot::park`] and [`ParkingLot::park_with`].
///
/// `!Unpin`: the waiter is linked in place, so pin the future before polling it.
#[must_use = "futures do nothing unless awaited"]
// `repr(C)` with the node first: a node pointer is also a pointer to its `Park`
// (`Park::from_node`), and the list's pointers are made from the whole `Park` so that they may
// reach its other fields.
#[repr(C)]
pub struct Park<D = ()> {
    /// The waiter, linked in place (`wait_list.rs`).
    node: Node<D>,
    /// The lot the park was made for.
    lot: Lot<D>,
    /// The lot the waiter was moved to by `repark`, if it was; kept alive by this handle
    /// while the waiter is in its queue.
    reparked_to: Cell<Option<Lot<D>>>,
    stage: Cell<ParkStage>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ParkStage {
    /// Not polled yet: the waiter is not queued.
    New,
    /// Queued in a lot by the first poll.
    Queued,
    /// Returned its result.
    Done,
}

impl<D> std::fmt::Debug for Park<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Park")
            .field("state", &self.node.state.get())
            .finish_non_exhaustive()
    }
}

impl<D> Park<D> {
    /// Whether the task was unparked and the future has not yet returned `Ok` for it. A
    /// primitive that handed something to this waiter checks this when dropping the future.
    pub fn is_unparked(&self) -> bool {
        self.stage.get() == ParkStage::Queued && self.node.state.get() == NodeState::Unparked
    }

    /// Takes the waiter's data out: as the unparker left it once the task was unparked, as
    /// it was parked otherwise. `None` if it was already taken.
    ///
    /// Taking it while the task is still parked is allowed (an unparker then sees no data and
    /// its `unpark_one_with` returns `None` for this waiter, which it still wakes).
    pub fn take_data(&self) -> Option<D> {
        self.node.data.take()
    }

    /// The `Park` whose `node` field `node` is.
    ///
    /// # Safety
    /// `node` points to the `node` field of a live `Park<D>`.
    unsafe fn from_node<'a>(node: NodePtr<D>) -> &'a Park<D> {
        // SAFETY: the caller guarantees `node` is the `node` field of a live `Park`, which is
        // at offset 0 (`repr(C)`), and list pointers are made from the whole `Park`.
        unsafe { node.cast::<Park<D>>().as_ref() }
    }

    /// The pointer the list holds for this waiter: made from the whole `Park`, so that
    /// `from_node` may reach the other fields.
    fn node_ptr(&self) -> NodePtr<D> {
        NonNull::from(self).cast()
    }

    /// Runs `f` with the lot the waiter is in (or was last in).
    #[inline]
    fn with_lot<R>(&self, f: impl FnOnce(&Lot<D>) -> R) -> R {
        let reparked = self.reparked_to.take();
        let r = f(reparked.as_ref().unwrap_or(&self.lot));
        self.reparked_to.set(reparked);
        r
    }

    /// Takes a still-parked waiter out of its lot (a no-op once it was unparked or broken).
    #[inline]
    fn leave(&self) {
        if self.node.state.get() == NodeState::Parked {
            self.leave_queue();
        }
    }

    #[inline(never)]
    fn leave_queue(&self) {
        let info = self.with_lot(|lot| {
            // SAFETY: the state is `Parked`, so the node is linked in this lot's queue.
            unsafe { lot.borrow_mut().queue.unlink(self.node_ptr()) };
            NonNull::from(&lot.info)
        });
        self.node.state.set(NodeState::Left);
        let wake = self.node.take_wake();
        // The park may be dropped by a task other than its own: its task's record of this
        // lot must not outlive it (`blocked.rs`).
        if let Some(task) = wake.task() {
            task.forget_lot(info);
        }
        drop(wake);
    }

    /// The first poll: a cancel point, then queue the waiter.
    ///
    /// # Safety
    /// `self` is pinned.
    #[inline]
    unsafe fn queue(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        let node = &self.node;
        let queued = Runner::with_current_task(|_, task| {
            match task.entry_cancel_point(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                // Cancelled: yield first (the stage stays `New`; the next poll raises).
                Poll::Pending => return Ok(false),
            }
            let mut lot = self.lot.borrow_mut();
            if let Some(reason) = &lot.broken {
                return Err(Error::new(BrokenResourceError::new(reason.clone())));
            }
            if !task.is_own_waker(cx.waker()) {
                task.register_cancel_waker(cx.waker());
                node.waker.set(Some(cx.waker().clone()));
            }
            node.task.set(Some(task.clone()));
            node.state.set(NodeState::Parked);
            // SAFETY: the caller guarantees the park is pinned, so the node stays where it is
            // until `Drop`, which unlinks it; it is in no list (stage `New`).
            unsafe { lot.queue.push_back(self.node_ptr()) };
            // For task dumps (`blocked.rs`): two stores.
            task.note_blocked(BlockedOn::Lot(NonNull::from(&self.lot.info)));
            Ok(true)
        });
        match queued {
            Some(Ok(true)) => {
                self.stage.set(ParkStage::Queued);
                Poll::Pending
            }
            Some(Ok(false)) => Poll::Pending,
            Some(Err(e)) => {
                self.stage.set(ParkStage::Done);
                Poll::Ready(Err(e))
            }
            None => {
                self.stage.set(ParkStage::Done);
                Poll::Ready(Err(not_in_run("ParkingLot::park")))
            }
        }
    }

    /// A poll while still waiting: a cancel point (unless an unparker is handing off to it);
    /// otherwise note a new waker.
    fn still_parked(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        let node = &self.node;
        let handoff = matches!(node.state.get(), NodeState::Handoff | NodeState::Sorting);
        let cancelled = Runner::with_current_task(|_, task| {
            if !handoff {
                let status = task.current_status.borrow();
                if status.is_cancelled() {
                    return Some(status.cancelled_error());
                }
            }
            let waker = node.waker.take();
            let current = match &waker {
                Some(w) => w.will_wake(cx.waker()),
                None => task.is_own_waker(cx.waker()),
            };
            let waker = if current {
                waker
            } else if task.is_own_waker(cx.waker()) {
                None
            } else {
                Some(cx.waker().clone())
            };
            node.waker.set(waker);
            task.register_cancel_waker(cx.waker());
            self.with_lot(|lot| task.note_blocked(BlockedOn::Lot(NonNull::from(&lot.info))));
            None
        })
        .flatten();
        match cancelled {
            Some(cancelled) => {
                self.leave();
                self.stage.set(ParkStage::Done);
                Poll::Ready(Err(Error::new(cancelled)))
            }
            None => Poll::Pending,
        }
    }

    /// The reason the waiter's lot was broken.
    fn broken_reason(&self) -> String {
        self.with_lot(|lot| lot.borrow().broken.clone().unwrap_or_default())
    }
}

impl<D> Future for Park<D> {
    type Output = Result<()>;

    // Inlined into every primitive's wait: its common cases are a few `Copy` loads.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // Every field is a cell: the park is only ever used through `&Park`.
        let this = self.into_ref().get_ref();
        match this.stage.get() {
            ParkStage::Queued => {}
            // SAFETY: `this` comes from a pinned park.
            ParkStage::New => return unsafe { this.queue(cx) },
            ParkStage::Done => {
                return Poll::Ready(Err(Error::usage("park() polled after it finished")));
            }
        }
        // The woken case is decided from a `Copy` state, with no borrow and no call out of
        // line: it is every hand-off's second poll.
        match this.node.state.get() {
            NodeState::Unparked => {
                this.stage.set(ParkStage::Done);
                Poll::Ready(Ok(()))
            }
            NodeState::Parked | NodeState::Handoff | NodeState::Sorting => this.still_parked(cx),
            NodeState::Broken => {
                this.stage.set(ParkStage::Done);
                Poll::Ready(Err(Error::new(BrokenResourceError::new(
                    this.broken_reason(),
                ))))
            }
            NodeState::Left | NodeState::Idle => {
                this.stage.set(ParkStage::Done);
                Poll::Ready(Err(Error::usage("park() polled after it left the lot")))
            }
        }
    }
}

impl<D> Drop for Park<D> {
    #[inline]
    fn drop(&mut self) {
        match self.node.state.get() {
            NodeState::Parked => self.leave_queue(),
            NodeState::Handoff | NodeState::Sorting => self.drop_in_handoff(),
            _ => {}
        }
        // The data, waker and task drop with the fields, when nothing is borrowed: the data
        // can own anything (even a handle to this lot).
    }
}

impl<D> Park<D> {
    /// Dropped while an unparker runs its callback on this waiter: tell the unparker.
    #[inline(never)]
    fn drop_in_handoff(&self) {
        if let Some(flag) = self.node.handoff.take() {
            // SAFETY: the unparker keeps the flag alive until it has cleared `handoff` or seen
            // the flag cleared (its guard's `Drop`), and it clears `handoff` first.
            unsafe { flag.as_ref() }.set(false);
        }
        // An `unpark_all_where` counts its waiters as waiting until it decides on them
        // (`unpark_one_with` uncounts its waiter when it takes it).
        if self.node.state.get() == NodeState::Sorting {
            self.with_lot(|lot| lot.borrow_mut().sorting -= 1);
        }
        self.node.state.set(NodeState::Left);
        // As in `leave_queue`: the task's record of this lot goes with the park.
        if let Some(task) = self.node.task() {
            self.with_lot(|lot| task.forget_lot(NonNull::from(&lot.info)));
        }
    }
}
/// Breaks `lot` (as [`ParkingLot::break_lot`] with `task` as the cause) when `task` exits,
/// however it exits: returns, fails, panics, or is dropped with its nursery. This is how a
/// lock whose owner dies without releasing it fails its waiters (Trio's
/// `add_parking_lot_breaker`).
///
/// Fails with [`BrokenResourceError`] if `task` has already exited, as in Trio (the lot is
/// not broken then: the caller decides).
pub fn add_parking_lot_breaker(task: &Task, lot: &ParkingLot) -> Result<()> {
    if task.inner.finished.get() {
        return Err(Error::new(BrokenResourceError::new(format!(
            "attempted to add already exited task {:?} as lot breaker",
            task.name()
        ))));
    }
    task.inner.lot_breakers.borrow_mut().push(lot.clone());
    Ok(())
}

/// Undoes one [`add_parking_lot_breaker`] of `lot` for `task`.
///
/// Fails with a `UsageError` if that registration does not exist.
pub fn remove_parking_lot_breaker(task: &Task, lot: &ParkingLot) -> Result<()> {
    let mut lots = task.inner.lot_breakers.borrow_mut();
    match lots.iter().position(|l| Rc::ptr_eq(&l.inner, &lot.inner)) {
        Some(i) => {
            lots.swap_remove(i);
            Ok(())
        }
        None => Err(Error::usage(format!(
            "remove_parking_lot_breaker: the lot is not registered as a breaker of task {:?}",
            task.name()
        ))),
    }
}
