//! # klamm-kasper
//!
//! [Kasper](https://github.com/movio/kasper)'s batch topic processor,
//! rebuilt on the [klamm](klamm) Kafka client's public API.
//!
//! A [`TopicProcessor`] reads the configured partitions of one or more
//! input topics that have the same number of partitions. Records of the
//! same partition number, from every input topic, gather in one batch, so
//! a processor sees both sides of a partition-wise join. A batch is handed
//! to that partition's [`Processor`] when it holds `batch_size` records or
//! at the next `batch_wait` tick; the processor's outputs, collected by
//! the [`Sender`], are produced with `acks=all`, and only once every one is
//! acknowledged are the batch's input offsets committed. A failure stops
//! the run and commits nothing of the failed batch: processing is at least
//! once, so processors should be idempotent.
//!
//! ```no_run
//! use klamm::consumer::ConsumerRecord;
//! use klamm::producer::ProducerRecord;
//! use klamm_kasper::{BoxError, Config, Processor, Sender, TopicProcessor};
//!
//! /// Echoes every record of both topics to `echoes`, on the same partition.
//! struct Echo;
//! impl Processor for Echo {
//!     async fn process(&mut self, batch: &[ConsumerRecord], out: &mut Sender<'_>) -> Result<(), BoxError> {
//!         for r in batch {
//!             let value = r.value.clone().unwrap_or_default();
//!             out.send(ProducerRecord::new("echoes", value).with_partition(r.partition));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = klamm::Client::connect(klamm::Config::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//! ])?)
//! .await?;
//! let mut config = Config::new("echo", ["hello", "world"], [0, 1]);
//! config.batch_size = 100;
//! let processor = TopicProcessor::new(client, config, |_partition| Echo).await?;
//! let handle = processor.handle();
//! let running = tokio::spawn(processor.run());
//! while !handle.has_consumed_all().await? {
//!     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//! }
//! handle.close();
//! running.await??;
//! # Ok(())
//! # }
//! ```
//!
//! ## Coming from Kasper
//!
//! | Kasper (Go) | klamm-kasper (Rust) |
//! |---|---|
//! | `Config{TopicProcessorName, InputTopics, InputPartitions, BatchSize, BatchWaitDuration}` | [`Config`] `{ name, input_topics, partitions, batch_size, batch_wait }`, same defaults (1,000 records, 5 s) |
//! | `Config.Client` (a `sarama.Client`) | the [`klamm::Client`] passed to [`TopicProcessor::new`] |
//! | Sarama's `Consumer.Offsets.Initial` | [`Config::initial`] ([`Initial::Newest`] by default, as Sarama's) |
//! | group `kasper-topic-processor-<name>` | [`Config::group`], the same name |
//! | `MessageProcessor.Process(messages, sender) error` | [`Processor::process`], an `async fn` over `&[ConsumerRecord]` |
//! | `map[int]MessageProcessor` | a factory closure called once per configured partition |
//! | `Sender.Send` / `Sender.Flush` | [`Sender::send`] / [`Sender::flush`] |
//! | `NewTopicProcessor` (panics on a bad setup) | [`TopicProcessor::new`], which returns an [`Error`] instead |
//! | `RunLoop()` | [`TopicProcessor::run`] (consumes the processor: a second run is a new processor) |
//! | `Close()` | [`Handle::close`], from any task, idempotent |
//! | `HasConsumedAllMessages()` | [`Handle::has_consumed_all`] (async: it asks the leaders for the high watermarks) |
//! | metrics `incoming_message_count`, `outgoing_message_count`, `messages_behind_high_water_mark_count` | [`Handle::metrics`]: [`PartitionMetrics`] `{ incoming, outgoing, behind_high_water_mark }` per topic and partition |
//! | `Logger` | `tracing`, through klamm |
//!
//! Differences, where Kasper's behaviour was a limitation rather than a
//! contract:
//! - Outputs are produced with `acks=all` (Kasper used the client's
//!   setting and recommended `WaitForAll`); a client set otherwise is a
//!   configuration error.
//! - Offsets are committed synchronously after each batch's outputs are
//!   acknowledged (Kasper marked them, and Sarama committed marks every
//!   second); so a failure commits nothing of the failed batch and the
//!   batches before it are all committed.
//! - The input topics' partition counts and the configured partitions are
//!   checked at start (Kasper documented the rule but did not check it).
//! - An empty partition counts as consumed in `has_consumed_all` (in
//!   Kasper it never did).
//! - The flush tick never starves behind a busy partition.
//! - Beyond Kasper, [`Config::in_group`] takes the partitions from the
//!   consumer group [`Config::group`] instead of configuration: instances
//!   join it (range assignor, so each gets the same partition numbers of
//!   every input topic) and split the partitions, which move when an
//!   instance comes or goes. Records of a partition taken away while
//!   still gathering are dropped uncommitted, for its next owner to read;
//!   a batch whose commit the group refuses because it moved on (the
//!   instance was too slow for the rebalance) is read again the same way,
//!   and the run goes on.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod error;
mod metrics;
mod processor;
mod sender;

pub use config::{Config, Initial};
pub use error::{BoxError, Error};
pub use metrics::{MetricsSnapshot, PartitionMetrics};
pub use processor::{Handle, Processor, TopicProcessor};
pub use sender::Sender;
