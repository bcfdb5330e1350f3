//! A million records across six partitions, for each codec: written by
//! klamm's `AsyncProducer` (acks=all, idempotent), read back by klamm's
//! consumer and by an independent reader (librdkafka through
//! confluent-kafka, `scripts/peer-read.py`). Every record must come back
//! exactly once, in order per partition, with key, value, headers and
//! timestamp intact.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::AsyncProducer;
use klamm::protocol::compression::Compression;
use klamm::{Client, Config};
use support::{pattern, peers};

const TOTAL: u64 = 1_000_000;
const PARTITIONS: i32 = 6;
const SIZE: usize = 100;

/// The records of partition `p`: the million split as evenly as it goes.
fn count(p: i32) -> u64 {
    TOTAL / PARTITIONS as u64 + u64::from((p as u64) < TOTAL % PARTITIONS as u64)
}

/// One million-record run at a time: they share the broker and both cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn round_trip(codec: Compression) {
    let Some(addr) = support::broker() else {
        return;
    };
    let Some(python) = peers::peer_python() else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topic: Arc<str> = support::unique_topic(&format!("million-{}", codec.name())).into();
    support::run_within(480, async {
        let mut config = Config::default();
        config.net.bootstrap_servers = vec![addr.clone()];
        config.producer.compression = codec;
        config.producer.batch_size = 256 * 1024;
        config.consumer.fetch_max_wait = Duration::from_millis(100);
        let client = Client::connect(config).await.expect("connect");
        support::topics::create_topic(&client, &topic, PARTITIONS).await;

        // Write: records go out partition-interleaved, as an application
        // would send them.
        let started = Instant::now();
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let mut pending = Vec::with_capacity(TOTAL as usize);
        let mut next = [0u64; PARTITIONS as usize];
        let mut written = 0;
        while written < TOTAL {
            for p in 0..PARTITIONS {
                let i = next[p as usize];
                if i < count(p) {
                    let delivery = producer
                        .send(pattern::record(&topic, p, i, SIZE))
                        .await
                        .expect("send");
                    pending.push((p, i, delivery));
                    next[p as usize] += 1;
                    written += 1;
                }
            }
        }
        producer.flush().await.expect("flush");
        let mut offsets = vec![Vec::new(); PARTITIONS as usize];
        for (p, i, delivery) in pending {
            let meta = delivery
                .await
                .unwrap_or_else(|e| panic!("record {p}/{i}: {e}"));
            assert_eq!(
                meta.partition, p,
                "record {i} acknowledged on another partition"
            );
            offsets[p as usize].push(meta.offset);
        }
        for (p, offs) in offsets.iter().enumerate() {
            let want: Vec<i64> = (0..count(p as i32) as i64).collect();
            assert!(
                *offs == want,
                "partition {p}: acknowledged offsets are not 0..n in send order"
            );
        }
        producer.close().await.expect("close");
        eprintln!(
            "{}: wrote {TOTAL} records in {:?}",
            codec.name(),
            started.elapsed()
        );

        // Read back with klamm's consumer.
        let started = Instant::now();
        let consumer = Consumer::new(client.clone());
        for p in 0..PARTITIONS {
            let mut pc = consumer
                .consume_partition(&topic, p, StartOffset::Oldest)
                .await
                .expect("consume_partition");
            let mut i = 0u64;
            while i < count(p) {
                let batch = pc
                    .recv_batch()
                    .await
                    .expect("stream ended early")
                    .expect("fetch");
                for rec in batch.records.iter() {
                    assert_eq!(
                        rec.offset, i as i64,
                        "partition {p}: offsets not contiguous"
                    );
                    if let Err(e) = pattern::check(rec, p, i, SIZE) {
                        panic!("{e}");
                    }
                    i += 1;
                }
            }
            assert_eq!(i, count(p), "partition {p}: more records than written");
            assert_eq!(
                pc.high_water_mark(),
                count(p) as i64,
                "partition {p}: high watermark"
            );
            pc.close().await;
        }
        consumer.close().await;
        eprintln!(
            "{}: klamm read {TOTAL} records back in {:?}",
            codec.name(),
            started.elapsed()
        );
        client.close().await;
    });

    // Read back with an independent client.
    let started = Instant::now();
    let counts: Vec<u64> = (0..PARTITIONS).map(count).collect();
    let out = peers::peer_read(
        &python,
        &addr,
        &topic,
        &counts,
        SIZE,
        pattern::BASE_TS,
        Duration::from_secs(180),
    );
    eprintln!(
        "{}: librdkafka read back in {:?}: {out}",
        codec.name(),
        started.elapsed()
    );
}

#[test]
fn million_records_uncompressed() {
    round_trip(Compression::None);
}

#[test]
fn million_records_gzip() {
    round_trip(Compression::Gzip);
}

#[test]
fn million_records_snappy() {
    round_trip(Compression::Snappy);
}

#[test]
fn million_records_lz4() {
    round_trip(Compression::Lz4);
}

#[test]
fn million_records_zstd() {
    round_trip(Compression::Zstd);
}
