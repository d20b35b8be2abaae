//! More of Trio's `test_ssl.py` for `trio::tls::SslStream`: `unwrap`, errors during the
//! handshake and during `aclose`, `send_all(b"")`, `wait_send_all_might_not_block` before the
//! handshake, and the tests against a blocking TLS peer in a thread (Trio's
//! `ssl_echo_serve_sync`, here rustls's blocking `StreamOwned` over a socketpair).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;

use trio::net::SocketStream;
use trio::socket::Socket;
use trio::stream::prelude::*;
use trio::tls::rustls::{self, ClientConnection, ServerConnection, StreamOwned};
use trio::tls::{ClientConfig, NeedHandshakeError, ServerConfig, SslStream};
use trio::{Result, open_nursery};
use trio_test::{AsyncHook, Sequencer, TestCa, assert_checkpoints, memory_stream_pair};

const HOST: &str = "trio-test-1.example.org";

struct Pki {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn pki() -> Result<Pki> {
    let ca = TestCa::new()?;
    let cert = ca.issue_cert([HOST])?;
    Ok(Pki {
        client: Arc::new(ca.client_config()?),
        server: Arc::new(cert.server_config()?),
    })
}

type MemSsl = SslStream<trio_test::MemoryStapledStream>;

fn memory_pair(pki: &Pki) -> Result<(MemSsl, MemSsl)> {
    let (a, b) = memory_stream_pair();
    Ok((
        SslStream::client(a, pki.client.clone(), HOST)?,
        SslStream::server(b, pki.server.clone())?,
    ))
}

async fn handshake_both<A: Stream + 'static, B: Stream + 'static>(
    a: &Rc<SslStream<A>>,
    b: &Rc<SslStream<B>>,
) -> Result<()> {
    let (a, b) = (a.clone(), b.clone());
    open_nursery(|n| async move {
        n.start_soon(async move { a.do_handshake().await })?;
        n.start_soon(async move { b.do_handshake().await })?;
        Ok(())
    })
    .await
}

fn boom() -> AsyncHook {
    AsyncHook::new(|| async { Err(trio::Error::new(std::io::Error::other("boom"))) })
}

/// Trio's `test_unwrap`: each side gets its transport back; the server, whose `unwrap`
/// receives the client's `close_notify` and plain bytes in one lump, gets those bytes as its
/// trailing data.
#[trio::test]
async fn unwrap_returns_the_transport_and_trailing_bytes() -> Result<()> {
    let pki = pki()?;
    let (client, server) = memory_pair(&pki)?;
    let client_send = client.transport_stream().send_stream().clone();
    let server_receive = server.transport_stream().receive_stream().clone();
    let seq = Rc::new(Sequencer::new());
    let seq2 = seq.clone();
    open_nursery(|n| async move {
        n.start_soon(async move {
            client.do_handshake().await?;
            client.send_all(b"x").await?;
            assert_eq!(client.receive_some(1).await?, b"y");
            client.send_all(b"z").await?;
            // From here the client's bytes wait in its transport until pumped by hand, so
            // that the server sees our close_notify and the plain bytes together.
            let hook = {
                let _step = seq.step(0).await?;
                client_send.set_send_all_hook(None)
            };
            assert_eq!(client.receive_some(1).await?, b"");
            let (raw, trailing) = client.unwrap().await?;
            assert_eq!(trailing, b"");
            raw.send_all(b"trailing").await?;
            while trio_test::memory_stream_pump(&client_send, &server_receive, None)? {}
            client_send.set_send_all_hook(hook);
            Ok(())
        })?;
        n.start_soon(async move {
            server.do_handshake().await?;
            assert_eq!(server.receive_some(1).await?, b"x");
            server.send_all(b"y").await?;
            assert_eq!(server.receive_some(1).await?, b"z");
            let (raw, trailing) = {
                let _step = seq2.step(1).await?;
                server.unwrap().await?
            };
            assert_eq!(trailing, b"trailing");
            // The transport is plain again: the client's half is still open.
            raw.aclose().await
        })?;
        Ok(())
    })
    .await
}

/// Trio's `test_closing_nice_case` (its `unwrap` part): a closed stream cannot be unwrapped.
#[trio::test]
async fn unwrap_after_aclose_is_closed() -> Result<()> {
    let pki = pki()?;
    let (client, _server) = memory_pair(&pki)?;
    trio::aclose_forcefully(&client).await?;
    let err = client.unwrap().await.unwrap_err();
    assert!(err.is_closed(), "{err}");
    Ok(())
}

/// A transport that ends before the peer's `close_notify` breaks `unwrap`.
#[trio::test]
async fn unwrap_needs_the_peers_close_notify() -> Result<()> {
    let pki = pki()?;
    let (client, server) = memory_pair(&pki)?;
    let (client, server) = (Rc::new(client), Rc::new(server));
    handshake_both(&client, &server).await?;
    // The client's transport sends EOF without a close_notify (and still receives).
    client.transport_stream().send_stream().close();
    let Ok(server) = Rc::try_unwrap(server) else {
        unreachable!("the handshake tasks are done")
    };
    let err = server.unwrap().await.unwrap_err();
    assert!(err.is_broken(), "{err}");
    assert!(err.to_string().contains("close_notify"), "{err}");
    Ok(())
}

/// Trio's `test_wait_writable_calls_underlying_wait_writable`: before the handshake it only
/// waits on the transport (the handshake does not start, nothing is sent).
#[trio::test]
async fn wait_send_all_might_not_block_only_waits_on_the_transport() -> Result<()> {
    let pki = pki()?;
    let (client, _server) = memory_pair(&pki)?;
    let calls = Rc::new(std::cell::Cell::new(0));
    let count = calls.clone();
    client
        .transport_stream()
        .send_stream()
        .set_wait_send_all_might_not_block_hook(Some(AsyncHook::new(move || {
            count.set(count.get() + 1);
            async { Ok(()) }
        })));
    client.wait_send_all_might_not_block().await?;
    assert_eq!(calls.get(), 1, "the transport's wait ran");
    let sent = client
        .transport_stream()
        .send_stream()
        .get_data_nowait(None);
    assert!(
        matches!(&sent, Err(e) if e.is::<trio::WouldBlock>()),
        "sent before the handshake: {sent:?}"
    );
    Ok(())
}

/// Trio's `test_send_error_during_handshake`.
#[trio::test]
async fn send_error_during_handshake() -> Result<()> {
    let pki = pki()?;
    let (client, _server) = memory_pair(&pki)?;
    client
        .transport_stream()
        .send_stream()
        .set_send_all_hook(Some(boom()));
    let err = assert_checkpoints(client.do_handshake()).await.unwrap_err();
    assert_eq!(err.to_string(), "boom");
    let err = assert_checkpoints(client.do_handshake()).await.unwrap_err();
    assert!(err.is_broken(), "{err}");
    Ok(())
}

/// Trio's `test_receive_error_during_handshake`.
#[trio::test]
async fn receive_error_during_handshake() -> Result<()> {
    let pki = pki()?;
    let (client, server) = memory_pair(&pki)?;
    client
        .transport_stream()
        .receive_stream()
        .set_receive_some_hook(Some(boom()));
    let client = Rc::new(client);
    let c = client.clone();
    open_nursery(|n| async move {
        n.start_soon(async move {
            let _ = server.do_handshake().await;
            Ok(())
        })?;
        let err = assert_checkpoints(c.do_handshake()).await.unwrap_err();
        assert_eq!(err.to_string(), "boom");
        n.cancel_scope().cancel();
        Ok(())
    })
    .await?;
    let err = assert_checkpoints(client.do_handshake()).await.unwrap_err();
    assert!(err.is_broken(), "{err}");
    Ok(())
}

/// Trio's `test_ssl_handshake_failure_during_aclose`: `aclose` handshakes first, and a
/// failed handshake is its error (the transport is closed anyway).
#[trio::test]
async fn handshake_failure_during_aclose() -> Result<()> {
    let pki = pki()?;
    let stranger = Arc::new(TestCa::new()?.client_config()?);
    let (a, b) = memory_stream_pair();
    let client = SslStream::client(a, stranger, HOST)?;
    let server = SslStream::server(b, pki.server.clone())?;
    open_nursery(|n| async move {
        n.start_soon(async move {
            assert!(server.do_handshake().await.unwrap_err().is_broken());
            Ok(())
        })?;
        let err = client.aclose().await.unwrap_err();
        assert!(err.is_broken(), "{err}");
        assert!(
            client
                .transport_stream()
                .send_all(b"x")
                .await
                .unwrap_err()
                .is_closed()
        );
        Ok(())
    })
    .await
}

/// NeedHandshakeError names the method as Trio does (`... before calling 'name'`).
#[test]
fn need_handshake_error_names_the_method() -> Result<()> {
    let pki = pki()?;
    let (client, _server) = memory_pair(&pki)?;
    let err = client.selected_alpn_protocol().unwrap_err();
    assert!(err.is::<NeedHandshakeError>());
    assert_eq!(
        err.to_string(),
        "call do_handshake() before calling 'selected_alpn_protocol'"
    );
    Ok(())
}

/// Trio's `test_get_channel_binding_before_handshake` and `..._after_handshake`: the
/// RFC 9266 `tls-exporter` binding (rustls has no `tls-unique`) needs the handshake, and
/// both ends agree on it.
#[trio::test]
async fn channel_binding_needs_the_handshake_and_agrees() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    let label = b"EXPORTER-Channel-Binding";
    let mut out = [0; 32];
    for side in [&a, &b] {
        let err = side
            .export_keying_material(&mut out, label, None)
            .unwrap_err();
        assert!(err.is::<NeedHandshakeError>(), "{err}");
    }
    handshake_both(&a, &b).await?;
    let (mut x, mut y) = ([0; 32], [0; 32]);
    a.export_keying_material(&mut x, label, None)?;
    b.export_keying_material(&mut y, label, None)?;
    assert_eq!(x, y);
    assert_ne!(x, [0; 32]);
    let err = a.export_keying_material(&mut [], label, None).unwrap_err();
    assert!(err.is::<trio::UsageError>(), "{err}");
    Ok(())
}

/// Trio's `ssl_echo_serve_sync`: a blocking TLS echo server (rustls's `StreamOwned`) in a
/// thread, on one end of a socketpair; the other end, as a trio `SocketStream`.
fn ssl_echo_server(server: Arc<ServerConfig>) -> Result<(SocketStream, JoinHandle<()>)> {
    let (a, b) = UnixStream::pair()?;
    let thread = std::thread::spawn(move || {
        let conn = ServerConnection::new(server).expect("a server connection");
        let mut tls = StreamOwned::new(conn, b);
        let mut buf = [0; 4096];
        loop {
            match tls.read(&mut buf) {
                Ok(0) => {
                    // The peer sent close_notify: answer in kind; it may be gone already.
                    tls.conn.send_close_notify();
                    let _ = tls.conn.complete_io(&mut tls.sock);
                    return;
                }
                Ok(n) => tls.write_all(&buf[..n]).expect("echo"),
                // The client went away (the tests that close forcefully).
                Err(_) => return,
            }
        }
    });
    let stream = SocketStream::new(Socket::from_std(a)?)?;
    Ok((stream, thread))
}

/// Trio's `test_ssl_client_basics` (the good case) and `test_send_all_empty_string`.
#[trio::test]
async fn client_against_a_blocking_echo_server() -> Result<()> {
    let pki = pki()?;
    let (transport, thread) = ssl_echo_server(pki.server.clone())?;
    let s = SslStream::client(transport, pki.client.clone(), HOST)?;
    assert!(!s.is_server_side());
    s.do_handshake().await?;
    // rustls, like OpenSSL, must not read an empty write as anything.
    assert_checkpoints(s.send_all(b"")).await?;
    assert_checkpoints(s.send_all(b"")).await?;
    s.send_all(b"x").await?;
    assert_eq!(s.receive_some(1).await?, b"x");
    s.aclose().await?;
    thread.join().expect("the echo thread");
    Ok(())
}

/// Trio's `test_checkpoints`, `unwrap` included, against the blocking echo server.
#[trio::test]
async fn checkpoints_against_a_blocking_echo_server() -> Result<()> {
    let pki = pki()?;
    let (transport, thread) = ssl_echo_server(pki.server.clone())?;
    let s = SslStream::client(transport, pki.client.clone(), HOST)?;
    assert_checkpoints(s.do_handshake()).await?;
    assert_checkpoints(s.do_handshake()).await?;
    assert_checkpoints(s.wait_send_all_might_not_block()).await?;
    assert_checkpoints(s.send_all(b"xxx")).await?;
    assert_eq!(assert_checkpoints(s.receive_some(1)).await?, b"x");
    // The rest of the record waits in rustls's buffer: still a checkpoint.
    assert_eq!(assert_checkpoints(s.receive_some(1)).await?, b"x");
    assert_eq!(assert_checkpoints(s.receive_some(1)).await?, b"x");
    let (raw, trailing) = assert_checkpoints(s.unwrap()).await?;
    assert_eq!(trailing, b"");
    // The server closed its end after its close_notify.
    assert_eq!(raw.receive_some(10).await?, b"");
    thread.join().expect("the echo thread");

    let (transport, thread) = ssl_echo_server(pki.server.clone())?;
    let s = SslStream::client(transport, pki.client.clone(), HOST)?;
    s.do_handshake().await?;
    assert_checkpoints(s.aclose()).await?;
    thread.join().expect("the echo thread");
    Ok(())
}

/// Trio's `test_full_duplex_basics` against the blocking echo server: a sender, a receiver
/// and two handshakers at once.
#[trio::test]
async fn full_duplex_against_a_blocking_echo_server() -> Result<()> {
    const CHUNKS: usize = 30;
    const CHUNK_SIZE: usize = 32768;
    let pki = pki()?;
    let (transport, thread) = ssl_echo_server(pki.server.clone())?;
    let s = Rc::new(SslStream::client(transport, pki.client.clone(), HOST)?);
    let (s1, s2, s3, s4) = (s.clone(), s.clone(), s.clone(), s.clone());
    open_nursery(|n| async move {
        n.start_soon(async move {
            for i in 0..CHUNKS {
                s1.send_all(&[i as u8; CHUNK_SIZE]).await?;
            }
            Ok(())
        })?;
        n.start_soon(async move {
            let mut received = Vec::new();
            while received.len() < CHUNKS * CHUNK_SIZE {
                received.extend(s2.receive_some(CHUNK_SIZE / 2).await?);
            }
            let expected: Vec<u8> = (0..CHUNKS).flat_map(|i| [i as u8; CHUNK_SIZE]).collect();
            assert!(received == expected, "the echo differs");
            Ok(())
        })?;
        n.start_soon(async move { s3.do_handshake().await })?;
        n.start_soon(async move { s4.do_handshake().await })?;
        Ok(())
    })
    .await?;
    s.aclose().await?;
    thread.join().expect("the echo thread");
    Ok(())
}

/// Trio's `test_ssl_server_basics`: a blocking TLS client in a thread against a trio server.
#[trio::test]
async fn server_against_a_blocking_client() -> Result<()> {
    let pki = pki()?;
    let (a, b) = UnixStream::pair()?;
    let server = SslStream::server(SocketStream::new(Socket::from_std(b)?)?, pki.server.clone())?;
    assert!(server.is_server_side());
    let client_config = pki.client.clone();
    let thread = std::thread::spawn(move || {
        let name = rustls::pki_types::ServerName::try_from(HOST).expect("a name");
        let conn = ClientConnection::new(client_config, name).expect("a client connection");
        let mut tls = StreamOwned::new(conn, a);
        tls.write_all(b"x").expect("send x");
        let mut got = [0; 1];
        tls.read_exact(&mut got).expect("receive y");
        assert_eq!(&got, b"y");
        tls.write_all(b"z").expect("send z");
        // Python's `unwrap`: close_notify, then wait for the server's.
        tls.conn.send_close_notify();
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("send close_notify");
        assert_eq!(tls.read(&mut got).expect("the server's close_notify"), 0);
    });
    assert_eq!(server.receive_some(1).await?, b"x");
    server.send_all(b"y").await?;
    assert_eq!(server.receive_some(1).await?, b"z");
    assert_eq!(server.receive_some(1).await?, b"");
    server.aclose().await?;
    thread.join().expect("the client thread");
    Ok(())
}

/// A transport whose close counts itself and fails (after closing the stream it wraps).
struct FailingClose {
    inner: trio_test::MemoryStapledStream,
    closes: Rc<std::cell::Cell<usize>>,
}

impl AsyncResource for FailingClose {
    fn poll_close(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        let _ = std::task::ready!(self.inner.poll_close(cx));
        self.closes.set(self.closes.get() + 1);
        std::task::Poll::Ready(Err(trio::Error::new(std::io::Error::other("close failed"))))
    }
}

impl SendStream for FailingClose {
    fn poll_send(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<Result<usize>> {
        self.inner.poll_send(cx, buf)
    }
    fn poll_flush(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        self.inner.poll_flush(cx)
    }
    fn poll_wait_send_all_might_not_block(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.inner.poll_wait_send_all_might_not_block(cx)
    }
}

impl ReceiveStream for FailingClose {
    fn poll_receive(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut trio::stream::ReceiveBuf<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.inner.poll_receive(cx, buf)
    }
}

/// Trio's `test_ssl_only_closes_stream_once`: a transport whose close fails is closed once;
/// `aclose` reports its error, and a second `aclose` succeeds without closing it again.
#[trio::test]
async fn a_failing_transport_close_happens_once() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_stream_pair();
    let closes = Rc::new(std::cell::Cell::new(0));
    let transport = FailingClose {
        inner: a,
        closes: closes.clone(),
    };
    let client = Rc::new(SslStream::client(transport, pki.client.clone(), HOST)?);
    let server = Rc::new(SslStream::server(b, pki.server.clone())?);
    handshake_both(&client, &server).await?;
    let err = client.aclose().await.unwrap_err();
    assert_eq!(err.to_string(), "close failed");
    assert_eq!(closes.get(), 1);
    client.aclose().await?;
    assert_eq!(closes.get(), 1, "closed once");
    // The close_notify went out before the transport closed.
    assert_eq!(server.receive_some(10).await?, b"");
    Ok(())
}
