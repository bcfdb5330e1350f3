//! Consumer tests against klamm-fake's in-process cluster on loopback
//! ([`klamm_fake::FakeCluster`]), its logs written with `append_raw` so each
//! test has the batches it needs (codecs, transaction markers, legacy
//! messages, batches bigger than the fetch limit), its requests read back
//! from `history`.
//!
//! klamm-fake links a second build of klamm: what is handed to it (API
//! keys, error codes) is named through `klamm_fake::klamm`, what comes
//! back is read as plain data.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use klamm_fake::klamm::protocol::error_codes::ErrorCode as FakeCode;
use klamm_fake::klamm::protocol::messages::{ApiKey as FakeApi, RequestBody as FakeBody};
use klamm_fake::{FakeCluster, Fault};

use super::*;
use crate::config::Config;
use crate::protocol::compression::Compression;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::records::{ControlRecord, EncodeOptions, Record, RecordBatch};
use crate::test_support::{bounded, eventually, list_offsets_requests};

/// A cluster of `brokers` with `topics` (name, partitions), recording every
/// request, and every partition led by broker 1.
async fn start(brokers: usize, topics: &[(&str, i32)]) -> FakeCluster {
    let mut builder = FakeCluster::builder()
        .brokers(brokers)
        .record_requests(true);
    for (t, n) in topics {
        builder = builder.topic(t, *n);
    }
    let cluster = builder.start().await.expect("the fake cluster starts");
    for (t, n) in topics {
        for p in 0..*n {
            cluster.move_leader(t, p, 1).expect("broker 1 is a replica");
        }
    }
    cluster
}

/// One batch of `values` at `base`: keys `k<offset>`, timestamps
/// `1000 + offset`.
fn batch_bytes(base: i64, values: &[&str], codec: Compression) -> Vec<u8> {
    let mut batch = RecordBatch::new(base, 1_000 + base);
    for (i, v) in values.iter().enumerate() {
        batch.records.push(
            Record::new(
                Some(Bytes::from(format!("k{}", base + i as i64))),
                Some(Bytes::copy_from_slice(v.as_bytes())),
            )
            .with_offset_delta(i as i32)
            .with_timestamp_delta(i as i64),
        );
    }
    batch
        .encode_to_vec(&EncodeOptions::compressed(codec))
        .unwrap()
}

/// Appends one batch of `values` at the log end; returns its offset.
fn append(cluster: &FakeCluster, topic: &str, p: i32, values: &[&str], codec: Compression) -> i64 {
    let base = cluster.high_watermark(topic, p).expect("the partition");
    let bytes = batch_bytes(base, values, codec);
    assert_eq!(cluster.append_raw(topic, p, &bytes), Ok(base));
    base
}

/// Appends `batch` (uncompressed) at the log end; returns its offset.
fn append_batch(cluster: &FakeCluster, topic: &str, p: i32, batch: RecordBatch) -> i64 {
    let bytes = batch.encode_to_vec(&EncodeOptions::default()).unwrap();
    cluster.append_raw(topic, p, &bytes).expect("a valid batch")
}

/// One Fetch request as the cluster recorded it.
#[derive(Debug, Clone)]
struct SeenFetch {
    broker: i32,
    version: i16,
    session_id: i32,
    epoch: i32,
    /// (topic, partition, fetch offset, current leader epoch, max bytes)
    partitions: Vec<(String, i32, i64, i32, i32)>,
    forgotten: Vec<(String, i32)>,
}

/// Every Fetch request the cluster got, in order.
fn fetches(cluster: &FakeCluster) -> Vec<SeenFetch> {
    cluster
        .history()
        .into_iter()
        .filter_map(|r| match r.body {
            FakeBody::Fetch(f) => Some(SeenFetch {
                broker: r.broker,
                version: r.version,
                session_id: f.session_id,
                epoch: f.session_epoch,
                partitions: f
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                t.topic.clone(),
                                p.partition,
                                p.fetch_offset,
                                p.current_leader_epoch,
                                p.partition_max_bytes,
                            )
                        })
                    })
                    .collect(),
                forgotten: f
                    .forgotten_topics_data
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

/// Injects `code` into the next `n` Fetch requests.
fn fail_fetches(cluster: &FakeCluster, code: FakeCode, n: u64) {
    cluster
        .inject(FakeApi::Fetch, None, Fault::Error(code), n)
        .expect("Fetch can fail");
}

fn config(cluster: &FakeCluster) -> Config {
    let mut c = Config::default();
    c.net.bootstrap_servers = vec![cluster.addresses()[0].clone()];
    c.net.request_timeout = Duration::from_secs(5);
    c.metadata.refresh_interval = None;
    c.metadata.retry_backoff = Duration::from_millis(20);
    c.consumer.fetch_max_wait = Duration::from_millis(50);
    c
}

async fn consumer_with(
    cluster: &FakeCluster,
    f: impl FnOnce(&mut Config, &mut ConsumerOptions),
) -> Consumer {
    let mut c = config(cluster);
    let client0 = Client::connect(c.clone()).await.unwrap();
    let mut options = ConsumerOptions::for_client(&client0);
    client0.close().await;
    f(&mut c, &mut options);
    let client = Client::connect(c).await.unwrap();
    Consumer::with_options(client, options)
}

async fn take(pc: &mut PartitionConsumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(pc.recv().await.expect("open").expect("record"));
    }
    out
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

#[tokio::test(start_paused = true)]
async fn each_start_offset_kind_and_skipping_inside_the_first_batch() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        append(&cluster, "t", 0, &["a", "b", "c"], Compression::None);
        append(&cluster, "t", 0, &["d", "e"], Compression::Lz4);
        let consumer = consumer_with(&cluster, |_, _| {}).await;

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 5).await;
        assert_eq!(values(&got), ["a", "b", "c", "d", "e"]);
        assert_eq!(offsets(&got), [0, 1, 2, 3, 4]);
        assert_eq!(got[1].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(got[4].timestamp, 1_000 + 3 + 1);
        assert_eq!(pc.high_water_mark(), 5);
        let again = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await;
        assert!(again.is_err(), "one partition consumer per partition");
        pc.close().await;

        // Offset 4 is inside the compressed second batch: 3 is skipped.
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(4))
            .await
            .unwrap();
        let b = pc.recv_batch().await.unwrap().unwrap();
        assert_eq!(offsets(&b.records), [4]);
        assert_eq!(b.high_water_mark, 5);
        drop(pc);

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Timestamp(1_004))
            .await
            .unwrap();
        assert_eq!(pc.recv().await.unwrap().unwrap().offset, 4);
        drop(pc);

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Newest)
            .await
            .unwrap();
        append(&cluster, "t", 0, &["f"], Compression::Zstd);
        let r = pc.recv().await.unwrap().unwrap();
        assert_eq!((r.offset, values(&[r])[0].as_str()), (5, "f"));
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn fetch_sessions_go_full_then_incremental_and_reset_on_session_errors() {
    bounded(async {
        let cluster = start(1, &[("t", 2)]).await;
        append(&cluster, "t", 0, &["a"], Compression::None);
        append(&cluster, "t", 1, &["b"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        consumer.pause_all();
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        consumer.resume_all();
        take(&mut p0, 1).await;
        take(&mut p1, 1).await;
        append(&cluster, "t", 0, &["c"], Compression::None);
        take(&mut p0, 1).await;
        append(&cluster, "t", 0, &["c2"], Compression::None);
        take(&mut p0, 1).await;
        let seen = fetches(&cluster);
        let first = &seen[0];
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(first.partitions.len(), 2, "{seen:?}");
        let session = seen[1].session_id;
        assert!(session > 0, "{seen:?}");
        // Later requests are incremental: same session, epochs counting up,
        // and only the partitions whose offset moved.
        for (i, f) in seen.iter().enumerate().skip(1) {
            assert_eq!((f.session_id, f.epoch), (session, i as i32), "{seen:?}");
        }
        assert!(
            seen.iter().skip(1).any(|f| f.partitions.len() < 2),
            "no incremental request left an unchanged partition out: {seen:?}"
        );
        // A paused partition is forgotten from the session.
        p1.pause();
        // (The request in flight when pausing may still list it.)
        for v in ["c3", "c4"] {
            append(&cluster, "t", 0, &[v], Compression::None);
            take(&mut p0, 1).await;
        }
        assert!(
            fetches(&cluster)
                .iter()
                .any(|f| f.session_id == session && f.forgotten == [("t".to_string(), 1)]),
            "{:?}",
            fetches(&cluster)
        );
        p1.resume();
        // The broker no longer knows the session: the consumer starts over.
        fail_fetches(&cluster, FakeCode::FETCH_SESSION_ID_NOT_FOUND, 1);
        eventually("the session error answered", || {
            cluster.faults_left(Some(FakeApi::Fetch)) == 0
        })
        .await;
        append(&cluster, "t", 1, &["d"], Compression::None);
        let got = take(&mut p1, 1).await;
        assert_eq!(values(&got), ["d"]);
        let seen = fetches(&cluster);
        let reset = seen
            .iter()
            .rposition(|f| f.session_id == 0)
            .expect("a new full fetch");
        assert!(reset > 0);
        assert_eq!(seen[reset - 1].session_id, session, "{seen:?}");
        assert_eq!(seen[reset].epoch, 0);
        assert_eq!(seen[reset].partitions.len(), 2, "{seen:?}");
        // Wrong epochs reset too: a new session is opened.
        let newest = cluster
            .fetch_sessions()
            .into_iter()
            .max()
            .expect("a session");
        fail_fetches(&cluster, FakeCode::INVALID_FETCH_SESSION_EPOCH, 1);
        eventually("the epoch error answered", || {
            cluster.faults_left(Some(FakeApi::Fetch)) == 0
        })
        .await;
        append(&cluster, "t", 0, &["e"], Compression::None);
        assert_eq!(values(&take(&mut p0, 1).await), ["e"]);
        let last = cluster
            .fetch_sessions()
            .into_iter()
            .max()
            .expect("a session");
        assert!(last > newest);
        // Closing the consumer closes the session (epoch -1).
        consumer.close().await;
        let seen = fetches(&cluster);
        let closed = seen.last().unwrap();
        assert_eq!((closed.session_id, closed.epoch), (last, -1), "{seen:?}");
        assert!(!cluster.fetch_sessions().contains(&last));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_sessions_every_fetch_is_full() {
    bounded(async {
        let cluster = start(1, &[("t", 2)]).await;
        cluster.offer_versions(FakeApi::Fetch, 0, 6);
        append(&cluster, "t", 0, &["a", "b"], Compression::Gzip);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let _p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut p0, 2).await), ["a", "b"]);
        // On the paused clock: 175 ms are 3 more long polls of 50 ms.
        tokio::time::sleep(Duration::from_millis(175)).await;
        let seen = fetches(&cluster);
        assert!(seen.len() >= 4, "fetches to check: {seen:?}");
        assert!(seen.iter().all(|f| f.version == 6), "{seen:?}");
        for f in seen.iter().skip(2) {
            assert_eq!(f.partitions.len(), 2, "a v6 fetch lists every partition");
        }
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn out_of_range_offsets_follow_the_reset_policy() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        append(&cluster, "t", 0, &["a", "b"], Compression::None);

        let consumer =
            consumer_with(&cluster, |_, o| o.offset_reset = OffsetResetPolicy::Oldest).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        assert_eq!(pc.recv().await.unwrap().unwrap().offset, 0);
        consumer.close().await;

        let consumer =
            consumer_with(&cluster, |_, o| o.offset_reset = OffsetResetPolicy::Newest).await;
        let earlier = fetches(&cluster).len();
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        // Reset to the newest offset (2) before "c" is appended there.
        eventually("a fetch at the newest offset", || {
            fetches(&cluster)[earlier..]
                .iter()
                .any(|f| f.partitions.iter().any(|p| p.1 == 0 && p.2 == 2))
        })
        .await;
        append(&cluster, "t", 0, &["c"], Compression::None);
        let r = pc.recv().await.unwrap().unwrap();
        assert_eq!((r.offset, values(&[r])[0].as_str()), (2, "c"));
        consumer.close().await;

        // auto.offset.reset=none maps to the error policy.
        let consumer = consumer_with(&cluster, |c, o| {
            c.consumer.auto_offset_reset = crate::config::OffsetReset::None;
            o.offset_reset = c.consumer.auto_offset_reset.into();
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        let e = pc.recv().await.unwrap().unwrap_err();
        assert_eq!(e.kafka_code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
        assert!(pc.recv().await.is_none(), "the stream ends after the error");
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_partition_follows_its_leader_to_another_broker() {
    bounded(async {
        let cluster = start(2, &[("t", 2)]).await;
        append(&cluster, "t", 0, &["a", "b"], Compression::None);
        append(&cluster, "t", 1, &["x"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut p0, 2).await), ["a", "b"]);
        assert_eq!(values(&take(&mut p1, 1).await), ["x"]);
        // Partition 0 moves to broker 2; broker 1 now says NOT_LEADER.
        cluster.move_leader("t", 0, 2).unwrap();
        append(&cluster, "t", 0, &["c", "d"], Compression::Snappy);
        append(&cluster, "t", 1, &["y"], Compression::None);
        let got = take(&mut p0, 2).await;
        assert_eq!(values(&got), ["c", "d"]);
        assert_eq!(offsets(&got), [2, 3]);
        assert_eq!(values(&take(&mut p1, 1).await), ["y"]);
        let seen = fetches(&cluster);
        assert!(
            seen.iter()
                .any(|f| f.broker == 2 && f.partitions.iter().any(|p| p.1 == 0 && p.2 == 2)),
            "partition 0 was fetched from broker 2 at offset 2: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|f| f.broker != 2 || f.partitions.iter().all(|p| p.1 == 0)),
            "partition 1 stayed on broker 1"
        );
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn partitions_of_a_broker_that_dies_move_to_the_new_leader() {
    bounded(async {
        let cluster = start(2, &[("t", 1)]).await;
        append(&cluster, "t", 0, &["a"], Compression::None);
        let consumer = consumer_with(&cluster, |c, _| {
            c.net.bootstrap_servers.push(cluster.addresses()[1].clone());
            c.net.request_timeout = Duration::from_secs(2);
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut pc, 1).await), ["a"]);
        // Broker 1 stops; broker 2, the other replica, leads.
        cluster.stop_broker(1).unwrap();
        assert_eq!(cluster.leader("t", 0), Some(2));
        append(&cluster, "t", 0, &["b", "c"], Compression::None);
        let got = take(&mut pc, 2).await;
        assert_eq!(offsets(&got), [1, 2]);
        assert!(fetches(&cluster).iter().any(|f| f.broker == 2));
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn leader_epoch_and_metadata_errors_refresh_and_resume_at_the_same_offset() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        // Two elections: leader epoch 2, which fetches must carry.
        cluster.stop_broker(1).unwrap();
        cluster.start_broker(1).await.unwrap();
        let epoch = 2;
        append(&cluster, "t", 0, &["a", "b"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut pc, 2).await), ["a", "b"]);
        let before = cluster.requests(None, FakeApi::Metadata);
        let fetched = fetches(&cluster).len();
        for code in [
            FakeCode::FENCED_LEADER_EPOCH,
            FakeCode::UNKNOWN_TOPIC_OR_PARTITION,
            FakeCode::UNKNOWN_LEADER_EPOCH,
            FakeCode::NOT_LEADER_OR_FOLLOWER,
        ] {
            fail_fetches(&cluster, code, 1);
        }
        // Each error is answered to a fetch of the partition.
        eventually("the four errors answered", || {
            cluster.faults_left(Some(FakeApi::Fetch)) == 0
        })
        .await;
        append(&cluster, "t", 0, &["c"], Compression::None);
        let got = take(&mut pc, 1).await;
        assert_eq!(
            (offsets(&got), values(&got)),
            (vec![2], vec!["c".to_string()])
        );
        assert!(
            cluster.requests(None, FakeApi::Metadata) >= before + 4,
            "one refresh per error"
        );
        let seen = fetches(&cluster);
        // Every fetch since asked for offset 2 where it named the partition.
        assert!(
            seen[fetched..]
                .iter()
                .all(|f| f.partitions.iter().all(|p| p.2 == 2)),
            "{seen:?}"
        );
        // Fetches carry the leader epoch from metadata (KIP-320).
        assert!(
            seen.iter()
                .all(|f| f.partitions.iter().all(|p| p.3 == epoch)),
            "{seen:?}"
        );
        // A non-retriable error ends the stream with it.
        fail_fetches(&cluster, FakeCode::TOPIC_AUTHORIZATION_FAILED, 1);
        eventually("the error answered", || {
            cluster.faults_left(Some(FakeApi::Fetch)) == 0
        })
        .await;
        append(&cluster, "t", 0, &["d"], Compression::None);
        let e = pc.recv().await.unwrap().unwrap_err();
        assert_eq!(e.kafka_code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
        assert!(pc.recv().await.is_none());
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn paused_partitions_are_not_fetched_until_resumed() {
    bounded(async {
        let cluster = start(1, &[("t", 2)]).await;
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        p0.pause();
        assert!(p0.is_paused());
        // The fetch in flight when pausing may still list p0; on the paused
        // clock it has been answered after 100 ms (long polls are 50 ms).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = fetches(&cluster).len();
        append(&cluster, "t", 0, &["a"], Compression::None);
        append(&cluster, "t", 1, &["b"], Compression::None);
        assert_eq!(values(&take(&mut p1, 1).await), ["b"]);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), p0.recv())
                .await
                .is_err(),
            "a paused partition delivered a record"
        );
        for f in &fetches(&cluster)[before..] {
            assert!(
                f.partitions.iter().all(|p| p.1 != 0),
                "paused partition fetched: {f:?}"
            );
        }
        p0.resume();
        assert_eq!(values(&take(&mut p0, 1).await), ["a"]);
        // pause_all stops every partition.
        consumer.pause_all();
        // As above: the fetch in flight ends, then nothing for 200 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = fetches(&cluster).len();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            fetches(&cluster).len(),
            n,
            "fetches while everything is paused"
        );
        consumer.resume_all();
        append(&cluster, "t", 1, &["c"], Compression::None);
        assert_eq!(values(&take(&mut p1, 1).await), ["c"]);
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_full_prefetch_buffer_stops_fetching_that_partition() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        for i in 0..20 {
            append(&cluster, "t", 0, &[&format!("v{i}")], Compression::None);
        }
        // The size of the first batch as stored.
        let one_batch = batch_bytes(0, &["v0"], Compression::None).len();
        let consumer = consumer_with(&cluster, |c, o| {
            c.consumer.max_partition_fetch_bytes = one_batch as u32;
            o.prefetch_chunks = 1;
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        // Six long polls' worth of the paused clock with nobody reading:
        // one chunk in the buffer, and at most one more held by the fetcher.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fetched = fetches(&cluster).len();
        assert!(fetched <= 2, "{fetched} fetches with nobody reading");
        let got = take(&mut pc, 20).await;
        assert_eq!(offsets(&got), (0..20).collect::<Vec<_>>());
        assert!(fetches(&cluster).len() >= 10);
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn truncated_tails_and_batches_bigger_than_the_limit() {
    bounded(async {
        // Brokers slice the log at the limit, so an answer may end in part
        // of a batch. From Fetch v3 the first batch comes whole however big
        // (KIP-74); at v2 (brokers before KIP-74) even it is cut, and the
        // consumer must raise its limit to read it.
        for (fetch_version, cuts_first_batch) in [(12, false), (2, true)] {
            let cluster = start(1, &[("t", 1)]).await;
            cluster.slice_fetches(true);
            cluster.offer_versions(FakeApi::Fetch, 0, fetch_version);
            append(&cluster, "t", 0, &["small"], Compression::None);
            let big = "x".repeat(5000);
            append(&cluster, "t", 0, &[&big, &big], Compression::None);
            append(&cluster, "t", 0, &["after"], Compression::None);
            let consumer =
                consumer_with(&cluster, |c, _| c.consumer.max_partition_fetch_bytes = 1000).await;
            let mut pc = consumer
                .consume_partition("t", 0, StartOffset::Oldest)
                .await
                .unwrap();
            let got = take(&mut pc, 4).await;
            assert_eq!(offsets(&got), [0, 1, 2, 3]);
            assert_eq!(got[1].value.as_ref().unwrap().len(), 5000);
            let seen = fetches(&cluster);
            assert!(seen.iter().all(|f| f.version == fetch_version), "{seen:?}");
            // The first fetch came back with a partial tail after "small";
            // the next one asked from the big batch.
            assert!(seen.iter().any(|f| f.partitions.iter().any(|p| p.2 == 1)));
            if cuts_first_batch {
                // Cut short, the big batch was asked for again with a limit
                // raised to its size.
                assert!(
                    seen.iter()
                        .any(|f| f.partitions.iter().any(|p| p.2 == 1 && p.4 > 1000)),
                    "{seen:?}"
                );
            }
            consumer.close().await;
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn control_records_are_hidden_and_read_committed_drops_aborted_data() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        let txn = |pid: i64, v: &'static str| {
            let mut b = RecordBatch::new(0, 0);
            b.is_transactional = true;
            b.producer_id = pid;
            b.records
                .push(Record::new(None, Some(Bytes::from_static(v.as_bytes()))));
            b
        };
        append_batch(&cluster, "t", 0, txn(7, "aborted"));
        append_batch(
            &cluster,
            "t",
            0,
            ControlRecord::end_transaction(false, 0).to_batch(0, 0, 7, 0),
        );
        append_batch(&cluster, "t", 0, txn(8, "committed"));
        append_batch(
            &cluster,
            "t",
            0,
            ControlRecord::end_transaction(true, 0).to_batch(0, 0, 8, 0),
        );
        append(&cluster, "t", 0, &["plain"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 3).await;
        assert_eq!(values(&got), ["aborted", "committed", "plain"]);
        assert_eq!(offsets(&got), [0, 2, 4]);
        consumer.close().await;

        let consumer = consumer_with(&cluster, |c, _| {
            c.consumer.isolation_level = crate::config::IsolationLevel::ReadCommitted;
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 2).await;
        assert_eq!(values(&got), ["committed", "plain"]);
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_position_passes_a_closing_marker_that_no_record_follows() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        let mut b = RecordBatch::new(0, 0);
        b.is_transactional = true;
        b.producer_id = 9;
        for (i, v) in ["one", "two"].into_iter().enumerate() {
            let mut r = Record::new(None, Some(Bytes::from_static(v.as_bytes())));
            r.offset_delta = i as i32;
            b.records.push(r);
        }
        append_batch(&cluster, "t", 0, b);
        append_batch(
            &cluster,
            "t",
            0,
            ControlRecord::end_transaction(true, 0).to_batch(0, 0, 9, 0),
        );
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(pc.position(), -1, "nothing read yet");
        let first = pc.recv().await.unwrap().unwrap();
        assert_eq!(first.offset, 0);
        assert_eq!(pc.position(), 1, "the next record is pending");
        let second = pc.recv().await.unwrap().unwrap();
        assert_eq!(second.offset, 1);
        assert_eq!(pc.position(), 2, "the marker is not read yet");
        // No record comes: the wait is cut short, and the marker was
        // passed meanwhile (recv is cancel-safe).
        let waited = tokio::time::timeout(Duration::from_millis(500), pc.recv()).await;
        assert!(waited.is_err(), "no record after the marker");
        assert_eq!(pc.high_water_mark(), 3);
        assert_eq!(pc.position(), 3, "at the end: past the marker");
        // The control: a record appended now is still delivered.
        append(&cluster, "t", 0, &["after"], Compression::None);
        let after = pc.recv().await.unwrap().unwrap();
        assert_eq!((after.offset, pc.position()), (3, 4));
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_fetch_per_broker_covers_all_its_partitions() {
    bounded(async {
        let cluster = start(1, &[("a", 4), ("b", 4)]).await;
        for t in ["a", "b"] {
            for p in 0..4 {
                append(&cluster, t, p, &[&format!("{t}{p}")], Compression::None);
            }
        }
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        consumer.pause_all();
        let mut pcs = Vec::new();
        for t in ["a", "b"] {
            for p in 0..4 {
                pcs.push(
                    consumer
                        .consume_partition(t, p, StartOffset::Oldest)
                        .await
                        .unwrap(),
                );
            }
        }
        consumer.resume_all();
        for pc in &mut pcs {
            let r = pc.recv().await.unwrap().unwrap();
            assert_eq!(
                values(std::slice::from_ref(&r))[0],
                format!("{}{}", r.topic, r.partition)
            );
        }
        let seen = fetches(&cluster);
        assert_eq!(
            seen[0].partitions.len(),
            8,
            "the first fetch covers all 8: {seen:?}"
        );
        assert_eq!(
            cluster.peak_in_flight(Some(1), FakeApi::Fetch),
            1,
            "one Fetch at a time per broker"
        );
        consumer.close().await;
    })
    .await;
}

/// One answer ends the first partition the fetcher tracks and brings
/// data for the ones after it: the partition that leaves makes room by
/// moving the last one into its place, and each partition still gets its
/// own data.
#[tokio::test(start_paused = true)]
async fn a_partition_that_ends_leaves_the_answer_for_the_others_intact() {
    bounded(async {
        let cluster = start(1, &[("t", 4)]).await;
        for p in 0..4 {
            append(&cluster, "t", p, &[&format!("v{p}")], Compression::None);
        }
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        consumer.pause_all();
        let mut pcs = Vec::new();
        for p in 0..4 {
            pcs.push(
                consumer
                    .consume_partition("t", p, StartOffset::Oldest)
                    .await
                    .unwrap(),
            );
        }
        cluster
            .inject_partition_error(
                FakeApi::Fetch,
                None,
                "t",
                0,
                FakeCode::TOPIC_AUTHORIZATION_FAILED,
                1,
            )
            .unwrap();
        consumer.resume_all();
        let e = pcs[0].recv().await.unwrap().unwrap_err();
        assert_eq!(
            e.kafka_code(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            "{e}"
        );
        for (p, pc) in pcs.iter_mut().enumerate().skip(1) {
            let r = pc.recv().await.unwrap().unwrap();
            assert_eq!(
                (r.partition, values(&[r])),
                (p as i32, vec![format!("v{p}")])
            );
        }
        let seen = fetches(&cluster);
        assert_eq!(
            seen[0].partitions.len(),
            4,
            "one answer for all four: {seen:?}"
        );
        consumer.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn closing_ends_the_streams_and_the_fetchers() {
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        append(&cluster, "t", 0, &["a"], Compression::None);
        let consumer = consumer_with(&cluster, |c, _| {
            c.consumer.fetch_max_wait = Duration::from_secs(3);
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut pc, 1).await), ["a"]);
        let c2 = consumer.clone();
        // A long poll is in flight; close does not wait for it.
        eventually("a long poll in flight", || {
            cluster.in_flight(Some(1), FakeApi::Fetch) == 1
        })
        .await;
        let started = Instant::now();
        consumer.close().await;
        // On the paused clock: at most the 1 s that closing the fetch
        // session may take (its request waits behind the long poll at the
        // broker), not the 3 s long poll.
        let took = started.elapsed();
        assert!(took <= Duration::from_secs(1), "close took {took:?}");
        assert!(pc.recv().await.is_none());
        assert!(
            c2.consume_partition("t", 0, StartOffset::Oldest)
                .await
                .is_err()
        );
    })
    .await;
}

#[test]
fn walk_finds_complete_entries_and_the_partial_size() {
    let mut b = RecordBatch::new(10, 0);
    for i in 0..3 {
        b.records
            .push(Record::new(None, Some(Bytes::from_static(b"v"))).with_offset_delta(i));
    }
    let one = b.encode_to_vec(&EncodeOptions::default()).unwrap();
    let mut data = one.clone();
    data.extend_from_slice(&one[..20]);
    let w = fetcher::walk(&data).unwrap();
    assert_eq!(w.complete, one.len());
    assert_eq!(w.next_offset, 13);
    assert_eq!(w.partial_size, Some(one.len()));
    let w = fetcher::walk(&data[..5]).unwrap();
    assert_eq!((w.complete, w.partial_size), (0, None));
    let mut bad = one.clone();
    bad[16] = 9;
    assert!(fetcher::walk(&bad).is_err());
    bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(fetcher::walk(&bad).is_err());
}

#[tokio::test(start_paused = true)]
async fn legacy_message_sets_are_read_with_offsets_and_timestamps() {
    use crate::protocol::records::{LegacyMagic, LegacyMessage, TimestampType, encode_message_set};
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        let msg = |offset: i64, v: &'static str| LegacyMessage {
            offset,
            timestamp: Some(500 + offset),
            key: None,
            value: Some(Bytes::from_static(v.as_bytes())),
        };
        // A gzip wrapper (magic 1) with offsets 0..3, then a plain magic-1
        // message at 3.
        let mut data = Vec::new();
        encode_message_set(
            &[msg(0, "a"), msg(1, "b"), msg(2, "c")],
            LegacyMagic::V1,
            TimestampType::CreateTime,
            &EncodeOptions::compressed(Compression::Gzip),
            &mut data,
        )
        .unwrap();
        encode_message_set(
            &[msg(3, "d")],
            LegacyMagic::V1,
            TimestampType::CreateTime,
            &EncodeOptions::default(),
            &mut data,
        )
        .unwrap();
        // Stored as written: the log's offsets are already theirs.
        assert_eq!(cluster.append_raw("t", 0, &data), Ok(0));
        assert_eq!(cluster.high_watermark("t", 0), Some(4));
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(1))
            .await
            .unwrap();
        let got = take(&mut pc, 3).await;
        assert_eq!(offsets(&got), [1, 2, 3]);
        assert_eq!(values(&got), ["b", "c", "d"]);
        assert_eq!(got[0].timestamp, 501);
        consumer.close().await;
    })
    .await;
}

/// (broker asked, partitions) of every Fetch that read high watermarks:
/// those that ask one byte of each partition.
fn watermark_fetches(c: &FakeCluster) -> Vec<(i32, Vec<i32>)> {
    c.history()
        .iter()
        .filter_map(|r| match &r.body {
            FakeBody::Fetch(req) if req.max_bytes == 1 => Some((
                r.broker,
                req.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.partition))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn newest_starts_take_one_list_offsets_and_one_fetch_per_leader() {
    bounded(async {
        let cluster = start(2, &[("t", 4)]).await;
        for p in [1, 3] {
            cluster
                .move_leader("t", p, 2)
                .expect("broker 2 is a replica");
        }
        for p in 0..4 {
            append(&cluster, "t", p, &[&format!("a{p}")], Compression::None);
            append(&cluster, "t", p, &[&format!("b{p}")], Compression::None);
        }
        let consumer = consumer_with(&cluster, |_, _| {}).await;

        let pcs = consumer
            .consume_partitions("t", &[3, 1, 0, 2], StartOffset::Newest)
            .await
            .unwrap();
        // Each leader was asked once for its partitions' log starts and
        // once, by Fetch, for their watermarks.
        let mut listed = list_offsets_requests(&cluster);
        listed.sort();
        assert_eq!(listed, [(1, vec![0, 2]), (2, vec![3, 1])]);
        let mut fetched = watermark_fetches(&cluster);
        fetched.sort();
        assert_eq!(fetched, [(1, vec![0, 2]), (2, vec![3, 1])]);
        // They start at the end: only what is written now arrives.
        for p in 0..4 {
            append(&cluster, "t", p, &[&format!("c{p}")], Compression::None);
        }
        for mut pc in pcs {
            let p = pc.partition();
            let got = take(&mut pc, 1).await;
            assert_eq!(
                (values(&got), offsets(&got)),
                (vec![format!("c{p}")], vec![2])
            );
            pc.close().await;
        }

        // The control: one partition alone takes the one-partition path,
        // one ListOffsets and one Fetch of its own.
        let mut pc = consumer
            .consume_partition("t", 1, StartOffset::Newest)
            .await
            .unwrap();
        assert_eq!(list_offsets_requests(&cluster).len(), 3);
        assert_eq!(watermark_fetches(&cluster).len(), 3);
        append(&cluster, "t", 1, &["d1"], Compression::None);
        assert_eq!(values(&take(&mut pc, 1).await), ["d1"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn consume_partitions_resolves_every_start_in_one_list_offsets() {
    bounded(async {
        let cluster = start(1, &[("t", 4)]).await;
        for p in 0..4 {
            append(&cluster, "t", p, &[&format!("a{p}")], Compression::None);
            append(&cluster, "t", p, &[&format!("b{p}")], Compression::None);
        }
        let consumer = consumer_with(&cluster, |_, _| {}).await;

        let pcs = consumer
            .consume_partitions("t", &[3, 1, 0, 2], StartOffset::Oldest)
            .await
            .unwrap();
        let order: Vec<i32> = pcs.iter().map(|pc| pc.partition()).collect();
        assert_eq!(order, [3, 1, 0, 2]);
        for mut pc in pcs {
            let p = pc.partition();
            assert_eq!(
                values(&take(&mut pc, 2).await),
                [format!("a{p}"), format!("b{p}")]
            );
            pc.close().await;
        }
        assert_eq!(list_offsets_requests(&cluster), [(1, vec![3, 1, 0, 2])]);

        // By time: 1001 is the second record's timestamp in every
        // partition; a time after every record starts at the end.
        let pcs = consumer
            .consume_partitions("t", &[0, 1], StartOffset::Timestamp(1_001))
            .await
            .unwrap();
        for mut pc in pcs {
            let p = pc.partition();
            assert_eq!(values(&take(&mut pc, 1).await), [format!("b{p}")]);
            pc.close().await;
        }
        let mut pcs = consumer
            .consume_partitions("t", &[2], StartOffset::Timestamp(9_999))
            .await
            .unwrap();
        append(&cluster, "t", 2, &["c2"], Compression::None);
        assert_eq!(values(&take(&mut pcs[0], 1).await), ["c2"]);
        // One by time for [0, 1], one by time for [2] and the log start
        // the high watermark's Fetch reads from.
        assert_eq!(
            list_offsets_requests(&cluster)[1..],
            [(1, vec![0, 1]), (1, vec![2]), (1, vec![2])]
        );

        // A partition listed twice, or one already consumed, starts
        // nothing, and leaves every other partition free.
        let err = consumer
            .consume_partitions("t", &[0, 1, 0], StartOffset::Oldest)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("t/0 is already being consumed"),
            "{err}"
        );
        let err = consumer
            .consume_partitions("t", &[1, 2], StartOffset::Oldest)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("t/2 is already being consumed"),
            "{err}"
        );
        assert_eq!(err.kind(), crate::error::ErrorKind::State, "{err}");
        let mut pc = consumer
            .consume_partition("t", 1, StartOffset::Offset(1))
            .await
            .expect("t/1 was released");
        assert_eq!(values(&take(&mut pc, 1).await), ["b1"]);
        assert_eq!(
            list_offsets_requests(&cluster).len(),
            4,
            "nothing asked for the refused calls"
        );
    })
    .await;
}

/// A small compressed batch that decompresses past the cap (by default
/// `fetch.max.bytes`) fails to decode, naming the cap, and nothing past the
/// cap is allocated for it; `fetch.max.decompressed.bytes` raises the cap.
#[tokio::test]
async fn a_batch_decompressing_past_the_fetch_budget_is_refused() {
    use crate::protocol::error::DecodeErrorKind;
    bounded(async {
        let cluster = start(1, &[("t", 1)]).await;
        let value = "a".repeat(1024);
        let values: Vec<&str> = (0..100).map(|_| value.as_str()).collect();
        let bytes = batch_bytes(0, &values, Compression::Zstd);
        assert!(bytes.len() < 4096, "small on the wire: {}", bytes.len());
        assert_eq!(cluster.append_raw("t", 0, &bytes), Ok(0));
        let budget = 64 * 1024;

        let consumer = consumer_with(&cluster, |c, _| c.consumer.fetch_max_bytes = budget).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let err = pc.recv().await.expect("open").unwrap_err();
        match &err {
            Error::Decode(d) => assert_eq!(
                d.kind(),
                &DecodeErrorKind::DecompressedTooLarge {
                    limit: budget as usize
                }
            ),
            other => panic!("{other:?}"),
        }
        consumer.close().await;

        let consumer = consumer_with(&cluster, |c, _| {
            c.consumer.fetch_max_bytes = budget;
            c.consumer.fetch_max_decompressed_bytes = Some(1 << 20);
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 100).await;
        assert_eq!(offsets(&got), (0..100).collect::<Vec<i64>>());
        assert!(
            got.iter()
                .all(|r| r.value.as_deref() == Some(value.as_bytes()))
        );
        consumer.close().await;
    })
    .await;
}
