//! `from_properties`: every accepted key maps to its field, unknown keys
//! and bad values are named, the text format, and enum names round trip.

use super::*;

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
    ("send.buffer.bytes", "1048576", |c| {
        c.net.send_buffer_size == Some(1_048_576)
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
    ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----", |c| {
        c.net.tls.ca_pem.as_deref() == Some("-----BEGIN CERTIFICATE-----")
    }),
    ("ssl.certificate.pem", "-----BEGIN CERTIFICATE-----", |c| {
        c.net.tls.certificate_pem.as_deref() == Some("-----BEGIN CERTIFICATE-----")
    }),
    ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----", |c| {
        c.net.tls.key_pem.as_deref() == Some("-----BEGIN PRIVATE KEY-----")
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
    ("max.buffered.records", "250000", |c| {
        c.producer.max_buffered_records == 250_000
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
    ("fetch.max.decompressed.bytes", "4096", |c| {
        c.consumer.fetch_max_decompressed_bytes == Some(4096)
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
    ("default.api.timeout.ms", "7000", |c| {
        c.consumer.default_api_timeout == Duration::from_secs(7)
    }),
    ("group.protocol", "CONSUMER", |c| {
        c.consumer.group_protocol == crate::config::GroupProtocol::Consumer
    }),
    (
        "partition.assignment.strategy",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, roundrobin,my-own",
        |c| {
            c.consumer.partition_assignment_strategy
                == ["cooperative-sticky", "roundrobin", "my-own"]
        },
    ),
    ("group.remote.assignor", "uniform", |c| {
        c.consumer.group_remote_assignor.as_deref() == Some("uniform")
    }),
    ("client.rack", "rack-a", |c| {
        c.consumer.client_rack.as_deref() == Some("rack-a")
    }),
    ("group.stable.id", "worker-1", |c| {
        c.consumer.group_stable_id.as_deref() == Some("worker-1")
    }),
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
        ("group.protocol", "share"),
        ("partition.assignment.strategy", ",,"),
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
    // -1 is the kernel's default for the socket buffers, after a size too.
    let c = Config::from_properties([
        ("send.buffer.bytes", "65536"),
        ("send.buffer.bytes", "-1"),
        ("receive.buffer.bytes", "-1"),
    ])
    .unwrap();
    assert_eq!(c.net.send_buffer_size, None);
    assert_eq!(c.net.receive_buffer_size, None);
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
