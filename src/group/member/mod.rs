//! A member of a consumer group: the task that joins, heartbeats and
//! leaves, and tells the consumer in front of it what it now owns. Two
//! engines sit behind the same channels: the classic protocol (JoinGroup,
//! SyncGroup, Heartbeat; the default) and the consumer protocol (KIP-848,
//! `group.protocol = consumer`: ConsumerGroupHeartbeat, the broker
//! assigns), picked by [`start`] from the client's configuration.
//!
//! The member runs on a task of its own and never waits for the
//! application, except for one bounded handshake: when partitions must be
//! given up it sends [`MemberEvent::Revoked`] and waits (heartbeating all
//! along) until the consumer acknowledges, at most the rebalance timeout.
//! So slow processing never stops heartbeats; an application that stops
//! polling for `max.poll.interval.ms` is taken out of the group and told.

mod classic;
mod consumer_protocol;
mod poll;

pub(crate) use consumer_protocol::new_member_id;
pub(crate) use poll::PollClock;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use classic::{Identity, JoinSettings, Joined, Verdict};

use super::assignor::{Assignor, ClusterLayout, GroupMember, RebalanceProtocol};
use super::offsets::{Generation, OffsetManager};
use super::{Assignment, Subscription, TopicPartitions};
use crate::client::{Client, RetryPolicy, TrafficClass};
use crate::config::GroupProtocol;
use crate::error::{Error, Result};

/// What a member needs to know.
#[derive(Debug, Clone)]
pub(crate) struct MemberSettings {
    pub(crate) group: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) max_poll_interval: Duration,
    /// In order of preference.
    pub(crate) assignors: Vec<Arc<dyn Assignor>>,
    pub(crate) rack: Option<String>,
    pub(crate) retry_backoff: Duration,
}

impl MemberSettings {
    /// The rebalance protocol every offered assignor supports: cooperative
    /// only when all are (as the Java client decides).
    pub(crate) fn protocol(&self) -> RebalanceProtocol {
        if !self.assignors.is_empty()
            && self
                .assignors
                .iter()
                .all(|a| a.rebalance_protocol() == RebalanceProtocol::Cooperative)
        {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

/// What the member tells the consumer.
#[derive(Debug)]
pub(crate) enum MemberEvent {
    /// A generation began: `added` are new to this member.
    Assigned {
        added: TopicPartitions,
        generation: Generation,
    },
    /// Give these up: stop delivering them, commit what was finished,
    /// then send on `ack`. The member waits for that (heartbeating), at
    /// most the rebalance timeout.
    Revoked {
        partitions: TopicPartitions,
        ack: oneshot::Sender<()>,
    },
    /// These are gone already (the member was removed from the group):
    /// stop delivering them, commit nothing for them.
    Lost {
        partitions: TopicPartitions,
        reason: String,
    },
    /// The member stopped for good.
    Fatal(Error),
}

/// What the consumer asks of the member.
#[derive(Debug)]
pub(crate) enum Command {
    /// Change the subscription (rejoins when it differs).
    Subscribe(Vec<String>),
    /// Join again: a commit said the group is rebalancing, or (`lost`)
    /// that this member's generation is over.
    Rejoin { reason: String, lost: bool },
    /// Give everything up and stop; leave the group unless static.
    Close(oneshot::Sender<()>),
}

/// The consumer's side of a member.
#[derive(Debug)]
pub(crate) struct MemberHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) events: mpsc::Receiver<MemberEvent>,
    pub(crate) poll: Arc<PollClock>,
    pub(crate) task: JoinHandle<()>,
}

/// Starts a member of `settings.group` subscribed to `topics`, speaking
/// the protocol `group.protocol` names.
pub(crate) fn start(
    client: Client,
    settings: MemberSettings,
    topics: Vec<String>,
    offsets: OffsetManager,
) -> MemberHandle {
    let (commands, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, events) = mpsc::channel(16);
    let poll = Arc::new(PollClock::new());
    poll.touch();
    if client.config().consumer.group_protocol == GroupProtocol::Consumer {
        let task = consumer_protocol::spawn(
            client,
            &settings,
            topics,
            offsets,
            ev_tx,
            cmd_rx,
            poll.clone(),
        );
        return MemberHandle {
            commands,
            events,
            poll,
            task,
        };
    }
    let join_class = client.dedicated_class();
    let engine = Engine {
        id: Identity {
            group: settings.group.clone(),
            member_id: String::new(),
            instance_id: settings.instance_id.clone(),
            generation: -1,
        },
        client,
        settings,
        topics,
        owned: TopicPartitions::new(),
        owned_generation: None,
        events: ev_tx,
        commands: cmd_rx,
        poll: poll.clone(),
        offsets,
        join_class,
        rejoin_reason: Some("joining".into()),
        watched: BTreeMap::new(),
        leader_topics: Vec::new(),
        follow_up: false,
        close_after_join: None,
    };
    let task = tokio::spawn(engine.run());
    MemberHandle {
        commands,
        events,
        poll,
        task,
    }
}

/// How often the stable phase checks the poll clock and the metadata.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Tells the consumer that a member engine stopped on `error`: the
/// partitions it owned are lost (when there were any), then the error.
async fn report_stop(events: &mpsc::Sender<MemberEvent>, lost: TopicPartitions, error: Error) {
    if !lost.is_empty() {
        let _ = events
            .send(MemberEvent::Lost {
                partitions: lost,
                reason: error.to_string(),
            })
            .await;
    }
    let _ = events.send(MemberEvent::Fatal(error)).await;
}

/// Why the stable phase ended.
enum Interrupt {
    /// Join again, giving partitions up first under the eager protocol.
    Rebalance(String),
    /// The membership is gone: the partitions are lost.
    Lost(String),
    /// The application stopped polling.
    PollTimeout,
    Close(oneshot::Sender<()>),
    Fatal(Error),
}

/// Why joining stopped.
enum JoinStop {
    Close(oneshot::Sender<()>),
    Fatal(Error),
}

struct Engine {
    client: Client,
    settings: MemberSettings,
    id: Identity,
    topics: Vec<String>,
    owned: TopicPartitions,
    /// The generation the owned partitions were assigned in.
    owned_generation: Option<i32>,
    events: mpsc::Sender<MemberEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    poll: Arc<PollClock>,
    offsets: OffsetManager,
    join_class: TrafficClass,
    rejoin_reason: Option<String>,
    /// Partition counts of the topics watched for changes.
    watched: BTreeMap<String, usize>,
    /// Every member's topics (the leader watches them all).
    leader_topics: Vec<String>,
    /// A cooperative rebalance revoked partitions: join again at once so
    /// their new owners get them.
    follow_up: bool,
    /// A close heard while a join that must finish first was in flight
    /// (see `join`), and until when the join may go on: done once the
    /// join's generation is applied.
    close_after_join: Option<(oneshot::Sender<()>, Instant)>,
}

impl Engine {
    async fn run(mut self) {
        let outcome = self.run_inner().await;
        if let Err(e) = outcome {
            tracing::warn!(group = %self.id.group, error = %e, "group member stopped");
            let lost = std::mem::take(&mut self.owned);
            report_stop(&self.events, lost, e).await;
        }
        self.client.close_class(self.join_class).await;
    }

    async fn run_inner(&mut self) -> Result<()> {
        loop {
            let assignment = match self.join().await {
                Ok(a) => a,
                Err(JoinStop::Fatal(e)) => return Err(e),
                Err(JoinStop::Close(done)) => {
                    self.close(done).await;
                    return Ok(());
                }
            };
            self.apply(assignment).await;
            if let Some((done, _)) = self.close_after_join.take() {
                self.close(done).await;
                return Ok(());
            }
            let interrupt = self.stable().await;
            match interrupt {
                Interrupt::Rebalance(reason) => {
                    if self.settings.protocol() == RebalanceProtocol::Eager {
                        let all = std::mem::take(&mut self.owned);
                        self.revoke(all).await;
                    }
                    self.rejoin_reason = Some(reason);
                }
                Interrupt::Lost(reason) => {
                    self.lose(&reason).await;
                    self.rejoin_reason = Some(reason);
                }
                Interrupt::PollTimeout => {
                    let reason = format!(
                        "the application did not poll for max.poll.interval.ms ({:?}); the member left the group and its partitions are lost",
                        self.settings.max_poll_interval
                    );
                    tracing::warn!(group = %self.id.group, "{reason}");
                    if self.id.instance_id.is_none() {
                        self.leave("max.poll.interval.ms exceeded").await;
                    }
                    self.lose(&reason).await;
                    // Join again once the application polls again.
                    let since = self.poll.last();
                    loop {
                        tokio::select! {
                            biased;
                            cmd = self.commands.recv() => match cmd {
                                None => return Ok(()),
                                Some(Command::Close(done)) => { let _ = done.send(()); return Ok(()); }
                                Some(Command::Subscribe(t)) => self.topics = t,
                                Some(Command::Rejoin { .. }) => {}
                            },
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                                if self.poll.last() > since { break; }
                            }
                        }
                    }
                    self.rejoin_reason = Some("the application polled again".into());
                }
                Interrupt::Close(done) => {
                    self.close(done).await;
                    return Ok(());
                }
                Interrupt::Fatal(e) => return Err(e),
            }
        }
    }

    /// Gives up every partition, leaves (dynamic members), and says done.
    async fn close(&mut self, done: oneshot::Sender<()>) {
        let all = std::mem::take(&mut self.owned);
        self.revoke(all).await;
        if self.id.instance_id.is_none() && !self.id.member_id.is_empty() {
            self.leave("the consumer is closing").await;
        }
        let _ = done.send(());
    }

    async fn leave(&mut self, reason: &str) {
        let result = async {
            let broker = self.client.coordinator(&self.id.group).await?;
            let conn = self.client.connection(&broker, TrafficClass::Other).await?;
            classic::leave(&conn, &self.id, reason).await
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(group = %self.id.group, error = %e, "LeaveGroup failed; the session will time out instead");
        }
        self.id.member_id.clear();
        self.id.generation = -1;
        self.offsets.set_generation(Generation::NONE);
    }

    /// Reports the owned partitions lost and forgets them.
    async fn lose(&mut self, reason: &str) {
        let lost = std::mem::take(&mut self.owned);
        self.owned_generation = None;
        if !lost.is_empty() {
            let _ = self
                .events
                .send(MemberEvent::Lost {
                    partitions: lost,
                    reason: reason.to_string(),
                })
                .await;
        }
    }

    /// Sends `Revoked` for `partitions` and waits for the consumer's
    /// acknowledgement, heartbeating, at most the rebalance timeout.
    async fn revoke(&mut self, partitions: TopicPartitions) {
        if partitions.values().all(Vec::is_empty) {
            return;
        }
        let (ack, acked) = oneshot::channel();
        if self
            .events
            .send(MemberEvent::Revoked { partitions, ack })
            .await
            .is_err()
        {
            return;
        }
        let deadline = Instant::now() + self.settings.rebalance_timeout;
        let mut acked = acked;
        let mut beat = tokio::time::interval(self.settings.heartbeat_interval);
        beat.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = &mut acked => return,
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(group = %self.id.group, "the application did not finish with revoked partitions within the rebalance timeout; rejoining without it");
                    return;
                }
                _ = beat.tick(), if self.id.generation >= 0 => {
                    // Only a lost membership matters here: the member is
                    // about to join again anyway.
                    if let Ok(Some(Verdict::Reset { forget_member_id, .. })) = self.heartbeat_once().await {
                        self.forget(forget_member_id);
                    }
                }
            }
        }
    }

    fn forget(&mut self, forget_member_id: bool) {
        if forget_member_id {
            self.id.member_id.clear();
        }
        self.id.generation = -1;
        self.offsets.set_generation(Generation::NONE);
    }

    async fn heartbeat_once(&self) -> Result<Option<Verdict>> {
        let broker = self.client.coordinator(&self.id.group).await?;
        let conn = self.client.connection(&broker, TrafficClass::Other).await?;
        let limit = self.settings.session_timeout;
        match tokio::time::timeout(limit, classic::heartbeat(&conn, &self.id)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                what: format!("Heartbeat for group '{}'", self.id.group),
                after: limit,
            }),
        }
    }

    fn subscription(&self) -> Subscription {
        Subscription {
            topics: self.topics.clone(),
            user_data: None,
            owned_partitions: self.owned.clone(),
            generation: self.owned_generation,
            rack: self.settings.rack.clone(),
        }
    }

    fn join_settings(&self) -> Result<JoinSettings> {
        let mut protocols = Vec::new();
        for a in &self.settings.assignors {
            let mut sub = self.subscription();
            sub.user_data = a.user_data(&self.owned, self.owned_generation);
            protocols.push((a.name().to_string(), sub.encode(3)?));
        }
        Ok(JoinSettings {
            session_timeout: self.settings.session_timeout,
            rebalance_timeout: self.settings.rebalance_timeout,
            protocols,
            reason: self.rejoin_reason.clone(),
        })
    }

    /// Joins and syncs until this member has an assignment.
    async fn join(&mut self) -> std::result::Result<Assignment, JoinStop> {
        let mut retry =
            RetryPolicy::exponential(self.settings.retry_backoff, Duration::from_secs(1)).start();
        let mut rediscover = false;
        loop {
            // The attempt borrows the engine; commands are taken out for
            // the while, so a close is heard even during a long JoinGroup.
            //
            // A close while partitions are still owned (a cooperative
            // rebalance) lets the join finish first: the group may already
            // be past the generation those partitions were assigned in, and
            // a commit under it would be refused (REBALANCE_IN_PROGRESS,
            // ILLEGAL_GENERATION), so what the member processed would be
            // read again by the next owner. The close then commits under
            // the new generation and leaves. Joining goes on (attempts
            // the coordinator answers with a rejoin are retried) for at
            // most the rebalance timeout from the close.
            let finish_before_close = !self.owned.is_empty();
            let mut commands = std::mem::replace(&mut self.commands, mpsc::unbounded_channel().1);
            let mut close_after = self.close_after_join.take();
            let rebalance_timeout = self.settings.rebalance_timeout;
            let raced = {
                let attempt = self.join_once(rediscover);
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        biased;
                        out = &mut attempt => break Ok(out),
                        cmd = commands.recv(), if close_after.is_none() => match cmd {
                            Some(Command::Close(done)) if finish_before_close => {
                                close_after = Some((done, Instant::now() + rebalance_timeout));
                            }
                            other => break Err(other),
                        },
                    }
                }
            };
            self.commands = commands;
            if let Some((done, until)) = close_after {
                let again = match &raced {
                    Ok(Ok(Ok(_))) => true,
                    Ok(Ok(Err(
                        Verdict::Rejoin(_) | Verdict::Rediscover(_) | Verdict::Retry(_),
                    ))) => Instant::now() < until,
                    Ok(Err(e)) => e.is_retriable() && Instant::now() < until,
                    _ => false,
                };
                if !again {
                    // The join cannot finish: close under the generation held.
                    return Err(JoinStop::Close(done));
                }
                self.close_after_join = Some((done, until));
            }
            let outcome = match raced {
                Ok(out) => out,
                Err(None) => {
                    return Err(JoinStop::Fatal(Error::State {
                        reason: "the group consumer was dropped".into(),
                    }));
                }
                Err(Some(Command::Close(done))) => return Err(JoinStop::Close(done)),
                Err(Some(Command::Subscribe(t))) => {
                    self.topics = t;
                    continue;
                }
                Err(Some(Command::Rejoin { .. })) => continue,
            };
            rediscover = false;
            let error = match outcome {
                Ok(Ok(assignment)) => return Ok(assignment),
                Ok(Err(Verdict::Fatal(e))) => return Err(JoinStop::Fatal(e)),
                Ok(Err(Verdict::Rejoin(e))) => e,
                Ok(Err(Verdict::Reset {
                    error,
                    forget_member_id,
                })) => {
                    self.forget(forget_member_id);
                    self.lose(&error.to_string()).await;
                    continue;
                }
                Ok(Err(Verdict::Rediscover(e))) => {
                    rediscover = true;
                    e
                }
                Ok(Err(Verdict::Retry(e))) => e,
                Err(e) if e.is_retriable() => {
                    rediscover = true;
                    e
                }
                Err(e) => return Err(JoinStop::Fatal(e)),
            };
            tracing::debug!(group = %self.id.group, error = %error, "joining again");
            // Without a deadline the pause always ends in another attempt.
            let _ = retry.pause(error).await;
        }
    }

    /// One JoinGroup (twice when the coordinator asks for a member id
    /// first) and one SyncGroup.
    async fn join_once(
        &mut self,
        rediscover: bool,
    ) -> Result<std::result::Result<Assignment, Verdict>> {
        let broker = if rediscover {
            self.client.refresh_coordinator(&self.id.group).await?
        } else {
            self.client.coordinator(&self.id.group).await?
        };
        let conn = self.client.connection(&broker, self.join_class).await?;
        let settings = self.join_settings()?;
        let mut joined = classic::join(&conn, &self.id, &settings).await?;
        if let Joined::MemberIdRequired(member_id) = joined {
            self.id.member_id = member_id;
            joined = classic::join(&conn, &self.id, &settings).await?;
        }
        let (generation, protocol, assignments) = match joined {
            Joined::MemberIdRequired(_) => {
                return Err(Error::ProtocolViolation {
                    broker: conn.broker().to_string(),
                    reason: "JoinGroup asked twice for a member id".into(),
                });
            }
            Joined::Failed(v) => return Ok(Err(v)),
            Joined::Member {
                generation,
                member_id,
                protocol,
                leader,
                members,
                skip_assignment,
            } => {
                self.id.member_id = member_id;
                self.id.generation = generation;
                let assignments = if leader == self.id.member_id && !skip_assignment {
                    self.assign(protocol.as_deref(), &members).await?
                } else {
                    self.leader_topics.clear();
                    Vec::new()
                };
                (generation, protocol, assignments)
            }
        };
        let bytes = match classic::sync(
            &conn,
            &self.id,
            protocol.as_deref(),
            assignments,
            self.settings.rebalance_timeout,
        )
        .await?
        {
            Ok(b) => b,
            Err(v) => return Ok(Err(v)),
        };
        let assignment = Assignment::decode(bytes).map_err(Error::from)?;
        tracing::info!(
            group = %self.id.group,
            member = %self.id.member_id,
            generation,
            partitions = ?assignment.partitions,
            "joined the group"
        );
        Ok(Ok(assignment))
    }

    /// The leader's work: every member's assignment, encoded.
    async fn assign(
        &mut self,
        protocol: Option<&str>,
        members: &[crate::protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<(String, Bytes)>> {
        let name = protocol.unwrap_or_default();
        let assignor = self
            .settings
            .assignors
            .iter()
            .find(|a| a.name() == name)
            .cloned()
            .ok_or_else(|| Error::ProtocolViolation {
                broker: format!("the coordinator of group '{}'", self.id.group),
                reason: format!("it chose assignor {name:?}, which this member did not offer"),
            })?;
        let mut decoded = Vec::with_capacity(members.len());
        for m in members {
            match GroupMember::from_join_member(m) {
                Ok(g) => decoded.push(g),
                Err(e) => {
                    // Its partitions go to the others rather than to no one.
                    tracing::warn!(group = %self.id.group, member = %m.member_id, error = %e,
                        "a member's subscription cannot be read; it gets no partitions");
                    decoded.push(GroupMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        subscription: Subscription::default(),
                    });
                }
            }
        }
        let mut topics: Vec<String> = decoded
            .iter()
            .flat_map(|m| m.subscription.topics.iter().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        if let Err(e) = self.client.refresh_metadata(Some(&topics)).await {
            tracing::debug!(group = %self.id.group, error = %e, "metadata for the assignment could not be refreshed; using the cache");
        }
        let layout = ClusterLayout::from_metadata(&self.client.metadata());
        let plan = assignor.assign(&decoded, &layout)?;
        self.leader_topics = topics;
        let mut out = Vec::with_capacity(plan.members.len());
        for (member, a) in &plan.members {
            out.push((member.clone(), a.encode(3)?));
        }
        Ok(out)
    }

    /// Takes a new assignment: revokes what it no longer holds
    /// (cooperative), then reports what is new.
    async fn apply(&mut self, assignment: Assignment) {
        let assigned = normalize(assignment.partitions);
        let generation = self.id.generation;
        self.offsets.set_generation(Generation {
            id: generation,
            member_id: self.id.member_id.clone(),
            instance_id: self.id.instance_id.clone(),
        });
        let revoked = minus(&self.owned, &assigned);
        let added = minus(&assigned, &self.owned);
        if !revoked.is_empty() {
            // Cooperative: only what moves stops; its new owner gets it in
            // the follow-up rebalance this member asks for.
            self.revoke(revoked.clone()).await;
            self.rejoin_reason = Some("partitions were revoked in a cooperative rebalance".into());
        }
        self.owned = assigned;
        self.owned_generation = Some(generation);
        self.watched = self.partition_counts();
        let _ = self
            .events
            .send(MemberEvent::Assigned {
                added,
                generation: self.offsets.generation(),
            })
            .await;
        if !revoked.is_empty() {
            self.follow_up = true;
        }
    }

    /// Heartbeats until something ends the generation for this member.
    async fn stable(&mut self) -> Interrupt {
        if std::mem::take(&mut self.follow_up) {
            return Interrupt::Rebalance("the follow-up of a cooperative rebalance".into());
        }
        let mut beat = tokio::time::interval_at(
            Instant::now() + self.settings.heartbeat_interval,
            self.settings.heartbeat_interval,
        );
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut last_ok = Instant::now();
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    // The consumer was dropped without closing: leave.
                    None => return Interrupt::Close(oneshot::channel().0),
                    Some(Command::Close(done)) => return Interrupt::Close(done),
                    Some(Command::Subscribe(topics)) => {
                        if topics != self.topics {
                            self.topics = topics;
                            return Interrupt::Rebalance("the subscription changed".into());
                        }
                    }
                    Some(Command::Rejoin { reason, lost: false }) => return Interrupt::Rebalance(reason),
                    Some(Command::Rejoin { reason, lost: true }) => {
                        self.forget(false);
                        return Interrupt::Lost(reason);
                    }
                },
                _ = beat.tick() => {
                    match self.heartbeat_once().await {
                        Ok(None) => last_ok = Instant::now(),
                        Ok(Some(Verdict::Rejoin(_))) => {
                            return Interrupt::Rebalance("the coordinator started a rebalance".into());
                        }
                        Ok(Some(Verdict::Reset { error, forget_member_id })) => {
                            self.forget(forget_member_id);
                            return Interrupt::Lost(error.to_string());
                        }
                        Ok(Some(Verdict::Fatal(e))) => return Interrupt::Fatal(e),
                        Ok(Some(Verdict::Rediscover(e))) => {
                            tracing::debug!(group = %self.id.group, error = %e, "heartbeat: looking the coordinator up again");
                            let _ = self.client.refresh_coordinator(&self.id.group).await;
                        }
                        Ok(Some(Verdict::Retry(e))) => {
                            tracing::debug!(group = %self.id.group, error = %e, "heartbeat failed; retrying");
                        }
                        Err(e) if e.is_retriable() => {
                            tracing::debug!(group = %self.id.group, error = %e, "heartbeat failed; looking the coordinator up again");
                            let _ = self.client.refresh_coordinator(&self.id.group).await;
                        }
                        Err(e) => return Interrupt::Fatal(e),
                    }
                    if last_ok.elapsed() > self.settings.session_timeout {
                        // The coordinator has removed this member by now.
                        self.forget(false);
                        return Interrupt::Lost(format!(
                            "no heartbeat was answered within session.timeout.ms ({:?})",
                            self.settings.session_timeout
                        ));
                    }
                }
                _ = check.tick() => {
                    if self.poll.overdue(self.settings.max_poll_interval) {
                        return Interrupt::PollTimeout;
                    }
                    if self.partition_counts() != self.watched {
                        return Interrupt::Rebalance("the partitions of a subscribed topic changed".into());
                    }
                }
            }
        }
    }

    fn partition_counts(&self) -> BTreeMap<String, usize> {
        let meta = self.client.metadata();
        let mut topics: Vec<&String> = self
            .topics
            .iter()
            .chain(self.leader_topics.iter())
            .collect();
        topics.sort();
        topics.dedup();
        topics
            .into_iter()
            .map(|t| {
                (
                    t.clone(),
                    meta.topics.get(t).map_or(0, |i| i.partitions.len()),
                )
            })
            .collect()
    }
}

/// Partitions in order, without duplicates or empty topics.
fn normalize(mut tps: TopicPartitions) -> TopicPartitions {
    for ps in tps.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    tps.retain(|_, ps| !ps.is_empty());
    tps
}

/// The partitions of `a` that are not in `b`.
pub(crate) fn minus(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (t, ps) in a {
        let other = b.get(t);
        let left: Vec<i32> = ps
            .iter()
            .copied()
            .filter(|p| !other.is_some_and(|o| o.contains(p)))
            .collect();
        if !left.is_empty() {
            out.insert(t.clone(), left);
        }
    }
    out
}
