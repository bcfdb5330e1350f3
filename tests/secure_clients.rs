//! TLS and SASL end to end through the `Client`, the `AsyncProducer` and
//! the `Consumer` — not only one connection — against Apache Kafka's own
//! listeners (`scripts/kafka`): SSL, mTLS, SASL_PLAINTEXT and SASL_SSL with
//! PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER; KIP-368
//! re-authentication under a producer and a consumer on a listener whose
//! sessions last 2 s; and the failures a user meets first — a wrong
//! password, an unknown user, a certificate the client does not trust, a
//! missing client certificate — each a clear, non-retriable error.

mod support;

use std::sync::Arc;
use std::time::Duration;

use klamm::client::{ClientOptions, TrafficClass};
use klamm::config::{SaslMechanism, SecurityProtocol};
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::{Client, Config, ErrorKind};
use support::auth::{Login, secure_config};

const PARTITIONS: i32 = 2;

/// Bootstraps through `config`, checks every broker is advertised on this
/// listener, creates a topic, writes `n` records per partition with the
/// (idempotent) producer and reads them all back with the consumer, over
/// the same listener.
async fn round_trip(label: &str, config: Config, options: ClientOptions, n: usize) {
    let addr = config.net.bootstrap_servers[0].clone();
    let client = Client::connect_with(config, options)
        .await
        .unwrap_or_else(|e| panic!("{label}: bootstrap: {e}"));
    let port: i32 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let meta = client.metadata();
    assert!(
        meta.brokers.values().all(|b| b.port == port),
        "{label}: brokers advertised on other listeners: {:?}",
        meta.brokers
    );
    let topic: Arc<str> = support::unique_topic(&format!("klamm-secure-{label}")).into();
    support::topics::create_topic(&client, &topic, PARTITIONS).await;

    let producer = AsyncProducer::new(client.clone())
        .await
        .unwrap_or_else(|e| panic!("{label}: producer: {e}"));
    let mut futures = Vec::new();
    for p in 0..PARTITIONS {
        for i in 0..n {
            let record = ProducerRecord::new(topic.clone(), format!("{label} value {p}/{i}"))
                .with_partition(p)
                .with_key(format!("k{i}"));
            futures.push(producer.send(record).await.expect("send"));
        }
    }
    for f in futures {
        f.await.unwrap_or_else(|e| panic!("{label}: delivery: {e}"));
    }
    producer.close().await.expect("close");

    let consumer = Consumer::new(client.clone());
    for p in 0..PARTITIONS {
        let mut pc = consumer
            .consume_partition(&topic, p, StartOffset::Oldest)
            .await
            .unwrap_or_else(|e| panic!("{label}: consume {p}: {e}"));
        for i in 0..n {
            let r = tokio::time::timeout(Duration::from_secs(20), pc.recv())
                .await
                .unwrap_or_else(|_| panic!("{label}: {p}/{i} within 20 s"))
                .expect("open")
                .expect("record");
            assert_eq!(r.offset, i as i64, "{label}");
            assert_eq!(
                r.value.as_deref(),
                Some(format!("{label} value {p}/{i}").as_bytes()),
                "{label} at {p}/{i}"
            );
        }
        pc.close().await;
    }
    client.close().await;
}

fn password(mech: SaslMechanism) -> Login {
    Login::Password(mech, "alice", "alice-secret")
}

#[test]
fn ssl_and_mtls_clients_produce_and_consume() {
    let Some(tls) = support::tls_listeners() else {
        return;
    };
    support::run_within(120, async {
        let (config, options) =
            secure_config(&tls.tls, SecurityProtocol::Ssl, Some(&tls.dir), false, None);
        round_trip("ssl", config, options, 50).await;
        let (config, options) =
            secure_config(&tls.mtls, SecurityProtocol::Ssl, Some(&tls.dir), true, None);
        round_trip("mtls", config, options, 50).await;
    });
}

#[test]
fn sasl_plaintext_clients_with_every_mechanism_produce_and_consume() {
    let Some(sasl) = support::sasl_listeners() else {
        return;
    };
    support::run_within(180, async {
        for (label, login) in [
            ("plain", password(SaslMechanism::Plain)),
            ("scram256", password(SaslMechanism::ScramSha256)),
            ("scram512", password(SaslMechanism::ScramSha512)),
            ("oauth", Login::Token("alice")),
        ] {
            let (config, options) = secure_config(
                &sasl.plaintext,
                SecurityProtocol::SaslPlaintext,
                None,
                false,
                Some(&login),
            );
            round_trip(label, config, options, 50).await;
        }
    });
}

#[test]
fn sasl_ssl_clients_with_every_mechanism_produce_and_consume() {
    let (Some(sasl), Some(tls)) = (support::sasl_listeners(), support::tls_listeners()) else {
        return;
    };
    support::run_within(180, async {
        for (label, login) in [
            ("ssl-plain", password(SaslMechanism::Plain)),
            ("ssl-scram256", password(SaslMechanism::ScramSha256)),
            ("ssl-scram512", password(SaslMechanism::ScramSha512)),
            ("ssl-oauth", Login::Token("alice")),
        ] {
            let (config, options) = secure_config(
                &sasl.ssl,
                SecurityProtocol::SaslSsl,
                Some(&tls.dir),
                false,
                Some(&login),
            );
            round_trip(label, config, options, 50).await;
        }
    });
}

/// A producer and a consumer keep working across KIP-368
/// re-authentications: the listener ends every session after 2 s, so the
/// run goes on until the leader's produce and fetch connections have each
/// re-authenticated twice (an event, not a time window). Every record
/// must arrive, in order.
#[test]
fn producer_and_consumer_survive_reauthentication() {
    let Some(sasl) = support::sasl_listeners() else {
        return;
    };
    support::run_within(180, async {
        for (label, login) in [
            ("reauth-scram", password(SaslMechanism::ScramSha256)),
            ("reauth-oauth", Login::Token("alice")),
        ] {
            let (config, options) = secure_config(
                &sasl.reauth,
                SecurityProtocol::SaslPlaintext,
                None,
                false,
                Some(&login),
            );
            let client = Client::connect_with(config, options)
                .await
                .unwrap_or_else(|e| panic!("{label}: bootstrap: {e}"));
            let topic: Arc<str> = support::unique_topic(label).into();
            support::topics::create_topic(&client, &topic, 1).await;
            let leader = client.leader(&topic, 0).await.expect("leader");

            let producer = AsyncProducer::new(client.clone()).await.expect("producer");
            let consumer = Consumer::new(client.clone());
            let mut pc = consumer
                .consume_partition(&topic, 0, StartOffset::Oldest)
                .await
                .expect("consume");
            let produce_conn = client
                .connection(&leader, TrafficClass::Produce)
                .await
                .expect("produce connection");
            let fetch_conn = client
                .connection(&leader, TrafficClass::Fetch)
                .await
                .expect("fetch connection");
            let mut sent = 0i64;
            let mut read = 0i64;
            while produce_conn.sasl_authentications() < 3 || fetch_conn.sasl_authentications() < 3 {
                let f = producer
                    .send(ProducerRecord::new(topic.clone(), format!("r{sent}")).with_partition(0))
                    .await
                    .expect("send");
                let meta = f
                    .await
                    .unwrap_or_else(|e| panic!("{label}: record {sent}: {e}"));
                assert_eq!(meta.offset, sent);
                sent += 1;
                let r = tokio::time::timeout(Duration::from_secs(20), pc.recv())
                    .await
                    .unwrap_or_else(|_| panic!("{label}: record {read} within 20 s"))
                    .expect("open")
                    .unwrap_or_else(|e| panic!("{label}: consume {read}: {e}"));
                assert_eq!(
                    (r.offset, r.value.as_deref()),
                    (read, Some(format!("r{read}").as_bytes()))
                );
                read += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(!produce_conn.is_closed() && !fetch_conn.is_closed());
            eprintln!(
                "{label}: {sent} records written and read across {} and {} authentications",
                produce_conn.sasl_authentications(),
                fetch_conn.sasl_authentications()
            );
            pc.close().await;
            producer.close().await.expect("close");
            client.close().await;
        }
    });
}

/// `Client::connect_with` fails with a non-retriable error of `kind` whose
/// message contains every one of `needles`.
async fn bootstrap_fails(
    config: Config,
    options: ClientOptions,
    kind: ErrorKind,
    needles: &[&str],
) -> String {
    let err = Client::connect_with(config, options)
        .await
        .expect_err("the client must not connect");
    let msg = err.to_string();
    assert_eq!(err.kind(), kind, "{msg}");
    assert!(!err.is_retriable(), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "`{msg}` does not say `{n}`");
    }
    eprintln!("as expected: {msg}");
    msg
}

#[test]
fn wrong_password_and_unknown_user_are_clear_auth_errors() {
    let Some(sasl) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        for mech in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            for (user, pass) in [("alice", "not-her-password"), ("nobody", "x")] {
                let (config, options) = secure_config(
                    &sasl.plaintext,
                    SecurityProtocol::SaslPlaintext,
                    None,
                    false,
                    Some(&Login::Password(mech, user, pass)),
                );
                bootstrap_fails(
                    config,
                    options,
                    ErrorKind::Auth,
                    &["SASL_AUTHENTICATION_FAILED", mech.name()],
                )
                .await;
            }
        }
        // The control: the right password through the same path works.
        let (config, options) = secure_config(
            &sasl.plaintext,
            SecurityProtocol::SaslPlaintext,
            None,
            false,
            Some(&password(SaslMechanism::ScramSha512)),
        );
        Client::connect_with(config, options)
            .await
            .expect("the right password")
            .close()
            .await;
    });
}

#[test]
fn failed_certificate_checks_are_clear_tls_errors() {
    let Some(tls) = support::tls_listeners() else {
        return;
    };
    support::run_within(60, async {
        // A CA that did not sign the broker's certificate.
        let (mut config, options) =
            secure_config(&tls.tls, SecurityProtocol::Ssl, Some(&tls.dir), false, None);
        config.net.tls.ca_location = Some(tls.dir.join("other-ca.crt"));
        bootstrap_fails(config, options, ErrorKind::Auth, &["not trusted"]).await;
        // The name in the certificate does not match.
        let (mut config, options) =
            secure_config(&tls.tls, SecurityProtocol::Ssl, Some(&tls.dir), false, None);
        config.net.tls.sni_hostname = Some("kafka.example.com".into());
        bootstrap_fails(config, options, ErrorKind::Auth, &["kafka.example.com"]).await;
        // The mTLS listener without a client certificate.
        let (config, options) = secure_config(
            &tls.mtls,
            SecurityProtocol::Ssl,
            Some(&tls.dir),
            false,
            None,
        );
        bootstrap_fails(config, options, ErrorKind::Auth, &["certificate"]).await;
    });
}
