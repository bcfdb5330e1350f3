//! Control records: the transaction markers (commit / abort) that brokers
//! write into control batches (batch attribute bit 5).
//!
//! ```text
//! key:   version int16 (0), type int16 (0 = abort, 1 = commit)
//! value: version int16 (0), coordinatorEpoch int32     (abort and commit)
//! ```
//!
//! Newer key or value versions may append fields; they are ignored, as the
//! Java client does.

use bytes::{BufMut, Bytes};

use super::{Record, RecordBatch};
use crate::protocol::error::DecodeError;

type DResult<T> = Result<T, DecodeError>;

/// The type of a control record (the key's `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// An abort marker (0).
    Abort,
    /// A commit marker (1).
    Commit,
    /// Any other type (KRaft uses several internally); its value is not
    /// interpreted.
    Other(i16),
}

impl ControlRecordType {
    /// The type from its wire code.
    pub fn from_code(code: i16) -> Self {
        match code {
            0 => Self::Abort,
            1 => Self::Commit,
            c => Self::Other(c),
        }
    }

    /// The wire code.
    pub fn code(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Other(c) => c,
        }
    }
}

/// The value of an abort or commit marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTransactionMarker {
    /// The value's version (0).
    pub version: i16,
    /// The epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// The key's version (0).
    pub key_version: i16,
    /// The record type.
    pub record_type: ControlRecordType,
    /// The marker value for abort and commit records; `None` for other
    /// types.
    pub marker: Option<EndTransactionMarker>,
}

impl ControlRecord {
    /// A version-0 commit or abort marker.
    pub fn end_transaction(commit: bool, coordinator_epoch: i32) -> Self {
        Self {
            key_version: 0,
            record_type: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            marker: Some(EndTransactionMarker {
                version: 0,
                coordinator_epoch,
            }),
        }
    }

    /// Interprets a record of a control batch.
    pub fn from_record(record: &Record) -> DResult<Self> {
        Self::from_record_inner(record).map_err(|e| e.context("ControlRecord"))
    }

    fn from_record_inner(record: &Record) -> DResult<Self> {
        let key = record
            .key
            .as_deref()
            .ok_or_else(|| DecodeError::invalid("control record with a null key").context("key"))?;
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(DecodeError::eof(4, key.len()).context("key"));
        };
        let key_version = i16::from_be_bytes([v0, v1]);
        if key_version < 0 {
            return Err(DecodeError::invalid(format!(
                "negative control key version {key_version}"
            ))
            .context("key"));
        }
        let record_type = ControlRecordType::from_code(i16::from_be_bytes([t0, t1]));
        let marker = match record_type {
            ControlRecordType::Abort | ControlRecordType::Commit => {
                let value = record.value.as_deref().ok_or_else(|| {
                    DecodeError::invalid("transaction marker with a null value").context("value")
                })?;
                let [a, b, c, d, e, f, ..] = *value else {
                    return Err(DecodeError::eof(6, value.len()).context("value"));
                };
                Some(EndTransactionMarker {
                    version: i16::from_be_bytes([a, b]),
                    coordinator_epoch: i32::from_be_bytes([c, d, e, f]),
                })
            }
            ControlRecordType::Other(_) => None,
        };
        Ok(Self {
            key_version,
            record_type,
            marker,
        })
    }

    /// The record carrying this control record (deltas zero; set them as
    /// needed). Other types get a null value.
    pub fn to_record(&self) -> Record {
        let mut key = Vec::with_capacity(4);
        key.put_i16(self.key_version);
        key.put_i16(self.record_type.code());
        let value = self.marker.map(|m| {
            let mut v = Vec::with_capacity(6);
            v.put_i16(m.version);
            v.put_i32(m.coordinator_epoch);
            Bytes::from(v)
        });
        Record::new(Some(Bytes::from(key)), value)
    }

    /// A control batch holding this one record, for `producer_id` and
    /// `producer_epoch`, transactional (as brokers write markers).
    pub fn to_batch(
        &self,
        base_offset: i64,
        timestamp: i64,
        producer_id: i64,
        producer_epoch: i16,
    ) -> RecordBatch {
        let mut batch = RecordBatch::new(base_offset, timestamp);
        batch.is_control = true;
        batch.is_transactional = true;
        batch.producer_id = producer_id;
        batch.producer_epoch = producer_epoch;
        batch.records.push(self.to_record());
        batch
    }
}

impl RecordBatch {
    /// The control records of a control batch, each interpreted (an empty
    /// iterator for a data batch).
    pub fn control_records(&self) -> impl Iterator<Item = DResult<ControlRecord>> + '_ {
        self.records
            .iter()
            .filter(|_| self.is_control)
            .map(ControlRecord::from_record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{DecodeOptions, EncodeOptions};

    #[test]
    fn control_batch_roundtrip_and_decode() {
        let marker = ControlRecord::end_transaction(true, 7);
        let batch = marker.to_batch(500, 1_000, 42, 3);
        let bytes = batch.encode_to_vec(&EncodeOptions::default()).unwrap();
        // Attributes: transactional (0x10) | control (0x20).
        assert_eq!(&bytes[21..23], &[0x00, 0x30]);
        let decoded =
            RecordBatch::decode(&mut Bytes::from(bytes), &DecodeOptions::default()).unwrap();
        assert!(decoded.is_control && decoded.is_transactional);
        let rec = &decoded.records[0];
        // Key: version 0, type 1 (commit). Value: version 0, epoch 7.
        assert_eq!(rec.key.as_deref(), Some(&[0, 0, 0, 1][..]));
        assert_eq!(rec.value.as_deref(), Some(&[0, 0, 0, 0, 0, 7][..]));
        let got: Vec<_> = decoded.control_records().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![marker]);
        assert_eq!(got[0].record_type, ControlRecordType::Commit);
    }

    #[test]
    fn abort_marker_from_raw_record_with_extra_bytes() {
        // Key version 1 with a trailing field; value with a trailing field.
        let r = Record::new(
            Some(Bytes::from_static(&[0, 1, 0, 0, 0xaa])),
            Some(Bytes::from_static(&[0, 1, 0xff, 0xff, 0xff, 0xfe, 0x01])),
        );
        let c = ControlRecord::from_record(&r).unwrap();
        assert_eq!(c.key_version, 1);
        assert_eq!(c.record_type, ControlRecordType::Abort);
        assert_eq!(
            c.marker,
            Some(EndTransactionMarker {
                version: 1,
                coordinator_epoch: -2
            })
        );
        let other = Record::new(Some(Bytes::from_static(&[0, 0, 0, 5])), None);
        let c = ControlRecord::from_record(&other).unwrap();
        assert_eq!(
            (c.record_type, c.marker),
            (ControlRecordType::Other(5), None)
        );
        assert_eq!(c.to_record(), other);
    }

    #[test]
    fn malformed_control_records_are_errors() {
        for (key, value) in [
            (None, None),
            (Some(&[0u8, 0, 0][..]), None),
            (
                Some(&[0xff, 0xff, 0, 1][..]),
                Some(&[0u8, 0, 0, 0, 0, 0][..]),
            ),
            (Some(&[0, 0, 0, 1][..]), None),
            (Some(&[0, 0, 0, 0][..]), Some(&[0, 0, 0, 0, 0][..])),
        ] {
            let r = Record::new(
                key.map(Bytes::copy_from_slice),
                value.map(Bytes::copy_from_slice),
            );
            let e = ControlRecord::from_record(&r).unwrap_err();
            assert_eq!(e.path().next(), Some("ControlRecord"));
        }
    }
}
