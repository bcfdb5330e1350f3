//! Batches the broker refuses as too large: split, sent again in order
//! with their sequences, down to a lone record that fails on its own;
//! against klamm-fake's cluster with a `max.message.bytes` of 300.

use std::time::Duration;

use bytes::Bytes;

use super::cluster::{
    ApiKey, FakeCluster, Fault, ProducedBatch, RequestBody, code, produce_requests, values, written,
};
use crate::config::Config;
use crate::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use crate::protocol::compression::Compression;
use crate::protocol::error_codes::ErrorCode;
use crate::test_support::eventually;
use crate::{Client, ErrorKind};

/// The fake's `max.message.bytes`.
const LIMIT: usize = 300;

/// A cluster of one broker with the topic `t`, `max.message.bytes` at
/// `limit` (Kafka's default without one), keeping every batch it is sent.
async fn cluster(partitions: i32, limit: Option<usize>) -> FakeCluster {
    let mut builder = FakeCluster::builder()
        .topic("t", partitions)
        .record_requests(true);
    if let Some(l) = limit {
        builder = builder.max_message_bytes(l);
    }
    builder.start().await.expect("the fake cluster starts")
}

/// Waits until the cluster was sent `n` Produce requests.
async fn wait_received(fake: &FakeCluster, n: u64) {
    eventually("the Produce requests arrived", || {
        produce_requests(fake) >= n
    })
    .await;
}

fn config(fake: &FakeCluster, batch_size: u32) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = fake.addresses();
    config.producer.linger = Duration::from_millis(5);
    config.producer.retry_backoff = Duration::from_millis(10);
    config.producer.batch_size = batch_size;
    config
}

async fn producer(config: Config) -> AsyncProducer {
    let client = Client::connect(config).await.expect("connect");
    AsyncProducer::new(client).await.expect("producer")
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("finished in time")
}

/// Record `i`'s value: its number and hex that compresses poorly, 20
/// bytes.
fn value(i: usize) -> Bytes {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = format!("{i:05}");
    while v.len() < 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(char::from(b"0123456789abcdef"[(x % 16) as usize]));
    }
    Bytes::from(v)
}

async fn send(p: &AsyncProducer, values: impl IntoIterator<Item = Bytes>) -> Vec<DeliveryFuture> {
    let mut out = Vec::new();
    for v in values {
        let r = ProducerRecord::new("t", v).with_partition(0);
        out.push(p.send(r).await.expect("send"));
    }
    out
}

async fn offsets(futures: Vec<DeliveryFuture>) -> Vec<i64> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await.expect("delivered").offset);
    }
    out
}

/// The written batches follow each other in sequence and offset, all
/// under the first producer id and epoch: no gap, no overlap.
fn assert_contiguous(written: &[ProducedBatch]) {
    let (pid, epoch) = (written[0].producer_id, written[0].producer_epoch);
    let mut next = (0, 0);
    for b in written {
        assert_eq!((b.producer_id, b.producer_epoch), (pid, epoch), "{b:?}");
        assert_eq!((b.base_sequence, b.base_offset), next, "{written:#?}");
        next = (
            b.base_sequence + b.records,
            b.base_offset + i64::from(b.records),
        );
    }
}

/// The batches a partition of `t` refused with `error`, in the order sent.
fn refused(fake: &FakeCluster, partition: i32, error: ErrorCode) -> Vec<ProducedBatch> {
    fake.produced("t", partition)
        .into_iter()
        .filter(|b| b.error == code(error))
        .collect()
}

#[tokio::test]
async fn an_oversize_batch_is_split_until_each_piece_fits_and_every_record_lands_once_in_order() {
    bounded(async {
        for codec in [Compression::None, Compression::Zstd] {
            for limit in [None, Some(LIMIT)] {
                let fake = cluster(1, limit).await;
                let mut cfg = config(&fake, 4000);
                cfg.producer.compression = codec;
                let p = producer(cfg).await;
                let futures = send(&p, (0..400).map(value)).await;
                p.flush().await.expect("flush");
                assert_eq!(
                    offsets(futures).await,
                    (0..400).collect::<Vec<i64>>(),
                    "{codec:?}"
                );
                assert_eq!(values(&fake, 0), (0..400).map(value).collect::<Vec<_>>());
                let written = written(&fake, 0);
                assert_contiguous(&written);
                assert!(
                    written.iter().all(|b| b.compression.code() == codec.code()),
                    "{codec:?}"
                );
                let largest = written.iter().map(|b| b.size).max().unwrap_or(0);
                let stats = p.stats();
                assert_eq!(stats.batches_failed, 0);
                assert_eq!(stats.producer_id_requests, 1, "no epoch bump");
                match limit {
                    // Control: the batches are larger than the limit.
                    None => {
                        assert_eq!(stats.batches_split, 0);
                        assert!(largest > LIMIT * 4, "{codec:?}: largest batch {largest}");
                    }
                    Some(l) => {
                        assert!(largest <= l, "{codec:?}: a batch of {largest} was written");
                        let refused = refused(&fake, 0, ErrorCode::MESSAGE_TOO_LARGE).len() as u64;
                        assert!(refused > 0);
                        assert_eq!(stats.batches_split, refused, "each refusal split once");
                        assert!(stats.batches_split >= 4, "{stats:?}: split again and again");
                    }
                }
                p.close().await.expect("close");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_lone_oversize_record_fails_with_message_too_large_and_its_neighbours_are_written() {
    bounded(async {
        let fake = cluster(1, Some(LIMIT)).await;
        let p = producer(config(&fake, 4000)).await;
        let big = Bytes::from(vec![b'x'; LIMIT]);
        let is_too_large = |r: crate::Result<crate::producer::RecordMetadata>| {
            let err = r.expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
            assert!(!err.is_retriable(), "{err}");
            err.kafka_code() == Some(ErrorCode::MESSAGE_TOO_LARGE)
        };
        // Control: a batch of one record is not split; the error surfaces.
        let alone = send(&p, [big.clone()]).await;
        p.flush().await.expect("flush");
        for f in alone {
            assert!(is_too_large(f.await));
        }
        assert_eq!(p.stats().batches_split, 0);
        // Among neighbours: split down to the record, which fails alone.
        let neighbours: Vec<Bytes> = (0..10)
            .map(value)
            .chain([big.clone()])
            .chain((10..20).map(value))
            .collect();
        let futures = send(&p, neighbours).await;
        p.flush().await.expect("flush");
        let mut written = Vec::new();
        for (i, f) in futures.into_iter().enumerate() {
            let r = f.await;
            if i == 10 {
                assert!(is_too_large(r));
            } else {
                written.push(r.expect("a neighbour is written").offset);
            }
        }
        assert_eq!(
            written,
            (0..20).collect::<Vec<i64>>(),
            "in order, each once"
        );
        assert_eq!(values(&fake, 0), (0..20).map(value).collect::<Vec<_>>());
        let stats = p.stats();
        assert!(stats.batches_split >= 2, "{stats:?}");
        assert_eq!(stats.batches_failed, 2, "the two big records, nothing else");
        let refused: Vec<i32> = refused(&fake, 0, ErrorCode::MESSAGE_TOO_LARGE)
            .iter()
            .map(|b| b.records)
            .collect();
        assert_eq!(
            refused.iter().filter(|&&n| n == 1).count(),
            2,
            "{refused:?}"
        );
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn batches_in_flight_behind_a_refused_one_keep_their_sequences_and_follow_its_pieces() {
    bounded(async {
        let fake = cluster(1, Some(LIMIT)).await;
        let p = producer(config(&fake, 400)).await;
        // The broker learns of the producer: later batches may be in
        // flight together.
        let first = send(&p, (0..5).map(value)).await;
        p.flush().await.expect("flush");
        assert_eq!(offsets(first).await, [0, 1, 2, 3, 4]);
        let before = produce_requests(&fake);
        // A (full, too large) goes out and its answer is held; then B
        // (small) behind it, so both are in flight when the broker answers.
        fake.hold(ApiKey::Produce);
        let futures = send(&p, (5..20).map(value)).await;
        wait_received(&fake, before + 1).await;
        let flushing = tokio::spawn({
            let p = p.clone();
            async move { p.flush().await }
        });
        wait_received(&fake, before + 2).await;
        fake.release(ApiKey::Produce);
        assert_eq!(offsets(futures).await, (5..20).collect::<Vec<i64>>());
        flushing.await.expect("joined").expect("flush");
        let seen = fake.produced("t", 0);
        let refused_a = seen
            .iter()
            .find(|b| b.error == code(ErrorCode::MESSAGE_TOO_LARGE))
            .expect("A refused as too large");
        assert_eq!(refused_a.base_sequence, 5);
        let b_sequence = 5 + refused_a.records;
        // Control: B overtook A's pieces, and the broker refused it.
        let overtook = seen
            .iter()
            .find(|b| b.error == code(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER))
            .expect("B refused as out of order");
        assert_eq!(overtook.base_sequence, b_sequence);
        let written = written(&fake, 0);
        assert_contiguous(&written);
        let b = written.last().expect("B written");
        assert_eq!(
            (b.base_sequence, b.records),
            (b_sequence, overtook.records),
            "B is written last, with its own sequence"
        );
        let pieces = &written[written.len() - 3..written.len() - 1];
        assert_eq!(
            (
                pieces[0].base_sequence,
                pieces[0].records + pieces[1].records
            ),
            (5, refused_a.records),
            "A's halves, with A's sequences"
        );
        let stats = p.stats();
        assert_eq!(stats.producer_id_requests, 1, "no epoch bump");
        assert!(stats.batches_split >= 1);
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_refused_attempt_does_not_count_against_retries() {
    bounded(async {
        // With retries = 1 a piece gets one retry of its own, though the
        // batch it came from was sent once already; a second failure ends
        // it (the control: the budget is enforced).
        for failures in [1, 2] {
            let fake = cluster(1, Some(LIMIT)).await;
            // The first request (the whole batch, refused as too large)
            // passes; the next `failures` fail.
            fake.inject(ApiKey::Produce, None, Fault::Delay(Duration::ZERO), 1)
                .expect("injected");
            let not_leader = Fault::Error(code(ErrorCode::NOT_LEADER_OR_FOLLOWER));
            fake.inject(ApiKey::Produce, None, not_leader, failures)
                .expect("injected");
            let mut cfg = config(&fake, 4000);
            cfg.producer.retries = 1;
            let p = producer(cfg).await;
            let futures = send(&p, (0..14).map(value)).await;
            p.flush().await.expect("flush");
            let mut got = Vec::new();
            for f in futures {
                got.push(f.await.map(|m| m.offset).map_err(|e| e.kafka_code()));
            }
            assert_eq!(fake.faults_left(None), 0, "every fault was hit");
            let stats = p.stats();
            assert_eq!(stats.batches_split, 1, "two halves that fit: {stats:?}");
            if failures == 1 {
                assert_eq!(got, (0..14).map(Ok).collect::<Vec<_>>());
            } else {
                // The first half failed; the second, under a new epoch, is
                // written.
                let lost = Err(Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
                assert_eq!(got[..7], vec![lost; 7], "{got:?}");
                assert_eq!(got[7..], (0..7).map(Ok).collect::<Vec<_>>());
            }
            p.close().await.expect("close");
        }
    })
    .await;
}

#[tokio::test]
async fn a_first_batch_refused_as_too_large_is_not_overtaken_on_a_partition_new_to_the_producer() {
    bounded(async {
        // A broker holding no state for a producer id takes any first
        // sequence from it (as Kafka does): a batch behind a refused first
        // one would be written ahead of its records, were it sent.
        let fake = cluster(2, Some(LIMIT)).await;
        let p = producer(config(&fake, 400)).await;
        fake.hold(ApiKey::Produce);
        // A (full, too large) goes out and its answer is held.
        let mut futures = send(&p, (0..13).map(value)).await;
        wait_received(&fake, 1).await;
        // B (small, behind A) and a record for partition 1, flushed: the
        // next request carries partition 1's batch, and B only if it may
        // overtake A.
        futures.extend(send(&p, (13..15).map(value)).await);
        let other = p
            .send(ProducerRecord::new("t", "other").with_partition(1))
            .await
            .expect("send");
        let flushing = tokio::spawn({
            let p = p.clone();
            async move { p.flush().await }
        });
        wait_received(&fake, 2).await;
        fake.release(ApiKey::Produce);
        assert_eq!(offsets(futures).await, (0..15).collect::<Vec<i64>>());
        assert_eq!(other.await.expect("written").offset, 0);
        flushing.await.expect("joined").expect("flush");
        assert_eq!(values(&fake, 0), (0..15).map(value).collect::<Vec<_>>());
        assert_contiguous(&written(&fake, 0));
        let seen = fake.produced("t", 0);
        assert_eq!(
            seen[0].error,
            code(ErrorCode::MESSAGE_TOO_LARGE),
            "{seen:#?}"
        );
        // B waited for A's answer: the second request carried partition
        // 1's batch and nothing of partition 0's, and partition 0's next
        // batch was A's first piece.
        let requests: Vec<Vec<i32>> = fake
            .history()
            .into_iter()
            .filter_map(|r| match r.body {
                RequestBody::Produce(r) => Some(
                    r.topic_data
                        .iter()
                        .flat_map(|t| t.partition_data.iter().map(|p| p.index))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        assert_eq!(requests[1], [1], "B waited for A's answer: {requests:?}");
        assert_eq!(seen[1].base_sequence, 0, "{seen:#?}");
        assert_eq!(p.stats().producer_id_requests, 1, "no epoch bump");
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_transactional_batch_splits_within_its_transaction() {
    bounded(async {
        let fake = cluster(1, Some(LIMIT)).await;
        let mut cfg = config(&fake, 4000);
        cfg.producer.transactional_id = Some("tx".into());
        let p = producer(cfg).await;
        p.init_transactions().await.expect("init");
        p.begin_transaction().expect("begin");
        let futures = send(&p, (0..100).map(value)).await;
        p.commit_transaction().await.expect("commit");
        assert_eq!(offsets(futures).await, (0..100).collect::<Vec<i64>>());
        assert_eq!(values(&fake, 0), (0..100).map(value).collect::<Vec<_>>());
        assert!(p.stats().batches_split > 0);
        let written = written(&fake, 0);
        assert_contiguous(&written);
        assert!(written.len() > 1 && written.iter().all(|b| b.transactional && b.size <= LIMIT));
        let mut added_to_txn = Vec::new();
        let mut ended_txns = Vec::new();
        for r in fake.history() {
            match r.body {
                RequestBody::AddPartitionsToTxn(r) => added_to_txn.push(
                    r.v3_and_below_topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().copied())
                        .collect::<Vec<i32>>(),
                ),
                RequestBody::EndTxn(r) => ended_txns.push(r.committed),
                _ => {}
            }
        }
        assert_eq!(added_to_txn, [vec![0]], "the partition joined once");
        assert_eq!(ended_txns, [true]);
    })
    .await;
}
