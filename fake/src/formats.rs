//! The message formats on the way in and out of a log: legacy messages
//! (magic 0 and 1) converted to v2 batches as they are produced, placed at
//! a log's offsets and read back as records; v2 batches converted down for
//! old fetches; and answers cut at a fetch's byte limit.

use bytes::{Bytes, BytesMut};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::records::{
    Batch, DecodeOptions, EncodeOptions, LegacyBatch, LegacyMagic, LegacyMessage, Record,
    RecordBatch, TimestampType, decode_record_set, encode_message_set,
};

use crate::log::{LoggedRecord, TxnStatus};

/// Turns a Produce request's `records` into v2 batches: each v2 batch
/// with its own bytes, and legacy messages (magic 0 and 1) rewritten as
/// one v2 batch per top-level entry, in the entry's codec, as a broker
/// on message format v2 converts them.
pub(crate) fn produced_batches(data: Bytes) -> Result<Vec<(Bytes, RecordBatch)>, ErrorCode> {
    let opts = DecodeOptions::default();
    let set = decode_record_set(data.clone(), &opts).map_err(|_| ErrorCode::CORRUPT_MESSAGE)?;
    if set.is_truncated() || set.batches.is_empty() {
        return Err(ErrorCode::CORRUPT_MESSAGE);
    }
    let mut out = Vec::with_capacity(set.batches.len());
    let mut rest = data;
    for entry in set.batches {
        match entry {
            Batch::V2(batch) => {
                let size = batch_size(&rest).ok_or(ErrorCode::CORRUPT_MESSAGE)?;
                let raw = rest.split_to(size);
                out.push((raw, batch));
            }
            Batch::Legacy(legacy) => {
                let size = batch_size(&rest).ok_or(ErrorCode::CORRUPT_MESSAGE)?;
                let _ = rest.split_to(size);
                out.push(upconvert(&legacy)?);
            }
        }
    }
    Ok(out)
}

/// The size of the entry at the front of `data` (offset, size, body).
pub(crate) fn batch_size(data: &Bytes) -> Option<usize> {
    let len = i32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    let total = 12usize.checked_add(usize::try_from(len).ok()?)?;
    (total <= data.len()).then_some(total)
}

fn upconvert(legacy: &LegacyBatch) -> Result<(Bytes, RecordBatch), ErrorCode> {
    let base_ts = legacy
        .messages
        .first()
        .and_then(|m| m.timestamp)
        .unwrap_or(-1);
    let mut batch = RecordBatch::new(0, base_ts);
    batch.timestamp_type = legacy.timestamp_type;
    for (i, m) in legacy.messages.iter().enumerate() {
        let delta = m.timestamp.map_or(0, |t| t - base_ts);
        batch.records.push(
            Record::new(m.key.clone(), m.value.clone())
                .with_offset_delta(i as i32)
                .with_timestamp_delta(delta),
        );
    }
    batch.compression = legacy.compression;
    let raw = batch
        .encode_to_vec(&EncodeOptions::compressed(legacy.compression))
        .map_err(|_| ErrorCode::CORRUPT_MESSAGE)?;
    Ok((Bytes::from(raw), batch))
}

/// The messages of a stored legacy entry at or past `start`, as records.
pub(crate) fn legacy_records(bytes: &Bytes, start: i64) -> Vec<LoggedRecord> {
    let Ok(l) = LegacyBatch::decode(&mut bytes.clone(), &DecodeOptions::default()) else {
        return Vec::new();
    };
    l.messages
        .into_iter()
        .filter(|m| m.offset >= start)
        .map(|m| LoggedRecord {
            offset: m.offset,
            timestamp: m.timestamp.unwrap_or(-1),
            key: m.key,
            value: m.value,
            headers: Vec::new(),
            producer_id: -1,
            // Message formats 0 and 1 carry no leader epoch.
            leader_epoch: -1,
            compression: l.compression,
            transaction: TxnStatus::None,
        })
        .collect()
}

/// A legacy entry placed at `base`: its bytes with the log's offsets, and
/// its last offset. A plain message, or a magic-1 wrapper whose inner
/// offsets are consecutive, takes them in place (the offset field is
/// outside the CRC); any other wrapper is re-encoded.
pub(crate) fn legacy_at(raw: Bytes, l: &LegacyBatch, base: i64) -> Result<(Bytes, i64), String> {
    let n = l.messages.len().max(1) as i64;
    let last = base + n - 1;
    let start = l.messages.first().map_or(l.offset, |m| m.offset);
    let consecutive = l
        .messages
        .iter()
        .enumerate()
        .all(|(i, m)| m.offset == start + i as i64);
    let in_place = consecutive
        && (start == base || l.compression == Compression::None || l.magic == LegacyMagic::V1);
    if in_place {
        let mut bytes = BytesMut::from(&raw[..]);
        bytes[..8].copy_from_slice(&last.to_be_bytes());
        return Ok((bytes.freeze(), last));
    }
    let messages: Vec<LegacyMessage> = l
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| LegacyMessage {
            offset: base + i as i64,
            ..m.clone()
        })
        .collect();
    let mut out = Vec::new();
    encode_message_set(
        &messages,
        l.magic,
        l.timestamp_type,
        &EncodeOptions::compressed(l.compression),
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    Ok((Bytes::from(out), last))
}

/// Rewrites entries read from a log as a legacy message set for a Fetch
/// below v4 (magic 0 below v2, magic 1 from v2), leaving control batches
/// out, as a broker down-converts for old consumers. The messages come out
/// uncompressed, so those below `from` (the fetch offset) are dropped, as
/// Kafka drops them.
pub(crate) fn downconvert(data: Bytes, fetch_version: i16, from: i64) -> Bytes {
    let magic = if fetch_version >= 2 {
        LegacyMagic::V1
    } else {
        LegacyMagic::V0
    };
    let Ok(set) = decode_record_set(data, &DecodeOptions::default()) else {
        return Bytes::new();
    };
    let mut messages = Vec::new();
    for entry in &set.batches {
        match entry {
            Batch::V2(b) if b.is_control => {}
            Batch::V2(b) => {
                for r in b.iter() {
                    messages.push(LegacyMessage {
                        offset: r.offset,
                        timestamp: (magic == LegacyMagic::V1).then_some(r.timestamp),
                        key: r.record.key.clone(),
                        value: r.record.value.clone(),
                    });
                }
            }
            Batch::Legacy(l) => {
                for m in &l.messages {
                    messages.push(LegacyMessage {
                        timestamp: (magic == LegacyMagic::V1).then(|| m.timestamp.unwrap_or(-1)),
                        ..m.clone()
                    });
                }
            }
        }
    }
    messages.retain(|m| m.offset >= from);
    let mut out = Vec::new();
    if encode_message_set(
        &messages,
        magic,
        TimestampType::CreateTime,
        &EncodeOptions::default(),
        &mut out,
    )
    .is_err()
    {
        return Bytes::new();
    }
    Bytes::from(out)
}

/// The first `limit` bytes of `data`, as a log read slices them from a
/// segment: the last entry may be cut short. With `min_one` (KIP-74) a
/// first entry longer than the limit is kept whole, and only it.
pub(crate) fn slice(data: Bytes, limit: usize, min_one: bool) -> Bytes {
    let first = batch_size(&data).unwrap_or(0);
    let cap = if min_one { limit.max(first) } else { limit };
    if data.len() <= cap {
        data
    } else {
        data.slice(..cap)
    }
}
