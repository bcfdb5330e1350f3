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
    // client.id: Java's config default is "", but its producers and
    // consumers then send a generated name; klamm sends "klamm" (Sarama:
    // "sarama", librdkafka: "rdkafka").
    assert_eq!(c.net.client_id, "klamm");
    assert_eq!(c.net.request_timeout, ms(30_000)); // request.timeout.ms = 30000
    assert_eq!(c.net.connect_timeout, ms(10_000)); // socket.connection.setup.timeout.ms = 10000
    assert_eq!(c.net.connect_timeout_max, ms(30_000)); // socket.connection.setup.timeout.max.ms = 30000
    // send.buffer.bytes = 128 KiB and receive.buffer.bytes = 64 KiB in
    // Java; klamm leaves both to the kernel (-1), as librdkafka, Sarama and
    // franz-go do: Java's 64 KiB receive buffer cost a consumer 1.26× CPU.
    assert_eq!(c.net.send_buffer_size, None);
    assert_eq!(c.net.receive_buffer_size, None);
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
    assert_eq!(p.max_buffered_records, 100_000); // klamm: librdkafka's message bound
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
    assert_eq!(k.group_stable_id, None); // klamm: client.id@host
    assert_eq!(k.fetch_min_bytes, 1); // fetch.min.bytes = 1
    assert_eq!(k.fetch_max_bytes, 52_428_800); // fetch.max.bytes = 50 MiB
    assert_eq!(k.fetch_max_decompressed_bytes, None); // klamm: fetch.max.bytes
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
    // A comma-separated list given as one entry says so, rather than
    // reading as an unbracketed IPv6 address.
    let why = check_host_port("127.0.0.1:9092,127.0.0.1:9093").unwrap_err();
    assert!(why.contains("comma"), "{why}");
}

mod properties;
mod rules;
