use bytes::{Bytes, BytesMut};

use super::*;
use crate::protocol::records::Header;

fn b(s: &'static [u8]) -> Option<Bytes> {
    Some(Bytes::from_static(s))
}

/// One uncompressed batch, derived by hand from RECORD_FORMAT.md.
///
/// Batch: baseOffset 5, no leader epoch (-1), attributes 0 (no
/// compression, create time, not transactional, not control), one record
/// at offset delta 0 / timestamp delta 0, base and max timestamp 1000, no
/// producer (id -1, epoch -1, sequence -1).
/// Record: key "k", value "hi", one header "h" with a null value.
fn golden() -> Vec<u8> {
    let mut g: Vec<u8> = Vec::new();
    // baseOffset int64 = 5
    g.extend([0, 0, 0, 0, 0, 0, 0, 5]);
    // batchLength int32 = 49 (header after this field: 4+1+4+2+4+8+8+8+2+4+4)
    //   + 13 (the record, below) = 62 = 0x3e
    g.extend([0, 0, 0, 0x3e]);
    // partitionLeaderEpoch int32 = -1
    g.extend([0xff, 0xff, 0xff, 0xff]);
    // magic int8 = 2
    g.push(2);
    // crc uint32: placeholder, computed below over bytes 21.. (attributes
    // to the end)
    g.extend([0, 0, 0, 0]);
    // attributes int16 = 0
    g.extend([0, 0]);
    // lastOffsetDelta int32 = 0 (one record, delta 0)
    g.extend([0, 0, 0, 0]);
    // baseTimestamp int64 = 1000 = 0x3e8
    g.extend([0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
    // maxTimestamp int64 = 1000 (base + the only delta, 0)
    g.extend([0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
    // producerId int64 = -1
    g.extend([0xff; 8]);
    // producerEpoch int16 = -1
    g.extend([0xff, 0xff]);
    // baseSequence int32 = -1
    g.extend([0xff, 0xff, 0xff, 0xff]);
    // recordsCount int32 = 1
    g.extend([0, 0, 0, 1]);
    assert_eq!(g.len(), 61);
    // Record. Varints are zig-zag: n >= 0 encodes as 2n, -1 as 1.
    //   length varint = 12 (body below) -> 24 = 0x18
    g.push(0x18);
    //   attributes int8 = 0
    g.push(0);
    //   timestampDelta varlong = 0, offsetDelta varint = 0
    g.extend([0, 0]);
    //   keyLength varint = 1 -> 0x02, key "k" = 0x6b
    g.extend([0x02, b'k']);
    //   valueLength varint = 2 -> 0x04, value "hi" = 0x68 0x69
    g.extend([0x04, b'h', b'i']);
    //   header count varint = 1 -> 0x02
    g.push(0x02);
    //   headerKeyLength varint = 1 -> 0x02, key "h" = 0x68
    g.extend([0x02, b'h']);
    //   headerValueLength varint = -1 (null) -> 0x01
    g.push(0x01);
    assert_eq!(g.len(), 74);
    // CRC-32C (Castagnoli) over attributes..end = bytes 21..74.
    let crc = crc32c::crc32c(&g[21..]);
    // The same value from an independent bitwise CRC-32C (reflected
    // polynomial 0x82F63B78) over those bytes.
    assert_eq!(crc, 0xfa14_9ab3);
    g[17..21].copy_from_slice(&crc.to_be_bytes());
    g
}

fn golden_batch() -> RecordBatch {
    let mut batch = RecordBatch::new(5, 1000);
    batch
        .records
        .push(Record::new(b(b"k"), b(b"hi")).with_header(Header::null("h")));
    batch
}

#[test]
fn crc32c_is_castagnoli() {
    // The standard CRC-32C check value.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn golden_batch_encodes_and_decodes() {
    let g = golden();
    let encoded = golden_batch()
        .encode_to_vec(&EncodeOptions::default())
        .unwrap();
    assert_eq!(encoded, g);
    let mut input = Bytes::from(g);
    let d = RecordBatch::decode(&mut input, &DecodeOptions::default()).unwrap();
    assert!(input.is_empty());
    assert_eq!(d.base_offset, 5);
    assert_eq!(d.partition_leader_epoch, -1);
    assert_eq!(d.last_offset_delta, Some(0));
    assert_eq!(d.max_timestamp, Some(1000));
    assert_eq!(
        (d.producer_id, d.producer_epoch, d.base_sequence),
        (-1, -1, -1)
    );
    assert_eq!(d.records, golden_batch().records);
    let r = d.iter().next().unwrap();
    assert_eq!((r.offset, r.timestamp), (5, 1000));
}

#[test]
fn every_attribute_combination_roundtrips() {
    for bits in 0..16u8 {
        let mut batch = RecordBatch::new(1 << 40, 1_600_000_000_000);
        batch.timestamp_type = TimestampType::from_bit(bits & 1 != 0);
        batch.is_transactional = bits & 2 != 0;
        batch.is_control = bits & 4 != 0;
        batch.has_delete_horizon = bits & 8 != 0;
        batch.partition_leader_epoch = 9;
        batch.producer_id = 77;
        batch.producer_epoch = 2;
        batch.base_sequence = 10;
        for i in 0..3 {
            batch.records.push(
                Record::new(None, b(b"value"))
                    .with_offset_delta(i * 2)
                    .with_timestamp_delta(i64::from(i) * 10),
            );
        }
        let bytes = batch.encode_to_vec(&EncodeOptions::default()).unwrap();
        let attrs = i16::from_be_bytes([bytes[21], bytes[22]]);
        assert_eq!(attrs, i16::from(bits) << 3, "bits {bits:04b}");
        let d = RecordBatch::decode(&mut Bytes::from(bytes), &DecodeOptions::default()).unwrap();
        assert_eq!(d.timestamp_type, batch.timestamp_type);
        assert_eq!(d.is_transactional, batch.is_transactional);
        assert_eq!(d.is_control, batch.is_control);
        assert_eq!(d.has_delete_horizon, batch.has_delete_horizon);
        assert_eq!(d.last_offset_delta, Some(4));
        assert_eq!(d.max_timestamp, Some(1_600_000_000_020));
        assert_eq!(
            (d.producer_id, d.producer_epoch, d.base_sequence),
            (77, 2, 10)
        );
        assert_eq!(d.records, batch.records);
        assert_eq!(d.last_offset(), (1 << 40) + 4);
        assert_eq!(
            d.delete_horizon_ms(),
            batch.has_delete_horizon.then_some(1_600_000_000_000)
        );
        let ts: Vec<_> = d.iter().map(|r| r.timestamp).collect();
        if batch.timestamp_type == TimestampType::LogAppendTime {
            assert_eq!(ts, vec![1_600_000_000_020; 3]);
        } else {
            assert_eq!(
                ts,
                vec![1_600_000_000_000, 1_600_000_000_010, 1_600_000_000_020]
            );
        }
    }
}

#[test]
fn explicit_and_empty_batch_fields() {
    let mut batch = RecordBatch::new(10, 50);
    let d = RecordBatch::decode(
        &mut Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap()),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!((d.last_offset_delta, d.max_timestamp), (Some(0), Some(-1)));
    assert!(d.records.is_empty());
    // Compaction leaves batches whose last offset delta outruns the records.
    batch.last_offset_delta = Some(9);
    batch.max_timestamp = Some(99);
    batch.records.push(Record::default());
    let d = RecordBatch::decode(
        &mut Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap()),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!((d.last_offset_delta, d.max_timestamp), (Some(9), Some(99)));
    assert_eq!(d.next_offset(), 20);
}

#[test]
fn duplicate_header_keys_keep_their_order() {
    let mut batch = RecordBatch::new(0, 0);
    batch.records.push(
        Record::new(None, None)
            .with_header(Header::new("x", "1"))
            .with_header(Header::new("y", "2"))
            .with_header(Header::new("x", "3"))
            .with_header(Header::null("x")),
    );
    let d = RecordBatch::decode(
        &mut Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap()),
        &DecodeOptions::default(),
    )
    .unwrap();
    let h = &d.records[0].headers;
    let got: Vec<_> = h
        .iter()
        .map(|h| (h.key_str().unwrap(), h.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![("x", b(b"1")), ("y", b(b"2")), ("x", b(b"3")), ("x", None)]
    );
}

#[test]
fn decoding_is_zero_copy() {
    let mut batch = RecordBatch::new(0, 0);
    batch
        .records
        .push(Record::new(b(b"key-1"), b(b"value-1")).with_header(Header::new("hk", "hv")));
    batch
        .records
        .push(Record::new(b(b"key-2"), b(b"value-2")).with_offset_delta(1));
    let input = Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap());
    let range = input.as_ptr_range();
    let inside = |x: &Bytes| {
        let p = x.as_ptr_range();
        range.start <= p.start && p.end <= range.end
    };
    let d = RecordBatch::decode(&mut input.clone(), &DecodeOptions::default()).unwrap();
    for r in &d.records {
        assert!(inside(r.key.as_ref().unwrap()));
        assert!(inside(r.value.as_ref().unwrap()));
        for h in &r.headers {
            assert!(inside(&h.key));
            assert!(inside(h.value.as_ref().unwrap()));
        }
    }
    assert!(d.records[1].headers.capacity() == 0);
}

#[test]
fn encodes_into_bytes_mut_after_existing_data() {
    let mut out = BytesMut::from(&b"prefix"[..]);
    golden_batch()
        .encode(&mut out, &EncodeOptions::default())
        .unwrap();
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], &golden()[..]);
}

#[test]
fn crc_mismatch_is_detected_and_can_be_skipped() {
    let mut g = golden();
    // Flip a bit of the value "hi" (byte 68 = 'h' -> 'i').
    g[68] ^= 0x01;
    let e =
        RecordBatch::decode(&mut Bytes::from(g.clone()), &DecodeOptions::default()).unwrap_err();
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::CrcMismatch {
            stored: 0xfa14_9ab3,
            ..
        }
    ));
    assert_eq!(e.path().collect::<Vec<_>>(), vec!["RecordBatch", "crc"]);
    let opts = DecodeOptions::default().with_verify_crc(false);
    let d = RecordBatch::decode(&mut Bytes::from(g), &opts).unwrap();
    assert_eq!(d.records[0].value.as_deref(), Some(&b"ii"[..]));
}

fn decode_err(bytes: Vec<u8>) -> DecodeError {
    RecordBatch::decode(
        &mut Bytes::from(bytes),
        &DecodeOptions::default().with_verify_crc(false),
    )
    .unwrap_err()
}

#[test]
fn hostile_headers_are_typed_errors() {
    // Batch length smaller than the header.
    let mut g = golden();
    g[8..12].copy_from_slice(&48i32.to_be_bytes());
    let e = decode_err(g);
    assert!(matches!(e.kind(), DecodeErrorKind::Invalid(_)));
    assert_eq!(
        e.path().collect::<Vec<_>>(),
        vec!["RecordBatch", "batchLength"]
    );
    // Negative batch length.
    let mut g = golden();
    g[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(decode_err(g).kind(), DecodeErrorKind::Invalid(_)));
    // Batch length past the input.
    let mut g = golden();
    g[8..12].copy_from_slice(&63i32.to_be_bytes());
    assert!(matches!(
        decode_err(g).kind(),
        DecodeErrorKind::UnexpectedEof {
            needed: 75,
            remaining: 74
        }
    ));
    // Wrong magic.
    let mut g = golden();
    g[16] = 1;
    assert_eq!(decode_err(g).path().last(), Some("magic"));
    // Unknown codec 7.
    let mut g = golden();
    g[22] = 7;
    assert_eq!(decode_err(g).path().last(), Some("attributes"));
    // Too short for even the length.
    assert!(matches!(
        decode_err(vec![0; 11]).kind(),
        DecodeErrorKind::UnexpectedEof { needed: 12, .. }
    ));
}

#[test]
fn record_count_mismatches_are_errors() {
    // More records promised than present: a huge count must not allocate.
    for count in [2i32, i32::MAX] {
        let mut g = golden();
        g[57..61].copy_from_slice(&count.to_be_bytes());
        let e = decode_err(g);
        assert!(matches!(e.kind(), DecodeErrorKind::Invalid(_)), "{e}");
        assert_eq!(
            e.path().collect::<Vec<_>>(),
            vec!["RecordBatch", "recordsCount"]
        );
    }
    // Fewer: bytes left over.
    let mut g = golden();
    g[57..61].copy_from_slice(&0i32.to_be_bytes());
    assert_eq!(decode_err(g).kind(), &DecodeErrorKind::TrailingBytes(13));
    // Negative.
    let mut g = golden();
    g[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(decode_err(g).kind(), &DecodeErrorKind::NegativeLength(-1));
}

#[test]
fn record_length_overrunning_the_batch_is_an_error() {
    let mut g = golden();
    g[61] = 0x1a; // record length 13, one more than is there
    let e = decode_err(g);
    assert!(matches!(e.kind(), DecodeErrorKind::UnexpectedEof { .. }));
    assert_eq!(
        e.path().collect::<Vec<_>>(),
        vec!["RecordBatch", "Record", "length"]
    );
    // Key length -3 inside the record.
    let mut g = golden();
    g[65] = 0x05;
    let e = decode_err(g);
    assert_eq!(e.kind(), &DecodeErrorKind::NegativeLength(-3));
    assert_eq!(
        e.to_string().split(':').next(),
        Some("RecordBatch.Record.key")
    );
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn many_records(n: i32) -> RecordBatch {
    let mut batch = RecordBatch::new(1000, 1_700_000_000_000);
    for i in 0..n {
        batch.records.push(
            Record::new(
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value {i} value {i} value {i}"))),
            )
            .with_offset_delta(i)
            .with_timestamp_delta(i64::from(i))
            .with_header(Header::new("h", format!("{i}")))
            .with_header(Header::new("h", "again")),
        );
    }
    batch
}

#[test]
fn every_codec_and_attribute_combination_roundtrips() {
    for codec in CODECS {
        for bits in [0u8, 0b0101, 0b1010, 0b1111] {
            let mut batch = many_records(20);
            batch.timestamp_type = TimestampType::from_bit(bits & 1 != 0);
            batch.is_transactional = bits & 2 != 0;
            batch.is_control = bits & 4 != 0;
            batch.has_delete_horizon = bits & 8 != 0;
            let bytes = batch
                .encode_to_vec(&EncodeOptions::compressed(codec))
                .unwrap();
            let attrs = i16::from_be_bytes([bytes[21], bytes[22]]);
            assert_eq!(attrs & 7, i16::from(codec.code()));
            assert_eq!(attrs >> 3, i16::from(bits));
            let d =
                RecordBatch::decode(&mut Bytes::from(bytes), &DecodeOptions::default()).unwrap();
            assert_eq!(d.compression, codec);
            assert_eq!(d.records, batch.records, "{codec:?} {bits:04b}");
            assert_eq!(d.last_offset_delta, Some(19));
        }
    }
}

#[test]
fn compression_levels_are_passed_through() {
    for (codec, level) in [
        (Compression::Gzip, 9),
        (Compression::Zstd, 3),
        (Compression::Lz4, 1),
    ] {
        let batch = many_records(50);
        let opts = EncodeOptions::compressed(codec).with_level(level);
        let mut out = BytesMut::new();
        batch.encode(&mut out, &opts).unwrap();
        let plain = batch.encode_to_vec(&EncodeOptions::default()).unwrap();
        assert!(out.len() < plain.len(), "{codec:?} did not shrink");
        let d = RecordBatch::decode(&mut out.freeze(), &DecodeOptions::default()).unwrap();
        assert_eq!(d.records, batch.records);
    }
}

#[test]
fn compressed_records_are_slices_of_one_buffer() {
    let batch = many_records(10);
    let input = Bytes::from(
        batch
            .encode_to_vec(&EncodeOptions::compressed(Compression::Gzip))
            .unwrap(),
    );
    let d = RecordBatch::decode(&mut input.clone(), &DecodeOptions::default()).unwrap();
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    for r in &d.records {
        for part in [r.key.as_ref().unwrap(), r.value.as_ref().unwrap()] {
            let p = part.as_ptr_range();
            lo = lo.min(p.start as usize);
            hi = hi.max(p.end as usize);
        }
    }
    // Every slice lies within one span no larger than the uncompressed
    // records section.
    let plain = batch.encode_to_vec(&EncodeOptions::default()).unwrap();
    assert!(hi - lo <= plain.len() - BATCH_HEADER_SIZE);
}

#[test]
fn decompressed_size_cap_is_enforced() {
    let batch = many_records(200);
    let bytes = batch
        .encode_to_vec(&EncodeOptions::compressed(Compression::Zstd))
        .unwrap();
    let opts = DecodeOptions::default().with_max_decompressed_size(1000);
    let e = RecordBatch::decode(&mut Bytes::from(bytes), &opts).unwrap_err();
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::DecompressedTooLarge { .. } | DecodeErrorKind::Decompression(_)
    ));
    assert_eq!(
        e.path().take(2).collect::<Vec<_>>(),
        vec!["RecordBatch", "records"]
    );
}

#[test]
fn records_past_the_room_stop_at_the_first_record_over_it() {
    // Three records of 11 bytes each: a length, then attributes, two
    // deltas, a null key, a 4-byte value with its length and a header
    // count.
    let records = vec![Record::new(None, b(b"abcd")); 3];
    let mut out = Vec::new();
    write_records_within(&records, &mut out, 33).unwrap();
    assert_eq!(out.len(), 33, "the control: all three fit in 33 bytes");
    let mut out = Vec::new();
    let err = write_records_within(&records, &mut out, 11).unwrap_err();
    let EncodeError::TooLong {
        what,
        length,
        limit,
    } = err
    else {
        panic!("expected TooLong, got {err:?}");
    };
    assert_eq!(what, "record batch");
    // Stopped after the second record, the first past the room: 22 bytes
    // of records plus the 49 header bytes the length field covers, over
    // 11 + 49; the third was never written.
    assert_eq!((length, limit), (22 + 49, 11 + 49));
    assert_eq!(out.len(), 22);
}

#[test]
fn only_batches_of_small_records_are_copied() {
    let opts = DecodeOptions::default().with_copy_uncompressed_batches(true);
    // Whether the first record's value was left in the wire buffer.
    let in_place = |value_len: usize, records: usize, opts: &DecodeOptions| {
        let mut batch = RecordBatch::new(0, 0);
        for _ in 0..records {
            batch
                .records
                .push(Record::new(None, Some(Bytes::from(vec![7u8; value_len]))));
        }
        let wire = Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap());
        let decoded = RecordBatch::decode(&mut wire.clone(), opts).unwrap();
        assert_eq!(decoded.records.len(), records);
        let value = decoded.records[0].value.clone().unwrap();
        assert_eq!(value.len(), value_len);
        wire.as_ptr_range().contains(&value.as_ptr())
    };
    assert!(!in_place(100, 50, &opts));
    assert!(
        !in_place(1000, 3, &opts),
        "1,000 B and its framing is under 1 KiB"
    );
    assert!(in_place(1100, 3, &opts), "past 1 KiB each, left in place");
    assert!(in_place(10_240, 2, &opts));
    // Control: without the option nothing is copied.
    assert!(in_place(100, 50, &DecodeOptions::default()));
}
