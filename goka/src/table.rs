//! Loading a table partition from its topic into local storage: recovery
//! up to the high watermark, then (for joins and views) following it.

use std::sync::Arc;
use std::time::Instant;

use klamm::Client;
use klamm::client::OffsetSpec;
use klamm::consumer::{ConsumedBatch, Consumer, StartOffset};
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
/// follow the partition from.
pub(crate) async fn recover(
    client: &Client,
    consumer: &Consumer,
    topic: &str,
    partition: i32,
    store: &Arc<dyn Storage>,
    states: &StateLog,
) -> Result<i64, Error> {
    let stored = store.offset()?;
    let bounds = |spec| async move {
        let got = client
            .list_partition_offsets(topic, &[partition], spec)
            .await?;
        Ok::<i64, Error>(
            got.get(&partition)
                .and_then(|o| o.offset)
                .unwrap_or_default(),
        )
    };
    let oldest = bounds(OffsetSpec::Oldest).await?;
    let hwm = bounds(OffsetSpec::Newest).await?;
    if stored.is_some_and(|s| s > 0) && hwm == 0 {
        return Err(Error::Storage(format!(
            "the local store of {topic}/{partition} is at offset {} but the topic is empty: \
             the topic was recreated; wipe the local store",
            stored.unwrap_or_default()
        )));
    }
    let start = stored.map_or(oldest, |s| s + 1).max(oldest);
    if start < hwm {
        states.set(partition, PartitionState::Recovering);
        let mut pc = consumer
            .consume_partition(topic, partition, StartOffset::Offset(start))
            .await?;
        let outcome = async {
            loop {
                let Some(batch) = pc.recv_batch().await else {
                    return Err(Error::State("the table consumer ended during recovery"));
                };
                let batch = batch?;
                let last = batch.records.last().map(|r| r.offset);
                store.apply(&updates(&batch), last)?;
                if last.is_some_and(|o| o >= hwm - 1) || pc.position() >= hwm {
                    return Ok(());
                }
            }
        }
        .await;
        pc.close().await;
        outcome?;
    }
    states.set(partition, PartitionState::Preparing);
    store.flush()?;
    states.set(partition, PartitionState::Running);
    Ok(start.max(hwm))
}

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
