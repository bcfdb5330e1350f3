//! Compression codecs for record batches and legacy message sets.
//!
//! Kafka compresses the records of a batch as one unit and marks the codec in
//! the low three bits of the batch (or legacy message) `attributes` field.
//! This module maps those codes to [`Compression`], and compresses and
//! decompresses payloads in the exact framings the Java client writes and
//! reads:
//!
//! | codec  | code | framing on the wire                                   | levels (default)      |
//! |--------|------|-------------------------------------------------------|-----------------------|
//! | none   | 0    | the bytes as they are                                 | none accepted         |
//! | gzip   | 1    | gzip (RFC 1952), several members accepted on decode   | 1..=9 or -1 (6)       |
//! | snappy | 2    | xerial-framed stream; a plain raw block also decodes  | none accepted         |
//! | lz4    | 3    | LZ4 frame (KIP-57); the pre-KIP-57 framing decodes    | 1..=17 (9)            |
//! | zstd   | 4    | zstd frames                                           | zstd's range (3)      |
//!
//! Decompression is bounded: [`decompress`] never produces more than the
//! `max_size` it is given and never reserves memory from a length found in
//! the input beyond that cap, so a small hostile payload (a "compression
//! bomb") costs at most `max_size` bytes of memory before it is refused with
//! [`DecodeErrorKind::DecompressedTooLarge`]. Every other failure is a
//! [`DecodeErrorKind::Decompression`] whose text starts with the codec name.
//!
//! ```
//! use klamm::protocol::compression::{compress, decompress, Compression};
//!
//! let records = b"hello hello hello hello hello hello".repeat(100);
//! for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
//!     let mut wire = Vec::new();
//!     compress(codec, None, &records, &mut wire).unwrap();
//!     assert!(wire.len() < records.len());
//!     assert_eq!(decompress(codec, &wire, records.len()).unwrap(), records);
//! }
//! ```
//!
//! # References
//! - Kafka docs, section 5.3 "Message Format" (attribute bits 0..2)
//! - KIP-57 (LZ4 frame format fix, KAFKA-3160), KIP-110 (zstd), KIP-390
//!   (compression levels)
//! - xerial snappy-java `SnappyOutputStream` stream layout
//! - LZ4 frame format specification (lz4/lz4 `doc/lz4_Frame_format.md`)

use std::io::{self, Read};

use super::error::{DecodeError, DecodeErrorKind, EncodeError};

mod gzip;
mod lz4;
mod snappy;
mod xxh32;
mod zstd;

#[cfg(test)]
mod tests;

/// The default cap on decompressed size used by callers that have no better
/// figure: 256 MiB.
///
/// Kafka itself puts no cap on decompression, but a batch can only be as big
/// as the broker lets it be on the wire (`message.max.bytes`, about 1 MiB by
/// default and rarely configured above a few tens of MiB) and real record
/// data seldom compresses by more than 10:1. 256 MiB leaves ample room for
/// any legitimate batch while still keeping a hostile or corrupt payload from
/// exhausting the memory of an ordinary host.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 256 * 1024 * 1024;

/// A compression codec, as carried in the low three bits of a record batch's
/// (or legacy message's) `attributes` field.
///
/// ```
/// use klamm::protocol::compression::Compression;
///
/// let codec = Compression::from_code(3).unwrap();
/// assert_eq!(codec, Compression::Lz4);
/// assert_eq!((codec.code(), codec.name()), (3, "lz4"));
/// assert!(Compression::from_code(5).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (code 0).
    #[default]
    None,
    /// gzip (code 1).
    Gzip,
    /// Snappy in the xerial framing (code 2).
    Snappy,
    /// LZ4 frame format (code 3).
    Lz4,
    /// Zstandard (code 4, needs magic v2 batches).
    Zstd,
}

impl Compression {
    /// Every codec, in code order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec for a code taken from the low 3 bits of an attributes field
    /// (0..=4). Any other value is a [`DecodeErrorKind::Invalid`] error.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(DecodeError::invalid(format!(
                "unknown compression codec {other}"
            ))),
        }
    }

    /// The wire code: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The name Kafka uses for the codec in configuration
    /// (`compression.type`): "none", "gzip", "snappy", "lz4" or "zstd".
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Checks a compression level for this codec, as [`compress`] would,
    /// and gives the level that would be used (`None` picks the codec's
    /// default). Codecs without levels (none, snappy) give 0 for `None` and
    /// refuse any level.
    ///
    /// ```
    /// use klamm::protocol::compression::Compression;
    ///
    /// assert_eq!(Compression::Gzip.check_level(None).unwrap(), 6);
    /// assert_eq!(Compression::Gzip.check_level(Some(-1)).unwrap(), 6);
    /// assert!(Compression::Gzip.check_level(Some(10)).is_err());
    /// assert_eq!(Compression::Lz4.check_level(Some(17)).unwrap(), 17);
    /// assert!(Compression::Snappy.check_level(Some(1)).is_err());
    /// ```
    pub fn check_level(self, level: Option<i32>) -> Result<i32, EncodeError> {
        match self {
            Self::None | Self::Snappy => reject_level(self, level).map(|()| 0),
            Self::Gzip => gzip::resolve_level(level),
            Self::Lz4 => lz4::resolve_level(level),
            Self::Zstd => zstd::resolve_level(level),
        }
    }

    /// The codec for a configuration name ("none", "gzip", "snappy", "lz4",
    /// "zstd"), ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Compresses `input` with `codec` and appends the result to `out`.
///
/// `level` is the codec's compression level; `None` picks the Java client's
/// default for that codec. Accepted levels:
///
/// - none: no level may be given.
/// - gzip: 1..=9, or -1 (zlib's "default", which is 6); default 6.
/// - snappy: no level may be given (snappy has none).
/// - lz4: 1..=17 (Kafka's range from KIP-390); default 9. Every level gives
///   the same output: only LZ4's fast compressor is available here, so the
///   level is checked for configuration compatibility and otherwise ignored.
/// - zstd: zstd's own range (negative "fast" levels up to 22); default 3.
///
/// A level outside the codec's range is an [`EncodeError::Invalid`]; a
/// failure inside a codec is an [`EncodeError::Compression`]. On error `out`
/// may hold a partial result after its original contents.
pub fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match codec {
        Compression::None => {
            reject_level(codec, level)?;
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => gzip::compress(level, input, out),
        Compression::Snappy => {
            reject_level(codec, level)?;
            snappy::compress(input, out)
        }
        Compression::Lz4 => lz4::compress(level, input, out),
        Compression::Zstd => zstd::compress(level, input, out),
    }
}

/// Decompresses `input`, which was compressed with `codec`, refusing to
/// produce more than `max_size` bytes.
///
/// Output of exactly `max_size` bytes is accepted; anything larger is a
/// [`DecodeErrorKind::DecompressedTooLarge`] error, raised before the excess
/// is produced. Corrupt, truncated or unsupported input is a
/// [`DecodeErrorKind::Decompression`] error naming the codec. An empty input
/// is an error for every codec except [`Compression::None`], since each
/// codec's encoding of even empty data is non-empty.
///
/// What is accepted beyond what the Java client writes:
/// - gzip: several concatenated members (decoded one after the other).
/// - snappy: a single raw snappy block without the xerial framing, and
///   concatenated xerial streams.
/// - lz4: frames with block or content checksums, a content size, or linked
///   blocks, several concatenated frames, and the pre-KIP-57 framing whose
///   header checksum also covered the magic number.
/// - zstd: several concatenated frames and skippable frames.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_size: usize,
) -> Result<Vec<u8>, DecodeError> {
    if codec != Compression::None && input.is_empty() {
        return Err(codec_error(codec.name(), "empty input"));
    }
    match codec {
        Compression::None => {
            if input.len() > max_size {
                return Err(too_large(max_size));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => gzip::decompress(input, max_size),
        Compression::Snappy => snappy::decompress(input, max_size),
        Compression::Lz4 => lz4::decompress(input, max_size),
        Compression::Zstd => zstd::decompress(input, max_size),
    }
}

/// Compresses `input` as LZ4 in the framing Kafka wrote for legacy magic-0
/// message sets, and appends it to `out`.
///
/// Before KIP-57 Kafka computed the frame descriptor's header checksum over
/// the four magic-number bytes as well as the descriptor (KAFKA-3160).
/// Brokers and clients still expect that broken checksum inside magic-0
/// messages, so a writer of magic-0 LZ4 messages must reproduce it. Apart
/// from that one byte the frame is the one [`compress`] writes for
/// [`Compression::Lz4`]. [`decompress`] reads both framings.
pub fn compress_lz4_legacy_v0(input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    lz4::compress_frame(input, out, true)
}

fn reject_level(codec: Compression, level: Option<i32>) -> Result<(), EncodeError> {
    match level {
        None => Ok(()),
        Some(l) => Err(EncodeError::Invalid(format!(
            "{} compression has no levels, but level {l} was given",
            codec.name()
        ))),
    }
}

/// Checks a level against an inclusive range, giving the default for `None`.
fn level_in(
    codec: Compression,
    level: Option<i32>,
    range: std::ops::RangeInclusive<i32>,
    default: i32,
) -> Result<i32, EncodeError> {
    match level {
        None => Ok(default),
        Some(l) if range.contains(&l) => Ok(l),
        Some(l) => Err(EncodeError::Invalid(format!(
            "{} compression level {l} is outside {}..={}",
            codec.name(),
            range.start(),
            range.end()
        ))),
    }
}

#[cold]
fn codec_error(codec: &str, what: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Decompression(format!("{codec}: {what}")))
}

#[cold]
fn too_large(limit: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::DecompressedTooLarge { limit })
}

#[cold]
fn encode_error(codec: &str, what: impl std::fmt::Display) -> EncodeError {
    EncodeError::Compression(format!("{codec}: {what}"))
}

/// Makes room for `additional` more bytes in `out`, which may never grow past
/// `max_size`. Growth doubles like `Vec`'s own, but is clamped at the cap so
/// the capacity never exceeds it. Errors if the cap would be passed.
fn reserve_capped(
    out: &mut Vec<u8>,
    additional: usize,
    max_size: usize,
) -> Result<(), DecodeError> {
    let needed = out
        .len()
        .checked_add(additional)
        .filter(|&n| n <= max_size)
        .ok_or_else(|| too_large(max_size))?;
    if needed > out.capacity() {
        let target = out.capacity().saturating_mul(2).clamp(needed, max_size);
        out.reserve_exact(target - out.len());
    }
    Ok(())
}

/// Reads a decoding stream to its end, failing as soon as it yields more than
/// `max_size` bytes. I/O errors from the stream become codec errors.
///
/// The stream writes straight into the output, 16 KiB of zeroed room at a
/// time (the allocation grows by [`reserve_capped`], so never past the
/// cap), rather than into a scratch chunk copied over after every read.
fn read_capped<R: Read>(
    mut reader: R,
    max_size: usize,
    codec: &str,
) -> Result<Vec<u8>, DecodeError> {
    const STEP: usize = 16 * 1024;
    let mut out = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if filled == max_size {
                // Exactly at the cap: complete if the stream ends here, too
                // large if it yields one more byte.
                return match read_some(&mut reader, &mut [0u8; 1], codec)? {
                    0 => Ok(out),
                    _ => Err(too_large(max_size)),
                };
            }
            let step = STEP.min(max_size - filled);
            reserve_capped(&mut out, step, max_size)?;
            out.resize(filled + step, 0);
        }
        match read_some(&mut reader, &mut out[filled..], codec)? {
            0 => {
                out.truncate(filled);
                return Ok(out);
            }
            n => filled += n,
        }
    }
}

/// One read into `buf`, retried when interrupted; other I/O errors become
/// codec errors.
fn read_some<R: Read>(reader: &mut R, buf: &mut [u8], codec: &str) -> Result<usize, DecodeError> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map_err(|e| codec_error(codec, e)),
        }
    }
}
