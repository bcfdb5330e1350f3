//! ListOffsets (API key 2, versions 0-8, flexible 6+), OffsetCommit (API key
//! 8, versions 0-9, flexible 8+) and OffsetFetch (API key 9, versions 0-9,
//! flexible 6+).

use super::check;
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use crate::protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};

// ListOffsetsRequest v1 (not flexible: 1 < 6)
//   ReplicaId      int32 -1                    -> ff ff ff ff
//   IsolationLevel versions 2+: absent
//   Topics         array, int32 count 1        -> 00 00 00 01
//     Name         string "t1"                 -> 00 02 74 31
//     Partitions   array, count 2              -> 00 00 00 02
//       [0] PartitionIndex int32 0             -> 00 00 00 00
//           CurrentLeaderEpoch versions 4+: absent
//           Timestamp      int64 -1 (latest)   -> ff x 8
//           MaxNumOffsets  version 0 only: absent (stays at default 1)
//       [1] PartitionIndex int32 1             -> 00 00 00 01
//           Timestamp      int64 -2 (earliest) -> ff ff ff ff ff ff ff fe
#[rustfmt::skip]
const LIST_OFFSETS_REQUEST_V1: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, // ReplicaId -1
    0x00, 0x00, 0x00, 0x01, // Topics count 1
    0x00, 0x02, 0x74, 0x31, // Name "t1"
    0x00, 0x00, 0x00, 0x02, // Partitions count 2
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Timestamp -1
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // Timestamp -2
];

#[test]
fn list_offsets_request_v1() {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t1".into(),
            partitions: vec![
                ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                },
                ListOffsetsPartition {
                    partition_index: 1,
                    timestamp: -2,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 1, LIST_OFFSETS_REQUEST_V1);
}

// ListOffsetsResponse v1 (not flexible)
//   ThrottleTimeMs versions 2+: absent
//   Topics array, count 1                      -> 00 00 00 01
//     Name string "t1"                         -> 00 02 74 31
//     Partitions array, count 1                -> 00 00 00 01
//       PartitionIndex int32 0                 -> 00 00 00 00
//       ErrorCode      int16 0                 -> 00 00
//       OldStyleOffsets version 0 only: absent
//       Timestamp      int64 -1                -> ff x 8
//       Offset         int64 4242 (0x1092)     -> 00 00 00 00 00 00 10 92
//       LeaderEpoch    versions 4+: absent
#[rustfmt::skip]
const LIST_OFFSETS_RESPONSE_V1: &[u8] = &[
    0x00, 0x00, 0x00, 0x01, // Topics count 1
    0x00, 0x02, 0x74, 0x31, // Name "t1"
    0x00, 0x00, 0x00, 0x01, // Partitions count 1
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, // ErrorCode 0
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Timestamp -1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x92, // Offset 4242
];

#[test]
fn list_offsets_response_v1() {
    let resp = ListOffsetsResponse {
        topics: vec![ListOffsetsTopicResponse {
            name: "t1".into(),
            partitions: vec![ListOffsetsPartitionResponse {
                partition_index: 0,
                error_code: 0,
                timestamp: -1,
                offset: 4242,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 1, LIST_OFFSETS_RESPONSE_V1);
}

// ListOffsetsRequest v7 (flexible: 7 >= 6)
//   ReplicaId      int32 -1                     -> ff ff ff ff
//   IsolationLevel int8 1                       -> 01
//   Topics         compact array, 1 element     -> 02
//     Name         compact string "t1"          -> 03 74 31
//     Partitions   compact array, 1 element     -> 02
//       PartitionIndex     int32 0              -> 00 00 00 00
//       CurrentLeaderEpoch int32 5              -> 00 00 00 05
//       Timestamp          int64 -3 (max timestamp) -> ff ff ff ff ff ff ff fd
//       tagged fields      none                 -> 00
//     tagged fields none                        -> 00
//   tagged fields  none                         -> 00
#[rustfmt::skip]
const LIST_OFFSETS_REQUEST_V7: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, // ReplicaId -1
    0x01, // IsolationLevel 1
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x02, // Partitions: 1 element
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, 0x00, 0x05, // CurrentLeaderEpoch 5
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, // Timestamp -3
    0x00, // partition tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn list_offsets_request_v7() {
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 1,
        topics: vec![ListOffsetsTopic {
            name: "t1".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: 5,
                timestamp: -3,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 7, LIST_OFFSETS_REQUEST_V7);
}

// ListOffsetsResponse v7 (flexible)
//   ThrottleTimeMs int32 0                      -> 00 00 00 00
//   Topics compact array, 1 element             -> 02
//     Name compact string "t1"                  -> 03 74 31
//     Partitions compact array, 2 elements      -> 03
//       [0] PartitionIndex int32 0              -> 00 00 00 00
//           ErrorCode      int16 0              -> 00 00
//           Timestamp      int64 1700000000000 (0x018bcfe56800)
//                                               -> 00 00 01 8b cf e5 68 00
//           Offset         int64 41             -> 00 00 00 00 00 00 00 29
//           LeaderEpoch    int32 5              -> 00 00 00 05
//           tagged fields  none                 -> 00
//       [1] PartitionIndex int32 1              -> 00 00 00 01
//           ErrorCode      int16 6              -> 00 06
//           Timestamp      int64 -1             -> ff x 8
//           Offset         int64 -1             -> ff x 8
//           LeaderEpoch    int32 -1             -> ff ff ff ff
//           tagged fields  none                 -> 00
//     tagged fields none                        -> 00
//   tagged fields none                          -> 00
#[rustfmt::skip]
const LIST_OFFSETS_RESPONSE_V7: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x03, // Partitions: 2 elements
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, // ErrorCode 0
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // Timestamp
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29, // Offset 41
    0x00, 0x00, 0x00, 0x05, // LeaderEpoch 5
    0x00, // tagged fields
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0x00, 0x06, // ErrorCode 6
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Timestamp -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Offset -1
    0xff, 0xff, 0xff, 0xff, // LeaderEpoch -1
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn list_offsets_response_v7() {
    let resp = ListOffsetsResponse {
        throttle_time_ms: 0,
        topics: vec![ListOffsetsTopicResponse {
            name: "t1".into(),
            partitions: vec![
                ListOffsetsPartitionResponse {
                    partition_index: 0,
                    error_code: 0,
                    timestamp: 1_700_000_000_000,
                    offset: 41,
                    leader_epoch: 5,
                    ..Default::default()
                },
                ListOffsetsPartitionResponse {
                    partition_index: 1,
                    error_code: 6,
                    timestamp: -1,
                    offset: -1,
                    leader_epoch: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 7, LIST_OFFSETS_RESPONSE_V7);
}

// OffsetCommitRequest v8 (flexible: 8 >= 8)
//   GroupId                   compact string "g1"   -> 03 67 31
//   GenerationIdOrMemberEpoch int32 3               -> 00 00 00 03
//   MemberId                  compact string "m1"   -> 03 6d 31
//   GroupInstanceId           compact nullable string (7+), null -> 00
//   RetentionTimeMs           versions 2-4: absent
//   Topics compact array, 1 element                 -> 02
//     Name compact string "t1"                      -> 03 74 31
//     Partitions compact array, 2 elements          -> 03
//       [0] PartitionIndex       int32 0            -> 00 00 00 00
//           CommittedOffset      int64 100          -> 00 00 00 00 00 00 00 64
//           CommittedLeaderEpoch int32 5            -> 00 00 00 05
//           CommitTimestamp      version 1 only: absent
//           CommittedMetadata    compact nullable string "" (empty, not null) -> 01
//           tagged fields        none               -> 00
//       [1] PartitionIndex       int32 1            -> 00 00 00 01
//           CommittedOffset      int64 7            -> 00 00 00 00 00 00 00 07
//           CommittedLeaderEpoch int32 -1           -> ff ff ff ff
//           CommittedMetadata    null               -> 00
//           tagged fields        none               -> 00
//     tagged fields none                            -> 00
//   tagged fields none                              -> 00
#[rustfmt::skip]
const OFFSET_COMMIT_REQUEST_V8: &[u8] = &[
    0x03, 0x67, 0x31, // GroupId "g1"
    0x00, 0x00, 0x00, 0x03, // GenerationIdOrMemberEpoch 3
    0x03, 0x6d, 0x31, // MemberId "m1"
    0x00, // GroupInstanceId null
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x03, // Partitions: 2 elements
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // CommittedOffset 100
    0x00, 0x00, 0x00, 0x05, // CommittedLeaderEpoch 5
    0x01, // CommittedMetadata ""
    0x00, // tagged fields
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // CommittedOffset 7
    0xff, 0xff, 0xff, 0xff, // CommittedLeaderEpoch -1
    0x00, // CommittedMetadata null
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn offset_commit_request_v8() {
    let req = OffsetCommitRequest {
        group_id: "g1".into(),
        generation_id_or_member_epoch: 3,
        member_id: "m1".into(),
        group_instance_id: None,
        topics: vec![OffsetCommitRequestTopic {
            name: "t1".into(),
            partitions: vec![
                OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 100,
                    committed_leader_epoch: 5,
                    committed_metadata: Some(String::new()),
                    ..Default::default()
                },
                OffsetCommitRequestPartition {
                    partition_index: 1,
                    committed_offset: 7,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 8, OFFSET_COMMIT_REQUEST_V8);
}

// OffsetCommitResponse v8 (flexible)
//   ThrottleTimeMs int32 0                      -> 00 00 00 00
//   Topics compact array, 1 element             -> 02
//     Name compact string "t1"                  -> 03 74 31
//     Partitions compact array, 2 elements      -> 03
//       [0] PartitionIndex int32 0, ErrorCode int16 0, no tags
//                                               -> 00 00 00 00 00 00 00
//       [1] PartitionIndex int32 1, ErrorCode int16 22 (ILLEGAL_GENERATION), no tags
//                                               -> 00 00 00 01 00 16 00
//     tagged fields none                        -> 00
//   tagged fields none                          -> 00
#[rustfmt::skip]
const OFFSET_COMMIT_RESPONSE_V8: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x03, // Partitions: 2 elements
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // partition 0, error 0, no tags
    0x00, 0x00, 0x00, 0x01, 0x00, 0x16, 0x00, // partition 1, error 22, no tags
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn offset_commit_response_v8() {
    let resp = OffsetCommitResponse {
        throttle_time_ms: 0,
        topics: vec![OffsetCommitResponseTopic {
            name: "t1".into(),
            partitions: vec![
                OffsetCommitResponsePartition {
                    partition_index: 0,
                    error_code: 0,
                    ..Default::default()
                },
                OffsetCommitResponsePartition {
                    partition_index: 1,
                    error_code: 22,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 8, OFFSET_COMMIT_RESPONSE_V8);
}

// OffsetFetchRequest v8 (flexible: 8 >= 6)
//   GroupId, Topics versions 0-7: absent
//   Groups compact array, 2 elements            -> 03
//     [0] GroupId compact string "g1"           -> 03 67 31
//         MemberId, MemberEpoch versions 9+: absent
//         Topics compact nullable array, 1 element -> 02
//           Name             compact string "t1" -> 03 74 31
//           PartitionIndexes compact array of int32 [0, 1]
//                                               -> 03 00 00 00 00 00 00 00 01
//           tagged fields    none               -> 00
//         tagged fields none                    -> 00
//     [1] GroupId compact string "g2"           -> 03 67 32
//         Topics  null (all topics)             -> 00
//         tagged fields none                    -> 00
//   RequireStable bool true                     -> 01
//   tagged fields none                          -> 00
#[rustfmt::skip]
const OFFSET_FETCH_REQUEST_V8: &[u8] = &[
    0x03, // Groups: 2 elements
    0x03, 0x67, 0x31, // GroupId "g1"
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // PartitionIndexes [0, 1]
    0x00, // topic tagged fields
    0x00, // group tagged fields
    0x03, 0x67, 0x32, // GroupId "g2"
    0x00, // Topics null
    0x00, // group tagged fields
    0x01, // RequireStable true
    0x00, // tagged fields
];

#[test]
fn offset_fetch_request_v8() {
    let req = OffsetFetchRequest {
        groups: vec![
            OffsetFetchRequestGroup {
                group_id: "g1".into(),
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: "t1".into(),
                    partition_indexes: [0, 1].into(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            OffsetFetchRequestGroup {
                group_id: "g2".into(),
                topics: None,
                ..Default::default()
            },
        ],
        require_stable: true,
        ..Default::default()
    };
    check(&req, 8, OFFSET_FETCH_REQUEST_V8);
}

// OffsetFetchResponse v8 (flexible)
//   ThrottleTimeMs int32 0                      -> 00 00 00 00
//   Topics, ErrorCode versions 0-7 / 2-7: absent
//   Groups compact array, 2 elements            -> 03
//     [0] GroupId compact string "g1"           -> 03 67 31
//         Topics compact array, 1 element       -> 02
//           Name compact string "t1"            -> 03 74 31
//           Partitions compact array, 1 element -> 02
//             PartitionIndex       int32 0      -> 00 00 00 00
//             CommittedOffset      int64 100    -> 00 00 00 00 00 00 00 64
//             CommittedLeaderEpoch int32 5      -> 00 00 00 05
//             Metadata             compact nullable string "" -> 01
//             ErrorCode            int16 0      -> 00 00
//             tagged fields        none         -> 00
//           tagged fields none                  -> 00
//         ErrorCode int16 0                     -> 00 00
//         tagged fields none                    -> 00
//     [1] GroupId compact string "g2"           -> 03 67 32
//         Topics  compact array, empty          -> 01
//         ErrorCode int16 16 (NOT_COORDINATOR)  -> 00 10
//         tagged fields none                    -> 00
//   tagged fields none                          -> 00
#[rustfmt::skip]
const OFFSET_FETCH_RESPONSE_V8: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x03, // Groups: 2 elements
    0x03, 0x67, 0x31, // GroupId "g1"
    0x02, // Topics: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x02, // Partitions: 1 element
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // CommittedOffset 100
    0x00, 0x00, 0x00, 0x05, // CommittedLeaderEpoch 5
    0x01, // Metadata ""
    0x00, 0x00, // ErrorCode 0
    0x00, // partition tagged fields
    0x00, // topic tagged fields
    0x00, 0x00, // group ErrorCode 0
    0x00, // group tagged fields
    0x03, 0x67, 0x32, // GroupId "g2"
    0x01, // Topics: empty
    0x00, 0x10, // ErrorCode 16
    0x00, // group tagged fields
    0x00, // tagged fields
];

#[test]
fn offset_fetch_response_v8() {
    let resp = OffsetFetchResponse {
        throttle_time_ms: 0,
        groups: vec![
            OffsetFetchResponseGroup {
                group_id: "g1".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "t1".into(),
                    partitions: vec![OffsetFetchResponsePartitions {
                        partition_index: 0,
                        committed_offset: 100,
                        committed_leader_epoch: 5,
                        metadata: Some(String::new()),
                        error_code: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                error_code: 0,
                ..Default::default()
            },
            OffsetFetchResponseGroup {
                group_id: "g2".into(),
                topics: vec![],
                error_code: 16,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 8, OFFSET_FETCH_RESPONSE_V8);
}
