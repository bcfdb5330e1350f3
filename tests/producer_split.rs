//! Batch splitting on MESSAGE_TOO_LARGE against Apache Kafka: a topic whose
//! `max.message.bytes` is far below the producer's batches, written by an
//! idempotent acks=all producer and read back with plain Fetch requests;
//! and the two broker facts the producer's sequence handling rests on.

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
use klamm::protocol::messages::InitProducerIdRequest;
use klamm::protocol::records::{DecodeOptions, EncodeOptions, Record, RecordBatch};
use support::read::read_partition;
use support::topics::TopicSpec;

/// The topic's `max.message.bytes`.
const MAX_MESSAGE_BYTES: usize = 2000;
/// Records per run, 200 bytes each.
const RECORDS: usize = 5000;

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
    let p = support::produce::produce_raw(client, topic, 0, Bytes::from(bytes), None).await;
    ErrorCode(p.error_code)
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
        let client = Client::connect(support::read::config(&addr))
            .await
            .expect("connect");
        let topic = support::unique_topic("klamm-split-seq");
        support::topics::create(
            &client,
            &TopicSpec::new(&topic, 1).config("max.message.bytes", "2000"),
        )
        .await;
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
        // A broker that has not yet taken a block of producer ids from the
        // controller answers COORDINATOR_LOAD_IN_PROGRESS: ask again.
        let mut pid = None;
        for _ in 0..100 {
            let resp = conn
                .send(&InitProducerIdRequest {
                    transactional_id: None,
                    producer_id: -1,
                    producer_epoch: -1,
                    transaction_timeout_ms: 60_000,
                    ..Default::default()
                })
                .await
                .expect("InitProducerId");
            let code = ErrorCode(resp.error_code);
            if code.is_ok() {
                pid = Some(resp);
                break;
            }
            assert!(code.is_retriable(), "InitProducerId: {code:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pid = pid.expect("a producer id within 10 s");
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

/// A batch as the broker stored it.
#[derive(Debug)]
struct StoredBatch {
    base_offset: i64,
    /// Bytes on disk: the whole batch, header included.
    size: usize,
    codec: Compression,
    count: usize,
}

async fn stored_batches(client: &Client, topic: &str, partition: i32) -> Vec<StoredBatch> {
    support::read::stored_batches_sized(client, topic, partition, &DecodeOptions::default())
        .await
        .into_iter()
        .map(|(b, size)| StoredBatch {
            base_offset: b.base_offset,
            size,
            codec: b.compression,
            count: b.records.len(),
        })
        .collect()
}

/// 5,000 records of 200 bytes in batches of up to 64 KiB to a topic that
/// takes batches of at most 2,000 bytes: every one is split, again and
/// again, and every record is stored once, in order, in batches that fit.
async fn split_round_trip(codec: Compression) {
    let Some(addr) = support::broker() else {
        return;
    };
    let client = Client::connect(support::read::config(&addr))
        .await
        .expect("connect");
    let topic: Arc<str> = support::unique_topic("klamm-split").into();
    let limit = MAX_MESSAGE_BYTES.to_string();
    support::topics::create(
        &client,
        &TopicSpec::new(&topic, 1).config("max.message.bytes", &limit),
    )
    .await;
    let mut config = support::read::config(&addr);
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
        assert_eq!(r.sequence, i as i32, "{codec:?}: sequences without a gap");
    }
    let batches = stored_batches(&client, &topic, 0).await;
    assert_eq!(
        batches.iter().map(|b| b.count as i64).sum::<i64>(),
        RECORDS as i64
    );
    let mut next = 0;
    for b in &batches {
        assert_eq!(b.base_offset, next, "{codec:?}: {b:?}");
        next += b.count as i64;
        assert!(b.size <= MAX_MESSAGE_BYTES, "{codec:?}: {b:?}");
        assert_eq!(b.codec, codec, "{codec:?}: {b:?}");
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
