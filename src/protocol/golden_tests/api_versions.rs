//! ApiVersions (API key 18): ApiVersionsRequest.json, ApiVersionsResponse.json.
//! Valid versions 0-3, flexible 3+.

use super::check;
use crate::protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use crate::protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

// ApiVersionsRequest v0: both fields are versions 3+, so the body is empty.
#[rustfmt::skip]
const API_VERSIONS_REQUEST_V0: &[u8] = &[];

#[test]
fn api_versions_request_v0() {
    check(&ApiVersionsRequest::default(), 0, API_VERSIONS_REQUEST_V0);
}

// ApiVersionsResponse v0 (not flexible)
//   ErrorCode       int16                    0   -> 00 00
//   ApiKeys         array, int32 count 2         -> 00 00 00 02
//     [0] ApiKey    int16                    0   -> 00 00
//         MinVersion int16                   0   -> 00 00
//         MaxVersion int16                   11  -> 00 0b
//     [1] ApiKey    int16                    18  -> 00 12
//         MinVersion int16                   0   -> 00 00
//         MaxVersion int16                   3   -> 00 03
//   ThrottleTimeMs  versions 1+: absent
#[rustfmt::skip]
const API_VERSIONS_RESPONSE_V0: &[u8] = &[
    0x00, 0x00, // ErrorCode
    0x00, 0x00, 0x00, 0x02, // ApiKeys count
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, // Produce 0..11
    0x00, 0x12, 0x00, 0x00, 0x00, 0x03, // ApiVersions 0..3
];

#[test]
fn api_versions_response_v0() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 11,
                ..Default::default()
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 3,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    check(&resp, 0, API_VERSIONS_RESPONSE_V0);
}

// ApiVersionsRequest v3 (flexible: 3 >= 3)
//   ClientSoftwareName    compact string "klamm", len 5 -> 06 6b 6c 61 6d 6d
//   ClientSoftwareVersion compact string "0.1.0", len 5 -> 06 30 2e 31 2e 30
//   tagged fields         none                          -> 00
#[rustfmt::skip]
const API_VERSIONS_REQUEST_V3: &[u8] = &[
    0x06, 0x6b, 0x6c, 0x61, 0x6d, 0x6d, // "klamm"
    0x06, 0x30, 0x2e, 0x31, 0x2e, 0x30, // "0.1.0"
    0x00, // tagged fields
];

#[test]
fn api_versions_request_v3() {
    let req = ApiVersionsRequest {
        client_software_name: "klamm".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    };
    check(&req, 3, API_VERSIONS_REQUEST_V3);
}

// ApiVersionsResponse v3 (flexible: 3 >= 3), every tagged field set
//   ErrorCode       int16                          0   -> 00 00
//   ApiKeys         compact array, 1 element           -> 02
//     ApiKey        int16                          18  -> 00 12
//     MinVersion    int16                          0   -> 00 00
//     MaxVersion    int16                          3   -> 00 03
//     tagged fields none                               -> 00
//   ThrottleTimeMs  int32                          100 -> 00 00 00 64
//   tagged fields   4 (tags 0, 1, 2, 3 in order)       -> 04
//     tag 0 SupportedFeatures                          -> 00
//       size 20                                        -> 14
//       compact array, 1 element                       -> 02
//         Name       compact string "kraft.version", len 13
//                    -> 0e 6b 72 61 66 74 2e 76 65 72 73 69 6f 6e
//         MinVersion int16 0                           -> 00 00
//         MaxVersion int16 1                           -> 00 01
//         tagged fields none                           -> 00
//       (size = 1 + 14 + 2 + 2 + 1 = 20)
//     tag 1 FinalizedFeaturesEpoch int64 42 (default -1)
//       -> 01 08 00 00 00 00 00 00 00 2a
//     tag 2 FinalizedFeatures                          -> 02
//       size 20                                        -> 14
//       compact array, 1 element                       -> 02
//         Name            compact string "kraft.version" -> 0e 6b ... 6e
//         MaxVersionLevel int16 1 (Max comes first)    -> 00 01
//         MinVersionLevel int16 0                      -> 00 00
//         tagged fields   none                         -> 00
//     tag 3 ZkMigrationReady bool true (default false) -> 03 01 01
#[rustfmt::skip]
const API_VERSIONS_RESPONSE_V3: &[u8] = &[
    0x00, 0x00, // ErrorCode
    0x02, // ApiKeys: 1 element
    0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00, // ApiVersions 0..3, no tags
    0x00, 0x00, 0x00, 0x64, // ThrottleTimeMs 100
    0x04, // 4 tagged fields
    0x00, 0x14, // tag 0 (SupportedFeatures), size 20
    0x02, // 1 element
    0x0e, 0x6b, 0x72, 0x61, 0x66, 0x74, 0x2e, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e,
    0x00, 0x00, // MinVersion 0
    0x00, 0x01, // MaxVersion 1
    0x00, // tagged fields
    0x01, 0x08, // tag 1 (FinalizedFeaturesEpoch), size 8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // 42
    0x02, 0x14, // tag 2 (FinalizedFeatures), size 20
    0x02, // 1 element
    0x0e, 0x6b, 0x72, 0x61, 0x66, 0x74, 0x2e, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e,
    0x00, 0x01, // MaxVersionLevel 1
    0x00, 0x00, // MinVersionLevel 0
    0x00, // tagged fields
    0x03, 0x01, 0x01, // tag 3 (ZkMigrationReady), size 1, true
];

#[test]
fn api_versions_response_v3_with_tagged_fields() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 3,
            ..Default::default()
        }],
        throttle_time_ms: 100,
        supported_features: vec![SupportedFeatureKey {
            name: "kraft.version".into(),
            min_version: 0,
            max_version: 1,
            ..Default::default()
        }],
        finalized_features_epoch: 42,
        finalized_features: vec![FinalizedFeatureKey {
            name: "kraft.version".into(),
            max_version_level: 1,
            min_version_level: 0,
            ..Default::default()
        }],
        zk_migration_ready: true,
        ..Default::default()
    };
    check(&resp, 3, API_VERSIONS_RESPONSE_V3);
}

// ApiVersionsResponse v3 with every tagged field at its default: the tagged
// section is just a zero count.
//   ErrorCode      int16 35 (UNSUPPORTED_VERSION) -> 00 23
//   ApiKeys        compact array, 0 elements      -> 01
//   ThrottleTimeMs int32 0                        -> 00 00 00 00
//   tagged fields  none (epoch -1, empty arrays, false) -> 00
#[rustfmt::skip]
const API_VERSIONS_RESPONSE_V3_NO_TAGS: &[u8] = &[0x00, 0x23, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00];

#[test]
fn api_versions_response_v3_without_tagged_fields() {
    let resp = ApiVersionsResponse {
        error_code: 35,
        ..Default::default()
    };
    check(&resp, 3, API_VERSIONS_RESPONSE_V3_NO_TAGS);
}
