//! Metadata (API key 3): MetadataRequest.json, MetadataResponse.json.
//! Valid versions 0-12, flexible 9+.

use super::{TOPIC_ID, check};
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::{MetadataRequest, MetadataResponse};
use crate::protocol::primitives::Uuid;

// MetadataRequest v1 (not flexible: 1 < 9)
//   Topics  nullable array (nullable 1+), int32 count 2 -> 00 00 00 02
//     [0] TopicId uuid versions 10+: absent
//         Name    string "t1", int16 len 2 -> 00 02 74 31
//     [1] Name    string "t2"              -> 00 02 74 32
//   AllowAutoTopicCreation versions 4+: absent (stays at default true)
//   IncludeClusterAuthorizedOperations versions 8-10: absent
//   IncludeTopicAuthorizedOperations   versions 8+:   absent
#[rustfmt::skip]
const METADATA_REQUEST_V1: &[u8] = &[
    0x00, 0x00, 0x00, 0x02, // Topics count 2
    0x00, 0x02, 0x74, 0x31, // "t1"
    0x00, 0x02, 0x74, 0x32, // "t2"
];

// MetadataRequest v1, all topics
//   Topics  nullable array, null -> ff ff ff ff (int32 -1)
#[rustfmt::skip]
const METADATA_REQUEST_V1_ALL_TOPICS: &[u8] = &[0xff, 0xff, 0xff, 0xff];

#[test]
fn metadata_request_v1() {
    let topic = |name: &str| MetadataRequestTopic {
        name: Some(name.into()),
        ..Default::default()
    };
    let req = MetadataRequest {
        topics: Some(vec![topic("t1"), topic("t2")]),
        ..Default::default()
    };
    check(&req, 1, METADATA_REQUEST_V1);

    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    check(&all, 1, METADATA_REQUEST_V1_ALL_TOPICS);
}

// MetadataResponse v1 (not flexible)
//   ThrottleTimeMs versions 3+: absent
//   Brokers array, int32 count 1                 -> 00 00 00 01
//     NodeId int32 1                             -> 00 00 00 01
//     Host   string "k1"                         -> 00 02 6b 31
//     Port   int32 9092 (0x2384)                 -> 00 00 23 84
//     Rack   nullable string (1+), null          -> ff ff
//   ClusterId versions 2+: absent
//   ControllerId int32 1                         -> 00 00 00 01
//   Topics array, count 1                        -> 00 00 00 01
//     ErrorCode  int16 0                         -> 00 00
//     Name       string "t1"                     -> 00 02 74 31
//     TopicId    versions 10+: absent
//     IsInternal bool false                      -> 00
//     Partitions array, count 1                  -> 00 00 00 01
//       ErrorCode      int16 0                   -> 00 00
//       PartitionIndex int32 0                   -> 00 00 00 00
//       LeaderId       int32 1                   -> 00 00 00 01
//       LeaderEpoch    versions 7+: absent
//       ReplicaNodes   array of int32 [1, 2]     -> 00 00 00 02 00 00 00 01 00 00 00 02
//       IsrNodes       array of int32 [1]        -> 00 00 00 01 00 00 00 01
//       OfflineReplicas versions 5+: absent
//     TopicAuthorizedOperations versions 8+: absent
//   ClusterAuthorizedOperations versions 8-10: absent
#[rustfmt::skip]
const METADATA_RESPONSE_V1: &[u8] = &[
    0x00, 0x00, 0x00, 0x01, // Brokers count 1
    0x00, 0x00, 0x00, 0x01, // NodeId 1
    0x00, 0x02, 0x6b, 0x31, // Host "k1"
    0x00, 0x00, 0x23, 0x84, // Port 9092
    0xff, 0xff, // Rack null
    0x00, 0x00, 0x00, 0x01, // ControllerId 1
    0x00, 0x00, 0x00, 0x01, // Topics count 1
    0x00, 0x00, // ErrorCode
    0x00, 0x02, 0x74, 0x31, // Name "t1"
    0x00, // IsInternal false
    0x00, 0x00, 0x00, 0x01, // Partitions count 1
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, 0x00, 0x01, // LeaderId 1
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // ReplicaNodes
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // IsrNodes
];

#[test]
fn metadata_response_v1() {
    let resp = MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "k1".into(),
            port: 9092,
            rack: None,
            ..Default::default()
        }],
        controller_id: 1,
        topics: vec![MetadataResponseTopic {
            error_code: 0,
            name: Some("t1".into()),
            is_internal: false,
            partitions: vec![MetadataResponsePartition {
                error_code: 0,
                partition_index: 0,
                leader_id: 1,
                replica_nodes: [1, 2].into(),
                isr_nodes: [1].into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 1, METADATA_RESPONSE_V1);
}

// MetadataRequest v12 (flexible: 12 >= 9)
//   Topics compact nullable array, 2 elements  -> 03
//     [0] TopicId uuid 00112233-4455-6677-8899-aabbccddeeff -> 16 raw bytes
//         Name    compact nullable string (nullable 10+), null -> 00
//         tagged fields none                   -> 00
//     [1] TopicId uuid zero                    -> 16 x 00
//         Name    compact string "t2", len 2   -> 03 74 32
//         tagged fields none                   -> 00
//   AllowAutoTopicCreation bool false          -> 00
//   IncludeClusterAuthorizedOperations versions 8-10: absent
//   IncludeTopicAuthorizedOperations   bool true -> 01
//   tagged fields none                         -> 00
#[rustfmt::skip]
const METADATA_REQUEST_V12: &[u8] = &[
    0x03, // Topics: 2 elements
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, // Name null
    0x00, // tagged fields
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x74, 0x32, // Name "t2"
    0x00, // tagged fields
    0x00, // AllowAutoTopicCreation false
    0x01, // IncludeTopicAuthorizedOperations true
    0x00, // tagged fields
];

#[test]
fn metadata_request_v12() {
    let req = MetadataRequest {
        topics: Some(vec![
            MetadataRequestTopic {
                topic_id: TOPIC_ID,
                name: None,
                ..Default::default()
            },
            MetadataRequestTopic {
                topic_id: Uuid([0; 16]),
                name: Some("t2".into()),
                ..Default::default()
            },
        ]),
        allow_auto_topic_creation: false,
        include_topic_authorized_operations: true,
        ..Default::default()
    };
    check(&req, 12, METADATA_REQUEST_V12);
}

// MetadataResponse v12 (flexible)
//   ThrottleTimeMs int32 0                      -> 00 00 00 00
//   Brokers compact array, 2 elements           -> 03
//     [0] NodeId int32 1                        -> 00 00 00 01
//         Host   compact string "k1"            -> 03 6b 31
//         Port   int32 9092                     -> 00 00 23 84
//         Rack   compact nullable string "r1"   -> 03 72 31
//         tagged fields none                    -> 00
//     [1] NodeId int32 2                        -> 00 00 00 02
//         Host   compact string "k2"            -> 03 6b 32
//         Port   int32 9093 (0x2385)            -> 00 00 23 85
//         Rack   null                           -> 00
//         tagged fields none                    -> 00
//   ClusterId compact nullable string "c1"      -> 03 63 31
//   ControllerId int32 1                        -> 00 00 00 01
//   Topics compact array, 2 elements            -> 03
//     [0] ErrorCode int16 0                     -> 00 00
//         Name      compact nullable string (nullable 12+) "t1" -> 03 74 31
//         TopicId   uuid 00112233-...-eeff      -> 16 raw bytes
//         IsInternal bool false                 -> 00
//         Partitions compact array, 1 element   -> 02
//           ErrorCode       int16 0             -> 00 00
//           PartitionIndex  int32 0             -> 00 00 00 00
//           LeaderId        int32 1             -> 00 00 00 01
//           LeaderEpoch     int32 5             -> 00 00 00 05
//           ReplicaNodes    compact array [1, 2] -> 03 00 00 00 01 00 00 00 02
//           IsrNodes        compact array [1]    -> 02 00 00 00 01
//           OfflineReplicas compact array [2]    -> 02 00 00 00 02
//           tagged fields   none                -> 00
//         TopicAuthorizedOperations int32 280 (READ|WRITE|DESCRIBE = bits 3,4,8)
//                                               -> 00 00 01 18
//         tagged fields none                    -> 00
//     [1] ErrorCode int16 100 (UNKNOWN_TOPIC_ID) -> 00 64
//         Name      null                        -> 00
//         TopicId   uuid zero                   -> 16 x 00
//         IsInternal bool false                 -> 00
//         Partitions compact array, empty       -> 01
//         TopicAuthorizedOperations int32 i32::MIN -> 80 00 00 00
//         tagged fields none                    -> 00
//   ClusterAuthorizedOperations versions 8-10: absent
//   tagged fields none                          -> 00
#[rustfmt::skip]
const METADATA_RESPONSE_V12: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x03, // Brokers: 2 elements
    0x00, 0x00, 0x00, 0x01, 0x03, 0x6b, 0x31, 0x00, 0x00, 0x23, 0x84, 0x03, 0x72, 0x31, 0x00, // [0] 1, "k1", 9092, "r1", no tags
    0x00, 0x00, 0x00, 0x02, 0x03, 0x6b, 0x32, 0x00, 0x00, 0x23, 0x85, 0x00, 0x00, // [1] 2, "k2", 9093, null, no tags
    0x03, 0x63, 0x31, // ClusterId "c1"
    0x00, 0x00, 0x00, 0x01, // ControllerId 1
    0x03, // Topics: 2 elements
    0x00, 0x00, // [0] ErrorCode
    0x03, 0x74, 0x31, // Name "t1"
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, // IsInternal false
    0x02, // Partitions: 1 element
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, 0x00, 0x01, // LeaderId 1
    0x00, 0x00, 0x00, 0x05, // LeaderEpoch 5
    0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // ReplicaNodes [1, 2]
    0x02, 0x00, 0x00, 0x00, 0x01, // IsrNodes [1]
    0x02, 0x00, 0x00, 0x00, 0x02, // OfflineReplicas [2]
    0x00, // partition tagged fields
    0x00, 0x00, 0x01, 0x18, // TopicAuthorizedOperations 280
    0x00, // topic tagged fields
    0x00, 0x64, // [1] ErrorCode 100
    0x00, // Name null
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, // IsInternal false
    0x01, // Partitions: empty
    0x80, 0x00, 0x00, 0x00, // TopicAuthorizedOperations i32::MIN
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn metadata_response_v12() {
    let resp = MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![
            MetadataResponseBroker {
                node_id: 1,
                host: "k1".into(),
                port: 9092,
                rack: Some("r1".into()),
                ..Default::default()
            },
            MetadataResponseBroker {
                node_id: 2,
                host: "k2".into(),
                port: 9093,
                rack: None,
                ..Default::default()
            },
        ],
        cluster_id: Some("c1".into()),
        controller_id: 1,
        topics: vec![
            MetadataResponseTopic {
                error_code: 0,
                name: Some("t1".into()),
                topic_id: TOPIC_ID,
                is_internal: false,
                partitions: vec![MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: 5,
                    replica_nodes: [1, 2].into(),
                    isr_nodes: [1].into(),
                    offline_replicas: [2].into(),
                    ..Default::default()
                }],
                topic_authorized_operations: 280,
                ..Default::default()
            },
            MetadataResponseTopic {
                error_code: 100,
                name: None,
                topic_id: Uuid([0; 16]),
                partitions: vec![],
                topic_authorized_operations: i32::MIN,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 12, METADATA_RESPONSE_V12);
}
