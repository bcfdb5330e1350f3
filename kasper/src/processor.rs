//! The topic processor: one batch per partition number over every input
//! topic, processed, its outputs produced, then its offsets committed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use klamm::Client;
use klamm::client::OffsetSpec;
use klamm::config::Acks;
use klamm::consumer::{ConsumedBatch, Consumer, ConsumerRecord, PartitionConsumer, StartOffset};
use klamm::group::{OffsetAndMetadata, OffsetManager, TopicPartition};
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
    /// order. Outputs go to `sender`. An error stops the run: nothing of
    /// this batch is produced (beyond what `sender.flush()` already wrote)
    /// or committed.
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
    partitions: Vec<i32>,
    close: watch::Sender<bool>,
    metrics: Metrics,
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
    /// Unlike Kasper, an empty partition counts as consumed.
    pub async fn has_consumed_all(&self) -> klamm::Result<bool> {
        let s = &*self.shared;
        for topic in &s.topics {
            let ends = s
                .client
                .list_partition_offsets(topic, &s.partitions, OffsetSpec::Newest)
                .await?;
            for &p in &s.partitions {
                let end = ends.get(&p).and_then(|o| o.offset);
                if end.is_none() || s.metrics.next_of(topic, p) != end {
                    return Ok(false);
                }
            }
        }
        Ok(true)
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
    offsets: OffsetManager,
    lanes: BTreeMap<i32, Lane<P>>,
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
        mut factory: impl FnMut(i32) -> P,
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
        let lanes = config
            .partitions
            .iter()
            .map(|&p| {
                let lane = Lane {
                    processor: factory(p),
                    batch: Vec::with_capacity(config.batch_size.min(4096)),
                };
                (p, lane)
            })
            .collect();
        let (close, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            client,
            topics: config.input_topics.clone(),
            partitions: config.partitions.clone(),
            close,
            metrics: Metrics::default(),
        });
        Ok(TopicProcessor {
            config,
            shared,
            producer,
            offsets,
            lanes,
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
    /// producer are closed before it returns; the failed batch is neither
    /// committed nor (beyond `Sender::flush`) produced.
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
        let consumer = Consumer::new(shared.client.clone());
        let started = self.start(&consumer).await;
        let consumers = match started {
            Ok(c) => c,
            Err(e) => {
                consumer.close().await;
                return Err(e);
            }
        };

        // One forwarder per partition consumer, all into one channel; they
        // stop when `halt` is dropped.
        let (halt, halted) = watch::channel(());
        let (tx, mut rx) = mpsc::channel::<klamm::Result<ConsumedBatch>>(2 * consumers.len());
        let mut forwarders = JoinSet::new();
        for pc in consumers {
            forwarders.spawn(forward(pc, tx.clone(), halted.clone()));
        }
        drop(tx);

        let wait = self.config.batch_wait;
        let mut tick = tokio::time::interval_at(Instant::now() + wait, wait);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let outcome = loop {
            tokio::select! {
                biased;
                _ = close.changed() => break Ok(()),
                // Before the records: a steady stream must not hold back
                // the timed flush of quieter partitions.
                _ = tick.tick() => {
                    if let Err(e) = self.flush_all().await {
                        break Err(e);
                    }
                }
                item = rx.recv() => match item {
                    Some(Ok(batch)) => {
                        if let Err(e) = self.gather(batch).await {
                            break Err(e);
                        }
                    }
                    Some(Err(e)) => break Err(e.into()),
                    None => break Ok(()),
                },
            }
        };
        drop(halt);
        drop(rx);
        while forwarders.join_next().await.is_some() {}
        consumer.close().await;
        outcome
    }

    /// Starts every (topic, partition): at its committed offset, at the
    /// newest if that is past the log's end (the topic was recreated), or
    /// where `initial` says when nothing is committed.
    async fn start(&self, consumer: &Consumer) -> Result<Vec<PartitionConsumer>, Error> {
        let c = &self.config;
        let tps: Vec<TopicPartition> = c
            .input_topics
            .iter()
            .flat_map(|t| c.partitions.iter().map(move |&p| TopicPartition::new(t, p)))
            .collect();
        let committed = self.offsets.fetch(&tps).await?;
        let mut started = Vec::with_capacity(tps.len());
        for topic in &c.input_topics {
            let ends = self
                .shared
                .client
                .list_partition_offsets(topic, &c.partitions, OffsetSpec::Newest)
                .await?;
            for &p in &c.partitions {
                let end = ends.get(&p).and_then(|o| o.offset);
                let start = match committed.get(&TopicPartition::new(topic, p)) {
                    Some(o) if end.is_some_and(|end| o.offset > end) => StartOffset::Newest,
                    Some(o) => StartOffset::Offset(o.offset),
                    None => match c.initial {
                        Initial::Oldest => StartOffset::Oldest,
                        Initial::Newest => StartOffset::Newest,
                    },
                };
                let pc = consumer.consume_partition(topic, p, start).await?;
                self.shared.metrics.next_offset(topic, p, pc.position());
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
            let Some(lane) = self.lanes.get_mut(&p) else {
                return Err(Error::Config {
                    field: "partitions",
                    reason: format!("records arrived for partition {p}, which is not configured"),
                });
            };
            lane.batch.push(record);
            if lane.batch.len() >= self.config.batch_size {
                self.process(p).await?;
            }
        }
        Ok(())
    }

    /// On a tick: every partition's non-empty batch, in configuration
    /// order (empty ones are not processed).
    async fn flush_all(&mut self) -> Result<(), Error> {
        for i in 0..self.config.partitions.len() {
            let p = self.config.partitions[i];
            if self.lanes.get(&p).is_some_and(|l| !l.batch.is_empty()) {
                self.process(p).await?;
            }
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
        self.offsets.commit_offsets(next.clone()).await?;
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
    tx: mpsc::Sender<klamm::Result<ConsumedBatch>>,
    mut halted: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            next = pc.recv_batch() => match next {
                Some(item) => {
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
                None => break,
            },
            _ = halted.changed() => break,
        }
    }
    pc.close().await;
}
