//! Checks of an assignor's output against the rules a group must keep.

use std::collections::{BTreeMap, BTreeSet};

use super::{ClusterLayout, GroupAssignment, GroupMember, RebalanceProtocol};
use crate::group::TopicPartitions;

/// A rule an assignment breaks (see [`GroupAssignment::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The assignment names a member that is not in the group, or leaves
    /// a member of the group out.
    #[error("the assignment's members differ from the group's: {0}")]
    Members(String),
    /// A partition the layout does not have.
    #[error("{member} was assigned {topic}-{partition}, which does not exist")]
    UnknownPartition {
        /// The member.
        member: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A partition of a topic the member does not subscribe to.
    #[error("{member} was assigned {topic}-{partition} but does not subscribe to {topic}")]
    NotSubscribed {
        /// The member.
        member: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A partition assigned twice (to two members, twice to one, or both
    /// assigned and pending).
    #[error("{topic}-{partition} was assigned to both {first} and {second}")]
    AssignedTwice {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// One holder (`pending` for the pending list).
        first: String,
        /// The other.
        second: String,
    },
    /// Cooperative protocol: a partition given to a member that does not
    /// own it while another member still does.
    #[error("{member} was assigned {topic}-{partition} while {owner} still owns it")]
    StillOwned {
        /// The member it was assigned to.
        member: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The member that owns it.
        owner: String,
    },
}

impl GroupAssignment {
    /// Checks that the assignment could be handed out to `members`:
    /// exactly one entry per member, only existing partitions of topics
    /// the member subscribes to, no partition twice, and under the
    /// cooperative protocol no partition given to a member that does not
    /// own it while another member lists it among its owned partitions
    /// (the Java client's check of a cooperative assignment). It does not
    /// require every partition to be assigned (see
    /// [`GroupAssignment::unassigned`]).
    ///
    /// ```
    /// use klamm::group::assignor::{ClusterLayout, GroupAssignment, GroupMember, RebalanceProtocol, Violation};
    /// use klamm::group::Subscription;
    ///
    /// let members = [GroupMember::new("a", Subscription::new(["t"]))];
    /// let layout = ClusterLayout::new().with_topic("t", 1);
    /// let mut plan = GroupAssignment::for_members(&members);
    /// plan.members.get_mut("a").unwrap().partitions.insert("t".into(), vec![0, 0]);
    /// let err = plan.validate(&members, &layout, RebalanceProtocol::Eager).unwrap_err();
    /// assert!(matches!(err, Violation::AssignedTwice { partition: 0, .. }));
    /// ```
    pub fn validate(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
        protocol: RebalanceProtocol,
    ) -> Result<(), Violation> {
        let ids: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
        let given: BTreeSet<&str> = self.members.keys().map(String::as_str).collect();
        if ids != given || ids.len() != members.len() {
            let odd: Vec<&str> = ids.symmetric_difference(&given).copied().collect();
            return Err(Violation::Members(if odd.is_empty() {
                "a member id appears twice in the group".into()
            } else {
                odd.join(", ")
            }));
        }
        let claims = super::claimants(members);
        let mut holder: BTreeMap<(&str, i32), &str> = BTreeMap::new();
        for (topic, partitions) in &self.pending {
            for &p in partitions {
                if let Some(first) = holder.insert((topic, p), "pending") {
                    return Err(twice(topic, p, first, "pending"));
                }
            }
        }
        for m in members {
            let Some(assignment) = self.members.get(&m.member_id) else {
                continue;
            };
            for (topic, partitions) in &assignment.partitions {
                for &p in partitions {
                    if !layout.contains(topic, p) {
                        return Err(Violation::UnknownPartition {
                            member: m.member_id.clone(),
                            topic: topic.clone(),
                            partition: p,
                        });
                    }
                    if !m.subscription.topics.contains(topic) {
                        return Err(Violation::NotSubscribed {
                            member: m.member_id.clone(),
                            topic: topic.clone(),
                            partition: p,
                        });
                    }
                    if let Some(first) = holder.insert((topic, p), &m.member_id) {
                        return Err(twice(topic, p, first, &m.member_id));
                    }
                    if protocol == RebalanceProtocol::Cooperative {
                        let owner = claims
                            .get(&(topic.as_str(), p))
                            .filter(|o| !o.contains(m.member_id.as_str()))
                            .and_then(|o| o.first());
                        if let Some(owner) = owner {
                            return Err(Violation::StillOwned {
                                member: m.member_id.clone(),
                                topic: topic.clone(),
                                partition: p,
                                owner: owner.to_string(),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The partitions of subscribed topics in `layout` that are neither
    /// assigned nor pending. Empty for the built-in assignors.
    pub fn unassigned(&self, members: &[GroupMember], layout: &ClusterLayout) -> TopicPartitions {
        let mut taken: BTreeSet<(&str, i32)> = BTreeSet::new();
        for partitions in self
            .members
            .values()
            .map(|a| &a.partitions)
            .chain([&self.pending])
        {
            for (topic, ps) in partitions {
                taken.extend(ps.iter().map(|&p| (topic.as_str(), p)));
            }
        }
        let topics: BTreeSet<&str> = members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
            .collect();
        let mut out = TopicPartitions::new();
        for topic in topics {
            let missing: Vec<i32> = layout
                .partitions(topic)
                .filter(|&p| !taken.contains(&(topic, p)))
                .collect();
            if !missing.is_empty() {
                out.insert(topic.to_string(), missing);
            }
        }
        out
    }
}

fn twice(topic: &str, partition: i32, first: &str, second: &str) -> Violation {
    Violation::AssignedTwice {
        topic: topic.to_string(),
        partition,
        first: first.to_string(),
        second: second.to_string(),
    }
}
