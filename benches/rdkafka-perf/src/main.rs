//! rdkafka (librdkafka) counterpart of klamm's `examples/perf.rs`.
//!
//! Produces N records of S bytes round-robin over P partitions (record i goes
//! to partition i % P) with a codec and acks=all, measuring throughput, the
//! per-record produce latency (delivery callback time minus send time), the
//! process CPU time (getrusage user+sys) and peak RSS; or consumes all N
//! records back from offset 0 of every partition (assign, no group).
//! Prints a human summary and one `PERF {json}` line for scripts/perf-compare.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

struct Args {
    brokers: String,
    topic: String,
    records: u64,
    size: usize,
    partitions: i32,
    codec: String,
    acks: String,
    mode: String,
    payloads: Option<String>,
    rate: f64,
    extra: Vec<(String, String)>,
    timeout: Duration,
}

fn usage() -> String {
    "usage: rdkafka-perf --brokers HOST:PORT --topic T [--records N] [--size S] [--partitions P] \
     [--codec none|gzip|snappy|lz4|zstd] [--acks all|1|0] [--mode produce|consume|both] \
     [--payloads FILE] [--rate RECORDS_PER_S] [-X key=value]... [--timeout-s SECS]"
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: String::new(),
        topic: String::new(),
        records: 1_000_000,
        size: 100,
        partitions: 6,
        codec: "none".into(),
        acks: "all".into(),
        mode: "both".into(),
        payloads: None,
        rate: 0.0,
        extra: Vec::new(),
        timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--brokers" => a.brokers = val()?,
            "--topic" => a.topic = val()?,
            "--records" => a.records = val()?.parse().map_err(|e| format!("--records: {e}"))?,
            "--size" => a.size = val()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--partitions" => {
                a.partitions = val()?.parse().map_err(|e| format!("--partitions: {e}"))?
            }
            "--codec" => a.codec = val()?,
            "--acks" => a.acks = val()?,
            "--mode" => a.mode = val()?,
            "--payloads" => a.payloads = Some(val()?),
            "--rate" => a.rate = val()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--timeout-s" => {
                a.timeout =
                    Duration::from_secs(val()?.parse().map_err(|e| format!("--timeout-s: {e}"))?)
            }
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
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if a.brokers.is_empty() || a.topic.is_empty() {
        return Err(usage());
    }
    if a.partitions < 1 || a.records == 0 {
        return Err("--partitions and --records must be positive".into());
    }
    if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&a.codec.as_str()) {
        return Err(format!("unknown codec {}", a.codec));
    }
    if !["produce", "consume", "both"].contains(&a.mode.as_str()) {
        return Err(format!("unknown mode {}", a.mode));
    }
    Ok(a)
}

/// Process CPU seconds (user + system) and peak RSS in bytes, from getrusage(RUSAGE_SELF).
fn rusage() -> (f64, u64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes a plain struct we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (f64::NAN, 0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as u64 * 1024,
    )
}

/// Latency percentile (nearest rank) in milliseconds from sorted nanoseconds.
fn pct(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1e6)
}

fn json_opt(v: Option<f64>) -> String {
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
    let (_, peak_rss) = rusage();
    r.lat_ns.sort_unstable();
    let msgs = r.records as f64 / r.secs;
    let mb = r.bytes as f64 / r.secs / 1e6;
    let (p50, p99, p999) = (
        pct(&r.lat_ns, 50.0),
        pct(&r.lat_ns, 99.0),
        pct(&r.lat_ns, 99.9),
    );
    let cpu_per_m = r.cpu_s / (r.records as f64 / 1e6);
    let rss_mb = peak_rss as f64 / 1048576.0;
    println!(
        "rdkafka {}: {} records of {} B in {:.3} s: {:.0} msgs/s, {:.2} MB/s; latency p50 {} p99 {} p999 {} ms; \
         CPU {:.3} s ({:.3} s per 1M records); peak RSS {:.1} MiB",
        r.mode,
        r.records,
        r.args.size,
        r.secs,
        msgs,
        mb,
        json_opt(p50),
        json_opt(p99),
        json_opt(p999),
        r.cpu_s,
        cpu_per_m,
        rss_mb
    );
    println!(
        "PERF {{\"client\":\"rdkafka\",\"mode\":\"{}\",\"codec\":\"{}\",\"records\":{},\"size\":{},\"partitions\":{},\
         \"secs\":{:.4},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\
         \"cpu_s\":{:.4},\"cpu_s_per_m\":{:.4},\"peak_rss_mb\":{:.2},\"bytes\":{},\"checksum\":{},\
         \"version\":\"{}\"}}",
        r.mode,
        r.args.codec,
        r.records,
        r.args.size,
        r.args.partitions,
        r.secs,
        msgs,
        mb,
        json_opt(p50),
        json_opt(p99),
        json_opt(p999),
        r.cpu_s,
        cpu_per_m,
        rss_mb,
        r.bytes,
        r.checksum,
        rdkafka::util::get_rdkafka_version().1,
    );
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
fn payloads(a: &Args) -> Result<Vec<Vec<u8>>, String> {
    let Some(path) = &a.payloads else {
        return Ok(vec![vec![b'x'; a.size]]);
    };
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if a.size == 0 || data.is_empty() || data.len() % a.size != 0 {
        return Err(format!(
            "{path}: {} bytes is not a whole number of {}-byte payloads",
            data.len(),
            a.size
        ));
    }
    Ok(data.chunks(a.size).map(<[u8]>::to_vec).collect())
}

/// Send instants and latencies by record index, in ns since `t0`; written by
/// the sending loop and the delivery callback (both on the main thread here,
/// since this BaseProducer is polled by the sending loop itself).
struct Ctx {
    t0: Instant,
    sent_ns: Arc<Vec<AtomicU64>>,
    lat_ns: Arc<Vec<AtomicU64>>,
    errors: AtomicU64,
    delivered: AtomicU64,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, i: usize) {
        let now = self.t0.elapsed().as_nanos() as u64;
        match result {
            Ok(_) => {
                let sent = self.sent_ns[i].load(Ordering::Relaxed);
                self.lat_ns[i].store(now.saturating_sub(sent), Ordering::Relaxed);
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                if self.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("rdkafka-perf: delivery of record {i} failed: {e}");
                }
            }
        }
    }
}

fn base_config(a: &Args) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &a.brokers);
    for (k, v) in &a.extra {
        c.set(k, v);
    }
    c
}

fn produce(a: &Args) -> Result<(), String> {
    let n = a.records as usize;
    let t0 = Instant::now();
    let sent_ns: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let lat_ns: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(u64::MAX)).collect());
    let ctx = Ctx {
        t0,
        sent_ns: Arc::clone(&sent_ns),
        lat_ns: Arc::clone(&lat_ns),
        errors: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    };
    let mut cfg = base_config(a);
    cfg.set("acks", &a.acks).set("compression.codec", &a.codec);
    let producer: BaseProducer<Ctx> = cfg
        .create_with_context(ctx)
        .map_err(|e| format!("create producer: {e}"))?;
    let payloads = payloads(a)?;
    // Warm up metadata so the timed loop does not include bootstrap.
    producer
        .client()
        .fetch_metadata(Some(&a.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata for {}: {e}", a.topic))?;

    let (cpu0, _) = rusage();
    let start = Instant::now();
    for i in 0..n {
        if a.rate > 0.0 {
            // Record i is due i / rate seconds after the start; the
            // producer is polled before every record, so reports keep
            // coming.
            // (librdkafka's poll counts whole milliseconds, so the wait
            // is a sleep and the poll after it does not block.)
            let due = start + Duration::from_secs_f64(i as f64 / a.rate);
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            producer.poll(Duration::ZERO);
        }
        let partition = (i % a.partitions as usize) as i32;
        let mut rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&a.topic, i)
            .partition(partition)
            .payload(&payloads[i % payloads.len()][..]);
        // The send instant is taken once, so a wait for queue room counts
        // as latency (as it does in klamm's tool, where send() waits).
        sent_ns[i].store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("send record {i}: {e}")),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
        if start.elapsed() > a.timeout {
            return Err("timed out while sending".into());
        }
    }
    let left = a.timeout.saturating_sub(start.elapsed());
    producer.flush(left).map_err(|e| format!("flush: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, _) = rusage();
    let ctx = producer.context();
    let errors = ctx.errors.load(Ordering::Relaxed);
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    if errors > 0 || delivered != a.records {
        return Err(format!(
            "{delivered} of {} records delivered, {errors} failed",
            a.records
        ));
    }
    let lat: Vec<u64> = lat_ns.iter().map(|l| l.load(Ordering::Relaxed)).collect();
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
        cpu_s: cpu1 - cpu0,
        lat_ns: lat,
        checksum: 0,
    });
    Ok(())
}

fn consume(a: &Args) -> Result<(), String> {
    let mut cfg = base_config(a);
    // assign() needs a group.id in librdkafka, though no group is joined.
    cfg.set("group.id", "rdkafka-perf")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // librdkafka otherwise idles 1 s whenever its local queue fills.
        .set("fetch.queue.backoff.ms", "10");
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("create consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..a.partitions {
        tpl.add_partition_offset(&a.topic, p, Offset::Beginning)
            .map_err(|e| format!("partition list: {e}"))?;
    }
    let (cpu0, _) = rusage();
    let start = Instant::now();
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let (mut count, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    let mut first: Option<f64> = None;
    while count < a.records {
        if start.elapsed() > a.timeout {
            return Err(format!("timed out after {count} of {} records", a.records));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some(start.elapsed().as_secs_f64());
                }
                count += 1;
                let v = m.payload().unwrap_or_default();
                bytes += v.len() as u64;
                sum += checksum(v);
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
        }
    }
    // Timed from the start of reading, as every tool of the comparison does.
    let first = first.unwrap_or(0.0);
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, _) = rusage();
    eprintln!("rdkafka-perf: first record after {:.1} ms", first * 1e3);
    report(Report {
        mode: "consume",
        args: a,
        records: count,
        bytes,
        secs,
        cpu_s: cpu1 - cpu0,
        lat_ns: Vec::new(),
        checksum: sum,
    });
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
    let mut result = Ok(());
    if args.mode == "produce" || args.mode == "both" {
        result = produce(&args);
    }
    if result.is_ok() && (args.mode == "consume" || args.mode == "both") {
        result = consume(&args);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdkafka-perf: {e}");
            ExitCode::FAILURE
        }
    }
}
