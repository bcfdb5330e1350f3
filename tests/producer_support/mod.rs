//! Shared by the producer tests: reading a partition back with plain Fetch
//! requests (the consumer is not used, so the producer is checked against
//! what the broker stored), and building producer configs.

#![allow(dead_code)]

pub mod relay;

use bytes::Bytes;
use klamm::client::TrafficClass;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::{ApiKey, FetchRequest};
use klamm::protocol::records::{Batch, DecodeOptions, Header, decode_record_set};
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
    pub base_sequence: i32,
}

/// Every record of a partition, from offset 0 to the high watermark.
pub async fn read_partition(client: &Client, topic: &str, partition: i32) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    for _ in 0..10_000 {
        let leader = client.leader(topic, partition).await.expect("leader");
        let conn = client
            .connection(&leader, TrafficClass::Fetch)
            .await
            .expect("connection");
        let version = conn
            .api_versions()
            .version_for(ApiKey::Fetch, conn.broker())
            .expect("fetch version")
            .min(11);
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 8 << 20,
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
        };
        let resp = match conn.send_version(&req, version).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => panic!("fetch {topic}/{partition} at {offset}: {e}"),
        };
        let p = &resp.responses[0].partitions[0];
        if p.error_code != 0 {
            // A leader moved: ask again where it is.
            let _ = client.refresh_metadata(Some(&[topic.to_string()])).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        let hwm = p.high_watermark;
        if offset >= hwm {
            return out;
        }
        let data = p.records.clone().unwrap_or_default();
        let set = decode_record_set(data, &DecodeOptions::default()).expect("record set");
        let before = offset;
        for b in set.batches {
            let Batch::V2(b) = b else {
                panic!("legacy batch")
            };
            for (i, r) in b.iter().enumerate() {
                if r.offset < offset {
                    continue;
                }
                out.push(Stored {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.record.key.clone(),
                    value: r.record.value.clone(),
                    headers: r.record.headers.clone(),
                    producer_id: b.producer_id,
                    base_sequence: b.base_sequence.wrapping_add(i as i32),
                });
            }
            offset = offset.max(b.next_offset());
        }
        if offset == before {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    panic!("reading {topic}/{partition} did not reach the high watermark");
}

/// Creates a topic through the client.
pub async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    use klamm::protocol::messages::CreateTopicsRequest;
    use klamm::protocol::messages::create_topics_request::CreatableTopic;
    let controller = client.controller().await.expect("controller");
    let conn = client
        .connection(&controller, TrafficClass::Other)
        .await
        .expect("connection");
    let created = conn
        .send(&CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: topic.to_string(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await
        .expect("CreateTopics");
    assert_eq!(created.topics[0].error_code, 0, "create {topic}");
}

/// A config for `addr` with a short linger, for tests.
pub fn config(addr: &str) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    config.net.client_id = "klamm-producer-test".into();
    config.producer.linger = std::time::Duration::from_millis(2);
    config
}
