//! The record pattern of the round-trip tests, shared with the independent
//! reader `scripts/peer-read.py` (which documents the same pattern).
//!
//! Partition `p`, the `i`-th record written to it: key `k-{p}-{i}`, value
//! `v-{p}-{i}-` followed by the bytes 0..=255 repeated, starting at
//! `(7 * i) % 256`, up to `size` bytes; headers `seq = i` then `part = p`;
//! timestamp `BASE_TS + i`.

#![allow(dead_code)]

use std::sync::Arc;

use klamm::consumer::ConsumerRecord;
use klamm::producer::ProducerRecord;

/// The timestamp of record 0.
pub const BASE_TS: i64 = 1_700_000_000_000;

/// The key of the `i`-th record of partition `p`.
pub fn key(p: i32, i: u64) -> Vec<u8> {
    format!("k-{p}-{i}").into_bytes()
}

/// The value of the `i`-th record of partition `p`, `size` bytes long (or
/// just the prefix when that is longer).
pub fn value(p: i32, i: u64, size: usize) -> Vec<u8> {
    let mut v = format!("v-{p}-{i}-").into_bytes();
    let start = (7 * i % 256) as usize;
    let mut b = start;
    while v.len() < size {
        v.push((b % 256) as u8);
        b += 1;
    }
    v
}

/// The record to write as the `i`-th of partition `p`.
pub fn record(topic: &Arc<str>, p: i32, i: u64, size: usize) -> ProducerRecord {
    ProducerRecord::new(topic.clone(), value(p, i, size))
        .with_partition(p)
        .with_key(key(p, i))
        .with_header("seq", i.to_string())
        .with_header("part", p.to_string())
        .with_timestamp(BASE_TS + i as i64)
}

/// Checks that `rec` is the `i`-th record of partition `p`.
pub fn check(rec: &ConsumerRecord, p: i32, i: u64, size: usize) -> Result<(), String> {
    let at = format!("partition {p} offset {} (record {i})", rec.offset);
    if rec.partition != p {
        return Err(format!("{at}: partition {}", rec.partition));
    }
    if rec.key.as_deref() != Some(&key(p, i)[..]) {
        return Err(format!("{at}: key {:?}", rec.key));
    }
    if rec.value.as_deref() != Some(&value(p, i, size)[..]) {
        return Err(format!("{at}: value differs"));
    }
    let headers: Vec<(&[u8], Option<&[u8]>)> = rec
        .headers
        .iter()
        .map(|h| (&h.key[..], h.value.as_deref()))
        .collect();
    let seq = i.to_string();
    let part = p.to_string();
    let want: Vec<(&[u8], Option<&[u8]>)> = vec![
        (b"seq", Some(seq.as_bytes())),
        (b"part", Some(part.as_bytes())),
    ];
    if headers != want {
        return Err(format!("{at}: headers {headers:?}"));
    }
    if rec.timestamp != BASE_TS + i as i64 {
        return Err(format!("{at}: timestamp {}", rec.timestamp));
    }
    Ok(())
}
