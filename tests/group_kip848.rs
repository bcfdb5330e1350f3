//! Group consumers on the `consumer` group protocol (KIP-848,
//! ConsumerGroupHeartbeat, the broker assigns) against Apache Kafka 4.4
//! (the single node, its defaults: a 5 s heartbeat interval, a 45 s
//! session timeout): members split a topic and read every record once,
//! a leaving member's partitions go to the other, a static member that
//! restarts gets its partitions back without disturbing the other, and a
//! member removed from the group is told its partitions were lost and
//! joins again.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use klamm::config::GroupProtocol;
use klamm::group::{GroupConsumer, TopicPartition};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest};
use klamm::{Client, Config};
use support::group::{Seen, drive, member_config, produce_numbered};
use support::read::config;
use support::topics::create_topic;
use support::wire::Wire;

/// A member of `group` on the consumer protocol. The heartbeat interval
/// and session timeout are the broker's; the client's settings for them
/// are not sent.
fn kip848_config(addr: &str, group: &str) -> Config {
    let mut c = member_config(addr, group, "range");
    c.consumer.group_protocol = GroupProtocol::Consumer;
    c.consumer.max_poll_interval = Duration::from_secs(60);
    c
}

async fn member(cfg: &Config, topic: &str) -> GroupConsumer {
    let client = Client::connect(cfg.clone()).await.expect("connect");
    GroupConsumer::new(client, [topic]).await.expect("member")
}

/// Reads both members until `until` holds for the pair or `limit` passes.
async fn drive_both(
    a: &mut GroupConsumer,
    seen_a: &mut Seen,
    b: &mut GroupConsumer,
    seen_b: &mut Seen,
    limit: Duration,
    until: impl Fn(&Seen, &Seen) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !until(seen_a, seen_b) && tokio::time::Instant::now() < deadline {
        tokio::select! {
            ev = a.recv() => seen_a.take(ev.expect("a stopped").expect("a event")),
            ev = b.recv() => seen_b.take(ev.expect("b stopped").expect("b event")),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// How often each value was read, over `seen`.
fn counts<'a>(seen: impl IntoIterator<Item = &'a Seen>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in seen {
        for (_, _, v) in &s.records {
            *out.entry(v.clone()).or_default() += 1;
        }
    }
    out
}

/// The values `produce_numbered` writes for `partitions` × `range`.
fn values(partitions: impl IntoIterator<Item = i32>, range: std::ops::Range<usize>) -> Vec<String> {
    let mut out = Vec::new();
    for p in partitions {
        for i in range.clone() {
            out.push(format!("{p}:{i}"));
        }
    }
    out.sort();
    out
}

fn sorted(counts: &BTreeMap<String, usize>) -> Vec<String> {
    counts.keys().cloned().collect()
}

/// Two members split six partitions: the first reads everything, the
/// second's join moves three partitions (revoked from the first, their
/// reads committed, then assigned to the second), and every record,
/// before and after, is read exactly once; a third member started after
/// both closed reads only what is new.
#[test]
fn two_members_split_six_partitions_and_read_every_record_once() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-kip848-split");
        create_topic(&client, &topic, 6).await;
        produce_numbered(&client, &topic, 6, 50, 0).await;
        let group = support::unique_topic("klamm-kip848");
        let cfg = kip848_config(&addr, &group);

        let mut a = member(&cfg, &topic).await;
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 6 && s.records.len() >= 300
        })
        .await;
        assert_eq!(
            seen_a.owned.len(),
            6,
            "the first member owns all: {seen_a:?}"
        );
        assert_eq!(seen_a.records.len(), 300);
        assert!(
            a.generation().id > 0,
            "a member epoch: {:?}",
            a.generation()
        );
        let before = seen_a.owned.clone();

        let mut b = member(&cfg, &topic).await;
        let mut seen_b = Seen::default();
        drive_both(
            &mut a,
            &mut seen_a,
            &mut b,
            &mut seen_b,
            Duration::from_secs(60),
            |a, b| a.owned.len() == 3 && b.owned.len() == 3,
        )
        .await;
        assert_eq!(
            (seen_a.owned.len(), seen_b.owned.len()),
            (3, 3),
            "{seen_a:?} {seen_b:?}"
        );
        assert!(seen_a.owned.is_disjoint(&seen_b.owned));
        assert_eq!(
            seen_a.revoked.len(),
            1,
            "one revocation: {:?}",
            seen_a.revoked
        );
        let revoked: BTreeSet<_> = seen_a.revoked[0].iter().cloned().collect();
        assert_eq!(
            revoked, seen_b.owned,
            "what the first gave up, the second got"
        );
        assert!(seen_a.owned.is_subset(&before), "the first kept the rest");
        assert!(seen_a.lost.is_empty() && seen_b.lost.is_empty());

        produce_numbered(&client, &topic, 6, 20, 50).await;
        drive_both(
            &mut a,
            &mut seen_a,
            &mut b,
            &mut seen_b,
            Duration::from_secs(60),
            |a, b| a.records.len() + b.records.len() >= 420,
        )
        .await;
        // Keep reading a moment: a duplicate would show up now.
        drive_both(
            &mut a,
            &mut seen_a,
            &mut b,
            &mut seen_b,
            Duration::from_secs(2),
            |_, _| false,
        )
        .await;
        let all = counts([&seen_a, &seen_b]);
        assert_eq!(sorted(&all), values(0..6, 0..70), "every record read");
        assert!(
            all.values().all(|n| *n == 1),
            "each exactly once: {:?}",
            all.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
        );
        let b_old = seen_b.records.iter().filter(|(_, _, v)| {
            v.split(':').nth(1).and_then(|i| i.parse::<usize>().ok()) < Some(50)
        });
        assert_eq!(
            b_old.count(),
            0,
            "the second member resumed from the commits on revoke"
        );
        a.close().await.expect("close a");
        b.close().await.expect("close b");

        let mut c = member(&cfg, &topic).await;
        let mut seen_c = Seen::default();
        drive(&mut c, &mut seen_c, Duration::from_secs(60), |s| {
            s.owned.len() == 6
        })
        .await;
        produce_numbered(&client, &topic, 6, 1, 1000).await;
        drive(&mut c, &mut seen_c, Duration::from_secs(30), |s| {
            s.records.len() >= 6
        })
        .await;
        drive(&mut c, &mut seen_c, Duration::from_secs(1), |_| false).await;
        assert_eq!(
            sorted(&counts([&seen_c])),
            values(0..6, 1000..1001),
            "only the new records: the closed members' commits held"
        );
        c.close().await.expect("close c");
        client.close().await;
    });
}

/// A member that closes leaves the group at once (epoch -1): the other
/// member gets its partitions without a revocation of its own, resuming
/// from what the leaver committed.
#[test]
fn a_leaving_member_hands_its_partitions_to_the_other() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-kip848-leave");
        create_topic(&client, &topic, 4).await;
        produce_numbered(&client, &topic, 4, 10, 0).await;
        let group = support::unique_topic("klamm-kip848-leave");
        let cfg = kip848_config(&addr, &group);
        let mut a = member(&cfg, &topic).await;
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 4
        })
        .await;
        let mut b = member(&cfg, &topic).await;
        let mut seen_b = Seen::default();
        drive_both(
            &mut a,
            &mut seen_a,
            &mut b,
            &mut seen_b,
            Duration::from_secs(60),
            |a, b| {
                a.owned.len() == 2 && b.owned.len() == 2 && a.records.len() + b.records.len() >= 40
            },
        )
        .await;
        assert_eq!((seen_a.owned.len(), seen_b.owned.len()), (2, 2));
        let revocations = seen_a.revoked.len();
        let of_b = seen_b.owned.clone();

        let left = tokio::time::Instant::now();
        b.close().await.expect("close b");
        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            s.owned.len() == 4
        })
        .await;
        assert_eq!(seen_a.owned.len(), 4, "the other took over: {seen_a:?}");
        assert!(
            left.elapsed() < Duration::from_secs(20),
            "at the next heartbeat, not after the session timeout: {:?}",
            left.elapsed()
        );
        assert_eq!(seen_a.revoked.len(), revocations, "nothing revoked from it");
        let last: BTreeSet<_> = seen_a
            .assigned
            .last()
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        assert_eq!(last, of_b, "exactly the leaver's partitions were added");

        produce_numbered(&client, &topic, 4, 5, 10).await;
        let read_before = seen_a.records.len();
        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            s.records.len() >= read_before + 20
        })
        .await;
        drive(&mut a, &mut seen_a, Duration::from_secs(1), |_| false).await;
        let mut after: Vec<String> = seen_a.records[read_before..]
            .iter()
            .map(|(_, _, v)| v.clone())
            .collect();
        after.sort();
        assert_eq!(
            after,
            values(0..4, 10..15),
            "only the new records: the leaver committed what it read"
        );
        a.close().await.expect("close a");
        client.close().await;
    });
}

/// Static membership under KIP-848: a member with a group.instance.id
/// closes (epoch -2: the broker keeps its assignment for the session
/// timeout) and restarts with a new member id: it gets the same
/// partitions back, and the other member sees no revocation or
/// assignment meanwhile.
#[test]
fn a_restarted_static_member_gets_its_partitions_back() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-kip848-static");
        create_topic(&client, &topic, 4).await;
        let group = support::unique_topic("klamm-kip848-static");
        let mut cfg_a = kip848_config(&addr, &group);
        cfg_a.consumer.group_instance_id = Some("static-a".into());
        let mut cfg_b = kip848_config(&addr, &group);
        cfg_b.consumer.group_instance_id = Some("static-b".into());

        let mut a = member(&cfg_a, &topic).await;
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 4
        })
        .await;
        let mut b = member(&cfg_b, &topic).await;
        let mut seen_b = Seen::default();
        drive_both(
            &mut a,
            &mut seen_a,
            &mut b,
            &mut seen_b,
            Duration::from_secs(60),
            |a, b| a.owned.len() == 2 && b.owned.len() == 2,
        )
        .await;
        assert_eq!((seen_a.owned.len(), seen_b.owned.len()), (2, 2));
        let owned_a = seen_a.owned.clone();
        let member_id = a.generation().member_id;
        let b_events = (seen_b.assigned.len(), seen_b.revoked.len());

        a.close().await.expect("close a");
        let mut a = member(&cfg_a, &topic).await;
        let mut seen_a2 = Seen::default();
        drive(&mut a, &mut seen_a2, Duration::from_secs(30), |s| {
            s.owned.len() == 2
        })
        .await;
        assert_eq!(seen_a2.owned, owned_a, "the same partitions back");
        assert_ne!(a.generation().member_id, member_id, "a new member id");
        assert!(seen_a2.revoked.is_empty() && seen_a2.lost.is_empty());
        // The other member: two heartbeats' worth of nothing.
        drive(&mut b, &mut seen_b, Duration::from_secs(11), |_| false).await;
        assert_eq!(
            (seen_b.assigned.len(), seen_b.revoked.len()),
            b_events,
            "no rebalance for the other member: {seen_b:?}"
        );
        assert_eq!(seen_b.owned.len(), 2);
        a.close().await.expect("close a again");
        b.close().await.expect("close b");
        client.close().await;
    });
}

/// A member removed from the group behind its back (a leave heartbeat
/// with its member id, as an administrator's removal would be) learns it
/// at its next heartbeat (UNKNOWN_MEMBER_ID): it is told its partitions
/// were lost, then joins again at epoch 0 and gets them back.
#[test]
fn a_kicked_member_is_told_its_partitions_were_lost_and_rejoins() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-kip848-kick");
        create_topic(&client, &topic, 2).await;
        let group = support::unique_topic("klamm-kip848-kick");
        let cfg = kip848_config(&addr, &group);
        let mut a = member(&cfg, &topic).await;
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 2
        })
        .await;
        assert_eq!(seen_a.owned.len(), 2);
        let owned = seen_a.owned.clone();
        let generation = a.generation();
        assert!(generation.id > 0);

        // Remove it: the single node is the coordinator.
        let (kick_addr, kick_group, kick_member) =
            (addr.clone(), group.clone(), generation.member_id.clone());
        let code = tokio::task::spawn_blocking(move || {
            let mut wire = Wire::connect(&kick_addr).expect("wire");
            let version = wire
                .version(ApiKey::ConsumerGroupHeartbeat)
                .expect("ConsumerGroupHeartbeat");
            let req = ConsumerGroupHeartbeatRequest {
                group_id: kick_group,
                member_id: kick_member,
                member_epoch: -1,
                ..Default::default()
            };
            wire.call(&req, version).expect("leave").error_code
        })
        .await
        .expect("kick");
        assert_eq!(ErrorCode(code), ErrorCode::NONE, "the removal was accepted");

        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            !s.lost.is_empty()
        })
        .await;
        assert_eq!(seen_a.lost.len(), 1, "told of the loss: {seen_a:?}");
        let (lost, reason) = &seen_a.lost[0];
        let lost: BTreeSet<TopicPartition> = lost.iter().cloned().collect();
        assert_eq!(lost, owned, "every partition it owned");
        // UNKNOWN_MEMBER_ID, or at ConsumerGroupHeartbeat v1 (KIP-1082)
        // GROUP_ID_NOT_FOUND when the coordinator has also removed the
        // group the kick emptied: both mean rejoin.
        assert!(
            reason.contains("UNKNOWN_MEMBER_ID") || reason.contains("GROUP_ID_NOT_FOUND"),
            "{reason}"
        );
        assert!(reason.contains("lost"), "{reason}");
        assert!(seen_a.revoked.is_empty(), "lost, not revoked");

        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            s.owned.len() == 2
        })
        .await;
        assert_eq!(seen_a.owned, owned, "joined again and got them back");
        assert_eq!(
            a.generation().member_id,
            generation.member_id,
            "the same member id"
        );
        assert!(a.generation().id > 0);
        a.close().await.expect("close a");
        client.close().await;
    });
}
