//! [`SslStream`]: TLS over any [`Stream`], on the poll traits (Trio's `trio.SSLStream`).
//!
//! All TLS state is one rustls connection in a `RefCell`, borrowed for the length of one poll
//! (never across a `Pending`). Whichever task polls moves the connection forward: a sender can
//! read the handshake's next flight, a receiver can write an alert or a session ticket. Every
//! transport poll is made with the waker of a [`WakerSet`] (see `io.rs`), so that several tasks
//! can wait on one direction of the transport at once.

mod unwrap;

pub use unwrap::Unwrap;

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use super::conn::{Plaintext, TlsConn, TlsError};
use super::io::{RecordTracker, Stalled, TransportReader, TransportWriter, WakerSet};
use super::{
    CertificateDer, ClientConfig, NeedHandshakeError, ProtocolVersion, SendEofNotSupported,
    ServerConfig, SupportedCipherSuite,
};
use crate::lowlevel::current_task_if_not_cancelled;
use crate::socket::Nonblocking;
use crate::stream::{
    AsyncResource, ConflictDetector, HalfCloseableStream, ReceiveBuf, ReceiveStream, SendStream,
    Stream,
};
use crate::{BrokenResourceError, ClosedResourceError, Error, Result, UsageError};

/// Why a stream is broken: every later operation fails with this.
#[derive(Clone, Debug)]
struct Broken {
    message: String,
    /// The TLS error behind it, as the error's source.
    cause: Option<TlsError>,
    /// The transport ended without a `close_notify` (which `https_compatible` reads as EOF).
    ragged_eof: bool,
}

impl Broken {
    fn new(message: impl Into<String>) -> Broken {
        Broken {
            message: message.into(),
            cause: None,
            ragged_eof: false,
        }
    }

    fn error(&self) -> Error {
        Error::new(match &self.cause {
            Some(cause) => BrokenResourceError::with_source(self.message.clone(), cause.clone()),
            None => BrokenResourceError::new(self.message.clone()),
        })
    }
}

enum State {
    Open,
    Broken(Broken),
    Closed,
}

/// How far `aclose` got.
enum Closing {
    No,
    /// `close_notify` is queued; it is being written out.
    Goodbye,
    /// Closing the transport; then report the error, if any, that made the close forceful.
    Transport(Option<Error>),
    Done,
}

struct Core {
    tls: TlsConn,
    state: State,
    /// The transport's send side failed: sending is over, receiving goes on (what was sent
    /// to this side may still arrive, as on a socket whose peer stopped reading).
    send_broken: Option<Broken>,
    handshake_done: bool,
    /// `send_eof` queued a `close_notify`.
    eof_sent: bool,
    closing: Closing,
    /// Where the ciphertext read stands in the record sequence (for `unwrap`).
    records: RecordTracker,
    /// Read record by record, never past the end of one (`unwrap` waiting for the peer's
    /// `close_notify`, after which plain bytes may follow).
    precise_reads: bool,
    /// The peer's `close_notify` has been processed.
    peer_closed: bool,
}

impl Core {
    /// Fails with the stream's error once it is closed (or closing) or broken.
    fn check(&self) -> Result<()> {
        match (&self.state, &self.closing) {
            (State::Closed, _) | (_, Closing::Goodbye | Closing::Transport(_) | Closing::Done) => {
                Err(Error::new(ClosedResourceError::new(
                    "this SslStream was closed",
                )))
            }
            (State::Broken(broken), _) => Err(broken.error()),
            (State::Open, Closing::No) => Ok(()),
        }
    }

    /// As [`check`](Self::check), and fails once the send side broke.
    fn check_send_side(&self) -> Result<()> {
        self.check()?;
        match &self.send_broken {
            Some(broken) => Err(broken.error()),
            None => Ok(()),
        }
    }

    /// As [`check_send_side`](Self::check_send_side), and fails after `send_eof`.
    fn check_send(&self) -> Result<()> {
        self.check_send_side()?;
        if self.eof_sent {
            return Err(Error::new(ClosedResourceError::new(
                "can't send data after sending EOF (send_eof) on this SslStream",
            )));
        }
        Ok(())
    }

    fn is_ragged_eof(&self) -> bool {
        matches!(&self.state, State::Broken(b) if b.ragged_eof)
    }

    /// Marks the stream broken (the first reason stays); the error to return now.
    fn fail(&mut self, broken: Broken) -> Error {
        let error = broken.error();
        if let State::Open = self.state {
            self.state = State::Broken(broken);
        }
        error
    }

    /// The transport's receive failed with `error`: the stream is broken, and the caller gets
    /// the transport's own error (as Trio re-raises it). A `Cancelled` breaks nothing.
    fn receive_failed(&mut self, error: Error) -> Error {
        if !error.is_cancelled() {
            self.fail(Broken::new(format!(
                "the transport stream's receive failed: {error}"
            )));
        }
        error
    }

    /// The transport's send failed with `error`: sending is broken (receiving goes on), and
    /// the caller gets the transport's own error. A `Cancelled` breaks nothing.
    fn send_failed(&mut self, error: Error) -> Error {
        if !error.is_cancelled() && self.send_broken.is_none() {
            self.send_broken = Some(Broken::new(format!(
                "the transport stream's send failed: {error}"
            )));
        }
        error
    }

    fn tls_failed(&mut self, error: TlsError) -> Error {
        let message = match self.handshake_done {
            false => format!("TLS handshake failed: {error}"),
            true => format!("TLS connection failed: {error}"),
        };
        self.fail(Broken {
            message,
            cause: Some(error),
            ragged_eof: false,
        })
    }
}

/// Whether the current task is in a cancelled scope (a close then stops waiting).
fn cancelled() -> bool {
    matches!(current_task_if_not_cancelled(), Ok(None))
}

/// A TLS connection over a transport [`Stream`] (Trio's `trio.SSLStream`): plaintext sent
/// through it is encrypted and sent on the transport; ciphertext received from the transport
/// is decrypted and returned.
///
/// It is a [`Stream`] (and a [`HalfCloseableStream`], see below): `send_all`, `receive_some`,
/// `aclose`, `wait_send_all_might_not_block` come from [`trio::stream`](crate::stream)'s
/// extension traits. One task may send while another receives; a second sender or receiver
/// gets [`BusyResourceError`](crate::BusyResourceError).
///
/// - **Handshake.** It runs by itself on the first send or receive, or when you call
///   [`do_handshake`](SslStream::do_handshake) (to look at the peer's certificate or the
///   agreed ALPN protocol first). Any number of tasks may wait for it at once.
/// - **Errors.** A failed handshake or a bad record breaks the stream: that operation and
///   every later one fail with [`BrokenResourceError`], whose
///   [`source`](std::error::Error::source) is rustls's error (`rustls::Error`). A failure of
///   the transport comes out as the transport's error: a failed receive breaks the stream; a
///   failed send breaks sending only, so what the peer sent before can still be received
///   (Trio breaks the whole stream). After `aclose`, operations fail with
///   [`ClosedResourceError`].
/// - **`https_compatible`** ([`with_https_compatible`](Self::with_https_compatible)), as in
///   Trio: off (the default), `aclose` sends a `close_notify` alert, and a transport that ends
///   without one is a [`BrokenResourceError`] (it may be a truncation attack). On, no
///   `close_notify` is sent or expected, and a transport EOF reads as EOF: what HTTPS peers
///   do, since HTTP marks its own ends of messages.
/// - **Closing.** [`aclose`](crate::stream::AsyncResourceExt::aclose) sends `close_notify`
///   once (handshaking first if needed), does not wait for the peer's reply, ignores a peer
///   that is gone already (a `BrokenResourceError` while saying goodbye), and closes the
///   transport. Cancelled (or already in a cancelled scope) it closes the transport at once.
/// - **Half-close.** [`send_eof`](crate::stream::HalfCloseableStreamExt::send_eof) sends
///   `close_notify` and keeps receiving: TLS 1.3 closes each direction on its own (RFC 8446
///   §6.1). Over TLS 1.2, where `close_notify` ends the whole connection, it fails with
///   [`SendEofNotSupported`]; [`as_half_closeable`](SendStream::as_half_closeable) answers
///   `None` once TLS 1.2 was negotiated, so a [`StapledStream`](crate::StapledStream) closes
///   it instead.
/// - **Unwrap.** [`unwrap`](Self::unwrap) ends TLS (both `close_notify`s) and gives back the
///   transport with the bytes that followed the peer's `close_notify`, for protocols that go
///   on in plain text.
/// - **Not in Trio's form** (see `docs/decisions.md`, "TLS"): the configuration is fixed at
///   construction (no `context` to swap); rustls never renegotiates; Trio's
///   `get_channel_binding` (`tls-unique`) is [`export_keying_material`](Self::export_keying_material)
///   (`tls-exporter`); `getpeercert` is [`peer_certificates`](Self::peer_certificates) (DER);
///   there is no NPN.
/// - **Cancellation.** Ciphertext and plaintext stay in rustls's buffers, so a cancelled
///   receive or handshake leaves the stream usable (stronger than Trio, whose `SSLStream` may
///   break); a cancelled `send_all` has sent an unknown part of its data, as for any stream.
///
/// ```
/// use trio::stream::prelude::*;
/// use trio::tls::SslStream;
/// use trio_test::{TestCa, memory_stream_pair};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let ca = TestCa::new()?;
///     let cert = ca.issue_cert(["example.org"])?;
///     let (a, b) = memory_stream_pair();
///     let client = SslStream::client(a, ca.client_config()?, "example.org")?;
///     let server = SslStream::server(b, cert.server_config()?)?;
///     trio::open_nursery(|nursery| async move {
///         nursery.start_soon(async move {
///             let request = server.receive_some(100).await?;
///             server.send_all(&request.to_ascii_uppercase()).await?;
///             server.aclose().await
///         })?;
///         client.send_all(b"hello").await?;
///         assert_eq!(client.receive_some(100).await?, b"HELLO");
///         assert_eq!(client.receive_some(100).await?, b""); // close_notify: EOF
///         client.aclose().await
///     })
///     .await
/// })
/// # }
/// ```
pub struct SslStream<S> {
    transport: S,
    core: RefCell<Core>,
    https_compatible: bool,
    server_hostname: Option<String>,
    reads: Arc<WakerSet>,
    read_waker: Waker,
    writes: Arc<WakerSet>,
    write_waker: Waker,
    send_detector: ConflictDetector,
    receive_detector: ConflictDetector,
}

impl<S> fmt::Debug for SslStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SslStream");
        out.field("server_side", &self.server_hostname.is_none())
            .field("https_compatible", &self.https_compatible);
        if let Ok(core) = self.core.try_borrow() {
            let state = match (&core.state, &core.closing) {
                (State::Closed, _) | (_, Closing::Done) => "closed",
                (_, Closing::Goodbye | Closing::Transport(_)) => "closing",
                (State::Broken(_), _) => "broken",
                (State::Open, _) if !core.handshake_done => "handshaking",
                (State::Open, _) => "open",
            };
            out.field("state", &state)
                .field("protocol_version", &core.tls.protocol_version());
        }
        out.finish_non_exhaustive()
    }
}

impl<S: Stream> SslStream<S> {
    fn new(transport: S, tls: TlsConn, server_hostname: Option<String>) -> Self {
        let (reads, read_waker) = WakerSet::new();
        let (writes, write_waker) = WakerSet::new();
        SslStream {
            transport,
            core: RefCell::new(Core {
                tls,
                state: State::Open,
                send_broken: None,
                handshake_done: false,
                eof_sent: false,
                closing: Closing::No,
                records: RecordTracker::default(),
                precise_reads: false,
                peer_closed: false,
            }),
            https_compatible: false,
            server_hostname,
            reads,
            read_waker,
            writes,
            write_waker,
            send_detector: ConflictDetector::new(
                "another task is currently sending data on this SslStream",
            ),
            receive_detector: ConflictDetector::new(
                "another task is currently receiving data on this SslStream",
            ),
        }
    }

    /// The client end of a TLS connection over `transport`, to the server `server_name`: a
    /// DNS name or an IP address, sent in SNI and checked against the server's certificate.
    /// Nothing is sent yet (the handshake runs on first use). Not a checkpoint.
    ///
    /// Errors: a [`UsageError`] for a `server_name` that is neither, or a config rustls
    /// cannot use.
    pub fn client(
        transport: S,
        config: impl Into<Arc<ClientConfig>>,
        server_name: &str,
    ) -> Result<Self> {
        let tls = TlsConn::client(config.into(), server_name)?;
        Ok(SslStream::new(transport, tls, Some(server_name.to_owned())))
    }

    /// The server end of a TLS connection over `transport`. Not a checkpoint.
    ///
    /// Errors: a [`UsageError`] for a config rustls cannot use.
    pub fn server(transport: S, config: impl Into<Arc<ServerConfig>>) -> Result<Self> {
        let tls = TlsConn::server(config.into())?;
        Ok(SslStream::new(transport, tls, None))
    }

    /// Sets Trio's `https_compatible` (default `false`; see the type's docs): `true` neither
    /// sends nor expects `close_notify`, and reads a transport EOF as EOF.
    pub fn with_https_compatible(mut self, https_compatible: bool) -> Self {
        self.https_compatible = https_compatible;
        self
    }

    /// Whether it is `https_compatible`.
    pub fn is_https_compatible(&self) -> bool {
        self.https_compatible
    }

    /// The transport stream (Trio's `transport_stream`), to reach its own methods (socket
    /// options, addresses). Do not send or receive on it.
    pub fn transport_stream(&self) -> &S {
        &self.transport
    }

    /// Whether this is the server end.
    pub fn is_server_side(&self) -> bool {
        self.server_hostname.is_none()
    }

    /// The server's name: on a client, the name it connects to; on a server, the name the
    /// client asked for in SNI (`None` before its hello arrived, or if it sent none).
    pub fn server_hostname(&self) -> Option<String> {
        match &self.server_hostname {
            Some(name) => Some(name.clone()),
            None => self.core.try_borrow().ok()?.tls.sni_name(),
        }
    }

    /// Runs `f` on the connection if the handshake is done.
    fn after_handshake<T>(&self, what: &'static str, f: impl FnOnce(&TlsConn) -> T) -> Result<T> {
        let core = self.core.try_borrow().map_err(|_| reentered())?;
        if !core.handshake_done {
            return Err(Error::new(NeedHandshakeError::new(what)));
        }
        Ok(f(&core.tls))
    }

    /// The ALPN protocol the handshake agreed on (Trio's `selected_alpn_protocol`): `None` if
    /// the peers agreed on none (or one of them offered none).
    ///
    /// Errors: [`NeedHandshakeError`] before the handshake finished.
    pub fn selected_alpn_protocol(&self) -> Result<Option<Vec<u8>>> {
        self.after_handshake("selected_alpn_protocol", TlsConn::alpn_protocol)
    }

    /// The TLS version negotiated (Trio's `version`).
    ///
    /// Errors: [`NeedHandshakeError`] before the handshake finished.
    pub fn protocol_version(&self) -> Result<ProtocolVersion> {
        self.after_handshake("protocol_version", TlsConn::protocol_version)?
            .ok_or_else(|| Error::new(NeedHandshakeError::new("protocol_version")))
    }

    /// The cipher suite negotiated (Trio's `cipher`).
    ///
    /// Errors: [`NeedHandshakeError`] before the handshake finished.
    pub fn cipher_suite(&self) -> Result<SupportedCipherSuite> {
        self.after_handshake("cipher_suite", TlsConn::cipher_suite)?
            .ok_or_else(|| Error::new(NeedHandshakeError::new("cipher_suite")))
    }

    /// The peer's certificate chain, its own certificate first (Trio's `getpeercert`, in
    /// DER): `None` when the peer presented none (a client, unless the server asked).
    ///
    /// Errors: [`NeedHandshakeError`] before the handshake finished.
    pub fn peer_certificates(&self) -> Result<Option<Vec<CertificateDer<'static>>>> {
        self.after_handshake("peer_certificates", TlsConn::peer_certificates)
    }

    /// Fills `output` with keying material exported from the TLS session under `label` and
    /// `context` (RFC 5705, RFC 8446 §7.5): both ends get the same bytes. With the label
    /// `b"EXPORTER-Channel-Binding"`, no context and 32 bytes, it is the `tls-exporter`
    /// channel binding (RFC 9266), what Trio's `get_channel_binding` gives as `tls-unique`
    /// (which TLS 1.3 and rustls do not have).
    ///
    /// Errors: [`NeedHandshakeError`] before the handshake finished; a [`UsageError`] for an
    /// empty `output` or a label rustls refuses.
    pub fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<()> {
        self.after_handshake("export_keying_material", |tls| {
            tls.export_keying_material(output, label, context)
        })?
        .map_err(|e| {
            Error::new(UsageError::new(format!(
                "export_keying_material failed: {e}"
            )))
        })
    }

    /// Runs the handshake until it is done (Trio's `do_handshake`). Idempotent: once done it
    /// only checkpoints; while another task runs it, this one waits along.
    ///
    /// Errors: [`BrokenResourceError`] if it fails (its source is rustls's error: a
    /// certificate that is not trusted or not for this name, an alert from the peer) or the
    /// peer closed the transport; [`ClosedResourceError`] after `aclose`; the transport's
    /// errors.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it did not have to wait.
    ///
    /// # Cancel safety
    /// Safe: the handshake's state is kept; a later operation (or call) goes on from there.
    pub fn do_handshake(&self) -> DoHandshake<'_, S> {
        DoHandshake::new(self)
    }

    fn core(&self) -> Result<RefMut<'_, Core>> {
        self.core.try_borrow_mut().map_err(|_| reentered())
    }

    /// Writes rustls's queued records to the transport; `Ready(Ok)` once all are accepted.
    fn write_out(&self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while core.tls.wants_write() {
            self.writes.register(cx.waker());
            let mut tcx = Context::from_waker(&self.write_waker);
            let mut writer = TransportWriter::new(&self.transport, &mut tcx);
            if let Err(e) = core.tls.write_tls(&mut writer) {
                return match writer.stalled() {
                    Some(Stalled::Pending) => Poll::Pending,
                    Some(Stalled::Failed(error)) => Poll::Ready(Err(core.send_failed(error))),
                    None => Poll::Ready(Err(
                        core.fail(Broken::new(format!("writing TLS records failed: {e}")))
                    )),
                };
            }
        }
        Poll::Ready(Ok(()))
    }

    /// [`write_out`](Self::write_out), then the transport's own flush.
    fn send_out(&self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<()>> {
        ready!(self.write_out(core, cx))?;
        self.writes.register(cx.waker());
        let mut tcx = Context::from_waker(&self.write_waker);
        match ready!(self.transport.poll_flush(&mut tcx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(core.send_failed(error))),
        }
    }

    /// Reads ciphertext from the transport once, and processes it. `Ready(Ok(true))` when
    /// the transport is at EOF.
    fn read_in(&self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        self.reads.register(cx.waker());
        let mut tcx = Context::from_waker(&self.read_waker);
        let mut reader = TransportReader::new(
            &self.transport,
            &mut tcx,
            &mut core.records,
            core.precise_reads,
        );
        let eof = match core.tls.read_tls(&mut reader) {
            Ok(n) => n == 0,
            Err(e) => {
                return match reader.stalled() {
                    Some(Stalled::Pending) => Poll::Pending,
                    Some(Stalled::Failed(error)) => Poll::Ready(Err(core.receive_failed(error))),
                    None => Poll::Ready(Err(
                        core.fail(Broken::new(format!("reading TLS records failed: {e}")))
                    )),
                };
            }
        };
        match core.tls.process() {
            Ok(peer_closed) => core.peer_closed = peer_closed,
            Err(e) => {
                let error = core.tls_failed(e);
                // rustls queued an alert that tells the peer why; send it if the transport
                // takes it now (the error is reported either way).
                let _ = self.write_out(core, cx);
                return Poll::Ready(Err(error));
            }
        }
        Poll::Ready(Ok(eof))
    }

    /// Drives the handshake to its end (checking the state first).
    ///
    /// Each round pushes out what the handshake owes the peer and, while the transport has not
    /// taken all of it, reads the peer's next flight: a side that waited for its flight to be
    /// taken before reading would deadlock, over a transport without a buffer, with a peer
    /// doing the same (TLS 1.3's change-cipher-spec record crosses the server's flight).
    fn handshake(&self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            core.check()?;
            if core.handshake_done {
                return Poll::Ready(Ok(()));
            }
            // A handshake whose messages cannot be sent cannot finish.
            core.check_send_side()?;
            let sent = self.send_out(core, cx);
            if !core.tls.is_handshaking() {
                // Over once the last flight is out, except that a TLS 1.3 server does not wait
                // for its session tickets to go out (Trio's `_delayed_outgoing`): a client that
                // only sends would never read them, and over a transport without a buffer the
                // server would wait for ever. They go with its next send, receive or close (a
                // failure to send them is kept for the next send).
                let server_tls13 = core.tls.is_server() && core.tls.is_tls13() == Some(true);
                if !server_tls13 {
                    ready!(sent)?;
                }
                core.handshake_done = true;
                return Poll::Ready(Ok(()));
            }
            if let Poll::Ready(Err(e)) = sent {
                return Poll::Ready(Err(e));
            }
            if ready!(self.read_in(core, cx))? && core.tls.is_handshaking() {
                return Poll::Ready(Err(core.fail(Broken {
                    message: "the peer closed the connection during the TLS handshake".into(),
                    cause: None,
                    ragged_eof: true,
                })));
            }
        }
    }

    /// The poll-level [`do_handshake`](Self::do_handshake): `Ready(Ok)` once the handshake is
    /// done. Errors as `do_handshake`.
    pub fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        self.handshake(&mut core, cx)
    }

    /// Closes the transport (the rest of `poll_close`), then reports `error` if any.
    fn close_transport(&self, core: &mut Core, error: Option<Error>) {
        core.state = State::Closed;
        core.closing = Closing::Transport(error);
        // Tasks waiting on the transport learn the stream is closed.
        self.reads.wake_all();
        self.writes.wake_all();
    }
}

fn reentered() -> Error {
    Error::new(UsageError::new(
        "an SslStream was used from inside a poll method of its own transport stream",
    ))
}

impl<S: Stream> AsyncResource for SslStream<S> {
    /// Trio's `aclose`: `close_notify` (once, without waiting for the reply; unless
    /// `https_compatible` or broken), then the transport's close. Cancelled, it closes the
    /// transport at once.
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        loop {
            match &core.closing {
                Closing::Done => return Poll::Ready(Ok(())),
                Closing::Transport(_) => {
                    let closed = ready!(self.transport.poll_close(cx));
                    let Closing::Transport(error) =
                        std::mem::replace(&mut core.closing, Closing::Done)
                    else {
                        unreachable!("matched just above")
                    };
                    return Poll::Ready(match error {
                        Some(error) => Err(error),
                        None => closed,
                    });
                }
                Closing::No => {
                    let graceful = matches!(core.state, State::Open)
                        && core.send_broken.is_none()
                        && !self.https_compatible;
                    if !graceful || cancelled() {
                        self.close_transport(&mut core, None);
                        continue;
                    }
                    // No `close_notify` before the handshake: there is no key to sign it with.
                    match self.handshake(&mut core, cx) {
                        Poll::Pending if cancelled() => self.close_transport(&mut core, None),
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            let error = (!e.is_cancelled()).then_some(e);
                            self.close_transport(&mut core, error);
                        }
                        Poll::Ready(Ok(())) => {
                            core.tls.send_close_notify();
                            core.closing = Closing::Goodbye;
                        }
                    }
                }
                Closing::Goodbye => match self.send_out(&mut core, cx) {
                    Poll::Pending if cancelled() => self.close_transport(&mut core, None),
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => self.close_transport(&mut core, None),
                    // The peer may be gone already (both sides closing at once is fine).
                    Poll::Ready(Err(e)) if e.is_broken() || e.is_busy() || e.is_cancelled() => {
                        self.close_transport(&mut core, None);
                    }
                    Poll::Ready(Err(e)) => self.close_transport(&mut core, Some(e)),
                },
            }
        }
    }
}

impl<S: Stream> SendStream for SslStream<S> {
    /// Handshakes first if needed; then encrypts what it accepts of `buf` into rustls's
    /// buffer, after pushing out what was there, and starts sending it. What the transport
    /// does not take at once goes out in [`poll_flush`](SendStream::poll_flush).
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let mut core = self.core()?;
        ready!(self.handshake(&mut core, cx))?;
        core.check_send()?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.write_out(&mut core, cx))?;
        let n = match core.tls.write_plaintext(buf) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                return Poll::Ready(Err(core.fail(Broken::new(
                    "rustls accepted no plaintext although its buffer was empty",
                ))));
            }
            Err(e) => {
                return Poll::Ready(Err(
                    core.fail(Broken::new(format!("encrypting data failed: {e}")))
                ));
            }
        };
        // On its way; what the transport does not take now goes out in `poll_flush`. A
        // failure of the transport is this send's (the stream is broken: nobody can tell how
        // much arrived).
        match self.write_out(&mut core, cx) {
            Poll::Ready(Err(e)) if !e.is_cancelled() => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        core.check_send_side()?;
        self.send_out(&mut core, cx)
    }

    /// Ready once the records rustls holds are written and the transport says a send might
    /// not block (Trio waits for the transport's `wait_send_all_might_not_block`). Before
    /// the handshake it only waits on the transport, as Trio's does: the handshake (and its
    /// first message, queued already on a client) starts with the first send or receive.
    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        core.check_send()?;
        if core.handshake_done {
            ready!(self.write_out(&mut core, cx))?;
        }
        drop(core);
        self.writes.register(cx.waker());
        let mut tcx = Context::from_waker(&self.write_waker);
        self.transport.poll_wait_send_all_might_not_block(&mut tcx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.send_detector)
    }

    /// `Some(self)`, unless the handshake agreed on a TLS version before 1.3 (which cannot
    /// half-close).
    fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
        match self.core.try_borrow() {
            Ok(core) if core.handshake_done && core.tls.is_tls13() != Some(true) => None,
            _ => Some(self),
        }
    }
}

impl<S: Stream> ReceiveStream for SslStream<S> {
    /// Handshakes first if needed; then hands out decrypted data, reading ciphertext from the
    /// transport while there is none. Before it waits for the transport it pushes out what it
    /// owes the peer (an alert, a session ticket), without waiting for that.
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        loop {
            if self.https_compatible && core.is_ragged_eof() {
                return Poll::Ready(Ok(()));
            }
            core.check()?;
            if !core.handshake_done {
                if let Err(e) = ready!(self.handshake(&mut core, cx)) {
                    if self.https_compatible && core.is_ragged_eof() {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Ready(Err(e));
                }
            }
            match core.tls.read_plaintext(buf) {
                Plaintext::Data => {
                    if core.tls.wants_write() {
                        // A failure is kept in the state; the data is this call's result.
                        let _ = self.write_out(&mut core, cx);
                    }
                    return Poll::Ready(Ok(()));
                }
                Plaintext::CleanEof => return Poll::Ready(Ok(())),
                Plaintext::RaggedEof if self.https_compatible => return Poll::Ready(Ok(())),
                Plaintext::RaggedEof => {
                    return Poll::Ready(Err(core.fail(Broken {
                        message: "the peer closed the transport without a TLS close_notify \
                                  (a truncation attack, or a peer that needs \
                                  https_compatible)"
                            .into(),
                        cause: None,
                        ragged_eof: true,
                    })));
                }
                Plaintext::WouldBlock => {}
            }
            // A send failure breaks sending only (it is kept for the next send): what the peer
            // sent before it went away can still be read.
            let _ = self.send_out(&mut core, cx);
            ready!(self.read_in(&mut core, cx))?;
        }
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.receive_detector)
    }
}

impl<S: Stream> HalfCloseableStream for SslStream<S> {
    /// Handshakes first if needed; then sends `close_notify` (TLS 1.3 only) and flushes.
    /// Receiving goes on. Errors: [`SendEofNotSupported`] over TLS 1.2.
    fn poll_send_eof(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.core()?;
        ready!(self.handshake(&mut core, cx))?;
        if !core.eof_sent {
            if core.tls.is_tls13() != Some(true) {
                return Poll::Ready(Err(Error::new(SendEofNotSupported::new(
                    core.tls.protocol_version(),
                ))));
            }
            core.tls.send_close_notify();
            core.eof_sent = true;
        }
        self.send_out(&mut core, cx)
    }
}

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
