//! gzip (codec 1) through flate2, on its zlib-rs backend (a Rust port of
//! zlib-ng) rather than its default miniz_oxide: see DESIGN.md, "Compression".
//!
//! The Java client wraps a `GZIPOutputStream` whose deflater runs at zlib's
//! default level, 6. Decoding accepts a stream of several gzip members one
//! after the other, as `GZIPInputStream` does.

use std::io::Write;

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{Compression, encode_error, level_in, read_capped};
use crate::protocol::error::{DecodeError, EncodeError};

/// zlib's default level, which `Deflater.DEFAULT_COMPRESSION` (-1) stands for.
const DEFAULT_LEVEL: i32 = 6;

/// The level to compress at: 1..=9, with -1 (how Java and Kafka's
/// `compression.gzip.level` spell "default") and `None` meaning 6.
pub(super) fn resolve_level(level: Option<i32>) -> Result<i32, EncodeError> {
    match level {
        Some(-1) => Ok(DEFAULT_LEVEL),
        other => level_in(Compression::Gzip, other, 1..=9, DEFAULT_LEVEL),
    }
}

pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let level = resolve_level(level)?;
    // The range check above makes the conversion infallible.
    let level = u32::try_from(level).map_err(|e| encode_error("gzip", e))?;
    let mut encoder = GzEncoder::new(out, flate2::Compression::new(level));
    encoder
        .write_all(input)
        .map_err(|e| encode_error("gzip", e))?;
    encoder.finish().map_err(|e| encode_error("gzip", e))?;
    Ok(())
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>, DecodeError> {
    read_capped(MultiGzDecoder::new(input), max_size, "gzip")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compression::{compress as any_compress, decompress as any_decompress};

    #[test]
    fn multi_member_stream_decodes_as_concatenation() {
        let mut wire = Vec::new();
        compress(None, b"first member, ", &mut wire).unwrap();
        compress(Some(1), b"second member", &mut wire).unwrap();
        let out = decompress(&wire, 1000).unwrap();
        assert_eq!(out, b"first member, second member");
    }

    #[test]
    fn levels_validated() {
        let mut out = Vec::new();
        for ok in [-1, 1, 5, 9] {
            any_compress(Compression::Gzip, Some(ok), b"x", &mut out).unwrap();
        }
        for bad in [-2, 0, 10, i32::MAX, i32::MIN] {
            let err = any_compress(Compression::Gzip, Some(bad), b"x", &mut out).unwrap_err();
            assert!(matches!(err, EncodeError::Invalid(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn default_level_is_six() {
        let data = b"some moderately compressible text, text, text, text".repeat(500);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        compress(None, &data, &mut a).unwrap();
        compress(Some(6), &data, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn trailing_garbage_after_member_is_an_error() {
        let mut wire = Vec::new();
        compress(None, b"payload", &mut wire).unwrap();
        wire.extend_from_slice(b"junk!junk!junk!");
        assert!(any_decompress(Compression::Gzip, &wire, 1000).is_err());
    }

    #[test]
    fn corrupted_crc_is_an_error() {
        let mut wire = Vec::new();
        compress(None, b"payload payload", &mut wire).unwrap();
        let n = wire.len();
        wire[n - 6] ^= 0xff; // inside the CRC32 trailer
        assert!(decompress(&wire, 1000).is_err());
    }
}
