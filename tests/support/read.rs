//! Reading what a broker stored with plain Fetch requests (klamm's consumer
//! is not used, so a writer is checked against the stored batches), and a
//! producer config for tests.

use std::time::Duration;

use bytes::Bytes;
use klamm::client::TrafficClass;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::fetch_response::PartitionData;
use klamm::protocol::messages::{ApiKey, FetchRequest};
use klamm::protocol::records::{DecodeOptions, Header, RecordBatch};
use klamm::{Client, Config};

/// A record as the broker stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The record's own sequence number (the batch's base + its index).
    pub sequence: i32,
    /// Whether it came in a transactional batch.
    pub transactional: bool,
}

/// Every record batch of a partition (data and control batches), from
/// offset 0 to the high watermark, exactly as the broker stores them.
pub async fn stored_batches(client: &Client, topic: &str, partition: i32) -> Vec<RecordBatch> {
    stored_batches_with(client, topic, partition, &DecodeOptions::default()).await
}

/// [`stored_batches`] with decode options (librdkafka's mock writes control
/// batches with CRC 0).
pub async fn stored_batches_with(
    client: &Client,
    topic: &str,
    partition: i32,
    options: &DecodeOptions,
) -> Vec<RecordBatch> {
    stored_batches_sized(client, topic, partition, options)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect()
}

/// Every record batch of a partition with its size on the wire (the
/// stored bytes: header and, compressed or not, records), from offset 0 to
/// the high watermark.
pub async fn stored_batches_sized(
    client: &Client,
    topic: &str,
    partition: i32,
    options: &DecodeOptions,
) -> Vec<(RecordBatch, usize)> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    let mut idle = 0;
    for _ in 0..100_000 {
        let leader = match client.leader(topic, partition).await {
            Ok(l) => l,
            Err(_) => {
                let _ = client.refresh_metadata(Some(&[topic.to_string()])).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(conn) = client.connection(&leader, TrafficClass::Fetch).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // v13+ name topics by id; these reads name them.
        let version = conn
            .api_versions()
            .version_for(ApiKey::Fetch, conn.broker())
            .expect("fetch version")
            .min(12);
        let req = fetch_request(topic, partition, offset, 0, 100, 1);
        let resp = match conn.send_version(&req, version).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => panic!("fetch {topic}/{partition} at {offset}: {e}"),
        };
        let p = &resp.responses[0].partitions[0];
        let code = ErrorCode(p.error_code);
        if !code.is_ok() {
            assert!(
                code.is_retriable(),
                "fetch {topic}/{partition} at {offset}: {code:?}"
            );
            // A leader moved: ask again where it is.
            let _ = client.refresh_metadata(Some(&[topic.to_string()])).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if offset >= p.high_watermark {
            return out;
        }
        let before = offset;
        for (b, size) in entries(p, options) {
            if b.next_offset() <= offset {
                continue;
            }
            offset = b.next_offset();
            out.push((b, size));
        }
        if offset == before {
            idle += 1;
            assert!(
                idle < 200,
                "{topic}/{partition}: no progress at {offset} below the high watermark {}",
                p.high_watermark
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            idle = 0;
        }
    }
    panic!("reading {topic}/{partition} did not reach the high watermark");
}

/// Every data record of a partition, from offset 0 to the high watermark
/// (control records left out).
pub async fn read_partition(client: &Client, topic: &str, partition: i32) -> Vec<Stored> {
    records_of(&stored_batches(client, topic, partition).await)
}

/// The data records of `batches`, in order.
pub fn records_of(batches: &[RecordBatch]) -> Vec<Stored> {
    let mut out = Vec::new();
    for b in batches.iter().filter(|b| !b.is_control) {
        for (i, r) in b.iter().enumerate() {
            out.push(Stored {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.record.key.clone(),
                value: r.record.value.clone(),
                headers: r.record.headers.clone(),
                producer_id: b.producer_id,
                producer_epoch: b.producer_epoch,
                sequence: b.base_sequence.wrapping_add(i as i32),
                transactional: b.is_transactional,
            });
        }
    }
    out
}

/// The first record batch stored in `topic`/`partition`.
pub async fn first_batch(client: &Client, topic: &str, partition: i32) -> RecordBatch {
    stored_batches(client, topic, partition)
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{topic}/{partition}: no batch stored"))
}

/// A config for `addr` with a short linger, for tests.
pub fn config(addr: &str) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    config.net.client_id = "klamm-producer-test".into();
    config.producer.linger = Duration::from_millis(2);
    config
}

/// One Fetch of `topic`/`partition` at `offset` with `isolation_level`
/// (0 read_uncommitted, 1 read_committed), sent to the leader at the
/// highest version that names topics (v12 at most), sessionless: the
/// partition's answer as the broker gave it, error code included.
pub async fn fetch_once(
    client: &Client,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation_level: i8,
) -> PartitionData {
    let leader = client.leader(topic, partition).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Fetch)
        .await
        .expect("connection to the leader");
    let version = conn
        .api_versions()
        .version_for(ApiKey::Fetch, conn.broker())
        .expect("fetch version")
        .min(12);
    let req = fetch_request(topic, partition, offset, isolation_level, 10, 0);
    let resp = conn.send_version(&req, version).await.expect("fetch");
    assert_eq!(ErrorCode(resp.error_code), ErrorCode::NONE, "fetch");
    resp.responses
        .into_iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .unwrap_or_else(|| panic!("the fetch answer has no {topic}/{partition}"))
}

/// The data records and control batches of one Fetch answer's record set
/// (a partial batch at its end left out).
pub fn batches_of(data: &PartitionData) -> Vec<RecordBatch> {
    entries(data, &DecodeOptions::default())
        .into_iter()
        .map(|(b, _)| b)
        .collect()
}

/// The complete v2 batches of a Fetch answer's record set, each with its
/// stored size (the length field plus the 12 bytes before it); a partial
/// batch at the end is left out.
fn entries(data: &PartitionData, options: &DecodeOptions) -> Vec<(RecordBatch, usize)> {
    let mut rest = data.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    while rest.len() >= 17 {
        let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let size = usize::try_from(size).expect("entry size") + 12;
        if size > rest.len() {
            break;
        }
        assert_eq!(rest[16], 2, "a legacy message set in a Fetch answer");
        let mut entry = rest.split_to(size);
        out.push((
            RecordBatch::decode(&mut entry, options).expect("record batch"),
            size,
        ));
    }
    out
}

/// A sessionless Fetch of one partition at `offset`, naming the topic.
fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    isolation_level: i8,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes: 8 << 20,
        isolation_level,
        topics: vec![FetchTopic {
            topic: topic.to_string(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 4 << 20,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        session_epoch: -1,
        ..Default::default()
    }
}
