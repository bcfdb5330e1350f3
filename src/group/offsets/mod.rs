//! The offset manager: offsets a group has committed, and committing new
//! ones (Sarama's OffsetManager, the Java consumer's commit API).
//!
//! Offsets are *marked* as the application finishes records (the offset
//! of the next record to read, as Kafka stores it) and *committed* in one
//! OffsetCommit for every partition whose mark moved. A commit sends a
//! snapshot of the marks and, when it succeeds, records exactly that
//! snapshot as committed: a mark made while the request was in flight
//! stays pending for the next commit, and nothing is ever committed that
//! was not marked.

pub(super) mod requests;
mod tracker;

pub use tracker::OffsetTracker;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::client::{CallError, Client, CoordinatorKind, RetryPolicy, TrafficClass};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;

use super::TopicPartition;

/// A committed offset or one to commit: the offset of the next record to
/// read, the leader epoch of the record before it (KIP-320; lets a reader
/// detect log truncation), and free-form metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the last record read, if known.
    pub leader_epoch: Option<i32>,
    /// Metadata stored with the offset (at most the broker's
    /// `offset.metadata.max.bytes`, 4096 by default).
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// An offset without epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            ..Default::default()
        }
    }
}

/// Who commits: the member's generation (classic protocol) or member epoch
/// (KIP-848), its member id and static instance id. A consumer outside any
/// group commits with [`Generation::NONE`], which the broker accepts only
/// while the group has no members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The generation id (classic) or member epoch (consumer protocol);
    /// -1 outside a group.
    pub id: i32,
    /// The member id the coordinator gave; empty outside a group.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
}

impl Generation {
    /// No group membership.
    pub const NONE: Generation = Generation {
        id: -1,
        member_id: String::new(),
        instance_id: None,
    };
}

/// Partition state: the last mark and what is known to be committed.
#[derive(Debug, Default, Clone)]
struct Slot {
    marked: Option<OffsetAndMetadata>,
    committed: Option<OffsetAndMetadata>,
}

impl Slot {
    fn dirty(&self) -> Option<&OffsetAndMetadata> {
        self.marked
            .as_ref()
            .filter(|m| self.committed.as_ref() != Some(*m))
    }
}

#[derive(Debug)]
struct Inner {
    client: Client,
    group: String,
    generation: Mutex<Generation>,
    slots: Mutex<BTreeMap<TopicPartition, Slot>>,
    /// One commit at a time, in the order they were made, so a slow one
    /// cannot overwrite a later one: each commit waits for the one before
    /// it (the receiver left here by it) to finish.
    last_commit: Mutex<Option<oneshot::Receiver<()>>>,
    policy: RetryPolicy,
}

/// Marks and commits the offsets of one consumer group.
///
/// Cheap to clone; the clones share the marks. Used on its own (a
/// consumer that assigns itself partitions but keeps its place in a
/// group's offsets) or by a group member, which sets its
/// [`Generation`] after every join.
///
/// ```no_run
/// use klamm::{Client, Config};
/// use klamm::group::{OffsetManager, TopicPartition};
///
/// # async fn run() -> klamm::Result<()> {
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["127.0.0.1:9092".into()];
/// let client = Client::connect(config).await?;
/// let offsets = OffsetManager::new(client, "billing");
/// let tp = TopicPartition::new("invoices", 0);
/// let start = offsets.fetch(&[tp.clone()]).await?;
/// println!("resume at {:?}", start.get(&tp));
/// offsets.mark(&tp, 42, Some("processed by worker 7"));
/// offsets.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OffsetManager {
    inner: Arc<Inner>,
}

/// The longest pause between two commit attempts.
const COMMIT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl OffsetManager {
    /// An offset manager for `group`, committing outside any membership
    /// until [`set_generation`](Self::set_generation) is called. Commits
    /// and fetches retry for up to `default.api.timeout.ms` (60 s, the
    /// Java client's bound for `commitSync` and `committed`).
    pub fn new(client: Client, group: impl Into<String>) -> Self {
        let cfg = client.config();
        let policy = RetryPolicy::exponential(cfg.metadata.retry_backoff, COMMIT_BACKOFF_MAX)
            .within(cfg.consumer.default_api_timeout);
        OffsetManager {
            inner: Arc::new(Inner {
                group: group.into(),
                generation: Mutex::new(Generation::NONE),
                slots: Mutex::new(BTreeMap::new()),
                last_commit: Mutex::new(None),
                policy,
                client,
            }),
        }
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The generation commits are made under.
    pub fn generation(&self) -> Generation {
        lock(&self.inner.generation).clone()
    }

    /// Sets the generation commits are made under (a member does this
    /// after every join).
    pub fn set_generation(&self, generation: Generation) {
        *lock(&self.inner.generation) = generation;
    }

    /// Marks `offset` (the next record to read) for `tp`, with optional
    /// metadata. A mark may move backwards (to process records again);
    /// the next commit stores it either way.
    pub fn mark(&self, tp: &TopicPartition, offset: i64, metadata: Option<&str>) {
        self.mark_with_epoch(tp, offset, None, metadata)
    }

    /// Like [`mark`](Self::mark), with the leader epoch of the last record
    /// read.
    pub fn mark_with_epoch(
        &self,
        tp: &TopicPartition,
        offset: i64,
        leader_epoch: Option<i32>,
        metadata: Option<&str>,
    ) {
        let mut slots = lock(&self.inner.slots);
        slots.entry(tp.clone()).or_default().marked = Some(OffsetAndMetadata {
            offset,
            leader_epoch,
            metadata: metadata.map(str::to_string),
        });
    }

    /// The last mark of `tp`.
    pub fn marked(&self, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
        lock(&self.inner.slots)
            .get(tp)
            .and_then(|s| s.marked.clone())
    }

    /// The offset this manager last committed or fetched for `tp`.
    pub fn committed(&self, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
        lock(&self.inner.slots)
            .get(tp)
            .and_then(|s| s.committed.clone())
    }

    /// Whether any mark has not been committed.
    pub fn has_pending(&self) -> bool {
        lock(&self.inner.slots)
            .values()
            .any(|s| s.dirty().is_some())
    }

    /// Forgets the marks of partitions no longer owned (after a revoke or
    /// a loss): a later commit cannot then write for a partition another
    /// member now consumes.
    pub fn forget(&self, partitions: &[TopicPartition]) {
        let mut slots = lock(&self.inner.slots);
        for tp in partitions {
            slots.remove(tp);
        }
    }

    /// Commits every mark not yet committed, and returns what was
    /// committed. Retriable failures (coordinator moved or loading, a
    /// broker down) are retried for up to `default.api.timeout.ms`.
    ///
    /// Errors: `REBALANCE_IN_PROGRESS` (the member must rejoin first;
    /// commit again after), `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID` and
    /// `STALE_MEMBER_EPOCH` (the member was removed or fell behind: its
    /// partitions may be owned by another member now, so the marks were
    /// not committed), `FENCED_INSTANCE_ID` (another process uses the same
    /// `group.instance.id`), authorization and size errors — each an
    /// [`Error::Broker`] naming the partitions. Partitions that failed
    /// keep their marks.
    pub async fn commit(&self) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let (turn, snapshot) = (self.take_turn(), self.pending());
        turn.run(self.commit_snapshot(snapshot)).await
    }

    /// Commits `offsets` as given, whatever was marked (Java's
    /// `commitSync(Map)`); they also become the marks.
    pub async fn commit_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        {
            let mut slots = lock(&self.inner.slots);
            for (tp, o) in &offsets {
                slots.entry(tp.clone()).or_default().marked = Some(o.clone());
            }
        }
        let turn = self.take_turn();
        turn.run(self.commit_snapshot(offsets)).await
    }

    /// Starts a commit of the marks pending now and returns at once
    /// (Java's `commitAsync`): await the handle for the outcome, or drop
    /// it. Commits land in the order they were started, synchronous and
    /// asynchronous alike.
    pub fn commit_async(
        &self,
    ) -> tokio::task::JoinHandle<Result<BTreeMap<TopicPartition, OffsetAndMetadata>>> {
        let (turn, snapshot) = (self.take_turn(), self.pending());
        let this = self.clone();
        tokio::spawn(async move { turn.run(this.commit_snapshot(snapshot)).await })
    }

    /// The marks not yet committed.
    fn pending(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        lock(&self.inner.slots)
            .iter()
            .filter_map(|(tp, s)| s.dirty().map(|m| (tp.clone(), m.clone())))
            .collect()
    }

    /// A place in the commit order, taken when the commit is made.
    fn take_turn(&self) -> Turn {
        let (done, next) = oneshot::channel();
        let before = lock(&self.inner.last_commit).replace(next);
        Turn { before, done }
    }

    async fn commit_snapshot(
        &self,
        snapshot: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let inner = &*self.inner;
        if snapshot.is_empty() {
            return Ok(snapshot);
        }
        let left = Mutex::new(snapshot.clone());
        let generation = self.generation();
        let outcome = inner
            .client
            .coordinator_call(
                CoordinatorKind::Group,
                &inner.group,
                TrafficClass::Other,
                &inner.policy,
                |conn| {
                    let req = requests::commit_request(
                        &inner.group,
                        &generation,
                        &lock(&left),
                        &inner.client.metadata(),
                    );
                    let left = &left;
                    async move {
                        let answers = requests::send_commit(&conn, req).await?;
                        Ok(requests::commit_step(
                            &inner.group,
                            &mut lock(left),
                            answers,
                        ))
                    }
                },
            )
            .await;
        let left = left.into_inner().unwrap_or_else(|p| p.into_inner());
        // Whatever succeeded is committed, even if other partitions failed.
        let committed: Vec<_> = snapshot
            .iter()
            .filter(|(tp, _)| !left.contains_key(*tp))
            .collect();
        {
            let mut slots = lock(&inner.slots);
            for (tp, o) in &committed {
                slots.entry((*tp).clone()).or_default().committed = Some((*o).clone());
            }
        }
        match outcome {
            Ok(()) => Ok(snapshot),
            Err(CallError::Stopped(e)) | Err(CallError::Failed(e)) => Err(e),
            Err(CallError::OutOfTime(last)) => Err(Error::Timeout {
                what: format!(
                    "OffsetCommit for group '{}' ({} partitions left){}",
                    inner.group,
                    left.len(),
                    last.map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                ),
                after: inner.policy.within.unwrap_or_default(),
            }),
        }
    }

    /// The committed offsets of `partitions` (OffsetFetch, asking for
    /// stable offsets: transactional commits still open are waited for).
    /// A partition without a committed offset is absent from the map.
    pub async fn fetch(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let inner = &*self.inner;
        let found = inner
            .client
            .coordinator_call(
                CoordinatorKind::Group,
                &inner.group,
                TrafficClass::Other,
                &inner.policy,
                |conn| async move {
                    let meta = inner.client.metadata();
                    requests::fetch_offsets(&conn, &inner.group, Some(partitions), true, &meta)
                        .await
                },
            )
            .await
            .map_err(|e| match e {
                CallError::Stopped(e) | CallError::Failed(e) => e,
                CallError::OutOfTime(last) => Error::Timeout {
                    what: format!(
                        "OffsetFetch for group '{}'{}",
                        inner.group,
                        last.map(|e| format!("; last error: {e}"))
                            .unwrap_or_default()
                    ),
                    after: inner.policy.within.unwrap_or_default(),
                },
            })?;
        let mut slots = lock(&inner.slots);
        for (tp, o) in &found {
            slots.entry(tp.clone()).or_default().committed = Some(o.clone());
        }
        Ok(found)
    }
}

/// Whether a commit error means the member must rejoin the group before
/// it can commit again (its partitions may have moved).
pub(crate) fn needs_rejoin(code: ErrorCode) -> bool {
    [
        ErrorCode::REBALANCE_IN_PROGRESS,
        ErrorCode::ILLEGAL_GENERATION,
        ErrorCode::UNKNOWN_MEMBER_ID,
        ErrorCode::STALE_MEMBER_EPOCH,
        ErrorCode::FENCED_MEMBER_EPOCH,
        // The group is gone (every member expired): so is the membership.
        ErrorCode::GROUP_ID_NOT_FOUND,
    ]
    .contains(&code)
}

/// A commit's place in line: it runs once the commit before it finished,
/// and lets the next one go when it ends (or is dropped).
struct Turn {
    before: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

impl Turn {
    async fn run<T>(self, commit: impl std::future::Future<Output = T>) -> T {
        if let Some(before) = self.before {
            // An error means the earlier commit was dropped: it is over too.
            let _ = before.await;
        }
        let out = commit.await;
        drop(self.done);
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
