//! The idempotent producer on librdkafka's mock cluster
//! (`scripts/mock-cluster`): leaders move, Produce requests fail with
//! retriable errors, connections drop and a broker goes down, all while
//! records stream; afterwards every partition is read back with Fetch and
//! must hold each record exactly once, in send order.
//!
//! librdkafka 2.16's mock does not check producer sequence numbers (a raw
//! Produce with sequence 10 after 0 is written, and so is a repeated 0), so
//! it neither drops duplicates nor refuses a batch that overtook a failed
//! one. With several requests in flight, a batch could then be written
//! ahead of an older one that is being retried; no client can prevent that
//! without the broker's check. These tests therefore keep one request in
//! flight per broker; duplicates across retries and pipelined order are
//! checked against Apache Kafka (`tests/producer.rs`, `tests/cluster_faults.rs`) and
//! the scripted fake broker (`src/producer/tests/`).
//!
//! The mock's state is cluster-wide, so the tests take turns through one
//! lock, and each uses its own topic.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use klamm::protocol::messages::ApiKey;
use klamm::{Client, Config};
use support::mock::MockCluster;
use support::read::read_partition;

static MOCK: Mutex<()> = Mutex::new(());

const PARTITIONS: i32 = 3;

fn setup() -> Option<(MockCluster, std::sync::MutexGuard<'static, ()>)> {
    let guard = MOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mock = support::mock::mock()?;
    mock.clear_errors(ApiKey::Produce.code());
    for b in 1..=mock.addrs().len() as i32 {
        mock.up(b);
    }
    Some((mock, guard))
}

fn config(mock: &MockCluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = mock.addrs();
    config.net.client_id = "klamm-mock-producer".into();
    config.net.request_timeout = Duration::from_secs(2);
    config.producer.request_timeout = Duration::from_secs(2);
    config.producer.delivery_timeout = Duration::from_secs(40);
    config.producer.retry_backoff = Duration::from_millis(50);
    config.producer.linger = Duration::from_millis(2);
    config.producer.batch_size = 2048;
    // See the module comment: the mock does not enforce sequences.
    config.producer.max_in_flight_requests_per_connection = 1;
    config
}

fn value(p: i32, i: usize) -> Bytes {
    Bytes::from(format!("p{p}-{i:06}"))
}

/// Sends `n` numbered records to each partition, calling `disturb` with
/// the round number every `every` rounds, then pausing as long as it says
/// while the sender works through what is buffered.
async fn stream(
    producer: &AsyncProducer,
    topic: &Arc<str>,
    n: usize,
    every: usize,
    mut disturb: impl FnMut(usize) -> Duration,
) -> Vec<DeliveryFuture> {
    let mut futures = Vec::new();
    for i in 0..n {
        if i > 0 && i % every == 0 {
            let pause = disturb(i / every);
            tokio::time::sleep(pause).await;
        }
        for p in 0..PARTITIONS {
            let r = ProducerRecord::new(Arc::clone(topic), value(p, i)).with_partition(p);
            futures.push(producer.send(r).await.expect("send"));
        }
    }
    futures
}

/// Every future succeeded, and each partition holds its records exactly
/// once, in order, written by one producer id.
async fn verify(client: &Client, topic: &str, n: usize, futures: Vec<DeliveryFuture>) {
    verify_with(client, topic, n, futures, true).await
}

/// Like [`verify`]; with `exactly_once` false, a record may be stored
/// twice (the mock does not drop duplicates), but none is missing and
/// first occurrences are in send order.
async fn verify_with(
    client: &Client,
    topic: &str,
    n: usize,
    futures: Vec<DeliveryFuture>,
    exactly_once: bool,
) {
    let mut last = [-1i64; PARTITIONS as usize];
    for f in futures {
        let meta = f.await.expect("every record delivered");
        let p = meta.partition as usize;
        assert!(
            meta.offset > last[p],
            "offsets increase in send order: {meta:?} after {}",
            last[p]
        );
        last[p] = meta.offset;
    }
    for p in 0..PARTITIONS {
        let stored = read_partition(client, topic, p).await;
        let mut values: Vec<Bytes> = stored
            .iter()
            .map(|r| r.value.clone().unwrap_or_default())
            .collect();
        if !exactly_once {
            let mut seen = std::collections::HashSet::new();
            values.retain(|v| seen.insert(v.clone()));
        }
        let want: Vec<Bytes> = (0..n).map(|i| value(p, i)).collect();
        assert_eq!(
            values.len(),
            want.len(),
            "partition {p}: nothing lost, nothing doubled"
        );
        assert!(values == want, "partition {p}: records in send order");
        assert!(stored.iter().all(|r| r.producer_id >= 0));
    }
}

#[test]
fn idempotent_producer_through_leader_moves() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    support::run_within(60, async {
        let topic: Arc<str> = support::unique_topic("klamm-mock-moves").into();
        mock.create_topic(&topic, PARTITIONS, brokers.min(3));
        let client = Client::connect(config(&mock)).await.expect("bootstrap");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let futures = stream(&producer, &topic, 1500, 250, |round| {
            for p in 0..PARTITIONS {
                let leader = (p + round as i32) % brokers + 1;
                mock.set_leader(&topic, p, leader);
            }
            Duration::from_millis(100)
        })
        .await;
        let stats = producer.stats();
        producer.close().await.expect("close");
        assert!(
            stats.batches_retried >= 1,
            "old leaders refused batches: {stats:?}"
        );
        verify(&client, &topic, 1500, futures).await;
    });
}

#[test]
fn idempotent_producer_through_injected_errors_and_disconnects() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    support::run_within(60, async {
        let topic: Arc<str> = support::unique_topic("klamm-mock-errors").into();
        mock.create_topic(&topic, PARTITIONS, brokers.min(3));
        let client = Client::connect(config(&mock)).await.expect("bootstrap");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        // NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS,
        // and dropped connections (librdkafka's `_TRANSPORT`).
        let rounds = [
            "6 6",
            "7",
            "_TRANSPORT",
            "19 7 6",
            "_TRANSPORT _TRANSPORT",
            "6 _TRANSPORT 7",
        ];
        let futures = stream(&producer, &topic, 1400, 200, |round| {
            if let Some(codes) = rounds.get(round - 1) {
                mock.command(&format!("errors {} {codes}", ApiKey::Produce.code()));
            }
            Duration::from_millis(100)
        })
        .await;
        let stats = producer.stats();
        producer.close().await.expect("close");
        // Injected failures sent batches back for retries.
        assert!(stats.batches_retried >= 6, "{stats:?}");
        assert_eq!(stats.batches_failed, 0);
        mock.clear_errors(ApiKey::Produce.code());
        verify(&client, &topic, 1400, futures).await;
    });
}

#[test]
fn idempotent_producer_while_a_leader_goes_down_and_comes_back() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    support::run_within(60, async {
        let topic: Arc<str> = support::unique_topic("klamm-mock-down").into();
        mock.create_topic(&topic, PARTITIONS, brokers.min(3));
        for p in 0..PARTITIONS {
            mock.set_leader(&topic, p, 1);
        }
        let client = Client::connect(config(&mock)).await.expect("bootstrap");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        // Down for 3 s, longer than the 2 s request timeout.
        let futures = stream(&producer, &topic, 900, 300, |round| match round {
            1 => {
                mock.down(1);
                Duration::from_secs(3)
            }
            _ => {
                mock.up(1);
                Duration::ZERO
            }
        })
        .await;
        mock.up(1);
        // Batches in flight when the broker went down are retried; the
        // ones queued meanwhile wait for a new connection. The mock may
        // have written a batch whose answer the drop lost, and it does not
        // drop the retry as a duplicate (Apache Kafka does: see
        // tests/producer.rs), so only loss and order are checked here.
        producer.close().await.expect("close");
        verify_with(&client, &topic, 900, futures, false).await;
    });
}

#[test]
fn close_reports_each_record_the_broker_refused() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    support::run_within(60, async {
        let topic: Arc<str> = support::unique_topic("klamm-mock-refused").into();
        mock.create_topic(&topic, 1, brokers.min(3));
        let mut cfg = config(&mock);
        // The refused records go out together, as one batch, at close.
        cfg.producer.linger = Duration::from_secs(5);
        let client = Client::connect(cfg).await.expect("bootstrap");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let first = producer
            .send(ProducerRecord::new(Arc::clone(&topic), "first").with_partition(0))
            .await
            .expect("send");
        producer.flush().await.expect("flush");
        assert_eq!(first.await.expect("written").offset, 0);
        // The next Produce request is refused with INVALID_RECORD (87),
        // which no retry can fix (MESSAGE_TOO_LARGE would now be split).
        mock.push_errors(ApiKey::Produce.code(), &[87]);
        let mut refused = Vec::new();
        for i in 0..5 {
            let r = ProducerRecord::new(Arc::clone(&topic), format!("r{i}")).with_partition(0);
            refused.push(producer.send(r).await.expect("queued"));
        }
        producer.close().await.expect("close");
        for f in refused {
            let err = f
                .try_result()
                .expect("resolved by close")
                .expect_err("refused");
            assert_eq!(err.kafka_code().map(|c| c.code()), Some(87), "{err}");
        }
        let stored = read_partition(&client, &topic, 0).await;
        assert_eq!(stored.len(), 1, "only the first record was written");
    });
}
