//! The sending half of a memory channel.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::state::{HandleCore, HandleId, SendSlot, SendWait, State, TrySend};
use super::{MemoryChannelStatistics, statistics};
use crate::lowlevel::{
    CancelShieldedCheckpoint, Park, cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled,
};
use crate::{Error, Result, WouldBlock};

/// A send that failed, with the value it could not send.
///
/// `?` turns it into the inner [`Error`] (the value is dropped), so a `Cancelled` travels on as
/// usual: `tx.send(v).await?` works in any trio function. It answers the same questions as
/// an [`Error`] (a receive's error): [`is_cancelled`](Self::is_cancelled),
/// [`is_closed`](Self::is_closed), [`is_broken`](Self::is_broken),
/// [`is_would_block`](Self::is_would_block), [`is`](Self::is),
/// [`downcast_ref`](Self::downcast_ref).
///
/// ```
/// # fn main() -> trio::Result<()> {
/// # trio::run(async {
/// let (tx, rx) = trio::open_memory_channel::<String>(0);
/// drop(rx);
/// let e = tx.send("hello".to_string()).await.unwrap_err();
/// assert!(e.is_broken()); // every receiver is closed
/// assert_eq!(e.into_value(), "hello");
/// # Ok(())
/// # })
/// # }
/// ```
pub struct SendError<T> {
    value: T,
    error: Error,
}

impl<T> SendError<T> {
    pub(super) fn new(value: T, error: Error) -> Self {
        SendError { value, error }
    }

    /// Why the send failed: [`WouldBlock`], [`ClosedResourceError`](crate::ClosedResourceError),
    /// [`BrokenResourceError`](crate::BrokenResourceError), `Cancelled`, ...
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The value that was not sent.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Takes the value back.
    pub fn into_value(self) -> T {
        self.value
    }

    /// The error, dropping the value.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The value and the error.
    pub fn into_parts(self) -> (T, Error) {
        (self.value, self.error)
    }

    /// Whether the send failed only because it would have had to wait ([`WouldBlock`], from
    /// `try_send`).
    pub fn is_would_block(&self) -> bool {
        self.error.is_would_block()
    }

    /// Whether the send was cancelled (the value was not sent).
    pub fn is_cancelled(&self) -> bool {
        self.error.is_cancelled()
    }

    /// Whether this send handle was closed ([`ClosedResourceError`](crate::ClosedResourceError)).
    pub fn is_closed(&self) -> bool {
        self.error.is_closed()
    }

    /// Whether every receive handle is closed
    /// ([`BrokenResourceError`](crate::BrokenResourceError)).
    pub fn is_broken(&self) -> bool {
        self.error.is_broken()
    }

    /// Whether the error is of kind `E` (as [`Error::is`]).
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.error.is::<E>()
    }

    /// The error as kind `E`, if it is one (as [`Error::downcast_ref`]).
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "send failed: {}", self.error)
    }
}

impl<T> From<SendError<T>> for Error {
    fn from(e: SendError<T>) -> Error {
        e.error
    }
}

/// The sending half of a memory channel (see [`open_memory_channel`](super::open_memory_channel)).
///
/// Clone it to have several senders: each clone is a handle that must be closed (or dropped)
/// on its own, and receivers see [`EndOfChannel`](crate::EndOfChannel) once every sender
/// handle is closed and the buffer is drained. Dropping a handle closes it.
pub struct MemorySendChannel<T> {
    pub(super) state: Rc<RefCell<State<T>>>,
    pub(super) handle: Rc<HandleCore>,
}

impl<T> MemorySendChannel<T> {
    /// Sends `value` if that can be done without waiting: to the oldest blocked receiver, else
    /// into the buffer. Fails (handing the value back) with [`WouldBlock`] when the buffer is
    /// full, [`ClosedResourceError`](crate::ClosedResourceError) when this handle is closed, and
    /// [`BrokenResourceError`](crate::BrokenResourceError) when every receiver is closed.
    /// Not a checkpoint.
    pub fn try_send(&self, value: T) -> Result<(), SendError<T>> {
        let sent = self.state.borrow_mut().try_send(&self.handle, value);
        match sent {
            TrySend::Sent => Ok(()),
            TrySend::Full(value) => Err(SendError::new(value, Error::new(WouldBlock))),
            TrySend::Failed(error, value) => Err(SendError::new(value, error)),
        }
    }

    /// Sends `value`, waiting while the buffer is full (on a rendezvous channel, until a
    /// receiver takes it). Errors as [`try_send`](Self::try_send), except that a full buffer
    /// means waiting; the value comes back in the [`SendError`].
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when it did not wait.
    ///
    /// # Cancel safety
    /// Safe. Cancelled while waiting, the value was not sent and comes back in the error; if a
    /// receiver took it just before the cancellation, `send` returns `Ok`. Dropping the future
    /// while it waits unsends the value (it is dropped with the future).
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: self,
            stage: Stage::Start,
            value: Some(value),
            yielding: cancel_shielded_checkpoint(),
            park: None,
        }
    }

    /// Closes this handle (idempotent). Its own blocked sends fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError); once every send handle is closed,
    /// receivers get [`EndOfChannel`](crate::EndOfChannel) after the buffer drains. Not a
    /// checkpoint.
    pub fn close(&self) {
        if !self.handle.closed.replace(true) {
            self.state.borrow_mut().close_sender(&self.handle);
        }
    }

    /// Closes this handle, then checkpoints (Trio's `aclose`).
    ///
    /// # Checkpoint
    /// Yes (after closing: a cancelled `aclose` has still closed the handle).
    ///
    /// # Cancel safety
    /// Safe: the close happens before the first await.
    pub async fn aclose(&self) -> Result<()> {
        self.close();
        checkpoint().await
    }

    /// Whether this handle is closed.
    pub fn is_closed(&self) -> bool {
        self.handle.closed.get()
    }

    /// A new handle, as `clone`, but failing with
    /// [`ClosedResourceError`](crate::ClosedResourceError) if this one is closed (Trio's `clone`).
    pub fn try_clone(&self) -> Result<Self> {
        self.handle.check_clone("send")?;
        Ok(self.clone())
    }

    /// Trio's statistics of the channel.
    pub fn statistics(&self) -> MemoryChannelStatistics {
        statistics(&self.state.borrow())
    }
}

impl<T> Clone for MemorySendChannel<T> {
    /// Another send handle to the same channel, counted in `open_send_channels`. Cloning a
    /// closed handle gives a closed handle (see [`try_clone`](Self::try_clone)).
    fn clone(&self) -> Self {
        let handle = self
            .handle
            .clone_handle(|| self.state.borrow_mut().open_send += 1);
        MemorySendChannel {
            state: self.state.clone(),
            handle,
        }
    }
}

impl<T> Drop for MemorySendChannel<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> std::fmt::Debug for MemorySendChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySendChannel")
            .field("closed", &self.is_closed())
            .field("statistics", &self.statistics())
            .finish()
    }
}

/// Where a send is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    /// Sent without waiting; now yielding (the schedule point).
    Yield,
    /// Waiting in the senders' lot, the value in the waiter's data.
    Parked,
    Done,
}

pin_project_lite::pin_project! {
    /// The future of [`MemorySendChannel::send`].
    ///
    /// Flat fields and a `Copy` stage rather than an enum holding the value and
    /// the `Park`: a transition writes one field instead of moving (and drop-checking) the
    /// whole state.
    ///
    /// Dropping it while it waits drops its `Park`, which leaves the queue and drops the value
    /// that was not sent (after every borrow of the channel has ended: its `Drop` may use the
    /// channel).
    #[must_use = "futures do nothing unless awaited"]
    pub struct SendFuture<'a, T> {
        chan: &'a MemorySendChannel<T>,
        stage: Stage,
        // The value, until it is sent or parked with.
        value: Option<T>,
        yielding: CancelShieldedCheckpoint,
        // Pinned: a waiter is linked in place (`ParkingLot`).
        #[pin]
        park: Option<Park<SendWait<T>>>,
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    /// The poll that ends a send's schedule point (the usual second poll) is
    /// inlined into the caller, as is the start (`poll_start_or_parked`); waiting is one call.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self;
        let fields = this.as_mut().project();
        if *fields.stage == Stage::Yield {
            if Pin::new(fields.yielding).poll(cx).is_pending() {
                return Poll::Pending;
            }
            *fields.stage = Stage::Done;
            return Poll::Ready(Ok(()));
        }
        this.poll_start_or_parked(cx)
    }
}

impl<T> SendFuture<'_, T> {
    /// The start (a cancel point, then a send that does not wait) is inlined
    /// into the caller, whose prologue has saved the registers already; waiting is one call
    /// It stays a function of its own although it is always inlined: merged into `poll` as
    /// one match on the stage, the round trip costs more.
    #[inline(always)]
    fn poll_start_or_parked(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut this = self;
        let mut fields = this.as_mut().project();
        match *fields.stage {
            Stage::Start => {
                let Some(value) = fields.value.take() else {
                    unreachable!("a send holds its value until it starts")
                };
                match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        *fields.stage = Stage::Done;
                        return Poll::Ready(Err(SendError::new(value, e)));
                    }
                    // Cancelled: the cancel point yields before it raises.
                    Poll::Pending => {
                        *fields.value = Some(value);
                        return Poll::Pending;
                    }
                }
                let mut state = fields.chan.state.borrow_mut();
                match state.try_send(&fields.chan.handle, value) {
                    TrySend::Sent => {
                        drop(state);
                        *fields.stage = Stage::Yield;
                        // The first poll of a schedule point is always pending.
                        let _ = Pin::new(fields.yielding).poll(cx);
                        return Poll::Pending;
                    }
                    TrySend::Full(value) => {
                        fields.park.set(Some(state.senders.park_with(SendWait {
                            handle: HandleId::of(&fields.chan.handle),
                            slot: SendSlot::Waiting(value),
                        })));
                        *fields.stage = Stage::Parked;
                    }
                    TrySend::Failed(e, value) => {
                        *fields.stage = Stage::Done;
                        return Poll::Ready(Err(SendError::new(value, e)));
                    }
                }
            }
            Stage::Parked => {}
            Stage::Yield | Stage::Done => panic!("SendFuture polled after completion"),
        }
        this.poll_parked(cx)
    }

    /// A poll while waiting in the senders' lot.
    #[inline(never)]
    fn poll_parked(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        let mut this = self.project();
        let Some(mut park) = this.park.as_mut().as_pin_mut() else {
            unreachable!("a parked send holds its park")
        };
        let parked = match park.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(parked) => parked,
        };
        let waiter = park.take_data();
        // The finished park (woken, its data taken) stays until the future is
        // dropped, right after, rather than being dropped here and an empty one then
        // (docs/benchmarks.md).
        *this.stage = Stage::Done;
        Poll::Ready(match (parked, waiter.map(|w| w.slot)) {
            (_, Some(SendSlot::Sent)) => Ok(()),
            (_, Some(SendSlot::Failed(e, value))) => Err(SendError::new(value, e)),
            // Cancelled (or failed to park) before anyone took the value: it has left the
            // queue.
            (Err(e), Some(SendSlot::Waiting(value))) => Err(SendError::new(value, e)),
            (Ok(()), Some(SendSlot::Waiting(_))) | (_, None) => {
                unreachable!("a send waiter woke without an outcome")
            }
        })
    }
}
