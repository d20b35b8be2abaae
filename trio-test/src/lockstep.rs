//! Streams with no buffering at all: each send waits until the receiver has taken all of it
//! (Trio's lockstep streams); and the machinery that lets the poll methods of trio-test's
//! streams wait on a `ParkingLot` and tell operations apart.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use trio::lowlevel::{Park, ParkingLot};
use trio::stream::{
    AsyncResource, ConflictDetector, ReceiveBuf, ReceiveStream, SendStream, StapledStream,
};
use trio::{BrokenResourceError, ClosedResourceError, Error, Result};

/// Which operation is in progress on one direction of a stream, as far as a poll method can
/// tell: the direction's [`ConflictDetector`] entry count and whether it is held. The
/// Trio-layer futures hold the detector for their whole duration, so state a poll method
/// stamped is stale once the stamp changes: its operation was cancelled or dropped. Poll-level
/// callers never hold the detector; for them the stamp stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpStamp {
    entries: u64,
    held: bool,
}

impl OpStamp {
    pub(crate) fn current(detector: &ConflictDetector) -> Self {
        OpStamp {
            entries: detector.entries(),
            held: detector.is_held(),
        }
    }
}

/// A poll method's place in a [`ParkingLot`]: a parked future kept between polls.
///
/// A poll method cannot await `lot.park()`, so it keeps the `Park` here, boxed (it must not
/// move once polled). The park is tied to the waker it was polled with; a poll with another
/// waker (another task) parks anew. Parking through the lot keeps its guarantees: the next
/// unpark wakes the waker, and so does cancellation of the task.
#[derive(Default)]
pub(crate) struct PollPark {
    slot: RefCell<Option<(Pin<Box<Park>>, Waker)>>,
}

impl PollPark {
    /// Parks in `lot` (or stays parked) so that `cx` is woken by the next unpark. `Pending`,
    /// or the park's error (the task is cancelled, the lot broken).
    pub(crate) fn poll_park(&self, lot: &ParkingLot, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut slot = self.slot.borrow_mut();
        if let Some((park, waker)) = slot.as_mut()
            && !park.is_unparked()
            && waker.will_wake(cx.waker())
        {
            return match park.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => {
                    *slot = None;
                    // Cancelled or broken (an error), or woken meanwhile: then the caller's
                    // condition may hold, so have it look again.
                    result?;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            };
        }
        let mut park = Box::pin(lot.park());
        match park.as_mut().poll(cx) {
            Poll::Pending => {
                *slot = Some((park, cx.waker().clone()));
                Poll::Pending
            }
            Poll::Ready(result) => {
                // A first poll only ends the park with an error (cancelled, broken).
                *slot = None;
                result?;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Leaves the lot (the wait is over).
    pub(crate) fn clear(&self) {
        let old = self.slot.borrow_mut().take();
        drop(old);
    }
}

/// The state both ends share (Trio's `_LockstepByteQueue`).
struct Lockstep {
    /// Sent and not yet received: at most one send's data.
    data: RefCell<Vec<u8>>,
    sender_closed: Cell<bool>,
    receiver_closed: Cell<bool>,
    /// The receive waiting for data, if any (what `wait_send_all_might_not_block` waits
    /// for); stale once that receive ended.
    receiver_waiting: Cell<Option<OpStamp>>,
    /// Everyone waiting for anything; woken on every change.
    waiters: ParkingLot,
    send_park: PollPark,
    receive_park: PollPark,
    send_detector: ConflictDetector,
    receive_detector: ConflictDetector,
}

impl Lockstep {
    fn something_happened(&self) {
        self.waiters.unpark_all();
    }

    fn receiver_waiting(&self) -> bool {
        self.receiver_waiting.get() == Some(OpStamp::current(&self.receive_detector))
    }

    fn either_closed(&self) -> bool {
        self.sender_closed.get() || self.receiver_closed.get()
    }

    fn sender_closed_error(&self) -> Result<()> {
        if self.sender_closed.get() {
            return Err(Error::new(ClosedResourceError::new(
                "this lockstep send stream was closed",
            )));
        }
        Ok(())
    }

    fn receiver_gone() -> Error {
        Error::new(BrokenResourceError::new(
            "the lockstep receive stream was closed",
        ))
    }
}

/// The send end of [`lockstep_stream_one_way_pair`].
///
/// A send hands over its data and waits (in `poll_flush`, which `send_all` calls) until the
/// receiver has taken all of it. A later send waits for an earlier send's data (left by a
/// cancelled `send_all`) to be taken before handing over its own.
#[derive(Clone)]
pub struct LockstepSendStream {
    shared: Rc<Lockstep>,
}

/// The receive end of [`lockstep_stream_one_way_pair`].
///
/// A waiting receive is what wakes `wait_send_all_might_not_block`. A receive cancelled while
/// it waits stops counting as waiting (the stream notices from its conflict detector); a
/// poll-level receive that is abandoned keeps counting until the next one ends, so the
/// sender's wait may return early then (which its contract allows).
#[derive(Clone)]
pub struct LockstepReceiveStream {
    shared: Rc<Lockstep>,
}

impl fmt::Debug for LockstepSendStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockstepSendStream")
            .field("closed", &self.shared.sender_closed.get())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for LockstepReceiveStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockstepReceiveStream")
            .field("closed", &self.shared.receiver_closed.get())
            .finish_non_exhaustive()
    }
}

impl LockstepSendStream {
    /// Closes the send end (a synchronous close, as Trio's). Idempotent.
    pub fn close(&self) {
        self.shared.sender_closed.set(true);
        self.shared.something_happened();
    }
}

impl LockstepReceiveStream {
    /// Closes the receive end (a synchronous close, as Trio's). Idempotent.
    pub fn close(&self) {
        self.shared.receiver_closed.set(true);
        self.shared.something_happened();
    }
}

impl AsyncResource for LockstepSendStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

impl AsyncResource for LockstepReceiveStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

impl SendStream for LockstepSendStream {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let q = &*self.shared;
        q.sender_closed_error()?;
        if q.receiver_closed.get() {
            return Poll::Ready(Err(Lockstep::receiver_gone()));
        }
        if !q.data.borrow().is_empty() {
            return q.send_park.poll_park(&q.waiters, cx).map_ok(|()| 0);
        }
        q.send_park.clear();
        if !buf.is_empty() {
            q.data.borrow_mut().extend_from_slice(buf);
            q.something_happened();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let q = &*self.shared;
        q.sender_closed_error()?;
        if q.data.borrow().is_empty() {
            q.send_park.clear();
            return Poll::Ready(Ok(()));
        }
        if q.receiver_closed.get() {
            return Poll::Ready(Err(Lockstep::receiver_gone()));
        }
        q.send_park.poll_park(&q.waiters, cx)
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let q = &*self.shared;
        q.sender_closed_error()?;
        if q.either_closed() || q.receiver_waiting() {
            q.send_park.clear();
            return Poll::Ready(Ok(()));
        }
        q.send_park.poll_park(&q.waiters, cx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.shared.send_detector)
    }
}

impl ReceiveStream for LockstepReceiveStream {
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let q = &*self.shared;
        if q.receiver_closed.get() {
            q.receiver_waiting.set(None);
            return Poll::Ready(Err(Error::new(ClosedResourceError::new(
                "this lockstep receive stream was closed",
            ))));
        }
        let has_data = !q.data.borrow().is_empty();
        if has_data || q.sender_closed.get() {
            q.receiver_waiting.set(None);
            q.receive_park.clear();
            if has_data {
                let n = buf.put_slice(&q.data.borrow());
                q.data.borrow_mut().drain(..n);
                // Wakes the sender waiting for its data to be taken.
                q.something_happened();
            }
            return Poll::Ready(Ok(()));
        }
        if !q.receiver_waiting() {
            q.receiver_waiting
                .set(Some(OpStamp::current(&q.receive_detector)));
            // Wakes `wait_send_all_might_not_block`.
            q.something_happened();
        }
        let waited = q.receive_park.poll_park(&q.waiters, cx);
        if waited.is_ready() {
            q.receiver_waiting.set(None);
        }
        waited
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.shared.receive_detector)
    }
}

/// A connected one-way pair of streams with no buffering (Trio's
/// `lockstep_stream_one_way_pair`): each `send_all` waits until the receiver has received all
/// of its data. For testing flow control in the extreme case, and as the "clogged" streams of
/// the conformance suites.
pub fn lockstep_stream_one_way_pair() -> (LockstepSendStream, LockstepReceiveStream) {
    let shared = Rc::new(Lockstep {
        data: RefCell::new(Vec::new()),
        sender_closed: Cell::new(false),
        receiver_closed: Cell::new(false),
        receiver_waiting: Cell::new(None),
        waiters: ParkingLot::new(),
        send_park: PollPark::default(),
        receive_park: PollPark::default(),
        send_detector: ConflictDetector::new("another task is already sending"),
        receive_detector: ConflictDetector::new("another task is already receiving"),
    });
    (
        LockstepSendStream {
            shared: shared.clone(),
        },
        LockstepReceiveStream { shared },
    )
}

/// A lockstep stream: one [`LockstepSendStream`] and one [`LockstepReceiveStream`], stapled.
pub type LockstepStapledStream = StapledStream<LockstepSendStream, LockstepReceiveStream>;

/// A connected bidirectional pair of lockstep streams (Trio's `lockstep_stream_pair`): two
/// [`lockstep_stream_one_way_pair`]s stapled crosswise.
pub fn lockstep_stream_pair() -> (LockstepStapledStream, LockstepStapledStream) {
    let (send1, receive1) = lockstep_stream_one_way_pair();
    let (send2, receive2) = lockstep_stream_one_way_pair();
    (
        StapledStream::new(send1, receive2),
        StapledStream::new(send2, receive1),
    )
}
