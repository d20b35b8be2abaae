//! `open_tcp_listeners` with a fake resolver and socket factory (Trio's
//! `test_highlevel_open_tcp_listeners.py`): the backlog passed to `listen`, every socket closed
//! when one fails, and families the system lacks.

mod common;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use common::run;
use trio::net::open_tcp_listeners_with;
use trio::socket::{
    AddrInfo, AddrInfoHints, CustomSocket, Domain, HostnameResolver, LocalBoxFuture, Protocol,
    SockAddr, Socket, SocketFactory, Type, set_custom_hostname_resolver, set_custom_socket_factory,
};

/// The fake system: the addresses a name has, the families that fail (with their errno), the
/// socket whose `listen` fails, and what each socket saw.
#[derive(Default)]
struct System {
    addresses: Vec<IpAddr>,
    fail_families: Vec<(Domain, i32)>,
    poison_listen_of: Option<usize>,
    created: Cell<usize>,
    backlogs: RefCell<Vec<i32>>,
    closed: RefCell<Vec<usize>>,
}

struct Fake(Rc<System>);

impl HostnameResolver for Fake {
    fn getaddrinfo(
        &self,
        _host: Option<&str>,
        port: u16,
        _hints: AddrInfoHints,
    ) -> LocalBoxFuture<trio::Result<Vec<AddrInfo>>> {
        let found = self
            .0
            .addresses
            .iter()
            .map(|&ip| AddrInfo::new(SocketAddr::new(ip, port), Type::STREAM))
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn getnameinfo(&self, _: SocketAddr, _: i32) -> LocalBoxFuture<trio::Result<(String, String)>> {
        Box::pin(async { Err(trio::Error::new(trio::UsageError::new("not here"))) })
    }
}

impl SocketFactory for Fake {
    fn socket(&self, domain: Domain, ty: Type, _: Option<Protocol>) -> trio::Result<Socket> {
        if let Some(&(_, errno)) = self.0.fail_families.iter().find(|(d, _)| *d == domain) {
            return Err(io::Error::from_raw_os_error(errno).into());
        }
        let n = self.0.created.get();
        self.0.created.set(n + 1);
        Socket::from_custom(FakeSocket {
            system: self.0.clone(),
            n,
            domain,
            ty,
        })
    }
}

struct FakeSocket {
    system: Rc<System>,
    n: usize,
    domain: Domain,
    ty: Type,
}

impl CustomSocket for FakeSocket {
    fn socket_type(&self) -> Type {
        self.ty
    }
    fn domain(&self) -> Domain {
        self.domain
    }
    fn bind(&self, _: &SockAddr) -> trio::Result<()> {
        Ok(())
    }
    fn listen(&self, backlog: i32) -> trio::Result<()> {
        self.system.backlogs.borrow_mut().push(backlog);
        if self.system.poison_listen_of == Some(self.n) {
            return Err(io::Error::other("whoops").into());
        }
        Ok(())
    }
    fn close(&self) {
        self.system.closed.borrow_mut().push(self.n);
    }
}

fn install(system: System) -> Rc<System> {
    let system = Rc::new(system);
    set_custom_socket_factory(Some(Rc::new(Fake(system.clone())))).expect("in a run");
    set_custom_hostname_resolver(Some(Rc::new(Fake(system.clone())))).expect("in a run");
    system
}

const V4: &str = "1.1.1.1";
const V6: &str = "::1";

#[test]
fn the_backlog_is_passed_through_and_clamped() {
    run(async {
        let system = install(System {
            addresses: vec![V4.parse().unwrap()],
            ..System::default()
        });
        for (given, expected) in [
            (None, 0xFFFF),
            (Some(99_999_999), 0xFFFF),
            (Some(10), 10),
            (Some(1), 1),
        ] {
            // Host `None` is numeric: the wildcard of each family, without the resolver.
            let listeners = open_tcp_listeners_with(0, None, given).await?;
            assert!(!listeners.is_empty());
            let backlogs = std::mem::take(&mut *system.backlogs.borrow_mut());
            assert_eq!(backlogs, vec![expected; listeners.len()]);
        }
        Ok(())
    });
}

#[test]
fn a_failing_listen_closes_every_socket_opened() {
    run(async {
        let system = install(System {
            addresses: vec![
                "1.1.1.1".parse().unwrap(),
                "2.2.2.2".parse().unwrap(),
                "3.3.3.3".parse().unwrap(),
            ],
            poison_listen_of: Some(2),
            ..System::default()
        });
        let error = open_tcp_listeners_with(80, Some("example.org"), None)
            .await
            .expect_err("the third listen fails");
        assert!(error.to_string().contains("whoops"), "{error}");
        assert_eq!(system.created.get(), 3);
        let mut closed = system.closed.borrow().clone();
        closed.sort();
        assert_eq!(closed, [0, 1, 2]);
        Ok(())
    });
}

#[test]
fn families_the_system_lacks_are_skipped_unless_none_is_left() {
    run(async {
        let v4 = (Domain::IPV4, V4);
        let v6 = (Domain::IPV6, V6);
        for tried in [vec![v4], vec![v6], vec![v4, v6]] {
            for failing in [vec![v4], vec![v6], vec![v4, v6]] {
                let system = install(System {
                    addresses: tried.iter().map(|(_, ip)| ip.parse().unwrap()).collect(),
                    fail_families: failing
                        .iter()
                        .map(|&(d, _)| (d, libc::EAFNOSUPPORT))
                        .collect(),
                    ..System::default()
                });
                let left: Vec<Domain> = tried
                    .iter()
                    .map(|&(d, _)| d)
                    .filter(|d| !failing.iter().any(|(f, _)| f == d))
                    .collect();
                let result = open_tcp_listeners_with(80, Some("example.org"), None).await;
                if left.is_empty() {
                    let error = result.expect_err("no family left");
                    let io = error.downcast_ref::<io::Error>().expect("an io::Error");
                    assert_eq!(io.kind(), io::ErrorKind::Unsupported);
                    let message = io.to_string();
                    assert!(
                        message.starts_with("This system doesn't support"),
                        "{message}"
                    );
                    // Each family's error is in the message (Trio chains them as a group).
                    let afnosupport = io::Error::from_raw_os_error(libc::EAFNOSUPPORT).to_string();
                    assert_eq!(
                        message.matches(&afnosupport).count(),
                        tried.len(),
                        "{message}"
                    );
                } else {
                    let listeners = result?;
                    let families: Vec<Domain> = listeners
                        .iter()
                        .map(|l| l.socket().domain().unwrap())
                        .collect();
                    assert_eq!(families, left);
                }
                drop(system);
            }
        }
        // Another error of `socket` is not skipped: it is the error.
        install(System {
            addresses: vec![V4.parse().unwrap(), V6.parse().unwrap()],
            fail_families: vec![
                (Domain::IPV4, libc::EAFNOSUPPORT),
                (Domain::IPV6, libc::EINVAL),
            ],
            ..System::default()
        });
        let error = open_tcp_listeners_with(80, Some("example.org"), None)
            .await
            .expect_err("EINVAL");
        assert_eq!(
            error
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error),
            Some(libc::EINVAL)
        );
        Ok(())
    });
}
