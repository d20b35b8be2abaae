//! TCP: [`open_tcp_stream`] with happy eyeballs (RFC 8305, Trio's
//! `_highlevel_open_tcp_stream.py`) and [`open_tcp_listeners`].
//!
//! Happy eyeballs: the addresses of the host are tried in the resolver's order (except that
//! the second attempt uses the other address family, RFC 6555 §5.4). Attempt i+1 starts when
//! attempt i fails or [`ConnectOptions::happy_eyeballs_delay`] after attempt i started,
//! whichever comes first; the first connection wins, and every other attempt is cancelled, its
//! socket closed. Each attempt owns its socket, so a cancelled attempt (or a cancelled call)
//! closes its socket when it ends.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use super::{SocketListener, SocketStream};
use crate::socket::{AI_PASSIVE, AddrInfo, AddrInfoHints, Domain, SockAddr, Socket, getaddrinfo};
use crate::sync::Event;
use crate::{CancelScope, Error, IntoSeconds, Result, UsageError};

/// How long an attempt may run before the next one starts (Trio's `DEFAULT_DELAY`): 250 ms.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: f64 = 0.25;

/// Options of [`open_tcp_stream_with`].
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    happy_eyeballs_delay: f64,
    local_address: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            happy_eyeballs_delay: DEFAULT_HAPPY_EYEBALLS_DELAY,
            local_address: None,
        }
    }
}

impl ConnectOptions {
    /// Trio's defaults: a 250 ms delay, the system picks the source address.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long to wait for an attempt before starting the next one in parallel (default
    /// 0.25 s), in seconds or as any [`IntoSeconds`] (a `Duration`, say). `f64::INFINITY`
    /// tries one address at a time. NaN or a negative delay makes the connect fail with a
    /// [`UsageError`].
    pub fn happy_eyeballs_delay(mut self, seconds: impl IntoSeconds) -> Self {
        self.happy_eyeballs_delay = seconds.into_seconds();
        self
    }

    /// The local IP address or host name to connect from (bound with port 0 before
    /// connecting; a name is resolved for each attempt's family). An IPv4 address cannot
    /// reach IPv6 hosts and the reverse: `"0.0.0.0"` or `"::"` force a family. An attempt
    /// whose address cannot be bound (or whose name does not resolve) fails like a refused
    /// connection. On Linux the socket gets `IP_BIND_ADDRESS_NO_PORT`, so the bind uses up no
    /// port before the connect.
    pub fn local_address(mut self, address: impl Into<String>) -> Self {
        self.local_address = Some(address.into());
        self
    }
}

/// Every attempt of [`open_tcp_stream`] failed: the message names the host, and
/// [`attempts`](Self::attempts) holds each address with its error. It travels inside an
/// `io::Error` (whose kind is the attempts' common kind, or `Other`), as Trio raises an
/// `OSError` from an `ExceptionGroup`.
#[derive(Debug)]
pub struct ConnectError {
    message: String,
    attempts: Vec<(SocketAddr, Error)>,
}

impl ConnectError {
    /// Each address tried, with the error its attempt failed with, in the order they failed.
    pub fn attempts(&self) -> &[(SocketAddr, Error)] {
        &self.attempts
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for (addr, e) in &self.attempts {
            write!(f, "; {addr}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

/// `host:port`, with brackets around an IPv6 address (Trio's `format_host_port`).
pub(crate) fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Moves the first address of a family other than the first one's to the second place
/// (RFC 6555 §5.4: the first two attempts use different families).
pub(crate) fn reorder_for_rfc_6555_section_5_4<T>(
    targets: &mut Vec<T>,
    family: impl Fn(&T) -> Domain,
) {
    let Some(first) = targets.first().map(&family) else {
        return;
    };
    if let Some(i) = targets.iter().position(|t| family(t) != first) {
        if i != 1 {
            let moved = targets.remove(i);
            targets.insert(1, moved);
        }
    }
}

/// Connects to `host` (a name or an IP address) on `port` over TCP (Trio's
/// `open_tcp_stream`), with happy eyeballs between the host's addresses and Trio's defaults
/// (see [`open_tcp_stream_with`]).
///
/// # Checkpoint
/// Yes: it resolves the name and waits for a connection.
///
/// # Cancel safety
/// Cancelled, it closes every socket it opened.
pub async fn open_tcp_stream(host: &str, port: u16) -> Result<SocketStream> {
    open_tcp_stream_with(host, port, &ConnectOptions::default()).await
}

/// [`open_tcp_stream`] with options: the happy-eyeballs delay and a local address.
///
/// Errors: what [`getaddrinfo`] fails with; an `io::Error` holding a [`ConnectError`] when
/// every attempt failed (a `local_address` that no attempt could bind included); a
/// [`UsageError`] for an empty host or a negative delay.
///
/// # Checkpoint
/// Yes: it resolves the name and waits for a connection.
///
/// # Cancel safety
/// Cancelled, it closes every socket it opened.
pub async fn open_tcp_stream_with(
    host: &str,
    port: u16,
    options: &ConnectOptions,
) -> Result<SocketStream> {
    if host.is_empty() {
        return Err(Error::new(UsageError::new(
            "open_tcp_stream: the host is empty",
        )));
    }
    let delay = options.happy_eyeballs_delay;
    if delay.is_nan() || delay < 0.0 {
        return Err(Error::new(UsageError::new(format!(
            "open_tcp_stream: happy_eyeballs_delay must be >= 0 (got {delay})"
        ))));
    }
    let mut targets = getaddrinfo(Some(host), port, AddrInfoHints::stream()).await?;
    if targets.is_empty() {
        return Err(Error::new(io::Error::other(format!(
            "no results found for hostname lookup: {}",
            format_host_port(host, port)
        ))));
    }
    reorder_for_rfc_6555_section_5_4(&mut targets, |t| t.domain);

    let race = Rc::new(Race {
        winner: RefCell::new(None),
        failures: RefCell::new(Vec::new()),
        local_address: options.local_address.clone(),
    });
    let attempts = race.clone();
    crate::open_nursery(|nursery| async move {
        for target in targets {
            let failed = Rc::new(Event::new());
            nursery.start_soon(attempt(
                attempts.clone(),
                target,
                failed.clone(),
                nursery.cancel_scope(),
            ))?;
            crate::move_on_after(delay, async move { failed.wait().await }).await?;
        }
        Ok(())
    })
    .await?;

    if let Some(socket) = race.winner.borrow_mut().take() {
        return SocketStream::new(socket);
    }
    let failures = std::mem::take(&mut *race.failures.borrow_mut());
    let kinds: Vec<io::ErrorKind> = failures
        .iter()
        .filter_map(|(_, e)| e.downcast_ref::<io::Error>().map(io::Error::kind))
        .collect();
    let kind = match kinds.first() {
        Some(&k) if kinds.len() == failures.len() && kinds.iter().all(|&o| o == k) => k,
        _ => io::ErrorKind::Other,
    };
    Err(Error::new(io::Error::new(
        kind,
        ConnectError {
            message: format!(
                "all attempts to connect to {} failed",
                format_host_port(host, port)
            ),
            attempts: failures,
        },
    )))
}

/// What the attempts of one `open_tcp_stream` share.
struct Race {
    winner: RefCell<Option<Socket>>,
    failures: RefCell<Vec<(SocketAddr, Error)>>,
    local_address: Option<String>,
}

/// One connection attempt: on success it keeps the socket and cancels the others; on a
/// system error it records the error and lets the next attempt start early.
async fn attempt(
    race: Rc<Race>,
    target: AddrInfo,
    failed: Rc<Event>,
    scope: CancelScope,
) -> Result<()> {
    match connect_one(&race, &target).await {
        Ok(socket) => {
            *race.winner.borrow_mut() = Some(socket);
            scope.cancel_with_reason("successfully found a socket");
            Ok(())
        }
        Err(e) if e.is::<io::Error>() => {
            race.failures.borrow_mut().push((target.addr, e));
            failed.set();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn connect_one(race: &Race, target: &AddrInfo) -> Result<Socket> {
    let socket = Socket::new(target.domain, target.socket_type, target.protocol)?;
    if let Some(local) = &race.local_address {
        bind_local(&socket, local, target).await?;
    }
    socket.connect(&SockAddr::from(target.addr)).await?;
    Ok(socket)
}

/// Binds the source address of an attempt (port 0), as Trio's `sock.bind((local_address, 0))`:
/// a name resolves in the attempt's family, and any failure is the attempt's `io::Error`.
async fn bind_local(socket: &Socket, local: &str, target: &AddrInfo) -> Result<()> {
    let remote = target.addr;
    let incompatible = || {
        Error::new(io::Error::other(format!(
            "local_address={local:?} is incompatible with remote address {remote}"
        )))
    };
    let ip = match local.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let hints = AddrInfoHints {
                family: Some(target.domain),
                socket_type: Some(target.socket_type),
                protocol: None,
                flags: AI_PASSIVE,
            };
            match getaddrinfo(Some(local), 0, hints).await {
                Ok(found) => match found.first() {
                    Some(info) => info.addr.ip(),
                    None => return Err(incompatible()),
                },
                Err(e) if e.is_cancelled() => return Err(e),
                Err(_) => return Err(incompatible()),
            }
        }
    };
    // An optimisation only (Trio ignores its failure too).
    #[cfg(target_os = "linux")]
    if let Ok(sys) = socket.socket2() {
        use std::os::fd::AsRawFd;
        let _ = crate::sys::net::set_bind_address_no_port(sys.as_raw_fd());
    }
    socket
        .bind(&SockAddr::from(SocketAddr::new(ip, 0)))
        .map_err(|_| incompatible())
}

/// The listen backlog Trio asks for: as large as the system allows (it clamps).
fn compute_backlog(backlog: Option<u32>) -> i32 {
    backlog.map_or(0xFFFF, |b| b.min(0xFFFF) as i32)
}

/// Opens TCP listeners on `port` (Trio's `open_tcp_listeners`): one per address `host`
/// resolves to with `AI_PASSIVE` — for `None`, the wildcard address of each family the system
/// has (`0.0.0.0` and `::`). Port 0 lets the system choose a port (per listener). IPv6
/// listeners are `IPV6_V6ONLY`, every one has `SO_REUSEADDR`, and the backlog is the
/// largest the system allows (see [`open_tcp_listeners_with`]).
///
/// # Checkpoint
/// Yes: it resolves `host`.
///
/// # Cancel safety
/// Cancelled, it has opened nothing (or closed what it opened).
pub async fn open_tcp_listeners(port: u16, host: Option<&str>) -> Result<Vec<SocketListener>> {
    open_tcp_listeners_with(port, host, None).await
}

/// [`open_tcp_listeners`] with a listen backlog (`None`: the system's largest).
///
/// Errors: what [`getaddrinfo`], `socket`, `bind` or `listen` fail with (a family the system
/// lacks is skipped if another one works).
///
/// # Checkpoint
/// Yes: it resolves `host`.
///
/// # Cancel safety
/// Cancelled, it has opened nothing (or closed what it opened).
pub async fn open_tcp_listeners_with(
    port: u16,
    host: Option<&str>,
    backlog: Option<u32>,
) -> Result<Vec<SocketListener>> {
    let backlog = compute_backlog(backlog);
    let hints = AddrInfoHints::stream().with_flags(AI_PASSIVE);
    let addresses = getaddrinfo(host, port, hints).await?;
    let mut listeners = Vec::new();
    let mut unsupported = Vec::new();
    for info in addresses {
        let socket = match Socket::new(info.domain, info.socket_type, info.protocol) {
            Ok(socket) => socket,
            Err(e)
                if e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.raw_os_error() == Some(libc::EAFNOSUPPORT)) =>
            {
                unsupported.push(e);
                continue;
            }
            // Listeners opened so far close when `listeners` drops.
            Err(e) => return Err(e),
        };
        if let Ok(sys) = socket.socket2() {
            sys.set_reuse_address(true)?;
            if info.domain == Domain::IPV6 {
                sys.set_only_v6(true)?;
            }
        }
        socket.bind(&SockAddr::from(info.addr))?;
        socket.listen(backlog)?;
        listeners.push(SocketListener::new(socket)?);
    }
    if listeners.is_empty() && !unsupported.is_empty() {
        // Trio's message, with each family's error (Trio chains them as an ExceptionGroup).
        let errors: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        return Err(Error::new(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "This system doesn't support any of the kinds of socket that that address could \
                 use: {}",
                errors.join("; ")
            ),
        )));
    }
    Ok(listeners)
}
