//! The fake network's datagram sockets: Trio's `test_fakenet.py` ported (its tests are all of
//! UDP), then latency, loss, partitions and the rest on virtual time.

mod common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use common::{assert_err, assert_errno, run, sa, sock};
use trio::UsageError;
use trio::socket::{Domain, Socket, Type};
use trio_test::{FakeNet, FakeNetStatistics};

fn fake_net() -> trio::Result<FakeNet> {
    let net = FakeNet::new();
    net.enable()?;
    Ok(net)
}

fn udp() -> trio::Result<Socket> {
    Socket::new(Domain::IPV4, Type::DGRAM, None)
}

fn udp6() -> trio::Result<Socket> {
    Socket::new(Domain::IPV6, Type::DGRAM, None)
}

fn local(socket: &Socket) -> SocketAddr {
    socket
        .local_addr()
        .expect("a local address")
        .as_socket()
        .expect("an IP address")
}

fn peer_of(from: &trio::socket::SockAddr) -> SocketAddr {
    from.as_socket().expect("an IP address")
}

#[test]
fn basic_udp() {
    // Trio's test_basic_udp.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        let s2 = udp()?;
        s1.bind(&sock("127.0.0.1:0"))?;
        let a1 = local(&s1);
        assert_eq!(a1.ip(), sa("127.0.0.1:0").ip());
        assert_ne!(a1.port(), 0);
        // Cannot rebind.
        assert_errno(s1.bind(&sock("192.0.2.1:0")), libc::EINVAL);
        // Cannot bind two sockets to one address.
        assert_errno(s2.bind(&a1.into()), libc::EADDRINUSE);

        s2.send_to(b"xyz", &a1.into()).await?;
        let (data, from) = s1.recv_from(10).await?;
        assert_eq!(data, b"xyz");
        assert_eq!(peer_of(&from), local(&s2));
        s1.send_to(b"abc", &s2.local_addr()?).await?;
        let (data, from) = s2.recv_from(10).await?;
        assert_eq!(data, b"abc");
        assert_eq!(peer_of(&from), a1);
        Ok(())
    });
}

#[test]
fn msg_trunc() {
    // Trio's test_msg_trunc, and what the truncation does: the rest of the datagram is gone.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        let s2 = udp()?;
        s1.bind(&sock("127.0.0.1:0"))?;
        s2.send_to(b"xyz", &s1.local_addr()?).await?;
        s2.send_to(b"next", &s1.local_addr()?).await?;
        let (data, _) = s1.recv_from(2).await?;
        assert_eq!(data, b"xy");
        let (data, _) = s1.recv_from(10).await?;
        assert_eq!(data, b"next");
        Ok(())
    });
}

#[test]
fn recv_methods() {
    // Trio's test_recv_methods.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        let s2 = udp()?;
        // Receiving on an unbound socket would wait forever.
        assert_err::<UsageError, _>(s2.recv(10).await);

        s1.bind(&sock("127.0.0.1:0"))?;
        // recv_from
        s2.send_to(b"abc", &s1.local_addr()?).await?;
        let (data, from) = s1.recv_from(10).await?;
        assert_eq!((data.as_slice(), peer_of(&from)), (&b"abc"[..], local(&s2)));
        // recv
        s1.send_to(b"def", &s2.local_addr()?).await?;
        assert_eq!(s2.recv(10).await?, b"def");
        // recv_from_into
        assert_eq!(s1.send_to(b"ghi", &s2.local_addr()?).await?, 3);
        let mut buf = [0u8; 10];
        let (n, from) = s2.recv_from_into(&mut buf).await?;
        assert_eq!((n, &buf[..]), (3, &b"ghi\0\0\0\0\0\0\0"[..]));
        assert_eq!(peer_of(&from), local(&s1));
        // recv_into
        assert_eq!(s1.send_to(b"jkl", &s2.local_addr()?).await?, 3);
        let mut buf = [0u8; 10];
        assert_eq!(s2.recv_into(&mut buf).await?, 3);
        assert_eq!(&buf[..4], b"jkl\0");
        // send on a socket that is not connected
        assert_errno(s2.send(b"mno").await, libc::ENOTCONN);
        Ok(())
    });
}

#[test]
fn messages_with_ancillary_data_are_not_available() {
    // Trio's test_nonwindows_functionality: sendmsg and recvmsg are system-socket calls here.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        s1.bind(&sock("127.0.0.1:0"))?;
        let bufs = [std::io::IoSlice::new(b"jkl")];
        let msg = trio::socket::MsgHdr::new().with_buffers(&bufs);
        assert_err::<UsageError, _>(s1.sendmsg(&msg, 0).await);
        Ok(())
    });
}

#[test]
fn socket_options_are_not_available() {
    // Trio's test_not_implemented_functions: a fake socket has no system socket to set
    // options on.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        assert_err::<UsageError, _>(s1.socket2().map(drop));
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&s1), -1);
        assert_err::<UsageError, _>(udp()?.into_socket2().map(drop));
        Ok(())
    });
}

#[test]
fn getpeername() {
    // Trio's test_getpeername; here a connected datagram socket has a peer.
    run(async {
        fake_net()?;
        let s1 = udp()?;
        assert_errno(s1.peer_addr(), libc::ENOTCONN);
        s1.bind(&sock("127.0.0.1:0"))?;
        assert_errno(s1.peer_addr(), libc::ENOTCONN);
        s1.connect(&sock("127.0.0.1:4000")).await?;
        assert_eq!(s1.peer_addr()?.as_socket(), Some(sa("127.0.0.1:4000")));
        Ok(())
    });
}

#[test]
fn init() {
    // Trio's test_init. Two differences: stream sockets exist here, and a socket bound to the
    // wildcard address reports it, as a system socket does (Trio's fake net rebinds it to
    // loopback); sending to it reaches it either way.
    run(async {
        fake_net()?;
        assert!(Socket::new(Domain::IPV4, Type::STREAM, None)?.is_custom());
        assert_errno(
            Socket::new(Domain::IPV4, Type::RAW, None),
            libc::ESOCKTNOSUPPORT,
        );
        assert_errno(
            Socket::new(Domain::from(12345), Type::DGRAM, None),
            libc::EAFNOSUPPORT,
        );
        assert_errno(
            Socket::new(Domain::IPV4, Type::DGRAM, Some(trio::socket::Protocol::TCP)),
            libc::EPROTONOSUPPORT,
        );

        let s1 = udp()?;
        assert_eq!(local(&s1), sa("0.0.0.0:0"));
        s1.bind(&sock("0.0.0.0:0"))?;
        let a1 = local(&s1);
        assert_eq!(a1.ip(), sa("0.0.0.0:0").ip());
        assert_ne!(a1.port(), 0);

        let s2 = udp6()?;
        assert_eq!(local(&s2), sa("[::]:0"));
        s2.bind(&sock("[::]:0"))?;
        let a2 = local(&s2);
        assert_eq!(a2.ip(), sa("[::]:0").ip());
        assert_ne!(a2.port(), 0);

        // The wildcard destination is this host: both arrive.
        let sender = udp()?;
        sender.send_to(b"v4", &a1.into()).await?;
        assert_eq!(s1.recv(10).await?, b"v4");
        let sender6 = udp6()?;
        sender6.send_to(b"v6", &a2.into()).await?;
        let (data, from) = s2.recv_from(10).await?;
        assert_eq!(data, b"v6");
        assert_eq!(peer_of(&from).ip(), sa("[::1]:0").ip());
        Ok(())
    });
}

#[test]
fn addresses_of_the_wrong_family_are_refused() {
    run(async {
        fake_net()?;
        let s = udp()?;
        assert_errno(s.bind(&sock("[::1]:0")), libc::EAFNOSUPPORT);
        assert_errno(s.send_to(b"x", &sock("[::1]:9")).await, libc::EAFNOSUPPORT);
        let unix = trio::socket::SockAddr::unix("/tmp/not-an-ip")?;
        assert_err::<UsageError, _>(s.send_to(b"x", &unix).await);
        // Too big for one datagram.
        assert_errno(
            s.send_to(&vec![0; 65508], &sock("127.0.0.1:9")).await,
            libc::EMSGSIZE,
        );
        Ok(())
    });
}

#[test]
fn a_wildcard_binding_hears_every_address_of_its_family() {
    run(async {
        fake_net()?;
        let any = udp()?;
        any.bind(&sock("0.0.0.0:7000"))?;
        let specific = udp()?;
        // On the same port, a wildcard and a specific address conflict, as without
        // SO_REUSEADDR; on another IP family they do not.
        assert_errno(specific.bind(&sock("10.0.0.1:7000")), libc::EADDRINUSE);
        udp6()?.bind(&sock("[::]:7000"))?;
        let specific = udp()?;
        specific.bind(&sock("10.0.0.1:7001"))?;
        let any2 = udp()?;
        assert_errno(any2.bind(&sock("0.0.0.0:7001")), libc::EADDRINUSE);

        let sender = udp()?;
        sender
            .send_to(b"to 10.0.0.9", &sock("10.0.0.9:7000"))
            .await?;
        assert_eq!(any.recv(100).await?, b"to 10.0.0.9");
        sender
            .send_to(b"to 10.0.0.1", &sock("10.0.0.1:7001"))
            .await?;
        assert_eq!(specific.recv(100).await?, b"to 10.0.0.1");
        Ok(())
    });
}

#[test]
fn a_closed_socket_frees_its_address() {
    run(async {
        let net = fake_net()?;
        let s = udp()?;
        s.bind(&sock("127.0.0.1:5353"))?;
        s.close();
        // Sent to nobody: it arrives, and nobody takes it.
        udp()?.send_to(b"lost", &sock("127.0.0.1:5353")).await?;
        let again = udp()?;
        again.bind(&sock("127.0.0.1:5353"))?;
        udp()?.send_to(b"found", &sock("127.0.0.1:5353")).await?;
        assert_eq!(again.recv(10).await?, b"found");
        assert_eq!(net.statistics().packets_delivered, 2);
        Ok(())
    });
}

#[test]
fn a_connected_socket_hears_only_its_peer() {
    run(async {
        fake_net()?;
        let server = udp()?;
        server.bind(&sock("10.0.0.1:53"))?;
        let client = udp()?;
        client.connect(&sock("10.0.0.1:53")).await?;
        client.send(b"query").await?;
        let (data, from) = server.recv_from(100).await?;
        assert_eq!(data, b"query");
        let stranger = udp()?;
        stranger.send_to(b"spoof", &from).await?;
        server.send_to(b"answer", &from).await?;
        assert_eq!(client.recv(100).await?, b"answer");
        Ok(())
    });
}

#[test]
fn datagrams_take_the_latency() {
    run(async {
        let net = fake_net()?;
        net.set_latency(0.25)?;
        net.set_latency_for(sa("10.0.0.2:0").ip(), 2)?;
        let a = udp()?;
        a.bind(&sock("10.0.0.1:1000"))?;
        let slow = udp()?;
        slow.bind(&sock("10.0.0.2:1000"))?;
        let sender = udp()?;

        let start = trio::current_time()?;
        sender.send_to(b"fast", &a.local_addr()?).await?;
        assert_eq!(a.recv(10).await?, b"fast");
        assert_eq!(trio::current_time()? - start, 0.25);
        sender.send_to(b"slow", &slow.local_addr()?).await?;
        assert_eq!(slow.recv(10).await?, b"slow");
        assert_eq!(trio::current_time()? - start, 2.25);
        // A host's latency goes both ways; 0 takes it away.
        slow.send_to(b"back", &sender.local_addr()?).await?;
        assert_eq!(sender.recv(10).await?, b"back");
        assert_eq!(trio::current_time()? - start, 4.25);
        net.set_latency_for(sa("10.0.0.2:0").ip(), 0)?;
        slow.send_to(b"again", &sender.local_addr()?).await?;
        assert_eq!(sender.recv(10).await?, b"again");
        assert_eq!(trio::current_time()? - start, 4.5);
        Ok(())
    });
}

#[test]
fn drop_next_loses_exactly_that_many() {
    run(async {
        let net = fake_net()?;
        let r = udp()?;
        r.bind(&sock("127.0.0.1:9000"))?;
        let other = udp()?;
        other.bind(&sock("127.0.0.1:9001"))?;
        let s = udp()?;
        net.drop_next(2);
        net.drop_next_to(sa("127.0.0.1:9001"), 1);
        for i in 0..5u8 {
            s.send_to(&[i], &r.local_addr()?).await?;
            s.send_to(&[i], &other.local_addr()?).await?;
        }
        // The first two datagrams (one to each) went to drop_next; the next one to `other`
        // went to drop_next_to.
        for expected in 1..5u8 {
            assert_eq!(r.recv(10).await?, [expected]);
        }
        for expected in 2..5u8 {
            assert_eq!(other.recv(10).await?, [expected]);
        }
        let stats = net.statistics();
        assert_eq!((stats.packets_sent, stats.packets_lost), (10, 3));
        assert_eq!(stats.packets_delivered, 7);
        Ok(())
    });
}

/// Which of 200 datagrams arrive at a loss rate of 0.3 with `seed`, and the statistics.
fn lossy_run(seed: u64) -> (Vec<u8>, FakeNetStatistics) {
    let got = Rc::new(Cell::new((Vec::new(), FakeNetStatistics::default())));
    let out = got.clone();
    run(async move {
        let net = fake_net()?;
        net.set_seed(seed).set_loss(0.3)?;
        let r = udp()?;
        r.bind(&sock("127.0.0.1:9000"))?;
        let s = udp()?;
        for i in 0..200u8 {
            s.send_to(&[i], &r.local_addr()?).await?;
        }
        let mut arrived = Vec::new();
        while let Some(datagram) = trio::move_on_after(1, r.recv(1)).await? {
            arrived.push(datagram[0]);
        }
        out.set((arrived, net.statistics()));
        Ok(())
    });
    got.take()
}

#[test]
fn the_loss_rate_is_random_and_repeatable() {
    let (arrived, stats) = lossy_run(7);
    assert_eq!(stats.packets_sent, 200);
    assert_eq!(arrived.len() as u64, 200 - stats.packets_lost);
    // Far from none and from all (the chance of either is below 1e-20).
    assert!((20..=100).contains(&stats.packets_lost), "{stats:?}");
    assert!(arrived.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(
        lossy_run(7).0,
        arrived,
        "the same seed loses the same datagrams"
    );
    assert_ne!(lossy_run(8).0, arrived, "another seed, other datagrams");
}

#[test]
fn a_partition_loses_everything_until_healed() {
    run(async {
        let net = fake_net()?;
        let r = udp()?;
        r.bind(&sock("10.0.0.1:9000"))?;
        let s = udp()?;
        net.partition(sa("10.0.0.1:0").ip());
        s.send_to(b"cut off", &r.local_addr()?).await?;
        let nothing = trio::move_on_after(60, r.recv(10)).await?;
        assert!(nothing.is_none());
        net.heal(sa("10.0.0.1:0").ip());
        s.send_to(b"healed", &r.local_addr()?).await?;
        assert_eq!(r.recv(10).await?, b"healed");
        Ok(())
    });
}

#[test]
fn a_full_receive_queue_drops_new_datagrams() {
    run(async {
        let net = fake_net()?;
        net.set_buffer_size(10)?;
        let r = udp()?;
        r.bind(&sock("127.0.0.1:9000"))?;
        let s = udp()?;
        for chunk in [b"1111", b"2222", b"3333"] {
            s.send_to(chunk, &r.local_addr()?).await?;
        }
        assert_eq!(r.recv(10).await?, b"1111");
        assert_eq!(r.recv(10).await?, b"2222");
        s.send_to(b"4444", &r.local_addr()?).await?;
        assert_eq!(r.recv(10).await?, b"4444");
        assert_err::<UsageError, _>(net.set_buffer_size(0).map(drop));
        Ok(())
    });
}

#[test]
fn read_readiness_waits_for_a_datagram() {
    run(async {
        let net = fake_net()?;
        net.set_latency(1)?;
        let r = Rc::new(udp()?);
        r.bind(&sock("127.0.0.1:9000"))?;
        let s = udp()?;
        let polls = Rc::new(Cell::new(0));
        let (waiter, counter) = (r.clone(), polls.clone());
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                std::future::poll_fn(|cx| {
                    counter.set(counter.get() + 1);
                    waiter.poll_read_ready(cx)
                })
                .await?;
                assert_eq!(trio::current_time()?, 1.0);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            s.send_to(b"x", &sock("127.0.0.1:9000")).await?;
            Ok(())
        })
        .await?;
        assert_eq!(
            polls.get(),
            2,
            "one poll to wait, one when the datagram came"
        );
        assert_eq!(r.recv(1).await?, b"x");
        // A socket with nothing to read and closed: its wait ends with the close.
        let reader = Rc::new(udp()?);
        reader.bind(&sock("127.0.0.1:9001"))?;
        let closer = reader.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let ready = std::future::poll_fn(|cx| reader.poll_read_ready(cx)).await;
                assert_err::<trio::ClosedResourceError, _>(ready);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            closer.close();
            Ok(())
        })
        .await
    });
}
