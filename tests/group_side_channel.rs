//! Side-channel offsets against Apache Kafka 4.4 (the single node): a
//! member giving a partition up publishes how far it got, and the next
//! owner starts there instead of at the (lagging) commit. The members
//! commit only what the application commits (auto-commit off: with
//! auto-commit the group consumer commits on revoke anyway), so the
//! group's commit stays at 5 while the first member reads to 20. The
//! control, without the side channel, reads again what was read since the
//! commit; a side-channel topic that does not exist changes nothing but
//! the log.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use klamm::consumer::{Consumer, StartOffset};
use klamm::group::{
    GroupConsumer, GroupOptions, OffsetAndMetadata, OffsetManager, SideChannel, TopicPartition,
};
use klamm::producer::partitioner::{murmur2, to_positive};
use klamm::{Client, Config};
use support::group::{Seen, member_config, produce_numbered};
use support::read::config;
use support::topics::create_topic;

/// What a two-member handover did.
struct Outcome {
    group: String,
    topic: String,
    a: Seen,
    b: Seen,
    /// The partition that moved from A to B.
    moved: i32,
    /// From B's start to B's first assignment.
    rebalance: Duration,
}

impl Outcome {
    /// How many times each (partition, offset) was read, by either member.
    fn reads(&self) -> BTreeMap<(i32, i64), usize> {
        let mut n = BTreeMap::new();
        for (tp, o, _) in self.a.records.iter().chain(&self.b.records) {
            *n.entry((tp.partition, *o)).or_default() += 1;
        }
        n
    }

    fn offsets(seen: &Seen, p: i32) -> Vec<i64> {
        seen.records
            .iter()
            .filter(|(tp, _, _)| tp.partition == p)
            .map(|(_, o, _)| *o)
            .collect()
    }
}

fn member(addr: &str, group: &str, auto_create: bool) -> Config {
    let mut c = member_config(addr, group, "cooperative-sticky");
    c.consumer.enable_auto_commit = false;
    c.metadata.allow_auto_topic_creation = auto_create;
    c
}

/// Two partitions of 20 records, the group's commit at 5. Member A reads
/// 5..20 of both; member B joins and gets one of them (cooperative: only
/// that one moves); then 5 more records go to each partition and both
/// members read them; then A closes, B gets both, and one more record
/// goes to each partition.
async fn handover(
    addr: &str,
    client: &Client,
    side_channel: Option<SideChannel>,
    auto_create: bool,
) -> Outcome {
    let topic = support::unique_topic("klamm-sidech");
    create_topic(client, &topic, 2).await;
    produce_numbered(client, &topic, 2, 20, 0).await;
    let group = support::unique_topic("klamm-sidech-g");
    let start: BTreeMap<TopicPartition, OffsetAndMetadata> = (0..2)
        .map(|p| (TopicPartition::new(&topic, p), OffsetAndMetadata::new(5)))
        .collect();
    OffsetManager::new(client.clone(), &group)
        .commit_offsets(start)
        .await
        .expect("commit");
    let options = GroupOptions {
        side_channel,
        ..GroupOptions::default()
    };

    let ca = Client::connect(member(addr, &group, auto_create))
        .await
        .expect("connect");
    let mut a = GroupConsumer::with_options(ca, [&topic], options.clone())
        .await
        .expect("A");
    let mut sa = Seen::default();
    support::group::drive(&mut a, &mut sa, Duration::from_secs(60), |s| {
        s.owned.len() == 2 && s.records.len() >= 30
    })
    .await;
    assert_eq!(sa.records.len(), 30, "A read 5..20 of both");

    let cb = Client::connect(member(addr, &group, auto_create))
        .await
        .expect("connect");
    let joined = tokio::time::Instant::now();
    let mut b = GroupConsumer::with_options(cb, [&topic], options)
        .await
        .expect("B");
    let mut sb = Seen::default();
    let mut rebalance = None;
    let deadline = joined + Duration::from_secs(60);
    let settled = |a: &Seen, b: &Seen| a.owned.len() == 1 && b.owned.len() == 1;
    while !settled(&sa, &sb) && tokio::time::Instant::now() < deadline {
        tokio::select! {
            ev = a.recv() => sa.take(ev.expect("A runs").expect("A event")),
            ev = b.recv() => {
                sb.take(ev.expect("B runs").expect("B event"));
                if !sb.owned.is_empty() && rebalance.is_none() {
                    rebalance = Some(joined.elapsed());
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert!(settled(&sa, &sb), "one partition each: {sa:?} {sb:?}");
    produce_numbered(client, &topic, 2, 5, 20).await;
    // Until both read the new records, then a little longer: records that
    // should not come have the time to come.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut linger: Option<tokio::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now();
        if now > deadline || linger.is_some_and(|l| now > l) {
            break;
        }
        let done = |s: &Seen| s.records.iter().any(|(_, o, _)| *o == 24);
        if linger.is_none() && done(&sa) && done(&sb) {
            linger = Some(now + Duration::from_secs(2));
        }
        tokio::select! {
            ev = a.recv() => sa.take(ev.expect("A runs").expect("A event")),
            ev = b.recv() => sb.take(ev.expect("B runs").expect("B event")),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let moved = sb.owned.iter().next().map(|tp| tp.partition).expect("B's");
    // A leaves (its close revokes, and publishes, the partition it kept);
    // B takes it over, and one more record goes to each partition.
    a.close().await.expect("close A");
    support::group::drive(&mut b, &mut sb, Duration::from_secs(60), |s| {
        s.owned.len() == 2
    })
    .await;
    assert_eq!(sb.owned.len(), 2, "B took A's partition over: {sb:?}");
    produce_numbered(client, &topic, 2, 1, 25).await;
    let read_25 = |s: &Seen| s.records.iter().filter(|(_, o, _)| *o == 25).count() == 2;
    support::group::drive(&mut b, &mut sb, Duration::from_secs(60), read_25).await;
    let linger = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(ev) = tokio::time::timeout_at(linger, b.recv()).await {
        sb.take(ev.expect("B runs").expect("B event"));
    }
    b.close().await.expect("close B");
    Outcome {
        group,
        topic,
        a: sa,
        b: sb,
        moved,
        rebalance: rebalance.unwrap_or_default(),
    }
}

/// The side channel's records of `group` (its partition by the Java
/// default hash of the group id), as text.
async fn side_records(client: &Client, topic: &str, partitions: i32, group: &str) -> Vec<String> {
    let p = to_positive(murmur2(group.as_bytes())) % partitions;
    let consumer = Consumer::new(client.clone());
    let mut pc = consumer
        .consume_partition(topic, p, StartOffset::Oldest)
        .await
        .expect("consume");
    let mut out = Vec::new();
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_secs(2), pc.recv()).await {
        if r.key.as_deref() == Some(group.as_bytes()) {
            out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string());
        }
    }
    drop(pc);
    consumer.close().await;
    out
}

/// With the side channel, A publishes the partition it gives up (next
/// offset 20, the commit still 5) before the revocation completes, and B
/// starts there; when A closes, it publishes the other one (25) and B
/// starts that at 25: every record is read exactly once. The control, the
/// same without it, reads the moved partition's 5..20 and the other's
/// 5..25 twice.
#[test]
fn the_new_owner_starts_where_the_old_one_got_to() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let sc_topic = support::unique_topic("klamm-sidech-offsets");
        create_topic(&client, &sc_topic, 3).await;
        let sc = SideChannel::new(&sc_topic);

        let out = handover(&addr, &client, Some(sc), true).await;
        let reads = out.reads();
        let dup: Vec<_> = reads.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dup.is_empty(), "read twice: {dup:?}");
        for p in 0..2 {
            for o in 5..26 {
                assert_eq!(reads.get(&(p, o)), Some(&1), "{p}/{o} read once");
            }
        }
        assert_eq!(
            Outcome::offsets(&out.b, out.moved),
            (20..26).collect::<Vec<_>>(),
            "B starts at A's offset"
        );
        assert_eq!(
            Outcome::offsets(&out.b, 1 - out.moved),
            vec![25],
            "after A's close, B starts where A got to"
        );
        eprintln!(
            "side channel: {} reads, B assigned {:?} after joining",
            reads.values().sum::<usize>(),
            out.rebalance
        );
        // What A published: the moved partition at 20, as the Go layout.
        let published = side_records(&client, &sc_topic, 3, &out.group).await;
        let entry = format!("\"{}\":[{{\"p\":{},\"o\":20}}]", out.topic, out.moved);
        assert!(
            published.iter().any(|v| v.contains(&entry)
                && v.starts_with(&format!("{{\"Ver\":1,\"ConsumerGroup\":\"{}\"", out.group))),
            "{entry} in {published:?}"
        );

        // The control: no side channel.
        let control = handover(&addr, &client, None, true).await;
        let b_read = Outcome::offsets(&control.b, control.moved);
        assert_eq!(
            b_read,
            (5..26).collect::<Vec<_>>(),
            "control: from the commit"
        );
        let b_kept = Outcome::offsets(&control.b, 1 - control.moved);
        assert_eq!(
            b_kept,
            (5..26).collect::<Vec<_>>(),
            "control: after A's close too"
        );
        let dup = control.reads().values().filter(|n| **n > 1).count();
        assert_eq!(
            dup, 35,
            "control: 5..20 of the moved partition and 5..25 of the other read twice"
        );
        eprintln!(
            "control: {} reads, {dup} read twice, B assigned {:?} after joining",
            control.reads().values().sum::<usize>(),
            control.rebalance
        );
        client.close().await;
    });
}

/// A side-channel topic that does not exist (and may not be created):
/// publishing and reading fail, are logged, and the rebalance goes on as
/// without it — B is assigned in about the time the control takes, not
/// after the publish or read timeouts pile up, and reads from the commit.
#[test]
fn a_missing_side_channel_topic_does_not_break_the_rebalance() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let sc = SideChannel {
            publish_timeout: Duration::from_secs(3),
            ..SideChannel::new(support::unique_topic("klamm-sidech-missing"))
        };
        let missing = sc.topic.clone();
        let out = handover(&addr, &client, Some(sc), false).await;
        assert_eq!(
            Outcome::offsets(&out.b, out.moved),
            (5..26).collect::<Vec<_>>(),
            "from the commit, as without a side channel"
        );
        assert_eq!(out.reads().values().filter(|n| **n > 1).count(), 35);
        eprintln!(
            "missing topic: B assigned {:?} after joining",
            out.rebalance
        );
        assert!(
            out.rebalance < Duration::from_secs(15),
            "B assigned after {:?}",
            out.rebalance
        );
        assert!(
            !client.topics().contains(&missing),
            "the topic was not created"
        );
        client.close().await;
    });
}
