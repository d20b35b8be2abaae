//! The fake network as trio's hooks see it: the socket factory and the hostname resolver.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use trio::Result;
use trio::socket::{
    AI_CANONNAME, AI_PASSIVE, AddrInfo, AddrInfoHints, Domain, HostnameResolver, LocalBoxFuture,
    LookupError, NI_NAMEREQD, NI_NUMERICHOST, Protocol, Socket, SocketFactory, Type,
};

use super::tcp::StreamSocket;
use super::udp::DatagramSocket;
use super::wire::{Net, loopback, os_error, usage, wildcard};

/// How a host name is stored and looked up: ASCII lower case, without a trailing dot.
pub(super) fn host_key(name: &str) -> Result<String> {
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
pub(super) struct Factory(pub(super) Rc<Net>);

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
pub(super) struct Resolver(pub(super) Rc<Net>);

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
