//! Kasper's scenarios against Apache Kafka (`KLAMM_TEST_BROKERS`, which
//! `scripts/test` starts; without it these tests fail unless the run opts
//! out with `KLAMM_SKIP_BROKER_TESTS=1`).

#[path = "../../tests/support/env.rs"]
mod env;
#[path = "../../tests/support/libs.rs"]
mod libs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::consumer::ConsumerRecord;
use klamm::group::{OffsetManager, TopicPartition};
use klamm::producer::ProducerRecord;
use klamm::{Client, Config as ClientConfig};
use klamm_kasper::{BoxError, Config, Error, Initial, Processor, Sender, TopicProcessor};
use libs::{create, produce, read_all};
use tokio::time::{Instant, timeout};

/// What a processor saw: per batch, its partition number and the
/// (topic, partition, offset) of each record, with when it was called.
type Seen = Arc<Mutex<Vec<(i32, Vec<(String, i32, i64)>, Instant)>>>;

/// Records every batch and echoes each record to `out` (same partition),
/// as `topic/partition/offset`; fails its `fail_on`-th call.
struct Recorder {
    partition: i32,
    out: String,
    seen: Seen,
    calls: usize,
    fail_on: Option<usize>,
}

impl Processor for Recorder {
    async fn process(
        &mut self,
        batch: &[ConsumerRecord],
        out: &mut Sender<'_>,
    ) -> Result<(), BoxError> {
        self.calls += 1;
        if self.fail_on == Some(self.calls) {
            return Err(format!("batch {} refused", self.calls).into());
        }
        let keys: Vec<_> = batch
            .iter()
            .map(|r| (r.topic.to_string(), r.partition, r.offset))
            .collect();
        for (t, p, o) in &keys {
            out.send(
                ProducerRecord::new(self.out.clone(), format!("{t}/{p}/{o}"))
                    .with_partition(self.partition),
            );
        }
        self.seen
            .lock()
            .unwrap()
            .push((self.partition, keys, Instant::now()));
        Ok(())
    }
}

async fn client() -> Option<Client> {
    let broker = env::broker()?;
    let config =
        ClientConfig::from_properties([("bootstrap.servers", broker.as_str())]).expect("config");
    Some(Client::connect(config).await.expect("connect"))
}

async fn committed(client: &Client, config: &Config) -> BTreeMap<(String, i32), i64> {
    let tps: Vec<TopicPartition> = config
        .input_topics
        .iter()
        .flat_map(|t| {
            config
                .partitions
                .iter()
                .map(move |&p| TopicPartition::new(t, p))
        })
        .collect();
    OffsetManager::new(client.clone(), config.group())
        .fetch(&tps)
        .await
        .expect("offsets")
        .into_iter()
        .map(|(tp, o)| ((tp.topic, tp.partition), o.offset))
        .collect()
}

async fn until_consumed(handle: &klamm_kasper::Handle) {
    timeout(Duration::from_secs(60), async {
        while !handle.has_consumed_all().await.expect("watermarks") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("everything consumed in time");
}

/// A factory of [`Recorder`]s writing to `out` and into `seen`.
fn factory(
    out: &str,
    seen: &Seen,
    fail_on: Option<usize>,
) -> impl FnMut(i32) -> Recorder + Send + 'static {
    let (out, seen) = (out.to_string(), Arc::clone(seen));
    move |p| Recorder {
        partition: p,
        out: out.clone(),
        seen: Arc::clone(&seen),
        calls: 0,
        fail_on,
    }
}

/// Two topics of 4 partitions, batches of 100, 1,000 records: every batch
/// holds one partition number (from both topics), at most 100 records;
/// every record is processed once, every output is there, and the
/// committed offsets are the high watermarks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_gather_one_partition_number_across_both_topics() {
    let Some(client) = client().await else { return };
    let (a, b, out) = (
        env::unique_topic("kasper-a"),
        env::unique_topic("kasper-b"),
        env::unique_topic("kasper-out"),
    );
    for t in [&a, &b, &out] {
        create(&client, t, 4).await;
    }
    let values: Vec<String> = (0..500).map(|i| format!("v{i}")).collect();
    produce(&client, &a, 4, &values).await;
    produce(&client, &b, 4, &values).await;

    let mut config = Config::new(
        env::unique_topic("join"),
        [a.clone(), b.clone()],
        [0, 1, 2, 3],
    );
    config.batch_size = 100;
    // Long enough for all 250 records of a partition number to arrive
    // before the first tick: then batches of 100, 100 and 50 cannot all
    // hold one topic only (125 of each).
    config.batch_wait = Duration::from_secs(3);
    config.initial = Initial::Oldest;
    let seen: Seen = Arc::default();
    let processor = TopicProcessor::new(client.clone(), config.clone(), factory(&out, &seen, None))
        .await
        .expect("processor");
    let handle = processor.handle();
    let running = tokio::spawn(processor.run());
    until_consumed(&handle).await;
    handle.close();
    handle.close(); // a second close is harmless
    running.await.expect("joined").expect("ran without error");

    let seen = seen.lock().unwrap().clone();
    let mut inputs = BTreeSet::new();
    let mut mixed = 0;
    for (p, batch, _) in &seen {
        assert!(
            !batch.is_empty() && batch.len() <= 100,
            "batch of {}",
            batch.len()
        );
        assert!(
            batch.iter().all(|(_, rp, _)| rp == p),
            "one partition number per batch"
        );
        let topics: BTreeSet<_> = batch.iter().map(|(t, _, _)| t.clone()).collect();
        mixed += usize::from(topics.len() == 2);
        for key in batch {
            assert!(inputs.insert(key.clone()), "{key:?} processed twice");
        }
    }
    assert_eq!(inputs.len(), 1000);
    assert!(mixed > 0, "some batch joins both topics");
    let outputs: BTreeSet<String> = read_all(&client, &out)
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let expected: BTreeSet<String> = inputs
        .iter()
        .map(|(t, p, o)| format!("{t}/{p}/{o}"))
        .collect();
    assert_eq!(outputs, expected);
    let offsets = committed(&client, &config).await;
    assert_eq!(offsets.len(), 8);
    assert!(offsets.values().all(|&o| o == 125), "{offsets:?}");
    let metrics = handle.metrics();
    assert_eq!(metrics[&(a.clone(), 0)].incoming, 125);
    assert_eq!(metrics[&(a.clone(), 0)].behind_high_water_mark, Some(0));
    assert_eq!(
        (0..4)
            .map(|p| metrics[&(out.clone(), p)].outgoing)
            .sum::<u64>(),
        1000
    );
}

/// Five records never fill a batch of 100: the tick flushes them, within
/// about two ticks of their being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_goes_on_the_tick() {
    let Some(client) = client().await else { return };
    let (input, out) = (
        env::unique_topic("kasper-tick"),
        env::unique_topic("kasper-tick-out"),
    );
    create(&client, &input, 1).await;
    create(&client, &out, 1).await;
    let tick = Duration::from_millis(500);
    let mut config = Config::new(env::unique_topic("tick"), [input.clone()], [0]);
    config.batch_size = 100;
    config.batch_wait = tick;
    config.initial = Initial::Oldest;
    let seen: Seen = Arc::default();
    let processor = TopicProcessor::new(client.clone(), config, factory(&out, &seen, None))
        .await
        .expect("processor");
    let handle = processor.handle();
    let running = tokio::spawn(processor.run());
    let values: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    produce(&client, &input, 1, &values).await;
    let written = Instant::now();
    until_consumed(&handle).await;
    handle.close();
    running.await.expect("joined").expect("ran");
    let seen = seen.lock().unwrap().clone();
    let records: usize = seen.iter().map(|(_, b, _)| b.len()).sum();
    assert_eq!(records, 5);
    let last = seen.iter().map(|(_, _, at)| *at).max().expect("a batch");
    // Two ticks, and a fetch's worth of slack for the records to arrive.
    assert!(
        last - written <= 2 * tick + Duration::from_millis(500),
        "flushed after {:?}",
        last - written
    );
}

/// One input partition holding `records` records, an empty output topic,
/// and a processor configuration reading the input from the start in
/// batches of 10.
async fn batches_of_ten(client: &Client, name: &str, records: usize) -> (String, String, Config) {
    let (input, out) = (
        env::unique_topic(&format!("kasper-{name}")),
        env::unique_topic(&format!("kasper-{name}-out")),
    );
    create(client, &input, 1).await;
    create(client, &out, 1).await;
    let values: Vec<String> = (0..records).map(|i| format!("{name}{i}")).collect();
    produce(client, &input, 1, &values).await;
    let mut config = Config::new(env::unique_topic(name), [input.clone()], [0]);
    config.batch_size = 10;
    config.initial = Initial::Oldest;
    (input, out, config)
}

/// The processor fails on its third batch: the run returns that error,
/// the third batch has no outputs, the committed offset is the end of the
/// second, and a restart begins with the third batch again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_neither_produced_nor_committed_and_comes_again() {
    let Some(client) = client().await else { return };
    let (input, out, config) = batches_of_ten(&client, "fail", 50).await;

    let seen: Seen = Arc::default();
    let processor = TopicProcessor::new(
        client.clone(),
        config.clone(),
        factory(&out, &seen, Some(3)),
    )
    .await
    .expect("processor");
    let err = timeout(Duration::from_secs(60), processor.run())
        .await
        .expect("stops")
        .expect_err("the third batch fails");
    assert!(matches!(err, Error::Process { partition: 0, .. }), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 2, "two batches went through");
    let outputs = read_all(&client, &out).await;
    assert_eq!(outputs.len(), 20, "the outputs of batches 1 and 2 only");
    assert_eq!(committed(&client, &config).await[&(input.clone(), 0)], 20);

    let again: Seen = Arc::default();
    let processor =
        TopicProcessor::new(client.clone(), config.clone(), factory(&out, &again, None))
            .await
            .expect("processor");
    let handle = processor.handle();
    let running = tokio::spawn(processor.run());
    until_consumed(&handle).await;
    handle.close();
    running.await.expect("joined").expect("ran");
    let again = again.lock().unwrap().clone();
    let first: Vec<i64> = again[0].1.iter().map(|(_, _, o)| *o).collect();
    assert_eq!(first, (20..30).collect::<Vec<_>>(), "batch 3 again");
    assert_eq!(committed(&client, &config).await[&(input.clone(), 0)], 50);
    assert_eq!(read_all(&client, &out).await.len(), 50);
}

/// Two instances of one processor name, on partitions {0,1} and {2,3},
/// process everything between them, each only its own partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_by_configuration() {
    let Some(client) = client().await else { return };
    let (input, out) = (
        env::unique_topic("kasper-split"),
        env::unique_topic("kasper-split-out"),
    );
    create(&client, &input, 4).await;
    create(&client, &out, 4).await;
    let values: Vec<String> = (0..400).map(|i| format!("s{i}")).collect();
    produce(&client, &input, 4, &values).await;
    let name = env::unique_topic("split");
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    let mut seens = Vec::new();
    for parts in [[0, 1], [2, 3]] {
        let mut config = Config::new(name.clone(), [input.clone()], parts);
        config.batch_size = 50;
        config.batch_wait = Duration::from_millis(300);
        config.initial = Initial::Oldest;
        let seen: Seen = Arc::default();
        let processor = TopicProcessor::new(client.clone(), config, factory(&out, &seen, None))
            .await
            .expect("processor");
        handles.push(processor.handle());
        runs.push(tokio::spawn(processor.run()));
        seens.push((parts, seen));
    }
    for h in &handles {
        until_consumed(h).await;
        h.close();
    }
    for r in runs {
        r.await.expect("joined").expect("ran");
    }
    let mut all = BTreeSet::new();
    for (parts, seen) in &seens {
        for (_, batch, _) in seen.lock().unwrap().iter() {
            for (t, p, o) in batch {
                assert!(
                    parts.contains(p),
                    "partition {p} processed by the instance of {parts:?}"
                );
                assert!(all.insert((t.clone(), *p, *o)));
            }
        }
    }
    assert_eq!(all.len(), 400);
    let both = Config::new(name, [input.clone()], [0, 1, 2, 3]);
    let offsets = committed(&client, &both).await;
    assert!(
        offsets.values().all(|&o| o == 100) && offsets.len() == 4,
        "{offsets:?}"
    );
}

/// Sends its outputs of the second batch to a partition that does not
/// exist.
struct BadOutput {
    out: String,
    calls: usize,
}

impl Processor for BadOutput {
    async fn process(
        &mut self,
        batch: &[ConsumerRecord],
        out: &mut Sender<'_>,
    ) -> Result<(), BoxError> {
        self.calls += 1;
        let partition = if self.calls == 2 { 99 } else { 0 };
        for r in batch {
            out.send(
                ProducerRecord::new(self.out.clone(), format!("o{}", r.offset))
                    .with_partition(partition),
            );
        }
        Ok(())
    }
}

/// An output that cannot be produced stops the run with the producer's
/// error, and the batch it belonged to is not committed (the one before
/// it is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_cannot_be_produced_leaves_its_batch_uncommitted() {
    let Some(client) = client().await else { return };
    let (input, out, config) = batches_of_ten(&client, "badout", 30).await;
    let target = out.clone();
    let processor = TopicProcessor::new(client.clone(), config.clone(), move |_| BadOutput {
        out: target.clone(),
        calls: 0,
    })
    .await
    .expect("processor");
    let err = timeout(Duration::from_secs(60), processor.run())
        .await
        .expect("stops")
        .expect_err("the second batch's outputs fail");
    assert!(matches!(err, Error::Kafka(_)), "{err}");
    assert_eq!(committed(&client, &config).await[&(input.clone(), 0)], 10);
    assert_eq!(read_all(&client, &out).await.len(), 10);
}

/// Beyond Kasper: two instances take their partitions from the group
/// (range assignor) and split them; every batch still holds one partition
/// number from both topics, and everything is processed and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_in_a_group_split_the_partitions_between_them() {
    let Some(client) = client().await else { return };
    let (a, b, out) = (
        env::unique_topic("kasper-ga"),
        env::unique_topic("kasper-gb"),
        env::unique_topic("kasper-gout"),
    );
    for t in [&a, &b, &out] {
        create(&client, t, 4).await;
    }
    let name = env::unique_topic("group");
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    let mut seens = Vec::new();
    for _ in 0..2 {
        let mut config = Config::in_group(name.clone(), [a.clone(), b.clone()]);
        config.batch_size = 50;
        config.batch_wait = Duration::from_millis(300);
        config.initial = Initial::Oldest;
        let seen: Seen = Arc::default();
        let processor = TopicProcessor::new(client.clone(), config, factory(&out, &seen, None))
            .await
            .expect("processor");
        let handle = processor.handle();
        runs.push(tokio::spawn(processor.run()));
        // The first has all four before the second joins; wait until the
        // group has given each its share.
        handles.push(handle);
        seens.push(seen);
    }
    timeout(Duration::from_secs(60), async {
        loop {
            let shares: Vec<Vec<i32>> = handles.iter().map(|h| h.partitions()).collect();
            if shares.iter().all(|s| s.len() == 2) {
                let all: BTreeSet<i32> = shares.iter().flatten().copied().collect();
                if all.len() == 4 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the group splits the partitions two and two");
    let values: Vec<String> = (0..200).map(|i| format!("g{i}")).collect();
    produce(&client, &a, 4, &values).await;
    produce(&client, &b, 4, &values).await;
    for h in &handles {
        until_consumed(h).await;
    }
    for h in &handles {
        h.close();
    }
    for r in runs {
        r.await.expect("joined").expect("ran");
    }
    let mut all = BTreeSet::new();
    let mut numbers = Vec::new();
    for seen in &seens {
        let mut mine = BTreeSet::new();
        for (p, batch, _) in seen.lock().unwrap().iter() {
            assert!(
                batch.iter().all(|(_, rp, _)| rp == p),
                "one partition number per batch"
            );
            mine.insert(*p);
            for key in batch {
                assert!(all.insert(key.clone()), "{key:?} processed twice");
            }
        }
        numbers.push(mine);
    }
    assert_eq!(all.len(), 400);
    assert!(
        numbers[0].is_disjoint(&numbers[1]) && numbers.iter().all(|n| n.len() == 2),
        "{numbers:?}"
    );
    let mut both = Config::new(name, [a.clone(), b.clone()], [0, 1, 2, 3]);
    both.from_group = false;
    let offsets = committed(&client, &both).await;
    assert!(
        offsets.len() == 8 && offsets.values().all(|&o| o == 50),
        "{offsets:?}"
    );
}

/// A partition with no record (and, on a restart, one read to its end
/// before) counts as consumed at once: it has nothing to process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_finished_partitions_count_as_consumed() {
    let Some(client) = client().await else { return };
    let (input, out) = (
        env::unique_topic("kasper-empty"),
        env::unique_topic("kasper-empty-out"),
    );
    create(&client, &input, 2).await;
    create(&client, &out, 2).await;
    let values: Vec<String> = (0..5).map(|i| format!("e{i}")).collect();
    produce(&client, &input, 1, &values).await; // all to partition 0
    let mut config = Config::new(env::unique_topic("empty"), [input.clone()], [0, 1]);
    config.batch_wait = Duration::from_millis(200);
    config.initial = Initial::Oldest;
    for round in 0..2 {
        let seen: Seen = Arc::default();
        let processor =
            TopicProcessor::new(client.clone(), config.clone(), factory(&out, &seen, None))
                .await
                .expect("processor");
        let handle = processor.handle();
        let running = tokio::spawn(processor.run());
        until_consumed(&handle).await;
        handle.close();
        running.await.expect("joined").expect("ran");
        let records: usize = seen.lock().unwrap().iter().map(|(_, b, _)| b.len()).sum();
        assert_eq!(records, if round == 0 { 5 } else { 0 }, "round {round}");
    }
}

/// Holds every `process` call until the gate opens, then echoes like
/// [`Recorder`].
struct Gated {
    inner: Recorder,
    gate: tokio::sync::watch::Receiver<bool>,
}

impl Processor for Gated {
    async fn process(
        &mut self,
        batch: &[ConsumerRecord],
        out: &mut Sender<'_>,
    ) -> Result<(), BoxError> {
        let _ = self.gate.wait_for(|open| *open).await;
        self.inner.process(batch, out).await
    }
}

/// A commit the group refuses because it moved on while the batch was
/// processed does not end the run. The first instance holds its first
/// batch past the rebalance timeout (3 s) while a second joins, so the
/// group rebalances without it and gives the second every partition; its
/// commit is then refused (the control: the test waits until the second
/// holds all four, so the first's generation is gone). The first rejoins,
/// the batch is read again by whoever owns its partition, and both go on
/// until everything is consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_refused_by_a_rebalance_does_not_end_the_run() {
    let Some(client) = client().await else { return };
    let (a, out) = (
        env::unique_topic("kasper-ra"),
        env::unique_topic("kasper-rout"),
    );
    for t in [&a, &out] {
        create(&client, t, 4).await;
    }
    let values: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    produce(&client, &a, 4, &values).await;
    let name = env::unique_topic("rebalance");
    let (open, gate) = tokio::sync::watch::channel(false);
    let broker = env::broker().expect("broker");
    let short = Client::connect(
        ClientConfig::from_properties([
            ("bootstrap.servers", broker.as_str()),
            ("rebalance.timeout.ms", "3000"),
        ])
        .expect("config"),
    )
    .await
    .expect("connect");
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    let mut seens = Vec::new();
    for _ in 0..2 {
        let mut config = Config::in_group(name.clone(), [a.clone()]);
        config.batch_size = 10;
        config.batch_wait = Duration::from_millis(200);
        config.initial = Initial::Oldest;
        let seen: Seen = Arc::default();
        let mut recorders = factory(&out, &seen, None);
        let gate = gate.clone();
        let processor = TopicProcessor::new(short.clone(), config.clone(), move |p| Gated {
            inner: recorders(p),
            gate: gate.clone(),
        })
        .await
        .expect("processor");
        handles.push(processor.handle());
        runs.push(tokio::spawn(processor.run()));
        seens.push(seen);
        if runs.len() == 1 {
            // The first holds all four partitions before the second joins.
            timeout(Duration::from_secs(60), async {
                while handles[0].partitions().len() < 4 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .expect("the first instance gets every partition");
        }
    }
    timeout(Duration::from_secs(60), async {
        while handles[1].partitions().len() < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the group rebalances without the held instance");
    let _ = open.send(true);
    for h in &handles {
        until_consumed(h).await;
    }
    for h in &handles {
        h.close();
    }
    for r in runs {
        r.await
            .expect("joined")
            .expect("the run goes on through the rebalance");
    }
    let mut all = BTreeSet::new();
    for seen in &seens {
        for (_, batch, _) in seen.lock().unwrap().iter() {
            all.extend(batch.iter().cloned());
        }
    }
    assert_eq!(all.len(), 40, "every record processed at least once");
}
