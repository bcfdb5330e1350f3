//! Encoding boundaries the per-API files do not reach: multi-byte unsigned
//! varints (lengths, counts, tags and tagged-field sizes of 128 and more),
//! unknown tagged fields and a tagged struct replacing a regular field.
//! Long runs of identical bytes are spelled with `concat` of byte arrays;
//! every prefix is still written out by hand.

use bytes::Bytes;

use super::check;
use crate::protocol::messages::api_versions_response::SupportedFeatureKey;
use crate::protocol::messages::fetch_request::ReplicaState;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FindCoordinatorRequest, ProduceRequest,
    ResponseHeader,
};
use crate::protocol::primitives::RawTaggedField;

// ApiVersionsRequest v3, a 127-byte ClientSoftwareName
//   ClientSoftwareName    compact string, len 127: varint(128) = 80 01, then 127 x 61 ('a')
//   ClientSoftwareVersion compact string "1"        -> 02 31
//   tagged fields         none                      -> 00
#[test]
fn api_versions_request_v3_two_byte_string_length() {
    let golden = [&[0x80, 0x01][..], &[0x61; 127], &[0x02, 0x31, 0x00]].concat();
    assert_eq!(golden.len(), 132);
    let req = ApiVersionsRequest {
        client_software_name: "a".repeat(127),
        client_software_version: "1".into(),
        ..Default::default()
    };
    check(&req, 3, &golden);
}

// ProduceRequest v9, 200 bytes of records
//   TransactionalId null                          -> 00
//   Acks            int16 -1                      -> ff ff
//   TimeoutMs       int32 1000                    -> 00 00 03 e8
//   TopicData       compact array, 1 element      -> 02
//     Name          compact string "t1"           -> 03 74 31
//     PartitionData compact array, 1 element      -> 02
//       Index       int32 0                       -> 00 00 00 00
//       Records     compact bytes, len 200: varint(201) = c9 01
//                   (201 = 0b1_1001001: low 7 bits 0x49 | 0x80 = c9, then 01), 200 x 5a
//       tagged fields none                        -> 00
//     tagged fields none                          -> 00
//   tagged fields none                            -> 00
#[test]
fn produce_request_v9_two_byte_bytes_length() {
    let golden = [
        &[
            0x00, 0xff, 0xff, 0x00, 0x00, 0x03, 0xe8, 0x02, 0x03, 0x74, 0x31, 0x02,
        ][..],
        &[0x00, 0x00, 0x00, 0x00, 0xc9, 0x01],
        &[0x5a; 200],
        &[0x00, 0x00, 0x00],
    ]
    .concat();
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t1".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[0x5a; 200])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&req, 9, &golden);
}

// FindCoordinatorRequest v4 with 127 keys
//   KeyType         int8 0                       -> 00
//   CoordinatorKeys compact array, 127 elements: varint(128) = 80 01
//     each "g"      compact string len 1         -> 02 67
//   tagged fields   none                         -> 00
#[test]
fn find_coordinator_request_v4_two_byte_array_count() {
    let keys: Vec<u8> = [0x02, 0x67].repeat(127);
    let golden = [&[0x00, 0x80, 0x01][..], &keys, &[0x00]].concat();
    let req = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: vec!["g".to_string(); 127],
        ..Default::default()
    };
    check(&req, 4, &golden);
}

// ApiVersionsResponse v3 whose tagged field is 138 bytes long
//   ErrorCode      int16 0                        -> 00 00
//   ApiKeys        compact array, empty           -> 01
//   ThrottleTimeMs int32 0                        -> 00 00 00 00
//   tagged fields  1                              -> 01
//     tag 0 SupportedFeatures                     -> 00
//     size 138 = 1 (array) + 2 (name length) + 130 (name) + 2 + 2 + 1 (tags)
//          varint(138) = 8a 01
//     compact array, 1 element                    -> 02
//       Name       compact string, len 130: varint(131) = 83 01, then 130 x 66 ('f')
//       MinVersion int16 1                        -> 00 01
//       MaxVersion int16 2                        -> 00 02
//       tagged fields none                        -> 00
#[test]
fn api_versions_response_v3_two_byte_tagged_field_size() {
    let golden = [
        &[0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01][..],
        &[0x00, 0x8a, 0x01, 0x02, 0x83, 0x01],
        &[0x66; 130],
        &[0x00, 0x01, 0x00, 0x02, 0x00],
    ]
    .concat();
    let resp = ApiVersionsResponse {
        supported_features: vec![SupportedFeatureKey {
            name: "f".repeat(130),
            min_version: 1,
            max_version: 2,
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 3, &golden);
}

// ResponseHeader v1 carrying a tagged field klamm does not know
//   CorrelationId int32 7                         -> 00 00 00 07
//   tagged fields 1                               -> 01
//     tag 200: varint(200) = c8 01; size 1        -> 01
//     data                                        -> ab
#[rustfmt::skip]
const RESPONSE_HEADER_V1_UNKNOWN_TAG: &[u8] = &[0x00, 0x00, 0x00, 0x07, 0x01, 0xc8, 0x01, 0x01, 0xab];

#[test]
fn response_header_v1_unknown_tagged_field() {
    let h = ResponseHeader {
        correlation_id: 7,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 200,
            data: Bytes::from_static(&[0xab]),
        }],
    };
    check(&h, 1, RESPONSE_HEADER_V1_UNKNOWN_TAG);
}

// ApiVersionsResponse v3 with a known tagged field followed by an unknown one
//   ErrorCode      int16 0                        -> 00 00
//   ApiKeys        compact array, empty           -> 01
//   ThrottleTimeMs int32 0                        -> 00 00 00 00
//   tagged fields  2 (ascending tags)             -> 02
//     tag 1 FinalizedFeaturesEpoch, size 8, int64 7 -> 01 08 00 00 00 00 00 00 00 07
//     tag 9 (unknown), size 2                     -> 09 02 ca fe
#[rustfmt::skip]
const API_VERSIONS_RESPONSE_V3_UNKNOWN_TAG: &[u8] = &[
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // ErrorCode, ApiKeys, ThrottleTimeMs
    0x02, // 2 tagged fields
    0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // tag 1: epoch 7
    0x09, 0x02, 0xca, 0xfe, // tag 9: unknown
];

#[test]
fn api_versions_response_v3_known_and_unknown_tagged_fields() {
    let resp = ApiVersionsResponse {
        finalized_features_epoch: 7,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 9,
            data: Bytes::from_static(&[0xca, 0xfe]),
        }],
        ..Default::default()
    };
    check(&resp, 3, API_VERSIONS_RESPONSE_V3_UNKNOWN_TAG);
}

// FetchRequest v15: ReplicaId (versions 0-14) is gone, replaced by the
// ReplicaState tagged struct (tag 1, versions 15+)
//   MaxWaitMs           int32 500                 -> 00 00 01 f4
//   MinBytes            int32 1                   -> 00 00 00 01
//   MaxBytes            int32 0x7fffffff          -> 7f ff ff ff
//   IsolationLevel      int8 0                    -> 00
//   SessionId           int32 0                   -> 00 00 00 00
//   SessionEpoch        int32 -1                  -> ff ff ff ff
//   Topics              compact array, empty      -> 01
//   ForgottenTopicsData compact array, empty      -> 01
//   RackId              compact string ""         -> 01
//   tagged fields       1                         -> 01
//     tag 1 ReplicaState, size 13 (4 + 8 + 1)     -> 01 0d
//       ReplicaId    int32 3                      -> 00 00 00 03
//       ReplicaEpoch int64 9                      -> 00 00 00 00 00 00 00 09
//       tagged fields none                        -> 00
#[rustfmt::skip]
const FETCH_REQUEST_V15_REPLICA_STATE: &[u8] = &[
    0x00, 0x00, 0x01, 0xf4, // MaxWaitMs 500
    0x00, 0x00, 0x00, 0x01, // MinBytes 1
    0x7f, 0xff, 0xff, 0xff, // MaxBytes
    0x00, // IsolationLevel
    0x00, 0x00, 0x00, 0x00, // SessionId 0
    0xff, 0xff, 0xff, 0xff, // SessionEpoch -1
    0x01, // Topics: empty
    0x01, // ForgottenTopicsData: empty
    0x01, // RackId ""
    0x01, // 1 tagged field
    0x01, 0x0d, // tag 1 (ReplicaState), size 13
    0x00, 0x00, 0x00, 0x03, // ReplicaId 3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // ReplicaEpoch 9
    0x00, // tagged fields
];

#[test]
fn fetch_request_v15_replica_state() {
    let req = FetchRequest {
        replica_state: ReplicaState {
            replica_id: 3,
            replica_epoch: 9,
            ..Default::default()
        },
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: i32::MAX,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        ..Default::default()
    };
    check(&req, 15, FETCH_REQUEST_V15_REPLICA_STATE);
}
