//! [`TestCa`] and [`LeafCert`]: throwaway certificates for TLS tests (what Trio's tests get
//! from `trustme`), with rustls configurations that use them. Behind trio-test's `tls`
//! feature.

use std::fmt;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use trio::Result;
use trio::tls::rustls::RootCertStore;
use trio::tls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use trio::tls::rustls::server::WebPkiClientVerifier;
use trio::tls::{CertificateDer, ClientConfig, ServerConfig, crypto_provider};

/// A certificate authority made up for one test (Trio's `trustme.CA`): it signs certificates
/// for any names ([`issue_cert`](Self::issue_cert)), and [`client_config`](Self::client_config)
/// is a rustls client configuration that trusts it, and only it.
///
/// Keys are ECDSA P-256, made fresh each time (about a millisecond); certificates are valid
/// from 1975 to 4096, so no clock ever finds them expired.
///
/// ```
/// use trio::stream::prelude::*;
/// use trio::tls::SslStream;
/// use trio_test::{TestCa, memory_stream_pair};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let ca = TestCa::new()?;
///     let cert = ca.issue_cert(["localhost", "127.0.0.1"])?;
///     let (a, b) = memory_stream_pair();
///     let client = SslStream::client(a, ca.client_config()?, "localhost")?;
///     let server = SslStream::server(b, cert.server_config()?)?;
///     trio::open_nursery(|nursery| async move {
///         nursery.start_soon(async move { server.do_handshake().await })?;
///         client.do_handshake().await?;
///         let chain = client.peer_certificates()?.expect("the server sends its chain");
///         assert_eq!(chain[0], *cert.cert_der());
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new certificate authority with a fresh key.
    ///
    /// Errors: those of the certificate generator (which do not happen with its own keys).
    pub fn new() -> Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "trio-test");
        let key = KeyPair::generate()?;
        // A name of its own (from its random key): a verifier looks an issuer up by name, and
        // two CAs of one name would make "untrusted" look like "bad signature".
        let tag: String = key.public_key_raw()[1..9]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("trio-test throwaway CA {tag}"));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let issuer = CertifiedIssuer::self_signed(params, key)?;
        Ok(TestCa { issuer })
    }

    /// Signs a certificate for `names`: DNS names (`"localhost"`, `"*.example.org"`) or IP
    /// addresses (`"127.0.0.1"`, `"::1"`), for servers and for clients alike.
    ///
    /// Errors: a name the generator rejects.
    pub fn issue_cert<I>(&self, names: I) -> Result<LeafCert>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(LeafCert {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            ca_cert: self.cert_der().clone(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA's certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.issuer.der()
    }

    /// The CA's certificate, PEM-encoded (to hand to a program outside the test).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A root store holding the CA's certificate only.
    pub fn root_store(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der().clone())?;
        Ok(roots)
    }

    /// A client configuration that trusts this CA, and only it (trustme's
    /// `configure_trust`): TLS 1.2 and 1.3, no client certificate, no ALPN. It is a plain
    /// `ClientConfig`: set `alpn_protocols` or other fields before use.
    pub fn client_config(&self) -> Result<ClientConfig> {
        Ok(ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.root_store()?)
            .with_no_client_auth())
    }

    /// As [`client_config`](Self::client_config), presenting `cert` when the server asks for
    /// a client certificate.
    pub fn client_config_with_cert(&self, cert: &LeafCert) -> Result<ClientConfig> {
        Ok(ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.root_store()?)
            .with_client_auth_cert(cert.cert_chain(), cert.private_key())?)
    }
}

/// A certificate [`TestCa::issue_cert`] signed, with its private key (trustme's `LeafCert`).
/// [`server_config`](Self::server_config) is a rustls server configuration that presents it.
#[derive(Clone)]
pub struct LeafCert {
    cert: CertificateDer<'static>,
    cert_pem: String,
    ca_cert: CertificateDer<'static>,
    key_der: Vec<u8>,
    key_pem: String,
}

impl fmt::Debug for LeafCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafCert").finish_non_exhaustive()
    }
}

impl LeafCert {
    /// The certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The chain a peer presents: this certificate, then the CA's.
    pub fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone(), self.ca_cert.clone()]
    }

    /// The private key (PKCS #8, DER).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }

    /// The private key, PEM-encoded (PKCS #8).
    pub fn private_key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A server configuration that presents this certificate (trustme's `configure_cert`):
    /// TLS 1.2 and 1.3, no client certificates asked for, no ALPN. A plain `ServerConfig`:
    /// set `alpn_protocols` or other fields before use.
    pub fn server_config(&self) -> Result<ServerConfig> {
        Ok(ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain(), self.private_key())?)
    }

    /// As [`server_config`](Self::server_config), requiring a client certificate signed by
    /// `client_ca` (a client without one fails the handshake).
    pub fn server_config_requiring_client_cert(&self, client_ca: &TestCa) -> Result<ServerConfig> {
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_ca.root_store()?),
            crypto_provider(),
        )
        .build()?;
        Ok(ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.cert_chain(), self.private_key())?)
    }
}
