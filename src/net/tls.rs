//! TLS for broker connections (`security.protocol` `SSL` and `SASL_SSL`).
//!
//! [`TlsSettings`] turns the configuration's `tls` section
//! ([`TlsConfig`]) into a rustls client configuration once; every
//! connection then shares it through [`Connection::connect_tls`]:
//!
//! - the broker's certificate chain is verified against the CA file
//!   (`ssl.ca.location`) or, when none is given, the Mozilla root set that
//!   `webpki-roots` bundles;
//! - the certificate must name the broker's host, or the SNI override
//!   (`ssl.sni.hostname`), unless hostname verification is off;
//! - a client certificate and key (`ssl.certificate.location`,
//!   `ssl.key.location`) are offered for mutual TLS;
//! - `enable.ssl.certificate.verification=false` accepts any certificate
//!   (handshake signatures are still checked) and logs a warning for every
//!   connection made that way. It is for tests only.
//!
//! Certificate and handshake failures become [`Error::Tls`], which says in
//! plain words what went wrong (the certificate is not trusted, does not
//! match the name, a client certificate is required, …) and is not
//! retriable. Unreadable or invalid PEM files are [`Error::Config`]s that
//! name the property and the file.
//!
//! # References
//! - Kafka `SslConfigs` / `SslFactory` (Java client TLS settings)
//! - RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 6066 §3 (SNI)

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

#[cfg(doc)]
use super::Connection;
use crate::config::TlsConfig;
use crate::error::{Error, Result};

const CA_KEY: &str = "ssl.ca.location";
const CERT_KEY: &str = "ssl.certificate.location";
const KEY_KEY: &str = "ssl.key.location";
const CA_PEM_KEY: &str = "ssl.ca.pem";
const CERT_PEM_KEY: &str = "ssl.certificate.pem";
const KEY_PEM_KEY: &str = "ssl.key.pem";

/// Where a certificate or key comes from: a PEM file, or PEM text, with
/// the property that named it.
#[derive(Clone, Copy)]
enum Pem<'a> {
    File(&'static str, &'a Path),
    Text(&'static str, &'a str),
}

impl Pem<'_> {
    /// The source among a file and text settings (validation allows one).
    fn pick<'a>(
        file: (&'static str, Option<&'a Path>),
        text: (&'static str, Option<&'a str>),
    ) -> Option<Pem<'a>> {
        match (file.1, text.1) {
            (Some(path), _) => Some(Pem::File(file.0, path)),
            (None, Some(t)) => Some(Pem::Text(text.0, t)),
            (None, None) => None,
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Pem::File(k, _) | Pem::Text(k, _) => k,
        }
    }

    /// How errors name it: the file, or the property.
    fn describe(&self) -> String {
        match self {
            Pem::File(_, p) => p.display().to_string(),
            Pem::Text(k, _) => format!("the PEM text of {k}"),
        }
    }
}

/// A ready-to-use TLS client setup, built once from a [`TlsConfig`] and
/// shared by every connection (cloning is cheap).
///
/// ```no_run
/// use klamm::config::TlsConfig;
/// use klamm::net::{Connection, ConnectionOptions, TlsSettings};
///
/// # async fn run() -> klamm::Result<()> {
/// let tls = TlsSettings::from_config(&TlsConfig {
///     ca_location: Some("/etc/kafka/ca.pem".into()),
///     ..TlsConfig::default()
/// })?;
/// let conn = Connection::connect_tls("kafka-1.example.com:9093", ConnectionOptions::default(), &tls).await?;
/// println!("connected to {}", conn.broker());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsSettings {
    connector: TlsConnector,
    sni_hostname: Option<ServerName<'static>>,
    verify_certificates: bool,
    verify_hostname: bool,
    trust: Arc<str>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("trust", &self.trust)
            .field("verify_certificates", &self.verify_certificates)
            .field("verify_hostname", &self.verify_hostname)
            .field("sni_hostname", &self.sni_hostname)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Builds the TLS setup from the configuration's `tls` section: reads
    /// the CA, certificate and key files now, so a bad file fails here
    /// rather than at the first connection.
    ///
    /// Errors are [`Error::Config`] naming the property and the file: a
    /// file that cannot be read, holds no PEM certificate (or key), or
    /// holds an invalid one; a certificate without a key or the reverse;
    /// an SNI override that is not a host name.
    ///
    /// ```
    /// use klamm::config::TlsConfig;
    /// use klamm::net::TlsSettings;
    ///
    /// // Defaults: verify against the bundled Mozilla roots, check names.
    /// let tls = TlsSettings::from_config(&TlsConfig::default()).unwrap();
    /// assert!(tls.verifies_certificates());
    ///
    /// let err = TlsSettings::from_config(&TlsConfig {
    ///     ca_location: Some("/no/such/ca.pem".into()),
    ///     ..TlsConfig::default()
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.config_key(), Some("ssl.ca.location"));
    /// assert!(err.to_string().contains("/no/such/ca.pem"));
    /// ```
    pub fn from_config(cfg: &TlsConfig) -> Result<TlsSettings> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config("security.protocol", format!("TLS setup failed: {e}")))?;

        let ca = Pem::pick(
            (CA_KEY, cfg.ca_location.as_deref()),
            (CA_PEM_KEY, cfg.ca_pem.as_deref()),
        );
        let (roots, trust) = match ca {
            Some(source) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(source)? {
                    roots.add(cert).map_err(|e| {
                        Error::config(
                            source.key(),
                            format!("{} holds an invalid CA certificate: {e}", source.describe()),
                        )
                    })?;
                }
                let trust = match source {
                    Pem::File(_, path) => format!("the CA file {}", path.display()),
                    Pem::Text(..) => format!("the CA certificates of {CA_PEM_KEY}"),
                };
                (roots, trust)
            }
            None => (
                RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                "the bundled webpki root certificates (set ssl.ca.location for a private CA)"
                    .to_string(),
            ),
        };

        let verifier: Arc<dyn ServerCertVerifier> = if !cfg.verify_certificates {
            Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            })
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::config(CA_KEY, format!("no usable CA certificate: {e}")))?;
            if cfg.verify_hostname {
                webpki
            } else {
                Arc::new(IgnoreHostname { inner: webpki })
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);

        let cert = Pem::pick(
            (CERT_KEY, cfg.certificate_location.as_deref()),
            (CERT_PEM_KEY, cfg.certificate_pem.as_deref()),
        );
        let key = Pem::pick(
            (KEY_KEY, cfg.key_location.as_deref()),
            (KEY_PEM_KEY, cfg.key_pem.as_deref()),
        );
        let config = match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = load_certs(cert)?;
                let key_der = load_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    Error::config(
                        key.key(),
                        format!(
                            "the key in {} cannot be used with the certificate in {}: {e}",
                            key.describe(),
                            cert.describe()
                        ),
                    )
                })?
            }
            (Some(_), None) => {
                return Err(Error::config(
                    KEY_KEY,
                    format!("is required with {CERT_KEY}"),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    CERT_KEY,
                    format!("is required with {KEY_KEY}"),
                ));
            }
            (None, None) => builder.with_no_client_auth(),
        };

        let sni_hostname = match &cfg.sni_hostname {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                Error::config("ssl.sni.hostname", format!("`{name}` is not a host name"))
            })?),
            None => None,
        };

        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(config)),
            sni_hostname,
            verify_certificates: cfg.verify_certificates,
            verify_hostname: cfg.verify_hostname,
            trust: trust.into(),
        })
    }

    /// Whether broker certificates are verified (`false` only when the
    /// configuration turned verification off).
    pub fn verifies_certificates(&self) -> bool {
        self.verify_certificates
    }

    /// The name sent in SNI and checked against the certificate for the
    /// broker at `addr` (`host:port`, `[v6]:port`): the SNI override if
    /// set, else the host. An IP address host is checked against the
    /// certificate's IP address names (and sends no SNI).
    ///
    /// ```
    /// use klamm::config::TlsConfig;
    /// use klamm::net::TlsSettings;
    ///
    /// let tls = TlsSettings::from_config(&TlsConfig::default()).unwrap();
    /// assert_eq!(tls.server_name("kafka-1.example.com:9093").unwrap().to_str(), "kafka-1.example.com");
    /// assert_eq!(tls.server_name("[::1]:9093").unwrap().to_str(), "::1");
    /// ```
    pub fn server_name(&self, addr: &str) -> Result<ServerName<'static>> {
        if let Some(name) = &self.sni_hostname {
            return Ok(name.clone());
        }
        let host = broker_host(addr);
        ServerName::try_from(host.to_string()).map_err(|_| Error::Tls {
            broker: addr.to_string(),
            reason: format!(
                "`{host}` is neither a host name nor an IP address, so it cannot be checked \
                 against a certificate (set ssl.sni.hostname)"
            ),
        })
    }

    /// Runs the TLS handshake with the broker at `addr` over `tcp`.
    /// Certificate and handshake failures are [`Error::Tls`]; I/O failures
    /// are retriable [`Error::Io`]s. The caller bounds the time.
    pub(crate) async fn handshake(
        &self,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>> {
        let name = self.server_name(addr)?;
        if !self.verify_certificates {
            tracing::warn!(
                broker = addr,
                "TLS certificate verification is OFF (enable.ssl.certificate.verification=false): \
                 this connection accepts any certificate and can be intercepted"
            );
        }
        self.connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| match failure_reason(&e, &name, &self.trust) {
                Some(reason) => Error::Tls {
                    broker: addr.to_string(),
                    reason,
                },
                None => Error::Io {
                    context: format!("TLS handshake with {addr}"),
                    source: e,
                },
            })
    }
}

/// The host part of `host:port` or `[v6]:port` (the whole string when it
/// has no port).
fn broker_host(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Reads every PEM certificate of `source`.
fn load_certs(source: Pem<'_>) -> Result<Vec<CertificateDer<'static>>> {
    let certs = match source {
        Pem::File(_, path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| pem_error(source, e))?
            .collect::<Result<Vec<_>, _>>(),
        Pem::Text(_, text) => {
            CertificateDer::pem_slice_iter(text.as_bytes()).collect::<Result<Vec<_>, _>>()
        }
    }
    .map_err(|e| pem_error(source, e))?;
    if certs.is_empty() {
        return Err(Error::config(
            source.key(),
            format!(
                "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                source.describe()
            ),
        ));
    }
    Ok(certs)
}

/// Reads the first PEM private key (PKCS#8, PKCS#1 or SEC1) of `source`.
fn load_key(source: Pem<'_>) -> Result<PrivateKeyDer<'static>> {
    let key = match source {
        Pem::File(_, path) => PrivateKeyDer::from_pem_file(path),
        Pem::Text(_, text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
    };
    key.map_err(|e| match e {
        pem::Error::NoItemsFound => Error::config(
            source.key(),
            format!(
                "{} holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, \
                 RSA PRIVATE KEY or EC PRIVATE KEY)",
                source.describe()
            ),
        ),
        e => pem_error(source, e),
    })
}

fn pem_error(source: Pem<'_>, e: pem::Error) -> Error {
    let reason = match e {
        pem::Error::Io(e) => format!("cannot read {}: {e}", source.describe()),
        e => format!("{} is not valid PEM: {e}", source.describe()),
    };
    Error::config(source.key(), reason)
}

/// Explains a TLS failure carried by an I/O error from the handshake or
/// the TLS stream, or `None` for plain I/O failures (which stay
/// retriable). `name` is the name the certificate was checked against and
/// `trust` says what was trusted.
pub(crate) fn failure_reason(e: &io::Error, name: &ServerName<'_>, trust: &str) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(describe(tls, Some(name), trust))
}

/// Like [`failure_reason`] for errors on an established TLS stream (an
/// alert after the handshake, as TLS 1.3 servers send when they reject the
/// client certificate).
pub(crate) fn stream_failure_reason(e: &io::Error) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(describe(tls, None, "the configured CA"))
}

fn describe(e: &rustls::Error, name: Option<&ServerName<'_>>, trust: &str) -> String {
    use CertificateError as C;
    let name = name.map_or_else(|| "the broker".to_string(), |n| format!("`{}`", n.to_str()));
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                format!("the broker's certificate is not trusted: it is not signed by {trust}")
            }
            C::NotValidForName => format!(
                "the broker's certificate does not match the name {name} (set ssl.sni.hostname, \
                 or ssl.endpoint.identification.algorithm= to skip the name check)"
            ),
            C::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "the broker's certificate does not match the name `{}`: it is valid for {} \
                 (set ssl.sni.hostname, or ssl.endpoint.identification.algorithm= to skip \
                 the name check)",
                expected.to_str(),
                if presented.is_empty() {
                    "no name".to_string()
                } else {
                    presented.join(", ")
                }
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the broker's certificate is not trusted: it has expired ({c})")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the broker's certificate is not trusted: it is not valid yet ({c})")
            }
            C::Revoked => "the broker's certificate is not trusted: it was revoked".to_string(),
            c => format!("the broker's certificate is not trusted: {c}"),
        },
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => "the broker requires a client certificate \
                 (set ssl.certificate.location and ssl.key.location)"
                .to_string(),
            AlertDescription::HandshakeFailure => format!(
                "the broker refused the TLS handshake ({alert:?} alert); it may require a \
                 client certificate, or the two sides share no cipher suite"
            ),
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied => {
                format!("the broker rejected the client certificate ({alert:?} alert)")
            }
            alert => format!("the broker ended the TLS session with a fatal {alert:?} alert"),
        },
        e => format!("TLS failed: {e}"),
    }
}

/// Verifies the chain like webpki but accepts a certificate whose names do
/// not match (`ssl.endpoint.identification.algorithm` empty).
#[derive(Debug)]
struct IgnoreHostname {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means
        // the chain itself was accepted.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate (`enable.ssl.certificate.verification=false`).
/// The handshake signatures are still checked, so the peer must hold the
/// key of the certificate it shows; nothing says that certificate is the
/// broker's.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
