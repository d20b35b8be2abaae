//! The state one memory channel's handles share, and its wait queues.
//!
//! Blocked senders and receivers park in one `ParkingLot` per direction, each with its data:
//! a sender with its value, a receiver with the slot a value is delivered into. The lot's FIFO
//! is the channel's fairness order, and a hand-off (a value into a receiver's slot, a value
//! out of a sender's) is done on the waiter's data just before it is woken. Closing one handle
//! fails only its own waiters: each waiter names its handle.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::lowlevel::ParkingLot;
use crate::{BrokenResourceError, ClosedResourceError, EndOfChannel, Error};

/// What one handle (one clone) owns.
#[derive(Default)]
pub(super) struct HandleCore {
    pub(super) closed: Cell<bool>,
}

impl HandleCore {
    /// A new handle of the same side (Rust's `clone`): closed if this one is, else open, and
    /// then `count_open` counts it in the channel.
    pub(super) fn clone_handle(&self, count_open: impl FnOnce()) -> Rc<HandleCore> {
        let handle = Rc::new(HandleCore::default());
        if self.closed.get() {
            handle.closed.set(true);
        } else {
            count_open();
        }
        handle
    }

    /// Trio's `clone` refuses a closed handle: `ClosedResourceError`, naming the handle's
    /// `side`. Inlined, as the test was in the generic `try_clone`s.
    #[inline]
    pub(super) fn check_clone(&self, side: &str) -> Result<(), Error> {
        if self.closed.get() {
            return Err(closed_clone(side));
        }
        Ok(())
    }
}

/// Which handle a waiter belongs to: the address of its `HandleCore`. Unique among live
/// waiters: a send or receive future borrows its handle, so no waiter outlives it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct HandleId(usize);

impl HandleId {
    pub(super) fn of(handle: &Rc<HandleCore>) -> Self {
        HandleId(Rc::as_ptr(handle) as usize)
    }

    /// The handle of a waiter that was unparked: no close looks for it any more (no live
    /// handle is at address 0).
    pub(super) const UNPARKED: HandleId = HandleId(0);
}

/// A blocked sender's data: its value waits here until a receiver takes it.
pub(super) struct SendWait<T> {
    pub(super) handle: HandleId,
    pub(super) slot: SendSlot<T>,
}

pub(super) enum SendSlot<T> {
    Waiting(T),
    Sent,
    Failed(Error, T),
}

/// A blocked receiver's data: a sender (or a close) fills this in before waking it.
pub(super) struct RecvWait<T> {
    pub(super) handle: HandleId,
    pub(super) slot: RecvSlot<T>,
}

pub(super) enum RecvSlot<T> {
    Waiting,
    Got(T),
    Failed(Error),
}

/// What a send that may not wait did.
///
/// The would-block outcome is a variant, not an `Error` built and then tested
/// with a downcast on every blocking send.
pub(super) enum TrySend<T> {
    Sent,
    Full(T),
    Failed(Error, T),
}

/// What a receive that may not wait did (see [`TrySend`]).
pub(super) enum TryReceive<T> {
    Got(T),
    Empty,
    Failed(Error),
}

/// Everything the handles of one channel share.
pub(super) struct State<T> {
    pub(super) buffer: VecDeque<T>,
    pub(super) max_buffer: usize,
    pub(super) open_send: usize,
    pub(super) open_recv: usize,
    pub(super) senders: ParkingLot<SendWait<T>>,
    pub(super) receivers: ParkingLot<RecvWait<T>>,
    /// The most values the buffer has held at once (Trio's `peak_buffer_used`).
    pub(super) peak_buffer: usize,
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
            senders: ParkingLot::new(),
            receivers: ParkingLot::new(),
            peak_buffer: 0,
            in_flight: 0,
        }
    }

    /// Hands `value` to the oldest blocked receiver, or gives it back if there is none.
    ///
    /// With no receiver waiting the value is not moved in and out of a hand-off,
    /// and that test is inlined; the hand-off is one call.
    #[inline(always)]
    fn deliver(&mut self, value: T) -> Result<(), T> {
        if self.receivers.is_empty() {
            return Err(value);
        }
        self.deliver_to_waiter(value)
    }

    #[inline(never)]
    fn deliver_to_waiter(&mut self, value: T) -> Result<(), T> {
        let delivered = RecvWait {
            handle: HandleId::UNPARKED,
            slot: RecvSlot::Got(value),
        };
        match self.receivers.unpark_one_replacing(delivered) {
            // A parked receiver's slot is empty (`Waiting`): nothing to drop.
            Ok(waiting) => {
                debug_assert!(matches!(
                    waiting,
                    Some(RecvWait {
                        slot: RecvSlot::Waiting,
                        ..
                    })
                ));
                std::mem::forget(waiting);
                self.in_flight += 1;
                Ok(())
            }
            Err(RecvWait {
                slot: RecvSlot::Got(value),
                ..
            }) => Err(value),
            Err(_) => unreachable!("the delivery comes back as it was made"),
        }
    }

    /// Whether receivers should see `EndOfChannel`.
    fn ended(&self) -> bool {
        self.open_send == 0 && self.buffer.is_empty() && self.in_flight == 0
    }

    /// Fails every blocked receiver with `EndOfChannel`.
    fn end_receivers(&mut self) {
        self.receivers.unpark_all_where(|waiter| {
            waiter.slot = RecvSlot::Failed(Error::new(EndOfChannel));
            true
        });
    }

    /// A receiver returned a value that was handed to it.
    pub(super) fn received_in_flight(&mut self) {
        self.in_flight -= 1;
        if self.ended() {
            self.end_receivers();
        }
    }

    /// Trio's `send_nowait`: to the oldest receiver, else into the buffer.
    ///
    /// Always inlined into the send's start: left to the inliner it is a call.
    #[inline(always)]
    pub(super) fn try_send(&mut self, handle: &HandleCore, value: T) -> TrySend<T> {
        if handle.closed.get() {
            return TrySend::Failed(closed("send"), value);
        }
        if self.open_recv == 0 {
            return TrySend::Failed(broken(), value);
        }
        let value = match self.deliver(value) {
            Ok(()) => return TrySend::Sent,
            Err(value) => value,
        };
        if self.buffer.len() < self.max_buffer {
            self.buffer.push_back(value);
            if self.buffer.len() > self.peak_buffer {
                self.peak_buffer = self.buffer.len();
            }
            return TrySend::Sent;
        }
        TrySend::Full(value)
    }

    /// Trio's `receive_nowait`: the oldest blocked sender's value joins the buffer's back,
    /// then the buffer's front comes out.
    ///
    /// Inlined into the receive's start, with taking a blocked sender's value
    /// one call.
    #[inline(always)]
    pub(super) fn try_receive(&mut self, handle: &HandleCore) -> TryReceive<T> {
        if handle.closed.get() {
            return TryReceive::Failed(closed("receive"));
        }
        // With no sender waiting, no hand-off is built and given back.
        if !self.senders.is_empty()
            && let Some(value) = self.take_from_sender()
        {
            return TryReceive::Got(value);
        }
        if let Some(value) = self.buffer.pop_front() {
            return TryReceive::Got(value);
        }
        if self.ended() {
            return TryReceive::Failed(Error::new(EndOfChannel));
        }
        TryReceive::Empty
    }

    /// Takes the oldest blocked sender's value (waking it) and returns it if the buffer is
    /// empty (a rendezvous channel's every value: it would go into the buffer and straight out
    /// again), else puts it at the buffer's back.
    #[inline(never)]
    fn take_from_sender(&mut self) -> Option<T> {
        let taken = self.senders.unpark_one_replacing(SendWait {
            handle: HandleId::UNPARKED,
            slot: SendSlot::Sent,
        });
        match taken {
            Ok(Some(SendWait {
                slot: SendSlot::Waiting(value),
                ..
            })) => {
                if self.buffer.is_empty() {
                    return Some(value);
                }
                self.buffer.push_back(value);
            }
            Ok(_) => unreachable!("a parked sender holds its value"),
            // Every waiter is out of the queue in an `unpark_all_where`. `Sent` holds nothing:
            // no drop needed.
            Err(unsent) => std::mem::forget(unsent),
        }
        None
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
        let id = HandleId::of(handle);
        self.senders.unpark_all_where(|waiter| {
            if waiter.handle != id {
                return false;
            }
            if let SendSlot::Waiting(value) = std::mem::replace(&mut waiter.slot, SendSlot::Sent) {
                waiter.slot = SendSlot::Failed(closed("send"), value);
            }
            true
        });
        self.open_send -= 1;
        if self.ended() {
            self.end_receivers();
        }
    }

    /// Closes a receive handle: its blocked tasks fail with `ClosedResourceError`; the last
    /// receiver's close fails blocked senders with `BrokenResourceError` and empties the
    /// buffer (returned, to be dropped).
    pub(super) fn close_receiver(&mut self, handle: &Rc<HandleCore>) -> Dropped<T> {
        let id = HandleId::of(handle);
        self.receivers.unpark_all_where(|waiter| {
            if waiter.handle != id {
                return false;
            }
            waiter.slot = RecvSlot::Failed(closed("receive"));
            true
        });
        self.open_recv -= 1;
        if self.open_recv > 0 {
            return Vec::new();
        }
        self.senders.unpark_all_where(|waiter| {
            if let SendSlot::Waiting(value) = std::mem::replace(&mut waiter.slot, SendSlot::Sent) {
                waiter.slot = SendSlot::Failed(broken(), value);
            }
            true
        });
        self.buffer.drain(..).collect()
    }
}

fn closed(what: &str) -> Error {
    Error::new(ClosedResourceError::new(format!(
        "this {what} channel handle was closed"
    )))
}

#[cold]
fn closed_clone(side: &str) -> Error {
    Error::new(ClosedResourceError::new(format!(
        "can't clone a closed {side} channel handle"
    )))
}

fn broken() -> Error {
    Error::new(BrokenResourceError::new(
        "every receive handle of this memory channel is closed",
    ))
}
