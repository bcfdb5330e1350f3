//! LZ4 (codec 3) in the LZ4 frame format (KIP-57).
//!
//! # What is written
//! Exactly the frame the Java client's `Lz4BlockOutputStream` writes, so the
//! Java client (which refuses dependent blocks) reads it back:
//! - magic `0x184D2204`, FLG `0x60` (version 01, independent blocks, no
//!   block checksums, no content size, no content checksum), BD `0x40`
//!   (64 KiB maximum block size), then the header checksum byte;
//! - one block per 64 KiB of input, compressed with lz4_flex's fast
//!   compressor, or stored raw (high bit of the length set) when compressing
//!   does not make it smaller;
//! - the zero end mark. No content checksum is written: Kafka's own writer
//!   never writes one, and its readers have not always checked it the
//!   standard way.
//!
//! lz4_flex has only the fast compressor, so the level (1..=17, Kafka's range
//! from KIP-390, default 9) is validated for configuration compatibility and
//! then ignored: every level gives the same output as the Java client's
//! default level.
//!
//! # What is read
//! Any LZ4 frame without a dictionary id: block and content checksums are
//! verified, a content size is checked against the output (never used to
//! reserve memory), linked blocks are decoded, and several frames may follow
//! one another. The header checksum may also be the pre-KIP-57 one that Kafka
//! wrote for magic-0 messages (KAFKA-3160), computed over the magic number as
//! well as the descriptor: a mismatching checksum that equals that old
//! computation is taken as correct. Legacy (`0x184C2102`) and skippable frames
//! are refused, as Kafka never writes them.

use lz4_flex::block::{
    DecompressError, compress_into, decompress_into, decompress_into_with_dict,
    get_maximum_output_size,
};

use super::xxh32::xxh32;
use super::{Compression, codec_error, encode_error, level_in, reserve_capped, too_large};
use crate::protocol::error::{DecodeError, EncodeError};

const MAGIC: [u8; 4] = 0x184D_2204u32.to_le_bytes();
/// FLG as written: version 01, independent blocks, nothing optional.
const FLG_WRITTEN: u8 = 0x60;
/// BD as written: block maximum size code 4 (64 KiB).
const BD_WRITTEN: u8 = 0x40;
const BLOCK_SIZE: usize = 64 * 1024;
/// The high bit of a block length: the block is stored uncompressed.
const UNCOMPRESSED: u32 = 0x8000_0000;
/// LZ4's match window: the most history a linked block may refer to.
const WINDOW: usize = 64 * 1024;

const FLG_VERSION_MASK: u8 = 0xC0;
const FLG_VERSION_01: u8 = 0x40;
const FLG_INDEPENDENT: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_RESERVED: u8 = 0x02;
const FLG_DICT_ID: u8 = 0x01;
const BD_RESERVED: u8 = 0x8F;

/// Checks a level against Kafka's lz4 range (1..=17), `None` meaning 9.
pub(super) fn resolve_level(level: Option<i32>) -> Result<i32, EncodeError> {
    level_in(Compression::Lz4, level, 1..=17, 9)
}

pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    resolve_level(level)?;
    compress_frame(input, out, false)
}

/// The header checksum byte: the second byte of the XXH32 of the descriptor
/// (or, for the broken legacy framing, of the magic and descriptor).
fn header_checksum(bytes: &[u8]) -> u8 {
    (xxh32(bytes, 0) >> 8) as u8
}

/// Writes one frame; `legacy_checksum` reproduces the KAFKA-3160 header
/// checksum for magic-0 message sets.
pub(super) fn compress_frame(
    input: &[u8],
    out: &mut Vec<u8>,
    legacy_checksum: bool,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(FLG_WRITTEN);
    out.push(BD_WRITTEN);
    let covered = if legacy_checksum {
        start
    } else {
        start + MAGIC.len()
    };
    let hc = header_checksum(&out[covered..]);
    out.push(hc);
    for block in input.chunks(BLOCK_SIZE) {
        // The block is compressed in place after room for its length; when
        // that does not make it smaller, it is stored as it is instead.
        let len_at = out.len();
        let body_at = len_at + 4;
        out.resize(body_at + get_maximum_output_size(block.len()), 0);
        let n = compress_into(block, &mut out[body_at..]).map_err(|e| encode_error("lz4", e))?;
        // Blocks are at most 64 KiB, so the lengths always fit the 31 bits.
        let len = if n < block.len() {
            out.truncate(body_at + n);
            n as u32
        } else {
            out.truncate(body_at);
            out.extend_from_slice(block);
            block.len() as u32 | UNCOMPRESSED
        };
        out[len_at..body_at].copy_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

pub(super) fn decompress(input: &[u8], max_size: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut reader = Reader { rest: input };
    while !reader.rest.is_empty() {
        decode_frame(&mut reader, &mut out, max_size)?;
    }
    Ok(out)
}

/// A cursor over the input that turns running out into a codec error.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(codec_error(
                "lz4",
                format!(
                    "truncated frame: {what} needs {n} bytes, {} left",
                    self.rest.len()
                ),
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32_le(&mut self, what: &str) -> Result<u32, DecodeError> {
        let bytes = self.take(4, what)?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(word))
    }
}

fn decode_frame(
    reader: &mut Reader<'_>,
    out: &mut Vec<u8>,
    max_size: usize,
) -> Result<(), DecodeError> {
    let magic = reader.take(4, "magic number")?;
    if magic != MAGIC {
        return Err(codec_error(
            "lz4",
            format!(
                "not an LZ4 frame (magic {magic:02x?}; legacy and skippable frames are not supported)"
            ),
        ));
    }
    let mut descriptor = reader.take(2, "frame descriptor")?.to_vec();
    let (flg, bd) = (descriptor[0], descriptor[1]);
    if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
        return Err(codec_error(
            "lz4",
            format!("unsupported frame version in FLG {flg:#04x}"),
        ));
    }
    if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
        return Err(codec_error(
            "lz4",
            "reserved bits set in the frame descriptor",
        ));
    }
    if flg & FLG_DICT_ID != 0 {
        return Err(codec_error(
            "lz4",
            "frames with a dictionary id are not supported",
        ));
    }
    let code = (bd >> 4) & 0x07;
    if code < 4 {
        return Err(codec_error(
            "lz4",
            format!("invalid block maximum size code {code}"),
        ));
    }
    let max_block = 1usize << (2 * u32::from(code) + 8);
    let content_size = if flg & FLG_CONTENT_SIZE != 0 {
        let bytes = reader.take(8, "content size")?;
        descriptor.extend_from_slice(bytes);
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    } else {
        None
    };
    let stored_hc = reader.take(1, "header checksum")?[0];
    if stored_hc != header_checksum(&descriptor) {
        // KAFKA-3160: the checksum may cover the magic number too.
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&descriptor);
        if stored_hc != header_checksum(&with_magic) {
            return Err(codec_error("lz4", "frame descriptor checksum mismatch"));
        }
    }

    let frame_start = out.len();
    loop {
        let word = reader.u32_le("block length")?;
        if word == 0 {
            break;
        }
        let len = (word & !UNCOMPRESSED) as usize;
        if len > max_block {
            return Err(codec_error(
                "lz4",
                format!("block of {len} bytes exceeds the frame's maximum of {max_block}"),
            ));
        }
        let data = reader.take(len, "block")?;
        if flg & FLG_BLOCK_CHECKSUM != 0 && reader.u32_le("block checksum")? != xxh32(data, 0) {
            return Err(codec_error("lz4", "block checksum mismatch"));
        }
        if word & UNCOMPRESSED != 0 {
            reserve_capped(out, len, max_size)?;
            out.extend_from_slice(data);
        } else {
            let linked = flg & FLG_INDEPENDENT == 0;
            decode_block(data, out, frame_start, linked, max_block, max_size)?;
        }
    }
    let produced = &out[frame_start..];
    if let Some(expected) = content_size
        && expected != produced.len() as u64
    {
        return Err(codec_error(
            "lz4",
            format!(
                "frame declares {expected} bytes of content but holds {}",
                produced.len()
            ),
        ));
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 && reader.u32_le("content checksum")? != xxh32(produced, 0) {
        return Err(codec_error("lz4", "content checksum mismatch"));
    }
    Ok(())
}

/// Decodes one compressed block onto `out`. The output room is the smaller of
/// the frame's block maximum and what the cap still allows, so nothing beyond
/// either is ever reserved; running out of room under the cap is reported as
/// exceeding the cap.
fn decode_block(
    data: &[u8],
    out: &mut Vec<u8>,
    frame_start: usize,
    linked: bool,
    max_block: usize,
    max_size: usize,
) -> Result<(), DecodeError> {
    let start = out.len();
    let room = max_size.saturating_sub(start);
    let capped = room < max_block;
    let room = room.min(max_block);
    reserve_capped(out, room, max_size)?;
    out.resize(start + room, 0);
    let result = if linked {
        let (history, target) = out.split_at_mut(start);
        let dict_start = frame_start.max(start.saturating_sub(WINDOW));
        decompress_into_with_dict(data, target, &history[dict_start..])
    } else {
        decompress_into(data, &mut out[start..])
    };
    match result {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(DecompressError::OutputTooSmall { .. }) if capped => Err(too_large(max_size)),
        Err(e) => Err(codec_error("lz4", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i / 7 % 13) as u8 + b'a').collect()
    }

    #[test]
    fn written_header_is_javas() {
        let mut wire = Vec::new();
        compress(None, b"", &mut wire).unwrap();
        assert_eq!(&wire[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
        assert_eq!(wire[6], header_checksum(&[0x60, 0x40]));
        assert_eq!(&wire[7..], &[0, 0, 0, 0]);
    }

    #[test]
    fn lz4_flex_reads_what_we_write() {
        for len in [0, 1, 100, BLOCK_SIZE, BLOCK_SIZE * 3 + 5] {
            let data = sample(len);
            let mut wire = Vec::new();
            compress(Some(17), &data, &mut wire).unwrap();
            let mut back = Vec::new();
            lz4_flex::frame::FrameDecoder::new(&wire[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }

    #[test]
    fn reads_lz4_flex_frames_with_every_option() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let data = sample(700_000);
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
                let info = FrameInfo::new()
                    .block_mode(mode)
                    .block_size(size)
                    .block_checksums(true)
                    .content_checksum(true)
                    .content_size(Some(data.len() as u64));
                let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
                enc.write_all(&data).unwrap();
                let wire = enc.finish().unwrap();
                assert_eq!(
                    decompress(&wire, data.len()).unwrap(),
                    data,
                    "{mode:?} {size:?}"
                );
            }
        }
    }

    #[test]
    fn legacy_checksum_differs_and_decodes() {
        let data = sample(200_000);
        let (mut new, mut old) = (Vec::new(), Vec::new());
        compress(None, &data, &mut new).unwrap();
        compress_frame(&data, &mut old, true).unwrap();
        assert_ne!(new[6], old[6]);
        assert_eq!(
            old[6],
            header_checksum(&[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40])
        );
        assert_eq!(&new[..6], &old[..6]);
        assert_eq!(&new[7..], &old[7..]);
        assert_eq!(decompress(&old, data.len()).unwrap(), data);
        // Any other wrong checksum is still refused.
        let mut bad = new.clone();
        bad[6] = (0..=255u8).find(|&b| b != new[6] && b != old[6]).unwrap();
        assert!(decompress(&bad, data.len()).is_err());
    }

    #[test]
    fn incompressible_blocks_stored_raw() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut wire = Vec::new();
        compress(None, &data, &mut wire).unwrap();
        let word = u32::from_le_bytes(wire[7..11].try_into().unwrap());
        assert_eq!(word, 1000 | UNCOMPRESSED);
        assert_eq!(decompress(&wire, 1000).unwrap(), data);
    }

    #[test]
    fn concatenated_frames_and_trailing_garbage() {
        let mut wire = Vec::new();
        compress(None, b"ab", &mut wire).unwrap();
        compress(None, b"cd", &mut wire).unwrap();
        assert_eq!(decompress(&wire, 4).unwrap(), b"abcd");
        wire.push(0);
        assert!(decompress(&wire, 4).is_err());
    }
}
