//! UDP on the fake network: the datagram socket that `Socket::new(_, Type::DGRAM, _)` returns
//! while the network is enabled.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use trio::Result;
use trio::lowlevel::ParkingLot;
use trio::socket::{CustomSocket, Domain, Protocol, SockAddr, Type};

use super::wire::{
    Net, Proto, destination, ip_addr_for, loopback, os_error, source, usage, wildcard,
};
use crate::lockstep::PollPark;

/// The largest UDP payload over IPv4 (65535 less the IP and UDP headers); IPv6's is 65527.
const MAX_DATAGRAM_V4: usize = 65507;
const MAX_DATAGRAM_V6: usize = 65527;

/// What a datagram socket shares with the network: its address and its queue.
pub(super) struct UdpState {
    local: Cell<Option<SocketAddr>>,
    /// Set by `connect`: the only sender it hears, and where `send` goes.
    peer: Cell<Option<SocketAddr>>,
    queue: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    queued_bytes: Cell<usize>,
    shut_rd: Cell<bool>,
    shut_wr: Cell<bool>,
    lot: ParkingLot,
    park: PollPark,
}

/// A datagram arrives at `dst`: queued at the socket bound there (or to its family's wildcard
/// address on that port), or dropped, as a system drops a datagram nobody waits for.
pub(super) fn arrive(net: &Net, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
    let socket = {
        let sockets = net.datagram_sockets.borrow();
        let any = SocketAddr::new(wildcard(Domain::for_address(dst)).ip(), dst.port());
        sockets
            .get(&dst)
            .or_else(|| sockets.get(&any))
            .and_then(Weak::upgrade)
    };
    let Some(socket) = socket else { return };
    if socket.peer.get().is_some_and(|peer| peer != src) || socket.shut_rd.get() {
        return;
    }
    let queued = socket.queued_bytes.get() + payload.len();
    if queued > net.buffer_size() {
        return;
    }
    socket.queued_bytes.set(queued);
    socket.queue.borrow_mut().push_back((src, payload));
    socket.lot.unpark_all();
}

/// A datagram socket of the fake network.
pub(super) struct DatagramSocket {
    net: Rc<Net>,
    domain: Domain,
    state: Rc<UdpState>,
}

impl DatagramSocket {
    pub(super) fn new(net: Rc<Net>, domain: Domain) -> DatagramSocket {
        DatagramSocket {
            net,
            domain,
            state: Rc::new(UdpState {
                local: Cell::new(None),
                peer: Cell::new(None),
                queue: RefCell::new(VecDeque::new()),
                queued_bytes: Cell::new(0),
                shut_rd: Cell::new(false),
                shut_wr: Cell::new(false),
                lot: ParkingLot::new(),
                park: PollPark::default(),
            }),
        }
    }

    fn bind_to(&self, addr: SocketAddr) -> Result<SocketAddr> {
        let bound = self.net.bind(Proto::Udp, addr)?;
        self.state.local.set(Some(bound));
        self.net
            .datagram_sockets
            .borrow_mut()
            .insert(bound, Rc::downgrade(&self.state));
        Ok(bound)
    }

    /// The local address, binding loopback and a free port first if need be (as sending from
    /// an unbound socket does).
    fn bound(&self) -> Result<SocketAddr> {
        match self.state.local.get() {
            Some(local) => Ok(local),
            None => self.bind_to(SocketAddr::new(loopback(self.domain), 0)),
        }
    }

    fn send(&self, buf: &[u8], dst: SocketAddr) -> Result<usize> {
        let max = if self.domain == Domain::IPV6 {
            MAX_DATAGRAM_V6
        } else {
            MAX_DATAGRAM_V4
        };
        if buf.len() > max {
            return Err(os_error(libc::EMSGSIZE));
        }
        if self.state.shut_wr.get() {
            return Err(os_error(libc::EPIPE));
        }
        let src = source(self.bound()?);
        self.net.send_datagram(src, destination(dst), buf.to_vec());
        Ok(buf.len())
    }

    /// The next datagram into `buf` (truncated to fit, the rest discarded), with its sender.
    fn poll_take(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<(usize, SockAddr)>> {
        if self.state.local.get().is_none() {
            return Poll::Ready(Err(usage(
                "receiving on a datagram socket that is not bound would wait forever: bind it, \
                 or send from it, first",
            )));
        }
        let next = self.state.queue.borrow_mut().pop_front();
        if let Some((from, payload)) = next {
            self.state.park.clear();
            self.state
                .queued_bytes
                .set(self.state.queued_bytes.get() - payload.len());
            let n = payload.len().min(buf.len());
            buf[..n].copy_from_slice(&payload[..n]);
            return Poll::Ready(Ok((n, from.into())));
        }
        if self.state.shut_rd.get() {
            self.state.park.clear();
            return Poll::Ready(Ok((0, wildcard(self.domain).into())));
        }
        match self.state.park.poll_park(&self.state.lot, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Pending,
        }
    }
}

impl CustomSocket for DatagramSocket {
    fn socket_type(&self) -> Type {
        Type::DGRAM
    }

    fn domain(&self) -> Domain {
        self.domain
    }

    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::UDP)
    }

    fn bind(&self, addr: &SockAddr) -> Result<()> {
        if self.state.local.get().is_some() {
            return Err(os_error(libc::EINVAL));
        }
        self.bind_to(ip_addr_for(self.domain, addr, "bind")?)
            .map(drop)
    }

    fn listen(&self, _backlog: i32) -> Result<()> {
        Err(os_error(libc::EOPNOTSUPP))
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        if self.state.peer.get().is_none() {
            return Err(os_error(libc::ENOTCONN));
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.state.shut_rd.set(true);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.state.shut_wr.set(true);
        }
        self.state.lot.unpark_all();
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr> {
        Ok(self
            .state
            .local
            .get()
            .unwrap_or_else(|| wildcard(self.domain))
            .into())
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        self.state
            .peer
            .get()
            .map(SockAddr::from)
            .ok_or_else(|| os_error(libc::ENOTCONN))
    }

    fn close(&self) {
        if let Some(local) = self.state.local.take() {
            self.net.datagram_sockets.borrow_mut().remove(&local);
            self.net.unbind(Proto::Udp, local);
        }
        self.state.queue.borrow_mut().clear();
        self.state.lot.unpark_all();
    }

    /// Sets the peer (binding first if need be): nothing travels.
    fn poll_connect(&self, _cx: &mut Context<'_>, addr: &SockAddr) -> Poll<Result<()>> {
        let result = ip_addr_for(self.domain, addr, "connect").and_then(|peer| {
            self.bound()?;
            self.state.peer.set(Some(destination(peer)));
            Ok(())
        });
        Poll::Ready(result)
    }

    fn poll_accept(&self, _cx: &mut Context<'_>) -> Poll<Result<(trio::socket::Socket, SockAddr)>> {
        Poll::Ready(Err(os_error(libc::EOPNOTSUPP)))
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        self.poll_take(cx, buf).map_ok(|(n, _)| n)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<(usize, SockAddr)>> {
        self.poll_take(cx, buf)
    }

    fn poll_send(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        Poll::Ready(match self.state.peer.get() {
            Some(peer) => self.send(buf, peer),
            None => Err(os_error(libc::ENOTCONN)),
        })
    }

    fn poll_send_to(
        &self,
        _cx: &mut Context<'_>,
        buf: &[u8],
        addr: &SockAddr,
    ) -> Poll<Result<usize>> {
        Poll::Ready(ip_addr_for(self.domain, addr, "send_to").and_then(|dst| self.send(buf, dst)))
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ready = self.state.local.get().is_none()
            || self.state.shut_rd.get()
            || !self.state.queue.borrow().is_empty();
        if ready {
            self.state.park.clear();
            return Poll::Ready(Ok(()));
        }
        match self.state.park.poll_park(&self.state.lot, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Pending,
        }
    }
}
