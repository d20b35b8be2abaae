//! The one file that talks to rustls: [`TlsConn`], a rustls 0.23 buffered `Connection` (client
//! or server) behind the few operations [`SslStream`](super::SslStream) needs.
//!
//! Everything rustls-specific (its connection types, its reader's EOF conventions, its error
//! type, the crypto provider) stays here, so that moving to rustls 0.24 (providers in crates of
//! their own, a new connection API) changes this file and the re-exports of `mod.rs` only.

use std::io::{self, BufRead, Write};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ProtocolVersion, ServerConfig};
use rustls::{ServerConnection, SupportedCipherSuite};

use crate::stream::ReceiveBuf;
use crate::{Error, Result, UsageError};

/// The error rustls reports for a failed handshake or a bad record: what a
/// [`BrokenResourceError`](crate::BrokenResourceError) of a TLS stream carries as its source.
pub(super) type TlsError = rustls::Error;

/// The crypto provider trio builds with: ring.
pub(super) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The server name a client connection checks the certificate against, parsed.
fn parse_server_name(name: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).map_err(|e| {
        Error::new(UsageError::new(format!(
            "{name:?} is not a valid TLS server name (a DNS name or an IP address): {e}"
        )))
    })
}

/// Fails with a [`UsageError`] unless `name` is a DNS name or an IP address.
pub(super) fn check_server_name(name: &str) -> Result<()> {
    parse_server_name(name).map(drop)
}

/// What reading plaintext found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plaintext {
    /// Some bytes were copied into the buffer.
    Data,
    /// Nothing to read until more ciphertext arrives.
    WouldBlock,
    /// The peer sent `close_notify`, and everything before it was read.
    CleanEof,
    /// The transport ended without a `close_notify`, and everything before it was read.
    RaggedEof,
}

/// A TLS connection, client or server, with rustls's buffers: ciphertext goes in through
/// [`read_tls`](Self::read_tls) and out through [`write_tls`](Self::write_tls); plaintext
/// in through [`write_plaintext`](Self::write_plaintext) and out through
/// [`read_plaintext`](Self::read_plaintext).
pub(super) struct TlsConn {
    conn: Connection,
}

impl TlsConn {
    /// A client connection to `server_name` (a DNS name or an IP address), checked against
    /// the server's certificate.
    pub(super) fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<TlsConn> {
        let conn = ClientConnection::new(config, parse_server_name(server_name)?).map_err(|e| {
            Error::new(UsageError::new(format!(
                "SslStream::client: the ClientConfig cannot make a connection: {e}"
            )))
        })?;
        Ok(TlsConn { conn: conn.into() })
    }

    /// A server connection.
    pub(super) fn server(config: Arc<ServerConfig>) -> Result<TlsConn> {
        let conn = ServerConnection::new(config).map_err(|e| {
            Error::new(UsageError::new(format!(
                "SslStream::server: the ServerConfig cannot make a connection: {e}"
            )))
        })?;
        Ok(TlsConn { conn: conn.into() })
    }

    pub(super) fn is_server(&self) -> bool {
        matches!(self.conn, Connection::Server(_))
    }

    /// Whether the handshake is still going on (rustls's view: it may be over while its last
    /// messages still wait in the output buffer).
    pub(super) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether TLS records wait to be written to the transport.
    pub(super) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes queued TLS records to `wr` (one `write` or `write_vectored` call).
    pub(super) fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(wr)
    }

    /// Reads ciphertext from `rd` (one `read` call) into rustls's buffer; `Ok(0)` is the
    /// transport's end of file (or a `close_notify` received earlier).
    pub(super) fn read_tls(&mut self, rd: &mut dyn io::Read) -> io::Result<usize> {
        self.conn.read_tls(rd)
    }

    /// Decrypts and handles the records read so far; whether the peer's `close_notify` has
    /// come. A failure (a bad certificate, a fatal alert from the peer, a corrupt record)
    /// ends the connection; rustls may have queued an alert to tell the peer.
    pub(super) fn process(&mut self) -> Result<bool, TlsError> {
        self.conn
            .process_new_packets()
            .map(|state| state.peer_has_closed())
    }

    /// Drops the decrypted data not read yet; how many bytes that was.
    pub(super) fn discard_plaintext(&mut self) -> usize {
        let mut reader = self.conn.reader();
        let mut dropped = 0;
        while let Ok(chunk) = reader.fill_buf() {
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            reader.consume(n);
            dropped += n;
        }
        dropped
    }

    /// Copies decrypted data into `buf`, as much as fits and is there (`Data` for a full
    /// buffer, which has nothing to say about the stream).
    pub(super) fn read_plaintext(&mut self, buf: &mut ReceiveBuf<'_>) -> Plaintext {
        if buf.remaining() == 0 {
            return Plaintext::Data;
        }
        let mut reader = self.conn.reader();
        let mut got = false;
        while buf.remaining() > 0 {
            match reader.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => {
                    let n = buf.put_slice(chunk);
                    reader.consume(n);
                    got = true;
                }
                Err(_) if got => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Plaintext::WouldBlock,
                Err(_) => return Plaintext::RaggedEof,
            }
        }
        match got {
            true => Plaintext::Data,
            // `fill_buf` gives an empty chunk only once `close_notify` came.
            false => Plaintext::CleanEof,
        }
    }

    /// Encrypts what it accepts of `data` into the output buffer (up to rustls's buffer
    /// limit); how many bytes that was.
    pub(super) fn write_plaintext(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Queues a `close_notify` alert (once: rustls sends it at most once).
    pub(super) fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The protocol version, once negotiated.
    pub(super) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Whether TLS 1.3 was negotiated (`None` before the version is known).
    pub(super) fn is_tls13(&self) -> Option<bool> {
        self.protocol_version()
            .map(|v| v == ProtocolVersion::TLSv1_3)
    }

    /// The ALPN protocol agreed on, if any.
    pub(super) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The cipher suite, once negotiated.
    pub(super) fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }

    /// On a server, the name the client asked for (SNI).
    pub(super) fn sni_name(&self) -> Option<String> {
        match &self.conn {
            Connection::Server(server) => server.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        }
    }

    /// Fills `output` with keying material exported from the session (RFC 5705 / RFC 8446
    /// §7.5).
    pub(super) fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), TlsError> {
        self.conn
            .export_keying_material(output, label, context)
            .map(drop)
    }

    /// The peer's certificate chain (its own first), if it presented one.
    pub(super) fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.conn.peer_certificates().map(<[_]>::to_vec)
    }
}
