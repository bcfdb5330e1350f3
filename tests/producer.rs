//! The producer against Apache Kafka (the single node): what it writes is
//! read back with plain Fetch requests.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::config::Acks;
use klamm::producer::{AsyncProducer, ProducerRecord, SyncProducer};
use klamm::protocol::compression::Compression;
use klamm::protocol::records::Header;
use klamm::{Client, ErrorKind};
use support::read::{config, read_partition};
use support::topics::create_topic;

#[test]
fn send_flush_close_with_keys_headers_and_timestamps() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-produce").into();
        create_topic(&client, &topic, 3).await;
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let mut futures = Vec::new();
        for i in 0..300i64 {
            let record = ProducerRecord::new(Arc::clone(&topic), format!("value-{i}"))
                .with_partition((i % 3) as i32)
                .with_key(format!("key-{i}"))
                .with_header("n", i.to_string())
                .with_header("dup", "a")
                .with_header("dup", "b")
                .with_timestamp(1_700_000_000_000 + i);
            futures.push(producer.send(record).await.expect("send"));
        }
        producer.flush().await.expect("flush");
        let mut next = [0i64; 3];
        for (i, f) in futures.into_iter().enumerate() {
            let meta = f.await.expect("delivered");
            assert_eq!(meta.partition, (i % 3) as i32);
            assert_eq!(meta.offset, next[i % 3], "offsets follow send order");
            assert_eq!(meta.timestamp, 1_700_000_000_000 + i as i64);
            next[i % 3] += 1;
        }
        // A keyless, timestamp-less record after flush; then close.
        let last = producer
            .send(ProducerRecord::new(Arc::clone(&topic), "last").with_partition(0))
            .await
            .expect("send");
        producer.close().await.expect("close");
        let meta = last.await.expect("delivered by close");
        assert_eq!(meta.offset, 100);
        let stored = read_partition(&client, &topic, 0).await;
        assert_eq!(stored.len(), 101);
        for (j, r) in stored.iter().take(100).enumerate() {
            let i = j * 3;
            assert_eq!(r.offset, j as i64);
            assert_eq!(r.key, Some(Bytes::from(format!("key-{i}"))));
            assert_eq!(r.value, Some(Bytes::from(format!("value-{i}"))));
            assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
            assert_eq!(
                r.headers,
                vec![
                    Header::new("n", i.to_string()),
                    Header::new("dup", "a"),
                    Header::new("dup", "b")
                ]
            );
            assert!(r.producer_id >= 0, "idempotent by default");
            assert_eq!(r.sequence, j as i32, "sequence numbers from 0");
        }
        assert_eq!(stored[100].key, None);
        assert!(stored[100].timestamp > 1_700_000_000_000);
        // Keyed records without a partition land where murmur2 puts them.
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let a = producer
            .send(ProducerRecord::new(Arc::clone(&topic), "x").with_key("hello"))
            .await
            .expect("send");
        let b = producer
            .send(ProducerRecord::new(Arc::clone(&topic), "y").with_key("hello"))
            .await
            .expect("send");
        producer.close().await.expect("close");
        let (a, b) = (a.await.expect("a"), b.await.expect("b"));
        assert_eq!(a.partition, b.partition);
        assert_eq!(b.offset, a.offset + 1);
    });
}

#[test]
fn every_codec_round_trips() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-codecs").into();
        create_topic(&client, &topic, 5).await;
        let codecs = [
            (Compression::None, None),
            (Compression::Gzip, Some(9)),
            (Compression::Snappy, None),
            (Compression::Lz4, Some(12)),
            (Compression::Zstd, Some(5)),
        ];
        for (p, (codec, level)) in codecs.into_iter().enumerate() {
            let mut cfg = config(&addr);
            cfg.producer.compression = codec;
            cfg.producer.compression_level = level;
            let producing = Client::connect(cfg).await.expect("connect");
            let producer = AsyncProducer::new(producing).await.expect("producer");
            let mut futures = Vec::new();
            for i in 0..200 {
                let value = format!("{codec} record {i} {}", "compressible ".repeat(10));
                futures.push(
                    producer
                        .send(
                            ProducerRecord::new(Arc::clone(&topic), value).with_partition(p as i32),
                        )
                        .await
                        .expect("send"),
                );
            }
            producer.close().await.expect("close");
            for (i, f) in futures.into_iter().enumerate() {
                assert_eq!(f.await.expect("delivered").offset, i as i64, "{codec}");
            }
            let stored = read_partition(&client, &topic, p as i32).await;
            assert_eq!(stored.len(), 200, "{codec}");
            let v = stored[199].value.clone().unwrap_or_default();
            assert!(
                v.starts_with(format!("{codec} record 199").as_bytes()),
                "{codec}"
            );
        }
    });
}

#[test]
fn acks_none_leader_and_all() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-acks").into();
        create_topic(&client, &topic, 3).await;
        for (p, acks) in [Acks::None, Acks::Leader, Acks::All]
            .into_iter()
            .enumerate()
        {
            let mut cfg = config(&addr);
            cfg.producer.acks = acks;
            cfg.producer.idempotence = acks == Acks::All;
            let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
                .await
                .expect("producer");
            let mut futures = Vec::new();
            for i in 0..50 {
                let r = ProducerRecord::new(Arc::clone(&topic), format!("{i}"))
                    .with_partition(p as i32);
                futures.push(producer.send(r).await.expect("send"));
            }
            producer.close().await.expect("close");
            for (i, f) in futures.into_iter().enumerate() {
                let meta = f.await.expect("delivered");
                let want = if acks == Acks::None { -1 } else { i as i64 };
                assert_eq!(meta.offset, want, "acks={acks}");
            }
            let stored = read_partition(&client, &topic, p as i32).await;
            assert_eq!(stored.len(), 50, "acks={acks}");
            let idempotent = stored.iter().all(|r| r.producer_id >= 0);
            assert_eq!(idempotent, acks == Acks::All);
        }
    });
}

/// Sends `n` records to `partition`, each `send` free to wait for room,
/// closes the producer and checks that every record landed, in order.
async fn send_waiting(
    client: &Client,
    producer: AsyncProducer,
    topic: &Arc<str>,
    partition: i32,
    n: usize,
    value: impl Fn(usize) -> String,
) {
    let mut futures = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(Arc::clone(topic), value(i)).with_partition(partition);
        futures.push(producer.send(r).await.expect("send waits, never fails"));
    }
    producer.close().await.expect("close");
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.expect("delivered").offset, i as i64);
    }
    assert_eq!(read_partition(client, topic, partition).await.len(), n);
}

/// Sends `value` to `partition` until `send` refuses one (at most `most`
/// accepted), closes the producer, checks that every accepted record
/// landed, and returns how many were accepted and the refusal.
async fn send_until_refused(
    client: &Client,
    producer: AsyncProducer,
    topic: &Arc<str>,
    partition: i32,
    value: &[u8],
    most: usize,
) -> (usize, klamm::Error) {
    let mut accepted = Vec::new();
    let err = loop {
        let r = ProducerRecord::new(Arc::clone(topic), value.to_vec()).with_partition(partition);
        match producer.send(r).await {
            Ok(f) => accepted.push(f),
            Err(e) => break e,
        }
        assert!(accepted.len() <= most, "more than {most} records accepted");
    };
    producer.close().await.expect("close");
    let n = accepted.len();
    for f in accepted {
        f.await.expect("accepted records are delivered");
    }
    assert_eq!(read_partition(client, topic, partition).await.len(), n);
    (n, err)
}

async fn producer_with(addr: &str, set: impl FnOnce(&mut klamm::Config)) -> AsyncProducer {
    let mut cfg = config(addr);
    set(&mut cfg);
    AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
        .await
        .expect("producer")
}

#[test]
fn a_full_buffer_waits_by_default_and_fails_fast_when_configured() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-backpressure").into();
        create_topic(&client, &topic, 2).await;

        // 4 KiB of buffer for 1000 records of 300 bytes: send waits.
        let producer = producer_with(&addr, |c| {
            c.producer.buffer_memory = 4096;
            c.producer.batch_size = 1024;
        })
        .await;
        send_waiting(&client, producer, &topic, 0, 1000, |i| format!("{i:0>300}")).await;

        // Fail fast: with a long linger nothing drains, the buffer fills.
        let producer = producer_with(&addr, |c| {
            c.producer.buffer_memory = 4096;
            c.producer.batch_size = 4096;
            c.producer.linger = Duration::from_secs(5);
            c.producer.block_on_buffer_full = false;
        })
        .await;
        let (accepted, err) =
            send_until_refused(&client, producer, &topic, 1, &[b'x'; 300], 99).await;
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("buffer.memory"), "{err}");
        assert!(accepted > 0);
    });
}

/// `max.buffered.records` bounds the records held whatever their size: 10
/// records of 1 byte fill a bound of 10 (buffer.memory, 32 MiB, is far from
/// full), so the 11th fails fast naming the key; with waiting, 200 sends
/// through a bound of 3 all land, in order.
#[test]
fn max_buffered_records_bounds_records_by_count() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-record-bound").into();
        create_topic(&client, &topic, 2).await;

        let producer = producer_with(&addr, |c| {
            c.producer.max_buffered_records = 10;
            c.producer.linger = Duration::from_secs(5);
            c.producer.block_on_buffer_full = false;
        })
        .await;
        let (accepted, err) = send_until_refused(&client, producer, &topic, 0, b"x", 10).await;
        assert_eq!(accepted, 10);
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("max.buffered.records"), "{err}");
        assert!(!err.to_string().contains("buffer.memory"), "{err}");

        let producer = producer_with(&addr, |c| c.producer.max_buffered_records = 3).await;
        send_waiting(&client, producer, &topic, 1, 200, |i| format!("{i}")).await;
    });
}

#[test]
fn records_over_max_request_size_fail_at_send() {
    support::run_within(30, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut cfg = config(&addr);
        cfg.producer.max_request_size = 10_000;
        cfg.producer.batch_size = 10_000;
        let client = Client::connect(cfg).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-too-large").into();
        create_topic(&client, &topic, 1).await;
        let producer = AsyncProducer::new(client).await.expect("producer");
        let err = producer
            .send(ProducerRecord::new(Arc::clone(&topic), vec![0u8; 20_000]))
            .await
            .expect_err("too large");
        assert_eq!(err.config_key(), Some("max.request.size"));
        let err = producer
            .send(ProducerRecord::new(Arc::clone(&topic), "x").with_partition(7))
            .await
            .expect_err("no such partition");
        assert_eq!(err.kind(), ErrorKind::Broker);
        producer.close().await.expect("close");
    });
}

#[test]
fn sync_producer_sends_one_and_many() {
    let Some(addr) = support::broker() else {
        return;
    };
    let topic: Arc<str> = support::unique_topic("klamm-sync").into();
    support::run_within(30, {
        let addr = addr.clone();
        let topic = Arc::clone(&topic);
        async move {
            let client = Client::connect(config(&addr)).await.expect("connect");
            create_topic(&client, &topic, 2).await;
        }
    });
    let producer = SyncProducer::connect(config(&addr)).expect("sync producer");
    let (p, o) = producer
        .send_message(ProducerRecord::new(Arc::clone(&topic), "one").with_partition(1))
        .expect("send_message");
    assert_eq!((p, o), (1, 0));
    let results = producer.send_messages(vec![
        ProducerRecord::new(Arc::clone(&topic), "a").with_partition(1),
        ProducerRecord::new(Arc::clone(&topic), "b").with_partition(0),
        ProducerRecord::new(Arc::clone(&topic), "c").with_partition(9),
        ProducerRecord::new(Arc::clone(&topic), "d").with_partition(1),
    ]);
    assert_eq!(results[0].as_ref().ok(), Some(&(1, 1)));
    assert_eq!(results[1].as_ref().ok(), Some(&(0, 0)));
    assert_eq!(
        results[2].as_ref().err().map(|e| e.kind()),
        Some(ErrorKind::Broker),
        "a partition the topic lacks fails on its own"
    );
    assert_eq!(results[3].as_ref().ok(), Some(&(1, 2)));
    producer.close().expect("close");
}

#[test]
fn idempotent_produce_survives_connections_cut_after_the_broker_wrote() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let relay = support::relay::Relay::start(addr.clone(), vec![2, 5, 6, 9]).await;
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-cut").into();
        create_topic(&client, &topic, 2).await;

        let mut cfg = config(&relay.addr);
        // Small batches: at least 15 requests, of which four are cut.
        cfg.producer.batch_size = 256;
        cfg.producer.retry_backoff = Duration::from_millis(20);
        let producing = Client::connect(cfg)
            .await
            .expect("connect through the relay");
        let producer = AsyncProducer::new(producing).await.expect("producer");
        let mut futures = Vec::new();
        for i in 0..600 {
            let r =
                ProducerRecord::new(Arc::clone(&topic), format!("{i:05}")).with_partition(i % 2);
            futures.push(producer.send(r).await.expect("send"));
            if i % 40 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let stats = producer.stats();
        producer.close().await.expect("close");
        for f in futures {
            f.await.expect("every record delivered");
        }
        assert_eq!(relay.cuts.load(std::sync::atomic::Ordering::SeqCst), 4);
        assert!(stats.batches_retried >= 4, "{stats:?}");
        for p in 0..2 {
            let stored = read_partition(&client, &topic, p).await;
            let values: Vec<Bytes> = stored
                .iter()
                .map(|r| r.value.clone().unwrap_or_default())
                .collect();
            let want: Vec<Bytes> = (0..600)
                .filter(|i| i % 2 == p as usize)
                .map(|i| Bytes::from(format!("{i:05}")))
                .collect();
            assert_eq!(
                values.len(),
                want.len(),
                "partition {p}: no loss, no duplicates"
            );
            assert!(values == want, "partition {p}: in order");
        }
    });
}
