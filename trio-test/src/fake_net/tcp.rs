//! TCP on the fake network: connection ends, listeners, and the stream socket that
//! `Socket::new(_, Type::STREAM, _)` returns while the network is enabled.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use trio::Result;
use trio::lowlevel::ParkingLot;
use trio::socket::{CustomSocket, Domain, Protocol, SockAddr, Socket, Type};

use super::NetTarget;
use super::wire::{
    Net, Packet, Proto, Retry, destination, ip_addr_for, loopback, now, os_error, source, wildcard,
};
use crate::lockstep::PollPark;

/// One end of a connection: what it received, what it owes, and who waits on it.
pub(super) struct TcpEnd {
    local: SocketAddr,
    peer: SocketAddr,
    peer_end: RefCell<Weak<TcpEnd>>,
    established: Cell<bool>,
    /// Arrived and not read.
    rx: RefCell<VecDeque<u8>>,
    /// The peer's end-of-file arrived (after all its data).
    rx_fin: Cell<bool>,
    /// An error to report once, to the next operation (the socket's `SO_ERROR`).
    error: Cell<Option<i32>>,
    /// Reset, refused or timed out: nothing more moves either way.
    dead: Cell<bool>,
    shut_rd: Cell<bool>,
    fin_sent: Cell<bool>,
    /// Its socket was closed.
    closed: Cell<bool>,
    /// Bytes this end sent that the peer has not read (its window).
    unread_by_peer: Cell<usize>,
    /// When this end's last packet arrives: the next may not arrive earlier.
    pub(super) last_out: Cell<f64>,
    /// This end's packets in the router's queue.
    pub(super) pending_out: Cell<usize>,
    /// Woken on every change.
    lot: ParkingLot,
    read_park: PollPark,
    write_park: PollPark,
}

impl TcpEnd {
    fn new(net: &Net, local: SocketAddr, peer: SocketAddr) -> Rc<TcpEnd> {
        let end = Rc::new(TcpEnd {
            local,
            peer,
            peer_end: RefCell::new(Weak::new()),
            established: Cell::new(false),
            rx: RefCell::new(VecDeque::new()),
            rx_fin: Cell::new(false),
            error: Cell::new(None),
            dead: Cell::new(false),
            shut_rd: Cell::new(false),
            fin_sent: Cell::new(false),
            closed: Cell::new(false),
            unread_by_peer: Cell::new(0),
            last_out: Cell::new(f64::NEG_INFINITY),
            pending_out: Cell::new(0),
            lot: ParkingLot::new(),
            read_park: PollPark::default(),
            write_park: PollPark::default(),
        });
        let mut ends = net.ends.borrow_mut();
        ends.retain(|e| e.strong_count() > 0);
        ends.push(Rc::downgrade(&end));
        end
    }

    fn alive(&self) -> bool {
        !self.closed.get() && !self.dead.get()
    }

    /// The connection is over, with `code` for the next operation.
    fn fail(&self, code: i32) {
        self.error.set(Some(code));
        self.dead.set(true);
        self.rx.borrow_mut().clear();
        self.lot.unpark_all();
    }

    /// The peer may send `n` bytes more.
    fn window_freed(&self, n: usize) {
        if let Some(peer) = self.peer_end.borrow().upgrade() {
            peer.unread_by_peer
                .set(peer.unread_by_peer.get().saturating_sub(n));
            peer.lot.unpark_all();
        }
    }

    /// Sends a packet of this connection from this end.
    fn send(self: &Rc<Self>, net: &Net, packet: Packet) {
        let Some(start) = now() else { return };
        let retry = Retry::data(net.latency(self.local, self.peer));
        net.send_tcp(Some(self), self.local, self.peer, packet, retry, start);
    }

    /// Aborts the connection from this end, which is going away: the peer gets a reset.
    fn abort(self: &Rc<Self>, net: &Net) {
        if self.established.get() && !self.dead.get() {
            let to = self.peer_end.borrow().clone();
            self.send(net, Packet::Reset { to });
        }
        self.dead.set(true);
        self.closed.set(true);
        self.rx.borrow_mut().clear();
        self.lot.unpark_all();
    }
}

/// A listening socket's accept queue.
pub(super) struct Listen {
    addr: SocketAddr,
    backlog: Cell<usize>,
    queue: RefCell<VecDeque<Rc<TcpEnd>>>,
    closed: Cell<bool>,
    lot: ParkingLot,
    park: PollPark,
}

/// Sends a connection request of `client`: transmission `attempt`, starting now, or after the
/// retransmission timeout of the previous one.
fn send_syn(net: &Net, client: &Rc<TcpEnd>, attempt: u32) {
    let Some(now) = now() else { return };
    let retry = Retry::syn(attempt);
    let start = match attempt.checked_sub(1) {
        Some(previous) => now + retry.timeout(previous),
        None => now,
    };
    let packet = Packet::Syn {
        client: Rc::downgrade(client),
        attempt,
    };
    net.send_tcp(
        Some(client),
        client.local,
        client.peer,
        packet,
        retry,
        start,
    );
}

/// A reset from `src` to `to`, answering a packet that should not have come.
fn reset_back(net: &Net, src: SocketAddr, dst: SocketAddr, to: Weak<TcpEnd>) {
    let Some(now) = now() else { return };
    let retry = Retry::data(net.latency(src, dst));
    net.send_tcp(None, src, dst, Packet::Reset { to }, retry, now);
}

/// A TCP packet from `src` arrives at `dst`.
pub(super) fn arrive(net: &Net, src: SocketAddr, dst: SocketAddr, packet: Packet) {
    match packet {
        Packet::Syn { client, attempt } => {
            let Some(client_end) = client.upgrade().filter(|c| c.alive()) else {
                return;
            };
            let listener = if net.refuses(dst) {
                None
            } else {
                net.listener_for(dst).filter(|l| !l.closed.get())
            };
            let Some(listener) = listener else {
                let Some(now) = now() else { return };
                let retry = Retry::data(net.latency(dst, src));
                net.send_tcp(None, dst, src, Packet::Refused { client }, retry, now);
                return;
            };
            if listener.queue.borrow().len() > listener.backlog.get() {
                // Linux ignores a request its accept queue has no room for; the client sends
                // it again after its timeout.
                send_syn(net, &client_end, attempt + 1);
                return;
            }
            let server = TcpEnd::new(net, dst, src);
            server.established.set(true);
            *server.peer_end.borrow_mut() = client;
            let packet = Packet::SynAck {
                client: Rc::downgrade(&client_end),
                server: server.clone(),
                listener: Rc::downgrade(&listener),
            };
            // A lost answer is sent again on the connection request's timer.
            let Some(now) = now() else { return };
            net.send_tcp(Some(&server), dst, src, packet, Retry::syn(0), now);
        }
        Packet::SynAck {
            client,
            server,
            listener,
        } => {
            // An abandoned attempt answers nothing: the listener never hears of it.
            if let Some(client) = client.upgrade().filter(|c| c.alive()) {
                *client.peer_end.borrow_mut() = Rc::downgrade(&server);
                client.established.set(true);
                client.lot.unpark_all();
                client.send(net, Packet::Ack { server, listener });
            }
        }
        Packet::Ack { server, listener } => match listener.upgrade().filter(|l| !l.closed.get()) {
            Some(listener) => {
                listener.queue.borrow_mut().push_back(server);
                listener.lot.unpark_all();
            }
            None => reset_back(net, dst, src, server.peer_end.borrow().clone()),
        },
        Packet::Refused { client } => {
            if let Some(client) = client.upgrade().filter(|c| c.alive()) {
                client.fail(libc::ECONNREFUSED);
            }
        }
        Packet::Data { to, from, bytes } => match to.upgrade() {
            // A connection that is over already takes nothing more.
            Some(end) if end.dead.get() => {}
            Some(end) if !end.closed.get() => {
                if end.shut_rd.get() {
                    // Read and thrown away, as far as the sender can tell.
                    end.window_freed(bytes.len());
                } else {
                    end.rx.borrow_mut().extend(bytes);
                    end.lot.unpark_all();
                }
            }
            _ => reset_back(net, dst, src, from),
        },
        Packet::Fin { to } => {
            if let Some(end) = to.upgrade().filter(|e| e.alive()) {
                end.rx_fin.set(true);
                end.lot.unpark_all();
            }
        }
        Packet::Reset { to } => {
            if let Some(end) = to.upgrade().filter(|e| e.alive()) {
                let code = if end.established.get() {
                    libc::ECONNRESET
                } else {
                    libc::ECONNREFUSED
                };
                end.fail(code);
            }
        }
        Packet::GaveUp { end } => {
            if let Some(end) = end.upgrade().filter(|e| e.alive()) {
                end.fail(libc::ETIMEDOUT);
            }
        }
        Packet::Datagram { .. } => {}
    }
}

/// `FakeNet::reset_connections`.
pub(super) fn reset_connections(net: &Net, target: NetTarget) -> usize {
    let ends: Vec<Rc<TcpEnd>> = net
        .ends
        .borrow()
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|e| e.alive() && (target.matches(e.local) || target.matches(e.peer)))
        .collect();
    for end in &ends {
        end.fail(libc::ECONNRESET);
    }
    ends.len()
}

enum State {
    Fresh,
    Listening(Rc<Listen>),
    Connecting(Rc<TcpEnd>),
    Connected(Rc<TcpEnd>),
}

/// A stream socket of the fake network.
pub(super) struct StreamSocket {
    net: Rc<Net>,
    domain: Domain,
    state: RefCell<State>,
    /// The address this socket holds in the port space (an accepted socket holds none).
    binding: Cell<Option<SocketAddr>>,
}

impl StreamSocket {
    pub(super) fn new(net: Rc<Net>, domain: Domain) -> StreamSocket {
        StreamSocket {
            net,
            domain,
            state: RefCell::new(State::Fresh),
            binding: Cell::new(None),
        }
    }

    fn end(&self) -> Option<Rc<TcpEnd>> {
        match &*self.state.borrow() {
            State::Connecting(end) | State::Connected(end) => Some(end.clone()),
            _ => None,
        }
    }

    fn connected(&self) -> Result<Rc<TcpEnd>> {
        match &*self.state.borrow() {
            State::Connected(end) => Ok(end.clone()),
            _ => Err(os_error(libc::ENOTCONN)),
        }
    }

    fn start_connect(&self, addr: &SockAddr) -> Result<Rc<TcpEnd>> {
        let dst = destination(ip_addr_for(self.domain, addr, "connect")?);
        if dst.port() == 0 {
            return Err(os_error(libc::ECONNREFUSED));
        }
        let local = match self.binding.get() {
            Some(bound) => source(bound),
            None => {
                let bound = self
                    .net
                    .bind(Proto::Tcp, SocketAddr::new(loopback(self.domain), 0))?;
                self.binding.set(Some(bound));
                bound
            }
        };
        let end = TcpEnd::new(&self.net, local, dst);
        *self.state.borrow_mut() = State::Connecting(end.clone());
        send_syn(&self.net, &end, 0);
        Ok(end)
    }
}

/// `Pending`, or the park's error (the task was cancelled).
fn park<T>(park: &PollPark, lot: &ParkingLot, cx: &mut Context<'_>) -> Poll<Result<T>> {
    match park.poll_park(lot, cx) {
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        _ => Poll::Pending,
    }
}

impl CustomSocket for StreamSocket {
    fn socket_type(&self) -> Type {
        Type::STREAM
    }

    fn domain(&self) -> Domain {
        self.domain
    }

    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::TCP)
    }

    fn bind(&self, addr: &SockAddr) -> Result<()> {
        if self.binding.get().is_some() || !matches!(*self.state.borrow(), State::Fresh) {
            return Err(os_error(libc::EINVAL));
        }
        let addr = ip_addr_for(self.domain, addr, "bind")?;
        self.binding.set(Some(self.net.bind(Proto::Tcp, addr)?));
        Ok(())
    }

    fn listen(&self, backlog: i32) -> Result<()> {
        let backlog = usize::try_from(backlog).unwrap_or(0);
        match &*self.state.borrow() {
            State::Fresh => {}
            State::Listening(listen) => {
                listen.backlog.set(backlog);
                return Ok(());
            }
            _ => return Err(os_error(libc::EINVAL)),
        }
        // Linux binds a listening socket that is not bound yet.
        let addr = match self.binding.get() {
            Some(addr) => addr,
            None => {
                let addr = self.net.bind(Proto::Tcp, wildcard(self.domain))?;
                self.binding.set(Some(addr));
                addr
            }
        };
        let listen = Rc::new(Listen {
            addr,
            backlog: Cell::new(backlog),
            queue: RefCell::new(VecDeque::new()),
            closed: Cell::new(false),
            lot: ParkingLot::new(),
            park: PollPark::default(),
        });
        self.net.listeners.borrow_mut().insert(addr, listen.clone());
        *self.state.borrow_mut() = State::Listening(listen);
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        let end = self.connected()?;
        if matches!(how, Shutdown::Read | Shutdown::Both) && !end.shut_rd.get() {
            end.shut_rd.set(true);
            let discarded = std::mem::take(&mut *end.rx.borrow_mut()).len();
            end.window_freed(discarded);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) && !end.fin_sent.get() {
            end.fin_sent.set(true);
            if !end.dead.get() {
                let to = end.peer_end.borrow().clone();
                end.send(&self.net, Packet::Fin { to });
            }
        }
        end.lot.unpark_all();
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr> {
        let addr = match &*self.state.borrow() {
            State::Listening(listen) => listen.addr,
            State::Connecting(end) | State::Connected(end) => end.local,
            State::Fresh => self.binding.get().unwrap_or_else(|| wildcard(self.domain)),
        };
        Ok(addr.into())
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        Ok(self.connected()?.peer.into())
    }

    fn set_nodelay(&self, _nodelay: bool) -> Result<()> {
        // Every send is a packet of its own already.
        Ok(())
    }

    fn close(&self) {
        let state = std::mem::replace(&mut *self.state.borrow_mut(), State::Fresh);
        match state {
            State::Connected(end) | State::Connecting(end) => {
                if !end.rx.borrow().is_empty() {
                    // Unread data: Linux resets the connection rather than pretend it was
                    // delivered (RFC 2525).
                    end.abort(&self.net);
                } else {
                    if end.established.get() && !end.fin_sent.get() && !end.dead.get() {
                        end.fin_sent.set(true);
                        let to = end.peer_end.borrow().clone();
                        end.send(&self.net, Packet::Fin { to });
                    }
                    end.closed.set(true);
                    end.lot.unpark_all();
                }
            }
            State::Listening(listen) => {
                listen.closed.set(true);
                self.net.listeners.borrow_mut().remove(&listen.addr);
                let pending = std::mem::take(&mut *listen.queue.borrow_mut());
                for end in pending {
                    end.abort(&self.net);
                }
                listen.lot.unpark_all();
            }
            State::Fresh => {}
        }
        if let Some(addr) = self.binding.take() {
            self.net.unbind(Proto::Tcp, addr);
        }
    }

    fn poll_connect(&self, cx: &mut Context<'_>, addr: &SockAddr) -> Poll<Result<()>> {
        let current = match &*self.state.borrow() {
            State::Fresh => None,
            State::Connecting(end) => Some(end.clone()),
            State::Connected(_) => return Poll::Ready(Err(os_error(libc::EISCONN))),
            State::Listening(_) => return Poll::Ready(Err(os_error(libc::EINVAL))),
        };
        let end = match current {
            Some(end) => end,
            None => match self.start_connect(addr) {
                Ok(end) => end,
                Err(e) => return Poll::Ready(Err(e)),
            },
        };
        if let Some(code) = end.error.take() {
            end.write_park.clear();
            // The socket may try again (from the same port, as on Linux).
            *self.state.borrow_mut() = State::Fresh;
            return Poll::Ready(Err(os_error(code)));
        }
        if end.established.get() {
            end.write_park.clear();
            *self.state.borrow_mut() = State::Connected(end);
            return Poll::Ready(Ok(()));
        }
        park(&end.write_park, &end.lot, cx)
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<(Socket, SockAddr)>> {
        let listen = match &*self.state.borrow() {
            State::Listening(listen) => listen.clone(),
            _ => return Poll::Ready(Err(os_error(libc::EINVAL))),
        };
        let Some(end) = listen.queue.borrow_mut().pop_front() else {
            return park(&listen.park, &listen.lot, cx);
        };
        listen.park.clear();
        let peer = end.peer;
        let accepted = StreamSocket {
            net: self.net.clone(),
            domain: self.domain,
            state: RefCell::new(State::Connected(end)),
            binding: Cell::new(None),
        };
        Poll::Ready(Socket::from_custom(accepted).map(|socket| (socket, peer.into())))
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        let end = match self.connected() {
            Ok(end) => end,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(code) = end.error.take() {
            end.read_park.clear();
            return Poll::Ready(Err(os_error(code)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = {
            let mut rx = end.rx.borrow_mut();
            let n = rx.len().min(buf.len());
            for (slot, byte) in buf.iter_mut().zip(rx.drain(..n)) {
                *slot = byte;
            }
            n
        };
        if n > 0 {
            end.read_park.clear();
            end.window_freed(n);
            return Poll::Ready(Ok(n));
        }
        if end.rx_fin.get() || end.shut_rd.get() || end.dead.get() {
            end.read_park.clear();
            return Poll::Ready(Ok(0));
        }
        park(&end.read_park, &end.lot, cx)
    }

    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let end = match self.connected() {
            Ok(end) => end,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(code) = end.error.take() {
            end.write_park.clear();
            return Poll::Ready(Err(os_error(code)));
        }
        if end.dead.get() || end.fin_sent.get() {
            end.write_park.clear();
            return Poll::Ready(Err(os_error(libc::EPIPE)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = self
            .net
            .buffer_size()
            .saturating_sub(end.unread_by_peer.get());
        if room == 0 {
            return park(&end.write_park, &end.lot, cx);
        }
        end.write_park.clear();
        let n = room.min(buf.len());
        end.unread_by_peer.set(end.unread_by_peer.get() + n);
        let packet = Packet::Data {
            to: end.peer_end.borrow().clone(),
            from: Rc::downgrade(&end),
            bytes: buf[..n].to_vec(),
        };
        end.send(&self.net, packet);
        Poll::Ready(Ok(n))
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(end) = self.end() else {
            return Poll::Ready(Ok(()));
        };
        let connected = matches!(*self.state.borrow(), State::Connected(_));
        let ready = if connected {
            self.net.buffer_size() > end.unread_by_peer.get()
        } else {
            end.established.get()
        };
        if ready || end.dead.get() || end.fin_sent.get() {
            end.write_park.clear();
            return Poll::Ready(Ok(()));
        }
        park(&end.write_park, &end.lot, cx)
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let state = match &*self.state.borrow() {
            State::Fresh => None,
            State::Listening(listen) => Some(Err(listen.clone())),
            State::Connecting(end) | State::Connected(end) => Some(Ok(end.clone())),
        };
        match state {
            None => Poll::Ready(Ok(())),
            Some(Err(listen)) => {
                if !listen.queue.borrow().is_empty() {
                    listen.park.clear();
                    return Poll::Ready(Ok(()));
                }
                park(&listen.park, &listen.lot, cx)
            }
            Some(Ok(end)) => {
                let ready = !end.rx.borrow().is_empty()
                    || end.rx_fin.get()
                    || end.shut_rd.get()
                    || end.dead.get();
                if ready {
                    end.read_park.clear();
                    return Poll::Ready(Ok(()));
                }
                park(&end.read_park, &end.lot, cx)
            }
        }
    }
}
