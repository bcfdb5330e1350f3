//! Tests common to every codec: round trips, the size cap, and hostile input.

use super::*;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Levels to try per codec (`None` is the default).
fn levels(codec: Compression) -> Vec<Option<i32>> {
    match codec {
        Compression::None | Compression::Snappy => vec![None],
        Compression::Gzip => vec![None, Some(1), Some(6), Some(9)],
        Compression::Lz4 => vec![None, Some(1), Some(9), Some(17)],
        Compression::Zstd => vec![None, Some(-3), Some(1), Some(3), Some(19)],
    }
}

/// Deterministic noise (xorshift), which barely compresses.
pub(super) fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let line = b"{\"topic\":\"orders\",\"partition\":3,\"key\":\"customer-42\",\"value\":17}\n";
    line.iter().copied().cycle().take(len).collect()
}

fn inputs() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![0x5a],
        text(100 * 1024),
        noise(100 * 1024, 7),
        noise(70_000, 3),
        vec![0; 300_000],
    ]
}

fn compressed(codec: Compression, data: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    compress(codec, None, data, &mut wire).unwrap();
    wire
}

#[test]
fn codes_and_names() {
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(codec.code()), i);
        assert_eq!(Compression::from_code(codec.code()).unwrap(), codec);
        assert_eq!(codec.to_string(), codec.name());
    }
    let names: Vec<_> = Compression::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["none", "gzip", "snappy", "lz4", "zstd"]);
    assert_eq!(Compression::default(), Compression::None);
}

#[test]
fn from_code_rejects_unknown() {
    for code in (5..=7).chain([8, 255]) {
        let err = Compression::from_code(code).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::Invalid(_)), "{code}");
    }
}

#[test]
fn round_trip_every_codec_level_and_size() {
    for codec in Compression::ALL {
        for level in levels(codec) {
            for data in inputs() {
                let mut wire = vec![0xEE]; // compress appends
                compress(codec, level, &data, &mut wire).unwrap();
                assert_eq!(wire[0], 0xEE);
                let back = decompress(codec, &wire[1..], data.len()).unwrap();
                assert!(back == data, "{codec} {level:?} len {}", data.len());
            }
        }
    }
}

#[test]
fn compressible_input_shrinks() {
    let data = text(100 * 1024);
    for codec in CODECS {
        assert!(compressed(codec, &data).len() < data.len() / 4, "{codec}");
    }
}

#[test]
fn legacy_lz4_round_trips_through_decompress() {
    for data in inputs() {
        let mut wire = Vec::new();
        compress_lz4_legacy_v0(&data, &mut wire).unwrap();
        assert_eq!(
            decompress(Compression::Lz4, &wire, data.len()).unwrap(),
            data
        );
    }
}

#[test]
fn lz4_levels_are_kafkas_range_and_all_give_the_same_bytes() {
    let data = text(10_000);
    let default = compressed(Compression::Lz4, &data);
    for ok in 1..=17 {
        let mut wire = Vec::new();
        compress(Compression::Lz4, Some(ok), &data, &mut wire).unwrap();
        assert_eq!(wire, default, "level {ok}");
    }
    for bad in [i32::MIN, -1, 0, 18, i32::MAX] {
        let err = compress(Compression::Lz4, Some(bad), b"x", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, EncodeError::Invalid(_)), "level {bad}");
    }
}

#[test]
fn levels_refused_where_there_are_none() {
    for codec in [Compression::None, Compression::Snappy] {
        let err = compress(codec, Some(1), b"x", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, EncodeError::Invalid(_)), "{codec}");
    }
}

#[test]
fn cap_exact_size_works_and_one_less_fails() {
    for codec in Compression::ALL {
        for data in [text(100 * 1024), noise(5000, 9), vec![1]] {
            let wire = compressed(codec, &data);
            assert_eq!(
                decompress(codec, &wire, data.len()).unwrap(),
                data,
                "{codec}"
            );
            let err = decompress(codec, &wire, data.len() - 1).unwrap_err();
            assert_eq!(
                err.kind(),
                &DecodeErrorKind::DecompressedTooLarge {
                    limit: data.len() - 1
                },
                "{codec}"
            );
        }
    }
}

#[test]
fn bombs_are_refused() {
    // 64 MiB of zeros squeezes into a few KiB (snappy: ~3 MiB) with every codec.
    let bomb = vec![0u8; 64 << 20];
    for codec in CODECS {
        let wire = compressed(codec, &bomb);
        assert!(wire.len() < 4 << 20, "{codec}: {}", wire.len());
        let err = decompress(codec, &wire, 1 << 20).unwrap_err();
        assert_eq!(
            err.kind(),
            &DecodeErrorKind::DecompressedTooLarge { limit: 1 << 20 },
            "{codec}"
        );
        assert!(err.to_string().contains("cap"));
    }
}

#[test]
fn empty_input_is_an_error_except_for_none() {
    assert_eq!(decompress(Compression::None, b"", 0).unwrap(), b"");
    for codec in CODECS {
        let err = decompress(codec, b"", 100).unwrap_err();
        match err.kind() {
            DecodeErrorKind::Decompression(m) => assert!(m.starts_with(codec.name()), "{m}"),
            other => panic!("{codec}: {other:?}"),
        }
    }
}

/// Every error from a corrupt stream must be one of the two typed kinds, and
/// a decompression error must name its codec.
fn assert_typed(codec: Compression, err: &DecodeError) {
    match err.kind() {
        DecodeErrorKind::Decompression(m) => assert!(m.starts_with(codec.name()), "{m}"),
        DecodeErrorKind::DecompressedTooLarge { .. } => {}
        other => panic!("{codec}: unexpected error kind {other:?}"),
    }
}

#[test]
fn every_truncation_is_an_error_or_a_prefix() {
    let data = text(40 * 1024);
    for codec in CODECS {
        let wire = compressed(codec, &data);
        let step = (wire.len() / 300).max(1);
        for cut in (0..wire.len()).step_by(step).chain([wire.len() - 1]) {
            match decompress(codec, &wire[..cut], data.len()) {
                Err(e) => assert_typed(codec, &e),
                // Only snappy's xerial framing has no end marker: a cut at a
                // block boundary is itself a valid, shorter stream.
                Ok(out) => {
                    assert_eq!(codec, Compression::Snappy, "cut at {cut} decoded");
                    assert!(data.starts_with(&out) && out.len() < data.len());
                }
            }
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let data = text(20 * 1024);
    for codec in CODECS {
        let mut wire = compressed(codec, &data);
        let step = (wire.len() / 200).max(1);
        for i in (0..wire.len()).step_by(step) {
            for mask in [0x01, 0x80, 0xff] {
                wire[i] ^= mask;
                if let Err(e) = decompress(codec, &wire, data.len()) {
                    assert_typed(codec, &e);
                }
                wire[i] ^= mask;
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    for seed in 1..200u32 {
        let junk = noise((seed as usize * 37) % 600, seed);
        for codec in CODECS {
            if let Err(e) = decompress(codec, &junk, 1 << 20) {
                assert_typed(codec, &e);
            }
            // Garbage behind a valid header too.
            let mut wire = compressed(codec, b"");
            wire.truncate(wire.len().min(16));
            wire.extend_from_slice(&junk);
            if let Err(e) = decompress(codec, &wire, 1 << 20) {
                assert_typed(codec, &e);
            }
        }
    }
}
