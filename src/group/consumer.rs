//! The group consumer: a member of a consumer group reading the
//! partitions the group gives it, as one stream of record batches and
//! rebalance events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::assignor::{self, Assignor};
use super::forward::{Control, Fetched, Item, Outlet, forward};
use super::hooks::{self, DefaultHooks, OffsetHooks, Restarter};
use super::member::{self, Command, MemberEvent, MemberHandle, MemberSettings};
use super::offsets::{Generation, OffsetManager, OffsetTracker, needs_rejoin};
use super::side_channel::{self, Publisher, SideChannel};
use super::subscription::{self, TopicPattern, Topics, Watch};
use super::tracks::{Acker, Revoking, Track, Tracks, lock};
use super::{TopicPartition, TopicPartitions};
use crate::client::Client;
use crate::consumer::{ConsumedBatch, Consumer, ConsumerOptions, OffsetResetPolicy, StartOffset};
use crate::error::{Error, Result};

/// When a delivered record counts as finished, so that its offset may be
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Everything [`GroupConsumer::recv`] returned is finished when it is
    /// called again (the Java consumer's rule for auto-commit: at least
    /// once, as long as records are processed before the next call).
    #[default]
    NextRecv,
    /// Only what the application finishes with [`Acker::done`] or
    /// [`Acker::done_through`] — in any order: the committed offset
    /// advances over the finished prefix of each partition only.
    Explicit,
}

/// Group consumer settings the [`Config`](crate::Config) does not hold.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// When records count as finished. Default [`AckMode::NextRecv`].
    pub ack: AckMode,
    /// Under [`AckMode::Explicit`], how many delivered but unfinished
    /// records a partition may have before its fetching pauses (it
    /// resumes as records finish). Default 10,000.
    pub max_outstanding: usize,
    /// The assignors to offer, in order of preference; `None` (the
    /// default) takes them by name from `partition.assignment.strategy`.
    pub assignors: Option<Vec<Arc<dyn Assignor>>>,
    /// Where partitions start, and where they go when their offset is out
    /// of range (see [`OffsetHooks`]; e.g. [`NoOlderThan`](super::NoOlderThan)).
    /// `None` (the default): the committed offset, else
    /// `auto.offset.reset`, which also handles an out-of-range offset.
    /// With hooks, an out-of-range offset never reaches `recv` as an
    /// error: the partition reads on where the hook says.
    pub hooks: Option<Arc<dyn OffsetHooks>>,
    /// A maximum message age per topic: a partition of such a topic whose
    /// committed offset is older when it is assigned (before the first
    /// record at most this old, found by timestamp) starts as if its
    /// offset were out of range ([`OffsetHooks::offset_out_of_range`], by
    /// default `auto.offset.reset`). Empty by default.
    pub max_message_age: BTreeMap<String, Duration>,
    /// Whether to read the assigned partitions. Default `true`; `false`
    /// makes a watch-only member: it joins, takes part in rebalances and
    /// reports `Assigned` and `Revoked`, but fetches nothing and commits
    /// nothing (its partitions are not read by anyone while it holds
    /// them) — for tools that watch a group.
    pub fetch: bool,
    /// Side-channel offsets (sarama-consumer's): when partitions are
    /// revoked (and on close) the member publishes how far it got in them
    /// — what it finished, which may be ahead of the last commit — to
    /// this topic, waiting for the ack (bounded by
    /// [`SideChannel::publish_timeout`] and the rebalance timeout); a
    /// member starting a partition reads it (for at most
    /// [`SideChannel::read_timeout`]) and starts there when that is ahead
    /// of the committed offset, so a rebalance rewinds less. `None` (the
    /// default): off, since it writes to a topic the application may not
    /// have. Failures are logged and change nothing else. See
    /// [`SideChannel`].
    ///
    /// ```no_run
    /// use klamm::group::{GroupConsumer, GroupOptions, SideChannel};
    ///
    /// # async fn run(client: klamm::Client) -> klamm::Result<()> {
    /// let options = GroupOptions {
    ///     side_channel: Some(SideChannel::default()),
    ///     ..GroupOptions::default()
    /// };
    /// let group = GroupConsumer::with_options(client, ["invoices"], options).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub side_channel: Option<SideChannel>,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            ack: AckMode::NextRecv,
            max_outstanding: 10_000,
            assignors: None,
            hooks: None,
            max_message_age: BTreeMap::new(),
            fetch: true,
            side_channel: None,
        }
    }
}

/// What [`GroupConsumer::recv`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupEvent {
    /// Records of one partition, in offset order: one fetched batch, or a
    /// run of at most `max.poll.records` of it.
    Records(ConsumedBatch),
    /// These partitions were assigned to this member (and are being read
    /// from where the [`OffsetHooks`] say, by default their committed
    /// offsets; a watch-only member does not read them).
    Assigned(Vec<TopicPartition>),
    /// These partitions are being given up. No more records of them
    /// follow; finish (and, under [`AckMode::Explicit`], mark done) what
    /// was delivered of them before the next `recv`, which commits and
    /// lets the rebalance go on.
    Revoked(Vec<TopicPartition>),
    /// These partitions were lost: the member was removed from the group
    /// (or stopped polling for `max.poll.interval.ms`). Another member may
    /// already read them; nothing more is committed for them.
    Lost {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// Why.
        reason: String,
    },
}

/// A member of a consumer group that reads the partitions the group
/// assigns it (the classic protocol: JoinGroup, SyncGroup, Heartbeat).
///
/// ```no_run
/// use klamm::group::{GroupConsumer, GroupEvent};
/// use klamm::{Client, Config};
///
/// # async fn run() -> klamm::Result<()> {
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["127.0.0.1:9092".into()];
/// config.consumer.group_id = Some("billing".into());
/// let client = Client::connect(config).await?;
/// let mut group = GroupConsumer::new(client, ["invoices"]).await?;
/// while let Some(event) = group.recv().await {
///     match event? {
///         GroupEvent::Records(batch) => {
///             for r in batch.iter() {
///                 println!("{}/{} @ {}", r.topic, r.partition, r.offset);
///             }
///         }
///         other => println!("{other:?}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct GroupConsumer {
    client: Client,
    consumer: Consumer,
    offsets: OffsetManager,
    member: MemberHandle,
    /// Keeps the subscription current (patterns, partition counts).
    watch: Watch,
    options: GroupOptions,
    /// The hooks in use (the defaults without [`GroupOptions::hooks`]).
    hooks: Arc<dyn OffsetHooks>,
    auto_commit: Option<Duration>,
    next_auto_commit: Instant,
    tracks: Tracks,
    /// Partitions of a revocation not yet completed, whose marks count.
    revoking: Revoking,
    forwarders: BTreeMap<TopicPartition, JoinHandle<()>>,
    next_token: u64,
    fanin_tx: mpsc::Sender<Fetched>,
    fanin_rx: mpsc::Receiver<Fetched>,
    /// A revocation the application has been told of; acknowledged by
    /// the next `recv` (or `close`).
    pending_revoke: Option<(Vec<TopicPartition>, oneshot::Sender<()>)>,
    /// A member event being handled (see `on_member_event`).
    in_progress: Option<MemberEvent>,
    /// Tasks of stopped partitions not yet ended.
    stopping: Vec<JoinHandle<()>>,
    /// Under [`AckMode::NextRecv`]: the partition and next offset of the
    /// batch delivered last.
    last_delivered: Option<(TopicPartition, i64)>,
    /// Publishes revoked partitions' offsets ([`GroupOptions::side_channel`]).
    publisher: Option<Publisher>,
    generation: Generation,
    ended: bool,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.offsets.group())
            .field("generation", &self.generation)
            .field("assigned", &lock(&self.tracks).len())
            .finish()
    }
}

impl GroupConsumer {
    /// Joins the group named by `group.id` and subscribes to `topics`,
    /// with default [`GroupOptions`].
    pub async fn new<S: Into<String>>(
        client: Client,
        topics: impl IntoIterator<Item = S>,
    ) -> Result<GroupConsumer> {
        Self::with_options(client, topics, GroupOptions::default()).await
    }

    /// Like [`GroupConsumer::new`], with options.
    pub async fn with_options<S: Into<String>>(
        client: Client,
        topics: impl IntoIterator<Item = S>,
        options: GroupOptions,
    ) -> Result<GroupConsumer> {
        let topics = subscription::normalized(topics);
        if topics.is_empty() {
            return Err(Error::config("topics", "subscribe to at least one topic"));
        }
        Self::start(client, Topics::List(topics), options).await
    }

    /// Joins the group named by `group.id` and subscribes to every topic
    /// whose whole name matches `pattern` (see [`TopicPattern`]), now and
    /// as topics are created and deleted: the matches are resolved again
    /// at each metadata refresh (`metadata.max.age.ms`), and a change
    /// rebalances the group. Matching no topic yet is allowed.
    ///
    /// ```no_run
    /// # async fn run(client: klamm::Client) -> klamm::Result<()> {
    /// use klamm::group::{GroupConsumer, GroupOptions};
    /// let group = GroupConsumer::with_pattern(client, "orders-.*", GroupOptions::default()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_pattern(
        client: Client,
        pattern: &str,
        options: GroupOptions,
    ) -> Result<GroupConsumer> {
        let pattern = TopicPattern::new(pattern)?;
        Self::start(client, Topics::Pattern(pattern), options).await
    }

    async fn start(client: Client, topics: Topics, options: GroupOptions) -> Result<GroupConsumer> {
        let cfg = client.config().consumer.clone();
        let group = cfg
            .group_id
            .clone()
            .ok_or_else(|| Error::config("group.id", "a group consumer needs a group.id"))?;
        if let Some(sc) = &options.side_channel {
            sc.validate()?;
        }
        let assignors = match &options.assignors {
            Some(a) if a.is_empty() => {
                return Err(Error::config(
                    "partition.assignment.strategy",
                    "at least one assignor is needed",
                ));
            }
            Some(a) => a.clone(),
            None => cfg
                .partition_assignment_strategy
                .iter()
                .map(|n| assignor::configured(n, client.config()))
                .collect::<Result<Vec<_>>>()?,
        };
        let resolved = match &topics {
            Topics::List(list) => list.clone(),
            Topics::Pattern(p) => {
                client.refresh_cluster_metadata().await?;
                subscription::matching(&client, p)
            }
        };
        let settings = MemberSettings {
            group: group.clone(),
            instance_id: cfg.group_instance_id.clone(),
            session_timeout: cfg.session_timeout,
            rebalance_timeout: cfg.effective_rebalance_timeout(),
            heartbeat_interval: cfg.heartbeat_interval,
            max_poll_interval: cfg.max_poll_interval,
            assignors,
            rack: cfg.client_rack.clone(),
            retry_backoff: client.config().metadata.retry_backoff,
        };
        let offsets = OffsetManager::new(client.clone(), group);
        let member = member::start(client.clone(), settings, resolved.clone(), offsets.clone());
        let watch = Watch::start(client.clone(), &member.commands, topics, resolved);
        let (fanin_tx, fanin_rx) = mpsc::channel(FANIN_CAPACITY);
        let auto_commit =
            (cfg.enable_auto_commit && options.fetch).then_some(cfg.auto_commit_interval);
        let mut consumer_options = ConsumerOptions::for_client(&client);
        if options.hooks.is_some() {
            // Out-of-range errors come to the group consumer, which asks
            // the hooks.
            consumer_options.offset_reset = OffsetResetPolicy::Error;
        }
        let hooks: Arc<dyn OffsetHooks> = match &options.hooks {
            Some(h) => h.clone(),
            None => Arc::new(DefaultHooks),
        };
        let publisher = options
            .side_channel
            .clone()
            .filter(|_| options.fetch)
            .map(Publisher::new);
        Ok(GroupConsumer {
            publisher,
            consumer: Consumer::with_options(client.clone(), consumer_options),
            client,
            offsets,
            member,
            watch,
            options,
            hooks,
            next_auto_commit: Instant::now() + auto_commit.unwrap_or_default(),
            auto_commit,
            tracks: Arc::new(Mutex::new(BTreeMap::new())),
            revoking: Arc::new(Mutex::new(BTreeMap::new())),
            forwarders: BTreeMap::new(),
            next_token: 0,
            fanin_tx,
            fanin_rx,
            pending_revoke: None,
            in_progress: None,
            stopping: Vec::new(),
            last_delivered: None,
            generation: Generation::NONE,
            ended: false,
        })
    }

    /// The offset manager: marks and commits of this member.
    pub fn offsets(&self) -> &OffsetManager {
        &self.offsets
    }

    /// A handle that finishes records under [`AckMode::Explicit`].
    pub fn acker(&self) -> Acker {
        Acker {
            tracks: self.tracks.clone(),
            offsets: self.offsets.clone(),
            max_outstanding: self.options.max_outstanding.max(1),
        }
    }

    /// The generation this member is in (-1 between generations).
    pub fn generation(&self) -> Generation {
        self.generation.clone()
    }

    /// The partitions this member reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        lock(&self.tracks).keys().cloned().collect()
    }

    /// Changes the subscription; the member rejoins when it differs.
    pub fn subscribe<S: Into<String>>(&self, topics: impl IntoIterator<Item = S>) {
        let topics = subscription::normalized(topics);
        self.watch.set(Topics::List(topics.clone()));
        let _ = self.member.commands.send(Command::Subscribe(topics));
    }

    /// Subscribes to every topic whose whole name matches `pattern`
    /// instead (see [`GroupConsumer::with_pattern`]); the member rejoins
    /// when the matches differ from its topics. An invalid pattern changes
    /// nothing and is a config error.
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<()> {
        self.watch.set(Topics::Pattern(TopicPattern::new(pattern)?));
        Ok(())
    }

    /// The next batch of records or rebalance event. Calling it also tells
    /// the group the application is alive (`max.poll.interval.ms`),
    /// finishes what the last call returned (under [`AckMode::NextRecv`])
    /// and completes a revocation it reported. `None` once the member has
    /// stopped (after an error it returned, or `close`).
    pub async fn recv(&mut self) -> Option<Result<GroupEvent>> {
        if self.ended {
            return None;
        }
        let _polling = self.member.poll.polling();
        self.finish_last();
        if let Err(e) = self.complete_revoke().await {
            return Some(Err(e));
        }
        // An event whose handling a dropped `recv` interrupted.
        if self.in_progress.is_some() {
            if let Some(out) = self.on_member_event().await {
                return Some(out);
            }
        }
        loop {
            tokio::select! {
                biased;
                ev = self.member.events.recv() => {
                    let Some(ev) = ev else {
                        self.ended = true;
                        return None;
                    };
                    self.in_progress = Some(ev);
                    if let Some(out) = self.on_member_event().await {
                        return Some(out);
                    }
                }
                _ = tokio::time::sleep_until(self.next_auto_commit), if self.auto_commit.is_some() => {
                    self.auto_commit_now();
                }
                f = self.fanin_rx.recv() => {
                    let Some(f) = f else { continue };
                    if let Some(out) = self.on_fetched(f) {
                        return Some(out);
                    }
                }
            }
        }
    }

    /// Commits the marks now, waiting for the answer. A watch-only member
    /// ([`GroupOptions::fetch`] off) commits nothing.
    pub async fn commit(&mut self) -> Result<()> {
        if !self.options.fetch {
            return Ok(());
        }
        self.finish_last();
        let r = self.offsets.commit().await.map(|_| ());
        self.check_commit(&r);
        r
    }

    /// Gives every partition up (committing what was finished when
    /// auto-commit is on), leaves the group unless the member is static
    /// (a static member keeps its place until `session.timeout.ms`, so a
    /// restart gets its partitions back without a rebalance), and stops.
    pub async fn close(mut self) -> Result<()> {
        self.finish_last();
        let mut result = self.complete_revoke().await;
        let (done, mut closed) = oneshot::channel();
        let _ = self.member.commands.send(Command::Close(done));
        loop {
            tokio::select! {
                biased;
                _ = &mut closed => break,
                ev = self.member.events.recv() => match ev {
                    None => break,
                    Some(MemberEvent::Revoked { partitions, ack }) => {
                        let list = flatten(&partitions);
                        self.stop_partitions(&list).await;
                        self.pending_revoke = Some((list, ack));
                        let r = self.complete_revoke().await;
                        if result.is_ok() {
                            result = r;
                        }
                    }
                    Some(MemberEvent::Lost { partitions, .. }) => {
                        let list = flatten(&partitions);
                        self.stop_partitions(&list).await;
                        self.offsets.forget(&list);
                    }
                    Some(MemberEvent::Assigned { .. }) | Some(MemberEvent::Fatal(_)) => {}
                },
            }
        }
        let all: Vec<TopicPartition> = self.forwarders.keys().cloned().collect();
        self.stop_partitions(&all).await;
        let _ = (&mut self.member.task).await;
        if let Some(p) = self.publisher.take() {
            p.close().await;
        }
        self.consumer.close().await;
        self.ended = true;
        result
    }

    /// Marks the batch the last `recv` returned as finished
    /// ([`AckMode::NextRecv`]).
    fn finish_last(&mut self) {
        if let Some((tp, next)) = self.last_delivered.take() {
            if lock(&self.tracks).contains_key(&tp) {
                self.offsets.mark(&tp, next, None);
            }
        }
    }

    /// Completes a revocation the application was told of: commits (when
    /// auto-commit is on), forgets the partitions' marks, and lets the
    /// member go on.
    ///
    /// Cancel-safe: the revocation stays pending until the commit is over,
    /// so a `recv` dropped during it commits again next time.
    async fn complete_revoke(&mut self) -> Result<()> {
        if self.pending_revoke.is_none() {
            return Ok(());
        }
        let mut result = Ok(());
        if self.auto_commit.is_some() {
            let r = self.offsets.commit().await.map(|_| ());
            if let Err(e) = &r {
                tracing::warn!(group = %self.offsets.group(), error = %e, "commit on revoke failed");
            }
            result = r;
        }
        if let Some((partitions, _)) = &self.pending_revoke {
            let partitions = partitions.clone();
            self.publish_handover(&partitions).await;
        }
        if let Some((partitions, ack)) = self.pending_revoke.take() {
            self.offsets.forget(&partitions);
            let mut revoking = lock(&self.revoking);
            for tp in &partitions {
                revoking.remove(tp);
            }
            drop(revoking);
            let _ = ack.send(());
        }
        result
    }

    /// Publishes to the side channel (when on) how far this member got in
    /// `partitions`, which it is giving up: each one's mark, when it
    /// differs from what is known to be committed. Waits for the ack at
    /// most half the rebalance timeout (and the publish timeout); never
    /// fails.
    async fn publish_handover(&mut self, partitions: &[TopicPartition]) {
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        let handover: Vec<(TopicPartition, i64)> = partitions
            .iter()
            .filter_map(|tp| {
                let marked = self.offsets.marked(tp)?.offset;
                let committed = self.offsets.committed(tp).map(|c| c.offset);
                (committed != Some(marked)).then(|| (tp.clone(), marked))
            })
            .collect();
        let limit = self.client.config().consumer.effective_rebalance_timeout() / 2;
        publisher
            .publish(
                &self.client,
                self.offsets.group(),
                &self.generation,
                handover,
                limit,
            )
            .await;
    }

    fn auto_commit_now(&mut self) {
        let every = self.auto_commit.unwrap_or_default();
        self.next_auto_commit = Instant::now() + every;
        if !self.offsets.has_pending() {
            return;
        }
        let commit = self.offsets.commit_async();
        let commands = self.member.commands.clone();
        let group = self.offsets.group().to_string();
        tokio::spawn(async move {
            if let Ok(Err(e)) = commit.await {
                tracing::debug!(%group, error = %e, "auto-commit failed");
                if let Some(cmd) = rejoin_command(&e) {
                    let _ = commands.send(cmd);
                }
            }
        });
    }

    fn check_commit(&self, r: &Result<()>) {
        if let Err(e) = r {
            if let Some(cmd) = rejoin_command(e) {
                let _ = self.member.commands.send(cmd);
            }
        }
    }

    /// Handles the member event in `in_progress`. Cancel-safe: the event
    /// stays there until its work is done, and the work can be done again
    /// (starting skips partitions already started, stopping ones already
    /// stopped), so a `recv` dropped halfway finishes it next time.
    async fn on_member_event(&mut self) -> Option<Result<GroupEvent>> {
        let list = match self.in_progress.as_ref()? {
            MemberEvent::Assigned { added, .. } => flatten(added),
            MemberEvent::Revoked { partitions, .. } | MemberEvent::Lost { partitions, .. } => {
                flatten(partitions)
            }
            MemberEvent::Fatal(_) => Vec::new(),
        };
        if let Some(MemberEvent::Revoked { .. }) = self.in_progress.as_ref() {
            // Marks keep counting until the revocation completes.
            let tracks = lock(&self.tracks);
            let mut revoking = lock(&self.revoking);
            for tp in &list {
                if let Some(t) = tracks.get(tp) {
                    revoking.insert(tp.clone(), t.token);
                }
            }
        }
        let started = match self.in_progress.as_ref()? {
            MemberEvent::Assigned { .. } => self.start_partitions(&list).await,
            MemberEvent::Revoked { .. } | MemberEvent::Lost { .. } => {
                self.stop_partitions(&list).await;
                Ok(())
            }
            MemberEvent::Fatal(_) => Ok(()),
        };
        match self.in_progress.take()? {
            MemberEvent::Assigned { generation, .. } => {
                self.generation = generation;
                if let Err(e) = started {
                    return Some(Err(e));
                }
                Some(Ok(GroupEvent::Assigned(list)))
            }
            MemberEvent::Revoked { ack, .. } => {
                self.pending_revoke = Some((list.clone(), ack));
                Some(Ok(GroupEvent::Revoked(list)))
            }
            MemberEvent::Lost { reason, .. } => {
                self.offsets.forget(&list);
                if self
                    .last_delivered
                    .as_ref()
                    .is_some_and(|(tp, _)| list.contains(tp))
                {
                    self.last_delivered = None;
                }
                Some(Ok(GroupEvent::Lost {
                    partitions: list,
                    reason,
                }))
            }
            MemberEvent::Fatal(e) => {
                // The partitions stop at `close` (or drop).
                self.ended = true;
                Some(Err(e))
            }
        }
    }

    fn on_fetched(&mut self, f: Fetched) -> Option<Result<GroupEvent>> {
        let mut tracks = lock(&self.tracks);
        let track = tracks.get_mut(&f.tp).filter(|t| t.token == f.token)?;
        match f.item {
            Item::Restarted(offset) => {
                // The offset moved (out of range): what was delivered
                // before it no longer counts, and the new place is what
                // the group resumes from until records are read.
                if offset < track.tracker.next() || track.tracker.outstanding() == 0 {
                    track.tracker = OffsetTracker::new(offset);
                    self.offsets.mark(&f.tp, offset, None);
                    if self
                        .last_delivered
                        .as_ref()
                        .is_some_and(|(tp, _)| *tp == f.tp)
                    {
                        self.last_delivered = None;
                    }
                }
                None
            }
            Item::Batch(Ok(batch)) => {
                let next = batch.next_offset()?;
                if self.options.ack == AckMode::Explicit {
                    for r in batch.iter() {
                        track.tracker.delivered(r.offset);
                    }
                    if track.tracker.outstanding() >= self.options.max_outstanding.max(1)
                        && !track.paused_for_limit
                    {
                        track.paused_for_limit = true;
                        track.apply();
                    }
                } else {
                    self.last_delivered = Some((f.tp.clone(), next));
                }
                Some(Ok(GroupEvent::Records(batch)))
            }
            Item::Batch(Err(e)) => Some(Err(e)),
        }
    }

    /// Starts reading `partitions` from their committed offsets (or the
    /// reset policy's).
    async fn start_partitions(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.finish_stopping().await;
        let partitions: Vec<TopicPartition> = {
            let tracks = lock(&self.tracks);
            partitions
                .iter()
                .filter(|tp| !tracks.contains_key(*tp))
                .cloned()
                .collect()
        };
        if partitions.is_empty() {
            return Ok(());
        }
        if !self.options.fetch {
            // Watch-only: owned, never read.
            for tp in partitions {
                self.next_token += 1;
                let (control, _) = watch::channel(Control::Stop);
                lock(&self.tracks).insert(tp, Track::new(0, control, self.next_token));
            }
            return Ok(());
        }
        let committed = self.offsets.fetch(&partitions).await?;
        let handed = match &self.publisher {
            Some(p) => {
                let c: BTreeMap<TopicPartition, i64> = committed
                    .iter()
                    .map(|(tp, o)| (tp.clone(), o.offset))
                    .collect();
                side_channel::read(
                    &self.client,
                    &p.config,
                    self.offsets.group(),
                    &partitions,
                    &c,
                )
                .await
            }
            None => BTreeMap::new(),
        };
        let mut assigned = Vec::with_capacity(partitions.len());
        for tp in &partitions {
            let handover = handed.get(tp).copied();
            let committed = committed.get(tp).map(|o| o.offset);
            if let Some(h) = handover {
                tracing::info!(%tp, at = h, ?committed,
                    "starting where the previous owner got to (side channel), ahead of the commit");
            }
            // The hooks see the handed-over offset as the committed one.
            assigned.push((tp.clone(), handover.or(committed)));
        }
        let firsts = hooks::choose_starts(
            &self.consumer,
            &*self.hooks,
            &self.options.max_message_age,
            &assigned,
        )
        .await?;
        for tp in &partitions {
            let handover = handed.get(tp).copied();
            let Some(&first) = firsts.get(tp) else {
                continue;
            };
            let pc = self
                .consumer
                .consume_partition(&tp.topic, tp.partition, StartOffset::Offset(first))
                .await?;
            if handover.is_some() {
                // The next commit keeps the handover even if nothing is
                // read.
                self.offsets.mark(tp, first, None);
            }
            self.hooks.partition_started(&tp.topic, tp.partition, first);
            self.next_token += 1;
            let token = self.next_token;
            let (control, control_rx) = watch::channel(Control::Run);
            lock(&self.tracks).insert(tp.clone(), Track::new(first, control, token));
            let restart = self.options.hooks.is_some().then(|| Restarter {
                consumer: self.consumer.clone(),
                hooks: self.hooks.clone(),
                backoff: self.client.config().metadata.retry_backoff,
            });
            let out = Outlet {
                tp: tp.clone(),
                token,
                tx: self.fanin_tx.clone(),
                max_records: self.client.config().consumer.max_poll_records as usize,
            };
            let task = tokio::spawn(forward(pc, out, control_rx, restart));
            self.forwarders.insert(tp.clone(), task);
        }
        Ok(())
    }

    /// Stops reading `partitions`: their pause state and buffered records
    /// go with them.
    async fn stop_partitions(&mut self, partitions: &[TopicPartition]) {
        {
            let mut tracks = lock(&self.tracks);
            for tp in partitions {
                if let Some(t) = tracks.remove(tp) {
                    let _ = t.control.send(Control::Stop);
                }
                if let Some(task) = self.forwarders.remove(tp) {
                    self.stopping.push(task);
                }
            }
        }
        self.finish_stopping().await;
    }

    /// Waits for stopped partitions' tasks (and so their
    /// `PartitionConsumer`s) to end. Cancel-safe: a task leaves the list
    /// only once it has ended.
    async fn finish_stopping(&mut self) {
        while let Some(task) = self.stopping.last_mut() {
            let _ = task.await;
            self.stopping.pop();
        }
    }

    /// The shared partition state (for the handler runner).
    pub(crate) fn tracks(&self) -> &Tracks {
        &self.tracks
    }

    /// The current assignment token of `tp` (also while it is being
    /// revoked).
    pub(crate) fn token_of(&self, tp: &TopicPartition) -> Option<u64> {
        let owned = lock(&self.tracks).get(tp).map(|t| t.token);
        owned.or_else(|| lock(&self.revoking).get(tp).copied())
    }

    /// The partitions being revoked (for the handler runner).
    pub(crate) fn revoking(&self) -> &Revoking {
        &self.revoking
    }

    /// Forgets the batch the last `recv` returned, so the next `recv` does
    /// not mark it finished (a handler marks records itself).
    pub(crate) fn forget_delivered(&mut self) {
        self.last_delivered = None;
    }

    /// The rebalance timeout the member waits for revocations.
    pub(crate) fn rebalance_timeout(&self) -> Duration {
        self.client.config().consumer.effective_rebalance_timeout()
    }

    /// The client this consumer uses.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The command that makes the member rejoin after a commit error, if any.
fn rejoin_command(e: &Error) -> Option<Command> {
    let Error::Broker { code, .. } = e else {
        return None;
    };
    if !needs_rejoin(*code) {
        return None;
    }
    let lost = *code != crate::protocol::error_codes::ErrorCode::REBALANCE_IN_PROGRESS;
    Some(Command::Rejoin {
        reason: format!("a commit answered {code}"),
        lost,
    })
}

/// How many batches wait between the partitions' readers and `recv`.
const FANIN_CAPACITY: usize = 32;

fn flatten(tps: &TopicPartitions) -> Vec<TopicPartition> {
    tps.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| TopicPartition::new(t.clone(), *p)))
        .collect()
}
