//! OffsetCommit and OffsetFetch on the wire: building them for the
//! version the coordinator speaks, and reading the answers per partition.

use std::collections::BTreeMap;

use super::{Generation, OffsetAndMetadata};
use crate::client::{Step, coordinator_error};
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

/// An OffsetCommit for `offsets`, grouped by topic.
pub(in crate::group) fn commit_request(
    group: &str,
    generation: &Generation,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> OffsetCommitRequest {
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

/// Sends an OffsetCommit at the highest version both sides speak and
/// returns each partition's error code.
pub(in crate::group) async fn send_commit(
    conn: &Connection,
    req: OffsetCommitRequest,
) -> Result<Vec<(TopicPartition, ErrorCode)>> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::OffsetCommit, conn.broker())?;
    let resp = conn.send_version(&req, version).await?;
    Ok(resp
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.name;
            t.partitions.into_iter().map(move |p| {
                (
                    TopicPartition::new(name.clone(), p.partition_index),
                    ErrorCode(p.error_code),
                )
            })
        })
        .collect())
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
/// which retries.
pub(in crate::group) async fn fetch_offsets(
    conn: &Connection,
    group: &str,
    partitions: Option<&[TopicPartition]>,
    stable: bool,
) -> Result<Step<BTreeMap<TopicPartition, OffsetAndMetadata>, Error>> {
    let version = conn
        .api_versions()
        .version_for(ApiKey::OffsetFetch, conn.broker())?;
    if partitions.is_none() && version < 2 {
        return Err(Error::UnsupportedVersion {
            broker: conn.broker().to_string(),
            api: ApiKey::OffsetFetch,
            broker_versions: conn.api_versions().broker_range(ApiKey::OffsetFetch),
            ours: (2, crate::net::client_max(ApiKey::OffsetFetch)),
        });
    }
    let by_topic = partitions.map(|partitions| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
    });
    let req = if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_string(),
                // v9+ (KIP-848) check the member epoch when given; a
                // classic member or none sends null and -1.
                member_id: None,
                member_epoch: -1,
                topics: by_topic.as_ref().map(|by_topic| {
                    by_topic
                        .iter()
                        .map(|(t, ps)| OffsetFetchRequestTopics {
                            name: t.to_string(),
                            partition_indexes: ps.clone(),
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
            topics: by_topic.as_ref().map(|by_topic| {
                by_topic
                    .iter()
                    .map(|(t, ps)| OffsetFetchRequestTopic {
                        name: t.to_string(),
                        partition_indexes: ps.clone(),
                        ..Default::default()
                    })
                    .collect()
            }),
            require_stable: stable && version >= 7,
            ..Default::default()
        }
    };
    let resp = conn.send_version(&req, version).await?;
    // (topic, partition, offset, epoch, metadata, code)
    let mut rows: Vec<(String, i32, i64, i32, Option<String>, i16)> = Vec::new();
    let group_code = if version >= 8 {
        let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
            return Err(Error::ProtocolViolation {
                broker: conn.broker().to_string(),
                reason: format!("OffsetFetch answer has no entry for group {group}"),
            });
        };
        for t in g.topics {
            for p in t.partitions {
                rows.push((
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata,
                    p.error_code,
                ));
            }
        }
        g.error_code
    } else {
        for t in resp.topics {
            for p in t.partitions {
                rows.push((
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata,
                    p.error_code,
                ));
            }
        }
        resp.error_code
    };
    let fail = |code: ErrorCode, what: String| {
        coordinator_error(ApiKey::OffsetFetch, code, || Some(what.clone())).unwrap_or(Step::Stop(
            Error::Broker {
                api: ApiKey::OffsetFetch,
                code,
                context: Some(what),
            },
        ))
    };
    let group_code = ErrorCode(group_code);
    if !group_code.is_ok() {
        return Ok(fail(group_code, format!("group '{group}'")));
    }
    let mut found = BTreeMap::new();
    for (topic, partition, offset, epoch, metadata, code) in rows {
        let code = ErrorCode(code);
        let tp = TopicPartition::new(topic, partition);
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
        if offset >= 0 {
            found.insert(
                tp,
                OffsetAndMetadata {
                    offset,
                    leader_epoch: (epoch >= 0).then_some(epoch),
                    metadata: metadata.filter(|m| !m.is_empty()),
                },
            );
        }
    }
    Ok(Step::Done(found))
}
