//! More of Trio's `test_socket.py` for `trio::socket::Socket`: the address in a failed
//! connect's error, `shutdown` and `did_shutdown_write`, a close that interrupts a blocked
//! send and a blocked receive, connected datagram sockets, abstract Unix socket names, and
//! many sockets waiting at once.

mod common;

use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use common::{assert_err, run};
use trio::ClosedResourceError;
use trio::socket::{Domain, SockAddr, Socket, Type};

/// Trio's `test_address_in_socket_error` and the failing case of
/// `test_SocketType_connect_paths`: the error names the address, keeps the system error's
/// kind, and has the system error (with its errno) as its source.
#[test]
fn a_failed_connect_names_the_address() {
    run(async {
        let addr = {
            let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            listener.bind(&"127.0.0.1:0".parse::<SocketAddr>()?.into())?;
            listener.local_addr()?
        }; // closed again: nothing listens there
        let ip = addr.as_socket().expect("an IP address");
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let err = client.connect(&addr).await.unwrap_err();
        let io = err.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(
            err.to_string()
                .starts_with(&format!("Error connecting to {ip}: ")),
            "{err}"
        );
        let source = std::error::Error::source(io)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the system error");
        assert_eq!(source.raw_os_error(), Some(libc::ECONNREFUSED));
        Ok(())
    });
}

/// Trio's `test_SocketType_shutdown`.
#[test]
fn shutdown_and_did_shutdown_write() {
    run(async {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        a.send(b"x").await?;
        assert_eq!(b.recv(1).await?, b"x");
        assert!(!a.did_shutdown_write() && !b.did_shutdown_write());
        a.shutdown(Shutdown::Write)?;
        assert!(a.did_shutdown_write() && !b.did_shutdown_write());
        assert_eq!(b.recv(1).await?, b"");
        b.send(b"y").await?;
        assert_eq!(a.recv(1).await?, b"y");

        let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        a.shutdown(Shutdown::Read)?;
        assert!(!a.did_shutdown_write());

        let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        a.shutdown(Shutdown::Both)?;
        assert!(a.did_shutdown_write());
        Ok(())
    });
}

/// Trio's `test_interrupted_by_close`: a send blocked on a full buffer and a receive blocked
/// on an empty one both fail with `ClosedResourceError` when the socket is closed.
#[test]
fn a_close_interrupts_a_blocked_send_and_a_blocked_receive() {
    run(async {
        let (a, _b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        let data = vec![b'x'; 99999];
        // Fill the buffers: a send that would block is left waiting below.
        while trio::move_on_after(0.01, a.send(&data)).await?.is_some() {}
        let a = Rc::new(a);
        trio::open_nursery(|nursery| async move {
            let (sender, receiver) = (a.clone(), a.clone());
            nursery.start_soon(async move {
                let data = vec![b'x'; 99999];
                assert_err::<ClosedResourceError, _>(sender.send(&data).await);
                Ok(())
            })?;
            nursery.start_soon(async move {
                assert_err::<ClosedResourceError, _>(receiver.recv(1).await);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            a.close();
            Ok(())
        })
        .await
    });
}

/// Trio's `test_send_recv_variants` (its last part): each send on a connected datagram
/// socket is a datagram of its own.
#[test]
fn sends_on_a_connected_datagram_socket_stay_separate() {
    run(async {
        let a = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        let b = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        b.bind(&"127.0.0.1:0".parse::<SocketAddr>()?.into())?;
        a.connect(&b.local_addr()?).await?;
        a.send(b"xxx").await?;
        a.send(b"yyy").await?;
        assert_eq!(b.recv(10).await?, b"xxx");
        assert_eq!(b.recv(10).await?, b"yyy");
        Ok(())
    });
}

/// Trio's `test_unix_domain_socket`: a path, and (Linux) an abstract name.
#[test]
fn unix_domain_sockets_by_path_and_abstract_name() {
    run(async {
        let dir = std::env::temp_dir().join(format!("trio-socket-trio-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut addrs = vec![SockAddr::unix(dir.join("sock"))?];
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::ffi::OsStrExt;
            // A leading NUL byte: Linux's abstract namespace (no file).
            let name = format!("\0trio-test-{}", std::process::id());
            addrs.push(SockAddr::unix(std::ffi::OsStr::from_bytes(
                name.as_bytes(),
            ))?);
        }
        for addr in addrs {
            let listener = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            listener.bind(&addr)?;
            listener.listen(10)?;
            let client = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            client.connect(&addr).await?;
            let (server, _) = listener.accept().await?;
            client.send(b"x").await?;
            assert_eq!(server.recv(1).await?, b"x");
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    });
}

/// Trio's `test_many_sockets`: a thousand sockets wait for readability at once, and are
/// cancelled.
#[test]
fn many_sockets_wait_at_once() {
    run(async {
        let mut sockets = Vec::new();
        for _ in 0..500 {
            let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
            sockets.push(Rc::new(a));
            sockets.push(Rc::new(b));
        }
        let waiting = sockets.clone();
        trio::open_nursery(|nursery| async move {
            for socket in waiting {
                nursery.start_soon(async move {
                    let fd = socket.socket2()?.as_raw_fd();
                    trio::lowlevel::wait_readable(fd).await
                })?;
            }
            trio::lowlevel::wait_all_tasks_blocked().await?;
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(sockets.len(), 1000);
        Ok(())
    });
}

/// Trio's `test_getaddrinfo` (its numeric cases): a checkpoint, resolved without a worker,
/// with the family, type and address of the request.
#[test]
fn getaddrinfo_numeric_hosts() {
    use trio::socket::{AddrInfoHints, getaddrinfo};
    use trio_test::assert_checkpoints;
    run(async {
        let got = assert_checkpoints(getaddrinfo(
            Some("127.0.0.1"),
            12345,
            AddrInfoHints::stream(),
        ))
        .await?;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].domain, Domain::IPV4);
        assert_eq!(got[0].socket_type, Type::STREAM);
        assert_eq!(got[0].addr, "127.0.0.1:12345".parse::<SocketAddr>()?);

        let hints = AddrInfoHints {
            socket_type: Some(Type::DGRAM),
            ..AddrInfoHints::default()
        };
        let got = assert_checkpoints(getaddrinfo(Some("::1"), 12345, hints)).await?;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].domain, Domain::IPV6);
        assert_eq!(got[0].socket_type, Type::DGRAM);
        assert_eq!(got[0].addr, "[::1]:12345".parse::<SocketAddr>()?);
        Ok(())
    });
}

/// Trio's `test_getnameinfo`: numeric flags give the address and port back; a checkpoint.
#[test]
fn getnameinfo_numeric_flags() {
    use trio::socket::{NI_NUMERICHOST, NI_NUMERICSERV, getnameinfo};
    use trio_test::assert_checkpoints;
    run(async {
        let addr: SocketAddr = "127.0.0.1:1234".parse()?;
        let got = assert_checkpoints(getnameinfo(addr, NI_NUMERICHOST | NI_NUMERICSERV)).await?;
        assert_eq!(got, ("127.0.0.1".to_owned(), "1234".to_owned()));
        let (_, service) = getnameinfo("127.0.0.1:80".parse()?, NI_NUMERICSERV).await?;
        assert_eq!(service, "80");
        let (host, _) = getnameinfo("127.0.0.1:80".parse()?, NI_NUMERICHOST).await?;
        assert_eq!(host, "127.0.0.1");
        Ok(())
    });
}

/// Trio's `test_from_stdlib_socket` and `test_sniff_sockopts`: a wrapped std socket keeps
/// its fd, family and type, and works.
#[test]
fn from_std_keeps_the_fd_family_and_type() {
    run(async {
        let (sa, sb) = std::os::unix::net::UnixStream::pair()?;
        let fd = sa.as_raw_fd();
        let ta = Socket::from_std(sa)?;
        assert_eq!(ta.socket2()?.as_raw_fd(), fd);
        assert_eq!(ta.domain()?, Domain::UNIX);
        ta.send(b"x").await?;
        let mut got = [0; 1];
        std::io::Read::read_exact(&mut &sb, &mut got)?;
        assert_eq!(&got, b"x");
        for (addr, ty) in [("127.0.0.1:0", Type::DGRAM), ("127.0.0.1:0", Type::STREAM)] {
            let addr: SocketAddr = addr.parse()?;
            let std_socket = socket2::Socket::new(Domain::for_address(addr), ty, None)?;
            let wrapped = Socket::from_std(std_socket)?;
            assert_eq!(wrapped.domain()?, Domain::for_address(addr));
            assert_eq!(wrapped.socket_type()?, ty);
        }
        Ok(())
    });
}
