//! What the fault tests share: a producer that streams the round-trip
//! pattern (tests/support/pattern.rs) while the test kills, pauses and
//! restarts nodes, recording each record's outcome; waiting for events
//! (leaders moved, replicas back in sync); the quorum's leader
//! (DescribeQuorum); the node actions, run off the runtime's threads. What
//! was stored is read back with tests/support/readers.rs and accounted
//! for with tests/support/tally.rs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::client::{PartitionInfo, TrafficClass};
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerStats};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::DescribeQuorumRequest;
use klamm::protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use klamm::{Client, Config};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use super::pattern;

/// The value size of every record the fault tests write (about 100 B).
pub const SIZE: usize = 100;

/// The outcome slot of a record whose future has not resolved yet.
const PENDING: i64 = -2;
/// The outcome slot of a record whose future resolved with an error.
const FAILED: i64 = -3;

/// A config for the cluster, for the test's own observations (metadata,
/// DescribeQuorum, raw reads): a short request timeout, so a paused node
/// costs little.
pub fn observer_config(cluster: &Cluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addrs();
    config.net.client_id = "klamm-fault-observer".into();
    config.net.request_timeout = Duration::from_secs(3);
    config.net.connect_timeout = Duration::from_secs(3);
    config
}

/// A config for klamm's consumer on the cluster: short fetch waits, a
/// request timeout that gives up on a hung broker in 10 s.
pub fn reader_config(cluster: &Cluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addrs();
    config.net.client_id = "klamm-fault-reader".into();
    config.net.request_timeout = Duration::from_secs(10);
    config.consumer.fetch_max_wait = Duration::from_millis(100);
    config
}

/// A producer config for the cluster: acks=all and idempotence (the
/// defaults, set here so the tests say so), a short linger.
pub fn producer_config(cluster: &Cluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addrs();
    config.net.client_id = "klamm-fault-producer".into();
    config.producer.acks = klamm::config::Acks::All;
    config.producer.idempotence = true;
    config.producer.linger = Duration::from_millis(5);
    config
}

/// A topic of `partitions` partitions at replication factor 3 with
/// min.insync.replicas=2, kept for ever: the pattern's timestamps are from
/// 2023, so the default retention (7 days, by record timestamp) would
/// delete the first segments while a test reads them.
pub fn spec(topic: &str, partitions: i32) -> super::topics::TopicSpec {
    super::topics::TopicSpec::new(topic, partitions)
        .replication(3)
        .config("min.insync.replicas", "2")
        .config("retention.ms", "-1")
}

/// How fast a [`Stream`] sends.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `n` records every 10 ms (`100 * n` a second).
    PerTick(u64),
    /// As fast as `send` takes them.
    Flat,
}

struct Shared {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    /// Per partition, per record index: the acknowledged offset, PENDING
    /// or FAILED.
    outcomes: Vec<Mutex<Vec<i64>>>,
    /// The first errors records failed with.
    errors: Mutex<Vec<String>>,
}

/// A producer streaming the round-trip pattern to `partitions`
/// partitions, round-robin, until stopped (or `limit` records); each
/// record's outcome is recorded as its future resolves.
pub struct Stream {
    pub topic: Arc<str>,
    pub partitions: i32,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    allowed: watch::Sender<u64>,
    sender: JoinHandle<AsyncProducer>,
    collectors: Vec<JoinHandle<()>>,
    /// A clone of the producer the send loop drives, for its stats.
    producer: AsyncProducer,
    pub started: Instant,
}

/// Every record's outcome once a [`Stream`] finished.
#[derive(Debug, Clone)]
pub struct Outcomes {
    /// Per partition, per record index: the acknowledged offset (-1 when
    /// the broker acknowledged it without one, as for a duplicate whose
    /// offset it no longer knows), or below -1 when the record failed.
    pub offsets: Vec<Vec<i64>>,
    /// The first errors (at most 20) records failed with.
    pub errors: Vec<String>,
    pub stats: ProducerStats,
}

impl Outcomes {
    pub fn written(&self) -> u64 {
        self.offsets.iter().map(|o| o.len() as u64).sum()
    }

    pub fn acked(&self) -> u64 {
        self.offsets.iter().flatten().filter(|&&o| o >= -1).count() as u64
    }

    pub fn failed(&self) -> u64 {
        self.written() - self.acked()
    }

    /// Records of partition `p` that failed.
    pub fn failed_in(&self, p: i32) -> u64 {
        self.offsets
            .get(p as usize)
            .map_or(0, |o| o.iter().filter(|&&o| o < -1).count() as u64)
    }

    /// Records written per partition.
    pub fn per_partition(&self) -> Vec<u64> {
        self.offsets.iter().map(|o| o.len() as u64).collect()
    }
}

impl Stream {
    /// Starts a producer on `client` and streams to `topic` at `pace`,
    /// at most `limit` records.
    pub async fn start(
        client: Client,
        topic: &str,
        partitions: i32,
        pace: Pace,
        limit: u64,
    ) -> Stream {
        let producer = AsyncProducer::new(client).await.expect("producer");
        let shared = Arc::new(Shared {
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            outcomes: (0..partitions).map(|_| Mutex::default()).collect(),
            errors: Mutex::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (allowed, allowed_rx) = watch::channel(limit);
        let mut txs = Vec::new();
        let mut collectors = Vec::new();
        for p in 0..partitions {
            let (tx, rx) = mpsc::unbounded_channel();
            txs.push(tx);
            collectors.push(tokio::spawn(collect(Arc::clone(&shared), p, rx)));
        }
        let topic: Arc<str> = topic.into();
        let observed = producer.clone();
        let sender = tokio::spawn(send_loop(
            producer,
            Arc::clone(&topic),
            Arc::clone(&shared),
            txs,
            stop_rx,
            allowed_rx,
            pace,
            limit,
        ));
        Stream {
            topic,
            partitions,
            shared,
            stop,
            allowed,
            sender,
            collectors,
            producer: observed,
            started: Instant::now(),
        }
    }

    /// What the producer did so far.
    pub fn stats(&self) -> ProducerStats {
        self.producer.stats()
    }

    /// Records `send` accepted so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// Records acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::SeqCst)
    }

    /// Records whose future resolved with an error so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Per partition, the number of records sent so far (the index the
    /// next record gets).
    pub fn marks(&self) -> Vec<u64> {
        self.shared
            .outcomes
            .iter()
            .map(|o| lock(o).len() as u64)
            .collect()
    }

    /// Whether every record of partition `p` below index `marks[p]` has
    /// its outcome, for every partition.
    pub fn resolved_below(&self, marks: &[u64]) -> bool {
        self.shared.outcomes.iter().zip(marks).all(|(o, &m)| {
            lock(o)
                .iter()
                .take(m as usize)
                .all(|&offset| offset != PENDING)
        })
    }

    /// The records of partition `p` from index `from` on that were
    /// acknowledged.
    pub fn acked_from(&self, p: i32, from: u64) -> u64 {
        lock(&self.shared.outcomes[p as usize])
            .iter()
            .skip(from as usize)
            .filter(|&&o| o >= -1)
            .count() as u64
    }

    /// Lets the stream send up to `n` records in all (it waits at the
    /// limit set before).
    pub fn allow(&self, n: u64) {
        self.allowed.send_replace(n);
    }

    /// The figures so far, for progress lines.
    pub fn progress(&self) -> String {
        format!(
            "sent={} acked={} failed={} after {:.1?}",
            self.sent(),
            self.acked(),
            self.failed(),
            self.started.elapsed()
        )
    }

    /// Stops sending, closes the producer (every future resolves) and
    /// returns every record's outcome.
    pub async fn finish(self) -> Outcomes {
        self.stop.send_replace(true);
        self.allowed.send_replace(u64::MAX);
        let producer = self.sender.await.expect("send loop");
        producer.close().await.expect("close the producer");
        let stats = self.producer.stats();
        for c in self.collectors {
            c.await.expect("collector");
        }
        let offsets = self
            .shared
            .outcomes
            .iter()
            .map(|o| std::mem::take(&mut *lock(o)))
            .collect();
        let errors = std::mem::take(&mut *lock(&self.shared.errors));
        Outcomes {
            offsets,
            errors,
            stats,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    producer: AsyncProducer,
    topic: Arc<str>,
    shared: Arc<Shared>,
    txs: Vec<mpsc::UnboundedSender<(u64, DeliveryFuture)>>,
    stop: watch::Receiver<bool>,
    mut allowed: watch::Receiver<u64>,
    pace: Pace,
    limit: u64,
) -> AsyncProducer {
    let partitions = txs.len() as u64;
    let mut next = vec![0u64; txs.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while n < limit && !*stop.borrow() {
        if n >= *allowed.borrow() {
            if allowed.changed().await.is_err() {
                break;
            }
            continue;
        }
        if let Pace::PerTick(k) = pace
            && n % k == 0
        {
            tick.tick().await;
        }
        let p = (n % partitions) as usize;
        let i = next[p];
        lock(&shared.outcomes[p]).push(PENDING);
        let future = match producer
            .send(pattern::record(&topic, p as i32, i, SIZE))
            .await
        {
            Ok(f) => f,
            Err(e) => panic!("send refused record {p}/{i}: {e}"),
        };
        next[p] += 1;
        n += 1;
        shared.sent.fetch_add(1, Ordering::SeqCst);
        let _ = txs[p].send((i, future));
    }
    producer
}

async fn collect(
    shared: Arc<Shared>,
    p: i32,
    mut rx: mpsc::UnboundedReceiver<(u64, DeliveryFuture)>,
) {
    while let Some((i, future)) = rx.recv().await {
        let outcome = match future.await {
            Ok(meta) => {
                assert_eq!(meta.partition, p, "record {p}/{i} acknowledged elsewhere");
                shared.acked.fetch_add(1, Ordering::SeqCst);
                meta.offset
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                let mut errors = lock(&shared.errors);
                if errors.len() < 20 {
                    errors.push(format!("{p}/{i}: {e}"));
                }
                FAILED
            }
        };
        lock(&shared.outcomes[p as usize])[i as usize] = outcome;
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `check` every 50 ms until it holds; fails the test with `what`
/// after `within`. Returns how long it took.
pub async fn until<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A partition's state from a fresh Metadata answer.
pub async fn partition_state(client: &Client, topic: &str, p: i32) -> Option<PartitionInfo> {
    client
        .refresh_metadata(Some(&[topic.to_string()]))
        .await
        .ok()?;
    client.metadata().partition(topic, p).cloned()
}

/// Every partition's state from a fresh Metadata answer.
pub async fn partition_states(client: &Client, topic: &str) -> Vec<PartitionInfo> {
    if client
        .refresh_metadata(Some(&[topic.to_string()]))
        .await
        .is_err()
    {
        return Vec::new();
    }
    client
        .metadata()
        .topics
        .get(topic)
        .map(|t| t.partitions.clone())
        .unwrap_or_default()
}

/// The leader of each partition of `topic` (fresh metadata), -1 where
/// there is none.
pub async fn leaders(client: &Client, topic: &str) -> Vec<i32> {
    partition_states(client, topic)
        .await
        .iter()
        .map(|p| p.leader)
        .collect()
}

/// Waits (up to 60 s) until each of `topic`'s `partitions` partitions has
/// a leader and none is led by `gone` (a node just killed or paused);
/// `what` names the wait. Returns how long the leaders took to move.
pub async fn leaders_moved_off(
    client: &Client,
    topic: &str,
    partitions: i32,
    gone: i32,
    what: &str,
) -> Duration {
    until(what, Duration::from_secs(60), || async {
        let l = leaders(client, topic).await;
        l.len() == partitions as usize && l.iter().all(|&b| b >= 0 && b != gone)
    })
    .await
}

/// Waits until every partition of `topic` has all three replicas in sync
/// and a leader the metadata lists, and the metadata lists three brokers.
pub async fn wait_fully_replicated(client: &Client, topic: &str, within: Duration) -> Duration {
    until(
        &format!("{topic}: three brokers and every replica in sync"),
        within,
        || async {
            let states = partition_states(client, topic).await;
            client.metadata().brokers.len() == 3
                && !states.is_empty()
                && states.iter().all(|p| {
                    p.in_sync_replicas.len() == 3
                        && p.leader >= 0
                        && client.metadata().brokers.contains_key(&p.leader)
                })
        },
    )
    .await
}

/// Waits until the metadata lists all three brokers (each unfenced).
pub async fn wait_three_brokers(client: &Client, within: Duration) -> Duration {
    until("three brokers in the metadata", within, || async {
        client.refresh_metadata(None).await.is_ok() && client.metadata().brokers.len() == 3
    })
    .await
}

/// The KRaft quorum as DescribeQuorum (asked through any broker, which
/// forwards it to the active controller) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    /// The active controller's node id.
    pub leader: i32,
    pub epoch: i32,
    /// The voters' ids and their log end offsets.
    pub voters: Vec<(i32, i64)>,
    pub high_watermark: i64,
}

/// Asks DescribeQuorum through each broker the metadata lists (nodes
/// listed in `avoid` last) until one answers.
pub async fn describe_quorum(client: &Client, avoid: &[i32]) -> Result<Quorum, String> {
    let mut brokers: Vec<_> = client.metadata().brokers.values().cloned().collect();
    brokers.sort_by_key(|b| avoid.contains(&b.id));
    let req = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut last = String::from("no broker in the metadata");
    for b in brokers {
        let conn = match client.connection(&b, TrafficClass::Other).await {
            Ok(c) => c,
            Err(e) => {
                last = format!("broker {}: {e}", b.id);
                continue;
            }
        };
        let resp = match conn.send(&req).await {
            Ok(r) => r,
            Err(e) => {
                last = format!("broker {}: {e}", b.id);
                continue;
            }
        };
        let code = ErrorCode(resp.error_code);
        let part = resp.topics.first().and_then(|t| t.partitions.first());
        let Some(part) = part.filter(|_| code.is_ok()) else {
            last = format!("broker {}: DescribeQuorum {code:?}", b.id);
            continue;
        };
        let pcode = ErrorCode(part.error_code);
        if !pcode.is_ok() || part.leader_id < 0 {
            last = format!(
                "broker {}: DescribeQuorum partition {pcode:?}, leader {}",
                b.id, part.leader_id
            );
            continue;
        }
        return Ok(Quorum {
            leader: part.leader_id,
            epoch: part.leader_epoch,
            voters: part
                .current_voters
                .iter()
                .map(|v| (v.replica_id, v.log_end_offset))
                .collect(),
            high_watermark: part.high_watermark,
        });
    }
    Err(last)
}

/// Runs a node action (`scripts/kafka node N ACTION --cluster`) off the
/// runtime's worker threads: starting a node takes seconds.
pub async fn node(cluster: &Cluster, n: i32, action: &'static str) -> Duration {
    let cluster = cluster.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || cluster.node(n, action))
        .await
        .expect("node action");
    started.elapsed()
}
