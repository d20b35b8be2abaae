//! trio's high-level networking on the fake network, on virtual time: `open_tcp_stream`'s
//! happy eyeballs against hosts whose first address is slow, refuses or is cut off; a server
//! with `serve_tcp` / `serve_listeners` and its clients; a client that reconnects.

mod common;

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use common::{assert_errno, run, sa};
use trio::net::{
    ConnectError, ConnectOptions, ServeOptions, SocketListener, SocketStream, open_tcp_listeners,
    open_tcp_stream, open_tcp_stream_with, serve_listeners, serve_tcp,
};
use trio::stream::prelude::*;
use trio_test::FakeNet;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn now() -> f64 {
    trio::current_time().expect("in a run")
}

/// A network where `svc.example` has `addrs`, with listeners on every address at port 80.
async fn service(addrs: &[&str]) -> trio::Result<(FakeNet, Vec<SocketListener>)> {
    let net = FakeNet::new();
    net.add_host("svc.example", addrs.iter().copied())?;
    net.enable()?;
    let listeners = open_tcp_listeners(80, None).await?;
    assert_eq!(listeners.len(), 2, "0.0.0.0 and ::");
    Ok((net, listeners))
}

/// The connections waiting on `listeners` (within a minute).
async fn accepted(listeners: &[SocketListener]) -> trio::Result<Vec<SocketAddr>> {
    let mut peers = Vec::new();
    for listener in listeners {
        while let Some(stream) = trio::move_on_after(60, listener.accept()).await? {
            peers.push(stream.local_addr()?.expect("an IP address"));
        }
    }
    Ok(peers)
}

fn peer(stream: &SocketStream) -> IpAddr {
    stream.peer_addr().expect("connected").expect("IP").ip()
}

#[test]
fn happy_eyeballs_moves_on_from_a_slow_first_address() {
    run(async {
        let (net, listeners) = service(&["10.0.0.1", "10.0.0.2"]).await?;
        net.set_latency_for(ip("10.0.0.1"), 1)?;
        let stream = open_tcp_stream("svc.example", 80).await?;
        // The second attempt starts after 250 ms and connects at once.
        assert_eq!((peer(&stream), now()), (ip("10.0.0.2"), 0.25));
        // The slow attempt was abandoned before its answer came: no server saw it.
        assert_eq!(accepted(&listeners).await?, [sa("10.0.0.2:80")]);
        Ok(())
    });
}

#[test]
fn happy_eyeballs_moves_on_at_once_from_a_refusing_first_address() {
    run(async {
        let (net, _listeners) = service(&["10.0.0.1", "10.0.0.2"]).await?;
        net.set_latency(0.05)?;
        net.refuse(ip("10.0.0.1"));
        let stream = open_tcp_stream("svc.example", 80).await?;
        // Refused after one round trip (0.1 s), then the second address's round trip.
        assert_eq!(peer(&stream), ip("10.0.0.2"));
        assert!((now() - 0.2).abs() < 1e-9, "{}", now());
        Ok(())
    });
}

#[test]
fn happy_eyeballs_alternates_families_past_an_unreachable_address() {
    run(async {
        let (net, listeners) = service(&["fd00::1", "fd00::2", "10.0.0.1"]).await?;
        net.partition(ip("fd00::1"));
        net.set_latency_for(ip("fd00::2"), 0.1)?;
        let options = ConnectOptions::new().happy_eyeballs_delay(0.1);
        let stream = open_tcp_stream_with("svc.example", 80, &options).await?;
        // RFC 6555 §5.4: the second attempt is IPv4, at 0.1 s; it wins at once.
        assert_eq!((peer(&stream), now()), (ip("10.0.0.1"), 0.1));
        assert_eq!(accepted(&listeners).await?, [sa("10.0.0.1:80")]);
        Ok(())
    });
}

#[test]
fn happy_eyeballs_reports_every_failed_attempt() {
    run(async {
        let (net, _listeners) = service(&["10.0.0.1", "fd00::1", "10.0.0.2"]).await?;
        net.partition(ip("10.0.0.1"));
        net.refuse(ip("fd00::1"));
        net.refuse(ip("10.0.0.2"));
        let error = open_tcp_stream("svc.example", 80).await.unwrap_err();
        // Refusals come at once; the unreachable address takes its 127 s.
        assert_eq!(now(), 127.0);
        let io = error.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), io::ErrorKind::Other, "mixed errors");
        let details = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ConnectError>())
            .expect("a ConnectError inside");
        let attempts: Vec<(SocketAddr, Option<i32>)> = details
            .attempts()
            .iter()
            .map(|(addr, e)| {
                let errno = e
                    .downcast_ref::<io::Error>()
                    .and_then(io::Error::raw_os_error);
                (*addr, errno)
            })
            .collect();
        assert_eq!(
            attempts,
            [
                (sa("[fd00::1]:80"), Some(libc::ECONNREFUSED)),
                (sa("10.0.0.2:80"), Some(libc::ECONNREFUSED)),
                (sa("10.0.0.1:80"), Some(libc::ETIMEDOUT)),
            ]
        );
        Ok(())
    });
}

#[test]
fn an_unknown_name_fails_the_lookup() {
    run(async {
        let (net, _listeners) = service(&["10.0.0.1"]).await?;
        let error = open_tcp_stream("nowhere.example", 80).await.unwrap_err();
        let lookup = error
            .downcast_ref::<trio::socket::LookupError>()
            .expect("a LookupError");
        assert_eq!(lookup.code(), libc::EAI_NONAME);
        net.remove_host("svc.example");
        assert!(open_tcp_stream("svc.example", 80).await.is_err());
        Ok(())
    });
}

async fn echo(stream: SocketStream) -> trio::Result<()> {
    loop {
        let data = stream.receive_some(1024).await?;
        if data.is_empty() {
            return Ok(());
        }
        trio::sleep(0.1).await?; // thinking
        stream.send_all(&data).await?;
    }
}

#[test]
fn a_server_and_its_clients() {
    run(async {
        let net = FakeNet::new();
        net.add_host("echo.example", ["10.0.0.7"])?;
        net.set_latency(0.05)?;
        net.enable()?;
        let log = Rc::new(RefCell::new(Vec::new()));
        trio::open_nursery(|nursery| {
            let log = log.clone();
            async move {
                let listeners: Vec<Rc<SocketListener>> = nursery
                    .start(|status| {
                        let options = ServeOptions::new().host("10.0.0.7").task_status(status);
                        serve_tcp(echo, 7, options)
                    })
                    .await?;
                assert_eq!(listeners[0].local_addr()?, sa("10.0.0.7:7"));
                let scope = nursery.cancel_scope();
                trio::open_nursery(|clients| async move {
                    for id in 0..5u8 {
                        let log = log.clone();
                        clients.start_soon(async move {
                            trio::sleep(f64::from(id)).await?;
                            let start = now();
                            let stream = open_tcp_stream("echo.example", 7).await?;
                            stream.send_all(&[id; 3]).await?;
                            let reply = stream.receive_some(1024).await?;
                            // Connect: a round trip; the echo: a round trip and the thinking.
                            let took = now() - start;
                            log.borrow_mut().push((id, reply, (took * 1000.0).round()));
                            Ok(())
                        })?;
                    }
                    Ok(())
                })
                .await?;
                scope.cancel();
                Ok(())
            }
        })
        .await?;
        let log = log.borrow();
        assert_eq!(log.len(), 5);
        for (i, (id, reply, took_ms)) in log.iter().enumerate() {
            assert_eq!(
                (*id as usize, reply.as_slice(), *took_ms),
                (i, &[*id; 3][..], 300.0)
            );
        }
        Ok(())
    });
}

#[test]
fn serve_listeners_on_fake_listeners_of_both_families() {
    run(async {
        let net = FakeNet::new();
        net.enable()?;
        let listeners = open_tcp_listeners(0, None).await?;
        let targets: Vec<(&str, u16)> = listeners
            .iter()
            .map(|l| {
                let addr = l.local_addr()?;
                Ok((
                    if addr.is_ipv4() { "127.0.0.1" } else { "::1" },
                    addr.port(),
                ))
            })
            .collect::<trio::Result<_>>()?;
        assert_eq!(targets.len(), 2);
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(serve_listeners(echo, listeners, ServeOptions::new()))?;
            for (host, port) in targets {
                let stream = open_tcp_stream(host, port).await?;
                stream.send_all(host.as_bytes()).await?;
                assert_eq!(stream.receive_some(100).await?, host.as_bytes());
            }
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert!(net.statistics().packets_delivered > 0);
        Ok(())
    });
}

/// [`echo`], for a server that outlives the connections that break.
async fn echo_until_broken(stream: SocketStream) -> trio::Result<()> {
    match echo(stream).await {
        Err(e) if e.is::<trio::BrokenResourceError>() => Ok(()),
        other => other,
    }
}

/// Connects to `host:port`, trying again every second until it works.
async fn connect_with_retries(host: &str, port: u16) -> trio::Result<(SocketStream, u32)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match open_tcp_stream(host, port).await {
            Ok(stream) => return Ok((stream, attempts)),
            Err(e) if e.is::<io::Error>() => trio::sleep(1).await?,
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn a_client_reconnects_until_the_server_is_up_and_after_it_restarts() {
    run(async {
        let net = FakeNet::new();
        net.add_host("db.example", ["10.0.0.5"])?;
        net.set_latency(0.125)?;
        net.enable()?;
        trio::open_nursery(|nursery| {
            let net = net.clone();
            async move {
                let scope = nursery.cancel_scope();
                nursery.start_soon(async {
                    // The server comes up at 3.5 s.
                    trio::sleep(3.5).await?;
                    let listeners = open_tcp_listeners(5432, Some("10.0.0.5")).await?;
                    serve_listeners(echo_until_broken, listeners, ServeOptions::new()).await
                })?;
                let (stream, attempts) = connect_with_retries("db.example", 5432).await?;
                // Refused at 0.25, 1.5, 2.75 (each a round trip, then a second's wait); the
                // fourth attempt starts at 3.75 and connects a round trip later.
                assert_eq!((attempts, now()), (4, 4.0));
                stream.send_all(b"select 1").await?;
                assert_eq!(stream.receive_some(100).await?, b"select 1");

                // The connection breaks; the client notices and connects again.
                assert_eq!(net.reset_connections(ip("10.0.0.5")), 2);
                let broken = stream.send_all(b"select 2").await;
                assert!(broken.is_err_and(|e| e.is::<trio::BrokenResourceError>()));
                let (stream, attempts) = connect_with_retries("db.example", 5432).await?;
                assert_eq!(attempts, 1);
                stream.send_all(b"select 2").await?;
                assert_eq!(stream.receive_some(100).await?, b"select 2");
                scope.cancel();
                Ok(())
            }
        })
        .await
    });
}

#[test]
fn unix_sockets_stay_real() {
    run(async {
        FakeNet::new().enable()?;
        let dir = std::env::temp_dir().join(format!("trio-fake-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = trio::net::open_unix_listener(&path)?;
        assert!(!listener.socket().is_custom());
        let client = trio::net::open_unix_socket(&path).await?;
        let server = listener.accept().await?;
        client.send_all(b"real").await?;
        assert_eq!(server.receive_some(10).await?, b"real");
        std::fs::remove_dir_all(&dir)?;
        // And a wrong type of IP socket is the system's error.
        assert_errno(
            trio::socket::Socket::new(
                trio::socket::Domain::IPV4,
                trio::socket::Type::SEQPACKET,
                None,
            ),
            libc::ESOCKTNOSUPPORT,
        );
        Ok(())
    });
}
