//! Mixed consumer groups on Apache Kafka 4.4 (the single node): klamm's
//! `GroupConsumer` members and the peers' `group-consume` members — the
//! Apache Kafka Java client (kafka-clients 4.4.0, `peers/java`) and Sarama
//! (v1.61.1, `peers/sarama`) — in ONE classic group, for the range,
//! roundrobin and cooperative-sticky assignors. Sarama v1.61.1 implements
//! cooperative-sticky (KIP-429 in `ConsumerGroup`), so all three groups
//! have all three clients: two klamm members, one Java, one Sarama.
//!
//! Each test: a topic of 12 partitions gets 150 records per partition; the
//! four members join and read them; once the group has settled (every
//! partition owned, three each, no change for 1.5 s) 50 more per partition
//! are written, so every member processes some; once they are read, one
//! member leaves while another 100 per partition are written in small
//! rounds, so records flow through the rebalance (3,600 records in all); the three left settle and read the
//! rest; then they leave one at a time, each into a settled group (a
//! member stopped during a rebalance may rightly fail its last commit, so
//! the end is kept orderly, and every generation is checked). Every member logs what the group did to it and what
//! it processed and committed (klamm's in-process, the peers' as JSON lines,
//! peers/PATTERN.md "Group members"), and `support::ownership::check`
//! replays the merged logs: no partition owned by two members at once
//! (eager: everything revoked before any assignment; cooperative: only
//! moved partitions revoked), every record processed with its value,
//! duplicates only across an ownership change and only of records not yet
//! committed then, commits only by the owner and never beyond what was
//! processed. The member that leaves differs per test: Java (range),
//! Sarama (roundrobin), klamm (cooperative-sticky).
//!
//! A KIP-848 group (`group.protocol=consumer`, two klamm and two Java
//! members, the broker's `uniform` assignor) runs the same way.
//!
//! The `checker_*` tests are the controls: crafted logs that break one rule
//! each, which the checker must reject, and a clean one it must accept.
//!
//! Needs `KLAMM_TEST_BROKERS`, `KLAMM_JAVA_PEER` and `KLAMM_SARAMA_PEER`
//! (`scripts/test` exports them); without them these tests fail unless
//! `KLAMM_SKIP_BROKER_TESTS=1`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::{Client, Config};
use support::group_members::{KlammMember, PeerMember, SharedLog, snapshot};
use support::interop_peers::PeerProgram;
use support::ownership::{
    Checkpoint, MemberLog, Protocol, Report, Rule, Rules, Tp, What, check, now_us, owners_at,
    unsettled,
};
use support::read::config;
use support::topics::create_topic;

const PARTITIONS: i32 = 12;
/// Records per partition written before the members start.
const BEFORE: usize = 150;
/// Records per partition written once all four share the partitions, so
/// that each member has records to process before one leaves.
const AMONG_FOUR: usize = 50;
/// Records per partition written while one member leaves, in rounds.
const DURING: usize = 100;
const ROUNDS: usize = 5;
/// How long the group must stay unchanged to count as settled.
const SETTLED_FOR: Duration = Duration::from_millis(1500);
/// Each peer's bound on its whole run (`--timeout-ms`).
const PEER_TIMEOUT: Duration = Duration::from_secs(150);

/// A klamm member of `group`: the short timings of the group tests (the
/// peers get the same), offsets from the start, auto-commit every 500 ms.
fn member_config(addr: &str, group: &str, strategy: &str, client_id: &str) -> Config {
    let mut c = config(addr);
    c.net.client_id = client_id.to_string();
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(20);
    c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
    c.consumer.auto_commit_interval = Duration::from_millis(500);
    c.consumer.fetch_max_wait = Duration::from_millis(100);
    c.consumer.partition_assignment_strategy = vec![strategy.to_string()];
    c
}

/// The Java peer's arguments for a member of a `consumer`-protocol group
/// (KIP-848) with the broker's `assignor`: no session or heartbeat
/// settings, which are the broker's under that protocol.
fn consumer_protocol_args(
    addr: &str,
    group: &str,
    topic: &str,
    assignor: &str,
    name: &str,
) -> Vec<String> {
    [
        "--bootstrap",
        addr,
        "--group",
        group,
        "--topics",
        topic,
        "--protocol",
        "consumer",
        "--remote-assignor",
        assignor,
        "--max-poll-interval-ms",
        "60000",
        "--client-id",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The arguments both peers take for a member of a classic `group`.
fn peer_args(addr: &str, group: &str, topic: &str, strategy: &str, name: &str) -> Vec<String> {
    [
        "--bootstrap",
        addr,
        "--group",
        group,
        "--topics",
        topic,
        "--strategy",
        strategy,
        "--session-timeout-ms",
        "6000",
        "--heartbeat-interval-ms",
        "500",
        "--max-poll-interval-ms",
        "20000",
        "--client-id",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Writes records `from..from + n` of every partition (value `p:i`) and
/// returns them by (partition, offset) as the broker acknowledged them.
async fn produce(
    producer: &AsyncProducer,
    topic: &str,
    from: usize,
    n: usize,
) -> BTreeMap<(Tp, i64), String> {
    let mut pending = Vec::new();
    for i in from..from + n {
        for p in 0..PARTITIONS {
            let value = format!("{p}:{i}");
            let r = ProducerRecord::new(topic.to_string(), value.clone()).with_partition(p);
            pending.push((value, producer.send(r).await.expect("send")));
        }
    }
    let mut out = BTreeMap::new();
    for (value, f) in pending {
        let md = f.await.expect("delivered");
        out.insert(((topic.to_string(), md.partition), md.offset), value);
    }
    out
}

/// Distinct records processed by the members so far.
fn distinct_records(logs: &[MemberLog]) -> usize {
    let mut seen = BTreeSet::new();
    for l in logs {
        for e in &l.events {
            if let What::Record { tp, offset, .. } = &e.what {
                seen.insert((tp.clone(), *offset));
            }
        }
    }
    seen.len()
}

/// Ownership events (assignments, revocations, losses) so far.
fn ownership_events(logs: &[MemberLog]) -> usize {
    logs.iter()
        .flat_map(|l| &l.events)
        .filter(|e| {
            matches!(
                e.what,
                What::Assigned { .. } | What::Revoked { .. } | What::Lost { .. }
            )
        })
        .count()
}

/// Waits until every partition is owned by one of `members`, evenly, and
/// `records` distinct records were processed, with no ownership event for
/// [`SETTLED_FOR`]; the checkpoint is the start of that quiet time.
async fn settle(
    logs: &[SharedLog],
    members: &[String],
    partitions: &BTreeSet<Tp>,
    records: usize,
    limit: Duration,
    label: &str,
    describe: &dyn Fn() -> String,
) -> Checkpoint {
    let deadline = tokio::time::Instant::now() + limit;
    let mut quiet_since: Option<(i64, usize)> = None;
    loop {
        let now = now_us();
        let snap = snapshot(logs);
        let events = ownership_events(&snap);
        let owners = owners_at(&snap, now);
        let why = unsettled(&owners, members, partitions).or_else(|| {
            let n = distinct_records(&snap);
            (n < records).then(|| format!("{n} of {records} records processed"))
        });
        match (why, quiet_since) {
            (None, Some((since, n))) if n == events => {
                if now - since >= SETTLED_FOR.as_micros() as i64 {
                    return Checkpoint {
                        ts_us: since,
                        label: label.to_string(),
                        members: members.to_vec(),
                    };
                }
            }
            (None, _) => quiet_since = Some((now, events)),
            (Some(why), _) => {
                quiet_since = None;
                if tokio::time::Instant::now() > deadline {
                    panic!(
                        "{label}: the group did not settle within {limit:?}: {why}\nowners: \
                         {owners:?}\n{}",
                        describe()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `records` distinct records were processed (60 s at most).
async fn wait_processed(logs: &[SharedLog], records: usize, describe: &dyn Fn() -> String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = distinct_records(&snapshot(logs));
        if n >= records {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {n} of {records} records processed after 60 s\n{}",
            describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One member of the mixed group.
enum Member {
    Klamm(KlammMember),
    /// A peer, and its summary once it stopped.
    Peer(PeerMember, Option<serde_json::Value>),
}

impl Member {
    fn name(&self) -> &str {
        match self {
            Member::Klamm(k) => &k.name,
            Member::Peer(p, _) => &p.name,
        }
    }

    fn log(&self) -> SharedLog {
        match self {
            Member::Klamm(k) => k.log(),
            Member::Peer(p, _) => p.log(),
        }
    }

    /// Stops the member (it commits and leaves the group) and waits for it.
    async fn stop(&mut self) {
        match self {
            Member::Klamm(k) => k.stop().await,
            Member::Peer(p, summary) => {
                p.stop();
                *summary = Some(p.wait(Duration::from_secs(30)).await);
            }
        }
    }

    /// What went wrong with it: klamm's errors and losses; a peer's summary
    /// that is not ok, or its exit status.
    fn problems(&self) -> Vec<String> {
        match self {
            Member::Klamm(k) => k.problems(),
            Member::Peer(p, summary) => {
                let mut out = Vec::new();
                match summary {
                    Some(s) if s["ok"] == true => {}
                    Some(s) => out.push(format!("summary not ok: {s}")),
                    None => out.push("not stopped".into()),
                }
                if summary.is_some() && !p.exited_ok() {
                    out.push("exit status not 0".into());
                }
                out
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Member::Klamm(k) => format!("{}: problems {:?}", k.name, k.problems()),
            Member::Peer(p, _) => format!("{}:\n{}", p.name, p.describe()),
        }
    }
}

fn describe(members: &[Member]) -> String {
    members
        .iter()
        .map(Member::describe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a member of the mixed group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Klamm,
    Java,
    Sarama,
}

/// The classic groups' members.
const CLASSIC_ROSTER: &[(&str, Kind)] = &[
    ("klamm-1", Kind::Klamm),
    ("klamm-2", Kind::Klamm),
    ("java", Kind::Java),
    ("sarama", Kind::Sarama),
];

/// Runs the group of `roster` for `strategy` (a classic assignor, or under
/// [`Protocol::Consumer`] the broker's assignor) and checks it; the member
/// named `leaver` leaves midway, then the others leave one at a time, each
/// once the group has settled again.
fn mixed_group(
    strategy: &'static str,
    protocol: Protocol,
    leaver: &'static str,
    roster: &'static [(&'static str, Kind)],
) {
    let Some(addr) = support::broker() else {
        return;
    };
    let needs = |k: Kind| roster.iter().any(|(_, kind)| *kind == k);
    let java = if needs(Kind::Java) {
        let Some(p) = PeerProgram::java() else {
            return;
        };
        Some(p)
    } else {
        None
    };
    let sarama = if needs(Kind::Sarama) {
        let Some(p) = PeerProgram::sarama() else {
            return;
        };
        Some(p)
    } else {
        None
    };
    support::run_within(300, async move {
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic(&format!("group-interop-{strategy}"));
        let group = support::unique_topic(&format!("gi-{strategy}"));
        create_topic(&client, &topic, PARTITIONS).await;
        let partitions: BTreeSet<Tp> = (0..PARTITIONS).map(|p| (topic.clone(), p)).collect();
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let mut produced = produce(&producer, &topic, 0, BEFORE).await;

        let started = std::time::Instant::now();
        let mut members = Vec::new();
        for (name, kind) in roster {
            let member = match kind {
                Kind::Klamm => {
                    // Under the consumer protocol `strategy` names the
                    // broker's assignor; the classic list keeps its default.
                    let classic = if protocol == Protocol::Consumer {
                        "range"
                    } else {
                        strategy
                    };
                    let mut cfg = member_config(&addr, &group, classic, name);
                    if protocol == Protocol::Consumer {
                        cfg.consumer.group_protocol = klamm::config::GroupProtocol::Consumer;
                        cfg.consumer.group_remote_assignor = Some(strategy.to_string());
                    }
                    let c = Client::connect(cfg).await.expect("connect a klamm member");
                    Member::Klamm(KlammMember::start(name, c, &[&topic]).await)
                }
                Kind::Java => {
                    let program = java.as_ref().expect("the Java peer");
                    let args = if protocol == Protocol::Consumer {
                        consumer_protocol_args(&addr, &group, &topic, strategy, name)
                    } else {
                        let mut a = peer_args(&addr, &group, &topic, strategy, name);
                        a.extend(["--protocol".into(), "classic".into()]);
                        a
                    };
                    Member::Peer(PeerMember::start(program, name, &args, PEER_TIMEOUT), None)
                }
                Kind::Sarama => {
                    let program = sarama.as_ref().expect("the Sarama peer");
                    let args = peer_args(&addr, &group, &topic, strategy, name);
                    Member::Peer(PeerMember::start(program, name, &args, PEER_TIMEOUT), None)
                }
            };
            members.push(member);
        }
        let logs: Vec<SharedLog> = members.iter().map(Member::log).collect();
        let mut present: Vec<String> = members.iter().map(|m| m.name().to_string()).collect();
        let mut checkpoints = vec![
            settle(
                &logs,
                &present,
                &partitions,
                produced.len(),
                Duration::from_secs(60),
                "all four members",
                &|| describe(&members),
            )
            .await,
        ];

        // Records for all four, then one member leaves while more arrive.
        produced.extend(produce(&producer, &topic, BEFORE, AMONG_FOUR).await);
        wait_processed(&logs, produced.len(), &|| describe(&members)).await;
        let left_at = now_us();
        let more = {
            let (producer, topic) = (producer.clone(), topic.clone());
            tokio::spawn(async move {
                let mut out = BTreeMap::new();
                let per = DURING / ROUNDS;
                for r in 0..ROUNDS {
                    let from = BEFORE + AMONG_FOUR + r * per;
                    out.extend(produce(&producer, &topic, from, per).await);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                out
            })
        };
        let i = present
            .iter()
            .position(|n| n == leaver)
            .expect("the leaver");
        members[i].stop().await;
        present.remove(i);
        produced.extend(more.await.expect("producer task"));
        let after_leave = settle(
            &logs,
            &present,
            &partitions,
            produced.len(),
            Duration::from_secs(60),
            &format!("after {leaver} left"),
            &|| describe(&members),
        )
        .await;
        let settled_after_leave = after_leave.ts_us;
        checkpoints.push(after_leave);

        // The others leave one at a time, each into a settled group.
        while let Some(name) = present.first().cloned() {
            let i = members
                .iter()
                .position(|m| m.name() == name)
                .expect("member");
            members[i].stop().await;
            present.remove(0);
            if !present.is_empty() {
                checkpoints.push(
                    settle(
                        &logs,
                        &present,
                        &partitions,
                        produced.len(),
                        Duration::from_secs(60),
                        &format!("after {name} left at the end"),
                        &|| describe(&members),
                    )
                    .await,
                );
            }
        }
        producer.close().await.expect("close the producer");
        let elapsed = started.elapsed();
        for m in &members {
            assert!(
                m.problems().is_empty(),
                "{}: {:?}\n{}",
                m.name(),
                m.problems(),
                describe(&members)
            );
        }

        let snap = snapshot(&logs);
        let rules = Rules {
            protocol,
            partitions: partitions.clone(),
            exactly_once: false,
        };
        let report = check(&snap, &rules, &checkpoints, &produced);
        let generations_after_leave: BTreeSet<i32> = snap
            .iter()
            .flat_map(|l| &l.events)
            .filter(|e| e.ts_us > left_at && e.ts_us <= settled_after_leave)
            .filter_map(|e| match &e.what {
                What::Assigned { generation, .. } => Some(*generation),
                _ => None,
            })
            .collect();
        let summaries: Vec<(String, serde_json::Value)> = members
            .iter()
            .filter_map(|m| match m {
                Member::Peer(p, Some(s)) => Some((p.name.clone(), s.clone())),
                _ => None,
            })
            .collect();
        print_figures(strategy, &snap, &report, &produced, elapsed, &summaries);
        assert!(
            report.violations.is_empty(),
            "{strategy}: {} violations:\n{}\nthe group's events (records left out): {}",
            report.violations.len(),
            report.describe(40),
            dump_timeline(strategy, &snap)
        );
        assert_eq!(
            distinct_records(&snap),
            produced.len(),
            "every record processed"
        );
        assert!(
            !generations_after_leave.is_empty(),
            "{strategy}: no member was assigned anything after {leaver} left: no rebalance"
        );
        if protocol != Protocol::Eager {
            // Incremental: the members that stay give nothing up when one
            // leaves; only the leaver's partitions move.
            for l in snap.iter().filter(|l| l.name != leaver) {
                let gave_up: Vec<&What> = l
                    .events
                    .iter()
                    .filter(|e| e.ts_us > left_at && e.ts_us <= settled_after_leave)
                    .map(|e| &e.what)
                    .filter(|w| matches!(w, What::Revoked { partitions } if !partitions.is_empty()))
                    .collect();
                assert!(
                    gave_up.is_empty(),
                    "{strategy}: {} gave up {gave_up:?} when {leaver} left",
                    l.name
                );
            }
        }
        for l in &snap {
            let (assigned, _) = l.rebalance_counts();
            assert!(assigned > 0, "{} was never assigned a partition", l.name);
            assert!(l.records() > 0, "{} processed no records", l.name);
        }
    });
}

/// Writes every member's events but records, merged in time order, to a
/// file for a failure message; returns its path.
fn dump_timeline(strategy: &str, logs: &[MemberLog]) -> String {
    let mut text = String::new();
    for (m, e) in support::ownership::merged(logs) {
        if !matches!(e.what, What::Record { .. }) {
            text += &format!("{} {:<8} {:?}\n", e.ts_us, logs[m].name, e.what);
        }
    }
    let path = std::env::temp_dir().join(format!(
        "group-interop-{strategy}-{}.log",
        std::process::id()
    ));
    match std::fs::write(&path, text) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not written to {}: {e})", path.display()),
    }
}

/// Records processed beyond the first time (all processings minus the
/// distinct records).
fn count_repeats(logs: &[MemberLog]) -> usize {
    logs.iter().map(MemberLog::records).sum::<usize>() - distinct_records(logs)
}

fn print_figures(
    strategy: &str,
    logs: &[MemberLog],
    report: &Report,
    produced: &BTreeMap<(Tp, i64), String>,
    elapsed: Duration,
    summaries: &[(String, serde_json::Value)],
) {
    eprintln!(
        "{strategy}: {} records produced, {} processings by {} members, {} duplicates \
         ({} repeats), generations {:?}, {} commits ({} partition offsets), {} violations, {:.1} s",
        produced.len(),
        report.processed,
        logs.len(),
        report.duplicates,
        count_repeats(logs),
        report.generations,
        report.commits,
        report.committed_offsets,
        report.violations.len(),
        elapsed.as_secs_f64()
    );
    for l in logs {
        let (a, r) = l.rebalance_counts();
        eprintln!(
            "  {}: {} records, {} assignments, {} revocations, {} commits",
            l.name,
            l.records(),
            a,
            r,
            l.commits()
        );
    }
    for (name, s) in summaries {
        eprintln!("  {name} summary: {s}");
    }
}

/// Range: eager; the Java member leaves midway.
#[test]
fn range_group_of_klamm_java_and_sarama_survives_java_leaving() {
    mixed_group("range", Protocol::Eager, "java", CLASSIC_ROSTER);
}

/// Roundrobin: eager; the Sarama member leaves midway.
#[test]
fn roundrobin_group_of_klamm_java_and_sarama_survives_sarama_leaving() {
    mixed_group("roundrobin", Protocol::Eager, "sarama", CLASSIC_ROSTER);
}

/// Cooperative-sticky: incremental; a klamm member leaves midway, and
/// only its partitions move.
#[test]
fn cooperative_sticky_group_of_klamm_java_and_sarama_survives_klamm_leaving() {
    mixed_group(
        "cooperative-sticky",
        Protocol::Cooperative,
        "klamm-2",
        CLASSIC_ROSTER,
    );
}

/// KIP-848 (`group.protocol=consumer`, the broker's `uniform` assignor):
/// two klamm members and two Java members (Sarama has no consumer-protocol
/// member); a Java member leaves midway, and only its partitions move.
/// The broker's timings apply (5 s heartbeats on Kafka 4.4's defaults), so
/// each step of a rebalance takes seconds.
#[test]
fn kip848_group_of_klamm_and_java_survives_java_leaving() {
    mixed_group(
        "uniform",
        Protocol::Consumer,
        "java-1",
        &[
            ("klamm-1", Kind::Klamm),
            ("java-1", Kind::Java),
            ("klamm-2", Kind::Klamm),
            ("java-2", Kind::Java),
        ],
    );
}

/// The controls of `support::ownership::check`: a clean crafted log it
/// accepts, and for each rule a log that breaks it, which it must reject.
/// The logs: topic `t` with two partitions of two records each (value
/// `p:offset`), members `a` and `b`.
mod checker_controls {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("t".to_string(), p)
    }

    fn assigned(ps: &[i32], generation: i32) -> What {
        What::Assigned {
            partitions: ps.iter().map(|p| tp(*p)).collect(),
            generation,
        }
    }

    fn revoked(ps: &[i32]) -> What {
        What::Revoked {
            partitions: ps.iter().map(|p| tp(*p)).collect(),
        }
    }

    fn record(p: i32, offset: i64) -> What {
        What::Record {
            tp: tp(p),
            offset,
            value: Some(format!("{p}:{offset}")),
        }
    }

    fn committed(offsets: &[(i32, i64)]) -> What {
        What::Committed {
            offsets: offsets.iter().map(|(p, o)| (tp(*p), *o)).collect(),
        }
    }

    fn log(name: &str, events: Vec<(i64, What)>) -> MemberLog {
        let mut l = MemberLog::new(name);
        for (ts, what) in events {
            l.push(ts, what);
        }
        l
    }

    fn produced() -> BTreeMap<(Tp, i64), String> {
        let mut out = BTreeMap::new();
        for p in 0..2 {
            for o in 0..2 {
                out.insert((tp(p), o), format!("{p}:{o}"));
            }
        }
        out
    }

    fn rules(protocol: Protocol) -> Rules {
        Rules {
            protocol,
            partitions: [tp(0), tp(1)].into_iter().collect(),
            exactly_once: false,
        }
    }

    fn checkpoint(ts_us: i64, members: &[&str]) -> Checkpoint {
        Checkpoint {
            ts_us,
            label: format!("at {ts_us}"),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// An eager handoff: `a` owns both partitions in generation 1, reads
    /// and commits offset 0 of each, revokes both; generation 2 gives 0 to
    /// `a` and 1 to `b`, which read offset 1 and commit.
    fn a_events() -> Vec<(i64, What)> {
        vec![
            (10, assigned(&[0, 1], 1)),
            (11, record(0, 0)),
            (12, record(1, 0)),
            (13, committed(&[(0, 1), (1, 1)])),
            (20, revoked(&[0, 1])),
            (30, assigned(&[0], 2)),
            (31, record(0, 1)),
            (40, committed(&[(0, 2)])),
            (41, revoked(&[0])),
        ]
    }

    fn b_events() -> Vec<(i64, What)> {
        vec![
            (30, assigned(&[1], 2)),
            (31, record(1, 1)),
            (40, committed(&[(1, 2)])),
            (41, revoked(&[1])),
        ]
    }

    /// Checks `a` and `b` (after `edit`) eagerly, with a checkpoint at 35.
    fn eager(edit: impl FnOnce(&mut Vec<(i64, What)>, &mut Vec<(i64, What)>)) -> Report {
        let (mut a, mut b) = (a_events(), b_events());
        edit(&mut a, &mut b);
        check(
            &[log("a", a), log("b", b)],
            &rules(Protocol::Eager),
            &[checkpoint(35, &["a", "b"])],
            &produced(),
        )
    }

    fn rejects(report: &Report, rule: Rule) {
        assert!(
            report.has(rule),
            "the checker missed {rule:?}; it found:\n{}",
            report.describe(20)
        );
    }

    #[test]
    fn checker_accepts_a_clean_eager_handoff() {
        let r = eager(|_, _| {});
        assert!(r.violations.is_empty(), "{}", r.describe(20));
        assert_eq!(
            (r.processed, r.duplicates, r.commits, r.committed_offsets),
            (4, 0, 3, 4)
        );
        assert_eq!(r.generations, vec![1, 2]);
    }

    /// A record read again by its next owner, uncommitted when the
    /// ownership changed: counted, not a violation; under `exactly_once`
    /// a violation.
    #[test]
    fn checker_counts_an_uncommitted_record_read_again_after_a_rebalance() {
        let edit = |a: &mut Vec<(i64, What)>, b: &mut Vec<(i64, What)>| {
            a[3] = (13, committed(&[(0, 1)]));
            b.insert(1, (31, record(1, 0)));
        };
        let r = eager(edit);
        assert!(r.violations.is_empty(), "{}", r.describe(20));
        assert_eq!(r.duplicates, 1);

        let (mut a, mut b) = (a_events(), b_events());
        edit(&mut a, &mut b);
        let strict = Rules {
            exactly_once: true,
            ..rules(Protocol::Eager)
        };
        rejects(
            &check(&[log("a", a), log("b", b)], &strict, &[], &produced()),
            Rule::Duplicate,
        );
    }

    #[test]
    fn checker_rejects_two_owners_at_once() {
        rejects(
            &eager(|_, b| b.insert(0, (15, assigned(&[1], 1)))),
            Rule::Overlap,
        );
    }

    #[test]
    fn checker_rejects_a_revocation_of_what_is_not_owned() {
        rejects(
            &eager(|a, _| a.insert(5, (21, revoked(&[1])))),
            Rule::NotOwned,
        );
    }

    #[test]
    fn checker_rejects_an_unsubscribed_partition() {
        rejects(
            &eager(|a, _| a[5] = (30, assigned(&[0, 5], 2))),
            Rule::Foreign,
        );
    }

    #[test]
    fn checker_rejects_an_eager_member_keeping_partitions_into_a_new_generation() {
        rejects(&eager(|a, _| a[4] = (20, revoked(&[1]))), Rule::EagerKept);
    }

    #[test]
    fn checker_rejects_an_eager_generation_that_leaves_a_partition_out() {
        rejects(
            &eager(|_, b| {
                b.clear();
                b.push((30, assigned(&[], 2)));
            }),
            Rule::GenerationIncomplete,
        );
    }

    /// Cooperative: `a` owns both, revokes 1 (to move), generation 2
    /// holds it back, generation 3 gives it to `b`.
    fn cooperative(a_first: &[i32], a_revokes: &[i32], b_gets: &[i32], b_gen: i32) -> Report {
        let a = vec![
            (10, assigned(a_first, 1)),
            (11, record(0, 0)),
            (12, record(0, 1)),
            (13, committed(&[(0, 2)])),
            (20, revoked(a_revokes)),
            (21, assigned(&[], 2)),
        ];
        let b = vec![
            (22, assigned(&[], 2)),
            (30, assigned(b_gets, b_gen)),
            (31, record(1, 0)),
            (32, record(1, 1)),
        ];
        check(
            &[log("a", a), log("b", b)],
            &rules(Protocol::Cooperative),
            &[],
            &produced(),
        )
    }

    #[test]
    fn checker_accepts_a_clean_cooperative_move() {
        let r = cooperative(&[0, 1], &[1], &[1], 3);
        assert!(r.violations.is_empty(), "{}", r.describe(20));
    }

    #[test]
    fn checker_rejects_a_cooperative_generation_missing_an_unrevoked_partition() {
        // Partition 1 is owned by no one in generation 1 and was never
        // revoked.
        rejects(&cooperative(&[0], &[], &[1], 3), Rule::GenerationIncomplete);
    }

    #[test]
    fn checker_rejects_a_cooperative_revocation_of_a_partition_that_does_not_move() {
        let a = vec![
            (10, assigned(&[0, 1], 1)),
            (11, record(0, 0)),
            (12, record(0, 1)),
            (13, record(1, 0)),
            (14, record(1, 1)),
            (20, revoked(&[1])),
            (30, assigned(&[1], 3)),
        ];
        rejects(
            &check(
                &[log("a", a)],
                &rules(Protocol::Cooperative),
                &[],
                &produced(),
            ),
            Rule::RevokedUnmoved,
        );
    }

    #[test]
    fn checker_rejects_a_checkpoint_with_an_unowned_partition() {
        let (a, b) = (a_events(), b_events());
        rejects(
            &check(
                &[log("a", a), log("b", b)],
                &rules(Protocol::Eager),
                &[checkpoint(25, &["a", "b"])],
                &produced(),
            ),
            Rule::CheckpointCoverage,
        );
    }

    #[test]
    fn checker_rejects_an_uneven_checkpoint() {
        let (a, b) = (a_events(), b_events());
        rejects(
            &check(
                &[log("a", a), log("b", b)],
                &rules(Protocol::Eager),
                &[checkpoint(15, &["a", "b"])],
                &produced(),
            ),
            Rule::CheckpointBalance,
        );
    }

    #[test]
    fn checker_rejects_a_record_of_a_partition_not_owned() {
        rejects(
            &eager(|_, b| b.insert(0, (15, record(0, 0)))),
            Rule::RecordNotOwned,
        );
    }

    #[test]
    fn checker_rejects_records_out_of_order_in_one_ownership() {
        rejects(
            &eager(|a, _| {
                a[1] = (11, record(0, 1));
                a.insert(2, (11, record(0, 0)));
                a[7] = (31, record(0, 1));
            }),
            Rule::OutOfOrder,
        );
    }

    #[test]
    fn checker_rejects_a_record_never_processed() {
        rejects(&eager(|_, b| drop(b.remove(1))), Rule::RecordMissing);
    }

    #[test]
    fn checker_rejects_a_record_processed_with_another_value() {
        rejects(
            &eager(|_, b| {
                b[1] = (
                    31,
                    What::Record {
                        tp: tp(1),
                        offset: 1,
                        value: Some("1:9".into()),
                    },
                )
            }),
            Rule::RecordWrong,
        );
    }

    #[test]
    fn checker_rejects_a_record_processed_twice_in_one_ownership() {
        rejects(
            &eager(|a, _| a.insert(2, (11, record(0, 0)))),
            Rule::Duplicate,
        );
    }

    #[test]
    fn checker_rejects_a_committed_record_processed_again() {
        // `a` committed 1 for partition 1 before revoking it; `b` reads
        // offset 0 again.
        rejects(
            &eager(|_, b| b.insert(1, (31, record(1, 0)))),
            Rule::Duplicate,
        );
    }

    #[test]
    fn checker_rejects_a_loss() {
        rejects(
            &eager(|a, _| {
                a[4] = (
                    20,
                    What::Lost {
                        partitions: vec![tp(0), tp(1)],
                    },
                )
            }),
            Rule::Lost,
        );
    }

    #[test]
    fn checker_rejects_a_commit_by_a_member_that_does_not_own_the_partition() {
        rejects(
            &eager(|_, b| b.insert(0, (15, committed(&[(0, 1)])))),
            Rule::CommitNotOwned,
        );
    }

    #[test]
    fn checker_rejects_a_commit_beyond_what_was_processed() {
        rejects(
            &eager(|a, _| a[3] = (13, committed(&[(0, 2), (1, 1)]))),
            Rule::CommitBeyondConsumed,
        );
    }

    #[test]
    fn checker_reads_the_peers_committed_lines() {
        let line = serde_json::json!({
            "type": "group", "event": "committed", "ts_us": 7,
            "offsets": [["t", 1, 42]], "generation": 3
        });
        let ev = support::ownership::Event::from_json(&line)
            .expect("parsed")
            .expect("a group event");
        assert_eq!(ev.ts_us, 7);
        assert_eq!(ev.what, committed(&[(1, 42)]));
        let bad = serde_json::json!({
            "type": "group", "event": "committed", "ts_us": 7, "offsets": [["t", 1]]
        });
        assert!(support::ownership::Event::from_json(&bad).is_err());
    }
}
