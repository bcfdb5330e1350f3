//! The settings of a cluster to start, and its start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::protocol::messages::ApiKey;

use crate::server::{self, Shared};
use crate::state::{Broker, Clock, State};
use crate::{FakeCluster, TICK, groups};

/// Sets up a [`FakeCluster`]; from [`FakeCluster::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    brokers: usize,
    topics: Vec<(String, i32, i16)>,
    auto_create_topics: bool,
    default_partitions: i32,
    initial_rebalance_delay: Duration,
    max_message_bytes: usize,
    cluster_id: String,
    record_requests: bool,
    version_caps: BTreeMap<ApiKey, (i16, i16)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            brokers: 1,
            topics: Vec::new(),
            auto_create_topics: true,
            default_partitions: 1,
            initial_rebalance_delay: Duration::ZERO,
            max_message_bytes: 1_048_588,
            cluster_id: "klamm-fake-cluster".to_string(),
            record_requests: false,
            version_caps: BTreeMap::new(),
        }
    }
}

impl Builder {
    /// The number of brokers, with ids 1 to `n` (default 1).
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n.max(1);
        self
    }

    /// A topic to create at start, replicated on every broker up to three.
    pub fn topic(mut self, name: &str, partitions: i32) -> Self {
        let rf = self.brokers.min(3) as i16;
        self.topics.push((name.to_string(), partitions, rf));
        self
    }

    /// A topic to create at start with `replication` replicas per partition.
    pub fn topic_replicated(mut self, name: &str, partitions: i32, replication: i16) -> Self {
        self.topics
            .push((name.to_string(), partitions, replication));
        self
    }

    /// Whether Metadata requests create the topics they name
    /// (`auto.create.topics.enable`, default true), with
    /// [`Builder::default_partitions`] partitions.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Partitions of an auto-created topic (`num.partitions`, default 1).
    pub fn default_partitions(mut self, n: i32) -> Self {
        self.default_partitions = n.max(1);
        self
    }

    /// How long a first rebalance of an empty group waits for more members
    /// (`group.initial.rebalance.delay.ms`). Default zero; Kafka's is 3 s.
    pub fn initial_rebalance_delay(mut self, d: Duration) -> Self {
        self.initial_rebalance_delay = d;
        self
    }

    /// The largest batch a partition accepts (`message.max.bytes`, default
    /// 1048588); a topic's `max.message.bytes` overrides it.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Whether the brokers keep every request they handle, for
    /// [`FakeCluster::history`], and every batch the partition leaders
    /// examine, for [`FakeCluster::produced`] (default off: a long test
    /// would keep every record it produced).
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record_requests = on;
        self
    }

    /// Offers only versions `min..=max` of `api` (within those the fake
    /// implements), as an older or newer broker would; see
    /// [`FakeCluster::offer_versions`].
    pub fn offer_versions(mut self, api: ApiKey, min: i16, max: i16) -> Self {
        self.version_caps.insert(api, (min, max));
        self
    }

    /// Starts the brokers, each on a free port of 127.0.0.1.
    pub async fn start(self) -> std::io::Result<FakeCluster> {
        let mut brokers = BTreeMap::new();
        let mut listeners = Vec::new();
        for id in 1..=self.brokers as i32 {
            let listener = server::bind(0)?;
            let port = listener.local_addr()?.port();
            brokers.insert(
                id,
                Broker {
                    port,
                    up: true,
                    rack: None,
                },
            );
            listeners.push((id, listener));
        }
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut st = State {
            cluster_id: self.cluster_id,
            clock: Clock::new(wall),
            brokers,
            topics: BTreeMap::new(),
            auto_create_topics: self.auto_create_topics,
            default_partitions: self.default_partitions,
            default_replication: self.brokers.min(3) as i16,
            next_producer_id: 999,
            txns: BTreeMap::new(),
            groups: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_session: 0,
            next_topic_id: 0,
            next_member: 0,
            rules: Vec::new(),
            partition_rules: Vec::new(),
            partitioned: Default::default(),
            handled: BTreeMap::new(),
            duplicates: BTreeMap::new(),
            initial_rebalance_delay: self.initial_rebalance_delay,
            max_message_bytes: self.max_message_bytes,
            problems: Vec::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            recording: self.record_requests,
            history: Vec::new(),
            placed: BTreeMap::new(),
            version_caps: self.version_caps,
            connections: BTreeMap::new(),
            produced: BTreeMap::new(),
            topic_errors: BTreeMap::new(),
            held: Default::default(),
            first_producer_epoch: 0,
            slice_fetches: false,
            in_flight: BTreeMap::new(),
        };
        for (name, partitions, rf) in &self.topics {
            let rf = (*rf).clamp(1, self.brokers as i16);
            st.create_topic(name, *partitions, rf, None, BTreeMap::new());
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            changed: Arc::default(),
            downs: Mutex::new(BTreeMap::new()),
            listeners: Mutex::new(BTreeMap::new()),
        });
        for (id, listener) in listeners {
            server::spawn_listener(Arc::clone(&shared), id, listener);
        }
        let s = Arc::clone(&shared);
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let changed = {
                    let mut st = s.lock();
                    let now = tokio::time::Instant::now();
                    let wall = st.clock.now_ms();
                    let members = groups::expire(&mut st, now);
                    let txns = crate::api::txn::expire(&mut st, now, wall);
                    members || txns
                };
                if changed {
                    s.bump();
                }
            }
        });
        Ok(FakeCluster {
            shared,
            ticker: Some(ticker),
        })
    }
}
