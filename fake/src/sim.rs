//! Seeded fault simulation: klamm's clients (the idempotent and
//! transactional producers, the consumer, consumer groups) and the fake
//! cluster in one single-threaded runtime on tokio's paused clock,
//! connected by in-memory pipes, with a fault schedule drawn from one seed;
//! after each run the invariants of the workload are checked.
//!
//! ```
//! use klamm_fake::sim::{Workload, simulate};
//!
//! let outcome = simulate(7, Workload::Idempotent).expect("no invariant broken");
//! assert!(outcome.records > 0);
//! // The same seed draws the same schedule.
//! assert_eq!(simulate(7, Workload::Idempotent).unwrap().schedule, outcome.schedule);
//! ```
//!
//! The seed fixes everything: the workload (records, partitions, which
//! transactions commit), every fault with its virtual time, and klamm's own
//! choices (its hash maps' order and its backoff jitter, through
//! [`klamm::determinism::repeatable`]); the fake wakes waiting requests in
//! a fixed order and its `select!`s are biased. So a seed replays its run
//! exactly: [`Outcome::trace`], a digest of every request the brokers
//! handled with its virtual time, is the same each time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::client::ClientOptions;
use klamm::config::IsolationLevel;
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::{Client, Config};

use crate::{FakeCluster, Fault, TxnStatus};

/// What a simulation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// An idempotent producer writes keyed records to every partition.
    /// Invariants: every record acknowledged; each partition holds exactly
    /// the records sent to it, in the order sent, none twice; each
    /// acknowledged offset holds its record; a consumer reads every offset.
    Idempotent,
    /// A transactional producer runs transactions, committing or aborting
    /// each as the seed says. Invariants: a committed transaction's records
    /// are all committed, an aborted one's never; a `read_committed`
    /// consumer reads exactly the committed records, in order.
    Transactional,
    /// The control of [`Workload::Idempotent`]: the same writes with
    /// idempotence off (and one request in flight, so order is kept): a
    /// schedule that cuts a Produce after it took effect must make some
    /// runs fail with a record written twice, showing the invariants catch
    /// it.
    PlainProducerControl,
    /// Members of a consumer group read a topic while members leave and
    /// join. Invariants: no partition is owned by two members at once, and
    /// no member reads a partition it does not own; committed offsets
    /// never go back; every record is read.
    Group,
    /// The control of [`Workload::Group`]: the same run with one of two
    /// bugs, drawn from the seed. Either every other member joins a group
    /// of its own (as if the coordinator had lost track of the others), so
    /// two members own a partition at once; or each member, on every
    /// assignment, commits offset 0 for what it was given (as a consumer
    /// that ignores the committed position would), so committed offsets go
    /// back. Some runs of each must fail, showing the checks catch them.
    GroupControl,
}

/// A run that kept its invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Records written (committed ones, under transactions).
    pub records: usize,
    /// The faults, each with its virtual time, as drawn.
    pub schedule: Vec<String>,
    /// [`FakeCluster::trace_digest`] at the end.
    pub trace: u64,
    /// Virtual time the run took.
    pub virtual_time: Duration,
    /// Requests the brokers handled, by API name.
    pub requests: BTreeMap<&'static str, u64>,
}

/// A run that broke an invariant (or could not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seed: `simulate(seed, workload)` runs it again.
    pub seed: u64,
    /// The workload.
    pub workload: Workload,
    /// What went wrong.
    pub what: String,
    /// The fault schedule of the run.
    pub schedule: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} ({:?}): {}; schedule: [{}]",
            self.seed,
            self.workload,
            self.what,
            self.schedule.join(", ")
        )
    }
}

impl std::error::Error for Violation {}

/// SplitMix64: small, fast and fully determined by its seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One scheduled fault.
#[derive(Debug, Clone)]
enum Action {
    Inject(ApiKey, Option<i32>, Fault, u64),
    MoveLeader(i32, i32),
    Bounce(i32, Duration),
}

const TOPIC: &str = "sim";
const BROKERS: usize = 3;

/// Errors a leader may answer that leave nothing written.
const PRODUCE_ERRORS: [ErrorCode; 4] = [
    ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ErrorCode::NOT_ENOUGH_REPLICAS,
    ErrorCode::LEADER_NOT_AVAILABLE,
    ErrorCode::REQUEST_TIMED_OUT,
];
const COORDINATOR_ERRORS: [ErrorCode; 3] = [
    ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ErrorCode::NOT_COORDINATOR,
    ErrorCode::CONCURRENT_TRANSACTIONS,
];

const GROUP_ERRORS: [ErrorCode; 3] = [
    ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ErrorCode::NOT_COORDINATOR,
    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
];

fn draw_group_fault(rng: &mut Rng, partitions: i32) -> Action {
    let broker = 1 + rng.below(BROKERS as u64) as i32;
    match rng.below(6) {
        0 => Action::Bounce(broker, Duration::from_millis(200 + rng.below(1_500))),
        1 => Action::MoveLeader(rng.below(partitions as u64) as i32, broker),
        2 => Action::Inject(ApiKey::Fetch, None, Fault::CutAfterApply, 1),
        3 => {
            let api =
                [ApiKey::JoinGroup, ApiKey::SyncGroup, ApiKey::Heartbeat][rng.below(3) as usize];
            let code = GROUP_ERRORS[rng.below(3) as usize];
            Action::Inject(api, None, Fault::Error(code), 1)
        }
        4 => Action::Inject(
            ApiKey::OffsetCommit,
            None,
            Fault::Error(GROUP_ERRORS[rng.below(3) as usize]),
            1,
        ),
        _ => Action::Inject(
            ApiKey::Heartbeat,
            None,
            Fault::Error(ErrorCode::REBALANCE_IN_PROGRESS),
            1,
        ),
    }
}

fn draw_schedule(rng: &mut Rng, workload: Workload, partitions: i32) -> Vec<(u64, Action)> {
    let n = 2 + rng.below(6);
    let mut out = Vec::new();
    for _ in 0..n {
        let at = rng.below(3_000);
        if matches!(workload, Workload::Group | Workload::GroupControl) {
            out.push((at, draw_group_fault(rng, partitions)));
            continue;
        }
        let broker = |rng: &mut Rng| 1 + rng.below(BROKERS as u64) as i32;
        let action = match rng.below(if workload == Workload::Transactional {
            7
        } else {
            5
        }) {
            0 => {
                let fault = match rng.below(4) {
                    0 => Fault::CutAfterApply,
                    1 => Fault::CutBeforeApply,
                    2 => Fault::NoResponse,
                    _ => Fault::Error(PRODUCE_ERRORS[rng.below(4) as usize]),
                };
                let at_broker = if rng.chance(50) {
                    Some(broker(rng))
                } else {
                    None
                };
                Action::Inject(ApiKey::Produce, at_broker, fault, 1 + rng.below(3))
            }
            1 => Action::Inject(
                ApiKey::Produce,
                None,
                Fault::Delay(Duration::from_millis(100 + rng.below(2_000))),
                1 + rng.below(2),
            ),
            2 => Action::MoveLeader(rng.below(partitions as u64) as i32, broker(rng)),
            3 => Action::Bounce(broker(rng), Duration::from_millis(200 + rng.below(1_500))),
            4 => Action::Inject(ApiKey::Fetch, None, Fault::CutAfterApply, 1),
            5 => {
                let api = if rng.chance(50) {
                    ApiKey::EndTxn
                } else {
                    ApiKey::AddPartitionsToTxn
                };
                let fault = match rng.below(3) {
                    0 => Fault::CutAfterApply,
                    1 => Fault::NoResponse,
                    _ => Fault::Error(COORDINATOR_ERRORS[rng.below(3) as usize]),
                };
                Action::Inject(api, None, fault, 1)
            }
            _ => Action::Inject(
                ApiKey::InitProducerId,
                None,
                Fault::Error(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
                1,
            ),
        };
        out.push((at, action));
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

fn describe(schedule: &[(u64, Action)]) -> Vec<String> {
    schedule
        .iter()
        .map(|(at, a)| match a {
            Action::Inject(api, b, f, n) => format!(
                "{at}ms {}x{n} at {} {f:?}",
                api.name(),
                b.map_or("any broker".to_string(), |b| format!("broker {b}"))
            ),
            Action::MoveLeader(p, b) => format!("{at}ms leader of {TOPIC}-{p} to broker {b}"),
            Action::Bounce(b, d) => format!("{at}ms broker {b} down for {d:?}"),
        })
        .collect()
}

/// Runs one seeded simulation of `workload` in a runtime of its own.
pub fn simulate(seed: u64, workload: Workload) -> Result<Outcome, Violation> {
    let mut rng = Rng(seed);
    let partitions = 1 + rng.below(4) as i32;
    let schedule = draw_schedule(&mut rng, workload, partitions);
    let described = describe(&schedule);
    let fail = |what: String| Violation {
        seed,
        workload,
        what,
        schedule: described.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| fail(format!("no runtime: {e}")))?;
    // The clients' jitter and the order they walk their maps in come from
    // the seed too.
    klamm::determinism::repeatable(seed);
    let run = async {
        let cluster = FakeCluster::builder()
            .brokers(BROKERS)
            .topic(TOPIC, partitions)
            .start()
            .await
            .map_err(|e| format!("the cluster did not start: {e}"))?;
        let started = tokio::time::Instant::now();
        let faults = tokio::spawn(apply(cluster.handle(), schedule));
        let result = match workload {
            Workload::Idempotent => idempotent(&cluster, &mut rng, partitions, true).await,
            Workload::PlainProducerControl => {
                idempotent(&cluster, &mut rng, partitions, false).await
            }
            Workload::Transactional => transactional(&cluster, &mut rng, partitions).await,
            Workload::Group => group(&cluster, &mut rng, partitions, None).await,
            Workload::GroupControl => {
                let bug = if rng.chance(50) {
                    GroupBug::SplitGroup
                } else {
                    GroupBug::RewindCommits
                };
                group(&cluster, &mut rng, partitions, Some(bug)).await
            }
        };
        faults.abort();
        let records = result?;
        Ok::<_, String>(Outcome {
            seed,
            records,
            schedule: described.clone(),
            trace: cluster.trace_digest(),
            virtual_time: started.elapsed(),
            requests: cluster.requests_by_api(),
        })
    };
    // An hour of virtual time is a hang.
    match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(3600), run).await }) {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(what)) => Err(fail(what)),
        Err(_) => Err(fail(
            "the run did not finish within an hour of virtual time".into(),
        )),
    }
}

async fn apply(cluster: FakeCluster, schedule: Vec<(u64, Action)>) {
    let start = tokio::time::Instant::now();
    for (at, action) in schedule {
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        match action {
            Action::Inject(api, broker, fault, n) => {
                let _ = cluster.inject(api, broker, fault, n);
            }
            Action::MoveLeader(p, b) => {
                let _ = cluster.move_leader(TOPIC, p, b);
            }
            Action::Bounce(b, down) => {
                if cluster.stop_broker(b).is_ok() {
                    let c = cluster.handle();
                    tokio::spawn(async move {
                        tokio::time::sleep(down).await;
                        let _ = c.start_broker(b).await;
                    });
                }
            }
        }
    }
}

/// A client configured for simulation: in-memory connections, no backoff
/// jitter, short request timeouts (lost answers are noticed in virtual
/// seconds), generous delivery and transaction timeouts.
async fn client(cluster: &FakeCluster, tune: impl FnOnce(&mut Config)) -> Result<Client, String> {
    let mut config = Config::default();
    config.net.bootstrap_servers = cluster.addresses();
    config.net.client_id = "sim".into();
    config.net.backoff_jitter = 0.0;
    config.net.request_timeout = Duration::from_secs(5);
    config.producer.linger = Duration::from_millis(5);
    config.producer.batch_size = 256;
    config.producer.retry_backoff = Duration::from_millis(50);
    config.producer.request_timeout = Duration::from_secs(5);
    config.producer.delivery_timeout = Duration::from_secs(600);
    config.producer.max_block = Duration::from_secs(600);
    tune(&mut config);
    let options = ClientOptions {
        connector: Some(cluster.connector()),
        ..Default::default()
    };
    // An application retries while no broker answers (the schedule may
    // have them all down at once); a minute of virtual time is the limit.
    let mut last = None;
    for _ in 0..300 {
        match Client::connect_with(config.clone(), options.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_retriable() => last = Some(e),
            Err(e) => return Err(format!("client: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("client: no broker for a minute: {last:?}"))
}

fn value(key: &str, i: usize) -> String {
    format!("{key}#{i}")
}

async fn idempotent(
    cluster: &FakeCluster,
    rng: &mut Rng,
    partitions: i32,
    idempotence: bool,
) -> Result<usize, String> {
    let records = 20 + rng.below(100) as usize;
    let client = client(cluster, |c| {
        c.producer.idempotence = idempotence;
        if !idempotence {
            c.producer.max_in_flight_requests_per_connection = 1;
        }
    })
    .await?;
    let producer = AsyncProducer::new(client.clone())
        .await
        .map_err(|e| format!("producer: {e}"))?;
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for i in 0..records {
        let p = rng.below(partitions as u64) as i32;
        let v = value(&format!("p{p}"), i);
        sent.entry(p).or_default().push(v.clone());
        let d = producer
            .send(record(v.clone(), p))
            .await
            .map_err(|e| format!("send {v}: {e}"))?;
        deliveries.push((v, d));
        // Sends spread over about two virtual seconds, so the faults
        // (drawn within the first three) meet the writes.
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
    }
    let mut acked = Vec::new();
    for (v, d) in deliveries {
        let meta = d.await.map_err(|e| format!("{v} was not delivered: {e}"))?;
        acked.push((v, meta.partition, meta.offset));
    }
    producer.close().await.map_err(|e| format!("close: {e}"))?;
    for p in 0..partitions {
        let log: Vec<String> = cluster
            .records(TOPIC, p)
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let want = sent.remove(&p).unwrap_or_default();
        if log != want {
            return Err(format!(
                "partition {p} holds {log:?}, was sent {want:?} (lost, repeated or reordered)"
            ));
        }
    }
    for (v, p, offset) in &acked {
        let at = cluster
            .records(TOPIC, *p)
            .into_iter()
            .find(|r| r.offset == *offset)
            .and_then(|r| r.value);
        if at.as_deref() != Some(v.as_bytes()) {
            return Err(format!(
                "{v} was acknowledged at {p}@{offset}, which holds {at:?}"
            ));
        }
    }
    no_gaps(&client, cluster, partitions).await?;
    client.close().await;
    Ok(records)
}

/// A consumer reads every record of every partition, offset after offset.
async fn no_gaps(client: &Client, cluster: &FakeCluster, partitions: i32) -> Result<(), String> {
    let consumer = Consumer::new(client.clone());
    for p in 0..partitions {
        let want: Vec<(i64, Option<Bytes>)> = cluster
            .records(TOPIC, p)
            .into_iter()
            .map(|r| (r.offset, r.value))
            .collect();
        if want.is_empty() {
            continue;
        }
        let mut part = consumer
            .consume_partition(TOPIC, p, StartOffset::Oldest)
            .await
            .map_err(|e| format!("consume {p}: {e}"))?;
        for (offset, value) in want {
            let r = part
                .recv()
                .await
                .ok_or(format!(
                    "partition {p}: the consumer stopped before {offset}"
                ))?
                .map_err(|e| format!("partition {p}: {e}"))?;
            if r.offset != offset || r.value != value {
                return Err(format!(
                    "partition {p}: the consumer read {}@{:?}, the log has {offset}@{value:?}",
                    r.offset, r.value
                ));
            }
        }
        part.close().await;
    }
    consumer.close().await;
    Ok(())
}

async fn transactional(
    cluster: &FakeCluster,
    rng: &mut Rng,
    partitions: i32,
) -> Result<usize, String> {
    let txns = 3 + rng.below(6) as usize;
    let client = client(cluster, |c| {
        c.producer.transactional_id = Some("sim-txn".into());
    })
    .await?;
    let producer = AsyncProducer::new(client.clone())
        .await
        .map_err(|e| format!("producer: {e}"))?;
    producer
        .init_transactions()
        .await
        .map_err(|e| format!("init_transactions: {e}"))?;
    // Per partition, the values of committed transactions in order.
    let mut committed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut aborted: Vec<String> = Vec::new();
    let mut total = 0;
    for t in 0..txns {
        producer
            .begin_transaction()
            .map_err(|e| format!("begin {t}: {e}"))?;
        let n = 1 + rng.below(8) as usize;
        let mut these = Vec::new();
        let mut deliveries = Vec::new();
        for i in 0..n {
            let p = rng.below(partitions as u64) as i32;
            let v = value(&format!("t{t}"), i);
            these.push((p, v.clone()));
            let d = producer
                .send(record(v.clone(), p))
                .await
                .map_err(|e| format!("send {v}: {e}"))?;
            deliveries.push(d);
            tokio::time::sleep(Duration::from_millis(rng.below(60))).await;
        }
        let commit = rng.chance(70);
        let ended = if commit {
            producer.commit_transaction().await
        } else {
            producer.abort_transaction().await
        };
        for d in deliveries {
            // Delivered or failed with the transaction: either is fine;
            // the log says what happened.
            let _ = d.await;
        }
        match (commit, ended) {
            (true, Ok(())) => {
                total += n;
                for (p, v) in these {
                    committed.entry(p).or_default().push(v);
                }
            }
            (false, Ok(())) => aborted.extend(these.into_iter().map(|(_, v)| v)),
            (_, Err(e)) => return Err(format!("ending transaction {t} (commit {commit}): {e}")),
        }
    }
    producer.close().await.map_err(|e| format!("close: {e}"))?;
    for p in 0..partitions {
        let log = cluster.records(TOPIC, p);
        for r in &log {
            let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            if aborted.contains(&v) && r.transaction == TxnStatus::Committed {
                return Err(format!("{v} of an aborted transaction is committed"));
            }
            if r.transaction == TxnStatus::Open {
                return Err(format!("{v} is still in an open transaction"));
            }
        }
        let seen: Vec<String> = log
            .iter()
            .filter(|r| r.transaction == TxnStatus::Committed)
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let want = committed.remove(&p).unwrap_or_default();
        if seen != want {
            return Err(format!(
                "partition {p}: committed records {seen:?}, the committed transactions wrote {want:?}"
            ));
        }
        // A read_committed consumer sees exactly those.
        let reader = self::client(cluster, |c| {
            c.consumer.isolation_level = IsolationLevel::ReadCommitted;
        })
        .await?;
        let consumer = Consumer::new(reader.clone());
        let mut part = consumer
            .consume_partition(TOPIC, p, StartOffset::Oldest)
            .await
            .map_err(|e| format!("consume {p}: {e}"))?;
        for v in &want {
            let r = part
                .recv()
                .await
                .ok_or(format!("partition {p}: the reader stopped before {v}"))?
                .map_err(|e| format!("partition {p}: {e}"))?;
            let got = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            if &got != v {
                return Err(format!(
                    "partition {p}: read_committed read {got}, expected {v}"
                ));
            }
        }
        // Nothing more: the next read waits out a virtual second empty.
        if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(1), part.recv()).await {
            return Err(format!(
                "partition {p}: read_committed read more: {extra:?}"
            ));
        }
        part.close().await;
        consumer.close().await;
        reader.close().await;
    }
    client.close().await;
    Ok(total)
}

/// Who owns which partition, as the members' events say, and what was
/// read; a second owner is a violation.
#[derive(Debug, Default)]
struct Ownership {
    owner: BTreeMap<i32, usize>,
    read: std::collections::BTreeSet<(i32, i64)>,
    violations: Vec<String>,
}

/// The bug a [`Workload::GroupControl`] run plants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBug {
    /// Odd-numbered members join a group of their own.
    SplitGroup,
    /// Every assignment is answered by committing offset 0 for it.
    RewindCommits,
}

async fn group(
    cluster: &FakeCluster,
    rng: &mut Rng,
    partitions: i32,
    bug: Option<GroupBug>,
) -> Result<usize, String> {
    use klamm::group::{GroupConsumer, GroupEvent};
    use std::sync::Mutex;

    const GROUP: &str = "sim-group";
    let records = 20 + rng.below(80) as usize;
    // The records are written over about two virtual seconds while the
    // members read, join and leave.
    let gaps: Vec<u64> = (0..records).map(|_| rng.below(40)).collect();
    let client = client(cluster, |_| {}).await?;
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            let producer = AsyncProducer::new(client)
                .await
                .map_err(|e| format!("producer: {e}"))?;
            let mut deliveries = Vec::new();
            for (i, gap) in gaps.into_iter().enumerate() {
                let p = (i % partitions as usize) as i32;
                let d = producer
                    .send(record(value("g", i), p))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                deliveries.push(d);
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
            for d in deliveries {
                d.await.map_err(|e| format!("delivery: {e}"))?;
            }
            producer.close().await.map_err(|e| format!("close: {e}"))
        })
    };
    let shared = Arc::new(Mutex::new(Ownership::default()));
    // Committed offsets never go back.
    let watch = {
        let c = cluster.handle();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            loop {
                for p in 0..partitions {
                    if let Some(now) = c.committed(GROUP, TOPIC, p) {
                        let before = last.insert(p, now).unwrap_or(-1);
                        if now < before {
                            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                            s.violations.push(format!(
                                "partition {p}: committed offset went {before} -> {now}"
                            ));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let members = 2 + rng.below(2) as usize;
    // When each member leaves (a seeded virtual time, or never), and a
    // late member joins.
    let leaves: Vec<Option<u64>> = (0..members)
        .map(|m| (m > 0 && rng.chance(40)).then(|| 500 + rng.below(2_500)))
        .collect();
    let late_join = rng.chance(40).then(|| 300 + rng.below(2_000));
    // The members learn the run is over in the order they began waiting
    // (a tokio watch channel would wake them in a random order).
    let done = Arc::new(crate::signal::Signal::default());
    let mut tasks = Vec::new();
    let spawn_member = |m: usize, start_after: u64, leave_after: Option<u64>| {
        let shared = Arc::clone(&shared);
        let mut done_rx = done.subscribe();
        let cluster = cluster.handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(start_after)).await;
            let group_id = if bug == Some(GroupBug::SplitGroup) && m % 2 == 1 {
                format!("{GROUP}-split-{m}")
            } else {
                GROUP.to_string()
            };
            let c = self::client(&cluster, |c| {
                c.consumer.group_id = Some(group_id);
                c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
                c.consumer.enable_auto_commit = false;
                c.consumer.session_timeout = Duration::from_secs(10);
                c.consumer.heartbeat_interval = Duration::from_millis(500);
                c.net.client_id = format!("member-{m}");
            })
            .await?;
            let mut g = GroupConsumer::new(c.clone(), [TOPIC])
                .await
                .map_err(|e| format!("member {m}: {e}"))?;
            let leave_at =
                leave_after.map(|t| tokio::time::Instant::now() + Duration::from_millis(t));
            let mut rewind = Vec::new();
            loop {
                let sleep = async {
                    match leave_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    biased;
                    () = done_rx.changed() => break,
                    _ = sleep => break,
                    e = g.recv() => e,
                };
                let Some(event) = event else { break };
                let event = event.map_err(|e| format!("member {m}: {e}"))?;
                // Some(all read?) after records: commit them.
                let read = {
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    match event {
                        GroupEvent::Assigned(tps) => {
                            if bug == Some(GroupBug::RewindCommits) {
                                rewind.extend(tps.iter().cloned());
                            }
                            for tp in tps {
                                if let Some(other) = s.owner.insert(tp.partition, m)
                                    && other != m
                                {
                                    s.violations.push(format!(
                                        "partition {} assigned to member {m} while member {other} owns it",
                                        tp.partition
                                    ));
                                }
                            }
                            None
                        }
                        GroupEvent::Revoked(tps)
                        | GroupEvent::Lost {
                            partitions: tps, ..
                        } => {
                            for tp in tps {
                                if s.owner.get(&tp.partition) == Some(&m) {
                                    s.owner.remove(&tp.partition);
                                }
                            }
                            None
                        }
                        GroupEvent::Records(batch) => {
                            if s.owner.get(&batch.partition) != Some(&m) {
                                s.violations.push(format!(
                                    "member {m} read partition {} it does not own",
                                    batch.partition
                                ));
                            }
                            for r in &batch.records {
                                s.read.insert((r.partition, r.offset));
                            }
                            Some(())
                        }
                        _ => None,
                    }
                };
                if !rewind.is_empty() {
                    let zero = std::mem::take(&mut rewind)
                        .into_iter()
                        .map(|tp| (tp, klamm::group::OffsetAndMetadata::new(0)))
                        .collect();
                    let _ = g.offsets().commit_offsets(zero).await;
                }
                if read.is_some() {
                    // A commit may fail (a rebalance, a moving
                    // coordinator); the next one carries its offsets.
                    let _ = g.commit().await;
                }
            }
            // Release what it owns before it leaves.
            {
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                s.owner.retain(|_, o| *o != m);
            }
            let _ = g.commit().await;
            g.close()
                .await
                .map_err(|e| format!("member {m} close: {e}"))?;
            c.close().await;
            Ok::<(), String>(())
        })
    };
    for (m, leave) in leaves.iter().enumerate() {
        tasks.push(spawn_member(m, 0, *leave));
    }
    if let Some(t) = late_join {
        tasks.push(spawn_member(members, t, None));
    }
    // The writer finishes; then everything is read within ten virtual
    // minutes.
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(format!("the writer panicked: {e}")),
    }
    let ends: BTreeMap<i32, i64> = (0..partitions)
        .map(|p| (p, cluster.high_watermark(TOPIC, p).unwrap_or(0)))
        .collect();
    let all_read = || {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        ends.iter()
            .all(|(p, end)| (0..*end).all(|o| s.read.contains(&(*p, o))))
    };
    let finished = tokio::time::timeout(Duration::from_secs(600), async {
        while !all_read() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    done.bump();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("a member panicked: {e}")),
        }
    }
    watch.abort();
    let verdict = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = s.violations.first() {
            Err(v.clone())
        } else if finished.is_err() {
            let missing = ends
                .iter()
                .flat_map(|(p, end)| (0..*end).map(move |o| (*p, o)))
                .filter(|k| !s.read.contains(k))
                .count();
            Err(format!(
                "{missing} records never read within ten virtual minutes"
            ))
        } else {
            Ok(())
        }
    };
    verdict?;
    client.close().await;
    Ok(records)
}

/// A record of the workload for partition `p`. Its timestamp is fixed: one
/// from the wall clock would change the batches' sizes (their timestamp
/// deltas) from run to run, and so where they split.
fn record(value: impl Into<Bytes>, p: i32) -> ProducerRecord {
    ProducerRecord::new(TOPIC, value)
        .with_partition(p)
        .with_timestamp(1_700_000_000_000)
}
