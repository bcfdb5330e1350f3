//! Group consumers (the classic protocol) against Apache Kafka 4.4 (the
//! single node): members split a topic's partitions, rebalance when one
//! joins or leaves, commit what they finished, and a new member resumes
//! from the commits; cooperative-sticky stops only moved partitions;
//! static members come back without a rebalance; a slow application keeps
//! its membership until max.poll.interval.ms, and is told when it loses
//! it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use klamm::group::{GroupConsumer, GroupEvent, TopicPartition};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::{Client, Config};
use support::read::config;
use support::topics::create_topic;

/// A config for a member of `group`: short session and heartbeat so that
/// tests do not wait for Java's 45 s defaults; offsets from the start.
fn member_config(addr: &str, group: &str, strategy: &str) -> Config {
    let mut c = config(addr);
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(20);
    c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
    c.consumer.auto_commit_interval = Duration::from_millis(500);
    c.consumer.partition_assignment_strategy = vec![strategy.to_string()];
    c
}

async fn produce_numbered(
    client: &Client,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    from: usize,
) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut futures = Vec::new();
    for p in 0..partitions {
        for i in from..from + per_partition {
            let r = ProducerRecord::new(topic.to_string(), format!("{p}:{i}")).with_partition(p);
            futures.push(producer.send(r).await.expect("send"));
        }
    }
    for f in futures {
        f.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// What one member saw.
#[derive(Debug, Default)]
struct Seen {
    records: Vec<(TopicPartition, i64, String)>,
    assigned: Vec<Vec<TopicPartition>>,
    revoked: Vec<Vec<TopicPartition>>,
    lost: Vec<(Vec<TopicPartition>, String)>,
    owned: BTreeSet<TopicPartition>,
}

impl Seen {
    fn take(&mut self, ev: GroupEvent) {
        match ev {
            GroupEvent::Records(b) => {
                for r in b.iter() {
                    let tp = TopicPartition::new(&*r.topic, r.partition);
                    assert!(
                        self.owned.contains(&tp),
                        "a record of {tp}, which this member does not own"
                    );
                    let v =
                        String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
                    self.records.push((tp, r.offset, v));
                }
            }
            GroupEvent::Assigned(tps) => {
                for tp in &tps {
                    assert!(self.owned.insert(tp.clone()), "{tp} assigned twice");
                }
                self.assigned.push(tps);
            }
            GroupEvent::Revoked(tps) => {
                for tp in &tps {
                    assert!(self.owned.remove(tp), "{tp} revoked but not owned");
                }
                self.revoked.push(tps);
            }
            GroupEvent::Lost { partitions, reason } => {
                for tp in &partitions {
                    self.owned.remove(tp);
                }
                self.lost.push((partitions, reason));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Reads from `g` until `until` says stop or `limit` passes.
async fn drive(
    g: &mut GroupConsumer,
    seen: &mut Seen,
    limit: Duration,
    until: impl Fn(&Seen) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !until(seen) {
        match tokio::time::timeout_at(deadline, g.recv()).await {
            Err(_) => return,
            Ok(None) => panic!("the member stopped"),
            Ok(Some(ev)) => seen.take(ev.expect("event")),
        }
    }
}

/// Two members of a range group: the first takes all six partitions, the
/// second's join splits them three and three, every record is read, and
/// after both close a third member resumes from their commits (reading
/// nothing old, then exactly the new records).
#[test]
fn members_split_partitions_and_a_new_member_resumes_from_commits() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-split");
        create_topic(&client, &topic, 6).await;
        produce_numbered(&client, &topic, 6, 50, 0).await;
        let group = support::unique_topic("klamm-group");

        let cfg = member_config(&addr, &group, "range");
        let mut a = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 6 && s.records.len() >= 300
        })
        .await;
        assert_eq!(
            seen_a.owned.len(),
            6,
            "the first member owns every partition"
        );
        assert_eq!(seen_a.records.len(), 300);

        // A second member joins: the first gives everything up (eager),
        // then each gets three.
        let mut b = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let mut seen_b = Seen::default();
        produce_numbered(&client, &topic, 6, 10, 50).await;
        let (ra, rb) = tokio::join!(
            drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| !s
                .revoked
                .is_empty()
                && s.owned.len() == 3),
            drive(&mut b, &mut seen_b, Duration::from_secs(60), |s| s
                .owned
                .len()
                == 3),
        );
        let _ = (ra, rb);
        assert_eq!(seen_a.owned.len(), 3, "{seen_a:?}");
        assert_eq!(seen_b.owned.len(), 3);
        assert!(
            seen_a.owned.is_disjoint(&seen_b.owned),
            "a partition owned twice"
        );
        assert_eq!(
            seen_a.revoked.len(),
            1,
            "eager: one revocation of everything"
        );
        assert_eq!(seen_a.revoked[0].len(), 6);
        // Every record of the second round is read by someone.
        let total = |s: &Seen| {
            s.records
                .iter()
                .filter(|(_, _, v)| {
                    v.split(':')
                        .nth(1)
                        .and_then(|i| i.parse::<usize>().ok())
                        .is_some_and(|i| i >= 50)
                })
                .count()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while total(&seen_a) + total(&seen_b) < 60 && tokio::time::Instant::now() < deadline {
            tokio::select! {
                ev = a.recv() => seen_a.take(ev.expect("a").expect("a event")),
                ev = b.recv() => seen_b.take(ev.expect("b").expect("b event")),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        let mut values: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, v) in seen_a.records.iter().chain(&seen_b.records) {
            *values.entry(v.clone()).or_default() += 1;
        }
        assert_eq!(values.len(), 360, "every record read at least once");
        a.close().await.expect("close a");
        b.close().await.expect("close b");

        // A new member resumes where they committed: nothing old.
        let mut c = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("c"), [&topic])
            .await
            .expect("c");
        let mut seen_c = Seen::default();
        drive(&mut c, &mut seen_c, Duration::from_secs(30), |s| {
            s.owned.len() == 6
        })
        .await;
        produce_numbered(&client, &topic, 6, 1, 1000).await;
        drive(&mut c, &mut seen_c, Duration::from_secs(30), |s| {
            s.records.len() >= 6
        })
        .await;
        let got: BTreeSet<String> = seen_c.records.iter().map(|(_, _, v)| v.clone()).collect();
        let want: BTreeSet<String> = (0..6).map(|p| format!("{p}:1000")).collect();
        assert_eq!(
            got, want,
            "only the new records: the commits of the closed members held"
        );
        c.close().await.expect("close c");
        client.close().await;
    });
}

/// cooperative-sticky: when a second member joins, the first gives up
/// only the partitions that move (three of six), keeps reading the others
/// all along, and the second gets them in the follow-up rebalance.
#[test]
fn cooperative_sticky_stops_only_the_moved_partitions() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-coop");
        create_topic(&client, &topic, 6).await;
        let group = support::unique_topic("klamm-coop");
        let cfg = member_config(&addr, &group, "cooperative-sticky");
        let mut a = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(60), |s| {
            s.owned.len() == 6
        })
        .await;
        assert_eq!(seen_a.owned.len(), 6);
        let before = seen_a.owned.clone();

        let mut b = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let mut seen_b = Seen::default();
        // The first member acknowledges the revocation with its next recv
        // and then gets its (unchanged) part of the follow-up generation.
        let first_done = |s: &Seen| s.revoked.len() == 1 && s.assigned.len() >= 3;
        tokio::join!(
            drive(&mut a, &mut seen_a, Duration::from_secs(60), first_done),
            drive(&mut b, &mut seen_b, Duration::from_secs(60), |s| s
                .owned
                .len()
                == 3),
        );
        assert_eq!(seen_a.owned.len(), 3, "{seen_a:?}");
        assert_eq!(seen_b.owned.len(), 3, "{seen_b:?}");
        assert!(seen_a.owned.is_disjoint(&seen_b.owned));
        assert_eq!(
            seen_a.revoked.len(),
            1,
            "one revocation: {:?}",
            seen_a.revoked
        );
        let revoked: BTreeSet<_> = seen_a.revoked[0].iter().cloned().collect();
        assert_eq!(revoked.len(), 3, "only the moved partitions stop");
        assert_eq!(
            revoked, seen_b.owned,
            "what the first gave up, the second got"
        );
        assert!(seen_a.owned.is_subset(&before), "the first kept the rest");
        assert!(
            seen_a.assigned[1..].iter().all(Vec::is_empty),
            "nothing new for the first member after its first assignment: {:?}",
            seen_a.assigned
        );

        // The records written now reach both members' partitions.
        produce_numbered(&client, &topic, 6, 5, 0).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen_a.records.len() + seen_b.records.len() < 30
            && tokio::time::Instant::now() < deadline
        {
            tokio::select! {
                ev = a.recv() => seen_a.take(ev.expect("a").expect("a event")),
                ev = b.recv() => seen_b.take(ev.expect("b").expect("b event")),
            }
        }
        assert_eq!(seen_a.records.len(), 15);
        assert_eq!(seen_b.records.len(), 15);
        a.close().await.expect("close a");
        b.close().await.expect("close b");
        client.close().await;
    });
}
