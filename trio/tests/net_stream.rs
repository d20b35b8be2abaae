//! `SocketStream` and `SocketListener` over real sockets: Trio's stream conformance suites
//! over TCP and Unix sockets, and what a stream does when its peer goes away or it is closed.

mod common;

use std::rc::Rc;

use common::{assert_err, run};
use trio::net::{
    SocketListener, SocketStream, open_tcp_listeners, open_tcp_stream, open_unix_listener,
    open_unix_socket,
};
use trio::socket::{Domain, Socket, Type};
use trio::stream::prelude::*;
use trio::{BrokenResourceError, ClosedResourceError};
use trio_test::check_half_closeable_stream;

async fn tcp_stream_pair() -> trio::Result<(SocketStream, SocketStream)> {
    let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
    let port = listeners[0].local_addr()?.port();
    let client = open_tcp_stream("127.0.0.1", port).await?;
    let server = listeners[0].accept().await?;
    Ok((client, server))
}

async fn unix_stream_pair() -> trio::Result<(SocketStream, SocketStream)> {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
    Ok((SocketStream::new(a)?, SocketStream::new(b)?))
}

/// Sends until the stream blocks (Trio's `fill_stream`): its send buffer and the peer's
/// receive buffer are full.
async fn fill_stream(stream: &Rc<SocketStream>) -> trio::Result<()> {
    trio::open_nursery(|nursery| async move {
        let sender = stream.clone();
        nursery.start_soon(async move {
            loop {
                sender.send_all(&[b'x'; 10000]).await?;
            }
        })?;
        trio::lowlevel::wait_all_tasks_blocked().await?;
        nursery.cancel_scope().cancel();
        Ok(())
    })
    .await
}

async fn clogged(pair: (SocketStream, SocketStream)) -> trio::Result<(SocketStream, SocketStream)> {
    let (a, b) = (Rc::new(pair.0), Rc::new(pair.1));
    fill_stream(&a).await?;
    fill_stream(&b).await?;
    let unwrap = |s: Rc<SocketStream>| Rc::try_unwrap(s).expect("no other owner");
    Ok((unwrap(a), unwrap(b)))
}

#[test]
fn socket_streams_over_tcp_pass_the_half_closeable_suite() {
    run(async {
        let clogged_tcp = async || clogged(tcp_stream_pair().await?).await;
        check_half_closeable_stream(tcp_stream_pair, Some(clogged_tcp)).await
    });
}

#[test]
fn socket_streams_over_a_unix_socketpair_pass_the_half_closeable_suite() {
    run(async {
        let clogged_unix = async || clogged(unix_stream_pair().await?).await;
        check_half_closeable_stream(unix_stream_pair, Some(clogged_unix)).await
    });
}

/// The schedule point of a receive or accept that must wait is its wait: the reactor says so
/// before the first attempt (`poll_receive_ready`), so there is no extra trip through the loop.
#[test]
fn a_receive_that_must_wait_yields_once() {
    run(async {
        let (a, b) = unix_stream_pair().await?;
        let (a, b) = (Rc::new(a), Rc::new(b));
        // Register `b` and learn that it is drained.
        a.send_all(b"x").await?;
        assert_eq!(b.receive_some(10).await?, b"x");
        let task = trio::lowlevel::current_task()?;
        let sender = a.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                trio::lowlevel::wait_all_tasks_blocked().await?;
                sender.send_all(b"y").await
            })?;
            let before = task.schedule_points();
            assert_eq!(b.receive_some(10).await?, b"y");
            assert_eq!(
                task.schedule_points() - before,
                1,
                "one schedule point: the wait"
            );
            // A zero-size receive is refused after a schedule point, not after a wait.
            assert!(b.receive_some(0).await.is_err());
            Ok(())
        })
        .await
    });
}

#[test]
fn unix_listener_and_open_unix_socket() {
    run(async {
        let dir = std::env::temp_dir().join(format!("trio-net-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let listener = open_unix_listener(&path)?;
        let client = open_unix_socket(&path).await?;
        let server = listener.accept().await?;
        client.send_all(b"over unix").await?;
        assert_eq!(server.receive_some(100).await?, b"over unix");
        assert!(server.local_addr()?.is_none());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    });
}

#[test]
fn tcp_nodelay_is_on() {
    run(async {
        let (client, server) = tcp_stream_pair().await?;
        assert!(client.socket().socket2()?.tcp_nodelay()?);
        assert!(server.socket().socket2()?.tcp_nodelay()?);
        Ok(())
    });
}

/// Trio sets `TCP_NOTSENT_LOWAT` to 16 KiB on a TCP `SocketStream` where the system has it;
/// both options stay the caller's to change.
#[cfg(target_os = "linux")]
#[test]
fn tcp_streams_set_notsent_lowat_to_16_kib_and_options_pass_through() {
    run(async {
        let (client, server) = tcp_stream_pair().await?;
        assert_eq!(client.socket().socket2()?.tcp_notsent_lowat()?, 16384);
        assert_eq!(server.socket().socket2()?.tcp_notsent_lowat()?, 16384);
        client.set_nodelay(false)?;
        assert!(!client.socket().socket2()?.tcp_nodelay()?);
        client.socket().socket2()?.set_tcp_notsent_lowat(4096)?;
        assert_eq!(client.socket().socket2()?.tcp_notsent_lowat()?, 4096);
        // A Unix socket has neither option: the stream is made all the same.
        let (a, _b) = unix_stream_pair().await?;
        assert!(a.socket().socket2()?.tcp_notsent_lowat().is_err());
        Ok(())
    });
}

fn can_bind_127_0_0_2() -> bool {
    std::net::TcpListener::bind("127.0.0.2:0").is_ok()
}

/// Trio's `test_local_address_real`: the source address is bound (with
/// `IP_BIND_ADDRESS_NO_PORT` on Linux), an address of the wrong family fails every attempt,
/// and a wildcard or a host name works.
#[test]
fn local_address_binds_the_source_address() {
    use trio::net::{ConnectError, ConnectOptions, open_tcp_stream_with};
    run(async {
        let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let port = listeners[0].local_addr()?.port();
        let local = if can_bind_127_0_0_2() {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        let options = ConnectOptions::new().local_address(local);
        let client = open_tcp_stream_with("127.0.0.1", port, &options).await?;
        let client_addr = client.local_addr()?.expect("an IP socket");
        assert_eq!(client_addr.ip().to_string(), local);
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let fd = client.socket().socket2()?.as_raw_fd();
            // SAFETY: an open fd, and a `c_int` with its length on the stack.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!((r, value), (0, 1));
        }
        let server = listeners[0].accept().await?;
        assert_eq!(server.peer_addr()?, Some(client_addr));

        // The IPv6 wildcard cannot reach an IPv4 address: every attempt fails.
        let options = ConnectOptions::new().local_address("::");
        let error = open_tcp_stream_with("127.0.0.1", port, &options)
            .await
            .expect_err("an IPv6 source for an IPv4 peer");
        let io = error
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        let connect = io
            .get_ref()
            .and_then(|e| e.downcast_ref::<ConnectError>())
            .expect("a ConnectError inside");
        assert!(io.to_string().starts_with(&format!(
            "all attempts to connect to 127.0.0.1:{port} failed"
        )));
        assert_eq!(connect.attempts().len(), 1);

        // The IPv4 wildcard works, and so does a host name (resolved in the attempt's family).
        for local in ["0.0.0.0", "localhost"] {
            let options = ConnectOptions::new().local_address(local);
            let client = open_tcp_stream_with("127.0.0.1", port, &options).await?;
            let server = listeners[0].accept().await?;
            assert_eq!(server.peer_addr()?, client.local_addr()?);
        }
        // A name that does not resolve fails the attempt, as an OS error would.
        let options = ConnectOptions::new().local_address("no-such-host.invalid");
        let error = open_tcp_stream_with("127.0.0.1", port, &options)
            .await
            .expect_err("an unresolvable source");
        assert!(error.is::<std::io::Error>(), "{error:?}");
        Ok(())
    });
}

#[test]
fn a_peer_reset_mid_send_all_is_a_broken_resource_error() {
    run(async {
        let (client, server) = tcp_stream_pair().await?;
        let client = Rc::new(client);
        trio::open_nursery(|nursery| async move {
            let sender = client.clone();
            nursery.start_soon(async move {
                // Far more than the buffers hold: send_all must wait, and then the reset
                // arrives.
                let data = vec![7u8; 64 << 20];
                assert_err::<BrokenResourceError, _>(sender.send_all(&data).await);
                // Broken stays broken, without a panic.
                assert!(sender.send_all(b"more").await.is_err());
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            // SO_LINGER 0: close sends a reset instead of a FIN.
            server
                .socket()
                .socket2()?
                .set_linger(Some(std::time::Duration::ZERO))?;
            server.aclose().await?;
            Ok(())
        })
        .await
    });
}

#[test]
fn a_receive_after_a_reset_is_a_broken_resource_error() {
    run(async {
        let (client, server) = tcp_stream_pair().await?;
        server
            .socket()
            .socket2()?
            .set_linger(Some(std::time::Duration::ZERO))?;
        drop(server);
        assert_err::<BrokenResourceError, _>(client.receive_some(10).await);
        Ok(())
    });
}

#[test]
fn use_after_aclose_is_a_closed_resource_error() {
    run(async {
        let (client, _server) = tcp_stream_pair().await?;
        client.aclose().await?;
        client.aclose().await?; // idempotent
        assert_err::<ClosedResourceError, _>(client.send_all(b"x").await);
        assert_err::<ClosedResourceError, _>(client.send_all(b"").await);
        assert_err::<ClosedResourceError, _>(client.receive_some(10).await);
        assert_err::<ClosedResourceError, _>(client.wait_send_all_might_not_block().await);
        Ok(())
    });
}

#[test]
fn a_half_closed_peer_reads_eof_and_can_still_send() {
    run(async {
        let (client, server) = tcp_stream_pair().await?;
        client.send_all(b"last words").await?;
        client.send_eof().await?;
        client.send_eof().await?; // idempotent
        assert_err::<ClosedResourceError, _>(client.send_all(b"x").await);
        assert_eq!(server.receive_some(100).await?, b"last words");
        assert_eq!(server.receive_some(100).await?, b"");
        assert_eq!(server.receive_some(100).await?, b"");
        server.send_all(b"reply").await?;
        assert_eq!(client.receive_some(100).await?, b"reply");
        Ok(())
    });
}

#[test]
fn a_closed_listener_fails_accept_with_closed_resource_error() {
    run(async {
        let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let listener = Rc::new(listeners.into_iter().next().expect("one listener"));
        let closer = listener.clone();
        trio::open_nursery(|nursery| async move {
            let listener = closer;
            let waiting = listener.clone();
            nursery.start_soon(async move {
                assert_err::<ClosedResourceError, _>(waiting.accept().await.map(drop));
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            listener.aclose().await?;
            Ok(())
        })
        .await?;
        assert_err::<ClosedResourceError, _>(listener.accept().await.map(drop));
        Ok(())
    });
}

#[test]
fn stream_and_listener_reject_the_wrong_sockets() {
    run(async {
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        assert_err::<trio::UsageError, _>(SocketStream::new(udp));
        let not_listening = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        assert_err::<trio::UsageError, _>(SocketListener::new(not_listening));
        Ok(())
    });
}

#[test]
fn socket_stream_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SocketStream>();
    assert_send::<SocketListener>();
}
