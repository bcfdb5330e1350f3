//! # klamm
//!
//! A pure-Rust client for the Apache Kafka wire protocol: producers
//! (async, sync, idempotent, transactional), partition consumers, consumer
//! and share groups, an admin client, TLS and SASL, over a `Client` that
//! keeps the cluster's metadata — no librdkafka, no C. Tested against
//! Apache Kafka 4.4.0 (KRaft; one node and three nodes); see the README
//! for what is verified where.
//!
//! Add it with tokio:
//!
//! ```toml
//! [dependencies]
//! klamm = { git = "<this repository>" }   # not on crates.io yet
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! ## Produce
//!
//! ```no_run
//! use klamm::producer::{AsyncProducer, ProducerRecord};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let mut config = Config::default();
//! config.net.bootstrap_servers = vec!["127.0.0.1:9092".into()];
//! let client = Client::connect(config).await?;
//! // Idempotent, acks=all, batched: the Java client's defaults.
//! let producer = AsyncProducer::new(client).await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("events", "hello").with_key("user-1"))
//!     .await?;
//! let written = delivery.await?;
//! println!("partition {} offset {}", written.partition, written.offset);
//! producer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Consume
//!
//! ```no_run
//! use klamm::consumer::{Consumer, StartOffset};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let config = Config::from_properties([("bootstrap.servers", "127.0.0.1:9092")])?;
//! let consumer = Consumer::new(Client::connect(config).await?);
//! let mut partition = consumer.consume_partition("events", 0, StartOffset::Oldest).await?;
//! while let Some(record) = partition.recv().await {
//!     let record = record?;
//!     println!("{}: {:?}", record.offset, record.value);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Transactions
//!
//! ```no_run
//! use klamm::producer::{AsyncProducer, ProducerRecord};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let config = Config::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("transactional.id", "orders-writer"),
//! ])?;
//! let producer = AsyncProducer::new(Client::connect(config).await?).await?;
//! producer.init_transactions().await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("orders", "paid")).await?;
//! producer.commit_transaction().await?; // or abort_transaction()
//! # Ok(())
//! # }
//! ```
//!
//! ## TLS and SASL
//!
//! The familiar property names configure security; every connection of
//! the client, its producers and consumers then uses it.
//!
//! ```
//! use klamm::Config;
//!
//! let config = Config::from_properties([
//!     ("bootstrap.servers", "kafka.example.com:9093"),
//!     ("security.protocol", "SASL_SSL"),
//!     ("sasl.mechanism", "SCRAM-SHA-512"),
//!     ("sasl.username", "alice"),
//!     ("sasl.password", "alice-secret"),
//!     ("ssl.ca.location", "/etc/kafka/ca.crt"),
//! ])
//! .unwrap();
//! config.validate().unwrap();
//! ```
//!
//! ## Consumer groups
//!
//! A member of a group reads the partitions the group gives it and commits
//! what it finished (automatically every `auto.commit.interval.ms` and on
//! every revocation), as one stream of records and rebalance events:
//!
//! ```no_run
//! use klamm::group::{GroupConsumer, GroupEvent};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let config = Config::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "billing"),
//!     ("partition.assignment.strategy", "cooperative-sticky"),
//! ])?;
//! let mut group = GroupConsumer::new(Client::connect(config).await?, ["events"]).await?;
//! while let Some(event) = group.recv().await {
//!     match event? {
//!         GroupEvent::Records(batch) => batch.iter().for_each(|r| println!("{}: {:?}", r.offset, r.value)),
//!         other => println!("{other:?}"), // Assigned, Revoked, Lost
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! or in Sarama's shape, a handler with one task per assigned partition:
//!
//! ```no_run
//! use klamm::group::{Claim, GroupConsumer, GroupHandler, GroupSession};
//!
//! struct Printer;
//!
//! impl GroupHandler for Printer {
//!     async fn consume_claim(&self, session: GroupSession, mut claim: Claim) -> klamm::Result<()> {
//!         while let Some(record) = claim.recv().await {
//!             println!("{}/{} {}", record.topic, record.partition, record.offset);
//!             session.mark(&record); // committed with the next commit
//!         }
//!         Ok(()) // the partition was revoked
//!     }
//! }
//!
//! # async fn run(group: GroupConsumer) -> klamm::Result<()> {
//! group.run(Printer, std::future::pending::<()>()).await
//! # }
//! ```
//!
//! The newer consumer protocol (KIP-848, the broker assigns) is one
//! property away — `("group.protocol", "consumer")` — and
//! [`GroupConsumer::with_pattern`](group::GroupConsumer::with_pattern)
//! subscribes to every topic whose name matches a pattern.
//!
//! Share a topic like a queue (KIP-932 share groups, Kafka 4.2+): members
//! read the same partitions, each record goes to one of them at a time,
//! and is accepted, released (delivered again, its count one higher) or
//! rejected:
//!
//! ```no_run
//! use klamm::share::{AckMode, AcknowledgeType, ShareConsumer, ShareOptions};
//! use std::time::Duration;
//! # fn handle(_: &klamm::consumer::ConsumerRecord) -> Result<(), ()> { Ok(()) }
//!
//! # async fn run(client: klamm::Client) -> klamm::Result<()> {
//! let options =
//!     ShareOptions { ack_mode: AckMode::Explicit, ..ShareOptions::from_config(client.config()) };
//! let jobs = ShareConsumer::new(client, "workers", &["jobs"], options).await?;
//! for job in jobs.poll(Duration::from_secs(1)).await? {
//!     let ok = job.delivery_count < 5 && handle(&job.record).is_ok();
//!     jobs.acknowledge(&job, if ok { AcknowledgeType::Accept } else { AcknowledgeType::Release })?;
//! }
//! jobs.commit().await?; // or let the next poll carry the acknowledgements
//! jobs.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Administer
//!
//! [`Admin`](admin::Admin) creates and describes topics, changes configs,
//! manages ACLs (also as a declarative table), looks up offsets, moves
//! partitions and describes the cluster, each item's outcome on its own;
//! consumer groups are [`Admin::groups`](admin::Admin::groups):
//!
//! ```no_run
//! use klamm::admin::{AclOperation, AclTable, Admin, AlterConfigOp, ConfigResource, NewTopic};
//!
//! # async fn run(client: klamm::Client) -> klamm::Result<()> {
//! let admin = Admin::new(client);
//! for (topic, outcome) in admin.create_topics(&[NewTopic::new("events", 6, 3)]).await {
//!     println!("{topic}: {:?}", outcome.map(|t| t.topic_id.to_kafka_string()));
//! }
//! let retention = AlterConfigOp::set("retention.ms", "86400000");
//! admin.incremental_alter_configs(&[(ConfigResource::topic("events"), vec![retention])]).await;
//! let table: AclTable = "events  User:billing  read,describe".parse()?;
//! println!("{}", admin.apply_acls(&table).await?); // the changes it made
//! for row in admin.groups().lag("billing").await? {
//!     println!("{} committed {:?} lag {:?}", row.partition, row.committed, row.lag);
//! }
//! # let _ = AclOperation::Read;
//! # Ok(())
//! # }
//! ```
//!
//! ## Testing without a broker
//!
//! The companion crate `klamm-fake` (a dev-dependency) runs a Kafka
//! cluster in the test's process, on loopback TCP with the real protocol:
//! your code connects to it as to Kafka, the test reads what arrived and
//! injects faults (error codes, lost answers, cut connections, moved
//! leaders, stopped brokers):
//!
//! ```
//! use klamm::producer::{AsyncProducer, ProducerRecord};
//! use klamm::protocol::{error_codes::ErrorCode, messages::ApiKey};
//! use klamm::{Client, Config};
//! use klamm_fake::{FakeCluster, Fault};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = FakeCluster::builder().brokers(3).topic("events", 1).start().await?;
//! // The next write fails once with a retriable error: the producer retries.
//! cluster.inject(ApiKey::Produce, None, Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS), 1)?;
//!
//! let mut config = Config::default();
//! config.net.bootstrap_servers = cluster.addresses();
//! let producer = AsyncProducer::new(Client::connect(config).await?).await?;
//! producer.send(ProducerRecord::new("events", "hello")).await?.await?;
//! producer.close().await?;
//!
//! assert_eq!(cluster.records("events", 0).len(), 1); // written once
//! assert_eq!(cluster.requests(None, ApiKey::Produce), 2); // after one retry
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod client;
pub mod config;
pub mod consumer;
pub mod determinism;
pub mod error;
pub mod group;
pub mod net;
pub mod producer;
pub mod protocol;
pub mod share;
#[cfg(test)]
mod test_support;

pub use client::Client;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
