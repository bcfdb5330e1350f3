//! The application's end of one partition: a bounded buffer of fetched
//! chunks, decoded one record batch at a time on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::transactions::TransactionFilter;
use super::{Chunk, ConsumedBatch, ConsumerRecord, Delivery, PartitionShared, Settings};
use crate::error::{Error, Result};
use crate::protocol::error::DecodeError;
use crate::protocol::records::{EncodedRecords, LegacyBatch, Record, RecordBatch, TimestampType};

/// Consumes one partition (Sarama's `PartitionConsumer`), from
/// [`Consumer::consume_partition`](super::Consumer::consume_partition).
///
/// [`recv`](Self::recv) returns records one by one and
/// [`recv_batch`](Self::recv_batch) whole record batches; both may be
/// mixed. Both return `None` once the consumer is closed (after what was
/// buffered), and an error that ends consumption (an out-of-range offset
/// under the `Error` reset policy, a non-retriable broker error) is the
/// last item. A corrupt batch gives an error and consumption goes on after
/// the data fetched with it.
///
/// ```no_run
/// use klamm::consumer::{Consumer, StartOffset};
/// # async fn run(consumer: Consumer) -> klamm::Result<()> {
/// let mut pc = consumer.consume_partition("events", 0, StartOffset::Offset(42)).await?;
/// if let Some(record) = pc.recv().await {
///     let record = record?;
///     assert_eq!(record.offset, 42);
///     println!("lag: {}", pc.high_water_mark() - record.offset - 1);
/// }
/// pc.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PartitionConsumer {
    shared: Arc<PartitionShared>,
    rx: mpsc::Receiver<Delivery>,
    settings: Arc<Settings>,
    paused_all: Arc<AtomicBool>,
    chunk: Option<Current>,
    /// Records of the current batch that `recv` has not returned yet.
    pending: std::vec::IntoIter<ConsumerRecord>,
    pending_marks: (i64, i64),
    /// The offset after the last record `recv` returned (-1: none yet).
    delivered_to: i64,
    /// The offset after the last batch that held nothing for the
    /// application (transaction markers, aborted records).
    skipped_to: i64,
    ended: bool,
    _active: super::ActiveGuard,
}

/// The chunk being decoded.
#[derive(Debug)]
struct Current {
    data: Bytes,
    start: i64,
    high_water_mark: i64,
    last_stable_offset: i64,
    filter: TransactionFilter,
}

impl PartitionConsumer {
    pub(crate) fn new(
        shared: Arc<PartitionShared>,
        rx: mpsc::Receiver<Delivery>,
        settings: Arc<Settings>,
        paused_all: Arc<AtomicBool>,
        active: super::ActiveGuard,
    ) -> Self {
        PartitionConsumer {
            shared,
            rx,
            settings,
            paused_all,
            chunk: None,
            pending: Vec::new().into_iter(),
            pending_marks: (-1, -1),
            delivered_to: -1,
            skipped_to: -1,
            ended: false,
            _active: active,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.shared.partition
    }

    /// The next record, waiting for one to be fetched.
    pub async fn recv(&mut self) -> Option<Result<ConsumerRecord>> {
        loop {
            if let Some(r) = self.pending.next() {
                self.delivered_to = r.offset + 1;
                return Some(Ok(r));
            }
            match self.recv_batch().await? {
                Ok(b) => {
                    self.pending_marks = (b.high_water_mark, b.last_stable_offset);
                    self.pending = b.records.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next run of records: the rest of one fetched record batch (never
    /// empty), waiting for one to be fetched.
    pub async fn recv_batch(&mut self) -> Option<Result<ConsumedBatch>> {
        if self.pending.len() > 0 {
            let records: Vec<ConsumerRecord> = std::mem::take(&mut self.pending).collect();
            return Some(Ok(self.batch(records, self.pending_marks)));
        }
        loop {
            if let Some(r) = self.next_from_chunk() {
                return Some(r);
            }
            if self.ended {
                return None;
            }
            match self.rx.recv().await {
                Some(Ok(chunk)) => {
                    if self.shared.blocked.swap(false, Ordering::SeqCst) {
                        self.shared.wake_fetcher();
                    }
                    self.chunk = Some(Current::new(chunk, &self.settings));
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    fn batch(&self, records: Vec<ConsumerRecord>, marks: (i64, i64)) -> ConsumedBatch {
        ConsumedBatch {
            topic: self.shared.topic.clone(),
            partition: self.shared.partition,
            high_water_mark: marks.0,
            last_stable_offset: marks.1,
            records,
        }
    }

    /// Decodes batches of the current chunk until one has records for the
    /// application.
    fn next_from_chunk(&mut self) -> Option<Result<ConsumedBatch>> {
        let topic = &self.shared.topic;
        let partition = self.shared.partition;
        let opts = &self.settings.decode;
        let cur = self.chunk.as_mut()?;
        loop {
            let magic = match cur.data.get(16) {
                Some(&m) => m,
                None => {
                    self.chunk = None;
                    return None;
                }
            };
            let marks = (cur.high_water_mark, cur.last_stable_offset);
            let records = match magic {
                2 => match RecordBatch::decode_split(&mut cur.data, opts) {
                    Ok((mut b, records)) => {
                        // A marker's record says whether it commits or
                        // aborts, which the filter reads.
                        if b.is_control
                            && let Err(e) = records.decode_into(&mut b)
                        {
                            return Some(Err(self.corrupt(e)));
                        }
                        let below_lso = b.base_offset < cur.filter.limit();
                        if !cur.filter.keep(&b) {
                            // A marker or aborted records: nothing for the
                            // application, but the position moves past
                            // them (not past records beyond the LSO, which
                            // are read again once committed).
                            if below_lso {
                                let after = b.last_offset().saturating_add(1);
                                self.skipped_to = self.skipped_to.max(after);
                            }
                            continue;
                        }
                        let limit = cur.filter.limit();
                        match from_encoded_v2(&b, &records, topic, partition, cur.start, limit) {
                            Ok(records) => records,
                            Err(e) => return Some(Err(self.corrupt(e))),
                        }
                    }
                    Err(e) => return Some(Err(self.corrupt(e))),
                },
                0 | 1 => match LegacyBatch::decode(&mut cur.data, opts) {
                    Ok(b) => from_legacy(b, topic, partition, cur.start),
                    Err(e) => return Some(Err(self.corrupt(e))),
                },
                m => {
                    return Some(Err(self.corrupt(
                        DecodeError::invalid(format!("unknown magic {m}")).context("RecordSet"),
                    )));
                }
            };
            if !records.is_empty() {
                return Some(Ok(self.batch(records, marks)));
            }
        }
    }

    /// A batch did not decode: the rest of its chunk is dropped and the
    /// error reported.
    fn corrupt(&mut self, e: DecodeError) -> Error {
        self.chunk = None;
        tracing::debug!(topic = %self.shared.topic, partition = self.shared.partition,
            error = %e, "corrupt record batch");
        Error::Decode(e.context("PartitionConsumer"))
    }

    /// How far the application has got: the offset after the last record
    /// [`recv`](Self::recv) returned, or after a batch that held nothing
    /// for it (transaction markers, aborted records under
    /// `read_committed`), whichever is later; -1 before either. Once it
    /// reaches [`high_water_mark`](Self::high_water_mark), everything
    /// written so far has been read (kcat's end of partition), even when
    /// the log ends with a marker no record will ever follow. Records
    /// taken with [`recv_batch`](Self::recv_batch) are not counted.
    ///
    /// `recv` is cancel-safe, so a caller can wait for a record with a
    /// timeout and look at the position when none came.
    pub fn position(&self) -> i64 {
        match self.pending.as_slice().first() {
            Some(next) => next.offset,
            None => self.delivered_to.max(self.skipped_to),
        }
    }

    /// The partition's high watermark from the latest fetch response (-1
    /// before the first).
    pub fn high_water_mark(&self) -> i64 {
        self.shared.high_water_mark.load(Ordering::Relaxed)
    }

    /// The partition's last stable offset from the latest fetch response
    /// (-1 before the first, or when the broker does not report it).
    pub fn last_stable_offset(&self) -> i64 {
        self.shared.last_stable_offset.load(Ordering::Relaxed)
    }

    /// Stops fetching this partition. What was buffered before the call is
    /// still delivered; a fetch in flight when it is called delivers
    /// nothing more for it (that data is fetched again after
    /// [`resume`](Self::resume)), so once `pause` returns, no record
    /// written later reaches the application until then.
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Undoes [`PartitionConsumer::pause`].
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
        self.shared.wake_fetcher();
    }

    /// Whether this partition, or the whole consumer, is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst) || self.paused_all.load(Ordering::SeqCst)
    }

    /// Stops consuming the partition; its fetcher forgets it.
    pub async fn close(self) {
        drop(self);
    }
}

impl Drop for PartitionConsumer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake_fetcher();
    }
}

impl Current {
    fn new(chunk: Chunk, settings: &Settings) -> Self {
        Current {
            filter: TransactionFilter::new(
                settings.isolation,
                &chunk.aborted,
                chunk.last_stable_offset,
            ),
            data: chunk.records,
            start: chunk.start,
            high_water_mark: chunk.high_water_mark,
            last_stable_offset: chunk.last_stable_offset,
        }
    }
}

/// What each record of a v2 batch takes from the batch's header.
struct V2Header {
    base_offset: i64,
    base_timestamp: i64,
    timestamp_type: TimestampType,
    /// The batch's max timestamp when the broker stamps log-append time.
    append_time: Option<i64>,
}

impl V2Header {
    fn of(b: &RecordBatch) -> Self {
        V2Header {
            base_offset: b.base_offset,
            base_timestamp: b.base_timestamp,
            timestamp_type: b.timestamp_type,
            append_time: match (b.timestamp_type, b.max_timestamp) {
                (TimestampType::LogAppendTime, Some(max)) => Some(max),
                _ => None,
            },
        }
    }

    /// `r` as the application gets it, if its offset is in
    /// `start..limit`.
    #[inline(always)]
    fn record(
        &self,
        r: Record,
        topic: &Arc<str>,
        partition: i32,
        start: i64,
        limit: i64,
    ) -> Option<ConsumerRecord> {
        let offset = self.base_offset.wrapping_add(i64::from(r.offset_delta));
        if offset < start || offset >= limit {
            return None;
        }
        Some(ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset,
            timestamp: self
                .append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(r.timestamp_delta)),
            timestamp_type: self.timestamp_type,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
    }
}

/// The records of a v2 batch from `start` and before `limit`.
pub(crate) fn from_v2(
    b: RecordBatch,
    topic: &Arc<str>,
    partition: i32,
    start: i64,
    limit: i64,
) -> Vec<ConsumerRecord> {
    let header = V2Header::of(&b);
    b.records
        .into_iter()
        .filter_map(|r| header.record(r, topic, partition, start, limit))
        .collect()
}

/// [`from_v2`] for a batch whose records are still encoded
/// ([`RecordBatch::decode_split`]): each is decoded straight into the
/// application's record. A record that does not decode fails the batch.
fn from_encoded_v2(
    b: &RecordBatch,
    records: &EncodedRecords,
    topic: &Arc<str>,
    partition: i32,
    start: i64,
    limit: i64,
) -> std::result::Result<Vec<ConsumerRecord>, DecodeError> {
    let header = V2Header::of(b);
    let mut out = Vec::with_capacity(records.capacity_hint());
    records.for_each(|r| {
        if let Some(r) = header.record(r, topic, partition, start, limit) {
            out.push(r);
        }
    })?;
    Ok(out)
}

/// The messages of a legacy entry from `start`.
pub(crate) fn from_legacy(
    b: LegacyBatch,
    topic: &Arc<str>,
    partition: i32,
    start: i64,
) -> Vec<ConsumerRecord> {
    let timestamp_type = b.timestamp_type;
    b.messages
        .into_iter()
        .filter(|m| m.offset >= start)
        .map(|m| ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset: m.offset,
            timestamp: m.timestamp.unwrap_or(-1),
            timestamp_type,
            key: m.key,
            value: m.value,
            headers: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::records::{DecodeOptions, EncodeOptions};

    /// A batch of four records at offset 100, as the broker stores it.
    fn wire(append_time: bool) -> Bytes {
        let mut b = RecordBatch::new(100, 5_000);
        if append_time {
            b.timestamp_type = TimestampType::LogAppendTime;
            b.max_timestamp = Some(9_999);
        }
        for i in 0..4 {
            b.records.push(
                Record::new(
                    Some(Bytes::from(format!("k{i}"))),
                    Some(Bytes::from(format!("v{i}"))),
                )
                .with_offset_delta(i)
                .with_timestamp_delta(i64::from(i) * 10),
            );
        }
        Bytes::from(b.encode_to_vec(&EncodeOptions::default()).unwrap())
    }

    #[test]
    fn records_decoded_one_at_a_time_are_those_of_the_whole_batch() {
        let topic: Arc<str> = Arc::from("t");
        let opts = DecodeOptions::default();
        for append_time in [false, true] {
            let whole = RecordBatch::decode(&mut wire(append_time), &opts).unwrap();
            let expected = from_v2(whole, &topic, 3, 101, 103);
            let (b, records) = RecordBatch::decode_split(&mut wire(append_time), &opts).unwrap();
            assert!(b.records.is_empty());
            let got = from_encoded_v2(&b, &records, &topic, 3, 101, 103).unwrap();
            assert_eq!(got, expected);
            let summary: Vec<_> = got.iter().map(|r| (r.offset, r.timestamp)).collect();
            let want = if append_time {
                [(101, 9_999), (102, 9_999)]
            } else {
                [(101, 5_010), (102, 5_020)]
            };
            assert_eq!(summary, want);
        }
    }

    #[test]
    fn a_record_that_does_not_decode_fails_the_batch_as_a_whole_decode_does() {
        // One record more counted than the batch holds, under a valid CRC.
        let mut bad = wire(false).to_vec();
        bad[57..61].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        let opts = DecodeOptions::default();
        let whole = RecordBatch::decode(&mut Bytes::from(bad.clone()), &opts).unwrap_err();
        let (b, records) = RecordBatch::decode_split(&mut Bytes::from(bad), &opts).unwrap();
        let split = from_encoded_v2(&b, &records, &Arc::from("t"), 0, 0, i64::MAX).unwrap_err();
        assert_eq!(split.to_string(), whole.to_string());
        assert_eq!(
            split.path().collect::<Vec<_>>(),
            whole.path().collect::<Vec<_>>()
        );
        assert!(split.to_string().contains("recordsCount is 5"), "{split}");
    }
}
