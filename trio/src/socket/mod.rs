//! Low-level networking: Trio's `trio.socket` (layer 3 of docs/architecture.md).
//!
//! [`Socket`] is a BSD socket (TCP, UDP, Unix) over [`socket2`]: created non-blocking and
//! close-on-exec, registered with the run's reactor on its first wait. It has Trio's async
//! methods ([`connect`](Socket::connect), [`accept`](Socket::accept), [`recv`](Socket::recv),
//! [`send`](Socket::send), ...), poll methods for code that builds its own futures
//! ([`poll_recv`](Socket::poll_recv), [`poll_send`](Socket::poll_send), ...), and sync methods
//! for the rest ([`bind`](Socket::bind), [`listen`](Socket::listen),
//! [`shutdown`](Socket::shutdown), options through [`socket2`](Socket::socket2)).
//!
//! Most programs want the high-level API instead: [`trio::net`](crate::net)'s
//! `open_tcp_stream`, `serve_tcp` and `SocketStream`.
//!
//! ```
//! use std::net::SocketAddr;
//! use trio::socket::{Domain, Socket, Type};
//!
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
//!     listener.bind(&"127.0.0.1:0".parse::<SocketAddr>()?.into())?;
//!     listener.listen(128)?;
//!     let addr = listener.local_addr()?;
//!
//!     let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
//!     client.connect(&addr).await?;
//!     let (server, _peer) = listener.accept().await?;
//!     client.send(b"ping").await?;
//!     assert_eq!(server.recv(16).await?, b"ping");
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # Trio's rules
//! - **Checkpoints.** Every async method is a cancel point first; then it tries the system
//!   call once; if that succeeds at once, it makes a schedule point (cancel-shielded) before
//!   returning; if the call would block, it waits for readiness and checks for cancellation
//!   after every wake-up before trying again. A cancelled `recv` has received nothing.
//! - **One task per direction.** Two tasks receiving (or accepting) on one socket at once, or
//!   two sending (or connecting), is a bug: the second gets
//!   [`BusyResourceError`]. Sending in one task while receiving in
//!   another is fine, which is why the methods take `&self`. The poll methods do not check:
//!   their callers (hyper) expect the last waker to win.
//! - **A cancelled `connect` closes the socket**: it is in an unknown state, and Trio would
//!   rather you not use it.
//! - **Closing** is sync and idempotent ([`close`](Socket::close), or drop); tasks waiting on
//!   the socket get [`ClosedResourceError`], and later operations
//!   too.
//!
//! A `Socket` holds plain data (its fd, its registration's key, the run's id), so it is `Send`:
//! it can be created on one thread and moved to another before its first use. Its first wait
//! registers it with the run that does it; used from another run afterwards, it fails with a
//! [`UsageError`] instead of touching a stranger's reactor.
//!
//! # Faking the network
//! [`set_custom_socket_factory`] and [`set_custom_hostname_resolver`] replace, for the rest of
//! the current run, what [`Socket::new`] creates and what [`getaddrinfo`] answers (Trio's
//! hooks of the same names). A factory may return real sockets or [`CustomSocket`]s wrapped by
//! [`Socket::from_custom`]; the high-level API ([`open_tcp_stream`](crate::net::open_tcp_stream),
//! [`open_tcp_listeners`](crate::net::open_tcp_listeners)) goes through both hooks, so tests can
//! run it on a network made of memory.

mod custom;
mod ops;
mod os;
mod resolve;

use std::cell::Cell;
use std::fmt;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

pub use socket2::{Domain, MsgHdr, MsgHdrMut, Protocol, SockAddr, Type};

pub use custom::{CustomSocket, SocketFactory, set_custom_socket_factory};
pub use os::Socket2Ref;
pub use resolve::{
    AI_ADDRCONFIG, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_PASSIVE, AI_V4MAPPED, AddrInfo,
    AddrInfoHints, HostnameResolver, LocalBoxFuture, LookupError, NI_NAMEREQD, NI_NUMERICHOST,
    NI_NUMERICSERV, getaddrinfo, getnameinfo, set_custom_hostname_resolver,
};

use custom::CustomRef;
pub(crate) use ops::{Nonblocking, Phase, polled_after_completion};
use os::OsSocket;

use crate::{BusyResourceError, ClosedResourceError, Error, Result, UsageError};

/// A direction of a socket, for the busy check and readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Receiving and accepting.
    Read,
    /// Sending and connecting.
    Write,
}

impl Dir {
    #[inline]
    fn bit(self) -> u8 {
        match self {
            Dir::Read => 1,
            Dir::Write => 2,
        }
    }
}

/// A socket: Trio's `trio.socket.SocketType`. See the [module docs](self) for the rules its
/// methods follow.
///
/// Create one with [`Socket::new`] (which goes through the run's custom socket factory, if one
/// is set), [`Socket::pair`], [`Socket::from_std`] or [`Socket::from_custom`]; take the
/// system socket back with [`Socket::into_socket2`].
pub struct Socket {
    repr: Repr,
    /// The directions that a Trio-layer operation holds (`Dir::bit`).
    busy: Cell<u8>,
    /// Whether the sending half was shut down (Trio's `did_shutdown_SHUT_WR`).
    shut_wr: Cell<bool>,
}

enum Repr {
    Os(OsSocket),
    Custom(CustomRef),
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Socket");
        match &self.repr {
            Repr::Os(os) => d.field("fd", &os.raw_fd()).field("type", &os.socket_type()),
            Repr::Custom(custom) => d.field("custom", custom),
        };
        d.finish_non_exhaustive()
    }
}

fn closed_error() -> Error {
    Error::new(ClosedResourceError::new("the socket was closed"))
}

impl Socket {
    /// Creates a socket (Trio's `trio.socket.socket`): through the run's custom socket factory
    /// if one is set ([`set_custom_socket_factory`]), otherwise a system socket, non-blocking
    /// and close-on-exec. `protocol` `None` lets the system choose (TCP for a stream over IP).
    /// Not a checkpoint.
    pub fn new(domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<Socket> {
        if let Some(factory) = custom::current_factory() {
            return factory.socket(domain, ty, protocol);
        }
        Self::new_system(domain, ty, protocol)
    }

    /// A system socket, whatever factory is set (for factories that hand out real sockets).
    /// Not a checkpoint.
    pub fn new_system(domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<Socket> {
        Ok(Self::from_os(OsSocket::new(domain, ty, protocol)?))
    }

    /// A pair of connected system sockets (`socketpair`; Trio's `trio.socket.socketpair`),
    /// usually `Domain::UNIX`. Not a checkpoint.
    pub fn pair(domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<(Socket, Socket)> {
        let (a, b) = OsSocket::pair(domain, ty, protocol)?;
        Ok((Self::from_os(a), Self::from_os(b)))
    }

    /// Wraps a system socket (`std::net::TcpStream`, `TcpListener`, `UdpSocket`,
    /// `std::os::unix::net::{UnixStream, UnixListener, UnixDatagram}`, an `OwnedFd` of a
    /// socket, or a `socket2::Socket`); makes it non-blocking (Trio's `from_stdlib_socket`).
    /// Works outside a run. Not a checkpoint.
    pub fn from_std(socket: impl Into<socket2::Socket>) -> Result<Socket> {
        Ok(Self::from_os(OsSocket::wrap(socket.into())?))
    }

    /// Wraps a [`CustomSocket`] (a fake for tests, usually made by a [`SocketFactory`]). It
    /// belongs to the current run. Not a checkpoint.
    pub fn from_custom(socket: impl CustomSocket) -> Result<Socket> {
        Ok(Socket {
            repr: Repr::Custom(CustomRef::insert(socket)?),
            busy: Cell::new(0),
            shut_wr: Cell::new(false),
        })
    }

    fn from_os(os: OsSocket) -> Socket {
        Socket {
            repr: Repr::Os(os),
            busy: Cell::new(0),
            shut_wr: Cell::new(false),
        }
    }

    /// Takes the system socket back (still non-blocking), for `std` or `socket2` code. Convert
    /// further with `std::net::TcpStream::from(socket)` and the like. Fails for a closed or a
    /// custom socket. Not a checkpoint.
    pub fn into_socket2(self) -> Result<socket2::Socket> {
        match &self.repr {
            Repr::Os(os) => os.take(),
            Repr::Custom(_) => Err(Error::new(UsageError::new(
                "into_socket2: a custom socket has no system socket",
            ))),
        }
    }

    /// Whether this is a custom socket ([`Socket::from_custom`]).
    pub fn is_custom(&self) -> bool {
        matches!(self.repr, Repr::Custom(_))
    }

    /// The custom socket inside, if this is one and it is still open.
    pub fn custom(&self) -> Option<std::rc::Rc<dyn CustomSocket>> {
        match &self.repr {
            Repr::Custom(custom) => custom.get().ok(),
            Repr::Os(_) => None,
        }
    }

    /// The system socket, borrowed, for options and calls this type does not wrap
    /// (`set_reuse_address`, `set_tcp_nodelay`, `set_keepalive`, ...). Closing the socket while
    /// the borrow lives is allowed: the fd stays open until the borrow ends. Fails for a closed
    /// or a custom socket.
    ///
    /// ```
    /// # use trio::socket::{Domain, Socket, Type};
    /// # fn main() -> trio::Result<()> {
    /// let socket = Socket::new_system(Domain::IPV4, Type::STREAM, None)?;
    /// socket.socket2()?.set_reuse_address(true)?;
    /// assert!(socket.socket2()?.reuse_address()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn socket2(&self) -> Result<Socket2Ref<'_>> {
        match &self.repr {
            Repr::Os(os) => os.borrow(),
            Repr::Custom(_) => Err(Error::new(UsageError::new(
                "socket2: a custom socket has no system socket",
            ))),
        }
    }

    /// The socket's type (`Type::STREAM`, `Type::DGRAM`, ...).
    pub fn socket_type(&self) -> Result<Type> {
        match &self.repr {
            Repr::Os(os) => Ok(os.socket_type()),
            Repr::Custom(custom) => Ok(custom.get()?.socket_type()),
        }
    }

    /// Whether this is a stream socket (what [`SocketStream`](crate::net::SocketStream)
    /// needs).
    pub fn is_stream(&self) -> bool {
        self.socket_type().is_ok_and(|t| t == Type::STREAM)
    }

    /// The address family (`Domain::IPV4`, `Domain::IPV6`, `Domain::UNIX`, ...).
    pub fn domain(&self) -> Result<Domain> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.local_addr()).map(|a| a.domain()),
            Repr::Custom(custom) => Ok(custom.get()?.domain()),
        }
    }

    /// Binds the socket to a local address. Not a checkpoint (Trio's `bind` is async because
    /// it resolves names; this one takes a resolved address: see [`getaddrinfo`]).
    pub fn bind(&self, addr: &SockAddr) -> Result<()> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.bind(addr)),
            Repr::Custom(custom) => custom.get()?.bind(addr),
        }
    }

    /// Marks the socket as listening for connections, with a queue of `backlog` (clamped to
    /// what the system allows). Not a checkpoint.
    pub fn listen(&self, backlog: i32) -> Result<()> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.listen(backlog)),
            Repr::Custom(custom) => custom.get()?.listen(backlog),
        }
    }

    /// Shuts down the receiving half, the sending half, or both. Not a checkpoint.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.shutdown(how))?,
            Repr::Custom(custom) => custom.get()?.shutdown(how)?,
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.shut_wr.set(true);
        }
        Ok(())
    }

    /// Whether the sending half was shut down through [`shutdown`](Self::shutdown) (Trio's
    /// `did_shutdown_SHUT_WR`).
    pub fn did_shutdown_write(&self) -> bool {
        self.shut_wr.get()
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SockAddr> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.local_addr()),
            Repr::Custom(custom) => custom.get()?.local_addr(),
        }
    }

    /// The address of the connected peer.
    pub fn peer_addr(&self) -> Result<SockAddr> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.peer_addr()),
            Repr::Custom(custom) => custom.get()?.peer_addr(),
        }
    }

    /// Sets `TCP_NODELAY` (a custom socket decides what it means). Not a checkpoint.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        match &self.repr {
            Repr::Os(os) => os.with(|s| s.set_tcp_nodelay(nodelay)),
            Repr::Custom(custom) => custom.get()?.set_nodelay(nodelay),
        }
    }

    /// Closes the socket (Trio's `close`): tasks waiting on it wake with
    /// [`ClosedResourceError`], and so do later operations. Idempotent; also done on drop.
    /// Not a checkpoint.
    pub fn close(&self) {
        match &self.repr {
            Repr::Os(os) => os.close(),
            Repr::Custom(custom) => custom.close(),
        }
    }

    /// Whether the socket was closed.
    pub fn is_closed(&self) -> bool {
        match &self.repr {
            Repr::Os(os) => os.raw_fd() < 0,
            Repr::Custom(custom) => custom.get().is_err(),
        }
    }

    /// Marks `dir` as used by a Trio-layer operation until the claim is dropped;
    /// `BusyResourceError` if it already is. Inlined into the operations' polls: the claim
    /// it returns is larger than a bare `Result`.
    #[inline]
    pub(crate) fn claim(&self, dir: Dir) -> Result<Claim<'_>> {
        let busy = self.busy.get();
        if busy & dir.bit() != 0 {
            return Err(Error::new(BusyResourceError::new(match dir {
                Dir::Read => "another task is already receiving or accepting on this socket",
                Dir::Write => "another task is already sending or connecting on this socket",
            })));
        }
        self.busy.set(busy | dir.bit());
        Ok(Claim { socket: self, dir })
    }

    /// Receives into `buf` (possibly uninitialised memory); `Ready(Ok(n))` with the first `n`
    /// bytes of `buf` written. `Ok(0)` from a stream socket with a non-empty buffer is
    /// end-of-file. `Pending` means nothing was received and `cx` will be woken when the
    /// socket is readable or the task is cancelled. Tries the call only while the socket is
    /// known to be readable (tokio's readiness protocol); a short read from a stream socket
    /// clears that. Does not check for another receiving task.
    #[inline]
    pub fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_recv(cx, buf, false),
            Repr::Custom(custom) => custom::poll_recv(custom, cx, buf),
        }
    }

    /// As [`poll_recv`](Self::poll_recv), also returning the sender's address (datagrams).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<Result<(usize, SockAddr)>> {
        match &self.repr {
            Repr::Os(os) => os.poll_recv_from(cx, buf, false),
            Repr::Custom(custom) => custom::poll_recv_from(custom, cx, buf),
        }
    }

    /// Sends some of `buf`: `Ready(Ok(n))` with the number of bytes the system took.
    /// `Pending` means nothing was sent. A stream socket sends without `SIGPIPE`: a peer that
    /// is gone gives `EPIPE`.
    #[inline]
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_send(cx, buf, false),
            Repr::Custom(custom) => match custom.get() {
                Ok(socket) => socket.poll_send(cx, buf),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// As [`poll_send`](Self::poll_send) for the concatenation of `bufs` (one `sendmsg`).
    pub fn poll_send_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_send_vectored(cx, bufs, false),
            Repr::Custom(custom) => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                match custom.get() {
                    Ok(socket) => socket.poll_send(cx, first),
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }

    /// Sends `buf` to `addr` (datagrams).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: &SockAddr,
    ) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_send_to(cx, buf, addr, false),
            Repr::Custom(custom) => match custom.get() {
                Ok(socket) => socket.poll_send_to(cx, buf, addr),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Accepts a connection on a listening socket. The new socket is non-blocking and
    /// close-on-exec.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<(Socket, SockAddr)>> {
        match &self.repr {
            Repr::Os(os) => os
                .poll_accept(cx, false)
                .map_ok(|(os, addr)| (Socket::from_os(os), addr)),
            Repr::Custom(custom) => match custom.get() {
                Ok(socket) => socket.poll_accept(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Ready when the socket is readable now (or closed, or broken): data, a connection to
    /// accept, or end-of-file. A custom socket answers through
    /// [`CustomSocket::poll_read_ready`].
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &self.repr {
            Repr::Os(os) => os.poll_ready_now(cx, Dir::Read),
            Repr::Custom(custom) => match custom.get() {
                Ok(socket) => socket.poll_read_ready(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// `Pending` only when a receive or accept is certain to wait (see
    /// `ReceiveStream::poll_receive_ready`); a custom socket always answers `Ready`.
    pub(crate) fn poll_read_hint(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &self.repr {
            Repr::Os(os) => os.poll_read_hint(cx),
            Repr::Custom(_) => Poll::Ready(Ok(())),
        }
    }

    /// Ready when the socket is writable now (or closed, or broken).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &self.repr {
            Repr::Os(os) => os.poll_ready_now(cx, Dir::Write),
            Repr::Custom(custom) => match custom.get() {
                Ok(socket) => socket.poll_write_ready(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

/// A direction of a socket that a Trio-layer operation uses ([`Socket::claim`]).
pub(crate) struct Claim<'a> {
    socket: &'a Socket,
    dir: Dir,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let busy = &self.socket.busy;
        busy.set(busy.get() & !self.dir.bit());
    }
}

impl AsRawFd for Socket {
    /// The fd, or -1 for a closed or a custom socket (Trio's `fileno`). Do not close it.
    fn as_raw_fd(&self) -> RawFd {
        match &self.repr {
            Repr::Os(os) => os.raw_fd(),
            Repr::Custom(_) => -1,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.close();
    }
}
