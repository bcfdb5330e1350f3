//! OffsetCommit and OffsetFetch on the wire: building them for the
//! version the coordinator speaks, and reading the answers per partition.
//!
//! From v10 both name topics by id only. A request carries the ids when
//! the client's metadata knows every topic in it (as Java's consumer
//! does; otherwise v9, by name), and its answer is read back by the ids
//! it sent. A coordinator that answers UNKNOWN_TOPIC_ID or
//! INCONSISTENT_TOPIC_ID for an id (its metadata lags behind ours, or the
//! topic was deleted and made again) gets the same request once more by
//! name, at v9, whose answer is the one that counts.

use crate::determinism::HashMap;
use std::collections::BTreeMap;

use super::{Generation, OffsetAndMetadata};
use crate::client::{ClusterMetadata, Step, coordinator_error};
use crate::error::{Error, Result};
use crate::group::TopicPartition;
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use crate::protocol::messages::{ApiKey, OffsetCommitRequest, OffsetFetchRequest};
use crate::protocol::primitives::Uuid;

/// The last version of OffsetCommit and OffsetFetch that names topics;
/// the next names them by id.
const LAST_BY_NAME: i16 = 9;
/// The version that names topics by id.
const BY_ID: i16 = 10;

/// An OffsetCommit for `offsets`, grouped by topic, with the topic ids
/// `meta` knows when it knows them all (v10).
pub(in crate::group) fn commit_request(
    group: &str,
    generation: &Generation,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    meta: &ClusterMetadata,
) -> OffsetCommitRequest {
    let ids = meta
        .topic_ids(offsets.keys().map(|tp| tp.topic.as_str()))
        .unwrap_or_default();
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, o) in offsets {
        let partition = OffsetCommitRequestPartition {
            partition_index: tp.partition,
            committed_offset: o.offset,
            committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
            committed_metadata: Some(o.metadata.clone().unwrap_or_default()),
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.name == tp.topic => t.partitions.push(partition),
            _ => topics.push(OffsetCommitRequestTopic {
                name: tp.topic.clone(),
                topic_id: ids.get(&tp.topic).copied().unwrap_or(Uuid::ZERO),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: generation.id,
        member_id: generation.member_id.clone(),
        group_instance_id: generation.instance_id.clone(),
        topics,
        ..Default::default()
    }
}

/// Sends an OffsetCommit at the highest version both sides speak (v10
/// when the request carries every topic's id) and returns each
/// partition's error code.
pub(in crate::group) async fn send_commit(
    conn: &Connection,
    mut req: OffsetCommitRequest,
) -> Result<Vec<(TopicPartition, ErrorCode)>> {
    let by_id = req.topics.iter().all(|t| t.topic_id != Uuid::ZERO);
    let max = if by_id { BY_ID } else { LAST_BY_NAME };
    let version = conn
        .api_versions()
        .version_up_to(ApiKey::OffsetCommit, conn.broker(), max)?;
    let names: HashMap<Uuid, String> = req
        .topics
        .iter()
        .map(|t| (t.topic_id, t.name.clone()))
        .collect();
    let resp = conn.send_version(&req, version).await?;
    if version >= BY_ID
        && resp.topics.iter().any(|t| {
            t.partitions
                .iter()
                .any(|p| ErrorCode(p.error_code).refuses_topic_id())
        })
    {
        tracing::debug!(broker = %conn.broker(), group = %req.group_id,
            "OffsetCommit by topic id refused an id; committing by name");
        for t in &mut req.topics {
            t.topic_id = Uuid::ZERO;
        }
        let version =
            conn.api_versions()
                .version_up_to(ApiKey::OffsetCommit, conn.broker(), LAST_BY_NAME)?;
        let resp = conn.send_version(&req, version).await?;
        return Ok(commit_answers(resp, None));
    }
    Ok(commit_answers(resp, (version >= BY_ID).then_some(&names)))
}

/// Each partition's code in an OffsetCommit answer; `names` maps the ids
/// of a v10 answer back to the names asked for (an id the request did not
/// carry is left out, and the caller sees its partitions as unanswered).
fn commit_answers(
    resp: crate::protocol::messages::OffsetCommitResponse,
    names: Option<&HashMap<Uuid, String>>,
) -> Vec<(TopicPartition, ErrorCode)> {
    let mut out = Vec::new();
    for t in resp.topics {
        let name = match names {
            Some(names) => match names.get(&t.topic_id) {
                Some(n) => n.clone(),
                None => continue,
            },
            None => t.name,
        };
        for p in t.partitions {
            out.push((
                TopicPartition::new(name.clone(), p.partition_index),
                ErrorCode(p.error_code),
            ));
        }
    }
    out
}

/// What the coordinator's answer means for the commit: partitions that
/// succeeded leave `left`; the worst error decides the step (retry the
/// rest, look the coordinator up again, or stop with the error).
pub(super) fn commit_step(
    group: &str,
    left: &mut BTreeMap<TopicPartition, OffsetAndMetadata>,
    answers: Vec<(TopicPartition, ErrorCode)>,
) -> Step<(), Error> {
    let mut failed: Vec<(TopicPartition, ErrorCode)> = Vec::new();
    for (tp, code) in answers {
        if code.is_ok() {
            left.remove(&tp);
        } else if left.contains_key(&tp) {
            failed.push((tp, code));
        }
    }
    if failed.is_empty() {
        if left.is_empty() {
            return Step::Done(());
        }
        // A broker that leaves partitions out of its answer broke the
        // protocol; asking again would loop.
        return Step::Stop(Error::ProtocolViolation {
            broker: format!("the coordinator of group '{group}'"),
            reason: format!(
                "OffsetCommit answer leaves out {}",
                names(left.keys().cloned())
            ),
        });
    }
    let context = |code: ErrorCode| {
        let of: Vec<_> = failed
            .iter()
            .filter(|(_, c)| *c == code)
            .map(|(tp, _)| tp.clone())
            .collect();
        let why = if super::needs_rejoin(code) {
            "; the member must rejoin the group, and these partitions may be owned by another member now"
        } else {
            ""
        };
        Some(format!("group '{group}', {}{why}", names(of.into_iter())))
    };
    // A non-retriable code anywhere stops the commit (the partitions that
    // succeeded stay committed); otherwise the worst retriable one decides.
    if let Some((_, code)) = failed
        .iter()
        .find(|(_, c)| coordinator_error::<(), Error>(ApiKey::OffsetCommit, *c, || None).is_none())
    {
        return Step::Stop(Error::Broker {
            api: ApiKey::OffsetCommit,
            code: *code,
            context: context(*code),
        });
    }
    let rediscover = failed.iter().find(|(_, c)| {
        matches!(
            coordinator_error::<(), Error>(ApiKey::OffsetCommit, *c, || None),
            Some(Step::Rediscover(_))
        )
    });
    let (_, code) = rediscover.unwrap_or(&failed[0]);
    coordinator_error(ApiKey::OffsetCommit, *code, || context(*code)).unwrap_or(Step::Stop(
        Error::Broker {
            api: ApiKey::OffsetCommit,
            code: *code,
            context: context(*code),
        },
    ))
}

fn names(tps: impl Iterator<Item = TopicPartition>) -> String {
    let all: Vec<String> = tps.map(|tp| tp.to_string()).collect();
    all.join(", ")
}

/// One OffsetFetch for `partitions` (v8+ in the batched form); `None`
/// asks for every partition the group has offsets for (null topics, v2+).
/// With `stable`, asks for stable offsets where the broker can (v7+): a
/// transactional commit still open is answered UNSTABLE_OFFSET_COMMIT,
/// which retries. Named partitions whose topic ids `meta` all knows are
/// asked for by id (v10).
pub(in crate::group) async fn fetch_offsets(
    conn: &Connection,
    group: &str,
    partitions: Option<&[TopicPartition]>,
    stable: bool,
    meta: &ClusterMetadata,
) -> Result<Step<BTreeMap<TopicPartition, OffsetAndMetadata>, Error>> {
    let by_topic = partitions.map(|partitions| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
    });
    let ids = by_topic
        .as_ref()
        .and_then(|by_topic| meta.topic_ids(by_topic.keys().copied()));
    let max = if ids.is_some() { BY_ID } else { LAST_BY_NAME };
    let version = conn
        .api_versions()
        .version_up_to(ApiKey::OffsetFetch, conn.broker(), max)?;
    if partitions.is_none() && version < 2 {
        return Err(Error::UnsupportedVersion {
            broker: conn.broker().to_string(),
            api: ApiKey::OffsetFetch,
            broker_versions: conn.api_versions().broker_range(ApiKey::OffsetFetch),
            ours: (2, crate::net::client_max(ApiKey::OffsetFetch)),
        });
    }
    let ids = ids.filter(|_| version >= BY_ID);
    let mut fetched = fetch_once(
        conn,
        group,
        by_topic.as_ref(),
        stable,
        version,
        ids.as_ref(),
    )
    .await?;
    if ids.is_some()
        && fetched
            .rows
            .iter()
            .any(|r| ErrorCode(r.code).refuses_topic_id())
    {
        tracing::debug!(broker = %conn.broker(), %group,
            "OffsetFetch by topic id refused an id; asking by name");
        let version =
            conn.api_versions()
                .version_up_to(ApiKey::OffsetFetch, conn.broker(), LAST_BY_NAME)?;
        fetched = fetch_once(conn, group, by_topic.as_ref(), stable, version, None).await?;
    }
    let fail = |code: ErrorCode, what: String| {
        coordinator_error(ApiKey::OffsetFetch, code, || Some(what.clone())).unwrap_or(Step::Stop(
            Error::Broker {
                api: ApiKey::OffsetFetch,
                code,
                context: Some(what),
            },
        ))
    };
    let group_code = ErrorCode(fetched.group_code);
    if !group_code.is_ok() {
        return Ok(fail(group_code, format!("group '{group}'")));
    }
    let mut found = BTreeMap::new();
    for row in fetched.rows {
        let code = ErrorCode(row.code);
        let tp = TopicPartition::new(row.topic, row.partition);
        if code == ErrorCode::UNSTABLE_OFFSET_COMMIT {
            // A transactional commit is still open: ask again shortly.
            return Ok(Step::Retry(Error::Broker {
                api: ApiKey::OffsetFetch,
                code,
                context: Some(format!("group '{group}', {tp}")),
            }));
        }
        if !code.is_ok() {
            return Ok(fail(code, format!("group '{group}', {tp}")));
        }
        if row.offset >= 0 {
            found.insert(
                tp,
                OffsetAndMetadata {
                    offset: row.offset,
                    leader_epoch: (row.epoch >= 0).then_some(row.epoch),
                    metadata: row.metadata.filter(|m| !m.is_empty()),
                },
            );
        }
    }
    Ok(Step::Done(found))
}

/// One partition of an OffsetFetch answer.
struct FetchedRow {
    topic: String,
    partition: i32,
    offset: i64,
    epoch: i32,
    metadata: Option<String>,
    code: i16,
}

/// An OffsetFetch answer, flattened.
struct Fetched {
    group_code: i16,
    rows: Vec<FetchedRow>,
}

/// One OffsetFetch round trip at `version`; with `ids` (v10), topics are
/// asked for by id and the answer's ids are read back to names.
async fn fetch_once(
    conn: &Connection,
    group: &str,
    by_topic: Option<&BTreeMap<&str, Vec<i32>>>,
    stable: bool,
    version: i16,
    ids: Option<&std::collections::HashMap<String, Uuid>>,
) -> Result<Fetched> {
    let id_of = |t: &str| {
        ids.and_then(|ids| ids.get(t))
            .copied()
            .unwrap_or(Uuid::ZERO)
    };
    let req = if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_string(),
                // v9+ (KIP-848) check the member epoch when given; a
                // classic member or none sends null and -1.
                member_id: None,
                member_epoch: -1,
                topics: by_topic.map(|by_topic| {
                    by_topic
                        .iter()
                        .map(|(t, ps)| OffsetFetchRequestTopics {
                            name: t.to_string(),
                            topic_id: id_of(t),
                            partition_indexes: ps.as_slice().into(),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            }],
            require_stable: stable,
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.to_string(),
            topics: by_topic.map(|by_topic| {
                by_topic
                    .iter()
                    .map(|(t, ps)| OffsetFetchRequestTopic {
                        name: t.to_string(),
                        partition_indexes: ps.as_slice().into(),
                        ..Default::default()
                    })
                    .collect()
            }),
            require_stable: stable && version >= 7,
            ..Default::default()
        }
    };
    let resp = conn.send_version(&req, version).await?;
    let names: Option<HashMap<Uuid, &str>> =
        ids.map(|ids| ids.iter().map(|(n, id)| (*id, n.as_str())).collect());
    let mut rows = Vec::new();
    if version < 8 {
        for t in resp.topics {
            for p in t.partitions {
                rows.push(FetchedRow {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    epoch: p.committed_leader_epoch,
                    metadata: p.metadata,
                    code: p.error_code,
                });
            }
        }
        return Ok(Fetched {
            group_code: resp.error_code,
            rows,
        });
    }
    let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
        return Err(Error::ProtocolViolation {
            broker: conn.broker().to_string(),
            reason: format!("OffsetFetch answer has no entry for group {group}"),
        });
    };
    for t in g.topics {
        let topic = match &names {
            Some(names) => match names.get(&t.topic_id) {
                Some(n) => n.to_string(),
                None => {
                    return Err(Error::ProtocolViolation {
                        broker: conn.broker().to_string(),
                        reason: format!(
                            "OffsetFetch v{version} answer names topic id {} that group {group}'s request did not",
                            t.topic_id
                        ),
                    });
                }
            },
            None => t.name,
        };
        for p in t.partitions {
            rows.push(FetchedRow {
                topic: topic.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                epoch: p.committed_leader_epoch,
                metadata: p.metadata,
                code: p.error_code,
            });
        }
    }
    Ok(Fetched {
        group_code: g.error_code,
        rows,
    })
}
