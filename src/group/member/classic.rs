//! The classic group protocol on the wire: JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup for one member, each one request at the
//! highest version both sides speak, its error code turned into what the
//! member must do next.

use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use crate::protocol::messages::join_group_response::JoinGroupResponseMember;
use crate::protocol::messages::leave_group_request::MemberIdentity;
use crate::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use crate::protocol::messages::{
    ApiKey, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};

/// The protocol type of consumer groups.
pub(crate) const CONSUMER: &str = "consumer";

/// Who the member is in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) group: String,
    /// Empty until the coordinator gives one.
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    /// -1 until the first generation.
    pub(crate) generation: i32,
}

/// What an error code from a group API means for the member.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The coordinator moved or is not ready: find it again, retry.
    Rediscover(Error),
    /// Retry the same request after a pause.
    Retry(Error),
    /// The group is rebalancing: join again (keeping the member id).
    Rejoin(Error),
    /// The member id or generation is no longer valid: its partitions
    /// are lost; join again (with no member id for UNKNOWN_MEMBER_ID).
    Reset {
        error: Error,
        forget_member_id: bool,
    },
    /// The member cannot go on: fenced, refused, misconfigured.
    Fatal(Error),
}

/// The verdict for a non-zero `code` from `api`.
pub(crate) fn verdict(api: ApiKey, code: ErrorCode, group: &str) -> Verdict {
    let error = || Error::Broker {
        api,
        code,
        context: Some(context(code, group)),
    };
    match code {
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
            Verdict::Rediscover(error())
        }
        ErrorCode::REBALANCE_IN_PROGRESS => Verdict::Rejoin(error()),
        ErrorCode::UNKNOWN_MEMBER_ID => Verdict::Reset {
            error: error(),
            forget_member_id: true,
        },
        ErrorCode::ILLEGAL_GENERATION => Verdict::Reset {
            error: error(),
            forget_member_id: false,
        },
        ErrorCode::FENCED_INSTANCE_ID
        | ErrorCode::GROUP_AUTHORIZATION_FAILED
        | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        | ErrorCode::INVALID_SESSION_TIMEOUT
        | ErrorCode::GROUP_MAX_SIZE_REACHED
        | ErrorCode::UNSUPPORTED_VERSION
        | ErrorCode::INVALID_GROUP_ID => Verdict::Fatal(error()),
        c if c == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS || c.is_retriable() => {
            Verdict::Retry(error())
        }
        _ => Verdict::Fatal(error()),
    }
}

fn context(code: ErrorCode, group: &str) -> String {
    match code {
        ErrorCode::FENCED_INSTANCE_ID => format!(
            "group '{group}': another member uses the same group.instance.id; this one is fenced and stops"
        ),
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL => format!(
            "group '{group}': no assignor in partition.assignment.strategy is supported by every member"
        ),
        ErrorCode::INVALID_SESSION_TIMEOUT => format!(
            "group '{group}': session.timeout.ms is outside the broker's group.min/max.session.timeout.ms"
        ),
        ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => format!(
            "group '{group}': the member was removed from the group or fell behind a rebalance; its partitions are lost"
        ),
        _ => format!("group '{group}'"),
    }
}

/// What JoinGroup answered.
#[derive(Debug)]
pub(crate) enum Joined {
    /// The member id to join with (KIP-394): join again at once with it.
    MemberIdRequired(String),
    /// The member is in the generation.
    Member {
        generation: i32,
        member_id: String,
        protocol: Option<String>,
        leader: String,
        /// Every member's subscription (the leader's answer only).
        members: Vec<JoinGroupResponseMember>,
        /// KIP-814: a static leader that rejoined keeps its assignment and
        /// must not compute a new one.
        skip_assignment: bool,
    },
    /// An error code with its verdict.
    Failed(Verdict),
}

/// The settings JoinGroup carries.
#[derive(Debug, Clone)]
pub(crate) struct JoinSettings {
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    /// (assignor name, subscription bytes), in order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) reason: Option<String>,
}

/// One JoinGroup. The broker holds it until every member has joined (at
/// most the rebalance timeout), so it gets that much time and five
/// seconds more, as the Java client allows.
pub(crate) async fn join(conn: &Connection, id: &Identity, s: &JoinSettings) -> Result<Joined> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::JoinGroup, conn.broker())?;
    let req = JoinGroupRequest {
        group_id: id.group.clone(),
        session_timeout_ms: millis(s.session_timeout),
        rebalance_timeout_ms: millis(s.rebalance_timeout),
        member_id: id.member_id.clone(),
        group_instance_id: if version >= 5 {
            id.instance_id.clone()
        } else {
            None
        },
        protocol_type: CONSUMER.into(),
        protocols: s
            .protocols
            .iter()
            .map(|(name, metadata)| JoinGroupRequestProtocol {
                name: name.clone(),
                metadata: metadata.clone(),
                ..Default::default()
            })
            .collect(),
        reason: if version >= 8 { s.reason.clone() } else { None },
        ..Default::default()
    };
    let timeout = s.rebalance_timeout.max(s.session_timeout) + Duration::from_secs(5);
    let resp = conn.send_with_timeout(&req, version, timeout).await?;
    let code = ErrorCode(resp.error_code);
    if code == ErrorCode::MEMBER_ID_REQUIRED {
        return Ok(Joined::MemberIdRequired(resp.member_id));
    }
    if !code.is_ok() {
        return Ok(Joined::Failed(verdict(ApiKey::JoinGroup, code, &id.group)));
    }
    if resp.protocol_type.as_deref().is_some_and(|t| t != CONSUMER) {
        return Err(Error::ProtocolViolation {
            broker: conn.broker().to_string(),
            reason: format!(
                "JoinGroup answer for group '{}' has protocol type {:?}, not consumer",
                id.group, resp.protocol_type
            ),
        });
    }
    Ok(Joined::Member {
        generation: resp.generation_id,
        member_id: resp.member_id,
        protocol: resp.protocol_name,
        leader: resp.leader,
        members: resp.members,
        skip_assignment: resp.skip_assignment,
    })
}

/// One SyncGroup: the leader sends every member's assignment, the others
/// none. Returns this member's assignment bytes, or the verdict.
pub(crate) async fn sync(
    conn: &Connection,
    id: &Identity,
    protocol: Option<&str>,
    assignments: Vec<(String, Bytes)>,
    rebalance_timeout: Duration,
) -> Result<std::result::Result<Bytes, Verdict>> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::SyncGroup, conn.broker())?;
    let req = SyncGroupRequest {
        group_id: id.group.clone(),
        generation_id: id.generation,
        member_id: id.member_id.clone(),
        group_instance_id: if version >= 3 {
            id.instance_id.clone()
        } else {
            None
        },
        protocol_type: (version >= 5).then(|| CONSUMER.to_string()),
        protocol_name: if version >= 5 {
            protocol.map(str::to_string)
        } else {
            None
        },
        assignments: assignments
            .into_iter()
            .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                member_id,
                assignment,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let timeout = rebalance_timeout + Duration::from_secs(5);
    let resp = conn.send_with_timeout(&req, version, timeout).await?;
    let code = ErrorCode(resp.error_code);
    if !code.is_ok() {
        return Ok(Err(verdict(ApiKey::SyncGroup, code, &id.group)));
    }
    Ok(Ok(resp.assignment))
}

/// One Heartbeat; `None` when the member is in good standing.
pub(crate) async fn heartbeat(conn: &Connection, id: &Identity) -> Result<Option<Verdict>> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::Heartbeat, conn.broker())?;
    let req = HeartbeatRequest {
        group_id: id.group.clone(),
        generation_id: id.generation,
        member_id: id.member_id.clone(),
        group_instance_id: if version >= 3 {
            id.instance_id.clone()
        } else {
            None
        },
        ..Default::default()
    };
    let resp = conn.send_version(&req, version).await?;
    let code = ErrorCode(resp.error_code);
    Ok((!code.is_ok()).then(|| verdict(ApiKey::Heartbeat, code, &id.group)))
}

/// LeaveGroup for this member (dynamic members only: a static member
/// that leaves keeps its place until its session times out, KIP-345).
/// UNKNOWN_MEMBER_ID means it was gone already, which is what was asked.
pub(crate) async fn leave(conn: &Connection, id: &Identity, reason: &str) -> Result<()> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::LeaveGroup, conn.broker())?;
    let req = if version >= 3 {
        LeaveGroupRequest {
            group_id: id.group.clone(),
            members: vec![MemberIdentity {
                member_id: id.member_id.clone(),
                group_instance_id: id.instance_id.clone(),
                reason: (version >= 5).then(|| reason.to_string()),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        LeaveGroupRequest {
            group_id: id.group.clone(),
            member_id: id.member_id.clone(),
            ..Default::default()
        }
    };
    let resp = conn.send_version(&req, version).await?;
    let codes = std::iter::once(resp.error_code).chain(resp.members.iter().map(|m| m.error_code));
    for code in codes.map(ErrorCode) {
        if !code.is_ok() && code != ErrorCode::UNKNOWN_MEMBER_ID {
            return Err(Error::Broker {
                api: ApiKey::LeaveGroup,
                code,
                context: Some(format!("group '{}'", id.group)),
            });
        }
    }
    Ok(())
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
