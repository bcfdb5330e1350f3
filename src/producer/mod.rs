//! The producer; today only partitioning.
//!
//! [`partitioner`] holds the strategies that place a record without an
//! explicit partition: the Java client's murmur2 (the default, sticky for
//! keyless records), Sarama's FNV-1a, librdkafka's `consistent` CRC-32,
//! random, round-robin and manual.

pub mod partitioner;

pub use partitioner::{PartitionView, Partitioner, from_config};
