//! Partition assignors: how the group leader splits the subscribed topics'
//! partitions among the members.
//!
//! The leader of a classic consumer group receives every member's
//! [`Subscription`] in its JoinGroup answer, runs the assignor the group
//! agreed on over them ([`Assignor::assign`]) and sends each member its
//! [`Assignment`] in SyncGroup. The built-in assignors, by the names they
//! have in JoinGroup (and in `partition.assignment.strategy`):
//!
//! | name | type | protocol | what it does |
//! |---|---|---|---|
//! | `range` | [`RangeAssignor`] | eager | per topic, contiguous ranges of partitions to the members subscribed to it |
//! | `roundrobin` | [`RoundRobinAssignor`] | eager | all partitions dealt in turn to the members |
//! | `sticky` | [`StickyAssignor`] | eager | balanced, keeping each member's previous partitions where it can |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | cooperative | `sticky`, with a moving partition only assigned once its owner gave it up |
//! | `stable` | [`StableAssignor`] | cooperative | `cooperative-sticky` plus a stable member identity (sarama-consumer's `stable`): a member restarted within the session timeout gets its partitions back |
//!
//! All of them order members as the Java client does: static members
//! (those with a `group.instance.id`) first, by instance id, then dynamic
//! members by member id; ids compare as Java strings do (UTF-16 code
//! units). `range`, the two sticky assignors and `stable` are rack-aware (KIP-881):
//! see [`RangeAssignor`] and [`StickyAssignor`] for what that means.
//!
//! [`GroupAssignment::validate`] checks any assignor's output (a custom one
//! too) against the rules the group must keep.
//!
//! ```
//! use klamm::group::assignor::{self, ClusterLayout, GroupMember};
//! use klamm::group::Subscription;
//!
//! let members = vec![
//!     GroupMember::new("c0", Subscription::new(["t0", "t1"])),
//!     GroupMember::new("c1", Subscription::new(["t0", "t1"])),
//! ];
//! let layout = ClusterLayout::new().with_topic("t0", 3).with_topic("t1", 3);
//! let plan = assignor::by_name("roundrobin").unwrap().assign(&members, &layout).unwrap();
//! assert_eq!(plan.members["c0"].partitions["t0"], vec![0, 2]);
//! assert_eq!(plan.members["c0"].partitions["t1"], vec![1]);
//! assert_eq!(plan.members["c1"].partitions["t0"], vec![1]);
//! assert_eq!(plan.members["c1"].partitions["t1"], vec![0, 2]);
//! ```
//!
//! # References
//! - KIP-54 (sticky), KIP-341 (sticky user data with a generation), KIP-345
//!   (static membership), KIP-429 (cooperative rebalancing), KIP-792
//!   (generation in the subscription), KIP-881 (rack-aware assignors)
//! - The Java client's `RangeAssignor`, `RoundRobinAssignor`,
//!   `StickyAssignor` and `CooperativeStickyAssignor` documentation

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::TopicPartitions;
use super::protocol::{Assignment, Subscription};
use crate::error::Error;
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::messages::join_group_response::JoinGroupResponseMember;

mod check;
mod layout;
mod rack;
mod range;
mod round_robin;
mod stable;
mod sticky;
#[cfg(test)]
mod tests;

pub use check::Violation;
pub use layout::ClusterLayout;
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use stable::StableAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

/// How members give partitions up when the assignment changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before it rejoins, and
    /// starts over with what the new assignment says.
    #[default]
    Eager,
    /// Members keep their partitions across the rebalance and give up only
    /// those the new assignment takes away (KIP-429). A partition moving
    /// from one member to another is first only taken away; a follow-up
    /// rebalance hands it to its new owner.
    Cooperative,
}

/// A partition assignor: the group leader's strategy for splitting the
/// partitions among the members. Object-safe, so an application can bring
/// its own as an `Arc<dyn Assignor>`.
///
/// ```
/// use std::collections::BTreeMap;
/// use klamm::group::assignor::{Assignor, ClusterLayout, GroupAssignment, GroupMember};
/// use klamm::group::Subscription;
///
/// /// Gives everything to the first member.
/// #[derive(Debug)]
/// struct AllToOne;
///
/// impl Assignor for AllToOne {
///     fn name(&self) -> &str {
///         "all-to-one"
///     }
///     fn assign(&self, members: &[GroupMember], layout: &ClusterLayout) -> klamm::Result<GroupAssignment> {
///         let mut plan = GroupAssignment::for_members(members);
///         if let Some(first) = members.first() {
///             let mine = &mut plan.members.get_mut(&first.member_id).unwrap().partitions;
///             for topic in &first.subscription.topics {
///                 mine.insert(topic.clone(), layout.partitions(topic).collect());
///             }
///         }
///         Ok(plan)
///     }
/// }
///
/// let members = [GroupMember::new("a", Subscription::new(["t"])), GroupMember::new("b", Subscription::new(["t"]))];
/// let layout = ClusterLayout::new().with_topic("t", 2);
/// let plan = AllToOne.assign(&members, &layout).unwrap();
/// assert!(plan.validate(&members, &layout, AllToOne.rebalance_protocol()).is_ok());
/// assert!(plan.members["b"].partitions.is_empty());
/// ```
pub trait Assignor: Send + Sync + fmt::Debug {
    /// The protocol name offered in JoinGroup, e.g. `"range"`.
    fn name(&self) -> &str;

    /// The rebalance protocol members must follow under this assignor.
    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// The user data a member puts in its subscription for this assignor,
    /// given the partitions it was last assigned and that assignment's
    /// generation (`None` before its first assignment).
    fn user_data(&self, previous: &TopicPartitions, generation: Option<i32>) -> Option<Bytes> {
        let _ = (previous, generation);
        None
    }

    /// Assigns the partitions of `layout` that the `members` subscribe to.
    /// The answer has an entry for every member (empty when it gets
    /// nothing).
    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error>;
}

/// The built-in assignor named `name` (`range`, `roundrobin`, `sticky`,
/// `cooperative-sticky`, `stable`), or `None`. `stable` comes with the
/// default identity and retention ([`StableAssignor::default`]); a group
/// consumer builds it from its configuration instead
/// ([`StableAssignor::from_config`]).
///
/// ```
/// use klamm::group::RebalanceProtocol;
/// use klamm::group::assignor;
///
/// let a = assignor::by_name("cooperative-sticky").unwrap();
/// assert_eq!(a.name(), "cooperative-sticky");
/// assert_eq!(a.rebalance_protocol(), RebalanceProtocol::Cooperative);
/// assert_eq!(assignor::by_name("stable").unwrap().rebalance_protocol(), RebalanceProtocol::Cooperative);
/// assert!(assignor::by_name("unknown").is_none());
/// ```
pub fn by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    match name {
        "range" => Some(Arc::new(RangeAssignor)),
        "roundrobin" => Some(Arc::new(RoundRobinAssignor)),
        "sticky" => Some(Arc::new(StickyAssignor)),
        "cooperative-sticky" => Some(Arc::new(CooperativeStickyAssignor)),
        "stable" => Some(Arc::new(StableAssignor::default())),
        _ => None,
    }
}

/// Like [`by_name`], with an [`Error::Config`] naming
/// `partition.assignment.strategy` for an unknown name.
///
/// ```
/// use klamm::group::assignor;
///
/// let err = assignor::by_name_or_config_error("unknown").unwrap_err();
/// assert_eq!(err.config_key(), Some("partition.assignment.strategy"));
/// ```
pub fn by_name_or_config_error(name: &str) -> Result<Arc<dyn Assignor>, Error> {
    by_name(name).ok_or_else(|| {
        Error::config(
            "partition.assignment.strategy",
            format!(
                "unknown assignor {name:?}: the built-in ones are range, roundrobin, sticky, cooperative-sticky and stable"
            ),
        )
    })
}

/// The assignor a group consumer with `config` offers under `name`: like
/// [`by_name_or_config_error`], with `stable` built from the configuration
/// ([`StableAssignor::from_config`]).
pub(crate) fn configured(
    name: &str,
    config: &crate::config::Config,
) -> Result<Arc<dyn Assignor>, Error> {
    if name == "stable" {
        return Ok(Arc::new(StableAssignor::from_config(config)));
    }
    by_name_or_config_error(name)
}

/// One member of the group as the leader sees it in the JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` when it is a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// Its decoded subscription.
    pub subscription: Subscription,
}

impl GroupMember {
    /// A dynamic member with this subscription.
    pub fn new(member_id: impl Into<String>, subscription: Subscription) -> Self {
        GroupMember {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription,
        }
    }

    /// The same member as a static one with `group.instance.id` `id`.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// A member from the parts of a JoinGroup answer's member entry:
    /// `metadata` is its subscription as it offered it for the chosen
    /// protocol.
    ///
    /// ```
    /// use klamm::group::assignor::GroupMember;
    /// use klamm::group::Subscription;
    ///
    /// let bytes = Subscription::new(["t"]).encode(3).unwrap();
    /// let member = GroupMember::from_join("m-1", Some("host-1".into()), bytes).unwrap();
    /// assert_eq!(member.subscription.topics, vec!["t".to_string()]);
    /// assert!(GroupMember::from_join("m-2", None, bytes::Bytes::from_static(&[0, 0])).is_err());
    /// ```
    pub fn from_join(
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
        metadata: Bytes,
    ) -> Result<Self, DecodeError> {
        Ok(GroupMember {
            member_id: member_id.into(),
            group_instance_id,
            subscription: Subscription::decode(metadata)?,
        })
    }

    /// A member from a JoinGroup answer's member entry.
    pub fn from_join_member(member: &JoinGroupResponseMember) -> Result<Self, DecodeError> {
        Self::from_join(
            member.member_id.clone(),
            member.group_instance_id.clone(),
            member.metadata.clone(),
        )
    }
}

/// What an assignor decided: each member's assignment, and the partitions
/// it held back this round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAssignment {
    /// Each member's assignment, by member id.
    pub members: BTreeMap<String, Assignment>,
    /// Partitions assigned to nobody this round because they move to a new
    /// member and their current owner must give them up first (cooperative
    /// assignors only). When not empty, a follow-up rebalance is needed; the
    /// owners ask for it themselves (they see partitions revoked), so the
    /// leader only has to know.
    pub pending: TopicPartitions,
}

impl GroupAssignment {
    /// An empty assignment for every member.
    pub fn for_members(members: &[GroupMember]) -> Self {
        GroupAssignment {
            members: members
                .iter()
                .map(|m| (m.member_id.clone(), Assignment::default()))
                .collect(),
            pending: TopicPartitions::new(),
        }
    }

    /// Whether some partitions were held back, so another rebalance must
    /// follow this one.
    pub fn needs_follow_up(&self) -> bool {
        self.pending.values().any(|p| !p.is_empty())
    }

    /// Every member's assignment encoded at `version`, ready for SyncGroup.
    pub fn encode(&self, version: i16) -> Result<BTreeMap<String, Bytes>, EncodeError> {
        self.members
            .iter()
            .map(|(id, a)| Ok((id.clone(), a.encode(version)?)))
            .collect()
    }

    /// Adds one partition to `member`'s assignment (which must exist).
    fn give(&mut self, member: &str, topic: &str, partition: i32) {
        if let Some(a) = self.members.get_mut(member) {
            a.partitions
                .entry(topic.to_string())
                .or_default()
                .push(partition);
        }
    }

    /// Sorts every partition list, as the assignors hand them out.
    fn sorted(mut self) -> Self {
        for a in self.members.values_mut() {
            for p in a.partitions.values_mut() {
                p.sort_unstable();
            }
        }
        for p in self.pending.values_mut() {
            p.sort_unstable();
        }
        self
    }
}

/// Compares two strings as Java's `String.compareTo` does (UTF-16 code
/// units), which differs from Rust's order only for characters beyond
/// U+FFFF against U+E000..U+FFFF.
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The Java client's member order: static members first, by instance id,
/// then dynamic members by member id (member id breaks remaining ties).
fn member_order(a: &GroupMember, b: &GroupMember) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_cmp(&a.member_id, &b.member_id))
}

/// The members in the Java client's order, after checking that no member
/// id appears twice (the coordinator never sends that; decoding a JoinGroup
/// answer that does is a protocol error).
fn sorted_members(members: &[GroupMember]) -> Result<Vec<&GroupMember>, Error> {
    let mut ids = BTreeSet::new();
    for m in members {
        if !ids.insert(m.member_id.as_str()) {
            return Err(DecodeError::invalid(format!(
                "member id {:?} appears twice in the group",
                m.member_id
            ))
            .into());
        }
    }
    let mut sorted: Vec<&GroupMember> = members.iter().collect();
    sorted.sort_by(|a, b| member_order(a, b));
    Ok(sorted)
}

/// The topics some member subscribes to that the layout has, in name order.
fn subscribed_topics<'a>(members: &[&'a GroupMember], layout: &ClusterLayout) -> Vec<&'a str> {
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
        .filter(|t| layout.topic(t).is_some())
        .collect();
    topics.into_iter().collect()
}

/// The partitions each member claims, by (topic, partition), for the
/// cooperative check of who still owns what.
fn claimants(members: &[GroupMember]) -> BTreeMap<(&str, i32), BTreeSet<&str>> {
    let mut out: BTreeMap<(&str, i32), BTreeSet<&str>> = BTreeMap::new();
    for m in members {
        for (topic, partitions) in &m.subscription.owned_partitions {
            for &p in partitions {
                out.entry((topic.as_str(), p))
                    .or_default()
                    .insert(m.member_id.as_str());
            }
        }
    }
    out
}
