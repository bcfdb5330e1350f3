//! The v2 record batch (magic 2): a fixed 61-byte header, then the records,
//! possibly compressed as one block.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            int64
//!      8     4  batchLength           int32  (bytes after this field)
//!     12     4  partitionLeaderEpoch  int32
//!     16     1  magic                 int8   (2)
//!     17     4  crc                   uint32 (CRC-32C of bytes 21..end)
//!     21     2  attributes            int16
//!     23     4  lastOffsetDelta       int32
//!     27     8  baseTimestamp         int64
//!     35     8  maxTimestamp          int64
//!     43     8  producerId            int64
//!     51     2  producerEpoch         int16
//!     53     4  baseSequence          int32
//!     57     4  recordsCount          int32
//!     61        records
//! ```

use bytes::{Buf, Bytes};

use super::record::{MIN_RECORD_SIZE, Record, SliceReader};
use super::{DecodeOptions, EncodeOptions, EncodeTarget, TimestampType, wire_len};
use crate::protocol::compression::{self, Compression};
use crate::protocol::error::{DecodeError, DecodeErrorKind, EncodeError};

/// The largest average record size (bytes of records over their count) of
/// an uncompressed batch that [`DecodeOptions::copy_uncompressed_batches`]
/// copies: past it the copy costs more than the shared reference count it
/// avoids (10 KiB records consumed: 1.14x the CPU with the copy, 1 KiB:
/// 0.95x, 100 B: 0.48x).
const COPY_MAX_RECORD_AVERAGE: usize = 1024;

type DResult<T> = Result<T, DecodeError>;

/// Size of the batch header, up to and including the record count.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before `batchLength`'s count starts (baseOffset + batchLength).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Offset of the byte range the CRC covers (from `attributes`).
const CRC_START: usize = 21;
/// Offset of the magic byte in every record format.
pub(crate) const MAGIC_OFFSET: usize = 16;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// A v2 record batch.
///
/// Decoding fills every field from the wire. For encoding,
/// `last_offset_delta` and `max_timestamp` may be left `None` to have them
/// computed from the records; the codec comes from [`EncodeOptions`], not
/// from the `compression` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record (records carry deltas from it).
    pub base_offset: i64,
    /// The partition leader epoch stamped by the broker (-1 if unknown).
    pub partition_leader_epoch: i32,
    /// The codec the records section was compressed with when decoded.
    pub compression: Compression,
    /// Attribute bit 3.
    pub timestamp_type: TimestampType,
    /// Attribute bit 4: part of a transaction.
    pub is_transactional: bool,
    /// Attribute bit 5: holds control records (see
    /// [`ControlRecord`](super::ControlRecord)).
    pub is_control: bool,
    /// Attribute bit 6: `base_timestamp` is the delete horizon set by
    /// compaction.
    pub has_delete_horizon: bool,
    /// The last offset minus the base offset. `None` when encoding computes
    /// it from the last record.
    pub last_offset_delta: Option<i32>,
    /// The timestamp the records' deltas are relative to.
    pub base_timestamp: i64,
    /// The largest timestamp in the batch. `None` when encoding computes it
    /// from the records (-1 for an empty batch).
    pub max_timestamp: Option<i64>,
    /// The producer id (-1 if none).
    pub producer_id: i64,
    /// The producer epoch (-1 if none).
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 if none).
    pub base_sequence: i32,
    /// The records.
    pub records: Vec<Record>,
}

impl Default for RecordBatch {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

/// A record with its absolute offset and timestamp, from
/// [`RecordBatch::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp (the batch's max timestamp under log-append
    /// time).
    pub timestamp: i64,
    /// The record itself.
    pub record: &'a Record,
}

impl RecordBatch {
    /// An empty, non-transactional, uncompressed create-time batch with no
    /// producer id.
    pub fn new(base_offset: i64, base_timestamp: i64) -> Self {
        Self {
            base_offset,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            has_delete_horizon: false,
            last_offset_delta: None,
            base_timestamp,
            max_timestamp: None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    /// The attributes word for the given codec.
    fn attributes(&self, codec: Compression) -> i16 {
        let mut a = i16::from(codec.code()) & COMPRESSION_MASK;
        if self.timestamp_type.bit() {
            a |= TIMESTAMP_TYPE_BIT;
        }
        if self.is_transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if self.is_control {
            a |= CONTROL_BIT;
        }
        if self.has_delete_horizon {
            a |= DELETE_HORIZON_BIT;
        }
        a
    }

    /// The absolute offset of a record of this batch.
    pub fn offset_of(&self, record: &Record) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(record.offset_delta))
    }

    /// The absolute timestamp of a record of this batch: under log-append
    /// time the batch's max timestamp, else base timestamp plus delta.
    pub fn timestamp_of(&self, record: &Record) -> i64 {
        let own = self.base_timestamp.wrapping_add(record.timestamp_delta);
        match (self.timestamp_type, self.max_timestamp) {
            (TimestampType::LogAppendTime, Some(max)) => max,
            _ => own,
        }
    }

    /// The records with their absolute offsets and timestamps.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        self.records.iter().map(move |r| RecordRef {
            offset: self.offset_of(r),
            timestamp: self.timestamp_of(r),
            record: r,
        })
    }

    /// The last offset delta, as given or as encoding would compute it.
    pub fn effective_last_offset_delta(&self) -> i32 {
        self.last_offset_delta
            .unwrap_or_else(|| self.records.last().map_or(0, |r| r.offset_delta))
    }

    /// The offset of the batch's last record (kept by compaction even when
    /// that record is gone).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.effective_last_offset_delta()))
    }

    /// The max timestamp, as given or as encoding would compute it.
    pub fn effective_max_timestamp(&self) -> i64 {
        self.max_timestamp.unwrap_or_else(|| {
            self.records
                .iter()
                .map(|r| self.base_timestamp.wrapping_add(r.timestamp_delta))
                .max()
                .unwrap_or(-1)
        })
    }

    /// The delete horizon set by compaction, if attribute bit 6 is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon.then_some(self.base_timestamp)
    }

    /// The offset the next batch would start at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Encodes the batch, appending it to `out`: the header with placeholder
    /// length and CRC, the records (compressed with `opts.compression`), then
    /// the length and CRC filled in. On error `out` is left as it was.
    pub fn encode<B: EncodeTarget>(
        &self,
        out: &mut B,
        opts: &EncodeOptions,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_inner(out, opts, start);
        if r.is_err() {
            out.truncate_to(start);
        }
        r
    }

    /// Encodes the batch into a new `Vec`.
    pub fn encode_to_vec(&self, opts: &EncodeOptions) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v, opts)?;
        Ok(v)
    }

    fn encode_inner<B: EncodeTarget>(
        &self,
        out: &mut B,
        opts: &EncodeOptions,
        start: usize,
    ) -> Result<(), EncodeError> {
        let count = wire_len(self.records.len(), "record count")?;
        let codec = opts.compression;
        out.reserve_more(BATCH_HEADER_SIZE);
        out.put_i64(self.base_offset);
        out.put_i32(0); // batchLength, filled in below
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(2);
        out.put_u32(0); // crc, filled in below
        out.put_i16(self.attributes(codec));
        out.put_i32(self.effective_last_offset_delta());
        out.put_i64(self.base_timestamp);
        out.put_i64(self.effective_max_timestamp());
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(count);
        // One pass: each record's size is computed (and checked) just
        // before it is written, with no list of sizes kept in between.
        if codec == Compression::None {
            write_records(&self.records, out)?;
        } else {
            let mut plain = Vec::with_capacity(size_hint(&self.records));
            write_records(&self.records, &mut plain)?;
            out.append_compressed(codec, opts.level, &plain)?;
        }
        let batch_len = wire_len(out.len() - start - LOG_OVERHEAD, "record batch")?;
        out[start + 8..start + 12].copy_from_slice(&batch_len.to_be_bytes());
        let crc = crc32c::crc32c(&out[start + CRC_START..]);
        out[start + 17..start + CRC_START].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Decodes one batch from the front of `buf`, advancing it past the
    /// batch. The records are zero-copy slices of `buf` (or of the one
    /// decompressed buffer).
    pub fn decode(buf: &mut Bytes, opts: &DecodeOptions) -> DResult<Self> {
        let (mut batch, records) = Self::decode_split(buf, opts)?;
        records.decode_into(&mut batch)?;
        Ok(batch)
    }

    /// [`RecordBatch::decode`] in two steps: the batch with no records
    /// (its header checked, its CRC verified, its records decompressed),
    /// and its records still encoded, for the caller to decode one at a
    /// time ([`EncodedRecords::for_each`]) into what it keeps of them,
    /// with no list of [`Record`]s in between.
    pub(crate) fn decode_split(
        buf: &mut Bytes,
        opts: &DecodeOptions,
    ) -> DResult<(Self, EncodedRecords)> {
        let remaining = buf.len();
        Self::decode_header(buf, opts, remaining)
            .map_err(|e| e.context("RecordBatch").at_remaining(remaining))
    }

    fn decode_header(
        buf: &mut Bytes,
        opts: &DecodeOptions,
        remaining: usize,
    ) -> DResult<(Self, EncodedRecords)> {
        if buf.len() < LOG_OVERHEAD {
            return Err(DecodeError::eof(LOG_OVERHEAD, buf.len()));
        }
        let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let min = (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32;
        if batch_len < min {
            return Err(DecodeError::invalid(format!(
                "batch length {batch_len} is smaller than the {min}-byte batch header"
            ))
            .context("batchLength"));
        }
        let total = LOG_OVERHEAD + batch_len as usize;
        if total > buf.len() {
            return Err(DecodeError::eof(total, buf.len()).context("batchLength"));
        }
        let data = buf.split_to(total);
        let mut h = &data[..BATCH_HEADER_SIZE];
        let base_offset = h.get_i64();
        let _batch_len = h.get_i32();
        let partition_leader_epoch = h.get_i32();
        let magic = h.get_i8();
        if magic != 2 {
            return Err(DecodeError::invalid(format!(
                "magic {magic} where a v2 record batch (magic 2) was expected"
            ))
            .context("magic"));
        }
        let stored_crc = h.get_u32();
        if opts.verify_crc {
            let computed = crc32c::crc32c(&data[CRC_START..]);
            if computed != stored_crc {
                return Err(DecodeError::new(DecodeErrorKind::CrcMismatch {
                    stored: stored_crc,
                    computed,
                })
                .context("crc"));
            }
        }
        let attributes = h.get_i16();
        let last_offset_delta = h.get_i32();
        let base_timestamp = h.get_i64();
        let max_timestamp = h.get_i64();
        let producer_id = h.get_i64();
        let producer_epoch = h.get_i16();
        let base_sequence = h.get_i32();
        let count = h.get_i32();
        let compression = Compression::from_code((attributes & COMPRESSION_MASK) as u8)
            .map_err(|e| e.context("attributes"))?;
        if count < 0 {
            return Err(
                DecodeError::new(DecodeErrorKind::NegativeLength(i64::from(count)))
                    .context("recordsCount"),
            );
        }
        // The records are slices of the batch itself (or of a copy of it,
        // when asked for), or of the one decompressed buffer.
        let (owner, start) = if compression == Compression::None {
            let records_len = data.len() - BATCH_HEADER_SIZE;
            if opts.copy_uncompressed_batches
                && records_len <= (count as usize).saturating_mul(COPY_MAX_RECORD_AVERAGE)
            {
                (Bytes::copy_from_slice(&data[BATCH_HEADER_SIZE..]), 0)
            } else {
                (data, BATCH_HEADER_SIZE)
            }
        } else {
            let plain = compression::decompress(
                compression,
                &data[BATCH_HEADER_SIZE..],
                opts.max_decompressed_size,
            )
            .map_err(|e| e.context("records"))?;
            (Bytes::from(plain), 0)
        };
        let records = EncodedRecords {
            owner,
            start,
            count: count as usize,
            remaining,
        };
        let batch = Self {
            base_offset,
            partition_leader_epoch,
            compression,
            timestamp_type: TimestampType::from_bit(attributes & TIMESTAMP_TYPE_BIT != 0),
            is_transactional: attributes & TRANSACTIONAL_BIT != 0,
            is_control: attributes & CONTROL_BIT != 0,
            has_delete_horizon: attributes & DELETE_HORIZON_BIT != 0,
            last_offset_delta: Some(last_offset_delta),
            base_timestamp,
            max_timestamp: Some(max_timestamp),
            producer_id,
            producer_epoch,
            base_sequence,
            records: Vec::new(),
        };
        Ok((batch, records))
    }
}

/// The records of a decoded batch header, still encoded
/// ([`RecordBatch::decode_split`]).
#[derive(Debug)]
pub(crate) struct EncodedRecords {
    /// The batch's bytes, or its decompressed records.
    owner: Bytes,
    /// Where the records start in `owner`.
    start: usize,
    /// The batch's record count.
    count: usize,
    /// The bytes left in the input when the batch was decoded (for errors).
    remaining: usize,
}

impl EncodedRecords {
    /// How many records a list of them should make room for: the count,
    /// but never more than the bytes could hold.
    pub(crate) fn capacity_hint(&self) -> usize {
        self.count
            .min(self.owner.len().saturating_sub(self.start) / MIN_RECORD_SIZE)
    }

    /// Decodes the records into `batch.records` (after any it holds).
    pub(crate) fn decode_into(&self, batch: &mut RecordBatch) -> DResult<()> {
        batch.records.reserve(self.capacity_hint());
        self.for_each(|r| batch.records.push(r))
    }

    /// Decodes exactly `count` records, which must fill the bytes
    /// completely, and hands each to `each` in order. On an error some
    /// records may have been handed over already: the batch is corrupt,
    /// and the caller drops what it gathered.
    pub(crate) fn for_each(&self, each: impl FnMut(Record)) -> DResult<()> {
        decode_records(&self.owner, self.start, self.count, each)
            .map_err(|e| e.context("RecordBatch").at_remaining(self.remaining))
    }
}

/// Appends the records to `out`. Stops with an error as soon as they pass
/// what a batch's length field can cover (after the header), so a batch too
/// large for the wire is not written out in full before it fails; the
/// same bound holds for the uncompressed records of a compressed batch.
fn write_records<T: EncodeTarget>(records: &[Record], out: &mut T) -> Result<(), EncodeError> {
    write_records_within(
        records,
        out,
        i32::MAX as usize - (BATCH_HEADER_SIZE - LOG_OVERHEAD),
    )
}

/// About the records' encoded size: their keys and values and a few bytes
/// of framing each (headers aside), so a buffer made this large rarely
/// grows, and copies itself, while they go in.
fn size_hint(records: &[Record]) -> usize {
    let n = records.iter().fold(0usize, |n, r| {
        n.saturating_add(r.key.as_ref().map_or(0, Bytes::len))
            .saturating_add(r.value.as_ref().map_or(0, Bytes::len))
            .saturating_add(8)
    });
    n.min(i32::MAX as usize)
}

/// [`write_records`] with `room` bytes for the records.
fn write_records_within<T: EncodeTarget>(
    records: &[Record],
    out: &mut T,
    room: usize,
) -> Result<(), EncodeError> {
    const HEADER_AFTER_LENGTH: usize = BATCH_HEADER_SIZE - LOG_OVERHEAD;
    let first = out.len();
    for r in records {
        let body = r.body_len()?;
        r.write(out, body);
        if out.len() - first > room {
            return Err(EncodeError::TooLong {
                what: "record batch",
                length: out.len() - first + HEADER_AFTER_LENGTH,
                limit: room + HEADER_AFTER_LENGTH,
            });
        }
    }
    Ok(())
}

/// Decodes exactly `count` records from `owner[start..]`, which they must
/// fill completely, handing each to `each`.
#[inline(always)]
fn decode_records(
    owner: &Bytes,
    start: usize,
    count: usize,
    mut each: impl FnMut(Record),
) -> DResult<()> {
    let mut rd = SliceReader::new(owner, start);
    for i in 0..count {
        if rd.remaining() == 0 {
            return Err(DecodeError::invalid(format!(
                "recordsCount is {count} but the records end after {i}"
            ))
            .context("recordsCount"));
        }
        let remaining = rd.remaining();
        each(
            rd.record()
                .map_err(|e| e.at_remaining(remaining).context("Record"))?,
        );
    }
    if rd.remaining() != 0 {
        return Err(
            DecodeError::new(DecodeErrorKind::TrailingBytes(rd.remaining())).context("records"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
