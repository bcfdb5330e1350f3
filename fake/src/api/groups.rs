//! The group coordinator's requests: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, ListGroups and DescribeGroups.

use std::time::Duration;

use bytes::Bytes;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use klamm::protocol::messages::join_group_response::JoinGroupResponseMember;
use klamm::protocol::messages::leave_group_response::MemberResponse;
use klamm::protocol::messages::list_groups_response::ListedGroup;
use klamm::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use klamm::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use klamm::protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use tokio::time::Instant;

use super::Cx;
use crate::groups::{Committed, Group, Member, Phase, check_member, store_offset};
use crate::state::State;

/// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms`
/// defaults.
const MIN_SESSION: i32 = 6_000;
const MAX_SESSION: i32 = 1_800_000;
/// How often a waiting request looks at its group when nothing wakes it.
const RECHECK: Duration = Duration::from_millis(100);

fn join_error(code: ErrorCode, member_id: String) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        member_id,
        ..Default::default()
    }
}

/// Checks a group request reaches the group's coordinator.
fn coordinator_check(st: &State, cx: &Cx<'_>, group: &str) -> Result<(), ErrorCode> {
    if group.is_empty() {
        return Err(ErrorCode::INVALID_GROUP_ID);
    }
    if st.coordinator(group) != Some(cx.broker) {
        return Err(ErrorCode::NOT_COORDINATOR);
    }
    Ok(())
}

pub(crate) async fn join(cx: &Cx<'_>, req: JoinGroupRequest) -> JoinGroupResponse {
    let protocols: Vec<(String, Bytes)> = req
        .protocols
        .iter()
        .map(|p| (p.name.clone(), p.metadata.clone()))
        .collect();
    let member_id = {
        let mut st = cx.lock();
        if let Err(code) = coordinator_check(&st, cx, &req.group_id) {
            return join_error(code, req.member_id);
        }
        if req.session_timeout_ms < MIN_SESSION || req.session_timeout_ms > MAX_SESSION {
            return join_error(ErrorCode::INVALID_SESSION_TIMEOUT, req.member_id);
        }
        let now = Instant::now();
        let delay = st.initial_rebalance_delay;
        let fresh = st.next_member_id(&cx.client_id);
        let g = st
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(Group::new);
        if !g.accepts(&req.protocol_type, &protocols) {
            return join_error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL, req.member_id);
        }
        let mut id = req.member_id.clone();
        if id.is_empty() {
            if let Some(instance) = &req.group_instance_id {
                // A static member coming back takes a new id; the old one
                // is fenced.
                let old = g
                    .members
                    .iter()
                    .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                    .map(|(k, _)| k.clone());
                if let Some(old) = old
                    && let Some(m) = g.members.remove(&old)
                {
                    g.members.insert(fresh.clone(), m);
                    if g.leader.as_ref() == Some(&old) {
                        g.leader = Some(fresh.clone());
                    }
                }
                id = fresh;
            } else if cx.version >= 4 {
                g.pending.insert(fresh.clone());
                return join_error(ErrorCode::MEMBER_ID_REQUIRED, fresh);
            } else {
                id = fresh;
            }
        } else if g.fences(req.group_instance_id.as_deref(), &id) {
            return join_error(ErrorCode::FENCED_INSTANCE_ID, id);
        } else if !g.members.contains_key(&id) && !g.pending.contains(&id) {
            return join_error(ErrorCode::UNKNOWN_MEMBER_ID, id);
        }
        g.pending.remove(&id);
        if g.members.is_empty() {
            g.protocol_type = Some(req.protocol_type.clone());
        }
        let generation = g.members.get(&id).map_or(-1, |m| m.generation);
        // JoinGroup v0 has no rebalance timeout: the session timeout is it.
        let rebalance_ms = if req.rebalance_timeout_ms < 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        };
        let before = g.generation;
        g.members.insert(
            id.clone(),
            Member {
                instance_id: req.group_instance_id.clone(),
                client_id: cx.client_id.clone(),
                session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(rebalance_ms.max(0) as u64),
                protocols: protocols.clone(),
                rejoined: true,
                generation,
                assignment: Bytes::new(),
                last_seen: now,
            },
        );
        if g.phase != Phase::PreparingRebalance {
            g.prepare_rebalance(now, delay);
            // The joiner itself counts as rejoined.
            if let Some(m) = g.members.get_mut(&id) {
                m.rejoined = true;
            }
        }
        g.try_complete(now);
        (id, before)
    };
    let (member_id, before) = member_id;
    cx.shared.bump();
    let mut changed = cx.shared.changed.subscribe();
    loop {
        let wake = {
            let mut st = cx.lock();
            let now = Instant::now();
            let Some(g) = st.groups.get_mut(&req.group_id) else {
                return join_error(ErrorCode::UNKNOWN_MEMBER_ID, member_id);
            };
            if g.try_complete(now) {
                cx.shared.bump();
            }
            let Some(m) = g.members.get_mut(&member_id) else {
                return join_error(ErrorCode::UNKNOWN_MEMBER_ID, member_id);
            };
            m.last_seen = now;
            // Answered once a rebalance completed with the member in it,
            // even if another one has begun since (the member then learns
            // of it at SyncGroup), as Kafka answers every waiting join the
            // moment a rebalance completes.
            if m.generation > before {
                return joined(g, &member_id, cx.version);
            }
            [g.rebalance_deadline, g.initial_delay_until]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min()
                .unwrap_or(now + RECHECK)
                .min(now + RECHECK)
        };
        tokio::select! {
            biased;
            () = changed.changed() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn joined(g: &Group, member_id: &str, version: i16) -> JoinGroupResponse {
    let leader = g.leader.clone().unwrap_or_default();
    let protocol = g.protocol.clone();
    let members = if leader == member_id {
        g.members
            .iter()
            .filter(|(_, m)| m.generation == g.generation)
            .map(|(id, m)| JoinGroupResponseMember {
                member_id: id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default(),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse {
        generation_id: g.generation,
        protocol_type: if version >= 7 {
            g.protocol_type.clone()
        } else {
            None
        },
        protocol_name: protocol,
        leader,
        member_id: member_id.to_string(),
        members,
        ..Default::default()
    }
}

pub(crate) async fn sync(cx: &Cx<'_>, req: SyncGroupRequest) -> SyncGroupResponse {
    let error = |code: ErrorCode| SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    };
    {
        let mut st = cx.lock();
        if let Err(code) = coordinator_check(&st, cx, &req.group_id) {
            return error(code);
        }
        let Some(g) = st.groups.get_mut(&req.group_id) else {
            return error(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if g.fences(req.group_instance_id.as_deref(), &req.member_id) {
            return error(ErrorCode::FENCED_INSTANCE_ID);
        }
        if !g.members.contains_key(&req.member_id) {
            return error(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        if req.generation_id != g.generation {
            return error(ErrorCode::ILLEGAL_GENERATION);
        }
        if g.phase == Phase::PreparingRebalance {
            return error(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        if g.phase == Phase::CompletingRebalance && g.leader.as_ref() == Some(&req.member_id) {
            for a in &req.assignments {
                if let Some(m) = g.members.get_mut(&a.member_id) {
                    m.assignment = a.assignment.clone();
                }
            }
            g.phase = Phase::Stable;
            drop(st);
            cx.shared.bump();
        }
    }
    let mut changed = cx.shared.changed.subscribe();
    loop {
        {
            let mut st = cx.lock();
            let Some(g) = st.groups.get_mut(&req.group_id) else {
                return error(ErrorCode::UNKNOWN_MEMBER_ID);
            };
            let (phase, generation, protocol_type, protocol) = (
                g.phase,
                g.generation,
                g.protocol_type.clone(),
                g.protocol.clone(),
            );
            let Some(m) = g.members.get_mut(&req.member_id) else {
                return error(ErrorCode::UNKNOWN_MEMBER_ID);
            };
            m.last_seen = Instant::now();
            if generation != req.generation_id || phase == Phase::PreparingRebalance {
                return error(ErrorCode::REBALANCE_IN_PROGRESS);
            }
            if phase == Phase::Stable {
                return SyncGroupResponse {
                    protocol_type: if cx.version >= 5 { protocol_type } else { None },
                    protocol_name: if cx.version >= 5 { protocol } else { None },
                    assignment: m.assignment.clone(),
                    ..Default::default()
                };
            }
        }
        tokio::select! {
            biased;
            () = changed.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

pub(crate) fn heartbeat(cx: &Cx<'_>, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut st = cx.lock();
    let code = (|| {
        coordinator_check(&st, cx, &req.group_id)?;
        let g = st
            .groups
            .get_mut(&req.group_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        if g.fences(req.group_instance_id.as_deref(), &req.member_id) {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        let (phase, generation) = (g.phase, g.generation);
        let m = g
            .members
            .get_mut(&req.member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        m.last_seen = Instant::now();
        if req.generation_id != generation {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
        if phase == Phase::PreparingRebalance {
            return Err(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        Ok(())
    })();
    HeartbeatResponse {
        error_code: code.err().map_or(0, ErrorCode::code),
        ..Default::default()
    }
}

pub(crate) fn leave(cx: &Cx<'_>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let mut st = cx.lock();
    if let Err(code) = coordinator_check(&st, cx, &req.group_id) {
        return LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let delay = st.initial_rebalance_delay;
    let now = Instant::now();
    let leaving: Vec<(String, Option<String>)> = if cx.version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(req.member_id.clone(), None)]
    };
    let mut results = Vec::new();
    let mut top = 0;
    for (member_id, instance) in leaving {
        let code = match st.groups.get_mut(&req.group_id) {
            None => ErrorCode::UNKNOWN_MEMBER_ID,
            Some(g) => {
                let id = if member_id.is_empty() {
                    instance.as_ref().and_then(|i| {
                        g.members
                            .iter()
                            .find(|(_, m)| m.instance_id.as_ref() == Some(i))
                            .map(|(k, _)| k.clone())
                    })
                } else {
                    Some(member_id.clone())
                };
                match id {
                    _ if !member_id.is_empty() && g.fences(instance.as_deref(), &member_id) => {
                        ErrorCode::FENCED_INSTANCE_ID
                    }
                    Some(id) if g.members.contains_key(&id) => {
                        g.remove(&id, now, delay);
                        ErrorCode::NONE
                    }
                    _ => ErrorCode::UNKNOWN_MEMBER_ID,
                }
            }
        };
        if cx.version < 3 {
            top = code.code();
        }
        results.push(MemberResponse {
            member_id,
            group_instance_id: instance,
            error_code: code.code(),
            ..Default::default()
        });
    }
    drop(st);
    cx.shared.bump();
    LeaveGroupResponse {
        error_code: top,
        members: if cx.version >= 3 { results } else { Vec::new() },
        ..Default::default()
    }
}

pub(crate) fn offset_commit(cx: &Cx<'_>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let mut st = cx.lock();
    let fenced = st
        .groups
        .get(&req.group_id)
        .is_some_and(|g| g.fences(req.group_instance_id.as_deref(), &req.member_id));
    let check = coordinator_check(&st, cx, &req.group_id).and_then(|()| {
        if fenced {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        check_member(
            &st,
            &req.group_id,
            req.generation_id_or_member_epoch,
            &req.member_id,
            false,
        )
    });
    let now = st.clock.now_ms();
    let mut topics = Vec::new();
    for t in req.topics {
        let mut partitions = Vec::new();
        for p in t.partitions {
            let injected = check.and_then(|()| {
                st.take_partition_fault(ApiKey::OffsetCommit, cx.broker, &t.name, p.partition_index)
                    .map_or(Ok(()), Err)
            });
            let code = match injected {
                Err(code) => code,
                Ok(()) if st.partition(&t.name, p.partition_index).is_none() => {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                }
                Ok(()) => {
                    store_offset(
                        &mut st,
                        &req.group_id,
                        &t.name,
                        p.partition_index,
                        Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.clone(),
                            timestamp: now,
                        },
                    );
                    ErrorCode::NONE
                }
            };
            partitions.push(OffsetCommitResponsePartition {
                partition_index: p.partition_index,
                error_code: code.code(),
                ..Default::default()
            });
        }
        topics.push(OffsetCommitResponseTopic {
            name: t.name,
            partitions,
            ..Default::default()
        });
    }
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

/// One committed offset as OffsetFetch reports it.
struct Fetched {
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
    code: i16,
}

fn fetched(st: &State, group: &str, topic: &str, p: i32, require_stable: bool) -> Fetched {
    let pending = require_stable
        && st.txns.values().any(|t| {
            t.open
                && t.offsets
                    .contains_key(&(group.to_string(), topic.to_string(), p))
        });
    if pending {
        return Fetched {
            offset: -1,
            leader_epoch: -1,
            metadata: Some(String::new()),
            code: ErrorCode::UNSTABLE_OFFSET_COMMIT.code(),
        };
    }
    match st
        .groups
        .get(group)
        .and_then(|g| g.offsets.get(&(topic.to_string(), p)))
    {
        Some(c) => Fetched {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: Some(c.metadata.clone().unwrap_or_default()),
            code: 0,
        },
        None => Fetched {
            offset: -1,
            leader_epoch: -1,
            metadata: Some(String::new()),
            code: 0,
        },
    }
}

/// The (topic, partitions) an OffsetFetch asks about; all the group's
/// committed partitions when it names none.
fn wanted(
    st: &State,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<i32>)> {
    match topics {
        Some(t) => t,
        None => {
            let mut out: Vec<(String, Vec<i32>)> = Vec::new();
            if let Some(g) = st.groups.get(group) {
                for (topic, p) in g.offsets.keys() {
                    match out.last_mut() {
                        Some((t, ps)) if t == topic => ps.push(*p),
                        _ => out.push((topic.clone(), vec![*p])),
                    }
                }
            }
            out
        }
    }
}

/// One group's committed offsets as OffsetFetch v8+ answers them.
fn group_offsets(
    st: &State,
    cx: &Cx<'_>,
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> OffsetFetchResponseGroup {
    if let Err(code) = coordinator_check(st, cx, &group) {
        return OffsetFetchResponseGroup {
            group_id: group,
            error_code: code.code(),
            ..Default::default()
        };
    }
    let topics = wanted(st, &group, topics)
        .into_iter()
        .map(|(name, ps)| OffsetFetchResponseTopics {
            partitions: ps
                .into_iter()
                .map(|p| {
                    let f = fetched(st, &group, &name, p, require_stable);
                    OffsetFetchResponsePartitions {
                        partition_index: p,
                        committed_offset: f.offset,
                        committed_leader_epoch: f.leader_epoch,
                        metadata: f.metadata,
                        error_code: f.code,
                        ..Default::default()
                    }
                })
                .collect(),
            name,
            ..Default::default()
        })
        .collect();
    OffsetFetchResponseGroup {
        group_id: group,
        topics,
        ..Default::default()
    }
}

pub(crate) fn offset_fetch(cx: &Cx<'_>, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let st = cx.lock();
    let stable = req.require_stable;
    if cx.version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes.into_vec()))
                        .collect()
                });
                group_offsets(&st, cx, g.group_id, topics, stable)
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    // Below v8: one group, its answer in the older shape.
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes.into_vec()))
            .collect()
    });
    let g = group_offsets(&st, cx, req.group_id, topics, stable);
    OffsetFetchResponse {
        error_code: g.error_code,
        topics: g
            .topics
            .into_iter()
            .map(|t| OffsetFetchResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| OffsetFetchResponsePartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata,
                        error_code: p.error_code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn list_groups(cx: &Cx<'_>, req: ListGroupsRequest) -> ListGroupsResponse {
    let st = cx.lock();
    let groups = st
        .groups
        .iter()
        .filter(|(id, _)| st.coordinator(id) == Some(cx.broker))
        .filter(|(_, g)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(g.phase.name()))
        })
        .filter(|_| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("classic"))
        })
        .map(|(id, g)| ListedGroup {
            group_id: id.clone(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            group_state: g.phase.name().to_string(),
            group_type: "classic".to_string(),
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}

pub(crate) fn describe_groups(cx: &Cx<'_>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let st = cx.lock();
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            if let Err(code) = coordinator_check(&st, cx, &id) {
                return DescribedGroup {
                    error_code: code.code(),
                    group_id: id,
                    authorized_operations: i32::MIN,
                    ..Default::default()
                };
            }
            let Some(g) = st.groups.get(&id) else {
                return DescribedGroup {
                    error_code: if cx.version >= 6 {
                        ErrorCode::GROUP_ID_NOT_FOUND.code()
                    } else {
                        0
                    },
                    group_id: id,
                    group_state: "Dead".into(),
                    authorized_operations: i32::MIN,
                    ..Default::default()
                };
            };
            let protocol = g.protocol.clone();
            DescribedGroup {
                group_id: id,
                group_state: g.phase.name().to_string(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocol_data: protocol.clone().unwrap_or_default(),
                members: g
                    .members
                    .iter()
                    .map(|(mid, m)| DescribedGroupMember {
                        member_id: mid.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: "/127.0.0.1".into(),
                        member_metadata: m
                            .protocols
                            .iter()
                            .find(|(n, _)| Some(n) == protocol.as_ref())
                            .map(|(_, md)| md.clone())
                            .unwrap_or_default(),
                        member_assignment: m.assignment.clone(),
                        ..Default::default()
                    })
                    .collect(),
                authorized_operations: i32::MIN,
                ..Default::default()
            }
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
