//! TLS over trio's streams, on [rustls](https://docs.rs/rustls) (Trio's SSL/TLS support:
//! `trio.SSLStream`, `trio.SSLListener`, `open_ssl_over_tcp_stream`,
//! `open_ssl_over_tcp_listeners`, `serve_ssl_over_tcp`). Behind trio's `tls` feature.
//!
//! - [`SslStream`] wraps any [`Stream`] (a TCP connection, a memory
//!   stream, another `SslStream`) and is a stream itself: `send_all`, `receive_some` and
//!   `aclose` work as on any other.
//! - [`SslListener`] wraps a [`Listener`](crate::stream::Listener): what it accepts are server
//!   `SslStream`s.
//! - [`open_ssl_over_tcp_stream`], [`open_ssl_over_tcp_listeners`] and [`serve_ssl_over_tcp`]
//!   are the TCP functions of [`trio::net`](crate::net) with TLS on top.
//!
//! Configuration is rustls's own: a [`ClientConfig`] (which roots to trust, client
//! certificates, ALPN protocols) or a [`ServerConfig`] (the certificate chain and key, ALPN).
//! trio builds rustls with the *ring* crypto provider only; build configurations with
//! [`crypto_provider()`] and `builder_with_provider`, as rustls 0.24 will require:
//!
//! ```no_run
//! use std::sync::Arc;
//! use trio::stream::prelude::*;
//! use trio::tls::{ClientConfig, crypto_provider, open_ssl_over_tcp_stream};
//! use trio::tls::rustls::RootCertStore;
//!
//! # fn main() -> trio::Result<()> {
//! # let roots = RootCertStore::empty();
//! // `roots`: the certificates you trust (from webpki-roots, rustls-native-certs, a file).
//! let config = ClientConfig::builder_with_provider(crypto_provider())
//!     .with_safe_default_protocol_versions()?
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! let config = Arc::new(config);
//! trio::run(async move {
//!     let stream = open_ssl_over_tcp_stream("example.com", 443, config).await?;
//!     let stream = stream.with_https_compatible(true);
//!     stream.send_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//!     let reply = stream.receive_some(65536).await?;
//!     println!("{}", String::from_utf8_lossy(&reply));
//!     stream.aclose().await
//! })
//! # }
//! ```
//!
//! For tests, `trio_test::TestCa` (trio-test's `tls` feature) makes a throwaway certificate
//! authority and configurations that trust it, as Trio's tests use `trustme`.

mod conn;
mod io;
mod listener;
mod stream;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The rustls crate trio is built with, for its configuration types (`RootCertStore`,
/// `pki_types`, `version`, ...).
pub use rustls;
pub use rustls::crypto::CryptoProvider;
pub use rustls::pki_types::CertificateDer;
pub use rustls::{ClientConfig, ProtocolVersion, ServerConfig, SupportedCipherSuite};

pub use listener::{
    SslListener, open_ssl_over_tcp_listeners, open_ssl_over_tcp_stream,
    open_ssl_over_tcp_stream_with, serve_ssl_over_tcp,
};
pub use stream::SslStream;

use crate::Result;
use crate::socket::Nonblocking;
use crate::stream::Stream;

/// The crypto provider trio's rustls is built with (*ring*), for
/// `ClientConfig::builder_with_provider` and `ServerConfig::builder_with_provider`.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    conn::crypto_provider()
}

/// An [`SslStream`] method that needs the handshake was called before it finished (Trio's
/// `NeedHandshakeError`): call [`do_handshake`](SslStream::do_handshake) first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedHandshakeError {
    method: &'static str,
}

impl NeedHandshakeError {
    fn new(method: &'static str) -> Self {
        NeedHandshakeError { method }
    }
}

impl fmt::Display for NeedHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call do_handshake() before calling {}", self.method)
    }
}

impl std::error::Error for NeedHandshakeError {}

/// [`send_eof`](crate::stream::HalfCloseableStreamExt::send_eof) on an [`SslStream`] that did
/// not negotiate TLS 1.3: before 1.3, `close_notify` closes the whole connection (RFC 5246
/// §7.2.1), so a TLS stream can half-close only over TLS 1.3 (RFC 8446 §6.1). Close the stream
/// instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendEofNotSupported {
    version: Option<ProtocolVersion>,
}

impl SendEofNotSupported {
    fn new(version: Option<ProtocolVersion>) -> Self {
        SendEofNotSupported { version }
    }

    /// The version the connection negotiated.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }
}

impl fmt::Display for SendEofNotSupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = match &self.version {
            Some(version) => format!("{version:?}"),
            None => "an unknown version".to_owned(),
        };
        write!(
            f,
            "send_eof needs TLS 1.3, but this connection uses {version}, whose close_notify \
             closes both directions; close the stream instead"
        )
    }
}

impl std::error::Error for SendEofNotSupported {}

/// The future of [`SslStream::do_handshake`].
#[must_use = "futures do nothing unless awaited"]
pub struct DoHandshake<'a, S> {
    stream: &'a SslStream<S>,
    op: Nonblocking<(), ()>,
}

impl<'a, S: Stream> DoHandshake<'a, S> {
    fn new(stream: &'a SslStream<S>) -> Self {
        DoHandshake {
            stream,
            op: Nonblocking::new(),
        }
    }
}

impl<S> fmt::Debug for DoHandshake<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoHandshake")
            .field("phase", &self.op.phase())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Future for DoHandshake<'_, S> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let stream = this.stream;
        this.op.poll(
            cx,
            "do_handshake",
            || Ok(None),
            |_| Poll::Ready(Ok(())),
            |cx| stream.poll_handshake(cx),
        )
    }
}
