//! The leader's memory of who held what: each stable identity's partitions
//! in the last assignment it was part of, and since when it is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::group::TopicPartitions;

/// One identity's entry.
#[derive(Debug, Clone)]
struct Entry {
    /// What the last assignment it was part of meant it to hold
    /// (partitions held back for it included).
    partitions: TopicPartitions,
    /// When the first assignment without it was made; `None` while it
    /// is in the group.
    departed: Option<Instant>,
}

/// The memory, by identity.
#[derive(Debug, Default)]
pub(super) struct Memory {
    entries: BTreeMap<String, Entry>,
}

impl Memory {
    /// The partitions `identity` held when it was last in the group, if it
    /// is in it now or left no longer than `retention` before `now`.
    pub(super) fn recall(
        &self,
        identity: &str,
        now: Instant,
        retention: Duration,
    ) -> Option<&TopicPartitions> {
        let e = self.entries.get(identity)?;
        let fresh = e
            .departed
            .is_none_or(|t| now.saturating_duration_since(t) <= retention);
        fresh.then_some(&e.partitions)
    }

    /// Records an assignment made at `now`: `present` holds what each
    /// identity in the group was given. Identities not in it are marked
    /// gone (from `now`, if they were not already), and those gone longer
    /// than `retention` are forgotten.
    pub(super) fn record(
        &mut self,
        present: BTreeMap<String, TopicPartitions>,
        now: Instant,
        retention: Duration,
    ) {
        let here: BTreeSet<&String> = present.keys().collect();
        self.entries.retain(|id, e| {
            if here.contains(id) {
                return true;
            }
            let since = *e.departed.get_or_insert(now);
            now.saturating_duration_since(since) <= retention
        });
        for (id, partitions) in present {
            self.entries.insert(
                id,
                Entry {
                    partitions,
                    departed: None,
                },
            );
        }
    }

    /// How many identities it remembers.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(ps: &[i32]) -> TopicPartitions {
        [("t".to_string(), ps.to_vec())].into()
    }

    #[test]
    fn a_departed_identity_is_recalled_within_the_retention_only() {
        let keep = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.record(
            [("a".into(), tps(&[0])), ("b".into(), tps(&[1]))].into(),
            t0,
            keep,
        );
        assert_eq!(m.recall("b", t0, keep), Some(&tps(&[1])));
        // b leaves at t0 + 1 s; the retention counts from there.
        let left = t0 + Duration::from_secs(1);
        m.record([("a".into(), tps(&[0, 1]))].into(), left, keep);
        assert_eq!(m.recall("b", left + keep, keep), Some(&tps(&[1])));
        assert_eq!(
            m.recall("b", left + keep + Duration::from_millis(1), keep),
            None
        );
        // A later assignment does not move the departure time.
        m.record([("a".into(), tps(&[0, 1]))].into(), left + keep, keep);
        assert_eq!(m.len(), 2);
        m.record([("a".into(), tps(&[0, 1]))].into(), left + keep * 2, keep);
        assert_eq!(m.len(), 1);
        assert_eq!(m.recall("b", left, keep), None);
        assert_eq!(m.recall("nobody", t0, keep), None);
    }
}
