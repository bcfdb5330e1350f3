//! Counters of what the producer's sender did.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the producer has done so far, from [`AsyncProducer::stats`]
/// (counts since the producer started).
///
/// ```no_run
/// # async fn example(producer: klamm::producer::AsyncProducer) {
/// let stats = producer.stats();
/// println!("{} batches written, {} retried", stats.batches_written, stats.batches_retried);
/// # }
/// ```
///
/// [`AsyncProducer::stats`]: super::AsyncProducer::stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Produce requests sent.
    pub requests: u64,
    /// Batches sent, retries included.
    pub batches_sent: u64,
    /// Batches written (acknowledged, or sent with `acks=0`).
    pub batches_written: u64,
    /// Batches put back for a retry after a retriable failure.
    pub batches_retried: u64,
    /// Batches that failed for good (their records got the error).
    pub batches_failed: u64,
    /// Batches of several records the broker refused as too large
    /// (MESSAGE_TOO_LARGE, over the topic's `max.message.bytes`) that were
    /// split in two and sent again; a piece split again counts again.
    pub batches_split: u64,
    /// Producer ids or epochs obtained: 1 at start with idempotence, and
    /// one more per epoch bump (which an idempotent producer makes itself;
    /// it asks the cluster for a new id only when the epoch is used up).
    pub producer_id_requests: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batches_written: AtomicU64,
    pub batches_retried: AtomicU64,
    pub batches_failed: AtomicU64,
    pub batches_split: AtomicU64,
    pub producer_id_requests: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProducerStats {
            requests: get(&self.requests),
            batches_sent: get(&self.batches_sent),
            batches_written: get(&self.batches_written),
            batches_retried: get(&self.batches_retried),
            batches_failed: get(&self.batches_failed),
            batches_split: get(&self.batches_split),
            producer_id_requests: get(&self.producer_id_requests),
        }
    }
}
