//! RequestHeader v0-2 and ResponseHeader v0-1 (RequestHeader.json,
//! ResponseHeader.json).

use super::check;
use crate::protocol::messages::{RequestHeader, ResponseHeader};

// RequestHeader v0 (not flexible; only used by ControlledShutdown v0)
//   RequestApiKey     int16  7 (ControlledShutdown) -> 00 07
//   RequestApiVersion int16  0                      -> 00 00
//   CorrelationId     int32  1                      -> 00 00 00 01
//   ClientId          versions 1+: absent
#[rustfmt::skip]
const REQUEST_HEADER_V0: &[u8] = &[0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];

#[test]
fn request_header_v0() {
    let h = RequestHeader {
        request_api_key: 7,
        request_api_version: 0,
        correlation_id: 1,
        // ClientId has no explicit default, so (as in Kafka) an absent
        // ClientId decodes as the empty string, not null.
        ..Default::default()
    };
    check(&h, 0, REQUEST_HEADER_V0);
}

// RequestHeader v1 (not flexible)
//   RequestApiKey     int16  3 (Metadata)          -> 00 03
//   RequestApiVersion int16  1                     -> 00 01
//   CorrelationId     int32  7                     -> 00 00 00 07
//   ClientId          nullable string "klamm", int16 len 5 -> 00 05 6b 6c 61 6d 6d
#[rustfmt::skip]
const REQUEST_HEADER_V1: &[u8] = &[
    0x00, 0x03, // RequestApiKey
    0x00, 0x01, // RequestApiVersion
    0x00, 0x00, 0x00, 0x07, // CorrelationId
    0x00, 0x05, 0x6b, 0x6c, 0x61, 0x6d, 0x6d, // ClientId "klamm"
];

#[test]
fn request_header_v1() {
    let h = RequestHeader {
        request_api_key: 3,
        request_api_version: 1,
        correlation_id: 7,
        client_id: Some("klamm".into()),
        ..Default::default()
    };
    check(&h, 1, REQUEST_HEADER_V1);
}

// RequestHeader v1 with a null ClientId
//   RequestApiKey     int16  18 (ApiVersions) -> 00 12
//   RequestApiVersion int16  0                -> 00 00
//   CorrelationId     int32  -1               -> ff ff ff ff
//   ClientId          nullable string, null   -> ff ff (int16 -1)
#[rustfmt::skip]
const REQUEST_HEADER_V1_NULL_CLIENT: &[u8] = &[
    0x00, 0x12, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

#[test]
fn request_header_v1_null_client_id() {
    let h = RequestHeader {
        request_api_key: 18,
        request_api_version: 0,
        correlation_id: -1,
        client_id: None,
        ..Default::default()
    };
    check(&h, 1, REQUEST_HEADER_V1_NULL_CLIENT);
}

// RequestHeader v2 (flexible: 2 >= 2)
//   RequestApiKey     int16  0 (Produce)   -> 00 00
//   RequestApiVersion int16  9             -> 00 09
//   CorrelationId     int32  0x01020304    -> 01 02 03 04
//   ClientId          "flexibleVersions": "none", so classic int16 length
//                     even here: "klamm" len 5 -> 00 05 6b 6c 61 6d 6d
//   tagged fields     none                 -> 00
#[rustfmt::skip]
const REQUEST_HEADER_V2: &[u8] = &[
    0x00, 0x00, // RequestApiKey
    0x00, 0x09, // RequestApiVersion
    0x01, 0x02, 0x03, 0x04, // CorrelationId
    0x00, 0x05, 0x6b, 0x6c, 0x61, 0x6d, 0x6d, // ClientId "klamm" (int16 length)
    0x00, // tagged fields
];

#[test]
fn request_header_v2() {
    let h = RequestHeader {
        request_api_key: 0,
        request_api_version: 9,
        correlation_id: 0x0102_0304,
        client_id: Some("klamm".into()),
        ..Default::default()
    };
    check(&h, 2, REQUEST_HEADER_V2);
}

// ResponseHeader v0 (not flexible)
//   CorrelationId int32 7 -> 00 00 00 07
#[rustfmt::skip]
const RESPONSE_HEADER_V0: &[u8] = &[0x00, 0x00, 0x00, 0x07];

// ResponseHeader v1 (flexible: 1 >= 1)
//   CorrelationId int32 7 -> 00 00 00 07
//   tagged fields none    -> 00
#[rustfmt::skip]
const RESPONSE_HEADER_V1: &[u8] = &[0x00, 0x00, 0x00, 0x07, 0x00];

#[test]
fn response_header_v0_and_v1() {
    let h = ResponseHeader {
        correlation_id: 7,
        ..Default::default()
    };
    check(&h, 0, RESPONSE_HEADER_V0);
    check(&h, 1, RESPONSE_HEADER_V1);
}
