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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::run::{Runner, not_in_run};
use super::task::Task;
use crate::error::{BrokenResourceError, Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
enum SlotState {
    Parked,
    Unparked,
    Left,
    Broken(String),
}

struct Slot {
    state: RefCell<SlotState>,
    /// The waker to wake, when it is not the parked task's own waker (`None`).
    ///
    /// Performance: a task parked directly (not under a combinator that gives it another
    /// waker) wakes through `task`'s waker, so parking clones no `Waker` (an atomic increment,
    /// and an atomic decrement when the slot is freed).
    waker: RefCell<Option<Waker>>,
    /// The parked task; `None` only while the slot waits in a lot's `spare` list.
    task: RefCell<Option<Task>>,
    lot: RefCell<Weak<RefCell<LotInner>>>,
}

/// How many finished slots a lot keeps for reuse.
const SPARE_SLOTS: usize = 4;

impl Slot {
    /// Wakes the parked task (through the waker it parked with).
    fn wake(&self) {
        match &*self.waker.borrow() {
            Some(waker) => waker.wake_by_ref(),
            None => {
                if let Some(task) = &*self.task.borrow() {
                    Runner::wake_task(&task.inner);
                }
            }
        }
    }

    /// The parked task.
    fn task(&self) -> Option<Task> {
        self.task.borrow().clone()
    }

    /// What to store for `waker`: `None` when it is the task's own waker.
    fn waker_for(task: &Task, waker: &Waker) -> Option<Waker> {
        (!waker.will_wake(&task.inner.waker)).then(|| waker.clone())
    }
}

#[derive(Default)]
struct LotInner {
    queue: VecDeque<Rc<Slot>>,
    /// Slots in `queue` still parked (the rest are tombstones).
    live: usize,
    broken: Option<String>,
    /// The task whose exit (or `break_lot` call) broke the lot.
    broken_by: Option<Task>,
    /// Finished slots (no task, no waker) to park the next tasks in.
    ///
    /// Performance: parking reuses these instead of allocating a slot per `park` and freeing it
    /// when the park ends (a malloc/free pair per park).
    spare: Vec<Rc<Slot>>,
}

impl LotInner {
    fn sweep_if_needed(&mut self) {
        if self.queue.len() > 2 * self.live + 32 {
            self.queue
                .retain(|s| *s.state.borrow() == SlotState::Parked);
        }
    }

    fn pop_live(&mut self) -> Option<Rc<Slot>> {
        while let Some(slot) = self.queue.pop_front() {
            if *slot.state.borrow() == SlotState::Parked {
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
/// Cancellation is lossless: a parked task that is cancelled (or whose [`Park`] future is
/// dropped) leaves the queue and nothing happened; a task that was already unparked returns
/// success even if its scope was cancelled meanwhile. Code that hands something to the
/// unparked task (a lock, a value) checks [`Park::is_unparked`] when its future is dropped and
/// passes the hand-off on.
pub struct ParkingLot {
    inner: Rc<RefCell<LotInner>>,
}

impl Default for ParkingLot {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ParkingLot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkingLot")
            .field("tasks_waiting", &self.len())
            .finish()
    }
}

impl ParkingLot {
    /// An empty lot.
    pub fn new() -> Self {
        ParkingLot {
            inner: Rc::new(RefCell::new(LotInner::default())),
        }
    }

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
        Park {
            lot: self.inner.clone(),
            slot: None,
            done: false,
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
        *slot.state.borrow_mut() = SlotState::Unparked;
        slot.wake();
        slot.task()
    }

    /// Wakes every parked task.
    pub fn unpark_all(&self) -> Vec<Task> {
        self.unpark(usize::MAX)
    }

    /// Moves up to `count` of the oldest parked tasks to `new_lot`, behind its own waiters and
    /// in their current order, without waking them.
    pub fn repark(&self, new_lot: &ParkingLot, count: usize) {
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
                *slot.state.borrow_mut() = SlotState::Broken(reason.clone());
                slot.wake();
            }
            return;
        }
        for slot in moved {
            *slot.lot.borrow_mut() = Rc::downgrade(&new_lot.inner);
            to.live += 1;
            to.queue.push_back(slot);
        }
    }

    /// Moves every parked task to `new_lot`.
    pub fn repark_all(&self, new_lot: &ParkingLot) {
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
            if *slot.state.borrow() == SlotState::Parked {
                *slot.state.borrow_mut() = SlotState::Broken(reason.clone());
                slot.wake();
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

    /// Another handle to the same lot (for the runtime's breaker list).
    fn share(&self) -> ParkingLot {
        ParkingLot {
            inner: self.inner.clone(),
        }
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
            .filter(|s| *s.state.borrow() == SlotState::Parked)
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

/// The future of [`ParkingLot::park`].
#[must_use = "futures do nothing unless awaited"]
pub struct Park {
    lot: Rc<RefCell<LotInner>>,
    slot: Option<Rc<Slot>>,
    done: bool,
}

impl Park {
    /// Whether the task was unparked and the future has not yet returned `Ok` for it. A
    /// primitive that handed something to this waiter checks this when dropping the future.
    pub fn is_unparked(&self) -> bool {
        !self.done
            && self
                .slot
                .as_ref()
                .is_some_and(|s| *s.state.borrow() == SlotState::Unparked)
    }

    fn leave(&self, slot: &Rc<Slot>) {
        let mut state = slot.state.borrow_mut();
        if *state != SlotState::Parked {
            return;
        }
        *state = SlotState::Left;
        drop(state);
        if let Some(lot) = slot.lot.borrow().upgrade() {
            let mut lot = lot.borrow_mut();
            lot.live -= 1;
            lot.sweep_if_needed();
        }
    }
}

impl Future for Park {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.done {
            return Poll::Ready(Err(Error::usage("park() polled after it finished")));
        }
        let Some(slot) = self.slot.clone() else {
            let parked = Runner::with_current_task(|_, task| {
                {
                    let status = task.current_status.borrow();
                    if status.is_cancelled() {
                        return Err(Error::new(status.cancelled_error()));
                    }
                }
                let mut lot = self.lot.borrow_mut();
                if let Some(reason) = &lot.broken {
                    return Err(Error::new(BrokenResourceError::new(reason.clone())));
                }
                task.register_cancel_waker(cx.waker());
                let task = Task::from_inner(task.clone());
                let waker = Slot::waker_for(&task, cx.waker());
                let slot = match lot.spare.pop() {
                    Some(slot) => {
                        *slot.state.borrow_mut() = SlotState::Parked;
                        *slot.waker.borrow_mut() = waker;
                        *slot.task.borrow_mut() = Some(task);
                        *slot.lot.borrow_mut() = Rc::downgrade(&self.lot);
                        slot
                    }
                    None => Rc::new(Slot {
                        state: RefCell::new(SlotState::Parked),
                        waker: RefCell::new(waker),
                        task: RefCell::new(Some(task)),
                        lot: RefCell::new(Rc::downgrade(&self.lot)),
                    }),
                };
                lot.sweep_if_needed();
                lot.live += 1;
                lot.queue.push_back(slot.clone());
                Ok(slot)
            });
            return match parked {
                None => {
                    self.done = true;
                    Poll::Ready(Err(not_in_run("ParkingLot::park")))
                }
                Some(Err(e)) => {
                    self.done = true;
                    Poll::Ready(Err(e))
                }
                Some(Ok(slot)) => {
                    self.slot = Some(slot);
                    Poll::Pending
                }
            };
        };
        // Performance: the state is matched through a borrow; only a broken lot's reason is
        // cloned (the old code cloned the whole state on every poll).
        let state = slot.state.borrow();
        match &*state {
            SlotState::Unparked => {
                drop(state);
                self.done = true;
                Poll::Ready(Ok(()))
            }
            SlotState::Broken(reason) => {
                let reason = reason.clone();
                drop(state);
                self.done = true;
                Poll::Ready(Err(Error::new(BrokenResourceError::new(reason))))
            }
            SlotState::Left => {
                drop(state);
                self.done = true;
                Poll::Ready(Err(Error::usage("park() polled after it left the lot")))
            }
            SlotState::Parked => {
                drop(state);
                let cancelled = Runner::with_current_task(|_, task| {
                    let status = task.current_status.borrow();
                    status.is_cancelled().then(|| status.cancelled_error())
                })
                .flatten();
                if let Some(cancelled) = cancelled {
                    self.leave(&slot);
                    self.done = true;
                    return Poll::Ready(Err(Error::new(cancelled)));
                }
                let task = slot.task.borrow();
                let Some(task) = task.as_ref() else {
                    unreachable!("a parked slot has its task")
                };
                let mut waker = slot.waker.borrow_mut();
                let current = waker.as_ref().unwrap_or(&task.inner.waker);
                if !current.will_wake(cx.waker()) {
                    *waker = Slot::waker_for(task, cx.waker());
                }
                task.inner.register_cancel_waker(cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for Park {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.leave(&slot);
            recycle(&self.lot, slot);
        }
    }
}

/// Keeps a finished slot for the lot's next `park`, if nothing else holds it (a slot that left
/// early stays in the queue as a tombstone until it is swept, and is not reused).
fn recycle(lot: &RefCell<LotInner>, slot: Rc<Slot>) {
    if Rc::strong_count(&slot) != 1 {
        return;
    }
    // Dropped before the lot is borrowed: the last handle of a task can own anything.
    let task = slot.task.borrow_mut().take();
    let waker = slot.waker.borrow_mut().take();
    drop((task, waker));
    if let Ok(mut lot) = lot.try_borrow_mut()
        && lot.spare.len() < SPARE_SLOTS
    {
        lot.spare.push(slot);
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
