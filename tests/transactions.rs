//! The TransactionManager against Apache Kafka (the single node) and the
//! librdkafka mock cluster: a transactional batch written with a raw
//! ProduceRequest, then commit or abort, checked by a raw Fetch for the data
//! and the COMMIT/ABORT control marker; offsets sent to a transaction and
//! read back with OffsetFetch; fencing by a second instance.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use klamm::producer::transaction::{
    ConsumerGroupMetadata, ProducerIdAndEpoch, TransactionManager, TransactionState,
};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::protocol::records::{ControlRecordType, EncodeOptions, Record, RecordBatch};
use klamm::{Client, Error};
use support::txn::{
    Peer, assert_fenced, committed, fetch, fetch_with_marker, mock_cluster, mock_turn,
};

/// A transactional batch of `values` for `pid`, base sequence 0.
fn transactional_batch(pid: ProducerIdAndEpoch, values: &[&str]) -> Bytes {
    let mut batch = RecordBatch::new(0, now_ms());
    batch.is_transactional = true;
    batch.producer_id = pid.id;
    batch.producer_epoch = pid.epoch;
    batch.base_sequence = 0;
    for (i, v) in values.iter().enumerate() {
        batch.records.push(
            Record::new(None, Some(Bytes::copy_from_slice(v.as_bytes())))
                .with_offset_delta(i as i32),
        );
    }
    Bytes::from(
        batch
            .encode_to_vec(&EncodeOptions::default())
            .expect("batch encodes"),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Writes one transactional batch to `topic`/`partition` with a raw
/// ProduceRequest to its leader: at v12 in transactions V2 (that version
/// adds the partition to the transaction), v11 at most otherwise.
async fn produce(
    client: &Client,
    txn: &TransactionManager,
    topic: &str,
    partition: i32,
    pid: ProducerIdAndEpoch,
    values: &[&str],
) {
    let p = produce_as(client, txn, topic, partition, pid, values).await;
    assert_eq!(
        ErrorCode(p.error_code),
        ErrorCode::NONE,
        "Produce to {topic}/{partition}"
    );
}

/// The raw Produce of [`produce`], its answer unchecked.
async fn produce_as(
    client: &Client,
    txn: &TransactionManager,
    topic: &str,
    partition: i32,
    pid: ProducerIdAndEpoch,
    values: &[&str],
) -> klamm::protocol::messages::produce_response::PartitionProduceResponse {
    support::produce::produce_raw_up_to(
        client,
        topic,
        partition,
        transactional_batch(pid, values),
        Some(txn.transactional_id()),
        txn.is_transaction_v2().then_some(12),
    )
    .await
}

/// What a raw Fetch from offset 0 finds: the data batches' values and
/// producer ids, and the control records' types.
async fn ready(peer: &Peer, prefix: &str) -> (Client, TransactionManager, String) {
    let id = support::unique_topic(prefix);
    let client = Client::connect(peer.config(&id))
        .await
        .expect("client connects");
    let txn = TransactionManager::new(client.clone()).expect("manager");
    let pid = txn.init_transactions().await.expect("init_transactions");
    assert!(pid.id >= 0 && pid.epoch >= 0, "{pid:?}");
    assert_eq!(txn.state(), TransactionState::Ready);
    (client, txn, id)
}

/// init → begin → add partitions → produce → commit or abort; the batch and
/// the right marker are in the partition.
async fn end_writes_a_marker(peer: Peer, commit: bool) {
    let (client, txn, _) = ready(&peer, "klamm-txn").await;
    let topic = support::unique_topic("klamm-txn");
    peer.create_topic(&client, &topic, 2).await;
    let pid = txn.producer_id_and_epoch().expect("producer id");

    txn.begin_transaction().expect("begin");
    txn.add_partitions(&[(topic.as_str(), 1)])
        .await
        .expect("add_partitions");
    assert!(txn.is_partition_added(&topic, 1));
    produce(&client, &txn, &topic, 1, pid, &["a", "b", "c"]).await;
    if commit {
        txn.commit_transaction().await.expect("commit");
    } else {
        txn.abort_transaction().await.expect("abort");
    }
    assert_eq!(txn.state(), TransactionState::Ready);

    let log = fetch_with_marker(&peer, &client, &topic, 1).await;
    let values: Vec<(i64, bool, String)> = ["a", "b", "c"]
        .iter()
        .map(|v| (pid.id, true, v.to_string()))
        .collect();
    assert_eq!(log.values, values);
    let marker = if commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    assert_eq!(log.markers, [(pid.id, marker)]);
    // The partition that was not added holds nothing.
    let other = fetch(&peer, &client, &topic, 0).await;
    assert!(
        other.values.is_empty() && other.markers.is_empty(),
        "{other:?}"
    );
    client.close().await;
}

/// A failed batch makes the transaction abortable; its abort bumps the
/// epoch (KIP-360) and the next transaction writes with the new epoch from
/// sequence 0. On Apache Kafka and the mock.
async fn abort_after_a_failed_batch_bumps_the_epoch(peer: Peer) {
    let (client, txn, _) = ready(&peer, "klamm-txn-bump").await;
    let topic = support::unique_topic("klamm-txn-bump");
    peer.create_topic(&client, &topic, 1).await;
    let old = txn.producer_id_and_epoch().expect("producer id");

    txn.begin_transaction().expect("begin");
    txn.add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions");
    produce(&client, &txn, &topic, 0, old, &["lost"]).await;
    txn.fail_transaction(&Error::Disconnected {
        broker: "leader".into(),
        reason: "the second batch's answer never came".into(),
    });
    assert_eq!(txn.state(), TransactionState::AbortableError);
    let err = txn.commit_transaction().await.expect_err("abortable");
    assert!(err.to_string().contains("call abort_transaction"), "{err}");
    txn.abort_transaction().await.expect("abort");
    let new = txn.producer_id_and_epoch().expect("producer id");
    assert_eq!(new.id, old.id);
    assert!(new.epoch > old.epoch, "{new:?} after {old:?}");

    txn.begin_transaction().expect("begin");
    txn.add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions");
    produce(&client, &txn, &topic, 0, new, &["kept"]).await;
    txn.commit_transaction().await.expect("commit");

    let start = Instant::now();
    let log = loop {
        let log = fetch(&peer, &client, &topic, 0).await;
        if log.markers.len() >= 2 {
            break log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "markers missing: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let values: Vec<&str> = log.values.iter().map(|v| v.2.as_str()).collect();
    assert_eq!(values, ["lost", "kept"]);
    assert_eq!(
        log.markers,
        [
            (old.id, ControlRecordType::Abort),
            (old.id, ControlRecordType::Commit)
        ]
    );
    client.close().await;
}

/// Offsets sent to a transaction are the group's committed offsets once it
/// commits (Apache Kafka; the mock does not store transactional offsets).
async fn offsets_commit_with_the_transaction(peer: Peer) {
    let (client, txn, _) = ready(&peer, "klamm-txn-offsets").await;
    let topic = support::unique_topic("klamm-txn-offsets");
    peer.create_topic(&client, &topic, 1).await;
    let pid = txn.producer_id_and_epoch().expect("producer id");
    let group = ConsumerGroupMetadata::new(support::unique_topic("klamm-txn-group"));

    txn.begin_transaction().expect("begin");
    txn.add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions");
    produce(&client, &txn, &topic, 0, pid, &["x"]).await;
    txn.send_offsets_to_transaction(&[(topic.as_str(), 0, 42, Some("txn-meta"))], &group)
        .await
        .expect("send_offsets_to_transaction");
    txn.commit_transaction().await.expect("commit");

    let start = Instant::now();
    loop {
        let (offset, metadata) = committed(&client, &group.group_id, &topic, 0).await;
        if offset == 42 {
            assert_eq!(metadata.as_deref(), Some("txn-meta"));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "committed offset is {offset}, not 42"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
}

/// A second manager with the same transactional id fences the first on
/// Apache Kafka, and every later call of the first fails with the fenced
/// error. In transactions V1 the first hears it from AddPartitionsToTxn; in
/// V2 (Kafka 4.4) adding a partition is local, so its Produce is refused
/// and its EndTxn answers PRODUCER_FENCED. (The fenced EndTxn answer of V1
/// is covered by the mock test with the coordinator's own error code.)
async fn a_second_instance_fences_the_first(peer: Peer) {
    let (client, first, id) = ready(&peer, "klamm-txn-fence").await;
    let topic = support::unique_topic("klamm-txn-fence");
    peer.create_topic(&client, &topic, 2).await;
    let old = first.producer_id_and_epoch().expect("producer id");
    first.begin_transaction().expect("begin");
    first
        .add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions");

    let second = TransactionManager::new(client.clone()).expect("manager");
    assert_eq!(second.transactional_id(), id);
    let new = second.init_transactions().await.expect("second init");
    assert_eq!(new.id, old.id, "same transactional id, same producer id");
    assert!(new.epoch > old.epoch, "{new:?} after {old:?}");

    let err = if first.is_transaction_v2() {
        first
            .add_partitions(&[(topic.as_str(), 1)])
            .await
            .expect("in transactions V2 adding a partition is local");
        let refused = produce_as(&client, &first, &topic, 1, old, &["fenced"]).await;
        assert!(
            matches!(
                ErrorCode(refused.error_code),
                ErrorCode::INVALID_PRODUCER_EPOCH | ErrorCode::PRODUCER_FENCED
            ),
            "the fenced instance's Produce: {refused:?}"
        );
        first
            .commit_transaction()
            .await
            .expect_err("the fenced instance cannot commit")
    } else {
        first
            .add_partitions(&[(topic.as_str(), 1)])
            .await
            .expect_err("the fenced instance cannot add partitions")
    };
    assert_fenced(&err);
    assert_eq!(first.state(), TransactionState::FatalError);
    let again = first.commit_transaction().await.expect_err("fenced commit");
    assert_eq!(again.to_string(), err.to_string());

    // The new instance works.
    second.begin_transaction().expect("begin");
    second
        .add_partitions(&[(topic.as_str(), 1)])
        .await
        .expect("add_partitions");
    produce(&client, &second, &topic, 1, new, &["new"]).await;
    second.commit_transaction().await.expect("commit");
    client.close().await;
}

/// The mock's coordinators are separate brokers and move: AddOffsetsToTxn
/// and EndTxn reach the transaction coordinator, TxnOffsetCommit the group
/// coordinator (the mock answers NOT_COORDINATOR anywhere else), and a
/// moved transaction coordinator is found again.
async fn mock_offsets_and_coordinator_moves(peer: Peer) {
    let mock = mock_cluster(&peer).clone();
    let id = support::unique_topic("klamm-txn-coord");
    let group = ConsumerGroupMetadata {
        group_id: support::unique_topic("klamm-txn-coord-group"),
        generation_id: 3,
        member_id: "member-1".into(),
        group_instance_id: None,
    };
    let brokers = mock.addrs().len() as i32;
    assert!(brokers >= 2, "this test needs a mock cluster of 2+ brokers");
    // Transaction coordinator on broker 2, group coordinator on the last.
    mock.command(&format!("coordinator txn {id} 2"));
    mock.set_group_coordinator(&group.group_id, brokers);
    let client = Client::connect(peer.config(&id)).await.expect("client");
    let txn = TransactionManager::new(client.clone()).expect("manager");
    txn.init_transactions().await.expect("init");
    let topic = support::unique_topic("klamm-txn-coord");
    peer.create_topic(&client, &topic, 1).await;
    assert_eq!(client.transaction_coordinator(&id).await.unwrap().id, 2);

    txn.begin_transaction().expect("begin");
    txn.add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions");
    txn.send_offsets_to_transaction(&[(topic.as_str(), 0, 7, None)], &group)
        .await
        .expect("send_offsets_to_transaction");
    assert_eq!(
        client.coordinator(&group.group_id).await.unwrap().id,
        brokers
    );

    // The transaction coordinator moves: broker 2 answers NOT_COORDINATOR,
    // the manager looks it up again and commits on broker 1.
    mock.command(&format!("coordinator txn {id} 1"));
    txn.commit_transaction()
        .await
        .expect("commit after the move");
    assert_eq!(client.transaction_coordinator(&id).await.unwrap().id, 1);
    assert_eq!(txn.state(), TransactionState::Ready);

    // COORDINATOR_LOAD_IN_PROGRESS and CONCURRENT_TRANSACTIONS are retried.
    txn.begin_transaction().expect("begin");
    mock.push_errors(
        ApiKey::AddPartitionsToTxn.code(),
        &[
            ErrorCode::CONCURRENT_TRANSACTIONS.code(),
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code(),
        ],
    );
    txn.add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect("add_partitions after retries");
    txn.abort_transaction().await.expect("abort");
    client.close().await;
}

/// The coordinator's fencing answers (PRODUCER_FENCED on AddPartitionsToTxn,
/// INVALID_PRODUCER_EPOCH on EndTxn), injected into the mock: a second
/// init there hands out a new producer id instead of fencing the first.
async fn fencing_answers_are_fatal(peer: Peer) {
    let mock = mock_cluster(&peer).clone();
    let (client, txn, _id) = ready(&peer, "klamm-txn-mock-fence").await;
    let topic = support::unique_topic("klamm-txn-mock-fence");
    peer.create_topic(&client, &topic, 2).await;
    txn.begin_transaction().expect("begin");
    mock.push_errors(
        ApiKey::AddPartitionsToTxn.code(),
        &[ErrorCode::PRODUCER_FENCED.code()],
    );
    let err = txn
        .add_partitions(&[(topic.as_str(), 0)])
        .await
        .expect_err("fenced add_partitions");
    assert_fenced(&err);
    assert_eq!(txn.state(), TransactionState::FatalError);
    let again = txn.commit_transaction().await.expect_err("fenced commit");
    assert_eq!(again.to_string(), err.to_string());

    let other = TransactionManager::new(client.clone()).expect("manager");
    other.init_transactions().await.expect("init");
    other.begin_transaction().expect("begin");
    other
        .add_partitions(&[(topic.as_str(), 1)])
        .await
        .expect("add_partitions");
    mock.push_errors(
        ApiKey::EndTxn.code(),
        &[ErrorCode::INVALID_PRODUCER_EPOCH.code()],
    );
    let err = other.commit_transaction().await.expect_err("fenced commit");
    assert_fenced(&err);
    assert_eq!(other.state(), TransactionState::FatalError);
    client.close().await;
}

#[test]
fn kafka_commit_writes_data_and_a_commit_marker() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, end_writes_a_marker(peer, true));
}

#[test]
fn kafka_abort_writes_an_abort_marker() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, end_writes_a_marker(peer, false));
}

#[test]
fn kafka_offsets_commit_with_the_transaction() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, offsets_commit_with_the_transaction(peer));
}

#[test]
fn kafka_a_second_instance_fences_the_first() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, a_second_instance_fences_the_first(peer));
}

#[test]
fn kafka_abort_after_a_failed_batch_bumps_the_epoch() {
    let Some(peer) = Peer::kafka() else { return };
    support::run_within(60, abort_after_a_failed_batch_bumps_the_epoch(peer));
}

#[test]
fn mock_commit_writes_data_and_a_commit_marker() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, end_writes_a_marker(peer, true));
}

#[test]
fn mock_abort_writes_an_abort_marker() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, end_writes_a_marker(peer, false));
}

#[test]
fn mock_offsets_go_to_the_group_coordinator_and_coordinator_moves_are_followed() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, mock_offsets_and_coordinator_moves(peer));
}

#[test]
fn mock_abort_after_a_failed_batch_bumps_the_epoch() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, abort_after_a_failed_batch_bumps_the_epoch(peer));
}

#[test]
fn mock_fencing_answers_are_fatal() {
    let Some((peer, _turn)) = mock_turn() else {
        return;
    };
    support::run_within(60, fencing_answers_are_fatal(peer));
}
