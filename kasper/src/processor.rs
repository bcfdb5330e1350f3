//! The topic processor: one batch per partition number over every input
//! topic, processed, its outputs produced, then its offsets committed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use klamm::Client;
use klamm::client::OffsetSpec;
use klamm::config::{Acks, OffsetReset};
use klamm::consumer::{ConsumedBatch, Consumer, ConsumerRecord, PartitionConsumer, StartOffset};
use klamm::group::assignor::RangeAssignor;
use klamm::group::{
    AckMode, Acker, GroupConsumer, GroupEvent, GroupOptions, OffsetAndMetadata, OffsetManager,
    TopicPartition,
};
use klamm::producer::AsyncProducer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{Config, Initial};
use crate::error::{BoxError, Error};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::sender::Sender;

/// A batch processor for one partition number (Kasper's
/// `MessageProcessor`): the [`TopicProcessor`] makes one per partition
/// with its factory and hands it every batch of that partition number.
///
/// ```
/// use klamm::consumer::ConsumerRecord;
/// use klamm::producer::ProducerRecord;
/// use klamm_kasper::{BoxError, Processor, Sender};
///
/// /// Upper-cases every value into `shouts`, keeping keys and partitions.
/// struct Shout;
///
/// impl Processor for Shout {
///     async fn process(&mut self, batch: &[ConsumerRecord], out: &mut Sender<'_>) -> Result<(), BoxError> {
///         for r in batch {
///             let value = r.value.as_deref().unwrap_or_default().to_ascii_uppercase();
///             let mut record = ProducerRecord::new("shouts", value).with_partition(r.partition);
///             record.key = r.key.clone();
///             out.send(record);
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Processor: Send {
    /// Processes one batch: at most `batch_size` records of this
    /// partition number, from every input topic, each topic's in offset
    /// order. Outputs go to `sender`. An error stops the run and nothing
    /// of this batch is committed; nothing of it is produced either,
    /// beyond what `sender.flush()` already handed to the producer.
    fn process(
        &mut self,
        batch: &[ConsumerRecord],
        sender: &mut Sender<'_>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// What a running processor shares with its [`Handle`]s.
struct Shared {
    client: Client,
    topics: Vec<String>,
    /// The partition numbers processed now: the configured ones, or the
    /// group's current assignment.
    partitions: Mutex<Vec<i32>>,
    close: watch::Sender<bool>,
    metrics: Metrics,
}

impl Shared {
    fn partitions(&self) -> Vec<i32> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A handle on a topic processor, usable while it runs: close it, ask
/// whether it has caught up, read its metrics.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Asks the processor to stop (Kasper's `Close`; calling it again does
    /// nothing). A batch being processed finishes first; batches still
    /// gathering are dropped uncommitted, so they are read again on the
    /// next start. [`TopicProcessor::run`] then returns `Ok(())`.
    pub fn close(&self) {
        self.shared.close.send_replace(true);
    }

    /// Whether every input partition's committed offset (or, before the
    /// first commit, its starting offset) is its high watermark now
    /// (Kasper's `HasConsumedAllMessages`): every record written so far
    /// was processed, its outputs acknowledged and its offset committed.
    /// Unlike Kasper, an empty partition counts as consumed. With the
    /// partitions from a group: `false` while none is assigned, and a
    /// partition with nothing committed counts once a batch of it is.
    pub async fn has_consumed_all(&self) -> klamm::Result<bool> {
        let s = &*self.shared;
        let partitions = s.partitions();
        if partitions.is_empty() {
            return Ok(false);
        }
        for topic in &s.topics {
            let ends = s
                .client
                .list_partition_offsets(topic, &partitions, OffsetSpec::Newest)
                .await?;
            for &p in &partitions {
                let end = ends.get(&p).and_then(|o| o.offset);
                if end.is_none() || s.metrics.next_of(topic, p) != end {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The partition numbers processed now: the configured ones, or
    /// those of the group's current assignment (none before it joined).
    pub fn partitions(&self) -> Vec<i32> {
        self.shared.partitions()
    }

    /// The metrics of every input and output partition seen so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }
}

/// One partition number's processor and the batch it is gathering.
struct Lane<P> {
    processor: P,
    batch: Vec<ConsumerRecord>,
}

/// Kasper's topic processor on klamm: consumes the configured partitions
/// of every input topic, gathers one batch per partition number across
/// the topics, hands it to that partition's [`Processor`] when it holds
/// `batch_size` records or on the next `batch_wait` tick, produces the
/// outputs with `acks=all`, and only then commits the batch's input
/// offsets to the group [`Config::group`].
///
/// ```no_run
/// use klamm::consumer::ConsumerRecord;
/// use klamm_kasper::{BoxError, Config, Processor, Sender, TopicProcessor};
///
/// struct Count(usize);
/// impl Processor for Count {
///     async fn process(&mut self, batch: &[ConsumerRecord], _: &mut Sender<'_>) -> Result<(), BoxError> {
///         self.0 += batch.len();
///         Ok(())
///     }
/// }
///
/// # async fn run(client: klamm::Client) -> Result<(), klamm_kasper::Error> {
/// let config = Config::new("counter", ["clicks", "views"], [0, 1, 2, 3]);
/// let processor = TopicProcessor::new(client, config, |_partition| Count(0)).await?;
/// let handle = processor.handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     handle.close();
/// });
/// processor.run().await
/// # }
/// ```
pub struct TopicProcessor<P> {
    config: Config,
    shared: Arc<Shared>,
    producer: AsyncProducer,
    commit: Commit,
    factory: Box<dyn FnMut(i32) -> P + Send>,
    lanes: BTreeMap<i32, Lane<P>>,
}

/// Where a batch's offsets go once its outputs are acknowledged.
enum Commit {
    /// Configured partitions: straight to the group's offsets.
    Direct(OffsetManager),
    /// Partitions from the group: finished through the member's acker,
    /// then committed under its generation.
    Member {
        acker: Acker,
        offsets: OffsetManager,
    },
}

/// What the loop reads from.
enum Source {
    /// Configured partitions: one forwarder task per partition consumer,
    /// all into `rx`; they stop when `halt` is dropped.
    Listed {
        rx: mpsc::Receiver<Forwarded>,
        halt: watch::Sender<()>,
        forwarders: JoinSet<()>,
        consumer: Consumer,
    },
    /// A member of the group.
    Member(Box<GroupConsumer>),
}

/// What the loop handles.
enum Event {
    Records(ConsumedBatch),
    Assigned(Vec<TopicPartition>),
    Gone(Vec<TopicPartition>),
}

impl Source {
    async fn next(&mut self) -> Option<Result<Event, Error>> {
        match self {
            Source::Listed { rx, .. } => rx.recv().await.map(|f| match f {
                Forwarded::Batch(b) => Ok(Event::Records(b)),
                Forwarded::Failed(e) => Err(e.into()),
                Forwarded::Ended { topic, partition } => {
                    Err(Error::ConsumerEnded { topic, partition })
                }
            }),
            Source::Member(group) => loop {
                return Some(match group.recv().await? {
                    Ok(GroupEvent::Records(b)) => Ok(Event::Records(b)),
                    Ok(GroupEvent::Assigned(tps)) => Ok(Event::Assigned(tps)),
                    Ok(GroupEvent::Revoked(tps)) => Ok(Event::Gone(tps)),
                    Ok(GroupEvent::Lost { partitions, .. }) => Ok(Event::Gone(partitions)),
                    Ok(_) => continue,
                    Err(e) => Err(e.into()),
                });
            },
        }
    }

    async fn close(self) -> klamm::Result<()> {
        match self {
            Source::Listed {
                rx,
                halt,
                mut forwarders,
                consumer,
            } => {
                drop(halt);
                drop(rx);
                while forwarders.join_next().await.is_some() {}
                consumer.close().await;
                Ok(())
            }
            Source::Member(group) => group.close().await,
        }
    }
}

impl<P: Processor> TopicProcessor<P> {
    /// Checks the configuration against the cluster (the input topics
    /// exist with the same partition count, which every configured
    /// partition is below; the client produces with `acks=all`), makes one
    /// processor per configured partition with `factory`, and starts the
    /// producer. Nothing is consumed before [`TopicProcessor::run`].
    pub async fn new(
        client: Client,
        config: Config,
        factory: impl FnMut(i32) -> P + Send + 'static,
    ) -> Result<Self, Error> {
        config.validate()?;
        let mut counts: Vec<(String, usize)> = Vec::new();
        for topic in &config.input_topics {
            counts.push((topic.clone(), client.partitions(topic).await?.len()));
        }
        let (first, n) = &counts[0];
        if let Some((other, m)) = counts.iter().find(|(_, m)| m != n) {
            return Err(Error::Config {
                field: "input_topics",
                reason: format!(
                    "{first} has {n} partitions and {other} {m}: input topics must have the same number"
                ),
            });
        }
        if let Some(p) = config.partitions.iter().find(|&&p| p as usize >= *n) {
            return Err(Error::Config {
                field: "partitions",
                reason: format!("partition {p} is not below the input topics' {n} partitions"),
            });
        }
        if client.config().producer.acks != Acks::All {
            return Err(Error::Config {
                field: "acks",
                reason: "the processor's outputs are produced with acks=all; the client is set to another value".into(),
            });
        }
        let producer = AsyncProducer::new(client.clone()).await?;
        let offsets = OffsetManager::new(client.clone(), config.group());
        let (close, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            client,
            topics: config.input_topics.clone(),
            partitions: Mutex::new(config.partitions.clone()),
            close,
            metrics: Metrics::default(),
        });
        let mut processor = TopicProcessor {
            shared,
            producer,
            commit: Commit::Direct(offsets),
            factory: Box::new(factory),
            lanes: BTreeMap::new(),
            config,
        };
        for p in processor.config.partitions.clone() {
            processor.lane(p);
        }
        Ok(processor)
    }

    /// Partition `p`'s lane, made (with the factory) the first time.
    fn lane(&mut self, p: i32) -> &mut Lane<P> {
        let (factory, size) = (&mut self.factory, self.config.batch_size);
        self.lanes.entry(p).or_insert_with(|| Lane {
            processor: factory(p),
            batch: Vec::with_capacity(size.min(4096)),
        })
    }

    /// A handle to close the processor, check its progress and read its
    /// metrics while it runs.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs until [`Handle::close`] (then `Ok(())`) or the first failure:
    /// a processor's error, an output that could not be produced, a commit
    /// or a read that failed. Either way the partition consumers and the
    /// producer are closed before it returns. The failed batch is not
    /// committed; outputs of it already handed to the producer (by
    /// `Sender::flush`, or ahead of an output that failed) may still be
    /// written when the producer closes, and are written again when the
    /// batch is processed again: outputs are at least once.
    pub async fn run(mut self) -> Result<(), Error> {
        let outcome = self.run_loop().await;
        let closed = self.producer.close().await;
        outcome?;
        closed.map_err(Error::from)
    }

    async fn run_loop(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let mut close = shared.close.subscribe();
        if *close.borrow_and_update() {
            return Ok(());
        }
        let mut source = if self.config.from_group {
            self.join().await?
        } else {
            self.listen().await?
        };
        let wait = self.config.batch_wait;
        let mut tick = tokio::time::interval_at(Instant::now() + wait, wait);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut owned: BTreeSet<TopicPartition> = BTreeSet::new();
        let outcome = loop {
            let step = tokio::select! {
                biased;
                _ = close.changed() => break Ok(()),
                // Before the records: a steady stream must not hold back
                // the timed flush of quieter partitions.
                _ = tick.tick() => self.flush_all().await,
                event = source.next() => match event {
                    None => break Ok(()),
                    Some(Err(e)) => Err(e),
                    Some(Ok(Event::Records(batch))) => self.gather(batch).await,
                    Some(Ok(Event::Assigned(tps))) => self.assigned(tps, &mut owned).await,
                    Some(Ok(Event::Gone(tps))) => {
                        self.gone(&tps, &mut owned);
                        Ok(())
                    }
                },
            };
            if let Err(e) = step {
                break Err(e);
            }
        };
        let closed = source.close().await;
        outcome?;
        closed.map_err(Error::from)
    }

    /// Starts the configured partitions and their forwarders.
    async fn listen(&mut self) -> Result<Source, Error> {
        let consumer = Consumer::new(self.shared.client.clone());
        let consumers = match self.start(&consumer).await {
            Ok(c) => c,
            Err(e) => {
                consumer.close().await;
                return Err(e);
            }
        };
        let (halt, halted) = watch::channel(());
        let (tx, rx) = mpsc::channel(2 * consumers.len());
        let mut forwarders = JoinSet::new();
        for pc in consumers {
            forwarders.spawn(forward(pc, tx.clone(), halted.clone()));
        }
        Ok(Source::Listed {
            rx,
            halt,
            forwarders,
            consumer,
        })
    }

    /// Joins the group [`Config::group`] as a member (range assignor,
    /// records finished explicitly, no auto-commit), on a client of its
    /// own whose `group.id` is that group.
    async fn join(&mut self) -> Result<Source, Error> {
        let mut config = self.shared.client.config().clone();
        config.consumer.group_id = Some(self.config.group());
        config.consumer.enable_auto_commit = false;
        config.consumer.auto_offset_reset = match self.config.initial {
            Initial::Oldest => OffsetReset::Earliest,
            Initial::Newest => OffsetReset::Latest,
        };
        let client = Client::connect(config).await?;
        let options = GroupOptions {
            ack: AckMode::Explicit,
            assignors: Some(vec![Arc::new(RangeAssignor)]),
            ..GroupOptions::default()
        };
        let group =
            GroupConsumer::with_options(client, self.config.input_topics.clone(), options).await?;
        self.commit = Commit::Member {
            acker: group.acker(),
            offsets: group.offsets().clone(),
        };
        Ok(Source::Member(Box::new(group)))
    }

    /// Partitions the group gave this member: lanes for their numbers,
    /// and their committed offsets as where they stand.
    async fn assigned(
        &mut self,
        tps: Vec<TopicPartition>,
        owned: &mut BTreeSet<TopicPartition>,
    ) -> Result<(), Error> {
        for tp in &tps {
            self.lane(tp.partition);
        }
        if let Commit::Member { offsets, .. } = &self.commit {
            let committed = offsets.fetch(&tps).await?;
            let spec = match self.config.initial {
                Initial::Oldest => OffsetSpec::Oldest,
                Initial::Newest => OffsetSpec::Newest,
            };
            let metrics = &self.shared.metrics;
            let mut fresh: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in &tps {
                match committed.get(tp) {
                    Some(o) => metrics.next_offset(&tp.topic, tp.partition, o.offset),
                    None => fresh.entry(&tp.topic).or_default().push(tp.partition),
                }
            }
            // Nothing committed: where the member starts (its
            // auto.offset.reset follows `initial`).
            for (topic, parts) in fresh {
                let found = self
                    .shared
                    .client
                    .list_partition_offsets(topic, &parts, spec)
                    .await?;
                for (p, o) in found {
                    if let Some(at) = o.offset {
                        metrics.next_offset(topic, p, at);
                    }
                }
            }
        }
        owned.extend(tps);
        self.set_partitions(owned);
        Ok(())
    }

    /// Partitions revoked or lost: their records still gathering are
    /// dropped (not finished, so not committed: their next owner reads
    /// them); the other topics' records of the same number stay.
    fn gone(&mut self, tps: &[TopicPartition], owned: &mut BTreeSet<TopicPartition>) {
        let gone: BTreeSet<(&str, i32)> = tps
            .iter()
            .map(|tp| (tp.topic.as_str(), tp.partition))
            .collect();
        for lane in self.lanes.values_mut() {
            lane.batch
                .retain(|r| !gone.contains(&(&*r.topic, r.partition)));
        }
        for tp in tps {
            owned.remove(tp);
        }
        self.set_partitions(owned);
    }

    fn set_partitions(&self, owned: &BTreeSet<TopicPartition>) {
        let mut numbers: Vec<i32> = owned.iter().map(|tp| tp.partition).collect();
        numbers.sort_unstable();
        numbers.dedup();
        *self
            .shared
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = numbers;
    }

    /// Starts every (topic, partition): at its committed offset, at the
    /// newest if that is past the log's end (the topic was recreated), or
    /// where `initial` says when nothing is committed.
    async fn start(&mut self, consumer: &Consumer) -> Result<Vec<PartitionConsumer>, Error> {
        let c = &self.config;
        let tps: Vec<TopicPartition> = c
            .input_topics
            .iter()
            .flat_map(|t| c.partitions.iter().map(move |&p| TopicPartition::new(t, p)))
            .collect();
        let Commit::Direct(offsets) = &self.commit else {
            return Ok(Vec::new());
        };
        let committed = offsets.fetch(&tps).await?;
        let mut started = Vec::with_capacity(tps.len());
        for topic in &c.input_topics {
            let client = &self.shared.client;
            let ends = client
                .list_partition_offsets(topic, &c.partitions, OffsetSpec::Newest)
                .await?;
            let firsts = client
                .list_partition_offsets(topic, &c.partitions, OffsetSpec::Oldest)
                .await?;
            for &p in &c.partitions {
                let end = ends.get(&p).and_then(|o| o.offset);
                let first = firsts.get(&p).and_then(|o| o.offset);
                // Where it starts, and the offset that stands for it until
                // a batch is committed (so an empty partition, or one
                // consumed before, counts as consumed at once).
                let (start, at) = match committed.get(&TopicPartition::new(topic, p)) {
                    Some(o) if end.is_some_and(|end| o.offset > end) => (StartOffset::Newest, end),
                    Some(o) => (StartOffset::Offset(o.offset), Some(o.offset)),
                    None => match c.initial {
                        Initial::Oldest => (StartOffset::Oldest, first),
                        Initial::Newest => (StartOffset::Newest, end),
                    },
                };
                let pc = consumer.consume_partition(topic, p, start).await?;
                if let Some(at) = at {
                    self.shared.metrics.next_offset(topic, p, at);
                }
                started.push(pc);
            }
        }
        Ok(started)
    }

    /// Adds a fetched run of records to its partition number's batch,
    /// processing the batch each time it reaches `batch_size`.
    async fn gather(&mut self, fetched: ConsumedBatch) -> Result<(), Error> {
        let p = fetched.partition;
        self.shared
            .metrics
            .high_water_mark(&fetched.topic, p, fetched.high_water_mark);
        for record in fetched.records {
            let lane = self.lane(p);
            lane.batch.push(record);
            if lane.batch.len() >= self.config.batch_size {
                self.process(p).await?;
            }
        }
        Ok(())
    }

    /// On a tick: every partition's non-empty batch, by partition number
    /// (empty ones are not processed).
    async fn flush_all(&mut self) -> Result<(), Error> {
        let ready: Vec<i32> = self
            .lanes
            .iter()
            .filter(|(_, l)| !l.batch.is_empty())
            .map(|(&p, _)| p)
            .collect();
        for p in ready {
            self.process(p).await?;
        }
        Ok(())
    }

    /// Processes partition `p`'s batch, produces its outputs, commits its
    /// input offsets.
    async fn process(&mut self, p: i32) -> Result<(), Error> {
        let Some(lane) = self.lanes.get_mut(&p) else {
            return Ok(());
        };
        let batch = std::mem::take(&mut lane.batch);
        let metrics = &self.shared.metrics;
        let mut next: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        for r in &batch {
            metrics.incoming(&r.topic, p, 1);
            next.insert(
                TopicPartition::new(&*r.topic, p),
                OffsetAndMetadata::new(r.offset + 1),
            );
        }
        let mut sender = Sender::new(&self.producer, metrics);
        lane.processor
            .process(&batch, &mut sender)
            .await
            .map_err(|source| Error::Process {
                partition: p,
                source,
            })?;
        sender.flush().await?;
        match &self.commit {
            Commit::Direct(offsets) => {
                offsets.commit_offsets(next.clone()).await?;
            }
            Commit::Member { acker, offsets } => {
                let mut last: BTreeMap<&str, &ConsumerRecord> = BTreeMap::new();
                for r in &batch {
                    last.insert(&r.topic, r);
                }
                for r in last.values() {
                    // `false`: the partition is no longer this member's;
                    // its offset is then not committed here.
                    acker.done_through(r);
                }
                let done = match offsets.commit().await {
                    Ok(done) => done,
                    // The group is rebalancing (or moved on to a new
                    // generation): the outputs are out but the offsets are
                    // not committed, so whoever owns the partitions next
                    // reads the batch again (at least once). The member
                    // rejoins with the next `recv`; the run goes on.
                    Err(e) if rebalancing(&e) => {
                        tracing::warn!(partition = p, error = %e, "commit refused by a rebalance; the batch will be read again");
                        BTreeMap::new()
                    }
                    Err(e) => return Err(e.into()),
                };
                next.retain(|tp, _| done.contains_key(tp));
            }
        }
        for (tp, o) in &next {
            metrics.next_offset(&tp.topic, tp.partition, o.offset);
        }
        lane.batch = batch;
        lane.batch.clear();
        Ok(())
    }
}

/// Forwards one partition consumer's fetched runs until it ends, fails,
/// nobody listens, or `halted` says stop; then closes it.
async fn forward(
    mut pc: PartitionConsumer,
    tx: mpsc::Sender<Forwarded>,
    mut halted: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            next = pc.recv_batch() => {
                let (item, last) = match next {
                    Some(Ok(b)) => (Forwarded::Batch(b), false),
                    Some(Err(e)) => (Forwarded::Failed(e), true),
                    None => {
                        let (topic, partition) = (pc.topic().to_string(), pc.partition());
                        (Forwarded::Ended { topic, partition }, true)
                    }
                };
                if tx.send(item).await.is_err() || last {
                    break;
                }
            }
            _ = halted.changed() => break,
        }
    }
    pc.close().await;
}

/// What a forwarder passes on: a fetched run, or why it stopped.
enum Forwarded {
    Batch(ConsumedBatch),
    Failed(klamm::Error),
    /// The partition consumer stopped delivering (it never does while
    /// the processor runs, unless something closed it).
    Ended {
        topic: String,
        partition: i32,
    },
}

/// Whether a commit failed because the group is rebalancing or has a new
/// generation (the member rejoins; nothing is wrong with the run).
fn rebalancing(e: &klamm::Error) -> bool {
    use klamm::protocol::error_codes::ErrorCode;
    matches!(
        e.kafka_code(),
        Some(
            ErrorCode::REBALANCE_IN_PROGRESS
                | ErrorCode::ILLEGAL_GENERATION
                | ErrorCode::UNKNOWN_MEMBER_ID
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A processor that is `Send` but not `Sync` (a `Cell`).
    struct Tally(std::cell::Cell<usize>);

    impl Processor for Tally {
        async fn process(
            &mut self,
            batch: &[ConsumerRecord],
            _: &mut Sender<'_>,
        ) -> Result<(), BoxError> {
            self.0.set(self.0.get() + batch.len());
            Ok(())
        }
    }

    /// Compiles only if a run can go to `tokio::spawn` with such a
    /// processor: the loop holds `&mut self` (which needs `Send` only)
    /// across its awaits, never `&self` (which would need `Sync`).
    #[allow(dead_code)]
    fn a_run_is_send_for_processors_that_are_not_sync(p: TopicProcessor<Tally>) {
        fn send<T: Send>(_: T) {}
        send(p.run());
    }
}
