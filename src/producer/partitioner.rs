//! Partitioners: which partition of a topic a record goes to.
//!
//! A record that names its partition goes there and never reaches a
//! partitioner. Every other record is placed by the producer's
//! [`Partitioner`], chosen with the `partitioner` setting
//! ([`config::Partitioner`]) and built by [`from_config`]:
//!
//! | setting | type | keyed records | keyless records |
//! | --- | --- | --- | --- |
//! | `murmur2` (default) | [`Murmur2Partitioner`] | Java's `Utils.murmur2` | sticky per batch (KIP-480) |
//! | `fnv1a` | [`Fnv1aPartitioner`] | Sarama's `NewHashPartitioner` | random |
//! | `consistent-crc32` | [`ConsistentCrc32Partitioner`] | librdkafka's `consistent` | partition 0, as librdkafka |
//! | `random` | [`RandomPartitioner`] | random | random |
//! | `round-robin` | [`RoundRobinPartitioner`] | next partition | next partition |
//! | `manual` | [`ManualPartitioner`] | none: the record must name one | the same |
//!
//! Keyed records are hashed over *all* partitions of the topic, available
//! or not, so that a key keeps its partition while a leader is away (the
//! Java client does the same). Choices that need no consistency (keyless
//! records, random, round-robin) go to an *available* partition, one with
//! a leader that can be written to now, and fall back to any partition when
//! none is available.
//!
//! ```
//! use klamm::config;
//! use klamm::producer::{PartitionView, from_config};
//!
//! let partitioner = from_config(&config::Partitioner::Murmur2);
//! let view = PartitionView::new(6, &[0, 1, 2, 3, 4, 5]);
//! // The same key always lands on the same partition.
//! let p = partitioner.partition("orders", Some(b"hello"), &view);
//! assert_eq!(p, Some(3));
//! assert_eq!(partitioner.partition("orders", Some(b"hello"), &view), p);
//! ```
//!
//! [`config::Partitioner`]: crate::config::Partitioner

use crate::determinism::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config;

/// What a partitioner may see of a topic's partitions: how many there are
/// and which of them are available (have a leader that can be written to
/// now).
///
/// Partitions are numbered `0..count`. The available list holds the ids of
/// available partitions; ids outside `0..count` are ignored. An empty list
/// means none is known to be available: partitioners then choose among all
/// partitions.
///
/// ```
/// use klamm::producer::PartitionView;
///
/// let view = PartitionView::new(4, &[1, 3]);
/// assert_eq!(view.count(), 4);
/// assert_eq!(view.available(), &[1, 3]);
/// assert!(view.is_available(3));
/// assert!(!view.is_available(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionView<'a> {
    count: i32,
    available: &'a [i32],
}

impl<'a> PartitionView<'a> {
    /// A topic with `count` partitions, of which `available` are writable
    /// now. A negative count is taken as zero.
    pub fn new(count: i32, available: &'a [i32]) -> Self {
        PartitionView {
            count: count.max(0),
            available,
        }
    }

    /// How many partitions the topic has.
    pub fn count(&self) -> i32 {
        self.count
    }

    /// The available partitions, as given to [`PartitionView::new`].
    pub fn available(&self) -> &'a [i32] {
        self.available
    }

    /// Whether `partition` is in range and in the available list.
    pub fn is_available(&self, partition: i32) -> bool {
        (0..self.count).contains(&partition) && self.available.contains(&partition)
    }

    /// The available partitions that are in range.
    fn in_range_available(&self) -> impl Iterator<Item = i32> + '_ {
        let count = self.count;
        self.available
            .iter()
            .copied()
            .filter(move |p| (0..count).contains(p))
    }

    /// The candidates for a choice that needs no consistency: the
    /// available partitions, or all when none is available. `None` for a
    /// topic without partitions.
    fn candidates(&self) -> Option<Candidates> {
        if self.count == 0 {
            return None;
        }
        let available: Vec<i32> = self.in_range_available().collect();
        Some(if available.is_empty() {
            Candidates::All(self.count)
        } else {
            Candidates::Some(available)
        })
    }
}

/// Where a choice without consistency picks from.
enum Candidates {
    All(i32),
    Some(Vec<i32>),
}

impl Candidates {
    fn len(&self) -> usize {
        match self {
            Candidates::All(n) => *n as usize,
            Candidates::Some(v) => v.len(),
        }
    }

    fn get(&self, index: usize) -> i32 {
        match self {
            Candidates::All(_) => index as i32,
            Candidates::Some(v) => v[index],
        }
    }

    fn random(&self, rng: &Rng) -> i32 {
        self.get(rng.below(self.len()))
    }
}

/// Chooses the partition of a record that does not name one.
///
/// Implementations are shared by every task that sends, so they take
/// `&self`, must be `Send + Sync` (and `Debug`, for the producer's own
/// `Debug`) and keep any state (sticky partitions, counters) behind
/// interior mutability.
///
/// The producer calls [`partition`](Partitioner::partition) for every
/// record without an explicit partition, and
/// [`on_new_batch`](Partitioner::on_new_batch) whenever a record it placed
/// had to start a new batch, so that sticky partitioners move keyless
/// records on (the Java client's `onNewBatch`, KIP-480).
///
/// A custom partitioner:
///
/// ```
/// use klamm::producer::{PartitionView, Partitioner};
///
/// /// Every record to the last partition.
/// #[derive(Debug)]
/// struct Last;
///
/// impl Partitioner for Last {
///     fn partition(&self, _topic: &str, _key: Option<&[u8]>, view: &PartitionView) -> Option<i32> {
///         (view.count() > 0).then(|| view.count() - 1)
///     }
/// }
///
/// let view = PartitionView::new(3, &[0, 1, 2]);
/// assert_eq!(Last.partition("t", None, &view), Some(2));
/// assert_eq!(Last.partition("t", None, &PartitionView::new(0, &[])), None);
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The partition for a record of `topic` with `key` (`None` for a null
    /// key; an empty key is `Some(&[])` and is hashed like any other).
    ///
    /// Returns a partition in `0..partitions.count()`, or `None` when this
    /// partitioner cannot choose: the topic has no partitions, or the
    /// partitioner is [`ManualPartitioner`], which leaves the choice to the
    /// record. The producer fails such a record.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: &PartitionView)
    -> Option<i32>;

    /// Tells the partitioner that a record it placed on `prev_partition` of
    /// `topic` had to start a new batch there. Sticky partitioners then
    /// move on to another partition for keyless records; the others ignore
    /// it (the default).
    fn on_new_batch(&self, topic: &str, partitions: &PartitionView, prev_partition: i32) {
        let _ = (topic, partitions, prev_partition);
    }

    /// Whether the choice for a record with `key` must be kept even when
    /// the partition is unavailable (the record then waits for a leader),
    /// because the same key must always map to the same partition. True
    /// for keyed records of the hash partitioners and for
    /// [`ManualPartitioner`]; false otherwise (the default).
    fn requires_consistency(&self, key: Option<&[u8]>) -> bool {
        let _ = key;
        false
    }
}

/// The partitioner for a `partitioner` setting.
///
/// ```
/// use klamm::config;
/// use klamm::producer::{PartitionView, from_config};
///
/// let view = PartitionView::new(13, &[]);
/// let fnv = from_config(&config::Partitioner::Fnv1a);
/// assert_eq!(fnv.partition("t", Some(b"kafka"), &view), Some(10));
/// let manual = from_config(&config::Partitioner::Manual);
/// assert_eq!(manual.partition("t", Some(b"kafka"), &view), None);
/// ```
pub fn from_config(partitioner: &config::Partitioner) -> Arc<dyn Partitioner> {
    match partitioner {
        config::Partitioner::Murmur2 => Arc::new(Murmur2Partitioner::new()),
        config::Partitioner::Fnv1a => Arc::new(Fnv1aPartitioner::new()),
        config::Partitioner::ConsistentCrc32 => Arc::new(ConsistentCrc32Partitioner),
        config::Partitioner::Random => Arc::new(RandomPartitioner::new()),
        config::Partitioner::RoundRobin => Arc::new(RoundRobinPartitioner::new()),
        config::Partitioner::Manual => Arc::new(ManualPartitioner),
    }
}

/// The Java client's murmur2 hash (`Utils.murmur2`): 32-bit MurmurHash2
/// with seed `0x9747b28c`, read as a signed Java `int`.
///
/// ```
/// use klamm::producer::partitioner::{murmur2, to_positive};
///
/// let h = murmur2(b"hello");
/// assert_eq!(to_positive(h) % 6, 3);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java takes the length as an int; a key is far below 2^31 bytes.
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's `Utils.toPositive`: clears the sign bit (not the
/// absolute value, so `i32::MIN` maps to 0).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// 32-bit FNV-1a (offset basis 2166136261, prime 16777619), as Go's
/// `hash/fnv.New32a`.
pub fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The default partitioner, as the Java client's (`BuiltInPartitioner` for
/// keys, KIP-480's sticky partitioning for keyless records).
///
/// * A keyed record goes to `to_positive(murmur2(key)) % count`, over all
///   partitions, available or not: the Java client's and librdkafka's
///   `murmur2_random` placement.
/// * A keyless record goes to the topic's *sticky* partition, a random
///   available one picked on first use. It stays there until
///   [`on_new_batch`](Partitioner::on_new_batch) reports a new batch on
///   that partition; then another available partition is picked (a
///   different one when more than one is available). A sticky partition
///   that has become unavailable, or is out of range, is replaced at the
///   next record. With no available partition, any partition is picked.
#[derive(Debug, Default)]
pub struct Murmur2Partitioner {
    sticky: Sticky,
}

impl Murmur2Partitioner {
    /// A murmur2 partitioner with no sticky partitions yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for Murmur2Partitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        partitions: &PartitionView,
    ) -> Option<i32> {
        if partitions.count() == 0 {
            return None;
        }
        match key {
            Some(key) => Some(to_positive(murmur2(key)) % partitions.count()),
            None => self.sticky.partition(topic, partitions),
        }
    }

    fn on_new_batch(&self, topic: &str, partitions: &PartitionView, prev_partition: i32) {
        self.sticky.on_new_batch(topic, partitions, prev_partition);
    }

    fn requires_consistency(&self, key: Option<&[u8]>) -> bool {
        key.is_some()
    }
}

/// Sticky partitions of keyless records, by topic (KIP-480).
#[derive(Debug, Default)]
struct Sticky {
    by_topic: Mutex<HashMap<String, i32>>,
    rng: Rng,
}

impl Sticky {
    fn partition(&self, topic: &str, view: &PartitionView) -> Option<i32> {
        let mut by_topic = self.by_topic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&p) = by_topic.get(topic) {
            if self.still_good(p, view) {
                return Some(p);
            }
        }
        let p = self.pick(view, None)?;
        by_topic.insert(topic.to_owned(), p);
        Some(p)
    }

    fn on_new_batch(&self, topic: &str, view: &PartitionView, prev: i32) {
        let mut by_topic = self.by_topic.lock().unwrap_or_else(|e| e.into_inner());
        let current = by_topic.get(topic).copied();
        // A new batch on a partition that is no longer the sticky one (a
        // keyed record's, or an old sticky one's) changes nothing.
        if current.is_some_and(|p| p != prev) {
            return;
        }
        if let Some(p) = self.pick(view, current) {
            by_topic.insert(topic.to_owned(), p);
        }
    }

    fn still_good(&self, p: i32, view: &PartitionView) -> bool {
        if !(0..view.count()).contains(&p) {
            return false;
        }
        view.in_range_available().next().is_none() || view.is_available(p)
    }

    /// A random candidate other than `avoid`, when there is such a one.
    fn pick(&self, view: &PartitionView, avoid: Option<i32>) -> Option<i32> {
        let candidates = view.candidates()?;
        let n = candidates.len();
        let avoid_index = avoid.and_then(|a| (0..n).find(|&i| candidates.get(i) == a));
        match avoid_index {
            Some(skip) if n > 1 => {
                // Uniform over the n - 1 others.
                let mut i = self.rng.below(n - 1);
                if i >= skip {
                    i += 1;
                }
                Some(candidates.get(i))
            }
            _ => Some(candidates.random(&self.rng)),
        }
    }
}

/// Sarama's default hash partitioner (`NewHashPartitioner`).
///
/// A keyed record goes to the 32-bit FNV-1a hash of the key, taken as a
/// signed `int32`, remainder by the partition count (truncated, so it has
/// the hash's sign), negated if negative. This is *not* the Java
/// `toPositive` conversion: Sarama keeps it for compatibility with its own
/// past (its `NewReferenceHashPartitioner` is the other one). A keyless
/// record goes to a random available partition.
#[derive(Debug, Default)]
pub struct Fnv1aPartitioner {
    rng: Rng,
}

impl Fnv1aPartitioner {
    /// An FNV-1a partitioner.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for Fnv1aPartitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partitions: &PartitionView,
    ) -> Option<i32> {
        let count = partitions.count();
        if count == 0 {
            return None;
        }
        match key {
            // Rust's `%` truncates like Go's; `abs` of a remainder smaller
            // than the count in magnitude cannot overflow.
            Some(key) => Some(((fnv1a32(key) as i32) % count).abs()),
            None => Some(partitions.candidates()?.random(&self.rng)),
        }
    }

    fn requires_consistency(&self, key: Option<&[u8]>) -> bool {
        key.is_some()
    }
}

/// librdkafka's `consistent` partitioner: the CRC-32 (IEEE, as zlib) of the
/// key, unsigned, remainder by the partition count.
///
/// A null key is hashed as an empty one, whose CRC-32 is 0: every keyless
/// record goes to partition 0, as in librdkafka (its `consistent_random`,
/// which scatters keyless records randomly, is not this one).
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsistentCrc32Partitioner;

impl Partitioner for ConsistentCrc32Partitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partitions: &PartitionView,
    ) -> Option<i32> {
        let count = partitions.count();
        if count == 0 {
            return None;
        }
        let crc = crc32fast::hash(key.unwrap_or(&[]));
        Some((crc % count as u32) as i32)
    }

    fn requires_consistency(&self, _key: Option<&[u8]>) -> bool {
        true
    }
}

/// A random available partition for every record, keys ignored.
#[derive(Debug, Default)]
pub struct RandomPartitioner {
    rng: Rng,
}

impl RandomPartitioner {
    /// A random partitioner.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for RandomPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        partitions: &PartitionView,
    ) -> Option<i32> {
        Some(partitions.candidates()?.random(&self.rng))
    }
}

/// Each record of a topic to the next available partition, keys ignored:
/// a counter per topic walks the available partitions (all partitions
/// when none is available), as the Java client's `RoundRobinPartitioner`.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: Mutex<HashMap<String, usize>>,
}

impl RoundRobinPartitioner {
    /// A round-robin partitioner; every topic starts at its first
    /// candidate.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(
        &self,
        topic: &str,
        _key: Option<&[u8]>,
        partitions: &PartitionView,
    ) -> Option<i32> {
        let candidates = partitions.candidates()?;
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let counter = match counters.get_mut(topic) {
            Some(c) => c,
            None => counters.entry(topic.to_owned()).or_insert(0),
        };
        let n = *counter;
        *counter = counter.wrapping_add(1);
        Some(candidates.get(n % candidates.len()))
    }
}

/// Leaves the choice to the application: every record must name its
/// partition (as Sarama's `NewManualPartitioner`), so
/// [`partition`](Partitioner::partition) always returns `None` and the
/// producer fails a record that names none.
#[derive(Debug, Default, Clone, Copy)]
pub struct ManualPartitioner;

impl Partitioner for ManualPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        _partitions: &PartitionView,
    ) -> Option<i32> {
        None
    }

    fn requires_consistency(&self, _key: Option<&[u8]>) -> bool {
        true
    }
}

/// A small lock-free random source (SplitMix64), seeded from the operating
/// system. Good enough to spread records; not for secrets.
#[derive(Debug)]
struct Rng {
    state: AtomicU64,
}

impl Default for Rng {
    fn default() -> Self {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            // Fall back to the clock and an address: distinct enough.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            seed = (nanos ^ (&seed as *const _ as u64)).to_le_bytes();
        }
        Rng {
            state: AtomicU64::new(u64::from_le_bytes(seed)),
        }
    }
}

impl Rng {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests;
