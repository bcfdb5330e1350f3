//! The producer against klamm-fake's cluster (real TCP on loopback): a
//! cluster with the topic `t`, a producer for it, and what the brokers
//! kept, read through the fake's controls.
//!
//! klamm-fake links a build of klamm of its own, so what is handed to it
//! (API keys, error codes) is named through `klamm_fake::klamm`, while the
//! code under test uses `crate::`; only plain data crosses between them.

use std::time::Duration;

use bytes::Bytes;
use klamm_fake::klamm::protocol::error_codes::ErrorCode as FakeCode;
pub(crate) use klamm_fake::klamm::protocol::messages::{ApiKey, RequestBody};
pub(crate) use klamm_fake::{FakeCluster, Fault, ProducedBatch};

use crate::Client;
use crate::config::Config;
use crate::producer::AsyncProducer;
use crate::protocol::error_codes::ErrorCode;

/// The fake's name for one of our error codes.
pub(crate) fn code(c: ErrorCode) -> FakeCode {
    FakeCode(c.code())
}

/// A cluster of `brokers` with the topic `t` of `partitions` partitions
/// (partition `i` led by broker `1 + i % brokers`), keeping every request
/// and every batch it is sent.
pub(crate) async fn cluster(brokers: usize, partitions: i32) -> FakeCluster {
    let cluster = FakeCluster::builder()
        .brokers(brokers)
        .topic("t", partitions)
        .record_requests(true)
        .start()
        .await
        .expect("the fake cluster starts");
    for p in 0..partitions {
        assert_eq!(
            cluster.leader("t", p),
            Some(1 + p % brokers as i32),
            "partition {p}'s leader"
        );
    }
    cluster
}

/// A producer's settings for `cluster`, bootstrapping from broker 1: 1 ms
/// linger, 10 ms retry backoff, 200-byte batches.
pub(crate) fn config(cluster: &FakeCluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![cluster.addresses()[0].clone()];
    config.producer.linger = Duration::from_millis(1);
    config.producer.retry_backoff = Duration::from_millis(10);
    config.producer.batch_size = 200;
    config
}

/// A producer on a client connected with `config`.
pub(crate) async fn producer(config: Config) -> AsyncProducer {
    let client = Client::connect(config).await.expect("connect");
    AsyncProducer::new(client).await.expect("producer")
}

/// The values a partition of `t` holds, in offset order.
pub(crate) fn values(cluster: &FakeCluster, partition: i32) -> Vec<Bytes> {
    cluster
        .records("t", partition)
        .into_iter()
        .map(|r| r.value.unwrap_or_default())
        .collect()
}

/// The batches written to a partition of `t` (retries recognised left
/// out), in offset order, as they were sent.
pub(crate) fn written(cluster: &FakeCluster, partition: i32) -> Vec<ProducedBatch> {
    let mut w: Vec<ProducedBatch> = cluster
        .produced("t", partition)
        .into_iter()
        .filter(|b| b.error == FakeCode::NONE && !b.duplicate)
        .collect();
    w.sort_by_key(|b| b.base_offset);
    w
}

/// The producer id, epoch and last sequence of the last idempotent batch
/// written to a partition of `t`.
pub(crate) fn last_writer(cluster: &FakeCluster, partition: i32) -> Option<(i64, i16, i32)> {
    written(cluster, partition)
        .into_iter()
        .rev()
        .find(|b| b.producer_id >= 0)
        .map(|b| {
            let last = b.base_sequence + b.records - 1;
            (b.producer_id, b.producer_epoch, last)
        })
}

/// The producer id and epoch every InitProducerId request named, in order.
pub(crate) fn init_requests(cluster: &FakeCluster) -> Vec<(i64, i16)> {
    cluster
        .history()
        .into_iter()
        .filter_map(|r| match r.body {
            RequestBody::InitProducerId(r) => Some((r.producer_id, r.producer_epoch)),
            _ => None,
        })
        .collect()
}

/// Produce requests the brokers were sent (answered or not).
pub(crate) fn produce_requests(cluster: &FakeCluster) -> u64 {
    cluster.requests(None, ApiKey::Produce)
}
