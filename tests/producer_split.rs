//! Batch splitting on MESSAGE_TOO_LARGE against Apache Kafka: a topic whose
//! `max.message.bytes` is far below the producer's batches, written by an
//! idempotent acks=all producer and read back with plain Fetch requests;
//! and the two broker facts the producer's sequence handling rests on.

#[path = "producer_support/mod.rs"]
mod producer_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::Client;
use klamm::client::TrafficClass;
use klamm::config::Acks;
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::create_topics_request::{CreatableTopic, CreateableTopicConfig};
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, InitProducerIdRequest, ProduceRequest,
};
use klamm::protocol::records::{EncodeOptions, Record, RecordBatch};
use producer_support::read_partition;

/// The topic's `max.message.bytes`.
const MAX_MESSAGE_BYTES: usize = 2000;
/// Records per run, 200 bytes each.
const RECORDS: usize = 5000;

/// Creates `topic` with the given topic configs, then waits until every
/// partition has a leader (KRaft elects them after CreateTopics answers).
async fn create_topic_with(
    client: &Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let controller = client.controller().await.expect("controller");
    let conn = client
        .connection(&controller, TrafficClass::Other)
        .await
        .expect("connection");
    let created = conn
        .send(&CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: topic.to_string(),
                num_partitions: partitions,
                replication_factor: 1,
                configs: configs
                    .iter()
                    .map(|(k, v)| CreateableTopicConfig {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await
        .expect("CreateTopics");
    assert_eq!(created.topics[0].error_code, 0, "create {topic}");
    let names = [topic.to_string()];
    for _ in 0..200 {
        if client.refresh_metadata(Some(&names)).await.is_ok() {
            let meta = client.metadata();
            let led = meta.topics.get(topic).is_some_and(|t| {
                t.partitions.len() == partitions as usize
                    && t.partitions
                        .iter()
                        .all(|p| p.leader >= 0 && meta.brokers.contains_key(&p.leader))
            });
            if led {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{topic}: partitions without a leader after 10 s");
}

/// One raw batch of `n` records from `producer` (id, epoch) at `sequence`,
/// sent to partition 0; returns the partition's error code.
async fn produce_raw(
    client: &Client,
    topic: &str,
    producer: (i64, i16),
    sequence: i32,
    n: usize,
) -> ErrorCode {
    let mut batch = RecordBatch::new(0, 1_700_000_000_000);
    batch.producer_id = producer.0;
    batch.producer_epoch = producer.1;
    batch.base_sequence = sequence;
    batch.records = (0..n)
        .map(|i| {
            Record::new(
                None,
                Some(Bytes::from(format!("seq {}", sequence + i as i32))),
            )
            .with_offset_delta(i as i32)
        })
        .collect();
    let bytes = batch
        .encode_to_vec(&EncodeOptions::default())
        .expect("encode");
    let leader = client.leader(topic, 0).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Produce)
        .await
        .expect("connection");
    let resp = conn
        .send(&ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.to_string(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from(bytes)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("Produce");
    ErrorCode(resp.responses[0].partition_responses[0].error_code)
}

/// Why a partition's first batch under a producer id goes out alone: the
/// broker takes any first sequence from a producer it holds no state for,
/// so a later batch that overtook a refused first one would be written
/// ahead of it. Once it holds state, a gap is refused.
#[test]
fn a_partition_new_to_a_producer_takes_any_first_sequence() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(producer_support::config(&addr))
            .await
            .expect("connect");
        let topic = support::unique_topic("klamm-split-seq");
        create_topic_with(&client, &topic, 1, &[("max.message.bytes", "2000")]).await;
        let broker = client
            .metadata()
            .brokers
            .values()
            .next()
            .cloned()
            .expect("a broker");
        let conn = client
            .connection(&broker, TrafficClass::Other)
            .await
            .expect("connection");
        let pid = conn
            .send(&InitProducerIdRequest {
                transactional_id: None,
                producer_id: -1,
                producer_epoch: -1,
                transaction_timeout_ms: 60_000,
                ..Default::default()
            })
            .await
            .expect("InitProducerId");
        assert_eq!(pid.error_code, 0);
        let producer = (pid.producer_id, pid.producer_epoch);
        // Sequence 5 first: written, though 0..4 never came.
        assert_eq!(
            produce_raw(&client, &topic, producer, 5, 3).await,
            ErrorCode::NONE
        );
        // Now the broker knows the producer: a gap is refused.
        assert_eq!(
            produce_raw(&client, &topic, producer, 10, 1).await,
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        // A batch over max.message.bytes is refused before its sequence is
        // looked at, and does not take it: the next sequence is still 8.
        assert_eq!(
            produce_raw(&client, &topic, producer, 8, 200).await,
            ErrorCode::MESSAGE_TOO_LARGE
        );
        assert_eq!(
            produce_raw(&client, &topic, producer, 8, 1).await,
            ErrorCode::NONE
        );
    });
}

/// Record `i`'s value: 200 bytes, its number then hex that compresses
/// poorly (so compressed batches still pass the limit).
fn value(i: usize) -> Bytes {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = format!("{i:06}-");
    while v.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(char::from(b"0123456789abcdef"[(x % 16) as usize]));
    }
    Bytes::from(v)
}

/// A batch as the broker stored it, from its header.
#[derive(Debug)]
struct StoredBatch {
    base_offset: i64,
    /// Bytes on disk: the whole batch, header included.
    size: usize,
    codec: i16,
    count: i32,
}

/// The headers of every batch of a partition, from raw Fetch responses.
async fn stored_batches(client: &Client, topic: &str, partition: i32) -> Vec<StoredBatch> {
    let leader = client.leader(topic, partition).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Fetch)
        .await
        .expect("connection");
    let version = conn
        .api_versions()
        .version_for(ApiKey::Fetch, conn.broker())
        .expect("fetch version")
        .min(11);
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: topic.to_string(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            session_epoch: -1,
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await.expect("fetch");
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {topic}/{partition} at {offset}");
        if offset >= p.high_watermark {
            return out;
        }
        let data = p.records.clone().unwrap_or_default();
        let int = |at: usize, n: usize| {
            data[at..at + n]
                .iter()
                .fold(0i64, |a, &b| a << 8 | i64::from(b))
        };
        let mut pos = 0;
        let before = offset;
        // A v2 batch: base offset (8), length (4) of what follows, leader
        // epoch (4), magic (1), CRC (4), attributes (2), last offset
        // delta (4), ... record count at 57 (4); a partial one may end the
        // response.
        while pos + 61 <= data.len() {
            let size = 12 + int(pos + 8, 4) as usize;
            if pos + size > data.len() {
                break;
            }
            assert_eq!(data[pos + 16], 2, "a v2 batch");
            let base_offset = int(pos, 8);
            out.push(StoredBatch {
                base_offset,
                size,
                codec: (int(pos + 21, 2) & 7) as i16,
                count: int(pos + 57, 4) as i32,
            });
            offset = base_offset + int(pos + 23, 4) + 1;
            pos += size;
        }
        assert!(offset > before, "fetch at {offset} made no progress");
    }
}

/// 5,000 records of 200 bytes in batches of up to 64 KiB to a topic that
/// takes batches of at most 2,000 bytes: every one is split, again and
/// again, and every record is stored once, in order, in batches that fit.
async fn split_round_trip(codec: Compression) {
    let Some(addr) = support::broker() else {
        return;
    };
    let client = Client::connect(producer_support::config(&addr))
        .await
        .expect("connect");
    let topic: Arc<str> = support::unique_topic("klamm-split").into();
    let limit = MAX_MESSAGE_BYTES.to_string();
    create_topic_with(&client, &topic, 1, &[("max.message.bytes", limit.as_str())]).await;
    let mut config = producer_support::config(&addr);
    config.producer.idempotence = true;
    config.producer.acks = Acks::All;
    config.producer.batch_size = 64 * 1024;
    config.producer.linger = Duration::from_millis(50);
    config.producer.compression = codec;
    let producer = AsyncProducer::new(Client::connect(config).await.expect("connect"))
        .await
        .expect("producer");
    let mut futures = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let record = ProducerRecord::new(Arc::clone(&topic), value(i)).with_partition(0);
        futures.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for (i, f) in futures.into_iter().enumerate() {
        let meta = f
            .await
            .unwrap_or_else(|e| panic!("{codec:?}: record {i}: {e}"));
        assert_eq!(meta.offset, i as i64, "{codec:?}: in order, each once");
    }
    let stats = producer.stats();
    assert!(
        stats.batches_split > 0,
        "{codec:?}: nothing was split: {stats:?}"
    );
    assert_eq!(stats.batches_failed, 0, "{codec:?}: {stats:?}");
    assert_eq!(
        stats.producer_id_requests, 1,
        "{codec:?}: no epoch bump: {stats:?}"
    );
    producer.close().await.expect("close");

    let stored = read_partition(&client, &topic, 0).await;
    assert_eq!(stored.len(), RECORDS, "{codec:?}");
    for (i, r) in stored.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(
            r.value.as_ref(),
            Some(&value(i)),
            "{codec:?}: record at offset {i}"
        );
        assert_eq!(r.producer_id, stored[0].producer_id, "one producer id");
        assert_eq!(
            r.base_sequence, i as i32,
            "{codec:?}: sequences without a gap"
        );
    }
    let batches = stored_batches(&client, &topic, 0).await;
    assert_eq!(
        batches.iter().map(|b| i64::from(b.count)).sum::<i64>(),
        RECORDS as i64
    );
    let mut next = 0;
    for b in &batches {
        assert_eq!(b.base_offset, next, "{codec:?}: {b:?}");
        next += i64::from(b.count);
        assert!(b.size <= MAX_MESSAGE_BYTES, "{codec:?}: {b:?}");
        assert_eq!(b.codec, i16::from(codec.code()), "{codec:?}: {b:?}");
    }
    // Control: the batches really were cut down from far larger ones.
    assert!(
        batches.len() as u64 > stats.batches_split / 2,
        "{} batches",
        batches.len()
    );
    assert!(
        batches.len() >= RECORDS * 200 / MAX_MESSAGE_BYTES,
        "{codec:?}: {} batches",
        batches.len()
    );
    eprintln!(
        "{codec:?}: {} batches of {}..={} bytes, {} splits, {} Produce requests",
        batches.len(),
        batches.iter().map(|b| b.size).min().unwrap_or(0),
        batches.iter().map(|b| b.size).max().unwrap_or(0),
        stats.batches_split,
        stats.requests
    );
    client.close().await;
}

#[test]
fn batches_over_max_message_bytes_are_split_and_every_record_is_stored_once_in_order() {
    support::run_within(180, split_round_trip(Compression::None));
}

#[test]
fn compressed_batches_over_max_message_bytes_are_split_and_reencoded_with_their_codec() {
    support::run_within(180, split_round_trip(Compression::Lz4));
}
