//! `read_committed` against real aborted transactions written by klamm's
//! transactional `AsyncProducer` on Apache Kafka (the single node).
//!
//! On two partitions, in this order: non-transactional records, committed
//! and aborted transactions of one transactional producer (the aborted
//! records are written before the abort, so they are in the log), a
//! second transactional producer's transaction left open (it holds the
//! last stable offset), then more non-transactional records and one more
//! committed transaction, both past the LSO.
//!
//! - klamm's consumer at `ReadCommitted` sees the non-transactional and
//!   committed records up to the LSO, never an aborted record or a
//!   control record, and nothing past the LSO while the transaction is
//!   open (its reported LSO is the open transaction's first offset, its
//!   high watermark beyond); once the transaction commits, the rest.
//! - The control: at `ReadUncommitted` it sees every data record, the
//!   aborted ones and those past the LSO included.
//! - At the protocol level, a raw Fetch at isolation level 1 is cut at the
//!   LSO and lists the aborted transactions (the producer and the first
//!   offset of each); at level 0 it is not cut and lists none.
//!
//! Transactions written by the Java producer are another branch's tests.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use klamm::config::IsolationLevel;
use klamm::consumer::{Consumer, PartitionConsumer, StartOffset};
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use klamm::protocol::records::{ControlRecordType, RecordBatch};
use klamm::{Client, Config};
use support::read::{batches_of, config, fetch_once, stored_batches};
use support::topics::create_topic;

const PARTITIONS: i32 = 2;

fn txn_config(addr: &str, transactional_id: &str) -> Config {
    let mut cfg = config(addr);
    cfg.net.request_timeout = Duration::from_secs(10);
    cfg.producer.transactional_id = Some(transactional_id.to_string());
    // Longer than the test: the open transaction must not time out.
    cfg.producer.transaction_timeout = Duration::from_secs(120);
    cfg.producer.max_block = Duration::from_secs(20);
    cfg
}

async fn transactional(addr: &str, prefix: &str) -> AsyncProducer {
    let id = support::unique_topic(prefix);
    let producer = AsyncProducer::new(
        Client::connect(txn_config(addr, &id))
            .await
            .expect("connect"),
    )
    .await
    .expect("producer");
    producer
        .init_transactions()
        .await
        .expect("init_transactions");
    producer
}

/// Sends `tag` to every partition (value `tag-p`) and waits until each is
/// written; returns the offsets by partition.
async fn write(producer: &AsyncProducer, topic: &Arc<str>, tag: &str) -> Vec<i64> {
    let mut futures: Vec<DeliveryFuture> = Vec::new();
    for p in 0..PARTITIONS {
        let r = ProducerRecord::new(Arc::clone(topic), format!("{tag}-{p}")).with_partition(p);
        futures.push(producer.send(r).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    let mut offsets = Vec::new();
    for f in futures {
        offsets.push(f.await.expect("written").offset);
    }
    offsets
}

/// Reads `n` records, failing if they do not come within 20 s.
async fn read(pc: &mut PartitionConsumer, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let r = tokio::time::timeout_at(deadline, pc.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} records within 20 s: {out:?}", out.len()))
            .expect("the partition consumer is open")
            .expect("a record");
        let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        out.push((r.offset, v));
    }
    out
}

fn values(records: &[(i64, String)]) -> Vec<String> {
    records.iter().map(|(_, v)| v.clone()).collect()
}

fn expected(tags: &[&str], p: i32) -> Vec<String> {
    tags.iter().map(|t| format!("{t}-{p}")).collect()
}

/// Waits until the partition consumer reports this LSO and a high
/// watermark of at least `hwm_at_least` (they come with each fetch answer).
async fn wait_for_marks(pc: &PartitionConsumer, lso: i64, hwm_at_least: i64) {
    let start = Instant::now();
    while pc.last_stable_offset() != lso || pc.high_water_mark() < hwm_at_least {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "partition {}: LSO {} (want {lso}), high watermark {} (want >= {hwm_at_least})",
            pc.partition(),
            pc.last_stable_offset(),
            pc.high_water_mark()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The batch holding `offset`.
fn batch_at(batches: &[RecordBatch], offset: i64) -> &RecordBatch {
    batches
        .iter()
        .find(|b| !b.is_control && b.base_offset <= offset && offset <= b.last_offset())
        .unwrap_or_else(|| panic!("no data batch holds offset {offset}"))
}

#[test]
fn read_committed_sees_committed_records_only_and_stops_at_the_lso() {
    support::run_within(150, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-read-committed").into();
        create_topic(&client, &topic, PARTITIONS).await;

        let plain = AsyncProducer::new(client.clone()).await.expect("producer");
        let txn = transactional(&addr, "klamm-rc-txn").await;
        let open = transactional(&addr, "klamm-rc-open").await;

        write(&plain, &topic, "n0").await;
        txn.begin_transaction().expect("begin");
        write(&txn, &topic, "c1").await;
        txn.commit_transaction().await.expect("commit c1");
        write(&plain, &topic, "n1").await;
        txn.begin_transaction().expect("begin");
        // Written, then aborted: the records are in the log.
        let a1 = write(&txn, &topic, "a1").await;
        txn.abort_transaction().await.expect("abort a1");
        txn.begin_transaction().expect("begin");
        write(&txn, &topic, "c2").await;
        txn.commit_transaction().await.expect("commit c2");
        txn.begin_transaction().expect("begin");
        let a2 = write(&txn, &topic, "a2").await;
        txn.abort_transaction().await.expect("abort a2");
        write(&plain, &topic, "n2").await;
        // The second producer's transaction stays open: the LSO stops at
        // its first record.
        open.begin_transaction().expect("begin");
        let o1 = write(&open, &topic, "o1").await;
        write(&plain, &topic, "n3").await;
        txn.begin_transaction().expect("begin");
        let c3 = write(&txn, &topic, "c3").await;
        txn.commit_transaction().await.expect("commit c3");

        // What the log holds: the aborted records, and ABORT markers.
        let mut producer_ids = (0, 0);
        for p in 0..PARTITIONS {
            let batches = stored_batches(&client, &topic, p).await;
            let aborted = batch_at(&batches, a1[p as usize]);
            assert!(aborted.is_transactional);
            let open_batch = batch_at(&batches, o1[p as usize]);
            producer_ids = (aborted.producer_id, open_batch.producer_id);
            assert_ne!(producer_ids.0, producer_ids.1);
            let aborts = batches
                .iter()
                .filter(|b| b.is_control && b.producer_id == producer_ids.0)
                .flat_map(|b| b.control_records().map(|c| c.expect("control").record_type))
                .filter(|t| *t == ControlRecordType::Abort)
                .count();
            assert_eq!(aborts, 2, "partition {p}: two ABORT markers");
        }
        let (txn_pid, _) = producer_ids;

        let committed_so_far = ["n0", "c1", "n1", "c2", "n2"];
        let everything = ["n0", "c1", "n1", "a1", "c2", "a2", "n2", "o1", "n3", "c3"];

        // The protocol level while the transaction is open.
        for p in 0..PARTITIONS {
            let i = p as usize;
            let rc = fetch_once(&client, &topic, p, 0, 1).await;
            assert_eq!(rc.last_stable_offset, o1[i], "partition {p}: LSO");
            assert!(rc.high_watermark > c3[i], "partition {p}: HWM past c3");
            let mut listed: Vec<(i64, i64)> = rc
                .aborted_transactions
                .clone()
                .expect("read_committed answers list aborted transactions")
                .iter()
                .map(|t| (t.producer_id, t.first_offset))
                .collect();
            listed.sort();
            assert_eq!(
                listed,
                [(txn_pid, a1[i]), (txn_pid, a2[i])],
                "partition {p}: the aborted transactions"
            );
            let got = batches_of(&rc);
            assert!(!got.is_empty());
            for b in &got {
                assert!(
                    b.last_offset() < rc.last_stable_offset,
                    "partition {p}: a batch at {} past the LSO",
                    b.base_offset
                );
            }
            // The control: read_uncommitted is not cut and lists nothing.
            let ru = fetch_once(&client, &topic, p, 0, 0).await;
            assert!(
                ru.aborted_transactions
                    .as_ref()
                    .is_none_or(|a| a.is_empty()),
                "{:?}",
                ru.aborted_transactions
            );
            assert!(batches_of(&ru).iter().any(|b| b.last_offset() >= c3[i]));
        }

        let mut consumer_config = config(&addr);
        consumer_config.consumer.fetch_max_wait = Duration::from_millis(100);
        consumer_config.consumer.isolation_level = IsolationLevel::ReadCommitted;
        let committed_client = Client::connect(consumer_config.clone())
            .await
            .expect("connect");
        let committed_consumer = Consumer::new(committed_client);
        consumer_config.consumer.isolation_level = IsolationLevel::ReadUncommitted;
        let uncommitted = Consumer::new(Client::connect(consumer_config).await.expect("connect"));

        let mut readers = Vec::new();
        for p in 0..PARTITIONS {
            let i = p as usize;
            let mut pc = committed_consumer
                .consume_partition(&topic, p, StartOffset::Oldest)
                .await
                .expect("consume");
            let got = read(&mut pc, committed_so_far.len()).await;
            assert_eq!(
                values(&got),
                expected(&committed_so_far, p),
                "partition {p}"
            );
            assert!(got.iter().all(|(o, _)| *o < o1[i]));
            wait_for_marks(&pc, o1[i], c3[i] + 1).await;
            // Nothing past the LSO while the transaction is open: not the
            // open transaction's record, not the plain record after it,
            // not the transaction committed after it.
            let early = tokio::time::timeout(Duration::from_secs(1), pc.recv()).await;
            assert!(
                early.is_err(),
                "partition {p}: read past the LSO: {early:?}"
            );

            // The control: read_uncommitted sees every data record.
            let mut all = uncommitted
                .consume_partition(&topic, p, StartOffset::Oldest)
                .await
                .expect("consume");
            let got = read(&mut all, everything.len()).await;
            assert_eq!(values(&got), expected(&everything, p), "partition {p}");
            all.close().await;
            readers.push(pc);
        }

        open.commit_transaction()
            .await
            .expect("commit the open transaction");
        for (p, pc) in readers.iter_mut().enumerate() {
            let got = read(pc, 3).await;
            assert_eq!(values(&got), expected(&["o1", "n3", "c3"], p as i32));
            let after = tokio::time::timeout(Duration::from_millis(500), pc.recv()).await;
            assert!(
                after.is_err(),
                "partition {p}: more than committed: {after:?}"
            );
            // Once the commit marker is in, the LSO is the high watermark.
            let hwm = fetch_once(&client, &topic, p as i32, 0, 0)
                .await
                .high_watermark;
            wait_for_marks(pc, hwm, hwm).await;
            let rc = fetch_once(&client, &topic, p as i32, 0, 1).await;
            assert_eq!(rc.last_stable_offset, rc.high_watermark);
            assert_eq!(
                rc.aborted_transactions.map(|a| a.len()),
                Some(2),
                "partition {p}"
            );
        }
        drop(readers);
        committed_consumer.close().await;
        uncommitted.close().await;
        for p in [plain, txn, open] {
            p.close().await.expect("close");
        }
    });
}
