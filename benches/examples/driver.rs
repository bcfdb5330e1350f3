//! A small loop driver for profiling one benchmark case outside criterion
//! (for `perf stat`/`perf record` or `valgrind --tool=callgrind`):
//! `driver <encode|decode> <none|gzip|snappy|lz4|zstd> <klamm|kp> <iterations>`, or
//! `driver metadata <topics> <klamm|kp> <iterations>` for a Metadata v12
//! response of `topics` × 100 partitions.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use klamm::protocol::compression::Compression;
use klamm::protocol::records::{DecodeOptions, EncodeOptions, RecordBatch};
use klamm_benches::{BASE_OFFSET, klamm_batch, kp_compression, kp_records, payloads};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, op, codec, lib, iters] = &args[..] else {
        eprintln!(
            "usage: driver <encode|decode> <none|gzip|snappy|lz4|zstd> <klamm|kp> <iterations>"
        );
        std::process::exit(2);
    };
    if op == "metadata" {
        metadata(codec, lib, iters);
        return;
    }
    let codec = match codec.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => panic!("unknown codec {other}"),
    };
    let iters: usize = iters.parse().expect("iterations");
    let data = payloads(1000, 42);
    let batch = klamm_batch(BASE_OFFSET, &data);
    let kp = kp_records(BASE_OFFSET, &data);
    let opts = EncodeOptions::compressed(codec);
    let kopts = RecordEncodeOptions {
        version: 2,
        compression: kp_compression(codec),
    };
    let wire: Bytes = batch.encode_to_vec(&opts).expect("encode").into();
    let dopts = DecodeOptions::default();
    let mut buf = BytesMut::with_capacity(wire.len() * 4);
    let mut n = 0usize;
    for _ in 0..iters {
        n += match (op.as_str(), lib.as_str()) {
            ("encode", "klamm") => {
                buf.clear();
                black_box(&batch).encode(&mut buf, &opts).expect("encode");
                buf.len()
            }
            ("encode", "kp") => {
                buf.clear();
                RecordBatchEncoder::encode(&mut buf, black_box(&kp).iter(), &kopts)
                    .expect("encode");
                buf.len()
            }
            ("decode", "klamm") => RecordBatch::decode(&mut black_box(&wire).clone(), &dopts)
                .expect("decode")
                .records
                .len(),
            ("decode", "kp") => RecordBatchDecoder::decode(&mut black_box(&wire).clone())
                .expect("decode")
                .records
                .len(),
            _ => panic!("unknown op/lib"),
        };
    }
    println!("{n}");
}

fn metadata(topics: &str, lib: &str, iters: &str) {
    use kafka_protocol::protocol::Decodable;
    use klamm::protocol::codec::Message;
    const VERSION: i16 = 12;
    let topics: usize = topics.parse().expect("topics");
    let iters: usize = iters.parse().expect("iterations");
    let wire = klamm_benches::metadata_response_bytes(topics, 100, VERSION);
    let mut n = 0usize;
    for _ in 0..iters {
        n += match lib {
            "klamm" => {
                klamm::protocol::messages::MetadataResponse::decode(
                    &mut black_box(&wire).clone(),
                    VERSION,
                )
                .expect("decode")
                .topics
                .len()
            }
            "kp" => kafka_protocol::messages::MetadataResponse::decode(
                &mut black_box(&wire).clone(),
                VERSION,
            )
            .expect("decode")
            .topics
            .len(),
            _ => panic!("unknown lib"),
        };
    }
    println!("{n}");
}
