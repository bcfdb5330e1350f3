//! `validate()`: every rule fails with its key named and passes nearby.

use super::*;

type Mutate = fn(&mut Config);

/// Each validate() rule: the key it names, a change that breaks it and a
/// nearby change that satisfies it.
const RULES: &[(&str, Mutate, Mutate)] = &[
    (
        "bootstrap.servers",
        |c| c.net.bootstrap_servers.clear(),
        |c| c.net.bootstrap_servers = vec!["a:1".into(), "[::1]:2".into()],
    ),
    (
        "bootstrap.servers",
        |c| c.net.bootstrap_servers.push("no-port".into()),
        |c| c.net.bootstrap_servers.push("port:9093".into()),
    ),
    (
        "client.id",
        |c| c.net.client_id = "x".repeat(40_000),
        |c| c.net.client_id = "x".repeat(32_767),
    ),
    (
        "request.timeout.ms",
        |c| c.net.request_timeout = Duration::ZERO,
        |c| {
            c.net.request_timeout = ms(1000);
            c.consumer.fetch_max_wait = ms(999);
        },
    ),
    (
        "request.timeout.ms",
        |c| c.net.request_timeout = ms(i32::MAX as u64 + 1),
        |c| c.net.request_timeout = ms(i32::MAX as u64),
    ),
    (
        "socket.connection.setup.timeout.ms",
        |c| c.net.connect_timeout = Duration::ZERO,
        |c| c.net.connect_timeout = ms(1),
    ),
    (
        "socket.connection.setup.timeout.max.ms",
        |c| c.net.connect_timeout_max = ms(9_999),
        |c| c.net.connect_timeout_max = ms(10_000),
    ),
    (
        "connection.max.in.flight.requests",
        |c| c.net.max_in_flight_requests = 0,
        |c| c.net.max_in_flight_requests = 1,
    ),
    (
        "receive.message.max.bytes",
        |c| c.net.max_response_size = 100,
        |c| {
            c.net.max_response_size = 1024;
            c.consumer.fetch_max_bytes = 512;
        },
    ),
    (
        "receive.message.max.bytes",
        |c| c.net.max_response_size = 50 * 1024 * 1024 + 511,
        |c| c.net.max_response_size = 50 * 1024 * 1024 + 512,
    ),
    (
        "send.buffer.bytes",
        |c| c.net.send_buffer_size = Some(0),
        |c| c.net.send_buffer_size = None,
    ),
    (
        "reconnect.backoff.max.ms",
        |c| c.net.reconnect_backoff = ms(2000),
        |c| c.net.reconnect_backoff = ms(1000),
    ),
    (
        "reconnect.backoff.jitter",
        |c| c.net.backoff_jitter = 1.5,
        |c| c.net.backoff_jitter = 1.0,
    ),
    (
        "ssl.ca.location",
        |c| c.net.tls.ca_location = Some("/ca.pem".into()),
        |c| {
            c.net.tls.ca_location = Some("/ca.pem".into());
            c.net.security_protocol = SecurityProtocol::Ssl;
        },
    ),
    (
        "ssl.certificate.location",
        |c| c.net.tls.certificate_location = Some("/c.pem".into()),
        |c| c.net.security_protocol = SecurityProtocol::Ssl,
    ),
    (
        "ssl.key.location",
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.certificate_location = Some("/c.pem".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.certificate_location = Some("/c.pem".into());
            c.net.tls.key_location = Some("/k.pem".into());
        },
    ),
    (
        "ssl.certificate.location",
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
            c.net.tls.key_location = Some("/k.pem".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
        },
    ),
    (
        "ssl.ca.pem",
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.ca_location = Some("/ca.pem".into());
            c.net.tls.ca_pem = Some("-----BEGIN CERTIFICATE-----".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.ca_pem = Some("-----BEGIN CERTIFICATE-----".into());
        },
    ),
    (
        "ssl.key.pem",
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.key_location = Some("/k.pem".into());
            c.net.tls.key_pem = Some("-----BEGIN PRIVATE KEY-----".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.certificate_location = Some("/c.pem".into());
            c.net.tls.key_pem = Some("-----BEGIN PRIVATE KEY-----".into());
        },
    ),
    (
        "ssl.ca.pem",
        |c| c.net.tls.ca_pem = Some("-----BEGIN CERTIFICATE-----".into()),
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.ca_pem = Some("-----BEGIN CERTIFICATE-----".into());
        },
    ),
    (
        "ssl.certificate.location",
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.key_pem = Some("-----BEGIN PRIVATE KEY-----".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.certificate_pem = Some("-----BEGIN CERTIFICATE-----".into());
            c.net.tls.key_pem = Some("-----BEGIN PRIVATE KEY-----".into());
        },
    ),
    (
        "ssl.sni.hostname",
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.sni_hostname = Some("bad host".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::Ssl;
            c.net.tls.sni_hostname = Some("kafka.internal".into());
        },
    ),
    (
        "sasl.mechanism",
        |c| c.net.security_protocol = SecurityProtocol::SaslPlaintext,
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslPlaintext;
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
        },
    ),
    (
        "sasl.mechanism",
        |c| c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer),
        |c| {
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
            c.net.security_protocol = SecurityProtocol::SaslSsl;
        },
    ),
    (
        "sasl.username",
        |c| c.net.sasl.username = Some("alice".into()),
        |c| c.net.sasl.username = None,
    ),
    (
        "sasl.password",
        |c| c.net.sasl.password = Some("pw".into()),
        |c| c.net.sasl.password = None,
    ),
    (
        "sasl.username",
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::ScramSha512);
            c.net.sasl.password = Some("pw".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::ScramSha512);
            c.net.sasl.username = Some("alice".into());
            c.net.sasl.password = Some("pw".into());
        },
    ),
    (
        "sasl.password",
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslPlaintext;
            c.net.sasl.mechanism = Some(SaslMechanism::Plain);
            c.net.sasl.username = Some("alice".into());
            c.net.sasl.password = Some("".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslPlaintext;
            c.net.sasl.mechanism = Some(SaslMechanism::Plain);
            c.net.sasl.username = Some("alice".into());
            c.net.sasl.password = Some("pw".into());
        },
    ),
    (
        "sasl.username",
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
            c.net.sasl.username = Some("alice".into());
        },
        |c| {
            c.net.security_protocol = SecurityProtocol::SaslSsl;
            c.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
        },
    ),
    (
        "metadata.refresh.interval.ms",
        |c| c.metadata.refresh_interval = Some(Duration::ZERO),
        |c| c.metadata.refresh_interval = None,
    ),
    (
        "max.in.flight.requests.per.connection",
        |c| c.producer.max_in_flight_requests_per_connection = 6,
        |c| {
            c.producer.max_in_flight_requests_per_connection = 6;
            c.producer.idempotence = false;
        },
    ),
    (
        "max.in.flight.requests.per.connection",
        |c| c.producer.max_in_flight_requests_per_connection = 0,
        |c| c.producer.max_in_flight_requests_per_connection = 1,
    ),
    (
        "acks",
        |c| c.producer.acks = Acks::Leader,
        |c| {
            c.producer.acks = Acks::Leader;
            c.producer.idempotence = false;
        },
    ),
    (
        "retries",
        |c| c.producer.retries = 0,
        |c| {
            c.producer.retries = 0;
            c.producer.idempotence = false;
        },
    ),
    (
        "retries",
        |c| c.producer.retries = u32::MAX,
        |c| c.producer.retries = 1,
    ),
    (
        "transactional.id",
        |c| {
            c.producer.transactional_id = Some("tx".into());
            c.producer.idempotence = false;
        },
        |c| c.producer.transactional_id = Some("tx".into()),
    ),
    (
        "transactional.id",
        |c| c.producer.transactional_id = Some(String::new()),
        |c| c.producer.transactional_id = None,
    ),
    (
        "transaction.timeout.ms",
        |c| c.producer.transaction_timeout = Duration::ZERO,
        |c| c.producer.transaction_timeout = ms(1),
    ),
    (
        "delivery.timeout.ms",
        |c| c.producer.delivery_timeout = ms(30_004),
        |c| c.producer.delivery_timeout = ms(30_005),
    ),
    (
        "max.request.size",
        |c| {
            c.producer.max_request_size = 0;
            c.producer.batch_size = 0;
        },
        |c| {
            c.producer.max_request_size = 1;
            c.producer.batch_size = 0;
        },
    ),
    (
        "batch.size",
        |c| c.producer.batch_size = 1024 * 1024 + 1,
        |c| c.producer.batch_size = 1024 * 1024,
    ),
    (
        "buffer.memory",
        |c| c.producer.buffer_memory = 16_383,
        |c| c.producer.buffer_memory = 16_384,
    ),
    (
        "max.buffered.records",
        |c| c.producer.max_buffered_records = 0,
        |c| c.producer.max_buffered_records = 1,
    ),
    (
        "compression.gzip.level",
        |c| {
            c.producer.compression = Compression::Gzip;
            c.producer.compression_level = Some(0);
        },
        |c| {
            c.producer.compression = Compression::Gzip;
            c.producer.compression_level = Some(-1);
        },
    ),
    (
        "compression.lz4.level",
        |c| {
            c.producer.compression = Compression::Lz4;
            c.producer.compression_level = Some(18);
        },
        |c| {
            c.producer.compression = Compression::Lz4;
            c.producer.compression_level = Some(17);
        },
    ),
    (
        "compression.zstd.level",
        |c| {
            c.producer.compression = Compression::Zstd;
            c.producer.compression_level = Some(23);
        },
        |c| {
            c.producer.compression = Compression::Zstd;
            c.producer.compression_level = Some(22);
        },
    ),
    (
        "compression.level",
        |c| {
            c.producer.compression = Compression::Snappy;
            c.producer.compression_level = Some(1);
        },
        |c| c.producer.compression = Compression::Snappy,
    ),
    (
        "group.id",
        |c| c.consumer.group_id = Some(String::new()),
        |c| c.consumer.group_id = Some("g".into()),
    ),
    (
        "group.instance.id",
        |c| c.consumer.group_instance_id = Some("i".into()),
        |c| {
            c.consumer.group_instance_id = Some("i".into());
            c.consumer.group_id = Some("g".into());
        },
    ),
    (
        "fetch.min.bytes",
        |c| c.consumer.fetch_min_bytes = 50 * 1024 * 1024 + 1,
        |c| c.consumer.fetch_min_bytes = 50 * 1024 * 1024,
    ),
    (
        "fetch.max.bytes",
        |c| {
            c.consumer.fetch_max_bytes = 0;
            c.consumer.fetch_min_bytes = 0;
        },
        |c| c.consumer.fetch_max_bytes = 1,
    ),
    (
        "fetch.max.decompressed.bytes",
        |c| c.consumer.fetch_max_decompressed_bytes = Some(0),
        |c| c.consumer.fetch_max_decompressed_bytes = Some(1),
    ),
    (
        "max.partition.fetch.bytes",
        |c| c.consumer.max_partition_fetch_bytes = 0,
        |c| c.consumer.max_partition_fetch_bytes = 1,
    ),
    (
        "fetch.max.wait.ms",
        |c| c.consumer.fetch_max_wait = ms(30_000),
        |c| c.consumer.fetch_max_wait = ms(29_999),
    ),
    (
        "auto.commit.interval.ms",
        |c| c.consumer.auto_commit_interval = Duration::ZERO,
        |c| {
            c.consumer.auto_commit_interval = Duration::ZERO;
            c.consumer.enable_auto_commit = false;
        },
    ),
    (
        "heartbeat.interval.ms",
        |c| c.consumer.heartbeat_interval = ms(45_000),
        |c| c.consumer.heartbeat_interval = ms(44_999),
    ),
    (
        "session.timeout.ms",
        |c| c.consumer.session_timeout = Duration::ZERO,
        |c| c.consumer.session_timeout = ms(3001),
    ),
    (
        "max.poll.interval.ms",
        |c| c.consumer.max_poll_interval = Duration::ZERO,
        |c| c.consumer.max_poll_interval = ms(1),
    ),
    (
        "rebalance.timeout.ms",
        |c| c.consumer.rebalance_timeout = Some(Duration::ZERO),
        |c| c.consumer.rebalance_timeout = Some(ms(60_000)),
    ),
    (
        "max.poll.records",
        |c| c.consumer.max_poll_records = 0,
        |c| c.consumer.max_poll_records = 1,
    ),
];

#[test]
fn every_rule_fails_and_passes() {
    for (i, &(key, fail, pass)) in RULES.iter().enumerate() {
        let mut bad = valid();
        fail(&mut bad);
        let err = bad.validate().unwrap_err();
        assert_eq!(err.config_key(), Some(key), "rule {i}: {err}");
        assert!(err.to_string().contains(key), "rule {i}: {err}");

        let mut good = valid();
        pass(&mut good);
        if let Err(e) = good.validate() {
            panic!("rule {i} ({key}): passing case fails: {e}");
        }
    }
}

#[test]
fn admin_rules() {
    let mut c = valid();
    c.admin.request_timeout = Duration::ZERO;
    assert_eq!(key_of(c.validate()), "request.timeout.ms");
    c.admin.request_timeout = ms(1);
    c.validate().unwrap();
    c.admin.retries = u32::MAX;
    assert_eq!(key_of(c.validate()), "retries");
}
