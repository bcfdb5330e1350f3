//! Acknowledgements waiting to be sent, per partition, and their wire form.
//!
//! Kafka takes acknowledgements as batches of consecutive offsets, each
//! with either one type for the whole range or exactly one type per
//! offset (the broker refuses anything else). Offsets are kept sorted;
//! consecutive ones become one batch, cut to a single type when every
//! offset has the same one.

use std::collections::BTreeMap;

use crate::protocol::messages::share_fetch_request::AcknowledgementBatch;

/// How a share-group record is acknowledged (KIP-932).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcknowledgeType {
    /// Processed: the record is done for the whole group.
    Accept,
    /// Not processed: the record goes back to be delivered again (to any
    /// member), its delivery count one higher.
    Release,
    /// Unprocessable: the record is never delivered again.
    Reject,
    /// Still being worked on: the record's acquisition lock starts over
    /// (KIP-1222; ShareAcknowledge v2, Apache Kafka 4.2+), and the record
    /// still awaits its final acknowledgement — accept, release or reject.
    /// Sent by [`ShareConsumer::commit`](super::ShareConsumer::commit).
    Renew,
}

impl AcknowledgeType {
    /// The wire code (1 accept, 2 release, 3 reject, 4 renew).
    pub const fn code(self) -> i8 {
        match self {
            AcknowledgeType::Accept => 1,
            AcknowledgeType::Release => 2,
            AcknowledgeType::Reject => 3,
            AcknowledgeType::Renew => 4,
        }
    }
}

/// The wire code of an offset the broker acquired for this member but
/// that holds no record to deliver (a control record, a compacted-away
/// offset): it must still be acknowledged, as a gap.
pub(crate) const GAP: i8 = 0;

/// The acknowledgements of one partition, by offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartitionAcks {
    by_offset: BTreeMap<i64, i8>,
}

impl PartitionAcks {
    /// Records `code` for `offset` (a later call for the same offset wins).
    pub(crate) fn add(&mut self, offset: i64, code: i8) {
        self.by_offset.insert(offset, code);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_offset.is_empty()
    }

    /// Whether an offset is to be renewed (the request must say so).
    pub(crate) fn renews(&self) -> bool {
        self.by_offset
            .values()
            .any(|&c| c == AcknowledgeType::Renew.code())
    }

    /// The batches to send.
    pub(crate) fn batches(&self) -> Vec<AcknowledgementBatch> {
        let mut out: Vec<AcknowledgementBatch> = Vec::new();
        for (&offset, &code) in &self.by_offset {
            match out.last_mut() {
                Some(b) if b.last_offset.checked_add(1) == Some(offset) => {
                    b.last_offset = offset;
                    b.acknowledge_types.push(code);
                }
                _ => out.push(AcknowledgementBatch {
                    first_offset: offset,
                    last_offset: offset,
                    acknowledge_types: vec![code],
                    ..Default::default()
                }),
            }
        }
        for b in &mut out {
            if b.acknowledge_types.windows(2).all(|w| w[0] == w[1]) {
                b.acknowledge_types.truncate(1);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(entries: &[(i64, i8)]) -> PartitionAcks {
        let mut a = PartitionAcks::default();
        for &(o, c) in entries {
            a.add(o, c);
        }
        a
    }

    fn shape(a: &PartitionAcks) -> Vec<(i64, i64, Vec<i8>)> {
        a.batches()
            .into_iter()
            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types))
            .collect()
    }

    #[test]
    fn one_type_per_run_or_one_per_offset() {
        // 5..=7 all accepted: one type for the range; 10..=12 mixed: one
        // type per offset; 20 alone.
        let a = acks(&[(7, 1), (5, 1), (6, 1), (10, 1), (11, 2), (12, 0), (20, 3)]);
        assert_eq!(
            shape(&a),
            [(5, 7, vec![1]), (10, 12, vec![1, 2, 0]), (20, 20, vec![3]),]
        );
        // The broker's rule holds for every batch: one type, or as many
        // types as offsets.
        for (first, last, types) in shape(&a) {
            assert!(types.len() == 1 || types.len() as i64 == last - first + 1);
        }
    }

    #[test]
    fn a_later_acknowledgement_of_an_offset_wins() {
        let a = acks(&[(3, 1), (3, 2)]);
        assert_eq!(shape(&a), [(3, 3, vec![2])]);
        assert!(acks(&[]).batches().is_empty());
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(GAP, 0);
        assert_eq!(AcknowledgeType::Accept.code(), 1);
        assert_eq!(AcknowledgeType::Release.code(), 2);
        assert_eq!(AcknowledgeType::Reject.code(), 3);
        assert_eq!(AcknowledgeType::Renew.code(), 4);
        assert!(acks(&[(1, 1), (2, 4)]).renews());
        assert!(!acks(&[(1, 1), (2, 2), (3, 3), (4, 0)]).renews());
    }
}
