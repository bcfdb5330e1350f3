//! Versions new in Apache Kafka 4.4 that klamm's clients send or read:
//! Produce v13 and Fetch v18 (topics by id), ApiVersions v5, and the share
//! group APIs. Every byte below is laid out by hand from
//! `protocol-specs/` (all these versions are flexible: compact strings and
//! arrays carry length + 1 as an unsigned varint, every struct ends with a
//! tagged-field count).

use bytes::Bytes;

use super::check;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use crate::protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition as ShareFetchPartition, FetchTopic as ShareFetchTopic,
};
use crate::protocol::messages::{
    ApiVersionsRequest, FetchRequest, ProduceRequest, ProduceResponse, ShareFetchRequest,
    ShareGroupHeartbeatRequest,
};
use crate::protocol::primitives::Uuid;

const ID: Uuid = Uuid([
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
]);

#[rustfmt::skip]
const ID_BYTES: [u8; 16] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
];

fn with_id(before: &[u8], after: &[u8]) -> Vec<u8> {
    [before, &ID_BYTES[..], after].concat()
}

#[test]
fn produce_request_v13_names_the_topic_by_id() {
    // TransactionalId null (compact nullable: 0), Acks -1, TimeoutMs 30000,
    // TopicData [1] { TopicId, PartitionData [1] { Index 0, Records 4
    // bytes (compact: 5), tags 0 }, tags 0 }, tags 0. No Name at v13.
    #[rustfmt::skip]
    let golden = with_id(
        &[
            0x00,                   // TransactionalId null
            0xff, 0xff,             // Acks -1
            0x00, 0x00, 0x75, 0x30, // TimeoutMs 30000
            0x02,                   // TopicData: 1 entry
        ],
        &[
            0x02,                   // PartitionData: 1 entry
            0x00, 0x00, 0x00, 0x00, // Index 0
            0x05, 0xde, 0xad, 0xbe, 0xef, // Records, 4 bytes
            0x00,                   // partition tags
            0x00,                   // topic tags
            0x00,                   // request tags
        ],
    );
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            topic_id: ID,
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 13, &golden);
}

#[test]
fn produce_response_v13_answers_by_topic_id() {
    #[rustfmt::skip]
    let golden = with_id(
        &[0x02], // Responses: 1 entry
        &[
            0x02,                                           // PartitionResponses: 1 entry
            0x00, 0x00, 0x00, 0x00,                         // Index 0
            0x00, 0x00,                                     // ErrorCode 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // BaseOffset 42
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogAppendTimeMs -1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // LogStartOffset 0
            0x01,                                           // RecordErrors: empty
            0x00,                                           // ErrorMessage null
            0x00,                                           // partition tags (no CurrentLeader)
            0x00,                                           // topic tags
            0x00, 0x00, 0x00, 0x00,                         // ThrottleTimeMs 0
            0x00,                                           // response tags (no NodeEndpoints)
        ],
    );
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            topic_id: ID,
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                base_offset: 42,
                log_append_time_ms: -1,
                log_start_offset: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 13, &golden);
}

#[test]
fn fetch_request_v18_by_topic_id_with_a_tagged_high_watermark() {
    // ClusterId (tag 0) and ReplicaState (tag 1) left out at their
    // defaults; no ReplicaId from v15. Partition 0 as a consumer sends it;
    // partition 1 carries HighWatermark 1000 (tag 1, 8 bytes), as a
    // follower would.
    #[rustfmt::skip]
    let golden = with_id(
        &[
            0x00, 0x00, 0x01, 0xf4, // MaxWaitMs 500
            0x00, 0x00, 0x00, 0x01, // MinBytes 1
            0x03, 0x20, 0x00, 0x00, // MaxBytes 52428800
            0x00,                   // IsolationLevel 0
            0x00, 0x00, 0x00, 0x00, // SessionId 0
            0x00, 0x00, 0x00, 0x00, // SessionEpoch 0
            0x02,                   // Topics: 1 entry
        ],
        &[
            0x03,                                           // Partitions: 2 entries
            0x00, 0x00, 0x00, 0x00,                         // Partition 0
            0x00, 0x00, 0x00, 0x05,                         // CurrentLeaderEpoch 5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // FetchOffset 100
            0xff, 0xff, 0xff, 0xff,                         // LastFetchedEpoch -1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogStartOffset -1
            0x00, 0x10, 0x00, 0x00,                         // PartitionMaxBytes 1 MiB
            0x00,                                           // tags: none
            0x00, 0x00, 0x00, 0x01,                         // Partition 1
            0xff, 0xff, 0xff, 0xff,                         // CurrentLeaderEpoch -1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // FetchOffset 0
            0xff, 0xff, 0xff, 0xff,                         // LastFetchedEpoch -1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogStartOffset -1
            0x00, 0x10, 0x00, 0x00,                         // PartitionMaxBytes 1 MiB
            0x01,                                           // tags: 1
            0x01, 0x08,                                     // tag 1, 8 bytes
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // HighWatermark 1000
            0x00,                                           // topic tags
            0x01,                                           // ForgottenTopicsData: empty
            0x01,                                           // RackId ""
            0x00,                                           // request tags
        ],
    );
    let partition = |p: i32| FetchPartition {
        partition: p,
        current_leader_epoch: -1,
        fetch_offset: 0,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    };
    let req = FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        session_id: 0,
        session_epoch: 0,
        topics: vec![FetchTopic {
            topic_id: ID,
            partitions: vec![
                FetchPartition {
                    current_leader_epoch: 5,
                    fetch_offset: 100,
                    ..partition(0)
                },
                FetchPartition {
                    high_watermark: 1000,
                    ..partition(1)
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 18, &golden);
}

#[test]
fn api_versions_request_v5_with_no_cluster_identity() {
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x06, b'k', b'l', b'a', b'm', b'm', // ClientSoftwareName "klamm"
        0x06, b'0', b'.', b'1', b'.', b'0', // ClientSoftwareVersion "0.1.0"
        0x00,                               // ClusterId null
        0xff, 0xff, 0xff, 0xff,             // NodeId -1
        0x00,                               // tags
    ];
    let req = ApiVersionsRequest {
        client_software_name: "klamm".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    };
    check(&req, 5, golden);
}

#[test]
fn share_group_heartbeat_request_v1_join() {
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x02, b'g',             // GroupId "g"
        0x02, b'm',             // MemberId "m"
        0x00, 0x00, 0x00, 0x00, // MemberEpoch 0
        0x00,                   // RackId null
        0x02, 0x02, b't',       // SubscribedTopicNames ["t"]
        0x00,                   // tags
    ];
    let req = ShareGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: "m".into(),
        member_epoch: 0,
        rack_id: None,
        subscribed_topic_names: Some(vec!["t".into()]),
        ..Default::default()
    };
    check(&req, 1, golden);
}

#[test]
fn share_fetch_request_v2_with_an_acknowledgement_batch() {
    #[rustfmt::skip]
    let golden = with_id(
        &[
            0x02, b'g',             // GroupId "g"
            0x02, b'm',             // MemberId "m"
            0x00, 0x00, 0x00, 0x01, // ShareSessionEpoch 1
            0x00, 0x00, 0x01, 0xf4, // MaxWaitMs 500
            0x00, 0x00, 0x00, 0x01, // MinBytes 1
            0x03, 0x20, 0x00, 0x00, // MaxBytes 52428800
            0x00, 0x00, 0x01, 0xf4, // MaxRecords 500
            0x00, 0x00, 0x01, 0xf4, // BatchSize 500
            0x01,                   // ShareAcquireMode 1 (record_limit)
            0x00,                   // IsRenewAck false
            0x02,                   // Topics: 1 entry
        ],
        &[
            0x02,                                           // Partitions: 1 entry
            0x00, 0x00, 0x00, 0x00,                         // PartitionIndex 0
            0x02,                                           // AcknowledgementBatches: 1 entry
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // FirstOffset 5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // LastOffset 7
            0x02, 0x01,                                     // AcknowledgeTypes [1] (accept)
            0x00,                                           // batch tags
            0x00,                                           // partition tags
            0x00,                                           // topic tags
            0x01,                                           // ForgottenTopicsData: empty
            0x00,                                           // request tags
        ],
    );
    let req = ShareFetchRequest {
        group_id: Some("g".into()),
        member_id: Some("m".into()),
        share_session_epoch: 1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        max_records: 500,
        batch_size: 500,
        share_acquire_mode: 1,
        topics: vec![ShareFetchTopic {
            topic_id: ID,
            partitions: vec![ShareFetchPartition {
                partition_index: 0,
                acknowledgement_batches: vec![AcknowledgementBatch {
                    first_offset: 5,
                    last_offset: 7,
                    acknowledge_types: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 2, &golden);
}
