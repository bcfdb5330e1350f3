//! Produce requests sent raw to a partition's leader (acks=all), so a test
//! writes exactly the record batch it built, bypassing klamm's producer.

use bytes::Bytes;
use klamm::Client;
use klamm::client::TrafficClass;
use klamm::protocol::messages::ProduceRequest;
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::produce_response::PartitionProduceResponse;

/// Sends `records` (an encoded record set) to `topic`/`partition` at its
/// leader, with `transactional_id` when the batch is transactional, and
/// returns the partition's answer as the broker gave it.
pub async fn produce_raw(
    client: &Client,
    topic: &str,
    partition: i32,
    records: Bytes,
    transactional_id: Option<&str>,
) -> PartitionProduceResponse {
    produce_raw_up_to(client, topic, partition, records, transactional_id, None).await
}

/// [`produce_raw`] at the highest version both sides speak up to `max`
/// (`None`: `Connection::send`'s default, v11 at most). A transaction in
/// transactions V2 needs v12: that version adds the partition to it.
pub async fn produce_raw_up_to(
    client: &Client,
    topic: &str,
    partition: i32,
    records: Bytes,
    transactional_id: Option<&str>,
    max: Option<i16>,
) -> PartitionProduceResponse {
    let leader = client.leader(topic, partition).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Produce)
        .await
        .expect("connection");
    let version = match max {
        Some(max) => conn
            .api_versions()
            .version_up_to(
                klamm::protocol::messages::ApiKey::Produce,
                conn.broker(),
                max,
            )
            .expect("a Produce version"),
        None => conn
            .api_versions()
            .version_for(klamm::protocol::messages::ApiKey::Produce, conn.broker())
            .expect("a Produce version"),
    };
    let resp = conn
        .send_version(
            &ProduceRequest {
                transactional_id: transactional_id.map(str::to_string),
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![TopicProduceData {
                    name: topic.to_string(),
                    partition_data: vec![PartitionProduceData {
                        index: partition,
                        records: Some(records),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            version,
        )
        .await
        .expect("Produce");
    resp.responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .find(|p| p.index == partition)
        .unwrap_or_else(|| panic!("the Produce answer has no {topic}/{partition}"))
}
