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

use crate::determinism::HashSet;
use std::collections::VecDeque;

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
            aborted: HashSet::default(),
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

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::protocol::codec::Message;
    use crate::protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse};
    use crate::protocol::records::{ControlRecord, EncodeOptions, Record};

    const PID_A: i64 = 1000;
    const PID_B: i64 = 2000;

    /// A data batch at `base` with one record per value (consecutive
    /// offsets); transactional for `Some(producer_id)`.
    fn data(base: i64, producer: Option<i64>, values: &[&'static str]) -> RecordBatch {
        let mut b = RecordBatch::new(base, 1_700_000_000_000);
        if let Some(pid) = producer {
            b.is_transactional = true;
            b.producer_id = pid;
            b.producer_epoch = 3;
            b.base_sequence = 0;
        }
        for (i, v) in values.iter().enumerate() {
            b.records.push(
                Record::new(None, Some(Bytes::from_static(v.as_bytes())))
                    .with_offset_delta(i as i32),
            );
        }
        b
    }

    fn marker(base: i64, producer: i64, commit: bool) -> RecordBatch {
        ControlRecord::end_transaction(commit, 5).to_batch(base, 1_700_000_000_000, producer, 3)
    }

    /// One partition's Fetch data as a broker would send it, passed
    /// through a whole FetchResponse encoded and decoded at v11.
    fn fetch(batches: &[RecordBatch], aborted: &[(i64, i64)], lso: i64) -> PartitionData {
        let mut records = BytesMut::new();
        for b in batches {
            b.encode(&mut records, &EncodeOptions::default()).unwrap();
        }
        let partition = PartitionData {
            partition_index: 0,
            high_watermark: batches.last().map_or(0, RecordBatch::next_offset),
            last_stable_offset: lso,
            log_start_offset: 0,
            aborted_transactions: Some(
                aborted
                    .iter()
                    .map(|&(producer_id, first_offset)| AbortedTransaction {
                        producer_id,
                        first_offset,
                        ..Default::default()
                    })
                    .collect(),
            ),
            records: Some(records.freeze()),
            ..Default::default()
        };
        let response = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "txn-topic".into(),
                partitions: vec![partition],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        response.encode(&mut buf, 11).unwrap();
        let mut bytes = buf.freeze();
        let decoded = FetchResponse::decode(&mut bytes, 11).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(decoded, response);
        decoded.responses[0].partitions[0].clone()
    }

    /// The (offset, value) of every record returned.
    fn seen(partition: &PartitionData, isolation: IsolationLevel) -> Vec<(i64, String)> {
        let batches = committed_batches(partition, isolation, &DecodeOptions::default()).unwrap();
        let mut out = Vec::new();
        for b in &batches {
            let Batch::V2(b) = b else {
                panic!("unexpected legacy entry")
            };
            assert!(!b.is_control, "control batch returned");
            for r in b.iter() {
                let v = r.record.value.as_deref().unwrap();
                out.push((r.offset, String::from_utf8(v.to_vec()).unwrap()));
            }
        }
        out
    }

    fn expect(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
        pairs.iter().map(|&(o, v)| (o, v.to_string())).collect()
    }

    const RC: IsolationLevel = IsolationLevel::ReadCommitted;
    const RU: IsolationLevel = IsolationLevel::ReadUncommitted;

    #[test]
    fn committed_transaction_is_kept() {
        let p = fetch(
            &[
                data(0, Some(PID_A), &["a0", "a1"]),
                marker(2, PID_A, true),
                data(3, None, &["n3"]),
            ],
            &[],
            4,
        );
        assert_eq!(seen(&p, RC), expect(&[(0, "a0"), (1, "a1"), (3, "n3")]));
    }

    #[test]
    fn aborted_transaction_is_skipped_with_its_marker() {
        let p = fetch(
            &[
                data(0, Some(PID_A), &["a0", "a1"]),
                marker(2, PID_A, false),
                data(3, None, &["n3"]),
            ],
            &[(PID_A, 0)],
            4,
        );
        assert_eq!(seen(&p, RC), expect(&[(3, "n3")]));
    }

    #[test]
    fn interleaved_producers_keep_exactly_the_committed_and_plain_records() {
        let p = fetch(
            &[
                data(0, Some(PID_A), &["a0"]),
                data(1, Some(PID_B), &["b1"]),
                data(2, None, &["n2"]),
                data(3, Some(PID_A), &["a3", "a4"]),
                data(5, Some(PID_B), &["b5"]),
                marker(6, PID_A, false),
                data(7, None, &["n7"]),
                marker(8, PID_B, true),
                data(9, None, &["n9"]),
            ],
            &[(PID_A, 0)],
            10,
        );
        assert_eq!(
            seen(&p, RC),
            expect(&[(1, "b1"), (2, "n2"), (5, "b5"), (7, "n7"), (9, "n9")])
        );
    }

    #[test]
    fn aborted_transaction_spanning_two_fetches() {
        // The first fetch was cut by size before the marker; the second
        // starts at offset 3 and its aborted list names the same
        // transaction again.
        let first = fetch(
            &[
                data(0, Some(PID_A), &["a0"]),
                data(1, None, &["n1"]),
                data(2, Some(PID_A), &["a2"]),
            ],
            &[(PID_A, 0)],
            10,
        );
        let second = fetch(
            &[
                data(3, Some(PID_A), &["a3"]),
                data(4, Some(PID_B), &["b4"]),
                marker(5, PID_A, false),
                marker(6, PID_B, true),
                data(7, None, &["n7"]),
            ],
            &[(PID_A, 0)],
            10,
        );
        assert_eq!(seen(&first, RC), expect(&[(1, "n1")]));
        assert_eq!(seen(&second, RC), expect(&[(4, "b4"), (7, "n7")]));
    }

    #[test]
    fn abort_marker_clears_the_producer_for_its_next_transaction() {
        // Two aborted transactions of the same producer, listed out of
        // order, around two committed ones.
        let batches = [
            data(0, Some(PID_A), &["x0"]),
            marker(1, PID_A, false),
            data(2, Some(PID_A), &["y2"]),
            marker(3, PID_A, true),
            data(4, Some(PID_A), &["z4"]),
            marker(5, PID_A, false),
            data(6, Some(PID_A), &["w6"]),
            marker(7, PID_A, true),
        ];
        let p = fetch(&batches, &[(PID_A, 4), (PID_A, 0)], 8);
        assert_eq!(seen(&p, RC), expect(&[(2, "y2"), (6, "w6")]));

        // Step by step: the marker at 1 clears the producer, the listed
        // abort at 4 marks it again.
        let mut f = TransactionFilter::for_partition(&p, RC);
        let kept: Vec<bool> = batches.iter().map(|b| f.keep(b)).collect();
        assert_eq!(kept, [false, false, true, false, false, false, true, false]);
        assert!(!f.is_aborted(PID_A));
    }

    #[test]
    fn nothing_at_or_past_the_last_stable_offset_is_returned() {
        let batches = [
            data(0, None, &["n0"]),
            data(1, Some(PID_A), &["a1"]),
            marker(2, PID_A, true),
            data(3, None, &["n3", "n4"]),
            data(5, Some(PID_B), &["b5"]),
            data(6, None, &["n6"]),
        ];
        // LSO 4 falls inside the plain batch at 3: its record 4 is cut too.
        let p = fetch(&batches, &[], 4);
        assert_eq!(seen(&p, RC), expect(&[(0, "n0"), (1, "a1"), (3, "n3")]));
        // LSO -1 (unknown): no cut.
        let p = fetch(&batches, &[], -1);
        assert_eq!(
            seen(&p, RC),
            expect(&[
                (0, "n0"),
                (1, "a1"),
                (3, "n3"),
                (4, "n4"),
                (5, "b5"),
                (6, "n6")
            ])
        );
    }

    #[test]
    fn read_uncommitted_returns_aborted_data_but_no_control_records() {
        let p = fetch(
            &[
                data(0, Some(PID_A), &["a0", "a1"]),
                data(2, Some(PID_B), &["b2"]),
                marker(3, PID_A, false),
                marker(4, PID_B, true),
                data(5, None, &["n5"]),
                data(6, Some(PID_A), &["a6"]),
            ],
            &[(PID_A, 0)],
            // read_uncommitted ignores the LSO.
            6,
        );
        assert_eq!(
            seen(&p, RU),
            expect(&[(0, "a0"), (1, "a1"), (2, "b2"), (5, "n5"), (6, "a6")])
        );
        assert_eq!(seen(&p, RC), expect(&[(2, "b2"), (5, "n5")]));
    }

    #[test]
    fn empty_or_null_records_give_nothing() {
        let mut p = fetch(&[], &[], 0);
        assert!(seen(&p, RC).is_empty());
        p.records = None;
        assert!(seen(&p, RC).is_empty());
    }
}
