//! Fetch (API key 1): FetchRequest.json, FetchResponse.json.
//! Valid versions 0-16, flexible 12+.

use bytes::Bytes;

use super::{TOPIC_ID, check};
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
    SnapshotId,
};
use crate::protocol::messages::{FetchRequest, FetchResponse};
use crate::protocol::primitives::Uuid;

#[rustfmt::skip]
const RECORDS: &[u8] = &[0xde, 0xad, 0xbe, 0xef];

// FetchRequest v4 (not flexible: 4 < 12)
//   ClusterId      tagged, 12+: absent
//   ReplicaId      int32 -1 (versions 0-14)   -> ff ff ff ff
//   ReplicaState   tagged, 15+: absent
//   MaxWaitMs      int32 500 (0x1f4)          -> 00 00 01 f4
//   MinBytes       int32 1                    -> 00 00 00 01
//   MaxBytes       int32 (3+) 52428800 (0x03200000) -> 03 20 00 00
//   IsolationLevel int8 (4+) 1 (READ_COMMITTED) -> 01
//   SessionId, SessionEpoch versions 7+: absent
//   Topics         array, int32 count 1       -> 00 00 00 01
//     Topic        string (0-12) "t1"         -> 00 02 74 31
//     TopicId      versions 13+: absent
//     Partitions   array, count 2             -> 00 00 00 02
//       [0] Partition   int32 0               -> 00 00 00 00
//           CurrentLeaderEpoch 9+: absent
//           FetchOffset int64 100             -> 00 00 00 00 00 00 00 64
//           LastFetchedEpoch 12+, LogStartOffset 5+: absent
//           PartitionMaxBytes int32 1048576 (0x100000) -> 00 10 00 00
//       [1] Partition   int32 1               -> 00 00 00 01
//           FetchOffset int64 0               -> 00 x 8
//           PartitionMaxBytes int32 1048576   -> 00 10 00 00
//   ForgottenTopicsData 7+, RackId 11+: absent
#[rustfmt::skip]
const FETCH_REQUEST_V4: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, // ReplicaId -1
    0x00, 0x00, 0x01, 0xf4, // MaxWaitMs 500
    0x00, 0x00, 0x00, 0x01, // MinBytes 1
    0x03, 0x20, 0x00, 0x00, // MaxBytes 50 MiB
    0x01, // IsolationLevel 1
    0x00, 0x00, 0x00, 0x01, // Topics count 1
    0x00, 0x02, 0x74, 0x31, // Topic "t1"
    0x00, 0x00, 0x00, 0x02, // Partitions count 2
    0x00, 0x00, 0x00, 0x00, // Partition 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // FetchOffset 100
    0x00, 0x10, 0x00, 0x00, // PartitionMaxBytes 1 MiB
    0x00, 0x00, 0x00, 0x01, // Partition 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // FetchOffset 0
    0x00, 0x10, 0x00, 0x00, // PartitionMaxBytes 1 MiB
];

#[test]
fn fetch_request_v4() {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        isolation_level: 1,
        topics: vec![FetchTopic {
            topic: "t1".into(),
            partitions: vec![
                FetchPartition {
                    partition: 0,
                    fetch_offset: 100,
                    partition_max_bytes: 1_048_576,
                    ..Default::default()
                },
                FetchPartition {
                    partition: 1,
                    fetch_offset: 0,
                    partition_max_bytes: 1_048_576,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 4, FETCH_REQUEST_V4);
}

// FetchRequest v13 (flexible: 13 >= 12), ClusterId tagged field set
//   ReplicaId      int32 -1                   -> ff ff ff ff
//   MaxWaitMs      int32 500                  -> 00 00 01 f4
//   MinBytes       int32 1                    -> 00 00 00 01
//   MaxBytes       int32 0x7fffffff           -> 7f ff ff ff
//   IsolationLevel int8 0                     -> 00
//   SessionId      int32 4660 (0x1234)        -> 00 00 12 34
//   SessionEpoch   int32 3                    -> 00 00 00 03
//   Topics         compact array, 1 element   -> 02
//     Topic        versions 0-12: absent
//     TopicId      uuid 00112233-...-eeff     -> 16 raw bytes
//     Partitions   compact array, 1 element   -> 02
//       Partition          int32 0            -> 00 00 00 00
//       CurrentLeaderEpoch int32 5            -> 00 00 00 05
//       FetchOffset        int64 100          -> 00 00 00 00 00 00 00 64
//       LastFetchedEpoch   int32 4            -> 00 00 00 04
//       LogStartOffset     int64 -1           -> ff x 8
//       PartitionMaxBytes  int32 1048576      -> 00 10 00 00
//       tagged fields      none               -> 00
//     tagged fields none                      -> 00
//   ForgottenTopicsData compact array, 1 element -> 02
//     Topic        versions 7-12: absent
//     TopicId      uuid 0101...01             -> 16 x 01
//     Partitions   compact array of int32 [0, 1] -> 03 00 00 00 00 00 00 00 01
//     tagged fields none                      -> 00
//   RackId         compact string "r1"        -> 03 72 31
//   tagged fields  1                          -> 01
//     tag 0 ClusterId, size 3: compact nullable string "c1" -> 00 03 03 63 31
#[rustfmt::skip]
const FETCH_REQUEST_V13: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, // ReplicaId -1
    0x00, 0x00, 0x01, 0xf4, // MaxWaitMs 500
    0x00, 0x00, 0x00, 0x01, // MinBytes 1
    0x7f, 0xff, 0xff, 0xff, // MaxBytes
    0x00, // IsolationLevel 0
    0x00, 0x00, 0x12, 0x34, // SessionId
    0x00, 0x00, 0x00, 0x03, // SessionEpoch 3
    0x02, // Topics: 1 element
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x02, // Partitions: 1 element
    0x00, 0x00, 0x00, 0x00, // Partition 0
    0x00, 0x00, 0x00, 0x05, // CurrentLeaderEpoch 5
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // FetchOffset 100
    0x00, 0x00, 0x00, 0x04, // LastFetchedEpoch 4
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogStartOffset -1
    0x00, 0x10, 0x00, 0x00, // PartitionMaxBytes
    0x00, // partition tagged fields
    0x00, // topic tagged fields
    0x02, // ForgottenTopicsData: 1 element
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // Partitions [0, 1]
    0x00, // tagged fields
    0x03, 0x72, 0x31, // RackId "r1"
    0x01, // 1 tagged field
    0x00, 0x03, 0x03, 0x63, 0x31, // tag 0 (ClusterId), size 3, "c1"
];

#[test]
fn fetch_request_v13() {
    let req = FetchRequest {
        cluster_id: Some("c1".into()),
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: i32::MAX,
        isolation_level: 0,
        session_id: 0x1234,
        session_epoch: 3,
        topics: vec![FetchTopic {
            topic_id: TOPIC_ID,
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: 5,
                fetch_offset: 100,
                last_fetched_epoch: 4,
                log_start_offset: -1,
                partition_max_bytes: 1_048_576,
                ..Default::default()
            }],
            ..Default::default()
        }],
        forgotten_topics_data: vec![ForgottenTopic {
            topic_id: Uuid([0x01; 16]),
            partitions: [0, 1].into(),
            ..Default::default()
        }],
        rack_id: "r1".into(),
        ..Default::default()
    };
    check(&req, 13, FETCH_REQUEST_V13);
}

// FetchResponse v4 (not flexible)
//   ThrottleTimeMs int32 (1+) 0                -> 00 00 00 00
//   ErrorCode, SessionId versions 7+: absent
//   Responses array, int32 count 1             -> 00 00 00 01
//     Topic   string "t1"                      -> 00 02 74 31
//     Partitions array, count 2                -> 00 00 00 02
//       [0] PartitionIndex   int32 0           -> 00 00 00 00
//           ErrorCode        int16 0           -> 00 00
//           HighWatermark    int64 200         -> 00 00 00 00 00 00 00 c8
//           LastStableOffset int64 (4+) 150    -> 00 00 00 00 00 00 00 96
//           LogStartOffset   versions 5+: absent
//           AbortedTransactions nullable array (4+), count 1 -> 00 00 00 01
//             ProducerId  int64 7              -> 00 00 00 00 00 00 00 07
//             FirstOffset int64 120            -> 00 00 00 00 00 00 00 78
//           PreferredReadReplica versions 11+: absent
//           Records nullable bytes, len 4      -> 00 00 00 04 de ad be ef
//       [1] PartitionIndex   int32 1           -> 00 00 00 01
//           ErrorCode        int16 1 (OFFSET_OUT_OF_RANGE) -> 00 01
//           HighWatermark    int64 -1          -> ff x 8
//           LastStableOffset int64 -1          -> ff x 8
//           AbortedTransactions null           -> ff ff ff ff
//           Records          null              -> ff ff ff ff
#[rustfmt::skip]
const FETCH_RESPONSE_V4: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, 0x00, 0x01, // Responses count 1
    0x00, 0x02, 0x74, 0x31, // Topic "t1"
    0x00, 0x00, 0x00, 0x02, // Partitions count 2
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x00, // ErrorCode 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, // HighWatermark 200
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, // LastStableOffset 150
    0x00, 0x00, 0x00, 0x01, // AbortedTransactions count 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // ProducerId 7
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, // FirstOffset 120
    0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Records
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0x00, 0x01, // ErrorCode 1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // HighWatermark -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LastStableOffset -1
    0xff, 0xff, 0xff, 0xff, // AbortedTransactions null
    0xff, 0xff, 0xff, 0xff, // Records null
];

#[test]
fn fetch_response_v4() {
    let resp = FetchResponse {
        throttle_time_ms: 0,
        responses: vec![FetchableTopicResponse {
            topic: "t1".into(),
            partitions: vec![
                PartitionData {
                    partition_index: 0,
                    error_code: 0,
                    high_watermark: 200,
                    last_stable_offset: 150,
                    aborted_transactions: Some(vec![AbortedTransaction {
                        producer_id: 7,
                        first_offset: 120,
                        ..Default::default()
                    }]),
                    records: Some(Bytes::from_static(RECORDS)),
                    ..Default::default()
                },
                PartitionData {
                    partition_index: 1,
                    error_code: 1,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    aborted_transactions: None,
                    records: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 4, FETCH_RESPONSE_V4);
}

// FetchResponse v12 (flexible) with the CurrentLeader tagged struct set
//   ThrottleTimeMs int32 0                     -> 00 00 00 00
//   ErrorCode      int16 0                     -> 00 00
//   SessionId      int32 4660                  -> 00 00 12 34
//   Responses compact array, 1 element         -> 02
//     Topic   compact string (0-12) "t1"       -> 03 74 31
//     Partitions compact array, 1 element      -> 02
//       PartitionIndex   int32 0               -> 00 00 00 00
//       ErrorCode        int16 6 (NOT_LEADER_OR_FOLLOWER) -> 00 06
//       HighWatermark    int64 -1              -> ff x 8
//       LastStableOffset int64 -1              -> ff x 8
//       LogStartOffset   int64 -1              -> ff x 8
//       AbortedTransactions compact nullable array, null -> 00
//       PreferredReadReplica int32 -1          -> ff ff ff ff
//       Records          compact nullable bytes, null -> 00
//       tagged fields    1                     -> 01
//         tag 1 CurrentLeader, size 9 (4 + 4 + 1) -> 01 09
//           LeaderId    int32 2                -> 00 00 00 02
//           LeaderEpoch int32 7                -> 00 00 00 07
//           tagged fields none                 -> 00
//     tagged fields none                       -> 00
//   NodeEndpoints tagged, 16+: absent
//   tagged fields none                         -> 00
#[rustfmt::skip]
const FETCH_RESPONSE_V12: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x12, 0x34, // SessionId
    0x02, // Responses: 1 element
    0x03, 0x74, 0x31, // Topic "t1"
    0x02, // Partitions: 1 element
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x00, 0x06, // ErrorCode 6
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // HighWatermark -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LastStableOffset -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogStartOffset -1
    0x00, // AbortedTransactions null
    0xff, 0xff, 0xff, 0xff, // PreferredReadReplica -1
    0x00, // Records null
    0x01, // 1 tagged field
    0x01, 0x09, // tag 1 (CurrentLeader), size 9
    0x00, 0x00, 0x00, 0x02, // LeaderId 2
    0x00, 0x00, 0x00, 0x07, // LeaderEpoch 7
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn fetch_response_v12_with_current_leader() {
    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0x1234,
        responses: vec![FetchableTopicResponse {
            topic: "t1".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                error_code: 6,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                current_leader: LeaderIdAndEpoch {
                    leader_id: 2,
                    leader_epoch: 7,
                    ..Default::default()
                },
                aborted_transactions: None,
                preferred_read_replica: -1,
                records: None,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 12, FETCH_RESPONSE_V12);
}

// FetchResponse v13 (flexible, topic ids) with two tagged structs set
//   ThrottleTimeMs int32 5                     -> 00 00 00 05
//   ErrorCode      int16 0                     -> 00 00
//   SessionId      int32 0                     -> 00 00 00 00
//   Responses compact array, 1 element         -> 02
//     Topic   versions 0-12: absent
//     TopicId uuid 00112233-...-eeff           -> 16 raw bytes
//     Partitions compact array, 1 element      -> 02
//       PartitionIndex   int32 1               -> 00 00 00 01
//       ErrorCode        int16 0               -> 00 00
//       HighWatermark    int64 200             -> 00 00 00 00 00 00 00 c8
//       LastStableOffset int64 200             -> 00 00 00 00 00 00 00 c8
//       LogStartOffset   int64 0               -> 00 x 8
//       AbortedTransactions compact array, empty -> 01
//       PreferredReadReplica int32 3           -> 00 00 00 03
//       Records          compact bytes, len 4  -> 05 de ad be ef
//       tagged fields    2 (tags ascending)    -> 02
//         tag 0 DivergingEpoch, size 13 (4 + 8 + 1) -> 00 0d
//           Epoch     int32 4                  -> 00 00 00 04
//           EndOffset int64 150                -> 00 00 00 00 00 00 00 96
//           tagged fields none                 -> 00
//         tag 2 SnapshotId, size 13 (8 + 4 + 1) -> 02 0d
//           EndOffset int64 100                -> 00 00 00 00 00 00 00 64
//           Epoch     int32 3                  -> 00 00 00 03
//           tagged fields none                 -> 00
//     tagged fields none                       -> 00
//   tagged fields none                         -> 00
#[rustfmt::skip]
const FETCH_RESPONSE_V13: &[u8] = &[
    0x00, 0x00, 0x00, 0x05, // ThrottleTimeMs 5
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x00, // SessionId 0
    0x02, // Responses: 1 element
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x02, // Partitions: 1 element
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, // HighWatermark 200
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, // LastStableOffset 200
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // LogStartOffset 0
    0x01, // AbortedTransactions: empty
    0x00, 0x00, 0x00, 0x03, // PreferredReadReplica 3
    0x05, 0xde, 0xad, 0xbe, 0xef, // Records
    0x02, // 2 tagged fields
    0x00, 0x0d, // tag 0 (DivergingEpoch), size 13
    0x00, 0x00, 0x00, 0x04, // Epoch 4
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, // EndOffset 150
    0x00, // tagged fields
    0x02, 0x0d, // tag 2 (SnapshotId), size 13
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // EndOffset 100
    0x00, 0x00, 0x00, 0x03, // Epoch 3
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn fetch_response_v13_with_tagged_structs() {
    let resp = FetchResponse {
        throttle_time_ms: 5,
        error_code: 0,
        session_id: 0,
        responses: vec![FetchableTopicResponse {
            topic_id: TOPIC_ID,
            partitions: vec![PartitionData {
                partition_index: 1,
                error_code: 0,
                high_watermark: 200,
                last_stable_offset: 200,
                log_start_offset: 0,
                diverging_epoch: EpochEndOffset {
                    epoch: 4,
                    end_offset: 150,
                    ..Default::default()
                },
                snapshot_id: SnapshotId {
                    end_offset: 100,
                    epoch: 3,
                    ..Default::default()
                },
                aborted_transactions: Some(vec![]),
                preferred_read_replica: 3,
                records: Some(Bytes::from_static(RECORDS)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 13, FETCH_RESPONSE_V13);
}
