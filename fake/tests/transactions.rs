//! The transaction coordinator's controls and answers, asked with raw
//! requests: AddPartitionsToTxn v4+ (batched transactions and verify-only),
//! the markers each partition holds, the producer id a transactional id
//! has, and errors injected for single partitions.
mod support;

use std::time::Duration;

use klamm::client::TrafficClass;
use klamm::net::Connection;
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use klamm::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use klamm::protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use klamm::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
    EndTxnRequest, InitProducerIdRequest, OffsetCommitRequest, TxnOffsetCommitRequest,
};
use klamm::{Client, Config};
use klamm_fake::{FakeCluster, Fault, FaultError, TxnMarker};
use support::bounded;

/// A client of `cluster` and a connection to its broker 1.
async fn connect(cluster: &FakeCluster) -> (Client, Connection) {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addresses();
    let client = Client::connect(config).await.unwrap();
    let broker = client.broker(1).unwrap();
    let conn = client
        .connection(&broker, TrafficClass::Other)
        .await
        .unwrap();
    (client, conn)
}

async fn init(conn: &Connection, tid: &str) -> (i64, i16) {
    let resp = conn
        .send(&InitProducerIdRequest {
            transactional_id: Some(tid.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.error_code, 0);
    (resp.producer_id, resp.producer_epoch)
}

fn txn(
    tid: &str,
    (pid, epoch): (i64, i16),
    verify_only: bool,
    partitions: &[i32],
) -> AddPartitionsToTxnTransaction {
    AddPartitionsToTxnTransaction {
        transactional_id: tid.into(),
        producer_id: pid,
        producer_epoch: epoch,
        verify_only,
        topics: vec![AddPartitionsToTxnTopic {
            name: "t".into(),
            partitions: partitions.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Sends AddPartitionsToTxn at `version` (4+) with `transactions`.
async fn add(
    conn: &Connection,
    version: i16,
    transactions: Vec<AddPartitionsToTxnTransaction>,
) -> AddPartitionsToTxnResponse {
    let req = AddPartitionsToTxnRequest {
        transactions,
        ..Default::default()
    };
    conn.send_version(&req, version).await.unwrap()
}

/// Each transaction's (partition, code) pairs, in answer order.
fn codes(resp: &AddPartitionsToTxnResponse) -> Vec<(String, Vec<(i32, ErrorCode)>)> {
    resp.results_by_transaction
        .iter()
        .map(|r| {
            let parts = r
                .topic_results
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| (p.partition_index, ErrorCode(p.partition_error_code)))
                .collect();
            (r.transactional_id.clone(), parts)
        })
        .collect()
}

async fn end(conn: &Connection, tid: &str, (pid, epoch): (i64, i16), commit: bool) {
    let resp = conn
        .send(&EndTxnRequest {
            transactional_id: tid.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ErrorCode(resp.error_code), ErrorCode::NONE);
}

/// AddPartitionsToTxn v4 and v5 carry several transactions, each added to
/// or (verify-only) checked on its own; injected errors reach every
/// partition of the v4 shape; the markers show how each transaction ended
/// and `transactional_producer` what the coordinator holds.
#[tokio::test]
async fn add_partitions_v4_batches_transactions_and_verifies() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 2).start().await.unwrap();
        let (client, conn) = connect(&cluster).await;
        assert_eq!(
            conn.api_versions().broker_range(ApiKey::AddPartitionsToTxn),
            Some((0, 5))
        );
        assert_eq!(cluster.transactional_producer("a"), None);
        let a = init(&conn, "a").await;
        let b = init(&conn, "b").await;
        assert_eq!(cluster.transactional_producer("a"), Some(a));
        assert_ne!(a.0, b.0);

        // One request: a adds t-0, b (with nothing open) only asks.
        let resp = add(
            &conn,
            5,
            vec![txn("a", a, false, &[0]), txn("b", b, true, &[0])],
        )
        .await;
        assert_eq!(resp.error_code, 0);
        assert_eq!(
            codes(&resp),
            [
                ("a".to_string(), vec![(0, ErrorCode::NONE)]),
                ("b".to_string(), vec![(0, ErrorCode::TRANSACTION_ABORTABLE)]),
            ]
        );
        // The same at v4 (Apache Kafka 4.4 answers so there too).
        let resp = add(&conn, 4, vec![txn("b", b, true, &[0])]).await;
        assert_eq!(
            codes(&resp),
            [("b".to_string(), vec![(0, ErrorCode::TRANSACTION_ABORTABLE)])]
        );
        // Verifying adds nothing: t-1 is still not in a's transaction.
        for _ in 0..2 {
            let resp = add(&conn, 5, vec![txn("a", a, true, &[0, 1])]).await;
            assert_eq!(
                codes(&resp),
                [(
                    "a".to_string(),
                    vec![(0, ErrorCode::NONE), (1, ErrorCode::TRANSACTION_ABORTABLE)]
                )]
            );
        }
        end(&conn, "a", a, true).await;
        assert_eq!(
            cluster.markers("t", 0),
            [TxnMarker {
                offset: 0,
                producer_id: a.0,
                producer_epoch: a.1,
                commit: true,
            }]
        );
        assert!(cluster.markers("t", 1).is_empty());
        assert!(cluster.markers("nowhere", 0).is_empty());

        // An injected error: at the top and on every partition, nothing
        // added.
        cluster
            .inject(
                ApiKey::AddPartitionsToTxn,
                None,
                Fault::Error(ErrorCode::NOT_COORDINATOR),
                1,
            )
            .unwrap();
        let resp = add(&conn, 4, vec![txn("a", a, false, &[1])]).await;
        assert_eq!(ErrorCode(resp.error_code), ErrorCode::NOT_COORDINATOR);
        assert_eq!(
            codes(&resp),
            [("a".to_string(), vec![(1, ErrorCode::NOT_COORDINATOR)])]
        );
        let resp = add(&conn, 5, vec![txn("a", a, true, &[1])]).await;
        assert_eq!(
            codes(&resp),
            [("a".to_string(), vec![(1, ErrorCode::TRANSACTION_ABORTABLE)])]
        );

        // A new instance of a: the old epoch is fenced, in a batch too.
        let a2 = init(&conn, "a").await;
        assert_eq!(a2, (a.0, a.1 + 1));
        assert_eq!(cluster.transactional_producer("a"), Some(a2));
        let resp = add(
            &conn,
            5,
            vec![txn("a", a, false, &[1]), txn("b", b, false, &[1])],
        )
        .await;
        assert_eq!(
            codes(&resp),
            [
                ("a".to_string(), vec![(1, ErrorCode::PRODUCER_FENCED)]),
                ("b".to_string(), vec![(1, ErrorCode::NONE)]),
            ]
        );
        end(&conn, "b", b, false).await;
        let resp = add(&conn, 5, vec![txn("a", a2, false, &[1])]).await;
        assert_eq!(
            codes(&resp),
            [("a".to_string(), vec![(1, ErrorCode::NONE)])]
        );
        end(&conn, "a", a2, false).await;
        let ends: Vec<(i64, i16, bool)> = cluster
            .markers("t", 1)
            .iter()
            .map(|m| (m.producer_id, m.producer_epoch, m.commit))
            .collect();
        assert_eq!(ends, [(b.0, b.1, false), (a2.0, a2.1, false)]);
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
        client.close().await;
    })
    .await;
}

fn txn_offsets(
    tid: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    offsets: &[(i32, i64)],
) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest {
        transactional_id: tid.into(),
        group_id: group.into(),
        producer_id: pid,
        producer_epoch: epoch,
        generation_id_or_member_epoch: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "in".into(),
            partitions: offsets
                .iter()
                .map(|&(p, o)| TxnOffsetCommitRequestPartition {
                    partition_index: p,
                    committed_offset: o,
                    committed_leader_epoch: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// (partition, code) of every partition of an offset commit's answer.
async fn commit_txn_offsets(conn: &Connection, req: &TxnOffsetCommitRequest) -> Vec<(i32, i16)> {
    let resp = conn.send(req).await.unwrap();
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.error_code))
        .collect()
}

/// An error injected for one partition fails that partition alone, once;
/// a request refused as a whole leaves it waiting; other APIs refuse it.
#[tokio::test]
async fn errors_injected_for_one_partition_leave_the_others_alone() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .topic("in", 2)
            .record_requests(true)
            .start()
            .await
            .unwrap();
        let (client, conn) = connect(&cluster).await;
        let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        assert_eq!(
            cluster.inject_partition_error(ApiKey::ListOffsets, None, "in", 0, unknown, 1),
            Err(FaultError::NoPartitionErrorAnswer(ApiKey::ListOffsets))
        );
        assert_eq!(
            cluster.inject_partition_error(ApiKey::TxnOffsetCommit, Some(7), "in", 0, unknown, 1),
            Err(FaultError::UnknownBroker(7))
        );

        // TxnOffsetCommit: in-1 fails, in-0 is taken.
        let p = init(&conn, "c").await;
        let add = conn
            .send(&AddOffsetsToTxnRequest {
                transactional_id: "c".into(),
                producer_id: p.0,
                producer_epoch: p.1,
                group_id: "g".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(add.error_code, 0);
        cluster
            .inject_partition_error(ApiKey::TxnOffsetCommit, Some(1), "in", 1, unknown, 1)
            .unwrap();
        // Refused as a whole (an unknown producer id): the error waits.
        let wrong = txn_offsets("c", (p.0 + 100, p.1), "g", &[(0, 5), (1, 6)]);
        let code = ErrorCode::INVALID_PRODUCER_ID_MAPPING.code();
        assert_eq!(
            commit_txn_offsets(&conn, &wrong).await,
            [(0, code), (1, code)]
        );
        let both = txn_offsets("c", p, "g", &[(0, 5), (1, 6)]);
        assert_eq!(
            commit_txn_offsets(&conn, &both).await,
            [(0, 0), (1, unknown.code())]
        );
        // Used up: the retry of in-1 alone is taken.
        let again = txn_offsets("c", p, "g", &[(1, 6)]);
        assert_eq!(commit_txn_offsets(&conn, &again).await, [(1, 0)]);
        end(&conn, "c", p, true).await;
        assert_eq!(cluster.committed("g", "in", 0), Some(5));
        assert_eq!(cluster.committed("g", "in", 1), Some(6));

        // OffsetCommit: in-0 fails twice, in-1 is stored.
        cluster
            .inject_partition_error(ApiKey::OffsetCommit, None, "in", 0, unknown, 2)
            .unwrap();
        let commit = |o: i64| OffsetCommitRequest {
            group_id: "plain".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "in".into(),
                partitions: (0..2)
                    .map(|p| OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        for o in [3, 4] {
            let resp = conn.send(&commit(o)).await.unwrap();
            let got: Vec<i16> = resp.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            assert_eq!(got, [unknown.code(), 0]);
        }
        assert_eq!(cluster.committed("plain", "in", 0), None);
        assert_eq!(cluster.committed("plain", "in", 1), Some(4));
        // clear_faults drops them too.
        cluster
            .inject_partition_error(ApiKey::OffsetCommit, None, "in", 0, unknown, 5)
            .unwrap();
        cluster.clear_faults();
        let resp = conn.send(&commit(9)).await.unwrap();
        assert!(resp.topics[0].partitions.iter().all(|p| p.error_code == 0));
        assert_eq!(cluster.committed("plain", "in", 0), Some(9));

        // Produce: the partition's batch is refused once, then the
        // producer's retry is written, once.
        cluster
            .inject_partition_error(
                ApiKey::Produce,
                None,
                "in",
                1,
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                1,
            )
            .unwrap();
        let mut config = Config::default();
        config.net.bootstrap_servers = cluster.addresses();
        config.producer.retry_backoff = Duration::from_millis(10);
        let producer_client = Client::connect(config).await.unwrap();
        let producer = AsyncProducer::new(producer_client.clone()).await.unwrap();
        let d = producer
            .send(ProducerRecord::new("in", "v").with_partition(1))
            .await
            .unwrap();
        assert_eq!(d.await.unwrap().offset, 0);
        producer.close().await.unwrap();
        assert_eq!(cluster.records("in", 1).len(), 1);
        assert_eq!(cluster.requests(None, ApiKey::Produce), 2);
        producer_client.close().await;
        client.close().await;
    })
    .await;
}

/// A transaction open longer than its producer's timeout is aborted by the
/// coordinator: its epoch bumped (the producer is fenced from it) and abort
/// markers written at the new epoch. The control: a transaction with a
/// long timeout, open as long, is left alone.
#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 2).start().await.unwrap();
        let (client, conn) = connect(&cluster).await;
        let init_with = |tid: &'static str, timeout_ms: i32| {
            let conn = &conn;
            async move {
                let r = conn
                    .send(&InitProducerIdRequest {
                        transactional_id: Some(tid.into()),
                        transaction_timeout_ms: timeout_ms,
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(r.error_code, 0);
                (r.producer_id, r.producer_epoch)
            }
        };
        let short = init_with("short", 200).await;
        let long = init_with("long", 60_000).await;
        let added = add(
            &conn,
            5,
            vec![
                txn("short", short, false, &[0]),
                txn("long", long, false, &[1]),
            ],
        )
        .await;
        assert_eq!(added.error_code, 0);
        // Up to a tick (100 ms) past the 200 ms timeout.
        let mut aborted = Vec::new();
        for _ in 0..100 {
            aborted = cluster.markers("t", 0);
            if !aborted.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            aborted,
            [TxnMarker {
                offset: 0,
                producer_id: short.0,
                producer_epoch: short.1 + 1,
                commit: false,
            }]
        );
        assert_eq!(
            cluster.transactional_producer("short"),
            Some((short.0, short.1 + 1))
        );
        let fenced = conn
            .send(&EndTxnRequest {
                transactional_id: "short".into(),
                producer_id: short.0,
                producer_epoch: short.1,
                committed: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ErrorCode(fenced.error_code), ErrorCode::PRODUCER_FENCED);
        // The control: the long one is still open and commits.
        assert!(cluster.markers("t", 1).is_empty());
        end(&conn, "long", long, true).await;
        assert_eq!(cluster.markers("t", 1).len(), 1);
        assert!(cluster.markers("t", 1)[0].commit);
        client.close().await;
    })
    .await;
}
