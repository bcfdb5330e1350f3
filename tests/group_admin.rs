//! Group administration (`GroupAdmin`) against Apache Kafka 4.4 (the
//! single node), on groups of real klamm members: a live group is listed
//! and described with its members' assignments, its committed offsets and
//! lag match what was produced and read (a partition never committed has
//! no commit); an empty group's offsets are reset and a new member starts
//! there; offsets and groups are deleted once nobody uses them (refused
//! while somebody does); a static member is removed by its instance id.
//! The Java admin client (kafka-clients 4.4.0) witnesses the descriptions,
//! the committed offsets after every change, and the deletions.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::client::OffsetSpec;
use klamm::group::{
    GroupAdmin, GroupConsumer, GroupEvent, ListGroupsOptions, OffsetAndMetadata, TopicPartition,
};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Config, Error};
use support::java_admin::JavaAdmin;
use support::read::config;
use support::topics::create_topic;
use tokio::sync::watch;

/// A member config: short heartbeats, commits every 300 ms, `reset` when
/// there is no commit.
fn member_config(addr: &str, group: &str, client_id: &str, reset: &str) -> Config {
    let mut c = config(addr);
    c.net.client_id = client_id.to_string();
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(30);
    c.consumer.auto_offset_reset = match reset {
        "latest" => klamm::config::OffsetReset::Latest,
        _ => klamm::config::OffsetReset::Earliest,
    };
    c.consumer.auto_commit_interval = Duration::from_millis(300);
    c.consumer.partition_assignment_strategy = vec!["range".to_string()];
    c
}

/// Produces `count` records to each of `partitions` of `topic`.
async fn produce(client: &Client, topic: &str, partitions: &[(i32, usize)]) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut futures = Vec::new();
    for (p, count) in partitions {
        for i in 0..*count {
            let r = ProducerRecord::new(topic.to_string(), format!("{p}:{i}")).with_partition(*p);
            futures.push(producer.send(r).await.expect("send"));
        }
    }
    for f in futures {
        f.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// What a running member has seen: the partitions it owns now and the
/// offsets it read, by partition.
#[derive(Debug, Default)]
struct Seen {
    owned: BTreeSet<TopicPartition>,
    read: BTreeMap<TopicPartition, Vec<i64>>,
}

/// A member read on a task of its own until stopped, so that it stays in
/// the group while the test asks the admin.
struct Running {
    seen: Arc<Mutex<Seen>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<GroupConsumer>,
}

impl Running {
    async fn start(cfg: Config, topic: &str) -> Running {
        let mut g = GroupConsumer::new(Client::connect(cfg).await.expect("connect"), [topic])
            .await
            .expect("member");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, mut stopped) = watch::channel(false);
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => return g,
                    ev = g.recv() => {
                        let ev = ev.expect("the member stopped").expect("event");
                        let mut s = shared.lock().expect("seen");
                        match ev {
                            GroupEvent::Records(b) => {
                                for r in b.iter() {
                                    let tp = TopicPartition::new(&*r.topic, r.partition);
                                    s.read.entry(tp).or_default().push(r.offset);
                                }
                            }
                            GroupEvent::Assigned(tps) => s.owned.extend(tps),
                            GroupEvent::Revoked(tps) => {
                                for tp in &tps {
                                    s.owned.remove(tp);
                                }
                            }
                            GroupEvent::Lost { partitions, .. } => {
                                for tp in &partitions {
                                    s.owned.remove(tp);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        Running { seen, stop, task }
    }

    fn owned(&self) -> BTreeSet<TopicPartition> {
        self.seen.lock().expect("seen").owned.clone()
    }

    fn read(&self) -> BTreeMap<TopicPartition, Vec<i64>> {
        self.seen.lock().expect("seen").read.clone()
    }

    /// Stops reading and closes the member (LeaveGroup for a dynamic one).
    async fn close(self) {
        let _ = self.stop.send(true);
        let g = self.task.await.expect("member task");
        g.close().await.expect("close");
    }
}

/// The committed offsets Java's admin reads, by partition.
async fn java_committed(java: &JavaAdmin, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let seen = java.result(&format!("group-offsets {group}")).await;
    seen.as_object()
        .expect("offsets")
        .iter()
        .map(|(k, v)| {
            let p = k
                .strip_prefix(&format!("{topic}-"))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("a partition of {topic}: {k}"));
            (p, v.as_i64().expect("offset"))
        })
        .collect()
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn committed_map(offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>) -> BTreeMap<i32, i64> {
    offsets
        .iter()
        .map(|(tp, o)| (tp.partition, o.offset))
        .collect()
}

fn code_of<T: std::fmt::Debug>(r: &klamm::Result<T>) -> ErrorCode {
    match r {
        Err(Error::Broker { code, .. }) => *code,
        other => panic!("expected a broker error, got {other:?}"),
    }
}

/// A live group of two range members over three partitions, records in
/// two of them: listed (state Stable, type classic; the state and type
/// filters keep or drop it), described (two members, their subscriptions
/// and assignments decoded, matching what each member was given),
/// committed offsets exactly what was read, and lag 0 for both with the
/// third partition owned but never committed — shown without a commit
/// (control). After the members leave, new records make lag.
#[test]
fn a_live_group_is_listed_and_described_and_its_offsets_and_lag_match() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let admin = GroupAdmin::new(client.clone());
        let topic = support::unique_topic("klamm-admin-live");
        create_topic(&client, &topic, 3).await;
        produce(&client, &topic, &[(0, 20), (1, 30)]).await;
        let group = support::unique_topic("klamm-admin-live");

        let a = Running::start(member_config(&addr, &group, "admin-a", "earliest"), &topic).await;
        let b = Running::start(member_config(&addr, &group, "admin-b", "earliest"), &topic).await;
        support::wait_for(
            "both members own partitions and all is read",
            60,
            async || {
                let (oa, ob) = (a.owned(), b.owned());
                let read: usize = a
                    .read()
                    .values()
                    .chain(b.read().values())
                    .map(Vec::len)
                    .sum();
                !oa.is_empty() && !ob.is_empty() && oa.len() + ob.len() == 3 && read == 50
            },
        )
        .await;
        support::wait_for("the reads are committed", 30, async || {
            let c = admin.committed_offsets(&group, None).await.expect("fetch");
            committed_map(&c) == BTreeMap::from([(0, 20), (1, 30)])
        })
        .await;

        // Listed, with state and type; the filters apply.
        let all = admin.list_groups().await.expect("list");
        let mine = all
            .iter()
            .find(|g| g.group_id == group)
            .expect("the group is listed");
        assert_eq!(mine.protocol_type, "consumer");
        assert_eq!(mine.state.as_deref(), Some("Stable"));
        assert_eq!(mine.group_type.as_deref(), Some("classic"));
        let listed = |states: &[&str], types: &[&str]| {
            let options = ListGroupsOptions {
                states: states.iter().map(|s| s.to_string()).collect(),
                types: types.iter().map(|s| s.to_string()).collect(),
            };
            let admin = admin.clone();
            let group = group.clone();
            async move {
                let gs = admin.list_groups_with(&options).await.expect("list");
                gs.iter().any(|g| g.group_id == group)
            }
        };
        assert!(listed(&["Stable"], &[]).await);
        assert!(listed(&[], &["classic"]).await);
        assert!(!listed(&["Empty"], &[]).await, "control: state filter");
        assert!(!listed(&[], &["consumer"]).await, "control: type filter");

        // Described: members, assignments, state, protocol; an unknown
        // group in the same call is Dead, on its own.
        let unknown = support::unique_topic("klamm-admin-nobody");
        let described = admin
            .describe_groups(&[group.clone(), unknown.clone()])
            .await;
        let d = described[&group].as_ref().expect("described");
        assert_eq!(
            (
                d.state.as_str(),
                d.protocol.as_str(),
                d.protocol_type.as_str()
            ),
            ("Stable", "range", "consumer")
        );
        assert!(d.exists());
        assert_eq!(d.members.len(), 2);
        for (member, running) in [("admin-a", &a), ("admin-b", &b)] {
            let m = d
                .members
                .iter()
                .find(|m| m.client_id == member)
                .expect("member described");
            assert!(m.decode_error.is_none(), "{:?}", m.decode_error);
            assert_eq!(
                m.subscription.as_ref().expect("subscription").topics,
                vec![topic.clone()]
            );
            let assigned: BTreeSet<TopicPartition> = m
                .assignment
                .as_ref()
                .expect("assignment")
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| tp(t, *p)))
                .collect();
            assert_eq!(assigned, running.owned(), "{member}'s assignment");
        }
        let none = described[&unknown].as_ref().expect("unknown described");
        assert!(!none.exists() && none.members.is_empty());
        // Java describes the same members with the same partitions, and
        // reads the same commits.
        let java = JavaAdmin::new(&addr).expect("Java admin");
        let listed = java.result("list-groups").await;
        assert_eq!(listed[&group]["state"], "Stable", "{listed}");
        assert_eq!(listed[&group]["type"], "Classic", "{listed}");
        let seen = java.result(&format!("describe-group {group}")).await;
        assert_eq!(seen["state"], "Stable");
        assert_eq!(seen["type"], "Classic");
        for m in seen["members"].as_array().expect("members") {
            let running = match m["client_id"].as_str() {
                Some("admin-a") => &a,
                Some("admin-b") => &b,
                other => panic!("unexpected member {other:?}"),
            };
            let theirs: BTreeSet<String> = m["partitions"]
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| p.as_str().expect("partition").to_string())
                .collect();
            let ours: BTreeSet<String> = running
                .owned()
                .iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect();
            assert_eq!(theirs, ours);
        }
        assert_eq!(
            java_committed(&java, &group, &topic).await,
            BTreeMap::from([(0, 20), (1, 30)])
        );

        // Committed offsets: exactly what was read; partition 2 has none.
        let committed = admin.committed_offsets(&group, None).await.expect("fetch");
        assert_eq!(
            committed_map(&committed),
            BTreeMap::from([(0, 20), (1, 30)])
        );
        let asked = admin
            .committed_offsets(&group, Some(&[tp(&topic, 2)]))
            .await
            .expect("fetch p2");
        assert!(asked.is_empty(), "control: no commit for partition 2");

        // Lag: 0 where all is read; partition 2 owned, never committed.
        let lag = admin.lag(&group).await.expect("lag");
        let rows: Vec<_> = lag
            .iter()
            .map(|l| (l.partition.partition, l.committed, l.log_end, l.lag))
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, Some(20), Some(20), Some(0)),
                (1, Some(30), Some(30), Some(0)),
                (2, None, Some(0), None),
            ]
        );
        assert!(lag.iter().all(|l| l.member_id.is_some()), "{lag:?}");
        let owner_of_2 = lag[2].client_id.clone().expect("owner");
        let holder = if a.owned().contains(&tp(&topic, 2)) {
            "admin-a"
        } else {
            "admin-b"
        };
        assert_eq!(owner_of_2, holder);

        // After both leave, new records are lag; no owners any more.
        a.close().await;
        b.close().await;
        produce(&client, &topic, &[(0, 7), (2, 4)]).await;
        let lag = admin.lag(&group).await.expect("lag");
        let rows: Vec<_> = lag
            .iter()
            .map(|l| {
                (
                    l.partition.partition,
                    l.committed,
                    l.log_end,
                    l.lag,
                    l.member_id.clone(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, Some(20), Some(27), Some(7), None),
                (1, Some(30), Some(30), Some(0), None),
            ]
        );
        assert_eq!(
            admin.describe_group(&group).await.expect("describe").state,
            "Empty"
        );
        client.close().await;
    });
}

/// Offsets of an empty group are altered and reset, and a new member
/// starts exactly there (with `auto.offset.reset=latest`, so a member that
/// ignored the commits would read nothing old). The control: while the
/// group has a member, the same change is refused for every partition and
/// the commits stay as they were.
#[test]
fn an_empty_groups_offsets_are_reset_and_a_new_member_starts_there() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let admin = GroupAdmin::new(client.clone());
        let topic = support::unique_topic("klamm-admin-reset");
        create_topic(&client, &topic, 3).await;
        produce(&client, &topic, &[(0, 10), (1, 10), (2, 10)]).await;
        let group = support::unique_topic("klamm-admin-reset");

        let a = Running::start(member_config(&addr, &group, "admin-a", "earliest"), &topic).await;
        support::wait_for("the member reads and commits everything", 60, async || {
            let c = admin.committed_offsets(&group, None).await.expect("fetch");
            committed_map(&c) == BTreeMap::from([(0, 10), (1, 10), (2, 10)])
        })
        .await;

        // Control: refused while the group has a member.
        let to = BTreeMap::from([(tp(&topic, 0), OffsetAndMetadata::new(3))]);
        let refused = admin.alter_offsets(&group, &to).await.expect("alter");
        assert_eq!(refused.len(), 1);
        let outcome = &refused[&tp(&topic, 0)];
        assert_eq!(
            code_of(outcome),
            ErrorCode::UNKNOWN_MEMBER_ID,
            "{outcome:?}"
        );
        let e = outcome.as_ref().expect_err("refused").to_string();
        assert!(e.contains(&group) && e.contains("empty"), "{e}");
        let still = admin.committed_offsets(&group, None).await.expect("fetch");
        assert_eq!(
            committed_map(&still)[&0],
            10,
            "the refused change changed nothing"
        );

        a.close().await;
        assert_eq!(
            admin.describe_group(&group).await.expect("describe").state,
            "Empty"
        );
        // Empty: p0 to 3 by hand, p1 to the log start, p2 to the end.
        let altered = admin.alter_offsets(&group, &to).await.expect("alter");
        assert!(altered[&tp(&topic, 0)].is_ok(), "{altered:?}");
        let reset = admin
            .reset_offsets(&group, &[tp(&topic, 1)], OffsetSpec::Oldest)
            .await
            .expect("reset");
        assert_eq!(reset[&tp(&topic, 1)].as_ref().ok(), Some(&0));
        let to_end = admin
            .reset_offsets(&group, &[tp(&topic, 2), tp(&topic, 7)], OffsetSpec::Newest)
            .await
            .expect("reset");
        assert_eq!(to_end[&tp(&topic, 2)].as_ref().ok(), Some(&10));
        assert_eq!(
            code_of(&to_end[&tp(&topic, 7)]),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            "a partition that does not exist fails on its own"
        );
        let now = admin.committed_offsets(&group, None).await.expect("fetch");
        assert_eq!(
            committed_map(&now),
            BTreeMap::from([(0, 3), (1, 0), (2, 10)])
        );
        let java = JavaAdmin::new(&addr).expect("Java admin");
        assert_eq!(
            java_committed(&java, &group, &topic).await,
            committed_map(&now),
            "Java reads the altered and reset offsets"
        );

        // A new member starts at the reset positions.
        let b = Running::start(member_config(&addr, &group, "admin-b", "latest"), &topic).await;
        support::wait_for(
            "the new member reads from the reset positions",
            60,
            async || {
                let r = b.read();
                r.get(&tp(&topic, 0)).map(Vec::len) == Some(7)
                    && r.get(&tp(&topic, 1)).map(Vec::len) == Some(10)
            },
        )
        .await;
        let r = b.read();
        assert_eq!(r[&tp(&topic, 0)], (3..10).collect::<Vec<i64>>());
        assert_eq!(r[&tp(&topic, 1)], (0..10).collect::<Vec<i64>>());
        assert!(!r.contains_key(&tp(&topic, 2)), "nothing after the end");
        b.close().await;
        client.close().await;
    });
}

/// OffsetDelete and DeleteGroups: while a member subscribes to the topic,
/// deleting its offsets is refused per partition (GROUP_SUBSCRIBED_TO_TOPIC)
/// and deleting the group is refused with NON_EMPTY_GROUP for that group,
/// while an unknown group in the same call fails on its own
/// (GROUP_ID_NOT_FOUND). Once the member left, one partition's offset is
/// deleted (the other stays), then the group: it is no longer listed and
/// describes as Dead.
#[test]
fn offsets_and_groups_are_deleted_once_nobody_uses_them() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let admin = GroupAdmin::new(client.clone());
        let topic = support::unique_topic("klamm-admin-delete");
        create_topic(&client, &topic, 2).await;
        produce(&client, &topic, &[(0, 5), (1, 6)]).await;
        let group = support::unique_topic("klamm-admin-delete");

        let a = Running::start(member_config(&addr, &group, "admin-a", "earliest"), &topic).await;
        support::wait_for("the member commits", 60, async || {
            let c = admin.committed_offsets(&group, None).await.expect("fetch");
            committed_map(&c) == BTreeMap::from([(0, 5), (1, 6)])
        })
        .await;

        // Refused while the member is there (the controls).
        let p0 = [tp(&topic, 0)];
        let refused = admin
            .delete_offsets(&group, &p0)
            .await
            .expect("delete offsets");
        assert_eq!(
            code_of(&refused[&p0[0]]),
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
        );
        let unknown = support::unique_topic("klamm-admin-nobody");
        let outcomes = admin.delete_groups(&[group.clone(), unknown.clone()]).await;
        assert_eq!(code_of(&outcomes[&group]), ErrorCode::NON_EMPTY_GROUP);
        let e = outcomes[&group].as_ref().expect_err("refused").to_string();
        assert!(e.contains(&group), "the error names the group: {e}");
        assert_eq!(code_of(&outcomes[&unknown]), ErrorCode::GROUP_ID_NOT_FOUND);
        assert!(
            admin
                .list_groups()
                .await
                .expect("list")
                .iter()
                .any(|g| g.group_id == group),
            "still there"
        );

        a.close().await;
        let deleted = admin
            .delete_offsets(&group, &p0)
            .await
            .expect("delete offsets");
        assert!(deleted[&p0[0]].is_ok(), "{deleted:?}");
        let left = admin.committed_offsets(&group, None).await.expect("fetch");
        assert_eq!(committed_map(&left), BTreeMap::from([(1, 6)]));
        let java = JavaAdmin::new(&addr).expect("Java admin");
        assert_eq!(
            java_committed(&java, &group, &topic).await,
            BTreeMap::from([(1, 6)]),
            "Java no longer reads the deleted offset"
        );

        let outcomes = admin.delete_groups(std::slice::from_ref(&group)).await;
        assert!(outcomes[&group].is_ok(), "{outcomes:?}");
        assert!(
            !admin
                .list_groups()
                .await
                .expect("list")
                .iter()
                .any(|g| g.group_id == group),
            "no longer listed"
        );
        assert!(
            !admin
                .describe_group(&group)
                .await
                .expect("describe")
                .exists()
        );
        assert!(
            admin
                .committed_offsets(&group, None)
                .await
                .expect("fetch")
                .is_empty()
        );
        // Deleting it again: GROUP_ID_NOT_FOUND.
        let again = admin.delete_groups(std::slice::from_ref(&group)).await;
        assert_eq!(code_of(&again[&group]), ErrorCode::GROUP_ID_NOT_FOUND);
        let seen = JavaAdmin::new(&addr)
            .expect("Java admin")
            .run(&[format!("describe-group {group}")])
            .await;
        assert!(
            seen[0]["error"] == "GROUP_ID_NOT_FOUND" || seen[0]["result"]["state"] == "Dead",
            "Java no longer finds the group: {}",
            seen[0]
        );
        client.close().await;
    });
}

/// A static member that stopped without leaving stays in the group until
/// its session timeout (30 s here) — the control: still described 3 s
/// later. Removed by its instance id, it is gone at once and the other
/// member takes all partitions well before the session timeout; an
/// instance id nobody has fails on its own with UNKNOWN_MEMBER_ID.
#[test]
fn a_static_member_is_removed_by_its_instance_id() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let admin = GroupAdmin::new(client.clone());
        let topic = support::unique_topic("klamm-admin-static");
        create_topic(&client, &topic, 4).await;
        let group = support::unique_topic("klamm-admin-static");
        let static_config = |client_id: &str| {
            let mut c = member_config(&addr, &group, client_id, "earliest");
            c.consumer.group_instance_id = Some(format!("{client_id}-instance"));
            c.consumer.session_timeout = Duration::from_secs(30);
            c
        };

        let a = Running::start(static_config("admin-a"), &topic).await;
        let b = Running::start(static_config("admin-b"), &topic).await;
        support::wait_for("two members with two partitions each", 60, async || {
            a.owned().len() == 2 && b.owned().len() == 2
        })
        .await;
        // A static member's close sends no LeaveGroup.
        a.close().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let d = admin.describe_group(&group).await.expect("describe");
        let instances: BTreeSet<Option<String>> = d
            .members
            .iter()
            .map(|m| m.group_instance_id.clone())
            .collect();
        assert_eq!(
            instances,
            BTreeSet::from([
                Some("admin-a-instance".to_string()),
                Some("admin-b-instance".to_string())
            ]),
            "control: the stopped static member is still a member"
        );
        assert_eq!(b.owned().len(), 2);

        let removed_at = tokio::time::Instant::now();
        let out = admin
            .remove_members(
                &group,
                &["admin-a-instance".to_string(), "nobody".to_string()],
            )
            .await
            .expect("remove");
        assert!(out["admin-a-instance"].is_ok(), "{out:?}");
        assert_eq!(code_of(&out["nobody"]), ErrorCode::UNKNOWN_MEMBER_ID);
        support::wait_for("the other member takes every partition", 20, async || {
            b.owned().len() == 4
        })
        .await;
        assert!(removed_at.elapsed() < Duration::from_secs(20));
        let d = admin.describe_group(&group).await.expect("describe");
        assert_eq!(d.members.len(), 1, "{d:?}");
        assert_eq!(
            d.members[0].group_instance_id.as_deref(),
            Some("admin-b-instance")
        );
        // Java describes the one member left, with all four partitions.
        let java = JavaAdmin::new(&addr).expect("Java admin");
        let seen = java.result(&format!("describe-group {group}")).await;
        let members = seen["members"].as_array().expect("members");
        assert_eq!(members.len(), 1, "{seen}");
        assert_eq!(
            members[0]["partitions"].as_array().map(Vec::len),
            Some(4),
            "{seen}"
        );
        b.close().await;
        client.close().await;
    });
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kafka's own console consumer in a KIP-848 `consumer` group
/// (`group.protocol=consumer`): listed with type `consumer` (and dropped by
/// the `classic` filter — the control), described through
/// ConsumerGroupDescribe (DescribeGroups says Dead for such a group) with
/// the server-side assignor, the member's epoch, subscription and its
/// assignment by topic name covering every partition.
#[test]
fn a_kip848_group_is_described_with_consumer_group_describe() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let Some(kafka_dir) = support::require("KLAMM_TEST_KAFKA_DIR", "Kafka run directory")
        else {
            return;
        };
        let run_dir = std::path::Path::new(&kafka_dir)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let client = Client::connect(config(&addr)).await.expect("connect");
        let admin = GroupAdmin::new(client.clone());
        let topic = support::unique_topic("klamm-admin-848");
        create_topic(&client, &topic, 3).await;
        let group = support::unique_topic("klamm-admin-848");
        // The JVM itself (not the script around it), so that killing the
        // child stops the member.
        let classpath = std::process::Command::new(support::peers::script("kafka"))
            .arg("classpath")
            .env("KLAMM_RUN_DIR", &run_dir)
            .output()
            .expect("the tools' classpath");
        assert!(classpath.status.success(), "scripts/kafka classpath failed");
        let classpath = String::from_utf8_lossy(&classpath.stdout)
            .trim()
            .to_string();
        let java = std::process::Command::new(std::env::var("JAVA").unwrap_or("java".into()))
            .args(["-Xmx256m", "-cp", &classpath])
            .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
            .args([
                "--bootstrap-server",
                &addr,
                "--topic",
                &topic,
                "--group",
                &group,
            ])
            .args(["--command-property", "group.protocol=consumer"])
            .args(["--command-property", "client.id=java-848"])
            .args(["--timeout-ms", "60000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the Java console consumer");
        let mut java = KillOnDrop(java);

        let consumer_only = ListGroupsOptions {
            types: vec!["consumer".into()],
            ..Default::default()
        };
        let found = async || {
            let gs = admin.list_groups_with(&consumer_only).await.expect("list");
            gs.into_iter().find(|g| g.group_id == group)
        };
        support::wait_for("the Java member's group is Stable", 90, async || {
            found()
                .await
                .is_some_and(|g| g.state.as_deref() == Some("Stable"))
        })
        .await;
        let listed = found().await.expect("listed");
        assert_eq!(listed.group_type.as_deref(), Some("consumer"));
        let classic_only = ListGroupsOptions {
            types: vec!["classic".into()],
            ..Default::default()
        };
        let classic = admin.list_groups_with(&classic_only).await.expect("list");
        assert!(
            !classic.iter().any(|g| g.group_id == group),
            "control: type filter"
        );

        support::wait_for("the member owns every partition", 30, async || {
            let d = admin.describe_group(&group).await.expect("describe");
            d.owners().len() == 3
        })
        .await;
        let d = admin.describe_group(&group).await.expect("describe");
        java.stop();
        assert_eq!(d.group_type, klamm::group::GroupType::Consumer);
        assert_eq!(
            (d.state.as_str(), d.protocol_type.as_str()),
            ("Stable", "consumer")
        );
        assert!(!d.protocol.is_empty(), "the server-side assignor is named");
        assert!(d.group_epoch.is_some_and(|e| e > 0));
        assert_eq!(d.members.len(), 1, "{d:?}");
        let m = &d.members[0];
        assert_eq!(m.client_id, "java-848");
        assert!(m.member_epoch.is_some_and(|e| e > 0));
        assert_eq!(
            m.subscription.as_ref().expect("subscription").topics,
            vec![topic.clone()]
        );
        assert!(m.decode_error.is_none(), "{:?}", m.decode_error);
        let a = m.assignment.as_ref().expect("assignment");
        assert_eq!(a.partitions.get(&topic), Some(&vec![0, 1, 2]));
        client.close().await;
    });
}
