//! Views: every partition of a table, held locally and kept current
//! (goka's `View`).

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use klamm::Client;
use klamm::admin::Admin;
use klamm::consumer::Consumer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codec::Codec;
use crate::error::Error;
use crate::hasher::goka_partition;
use crate::lock;
use crate::storage::{Storage, StorageBuilder};
use crate::table::{PartitionState, StateLog, follow, partition_count, recover};

/// The partitions of a table and their stores, without a value type.
#[derive(Debug)]
pub(crate) struct ViewCore {
    topic: String,
    stores: Vec<Arc<dyn Storage>>,
    pub(crate) states: StateLog,
    stop: watch::Sender<bool>,
    /// The first partition failure, announced to waiters.
    failure: watch::Sender<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ViewCore {
    /// Opens the stores of every partition of `topic` and starts loading
    /// them: each recovers, then follows the topic.
    pub(crate) async fn start(
        client: &Client,
        topic: &str,
        builder: &Arc<dyn StorageBuilder>,
    ) -> Result<Arc<ViewCore>, Error> {
        // Through the admin client, whose metadata never creates topics.
        let Some(count) = partition_count(&Admin::new(client.clone()), topic).await? else {
            return Err(Error::Copartitioning(format!(
                "table {topic} does not exist"
            )));
        };
        client.refresh_metadata(Some(&[topic.to_string()])).await?;
        let partitions: Vec<i32> = (0..count).collect();
        let mut stores = Vec::with_capacity(partitions.len());
        for p in &partitions {
            stores.push(builder.build(topic, *p)?);
        }
        let core = Arc::new(ViewCore {
            topic: topic.to_string(),
            stores,
            states: StateLog::default(),
            stop: watch::Sender::new(false),
            failure: watch::Sender::new(None),
            tasks: Mutex::new(Vec::new()),
        });
        let consumer = Consumer::new(client.clone());
        for (p, store) in partitions.into_iter().zip(core.stores.clone()) {
            let (core2, client, consumer) = (core.clone(), client.clone(), consumer.clone());
            let task = tokio::spawn(async move {
                let mut stop = core2.stop.subscribe();
                let run = async {
                    let recovered = recover(
                        &client,
                        &consumer,
                        &core2.topic,
                        p,
                        &store,
                        &core2.states,
                        &mut stop,
                    )
                    .await?;
                    let Some(next) = recovered else {
                        return Ok(());
                    };
                    follow(
                        consumer.clone(),
                        core2.topic.clone(),
                        p,
                        next,
                        store.clone(),
                        stop,
                    )
                    .await
                };
                if let Err(e) = run.await {
                    tracing::warn!(topic = %core2.topic, partition = p, error = %e, "view partition failed");
                    core2.failure.send_if_modified(|f| {
                        let first = f.is_none();
                        if first {
                            *f = Some(format!("partition {p}: {e}"));
                        }
                        first
                    });
                    core2.states.set(p, PartitionState::Stopped);
                }
            });
            lock(&core.tasks).push(task);
        }
        Ok(core)
    }

    fn partition_of(&self, key: &str) -> usize {
        let count = i32::try_from(self.stores.len()).unwrap_or(i32::MAX);
        goka_partition(key.as_bytes(), count) as usize
    }

    fn ready(&self, p: usize) -> Result<(), Error> {
        if let Some(f) = self.failure.borrow().as_ref() {
            return Err(Error::Storage(format!(
                "the view of {} failed: {f}",
                self.topic
            )));
        }
        if self.states.get(p as i32) != PartitionState::Running {
            return Err(Error::NotReady {
                topic: self.topic.clone(),
                partition: p as i32,
                why: "recovered yet",
            });
        }
        Ok(())
    }

    pub(crate) fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let p = self.partition_of(key);
        self.ready(p)?;
        self.stores[p].get(key.as_bytes())
    }

    /// Waits until every partition runs, or one fails (its error).
    pub(crate) async fn wait_running(&self) -> Result<(), Error> {
        let count = self.stores.len();
        let mut rx = self.states.subscribe();
        let mut failure = self.failure.subscribe();
        loop {
            if let Some(f) = failure.borrow_and_update().as_ref() {
                return Err(Error::Storage(format!(
                    "the view of {} failed: {f}",
                    self.topic
                )));
            }
            let running = rx
                .borrow_and_update()
                .values()
                .filter(|s| **s == PartitionState::Running)
                .count();
            if running == count {
                return Ok(());
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() {
                    return Err(Error::State("the view stopped"));
                },
                _ = failure.changed() => {}
            }
        }
    }

    pub(crate) async fn close(&self) {
        let _ = self.stop.send_replace(true);
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        for (p, s) in self.stores.iter().enumerate() {
            if let Err(e) = s.flush() {
                tracing::warn!(topic = %self.topic, partition = p, error = %e, "flushing a view store failed");
            }
            self.states.set(p as i32, PartitionState::Stopped);
        }
    }
}

/// Every partition of a table topic, held in local storage and kept
/// current (goka's `View`): reads by key, iteration in key order, eviction.
///
/// ```no_run
/// use klamm_goka::{Int64Codec, MemoryBuilder, View};
///
/// # async fn run(client: klamm::Client) -> Result<(), klamm_goka::Error> {
/// let view = View::start(client, "clicks-table", Int64Codec, MemoryBuilder::new()).await?;
/// view.wait_running().await?;
/// println!("user-3 clicked {:?} times", view.get("user-3")?);
/// for (user, clicks) in view.iter()? {
///     println!("{user}: {clicks}");
/// }
/// view.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct View<C: Codec> {
    core: Arc<ViewCore>,
    codec: C,
}

impl<C: Codec> View<C> {
    /// Opens local stores for every partition of `table` (it must exist,
    /// with partitions 0..n) and starts loading them in the background:
    /// each recovers to the high watermark, then follows the topic.
    pub async fn start(
        client: Client,
        table: &str,
        codec: C,
        storage: impl StorageBuilder + 'static,
    ) -> Result<View<C>, Error> {
        let builder: Arc<dyn StorageBuilder> = Arc::new(storage);
        let core = ViewCore::start(&client, table, &builder).await?;
        Ok(View { core, codec })
    }

    /// Waits until every partition has recovered (goka's `WaitRunning`).
    pub async fn wait_running(&self) -> Result<(), Error> {
        self.core.wait_running().await
    }

    /// Whether every partition has recovered (goka's `Recovered`).
    pub fn recovered(&self) -> bool {
        let states = self.core.states.all();
        states.len() == self.core.stores.len()
            && states.values().all(|s| *s == PartitionState::Running)
    }

    /// The state of each partition.
    pub fn partition_states(&self) -> BTreeMap<i32, PartitionState> {
        self.core.states.all()
    }

    /// The value of `key`; an error while its partition is recovering.
    pub fn get(&self, key: &str) -> Result<Option<C::Value>, Error> {
        match self.core.get_bytes(key)? {
            None => Ok(None),
            Some(b) => self.codec.decode(&b).map(Some).map_err(Error::Codec),
        }
    }

    /// Whether `key` has a value.
    pub fn has(&self, key: &str) -> Result<bool, Error> {
        Ok(self.core.get_bytes(key)?.is_some())
    }

    /// Every key and value, in key (byte) order across partitions.
    pub fn iter(&self) -> Result<Vec<(String, C::Value)>, Error> {
        self.range::<&str, _>(..)
    }

    /// The keys in `range` (byte order) and their values, across partitions.
    pub fn range<K: AsRef<str>, R: RangeBounds<K>>(
        &self,
        range: R,
    ) -> Result<Vec<(String, C::Value)>, Error> {
        let bound = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().as_bytes().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().as_bytes().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (start, end) = (bound(range.start_bound()), bound(range.end_bound()));
        let mut all = Vec::new();
        for (p, store) in self.core.stores.iter().enumerate() {
            self.core.ready(p)?;
            all.extend(store.range(
                start.as_ref().map(Vec::as_slice),
                end.as_ref().map(Vec::as_slice),
            )?);
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
            .map(|(k, v)| {
                let key = String::from_utf8_lossy(&k).into_owned();
                self.codec
                    .decode(&v)
                    .map(|v| (key, v))
                    .map_err(Error::Codec)
            })
            .collect()
    }

    /// Removes `key` from the local store only (goka's `Evict`): the
    /// table keeps it, and a later update brings it back.
    pub fn evict(&self, key: &str) -> Result<(), Error> {
        let p = self.core.partition_of(key);
        self.core.stores[p].delete(key.as_bytes())
    }

    /// The table topic.
    pub fn topic(&self) -> &str {
        &self.core.topic
    }

    /// Stops following the table and flushes the stores.
    pub async fn close(&self) {
        self.core.close().await
    }
}

impl<C: Codec> Drop for View<C> {
    /// A view dropped without `close` stops loading and following.
    fn drop(&mut self) {
        let _ = self.core.stop.send_replace(true);
    }
}
