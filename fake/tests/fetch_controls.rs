//! The controls for testing a consumer: logs written as raw record-set
//! entries (`append_raw`), Fetch answers sliced at their byte limits as
//! Kafka's log reads slice them (`slice_fetches`), requests in flight and
//! their peak, the fetch sessions held, injected faults still waiting, and
//! fetch session errors answered as Kafka answers them. Each check runs
//! against raw requests, so what the broker sent is what is checked.
mod support;

use std::time::Duration;

use bytes::Bytes;
use klamm::consumer::{Consumer, ConsumerOptions, StartOffset};
use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use klamm::protocol::records::{
    Batch, ControlRecord, DecodeOptions, EncodeOptions, LegacyMagic, LegacyMessage, Record,
    RecordBatch, TimestampType, decode_record_set, encode_message_set,
};
use klamm::{Client, Config};
use klamm_fake::{FakeCluster, Fault, FaultError, TxnStatus};
use support::bounded;

/// One v2 batch of `values` (`pid`: a transactional producer id).
fn batch(values: &[&str], codec: Compression, pid: Option<i64>) -> Vec<u8> {
    let mut b = RecordBatch::new(0, 1_000);
    if let Some(pid) = pid {
        b.is_transactional = true;
        b.producer_id = pid;
        b.producer_epoch = 0;
    }
    for (i, v) in values.iter().enumerate() {
        b.records.push(
            Record::new(None, Some(Bytes::copy_from_slice(v.as_bytes())))
                .with_offset_delta(i as i32)
                .with_timestamp_delta(i as i64),
        );
    }
    b.encode_to_vec(&EncodeOptions::compressed(codec)).unwrap()
}

fn marker(commit: bool, pid: i64) -> Vec<u8> {
    ControlRecord::end_transaction(commit, 0)
        .to_batch(0, 1_000, pid, 0)
        .encode_to_vec(&EncodeOptions::default())
        .unwrap()
}

fn fetch(topic: &str, parts: &[(i32, i64)], max_bytes: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: i32::MAX,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_string(),
            partitions: parts
                .iter()
                .map(|&(partition, fetch_offset)| FetchPartition {
                    partition,
                    fetch_offset,
                    partition_max_bytes: max_bytes,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The records bytes of one partition of an answer.
fn data(resp: &FetchResponse, partition: i32) -> Bytes {
    let p = resp.responses[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .expect("the partition is answered");
    assert_eq!(p.error_code, 0, "{p:?}");
    p.records.clone().unwrap_or_default()
}

async fn connect(cluster: &FakeCluster) -> Connection {
    Connection::connect(&cluster.addresses()[0], ConnectionOptions::default())
        .await
        .unwrap()
}

/// Values and offsets a consumer reads from partition 0 until `n` came.
async fn consume(
    cluster: &FakeCluster,
    topic: &str,
    n: usize,
    committed: bool,
) -> Vec<(i64, String)> {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addresses();
    config.consumer.fetch_max_wait = Duration::from_millis(20);
    if committed {
        config.consumer.isolation_level = klamm::config::IsolationLevel::ReadCommitted;
    }
    let client = Client::connect(config).await.unwrap();
    let consumer = Consumer::with_options(client.clone(), ConsumerOptions::for_client(&client));
    let mut pc = consumer
        .consume_partition(topic, 0, StartOffset::Oldest)
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let r = pc.recv().await.unwrap().unwrap();
        let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        out.push((r.offset, v));
    }
    consumer.close().await;
    client.close().await;
    out
}

/// Raw entries go in at the log's offsets with the leader's epoch; markers
/// end transactions as the coordinator's would; legacy messages keep their
/// format; bad bytes change nothing.
#[tokio::test]
async fn append_raw_writes_batches_markers_and_legacy_messages_as_a_leader_stores_them() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(2)
            .topic("raw", 1)
            .start()
            .await
            .unwrap();
        // A leader epoch other than the first, to see it stamped.
        let other = if cluster.leader("raw", 0) == Some(1) {
            2
        } else {
            1
        };
        cluster.move_leader("raw", 0, other).unwrap();

        assert_eq!(
            cluster
                .append_raw("raw", 0, &batch(&["a", "b"], Compression::Lz4, None))
                .unwrap(),
            0
        );
        // An aborted and a committed transaction, in one call.
        let mut txns = batch(&["aborted"], Compression::None, Some(7));
        txns.extend(batch(&["committed"], Compression::Zstd, Some(8)));
        assert_eq!(cluster.last_stable_offset("raw", 0), Some(2));
        txns.extend(marker(false, 7));
        txns.extend(marker(true, 8));
        assert_eq!(cluster.append_raw("raw", 0, &txns).unwrap(), 2);
        // Legacy messages written at other offsets: a magic-1 gzip wrapper
        // and a plain magic-0 message, placed at the log end.
        let msg = |offset: i64, v: &'static str, ts: Option<i64>| LegacyMessage {
            offset,
            timestamp: ts,
            key: None,
            value: Some(Bytes::from_static(v.as_bytes())),
        };
        let mut legacy = Vec::new();
        encode_message_set(
            &[msg(40, "l1", Some(5)), msg(41, "l2", Some(6))],
            LegacyMagic::V1,
            TimestampType::CreateTime,
            &EncodeOptions::compressed(Compression::Gzip),
            &mut legacy,
        )
        .unwrap();
        encode_message_set(
            &[msg(90, "l3", None)],
            LegacyMagic::V0,
            TimestampType::CreateTime,
            &EncodeOptions::default(),
            &mut legacy,
        )
        .unwrap();
        assert_eq!(cluster.append_raw("raw", 0, &legacy).unwrap(), 6);
        assert_eq!(cluster.high_watermark("raw", 0), Some(9));
        assert_eq!(cluster.last_stable_offset("raw", 0), Some(9));

        let stored = cluster.records("raw", 0);
        let seen: Vec<(i64, &str, TxnStatus)> = stored
            .iter()
            .map(|r| {
                (
                    r.offset,
                    std::str::from_utf8(r.value.as_deref().unwrap()).unwrap(),
                    r.transaction,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, "a", TxnStatus::None),
                (1, "b", TxnStatus::None),
                (2, "aborted", TxnStatus::Aborted),
                (3, "committed", TxnStatus::Committed),
                (6, "l1", TxnStatus::None),
                (7, "l2", TxnStatus::None),
                (8, "l3", TxnStatus::None),
            ]
        );
        assert_eq!(stored[0].compression, Compression::Lz4);
        assert_eq!(stored[4].compression, Compression::Gzip);
        assert_eq!((stored[4].timestamp, stored[6].timestamp), (5, -1));

        // As served: the batch carries the leader epoch, the legacy
        // entries keep their format at the log's offsets.
        let leader_conn = Connection::connect(
            &cluster.addresses()[(other - 1) as usize],
            ConnectionOptions::default(),
        )
        .await
        .unwrap();
        let resp = leader_conn
            .send_version(&fetch("raw", &[(0, 0)], 1 << 20), 12)
            .await
            .unwrap();
        let set = decode_record_set(data(&resp, 0), &DecodeOptions::default()).unwrap();
        assert_eq!(set.batches.len(), 7);
        let Batch::V2(first) = &set.batches[0] else {
            panic!("a v2 batch first")
        };
        assert_eq!(first.partition_leader_epoch, 1);
        let Batch::Legacy(wrapper) = &set.batches[5] else {
            panic!("the legacy wrapper")
        };
        assert_eq!(
            (wrapper.magic, wrapper.offset, wrapper.messages[0].offset),
            (LegacyMagic::V1, 7, 6)
        );
        let Batch::Legacy(plain) = &set.batches[6] else {
            panic!("the legacy message")
        };
        assert_eq!((plain.magic, plain.offset), (LegacyMagic::V0, 8));

        // Consumers read it: read_committed leaves the aborted one out.
        let all = consume(&cluster, "raw", 7, false).await;
        assert_eq!(all[2], (2, "aborted".to_string()));
        assert_eq!(all[6], (8, "l3".to_string()));
        let committed = consume(&cluster, "raw", 6, true).await;
        let values: Vec<&str> = committed.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["a", "b", "committed", "l1", "l2", "l3"]);

        // An open transaction holds the last stable offset back.
        cluster
            .append_raw("raw", 0, &batch(&["open"], Compression::None, Some(9)))
            .unwrap();
        assert_eq!(cluster.last_stable_offset("raw", 0), Some(9));
        assert_eq!(cluster.high_watermark("raw", 0), Some(10));

        // Bad bytes: refused, nothing written.
        let whole = batch(&["x"], Compression::None, None);
        let err = cluster.append_raw("raw", 0, &whole[..whole.len() - 1]);
        assert!(matches!(err, Err(FaultError::InvalidRecords(_))), "{err:?}");
        let mut corrupt = whole.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(
            cluster.append_raw("raw", 0, &corrupt),
            Err(FaultError::InvalidRecords(_))
        ));
        // A good entry before a bad one is not written either.
        let mut both = whole.clone();
        both.extend(&corrupt);
        assert!(matches!(
            cluster.append_raw("raw", 0, &both),
            Err(FaultError::InvalidRecords(_))
        ));
        assert_eq!(cluster.high_watermark("raw", 0), Some(10));
        assert_eq!(
            cluster.append_raw("nope", 0, &whole),
            Err(FaultError::UnknownPartition("nope".into(), 0))
        );
        // The control: the same bytes whole are taken.
        assert_eq!(cluster.append_raw("raw", 0, &whole), Ok(10));
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
    })
    .await;
}

/// Sliced, answers end at the byte limit mid-batch; the first batch of the
/// first partition with data is whole from v3 on (KIP-74), not before, and
/// not in a later partition. Unsliced, only whole batches go.
#[tokio::test]
async fn sliced_fetches_cut_the_log_at_the_byte_limit_as_kafka_does() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .topic("cut", 2)
            .start()
            .await
            .unwrap();
        let small = batch(&["small"], Compression::None, None);
        let big_value = "x".repeat(3000);
        let big = batch(&[&big_value, &big_value], Compression::None, None);
        for p in 0..2 {
            cluster.append_raw("cut", p, &small).unwrap();
            cluster.append_raw("cut", p, &big).unwrap();
            cluster.append_raw("cut", p, &small).unwrap();
        }
        let limit = small.len() + 50;
        let conn = connect(&cluster).await;
        let get = |parts: Vec<(i32, i64)>, max: usize, version: i16| {
            let req = fetch("cut", &parts, max as i32);
            let conn = &conn;
            async move { conn.send_version(&req, version).await.unwrap() }
        };

        // Whole batches (the default): the small one alone.
        let whole = data(&get(vec![(0, 0)], limit, 12).await, 0);
        assert_eq!(whole.len(), small.len());

        cluster.slice_fetches(true);
        // The limit exactly, the big batch cut short after the small one.
        let cut = data(&get(vec![(0, 0)], limit, 12).await, 0);
        assert_eq!(cut.len(), limit);
        let set = decode_record_set(cut, &DecodeOptions::default()).unwrap();
        assert_eq!((set.batches.len(), set.truncated_bytes), (1, 50));
        // A first batch bigger than the limit: whole, and nothing after it.
        let first = data(&get(vec![(0, 1)], limit, 12).await, 0);
        assert_eq!(first.len(), big.len());
        // In a partition after the first with data it is cut.
        let two = get(vec![(0, 0), (1, 1)], limit, 12).await;
        assert_eq!(data(&two, 0).len(), limit);
        assert_eq!(
            data(&two, 1).len(),
            limit,
            "the second partition's first batch is cut"
        );
        // The control: first in its request, the same read is whole.
        assert_eq!(
            data(&get(vec![(1, 1)], limit, 12).await, 1).len(),
            big.len()
        );
        // Before v3 no batch is whole past the limit: a down-converted
        // message is cut, and messages below the fetch offset are dropped.
        let v2 = data(&get(vec![(0, 1)], limit, 2).await, 0);
        assert_eq!(v2.len(), limit);
        let set = decode_record_set(v2, &DecodeOptions::default()).unwrap();
        assert!(set.batches.is_empty() && set.is_truncated());
        let v3 = data(&get(vec![(0, 2)], 1 << 20, 3).await, 0);
        let set = decode_record_set(v3, &DecodeOptions::default()).unwrap();
        let offsets: Vec<i64> = set
            .batches
            .iter()
            .flat_map(|b| match b {
                Batch::Legacy(l) => l.messages.iter().map(|m| m.offset).collect::<Vec<_>>(),
                Batch::V2(_) => panic!("a v3 answer holds legacy messages"),
            })
            .collect();
        assert_eq!(offsets, [2, 3]);

        cluster.slice_fetches(false);
        assert_eq!(
            data(&get(vec![(0, 0)], limit, 12).await, 0).len(),
            small.len()
        );
    })
    .await;
}

/// A long poll is in flight until its answer goes; two at once make a
/// peak of two.
#[tokio::test]
async fn requests_in_flight_and_their_peak() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .topic("wait", 1)
            .start()
            .await
            .unwrap();
        let poll = |conn: Connection| async move {
            let mut req = fetch("wait", &[(0, 0)], 1 << 20);
            req.max_wait_ms = 30_000;
            conn.send_with_timeout(&req, 12, Duration::from_secs(40))
                .await
                .unwrap()
        };
        let first = tokio::spawn(poll(connect(&cluster).await));
        let until = |n: u64| {
            let cluster = cluster.handle();
            async move {
                while cluster.in_flight(Some(1), ApiKey::Fetch) != n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        until(1).await;
        assert_eq!(cluster.in_flight(None, ApiKey::Fetch), 1);
        assert_eq!(cluster.in_flight(Some(1), ApiKey::Metadata), 0);
        assert_eq!(cluster.peak_in_flight(Some(1), ApiKey::Fetch), 1);
        let second = tokio::spawn(poll(connect(&cluster).await));
        until(2).await;
        assert_eq!(cluster.peak_in_flight(None, ApiKey::Fetch), 2);
        cluster
            .append_raw("wait", 0, &batch(&["v"], Compression::None, None))
            .unwrap();
        for task in [first, second] {
            let resp = task.await.unwrap();
            assert!(!data(&resp, 0).is_empty());
        }
        until(0).await;
        assert_eq!(cluster.peak_in_flight(Some(1), ApiKey::Fetch), 2);
        assert_eq!(cluster.peak_in_flight(Some(1), ApiKey::Produce), 0);
    })
    .await;
}

/// A session error fault is the answer's own, as Kafka sends it, and the
/// sessions the broker holds are listed until closed.
#[tokio::test]
async fn fetch_sessions_are_listed_and_session_errors_fail_the_whole_answer() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("s", 1).start().await.unwrap();
        cluster
            .append_raw("s", 0, &batch(&["v"], Compression::None, None))
            .unwrap();
        let conn = connect(&cluster).await;
        let mut full = fetch("s", &[(0, 0)], 1 << 20);
        full.session_epoch = 0;
        let resp = conn.send_version(&full, 12).await.unwrap();
        let id = resp.session_id;
        assert!(id > 0);
        assert_eq!(cluster.fetch_sessions(), [id]);

        let incremental = FetchRequest {
            session_id: id,
            session_epoch: 1,
            topics: Vec::new(),
            ..full.clone()
        };
        cluster
            .inject(
                ApiKey::Fetch,
                None,
                Fault::Error(ErrorCode::INVALID_FETCH_SESSION_EPOCH),
                1,
            )
            .unwrap();
        cluster
            .inject(
                ApiKey::Fetch,
                None,
                Fault::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                1,
            )
            .unwrap();
        assert_eq!(cluster.faults_left(Some(ApiKey::Fetch)), 2);
        assert_eq!(cluster.faults_left(Some(ApiKey::Produce)), 0);
        let resp = conn.send_version(&incremental, 12).await.unwrap();
        assert_eq!(
            resp.error_code,
            ErrorCode::INVALID_FETCH_SESSION_EPOCH.code()
        );
        assert!(resp.responses.is_empty(), "{resp:?}");
        assert_eq!(resp.session_id, 0);
        assert_eq!(cluster.faults_left(Some(ApiKey::Fetch)), 1);
        // The control: a partition error goes on the partitions.
        let resp = conn.send_version(&full, 12).await.unwrap();
        assert_eq!(resp.error_code, 0);
        assert_eq!(
            resp.responses[0].partitions[0].error_code,
            ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
        );
        assert_eq!(cluster.faults_left(Some(ApiKey::Fetch)), 0);
        // Nothing was applied: the session is still at epoch 1.
        let resp = conn.send_version(&incremental, 12).await.unwrap();
        assert_eq!((resp.error_code, resp.session_id), (0, id));
        // An error on an incremental fetch that names no partition is on
        // the partitions of its session.
        let quiet = FetchRequest {
            session_epoch: 2,
            ..incremental.clone()
        };
        cluster
            .inject(
                ApiKey::Fetch,
                None,
                Fault::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                1,
            )
            .unwrap();
        let resp = conn.send_version(&quiet, 12).await.unwrap();
        let p = &resp.responses[0].partitions[0];
        assert_eq!(
            (
                resp.responses[0].topic.as_str(),
                p.partition_index,
                p.error_code
            ),
            ("s", 0, ErrorCode::NOT_LEADER_OR_FOLLOWER.code())
        );
        // The control: without the fault, the same request reads it.
        let resp = conn.send_version(&quiet, 12).await.unwrap();
        assert_eq!(resp.responses[0].partitions[0].error_code, 0);

        let close = FetchRequest {
            session_id: id,
            session_epoch: -1,
            topics: Vec::new(),
            ..full
        };
        conn.send_version(&close, 12).await.unwrap();
        assert!(cluster.fetch_sessions().is_empty());
    })
    .await;
}
