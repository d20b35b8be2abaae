//! The fake network's names (`getaddrinfo` and `getnameinfo` from its hosts table, lookup
//! delays, bad host entries), `open_stream_to_socket_listener` on real and fake listeners, and
//! the checkpoint rule on both.

mod common;

use std::net::SocketAddr;

use common::{assert_err, run, sa};
use trio::UsageError;
use trio::net::{SocketStream, open_tcp_listeners, open_unix_listener};
use trio::socket::{
    AI_CANONNAME, AddrInfoHints, Domain, LookupError, NI_NAMEREQD, NI_NUMERICHOST, Protocol, Type,
    getaddrinfo, getnameinfo,
};
use trio::stream::prelude::*;
use trio_test::{FakeNet, assert_checkpoints, open_stream_to_socket_listener};

fn db_net() -> trio::Result<FakeNet> {
    let net = FakeNet::new();
    net.add_host("db.example", ["10.0.0.5", "fd00::5"])?;
    net.enable()?;
    Ok(net)
}

fn addrs(found: &[trio::socket::AddrInfo]) -> Vec<(SocketAddr, Type)> {
    found.iter().map(|i| (i.addr, i.socket_type)).collect()
}

#[track_caller]
fn assert_no_such_name<T: std::fmt::Debug>(result: trio::Result<T>) {
    match &result {
        Err(e)
            if e.downcast_ref::<LookupError>()
                .is_some_and(|l| l.code() == libc::EAI_NONAME) => {}
        _ => panic!("expected EAI_NONAME, got {result:?}"),
    }
}

#[test]
fn names_resolve_from_the_hosts_table_in_order() {
    run(async {
        db_net()?;
        let found = getaddrinfo(Some("db.example"), 5432, AddrInfoHints::stream()).await?;
        assert_eq!(
            addrs(&found),
            [
                (sa("10.0.0.5:5432"), Type::STREAM),
                (sa("[fd00::5]:5432"), Type::STREAM)
            ]
        );
        assert_eq!(found[0].domain, Domain::IPV4);
        assert_eq!(found[1].domain, Domain::IPV6);
        assert_eq!(found[0].protocol, Some(Protocol::TCP));
        assert_eq!(found[0].canonical_name, None);
        // Case and a trailing dot do not matter.
        let same = getaddrinfo(Some("DB.Example."), 5432, AddrInfoHints::stream()).await?;
        assert_eq!(addrs(&same), addrs(&found));
        Ok(())
    });
}

#[test]
fn the_hints_filter_and_shape_the_answer() {
    run(async {
        db_net()?;
        let any = getaddrinfo(Some("db.example"), 53, AddrInfoHints::default()).await?;
        assert_eq!(
            addrs(&any),
            [
                (sa("10.0.0.5:53"), Type::STREAM),
                (sa("10.0.0.5:53"), Type::DGRAM),
                (sa("[fd00::5]:53"), Type::STREAM),
                (sa("[fd00::5]:53"), Type::DGRAM),
            ]
        );
        assert_eq!(any[1].protocol, Some(Protocol::UDP));
        let v6_udp = AddrInfoHints {
            family: Some(Domain::IPV6),
            socket_type: Some(Type::DGRAM),
            ..AddrInfoHints::default()
        };
        let found = getaddrinfo(Some("db.example"), 53, v6_udp).await?;
        assert_eq!(addrs(&found), [(sa("[fd00::5]:53"), Type::DGRAM)]);
        let tcp_only = AddrInfoHints {
            protocol: Some(Protocol::TCP),
            ..AddrInfoHints::default()
        };
        let found = getaddrinfo(Some("db.example"), 53, tcp_only).await?;
        assert!(found.iter().all(|i| i.socket_type == Type::STREAM));
        let canonical = AddrInfoHints::stream().with_flags(AI_CANONNAME);
        let found = getaddrinfo(Some("DB.example"), 53, canonical).await?;
        assert_eq!(found[0].canonical_name.as_deref(), Some("db.example"));
        assert_eq!(found[1].canonical_name, None);
        Ok(())
    });
}

#[test]
fn unknown_names_and_missing_families_are_lookup_errors() {
    run(async {
        let net = db_net()?;
        assert_no_such_name(getaddrinfo(Some("nope.example"), 80, AddrInfoHints::stream()).await);
        net.add_host("v4only.example", ["10.0.0.6"])?;
        let v6 = AddrInfoHints {
            family: Some(Domain::IPV6),
            ..AddrInfoHints::stream()
        };
        assert_no_such_name(getaddrinfo(Some("v4only.example"), 80, v6).await);
        // Replacing and removing.
        net.add_host("db.example", ["10.0.0.9"])?;
        let found = getaddrinfo(Some("db.example"), 80, AddrInfoHints::stream()).await?;
        assert_eq!(addrs(&found), [(sa("10.0.0.9:80"), Type::STREAM)]);
        net.remove_host("DB.EXAMPLE");
        assert_no_such_name(getaddrinfo(Some("db.example"), 80, AddrInfoHints::stream()).await);
        // localhost is there from the start.
        let found = getaddrinfo(Some("localhost"), 80, AddrInfoHints::stream()).await?;
        assert_eq!(
            addrs(&found),
            [
                (sa("[::1]:80"), Type::STREAM),
                (sa("127.0.0.1:80"), Type::STREAM)
            ]
        );
        // Numeric hosts never reach the network's resolver.
        let found = getaddrinfo(Some("192.0.2.1"), 80, AddrInfoHints::stream()).await?;
        assert_eq!(addrs(&found), [(sa("192.0.2.1:80"), Type::STREAM)]);
        Ok(())
    });
}

#[test]
fn bad_host_entries_are_usage_errors() {
    let net = FakeNet::new();
    assert_err::<UsageError, _>(net.add_host("", ["10.0.0.1"]).map(drop));
    assert_err::<UsageError, _>(net.add_host(".", ["10.0.0.1"]).map(drop));
    assert_err::<UsageError, _>(net.add_host("10.0.0.1", ["10.0.0.1"]).map(drop));
    assert_err::<UsageError, _>(net.add_host("bücher.example", ["10.0.0.1"]).map(drop));
    assert_err::<UsageError, _>(net.add_host("ok.example", ["not an address"]).map(drop));
    net.add_host(
        "xn--bcher-kva.example",
        [std::net::Ipv4Addr::new(10, 0, 0, 1)],
    )
    .expect("the IDNA form is ASCII");
    net.add_host("owned.example", [String::from("::1")])
        .expect("owned strings parse too");
    // The other controls check their numbers.
    assert_err::<UsageError, _>(net.set_latency(-1).map(drop));
    assert_err::<UsageError, _>(net.set_latency(f64::NAN).map(drop));
    assert_err::<UsageError, _>(net.set_latency(f64::INFINITY).map(drop));
    assert_err::<UsageError, _>(net.set_loss(1.5).map(drop));
    assert_err::<UsageError, _>(net.set_loss(f64::NAN).map(drop));
    assert_err::<UsageError, _>(net.set_lookup_delay(-0.5).map(drop));
    // Outside a run there is nothing to enable.
    assert!(net.enable().is_err());
}

#[test]
fn reverse_lookups_name_known_addresses() {
    run(async {
        db_net()?;
        let (host, service) = getnameinfo(sa("10.0.0.5:5432"), 0).await?;
        assert_eq!((host.as_str(), service.as_str()), ("db.example", "5432"));
        let (host, _) = getnameinfo(sa("[fd00::5]:1"), 0).await?;
        assert_eq!(host, "db.example");
        let (host, _) = getnameinfo(sa("10.0.0.5:5432"), NI_NUMERICHOST).await?;
        assert_eq!(host, "10.0.0.5");
        let (host, _) = getnameinfo(sa("192.0.2.7:80"), 0).await?;
        assert_eq!(host, "192.0.2.7");
        assert_no_such_name(getnameinfo(sa("192.0.2.7:80"), NI_NAMEREQD).await);
        Ok(())
    });
}

#[test]
fn lookups_take_the_lookup_delay_and_are_checkpoints() {
    run(async {
        let net = db_net()?;
        assert_checkpoints(getaddrinfo(Some("db.example"), 1, AddrInfoHints::stream())).await?;
        assert_checkpoints(getnameinfo(sa("10.0.0.5:1"), 0)).await?;
        net.set_lookup_delay(2)?;
        let start = trio::current_time()?;
        getaddrinfo(Some("db.example"), 1, AddrInfoHints::stream()).await?;
        assert_eq!(trio::current_time()? - start, 2.0);
        let slow = trio::move_on_after(1, getnameinfo(sa("10.0.0.5:1"), 0)).await?;
        assert!(slow.is_none(), "a lookup is cancellable while it waits");
        // The answer reflects the table when the delay is over.
        let adder = net.clone();
        let found = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let out = found.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                trio::sleep(1).await?;
                adder.add_host("late.example", ["10.0.0.8"]).map(drop)
            })?;
            *out.borrow_mut() =
                getaddrinfo(Some("late.example"), 1, AddrInfoHints::stream()).await?;
            Ok(())
        })
        .await?;
        let found = found.borrow();
        assert_eq!(addrs(&found), [(sa("10.0.0.8:1"), Type::STREAM)]);
        Ok(())
    });
}

async fn round_trip(client: &SocketStream, server: &SocketStream) -> trio::Result<()> {
    client.send_all(b"ping").await?;
    assert_eq!(server.receive_some(16).await?, b"ping");
    server.send_all(b"pong").await?;
    assert_eq!(client.receive_some(16).await?, b"pong");
    Ok(())
}

#[test]
fn open_stream_to_socket_listener_on_real_listeners() {
    run(async {
        // Wildcard listeners of each family the system has: reached through loopback.
        let listeners = open_tcp_listeners(0, None).await?;
        assert!(!listeners.is_empty());
        for listener in &listeners {
            assert!(listener.local_addr()?.ip().is_unspecified());
            let client = assert_checkpoints(open_stream_to_socket_listener(listener)).await?;
            assert!(!client.socket().is_custom());
            let server = listener.accept().await?;
            assert!(client.peer_addr()?.expect("IP").ip().is_loopback());
            assert_eq!(
                client.peer_addr()?.map(|a| a.port()),
                Some(listener.local_addr()?.port())
            );
            round_trip(&client, &server).await?;
        }
        // A specific address stays as it is.
        let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let client = open_stream_to_socket_listener(&listeners[0]).await?;
        assert_eq!(client.peer_addr()?, Some(listeners[0].local_addr()?));
        // A Unix listener: its path.
        let dir = std::env::temp_dir().join(format!("trio-test-ostsl-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = open_unix_listener(&path)?;
        let client = open_stream_to_socket_listener(&listener).await?;
        let server = listener.accept().await?;
        round_trip(&client, &server).await?;
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    });
}

#[test]
fn open_stream_to_socket_listener_on_the_fake_network() {
    run(async {
        let net = FakeNet::new();
        net.set_latency(0.5)?;
        net.enable()?;
        let listeners = open_tcp_listeners(0, None).await?;
        for listener in &listeners {
            let start = trio::current_time()?;
            let client = assert_checkpoints(open_stream_to_socket_listener(listener)).await?;
            assert_eq!(trio::current_time()? - start, 1.0);
            assert!(client.socket().is_custom());
            assert!(client.peer_addr()?.expect("IP").ip().is_loopback());
            let server = listener.accept().await?;
            round_trip(&client, &server).await?;
        }
        // Cancelled, it closes its socket: the listener never sees the connection.
        let listener = &listeners[0];
        assert!(
            trio::move_on_after(0.5, open_stream_to_socket_listener(listener))
                .await?
                .is_none()
        );
        assert!(trio::move_on_after(10, listener.accept()).await?.is_none());
        Ok(())
    });
}
