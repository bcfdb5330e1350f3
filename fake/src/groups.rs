//! Classic consumer groups: the state a group coordinator keeps (members,
//! generation, phase, assignments, committed offsets) and the transitions
//! of a rebalance. The request handlers are in `api::groups`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use klamm::protocol::error_codes::ErrorCode;
use tokio::time::Instant;

use crate::state::State;

/// A group's phase, named as Kafka's DescribeGroups reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub timestamp: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Rejoined during the rebalance under way.
    pub rejoined: bool,
    /// The generation the member last joined.
    pub generation: i32,
    pub assignment: Bytes,
    pub last_seen: Instant,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub phase: Phase,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pub pending: BTreeSet<String>,
    /// When the rebalance under way ends, whoever has not rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// A first rebalance waits until this for more members.
    pub initial_delay_until: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    /// Whether a request naming static member `instance` under `member`
    /// comes from a fenced instance: the instance is known in the group
    /// under another member id (a newer instance with the same
    /// `group.instance.id` joined since), as Kafka answers
    /// FENCED_INSTANCE_ID.
    pub(crate) fn fences(&self, instance: Option<&str>, member: &str) -> bool {
        let Some(instance) = instance else {
            return false;
        };
        self.members
            .iter()
            .any(|(id, m)| m.instance_id.as_deref() == Some(instance) && id != member)
    }

    pub(crate) fn new() -> Self {
        Group {
            phase: Phase::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            offsets: BTreeMap::new(),
        }
    }

    /// Starts a rebalance (if none is under way): every member must rejoin
    /// within the longest rebalance timeout.
    pub(crate) fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.phase == Phase::PreparingRebalance {
            return;
        }
        if self.phase == Phase::Empty {
            self.initial_delay_until = Some(now + initial_delay);
        }
        self.phase = Phase::PreparingRebalance;
        for m in self.members.values_mut() {
            m.rejoined = false;
        }
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + longest);
    }

    /// Ends the rebalance if everyone rejoined (and a first rebalance's
    /// delay passed) or its time ran out: members that did not rejoin go,
    /// the generation moves on and a protocol and a leader are chosen.
    /// Returns whether the group changed.
    pub(crate) fn try_complete(&mut self, now: Instant) -> bool {
        if self.phase != Phase::PreparingRebalance {
            return false;
        }
        let all_in = self.members.values().all(|m| m.rejoined);
        let delayed = self.initial_delay_until.is_some_and(|t| now < t);
        let timed_out = self.rebalance_deadline.is_some_and(|t| now >= t);
        if !(timed_out || (all_in && !delayed)) {
            return false;
        }
        self.members.retain(|_, m| m.rejoined);
        self.generation += 1;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.protocol = None;
            self.leader = None;
            return true;
        }
        self.protocol = self.choose_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let generation = self.generation;
        for m in self.members.values_mut() {
            m.generation = generation;
            m.assignment = Bytes::new();
            m.last_seen = now;
        }
        self.phase = Phase::CompletingRebalance;
        true
    }

    /// The protocol every member supports that the members rank highest
    /// (each member votes for its most preferred common one).
    fn choose_protocol(&self) -> Option<String> {
        let common: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(p, _)| common.contains(&p)) {
                *votes.entry(n).or_insert(0) += 1;
            }
        }
        common
            .iter()
            .max_by_key(|n| (votes.get(*n).copied().unwrap_or(0), std::cmp::Reverse(**n)))
            .map(|n| (*n).clone())
    }

    /// Whether a member supporting `protocols` of `protocol_type` may join.
    pub(crate) fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(n, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
    }

    /// Removes a member; the others rebalance, or the group empties.
    pub(crate) fn remove(&mut self, id: &str, now: Instant, initial_delay: Duration) {
        if self.members.remove(id).is_none() {
            return;
        }
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            self.rebalance_deadline = None;
        } else {
            self.prepare_rebalance(now, initial_delay);
            // A departure can complete a rebalance the others already
            // rejoined.
            self.try_complete(now);
        }
    }
}

/// Checks that `member` of `generation` may commit offsets to `group`
/// (a negative generation with no member id: a commit from outside any
/// group, allowed while the group has no members).
pub(crate) fn check_member(
    st: &State,
    group: &str,
    generation: i32,
    member: &str,
    transactional: bool,
) -> Result<(), ErrorCode> {
    // A transactional commit without a member (generation -1) is not
    // checked against the group, and one from a member is not held up by
    // a rebalance being completed, as Kafka's coordinator has it.
    if transactional && generation < 0 && member.is_empty() {
        return Ok(());
    }
    let Some(g) = st.groups.get(group) else {
        // A commit from outside any group creates it; one that names a
        // generation of a group that does not exist is refused, as Kafka
        // 4's group coordinator does.
        return if generation < 0 {
            Ok(())
        } else {
            Err(ErrorCode::GROUP_ID_NOT_FOUND)
        };
    };
    if generation < 0 && member.is_empty() && g.members.is_empty() {
        return Ok(());
    }
    if !g.members.contains_key(member) {
        return Err(ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if generation != g.generation {
        return Err(ErrorCode::ILLEGAL_GENERATION);
    }
    if g.phase == Phase::CompletingRebalance && !transactional {
        return Err(ErrorCode::REBALANCE_IN_PROGRESS);
    }
    Ok(())
}

/// Stores a committed offset (creating the group if needed).
pub(crate) fn store_offset(st: &mut State, group: &str, topic: &str, p: i32, c: Committed) {
    st.groups
        .entry(group.to_string())
        .or_insert_with(Group::new)
        .offsets
        .insert((topic.to_string(), p), c);
}

/// Removes the members whose session ran out; returns whether any went.
pub(crate) fn expire(st: &mut State, now: Instant) -> bool {
    let delay = st.initial_rebalance_delay;
    let mut changed = false;
    for g in st.groups.values_mut() {
        let gone: Vec<String> = g
            .members
            .iter()
            .filter(|(_, m)| now.duration_since(m.last_seen) > m.session_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            g.remove(&id, now, delay);
            changed = true;
        }
        if g.try_complete(now) {
            changed = true;
        }
    }
    changed
}
