//! Churn: group members in two processes join, leave and are killed with
//! SIGKILL at seeded random times while a producer writes a numbered
//! sequence, against Apache Kafka 4.4 (the three-node cluster). A checker reads
//! every member's log (partition, generation, owned from, owned to,
//! offsets processed) and the committed offsets sampled all along, and
//! asserts:
//!
//! - no partition is owned by two members at the same time;
//! - committed offsets never go backwards;
//! - every record is processed at least once;
//! - a record is processed twice only after its processor was killed (or
//!   lost its membership), and only inside that member's uncommitted
//!   window: at or after the last commit seen before the kill, at or
//!   before the last offset it processed.
//!
//! The classic protocol runs eager (range) and cooperative-sticky; the
//! consumer protocol (KIP-848) runs with the broker's uniform assignor and
//! the group's session set to the classic members' 6 s.
//!
//! Each protocol runs `KLAMM_CHURN_SECS` seconds (default 180). The member
//! processes are this test binary again, running the ignored
//! `churn_member_process` test with the settings in its environment.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use klamm::group::{GroupConsumer, GroupEvent, OffsetManager, TopicPartition};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::{Client, Config};
use serde_json::{Value, json};
use support::read::config;
use support::topics::create_topic;

const PARTITIONS: i32 = 6;
const MEMBERS_PER_PROCESS: usize = 2;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A small seeded generator (xorshift), so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration between `lo` and `hi` milliseconds.
    fn between(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
}

/// A config for `brokers`, a comma-separated list.
fn cluster_config(brokers: &str) -> Config {
    let mut c = config(brokers.split(',').next().unwrap_or(brokers));
    c.net.bootstrap_servers = brokers.split(',').map(|b| b.trim().to_string()).collect();
    c
}

fn member_config(brokers: &str, group: &str, strategy: &str) -> Config {
    let mut c = cluster_config(brokers);
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(20);
    c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
    c.consumer.auto_commit_interval = Duration::from_millis(700);
    match strategy.strip_prefix("kip848:") {
        // KIP-848: the broker assigns, with the named assignor.
        Some(remote) => {
            c.consumer.group_protocol = klamm::config::GroupProtocol::Consumer;
            c.consumer.group_remote_assignor = Some(remote.to_string());
        }
        None => c.consumer.partition_assignment_strategy = vec![strategy.to_string()],
    }
    c
}

/// A KIP-848 group's session and heartbeat are the broker's: set them per
/// group (IncrementalAlterConfigs on the GROUP resource) to the classic
/// members' 6 s and 500 ms, so that a killed member's partitions move as
/// soon in both protocols.
async fn shorten_kip848_timeouts(client: &Client, group: &str) {
    support::group::set_group_configs(
        client,
        group,
        &[
            ("consumer.session.timeout.ms", "6000"),
            ("consumer.heartbeat.interval.ms", "500"),
        ],
    )
    .await;
}

/// One member process: `MEMBERS_PER_PROCESS` members, each joining,
/// consuming for a random while, leaving cleanly and joining again, until
/// the stop file appears (or the process is killed). Every event and
/// record goes to the process's log, one JSON line each, flushed at once
/// (a SIGKILL loses nothing written).
#[test]
#[ignore = "a member process of group_churn; started by the churn tests"]
fn churn_member_process() {
    let Ok(brokers) = std::env::var("KLAMM_CHURN_BROKERS") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the churn test"));
    let (topic, group, strategy) = (
        var("KLAMM_CHURN_TOPIC"),
        var("KLAMM_CHURN_GROUP"),
        var("KLAMM_CHURN_STRATEGY"),
    );
    let log_path = PathBuf::from(var("KLAMM_CHURN_LOG"));
    let stop = PathBuf::from(var("KLAMM_CHURN_STOP"));
    let name = var("KLAMM_CHURN_NAME");
    let seed: u64 = var("KLAMM_CHURN_SEED").parse().expect("seed");
    let log = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log"),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        let mut slots = Vec::new();
        for m in 0..MEMBERS_PER_PROCESS {
            let (brokers, topic, group, strategy) = (brokers.clone(), topic.clone(), group.clone(), strategy.clone());
            let (log, stop, name) = (log.clone(), stop.clone(), name.clone());
            let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(m as u64 + 1) | 1);
            slots.push(tokio::spawn(async move {
                let mut round = 0;
                while !stop.exists() {
                    round += 1;
                    let member = format!("{name}-m{m}-r{round}");
                    let write = |v: Value| {
                        let mut f = log.lock().unwrap();
                        writeln!(f, "{v}").expect("log write");
                        f.flush().expect("log flush");
                    };
                    let cfg = member_config(&brokers, &group, &strategy);
                    let client = Client::connect(cfg).await.expect("connect");
                    let mut g = GroupConsumer::new(client.clone(), [&topic]).await.expect("member");
                    let until = tokio::time::Instant::now() + rng.between(4_000, 15_000);
                    while tokio::time::Instant::now() < until && !stop.exists() {
                        let ev = match tokio::time::timeout(Duration::from_millis(300), g.recv()).await {
                            Err(_) => continue,
                            Ok(None) => break,
                            Ok(Some(ev)) => ev.expect("group event"),
                        };
                        let generation = g.generation().id;
                        match ev {
                            GroupEvent::Records(b) => {
                                for r in b.iter() {
                                    write(json!({"ts": now_ms(), "member": member, "ev": "rec",
                                        "p": r.partition, "off": r.offset, "gen": generation}));
                                }
                            }
                            GroupEvent::Assigned(tps) => write(json!({"ts": now_ms(), "member": member,
                                "ev": "assigned", "ps": tps.iter().map(|t| t.partition).collect::<Vec<_>>(), "gen": generation})),
                            GroupEvent::Revoked(tps) => write(json!({"ts": now_ms(), "member": member,
                                "ev": "revoked", "ps": tps.iter().map(|t| t.partition).collect::<Vec<_>>(), "gen": generation})),
                            GroupEvent::Lost { partitions, .. } => write(json!({"ts": now_ms(), "member": member,
                                "ev": "lost", "ps": partitions.iter().map(|t| t.partition).collect::<Vec<_>>(), "gen": generation})),
                            _ => {}
                        }
                    }
                    // A clean leave: the close revokes everything (and
                    // commits) before it returns. The application takes
                    // no record once it calls close, so its ownership ends
                    // here (the next owner may be assigned before close
                    // returns).
                    write(json!({"ts": now_ms(), "member": member, "ev": "closed"}));
                    g.close().await.expect("close");
                    client.close().await;
                    tokio::time::sleep(rng.between(200, 3_000)).await;
                }
            }));
        }
        for s in slots {
            s.await.expect("member slot");
        }
    });
}

/// One processing of a record, or an ownership interval.
#[derive(Debug, Clone)]
struct Interval {
    member: String,
    process: String,
    partition: i32,
    from: u64,
    to: u64,
    /// Ended by a kill or a loss rather than a revocation or close.
    crashed: bool,
}

#[derive(Debug, Default)]
struct Figures {
    members: BTreeSet<String>,
    rebalances: BTreeSet<(String, i64)>,
    records_produced: i64,
    processings: usize,
    duplicates: usize,
    kills: usize,
    violations: Vec<String>,
}

fn run_churn(strategy: &str, protocol_note: &str) {
    let secs: u64 = std::env::var("KLAMM_CHURN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    support::run_within(secs + 240, async move {
        // The three-node cluster: the group coordinator, the partition
        // leaders and the members' connections spread over three brokers.
        let Some(cluster) = support::cluster::cluster() else {
            return;
        };
        let addr = cluster.bootstrap.clone();
        let seed: u64 = std::env::var("KLAMM_CHURN_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_2026);
        let client = Client::connect(cluster_config(&addr))
            .await
            .expect("connect");
        let topic = support::unique_topic(&format!("klamm-churn-{}", strategy.replace(':', "-")));
        create_topic(&client, &topic, PARTITIONS).await;
        let group = support::unique_topic("klamm-churn");
        if strategy.starts_with("kip848:") {
            shorten_kip848_timeouts(&client, &group).await;
        }
        let dir = std::env::temp_dir().join(support::unique_topic("klamm-churn-logs"));
        std::fs::create_dir_all(&dir).expect("log dir");
        let stop = dir.join("stop");

        // The producer: a numbered sequence, round robin over partitions.
        let producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let prod_task = {
            let (producer, topic, producing) = (producer.clone(), topic.clone(), producing.clone());
            tokio::spawn(async move {
                let mut n: i64 = 0;
                while producing.load(std::sync::atomic::Ordering::Relaxed) {
                    for _ in 0..20 {
                        let p = (n % PARTITIONS as i64) as i32;
                        let f = producer
                            .send(
                                ProducerRecord::new(topic.clone(), n.to_string()).with_partition(p),
                            )
                            .await
                            .expect("send");
                        drop(f);
                        n += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                producer.flush().await.expect("flush");
                n
            })
        };

        // Committed offsets, sampled: never backwards.
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let samples_task = {
            let (client, group, topic, sampling) = (
                client.clone(),
                group.clone(),
                topic.clone(),
                sampling.clone(),
            );
            tokio::spawn(async move {
                let om = OffsetManager::new(client, &group);
                let tps: Vec<TopicPartition> = (0..PARTITIONS)
                    .map(|p| TopicPartition::new(&topic, p))
                    .collect();
                let mut samples: Vec<(u64, BTreeMap<i32, i64>)> = Vec::new();
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(c) = om.fetch(&tps).await {
                        samples.push((
                            now_ms(),
                            c.into_iter()
                                .map(|(tp, o)| (tp.partition, o.offset))
                                .collect(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                samples
            })
        };

        let spawn = |name: &str, seed: u64| -> Child {
            Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "churn_member_process",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("KLAMM_CHURN_BROKERS", &addr)
                .env("KLAMM_CHURN_TOPIC", &topic)
                .env("KLAMM_CHURN_GROUP", &group)
                .env("KLAMM_CHURN_STRATEGY", strategy)
                .env("KLAMM_CHURN_LOG", dir.join(format!("{name}.log")))
                .env("KLAMM_CHURN_STOP", &stop)
                .env("KLAMM_CHURN_NAME", name)
                .env("KLAMM_CHURN_SEED", seed.to_string())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.join(format!("{name}.err")))
                        .map_or_else(|_| Stdio::null(), Stdio::from),
                )
                .spawn()
                .expect("member process")
        };
        let mut rng = Rng(seed | 1);
        let names = ["p0", "p1"];
        let mut incarnation = [0u32; 2];
        let mut children: Vec<Child> = (0..2)
            .map(|i| spawn(&format!("{}i{}", names[i], incarnation[i]), rng.next()))
            .collect();
        let mut kills: Vec<(String, u64)> = Vec::new(); // (process incarnation, kill time)
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let wait = rng.between(12_000, 25_000);
            if tokio::time::Instant::now() + wait >= end {
                break;
            }
            tokio::time::sleep(wait).await;
            let i = (rng.next() % 2) as usize;
            let who = format!("{}i{}", names[i], incarnation[i]);
            let at = now_ms();
            children[i].kill().expect("SIGKILL"); // std's kill is SIGKILL
            children[i].wait().expect("reaped");
            kills.push((who, at));
            tokio::time::sleep(rng.between(500, 2_000)).await;
            incarnation[i] += 1;
            children[i] = spawn(&format!("{}i{}", names[i], incarnation[i]), rng.next());
        }
        tokio::time::sleep_until(end).await;
        producing.store(false, std::sync::atomic::Ordering::Relaxed);
        let produced = prod_task.await.expect("producer task");
        producer.close().await.expect("producer close");
        // Let the members read what is left, then stop them cleanly.
        tokio::time::sleep(Duration::from_secs(5)).await;
        std::fs::write(&stop, b"stop").expect("stop file");
        for (i, mut c) in children.into_iter().enumerate() {
            let status = c.wait().expect("member process exit");
            let name = format!("{}i{}", names[i], incarnation[i]);
            assert!(
                status.success(),
                "member process {name} failed: {status}; its stderr:\n{}",
                std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default()
            );
        }
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let samples = samples_task.await.expect("samples");

        // Whatever the members left unread, a last member reads (from the
        // group's commits), so "at least once" covers every record.
        let last_name = "final";
        let cfg = member_config(&addr, &group, strategy);
        let mut g = GroupConsumer::new(Client::connect(cfg).await.expect("final"), [&topic])
            .await
            .expect("final member");
        let mut final_log = std::fs::File::create(dir.join("final.log")).expect("final log");
        let mut seen_final = 0usize;
        let ends: BTreeMap<i32, i64> = {
            let mut m = BTreeMap::new();
            for p in 0..PARTITIONS {
                m.insert(
                    p,
                    client
                        .list_offsets(&topic, p, klamm::client::OffsetSpec::Newest)
                        .await
                        .expect("end"),
                );
            }
            m
        };
        let om = OffsetManager::new(client.clone(), &group);
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(&topic, p))
            .collect();
        let committed_now = om.fetch(&tps).await.expect("committed");
        let remaining: i64 = ends
            .iter()
            .map(|(p, e)| {
                e - committed_now
                    .get(&TopicPartition::new(&topic, *p))
                    .map_or(0, |o| o.offset)
            })
            .sum();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let member = format!("{last_name}-m0-r1");
        while (seen_final as i64) < remaining && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), g.recv()).await {
                Ok(Some(Ok(GroupEvent::Records(b)))) => {
                    for r in b.iter() {
                        seen_final += 1;
                        writeln!(final_log, "{}", json!({"ts": now_ms(), "member": member, "ev": "rec", "p": r.partition, "off": r.offset, "gen": g.generation().id})).expect("write");
                    }
                }
                Ok(Some(Ok(GroupEvent::Assigned(tps)))) => {
                    writeln!(final_log, "{}", json!({"ts": now_ms(), "member": member, "ev": "assigned", "ps": tps.iter().map(|t| t.partition).collect::<Vec<_>>(), "gen": g.generation().id})).expect("write");
                }
                Ok(Some(Ok(_))) | Err(_) => {}
                Ok(Some(Err(e))) => panic!("final member: {e}"),
                Ok(None) => break,
            }
        }
        writeln!(
            final_log,
            "{}",
            json!({"ts": now_ms(), "member": member, "ev": "closed"})
        )
        .expect("write");
        g.close().await.expect("final close");
        drop(final_log);

        let figures = check(&dir, &kills, &samples, &ends, produced);
        eprintln!(
            "churn {strategy}{protocol_note}: {} s, {} members, {} rebalances seen (member, generation), {} kills, {} records produced, {} processed, {} duplicates, {} violations",
            secs,
            figures.members.len(),
            figures
                .rebalances
                .iter()
                .map(|(_, g)| *g)
                .collect::<BTreeSet<_>>()
                .len(),
            figures.kills,
            figures.records_produced,
            figures.processings,
            figures.duplicates,
            figures.violations.len()
        );
        assert!(
            figures.violations.is_empty(),
            "violations:\n{}",
            figures.violations.join("\n")
        );
        assert!(figures.kills >= 1 || secs < 30, "the run killed no process");
        assert!(
            figures.members.len() >= 4,
            "members joined and left: {:?}",
            figures.members
        );
        let _ = std::fs::remove_dir_all(&dir);
        client.close().await;
    });
}

/// Reads every log and checks the four properties; returns the figures.
fn check(
    dir: &Path,
    kills: &[(String, u64)],
    samples: &[(u64, BTreeMap<i32, i64>)],
    ends: &BTreeMap<i32, i64>,
    produced: i64,
) -> Figures {
    let mut f = Figures {
        records_produced: produced,
        kills: kills.len(),
        ..Default::default()
    };
    let mut lines: Vec<(String, Value)> = Vec::new();
    for entry in std::fs::read_dir(dir).expect("logs") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        let process = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read log");
        for line in text.lines() {
            // A line cut by SIGKILL mid-write is not a record of anything.
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                lines.push((process.clone(), v));
            }
        }
    }
    lines.sort_by_key(|(_, v)| v["ts"].as_u64().unwrap_or(0));
    let violations = check_lines(&lines, kills, samples, ends, &mut f);
    f.violations = violations;
    f
}

/// The checks proper, on log lines ordered by time (separate so that the
/// controls below can feed it forged logs).
fn check_lines(
    lines: &[(String, Value)],
    kills: &[(String, u64)],
    samples: &[(u64, BTreeMap<i32, i64>)],
    ends: &BTreeMap<i32, i64>,
    f: &mut Figures,
) -> Vec<String> {
    let mut violations = Vec::new();
    let kill_of: BTreeMap<&str, u64> = kills.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    // Ownership intervals.
    let mut open: BTreeMap<(String, i32), (u64, String)> = BTreeMap::new();
    let mut intervals: Vec<Interval> = Vec::new();
    let mut processed: BTreeMap<(i32, i64), Vec<(String, u64)>> = BTreeMap::new();
    let mut last_of_member: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut process_of: BTreeMap<String, String> = BTreeMap::new();
    for (process, v) in lines {
        let member = v["member"].as_str().unwrap_or_default().to_string();
        let ts = v["ts"].as_u64().unwrap_or(0);
        f.members.insert(member.clone());
        process_of.insert(member.clone(), process.clone());
        if let Some(g) = v["gen"].as_i64() {
            f.rebalances.insert((member.clone(), g));
        }
        let ps: Vec<i32> = v["ps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_i64())
                    .map(|p| p as i32)
                    .collect()
            })
            .unwrap_or_default();
        match v["ev"].as_str().unwrap_or_default() {
            "assigned" => {
                for p in ps {
                    open.insert((member.clone(), p), (ts, process.clone()));
                }
            }
            ev @ ("revoked" | "lost") => {
                for p in ps {
                    if let Some((from, process)) = open.remove(&(member.clone(), p)) {
                        intervals.push(Interval {
                            member: member.clone(),
                            process,
                            partition: p,
                            from,
                            to: ts,
                            crashed: ev == "lost",
                        });
                    }
                }
            }
            "closed" => {
                let keys: Vec<_> = open.keys().filter(|(m, _)| *m == member).cloned().collect();
                for k in keys {
                    if let Some((from, process)) = open.remove(&k) {
                        intervals.push(Interval {
                            member: member.clone(),
                            process,
                            partition: k.1,
                            from,
                            to: ts,
                            crashed: false,
                        });
                    }
                }
            }
            "rec" => {
                let (p, off) = (
                    v["p"].as_i64().unwrap_or(-1) as i32,
                    v["off"].as_i64().unwrap_or(-1),
                );
                f.processings += 1;
                if !open.contains_key(&(member.clone(), p)) {
                    violations.push(format!(
                        "{member} processed {p}@{off} without owning partition {p}"
                    ));
                }
                processed
                    .entry((p, off))
                    .or_default()
                    .push((member.clone(), ts));
                last_of_member.insert((member.clone(), p), off);
            }
            _ => {}
        }
    }
    // Intervals still open end with their process's kill (or the end).
    for ((member, p), (from, process)) in open {
        let to = kill_of.get(process.as_str()).copied();
        intervals.push(Interval {
            member,
            process,
            partition: p,
            from,
            to: to.unwrap_or(u64::MAX),
            crashed: to.is_some(),
        });
    }
    // 1. No partition owned by two members at once.
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.partition == b.partition && a.member != b.member && a.from < b.to && b.from < a.to
            {
                violations.push(format!(
                    "partition {} owned by {} [{}, {}] and {} [{}, {}] at once",
                    a.partition, a.member, a.from, a.to, b.member, b.from, b.to
                ));
            }
        }
    }
    // 2. Committed offsets never go backwards.
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (ts, offsets) in samples {
        for (p, o) in offsets {
            if let Some(prev) = last.get(p) {
                if o < prev {
                    violations.push(format!(
                        "committed offset of {p} went back from {prev} to {o} at {ts}"
                    ));
                }
            }
            last.insert(*p, *o);
        }
    }
    // 3. Every record processed at least once.
    for (p, end) in ends {
        let missing: Vec<i64> = (0..*end)
            .filter(|o| !processed.contains_key(&(*p, *o)))
            .collect();
        if !missing.is_empty() {
            violations.push(format!(
                "partition {p}: {} records never processed, first {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            ));
        }
    }
    // 4. Duplicates only after a crash, inside its uncommitted window.
    for ((p, off), by) in &processed {
        if by.len() < 2 {
            continue;
        }
        f.duplicates += by.len() - 1;
        for pair in by.windows(2) {
            let (first, _) = &pair[0];
            let crashed = intervals
                .iter()
                .find(|i| &i.member == first && i.partition == *p && i.crashed);
            let Some(crash) = crashed else {
                violations.push(format!(
                    "{p}@{off} processed by {first} and again by {} without a crash",
                    pair[1].0
                ));
                continue;
            };
            let committed_before = samples
                .iter()
                .filter(|(ts, _)| *ts <= crash.to)
                .filter_map(|(_, o)| o.get(p).copied())
                .next_back()
                .unwrap_or(0);
            let last_done = last_of_member
                .get(&(first.clone(), *p))
                .copied()
                .unwrap_or(-1);
            if *off < committed_before || *off > last_done {
                violations.push(format!(
                    "{p}@{off} processed twice outside the uncommitted window [{committed_before}, {last_done}] of {} ({})",
                    first, crash.process
                ));
            }
        }
    }
    violations
}

#[test]
fn churn_eager_range() {
    run_churn("range", " (classic, eager)");
}

#[test]
fn churn_cooperative_sticky() {
    run_churn("cooperative-sticky", " (classic, cooperative)");
}

#[test]
fn churn_kip848() {
    run_churn(
        "kip848:uniform",
        " (KIP-848, the broker's uniform assignor)",
    );
}

/// Controls: the checker reports each kind of violation in forged logs.
#[test]
fn churn_checker_reports_each_violation() {
    let l = |member: &str, ts: u64, ev: &str, extra: Value| {
        let mut v = json!({"ts": ts, "member": member, "ev": ev});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        ("proc".to_string(), v)
    };
    let ends: BTreeMap<i32, i64> = [(0, 2)].into_iter().collect();
    let run = |lines: Vec<(String, Value)>,
               kills: &[(String, u64)],
               samples: &[(u64, BTreeMap<i32, i64>)]| {
        check_lines(&lines, kills, samples, &ends, &mut Figures::default())
    };
    // A clean handover: no violation.
    let clean = vec![
        l("a", 1, "assigned", json!({"ps": [0]})),
        l("a", 2, "rec", json!({"p": 0, "off": 0})),
        l("a", 3, "revoked", json!({"ps": [0]})),
        l("b", 4, "assigned", json!({"ps": [0]})),
        l("b", 5, "rec", json!({"p": 0, "off": 1})),
        l("b", 6, "closed", json!({})),
    ];
    assert!(
        run(clean.clone(), &[], &[]).is_empty(),
        "{:?}",
        run(clean, &[], &[])
    );
    // Owned twice at once.
    let overlap = vec![
        l("a", 1, "assigned", json!({"ps": [0]})),
        l("b", 2, "assigned", json!({"ps": [0]})),
        l("a", 3, "rec", json!({"p": 0, "off": 0})),
        l("b", 3, "rec", json!({"p": 0, "off": 1})),
        l("a", 4, "closed", json!({})),
        l("b", 5, "closed", json!({})),
    ];
    assert!(run(overlap, &[], &[]).iter().any(|v| v.contains("at once")));
    // A record missed.
    let missed = vec![
        l("a", 1, "assigned", json!({"ps": [0]})),
        l("a", 2, "rec", json!({"p": 0, "off": 0})),
        l("a", 3, "closed", json!({})),
    ];
    assert!(
        run(missed, &[], &[])
            .iter()
            .any(|v| v.contains("never processed"))
    );
    // A duplicate without a crash.
    let dup = vec![
        l("a", 1, "assigned", json!({"ps": [0]})),
        l("a", 2, "rec", json!({"p": 0, "off": 0})),
        l("a", 3, "rec", json!({"p": 0, "off": 1})),
        l("a", 4, "revoked", json!({"ps": [0]})),
        l("b", 5, "assigned", json!({"ps": [0]})),
        l("b", 6, "rec", json!({"p": 0, "off": 1})),
        l("b", 7, "closed", json!({})),
    ];
    assert!(
        run(dup.clone(), &[], &[])
            .iter()
            .any(|v| v.contains("without a crash"))
    );
    // The same duplicate after a kill is allowed, inside the window...
    let mut crashed = dup.clone();
    crashed.remove(3); // no revocation: the process was killed
    let kills = vec![("proc".to_string(), 4)];
    let samples: Vec<(u64, BTreeMap<i32, i64>)> = vec![(3, [(0, 1)].into_iter().collect())];
    // (the killed member's interval ends at the kill, before b's)
    let v = run(crashed.clone(), &kills, &samples);
    assert!(v.is_empty(), "{v:?}");
    // ...but not below the last commit seen before the kill.
    let samples_late: Vec<(u64, BTreeMap<i32, i64>)> = vec![(3, [(0, 2)].into_iter().collect())];
    assert!(
        run(crashed, &kills, &samples_late)
            .iter()
            .any(|v| v.contains("outside the uncommitted window"))
    );
    // Committed offsets going back.
    let back: Vec<(u64, BTreeMap<i32, i64>)> = vec![
        (1, [(0, 5)].into_iter().collect()),
        (2, [(0, 3)].into_iter().collect()),
    ];
    assert!(
        run(clean_lines(&l), &[], &back)
            .iter()
            .any(|v| v.contains("went back"))
    );
}

/// A forged log line: (process, JSON).
type Line = (String, Value);

fn clean_lines(l: &dyn Fn(&str, u64, &str, Value) -> Line) -> Vec<Line> {
    vec![
        l("a", 1, "assigned", json!({"ps": [0]})),
        l("a", 2, "rec", json!({"p": 0, "off": 0})),
        l("a", 2, "rec", json!({"p": 0, "off": 1})),
        l("a", 3, "closed", json!({})),
    ]
}
