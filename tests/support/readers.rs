//! Reading a fault test's topic back into a tally: raw Fetch requests,
//! klamm's consumer, and Kafka's Java console consumer.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::Client;
use klamm::client::OffsetSpec;
use klamm::consumer::{Consumer, StartOffset};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use super::faults::{SIZE, lock};
use super::pattern;
use super::tally::{Tally, check_stored, index_of};

/// Reads every partition of `topic` raw (Fetch from offset 0 to the high
/// watermark, following leader moves) into a tally, content checked.
pub async fn read_raw(client: &Client, topic: &str, partitions: i32) -> Tally {
    let mut tally = Tally::new(partitions);
    for p in 0..partitions {
        for r in super::read::read_partition(client, topic, p).await {
            let index = index_of(p, r.key.as_deref());
            let content = match index {
                Some(i) => check_stored(&r, p, i),
                None => Ok(()),
            };
            tally.add(p, r.offset, index, content);
        }
    }
    tally
}

/// What Kafka's Java console consumer read.
#[derive(Debug)]
pub struct JavaRead {
    pub tally: Tally,
    pub elapsed: Duration,
    /// The tool's stderr, for failure messages.
    pub stderr: String,
}

/// Reads `topic` from the beginning with Kafka's Java console consumer
/// (org.apache.kafka.tools.consumer.ConsoleConsumer, a fresh group),
/// `expected` records at most, and tallies every record it prints. Each
/// record is printed as
/// `CreateTime:TS<TAB>Partition:P<TAB>Offset:O<TAB>seq:I,part:P<TAB>KEY<TAB>VALUE<LF>`;
/// the value's bytes are raw, so the parser takes the value as the
/// pattern's value for the key (SIZE bytes) and checks it byte for byte
/// before the line end.
pub fn java_read(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    expected: u64,
    idle: Duration,
) -> JavaRead {
    let started = Instant::now();
    let run_dir = cluster
        .dir
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut child = Command::new(super::peers::script("kafka"))
        .arg("run")
        .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
        .args(["--bootstrap-server", &cluster.bootstrap])
        .args(["--topic", topic])
        .arg("--from-beginning")
        .args(["--max-messages", &expected.to_string()])
        .args(["--timeout-ms", &idle.as_millis().to_string()])
        .args(["--command-property", "max.partition.fetch.bytes=4194304"])
        .args(["--command-property", "fetch.max.bytes=16777216"])
        .args(["--formatter-property", "print.timestamp=true"])
        .args(["--formatter-property", "print.partition=true"])
        .args(["--formatter-property", "print.offset=true"])
        .args(["--formatter-property", "print.headers=true"])
        .args(["--formatter-property", "print.key=true"])
        .args(["--formatter-property", "print.value=true"])
        .env("KLAMM_RUN_DIR", run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Java console consumer");
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("stdout");
    let tally = parse_console(BufReader::with_capacity(1 << 20, stdout), partitions);
    let status = child.wait().expect("wait for the console consumer");
    let stderr = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "the Java console consumer failed: {stderr}"
    );
    JavaRead {
        tally,
        elapsed: started.elapsed(),
        stderr,
    }
}

/// Parses the console consumer's output (see [`java_read`]) into a tally.
pub fn parse_console(mut input: impl BufRead, partitions: i32) -> Tally {
    let mut tally = Tally::new(partitions);
    let mut value = vec![0u8; SIZE + 1];
    loop {
        // Everything up to the value is text without tabs inside fields:
        // read five tab-ended fields.
        let mut fields: Vec<Vec<u8>> = Vec::with_capacity(5);
        for _ in 0..5 {
            let mut f = Vec::new();
            match input.read_until(b'\t', &mut f) {
                Ok(0) => {
                    assert!(fields.is_empty(), "console output ends inside a record");
                    return tally;
                }
                Ok(_) => {}
                Err(e) => panic!("reading the console consumer: {e}"),
            }
            assert_eq!(
                f.last(),
                Some(&b'\t'),
                "console output ends inside a record: {:?}",
                String::from_utf8_lossy(&f)
            );
            f.pop();
            fields.push(f);
        }
        let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
        let field = |f: &[u8], prefix: &str| -> i64 {
            let t = text(f);
            t.strip_prefix(prefix)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("console field {t:?} is not {prefix}N"))
        };
        let ts = field(&fields[0], "CreateTime:");
        let p = field(&fields[1], "Partition:") as i32;
        let offset = field(&fields[2], "Offset:");
        let headers = text(&fields[3]);
        let key = &fields[4];
        let index = index_of(p, Some(key));
        let want = index.map(|i| pattern::value(p, i, SIZE));
        let len = want.as_ref().map_or(SIZE, Vec::len);
        value.resize(len + 1, 0);
        input
            .read_exact(&mut value)
            .unwrap_or_else(|e| panic!("console output ends inside {p}@{offset}: {e}"));
        let content = match (index, want) {
            (Some(i), Some(want)) => {
                let mut problems = Vec::new();
                if value[..len] != want[..] || value[len] != b'\n' {
                    problems.push("value differs".to_string());
                }
                if ts != pattern::BASE_TS + i as i64 {
                    problems.push(format!("timestamp {ts}"));
                }
                if headers != format!("seq:{i},part:{p}") {
                    problems.push(format!("headers {headers:?}"));
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{p}/{i} at {offset}: {}", problems.join(", ")))
                }
            }
            _ => Ok(()),
        };
        if index.is_none() || value[len] != b'\n' {
            // Out of step with the pattern: skip to the line end and go on.
            let mut rest = Vec::new();
            let _ = input.read_until(b'\n', &mut rest);
        }
        tally.add(p, offset, index, content);
    }
}

/// klamm's consumer reading every partition of a topic from the oldest
/// offset into a shared tally (content checked against the pattern), in
/// the background, until told where each partition ends.
pub struct Reader {
    tally: Arc<Mutex<Tally>>,
    ends: watch::Sender<Option<Vec<i64>>>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
    consumer: Consumer,
    pub started: Instant,
}

impl Reader {
    pub async fn start(client: Client, topic: &str, partitions: i32) -> Reader {
        let consumer = Consumer::new(client);
        let tally = Arc::new(Mutex::new(Tally::new(partitions)));
        let (ends, ends_rx) = watch::channel(None::<Vec<i64>>);
        let mut tasks = Vec::new();
        for p in 0..partitions {
            let mut pc = consumer
                .consume_partition(topic, p, StartOffset::Oldest)
                .await
                .expect("consume_partition");
            let tally = Arc::clone(&tally);
            let mut ends = ends_rx.clone();
            tasks.push(tokio::spawn(async move {
                let mut next = 0i64;
                loop {
                    if let Some(end) = &*ends.borrow_and_update()
                        && next >= end[p as usize]
                    {
                        break;
                    }
                    tokio::select! {
                        batch = pc.recv_batch() => {
                            let batch = match batch {
                                Some(Ok(b)) => b,
                                Some(Err(e)) => return Err(format!("partition {p}: {e}")),
                                None => return Err(format!("partition {p}: the stream ended")),
                            };
                            let mut t = lock(&tally);
                            for rec in batch.iter() {
                                let index = index_of(p, rec.key.as_deref());
                                let content = match index {
                                    Some(i) => pattern::check(rec, p, i, SIZE),
                                    None => Ok(()),
                                };
                                t.add(p, rec.offset, index, content);
                                next = rec.offset + 1;
                            }
                        }
                        _ = ends.changed() => {}
                    }
                }
                pc.close().await;
                Ok(())
            }));
        }
        Reader {
            tally,
            ends,
            tasks,
            consumer,
            started: Instant::now(),
        }
    }

    /// Records read so far.
    pub fn read(&self) -> u64 {
        lock(&self.tally).read()
    }

    /// Records read so far from partition `p`.
    pub fn read_from(&self, p: i32) -> u64 {
        lock(&self.tally).read_from(p)
    }

    /// Reads on until each partition reaches its high watermark now (as
    /// ListOffsets says), then stops and returns the tally.
    pub async fn finish(self, client: &Client, topic: &str) -> Tally {
        let mut ends = Vec::new();
        for p in 0..self.tasks.len() as i32 {
            let end = client
                .list_offsets(topic, p, OffsetSpec::Newest)
                .await
                .unwrap_or_else(|e| panic!("{topic}/{p}: high watermark: {e}"));
            ends.push(end);
        }
        self.ends.send_replace(Some(ends));
        for t in self.tasks {
            if let Err(e) = t.await.expect("reader task") {
                panic!("klamm's consumer failed: {e}");
            }
        }
        self.consumer.close().await;
        std::mem::take(&mut *lock(&self.tally))
    }
}
