//! Topic helpers for the scenarios of the library crates (`kasper/`,
//! `dpkafka/`, `goka/`), which include this file by path: create a topic
//! and wait until it serves, write numbered values, read a topic back,
//! read a group's committed offsets. klamm's public API only.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use klamm::Client;
use klamm::admin::{Admin, NewTopic};
use klamm::client::OffsetSpec;
use klamm::consumer::{Consumer, ConsumerRecord, StartOffset};
use klamm::group::{OffsetManager, TopicPartition};
use klamm::producer::{AsyncProducer, ProducerRecord};
use tokio::time::timeout;

/// Creates `name` and waits until every partition's leader answers.
pub async fn create(client: &Client, name: &str, partitions: i32) {
    let created = Admin::new(client.clone())
        .create_topics(&[NewTopic::new(name, partitions, 1)])
        .await;
    assert!(
        matches!(created.get(name), Some(Ok(_))),
        "CreateTopics {name}: {created:?}"
    );
    let all: Vec<i32> = (0..partitions).collect();
    timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(ends) = client
                .list_partition_offsets(name, &all, OffsetSpec::Newest)
                .await
                && ends.len() == all.len()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the topic's partitions serve");
}

/// Writes `values` to `topic`, value `i` to partition `i % partitions`,
/// and waits until every one is acknowledged.
pub async fn produce(client: &Client, topic: &str, partitions: i32, values: &[String]) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut deliveries = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let record =
            ProducerRecord::new(topic.to_string(), v.clone()).with_partition(i as i32 % partitions);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// Reads every partition of `topic` from its start to its high watermark
/// now (an empty partition is skipped).
pub async fn read_all(client: &Client, topic: &str) -> Vec<ConsumerRecord> {
    client
        .refresh_metadata(Some(&[topic.to_string()]))
        .await
        .expect("metadata");
    let all = client.partitions(topic).await.expect("partitions");
    let all = &all;
    let bound = |spec| async move {
        client
            .list_partition_offsets(topic, all, spec)
            .await
            .expect("offsets")
    };
    let (starts, ends) = (
        bound(OffsetSpec::Oldest).await,
        bound(OffsetSpec::Newest).await,
    );
    let consumer = Consumer::new(client.clone());
    let mut out = Vec::new();
    for mut pc in consumer
        .consume_partitions(topic, all, StartOffset::Oldest)
        .await
        .expect("consume")
    {
        let p = pc.partition();
        let end = ends[&p].offset.expect("an end");
        let start = starts[&p].offset.expect("a start");
        // The position is -1 until the first record comes.
        while end > start && pc.position() < end {
            let r = timeout(Duration::from_secs(30), pc.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("records of {topic}/{p} up to {end}; at {}", pc.position())
                })
                .expect("open")
                .expect("a record");
            out.push(r);
        }
        pc.close().await;
    }
    consumer.close().await;
    out
}

/// `group`'s committed offsets for `topic`'s partitions, -1 where none.
pub async fn committed(client: &Client, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let got: BTreeMap<TopicPartition, i64> = OffsetManager::new(client.clone(), group)
        .fetch(&tps)
        .await
        .expect("offsets")
        .into_iter()
        .map(|(tp, o)| (tp, o.offset))
        .collect();
    tps.iter()
        .map(|tp| got.get(tp).copied().unwrap_or(-1))
        .collect()
}
