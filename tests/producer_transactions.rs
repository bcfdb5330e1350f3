//! The transactional `AsyncProducer` against Apache Kafka and librdkafka's mock
//! cluster: records sent inside a transaction are committed (data and a
//! COMMIT marker in the partition, visible to a read_committed consumer)
//! or aborted (an ABORT marker; records still buffered fail with
//! `Error::Aborted`); offsets sent to the transaction are committed with
//! it; a second producer with the same transactional id fences the first;
//! a retriable AddPartitionsToTxn error is retried through.
//!
//! What a read_committed consumer sees of aborted transactions on Apache
//! Kafka is tested in `tests/read_committed.rs`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use klamm::config::IsolationLevel;
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::transaction::{ConsumerGroupMetadata, TransactionState};
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::protocol::records::ControlRecordType;
use klamm::{Client, ErrorKind};
use support::txn::{Peer, assert_fenced, committed, fetch, fetch_with_marker, mock_turn};

/// A transactional producer for a fresh transactional id, initialised; its
/// client; the topic (2 partitions) it writes to.
async fn ready(peer: &Peer, linger: Duration) -> (Client, AsyncProducer, Arc<str>) {
    let id = support::unique_topic("klamm-ptxn-id");
    let mut config = peer.config(&id);
    config.producer.linger = linger;
    let client = Client::connect(config).await.expect("client connects");
    let topic: Arc<str> = support::unique_topic("klamm-ptxn").into();
    peer.create_topic(&client, &topic, 2).await;
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    assert_eq!(
        producer.transaction_state(),
        Some(TransactionState::Uninitialized)
    );
    producer
        .init_transactions()
        .await
        .expect("init_transactions");
    assert_eq!(producer.transaction_state(), Some(TransactionState::Ready));
    (client, producer, topic)
}

async fn send(producer: &AsyncProducer, topic: &Arc<str>, p: i32, v: &str) -> DeliveryFuture {
    producer
        .send(ProducerRecord::new(Arc::clone(topic), v.to_string()).with_partition(p))
        .await
        .expect("send")
}

fn values(log: &support::txn::Log) -> Vec<String> {
    log.values.iter().map(|(_, _, v)| v.clone()).collect()
}

/// Commit: every future resolves to its offset, the partitions hold the
/// records as transactional batches and a COMMIT marker, and a
/// read_committed consumer reads them.
async fn commit(peer: Peer) {
    let (client, producer, topic) = ready(&peer, Duration::from_millis(5)).await;
    // Outside a transaction, send is refused with the state named.
    let err = producer
        .send(ProducerRecord::new(Arc::clone(&topic), "early"))
        .await
        .expect_err("send before begin_transaction");
    assert!(err.to_string().contains("call begin_transaction"), "{err}");

    producer.begin_transaction().expect("begin");
    let mut futures = Vec::new();
    for (p, v) in [(0, "a"), (1, "b"), (0, "c")] {
        futures.push(send(&producer, &topic, p, v).await);
    }
    producer.commit_transaction().await.expect("commit");
    assert_eq!(producer.transaction_state(), Some(TransactionState::Ready));
    let offsets: Vec<(i32, i64)> = futures
        .into_iter()
        .map(|f| {
            f.try_result()
                .expect("resolved by commit")
                .expect("written")
        })
        .map(|m| (m.partition, m.offset))
        .collect();
    assert_eq!(offsets, [(0, 0), (1, 0), (0, 1)]);

    let p0 = fetch_with_marker(&peer, &client, &topic, 0).await;
    assert_eq!(values(&p0), ["a", "c"]);
    assert!(p0.values.iter().all(|(pid, txn, _)| *pid >= 0 && *txn));
    assert_eq!(p0.markers.len(), 1);
    assert_eq!(p0.markers[0].1, ControlRecordType::Commit);
    let p1 = fetch_with_marker(&peer, &client, &topic, 1).await;
    assert_eq!(values(&p1), ["b"]);
    assert_eq!(p1.markers[0].1, ControlRecordType::Commit);

    if let Peer::Kafka(_) = peer {
        // read_committed: the records, not the marker.
        let mut config = client.config().clone();
        config.consumer.isolation_level = IsolationLevel::ReadCommitted;
        config.consumer.fetch_max_wait = Duration::from_millis(100);
        let reader = Client::connect(config).await.expect("reader");
        let consumer = Consumer::new(reader.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume");
        let mut got = Vec::new();
        while got.len() < 2 {
            let r = tokio::time::timeout(Duration::from_secs(10), pc.recv())
                .await
                .expect("records within 10 s")
                .expect("open")
                .expect("record");
            got.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
        assert_eq!(got, ["a", "c"]);
        pc.close().await;
        consumer.close().await;
        reader.close().await;
    }
    producer.close().await.expect("close");
    client.close().await;
}

/// Abort: records already written stay (behind an ABORT marker), records
/// still buffered fail with `Error::Aborted`, and the next transaction
/// commits.
async fn abort(peer: Peer) {
    // A long linger keeps the second records buffered until the abort.
    let (client, producer, topic) = ready(&peer, Duration::from_secs(30)).await;
    producer.begin_transaction().expect("begin");
    let written = send(&producer, &topic, 0, "x").await;
    producer.flush().await.expect("flush");
    let meta = written.await.expect("written before the abort");
    assert_eq!((meta.partition, meta.offset), (0, 0));
    let buffered = [
        send(&producer, &topic, 0, "y").await,
        send(&producer, &topic, 1, "z").await,
    ];
    producer.abort_transaction().await.expect("abort");
    assert_eq!(producer.transaction_state(), Some(TransactionState::Ready));
    for f in buffered {
        let err = f.await.expect_err("aborted before it was sent");
        assert_eq!(err.kind(), ErrorKind::Aborted, "{err}");
        assert!(err.to_string().contains("aborted"), "{err}");
    }
    let p0 = fetch_with_marker(&peer, &client, &topic, 0).await;
    assert_eq!(values(&p0), ["x"]);
    assert_eq!(p0.markers.len(), 1);
    assert_eq!(p0.markers[0].1, ControlRecordType::Abort);
    // Partition 1 never joined the transaction: nothing there.
    let p1 = fetch(&peer, &client, &topic, 1).await;
    assert!(p1.values.is_empty() && p1.markers.is_empty(), "{p1:?}");

    // The producer goes on with a new transaction.
    producer.begin_transaction().expect("begin again");
    let again = send(&producer, &topic, 1, "w").await;
    producer.commit_transaction().await.expect("commit");
    assert_eq!(again.await.expect("written").partition, 1);
    let p1 = fetch_with_marker(&peer, &client, &topic, 1).await;
    assert_eq!(values(&p1), ["w"]);
    assert_eq!(p1.markers[0].1, ControlRecordType::Commit);
    producer.close().await.expect("close");
    client.close().await;
}

/// Offsets sent to the transaction are the group's committed offsets after
/// the commit (Apache Kafka; the mock does not store transactional offsets).
async fn offsets_with_the_transaction(peer: Peer) {
    let (client, producer, topic) = ready(&peer, Duration::from_millis(5)).await;
    let group = ConsumerGroupMetadata::new(support::unique_topic("klamm-ptxn-group"));
    producer.begin_transaction().expect("begin");
    let f = send(&producer, &topic, 0, "out").await;
    producer
        .send_offsets_to_transaction(&[(&*topic, 1, 17, None)], &group)
        .await
        .expect("send_offsets_to_transaction");
    producer.commit_transaction().await.expect("commit");
    f.await.expect("written");
    let start = std::time::Instant::now();
    loop {
        let (offset, _) = committed(&client, &group.group_id, &topic, 1).await;
        if offset == 17 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "committed offset is {offset}, not 17"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.close().await.expect("close");
    client.close().await;
}

/// A second producer with the same transactional id fences the first: the
/// first's next partition cannot join its transaction, the record fails
/// with the fenced error, and so does its commit.
async fn fencing(peer: Peer) {
    let (client, first, topic) = ready(&peer, Duration::from_millis(5)).await;
    first.begin_transaction().expect("begin");
    send(&first, &topic, 0, "before")
        .await
        .await
        .expect("written before the fence");

    let second = AsyncProducer::new(client.clone())
        .await
        .expect("second producer");
    second.init_transactions().await.expect("second init");

    let fenced = send(&first, &topic, 1, "after").await;
    let err = fenced
        .await
        .expect_err("the fenced producer's record fails");
    assert_fenced(&err);
    let commit = first.commit_transaction().await.expect_err("fenced commit");
    assert_fenced(&commit);
    assert_eq!(
        first.transaction_state(),
        Some(TransactionState::FatalError)
    );
    // Sends fail at once from now on.
    let again = first
        .send(ProducerRecord::new(Arc::clone(&topic), "later"))
        .await
        .expect_err("fatal");
    assert_fenced(&again);

    // The new instance works.
    second.begin_transaction().expect("begin");
    let ok = send(&second, &topic, 1, "new").await;
    second.commit_transaction().await.expect("commit");
    ok.await.expect("written by the new instance");
    first.close().await.ok();
    second.close().await.expect("close");
    client.close().await;
}

/// CONCURRENT_TRANSACTIONS on AddPartitionsToTxn (the coordinator is still
/// finishing the previous transaction) is retried; the records commit.
async fn add_partitions_retried(peer: Peer) {
    let (client, producer, topic) = ready(&peer, Duration::from_millis(5)).await;
    if let Peer::Mock(m) = &peer {
        m.push_errors(
            ApiKey::AddPartitionsToTxn.code(),
            &[
                ErrorCode::CONCURRENT_TRANSACTIONS.code(),
                ErrorCode::CONCURRENT_TRANSACTIONS.code(),
            ],
        );
    }
    producer.begin_transaction().expect("begin");
    let f = send(&producer, &topic, 0, "r").await;
    producer.commit_transaction().await.expect("commit");
    f.await.expect("written");
    let p0 = fetch_with_marker(&peer, &client, &topic, 0).await;
    assert_eq!(values(&p0), ["r"]);
    assert_eq!(p0.markers[0].1, ControlRecordType::Commit);
    producer.close().await.expect("close");
    client.close().await;
}

#[test]
fn kafka_producer_commit() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, commit(peer));
}

#[test]
fn kafka_producer_abort() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, abort(peer));
}

#[test]
fn kafka_producer_offsets_commit_with_the_transaction() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, offsets_with_the_transaction(peer));
}

#[test]
fn kafka_second_producer_fences_the_first() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, fencing(peer));
}

#[test]
fn mock_producer_commit() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, commit(peer));
}

#[test]
fn mock_producer_abort() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, abort(peer));
}

#[test]
fn mock_producer_retries_concurrent_transactions_on_add_partitions() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, add_partitions_retried(peer));
}
