//! Share groups (KIP-932) from outside: describe one, read its start
//! offsets and lag, move them, delete them. Every call goes to the group's
//! coordinator through the same loop as the consumer-group calls.

use std::collections::{BTreeMap, BTreeSet};

use super::GroupAdmin;
use super::offsets::{PartitionResults, coordinator_step};
use crate::client::Step;
use crate::error::{Error, Result};
use crate::group::TopicPartition;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use crate::protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use crate::protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use crate::protocol::messages::{
    AlterShareGroupOffsetsRequest, ApiKey, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, ShareGroupDescribeRequest,
};

/// A share group as its coordinator describes it (ShareGroupDescribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupDescription {
    /// The group.
    pub group_id: String,
    /// `Empty`, `Stable` or `Dead`.
    pub state: String,
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the current assignment.
    pub assignment_epoch: i32,
    /// The server-side assignor (`simple`).
    pub assignor: String,
    /// The members.
    pub members: Vec<ShareMemberDescription>,
}

/// One member of a share group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMemberDescription {
    /// The member id (chosen by the member).
    pub member_id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from.
    pub client_host: String,
    /// Its rack, if it gave one.
    pub rack: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// The topics it subscribes to.
    pub subscribed_topics: Vec<String>,
    /// The partitions assigned to it (shared with other members).
    pub assignment: BTreeSet<TopicPartition>,
}

/// Where a share group stands in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePartitionOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The share-partition start offset: every record before it is done
    /// (accepted, rejected, or past its delivery limit). `None` when the
    /// group has not started on the partition.
    pub start_offset: Option<i64>,
    /// How many records from the start offset on are not yet done, when
    /// the broker says (DescribeShareGroupOffsets v1).
    pub lag: Option<i64>,
}

impl GroupAdmin {
    /// Describes share group `group`. A group the coordinator does not
    /// know, or that is not a share group, fails with GROUP_ID_NOT_FOUND.
    pub async fn describe_share_group(&self, group: &str) -> Result<ShareGroupDescription> {
        let req = ShareGroupDescribeRequest {
            group_ids: vec![group.to_string()],
            ..Default::default()
        };
        let req = &req;
        self.at_coordinator(group, ApiKey::ShareGroupDescribe, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::ShareGroupDescribe, conn.broker())?;
            let resp = conn.send_version(req, version).await?;
            let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
                return Err(Error::ProtocolViolation {
                    broker: conn.broker().to_string(),
                    reason: format!("ShareGroupDescribe answer without group '{group}'"),
                });
            };
            let code = ErrorCode(g.error_code);
            if let Some(step) = coordinator_step(ApiKey::ShareGroupDescribe, code, group) {
                return Ok(step);
            }
            if !code.is_ok() {
                return Ok(Step::Stop(Error::Broker {
                    api: ApiKey::ShareGroupDescribe,
                    code,
                    context: Some(context(group, g.error_message.as_deref())),
                }));
            }
            Ok(Step::Done(ShareGroupDescription {
                group_id: g.group_id,
                state: g.group_state,
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                assignor: g.assignor_name,
                members: g
                    .members
                    .into_iter()
                    .map(|m| ShareMemberDescription {
                        member_id: m.member_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        rack: m.rack_id,
                        member_epoch: m.member_epoch,
                        subscribed_topics: m.subscribed_topic_names,
                        assignment: m
                            .assignment
                            .topic_partitions
                            .iter()
                            .flat_map(|t| {
                                t.partitions
                                    .iter()
                                    .map(|&p| TopicPartition::new(t.topic_name.clone(), p))
                            })
                            .collect(),
                    })
                    .collect(),
            }))
        })
        .await
    }

    /// The start offset and lag of share group `group` in every partition
    /// it has started on (DescribeShareGroupOffsets).
    pub async fn share_group_offsets(&self, group: &str) -> Result<Vec<SharePartitionOffset>> {
        let req = DescribeShareGroupOffsetsRequest {
            groups: vec![DescribeShareGroupOffsetsRequestGroup {
                group_id: group.to_string(),
                // Null: every topic the group has started on.
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        };
        let req = &req;
        self.at_coordinator(
            group,
            ApiKey::DescribeShareGroupOffsets,
            |conn| async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::DescribeShareGroupOffsets, conn.broker())?;
                let resp = conn.send_version(req, version).await?;
                let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
                    return Err(Error::ProtocolViolation {
                        broker: conn.broker().to_string(),
                        reason: format!("DescribeShareGroupOffsets answer without group '{group}'"),
                    });
                };
                let code = ErrorCode(g.error_code);
                if let Some(step) = coordinator_step(ApiKey::DescribeShareGroupOffsets, code, group)
                {
                    return Ok(step);
                }
                if !code.is_ok() {
                    return Ok(Step::Stop(Error::Broker {
                        api: ApiKey::DescribeShareGroupOffsets,
                        code,
                        context: Some(context(group, g.error_message.as_deref())),
                    }));
                }
                let mut out = Vec::new();
                for t in g.topics {
                    for p in t.partitions {
                        let code = ErrorCode(p.error_code);
                        if !code.is_ok() {
                            return Ok(Step::Stop(Error::Broker {
                                api: ApiKey::DescribeShareGroupOffsets,
                                code,
                                context: Some(format!("{}/{}", t.topic_name, p.partition_index)),
                            }));
                        }
                        out.push(SharePartitionOffset {
                            partition: TopicPartition::new(t.topic_name.clone(), p.partition_index),
                            start_offset: (p.start_offset >= 0).then_some(p.start_offset),
                            lag: (version >= 1 && p.lag >= 0).then_some(p.lag),
                        });
                    }
                }
                out.sort_by(|a, b| a.partition.cmp(&b.partition));
                Ok(Step::Done(out))
            },
        )
        .await
    }

    /// Moves share group `group`'s start offsets (AlterShareGroupOffsets);
    /// the group must be empty (else NON_EMPTY_GROUP). Each partition's
    /// outcome on its own; a group-wide error fails the call.
    pub async fn alter_share_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<PartitionResults> {
        if offsets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut topics: Vec<AlterShareGroupOffsetsRequestTopic> = Vec::new();
        for (tp, &offset) in offsets {
            let p = AlterShareGroupOffsetsRequestPartition {
                partition_index: tp.partition,
                start_offset: offset,
                ..Default::default()
            };
            match topics.last_mut() {
                Some(t) if t.topic_name == tp.topic => t.partitions.push(p),
                _ => topics.push(AlterShareGroupOffsetsRequestTopic {
                    topic_name: tp.topic.clone(),
                    partitions: vec![p],
                    ..Default::default()
                }),
            }
        }
        let req = AlterShareGroupOffsetsRequest {
            group_id: group.to_string(),
            topics,
            ..Default::default()
        };
        let req = &req;
        self.at_coordinator(group, ApiKey::AlterShareGroupOffsets, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::AlterShareGroupOffsets, conn.broker())?;
            let resp = conn.send_version(req, version).await?;
            let code = ErrorCode(resp.error_code);
            if let Some(step) = coordinator_step(ApiKey::AlterShareGroupOffsets, code, group) {
                return Ok(step);
            }
            if !code.is_ok() {
                return Ok(Step::Stop(Error::Broker {
                    api: ApiKey::AlterShareGroupOffsets,
                    code,
                    context: Some(context(group, resp.error_message.as_deref())),
                }));
            }
            let mut out: PartitionResults = BTreeMap::new();
            for t in resp.responses {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.topic_name.clone(), p.partition_index);
                    let code = ErrorCode(p.error_code);
                    let r = if code.is_ok() {
                        Ok(())
                    } else {
                        Err(Error::Broker {
                            api: ApiKey::AlterShareGroupOffsets,
                            code,
                            context: Some(format!("{tp}")),
                        })
                    };
                    out.insert(tp, r);
                }
            }
            for tp in offsets.keys() {
                out.entry(tp.clone()).or_insert_with(|| {
                    Err(Error::ProtocolViolation {
                        broker: conn.broker().to_string(),
                        reason: format!("AlterShareGroupOffsets answer without {tp}"),
                    })
                });
            }
            Ok(Step::Done(out))
        })
        .await
    }

    /// Deletes share group `group`'s state for `topics`
    /// (DeleteShareGroupOffsets); the group must be empty. Each topic's
    /// outcome on its own.
    pub async fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<BTreeMap<String, Result<()>>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let req = DeleteShareGroupOffsetsRequest {
            group_id: group.to_string(),
            topics: topics
                .iter()
                .map(|t| DeleteShareGroupOffsetsRequestTopic {
                    topic_name: t.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let req = &req;
        self.at_coordinator(group, ApiKey::DeleteShareGroupOffsets, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::DeleteShareGroupOffsets, conn.broker())?;
            let resp = conn.send_version(req, version).await?;
            let code = ErrorCode(resp.error_code);
            if let Some(step) = coordinator_step(ApiKey::DeleteShareGroupOffsets, code, group) {
                return Ok(step);
            }
            if !code.is_ok() {
                return Ok(Step::Stop(Error::Broker {
                    api: ApiKey::DeleteShareGroupOffsets,
                    code,
                    context: Some(context(group, resp.error_message.as_deref())),
                }));
            }
            let mut out = BTreeMap::new();
            for t in resp.responses {
                let code = ErrorCode(t.error_code);
                let r = if code.is_ok() {
                    Ok(())
                } else {
                    Err(Error::Broker {
                        api: ApiKey::DeleteShareGroupOffsets,
                        code,
                        context: Some(context(&t.topic_name, t.error_message.as_deref())),
                    })
                };
                out.insert(t.topic_name, r);
            }
            for t in topics {
                out.entry(t.clone()).or_insert_with(|| {
                    Err(Error::ProtocolViolation {
                        broker: conn.broker().to_string(),
                        reason: format!("DeleteShareGroupOffsets answer without topic {t}"),
                    })
                });
            }
            Ok(Step::Done(out))
        })
        .await
    }
}

fn context(what: &str, message: Option<&str>) -> String {
    format!(
        "'{what}'{}",
        message.map(|m| format!(": {m}")).unwrap_or_default()
    )
}
