//! gzip (codec 1) through flate2, on its zlib-rs backend (a Rust port of
//! zlib-ng) rather than its default miniz_oxide: see DESIGN.md, "Compression".
//!
//! The Java client wraps a `GZIPOutputStream` whose deflater runs at zlib's
//! default level, 6. Decoding accepts a stream of several gzip members one
//! after the other, as `GZIPInputStream` does.

use std::cell::Cell;

use flate2::bufread::MultiGzDecoder;
use flate2::{Compress, Crc, FlushCompress, Status};

use super::{Compression, encode_error, level_in, read_capped};
use crate::protocol::error::{DecodeError, EncodeError};

/// zlib's default level, which `Deflater.DEFAULT_COMPRESSION` (-1) stands for.
const DEFAULT_LEVEL: i32 = 6;

/// Output room added at a time while deflating: the compressed size is not
/// known in advance, and reserving the input's whole size would hold
/// memory that a compressible batch never uses.
const OUT_STEP: usize = 32 * 1024;

thread_local! {
    /// The deflate state of the last gzip compression on this thread, reset
    /// and kept with the level it was made for: a fresh state per batch
    /// allocates and clears its window and hash tables (about 256 KiB at
    /// zlib's default memory level) every time.
    static DEFLATE: Cell<Option<(u32, Compress)>> = const { Cell::new(None) };
}

/// The level to compress at: 1..=9, with -1 (how Java and Kafka's
/// `compression.gzip.level` spell "default") and `None` meaning 6.
pub(super) fn resolve_level(level: Option<i32>) -> Result<i32, EncodeError> {
    match level {
        Some(-1) => Ok(DEFAULT_LEVEL),
        other => level_in(Compression::Gzip, other, 1..=9, DEFAULT_LEVEL),
    }
}

/// One gzip member (RFC 1952): a 10-byte header, the raw deflate stream
/// and a trailer with the input's CRC-32 and length. The header is the one
/// `GZIPOutputStream` and flate2's `GzEncoder` write: no name, no time, the
/// level hint (2 for the slowest level, 4 for the fastest), OS unknown.
pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let level = resolve_level(level)?;
    // The range check above makes the conversion infallible.
    let level = u32::try_from(level).map_err(|e| encode_error("gzip", e))?;
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff]);
    // Taken out of the thread's slot for the call; put back reset, so that
    // a state taken is always at the start of a stream.
    let mut state = match DEFLATE.take() {
        Some((kept, state)) if kept == level => state,
        _ => Compress::new(flate2::Compression::new(level), false),
    };
    let result = deflate(&mut state, input, out);
    state.reset();
    DEFLATE.set(Some((level, state)));
    result?;
    let mut crc = Crc::new();
    crc.update(input);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the input's length modulo 2^32, as the format defines it.
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(())
}

/// The whole of `input` through `state` into `out`, to the stream's end.
fn deflate(state: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = state.total_in();
    loop {
        let read =
            usize::try_from(state.total_in() - start).map_err(|e| encode_error("gzip", e))?;
        let rest = input.get(read..).unwrap_or_default();
        if out.capacity() - out.len() < OUT_STEP / 4 {
            out.reserve(OUT_STEP.max(rest.len() / 4));
        }
        // All input first, then the end, as flate2's `GzEncoder` feeds
        // its deflater: with `Finish` from the first call, zlib-rs's level
        // 1 (zlib-ng's quick strategy) lays its blocks out differently,
        // and the stream would differ from klamm's earlier ones.
        let flush = if rest.is_empty() {
            FlushCompress::Finish
        } else {
            FlushCompress::None
        };
        let (before_in, before_out) = (state.total_in(), state.total_out());
        match state
            .compress_vec(rest, out, flush)
            .map_err(|e| encode_error("gzip", e))?
        {
            Status::StreamEnd => return Ok(()),
            // Input left, out of room (more is reserved above) or output
            // still pending: call again, as long as each call moves.
            Status::Ok | Status::BufError => {
                if (state.total_in(), state.total_out()) == (before_in, before_out) {
                    return Err(encode_error("gzip", "deflate made no progress"));
                }
            }
        }
    }
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>, DecodeError> {
    read_capped(MultiGzDecoder::new(input), max_size, "gzip")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compression::tests::noise;
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
    fn the_kept_deflate_state_writes_what_flate2s_gzip_encoder_writes() {
        use std::io::Write;
        let text = b"{\"user\":\"ada\",\"action\":\"login\",\"ok\":true}\n".repeat(3000);
        let inputs: [Vec<u8>; 4] = [Vec::new(), b"short".to_vec(), text, noise(200_000, 7)];
        let mut seen = Vec::new();
        // Levels change between calls (a new state) and repeat (the kept
        // one, reset); each input goes through each twice.
        for level in [6, 6, 1, 9, 9, 6] {
            for input in inputs.iter().chain(inputs.iter()) {
                let mut ours = vec![0xaa];
                compress(Some(level), input, &mut ours).unwrap();
                assert_eq!(ours[0], 0xaa, "what `out` held is kept");
                let mut reference = flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(level as u32),
                );
                reference.write_all(input).unwrap();
                let reference = reference.finish().unwrap();
                assert_eq!(
                    ours[1..],
                    reference[..],
                    "level {level}, {} bytes",
                    input.len()
                );
                assert_eq!(decompress(&ours[1..], input.len()).unwrap(), *input);
                seen.push(ours);
            }
            let kept = DEFLATE.take();
            assert!(
                matches!(kept, Some((l, _)) if l == level as u32),
                "kept at {level}"
            );
            DEFLATE.set(kept);
        }
        // Control: the equality above is not of constant bytes; inputs and
        // levels give different streams.
        assert_ne!(seen[2], seen[3]);
        assert_ne!(seen[2], seen[8 * 2 + 2]);
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
