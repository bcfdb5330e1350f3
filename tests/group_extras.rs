//! The group consumer's extras against Apache Kafka 4.4 (the single
//! node): offset hooks (where a partition starts, where an out-of-range
//! offset goes, the start notification), `NoOlderThan`, a maximum message
//! age per topic, and a watch-only member. Each test has a control: the
//! same situation without the extra reads what the plain consumer reads.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use klamm::client::TrafficClass;
use klamm::config::OffsetReset;
use klamm::consumer::StartOffset;
use klamm::group::{
    GroupConsumer, GroupEvent, GroupOptions, HookFuture, NoOlderThan, OffsetAndMetadata,
    OffsetHooks, OffsetManager, TopicPartition,
};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::DeleteRecordsRequest;
use klamm::protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use klamm::{Client, Config};
use support::read::config;
use support::topics::create_topic;

const HOUR: Duration = Duration::from_secs(3600);

fn member_config(addr: &str, group: &str, reset: OffsetReset) -> Config {
    let mut c = config(addr);
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(20);
    c.consumer.auto_offset_reset = reset;
    c.consumer.auto_commit_interval = Duration::from_millis(500);
    c.consumer.partition_assignment_strategy = vec!["range".to_string()];
    c
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Produces `count` records ("p:i", i from `from`) to each of the
/// `partitions`, with create time `timestamp` (the producer's clock when
/// `None`).
async fn produce(
    client: &Client,
    topic: &str,
    partitions: i32,
    count: usize,
    from: usize,
    timestamp: Option<i64>,
) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut futures = Vec::new();
    for p in 0..partitions {
        for i in from..from + count {
            let mut r =
                ProducerRecord::new(topic.to_string(), format!("{p}:{i}")).with_partition(p);
            if let Some(ts) = timestamp {
                r = r.with_timestamp(ts);
            }
            futures.push(producer.send(r).await.expect("send"));
        }
    }
    for f in futures {
        f.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// Commits `offsets` (partition → offset) for `group`, outside any
/// membership (the group has no members yet).
async fn commit(client: &Client, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let om = OffsetManager::new(client.clone(), group);
    let map: BTreeMap<TopicPartition, OffsetAndMetadata> = offsets
        .iter()
        .map(|(p, o)| (TopicPartition::new(topic, *p), OffsetAndMetadata::new(*o)))
        .collect();
    om.commit_offsets(map).await.expect("commit");
}

async fn committed(client: &Client, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let om = OffsetManager::new(client.clone(), group);
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let got = om.fetch(&tps).await.expect("fetch");
    tps.iter().map(|tp| got.get(tp).map(|o| o.offset)).collect()
}

/// Deletes the records of `topic`/`partition` before `offset`
/// (DeleteRecords at the leader): the log start moves there.
async fn delete_records(client: &Client, topic: &str, partition: i32, offset: i64) {
    let leader = client.leader(topic, partition).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Other)
        .await
        .expect("connection");
    let resp = conn
        .send(&DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.to_string(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        })
        .await
        .expect("DeleteRecords");
    let p = &resp.topics[0].partitions[0];
    assert_eq!(ErrorCode(p.error_code), ErrorCode::NONE, "DeleteRecords");
    assert_eq!(p.low_watermark, offset);
}

/// What one member saw.
#[derive(Debug, Default)]
struct Seen {
    /// partition → offsets read, in order.
    read: BTreeMap<i32, Vec<i64>>,
    assigned: Vec<Vec<TopicPartition>>,
    revoked: Vec<Vec<TopicPartition>>,
    owned: BTreeSet<TopicPartition>,
}

impl Seen {
    fn take(&mut self, ev: GroupEvent) {
        match ev {
            GroupEvent::Records(b) => {
                for r in b.iter() {
                    let tp = TopicPartition::new(&*r.topic, r.partition);
                    assert!(self.owned.contains(&tp), "a record of {tp}, not owned");
                    self.read.entry(r.partition).or_default().push(r.offset);
                }
            }
            GroupEvent::Assigned(tps) => {
                self.owned.extend(tps.iter().cloned());
                self.assigned.push(tps);
            }
            GroupEvent::Revoked(tps) => {
                for tp in &tps {
                    self.owned.remove(tp);
                }
                self.revoked.push(tps);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn count(&self) -> usize {
        self.read.values().map(Vec::len).sum()
    }

    fn offsets(&self, p: i32) -> Vec<i64> {
        self.read.get(&p).cloned().unwrap_or_default()
    }
}

/// Reads from `g` until `until` holds (then `linger` longer, so that
/// records that should not come have the time to come) or `limit` passes.
async fn drive(
    g: &mut GroupConsumer,
    seen: &mut Seen,
    limit: Duration,
    linger: Duration,
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
    let deadline = tokio::time::Instant::now() + linger;
    while let Ok(ev) = tokio::time::timeout_at(deadline, g.recv()).await {
        seen.take(ev.expect("not stopped").expect("event"));
    }
}

/// One member of a fresh consumer of `group` reading `topic` until it has
/// read `want` records (then a little longer), closed afterwards.
async fn read_all(cfg: Config, topic: &str, options: GroupOptions, want: usize) -> Seen {
    let client = Client::connect(cfg).await.expect("connect");
    let mut g = GroupConsumer::with_options(client, [topic], options)
        .await
        .expect("member");
    let mut seen = Seen::default();
    drive(
        &mut g,
        &mut seen,
        Duration::from_secs(60),
        Duration::from_millis(1500),
        |s| !s.owned.is_empty() && s.count() >= want,
    )
    .await;
    g.close().await.expect("close");
    seen
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Starting(i32, Option<i64>),
    OutOfRange(i32),
    Started(i32, i64),
}

/// Hooks that start `skip` records after the committed offset (the
/// oldest without one), send an out-of-range partition to `to`, and
/// record every call.
#[derive(Debug)]
struct Recording {
    skip: i64,
    to: StartOffset,
    calls: Mutex<Vec<Call>>,
}

impl Recording {
    fn new(skip: i64, to: StartOffset) -> Arc<Recording> {
        Arc::new(Recording {
            skip,
            to,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn log(&self, c: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(c);
        }
    }
}

impl OffsetHooks for Recording {
    fn starting_offset<'a>(
        &'a self,
        _client: &'a Client,
        _topic: &'a str,
        partition: i32,
        committed: Option<i64>,
    ) -> HookFuture<'a, StartOffset> {
        self.log(Call::Starting(partition, committed));
        let start = committed.map_or(StartOffset::Oldest, |c| StartOffset::Offset(c + self.skip));
        Box::pin(async move { Ok(start) })
    }

    fn offset_out_of_range<'a>(
        &'a self,
        _client: &'a Client,
        _topic: &'a str,
        partition: i32,
    ) -> HookFuture<'a, StartOffset> {
        self.log(Call::OutOfRange(partition));
        let to = self.to;
        Box::pin(async move { Ok(to) })
    }

    fn partition_started(&self, _topic: &str, partition: i32, offset: i64) {
        self.log(Call::Started(partition, offset));
    }
}

fn with_hooks(hooks: Arc<dyn OffsetHooks>) -> GroupOptions {
    GroupOptions {
        hooks: Some(hooks),
        ..GroupOptions::default()
    }
}

/// A starting-offset hook that starts at committed + 3 skips exactly
/// three records, and hears where the partition started; the control
/// group, with the same commit and no hook, reads them.
#[test]
fn a_starting_offset_hook_skips_exactly_what_it_says() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-start");
        create_topic(&client, &topic, 1).await;
        produce(&client, &topic, 1, 20, 0, None).await;
        let (group, control) = (
            support::unique_topic("klamm-extras-g"),
            support::unique_topic("klamm-extras-c"),
        );
        commit(&client, &group, &topic, &[(0, 5)]).await;
        commit(&client, &control, &topic, &[(0, 5)]).await;

        let hooks = Recording::new(3, StartOffset::Oldest);
        let cfg = member_config(&addr, &group, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, with_hooks(hooks.clone()), 12).await;
        assert_eq!(seen.offsets(0), (8..20).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(
            hooks.calls(),
            vec![Call::Starting(0, Some(5)), Call::Started(0, 8)]
        );

        let cfg = member_config(&addr, &control, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, GroupOptions::default(), 15).await;
        assert_eq!(
            seen.offsets(0),
            (5..20).collect::<Vec<_>>(),
            "control: from the commit"
        );
        client.close().await;
    });
}

/// A committed offset past the end of partition 0: the fetch answers
/// OFFSET_OUT_OF_RANGE, the hook is asked once and reading resumes where
/// it says (offset 10), with no error reaching `recv`, and the new place
/// is committed; partition 1 (a valid commit) never asks the hook. The
/// control group, without hooks (`earliest`), goes back to offset 0.
#[test]
fn an_out_of_range_offset_goes_where_the_hook_says() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-oor");
        create_topic(&client, &topic, 2).await;
        produce(&client, &topic, 2, 20, 0, None).await;
        let (group, control) = (
            support::unique_topic("klamm-extras-g"),
            support::unique_topic("klamm-extras-c"),
        );
        for g in [&group, &control] {
            commit(&client, g, &topic, &[(0, 1000), (1, 5)]).await;
        }

        let hooks = Recording::new(0, StartOffset::Offset(10));
        let cfg = member_config(&addr, &group, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, with_hooks(hooks.clone()), 25).await;
        assert_eq!(seen.offsets(0), (10..20).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(seen.offsets(1), (5..20).collect::<Vec<_>>());
        let calls = hooks.calls();
        let p0: Vec<&Call> = calls
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Call::Starting(0, _) | Call::OutOfRange(0) | Call::Started(0, _)
                )
            })
            .collect();
        assert_eq!(
            p0,
            vec![
                &Call::Starting(0, Some(1000)),
                &Call::Started(0, 1000),
                &Call::OutOfRange(0),
                &Call::Started(0, 10),
            ],
            "{calls:?}"
        );
        assert!(!calls.contains(&Call::OutOfRange(1)), "{calls:?}");
        assert_eq!(
            committed(&client, &group, &topic, 2).await,
            vec![Some(20), Some(20)]
        );

        let cfg = member_config(&addr, &control, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, GroupOptions::default(), 35).await;
        assert_eq!(
            seen.offsets(0),
            (0..20).collect::<Vec<_>>(),
            "control: earliest"
        );
        assert_eq!(seen.offsets(1), (5..20).collect::<Vec<_>>());
        client.close().await;
    });
}

/// Records deleted past the committed offset (the log start moves from
/// 0 to 15, the commit is 5): the fetch at 5 is out of range below the
/// log start, the hook (oldest) is asked once and reading resumes at 15.
/// The control, without hooks under `latest`, goes to the end instead and
/// reads only a record produced afterwards.
#[test]
fn deleted_records_before_the_commit_go_where_the_hook_says() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-deleted");
        create_topic(&client, &topic, 1).await;
        produce(&client, &topic, 1, 20, 0, None).await;
        delete_records(&client, &topic, 0, 15).await;
        let (group, control) = (
            support::unique_topic("klamm-extras-g"),
            support::unique_topic("klamm-extras-c"),
        );
        for g in [&group, &control] {
            commit(&client, g, &topic, &[(0, 5)]).await;
        }

        let hooks = Recording::new(0, StartOffset::Oldest);
        let cfg = member_config(&addr, &group, OffsetReset::Latest);
        let seen = read_all(cfg, &topic, with_hooks(hooks.clone()), 5).await;
        assert_eq!(seen.offsets(0), (15..20).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(
            hooks.calls(),
            vec![
                Call::Starting(0, Some(5)),
                Call::Started(0, 5),
                Call::OutOfRange(0),
                Call::Started(0, 15),
            ]
        );

        let cfg = member_config(&addr, &control, OffsetReset::Latest);
        let member = Client::connect(cfg).await.expect("connect");
        let mut g = GroupConsumer::new(member, [&topic]).await.expect("member");
        let mut seen = Seen::default();
        drive(
            &mut g,
            &mut seen,
            Duration::from_secs(60),
            Duration::from_millis(1500),
            |s| s.owned.len() == 1,
        )
        .await;
        produce(&client, &topic, 1, 1, 20, None).await;
        drive(
            &mut g,
            &mut seen,
            Duration::from_secs(60),
            Duration::from_millis(500),
            |s| s.count() >= 1,
        )
        .await;
        g.close().await.expect("close");
        assert_eq!(seen.offsets(0), vec![20], "control: latest, {seen:?}");
        client.close().await;
    });
}

/// Ten records two hours old then ten new ones in each of three
/// partitions. `NoOlderThan(1 h)` reads only the new ones: from the first
/// new record without a commit (partition 0) and after an out-of-range
/// commit (1), from the commit when it is later (2: 15). The control,
/// without hooks, reads the old ones too.
#[test]
fn no_older_than_skips_old_records() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-age");
        create_topic(&client, &topic, 3).await;
        produce(&client, &topic, 3, 10, 0, Some(now_ms() - 2 * 3_600_000)).await;
        produce(&client, &topic, 3, 10, 10, None).await;
        let (group, control) = (
            support::unique_topic("klamm-extras-g"),
            support::unique_topic("klamm-extras-c"),
        );
        commit(&client, &group, &topic, &[(1, 1000), (2, 15)]).await;

        let cfg = member_config(&addr, &group, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, with_hooks(Arc::new(NoOlderThan(HOUR))), 25).await;
        assert_eq!(seen.offsets(0), (10..20).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(seen.offsets(1), (10..20).collect::<Vec<_>>());
        assert_eq!(seen.offsets(2), (15..20).collect::<Vec<_>>());

        let cfg = member_config(&addr, &control, OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, GroupOptions::default(), 60).await;
        assert_eq!(seen.count(), 60, "control: the old records are there");
        client.close().await;
    });
}

/// A maximum message age of one hour: partition 0's commit (offset 2) is
/// older, partition 1's (15) is not. With hooks, partition 0 goes where
/// `offset_out_of_range` says (the first record of the last hour: 10) and
/// its starting hook is not asked; without hooks (`latest`) it starts at
/// the end and reads only what comes next. The control (no max age)
/// reads from the commit.
#[test]
fn a_max_message_age_treats_old_commits_as_out_of_range() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-maxage");
        create_topic(&client, &topic, 2).await;
        produce(&client, &topic, 2, 10, 0, Some(now_ms() - 2 * 3_600_000)).await;
        produce(&client, &topic, 2, 10, 10, None).await;
        let groups: Vec<String> = (0..3)
            .map(|_| support::unique_topic("klamm-extras-g"))
            .collect();
        for g in &groups {
            commit(&client, g, &topic, &[(0, 2), (1, 15)]).await;
        }
        let max_age: BTreeMap<String, Duration> = [(topic.clone(), HOUR)].into();

        // With hooks.
        let hooks = Recording::new(0, StartOffset::Timestamp(now_ms() - 3_600_000));
        let options = GroupOptions {
            max_message_age: max_age.clone(),
            ..with_hooks(hooks.clone())
        };
        let cfg = member_config(&addr, &groups[0], OffsetReset::Earliest);
        let seen = read_all(cfg, &topic, options, 15).await;
        assert_eq!(seen.offsets(0), (10..20).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(seen.offsets(1), (15..20).collect::<Vec<_>>());
        let calls = hooks.calls();
        assert!(calls.contains(&Call::OutOfRange(0)), "{calls:?}");
        assert!(calls.contains(&Call::Started(0, 10)), "{calls:?}");
        assert!(calls.contains(&Call::Starting(1, Some(15))), "{calls:?}");
        assert!(
            !calls
                .iter()
                .any(|c| matches!(c, Call::Starting(0, _) | Call::OutOfRange(1))),
            "{calls:?}"
        );

        // Without hooks: the reset policy (latest) puts partition 0 at
        // the end.
        let options = GroupOptions {
            max_message_age: max_age.clone(),
            ..GroupOptions::default()
        };
        let cfg = member_config(&addr, &groups[1], OffsetReset::Latest);
        let member = Client::connect(cfg).await.expect("connect");
        let mut g = GroupConsumer::with_options(member, [&topic], options)
            .await
            .expect("member");
        let mut seen = Seen::default();
        drive(
            &mut g,
            &mut seen,
            Duration::from_secs(60),
            Duration::from_millis(1500),
            |s| s.owned.len() == 2 && s.count() >= 5,
        )
        .await;
        produce(&client, &topic, 2, 1, 20, None).await;
        drive(
            &mut g,
            &mut seen,
            Duration::from_secs(60),
            Duration::from_millis(1500),
            |s| s.count() >= 7,
        )
        .await;
        g.close().await.expect("close");
        assert_eq!(seen.offsets(0), vec![20], "{seen:?}");
        assert_eq!(seen.offsets(1), (15..21).collect::<Vec<_>>());

        // Control: no max age, the commit holds.
        let cfg = member_config(&addr, &groups[2], OffsetReset::Latest);
        let seen = read_all(cfg, &topic, GroupOptions::default(), 25).await;
        assert_eq!(
            seen.offsets(0),
            (2..21).collect::<Vec<_>>(),
            "control: {seen:?}"
        );
        assert_eq!(seen.offsets(1), (15..21).collect::<Vec<_>>());
        client.close().await;
    });
}

/// A watch-only member and a reader share four partitions (range, two
/// each): the watch-only member is assigned its two and told of the
/// rebalance, but reads none of their records and commits nothing for
/// them, while the reader reads and commits its own two (the control).
/// When the watch-only member leaves, the reader gets its partitions and
/// reads them from the start: nothing had been consumed there.
#[test]
fn a_watch_only_member_is_assigned_partitions_but_reads_and_commits_none() {
    support::run_within(180, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-extras-watch");
        create_topic(&client, &topic, 4).await;
        produce(&client, &topic, 4, 10, 0, None).await;
        let group = support::unique_topic("klamm-extras-g");
        let cfg = member_config(&addr, &group, OffsetReset::Earliest);

        let options = GroupOptions {
            fetch: false,
            ..GroupOptions::default()
        };
        let watch_client = Client::connect(cfg.clone()).await.expect("connect");
        let mut w = GroupConsumer::with_options(watch_client, [&topic], options)
            .await
            .expect("watcher");
        let mut seen_w = Seen::default();
        drive(
            &mut w,
            &mut seen_w,
            Duration::from_secs(60),
            Duration::ZERO,
            |s| s.owned.len() == 4,
        )
        .await;
        assert_eq!(seen_w.owned.len(), 4, "alone, it owns everything");

        let reader_client = Client::connect(cfg.clone()).await.expect("connect");
        let mut r = GroupConsumer::new(reader_client, [&topic])
            .await
            .expect("reader");
        let mut seen_r = Seen::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let settled =
            |w: &Seen, r: &Seen| w.owned.len() == 2 && r.owned.len() == 2 && r.count() >= 20;
        while !settled(&seen_w, &seen_r) && tokio::time::Instant::now() < deadline {
            tokio::select! {
                ev = w.recv() => seen_w.take(ev.expect("w").expect("w event")),
                ev = r.recv() => seen_r.take(ev.expect("r").expect("r event")),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        // Some more time: auto-commit runs, and a record of the watcher's
        // partitions would come.
        let linger = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < linger {
            tokio::select! {
                ev = w.recv() => seen_w.take(ev.expect("w").expect("w event")),
                ev = r.recv() => seen_r.take(ev.expect("r").expect("r event")),
                _ = tokio::time::sleep_until(linger) => {}
            }
        }
        assert!(settled(&seen_w, &seen_r), "{seen_w:?} {seen_r:?}");
        assert_eq!(seen_w.revoked.len(), 1, "told of the rebalance");
        assert_eq!(seen_w.count(), 0, "the watcher read nothing");
        assert_eq!(seen_r.count(), 20, "the reader read its two partitions");
        let mine: Vec<i32> = seen_w.owned.iter().map(|tp| tp.partition).collect();
        let theirs: Vec<i32> = seen_r.owned.iter().map(|tp| tp.partition).collect();
        let offsets = committed(&client, &group, &topic, 4).await;
        for p in &mine {
            assert_eq!(offsets[*p as usize], None, "watcher's {p}: no commit");
        }
        for p in &theirs {
            assert_eq!(offsets[*p as usize], Some(10), "reader's {p}: committed");
        }

        // The watcher leaves; the reader gets its partitions and reads
        // them whole.
        w.close().await.expect("close watcher");
        drive(
            &mut r,
            &mut seen_r,
            Duration::from_secs(60),
            Duration::from_millis(500),
            |s| s.owned.len() == 4 && s.count() >= 40,
        )
        .await;
        for p in &mine {
            assert_eq!(seen_r.offsets(*p), (0..10).collect::<Vec<_>>());
        }
        r.close().await.expect("close reader");
        client.close().await;
    });
}
