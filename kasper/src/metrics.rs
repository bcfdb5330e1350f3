//! Kasper's three metrics, per topic and partition.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One topic partition's figures. Kasper's metric names:
/// `incoming_message_count`, `outgoing_message_count` and
/// `messages_behind_high_water_mark_count`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Input records handed to `process` (counted when their batch is
    /// processed, failed batches included, as Kasper counts them).
    pub incoming: u64,
    /// Output records produced and acknowledged (counted under the output
    /// topic and the partition they were written to).
    pub outgoing: u64,
    /// For an input partition: its high watermark at the last fetch minus
    /// the next offset to commit; `None` before the first fetch.
    pub behind_high_water_mark: Option<i64>,
}

/// The metrics of every topic partition seen, by (topic, partition).
pub type MetricsSnapshot = BTreeMap<(String, i32), PartitionMetrics>;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    parts: Mutex<BTreeMap<(String, i32), Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    shown: PartitionMetrics,
    high_water_mark: Option<i64>,
    next: Option<i64>,
}

impl Entry {
    fn refresh(&mut self) {
        self.shown.behind_high_water_mark = match (self.high_water_mark, self.next) {
            (Some(h), Some(n)) => Some((h - n).max(0)),
            _ => None,
        };
    }
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, i32), Entry>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, topic: &str, partition: i32, f: impl FnOnce(&mut Entry)) {
        let mut parts = self.lock();
        let entry = parts.entry((topic.to_string(), partition)).or_default();
        f(entry);
    }

    pub(crate) fn incoming(&self, topic: &str, partition: i32, n: u64) {
        self.with(topic, partition, |e| e.shown.incoming += n);
    }

    pub(crate) fn outgoing(&self, topic: &str, partition: i32) {
        self.with(topic, partition, |e| e.shown.outgoing += 1);
    }

    pub(crate) fn high_water_mark(&self, topic: &str, partition: i32, hwm: i64) {
        self.with(topic, partition, |e| {
            e.high_water_mark = Some(hwm);
            e.refresh();
        });
    }

    pub(crate) fn next_offset(&self, topic: &str, partition: i32, next: i64) {
        self.with(topic, partition, |e| {
            e.next = Some(next);
            e.refresh();
        });
    }

    /// The next offset of an input partition: where it started, then the
    /// last committed.
    pub(crate) fn next_of(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .get(&(topic.to_string(), partition))
            .and_then(|e| e.next)
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        self.lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.shown))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_is_the_high_watermark_minus_the_next_offset() {
        let m = Metrics::default();
        m.incoming("in", 0, 3);
        assert_eq!(m.snapshot()[&("in".into(), 0)].behind_high_water_mark, None);
        m.next_offset("in", 0, 5);
        m.high_water_mark("in", 0, 12);
        assert_eq!(
            m.snapshot()[&("in".into(), 0)].behind_high_water_mark,
            Some(7)
        );
        m.next_offset("in", 0, 12);
        let s = m.snapshot()[&("in".into(), 0)];
        assert_eq!((s.incoming, s.behind_high_water_mark), (3, Some(0)));
        m.outgoing("out", 2);
        assert_eq!(m.snapshot()[&("out".into(), 2)].outgoing, 1);
        assert_eq!(m.next_of("in", 0), Some(12));
    }
}
