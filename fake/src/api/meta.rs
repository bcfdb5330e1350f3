//! ApiVersions, Metadata and FindCoordinator.

use std::collections::BTreeMap;

use bytes::BytesMut;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::frame::encode_response;
use klamm::protocol::messages::api_versions_response::ApiVersion;
use klamm::protocol::messages::find_coordinator_response::Coordinator;
use klamm::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use klamm::protocol::messages::{
    ApiKey, ApiVersionsResponse, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest,
    MetadataResponse,
};

use super::{Cx, SUPPORTED, offered};
use crate::state::State;

/// Kafka's "authorized operations not requested" value.
const OPS_OMITTED: i32 = i32::MIN;

pub(crate) fn api_versions(st: &State) -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: SUPPORTED
            .iter()
            .filter_map(|&(k, _, _)| {
                let (min, max) = offered(st, k)?;
                Some(ApiVersion {
                    api_key: k.code(),
                    min_version: min,
                    max_version: max,
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

/// The answer to an ApiVersions request at a version this broker does not
/// know: UNSUPPORTED_VERSION at v0 with the versions it has. `None` for
/// any other undecodable frame.
pub(crate) fn unsupported_api_versions(
    shared: &crate::server::Shared,
    frame: &[u8],
) -> Option<BytesMut> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let id = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
    if key != ApiKey::ApiVersions.code() || version <= ApiKey::ApiVersions.versions().1 {
        return None;
    }
    let answer = unsupported_version(&shared.lock());
    let mut out = BytesMut::new();
    encode_response(&mut out, ApiKey::ApiVersions, id, &answer, 0).ok()?;
    Some(out)
}

/// UNSUPPORTED_VERSION with the versions offered, for an ApiVersions
/// request at a version above them: answered at v0 so the client can retry
/// at one it reads (KIP-511).
pub(crate) fn unsupported_version(st: &State) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
        ..api_versions(st)
    }
}

fn brokers(st: &State) -> Vec<MetadataResponseBroker> {
    st.brokers
        .iter()
        .filter(|(_, b)| b.up)
        .map(|(&id, b)| MetadataResponseBroker {
            node_id: id,
            host: "127.0.0.1".into(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            ..Default::default()
        })
        .collect()
}

fn describe_topic(st: &State, name: &str) -> MetadataResponseTopic {
    let Some(t) = st.topics.get(name) else {
        return MetadataResponseTopic {
            error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            name: Some(name.to_string()),
            topic_authorized_operations: OPS_OMITTED,
            ..Default::default()
        };
    };
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let up = |r: &i32| st.brokers.get(r).is_some_and(|b| b.up);
            MetadataResponsePartition {
                error_code: if p.leader < 0 {
                    ErrorCode::LEADER_NOT_AVAILABLE.code()
                } else {
                    0
                },
                partition_index: i as i32,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.as_slice().into(),
                isr_nodes: p.replicas.iter().copied().filter(up).collect(),
                offline_replicas: p.replicas.iter().copied().filter(|r| !up(r)).collect(),
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        name: Some(name.to_string()),
        topic_id: t.id,
        is_internal: false,
        partitions,
        topic_authorized_operations: OPS_OMITTED,
        ..Default::default()
    }
}

/// The error the test asked the next answer describing `name` to carry
/// ([`crate::FakeCluster::metadata_topic_error`]), taking one use of it.
fn take_topic_error(st: &mut State, name: &str) -> Option<MetadataResponseTopic> {
    let queue = st.topic_errors.get_mut(name)?;
    let code = crate::state::take_one(queue);
    if queue.is_empty() {
        st.topic_errors.remove(name);
    }
    Some(MetadataResponseTopic {
        error_code: code?.code(),
        name: Some(name.to_string()),
        topic_authorized_operations: OPS_OMITTED,
        ..Default::default()
    })
}

pub(crate) fn metadata(cx: &Cx<'_>, req: MetadataRequest) -> MetadataResponse {
    let mut st = cx.lock();
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && cx.version == 0,
    };
    let topics = if all {
        let names: Vec<String> = st.topics.keys().cloned().collect();
        names
            .iter()
            .map(|n| take_topic_error(&mut st, n).unwrap_or_else(|| describe_topic(&st, n)))
            .collect()
    } else {
        let mut out = Vec::new();
        for t in req.topics.unwrap_or_default() {
            let name = match t.name {
                Some(n) => n,
                None => match st.topic_name(t.topic_id) {
                    Some(n) => n,
                    None => {
                        out.push(MetadataResponseTopic {
                            error_code: ErrorCode::UNKNOWN_TOPIC_ID.code(),
                            topic_id: t.topic_id,
                            topic_authorized_operations: OPS_OMITTED,
                            ..Default::default()
                        });
                        continue;
                    }
                },
            };
            if let Some(denied) = take_topic_error(&mut st, &name) {
                out.push(denied);
                continue;
            }
            // Auto-creation (v4+ asks for it; below v4 it is implied).
            let allow = req.allow_auto_topic_creation || cx.version < 4;
            if !st.topics.contains_key(&name)
                && allow
                && st.auto_create_topics
                && crate::api::admin::valid_topic_name(&name)
            {
                let (p, r) = (st.default_partitions, st.default_replication);
                let r = r.min(st.brokers.len() as i16);
                st.create_topic(&name, p, r, None, BTreeMap::new());
            }
            out.push(describe_topic(&st, &name));
        }
        out
    };
    MetadataResponse {
        brokers: brokers(&st),
        cluster_id: Some(st.cluster_id.clone()),
        controller_id: st.live().first().copied().unwrap_or(-1),
        topics,
        cluster_authorized_operations: OPS_OMITTED,
        ..Default::default()
    }
}

/// Key types FindCoordinator knows: groups and transactional ids.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) fn find_coordinator(
    cx: &Cx<'_>,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let st = cx.lock();
    let find = |key: &str| -> Coordinator {
        if req.key_type != GROUP && req.key_type != TRANSACTION {
            return Coordinator {
                key: key.to_string(),
                node_id: -1,
                error_code: ErrorCode::INVALID_REQUEST.code(),
                ..Default::default()
            };
        }
        match st.coordinator(key) {
            Some(id) => Coordinator {
                key: key.to_string(),
                node_id: id,
                host: "127.0.0.1".into(),
                port: st.brokers.get(&id).map_or(0, |b| i32::from(b.port)),
                ..Default::default()
            },
            None => Coordinator {
                key: key.to_string(),
                node_id: -1,
                error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.code(),
                ..Default::default()
            },
        }
    };
    if cx.version >= 4 {
        FindCoordinatorResponse {
            coordinators: req.coordinator_keys.iter().map(|k| find(k)).collect(),
            ..Default::default()
        }
    } else {
        let c = find(&req.key);
        FindCoordinatorResponse {
            error_code: c.error_code,
            node_id: c.node_id,
            host: c.host,
            port: c.port,
            ..Default::default()
        }
    }
}
