//! What the fault tests share: a producer that streams the round-trip
//! pattern (tests/support/pattern.rs) while the test kills, pauses and
//! restarts nodes, recording each record's outcome; the tally that says,
//! of what a reader got back, how much was lost, duplicated or reordered;
//! the quorum's leader (DescribeQuorum); the node actions run off the
//! runtime's threads; and Kafka's Java console consumer as a second reader.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::client::{OffsetSpec, PartitionInfo, TrafficClass};
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerStats};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::DescribeQuorumRequest;
use klamm::protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use klamm::protocol::records::Header;
use klamm::{Client, Config};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use super::pattern;
use super::read::Stored;

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The record index a pattern key names, if it is `k-{p}-{i}` for this
/// partition.
pub fn index_of(p: i32, key: Option<&[u8]>) -> Option<u64> {
    let key = std::str::from_utf8(key?).ok()?;
    let rest = key.strip_prefix("k-")?;
    let (part, index) = rest.split_once('-')?;
    (part.parse::<i32>().ok()? == p).then_some(())?;
    index.parse().ok()
}

/// Checks a raw-read record against the pattern's `i`-th record of `p`.
pub fn check_stored(r: &Stored, p: i32, i: u64) -> Result<(), String> {
    let at = format!("{p}/{i} at offset {}", r.offset);
    if r.value.as_deref() != Some(&pattern::value(p, i, SIZE)[..]) {
        return Err(format!("{at}: value differs"));
    }
    let want = vec![
        Header::new("seq", i.to_string()),
        Header::new("part", p.to_string()),
    ];
    if r.headers != want {
        return Err(format!("{at}: headers {:?}", r.headers));
    }
    if r.timestamp != pattern::BASE_TS + i as i64 {
        return Err(format!("{at}: timestamp {}", r.timestamp));
    }
    Ok(())
}

/// What a reader got back, against what was written: per partition, how
/// many times each record index was read, at which offset first, and how
/// often a record came after one written later.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    parts: Vec<PartTally>,
}

#[derive(Debug, Default, Clone)]
struct PartTally {
    seen: Vec<u32>,
    first_offset: Vec<i64>,
    highest: Option<u64>,
    read: u64,
    reordered: u64,
    /// Records that are not the pattern's for this partition, or whose
    /// content differs from it.
    bad: u64,
    notes: Vec<String>,
}

/// The figures a scenario reports and asserts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Records `send` accepted.
    pub written: u64,
    /// Records whose future resolved Ok.
    pub acked: u64,
    /// Records whose future resolved with an error.
    pub failed: u64,
    /// Records the reader got.
    pub read: u64,
    /// Acknowledged records the reader never got.
    pub lost: u64,
    /// Extra copies of records the reader got more than once.
    pub duplicated: u64,
    /// Records read after a record written later to the same partition.
    pub reordered: u64,
    /// Records read that are not a written record (or differ from it).
    pub bad: u64,
    /// Acknowledged records read at another offset than acknowledged.
    pub misplaced: u64,
    /// Records that failed and were read all the same (the broker wrote
    /// them; the producer could not know).
    pub failed_stored: u64,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "written={} acked={} failed={} read={} lost={} duplicated={} reordered={} bad={} misplaced={} failed_stored={}",
            self.written,
            self.acked,
            self.failed,
            self.read,
            self.lost,
            self.duplicated,
            self.reordered,
            self.bad,
            self.misplaced,
            self.failed_stored
        )
    }
}

impl Figures {
    /// Nothing lost, duplicated, reordered, foreign or misplaced, and
    /// every record written acknowledged.
    pub fn assert_exact(&self, what: &str) {
        assert_eq!(
            (self.acked, self.failed),
            (self.written, 0),
            "{what}: every record acknowledged ({self})"
        );
        self.assert_nothing_lost(what);
    }

    /// Nothing acknowledged lost, nothing duplicated, reordered, foreign
    /// or misplaced (records that failed may or may not be stored).
    pub fn assert_nothing_lost(&self, what: &str) {
        assert_eq!(self.lost, 0, "{what}: acknowledged records lost ({self})");
        assert_eq!(self.duplicated, 0, "{what}: duplicates ({self})");
        assert_eq!(self.reordered, 0, "{what}: out of order ({self})");
        assert_eq!(self.bad, 0, "{what}: records not written ({self})");
        assert_eq!(self.misplaced, 0, "{what}: offsets differ ({self})");
    }
}

/// The largest record index a tally accepts (a garbled key must not make
/// it allocate without bound).
const MAX_INDEX: u64 = 1 << 24;

impl Tally {
    pub fn new(partitions: i32) -> Tally {
        Tally {
            parts: vec![PartTally::default(); partitions as usize],
        }
    }

    /// Counts a record read from partition `p` at `offset`: `index` is the
    /// pattern index its key names (None when it names none), `content`
    /// whether the rest of it is the pattern's.
    pub fn add(&mut self, p: i32, offset: i64, index: Option<u64>, content: Result<(), String>) {
        let Some(t) = self.parts.get_mut(p as usize) else {
            panic!("a record from partition {p}, which was not written");
        };
        t.read += 1;
        let Some(i) = index.filter(|&i| i < MAX_INDEX) else {
            t.bad += 1;
            if t.notes.len() < 10 {
                t.notes
                    .push(format!("{p} offset {offset}: not a pattern key"));
            }
            return;
        };
        if let Err(e) = content {
            t.bad += 1;
            if t.notes.len() < 10 {
                t.notes.push(e);
            }
        }
        let i = i as usize;
        if t.seen.len() <= i {
            t.seen.resize(i + 1, 0);
            t.first_offset.resize(i + 1, -1);
        }
        t.seen[i] += 1;
        if t.seen[i] == 1 {
            t.first_offset[i] = offset;
            if t.highest.is_some_and(|h| (i as u64) < h) {
                t.reordered += 1;
                if t.notes.len() < 10 {
                    t.notes
                        .push(format!("{p}/{i} at offset {offset} after a later record"));
                }
            }
            t.highest = Some(t.highest.map_or(i as u64, |h| h.max(i as u64)));
        } else if t.notes.len() < 10 {
            t.notes.push(format!(
                "{p}/{i} again at offset {offset} (first at {})",
                t.first_offset[i]
            ));
        }
    }

    /// Records read so far.
    pub fn read(&self) -> u64 {
        self.parts.iter().map(|t| t.read).sum()
    }

    /// Records read so far from partition `p`.
    pub fn read_from(&self, p: i32) -> u64 {
        self.parts.get(p as usize).map_or(0, |t| t.read)
    }

    /// The first notes of what was wrong, for failure messages.
    pub fn notes(&self) -> Vec<String> {
        self.parts.iter().flat_map(|t| t.notes.clone()).collect()
    }

    /// The figures of this read against the producer's outcomes.
    pub fn figures(&self, out: &Outcomes) -> Figures {
        let mut f = Figures {
            written: out.written(),
            acked: out.acked(),
            failed: out.failed(),
            ..Figures::default()
        };
        for (p, t) in self.parts.iter().enumerate() {
            let offsets = out.offsets.get(p).map(Vec::as_slice).unwrap_or_default();
            f.read += t.read;
            f.reordered += t.reordered;
            f.bad += t.bad;
            f.duplicated += t
                .seen
                .iter()
                .map(|&n| u64::from(n.saturating_sub(1)))
                .sum::<u64>();
            // Indexes past what was written are not records of ours.
            f.bad += t
                .seen
                .iter()
                .skip(offsets.len())
                .map(|&n| u64::from(n))
                .sum::<u64>();
            for (i, &acked_at) in offsets.iter().enumerate() {
                if acked_at < -1 {
                    f.failed_stored += u64::from(t.seen.get(i).is_some_and(|&n| n > 0));
                    continue;
                }
                match t.seen.get(i) {
                    None | Some(0) => f.lost += 1,
                    Some(_) if acked_at >= 0 && t.first_offset[i] != acked_at => f.misplaced += 1,
                    Some(_) => {}
                }
            }
        }
        f
    }
}

/// Reads every partition of `topic` raw (Fetch from offset 0 to the high
/// watermark, following leader moves) into a tally, content checked.
pub async fn read_raw(client: &Client, topic: &str, partitions: i32) -> Tally {
    let mut tally = Tally::new(partitions);
    for p in 0..partitions {
        for r in super::read::read_partition(client, topic, p).await {
            let index = index_of(p, r.key.as_deref());
            let content = match index {
                Some(i) => check_stored(&r, p, i),
                None => Ok(()),
            };
            tally.add(p, r.offset, index, content);
        }
    }
    tally
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

/// What Kafka's Java console consumer read.
#[derive(Debug)]
pub struct JavaRead {
    pub tally: Tally,
    pub elapsed: Duration,
    /// The tool's stderr, for failure messages.
    pub stderr: String,
}

/// Reads `topic` from the beginning with Kafka's Java console consumer
/// (org.apache.kafka.tools.consumer.ConsoleConsumer, a fresh group),
/// `expected` records at most, and tallies every record it prints. Each
/// record is printed as
/// `CreateTime:TS<TAB>Partition:P<TAB>Offset:O<TAB>seq:I,part:P<TAB>KEY<TAB>VALUE<LF>`;
/// the value's bytes are raw, so the parser takes the value as the
/// pattern's value for the key (SIZE bytes) and checks it byte for byte
/// before the line end.
pub fn java_read(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    expected: u64,
    idle: Duration,
) -> JavaRead {
    let started = Instant::now();
    let run_dir = cluster
        .dir
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut child = Command::new(super::peers::script("kafka"))
        .arg("run")
        .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
        .args(["--bootstrap-server", &cluster.bootstrap])
        .args(["--topic", topic])
        .arg("--from-beginning")
        .args(["--max-messages", &expected.to_string()])
        .args(["--timeout-ms", &idle.as_millis().to_string()])
        .args(["--command-property", "max.partition.fetch.bytes=4194304"])
        .args(["--command-property", "fetch.max.bytes=16777216"])
        .args(["--formatter-property", "print.timestamp=true"])
        .args(["--formatter-property", "print.partition=true"])
        .args(["--formatter-property", "print.offset=true"])
        .args(["--formatter-property", "print.headers=true"])
        .args(["--formatter-property", "print.key=true"])
        .args(["--formatter-property", "print.value=true"])
        .env("KLAMM_RUN_DIR", run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Java console consumer");
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("stdout");
    let tally = parse_console(BufReader::with_capacity(1 << 20, stdout), partitions);
    let status = child.wait().expect("wait for the console consumer");
    let stderr = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "the Java console consumer failed: {stderr}"
    );
    JavaRead {
        tally,
        elapsed: started.elapsed(),
        stderr,
    }
}

/// Parses the console consumer's output (see [`java_read`]) into a tally.
pub fn parse_console(mut input: impl BufRead, partitions: i32) -> Tally {
    let mut tally = Tally::new(partitions);
    let mut value = vec![0u8; SIZE + 1];
    loop {
        // Everything up to the value is text without tabs inside fields:
        // read five tab-ended fields.
        let mut fields: Vec<Vec<u8>> = Vec::with_capacity(5);
        for _ in 0..5 {
            let mut f = Vec::new();
            match input.read_until(b'\t', &mut f) {
                Ok(0) => {
                    assert!(fields.is_empty(), "console output ends inside a record");
                    return tally;
                }
                Ok(_) => {}
                Err(e) => panic!("reading the console consumer: {e}"),
            }
            assert_eq!(
                f.last(),
                Some(&b'\t'),
                "console output ends inside a record: {:?}",
                String::from_utf8_lossy(&f)
            );
            f.pop();
            fields.push(f);
        }
        let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
        let field = |f: &[u8], prefix: &str| -> i64 {
            let t = text(f);
            t.strip_prefix(prefix)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("console field {t:?} is not {prefix}N"))
        };
        let ts = field(&fields[0], "CreateTime:");
        let p = field(&fields[1], "Partition:") as i32;
        let offset = field(&fields[2], "Offset:");
        let headers = text(&fields[3]);
        let key = &fields[4];
        let index = index_of(p, Some(key));
        let want = index.map(|i| pattern::value(p, i, SIZE));
        let len = want.as_ref().map_or(SIZE, Vec::len);
        value.resize(len + 1, 0);
        input
            .read_exact(&mut value)
            .unwrap_or_else(|e| panic!("console output ends inside {p}@{offset}: {e}"));
        let content = match (index, want) {
            (Some(i), Some(want)) => {
                let mut problems = Vec::new();
                if value[..len] != want[..] || value[len] != b'\n' {
                    problems.push("value differs".to_string());
                }
                if ts != pattern::BASE_TS + i as i64 {
                    problems.push(format!("timestamp {ts}"));
                }
                if headers != format!("seq:{i},part:{p}") {
                    problems.push(format!("headers {headers:?}"));
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{p}/{i} at {offset}: {}", problems.join(", ")))
                }
            }
            _ => Ok(()),
        };
        if index.is_none() || value[len] != b'\n' {
            // Out of step with the pattern: skip to the line end and go on.
            let mut rest = Vec::new();
            let _ = input.read_until(b'\n', &mut rest);
        }
        tally.add(p, offset, index, content);
    }
}

/// Per-partition figures on one line, for failure messages.
pub fn describe_states(states: &[PartitionInfo]) -> String {
    let mut parts: Vec<String> = states
        .iter()
        .map(|p| format!("{}: leader {} isr {:?}", p.id, p.leader, p.in_sync_replicas))
        .collect();
    parts.sort();
    parts.join("; ")
}

/// klamm's consumer reading every partition of a topic from the oldest
/// offset into a shared tally (content checked against the pattern), in
/// the background, until told where each partition ends.
pub struct Reader {
    tally: Arc<Mutex<Tally>>,
    ends: watch::Sender<Option<Vec<i64>>>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
    consumer: Consumer,
    pub started: Instant,
}

impl Reader {
    pub async fn start(client: Client, topic: &str, partitions: i32) -> Reader {
        let consumer = Consumer::new(client);
        let tally = Arc::new(Mutex::new(Tally::new(partitions)));
        let (ends, ends_rx) = watch::channel(None::<Vec<i64>>);
        let mut tasks = Vec::new();
        for p in 0..partitions {
            let mut pc = consumer
                .consume_partition(topic, p, StartOffset::Oldest)
                .await
                .expect("consume_partition");
            let tally = Arc::clone(&tally);
            let mut ends = ends_rx.clone();
            tasks.push(tokio::spawn(async move {
                let mut next = 0i64;
                loop {
                    if let Some(end) = &*ends.borrow_and_update()
                        && next >= end[p as usize]
                    {
                        break;
                    }
                    tokio::select! {
                        batch = pc.recv_batch() => {
                            let batch = match batch {
                                Some(Ok(b)) => b,
                                Some(Err(e)) => return Err(format!("partition {p}: {e}")),
                                None => return Err(format!("partition {p}: the stream ended")),
                            };
                            let mut t = lock(&tally);
                            for rec in batch.iter() {
                                let index = index_of(p, rec.key.as_deref());
                                let content = match index {
                                    Some(i) => pattern::check(rec, p, i, SIZE),
                                    None => Ok(()),
                                };
                                t.add(p, rec.offset, index, content);
                                next = rec.offset + 1;
                            }
                        }
                        _ = ends.changed() => {}
                    }
                }
                pc.close().await;
                Ok(())
            }));
        }
        Reader {
            tally,
            ends,
            tasks,
            consumer,
            started: Instant::now(),
        }
    }

    /// Records read so far.
    pub fn read(&self) -> u64 {
        lock(&self.tally).read()
    }

    /// Records read so far from partition `p`.
    pub fn read_from(&self, p: i32) -> u64 {
        lock(&self.tally).read_from(p)
    }

    /// Reads on until each partition reaches its high watermark now (as
    /// ListOffsets says), then stops and returns the tally.
    pub async fn finish(self, client: &Client, topic: &str) -> Tally {
        let mut ends = Vec::new();
        for p in 0..self.tasks.len() as i32 {
            let end = client
                .list_offsets(topic, p, OffsetSpec::Newest)
                .await
                .unwrap_or_else(|e| panic!("{topic}/{p}: high watermark: {e}"));
            ends.push(end);
        }
        self.ends.send_replace(Some(ends));
        for t in self.tasks {
            if let Err(e) = t.await.expect("reader task") {
                panic!("klamm's consumer failed: {e}");
            }
        }
        self.consumer.close().await;
        std::mem::take(&mut *lock(&self.tally))
    }
}
