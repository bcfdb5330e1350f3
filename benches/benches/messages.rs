//! The message codecs of the hot paths, klamm alone (for before/after
//! comparisons of codec changes; the records inside are opaque bytes here):
//! - ProduceRequest v9 encode: 1 topic, 16 partitions of 16 KiB records;
//! - ProduceResponse v10 decode: the answer to it;
//! - FetchRequest v12 encode: 100 partitions of one topic;
//! - FetchResponse v12 decode: 100 partitions with 1 KiB of records each.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use klamm::protocol::codec::Message;
use klamm::protocol::messages::{FetchResponse, ProduceResponse};
use klamm_benches::messages::{
    FETCH_VERSION, PRODUCE_RESPONSE_VERSION, PRODUCE_VERSION, fetch_request, fetch_response,
    produce_request, produce_response,
};

fn bench_messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("messages");
    let req = produce_request();
    let mut buf = BytesMut::with_capacity(req.encoded_len(PRODUCE_VERSION));
    g.bench_function("produce_request_encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req)
                .encode(&mut buf, PRODUCE_VERSION)
                .expect("encodes");
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
            black_box(&req)
                .encode(&mut buf, FETCH_VERSION)
                .expect("encodes");
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
        b.iter(|| {
            FetchResponse::decode(&mut black_box(&wire).clone(), FETCH_VERSION).expect("decodes")
        })
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
