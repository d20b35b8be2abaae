//! Custom sockets and the socket factory hook (Trio's `trio.abc.SocketFactory` and
//! `set_custom_socket_factory`): what a fake network for tests is made of.
//!
//! A custom socket lives in a table of the run that created it; the [`Socket`] that wraps it
//! holds the table's id and its key, plain data, so that `Socket` stays `Send` while a custom
//! socket may hold `Rc`s and futures. Used from another run, it is a `UsageError`.

use std::fmt;
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Type};

use super::{Socket, closed_error};
use crate::lowlevel::RunVar;
use crate::{Error, Result, UsageError};

fn unsupported(what: &str) -> Error {
    Error::new(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("this custom socket does not support {what}"),
    ))
}

/// A socket implemented in Rust rather than by the system: a fake for tests (Trio's
/// `SocketType` subclasses made by a custom `SocketFactory`). Wrap one with
/// [`Socket::from_custom`]; [`Socket`]'s methods then call these, with Trio's checkpoint rules
/// and busy checks around them.
///
/// Every method has a default that fails with `ErrorKind::Unsupported` (or does nothing, for
/// [`close`](Self::close)): a fake implements what its test needs. The poll methods follow the
/// stream traits' contract: `Pending` must arrange for `cx`'s waker to be woken when the
/// operation can make progress *and when the task is cancelled*, which waiting through a
/// `ParkingLot`, a trio sleep or the reactor does. A custom socket is polled only from the run
/// that created it.
pub trait CustomSocket: 'static {
    /// The type (`Type::STREAM`, `Type::DGRAM`).
    fn socket_type(&self) -> Type;

    /// The address family.
    fn domain(&self) -> Domain;

    /// The protocol, if one was asked for.
    fn protocol(&self) -> Option<Protocol> {
        None
    }

    /// Binds to a local address.
    fn bind(&self, _addr: &SockAddr) -> Result<()> {
        Err(unsupported("bind"))
    }

    /// Starts listening.
    fn listen(&self, _backlog: i32) -> Result<()> {
        Err(unsupported("listen"))
    }

    /// Shuts down one or both halves.
    fn shutdown(&self, _how: Shutdown) -> Result<()> {
        Err(unsupported("shutdown"))
    }

    /// The local address.
    fn local_addr(&self) -> Result<SockAddr> {
        Err(unsupported("local_addr"))
    }

    /// The peer's address.
    fn peer_addr(&self) -> Result<SockAddr> {
        Err(unsupported("peer_addr"))
    }

    /// Sets `TCP_NODELAY` (what [`SocketStream`](crate::net::SocketStream) asks for; it ignores
    /// a failure).
    fn set_nodelay(&self, _nodelay: bool) -> Result<()> {
        Err(unsupported("set_nodelay"))
    }

    /// Called once, when the socket is closed (or dropped).
    fn close(&self) {}

    /// Connects, polled until ready. The socket keeps what it needs between polls.
    fn poll_connect(&self, _cx: &mut Context<'_>, _addr: &SockAddr) -> Poll<Result<()>> {
        Poll::Ready(Err(unsupported("connect")))
    }

    /// Accepts a connection.
    fn poll_accept(&self, _cx: &mut Context<'_>) -> Poll<Result<(Socket, SockAddr)>> {
        Poll::Ready(Err(unsupported("accept")))
    }

    /// Receives into `buf`; `Ok(0)` is end-of-file for a stream.
    fn poll_recv(&self, _cx: &mut Context<'_>, _buf: &mut [u8]) -> Poll<Result<usize>> {
        Poll::Ready(Err(unsupported("recv")))
    }

    /// Receives a datagram into `buf`, with its sender.
    fn poll_recv_from(
        &self,
        _cx: &mut Context<'_>,
        _buf: &mut [u8],
    ) -> Poll<Result<(usize, SockAddr)>> {
        Poll::Ready(Err(unsupported("recv_from")))
    }

    /// Sends some of `buf`.
    fn poll_send(&self, _cx: &mut Context<'_>, _buf: &[u8]) -> Poll<Result<usize>> {
        Poll::Ready(Err(unsupported("send")))
    }

    /// Sends a datagram to `addr`.
    fn poll_send_to(
        &self,
        _cx: &mut Context<'_>,
        _buf: &[u8],
        _addr: &SockAddr,
    ) -> Poll<Result<usize>> {
        Poll::Ready(Err(unsupported("send_to")))
    }

    /// Ready when a send might not block (the default: always).
    fn poll_write_ready(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ready when a receive or an accept might not block: data, a connection, end-of-file or
    /// an error is there (the default: always, which sends a readiness-driven caller straight
    /// to the operation). What [`Socket::poll_read_ready`] answers for this socket.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Makes the sockets [`Socket::new`] returns (Trio's `trio.abc.SocketFactory`); install one
/// with [`set_custom_socket_factory`].
pub trait SocketFactory {
    /// A new socket of this family, type and protocol: a [`Socket::from_custom`] fake, or a
    /// real one from [`Socket::new_system`]. An error here is what `socket(2)` would fail with
    /// (`EAFNOSUPPORT` for a family the fake network does not have).
    fn socket(&self, domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<Socket>;
}

static FACTORY: RunVar<Option<Rc<dyn SocketFactory>>> =
    RunVar::with_default("trio.socket.socket_factory", || None);

/// Replaces what [`Socket::new`] creates, for the rest of the current run (Trio's
/// `set_custom_socket_factory`); `None` restores system sockets. Returns the previous factory.
/// Meant for tests. Fails outside a run. Not a checkpoint.
pub fn set_custom_socket_factory(
    factory: Option<Rc<dyn SocketFactory>>,
) -> Result<Option<Rc<dyn SocketFactory>>> {
    FACTORY.with(|slot| std::mem::replace(slot, factory))
}

/// The current run's factory, if one is set (none outside a run).
pub(super) fn current_factory() -> Option<Rc<dyn SocketFactory>> {
    FACTORY.with(|slot| slot.clone()).ok().flatten()
}

/// The custom sockets of one run.
struct Table {
    id: u64,
    slots: Vec<Option<Rc<dyn CustomSocket>>>,
    free: Vec<u32>,
}

static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

static TABLE: RunVar<Table> = RunVar::with_default("trio.socket.custom_sockets", || Table {
    id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
    slots: Vec::new(),
    free: Vec::new(),
});

/// Where a custom socket lives: its run's table and its slot.
pub(crate) struct CustomRef {
    table: u64,
    key: u32,
}

impl fmt::Debug for CustomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomRef")
            .field("table", &self.table)
            .field("key", &self.key)
            .finish()
    }
}

impl CustomRef {
    pub(super) fn insert(socket: impl CustomSocket) -> Result<CustomRef> {
        let socket: Rc<dyn CustomSocket> = Rc::new(socket);
        TABLE.with(|table| {
            let key = match table.free.pop() {
                Some(key) => {
                    table.slots[key as usize] = Some(socket);
                    key
                }
                None => {
                    table.slots.push(Some(socket));
                    u32::try_from(table.slots.len() - 1)
                        .map_err(|_| Error::usage("too many custom sockets"))?
                }
            };
            Ok(CustomRef {
                table: table.id,
                key,
            })
        })?
    }

    /// The socket, if it is open and belongs to the current run.
    pub(crate) fn get(&self) -> Result<Rc<dyn CustomSocket>> {
        TABLE
            .with(|table| {
                if table.id != self.table {
                    return Err(Error::new(UsageError::new(
                        "this custom socket belongs to another trio run",
                    )));
                }
                table.slots[self.key as usize]
                    .clone()
                    .ok_or_else(closed_error)
            })
            .and_then(|r| r)
    }

    pub(crate) fn close(&self) {
        let removed = TABLE.with(|table| {
            if table.id != self.table {
                return None;
            }
            let removed = table.slots[self.key as usize].take();
            if removed.is_some() {
                table.free.push(self.key);
            }
            removed
        });
        // Called with no borrow of the table held: `close` may create or close sockets.
        if let Ok(Some(socket)) = removed {
            socket.close();
        }
    }
}

/// Zero-fills `buf` (a custom socket receives into initialised memory).
fn initialised(buf: &mut [MaybeUninit<u8>]) -> &mut [u8] {
    for byte in buf.iter_mut() {
        byte.write(0);
    }
    // SAFETY: every byte was just written.
    unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) }
}

pub(super) fn poll_recv(
    custom: &CustomRef,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Poll<Result<usize>> {
    match custom.get() {
        Ok(socket) => socket.poll_recv(cx, initialised(buf)),
        Err(e) => Poll::Ready(Err(e)),
    }
}

pub(super) fn poll_recv_from(
    custom: &CustomRef,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Poll<Result<(usize, SockAddr)>> {
    match custom.get() {
        Ok(socket) => socket.poll_recv_from(cx, initialised(buf)),
        Err(e) => Poll::Ready(Err(e)),
    }
}
