//! `trio::tls` over real loopback TCP: `open_ssl_over_tcp_stream`,
//! `open_ssl_over_tcp_listeners`, `SslListener` (Trio's `test_SSLListener`) and
//! `serve_ssl_over_tcp`.

use std::rc::Rc;
use std::sync::Arc;

use trio::net::{ServeOptions, SocketListener, SocketStream, open_tcp_listeners, open_tcp_stream};
use trio::socket::{
    AddrInfo, AddrInfoHints, HostnameResolver, LocalBoxFuture, Type, set_custom_hostname_resolver,
};
use trio::stream::prelude::*;
use trio::tls::rustls::{self, CertificateError};
use trio::tls::{
    SslListener, SslStream, open_ssl_over_tcp_listeners, open_ssl_over_tcp_stream,
    open_ssl_over_tcp_stream_with, serve_ssl_over_tcp,
};
use trio::{BrokenResourceError, Result, aclose_forcefully, open_nursery};
use trio_test::TestCa;

/// Echoes until EOF, then closes.
async fn echo(stream: SslStream<SocketStream>) -> Result<()> {
    loop {
        let data = stream.receive_some(65536).await?;
        if data.is_empty() {
            return stream.aclose().await;
        }
        stream.send_all(&data).await?;
    }
}

#[trio::test]
async fn loopback_echo_with_the_tcp_helpers() -> Result<()> {
    let ca = TestCa::new()?;
    let cert = ca.issue_cert(["localhost", "127.0.0.1"])?;
    let listeners =
        open_ssl_over_tcp_listeners(0, cert.server_config()?, Some("127.0.0.1")).await?;
    assert_eq!(listeners.len(), 1);
    let listener = Rc::new(listeners.into_iter().next().expect("one listener"));
    let port = listener.transport_listener().local_addr()?.port();
    let server_side = listener.clone();
    let client_config = Arc::new(ca.client_config()?);
    open_nursery(|n| async move {
        n.start_soon(async move { echo(server_side.accept().await?).await })?;
        // By IP address: the certificate names 127.0.0.1 too.
        let client = open_ssl_over_tcp_stream("127.0.0.1", port, client_config).await?;
        assert_eq!(
            client.transport_stream().peer_addr()?.map(|a| a.port()),
            Some(port)
        );
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        client.send_all(&data).await?;
        let mut echoed = Vec::new();
        while echoed.len() < data.len() {
            echoed.extend(client.receive_some(65536).await?);
        }
        assert!(echoed == data, "the echo differs");
        client.send_eof().await?;
        assert_eq!(
            client.receive_some(10).await?,
            b"",
            "the server closed after our EOF"
        );
        client.aclose().await
    })
    .await?;
    listener.aclose().await
}

#[trio::test]
async fn serve_ssl_over_tcp_serves_each_connection() -> Result<()> {
    let ca = TestCa::new()?;
    let server_config = ca.issue_cert(["localhost"])?.server_config()?;
    let client_config = Arc::new(ca.client_config()?);
    open_nursery(|nursery| async move {
        let options = ServeOptions::new().host("127.0.0.1");
        let listeners: Vec<Rc<SslListener<SocketListener>>> = nursery
            .start(|status| serve_ssl_over_tcp(echo, 0, server_config, options.task_status(status)))
            .await?;
        let port = listeners[0].transport_listener().local_addr()?.port();
        open_nursery(|clients| async move {
            for i in 0..5u8 {
                let config = client_config.clone();
                clients.start_soon(async move {
                    let client = open_ssl_over_tcp_stream("localhost", port, config).await?;
                    client.send_all(&[i; 100]).await?;
                    let mut got = Vec::new();
                    while got.len() < 100 {
                        got.extend(client.receive_some(100).await?);
                    }
                    assert_eq!(got, [i; 100]);
                    client.aclose().await
                })?;
            }
            Ok(())
        })
        .await?;
        nursery.cancel_scope().cancel();
        Ok(())
    })
    .await
}

/// Trio's `test_SSLListener`.
#[trio::test]
async fn ssl_listener_wraps_accepted_streams() -> Result<()> {
    let ca = TestCa::new()?;
    let server_config = Arc::new(ca.issue_cert(["localhost"])?.server_config()?);
    let client_config = Arc::new(ca.client_config()?);
    for https in [false, true] {
        let transport = open_tcp_listeners(0, Some("127.0.0.1")).await?.remove(0);
        let port = transport.local_addr()?.port();
        let listener =
            SslListener::new(transport, server_config.clone()).with_https_compatible(https);
        assert_eq!(listener.is_https_compatible(), https);
        let client = SslStream::client(
            open_tcp_stream("127.0.0.1", port).await?,
            client_config.clone(),
            "localhost",
        )?;
        let server = listener.accept().await?;
        assert!(server.is_server_side());
        assert_eq!(server.is_https_compatible(), https);
        let (client, server) = (Rc::new(client), Rc::new(server));
        let (c, s) = (client.clone(), server.clone());
        open_nursery(|n| async move {
            n.start_soon(async move { c.do_handshake().await })?;
            n.start_soon(async move { s.do_handshake().await })?;
            Ok(())
        })
        .await?;
        assert_eq!(server.server_hostname().as_deref(), Some("localhost"));
        aclose_forcefully(&*client).await?;
        aclose_forcefully(&*server).await?;
        listener.aclose().await?;
        let err = listener.accept().await.unwrap_err();
        assert!(
            err.is_closed(),
            "closing the SslListener closes its transport: {err}"
        );
    }
    Ok(())
}

#[trio::test]
async fn wrong_host_over_tcp_is_a_broken_handshake() -> Result<()> {
    let ca = TestCa::new()?;
    // A certificate for "localhost" only: connecting to 127.0.0.1 by address must fail.
    let listener = open_ssl_over_tcp_listeners(
        0,
        ca.issue_cert(["localhost"])?.server_config()?,
        Some("127.0.0.1"),
    )
    .await?
    .remove(0);
    let port = listener.transport_listener().local_addr()?.port();
    let listener = Rc::new(listener);
    let server_side = listener.clone();
    let client_config = Arc::new(ca.client_config()?);
    open_nursery(|n| async move {
        n.start_soon(async move {
            let server = server_side.accept().await?;
            let err = server.do_handshake().await.unwrap_err();
            assert!(err.is_broken(), "{err}");
            Ok(())
        })?;
        let client = open_ssl_over_tcp_stream("127.0.0.1", port, client_config).await?;
        let err = client.do_handshake().await.unwrap_err();
        let broken = err.downcast_ref::<BrokenResourceError>().expect("broken");
        let cause = std::error::Error::source(broken)
            .and_then(|s| s.downcast_ref::<rustls::Error>())
            .expect("the rustls error");
        assert!(
            matches!(
                cause,
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{err}"
        );
        Ok(())
    })
    .await
}

#[trio::test]
async fn a_bad_server_name_fails_before_connecting() -> Result<()> {
    let ca = TestCa::new()?;
    // Nothing listens on port 1: had it tried to connect, the error would be a refusal.
    let err = open_ssl_over_tcp_stream("bad name!", 1, ca.client_config()?)
        .await
        .unwrap_err();
    assert!(err.is::<trio::UsageError>(), "{err}");
    Ok(())
}

/// Over a socket, an `SslStream` holds plain data and may move between threads (hyper's
/// upgrades and hyper-util need `Send` I/O): checked when this compiles.
#[test]
fn streams_and_listeners_over_sockets_are_send() {
    fn send<T: Send>() -> &'static str {
        std::any::type_name::<T>()
    }
    assert!(send::<SslStream<SocketStream>>().contains("SslStream"));
    assert!(send::<SslListener<SocketListener>>().contains("SslListener"));
}

/// Resolves every name to one address (Trio's `FakeHostnameResolver`).
struct FakeResolver(std::net::SocketAddr);

impl HostnameResolver for FakeResolver {
    fn getaddrinfo(
        &self,
        _host: Option<&str>,
        _port: u16,
        _hints: AddrInfoHints,
    ) -> LocalBoxFuture<Result<Vec<AddrInfo>>> {
        let found = vec![AddrInfo::new(self.0, Type::STREAM)];
        Box::pin(async move { Ok(found) })
    }

    fn getnameinfo(
        &self,
        _: std::net::SocketAddr,
        _: i32,
    ) -> LocalBoxFuture<Result<(String, String)>> {
        Box::pin(async { Err(trio::Error::new(trio::UsageError::new("not here"))) })
    }
}

/// Trio's `test_open_ssl_over_tcp_stream_and_everything_else`: `serve_ssl_over_tcp` with
/// `https_compatible` passed through its options, and `open_ssl_over_tcp_stream` (through
/// a resolver that sends every name to the server) failing for an untrusted CA and for the
/// wrong name, and working with both right.
#[trio::test]
async fn open_ssl_over_tcp_stream_and_everything_else() -> Result<()> {
    const HOST: &str = "trio-test-1.example.org";
    let ca = TestCa::new()?;
    let server_config = ca.issue_cert([HOST])?.server_config()?;
    let client_config = Arc::new(ca.client_config()?);
    let stranger = Arc::new(TestCa::new()?.client_config()?);
    for https in [false, true] {
        let (client_config, stranger, server_config) = (
            client_config.clone(),
            stranger.clone(),
            server_config.clone(),
        );
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let record = seen.clone();
        let handler = move |stream: SslStream<SocketStream>| {
            record.borrow_mut().push(stream.is_https_compatible());
            async move {
                match echo(stream).await {
                    Err(e) if e.is_broken() => Ok(()),
                    other => other,
                }
            }
        };
        open_nursery(|nursery| async move {
            let options = ServeOptions::new()
                .host("127.0.0.1")
                .https_compatible(https);
            let listeners: Vec<Rc<SslListener<SocketListener>>> = nursery
                .start(|status| {
                    serve_ssl_over_tcp(handler, 0, server_config, options.task_status(status))
                })
                .await?;
            assert_eq!(listeners.len(), 1);
            assert_eq!(listeners[0].is_https_compatible(), https);
            let addr = listeners[0].transport_listener().local_addr()?;
            set_custom_hostname_resolver(Some(Rc::new(FakeResolver(addr))))?;

            let stream = open_ssl_over_tcp_stream(HOST, 80, stranger).await?;
            assert!(stream.do_handshake().await.unwrap_err().is_broken());
            aclose_forcefully(&stream).await?;

            let stream =
                open_ssl_over_tcp_stream("xyzzy.example.org", 80, client_config.clone()).await?;
            assert!(stream.do_handshake().await.unwrap_err().is_broken());
            aclose_forcefully(&stream).await?;

            let options = trio::net::ConnectOptions::new().happy_eyeballs_delay(1.0);
            let stream =
                open_ssl_over_tcp_stream_with(HOST, 80, client_config.clone(), &options).await?;
            let stream = stream.with_https_compatible(https);
            assert_eq!(stream.server_hostname().as_deref(), Some(HOST));
            stream.send_all(b"x").await?;
            assert_eq!(stream.receive_some(1).await?, b"x");
            stream.aclose().await?;
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(*seen.borrow(), [https; 3], "each accepted stream");
    }
    Ok(())
}
