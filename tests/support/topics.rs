//! Creating topics on the test brokers, and waiting until they serve.
//!
//! Apache Kafka (KRaft) answers CreateTopics once the controller has
//! committed the topic; the brokers learn of it, and elect leaders, a moment
//! later. A Produce or Fetch sent in that moment gets
//! UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER. So creating a topic
//! here means: CreateTopics, then metadata until every partition has a
//! leader, then a ListOffsets answered by each leader.

use std::time::{Duration, Instant};

use klamm::client::{OffsetSpec, TrafficClass};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::create_partitions_request::CreatePartitionsTopic;
use klamm::protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use klamm::protocol::messages::delete_topics_request::DeleteTopicState;
use klamm::protocol::messages::metadata_request::MetadataRequestTopic;
use klamm::protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
};
use klamm::{Client, Error};

/// What to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor` (1 on the single node,
    /// 3 on the three-node cluster).
    pub replication: i16,
    /// Topic configs, e.g. `("max.message.bytes", "2000")`.
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: &str, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            partitions,
            replication: -1,
            configs: Vec::new(),
        }
    }

    pub fn replication(mut self, factor: i16) -> TopicSpec {
        self.replication = factor;
        self
    }

    pub fn config(mut self, key: &str, value: &str) -> TopicSpec {
        self.configs.push((key.to_string(), value.to_string()));
        self
    }
}

/// Creates `name` with `partitions` partitions at the broker's default
/// replication factor, and waits until every partition serves.
pub async fn create_topic(client: &Client, name: &str, partitions: i32) {
    create(client, &TopicSpec::new(name, partitions)).await
}

/// Creates the topic `spec` describes, and waits until every partition
/// serves. Fails the test if the broker refuses it.
pub async fn create(client: &Client, spec: &TopicSpec) {
    let code = try_create(client, spec).await;
    assert_eq!(code, ErrorCode::NONE, "CreateTopics {spec:?}");
    wait_until_served(client, &spec.name, spec.partitions).await;
}

/// A connection to the controller the client knows (topic and config
/// changes go there).
pub async fn controller_connection(client: &Client) -> klamm::net::Connection {
    let controller = client.controller().await.expect("controller");
    client
        .connection(&controller, TrafficClass::Other)
        .await
        .expect("connection")
}

/// Sends CreateTopics for `spec` through the controller the client knows
/// and returns the topic's error code (nothing is waited for).
pub async fn try_create(client: &Client, spec: &TopicSpec) -> ErrorCode {
    let conn = controller_connection(client).await;
    let resp = conn
        .send(&CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: spec.name.clone(),
                num_partitions: spec.partitions,
                replication_factor: spec.replication,
                configs: spec
                    .configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig {
                        name: k.clone(),
                        value: Some(v.clone()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        })
        .await
        .expect("CreateTopics");
    let t = &resp.topics[0];
    let code = ErrorCode(t.error_code);
    if !code.is_ok() {
        eprintln!("CreateTopics {}: {code:?} {:?}", spec.name, t.error_message);
    }
    code
}

/// Deletes `topic` (DeleteTopics through the controller, by name) and
/// waits (up to 60 s) until the controller's metadata answers
/// UNKNOWN_TOPIC_OR_PARTITION for it (asked without auto-creation; the
/// client's own metadata is left as it was).
pub async fn delete(client: &Client, topic: &str) {
    let conn = controller_connection(client).await;
    let resp = conn
        .send(&DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(topic.to_string()),
                ..Default::default()
            }],
            topic_names: vec![topic.to_string()],
            timeout_ms: 30_000,
            ..Default::default()
        })
        .await
        .expect("DeleteTopics");
    let r = &resp.responses[0];
    assert_eq!(
        ErrorCode(r.error_code),
        ErrorCode::NONE,
        "DeleteTopics {topic}: {:?}",
        r.error_message
    );
    let start = Instant::now();
    loop {
        let resp = conn
            .send(&MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(topic.to_string()),
                    ..Default::default()
                }]),
                allow_auto_topic_creation: false,
                ..Default::default()
            })
            .await
            .expect("Metadata");
        if resp.topics.iter().all(|t| {
            t.name.as_deref() != Some(topic)
                || ErrorCode(t.error_code) == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        }) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{topic} still listed 60 s after DeleteTopics"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Grows `topic` to `count` partitions (CreatePartitions through the
/// controller) and waits until every partition serves.
pub async fn grow(client: &Client, topic: &str, count: i32) {
    let conn = controller_connection(client).await;
    let resp = conn
        .send(&CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.to_string(),
                count,
                // Null: the controller places the new partitions.
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        })
        .await
        .expect("CreatePartitions");
    let r = &resp.results[0];
    assert_eq!(
        ErrorCode(r.error_code),
        ErrorCode::NONE,
        "CreatePartitions {topic} to {count}: {:?}",
        r.error_message
    );
    wait_until_served(client, topic, count).await;
}

/// Waits (up to 60 s) until metadata names a leader for each of the
/// topic's `partitions` partitions and each leader answers ListOffsets.
pub async fn wait_until_served(client: &Client, topic: &str, partitions: i32) {
    let start = Instant::now();
    loop {
        let Err(last) = served(client, topic, partitions).await else {
            return;
        };
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{topic} not served within 60 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn served(client: &Client, topic: &str, partitions: i32) -> Result<(), String> {
    let text = |e: Error| e.to_string();
    client
        .refresh_metadata(Some(&[topic.to_string()]))
        .await
        .map_err(text)?;
    let known = client.partitions(topic).await.map_err(text)?;
    if known.len() != partitions as usize {
        return Err(format!("metadata has {} partitions", known.len()));
    }
    for p in 0..partitions {
        client
            .list_offsets(topic, p, OffsetSpec::Newest)
            .await
            .map_err(|e| format!("{topic}/{p}: {e}"))?;
    }
    Ok(())
}
