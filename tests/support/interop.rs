//! The interop record pattern (defined in `peers/PATTERN.md`; the Java and
//! Go peers implement the same rules), and records as a client read them
//! back, compared field by field with the pattern.
//!
//! Record `i` of partition `p`, in short: key `k-{p}-{i}`, null when
//! `i % 7 == 3`, empty when `i % 13 == 5`; value `v-{p}-{i}-` then bytes
//! `(7i + p + j) % 256` up to `24 + (37i + 11p) % 200` bytes, null when
//! `i % 11 == 4`, empty when `i % 17 == 9`; headers `seq`, `part`,
//! `dup`=first, `nil`=null, `dup`=second, then `bin` (`i % 3 == 0`),
//! `empty` (`i % 4 == 1`), `schlüssel` (`i % 2 == 1`), or none at all when
//! `i % 5 == 2`; timestamp `BASE_TS + i` (create time).

#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use klamm::consumer::ConsumerRecord;
use klamm::producer::ProducerRecord;
use klamm::protocol::records::{Header, TimestampType};
use serde_json::Value;

/// The timestamp of record 0.
pub const BASE_TS: i64 = 1_700_000_000_000;

/// The create time of record `i`.
pub fn timestamp(i: u64) -> i64 {
    BASE_TS + i as i64
}

/// The key of record `i` of partition `p` (`None` is null).
pub fn key(p: i32, i: u64) -> Option<Vec<u8>> {
    if i % 7 == 3 {
        None
    } else if i % 13 == 5 {
        Some(Vec::new())
    } else {
        Some(format!("k-{p}-{i}").into_bytes())
    }
}

/// The value of record `i` of partition `p` (`None` is null).
pub fn value(p: i32, i: u64) -> Option<Vec<u8>> {
    if i % 11 == 4 {
        return None;
    }
    if i % 17 == 9 {
        return Some(Vec::new());
    }
    let p = p as u64;
    let len = (24 + (37 * i + 11 * p) % 200) as usize;
    let mut v = format!("v-{p}-{i}-").into_bytes();
    let mut j = 0u64;
    while v.len() < len {
        v.push(((7 * i + p + j) % 256) as u8);
        j += 1;
    }
    Some(v)
}

/// The headers of record `i` of partition `p`, in order.
pub fn headers(p: i32, i: u64) -> Vec<Header> {
    if i % 5 == 2 {
        return Vec::new();
    }
    let mut h = vec![
        Header::new("seq", i.to_string()),
        Header::new("part", p.to_string()),
        Header::new("dup", "first"),
        Header::null("nil"),
        Header::new("dup", "second"),
    ];
    if i % 3 == 0 {
        h.push(Header::new(
            "bin",
            vec![0x00, 0xff, (i % 256) as u8, (p % 256) as u8],
        ));
    }
    if i % 4 == 1 {
        h.push(Header::new("empty", Bytes::new()));
    }
    if i % 2 == 1 {
        h.push(Header::new("schlüssel", "wert"));
    }
    h
}

/// Record `i` of partition `p`, to be sent to partition `p`.
pub fn record(topic: &Arc<str>, p: i32, i: u64) -> ProducerRecord {
    ProducerRecord {
        topic: Arc::clone(topic),
        partition: Some(p),
        key: key(p, i).map(Bytes::from),
        value: value(p, i).map(Bytes::from),
        headers: headers(p, i),
        timestamp: Some(timestamp(i)),
    }
}

/// A record as a client read it back (klamm's consumer, or a peer's JSON
/// line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Key and value; `None` is a null value.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub timestamp: i64,
    /// `CreateTime` or `LogAppendTime`; `None` where the reader does not
    /// say (Sarama).
    pub timestamp_type: Option<String>,
}

impl From<&ConsumerRecord> for Seen {
    fn from(r: &ConsumerRecord) -> Seen {
        Seen {
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_ref().map(|b| b.to_vec()),
            value: r.value.as_ref().map(|b| b.to_vec()),
            headers: r
                .headers
                .iter()
                .map(|h| (h.key.to_vec(), h.value.as_ref().map(|v| v.to_vec())))
                .collect(),
            timestamp: r.timestamp,
            timestamp_type: Some(
                match r.timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                }
                .to_string(),
            ),
        }
    }
}

fn base64_or_null(v: &Value, what: &str) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Some)
            .map_err(|e| format!("{what}: bad base64 {s:?}: {e}")),
        other => Err(format!("{what}: neither base64 nor null: {other}")),
    }
}

impl Seen {
    /// A peer's `record` line (peers/PATTERN.md).
    pub fn from_json(line: &Value) -> Result<Seen, String> {
        let int = |k: &str| {
            line[k]
                .as_i64()
                .ok_or_else(|| format!("{k} missing in {line}"))
        };
        let mut headers = Vec::new();
        for h in line["headers"]
            .as_array()
            .ok_or_else(|| format!("headers missing in {line}"))?
        {
            let key = h[0]
                .as_str()
                .ok_or_else(|| format!("a header key in {line}"))?;
            headers.push((key.as_bytes().to_vec(), base64_or_null(&h[1], "header")?));
        }
        Ok(Seen {
            partition: int("partition")? as i32,
            offset: int("offset")?,
            key: base64_or_null(&line["key"], "key")?,
            value: base64_or_null(&line["value"], "value")?,
            headers,
            timestamp: int("timestamp")?,
            timestamp_type: line["timestampType"].as_str().map(str::to_string),
        })
    }
}

/// Bytes for a message: `null`, or Rust's escaped byte-string form.
pub fn show(b: Option<&[u8]>) -> String {
    match b {
        None => "null".into(),
        Some(b) => format!("{:?}", Bytes::copy_from_slice(b)),
    }
}

/// Checks that `seen` is record `i` of partition `p`, field by field: the
/// error names the partition, the offset, the record and the field, with
/// what was wanted and what came.
pub fn check(seen: &Seen, p: i32, i: u64) -> Result<(), String> {
    let at = format!(
        "partition {} offset {} (record {i} of the pattern)",
        seen.partition, seen.offset
    );
    if seen.partition != p {
        return Err(format!("{at}: partition: want {p}"));
    }
    let want = key(p, i);
    if seen.key != want {
        return Err(format!(
            "{at}: key: want {} got {}",
            show(want.as_deref()),
            show(seen.key.as_deref())
        ));
    }
    let want = value(p, i);
    if seen.value != want {
        return Err(format!(
            "{at}: value: want {} got {}",
            show(want.as_deref()),
            show(seen.value.as_deref())
        ));
    }
    let want = headers(p, i);
    if seen.headers.len() != want.len() {
        return Err(format!(
            "{at}: headers: want {} headers got {}: {:?}",
            want.len(),
            seen.headers.len(),
            seen.headers
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k))
                .collect::<Vec<_>>()
        ));
    }
    for (n, (w, (k, v))) in want.iter().zip(&seen.headers).enumerate() {
        if w.key[..] != k[..] {
            return Err(format!(
                "{at}: headers[{n}].key: want {} got {}",
                show(Some(&w.key)),
                show(Some(k))
            ));
        }
        if w.value.as_deref() != v.as_deref() {
            return Err(format!(
                "{at}: headers[{n}].value ({}): want {} got {}",
                String::from_utf8_lossy(k),
                show(w.value.as_deref()),
                show(v.as_deref())
            ));
        }
    }
    if seen.timestamp != timestamp(i) {
        return Err(format!(
            "{at}: timestamp: want {} got {}",
            timestamp(i),
            seen.timestamp
        ));
    }
    match seen.timestamp_type.as_deref() {
        None | Some("CreateTime") => Ok(()),
        Some(t) => Err(format!("{at}: timestampType: want CreateTime got {t}")),
    }
}

/// Checks that `records` (as read, in order) hold, for each partition
/// `0..partitions`, exactly the pattern records `expected(p)` lists as
/// (index, offset), in that order. The error names the first difference.
pub fn check_partitions(
    records: &[Seen],
    partitions: i32,
    expected: impl Fn(i32) -> Vec<(u64, i64)>,
) -> Result<(), String> {
    if let Some(r) = records
        .iter()
        .find(|r| !(0..partitions).contains(&r.partition))
    {
        return Err(format!(
            "a record from partition {} (offset {}), beyond the {partitions} partitions",
            r.partition, r.offset
        ));
    }
    for p in 0..partitions {
        let got: Vec<&Seen> = records.iter().filter(|r| r.partition == p).collect();
        let want = expected(p);
        for (n, (r, &(i, offset))) in got.iter().zip(&want).enumerate() {
            if r.offset != offset {
                return Err(format!(
                    "partition {p}: record #{n}: offset: want {offset} (record {i} of the pattern) \
                     got {}",
                    r.offset
                ));
            }
            check(r, p, i)?;
        }
        if got.len() != want.len() {
            let next = if got.len() > want.len() {
                format!("the first extra at offset {}", got[want.len()].offset)
            } else {
                format!(
                    "the first missing is record {} of the pattern",
                    want[got.len()].0
                )
            };
            return Err(format!(
                "partition {p}: want {} records got {} ({next})",
                want.len(),
                got.len()
            ));
        }
    }
    Ok(())
}

/// Records `0..count` of the pattern at offsets `0..count`: a fresh topic
/// written by one producer.
pub fn contiguous(count: u64) -> Vec<(u64, i64)> {
    (0..count).map(|i| (i, i as i64)).collect()
}
