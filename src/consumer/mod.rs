//! The consumer: partition consumers fed by one fetcher per broker.
//!
//! A [`Consumer`] hands out [`PartitionConsumer`]s (Sarama's names). Each
//! broker that leads a consumed partition gets one fetcher task, which
//! sends one Fetch request covering every partition it serves, using a
//! fetch session (KIP-227) when the broker supports one. What a fetch
//! returns for a partition goes, as one undecoded chunk of complete record
//! batches, into that partition's bounded prefetch buffer; the
//! [`PartitionConsumer`] decodes it batch by batch when the application
//! asks, so decoding runs on the application's task and keys and values
//! are zero-copy slices of the fetched buffer.
//!
//! [`transactions`] turns one partition's Fetch data into the record
//! batches a consumer with a given [`IsolationLevel`] must see: under
//! `read_committed`, the data of aborted transactions, control batches and
//! anything at or past the last stable offset are dropped.
//!
//! ```no_run
//! use klamm::consumer::{Consumer, StartOffset};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let mut config = Config::default();
//! config.net.bootstrap_servers = vec!["localhost:9092".into()];
//! let client = Client::connect(config).await?;
//! let consumer = Consumer::new(client);
//! let mut pc = consumer.consume_partition("events", 0, StartOffset::Oldest).await?;
//! while let Some(batch) = pc.recv_batch().await {
//!     let batch = batch?;
//!     for record in batch.iter() {
//!         println!("{} {:?}", record.offset, record.value);
//!     }
//!     if batch.records.last().is_some_and(|r| r.offset + 1 >= pc.high_water_mark()) {
//!         break;
//!     }
//! }
//! consumer.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`IsolationLevel`]: crate::config::IsolationLevel

mod fetcher;
mod partition;

pub(crate) use partition::{from_legacy as records_of_legacy, from_v2 as records_of_v2};
mod session;
mod starts;
#[cfg(test)]
mod tests;
pub mod transactions;

use crate::determinism::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

pub use partition::PartitionConsumer;
pub use transactions::{TransactionFilter, committed_batches};

use crate::client::{Client, OffsetSpec, RetryPolicy, TrafficClass};
use crate::config::{IsolationLevel, OffsetReset};
use crate::error::{Error, Result};
use crate::protocol::records::{DecodeOptions, Header, TimestampType};
use fetcher::{Cmd, FetcherHandle, Tracked};

/// Where a [`PartitionConsumer`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The oldest record still in the log.
    Oldest,
    /// The next record produced (the high watermark when consuming starts).
    Newest,
    /// This offset. One outside the log is handled by the
    /// [`OffsetResetPolicy`].
    Offset(i64),
    /// The first record whose timestamp (ms) is at or after this time; the
    /// high watermark when there is none.
    Timestamp(i64),
}

/// What to do when a fetch offset is out of range (before the log start or
/// past the high watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetResetPolicy {
    /// Continue from the oldest record still in the log.
    Oldest,
    /// Continue from the high watermark.
    Newest,
    /// Deliver an `OFFSET_OUT_OF_RANGE` error to the partition consumer,
    /// which then ends.
    Error,
}

impl From<OffsetReset> for OffsetResetPolicy {
    fn from(r: OffsetReset) -> Self {
        match r {
            OffsetReset::Earliest => Self::Oldest,
            OffsetReset::Latest => Self::Newest,
            OffsetReset::None => Self::Error,
        }
    }
}

/// Consumer settings that the [`Config`](crate::Config) does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// How many fetched chunks (each at most `max.partition.fetch.bytes`,
    /// or one batch when a batch is bigger) each partition buffers ahead of
    /// the application; a partition whose buffer is full is not fetched.
    /// Default 2.
    pub prefetch_chunks: usize,
    /// What an out-of-range fetch offset does. Default: from
    /// `auto.offset.reset` (`earliest` → oldest, `latest` → newest,
    /// `none` → error).
    pub offset_reset: OffsetResetPolicy,
    /// How long to wait before retrying a partition whose leader is being
    /// looked up, or a broker that failed. Default `retry.backoff.ms`
    /// of the metadata section.
    pub retry_backoff: Duration,
}

impl ConsumerOptions {
    /// The defaults for `client`'s configuration.
    pub fn for_client(client: &Client) -> Self {
        let config = client.config();
        Self {
            prefetch_chunks: 2,
            offset_reset: config.consumer.auto_offset_reset.into(),
            retry_backoff: config.metadata.retry_backoff,
        }
    }
}

/// A record read from a partition. Key, value and headers are zero-copy
/// slices of the fetched data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The timestamp (ms since the epoch; -1 for magic-0 messages).
    pub timestamp: i64,
    /// Whether the producer or the broker set the timestamp.
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// The records of one fetched record batch, control records and (under
/// `read_committed`) aborted records removed, and records before the
/// requested start offset skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedBatch {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The partition's high watermark when the batch was fetched.
    pub high_water_mark: i64,
    /// The partition's last stable offset when the batch was fetched (-1
    /// when the broker did not say).
    pub last_stable_offset: i64,
    /// The records, in offset order; never empty.
    pub records: Vec<ConsumerRecord>,
}

impl ConsumedBatch {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in offset order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConsumerRecord> {
        self.records.iter()
    }

    /// The offset after the last record.
    pub fn next_offset(&self) -> Option<i64> {
        self.records.last().map(|r| r.offset + 1)
    }
}

impl<'a> IntoIterator for &'a ConsumedBatch {
    type Item = &'a ConsumerRecord;
    type IntoIter = std::slice::Iter<'a, ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl IntoIterator for ConsumedBatch {
    type Item = ConsumerRecord;
    type IntoIter = std::vec::IntoIter<ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

/// Settings every fetcher and partition consumer of a [`Consumer`] share.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) min_bytes: i32,
    pub(crate) max_bytes: i32,
    pub(crate) partition_max_bytes: i32,
    pub(crate) max_wait: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) isolation: IsolationLevel,
    pub(crate) decode: DecodeOptions,
    pub(crate) options: ConsumerOptions,
    /// The connections fetches go on: `Fetch`, or a class of its own for
    /// a short read that must not queue behind other consumers' long
    /// polls on the shared connection.
    pub(crate) class: TrafficClass,
}

/// One partition's state, shared by its [`PartitionConsumer`] and whichever
/// fetcher serves it.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) high_water_mark: AtomicI64,
    pub(crate) last_stable_offset: AtomicI64,
    pub(crate) paused: AtomicBool,
    /// Set by the fetcher when it skipped the partition because its buffer
    /// was full; the partition consumer wakes the fetcher when it takes a
    /// chunk out.
    pub(crate) blocked: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// The wake-up of the fetcher serving the partition now.
    pub(crate) wake: Mutex<Option<Arc<Notify>>>,
}

impl PartitionShared {
    pub(crate) fn wake_fetcher(&self) {
        if let Some(w) = &*lock(&self.wake) {
            w.notify_one();
        }
    }
}

/// An undecoded run of complete record-set entries for one partition, as
/// one Fetch returned them, or an error that ends the partition consumer.
pub(crate) type Delivery = Result<Chunk>;

/// Complete record-set entries of one partition from one Fetch response.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) records: Bytes,
    /// Records before this offset are skipped (the fetch offset).
    pub(crate) start: i64,
    pub(crate) high_water_mark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) aborted: Vec<crate::protocol::messages::fetch_response::AbortedTransaction>,
}

pub(crate) struct ConsumerInner {
    pub(crate) client: Client,
    pub(crate) settings: Arc<Settings>,
    pub(crate) paused_all: Arc<AtomicBool>,
    pub(crate) fetchers: Mutex<HashMap<i32, FetcherHandle>>,
    /// The partitions with a live partition consumer.
    pub(crate) active: ActiveSet,
    pub(crate) closed: AtomicBool,
}

/// Consumes partitions (Sarama's `Consumer`): cheap to clone; every clone
/// shares the fetchers. Dropping the last clone stops the fetchers as
/// [`Consumer::close`] does, so keep it while its partition consumers are
/// in use.
#[derive(Clone)]
pub struct Consumer {
    inner: Arc<ConsumerInner>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("fetchers", &lock(&self.inner.fetchers).len())
            .finish()
    }
}

impl Consumer {
    /// A consumer with settings from `client.config().consumer` and the
    /// default [`ConsumerOptions`].
    pub fn new(client: Client) -> Consumer {
        let options = ConsumerOptions::for_client(&client);
        Self::with_options(client, options)
    }

    /// A consumer with explicit [`ConsumerOptions`].
    ///
    /// ```no_run
    /// use klamm::consumer::{Consumer, ConsumerOptions, OffsetResetPolicy};
    /// # async fn run(client: klamm::Client) {
    /// let mut options = ConsumerOptions::for_client(&client);
    /// options.offset_reset = OffsetResetPolicy::Error;
    /// options.prefetch_chunks = 4;
    /// let consumer = Consumer::with_options(client, options);
    /// # }
    /// ```
    pub fn with_options(client: Client, options: ConsumerOptions) -> Consumer {
        Self::with_class(client, options, TrafficClass::Fetch)
    }

    /// A consumer whose fetches go on connections of `class` (the side
    /// channel's reader: a dedicated class, so it does not wait behind
    /// the group consumer's own long polls).
    pub(crate) fn with_class(
        client: Client,
        options: ConsumerOptions,
        class: TrafficClass,
    ) -> Consumer {
        let config = client.config();
        let c = &config.consumer;
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let settings = Settings {
            min_bytes: clamp(c.fetch_min_bytes),
            max_bytes: clamp(c.fetch_max_bytes).max(1),
            partition_max_bytes: clamp(c.max_partition_fetch_bytes).max(1),
            max_wait: c.fetch_max_wait,
            request_timeout: config.net.request_timeout,
            isolation: c.isolation_level,
            decode: DecodeOptions::default()
                .with_verify_crc(c.check_crcs)
                .with_max_decompressed_size(c.decompression_cap())
                .with_copy_uncompressed_batches(true),
            options: ConsumerOptions {
                prefetch_chunks: options.prefetch_chunks.max(1),
                ..options
            },
            class,
        };
        Consumer {
            inner: Arc::new(ConsumerInner {
                client,
                settings: Arc::new(settings),
                paused_all: Arc::new(AtomicBool::new(false)),
                fetchers: Mutex::new(HashMap::default()),
                active: Arc::new(Mutex::new(HashSet::default())),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The client this consumer fetches through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Starts consuming `topic`/`partition` from `start`. The start offset
    /// is resolved now (an error here means the partition is unknown or
    /// its leader unreachable); records then flow in the background. A
    /// partition can have one partition consumer at a time per consumer
    /// (a second gives a configuration error until the first is closed).
    ///
    /// `Newest` is the partition's high watermark, read from a Fetch
    /// response rather than ListOffsets LATEST (which some brokers answer
    /// wrongly).
    pub async fn consume_partition(
        &self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<PartitionConsumer> {
        let guard = self.claim(topic, partition)?;
        let client = &self.inner.client;
        // Fails early for an unknown topic or partition.
        client.leader(topic, partition).await?;
        let offset =
            starts::resolve_start(client, &self.inner.settings, topic, partition, start).await?;
        Ok(self.start_at(guard, topic, partition, offset).await)
    }

    /// Starts consuming each of `partitions` of `topic` from `start`, as
    /// [`Consumer::consume_partition`] does for one, in the order given.
    /// `Oldest` and `Timestamp` starts are resolved together, in one
    /// ListOffsets request per leader (the Java consumer's `assign` and
    /// `seekToBeginning` do the same) rather than one per partition: with
    /// hundreds of partitions that is the difference between a start in
    /// milliseconds and one in seconds.
    ///
    /// Nothing starts unless every partition can: an unknown partition,
    /// one listed twice or already consumed by this consumer fails the
    /// whole call.
    ///
    /// ```no_run
    /// use klamm::consumer::{Consumer, StartOffset};
    /// # async fn run(client: klamm::Client) -> klamm::Result<()> {
    /// let partitions = client.partitions("events").await?;
    /// let consumer = Consumer::new(client);
    /// for mut pc in consumer
    ///     .consume_partitions("events", &partitions, StartOffset::Oldest)
    ///     .await?
    /// {
    ///     tokio::spawn(async move {
    ///         while let Some(Ok(record)) = pc.recv().await {
    ///             println!("{}/{} at {}", record.topic, record.partition, record.offset);
    ///         }
    ///     });
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn consume_partitions(
        &self,
        topic: &str,
        partitions: &[i32],
        start: StartOffset,
    ) -> Result<Vec<PartitionConsumer>> {
        let guards = partitions
            .iter()
            .map(|&p| self.claim(topic, p))
            .collect::<Result<Vec<_>>>()?;
        let client = &self.inner.client;
        for &p in partitions {
            client.leader(topic, p).await?;
        }
        let starts: Vec<(i32, StartOffset)> = partitions.iter().map(|&p| (p, start)).collect();
        let offsets = starts::resolve_starts(client, &self.inner.settings, topic, &starts).await?;
        let mut started = Vec::with_capacity(partitions.len());
        for ((guard, &p), offset) in guards.into_iter().zip(partitions).zip(offsets) {
            started.push(self.start_at(guard, topic, p, offset).await);
        }
        Ok(started)
    }

    /// Marks `topic`/`partition` as consumed by this consumer, while the
    /// guard lives.
    fn claim(&self, topic: &str, partition: i32) -> Result<ActiveGuard> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::State {
                reason: "the consumer is closed".into(),
            });
        }
        let key: (Arc<str>, i32) = (Arc::from(topic), partition);
        if !lock(&self.inner.active).insert(key.clone()) {
            return Err(Error::State {
                reason: format!("{topic}/{partition} is already being consumed by this consumer"),
            });
        }
        Ok(ActiveGuard {
            active: self.inner.active.clone(),
            key: Some(key),
        })
    }

    /// A partition consumer for a claimed partition, fetching from
    /// `offset`.
    async fn start_at(
        &self,
        guard: ActiveGuard,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> PartitionConsumer {
        let (tx, rx) = mpsc::channel(self.inner.settings.options.prefetch_chunks);
        let shared = Arc::new(PartitionShared {
            topic: Arc::from(topic),
            partition,
            high_water_mark: AtomicI64::new(-1),
            last_stable_offset: AtomicI64::new(-1),
            paused: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: Mutex::new(None),
        });
        let tracked = Tracked::new(shared.clone(), tx, offset, &self.inner.settings);
        place(self.inner.clone(), tracked, Placement::Initial).await;
        PartitionConsumer::new(
            shared,
            rx,
            self.inner.settings.clone(),
            self.inner.paused_all.clone(),
            guard,
        )
    }

    /// The offset `start` names for `topic`/`partition` now (as
    /// [`Consumer::consume_partition`] would start there).
    pub(crate) async fn resolve_start_offset(
        &self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<i64> {
        starts::resolve_start(
            &self.inner.client,
            &self.inner.settings,
            topic,
            partition,
            start,
        )
        .await
    }

    /// The offset each `(partition, start)` names in `topic`, resolved
    /// together (one ListOffsets, and for `Newest` one Fetch, per leader).
    pub(crate) async fn resolve_start_offsets(
        &self,
        topic: &str,
        starts: &[(i32, StartOffset)],
    ) -> Result<Vec<i64>> {
        starts::resolve_starts(&self.inner.client, &self.inner.settings, topic, starts).await
    }

    /// Stops fetching every partition of this consumer: what is already
    /// buffered is still delivered, a fetch in flight delivers nothing more
    /// (see [`PartitionConsumer::pause`]).
    pub fn pause_all(&self) {
        self.inner.paused_all.store(true, Ordering::SeqCst);
    }

    /// Undoes [`Consumer::pause_all`]; partitions paused one by one stay
    /// paused.
    pub fn resume_all(&self) {
        self.inner.paused_all.store(false, Ordering::SeqCst);
        for f in lock(&self.inner.fetchers).values() {
            f.wake.notify_one();
        }
    }

    /// Stops every fetcher. Partition consumers deliver what they buffered,
    /// then end.
    pub async fn close(self) {
        self.inner.closed.store(true, Ordering::Release);
        let fetchers: Vec<FetcherHandle> =
            lock(&self.inner.fetchers).drain().map(|(_, f)| f).collect();
        for f in &fetchers {
            let _ = f.cmd.send(Cmd::Shutdown);
            f.stop.notify_one();
        }
        for f in fetchers {
            let _ = f.task.await;
        }
    }
}

/// The partitions with a live partition consumer.
type ActiveSet = Arc<Mutex<HashSet<session::Key>>>;

/// Keeps a partition marked as consumed while its consumer lives.
#[derive(Debug)]
pub(crate) struct ActiveGuard {
    active: ActiveSet,
    key: Option<(Arc<str>, i32)>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            lock(&self.active).remove(&k);
        }
    }
}

/// Why a partition is being (re)placed on a fetcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// A new partition consumer; metadata is fresh enough.
    Initial,
    /// The leader moved or is unknown: refresh metadata first.
    LeaderMoved,
    /// The fetch offset was out of range: apply the reset policy first.
    OutOfRange,
}

/// Puts `tracked` on the fetcher of its partition's leader, retrying (with
/// backoff) while the leader cannot be found. Runs until placed, the
/// partition consumer is closed, or the consumer closes.
pub(crate) async fn place(inner: Arc<ConsumerInner>, mut tracked: Tracked, why: Placement) {
    // No deadline: a partition waits for a leader as long as it is consumed.
    let mut retry = RetryPolicy::constant(inner.settings.options.retry_backoff).start();
    let (topic, partition) = (tracked.shared.topic.clone(), tracked.shared.partition);
    let mut refresh = why == Placement::LeaderMoved;
    let mut reset = why == Placement::OutOfRange;
    // After a leader move or a failed broker, wait before asking again, or
    // a broker that is down would be asked in a tight loop.
    let mut failed: Option<Error> = (why == Placement::LeaderMoved).then(|| Error::Broker {
        api: crate::protocol::messages::ApiKey::Fetch,
        code: crate::protocol::error_codes::ErrorCode::NOT_LEADER_OR_FOLLOWER,
        context: Some(format!("{topic}/{partition}")),
    });
    loop {
        if let Some(e) = failed.take() {
            // Without a deadline the pause always ends in another attempt.
            let _ = retry.pause(e).await;
        }
        if tracked.is_closed() || inner.closed.load(Ordering::Acquire) {
            return;
        }
        if reset {
            let policy = inner.settings.options.offset_reset;
            let next = match policy {
                OffsetResetPolicy::Error => {
                    let offset = tracked.offset;
                    tracked.fail(Error::Broker {
                        api: crate::protocol::messages::ApiKey::Fetch,
                        code: crate::protocol::error_codes::ErrorCode::OFFSET_OUT_OF_RANGE,
                        context: Some(format!(
                            "{topic}/{partition} at offset {offset}; the reset policy is error"
                        )),
                    });
                    return;
                }
                OffsetResetPolicy::Oldest => {
                    inner
                        .client
                        .list_offsets(&topic, partition, OffsetSpec::Oldest)
                        .await
                }
                OffsetResetPolicy::Newest => {
                    fetcher::high_water_mark(&inner.client, &inner.settings, &topic, partition)
                        .await
                }
            };
            match next {
                Ok(o) => {
                    tracing::info!(%topic, partition, from = tracked.offset, to = o, ?policy,
                        "fetch offset out of range; reset");
                    tracked.offset = o;
                    reset = false;
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(%topic, partition, error = %e, "offset reset failed; retrying");
                    failed = Some(e);
                    continue;
                }
                Err(e) => {
                    tracked.fail(e);
                    return;
                }
            }
        }
        if refresh {
            if let Err(e) = inner
                .client
                .refresh_metadata(Some(&[topic.to_string()]))
                .await
            {
                tracing::debug!(%topic, partition, error = %e, "metadata refresh failed; retrying");
                failed = Some(e);
                continue;
            }
        }
        let leader = match inner.client.leader(&topic, partition).await {
            Ok(l) => l,
            Err(e) if e.is_retriable() => {
                tracing::debug!(%topic, partition, error = %e, "no leader yet; retrying");
                refresh = true;
                failed = Some(e);
                continue;
            }
            Err(e) => {
                tracked.fail(e);
                return;
            }
        };
        tracked.leader_epoch = inner
            .client
            .metadata()
            .partition(&topic, partition)
            .map_or(-1, |p| p.leader_epoch);
        match fetcher::assign(&inner, &leader, tracked) {
            Ok(()) => return,
            Err(back) => {
                // The fetcher is shutting down (the consumer closes).
                tracked = back;
                refresh = true;
                failed = Some(Error::Disconnected {
                    broker: leader.addr(),
                    reason: "its fetcher is shutting down".into(),
                });
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
