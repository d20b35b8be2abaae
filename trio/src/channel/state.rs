//! The state one memory channel's handles share, and its wait queues.
//!
//! Every handle (each clone) parks its blocked tasks on a `ParkingLot` of its own, while a
//! channel-wide queue per direction keeps the global FIFO order and carries the values. The
//! two always hold the same live waiters in the same order: a waiter joins both in one poll
//! and leaves both in one poll or drop. So the oldest live waiter of the channel queue is the
//! oldest parked task of its handle's lot, and `unpark_one` on that lot wakes exactly it. A
//! lot per handle also lets `close` fail just that handle's waiters (`unpark_all`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use crate::lowlevel::ParkingLot;
use crate::{BrokenResourceError, ClosedResourceError, EndOfChannel, Error, WouldBlock};

/// What one handle (one clone) owns.
#[derive(Default)]
pub(super) struct HandleCore {
    pub(super) lot: ParkingLot,
    pub(super) closed: Cell<bool>,
}

/// A blocked sender: its value waits here until a receiver takes it.
pub(super) enum SendSlot<T> {
    Waiting(T),
    Sent,
    Failed(Error, T),
    Left,
}

/// A blocked receiver: a sender (or a close) fills this in before waking it.
pub(super) enum RecvSlot<T> {
    Waiting,
    Got(T),
    Failed(Error),
    Left,
}

/// Whether a slot still waits in its queue.
pub(super) trait Slot {
    fn is_waiting(&self) -> bool;
}

impl<T> Slot for SendSlot<T> {
    fn is_waiting(&self) -> bool {
        matches!(self, SendSlot::Waiting(_))
    }
}

impl<T> Slot for RecvSlot<T> {
    fn is_waiting(&self) -> bool {
        matches!(self, RecvSlot::Waiting)
    }
}

/// One blocked operation, shared by its future and the channel queue.
pub(super) struct Waiter<S> {
    pub(super) handle: Rc<HandleCore>,
    pub(super) slot: RefCell<S>,
}

impl<S: Slot> Waiter<S> {
    fn is_waiting(&self) -> bool {
        self.slot.borrow().is_waiting()
    }
}

/// A FIFO of waiters. Waiters that leave on their own are tombstoned and swept lazily.
pub(super) struct WaitQueue<S> {
    queue: VecDeque<Rc<Waiter<S>>>,
    live: usize,
    /// Finished waiters to reuse.
    ///
    /// Performance: a blocked send or receive reuses one of these instead of allocating a
    /// waiter and freeing it when it resumes (a malloc/free pair per blocking operation in
    /// benches/callgrind.rs).
    spare: Vec<Rc<Waiter<S>>>,
}

/// How many finished waiters a queue keeps for reuse.
const SPARE_WAITERS: usize = 4;

impl<S: Slot> WaitQueue<S> {
    fn new() -> Self {
        WaitQueue {
            queue: VecDeque::new(),
            live: 0,
            spare: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn push(&mut self, waiter: Rc<Waiter<S>>) {
        if self.queue.len() > 2 * self.live + 32 {
            self.queue.retain(|w| w.is_waiting());
        }
        self.live += 1;
        self.queue.push_back(waiter);
    }

    /// Pushes a new waiter of `handle` waiting with `slot`, reusing a finished one if there is
    /// one, and returns it.
    pub(super) fn push_new(&mut self, handle: &Rc<HandleCore>, slot: S) -> Rc<Waiter<S>> {
        let waiter = match self.spare.pop() {
            Some(mut waiter) => {
                let Some(reused) = Rc::get_mut(&mut waiter) else {
                    unreachable!("spare waiters are not shared")
                };
                if !Rc::ptr_eq(&reused.handle, handle) {
                    reused.handle = handle.clone();
                }
                *reused.slot.get_mut() = slot;
                waiter
            }
            None => Rc::new(Waiter {
                handle: handle.clone(),
                slot: RefCell::new(slot),
            }),
        };
        self.push(waiter.clone());
        waiter
    }

    /// Keeps a waiter whose operation has finished (its slot taken) for reuse, unless
    /// something still holds it (a tombstone in the queue).
    pub(super) fn recycle(&mut self, waiter: Rc<Waiter<S>>) {
        if Rc::strong_count(&waiter) == 1
            && Rc::weak_count(&waiter) == 0
            && self.spare.len() < SPARE_WAITERS
        {
            self.spare.push(waiter);
        }
    }

    /// Takes the oldest live waiter out; the caller fills its slot and wakes it.
    fn pop(&mut self) -> Option<Rc<Waiter<S>>> {
        while let Some(waiter) = self.queue.pop_front() {
            if waiter.is_waiting() {
                self.live -= 1;
                return Some(waiter);
            }
        }
        None
    }

    /// A waiter marked its own slot `Left`.
    pub(super) fn left(&mut self) {
        self.live -= 1;
    }

    /// Takes out every live waiter, oldest first (of one handle only, if given).
    fn take(&mut self, handle: Option<&Rc<HandleCore>>) -> Vec<Rc<Waiter<S>>> {
        let mut taken = Vec::new();
        self.queue.retain(|w| {
            if !w.is_waiting() {
                return false;
            }
            if handle.is_none_or(|h| Rc::ptr_eq(h, &w.handle)) {
                taken.push(w.clone());
                return false;
            }
            true
        });
        self.live -= taken.len();
        taken
    }
}

/// Everything the handles of one channel share.
pub(super) struct State<T> {
    pub(super) buffer: VecDeque<T>,
    pub(super) max_buffer: usize,
    pub(super) open_send: usize,
    pub(super) open_recv: usize,
    pub(super) senders: WaitQueue<SendSlot<T>>,
    pub(super) receivers: WaitQueue<RecvSlot<T>>,
    /// Values handed to receivers that have not returned them yet. They may still come back
    /// (a dropped receive), so the channel has not ended while any are in flight.
    in_flight: usize,
}

/// Values taken out of the state to be dropped once it is no longer borrowed (a value's
/// `Drop` may use this very channel).
pub(super) type Dropped<T> = Vec<T>;

impl<T> State<T> {
    pub(super) fn new(max_buffer: usize) -> Self {
        State {
            buffer: VecDeque::new(),
            max_buffer,
            open_send: 1,
            open_recv: 1,
            senders: WaitQueue::new(),
            receivers: WaitQueue::new(),
            in_flight: 0,
        }
    }

    /// Hands `value` to the oldest blocked receiver, or gives it back if there is none.
    fn deliver(&mut self, value: T) -> Result<(), T> {
        let Some(waiter) = self.receivers.pop() else {
            return Err(value);
        };
        *waiter.slot.borrow_mut() = RecvSlot::Got(value);
        waiter.handle.lot.unpark_one();
        self.in_flight += 1;
        Ok(())
    }

    /// Whether receivers should see `EndOfChannel`.
    fn ended(&self) -> bool {
        self.open_send == 0 && self.buffer.is_empty() && self.in_flight == 0
    }

    /// Fails every blocked receiver with `EndOfChannel`.
    fn end_receivers(&mut self) {
        for waiter in self.receivers.take(None) {
            *waiter.slot.borrow_mut() = RecvSlot::Failed(Error::new(EndOfChannel));
            waiter.handle.lot.unpark_one();
        }
    }

    /// A receiver returned a value that was handed to it.
    pub(super) fn received_in_flight(&mut self) {
        self.in_flight -= 1;
        if self.ended() {
            self.end_receivers();
        }
    }

    /// Trio's `send_nowait`: to the oldest receiver, else into the buffer.
    pub(super) fn try_send(&mut self, handle: &HandleCore, value: T) -> Result<(), (Error, T)> {
        if handle.closed.get() {
            return Err((closed("send"), value));
        }
        if self.open_recv == 0 {
            return Err((broken(), value));
        }
        let value = match self.deliver(value) {
            Ok(()) => return Ok(()),
            Err(value) => value,
        };
        if self.buffer.len() < self.max_buffer {
            self.buffer.push_back(value);
            return Ok(());
        }
        Err((Error::new(WouldBlock), value))
    }

    /// Trio's `receive_nowait`: the oldest blocked sender's value joins the buffer's back,
    /// then the buffer's front comes out.
    pub(super) fn try_receive(&mut self, handle: &HandleCore) -> crate::Result<T> {
        if handle.closed.get() {
            return Err(closed("receive"));
        }
        if let Some(waiter) = self.senders.pop() {
            let slot = std::mem::replace(&mut *waiter.slot.borrow_mut(), SendSlot::Sent);
            if let SendSlot::Waiting(value) = slot {
                self.buffer.push_back(value);
            }
            waiter.handle.lot.unpark_one();
        }
        if let Some(value) = self.buffer.pop_front() {
            return Ok(value);
        }
        if self.ended() {
            return Err(Error::new(EndOfChannel));
        }
        Err(Error::new(WouldBlock))
    }

    /// A value taken for a receiver that never returned it (`in_flight`: it had been handed
    /// over while the receiver was blocked): to the oldest receiver, else back to the front of
    /// the buffer (possibly one over `max_buffer`: it was already sent). With no receive
    /// handle left it is returned, to be dropped.
    pub(super) fn give_back(&mut self, value: T, in_flight: bool) -> Option<T> {
        if in_flight {
            self.in_flight -= 1;
        }
        let unwanted = if self.open_recv == 0 {
            Some(value)
        } else {
            if let Err(value) = self.deliver(value) {
                self.buffer.push_front(value);
            }
            None
        };
        if self.ended() {
            self.end_receivers();
        }
        unwanted
    }

    /// Closes a send handle: its blocked tasks fail with `ClosedResourceError`; the last
    /// sender's close ends the channel for blocked receivers.
    pub(super) fn close_sender(&mut self, handle: &Rc<HandleCore>) {
        for waiter in self.senders.take(Some(handle)) {
            let mut slot = waiter.slot.borrow_mut();
            if let SendSlot::Waiting(value) = std::mem::replace(&mut *slot, SendSlot::Left) {
                *slot = SendSlot::Failed(closed("send"), value);
            }
        }
        handle.lot.unpark_all();
        self.open_send -= 1;
        if self.ended() {
            self.end_receivers();
        }
    }

    /// Closes a receive handle: its blocked tasks fail with `ClosedResourceError`; the last
    /// receiver's close fails blocked senders with `BrokenResourceError` and empties the
    /// buffer (returned, to be dropped).
    pub(super) fn close_receiver(&mut self, handle: &Rc<HandleCore>) -> Dropped<T> {
        for waiter in self.receivers.take(Some(handle)) {
            *waiter.slot.borrow_mut() = RecvSlot::Failed(closed("receive"));
        }
        handle.lot.unpark_all();
        self.open_recv -= 1;
        if self.open_recv > 0 {
            return Vec::new();
        }
        for waiter in self.senders.take(None) {
            let mut slot = waiter.slot.borrow_mut();
            if let SendSlot::Waiting(value) = std::mem::replace(&mut *slot, SendSlot::Left) {
                *slot = SendSlot::Failed(broken(), value);
            }
            drop(slot);
            waiter.handle.lot.unpark_one();
        }
        self.buffer.drain(..).collect()
    }
}

fn closed(what: &str) -> Error {
    Error::new(ClosedResourceError::new(format!(
        "this {what} channel handle was closed"
    )))
}

fn broken() -> Error {
    Error::new(BrokenResourceError::new(
        "every receive handle of this memory channel is closed",
    ))
}
