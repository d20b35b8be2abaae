//! Running code of other async ecosystems on trio: foreign futures under trio's cancellation,
//! trio's streams behind other libraries' I/O traits, hyper's runtime hooks.
//!
//! - [`cancellable`] runs a future that knows nothing of cancel scopes so that it obeys them
//!   (it is dropped when its task is cancelled). Always available.
//! - `Io` wraps any trio stream for the traits of another ecosystem; with the
//!   **`futures-io`** feature it is futures-io's `AsyncRead` + `AsyncWrite` (async-tungstenite,
//!   async-compression, futures-util's `io` helpers), with the **`hyper`** feature hyper 1.x's
//!   `rt::Read` + `rt::Write`. [`SocketStream`](crate::net::SocketStream) implements the same
//!   traits itself. Either way no buffer is copied and no future is boxed: trio's stream
//!   traits are poll methods ([`poll_receive`](crate::stream::ReceiveStream::poll_receive),
//!   [`poll_send`](crate::stream::SendStream::poll_send), ...)
//!   and the adapters call them directly.
//! - With the **`hyper`** feature: `NurseryExecutor` (hyper's `Executor`, spawning into a
//!   [`Nursery`](crate::Nursery)) and `TrioTimer` (hyper's `Timer`, on the run's clock, so
//!   that hyper's timeouts follow a `MockClock` in tests).
//! - With the **`hyper-client`** feature: `http2_client` / `http1_client`, which run a hyper
//!   client connection for as long as a body that sends requests on it, in a nursery, so that
//!   the connection never outlives its user.
//!
//! # The adapters' semantics
//! - **Reading** fills the caller's buffer straight from the stream's `poll_receive`; a read
//!   of 0 bytes into a non-empty buffer is end-of-file, in both trio and these traits.
//! - **Closing the write side** (futures-io's `poll_close`, hyper's `poll_shutdown`) sends
//!   end-of-file on a half-closeable stream ([`as_half_closeable`](crate::stream::SendStream::as_half_closeable): sockets,
//!   [`StapledStream`](crate::StapledStream)), as tokio's `shutdown` does on a `TcpStream`;
//!   other streams are closed ([`poll_close`](crate::stream::AsyncResource::poll_close)). The stream stays open for
//!   reading until it is dropped or closed.
//! - **Errors** come out as [`std::io::Error`] through `From<trio::Error>`: an `io::Error`
//!   inside stays itself; trio's own errors are the payload (`get_ref`, `into_inner`), with a
//!   kind that says what they mean in I/O terms (`BrokenResourceError` is `BrokenPipe`,
//!   `ClosedResourceError` is `NotConnected`, ...), and `?` in trio code turns them back.
//! - **Cancellation** does not reach a poll method: these traits have no way to say
//!   "cancelled". Run the foreign code that drives them under [`cancellable`].
//!
//! # One task per direction
//! The poll methods do not take the streams' conflict detectors: a foreign caller has one
//! reader and one writer by construction (`&mut self`). Reading through an `Io` while a trio
//! task also receives on the same stream interleaves their data, as two readers of one socket
//! always would.

/// The write methods futures-io's `AsyncWrite` and hyper's `Write` share, forwarded to the
/// [`SendStream`](crate::stream::SendStream) that `$stream` reaches from `$this` (the pinned
/// `self`): `poll_write`, `poll_write_vectored` and `poll_flush`. Each impl adds its own
/// close (`poll_close`, `poll_shutdown`) and, for hyper, `is_write_vectored`.
#[cfg(any(feature = "futures-io", feature = "hyper"))]
macro_rules! forward_writes {
    ($this:ident => $stream:expr) => {
        #[inline]
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let $this = self;
            crate::stream::SendStream::poll_send($stream, cx, buf).map_err(std::io::Error::from)
        }

        #[inline]
        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let $this = self;
            crate::stream::SendStream::poll_send_vectored($stream, cx, bufs)
                .map_err(std::io::Error::from)
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let $this = self;
            crate::stream::SendStream::poll_flush($stream, cx).map_err(std::io::Error::from)
        }
    };
}

mod cancellable;
#[cfg(feature = "hyper-client")]
mod client;
#[cfg(feature = "futures-io")]
mod futures_io;
#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "hyper")]
mod timer;

pub use cancellable::{Cancellable, cancellable};
#[cfg(feature = "hyper-client")]
pub use client::{http1_client, http2_client};
#[cfg(feature = "hyper")]
pub use hyper::NurseryExecutor;
#[cfg(feature = "hyper")]
pub use timer::{TrioSleep, TrioTimer};

#[cfg(any(feature = "futures-io", feature = "hyper"))]
use std::task::{Context, Poll, ready};

#[cfg(any(feature = "futures-io", feature = "hyper"))]
use crate::stream::{ReceiveBuf, ReceiveStream, SendStream};
#[cfg(any(feature = "futures-io", feature = "hyper"))]
use crate::{Error, Result, UsageError};

/// A trio stream behind another ecosystem's I/O traits: futures-io's `AsyncRead` and
/// `AsyncWrite` (feature `futures-io`), hyper's `rt::Read` and `rt::Write` (feature
/// `hyper`). See the [module docs](self) for what each operation does.
///
/// `S` is any [`ReceiveStream`] (for reading) and [`SendStream`] (for writing): a stream by
/// value, or shared (`&S`, `Rc<S>`), since trio's stream methods take `&self`. Two `Io`s over
/// one `Rc<SocketStream>`, one reading and one writing, let two tasks use the directions
/// independently.
///
/// ```
/// # #[cfg(feature = "futures-io")]
/// # fn main() -> trio::Result<()> {
/// use futures_io::{AsyncRead, AsyncWrite};
/// use trio::compat::Io;
///
/// fn needs_futures_io(_: impl AsyncRead + AsyncWrite + Unpin) {}
///
/// trio::run(async {
///     let (left, _right) = trio_test::memory_stream_pair();
///     needs_futures_io(Io::new(left));
///     Ok(())
/// })
/// # }
/// # #[cfg(not(feature = "futures-io"))]
/// # fn main() {}
/// ```
#[cfg(any(feature = "futures-io", feature = "hyper"))]
#[derive(Debug, Clone, Default)]
pub struct Io<S> {
    stream: S,
}

#[cfg(any(feature = "futures-io", feature = "hyper"))]
impl<S> Io<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        Io { stream }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// One receive into `buf` (empty, nothing filled yet): how many bytes came, after checking
/// that the stream filled the buffer it was given (an implementation could swap in another
/// one, and the callers hand the count on as "initialised bytes of *my* buffer").
#[cfg(any(feature = "futures-io", feature = "hyper"))]
#[inline]
fn poll_receive_counted<S: ReceiveStream + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
    buf: &mut ReceiveBuf<'_>,
) -> Poll<Result<usize>> {
    let (start, capacity) = (buf.filled().as_ptr(), buf.capacity());
    ready!(stream.poll_receive(cx, buf))?;
    if buf.filled().as_ptr() != start || buf.capacity() != capacity {
        return Poll::Ready(Err(Error::new(UsageError::new(
            "poll_receive replaced the buffer it was given",
        ))));
    }
    Poll::Ready(Ok(buf.filled().len()))
}

/// A read into an initialised slice (futures-io's `poll_read`): the byte count, 0 at EOF or
/// for an empty `buf`.
#[cfg(feature = "futures-io")]
#[inline]
fn poll_read_slice<S: ReceiveStream + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<std::io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    poll_receive_counted(stream, cx, &mut ReceiveBuf::new(buf)).map_err(std::io::Error::from)
}

/// Closes the writing side: EOF on a half-closeable stream, else a close.
#[cfg(any(feature = "futures-io", feature = "hyper"))]
#[inline]
fn poll_close_write<S: SendStream + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<()>> {
    match stream.as_half_closeable() {
        Some(stream) => stream.poll_send_eof(cx),
        None => stream.poll_close(cx),
    }
    .map_err(std::io::Error::from)
}
