//! Which offset of a partition may be committed when the application
//! finishes records out of order.

use std::collections::BTreeMap;

/// One partition's records between delivery and completion.
///
/// Records are [`delivered`](Self::delivered) in offset order and
/// [`done`](Self::done) in any order; the committable offset advances only
/// over the contiguous prefix of finished records, so a commit never
/// covers a record the application has not finished. Offsets the consumer
/// never delivered (compacted away, transaction markers) are no gap.
///
/// ```
/// use klamm::group::OffsetTracker;
///
/// let mut t = OffsetTracker::new(10);
/// for o in [10, 11, 12, 14] {
///     t.delivered(o);
/// }
/// assert!(t.done(12));
/// assert_eq!(t.committable(), 10); // 10 and 11 are still being worked on
/// t.done(10);
/// assert_eq!(t.committable(), 11);
/// t.done(11);
/// assert_eq!(t.committable(), 14); // 10..=12 finished; 13 was never delivered
/// assert_eq!(t.outstanding(), 1);
/// t.done(14);
/// assert_eq!(t.committable(), 15);
/// ```
#[derive(Debug, Clone)]
pub struct OffsetTracker {
    /// The offset up to which (exclusive) everything delivered is done.
    committable: i64,
    /// Delivered records not yet in the finished prefix: offset → done.
    pending: BTreeMap<i64, bool>,
    /// The offset after the last delivered record.
    next: i64,
}

impl OffsetTracker {
    /// A tracker for a partition whose consumption starts at `start`.
    pub fn new(start: i64) -> Self {
        OffsetTracker {
            committable: start,
            pending: BTreeMap::new(),
            next: start,
        }
    }

    /// Records that the record at `offset` was handed to the application.
    /// An offset at or below one already delivered is ignored (a consumer
    /// never goes back within one assignment).
    pub fn delivered(&mut self, offset: i64) {
        if offset < self.next {
            return;
        }
        if self.pending.is_empty() {
            // Nothing outstanding: the skipped offsets were never records.
            self.committable = offset;
        }
        self.pending.insert(offset, false);
        self.next = offset.saturating_add(1);
    }

    /// Records that the application finished the record at `offset`.
    /// Returns `false` for an offset that was not delivered or is already
    /// done (nothing changes then).
    pub fn done(&mut self, offset: i64) -> bool {
        match self.pending.get_mut(&offset) {
            Some(d) if !*d => *d = true,
            _ => return false,
        }
        self.advance();
        true
    }

    /// Records that every delivered record up to and including `offset` is
    /// finished (the in-order mode: one acknowledgement covers everything
    /// before it). Returns how many records it finished.
    pub fn done_through(&mut self, offset: i64) -> usize {
        let mut n = 0;
        for (_, d) in self.pending.range_mut(..=offset) {
            if !*d {
                *d = true;
                n += 1;
            }
        }
        self.advance();
        n
    }

    fn advance(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if !*entry.get() {
                self.committable = *entry.key();
                return;
            }
            entry.remove();
        }
        self.committable = self.next;
    }

    /// The offset to commit: the next record the group must read again,
    /// every delivered record before it being finished.
    pub fn committable(&self) -> i64 {
        self.committable
    }

    /// How many delivered records are not finished.
    pub fn outstanding(&self) -> usize {
        self.pending.values().filter(|d| !**d).count()
    }

    /// The offset after the last delivered record.
    pub fn next(&self) -> i64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_unfinished_record_holds_the_commit_back() {
        let mut t = OffsetTracker::new(0);
        (0..5).for_each(|o| t.delivered(o));
        for o in [4, 3, 1, 2] {
            assert!(t.done(o));
            assert_eq!(t.committable(), 0, "0 is not finished");
        }
        assert!(!t.done(3), "twice");
        assert!(!t.done(9), "never delivered");
        assert!(t.done(0));
        assert_eq!(t.committable(), 5);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn in_order_mode_finishes_everything_before() {
        let mut t = OffsetTracker::new(100);
        [100, 101, 105, 106].iter().for_each(|o| t.delivered(*o));
        assert_eq!(t.done_through(105), 3);
        assert_eq!(t.committable(), 106);
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.done_through(200), 1);
        assert_eq!(t.committable(), 107);
    }

    #[test]
    fn a_gap_before_the_first_record_is_skipped_and_going_back_is_ignored() {
        let mut t = OffsetTracker::new(0);
        t.delivered(7);
        assert_eq!(t.committable(), 7);
        t.delivered(3);
        assert_eq!(t.outstanding(), 1);
        t.done(7);
        assert_eq!(t.committable(), 8);
    }

    proptest! {
        /// Whatever order records finish in, the committable offset never
        /// passes an unfinished record and never goes backwards, and it
        /// reaches the end once all are finished.
        #[test]
        fn never_past_an_unfinished_record(
            gaps in proptest::collection::vec(1i64..4, 1..60),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
        ) {
            let mut offsets = Vec::new();
            let mut o = 0;
            for g in &gaps { o += g; offsets.push(o); }
            let mut t = OffsetTracker::new(0);
            offsets.iter().for_each(|o| t.delivered(*o));
            let mut left = offsets.clone();
            let mut last = t.committable();
            for idx in order {
                if left.is_empty() { break; }
                let o = left.remove(idx.index(left.len()));
                t.done(o);
                let c = t.committable();
                prop_assert!(c >= last);
                prop_assert!(left.iter().all(|u| *u >= c), "committable {} passes an unfinished record", c);
                last = c;
            }
            for o in left.clone() { t.done(o); }
            prop_assert_eq!(t.committable(), offsets.last().copied().unwrap_or(0) + 1);
        }
    }

    /// Control: the property check above does catch a tracker that
    /// commits the highest finished offset (the high-water-mark mistake).
    #[test]
    fn control_a_high_water_mark_would_pass_an_unfinished_record() {
        let mut t = OffsetTracker::new(0);
        (0..3).for_each(|o| t.delivered(o));
        t.done(2);
        let high_water_mark = 3;
        let unfinished = [0, 1];
        assert!(unfinished.iter().any(|u| *u < high_water_mark));
        assert!(unfinished.iter().all(|u| *u >= t.committable()));
    }
}
