//! TLS echo over loopback TCP: trio's `SslStream` beside tokio-rustls, on the same rustls
//! (0.23, ring) with the same configurations from `trio_test::TestCa`.
//!
//! One operation is one round trip of a `MESSAGE`-byte message over a TLS 1.3 connection that
//! is set up (and its handshake done) before the clock starts: the client sends it, the server
//! echoes it, the client reads it back whole.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trio::stream::prelude::*;
use trio::tls::{ClientConfig, ServerConfig, SslStream};

use super::io_cases::TokioIo;
use super::rt::trio_run;

/// The size of one message.
pub const MESSAGE: usize = 16 * 1024;

/// A server and a client configuration that trust each other.
pub fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let ca = trio_test::TestCa::new().expect("a test CA");
    let server = ca
        .issue_cert(["localhost"])
        .expect("a certificate")
        .server_config()
        .expect("a server config");
    let client = ca.client_config().expect("a client config");
    (Arc::new(server), Arc::new(client))
}

pub fn trio_tls_echo(iters: u64) -> Duration {
    let (server_config, client_config) = configs();
    trio_run(async move {
        let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let port = listeners[0].local_addr()?.port();
        let client_tcp = trio::net::open_tcp_stream("127.0.0.1", port).await?;
        let server_tcp = listeners[0].accept().await?;
        let client = SslStream::client(client_tcp, client_config, "localhost")?;
        let server = SslStream::server(server_tcp, server_config)?;
        trio::join((client.do_handshake(), server.do_handshake())).await?;
        let message = vec![7u8; MESSAGE];
        let mut reply = vec![0u8; MESSAGE];
        let elapsed = std::cell::Cell::new(Duration::ZERO);
        let elapsed_in_body = &elapsed;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let mut buf = vec![0u8; MESSAGE];
                loop {
                    let n = server.receive_into(&mut buf).await?;
                    if n == 0 {
                        return server.aclose().await;
                    }
                    server.send_all(&buf[..n]).await?;
                }
            })?;
            let start = Instant::now();
            for _ in 0..iters {
                client.send_all(&message).await?;
                let mut got = 0;
                while got < MESSAGE {
                    got += client.receive_into(&mut reply[got..]).await?;
                }
                black_box(&reply);
            }
            elapsed_in_body.set(start.elapsed());
            client.aclose().await
        })
        .await?;
        Ok(elapsed.get())
    })
}

pub fn tokio_tls_echo(tokio: &TokioIo, iters: u64) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server_config, client_config) = configs();
    tokio.run(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connector = tokio_rustls::TlsConnector::from(client_config);
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        let (client_tcp, server_tcp) = tokio::join!(
            async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap()
            },
            async { listener.accept().await.unwrap().0 },
        );
        client_tcp.set_nodelay(true).unwrap();
        server_tcp.set_nodelay(true).unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (client, server) = tokio::join!(
            async { connector.connect(name, client_tcp).await.unwrap() },
            async { acceptor.accept(server_tcp).await.unwrap() },
        );
        let echo = tokio::task::spawn_local(async move {
            let mut server = server;
            let mut buf = vec![0u8; MESSAGE];
            loop {
                let n = server.read(&mut buf).await.unwrap();
                if n == 0 {
                    let _ = server.shutdown().await;
                    return;
                }
                server.write_all(&buf[..n]).await.unwrap();
            }
        });
        let mut client = client;
        let message = vec![7u8; MESSAGE];
        let mut reply = vec![0u8; MESSAGE];
        let start = Instant::now();
        for _ in 0..iters {
            client.write_all(&message).await.unwrap();
            client.read_exact(&mut reply).await.unwrap();
            black_box(&reply);
        }
        let elapsed = start.elapsed();
        client.shutdown().await.unwrap();
        echo.await.unwrap();
        elapsed
    })
}
