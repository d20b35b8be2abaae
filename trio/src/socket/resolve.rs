//! Name resolution: Trio's `getaddrinfo` / `getnameinfo`, and the hook that replaces the
//! resolver (`set_custom_hostname_resolver`).
//!
//! A numeric host (an IP address, or none) resolves in the calling thread: `getaddrinfo` with
//! `AI_NUMERICHOST | AI_NUMERICSERV` cannot block. Anything else is a name: a non-ASCII name
//! is IDNA-encoded (UTS #46, with the `idna` feature), then handed to the custom resolver if
//! one is set, or to the system's `getaddrinfo` in a worker thread, abandoned if the caller is
//! cancelled (a slow DNS server never blocks the run, nor a cancellation).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use socket2::{Domain, Protocol, Type};

use crate::lowlevel::{RunVar, cancel_shielded_checkpoint, checkpoint_if_cancelled};
use crate::sys::net::{self as netdb, GaiError, RawAddrInfo};
use crate::{Error, Result, UsageError};

/// `AI_PASSIVE`: addresses to bind to (a `None` host gives the wildcard addresses).
pub const AI_PASSIVE: i32 = libc::AI_PASSIVE;
/// `AI_CANONNAME`: fill in [`AddrInfo::canonical_name`].
pub const AI_CANONNAME: i32 = libc::AI_CANONNAME;
/// `AI_NUMERICHOST`: the host must be an address; never look a name up.
pub const AI_NUMERICHOST: i32 = libc::AI_NUMERICHOST;
/// `AI_NUMERICSERV`: the service is a port number.
pub const AI_NUMERICSERV: i32 = libc::AI_NUMERICSERV;
/// `AI_ADDRCONFIG`: only families the host has an address of.
pub const AI_ADDRCONFIG: i32 = libc::AI_ADDRCONFIG;
/// `AI_V4MAPPED`: IPv4 addresses as IPv4-mapped IPv6 when asking for IPv6.
pub const AI_V4MAPPED: i32 = libc::AI_V4MAPPED;
/// `NI_NUMERICHOST`: `getnameinfo` returns the address, not a name.
pub const NI_NUMERICHOST: i32 = libc::NI_NUMERICHOST;
/// `NI_NUMERICSERV`: `getnameinfo` returns the port number, not a service name.
pub const NI_NUMERICSERV: i32 = libc::NI_NUMERICSERV;
/// `NI_NAMEREQD`: `getnameinfo` fails if the address has no name.
pub const NI_NAMEREQD: i32 = libc::NI_NAMEREQD;

/// One result of [`getaddrinfo`]: what to create a socket with, and where to connect or bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address family (`Domain::IPV4` or `Domain::IPV6`).
    pub domain: Domain,
    /// The socket type.
    pub socket_type: Type,
    /// The protocol (`None`: the default for the type).
    pub protocol: Option<Protocol>,
    /// The canonical name, if `AI_CANONNAME` was asked for (on the first entry).
    pub canonical_name: Option<String>,
    /// The address.
    pub addr: SocketAddr,
}

impl AddrInfo {
    /// An entry for `addr` with the given type and the default protocol (for custom
    /// resolvers).
    pub fn new(addr: SocketAddr, socket_type: Type) -> AddrInfo {
        AddrInfo {
            domain: Domain::for_address(addr),
            socket_type,
            protocol: None,
            canonical_name: None,
            addr,
        }
    }
}

/// What [`getaddrinfo`] should return: `getaddrinfo`'s hints. The default asks for every
/// family and type, with no flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrInfoHints {
    /// Only this family (`None`: any, `AF_UNSPEC`).
    pub family: Option<Domain>,
    /// Only this socket type (`None`: any).
    pub socket_type: Option<Type>,
    /// Only this protocol (`None`: any).
    pub protocol: Option<Protocol>,
    /// `AI_*` flags.
    pub flags: i32,
}

impl AddrInfoHints {
    /// Hints for stream sockets of any family (what connecting over TCP asks).
    pub fn stream() -> Self {
        AddrInfoHints {
            socket_type: Some(Type::STREAM),
            ..Self::default()
        }
    }

    /// The same hints with `flags` added.
    pub fn with_flags(mut self, flags: i32) -> Self {
        self.flags |= flags;
        self
    }
}

/// A name lookup failed: `getaddrinfo`'s `EAI_*` code and message (Python's `gaierror`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupError {
    code: i32,
    message: String,
}

impl LookupError {
    /// An error with an `EAI_*` code and a message (for custom resolvers).
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        LookupError {
            code,
            message: message.into(),
        }
    }

    /// The `EAI_*` code (`libc::EAI_NONAME` for "no such name").
    pub fn code(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "name lookup failed: {} (EAI code {})",
            self.message, self.code
        )
    }
}

impl std::error::Error for LookupError {}

fn from_gai(e: GaiError, what: impl fmt::Display) -> Error {
    match e {
        GaiError::Gai(code, message) => Error::new(LookupError {
            code,
            message: format!("{message}: {what}"),
        }),
        GaiError::System(e) => Error::new(e),
    }
}

/// A boxed, `!Send` future: what [`HostnameResolver`]'s methods return.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Resolves host names instead of the system (Trio's `trio.abc.HostnameResolver`); install
/// one with [`set_custom_hostname_resolver`]. It sees only real names: numeric hosts never
/// reach it, and non-ASCII names arrive IDNA-encoded.
pub trait HostnameResolver {
    /// As [`getaddrinfo`]. The future should be a checkpoint.
    fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: u16,
        hints: AddrInfoHints,
    ) -> LocalBoxFuture<Result<Vec<AddrInfo>>>;

    /// As [`getnameinfo`]. The future should be a checkpoint.
    fn getnameinfo(&self, addr: SocketAddr, flags: i32)
    -> LocalBoxFuture<Result<(String, String)>>;
}

static RESOLVER: RunVar<Option<Rc<dyn HostnameResolver>>> =
    RunVar::with_default("trio.socket.hostname_resolver", || None);

/// Replaces the resolver behind [`getaddrinfo`] and [`getnameinfo`] for the rest of the
/// current run (Trio's `set_custom_hostname_resolver`); `None` restores the system's. Returns
/// the previous one. Meant for tests, or a resolver of your own. Fails outside a run. Not a
/// checkpoint.
pub fn set_custom_hostname_resolver(
    resolver: Option<Rc<dyn HostnameResolver>>,
) -> Result<Option<Rc<dyn HostnameResolver>>> {
    RESOLVER.with(|slot| std::mem::replace(slot, resolver))
}

fn current_resolver() -> Option<Rc<dyn HostnameResolver>> {
    RESOLVER.with(|slot| slot.clone()).ok().flatten()
}

fn convert(raw: Vec<RawAddrInfo>) -> Vec<AddrInfo> {
    raw.into_iter()
        .map(|r| AddrInfo {
            domain: Domain::from(r.family),
            socket_type: Type::from(r.socktype),
            protocol: (r.protocol != 0).then(|| Protocol::from(r.protocol)),
            canonical_name: r.canonname,
            addr: r.addr,
        })
        .collect()
}

fn raw_hints(hints: &AddrInfoHints) -> (i32, i32, i32) {
    (
        hints.family.map_or(libc::AF_UNSPEC, i32::from),
        hints.socket_type.map_or(0, i32::from),
        hints.protocol.map_or(0, i32::from),
    )
}

/// The host as the resolver should see it: ASCII as it is, anything else IDNA-encoded.
fn encode_host(host: &str) -> Result<String> {
    if host.is_ascii() {
        return Ok(host.to_string());
    }
    idna_encode(host)
}

#[cfg(feature = "idna")]
fn idna_encode(host: &str) -> Result<String> {
    // UTS #46 with STD3 rules (what DNS names allow), transitional processing off (IDNA 2008
    // semantics for ß, ς, ZWJ, ZWNJ), as Trio's `idna.encode(host, uts46=True)`.
    idna::domain_to_ascii_cow(host.as_bytes(), idna::AsciiDenyList::STD3)
        .map(|ascii| ascii.into_owned())
        .map_err(|_| {
            Error::new(UsageError::new(format!(
                "host name {host:?} is not a valid internationalised domain name (UTS #46)"
            )))
        })
}

#[cfg(not(feature = "idna"))]
fn idna_encode(host: &str) -> Result<String> {
    Err(Error::new(UsageError::new(format!(
        "host name {host:?} is not ASCII: enable trio's `idna` feature to look up \
         internationalised domain names"
    ))))
}

/// Looks up `host` and `port` (Trio's `trio.socket.getaddrinfo`): the addresses to create
/// sockets for and connect (or, with [`AI_PASSIVE`], bind) to.
///
/// `host` may be an IP address (resolved at once, without a thread), a name (resolved by the
/// system in a worker thread, or by the custom resolver), or `None` (the loopback addresses,
/// or with `AI_PASSIVE` the wildcard ones). Non-ASCII names are IDNA 2008 / UTS #46 encoded
/// first (feature `idna`). An empty result is an error, as from the system.
///
/// ```
/// use trio::socket::{AddrInfoHints, getaddrinfo};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let found = getaddrinfo(Some("127.0.0.1"), 80, AddrInfoHints::stream()).await?;
///     assert_eq!(found[0].addr, "127.0.0.1:80".parse()?);
///     Ok(())
/// })
/// # }
/// ```
///
/// Errors: [`LookupError`] for what `getaddrinfo` reports (no such name, ...).
///
/// # Checkpoint
/// Yes: a cancel point first, and always a schedule point.
///
/// # Cancel safety
/// Safe: cancelled while a worker thread looks the name up, it returns at once and the thread
/// finishes on its own.
pub async fn getaddrinfo(
    host: Option<&str>,
    port: u16,
    hints: AddrInfoHints,
) -> Result<Vec<AddrInfo>> {
    checkpoint_if_cancelled().await?;
    let (family, socktype, protocol) = raw_hints(&hints);
    let service = netdb::c_string(&port.to_string());
    let c_host = match host {
        Some(host) => Some(netdb::c_string(host).ok_or_else(|| {
            Error::new(UsageError::new(format!(
                "host name {host:?} contains a NUL byte"
            )))
        })?),
        None => None,
    };
    // A numeric host cannot block: try that first, in this thread.
    let numeric = netdb::getaddrinfo(
        c_host.as_deref(),
        service.as_deref(),
        family,
        socktype,
        protocol,
        hints.flags | AI_NUMERICHOST | AI_NUMERICSERV,
    );
    match numeric {
        Ok(found) => {
            cancel_shielded_checkpoint().await;
            return Ok(convert(found));
        }
        Err(GaiError::Gai(code, _)) if code == libc::EAI_NONAME && host.is_some() => {}
        Err(e) => {
            cancel_shielded_checkpoint().await;
            return Err(from_gai(e, describe(host, port)));
        }
    }
    let host = encode_host(host.unwrap_or_default())?;
    if let Some(resolver) = current_resolver() {
        return resolver.getaddrinfo(Some(&host), port, hints).await;
    }
    let what = describe(Some(&host), port);
    let found = in_worker(move || {
        let c_host = netdb::c_string(&host);
        let service = netdb::c_string(&port.to_string());
        netdb::getaddrinfo(
            c_host.as_deref(),
            service.as_deref(),
            family,
            socktype,
            protocol,
            hints.flags,
        )
    })
    .await?;
    found.map(convert).map_err(|e| from_gai(e, what))
}

fn describe(host: Option<&str>, port: u16) -> String {
    match host {
        Some(host) if host.contains(':') => format!("[{host}]:{port}"),
        Some(host) => format!("{host}:{port}"),
        None => format!("(no host):{port}"),
    }
}

/// Looks up the name of `addr` (Trio's `trio.socket.getnameinfo`): host and service names, or
/// numbers with `NI_NUMERICHOST` / `NI_NUMERICSERV`.
///
/// # Checkpoint
/// Yes: it always runs in a worker thread (or the custom resolver).
///
/// # Cancel safety
/// Safe: cancelled, it returns at once and the thread finishes on its own.
pub async fn getnameinfo(addr: SocketAddr, flags: i32) -> Result<(String, String)> {
    if let Some(resolver) = current_resolver() {
        return resolver.getnameinfo(addr, flags).await;
    }
    in_worker(move || netdb::getnameinfo(&addr, flags))
        .await?
        .map_err(|e| from_gai(e, addr))
}

/// Runs the blocking `f` in a worker thread (`to_thread`, under the run's default limiter);
/// cancelled, it stops waiting for it: a slow lookup is abandoned, as Trio's is.
async fn in_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    crate::to_thread::Options::new()
        .abandon_on_cancel(true)
        .thread_name("trio-resolver")
        .run_sync(f)
        .await
}
