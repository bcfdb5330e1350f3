//! The message codecs of the hot paths, klamm alone (for before/after
//! comparisons of codec changes; the records inside are opaque bytes here):
//! - ProduceRequest v9 encode: 1 topic, 16 partitions of 16 KiB records;
//! - ProduceResponse v10 decode: the answer to it;
//! - FetchRequest v12 encode: 100 partitions of one topic;
//! - FetchResponse v12 decode: 100 partitions with 1 KiB of records each.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use klamm::protocol::codec::Message;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use klamm::protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, ProduceResponse};

const PRODUCE_VERSION: i16 = 9;
const PRODUCE_RESPONSE_VERSION: i16 = 10;
const FETCH_VERSION: i16 = 12;

fn produce_request() -> ProduceRequest {
    let records = Bytes::from(vec![7u8; 16 * 1024]);
    ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench-topic".into(),
            partition_data: (0..16)
                .map(|p| PartitionProduceData {
                    index: p,
                    records: Some(records.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_response() -> Bytes {
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "bench-topic".into(),
            partition_responses: (0..16)
                .map(|p| PartitionProduceResponse {
                    index: p,
                    base_offset: 1_000_000 + i64::from(p),
                    log_start_offset: 0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut b = BytesMut::new();
    resp.encode(&mut b, PRODUCE_RESPONSE_VERSION).expect("encodes");
    b.freeze()
}

fn fetch_request() -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 50 << 20,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "bench-topic".into(),
            partitions: (0..100)
                .map(|p| FetchPartition {
                    partition: p,
                    current_leader_epoch: 3,
                    fetch_offset: 123_456,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_response() -> Bytes {
    let records = Bytes::from(vec![9u8; 1024]);
    let resp = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "bench-topic".into(),
            partitions: (0..100)
                .map(|p| PartitionData {
                    partition_index: p,
                    high_watermark: 2_000_000,
                    last_stable_offset: 2_000_000,
                    log_start_offset: 0,
                    records: Some(records.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut b = BytesMut::new();
    resp.encode(&mut b, FETCH_VERSION).expect("encodes");
    b.freeze()
}

fn bench_messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("messages");
    let req = produce_request();
    let mut buf = BytesMut::with_capacity(req.encoded_len(PRODUCE_VERSION));
    g.bench_function("produce_request_encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req).encode(&mut buf, PRODUCE_VERSION).expect("encodes");
            buf.len()
        })
    });
    let wire = produce_response();
    assert_eq!(
        ProduceResponse::decode(&mut wire.clone(), PRODUCE_RESPONSE_VERSION)
            .expect("decodes")
            .responses[0]
            .partition_responses
            .len(),
        16
    );
    g.bench_function("produce_response_decode", |b| {
        b.iter(|| {
            ProduceResponse::decode(&mut black_box(&wire).clone(), PRODUCE_RESPONSE_VERSION)
                .expect("decodes")
        })
    });
    let req = fetch_request();
    let mut buf = BytesMut::with_capacity(req.encoded_len(FETCH_VERSION));
    g.bench_function("fetch_request_encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req).encode(&mut buf, FETCH_VERSION).expect("encodes");
            buf.len()
        })
    });
    let wire = fetch_response();
    assert_eq!(
        FetchResponse::decode(&mut wire.clone(), FETCH_VERSION)
            .expect("decodes")
            .responses[0]
            .partitions
            .len(),
        100
    );
    g.bench_function("fetch_response_decode", |b| {
        b.iter(|| FetchResponse::decode(&mut black_box(&wire).clone(), FETCH_VERSION).expect("decodes"))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_messages
}
criterion_main!(benches);
