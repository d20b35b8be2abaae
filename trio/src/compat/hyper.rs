//! hyper 1.x on trio (feature `hyper`): `rt::Read` / `rt::Write` for [`Io`] and
//! [`SocketStream`], and [`NurseryExecutor`]. The timer is in `timer.rs`.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::rt::{Executor, Read, ReadBufCursor, Write};

use super::{Io, cancellable, poll_close_write, poll_receive_counted};
use crate::Nursery;
use crate::net::SocketStream;
use crate::stream::{ReceiveBuf, ReceiveStream, SendStream};

/// A read into hyper's cursor, which may be uninitialised memory: the stream writes into it
/// directly (a socket's `recv`), with no zero-fill and no copy.
#[inline]
fn poll_read_cursor<S: ReceiveStream + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
    mut cursor: ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    let n = {
        // SAFETY: hyper requires that no uninitialised byte is written into this memory.
        // `ReceiveBuf` never writes one: it copies initialised data in (`put_slice`), zeroes
        // (`initialize_unfilled`), or hands the raw memory out only through `unfilled_mut`,
        // whose callers promise the same.
        let unfilled = unsafe { cursor.as_mut() };
        if unfilled.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let mut buf = ReceiveBuf::uninit(unfilled);
        ready!(poll_receive_counted(stream, cx, &mut buf)).map_err(io::Error::from)?
    };
    // SAFETY: the stream filled `n` bytes at the start of the cursor's unfilled part:
    // `ReceiveBuf` counts only initialised bytes as filled, and `poll_receive_counted`
    // checked that it still is the cursor's memory.
    unsafe { cursor.advance(n) };
    Poll::Ready(Ok(()))
}

/// Reads with the stream's `poll_receive`, straight into hyper's buffer.
impl<S: ReceiveStream> Read for Io<S> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_cursor(&self.stream, cx, buf)
    }
}

/// Writes with the stream's `poll_send`, and with `poll_send_vectored` when the stream has a
/// gather write ([`SendStream::is_send_vectored`]: sockets do); `poll_shutdown` sends EOF on a
/// half-closeable stream and closes any other.
impl<S: SendStream> Write for Io<S> {
    forward_writes!(this => &this.stream);

    fn is_write_vectored(&self) -> bool {
        self.stream.is_send_vectored()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close_write(&self.stream, cx)
    }
}

/// Reads as [`Io`] does: `recv` straight into hyper's buffer.
impl Read for SocketStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_cursor(&*self, cx, buf)
    }
}

/// Writes as [`Io`] does (`writev` for hyper's vectored writes); `poll_shutdown` is
/// `shutdown(SHUT_WR)`.
impl Write for SocketStream {
    forward_writes!(this => &*this);

    fn is_write_vectored(&self) -> bool {
        SendStream::is_send_vectored(self)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close_write(&*self, cx)
    }
}

/// hyper's [`Executor`], bound to a [`Nursery`]: each future hyper hands over (an HTTP/2
/// server's per-stream task, an HTTP/2 client's connection task) becomes a child task of the
/// nursery, run under [`cancellable`], so that cancelling the nursery's scope (or any scope
/// around it) drops it and the nursery waits for all of them before it closes. The futures
/// need not be `Send`.
///
/// Give it to hyper's HTTP/2 builders: with one nursery per connection, an HTTP/2 server's
/// stream tasks end with their connection:
///
/// ```text
/// trio::open_nursery(|nursery| async move {
///     let http2 = hyper::server::conn::http2::Builder::new(NurseryExecutor::new(nursery));
///     let connection = http2.serve_connection(stream, service);
///     cancellable(connection).await?.map_err(..)
/// })
/// ```
///
/// (tests/compat_hyper.rs of the workspace runs an HTTP/2 client and server this way.) What
/// hyper does with it, seen directly:
///
/// ```
/// use hyper::rt::Executor;
/// use trio::compat::NurseryExecutor;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     trio::open_nursery(|nursery| async move {
///         let executor = NurseryExecutor::new(nursery.clone());
///         // A future that knows nothing of trio (one of hyper's), in a task of the nursery:
///         executor.execute(std::future::pending::<()>());
///         assert_eq!(nursery.child_tasks().len(), 1);
///         // Cancelling the nursery drops it; the nursery then closes.
///         nursery.cancel_scope().cancel();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
///
/// `execute` cannot fail, and hyper forgets the future it hands over. If the nursery is
/// closed already (its `open_nursery` call has returned), the future is dropped, which
/// ends what it was for (an HTTP/2 stream is reset); a debug event says so. A spawned
/// future's output is `()`: its errors are hyper's to report (on the connection or the
/// response); a panic in it goes to the nursery as any child's.
#[derive(Clone, Debug)]
pub struct NurseryExecutor {
    nursery: Nursery,
}

impl NurseryExecutor {
    /// An executor that starts its tasks in `nursery`.
    pub fn new(nursery: Nursery) -> Self {
        NurseryExecutor { nursery }
    }

    /// The nursery tasks start in.
    pub fn nursery(&self) -> &Nursery {
        &self.nursery
    }
}

impl<F> Executor<F> for NurseryExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        let task = async move { cancellable(future).await.map(drop) };
        if let Err(e) = self
            .nursery
            .start_soon_named(Cow::Borrowed(short_type_name::<F>()), task)
        {
            tracing::debug!(
                target: "trio::compat",
                error = %e,
                "hyper's executor could not start a task; its future was dropped"
            );
        }
    }
}

/// The last path segment of `F`'s type name, without generics (`H2Stream` for
/// `hyper::proto::h2::server::H2Stream<..>`): a task name for dumps, borrowed from the
/// `'static` type name.
fn short_type_name<F>() -> &'static str {
    let full = std::any::type_name::<F>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}
