//! Loading a table partition from its topic into local storage: recovery
//! up to the high watermark, then (for joins and views) following it.

use std::sync::Arc;
use std::time::Instant;

use klamm::Client;
use klamm::admin::Admin;
use klamm::client::OffsetSpec;
use klamm::consumer::{ConsumedBatch, Consumer, StartOffset};
use klamm::protocol::error_codes::ErrorCode;
use tokio::sync::watch;

use crate::error::Error;
use crate::storage::{Storage, Update};

/// Where a table partition is (goka's `PartitionStatus`, the states a
/// caller can observe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionState {
    /// Not loaded (not assigned, or stopped).
    Stopped,
    /// Reading the table topic up to the high watermark it had when
    /// recovery began.
    Recovering,
    /// Recovered; making the local store durable.
    Preparing,
    /// Serving: reads answer, and a processor partition handles input.
    Running,
}

/// Records the states of partitions, in order, with when they came.
#[derive(Debug, Clone)]
pub(crate) struct StateLog {
    inner: Arc<std::sync::Mutex<Vec<(i32, PartitionState, Instant)>>>,
    current: Arc<watch::Sender<std::collections::BTreeMap<i32, PartitionState>>>,
}

impl Default for StateLog {
    fn default() -> Self {
        StateLog {
            inner: Arc::default(),
            current: Arc::new(watch::Sender::new(Default::default())),
        }
    }
}

impl StateLog {
    pub(crate) fn set(&self, partition: i32, state: PartitionState) {
        let mut log = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.get(partition) == state {
            return;
        }
        log.push((partition, state, Instant::now()));
        self.current.send_modify(|m| {
            m.insert(partition, state);
        });
    }

    pub(crate) fn get(&self, partition: i32) -> PartitionState {
        self.current
            .borrow()
            .get(&partition)
            .copied()
            .unwrap_or(PartitionState::Stopped)
    }

    pub(crate) fn all(&self) -> std::collections::BTreeMap<i32, PartitionState> {
        self.current.borrow().clone()
    }

    pub(crate) fn log(&self) -> Vec<(i32, PartitionState, Instant)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn subscribe(
        &self,
    ) -> watch::Receiver<std::collections::BTreeMap<i32, PartitionState>> {
        self.current.subscribe()
    }
}

/// The updates of a fetched run of table records.
fn updates(batch: &ConsumedBatch) -> Vec<Update> {
    batch
        .iter()
        .map(|r| {
            (
                r.key.as_deref().unwrap_or_default().to_vec(),
                r.value.as_ref().map(|v| v.to_vec()),
            )
        })
        .collect()
}

/// Recovers `topic`'s `partition` into `store`: from the record after the
/// stored offset (or the log start) to the high watermark the partition
/// has now, through Recovering and Preparing. Returns the offset to
/// follow the partition from, or `None` when `stop` turned true first.
pub(crate) async fn recover(
    client: &Client,
    consumer: &Consumer,
    topic: &str,
    partition: i32,
    store: &Arc<dyn Storage>,
    states: &StateLog,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<i64>, Error> {
    let stored = store.offset()?;
    let bounds = |spec| async move {
        let got = client
            .list_partition_offsets(topic, &[partition], spec)
            .await?;
        got.get(&partition).and_then(|o| o.offset).ok_or_else(|| {
            Error::Storage(format!(
                "the offsets of {topic}/{partition} are unknown: the table cannot be recovered"
            ))
        })
    };
    let oldest = bounds(OffsetSpec::Oldest).await?;
    let hwm = bounds(OffsetSpec::Newest).await?;
    if let Some(s) = stored
        && s >= hwm
    {
        return Err(Error::Storage(format!(
            "the local store of {topic}/{partition} is at offset {s} but the topic ends at {hwm}: \
             the topic was recreated or truncated; wipe the local store"
        )));
    }
    let start = stored.map_or(oldest, |s| s + 1).max(oldest);
    if start < hwm {
        states.set(partition, PartitionState::Recovering);
        let mut pc = consumer
            .consume_partition(topic, partition, StartOffset::Offset(start))
            .await?;
        let outcome = async {
            let mut next = start;
            loop {
                // Records taken by batch do not move the position, but
                // skipped markers do: the log may end with one.
                next = next.max(pc.position());
                if next >= hwm {
                    return Ok(true);
                }
                let batch = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return Ok(false),
                    b = tokio::time::timeout(MARKER_CHECK, pc.recv_batch()) => b,
                };
                let Ok(batch) = batch else {
                    continue;
                };
                let Some(batch) = batch else {
                    return Err(Error::State("the table consumer ended during recovery"));
                };
                let batch = batch?;
                if let Some(last) = batch.records.last().map(|r| r.offset) {
                    store.apply(&updates(&batch), Some(last))?;
                    next = next.max(last + 1);
                }
            }
        }
        .await;
        pc.close().await;
        if !outcome? {
            return Ok(None);
        }
    }
    states.set(partition, PartitionState::Preparing);
    store.flush()?;
    states.set(partition, PartitionState::Running);
    Ok(Some(start.max(hwm)))
}

/// How long recovery waits for records before it looks whether the
/// position has reached the end (a log ending in a transaction marker
/// delivers no record for it).
const MARKER_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// Follows `topic`'s `partition` from `from`, applying every record to
/// `store`, until `stop` turns true.
pub(crate) async fn follow(
    consumer: Consumer,
    topic: String,
    partition: i32,
    from: i64,
    store: Arc<dyn Storage>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut pc = consumer
        .consume_partition(&topic, partition, StartOffset::Offset(from))
        .await?;
    let outcome = loop {
        let batch = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break Ok(()),
            b = pc.recv_batch() => b,
        };
        let Some(batch) = batch else {
            break Ok(());
        };
        match batch {
            Ok(batch) => {
                let last = batch.records.last().map(|r| r.offset);
                if let Err(e) = store.apply(&updates(&batch), last) {
                    break Err(e);
                }
            }
            Err(e) => break Err(Error::Kafka(e)),
        }
    };
    pc.close().await;
    outcome
}

/// The partition count of `topic` (its partitions must be 0..n), or
/// `None` when it does not exist. Asks through the admin client, which
/// never creates topics.
pub(crate) async fn partition_count(admin: &Admin, topic: &str) -> Result<Option<i32>, Error> {
    let mut described = admin.describe_topics(&[topic]).await;
    match described.remove(topic) {
        Some(Ok(d)) => {
            let n = i32::try_from(d.partitions.len()).unwrap_or(i32::MAX);
            // Keys are placed among the partitions: there must be some
            // (the stores of a view are indexed by placement).
            if n == 0 {
                return Err(Error::Copartitioning(format!(
                    "topic {topic} has no partitions"
                )));
            }
            if d.partitions.iter().map(|p| p.partition).ne(0..n) {
                return Err(Error::Copartitioning(format!(
                    "topic {topic} has a gap in its partitions"
                )));
            }
            Ok(Some(n))
        }
        Some(Err(e)) if e.kafka_code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) => Ok(None),
        Some(Err(e)) => Err(Error::Kafka(e)),
        None => Ok(None),
    }
}
