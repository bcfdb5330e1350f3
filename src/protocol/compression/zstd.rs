//! Zstandard (codec 4) through the zstd crate (KIP-110).
//!
//! Levels are zstd's own range (`zstd::compression_level_range()`, the
//! negative "fast" levels up to 22), default 3 as in the Java client.
//!
//! Compression is one call over the whole input, so zstd knows its size: it
//! writes the size in the frame header and sizes its window and tables to
//! the input (a 128 KiB window for a 128 KiB batch) rather than to the
//! level's streaming default (2 MiB at level 3). Each thread keeps its last
//! compression context and reuses it, as the Java client and franz-go pool
//! theirs, instead of allocating and clearing a new one per batch; zstd
//! frees a context's oversized workspace itself once a run of smaller inputs
//! no longer needs it.
//!
//! Decoding streams the frames through a bounded reader: the content size a
//! frame header may declare is never used to reserve memory. zstd itself
//! allocates a window buffer sized from the frame header, so the decoder's
//! window limit is tied to the cap: the smallest power of two at least as big
//! as the cap, but never below 8 MiB (so small caps still read frames from
//! every level up to 19 written without a known size) and never above
//! 128 MiB (zstd's own default limit). A frame asking for more is refused.

use std::cell::Cell;
use std::io;

use ::zstd::bulk::Compressor;

use super::{Compression, codec_error, encode_error, level_in, read_capped};
use crate::protocol::error::{DecodeError, EncodeError};

const DEFAULT_LEVEL: i32 = 3;
/// log2 of the smallest and largest window the decoder will allocate.
const MIN_WINDOW_LOG: u32 = 23;
const MAX_WINDOW_LOG: u32 = 27;

thread_local! {
    /// The compression context of the last zstd compression on this thread,
    /// with its level, kept for the next one.
    static CONTEXT: Cell<Option<(i32, Compressor<'static>)>> = const { Cell::new(None) };
}

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
    // Taken out of the thread's slot for the call and put back after it, so
    // nothing here can find it borrowed.
    let mut compressor = match CONTEXT.take() {
        Some((kept, compressor)) if kept == level => compressor,
        Some((_, mut compressor)) => {
            compressor
                .set_compression_level(level)
                .map_err(|e| encode_error("zstd", e))?;
            compressor
        }
        None => Compressor::new(level).map_err(|e| encode_error("zstd", e))?,
    };
    out.reserve(::zstd::zstd_safe::compress_bound(input.len()));
    let start = out.len();
    let mut tail = io::Cursor::new(&mut *out);
    tail.set_position(start as u64);
    let written = compressor.compress_to_buffer(input, &mut tail);
    CONTEXT.set(Some((level, compressor)));
    written.map_err(|e| encode_error("zstd", e))?;
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
    use std::io::Write;

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

    /// Some text that compresses differently at different levels.
    fn sample() -> Vec<u8> {
        (0..4000u32)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"name\":\"user-{}\"}}", i * 7919 % 1000).into_bytes()
            })
            .collect()
    }

    #[test]
    fn the_kept_context_takes_each_calls_level() {
        let data = sample();
        let fresh = |level| ::zstd::bulk::compress(&data, level).unwrap();
        assert_ne!(fresh(1), fresh(19), "the sample must tell levels apart");
        for level in [1, 19, 19, 3, 1, -5] {
            let mut out = b"head".to_vec();
            compress(Some(level), &data, &mut out).unwrap();
            assert_eq!(&out[..4], b"head", "what was before is kept");
            assert_eq!(out[4..], fresh(level), "level {level}");
            assert_eq!(decompress(&out[4..], data.len()).unwrap(), data);
        }
    }

    #[test]
    fn a_frame_states_its_size_and_needs_no_bigger_window() {
        let data = sample();
        let mut out = Vec::new();
        compress(None, &data, &mut out).unwrap();
        // Frame header descriptor: single segment (the window is the content
        // size), with the content size given.
        let fhd = out[4];
        assert_ne!(fhd & 0x20, 0, "single segment: {fhd:#04x}");
        // Control: the streaming encoder, which does not know the size,
        // writes a window descriptor instead.
        let mut streamed = Vec::new();
        let mut enc = ::zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        assert_eq!(streamed[4] & 0x20, 0);
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
