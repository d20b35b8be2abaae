//! A TLS echo server and a client that talks to it, in one program.
//!
//! ```text
//! cargo run --features tls --example tls_echo -- hello world
//! ```
//!
//! The server presents a certificate for `localhost` signed by a certificate authority made up
//! on the spot (`trio_test::TestCa`); the client trusts that authority only. A real server
//! loads its certificate chain and key from files instead (see `rustls::pki_types::pem`), and
//! a real client trusts the system's roots or `webpki-roots`.

use std::rc::Rc;

use trio::net::{ServeOptions, SocketStream};
use trio::stream::prelude::*;
use trio::tls::{SslListener, SslStream, open_ssl_over_tcp_stream, serve_ssl_over_tcp};
use trio_test::TestCa;

/// Echoes one connection until the client closes it (with `close_notify`: a peer that just
/// drops the connection is reported as broken).
async fn echo(stream: SslStream<SocketStream>) -> trio::Result<()> {
    let result = async {
        loop {
            let data = stream.receive_some(16384).await?;
            if data.is_empty() {
                return stream.aclose().await;
            }
            stream.send_all(&data).await?;
        }
    }
    .await;
    match result {
        // A handler's error would stop the whole server: report it and move on.
        Err(e) if !e.is_cancelled() => {
            eprintln!("tls_echo server: {e}");
            Ok(())
        }
        other => other,
    }
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let message = match words.is_empty() {
        true => "hello over TLS".to_owned(),
        false => words.join(" "),
    };

    let ca = TestCa::new()?;
    let server_config = ca.issue_cert(["localhost"])?.server_config()?;
    let client_config = ca.client_config()?;

    trio::open_nursery(|nursery| async move {
        let options = ServeOptions::new().host("127.0.0.1");
        let listeners: Vec<Rc<SslListener<_>>> = nursery
            .start(|status| serve_ssl_over_tcp(echo, 0, server_config, options.task_status(status)))
            .await?;
        let port = listeners[0].transport_listener().local_addr()?.port();
        println!("listening on 127.0.0.1:{port}");

        // The certificate is for "localhost": connect by that name.
        let client = open_ssl_over_tcp_stream("localhost", port, client_config).await?;
        client.do_handshake().await?;
        println!(
            "connected with {:?}, {:?}",
            client.protocol_version()?,
            client.cipher_suite()?.suite()
        );
        client.send_all(message.as_bytes()).await?;
        let mut echoed = Vec::new();
        while echoed.len() < message.len() {
            let data = client.receive_some(16384).await?;
            if data.is_empty() {
                break;
            }
            echoed.extend(data);
        }
        println!("echoed: {}", String::from_utf8_lossy(&echoed));
        client.aclose().await?;
        nursery.cancel_scope().cancel();
        Ok(())
    })
    .await
}
