//! goka's scenarios against Apache Kafka (`KLAMM_TEST_BROKERS`, which
//! `scripts/test` starts; without it these tests fail unless the run opts
//! out with `KLAMM_SKIP_BROKER_TESTS=1`).

#[path = "../../tests/support/env.rs"]
mod env;
#[path = "../../tests/support/libs.rs"]
mod libs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::client::OffsetSpec;
use klamm::{Client, Config as ClientConfig};
use klamm_goka::{
    Emitter, Error, GroupGraph, Handle, Int64Codec, MemoryBuilder, PartitionState, Processor,
    ProcessorOptions, RedbBuilder, StorageBuilder, StringCodec, View, goka_partition,
};
use libs::{committed, create, read_all};
use tokio::time::timeout;

const LONG: Duration = Duration::from_secs(90);

async fn client() -> Option<Client> {
    let broker = env::broker()?;
    // Processors take the client's settings: inputs written before they
    // start are read (goka's default is the newest offset).
    let config = ClientConfig::from_properties([
        ("bootstrap.servers", broker.as_str()),
        ("auto.offset.reset", "earliest"),
    ])
    .expect("config");
    Some(Client::connect(config).await.expect("connect"))
}

/// The latest value of each key in `topic`, as text.
async fn latest(client: &Client, topic: &str) -> BTreeMap<String, String> {
    read_all(client, topic)
        .await
        .into_iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            )
        })
        .collect()
}

/// Emits `count` clicks, key `user-{i % 10}`.
async fn clicks(client: &Client, topic: &str, count: usize) {
    let emitter = Emitter::new(client.clone(), topic, StringCodec)
        .await
        .expect("emitter");
    let mut acks = Vec::new();
    for i in 0..count {
        acks.push(
            emitter
                .emit(&format!("user-{}", i % 10), &format!("click {i}"))
                .await
                .expect("emit"),
        );
    }
    for a in acks {
        a.await.expect("acknowledged");
    }
    emitter.finish().await.expect("finish");
}

type Calls = Arc<Mutex<Vec<(i32, Instant)>>>;

/// The click counter: the group table holds each user's count.
fn counter(group: &str, input: &str, calls: &Calls) -> GroupGraph<i64> {
    let calls = calls.clone();
    GroupGraph::persist(group, Int64Codec).input(input, StringCodec, move |ctx, _click: String| {
        calls
            .lock()
            .unwrap()
            .push((ctx.partition(), Instant::now()));
        let n = ctx.value()?.unwrap_or(0);
        ctx.set_value(&(n + 1))?;
        Ok(())
    })
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("klamm-goka-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn until_inputs(handles: &[&Handle<i64>], total: u64) {
    timeout(LONG, async {
        loop {
            let seen: u64 = handles
                .iter()
                .flat_map(|h| h.stats().into_values())
                .map(|s| s.inputs)
                .sum();
            if seen >= total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{total} inputs processed in time"));
}

async fn until_counts(handle: &Handle<i64>, want: i64) {
    timeout(LONG, async {
        loop {
            let all = (0..10)
                .all(|k| matches!(handle.get(&format!("user-{k}")), Ok(Some(n)) if n == want));
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("every count reaches {want} in time"));
}

/// 100 clicks over 10 users: `get` gives 10 for each, `<group>-table`
/// holds the latest count of each user, and the input is committed to
/// its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_click_counter_counts_in_the_table_and_its_topic() {
    let Some(client) = client().await else { return };
    let (input, group) = (
        env::unique_topic("goka-clicks"),
        env::unique_topic("goka-count"),
    );
    create(&client, &input, 10).await;
    clicks(&client, &input, 100).await;

    let calls = Calls::default();
    let processor = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(MemoryBuilder::new()),
    )
    .await
    .expect("processor");
    let handle = processor.handle();
    let running = tokio::spawn(processor.run());
    until_inputs(&[&handle], 100).await;
    until_counts(&handle, 10).await;
    let table = latest(&client, &format!("{group}-table")).await;
    let want: BTreeMap<String, String> = (0..10)
        .map(|k| (format!("user-{k}"), "10".to_string()))
        .collect();
    assert_eq!(table, want);
    handle.stop();
    timeout(LONG, running)
        .await
        .expect("stops")
        .expect("joined")
        .expect("ran");
    let ends = client
        .list_partition_offsets(&input, &(0..10).collect::<Vec<_>>(), OffsetSpec::Newest)
        .await
        .expect("ends");
    // Empty partitions have nothing to commit.
    let ends: Vec<i64> = (0..10)
        .map(|p| ends[&p].offset.filter(|o| *o > 0).unwrap_or(-1))
        .collect();
    assert_eq!(committed(&client, &group, &input, 10).await, ends);
    // Keys land where goka puts them: every count is in its key's partition.
    for r in read_all(&client, &format!("{group}-table")).await {
        let key = r.key.as_deref().unwrap_or_default();
        assert_eq!(r.partition, goka_partition(key, 10));
    }
    client.close().await;
}

/// Two processors split 10 partitions; when one stops, the other takes
/// its partitions, recovers them from the table topic, and the counts
/// stay right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_recovers_the_partitions_of_a_processor_that_stopped() {
    let Some(client) = client().await else { return };
    let (input, group) = (
        env::unique_topic("goka-split"),
        env::unique_topic("goka-split-g"),
    );
    create(&client, &input, 10).await;

    let calls = Calls::default();
    let a = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(MemoryBuilder::new()),
    )
    .await
    .expect("a");
    let b = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(MemoryBuilder::new()),
    )
    .await
    .expect("b");
    let (ha, hb) = (a.handle(), b.handle());
    let run_a = tokio::spawn(a.run());
    ha.wait_running(&(0..10).collect::<Vec<_>>())
        .await
        .expect("a alone");
    let run_b = tokio::spawn(b.run());
    timeout(LONG, async {
        loop {
            let (ra, rb) = (ha.running_partitions(), hb.running_partitions());
            if !ra.is_empty() && !rb.is_empty() && ra.len() + rb.len() == 10 {
                return (ra, rb);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the two split the partitions");
    clicks(&client, &input, 100).await;
    until_inputs(&[&ha, &hb], 100).await;
    let from_b = hb.running_partitions();
    assert!(!from_b.is_empty());
    // `get` answers only for partitions the processor holds.
    let key_of_b = (0..10)
        .map(|k| format!("user-{k}"))
        .find(|k| from_b.contains(&goka_partition(k.as_bytes(), 10)))
        .expect("a user on b's partitions");
    timeout(LONG, async {
        while hb.get(&key_of_b).expect("b holds it") != Some(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("b's count is acknowledged");
    assert!(
        matches!(ha.get(&key_of_b), Err(Error::NotReady { .. })),
        "a does not hold {key_of_b}"
    );

    let log_before = ha.state_log().len();
    hb.stop();
    timeout(LONG, run_b)
        .await
        .expect("b stops")
        .expect("joined")
        .expect("b ran");
    ha.wait_running(&(0..10).collect::<Vec<_>>())
        .await
        .expect("a takes all");
    until_counts(&ha, 10).await;
    // A recovered B's partitions that hold users from the table topic
    // (its own store had none of their keys).
    let recovered: Vec<i32> = ha.state_log()[log_before..]
        .iter()
        .filter(|(_, s, _)| *s == PartitionState::Recovering)
        .map(|(p, _, _)| *p)
        .collect();
    let with_users: Vec<i32> = (0..10)
        .map(|k| goka_partition(format!("user-{k}").as_bytes(), 10))
        .collect();
    for p in from_b.iter().filter(|p| with_users.contains(p)) {
        assert!(
            recovered.contains(p),
            "partition {p} recovered: {recovered:?}"
        );
    }
    clicks(&client, &input, 100).await;
    until_counts(&ha, 20).await;
    ha.stop();
    timeout(LONG, run_a)
        .await
        .expect("a stops")
        .expect("joined")
        .expect("a ran");
    client.close().await;
}

/// Wiping the local storage: a restarted processor recovers every
/// partition from the table topic, through Recovering, Preparing and
/// Running, and handles no input of a partition before it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_store_is_recovered_before_any_input_is_handled() {
    let Some(client) = client().await else { return };
    let (input, group) = (
        env::unique_topic("goka-wipe"),
        env::unique_topic("goka-wipe-g"),
    );
    create(&client, &input, 4).await;
    let dir = scratch_dir("wipe");

    clicks(&client, &input, 60).await;
    let calls = Calls::default();
    let first = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(RedbBuilder::new(&dir)),
    )
    .await
    .expect("first");
    let h = first.handle();
    let run = tokio::spawn(first.run());
    until_counts(&h, 6).await;
    h.stop();
    timeout(LONG, run)
        .await
        .expect("stops")
        .expect("joined")
        .expect("ran");
    drop(h);

    std::fs::remove_dir_all(&dir).expect("wipe the local storage");
    clicks(&client, &input, 40).await;
    let calls = Calls::default();
    let second = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(RedbBuilder::new(&dir)),
    )
    .await
    .expect("second");
    let h = second.handle();
    let run = tokio::spawn(second.run());
    until_counts(&h, 10).await;
    let log = h.state_log();
    // Recovering is reported only while records are read: partitions
    // with users have some, the others go straight to Preparing.
    let with_users: Vec<i32> = (0..10)
        .map(|k| goka_partition(format!("user-{k}").as_bytes(), 4))
        .collect();
    for p in 0..4 {
        let states: Vec<PartitionState> = log
            .iter()
            .filter(|(q, _, _)| *q == p)
            .map(|(_, s, _)| *s)
            .collect();
        let want: &[PartitionState] = if with_users.contains(&p) {
            &[
                PartitionState::Recovering,
                PartitionState::Preparing,
                PartitionState::Running,
            ]
        } else {
            &[PartitionState::Preparing, PartitionState::Running]
        };
        assert_eq!(states, want, "partition {p}");
        let running_at = log
            .iter()
            .find(|(q, s, _)| *q == p && *s == PartitionState::Running)
            .map(|(_, _, at)| *at)
            .expect("running");
        for (q, at) in calls.lock().unwrap().iter() {
            if *q == p {
                assert!(
                    *at > running_at,
                    "partition {p} handled input before running"
                );
            }
        }
    }
    assert_eq!(
        calls.lock().unwrap().len(),
        40,
        "only the 40 new clicks are handled: the 60 were committed"
    );
    h.stop();
    timeout(LONG, run)
        .await
        .expect("stops")
        .expect("joined")
        .expect("ran");
    let _ = std::fs::remove_dir_all(&dir);
    client.close().await;
}

/// A view materialises every partition of a table, serves get / has /
/// iteration (also by range), follows new updates, and evicts locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_serves_the_latest_values_and_follows_updates() {
    let Some(client) = client().await else { return };
    let (input, group) = (
        env::unique_topic("goka-view"),
        env::unique_topic("goka-view-g"),
    );
    create(&client, &input, 5).await;
    clicks(&client, &input, 30).await;
    let calls = Calls::default();
    let processor = Processor::new(
        client.clone(),
        counter(&group, &input, &calls),
        ProcessorOptions::new(MemoryBuilder::new()),
    )
    .await
    .expect("processor");
    let h = processor.handle();
    let run = tokio::spawn(processor.run());
    until_counts(&h, 3).await;

    let view = View::start(
        client.clone(),
        &format!("{group}-table"),
        Int64Codec,
        MemoryBuilder::new(),
    )
    .await
    .expect("view");
    timeout(LONG, view.wait_running())
        .await
        .expect("recovers")
        .expect("running");
    assert!(view.recovered());
    assert_eq!(view.get("user-4").expect("get"), Some(3));
    assert!(view.has("user-9").expect("has"));
    assert_eq!(view.get("nobody").expect("get"), None);
    let all = view.iter().expect("iterate");
    assert_eq!(
        all.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        (0..10).map(|k| format!("user-{k}")).collect::<Vec<_>>(),
        "in key order across partitions"
    );
    let some = view.range("user-2".."user-5").expect("range");
    assert_eq!(
        some,
        [
            ("user-2".into(), 3),
            ("user-3".into(), 3),
            ("user-4".into(), 3)
        ]
    );

    clicks(&client, &input, 10).await;
    timeout(LONG, async {
        while view.get("user-7").expect("get") != Some(4) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the view follows the table");
    view.evict("user-7").expect("evict");
    assert_eq!(view.get("user-7").expect("get"), None, "evicted locally");
    view.close().await;
    h.stop();
    timeout(LONG, run)
        .await
        .expect("stops")
        .expect("joined")
        .expect("ran");
    client.close().await;
}

/// Emit (only to declared outputs, on the key's partition), loopback,
/// join (same partition), lookup (any partition) and fail, in one graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_loopback_join_lookup_and_fail_do_what_they_say() {
    let Some(client) = client().await else { return };
    let input = env::unique_topic("goka-in");
    let joined = env::unique_topic("goka-join");
    let looked = env::unique_topic("goka-lookup");
    let out = env::unique_topic("goka-out");
    let group = env::unique_topic("goka-edges");
    create(&client, &input, 4).await;
    create(&client, &joined, 4).await;
    create(&client, &looked, 3).await;
    create(&client, &out, 6).await;

    let joins = Emitter::new(client.clone(), &joined, StringCodec)
        .await
        .expect("emitter");
    let lookups = Emitter::new(client.clone(), &looked, StringCodec)
        .await
        .expect("emitter");
    for k in ["a", "b", "c"] {
        joins
            .emit_sync(k, &format!("join-{k}"))
            .await
            .expect("join value");
        lookups
            .emit_sync(&format!("x-{k}"), &format!("lookup-{k}"))
            .await
            .expect("lookup value");
    }
    joins.finish().await.expect("finish");
    lookups.finish().await.expect("finish");

    let (out2, out3, joined2, looked2) = (out.clone(), out.clone(), joined.clone(), looked.clone());
    let graph = GroupGraph::persist(&group, StringCodec)
        .input(&input, StringCodec, move |ctx, value: String| {
            if value == "fail" {
                // A write before the failure must not survive it.
                ctx.set_value(&"poisoned".to_string())?;
                return Err(ctx.fail("told to fail"));
            }
            if value == "delete" {
                ctx.delete()?;
                return Ok(());
            }
            let key = ctx.key().to_string();
            let trace = ctx.headers().get("trace").cloned().unwrap_or_default();
            let j: Option<String> = ctx.join(&joined2)?;
            let l: Option<String> = ctx.lookup(&looked2, &format!("x-{key}"))?;
            let line = format!(
                "{value}|{}|{}|{}",
                j.unwrap_or_default(),
                l.unwrap_or_default(),
                String::from_utf8_lossy(&trace)
            );
            ctx.set_value(&line)?;
            ctx.emit(&out2, &key, &line)?;
            ctx.loopback(&format!("loop-{key}"), &value)?;
            Ok(())
        })
        .loopback(StringCodec, move |ctx, value: String| {
            let key = ctx.key().to_string();
            ctx.emit(&out3, &key, &format!("looped {value}"))?;
            Ok(())
        })
        .join(&joined, StringCodec)
        .lookup(&looked, StringCodec)
        .output(&out, StringCodec);
    let storage = MemoryBuilder::new();
    let processor = Processor::new(
        client.clone(),
        graph,
        ProcessorOptions::new(storage.clone()),
    )
    .await
    .expect("processor");
    let h = processor.handle();
    let run = tokio::spawn(processor.run());

    let inputs = Emitter::new(client.clone(), &input, StringCodec)
        .await
        .expect("emitter")
        .with_default_headers(&[("trace", b"t-1")]);
    for k in ["a", "b", "c", "d"] {
        inputs
            .emit_sync(k, &format!("hello-{k}"))
            .await
            .expect("input");
    }
    inputs
        .emit_sync("d", &"delete".to_string())
        .await
        .expect("input");
    let want: BTreeMap<String, String> = [
        ("a", "hello-a|join-a|lookup-a|t-1"),
        ("b", "hello-b|join-b|lookup-b|t-1"),
        ("c", "hello-c|join-c|lookup-c|t-1"),
        ("d", "hello-d|||t-1"),
        ("loop-d", "looped hello-d"),
        ("loop-a", "looped hello-a"),
        ("loop-b", "looped hello-b"),
        ("loop-c", "looped hello-c"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let got = timeout(LONG, async {
        loop {
            let got = latest(&client, &out).await;
            if got.len() >= want.len() {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every output");
    assert_eq!(got, want);
    for r in read_all(&client, &out).await {
        let key = r.key.as_deref().unwrap_or_default();
        assert_eq!(
            r.partition,
            goka_partition(key, 6),
            "emits land on the key's partition"
        );
    }
    assert_eq!(
        h.get("b").expect("get"),
        Some("hello-b|join-b|lookup-b|t-1".into())
    );
    // Delete: gone locally, a tombstone in the table topic.
    timeout(LONG, async {
        while h.get("d").expect("get").is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("d deleted");
    let last_d = read_all(&client, &format!("{group}-table"))
        .await
        .into_iter()
        .rfind(|r| r.key.as_deref() == Some(b"d".as_slice()))
        .expect("d in the table topic");
    assert_eq!(last_d.value, None, "a tombstone");

    // The join keeps following its table after startup: a new join value
    // of "a" reaches the callbacks (inputs are sent until one sees it).
    let joins = Emitter::new(client.clone(), &joined, StringCodec)
        .await
        .expect("emitter");
    joins
        .emit_sync("a", &"join-a2".to_string())
        .await
        .expect("new join value");
    joins.finish().await.expect("finish");
    timeout(LONG, async {
        for n in 0.. {
            let value = format!("again-{n}");
            inputs.emit_sync("a", &value).await.expect("input");
            let want = format!("{value}|join-a2|lookup-a|t-1");
            for _ in 0..10 {
                if latest(&client, &out).await.get("a") == Some(&want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await
    .expect("the join follows its table");

    // Fail: the run ends with the callback's error; the record is not
    // committed (its partition's commit stays at it).
    let fail_partition = goka_partition(b"c", 4);
    let at = inputs
        .emit("c", &"fail".to_string())
        .await
        .expect("emit")
        .await
        .expect("ack");
    let ended = timeout(LONG, run)
        .await
        .expect("the run ends")
        .expect("joined");
    match ended {
        Err(Error::Callback {
            partition,
            offset,
            source,
            ..
        }) => {
            assert_eq!((partition, offset), (fail_partition, at.offset));
            assert_eq!(source.to_string(), "told to fail");
        }
        other => panic!("expected the callback's failure, got {other:?}"),
    }
    let commits = committed(&client, &group, &input, 4).await;
    assert_eq!(
        commits[fail_partition as usize], at.offset,
        "the failed record is not committed"
    );
    // Nor is its table write, locally or in the table topic.
    let store = storage
        .build(&format!("{group}-table"), fail_partition)
        .expect("store");
    assert_eq!(
        store.get(b"c").expect("get"),
        Some(b"hello-c|join-c|lookup-c|t-1".to_vec())
    );
    assert!(
        latest(&client, &format!("{group}-table")).await["c"] != "poisoned",
        "the failed write never reached the table topic"
    );
    inputs.finish().await.expect("finish");

    // Emitting to an undeclared topic fails the processor too.
    let (out4, joined3, looked3) = (out.clone(), joined.clone(), looked.clone());
    let graph = GroupGraph::persist(format!("{group}-2"), StringCodec)
        .input(&input, StringCodec, move |ctx, value: String| {
            if value == "fail" {
                // Ignoring the error does not save the callback.
                let _ = ctx.emit("not-an-output", "k", &value);
            }
            let _ = (&out4, &joined3, &looked3);
            Ok(())
        })
        .output(&out, StringCodec);
    let processor = Processor::new(
        client.clone(),
        graph,
        ProcessorOptions::new(MemoryBuilder::new()),
    )
    .await
    .expect("processor");
    let ended = timeout(LONG, processor.run()).await.expect("the run ends");
    match ended {
        Err(Error::Callback { source, .. }) => assert_eq!(
            source.to_string(),
            "topic not-an-output is not configured for output; declare it with GroupGraph::output"
        ),
        other => panic!("expected the emit to fail, got {other:?}"),
    }
    client.close().await;
}

/// Keys written by Go goka's emitter (`peers/goka`) land on the partitions
/// klamm-goka computes, and klamm-goka's emitter puts the same keys on the
/// same partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_written_by_go_goka_land_where_klamm_goka_puts_them() {
    let Some(client) = client().await else { return };
    let Some(peer) = env::require("KLAMM_GOKA_PEER", "goka peer (scripts/peers)") else {
        return;
    };
    let broker = env::broker().expect("broker");
    let (from_go, from_rust) = (env::unique_topic("goka-go"), env::unique_topic("goka-rust"));
    create(&client, &from_go, 10).await;
    create(&client, &from_rust, 10).await;
    let mut keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    keys.extend(["".to_string(), "a".into(), "user-7".into(), "ключ".into()]);

    let out = timeout(
        LONG,
        tokio::process::Command::new(&peer)
            .args([
                "emit",
                "--brokers",
                &broker,
                "--topic",
                &from_go,
                "--keys",
                &keys.join(","),
            ])
            .output(),
    )
    .await
    .expect("the peer finishes")
    .expect("the peer runs");
    assert!(
        out.status.success(),
        "goka peer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""ok":true"#));

    let placed_by_go: BTreeMap<String, i32> = read_all(&client, &from_go)
        .await
        .into_iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                r.partition,
            )
        })
        .collect();
    assert_eq!(placed_by_go.len(), keys.len());
    for (key, partition) in &placed_by_go {
        assert_eq!(
            *partition,
            goka_partition(key.as_bytes(), 10),
            "key {key:?}"
        );
    }
    let spread: std::collections::BTreeSet<i32> = placed_by_go.values().copied().collect();
    assert!(spread.len() >= 5, "the keys spread: {spread:?}");

    let emitter = Emitter::new(client.clone(), &from_rust, StringCodec)
        .await
        .expect("emitter");
    for k in &keys {
        emitter
            .emit_sync(k, &format!("rust:{k}"))
            .await
            .expect("emit");
    }
    emitter.finish().await.expect("finish");
    let placed_by_rust: BTreeMap<String, i32> = read_all(&client, &from_rust)
        .await
        .into_iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                r.partition,
            )
        })
        .collect();
    assert_eq!(placed_by_rust, placed_by_go);
    client.close().await;
}
