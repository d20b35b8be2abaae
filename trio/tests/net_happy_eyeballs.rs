//! `open_tcp_stream`'s happy eyeballs on virtual time, with a fake resolver and a fake socket
//! factory (Trio's `test_highlevel_open_tcp_stream.py` scenarios): when each attempt starts,
//! which one wins, and that every losing socket is closed.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll};

use common::try_run;
use trio::net::{ConnectError, ConnectOptions, open_tcp_stream_with};
use trio::socket::{
    AddrInfo, AddrInfoHints, CustomSocket, Domain, HostnameResolver, LocalBoxFuture, Protocol,
    SockAddr, Socket, SocketFactory, Type, set_custom_hostname_resolver, set_custom_socket_factory,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Success,
    Error,
}
use Outcome::*;

/// The fake network: which addresses the name has, how each connect goes, and a record.
struct Scenario {
    port: u16,
    ips: Vec<(IpAddr, f64, Outcome)>,
    ipv4: bool,
    ipv6: bool,
    sockets_created: RefCell<usize>,
    connect_times: RefCell<HashMap<IpAddr, f64>>,
    closed: RefCell<HashMap<IpAddr, bool>>,
}

struct Fake(Rc<Scenario>);

impl HostnameResolver for Fake {
    fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: u16,
        hints: AddrInfoHints,
    ) -> LocalBoxFuture<trio::Result<Vec<AddrInfo>>> {
        assert_eq!(host, Some("test.example.com"));
        assert_eq!(port, self.0.port);
        assert_eq!(hints.socket_type, Some(Type::STREAM));
        let found = self
            .0
            .ips
            .iter()
            .map(|&(ip, _, _)| AddrInfo::new(SocketAddr::new(ip, port), Type::STREAM))
            .collect();
        Box::pin(async move {
            trio::lowlevel::checkpoint().await?;
            Ok(found)
        })
    }

    fn getnameinfo(
        &self,
        _addr: SocketAddr,
        _flags: i32,
    ) -> LocalBoxFuture<trio::Result<(String, String)>> {
        Box::pin(async {
            Err(trio::Error::new(trio::UsageError::new(
                "not in this scenario",
            )))
        })
    }
}

impl SocketFactory for Fake {
    fn socket(&self, domain: Domain, ty: Type, _: Option<Protocol>) -> trio::Result<Socket> {
        let supported =
            (domain == Domain::IPV4 && self.0.ipv4) || (domain == Domain::IPV6 && self.0.ipv6);
        if !supported {
            return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT).into());
        }
        *self.0.sockets_created.borrow_mut() += 1;
        Socket::from_custom(FakeSocket {
            scenario: self.0.clone(),
            domain,
            ty,
            peer: RefCell::new(None),
            connecting: RefCell::new(None),
        })
    }
}

struct FakeSocket {
    scenario: Rc<Scenario>,
    domain: Domain,
    ty: Type,
    peer: RefCell<Option<SocketAddr>>,
    connecting: RefCell<Option<LocalBoxFuture<trio::Result<()>>>>,
}

impl CustomSocket for FakeSocket {
    fn socket_type(&self) -> Type {
        self.ty
    }

    fn domain(&self) -> Domain {
        self.domain
    }

    fn set_nodelay(&self, _: bool) -> trio::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> trio::Result<SockAddr> {
        Ok(self.peer.borrow().expect("connected").into())
    }

    fn poll_connect(&self, cx: &mut Context<'_>, addr: &SockAddr) -> Poll<trio::Result<()>> {
        let addr = addr.as_socket().expect("an IP address");
        let mut connecting = self.connecting.borrow_mut();
        if connecting.is_none() {
            let ip = addr.ip();
            assert_eq!(addr.port(), self.scenario.port);
            let now = trio::current_time().expect("in a run");
            let previous = self.scenario.connect_times.borrow_mut().insert(ip, now);
            assert!(previous.is_none(), "{ip} connected twice");
            self.scenario.closed.borrow_mut().insert(ip, false);
            *self.peer.borrow_mut() = Some(addr);
            let &(_, delay, outcome) = self
                .scenario
                .ips
                .iter()
                .find(|(i, _, _)| *i == ip)
                .expect("a known address");
            *connecting = Some(Box::pin(async move {
                trio::sleep(delay).await?;
                match outcome {
                    Success => Ok(()),
                    Error => Err(io::Error::other("sorry").into()),
                }
            }));
        }
        connecting.as_mut().expect("started").as_mut().poll(cx)
    }

    fn close(&self) {
        if let Some(addr) = *self.peer.borrow() {
            self.scenario.closed.borrow_mut().insert(addr.ip(), true);
        }
    }
}

struct Run {
    scenario: Rc<Scenario>,
    /// The winner's address, or the error.
    result: Result<IpAddr, trio::Error>,
    end_time: f64,
}

fn scenario(ips: &[(&str, f64, Outcome)]) -> Scenario {
    Scenario {
        port: 80,
        ips: ips
            .iter()
            .map(|&(ip, delay, outcome)| (ip.parse().expect("an IP"), delay, outcome))
            .collect(),
        ipv4: true,
        ipv6: true,
        sockets_created: RefCell::new(0),
        connect_times: RefCell::new(HashMap::new()),
        closed: RefCell::new(HashMap::new()),
    }
}

/// Runs `open_tcp_stream` against the scenario on virtual time, then checks Trio's invariants:
/// every socket created was connected, and every socket but the winner's is closed.
fn run_scenario(scenario: Scenario, options: ConnectOptions) -> Run {
    let scenario = Rc::new(scenario);
    let shared = scenario.clone();
    let (result, end_time, closed) = try_run(async move {
        let fake = Rc::new(Fake(shared.clone()));
        set_custom_hostname_resolver(Some(fake.clone()))?;
        set_custom_socket_factory(Some(fake))?;
        let stream = open_tcp_stream_with("test.example.com", shared.port, &options).await;
        // Which sockets are closed while the winner's stream is still open.
        let closed = shared.closed.borrow().clone();
        let result = stream.and_then(|stream| Ok(stream.peer_addr()?.expect("an IP peer").ip()));
        Ok((result, trio::current_time()?, closed))
    })
    .expect("the run failed");
    assert_eq!(
        *scenario.sockets_created.borrow(),
        scenario.connect_times.borrow().len(),
        "a socket was created but never connected"
    );
    for (ip, closed) in closed.iter() {
        let won = result.as_ref().is_ok_and(|w| w == ip);
        assert_eq!(*closed, !won, "socket of {ip}: closed {closed}, won {won}");
    }
    Run {
        scenario,
        result,
        end_time,
    }
}

#[track_caller]
fn assert_time(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "time {actual}, expected {expected}"
    );
}

#[track_caller]
fn assert_starts(run: &Run, expected: &[(&str, f64)]) {
    let times = run.scenario.connect_times.borrow();
    assert_eq!(times.len(), expected.len(), "attempts: {times:?}");
    for &(ip, at) in expected {
        let ip: IpAddr = ip.parse().expect("an IP");
        assert_time(
            *times
                .get(&ip)
                .unwrap_or_else(|| panic!("{ip} never started")),
            at,
        );
    }
}

#[track_caller]
fn assert_winner(run: &Run, ip: &str) {
    match &run.result {
        Ok(winner) => assert_eq!(*winner, ip.parse::<IpAddr>().expect("an IP")),
        Err(e) => panic!("expected {ip} to win, got {e:?}"),
    }
}

fn default_delay() -> ConnectOptions {
    ConnectOptions::new()
}

#[test]
fn one_host_quick_success() {
    let run = run_scenario(scenario(&[("1.2.3.4", 0.123, Success)]), default_delay());
    assert_winner(&run, "1.2.3.4");
    assert_time(run.end_time, 0.123);
}

#[test]
fn one_host_slow_failure() {
    let run = run_scenario(scenario(&[("1.2.3.4", 100.0, Error)]), default_delay());
    let e = run.result.expect_err("it fails");
    assert!(e.is::<io::Error>());
    assert_time(run.end_time, 100.0);
}

/// Successes taking 1, 1 and 0.2 s start at 0, 0.25 and 0.5; the third wins at 0.7.
#[test]
fn basic_fallthrough() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 1.0, Success),
            ("2.2.2.2", 1.0, Success),
            ("3.3.3.3", 0.2, Success),
        ]),
        default_delay(),
    );
    assert_winner(&run, "3.3.3.3");
    assert_time(run.end_time, 0.7);
    assert_starts(
        &run,
        &[("1.1.1.1", 0.0), ("2.2.2.2", 0.25), ("3.3.3.3", 0.5)],
    );
}

#[test]
fn early_success_never_starts_the_rest() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 1.0, Success),
            ("2.2.2.2", 0.1, Success),
            ("3.3.3.3", 0.2, Success),
        ]),
        default_delay(),
    );
    assert_winner(&run, "2.2.2.2");
    assert_time(run.end_time, 0.35);
    assert_starts(&run, &[("1.1.1.1", 0.0), ("2.2.2.2", 0.25)]);
}

/// Delay 0.45: starts at 0, 0.45 and 0.9; the first wins at 1.
#[test]
fn custom_delay() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 1.0, Success),
            ("2.2.2.2", 1.0, Success),
            ("3.3.3.3", 0.2, Success),
        ]),
        ConnectOptions::new().happy_eyeballs_delay(0.45),
    );
    assert_winner(&run, "1.1.1.1");
    assert_time(run.end_time, 1.0);
    assert_starts(
        &run,
        &[("1.1.1.1", 0.0), ("2.2.2.2", 0.45), ("3.3.3.3", 0.9)],
    );
}

/// Failures at 0.1 and 0.2 (after their starts) start the next attempt at once: starts at 0,
/// 0.1, 0.3, 0.55.
#[test]
fn errors_expedite_the_next_attempt() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 0.1, Error),
            ("2.2.2.2", 0.2, Error),
            ("3.3.3.3", 10.0, Success),
            ("4.4.4.4", 0.25, Success),
        ]),
        default_delay(),
    );
    assert_winner(&run, "4.4.4.4");
    assert_time(run.end_time, 0.8);
    assert_starts(
        &run,
        &[
            ("1.1.1.1", 0.0),
            ("2.2.2.2", 0.1),
            ("3.3.3.3", 0.3),
            ("4.4.4.4", 0.55),
        ],
    );
}

#[test]
fn all_fail_reports_every_attempt() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 0.1, Error),
            ("2.2.2.2", 0.2, Error),
            ("3.3.3.3", 10.0, Error),
            ("4.4.4.4", 0.25, Error),
        ]),
        default_delay(),
    );
    assert_time(run.end_time, 10.3);
    assert_starts(
        &run,
        &[
            ("1.1.1.1", 0.0),
            ("2.2.2.2", 0.1),
            ("3.3.3.3", 0.3),
            ("4.4.4.4", 0.55),
        ],
    );
    let e = run.result.expect_err("every attempt fails");
    let io = e.downcast_ref::<io::Error>().expect("an io::Error");
    assert!(
        io.to_string()
            .starts_with("all attempts to connect to test.example.com:80 failed"),
        "{io}"
    );
    let details = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ConnectError>())
        .expect("a ConnectError inside");
    assert_eq!(details.attempts().len(), 4);
    assert!(
        details
            .attempts()
            .iter()
            .all(|(_, e)| e.to_string() == "sorry")
    );
}

#[test]
fn several_successes_in_flight_one_wins() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 0.5, Error),
            ("2.2.2.2", 10.0, Success),
            ("3.3.3.3", 9.0, Success),
            ("4.4.4.4", 8.0, Success),
            ("5.5.5.5", 0.5, Error),
        ]),
        ConnectOptions::new().happy_eyeballs_delay(1.0),
    );
    assert_time(run.end_time, 10.5);
    assert_starts(
        &run,
        &[
            ("1.1.1.1", 0.0),
            ("2.2.2.2", 0.5),
            ("3.3.3.3", 1.5),
            ("4.4.4.4", 2.5),
            ("5.5.5.5", 3.5),
        ],
    );
    let winner = *run.result.as_ref().expect("a winner");
    assert!(["2.2.2.2", "3.3.3.3", "4.4.4.4"].contains(&winner.to_string().as_str()));
}

/// RFC 6555 §5.4: the second attempt uses the other family.
#[test]
fn the_second_attempt_uses_the_other_family() {
    let run = run_scenario(
        scenario(&[
            ("1.1.1.1", 10.0, Error),
            ("2.2.2.2", 1.0, Success),
            ("::3", 0.5, Success),
        ]),
        ConnectOptions::new().happy_eyeballs_delay(1.0),
    );
    assert_winner(&run, "::3");
    assert_time(run.end_time, 1.5);
    assert_starts(&run, &[("1.1.1.1", 0.0), ("::3", 1.0)]);
}

#[test]
fn a_family_the_system_lacks_is_skipped() {
    let mut no_ipv4 = scenario(&[
        ("::1", 10.0, Success),
        ("2.2.2.2", 0.0, Success),
        ("::3", 0.1, Success),
        ("4.4.4.4", 0.0, Success),
    ]);
    no_ipv4.ipv4 = false;
    let run = run_scenario(no_ipv4, ConnectOptions::new().happy_eyeballs_delay(1.0));
    assert_winner(&run, "::3");
    assert_time(run.end_time, 1.1);
    assert_starts(&run, &[("::1", 0.0), ("::3", 1.0)]);

    let mut no_ipv6 = scenario(&[
        ("::1", 0.0, Success),
        ("2.2.2.2", 10.0, Success),
        ("::3", 0.0, Success),
        ("4.4.4.4", 0.1, Success),
    ]);
    no_ipv6.ipv6 = false;
    let run = run_scenario(no_ipv6, ConnectOptions::new().happy_eyeballs_delay(1.0));
    assert_winner(&run, "4.4.4.4");
    assert_time(run.end_time, 1.1);
    assert_starts(&run, &[("2.2.2.2", 0.0), ("4.4.4.4", 1.0)]);
}

#[test]
fn no_addresses_is_an_error() {
    let run = run_scenario(scenario(&[]), default_delay());
    let e = run.result.expect_err("nothing to connect to");
    assert!(e.to_string().contains("no results found"), "{e}");
}

/// Cancelling the call at 5 s closes every socket.
#[test]
fn cancelling_closes_every_socket() {
    let scenario = Rc::new(scenario(&[
        ("1.1.1.1", 10.0, Success),
        ("2.2.2.2", 10.0, Success),
        ("3.3.3.3", 10.0, Success),
        ("4.4.4.4", 10.0, Success),
    ]));
    let shared = scenario.clone();
    let end = try_run(async move {
        let fake = Rc::new(Fake(shared.clone()));
        set_custom_hostname_resolver(Some(fake.clone()))?;
        set_custom_socket_factory(Some(fake))?;
        let finished = trio::move_on_after(
            5.0,
            open_tcp_stream_with("test.example.com", 80, &ConnectOptions::new()),
        )
        .await?;
        assert!(finished.is_none(), "it was cancelled");
        trio::current_time()
    })
    .expect("the run failed");
    assert_time(end, 5.0);
    assert_eq!(scenario.connect_times.borrow().len(), 4);
    assert!(scenario.closed.borrow().values().all(|&closed| closed));
}

#[test]
fn the_delay_takes_any_time_type_and_refuses_nan_and_negative_values() {
    let options = ConnectOptions::new().happy_eyeballs_delay(std::time::Duration::from_millis(450));
    assert!(
        format!("{options:?}").contains("happy_eyeballs_delay: 0.45"),
        "{options:?}"
    );
    common::run(async {
        for bad in [-0.5, f64::NAN] {
            let options = ConnectOptions::new().happy_eyeballs_delay(bad);
            let result = open_tcp_stream_with("127.0.0.1", 1, &options).await;
            let error = result.expect_err("a bad delay must fail");
            assert!(error.is::<trio::UsageError>(), "{error}");
        }
        Ok(())
    });
}
