//! A million records through two leader kills on the three-node cluster:
//! an idempotent acks=all producer writes 1,000,000 records of the
//! round-trip pattern (about 100 B each) over six partitions at
//! replication factor 3 (min.insync.replicas=2); the leader of one
//! partition is killed with SIGKILL and restarted, later the leader of
//! another; then klamm's consumer and Kafka's Java console consumer read
//! the topic back. Neither may find a record lost, duplicated or out of
//! order.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use klamm::Client;
use support::cluster::{Cluster, Heal};
use support::faults::{
    self, Pace, Stream, leaders, leaders_moved_off, node, observer_config, producer_config,
    reader_config, until, wait_fully_replicated, wait_three_brokers,
};
use support::readers::{Reader, java_read};
use support::topics;

const TOTAL: u64 = 1_000_000;
const PARTITIONS: i32 = 6;

/// One run at a time (a file of its own, but the rule holds for any other
/// test added here).
static SERIAL: Mutex<()> = Mutex::new(());

/// Kills the leader of the first partition not led by a node in `spare`
/// and waits until every partition has a leader again; returns the node
/// and how long the leaders took to move.
async fn kill_a_leader(
    cluster: &Cluster,
    observer: &Client,
    topic: &str,
    spare: &[i32],
    stream: &Stream,
) -> (i32, Duration) {
    let led = leaders(observer, topic).await;
    let victim = led
        .iter()
        .copied()
        .find(|l| *l >= 0 && !spare.contains(l))
        .unwrap_or_else(|| panic!("no partition led by a node outside {spare:?}: {led:?}"));
    let partitions: Vec<usize> = (0..led.len()).filter(|&p| led[p] == victim).collect();
    node(cluster, victim, "kill").await;
    eprintln!(
        "killed node {victim}, leader of partitions {partitions:?}; {}",
        stream.progress()
    );
    let moved = leaders_moved_off(
        observer,
        topic,
        PARTITIONS,
        victim,
        "every partition led by a live node",
    )
    .await;
    (victim, moved)
}

#[test]
fn million_records_through_two_leader_kills() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _heal = Heal(&cluster);
    let topic = support::unique_topic("faults-million");
    let (out, klamm, klamm_took, produce_took, ends) = support::run_within(600, async {
        let observer = Client::connect(observer_config(&cluster))
            .await
            .expect("connect");
        wait_three_brokers(&observer, Duration::from_secs(120)).await;
        topics::create(&observer, &faults::spec(&topic, PARTITIONS)).await;
        wait_fully_replicated(&observer, &topic, Duration::from_secs(60)).await;

        let mut config = producer_config(&cluster);
        config.producer.batch_size = 128 * 1024;
        let producing = Client::connect(config).await.expect("connect");
        // Up to 55 % until the first killed node is back in every ISR: the
        // second kill must not meet the first node still down (one node
        // left is below min.insync.replicas and the quorum's majority).
        let stream = Stream::start(producing, &topic, PARTITIONS, Pace::Flat, TOTAL).await;
        stream.allow(TOTAL * 55 / 100);

        until("20 % acknowledged", Duration::from_secs(300), || async {
            stream.acked() >= TOTAL / 5
        })
        .await;
        let (first, first_moved) = kill_a_leader(&cluster, &observer, &topic, &[], &stream).await;
        let first_restart = node(&cluster, first, "start").await;
        let first_rejoined =
            wait_fully_replicated(&observer, &topic, Duration::from_secs(180)).await;
        stream.allow(TOTAL);

        until("60 % acknowledged", Duration::from_secs(300), || async {
            stream.acked() >= TOTAL * 3 / 5
        })
        .await;
        let (second, second_moved) =
            kill_a_leader(&cluster, &observer, &topic, &[first], &stream).await;
        let second_restart = node(&cluster, second, "start").await;
        let second_rejoined =
            wait_fully_replicated(&observer, &topic, Duration::from_secs(180)).await;
        until(
            "every record resolved",
            Duration::from_secs(300),
            || async { stream.acked() + stream.failed() >= TOTAL },
        )
        .await;
        let produce_took = stream.started.elapsed();
        let out = stream.finish().await;
        eprintln!(
            "million: {} written and resolved in {produce_took:.1?}; node {first} killed \
             (leaders moved in {first_moved:.1?}, restart {first_restart:.1?}, back in every ISR \
             {first_rejoined:.1?} later), node {second} killed (leaders moved in \
             {second_moved:.1?}, restart {second_restart:.1?}, back in every ISR \
             {second_rejoined:.1?} later); {:?}",
            out.written(),
            out.stats
        );

        let klamm_started = Instant::now();
        let reading = Client::connect(reader_config(&cluster))
            .await
            .expect("connect");
        let reader = Reader::start(reading, &topic, PARTITIONS).await;
        let klamm = reader.finish(&observer, &topic).await;
        let klamm_took = klamm_started.elapsed();
        let mut ends = Vec::new();
        for p in 0..PARTITIONS {
            ends.push(
                observer
                    .list_offsets(&topic, p, klamm::client::OffsetSpec::Newest)
                    .await
                    .expect("high watermark"),
            );
        }
        (out, klamm, klamm_took, produce_took, ends)
    });
    let stored: i64 = ends.iter().sum();
    let java = java_read(
        &cluster,
        &topic,
        PARTITIONS,
        stored as u64,
        Duration::from_secs(60),
    );
    let k = klamm.figures(&out);
    let j = java.tally.figures(&out);
    eprintln!("million, klamm's consumer: {k} in {klamm_took:.1?}");
    eprintln!(
        "million, Java console consumer: {j} in {:.1?}",
        java.elapsed
    );
    eprintln!(
        "million: written={} acked={} read_klamm={} read_java={} lost={}/{} duplicated={}/{} \
         reordered={}/{} (klamm/Java) stored={stored} | produce {produce_took:.1?} (two leader \
         kills), klamm read {klamm_took:.1?}, Java read {:.1?}",
        out.written(),
        out.acked(),
        k.read,
        j.read,
        k.lost,
        j.lost,
        k.duplicated,
        j.duplicated,
        k.reordered,
        j.reordered,
        java.elapsed
    );
    assert!(klamm.notes().is_empty(), "klamm: {:?}", klamm.notes());
    assert!(
        java.tally.notes().is_empty(),
        "Java: {:?}",
        java.tally.notes()
    );
    assert!(
        out.errors.is_empty(),
        "every future resolved Ok: {:?}",
        out.errors
    );
    assert_eq!(out.written(), TOTAL);
    k.assert_exact("million, klamm's consumer");
    j.assert_exact("million, Java console consumer");
    assert_eq!(
        stored as u64, TOTAL,
        "the partitions hold exactly the million"
    );
}
