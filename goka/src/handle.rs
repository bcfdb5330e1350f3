//! A handle on a running processor: its table, its partitions, its stop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
use crate::graph::group_table;
use crate::hasher::goka_partition;
use crate::lock;
use crate::processor::{Inner, PartitionStats};
use crate::table::PartitionState;

/// Reads a running processor's table, watches its partitions, stops it.
pub struct Handle<V: Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

impl<V: Send + Sync + 'static> Clone for Handle<V> {
    fn clone(&self) -> Self {
        Handle {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Send + Sync + 'static> std::fmt::Debug for Handle<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("group", &self.inner.graph.group)
            .finish_non_exhaustive()
    }
}

impl<V: Send + Sync + 'static> Handle<V> {
    pub(crate) fn new(inner: Arc<Inner<V>>) -> Handle<V> {
        Handle { inner }
    }

    /// The group table's value of `key` (goka's `Processor.Get`): only
    /// for a key whose partition (goka's hasher) this processor holds and
    /// has recovered.
    pub fn get(&self, key: &str) -> Result<Option<V>, Error> {
        let Some(table) = self.inner.graph.table.as_ref() else {
            return Err(Error::Context(
                "cannot access state in a stateless processor".into(),
            ));
        };
        let topic = group_table(&self.inner.graph.group);
        let p = goka_partition(key.as_bytes(), self.inner.partitions);
        let store = lock(&self.inner.tables).get(&p).cloned();
        let Some(store) = store else {
            return Err(Error::NotReady {
                topic,
                partition: p,
                why: "owned by this processor",
            });
        };
        if self.inner.states.get(p) != PartitionState::Running {
            return Err(Error::NotReady {
                topic,
                partition: p,
                why: "recovered yet",
            });
        }
        match store.get(key.as_bytes())? {
            None => Ok(None),
            Some(b) => (table.decode)(&b).map(Some).map_err(Error::Codec),
        }
    }

    /// The partition count of the group's topics.
    pub fn partitions(&self) -> i32 {
        self.inner.partitions
    }

    /// The state of each partition this processor has held.
    pub fn partition_states(&self) -> BTreeMap<i32, PartitionState> {
        self.inner.states.all()
    }

    /// The partitions this processor holds and runs.
    pub fn running_partitions(&self) -> Vec<i32> {
        self.inner
            .states
            .all()
            .into_iter()
            .filter(|(_, s)| *s == PartitionState::Running)
            .map(|(p, _)| p)
            .collect()
    }

    /// Every partition state change, in order, with when it happened.
    pub fn state_log(&self) -> Vec<(i32, PartitionState, Instant)> {
        self.inner.states.log()
    }

    /// Waits until exactly `partitions` are running (or the run fails).
    pub async fn wait_running(&self, partitions: &[i32]) -> Result<(), Error> {
        let want: BTreeSet<i32> = partitions.iter().copied().collect();
        let mut rx = self.inner.states.subscribe();
        let mut failed = self.inner.failed.subscribe();
        loop {
            let running: BTreeSet<i32> = rx
                .borrow_and_update()
                .iter()
                .filter(|(_, s)| **s == PartitionState::Running)
                .map(|(p, _)| *p)
                .collect();
            if running == want {
                return Ok(());
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Err(Error::State("the processor is gone")) },
                _ = failed.wait_for(|f| *f) => return Err(Error::State("the processor failed")),
            }
        }
    }

    /// Counts per partition.
    pub fn stats(&self) -> BTreeMap<i32, PartitionStats> {
        lock(&self.inner.stats).clone()
    }

    /// Stops the run: partitions are given up, what is acknowledged is
    /// committed, the group is left.
    pub fn stop(&self) {
        let _ = self.inner.stop.send_replace(true);
        let _ = self.inner.halt.send_replace(true);
    }
}
