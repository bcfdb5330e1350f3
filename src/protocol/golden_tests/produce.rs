//! Produce (API key 0): ProduceRequest.json, ProduceResponse.json.
//! Valid versions 0-11, flexible 9+. `Records` is nullable `records`, i.e.
//! on the wire plain nullable bytes; the tests use an opaque 4-byte string.

use bytes::Bytes;

use super::check;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use crate::protocol::messages::{ProduceRequest, ProduceResponse};

#[rustfmt::skip]
const RECORDS: &[u8] = &[0xde, 0xad, 0xbe, 0xef];

// ProduceRequest v3 (not flexible: 3 < 9)
//   TransactionalId nullable string (3+), null -> ff ff
//   Acks            int16 -1                  -> ff ff
//   TimeoutMs       int32 30000 (0x7530)      -> 00 00 75 30
//   TopicData       array, int32 count 1      -> 00 00 00 01
//     Name          string "t1"               -> 00 02 74 31
//     PartitionData array, count 2            -> 00 00 00 02
//       [0] Index   int32 0                   -> 00 00 00 00
//           Records nullable bytes, len 4     -> 00 00 00 04 de ad be ef
//       [1] Index   int32 1                   -> 00 00 00 01
//           Records null                      -> ff ff ff ff
#[rustfmt::skip]
const PRODUCE_REQUEST_V3: &[u8] = &[
    0xff, 0xff, // TransactionalId null
    0xff, 0xff, // Acks -1
    0x00, 0x00, 0x75, 0x30, // TimeoutMs 30000
    0x00, 0x00, 0x00, 0x01, // TopicData count 1
    0x00, 0x02, 0x74, 0x31, // Name "t1"
    0x00, 0x00, 0x00, 0x02, // PartitionData count 2
    0x00, 0x00, 0x00, 0x00, // Index 0
    0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Records
    0x00, 0x00, 0x00, 0x01, // Index 1
    0xff, 0xff, 0xff, 0xff, // Records null
];

#[test]
fn produce_request_v3() {
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30000,
        topic_data: vec![TopicProduceData {
            name: "t1".into(),
            partition_data: vec![
                PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from_static(RECORDS)),
                    ..Default::default()
                },
                PartitionProduceData {
                    index: 1,
                    records: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 3, PRODUCE_REQUEST_V3);
}

// ProduceRequest v9 (flexible: 9 >= 9)
//   TransactionalId compact nullable string "tx" -> 03 74 78
//   Acks            int16 1                      -> 00 01
//   TimeoutMs       int32 1500 (0x05dc)          -> 00 00 05 dc
//   TopicData       compact array, 1 element     -> 02
//     Name          compact string "t1"          -> 03 74 31
//     PartitionData compact array, 1 element     -> 02
//       Index       int32 2                      -> 00 00 00 02
//       Records     compact nullable bytes, len 4 -> 05 de ad be ef
//       tagged fields none                       -> 00
//     tagged fields none                         -> 00
//   tagged fields   none                         -> 00
#[rustfmt::skip]
const PRODUCE_REQUEST_V9: &[u8] = &[
    0x03, 0x74, 0x78, // TransactionalId "tx"
    0x00, 0x01, // Acks 1
    0x00, 0x00, 0x05, 0xdc, // TimeoutMs 1500
    0x02, // TopicData: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x02, // PartitionData: 1 element
    0x00, 0x00, 0x00, 0x02, // Index 2
    0x05, 0xde, 0xad, 0xbe, 0xef, // Records
    0x00, // partition tagged fields
    0x00, // topic tagged fields
    0x00, // tagged fields
];

#[test]
fn produce_request_v9() {
    let req = ProduceRequest {
        transactional_id: Some("tx".into()),
        acks: 1,
        timeout_ms: 1500,
        topic_data: vec![TopicProduceData {
            name: "t1".into(),
            partition_data: vec![PartitionProduceData {
                index: 2,
                records: Some(Bytes::from_static(RECORDS)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 9, PRODUCE_REQUEST_V9);
}

// ProduceResponse v3 (not flexible)
//   Responses array, count 1                   -> 00 00 00 01
//     Name    string "t1"                      -> 00 02 74 31
//     PartitionResponses array, count 1        -> 00 00 00 01
//       Index           int32 0                -> 00 00 00 00
//       ErrorCode       int16 0                -> 00 00
//       BaseOffset      int64 1000 (0x3e8)     -> 00 00 00 00 00 00 03 e8
//       LogAppendTimeMs int64 (2+) 1700000000000 (0x018b_cfe5_6800)
//                                              -> 00 00 01 8b cf e5 68 00
//       LogStartOffset  versions 5+: absent
//       RecordErrors, ErrorMessage versions 8+: absent
//   ThrottleTimeMs int32 (1+) 10               -> 00 00 00 0a
#[rustfmt::skip]
const PRODUCE_RESPONSE_V3: &[u8] = &[
    0x00, 0x00, 0x00, 0x01, // Responses count 1
    0x00, 0x02, 0x74, 0x31, // Name "t1"
    0x00, 0x00, 0x00, 0x01, // PartitionResponses count 1
    0x00, 0x00, 0x00, 0x00, // Index 0
    0x00, 0x00, // ErrorCode 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // BaseOffset 1000
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // LogAppendTimeMs
    0x00, 0x00, 0x00, 0x0a, // ThrottleTimeMs 10
];

#[test]
fn produce_response_v3() {
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t1".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: 0,
                base_offset: 1000,
                log_append_time_ms: 1_700_000_000_000,
                ..Default::default()
            }],
            ..Default::default()
        }],
        throttle_time_ms: 10,
        ..Default::default()
    };
    check(&resp, 3, PRODUCE_RESPONSE_V3);
}

// ProduceResponse v9 (flexible)
//   Responses compact array, 1 element         -> 02
//     Name    compact string "t1"              -> 03 74 31
//     PartitionResponses compact array, 1      -> 02
//       Index           int32 0                -> 00 00 00 00
//       ErrorCode       int16 87 (INVALID_RECORD) -> 00 57
//       BaseOffset      int64 -1               -> ff ff ff ff ff ff ff ff
//       LogAppendTimeMs int64 -1               -> ff ff ff ff ff ff ff ff
//       LogStartOffset  int64 12               -> 00 00 00 00 00 00 00 0c
//       RecordErrors    compact array, 1 element -> 02
//         BatchIndex    int32 3                -> 00 00 00 03
//         BatchIndexErrorMessage compact nullable string, null -> 00
//         tagged fields none                   -> 00
//       ErrorMessage    compact nullable string "bad" -> 04 62 61 64
//       CurrentLeader   tagged, versions 10+: absent
//       tagged fields   none                   -> 00
//     tagged fields none                       -> 00
//   ThrottleTimeMs int32 0                     -> 00 00 00 00
//   NodeEndpoints  tagged, versions 10+: absent
//   tagged fields  none                        -> 00
#[rustfmt::skip]
const PRODUCE_RESPONSE_V9: &[u8] = &[
    0x02, // Responses: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x02, // PartitionResponses: 1 element
    0x00, 0x00, 0x00, 0x00, // Index 0
    0x00, 0x57, // ErrorCode 87
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // BaseOffset -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogAppendTimeMs -1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, // LogStartOffset 12
    0x02, // RecordErrors: 1 element
    0x00, 0x00, 0x00, 0x03, // BatchIndex 3
    0x00, // BatchIndexErrorMessage null
    0x00, // tagged fields
    0x04, 0x62, 0x61, 0x64, // ErrorMessage "bad"
    0x00, // partition tagged fields
    0x00, // topic tagged fields
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs 0
    0x00, // tagged fields
];

#[test]
fn produce_response_v9() {
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t1".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: 87,
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: 12,
                record_errors: vec![BatchIndexAndErrorMessage {
                    batch_index: 3,
                    batch_index_error_message: None,
                    ..Default::default()
                }],
                error_message: Some("bad".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        throttle_time_ms: 0,
        ..Default::default()
    };
    check(&resp, 9, PRODUCE_RESPONSE_V9);
}

// ProduceResponse v10 (flexible) with both tagged fields set
//   Responses compact array, 1 element         -> 02
//     Name    compact string "t1"              -> 03 74 31
//     PartitionResponses compact array, 1      -> 02
//       Index           int32 0                -> 00 00 00 00
//       ErrorCode       int16 6 (NOT_LEADER_OR_FOLLOWER) -> 00 06
//       BaseOffset      int64 -1               -> ff x 8
//       LogAppendTimeMs int64 -1               -> ff x 8
//       LogStartOffset  int64 -1               -> ff x 8
//       RecordErrors    compact array, empty   -> 01
//       ErrorMessage    null                   -> 00
//       tagged fields   1                      -> 01
//         tag 0 CurrentLeader, size 9 (4 + 4 + 1) -> 00 09
//           LeaderId    int32 2                -> 00 00 00 02
//           LeaderEpoch int32 7                -> 00 00 00 07
//           tagged fields none                 -> 00
//     tagged fields none                       -> 00
//   ThrottleTimeMs int32 0                     -> 00 00 00 00
//   tagged fields  1                           -> 01
//     tag 0 NodeEndpoints, size 14 (1 + 4 + 3 + 4 + 1 + 1) -> 00 0e
//       compact array, 1 element               -> 02
//         NodeId int32 2                       -> 00 00 00 02
//         Host   compact string "k2"           -> 03 6b 32
//         Port   int32 9093                    -> 00 00 23 85
//         Rack   compact nullable string, null -> 00
//         tagged fields none                   -> 00
#[rustfmt::skip]
const PRODUCE_RESPONSE_V10: &[u8] = &[
    0x02, // Responses: 1 element
    0x03, 0x74, 0x31, // Name "t1"
    0x02, // PartitionResponses: 1 element
    0x00, 0x00, 0x00, 0x00, // Index 0
    0x00, 0x06, // ErrorCode 6
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // BaseOffset -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogAppendTimeMs -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // LogStartOffset -1
    0x01, // RecordErrors: empty
    0x00, // ErrorMessage null
    0x01, // 1 tagged field
    0x00, 0x09, // tag 0 (CurrentLeader), size 9
    0x00, 0x00, 0x00, 0x02, // LeaderId 2
    0x00, 0x00, 0x00, 0x07, // LeaderEpoch 7
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs 0
    0x01, // 1 tagged field
    0x00, 0x0e, // tag 0 (NodeEndpoints), size 14
    0x02, // 1 element
    0x00, 0x00, 0x00, 0x02, // NodeId 2
    0x03, 0x6b, 0x32, // Host "k2"
    0x00, 0x00, 0x23, 0x85, // Port 9093
    0x00, // Rack null
    0x00, // tagged fields
];

#[test]
fn produce_response_v10_with_tagged_fields() {
    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t1".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: 6,
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: -1,
                record_errors: vec![],
                error_message: None,
                current_leader: LeaderIdAndEpoch {
                    leader_id: 2,
                    leader_epoch: 7,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        throttle_time_ms: 0,
        node_endpoints: vec![NodeEndpoint {
            node_id: 2,
            host: "k2".into(),
            port: 9093,
            rack: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 10, PRODUCE_RESPONSE_V10);
}
