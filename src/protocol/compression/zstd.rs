//! Zstandard (codec 4) through the zstd crate (KIP-110).
//!
//! Levels are zstd's own range (`zstd::compression_level_range()`, the
//! negative "fast" levels up to 22), default 3 as in the Java client.
//!
//! Decoding streams the frames through a bounded reader: the content size a
//! frame header may declare is never used to reserve memory. zstd itself
//! allocates a window buffer sized from the frame header, so the decoder's
//! window limit is tied to the cap: the smallest power of two at least as big
//! as the cap, but never below 8 MiB (so small caps still read frames from
//! every level up to 19 written without a known size) and never above
//! 128 MiB (zstd's own default limit). A frame asking for more is refused.

use std::io::Write;

use super::{Compression, codec_error, encode_error, level_in, read_capped};
use crate::protocol::error::{DecodeError, EncodeError};

const DEFAULT_LEVEL: i32 = 3;
/// log2 of the smallest and largest window the decoder will allocate.
const MIN_WINDOW_LOG: u32 = 23;
const MAX_WINDOW_LOG: u32 = 27;

/// Checks a level against zstd's own range, `None` meaning 3.
pub(super) fn resolve_level(level: Option<i32>) -> Result<i32, EncodeError> {
    level_in(
        Compression::Zstd,
        level,
        ::zstd::compression_level_range(),
        DEFAULT_LEVEL,
    )
}

pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let level = resolve_level(level)?;
    let mut encoder =
        ::zstd::stream::write::Encoder::new(out, level).map_err(|e| encode_error("zstd", e))?;
    encoder
        .write_all(input)
        .map_err(|e| encode_error("zstd", e))?;
    encoder.finish().map_err(|e| encode_error("zstd", e))?;
    Ok(())
}

/// The decoder's window limit for a cap (see the module docs).
fn window_log_max(max_size: usize) -> u32 {
    let bits = max_size
        .checked_next_power_of_two()
        .map_or(usize::BITS, usize::trailing_zeros);
    bits.clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG)
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>, DecodeError> {
    let mut decoder =
        ::zstd::stream::read::Decoder::with_buffer(input).map_err(|e| codec_error("zstd", e))?;
    decoder
        .window_log_max(window_log_max(max_size))
        .map_err(|e| codec_error("zstd", e))?;
    read_capped(decoder, max_size, "zstd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits() {
        assert_eq!(window_log_max(0), MIN_WINDOW_LOG);
        assert_eq!(window_log_max(1000), MIN_WINDOW_LOG);
        assert_eq!(window_log_max(64 << 20), 26);
        assert_eq!(window_log_max(usize::MAX), MAX_WINDOW_LOG);
    }

    #[test]
    fn levels_validated() {
        let mut out = Vec::new();
        for ok in [-5, 0, 1, 3, 19, 22] {
            compress(Some(ok), b"xyz", &mut out).unwrap();
        }
        for bad in [23, i32::MAX, i32::MIN] {
            assert!(matches!(
                compress(Some(bad), b"x", &mut out),
                Err(EncodeError::Invalid(_))
            ));
        }
    }

    #[test]
    fn concatenated_frames() {
        let mut wire = Vec::new();
        compress(None, b"one ", &mut wire).unwrap();
        compress(Some(19), b"two", &mut wire).unwrap();
        assert_eq!(decompress(&wire, 100).unwrap(), b"one two");
    }

    #[test]
    fn declared_content_size_is_not_trusted() {
        // A single-shot frame declares its content size; lie about it.
        let data = vec![7u8; 5000];
        let mut wire = ::zstd::bulk::compress(&data, 3).unwrap();
        // Frame header: magic(4) FHD(1) ...; with single-segment and a 2-byte
        // size field, the size follows the FHD directly.
        let fhd = wire[4];
        assert!(
            fhd & 0x20 != 0 && fhd >> 6 == 1,
            "unexpected header {fhd:#04x}"
        );
        wire[5] = 0xff;
        wire[6] = 0xff;
        let err = decompress(&wire, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
        assert_eq!(
            decompress(&::zstd::bulk::compress(&data, 3).unwrap(), 5000).unwrap(),
            data
        );
    }

    #[test]
    fn window_beyond_the_limit_is_refused_with_a_zstd_error() {
        // A long-window frame (window log 27, size not pledged) of a few bytes.
        let mut wire = Vec::new();
        let mut enc = ::zstd::stream::write::Encoder::new(&mut wire, 3).unwrap();
        enc.window_log(27).unwrap();
        enc.write_all(b"tiny payload").unwrap();
        enc.finish().unwrap();
        let err = decompress(&wire, 1000).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
        // With a cap that admits a 128 MiB window it decodes.
        assert_eq!(decompress(&wire, 128 << 20).unwrap(), b"tiny payload");
    }
}
