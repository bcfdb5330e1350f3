//! `read_committed` filtering of one partition's Fetch data.
//!
//! A broker answering a `read_committed` Fetch cuts the data at the last
//! stable offset (LSO) and lists the aborted transactions that overlap the
//! returned range as (producer id, first offset) pairs; it does not remove
//! the aborted records itself. The consumer does, walking the batches in
//! offset order as the Java consumer does:
//!
//! - before each batch, every listed aborted transaction whose first offset
//!   is at or before the batch's last offset marks its producer as aborted;
//! - a transactional data batch from an aborted producer is skipped;
//! - a control batch is never returned; an ABORT marker clears its
//!   producer from the aborted set (so a later transaction of the same
//!   producer is seen), a COMMIT marker changes nothing;
//! - non-transactional batches are always returned;
//! - nothing at or past the LSO is returned (LSO `-1` means unknown: no
//!   cut).
//!
//! Under `read_uncommitted` only control batches are dropped.
//!
//! A consumer's fetch position must still advance past everything the
//! broker returned (skipped batches and markers included), so it is taken
//! from the decoded record set, not from the batches kept here.
//!
//! # References
//! - KIP-98 (transactions, control records, the aborted-transactions list)
//! - Kafka protocol, Fetch response `aborted_transactions` and
//!   `last_stable_offset`

use std::collections::{HashSet, VecDeque};

use crate::config::IsolationLevel;
use crate::error::Result;
use crate::protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
use crate::protocol::records::{
    Batch, ControlRecordType, DecodeOptions, RecordBatch, decode_record_set,
};

/// Decides, batch by batch in offset order, which record batches of one
/// partition's Fetch data a consumer with a given isolation level sees.
///
/// Build one per partition per Fetch response (the aborted list and LSO
/// belong to that response) and call [`TransactionFilter::keep`] on each
/// v2 batch in order.
///
/// ```
/// use klamm::config::IsolationLevel;
/// use klamm::consumer::TransactionFilter;
/// use klamm::protocol::messages::fetch_response::AbortedTransaction;
/// use klamm::protocol::records::{ControlRecord, RecordBatch};
///
/// let aborted = [AbortedTransaction { producer_id: 7, first_offset: 0, ..Default::default() }];
/// let mut filter = TransactionFilter::new(IsolationLevel::ReadCommitted, &aborted, -1);
///
/// let mut data = RecordBatch::new(0, 0);
/// data.is_transactional = true;
/// data.producer_id = 7;
/// let marker = ControlRecord::end_transaction(false, 0).to_batch(1, 0, 7, 0);
/// assert!(!filter.keep(&data)); // aborted data
/// assert!(!filter.keep(&marker)); // markers are never returned
/// assert!(filter.keep(&RecordBatch::new(2, 0))); // non-transactional
/// ```
#[derive(Debug, Clone)]
pub struct TransactionFilter {
    isolation: IsolationLevel,
    /// Aborted transactions not yet reached, by ascending first offset.
    pending: VecDeque<(i64, i64)>,
    /// Producers whose current transaction is aborted.
    aborted: HashSet<i64>,
    last_stable_offset: i64,
}

impl TransactionFilter {
    /// A filter for `isolation`, with the partition's aborted transactions
    /// (in any order) and last stable offset (`-1` if unknown).
    pub fn new(
        isolation: IsolationLevel,
        aborted_transactions: &[AbortedTransaction],
        last_stable_offset: i64,
    ) -> Self {
        let mut pending: Vec<(i64, i64)> = aborted_transactions
            .iter()
            .map(|t| (t.first_offset, t.producer_id))
            .collect();
        pending.sort_by_key(|&(first, _)| first);
        Self {
            isolation,
            pending: pending.into(),
            aborted: HashSet::new(),
            last_stable_offset,
        }
    }

    /// A filter from a Fetch response's partition data (its
    /// `aborted_transactions` and `last_stable_offset`).
    pub fn for_partition(partition: &PartitionData, isolation: IsolationLevel) -> Self {
        Self::new(
            isolation,
            partition
                .aborted_transactions
                .as_deref()
                .unwrap_or_default(),
            partition.last_stable_offset,
        )
    }

    fn read_committed(&self) -> bool {
        self.isolation == IsolationLevel::ReadCommitted
    }

    /// The offset below which records may be returned: the LSO under
    /// `read_committed` when known, else no limit.
    pub fn limit(&self) -> i64 {
        if self.read_committed() && self.last_stable_offset >= 0 {
            self.last_stable_offset
        } else {
            i64::MAX
        }
    }

    /// Whether `batch` (the next batch in offset order) is returned to the
    /// user, updating the aborted-producer state. Control batches are
    /// never kept; under `read_committed` transactional batches of aborted
    /// producers and batches starting at or past the LSO are not either.
    /// A batch straddling the LSO is kept; drop its records from
    /// [`TransactionFilter::limit`] on (as [`committed_batches`] does).
    pub fn keep(&mut self, batch: &RecordBatch) -> bool {
        if !self.read_committed() {
            return !batch.is_control;
        }
        let last = batch.last_offset();
        while let Some(&(first, producer)) = self.pending.front() {
            if first > last {
                break;
            }
            self.aborted.insert(producer);
            self.pending.pop_front();
        }
        if batch.is_control {
            // A marker that does not parse cannot end a transaction; it is
            // hidden like any control batch.
            let abort = batch
                .control_records()
                .any(|c| c.is_ok_and(|c| c.record_type == ControlRecordType::Abort));
            if abort {
                self.aborted.remove(&batch.producer_id);
            }
            return false;
        }
        if batch.base_offset >= self.limit() {
            return false;
        }
        !(batch.is_transactional && self.aborted.contains(&batch.producer_id))
    }

    /// Whether `producer_id`'s current transaction is known to be aborted.
    pub fn is_aborted(&self, producer_id: i64) -> bool {
        self.aborted.contains(&producer_id)
    }
}

/// Decodes a Fetch response partition's `records` and returns the entries
/// a consumer with `isolation` sees, in offset order: v2 batches passed by
/// a [`TransactionFilter`], and legacy (magic 0/1) entries, which are never
/// transactional. Under `read_committed`, records at or past the LSO are
/// removed from the entries returned. Entries left without records are
/// omitted. A partial entry at the end of the data is ignored; the
/// partition's `error_code` is not looked at.
///
/// ```
/// use bytes::Bytes;
/// use klamm::config::IsolationLevel;
/// use klamm::consumer::committed_batches;
/// use klamm::protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
/// use klamm::protocol::records::{Batch, ControlRecord, DecodeOptions, EncodeOptions, Record, RecordBatch};
///
/// let value = |v: &'static str| Record::new(None, Some(Bytes::from_static(v.as_bytes())));
/// let mut aborted = RecordBatch::new(0, 0);
/// aborted.is_transactional = true;
/// aborted.producer_id = 7;
/// aborted.records.push(value("lost"));
/// let marker = ControlRecord::end_transaction(false, 0).to_batch(1, 0, 7, 0);
/// let mut plain = RecordBatch::new(2, 0);
/// plain.records.push(value("kept"));
///
/// let mut records = Vec::new();
/// for b in [&aborted, &marker, &plain] {
///     records.extend(b.encode_to_vec(&EncodeOptions::default())?);
/// }
/// let partition = PartitionData {
///     last_stable_offset: 3,
///     aborted_transactions: Some(vec![AbortedTransaction {
///         producer_id: 7,
///         first_offset: 0,
///         ..Default::default()
///     }]),
///     records: Some(Bytes::from(records)),
///     ..Default::default()
/// };
/// let kept = committed_batches(&partition, IsolationLevel::ReadCommitted, &DecodeOptions::default())?;
/// assert_eq!(kept.len(), 1);
/// let Batch::V2(batch) = &kept[0] else { panic!() };
/// assert_eq!(batch.base_offset, 2);
/// assert_eq!(batch.records[0].value.as_deref(), Some(&b"kept"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn committed_batches(
    partition: &PartitionData,
    isolation: IsolationLevel,
    opts: &DecodeOptions,
) -> Result<Vec<Batch>> {
    let Some(data) = partition.records.clone() else {
        return Ok(Vec::new());
    };
    let set = decode_record_set(data, opts)?;
    let mut filter = TransactionFilter::for_partition(partition, isolation);
    let limit = filter.limit();
    let mut kept = Vec::new();
    for entry in set.batches {
        match entry {
            Batch::V2(mut batch) => {
                if !filter.keep(&batch) {
                    continue;
                }
                if batch.last_offset() >= limit {
                    let base = batch.base_offset;
                    batch
                        .records
                        .retain(|r| base.wrapping_add(i64::from(r.offset_delta)) < limit);
                }
                if !batch.records.is_empty() {
                    kept.push(Batch::V2(batch));
                }
            }
            Batch::Legacy(mut legacy) => {
                legacy.messages.retain(|m| m.offset < limit);
                if !legacy.messages.is_empty() {
                    kept.push(Batch::Legacy(legacy));
                }
            }
        }
    }
    Ok(kept)
}
