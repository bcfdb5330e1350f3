//! The consumer against Apache Kafka (the single node): data written with
//! klamm's protocol layer (Produce of encoded record batches), read back
//! with each start offset kind, each codec, pause/resume, and many
//! partitions through one fetcher.

mod support;

use std::time::Duration;

use bytes::Bytes;
use klamm::consumer::{ConsumedBatch, Consumer, ConsumerRecord, PartitionConsumer, StartOffset};
use klamm::protocol::compression::Compression;
use klamm::protocol::records::{EncodeOptions, Header, Record, RecordBatch};
use klamm::{Client, Config};

async fn connect(addr: &str) -> Client {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    config.consumer.fetch_max_wait = Duration::from_millis(100);
    Client::connect(config).await.expect("bootstrap")
}

const TS: i64 = 1_700_000_000_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `n` records `{tag}-{i}` with keys, a header and timestamps `ts + i`.
fn batch(tag: &str, n: usize, ts: i64) -> RecordBatch {
    let mut b = RecordBatch::new(0, ts);
    for i in 0..n {
        b.records.push(
            Record::new(
                Some(Bytes::from(format!("key-{tag}-{i}"))),
                Some(Bytes::from(format!("{tag}-{i}"))),
            )
            .with_offset_delta(i as i32)
            .with_timestamp_delta(i as i64)
            .with_header(Header::new("n", format!("{i}"))),
        );
    }
    b
}

/// Writes one batch and returns its base offset.
async fn produce(
    client: &Client,
    topic: &str,
    partition: i32,
    b: &RecordBatch,
    codec: Compression,
) -> i64 {
    let records = b
        .encode_to_vec(&EncodeOptions::compressed(codec))
        .expect("encode");
    let p = support::produce::produce_raw(client, topic, partition, records.into(), None).await;
    assert_eq!(p.error_code, 0, "Produce to {topic}/{partition}");
    p.base_offset
}

async fn take(pc: &mut PartitionConsumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(10), pc.recv())
            .await
            .expect("a record within 10 s")
            .expect("stream open")
            .expect("record");
        out.push(r);
    }
    out
}

fn check(records: &[ConsumerRecord], tag: &str, first_index: usize, first_offset: i64, ts: i64) {
    for (j, r) in records.iter().enumerate() {
        let i = first_index + j;
        assert_eq!(r.offset, first_offset + j as i64);
        assert_eq!(r.value.as_deref(), Some(format!("{tag}-{i}").as_bytes()));
        assert_eq!(r.key.as_deref(), Some(format!("key-{tag}-{i}").as_bytes()));
        assert_eq!(r.timestamp, ts + i as i64);
        assert_eq!(r.headers, [Header::new("n", format!("{i}"))]);
    }
}

#[test]
fn each_start_offset_kind_reads_back_what_was_written() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = connect(&addr).await;
        let topic = support::unique_topic("klamm-consume-start");
        support::topics::create_topic(&client, &topic, 1).await;
        let consumer = Consumer::new(client.clone());
        // Newest on an empty partition.
        let pc = consumer
            .consume_partition(&topic, 0, StartOffset::Newest)
            .await
            .expect("newest on an empty partition");
        pc.close().await;
        // Timestamps from the clock, so that a broker that indexes times by
        // when it appended (LogAppendTime topics) finds the same offsets.
        let mut ts = Vec::new();
        for (k, tag) in ["a", "b", "c"].iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ts.push(now_ms());
            let base = produce(
                &client,
                &topic,
                0,
                &batch(tag, 10, ts[k]),
                Compression::None,
            )
            .await;
            assert_eq!(base, 10 * k as i64);
        }

        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("oldest");
        let got = take(&mut pc, 30).await;
        check(&got[..10], "a", 0, 0, ts[0]);
        check(&got[20..], "c", 0, 20, ts[2]);
        assert_eq!(pc.high_water_mark(), 30, "the high watermark from Fetch");
        pc.close().await;

        // Offset 15 is inside the second batch: 10..15 are skipped.
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Offset(15))
            .await
            .expect("offset");
        let b: ConsumedBatch = pc.recv_batch().await.expect("open").expect("batch");
        assert_eq!(b.records[0].offset, 15);
        assert_eq!(b.len(), 5);
        check(&b.records, "b", 5, 15, ts[1]);
        pc.close().await;

        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Timestamp(ts[2]))
            .await
            .expect("timestamp");
        check(&take(&mut pc, 1).await, "c", 0, 20, ts[2]);
        pc.close().await;

        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Newest)
            .await
            .expect("newest");
        assert!(
            tokio::time::timeout(Duration::from_millis(400), pc.recv())
                .await
                .is_err(),
            "nothing before new data"
        );
        produce(
            &client,
            &topic,
            0,
            &batch("d", 3, TS + 3000),
            Compression::None,
        )
        .await;
        check(&take(&mut pc, 3).await, "d", 0, 30, TS + 3000);
        assert_eq!(pc.high_water_mark(), 33);
        consumer.close().await;
        client.close().await;
    });
}

#[test]
fn each_codec_reads_back() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = connect(&addr).await;
        let topic = support::unique_topic("klamm-consume-codecs");
        support::topics::create_topic(&client, &topic, 1).await;
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for (k, codec) in codecs.iter().enumerate() {
            produce(
                &client,
                &topic,
                0,
                &batch(&format!("{codec:?}"), 50, TS + k as i64 * 100),
                *codec,
            )
            .await;
        }
        let consumer = Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume");
        for (k, codec) in codecs.iter().enumerate() {
            let got = take(&mut pc, 50).await;
            check(
                &got,
                &format!("{codec:?}"),
                0,
                50 * k as i64,
                TS + k as i64 * 100,
            );
        }
        consumer.close().await;
        client.close().await;
    });
}

#[test]
fn pause_resume_and_many_partitions_through_one_fetcher() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = connect(&addr).await;
        let topic = support::unique_topic("klamm-consume-pause");
        support::topics::create_topic(&client, &topic, 3).await;
        for p in 0..3 {
            produce(
                &client,
                &topic,
                p,
                &batch(&format!("p{p}"), 5, TS),
                Compression::Lz4,
            )
            .await;
        }
        let consumer = Consumer::new(client.clone());
        let mut pcs = Vec::new();
        for p in 0..3 {
            pcs.push(
                consumer
                    .consume_partition(&topic, p, StartOffset::Oldest)
                    .await
                    .expect("consume"),
            );
        }
        for (p, pc) in pcs.iter_mut().enumerate() {
            check(&take(pc, 5).await, &format!("p{p}"), 0, 0, TS);
        }
        pcs[1].pause();
        consumer.pause_all();
        // A fetch still in flight delivers nothing for paused partitions,
        // so the records written now must not arrive until the resume.
        for p in 0..3 {
            produce(
                &client,
                &topic,
                p,
                &batch(&format!("q{p}"), 2, TS),
                Compression::None,
            )
            .await;
        }
        for pc in &mut pcs {
            assert!(
                tokio::time::timeout(Duration::from_millis(300), pc.recv())
                    .await
                    .is_err(),
                "a paused consumer delivered"
            );
        }
        consumer.resume_all();
        check(&take(&mut pcs[0], 2).await, "q0", 0, 5, TS);
        check(&take(&mut pcs[2], 2).await, "q2", 0, 5, TS);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), pcs[1].recv())
                .await
                .is_err(),
            "partition 1 stays paused after resume_all"
        );
        pcs[1].resume();
        check(&take(&mut pcs[1], 2).await, "q1", 0, 5, TS);
        consumer.close().await;
        client.close().await;
    });
}

#[test]
fn batches_bigger_than_the_partition_limit_and_cut_responses() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut config = Config::default();
        config.net.bootstrap_servers = vec![addr.clone()];
        config.consumer.fetch_max_wait = Duration::from_millis(100);
        // Smaller than the big batches below, larger than the small ones:
        // responses end in partial batches, and a big batch alone exceeds it.
        config.consumer.max_partition_fetch_bytes = 3000;
        let client = Client::connect(config).await.expect("bootstrap");
        let topic = support::unique_topic("klamm-consume-limits");
        support::topics::create_topic(&client, &topic, 1).await;
        let mut expected = Vec::new();
        for k in 0..6 {
            let n = if k % 2 == 0 { 5 } else { 300 };
            let tag = format!("t{k}");
            produce(&client, &topic, 0, &batch(&tag, n, TS), Compression::None).await;
            expected.extend((0..n).map(|i| (tag.clone(), i)));
        }
        let consumer = Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume");
        let got = take(&mut pc, expected.len()).await;
        for (j, (r, (tag, i))) in got.iter().zip(&expected).enumerate() {
            assert_eq!(r.offset, j as i64);
            assert_eq!(r.value.as_deref(), Some(format!("{tag}-{i}").as_bytes()));
        }
        consumer.close().await;
        client.close().await;
    });
}

/// CPU seconds (user + system) this process has used, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line (utime, stime), counted after the comm.
    (ticks(11) + ticks(12)) / 100.0
}

/// Consumer CPU per million 100-byte records (run by hand:
/// `cargo test --release --test consumer consume_cpu -- --ignored --nocapture`).
#[test]
#[ignore]
fn consume_cpu_per_million_records() {
    support::run_within(300, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = connect(&addr).await;
        for (codec, per_record) in [
            (Compression::None, false),
            (Compression::Lz4, false),
            (Compression::None, true),
        ] {
            let topic = support::unique_topic("klamm-consume-perf");
            support::topics::create_topic(&client, &topic, 1).await;
            const TOTAL: usize = 1_000_000;
            const PER_BATCH: usize = 5_000;
            // Printable pseudo-random values: compressible about as much as
            // text, not as much as a repeated byte.
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut value = || {
                let v: Vec<u8> = (0..100)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        b'a' + (seed % 26) as u8
                    })
                    .collect();
                Bytes::from(v)
            };
            for _ in 0..TOTAL / PER_BATCH {
                let mut b = RecordBatch::new(0, TS);
                for i in 0..PER_BATCH {
                    b.records
                        .push(Record::new(None, Some(value())).with_offset_delta(i as i32));
                }
                produce(&client, &topic, 0, &b, codec).await;
            }
            let consumer = Consumer::new(client.clone());
            let start_cpu = cpu_seconds();
            let start = std::time::Instant::now();
            let mut pc = consumer
                .consume_partition(&topic, 0, StartOffset::Oldest)
                .await
                .expect("consume");
            let mut n = 0;
            let mut bytes = 0;
            while n < TOTAL {
                if per_record {
                    let r = pc.recv().await.expect("open").expect("record");
                    n += 1;
                    bytes += r.value.as_ref().map_or(0, |v| v.len());
                } else {
                    let b = pc.recv_batch().await.expect("open").expect("batch");
                    n += b.len();
                    bytes += b
                        .iter()
                        .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                        .sum::<usize>();
                }
            }
            let cpu = cpu_seconds() - start_cpu;
            let wall = start.elapsed().as_secs_f64();
            eprintln!(
                "{codec:?} {}: consumed {n} records ({bytes} value bytes) in {wall:.2} s wall, \
                 {cpu:.2} CPU-s (whole process): {:.3} CPU-s per 1M, {:.2}M records/s",
                if per_record { "recv" } else { "recv_batch" },
                cpu * 1e6 / n as f64,
                n as f64 / wall / 1e6
            );
            assert_eq!(bytes, 100 * TOTAL);
            consumer.close().await;
        }
        client.close().await;
    });
}
