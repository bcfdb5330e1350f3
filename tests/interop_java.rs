//! klamm and the Apache Kafka Java client (kafka-clients 4.4.0,
//! `peers/java`, built with Maven by `scripts/peers`) on Apache Kafka
//! 4.4.0, both directions, record by record, for each codec: the interop
//! pattern (peers/PATTERN.md: null and empty keys and values, repeated and
//! null-valued headers, explicit timestamps) written by one client must come
//! back from the other byte-exact, in order, nothing missing and nothing
//! extra. And transactions across the two clients: what one commits and
//! aborts, the other reads under read_committed (only the committed
//! records) and read_uncommitted (all, the control).
//!
//! The peer is `KLAMM_JAVA_PEER` (`scripts/test` exports it); without it
//! these tests fail unless `KLAMM_SKIP_BROKER_TESTS=1`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use klamm::Client;
use klamm::config::IsolationLevel;
use klamm::producer::AsyncProducer;
use klamm::protocol::compression::Compression;
use klamm::protocol::records::ControlRecordType;
use serde_json::Value;
use support::interop::{self, Seen};
use support::interop_peers::{
    PeerProgram, connect, fresh_topic, klamm_reads, klamm_writes_peer_reads, pattern_agrees,
    peer_verifies, peer_writes_klamm_reads,
};

/// Partitions of each round-trip topic, and records per partition.
const PARTITIONS: i32 = 3;
const COUNT: u64 = 300;

#[test]
fn java_pattern_equals_klamms() {
    pattern_agrees(PeerProgram::java());
}

#[test]
fn java_verifies_60000_records_and_reports_the_two_wrong_ones() {
    peer_verifies(PeerProgram::java(), 20_000);
}

/// The control of the Rust-side comparison every test here relies on: a
/// record that differs from the pattern in any one field is refused, and
/// the message names partition, offset and field.
#[test]
fn the_check_names_what_differs() {
    let rec = |p: i32, i: u64| Seen {
        partition: p,
        offset: 100 + i as i64,
        key: interop::key(p, i),
        value: interop::value(p, i),
        headers: interop::headers(p, i)
            .into_iter()
            .map(|h| (h.key.to_vec(), h.value.map(|v| v.to_vec())))
            .collect(),
        timestamp: interop::timestamp(i),
        timestamp_type: Some("CreateTime".into()),
    };
    // Record 3 has a null key; record 4 a null value; 5 an empty key; 9 an
    // empty value; 1 the `empty` header and `schlüssel`.
    assert_eq!(interop::key(0, 3), None);
    assert_eq!(interop::value(0, 4), None);
    assert_eq!(interop::key(0, 5), Some(Vec::new()));
    assert_eq!(interop::value(0, 9), Some(Vec::new()));
    for i in 0..200 {
        interop::check(&rec(1, i), 1, i).expect("the pattern matches itself");
    }
    let fails = |seen: Seen, i: u64, field: &str| {
        let err = interop::check(&seen, seen.partition, i).expect_err(field);
        let at = format!("partition {} offset {}", seen.partition, seen.offset);
        assert!(err.contains(&at), "{err}");
        assert!(err.contains(&format!(": {field}")), "{field}: {err}");
    };
    let mut r = rec(1, 3);
    r.key = Some(Vec::new());
    fails(r, 3, "key");
    let mut r = rec(1, 5);
    r.key = None;
    fails(r, 5, "key");
    let mut r = rec(1, 4);
    r.value = Some(Vec::new());
    fails(r, 4, "value");
    let mut r = rec(1, 9);
    r.value = None;
    fails(r, 9, "value");
    let mut r = rec(1, 10);
    if let Some(v) = r.value.as_mut() {
        v[30] ^= 1;
    }
    fails(r, 10, "value");
    let mut r = rec(1, 1);
    r.headers[3].1 = Some(Vec::new());
    fails(r, 1, "headers[3].value");
    let mut r = rec(1, 1);
    r.headers.swap(2, 4);
    fails(r, 1, "headers[2].value");
    let mut r = rec(1, 1);
    r.headers[5].1 = None;
    fails(r, 1, "headers[5].value");
    let mut r = rec(1, 1);
    r.headers.pop();
    fails(r, 1, "headers");
    let mut r = rec(1, 1);
    r.headers[0].0 = b"Seq".to_vec();
    fails(r, 1, "headers[0].key");
    let mut r = rec(1, 6);
    r.timestamp += 1;
    fails(r, 6, "timestamp");
    let mut r = rec(1, 6);
    r.timestamp_type = Some("LogAppendTime".into());
    fails(r, 6, "timestampType");
    let r = rec(1, 6);
    assert!(
        interop::check(&r, 1, 7).is_err(),
        "record 6 is not record 7"
    );
    assert!(interop::check(&r, 0, 6).is_err(), "partition 1 is not 0");
}

/// The control of the per-partition comparison: a missing record, an extra
/// one, two swapped, a stray partition and a shifted offset are each
/// refused, naming the partition.
#[test]
fn the_partition_check_names_what_is_missing_or_extra() {
    let seen = |p: i32, i: u64, offset: i64| Seen {
        partition: p,
        offset,
        key: interop::key(p, i),
        value: interop::value(p, i),
        headers: interop::headers(p, i)
            .into_iter()
            .map(|h| (h.key.to_vec(), h.value.map(|v| v.to_vec())))
            .collect(),
        timestamp: interop::timestamp(i),
        timestamp_type: None,
    };
    let good: Vec<Seen> = (0..20)
        .flat_map(|i| [seen(0, i, i as i64), seen(1, i, i as i64)])
        .collect();
    let want = |_| interop::contiguous(20);
    interop::check_partitions(&good, 2, want).expect("the records as written");
    let refused = |records: Vec<Seen>, what: &str| {
        let err = interop::check_partitions(&records, 2, want).expect_err(what);
        assert!(err.contains("partition"), "{what}: {err}");
        err
    };
    let mut r = good.clone();
    r.pop();
    let err = refused(r, "a missing record");
    assert!(err.contains("want 20 records got 19"), "{err}");
    let mut r = good.clone();
    r.push(seen(1, 20, 20));
    let err = refused(r, "an extra record");
    assert!(err.contains("first extra at offset 20"), "{err}");
    let mut r = good.clone();
    r.swap(4, 6);
    refused(r, "two records swapped");
    let mut r = good.clone();
    r.push(seen(2, 0, 0));
    refused(r, "a record of a partition not written");
    let mut r = good;
    r[7].offset += 1;
    let err = refused(r, "a shifted offset");
    assert!(err.contains("offset: want 3"), "{err}");
}

fn klamm_to_java(codec: Compression) {
    klamm_writes_peer_reads(PeerProgram::java(), codec, PARTITIONS, COUNT);
}

fn java_to_klamm(codec: Compression) {
    peer_writes_klamm_reads(PeerProgram::java(), codec, PARTITIONS, COUNT);
}

#[test]
fn klamm_writes_java_reads_none() {
    klamm_to_java(Compression::None);
}

#[test]
fn klamm_writes_java_reads_gzip() {
    klamm_to_java(Compression::Gzip);
}

#[test]
fn klamm_writes_java_reads_snappy() {
    klamm_to_java(Compression::Snappy);
}

#[test]
fn klamm_writes_java_reads_lz4() {
    klamm_to_java(Compression::Lz4);
}

#[test]
fn klamm_writes_java_reads_zstd() {
    klamm_to_java(Compression::Zstd);
}

#[test]
fn java_writes_klamm_reads_none() {
    java_to_klamm(Compression::None);
}

#[test]
fn java_writes_klamm_reads_gzip() {
    java_to_klamm(Compression::Gzip);
}

#[test]
fn java_writes_klamm_reads_snappy() {
    java_to_klamm(Compression::Snappy);
}

#[test]
fn java_writes_klamm_reads_lz4() {
    java_to_klamm(Compression::Lz4);
}

#[test]
fn java_writes_klamm_reads_zstd() {
    java_to_klamm(Compression::Zstd);
}

// ---- transactions across the two clients

/// The transactions both directions run, interleaved commits and aborts,
/// ending with a commit: (commit?, records per partition).
const SCRIPT: [(bool, u64); 5] = [(true, 10), (false, 5), (true, 7), (false, 12), (true, 3)];
const TXN_PARTITIONS: i32 = 2;

fn script_arg() -> String {
    SCRIPT
        .iter()
        .map(|(commit, n)| format!("{}:{n}", if *commit { "commit" } else { "abort" }))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a script wrote to one partition: (pattern index, offset, committed?).
type Written = Vec<(u64, i64, bool)>;

fn committed(w: &Written) -> Vec<(u64, i64)> {
    w.iter().filter(|x| x.2).map(|&(i, o, _)| (i, o)).collect()
}

fn all(w: &Written) -> Vec<(u64, i64)> {
    w.iter().map(|&(i, o, _)| (i, o)).collect()
}

/// The Java producer commits and aborts (lz4, two partitions); klamm's
/// consumer under read_committed reads exactly the committed records, in
/// order, at the offsets the Java producer was given, and the partition
/// ends with the last COMMIT marker; under read_uncommitted (the control)
/// it reads the aborted records as well. The stored markers follow the
/// script.
#[test]
fn java_transactions_read_by_klamm() {
    let Some(addr) = support::broker() else {
        return;
    };
    let Some(peer) = PeerProgram::java() else {
        return;
    };
    support::run_within(150, async {
        let client = connect(&addr, Compression::None).await;
        let topic = fresh_topic(&client, "interop-java-txn", TXN_PARTITIONS).await;
        let id = support::unique_topic("klamm-interop-java-txn-id");
        let run = peer
            .run(
                &[
                    "txn-produce",
                    "--bootstrap",
                    &addr,
                    "--topic",
                    &topic,
                    "--partitions",
                    &TXN_PARTITIONS.to_string(),
                    "--transactional-id",
                    &id,
                    "--script",
                    &script_arg(),
                    "--codec",
                    "lz4",
                ],
                Duration::from_secs(60),
            )
            .await;
        run.assert_ok();
        let txns: Vec<&Value> = run.of_type("txn").collect();
        assert_eq!(txns.len(), SCRIPT.len(), "{}", run.describe());
        let mut written: Vec<Written> = vec![Vec::new(); TXN_PARTITIONS as usize];
        let mut first = 0;
        for (k, (t, &(commit, n))) in txns.iter().zip(&SCRIPT).enumerate() {
            let outcome = if commit { "commit" } else { "abort" };
            assert_eq!(t["outcome"], outcome, "step {k}\n{}", run.describe());
            assert_eq!(t["first_index"], first, "step {k}\n{}", run.describe());
            assert_eq!(t["count"], n, "step {k}\n{}", run.describe());
            let parts = t["partitions"].as_array().expect("partitions");
            assert_eq!(parts.len(), TXN_PARTITIONS as usize);
            for part in parts {
                let p = part["partition"].as_i64().expect("partition") as usize;
                let offsets = part["offsets"].as_array().expect("offsets");
                assert_eq!(offsets.len() as u64, n, "step {k} partition {p}");
                for (j, o) in offsets.iter().enumerate() {
                    written[p].push((first + j as u64, o.as_i64().expect("offset"), commit));
                }
            }
            first += n;
        }

        let mut config = client.config().clone();
        config.consumer.isolation_level = IsolationLevel::ReadCommitted;
        let reader = Client::connect(config)
            .await
            .expect("read_committed client");
        for (p, w) in written.iter().enumerate() {
            let want = committed(w);
            let (hwm, lso) = klamm_reads(&reader, &topic, p as i32, &want).await;
            let last = want.last().expect("committed records").1;
            assert_eq!(
                hwm,
                last + 2,
                "{topic}/{p}: after the last committed record only its COMMIT marker"
            );
            assert_eq!(lso, hwm, "{topic}/{p}: no transaction left open");
            eprintln!(
                "{topic}/{p}: read_committed read the {} committed of {} records",
                want.len(),
                w.len()
            );
        }
        reader.close().await;

        // The control: the aborted records are in the log, and
        // read_uncommitted reads them.
        for (p, w) in written.iter().enumerate() {
            klamm_reads(&client, &topic, p as i32, &all(w)).await;
        }

        // The markers follow the script, and the data is transactional lz4.
        let markers: Vec<ControlRecordType> = SCRIPT
            .iter()
            .map(|(commit, _)| {
                if *commit {
                    ControlRecordType::Commit
                } else {
                    ControlRecordType::Abort
                }
            })
            .collect();
        for p in 0..TXN_PARTITIONS {
            let batches = support::read::stored_batches(&client, &topic, p).await;
            let got: Vec<ControlRecordType> = batches
                .iter()
                .flat_map(|b| b.control_records())
                .map(|c| c.expect("control record").record_type)
                .collect();
            assert_eq!(got, markers, "{topic}/{p}: the transaction markers");
            for b in batches.iter().filter(|b| !b.is_control) {
                assert!(
                    b.is_transactional,
                    "{topic}/{p}: batch at {}",
                    b.base_offset
                );
                assert_eq!(
                    b.compression,
                    Compression::Lz4,
                    "{topic}/{p}: batch at {}",
                    b.base_offset
                );
            }
        }
        client.close().await;
    });
}

/// klamm's transactional `AsyncProducer` commits and aborts (lz4, two
/// partitions, aborted records flushed to the log first); the Java
/// consumer under read_committed reads exactly the committed records, in
/// order, at the offsets klamm was given, and reaches the end offset with
/// nothing more; under read_uncommitted (the control) it reads the aborted
/// ones too.
#[test]
fn klamm_transactions_read_by_java() {
    let Some(addr) = support::broker() else {
        return;
    };
    let Some(peer) = PeerProgram::java() else {
        return;
    };
    support::run_within(150, async {
        let admin = connect(&addr, Compression::None).await;
        let topic: Arc<str> = fresh_topic(&admin, "interop-klamm-txn", TXN_PARTITIONS).await;
        let mut config = admin.config().clone();
        config.producer.compression = Compression::Lz4;
        config.producer.idempotence = true;
        config.producer.transactional_id =
            Some(support::unique_topic("klamm-interop-klamm-txn-id"));
        config.producer.transaction_timeout = Duration::from_secs(30);
        config.producer.max_block = Duration::from_secs(15);
        let client = Client::connect(config).await.expect("transactional client");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        producer
            .init_transactions()
            .await
            .expect("init_transactions");

        let mut written: Vec<Written> = vec![Vec::new(); TXN_PARTITIONS as usize];
        let mut next = 0u64;
        for &(commit, n) in &SCRIPT {
            producer.begin_transaction().expect("begin_transaction");
            let mut pending = Vec::new();
            for i in next..next + n {
                for p in 0..TXN_PARTITIONS {
                    let d = producer
                        .send(interop::record(&topic, p, i))
                        .await
                        .expect("send");
                    pending.push((p, i, d));
                }
            }
            // Written before the abort, so that the aborted records are in
            // the log for read_uncommitted to find.
            producer.flush().await.expect("flush");
            for (p, i, d) in pending {
                let meta = d
                    .await
                    .unwrap_or_else(|e| panic!("record {i} of partition {p}: {e}"));
                assert_eq!(meta.partition, p);
                written[p as usize].push((i, meta.offset, commit));
            }
            if commit {
                producer.commit_transaction().await.expect("commit");
            } else {
                producer.abort_transaction().await.expect("abort");
            }
            next += n;
        }
        producer.close().await.expect("close");
        client.close().await;

        for (isolation, pick) in [
            (
                "read_committed",
                committed as fn(&Written) -> Vec<(u64, i64)>,
            ),
            ("read_uncommitted", all),
        ] {
            let count = pick(&written[0]).len();
            assert!(written.iter().all(|w| pick(w).len() == count));
            let run = peer
                .run(
                    &[
                        "consume",
                        "--bootstrap",
                        &addr,
                        "--topic",
                        &topic,
                        "--partitions",
                        &TXN_PARTITIONS.to_string(),
                        "--count",
                        &count.to_string(),
                        "--isolation",
                        isolation,
                        "--output",
                        "dump",
                    ],
                    Duration::from_secs(60),
                )
                .await;
            run.assert_ok();
            let s = run.summary();
            assert_eq!(s["isolation"], isolation, "{}", run.describe());
            assert_eq!(s["caught_up"], true, "{}", run.describe());
            assert_eq!(s["extra"], 0, "{}", run.describe());
            let records = run.records();
            if let Err(e) =
                interop::check_partitions(&records, TXN_PARTITIONS, |p| pick(&written[p as usize]))
            {
                panic!("{topic}: the Java consumer ({isolation}) read: {e}");
            }
            eprintln!(
                "{topic}: the Java consumer ({isolation}) read {} of {} records",
                records.len(),
                written.iter().map(Vec::len).sum::<usize>()
            );
        }
        admin.close().await;
    });
}
