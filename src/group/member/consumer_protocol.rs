//! A member of a `consumer`-protocol group (KIP-848, `group.protocol =
//! consumer`): one ConsumerGroupHeartbeat at a time to the group
//! coordinator, which assigns the partitions itself and answers with the
//! member's epoch and, when it changed, its assignment by topic id.
//!
//! The engine speaks to the consumer in front through the same channels
//! as the classic one ([`MemberEvent`] out, [`Command`] in). It reconciles
//! one step at a time against the newest assignment (see [`reconcile`]):
//! partitions that go away are revoked first, and the member waits
//! (heartbeating, reporting the old owned set) until the consumer has let
//! go of them, at most the rebalance timeout; new ones are assigned after;
//! the next heartbeat, sent at once, acknowledges by reporting what the
//! member owns now.
//!
//! The member id is made here (a random UUID, as KIP-1082 asks of
//! clients) and kept across rejoins; the epoch comes from the coordinator
//! and is what commits carry.

mod fields;
mod reconcile;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use fields::{Member, SentFields};
use reconcile::{Reconciler, Step, Target, by_name};
use wire::ClientCoordinator;
pub(super) use wire::Coordinator;

use super::{Command, MemberEvent, MemberSettings, PollClock};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::group::TopicPartitions;
use crate::group::offsets::{Generation, OffsetManager};
use crate::net::Backoff;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};

/// How often the engine checks the poll clock and unnamed topic ids.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// How often metadata is asked again for topic ids it did not name.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// How many UNRELEASED_INSTANCE_ID answers in a row are retried (the
/// previous holder of the instance id may still be leaving) before the
/// member gives up.
const UNRELEASED_RETRIES: u32 = 3;

/// How many times a leave heartbeat is sent when it fails retriably (a
/// leave is idempotent).
const LEAVE_ATTEMPTS: u32 = 3;

/// The longest pause between failed heartbeats.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the engine needs to know.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) group: String,
    pub(super) instance_id: Option<String>,
    pub(super) rack: Option<String>,
    /// Sent to the coordinator; also bounds the wait for a revocation.
    pub(super) rebalance_timeout: Duration,
    pub(super) max_poll_interval: Duration,
    /// Until the coordinator names its own.
    pub(super) heartbeat_interval: Duration,
    pub(super) retry_backoff: Duration,
    /// `group.remote.assignor`.
    pub(super) server_assignor: Option<String>,
}

/// Where the member's generation (epoch and member id) goes: the offset
/// manager, so commits carry it.
pub(super) type Publish = Box<dyn Fn(Generation) + Send + Sync>;

/// Starts the engine for a consumer built on `client`.
pub(super) fn spawn(
    client: Client,
    settings: &MemberSettings,
    topics: Vec<String>,
    offsets: OffsetManager,
    events: mpsc::Sender<MemberEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    poll: Arc<PollClock>,
) -> JoinHandle<()> {
    let s = Settings {
        group: settings.group.clone(),
        instance_id: settings.instance_id.clone(),
        rack: settings.rack.clone(),
        rebalance_timeout: settings.rebalance_timeout,
        max_poll_interval: settings.max_poll_interval,
        heartbeat_interval: settings.heartbeat_interval,
        retry_backoff: settings.retry_backoff,
        server_assignor: client.config().consumer.group_remote_assignor.clone(),
    };
    let coordinator = ClientCoordinator::new(client, s.group.clone(), s.retry_backoff);
    let publish: Publish = Box::new(move |g| offsets.set_generation(g));
    let engine = Engine::new(
        coordinator,
        s,
        topics,
        new_member_id(),
        events,
        commands,
        poll,
        publish,
    );
    tokio::spawn(engine.run())
}

/// A new member id: a random (version 4) UUID in Kafka's text form
/// (URL-safe base64, no padding). Without randomness the id is left empty,
/// and the coordinator (ConsumerGroupHeartbeat v0) makes one.
pub(crate) fn new_member_id() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// How one heartbeat went.
#[derive(Debug)]
enum Beat {
    /// Answered; the member is in good standing.
    Ok,
    /// Failed in a way a later heartbeat may mend (already scheduled).
    Retry,
    /// The membership is gone: the partitions are lost; join again.
    Fenced(String),
    /// Stop for good.
    Fatal(Error),
}

/// How a reconciliation (or a wait inside one) ended.
#[derive(Debug)]
enum Flow {
    Continue,
    Fenced(String),
    Fatal(Error),
}

/// A close asked for: `None` when the consumer was dropped.
type Closing = Option<oneshot::Sender<()>>;

pub(super) struct Engine<C> {
    coordinator: C,
    settings: Settings,
    member_id: String,
    /// 0 until the coordinator gives one (and after the membership ends).
    epoch: i32,
    topics: Vec<String>,
    rec: Reconciler,
    sent: SentFields,
    interval: Duration,
    next_beat: Instant,
    backoff: Backoff,
    unreleased: u32,
    next_resolve: Instant,
    closing: Option<Closing>,
    events: mpsc::Sender<MemberEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    poll: Arc<PollClock>,
    publish: Publish,
}

impl<C: Coordinator> Engine<C> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        coordinator: C,
        settings: Settings,
        topics: Vec<String>,
        member_id: String,
        events: mpsc::Sender<MemberEvent>,
        commands: mpsc::UnboundedReceiver<Command>,
        poll: Arc<PollClock>,
        publish: Publish,
    ) -> Self {
        let now = Instant::now();
        Engine {
            coordinator,
            interval: settings.heartbeat_interval,
            backoff: Backoff::new(
                settings.retry_backoff,
                BACKOFF_MAX.max(settings.retry_backoff),
            ),
            settings,
            member_id,
            epoch: 0,
            topics,
            rec: Reconciler::new(),
            sent: SentFields::default(),
            next_beat: now,
            unreleased: 0,
            next_resolve: now,
            closing: None,
            events,
            commands,
            poll,
            publish,
        }
    }

    pub(super) async fn run(mut self) {
        if let Err(e) = self.run_inner().await {
            tracing::warn!(group = %self.settings.group, member = %self.member_id, error = %e,
                "group member stopped");
            let lost = by_name(&self.rec.lose_all());
            (self.publish)(Generation::NONE);
            super::report_stop(&self.events, lost, e).await;
        }
    }

    async fn run_inner(&mut self) -> Result<()> {
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(closing) = self.closing.take() {
                self.close(closing).await;
                return Ok(());
            }
            tokio::select! {
                biased;
                cmd = self.commands.recv() => self.command(cmd),
                _ = tokio::time::sleep_until(self.next_beat) => match self.beat().await {
                    Beat::Ok | Beat::Retry => {}
                    Beat::Fenced(reason) => self.lose(&reason).await,
                    Beat::Fatal(e) => return Err(e),
                },
                _ = check.tick() => {
                    if self.poll.overdue(self.settings.max_poll_interval) {
                        if !self.poll_timeout().await {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            match self.reconcile().await {
                Flow::Continue => {}
                Flow::Fenced(reason) => self.lose(&reason).await,
                Flow::Fatal(e) => return Err(e),
            }
        }
    }

    fn command(&mut self, cmd: Option<Command>) {
        match cmd {
            // The consumer was dropped without closing: leave anyway.
            None => {
                self.closing.get_or_insert(None);
            }
            Some(Command::Close(done)) => match &self.closing {
                // Closing already: this one is answered when the engine ends.
                Some(_) => drop(done),
                None => self.closing = Some(Some(done)),
            },
            Some(Command::Subscribe(topics)) => {
                if topics != self.topics {
                    self.topics = topics;
                    self.beat_now();
                }
            }
            // A commit said the epoch is stale or the member unknown. The
            // heartbeat is what finds out and fences if need be; the
            // membership is not given up for a commit.
            Some(Command::Rejoin { reason, .. }) => {
                tracing::debug!(group = %self.settings.group, %reason, "heartbeating at once");
                self.beat_now();
            }
        }
    }

    fn beat_now(&mut self) {
        self.next_beat = Instant::now();
    }

    fn retry_later(&mut self) {
        self.next_beat = Instant::now() + self.backoff.next_delay();
    }

    fn generation(&self, epoch: i32) -> Generation {
        Generation {
            id: epoch,
            member_id: self.member_id.clone(),
            instance_id: self.settings.instance_id.clone(),
        }
    }

    fn request(&mut self) -> ConsumerGroupHeartbeatRequest {
        let owned = self.rec.owned_ids();
        let member = Member {
            group: &self.settings.group,
            member_id: &self.member_id,
            epoch: self.epoch,
            instance_id: self.settings.instance_id.as_deref(),
            rack: self.settings.rack.as_deref(),
            rebalance_timeout_ms: millis(self.settings.rebalance_timeout),
            topics: &self.topics,
            assignor: self.settings.server_assignor.as_deref(),
            owned: &owned,
        };
        self.sent.request(&member)
    }

    /// One heartbeat and what its answer means.
    async fn beat(&mut self) -> Beat {
        let req = self.request();
        // Without this the pause until the answer would count again.
        self.next_beat = Instant::now() + self.interval;
        match self.coordinator.heartbeat(req).await {
            Ok(resp) => self.answer(resp).await,
            Err(e) if e.is_retriable() => {
                tracing::debug!(group = %self.settings.group, error = %e,
                    "heartbeat failed; looking the coordinator up again");
                self.sent.reset();
                self.coordinator.rediscover().await;
                self.retry_later();
                Beat::Retry
            }
            Err(e) => Beat::Fatal(e),
        }
    }

    async fn answer(&mut self, resp: ConsumerGroupHeartbeatResponse) -> Beat {
        let code = ErrorCode(resp.error_code);
        if code.is_ok() {
            self.backoff.reset();
            self.unreleased = 0;
            if resp.heartbeat_interval_ms > 0 {
                self.interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
            }
            self.next_beat = Instant::now() + self.interval;
            if resp.member_epoch < 0 {
                // It would turn the next heartbeat into a leave.
                tracing::warn!(group = %self.settings.group, epoch = resp.member_epoch,
                    "a heartbeat answer without error has a negative epoch; ignored");
                self.sent.reset();
                return Beat::Ok;
            }
            if let Some(id) = resp.member_id.filter(|id| !id.is_empty()) {
                if id != self.member_id {
                    tracing::debug!(group = %self.settings.group, member = %id, "the coordinator named this member");
                    self.member_id = id;
                }
            }
            if resp.member_epoch != self.epoch {
                self.epoch = resp.member_epoch;
                (self.publish)(self.generation(self.epoch));
            }
            if let Some(a) = &resp.assignment {
                self.rec
                    .set_target(Target::from_assignment(resp.member_epoch, a));
            }
            return Beat::Ok;
        }
        self.sent.reset();
        let detail = resp.error_message.unwrap_or_default();
        let error = |why: &str| Error::Broker {
            api: ApiKey::ConsumerGroupHeartbeat,
            code,
            context: Some(format!(
                "group '{}'{}{}",
                self.settings.group,
                if why.is_empty() { "" } else { ": " },
                if why.is_empty() {
                    detail.clone()
                } else if detail.is_empty() {
                    why.to_string()
                } else {
                    format!("{why} (the broker says: {detail})")
                }
            )),
        };
        match code {
            // GROUP_ID_NOT_FOUND (v1+, KIP-1082) for a member already in
            // the group: the coordinator removed the member and then the
            // emptied group, so it must join again as a new member would.
            // To a member still joining (epoch 0) it is fatal, below.
            ErrorCode::GROUP_ID_NOT_FOUND if self.epoch > 0 => Beat::Fenced(
                error("the group no longer exists at the coordinator (it removed this member and the emptied group); its partitions are lost")
                    .to_string(),
            ),
            ErrorCode::FENCED_MEMBER_EPOCH
            | ErrorCode::UNKNOWN_MEMBER_ID
            | ErrorCode::STALE_MEMBER_EPOCH => Beat::Fenced(
                error("the member was fenced or removed from the group; its partitions are lost")
                    .to_string(),
            ),
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                tracing::debug!(group = %self.settings.group, %code, "heartbeat: looking the coordinator up again");
                self.coordinator.rediscover().await;
                self.retry_later();
                Beat::Retry
            }
            ErrorCode::UNRELEASED_INSTANCE_ID => {
                self.unreleased += 1;
                if self.unreleased > UNRELEASED_RETRIES {
                    return Beat::Fatal(error(
                        "group.instance.id is still held by another member; two live consumers must never share one",
                    ));
                }
                tracing::debug!(group = %self.settings.group, tries = self.unreleased,
                    "the instance id is not released yet; retrying");
                self.retry_later();
                Beat::Retry
            }
            ErrorCode::FENCED_INSTANCE_ID => Beat::Fatal(error(
                "another member joined with the same group.instance.id; this one is fenced and stops",
            )),
            ErrorCode::GROUP_AUTHORIZATION_FAILED => Beat::Fatal(error(
                "this principal may not join the group: grant it READ on the group",
            )),
            ErrorCode::UNSUPPORTED_ASSIGNOR => Beat::Fatal(error(
                "the broker has no assignor of that name: set group.remote.assignor to one it offers (uniform or range on Apache Kafka) or leave it unset",
            )),
            ErrorCode::GROUP_MAX_SIZE_REACHED => Beat::Fatal(error(
                "the group is full (group.consumer.max.size on the broker)",
            )),
            ErrorCode::UNSUPPORTED_VERSION => Beat::Fatal(error(
                "the broker refuses this version of ConsumerGroupHeartbeat; use group.protocol=classic with it",
            )),
            ErrorCode::INVALID_REQUEST => {
                Beat::Fatal(error("the coordinator refused the heartbeat as invalid"))
            }
            c if c == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS || c.is_retriable() => {
                tracing::debug!(group = %self.settings.group, %code, "heartbeat failed; retrying");
                self.retry_later();
                Beat::Retry
            }
            _ => Beat::Fatal(error("")),
        }
    }

    /// Reconciles step by step until nothing is left that can be done now.
    async fn reconcile(&mut self) -> Flow {
        loop {
            if self.closing.is_some() {
                // The close gives everything up anyway.
                return Flow::Continue;
            }
            let names = self.coordinator.topic_names();
            match self.rec.next(|id| names.get(id).cloned()) {
                Step::Revoke(p) => match self.revoke(by_name(&p)).await {
                    Flow::Continue => {
                        self.rec.revoked(&p);
                        self.beat_now();
                    }
                    other => return other,
                },
                Step::Assign { added, epoch } => {
                    self.rec.assigned(&added);
                    self.beat_now();
                    let added = by_name(&added);
                    tracing::info!(group = %self.settings.group, member = %self.member_id, epoch,
                        added = ?added, owned = ?by_name(self.rec.owned()), "assignment reconciled");
                    let generation = self.generation(epoch);
                    let _ = self
                        .events
                        .send(MemberEvent::Assigned { added, generation })
                        .await;
                }
                Step::Idle => {
                    if self.rec.unresolved().is_empty() || Instant::now() < self.next_resolve {
                        return Flow::Continue;
                    }
                    self.next_resolve = Instant::now() + RESOLVE_EVERY;
                    tracing::debug!(group = %self.settings.group, ids = ?self.rec.unresolved(),
                        "assigned topic ids not in metadata; refreshing it");
                    self.coordinator.refresh_topics(&self.topics).await;
                }
            }
        }
    }

    /// Sends `Revoked` and waits for the consumer's acknowledgement,
    /// heartbeating, at most the rebalance timeout.
    async fn revoke(&mut self, partitions: TopicPartitions) -> Flow {
        let (ack, mut acked) = oneshot::channel();
        tracing::info!(group = %self.settings.group, member = %self.member_id,
            partitions = ?partitions, "revoking");
        if self
            .events
            .send(MemberEvent::Revoked { partitions, ack })
            .await
            .is_err()
        {
            // No consumer left to wait for.
            return Flow::Continue;
        }
        let deadline = Instant::now() + self.settings.rebalance_timeout;
        loop {
            tokio::select! {
                biased;
                _ = &mut acked => return Flow::Continue,
                _ = tokio::time::sleep_until(deadline) => {
                    return Flow::Fenced(format!(
                        "the application did not finish with revoked partitions within the rebalance timeout ({:?}); the member joins again",
                        self.settings.rebalance_timeout
                    ));
                }
                _ = tokio::time::sleep_until(self.next_beat) => match self.beat().await {
                    Beat::Ok | Beat::Retry => {}
                    Beat::Fenced(reason) => return Flow::Fenced(reason),
                    Beat::Fatal(e) => return Flow::Fatal(e),
                },
                cmd = self.commands.recv() => self.command(cmd),
            }
        }
    }

    /// The membership is over: reports the partitions lost and joins
    /// again at once with the same member id at epoch 0.
    async fn lose(&mut self, reason: &str) {
        tracing::warn!(group = %self.settings.group, member = %self.member_id, %reason, "partitions lost");
        self.forget();
        self.beat_now();
        let lost = by_name(&self.rec.lose_all());
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

    /// Back to epoch 0, outside any generation.
    fn forget(&mut self) {
        self.epoch = 0;
        self.sent.reset();
        self.backoff.reset();
        (self.publish)(Generation::NONE);
    }

    /// Leaves the group (epoch -1, or -2 for a static member) if it is in
    /// one, and forgets the epoch.
    async fn leave(&mut self) {
        if self.epoch <= 0 {
            self.forget();
            return;
        }
        let req = fields::leave_request(
            &self.settings.group,
            &self.member_id,
            self.settings.instance_id.as_deref(),
        );
        let epoch = req.member_epoch;
        for attempt in 1..=LEAVE_ATTEMPTS {
            let outcome = match self.coordinator.heartbeat(req.clone()).await {
                Ok(resp) => {
                    let code = ErrorCode(resp.error_code);
                    if code.is_ok()
                        || code == ErrorCode::UNKNOWN_MEMBER_ID
                        || code == ErrorCode::FENCED_MEMBER_EPOCH
                    {
                        tracing::info!(group = %self.settings.group, member = %self.member_id, epoch,
                            "left the group");
                        break;
                    }
                    Error::Broker {
                        api: ApiKey::ConsumerGroupHeartbeat,
                        code,
                        context: Some(format!("leaving group '{}'", self.settings.group)),
                    }
                }
                Err(e) => e,
            };
            if !outcome.is_retriable() || attempt == LEAVE_ATTEMPTS {
                tracing::debug!(group = %self.settings.group, error = %outcome,
                    "leaving failed; the coordinator will time the member out");
                break;
            }
            self.coordinator.rediscover().await;
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
        self.forget();
    }

    /// Gives everything up, leaves, and says done.
    async fn close(&mut self, done: Closing) {
        let all = self.rec.owned().clone();
        if !all.is_empty() && self.epoch > 0 {
            match self.revoke(by_name(&all)).await {
                Flow::Continue => self.rec.revoked(&all),
                Flow::Fenced(reason) => self.lose(&reason).await,
                Flow::Fatal(e) => {
                    tracing::warn!(group = %self.settings.group, error = %e, "heartbeat failed while closing");
                    self.lose(&e.to_string()).await;
                }
            }
        } else if !all.is_empty() {
            self.lose("the consumer closed outside a generation").await;
        }
        self.leave().await;
        self.rec.lose_all();
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// The application stopped polling: leave, report the partitions
    /// lost, and join again once it polls. `false` when the consumer
    /// closed meanwhile.
    async fn poll_timeout(&mut self) -> bool {
        let reason = format!(
            "the application did not poll for max.poll.interval.ms ({:?}); the member left the group and its partitions are lost",
            self.settings.max_poll_interval
        );
        tracing::warn!(group = %self.settings.group, member = %self.member_id, "{reason}");
        self.leave().await;
        self.lose(&reason).await;
        let since = self.poll.last();
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    None => return false,
                    Some(Command::Close(done)) => {
                        let _ = done.send(());
                        return false;
                    }
                    Some(Command::Subscribe(t)) => self.topics = t,
                    Some(Command::Rejoin { .. }) => {}
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if self.poll.last() > since {
                        break;
                    }
                }
            }
        }
        tracing::info!(group = %self.settings.group, "the application polled again; joining");
        self.beat_now();
        true
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
