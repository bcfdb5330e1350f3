//! The cluster's state, shared by every broker of it under one lock: the
//! brokers, the topics and their logs, producer ids and transactions, the
//! groups, fetch sessions and the faults waiting to be injected.
//!
//! Everything is kept in ordered maps so that the same requests in the same
//! order always give the same answers (the simulation replays runs).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::protocol::primitives::Uuid;
use tokio::time::Instant;

use crate::control::{PartitionRule, Rule};
use crate::groups::Group;
use crate::log::Log;

/// The cluster's clock: wall-clock milliseconds at start plus the runtime's
/// elapsed time, so that under a paused tokio clock timestamps advance with
/// virtual time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    started: Instant,
    started_ms: i64,
}

impl Clock {
    pub(crate) fn new(started_ms: i64) -> Self {
        Clock {
            started: Instant::now(),
            started_ms,
        }
    }

    /// Milliseconds of the runtime's clock since the cluster started.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.started_ms + self.started.elapsed().as_millis() as i64
    }
}

#[derive(Debug)]
pub(crate) struct Broker {
    pub port: u16,
    pub up: bool,
    pub rack: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Partition {
    /// The leader's broker id, -1 when no replica is up.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub log: Log,
}

#[derive(Debug)]
pub(crate) struct Topic {
    pub id: Uuid,
    pub partitions: Vec<Partition>,
    pub configs: BTreeMap<String, String>,
}

/// A transactional id's coordinator state.
#[derive(Debug, Default)]
pub(crate) struct Txn {
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    /// The partitions added to the open transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups added with AddOffsetsToTxn.
    pub groups: BTreeSet<String>,
    /// Offsets committed in the transaction, applied when it commits:
    /// (group, topic, partition) → offset.
    pub offsets: BTreeMap<(String, String, i32), crate::groups::Committed>,
    pub open: bool,
    /// When the open transaction times out (its start plus the timeout of
    /// the producer's InitProducerId); the coordinator then aborts it.
    pub expires: Option<tokio::time::Instant>,
    /// How the last transaction ended (true: committed), so that a retried
    /// EndTxn for it is answered as the first was.
    pub last_end: Option<bool>,
}

impl Txn {
    /// Opens the transaction if it is not open yet, starting its timeout.
    pub(crate) fn open(&mut self) {
        if !self.open {
            self.open = true;
            let timeout = std::time::Duration::from_millis(self.timeout_ms.max(0) as u64);
            self.expires = Some(tokio::time::Instant::now() + timeout);
        }
    }
}

/// A fetch session (KIP-227): the partitions it covers and what was last
/// sent of each, so an incremental answer carries only what changed.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    pub epoch: i32,
    /// (topic, partition) → what the session fetches there.
    pub partitions: BTreeMap<(String, i32), SessionPartition>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionPartition {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    /// (high watermark, last stable offset, log start) last sent.
    pub last_sent: Option<(i64, i64, i64)>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub cluster_id: String,
    pub clock: Clock,
    pub brokers: BTreeMap<i32, Broker>,
    pub topics: BTreeMap<String, Topic>,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    pub default_replication: i16,
    pub next_producer_id: i64,
    /// Producer ids given without a transactional id, and their epochs.
    pub txns: BTreeMap<String, Txn>,
    pub groups: BTreeMap<String, Group>,
    pub sessions: BTreeMap<i32, FetchSession>,
    pub next_session: i32,
    pub next_topic_id: u128,
    pub next_member: u64,
    pub rules: Vec<Rule>,
    /// Errors waiting for single partitions, in the order injected.
    pub partition_rules: Vec<PartitionRule>,
    /// (client id, broker id) pairs that cannot reach each other.
    pub partitioned: BTreeSet<(String, i32)>,
    /// Requests handled, by broker and API.
    pub handled: BTreeMap<(i32, ApiKey), u64>,
    /// Batches that repeated one already written (retries), by topic and
    /// partition.
    pub duplicates: BTreeMap<(String, i32), u64>,
    /// The initial delay of a first rebalance
    /// (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: Duration,
    /// The largest record batch accepted (`message.max.bytes`).
    pub max_message_bytes: usize,
    /// Why connections were closed other than by an injected fault: a
    /// request the fake could not read, did not offer or cannot answer.
    pub problems: Vec<String>,
    /// FNV-1a over (time, broker, API, version) of every request handled.
    pub trace: u64,
    /// Every request handled, kept while `recording` is on.
    pub recording: bool,
    pub history: Vec<crate::SeenRequest>,
    /// Coordinators placed by the test: key → broker.
    pub placed: BTreeMap<String, i32>,
    /// Versions the test narrowed an API to: key → (min, max).
    pub version_caps: BTreeMap<klamm::protocol::messages::ApiKey, (i16, i16)>,
    /// Connections each broker accepted.
    pub connections: BTreeMap<i32, u64>,
    /// Every batch the partition leaders examined, by topic and partition,
    /// kept while `recording` is on.
    pub produced: BTreeMap<(String, i32), Vec<crate::ProducedBatch>>,
    /// How the next Metadata answers describe a topic: (code, times left).
    pub topic_errors: BTreeMap<String, VecDeque<(ErrorCode, u64)>>,
    /// APIs whose answers are held until released.
    pub held: BTreeSet<ApiKey>,
    /// The epoch new producer ids start at (0, as Kafka's do).
    pub first_producer_epoch: i16,
    /// Whether Fetch answers are sliced at their byte limits as Kafka's log
    /// reads slice them (the last batch may be partial).
    pub slice_fetches: bool,
    /// Requests being handled, by broker and API: (now, most at once).
    pub in_flight: BTreeMap<(i32, ApiKey), (u64, u64)>,
}

/// Takes one use of the first entry of `queue`, dropping it when used up.
pub(crate) fn take_one(queue: &mut VecDeque<(ErrorCode, u64)>) -> Option<ErrorCode> {
    let (code, left) = queue.front_mut()?;
    let code = *code;
    *left -= 1;
    if *left == 0 {
        queue.pop_front();
    }
    Some(code)
}

impl State {
    /// Adds a handled request to the trace digest.
    pub(crate) fn traced(&mut self, broker: i32, api: i16, version: i16) {
        let ms = self.clock.elapsed_ms();
        for b in ms
            .to_be_bytes()
            .into_iter()
            .chain(broker.to_be_bytes())
            .chain(api.to_be_bytes())
            .chain(version.to_be_bytes())
        {
            self.trace = (self.trace ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    /// The error injected for `topic`-`partition` in the next request of
    /// `api` at `broker`, if one waits; taking it uses it up once.
    pub(crate) fn take_partition_fault(
        &mut self,
        api: ApiKey,
        broker: i32,
        topic: &str,
        partition: i32,
    ) -> Option<klamm::protocol::error_codes::ErrorCode> {
        let i = self.partition_rules.iter().position(|r| {
            r.api == api
                && r.broker.is_none_or(|b| b == broker)
                && r.topic == topic
                && r.partition == partition
                && r.remaining > 0
        })?;
        let rule = &mut self.partition_rules[i];
        rule.remaining -= 1;
        let code = rule.code;
        if rule.remaining == 0 {
            self.partition_rules.remove(i);
        }
        Some(code)
    }

    /// The live brokers, in id order.
    pub(crate) fn live(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|(_, b)| b.up)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The broker that coordinates `key` (a group or a transactional id),
    /// as Kafka places it: the key falls in one of the 50 partitions of
    /// `__consumer_offsets` (or `__transaction_state`), whose replicas are
    /// up to three brokers from a start fixed by the partition, and its
    /// coordinator is the first live one. So stopping a broker moves only
    /// the coordinators it held.
    pub(crate) fn coordinator(&self, key: &str) -> Option<i32> {
        /// Kafka's `offsets.topic.num.partitions` and
        /// `transaction.state.log.num.partitions` default.
        const COORDINATION_PARTITIONS: u64 = 50;
        if let Some(&b) = self.placed.get(key) {
            return self.brokers.get(&b).is_some_and(|x| x.up).then_some(b);
        }
        let ids: Vec<i32> = self.brokers.keys().copied().collect();
        if ids.is_empty() {
            return None;
        }
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let partition = (h % COORDINATION_PARTITIONS) as usize;
        (0..ids.len().min(3))
            .map(|r| ids[(partition + r) % ids.len()])
            .find(|b| self.brokers.get(b).is_some_and(|x| x.up))
    }

    pub(crate) fn new_topic_id(&mut self) -> Uuid {
        self.next_topic_id += 1;
        // A fixed, recognisable high half; ids are never zero.
        Uuid::from_u128((0x6b6c_616d_6d00_0000_u128 << 64) | self.next_topic_id)
    }

    /// Creates a topic with its replicas spread round the brokers, the
    /// first replica leading, starting at a broker fixed by the topic's
    /// position among the topics.
    pub(crate) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication: i16,
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
    ) -> Uuid {
        let id = self.new_topic_id();
        let ids: Vec<i32> = self.brokers.keys().copied().collect();
        let offset = self.topics.len();
        let mut topic = Topic {
            id,
            partitions: Vec::new(),
            configs,
        };
        for p in 0..partitions.max(0) as usize {
            let replicas = match &assignments {
                Some(a) => a.get(p).cloned().unwrap_or_default(),
                None => (0..replication.max(1) as usize)
                    .map(|r| ids[(offset + p + r) % ids.len()])
                    .collect(),
            };
            topic.partitions.push(self.new_partition(replicas));
        }
        self.topics.insert(name.to_string(), topic);
        id
    }

    pub(crate) fn new_partition(&self, replicas: Vec<i32>) -> Partition {
        let leader = replicas
            .iter()
            .copied()
            .find(|r| self.brokers.get(r).is_some_and(|b| b.up))
            .unwrap_or(-1);
        Partition {
            leader,
            leader_epoch: 0,
            replicas,
            log: Log::default(),
        }
    }

    /// Elects a new leader wherever the leader is down (the first live
    /// replica), or wherever there is none and a replica came back; each
    /// change bumps the leader epoch.
    pub(crate) fn reelect(&mut self) {
        let up: BTreeSet<i32> = self.live().into_iter().collect();
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                if p.leader >= 0 && up.contains(&p.leader) {
                    continue;
                }
                let next = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| up.contains(r))
                    .unwrap_or(-1);
                if next != p.leader {
                    p.leader = next;
                    p.leader_epoch += 1;
                }
            }
        }
    }

    pub(crate) fn partition(&self, topic: &str, p: i32) -> Option<&Partition> {
        self.topics
            .get(topic)
            .and_then(|t| t.partitions.get(usize::try_from(p).ok()?))
    }

    pub(crate) fn partition_mut(&mut self, topic: &str, p: i32) -> Option<&mut Partition> {
        self.topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(p).ok()?))
    }

    /// The topic named by `id`.
    pub(crate) fn topic_name(&self, id: Uuid) -> Option<String> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }

    pub(crate) fn next_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        let base = if client_id.is_empty() {
            "member"
        } else {
            client_id
        };
        format!("{base}-{:016x}", self.next_member)
    }
}
