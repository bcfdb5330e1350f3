//! The `sticky` and `cooperative-sticky` assignors, on one sticky core.

use bytes::Bytes;

use super::{
    Assignor, ClusterLayout, GroupAssignment, GroupMember, RebalanceProtocol, sorted_members,
};
use crate::error::Error;
use crate::group::TopicPartitions;

pub(super) mod core;
mod user_data;

pub(in crate::group::assignor) use user_data::{put_topic_partitions, read_topic_partitions};

use self::core::MemberData;

/// The `sticky` assignor (eager; KIP-54): a balanced assignment that moves
/// as few partitions as it can from one rebalance to the next.
///
/// - **Balanced.** Members with the same subscriptions end up at most one
///   partition apart. With different subscriptions no single partition
///   can move to a member subscribed to its topic that holds two or more
///   fewer than the partition's holder.
/// - **Sticky.** Each member keeps the partitions it owned, as far as
///   balance allows. Under the eager protocol a member has given all its
///   partitions up before it joins, so it says what it had in its
///   subscription's user data ([`Assignor::user_data`]: the previous
///   assignment and its generation, in the Java client's layout, so Java
///   and klamm members share a group). A member without such user data is
///   taken at its subscription's owned partitions and generation.
/// - **Stale claims.** When two members claim one partition, the claim of
///   the higher generation wins; two claims of the same generation cancel
///   each other. Claims on partitions that no longer exist, or of topics
///   the member no longer subscribes to, are dropped.
/// - **Racks** (KIP-881). When some member's rack holds a replica and the
///   partitions' replica racks are not all the same, a partition nobody
///   keeps goes first to a member in one of its replicas' racks that is
///   still under the even share (`n / m`), then racks break ties among the
///   least loaded members, and balancing moves prefer partitions
///   that leave the giver's rack or join the receiver's. Owned partitions
///   are kept whatever their racks: moving one costs a revocation.
///
/// The result is deterministic for the same input but not byte-identical
/// to the Java client's, which breaks ties differently.
///
/// ```
/// use klamm::group::assignor::{Assignor, ClusterLayout, GroupMember, StickyAssignor};
/// use klamm::group::Subscription;
///
/// let layout = ClusterLayout::new().with_topic("t", 6);
/// let owned = |ps: &[i32]| {
///     let data = StickyAssignor.user_data(&[("t".to_string(), ps.to_vec())].into(), Some(4));
///     Subscription { topics: vec!["t".into()], user_data: data, ..Default::default() }
/// };
/// // c0 and c1 had three partitions each; c2 joins.
/// let members = [
///     GroupMember::new("c0", owned(&[0, 2, 4])),
///     GroupMember::new("c1", owned(&[1, 3, 5])),
///     GroupMember::new("c2", Subscription::new(["t"])),
/// ];
/// let plan = StickyAssignor.assign(&members, &layout).unwrap();
/// let counts: Vec<usize> = plan.members.values().map(|a| a.partitions["t"].len()).collect();
/// assert_eq!(counts, vec![2, 2, 2]);
/// // c0 and c1 each gave one up and kept the other two.
/// assert!(plan.members["c0"].partitions["t"].iter().all(|p| [0, 2, 4].contains(p)));
/// assert!(plan.members["c1"].partitions["t"].iter().all(|p| [1, 3, 5].contains(p)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    /// The previous assignment and its generation, in the Java client's
    /// layout; `None` before the first assignment.
    fn user_data(&self, previous: &TopicPartitions, generation: Option<i32>) -> Option<Bytes> {
        user_data::encode_sticky(previous, generation?).ok()
    }

    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error> {
        let sorted = sorted_members(members)?;
        let data: Vec<MemberData<'_>> = sorted
            .iter()
            .map(|m| {
                let from_user_data = m
                    .subscription
                    .user_data
                    .as_ref()
                    .filter(|d| !d.is_empty())
                    .and_then(user_data::decode_sticky);
                let (owned, generation) = match from_user_data {
                    Some((owned, generation)) => (owned, generation),
                    None => (
                        m.subscription.owned_partitions.clone(),
                        m.subscription.generation,
                    ),
                };
                MemberData {
                    member: m,
                    owned,
                    generation: generation.unwrap_or(-1),
                }
            })
            .collect();
        let mut plan = GroupAssignment::for_members(members);
        core::assign(&data, layout, &mut plan);
        Ok(plan.sorted())
    }
}

/// The `cooperative-sticky` assignor (KIP-429): the [`StickyAssignor`]'s
/// assignment, handed out so that no partition is ever owned by two
/// members at once.
///
/// Members keep their partitions while they rejoin and say which they own
/// in their subscription (version 1+), with the generation they own them
/// in (version 2+, or in the user data for older leaders). The assignor
/// computes the sticky assignment from those claims, then holds back every
/// partition it gives to a member that does not own it while another
/// member claims it (at any generation, stale claims included):
/// the owner sees it revoked, gives it up and rejoins at once, and the
/// follow-up rebalance hands it to the new member. The partitions held back
/// are in [`GroupAssignment::pending`].
///
/// ```
/// use klamm::group::assignor::{Assignor, ClusterLayout, CooperativeStickyAssignor, GroupMember};
/// use klamm::group::Subscription;
///
/// let layout = ClusterLayout::new().with_topic("t", 4);
/// let mut c0 = Subscription::new(["t"]);
/// c0.owned_partitions.insert("t".into(), vec![0, 1, 2, 3]);
/// c0.generation = Some(1);
/// let members = [GroupMember::new("c0", c0), GroupMember::new("c1", Subscription::new(["t"]))];
///
/// // First rebalance: c0 gives two partitions up, c1 does not get them yet.
/// let plan = CooperativeStickyAssignor.assign(&members, &layout).unwrap();
/// assert_eq!(plan.members["c0"].partitions["t"].len(), 2);
/// assert!(plan.members["c1"].partitions.is_empty());
/// assert!(plan.needs_follow_up());
///
/// // Follow-up: c0 owns what it kept, c1 gets the rest.
/// let mut c0 = Subscription::new(["t"]);
/// c0.owned_partitions = plan.members["c0"].partitions.clone();
/// c0.generation = Some(2);
/// let mut c1 = Subscription::new(["t"]);
/// c1.generation = Some(2);
/// let members = [GroupMember::new("c0", c0), GroupMember::new("c1", c1)];
/// let next = CooperativeStickyAssignor.assign(&members, &layout).unwrap();
/// assert_eq!(next.members["c0"].partitions, plan.members["c0"].partitions);
/// assert_eq!(next.members["c1"].partitions["t"], plan.pending["t"]);
/// assert!(!next.needs_follow_up());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The generation alone (-1 before the first assignment), as the Java
    /// client writes it for leaders that read subscriptions older than
    /// version 2.
    fn user_data(&self, _previous: &TopicPartitions, generation: Option<i32>) -> Option<Bytes> {
        Some(user_data::encode_generation(generation.unwrap_or(-1)))
    }

    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error> {
        let sorted = sorted_members(members)?;
        let data: Vec<MemberData<'_>> = sorted
            .iter()
            .map(|m| {
                let generation = m.subscription.generation.or_else(|| {
                    m.subscription
                        .user_data
                        .as_ref()
                        .and_then(user_data::decode_generation)
                });
                MemberData {
                    member: m,
                    owned: m.subscription.owned_partitions.clone(),
                    generation: generation.unwrap_or(-1),
                }
            })
            .collect();
        let mut plan = GroupAssignment::for_members(members);
        core::assign(&data, layout, &mut plan);
        hold_back_owned_elsewhere(members, &mut plan);
        Ok(plan.sorted())
    }
}

/// Removes from each member's assignment every partition it does not own
/// itself while another member claims to own it (whatever the claim's
/// generation), and lists it as pending.
pub(super) fn hold_back_owned_elsewhere(members: &[GroupMember], plan: &mut GroupAssignment) {
    let claims = super::claimants(members);
    let mut pending = TopicPartitions::new();
    for (member, assignment) in plan.members.iter_mut() {
        for (topic, partitions) in assignment.partitions.iter_mut() {
            partitions.retain(|&p| {
                let elsewhere = claims
                    .get(&(topic.as_str(), p))
                    .is_some_and(|owners| !owners.contains(member.as_str()) && !owners.is_empty());
                if elsewhere {
                    pending.entry(topic.clone()).or_default().push(p);
                }
                !elsewhere
            });
        }
        assignment.partitions.retain(|_, p| !p.is_empty());
    }
    plan.pending = pending;
}
