//! [`SocketListener`]: a listening stream socket as a [`Listener`] of [`SocketStream`]s, and
//! which accept errors it hides (Trio's literature review of `accept(2)` errors).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use super::SocketStream;
use crate::socket::{Socket, Type};
use crate::stream::{AsyncResource, ConflictDetector, Listener};
use crate::{ClosedResourceError, Error, Result, UsageError};

/// Errors of `accept` that concern the one connection being accepted, not the listener
/// (Trio's `_ignorable_accept_errnos`): a firewall refusal, a connection reset or aborted
/// before it was accepted, and the other errors Linux passes on from a connection that broke
/// early. The listener accepts the next connection instead.
const IGNORABLE_ACCEPT_ERRNOS: &[i32] = &[
    libc::EPERM,
    libc::ECONNABORTED,
    libc::EPROTO,
    libc::ENETDOWN,
    libc::ENOPROTOOPT,
    libc::EHOSTDOWN,
    #[cfg(target_os = "linux")]
    libc::ENONET,
    libc::EHOSTUNREACH,
    libc::EOPNOTSUPP,
    libc::ENETUNREACH,
    #[cfg(target_os = "linux")]
    libc::ENOSR,
    libc::ESOCKTNOSUPPORT,
    libc::EPROTONOSUPPORT,
    libc::ETIMEDOUT,
    libc::ECONNRESET,
];

/// Errors of `accept` that mean the system is out of a resource (Trio's
/// `ACCEPT_CAPACITY_ERRNOS`): out of file descriptors (process or system) or kernel memory.
/// [`serve_listeners`](super::serve_listeners) logs them and retries after 100 ms.
pub(crate) const ACCEPT_CAPACITY_ERRNOS: &[i32] =
    &[libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOBUFS];

/// The errno of an error from a socket, if it is a system error.
pub(crate) fn errno_of(e: &Error) -> Option<i32> {
    e.downcast_ref::<io::Error>()
        .and_then(io::Error::raw_os_error)
}

/// A listening stream socket (TCP or Unix) as Trio's `trio.SocketListener`: a [`Listener`]
/// whose [`accept`](crate::stream::ListenerExt::accept) returns [`SocketStream`]s.
///
/// `accept` hides the errors that concern one connection only (reset before it was accepted,
/// refused by a firewall, ...) and accepts the next one; it returns the others, among them
/// running out of file descriptors (`EMFILE`), which
/// [`serve_listeners`](super::serve_listeners) handles. After [`aclose`](
/// crate::stream::AsyncResourceExt::aclose) (or drop), `accept` fails with
/// [`ClosedResourceError`].
pub struct SocketListener {
    socket: Socket,
    detector: ConflictDetector,
}

impl fmt::Debug for SocketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketListener")
            .field("socket", &self.socket)
            .finish()
    }
}

impl SocketListener {
    /// Wraps a listening stream socket (bound, and `listen` called). Fails with a
    /// [`UsageError`] for a socket that is not a stream, or (where the system tells) not
    /// listening. Not a checkpoint.
    pub fn new(socket: Socket) -> Result<SocketListener> {
        if socket.socket_type()? != Type::STREAM {
            return Err(Error::new(UsageError::new(
                "SocketListener requires a SOCK_STREAM socket",
            )));
        }
        #[cfg(target_os = "linux")]
        if let Ok(sys) = socket.socket2() {
            if let Ok(false) = sys.is_listener() {
                return Err(Error::new(UsageError::new(
                    "SocketListener requires a listening socket (call listen first)",
                )));
            }
        }
        Ok(SocketListener {
            socket,
            detector: ConflictDetector::new("another task is already accepting on this listener"),
        })
    }

    /// The socket (Trio's `SocketListener.socket`).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The socket back.
    pub fn into_socket(self) -> Socket {
        self.socket
    }

    /// The address it listens on, for an IP listener (a `UsageError` for a Unix one: use
    /// [`socket`](Self::socket)`.local_addr()`). With port 0, this tells which port the
    /// system chose.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.local_addr()?.as_socket().ok_or_else(|| {
            Error::new(UsageError::new(
                "local_addr: not an IP listener; use socket().local_addr()",
            ))
        })
    }
}

impl AsyncResource for SocketListener {
    /// Closes the listening socket at once.
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.socket.close();
        Poll::Ready(Ok(()))
    }
}

impl Listener for SocketListener {
    type Stream = SocketStream;

    /// `Pending` when the reactor says no connection is waiting (no system call).
    fn poll_accept_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.socket.poll_read_hint(cx)
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<SocketStream>> {
        loop {
            match self.socket.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((socket, _))) => return Poll::Ready(SocketStream::new(socket)),
                Poll::Ready(Err(e)) => match errno_of(&e) {
                    Some(errno) if IGNORABLE_ACCEPT_ERRNOS.contains(&errno) => {}
                    Some(libc::EBADF) => {
                        return Poll::Ready(Err(Error::new(ClosedResourceError::new(
                            "the listener was closed",
                        ))));
                    }
                    _ => return Poll::Ready(Err(e)),
                },
            }
        }
    }

    fn accept_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.detector)
    }
}

impl TryFrom<Socket> for SocketListener {
    type Error = Error;

    fn try_from(socket: Socket) -> Result<SocketListener> {
        SocketListener::new(socket)
    }
}
