//! End-to-end producer and consumer performance tool, in the spirit of
//! Kafka's `kafka-producer-perf-test` / `kafka-consumer-perf-test`.
//!
//! Produces N records of S bytes round-robin over P partitions (record i
//! goes to partition i % P) with a codec and the given acks, and/or reads N
//! records back from offset 0 of every partition (no consumer group; or,
//! with `--mode group-consume`, as the one member of a fresh consumer
//! group, auto-commit on, so the group's cost shows against the partition
//! consumers'). It
//! prints messages/s, MB/s, the produce latency percentiles (time from
//! `send` to the completion of the record's `DeliveryFuture`), the
//! process CPU time and peak RSS, then one `PERF {json}` line that
//! `scripts/perf-compare` tables next to the rdkafka peer
//! (`benches/rdkafka-perf`, same arguments, same output).
//!
//! ```sh
//! cargo run --release --example perf -- --brokers 127.0.0.1:9092 --topic perf \
//!     --records 1000000 --size 100 --partitions 6 --codec lz4 --acks all --mode both
//! ```
//!
//! `-X key=value` sets any client property (Java names, e.g. `-X linger.ms=5`;
//! `-X compression.type=C` is `--codec C`). `--payloads FILE` takes the
//! record values from a file of S-byte payloads (record i carries payload
//! i mod K), as every tool of `scripts/perf-compare` does
//! (`benches/peers/PERF.md`); without it every value is S bytes of `x`.
//! The topic is created with P partitions when it does not exist.
//!
//! `--mode count` reads every partition from its first offset up to the
//! high watermark of the Fetch answers and reports how many records it
//! found (records = that count, the checksum of their values): the
//! harness's count of what a broker holds where ListOffsets cannot be
//! trusted (tansu 0.6.0 answers LATEST with the last batch's base offset
//! + 1).

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use klamm::admin::{Admin, NewTopic};
use klamm::client::OffsetSpec;
use klamm::consumer::{Consumer, StartOffset};
use klamm::group::{GroupConsumer, GroupEvent};
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Config};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    brokers: String,
    topic: String,
    records: u64,
    size: usize,
    partitions: i32,
    /// Topics of `partitions` partitions each (`--topic` itself when 1,
    /// else `TOPIC-0` … `TOPIC-{T-1}`).
    topics: usize,
    codec: String,
    acks: String,
    mode: String,
    threads: usize,
    payloads: Option<String>,
    /// Records per second offered (0: as fast as `send` accepts them).
    rate: f64,
    extra: Vec<(String, String)>,
    timeout: Duration,
    /// The median time of a Metadata refresh of every topic, measured
    /// before the run.
    metadata_ms: Option<f64>,
}

const USAGE: &str = "usage: perf --brokers HOST:PORT --topic T [--records N] [--size S] \
[--partitions P] [--topics T] [--codec none|gzip|snappy|lz4|zstd] [--acks all|1|0] \
[--mode produce|consume|both|group-consume|count] [--threads N (0: current-thread runtime)] \
[--payloads FILE] [--rate RECORDS_PER_S] [-X key=value]... [--timeout-s SECS]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: String::new(),
        topic: String::new(),
        records: 1_000_000,
        size: 100,
        partitions: 6,
        topics: 1,
        codec: "none".into(),
        acks: "all".into(),
        mode: "both".into(),
        threads: 2,
        payloads: None,
        rate: 0.0,
        extra: Vec::new(),
        timeout: Duration::from_secs(300),
        metadata_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--brokers" => a.brokers = val()?,
            "--topic" => a.topic = val()?,
            "--records" => a.records = num(&flag, &val()?)?,
            "--size" => a.size = num(&flag, &val()?)?,
            "--partitions" => a.partitions = num(&flag, &val()?)?,
            "--topics" => a.topics = num(&flag, &val()?)?,
            "--codec" => a.codec = val()?,
            "--acks" => a.acks = val()?,
            "--mode" => a.mode = val()?,
            "--threads" => a.threads = num(&flag, &val()?)?,
            "--payloads" => a.payloads = Some(val()?),
            "--rate" => a.rate = num(&flag, &val()?)?,
            "--timeout-s" => a.timeout = Duration::from_secs(num(&flag, &val()?)?),
            "-X" => {
                let kv = val()?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("-X {kv}: want key=value"))?;
                if k == "compression.type" {
                    a.codec = v.to_string();
                } else {
                    a.extra.push((k.to_string(), v.to_string()));
                }
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.brokers.is_empty() || a.topic.is_empty() {
        return Err(USAGE.to_string());
    }
    if a.partitions < 1 || a.records == 0 || a.topics == 0 {
        return Err("--partitions, --topics and --records must be positive".into());
    }
    if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&a.codec.as_str()) {
        return Err(format!("unknown codec {}", a.codec));
    }
    if !["produce", "consume", "both", "group-consume", "count"].contains(&a.mode.as_str()) {
        return Err(format!("unknown mode {}", a.mode));
    }
    Ok(a)
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| format!("{flag} {v}: {e}"))
}

impl Args {
    /// The topics written and read: `--topic`, or `--topics` of them.
    fn topic_names(&self) -> Vec<String> {
        if self.topics == 1 {
            return vec![self.topic.clone()];
        }
        (0..self.topics)
            .map(|k| format!("{}-{k}", self.topic))
            .collect()
    }

    /// Every (topic, partition) written and read; record i goes to
    /// `slots[i % slots.len()]`.
    fn slots(&self) -> Vec<(Arc<str>, i32)> {
        self.topic_names()
            .into_iter()
            .flat_map(|t| {
                let t: Arc<str> = Arc::from(t);
                (0..self.partitions).map(move |p| (Arc::clone(&t), p))
            })
            .collect()
    }
}

/// CPU time of every live thread of this process, in nanoseconds, by
/// thread id (the first field of `/proc/self/task/TID/schedstat`, the
/// scheduler's own nanosecond count, where `/proc/self/stat` counts 10 ms
/// ticks).
fn thread_cpu_ns() -> std::collections::HashMap<u64, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()));
        if let Some(ns) = ns {
            out.insert(tid, ns);
        }
    }
    out
}

/// The CPU the process spent since `before` (a [`thread_cpu_ns`] reading),
/// in seconds: each thread alive now counts from its reading then (from 0
/// when it started later). A thread that ended in between is not counted;
/// the runtime's workers live for the whole run.
fn cpu_seconds_since(before: &std::collections::HashMap<u64, u64>) -> f64 {
    let spent: u64 = thread_cpu_ns()
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    spent as f64 / 1e9
}

/// Peak resident set size in bytes (VmHWM in /proc/self/status).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The perf protocol's checksum of one value (`benches/peers/PERF.md`).
fn checksum(v: &[u8]) -> u64 {
    match (v.first(), v.last()) {
        (Some(&a), Some(&z)) => 131 * v.len() as u64 + 7 * u64::from(a) + u64::from(z),
        _ => 0,
    }
}

/// The record values: `--payloads` cut into `--size` pieces, or one value
/// of `--size` bytes of `x`.
///
/// The bytes live for the whole run (leaked once), so each record's value
/// is a `Bytes::from_static` slice: cloning it per record copies a pointer
/// and a length, as the Go tools pass a shared slice, where a shared
/// `Bytes` would count every clone and drop on one atomic reference count
/// (about 5 % of this tool's CPU at 100 B).
fn payloads(a: &Args) -> Result<Vec<Bytes>, BoxError> {
    let Some(path) = &a.payloads else {
        return Ok(vec![Bytes::from_static(Vec::leak(vec![b'x'; a.size]))]);
    };
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if a.size == 0 || data.is_empty() || data.len() % a.size != 0 {
        return Err(format!(
            "{path}: {} bytes is not a whole number of {}-byte payloads",
            data.len(),
            a.size
        )
        .into());
    }
    let data: &'static [u8] = Vec::leak(data);
    Ok(data.chunks_exact(a.size).map(Bytes::from_static).collect())
}

/// Latency percentile (nearest rank) in milliseconds from sorted ns.
fn pct(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("null".to_string(), |x| format!("{x:.3}"))
}

struct Report<'a> {
    mode: &'a str,
    args: &'a Args,
    records: u64,
    bytes: u64,
    secs: f64,
    cpu_s: f64,
    lat_ns: Vec<u64>,
    checksum: u64,
}

fn report(mut r: Report<'_>) {
    r.lat_ns.sort_unstable();
    let msgs = r.records as f64 / r.secs;
    let mb = r.bytes as f64 / r.secs / 1e6;
    let (p50, p99, p999) = (
        opt(pct(&r.lat_ns, 50.0)),
        opt(pct(&r.lat_ns, 99.0)),
        opt(pct(&r.lat_ns, 99.9)),
    );
    let cpu_per_m = r.cpu_s / (r.records as f64 / 1e6);
    let rss_mb = peak_rss() as f64 / 1048576.0;
    println!(
        "klamm {}: {} records of {} B in {:.3} s: {msgs:.0} msgs/s, {mb:.2} MB/s; \
         latency p50 {p50} p99 {p99} p999 {p999} ms; CPU {:.3} s ({cpu_per_m:.3} s per 1M \
         records); peak RSS {rss_mb:.1} MiB",
        r.mode, r.records, r.args.size, r.secs, r.cpu_s,
    );
    println!(
        "PERF {{\"client\":\"klamm\",\"mode\":\"{}\",\"codec\":\"{}\",\"records\":{},\"size\":{},\
         \"partitions\":{},\"secs\":{:.4},\"msgs_per_s\":{msgs:.1},\"mb_per_s\":{mb:.3},\
         \"p50_ms\":{p50},\"p99_ms\":{p99},\"p999_ms\":{p999},\"cpu_s\":{:.4},\
         \"cpu_s_per_m\":{cpu_per_m:.4},\"peak_rss_mb\":{rss_mb:.2},\"bytes\":{},\
         \"checksum\":{},\"topics\":{},\"metadata_ms\":{},\"version\":\"{}\"}}",
        r.mode,
        r.args.codec,
        r.records,
        r.args.size,
        r.args.partitions,
        r.secs,
        r.cpu_s,
        r.bytes,
        r.checksum,
        r.args.topics,
        opt(r.args.metadata_ms),
        env!("CARGO_PKG_VERSION"),
    );
}

fn config(a: &Args) -> Result<Config, BoxError> {
    let mut props = vec![
        ("bootstrap.servers".to_string(), a.brokers.clone()),
        ("client.id".to_string(), "klamm-perf".to_string()),
        ("acks".to_string(), a.acks.clone()),
        ("compression.type".to_string(), a.codec.clone()),
    ];
    props.extend(a.extra.iter().cloned());
    Ok(Config::from_properties(props)?)
}

/// Creates the topics with `--partitions` partitions each unless they
/// exist; an existing topic must have that many.
async fn ensure_topics(client: &Client, a: &Args) -> Result<(), BoxError> {
    let names = a.topic_names();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|t| NewTopic::new(t, a.partitions, 1))
        .collect();
    let created = Admin::new(client.clone()).create_topics(&new).await;
    for t in &names {
        match created.get(t) {
            Some(Ok(_)) => eprintln!("perf: created topic {t} ({} partitions)", a.partitions),
            Some(Err(e)) if e.kafka_code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
            Some(Err(e)) => return Err(format!("creating {t}: {e}").into()),
            None => return Err(format!("no outcome for topic {t}").into()),
        }
    }
    client.refresh_metadata(Some(&names)).await?;
    for t in &names {
        let parts = client.partitions(t).await?;
        if parts.len() != a.partitions as usize {
            return Err(format!(
                "topic {t} has {} partitions, not {}",
                parts.len(),
                a.partitions
            )
            .into());
        }
    }
    Ok(())
}

/// The median of five Metadata refreshes of every topic, in ms.
async fn metadata_refresh_ms(client: &Client, a: &Args) -> Result<f64, BoxError> {
    let names = a.topic_names();
    let mut ms = Vec::with_capacity(5);
    for _ in 0..5 {
        let t = Instant::now();
        client.refresh_metadata(Some(&names)).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Delivery futures handed to a partition's collector at once when
/// producing flat out: a channel message per record cost the tool (not the
/// client) about 155 instructions per record, and each message writes
/// counters that the producing thread and the collector share; handing
/// them over in chunks took the tool's CPU to 0.873x.
const CHUNK: usize = 64;

/// A run of one partition's sends: when each was sent, and its future.
type Chunk = Vec<(Instant, DeliveryFuture)>;

/// Awaits one partition's delivery futures in send order (a partition's
/// records complete in order) and returns their latencies in ns.
///
/// To keep the measuring cheap, the clock is read once per chunk and once
/// per wake-up rather than once per record. A future that is already
/// complete when its turn comes completed no later than the last reading,
/// give or take the time this loop took since (microseconds, against
/// latencies of milliseconds): the reading is taken when a chunk arrives
/// and after every wait.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Chunk>,
    expect: usize,
) -> Result<Vec<u64>, BoxError> {
    let mut lat = Vec::with_capacity(expect);
    loop {
        let chunk = match rx.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => match rx.recv().await {
                Some(chunk) => chunk,
                None => break,
            },
        };
        let mut now = Instant::now();
        for (sent, mut fut) in chunk {
            let ready = Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop()));
            match ready {
                Poll::Ready(r) => {
                    r?;
                }
                Poll::Pending => {
                    fut.await?;
                    now = Instant::now();
                }
            }
            lat.push(now.max(sent).duration_since(sent).as_nanos() as u64);
        }
    }
    Ok(lat)
}

async fn produce(client: &Client, a: &Args) -> Result<(), BoxError> {
    let producer = AsyncProducer::new(client.clone()).await?;
    let slots = a.slots();
    let payloads = payloads(a)?;
    let parts = slots.len();
    let n = a.records as usize;
    let mut senders = Vec::with_capacity(parts);
    let mut collectors = Vec::with_capacity(parts);
    for _ in 0..parts {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        collectors.push(tokio::spawn(collect(rx, n / parts + 1)));
    }

    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    // At an offered rate every future goes to its collector at once, so
    // that its completion is seen when it happens.
    let chunk = if a.rate > 0.0 { 1 } else { CHUNK };
    let mut pending: Vec<Chunk> = (0..parts).map(|_| Vec::with_capacity(chunk)).collect();
    for i in 0..n {
        if a.rate > 0.0 {
            // Record i is due i / rate seconds after the start.
            let due = start + Duration::from_secs_f64(i as f64 / a.rate);
            if Instant::now() < due {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let p = i % parts;
        let payload = payloads[i % payloads.len()].clone();
        let (topic, partition) = &slots[p];
        let record = ProducerRecord::new(Arc::clone(topic), payload).with_partition(*partition);
        let sent = Instant::now();
        let fut = producer.send(record).await?;
        pending[p].push((sent, fut));
        if pending[p].len() < chunk && i + parts < n {
            continue;
        }
        let full = std::mem::replace(&mut pending[p], Vec::with_capacity(chunk));
        if senders[p].send(full).is_err() {
            // The collector stopped at a failed delivery: report why.
            drop(senders);
            let why = match collectors.swap_remove(p).await {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(_)) => "no error".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(format!("a delivery to {topic}/{partition} failed: {why}").into());
        }
    }
    drop(senders);
    producer.flush().await?;
    let mut lat = Vec::with_capacity(n);
    for c in collectors {
        lat.extend(c.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds_since(&cpu0);
    producer.close().await?;
    if lat.len() != n {
        return Err(format!("{} of {n} records delivered", lat.len()).into());
    }
    report(Report {
        mode: "produce",
        args: a,
        records: a.records,
        bytes: payloads
            .iter()
            .cycle()
            .take(n)
            .map(|p| p.len() as u64)
            .sum(),
        secs,
        cpu_s,
        lat_ns: lat,
        checksum: 0,
    });
    Ok(())
}

async fn consume(client: &Client, a: &Args) -> Result<(), BoxError> {
    let consumer = Consumer::new(client.clone());
    let total = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    // ns after `start` at which the first batch arrived.
    let first = Arc::new(AtomicU64::new(u64::MAX));
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    // Every partition of a topic starts at once: one ListOffsets per
    // leader for their first offsets.
    let partitions: Vec<i32> = (0..a.partitions).collect();
    let mut pcs = Vec::new();
    for topic in a.topic_names() {
        pcs.extend(
            consumer
                .consume_partitions(&topic, &partitions, StartOffset::Oldest)
                .await?,
        );
    }
    let mut tasks = Vec::with_capacity(pcs.len());
    for mut pc in pcs {
        let (total, bytes, sum, done, first, want) = (
            Arc::clone(&total),
            Arc::clone(&bytes),
            Arc::clone(&sum),
            Arc::clone(&done),
            Arc::clone(&first),
            a.records,
        );
        tasks.push(tokio::spawn(async move {
            while let Some(batch) = pc.recv_batch().await {
                let batch = batch?;
                first.fetch_min(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let (mut size, mut check) = (0u64, 0u64);
                for r in &batch {
                    let v = r.value.as_deref().unwrap_or_default();
                    size += v.len() as u64;
                    check += checksum(v);
                }
                bytes.fetch_add(size, Ordering::Relaxed);
                sum.fetch_add(check, Ordering::Relaxed);
                let n = batch.len() as u64;
                if total.fetch_add(n, Ordering::AcqRel) + n >= want {
                    done.notify_one();
                }
            }
            Ok::<_, klamm::Error>(pc)
        }));
    }
    // Starting the partition consumers is part of the measured time (as
    // for every tool); how much of it is said separately.
    eprintln!(
        "perf: {} partition consumers started after {:.1} ms, {:.3} CPU-s",
        tasks.len(),
        start.elapsed().as_secs_f64() * 1e3,
        cpu_seconds_since(&cpu0)
    );
    let left = a.timeout.saturating_sub(start.elapsed());
    if tokio::time::timeout(left, done.notified()).await.is_err() {
        return Err(format!(
            "timed out after {} of {} records",
            total.load(Ordering::Acquire),
            a.records
        )
        .into());
    }
    // Timed from the start of reading (after connecting and the topic's
    // metadata), as every tool of the comparison does.
    let first = first.load(Ordering::Relaxed) as f64 / 1e9;
    let secs = start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds_since(&cpu0);
    eprintln!("perf: first record after {:.1} ms", first * 1e3);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            return Err(e.into());
        }
    }
    consumer.close().await;
    report(Report {
        mode: "consume",
        args: a,
        records: total.load(Ordering::Acquire),
        bytes: bytes.load(Ordering::Acquire),
        secs,
        cpu_s,
        lat_ns: Vec::new(),
        checksum: sum.load(Ordering::Acquire),
    });
    Ok(())
}

/// How often a partition being counted looks whether it reached the high
/// watermark while no record comes.
const COUNT_CHECK: Duration = Duration::from_millis(100);

/// Counts the records stored in every partition: each is read from its
/// log start offset until the position reaches the high watermark its
/// Fetch answers carry. Every record is read, so a duplicate counts.
async fn count(client: &Client, a: &Args) -> Result<(), BoxError> {
    let consumer = Consumer::new(client.clone());
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + a.timeout;
    let mut tasks = Vec::new();
    let partitions: Vec<i32> = (0..a.partitions).collect();
    let mut starts = Vec::new();
    for topic in a.topic_names() {
        let firsts = client
            .list_partition_offsets(&topic, &partitions, OffsetSpec::Oldest)
            .await?;
        for (p, f) in firsts {
            starts.push((topic.clone(), p, f.offset.unwrap_or(0)));
        }
    }
    for (topic, p, first) in starts {
        let mut pc = consumer
            .consume_partition(&topic, p, StartOffset::Offset(first))
            .await?;
        tasks.push(tokio::spawn(async move {
            let (mut n, mut bytes, mut sum) = (0u64, 0u64, 0u64);
            loop {
                let end = pc.high_water_mark();
                if end >= 0 && pc.position().max(first) >= end {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{topic}/{p}: timed out at offset {} of {end}",
                        pc.position().max(first)
                    ));
                }
                match tokio::time::timeout(COUNT_CHECK, pc.recv()).await {
                    Err(_) => {}
                    Ok(None) => return Err(format!("{topic}/{p}: the partition consumer ended")),
                    Ok(Some(Err(e))) => return Err(format!("{topic}/{p}: {e}")),
                    Ok(Some(Ok(r))) => {
                        let v = r.value.as_deref().unwrap_or_default();
                        n += 1;
                        bytes += v.len() as u64;
                        sum += checksum(v);
                    }
                }
            }
            pc.close().await;
            Ok((n, bytes, sum))
        }));
    }
    let (mut total, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    for t in tasks {
        let (n, b, c) = t.await??;
        total += n;
        bytes += b;
        sum += c;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds_since(&cpu0);
    consumer.close().await;
    report(Report {
        mode: "count",
        args: a,
        records: total,
        bytes,
        secs,
        cpu_s,
        lat_ns: Vec::new(),
        checksum: sum,
    });
    Ok(())
}

/// Reads the topic as the only member of a fresh group (from the oldest
/// offset: no commits yet), committing automatically as Java does.
async fn group_consume(a: &Args) -> Result<(), BoxError> {
    let mut cfg = config(a)?;
    cfg.consumer.group_id = Some(format!(
        "klamm-perf-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    cfg.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
    let client = Client::connect(cfg).await?;
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut group = GroupConsumer::new(client.clone(), a.topic_names()).await?;
    let (mut total, mut bytes, mut sum, mut first) = (0u64, 0u64, 0u64, None);
    while total < a.records {
        let left = a.timeout.saturating_sub(start.elapsed());
        let event = match tokio::time::timeout(left, group.recv()).await {
            Err(_) => {
                return Err(format!("timed out after {total} of {} records", a.records).into());
            }
            Ok(None) => return Err("the group consumer stopped".into()),
            Ok(Some(event)) => event?,
        };
        if let GroupEvent::Records(batch) = event {
            first.get_or_insert_with(|| start.elapsed());
            for r in &batch {
                let v = r.value.as_deref().unwrap_or_default();
                bytes += v.len() as u64;
                sum += checksum(v);
            }
            total += batch.len() as u64;
        }
    }
    let first = first.unwrap_or_default().as_secs_f64();
    let secs = start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds_since(&cpu0);
    eprintln!("perf: first record after {:.1} ms", first * 1e3);
    group.close().await?;
    client.close().await;
    report(Report {
        mode: "group-consume",
        args: a,
        records: total,
        bytes,
        secs,
        cpu_s,
        lat_ns: Vec::new(),
        checksum: sum,
    });
    Ok(())
}

async fn run(mut a: Args) -> Result<(), BoxError> {
    let client = Client::connect(config(&a)?).await?;
    ensure_topics(&client, &a).await?;
    a.metadata_ms = Some(metadata_refresh_ms(&client, &a).await?);
    if a.mode == "group-consume" {
        client.close().await;
        return group_consume(&a).await;
    }
    if a.mode == "count" {
        let counted = count(&client, &a).await;
        client.close().await;
        return counted;
    }
    if a.mode != "consume" {
        produce(&client, &a).await?;
    }
    if a.mode != "produce" {
        consume(&client, &a).await?;
    }
    client.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf: {e}");
            ExitCode::FAILURE
        }
    }
}
