//! RecordBatch v2 encode and decode: 1,000 records with 10-byte keys and
//! 100-byte values, for compression none, lz4 and zstd, klamm and
//! kafka-protocol side by side in one group per (operation, codec).
//!
//! Throughput is in bytes of the *uncompressed* encoded batch for every
//! codec, so the figures of one codec compare directly across libraries.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use klamm::protocol::compression::Compression;
use klamm::protocol::records::{DecodeOptions, EncodeOptions, RecordBatch};
use klamm_benches::{BASE_OFFSET, klamm_batch, kp_compression, kp_records, payloads};

const N: usize = 1000;
const CODECS: [(Compression, &str); 3] = [
    (Compression::None, "none"),
    (Compression::Lz4, "lz4"),
    (Compression::Zstd, "zstd"),
];

fn kp_opts(c: Compression) -> RecordEncodeOptions {
    RecordEncodeOptions {
        version: 2,
        compression: kp_compression(c),
    }
}

fn bench_encode(c: &mut Criterion) {
    let data = payloads(N, 42);
    let batch = klamm_batch(BASE_OFFSET, &data);
    let kp = kp_records(BASE_OFFSET, &data);
    let plain_len = batch
        .encode_to_vec(&EncodeOptions::default())
        .unwrap()
        .len();

    for (codec, name) in CODECS {
        let opts = EncodeOptions::compressed(codec);
        let kopts = kp_opts(codec);

        // Check both produce a batch the other library decodes to the same
        // 1,000 records (and, uncompressed, the very same bytes).
        let mut a = BytesMut::new();
        batch.encode(&mut a, &opts).unwrap();
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(&mut b, kp.iter(), &kopts).unwrap();
        if codec == Compression::None {
            assert_eq!(a, b, "uncompressed batches differ");
        }
        let from_kp =
            RecordBatch::decode(&mut b.clone().freeze(), &DecodeOptions::default()).unwrap();
        assert_eq!(from_kp.records, batch.records);
        let from_klamm = RecordBatchDecoder::decode(&mut a.clone().freeze()).unwrap();
        assert_eq!(from_klamm.records, kp);
        eprintln!(
            "encode {name}: klamm {} bytes, kafka-protocol {} bytes (uncompressed {plain_len})",
            a.len(),
            b.len()
        );

        let mut g = c.benchmark_group(format!("batch_encode/{name}"));
        g.throughput(Throughput::Bytes(plain_len as u64));
        let mut buf = BytesMut::with_capacity(plain_len * 2);
        g.bench_function("klamm", |bch| {
            bch.iter(|| {
                buf.clear();
                black_box(&batch).encode(&mut buf, &opts).unwrap();
                black_box(buf.len())
            })
        });
        let mut buf = BytesMut::with_capacity(plain_len * 2);
        g.bench_function("kafka-protocol", |bch| {
            bch.iter(|| {
                buf.clear();
                RecordBatchEncoder::encode(&mut buf, black_box(&kp).iter(), &kopts).unwrap();
                black_box(buf.len())
            })
        });
        g.finish();
    }
}

fn bench_decode(c: &mut Criterion) {
    let data = payloads(N, 42);
    let batch = klamm_batch(BASE_OFFSET, &data);
    let plain_len = batch
        .encode_to_vec(&EncodeOptions::default())
        .unwrap()
        .len();

    for (codec, name) in CODECS {
        // The same wire bytes for both decoders (encoded by klamm; the
        // encode bench checks kafka-protocol decodes them identically).
        let wire: Bytes = batch
            .encode_to_vec(&EncodeOptions::compressed(codec))
            .unwrap()
            .into();
        let opts = DecodeOptions::default();
        let nocrc = DecodeOptions::default().with_verify_crc(false);
        let k = RecordBatch::decode(&mut wire.clone(), &opts).unwrap();
        let p = RecordBatchDecoder::decode(&mut wire.clone()).unwrap();
        assert_eq!(k.records.len(), N);
        assert_eq!(p.records.len(), N);
        // kafka-protocol always verifies the CRC: a flipped byte must fail.
        let mut bad = wire.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(RecordBatchDecoder::decode(&mut Bytes::from(bad.clone())).is_err());
        assert!(RecordBatch::decode(&mut Bytes::from(bad), &opts).is_err());

        let mut g = c.benchmark_group(format!("batch_decode/{name}"));
        g.throughput(Throughput::Bytes(plain_len as u64));
        g.bench_function("klamm", |bch| {
            bch.iter(|| {
                let b = RecordBatch::decode(&mut black_box(&wire).clone(), &opts).unwrap();
                black_box(b.records.len())
            })
        });
        g.bench_function("kafka-protocol", |bch| {
            bch.iter(|| {
                let s = RecordBatchDecoder::decode(&mut black_box(&wire).clone()).unwrap();
                black_box(s.records.len())
            })
        });
        // Not like-for-like (kafka-protocol always checks the CRC): shows
        // what the CRC costs klamm.
        g.bench_function("klamm_no_crc", |bch| {
            bch.iter(|| {
                let b = RecordBatch::decode(&mut black_box(&wire).clone(), &nocrc).unwrap();
                black_box(b.records.len())
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_encode, bench_decode
}
criterion_main!(benches);
