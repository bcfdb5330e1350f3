//! CreateTopics (API key 19, versions 0-7, flexible 5+) and InitProducerId
//! (API key 22, versions 0-5, flexible 2+).

use super::check;
use crate::protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use crate::protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use crate::protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, InitProducerIdRequest, InitProducerIdResponse,
};

// CreateTopicsRequest v5 (flexible: 5 >= 5)
//   Topics compact array, 2 elements                 -> 03
//     [0] Name              compact string "t1"      -> 03 74 31
//         NumPartitions     int32 3                  -> 00 00 00 03
//         ReplicationFactor int16 2                  -> 00 02
//         Assignments       compact array, empty     -> 01
//         Configs           compact array, 2 elements -> 03
//           [0] Name  compact string "cleanup.policy", len 14
//                     -> 0f 63 6c 65 61 6e 75 70 2e 70 6f 6c 69 63 79
//               Value compact nullable string "compact", len 7
//                     -> 08 63 6f 6d 70 61 63 74
//               tagged fields none                   -> 00
//           [1] Name  compact string "retention.ms", len 12
//                     -> 0d 72 65 74 65 6e 74 69 6f 6e 2e 6d 73
//               Value null                           -> 00
//               tagged fields none                   -> 00
//         tagged fields none                         -> 00
//     [1] Name              compact string "t2"      -> 03 74 32
//         NumPartitions     int32 -1                 -> ff ff ff ff
//         ReplicationFactor int16 -1                 -> ff ff
//         Assignments       compact array, 2 elements -> 03
//           [0] PartitionIndex int32 0               -> 00 00 00 00
//               BrokerIds      compact array of int32 [1, 2] -> 03 00 00 00 01 00 00 00 02
//               tagged fields  none                  -> 00
//           [1] PartitionIndex int32 1               -> 00 00 00 01
//               BrokerIds      compact array of int32 [2, 1] -> 03 00 00 00 02 00 00 00 01
//               tagged fields  none                  -> 00
//         Configs           compact array, empty     -> 01
//         tagged fields none                         -> 00
//   timeoutMs    int32 30000 (0x7530)                -> 00 00 75 30
//   validateOnly bool true                           -> 01
//   tagged fields none                               -> 00
#[rustfmt::skip]
const CREATE_TOPICS_REQUEST_V5: &[u8] = &[
    0x03, // Topics: 2 elements
    0x03, 0x74, 0x31, // Name "t1"
    0x00, 0x00, 0x00, 0x03, // NumPartitions 3
    0x00, 0x02, // ReplicationFactor 2
    0x01, // Assignments: empty
    0x03, // Configs: 2 elements
    0x0f, 0x63, 0x6c, 0x65, 0x61, 0x6e, 0x75, 0x70, 0x2e, 0x70, 0x6f, 0x6c, 0x69, 0x63, 0x79,
    0x08, 0x63, 0x6f, 0x6d, 0x70, 0x61, 0x63, 0x74, // Value "compact"
    0x00, // tagged fields
    0x0d, 0x72, 0x65, 0x74, 0x65, 0x6e, 0x74, 0x69, 0x6f, 0x6e, 0x2e, 0x6d, 0x73,
    0x00, // Value null
    0x00, // tagged fields
    0x00, // topic tagged fields
    0x03, 0x74, 0x32, // Name "t2"
    0xff, 0xff, 0xff, 0xff, // NumPartitions -1
    0xff, 0xff, // ReplicationFactor -1
    0x03, // Assignments: 2 elements
    0x00, 0x00, 0x00, 0x00, // PartitionIndex 0
    0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // BrokerIds [1, 2]
    0x00, // tagged fields
    0x00, 0x00, 0x00, 0x01, // PartitionIndex 1
    0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, // BrokerIds [2, 1]
    0x00, // tagged fields
    0x01, // Configs: empty
    0x00, // topic tagged fields
    0x00, 0x00, 0x75, 0x30, // timeoutMs 30000
    0x01, // validateOnly true
    0x00, // tagged fields
];

#[test]
fn create_topics_request_v5() {
    let req = CreateTopicsRequest {
        topics: vec![
            CreatableTopic {
                name: "t1".into(),
                num_partitions: 3,
                replication_factor: 2,
                assignments: vec![],
                configs: vec![
                    CreatableTopicConfig {
                        name: "cleanup.policy".into(),
                        value: Some("compact".into()),
                        ..Default::default()
                    },
                    CreatableTopicConfig {
                        name: "retention.ms".into(),
                        value: None,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            CreatableTopic {
                name: "t2".into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![
                    CreatableReplicaAssignment {
                        partition_index: 0,
                        broker_ids: [1, 2].into(),
                        ..Default::default()
                    },
                    CreatableReplicaAssignment {
                        partition_index: 1,
                        broker_ids: [2, 1].into(),
                        ..Default::default()
                    },
                ],
                configs: vec![],
                ..Default::default()
            },
        ],
        timeout_ms: 30000,
        validate_only: true,
        ..Default::default()
    };
    check(&req, 5, CREATE_TOPICS_REQUEST_V5);
}

// CreateTopicsResponse v5 (flexible)
//   ThrottleTimeMs int32 0                           -> 00 00 00 00
//   Topics compact array, 2 elements                 -> 03
//     [0] Name              compact string "t1"      -> 03 74 31
//         TopicId           versions 7+: absent
//         ErrorCode         int16 0                  -> 00 00
//         ErrorMessage      compact nullable string, null -> 00
//         NumPartitions     int32 3                  -> 00 00 00 03
//         ReplicationFactor int16 2                  -> 00 02
//         Configs           compact nullable array, 1 element -> 02
//           Name         compact string "cleanup.policy" -> 0f 63 ... 79
//           Value        compact nullable string "compact" -> 08 63 6f 6d 70 61 63 74
//           ReadOnly     bool false                  -> 00
//           ConfigSource int8 1 (DYNAMIC_TOPIC_CONFIG) -> 01
//           IsSensitive  bool false                  -> 00
//           tagged fields none                       -> 00
//         tagged fields: TopicConfigErrorCode (tag 0) at default 0 -> 00
//     [1] Name              compact string "t2"      -> 03 74 32
//         ErrorCode         int16 36 (TOPIC_ALREADY_EXISTS) -> 00 24
//         ErrorMessage      compact nullable string "exists" -> 07 65 78 69 73 74 73
//         NumPartitions     int32 -1                 -> ff ff ff ff
//         ReplicationFactor int16 -1                 -> ff ff
//         Configs           null                     -> 00
//         tagged fields     1                        -> 01
//           tag 0 TopicConfigErrorCode, size 2, int16 29 (TOPIC_AUTHORIZATION_FAILED)
//                                                    -> 00 02 00 1d
//   tagged fields none                               -> 00
#[rustfmt::skip]
const CREATE_TOPICS_RESPONSE_V5: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x03, // Topics: 2 elements
    0x03, 0x74, 0x31, // Name "t1"
    0x00, 0x00, // ErrorCode 0
    0x00, // ErrorMessage null
    0x00, 0x00, 0x00, 0x03, // NumPartitions 3
    0x00, 0x02, // ReplicationFactor 2
    0x02, // Configs: 1 element
    0x0f, 0x63, 0x6c, 0x65, 0x61, 0x6e, 0x75, 0x70, 0x2e, 0x70, 0x6f, 0x6c, 0x69, 0x63, 0x79,
    0x08, 0x63, 0x6f, 0x6d, 0x70, 0x61, 0x63, 0x74, // Value "compact"
    0x00, // ReadOnly false
    0x01, // ConfigSource 1
    0x00, // IsSensitive false
    0x00, // config tagged fields
    0x00, // topic tagged fields: none
    0x03, 0x74, 0x32, // Name "t2"
    0x00, 0x24, // ErrorCode 36
    0x07, 0x65, 0x78, 0x69, 0x73, 0x74, 0x73, // ErrorMessage "exists"
    0xff, 0xff, 0xff, 0xff, // NumPartitions -1
    0xff, 0xff, // ReplicationFactor -1
    0x00, // Configs null
    0x01, // 1 tagged field
    0x00, 0x02, 0x00, 0x1d, // tag 0 (TopicConfigErrorCode), size 2, 29
    0x00, // tagged fields
];

#[test]
fn create_topics_response_v5() {
    let resp = CreateTopicsResponse {
        throttle_time_ms: 0,
        topics: vec![
            CreatableTopicResult {
                name: "t1".into(),
                error_code: 0,
                error_message: None,
                num_partitions: 3,
                replication_factor: 2,
                configs: Some(vec![CreatableTopicConfigs {
                    name: "cleanup.policy".into(),
                    value: Some("compact".into()),
                    read_only: false,
                    config_source: 1,
                    is_sensitive: false,
                    ..Default::default()
                }]),
                ..Default::default()
            },
            CreatableTopicResult {
                name: "t2".into(),
                error_code: 36,
                error_message: Some("exists".into()),
                topic_config_error_code: 29,
                num_partitions: -1,
                replication_factor: -1,
                configs: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 5, CREATE_TOPICS_RESPONSE_V5);
}

// InitProducerIdRequest v4 (flexible: 4 >= 2), transactional producer
//   TransactionalId      compact nullable string "tx" -> 03 74 78
//   TransactionTimeoutMs int32 60000 (0xea60)         -> 00 00 ea 60
//   ProducerId           int64 (3+) 1000 (0x3e8)      -> 00 00 00 00 00 00 03 e8
//   ProducerEpoch        int16 (3+) 5                 -> 00 05
//   tagged fields        none                         -> 00
#[rustfmt::skip]
const INIT_PRODUCER_ID_REQUEST_V4: &[u8] = &[
    0x03, 0x74, 0x78, // TransactionalId "tx"
    0x00, 0x00, 0xea, 0x60, // TransactionTimeoutMs 60000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x05, // ProducerEpoch 5
    0x00, // tagged fields
];

// InitProducerIdRequest v4, idempotent (non-transactional) producer
//   TransactionalId      null                         -> 00
//   TransactionTimeoutMs int32 2147483647             -> 7f ff ff ff
//   ProducerId           int64 -1                     -> ff x 8
//   ProducerEpoch        int16 -1                     -> ff ff
//   tagged fields        none                         -> 00
#[rustfmt::skip]
const INIT_PRODUCER_ID_REQUEST_V4_IDEMPOTENT: &[u8] = &[
    0x00, // TransactionalId null
    0x7f, 0xff, 0xff, 0xff, // TransactionTimeoutMs
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // ProducerId -1
    0xff, 0xff, // ProducerEpoch -1
    0x00, // tagged fields
];

#[test]
fn init_producer_id_request_v4() {
    let req = InitProducerIdRequest {
        transactional_id: Some("tx".into()),
        transaction_timeout_ms: 60000,
        producer_id: 1000,
        producer_epoch: 5,
        ..Default::default()
    };
    check(&req, 4, INIT_PRODUCER_ID_REQUEST_V4);

    let idempotent = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    check(&idempotent, 4, INIT_PRODUCER_ID_REQUEST_V4_IDEMPOTENT);
}

// InitProducerIdResponse v4 (flexible)
//   ThrottleTimeMs int32 0                      -> 00 00 00 00
//   ErrorCode      int16 0                      -> 00 00
//   ProducerId     int64 1000                   -> 00 00 00 00 00 00 03 e8
//   ProducerEpoch  int16 6                      -> 00 06
//   tagged fields  none                         -> 00
#[rustfmt::skip]
const INIT_PRODUCER_ID_RESPONSE_V4: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // ThrottleTimeMs
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x06, // ProducerEpoch 6
    0x00, // tagged fields
];

#[test]
fn init_producer_id_response_v4() {
    let resp = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: 0,
        producer_id: 1000,
        producer_epoch: 6,
        ..Default::default()
    };
    check(&resp, 4, INIT_PRODUCER_ID_RESPONSE_V4);
}
