//! Byte streams: Trio's `trio.abc` stream interfaces as Rust traits, and [`StapledStream`].
//!
//! # Two layers
//! The traits' required methods are **poll methods** taking `&self`: [`AsyncResource::poll_close`],
//! [`SendStream::poll_send`], [`ReceiveStream::poll_receive`], [`HalfCloseableStream::poll_send_eof`],
//! [`Listener::poll_accept`], ... They are dyn-compatible, allocate nothing, and are what an
//! adapter to another ecosystem's I/O traits (futures-io `AsyncRead`/`AsyncWrite`, hyper's
//! `rt::Read`/`rt::Write`) maps onto without boxing a future or copying a buffer.
//!
//! Trio's async API sits on top, in extension traits implemented for every stream:
//! [`SendStreamExt::send_all`], [`SendStreamExt::wait_send_all_might_not_block`],
//! [`ReceiveStreamExt::receive_some`], [`ReceiveStreamExt::receive_into`],
//! [`HalfCloseableStreamExt::send_eof`], [`AsyncResourceExt::aclose`] and
//! [`ListenerExt::accept`]. Each returns a named future (no boxing) that follows Trio's rules:
//!
//! - **Checkpoints.** A cancel point first; then the operation is tried once; if it succeeds
//!   at once, a schedule point (cancel-shielded) before returning. Otherwise the future waits,
//!   and on every wake-up checks for cancellation *before* trying again. So a cancelled
//!   `receive_some` has consumed nothing; a cancelled `send_all` may have sent part of its
//!   data (Trio says so too: there is no way to know how much).
//! - **One task per direction.** Two tasks in `send_all` (or `wait_send_all_might_not_block`,
//!   or `send_eof`) on one stream at once, or two in `receive_some`, is a bug; the second gets
//!   [`BusyResourceError`](crate::BusyResourceError). Sending and receiving at the same time
//!   from two tasks is fine, which is why the methods take `&self`: share the stream through
//!   an `Rc` (the traits are implemented for `&S`, `Rc<S>`, `Arc<S>` and `Box<S>`).
//!   The check lives in the Trio layer (the [`ConflictDetector`] a stream returns from
//!   [`SendStream::send_conflict_detector`] / [`ReceiveStream::receive_conflict_detector`]),
//!   not in the poll methods, whose callers (hyper) expect "the last waker wins".
//! - **Closing.** [`AsyncResourceExt::aclose`] always closes, even when it fails or is
//!   cancelled (then forcefully), and closing twice is fine. [`aclose_forcefully`] closes
//!   without waiting for anything.
//!
//! ```
//! use trio::stream::prelude::*;
//! use trio_test::memory_stream_pair;
//!
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let (left, right) = memory_stream_pair();
//!     left.send_all(b"hello").await?;
//!     left.send_eof().await?;
//!     assert_eq!(right.receive_some(1024).await?, b"hello");
//!     assert_eq!(right.receive_some(1024).await?, b""); // EOF
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # Implementing a stream
//! - `poll_send` with a non-empty buffer accepts at least one byte or returns `Pending` or an
//!   error; with an empty buffer it returns `Ok(0)`, or the error a send would get (closed,
//!   broken). `send_all` calls it until everything is accepted, then calls `poll_flush` until
//!   that is ready: a stream that buffers (TLS) pushes its buffer out there.
//! - `poll_receive` fills part of its [`ReceiveBuf`]; filling nothing into a buffer with room
//!   means end-of-file, and only that.
//! - Optionally, `poll_receive_ready` (and `Listener::poll_accept_ready`) answers `Pending`
//!   when a receive is certain to wait. `receive_some` makes its schedule point before it
//!   takes anything (a dropped future then loses nothing); this hint lets a receive that must
//!   wait skip that extra yield. The default, `Ready`, is always correct.
//! - A poll method that returns `Pending` must arrange for `cx`'s waker to be woken when the
//!   operation can make progress **and when the task is cancelled**. Waiting through a
//!   [`ParkingLot`](crate::lowlevel::ParkingLot) or the reactor (`wait_readable`,
//!   `wait_writable`) does both; a waker stored by hand does only the first, unless
//!   [`wake_on_cancel`](crate::lowlevel::wake_on_cancel) is called with it too.
//! - `poll_close` closes for good even if it has to wait (a TLS goodbye): if the task is
//!   cancelled meanwhile, it finishes by closing forcefully
//!   ([`checkpoint_if_cancelled`](crate::lowlevel::checkpoint_if_cancelled) polled in place
//!   tells). Closing a closed resource succeeds.
//! - Return your detectors from `send_conflict_detector` / `receive_conflict_detector` (one per
//!   direction), or the Trio layer cannot report two tasks using one direction. A stream
//!   that can half-close also returns itself from [`SendStream::as_half_closeable`], so
//!   [`StapledStream::send_eof`](HalfCloseableStreamExt::send_eof) half-closes it rather than
//!   closing it.
//! - `trio_test::check_one_way_stream`, `check_two_way_stream` and
//!   `check_half_closeable_stream` check an implementation against Trio's conformance suite.

mod ext;
mod support;

use std::cell::RefCell;
use std::fmt;
use std::io::IoSlice;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::{Error, ErrorGroup, Result};

pub use ext::{
    Accept, Aclose, AsyncResourceExt, HalfCloseableStreamExt, ListenerExt, ReceiveInto,
    ReceiveSome, ReceiveStreamExt, SendAll, SendEof, SendStreamExt, WaitSendAllMightNotBlock,
    aclose_forcefully,
};
pub use support::{ConflictDetector, ConflictGuard, ReceiveBuf};

/// The traits, to bring their methods into scope: `use trio::stream::prelude::*;`.
pub mod prelude {
    pub use super::{
        AsyncResource, AsyncResourceExt, HalfCloseableStream, HalfCloseableStreamExt, Listener,
        ListenerExt, ReceiveStream, ReceiveStreamExt, SendStream, SendStreamExt, Stream,
    };
}

/// A resource that must be closed, and whose close may have to wait (Trio's
/// `trio.abc.AsyncResource`). Close it with [`aclose`](AsyncResourceExt::aclose), or
/// [`aclose_forcefully`].
pub trait AsyncResource {
    /// Closes the resource, possibly waiting to do it gracefully (a TLS goodbye).
    ///
    /// It closes for good whatever happens: an error means the close was not graceful, not
    /// that the resource is still open. If the task is cancelled while this waits, the next
    /// call closes forcefully and returns. Closing a closed resource succeeds at once. Once
    /// closed, other operations on the resource (pending or later) fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError).
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>>;
}

/// The sending half of a byte stream (Trio's `trio.abc.SendStream`). Send with
/// [`send_all`](SendStreamExt::send_all).
pub trait SendStream: AsyncResource {
    /// Accepts some of `buf` to send: `Ready(Ok(n))` with `1 <= n <= buf.len()` when `buf` is
    /// not empty. With an empty `buf` it returns `Ok(0)`, or the error a send would get now
    /// (the stream is closed or broken). `Pending` means nothing was accepted.
    ///
    /// Errors: [`ClosedResourceError`](crate::ClosedResourceError) once this stream was
    /// closed (or sent EOF), [`BrokenResourceError`](crate::BrokenResourceError) when the
    /// peer is gone.
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>>;

    /// As [`poll_send`](Self::poll_send) for the concatenation of `bufs`. The default sends
    /// from the first non-empty slice only; a stream with a gather write (`writev`) overrides
    /// it and [`is_send_vectored`](Self::is_send_vectored).
    fn poll_send_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_send(cx, first)
    }

    /// Whether [`poll_send_vectored`](Self::poll_send_vectored) sends from several slices at
    /// once (hyper asks, to choose between flattening its buffers and a gather write).
    fn is_send_vectored(&self) -> bool {
        false
    }

    /// Pushes out what the stream buffered from earlier `poll_send`s (a TLS record still in
    /// the encoder). [`send_all`](SendStreamExt::send_all) returns only once this is
    /// ready. The default has nothing buffered.
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ready when a send *might* not block (Trio's `wait_send_all_might_not_block`): it may be
    /// ready early, but never late. Errors as [`poll_send`](Self::poll_send).
    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>>;

    /// The detector that makes a second concurrent `send_all`,
    /// `wait_send_all_might_not_block` or `send_eof` fail with
    /// [`BusyResourceError`](crate::BusyResourceError). Every stream trio ships returns one;
    /// `None` (the default) turns the check off.
    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        None
    }

    /// This stream as a [`HalfCloseableStream`], if it is one (Trio's `isinstance` check in
    /// `StapledStream.send_eof`): a half-closeable stream returns `Some(self)`, so that a
    /// [`StapledStream`] sending through it sends EOF instead of
    /// closing it. The default is `None`.
    fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
        None
    }
}

/// The receiving half of a byte stream (Trio's `trio.abc.ReceiveStream`). Receive with
/// [`receive_some`](ReceiveStreamExt::receive_some) or
/// [`receive_into`](ReceiveStreamExt::receive_into).
pub trait ReceiveStream: AsyncResource {
    /// Receives some data into `buf`, after what is filled already. `Ready(Ok(()))` with
    /// nothing added to a buffer that had room means end-of-file, and only that. `Pending`
    /// means nothing was received.
    ///
    /// Errors: [`ClosedResourceError`](crate::ClosedResourceError) once this stream was
    /// closed, [`BrokenResourceError`](crate::BrokenResourceError) when the connection broke.
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>>;

    /// Whether a receive might complete now, without receiving: `Ready(Ok(()))` when it
    /// might (data, end-of-file or an error may be there, or the stream cannot tell: the
    /// default), `Pending` when [`poll_receive`](Self::poll_receive) is certain to return
    /// `Pending`, with `cx`'s waker stored as `poll_receive` would store it. A hint: errors
    /// may be left to `poll_receive`.
    ///
    /// The Trio layer makes its schedule point before it takes anything, so that a dropped
    /// `receive_some` never loses data; a stream that can answer `Pending` lets a receive that
    /// must wait skip that extra trip through the run loop (the wait is its schedule point).
    fn poll_receive_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    /// The detector that makes a second concurrent `receive_some` fail with
    /// [`BusyResourceError`](crate::BusyResourceError). Every stream trio ships returns one;
    /// `None` (the default) turns the check off.
    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        None
    }
}

/// A bidirectional byte stream (Trio's `trio.abc.Stream`): implemented for every type that is
/// both a [`SendStream`] and a [`ReceiveStream`].
pub trait Stream: SendStream + ReceiveStream {}

impl<T: SendStream + ReceiveStream + ?Sized> Stream for T {}

/// A bidirectional stream that can close its sending half alone (Trio's
/// `trio.abc.HalfCloseableStream`), as `shutdown(SHUT_WR)` does on a socket. Send EOF with
/// [`send_eof`](HalfCloseableStreamExt::send_eof).
///
/// Implement [`SendStream::as_half_closeable`] as `Some(self)` too.
pub trait HalfCloseableStream: Stream {
    /// Sends end-of-file: the peer receives the data sent so far, then EOF, and can go on
    /// sending to this side. Later sends fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError); sending EOF again succeeds.
    fn poll_send_eof(&self, cx: &mut Context<'_>) -> Poll<Result<()>>;
}

/// A source of incoming connections (Trio's `trio.abc.Listener`). Accept with
/// [`accept`](ListenerExt::accept).
pub trait Listener: AsyncResource {
    /// What [`poll_accept`](Self::poll_accept) produces: usually a [`Stream`].
    type Stream: AsyncResource;

    /// Accepts a connection. `Pending` means none was taken.
    ///
    /// Errors: [`ClosedResourceError`](crate::ClosedResourceError) once the listener was
    /// closed; others (running out of file descriptors) as they come.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Self::Stream>>;

    /// Whether an accept might complete now, without accepting; as
    /// [`ReceiveStream::poll_receive_ready`]: `Pending` only when
    /// [`poll_accept`](Self::poll_accept) is certain to return `Pending`, with the waker
    /// stored. The default answers `Ready(Ok(()))`.
    fn poll_accept_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    /// The detector that makes a second concurrent `accept` fail with
    /// [`BusyResourceError`](crate::BusyResourceError); `None` (the default) turns the check
    /// off.
    fn accept_conflict_detector(&self) -> Option<&ConflictDetector> {
        None
    }
}

/// Implements the traits for pointer types that deref to the stream (`S` in `$ty`).
macro_rules! forward_impls {
    ($([$($gen:tt)*] $ty:ty;)*) => {$(
        impl<$($gen)* S: AsyncResource + ?Sized> AsyncResource for $ty {
            fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
                (**self).poll_close(cx)
            }
        }

        impl<$($gen)* S: SendStream + ?Sized> SendStream for $ty {
            fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
                (**self).poll_send(cx, buf)
            }
            fn poll_send_vectored(
                &self,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<Result<usize>> {
                (**self).poll_send_vectored(cx, bufs)
            }
            fn is_send_vectored(&self) -> bool {
                (**self).is_send_vectored()
            }
            fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
                (**self).poll_flush(cx)
            }
            fn poll_wait_send_all_might_not_block(
                &self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<()>> {
                (**self).poll_wait_send_all_might_not_block(cx)
            }
            fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
                (**self).send_conflict_detector()
            }
            fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
                (**self).as_half_closeable()
            }
        }

        impl<$($gen)* S: ReceiveStream + ?Sized> ReceiveStream for $ty {
            fn poll_receive(
                &self,
                cx: &mut Context<'_>,
                buf: &mut ReceiveBuf<'_>,
            ) -> Poll<Result<()>> {
                (**self).poll_receive(cx, buf)
            }
            fn poll_receive_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
                (**self).poll_receive_ready(cx)
            }
            fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
                (**self).receive_conflict_detector()
            }
        }

        impl<$($gen)* S: HalfCloseableStream + ?Sized> HalfCloseableStream for $ty {
            fn poll_send_eof(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
                (**self).poll_send_eof(cx)
            }
        }

        impl<$($gen)* S: Listener + ?Sized> Listener for $ty {
            type Stream = S::Stream;
            fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Self::Stream>> {
                (**self).poll_accept(cx)
            }
            fn poll_accept_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
                (**self).poll_accept_ready(cx)
            }
            fn accept_conflict_detector(&self) -> Option<&ConflictDetector> {
                (**self).accept_conflict_detector()
            }
        }
    )*};
}

forward_impls! {
    ['a,] &'a S;
    [] Rc<S>;
    [] Arc<S>;
    [] Box<S>;
}

/// A [`SendStream`] and a [`ReceiveStream`] stapled together into one bidirectional,
/// half-closeable stream (Trio's `trio.StapledStream`).
///
/// Sending goes to the send stream and receiving to the receive stream, each with its own
/// conflict detector. [`send_eof`](HalfCloseableStreamExt::send_eof) sends EOF on the
/// send stream when that is half-closeable ([`SendStream::as_half_closeable`]) and closes it
/// otherwise: either way the peer reads EOF and can still send back.
/// [`aclose`](AsyncResourceExt::aclose) closes both, the send stream first.
///
/// ```
/// use trio::stream::prelude::*;
/// use trio::StapledStream;
/// use trio_test::memory_stream_one_way_pair;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     // A silly way to make a stream that echoes back whatever you send.
///     let (send, receive) = memory_stream_one_way_pair();
///     let echo = StapledStream::new(send, receive);
///     echo.send_all(b"x").await?;
///     assert_eq!(echo.receive_some(10).await?, b"x");
///     Ok(())
/// })
/// # }
/// ```
pub struct StapledStream<S, R> {
    send_stream: S,
    receive_stream: R,
    close: RefCell<CloseState>,
}

/// How far a close got: it closes the send stream, then the receive stream, and reports the
/// first error (both when both fail) at the end.
enum CloseState {
    Open,
    ClosingReceive(Option<Error>),
    Closed,
}

impl<S, R> StapledStream<S, R> {
    /// Staples `send_stream` and `receive_stream` together.
    pub fn new(send_stream: S, receive_stream: R) -> Self {
        StapledStream {
            send_stream,
            receive_stream,
            close: RefCell::new(CloseState::Open),
        }
    }

    /// The stream sending goes to.
    pub fn send_stream(&self) -> &S {
        &self.send_stream
    }

    /// The stream receiving comes from.
    pub fn receive_stream(&self) -> &R {
        &self.receive_stream
    }

    /// The two streams back.
    pub fn into_inner(self) -> (S, R) {
        (self.send_stream, self.receive_stream)
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for StapledStream<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StapledStream")
            .field("send_stream", &self.send_stream)
            .field("receive_stream", &self.receive_stream)
            .finish()
    }
}

impl<S: SendStream, R: ReceiveStream> AsyncResource for StapledStream<S, R> {
    /// Closes the send stream, then the receive stream (even when the first close failed).
    /// When one fails, that is the error; when both fail, an [`ErrorGroup`] holds both.
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            // Taken out while the inner streams run, so nothing is borrowed if they call back.
            let state = std::mem::replace(&mut *self.close.borrow_mut(), CloseState::Closed);
            let next = match state {
                CloseState::Open => match self.send_stream.poll_close(cx) {
                    Poll::Pending => Err(CloseState::Open),
                    Poll::Ready(result) => Ok(CloseState::ClosingReceive(result.err())),
                },
                CloseState::ClosingReceive(send_error) => {
                    match self.receive_stream.poll_close(cx) {
                        Poll::Pending => Err(CloseState::ClosingReceive(send_error)),
                        Poll::Ready(result) => {
                            return Poll::Ready(match (send_error, result) {
                                (None, result) => result,
                                (Some(e), Ok(())) => Err(e),
                                (Some(e1), Err(e2)) => Err(Error::new(ErrorGroup::with_origins(
                                    vec![e1, e2],
                                    vec![
                                        "closing the send stream".to_string(),
                                        "closing the receive stream".to_string(),
                                    ],
                                ))),
                            });
                        }
                    }
                }
                CloseState::Closed => return Poll::Ready(Ok(())),
            };
            match next {
                Ok(progressed) => *self.close.borrow_mut() = progressed,
                Err(waiting) => {
                    *self.close.borrow_mut() = waiting;
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: SendStream, R: ReceiveStream> SendStream for StapledStream<S, R> {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        self.send_stream.poll_send(cx, buf)
    }

    fn poll_send_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        self.send_stream.poll_send_vectored(cx, bufs)
    }

    fn is_send_vectored(&self) -> bool {
        self.send_stream.is_send_vectored()
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.send_stream.poll_flush(cx)
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.send_stream.poll_wait_send_all_might_not_block(cx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.send_stream.send_conflict_detector()
    }

    fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
        Some(self)
    }
}

impl<S: SendStream, R: ReceiveStream> ReceiveStream for StapledStream<S, R> {
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        self.receive_stream.poll_receive(cx, buf)
    }

    fn poll_receive_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.receive_stream.poll_receive_ready(cx)
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.receive_stream.receive_conflict_detector()
    }
}

impl<S: SendStream, R: ReceiveStream> HalfCloseableStream for StapledStream<S, R> {
    /// Sends EOF on the send stream if it is half-closeable, and closes it otherwise.
    fn poll_send_eof(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.send_stream.as_half_closeable() {
            Some(stream) => stream.poll_send_eof(cx),
            None => self.send_stream.poll_close(cx),
        }
    }
}
