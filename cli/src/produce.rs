//! `klamm produce`: records from stdin or files, like `kcat -P`.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use klamm::{Client, Error};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::Outcome;
use crate::out::Progress;

/// How many records may await their delivery at once.
const IN_FLIGHT: usize = 10_000;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic.
    #[arg(short = 't', long)]
    pub topic: String,
    /// The partition (default: the partitioner's choice by key).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Split each line at the first DELIM into key and value (kcat -K).
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// A header on every record, KEY=VALUE; repeatable (kcat -H).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Compression: none, gzip, snappy, lz4, zstd (compression.type).
    #[arg(short = 'z', long = "compression", value_name = "CODEC")]
    pub compression: Option<String>,
    /// Produce every record in one transaction with this transactional id,
    /// committed at the end (aborted if any record fails).
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_id: Option<String>,
    /// The record delimiter in the input (default: newline; kcat -D).
    #[arg(
        short = 'D',
        long = "delimiter",
        value_name = "DELIM",
        default_value = "\n"
    )]
    pub delimiter: String,
    /// Read each file as delimited records rather than one record per
    /// file (kcat -l).
    #[arg(short = 'l', long = "lines")]
    pub lines: bool,
    /// Files to produce (default: stdin).
    pub files: Vec<PathBuf>,
}

impl ProduceArgs {
    /// The client properties this command sets.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(c) = &self.compression {
            p.push(("compression.type".to_string(), c.clone()));
        }
        if let Some(id) = &self.transactional_id {
            p.push(("transactional.id".to_string(), id.clone()));
        }
        p
    }
}

/// Splits `input` into records at `delimiter` (a trailing delimiter ends
/// the last record rather than starting an empty one).
pub fn split_records(input: &[u8], delimiter: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    if delimiter.is_empty() {
        out.push(Bytes::copy_from_slice(input));
        return out;
    }
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= input.len() {
        if &input[i..i + delimiter.len()] == delimiter {
            out.push(Bytes::copy_from_slice(&input[start..i]));
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if start < input.len() {
        out.push(Bytes::copy_from_slice(&input[start..]));
    }
    out
}

/// The record for one input: key and value split at the delimiter.
pub fn record(args: &ProduceArgs, headers: &[(String, String)], data: Bytes) -> ProducerRecord {
    let mut r = match args.key_delimiter.as_deref().map(str::as_bytes) {
        Some(d) if !d.is_empty() => match data.windows(d.len()).position(|w| w == d) {
            Some(at) => ProducerRecord::new(args.topic.as_str(), data.slice(at + d.len()..))
                .with_key(data.slice(..at)),
            None => ProducerRecord::new(args.topic.as_str(), data),
        },
        _ => ProducerRecord::new(args.topic.as_str(), data),
    };
    if let Some(p) = args.partition {
        r = r.with_partition(p);
    }
    for (k, v) in headers {
        r = r.with_header(k.clone(), v.clone());
    }
    r
}

pub async fn run(client: &Client, args: ProduceArgs) -> klamm::Result<Outcome> {
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::config(h.clone(), "-H takes KEY=VALUE"))
        })
        .collect::<klamm::Result<Vec<_>>>()?;
    let producer = AsyncProducer::new(client.clone()).await?;
    let transactional = args.transactional_id.is_some();
    if transactional {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
    }
    let delimiter = unescape(&args.delimiter);
    let mut sent = Sender {
        producer: &producer,
        pending: Vec::new(),
        failed: 0,
        delivered: 0,
        progress: Progress::new("records"),
    };
    // Reading the input can fail (a file that is not there); what was
    // sent before is still drained, and a transaction aborted.
    let read: klamm::Result<()> = async {
        if args.files.is_empty() {
            let mut stdin = BufReader::new(tokio::io::stdin());
            if delimiter == b"\n" {
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = stdin
                        .read_until(b'\n', &mut line)
                        .await
                        .map_err(|e| io_error("stdin", e))?;
                    if n == 0 {
                        break;
                    }
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    sent.send(record(&args, &headers, Bytes::copy_from_slice(&line)))
                        .await?;
                }
            } else {
                let mut all = Vec::new();
                stdin
                    .read_to_end(&mut all)
                    .await
                    .map_err(|e| io_error("stdin", e))?;
                for data in split_records(&all, &delimiter) {
                    sent.send(record(&args, &headers, data)).await?;
                }
            }
        } else {
            for path in &args.files {
                let data = tokio::fs::read(path)
                    .await
                    .map_err(|e| io_error(&path.display().to_string(), e))?;
                let records = if args.lines {
                    split_records(&data, &delimiter)
                } else {
                    vec![Bytes::from(data)]
                };
                for data in records {
                    sent.send(record(&args, &headers, data)).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    sent.drain().await;
    sent.progress.finish();
    let (delivered, failed) = (sent.delivered, sent.failed);
    if let Err(e) = read {
        if transactional {
            producer.abort_transaction().await.ok();
        }
        producer.close().await.ok();
        eprintln!(
            "klamm: {delivered} record(s) produced to {} before the input failed",
            args.topic
        );
        return Err(e);
    }
    if transactional {
        if failed == 0 {
            producer.commit_transaction().await?;
        } else {
            producer.abort_transaction().await?;
            eprintln!("klamm: {failed} record(s) failed: the transaction was aborted");
        }
    }
    producer.close().await?;
    eprintln!(
        "klamm: {delivered} record(s) produced to {}, {failed} failed",
        args.topic
    );
    Ok(Outcome::of(failed == 0))
}

struct Sender<'a> {
    producer: &'a AsyncProducer,
    pending: Vec<DeliveryFuture>,
    failed: u64,
    delivered: u64,
    progress: Progress,
}

impl Sender<'_> {
    /// Sends a record; one the producer refuses at once (too large, an
    /// unknown partition) counts as failed, and the others go on.
    async fn send(&mut self, record: ProducerRecord) -> klamm::Result<()> {
        match self.producer.send(record).await {
            Ok(d) => self.pending.push(d),
            Err(e) => {
                self.failed += 1;
                self.progress.add(1);
                eprintln!("klamm: a record failed: {e}");
            }
        }
        if self.pending.len() >= IN_FLIGHT {
            self.drain().await;
        }
        Ok(())
    }

    async fn drain(&mut self) {
        for d in self.pending.drain(..) {
            match d.await {
                Ok(_) => self.delivered += 1,
                Err(e) => {
                    self.failed += 1;
                    eprintln!("klamm: a record failed: {e}");
                }
            }
            self.progress.add(1);
        }
    }
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::config(what.to_string(), format!("cannot read: {e}"))
}

/// `\n`, `\t`, `\r`, `\0` and `\\` in a delimiter given on the command
/// line.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_splits_at_the_delimiter() {
        let parts = split_records(b"a;;b;;;;c;;", b";;");
        assert_eq!(
            parts,
            vec![
                Bytes::from("a"),
                Bytes::from("b"),
                Bytes::from(""),
                Bytes::from("c")
            ]
        );
        assert_eq!(split_records(b"one", b"\n"), vec![Bytes::from("one")]);
        assert_eq!(unescape("\\n"), b"\n");
        assert_eq!(unescape("|\\t|"), b"|\t|");
    }

    #[test]
    fn keys_split_at_the_first_key_delimiter() {
        let args = ProduceArgs {
            topic: "t".into(),
            partition: Some(2),
            key_delimiter: Some(":".into()),
            headers: vec![],
            compression: None,
            transactional_id: None,
            delimiter: "\n".into(),
            lines: false,
            files: vec![],
        };
        let r = record(
            &args,
            &[("h".into(), "v".into())],
            Bytes::from("user-1:a:b"),
        );
        assert_eq!(r.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"a:b"[..]));
        assert_eq!(r.partition, Some(2));
        assert_eq!(r.headers.len(), 1);
        let r = record(&args, &[], Bytes::from("no key"));
        assert_eq!(r.key, None);
    }
}
