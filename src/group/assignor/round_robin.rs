//! The `roundrobin` assignor.

use super::{
    Assignor, ClusterLayout, GroupAssignment, GroupMember, sorted_members, subscribed_topics,
};
use crate::error::Error;

/// The `roundrobin` assignor, as the Java client's `RoundRobinAssignor`
/// assigns: every partition of every subscribed topic, sorted by topic and
/// then partition, is dealt in turn to the members (in the Java order:
/// static members by `group.instance.id`, then the others by member id),
/// passing over a member not subscribed to the partition's topic. Members
/// with the same subscriptions end up at most one partition apart. It
/// ignores racks, as Java's does.
///
/// Two members `c0`, `c1` on topics `t0`, `t1` of three partitions each:
/// `c0` gets `t0` 0, 2 and `t1` 1; `c1` gets `t0` 1 and `t1` 0, 2.
///
/// ```
/// use klamm::group::assignor::{Assignor, ClusterLayout, GroupMember, RoundRobinAssignor};
/// use klamm::group::Subscription;
///
/// let members = [
///     GroupMember::new("c0", Subscription::new(["t0"])),
///     GroupMember::new("c1", Subscription::new(["t0", "t1"])),
/// ];
/// let layout = ClusterLayout::new().with_topic("t0", 2).with_topic("t1", 2);
/// let plan = RoundRobinAssignor.assign(&members, &layout).unwrap();
/// assert_eq!(plan.members["c0"].partitions["t0"], vec![0]);
/// assert_eq!(plan.members["c1"].partitions["t0"], vec![1]);
/// assert_eq!(plan.members["c1"].partitions["t1"], vec![0, 1]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error> {
        let sorted = sorted_members(members)?;
        let mut plan = GroupAssignment::for_members(members);
        let mut next = 0;
        for topic in subscribed_topics(&sorted, layout) {
            let subscribed: Vec<bool> = sorted
                .iter()
                .map(|m| m.subscription.topics.iter().any(|t| t == topic))
                .collect();
            for partition in layout.partitions(topic) {
                // Some member subscribes to every topic here, so one turn
                // round the circle finds it.
                let Some(turn) = (0..sorted.len())
                    .map(|k| (next + k) % sorted.len())
                    .find(|&i| subscribed[i])
                else {
                    break;
                };
                plan.give(&sorted[turn].member_id, topic, partition);
                next = (turn + 1) % sorted.len();
            }
        }
        Ok(plan.sorted())
    }
}
