//! The admin basics: CreateTopics, DeleteTopics, CreatePartitions,
//! DeleteRecords, DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs (topic configs; broker configs are read-only
//! defaults).

use std::collections::BTreeMap;

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use klamm::protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use klamm::protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use klamm::protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use klamm::protocol::messages::delete_topics_response::DeletableTopicResult;
use klamm::protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use klamm::protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use klamm::protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use klamm::protocol::primitives::Uuid;

use super::Cx;
use crate::state::State;

/// Config resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Config sources.
const DYNAMIC_TOPIC: i8 = 1;
const DEFAULT: i8 = 5;

/// Topic configs and their defaults, as Kafka 4 has them.
const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
];

/// Whether `name` is a legal topic name: 1 to 249 of `[a-zA-Z0-9._-]`,
/// not `.` or `..`.
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn controller_check(st: &State) -> Result<(), ErrorCode> {
    if st.live().is_empty() {
        Err(ErrorCode::NOT_CONTROLLER)
    } else {
        Ok(())
    }
}

pub(crate) fn create_topics(cx: &Cx<'_>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut st = cx.lock();
    let mut topics = Vec::new();
    let mut created = false;
    for t in req.topics {
        let mut r = CreatableTopicResult {
            name: t.name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        };
        let partitions = if t.num_partitions == -1 {
            st.default_partitions
        } else {
            t.num_partitions
        };
        let replication = if t.replication_factor == -1 {
            st.default_replication.min(st.brokers.len() as i16)
        } else {
            t.replication_factor
        };
        let assignments = (!t.assignments.is_empty()).then(|| {
            let mut a = t.assignments.clone();
            a.sort_by_key(|x| x.partition_index);
            a.into_iter()
                .map(|x| x.broker_ids.into_vec())
                .collect::<Vec<_>>()
        });
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.value.clone()?)))
            .collect();
        let check = (|| {
            controller_check(&st).map_err(|c| (c, "no controller"))?;
            if !valid_topic_name(&t.name) {
                return Err((ErrorCode::INVALID_TOPIC_EXCEPTION, "invalid topic name"));
            }
            if st.topics.contains_key(&t.name) {
                return Err((ErrorCode::TOPIC_ALREADY_EXISTS, "the topic exists"));
            }
            if assignments.is_none() && partitions <= 0 {
                return Err((ErrorCode::INVALID_PARTITIONS, "partitions must be positive"));
            }
            if assignments.is_none() && replication <= 0 {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    "replication must be positive",
                ));
            }
            if assignments.is_none() && replication as usize > st.brokers.len() {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    "replication factor larger than the brokers",
                ));
            }
            if let Some(a) = &assignments
                && a.iter().flatten().any(|b| !st.brokers.contains_key(b))
            {
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, "unknown broker"));
            }
            if configs
                .keys()
                .any(|k| !TOPIC_DEFAULTS.iter().any(|(d, _)| d == k))
            {
                return Err((ErrorCode::INVALID_CONFIG, "unknown topic config"));
            }
            Ok(())
        })()
        .map_err(|(code, msg)| (code, msg.to_string()));
        match check {
            Err((code, msg)) => {
                r.error_code = code.code();
                r.error_message = Some(msg);
                r.topic_config_error_code = code.code();
            }
            Ok(()) => {
                let n = assignments.as_ref().map_or(partitions, |a| a.len() as i32);
                let rf = assignments
                    .as_ref()
                    .and_then(|a| a.first())
                    .map_or(replication, |x| x.len() as i16);
                r.num_partitions = n;
                r.replication_factor = rf;
                r.configs = Some(
                    TOPIC_DEFAULTS
                        .iter()
                        .map(|(k, d)| CreatableTopicConfigs {
                            name: (*k).to_string(),
                            value: Some(configs.get(*k).cloned().unwrap_or_else(|| (*d).into())),
                            config_source: if configs.contains_key(*k) {
                                DYNAMIC_TOPIC
                            } else {
                                DEFAULT
                            },
                            ..Default::default()
                        })
                        .collect(),
                );
                if !req.validate_only {
                    r.topic_id = st.create_topic(&t.name, n, rf, assignments, configs);
                    created = true;
                }
            }
        }
        topics.push(r);
    }
    drop(st);
    if created {
        cx.shared.bump();
    }
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

pub(crate) fn delete_topics(cx: &Cx<'_>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut st = cx.lock();
    let mut named: Vec<(Option<String>, Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n), Uuid::ZERO))
        .collect();
    named.extend(req.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let responses = named
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| st.topic_name(id));
            let code = match &name {
                _ if controller_check(&st).is_err() => ErrorCode::NOT_CONTROLLER,
                Some(n) if st.topics.contains_key(n) => {
                    st.topics.remove(n);
                    // Kafka's group coordinator drops the offsets committed
                    // for a deleted topic's partitions.
                    for g in st.groups.values_mut() {
                        g.offsets.retain(|(t, _), _| t != n);
                    }
                    ErrorCode::NONE
                }
                _ if id != Uuid::ZERO => ErrorCode::UNKNOWN_TOPIC_ID,
                _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            };
            DeletableTopicResult {
                name,
                topic_id: id,
                error_code: code.code(),
                ..Default::default()
            }
        })
        .collect();
    drop(st);
    cx.shared.bump();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

pub(crate) fn create_partitions(
    cx: &Cx<'_>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut st = cx.lock();
    let ids: Vec<i32> = st.brokers.keys().copied().collect();
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let check = (|| {
                controller_check(&st)?;
                let topic = st
                    .topics
                    .get(&t.name)
                    .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
                let have = topic.partitions.len() as i32;
                if t.count <= have {
                    return Err(ErrorCode::INVALID_PARTITIONS);
                }
                let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
                let added = (t.count - have) as usize;
                let assignments = match &t.assignments {
                    Some(a) if a.len() != added => {
                        return Err(ErrorCode::INVALID_REPLICA_ASSIGNMENT);
                    }
                    Some(a) => a.iter().map(|x| x.broker_ids.to_vec()).collect(),
                    None => (0..added)
                        .map(|i| {
                            (0..rf)
                                .map(|r| ids[(have as usize + i + r) % ids.len()])
                                .collect()
                        })
                        .collect::<Vec<Vec<i32>>>(),
                };
                if assignments.iter().flatten().any(|b| !ids.contains(b)) {
                    return Err(ErrorCode::INVALID_REPLICA_ASSIGNMENT);
                }
                Ok(assignments)
            })();
            let code = match check {
                Err(code) => code,
                Ok(_) if req.validate_only => ErrorCode::NONE,
                Ok(assignments) => {
                    let parts: Vec<_> = assignments
                        .into_iter()
                        .map(|r| st.new_partition(r))
                        .collect();
                    if let Some(topic) = st.topics.get_mut(&t.name) {
                        topic.partitions.extend(parts);
                    }
                    ErrorCode::NONE
                }
            };
            CreatePartitionsTopicResult {
                name: t.name,
                error_code: code.code(),
                ..Default::default()
            }
        })
        .collect();
    drop(st);
    cx.shared.bump();
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}

pub(crate) fn delete_records(cx: &Cx<'_>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut st = cx.lock();
    let topics = req
        .topics
        .into_iter()
        .map(|t| DeleteRecordsTopicResult {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let r = match st.partition_mut(&t.name, p.partition_index) {
                        None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                        Some(part) if part.leader != cx.broker => {
                            Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                        }
                        Some(part) => {
                            let to = if p.offset == -1 {
                                part.log.high_watermark()
                            } else {
                                p.offset
                            };
                            part.log.delete_before(to)
                        }
                    };
                    DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: *r.as_ref().unwrap_or(&-1),
                        error_code: r.err().map_or(0, ErrorCode::code),
                        ..Default::default()
                    }
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    drop(st);
    cx.shared.bump();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

fn describe_one(
    st: &State,
    version: i16,
    kind: i8,
    name: &str,
    keys: Option<&[String]>,
) -> Result<Vec<DescribeConfigsResourceResult>, ErrorCode> {
    let wanted = |k: &str| keys.is_none_or(|ks| ks.iter().any(|x| x == k));
    match kind {
        TOPIC => {
            let t = st
                .topics
                .get(name)
                .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
            Ok(TOPIC_DEFAULTS
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, d)| {
                    let set = t.configs.get(*k);
                    DescribeConfigsResourceResult {
                        name: (*k).to_string(),
                        value: Some(set.cloned().unwrap_or_else(|| (*d).to_string())),
                        // IsDefault is a version 0 field (later
                        // versions tell by the source).
                        is_default: version == 0 && set.is_none(),
                        config_source: if set.is_some() {
                            DYNAMIC_TOPIC
                        } else {
                            DEFAULT
                        },
                        ..Default::default()
                    }
                })
                .collect())
        }
        BROKER => {
            let id: i32 = name.parse().map_err(|_| ErrorCode::INVALID_REQUEST)?;
            if !st.brokers.contains_key(&id) {
                return Err(ErrorCode::INVALID_REQUEST);
            }
            let all = [
                (
                    "auto.create.topics.enable",
                    st.auto_create_topics.to_string(),
                ),
                ("message.max.bytes", st.max_message_bytes.to_string()),
                ("num.partitions", st.default_partitions.to_string()),
                (
                    "default.replication.factor",
                    st.default_replication.to_string(),
                ),
            ];
            Ok(all
                .into_iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| DescribeConfigsResourceResult {
                    name: k.to_string(),
                    value: Some(v),
                    read_only: true,
                    is_default: version == 0,
                    config_source: DEFAULT,
                    ..Default::default()
                })
                .collect())
        }
        _ => Err(ErrorCode::INVALID_REQUEST),
    }
}

pub(crate) fn describe_configs(
    cx: &Cx<'_>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let st = cx.lock();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let found = describe_one(
                &st,
                cx.version,
                r.resource_type,
                &r.resource_name,
                r.configuration_keys.as_deref(),
            );
            DescribeConfigsResult {
                error_code: found.as_ref().err().map_or(0, |c| c.code()),
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                configs: found.unwrap_or_default(),
                ..Default::default()
            }
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

/// Config operations of IncrementalAlterConfigs.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// Applies `changes` (name, operation, value) to topic `name`'s configs.
fn alter_topic(
    st: &mut State,
    kind: i8,
    name: &str,
    changes: &[Change],
    replace: bool,
    validate_only: bool,
) -> Result<(), ErrorCode> {
    if kind == BROKER {
        return Err(ErrorCode::INVALID_REQUEST);
    }
    if kind != TOPIC {
        return Err(ErrorCode::INVALID_REQUEST);
    }
    let topic = st
        .topics
        .get_mut(name)
        .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
    let mut next = if replace {
        BTreeMap::new()
    } else {
        topic.configs.clone()
    };
    for (k, op, v) in changes {
        if !TOPIC_DEFAULTS.iter().any(|(d, _)| d == k) {
            return Err(ErrorCode::INVALID_CONFIG);
        }
        match (*op, v) {
            (SET, Some(v)) => {
                next.insert(k.clone(), v.clone());
            }
            (SET, None) | (DELETE, _) => {
                next.remove(k);
            }
            _ => return Err(ErrorCode::INVALID_CONFIG),
        }
    }
    if !validate_only {
        topic.configs = next;
    }
    Ok(())
}

/// One config change: name, operation (SET or DELETE), value.
type Change = (String, i8, Option<String>);

/// Applies each resource's changes; (type, name, outcome) for each.
fn alter_each(
    st: &mut State,
    resources: Vec<(i8, String, Vec<Change>)>,
    replace: bool,
    validate_only: bool,
) -> Vec<(i8, String, Result<(), ErrorCode>)> {
    resources
        .into_iter()
        .map(|(kind, name, changes)| {
            let r = alter_topic(st, kind, &name, &changes, replace, validate_only);
            (kind, name, r)
        })
        .collect()
}

pub(crate) fn alter_configs(cx: &Cx<'_>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let resources = req
        .resources
        .into_iter()
        .map(|r| {
            let changes = r
                .configs
                .into_iter()
                .map(|c| (c.name, SET, c.value))
                .collect();
            (r.resource_type, r.resource_name, changes)
        })
        .collect();
    let done = alter_each(&mut cx.lock(), resources, true, req.validate_only);
    AlterConfigsResponse {
        responses: done
            .into_iter()
            .map(|(kind, name, r)| AlterConfigsResourceResponse {
                error_code: r.err().map_or(0, ErrorCode::code),
                resource_type: kind,
                resource_name: name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn incremental_alter_configs(
    cx: &Cx<'_>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = req
        .resources
        .into_iter()
        .map(|r| {
            let changes = r
                .configs
                .into_iter()
                .map(|c| (c.name, c.config_operation, c.value))
                .collect();
            (r.resource_type, r.resource_name, changes)
        })
        .collect();
    let done = alter_each(&mut cx.lock(), resources, false, req.validate_only);
    IncrementalAlterConfigsResponse {
        responses: done
            .into_iter()
            .map(|(kind, name, r)| IncrementalResult {
                error_code: r.err().map_or(0, ErrorCode::code),
                resource_type: kind,
                resource_name: name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
