//! Share groups (KIP-932): queue-like consumption where many members read
//! the same partitions and each record is acknowledged one by one.
//!
//! A [`ShareConsumer`] joins a share group with ShareGroupHeartbeat and
//! fetches with ShareFetch in a share session per leader. The broker
//! *acquires* records for the member for a while (the group's
//! `share.record.lock.duration.ms`, 30 s by default); each comes with its
//! delivery count. The application then accepts, releases (to be
//! delivered again, to anyone) or rejects (never again) each record.
//! Acknowledgements ride on the next fetch to the same broker;
//! [`ShareConsumer::commit`] sends them at once (ShareAcknowledge), and
//! [`ShareConsumer::close`] sends what is left while closing the sessions.
//! A record whose lock expires before it is acknowledged is delivered
//! again, as are the records of a member that goes away.
//!
//! In [`AckMode::Implicit`] (the default, as in Java) the next poll,
//! commit or close accepts every record of the previous poll; in
//! [`AckMode::Explicit`] the application acknowledges each record itself
//! and a poll with records left unacknowledged is refused. A record that
//! takes long to process can be renewed ([`AcknowledgeType::Renew`]):
//! each commit then starts its lock over, until it is acknowledged.
//!
//! ```no_run
//! use klamm::Client;
//! use klamm::share::{AcknowledgeType, AckMode, ShareConsumer, ShareOptions};
//! use std::time::Duration;
//!
//! # async fn run(client: Client) -> klamm::Result<()> {
//! let options =
//!     ShareOptions { ack_mode: AckMode::Explicit, ..ShareOptions::from_config(client.config()) };
//! let consumer = ShareConsumer::new(client, "workers", &["jobs"], options).await?;
//! loop {
//!     for job in consumer.poll(Duration::from_secs(1)).await? {
//!         let done = job.record.value.as_deref().is_some_and(|v| !v.is_empty());
//!         let how = if done { AcknowledgeType::Accept } else { AcknowledgeType::Release };
//!         consumer.acknowledge(&job, how)?;
//!     }
//! #   break;
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The broker side: Apache Kafka 4.2 or later (share groups are on by
//! default in clusters formatted by 4.2+; `share.version` feature). A new
//! group starts at the *latest* offset unless its `share.auto.offset.reset`
//! config is `earliest`, set before the first member joins.

mod acks;
mod commit;
mod fetch;
mod member;
mod session;

use crate::determinism::HashMap;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use acks::AcknowledgeType;

use crate::client::{Client, TrafficClass};
use crate::consumer::ConsumerRecord;
use crate::error::{Error, Result};
use crate::protocol::primitives::Uuid;
use crate::protocol::records::DecodeOptions;
use acks::PartitionAcks;
use member::{Member, Membership};
use session::{Session, Tp};

/// How records are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// The next poll, commit or close accepts every record of the previous
    /// poll; [`ShareConsumer::acknowledge`] is refused (Java's
    /// `share.acknowledgement.mode=implicit`).
    #[default]
    Implicit,
    /// The application acknowledges every record; a poll while a record of
    /// the previous one is unacknowledged is refused.
    Explicit,
}

/// How a broker acquires records for a fetch (`share.acquire.mode`,
/// ShareFetch v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcquireMode {
    /// Whole batches, so a fetch may acquire more than `max_records`
    /// (Java's default, `batch_optimized`).
    #[default]
    BatchOptimized,
    /// Never more than `max_records` per fetch, splitting batches between
    /// members if need be (`record_limit`).
    RecordLimit,
}

impl AcquireMode {
    const fn code(self) -> i8 {
        match self {
            AcquireMode::BatchOptimized => 0,
            AcquireMode::RecordLimit => 1,
        }
    }
}

/// Settings of a [`ShareConsumer`]; the defaults are the Java client's.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// How records are acknowledged.
    pub ack_mode: AckMode,
    /// `max.poll.records`: the most records one fetch asks a broker for.
    /// Default 500.
    pub max_records: i32,
    /// `share.acquire.mode`: whether `max_records` is a hint (whole
    /// batches) or a limit. Default [`AcquireMode::BatchOptimized`].
    pub acquire_mode: AcquireMode,
    /// `fetch.max.wait.ms`: how long a broker may hold a fetch without
    /// records. Default 500 ms.
    pub max_wait: Duration,
    /// `fetch.min.bytes`. Default 1.
    pub min_bytes: i32,
    /// `fetch.max.bytes`. Default 52,428,800.
    pub max_bytes: i32,
    /// `client.rack`, sent when joining. Default none.
    pub rack: Option<String>,
    /// `retry.backoff.ms`: the pause after a failed heartbeat. Default
    /// 100 ms.
    pub retry_backoff: Duration,
    /// How batches are decoded (CRC checks, the decompression cap, by
    /// default `fetch.max.bytes`'s 50 MiB, a buffer
    /// of its own for each uncompressed batch, which is on by default).
    pub decode: DecodeOptions,
}

impl ShareOptions {
    /// The options the consumer settings of `config` give: `max.poll.records`,
    /// `fetch.max.wait.ms`, `fetch.min.bytes`, `fetch.max.bytes`,
    /// `client.rack`, `retry.backoff.ms`, `check.crcs` and the
    /// decompression cap (`fetch.max.decompressed.bytes`); the rest as
    /// [`ShareOptions::default`], which equals this for the default
    /// [`Config`](crate::Config).
    ///
    /// ```
    /// use klamm::Config;
    /// use klamm::share::{AckMode, ShareOptions};
    ///
    /// let config = Config::from_properties([("max.poll.records", "50")])?;
    /// let options = ShareOptions {
    ///     ack_mode: AckMode::Explicit,
    ///     ..ShareOptions::from_config(&config)
    /// };
    /// assert_eq!(options.max_records, 50);
    /// # Ok::<(), klamm::Error>(())
    /// ```
    pub fn from_config(config: &crate::Config) -> ShareOptions {
        let c = &config.consumer;
        let defaults = ShareOptions::default();
        ShareOptions {
            max_records: i32::try_from(c.max_poll_records).unwrap_or(i32::MAX),
            max_wait: c.fetch_max_wait,
            min_bytes: i32::try_from(c.fetch_min_bytes).unwrap_or(i32::MAX),
            max_bytes: i32::try_from(c.fetch_max_bytes).unwrap_or(i32::MAX),
            rack: c.client_rack.clone(),
            retry_backoff: config.metadata.retry_backoff,
            decode: defaults
                .decode
                .with_verify_crc(c.check_crcs)
                .with_max_decompressed_size(c.decompression_cap()),
            ..defaults
        }
    }
}

impl Default for ShareOptions {
    fn default() -> Self {
        ShareOptions {
            ack_mode: AckMode::Implicit,
            max_records: 500,
            acquire_mode: AcquireMode::BatchOptimized,
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 52_428_800,
            rack: None,
            retry_backoff: Duration::from_millis(100),
            decode: DecodeOptions::default()
                .with_max_decompressed_size(
                    crate::config::ConsumerConfig::default().decompression_cap(),
                )
                .with_copy_uncompressed_batches(true),
        }
    }
}

/// A record delivered by a share group: the record, how many times it
/// has been delivered (1 the first time), and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// The record.
    pub record: ConsumerRecord,
    /// How many times the group has delivered this record, this time
    /// included.
    pub delivery_count: i16,
    topic_id: Uuid,
    leader: i32,
}

/// An acknowledgement the broker refused (for instance
/// INVALID_RECORD_STATE: the record's lock had expired and it went to
/// another member).
#[derive(Debug)]
pub struct AckFailure {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The broker's answer.
    pub error: Error,
}

/// A key of a record awaiting its acknowledgement: (leader, partition,
/// offset).
type Pending = (i32, Tp, i64);

#[derive(Debug, Default)]
struct Acks {
    /// Records of the last poll: their acknowledgement, once given.
    outstanding: BTreeMap<Pending, Option<i8>>,
    /// Acknowledgements to send, by the leader whose session acquired the
    /// records.
    ready: BTreeMap<(i32, Tp), PartitionAcks>,
    /// Refused acknowledgements not yet reported.
    failures: Vec<AckFailure>,
}

/// A share-group member. See the [module documentation](self).
pub struct ShareConsumer {
    client: Client,
    member: Arc<Member>,
    heartbeat: JoinHandle<()>,
    options: ShareOptions,
    class: TrafficClass,
    /// Sessions by leader id; one fetch round (or commit, or close) at a
    /// time.
    sessions: tokio::sync::Mutex<HashMap<i32, Session>>,
    acks: Mutex<Acks>,
    closed: std::sync::atomic::AtomicBool,
}

impl ShareConsumer {
    /// Joins share group `group` subscribed to `topics` and starts its
    /// heartbeat. Records come from [`ShareConsumer::poll`].
    pub async fn new(
        client: Client,
        group: impl Into<String>,
        topics: &[&str],
        options: ShareOptions,
    ) -> Result<ShareConsumer> {
        let group = group.into();
        if group.is_empty() {
            return Err(Error::config("group.id", "a share group needs a name"));
        }
        if topics.is_empty() {
            return Err(Error::config(
                "topics",
                "a share consumer subscribes to at least one topic",
            ));
        }
        if options.max_records <= 0 {
            return Err(Error::config("max.poll.records", "must be at least 1"));
        }
        let member_id = crate::group::new_member_id();
        if member_id.is_empty() {
            return Err(Error::config(
                "member id",
                "no randomness available to name the share member",
            ));
        }
        let (state, _) = watch::channel(Membership::default());
        let member = Arc::new(Member {
            client: client.clone(),
            group,
            member_id,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            rack: options.rack.clone(),
            backoff: options.retry_backoff,
            state,
            wake: Notify::new(),
            closing: Default::default(),
            names: Default::default(),
        });
        let heartbeat = tokio::spawn(member.clone().run());
        Ok(ShareConsumer {
            class: client.dedicated_class(),
            client,
            member,
            heartbeat,
            options,
            sessions: Default::default(),
            acks: Default::default(),
            closed: Default::default(),
        })
    }

    /// This member's id (chosen by the client, kept for its life).
    pub fn member_id(&self) -> &str {
        &self.member.member_id
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.member.group
    }

    /// The partitions assigned to this member now, by topic name (topics
    /// whose names metadata does not know yet are left out).
    pub fn assignment(&self) -> Vec<(String, i32)> {
        let tps = self.member.state.borrow().assignment.clone();
        tps.into_iter()
            .filter_map(|(id, p)| self.member.name_of(&id).map(|n| (n, p)))
            .collect()
    }

    /// Acknowledges `record`, delivered by the last poll. Refused in
    /// [`AckMode::Implicit`], for a record not from the last poll, and
    /// after close. A later acknowledgement of the same record before it
    /// is sent replaces the earlier one.
    ///
    /// [`AcknowledgeType::Renew`] keeps the record: the next
    /// [`commit`](Self::commit) starts its lock over, and it still needs
    /// its final acknowledgement before the next poll.
    pub fn acknowledge(&self, record: &ShareRecord, how: AcknowledgeType) -> Result<()> {
        self.check_open()?;
        if self.options.ack_mode == AckMode::Implicit {
            return Err(Error::State {
                reason: "records are acknowledged implicitly (AckMode::Implicit); use \
                         AckMode::Explicit to acknowledge them one by one"
                    .into(),
            });
        }
        let key = (
            record.leader,
            (record.topic_id, record.record.partition),
            record.record.offset,
        );
        let mut acks = lock(&self.acks);
        match acks.outstanding.get_mut(&key) {
            Some(slot) => {
                *slot = Some(how.code());
                Ok(())
            }
            None => Err(Error::State {
                reason: format!(
                    "{}/{} offset {} is not a record of the last poll (or its acknowledgement \
                     was already sent)",
                    record.record.topic, record.record.partition, record.record.offset
                ),
            }),
        }
    }

    /// Acknowledgements the brokers refused since the last call (those
    /// sent with fetches; [`ShareConsumer::commit`] returns its own).
    pub fn take_ack_failures(&self) -> Vec<AckFailure> {
        std::mem::take(&mut lock(&self.acks).failures)
    }

    /// Waits up to `timeout` for records. Acknowledgements of the previous
    /// poll go with the fetches (in implicit mode, every record of the
    /// previous poll is accepted first). Returns the records acquired for
    /// this member, possibly none.
    ///
    /// Fails when the membership ended (the error says why), when a
    /// record of the last poll is unacknowledged in explicit mode, after
    /// close, and on errors that retrying cannot mend. If the returned
    /// future is dropped mid-fetch, nothing is lost: the records of an
    /// interrupted fetch are delivered again once their locks expire.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ShareRecord>> {
        self.check_open()?;
        self.settle_outstanding(Settle::Poll)?;
        let deadline = Instant::now() + timeout;
        let mut membership = self.member.state.subscribe();
        let mut sessions = self.sessions.lock().await;
        // A round interrupted by a dropped poll left its sessions at an
        // unknown epoch: they are opened again.
        let mut interrupted = Interrupted::arm(&mut sessions);
        loop {
            let current = membership.borrow_and_update().clone();
            if let Some(e) = &current.fatal {
                interrupted.disarm();
                return Err(Error::State {
                    reason: format!("the share-group membership ended: {e}"),
                });
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            let round = self
                .round(interrupted.sessions(), &current.assignment, wait)
                .await;
            let round = match round {
                Ok(r) => r,
                Err(e) => {
                    interrupted.disarm();
                    return Err(e);
                }
            };
            if !round.is_empty() || Instant::now() >= deadline {
                interrupted.disarm();
                return Ok(round);
            }
            if current.assignment.is_empty() {
                // Nothing assigned yet: wait for the coordinator.
                tokio::select! {
                    _ = membership.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
        }
    }

    /// Sends every acknowledgement given so far now (ShareAcknowledge to
    /// each leader; renewals too) and returns those the brokers refused.
    /// In implicit mode the records of the last poll are accepted first;
    /// in explicit mode records not acknowledged yet, and renewed ones,
    /// stay with the application, awaiting their acknowledgement.
    pub async fn commit(&self) -> Result<Vec<AckFailure>> {
        self.check_open()?;
        self.settle_outstanding(Settle::Commit)?;
        let mut sessions = self.sessions.lock().await;
        self.acknowledge_all(&mut sessions, false).await
    }

    /// Sends what is left to acknowledge while closing every share
    /// session, then leaves the group. Records of the last poll are
    /// accepted in implicit mode; in explicit mode the unacknowledged ones
    /// (renewed ones too) are released, to be delivered again.
    pub async fn close(self) -> Result<Vec<AckFailure>> {
        self.check_open()?;
        self.settle_outstanding(Settle::Close)?;
        let failures = {
            let mut sessions = self.sessions.lock().await;
            self.acknowledge_all(&mut sessions, true).await
        };
        self.closed.store(true, Ordering::Release);
        self.member.closing.store(true, Ordering::Release);
        self.member.wake.notify_one();
        self.heartbeat.abort();
        self.member.leave().await;
        self.client.close_class(self.class).await;
        failures
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::State {
                reason: "the share consumer is closed".into(),
            });
        }
        Ok(())
    }

    /// Moves the last poll's records to the acknowledgements to send:
    /// implicitly accepted, or as the application acknowledged them. A
    /// poll refuses (explicit mode) while a record awaits its
    /// acknowledgement; a commit sends what was given, renewals included,
    /// and keeps the rest (a renewed record awaits its acknowledgement
    /// again); close releases what was not acknowledged.
    fn settle_outstanding(&self, how: Settle) -> Result<()> {
        let mut acks = lock(&self.acks);
        let explicit = self.options.ack_mode == AckMode::Explicit;
        let renew = AcknowledgeType::Renew.code();
        if explicit
            && how == Settle::Poll
            && let Some(((_, (_, p), o), code)) = acks
                .outstanding
                .iter()
                .find(|(_, a)| a.is_none_or(|c| c == renew))
        {
            let state = if code.is_some() {
                "is renewed but not acknowledged"
            } else {
                "is not"
            };
            return Err(Error::State {
                reason: format!(
                    "every record of the last poll must be acknowledged first \
                     (AckMode::Explicit); partition {p} offset {o} {state}"
                ),
            });
        }
        let outstanding = std::mem::take(&mut acks.outstanding);
        for (key, code) in outstanding {
            let code = match (code, how) {
                (None, _) if !explicit => AcknowledgeType::Accept.code(),
                (None, Settle::Close) => AcknowledgeType::Release.code(),
                (Some(c), Settle::Close) if c == renew => AcknowledgeType::Release.code(),
                (None, _) => {
                    acks.outstanding.insert(key, None);
                    continue;
                }
                (Some(c), _) => {
                    if c == renew {
                        acks.outstanding.insert(key, None);
                    }
                    c
                }
            };
            let (leader, tp, offset) = key;
            acks.ready
                .entry((leader, tp))
                .or_default()
                .add(offset, code);
        }
        Ok(())
    }

    /// The acknowledgements ready to send, taken, by leader.
    fn take_ready(&self) -> BTreeMap<i32, BTreeMap<Tp, PartitionAcks>> {
        let ready = std::mem::take(&mut lock(&self.acks).ready);
        let mut by_leader: BTreeMap<i32, BTreeMap<Tp, PartitionAcks>> = BTreeMap::new();
        for ((leader, tp), a) in ready {
            by_leader.entry(leader).or_default().insert(tp, a);
        }
        by_leader
    }
}

/// Which call settles the last poll's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Poll,
    Commit,
    Close,
}

impl Drop for ShareConsumer {
    fn drop(&mut self) {
        // Without close: the heartbeat stops and the connections go, so
        // the broker releases what this member held.
        self.heartbeat.abort();
        if !self.closed.load(Ordering::Acquire) {
            let client = self.client.clone();
            let class = self.class;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { client.close_class(class).await });
            }
        }
    }
}

impl std::fmt::Debug for ShareConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConsumer")
            .field("group", &self.member.group)
            .field("member_id", &self.member.member_id)
            .finish_non_exhaustive()
    }
}

/// Marks the sessions of a fetch round: if the round's future is dropped
/// before [`Interrupted::disarm`], every session opens again next time.
struct Interrupted<'a> {
    sessions: Option<&'a mut HashMap<i32, Session>>,
}

impl<'a> Interrupted<'a> {
    fn arm(sessions: &'a mut HashMap<i32, Session>) -> Self {
        Interrupted {
            sessions: Some(sessions),
        }
    }

    fn sessions(&mut self) -> &mut HashMap<i32, Session> {
        self.sessions.as_deref_mut().expect("armed until disarmed")
    }

    fn disarm(mut self) {
        self.sessions = None;
    }
}

impl Drop for Interrupted<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.sessions.take() {
            for session in s.values_mut() {
                session.reset();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn options_from_the_default_config_are_the_defaults() {
        assert_eq!(
            format!("{:?}", ShareOptions::from_config(&Config::default())),
            format!("{:?}", ShareOptions::default())
        );
    }

    #[test]
    fn options_follow_the_consumer_settings() {
        let config = Config::from_properties([
            ("max.poll.records", "7"),
            ("fetch.max.wait.ms", "250"),
            ("fetch.min.bytes", "10"),
            ("fetch.max.bytes", "1000000"),
            ("client.rack", "r1"),
            ("retry.backoff.ms", "30"),
            ("check.crcs", "false"),
        ])
        .unwrap();
        let o = ShareOptions::from_config(&config);
        assert_eq!(o.max_records, 7);
        assert_eq!(o.max_wait, Duration::from_millis(250));
        assert_eq!(o.min_bytes, 10);
        assert_eq!(o.max_bytes, 1_000_000);
        assert_eq!(o.rack.as_deref(), Some("r1"));
        assert_eq!(o.retry_backoff, Duration::from_millis(30));
        assert!(!o.decode.verify_crc);
        assert!(o.decode.copy_uncompressed_batches, "kept from the defaults");
        assert_eq!(o.ack_mode, AckMode::Implicit);
    }
}
