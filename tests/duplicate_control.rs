//! The control for the fault tests' duplicate check: a relay in front of
//! the single Apache Kafka node forwards chosen Produce requests, waits
//! for the broker's answer (so the batches are written), drops the answer
//! and cuts the connection. The producer cannot tell a lost request from a
//! lost answer and sends the batches again: without idempotence they are
//! written twice, and the check must find exactly those duplicates; with
//! idempotence the broker recognises them and every record is stored once.

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use klamm::Client;
use klamm::config::Acks;
use support::faults::{Outcomes, Pace, Stream, until};
use support::read::config;
use support::readers::read_raw;
use support::relay::{Cut, Relay};
use support::tally::Figures;
use support::topics::{self, TopicSpec};

/// One run at a time: both cut the same numbered requests' connections on
/// the one node.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const PARTITIONS: i32 = 2;
const RECORDS: u64 = 3000;
/// The Produce requests whose answers are dropped (1-based).
const CUT_AT: [usize; 3] = [3, 8, 15];

/// What one run through the relay gave.
struct Run {
    figures: Figures,
    out: Outcomes,
    /// Records in the requests whose (successful) answers were dropped.
    unacknowledged: usize,
    cuts: usize,
}

/// Writes `RECORDS` records through a relay that drops the answers to the
/// Produce requests numbered in `CUT_AT`, then reads the partitions back
/// from the broker directly.
async fn run(addr: &str, idempotence: bool) -> Run {
    let relay = Relay::start_with(addr.to_string(), CUT_AT.to_vec(), Cut::Answered).await;
    let direct = Client::connect(config(addr)).await.expect("connect");
    let name = if idempotence { "dup-idem" } else { "dup-plain" };
    let topic = support::unique_topic(name);
    topics::create(
        &direct,
        &TopicSpec::new(&topic, PARTITIONS).config("retention.ms", "-1"),
    )
    .await;

    let mut cfg = config(&relay.addr);
    cfg.producer.acks = Acks::All;
    cfg.producer.idempotence = idempotence;
    // Small batches: many requests, a few records in each cut one.
    cfg.producer.batch_size = 1024;
    cfg.producer.retry_backoff = Duration::from_millis(20);
    let producing = Client::connect(cfg)
        .await
        .expect("connect through the relay");
    let stream = Stream::start(producing, &topic, PARTITIONS, Pace::PerTick(20), RECORDS).await;
    until(
        &format!("{RECORDS} records resolved"),
        Duration::from_secs(60),
        || async { stream.acked() + stream.failed() >= RECORDS },
    )
    .await;
    let out = stream.finish().await;
    let figures = read_raw(&direct, &topic, PARTITIONS).await.figures(&out);
    let swallowed = relay.swallowed.lock().unwrap().clone();
    eprintln!(
        "idempotence={idempotence}: {figures} | answers dropped: {swallowed:?} | {:?}",
        out.stats
    );
    Run {
        figures,
        unacknowledged: relay.records_written_unacknowledged(),
        cuts: relay.cuts.load(Ordering::SeqCst),
        out,
    }
}

#[test]
fn written_but_unacknowledged_batches_duplicate_only_without_idempotence() {
    let Some(addr) = support::broker() else {
        return;
    };
    let _serial = serial();
    support::run_within(120, async {
        // Without idempotence: every batch whose answer was dropped is
        // stored twice, and the check counts exactly those records.
        let plain = run(&addr, false).await;
        assert_eq!(plain.cuts, CUT_AT.len(), "every chosen answer dropped");
        assert!(plain.unacknowledged > 0, "the dropped answers said written");
        assert_eq!(plain.out.failed(), 0, "retries deliver every record");
        assert_eq!(
            plain.figures.duplicated, plain.unacknowledged as u64,
            "the duplicates are the records of the unacknowledged batches ({})",
            plain.figures
        );
        assert_eq!(plain.figures.lost, 0, "{}", plain.figures);
        assert!(plain.out.stats.producer_id_requests == 0);

        // With idempotence: the same cuts, every record stored once.
        let idem = run(&addr, true).await;
        assert_eq!(idem.cuts, CUT_AT.len(), "every chosen answer dropped");
        assert!(idem.unacknowledged > 0, "the dropped answers said written");
        assert!(
            idem.out.stats.batches_retried >= CUT_AT.len() as u64,
            "{:?}",
            idem.out.stats
        );
        idem.figures
            .assert_exact("idempotent through dropped answers");
        eprintln!(
            "duplicate control: without idempotence {} ({} records written unacknowledged); \
             with idempotence {} ({} records written unacknowledged)",
            plain.figures, plain.unacknowledged, idem.figures, idem.unacknowledged
        );
    });
}
