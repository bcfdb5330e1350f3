//! Share groups (KIP-932) against Apache Kafka 4.4 (the single node):
//! members sharing one partition each get different records and none is
//! accepted twice; a released record comes back with its delivery count
//! one higher and a rejected one never does; records a member holds past
//! their lock, or holds when it goes away, go to another member, unless
//! it renews them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::Client;
use klamm::client::TrafficClass;
use klamm::protocol::messages::ApiKey;
use klamm::share::{
    AckMode, AcknowledgeType, AcquireMode, ShareConsumer, ShareOptions, ShareRecord,
};
use support::group::produce_numbered;
use support::read::config;
use support::share::configure_group;
use support::topics::create_topic;

fn options(mode: AckMode, max_records: i32) -> ShareOptions {
    ShareOptions {
        ack_mode: mode,
        max_records,
        max_wait: Duration::from_millis(200),
        ..Default::default()
    }
}

/// Polls until `want` records came (or `within` passed); returns them.
async fn poll_for(c: &ShareConsumer, want: usize, within: Duration) -> Vec<ShareRecord> {
    let until = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < until {
        got.extend(c.poll(Duration::from_millis(500)).await.expect("poll"));
    }
    got
}

/// Offset -> (member, delivery count) of each delivery.
type Deliveries = BTreeMap<i64, Vec<(usize, i16)>>;

fn value(r: &ShareRecord) -> String {
    String::from_utf8_lossy(r.record.value.as_deref().unwrap_or_default()).into_owned()
}

/// Two members of one share group read one partition of 600 records
/// together: each gets some, together they get every record once, and no
/// record is delivered to both (every delivery count is 1). The release
/// test below is the control that a record delivered twice shows up here
/// as a second delivery.
#[test]
fn two_members_share_one_partition_and_no_record_is_delivered_twice() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-split");
        create_topic(&client, &topic, 1).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 30_000).await;

        // Both members join and are assigned the partition before there
        // is anything to read, so neither can read it all alone.
        let mut members = Vec::new();
        for _ in 0..2 {
            members.push(
                ShareConsumer::new(
                    Client::connect(config(&addr)).await.expect("connect"),
                    group.clone(),
                    &[topic.as_str()],
                    ShareOptions {
                        // 40 records per fetch at most, even out of one
                        // batch (the producer may write all 600 in one).
                        acquire_mode: AcquireMode::RecordLimit,
                        ..options(AckMode::Implicit, 40)
                    },
                )
                .await
                .expect("share consumer"),
            );
        }
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while members.iter().any(|m| m.assignment().is_empty()) {
            assert!(tokio::time::Instant::now() < until, "both members assigned");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            members
                .iter()
                .all(|m| m.assignment() == [(topic.clone(), 0)])
        );
        produce_numbered(&client, &topic, 1, 600, 0).await;

        let seen: Arc<Mutex<Deliveries>> = Default::default();
        let mut tasks = Vec::new();
        for (m, c) in members.into_iter().enumerate() {
            let seen = seen.clone();
            tasks.push(tokio::spawn(async move {
                let until = tokio::time::Instant::now() + Duration::from_secs(120);
                while seen.lock().unwrap().len() < 600 && tokio::time::Instant::now() < until {
                    let batch = c.poll(Duration::from_millis(300)).await.expect("poll");
                    {
                        let mut s = seen.lock().unwrap();
                        for r in &batch {
                            assert_eq!(value(r), format!("0:{}", r.record.offset));
                            s.entry(r.record.offset)
                                .or_default()
                                .push((m, r.delivery_count));
                        }
                    }
                    // Accept them now (implicit mode), and let the other
                    // member in.
                    let failures = c.commit().await.expect("commit");
                    assert!(failures.is_empty(), "{failures:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let failures = c.close().await.expect("close");
                assert!(failures.is_empty(), "{failures:?}");
            }));
        }
        for t in tasks {
            t.await.expect("member task");
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 600, "every record delivered");
        assert_eq!(
            seen.keys().copied().collect::<Vec<_>>(),
            (0..600).collect::<Vec<_>>()
        );
        let twice: Vec<_> = seen.iter().filter(|(_, d)| d.len() > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
        assert!(seen.values().all(|d| d[0].1 == 1), "first deliveries");
        let per_member: BTreeMap<usize, usize> =
            seen.values().fold(BTreeMap::new(), |mut acc, d| {
                *acc.entry(d[0].0).or_default() += 1;
                acc
            });
        eprintln!("records per member: {per_member:?}");
        assert_eq!(
            per_member.len(),
            2,
            "both members got records: {per_member:?}"
        );
    });
}

/// One explicit-mode member: the released record comes back with delivery
/// count 2, the rejected one never comes back, the accepted ones neither.
#[test]
fn a_released_record_comes_back_and_a_rejected_one_does_not() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-ack");
        create_topic(&client, &topic, 1).await;
        produce_numbered(&client, &topic, 1, 10, 0).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 30_000).await;
        let c = ShareConsumer::new(
            client.clone(),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Explicit, 100),
        )
        .await
        .expect("share consumer");
        // Implicit acknowledgement is refused in explicit mode's opposite;
        // here, a poll with unacknowledged records is refused.
        let first = poll_for(&c, 10, Duration::from_secs(30)).await;
        let offsets: Vec<i64> = first.iter().map(|r| r.record.offset).collect();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>());
        assert!(first.iter().all(|r| r.delivery_count == 1));
        let refused = c.poll(Duration::from_millis(10)).await.unwrap_err();
        assert_eq!(refused.kind(), klamm::ErrorKind::State, "{refused}");
        for r in &first {
            let how = match r.record.offset {
                3 => AcknowledgeType::Release,
                5 => AcknowledgeType::Reject,
                _ => AcknowledgeType::Accept,
            };
            c.acknowledge(r, how).expect("acknowledge");
        }
        let failures = c.commit().await.expect("commit");
        assert!(failures.is_empty(), "{failures:?}");

        // Offset 3 again, delivered twice now; nothing else for a while.
        let again = poll_for(&c, 1, Duration::from_secs(20)).await;
        let got: Vec<(i64, i16)> = again
            .iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect();
        assert_eq!(got, [(3, 2)], "only the released record comes back");
        for r in &again {
            c.acknowledge(r, AcknowledgeType::Accept)
                .expect("acknowledge");
        }
        let mut later = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < until {
            later.extend(c.poll(Duration::from_millis(300)).await.expect("poll"));
        }
        assert!(
            later.is_empty(),
            "rejected (5) and accepted records are not delivered again: {:?}",
            later.iter().map(|r| r.record.offset).collect::<Vec<_>>()
        );
        let failures = c.close().await.expect("close");
        assert!(failures.is_empty(), "{failures:?}");
    });
}

/// A member that holds records past their 2 s lock without acknowledging
/// them: another member gets them, each delivered a second time.
#[test]
fn records_held_past_their_lock_go_to_another_member() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-lock");
        create_topic(&client, &topic, 1).await;
        produce_numbered(&client, &topic, 1, 20, 0).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 2_000).await;
        let holder = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Explicit, 100),
        )
        .await
        .expect("holder");
        let held = poll_for(&holder, 20, Duration::from_secs(30)).await;
        assert_eq!(held.len(), 20);
        // The holder stays a member (its heartbeat goes on) but never
        // acknowledges; the other member gets the records once the locks
        // expire.
        let other = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Implicit, 100),
        )
        .await
        .expect("other");
        let got = poll_for(&other, 20, Duration::from_secs(40)).await;
        let counts: BTreeMap<i64, i16> = got
            .iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect();
        assert_eq!(
            counts.keys().copied().collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(
            counts.values().all(|&c| c == 2),
            "second deliveries: {counts:?}"
        );
        // While the other member holds them, the holder's late
        // acknowledgements are refused, record by record: those records
        // are no longer its own.
        for r in &held {
            holder
                .acknowledge(r, AcknowledgeType::Accept)
                .expect("acknowledge");
        }
        let late = holder.commit().await.expect("commit");
        assert!(!late.is_empty(), "late acknowledgements are refused");
        assert!(
            late.iter().all(|f| f.error.kafka_code()
                == Some(klamm::protocol::error_codes::ErrorCode::INVALID_RECORD_STATE)),
            "{late:?}"
        );
        // The member that holds them now accepts them.
        assert!(other.commit().await.expect("commit").is_empty());
        other.close().await.expect("close");
        holder.close().await.expect("close");
    });
}

/// A renewed record stays with its member past its lock (KIP-1222): the
/// holder renews one of two records every 500 ms for three lock
/// durations while another member polls; the other record, not renewed,
/// is the control and goes to the other member, delivered a second time;
/// the renewed one never does, and once accepted is never delivered again.
#[test]
fn a_renewed_record_stays_past_its_lock_and_one_not_renewed_moves_on() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-renew");
        create_topic(&client, &topic, 1).await;
        produce_numbered(&client, &topic, 1, 2, 0).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 2_000).await;
        let holder = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Explicit, 100),
        )
        .await
        .expect("holder");
        let held = poll_for(&holder, 2, Duration::from_secs(30)).await;
        assert_eq!(held.len(), 2);
        let (kept, let_go) = if held[0].record.offset == 0 {
            (&held[0], &held[1])
        } else {
            (&held[1], &held[0])
        };
        let other = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Implicit, 100),
        )
        .await
        .expect("other");
        let renewing = async {
            let until = tokio::time::Instant::now() + Duration::from_secs(6);
            let mut renewals = 0;
            while tokio::time::Instant::now() < until {
                holder
                    .acknowledge(kept, AcknowledgeType::Renew)
                    .expect("renew");
                let refused = holder.commit().await.expect("commit");
                assert!(refused.is_empty(), "renewal refused: {refused:?}");
                renewals += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            renewals
        };
        let polling = async {
            let until = tokio::time::Instant::now() + Duration::from_secs(6);
            let mut got = Vec::new();
            while tokio::time::Instant::now() < until {
                got.extend(other.poll(Duration::from_millis(300)).await.expect("poll"));
            }
            got
        };
        let (renewals, got) = tokio::join!(renewing, polling);
        assert!(renewals >= 4, "{renewals} renewals");
        let seen: Vec<(i64, i16)> = got
            .iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect();
        assert_eq!(
            seen,
            [(let_go.record.offset, 2)],
            "only the record not renewed moved on"
        );
        // A renewed record still needs its acknowledgement before a poll.
        holder
            .acknowledge(kept, AcknowledgeType::Renew)
            .expect("renew");
        let refused = holder.poll(Duration::from_millis(10)).await.unwrap_err();
        assert!(refused.to_string().contains("renewed"), "{refused}");
        holder
            .acknowledge(kept, AcknowledgeType::Accept)
            .expect("accept");
        assert!(holder.commit().await.expect("commit").is_empty());
        let after = poll_for(&other, 1, Duration::from_secs(4)).await;
        assert!(after.is_empty(), "an accepted record came back: {after:?}");
        other.close().await.expect("close");
        holder.close().await.expect("close");
    });
}

/// A member dropped without close while it holds records: its
/// connections go, the broker releases what it held, and another member
/// gets the records, delivered a second time.
#[test]
fn a_member_dropped_without_close_has_its_records_delivered_again() {
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-drop");
        create_topic(&client, &topic, 1).await;
        produce_numbered(&client, &topic, 1, 20, 0).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 15_000).await;
        let gone = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Explicit, 100),
        )
        .await
        .expect("member");
        let held: BTreeSet<i64> = poll_for(&gone, 20, Duration::from_secs(30))
            .await
            .iter()
            .map(|r| r.record.offset)
            .collect();
        assert_eq!(held.len(), 20);
        drop(gone);
        let other = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Implicit, 100),
        )
        .await
        .expect("other");
        let got = poll_for(&other, 20, Duration::from_secs(40)).await;
        let counts: BTreeMap<i64, i16> = got
            .iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect();
        assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), held);
        assert!(
            counts.values().all(|&c| c == 2),
            "second deliveries: {counts:?}"
        );
        other.close().await.expect("close");
    });
}

/// Against Kafka 4.4 the share APIs are negotiated at their newest
/// versions.
#[test]
fn share_apis_are_negotiated_at_the_newest_versions() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let controller = client.controller().await.expect("controller");
        let conn = client
            .connection(&controller, TrafficClass::Other)
            .await
            .expect("connection");
        for api in [
            ApiKey::ShareGroupHeartbeat,
            ApiKey::ShareFetch,
            ApiKey::ShareAcknowledge,
            ApiKey::ShareGroupDescribe,
        ] {
            assert_eq!(
                conn.api_versions()
                    .version_for(api, conn.broker())
                    .expect("offered"),
                api.versions().1,
                "{api:?}"
            );
        }
    });
}

/// Share-group administration on a live group: described with its member
/// and assignment, start offset and lag read, offsets moved back while
/// the group is empty (refused while it is not) and a new member reading
/// from there, then the group's state for the topic deleted.
#[test]
fn share_group_admin_describes_moves_and_deletes_offsets() {
    use klamm::group::{GroupAdmin, TopicPartition};
    use klamm::protocol::error_codes::ErrorCode;
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-admin");
        create_topic(&client, &topic, 1).await;
        produce_numbered(&client, &topic, 1, 30, 0).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 30_000).await;
        let admin = GroupAdmin::new(client.clone());
        let tp = TopicPartition::new(topic.clone(), 0);

        let c = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Implicit, 100),
        )
        .await
        .expect("share consumer");
        assert_eq!(poll_for(&c, 30, Duration::from_secs(30)).await.len(), 30);
        assert!(c.commit().await.expect("commit").is_empty());

        let d = admin.describe_share_group(&group).await.expect("describe");
        assert_eq!(d.group_id, group);
        assert_eq!(d.state, "Stable");
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.members[0].member_id, c.member_id());
        assert_eq!(d.members[0].subscribed_topics, std::slice::from_ref(&topic));
        assert_eq!(d.members[0].assignment, BTreeSet::from([tp.clone()]));

        // Every record accepted: no lag left. (Kafka 4.4 may report the
        // start offset where the share partition began until it moves it
        // past the accepted records; lag is what says they are done.)
        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let offsets = admin.share_group_offsets(&group).await.expect("offsets");
            if offsets.len() == 1 && offsets[0].lag == Some(0) {
                assert_eq!(offsets[0].partition, tp);
                assert!(
                    offsets[0]
                        .start_offset
                        .is_some_and(|o| (0..=30).contains(&o))
                );
                break;
            }
            assert!(tokio::time::Instant::now() < until, "{offsets:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Control: not while a member is in the group.
        let back = BTreeMap::from([(tp.clone(), 10)]);
        let refused = match admin.alter_share_group_offsets(&group, &back).await {
            Err(e) => e.kafka_code(),
            Ok(r) => r[&tp].as_ref().err().and_then(|e| e.kafka_code()),
        };
        assert_eq!(refused, Some(ErrorCode::NON_EMPTY_GROUP));
        c.close().await.expect("close");

        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        while !admin
            .describe_share_group(&group)
            .await
            .expect("describe")
            .members
            .is_empty()
        {
            assert!(tokio::time::Instant::now() < until, "the member left");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let moved = admin
            .alter_share_group_offsets(&group, &back)
            .await
            .expect("alter");
        assert!(moved[&tp].is_ok(), "{moved:?}");
        let offsets = admin.share_group_offsets(&group).await.expect("offsets");
        assert_eq!(offsets[0].start_offset, Some(10), "{offsets:?}");

        // A new member reads from offset 10, each record for the first
        // time as far as the group's new state knows.
        let c = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            options(AckMode::Implicit, 100),
        )
        .await
        .expect("share consumer");
        let again = poll_for(&c, 20, Duration::from_secs(30)).await;
        let offsets: Vec<i64> = again.iter().map(|r| r.record.offset).collect();
        assert_eq!(offsets, (10..30).collect::<Vec<_>>());
        c.close().await.expect("close");

        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let deleted = admin
                .delete_share_group_offsets(&group, std::slice::from_ref(&topic))
                .await
                .expect("delete");
            match &deleted[&topic] {
                Ok(()) => break,
                Err(e) if e.kafka_code() == Some(ErrorCode::NON_EMPTY_GROUP) => {
                    assert!(tokio::time::Instant::now() < until, "{e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("delete: {e}"),
            }
        }
        let offsets = admin.share_group_offsets(&group).await.expect("offsets");
        assert!(
            offsets.iter().all(|o| o.start_offset.is_none()),
            "no state left: {offsets:?}"
        );
    });
}

/// The Java peer's `share-consume` mode as a child process: its JSON
/// lines, read as they come; it runs until its stdin is closed.
struct JavaShareMember {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl JavaShareMember {
    fn start(peer: &support::interop_peers::PeerProgram, args: &[&str]) -> JavaShareMember {
        use std::io::{BufRead, Read};
        use std::process::{Command, Stdio};
        let mut child = Command::new(&peer.path)
            .arg("share-consume")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the Java peer");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let lines: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
        let stderr: Arc<Mutex<String>> = Default::default();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| serde_json::json!({"type": "not-json", "line": line, "error": e.to_string()}));
                l.lock().unwrap().push(v);
            }
        });
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            e.lock().unwrap().push_str(&s);
        });
        JavaShareMember {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    async fn stop(mut self, limit: Duration) -> (serde_json::Value, Vec<serde_json::Value>) {
        self.stdin.take();
        let until = tokio::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if tokio::time::Instant::now() > until {
                let _ = self.child.kill();
                panic!(
                    "the Java share member did not stop\n{}",
                    support::interop_peers::tail(&self.stderr.lock().unwrap(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Let the reader threads reach the end of the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lines = self.lines.lock().unwrap().clone();
        let summary = lines
            .iter()
            .rev()
            .find(|v| v["type"] == "summary")
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no summary (status {status:?})\n{}",
                    support::interop_peers::tail(&self.stderr.lock().unwrap(), 30)
                )
            });
        (summary, lines)
    }
}

/// klamm's ShareConsumer and the Java client's KafkaShareConsumer
/// (kafka-clients 4.4.0) in one share group, both assigned the one
/// partition: together they accept every record, each accepts some, and no
/// record is accepted by both.
#[test]
fn klamm_and_the_java_share_consumer_share_a_group_and_no_record_is_accepted_twice() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let Some(java) = support::interop_peers::PeerProgram::java() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-share-java");
        create_topic(&client, &topic, 1).await;
        let group = support::unique_topic("klamm-share");
        configure_group(&client, &group, 30_000).await;

        let peer = JavaShareMember::start(
            &java,
            &[
                "--bootstrap",
                &addr,
                "--group",
                &group,
                "--topic",
                &topic,
                "--max-records",
                "25",
                "--acquire-mode",
                "record_limit",
                "--timeout-ms",
                "150000",
            ],
        );
        let c = ShareConsumer::new(
            Client::connect(config(&addr)).await.expect("connect"),
            group.clone(),
            &[topic.as_str()],
            ShareOptions {
                acquire_mode: AcquireMode::RecordLimit,
                ..options(AckMode::Explicit, 25)
            },
        )
        .await
        .expect("share consumer");
        // Both members in the group before the records come: klamm's
        // assignment, and the coordinator listing two members.
        let admin = klamm::group::GroupAdmin::new(client.clone());
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let members = admin
                .describe_share_group(&group)
                .await
                .map(|d| {
                    d.members
                        .iter()
                        .filter(|m| !m.assignment.is_empty())
                        .count()
                })
                .unwrap_or(0);
            if members == 2 && !c.assignment().is_empty() {
                break;
            }
            assert!(tokio::time::Instant::now() < until, "both members assigned");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // 800 records, written in 20 rounds (many batches).
        for round in 0..20 {
            produce_numbered(&client, &topic, 1, 40, round * 40).await;
        }
        let total = 800;

        let mut klamm_accepted: BTreeSet<(i32, i64)> = BTreeSet::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let got = c.poll(Duration::from_millis(300)).await.expect("poll");
            for r in &got {
                c.acknowledge(r, AcknowledgeType::Accept)
                    .expect("acknowledge");
            }
            let refused: BTreeSet<i32> = c
                .commit()
                .await
                .expect("commit")
                .iter()
                .map(|f| f.partition)
                .collect();
            for r in &got {
                if !refused.contains(&r.record.partition) {
                    klamm_accepted.insert((r.record.partition, r.record.offset));
                }
            }
            let java = accepted_by_java(&peer.lines.lock().unwrap());
            let all: BTreeSet<_> = klamm_accepted.union(&java).collect();
            if all.len() >= total {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "accepted so far: klamm {}, Java {}",
                klamm_accepted.len(),
                java.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.close().await.expect("close");
        let (summary, lines) = peer.stop(Duration::from_secs(60)).await;
        assert_eq!(summary["ok"], true, "{summary}");
        let java = accepted_by_java(&lines);
        let both: Vec<_> = klamm_accepted.intersection(&java).collect();
        assert!(both.is_empty(), "accepted by both: {both:?}");
        let all: BTreeSet<(i32, i64)> = klamm_accepted.union(&java).copied().collect();
        let expected: BTreeSet<(i32, i64)> = (0..800).map(|o| (0, o)).collect();
        assert_eq!(all, expected, "every record accepted once");
        eprintln!(
            "accepted: klamm {}, Java {}",
            klamm_accepted.len(),
            java.len()
        );
        assert!(
            !klamm_accepted.is_empty() && !java.is_empty(),
            "both members accepted records"
        );
    });
}

/// The records the Java peer accepted: its "record" lines, less the
/// offsets of partitions whose commit it reported refused.
fn accepted_by_java(lines: &[serde_json::Value]) -> BTreeSet<(i32, i64)> {
    let of = |v: &serde_json::Value| v["partition"].as_i64().unwrap_or(-1) as i32;
    let refused: BTreeSet<(i32, i64)> = lines
        .iter()
        .filter(|v| v["type"] == "ack_error")
        .flat_map(|e| {
            let p = of(e);
            e["offsets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |o| (p, o.as_i64().unwrap_or(-1)))
        })
        .collect();
    lines
        .iter()
        .filter(|v| v["type"] == "record")
        .map(|r| (of(r), r["offset"].as_i64().unwrap_or(-1)))
        .filter(|k| !refused.contains(k))
        .collect()
}
