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
//! Waiters that leave early are tombstoned and swept lazily, so every operation is O(1)
//! amortized.
//!
//! ## Data carried by a waiter
//!
//! A `ParkingLot<D>` parks each task with a value of type `D` (`()` by default) that the
//! unparker can read and change before it wakes the task ([`ParkingLot::unpark_one_with`],
//! [`ParkingLot::unpark_all_where`]), and that the parked task gets back
//! ([`Park::take_data`]). Memory channels park a blocked send with its value and a blocked
//! receive with the slot its value is delivered into.
//!
//! Why not a wait queue of their own beside a lot: then every blocked operation lives in two
//! FIFOs that must be kept in step (two allocations, two pushes, two pops, two tombstones),
//! which cost about a third of a channel round trip (benches/callgrind.rs, pingpong). One
//! queue that carries the data is both simpler and cheaper, and the lot stays the one
//! blocking primitive.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::run::{Runner, not_in_run};
use super::task::{Task, TaskInner};
use crate::error::{BrokenResourceError, Error, Result};

/// Where a slot's waiter is. `Copy`, so reading it costs no borrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    /// Not queued: new, or spare.
    Idle,
    Parked,
    Unparked,
    Left,
    /// Failed by `break_lot` (the reason is in `Slot::broken`).
    Broken,
}

struct Slot<D> {
    state: Cell<SlotState>,
    /// The waiter's data, from `park_with` until it is taken; `None` while the slot is spare.
    data: Cell<Option<D>>,
    /// The waker to wake, when it is not the parked task's own waker (`None`).
    ///
    /// Performance: a task parked directly (not under a combinator that gives it another
    /// waker) is woken through its task (`Runner::wake_task`), so parking clones no `Waker`.
    waker: Cell<Option<Waker>>,
    /// The parked task, while it is parked; taken by the wake-up.
    task: Cell<Option<Rc<TaskInner>>>,
    /// The lot the slot was moved to by `repark`; `None` while it is in its `Park`'s own lot
    /// (the usual case, so parking writes no lot handle).
    reparked_to: Cell<Option<Weak<RefCell<LotInner<D>>>>>,
    /// Why the lot was broken, once the state is `Broken`.
    broken: Cell<Option<String>>,
}

/// How many finished slots a lot keeps for reuse.
const SPARE_SLOTS: usize = 4;

impl<D> Slot<D> {
    /// Marks the slot unparked and wakes its task (through the waker it parked with).
    #[inline]
    fn unpark(&self) {
        self.state.set(SlotState::Unparked);
        self.wake();
    }

    /// Wakes the parked task. The wake-up ends the wait, so it takes the task and waker out
    /// of the slot (and a finished `Park` has nothing left to drop).
    #[inline]
    fn wake(&self) {
        let task = self.task.take();
        if let Some(waker) = self.waker.take() {
            waker.wake();
        } else if let Some(task) = &task {
            Runner::wake_task(task);
        }
        drop(task);
    }

    /// Fails the waiter with `reason` and wakes it.
    fn break_with(&self, reason: &str) {
        self.broken.set(Some(reason.to_string()));
        self.state.set(SlotState::Broken);
        self.wake();
    }

    /// The parked task.
    fn task(&self) -> Option<Task> {
        let task = self.task.take();
        let handle = task.clone().map(Task::from_inner);
        self.task.set(task);
        handle
    }

    /// Changes the waiter's data in place.
    #[inline]
    fn with_data<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        let mut data = self.data.take()?;
        let r = f(&mut data);
        self.data.set(Some(data));
        Some(r)
    }
}

struct LotInner<D> {
    queue: VecDeque<Rc<Slot<D>>>,
    /// Slots in `queue` still parked (the rest are tombstones).
    live: usize,
    broken: Option<String>,
    /// The task whose exit (or `break_lot` call) broke the lot.
    broken_by: Option<Task>,
    /// Finished slots (no task, no waker, no data) to park the next tasks in.
    ///
    /// Performance: parking reuses these instead of allocating a slot per `park` and freeing it
    /// when the park ends (a malloc/free pair per park).
    spare: Vec<Rc<Slot<D>>>,
}

impl<D> Default for LotInner<D> {
    fn default() -> Self {
        LotInner {
            queue: VecDeque::new(),
            live: 0,
            broken: None,
            broken_by: None,
            spare: Vec::new(),
        }
    }
}

impl<D> LotInner<D> {
    fn sweep_if_needed(&mut self) {
        if self.queue.len() > 2 * self.live + 32 {
            self.queue.retain(|s| s.state.get() == SlotState::Parked);
        }
    }

    #[inline]
    fn pop_live(&mut self) -> Option<Rc<Slot<D>>> {
        // Tombstones left behind are swept later (`sweep_if_needed`).
        if self.live == 0 {
            return None;
        }
        while let Some(slot) = self.queue.pop_front() {
            if slot.state.get() == SlotState::Parked {
                self.live -= 1;
                return Some(slot);
            }
        }
        None
    }
}

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
pub struct ParkingLot<D = ()> {
    inner: Rc<RefCell<LotInner<D>>>,
}

impl<D> Default for ParkingLot<D> {
    fn default() -> Self {
        Self::new()
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
            inner: Rc::new(RefCell::new(LotInner::default())),
        }
    }

    /// Parks the current task with `data` until it is unparked. The unparker may read and
    /// change `data`; the parked task gets it back from [`Park::take_data`] (whether it was
    /// unparked, cancelled, or the lot broke).
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and it always blocks.
    ///
    /// # Cancel safety
    /// As [`park`](ParkingLot::park). A `Park` dropped with its data still in it drops the
    /// data; take it out first with [`Park::take_data`] if it matters.
    pub fn park_with(&self, data: D) -> Park<D> {
        let spare = self
            .inner
            .try_borrow_mut()
            .ok()
            .and_then(|mut l| l.spare.pop());
        let slot = match spare {
            Some(slot) => slot,
            None => Rc::new(Slot {
                state: Cell::new(SlotState::Idle),
                data: Cell::new(None),
                waker: Cell::new(None),
                task: Cell::new(None),
                reparked_to: Cell::new(None),
                broken: Cell::new(None),
            }),
        };
        slot.data.set(Some(data));
        Park {
            lot: self.inner.clone(),
            slot,
            stage: ParkStage::New,
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
        let slot = self.inner.borrow_mut().pop_live()?;
        let task = slot.task();
        slot.unpark();
        task
    }

    /// Calls `f` on the data of the oldest parked task, then wakes that task; returns what `f`
    /// returned, or `None` (without calling `f`) if no task is parked.
    ///
    /// Performance: hands off without cloning the woken task's handle (benches/callgrind.rs,
    /// pingpong).
    #[inline]
    pub fn unpark_one_with<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        let slot = self.inner.borrow_mut().pop_live()?;
        // The lot is not borrowed while `f` runs.
        let r = slot.with_data(f);
        slot.unpark();
        r
    }

    /// Calls `f` on the data of every parked task, oldest first, and wakes those for which it
    /// returns `true` (the others stay parked, in order). Returns how many were woken.
    pub fn unpark_all_where(&self, mut f: impl FnMut(&mut D) -> bool) -> usize {
        // The parked slots leave the queue while `f` runs (so `f` may use the lot), but stay
        // counted in `live` until they are woken: a waiter that leaves meanwhile (its `Park`
        // dropped by `f`) uncounts itself as usual.
        let slots: Vec<_> = self
            .inner
            .borrow_mut()
            .queue
            .drain(..)
            .filter(|s| s.state.get() == SlotState::Parked)
            .collect();
        let mut woken = 0;
        let mut kept = Vec::new();
        for slot in slots {
            let chosen = slot.with_data(&mut f) == Some(true);
            if slot.state.get() != SlotState::Parked {
                continue;
            }
            if chosen {
                self.inner.borrow_mut().live -= 1;
                slot.unpark();
                woken += 1;
            } else {
                kept.push(slot);
            }
        }
        // Waiters that parked meanwhile (from inside `f`) queue behind the ones kept.
        let mut inner = self.inner.borrow_mut();
        for slot in kept.into_iter().rev() {
            inner.queue.push_front(slot);
        }
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
        let mut moved = Vec::new();
        {
            let mut from = self.inner.borrow_mut();
            for _ in 0..count {
                match from.pop_live() {
                    Some(slot) => moved.push(slot),
                    None => break,
                }
            }
        }
        let mut to = new_lot.inner.borrow_mut();
        if let Some(reason) = to.broken.clone() {
            drop(to);
            for slot in moved {
                slot.break_with(&reason);
            }
            return;
        }
        for slot in moved {
            slot.reparked_to.set(Some(Rc::downgrade(&new_lot.inner)));
            to.live += 1;
            to.queue.push_back(slot);
        }
    }

    /// Moves every parked task to `new_lot`.
    pub fn repark_all(&self, new_lot: &ParkingLot<D>) {
        self.repark(new_lot, usize::MAX);
    }

    /// Breaks the lot: every parked task, and every later `park`, fails with
    /// [`BrokenResourceError`] naming `cause` (for example the task that died holding a lock).
    pub fn break_lot(&self, cause: Option<&Task>) {
        let reason = match cause {
            Some(task) => format!("the parking lot was broken by task {:?}", task.name()),
            None => "the parking lot was broken".to_string(),
        };
        let slots: Vec<_> = {
            let mut inner = self.inner.borrow_mut();
            inner.broken = Some(reason.clone());
            inner.broken_by = cause.cloned();
            inner.live = 0;
            inner.queue.drain(..).collect()
        };
        for slot in slots {
            if slot.state.get() == SlotState::Parked {
                slot.break_with(&reason);
            }
        }
    }

    /// Whether the lot is broken.
    pub fn is_broken(&self) -> bool {
        self.inner.borrow().broken.is_some()
    }

    /// The task named as the cause when the lot was broken, if any.
    pub fn broken_by(&self) -> Option<Task> {
        self.inner.borrow().broken_by.clone()
    }

    /// How many tasks are parked.
    pub fn len(&self) -> usize {
        self.inner.borrow().live
    }

    /// Whether no task is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parked tasks, oldest first.
    pub fn parked_tasks(&self) -> Vec<Task> {
        self.inner
            .borrow()
            .queue
            .iter()
            .filter(|s| s.state.get() == SlotState::Parked)
            .filter_map(|s| s.task())
            .collect()
    }

    /// Trio's statistics: how many tasks wait.
    pub fn statistics(&self) -> ParkingLotStatistics {
        ParkingLotStatistics {
            tasks_waiting: self.len(),
        }
    }
}

impl ParkingLot {
    /// Another handle to the same lot (for the runtime's breaker list).
    fn share(&self) -> ParkingLot {
        ParkingLot {
            inner: self.inner.clone(),
        }
    }
}

/// The future of [`ParkingLot::park`] and [`ParkingLot::park_with`].
#[must_use = "futures do nothing unless awaited"]
pub struct Park<D = ()> {
    lot: Rc<RefCell<LotInner<D>>>,
    /// The waiter's slot, holding its data from the start.
    ///
    /// Performance: the data lives in the slot, not in the future, so the future is three
    /// words whatever `D` is: the futures that embed it (a channel send) move less on every
    /// state change (benches/callgrind.rs, pingpong).
    slot: Rc<Slot<D>>,
    stage: ParkStage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ParkStage {
    /// Not polled yet: the slot is not queued.
    New,
    /// Queued in a lot by the first poll.
    Queued,
    /// Returned its result.
    Done,
}

// The data is moved in and out, never pinned.
impl<D> Unpin for Park<D> {}

impl<D> Park<D> {
    /// Whether the task was unparked and the future has not yet returned `Ok` for it. A
    /// primitive that handed something to this waiter checks this when dropping the future.
    pub fn is_unparked(&self) -> bool {
        self.stage == ParkStage::Queued && self.slot.state.get() == SlotState::Unparked
    }

    /// Takes the waiter's data out: as the unparker left it once the task was unparked, as
    /// it was parked otherwise. `None` if it was already taken.
    ///
    /// Taking it while the task is still parked is allowed (an unparker then sees no data and
    /// its `unpark_one_with` returns `None` for this waiter, which it still wakes).
    pub fn take_data(&mut self) -> Option<D> {
        self.slot.data.take()
    }

    /// Takes a still-parked waiter out of its lot (a no-op once it was unparked or broken).
    #[inline]
    fn leave(&self) {
        if self.slot.state.get() == SlotState::Parked {
            Self::leave_queue(&self.slot, &self.lot);
        }
    }

    #[inline(never)]
    fn leave_queue(slot: &Slot<D>, own_lot: &Rc<RefCell<LotInner<D>>>) {
        slot.state.set(SlotState::Left);
        // The tombstone left in the queue must not keep the task (or its waker) alive.
        drop((slot.task.take(), slot.waker.take()));
        let reparked_to = slot.reparked_to.take();
        let lot = match &reparked_to {
            Some(weak) => weak.upgrade(),
            None => Some(own_lot.clone()),
        };
        slot.reparked_to.set(reparked_to);
        if let Some(lot) = lot {
            let mut lot = lot.borrow_mut();
            lot.live -= 1;
            // Tombstones are only made here, so this is the one place that needs to sweep.
            lot.sweep_if_needed();
        }
    }

    /// The first poll: a cancel point, then queue the slot.
    fn queue(&mut self, cx: &Context<'_>) -> Poll<Result<()>> {
        let slot = &self.slot;
        let lot_rc = &self.lot;
        let queued = Runner::with_current_task(|_, task| {
            {
                let status = task.current_status.borrow();
                if status.is_cancelled() {
                    return Err(Error::new(status.cancelled_error()));
                }
            }
            let mut lot = lot_rc.borrow_mut();
            if let Some(reason) = &lot.broken {
                return Err(Error::new(BrokenResourceError::new(reason.clone())));
            }
            if !cx.waker().will_wake(&task.waker) {
                task.register_cancel_waker(cx.waker());
                slot.waker.set(Some(cx.waker().clone()));
            }
            slot.task.set(Some(task.clone()));
            slot.state.set(SlotState::Parked);
            lot.live += 1;
            lot.queue.push_back(slot.clone());
            Ok(())
        });
        match queued {
            Some(Ok(())) => {
                self.stage = ParkStage::Queued;
                Poll::Pending
            }
            Some(Err(e)) => {
                self.stage = ParkStage::Done;
                Poll::Ready(Err(e))
            }
            None => {
                self.stage = ParkStage::Done;
                Poll::Ready(Err(not_in_run("ParkingLot::park")))
            }
        }
    }

    /// A poll while still parked: a cancel point; otherwise note a new waker.
    fn still_parked(&mut self, cx: &Context<'_>) -> Poll<Result<()>> {
        let slot = &self.slot;
        let cancelled = Runner::with_current_task(|_, task| {
            let status = task.current_status.borrow();
            if status.is_cancelled() {
                return Some(status.cancelled_error());
            }
            drop(status);
            let waker = slot.waker.take();
            let current = match &waker {
                Some(w) => w.will_wake(cx.waker()),
                None => cx.waker().will_wake(&task.waker),
            };
            let waker = if current {
                waker
            } else if cx.waker().will_wake(&task.waker) {
                None
            } else {
                Some(cx.waker().clone())
            };
            slot.waker.set(waker);
            task.register_cancel_waker(cx.waker());
            None
        })
        .flatten();
        match cancelled {
            Some(cancelled) => {
                self.leave();
                self.stage = ParkStage::Done;
                Poll::Ready(Err(Error::new(cancelled)))
            }
            None => Poll::Pending,
        }
    }
}

impl<D> Future for Park<D> {
    type Output = Result<()>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        match this.stage {
            ParkStage::Queued => {}
            ParkStage::New => return this.queue(cx),
            ParkStage::Done => {
                return Poll::Ready(Err(Error::usage("park() polled after it finished")));
            }
        }
        // Performance: the woken case is decided from a `Copy` state, with no borrow and no
        // call out of line (benches/callgrind.rs, pingpong and lock_contended).
        match this.slot.state.get() {
            SlotState::Unparked => {
                this.stage = ParkStage::Done;
                Poll::Ready(Ok(()))
            }
            SlotState::Parked => this.still_parked(cx),
            SlotState::Broken => {
                let reason = this.slot.broken.take().unwrap_or_default();
                this.stage = ParkStage::Done;
                Poll::Ready(Err(Error::new(BrokenResourceError::new(reason))))
            }
            SlotState::Left | SlotState::Idle => {
                this.stage = ParkStage::Done;
                Poll::Ready(Err(Error::usage("park() polled after it left the lot")))
            }
        }
    }
}

impl<D> Drop for Park<D> {
    fn drop(&mut self) {
        self.leave();
        let slot = &*self.slot;
        // Dropped once nothing is borrowed: the data can own anything (even a handle to this
        // lot).
        let data = slot.data.take();
        // A slot that left early stays in the queue as a tombstone until it is swept, and is
        // not reused. The task and waker were taken when the wait ended (woken, broken or
        // left), so a finished slot is empty but for what is reset here.
        if Rc::strong_count(&self.slot) == 1 {
            debug_assert!(slot.task.take().is_none(), "a finished park still holds its task");
            let reparked_to = slot.reparked_to.take();
            let broken = if slot.state.replace(SlotState::Idle) == SlotState::Broken {
                slot.broken.take()
            } else {
                None
            };
            if let Ok(mut lot) = self.lot.try_borrow_mut()
                && lot.spare.len() < SPARE_SLOTS
            {
                lot.spare.push(self.slot.clone());
            }
            drop((reparked_to, broken));
        }
        drop(data);
    }
}

/// Breaks `lot` (as [`ParkingLot::break_lot`] with `task` as the cause) when `task` exits,
/// however it exits: returns, fails, panics, or is dropped with its nursery. This is how a
/// lock whose owner dies without releasing it fails its waiters (Trio's
/// `add_parking_lot_breaker`).
///
/// Fails with a `UsageError` if `task` has already exited (the lot is not broken then: the
/// caller decides).
pub fn add_parking_lot_breaker(task: &Task, lot: &ParkingLot) -> Result<()> {
    if task.inner.finished.get() {
        return Err(Error::usage(format!(
            "add_parking_lot_breaker: task {:?} has already exited",
            task.name()
        )));
    }
    task.inner.lot_breakers.borrow_mut().push(lot.share());
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
