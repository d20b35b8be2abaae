//! The fake network's core: its settings, its bindings, and the wire — how long a packet
//! takes, whether it is lost, the queue of packets in flight and the system task that
//! delivers them on time.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::{Rc, Weak};

use trio::lowlevel::{ParkingLot, spawn_system_task};
use trio::socket::Domain;
use trio::{Error, Result, UsageError};

use super::tcp::{self, Listen, TcpEnd};
use super::{FakeNetStatistics, NetTarget, udp};

/// The first port handed out to sockets that bind port 0 (Trio's fake net starts there too).
const FIRST_EPHEMERAL_PORT: u16 = 50000;

/// The settings a test changes through `FakeNet`'s controls.
pub(super) struct Config {
    /// Lower-case names without a trailing dot, in the order they were added.
    pub(super) hosts: Vec<(String, Vec<IpAddr>)>,
    pub(super) latency: f64,
    pub(super) latency_for: Vec<(NetTarget, f64)>,
    pub(super) loss: f64,
    /// Packets still to lose, per destination, in the order the rules were given.
    pub(super) drops: Vec<(NetTarget, u64)>,
    pub(super) partitioned: Vec<NetTarget>,
    pub(super) refused: Vec<NetTarget>,
    pub(super) buffer_size: usize,
    pub(super) lookup_delay: f64,
}

/// The two port spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Proto {
    Tcp,
    Udp,
}

/// How a lost TCP packet is sent again: Linux's timers (`tcp_syn_retries`,
/// `tcp_retries2`, `TCP_RTO_MAX`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    first_timeout: f64,
    /// The transmission this is (0: the first).
    attempt: u32,
    max_retries: u32,
}

impl Retry {
    /// A connection request: 1 s, doubling, 6 retries (127 s in all).
    pub(super) fn syn(attempt: u32) -> Retry {
        Retry {
            first_timeout: 1.0,
            attempt,
            max_retries: 6,
        }
    }

    /// Anything else on a connection of the given one-way latency: `max(0.2 s, two round
    /// trips)`, doubling, 15 retries.
    pub(super) fn data(latency: f64) -> Retry {
        Retry {
            first_timeout: (4.0 * latency).max(0.2),
            attempt: 0,
            max_retries: 15,
        }
    }

    /// The wait after transmission `attempt` before the next one.
    pub(super) fn timeout(&self, attempt: u32) -> f64 {
        (self.first_timeout * 2f64.powi(attempt.min(30) as i32)).min(120.0)
    }
}

/// What travels.
pub(super) enum Packet {
    /// A connection request from `client`.
    Syn {
        client: Weak<TcpEnd>,
        attempt: u32,
    },
    /// The listener's answer: `server` is the connection's end there, not accepted yet.
    SynAck {
        client: Weak<TcpEnd>,
        server: Rc<TcpEnd>,
        listener: Weak<Listen>,
    },
    /// The client's acknowledgement: `server` joins the accept queue.
    Ack {
        server: Rc<TcpEnd>,
        listener: Weak<Listen>,
    },
    /// A reset answering a request: nothing listens, or the address refuses.
    Refused {
        client: Weak<TcpEnd>,
    },
    Data {
        to: Weak<TcpEnd>,
        from: Weak<TcpEnd>,
        bytes: Vec<u8>,
    },
    Fin {
        to: Weak<TcpEnd>,
    },
    Reset {
        to: Weak<TcpEnd>,
    },
    /// Not a packet: the retransmissions of `end`'s packet ran out.
    GaveUp {
        end: Weak<TcpEnd>,
    },
    Datagram {
        payload: Vec<u8>,
    },
}

/// A packet on its way.
struct InFlight {
    at: f64,
    seq: u64,
    src: SocketAddr,
    dst: SocketAddr,
    /// The connection end whose packets must stay in order behind this one.
    sender: Option<Weak<TcpEnd>>,
    packet: Packet,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    /// Reversed, so that the heap's greatest is the earliest (then the first sent).
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

/// When a packet arrives, if it does.
enum Fate {
    Arrives(f64),
    Lost,
    /// A reliable packet whose every retransmission was lost: the sender gives up then.
    GivesUp(f64),
}

pub(super) struct Net {
    this: Weak<Net>,
    pub(super) config: RefCell<Config>,
    pub(super) stats: Cell<FakeNetStatistics>,
    rng: Cell<u64>,
    next_port: Cell<u16>,
    bound: RefCell<HashSet<(Proto, SocketAddr)>>,
    pub(super) listeners: RefCell<HashMap<SocketAddr, Rc<Listen>>>,
    pub(super) datagram_sockets: RefCell<HashMap<SocketAddr, Weak<udp::UdpState>>>,
    /// Every connection end made, for `reset_connections` (pruned as they go).
    pub(super) ends: RefCell<Vec<Weak<TcpEnd>>>,
    queue: RefCell<BinaryHeap<InFlight>>,
    seq: Cell<u64>,
    router_lot: ParkingLot,
    router_running: Cell<bool>,
}

pub(super) fn usage(message: impl Into<String>) -> Error {
    Error::new(UsageError::new(message))
}

/// The error a system socket gives, by errno.
pub(super) fn os_error(code: i32) -> Error {
    Error::new(io::Error::from_raw_os_error(code))
}

/// The run's time, if there is a run.
pub(super) fn now() -> Option<f64> {
    trio::current_time().ok()
}

pub(super) fn loopback(domain: Domain) -> IpAddr {
    if domain == Domain::IPV6 {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    }
}

pub(super) fn wildcard(domain: Domain) -> SocketAddr {
    if domain == Domain::IPV6 {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
    }
}

/// Where a packet to `addr` goes: a wildcard destination means this host, as on Linux.
pub(super) fn destination(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let domain = Domain::for_address(addr);
        SocketAddr::new(loopback(domain), addr.port())
    } else {
        addr
    }
}

/// The source address of what a socket bound to `local` sends: a wildcard binding sends from
/// loopback.
pub(super) fn source(local: SocketAddr) -> SocketAddr {
    destination(local)
}

/// An IP address of the socket's family, or the error a system socket gives.
pub(super) fn ip_addr_for(
    domain: Domain,
    addr: &trio::socket::SockAddr,
    what: &str,
) -> Result<SocketAddr> {
    let Some(addr) = addr.as_socket() else {
        return Err(usage(format!(
            "{what}: a fake-network socket takes IP addresses only"
        )));
    };
    if Domain::for_address(addr) != domain {
        return Err(os_error(libc::EAFNOSUPPORT));
    }
    Ok(addr)
}

impl Net {
    pub(super) fn new() -> Rc<Net> {
        Rc::new_cyclic(|this| Net {
            this: this.clone(),
            config: RefCell::new(Config {
                hosts: vec![(
                    "localhost".to_string(),
                    vec![Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()],
                )],
                latency: 0.0,
                latency_for: Vec::new(),
                loss: 0.0,
                drops: Vec::new(),
                partitioned: Vec::new(),
                refused: Vec::new(),
                buffer_size: 65536,
                lookup_delay: 0.0,
            }),
            stats: Cell::new(FakeNetStatistics::default()),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15),
            next_port: Cell::new(FIRST_EPHEMERAL_PORT),
            bound: RefCell::new(HashSet::new()),
            listeners: RefCell::new(HashMap::new()),
            datagram_sockets: RefCell::new(HashMap::new()),
            ends: RefCell::new(Vec::new()),
            queue: RefCell::new(BinaryHeap::new()),
            seq: Cell::new(0),
            router_lot: ParkingLot::new(),
            router_running: Cell::new(false),
        })
    }

    pub(super) fn seed(&self, seed: u64) {
        // xorshift must not start at 0.
        self.rng.set(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    }

    /// A number in `0.0..1.0` (xorshift64*).
    fn random(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn count(&self, f: impl FnOnce(&mut FakeNetStatistics)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    pub(super) fn buffer_size(&self) -> usize {
        self.config.borrow().buffer_size
    }

    /// The one-way latency between two addresses.
    pub(super) fn latency(&self, src: SocketAddr, dst: SocketAddr) -> f64 {
        let config = self.config.borrow();
        config
            .latency_for
            .iter()
            .filter(|(t, _)| t.matches(src) || t.matches(dst))
            .map(|&(_, l)| l)
            .fold(config.latency, f64::max)
    }

    pub(super) fn refuses(&self, dst: SocketAddr) -> bool {
        self.config.borrow().refused.iter().any(|t| t.matches(dst))
    }

    /// Whether the network loses one transmission from `src` to `dst` (counting it).
    fn lost(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.count(|s| s.packets_sent += 1);
        let lost = {
            let mut config = self.config.borrow_mut();
            if config
                .partitioned
                .iter()
                .any(|t| t.matches(src) || t.matches(dst))
            {
                true
            } else if let Some(i) = config.drops.iter().position(|(t, _)| t.matches(dst)) {
                config.drops[i].1 -= 1;
                if config.drops[i].1 == 0 {
                    config.drops.remove(i);
                }
                true
            } else {
                let loss = config.loss;
                drop(config);
                loss > 0.0 && self.random() < loss
            }
        };
        if lost {
            self.count(|s| s.packets_lost += 1);
        }
        lost
    }

    /// When a packet sent at `start` arrives: a datagram (`retry` `None`) once or never, a
    /// TCP packet after as many retransmissions as it takes, or never, when they run out.
    fn route(&self, src: SocketAddr, dst: SocketAddr, retry: Option<Retry>, start: f64) -> Fate {
        let latency = self.latency(src, dst);
        let Some(retry) = retry else {
            return if self.lost(src, dst) {
                Fate::Lost
            } else {
                Fate::Arrives(start + latency)
            };
        };
        let mut t = start;
        for attempt in retry.attempt..=retry.max_retries {
            if !self.lost(src, dst) {
                return Fate::Arrives(t + latency);
            }
            t += retry.timeout(attempt);
        }
        Fate::GivesUp(t)
    }

    /// Sends a TCP packet; what `sender` sends arrives in the order it was sent. A packet
    /// whose retransmissions run out becomes a `GaveUp` for the sender, and the sender's
    /// later packets go nowhere.
    pub(super) fn send_tcp(
        &self,
        sender: Option<&Rc<TcpEnd>>,
        src: SocketAddr,
        dst: SocketAddr,
        packet: Packet,
        retry: Retry,
        start: f64,
    ) {
        if sender.is_some_and(|s| s.last_out.get() == f64::INFINITY) {
            return;
        }
        match self.route(src, dst, Some(retry), start) {
            Fate::Arrives(at) => {
                let at = match sender {
                    Some(s) => {
                        let at = at.max(s.last_out.get());
                        s.last_out.set(at);
                        at
                    }
                    None => at,
                };
                self.schedule(at, src, dst, sender, packet);
            }
            Fate::GivesUp(at) => {
                if let Some(s) = sender {
                    s.last_out.set(f64::INFINITY);
                    let end = Rc::downgrade(s);
                    self.schedule(at, src, dst, None, Packet::GaveUp { end });
                }
            }
            Fate::Lost => {}
        }
    }

    /// Sends a datagram (lost, or delivered once).
    pub(super) fn send_datagram(&self, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        let Some(start) = now() else { return };
        if let Fate::Arrives(at) = self.route(src, dst, None, start) {
            self.schedule(at, src, dst, None, Packet::Datagram { payload });
        }
    }

    /// Delivers the packet now if it is due and nothing of its sender is still on the way;
    /// otherwise queues it for the router.
    fn schedule(
        &self,
        at: f64,
        src: SocketAddr,
        dst: SocketAddr,
        sender: Option<&Rc<TcpEnd>>,
        packet: Packet,
    ) {
        let Some(now) = now() else { return };
        if at <= now && sender.is_none_or(|s| s.pending_out.get() == 0) {
            self.deliver(src, dst, packet);
            return;
        }
        if let Some(s) = sender {
            s.pending_out.set(s.pending_out.get() + 1);
        }
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        self.queue.borrow_mut().push(InFlight {
            at,
            seq,
            src,
            dst,
            sender: sender.map(Rc::downgrade),
            packet,
        });
        self.ensure_router();
        self.router_lot.unpark_all();
    }

    fn deliver(&self, src: SocketAddr, dst: SocketAddr, packet: Packet) {
        self.count(|s| s.packets_delivered += 1);
        match packet {
            Packet::Datagram { payload } => udp::arrive(self, src, dst, payload),
            packet => tcp::arrive(self, src, dst, packet),
        }
    }

    /// The first packet due by `now`, out of the queue.
    fn pop_due(&self, now: f64) -> Option<InFlight> {
        let mut queue = self.queue.borrow_mut();
        if queue.peek().is_some_and(|p| p.at <= now) {
            queue.pop()
        } else {
            None
        }
    }

    /// Starts the router unless it runs. It lives until the run ends, as system tasks do.
    fn ensure_router(&self) {
        if self.router_running.get() {
            return;
        }
        let Some(net) = self.this.upgrade() else {
            return;
        };
        // During the run's teardown no task may start: the packets stay where they are.
        if spawn_system_task("trio_test::FakeNet packet delivery", route_packets(net)).is_ok() {
            self.router_running.set(true);
        }
    }

    // ---- bindings ----

    fn conflicts(&self, proto: Proto, addr: SocketAddr) -> bool {
        self.bound.borrow().iter().any(|&(p, b)| {
            p == proto
                && b.port() == addr.port()
                && b.is_ipv4() == addr.is_ipv4()
                && (b.ip() == addr.ip() || b.ip().is_unspecified() || addr.ip().is_unspecified())
        })
    }

    /// Binds `addr` (port 0: the next free port from 50000): the address bound, or
    /// `EADDRINUSE`.
    pub(super) fn bind(&self, proto: Proto, addr: SocketAddr) -> Result<SocketAddr> {
        let addr = if addr.port() == 0 {
            let mut found = None;
            for _ in FIRST_EPHEMERAL_PORT..=u16::MAX {
                let port = self.next_port.get();
                self.next_port.set(if port == u16::MAX {
                    FIRST_EPHEMERAL_PORT
                } else {
                    port + 1
                });
                let candidate = SocketAddr::new(addr.ip(), port);
                if !self.conflicts(proto, candidate) {
                    found = Some(candidate);
                    break;
                }
            }
            found.ok_or_else(|| os_error(libc::EADDRINUSE))?
        } else if self.conflicts(proto, addr) {
            return Err(os_error(libc::EADDRINUSE));
        } else {
            addr
        };
        self.bound.borrow_mut().insert((proto, addr));
        Ok(addr)
    }

    pub(super) fn unbind(&self, proto: Proto, addr: SocketAddr) {
        self.bound.borrow_mut().remove(&(proto, addr));
    }

    /// The listener a request to `dst` reaches: bound to `dst`, or to its family's wildcard.
    pub(super) fn listener_for(&self, dst: SocketAddr) -> Option<Rc<Listen>> {
        let listeners = self.listeners.borrow();
        let any = SocketAddr::new(wildcard(Domain::for_address(dst)).ip(), dst.port());
        listeners.get(&dst).or_else(|| listeners.get(&any)).cloned()
    }
}

/// The router: delivers each queued packet when it is due, in the order due (then sent), and
/// sleeps until the next one or until a packet is queued.
fn route_packets(net: Rc<Net>) -> impl Future<Output = Result<()>> {
    /// Marks the router stopped when its future goes, even if never polled.
    struct Running(Rc<Net>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.router_running.set(false);
        }
    }
    let running = Running(net);
    async move {
        let net = &running.0;
        let result: Result<()> = async {
            loop {
                let now = trio::current_time()?;
                while let Some(item) = net.pop_due(now) {
                    if let Some(sender) = item.sender.as_ref().and_then(Weak::upgrade) {
                        sender.pending_out.set(sender.pending_out.get() - 1);
                    }
                    net.deliver(item.src, item.dst, item.packet);
                }
                let next = net.queue.borrow().peek().map(|p| p.at);
                let lot = net.router_lot.clone();
                match next {
                    Some(at) => {
                        trio::move_on_at(at, async move { lot.park().await }).await?;
                    }
                    None => lot.park().await?,
                }
            }
        }
        .await;
        match result {
            // The run is ending.
            Err(e) if e.is_cancelled() => Ok(()),
            other => other,
        }
    }
}
