//! The `records` field of Fetch (and Produce): a run of entries, each a v2
//! batch or a legacy message, told apart by the magic byte at offset 16
//! (the same place in every format). A broker cuts the data at the fetch
//! size, so the last entry may be partial; that is reported, not an error.

use bytes::Bytes;

use super::batch::{LOG_OVERHEAD, MAGIC_OFFSET};
use super::{DecodeOptions, LegacyBatch, RecordBatch};
use crate::protocol::error::DecodeError;

type DResult<T> = Result<T, DecodeError>;

/// One entry of a record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A v2 record batch (magic 2).
    V2(RecordBatch),
    /// A legacy message (magic 0 or 1), expanded if it was a wrapper.
    Legacy(LegacyBatch),
}

impl Batch {
    /// The offset after the entry's last record.
    pub fn next_offset(&self) -> i64 {
        match self {
            Self::V2(b) => b.next_offset(),
            Self::Legacy(b) => b.next_offset(),
        }
    }

    /// How many records or messages the entry holds.
    pub fn len(&self) -> usize {
        match self {
            Self::V2(b) => b.records.len(),
            Self::Legacy(b) => b.messages.len(),
        }
    }

    /// Whether the entry holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The decoded `records` field: the complete entries, and how many bytes
/// of a partial entry followed them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordSet {
    /// The complete entries, in order.
    pub batches: Vec<Batch>,
    /// Bytes at the end that did not make a whole entry (the broker cut the
    /// response at its size limit). Zero if the data ended cleanly.
    pub truncated_bytes: usize,
}

impl RecordSet {
    /// Whether the data ended in a partial entry.
    pub fn is_truncated(&self) -> bool {
        self.truncated_bytes > 0
    }

    /// The total number of records and messages.
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(Batch::len).sum()
    }
}

/// Decodes a `records` field: every complete entry (v2 batches and legacy
/// messages, mixed as they come), then notes a partial entry at the end.
/// A partial tail is not an error; a corrupt complete entry is.
///
/// ```
/// use bytes::Bytes;
/// use klamm::protocol::records::{decode_record_set, DecodeOptions, EncodeOptions, Record, RecordBatch};
///
/// let mut batch = RecordBatch::new(0, 0);
/// batch.records.push(Record::new(None, Some(Bytes::from_static(b"v"))));
/// let mut data = batch.encode_to_vec(&EncodeOptions::default())?;
/// let whole = data.len();
/// data.extend_from_within(..whole - 3); // a second batch, cut short
/// let set = decode_record_set(Bytes::from(data), &DecodeOptions::default())?;
/// assert_eq!(set.batches.len(), 1);
/// assert_eq!(set.truncated_bytes, whole - 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_record_set(data: Bytes, opts: &DecodeOptions) -> DResult<RecordSet> {
    let mut rest = data;
    let mut batches = Vec::new();
    while !rest.is_empty() {
        if rest.len() < LOG_OVERHEAD {
            break;
        }
        let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if size < 0 {
            return Err(DecodeError::invalid(format!("negative entry size {size}"))
                .at_remaining(rest.len())
                .context("RecordSet"));
        }
        let total = LOG_OVERHEAD as u64 + size as u64;
        if total > rest.len() as u64 {
            break;
        }
        let magic = match rest.get(MAGIC_OFFSET) {
            Some(&m) if total > MAGIC_OFFSET as u64 => m,
            _ => {
                return Err(DecodeError::invalid(format!(
                    "entry of {total} bytes is too short to hold a magic byte"
                ))
                .at_remaining(rest.len())
                .context("RecordSet"));
            }
        };
        let entry = match magic {
            2 => Batch::V2(RecordBatch::decode(&mut rest, opts).map_err(in_set)?),
            0 | 1 => Batch::Legacy(LegacyBatch::decode(&mut rest, opts).map_err(in_set)?),
            m => {
                return Err(DecodeError::invalid(format!("unknown magic {m}"))
                    .at_remaining(rest.len())
                    .context("RecordSet"));
            }
        };
        batches.push(entry);
    }
    Ok(RecordSet {
        batches,
        truncated_bytes: rest.len(),
    })
}

#[cold]
fn in_set(e: DecodeError) -> DecodeError {
    e.context("RecordSet")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::DecodeErrorKind;
    use crate::protocol::records::{
        EncodeOptions, LegacyMagic, LegacyMessage, Record, TimestampType, encode_message_set,
    };

    fn v2(base: i64, n: i32) -> Vec<u8> {
        let mut batch = RecordBatch::new(base, 0);
        for i in 0..n {
            batch
                .records
                .push(Record::new(None, Some(Bytes::from_static(b"payload"))).with_offset_delta(i));
        }
        batch.encode_to_vec(&EncodeOptions::default()).unwrap()
    }

    fn legacy(magic: LegacyMagic, offset: i64) -> Vec<u8> {
        let m = LegacyMessage {
            offset,
            timestamp: (magic == LegacyMagic::V1).then_some(9),
            key: None,
            value: Some(Bytes::from_static(b"old")),
        };
        let mut out = Vec::new();
        encode_message_set(
            &[m],
            magic,
            TimestampType::CreateTime,
            &EncodeOptions::default(),
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn mixed_entries_and_a_partial_tail() {
        let mut data = Vec::new();
        data.extend(legacy(LegacyMagic::V0, 0));
        data.extend(legacy(LegacyMagic::V1, 1));
        data.extend(v2(2, 3));
        data.extend(v2(5, 2));
        let full = data.len();
        for cut in 0..40 {
            // A cut anywhere inside the last batch only truncates it.
            let next = v2(7, 4);
            let mut d = data.clone();
            d.extend_from_slice(&next[..next.len() - 1 - cut]);
            let set = decode_record_set(Bytes::from(d), &DecodeOptions::default()).unwrap();
            assert_eq!(set.batches.len(), 4);
            assert_eq!(set.truncated_bytes, next.len() - 1 - cut);
            assert!(set.is_truncated());
        }
        let set = decode_record_set(Bytes::from(data), &DecodeOptions::default()).unwrap();
        assert!(!set.is_truncated());
        assert_eq!(set.record_count(), 7);
        let nexts: Vec<_> = set.batches.iter().map(Batch::next_offset).collect();
        assert_eq!(nexts, vec![1, 2, 5, 7]);
        assert!(matches!(set.batches[0], Batch::Legacy(ref b) if b.magic == LegacyMagic::V0));
        assert!(matches!(set.batches[1], Batch::Legacy(ref b) if b.magic == LegacyMagic::V1));
        assert!(matches!(set.batches[2], Batch::V2(_)));
        assert!(full > 0);
        let empty = decode_record_set(Bytes::new(), &DecodeOptions::default()).unwrap();
        assert_eq!(empty, RecordSet::default());
    }

    #[test]
    fn a_corrupt_complete_batch_is_an_error() {
        let mut data = v2(0, 2);
        let second = v2(2, 2);
        let at = data.len() + 70;
        data.extend(second);
        data[at] ^= 0xff;
        let e = decode_record_set(Bytes::from(data), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::CrcMismatch { .. }));
        assert_eq!(
            e.path().collect::<Vec<_>>(),
            vec!["RecordSet", "RecordBatch", "crc"]
        );
    }

    #[test]
    fn bad_magic_and_tiny_entries_are_errors() {
        let mut data = v2(0, 1);
        data[16] = 3;
        let e = decode_record_set(Bytes::from(data), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::Invalid(m) if m.contains("magic 3")));
        // An entry of 4 bytes cannot hold a magic byte, even with more data
        // after it.
        let mut data = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4];
        data.extend(v2(1, 1));
        let e = decode_record_set(Bytes::from(data), &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.path().collect::<Vec<_>>(), vec!["RecordSet"]);
        let data = vec![0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0];
        assert!(decode_record_set(Bytes::from(data), &DecodeOptions::default()).is_err());
    }
}
