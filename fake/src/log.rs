//! One partition's log: the batches producers sent, at the offsets the log
//! gave them, with the bookkeeping a Kafka partition leader keeps beside
//! them: each producer id's epoch and recent sequences (idempotence), the
//! open transactions (the last stable offset) and the aborted ones (what a
//! `read_committed` fetch must skip).

use std::collections::{BTreeMap, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::records::{
    Batch, ControlRecord, ControlRecordType, DecodeOptions, EncodeOptions, RecordBatch,
    decode_record_set,
};

use crate::formats::{batch_size, legacy_at, legacy_records};

/// How many recent batches of each producer a partition remembers to
/// recognise a retried one (Kafka's `NUM_BATCHES_TO_RETAIN`).
const RECENT_BATCHES: usize = 5;

/// Where the magic byte sits in every entry format.
const MAGIC_AT: usize = 16;

/// Where the partition leader epoch sits in a v2 batch (after the base
/// offset and the batch length); like the base offset it is outside the
/// CRC, so the leader may stamp both.
const LEADER_EPOCH_AT: usize = 12;

/// A batch as stored: its bytes (base offset and leader epoch stamped)
/// and what reads need without decoding it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
    pub is_control: bool,
}

/// What the log keeps of one producer id.
#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of recent batches.
    recent: VecDeque<(i32, i32, i64)>,
}

/// A transaction that was aborted: the offsets a `read_committed` reader
/// skips for its producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What one append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub base_offset: i64,
    /// The batch repeated one of the producer's last five (a retry): it was
    /// not written again and `base_offset` is the first write's.
    pub duplicate: bool,
}

/// One partition's log.
#[derive(Debug, Default)]
pub(crate) struct Log {
    batches: Vec<Stored>,
    start: i64,
    end: i64,
    producers: BTreeMap<i64, ProducerEntry>,
    /// Producer id → first offset of its open transaction here.
    open_txns: BTreeMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
}

/// The next sequence after `seq`: sequences wrap from `i32::MAX` to 0.
fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// The last sequence of a batch of `count` records from `base`.
fn last_sequence(base: i32, count: i32) -> i32 {
    let last = i64::from(base) + i64::from(count) - 1;
    (last % (i64::from(i32::MAX) + 1)) as i32
}

impl Log {
    /// The high watermark: every write is acknowledged by every replica at
    /// once, so it is the log end.
    pub(crate) fn high_watermark(&self) -> i64 {
        self.end
    }

    pub(crate) fn log_start(&self) -> i64 {
        self.start
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, or the high watermark.
    pub(crate) fn last_stable(&self) -> i64 {
        self.open_txns.values().copied().min().unwrap_or(self.end)
    }

    /// Forgets every producer's state, as a partition does when retention
    /// or DeleteRecords removed the producer's last batches: the producer's
    /// next batch is taken at whatever sequence it carries.
    pub(crate) fn forget_producers(&mut self) {
        self.producers.clear();
    }

    /// Appends one v2 batch (its bytes as the producer sent them), after
    /// Kafka's idempotence checks. `txn_ok` says whether a transactional
    /// batch's producer has added this partition to an ongoing transaction.
    pub(crate) fn append(
        &mut self,
        raw: &[u8],
        batch: &RecordBatch,
        leader_epoch: i32,
        txn_ok: bool,
    ) -> Result<Appended, ErrorCode> {
        if batch.is_control {
            // Only transaction coordinators write control batches.
            return Err(ErrorCode::INVALID_RECORD);
        }
        let count = batch.records.len() as i32;
        if count == 0 {
            return Err(ErrorCode::INVALID_RECORD);
        }
        let pid = batch.producer_id;
        if batch.is_transactional && (pid < 0 || !txn_ok) {
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        if pid >= 0 {
            let first = batch.base_sequence;
            let last = last_sequence(first, count);
            match self.producers.get(&pid) {
                // No state for the producer (new here, or dropped with the
                // log's start): any sequence is accepted and starts it, as
                // Kafka does since 2.5 (KIP-360).
                None => {}
                Some(e) if batch.producer_epoch < e.epoch => {
                    return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
                }
                // A new epoch starts its sequences at 0.
                Some(e) if batch.producer_epoch > e.epoch && first != 0 => {
                    return Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
                }
                Some(e) if batch.producer_epoch > e.epoch => {}
                Some(e) => {
                    if let Some(&(_, _, offset)) =
                        e.recent.iter().find(|&&(f, l, _)| f == first && l == last)
                    {
                        return Ok(Appended {
                            base_offset: offset,
                            duplicate: true,
                        });
                    }
                    let expected = e.recent.back().map_or(0, |&(_, l, _)| next_sequence(l));
                    if first != expected {
                        return Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
                    }
                }
            }
            let entry = self.producers.entry(pid).or_insert(ProducerEntry {
                epoch: batch.producer_epoch,
                recent: VecDeque::new(),
            });
            if entry.epoch != batch.producer_epoch {
                entry.epoch = batch.producer_epoch;
                entry.recent.clear();
            }
            entry.recent.push_back((first, last, self.end));
            if entry.recent.len() > RECENT_BATCHES {
                entry.recent.pop_front();
            }
        }
        let base = self.end;
        if batch.is_transactional {
            self.open_txns.entry(pid).or_insert(base);
        }
        self.push(raw, base, count, leader_epoch, false);
        Ok(Appended {
            base_offset: base,
            duplicate: false,
        })
    }

    /// Stores `raw` (a v2 batch) at `base`, stamping the base offset and
    /// the leader epoch.
    fn push(&mut self, raw: &[u8], base: i64, count: i32, epoch: i32, control: bool) {
        let mut bytes = BytesMut::with_capacity(raw.len());
        bytes.put_i64(base);
        bytes.extend_from_slice(&raw[8..LEADER_EPOCH_AT]);
        bytes.put_i32(epoch);
        bytes.extend_from_slice(&raw[LEADER_EPOCH_AT + 4..]);
        self.batches.push(Stored {
            base_offset: base,
            last_offset: base + i64::from(count) - 1,
            bytes: bytes.freeze(),
            is_control: control,
        });
        self.end = base + i64::from(count);
    }

    /// Writes a transaction marker for `producer_id` if it has a
    /// transaction open here, closing it. Returns whether one was written.
    pub(crate) fn write_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> bool {
        // Every partition added to the transaction gets its marker, data
        // written to it or not.
        let first = self.open_txns.remove(&producer_id);
        let marker = ControlRecord::end_transaction(commit, coordinator_epoch).to_batch(
            self.end,
            now_ms,
            producer_id,
            producer_epoch,
        );
        let Ok(raw) = marker.encode_to_vec(&EncodeOptions::default()) else {
            return false;
        };
        let at = self.end;
        self.push(&raw, at, 1, leader_epoch, true);
        if let (false, Some(first)) = (commit, first) {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset: first,
                last_offset: at,
            });
        }
        // A marker of a newer epoch moves the producer to it, and its
        // batches of the older epoch are forgotten (as Kafka's producer
        // state does): the new epoch's sequences start again at 0, which
        // must not be taken for a retry of an old batch.
        if let Some(e) = self.producers.get_mut(&producer_id)
            && producer_epoch > e.epoch
        {
            e.epoch = producer_epoch;
            e.recent.clear();
        }
        true
    }

    /// Appends record-set entries as the leader stores them once its checks
    /// passed (no idempotence or transaction checks are made): each at the
    /// log end, a v2 batch with its base offset and the leader epoch
    /// stamped, a legacy (magic 0 or 1) entry with its offsets set in place
    /// where the format allows it and re-encoded at the log's offsets where
    /// not, as Kafka's log validator does. A transactional batch opens its
    /// producer's transaction; an end-transaction marker closes it (an
    /// abort adds it to the aborted transactions). Nothing is written
    /// unless every entry is whole and valid. Returns the first entry's
    /// offset.
    pub(crate) fn append_raw(&mut self, data: Bytes, leader_epoch: i32) -> Result<i64, String> {
        let set = decode_record_set(data.clone(), &DecodeOptions::default())
            .map_err(|e| e.to_string())?;
        if set.is_truncated() {
            return Err(format!(
                "the data ends in {} bytes of a partial entry",
                set.truncated_bytes
            ));
        }
        if set.batches.is_empty() {
            return Err("no record batch or message in the data".into());
        }
        let mut rest = data;
        let mut entries = Vec::with_capacity(set.batches.len());
        for entry in set.batches {
            let size = batch_size(&rest).ok_or("an entry's size is out of range")?;
            entries.push((rest.split_to(size), entry));
        }
        // Placed first, so that nothing is written if any entry fails:
        // (bytes, first offset, last offset, the v2 batch and its count).
        let mut next = self.end;
        let mut placed = Vec::with_capacity(entries.len());
        for (raw, entry) in entries {
            match entry {
                Batch::V2(b) => {
                    let count = b.effective_last_offset_delta().saturating_add(1).max(1);
                    let last = next + i64::from(count) - 1;
                    placed.push((raw, next, last, Some((b, count))));
                    next = last + 1;
                }
                Batch::Legacy(l) => {
                    let (bytes, last) = legacy_at(raw, &l, next)?;
                    placed.push((bytes, next, last, None));
                    next = last + 1;
                }
            }
        }
        let first = self.end;
        for (bytes, base, last, v2) in placed {
            let Some((b, count)) = v2 else {
                self.batches.push(Stored {
                    base_offset: base,
                    last_offset: last,
                    bytes,
                    is_control: false,
                });
                self.end = last + 1;
                continue;
            };
            if b.is_transactional && !b.is_control && b.producer_id >= 0 {
                self.open_txns.entry(b.producer_id).or_insert(base);
            }
            self.push(&bytes, base, count, leader_epoch, b.is_control);
            for marker in b.control_records().flatten() {
                let abort = match marker.record_type {
                    ControlRecordType::Abort => true,
                    ControlRecordType::Commit => false,
                    ControlRecordType::Other(_) => continue,
                };
                let opened = self.open_txns.remove(&b.producer_id);
                if let (true, Some(first_offset)) = (abort, opened) {
                    self.aborted.push(AbortedTxn {
                        producer_id: b.producer_id,
                        first_offset,
                        last_offset: base,
                    });
                }
            }
        }
        Ok(first)
    }

    /// Reads from `offset`: whole batches up to `max_bytes` (the first one
    /// even if larger, as KIP-74 has it) below the high watermark, or
    /// below the last stable offset when `committed`. Also the aborted
    /// transactions that overlap what was read.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<(Bytes, Vec<AbortedTxn>), ErrorCode> {
        self.read_until(offset, committed, |read, next| {
            read > 0 && read + next > max_bytes
        })
    }

    /// Reads whole batches from `offset`, below the high watermark (the
    /// last stable offset when `committed`), until they hold at least
    /// `max_bytes` (or the log ends): the bytes a log read slices its answer
    /// from ([`slice`]). Also the aborted transactions that overlap them.
    pub(crate) fn read_covering(
        &self,
        offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<(Bytes, Vec<AbortedTxn>), ErrorCode> {
        self.read_until(offset, committed, |read, _| read > 0 && read >= max_bytes)
    }

    /// Reads whole batches from `offset` below the high watermark (the last
    /// stable offset when `committed`) until `full(bytes read, size of the
    /// next batch)`; with the aborted transactions that overlap them.
    fn read_until(
        &self,
        offset: i64,
        committed: bool,
        full: impl Fn(usize, usize) -> bool,
    ) -> Result<(Bytes, Vec<AbortedTxn>), ErrorCode> {
        if offset < self.start || offset > self.end {
            return Err(ErrorCode::OFFSET_OUT_OF_RANGE);
        }
        let upper = if committed {
            self.last_stable()
        } else {
            self.end
        };
        let first = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        let mut last_read = offset;
        for b in &self.batches[first..] {
            if b.base_offset >= upper || full(out.len(), b.bytes.len()) {
                break;
            }
            out.extend_from_slice(&b.bytes);
            last_read = b.last_offset;
        }
        let aborted = if committed && !out.is_empty() {
            self.aborted
                .iter()
                .filter(|a| a.last_offset >= offset && a.first_offset <= last_read)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        Ok((out.freeze(), aborted))
    }

    /// The offset of the first record whose timestamp is at least `ts`,
    /// with that timestamp; `None` when none is.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Option<(i64, i64, i32)> {
        self.records()
            .into_iter()
            .find(|r| r.timestamp >= ts)
            .map(|r| (r.offset, r.timestamp, r.leader_epoch))
    }

    /// The offset and timestamp of the record with the largest timestamp
    /// (the first of equals), or `None` in an empty log.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64, i32)> {
        let mut best: Option<(i64, i64, i32)> = None;
        for r in self.records() {
            if best.is_none_or(|(_, t, _)| r.timestamp > t) {
                best = Some((r.offset, r.timestamp, r.leader_epoch));
            }
        }
        best
    }

    /// Moves the log start to `offset` (DeleteRecords); batches wholly
    /// below it go.
    pub(crate) fn delete_before(&mut self, offset: i64) -> Result<i64, ErrorCode> {
        if offset < 0 || offset > self.end {
            return Err(ErrorCode::OFFSET_OUT_OF_RANGE);
        }
        if offset > self.start {
            self.start = offset;
            self.batches.retain(|b| b.last_offset >= offset);
            self.aborted.retain(|a| a.last_offset >= offset);
        }
        Ok(self.start)
    }

    /// Every transaction marker, in offset order.
    pub(crate) fn markers(&self) -> Vec<TxnMarker> {
        let mut out = Vec::new();
        for stored in self.batches.iter().filter(|b| b.is_control) {
            let mut bytes = stored.bytes.clone();
            let Ok(batch) = RecordBatch::decode(&mut bytes, &DecodeOptions::default()) else {
                continue;
            };
            for r in batch.iter() {
                if r.offset < self.start {
                    continue;
                }
                let commit = match ControlRecord::from_record(r.record).map(|c| c.record_type) {
                    Ok(ControlRecordType::Commit) => true,
                    Ok(ControlRecordType::Abort) => false,
                    _ => continue,
                };
                out.push(TxnMarker {
                    offset: r.offset,
                    producer_id: batch.producer_id,
                    producer_epoch: batch.producer_epoch,
                    commit,
                });
            }
        }
        out
    }

    /// Every data record (control batches left out), decoded.
    pub(crate) fn records(&self) -> Vec<LoggedRecord> {
        let mut out = Vec::new();
        for stored in &self.batches {
            if stored.is_control {
                continue;
            }
            if stored.bytes.get(MAGIC_AT).is_some_and(|&m| m < 2) {
                out.extend(legacy_records(&stored.bytes, self.start));
                continue;
            }
            let mut bytes = stored.bytes.clone();
            let Ok(batch) = RecordBatch::decode(&mut bytes, &DecodeOptions::default()) else {
                continue;
            };
            let aborted = batch.is_transactional
                && self.aborted.iter().any(|a| {
                    a.producer_id == batch.producer_id
                        && a.first_offset <= stored.base_offset
                        && stored.base_offset <= a.last_offset
                });
            let open = batch.is_transactional
                && self
                    .open_txns
                    .get(&batch.producer_id)
                    .is_some_and(|&f| f <= stored.base_offset);
            for r in batch.iter() {
                if r.offset < self.start {
                    continue;
                }
                out.push(LoggedRecord {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.record.key.clone(),
                    value: r.record.value.clone(),
                    headers: r
                        .record
                        .headers
                        .iter()
                        .map(|h| (h.key.clone(), h.value.clone()))
                        .collect(),
                    producer_id: batch.producer_id,
                    leader_epoch: batch.partition_leader_epoch,
                    compression: batch.compression,
                    transaction: if !batch.is_transactional {
                        TxnStatus::None
                    } else if aborted {
                        TxnStatus::Aborted
                    } else if open {
                        TxnStatus::Open
                    } else {
                        TxnStatus::Committed
                    },
                });
            }
        }
        out
    }
}

/// Whether a record is part of a transaction and how that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Not written in a transaction.
    None,
    /// Its transaction is still open.
    Open,
    /// Its transaction committed.
    Committed,
    /// Its transaction aborted: `read_committed` readers never see it.
    Aborted,
}

/// A transaction marker as a partition stored it: how one transaction of
/// a producer ended there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The marker's offset.
    pub offset: i64,
    /// The producer whose transaction it ends.
    pub producer_id: i64,
    /// The producer epoch it was written at (after a fencing, the new
    /// instance's epoch).
    pub producer_epoch: i16,
    /// Whether the transaction committed (false: aborted).
    pub commit: bool,
}

/// A record as a partition stored it, for tests to check what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    /// The offset the log gave it.
    pub offset: i64,
    /// Its timestamp (create time, as the producer set it).
    pub timestamp: i64,
    /// The key (`None` is null).
    pub key: Option<Bytes>,
    /// The value (`None` is null).
    pub value: Option<Bytes>,
    /// The headers, in order (a `None` value is null).
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// The producer id of its batch (-1 without idempotence).
    pub producer_id: i64,
    /// The leader epoch its batch was written under (the leader stamps
    /// every batch it appends with its epoch).
    pub leader_epoch: i32,
    /// The codec its batch was compressed with on the wire.
    pub compression: Compression,
    /// Its transaction's status.
    pub transaction: TxnStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use klamm::protocol::records::Record;

    fn batch(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool) -> (Vec<u8>, RecordBatch) {
        let mut b = RecordBatch::new(0, 1000);
        b.producer_id = pid;
        b.producer_epoch = epoch;
        b.base_sequence = seq;
        b.is_transactional = txn;
        for i in 0..n {
            b.records.push(
                Record::new(None, Some(Bytes::from(format!("v{i}")))).with_offset_delta(i as i32),
            );
        }
        let raw = b.encode_to_vec(&EncodeOptions::default()).unwrap();
        let back = RecordBatch::decode(&mut Bytes::from(raw.clone()), &DecodeOptions::default());
        (raw, back.unwrap())
    }

    #[test]
    fn sequences_are_checked_and_retries_answered_with_the_first_offset() {
        let mut log = Log::default();
        let (raw, b) = batch(7, 0, 0, 3, false);
        assert_eq!(log.append(&raw, &b, 0, false).unwrap().base_offset, 0);
        // The same batch again: a duplicate, not written twice.
        let again = log.append(&raw, &b, 0, false).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.base_offset, 0);
        assert_eq!(log.high_watermark(), 3);
        // A gap in the sequence.
        let (raw, b) = batch(7, 0, 4, 1, false);
        assert_eq!(
            log.append(&raw, &b, 0, false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // The next sequence is accepted (the control for the check above).
        let (raw, b) = batch(7, 0, 3, 1, false);
        assert_eq!(log.append(&raw, &b, 0, false).unwrap().base_offset, 3);
        // An older epoch is fenced; a newer one must start at 0.
        let (raw, b) = batch(7, 1, 4, 1, false);
        assert_eq!(
            log.append(&raw, &b, 0, false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let (raw, b) = batch(7, 1, 0, 1, false);
        assert!(log.append(&raw, &b, 0, false).is_ok());
        let (raw, b) = batch(7, 0, 4, 1, false);
        assert_eq!(
            log.append(&raw, &b, 0, false),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        // A producer the log has no state for starts at any sequence.
        log.delete_before(2).unwrap();
        log.forget_producers();
        let (raw, b) = batch(7, 1, 5, 1, false);
        assert!(log.append(&raw, &b, 0, false).is_ok());
        let (raw, b) = batch(7, 1, 7, 1, false);
        assert_eq!(
            log.append(&raw, &b, 0, false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            "and is then checked from there"
        );
    }

    #[test]
    fn a_marker_of_a_newer_epoch_starts_the_producers_sequences_afresh() {
        // Kafka forgets a producer's batches when a marker raises its
        // epoch (a coordinator-bumped abort, or every end of a transaction
        // under KIP-890): the next epoch's sequence 0 is a new batch.
        let mut log = Log::default();
        let (raw, b) = batch(9, 0, 0, 2, true);
        assert_eq!(log.append(&raw, &b, 0, true).unwrap().base_offset, 0);
        assert!(log.write_marker(9, 1, false, 0, 0, 1000));
        let (raw, b) = batch(9, 1, 0, 2, true);
        let appended = log.append(&raw, &b, 0, true).unwrap();
        assert!(!appended.duplicate, "taken for the epoch-0 batch");
        assert_eq!(appended.base_offset, 3);
        assert_eq!(log.high_watermark(), 5);
        // The control: the same batch again is the duplicate.
        let again = log.append(&raw, &b, 0, true).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.base_offset, 3);
    }

    #[test]
    fn the_last_stable_offset_and_aborted_transactions() {
        let mut log = Log::default();
        let (raw, b) = batch(1, 0, 0, 2, true);
        assert_eq!(
            log.append(&raw, &b, 0, false),
            Err(ErrorCode::INVALID_TXN_STATE)
        );
        log.append(&raw, &b, 0, true).unwrap();
        let (raw2, b2) = batch(2, 0, 0, 1, false);
        log.append(&raw2, &b2, 0, false).unwrap();
        assert_eq!(log.last_stable(), 0);
        assert_eq!(log.high_watermark(), 3);
        let (data, _) = log.read(0, 1 << 20, true).unwrap();
        assert!(data.is_empty(), "nothing is stable yet");
        assert!(log.write_marker(1, 0, false, 0, 0, 5));
        assert_eq!(log.last_stable(), 4);
        let (data, aborted) = log.read(0, 1 << 20, true).unwrap();
        assert!(!data.is_empty());
        assert_eq!(
            aborted,
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3
            }]
        );
        let states: Vec<_> = log.records().iter().map(|r| r.transaction).collect();
        assert_eq!(
            states,
            vec![TxnStatus::Aborted, TxnStatus::Aborted, TxnStatus::None]
        );
        assert_eq!(log.read(5, 10, false), Err(ErrorCode::OFFSET_OUT_OF_RANGE));
    }

    #[test]
    fn reads_stop_at_the_size_limit_but_return_a_first_batch_whatever_its_size() {
        let mut log = Log::default();
        let mut size = 0;
        for _ in 0..3 {
            let (raw, b) = batch(-1, -1, -1, 2, false);
            size = raw.len();
            log.append(&raw, &b, 0, false).unwrap();
        }
        assert_eq!(log.read(0, 1, false).unwrap().0.len(), size);
        assert_eq!(log.read(1, size * 2, false).unwrap().0.len(), size * 2);
        assert_eq!(log.read(6, 100, false).unwrap().0.len(), 0);
    }
}
