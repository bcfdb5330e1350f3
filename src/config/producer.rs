//! The `producer` section.

use std::fmt;
use std::time::Duration;

use super::{Check, invalid};
use crate::Error;
use crate::protocol::compression::Compression;

/// The idempotent producer's limit on in-flight requests per connection:
/// brokers remember the last 5 batches of each producer.
pub const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

/// How records are produced: acknowledgements, idempotence and
/// transactions, batching, retries, compression and partitioning.
///
/// Defaults follow the Java producer (Kafka 4.x `ProducerConfig`); where
/// Sarama differs, the field says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// `acks`: which replicas must have a record before it counts as
    /// written. Default [`Acks::All`] (Java since 3.0); Sarama defaults to
    /// [`Acks::Leader`] (`WaitForLocal`).
    pub acks: Acks,
    /// `enable.idempotence`: brokers drop duplicates from retries and keep
    /// order, using a producer id and sequence numbers. Default on (Java
    /// since 3.0); Sarama defaults to off. Needs `acks=all`, `retries > 0`
    /// and at most 5 in-flight requests per connection.
    pub idempotence: bool,
    /// `max.in.flight.requests.per.connection`: produce requests awaiting a
    /// response on one connection. Default 5 (Java and Sarama). At most 5
    /// with idempotence.
    pub max_in_flight_requests_per_connection: usize,
    /// `retries`: how many times a failed produce is retried; in practice
    /// `delivery.timeout.ms` bounds retrying. Default 2147483647 (Java);
    /// Sarama defaults to 3.
    pub retries: u32,
    /// `retry.backoff.ms`: the wait before retrying a failed produce.
    /// Default 100 ms (Java and Sarama).
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms`: the upper bound from `send` returning to the
    /// record's success or failure, retries included. Default 120 s
    /// (Java; Sarama has no such bound). Must be at least `linger.ms` +
    /// `request.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms`: the time the broker may take to gather the
    /// acknowledgements, sent as the Produce request's `timeout_ms`.
    /// Default 30 s (Java, which uses one `request.timeout.ms` for this and
    /// the network wait); Sarama's `Producer.Timeout` is 10 s.
    pub request_timeout: Duration,
    /// `linger.ms`: how long a batch that is not full waits for more
    /// records, at most. Default 5 ms (Java since 4.0, 0 before); Sarama
    /// sends at once (`Flush.Frequency` 0). The runtime's timers fire on
    /// whole milliseconds, up to two after their deadline, so a batch leaves
    /// within the last two milliseconds of its linger (1 to 3 ms for a
    /// linger of 1 or 2 ms).
    pub linger: Duration,
    /// `batch.size`: the size a partition's batch is sent at; 0 disables
    /// batching. Default 16384 (Java). At most `max.request.size`.
    pub batch_size: u32,
    /// `buffer.memory`: the bytes of records the producer may hold waiting
    /// to be sent. Default 32 MiB (Java; Sarama bounds by message count,
    /// `ChannelBufferSize` 256).
    pub buffer_memory: u64,
    /// `max.buffered.records` (klamm name; franz-go's `MaxBufferedRecords`,
    /// librdkafka's `queue.buffering.max.messages`): the records the
    /// producer may hold not yet acknowledged, whatever their size. Default
    /// 100,000 (librdkafka's). `buffer.memory` bounds bytes, so with small
    /// records it lets hundreds of thousands wait (32 MiB is about 250,000
    /// records of 100 B), each with a delivery future the application holds,
    /// while the brokers can take only what is in flight: the records beyond
    /// that add memory and no throughput. `send` waits for room as it does
    /// for `buffer.memory` (`max.block.ms`, `block.on.buffer.full`). At
    /// least 1.
    pub max_buffered_records: u32,
    /// `max.request.size`: the largest produce request, and so the largest
    /// record. Default 1 MiB (Java; current Sarama's `MaxMessageBytes` is
    /// the same).
    pub max_request_size: u32,
    /// `compression.type`: the codec for record batches. Default none.
    pub compression: Compression,
    /// `compression.level` (or `compression.gzip.level`,
    /// `compression.lz4.level`, `compression.zstd.level`): the codec's
    /// level; `None` picks the codec's default (gzip 6, lz4 9, zstd 3).
    /// Must be within the codec's range (gzip 1..=9 or -1, lz4 1..=17,
    /// zstd's own range); none and snappy take no level.
    pub compression_level: Option<i32>,
    /// `partitioner`: how records without an explicit partition are placed.
    /// Default [`Partitioner::Murmur2`] (Java's built-in partitioner);
    /// Sarama hashes keys with FNV-1a ([`Partitioner::Fnv1a`]).
    pub partitioner: Partitioner,
    /// `transactional.id`: enables transactions under this id. Needs
    /// idempotence. Default `None`.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a
    /// transaction stay open before aborting it. Default 60 s (Java and
    /// Sarama).
    pub transaction_timeout: Duration,
    /// `max.block.ms`: how long `send` (and the transaction calls) may
    /// wait for metadata or for room in `buffer.memory`. Zero fails fast:
    /// `send` returns an error at once when the buffer is full. Default
    /// 60 s (Java; Sarama blocks on its channel without a limit).
    pub max_block: Duration,
    /// `block.on.buffer.full`: what `send` does when `buffer.memory` is
    /// used up. `true` (the default) waits for room, up to `max.block.ms`,
    /// so a fast producer is slowed to the pace of the brokers; `false`
    /// fails the send at once with an [`Error::Timeout`] of no wait naming
    /// `buffer.memory` (as Java's `BufferExhaustedException` is a
    /// `TimeoutException`), leaving it to the application to back off.
    /// (Java had this property until 0.9; Sarama always waits.)
    pub block_on_buffer_full: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            idempotence: true,
            max_in_flight_requests_per_connection: 5,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_buffered_records: 100_000,
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            compression_level: None,
            partitioner: Partitioner::Murmur2,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            max_block: Duration::from_secs(60),
            block_on_buffer_full: true,
        }
    }
}

/// `acks`: the acknowledgements a produce request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: no response at all; the record may be lost unnoticed.
    None,
    /// `acks=1`: the partition leader has written the record.
    Leader,
    /// `acks=all` (or `-1`): every in-sync replica has it (the default).
    #[default]
    All,
}

impl Acks {
    /// The value of the Produce request's `acks` field: 0, 1 or -1.
    pub fn code(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }

    /// The property value: `0`, `1` or `all`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Leader => "1",
            Self::All => "all",
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `partitioner`: how a record without an explicit partition is placed.
///
/// The key-hashing choices send keyless records to a "sticky" partition
/// that changes once a batch is full, as the Java client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Partitioner {
    /// `murmur2`: murmur2 hash of the key, as the Java client (and
    /// librdkafka's `murmur2_random`); the default.
    #[default]
    Murmur2,
    /// `fnv1a`: FNV-1a hash of the key, as Sarama's default hash
    /// partitioner.
    Fnv1a,
    /// `consistent-crc32`: CRC-32 of the key, as librdkafka's
    /// `consistent` (null and empty keys both go to partition 0).
    ConsistentCrc32,
    /// `random`: a random partition for every record.
    Random,
    /// `round-robin`: each record to the next partition, keys ignored.
    RoundRobin,
    /// `manual`: the application always names the partition; a record
    /// without one is an error.
    Manual,
}

impl Partitioner {
    /// Every partitioner.
    pub const ALL: [Partitioner; 6] = [
        Partitioner::Murmur2,
        Partitioner::Fnv1a,
        Partitioner::ConsistentCrc32,
        Partitioner::Random,
        Partitioner::RoundRobin,
        Partitioner::Manual,
    ];

    /// The property value, e.g. `murmur2` or `round-robin`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Murmur2 => "murmur2",
            Self::Fnv1a => "fnv1a",
            Self::ConsistentCrc32 => "consistent-crc32",
            Self::Random => "random",
            Self::RoundRobin => "round-robin",
            Self::Manual => "manual",
        }
    }
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ProducerConfig {
    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.max_in_flight_requests_per_connection == 0 {
            return Err(invalid(
                "max.in.flight.requests.per.connection",
                "must be at least 1",
            ));
        }
        if self.retries > i32::MAX as u32 {
            return Err(invalid("retries", "must be at most 2147483647"));
        }
        if self.idempotence {
            if self.max_in_flight_requests_per_connection > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
                return Err(invalid(
                    "max.in.flight.requests.per.connection",
                    format!(
                        "must be at most {MAX_IN_FLIGHT_FOR_IDEMPOTENCE} with enable.idempotence=true, \
                         but is {}",
                        self.max_in_flight_requests_per_connection
                    ),
                ));
            }
            if self.acks != Acks::All {
                return Err(invalid(
                    "acks",
                    format!(
                        "must be all with enable.idempotence=true, but is {}",
                        self.acks
                    ),
                ));
            }
            if self.retries == 0 {
                return Err(invalid(
                    "retries",
                    "must be at least 1 with enable.idempotence=true",
                ));
            }
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return Err(invalid("transactional.id", "must not be empty"));
            }
            if !self.idempotence {
                return Err(invalid("transactional.id", "needs enable.idempotence=true"));
            }
        }
        Check::positive("transaction.timeout.ms", self.transaction_timeout)?;
        Check::fits_i32_ms("transaction.timeout.ms", self.transaction_timeout)?;
        Check::positive("request.timeout.ms", self.request_timeout)?;
        Check::fits_i32_ms("request.timeout.ms", self.request_timeout)?;
        Check::positive("delivery.timeout.ms", self.delivery_timeout)?;
        if self.delivery_timeout < self.linger.saturating_add(self.request_timeout) {
            return Err(invalid(
                "delivery.timeout.ms",
                "must be at least linger.ms + request.timeout.ms",
            ));
        }
        if self.max_request_size == 0 || self.max_request_size > i32::MAX as u32 {
            return Err(invalid("max.request.size", "must be within 1..=2147483647"));
        }
        if self.batch_size > self.max_request_size {
            return Err(invalid(
                "batch.size",
                format!(
                    "{} is larger than max.request.size ({})",
                    self.batch_size, self.max_request_size
                ),
            ));
        }
        if self.buffer_memory < u64::from(self.batch_size) {
            return Err(invalid("buffer.memory", "must be at least batch.size"));
        }
        if self.max_buffered_records == 0 {
            return Err(invalid("max.buffered.records", "must be at least 1"));
        }
        self.compression
            .check_level(self.compression_level)
            .map_err(|e| invalid(level_key(self.compression), e.to_string()))?;
        Ok(())
    }
}

/// The property naming the level of a codec: `compression.<codec>.level`
/// for codecs with levels, `compression.level` otherwise.
pub(super) fn level_key(codec: Compression) -> String {
    match codec {
        Compression::Gzip | Compression::Lz4 | Compression::Zstd => {
            format!("compression.{}.level", codec.name())
        }
        Compression::None | Compression::Snappy => "compression.level".to_owned(),
    }
}
