//! Creating topics on the test brokers, and waiting until they serve.
//!
//! Apache Kafka (KRaft) answers CreateTopics once the controller has
//! committed the topic; the brokers learn of it, and elect leaders, a moment
//! later. A Produce or Fetch sent in that moment gets
//! UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER. So creating a topic
//! here means: CreateTopics, then metadata until every partition has a
//! leader, then a ListOffsets answered by each leader.

use std::time::{Duration, Instant};

use klamm::admin::{Admin, NewPartitions, NewTopic};
use klamm::client::OffsetSpec;
use klamm::protocol::error_codes::ErrorCode;
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

/// Creates the topic through klamm's `Admin` and returns its error code
/// (nothing is waited for).
pub async fn try_create(client: &Client, spec: &TopicSpec) -> ErrorCode {
    let mut topic = NewTopic::new(&spec.name, spec.partitions, spec.replication);
    for (k, v) in &spec.configs {
        topic = topic.with_config(k, v);
    }
    let mut created = Admin::new(client.clone()).create_topics(&[topic]).await;
    match created
        .remove(&spec.name)
        .expect("an outcome for the topic")
    {
        Ok(_) => ErrorCode::NONE,
        Err(e) => {
            eprintln!("CreateTopics {}: {e}", spec.name);
            e.kafka_code()
                .unwrap_or_else(|| panic!("CreateTopics {}: {e:?}", spec.name))
        }
    }
}

/// Deletes `topic` (klamm's `Admin`) and waits (up to 60 s) until
/// metadata answers UNKNOWN_TOPIC_OR_PARTITION for it (the admin never
/// creates topics by asking; the client's own metadata is left as it
/// was).
pub async fn delete(client: &Client, topic: &str) {
    let admin = Admin::new(client.clone());
    let deleted = admin.delete_topics(&[topic]).await;
    assert!(deleted[topic].is_ok(), "DeleteTopics {topic}: {deleted:?}");
    let start = Instant::now();
    loop {
        let described = admin.describe_topics(&[topic]).await;
        if described[topic]
            .as_ref()
            .is_err_and(|e| e.kafka_code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{topic} still listed 60 s after DeleteTopics"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Grows `topic` to `count` partitions (klamm's `Admin`) and waits until
/// every partition serves.
pub async fn grow(client: &Client, topic: &str, count: i32) {
    let grown = Admin::new(client.clone())
        .create_partitions(&[(topic, NewPartitions::increase_to(count))])
        .await;
    assert!(
        grown[topic].is_ok(),
        "CreatePartitions {topic} to {count}: {grown:?}"
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
