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

    let (transport, thread) = ssl_echo_server(pki.server.clone())?;
    let s = SslStream::client(transport, pki.client.clone(), HOST)?;
    s.do_handshake().await?;
    assert_checkpoints(s.aclose()).await?;
    thread.join().expect("the echo thread");
    Ok(())
}