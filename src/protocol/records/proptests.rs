//! Property tests: random batches round-trip; random corruption and
//! truncation never panic.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::protocol::compression::Compression;

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from))
}

fn header() -> impl Strategy<Value = Header> {
    (proptest::collection::vec(any::<u8>(), 0..8), opt_bytes()).prop_map(|(k, value)| Header {
        key: Bytes::from(k),
        value,
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<i8>(),
        any::<i64>(),
        any::<i32>(),
        opt_bytes(),
        opt_bytes(),
        proptest::collection::vec(header(), 0..4),
    )
        .prop_map(
            |(attributes, timestamp_delta, offset_delta, key, value, headers)| Record {
                attributes,
                timestamp_delta,
                offset_delta,
                key,
                value,
                headers,
            },
        )
}

prop_compose! {
    fn batch()(
        base_offset in any::<i64>(),
        base_timestamp in any::<i64>(),
        bits in 0u8..16,
        partition_leader_epoch in any::<i32>(),
        producer_id in any::<i64>(),
        producer_epoch in any::<i16>(),
        base_sequence in any::<i32>(),
        records in proptest::collection::vec(record(), 0..8),
    ) -> RecordBatch {
        let mut b = RecordBatch::new(base_offset, base_timestamp);
        b.timestamp_type = TimestampType::from_bit(bits & 1 != 0);
        b.is_transactional = bits & 2 != 0;
        b.is_control = bits & 4 != 0;
        b.has_delete_horizon = bits & 8 != 0;
        b.partition_leader_epoch = partition_leader_epoch;
        b.producer_id = producer_id;
        b.producer_epoch = producer_epoch;
        b.base_sequence = base_sequence;
        b.records = records;
        b
    }
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn batches_roundtrip(b in batch(), codec in codec()) {
        let bytes = b.encode_to_vec(&EncodeOptions::compressed(codec)).unwrap();
        let mut input = Bytes::from(bytes);
        let d = RecordBatch::decode(&mut input, &DecodeOptions::default()).unwrap();
        prop_assert!(input.is_empty());
        prop_assert_eq!(d.compression, codec);
        prop_assert_eq!(d.last_offset_delta, Some(b.effective_last_offset_delta()));
        prop_assert_eq!(d.max_timestamp, Some(b.effective_max_timestamp()));
        let mut expect = b.clone();
        expect.compression = codec;
        expect.last_offset_delta = d.last_offset_delta;
        expect.max_timestamp = d.max_timestamp;
        prop_assert_eq!(d, expect);
    }

    #[test]
    fn corruption_never_panics(
        batches in proptest::collection::vec((batch(), codec()), 1..3),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        verify in any::<bool>(),
    ) {
        let mut data = Vec::new();
        for (b, c) in &batches {
            b.encode(&mut data, &EncodeOptions::compressed(*c)).unwrap();
        }
        for (at, x) in flips {
            let n = data.len();
            data[at % n] ^= x;
        }
        let cut = cut % (data.len() + 1);
        data.truncate(cut);
        let opts = DecodeOptions::default().with_verify_crc(verify);
        let bytes = Bytes::from(data);
        let _ = decode_record_set(bytes.clone(), &opts);
        let _ = RecordBatch::decode(&mut bytes.clone(), &opts);
        let _ = LegacyBatch::decode(&mut bytes.clone(), &opts);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let opts = DecodeOptions::default().with_verify_crc(false);
        let bytes = Bytes::from(data);
        let _ = decode_record_set(bytes.clone(), &opts);
        let _ = RecordBatch::decode(&mut bytes.clone(), &opts);
        let _ = LegacyBatch::decode(&mut bytes.clone(), &opts);
    }
}

fn legacy_messages(magic: LegacyMagic) -> impl Strategy<Value = Vec<LegacyMessage>> {
    (
        0i64..1 << 40,
        proptest::collection::vec((1i64..4, any::<i64>(), opt_bytes(), opt_bytes()), 1..6),
    )
        .prop_map(move |(start, parts)| {
            let mut offset = start;
            parts
                .into_iter()
                .map(|(gap, ts, key, value)| {
                    offset += gap;
                    LegacyMessage {
                        offset,
                        timestamp: (magic == LegacyMagic::V1).then_some(ts),
                        key,
                        value,
                    }
                })
                .collect()
        })
}

fn legacy_codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
    ]
}

/// Encoded top-level entries of a record set: a v2 batch, or a legacy set
/// (one entry per plain message, or one compressed wrapper).
fn entries() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        (batch(), codec())
            .prop_map(|(b, c)| vec![b.encode_to_vec(&EncodeOptions::compressed(c)).unwrap()]),
        (legacy_messages(LegacyMagic::V0), legacy_codec()).prop_map(|(m, c)| legacy_entries(
            &m,
            LegacyMagic::V0,
            c
        )),
        (legacy_messages(LegacyMagic::V1), legacy_codec()).prop_map(|(m, c)| legacy_entries(
            &m,
            LegacyMagic::V1,
            c
        )),
    ]
}

fn legacy_entries(m: &[LegacyMessage], magic: LegacyMagic, c: Compression) -> Vec<Vec<u8>> {
    let encode = |m: &[LegacyMessage]| {
        let mut out = Vec::new();
        let opts = EncodeOptions::compressed(c);
        encode_message_set(m, magic, TimestampType::CreateTime, &opts, &mut out).unwrap();
        out
    };
    if c == Compression::None {
        m.chunks(1).map(encode).collect()
    } else {
        vec![encode(m)]
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn legacy_sets_roundtrip(
        v1 in any::<bool>(),
        m0 in legacy_messages(LegacyMagic::V0),
        m1 in legacy_messages(LegacyMagic::V1),
        codec in legacy_codec(),
        log_append in any::<bool>(),
    ) {
        let (magic, ms) = if v1 { (LegacyMagic::V1, m1) } else { (LegacyMagic::V0, m0) };
        let tt = TimestampType::from_bit(log_append);
        let mut out = Vec::new();
        encode_message_set(&ms, magic, tt, &EncodeOptions::compressed(codec), &mut out).unwrap();
        let set = decode_record_set(Bytes::from(out), &DecodeOptions::default()).unwrap();
        prop_assert!(!set.is_truncated());
        let mut got = Vec::new();
        for b in set.batches {
            let Batch::Legacy(b) = b else { panic!("not legacy") };
            prop_assert_eq!(b.magic, magic);
            prop_assert_eq!(b.compression, codec);
            got.extend(b.messages);
        }
        if v1 && log_append && codec != Compression::None {
            // The wrapper's time replaces the inner ones.
            let max = ms.iter().filter_map(|m| m.timestamp).max();
            prop_assert!(got.iter().all(|m| m.timestamp == max));
            for m in &mut got {
                m.timestamp = None;
            }
            let stripped: Vec<_> = ms.iter().cloned().map(|mut m| { m.timestamp = None; m }).collect();
            prop_assert_eq!(got, stripped);
        } else {
            prop_assert_eq!(got, ms);
        }
    }

    #[test]
    fn any_cut_of_a_record_set_is_a_clean_truncation(
        groups in proptest::collection::vec(entries(), 1..4),
        cut in any::<usize>(),
    ) {
        let entries: Vec<Vec<u8>> = groups.into_iter().flatten().collect();
        let data: Vec<u8> = entries.concat();
        let mut data = data;
        let cut = cut % (data.len() + 1);
        data.truncate(cut);
        let set = decode_record_set(Bytes::from(data), &DecodeOptions::default()).unwrap();
        let (mut whole, mut used) = (0, 0);
        for e in &entries {
            if used + e.len() > cut {
                break;
            }
            used += e.len();
            whole += 1;
        }
        prop_assert_eq!(set.truncated_bytes, cut - used);
        prop_assert_eq!(set.batches.len(), whole);
    }
}

/// A rough throughput check; run with
/// `cargo test --release --lib records::proptests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let mut batch = RecordBatch::new(0, 1_700_000_000_000);
    for i in 0..1000 {
        let mut r = Record::new(
            Some(Bytes::from(format!("key-{i:06}"))),
            Some(Bytes::from(vec![b'v'; 100])),
        )
        .with_offset_delta(i)
        .with_timestamp_delta(i64::from(i));
        if i % 4 == 0 {
            r = r.with_header(Header::new("trace-id", "0123456789abcdef"));
        }
        batch.records.push(r);
    }
    let opts = EncodeOptions::default();
    let bytes = Bytes::from(batch.encode_to_vec(&opts).unwrap());
    let rounds = 2000;
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        let d = RecordBatch::decode(&mut bytes.clone(), &DecodeOptions::default()).unwrap();
        n += d.records.len();
    }
    let dt = t.elapsed();
    println!(
        "decode: {:.1} ns/record, {:.0} MB/s",
        dt.as_nanos() as f64 / n as f64,
        (bytes.len() * rounds) as f64 / dt.as_secs_f64() / 1e6
    );
    let no_crc = DecodeOptions::default().with_verify_crc(false);
    let t = Instant::now();
    for _ in 0..rounds {
        let d = RecordBatch::decode(&mut bytes.clone(), &no_crc).unwrap();
        std::hint::black_box(&d);
    }
    println!(
        "decode without CRC check: {:.1} ns/record",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut out = Vec::with_capacity(bytes.len());
    let t = Instant::now();
    for _ in 0..rounds {
        out.clear();
        batch.encode(&mut out, &opts).unwrap();
    }
    let dt = t.elapsed();
    println!(
        "encode: {:.1} ns/record, {:.0} MB/s",
        dt.as_nanos() as f64 / (1000 * rounds) as f64,
        (bytes.len() * rounds) as f64 / dt.as_secs_f64() / 1e6
    );
}
