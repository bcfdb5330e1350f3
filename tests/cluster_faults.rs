//! Faults on the three-node Apache Kafka cluster (`scripts/kafka start
//! --cluster`): a partition leader killed with SIGKILL mid-stream and
//! restarted, the same with a delivery timeout shorter than the failover,
//! the active controller killed, a leader hung with SIGSTOP for longer
//! than the producer's request timeout. In each, an idempotent acks=all
//! producer streams the round-trip pattern to a topic at replication
//! factor 3 (min.insync.replicas=2) through the fault; what the partitions
//! hold is then read back and every record accounted for: nothing
//! acknowledged lost, nothing duplicated, order kept, every record's
//! future resolved (Ok, or with the error that says why not). Each prints
//! its figures on one line (`written=… read=… lost=… duplicated=…
//! reordered=…`).
//!
//! The first two tests are the controls of the accounting itself: it
//! must count a loss, a duplicate, a reordering when there is one.
//!
//! The cluster tests share the cluster, so they run one at a time
//! (SERIAL), and each brings every node back when it ends (`Heal`).

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use klamm::Client;
use support::cluster::{Cluster, Heal};
use support::faults::{
    self, Pace, Stream, describe_quorum, leaders, leaders_moved_off, node, observer_config,
    partition_state, producer_config, reader_config, until, wait_fully_replicated,
    wait_three_brokers,
};
use support::pattern;
use support::readers::{Reader, parse_console, read_raw};
use support::tally::{Tally, index_of};
use support::topics::{self, TopicSpec};

/// One fault test at a time: they share the cluster and both cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const PARTITIONS: i32 = 3;
/// 50 records every 10 ms: 5000 a second over three partitions.
const PACE: Pace = Pace::PerTick(50);
/// Records each partition must have acknowledged after a fault, and again
/// after the node is back, before a test stops producing.
const PROGRESS: u64 = 1000;

/// A healthy cluster and a fresh topic at replication factor 3, every
/// replica in sync.
async fn setup(cluster: &Cluster, prefix: &str) -> (Client, String) {
    let observer = Client::connect(observer_config(cluster))
        .await
        .expect("connect to the cluster");
    wait_three_brokers(&observer, Duration::from_secs(120)).await;
    let topic = support::unique_topic(prefix);
    topics::create(&observer, &faults::spec(&topic, PARTITIONS)).await;
    wait_fully_replicated(&observer, &topic, Duration::from_secs(60)).await;
    (observer, topic)
}

/// Waits until every partition acknowledged `PROGRESS` records sent after
/// `marks`.
async fn progress_after(stream: &Stream, marks: &[u64], what: &str, within: Duration) -> Duration {
    until(
        &format!("{PROGRESS} records acknowledged on each partition {what}"),
        within,
        || async { (0..PARTITIONS).all(|p| stream.acked_from(p, marks[p as usize]) >= PROGRESS) },
    )
    .await
}

/// Waits until klamm's consumer has read, on every partition, `PROGRESS`
/// records past what had been sent at `marks` (records sent after the
/// fault).
async fn read_past(reader: &Reader, marks: &[u64], what: &str) -> Duration {
    until(
        &format!("klamm's consumer reads {PROGRESS} records sent after {what}"),
        Duration::from_secs(90),
        || async { (0..PARTITIONS).all(|p| reader.read_from(p) >= marks[p as usize] + PROGRESS) },
    )
    .await
}

#[test]
fn tally_counts_loss_duplicates_reordering_and_strangers() {
    // The control for every figure the fault tests assert to be zero.
    let out = faults::Outcomes {
        offsets: vec![vec![0, 1, 2, 3, 4, 5], vec![0, 1, -3]],
        errors: Vec::new(),
        stats: Default::default(),
    };
    let mut t = Tally::new(2);
    let key = |p: i32, i: u64| pattern::key(p, i);
    for (offset, i) in [(0, 0), (1, 2), (2, 1), (3, 2), (4, 5), (5, 3)] {
        t.add(0, offset, index_of(0, Some(&key(0, i))), Ok(()));
    }
    t.add(1, 0, index_of(1, Some(&key(1, 0))), Ok(()));
    t.add(1, 1, index_of(1, Some(&key(0, 1))), Ok(()));
    t.add(1, 2, index_of(1, Some(&key(1, 1))), Err("value".into()));
    t.add(1, 3, index_of(1, Some(&key(1, 2))), Ok(()));
    let f = t.figures(&out);
    assert_eq!((f.written, f.acked, f.failed, f.read), (9, 8, 1, 10), "{f}");
    // Partition 0: index 4 never read; 2 read twice; 1 stored before 2
    // and 3 before 5; 2, 5 and 3 read at other offsets than acknowledged.
    // Partition 1: a key of partition 0 and a changed value are bad; 1 is
    // at offset 2, not 1; 2 failed, yet was stored.
    assert_eq!(f.lost, 1, "{f}");
    assert_eq!(f.duplicated, 1, "{f}");
    assert_eq!(f.reordered, 2, "{f}");
    assert_eq!(f.bad, 2, "{f}");
    assert_eq!(f.misplaced, 5, "{f}");
    assert_eq!(f.failed_stored, 1, "{f}");
    let clean = {
        let mut t = Tally::new(2);
        for i in 0..6 {
            t.add(0, i as i64, Some(i), Ok(()));
        }
        t.add(1, 0, Some(0), Ok(()));
        t.add(1, 1, Some(1), Ok(()));
        t.figures(&out)
    };
    clean.assert_nothing_lost("clean");
}

#[test]
fn console_output_parses_and_mismatches_count() {
    let mut text = Vec::new();
    for (p, i, offset) in [(0, 0u64, 0i64), (0, 1, 1), (1, 0, 0), (0, 1, 2)] {
        text.extend_from_slice(
            format!(
                "CreateTime:{}\tPartition:{p}\tOffset:{offset}\tseq:{i},part:{p}\tk-{p}-{i}\t",
                pattern::BASE_TS + i as i64
            )
            .as_bytes(),
        );
        let mut value = pattern::value(p, i, faults::SIZE);
        if (p, i, offset) == (1, 0, 0) {
            value[20] ^= 1;
        }
        text.extend_from_slice(&value);
        text.push(b'\n');
    }
    let t = parse_console(std::io::Cursor::new(text), 2);
    let out = faults::Outcomes {
        offsets: vec![vec![0, 1], vec![0]],
        errors: Vec::new(),
        stats: Default::default(),
    };
    let f = t.figures(&out);
    assert_eq!((f.read, f.duplicated, f.bad, f.lost), (4, 1, 1, 0), "{f}");
}

#[test]
fn leader_killed_mid_stream_and_restarted() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let _serial = serial();
    let _heal = Heal(&cluster);
    support::run_within(300, async {
        let (observer, topic) = setup(&cluster, "faults-kill-leader").await;
        let producing = Client::connect(producer_config(&cluster))
            .await
            .expect("connect");
        let stream = Stream::start(producing, &topic, PARTITIONS, PACE, u64::MAX).await;
        // klamm's consumer reads along, through the failover.
        let reading = Client::connect(reader_config(&cluster))
            .await
            .expect("connect");
        let reader = Reader::start(reading, &topic, PARTITIONS).await;
        until(
            "2000 records acknowledged",
            Duration::from_secs(60),
            || async { stream.acked() >= 2000 },
        )
        .await;

        // SIGKILL the leader of partition 0 while records are in flight.
        let victim = partition_state(&observer, &topic, 0)
            .await
            .map(|p| p.leader)
            .expect("partition 0 has a leader");
        let led: Vec<usize> = leaders(&observer, &topic)
            .await
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == victim)
            .map(|(p, _)| p)
            .collect();
        let at_kill = stream.marks();
        let in_flight = stream.sent() - stream.acked();
        let killed = Instant::now();
        node(&cluster, victim, "kill").await;
        eprintln!(
            "killed node {victim} (leader of partitions {led:?}) with {in_flight} records unacknowledged; {}",
            stream.progress()
        );
        let moved = leaders_moved_off(
            &observer,
            &topic,
            PARTITIONS,
            victim,
            "every partition led by a live node",
        )
        .await;
        until(
            "every record sent before the kill resolved",
            Duration::from_secs(150),
            || async { stream.resolved_below(&at_kill) },
        )
        .await;
        progress_after(&stream, &at_kill, "after the kill", Duration::from_secs(60)).await;
        read_past(&reader, &at_kill, "the kill").await;
        let down = killed.elapsed();

        // Bring it back; it catches up and rejoins every ISR while the
        // stream goes on.
        let restart = node(&cluster, victim, "start").await;
        let at_restart = stream.marks();
        let rejoined = wait_fully_replicated(&observer, &topic, Duration::from_secs(120)).await;
        progress_after(
            &stream,
            &at_restart,
            "after the restart",
            Duration::from_secs(60),
        )
        .await;
        let out = stream.finish().await;
        let produced = out.written();
        let consumed = reader.finish(&observer, &topic).await;
        let c = consumed.figures(&out);

        let started = Instant::now();
        let tally = read_raw(&observer, &topic, PARTITIONS).await;
        let f = tally.figures(&out);
        eprintln!(
            "kill-leader: {f} in_flight_at_kill={in_flight} retried_batches={} | \
             klamm's consumer, reading along: {c} | \
             leaders moved {moved:.1?} after the kill, node down {down:.1?}, restart {restart:.1?}, \
             back in every ISR {rejoined:.1?} later, read back {:.1?}",
            out.stats.batches_retried,
            started.elapsed()
        );
        assert!(consumed.notes().is_empty(), "{:?}", consumed.notes());
        c.assert_exact("kill-leader, klamm's consumer");
        assert!(in_flight > 0, "the kill came with records in flight");
        assert!(
            out.errors.is_empty(),
            "every future resolved Ok: {:?}",
            out.errors
        );
        assert!(produced > 3 * 3 * PROGRESS, "{f}");
        assert!(tally.notes().is_empty(), "{:?}", tally.notes());
        f.assert_exact("kill-leader");
    });
}

#[test]
fn active_controller_killed() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let _serial = serial();
    let _heal = Heal(&cluster);
    support::run_within(300, async {
        let (observer, topic) = setup(&cluster, "faults-kill-controller").await;
        let controller = describe_quorum(&observer, &[])
            .await
            .unwrap_or_else(|e| panic!("DescribeQuorum: {e}"))
            .leader;
        let producing = Client::connect(producer_config(&cluster))
            .await
            .expect("connect");
        let stream = Stream::start(producing, &topic, PARTITIONS, PACE, u64::MAX).await;
        let reading = Client::connect(reader_config(&cluster))
            .await
            .expect("connect");
        let reader = Reader::start(reading, &topic, PARTITIONS).await;
        until(
            "2000 records acknowledged and 1000 read",
            Duration::from_secs(60),
            || async { stream.acked() >= 2000 && reader.read() >= 1000 },
        )
        .await;

        // SIGKILL the active controller (a broker too: each node is both).
        let at_kill = stream.marks();
        let killed = Instant::now();
        node(&cluster, controller, "kill").await;
        eprintln!(
            "killed node {controller}, the active controller; {}",
            stream.progress()
        );
        let elected = until(
            "DescribeQuorum names another active controller",
            Duration::from_secs(60),
            || async {
                describe_quorum(&observer, &[controller])
                    .await
                    .is_ok_and(|q| q.leader != controller)
            },
        )
        .await;
        let successor = describe_quorum(&observer, &[controller])
            .await
            .map(|q| q.leader)
            .unwrap_or(-1);
        progress_after(
            &stream,
            &at_kill,
            "after the controller's kill",
            Duration::from_secs(90),
        )
        .await;
        read_past(&reader, &at_kill, "the controller's kill").await;

        // A topic can be created: only an active controller does that. The
        // killed node is fenced first (two brokers left: replication 2).
        until(
            "the killed node leaves the metadata",
            Duration::from_secs(60),
            || async {
                observer.refresh_metadata(None).await.is_ok()
                    && !observer.metadata().brokers.contains_key(&controller)
            },
        )
        .await;
        let created_at = Instant::now();
        let fresh = support::unique_topic("faults-after-controller");
        topics::create(
            &observer,
            &TopicSpec::new(&fresh, 1)
                .replication(2)
                .config("retention.ms", "-1"),
        )
        .await;
        let created = created_at.elapsed();
        let small = Stream::start(
            Client::connect(producer_config(&cluster))
                .await
                .expect("connect"),
            &fresh,
            1,
            Pace::Flat,
            100,
        )
        .await;
        until(
            "100 records to the new topic",
            Duration::from_secs(60),
            || async { small.acked() + small.failed() >= 100 },
        )
        .await;
        let small_out = small.finish().await;
        let small_f = read_raw(&observer, &fresh, 1).await.figures(&small_out);
        eprintln!("topic created after the failover: {small_f}");
        small_f.assert_exact("the topic created after the failover");
        assert_eq!(small_f.read, 100);

        // The old controller comes back and catches up with the quorum.
        let restart = node(&cluster, controller, "start").await;
        let at_restart = stream.marks();
        let hw = describe_quorum(&observer, &[controller])
            .await
            .unwrap_or_else(|e| panic!("DescribeQuorum: {e}"))
            .high_watermark;
        let caught_up = until(
            "the restarted controller caught up with the quorum",
            Duration::from_secs(120),
            || async {
                describe_quorum(&observer, &[controller])
                    .await
                    .is_ok_and(|q| {
                        q.voters
                            .iter()
                            .any(|&(id, end)| id == controller && end >= hw)
                    })
            },
        )
        .await;
        wait_fully_replicated(&observer, &topic, Duration::from_secs(120)).await;
        progress_after(
            &stream,
            &at_restart,
            "after the restart",
            Duration::from_secs(60),
        )
        .await;
        let out = stream.finish().await;
        let read = reader.finish(&observer, &topic).await;
        let f = read.figures(&out);
        let raw = read_raw(&observer, &topic, PARTITIONS).await.figures(&out);
        eprintln!(
            "kill-controller: {f} (klamm's consumer, during the run) | raw read: {raw} | \
             controller {controller} -> {successor} in {elected:.1?}, topic created in {created:.1?}, \
             down {:.1?}, restart {restart:.1?}, caught up {caught_up:.1?} later",
            killed.elapsed()
        );
        assert_ne!(successor, controller);
        assert!(read.notes().is_empty(), "{:?}", read.notes());
        assert!(
            out.errors.is_empty(),
            "every future resolved Ok: {:?}",
            out.errors
        );
        f.assert_exact("kill-controller, consumer");
        raw.assert_exact("kill-controller, raw read");
    });
}

#[test]
fn leader_hung_past_the_request_timeout() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let _serial = serial();
    let _heal = Heal(&cluster);
    support::run_within(300, async {
        let (observer, topic) = setup(&cluster, "faults-hung-leader").await;
        let mut config = producer_config(&cluster);
        let timeout = Duration::from_secs(5);
        config.net.request_timeout = timeout;
        config.producer.request_timeout = timeout;
        let producing = Client::connect(config).await.expect("connect");
        let stream = Stream::start(producing, &topic, PARTITIONS, PACE, u64::MAX).await;
        // klamm's consumer reads along: its fetches to the hung node time
        // out too (request.timeout.ms 10 s) and move to the new leader.
        let reading = Client::connect(reader_config(&cluster))
            .await
            .expect("connect");
        let reader = Reader::start(reading, &topic, PARTITIONS).await;
        until(
            "2000 records acknowledged",
            Duration::from_secs(60),
            || async { stream.acked() >= 2000 },
        )
        .await;

        // SIGSTOP the leader of partition 0: its sockets stay open, nothing
        // answers, until the controller fences it (6 s without heartbeats).
        let victim = partition_state(&observer, &topic, 0)
            .await
            .map(|p| p.leader)
            .expect("partition 0 has a leader");
        let at_pause = stream.marks();
        let in_flight = stream.sent() - stream.acked();
        let paused = Instant::now();
        node(&cluster, victim, "pause").await;
        eprintln!(
            "paused node {victim} with {in_flight} records unacknowledged; {}",
            stream.progress()
        );
        let moved = leaders_moved_off(
            &observer,
            &topic,
            PARTITIONS,
            victim,
            "every partition led by a running node",
        )
        .await;
        // While it still hangs: whatever was sent to it was timed out and
        // went to the new leader.
        until(
            "every record sent before the pause resolved while the node hangs",
            Duration::from_secs(120),
            || async { stream.resolved_below(&at_pause) },
        )
        .await;
        let resolved = paused.elapsed();
        progress_after(
            &stream,
            &at_pause,
            "while the old leader hangs",
            Duration::from_secs(60),
        )
        .await;
        read_past(&reader, &at_pause, "the pause").await;
        let hung = paused.elapsed();
        let retried = stream.stats().batches_retried;
        node(&cluster, victim, "resume").await;
        let at_resume = stream.marks();
        let rejoined = wait_fully_replicated(&observer, &topic, Duration::from_secs(120)).await;
        progress_after(
            &stream,
            &at_resume,
            "after the resume",
            Duration::from_secs(60),
        )
        .await;
        let out = stream.finish().await;
        let consumed = reader.finish(&observer, &topic).await;
        let c = consumed.figures(&out);
        assert!(consumed.notes().is_empty(), "{:?}", consumed.notes());
        c.assert_exact("hung-leader, klamm's consumer");
        let tally = read_raw(&observer, &topic, PARTITIONS).await;
        let f = tally.figures(&out);
        eprintln!("hung-leader, klamm's consumer reading along: {c}");
        eprintln!(
            "hung-leader: {f} in_flight_at_pause={in_flight} retried_batches={retried} \
             (of {} sent) | leaders moved {moved:.1?} after the pause, every earlier record \
             resolved {resolved:.1?} after it, hung {hung:.1?} (request.timeout.ms {timeout:?}), \
             back in every ISR {rejoined:.1?} after the resume",
            out.stats.batches_sent
        );
        assert!(
            hung > timeout,
            "the node hung longer than the request timeout"
        );
        assert!(
            retried > 0,
            "requests to the hung leader were timed out and retried"
        );
        assert!(
            out.errors.is_empty(),
            "every future resolved Ok: {:?}",
            out.errors
        );
        assert!(tally.notes().is_empty(), "{:?}", tally.notes());
        f.assert_exact("hung-leader");
    });
}

#[test]
fn leader_killed_with_a_short_delivery_timeout() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let _serial = serial();
    let _heal = Heal(&cluster);
    support::run_within(300, async {
        let (observer, topic) = setup(&cluster, "faults-kill-short-timeout").await;
        // Records to the killed leader's partitions wait longer than this
        // for the controller to move leadership (6 s without heartbeats).
        let mut config = producer_config(&cluster);
        config.net.request_timeout = Duration::from_secs(2);
        config.producer.request_timeout = Duration::from_secs(2);
        config.producer.delivery_timeout = Duration::from_secs(3);
        let producing = Client::connect(config).await.expect("connect");
        let stream = Stream::start(producing, &topic, PARTITIONS, PACE, u64::MAX).await;
        until(
            "2000 records acknowledged",
            Duration::from_secs(60),
            || async { stream.acked() >= 2000 },
        )
        .await;

        // The leader with the lowest id: the node a client lists first.
        let led = leaders(&observer, &topic).await;
        let victim = led
            .iter()
            .copied()
            .filter(|&l| l >= 0)
            .min()
            .expect("a leader");
        let victims: Vec<i32> = (0..PARTITIONS)
            .filter(|&p| led[p as usize] == victim)
            .collect();
        let at_kill = stream.marks();
        let in_flight = stream.sent() - stream.acked();
        let killed = Instant::now();
        node(&cluster, victim, "kill").await;
        eprintln!(
            "killed node {victim} (leader of partitions {victims:?}) with {in_flight} records \
             unacknowledged; {}",
            stream.progress()
        );
        let moved = leaders_moved_off(
            &observer,
            &topic,
            PARTITIONS,
            victim,
            "every partition led by a live node",
        )
        .await;
        until(
            "every record sent before the kill resolved",
            Duration::from_secs(60),
            || async { stream.resolved_below(&at_kill) },
        )
        .await;
        progress_after(
            &stream,
            &stream.marks(),
            "after the leaders moved",
            Duration::from_secs(60),
        )
        .await;
        let out = stream.finish().await;
        let tally = read_raw(&observer, &topic, PARTITIONS).await;
        let f = tally.figures(&out);
        let failed: Vec<u64> = (0..PARTITIONS).map(|p| out.failed_in(p)).collect();
        eprintln!(
            "kill-leader, delivery.timeout.ms 3 s: {f} failed per partition {failed:?} \
             (the killed node led {victims:?}) | leaders moved {moved:.1?} after the kill, \
             down {:.1?}; first errors {:?}; {:?}",
            killed.elapsed(),
            out.errors.iter().take(3).collect::<Vec<_>>(),
            out.stats
        );
        // Failures are reported, never silent: whatever is not stored
        // failed, by its delivery timeout; what was acknowledged is stored
        // once, in order, and nothing is stored twice. (Every partition
        // stalls until the dead node leaves its ISR, not only the ones it
        // led: acks=all waits for every in-sync replica.) A failed record
        // may be stored all the same, even after later ones: the producer
        // gave up on its request, which a busy broker can still append
        // after the requests of the producer id the producer moved on to.
        assert!(out.failed() > 0, "the short delivery timeout bit ({f})");
        assert!(
            out.errors.iter().all(|e| e.contains("delivery.timeout.ms")),
            "records fail by their delivery timeout: {:?}",
            out.errors
        );
        assert!(tally.notes().is_empty(), "{:?}", tally.notes());
        f.assert_nothing_lost("kill-leader with a short delivery timeout");
    });
}
