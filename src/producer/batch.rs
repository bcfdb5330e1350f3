//! A batch being filled and sent: records are encoded straight into its
//! buffer behind room for the v2 batch header, which is written (and the
//! records compressed) once, when the batch is first sent. A sent batch the
//! broker refuses as too large splits into two smaller ones.

use std::sync::Arc;
use tokio::time::Instant;

use bytes::Bytes;

use super::delivery::{BatchCompletion, DeliveryFuture};
use super::record::ProducerRecord;
use crate::error::{Error, Result};
use crate::protocol::compression::{self, Compression};
use crate::protocol::primitives::varint_len;
use crate::protocol::records::BATCH_HEADER_SIZE;
use crate::protocol::records::{DecodeOptions, Record, RecordBatch};

/// A topic and partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// Bytes of a batch header before the records (61).
pub(crate) const HEADER: usize = BATCH_HEADER_SIZE;
const CRC_START: usize = 21;
const TRANSACTIONAL_BIT: i16 = 0x10;

/// A batch's place in its partition's order, which is the order its
/// records must be written in.
///
/// A new batch gets the next number of the producer's creation counter and
/// `first = 0`. The pieces of a split batch keep its number, and `first` is
/// the index their first record had in the batch it was created as, so
/// pieces sort among themselves by their records and before every later
/// batch, however often they are split again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BatchId {
    pub created: u64,
    pub first: i32,
}

/// `sequence + n` in Kafka's sequence space, which wraps from `i32::MAX` to
/// 0.
pub(crate) fn add_sequence(sequence: i32, n: i32) -> i32 {
    let next = sequence.wrapping_add(n);
    if next < 0 { next & i32::MAX } else { next }
}

/// Producer id, epoch and base sequence written into a batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Stamp {
    /// No producer id: a producer without idempotence.
    pub const NONE: Stamp = Stamp {
        producer_id: -1,
        epoch: -1,
        base_sequence: -1,
    };
}

/// One partition's batch.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub tp: TopicPartition,
    /// Creation order within the producer: a partition's batches are
    /// created, and so must be written, in increasing id order.
    pub id: BatchId,
    /// Header room, then the uncompressed records; empty once encoded.
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    pub created: Instant,
    /// No more records go in (it was full, or it is being sent).
    pub closed: bool,
    /// Bytes of `buffer.memory` this batch holds until it completes.
    pub memory: usize,
    pub completion: Arc<BatchCompletion>,
    /// The wire form, once sent (or about to be).
    encoded: Option<Bytes>,
    pub stamp: Option<Stamp>,
    /// Produce attempts so far (for a split piece, those of the batch it
    /// came from, so it counts as sent before).
    pub attempts: u32,
    /// Attempts that ended in a split: they do not count against
    /// `retries`.
    pub split_attempts: u32,
    /// An attempt ended without an answer (timed out, connection lost), so
    /// the broker may have written the batch. Until an answer settles it,
    /// it may go again only under the stamp it was sent with: under
    /// another epoch the broker could not recognise the copy and would
    /// store it twice.
    pub maybe_written: bool,
    /// Not to be sent again before this time (retry backoff).
    pub retry_at: Option<Instant>,
}

impl ProducerBatch {
    pub(crate) fn new(tp: TopicPartition, id: BatchId, capacity: usize, now: Instant) -> Self {
        Self::in_buffer(tp, id, Vec::with_capacity(capacity.max(HEADER)), now)
    }

    /// A new batch written into `buf` (a buffer of a completed batch, so
    /// that steady producing does not allocate and fault in a buffer per
    /// batch); what it holds is discarded.
    pub(crate) fn in_buffer(
        tp: TopicPartition,
        id: BatchId,
        mut buf: Vec<u8>,
        now: Instant,
    ) -> Self {
        let partition = tp.1;
        buf.clear();
        buf.resize(HEADER, 0);
        ProducerBatch {
            tp,
            id,
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: -1,
            created: now,
            closed: false,
            memory: 0,
            completion: BatchCompletion::new(partition),
            encoded: None,
            stamp: None,
            attempts: 0,
            split_attempts: 0,
            maybe_written: false,
            retry_at: None,
        }
    }

    /// The bytes its buffer has room for before it grows.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Attempts that count against `retries`.
    pub(crate) fn counted_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.split_attempts)
    }

    /// The batch's buffer, for another batch to use, once nothing else
    /// holds it: the wire form when no request or retry still refers to
    /// it (a connection drops its part once written), or the record
    /// buffer of a batch never encoded. Empty, its capacity kept.
    pub(crate) fn take_buffer(&mut self) -> Option<Vec<u8>> {
        let mut buf = match self.encoded.take() {
            Some(bytes) => {
                let mut owned = bytes.try_into_mut().ok()?;
                // Emptied first: the conversion moves what is left to the
                // front of the allocation.
                owned.clear();
                Vec::from(owned)
            }
            None => std::mem::take(&mut self.buf),
        };
        buf.clear();
        (buf.capacity() > 0).then_some(buf)
    }

    /// The buffer the records were written to, once they are compressed
    /// into the wire form and no longer needed (a split decodes the wire
    /// form): empty, its capacity kept, for a new batch. `None` before
    /// encoding and for an uncompressed batch, whose wire form is that
    /// buffer.
    pub(crate) fn take_spent_records(&mut self) -> Option<Vec<u8>> {
        (self.encoded.is_some() && self.buf.capacity() > 0).then(|| std::mem::take(&mut self.buf))
    }

    /// Where the batch's bytes are (its wire form once encoded).
    #[cfg(test)]
    pub(crate) fn buffer_ptr(&self) -> *const u8 {
        match &self.encoded {
            Some(b) => b.as_ptr(),
            None => self.buf.as_ptr(),
        }
    }

    /// Records in the batch.
    pub(crate) fn count(&self) -> i32 {
        self.count
    }

    /// Bytes so far (header included); the wire size once encoded.
    pub(crate) fn size(&self) -> usize {
        match &self.encoded {
            Some(b) => b.len(),
            None => self.buf.len(),
        }
    }

    /// Appends the record if it fits in `limit` bytes (an empty batch
    /// takes any record). Returns its future, or hands the record back.
    // The record comes back by value when the batch is full: boxing it
    // would cost an allocation per record.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_append(
        &mut self,
        record: ProducerRecord,
        timestamp: i64,
        limit: usize,
    ) -> std::result::Result<Result<DeliveryFuture>, ProducerRecord> {
        if self.closed || self.encoded.is_some() {
            return Err(record);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let r = Record {
            attributes: 0,
            timestamp_delta: timestamp.wrapping_sub(self.base_timestamp),
            offset_delta: self.count,
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        let body = match r.body_len() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e.into())),
        };
        let size = body + varint_len(body as i32);
        if self.count > 0 && self.buf.len() + size > limit {
            self.closed = true;
            return Err(ProducerRecord {
                topic: record.topic,
                partition: record.partition,
                key: r.key,
                value: r.value,
                headers: r.headers,
                timestamp: record.timestamp,
            });
        }
        r.write(&mut self.buf, body);
        let index = self.count;
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        if self.buf.len() >= limit {
            self.closed = true;
        }
        Ok(Ok(self.completion.future(index, timestamp)))
    }

    /// The wire form stamped with `stamp`: encoded (and compressed) on the
    /// first call; later calls with another stamp patch the header. A
    /// compressed wire form is written into the buffer `scratch` holds
    /// (one kept from another batch), taking it, else into a new one.
    pub(crate) fn encoded(
        &mut self,
        stamp: Stamp,
        transactional: bool,
        codec: Compression,
        level: Option<i32>,
        scratch: &mut Option<Vec<u8>>,
    ) -> Result<Bytes> {
        self.closed = true;
        if let Some(bytes) = &self.encoded {
            if self.stamp == Some(stamp) {
                return Ok(bytes.clone());
            }
            let mut v = bytes.to_vec();
            write_stamp(&mut v, stamp);
            let bytes = Bytes::from(v);
            self.encoded = Some(bytes.clone());
            self.stamp = Some(stamp);
            return Ok(bytes);
        }
        let mut out = if codec == Compression::None {
            std::mem::take(&mut self.buf)
        } else {
            let mut out = scratch.take().unwrap_or_default();
            out.clear();
            out.reserve(HEADER + (self.buf.len() - HEADER) / 2);
            out.resize(HEADER, 0);
            compression::compress(codec, level, &self.buf[HEADER..], &mut out)?;
            // Emptied, its capacity kept for `take_spent_records`.
            self.buf.clear();
            out
        };
        let batch_len = i32::try_from(out.len() - 12).map_err(|_| Error::Config {
            key: "max.request.size".into(),
            reason: "record batch too large".into(),
        })?;
        let mut attributes = i16::from(codec.code());
        if transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        let h = &mut out[..HEADER];
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        h[8..12].copy_from_slice(&batch_len.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        h[16] = 2;
        h[21..23].copy_from_slice(&attributes.to_be_bytes());
        h[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[57..61].copy_from_slice(&self.count.to_be_bytes());
        write_stamp(&mut out, stamp);
        let bytes = Bytes::from(out);
        self.encoded = Some(bytes.clone());
        self.stamp = Some(stamp);
        Ok(bytes)
    }
}

impl ProducerBatch {
    /// Splits a sent batch of two or more records, which the broker refused
    /// as too large, into two pieces of about half its bytes each (at least
    /// one record each), records in order with their timestamps. The pieces
    /// keep the batch's creation time, attempts and memory (shared out
    /// between them), and are closed. With a stamp, they take the batch's
    /// sequence range between them: the first starts at its base sequence,
    /// the second right after the first. Each piece is encoded afresh when
    /// it is sent, with the producer's codec.
    ///
    /// Returns the index of the second piece's first record, and the
    /// pieces. Fails (leaving the batch as it was) if it has fewer than two
    /// records or has not been encoded.
    pub(crate) fn split(&self) -> Result<(i32, [ProducerBatch; 2])> {
        let cannot = |reason: &str| Error::Config {
            key: "batch.size".into(),
            reason: format!(
                "cannot split a batch of {}/{}: {reason}",
                self.tp.0, self.tp.1
            ),
        };
        let Some(encoded) = &self.encoded else {
            return Err(cannot("it was never encoded"));
        };
        if self.count < 2 {
            return Err(cannot("it holds one record"));
        }
        let decoded = RecordBatch::decode(&mut encoded.clone(), &DecodeOptions::default())?;
        let mut sizes = Vec::with_capacity(decoded.records.len());
        for r in &decoded.records {
            let body = r.body_len()?;
            sizes.push(body + varint_len(body as i32));
        }
        let total: usize = sizes.iter().sum();
        // The first piece takes records while it stays within half the
        // bytes; each piece gets at least one record.
        let mut at = 0;
        let mut taken = 0;
        while at + 1 < sizes.len() && (at == 0 || taken + sizes[at] <= total / 2) {
            taken += sizes[at];
            at += 1;
        }
        let at_i32 = i32::try_from(at).map_err(|_| cannot("too many records"))?;
        let first_memory = if total == 0 {
            self.memory / 2
        } else {
            // `taken < total`, so the share is below `self.memory`.
            usize::try_from(self.memory as u128 * taken as u128 / total as u128).unwrap_or(0)
        };
        let mut pieces = [
            self.piece(0, HEADER + taken, first_memory),
            self.piece(at_i32, HEADER + total - taken, self.memory - first_memory),
        ];
        for (i, r) in decoded.records.into_iter().enumerate() {
            let timestamp = decoded.base_timestamp.wrapping_add(r.timestamp_delta);
            pieces[usize::from(i >= at)].push(r, timestamp)?;
        }
        if let Some(s) = self.stamp {
            pieces[0].stamp = Some(s);
            pieces[1].stamp = Some(Stamp {
                base_sequence: if s.base_sequence < 0 {
                    s.base_sequence
                } else {
                    add_sequence(s.base_sequence, at_i32)
                },
                ..s
            });
        }
        Ok((at_i32, pieces))
    }

    /// An empty piece of this batch that starts at its record `first`.
    fn piece(&self, first: i32, capacity: usize, memory: usize) -> ProducerBatch {
        let id = BatchId {
            created: self.id.created,
            first: self.id.first.wrapping_add(first),
        };
        let mut b = ProducerBatch::new(self.tp.clone(), id, capacity, self.created);
        b.closed = true;
        b.memory = memory;
        b.attempts = self.attempts;
        b.split_attempts = self.split_attempts + 1;
        b
    }

    /// Appends a record taken from another batch, with its absolute
    /// timestamp (no size limit, no future: its future follows it here).
    fn push(&mut self, mut r: Record, timestamp: i64) -> Result<()> {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        r.timestamp_delta = timestamp.wrapping_sub(self.base_timestamp);
        r.offset_delta = self.count;
        let body = r.body_len()?;
        r.write(&mut self.buf, body);
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }
}

/// Writes producer id, epoch and base sequence and recomputes the CRC.
fn write_stamp(out: &mut [u8], stamp: Stamp) {
    out[43..51].copy_from_slice(&stamp.producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&stamp.epoch.to_be_bytes());
    out[53..57].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{DecodeOptions, RecordBatch};

    fn tp() -> TopicPartition {
        (Arc::from("t"), 0)
    }

    fn id(created: u64) -> BatchId {
        BatchId { created, first: 0 }
    }

    #[test]
    fn encoded_batches_decode_with_every_record_and_the_stamp() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = ProducerBatch::new(tp(), id(0), 1024, Instant::now());
            for i in 0..10 {
                let r = ProducerRecord::new("t", format!("value-{i}"))
                    .with_key(format!("k{i}"))
                    .with_header("h", "v");
                assert!(matches!(b.try_append(r, 1000 + i, 16384), Ok(Ok(_))));
            }
            let stamp = Stamp {
                producer_id: 7,
                epoch: 1,
                base_sequence: 20,
            };
            let mut bytes = b
                .encoded(stamp, false, codec, None, &mut None)
                .expect("encode");
            let decoded = RecordBatch::decode(&mut bytes, &DecodeOptions::default())
                .expect("decodes with a valid CRC");
            assert_eq!(decoded.records.len(), 10);
            assert_eq!(decoded.compression, codec);
            assert_eq!(
                (
                    decoded.producer_id,
                    decoded.producer_epoch,
                    decoded.base_sequence
                ),
                (7, 1, 20)
            );
            assert_eq!(decoded.base_timestamp, 1000);
            assert_eq!(decoded.effective_max_timestamp(), 1009);
            let third = decoded.iter().nth(3).map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.record.value.clone(),
                    r.record.headers.len(),
                )
            });
            assert_eq!(
                third,
                Some((3, 1003, Some(Bytes::from_static(b"value-3")), 1))
            );
        }
    }

    #[test]
    fn restamping_patches_the_header_and_keeps_the_crc_valid() {
        let mut b = ProducerBatch::new(tp(), id(0), 1024, Instant::now());
        assert!(matches!(
            b.try_append(ProducerRecord::new("t", "x"), 5, 16384),
            Ok(Ok(_))
        ));
        let first = Stamp {
            producer_id: 1,
            epoch: 0,
            base_sequence: 5,
        };
        let _ = b.encoded(first, false, Compression::Lz4, None, &mut None);
        let second = Stamp {
            producer_id: 1,
            epoch: 1,
            base_sequence: 0,
        };
        let mut bytes = b
            .encoded(second, false, Compression::Lz4, None, &mut None)
            .expect("restamp");
        let decoded =
            RecordBatch::decode(&mut bytes, &DecodeOptions::default()).expect("valid CRC");
        assert_eq!((decoded.producer_epoch, decoded.base_sequence), (1, 0));
    }

    #[test]
    fn a_split_halves_the_bytes_and_keeps_records_timestamps_and_sequences() {
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut b = ProducerBatch::new(
                tp(),
                BatchId {
                    created: 3,
                    first: 0,
                },
                4096,
                Instant::now(),
            );
            b.memory = 1000;
            // One large record first, then small ones: a split by bytes,
            // not by count.
            let values: Vec<Vec<u8>> = (0..9)
                .map(|i| vec![b'a' + i as u8; if i == 0 { 400 } else { 50 }])
                .collect();
            for (i, v) in values.iter().enumerate() {
                let r = ProducerRecord::new("t", v.clone())
                    .with_key(format!("k{i}"))
                    .with_header("h", "v");
                assert!(matches!(
                    b.try_append(r, 1000 + 7 * i as i64, 16384),
                    Ok(Ok(_))
                ));
            }
            assert!(b.split().is_err(), "not sent yet: nothing to split");
            let stamp = Stamp {
                producer_id: 7,
                epoch: 2,
                base_sequence: i32::MAX,
            };
            b.attempts = 3;
            b.split_attempts = 1;
            let whole = b
                .encoded(stamp, true, codec, None, &mut None)
                .expect("encode")
                .len();
            let (at, pieces) = b.split().expect("splits");
            assert_eq!(at, 1, "the 400-byte record is half the bytes on its own");
            let mut records = Vec::new();
            let mut stamps = Vec::new();
            for (i, mut p) in pieces.into_iter().enumerate() {
                assert!(p.closed);
                assert_eq!(
                    (p.attempts, p.split_attempts, p.counted_attempts()),
                    (3, 2, 1)
                );
                assert_eq!(
                    p.id,
                    BatchId {
                        created: 3,
                        first: if i == 0 { 0 } else { at }
                    }
                );
                assert_eq!(p.created, b.created);
                let s = p.stamp.expect("stamped");
                let mut bytes = p
                    .encoded(s, true, codec, None, &mut None)
                    .expect("encode piece");
                assert!(bytes.len() < whole, "{codec:?}: {} of {whole}", bytes.len());
                let d = RecordBatch::decode(&mut bytes, &DecodeOptions::default()).expect("valid");
                assert_eq!(d.compression, codec);
                assert!(d.is_transactional);
                stamps.push((d.producer_id, d.producer_epoch, d.base_sequence, p.memory));
                for r in d.iter() {
                    assert_eq!(
                        r.offset,
                        records.len() as i64 - i64::from(if i == 0 { 0 } else { at })
                    );
                    records.push((
                        r.timestamp,
                        r.record.key.clone(),
                        r.record.value.clone(),
                        r.record.headers.len(),
                    ));
                }
            }
            // Sequences go on from the first piece, wrapping past i32::MAX.
            assert_eq!((stamps[0].0, stamps[0].1, stamps[0].2), (7, 2, i32::MAX));
            assert_eq!((stamps[1].0, stamps[1].1, stamps[1].2), (7, 2, 0));
            assert_eq!(stamps[0].3 + stamps[1].3, 1000, "the memory is shared out");
            let want: Vec<_> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let key = Bytes::from(format!("k{i}"));
                    (
                        1000 + 7 * i as i64,
                        Some(key),
                        Some(Bytes::from(v.clone())),
                        1,
                    )
                })
                .collect();
            assert_eq!(records, want, "{codec:?}");
        }
        // Control: one record cannot be split.
        let mut one = ProducerBatch::new(tp(), id(0), 1024, Instant::now());
        assert!(matches!(
            one.try_append(ProducerRecord::new("t", "x"), 5, 16384),
            Ok(Ok(_))
        ));
        let _ = one.encoded(Stamp::NONE, false, Compression::None, None, &mut None);
        assert!(one.split().is_err());
    }

    #[test]
    fn a_batch_takes_records_up_to_its_limit_and_then_closes() {
        let mut b = ProducerBatch::new(tp(), id(0), 256, Instant::now());
        let mut taken = 0;
        loop {
            match b.try_append(ProducerRecord::new("t", vec![0u8; 40]), 0, 256) {
                Ok(Ok(_)) => taken += 1,
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => break,
            }
        }
        assert!(b.closed);
        assert!(b.size() <= 256, "{}", b.size());
        assert_eq!(taken, b.count());
        assert_eq!(taken, 4); // 61 + 4 * 47 = 249; a fifth would pass 256
        // An empty batch takes even a record larger than its limit.
        let mut big = ProducerBatch::new(tp(), id(1), 64, Instant::now());
        assert!(matches!(
            big.try_append(ProducerRecord::new("t", vec![0u8; 500]), 0, 64),
            Ok(Ok(_))
        ));
        assert!(big.closed);
    }

    /// A compressed batch writes its wire form into the buffer it is given
    /// and hands its records buffer back once spent; the bytes are those
    /// of a batch encoded without either. An uncompressed batch's wire
    /// form is its records buffer: nothing to hand back, nothing taken.
    #[test]
    fn compressed_batches_reuse_buffers_and_hand_back_their_records() {
        let filled = || {
            let mut b = ProducerBatch::new(tp(), id(0), 1024, Instant::now());
            for i in 0..50 {
                let r = ProducerRecord::new("t", format!("value-{i}-{}", "x".repeat(40)));
                assert!(matches!(b.try_append(r, 1000 + i, 1 << 20), Ok(Ok(_))));
            }
            b
        };
        let stamp = Stamp::NONE;
        let plain = filled()
            .encoded(stamp, false, Compression::Lz4, None, &mut None)
            .unwrap();

        let mut b = filled();
        let records_capacity = b.capacity();
        let mut scratch = Some(Vec::with_capacity(1 << 16));
        let given = scratch.as_ref().map(|v| v.as_ptr());
        let bytes = b
            .encoded(stamp, false, Compression::Lz4, None, &mut scratch)
            .unwrap();
        assert!(scratch.is_none(), "the buffer was taken");
        assert_eq!(Some(bytes.as_ptr()), given, "written into the given buffer");
        assert_eq!(bytes, plain);
        let spent = b.take_spent_records().expect("the records buffer");
        assert!(spent.is_empty());
        assert_eq!(spent.capacity(), records_capacity);
        assert!(b.take_spent_records().is_none(), "handed back once");

        let mut b = filled();
        let mut scratch = Some(Vec::with_capacity(64));
        let _ = b
            .encoded(stamp, false, Compression::None, None, &mut scratch)
            .unwrap();
        assert!(scratch.is_some(), "not taken for an uncompressed batch");
        assert!(b.take_spent_records().is_none());
    }
}
