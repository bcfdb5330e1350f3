//! [`AsyncProducer`]: `send` places a record in its partition's batch and
//! returns a [`DeliveryFuture`]; a background sender task does the rest.

use crate::determinism::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accumulator::{Accumulator, Limits, linger_wait, record_memory};
use super::batch::HEADER;
use super::delivery::DeliveryFuture;
use super::hash::FastHash;
use super::idempotence::ProducerIdentity;
use super::partitioner::{self, PartitionView, Partitioner};
use super::record::{ProducerRecord, RecordMetadata};
use super::sender::Sender;
use super::stats::{Counters, ProducerStats};
use super::transaction::TransactionManager;
use crate::client::{Client, RetryPolicy};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;

/// A topic's partitions as the partitioner sees them, cached per metadata
/// snapshot.
struct TopicView {
    /// [`Client::metadata_snapshots`] when the snapshot it was built from
    /// was read: the view is current while the count is unchanged.
    snapshot: u64,
    count: i32,
    available: Vec<i32>,
    /// Each partition's slot in the accumulator, by partition id.
    slots: Vec<usize>,
}

pub(super) struct Inner {
    client: Client,
    config: ProducerConfig,
    pub(super) acc: Arc<Accumulator>,
    partitioner: Arc<dyn Partitioner>,
    topics: Mutex<HashMap<Arc<str>, TopicView, FastHash>>,
    sender: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// Producer id and epoch (idempotence), shared with the sender.
    pub(super) identity: Option<Arc<ProducerIdentity>>,
    /// The transaction manager, with `transactional.id`.
    pub(super) txn: Option<TransactionManager>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The sender delivers what is buffered, then stops.
        self.acc.close();
    }
}

/// The asynchronous producer: batches records per partition and sends them
/// in the background; every record's [`DeliveryFuture`] resolves to where
/// it was written or to why it was not.
///
/// Cheap to clone: clones share one sender. Settings come from the
/// client's [`ProducerConfig`]. With idempotence (the default) the
/// producer gets a producer id at start, and the brokers drop duplicates
/// that retries would otherwise write.
///
/// ```no_run
/// # async fn example() -> klamm::Result<()> {
/// use klamm::producer::{AsyncProducer, ProducerRecord};
/// use klamm::{Client, Config};
///
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["localhost:9092".into()];
/// let producer = AsyncProducer::new(Client::connect(config).await?).await?;
/// let delivery = producer
///     .send(ProducerRecord::new("events", "hello").with_key("k"))
///     .await?;
/// let written = delivery.await?;
/// println!("partition {} offset {}", written.partition, written.offset);
/// producer.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncProducer {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for AsyncProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncProducer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        // Seconds and milliseconds apart: cheaper than `as_millis`'s u128.
        .map(|d| d.as_secs() as i64 * 1000 + i64::from(d.subsec_millis()))
        .unwrap_or_default()
}

impl AsyncProducer {
    /// Starts a producer on `client` with the settings of
    /// `client.config().producer`. With idempotence this gets a producer
    /// id first (InitProducerId), so it fails if no broker answers.
    ///
    /// With `transactional.id` set the producer is transactional: call
    /// [`init_transactions`](Self::init_transactions) once, then send
    /// records only between [`begin_transaction`](Self::begin_transaction)
    /// and [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction).
    pub async fn new(client: Client) -> Result<AsyncProducer> {
        let partitioner = partitioner::from_config(&client.config().producer.partitioner);
        Self::with_partitioner(client, partitioner).await
    }

    /// [`AsyncProducer::new`] with a [`Partitioner`] of your own in place
    /// of the `partitioner` setting's: it places every record sent
    /// without a partition. A partition it names must exist; one outside
    /// the topic fails that `send`.
    ///
    /// ```no_run
    /// # async fn example(client: klamm::Client) -> klamm::Result<()> {
    /// use std::sync::Arc;
    /// use klamm::producer::{AsyncProducer, PartitionView, Partitioner, ProducerRecord};
    ///
    /// /// Records with a key to partition 0, the others to the last one.
    /// #[derive(Debug)]
    /// struct KeyedFirst;
    ///
    /// impl Partitioner for KeyedFirst {
    ///     fn partition(&self, _topic: &str, key: Option<&[u8]>, view: &PartitionView) -> Option<i32> {
    ///         match key {
    ///             Some(_) => Some(0),
    ///             None => (view.count() > 0).then(|| view.count() - 1),
    ///         }
    ///     }
    /// }
    ///
    /// let producer = AsyncProducer::with_partitioner(client, Arc::new(KeyedFirst)).await?;
    /// let written = producer.send(ProducerRecord::new("events", "v").with_key("k")).await?.await?;
    /// assert_eq!(written.partition, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_partitioner(
        client: Client,
        partitioner: Arc<dyn Partitioner>,
    ) -> Result<AsyncProducer> {
        let config = client.config().producer.clone();
        let txn = match &config.transactional_id {
            Some(_) if !config.idempotence => {
                return Err(Error::config(
                    "transactional.id",
                    "needs enable.idempotence=true (and so acks=all)",
                ));
            }
            Some(_) => Some(TransactionManager::new(client.clone())?),
            None => None,
        };
        let identity = if config.idempotence {
            let identity = Arc::new(ProducerIdentity::new(
                config.transactional_id.clone(),
                config.transaction_timeout,
            ));
            // A transactional producer gets its id in init_transactions.
            if txn.is_none() {
                identity
                    .init(&client, config.retry_backoff, config.max_block)
                    .await?;
            }
            Some(identity)
        } else {
            None
        };
        let acc = Arc::new(Accumulator::new(Limits {
            batch_size: config.batch_size as usize,
            linger: linger_wait(config.linger),
            buffer_memory: usize::try_from(config.buffer_memory).unwrap_or(usize::MAX),
            max_records: usize::try_from(config.max_buffered_records).unwrap_or(usize::MAX),
            block_on_full: config.block_on_buffer_full,
            max_block: config.max_block,
            max_request_size: config.max_request_size as usize,
            max_in_flight: config.max_in_flight_requests_per_connection,
            delivery_timeout: config.delivery_timeout,
        }));
        let counters = Arc::new(Counters::default());
        if identity.is_some() && txn.is_none() {
            Counters::add(&counters.producer_id_requests, 1);
        }
        let sender = Sender::new(
            client.clone(),
            Arc::clone(&acc),
            identity.clone(),
            txn.clone(),
            config.clone(),
            Arc::clone(&counters),
        );
        let task = tokio::spawn(sender.run());
        Ok(AsyncProducer {
            inner: Arc::new(Inner {
                partitioner,
                client,
                config,
                acc,
                topics: Mutex::new(HashMap::default()),
                sender: Mutex::new(Some(task)),
                counters,
                identity,
                txn,
            }),
        })
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Counts of requests, batches, retries and failures so far.
    pub fn stats(&self) -> ProducerStats {
        self.inner.counters.snapshot()
    }

    /// Queues a record for sending and returns its [`DeliveryFuture`].
    ///
    /// Waits while `buffer.memory` or `max.buffered.records` is full (up
    /// to `max.block.ms`) unless `block.on.buffer.full` is false, in which
    /// case it fails at once. It also waits for the topic's metadata the
    /// first time a topic is seen.
    /// Fails at once for a record larger than `max.request.size`, a
    /// partition the topic does not have, or a closed producer. A
    /// transactional producer fails it outside a transaction, or with the
    /// transaction's error once the transaction failed.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &*self.inner;
        if let Some(txn) = &inner.txn {
            txn.check_send()?;
        }
        let memory = record_memory(&record);
        if memory + HEADER > inner.config.max_request_size as usize {
            return Err(Error::config(
                "max.request.size",
                format!(
                    "a record of about {} bytes (with its batch header) is larger than \
                     max.request.size ({})",
                    memory + HEADER,
                    inner.config.max_request_size
                ),
            ));
        }
        let (partition, slot) = self.choose_partition(&record).await?;
        inner.acc.reserve(memory).await?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let sticky = record.partition.is_none() && record.key.is_none();
        let topic = sticky.then(|| Arc::clone(&record.topic));
        let appended = inner
            .acc
            .append_at(slot, partition, record, timestamp, memory)?;
        if let (true, Some(topic)) = (appended.batch_full, topic) {
            let topics = lock(&inner.topics);
            if let Some(v) = topics.get(&topic) {
                let view = PartitionView::new(v.count, &v.available);
                inner.partitioner.on_new_batch(&topic, &view, partition);
            }
        }
        Ok(appended.future)
    }

    /// Sends several records; the futures come back in the same order.
    /// Stops at the first record that cannot be queued.
    pub async fn send_all(
        &self,
        records: impl IntoIterator<Item = ProducerRecord>,
    ) -> Result<Vec<DeliveryFuture>> {
        let mut out = Vec::new();
        for r in records {
            out.push(self.send(r).await?);
        }
        Ok(out)
    }

    /// The record's partition and that partition's accumulator slot.
    async fn choose_partition(&self, record: &ProducerRecord) -> Result<(i32, usize)> {
        let inner = &*self.inner;
        let mut snapshot = inner.client.metadata_snapshots();
        // The common case: this topic's view of the current metadata is
        // cached (one atomic load and one lookup per record).
        {
            let topics = lock(&inner.topics);
            if let Some(v) = topics.get(&record.topic)
                && v.snapshot == snapshot
            {
                return self.place_in(record, v);
            }
        }
        let mut meta = inner.client.metadata();
        if meta
            .topics
            .get(&*record.topic)
            .is_none_or(|t| t.partitions.is_empty())
        {
            self.wait_for_topic(&record.topic).await?;
            snapshot = inner.client.metadata_snapshots();
            meta = inner.client.metadata();
        }
        let info = meta.topics.get(&*record.topic);
        let count = info.map_or(0, |t| t.partitions.len() as i32);
        let available: Vec<i32> = info
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.is_writable())
                    .map(|p| p.id)
                    .collect()
            })
            .unwrap_or_default();
        let view = TopicView {
            snapshot,
            count,
            available,
            slots: inner.acc.slots(&record.topic, count),
        };
        let placed = self.place_in(record, &view);
        lock(&inner.topics).insert(Arc::clone(&record.topic), view);
        placed
    }

    /// [`Self::place`] in a topic's view, with the partition's slot.
    fn place_in(&self, record: &ProducerRecord, v: &TopicView) -> Result<(i32, usize)> {
        let p = self.place(record, v.count, &v.available)?;
        // `place` answers only partitions of the view, so this finds the
        // slot; were one missing, the accumulator looks it up itself.
        let slot = usize::try_from(p)
            .ok()
            .and_then(|i| v.slots.get(i).copied())
            .unwrap_or(usize::MAX);
        Ok((p, slot))
    }

    /// Waits, up to `max.block.ms`, until the metadata knows `topic`'s
    /// partitions, as the Java client does: a topic that was just created
    /// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE for a moment) or is
    /// being auto-created is waited for; a non-retriable answer such as
    /// TOPIC_AUTHORIZATION_FAILED fails at once.
    async fn wait_for_topic(&self, topic: &str) -> Result<()> {
        let inner = &*self.inner;
        let mut retry = RetryPolicy::constant(inner.config.retry_backoff)
            .within(inner.config.max_block)
            .waiting_out()
            .start();
        loop {
            let error = match retry.bounded(inner.client.partitions(topic)).await {
                Some(Ok(parts)) if !parts.is_empty() => return Ok(()),
                Some(Err(e)) if !(e.is_retriable() || is_unknown_topic(&e)) => return Err(e),
                Some(Err(e)) => e,
                Some(Ok(_)) | None => Error::Broker {
                    api: ApiKey::Metadata,
                    code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    context: Some(format!("{topic} has no partitions yet")),
                },
            };
            if let Err(last) = retry.pause(error).await {
                return Err(Error::Timeout {
                    what: format!(
                        "topic {topic} to appear in the metadata (max.block.ms); last answer: {last}"
                    ),
                    after: inner.config.max_block,
                });
            }
        }
    }

    /// The partition for `record` among a topic's `count` partitions, of
    /// which `available` have a leader.
    fn place(&self, record: &ProducerRecord, count: i32, available: &[i32]) -> Result<i32> {
        let inner = &*self.inner;
        if count == 0 {
            return Err(unknown(&record.topic, None));
        }
        match record.partition {
            Some(p) if (0..count).contains(&p) => Ok(p),
            Some(p) => Err(unknown(&record.topic, Some((p, count)))),
            None => {
                let view = PartitionView::new(count, available);
                match inner
                    .partitioner
                    .partition(&record.topic, record.key.as_deref(), &view)
                {
                    Some(p) if (0..count).contains(&p) => Ok(p),
                    Some(p) => Err(Error::config(
                        "partitioner",
                        format!(
                            "the partitioner placed a record to {} in partition {p}, \
                             which is not one of its {count}",
                            record.topic
                        ),
                    )),
                    None => Err(Error::config(
                        "partitioner",
                        format!(
                            "the partitioner ({:?}) placed no partition for a record to {}; \
                             name the partition",
                            inner.partitioner, record.topic
                        ),
                    )),
                }
            }
        }
    }

    /// Sends every buffered record now (ignoring `linger.ms`) and waits
    /// until each record sent before the call has its outcome.
    pub async fn flush(&self) -> Result<()> {
        let acc = &self.inner.acc;
        acc.begin_flush();
        for batch in acc.incomplete() {
            batch.settled().await;
        }
        acc.end_flush();
        Ok(())
    }

    /// Stops taking records, delivers everything buffered (each record's
    /// future resolves: written, or failed with its error) and stops the
    /// sender. Other clones of this producer are closed too.
    pub async fn close(self) -> Result<()> {
        let inner = &*self.inner;
        inner.acc.close();
        let task = lock(&inner.sender).take();
        if let Some(task) = task {
            task.await.map_err(|e| Error::Disconnected {
                broker: "producer".into(),
                reason: format!("the sender task ended abnormally: {e}"),
            })?;
        }
        Ok(())
    }

    /// Sarama's channel form: records go in through the returned sender;
    /// each comes back, with where it was written, on `successes`, or with
    /// its error on `errors`. Dropping the input sender closes the
    /// producer once the records sent are reported; both receivers then
    /// end. Reports come in send order.
    ///
    /// ```no_run
    /// # async fn example(producer: klamm::producer::AsyncProducer) {
    /// use klamm::producer::ProducerRecord;
    ///
    /// let mut channels = producer.into_channels(1024);
    /// channels.input.send(ProducerRecord::new("events", "a")).await.ok();
    /// drop(channels.input);
    /// while let Some((record, meta)) = channels.successes.recv().await {
    ///     println!("{} at {}", record.topic, meta.offset);
    /// }
    /// # }
    /// ```
    pub fn into_channels(self, capacity: usize) -> ProducerChannels {
        let capacity = capacity.max(1);
        let (input, mut records) = mpsc::channel::<ProducerRecord>(capacity);
        let (ok_tx, successes) = mpsc::channel(capacity);
        let (err_tx, errors) = mpsc::channel(capacity);
        let (pending_tx, mut pending) =
            mpsc::channel::<(ProducerRecord, std::result::Result<DeliveryFuture, Error>)>(capacity);
        let producer = self;
        tokio::spawn(async move {
            while let Some(record) = records.recv().await {
                let outcome = producer.send(record.clone()).await;
                if pending_tx.send((record, outcome)).await.is_err() {
                    break;
                }
            }
            drop(pending_tx);
            if let Err(e) = producer.close().await {
                tracing::warn!(error = %e, "closing the channel producer failed");
            }
        });
        tokio::spawn(async move {
            while let Some((record, outcome)) = pending.recv().await {
                let result = match outcome {
                    Ok(f) => f.await,
                    Err(e) => Err(e),
                };
                let _ = match result {
                    Ok(meta) => ok_tx.send((record, meta)).await.ok(),
                    Err(error) => err_tx.send(ProducerError { record, error }).await.ok(),
                };
            }
        });
        ProducerChannels {
            input,
            successes,
            errors,
        }
    }
}

/// The channel form of an [`AsyncProducer`], from
/// [`AsyncProducer::into_channels`].
#[derive(Debug)]
pub struct ProducerChannels {
    /// Records to send.
    pub input: mpsc::Sender<ProducerRecord>,
    /// Records written, with where.
    pub successes: mpsc::Receiver<(ProducerRecord, RecordMetadata)>,
    /// Records that could not be written, with why.
    pub errors: mpsc::Receiver<ProducerError>,
}

/// A record the channel producer could not write.
#[derive(Debug)]
pub struct ProducerError {
    /// The record.
    pub record: ProducerRecord,
    /// Why.
    pub error: Error,
}

fn unknown(topic: &str, partition: Option<(i32, i32)>) -> Error {
    Error::Broker {
        api: ApiKey::Metadata,
        code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        context: Some(match partition {
            Some((p, n)) => format!("partition {p} of {topic}, which has {n} partitions"),
            None => format!("topic {topic} has no partitions"),
        }),
    }
}

fn is_unknown_topic(e: &Error) -> bool {
    e.kafka_code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
