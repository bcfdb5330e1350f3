//! klamm's TLS connection against Apache Kafka's SSL listeners (one with
//! server authentication only, one requiring a client certificate; the
//! certificates come from `scripts/test-certs`): verified TLS, the wrong
//! CA, a name mismatch, mutual TLS with and without a client certificate,
//! and verification turned off. The `Client`, producer and consumer over
//! TLS and SASL are in `tests/secure_clients.rs`.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::config::TlsConfig;
use klamm::net::{Connection, ConnectionOptions, TlsSettings};
use klamm::protocol::messages::{ApiKey, MetadataRequest};
use klamm::{Error, ErrorKind};

fn opts() -> ConnectionOptions {
    ConnectionOptions {
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn settings(cfg: TlsConfig) -> TlsSettings {
    TlsSettings::from_config(&cfg).expect("TLS settings load")
}

fn with_ca(ca: PathBuf) -> TlsConfig {
    TlsConfig {
        ca_location: Some(ca),
        ..TlsConfig::default()
    }
}

/// The connection works: versions were negotiated over TLS and Metadata
/// is answered.
async fn assert_works(conn: &Connection) {
    let v = conn.api_versions();
    assert_eq!(
        v.version_for(ApiKey::Metadata, conn.broker())
            .expect("metadata"),
        13
    );
    let meta = conn
        .send(&MetadataRequest {
            topics: Some(vec![]),
            ..Default::default()
        })
        .await
        .expect("Metadata over TLS");
    assert!(!meta.brokers.is_empty(), "{meta:?}");
}

/// The connection failed with a non-retriable TLS error whose message
/// contains `needle`.
fn assert_tls_error(result: klamm::Result<Connection>, needle: &str) -> String {
    let err = match result {
        Ok(c) => panic!("expected a TLS failure, connected to {}", c.broker()),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(matches!(err, Error::Tls { .. }), "not a TLS error: {err:?}");
    assert_eq!(err.kind(), ErrorKind::Auth, "{msg}");
    assert!(!err.is_retriable(), "{msg}");
    assert!(msg.contains(needle), "`{msg}` does not say `{needle}`");
    eprintln!("as expected: {msg}");
    msg
}

#[test]
fn verified_tls_negotiates_and_answers_metadata() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        // The address is an IP, checked against the certificate's
        // IP:127.0.0.1 name.
        let tls = settings(with_ca(front.dir.join("ca.crt")));
        let conn = Connection::connect_tls(&front.tls, opts(), &tls)
            .await
            .expect("TLS connect with the test CA");
        assert_works(&conn).await;
        conn.close().await;

        // The DNS name `localhost` (SNI and the name check) via the override.
        let tls = settings(TlsConfig {
            sni_hostname: Some("localhost".into()),
            ..with_ca(front.dir.join("ca.crt"))
        });
        let conn = Connection::connect_tls(&front.tls, opts(), &tls)
            .await
            .expect("TLS connect as localhost");
        assert_works(&conn).await;
    });
}

#[test]
fn wrong_ca_is_not_trusted() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(with_ca(front.dir.join("other-ca.crt")));
        let msg = assert_tls_error(
            Connection::connect_tls(&front.tls, opts(), &tls).await,
            "not trusted",
        );
        assert!(msg.contains("other-ca.crt"), "{msg}");
    });
}

#[test]
fn bundled_roots_do_not_trust_the_test_ca() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(TlsConfig::default());
        assert_tls_error(
            Connection::connect_tls(&front.tls, opts(), &tls).await,
            "not trusted",
        );
    });
}

#[test]
fn hostname_mismatch_is_rejected() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(TlsConfig {
            sni_hostname: Some("kafka.example.com".into()),
            ..with_ca(front.dir.join("ca.crt"))
        });
        let msg = assert_tls_error(
            Connection::connect_tls(&front.tls, opts(), &tls).await,
            "does not match",
        );
        assert!(msg.contains("kafka.example.com"), "{msg}");
    });
}

#[test]
fn hostname_check_off_accepts_another_name_but_still_checks_the_chain() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(TlsConfig {
            sni_hostname: Some("kafka.example.com".into()),
            verify_hostname: false,
            ..with_ca(front.dir.join("ca.crt"))
        });
        let conn = Connection::connect_tls(&front.tls, opts(), &tls)
            .await
            .expect("the name is not checked");
        assert_works(&conn).await;

        let tls = settings(TlsConfig {
            verify_hostname: false,
            ..with_ca(front.dir.join("other-ca.crt"))
        });
        assert_tls_error(
            Connection::connect_tls(&front.tls, opts(), &tls).await,
            "not trusted",
        );
    });
}

#[test]
fn mutual_tls_with_a_client_certificate_works() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(TlsConfig {
            certificate_location: Some(front.dir.join("client.crt")),
            key_location: Some(front.dir.join("client.key")),
            ..with_ca(front.dir.join("ca.crt"))
        });
        let conn = Connection::connect_tls(&front.mtls, opts(), &tls)
            .await
            .expect("mTLS connect with the client certificate");
        assert_works(&conn).await;
    });
}

#[test]
fn mutual_tls_without_a_client_certificate_fails() {
    support::run_within(30, async {
        let Some(front) = support::tls_listeners() else {
            return;
        };
        let tls = settings(with_ca(front.dir.join("ca.crt")));
        let result = Connection::connect_tls(&front.mtls, opts(), &tls).await;
        assert_tls_error(result, "client certificate");
    });
}

#[test]
fn verification_off_accepts_any_certificate_and_warns() {
    let Some(front) = support::tls_listeners() else {
        return;
    };
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Warnings(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        support::run_within(30, async {
            let tls = settings(TlsConfig {
                verify_certificates: false,
                ..with_ca(front.dir.join("other-ca.crt"))
            });
            assert!(!tls.verifies_certificates());
            let conn = Connection::connect_tls(&front.tls, opts(), &tls)
                .await
                .expect("no verification: any certificate is accepted");
            assert_works(&conn).await;
            // Every connection made that way warns again.
            let conn = Connection::connect_tls(&front.tls, opts(), &tls)
                .await
                .expect("second connection");
            assert_works(&conn).await;
        })
    });
    let warnings = warnings.lock().expect("lock");
    let off: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("verification is OFF") && w.contains(&front.tls))
        .collect();
    assert_eq!(off.len(), 2, "warnings: {warnings:?}");
}

#[test]
fn tls_to_a_plaintext_port_fails_within_the_connect_timeout() {
    support::run_within(30, async {
        let (Some(plain), Some(front)) = (support::broker(), support::tls_listeners()) else {
            return;
        };
        let tls = settings(with_ca(front.dir.join("ca.crt")));
        let opts = ConnectionOptions {
            connect_timeout: Duration::from_secs(3),
            ..opts()
        };
        let err = Connection::connect_tls(&plain, opts, &tls)
            .await
            .expect_err("a Kafka port does not speak TLS");
        // Kafka reads the ClientHello as the size of a request frame far
        // over `socket.request.max.bytes` and closes the connection: the
        // handshake ends on that close (a network error), not on the
        // connect timeout, and never hangs (run_within bounds the test).
        assert_eq!(err.kind(), ErrorKind::Network, "{err:?}");
        assert!(!matches!(err, Error::Timeout { .. }), "{err:?}");
        eprintln!("as expected: {err}");
    });
}

/// Records WARN and ERROR events as text.
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        if let Ok(mut w) = self.0.lock() {
            w.push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
