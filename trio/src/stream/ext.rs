//! Trio's async stream API on top of the poll traits: extension traits implemented for every
//! stream, and the named futures they return.
//!
//! Every operation but `aclose` runs the same state machine ([`Op`]), Trio's
//! `_nonblocking_helper` (`trio/_socket.py`) as the socket operations run it (`socket/ops.rs`):
//! take the direction's conflict detector; a cancel point; try once; on immediate success a
//! cancel-shielded schedule point; otherwise wait, and on each wake-up check for cancellation
//! before trying again. Operations that take something make their schedule point first.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{
    AsyncResource, ConflictDetector, ConflictGuard, HalfCloseableStream, Listener, ReceiveBuf,
    ReceiveStream, SendStream,
};
use crate::lowlevel::{Checkpoint, checkpoint};
use crate::socket::{Nonblocking, Phase, polled_after_completion};
use crate::{BrokenResourceError, CancelScope, Error, Result, UsageError};

/// The state machine every Trio-layer stream operation shares (see the module docs), its
/// claim the direction's conflict detector.
type Op<'a, T> = Nonblocking<T, ConflictGuard<'a>>;

/// The claim of an operation: its stream's conflict detector, if it has one. Inlined into
/// the futures' polls, which are built in the crate of the stream.
#[inline]
fn enter(detector: Option<&ConflictDetector>) -> Result<Option<ConflictGuard<'_>>> {
    detector.map(ConflictDetector::enter).transpose()
}

/// The probe of an operation that takes nothing (and so never makes the schedule point
/// first).
fn might_be_ready(_: &mut Context<'_>) -> Poll<Result<()>> {
    Poll::Ready(Ok(()))
}

/// `Debug` for the futures: where the operation is (their stream need not be `Debug`). A
/// future whose type needs a bound on its stream names it (`Accept: Listener`).
macro_rules! debug_futures {
    ($($name:ident $(: $bound:path)?),*) => {$(
        impl<S: ?Sized $(+ $bound)?> fmt::Debug for $name<'_, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("phase", &self.op.phase())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

debug_futures!(
    SendAll,
    WaitSendAllMightNotBlock,
    SendEof,
    ReceiveSome,
    ReceiveInto,
    Accept: Listener
);

impl<R: ?Sized> fmt::Debug for Aclose<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aclose")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Trio's `AsyncResource.aclose`, for every [`AsyncResource`].
pub trait AsyncResourceExt: AsyncResource {
    /// Closes the resource (Trio's `aclose`), waiting for a graceful close if it needs one.
    ///
    /// It closes for good whatever happens: an error means the close was not graceful.
    /// Closing a closed resource succeeds. After it, other operations on the resource fail
    /// with [`ClosedResourceError`](crate::ClosedResourceError).
    ///
    /// # Checkpoint
    /// Yes, after closing: a schedule point (when closing did not wait), then a cancel point.
    /// In a cancelled scope it still closes (forcefully) and then returns `Err(Cancelled)`.
    ///
    /// # Cancel safety
    /// The resource is closed once the future has returned, even with `Err(Cancelled)`.
    /// Dropped before that, the close may be unfinished: call `aclose` again (or
    /// [`aclose_forcefully`]).
    fn aclose(&self) -> Aclose<'_, Self> {
        Aclose {
            resource: self,
            phase: Phase::Start,
            checkpoint: checkpoint(),
        }
    }
}

impl<T: AsyncResource + ?Sized> AsyncResourceExt for T {}

/// The future of [`AsyncResourceExt::aclose`].
#[must_use = "futures do nothing unless awaited"]
pub struct Aclose<'a, R: ?Sized> {
    resource: &'a R,
    phase: Phase,
    /// Once closed: the checkpoint (`Phase::Yielding`).
    checkpoint: Checkpoint,
}

impl<R: AsyncResource + ?Sized> Future for Aclose<'_, R> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        loop {
            match this.phase {
                // Close first, whatever the cancel status: `aclose` always closes.
                Phase::Start | Phase::Waiting => match this.resource.poll_close(cx) {
                    Poll::Pending => {
                        this.phase = Phase::Waiting;
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => {
                        this.phase = Phase::Done;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(())) => this.phase = Phase::Yielding,
                },
                Phase::Yielding => {
                    let checked = ready!(Pin::new(&mut this.checkpoint).poll(cx));
                    this.phase = Phase::Done;
                    return Poll::Ready(checked);
                }
                Phase::Done | Phase::YieldingFirst => {
                    return Poll::Ready(Err(polled_after_completion("aclose")));
                }
            }
        }
    }
}

/// Closes `resource` at once, without waiting for a graceful close (Trio's
/// `aclose_forcefully`): its [`aclose`](AsyncResourceExt::aclose) runs in a scope cancelled
/// from the start. For cleanup paths that must not block.
///
/// # Checkpoint
/// Yes (the close's own checkpoint; a cancellation from outside still surfaces).
///
/// # Cancel safety
/// The resource is closed once this returns. Dropped before that, the close may be
/// unfinished.
pub async fn aclose_forcefully<R: AsyncResource + ?Sized>(resource: &R) -> Result<()> {
    let scope = CancelScope::new();
    scope.cancel_with_reason("cancelled during aclose_forcefully");
    scope.run(resource.aclose()).await.map(|_| ())
}

/// Trio's `SendStream` methods, for every [`SendStream`].
pub trait SendStreamExt: SendStream {
    /// Sends all of `data`, waiting as needed (Trio's `send_all`), then flushes
    /// ([`SendStream::poll_flush`]). An empty `data` sends nothing but still fails on a
    /// closed stream.
    ///
    /// Errors: [`BusyResourceError`](crate::BusyResourceError) if another task is in
    /// `send_all`, `wait_send_all_might_not_block` or `send_eof` on this stream;
    /// [`ClosedResourceError`](crate::ClosedResourceError) if it was closed (also by another
    /// task meanwhile); [`BrokenResourceError`] if the peer is gone.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it did not have to wait, and a cancel
    /// point after each wait before sending more.
    ///
    /// # Cancel safety
    /// Not cancel safe, as in Trio: cancelled (or failed, or dropped) after it started, some,
    /// all or none of `data` may have been sent, and there is no way to know how much.
    /// Cancelled at its first cancel point, nothing was sent.
    fn send_all<'a>(&'a self, data: &'a [u8]) -> SendAll<'a, Self> {
        SendAll {
            stream: self,
            data,
            sent: 0,
            flushing: false,
            op: Op::new(),
        }
    }

    /// Waits until a [`send_all`](Self::send_all) *might* not block (Trio's
    /// `wait_send_all_might_not_block`): it may return early, never late. For protocols that
    /// choose what to send at the last moment.
    ///
    /// Errors: as [`send_all`](Self::send_all).
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it did not have to wait.
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    fn wait_send_all_might_not_block(&self) -> WaitSendAllMightNotBlock<'_, Self> {
        WaitSendAllMightNotBlock {
            stream: self,
            op: Op::new(),
        }
    }
}

impl<T: SendStream + ?Sized> SendStreamExt for T {}

/// The future of [`SendStreamExt::send_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendAll<'a, S: ?Sized> {
    stream: &'a S,
    data: &'a [u8],
    sent: usize,
    flushing: bool,
    op: Op<'a, ()>,
}

impl<S: SendStream + ?Sized> Future for SendAll<'_, S> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let stream = this.stream;
        let (data, sent, flushing) = (this.data, &mut this.sent, &mut this.flushing);
        this.op.poll(
            cx,
            "send_all",
            || enter(stream.send_conflict_detector()),
            might_be_ready,
            |cx| {
                // An empty `data` still makes one call, which reports a closed stream.
                while !*flushing {
                    let rest = &data[*sent..];
                    let n = ready!(stream.poll_send(cx, rest))?;
                    if n > rest.len() {
                        return Poll::Ready(Err(Error::new(UsageError::new(format!(
                            "poll_send reported {n} bytes sent from a buffer of {}",
                            rest.len()
                        )))));
                    }
                    if n == 0 && !rest.is_empty() {
                        return Poll::Ready(Err(Error::new(BrokenResourceError::new(
                            "the stream accepted no bytes of a non-empty buffer",
                        ))));
                    }
                    *sent += n;
                    *flushing = *sent == data.len();
                }
                stream.poll_flush(cx)
            },
        )
    }
}

/// The future of [`SendStreamExt::wait_send_all_might_not_block`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitSendAllMightNotBlock<'a, S: ?Sized> {
    stream: &'a S,
    op: Op<'a, ()>,
}

impl<S: SendStream + ?Sized> Future for WaitSendAllMightNotBlock<'_, S> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let stream = this.stream;
        this.op.poll(
            cx,
            "wait_send_all_might_not_block",
            || enter(stream.send_conflict_detector()),
            might_be_ready,
            |cx| stream.poll_wait_send_all_might_not_block(cx),
        )
    }
}

/// Trio's `HalfCloseableStream.send_eof`, for every [`HalfCloseableStream`].
pub trait HalfCloseableStreamExt: HalfCloseableStream {
    /// Sends end-of-file (Trio's `send_eof`): the peer receives what was sent, then EOF, and
    /// can still send to this side. Later sends fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError); sending EOF again succeeds.
    ///
    /// Errors: [`BusyResourceError`](crate::BusyResourceError) if another task is in
    /// `send_all`, `wait_send_all_might_not_block` or `send_eof` on this stream; a closed or
    /// broken stream's errors.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it did not have to wait.
    ///
    /// # Cancel safety
    /// Cancelled at its cancel point, nothing happened; cancelled while waiting, the EOF may or
    /// may not have been sent (call it again: it is idempotent).
    fn send_eof(&self) -> SendEof<'_, Self> {
        SendEof {
            stream: self,
            op: Op::new(),
        }
    }
}

impl<T: HalfCloseableStream + ?Sized> HalfCloseableStreamExt for T {}

/// The future of [`HalfCloseableStreamExt::send_eof`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendEof<'a, S: ?Sized> {
    stream: &'a S,
    op: Op<'a, ()>,
}

impl<S: HalfCloseableStream + ?Sized> Future for SendEof<'_, S> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let stream = this.stream;
        this.op.poll(
            cx,
            "send_eof",
            || enter(stream.send_conflict_detector()),
            might_be_ready,
            |cx| stream.poll_send_eof(cx),
        )
    }
}

/// Trio's `ReceiveStream` methods, for every [`ReceiveStream`].
pub trait ReceiveStreamExt: ReceiveStream {
    /// Waits for data and returns some of it, at most `max_bytes` (Trio's `receive_some`).
    /// An empty result means end-of-file, and only that. `max_bytes` 0 is a
    /// [`UsageError`].
    ///
    /// Errors: [`BusyResourceError`](crate::BusyResourceError) if another task is receiving on
    /// this stream; [`ClosedResourceError`](crate::ClosedResourceError) if it was closed (also
    /// by another task meanwhile); [`BrokenResourceError`] if the connection broke.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, then a schedule point before the first attempt (so that a
    /// success returns at once, holding nothing across a yield), and a cancel point after
    /// each wait before receiving.
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it has received nothing (no data is
    /// lost; the next receive gets it).
    fn receive_some(&self, max_bytes: usize) -> ReceiveSome<'_, Self> {
        ReceiveSome {
            stream: self,
            max_bytes,
            buf: Vec::new(),
            op: Op::taking(),
        }
    }

    /// Waits for data and writes some of it to the front of `buf`; returns how many bytes.
    /// 0 means end-of-file, and only that. An empty `buf` is a [`UsageError`].
    ///
    /// Errors: as [`receive_some`](Self::receive_some).
    ///
    /// # Checkpoint
    /// As [`receive_some`](Self::receive_some).
    ///
    /// # Cancel safety
    /// As [`receive_some`](Self::receive_some): cancelled, it received nothing.
    fn receive_into<'a>(&'a self, buf: &'a mut [u8]) -> ReceiveInto<'a, Self> {
        ReceiveInto {
            stream: self,
            buf,
            op: Op::taking(),
        }
    }
}

impl<T: ReceiveStream + ?Sized> ReceiveStreamExt for T {}

/// Polls `stream` into `buf` once; the number of bytes it received, checking that the buffer
/// it filled is the one it was given.
fn poll_receive_into<S: ReceiveStream + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
    mut buf: ReceiveBuf<'_>,
) -> Poll<Result<usize>> {
    let (start, capacity) = (buf.filled().as_ptr(), buf.capacity());
    ready!(stream.poll_receive(cx, &mut buf))?;
    if buf.filled().as_ptr() != start || buf.capacity() != capacity {
        return Poll::Ready(Err(Error::new(UsageError::new(
            "poll_receive replaced the buffer it was given",
        ))));
    }
    Poll::Ready(Ok(buf.filled().len()))
}

fn empty_buffer(what: &str) -> Error {
    Error::new(UsageError::new(format!(
        "{what}: the buffer must hold at least one byte (0 would be indistinguishable from EOF)"
    )))
}

/// The future of [`ReceiveStreamExt::receive_some`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReceiveSome<'a, S: ?Sized> {
    stream: &'a S,
    max_bytes: usize,
    buf: Vec<u8>,
    op: Op<'a, Vec<u8>>,
}

impl<S: ReceiveStream + ?Sized> Future for ReceiveSome<'_, S> {
    type Output = Result<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>>> {
        let this = self.get_mut();
        let (stream, max_bytes, buf) = (this.stream, this.max_bytes, &mut this.buf);
        this.op.poll(
            cx,
            "receive_some",
            || enter(stream.receive_conflict_detector()),
            // A bad size is reported after the schedule point, not after a wait.
            |cx| match max_bytes {
                0 => Poll::Ready(Ok(())),
                _ => stream.poll_receive_ready(cx),
            },
            |cx| {
                if max_bytes == 0 {
                    return Poll::Ready(Err(empty_buffer("receive_some(0)")));
                }
                if buf.try_reserve_exact(max_bytes).is_err() {
                    return Poll::Ready(Err(Error::new(UsageError::new(format!(
                        "receive_some({max_bytes}): cannot allocate a buffer that large"
                    )))));
                }
                let spare = &mut buf.spare_capacity_mut()[..max_bytes];
                let n = ready!(poll_receive_into(stream, cx, ReceiveBuf::uninit(spare)))?;
                // SAFETY: `ReceiveBuf` only counts initialised bytes as filled, and
                // `poll_receive_into` checked that the `n` filled bytes are the first `n`
                // bytes of this vector's spare capacity.
                unsafe { buf.set_len(n) };
                Poll::Ready(Ok(std::mem::take(buf)))
            },
        )
    }
}

/// The future of [`ReceiveStreamExt::receive_into`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReceiveInto<'a, S: ?Sized> {
    stream: &'a S,
    buf: &'a mut [u8],
    op: Op<'a, usize>,
}

impl<S: ReceiveStream + ?Sized> Future for ReceiveInto<'_, S> {
    type Output = Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<usize>> {
        let this = self.get_mut();
        let (stream, buf) = (this.stream, &mut *this.buf);
        // A bad size is reported after the schedule point, not after a wait.
        let empty = buf.is_empty();
        this.op.poll(
            cx,
            "receive_into",
            || enter(stream.receive_conflict_detector()),
            |cx| match empty {
                true => Poll::Ready(Ok(())),
                false => stream.poll_receive_ready(cx),
            },
            |cx| {
                if buf.is_empty() {
                    return Poll::Ready(Err(empty_buffer("receive_into")));
                }
                poll_receive_into(stream, cx, ReceiveBuf::new(buf))
            },
        )
    }
}

/// Trio's `Listener.accept`, for every [`Listener`].
pub trait ListenerExt: Listener {
    /// Waits for an incoming connection and returns it (Trio's `accept`).
    ///
    /// Errors: [`BusyResourceError`](crate::BusyResourceError) if another task is accepting
    /// (when the listener has a detector); [`ClosedResourceError`](crate::ClosedResourceError)
    /// if it was closed; others (out of file descriptors) as the listener reports them.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, then a schedule point before the first attempt (a
    /// connection taken is returned at once, never held across a yield).
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it accepted nothing.
    fn accept(&self) -> Accept<'_, Self> {
        Accept {
            listener: self,
            op: Op::taking(),
        }
    }
}

impl<T: Listener + ?Sized> ListenerExt for T {}

/// The future of [`ListenerExt::accept`].
#[must_use = "futures do nothing unless awaited"]
pub struct Accept<'a, L: Listener + ?Sized> {
    listener: &'a L,
    op: Op<'a, L::Stream>,
}

// Nothing in it is ever pinned (the accepted stream is moved out), so it is `Unpin` whatever
// the stream type is.
impl<L: Listener + ?Sized> Unpin for Accept<'_, L> {}

impl<L: Listener + ?Sized> Future for Accept<'_, L> {
    type Output = Result<L::Stream>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<L::Stream>> {
        let this = self.get_mut();
        let listener = this.listener;
        this.op.poll(
            cx,
            "accept",
            || enter(listener.accept_conflict_detector()),
            |cx| listener.poll_accept_ready(cx),
            |cx| listener.poll_accept(cx),
        )
    }
}
