//! `trio::tls::SslStream` over memory and lockstep streams (Trio's `test_ssl.py`): the stream
//! conformance suites, handshake failures, `close_notify` and ragged EOFs in both
//! `https_compatible` modes, cancellation, ALPN, concurrent use. Certificates come from
//! `trio_test::TestCa`. The TCP side is `tls_tcp.rs`.

use std::rc::Rc;
use std::sync::Arc;

use trio::stream::prelude::*;
use trio::tls::rustls::{self, CertificateError, version};
use trio::tls::{
    ClientConfig, NeedHandshakeError, ProtocolVersion, SendEofNotSupported, ServerConfig,
    SslStream, crypto_provider,
};
use trio::{BrokenResourceError, ClosedResourceError, Result, aclose_forcefully, open_nursery};
use trio_test::{
    LockstepStapledStream, MemoryStapledStream, TestCa, assert_checkpoints,
    check_half_closeable_stream, check_two_way_stream, lockstep_stream_pair, memory_stream_pair,
    memory_stream_pump, wait_all_tasks_blocked,
};

/// The name the test certificates are issued for (Trio's `trio-test-1.example.org`).
const HOST: &str = "trio-test-1.example.org";

/// A CA, a client config trusting it, and a server config with a certificate for [`HOST`].
struct Pki {
    ca: TestCa,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn pki() -> Result<Pki> {
    let ca = TestCa::new()?;
    let cert = ca.issue_cert([HOST])?;
    Ok(Pki {
        client: Arc::new(ca.client_config()?),
        server: Arc::new(cert.server_config()?),
        ca,
    })
}

/// Configs that speak TLS 1.2 only.
fn tls12(pki: &Pki) -> Result<(Arc<ClientConfig>, Arc<ServerConfig>)> {
    let client = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&version::TLS12])?
        .with_root_certificates(pki.ca.root_store()?)
        .with_no_client_auth();
    let cert = pki.ca.issue_cert([HOST])?;
    let server = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(cert.cert_chain(), cert.private_key())?;
    Ok((Arc::new(client), Arc::new(server)))
}

type MemSsl = SslStream<MemoryStapledStream>;
type LockSsl = SslStream<LockstepStapledStream>;

fn memory_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    https_client: bool,
    https_server: bool,
) -> Result<(MemSsl, MemSsl)> {
    let (a, b) = memory_stream_pair();
    Ok((
        SslStream::client(a, client.clone(), HOST)?.with_https_compatible(https_client),
        SslStream::server(b, server.clone())?.with_https_compatible(https_server),
    ))
}

fn lockstep_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> Result<(LockSsl, LockSsl)> {
    let (a, b) = lockstep_stream_pair();
    Ok((
        SslStream::client(a, client.clone(), HOST)?,
        SslStream::server(b, server.clone())?,
    ))
}

/// Runs both handshakes at once (they need each other).
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

/// A transport of either kind, so that one suite run can use memory streams and (for its
/// clogged checks) lockstep streams, as Trio's does.
type AnySsl = SslStream<Box<dyn Stream>>;

/// A pair over memory streams.
fn any_memory_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    https_compatible: bool,
) -> Result<(AnySsl, AnySsl)> {
    let (a, b) = memory_stream_pair();
    let (a, b): (Box<dyn Stream>, Box<dyn Stream>) = (Box::new(a), Box::new(b));
    Ok((
        SslStream::client(a, client.clone(), HOST)?.with_https_compatible(https_compatible),
        SslStream::server(b, server.clone())?.with_https_compatible(https_compatible),
    ))
}

/// A pair over lockstep streams, handshaken first (as Trio's clogged maker does: otherwise a
/// receive that unclogs the peer would first start a handshake, and get stuck in it).
async fn any_clogged_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    https_compatible: bool,
) -> Result<(AnySsl, AnySsl)> {
    let (a, b) = lockstep_stream_pair();
    let (a, b): (Box<dyn Stream>, Box<dyn Stream>) = (Box::new(a), Box::new(b));
    let a = Rc::new(
        SslStream::client(a, client.clone(), HOST)?.with_https_compatible(https_compatible),
    );
    let b = Rc::new(SslStream::server(b, server.clone())?.with_https_compatible(https_compatible));
    handshake_both(&a, &b).await?;
    let (Ok(a), Ok(b)) = (Rc::try_unwrap(a), Rc::try_unwrap(b)) else {
        unreachable!("the handshake tasks are done");
    };
    Ok((a, b))
}

/// Trio's `test_SSLStream_generic`: the half-closeable suite (TLS 1.3) in one
/// `https_compatible` mode.
async fn conformance(https_compatible: bool) -> Result<()> {
    let pki = pki()?;
    let (client, server) = (pki.client.clone(), pki.server.clone());
    let (client2, server2) = (client.clone(), server.clone());
    let maker = async move || any_memory_pair(&client, &server, https_compatible);
    let clogged = async move || any_clogged_pair(&client2, &server2, https_compatible).await;
    check_half_closeable_stream(maker, Some(clogged)).await
}

#[trio::test]
async fn conformance_over_tls13() -> Result<()> {
    conformance(false).await
}

#[trio::test]
async fn conformance_over_tls13_https_compatible() -> Result<()> {
    conformance(true).await
}

/// TLS 1.2 cannot half-close: the two-way suite.
#[trio::test]
async fn conformance_over_tls12() -> Result<()> {
    let pki = pki()?;
    let (client, server) = tls12(&pki)?;
    let (client2, server2) = (client.clone(), server.clone());
    let maker = async move || any_memory_pair(&client, &server, false);
    let clogged = async move || any_clogged_pair(&client2, &server2, false).await;
    check_two_way_stream(maker, Some(clogged)).await
}

#[trio::test]
async fn send_eof_over_tls12_is_a_typed_error() -> Result<()> {
    let pki = pki()?;
    let (client, server) = tls12(&pki)?;
    let (a, b) = memory_pair(&client, &server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    assert!(
        a.as_half_closeable().is_some(),
        "unknown before the handshake"
    );
    handshake_both(&a, &b).await?;
    assert_eq!(a.protocol_version()?, ProtocolVersion::TLSv1_2);
    assert!(a.as_half_closeable().is_none());
    let err = a.send_eof().await.unwrap_err();
    let typed = err
        .downcast_ref::<SendEofNotSupported>()
        .expect("typed error");
    assert_eq!(typed.version(), Some(ProtocolVersion::TLSv1_2));
    assert!(err.to_string().contains("send_eof needs TLS 1.3"), "{err}");
    // The stream is fine: it was a refusal, not a failure.
    a.send_all(b"still here").await?;
    assert_eq!(b.receive_some(100).await?, b"still here");
    // A StapledStream sending through it closes it instead.
    let stapled = trio::StapledStream::new(a.clone(), a.clone());
    stapled.send_eof().await?;
    assert_eq!(b.receive_some(100).await?, b"", "closing sent close_notify");
    Ok(())
}

#[trio::test]
async fn send_eof_over_tls13_half_closes() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    a.send_all(b"request").await?;
    a.send_eof().await?;
    a.send_eof().await?; // idempotent
    assert!(a.send_all(b"more").await.unwrap_err().is_closed());
    assert_eq!(b.receive_some(100).await?, b"request");
    assert_eq!(b.receive_some(100).await?, b"");
    b.send_all(b"response").await?;
    assert_eq!(a.receive_some(100).await?, b"response");
    b.aclose().await?;
    assert_eq!(a.receive_some(100).await?, b"");
    a.aclose().await
}

/// The TLS error behind a handshake failure.
fn tls_cause(err: &trio::Error) -> &rustls::Error {
    let broken = err
        .downcast_ref::<BrokenResourceError>()
        .unwrap_or_else(|| panic!("expected BrokenResourceError, got {err:?}"));
    std::error::Error::source(broken)
        .and_then(|s| s.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("no rustls::Error source in {err:?}"))
}

/// Runs a handshake whose client fails; returns both sides' errors.
async fn failing_handshake(client: MemSsl, server: MemSsl) -> Result<(trio::Error, trio::Error)> {
    let server = Rc::new(server);
    let server2 = server.clone();
    let server_side = Rc::new(std::cell::RefCell::new(None));
    let slot = server_side.clone();
    let client_side = Rc::new(std::cell::RefCell::new(None));
    let client_slot = client_side.clone();
    open_nursery(|n| async move {
        n.start_soon(async move {
            *slot.borrow_mut() = server2.receive_some(10).await.err();
            Ok(())
        })?;
        let err = client.send_all(b"x").await.unwrap_err();
        // Broken for good.
        assert!(client.send_all(b"x").await.unwrap_err().is_broken());
        assert!(client.do_handshake().await.unwrap_err().is_broken());
        client.aclose().await?;
        *client_slot.borrow_mut() = Some(err);
        Ok(())
    })
    .await?;
    let server_err = server_side
        .borrow_mut()
        .take()
        .expect("the server failed too");
    let client_err = client_side.borrow_mut().take().expect("the client failed");
    Ok((client_err, server_err))
}

#[trio::test]
async fn handshake_fails_with_an_untrusted_ca() -> Result<()> {
    let pki = pki()?;
    let stranger = Arc::new(TestCa::new()?.client_config()?);
    let (client, server) = memory_pair(&stranger, &pki.server, false, false)?;
    let (client_err, server_err) = failing_handshake(client, server).await?;
    assert!(
        matches!(
            tls_cause(&client_err),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{client_err}"
    );
    assert!(
        client_err.to_string().contains("TLS handshake failed"),
        "{client_err}"
    );
    // The client told the server why, in an alert.
    assert!(
        matches!(tls_cause(&server_err), rustls::Error::AlertReceived(_)),
        "{server_err}"
    );
    Ok(())
}

#[trio::test]
async fn handshake_fails_for_the_wrong_host_name() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_stream_pair();
    let client = SslStream::client(a, pki.client.clone(), "trio-test-2.example.org")?;
    let server = SslStream::server(b, pki.server.clone())?;
    let (client_err, _) = failing_handshake(client, server).await?;
    assert!(
        matches!(
            tls_cause(&client_err),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{client_err}"
    );
    Ok(())
}

#[trio::test]
async fn bad_server_names_and_configs_are_usage_errors() -> Result<()> {
    let pki = pki()?;
    let (a, _b) = memory_stream_pair();
    let err = SslStream::client(a, pki.client.clone(), "not a host name!").unwrap_err();
    assert!(err.is::<trio::UsageError>(), "{err}");
    assert!(
        err.to_string().contains("not a valid TLS server name"),
        "{err}"
    );
    Ok(())
}

#[trio::test]
async fn client_certificates() -> Result<()> {
    let pki = pki()?;
    let cert = pki.ca.issue_cert([HOST])?;
    let client_cert = pki.ca.issue_cert(["client.example.org"])?;
    let server = Arc::new(cert.server_config_requiring_client_cert(&pki.ca)?);

    // Without a certificate, the server refuses the client.
    let (client, server_stream) = memory_pair(&pki.client, &server, false, false)?;
    let (_, server_err) = failing_handshake_server_side(client, server_stream).await?;
    assert!(server_err.is_broken(), "{server_err}");

    // With one, the server sees it.
    let with_cert = Arc::new(pki.ca.client_config_with_cert(&client_cert)?);
    let (a, b) = memory_pair(&with_cert, &server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    let chain = b
        .peer_certificates()?
        .expect("the client presented a chain");
    assert_eq!(chain[0], *client_cert.cert_der());
    Ok(())
}

/// A handshake the server fails: both sides' outcomes.
async fn failing_handshake_server_side(
    client: MemSsl,
    server: MemSsl,
) -> Result<(Result<()>, trio::Error)> {
    let client = Rc::new(client);
    let client2 = client.clone();
    let outcome = Rc::new(std::cell::RefCell::new(None));
    let slot = outcome.clone();
    let server_side = Rc::new(std::cell::RefCell::new(None));
    let server_slot = server_side.clone();
    open_nursery(|n| async move {
        n.start_soon(async move {
            // TLS 1.3: the client may finish first and learn of the refusal on its next read.
            let result = match client2.do_handshake().await {
                Ok(()) => client2.receive_some(10).await.map(drop),
                Err(e) => Err(e),
            };
            *slot.borrow_mut() = Some(result);
            Ok(())
        })?;
        *server_slot.borrow_mut() = server.do_handshake().await.err();
        Ok(())
    })
    .await?;
    let server_err = server_side.borrow_mut().take().expect("the server refused");
    let client_outcome = outcome.borrow_mut().take().expect("the client finished");
    assert!(
        client_outcome.is_err(),
        "the client never heard of the refusal"
    );
    Ok((client_outcome, server_err))
}

#[trio::test]
async fn accessors_need_the_handshake() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    assert!(!a.is_server_side() && b.is_server_side());
    assert_eq!(a.server_hostname().as_deref(), Some(HOST));
    assert_eq!(b.server_hostname(), None, "no ClientHello yet");
    for err in [
        a.selected_alpn_protocol().unwrap_err(),
        a.peer_certificates().unwrap_err(),
        b.protocol_version().unwrap_err(),
        b.cipher_suite().unwrap_err(),
    ] {
        assert!(err.is::<NeedHandshakeError>(), "{err}");
        assert!(
            err.to_string().starts_with("call do_handshake() before"),
            "{err}"
        );
    }
    // The handshake's two paths: waiting for the peer, and done already.
    let (client, server) = (a.clone(), b.clone());
    open_nursery(|n| async move {
        n.start_soon(async move { assert_checkpoints(server.do_handshake()).await })?;
        assert_checkpoints(client.do_handshake()).await
    })
    .await?;
    assert_checkpoints(a.do_handshake()).await?;
    assert_checkpoints(b.do_handshake()).await?;
    assert_eq!(b.server_hostname().as_deref(), Some(HOST), "from SNI");
    assert_eq!(a.selected_alpn_protocol()?, None);
    assert_eq!(b.selected_alpn_protocol()?, None);
    assert_eq!(a.protocol_version()?, ProtocolVersion::TLSv1_3);
    assert_eq!(a.cipher_suite()?.suite(), b.cipher_suite()?.suite());
    assert_eq!(
        b.peer_certificates()?,
        None,
        "the client has no certificate"
    );
    let chain = a.peer_certificates()?.expect("the server's chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], *pki.ca.cert_der());
    Ok(())
}

#[trio::test]
async fn alpn_negotiation() -> Result<()> {
    let pki = pki()?;
    let mut client = pki.ca.client_config()?;
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut server = pki.ca.issue_cert([HOST])?.server_config()?;
    server.alpn_protocols = vec![b"http/1.1".to_vec(), b"h2".to_vec()];
    let (a, b) = memory_pair(&Arc::new(client), &Arc::new(server), false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    // The server's preference wins.
    assert_eq!(
        a.selected_alpn_protocol()?.as_deref(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(
        b.selected_alpn_protocol()?.as_deref(),
        Some(&b"http/1.1"[..])
    );
    Ok(())
}

/// Trio's `test_closing_nice_case`.
#[trio::test]
async fn aclose_sends_close_notify_and_the_peer_sees_eof() -> Result<()> {
    let pki = pki()?;
    let (client, server) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (client, server) = (Rc::new(client), Rc::new(server));
    let (c, s) = (client.clone(), server.clone());
    open_nursery(|n| async move {
        // The client does not wait for the server's close_notify: it returns while the
        // server has not even read its own.
        n.start_soon(async move { assert_checkpoints(c.aclose()).await })?;
        n.start_soon(async move {
            assert_eq!(s.receive_some(10).await?, b"");
            assert_eq!(s.receive_some(10).await?, b"", "EOF again");
            assert_checkpoints(s.aclose()).await
        })?;
        Ok(())
    })
    .await?;
    // Closing the SslStream closed its transport.
    assert!(
        client
            .transport_stream()
            .send_all(b"123")
            .await
            .unwrap_err()
            .is_closed()
    );
    assert_checkpoints(client.aclose()).await?;
    assert_checkpoints(client.aclose()).await?;
    assert!(server.send_all(b"123").await.unwrap_err().is_closed());
    for err in [
        client.receive_some(10).await.unwrap_err(),
        client.do_handshake().await.unwrap_err(),
        client.send_all(b"").await.unwrap_err(),
    ] {
        assert!(err.is::<ClosedResourceError>(), "{err}");
    }

    // A graceful close before the handshake handshakes first: a clean EOF on the other side.
    let (client, server) = memory_pair(&pki.client, &pki.server, false, false)?;
    open_nursery(|n| async move {
        n.start_soon(async move { client.aclose().await })?;
        n.start_soon(async move {
            assert_eq!(server.receive_some(10).await?, b"");
            server.aclose().await
        })?;
        Ok(())
    })
    .await
}

/// Trio's `test_ssl_bad_shutdown` and `test_ssl_bad_shutdown_but_its_ok`.
#[trio::test]
async fn ragged_eof_in_both_https_modes() -> Result<()> {
    let pki = pki()?;
    for https in [false, true] {
        let (a, b) = memory_pair(&pki.client, &pki.server, https, https)?;
        let (a, b) = (Rc::new(a), Rc::new(b));
        handshake_both(&a, &b).await?;
        aclose_forcefully(&*a).await?;
        if https {
            assert_eq!(b.receive_some(10).await?, b"", "https_compatible: EOF");
            assert_eq!(b.receive_some(10).await?, b"");
        } else {
            let err = b.receive_some(10).await.unwrap_err();
            assert!(err.is_broken(), "{err}");
            assert!(
                err.to_string().contains("without a TLS close_notify"),
                "{err}"
            );
        }
        assert!(b.send_all(&[b'x'; 10]).await.unwrap_err().is_broken());
        b.aclose().await?;
    }
    Ok(())
}

/// Trio's `test_ssl_https_compatibility_disagreement`: a client in HTTPS mode sends no
/// `close_notify`, which a strict server reads as a broken connection.
#[trio::test]
async fn https_compatibility_disagreement() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, true, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    a.aclose().await?;
    let err = b.receive_some(10).await.unwrap_err();
    assert!(err.is_broken(), "{err}");
    Ok(())
}

/// Trio's `test_https_mode_eof_before_handshake`.
#[trio::test]
async fn https_mode_eof_before_handshake() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, true, true)?;
    a.aclose().await?;
    assert_eq!(b.receive_some(10).await?, b"");
    // A strict server sees a broken handshake.
    let (a, b) = memory_pair(&pki.client, &pki.server, true, false)?;
    a.aclose().await?;
    let err = b.receive_some(10).await.unwrap_err();
    assert!(
        err.to_string().contains("during the TLS handshake"),
        "{err}"
    );
    Ok(())
}

#[trio::test(autojump)]
async fn cancelled_receive_mid_record_leaves_the_stream_usable() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    // Data from the client now waits in its transport until pumped by hand.
    let send = a.transport_stream().send_stream().clone();
    let receive = b.transport_stream().receive_stream().clone();
    let hook = send.set_send_all_hook(None);
    a.send_all(b"hello world").await?;
    assert!(memory_stream_pump(&send, &receive, Some(10))?);
    // Half a record arrives: the receive waits for the rest, and is cancelled.
    let got = trio::move_on_after(1.0, b.receive_some(100)).await?;
    assert!(got.is_none(), "half a record decrypted? {got:?}");
    // The rest arrives: nothing was lost.
    while memory_stream_pump(&send, &receive, None)? {}
    assert_eq!(b.receive_some(100).await?, b"hello world");
    send.set_send_all_hook(hook);
    b.send_all(b"reply").await?;
    assert_eq!(a.receive_some(100).await?, b"reply");
    Ok(())
}

#[trio::test(autojump)]
async fn cancelled_handshake_leaves_the_stream_usable() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    // The server is not there yet: the client's handshake waits, and is cancelled.
    assert!(trio::move_on_after(1.0, a.do_handshake()).await?.is_none());
    handshake_both(&a, &b).await?;
    a.send_all(b"x").await?;
    assert_eq!(b.receive_some(1).await?, b"x");
    Ok(())
}

#[trio::test(autojump)]
async fn cancelled_send_leaves_the_stream_usable() -> Result<()> {
    let pki = pki()?;
    let (a, b) = lockstep_pair(&pki.client, &pki.server)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    // Nobody receives: over a lockstep transport the send waits for the peer, and is
    // cancelled.
    assert!(
        trio::move_on_after(1.0, a.send_all(b"first"))
            .await?
            .is_none()
    );
    // Its record went on its way: the peer reads it, and the next send works.
    let (a2, b2) = (a.clone(), b.clone());
    open_nursery(|n| async move {
        n.start_soon(async move { a2.send_all(b"second").await })?;
        let mut got = Vec::new();
        while got.len() < 11 {
            got.extend(b2.receive_some(100).await?);
        }
        assert_eq!(got, b"firstsecond");
        Ok(())
    })
    .await
}

/// Trio's `test_resource_busy_errors`, over lockstep streams (nothing completes by itself).
#[trio::test]
async fn second_sender_or_receiver_is_busy() -> Result<()> {
    let pki = pki()?;
    for case in 0..4 {
        let (a, _b) = lockstep_pair(&pki.client, &pki.server)?;
        let a = Rc::new(a);
        let (a1, a2) = (a.clone(), a.clone());
        let result = open_nursery(|n| async move {
            match case {
                0 => {
                    n.start_soon(async move { a1.send_all(b"x").await })?;
                    n.start_soon(async move { a2.send_all(b"x").await })?;
                }
                1 => {
                    n.start_soon(async move { a1.receive_some(1).await.map(drop) })?;
                    n.start_soon(async move { a2.receive_some(1).await.map(drop) })?;
                }
                2 => {
                    n.start_soon(async move { a1.send_all(b"x").await })?;
                    n.start_soon(async move { a2.wait_send_all_might_not_block().await })?;
                }
                _ => {
                    n.start_soon(async move { a1.wait_send_all_might_not_block().await })?;
                    n.start_soon(async move { a2.wait_send_all_might_not_block().await })?;
                }
            }
            wait_all_tasks_blocked().await?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await;
        let err = result.unwrap_err();
        let group = err.as_group().expect("a group");
        assert_eq!(group.len(), 1, "case {case}: {err}");
        assert!(group.errors()[0].is_busy(), "case {case}: {err}");
        assert!(
            group.errors()[0].to_string().contains("another task"),
            "case {case}"
        );
    }
    Ok(())
}

/// Trio's `test_full_duplex_basics`: a sender, a receiver and two handshakers at once,
/// against an echo server.
#[trio::test]
async fn full_duplex_with_concurrent_handshakes() -> Result<()> {
    const CHUNKS: usize = 30;
    const CHUNK_SIZE: usize = 32768;
    let pki = pki()?;
    let (client, server) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (client, server) = (Rc::new(client), Rc::new(server));
    let (s1, s2, s3, s4) = (
        client.clone(),
        client.clone(),
        client.clone(),
        client.clone(),
    );
    open_nursery(|n| async move {
        n.start_soon(async move {
            loop {
                let data = server.receive_some(65536).await?;
                if data.is_empty() {
                    return server.aclose().await;
                }
                server.send_all(&data).await?;
            }
        })?;
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
            assert!(received == expected, "the echo corrupted the data");
            s2.aclose().await
        })?;
        n.start_soon(async move { s3.do_handshake().await })?;
        n.start_soon(async move { s4.do_handshake().await })?;
        Ok(())
    })
    .await
}

/// Trio's `test_ssl_over_ssl`: an `SslStream` is a transport like any other.
#[trio::test]
async fn tls_over_tls() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let outer_client = SslStream::client(a, pki.client.clone(), HOST)?;
    let outer_server = SslStream::server(b, pki.server.clone())?;
    open_nursery(|n| async move {
        n.start_soon(async move {
            assert_eq!(outer_server.receive_some(10).await?, b"hi");
            outer_server.send_all(b"bye").await
        })?;
        outer_client.send_all(b"hi").await?;
        assert_eq!(outer_client.receive_some(10).await?, b"bye");
        Ok(())
    })
    .await
}

/// Trio's `test_send_all_fails_in_the_middle` and `test_ssl_only_closes_stream_once`: a
/// transport failure breaks the stream, and `aclose` closes the transport once.
#[trio::test]
async fn transport_failure_breaks_the_stream() -> Result<()> {
    let pki = pki()?;
    let (a, b) = memory_pair(&pki.client, &pki.server, false, false)?;
    let (a, b) = (Rc::new(a), Rc::new(b));
    handshake_both(&a, &b).await?;
    a.transport_stream()
        .send_stream()
        .set_send_all_hook(Some(trio_test::AsyncHook::new(|| async {
            Err(trio::Error::new(std::io::Error::other("boom")))
        })));
    let err = a.send_all(b"x").await.unwrap_err();
    assert_eq!(err.to_string(), "boom", "the transport's own error");
    let err = a.wait_send_all_might_not_block().await.unwrap_err();
    assert!(err.is_broken() && err.to_string().contains("boom"), "{err}");
    let closes = Rc::new(std::cell::Cell::new(0));
    for count in [closes.clone(), closes.clone()] {
        let hook = trio_test::SyncHook::new(move || count.set(count.get() + 1));
        a.transport_stream()
            .send_stream()
            .set_close_hook(Some(hook));
    }
    let count = closes.clone();
    a.transport_stream()
        .receive_stream()
        .set_close_hook(Some(trio_test::SyncHook::new(move || {
            count.set(count.get() + 1)
        })));
    a.aclose().await?;
    a.aclose().await?;
    assert_eq!(closes.get(), 2, "each half of the transport closed once");
    Ok(())
}
