//! Snappy (codec 2) in the xerial framing the Java client uses.
//!
//! The Java client compresses with snappy-java's `SnappyOutputStream`, whose
//! stream is a 16-byte header followed by blocks:
//!
//! ```text
//! header: 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00   (8 magic bytes)
//!         int32 version             = 1     (big-endian)
//!         int32 compatible version  = 1     (big-endian)
//! block:  int32 compressed length           (big-endian)
//!         a raw snappy block of that length
//! ```
//!
//! Each block holds at most 32 KiB of input (snappy-java's default block
//! size). Each thread keeps its last encoder (whose hash table is allocated
//! on first use) and block buffer for the next batch, rather than
//! allocating and clearing both per batch.
//!
//! Decoding also takes a plain raw snappy block (anything that does not
//! start with the magic bytes) and a magic header appearing again between
//! blocks, which is how concatenated xerial streams look.

use std::cell::Cell;

use snap::raw::{Decoder, Encoder, decompress_len, max_compress_len};

use super::{codec_error, encode_error, reserve_capped, too_large};
use crate::protocol::error::{DecodeError, EncodeError};

/// The xerial stream's magic bytes.
pub(super) const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus the two int32 version fields.
const HEADER_LEN: usize = 16;
/// The version and minimum compatible version written after the magic.
const VERSION: i32 = 1;
/// Uncompressed bytes per block, snappy-java's default.
pub(super) const BLOCK_SIZE: usize = 32 * 1024;
/// An upper bound on snappy's expansion: the most output one element can
/// give is a 64-byte copy from a 3-byte tag, about 21 bytes per input byte.
/// A block claiming more than this is corrupt, so it is refused before any
/// memory is reserved for it.
const MAX_EXPANSION: usize = 32;

thread_local! {
    /// The encoder of the last snappy compression on this thread (its hash
    /// table allocated) and the block buffer it wrote into, kept for the
    /// next one instead of allocated and cleared per batch.
    static ENCODER: Cell<Option<(Encoder, Vec<u8>)>> = const { Cell::new(None) };
}

pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    // Taken out of the thread's slot for the call and put back after it.
    let (mut encoder, mut scratch) = ENCODER
        .take()
        .unwrap_or_else(|| (Encoder::new(), Vec::new()));
    let need = max_compress_len(BLOCK_SIZE.min(input.len()));
    if scratch.len() < need {
        scratch.resize(need, 0);
    }
    let result = compress_blocks(&mut encoder, &mut scratch, input, out);
    ENCODER.set(Some((encoder, scratch)));
    result
}

fn compress_blocks(
    encoder: &mut Encoder,
    scratch: &mut [u8],
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    for block in input.chunks(BLOCK_SIZE) {
        let n = encoder
            .compress(block, scratch)
            .map_err(|e| encode_error("snappy", e))?;
        let len = i32::try_from(n).map_err(|e| encode_error("snappy", e))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&scratch[..n]);
    }
    Ok(())
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut decoder = Decoder::new();
    if !input.starts_with(&MAGIC) {
        decode_block(&mut decoder, input, &mut out, max_size)?;
        return Ok(out);
    }
    let mut rest = input;
    while !rest.is_empty() {
        if rest.starts_with(&MAGIC) {
            // A (possibly repeated) stream header; the version fields are not
            // interpreted, as snappy-java's reader accepts them all alike.
            if rest.len() < HEADER_LEN {
                return Err(codec_error("snappy", "truncated xerial stream header"));
            }
            rest = &rest[HEADER_LEN..];
            continue;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(codec_error("snappy", "truncated xerial block length"));
        };
        let len = i32::from_be_bytes(*len);
        let len = usize::try_from(len)
            .map_err(|_| codec_error("snappy", format!("negative xerial block length {len}")))?;
        if len > tail.len() {
            return Err(codec_error(
                "snappy",
                format!("xerial block of {len} bytes but only {} left", tail.len()),
            ));
        }
        let (block, tail) = tail.split_at(len);
        decode_block(&mut decoder, block, &mut out, max_size)?;
        rest = tail;
    }
    Ok(out)
}

/// Decodes one raw snappy block onto the end of `out`, checking the length
/// the block claims against the cap before reserving anything.
fn decode_block(
    decoder: &mut Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    max_size: usize,
) -> Result<(), DecodeError> {
    let len = decompress_len(block).map_err(|e| codec_error("snappy", e))?;
    if len > max_size.saturating_sub(out.len()) {
        return Err(too_large(max_size));
    }
    if len > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(codec_error(
            "snappy",
            format!("a {}-byte block claims {len} bytes of output", block.len()),
        ));
    }
    let start = out.len();
    reserve_capped(out, len, max_size)?;
    out.resize(start + len, 0);
    let n = decoder
        .decompress(block, &mut out[start..])
        .map_err(|e| codec_error("snappy", e))?;
    if n != len {
        return Err(codec_error("snappy", "block shorter than its header says"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::DecodeErrorKind;

    #[test]
    fn header_bytes_match_hand_derived_layout() {
        let mut wire = Vec::new();
        compress(b"", &mut wire).unwrap();
        let expected: [u8; 16] = [
            0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, // magic "\x82SNAPPY\0"
            0x00, 0x00, 0x00, 0x01, // version 1, big-endian
            0x00, 0x00, 0x00, 0x01, // compatible version 1, big-endian
        ];
        assert_eq!(wire, expected);
        assert_eq!(decompress(&wire, 0).unwrap(), b"");
    }

    #[test]
    fn blocks_are_32_kib_with_big_endian_lengths() {
        let data: Vec<u8> = (0..BLOCK_SIZE * 2 + 10).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        compress(&data, &mut wire).unwrap();
        // Walk the blocks by hand.
        let mut rest = &wire[HEADER_LEN..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let block = &rest[4..4 + len];
            sizes.push(snap::raw::decompress_len(block).unwrap());
            rest = &rest[4 + len..];
        }
        assert_eq!(sizes, [BLOCK_SIZE, BLOCK_SIZE, 10]);
        assert_eq!(decompress(&wire, data.len()).unwrap(), data);
    }

    /// The xerial stream of `input` from a fresh encoder, block by block.
    fn fresh_stream(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::from(&MAGIC[..]);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        for block in input.chunks(BLOCK_SIZE) {
            let raw = Encoder::new().compress_vec(block).unwrap();
            out.extend_from_slice(&(raw.len() as i32).to_be_bytes());
            out.extend_from_slice(&raw);
        }
        out
    }

    #[test]
    fn the_kept_encoder_writes_what_a_fresh_one_does() {
        // A large input, then smaller and different ones: the kept table
        // and block buffer must carry nothing from one call to the next.
        let big: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let small = b"a small batch, a small batch, a small batch".to_vec();
        let other: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 13) as u8).collect();
        // Control: the comparison tells these inputs' streams apart.
        assert_ne!(fresh_stream(&big), fresh_stream(&other));
        assert_ne!(fresh_stream(&small), fresh_stream(&other));
        std::thread::spawn(move || {
            assert!(ENCODER.take().is_none(), "a new thread starts without one");
            for input in [&big, &small, &other, &big] {
                let mut out = b"head".to_vec();
                compress(input, &mut out).unwrap();
                assert_eq!(&out[..4], b"head", "what was before is kept");
                assert_eq!(out[4..], fresh_stream(input), "{} bytes", input.len());
                let kept = ENCODER.take();
                assert!(kept.is_some(), "the encoder is kept for the next call");
                ENCODER.set(kept);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn raw_block_accepted() {
        let data = b"raw snappy, no xerial framing, raw snappy".repeat(20);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(&raw, data.len()).unwrap(), data);
    }

    #[test]
    fn concatenated_streams_accepted() {
        let mut wire = Vec::new();
        compress(b"one ", &mut wire).unwrap();
        compress(b"two", &mut wire).unwrap();
        assert_eq!(decompress(&wire, 100).unwrap(), b"one two");
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        // Block length field far beyond the input.
        let mut wire = MAGIC.to_vec();
        wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        wire.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        wire.extend_from_slice(&[1, 2, 3]);
        assert!(decompress(&wire, usize::MAX).is_err());
        // Negative block length.
        let n = wire.len();
        wire[n - 7..n - 3].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decompress(&wire, usize::MAX).is_err());
        // A tiny raw block claiming ~4 GiB of output: refused by the
        // expansion bound, and by the cap when the cap is smaller.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err = decompress(&claim, usize::MAX).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::Decompression(m) if m.starts_with("snappy")));
        let err = decompress(&claim, 1 << 20).unwrap_err();
        assert_eq!(
            err.kind(),
            &DecodeErrorKind::DecompressedTooLarge { limit: 1 << 20 }
        );
    }

    #[test]
    fn truncated_header_is_an_error() {
        let mut wire = Vec::new();
        compress(b"abc", &mut wire).unwrap();
        for cut in MAGIC.len()..HEADER_LEN {
            assert!(decompress(&wire[..cut], 100).is_err(), "cut at {cut}");
        }
    }
}
