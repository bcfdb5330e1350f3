//! `AsyncProducer::send_all` against klamm-fake's cluster: one outcome
//! per record in input order, across partitions, with the failures of one
//! partition reported for exactly its records.

use bytes::Bytes;

use super::cluster::{ApiKey, cluster, code, config, produce_requests, producer, values};
use crate::ErrorKind;
use crate::producer::ProducerRecord;
use crate::protocol::error_codes::ErrorCode;
use crate::test_support::bounded;

/// `n` records with values `v0`, `v1`, ..., record `i` to partition
/// `i % partitions`.
fn spread(n: usize, partitions: i32) -> Vec<ProducerRecord> {
    (0..n)
        .map(|i| ProducerRecord::new("t", format!("v{i}")).with_partition(i as i32 % partitions))
        .collect()
}

/// The values of `spread(n, partitions)` that went to `partition`, in order.
fn values_of(n: usize, partitions: i32, partition: i32) -> Vec<Bytes> {
    (0..n)
        .filter(|i| *i as i32 % partitions == partition)
        .map(|i| Bytes::from(format!("v{i}")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn send_all_returns_one_outcome_per_record_in_input_order() {
    bounded(async {
        let fake = cluster(1, 3).await;
        let p = producer(config(&fake)).await;
        let futures = p.send_all(spread(30, 3)).await.expect("all queued");
        assert_eq!(futures.len(), 30, "one outcome per record");
        p.flush().await.expect("flush");
        for (i, f) in futures.into_iter().enumerate() {
            let meta = f.await.expect("delivered");
            // Record i is the (i / 3)th record of partition i % 3: its
            // future, at place i, says so.
            assert_eq!(
                (meta.partition, meta.offset),
                (i as i32 % 3, (i / 3) as i64),
                "the outcome at place {i}"
            );
        }
        for partition in 0..3 {
            assert_eq!(values(&fake, partition), values_of(30, 3, partition));
        }
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn send_all_reports_a_partitions_failure_for_exactly_its_records() {
    bounded(async {
        let fake = cluster(1, 3).await;
        let p = producer(config(&fake)).await;
        // Partition 1's batch is refused, not retriably; partitions 0 and
        // 2, in the same Produce request, are written.
        fake.inject_partition_error(
            ApiKey::Produce,
            None,
            "t",
            1,
            code(ErrorCode::INVALID_RECORD),
            1,
        )
        .expect("Produce takes partition errors");
        let futures = p.send_all(spread(9, 3)).await.expect("all queued");
        assert_eq!(futures.len(), 9);
        p.flush().await.expect("flush");
        for (i, f) in futures.into_iter().enumerate() {
            let outcome = f.await;
            if i % 3 == 1 {
                let err = outcome.expect_err("partition 1's records fail");
                assert_eq!(err.kafka_code(), Some(ErrorCode::INVALID_RECORD), "{err}");
            } else {
                let meta = outcome.expect("the other partitions' records are written");
                assert_eq!(
                    (meta.partition, meta.offset),
                    (i as i32 % 3, (i / 3) as i64)
                );
            }
        }
        assert_eq!(values(&fake, 0), values_of(9, 3, 0));
        assert!(
            values(&fake, 1).is_empty(),
            "nothing written to partition 1"
        );
        assert_eq!(values(&fake, 2), values_of(9, 3, 2));
        assert_eq!(p.stats().batches_failed, 1, "{:?}", p.stats());
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn send_all_of_no_records_returns_no_outcomes_and_sends_nothing() {
    bounded(async {
        let fake = cluster(1, 3).await;
        let p = producer(config(&fake)).await;
        let futures = p.send_all(Vec::new()).await.expect("nothing to queue");
        assert!(futures.is_empty());
        p.flush().await.expect("flush");
        p.close().await.expect("close");
        assert_eq!(produce_requests(&fake), 0);
    })
    .await;
}

/// As documented: a record that cannot be queued ends the call with its
/// error, and the records after it are not queued (those before it are,
/// and are written, though the caller no longer holds their futures).
#[tokio::test(start_paused = true)]
async fn send_all_stops_at_the_first_record_that_cannot_be_queued() {
    bounded(async {
        let fake = cluster(1, 3).await;
        let p = producer(config(&fake)).await;
        let records = vec![
            ProducerRecord::new("t", "before").with_partition(0),
            ProducerRecord::new("t", "nowhere").with_partition(7),
            ProducerRecord::new("t", "after").with_partition(0),
        ];
        let err = p
            .send_all(records)
            .await
            .expect_err("partition 7 does not exist");
        assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
        p.flush().await.expect("flush");
        assert_eq!(values(&fake, 0), [Bytes::from("before")]);
        p.close().await.expect("close");
    })
    .await;
}
