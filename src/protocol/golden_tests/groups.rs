//! Group coordination: FindCoordinator (API key 10, versions 0-5, flexible
//! 3+), JoinGroup (11, 0-9, flexible 6+), SyncGroup (14, 0-5, flexible 4+)
//! and Heartbeat (12, 0-4, flexible 4+).

use bytes::Bytes;

use super::check;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use crate::protocol::messages::join_group_response::JoinGroupResponseMember;
use crate::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use crate::protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

#[rustfmt::skip]
const METADATA: &[u8] = &[0x01, 0x02, 0x03];

// FindCoordinatorRequest v4 (flexible: 4 >= 3)
//   Key             versions 0-3: absent
//   KeyType         int8 0 (group)                          -> 00
//   CoordinatorKeys compact array of compact string, 2 elements -> 03
//     "g1"          compact string len 2                    -> 03 67 31
//     "g2"          compact string len 2                    -> 03 67 32
//   tagged fields   none                                    -> 00
#[rustfmt::skip]
const FIND_COORDINATOR_REQUEST_V4: &[u8] = &[0x00, 0x03, 0x03, 0x67, 0x31, 0x03, 0x67, 0x32, 0x00];

#[test]
fn find_coordinator_request_v4() {
    let req = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: vec!["g1".into(), "g2".into()],
        ..Default::default()
    };
    check(&req, 4, FIND_COORDINATOR_REQUEST_V4);
}

// FindCoordinatorResponse v4 (flexible)
//   ThrottleTimeMs int32 0                       -> 00 00 00 00
//   ErrorCode, ErrorMessage, NodeId, Host, Port  versions 0-3 / 1-3: absent
//   Coordinators compact array, 2 elements       -> 03
//     [0] Key          compact string "g1"       -> 03 67 31
//         NodeId       int32 1                   -> 00 00 00 01
//         Host         compact string "k1"       -> 03 6b 31
//         Port         int32 9092                -> 00 00 23 84
//         ErrorCode    int16 0                   -> 00 00
//         ErrorMessage compact nullable string, null -> 00
//         tagged fields none                     -> 00
//     [1] Key          compact string "g2"       -> 03 67 32
//         NodeId       int32 -1                  -> ff ff ff ff
//         Host         compact string ""         -> 01
//         Port         int32 -1                  -> ff ff ff ff
//         ErrorCode    int16 15 (COORDINATOR_NOT_AVAILABLE) -> 00 0f
//         ErrorMessage compact nullable string "na" -> 03 6e 61
//         tagged fields none                     -> 00
//   tagged fields none                           -> 00
#[rustfmt::skip]
const FIND_COORDINATOR_RESPONSE_V4: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x03, // Coordinators: 2 elements
    0x03, 0x67, 0x31, // Key "g1"
    0x00, 0x00, 0x00, 0x01, // NodeId 1
    0x03, 0x6b, 0x31, // Host "k1"
    0x00, 0x00, 0x23, 0x84, // Port 9092
    0x00, 0x00, // ErrorCode 0
    0x00, // ErrorMessage null
    0x00, // tagged fields
    0x03, 0x67, 0x32, // Key "g2"
    0xff, 0xff, 0xff, 0xff, // NodeId -1
    0x01, // Host ""
    0xff, 0xff, 0xff, 0xff, // Port -1
    0x00, 0x0f, // ErrorCode 15
    0x03, 0x6e, 0x61, // ErrorMessage "na"
    0x00, // tagged fields
    0x00, // tagged fields
];

#[test]
fn find_coordinator_response_v4() {
    let resp = FindCoordinatorResponse {
        throttle_time_ms: 0,
        coordinators: vec![
            Coordinator {
                key: "g1".into(),
                node_id: 1,
                host: "k1".into(),
                port: 9092,
                error_code: 0,
                error_message: None,
                ..Default::default()
            },
            Coordinator {
                key: "g2".into(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code: 15,
                error_message: Some("na".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 4, FIND_COORDINATOR_RESPONSE_V4);
}

// JoinGroupRequest v5 (not flexible: 5 < 6)
//   GroupId            string "g1"               -> 00 02 67 31
//   SessionTimeoutMs   int32 45000 (0xafc8)      -> 00 00 af c8
//   RebalanceTimeoutMs int32 300000 (0x493e0)    -> 00 04 93 e0
//   MemberId           string ""                 -> 00 00
//   GroupInstanceId    nullable string (5+), null -> ff ff
//   ProtocolType       string "consumer", len 8  -> 00 08 63 6f 6e 73 75 6d 65 72
//   Protocols          array, int32 count 2      -> 00 00 00 02
//     [0] Name         string "range"            -> 00 05 72 61 6e 67 65
//         Metadata     bytes, int32 len 3        -> 00 00 00 03 01 02 03
//     [1] Name         string "sticky"           -> 00 06 73 74 69 63 6b 79
//         Metadata     bytes, empty              -> 00 00 00 00
//   Reason             versions 8+: absent
#[rustfmt::skip]
const JOIN_GROUP_REQUEST_V5: &[u8] = &[
    0x00, 0x02, 0x67, 0x31, // GroupId "g1"
    0x00, 0x00, 0xaf, 0xc8, // SessionTimeoutMs 45000
    0x00, 0x04, 0x93, 0xe0, // RebalanceTimeoutMs 300000
    0x00, 0x00, // MemberId ""
    0xff, 0xff, // GroupInstanceId null
    0x00, 0x08, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, // "consumer"
    0x00, 0x00, 0x00, 0x02, // Protocols count 2
    0x00, 0x05, 0x72, 0x61, 0x6e, 0x67, 0x65, // Name "range"
    0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, // Metadata
    0x00, 0x06, 0x73, 0x74, 0x69, 0x63, 0x6b, 0x79, // Name "sticky"
    0x00, 0x00, 0x00, 0x00, // Metadata empty
];

#[test]
fn join_group_request_v5() {
    let req = JoinGroupRequest {
        group_id: "g1".into(),
        session_timeout_ms: 45000,
        rebalance_timeout_ms: 300_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![
            JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(METADATA),
                ..Default::default()
            },
            JoinGroupRequestProtocol {
                name: "sticky".into(),
                metadata: Bytes::new(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&req, 5, JOIN_GROUP_REQUEST_V5);
}

// JoinGroupResponse v5 (not flexible)
//   ThrottleTimeMs int32 0                       -> 00 00 00 00
//   ErrorCode      int16 0                       -> 00 00
//   GenerationId   int32 1                       -> 00 00 00 01
//   ProtocolType   versions 7+: absent
//   ProtocolName   string (nullable only 7+) "range" -> 00 05 72 61 6e 67 65
//   Leader         string "m1"                   -> 00 02 6d 31
//   SkipAssignment versions 9+: absent
//   MemberId       string "m1"                   -> 00 02 6d 31
//   Members        array, count 2                -> 00 00 00 02
//     [0] MemberId        string "m1"            -> 00 02 6d 31
//         GroupInstanceId nullable string "i1"   -> 00 02 69 31
//         Metadata        bytes, len 3           -> 00 00 00 03 01 02 03
//     [1] MemberId        string "m2"            -> 00 02 6d 32
//         GroupInstanceId null                   -> ff ff
//         Metadata        bytes, empty           -> 00 00 00 00
#[rustfmt::skip]
const JOIN_GROUP_RESPONSE_V5: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x01, // GenerationId 1
    0x00, 0x05, 0x72, 0x61, 0x6e, 0x67, 0x65, // ProtocolName "range"
    0x00, 0x02, 0x6d, 0x31, // Leader "m1"
    0x00, 0x02, 0x6d, 0x31, // MemberId "m1"
    0x00, 0x00, 0x00, 0x02, // Members count 2
    0x00, 0x02, 0x6d, 0x31, // MemberId "m1"
    0x00, 0x02, 0x69, 0x31, // GroupInstanceId "i1"
    0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, // Metadata
    0x00, 0x02, 0x6d, 0x32, // MemberId "m2"
    0xff, 0xff, // GroupInstanceId null
    0x00, 0x00, 0x00, 0x00, // Metadata empty
];

#[test]
fn join_group_response_v5() {
    let resp = JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: 0,
        generation_id: 1,
        protocol_name: Some("range".into()),
        leader: "m1".into(),
        member_id: "m1".into(),
        members: vec![
            JoinGroupResponseMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                metadata: Bytes::from_static(METADATA),
                ..Default::default()
            },
            JoinGroupResponseMember {
                member_id: "m2".into(),
                group_instance_id: None,
                metadata: Bytes::new(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 5, JOIN_GROUP_RESPONSE_V5);
}

// JoinGroupRequest v9 (flexible: 9 >= 6)
//   GroupId            compact string "g1"       -> 03 67 31
//   SessionTimeoutMs   int32 45000               -> 00 00 af c8
//   RebalanceTimeoutMs int32 300000              -> 00 04 93 e0
//   MemberId           compact string "m1"       -> 03 6d 31
//   GroupInstanceId    compact nullable string "i1" -> 03 69 31
//   ProtocolType       compact string "consumer" -> 09 63 6f 6e 73 75 6d 65 72
//   Protocols          compact array, 1 element  -> 02
//     Name             compact string "range"    -> 06 72 61 6e 67 65
//     Metadata         compact bytes, len 3      -> 04 01 02 03
//     tagged fields    none                      -> 00
//   Reason             compact nullable string (8+) "rejoin" -> 07 72 65 6a 6f 69 6e
//   tagged fields      none                      -> 00
#[rustfmt::skip]
const JOIN_GROUP_REQUEST_V9: &[u8] = &[
    0x03, 0x67, 0x31, // GroupId "g1"
    0x00, 0x00, 0xaf, 0xc8, // SessionTimeoutMs 45000
    0x00, 0x04, 0x93, 0xe0, // RebalanceTimeoutMs 300000
    0x03, 0x6d, 0x31, // MemberId "m1"
    0x03, 0x69, 0x31, // GroupInstanceId "i1"
    0x09, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, // "consumer"
    0x02, // Protocols: 1 element
    0x06, 0x72, 0x61, 0x6e, 0x67, 0x65, // Name "range"
    0x04, 0x01, 0x02, 0x03, // Metadata
    0x00, // tagged fields
    0x07, 0x72, 0x65, 0x6a, 0x6f, 0x69, 0x6e, // Reason "rejoin"
    0x00, // tagged fields
];

#[test]
fn join_group_request_v9() {
    let req = JoinGroupRequest {
        group_id: "g1".into(),
        session_timeout_ms: 45000,
        rebalance_timeout_ms: 300_000,
        member_id: "m1".into(),
        group_instance_id: Some("i1".into()),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(METADATA),
            ..Default::default()
        }],
        reason: Some("rejoin".into()),
        ..Default::default()
    };
    check(&req, 9, JOIN_GROUP_REQUEST_V9);
}

// JoinGroupResponse v9 (flexible)
//   ThrottleTimeMs int32 0                       -> 00 00 00 00
//   ErrorCode      int16 0                       -> 00 00
//   GenerationId   int32 2                       -> 00 00 00 02
//   ProtocolType   compact nullable string "consumer" -> 09 63 6f 6e 73 75 6d 65 72
//   ProtocolName   compact nullable string "range" -> 06 72 61 6e 67 65
//   Leader         compact string "m1"           -> 03 6d 31
//   SkipAssignment bool true                     -> 01
//   MemberId       compact string "m1"           -> 03 6d 31
//   Members        compact array, 1 element      -> 02
//     MemberId        compact string "m1"        -> 03 6d 31
//     GroupInstanceId compact nullable string, null -> 00
//     Metadata        compact bytes, len 3       -> 04 01 02 03
//     tagged fields   none                       -> 00
//   tagged fields  none                          -> 00
#[rustfmt::skip]
const JOIN_GROUP_RESPONSE_V9: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x02, // GenerationId 2
    0x09, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, // ProtocolType "consumer"
    0x06, 0x72, 0x61, 0x6e, 0x67, 0x65, // ProtocolName "range"
    0x03, 0x6d, 0x31, // Leader "m1"
    0x01, // SkipAssignment true
    0x03, 0x6d, 0x31, // MemberId "m1"
    0x02, // Members: 1 element
    0x03, 0x6d, 0x31, // MemberId "m1"
    0x00, // GroupInstanceId null
    0x04, 0x01, 0x02, 0x03, // Metadata
    0x00, // tagged fields
    0x00, // tagged fields
];

#[test]
fn join_group_response_v9() {
    let resp = JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: 0,
        generation_id: 2,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        leader: "m1".into(),
        skip_assignment: true,
        member_id: "m1".into(),
        members: vec![JoinGroupResponseMember {
            member_id: "m1".into(),
            group_instance_id: None,
            metadata: Bytes::from_static(METADATA),
            ..Default::default()
        }],
        ..Default::default()
    };
    check(&resp, 9, JOIN_GROUP_RESPONSE_V9);
}

// SyncGroupRequest v5 (flexible: 5 >= 4)
//   GroupId         compact string "g1"          -> 03 67 31
//   GenerationId    int32 2                      -> 00 00 00 02
//   MemberId        compact string "m1"          -> 03 6d 31
//   GroupInstanceId compact nullable string, null -> 00
//   ProtocolType    compact nullable string "consumer" -> 09 63 6f 6e 73 75 6d 65 72
//   ProtocolName    compact nullable string "range" -> 06 72 61 6e 67 65
//   Assignments     compact array, 2 elements    -> 03
//     [0] MemberId   compact string "m1"         -> 03 6d 31
//         Assignment compact bytes, len 2        -> 03 0a 0b
//         tagged fields none                     -> 00
//     [1] MemberId   compact string "m2"         -> 03 6d 32
//         Assignment compact bytes, empty        -> 01
//         tagged fields none                     -> 00
//   tagged fields   none                         -> 00
#[rustfmt::skip]
const SYNC_GROUP_REQUEST_V5: &[u8] = &[
    0x03, 0x67, 0x31, // GroupId "g1"
    0x00, 0x00, 0x00, 0x02, // GenerationId 2
    0x03, 0x6d, 0x31, // MemberId "m1"
    0x00, // GroupInstanceId null
    0x09, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, // ProtocolType "consumer"
    0x06, 0x72, 0x61, 0x6e, 0x67, 0x65, // ProtocolName "range"
    0x03, // Assignments: 2 elements
    0x03, 0x6d, 0x31, 0x03, 0x0a, 0x0b, 0x00, // "m1", [0a 0b], no tags
    0x03, 0x6d, 0x32, 0x01, 0x00, // "m2", [], no tags
    0x00, // tagged fields
];

#[test]
fn sync_group_request_v5() {
    let req = SyncGroupRequest {
        group_id: "g1".into(),
        generation_id: 2,
        member_id: "m1".into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: vec![
            SyncGroupRequestAssignment {
                member_id: "m1".into(),
                assignment: Bytes::from_static(&[0x0a, 0x0b]),
                ..Default::default()
            },
            SyncGroupRequestAssignment {
                member_id: "m2".into(),
                assignment: Bytes::new(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&req, 5, SYNC_GROUP_REQUEST_V5);
}

// SyncGroupResponse v5 (flexible)
//   ThrottleTimeMs int32 0                       -> 00 00 00 00
//   ErrorCode      int16 0                       -> 00 00
//   ProtocolType   compact nullable string, null -> 00
//   ProtocolName   compact nullable string "range" -> 06 72 61 6e 67 65
//   Assignment     compact bytes, len 2          -> 03 0a 0b
//   tagged fields  none                          -> 00
#[rustfmt::skip]
const SYNC_GROUP_RESPONSE_V5: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, // ErrorCode
    0x00, // ProtocolType null
    0x06, 0x72, 0x61, 0x6e, 0x67, 0x65, // ProtocolName "range"
    0x03, 0x0a, 0x0b, // Assignment
    0x00, // tagged fields
];

#[test]
fn sync_group_response_v5() {
    let resp = SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: 0,
        protocol_type: None,
        protocol_name: Some("range".into()),
        assignment: Bytes::from_static(&[0x0a, 0x0b]),
        ..Default::default()
    };
    check(&resp, 5, SYNC_GROUP_RESPONSE_V5);
}

// HeartbeatRequest v4 (flexible: 4 >= 4)
//   GroupId         compact string "g1"          -> 03 67 31
//   GenerationId    int32 2                      -> 00 00 00 02
//   MemberId        compact string "m1"          -> 03 6d 31
//   GroupInstanceId compact nullable string "i1" -> 03 69 31
//   tagged fields   none                         -> 00
#[rustfmt::skip]
const HEARTBEAT_REQUEST_V4: &[u8] = &[
    0x03, 0x67, 0x31, 0x00, 0x00, 0x00, 0x02, 0x03, 0x6d, 0x31, 0x03, 0x69, 0x31, 0x00,
];

// HeartbeatResponse v4 (flexible)
//   ThrottleTimeMs int32 0                       -> 00 00 00 00
//   ErrorCode      int16 27 (REBALANCE_IN_PROGRESS) -> 00 1b
//   tagged fields  none                          -> 00
#[rustfmt::skip]
const HEARTBEAT_RESPONSE_V4: &[u8] = &[0x00, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x00];

#[test]
fn heartbeat_v4() {
    let req = HeartbeatRequest {
        group_id: "g1".into(),
        generation_id: 2,
        member_id: "m1".into(),
        group_instance_id: Some("i1".into()),
        ..Default::default()
    };
    check(&req, 4, HEARTBEAT_REQUEST_V4);

    let resp = HeartbeatResponse {
        throttle_time_ms: 0,
        error_code: 27,
        ..Default::default()
    };
    check(&resp, 4, HEARTBEAT_RESPONSE_V4);
}
