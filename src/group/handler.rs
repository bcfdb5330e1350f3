//! The handler shape of a group consumer (Sarama's `ConsumerGroupHandler`):
//! `setup` when partitions are assigned, one `consume_claim` task per
//! assigned partition, `cleanup` when they are given up — on the same
//! engine as the stream of [`GroupConsumer::recv`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::TopicPartition;
use super::consumer::{GroupConsumer, GroupEvent};
use super::offsets::{Generation, OffsetManager};
use super::tracks::{Acker, Revoking, Tracks, may_mark, pause_for_claim};
use crate::consumer::{ConsumedBatch, ConsumerRecord};
use crate::error::Result;

/// What a group consumer does with its partitions: Sarama's handler.
///
/// `setup` runs when partitions are assigned (before their claims start),
/// `consume_claim` once per assigned partition on a task of its own, and
/// `cleanup` after the claims of a revocation have returned. A claim ends
/// (its [`Claim::recv`] returns `None`) when its partition is revoked or
/// lost; `consume_claim` should then return promptly — the rebalance waits
/// for it at most the rebalance timeout.
///
/// Offsets are committed only for records marked through the session
/// ([`GroupSession::mark`], or [`GroupSession::done`] for out-of-order
/// completion).
pub trait GroupHandler: Send + Sync + 'static {
    /// Called when partitions are assigned, before their claims start.
    fn setup(&self, session: &GroupSession) -> impl Future<Output = Result<()>> + Send {
        let _ = session;
        async { Ok(()) }
    }

    /// Reads one partition until its claim ends.
    fn consume_claim(
        &self,
        session: GroupSession,
        claim: Claim,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Called after the claims of revoked partitions have returned, before
    /// the revocation completes (and is committed).
    fn cleanup(&self, session: &GroupSession) -> impl Future<Output = Result<()>> + Send {
        let _ = session;
        async { Ok(()) }
    }
}

/// One generation's view for a handler: its partitions and the means to
/// mark records.
#[derive(Debug, Clone)]
pub struct GroupSession {
    generation: Generation,
    claims: Vec<TopicPartition>,
    offsets: OffsetManager,
    acker: Acker,
    tracks: Tracks,
    revoking: Revoking,
    tokens: Arc<BTreeMap<TopicPartition, u64>>,
}

impl GroupSession {
    /// The generation (or member epoch) of this session.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// The partitions this session started claims for.
    pub fn claims(&self) -> &[TopicPartition] {
        &self.claims
    }

    /// Marks `record` as processed, with everything before it in its
    /// partition: the next commit stores the offset after it. Marks made
    /// while the partition is being revoked (in `consume_claim` after its
    /// claim ended, or in `cleanup`) are committed with the revocation.
    /// Ignored (returns `false`) once the partition is no longer owned, so
    /// a late mark cannot overwrite the new owner's commits.
    pub fn mark(&self, record: &ConsumerRecord) -> bool {
        self.mark_offset(
            &TopicPartition::new(&*record.topic, record.partition),
            record.offset + 1,
            None,
        )
    }

    /// Marks `offset` (the next record to read) of `tp` with metadata.
    pub fn mark_offset(&self, tp: &TopicPartition, offset: i64, metadata: Option<&str>) -> bool {
        let Some(token) = self.tokens.get(tp) else {
            return false;
        };
        if !may_mark(&self.tracks, &self.revoking, tp, *token) {
            return false;
        }
        self.offsets.mark(tp, offset, metadata);
        true
    }

    /// Finishes `record` out of order (the consumer must use
    /// [`AckMode::Explicit`](super::AckMode::Explicit)): the committed
    /// offset advances over the finished prefix of its partition only.
    /// Returns `false` when the partition is no longer owned, the record
    /// was finished already, or the consumer is not in explicit mode.
    pub fn done(&self, record: &ConsumerRecord) -> bool {
        self.acker.done(record)
    }

    /// Commits the marks now.
    pub async fn commit(&self) -> Result<()> {
        self.offsets.commit().await.map(|_| ())
    }
}

/// The records of one assigned partition for
/// [`GroupHandler::consume_claim`].
#[derive(Debug)]
pub struct Claim {
    tp: TopicPartition,
    token: u64,
    batches: mpsc::UnboundedReceiver<ConsumedBatch>,
    current: std::vec::IntoIter<ConsumerRecord>,
    queued: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
    wake: Arc<Notify>,
    tracks: Tracks,
}

/// How many batches a claim may hold before its partition stops fetching.
const CLAIM_BATCHES: usize = 4;

impl Claim {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.tp.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.tp.partition
    }

    /// The next record; `None` once the partition is revoked or lost
    /// (records still buffered are dropped then).
    pub async fn recv(&mut self) -> Option<ConsumerRecord> {
        loop {
            if self.ended.load(Ordering::Acquire) {
                return None;
            }
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            // The wake first: an ended partition is noticed even while
            // batches keep coming.
            let batch = tokio::select! {
                biased;
                _ = self.wake.notified() => continue,
                b = self.batches.recv() => b?,
            };
            if self.queued.fetch_sub(1, Ordering::AcqRel) == CLAIM_BATCHES {
                pause_for_claim(&self.tracks, &self.tp, self.token, false);
            }
            self.current = batch.records.into_iter();
        }
    }
}

/// A running claim, as the runner sees it.
struct ClaimSlot {
    tx: mpsc::UnboundedSender<ConsumedBatch>,
    queued: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
    wake: Arc<Notify>,
    task: JoinHandle<Result<()>>,
}

impl GroupConsumer {
    /// Runs `handler` over this member's partitions until `shutdown`
    /// resolves or the member fails, then closes the consumer (giving the
    /// partitions up, committing what was marked, leaving the group).
    ///
    /// ```no_run
    /// use klamm::group::{Claim, GroupConsumer, GroupHandler, GroupSession};
    /// use klamm::{Client, Config};
    ///
    /// struct Printer;
    ///
    /// impl GroupHandler for Printer {
    ///     async fn consume_claim(&self, session: GroupSession, mut claim: Claim) -> klamm::Result<()> {
    ///         while let Some(record) = claim.recv().await {
    ///             println!("{}/{} @ {}", record.topic, record.partition, record.offset);
    ///             session.mark(&record);
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn run() -> klamm::Result<()> {
    /// let mut config = Config::default();
    /// config.net.bootstrap_servers = vec!["127.0.0.1:9092".into()];
    /// config.consumer.group_id = Some("billing".into());
    /// let client = Client::connect(config).await?;
    /// let group = GroupConsumer::new(client, ["invoices"]).await?;
    /// // Runs until the member fails; pass a shutdown future to stop it.
    /// group.run(Printer, std::future::pending::<()>()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<H: GroupHandler, S: Future>(mut self, handler: H, shutdown: S) -> Result<()> {
        let handler = Arc::new(handler);
        let mut claims: BTreeMap<TopicPartition, ClaimSlot> = BTreeMap::new();
        tokio::pin!(shutdown);
        let mut outcome = Ok(());
        loop {
            let ev = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                ev = self.recv() => ev,
            };
            // A handler marks its records itself.
            self.forget_delivered();
            let ev = match ev {
                None => break,
                Some(Err(e)) => {
                    outcome = Err(e);
                    break;
                }
                Some(Ok(ev)) => ev,
            };
            match ev {
                GroupEvent::Records(batch) => {
                    let tp = TopicPartition::new(&*batch.topic, batch.partition);
                    if let Some(slot) = claims.get(&tp) {
                        if slot.queued.fetch_add(1, Ordering::AcqRel) + 1 == CLAIM_BATCHES {
                            if let Some(token) = self.token_of(&tp) {
                                pause_for_claim(self.tracks(), &tp, token, true);
                            }
                        }
                        let _ = slot.tx.send(batch);
                    }
                }
                GroupEvent::Assigned(tps) => {
                    let session = self.session(&tps);
                    if let Err(e) = handler.setup(&session).await {
                        outcome = Err(e);
                        break;
                    }
                    for tp in tps {
                        let Some(token) = self.token_of(&tp) else {
                            continue;
                        };
                        let (tx, batches) = mpsc::unbounded_channel();
                        let queued = Arc::new(AtomicUsize::new(0));
                        let ended = Arc::new(AtomicBool::new(false));
                        let wake = Arc::new(Notify::new());
                        let claim = Claim {
                            tp: tp.clone(),
                            token,
                            batches,
                            current: Vec::new().into_iter(),
                            queued: queued.clone(),
                            ended: ended.clone(),
                            wake: wake.clone(),
                            tracks: self.tracks().clone(),
                        };
                        let h = handler.clone();
                        let s = session.clone();
                        let task = tokio::spawn(async move { h.consume_claim(s, claim).await });
                        claims.insert(
                            tp,
                            ClaimSlot {
                                tx,
                                queued,
                                ended,
                                wake,
                                task,
                            },
                        );
                    }
                }
                GroupEvent::Revoked(tps)
                | GroupEvent::Lost {
                    partitions: tps, ..
                } => {
                    let session = self.session(&tps);
                    if let Err(e) = self.end_claims(&mut claims, &tps).await {
                        outcome = Err(e);
                    }
                    if let Err(e) = handler.cleanup(&session).await {
                        outcome = Err(e);
                    }
                    if outcome.is_err() {
                        break;
                    }
                }
            }
        }
        let all: Vec<TopicPartition> = claims.keys().cloned().collect();
        let ended = self.end_claims(&mut claims, &all).await;
        if !all.is_empty() {
            let session = self.session(&all);
            let cleaned = handler.cleanup(&session).await;
            if outcome.is_ok() {
                outcome = ended.and(cleaned);
            }
        }
        let closed = self.close().await;
        outcome.and(closed)
    }

    fn session(&self, claims: &[TopicPartition]) -> GroupSession {
        let tokens = claims
            .iter()
            .filter_map(|tp| self.token_of(tp).map(|t| (tp.clone(), t)))
            .collect();
        GroupSession {
            generation: self.generation(),
            claims: claims.to_vec(),
            offsets: self.offsets().clone(),
            acker: self.acker(),
            tracks: self.tracks().clone(),
            revoking: self.revoking().clone(),
            tokens: Arc::new(tokens),
        }
    }

    /// Ends the claims of `tps` and waits for their handlers, at most the
    /// rebalance timeout (a handler still running then is left to finish
    /// on its own; its marks are ignored, as its partitions are gone).
    async fn end_claims(
        &self,
        claims: &mut BTreeMap<TopicPartition, ClaimSlot>,
        tps: &[TopicPartition],
    ) -> Result<()> {
        let mut tasks = Vec::new();
        for tp in tps {
            if let Some(slot) = claims.remove(tp) {
                slot.ended.store(true, Ordering::Release);
                slot.wake.notify_one();
                drop(slot.tx);
                tasks.push((tp.clone(), slot.task));
            }
        }
        let deadline = tokio::time::Instant::now() + self.rebalance_timeout();
        let mut result = Ok(());
        for (tp, task) in tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(partition = %tp, error = %e, "consume_claim failed");
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Ok(Err(join)) => {
                    tracing::warn!(partition = %tp, error = %join, "consume_claim panicked or was cancelled");
                }
                Err(_) => {
                    tracing::warn!(partition = %tp, "consume_claim did not return within the rebalance timeout; going on without it");
                }
            }
        }
        result
    }
}
