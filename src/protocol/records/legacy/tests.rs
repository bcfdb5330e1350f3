use super::*;

fn b(s: &'static [u8]) -> Option<Bytes> {
    Some(Bytes::from_static(s))
}

/// A magic-0 message at offset 7 with a null key and the value "abc",
/// derived by hand from the legacy layout.
fn golden_v0() -> Vec<u8> {
    let mut g: Vec<u8> = Vec::new();
    // offset int64 = 7
    g.extend([0, 0, 0, 0, 0, 0, 0, 7]);
    // messageSize int32 = crc 4 + magic 1 + attributes 1 + key length 4
    //   + value length 4 + "abc" 3 = 17 = 0x11
    g.extend([0, 0, 0, 0x11]);
    // crc uint32: placeholder, filled below
    g.extend([0, 0, 0, 0]);
    // magic int8 = 0
    g.push(0);
    // attributes int8 = 0 (no compression)
    g.push(0);
    // key: int32 length -1 = null
    g.extend([0xff, 0xff, 0xff, 0xff]);
    // value: int32 length 3, then "abc"
    g.extend([0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(g.len(), 29);
    // CRC-32 (IEEE 802.3, as zlib: reflected polynomial 0xEDB88320) over
    // magic..end, bytes 16..29. Python's zlib.crc32 over
    // 00 00 ff ff ff ff 00 00 00 03 61 62 63 gives 0x43dc3faf.
    let crc = crc32fast::hash(&g[16..]);
    assert_eq!(crc, 0x43dc_3faf);
    g[12..16].copy_from_slice(&crc.to_be_bytes());
    g
}

fn decode_all(bytes: Vec<u8>) -> Vec<LegacyBatch> {
    let mut input = Bytes::from(bytes);
    let mut out = Vec::new();
    while !input.is_empty() {
        out.push(LegacyBatch::decode(&mut input, &DecodeOptions::default()).unwrap());
    }
    out
}

fn msgs(magic: LegacyMagic) -> Vec<LegacyMessage> {
    let ts = |t| (magic == LegacyMagic::V1).then_some(t);
    vec![
        LegacyMessage {
            offset: 100,
            timestamp: ts(1_000),
            key: b(b"a"),
            value: b(b"first"),
        },
        LegacyMessage {
            offset: 101,
            timestamp: ts(3_000),
            key: None,
            value: None,
        },
        LegacyMessage {
            offset: 105,
            timestamp: ts(2_000),
            key: b(b""),
            value: b(b"third"),
        },
    ]
}

#[test]
fn crc32_is_ieee() {
    assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
}

#[test]
fn golden_v0_message() {
    let g = golden_v0();
    let m = LegacyMessage {
        offset: 7,
        timestamp: None,
        key: None,
        value: b(b"abc"),
    };
    let mut out = Vec::new();
    encode_message_set(
        std::slice::from_ref(&m),
        LegacyMagic::V0,
        TimestampType::CreateTime,
        &EncodeOptions::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, g);
    let got = decode_all(g);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].magic, LegacyMagic::V0);
    assert_eq!(got[0].compression, Compression::None);
    assert_eq!(got[0].messages, vec![m]);
}

#[test]
fn uncompressed_v0_and_v1_roundtrip() {
    for magic in [LegacyMagic::V0, LegacyMagic::V1] {
        for tt in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
            let ms = msgs(magic);
            let mut out = Vec::new();
            encode_message_set(&ms, magic, tt, &EncodeOptions::default(), &mut out).unwrap();
            let got = decode_all(out);
            assert_eq!(got.len(), 3);
            let flat: Vec<_> = got.iter().flat_map(|b| b.messages.clone()).collect();
            assert_eq!(flat, ms);
            let want_tt = if magic == LegacyMagic::V1 {
                tt
            } else {
                TimestampType::CreateTime
            };
            assert!(got.iter().all(|b| b.timestamp_type == want_tt));
            assert_eq!(got[2].next_offset(), 106);
        }
    }
}

#[test]
fn empty_set_writes_nothing() {
    let mut out = Vec::new();
    encode_message_set(
        &[],
        LegacyMagic::V1,
        TimestampType::CreateTime,
        &EncodeOptions::default(),
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
}

fn decode_err(bytes: Vec<u8>) -> DecodeError {
    LegacyBatch::decode(&mut Bytes::from(bytes), &DecodeOptions::default()).unwrap_err()
}

#[test]
fn hostile_messages_are_typed_errors() {
    // CRC mismatch.
    let mut g = golden_v0();
    g[28] = b'd';
    let e = decode_err(g.clone());
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::CrcMismatch {
            stored: 0x43dc_3faf,
            ..
        }
    ));
    assert_eq!(
        e.path().collect::<Vec<_>>(),
        vec!["LegacyMessageSet", "Message", "crc"]
    );
    let opts = DecodeOptions::default().with_verify_crc(false);
    let d = LegacyBatch::decode(&mut Bytes::from(g), &opts).unwrap();
    assert_eq!(d.messages[0].value.as_deref(), Some(&b"abd"[..]));
    // Size below the minimum, and negative.
    for size in [13i32, -1] {
        let mut g = golden_v0();
        g[8..12].copy_from_slice(&size.to_be_bytes());
        assert!(matches!(decode_err(g).kind(), DecodeErrorKind::Invalid(_)));
    }
    // Size past the input.
    let mut g = golden_v0();
    g[11] = 0x12;
    assert!(matches!(
        decode_err(g).kind(),
        DecodeErrorKind::UnexpectedEof { .. }
    ));
    // Magic 5.
    let mut g = golden_v0();
    g[16] = 5;
    assert_eq!(decode_err(g).path().last(), Some("magic"));
    // Value length longer than the message (CRC fixed up so it is reached).
    let mut g = golden_v0();
    g[25] = 4;
    let crc = crc32fast::hash(&g[16..]);
    g[12..16].copy_from_slice(&crc.to_be_bytes());
    let e = decode_err(g);
    assert!(matches!(e.kind(), DecodeErrorKind::UnexpectedEof { .. }));
    assert_eq!(e.path().last(), Some("value"));
    // Key length -2.
    let mut g = golden_v0();
    g[21] = 0xfe;
    let crc = crc32fast::hash(&g[16..]);
    g[12..16].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode_err(g).kind(), &DecodeErrorKind::NegativeLength(-2));
    // Value shorter than the message: trailing bytes.
    let mut g = golden_v0();
    g[25] = 2;
    let crc = crc32fast::hash(&g[16..]);
    g[12..16].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode_err(g).kind(), &DecodeErrorKind::TrailingBytes(1));
    // A magic-1 message cut before its timestamp ends.
    let mut g = golden_v0();
    g[16] = 1;
    let crc = crc32fast::hash(&g[16..]);
    g[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode_err(g).kind(),
        DecodeErrorKind::UnexpectedEof { .. }
    ));
}

#[test]
fn zstd_is_refused_for_legacy_encoding() {
    let mut out = vec![1, 2, 3];
    let e = encode_message_set(
        &msgs(LegacyMagic::V1),
        LegacyMagic::V1,
        TimestampType::CreateTime,
        &EncodeOptions::compressed(Compression::Zstd),
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(e, EncodeError::Invalid(_)));
    assert_eq!(out, vec![1, 2, 3]);
}

const LEGACY_CODECS: [Compression; 3] = [Compression::Gzip, Compression::Snappy, Compression::Lz4];

/// Decompresses a wrapper's value and lists the raw inner offsets.
fn raw_inner_offsets(wrapper_entry: &[u8], codec: Compression, magic: LegacyMagic) -> Vec<i64> {
    let value_at = if magic == LegacyMagic::V1 { 34 } else { 26 };
    let plain = compression::decompress(codec, &wrapper_entry[value_at..], 1 << 20).unwrap();
    let mut inner = Bytes::from(plain);
    let mut offsets = Vec::new();
    while !inner.is_empty() {
        offsets.push(
            decode_message(&mut inner, &DecodeOptions::default())
                .unwrap()
                .offset,
        );
    }
    offsets
}

#[test]
fn compressed_wrappers_roundtrip_for_every_codec() {
    for magic in [LegacyMagic::V0, LegacyMagic::V1] {
        for codec in LEGACY_CODECS {
            let ms = msgs(magic);
            let mut out = Vec::new();
            let opts = EncodeOptions::compressed(codec);
            encode_message_set(&ms, magic, TimestampType::CreateTime, &opts, &mut out).unwrap();
            // The wrapper: offset of the last message, null key.
            assert_eq!(&out[..8], &105i64.to_be_bytes());
            assert_eq!(out[17] & 0x07, codec.code() as i8 as u8);
            let inner = raw_inner_offsets(&out, codec, magic);
            match magic {
                // Magic 0: inner offsets absolute.
                LegacyMagic::V0 => assert_eq!(inner, vec![100, 101, 105]),
                // Magic 1 (KIP-31): relative to the first.
                LegacyMagic::V1 => assert_eq!(inner, vec![0, 1, 5]),
            }
            let got = decode_all(out);
            assert_eq!(got.len(), 1, "{magic:?} {codec:?}");
            assert_eq!(got[0].compression, codec);
            assert_eq!(got[0].offset, 105);
            assert_eq!(got[0].messages, ms, "{magic:?} {codec:?}");
            if magic == LegacyMagic::V1 {
                // Wrapper timestamp: the largest inner one.
                assert_eq!(got[0].timestamp, Some(3_000));
            }
        }
    }
}

/// Builds a wrapper message around an already-encoded inner set.
fn wrap(inner: &[u8], offset: i64, magic: LegacyMagic, attributes: i8, ts: Option<i64>) -> Vec<u8> {
    let mut out = Vec::new();
    let codec = Compression::from_code((attributes & 7) as u8).unwrap();
    write_message(
        &mut out,
        offset,
        magic,
        attributes,
        ts,
        None,
        MessageValue::Compressed {
            codec,
            level: None,
            plain: inner,
        },
    )
    .unwrap();
    out
}

fn plain_set(magic: LegacyMagic, offsets: &[i64], ts: &[i64]) -> Vec<u8> {
    let ms: Vec<_> = offsets
        .iter()
        .zip(ts)
        .map(|(&offset, &t)| LegacyMessage {
            offset,
            timestamp: (magic == LegacyMagic::V1).then_some(t),
            key: None,
            value: b(b"x"),
        })
        .collect();
    let mut out = Vec::new();
    encode_message_set(
        &ms,
        magic,
        TimestampType::CreateTime,
        &EncodeOptions::default(),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn v1_relative_offsets_and_log_append_time() {
    // Inner relative offsets 0, 1, 2 under a wrapper at 1000: the absolute
    // offsets are 1000 - 2 + {0, 1, 2}.
    let inner = plain_set(LegacyMagic::V1, &[0, 1, 2], &[5, 6, 7]);
    let got = decode_all(wrap(&inner, 1000, LegacyMagic::V1, 1, Some(7)));
    let offs: Vec<_> = got[0].messages.iter().map(|m| m.offset).collect();
    assert_eq!(offs, vec![998, 999, 1000]);
    let ts: Vec<_> = got[0].messages.iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, vec![Some(5), Some(6), Some(7)]);
    // Log-append time on the wrapper (bit 3): every message takes its time.
    let got = decode_all(wrap(&inner, 1000, LegacyMagic::V1, 1 | 0x08, Some(99)));
    assert_eq!(got[0].timestamp_type, TimestampType::LogAppendTime);
    assert!(got[0].messages.iter().all(|m| m.timestamp == Some(99)));
    // A producer-written wrapper (offset 0, as librdkafka writes it) keeps
    // the relative spacing; the base comes out negative until a broker
    // assigns offsets.
    let got = decode_all(wrap(&inner, 0, LegacyMagic::V1, 1, Some(7)));
    let offs: Vec<_> = got[0].messages.iter().map(|m| m.offset).collect();
    assert_eq!(offs, vec![-2, -1, 0]);
    // Only an overflowing difference is invalid.
    let far = plain_set(LegacyMagic::V1, &[0, 1, -1], &[5, 6, 7]);
    let e = decode_err(wrap(&far, i64::MAX, LegacyMagic::V1, 1, Some(7)));
    assert!(matches!(e.kind(), DecodeErrorKind::Invalid(_)));
    // Magic 0 keeps the inner offsets as they are.
    let inner0 = plain_set(LegacyMagic::V0, &[40, 41], &[0, 0]);
    let got = decode_all(wrap(&inner0, 41, LegacyMagic::V0, 2, None));
    let offs: Vec<_> = got[0].messages.iter().map(|m| m.offset).collect();
    assert_eq!(offs, vec![40, 41]);
}

#[test]
fn nested_and_malformed_wrappers_are_errors() {
    // A wrapper inside a wrapper.
    let inner = plain_set(LegacyMagic::V1, &[0, 1], &[1, 2]);
    let middle = wrap(&inner, 1, LegacyMagic::V1, 1, Some(2));
    let e = decode_err(wrap(&middle, 1, LegacyMagic::V1, 1, Some(2)));
    assert_eq!(e.kind(), &DecodeErrorKind::TooDeep { limit: 1 });
    assert_eq!(
        e.path().collect::<Vec<_>>(),
        vec!["LegacyMessageSet", "Message", "inner"]
    );
    // Inner magic differing from the wrapper's.
    let inner0 = plain_set(LegacyMagic::V0, &[0], &[0]);
    assert!(matches!(
        decode_err(wrap(&inner0, 0, LegacyMagic::V1, 1, Some(0))).kind(),
        DecodeErrorKind::Invalid(_)
    ));
    // No inner messages.
    assert!(matches!(
        decode_err(wrap(&[], 0, LegacyMagic::V1, 1, Some(0))).kind(),
        DecodeErrorKind::Invalid(_)
    ));
    // A partial inner message.
    let e = decode_err(wrap(
        &inner[..inner.len() - 1],
        1,
        LegacyMagic::V1,
        1,
        Some(0),
    ));
    assert!(matches!(e.kind(), DecodeErrorKind::UnexpectedEof { .. }));
    // A compressed message with a null value.
    let mut out = Vec::new();
    write_message(
        &mut out,
        0,
        LegacyMagic::V0,
        1,
        None,
        None,
        MessageValue::Plain(None),
    )
    .unwrap();
    assert!(matches!(
        decode_err(out).kind(),
        DecodeErrorKind::Invalid(_)
    ));
    // A cap on the decompressed size.
    let big = plain_set(LegacyMagic::V0, &[0; 64], &[0; 64]);
    let w = wrap(&big, 0, LegacyMagic::V0, 1, None);
    let opts = DecodeOptions::default().with_max_decompressed_size(100);
    let e = LegacyBatch::decode(&mut Bytes::from(w), &opts).unwrap_err();
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::DecompressedTooLarge { .. } | DecodeErrorKind::Decompression(_)
    ));
}
