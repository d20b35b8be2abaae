//! The receiving half of a memory channel.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::state::{HandleCore, HandleId, RecvSlot, RecvWait, State, TryReceive};
use super::{MemoryChannelStatistics, statistics};
use crate::lowlevel::{
    CancelShieldedCheckpoint, Park, cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled,
};
use crate::{Error, Result, WouldBlock};

/// The receiving half of a memory channel (see [`open_memory_channel`](super::open_memory_channel)).
///
/// Clone it to have several receivers: each value goes to exactly one of them, the one that
/// has waited longest. Each clone is a handle that must be closed (or dropped) on its own;
/// once every receiver handle is closed, senders fail with
/// [`BrokenResourceError`](crate::BrokenResourceError). Dropping a handle closes it.
///
/// Read it with [`recv`](Self::recv) in a loop, `while let Some(v) = rx.recv().await? { ... }`
/// (`Ok(None)`: every sender is closed and the buffer is drained), or with Trio's
/// [`receive`](Self::receive), for which the end is an error
/// ([`EndOfChannel`](crate::EndOfChannel)). It is also a [`Stream`](futures_core::Stream) of
/// `Result<T>` that ends there: each item, and the end, is a checkpoint, like `recv`.
pub struct MemoryReceiveChannel<T> {
    pub(super) state: Rc<RefCell<State<T>>>,
    pub(super) handle: Rc<HandleCore>,
    /// The receive in progress for `Stream::poll_next`, boxed so that the handle stays
    /// `Unpin` while the receive's waiter is pinned; kept for the next item once made.
    stream: Option<Pin<Box<Op<T>>>>,
    /// The schedule point before the stream's end when it was found without waiting: the end
    /// of a stream is a normal return, a full checkpoint as `recv`'s `Ok(None)` is.
    stream_ending: Option<CancelShieldedCheckpoint>,
}

impl<T> MemoryReceiveChannel<T> {
    pub(super) fn new(state: Rc<RefCell<State<T>>>, handle: Rc<HandleCore>) -> Self {
        MemoryReceiveChannel {
            state,
            handle,
            stream: None,
            stream_ending: None,
        }
    }

    /// Receives a value if one is ready: from the buffer, or from the oldest blocked sender.
    /// Fails with [`WouldBlock`] if none is, [`EndOfChannel`](crate::EndOfChannel) once every
    /// sender is closed and the buffer is empty, and
    /// [`ClosedResourceError`](crate::ClosedResourceError) if this handle is closed (ask with
    /// [`Error::is_would_block`], [`Error::is_end_of_channel`], [`Error::is_closed`]).
    /// Not a checkpoint.
    pub fn try_receive(&self) -> Result<T> {
        let received = self.state.borrow_mut().try_receive(&self.handle);
        match received {
            TryReceive::Got(value) => Ok(value),
            TryReceive::Empty => Err(Error::new(WouldBlock)),
            TryReceive::Failed(e) => Err(e),
        }
    }

    /// Receives the next value, waiting for one: `Ok(Some(value))`, or `Ok(None)` once every
    /// sender is closed and the buffer is drained (the end of the channel, and every later
    /// call too). The errors are [`ClosedResourceError`](crate::ClosedResourceError) if this
    /// handle is closed and `Cancelled`.
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// # trio::run(async {
    /// let (tx, rx) = trio::open_memory_channel::<u32>(4);
    /// tx.send(1).await?;
    /// tx.send(2).await?;
    /// drop(tx); // closes the only sender: the end comes after the buffered values
    /// let mut got = Vec::new();
    /// while let Some(v) = rx.recv().await? {
    ///     got.push(v);
    /// }
    /// assert_eq!(got, [1, 2]);
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when a value was ready (or the
    /// channel had ended).
    ///
    /// # Cancel safety
    /// As [`receive`](Self::receive): no value is ever lost.
    #[inline]
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            receive: self.receive(),
            ending: None,
        }
    }

    /// Receives the next value, waiting for one (Trio's `receive`): as [`recv`](Self::recv),
    /// but the end of the channel is the error [`EndOfChannel`](crate::EndOfChannel), for when
    /// the end is not expected (`rx.receive().await?` passes it up). The errors are those of
    /// [`try_receive`](Self::try_receive), except that an empty open channel means waiting.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when a value was ready.
    ///
    /// # Cancel safety
    /// Safe: no value is ever lost. Cancelled while waiting, nothing was received; if a value
    /// was handed over just before the cancellation, `receive` returns it. If the future is
    /// dropped holding a value it did not return yet, the value goes to the receiver that has
    /// waited longest, or back to the front of the buffer (which may then briefly hold one
    /// value over `max_buffer_size`).
    pub fn receive(&self) -> ReceiveFuture<'_, T> {
        ReceiveFuture {
            chan: self,
            op: Op::new(),
        }
    }

    /// Closes this handle (idempotent). Its own blocked receives fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError); once every receive handle is closed,
    /// senders fail with [`BrokenResourceError`](crate::BrokenResourceError) and the buffered
    /// values are dropped.
    /// Not a checkpoint.
    pub fn close(&self) {
        if !self.handle.closed.replace(true) {
            let dropped = self.state.borrow_mut().close_receiver(&self.handle);
            drop(dropped);
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
        self.handle.check_clone("receive")?;
        Ok(self.clone())
    }

    /// Trio's statistics of the channel.
    pub fn statistics(&self) -> MemoryChannelStatistics {
        statistics(&self.state.borrow())
    }
}

impl<T> Clone for MemoryReceiveChannel<T> {
    /// Another receive handle to the same channel, counted in `open_receive_channels`.
    /// Cloning a closed handle gives a closed handle (see [`try_clone`](Self::try_clone)).
    fn clone(&self) -> Self {
        let handle = self
            .handle
            .clone_handle(|| self.state.borrow_mut().open_recv += 1);
        MemoryReceiveChannel::new(self.state.clone(), handle)
    }
}

impl<T> Drop for MemoryReceiveChannel<T> {
    fn drop(&mut self) {
        if let Some(mut op) = self.stream.take() {
            op.as_mut().abandon(&self.state);
        }
        self.close();
    }
}

impl<T> std::fmt::Debug for MemoryReceiveChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReceiveChannel")
            .field("closed", &self.is_closed())
            .field("statistics", &self.statistics())
            .finish()
    }
}

// Values are moved around, never pinned.
impl<T> Unpin for MemoryReceiveChannel<T> {}

impl<T> futures_core::Stream for MemoryReceiveChannel<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        if let Some(ending) = &mut this.stream_ending {
            if Pin::new(ending).poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.stream_ending = None;
            return Poll::Ready(None);
        }
        let op = this.stream.get_or_insert_with(|| Box::pin(Op::new()));
        let polled = op.as_mut().poll(&this.state, &this.handle, cx);
        let waited = op.as_ref().waited();
        if polled.is_ready() {
            // A finished receive holds nothing: start the next item's receive afresh.
            op.set(Op::new());
        }
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(Some(Ok(value))),
            Poll::Ready(Err(e)) => {
                match end_or_error::<T>(e, waited, &mut this.stream_ending, cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(_)) => Poll::Ready(None),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

/// Where a receive is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    /// Got a value without waiting; now yielding (the schedule point).
    Yield,
    /// Waiting in the receivers' lot.
    Parked,
    Done,
}

pin_project_lite::pin_project! {
    /// One receive operation, for [`ReceiveFuture`], [`RecvFuture`] and the `Stream` impl.
    ///
    /// Flat fields and a `Copy` stage rather than an enum holding the value and
    /// the `Park`: a transition writes one field instead of moving (and drop-checking) the
    /// whole state.
    struct Op<T> {
        stage: Stage,
        // The value got without waiting, during `Yield`.
        value: Option<T>,
        yielding: CancelShieldedCheckpoint,
        // Pinned: a waiter is linked in place (`ParkingLot`).
        #[pin]
        park: Option<Park<RecvWait<T>>>,
    }
}

impl<T> Op<T> {
    fn new() -> Self {
        Op {
            stage: Stage::Start,
            value: None,
            yielding: cancel_shielded_checkpoint(),
            park: None,
        }
    }

    /// The poll that ends a receive's schedule point (the usual second poll) is
    /// inlined into the caller, as is the start (`poll_start_or_parked`); waiting is one call.
    #[inline(always)]
    fn poll(
        self: Pin<&mut Self>,
        state: &RefCell<State<T>>,
        handle: &Rc<HandleCore>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T>> {
        let mut this = self;
        let fields = this.as_mut().project();
        if *fields.stage == Stage::Yield {
            if Pin::new(fields.yielding).poll(cx).is_pending() {
                return Poll::Pending;
            }
            *fields.stage = Stage::Done;
            return match fields.value.take() {
                Some(value) => Poll::Ready(Ok(value)),
                None => unreachable!("a yielding receive holds its value"),
            };
        }
        this.poll_start_or_parked(state, handle, cx)
    }

    /// The start (a cancel point, then a receive that does not wait) is inlined
    /// into the caller, whose prologue has saved the registers already; waiting is one call
    /// It stays a function of its own although it is always inlined: merged into `poll` as
    /// one match on the stage, the round trip costs more.
    #[inline(always)]
    fn poll_start_or_parked(
        self: Pin<&mut Self>,
        state: &RefCell<State<T>>,
        handle: &Rc<HandleCore>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T>> {
        let mut this = self;
        let mut fields = this.as_mut().project();
        match *fields.stage {
            Stage::Start => {
                match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        *fields.stage = Stage::Done;
                        return Poll::Ready(Err(e));
                    }
                    // Cancelled: the cancel point yields before it raises.
                    Poll::Pending => return Poll::Pending,
                }
                let mut st = state.borrow_mut();
                match st.try_receive(handle) {
                    TryReceive::Got(value) => {
                        drop(st);
                        *fields.value = Some(value);
                        *fields.stage = Stage::Yield;
                        // The first poll of a schedule point is always pending.
                        let _ = Pin::new(fields.yielding).poll(cx);
                        return Poll::Pending;
                    }
                    TryReceive::Empty => {
                        fields.park.set(Some(st.receivers.park_with(RecvWait {
                            handle: HandleId::of(handle),
                            slot: RecvSlot::Waiting,
                        })));
                        *fields.stage = Stage::Parked;
                    }
                    TryReceive::Failed(e) => {
                        *fields.stage = Stage::Done;
                        return Poll::Ready(Err(e));
                    }
                }
            }
            Stage::Parked => {}
            Stage::Yield | Stage::Done => panic!("receive polled after completion"),
        }
        this.poll_parked(state, cx)
    }

    /// A poll while waiting in the receivers' lot.
    #[inline(never)]
    fn poll_parked(
        self: Pin<&mut Self>,
        state: &RefCell<State<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T>> {
        let mut this = self.project();
        let Some(mut park) = this.park.as_mut().as_pin_mut() else {
            unreachable!("a parked receive holds its park")
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
            (_, Some(RecvSlot::Got(value))) => {
                state.borrow_mut().received_in_flight();
                Ok(value)
            }
            (_, Some(RecvSlot::Failed(e))) => Err(e),
            // Cancelled (or failed to park) before a value came: it has left the queue.
            (Err(e), Some(RecvSlot::Waiting)) => Err(e),
            (Ok(()), Some(RecvSlot::Waiting)) | (_, None) => {
                unreachable!("a receive waiter woke without an outcome")
            }
        })
    }

    /// Whether this receive waited in the receivers' lot (and so has yielded).
    fn waited(self: Pin<&Self>) -> bool {
        self.park.is_some()
    }

    /// Undoes a receive that will not be polled again: a value it holds (taken, or handed to
    /// it while it waited) goes to the next receiver or back to the buffer's front.
    #[inline(always)]
    fn abandon(self: Pin<&mut Self>, state: &RefCell<State<T>>) {
        // A receive that completed (the usual drop) has nothing to undo.
        if self.stage == Stage::Done {
            return;
        }
        self.abandon_slow(state);
    }

    fn abandon_slow(self: Pin<&mut Self>, state: &RefCell<State<T>>) {
        let mut this = self.project();
        *this.stage = Stage::Done;
        let (value, in_flight) = if let Some(value) = this.value.take() {
            (value, false)
        } else if let Some(park) = this.park.as_ref().as_pin_ref() {
            if !park.is_unparked() {
                // Still waiting (its drop leaves the queue), or failed: nothing to give.
                this.park.set(None);
                return;
            }
            let got = park.take_data().map(|w| w.slot);
            this.park.set(None);
            match got {
                Some(RecvSlot::Got(value)) => (value, true),
                _ => return,
            }
        } else {
            return;
        };
        let unwanted = state.borrow_mut().give_back(value, in_flight);
        drop(unwanted);
    }
}

pin_project_lite::pin_project! {
    /// The future of [`MemoryReceiveChannel::receive`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct ReceiveFuture<'a, T> {
        chan: &'a MemoryReceiveChannel<T>,
        #[pin]
        op: Op<T>,
    }

    impl<'a, T> PinnedDrop for ReceiveFuture<'a, T> {
        #[inline(always)]
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.op.abandon(&this.chan.state);
        }
    }
}

impl<T> ReceiveFuture<'_, T> {
    /// Whether the receive waited in the receivers' lot (and so has yielded).
    fn waited(self: Pin<&Self>) -> bool {
        self.project_ref().op.waited()
    }
}

impl<T> Future for ReceiveFuture<'_, T> {
    type Output = Result<T>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.project();
        this.op.poll(&this.chan.state, &this.chan.handle, cx)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`MemoryReceiveChannel::recv`]: a [`ReceiveFuture`], with the end of the
    /// channel as `Ok(None)`.
    #[must_use = "futures do nothing unless awaited"]
    pub struct RecvFuture<'a, T> {
        #[pin]
        receive: ReceiveFuture<'a, T>,
        // The schedule point before an `Ok(None)` found without waiting: unlike Trio's
        // `EndOfChannel` error, the end is a normal return, so it is a full checkpoint.
        ending: Option<CancelShieldedCheckpoint>,
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<Option<T>>;

    /// `receive`'s poll and a re-wrap, inlined; the end and the errors take a cold
    /// path. The end's schedule point is a field of its own rather than the op's `Yield` stage
    /// without a value, which would make the op's yield a possible error on the hot path.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Option<T>>> {
        let mut this = self.project();
        if let Some(ending) = this.ending {
            return Pin::new(ending).poll(cx).map(|()| Ok(None));
        }
        match this.receive.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(Ok(Some(value))),
            Poll::Ready(Err(e)) => end_or_error(e, this.receive.as_ref().waited(), this.ending, cx),
        }
    }
}

/// A failed receive as `recv` reports it: the end of the channel is `Ok(None)`, after a
/// schedule point if the receive did not wait (`ending`).
#[cold]
fn end_or_error<T>(
    e: Error,
    waited: bool,
    ending: &mut Option<CancelShieldedCheckpoint>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<T>>> {
    if !e.is_end_of_channel() {
        return Poll::Ready(Err(e));
    }
    if waited {
        return Poll::Ready(Ok(None));
    }
    let yielding = ending.insert(cancel_shielded_checkpoint());
    // The first poll of a schedule point is always pending.
    let _ = Pin::new(yielding).poll(cx);
    Poll::Pending
}
