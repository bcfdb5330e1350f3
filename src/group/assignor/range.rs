//! The `range` assignor.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Assignor, ClusterLayout, GroupAssignment, GroupMember, rack, sorted_members, subscribed_topics,
};
use crate::error::Error;

/// The `range` assignor, as the Java client's `RangeAssignor` assigns:
/// topic by topic, the members subscribed to the topic (in the Java
/// order: static members by `group.instance.id`, then the others by member
/// id) each get a contiguous range of its partitions, and with `n`
/// partitions over `m` members the first `n % m` get one more than the
/// others. Each topic is balanced on its own, so over many topics the
/// first members may get more in total.
///
/// Two members `c0`, `c1` on topics `t0`, `t1` of three partitions each:
/// `c0` gets `t0` 0–1 and `t1` 0–1, `c1` gets `t0` 2 and `t1` 2.
///
/// **Rack awareness** (KIP-881), when some member's rack holds a replica
/// and the partitions' replica racks are not all the same (the Java
/// client's rule for when matching can matter): topics with the same subscribers and the same partitions are
/// assigned together, partition `p` of all of them to one member, so
/// co-partitioned topics stay co-partitioned. For each such group of
/// topics every member first takes, in order and up to its share, the
/// partitions it matches (a replica of partition `p` of every topic of the
/// group is in its rack); then the rest is dealt in order as without
/// racks. Shares are as without racks (`n / m`, and one more for `n % m`
/// members), so racks never unbalance a topic; which members get the extra
/// partition may differ.
///
/// ```
/// use klamm::group::assignor::{Assignor, ClusterLayout, GroupMember, RangeAssignor};
/// use klamm::group::Subscription;
///
/// let mut members = Vec::new();
/// for (id, rack) in [("c0", "a"), ("c1", "b")] {
///     let mut sub = Subscription::new(["t"]);
///     sub.rack = Some(rack.into());
///     members.push(GroupMember::new(id, sub));
/// }
/// let mut layout = ClusterLayout::new();
/// for (p, rack) in [(0, "b"), (1, "a"), (2, "b"), (3, "a")] {
///     layout.add_partition("t", p, [rack]);
/// }
/// let plan = RangeAssignor.assign(&members, &layout).unwrap();
/// assert_eq!(plan.members["c0"].partitions["t"], vec![1, 3]);
/// assert_eq!(plan.members["c1"].partitions["t"], vec![0, 2]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error> {
        let sorted = sorted_members(members)?;
        // Topics with the same subscribers and partitions, assigned together.
        let mut groups: BTreeMap<(Vec<usize>, Vec<i32>), Vec<&str>> = BTreeMap::new();
        let mut all_racks: Vec<&BTreeSet<String>> = Vec::new();
        for topic in subscribed_topics(&sorted, layout) {
            let Some(partitions) = layout.topic(topic) else {
                continue;
            };
            let subscribers: Vec<usize> = (0..sorted.len())
                .filter(|&i| sorted[i].subscription.topics.iter().any(|t| t == topic))
                .collect();
            all_racks.extend(partitions.values());
            groups
                .entry((subscribers, partitions.keys().copied().collect()))
                .or_default()
                .push(topic);
        }
        let use_racks = rack::worth_matching(
            sorted.iter().map(|m| m.subscription.rack.as_deref()),
            &all_racks,
        );

        let mut plan = GroupAssignment::for_members(members);
        for ((subscribers, partitions), topics) in &groups {
            let mut ranges = Ranges::new(partitions.len(), subscribers.len());
            if use_racks {
                ranges.deal(|s, i| {
                    let rack = sorted[subscribers[s]].subscription.rack.as_deref();
                    topics.iter().all(|t| {
                        layout
                            .replica_racks(t, partitions[i])
                            .is_some_and(|r| rack::matches(rack, r))
                    })
                });
            }
            ranges.deal(|_, _| true);
            for (i, owner) in ranges.owner.iter().enumerate() {
                if let Some(s) = owner {
                    for topic in topics {
                        plan.give(&sorted[subscribers[*s]].member_id, topic, partitions[i]);
                    }
                }
            }
        }
        Ok(plan.sorted())
    }
}

/// The split of one topic's (or one group of co-partitioned topics')
/// partitions among its subscribers, by position on both sides.
struct Ranges {
    /// What every subscriber gets at least.
    base: usize,
    /// How many more subscribers may still get `base + 1`.
    extras_left: usize,
    /// Partitions each subscriber has so far.
    counts: Vec<usize>,
    /// The subscriber each partition went to.
    owner: Vec<Option<usize>>,
}

impl Ranges {
    fn new(partitions: usize, subscribers: usize) -> Self {
        let (base, extras_left) = match subscribers {
            0 => (0, 0),
            m => (partitions / m, partitions % m),
        };
        Ranges {
            base,
            extras_left,
            counts: vec![0; subscribers],
            owner: vec![None; partitions],
        }
    }

    /// Lets every subscriber in turn take, in partition order and up to
    /// its share, the partitions still free that `accept` allows it.
    fn deal(&mut self, accept: impl Fn(usize, usize) -> bool) {
        for s in 0..self.counts.len() {
            let share = self.base + usize::from(self.extras_left > 0);
            let mut room = share.saturating_sub(self.counts[s]);
            let before = self.counts[s];
            for i in 0..self.owner.len() {
                if room == 0 {
                    break;
                }
                if self.owner[i].is_none() && accept(s, i) {
                    self.owner[i] = Some(s);
                    self.counts[s] += 1;
                    room -= 1;
                }
            }
            if before <= self.base && self.counts[s] > self.base {
                self.extras_left -= 1;
            }
        }
    }
}
