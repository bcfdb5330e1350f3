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

use klamm::Client;
use klamm::group::{GroupConsumer, GroupEvent, TopicPartition};
use klamm::producer::{AsyncProducer, ProducerRecord};
use support::group::{Seen, drive, member_config, produce_numbered};
use support::read::config;
use support::topics::create_topic;

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

/// Static membership (KIP-345): a member with a group.instance.id that
/// closes and comes back within the session timeout gets the same
/// partitions in the same generation, and the other member sees no
/// rebalance; one that stays away past the session timeout is replaced
/// (one rebalance: the other member takes everything).
#[test]
fn a_static_member_restarted_within_the_session_timeout_causes_no_rebalance() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-static");
        create_topic(&client, &topic, 4).await;
        let group = support::unique_topic("klamm-static");
        let mut cfg_a = member_config(&addr, &group, "range");
        cfg_a.consumer.group_instance_id = Some("static-a".into());
        let mut cfg_b = member_config(&addr, &group, "range");
        cfg_b.consumer.group_instance_id = Some("static-b".into());

        let mut a = GroupConsumer::new(Client::connect(cfg_a.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            s.owned.len() == 4
        })
        .await;
        let mut b = GroupConsumer::new(Client::connect(cfg_b.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let mut seen_b = Seen::default();
        tokio::join!(
            drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| s
                .owned
                .len()
                == 2
                && !s.revoked.is_empty()),
            drive(&mut b, &mut seen_b, Duration::from_secs(30), |s| s
                .owned
                .len()
                == 2),
        );
        assert_eq!((seen_a.owned.len(), seen_b.owned.len()), (2, 2));
        let generation = a.generation().id;
        assert_eq!(b.generation().id, generation);
        let owned_a = seen_a.owned.clone();

        // Restart within the session timeout (6 s).
        a.close().await.expect("close a");
        let mut a = GroupConsumer::new(
            Client::connect(cfg_a.clone()).await.expect("a again"),
            [&topic],
        )
        .await
        .expect("a again");
        let mut seen_a2 = Seen::default();
        drive(&mut a, &mut seen_a2, Duration::from_secs(30), |s| {
            s.owned.len() == 2
        })
        .await;
        assert_eq!(seen_a2.owned, owned_a, "the same partitions back");
        assert_eq!(
            a.generation().id,
            generation,
            "the same generation: no rebalance"
        );
        // The other member saw nothing: keep reading it for a while.
        let revoked_before = seen_b.revoked.len();
        drive(&mut b, &mut seen_b, Duration::from_secs(3), |_| false).await;
        assert_eq!(
            seen_b.revoked.len(),
            revoked_before,
            "no rebalance for the other member"
        );
        assert_eq!(b.generation().id, generation);

        // Away past the session timeout: the coordinator removes it and
        // the other member takes over its partitions (one rebalance).
        a.close().await.expect("close a again");
        drive(&mut b, &mut seen_b, Duration::from_secs(30), |s| {
            s.owned.len() == 4
        })
        .await;
        assert_eq!(
            seen_b.owned.len(),
            4,
            "the survivor owns everything: {seen_b:?}"
        );
        assert_eq!(
            b.generation().id,
            generation + 1,
            "exactly one rebalance once the session timed out"
        );
        assert_eq!(
            seen_b.revoked.len(),
            revoked_before + 1,
            "the other member revoked once (eager), then took everything"
        );
        b.close().await.expect("close b");
        client.close().await;
    });
}

/// A slow application (pauses longer than the heartbeat interval, shorter
/// than max.poll.interval.ms) keeps its membership: no event, same
/// generation. One that stays away longer than max.poll.interval.ms
/// leaves the group (the other member takes its partitions) and is told
/// with a Lost event naming the reason, then joins again.
#[test]
fn a_slow_application_keeps_its_membership_until_max_poll_interval() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-slow");
        create_topic(&client, &topic, 2).await;
        let group = support::unique_topic("klamm-slow");
        let mut cfg = member_config(&addr, &group, "range");
        cfg.consumer.max_poll_interval = Duration::from_secs(4);
        let mut a = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let mut seen_a = Seen::default();
        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            s.owned.len() == 2
        })
        .await;
        let mut b = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let mut seen_b = Seen::default();
        tokio::join!(
            drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| s
                .owned
                .len()
                == 1
                && !s.revoked.is_empty()),
            drive(&mut b, &mut seen_b, Duration::from_secs(30), |s| s
                .owned
                .len()
                == 1),
        );
        let generation = a.generation().id;

        // Slow but within the limit: 2.5 s between polls (the heartbeat is
        // 0.5 s), three times; the other member keeps polling.
        for _ in 0..3 {
            let pause = tokio::time::sleep(Duration::from_millis(2500));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    ev = b.recv() => seen_b.take(ev.expect("b").expect("b event")),
                }
            }
            drive(&mut a, &mut seen_a, Duration::from_millis(100), |_| false).await;
        }
        assert!(
            seen_a.lost.is_empty() && seen_a.revoked.len() == 1,
            "{seen_a:?}"
        );
        assert_eq!(
            a.generation().id,
            generation,
            "still in the same generation"
        );

        // Too slow: 7 s without a poll.
        let pause = tokio::time::sleep(Duration::from_secs(7));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                ev = b.recv() => seen_b.take(ev.expect("b").expect("b event")),
            }
        }
        assert_eq!(
            seen_b.owned.len(),
            2,
            "the other member took over: {seen_b:?}"
        );
        drive(&mut a, &mut seen_a, Duration::from_secs(30), |s| {
            !s.lost.is_empty() && s.owned.len() == 1
        })
        .await;
        assert_eq!(seen_a.lost.len(), 1, "{seen_a:?}");
        assert!(
            seen_a.lost[0].1.contains("max.poll.interval.ms"),
            "{}",
            seen_a.lost[0].1
        );
        assert_eq!(
            seen_a.owned.len(),
            1,
            "joined again after polling: {seen_a:?}"
        );
        a.close().await.expect("close a");
        b.close().await.expect("close b");
        client.close().await;
    });
}

/// Out-of-order completion: records finished in any order commit only
/// the finished prefix; a partition with too many unfinished records
/// stops fetching until some finish.
#[test]
fn explicit_acks_commit_only_the_finished_prefix_and_bound_outstanding_records() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-acks");
        create_topic(&client, &topic, 1).await;
        // 40 records, each its own batch (so the limit can bite between
        // batches).
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        for i in 0..40 {
            let f = producer
                .send(ProducerRecord::new(topic.clone(), format!("0:{i}")).with_partition(0))
                .await
                .expect("send");
            producer.flush().await.expect("flush");
            f.await.expect("delivered");
        }
        producer.close().await.expect("close");

        let group = support::unique_topic("klamm-acks");
        let mut cfg = member_config(&addr, &group, "range");
        cfg.consumer.enable_auto_commit = false;
        cfg.consumer.max_partition_fetch_bytes = 200;
        let options = klamm::group::GroupOptions {
            ack: klamm::group::AckMode::Explicit,
            max_outstanding: 5,
            ..Default::default()
        };
        let mut g =
            GroupConsumer::with_options(Client::connect(cfg).await.expect("g"), [&topic], options)
                .await
                .expect("g");
        let acker = g.acker();
        let tp = TopicPartition::new(&topic, 0);
        let mut records = Vec::new();
        // Nothing finished: delivery stops well short of 40.
        loop {
            match tokio::time::timeout(Duration::from_secs(2), g.recv()).await {
                Err(_) => break,
                Ok(ev) => {
                    if let GroupEvent::Records(b) = ev.expect("open").expect("event") {
                        records.extend(b.records);
                    }
                }
            }
        }
        assert!(
            records.len() >= 5 && records.len() < 40,
            "fetching paused at the limit: {} delivered",
            records.len()
        );
        let paused_at = records.len();

        // Finish everything delivered but the record at offset 2.
        for r in records.iter().filter(|r| r.offset != 2) {
            assert!(acker.done(r));
        }
        g.commit().await.expect("commit");
        let committed = g
            .offsets()
            .fetch(std::slice::from_ref(&tp))
            .await
            .expect("fetch");
        assert_eq!(committed[&tp].offset, 2, "only the finished prefix");
        assert!(acker.done(&records[2]));
        assert!(!acker.done(&records[2]), "twice");
        g.commit().await.expect("commit");
        let committed = g
            .offsets()
            .fetch(std::slice::from_ref(&tp))
            .await
            .expect("fetch");
        assert_eq!(committed[&tp].offset, paused_at as i64);

        // Finishing resumed the fetching: the rest arrives.
        while records.len() < 40 {
            let ev = tokio::time::timeout(Duration::from_secs(10), g.recv())
                .await
                .expect("the rest arrives")
                .expect("open")
                .expect("event");
            if let GroupEvent::Records(b) = ev {
                for r in b.iter() {
                    acker.done(r);
                }
                records.extend(b.records);
            }
        }
        g.commit().await.expect("commit");
        let committed = g
            .offsets()
            .fetch(std::slice::from_ref(&tp))
            .await
            .expect("fetch");
        assert_eq!(committed[&tp].offset, 40);
        g.close().await.expect("close");
        client.close().await;
    });
}

/// The handler shape (Sarama's): setup, one consume_claim task per
/// partition, cleanup. Two members share a topic; claims end when their
/// partitions are revoked (the handler returns, then cleanup runs);
/// everything is processed, and what the handlers marked is committed.
#[test]
fn handler_members_process_everything_and_commit_their_marks() {
    use klamm::group::{Claim, GroupHandler, GroupSession};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Log {
        setups: Vec<Vec<TopicPartition>>,
        cleanups: Vec<Vec<TopicPartition>>,
        claims_ended: Vec<TopicPartition>,
        values: Vec<String>,
    }

    struct Recorder(Arc<Mutex<Log>>);

    impl GroupHandler for Recorder {
        async fn setup(&self, session: &GroupSession) -> klamm::Result<()> {
            self.0
                .lock()
                .unwrap()
                .setups
                .push(session.claims().to_vec());
            Ok(())
        }

        async fn consume_claim(
            &self,
            session: GroupSession,
            mut claim: Claim,
        ) -> klamm::Result<()> {
            while let Some(r) = claim.recv().await {
                // Slower than the heartbeat interval now and then.
                if r.offset % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
                self.0.lock().unwrap().values.push(v);
                session.mark(&r);
            }
            let tp = TopicPartition::new(claim.topic(), claim.partition());
            self.0.lock().unwrap().claims_ended.push(tp);
            Ok(())
        }

        async fn cleanup(&self, session: &GroupSession) -> klamm::Result<()> {
            self.0
                .lock()
                .unwrap()
                .cleanups
                .push(session.claims().to_vec());
            Ok(())
        }
    }

    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-handler");
        create_topic(&client, &topic, 4).await;
        produce_numbered(&client, &topic, 4, 20, 0).await;
        let group = support::unique_topic("klamm-handler");
        let cfg = member_config(&addr, &group, "range");

        let log_a = Arc::new(Mutex::new(Log::default()));
        let log_b = Arc::new(Mutex::new(Log::default()));
        let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
        let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
        let a = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let run_a = tokio::spawn(a.run(Recorder(log_a.clone()), stopped_a));
        // Let the first member start on all four partitions, then add one.
        let t0 = tokio::time::Instant::now();
        while log_a.lock().unwrap().values.len() < 10 && t0.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let b = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let run_b = tokio::spawn(b.run(Recorder(log_b.clone()), stopped_b));
        let all_read = || {
            let mut v: BTreeSet<String> = log_a.lock().unwrap().values.iter().cloned().collect();
            v.extend(log_b.lock().unwrap().values.iter().cloned());
            v.len()
        };
        let t0 = tokio::time::Instant::now();
        while all_read() < 80 && t0.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(all_read(), 80, "every record processed");
        let _ = stop_a.send(());
        let _ = stop_b.send(());
        run_a.await.expect("join a").expect("run a");
        run_b.await.expect("join b").expect("run b");

        {
            let a = log_a.lock().unwrap();
            let b = log_b.lock().unwrap();
            assert_eq!(a.setups[0].len(), 4, "the first member started alone");
            assert_eq!(
                a.cleanups[0].len(),
                4,
                "eager: it gave all four up when the second joined"
            );
            assert!(a.claims_ended.len() >= 4, "each claim's handler returned");
            assert!(b.setups.iter().any(|s| s.len() == 2), "{:?}", b.setups);
        }
        let om = klamm::group::OffsetManager::new(client.clone(), &group);
        let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
        let committed = om.fetch(&tps).await.expect("fetch");
        for tp in &tps {
            assert_eq!(
                committed.get(tp).map(|o| o.offset),
                Some(20),
                "{tp}: every mark committed"
            );
        }
        client.close().await;
    });
}

/// Marks a handler makes while its partitions are being revoked (here in
/// `cleanup`, for records read but not marked before) are committed with
/// the revocation: the member that takes the partitions over starts after
/// them. The control is the new member's reads: had the marks been
/// dropped, it would read its partitions again from the start.
#[test]
fn marks_made_during_a_revocation_are_committed_with_it() {
    use klamm::consumer::ConsumerRecord;
    use klamm::group::{Claim, GroupHandler, GroupSession};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Log {
        last: BTreeMap<TopicPartition, ConsumerRecord>,
        read: usize,
        setups: usize,
        marked_in_cleanup: usize,
    }

    struct MarkLate(Arc<Mutex<Log>>);

    impl GroupHandler for MarkLate {
        async fn setup(&self, _session: &GroupSession) -> klamm::Result<()> {
            self.0.lock().unwrap().setups += 1;
            Ok(())
        }

        async fn consume_claim(
            &self,
            _session: GroupSession,
            mut claim: Claim,
        ) -> klamm::Result<()> {
            while let Some(r) = claim.recv().await {
                let mut log = self.0.lock().unwrap();
                log.read += 1;
                log.last
                    .insert(TopicPartition::new(claim.topic(), claim.partition()), r);
            }
            Ok(())
        }

        async fn cleanup(&self, session: &GroupSession) -> klamm::Result<()> {
            let mut log = self.0.lock().unwrap();
            for tp in session.claims() {
                if let Some(r) = log.last.get(tp).cloned() {
                    if session.mark(&r) {
                        log.marked_in_cleanup += 1;
                    }
                }
            }
            Ok(())
        }
    }

    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-late-marks");
        create_topic(&client, &topic, 4).await;
        produce_numbered(&client, &topic, 4, 20, 0).await;
        let group = support::unique_topic("klamm-late-marks");
        let cfg = member_config(&addr, &group, "range");

        let log_a = Arc::new(Mutex::new(Log::default()));
        let log_b = Arc::new(Mutex::new(Log::default()));
        let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
        let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
        let a = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("a"), [&topic])
            .await
            .expect("a");
        let run_a = tokio::spawn(a.run(MarkLate(log_a.clone()), stopped_a));
        let t0 = tokio::time::Instant::now();
        while log_a.lock().unwrap().read < 80 && t0.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            log_a.lock().unwrap().read,
            80,
            "the first member read everything"
        );

        let b = GroupConsumer::new(Client::connect(cfg.clone()).await.expect("b"), [&topic])
            .await
            .expect("b");
        let run_b = tokio::spawn(b.run(MarkLate(log_b.clone()), stopped_b));
        let t0 = tokio::time::Instant::now();
        while log_b.lock().unwrap().setups == 0 && t0.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            log_b.lock().unwrap().setups,
            1,
            "the second member got partitions"
        );
        assert_eq!(
            log_a.lock().unwrap().marked_in_cleanup,
            4,
            "the revocation accepted the first member's four marks"
        );
        let om = klamm::group::OffsetManager::new(client.clone(), &group);
        let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
        let committed = om.fetch(&tps).await.expect("fetch");
        for tp in &tps {
            assert_eq!(committed.get(tp).map(|o| o.offset), Some(20), "{tp}");
        }
        // Give the second member time to read anything it would re-read.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(log_b.lock().unwrap().read, 0, "nothing is read twice");
        let _ = stop_a.send(());
        let _ = stop_b.send(());
        run_a.await.expect("join a").expect("run a");
        run_b.await.expect("join b").expect("run b");
        client.close().await;
    });
}

/// A pattern subscription: a topic created later that matches is joined
/// (a rebalance assigns it) and read; partitions added to a subscribed
/// topic are read too; a topic whose name only contains the pattern's
/// text (the control) is never read, since the whole name must match.
#[test]
fn a_pattern_subscription_follows_new_topics_and_partitions() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let base = support::unique_topic("klamm-pattern");
        let (a, b, other) = (
            format!("{base}-a"),
            format!("{base}-b"),
            format!("x{base}-c"),
        );
        create_topic(&client, &a, 2).await;
        create_topic(&client, &other, 1).await;
        produce_numbered(&client, &a, 2, 3, 0).await;
        produce_numbered(&client, &other, 1, 3, 0).await;

        let group = support::unique_topic("klamm-pattern-group");
        let mut cfg = member_config(&addr, &group, "range");
        cfg.metadata.max_age = Duration::from_millis(500);
        let mut g = GroupConsumer::with_pattern(
            Client::connect(cfg).await.expect("member"),
            &format!("{base}-.*"),
            klamm::group::GroupOptions::default(),
        )
        .await
        .expect("member");
        let mut seen = Seen::default();
        let count = |s: &Seen, t: &str| s.records.iter().filter(|r| r.0.topic == t).count();
        drive(&mut g, &mut seen, Duration::from_secs(30), |s| {
            count(s, &a) == 6
        })
        .await;
        assert_eq!(count(&seen, &a), 6, "the matching topic is read");

        // A new matching topic: joined at the next metadata refresh.
        create_topic(&client, &b, 2).await;
        produce_numbered(&client, &b, 2, 2, 0).await;
        drive(&mut g, &mut seen, Duration::from_secs(40), |s| {
            count(s, &b) == 4
        })
        .await;
        assert_eq!(count(&seen, &b), 4, "the new matching topic is read");

        // A partition added to a subscribed topic.
        support::topics::grow(&client, &a, 3).await;
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        producer
            .send(ProducerRecord::new(a.clone(), "2:0").with_partition(2))
            .await
            .expect("send")
            .await
            .expect("delivered");
        producer.close().await.expect("close");
        drive(&mut g, &mut seen, Duration::from_secs(40), |s| {
            s.records.iter().any(|r| r.0 == TopicPartition::new(&a, 2))
        })
        .await;
        assert!(
            seen.owned.contains(&TopicPartition::new(&a, 2)),
            "the new partition is assigned: {:?}",
            seen.owned
        );
        assert_eq!(count(&seen, &a), 7, "the new partition's record is read");
        assert_eq!(
            count(&seen, &other),
            0,
            "a topic that only contains the pattern is not read"
        );
        assert!(
            seen.owned.iter().all(|tp| tp.topic != other),
            "{:?}",
            seen.owned
        );
        g.close().await.expect("close");
        client.close().await;
    });
}

/// `max.poll.records`: 100 records stored in one batch come as events of
/// at most 7 records, in order, none lost; a member with the default (500)
/// gets the batch whole (the control: the batch was bigger than 7).
#[test]
fn max_poll_records_bounds_each_records_event() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-max-poll");
        create_topic(&client, &topic, 1).await;
        // A linger long enough for the 100 sends to share a batch.
        let mut lingering = config(&addr);
        lingering.producer.linger = Duration::from_secs(2);
        let producer = AsyncProducer::new(Client::connect(lingering).await.expect("connect"))
            .await
            .expect("producer");
        let mut sent = Vec::new();
        for i in 0..100 {
            let r = ProducerRecord::new(topic.clone(), format!("0:{i}")).with_partition(0);
            sent.push(producer.send(r).await.expect("send"));
        }
        producer.flush().await.expect("flush");
        for f in sent {
            f.await.expect("delivered");
        }
        producer.close().await.expect("close");
        let batches = support::read::stored_batches(&client, &topic, 0).await;
        assert_eq!(batches.len(), 1, "one stored batch");

        let sizes = |max: Option<u32>| {
            let addr = addr.clone();
            let topic = topic.clone();
            async move {
                let group = support::unique_topic("klamm-max-poll");
                let mut cfg = member_config(&addr, &group, "range");
                if let Some(max) = max {
                    cfg.consumer.max_poll_records = max;
                }
                let mut g = GroupConsumer::new(Client::connect(cfg).await.expect("g"), [&topic])
                    .await
                    .expect("g");
                let (mut sizes, mut offsets) = (Vec::new(), Vec::new());
                while offsets.len() < 100 {
                    let ev = tokio::time::timeout(Duration::from_secs(30), g.recv())
                        .await
                        .expect("records in time")
                        .expect("open")
                        .expect("event");
                    if let GroupEvent::Records(b) = ev {
                        sizes.push(b.len());
                        offsets.extend(b.iter().map(|r| r.offset));
                    }
                }
                g.close().await.expect("close");
                assert_eq!(
                    offsets,
                    (0..100).collect::<Vec<i64>>(),
                    "every record, in order"
                );
                sizes
            }
        };
        let bounded = sizes(Some(7)).await;
        assert_eq!(bounded, [vec![7; 14], vec![2]].concat(), "pieces of 7");
        let whole = sizes(None).await;
        assert_eq!(whole, vec![100], "the default takes the batch whole");
    });
}
