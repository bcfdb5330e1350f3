//! `klamm consume`: records printed with a format or as JSON, from
//! partitions (like `kcat -C`) or as a consumer-group member (`-G`).

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use klamm::admin::Admin;
use klamm::client::OffsetSpec;
use klamm::config::IsolationLevel;
use klamm::consumer::{Consumer, ConsumerRecord, StartOffset};
use klamm::group::{AckMode, GroupConsumer, GroupEvent, GroupOptions, TopicPartition};
use klamm::protocol::records::TimestampType;
use klamm::{Client, Error};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Outcome;
use crate::out::Progress;

/// How often a partition read with -e looks whether it reached its end
/// while no record comes.
const END_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic (or, with -G, the topics as arguments).
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// Only this partition (repeatable; default: every partition).
    #[arg(short = 'p', long = "partition")]
    pub partitions: Vec<i32>,
    /// Where to start: beginning, end, -N (the last N of each partition),
    /// an offset, or s@MS (the first record at or after that time in ms).
    #[arg(
        short = 'o',
        long = "offset",
        default_value = "beginning",
        allow_hyphen_values = true
    )]
    pub offset: String,
    /// Stop after this many records.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    /// Stop at the end of every partition (its end when consuming starts).
    #[arg(short = 'e', long = "exit")]
    pub exit_at_end: bool,
    /// How to print each record: %t topic, %p partition, %o offset, %k key,
    /// %s value, %K/%S key/value length, %T timestamp, %h headers, %%;
    /// \n \t escapes.
    #[arg(short = 'f', long = "format", default_value = "%s\\n")]
    pub format: String,
    /// Print each record as a JSON envelope (kcat -J).
    #[arg(short = 'J', long = "json-envelope")]
    pub envelope: bool,
    /// Consume as a member of this consumer group (committing as it goes),
    /// subscribed to the topics given as arguments.
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    pub group: Option<String>,
    /// The topics to subscribe to with -G.
    pub topics: Vec<String>,
}

impl ConsumeArgs {
    /// The client properties this command sets.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(g) = &self.group {
            p.push(("group.id".to_string(), g.clone()));
            let reset = match parse_start(&self.offset) {
                Ok(Start::End) => "latest",
                _ => "earliest",
            };
            p.push(("auto.offset.reset".to_string(), reset.to_string()));
        }
        p
    }
}

/// Where consumption starts (-o).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// The last N records of each partition.
    Last(i64),
    Offset(i64),
    Time(i64),
}

/// Reads `-o`.
pub fn parse_start(s: &str) -> klamm::Result<Start> {
    let bad = || {
        Error::config(
            format!("-o {s}"),
            "expected beginning, end, -N, an offset or s@MS",
        )
    };
    Ok(match s {
        "beginning" | "earliest" | "oldest" => Start::Beginning,
        "end" | "latest" | "newest" => Start::End,
        _ if s.starts_with("s@") => Start::Time(s[2..].parse().map_err(|_| bad())?),
        _ if s.starts_with('-') => Start::Last(s[1..].parse().map_err(|_| bad())?),
        _ => Start::Offset(s.parse().map_err(|_| bad())?),
    })
}

/// A record as text, by a kcat-style format.
pub fn format_record(format: &str, r: &ConsumerRecord) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = format.chars().peekable();
    let text = |b: &Option<bytes::Bytes>| b.as_deref().unwrap_or_default().to_vec();
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map(|b| b.len() as i64).unwrap_or(-1);
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('s') => out.extend(text(&r.value)),
                Some('k') => out.extend(text(&r.key)),
                Some('S') => out.extend(len(&r.value).to_string().bytes()),
                Some('K') => out.extend(len(&r.key).to_string().bytes()),
                Some('t') => out.extend(r.topic.bytes()),
                Some('p') => out.extend(r.partition.to_string().bytes()),
                Some('o') => out.extend(r.offset.to_string().bytes()),
                Some('T') => out.extend(r.timestamp.to_string().bytes()),
                Some('h') => {
                    let hs: Vec<String> = r
                        .headers
                        .iter()
                        .map(|h| {
                            format!(
                                "{}={}",
                                String::from_utf8_lossy(&h.key),
                                String::from_utf8_lossy(h.value.as_deref().unwrap_or_default())
                            )
                        })
                        .collect();
                    out.extend(hs.join(",").bytes());
                }
                Some('%') => out.push(b'%'),
                Some(other) => {
                    out.push(b'%');
                    out.extend(other.to_string().bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('0') => out.push(0),
                Some('\\') => out.push(b'\\'),
                Some(other) => {
                    out.push(b'\\');
                    out.extend(other.to_string().bytes());
                }
                None => out.push(b'\\'),
            },
            c => out.extend(c.to_string().bytes()),
        }
    }
    out
}

/// A record as kcat's JSON envelope.
pub fn envelope(r: &ConsumerRecord) -> Value {
    let text = |b: &Option<bytes::Bytes>| -> Value {
        match b {
            Some(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            None => Value::Null,
        }
    };
    let mut headers = Vec::new();
    for h in &r.headers {
        headers.push(Value::String(String::from_utf8_lossy(&h.key).into_owned()));
        headers.push(text(&h.value));
    }
    json!({
        "topic": &*r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "tstype": match r.timestamp_type {
            TimestampType::CreateTime => "create",
            TimestampType::LogAppendTime => "logappend",
        },
        "ts": r.timestamp,
        "headers": headers,
        "key": text(&r.key),
        "payload": text(&r.value),
    })
}

/// What became of a record handed to the printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printed {
    /// Not printed: the count was reached, or stdout closed.
    No,
    /// Printed, and it was the last the count allows.
    Last,
    /// Printed; more may follow.
    More,
}

struct Printer {
    format: String,
    envelope: bool,
    printed: u64,
    limit: Option<u64>,
    progress: Progress,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    /// Prints a record, and says whether more may follow.
    fn print(&mut self, r: &ConsumerRecord) -> Printed {
        if self.limit.is_some_and(|l| self.printed >= l) {
            return Printed::No;
        }
        let written = if self.envelope {
            writeln!(self.out, "{}", envelope(r))
        } else {
            self.out.write_all(&format_record(&self.format, r))
        };
        if written.is_err() {
            return Printed::No; // stdout closed (a pipe to `head`)
        }
        self.printed += 1;
        self.progress.add(1);
        if self.limit.is_some_and(|l| self.printed >= l) {
            Printed::Last
        } else {
            Printed::More
        }
    }

    /// Writes out what is buffered; `false` when stdout is closed.
    fn flush(&mut self) -> bool {
        self.out.flush().is_ok()
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
        self.progress.finish();
    }
}

pub async fn run(client: &Client, args: ConsumeArgs, json: bool) -> klamm::Result<Outcome> {
    let start = parse_start(&args.offset)?;
    let mut printer = Printer {
        format: args.format.clone(),
        envelope: args.envelope || json,
        printed: 0,
        limit: args.count,
        progress: Progress::new("records"),
        out: std::io::BufWriter::new(std::io::stdout()),
    };
    let outcome = match &args.group {
        Some(_) => as_member(client, &args, &mut printer).await,
        None => partitions(client, &args, start, &mut printer).await,
    };
    printer.finish();
    outcome
}

async fn as_member(
    client: &Client,
    args: &ConsumeArgs,
    printer: &mut Printer,
) -> klamm::Result<Outcome> {
    let mut topics = args.topics.clone();
    topics.extend(args.topic.clone());
    if topics.is_empty() {
        return Err(Error::config("-G", "name the topics to subscribe to"));
    }
    // A member starts at the group's commits (or, without one, where -o
    // beginning/end says) and has no partitions of its own to end.
    if !matches!(parse_start(&args.offset)?, Start::Beginning | Start::End) {
        return Err(Error::config(
            "-o",
            "with -G, only beginning or end (where a partition without a commit starts)",
        ));
    }
    if args.exit_at_end || !args.partitions.is_empty() {
        return Err(Error::config(
            "-G",
            "-e and -p do not apply to a group member: use -c to stop",
        ));
    }
    // Explicit acknowledgement: with -c, what was printed is committed,
    // not the rest of the last batch.
    let options = GroupOptions {
        ack: AckMode::Explicit,
        ..GroupOptions::default()
    };
    let mut group = GroupConsumer::with_options(client.clone(), topics, options).await?;
    let acker = group.acker();
    let mut more = true;
    while more {
        let Some(event) = group.recv().await else {
            break;
        };
        if let GroupEvent::Records(batch) = event? {
            let mut printed = 0;
            for r in batch.iter() {
                match printer.print(r) {
                    Printed::No => more = false,
                    Printed::Last => {
                        printed += 1;
                        more = false;
                    }
                    Printed::More => printed += 1,
                }
                if !more {
                    break;
                }
            }
            // Acknowledged (and so committed) only once on stdout.
            if !printer.flush() {
                break;
            }
            for r in batch.iter().take(printed) {
                acker.done(r);
            }
        }
    }
    group.close().await?;
    Ok(Outcome::Done)
}

async fn partitions(
    client: &Client,
    args: &ConsumeArgs,
    start: Start,
    printer: &mut Printer,
) -> klamm::Result<Outcome> {
    let topic = args
        .topic
        .clone()
        .ok_or_else(|| Error::config("-t", "name the topic (or use -G with topics)"))?;
    let partitions = if args.partitions.is_empty() {
        client.partitions(&topic).await?
    } else {
        args.partitions.clone()
    };
    let admin = Admin::new(client.clone());
    let needs_ends = args.exit_at_end || matches!(start, Start::Last(_));
    // Under read_committed the end is the last stable offset: nothing
    // past it is delivered before its transaction ends.
    let read_committed = client.config().consumer.isolation_level == IsolationLevel::ReadCommitted;
    let ask = |spec: OffsetSpec| {
        partitions
            .iter()
            .map(|p| (TopicPartition::new(topic.clone(), *p), spec))
            .collect::<Vec<_>>()
    };
    let offsets = async |spec: OffsetSpec| -> klamm::Result<BTreeMap<i32, Option<i64>>> {
        let mut found = BTreeMap::new();
        for (tp, r) in admin.list_offsets(&ask(spec), read_committed).await {
            found.insert(tp.partition, r?.offset);
        }
        Ok(found)
    };
    let (mut ends, mut firsts, mut at_time) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    if needs_ends {
        ends = offsets(OffsetSpec::Newest).await?;
        firsts = offsets(OffsetSpec::Oldest).await?;
        if let (true, Start::Time(t)) = (args.exit_at_end, start) {
            at_time = offsets(OffsetSpec::Timestamp(t)).await?;
        }
    }
    let end_of = |p: i32| ends.get(&p).copied().flatten().unwrap_or(0);
    let first_of = |p: i32| firsts.get(&p).copied().flatten().unwrap_or(0);
    let (tx, mut rx) = mpsc::channel::<klamm::Result<ConsumerRecord>>(1024);
    let consumer = Consumer::new(client.clone());
    // (partition, where it starts, where -e ends it) of every partition
    // with something to read.
    let mut starts = Vec::new();
    for p in partitions.iter().copied() {
        let (from, first) = match start {
            Start::Beginning => (StartOffset::Oldest, first_of(p)),
            Start::End => (StartOffset::Newest, end_of(p)),
            Start::Offset(o) => (StartOffset::Offset(o), o),
            Start::Time(t) => (
                StartOffset::Timestamp(t),
                at_time.get(&p).copied().flatten().unwrap_or(end_of(p)),
            ),
            Start::Last(n) => {
                let at = (end_of(p) - n).max(first_of(p));
                (StartOffset::Offset(at), at)
            }
        };
        let end = args.exit_at_end.then(|| end_of(p));
        // Nothing to read before the end: done at once.
        if end.is_some_and(|e| first >= e) {
            continue;
        }
        starts.push((p, from, end));
    }
    // From the beginning or a time, every partition starts alike: their
    // offsets are looked up together (one ListOffsets per leader).
    let alike = match start {
        Start::Beginning => Some(StartOffset::Oldest),
        Start::Time(t) => Some(StartOffset::Timestamp(t)),
        _ => None,
    };
    let pcs = match alike {
        Some(from) => {
            let ps: Vec<i32> = starts.iter().map(|s| s.0).collect();
            consumer.consume_partitions(&topic, &ps, from).await?
        }
        None => {
            let mut pcs = Vec::with_capacity(starts.len());
            for (p, from, _) in &starts {
                pcs.push(consumer.consume_partition(&topic, *p, *from).await?);
            }
            pcs
        }
    };
    let mut tasks = Vec::new();
    for (mut pc, (_, _, end)) in pcs.into_iter().zip(starts) {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                // With -e: done once the position reaches the end, even
                // when the log ends with transaction markers.
                if end.is_some_and(|e| pc.position() >= e) {
                    break;
                }
                let next = match end {
                    Some(_) => match tokio::time::timeout(END_CHECK, pc.recv()).await {
                        Ok(next) => next,
                        Err(_) => continue,
                    },
                    None => pc.recv().await,
                };
                let Some(r) = next else { break };
                let failed = r.is_err();
                if tx.send(r).await.is_err() || failed {
                    break;
                }
            }
            pc.close().await;
        }));
    }
    drop(tx);
    let mut failure = None;
    while let Some(r) = rx.recv().await {
        match r {
            Ok(rec) => {
                if printer.print(&rec) != Printed::More {
                    break;
                }
                // Nothing more waiting: show what was printed.
                if rx.is_empty() && !printer.flush() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    for t in tasks {
        t.abort();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Outcome::Done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use klamm::protocol::records::Header;

    fn rec() -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: Some(Bytes::from("k1")),
            value: Some(Bytes::from("hello")),
            headers: vec![Header {
                key: Bytes::from("h"),
                value: Some(Bytes::from("v")),
            }],
        }
    }

    #[test]
    fn formats_name_every_part_of_a_record() {
        let line = format_record("%t/%p@%o %k=%s (%K,%S) %T [%h] 100%%\\n", &rec());
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "orders/2@41 k1=hello (2,5) 1700000000000 [h=v] 100%\n"
        );
        let mut null = rec();
        null.key = None;
        assert_eq!(format_record("%K|%k|", &null), b"-1||");
    }

    #[test]
    fn the_envelope_is_kcats() {
        let v = envelope(&rec());
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["offset"], 41);
        assert_eq!(v["tstype"], "create");
        assert_eq!(v["headers"], json!(["h", "v"]));
        assert_eq!(v["key"], "k1");
        assert_eq!(v["payload"], "hello");
    }

    #[test]
    fn start_offsets_parse() {
        assert_eq!(parse_start("beginning").unwrap(), Start::Beginning);
        assert_eq!(parse_start("end").unwrap(), Start::End);
        assert_eq!(parse_start("-10").unwrap(), Start::Last(10));
        assert_eq!(parse_start("42").unwrap(), Start::Offset(42));
        assert_eq!(
            parse_start("s@1700000000000").unwrap(),
            Start::Time(1_700_000_000_000)
        );
        assert!(parse_start("soon").is_err());
    }
}
