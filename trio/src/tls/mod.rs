//! TLS over trio's streams, on [rustls](https://docs.rs/rustls) (Trio's SSL/TLS support:
//! `trio.SSLStream`, `trio.SSLListener`, `open_ssl_over_tcp_stream`,
//! `open_ssl_over_tcp_listeners`, `serve_ssl_over_tcp`). Behind trio's `tls` feature.
//!
//! - [`SslStream`] wraps any [`Stream`] (a TCP connection, a memory
//!   stream, another `SslStream`) and is a stream itself: `send_all`, `receive_some` and
//!   `aclose` work as on any other.
//! - [`SslListener`] wraps a [`Listener`]: what it accepts are server
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
mod stream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// The rustls crate trio is built with, for its configuration types (`RootCertStore`,
/// `pki_types`, `version`, ...).
pub use rustls;
pub use rustls::crypto::CryptoProvider;
pub use rustls::pki_types::CertificateDer;
pub use rustls::{ClientConfig, ProtocolVersion, ServerConfig, SupportedCipherSuite};

pub use stream::{DoHandshake, SslStream, Unwrap};

use crate::Result;
use crate::net::{
    ConnectOptions, ServeOptions, SocketListener, SocketStream, open_tcp_listeners_with,
    open_tcp_stream_with, serve_listeners,
};
use crate::stream::{AsyncResource, ConflictDetector, Listener, Stream};

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
        write!(f, "call do_handshake() before calling '{}'", self.method)
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

/// A [`Listener`] whose connections are TLS servers (Trio's `trio.SSLListener`): it accepts
/// from the transport listener and wraps each stream in a server [`SslStream`] with its
/// config (and its `https_compatible` setting). The handshake runs on the stream's first use,
/// in the task that uses it, so a slow or hostile client never holds up `accept`.
///
/// Closing it closes the transport listener.
pub struct SslListener<L> {
    transport_listener: L,
    config: Arc<ServerConfig>,
    https_compatible: bool,
}

impl<L: fmt::Debug> fmt::Debug for SslListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslListener")
            .field("transport_listener", &self.transport_listener)
            .field("https_compatible", &self.https_compatible)
            .finish_non_exhaustive()
    }
}

impl<L> SslListener<L> {
    /// Wraps `transport_listener`: its connections become server `SslStream`s with `config`.
    pub fn new(transport_listener: L, config: impl Into<Arc<ServerConfig>>) -> Self {
        SslListener {
            transport_listener,
            config: config.into(),
            https_compatible: false,
        }
    }

    /// Gives the streams it accepts Trio's `https_compatible` (see [`SslStream`]).
    pub fn with_https_compatible(mut self, https_compatible: bool) -> Self {
        self.https_compatible = https_compatible;
        self
    }

    /// Whether the streams it accepts are `https_compatible`.
    pub fn is_https_compatible(&self) -> bool {
        self.https_compatible
    }

    /// The listener it accepts from (Trio's `transport_listener`).
    pub fn transport_listener(&self) -> &L {
        &self.transport_listener
    }

    /// The server configuration of the streams it makes.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

impl<L: Listener> AsyncResource for SslListener<L> {
    /// Closes the transport listener.
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.transport_listener.poll_close(cx)
    }
}

impl<L> Listener for SslListener<L>
where
    L: Listener,
    L::Stream: Stream,
{
    type Stream = SslStream<L::Stream>;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<SslStream<L::Stream>>> {
        let transport = ready!(self.transport_listener.poll_accept(cx))?;
        let stream = SslStream::server(transport, self.config.clone())?;
        Poll::Ready(Ok(stream.with_https_compatible(self.https_compatible)))
    }

    fn poll_accept_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.transport_listener.poll_accept_ready(cx)
    }

    fn accept_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.transport_listener.accept_conflict_detector()
    }
}

/// Connects to `host` on `port` over TCP and wraps the connection in a client [`SslStream`]
/// (Trio's `open_ssl_over_tcp_stream`), checking the server's certificate against `host`.
/// The handshake runs on first use (or [`do_handshake`](SslStream::do_handshake)); for an
/// HTTPS peer, set [`with_https_compatible`](SslStream::with_https_compatible) on the result.
///
/// Errors: those of [`open_tcp_stream`](crate::net::open_tcp_stream); a
/// [`UsageError`](crate::UsageError) for a config rustls cannot use or a `host` that is not a
/// valid server name.
///
/// # Checkpoint
/// Yes: it resolves the name and waits for a connection.
///
/// # Cancel safety
/// Cancelled, it closes every socket it opened.
pub async fn open_ssl_over_tcp_stream(
    host: &str,
    port: u16,
    config: impl Into<Arc<ClientConfig>>,
) -> Result<SslStream<SocketStream>> {
    open_ssl_over_tcp_stream_with(host, port, config, &ConnectOptions::default()).await
}

/// [`open_ssl_over_tcp_stream`] with [`ConnectOptions`] (the happy-eyeballs delay, a local
/// address).
///
/// # Checkpoint
/// Yes: it resolves the name and waits for a connection.
///
/// # Cancel safety
/// Cancelled, it closes every socket it opened.
pub async fn open_ssl_over_tcp_stream_with(
    host: &str,
    port: u16,
    config: impl Into<Arc<ClientConfig>>,
    options: &ConnectOptions,
) -> Result<SslStream<SocketStream>> {
    // The name is checked before connecting: a bad one should not cost a connection.
    conn::check_server_name(host)?;
    let transport = open_tcp_stream_with(host, port, options).await?;
    SslStream::client(transport, config, host)
}

/// Opens TCP listeners on `port` (as [`open_tcp_listeners`](crate::net::open_tcp_listeners):
/// every interface for `host` `None`) and wraps each in an [`SslListener`] with `config`
/// (Trio's `open_ssl_over_tcp_listeners`).
///
/// # Checkpoint
/// Yes: it resolves `host`.
///
/// # Cancel safety
/// Cancelled, it has opened nothing (or closed what it opened).
pub async fn open_ssl_over_tcp_listeners(
    port: u16,
    config: impl Into<Arc<ServerConfig>>,
    host: Option<&str>,
) -> Result<Vec<SslListener<SocketListener>>> {
    let config = config.into();
    let listeners = open_tcp_listeners_with(port, host, None).await?;
    Ok(listeners
        .into_iter()
        .map(|listener| SslListener::new(listener, config.clone()))
        .collect())
}

/// Listens for TLS connections on `port` and starts `handler(stream)` for each (Trio's
/// `serve_ssl_over_tcp`): [`open_ssl_over_tcp_listeners`] and
/// [`serve_listeners`] in one call. The options are those of
/// [`serve_tcp`](crate::net::serve_tcp) (`host`, `backlog`, `handler_nursery`, and
/// `task_status` to learn the listeners, with the port the system chose for port 0), and
/// [`https_compatible`](ServeOptions::https_compatible) for the streams (Trio's keyword
/// argument). The handshake runs in the handler's task, on the stream's first use.
///
/// # Checkpoint
/// Yes: it waits for connections until cancelled.
///
/// # Cancel safety
/// As [`serve_listeners`]: cancelling it stops accepting, cancels
/// the handlers in its own nursery and closes the listeners.
pub async fn serve_ssl_over_tcp<H, Fut>(
    handler: H,
    port: u16,
    config: impl Into<Arc<ServerConfig>>,
    options: ServeOptions<SslListener<SocketListener>>,
) -> Result<()>
where
    H: Fn(SslStream<SocketStream>) -> Fut + 'static,
    Fut: Future<Output = Result<()>> + 'static,
{
    let config = config.into();
    let (host, backlog) = options.listen_args();
    let https_compatible = options.is_https_compatible();
    let listeners = open_tcp_listeners_with(port, host, backlog).await?;
    let listeners = listeners
        .into_iter()
        .map(|listener| {
            SslListener::new(listener, config.clone()).with_https_compatible(https_compatible)
        })
        .collect();
    serve_listeners(handler, listeners, options).await
}
