//! The producer: [`AsyncProducer`] (futures or Sarama-style channels),
//! [`SyncProducer`] (blocking), the partitioners and the transaction
//! manager.
//!
//! Records are encoded straight into their partition's open batch; a
//! background sender drains ready batches (full, lingered long enough, or
//! flushed) into one Produce request per broker, with idempotence by
//! default. [`partitioner`] holds the strategies that place a record
//! without an explicit partition: the Java client's murmur2 (the default,
//! sticky for keyless records), Sarama's FNV-1a, librdkafka's `consistent`
//! CRC-32, random, round-robin and manual. [`transaction`] runs the
//! transactions of a `transactional.id`.

mod accumulator;
mod async_producer;
mod batch;
mod delivery;
mod hash;
mod idempotence;
pub mod partitioner;
mod partitions;
mod record;
mod sender;
mod stats;
mod sync_producer;
pub mod transaction;
mod transactional;

#[cfg(test)]
mod tests;

pub use async_producer::{AsyncProducer, ProducerChannels, ProducerError};
pub use delivery::DeliveryFuture;
pub use partitioner::{PartitionView, Partitioner, from_config};
pub use record::{ProducerRecord, RecordMetadata};
pub use stats::ProducerStats;
pub use sync_producer::SyncProducer;
