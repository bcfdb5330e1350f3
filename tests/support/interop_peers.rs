//! The peer programs of the interop tests (`peers/java`, the Apache Kafka
//! Java client; `peers/sarama`, Sarama), built by `scripts/peers`, and the
//! round trips both test files run with them: klamm writes the interop
//! pattern and the peer reads it, the peer writes it and klamm reads it.
//!
//! A peer speaks JSON lines on stdout (peers/PATTERN.md) and bounds each run
//! by `--timeout-ms`; this side waits that long plus a margin, then kills it.

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::AsyncProducer;
use klamm::protocol::compression::Compression;
use klamm::{Client, Config};
use serde_json::Value;

use super::interop::{self, Seen};

/// One peer program.
#[derive(Debug, Clone)]
pub struct PeerProgram {
    /// For messages: "the Java client", "Sarama".
    pub name: &'static str,
    /// The executable (the Java peer's launcher script, Sarama's binary).
    pub path: PathBuf,
}

impl PeerProgram {
    fn from_env(var: &str, name: &'static str) -> Option<PeerProgram> {
        let path = PathBuf::from(super::require(
            var,
            &format!("{name} peer (built by `scripts/peers build`)"),
        )?);
        assert!(
            path.is_file(),
            "{var}={} does not exist: run `scripts/peers build` and export what it prints",
            path.display()
        );
        Some(PeerProgram { name, path })
    }

    /// The Java peer (kafka-clients 4.4.0): `KLAMM_JAVA_PEER`.
    pub fn java() -> Option<PeerProgram> {
        Self::from_env("KLAMM_JAVA_PEER", "Java client")
    }

    /// The Sarama peer: `KLAMM_SARAMA_PEER`.
    pub fn sarama() -> Option<PeerProgram> {
        Self::from_env("KLAMM_SARAMA_PEER", "Sarama")
    }

    /// Runs the peer with `args` and `--timeout-ms timeout`, off the async
    /// runtime; kills it if it outlives the timeout by 30 s.
    pub async fn run(&self, args: &[&str], timeout: Duration) -> PeerRun {
        let me = self.clone();
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--timeout-ms".into(), timeout.as_millis().to_string()]);
        tokio::task::spawn_blocking(move || {
            me.run_blocking(args, timeout + Duration::from_secs(30))
        })
        .await
        .expect("peer runner")
    }

    fn run_blocking(&self, args: Vec<String>, limit: Duration) -> PeerRun {
        let mut child = Command::new(&self.path)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} ({}): {e}", self.name, self.path.display()));
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        // Stdout reaches its end when the peer exits.
        let stdout = match rx.recv_timeout(limit) {
            Ok(s) => s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "{} {args:?} still ran after {limit:?}; killed. stderr:\n{}",
                    self.name,
                    tail(&stderr, 40)
                );
            }
        };
        let status = child.wait().expect("wait for the peer");
        let stderr = err_reader.join().unwrap_or_default();
        let mut lines = Vec::new();
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => lines.push(v),
                Err(e) => panic!(
                    "{} {args:?} printed a line that is not JSON ({e}): {line}\nstderr:\n{}",
                    self.name,
                    tail(&stderr, 40)
                ),
            }
        }
        PeerRun {
            name: self.name,
            args,
            status,
            lines,
            stderr,
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a peer run printed.
#[derive(Debug)]
pub struct PeerRun {
    pub name: &'static str,
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl PeerRun {
    /// The lines of one type.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |l| l["type"] == kind)
    }

    /// The summary (the last line); fails the test without one.
    pub fn summary(&self) -> &Value {
        match self.lines.last() {
            Some(l) if l["type"] == "summary" => l,
            _ => panic!("{}: no summary line\n{}", self.name, self.describe()),
        }
    }

    /// Whether the peer says the run went as asked, with exit status 0.
    pub fn ok(&self) -> bool {
        self.status.success() && self.summary()["ok"] == true
    }

    /// Fails the test unless the run went as asked.
    pub fn assert_ok(&self) {
        assert!(
            self.ok(),
            "{} did not do what it was asked\n{}",
            self.name,
            self.describe()
        );
    }

    /// The `record` lines.
    pub fn records(&self) -> Vec<Seen> {
        self.of_type("record")
            .map(|l| Seen::from_json(l).unwrap_or_else(|e| panic!("{}: {e}", self.name)))
            .collect()
    }

    /// For failure messages: the command, the status, the summary and the
    /// mismatches, the end of stderr.
    pub fn describe(&self) -> String {
        let mut s = format!("  args: {:?}\n  status: {}\n", self.args, self.status);
        for l in self.lines.iter().filter(|l| l["type"] != "record").take(20) {
            s += &format!("  {l}\n");
        }
        s + &format!("  stderr (end):\n{}", tail(&self.stderr, 30))
    }

    /// The per-partition objects of the summary.
    pub fn summary_partitions(&self) -> &Vec<Value> {
        self.summary()["partitions"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: summary without partitions", self.name))
    }
}

/// A client for the test broker, with short fetch waits, writing `codec`.
pub async fn connect(addr: &str, codec: Compression) -> Client {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    config.net.client_id = "klamm-interop".into();
    config.producer.compression = codec;
    config.producer.linger = Duration::from_millis(5);
    config.consumer.fetch_max_wait = Duration::from_millis(100);
    Client::connect(config).await.expect("connect")
}

/// Creates a fresh topic for the pattern. Retention is off: the pattern's
/// timestamps (2023) are older than the broker's default retention of 7
/// days, so its next retention check would delete the records.
pub async fn fresh_topic(client: &Client, prefix: &str, partitions: i32) -> Arc<str> {
    let name = super::unique_topic(prefix);
    super::topics::create(
        client,
        &super::topics::TopicSpec::new(&name, partitions).config("retention.ms", "-1"),
    )
    .await;
    name.into()
}

/// Writes records `0..count` of the pattern to each partition with klamm's
/// `AsyncProducer` (interleaved over partitions, as PATTERN.md says), and
/// checks that record `i` of each partition was acknowledged at offset `i`.
pub async fn klamm_writes(client: &Client, topic: &Arc<str>, partitions: i32, count: u64) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut pending = Vec::with_capacity((count * partitions as u64) as usize);
    for i in 0..count {
        for p in 0..partitions {
            let d = producer
                .send(interop::record(topic, p, i))
                .await
                .expect("send");
            pending.push((p, i, d));
        }
    }
    producer.flush().await.expect("flush");
    for (p, i, d) in pending {
        let meta = d
            .await
            .unwrap_or_else(|e| panic!("record {i} of partition {p}: {e}"));
        assert_eq!(
            (meta.partition, meta.offset),
            (p, i as i64),
            "record {i} of partition {p}: acknowledged at (partition, offset)"
        );
    }
    producer.close().await.expect("close");
}

/// Reads partition `p` from the start with klamm's consumer until it has
/// given `want.len()` records, and checks them against `want` (pattern
/// index, offset) in order. Returns the consumer's high watermark and last
/// stable offset after the last record.
pub async fn klamm_reads(client: &Client, topic: &str, p: i32, want: &[(u64, i64)]) -> (i64, i64) {
    let consumer = Consumer::new(client.clone());
    let mut pc = consumer
        .consume_partition(topic, p, StartOffset::Oldest)
        .await
        .expect("consume_partition");
    for (n, &(i, offset)) in want.iter().enumerate() {
        let r = tokio::time::timeout(Duration::from_secs(20), pc.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("{topic}/{p}: record #{n} (record {i} of the pattern) not read in 20 s")
            })
            .expect("stream open")
            .unwrap_or_else(|e| panic!("{topic}/{p}: record #{n}: {e}"));
        let seen = Seen::from(&r);
        assert_eq!(
            seen.offset, offset,
            "{topic}/{p}: record #{n}: offset (want record {i} of the pattern there)"
        );
        if let Err(e) = interop::check(&seen, p, i) {
            panic!("{topic}: klamm read a record that differs: {e}");
        }
    }
    let marks = (pc.high_water_mark(), pc.last_stable_offset());
    pc.close().await;
    consumer.close().await;
    marks
}

/// Checks the batches the peer wrote to a partition: every data batch
/// carries `codec` (the codec setting reached the wire) and a producer id
/// (the peer was idempotent), at least one holds several records (so the
/// codec compressed more than single records), and they hold `count`
/// records in all.
pub async fn check_stored(client: &Client, topic: &str, p: i32, codec: Compression, count: u64) {
    let batches = super::read::stored_batches(client, topic, p).await;
    let data: Vec<_> = batches.iter().filter(|b| !b.is_control).collect();
    assert!(!data.is_empty(), "{topic}/{p}: no batches stored");
    for b in &data {
        assert_eq!(
            b.compression, codec,
            "{topic}/{p}: the batch at offset {} carries another codec than the one asked for",
            b.base_offset
        );
        assert!(
            b.producer_id >= 0,
            "{topic}/{p}: the batch at offset {} has no producer id (not idempotent)",
            b.base_offset
        );
    }
    let records: usize = data.iter().map(|b| b.records.len()).sum();
    assert_eq!(records as u64, count, "{topic}/{p}: records stored");
    let largest = data.iter().map(|b| b.records.len()).max().unwrap_or(0);
    assert!(
        largest > 1,
        "{topic}/{p}: every batch holds one record ({} batches)",
        data.len()
    );
}

/// klamm's `AsyncProducer` writes `count` pattern records to each of
/// `partitions` partitions with `codec`; the peer reads them back (dumping
/// each record) and every record must be there, in order, equal to the
/// pattern field by field, and nothing else.
pub fn klamm_writes_peer_reads(
    peer: Option<PeerProgram>,
    codec: Compression,
    partitions: i32,
    count: u64,
) {
    let Some(addr) = super::broker() else {
        return;
    };
    let Some(peer) = peer else {
        return;
    };
    super::run_within(
        150,
        klamm_writes_peer_reads_at(&peer, &addr, codec, partitions, count),
    );
}

/// [`klamm_writes_peer_reads`] on the cluster at `addr`.
pub async fn klamm_writes_peer_reads_at(
    peer: &PeerProgram,
    addr: &str,
    codec: Compression,
    partitions: i32,
    count: u64,
) {
    {
        let client = connect(addr, codec).await;
        let topic = fresh_topic(
            &client,
            &format!("interop-klamm-{}", codec.name()),
            partitions,
        )
        .await;
        klamm_writes(&client, &topic, partitions, count).await;
        // klamm compressed, so the peer had to decompress.
        for p in 0..partitions {
            let first = super::read::first_batch(&client, &topic, p).await;
            assert_eq!(first.compression, codec, "{topic}/{p}: klamm's codec");
        }
        let run = peer
            .run(
                &[
                    "consume",
                    "--bootstrap",
                    addr,
                    "--topic",
                    &topic,
                    "--partitions",
                    &partitions.to_string(),
                    "--count",
                    &count.to_string(),
                    "--output",
                    "dump",
                ],
                Duration::from_secs(60),
            )
            .await;
        run.assert_ok();
        let s = run.summary();
        assert_eq!(s["caught_up"], true, "{}", run.describe());
        assert_eq!(s["extra"], 0, "{}", run.describe());
        let records = run.records();
        if let Err(e) =
            interop::check_partitions(&records, partitions, |_| interop::contiguous(count))
        {
            panic!(
                "{topic} ({}): {} read back what klamm wrote with a difference: {e}",
                codec.name(),
                peer.name
            );
        }
        eprintln!(
            "{topic}: klamm wrote {} records ({}), {} read all back in {} ms",
            records.len(),
            codec.name(),
            peer.name,
            s["ms"]
        );
        client.close().await;
    }
}

/// The peer writes `count` pattern records to each of `partitions`
/// partitions with `codec` (acks=all, idempotent); the stored batches carry
/// that codec; klamm's consumer reads every record back, in order, equal to
/// the pattern field by field, and the high watermark says there is nothing
/// more.
pub fn peer_writes_klamm_reads(
    peer: Option<PeerProgram>,
    codec: Compression,
    partitions: i32,
    count: u64,
) {
    let Some(addr) = super::broker() else {
        return;
    };
    let Some(peer) = peer else {
        return;
    };
    super::run_within(
        150,
        peer_writes_klamm_reads_at(&peer, &addr, codec, partitions, count),
    );
}

/// [`peer_writes_klamm_reads`] on the cluster at `addr`.
pub async fn peer_writes_klamm_reads_at(
    peer: &PeerProgram,
    addr: &str,
    codec: Compression,
    partitions: i32,
    count: u64,
) {
    {
        let client = connect(addr, Compression::None).await;
        let topic = fresh_topic(
            &client,
            &format!("interop-peer-{}", codec.name()),
            partitions,
        )
        .await;
        let run = peer
            .run(
                &[
                    "produce",
                    "--bootstrap",
                    addr,
                    "--topic",
                    &topic,
                    "--partitions",
                    &partitions.to_string(),
                    "--count",
                    &count.to_string(),
                    "--codec",
                    codec.name(),
                ],
                Duration::from_secs(60),
            )
            .await;
        run.assert_ok();
        for (p, part) in run.summary_partitions().iter().enumerate() {
            assert_eq!(part["acked"], count, "partition {p}\n{}", run.describe());
            assert_eq!(part["first_offset"], 0, "partition {p}\n{}", run.describe());
            assert_eq!(
                part["last_offset"],
                count - 1,
                "partition {p}\n{}",
                run.describe()
            );
            assert_eq!(
                part["consecutive"],
                true,
                "partition {p}\n{}",
                run.describe()
            );
        }
        for p in 0..partitions {
            check_stored(&client, &topic, p, codec, count).await;
        }
        for p in 0..partitions {
            let (hwm, _) = klamm_reads(&client, &topic, p, &interop::contiguous(count)).await;
            assert_eq!(
                hwm, count as i64,
                "{topic}/{p}: high watermark after the last record (anything beyond?)"
            );
        }
        eprintln!(
            "{topic}: {} wrote {} records ({}) in {} ms; klamm read all back",
            peer.name,
            count * partitions as u64,
            codec.name(),
            run.summary()["ms"]
        );
        client.close().await;
    }
}

/// The peer's implementation of the pattern (its `pattern` mode, no broker)
/// equals klamm's test-side one, record by record; and its JSON lines parse
/// as the records the other modes print.
pub fn pattern_agrees(peer: Option<PeerProgram>) {
    let Some(peer) = peer else {
        return;
    };
    let (partitions, count) = (3, 2000u64);
    super::run_within(60, async {
        let run = peer
            .run(
                &[
                    "pattern",
                    "--partitions",
                    &partitions.to_string(),
                    "--count",
                    &count.to_string(),
                ],
                Duration::from_secs(30),
            )
            .await;
        run.assert_ok();
        let records = run.records();
        assert_eq!(records.len() as u64, count * partitions as u64);
        if let Err(e) =
            interop::check_partitions(&records, partitions, |_| interop::contiguous(count))
        {
            panic!("{}'s pattern differs from klamm's: {e}", peer.name);
        }
    });
}

/// A large run checked inside the peer (`--output verify`), and its
/// control: klamm writes `count` records to each of 3 partitions with zstd
/// and the peer finds them all equal to its own pattern; then a small topic
/// where two records deliberately differ (an empty value where the pattern
/// has null, and a header value changed) must get exactly those two
/// reported, with partition, offset and field.
pub fn peer_verifies(peer: Option<PeerProgram>, count: u64) {
    let Some(addr) = super::broker() else {
        return;
    };
    let Some(peer) = peer else {
        return;
    };
    super::run_within(240, async {
        let client = connect(&addr, Compression::Zstd).await;
        let topic = fresh_topic(&client, "interop-verify", 3).await;
        klamm_writes(&client, &topic, 3, count).await;
        let verify = |topic: Arc<str>, partitions: i32, count: u64| {
            let (peer, addr) = (peer.clone(), addr.clone());
            async move {
                peer.run(
                    &[
                        "consume",
                        "--bootstrap",
                        &addr,
                        "--topic",
                        &topic,
                        "--partitions",
                        &partitions.to_string(),
                        "--count",
                        &count.to_string(),
                        "--output",
                        "verify",
                    ],
                    Duration::from_secs(120),
                )
                .await
            }
        };
        let run = verify(Arc::clone(&topic), 3, count).await;
        run.assert_ok();
        assert_eq!(run.summary()["mismatches"], 0, "{}", run.describe());
        for (p, part) in run.summary_partitions().iter().enumerate() {
            assert_eq!(part["count"], count, "partition {p}\n{}", run.describe());
            assert_eq!(
                part["last_offset"],
                count - 1,
                "partition {p}\n{}",
                run.describe()
            );
        }
        eprintln!(
            "{topic}: {} verified {} records in {} ms",
            peer.name,
            3 * count,
            run.summary()["ms"]
        );

        // The control: two records differ from the pattern.
        let bad = fresh_topic(&client, "interop-verify-control", 2).await;
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let mut pending = Vec::new();
        for i in 0..40u64 {
            for p in 0..2 {
                let mut r = interop::record(&bad, p, i);
                if (p, i) == (0, 26) {
                    assert_eq!(r.value, None, "record 26 has a null value");
                    r.value = Some(bytes::Bytes::new());
                }
                if (p, i) == (1, 18) {
                    assert_eq!(r.headers[4].value.as_deref(), Some(&b"second"[..]));
                    r.headers[4].value = Some("third".into());
                }
                pending.push(producer.send(r).await.expect("send"));
            }
        }
        producer.flush().await.expect("flush");
        for d in pending {
            d.await.expect("written");
        }
        producer.close().await.expect("close");
        let run = verify(Arc::clone(&bad), 2, 40).await;
        assert!(
            !run.ok(),
            "{} verified a topic with two wrong records as fine\n{}",
            peer.name,
            run.describe()
        );
        assert_eq!(run.summary()["mismatches"], 2, "{}", run.describe());
        let found: Vec<(i64, i64, String)> = run
            .of_type("mismatch")
            .map(|m| {
                (
                    m["partition"].as_i64().unwrap_or(-1),
                    m["offset"].as_i64().unwrap_or(-1),
                    m["field"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut found = found;
        found.sort();
        assert_eq!(
            found,
            [
                (0, 26, "value".to_string()),
                (1, 18, "headers[4].value".to_string())
            ],
            "{}",
            run.describe()
        );
        client.close().await;
    });
}
