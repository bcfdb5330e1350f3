//! What the batches klamm's producer writes really carry, read back from
//! Apache Kafka (the single node) with plain Fetch requests (klamm's
//! consumer is not involved), and what the producer really put in its
//! Produce requests, recorded by the relay in front of the broker:
//!
//! - the codec of every stored batch is the configured one;
//! - the compression level has its effect: the same payload is stored
//!   smaller at a high gzip or zstd level than at a low one (klamm's lz4
//!   has one compressor, so every lz4 level stores the same bytes);
//! - with idempotence, producer id and epoch are set and each partition's
//!   base sequences run from 0 without gaps; without it, all three are -1;
//! - the `acks` of every Produce request is the configured 0, 1 or -1, its
//!   `timeout_ms` is `request.timeout.ms`, and its transactional id is
//!   the configured one (none for a plain producer).
//!
//! Every check compares against a value that differs between the
//! configurations, so a producer that ignored `compression`,
//! `compression.level`, `enable.idempotence`, `acks` or `transactional.id`
//! fails it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::config::Acks;
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::protocol::messages::ApiKey;
use klamm::protocol::records::{DecodeOptions, RecordBatch};
use klamm::{Client, Config};
use support::read::{config, records_of, stored_batches, stored_batches_sized};
use support::relay::{Fate, Relay};
use support::topics::create_topic;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends `values` to `topic`/`partition` with `cfg`, closes the producer
/// and checks every record was delivered, at consecutive offsets unless
/// `acks=0` (where the broker does not say). Record `i` has the timestamp
/// of the first plus `i` ms, so the same values make the same records
/// (timestamp deltas included) whenever they are sent.
async fn produce(cfg: Config, topic: &Arc<str>, partition: i32, values: &[String]) {
    let acks = cfg.producer.acks;
    let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
        .await
        .expect("producer");
    let mut futures = Vec::new();
    let t0 = now_ms();
    for (i, v) in values.iter().enumerate() {
        let r = ProducerRecord::new(Arc::clone(topic), v.clone())
            .with_partition(partition)
            .with_timestamp(t0 + i as i64);
        futures.push(producer.send(r).await.expect("send"));
    }
    producer.close().await.expect("close");
    let mut first = None;
    for (i, f) in futures.into_iter().enumerate() {
        let meta = f.await.expect("delivered");
        if acks == Acks::None {
            assert_eq!(meta.offset, -1, "acks=0 has no offsets");
        } else {
            let base = *first.get_or_insert(meta.offset);
            assert_eq!(meta.offset, base + i as i64, "consecutive offsets");
        }
    }
}

/// The stored values of a partition's data batches, in order.
fn values_of(batches: &[RecordBatch]) -> Vec<Bytes> {
    records_of(batches)
        .into_iter()
        .map(|r| r.value.unwrap_or_default())
        .collect()
}

fn as_bytes(values: &[String]) -> Vec<Bytes> {
    values.iter().map(|v| Bytes::from(v.clone())).collect()
}

/// Text that compresses, but not trivially: words from a small vocabulary
/// in a pseudo-random order (a fixed seed), so that a compressor that
/// searches harder finds more.
fn compressible(records: usize) -> Vec<String> {
    const WORDS: [&str; 24] = [
        "order",
        "customer",
        "shipped",
        "pending",
        "invoice",
        "warehouse",
        "berlin",
        "paris",
        "quantity",
        "price",
        "discount",
        "express",
        "standard",
        "returned",
        "paid",
        "unpaid",
        "priority",
        "gift",
        "note",
        "address",
        "street",
        "city",
        "country",
        "total",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..records)
        .map(|i| {
            let mut s = format!("{{\"id\":{i},\"text\":\"");
            for _ in 0..16 {
                s.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
                s.push(' ');
            }
            s.push_str(&format!("\",\"n\":{}}}", next() % 100_000));
            s
        })
        .collect()
}

#[test]
fn every_stored_batch_carries_the_configured_codec() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-stored-codec").into();
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        create_topic(&client, &topic, codecs.len() as i32).await;
        let values = compressible(300);
        for (p, codec) in codecs.into_iter().enumerate() {
            let mut cfg = config(&addr);
            cfg.producer.compression = codec;
            // Several batches per partition: every one is checked.
            cfg.producer.batch_size = 4096;
            produce(cfg, &topic, p as i32, &values).await;
        }
        let mut seen = Vec::new();
        for (p, codec) in codecs.into_iter().enumerate() {
            let batches = stored_batches(&client, &topic, p as i32).await;
            assert!(batches.len() > 1, "{codec}: {} batches", batches.len());
            for b in &batches {
                assert_eq!(
                    b.compression, codec,
                    "partition {p}: the batch at offset {} is stored as {}, configured {codec}",
                    b.base_offset, b.compression
                );
            }
            assert_eq!(values_of(&batches), as_bytes(&values), "{codec}");
            seen.push(batches[0].compression);
        }
        // The control: the five partitions differ in what they store, so
        // a producer that ignored the setting could not pass.
        seen.dedup();
        assert_eq!(seen.len(), codecs.len(), "{seen:?}");
    });
}

#[test]
fn a_higher_compression_level_stores_a_smaller_batch() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-stored-level").into();
        // (codec, low level, high level)
        let cases = [
            (Compression::Gzip, 1, 9),
            (Compression::Zstd, 1, 19),
            (Compression::Lz4, 1, 17),
        ];
        create_topic(&client, &topic, 2 * cases.len() as i32).await;
        let values = compressible(2000);
        let mut partition = 0;
        let mut sizes = Vec::new();
        for (codec, low, high) in cases {
            let mut pair = Vec::new();
            for level in [low, high] {
                let mut cfg = config(&addr);
                cfg.producer.compression = codec;
                cfg.producer.compression_level = Some(level);
                // One batch for all of it, whatever the level: nothing is
                // sent before close.
                cfg.producer.batch_size = 512 * 1024;
                cfg.producer.max_request_size = 1024 * 1024;
                cfg.producer.linger = Duration::from_secs(30);
                produce(cfg, &topic, partition, &values).await;
                let batches =
                    stored_batches_sized(&client, &topic, partition, &DecodeOptions::default())
                        .await;
                assert_eq!(batches.len(), 1, "{codec} {level}: one batch");
                for (b, _) in &batches {
                    assert_eq!(b.compression, codec);
                }
                let stored: Vec<RecordBatch> = batches.iter().map(|(b, _)| b.clone()).collect();
                assert_eq!(values_of(&stored), as_bytes(&values), "{codec} {level}");
                pair.push(batches.iter().map(|(_, size)| size).sum::<usize>());
                partition += 1;
            }
            sizes.push((codec, low, pair[0], high, pair[1]));
        }
        eprintln!("stored sizes (codec, level, bytes, level, bytes): {sizes:?}");
        for (codec, low, at_low, high, at_high) in sizes {
            match codec {
                // lz4_flex has only the fast compressor: klamm checks an
                // lz4 level against Kafka's range and otherwise ignores it
                // (src/protocol/compression/lz4.rs).
                Compression::Lz4 => assert_eq!(
                    at_low, at_high,
                    "lz4 {low} and {high} store the same bytes in klamm"
                ),
                _ => assert!(
                    at_high < at_low,
                    "{codec}: level {high} stored {at_high} bytes, level {low} {at_low}: \
                     the level had no effect"
                ),
            }
        }
    });
}

#[test]
fn idempotence_stamps_producer_id_epoch_and_gapless_sequences() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-stored-idem").into();
        create_topic(&client, &topic, 6).await;
        let values = compressible(200);
        // Partitions 0-2 idempotent (one producer), 3-5 not (acks=1 and
        // acks=all without idempotence).
        let mut cfg = config(&addr);
        cfg.producer.batch_size = 1024;
        let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
            .await
            .expect("producer");
        let mut futures = Vec::new();
        for (i, v) in values.iter().enumerate() {
            for p in 0..3 {
                // Interleaved, so batches of different partitions share
                // requests and sequences must be kept per partition.
                let r = ProducerRecord::new(Arc::clone(&topic), format!("{p}:{i}:{v}"))
                    .with_partition(p);
                futures.push(producer.send(r).await.expect("send"));
            }
        }
        producer.close().await.expect("close");
        for f in futures {
            f.await.expect("delivered");
        }
        for (p, acks) in [(3, Acks::Leader), (4, Acks::All), (5, Acks::Leader)] {
            let mut cfg = config(&addr);
            cfg.producer.idempotence = false;
            cfg.producer.acks = acks;
            cfg.producer.batch_size = 1024;
            produce(cfg, &topic, p, &values).await;
        }

        let mut ids = Vec::new();
        for p in 0..3 {
            let batches = stored_batches(&client, &topic, p).await;
            assert!(
                batches.len() > 2,
                "partition {p}: {} batches",
                batches.len()
            );
            let mut next_sequence = 0;
            for b in &batches {
                assert!(b.producer_id >= 0, "partition {p}: {b:?}");
                assert!(b.producer_epoch >= 0, "partition {p}: {b:?}");
                assert_eq!(
                    b.base_sequence, next_sequence,
                    "partition {p}: the batch at offset {} starts at sequence {}, \
                     the one before ended at {}",
                    b.base_offset, b.base_sequence, next_sequence
                );
                next_sequence += b.records.len() as i32;
                ids.push((b.producer_id, b.producer_epoch));
            }
            assert_eq!(next_sequence, values.len() as i32);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one producer id and epoch: {ids:?}");
        for p in 3..6 {
            let batches = stored_batches(&client, &topic, p).await;
            assert_eq!(values_of(&batches), as_bytes(&values));
            for b in &batches {
                assert_eq!(
                    (b.producer_id, b.producer_epoch, b.base_sequence),
                    (-1, -1, -1),
                    "partition {p}: no idempotence, no producer id"
                );
            }
        }
    });
}

#[test]
fn produce_requests_carry_the_configured_acks_and_transactional_id() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let relay = Relay::with_rules(addr.clone(), Default::default()).await;
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-stored-acks").into();
        create_topic(&client, &topic, 4).await;
        let values: Vec<String> = (0..50).map(|i| format!("value {i}")).collect();
        let request_timeout = Duration::from_millis(7_357);
        for (p, acks) in [Acks::None, Acks::Leader, Acks::All]
            .into_iter()
            .enumerate()
        {
            let mut cfg = config(&relay.addr);
            cfg.net.client_id = format!("klamm-acks-{}", acks.name());
            cfg.producer.acks = acks;
            cfg.producer.idempotence = acks == Acks::All;
            cfg.producer.request_timeout = request_timeout;
            cfg.producer.batch_size = 256;
            produce(cfg, &topic, p as i32, &values).await;
        }
        // A transactional producer, through the relay too.
        let transactional_id = support::unique_topic("klamm-stored-txn-id");
        let mut cfg = config(&relay.addr);
        cfg.net.client_id = "klamm-acks-txn".into();
        cfg.producer.transactional_id = Some(transactional_id.clone());
        cfg.producer.request_timeout = request_timeout;
        let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
            .await
            .expect("producer");
        producer.init_transactions().await.expect("init");
        producer.begin_transaction().expect("begin");
        let mut futures = Vec::new();
        for v in &values {
            let r = ProducerRecord::new(Arc::clone(&topic), v.clone()).with_partition(3);
            futures.push(producer.send(r).await.expect("send"));
        }
        producer.commit_transaction().await.expect("commit");
        producer.close().await.expect("close");
        for f in futures {
            f.await.expect("delivered");
        }

        let produces = relay.log.of(ApiKey::Produce);
        let from = |client_id: &str| {
            let mine: Vec<_> = produces
                .iter()
                .filter(|e| e.header.client_id.as_deref() == Some(client_id))
                .cloned()
                .collect();
            assert!(!mine.is_empty(), "no Produce request from {client_id}");
            mine
        };
        let mut acks_seen = Vec::new();
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            let name = format!("klamm-acks-{}", acks.name());
            let mine = from(&name);
            for e in &mine {
                assert_eq!(e.fate, Fate::Forwarded);
                let req = e.produce().expect("a Produce request");
                assert_eq!(req.acks, acks.code(), "{name}: acks on the wire");
                assert_eq!(req.transactional_id, None, "{name}");
                assert_eq!(req.timeout_ms, 7_357, "{name}: timeout_ms");
                acks_seen.push(req.acks);
            }
            // The broker answers every request but those with acks=0.
            let answered = mine.iter().filter(|e| e.response.is_some()).count();
            let want = if acks == Acks::None { 0 } else { mine.len() };
            assert_eq!(answered, want, "{name}: answers");
        }
        acks_seen.dedup();
        assert_eq!(acks_seen, [0, 1, -1], "the three settings, in order");
        for e in from("klamm-acks-txn") {
            let req = e.produce().expect("a Produce request");
            assert_eq!(req.acks, -1, "transactions need acks=all");
            assert_eq!(req.transactional_id.as_deref(), Some(&*transactional_id));
        }
        // What was stored: every partition has the values, and only the
        // transactional producer's batches are transactional.
        for p in 0..4 {
            let batches = stored_batches(&client, &topic, p).await;
            assert_eq!(values_of(&batches), as_bytes(&values), "partition {p}");
            let data = batches.iter().filter(|b| !b.is_control);
            assert!(
                data.clone().all(|b| b.is_transactional == (p == 3)),
                "partition {p}"
            );
        }
    });
}
