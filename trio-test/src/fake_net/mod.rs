//! The fake network: [`FakeNet`] (its documentation describes the model), its controls, and
//! the hooks [`FakeNet::enable`] installs (the socket factory and the hostname resolver).
//! `wire.rs` carries packets, `tcp.rs` and `udp.rs` are the sockets.

mod tcp;
mod udp;
mod wire;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::rc::Rc;

use trio::socket::{
    AI_CANONNAME, AI_PASSIVE, AddrInfo, AddrInfoHints, Domain, HostnameResolver, LocalBoxFuture,
    LookupError, NI_NAMEREQD, NI_NUMERICHOST, Protocol, Socket, SocketFactory, Type,
    set_custom_hostname_resolver, set_custom_socket_factory,
};
use trio::{IntoSeconds, Result};

use tcp::StreamSocket;
use udp::DatagramSocket;
use wire::{Net, loopback, os_error, usage, wildcard};

/// A fake network for the tests of networking code (Trio's `trio.testing._fake_net`, grown to
/// what Rust users look for in turmoil): host names, TCP-like streams and UDP datagrams, with
/// latency, loss and refused connections, on the run's clock. A cheap handle: clones control
/// the same network.
///
/// Build it, describe the hosts, [`enable`](Self::enable) it in the run, then use trio's
/// networking API as usual. Its controls (latency, loss, refusal, partitions, resets) take
/// effect at once, also in the middle of a test.
///
/// ```
/// use trio::net::{ServeOptions, SocketListener, SocketStream, open_tcp_listeners, open_tcp_stream, serve_listeners};
/// use trio::stream::prelude::*;
/// use trio_test::{FakeNet, MockClock};
///
/// async fn shout(stream: SocketStream) -> trio::Result<()> {
///     let message = stream.receive_some(1024).await?;
///     stream.send_all(&message.to_ascii_uppercase()).await
/// }
///
/// # fn main() -> trio::Result<()> {
/// let clock = MockClock::new().with_autojump_threshold(0)?;
/// trio::RunConfig::new().clock(clock).run(async {
///     let net = FakeNet::new();
///     net.add_host("db.example", ["10.0.0.5", "fd00::5"])?;
///     net.set_latency(0.25)?; // each way
///     net.enable()?;
///
///     trio::open_nursery(|nursery| async move {
///         let listeners = open_tcp_listeners(5432, None).await?; // 0.0.0.0 and ::
///         nursery.start_soon(serve_listeners(shout, listeners, ServeOptions::new()))?;
///
///         let start = trio::current_time()?;
///         let client = open_tcp_stream("db.example", 5432).await?;
///         assert_eq!(trio::current_time()? - start, 0.5); // one round trip
///         client.send_all(b"hello").await?;
///         assert_eq!(client.receive_some(1024).await?, b"HELLO");
///         assert_eq!(trio::current_time()? - start, 1.0); // and another
///
///         net.refuse("10.0.0.5".parse::<std::net::IpAddr>()?);
///         let refused = open_tcp_stream("10.0.0.5", 5432).await.unwrap_err();
///         assert!(refused.to_string().contains("refused"));
///         nursery.cancel_scope().cancel();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
///
/// # How it plugs in
/// [`FakeNet::enable`] installs it through trio's per-run hooks,
/// [`set_custom_socket_factory`] and [`set_custom_hostname_resolver`]: from then on
/// [`Socket::new`](trio::socket::Socket::new) makes fake IPv4 and IPv6 sockets and
/// [`getaddrinfo`](trio::socket::getaddrinfo) answers names from the hosts table, so
/// everything built on them — [`open_tcp_stream`](trio::net::open_tcp_stream) with its happy
/// eyeballs, [`open_tcp_listeners`](trio::net::open_tcp_listeners),
/// [`serve_listeners`](trio::net::serve_listeners), [`SocketStream`](trio::net::SocketStream)
/// — runs unchanged, deterministically, without a real socket. Unix sockets stay real.
///
/// # The model
/// - **One machine with every address.** A socket may bind any IP address; a connection or a
///   datagram to an address reaches the socket bound to it, or to the wildcard address of its
///   family (`0.0.0.0`, `::`) on that port. Two sockets of one kind cannot bind one port where
///   their addresses overlap (a wildcard overlaps every address of its family): `EADDRINUSE`,
///   as without `SO_REUSEADDR`. Destinations `0.0.0.0` and `::` mean loopback, as on Linux. A
///   socket that connects or sends unbound is bound to the loopback address of its family and
///   a port from 50000 up.
/// - **Packets.** Every connection request, answer, send, end-of-file, reset and datagram is a
///   packet from one socket address to another. It arrives after the *latency* of the pair
///   (the default of [`set_latency`](FakeNet::set_latency), or more for an address given to
///   [`set_latency_for`](FakeNet::set_latency_for)) unless it is *lost*: to or from a
///   [partitioned](FakeNet::partition) address, one of the next
///   [`drop_next`](FakeNet::drop_next) packets, or by chance ([`set_loss`](FakeNet::set_loss),
///   a seeded generator).
/// - **Streams are reliable and ordered.** A lost TCP packet is sent again after Linux's
///   retransmission timeout (1 s for a connection request and its answer, `max(0.2 s, two
///   round trips)` for the rest, doubling with each loss, at most 120 s), and what a socket
///   sends arrives in the order it was sent. After 6 lost connection requests in a row (127 s)
///   `connect` fails with `ETIMEDOUT`; after 15 lost retransmissions a connection is dropped
///   with `ETIMEDOUT`. Each send is one packet. A lost datagram is gone.
/// - **Connections.** A request to an address nothing listens on, or that is
///   [refused](FakeNet::refuse), is answered with a reset: `connect` fails with `ECONNREFUSED`
///   one round trip later. Otherwise TCP's three-way handshake: `connect` returns when the
///   listener's answer arrives (one round trip), and the listener can accept the connection
///   when the client's acknowledgement arrives (half a round trip later), so a connection
///   attempt abandoned early (happy eyeballs' losers) never reaches `accept`. A listener whose
///   accept queue holds more than its backlog ignores a request, which is sent again as if
///   lost. Each direction carries [`set_buffer_size`](FakeNet::set_buffer_size) bytes (64 KiB)
///   that the receiver has not read yet; beyond that `send` waits. `shutdown(Write)` sends
///   end-of-file; closing a socket whose received data was not read resets the connection (as
///   Linux does), and data that arrives at a closed socket is answered with a reset: the
///   sender's next operation fails with `ECONNRESET`, later sends with `EPIPE`.
///   [`reset_connections`](FakeNet::reset_connections) aborts connections from outside.
/// - **Errors** are the system's: `io::Error`s with the errno a real socket gives
///   (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, `ETIMEDOUT`, `EADDRINUSE`, ...), so the code under
///   test handles the errors it will meet; `trio::net` turns them into its own as usual.
///   Socket options (`Socket::socket2`) and `sendmsg`/`recvmsg` are not available on fake
///   sockets (a `UsageError`).
/// - **Time** is the run's clock: with [`MockClock`](crate::MockClock) and autojump, a test
///   with a second of latency and a two-minute connect timeout runs at once, every packet in
///   its place. Packets in flight are delivered by a system task that the network starts when
///   it first needs one. Nothing here touches a real socket or sleeps in real time.
///
/// A `FakeNet` belongs to the run it is enabled in; its settings can change at any moment of
/// the run, and apply to packets sent afterwards.
#[derive(Clone)]
pub struct FakeNet {
    net: Rc<Net>,
}

impl Default for FakeNet {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.net.config.borrow();
        f.debug_struct("FakeNet")
            .field("hosts", &config.hosts)
            .field("latency", &config.latency)
            .field("loss", &config.loss)
            .field("statistics", &self.statistics())
            .finish_non_exhaustive()
    }
}

/// What a control of [`FakeNet`] applies to: every address, one host (an IP address, any
/// port), or one socket address. Made from `IpAddr`, `Ipv4Addr`, `Ipv6Addr` and the
/// `SocketAddr` types by `into()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetTarget {
    /// Every address.
    Any,
    /// Every port of one IP address.
    Host(IpAddr),
    /// One IP address and port.
    Addr(SocketAddr),
}

impl NetTarget {
    fn matches(&self, addr: SocketAddr) -> bool {
        match *self {
            NetTarget::Any => true,
            NetTarget::Host(ip) => addr.ip() == ip,
            NetTarget::Addr(a) => addr == a,
        }
    }
}

impl From<IpAddr> for NetTarget {
    fn from(ip: IpAddr) -> Self {
        NetTarget::Host(ip)
    }
}

impl From<Ipv4Addr> for NetTarget {
    fn from(ip: Ipv4Addr) -> Self {
        NetTarget::Host(ip.into())
    }
}

impl From<Ipv6Addr> for NetTarget {
    fn from(ip: Ipv6Addr) -> Self {
        NetTarget::Host(ip.into())
    }
}

impl From<SocketAddr> for NetTarget {
    fn from(addr: SocketAddr) -> Self {
        NetTarget::Addr(addr)
    }
}

impl From<SocketAddrV4> for NetTarget {
    fn from(addr: SocketAddrV4) -> Self {
        NetTarget::Addr(addr.into())
    }
}

impl From<SocketAddrV6> for NetTarget {
    fn from(addr: SocketAddrV6) -> Self {
        NetTarget::Addr(addr.into())
    }
}

/// An IP address for [`FakeNet::add_host`]: an `IpAddr`, `Ipv4Addr`, `Ipv6Addr`, or a string
/// to parse (a bad one is a `UsageError`).
pub trait IntoIpAddr {
    /// The address, or a `UsageError` saying why there is none.
    fn into_ip_addr(self) -> Result<IpAddr>;
}

impl IntoIpAddr for IpAddr {
    fn into_ip_addr(self) -> Result<IpAddr> {
        Ok(self)
    }
}

impl IntoIpAddr for Ipv4Addr {
    fn into_ip_addr(self) -> Result<IpAddr> {
        Ok(self.into())
    }
}

impl IntoIpAddr for Ipv6Addr {
    fn into_ip_addr(self) -> Result<IpAddr> {
        Ok(self.into())
    }
}

impl IntoIpAddr for &str {
    fn into_ip_addr(self) -> Result<IpAddr> {
        self.parse()
            .map_err(|_| usage(format!("{self:?} is not an IP address")))
    }
}

impl IntoIpAddr for String {
    fn into_ip_addr(self) -> Result<IpAddr> {
        self.as_str().into_ip_addr()
    }
}

/// Counts of what a [`FakeNet`] carried, from [`FakeNet::statistics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeNetStatistics {
    /// Packets put on the wire, retransmissions included.
    pub packets_sent: u64,
    /// Packets the network lost (partitions, `drop_next`, the loss rate).
    pub packets_lost: u64,
    /// Packets that arrived (whether a socket wanted them or not).
    pub packets_delivered: u64,
}

/// A non-negative, finite number of seconds, or a `UsageError` naming `what`.
fn seconds(what: &str, value: impl IntoSeconds) -> Result<f64> {
    let value = value.into_seconds();
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(usage(format!(
            "{what} must be a finite number of seconds, at least 0 (got {value})"
        )))
    }
}

impl FakeNet {
    /// A network with no latency, no loss, 64 KiB per direction of a connection, and one host
    /// name, `localhost` (`::1`, then `127.0.0.1`).
    pub fn new() -> Self {
        FakeNet { net: Net::new() }
    }

    /// Installs the network in the current run (Trio's `FakeNet.enable`): from now on
    /// [`Socket::new`](trio::socket::Socket::new) makes this network's sockets for IPv4 and
    /// IPv6 (real ones for Unix sockets), and host names resolve from its hosts table. It
    /// replaces the run's socket factory and hostname resolver; sockets made before stay what
    /// they were. Fails outside a run. Not a checkpoint.
    pub fn enable(&self) -> Result<()> {
        set_custom_socket_factory(Some(Rc::new(Factory(self.net.clone()))))?;
        set_custom_hostname_resolver(Some(Rc::new(Resolver(self.net.clone()))))?;
        Ok(())
    }

    /// Makes `name` resolve to `addrs`, in this order (what `open_tcp_stream` tries first),
    /// replacing what it resolved to before. Names are matched without regard to ASCII case
    /// or a trailing dot. A non-ASCII name must be given in its IDNA form (`xn--...`), as the
    /// resolver receives it. Fails with a `UsageError` for an empty or non-ASCII name, a name
    /// that is an IP address (those never reach a resolver), or an address that does not
    /// parse.
    pub fn add_host<A: IntoIpAddr>(
        &self,
        name: &str,
        addrs: impl IntoIterator<Item = A>,
    ) -> Result<&Self> {
        let addrs = addrs
            .into_iter()
            .map(IntoIpAddr::into_ip_addr)
            .collect::<Result<Vec<_>>>()?;
        let key = host_key(name)?;
        let mut config = self.net.config.borrow_mut();
        config.hosts.retain(|(n, _)| *n != key);
        config.hosts.push((key, addrs));
        Ok(self)
    }

    /// Forgets the host `name`: looking it up fails with "no such name" (`EAI_NONAME`).
    pub fn remove_host(&self, name: &str) -> &Self {
        if let Ok(key) = host_key(name) {
            self.net
                .config
                .borrow_mut()
                .hosts
                .retain(|(n, _)| *n != key);
        }
        self
    }

    /// How long every packet takes, one way (default 0: packets arrive at once). A
    /// `UsageError` for a negative, infinite or NaN value.
    pub fn set_latency(&self, seconds_one_way: impl IntoSeconds) -> Result<&Self> {
        self.net.config.borrow_mut().latency = seconds("the latency", seconds_one_way)?;
        Ok(self)
    }

    /// How long packets to or from `target` take at least, one way: a slow host. A packet
    /// takes the largest of the default latency and the latencies set for its source and
    /// destination; setting 0 takes `target`'s own latency away.
    pub fn set_latency_for(
        &self,
        target: impl Into<NetTarget>,
        seconds_one_way: impl IntoSeconds,
    ) -> Result<&Self> {
        let target = target.into();
        let value = seconds("the latency", seconds_one_way)?;
        let mut config = self.net.config.borrow_mut();
        config.latency_for.retain(|(t, _)| *t != target);
        if value > 0.0 {
            config.latency_for.push((target, value));
        }
        Ok(self)
    }

    /// Loses each packet with this probability (default 0), drawn from a generator seeded by
    /// [`set_seed`](Self::set_seed): the same run loses the same packets. A `UsageError` for a
    /// probability outside `0.0..=1.0`.
    pub fn set_loss(&self, probability: f64) -> Result<&Self> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(usage(format!(
                "the loss probability must be between 0 and 1 (got {probability})"
            )));
        }
        self.net.config.borrow_mut().loss = probability;
        Ok(self)
    }

    /// Seeds the generator behind [`set_loss`](Self::set_loss).
    pub fn set_seed(&self, seed: u64) -> &Self {
        self.net.seed(seed);
        self
    }

    /// Loses the next `count` packets, whatever they are (a datagram is gone; a TCP packet is
    /// sent again after its retransmission timeout).
    pub fn drop_next(&self, count: u64) -> &Self {
        self.drop_next_to(NetTarget::Any, count)
    }

    /// Loses the next `count` packets sent to `target` (connection requests to a host, a
    /// server's answers to a client, ...).
    pub fn drop_next_to(&self, target: impl Into<NetTarget>, count: u64) -> &Self {
        if count > 0 {
            self.net
                .config
                .borrow_mut()
                .drops
                .push((target.into(), count));
        }
        self
    }

    /// Cuts `target` off: every packet to or from it is lost until [`heal`](Self::heal). A
    /// connection attempt to it fails after 127 s with `ETIMEDOUT`, a connection to it after
    /// its retransmissions run out.
    pub fn partition(&self, target: impl Into<NetTarget>) -> &Self {
        let target = target.into();
        let mut config = self.net.config.borrow_mut();
        if !config.partitioned.contains(&target) {
            config.partitioned.push(target);
        }
        self
    }

    /// Ends [`partition`](Self::partition) of `target` (and of nothing else).
    pub fn heal(&self, target: impl Into<NetTarget>) -> &Self {
        let target = target.into();
        self.net
            .config
            .borrow_mut()
            .partitioned
            .retain(|t| *t != target);
        self
    }

    /// Refuses connections to `target`, even where something listens: `connect` fails with
    /// `ECONNREFUSED` one round trip later. Datagrams are not affected.
    pub fn refuse(&self, target: impl Into<NetTarget>) -> &Self {
        let target = target.into();
        let mut config = self.net.config.borrow_mut();
        if !config.refused.contains(&target) {
            config.refused.push(target);
        }
        self
    }

    /// Ends [`refuse`](Self::refuse) of `target` (and of nothing else).
    pub fn stop_refusing(&self, target: impl Into<NetTarget>) -> &Self {
        let target = target.into();
        self.net
            .config
            .borrow_mut()
            .refused
            .retain(|t| *t != target);
        self
    }

    /// Aborts, at once, every TCP connection (and connection attempt) with an end on
    /// `target`, as a crashed middlebox would: both ends fail their next operation with
    /// `ECONNRESET`. Returns how many sockets it reset.
    pub fn reset_connections(&self, target: impl Into<NetTarget>) -> usize {
        tcp::reset_connections(&self.net, target.into())
    }

    /// How many bytes one direction of a connection holds that the receiver has not read
    /// (in flight or waiting), after which `send` waits (default 65536); also how many bytes
    /// of datagrams a socket queues before it drops new ones. Applies to sends from now on.
    /// A `UsageError` for 0.
    pub fn set_buffer_size(&self, bytes: usize) -> Result<&Self> {
        if bytes == 0 {
            return Err(usage("the buffer size must be at least 1 byte"));
        }
        self.net.config.borrow_mut().buffer_size = bytes;
        Ok(self)
    }

    /// How long a name lookup takes (default 0).
    pub fn set_lookup_delay(&self, seconds_per_lookup: impl IntoSeconds) -> Result<&Self> {
        self.net.config.borrow_mut().lookup_delay =
            seconds("the lookup delay", seconds_per_lookup)?;
        Ok(self)
    }

    /// What the network carried so far.
    pub fn statistics(&self) -> FakeNetStatistics {
        self.net.stats.get()
    }
}

// ---- the hooks `enable` installs ----

/// How a host name is stored and looked up: ASCII lower case, without a trailing dot.
fn host_key(name: &str) -> Result<String> {
    let key = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if key.is_empty() {
        return Err(usage("a host name must not be empty"));
    }
    if !key.is_ascii() {
        return Err(usage(format!(
            "host name {name:?} is not ASCII: give its IDNA form (xn--...), which is what the \
             resolver receives"
        )));
    }
    if key.parse::<IpAddr>().is_ok() {
        return Err(usage(format!(
            "{name:?} is an IP address, which getaddrinfo resolves without a resolver: it \
             needs no host entry"
        )));
    }
    Ok(key)
}

/// Makes the network's sockets (`trio.abc.SocketFactory`).
struct Factory(Rc<Net>);

impl SocketFactory for Factory {
    fn socket(&self, domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<Socket> {
        if domain == Domain::UNIX {
            // The network fakes IP only; Unix sockets stay what they are.
            return Socket::new_system(domain, ty, protocol);
        }
        if domain != Domain::IPV4 && domain != Domain::IPV6 {
            return Err(os_error(libc::EAFNOSUPPORT));
        }
        if ty == Type::STREAM && protocol.is_none_or(|p| p == Protocol::TCP) {
            Socket::from_custom(StreamSocket::new(self.0.clone(), domain))
        } else if ty == Type::DGRAM && protocol.is_none_or(|p| p == Protocol::UDP) {
            Socket::from_custom(DatagramSocket::new(self.0.clone(), domain))
        } else if ty == Type::STREAM || ty == Type::DGRAM {
            Err(os_error(libc::EPROTONOSUPPORT))
        } else {
            Err(os_error(libc::ESOCKTNOSUPPORT))
        }
    }
}

/// Answers names from the hosts table (`trio.abc.HostnameResolver`).
struct Resolver(Rc<Net>);

impl Resolver {
    fn lookup(&self, host: Option<&str>, port: u16, hints: AddrInfoHints) -> Result<Vec<AddrInfo>> {
        let (name, ips) = match host {
            Some(host) => {
                let key = host_key(host)?;
                let config = self.0.config.borrow();
                let found = config.hosts.iter().find(|(name, _)| *name == key);
                match found {
                    Some((name, ips)) => (Some(name.clone()), ips.clone()),
                    None => return Err(no_such_name(host)),
                }
            }
            // trio resolves a missing host itself; answer as the system would anyway.
            None if hints.flags & AI_PASSIVE != 0 => (
                None,
                vec![wildcard(Domain::IPV4).ip(), wildcard(Domain::IPV6).ip()],
            ),
            None => (None, vec![loopback(Domain::IPV6), loopback(Domain::IPV4)]),
        };
        let types = match hints.socket_type {
            Some(ty) => vec![ty],
            None => vec![Type::STREAM, Type::DGRAM],
        };
        let mut found = Vec::new();
        for ip in ips {
            let addr = SocketAddr::new(ip, port);
            if hints.family.is_some_and(|f| f != Domain::for_address(addr)) {
                continue;
            }
            for &ty in &types {
                let protocol = if ty == Type::STREAM {
                    Some(Protocol::TCP)
                } else if ty == Type::DGRAM {
                    Some(Protocol::UDP)
                } else {
                    None
                };
                if hints.protocol.is_some_and(|p| Some(p) != protocol) {
                    continue;
                }
                let mut info = AddrInfo::new(addr, ty);
                info.protocol = protocol;
                found.push(info);
            }
        }
        let Some(first) = found.first_mut() else {
            return Err(no_such_name(host.unwrap_or_default()));
        };
        if hints.flags & AI_CANONNAME != 0 {
            first.canonical_name = name;
        }
        Ok(found)
    }

    fn reverse(&self, addr: SocketAddr, flags: i32) -> Result<(String, String)> {
        let name = if flags & NI_NUMERICHOST != 0 {
            None
        } else {
            let config = self.0.config.borrow();
            config
                .hosts
                .iter()
                .find(|(_, ips)| ips.contains(&addr.ip()))
                .map(|(name, _)| name.clone())
        };
        let host = match name {
            Some(name) => name,
            None if flags & NI_NAMEREQD != 0 => return Err(no_such_name(&addr.ip().to_string())),
            None => addr.ip().to_string(),
        };
        Ok((host, addr.port().to_string()))
    }

    /// The lookup's delay, then a checkpoint.
    async fn wait(net: Rc<Net>) -> Result<()> {
        let delay = net.config.borrow().lookup_delay;
        if delay > 0.0 {
            trio::sleep(delay).await
        } else {
            trio::lowlevel::checkpoint().await
        }
    }
}

fn no_such_name(host: &str) -> trio::Error {
    trio::Error::new(LookupError::new(
        libc::EAI_NONAME,
        format!("the fake network has no host {host:?}"),
    ))
}

impl HostnameResolver for Resolver {
    fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: u16,
        hints: AddrInfoHints,
    ) -> LocalBoxFuture<Result<Vec<AddrInfo>>> {
        // Answered after the delay, from the table as it is then.
        let resolver = Resolver(self.0.clone());
        let host = host.map(str::to_string);
        Box::pin(async move {
            Self::wait(resolver.0.clone()).await?;
            resolver.lookup(host.as_deref(), port, hints)
        })
    }

    fn getnameinfo(
        &self,
        addr: SocketAddr,
        flags: i32,
    ) -> LocalBoxFuture<Result<(String, String)>> {
        let resolver = Resolver(self.0.clone());
        Box::pin(async move {
            Self::wait(resolver.0.clone()).await?;
            resolver.reverse(addr, flags)
        })
    }
}
