//! `trio::socket`: the low-level socket over loopback, Unix socketpairs and UDP; Trio's
//! checkpoint rule, busy detection, closing, and std conversions.

mod common;

use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use common::{assert_err, in_cancelled_scope, poll_once, run, yields};
use trio::socket::{Domain, SockAddr, Socket, Type};
use trio::{BusyResourceError, ClosedResourceError, UsageError};

fn loopback() -> SockAddr {
    "127.0.0.1:0".parse::<SocketAddr>().unwrap().into()
}

/// A listening TCP socket on loopback and its address.
fn listener() -> trio::Result<(Socket, SockAddr)> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    listener.bind(&loopback())?;
    listener.listen(16)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A connected TCP pair over loopback: (client, server).
async fn tcp_pair() -> trio::Result<(Socket, Socket)> {
    let (listener, addr) = listener()?;
    let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    client.connect(&addr).await?;
    let (server, peer) = listener.accept().await?;
    assert_eq!(peer.as_socket(), client.local_addr()?.as_socket());
    Ok((client, server))
}

#[test]
fn tcp_round_trip_over_loopback() {
    run(async {
        let (client, server) = tcp_pair().await?;
        assert_eq!(client.send(b"hello").await?, 5);
        assert_eq!(server.recv(100).await?, b"hello");
        let mut buf = [0u8; 8];
        server.send(b"back").await?;
        let n = client.recv_into(&mut buf).await?;
        assert_eq!(&buf[..n], b"back");
        // EOF after the peer shuts its sending half down.
        client.shutdown(Shutdown::Write)?;
        assert!(client.did_shutdown_write());
        assert_eq!(server.recv(100).await?, b"");
        Ok(())
    });
}

#[test]
fn an_immediate_success_is_a_schedule_point_and_a_cancelled_recv_takes_nothing() {
    run(async {
        let (client, server) = tcp_pair().await?;
        client.send(b"data").await?;
        // Wait until the data is there, without taking it.
        std::future::poll_fn(|cx| server.poll_read_ready(cx)).await?;
        assert!(in_cancelled_scope(server.recv(10)).await?.is_none());
        assert_eq!(yields(server.recv(10)).await?, b"data");
        Ok(())
    });
}

#[test]
fn a_recv_or_accept_dropped_mid_way_has_taken_nothing() {
    run(async {
        let (listener, addr) = listener()?;
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        client.connect(&addr).await?;
        std::future::poll_fn(|cx| listener.poll_read_ready(cx)).await?;
        // Polled once and dropped (as by a `select` that chose another branch).
        let mut accept = Box::pin(listener.accept());
        assert!(poll_once(&mut accept).await.is_pending());
        drop(accept);
        let (server, _) = listener.accept().await?;

        client.send(b"kept").await?;
        std::future::poll_fn(|cx| server.poll_read_ready(cx)).await?;
        let mut recv = Box::pin(server.recv(100));
        assert!(poll_once(&mut recv).await.is_pending());
        drop(recv);
        let mut buf = [0u8; 8];
        let mut recv_into = Box::pin(server.recv_into(&mut buf));
        assert!(poll_once(&mut recv_into).await.is_pending());
        drop(recv_into);
        assert_eq!(server.recv(100).await?, b"kept");

        let (a, b) = (udp()?, udp()?);
        a.send_to(b"datagram", &b.local_addr()?).await?;
        std::future::poll_fn(|cx| b.poll_read_ready(cx)).await?;
        let mut recv_from = Box::pin(b.recv_from(100));
        assert!(poll_once(&mut recv_from).await.is_pending());
        drop(recv_from);
        assert_eq!(b.recv_from(100).await?.0, b"datagram");
        Ok(())
    });
}

fn udp() -> trio::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    socket.bind(&loopback())?;
    Ok(socket)
}

#[test]
fn a_zero_byte_recv_on_a_drained_stream_socket_returns_at_once() {
    run(async {
        let (client, server) = tcp_pair().await?;
        client.send(b"a").await?;
        std::future::poll_fn(|cx| server.poll_read_ready(cx)).await?;
        assert_eq!(server.recv(100).await?, b"a");
        // Drained, and the reactor knows it: a zero-byte receive still does not wait.
        let got = trio::move_on_after(10.0, server.recv(0)).await?;
        assert_eq!(got.as_deref(), Some(&b""[..]));
        let mut empty = [0u8; 0];
        let got = trio::move_on_after(10.0, server.recv_into(&mut empty)).await?;
        assert_eq!(got, Some(0));
        Ok(())
    });
}

#[test]
fn a_recv_that_waits_wakes_for_data() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let client = Rc::new(client);
        trio::open_nursery(|nursery| async move {
            let sender = client.clone();
            nursery.start_soon(async move {
                trio::lowlevel::wait_all_tasks_blocked().await?;
                sender.send(b"late").await?;
                Ok(())
            })?;
            assert_eq!(server.recv(10).await?, b"late");
            Ok(())
        })
        .await
    });
}

#[test]
fn two_receivers_on_one_socket_is_a_busy_error() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        trio::open_nursery(|nursery| async move {
            let first = server.clone();
            nursery.start_soon(async move {
                assert_eq!(first.recv(10).await?, b"x");
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert_err::<BusyResourceError, _>(server.recv(10).await);
            // Sending while another task receives is fine.
            server.send(b"y").await?;
            assert_eq!(client.recv(10).await?, b"y");
            client.send(b"x").await?;
            Ok(())
        })
        .await
    });
}

#[test]
fn closing_wakes_a_waiting_receiver_and_later_calls_fail_closed() {
    run(async {
        let (_client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        trio::open_nursery(|nursery| async move {
            let waiter = server.clone();
            nursery.start_soon(async move {
                assert_err::<ClosedResourceError, _>(waiter.recv(10).await);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            server.close();
            server.close(); // idempotent
            assert!(server.is_closed());
            Ok(())
        })
        .await?;
        Ok(())
    });
}

#[test]
fn a_cancelled_connect_closes_the_socket() {
    run(async {
        let (_listener, addr) = listener()?;
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        assert!(in_cancelled_scope(client.connect(&addr)).await?.is_none());
        assert!(client.is_closed());
        assert_err::<ClosedResourceError, _>(client.send(b"x").await);
        Ok(())
    });
}

#[test]
fn connect_to_a_closed_port_reports_the_error() {
    run(async {
        let addr = {
            let (listener, addr) = listener()?;
            drop(listener);
            addr
        };
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let err = client.connect(&addr).await.unwrap_err();
        let io = err.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        Ok(())
    });
}

#[test]
fn accept_without_listen_fails_at_once() {
    run(async {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.bind(&loopback())?;
        assert!(socket.accept().await.is_err());
        Ok(())
    });
}

#[test]
fn udp_send_to_and_recv_from() {
    run(async {
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        a.bind(&loopback())?;
        b.bind(&loopback())?;
        let b_addr = b.local_addr()?;
        a.send_to(b"one", &b_addr).await?;
        a.send_to(b"two", &b_addr).await?;
        let (data, from) = b.recv_from(100).await?;
        assert_eq!(data, b"one");
        assert_eq!(from.as_socket(), a.local_addr()?.as_socket());
        let mut buf = [0u8; 100];
        let (n, _) = b.recv_from_into(&mut buf).await?;
        assert_eq!(&buf[..n], b"two");
        Ok(())
    });
}

#[test]
fn unix_socketpair_and_vectored_send() {
    run(async {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        let bufs = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
        assert_eq!(a.send_vectored(&bufs).await?, 4);
        assert_eq!(b.recv(10).await?, b"abcd");
        Ok(())
    });
}

#[test]
fn sendmsg_and_recvmsg() {
    run(async {
        let (a, b) = Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        let bufs = [std::io::IoSlice::new(b"msg")];
        a.sendmsg(&trio::socket::MsgHdr::new().with_buffers(&bufs), 0)
            .await?;
        let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); 16];
        let mut slices = [socket2::MaybeUninitSlice::new(&mut storage)];
        let mut msg = trio::socket::MsgHdrMut::new().with_buffers(&mut slices);
        let n = b.recvmsg(&mut msg, 0).await?;
        assert_eq!(n, 3);
        Ok(())
    });
}

#[test]
fn std_conversions_keep_the_socket_working() {
    run(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr: SockAddr = std_listener.local_addr()?.into();
        let listener = Socket::from_std(std_listener)?;
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        client.connect(&addr).await?;
        let (server, _) = listener.accept().await?;
        // Back to std: a plain blocking stream once made blocking again.
        let std_server: std::net::TcpStream = server.into_socket2()?.into();
        std_server.set_nonblocking(false)?;
        client.send(b"to std").await?;
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut &std_server, &mut buf)?;
        assert_eq!(&buf, b"to std");
        Ok(())
    });
}

#[test]
fn socket2_borrow_survives_a_close() {
    run(async {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let borrowed = socket.socket2()?;
        socket.close();
        // The fd stays open (and ours) until the borrow ends.
        borrowed.set_reuse_address(true)?;
        assert!(borrowed.reuse_address()?);
        drop(borrowed);
        assert_err::<ClosedResourceError, _>(socket.socket2().map(drop));
        Ok(())
    });
}

#[test]
fn a_socket_is_send_and_registers_with_the_run_that_uses_it() {
    fn assert_send<T: Send>() {}
    assert_send::<Socket>();
    // Created outside any run, used inside one.
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    let (a, b) = run(async move {
        a.send(b"in run one").await?;
        // A wait registers the socket with this run.
        std::future::poll_fn(|cx| b.poll_read_ready(cx)).await?;
        assert_eq!(b.recv(100).await?, b"in run one");
        Ok((a, b))
    });
    // A second run finds them registered with the first.
    let err = common::try_run(async move { b.recv(100).await.map(drop) }).unwrap_err();
    assert!(err.is::<UsageError>(), "{err:?}");
    drop(a);
}

/// A custom socket with only the required methods: every other answer is the default.
struct Plain;

impl trio::socket::CustomSocket for Plain {
    fn socket_type(&self) -> Type {
        Type::STREAM
    }

    fn domain(&self) -> Domain {
        Domain::IPV4
    }
}

/// A custom socket that is never readable, and says so.
struct NeverReadable;

impl trio::socket::CustomSocket for NeverReadable {
    fn socket_type(&self) -> Type {
        Type::STREAM
    }

    fn domain(&self) -> Domain {
        Domain::IPV4
    }

    fn poll_read_ready(
        &self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<trio::Result<()>> {
        std::task::Poll::Pending
    }
}

#[test]
fn a_custom_socket_answers_for_its_read_readiness() {
    run(async {
        let plain = Socket::from_custom(Plain)?;
        let never = Socket::from_custom(NeverReadable)?;
        std::future::poll_fn(|cx| {
            assert!(plain.poll_read_ready(cx).is_ready(), "the default: ready");
            assert!(
                never.poll_read_ready(cx).is_pending(),
                "the socket's own answer"
            );
            std::task::Poll::Ready(())
        })
        .await;
        // Closed, it is the closed error whatever the socket would say.
        never.close();
        let closed = std::future::poll_fn(|cx| never.poll_read_ready(cx)).await;
        assert_err::<ClosedResourceError, _>(closed);
        Ok(())
    });
}
