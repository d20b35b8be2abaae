//! More of Trio's `test_highlevel_socket.py`: `SocketListener`'s accept (checkpoints,
//! addresses, its socket closed underfoot, which accept errors it hides and which it
//! returns), and a `SocketStream` whose peer closed before it was made.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use common::{assert_err, run};
use trio::ClosedResourceError;
use trio::net::{SocketListener, SocketStream};
use trio::socket::{CustomSocket, Domain, SockAddr, Socket, Type};
use trio::stream::prelude::*;
use trio_test::assert_checkpoints;

/// A listening TCP socket on 127.0.0.1.
fn listening() -> trio::Result<Socket> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.socket2()?
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    sock.socket2()?.listen(10)?;
    Ok(sock)
}

/// Trio's `test_SocketListener`: accept and close are checkpoints, the stream's addresses are
/// the connection's, closing twice is fine, and accept after close fails.
#[test]
fn socket_listener_accept_and_close() {
    run(async {
        let listener = SocketListener::new(listening()?)?;
        let addr = listener.socket().local_addr()?;
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        client.connect(&addr).await?;
        let server = assert_checkpoints(listener.accept()).await?;
        assert_eq!(server.socket().local_addr()?, addr);
        assert_eq!(server.socket().peer_addr()?, client.local_addr()?);
        assert_checkpoints(listener.aclose()).await?;
        assert_checkpoints(listener.aclose()).await?;
        let err = assert_checkpoints(listener.accept()).await.unwrap_err();
        assert!(err.is::<ClosedResourceError>(), "{err}");
        server.aclose().await
    });
}

/// Trio's `test_SocketListener_socket_closed_underfoot`: the socket closed, not the
/// listener.
#[test]
fn socket_listener_socket_closed_underfoot() {
    run(async {
        let listener = SocketListener::new(listening()?)?;
        listener.socket().close();
        let err = assert_checkpoints(listener.accept()).await.unwrap_err();
        assert!(err.is::<ClosedResourceError>(), "{err}");
        Ok(())
    });
}

/// What the fake listening socket's `accept` does next.
enum Event {
    Fail(i32),
    Accept,
}

/// A listening socket whose `accept` plays a script (Trio's `FakeSocket`).
struct ScriptedListener {
    events: Rc<RefCell<VecDeque<Event>>>,
}

/// A connected socket for the script's accepts.
struct Connected;

impl CustomSocket for Connected {
    fn socket_type(&self) -> Type {
        Type::STREAM
    }
    fn domain(&self) -> Domain {
        Domain::IPV4
    }
}

impl CustomSocket for ScriptedListener {
    fn socket_type(&self) -> Type {
        Type::STREAM
    }
    fn domain(&self) -> Domain {
        Domain::IPV4
    }
    fn poll_accept(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<(Socket, SockAddr)>> {
        let event = self.events.borrow_mut().pop_front();
        Poll::Ready(match event {
            Some(Event::Fail(errno)) => Err(io::Error::from_raw_os_error(errno).into()),
            Some(Event::Accept) => {
                let addr: std::net::SocketAddr = "127.0.0.1:1".parse()?;
                Socket::from_custom(Connected).map(|s| (s, addr.into()))
            }
            None => Err(io::Error::other("the script ran out").into()),
        })
    }
}

/// Trio's `test_SocketListener_accept_errors`: errors that concern one connection
/// (`ECONNABORTED`, `EPERM`, `EPROTO`) are skipped; others (`EMFILE`, `EFAULT`, `ENOBUFS`)
/// come out with their errno; every accept is a checkpoint.
#[test]
fn socket_listener_accept_errors() {
    run(async {
        use Event::{Accept, Fail};
        let events = Rc::new(RefCell::new(VecDeque::from([
            Fail(libc::ECONNABORTED),
            Fail(libc::EPERM),
            Fail(libc::EPROTO),
            Accept,
            Fail(libc::EMFILE),
            Fail(libc::EFAULT),
            Fail(libc::ENOBUFS),
            Accept,
        ])));
        let listener = SocketListener::new(Socket::from_custom(ScriptedListener {
            events: events.clone(),
        })?)?;
        let stream = assert_checkpoints(listener.accept()).await?;
        assert!(stream.socket().is_custom());
        for errno in [libc::EMFILE, libc::EFAULT, libc::ENOBUFS] {
            let err = assert_checkpoints(listener.accept()).await.unwrap_err();
            let io = err.downcast_ref::<io::Error>().expect("an io::Error");
            assert_eq!(io.raw_os_error(), Some(errno), "{err}");
        }
        assert_checkpoints(listener.accept()).await?;
        assert!(events.borrow().is_empty());
        Ok(())
    });
}

/// Trio's `test_socket_stream_works_when_peer_has_already_closed`.
#[test]
fn socket_stream_works_when_peer_has_already_closed() {
    run(async {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        b.send(b"x").await?;
        b.close();
        let stream = SocketStream::new(a)?;
        assert_eq!(stream.receive_some(1).await?, b"x");
        assert_eq!(stream.receive_some(1).await?, b"");
        Ok(())
    });
}

/// Trio's `test_SocketStream_basics` / `test_SocketListener`: the wrong sockets are refused
/// with Trio's messages.
#[test]
fn the_wrong_sockets_are_refused_with_trios_messages() {
    run(async {
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        let err = SocketStream::new(udp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SocketStream requires a SOCK_STREAM socket"
        );
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        let err = SocketListener::new(udp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SocketListener requires a SOCK_STREAM socket"
        );
        let bound = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        bound
            .socket2()?
            .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
        assert_err::<trio::UsageError, _>(SocketListener::new(bound));
        Ok(())
    });
}
