//! What a group looks like: [`GroupDescription`] and its members, read
//! from a DescribeGroups answer (classic groups) or a
//! ConsumerGroupDescribe answer (KIP-848 `consumer` groups). Pure: no I/O.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::group::{Assignment, Subscription, TopicPartition};
use crate::protocol::error::DecodeError;
use crate::protocol::messages::consumer_group_describe_response as cgd;
use crate::protocol::messages::describe_groups_response as dg;
use crate::protocol::primitives::Uuid;

/// Which rebalance protocol a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// The classic protocol (JoinGroup, SyncGroup; client-side assignors),
    /// described by DescribeGroups. Also what an unknown group is
    /// described as (state `Dead`).
    Classic,
    /// The consumer protocol of KIP-848 (ConsumerGroupHeartbeat;
    /// server-side assignors), described by ConsumerGroupDescribe.
    Consumer,
}

impl GroupType {
    /// The name ListGroups v5+ reports for this type: `classic` or
    /// `consumer`.
    ///
    /// ```
    /// use klamm::group::GroupType;
    ///
    /// assert_eq!(GroupType::Consumer.as_str(), "consumer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

/// A consumer group as its coordinator describes it.
///
/// ```
/// use klamm::group::{GroupDescription, GroupType};
///
/// // What Kafka 4.4 answers for a group it does not know.
/// let unknown = GroupDescription {
///     group_id: "nobody".into(),
///     group_type: GroupType::Classic,
///     state: "Dead".into(),
///     protocol_type: String::new(),
///     protocol: String::new(),
///     members: vec![],
///     group_epoch: None,
///     assignment_epoch: None,
///     authorized_operations: None,
/// };
/// assert!(!unknown.exists());
/// assert!(unknown.owners().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Which protocol the group runs.
    pub group_type: GroupType,
    /// The group's state as the coordinator names it: classic groups
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or
    /// `Dead` (also an unknown group); consumer groups `Empty`,
    /// `Assigning`, `Reconciling`, `Stable` or `Dead`.
    pub state: String,
    /// The protocol type: `consumer` for consumer groups (either
    /// protocol), `connect` for Kafka Connect workers, empty for an
    /// unknown group.
    pub protocol_type: String,
    /// The assignor: the protocol the classic coordinator chose (`range`,
    /// `cooperative-sticky`, …; empty outside `Stable` and
    /// `CompletingRebalance`), or the server-side assignor of a consumer
    /// group (`uniform`, `range`).
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The group epoch of a consumer group (`None` for classic groups).
    pub group_epoch: Option<i32>,
    /// The epoch of a consumer group's target assignment (`None` for
    /// classic groups).
    pub assignment_epoch: Option<i32>,
    /// The operations the caller may perform on the group, as a bit set
    /// (bit `n` set: ACL operation `n`, e.g. 3 READ, 6 DELETE, 8
    /// DESCRIBE), when asked for and reported (DescribeGroups v3+).
    pub authorized_operations: Option<i32>,
}

impl GroupDescription {
    /// Whether the group exists: its coordinator answers state `Dead`
    /// for a group it does not know.
    pub fn exists(&self) -> bool {
        !self.state.eq_ignore_ascii_case("dead")
    }

    /// Who owns each assigned partition, from the members' (decoded)
    /// current assignments.
    pub fn owners(&self) -> BTreeMap<TopicPartition, &MemberDescription> {
        let mut owners = BTreeMap::new();
        for m in &self.members {
            let Some(a) = &m.assignment else { continue };
            for (topic, partitions) in &a.partitions {
                for p in partitions {
                    owners.insert(TopicPartition::new(topic.clone(), *p), m);
                }
            }
        }
        owners
    }
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client id it connects with.
    pub client_id: String,
    /// The host it connects from, as the broker prints it
    /// (`/127.0.0.1`).
    pub client_host: String,
    /// The member epoch (consumer groups only).
    pub member_epoch: Option<i32>,
    /// What it subscribes to: a classic `consumer` member's metadata
    /// decoded (`None` when the coordinator sent none, as it does outside
    /// `Stable`, or when it does not decode); a consumer-group member's
    /// subscribed topic names and rack.
    pub subscription: Option<Subscription>,
    /// The topic regex a consumer-group member subscribes with (KIP-848),
    /// if any.
    pub subscribed_topic_regex: Option<String>,
    /// The partitions it owns now: a classic `consumer` member's
    /// assignment decoded (zero bytes, as sent outside `Stable`, read as
    /// empty), or a consumer-group member's current assignment with its
    /// topic ids turned into names.
    pub assignment: Option<Assignment>,
    /// The assignment a consumer-group member is moving to (KIP-848).
    pub target_assignment: Option<Assignment>,
    /// The member's raw metadata (classic groups; empty otherwise).
    pub metadata: Bytes,
    /// The member's raw assignment (classic groups; empty otherwise).
    pub raw_assignment: Bytes,
    /// The first thing about the member that could not be read: its
    /// metadata or assignment did not decode (the raw bytes are kept
    /// above), or a topic id of a consumer-group member's assignment is
    /// not in the cluster metadata (its partitions are left out).
    pub decode_error: Option<DecodeError>,
}

/// A classic group from its DescribeGroups entry; `gone` when the group
/// is unknown to the coordinator (state `Dead`, or GROUP_ID_NOT_FOUND).
/// Members of protocol type `consumer` have their metadata and
/// assignment decoded; a decode failure is kept on the member.
pub(super) fn classic_group(g: dg::DescribedGroup, gone: bool) -> GroupDescription {
    let consumer = g.protocol_type == "consumer";
    GroupDescription {
        state: if gone && g.group_state.is_empty() {
            "Dead".to_string()
        } else {
            g.group_state
        },
        group_type: GroupType::Classic,
        protocol_type: g.protocol_type,
        protocol: g.protocol_data,
        members: g
            .members
            .into_iter()
            .map(|m| classic_member(m, consumer))
            .collect(),
        group_epoch: None,
        assignment_epoch: None,
        authorized_operations: operations(g.authorized_operations),
        group_id: g.group_id,
    }
}

fn classic_member(m: dg::DescribedGroupMember, consumer: bool) -> MemberDescription {
    let mut errors: Vec<DecodeError> = Vec::new();
    let (subscription, assignment) = if consumer {
        let subscription = if m.member_metadata.is_empty() {
            None
        } else {
            Subscription::decode(m.member_metadata.clone())
                .map_err(|e| errors.push(e))
                .ok()
        };
        let assignment = Assignment::decode(m.member_assignment.clone())
            .map_err(|e| errors.push(e))
            .ok();
        (subscription, assignment)
    } else {
        (None, None)
    };
    MemberDescription {
        member_id: m.member_id,
        group_instance_id: m.group_instance_id,
        client_id: m.client_id,
        client_host: m.client_host,
        member_epoch: None,
        subscription,
        subscribed_topic_regex: None,
        assignment,
        target_assignment: None,
        metadata: m.member_metadata,
        raw_assignment: m.member_assignment,
        decode_error: errors.into_iter().next(),
    }
}

/// A consumer group from its ConsumerGroupDescribe entry. Topics come by
/// id with their names; a name the broker left empty is looked up with
/// `name_of` (the cluster metadata).
pub(super) fn consumer_group(
    g: cgd::DescribedGroup,
    name_of: &dyn Fn(&Uuid) -> Option<String>,
) -> GroupDescription {
    GroupDescription {
        group_type: GroupType::Consumer,
        state: g.group_state,
        protocol_type: "consumer".to_string(),
        protocol: g.assignor_name,
        members: g
            .members
            .into_iter()
            .map(|m| consumer_member(m, name_of))
            .collect(),
        group_epoch: Some(g.group_epoch),
        assignment_epoch: Some(g.assignment_epoch),
        authorized_operations: operations(g.authorized_operations),
        group_id: g.group_id,
    }
}

fn consumer_member(m: cgd::Member, name_of: &dyn Fn(&Uuid) -> Option<String>) -> MemberDescription {
    let mut errors: Vec<DecodeError> = Vec::new();
    let assignment = named(&m.assignment, name_of, &mut errors);
    let target = named(&m.target_assignment, name_of, &mut errors);
    let subscription = Subscription {
        topics: m.subscribed_topic_names,
        rack: m.rack_id,
        ..Default::default()
    };
    MemberDescription {
        member_id: m.member_id,
        group_instance_id: m.instance_id,
        client_id: m.client_id,
        client_host: m.client_host,
        member_epoch: Some(m.member_epoch),
        subscription: Some(subscription),
        // Kafka 4.4 sends "" for a member without a regex.
        subscribed_topic_regex: m.subscribed_topic_regex.filter(|r| !r.is_empty()),
        assignment: Some(assignment),
        target_assignment: Some(target),
        metadata: Bytes::new(),
        raw_assignment: Bytes::new(),
        decode_error: errors.into_iter().next(),
    }
}

/// A KIP-848 assignment by topic name; topics whose id has no name are
/// left out, with an error.
fn named(
    a: &cgd::Assignment,
    name_of: &dyn Fn(&Uuid) -> Option<String>,
    errors: &mut Vec<DecodeError>,
) -> Assignment {
    let mut out = Assignment::default();
    for t in &a.topic_partitions {
        let name = if t.topic_name.is_empty() {
            name_of(&t.topic_id)
        } else {
            Some(t.topic_name.clone())
        };
        let Some(name) = name else {
            errors.push(DecodeError::invalid(format!(
                "topic id {} of the assignment is not in the cluster metadata",
                t.topic_id
            )));
            continue;
        };
        let ps = out.partitions.entry(name).or_default();
        ps.extend(&t.partitions);
        ps.sort_unstable();
        ps.dedup();
    }
    out
}

/// Kafka's "not asked for / not known" is i32::MIN.
fn operations(bits: i32) -> Option<i32> {
    (bits != i32::MIN).then_some(bits)
}
