//! The fake network's TCP: the handshake and its timing, refusal, half-close, resets,
//! retransmission of lost packets, flow control, and Trio's stream conformance suites on
//! `SocketStream`s over it — with no latency, with latency, and with loss.

mod common;

use std::net::SocketAddr;
use std::rc::Rc;

use common::{assert_err, assert_errno, run, sa, sock};
use trio::lowlevel::wait_all_tasks_blocked;
use trio::net::{SocketListener, SocketStream, open_tcp_listeners};
use trio::socket::{Domain, Socket, Type};
use trio::stream::prelude::*;
use trio::{BrokenResourceError, UsageError};
use trio_test::{
    FakeNet, check_half_closeable_stream, check_two_way_stream, open_stream_to_socket_listener,
};

fn fake_net() -> trio::Result<FakeNet> {
    let net = FakeNet::new();
    net.enable()?;
    Ok(net)
}

fn tcp() -> trio::Result<Socket> {
    Socket::new(Domain::IPV4, Type::STREAM, None)
}

/// A listener on `addr`.
fn listen_on(addr: &str) -> trio::Result<SocketListener> {
    let socket = Socket::new(Domain::for_address(sa(addr)), Type::STREAM, None)?;
    socket.bind(&sock(addr))?;
    socket.listen(128)?;
    SocketListener::new(socket)
}

/// A client stream connected to `addr`.
async fn connect(addr: &str) -> trio::Result<SocketStream> {
    let socket = Socket::new(Domain::for_address(sa(addr)), Type::STREAM, None)?;
    socket.connect(&sock(addr)).await?;
    SocketStream::new(socket)
}

async fn stream_pair() -> trio::Result<(SocketStream, SocketStream)> {
    let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
    let client = open_stream_to_socket_listener(&listeners[0]).await?;
    let server = listeners[0].accept().await?;
    Ok((client, server))
}

async fn stream_pair_v6() -> trio::Result<(SocketStream, SocketStream)> {
    let listener = listen_on("[fd00::1]:443")?;
    let client = connect("[fd00::1]:443").await?;
    Ok((client, listener.accept().await?))
}

/// A pair whose buffers are full both ways: sends block until the other side receives.
async fn clogged_pair() -> trio::Result<(SocketStream, SocketStream)> {
    let (a, b) = stream_pair().await?;
    a.send_all(&[0; 65536]).await?;
    b.send_all(&[0; 65536]).await?;
    Ok((a, b))
}

fn now() -> f64 {
    trio::current_time().expect("in a run")
}

#[test]
fn fake_streams_pass_the_half_closeable_suite() {
    run(async {
        fake_net()?;
        check_half_closeable_stream(stream_pair, Some(clogged_pair)).await?;
        check_half_closeable_stream(stream_pair_v6, trio_test::no_clogged()).await
    });
}

#[test]
fn fake_streams_pass_the_half_closeable_suite_with_latency() {
    run(async {
        fake_net()?.set_latency(0.5)?;
        check_half_closeable_stream(stream_pair, Some(clogged_pair)).await
    });
}

#[test]
fn fake_streams_pass_the_two_way_suite_over_a_lossy_network() {
    run(async {
        let net = fake_net()?;
        net.set_latency(0.01)?.set_loss(0.2)?;
        check_two_way_stream(stream_pair, Some(clogged_pair)).await?;
        let stats = net.statistics();
        assert!(stats.packets_lost > 100, "the loss was real: {stats:?}");
        Ok(())
    });
}

#[test]
fn connect_and_accept_see_each_others_addresses() {
    run(async {
        fake_net()?;
        let listener = listen_on("10.0.0.1:80")?;
        let client = connect("10.0.0.1:80").await?;
        let server = listener.accept().await?;
        let client_addr = client.local_addr()?.expect("an IP address");
        assert_eq!(
            client_addr.ip(),
            sa("127.0.0.1:0").ip(),
            "unbound: from loopback"
        );
        assert!(client_addr.port() >= 50000);
        assert_eq!(client.peer_addr()?, Some(sa("10.0.0.1:80")));
        assert_eq!(server.local_addr()?, Some(sa("10.0.0.1:80")));
        assert_eq!(server.peer_addr()?, Some(client_addr));
        assert_eq!(listener.local_addr()?, sa("10.0.0.1:80"));
        // A client may bind first: that is the address the server sees.
        let bound = tcp()?;
        bound.bind(&sock("10.9.9.9:4000"))?;
        bound.connect(&sock("10.0.0.1:80")).await?;
        assert_eq!(
            listener.accept().await?.peer_addr()?,
            Some(sa("10.9.9.9:4000"))
        );
        Ok(())
    });
}

#[test]
fn a_wildcard_listener_accepts_for_every_address_of_its_family() {
    run(async {
        fake_net()?;
        let listener = listen_on("0.0.0.0:8080")?;
        assert_eq!(listener.local_addr()?, sa("0.0.0.0:8080"));
        for to in ["10.1.2.3:8080", "127.0.0.1:8080", "0.0.0.0:8080"] {
            connect(to).await?;
            let server = listener.accept().await?;
            let expected = if to.starts_with("0.") {
                "127.0.0.1:8080"
            } else {
                to
            };
            assert_eq!(server.local_addr()?, Some(sa(expected)));
        }
        // Not IPv6's.
        assert_errno(connect("[::1]:8080").await, libc::ECONNREFUSED);
        Ok(())
    });
}

#[test]
fn the_handshake_takes_a_round_trip_and_accept_half_more() {
    run(async {
        fake_net()?.set_latency(0.5)?;
        let listener = listen_on("10.0.0.1:80")?;
        let start = now();
        let client = connect("10.0.0.1:80").await?;
        assert_eq!(now() - start, 1.0);
        let server = listener.accept().await?;
        assert_eq!(now() - start, 1.5);
        client.send_all(b"ping").await?;
        assert_eq!(server.receive_some(10).await?, b"ping");
        assert_eq!(now() - start, 2.0);
        Ok(())
    });
}

#[test]
fn a_connection_to_nothing_is_refused_after_a_round_trip() {
    run(async {
        fake_net()?.set_latency(0.25)?;
        let start = now();
        assert_errno(connect("10.0.0.1:80").await, libc::ECONNREFUSED);
        assert_eq!(now() - start, 0.5);
        assert_errno(connect("10.0.0.1:0").await, libc::ECONNREFUSED);
        // The socket may try again after a refusal.
        let socket = tcp()?;
        assert_errno(
            socket.connect(&sock("10.0.0.1:80")).await,
            libc::ECONNREFUSED,
        );
        let _listener = listen_on("10.0.0.1:80")?;
        socket.connect(&sock("10.0.0.1:80")).await?;
        Ok(())
    });
}

#[test]
fn refuse_and_stop_refusing() {
    run(async {
        let net = fake_net()?;
        let listener = listen_on("10.0.0.1:80")?;
        net.refuse(sa("10.0.0.1:80"));
        assert_errno(connect("10.0.0.1:80").await, libc::ECONNREFUSED);
        net.stop_refusing(sa("10.0.0.1:80"));
        net.refuse(sa("10.0.0.1:0").ip());
        assert_errno(connect("10.0.0.1:80").await, libc::ECONNREFUSED);
        net.stop_refusing(sa("10.0.0.1:0").ip());
        connect("10.0.0.1:80").await?;
        listener.accept().await?;
        Ok(())
    });
}

#[test]
fn half_close_sends_eof_after_the_data() {
    run(async {
        fake_net()?.set_latency(1)?;
        let (client, server) = stream_pair().await?;
        let start = now();
        client.send_all(b"request").await?;
        client.send_eof().await?;
        assert_eq!(server.receive_some(100).await?, b"request");
        assert_eq!(server.receive_some(100).await?, b"");
        assert_eq!(now() - start, 1.0);
        // The other direction still works; the closed one refuses.
        server.send_all(b"response").await?;
        assert_eq!(client.receive_some(100).await?, b"response");
        assert_errno(client.socket().send(b"more").await, libc::EPIPE);
        Ok(())
    });
}

#[test]
fn closing_with_unread_data_resets_the_connection() {
    run(async {
        fake_net()?;
        let (client, server) = stream_pair().await?;
        server.send_all(b"unread").await?;
        let (client, server) = (client.into_socket(), server.into_socket());
        client.close();
        assert_errno(server.recv(10).await, libc::ECONNRESET);
        // Reported once; then the connection is just gone.
        assert_eq!(server.recv(10).await?, b"");
        assert_errno(server.send(b"x").await, libc::EPIPE);
        Ok(())
    });
}

#[test]
fn data_to_a_closed_socket_is_answered_with_a_reset() {
    run(async {
        fake_net()?.set_latency(0.5)?;
        let (client, server) = stream_pair().await?;
        drop(client); // closes cleanly: end-of-file
        let server = server.into_socket();
        assert_eq!(server.recv(10).await?, b"");
        let start = now();
        assert_eq!(server.send(b"anyone?").await?, 7);
        // The reset comes back a round trip later, at 1 s (times that coincide with an
        // arrival would leave the order to the scheduler).
        trio::sleep(0.75).await?;
        assert_eq!(server.send(b"still?").await?, 6);
        trio::sleep(0.5).await?;
        assert_eq!(now() - start, 1.25);
        assert_errno(server.send(b"hello?").await, libc::ECONNRESET);
        assert_errno(server.send(b"hello?").await, libc::EPIPE);
        // At the stream level: broken.
        let (client, server) = stream_pair().await?;
        drop(client);
        let result = loop {
            if let Err(e) = server.send_all(b"x").await {
                break e;
            }
        };
        assert!(result.is::<BrokenResourceError>(), "{result:?}");
        Ok(())
    });
}

#[test]
fn reset_connections_aborts_both_ends() {
    run(async {
        let net = fake_net()?;
        let listener = listen_on("10.0.0.1:80")?;
        let client = connect("10.0.0.1:80").await?;
        let server = listener.accept().await?;
        let (other_client, other_server) = stream_pair().await?;
        assert_eq!(net.reset_connections(sa("10.0.0.1:0").ip()), 2);
        assert_errno(client.socket().recv(10).await, libc::ECONNRESET);
        assert_errno(server.socket().send(b"x").await, libc::ECONNRESET);
        assert_err::<BrokenResourceError, _>(server.send_all(b"x").await);
        // Other connections go on.
        other_client.send_all(b"fine").await?;
        assert_eq!(other_server.receive_some(10).await?, b"fine");
        Ok(())
    });
}

#[test]
fn a_lost_connection_request_is_sent_again_after_a_second_then_two() {
    run(async {
        let net = fake_net()?;
        net.set_latency(0.1)?;
        let _listener = listen_on("10.0.0.1:80")?;
        net.drop_next(1);
        let start = now();
        connect("10.0.0.1:80").await?;
        assert!((now() - start - 1.2).abs() < 1e-9, "{}", now() - start);
        net.drop_next_to(sa("10.0.0.1:80"), 2);
        let start = now();
        connect("10.0.0.1:80").await?;
        assert!((now() - start - 3.2).abs() < 1e-9, "{}", now() - start);
        // A lost answer delays the connection as much.
        let client = tcp()?;
        client.bind(&sock("10.0.0.2:5000"))?;
        net.drop_next_to(sa("10.0.0.2:5000"), 1);
        let start = now();
        client.connect(&sock("10.0.0.1:80")).await?;
        assert!((now() - start - 1.2).abs() < 1e-9, "{}", now() - start);
        Ok(())
    });
}

#[test]
fn connecting_to_a_partitioned_host_times_out_after_127_seconds() {
    run(async {
        let net = fake_net()?;
        let _listener = listen_on("10.0.0.1:80")?;
        net.partition(sa("10.0.0.1:0").ip());
        let start = now();
        assert_errno(connect("10.0.0.1:80").await, libc::ETIMEDOUT);
        assert_eq!(now() - start, 127.0);
        net.heal(sa("10.0.0.1:0").ip());
        connect("10.0.0.1:80").await?;
        Ok(())
    });
}

#[test]
fn lost_data_is_sent_again_and_arrives_in_order() {
    run(async {
        let net = fake_net()?;
        net.set_latency(0.1)?;
        let listener = listen_on("10.0.0.1:80")?;
        let client = connect("10.0.0.1:80").await?;
        let server = listener.accept().await?;
        let start = now();
        net.drop_next_to(sa("10.0.0.1:80"), 1);
        for part in [&b"a"[..], b"b", b"c"] {
            client.send_all(part).await?;
        }
        // "a" is sent again after max(0.2, two round trips) = 0.4 s; "b" and "c" wait for it.
        assert_eq!(server.receive_some(10).await?, b"abc");
        assert!((now() - start - 0.5).abs() < 1e-9, "{}", now() - start);
        Ok(())
    });
}

#[test]
fn a_connection_whose_packets_are_all_lost_times_out() {
    run(async {
        let net = fake_net()?;
        let (client, server) = stream_pair().await?;
        net.partition(sa("127.0.0.1:0").ip());
        let start = now();
        client.send_all(b"into the void").await?;
        // 16 transmissions: 0.2 s doubling, at most 120 s between two.
        let expected: f64 = (0..16).map(|k| (0.2 * 2f64.powi(k)).min(120.0)).sum();
        assert_errno(client.socket().recv(10).await, libc::ETIMEDOUT);
        assert!((now() - start - expected).abs() < 1e-6, "{}", now() - start);
        // The server never heard of it.
        assert!(
            trio::move_on_after(10, server.receive_some(10))
                .await?
                .is_none()
        );
        Ok(())
    });
}

#[test]
fn a_full_window_blocks_the_sender_until_the_receiver_reads() {
    run(async {
        let net = fake_net()?;
        net.set_buffer_size(100)?;
        let (client, server) = stream_pair().await?;
        let (client, server) = (Rc::new(client), Rc::new(server));
        let (sender, receiver) = (client.clone(), server.clone());
        trio::open_nursery(|nursery| async move {
            let server = receiver;
            nursery.start_soon(async move { sender.send_all(&[7; 250]).await })?;
            wait_all_tasks_blocked().await?;
            let mut got = server.receive_some(1000).await?;
            assert_eq!(got.len(), 100, "the window holds 100 bytes");
            while got.len() < 250 {
                got.extend(server.receive_some(1000).await?);
            }
            assert_eq!(got, [7; 250]);
            Ok(())
        })
        .await?;
        // wait_send_all_might_not_block: ready while there is room.
        client.send_all(&[1; 100]).await?;
        let waiter = client.clone();
        let done = trio::move_on_after(5, waiter.wait_send_all_might_not_block()).await?;
        assert!(done.is_none(), "the window is full");
        Ok(())
    });
}

#[test]
fn a_full_accept_queue_makes_the_next_client_try_again() {
    run(async {
        fake_net()?;
        let socket = tcp()?;
        socket.bind(&sock("10.0.0.1:80"))?;
        socket.listen(0)?; // room for one connection
        let listener = SocketListener::new(socket)?;
        connect("10.0.0.1:80").await?;
        let start = now();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                connect("10.0.0.1:80").await?;
                // Its request was ignored at 0, sent again at 1 s.
                assert_eq!(now() - start, 1.0);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            listener.accept().await?;
            listener.accept().await?;
            Ok(())
        })
        .await
    });
}

#[test]
fn closing_a_listener_resets_the_connections_it_did_not_accept() {
    run(async {
        fake_net()?;
        let listener = listen_on("10.0.0.1:80")?;
        let client = connect("10.0.0.1:80").await?;
        drop(listener);
        assert_errno(client.socket().recv(10).await, libc::ECONNRESET);
        assert_errno(connect("10.0.0.1:80").await, libc::ECONNREFUSED);
        // The port is free again.
        let _again = listen_on("10.0.0.1:80")?;
        Ok(())
    });
}

#[test]
fn a_cancelled_connect_never_reaches_accept() {
    run(async {
        fake_net()?.set_latency(1)?;
        let listener = listen_on("10.0.0.1:80")?;
        // The request arrives at 1 s; the caller gives up at 1.5 s, before the answer.
        let gave_up = trio::move_on_after(1.5, connect("10.0.0.1:80")).await?;
        assert!(gave_up.is_none());
        assert!(trio::move_on_after(10, listener.accept()).await?.is_none());
        Ok(())
    });
}

#[test]
fn misuse_gets_the_systems_errors() {
    run(async {
        fake_net()?;
        let listener_socket = tcp()?;
        listener_socket.bind(&sock("10.0.0.1:80"))?;
        assert_errno(listener_socket.bind(&sock("10.0.0.1:81")), libc::EINVAL);
        assert_errno(tcp()?.bind(&sock("10.0.0.1:80")), libc::EADDRINUSE);
        assert_errno(tcp()?.bind(&sock("0.0.0.0:80")), libc::EADDRINUSE);
        assert_errno(tcp()?.bind(&sock("[::1]:80")), libc::EAFNOSUPPORT);
        listener_socket.listen(1)?;
        assert_errno(
            listener_socket.connect(&sock("10.0.0.1:80")).await,
            libc::EINVAL,
        );
        assert_errno(listener_socket.recv(1).await, libc::ENOTCONN);
        let client = tcp()?;
        assert_errno(client.accept().await.map(drop), libc::EINVAL);
        assert_errno(client.send(b"x").await, libc::ENOTCONN);
        assert_errno(client.peer_addr(), libc::ENOTCONN);
        assert_errno(client.shutdown(std::net::Shutdown::Write), libc::ENOTCONN);
        client.connect(&sock("10.0.0.1:80")).await?;
        assert_errno(client.connect(&sock("10.0.0.1:80")).await, libc::EISCONN);
        let unix = trio::socket::SockAddr::unix("/tmp/not-an-ip")?;
        assert_err::<UsageError, _>(tcp()?.connect(&unix).await);
        // A listener binds itself if need be, and listen again sets the backlog.
        let unbound = Socket::new(Domain::IPV6, Type::STREAM, None)?;
        unbound.listen(5)?;
        unbound.listen(10)?;
        let addr: SocketAddr = unbound.local_addr()?.as_socket().expect("an IP address");
        assert_eq!(addr.ip(), sa("[::]:0").ip());
        assert!(addr.port() >= 50000);
        Ok(())
    });
}

#[test]
fn read_readiness_of_streams_and_listeners() {
    run(async {
        fake_net()?.set_latency(1)?;
        let listener = listen_on("10.0.0.1:80")?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async {
                let client = connect("10.0.0.1:80").await?; // at 2 s
                trio::sleep(5).await?;
                client.send_all(b"x").await // arrives at 8 s
            })?;
            std::future::poll_fn(|cx| listener.socket().poll_read_ready(cx)).await?;
            assert_eq!(now(), 3.0, "readable once a connection can be accepted");
            let server = listener.accept().await?;
            std::future::poll_fn(|cx| server.socket().poll_read_ready(cx)).await?;
            assert_eq!(now(), 8.0, "readable once data is there");
            assert_eq!(server.receive_some(1).await?, b"x");
            Ok(())
        })
        .await
    });
}
