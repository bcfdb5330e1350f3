//! Response decoding, klamm and kafka-protocol on the same bytes:
//! - Metadata v12 responses with 1,000 and 10,000 partitions (10 and 100
//!   topics × 100, 3 replicas each);
//! - a ~10 MB Fetch v16 response (1 topic, 8 partitions of uncompressed v2
//!   batches of 100 records with 100-byte values): the message decode AND
//!   the decode of every record batch in every partition's `records`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::RecordBatchDecoder;
use klamm::protocol::codec::Message;
use klamm::protocol::messages::{FetchResponse, MetadataResponse};
use klamm::protocol::records::{DecodeOptions, decode_record_set};
use klamm_benches::{fetch_response_bytes, metadata_response_bytes};

const METADATA_VERSION: i16 = 12;
const FETCH_VERSION: i16 = 16;

fn bench_metadata(c: &mut Criterion) {
    for topics in [10, 100] {
        bench_metadata_of(c, topics);
    }
}

/// `topics` topics of 100 partitions each.
fn bench_metadata_of(c: &mut Criterion, topics: usize) {
    let wire = metadata_response_bytes(topics, 100, METADATA_VERSION);
    let partitions = topics * 100;

    let k = MetadataResponse::decode(&mut wire.clone(), METADATA_VERSION).unwrap();
    let p = kafka_protocol::messages::MetadataResponse::decode(&mut wire.clone(), METADATA_VERSION)
        .unwrap();
    let kn: usize = k.topics.iter().map(|t| t.partitions.len()).sum();
    let pn: usize = p.topics.iter().map(|t| t.partitions.len()).sum();
    assert_eq!((kn, pn), (partitions, partitions));
    let kr: usize = k
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.replica_nodes.len())
        .sum();
    let pr: usize = p
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.replica_nodes.len())
        .sum();
    assert_eq!((kr, pr), (3 * partitions, 3 * partitions));
    assert_eq!(p.brokers.len(), 3);
    eprintln!(
        "metadata v{METADATA_VERSION}: {} bytes, {kn} partitions",
        wire.len()
    );

    let mut g = c.benchmark_group(format!("metadata_decode/{partitions}_partitions"));
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("klamm", |b| {
        b.iter(|| {
            let r =
                MetadataResponse::decode(&mut black_box(&wire).clone(), METADATA_VERSION).unwrap();
            black_box(r.topics.len())
        })
    });
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            let r = kafka_protocol::messages::MetadataResponse::decode(
                &mut black_box(&wire).clone(),
                METADATA_VERSION,
            )
            .unwrap();
            black_box(r.topics.len())
        })
    });
    g.finish();
}

/// klamm: message, then every partition's record set. Returns the record count.
fn klamm_fetch(wire: &Bytes, opts: &DecodeOptions) -> usize {
    let resp = FetchResponse::decode(&mut wire.clone(), FETCH_VERSION).unwrap();
    let mut n = 0;
    for t in &resp.responses {
        for p in &t.partitions {
            if let Some(records) = &p.records {
                let set = decode_record_set(records.clone(), opts).unwrap();
                assert!(!set.is_truncated());
                n += set.record_count();
                black_box(&set);
            }
        }
    }
    n
}

/// kafka-protocol: message, then every partition's record batches.
fn kp_fetch(wire: &Bytes) -> usize {
    let resp =
        kafka_protocol::messages::FetchResponse::decode(&mut wire.clone(), FETCH_VERSION).unwrap();
    let mut n = 0;
    for t in &resp.responses {
        for p in &t.partitions {
            if let Some(records) = &p.records {
                let sets = RecordBatchDecoder::decode_all(&mut records.clone()).unwrap();
                n += sets.iter().map(|s| s.records.len()).sum::<usize>();
                black_box(&sets);
            }
        }
    }
    n
}

fn bench_fetch(c: &mut Criterion) {
    // 8 partitions × 100 batches × 100 records ≈ 10 MB.
    let (wire, total) = fetch_response_bytes(8, 100, 100, FETCH_VERSION);
    let opts = DecodeOptions::default();
    assert_eq!(klamm_fetch(&wire, &opts), total);
    assert_eq!(kp_fetch(&wire), total);
    eprintln!(
        "fetch v{FETCH_VERSION}: {} bytes, {total} records",
        wire.len()
    );

    let mut g = c.benchmark_group("fetch_decode/10MB");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("klamm", |b| b.iter(|| klamm_fetch(black_box(&wire), &opts)));
    g.bench_function("kafka-protocol", |b| b.iter(|| kp_fetch(black_box(&wire))));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_metadata, bench_fetch
}
criterion_main!(benches);
