use std::path::PathBuf;
use std::time::Duration;

use super::net::check_host_port;
use super::*;
use crate::ErrorKind;
use crate::protocol::compression::Compression;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A configuration that passes `validate`.
fn valid() -> Config {
    let mut c = Config::default();
    c.net.bootstrap_servers = vec!["localhost:9092".into()];
    c
}

fn key_of(result: Result<impl std::fmt::Debug, Error>) -> String {
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.is_retriable());
    err.config_key().unwrap().to_owned()
}

#[test]
fn defaults_match_the_java_client() {
    let c = Config::default();
    // net
    assert!(c.net.bootstrap_servers.is_empty()); // bootstrap.servers: no default
    assert_eq!(c.net.client_id, ""); // client.id = ""
    assert_eq!(c.net.request_timeout, ms(30_000)); // request.timeout.ms = 30000
    assert_eq!(c.net.connect_timeout, ms(10_000)); // socket.connection.setup.timeout.ms = 10000
    assert_eq!(c.net.connect_timeout_max, ms(30_000)); // socket.connection.setup.timeout.max.ms = 30000
    assert_eq!(c.net.send_buffer_size, Some(131_072)); // send.buffer.bytes = 128 KiB
    assert_eq!(c.net.receive_buffer_size, Some(65_536)); // receive.buffer.bytes = 64 KiB (consumer, admin)
    assert_eq!(c.net.reconnect_backoff, ms(50)); // reconnect.backoff.ms = 50
    assert_eq!(c.net.reconnect_backoff_max, ms(1000)); // reconnect.backoff.max.ms = 1000
    assert_eq!(c.net.backoff_jitter, 0.2); // CommonClientConfigs.RETRY_BACKOFF_JITTER = 0.2
    assert_eq!(c.net.security_protocol, SecurityProtocol::Plaintext); // security.protocol = PLAINTEXT
    assert!(c.net.tls.verify_hostname); // ssl.endpoint.identification.algorithm = https
    assert!(c.net.tls.verify_certificates);
    assert_eq!(c.net.tls.ca_location, None);
    // klamm/Sarama/librdkafka-only net settings
    assert_eq!(c.net.max_in_flight_requests, 5); // Sarama Net.MaxOpenRequests = 5
    assert_eq!(c.net.max_response_size, 100 * 1024 * 1024); // Sarama MaxResponseSize
    assert!(c.net.tcp_keepalive && c.net.tcp_nodelay);
    assert_eq!(c.net.sasl.mechanism, None); // Java: GSSAPI, unsupported here
    assert!(c.net.sasl.reauthenticate);
    // metadata
    assert_eq!(c.metadata.max_age, ms(300_000)); // metadata.max.age.ms = 300000
    assert_eq!(c.metadata.refresh_interval, Some(ms(300_000))); // = metadata.max.age.ms
    assert_eq!(c.metadata.retry_backoff, ms(100)); // retry.backoff.ms = 100
    assert!(c.metadata.allow_auto_topic_creation); // allow.auto.create.topics = true
    // producer
    let p = &c.producer;
    assert_eq!(p.acks, Acks::All); // acks = all
    assert!(p.idempotence); // enable.idempotence = true
    assert_eq!(p.max_in_flight_requests_per_connection, 5); // max.in.flight.requests.per.connection = 5
    assert_eq!(p.retries, 2_147_483_647); // retries = Integer.MAX_VALUE
    assert_eq!(p.retry_backoff, ms(100)); // retry.backoff.ms = 100
    assert_eq!(p.delivery_timeout, ms(120_000)); // delivery.timeout.ms = 120000
    assert_eq!(p.request_timeout, ms(30_000)); // request.timeout.ms = 30000
    assert_eq!(p.linger, ms(5)); // linger.ms = 5 (Kafka 4.0+)
    assert_eq!(p.batch_size, 16_384); // batch.size = 16384
    assert_eq!(p.buffer_memory, 33_554_432); // buffer.memory = 32 MiB
    assert_eq!(p.max_request_size, 1_048_576); // max.request.size = 1 MiB
    assert_eq!(p.compression, Compression::None); // compression.type = none
    assert_eq!(p.compression_level, None); // compression.<codec>.level = codec default
    assert_eq!(p.partitioner, Partitioner::Murmur2); // partitioner.class = null (built-in murmur2)
    assert_eq!(p.transactional_id, None); // transactional.id = null
    assert_eq!(p.transaction_timeout, ms(60_000)); // transaction.timeout.ms = 60000
    assert_eq!(p.max_block, ms(60_000)); // max.block.ms = 60000
    assert!(p.block_on_buffer_full); // send waits for buffer room
    // consumer
    let k = &c.consumer;
    assert_eq!(k.group_id, None); // group.id = null
    assert_eq!(k.group_instance_id, None); // group.instance.id = null
    assert_eq!(k.fetch_min_bytes, 1); // fetch.min.bytes = 1
    assert_eq!(k.fetch_max_bytes, 52_428_800); // fetch.max.bytes = 50 MiB
    assert_eq!(k.max_partition_fetch_bytes, 1_048_576); // max.partition.fetch.bytes = 1 MiB
    assert_eq!(k.fetch_max_wait, ms(500)); // fetch.max.wait.ms = 500
    assert_eq!(k.isolation_level, IsolationLevel::ReadUncommitted); // isolation.level = read_uncommitted
    assert_eq!(k.auto_offset_reset, OffsetReset::Latest); // auto.offset.reset = latest
    assert!(k.enable_auto_commit); // enable.auto.commit = true
    assert_eq!(k.auto_commit_interval, ms(5000)); // auto.commit.interval.ms = 5000
    assert_eq!(k.session_timeout, ms(45_000)); // session.timeout.ms = 45000
    assert_eq!(k.heartbeat_interval, ms(3000)); // heartbeat.interval.ms = 3000
    assert_eq!(k.max_poll_interval, ms(300_000)); // max.poll.interval.ms = 300000
    assert_eq!(k.rebalance_timeout, None); // Java: rebalance timeout = max.poll.interval.ms
    assert_eq!(k.effective_rebalance_timeout(), ms(300_000));
    assert_eq!(k.max_poll_records, 500); // max.poll.records = 500
    assert!(k.check_crcs); // check.crcs = true
    // admin
    assert_eq!(c.admin.request_timeout, ms(30_000)); // request.timeout.ms = 30000
    assert_eq!(c.admin.retries, 2_147_483_647); // retries = Integer.MAX_VALUE
}

#[test]
fn defaults_plus_bootstrap_servers_validate() {
    valid().validate().unwrap();
    assert_eq!(key_of(Config::default().validate()), "bootstrap.servers");
}

type Check = fn(&Config) -> bool;

/// One row per accepted key: a non-default value and what it must set.
const MAPPING: &[(&str, &str, Check)] = &[
    ("bootstrap.servers", " a:1 ,b:2,, ", |c| {
        c.net.bootstrap_servers == ["a:1", "b:2"]
    }),
    ("client.id", "app", |c| c.net.client_id == "app"),
    ("request.timeout.ms", "1234", |c| {
        c.net.request_timeout == ms(1234)
            && c.producer.request_timeout == ms(1234)
            && c.admin.request_timeout == ms(1234)
    }),
    ("socket.connection.setup.timeout.ms", "777", |c| {
        c.net.connect_timeout == ms(777)
    }),
    ("socket.connection.setup.timeout.max.ms", "77777", |c| {
        c.net.connect_timeout_max == ms(77777)
    }),
    ("connection.max.in.flight.requests", "9", |c| {
        c.net.max_in_flight_requests == 9
    }),
    ("receive.message.max.bytes", "200000000", |c| {
        c.net.max_response_size == 200_000_000
    }),
    ("send.buffer.bytes", "-1", |c| {
        c.net.send_buffer_size.is_none()
    }),
    ("receive.buffer.bytes", "4096", |c| {
        c.net.receive_buffer_size == Some(4096)
    }),
    ("socket.keepalive.enable", "false", |c| !c.net.tcp_keepalive),
    ("socket.nagle.disable", "FALSE", |c| !c.net.tcp_nodelay),
    ("reconnect.backoff.ms", "10", |c| {
        c.net.reconnect_backoff == ms(10)
    }),
    ("reconnect.backoff.max.ms", "5000", |c| {
        c.net.reconnect_backoff_max == ms(5000)
    }),
    ("reconnect.backoff.jitter", "0.5", |c| {
        c.net.backoff_jitter == 0.5
    }),
    ("security.protocol", "sasl_ssl", |c| {
        c.net.security_protocol == SecurityProtocol::SaslSsl
    }),
    ("ssl.ca.location", "/ca.pem", |c| {
        c.net.tls.ca_location == Some(PathBuf::from("/ca.pem"))
    }),
    ("ssl.certificate.location", "/c.pem", |c| {
        c.net.tls.certificate_location == Some(PathBuf::from("/c.pem"))
    }),
    ("ssl.key.location", "/k.pem", |c| {
        c.net.tls.key_location == Some(PathBuf::from("/k.pem"))
    }),
    ("enable.ssl.certificate.verification", "false", |c| {
        !c.net.tls.verify_certificates
    }),
    ("ssl.endpoint.identification.algorithm", "none", |c| {
        !c.net.tls.verify_hostname
    }),
    ("ssl.sni.hostname", "kafka.example", |c| {
        c.net.tls.sni_hostname.as_deref() == Some("kafka.example")
    }),
    ("sasl.mechanism", "SCRAM-SHA-256", |c| {
        c.net.sasl.mechanism == Some(SaslMechanism::ScramSha256)
    }),
    ("sasl.mechanisms", "plain", |c| {
        c.net.sasl.mechanism == Some(SaslMechanism::Plain)
    }),
    ("sasl.username", "alice", |c| {
        c.net.sasl.username.as_deref() == Some("alice")
    }),
    ("sasl.password", " pw ", |c| {
        c.net.sasl.password == Some(Password::new(" pw "))
    }),
    ("sasl.reauthentication.enable", "false", |c| {
        !c.net.sasl.reauthenticate
    }),
    ("metadata.refresh.interval.ms", "-1", |c| {
        c.metadata.refresh_interval.is_none()
    }),
    ("topic.metadata.refresh.interval.ms", "60000", |c| {
        c.metadata.refresh_interval == Some(ms(60_000))
    }),
    ("retry.backoff.ms", "250", |c| {
        c.metadata.retry_backoff == ms(250) && c.producer.retry_backoff == ms(250)
    }),
    ("metadata.max.age.ms", "1000", |c| {
        c.metadata.max_age == ms(1000)
    }),
    ("allow.auto.create.topics", "false", |c| {
        !c.metadata.allow_auto_topic_creation
    }),
    ("acks", "1", |c| c.producer.acks == Acks::Leader),
    ("enable.idempotence", "false", |c| !c.producer.idempotence),
    ("max.in.flight.requests.per.connection", "1", |c| {
        c.producer.max_in_flight_requests_per_connection == 1
    }),
    ("retries", "3", |c| {
        c.producer.retries == 3 && c.admin.retries == 3
    }),
    ("delivery.timeout.ms", "200000", |c| {
        c.producer.delivery_timeout == ms(200_000)
    }),
    ("linger.ms", "0", |c| c.producer.linger == ms(0)),
    ("batch.size", "65536", |c| c.producer.batch_size == 65536),
    ("buffer.memory", "1073741824", |c| {
        c.producer.buffer_memory == 1 << 30
    }),
    ("max.request.size", "2097152", |c| {
        c.producer.max_request_size == 2 * 1024 * 1024
    }),
    ("compression.type", "zstd", |c| {
        c.producer.compression == Compression::Zstd
    }),
    ("compression.codec", "LZ4", |c| {
        c.producer.compression == Compression::Lz4
    }),
    // Applies to the codec chosen later (none by default), so only checked.
    ("compression.level", "-1", |c| {
        c.producer.compression_level.is_none()
    }),
    ("compression.gzip.level", "9", |c| {
        c.producer.compression_level.is_none()
    }),
    ("compression.lz4.level", "17", |c| {
        c.producer.compression_level.is_none()
    }),
    ("compression.zstd.level", "19", |c| {
        c.producer.compression_level.is_none()
    }),
    ("partitioner", "round-robin", |c| {
        c.producer.partitioner == Partitioner::RoundRobin
    }),
    (
        "partitioner.class",
        "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        |c| c.producer.partitioner == Partitioner::RoundRobin,
    ),
    ("transactional.id", "tx-1", |c| {
        c.producer.transactional_id.as_deref() == Some("tx-1")
    }),
    ("transaction.timeout.ms", "90000", |c| {
        c.producer.transaction_timeout == ms(90_000)
    }),
    ("max.block.ms", "0", |c| c.producer.max_block.is_zero()),
    ("block.on.buffer.full", "false", |c| {
        !c.producer.block_on_buffer_full
    }),
    ("group.id", "g", |c| {
        c.consumer.group_id.as_deref() == Some("g")
    }),
    ("group.instance.id", "i-1", |c| {
        c.consumer.group_instance_id.as_deref() == Some("i-1")
    }),
    ("fetch.min.bytes", "1024", |c| {
        c.consumer.fetch_min_bytes == 1024
    }),
    ("fetch.max.bytes", "1000", |c| {
        c.consumer.fetch_max_bytes == 1000
    }),
    ("max.partition.fetch.bytes", "2048", |c| {
        c.consumer.max_partition_fetch_bytes == 2048
    }),
    ("fetch.max.wait.ms", "100", |c| {
        c.consumer.fetch_max_wait == ms(100)
    }),
    ("isolation.level", "read_committed", |c| {
        c.consumer.isolation_level == IsolationLevel::ReadCommitted
    }),
    ("auto.offset.reset", "earliest", |c| {
        c.consumer.auto_offset_reset == OffsetReset::Earliest
    }),
    ("enable.auto.commit", "false", |c| {
        !c.consumer.enable_auto_commit
    }),
    ("auto.commit.interval.ms", "1000", |c| {
        c.consumer.auto_commit_interval == ms(1000)
    }),
    ("session.timeout.ms", "10000", |c| {
        c.consumer.session_timeout == ms(10_000)
    }),
    ("heartbeat.interval.ms", "1000", |c| {
        c.consumer.heartbeat_interval == ms(1000)
    }),
    ("max.poll.interval.ms", "60000", |c| {
        c.consumer.max_poll_interval == ms(60_000)
    }),
    ("rebalance.timeout.ms", "60000", |c| {
        c.consumer.rebalance_timeout == Some(ms(60_000))
    }),
    ("max.poll.records", "10", |c| {
        c.consumer.max_poll_records == 10
    }),
    ("check.crcs", "false", |c| !c.consumer.check_crcs),
];

#[test]
fn every_key_maps_to_its_field() {
    for &(key, value, check) in MAPPING {
        let config = Config::from_properties([(key, value)])
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        assert!(check(&config), "{key}={value} did not set its field");
        let changes_nothing = key.starts_with("compression.") && key.ends_with(".level");
        assert_eq!(
            config == Config::default(),
            changes_nothing,
            "{key}={value}: unexpected effect on the whole config"
        );
    }
}

#[test]
fn mapping_table_covers_every_accepted_key() {
    let tested: Vec<&str> = MAPPING.iter().map(|row| row.0).collect();
    for key in PROPERTY_KEYS {
        assert!(tested.contains(key), "no mapping test for {key}");
    }
    assert_eq!(
        tested.len(),
        PROPERTY_KEYS.len(),
        "duplicate or unlisted keys"
    );
    for key in tested {
        assert!(
            PROPERTY_KEYS.contains(&key),
            "{key} missing from PROPERTY_KEYS"
        );
    }
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    for key in [
        "linger",
        "Linger.ms",
        "key.serializer",
        "socket.timeout.ms",
        "",
    ] {
        let err = Config::from_properties([(key, "1")]).unwrap_err();
        assert_eq!(err.config_key(), Some(key));
        assert!(
            err.to_string().contains("unknown configuration key"),
            "{err}"
        );
    }
}

#[test]
fn bad_values_name_key_and_value() {
    let cases = [
        ("linger.ms", "-1"),
        ("linger.ms", "5ms"),
        ("linger.ms", ""),
        ("request.timeout.ms", "1.5"),
        ("batch.size", "-1"),
        ("batch.size", "99999999999"),
        ("max.in.flight.requests.per.connection", "many"),
        ("retries", "2147483648"),
        ("enable.idempotence", "yes"),
        ("acks", "2"),
        ("security.protocol", "TLS"),
        ("sasl.mechanism", "GSSAPI"),
        ("sasl.mechanism", "SCRAM-SHA-1"),
        ("ssl.endpoint.identification.algorithm", "http"),
        ("compression.type", "brotli"),
        ("compression.level", "high"),
        ("compression.gzip.level", "10"),
        ("compression.lz4.level", "0"),
        ("compression.zstd.level", "23"),
        ("partitioner", "sticky"),
        ("partitioner.class", "com.example.MyPartitioner"),
        ("isolation.level", "serializable"),
        ("auto.offset.reset", "by_duration:PT1H"),
        ("reconnect.backoff.jitter", "NaN"),
        ("send.buffer.bytes", "-2"),
        ("rebalance.timeout.ms", "-5"),
    ];
    for (key, value) in cases {
        let err = Config::from_properties([(key, value)]).unwrap_err();
        assert_eq!(err.config_key(), Some(key), "{key}={value}: {err}");
        assert!(
            err.to_string().contains(&format!("`{value}`")),
            "{key}={value}: {err}"
        );
    }
}

#[test]
fn the_password_never_shows() {
    let secret = "hunter2-\\u00zz";
    let mut config = valid();
    config.net.security_protocol = SecurityProtocol::SaslSsl;
    config.net.sasl.mechanism = Some(SaslMechanism::Plain);
    config.net.sasl.username = Some("alice".into());
    config.net.sasl.password = Some(Password::new(secret));
    config.validate().unwrap();
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("alice") && debug.contains("<redacted>"));

    // Nor in errors, even from a bad escape inside the value.
    let text = format!("sasl.password={secret}\n");
    let err = Config::from_properties_str(&text).unwrap_err();
    assert_eq!(err.config_key(), Some("sasl.password"));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    // Or from validation.
    config.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
    config.net.sasl.username = None;
    let err = config.validate().unwrap_err();
    assert_eq!(err.config_key(), Some("sasl.password"));
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[test]
fn compression_levels_resolve_in_any_order() {
    let in_order = Config::from_properties([
        ("compression.type", "zstd"),
        ("compression.zstd.level", "7"),
    ])
    .unwrap();
    let reversed = Config::from_properties([
        ("compression.zstd.level", "7"),
        ("compression.type", "zstd"),
    ])
    .unwrap();
    assert_eq!(in_order.producer.compression_level, Some(7));
    assert_eq!(in_order, reversed);

    // Levels for other codecs are checked but ignored, as in Java.
    let c = Config::from_properties([("compression.type", "lz4"), ("compression.gzip.level", "1")])
        .unwrap();
    assert_eq!(c.producer.compression_level, None);

    // The generic key applies to whatever codec is chosen.
    let c = Config::from_properties([("compression.level", "2"), ("compression.type", "gzip")])
        .unwrap();
    assert_eq!(c.producer.compression_level, Some(2));

    // Agreeing generic and specific levels are fine, conflicting ones not.
    let same = [
        ("compression.type", "gzip"),
        ("compression.level", "4"),
        ("compression.gzip.level", "4"),
    ];
    assert_eq!(
        Config::from_properties(same)
            .unwrap()
            .producer
            .compression_level,
        Some(4)
    );
    let conflict = [
        ("compression.type", "gzip"),
        ("compression.level", "4"),
        ("compression.gzip.level", "5"),
    ];
    assert_eq!(
        key_of(Config::from_properties(conflict)),
        "compression.level"
    );

    // A generic level the chosen codec cannot take.
    let err = Config::from_properties([("compression.type", "snappy"), ("compression.level", "3")]);
    assert_eq!(key_of(err), "compression.level");
    let err = Config::from_properties([("compression.type", "lz4"), ("compression.level", "18")]);
    assert_eq!(key_of(err), "compression.level");
}

#[test]
fn properties_text_format() {
    let text = "\
# comment
! also a comment

bootstrap.servers = a:1,\\
    b:2
client.id:my\\ app\\u0021
group.id   readers
ssl.ca.location=C:\\\\certs\\\\ca.pem
security.protocol=SSL
linger.ms=\\
  7";
    let c = Config::from_properties_str(text).unwrap();
    assert_eq!(c.net.bootstrap_servers, ["a:1", "b:2"]);
    assert_eq!(c.net.client_id, "my app!");
    assert_eq!(c.consumer.group_id.as_deref(), Some("readers"));
    assert_eq!(
        c.net.tls.ca_location,
        Some(PathBuf::from("C:\\certs\\ca.pem"))
    );
    assert_eq!(c.producer.linger, ms(7));
    c.validate().unwrap();

    assert_eq!(Config::from_properties_str("").unwrap(), Config::default());
    assert_eq!(key_of(Config::from_properties_str("nope=1")), "nope");
    // A key without a value has an empty value: bad for a duration.
    assert_eq!(
        key_of(Config::from_properties_str("linger.ms")),
        "linger.ms"
    );
    assert_eq!(
        key_of(Config::from_properties_str("client.id=\\u12")),
        "client.id"
    );
}

#[test]
fn later_duplicates_win_and_empty_unsets() {
    let c = Config::from_properties([
        ("group.id", "a"),
        ("group.id", "b"),
        ("transactional.id", "t"),
        ("transactional.id", ""),
    ])
    .unwrap();
    assert_eq!(c.consumer.group_id.as_deref(), Some("b"));
    assert_eq!(c.producer.transactional_id, None);
}

#[test]
fn host_port_parsing() {
    for ok in [
        "localhost:9092",
        "10.0.0.1:1",
        "[::1]:9092",
        "k-1.example.com:65535",
    ] {
        assert_eq!(check_host_port(ok), Ok(()), "{ok}");
    }
    for bad in [
        "localhost",
        ":9092",
        "host:",
        "host:0",
        "host:65536",
        "host:port",
        "::1:9092",
        "[::1]9092",
        "[::1:9092",
        "[nope]:9092",
        "ho st:9092",
        "PLAINTEXT://host:9092",
    ] {
        assert!(check_host_port(bad).is_err(), "{bad}");
    }
}

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

#[test]
fn enum_names_round_trip_through_properties() {
    for p in SecurityProtocol::ALL {
        let c = Config::from_properties([("security.protocol", p.name())]).unwrap();
        assert_eq!(c.net.security_protocol, p);
        assert_eq!(p.to_string(), p.name());
    }
    for m in SaslMechanism::ALL {
        let c = Config::from_properties([("sasl.mechanism", m.name())]).unwrap();
        assert_eq!(c.net.sasl.mechanism, Some(m));
    }
    for p in Partitioner::ALL {
        let c = Config::from_properties([("partitioner", p.name())]).unwrap();
        assert_eq!(c.producer.partitioner, p);
    }
    for a in [Acks::None, Acks::Leader, Acks::All] {
        let c = Config::from_properties([("acks", a.name())]).unwrap();
        assert_eq!(c.producer.acks, a);
    }
    assert_eq!(
        (Acks::None.code(), Acks::Leader.code(), Acks::All.code()),
        (0, 1, -1)
    );
    assert_eq!(IsolationLevel::ReadCommitted.code(), 1);
    for codec in Compression::ALL {
        let c = Config::from_properties([("compression.type", codec.name())]).unwrap();
        assert_eq!(c.producer.compression, codec);
    }
}
