//! [`SocketStream`]: a connected stream socket as a [`HalfCloseableStream`].

use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::task::{Context, Poll};

use crate::socket::{Socket, Type};
use crate::stream::{
    AsyncResource, ConflictDetector, HalfCloseableStream, ReceiveBuf, ReceiveStream, SendStream,
};
use crate::{BrokenResourceError, ClosedResourceError, Error, Result, UsageError};

/// The `TCP_NOTSENT_LOWAT` a TCP [`SocketStream`] sets (Trio's choice, 16 KiB).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 1 << 14;

/// How much [`SocketStream`]'s `receive_some` callers usually ask for (Trio's
/// `DEFAULT_RECEIVE_SIZE`): 64 KiB.
pub const DEFAULT_RECEIVE_SIZE: usize = 65536;

/// A connected stream socket (TCP or Unix) as Trio's `trio.SocketStream`: a
/// [`HalfCloseableStream`] whose methods come from [`trio::stream`](crate::stream)'s traits
/// (`send_all`, `receive_some`, `send_eof`, `aclose`, ...).
///
/// On a TCP socket it turns `TCP_NODELAY` on (as Trio does: a stream's `send_all` is a whole
/// message, not a byte to batch) and, on Linux, sets `TCP_NOTSENT_LOWAT` to 16 KiB (Trio's
/// default: the socket reports writable only when little unsent data is queued, so
/// `wait_send_all_might_not_block` and a blocked `send_all` wake when sending is worth it).
/// Change either through [`socket`](Self::socket)`().socket2()`. Errors of the socket come
/// out as the stream interface's: [`ClosedResourceError`] once it was closed (or, for
/// sending, after `send_eof`), [`BrokenResourceError`] for any other failure (a reset, a
/// peer gone), with the system error in its message.
///
/// It holds the socket and two conflict detectors, plain data: it is `Send`.
///
/// ```
/// use trio::net::{SocketStream, open_tcp_listeners, open_tcp_stream};
/// use trio::stream::prelude::*;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
///     let port = listeners[0].local_addr()?.port();
///     let client = open_tcp_stream("127.0.0.1", port).await?;
///     let server: SocketStream = listeners[0].accept().await?;
///     client.send_all(b"hello").await?;
///     client.send_eof().await?;
///     assert_eq!(server.receive_some(100).await?, b"hello");
///     assert_eq!(server.receive_some(100).await?, b""); // end-of-file
///     Ok(())
/// })
/// # }
/// ```
pub struct SocketStream {
    socket: Socket,
    send_detector: ConflictDetector,
    receive_detector: ConflictDetector,
}

impl fmt::Debug for SocketStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("socket", &self.socket)
            .finish()
    }
}

/// The stream interface's error for a socket error (Trio's
/// `_translate_socket_errors_to_stream_errors`).
pub(crate) fn stream_error(e: Error) -> Error {
    if e.is::<ClosedResourceError>() || e.is_cancelled() || e.is::<UsageError>() {
        return e;
    }
    match e.downcast::<io::Error>() {
        Ok(io) if io.raw_os_error() == Some(libc::EBADF) => {
            Error::new(ClosedResourceError::new("the socket was already closed"))
        }
        Ok(io) => Error::new(BrokenResourceError::new(format!(
            "socket connection broken: {io}"
        ))),
        Err(e) => e,
    }
}

impl SocketStream {
    /// Wraps a connected stream socket; turns `TCP_NODELAY` on and sets `TCP_NOTSENT_LOWAT`
    /// (ignoring sockets that have no such options, as Unix sockets). Fails with a
    /// [`UsageError`] if it is not a stream socket. Not a checkpoint.
    pub fn new(socket: Socket) -> Result<SocketStream> {
        if socket.socket_type()? != Type::STREAM {
            return Err(Error::new(UsageError::new(
                "SocketStream requires a SOCK_STREAM socket",
            )));
        }
        // Not every stream socket has the option (Unix sockets do not): Trio ignores that.
        let _ = socket.set_nodelay(true);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(sys) = socket.socket2() {
            let _ = sys.set_tcp_notsent_lowat(NOTSENT_LOWAT);
        }
        Ok(SocketStream {
            socket,
            send_detector: ConflictDetector::new(
                "another task is currently sending data on this SocketStream",
            ),
            receive_detector: ConflictDetector::new(
                "another task is currently receiving data on this SocketStream",
            ),
        })
    }

    /// The socket (Trio's `SocketStream.socket`): for options, addresses, or the low-level
    /// API. Do not receive or send on it while the stream's methods run.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The socket back.
    pub fn into_socket(self) -> Socket {
        self.socket
    }

    /// The local address, as an IP socket address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Result<Option<std::net::SocketAddr>> {
        Ok(self.socket.local_addr()?.as_socket())
    }

    /// The peer's address, as an IP socket address (`None` for a Unix socket).
    pub fn peer_addr(&self) -> Result<Option<std::net::SocketAddr>> {
        Ok(self.socket.peer_addr()?.as_socket())
    }

    /// Sets `TCP_NODELAY`. Not a checkpoint.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        self.socket.set_nodelay(nodelay)
    }

    fn check_send(&self) -> Result<()> {
        if self.socket.did_shutdown_write() {
            return Err(Error::new(ClosedResourceError::new(
                "can't send data after sending EOF",
            )));
        }
        if self.socket.is_closed() {
            return Err(Error::new(ClosedResourceError::new(
                "the socket was already closed",
            )));
        }
        Ok(())
    }
}

impl AsyncResource for SocketStream {
    /// Closes the socket at once (nothing to wait for).
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.socket.close();
        Poll::Ready(Ok(()))
    }
}

impl SendStream for SocketStream {
    #[inline]
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if buf.is_empty() || self.socket.did_shutdown_write() {
            return Poll::Ready(self.check_send().map(|()| 0));
        }
        self.socket.poll_send(cx, buf).map_err(stream_error)
    }

    fn poll_send_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) || self.socket.did_shutdown_write() {
            return Poll::Ready(self.check_send().map(|()| 0));
        }
        self.socket
            .poll_send_vectored(cx, bufs)
            .map_err(stream_error)
    }

    fn is_send_vectored(&self) -> bool {
        !self.socket.is_custom()
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.check_send()?;
        self.socket.poll_write_ready(cx).map_err(stream_error)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.send_detector)
    }

    fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
        Some(self)
    }
}

impl ReceiveStream for SocketStream {
    #[inline]
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        // SAFETY: the receive writes only initialised bytes, and declares exactly those.
        let unfilled = unsafe { buf.unfilled_mut() };
        match self.socket.poll_recv(cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                // SAFETY: `recv` wrote `n` bytes at the start of the unfilled part.
                unsafe { buf.assume_init(n) };
                Poll::Ready(buf.advance(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(stream_error(e))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `Pending` when the reactor says the socket has nothing to read (no system call).
    fn poll_receive_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.socket.poll_read_hint(cx).map_err(stream_error)
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.receive_detector)
    }
}

impl HalfCloseableStream for SocketStream {
    /// Shuts the sending half down (`shutdown(SHUT_WR)`); idempotent.
    fn poll_send_eof(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.socket.did_shutdown_write() {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(self.socket.shutdown(Shutdown::Write).map_err(stream_error))
    }
}

impl TryFrom<Socket> for SocketStream {
    type Error = Error;

    fn try_from(socket: Socket) -> Result<SocketStream> {
        SocketStream::new(socket)
    }
}
