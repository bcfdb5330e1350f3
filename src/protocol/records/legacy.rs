//! The legacy message sets: magic 0 (before Kafka 0.10) and magic 1
//! (0.10, KIP-31/32: timestamps and relative inner offsets).
//!
//! ```text
//! offset       int64
//! messageSize  int32   bytes after this field
//! crc          uint32  CRC-32 (IEEE) of magic..end
//! magic        int8    0 or 1
//! attributes   int8    bits 0-2 codec, bit 3 timestamp type (magic 1)
//! timestamp    int64   magic 1 only
//! key          bytes   int32 length, -1 = null
//! value        bytes   int32 length, -1 = null
//! ```
//!
//! A compressed message is a *wrapper*: its value is a compressed message
//! set of plain messages (a wrapper inside a wrapper is rejected). Under
//! magic 0 the inner offsets are absolute; under magic 1 they are relative
//! (0, 1, ...) and the wrapper carries the absolute offset of the last
//! inner message, so `absolute = wrapper - last_relative + relative`.

use bytes::{Buf, BufMut, Bytes};

use super::{DecodeOptions, EncodeOptions, EncodeTarget, TimestampType, wire_len};
use crate::protocol::compression::{self, Compression};
use crate::protocol::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::protocol::primitives::{read_i8, read_i64, read_nullable_bytes};

type DResult<T> = Result<T, DecodeError>;

/// Bytes of a message entry before the message: offset and size.
const LOG_OVERHEAD: usize = 12;
/// Smallest magic-0 message (crc, magic, attributes, two null lengths).
const MIN_MESSAGE_SIZE_V0: usize = 14;
const COMPRESSION_MASK: i8 = 0x07;
const TIMESTAMP_TYPE_BIT: i8 = 0x08;

/// The legacy message format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyMagic {
    /// Magic 0: no timestamps, absolute inner offsets.
    V0,
    /// Magic 1: timestamps and relative inner offsets.
    V1,
}

impl LegacyMagic {
    /// The magic byte.
    pub fn value(self) -> i8 {
        match self {
            Self::V0 => 0,
            Self::V1 => 1,
        }
    }

    fn from_value(v: i8) -> DResult<Self> {
        match v {
            0 => Ok(Self::V0),
            1 => Ok(Self::V1),
            m => Err(DecodeError::invalid(format!(
                "magic {m} where a legacy message (magic 0 or 1) was expected"
            ))),
        }
    }
}

/// One message of a legacy message set, with its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LegacyMessage {
    /// Absolute offset.
    pub offset: i64,
    /// The timestamp (magic 1; `None` under magic 0). Under log-append time
    /// this is the wrapper's timestamp.
    pub timestamp: Option<i64>,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
}

/// One top-level entry of a legacy message set: a plain message (one
/// element in `messages`) or a compressed wrapper and the messages inside
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBatch {
    /// The format version.
    pub magic: LegacyMagic,
    /// The wrapper's codec (`None` for a plain message).
    pub compression: Compression,
    /// The top-level message's timestamp type (magic 1).
    pub timestamp_type: TimestampType,
    /// The top-level message's offset (for a wrapper, the last inner
    /// offset).
    pub offset: i64,
    /// The top-level message's timestamp (magic 1).
    pub timestamp: Option<i64>,
    /// The messages, with absolute offsets.
    pub messages: Vec<LegacyMessage>,
}

/// A message as it is on the wire, before wrapper expansion.
struct RawMessage {
    offset: i64,
    magic: LegacyMagic,
    attributes: i8,
    timestamp: Option<i64>,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// Decodes one message entry (offset, size, message) from the front of
/// `buf`, checking its CRC.
fn decode_message(buf: &mut Bytes, opts: &DecodeOptions) -> DResult<RawMessage> {
    if buf.len() < LOG_OVERHEAD {
        return Err(DecodeError::eof(LOG_OVERHEAD, buf.len()));
    }
    let size = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if size < MIN_MESSAGE_SIZE_V0 as i32 {
        return Err(DecodeError::invalid(format!(
            "message size {size} is smaller than the {MIN_MESSAGE_SIZE_V0}-byte minimum"
        ))
        .context("messageSize"));
    }
    let total = LOG_OVERHEAD + size as usize;
    if total > buf.len() {
        return Err(DecodeError::eof(total, buf.len()).context("messageSize"));
    }
    let entry = buf.split_to(total);
    let offset = (&entry[..8]).get_i64();
    let stored_crc = (&entry[12..16]).get_u32();
    let magic = LegacyMagic::from_value(entry[16] as i8).map_err(|e| e.context("magic"))?;
    if opts.verify_crc {
        let computed = crc32fast::hash(&entry[16..]);
        if computed != stored_crc {
            return Err(DecodeError::new(DecodeErrorKind::CrcMismatch {
                stored: stored_crc,
                computed,
            })
            .context("crc"));
        }
    }
    let mut body = entry.slice(17..);
    let attributes = read_i8(&mut body).map_err(|e| e.context("attributes"))?;
    let timestamp = match magic {
        LegacyMagic::V0 => None,
        LegacyMagic::V1 => Some(read_i64(&mut body).map_err(|e| e.context("timestamp"))?),
    };
    let key = read_nullable_bytes(&mut body, false).map_err(|e| e.context("key"))?;
    let value = read_nullable_bytes(&mut body, false).map_err(|e| e.context("value"))?;
    if !body.is_empty() {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(body.len())));
    }
    Ok(RawMessage {
        offset,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

impl LegacyBatch {
    /// Decodes one top-level message from the front of `buf` (advancing it),
    /// expanding a compressed wrapper into its messages.
    pub fn decode(buf: &mut Bytes, opts: &DecodeOptions) -> DResult<Self> {
        let remaining = buf.len();
        Self::decode_inner(buf, opts)
            .map_err(|e| e.context("LegacyMessageSet").at_remaining(remaining))
    }

    fn decode_inner(buf: &mut Bytes, opts: &DecodeOptions) -> DResult<Self> {
        let raw = decode_message(buf, opts).map_err(|e| e.context("Message"))?;
        let codec = Compression::from_code((raw.attributes & COMPRESSION_MASK) as u8)
            .map_err(|e| e.context("attributes").context("Message"))?;
        let timestamp_type = match raw.magic {
            LegacyMagic::V0 => TimestampType::CreateTime,
            LegacyMagic::V1 => TimestampType::from_bit(raw.attributes & TIMESTAMP_TYPE_BIT != 0),
        };
        let messages = if codec == Compression::None {
            vec![LegacyMessage {
                offset: raw.offset,
                timestamp: raw.timestamp,
                key: raw.key,
                value: raw.value,
            }]
        } else {
            expand_wrapper(&raw, codec, timestamp_type, opts).map_err(|e| e.context("Message"))?
        };
        Ok(Self {
            magic: raw.magic,
            compression: codec,
            timestamp_type,
            offset: raw.offset,
            timestamp: raw.timestamp,
            messages,
        })
    }

    /// The offset of the last message.
    pub fn last_offset(&self) -> i64 {
        self.messages.last().map_or(self.offset, |m| m.offset)
    }

    /// The offset after the last message.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
}

fn expand_wrapper(
    wrapper: &RawMessage,
    codec: Compression,
    timestamp_type: TimestampType,
    opts: &DecodeOptions,
) -> DResult<Vec<LegacyMessage>> {
    if codec == Compression::Zstd {
        return Err(
            DecodeError::invalid("zstd compression is not allowed before magic 2")
                .context("attributes"),
        );
    }
    let compressed = wrapper.value.as_ref().ok_or_else(|| {
        DecodeError::invalid("compressed wrapper message with a null value").context("value")
    })?;
    let plain = compression::decompress(codec, compressed, opts.max_decompressed_size)
        .map_err(|e| e.context("value"))?;
    let mut inner = Bytes::from(plain);
    let mut messages = Vec::with_capacity(inner.len() / (LOG_OVERHEAD + MIN_MESSAGE_SIZE_V0));
    while !inner.is_empty() {
        let remaining = inner.len();
        let m = decode_message(&mut inner, opts)
            .map_err(|e| e.at_remaining(remaining).context("inner"))?;
        if m.attributes & COMPRESSION_MASK != 0 {
            // Only one level of wrapping exists in the format.
            return Err(DecodeError::new(DecodeErrorKind::TooDeep { limit: 1 })
                .at_remaining(remaining)
                .context("inner"));
        }
        if m.magic != wrapper.magic {
            return Err(DecodeError::invalid(format!(
                "inner message magic {} differs from the wrapper's {}",
                m.magic.value(),
                wrapper.magic.value()
            ))
            .context("inner"));
        }
        messages.push(LegacyMessage {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
        });
    }
    let Some(last) = messages.last() else {
        return Err(DecodeError::invalid("compressed wrapper holds no messages").context("value"));
    };
    if wrapper.magic == LegacyMagic::V1 {
        // KIP-31: the wrapper holds the absolute offset of the last message.
        // Producers write wrappers before offsets exist (librdkafka writes
        // 0, so the base comes out negative): that is accepted, as brokers
        // do, and only an overflowing difference is an error.
        let base = wrapper.offset.checked_sub(last.offset).ok_or_else(|| {
            DecodeError::invalid(format!(
                "wrapper offset {} minus the last relative offset {} overflows",
                wrapper.offset, last.offset
            ))
            .context("offset")
        })?;
        let log_append = timestamp_type == TimestampType::LogAppendTime;
        for m in &mut messages {
            m.offset = base.wrapping_add(m.offset);
            if log_append {
                m.timestamp = wrapper.timestamp;
            }
        }
    }
    Ok(messages)
}

/// Writes a message entry whose value is `value`, filling size and CRC.
fn write_message<B: EncodeTarget>(
    out: &mut B,
    offset: i64,
    magic: LegacyMagic,
    attributes: i8,
    timestamp: Option<i64>,
    key: Option<&[u8]>,
    value: MessageValue<'_>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_i64(offset);
    out.put_i32(0); // size, filled in below
    out.put_u32(0); // crc, filled in below
    out.put_i8(magic.value());
    out.put_i8(attributes);
    if magic == LegacyMagic::V1 {
        out.put_i64(timestamp.unwrap_or(-1));
    }
    put_bytes(out, key, "message key")?;
    match value {
        MessageValue::Plain(v) => put_bytes(out, v, "message value")?,
        MessageValue::Compressed {
            codec,
            level,
            plain,
        } => {
            let len_at = out.len();
            out.put_i32(0);
            if codec == Compression::Lz4 && magic == LegacyMagic::V0 {
                out.append_lz4_legacy(plain)?;
            } else {
                out.append_compressed(codec, level, plain)?;
            }
            let n = wire_len(out.len() - len_at - 4, "compressed message set")?;
            out[len_at..len_at + 4].copy_from_slice(&n.to_be_bytes());
        }
    }
    let size = wire_len(out.len() - start - LOG_OVERHEAD, "message")?;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

enum MessageValue<'a> {
    Plain(Option<&'a [u8]>),
    Compressed {
        codec: Compression,
        level: Option<i32>,
        plain: &'a [u8],
    },
}

fn put_bytes<B: BufMut>(
    out: &mut B,
    b: Option<&[u8]>,
    what: &'static str,
) -> Result<(), EncodeError> {
    match b {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(wire_len(b.len(), what)?);
            out.put_slice(b);
        }
    }
    Ok(())
}

/// Encodes `messages` as a legacy message set, appending to `out`.
///
/// Without compression each message is written with its own offset (and,
/// under magic 1, its timestamp, `-1` if `None`). With compression the
/// messages go into one wrapper message: under magic 0 the inner offsets
/// are the absolute ones and LZ4 uses the old magic-0 framing; under magic
/// 1 the inner offsets are relative to the first message. The wrapper takes
/// the last message's offset and (magic 1) the largest inner timestamp and
/// the given timestamp type. Zstd is refused (it needs magic 2). An empty
/// slice writes nothing. On error `out` is left as it was.
pub fn encode_message_set<B: EncodeTarget>(
    messages: &[LegacyMessage],
    magic: LegacyMagic,
    timestamp_type: TimestampType,
    opts: &EncodeOptions,
    out: &mut B,
) -> Result<(), EncodeError> {
    let start = out.len();
    let r = encode_set_inner(messages, magic, timestamp_type, opts, out);
    if r.is_err() {
        out.truncate_to(start);
    }
    r
}

fn encode_set_inner<B: EncodeTarget>(
    messages: &[LegacyMessage],
    magic: LegacyMagic,
    timestamp_type: TimestampType,
    opts: &EncodeOptions,
    out: &mut B,
) -> Result<(), EncodeError> {
    let ts_bit = if magic == LegacyMagic::V1 && timestamp_type.bit() {
        TIMESTAMP_TYPE_BIT
    } else {
        0
    };
    let codec = opts.compression;
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    if codec == Compression::None {
        for m in messages {
            write_message(
                out,
                m.offset,
                magic,
                ts_bit,
                m.timestamp,
                m.key.as_deref(),
                MessageValue::Plain(m.value.as_deref()),
            )?;
        }
        return Ok(());
    }
    if codec == Compression::Zstd {
        return Err(EncodeError::Invalid(
            "zstd compression needs magic 2 (record batches)".into(),
        ));
    }
    let size: usize = messages
        .iter()
        .map(|m| {
            LOG_OVERHEAD
                + MIN_MESSAGE_SIZE_V0
                + 8
                + m.key.as_ref().map_or(0, |k| k.len())
                + m.value.as_ref().map_or(0, |v| v.len())
        })
        .fold(0usize, usize::saturating_add);
    let mut plain: Vec<u8> = Vec::with_capacity(size);
    for m in messages {
        let inner_offset = match magic {
            LegacyMagic::V0 => m.offset,
            LegacyMagic::V1 => m.offset.wrapping_sub(first.offset),
        };
        write_message(
            &mut plain,
            inner_offset,
            magic,
            0,
            m.timestamp,
            m.key.as_deref(),
            MessageValue::Plain(m.value.as_deref()),
        )?;
    }
    let wrapper_ts = messages.iter().filter_map(|m| m.timestamp).max();
    write_message(
        out,
        last.offset,
        magic,
        codec.code() as i8 | ts_bit,
        wrapper_ts,
        None,
        MessageValue::Compressed {
            codec,
            level: opts.level,
            plain: &plain,
        },
    )
}

#[cfg(test)]
mod tests;
