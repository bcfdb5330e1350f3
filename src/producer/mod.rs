//! The producer; today partitioning and the transaction manager.
//!
//! [`partitioner`] holds the strategies that place a record without an
//! explicit partition: the Java client's murmur2 (the default, sticky for
//! keyless records), Sarama's FNV-1a, librdkafka's `consistent` CRC-32,
//! random, round-robin and manual. [`transaction`] runs the transactions of
//! a `transactional.id` for the producer.

pub mod partitioner;
pub mod transaction;

pub use partitioner::{PartitionView, Partitioner, from_config};
