//! Error answers for injected faults: the response a request would get if
//! every item of it failed with one code.

use bytes::BytesMut;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult;
use klamm::protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use klamm::protocol::messages::create_topics_response::CreatableTopicResult;
use klamm::protocol::messages::delete_topics_response::DeletableTopicResult;
use klamm::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use klamm::protocol::messages::find_coordinator_response::Coordinator;
use klamm::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use klamm::protocol::messages::metadata_response::MetadataResponseTopic;
use klamm::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use klamm::protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use klamm::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use klamm::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use klamm::protocol::messages::*;

use super::{Reply, frame};

/// Whether an error answer can be shaped for `key`.
pub(crate) fn can_fail(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::Metadata
            | ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::InitProducerId
            | ApiKey::AddPartitionsToTxn
            | ApiKey::AddOffsetsToTxn
            | ApiKey::EndTxn
            | ApiKey::TxnOffsetCommit
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
    )
}

/// Whether `code` is about a Fetch request's session rather than its
/// partitions.
fn is_session_error(code: ErrorCode) -> bool {
    code == ErrorCode::FETCH_SESSION_ID_NOT_FOUND
        || code == ErrorCode::INVALID_FETCH_SESSION_EPOCH
        || code == ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR
}

/// The answer to `body` failing with `code`, encoded; `None` where no
/// error answer can be shaped.
pub(crate) fn error_reply(
    body: &RequestBody,
    code: ErrorCode,
    id: i32,
    v: i16,
) -> Option<BytesMut> {
    let c = code.code();
    let key = body.api_key();
    let reply = match body {
        RequestBody::Produce(r) => frame(
            key,
            id,
            &ProduceResponse {
                responses: r
                    .topic_data
                    .iter()
                    .map(|t| TopicProduceResponse {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        partition_responses: t
                            .partition_data
                            .iter()
                            .map(|p| PartitionProduceResponse {
                                index: p.index,
                                error_code: c,
                                base_offset: -1,
                                log_append_time_ms: -1,
                                log_start_offset: -1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        // A fetch session error is the whole answer's, without partitions,
        // as Kafka's fetch session cache answers.
        RequestBody::Fetch(_) if is_session_error(code) => frame(
            key,
            id,
            &FetchResponse {
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::Fetch(r) => frame(
            key,
            id,
            &FetchResponse {
                responses: r
                    .topics
                    .iter()
                    .map(|t| FetchableTopicResponse {
                        topic: t.topic.clone(),
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| PartitionData {
                                partition_index: p.partition,
                                error_code: c,
                                high_watermark: -1,
                                last_stable_offset: -1,
                                log_start_offset: -1,
                                preferred_read_replica: -1,
                                records: Some(bytes::Bytes::new()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::ListOffsets(r) => frame(
            key,
            id,
            &ListOffsetsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| ListOffsetsTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: c,
                                timestamp: -1,
                                offset: -1,
                                leader_epoch: -1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::Metadata(r) => frame(
            key,
            id,
            &MetadataResponse {
                controller_id: -1,
                topics: r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| MetadataResponseTopic {
                        error_code: c,
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        topic_authorized_operations: i32::MIN,
                        ..Default::default()
                    })
                    .collect(),
                cluster_authorized_operations: i32::MIN,
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::FindCoordinator(r) => frame(
            key,
            id,
            &if v >= 4 {
                FindCoordinatorResponse {
                    coordinators: r
                        .coordinator_keys
                        .iter()
                        .map(|k| Coordinator {
                            key: k.clone(),
                            node_id: -1,
                            error_code: c,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            } else {
                FindCoordinatorResponse {
                    error_code: c,
                    node_id: -1,
                    ..Default::default()
                }
            },
            v,
        ),
        RequestBody::JoinGroup(r) => frame(
            key,
            id,
            &JoinGroupResponse {
                error_code: c,
                generation_id: -1,
                member_id: r.member_id.clone(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::SyncGroup(_) => frame(
            key,
            id,
            &SyncGroupResponse {
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::Heartbeat(_) => frame(
            key,
            id,
            &HeartbeatResponse {
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::LeaveGroup(_) => frame(
            key,
            id,
            &LeaveGroupResponse {
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::OffsetCommit(r) => frame(
            key,
            id,
            &OffsetCommitResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| OffsetCommitResponseTopic {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| OffsetCommitResponsePartition {
                                partition_index: p.partition_index,
                                error_code: c,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::OffsetFetch(r) => frame(
            key,
            id,
            &OffsetFetchResponse {
                error_code: c,
                groups: r
                    .groups
                    .iter()
                    .map(|g| OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        error_code: c,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::InitProducerId(_) => frame(
            key,
            id,
            &InitProducerIdResponse {
                error_code: c,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            v,
        ),
        RequestBody::AddPartitionsToTxn(r) => frame(
            key,
            id,
            &AddPartitionsToTxnResponse {
                error_code: c,
                results_by_transaction: r
                    .transactions
                    .iter()
                    .map(|t| AddPartitionsToTxnResult {
                        transactional_id: t.transactional_id.clone(),
                        topic_results: super::txn::topic_results(&t.topics, |_, _| c),
                        ..Default::default()
                    })
                    .collect(),
                ..super::txn::add_partitions_answer(&r.v3_and_below_topics, |_, _| c)
            },
            v,
        ),
        RequestBody::AddOffsetsToTxn(_) => frame(
            key,
            id,
            &AddOffsetsToTxnResponse {
                error_code: c,
                ..Default::default()
            },
            v,
        ),
        RequestBody::EndTxn(_) => frame(
            key,
            id,
            &EndTxnResponse {
                error_code: c,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
            v,
        ),
        RequestBody::TxnOffsetCommit(r) => frame(
            key,
            id,
            &TxnOffsetCommitResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| TxnOffsetCommitResponseTopic {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| TxnOffsetCommitResponsePartition {
                                partition_index: p.partition_index,
                                error_code: c,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::CreateTopics(r) => frame(
            key,
            id,
            &CreateTopicsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: c,
                        num_partitions: -1,
                        replication_factor: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::DeleteTopics(r) => frame(
            key,
            id,
            &DeleteTopicsResponse {
                responses: r
                    .topic_names
                    .iter()
                    .map(|n| DeletableTopicResult {
                        name: Some(n.clone()),
                        error_code: c,
                        ..Default::default()
                    })
                    .chain(r.topics.iter().map(|t| DeletableTopicResult {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        error_code: c,
                        ..Default::default()
                    }))
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        RequestBody::CreatePartitions(r) => frame(
            key,
            id,
            &CreatePartitionsResponse {
                results: r
                    .topics
                    .iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: c,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            v,
        ),
        _ => return None,
    };
    match reply {
        Reply::Frame(b) => Some(b),
        _ => None,
    }
}
