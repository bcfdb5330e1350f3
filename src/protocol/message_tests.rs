//! Tests over the whole generated message set: coverage counts, header
//! versions and the encode/decode round-trip property for every message at
//! every version.

use bytes::{Bytes, BytesMut};

use super::codec::Message;
use super::error::{DecodeErrorKind, EncodeError};
use super::messages::*;

/// Apache Kafka 4.4.0 defines 95 request APIs (keys 0..=94; four of them,
/// 4 to 7, only as removed) and 203 message definitions (95 requests, 95
/// responses, 2 headers, 11 data records). With the versions 4.x no longer
/// defines kept from 3.8.0, that is 751 (message, version) pairs (counted
/// from `protocol-specs/` by hand: the sum of each valid range's length).
#[test]
fn generated_code_covers_every_api_and_message() {
    assert_eq!(API_COUNT, 95);
    assert_eq!(ApiKey::ALL.len(), 95);
    assert_eq!(MESSAGE_COUNT, 203);
    for (i, key) in ApiKey::ALL.iter().enumerate() {
        assert_eq!(key.code(), i as i16, "keys are contiguous from 0");
        assert_eq!(ApiKey::from_code(key.code()), Some(*key));
    }
    assert_eq!(ApiKey::from_code(95), None);
    assert_eq!(ApiKey::from_code(-1), None);
    // Old versions kept (4.x starts Produce at v3 and Fetch at v4).
    assert_eq!(ApiKey::Produce.versions(), (0, 13));
    assert_eq!(ApiKey::Fetch.versions(), (0, 18));
    assert_eq!(ApiKey::ListOffsets.versions(), (0, 11));
    // Removed in 4.0, kept as 3.8 defined it.
    assert_eq!(ApiKey::ControlledShutdown.versions(), (0, 3));
    // New since 3.8; share APIs start at v1 (v0 was early access).
    assert_eq!(ApiKey::ShareFetch.versions(), (1, 2));
    assert_eq!(ApiKey::ShareGroupHeartbeat.versions(), (1, 1));
    assert_eq!(ApiKey::UnregisterController.versions(), (0, 0));
    assert_eq!(ApiKey::ListConfigResources.name(), "ListConfigResources");
    assert_eq!(ApiKey::ApiVersions.name(), "ApiVersions");
}

#[test]
fn every_message_round_trips_at_every_version() {
    let pairs = roundtrip_every_message(16);
    assert_eq!(pairs, 751, "every (message, version) pair was exercised");
}

#[test]
fn header_versions_follow_the_flexible_versions() {
    assert_eq!(ApiKey::Produce.request_header_version(8), 1);
    assert_eq!(ApiKey::Produce.request_header_version(9), 2);
    assert_eq!(ApiKey::Produce.response_header_version(8), 0);
    assert_eq!(ApiKey::Produce.response_header_version(9), 1);
    assert_eq!(ApiKey::ControlledShutdown.request_header_version(0), 0);
    assert_eq!(ApiKey::ControlledShutdown.request_header_version(1), 1);
    // ApiVersions responses always use header v0, even at flexible v3+.
    assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
    assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
    assert_eq!(ApiKey::SaslHandshake.request_header_version(1), 1);
}

#[test]
fn a_field_the_version_cannot_carry_is_an_error_not_dropped() {
    // ProduceRequest.TransactionalId exists from v3 and is not ignorable.
    let req = ProduceRequest {
        transactional_id: Some("txn".into()),
        ..Default::default()
    };
    let err = req.encode(&mut BytesMut::new(), 2).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::FieldNotSupported {
            field: "TransactionalId",
            ..
        }
    ));
    // At its default (null) it is simply not written.
    let req = ProduceRequest::default();
    assert!(req.encode(&mut BytesMut::new(), 2).is_ok());
    // Ignorable fields are dropped silently, as Kafka specifies:
    // FetchResponse.ThrottleTimeMs is ignorable and starts at v1.
    let resp = FetchResponse {
        throttle_time_ms: 5,
        ..Default::default()
    };
    assert!(resp.encode(&mut BytesMut::new(), 0).is_ok());
}

#[test]
fn null_where_the_version_forbids_it_is_an_error() {
    // MetadataRequest.Topics is nullable only from v1.
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert!(matches!(
        req.encode(&mut BytesMut::new(), 0).unwrap_err(),
        EncodeError::NullNotAllowed {
            field: "Topics",
            ..
        }
    ));
    assert!(req.encode(&mut BytesMut::new(), 1).is_ok());
    // And on decode: a null (-1) topics array at v0.
    let err =
        MetadataRequest::decode(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]), 0).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::UnexpectedNull);
    assert_eq!(
        err.path().collect::<Vec<_>>(),
        ["MetadataRequest", "Topics"]
    );
}

#[test]
fn versions_outside_the_range_are_refused() {
    let err = ProduceRequest::default()
        .encode(&mut BytesMut::new(), 14)
        .unwrap_err();
    assert!(matches!(
        err,
        EncodeError::UnsupportedVersion {
            min: 0,
            max: 13,
            ..
        }
    ));
    let err = ProduceRequest::decode(&mut Bytes::new(), -1).unwrap_err();
    assert!(matches!(
        err.kind(),
        DecodeErrorKind::UnsupportedVersion { .. }
    ));
}

#[test]
fn unknown_tagged_fields_are_kept_and_re_encoded() {
    // ApiVersionsRequest v3 (flexible): ClientSoftwareName, ClientSoftwareVersion,
    // then a tagged-field section with one unknown tag 7 holding two bytes.
    let wire: &[u8] = b"\x02a\x02b\x01\x07\x02\xab\xcd";
    let msg = ApiVersionsRequest::decode(&mut Bytes::from_static(wire), 3).unwrap();
    assert_eq!(msg.client_software_name, "a");
    assert_eq!(msg.unknown_tagged_fields.len(), 1);
    assert_eq!(msg.unknown_tagged_fields[0].tag, 7);
    let mut out = BytesMut::new();
    msg.encode(&mut out, 3).unwrap();
    assert_eq!(&out[..], wire);
}

#[test]
fn decode_errors_say_where() {
    // FindCoordinatorRequest v4: KeyType int8, then CoordinatorKeys compact
    // array claiming 3 keys with only one byte left.
    let err =
        FindCoordinatorRequest::decode(&mut Bytes::from_static(b"\x00\x04\x02"), 4).unwrap_err();
    assert_eq!(
        err.path().collect::<Vec<_>>(),
        ["FindCoordinatorRequest", "CoordinatorKeys"]
    );
    assert!(
        err.to_string()
            .starts_with("FindCoordinatorRequest.CoordinatorKeys: "),
        "{err}"
    );
}

#[test]
fn body_enums_dispatch_by_api_key() {
    let req = RequestBody::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 3,
        member_id: "m".into(),
        ..Default::default()
    });
    let mut buf = BytesMut::new();
    req.encode(&mut buf, 4).unwrap();
    assert_eq!(buf.len(), req.encoded_len(4));
    let back = RequestBody::decode_code(12, &mut buf.freeze(), 4).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.api_key(), ApiKey::Heartbeat);
    assert!(matches!(
        RequestBody::decode_code(999, &mut Bytes::new(), 0)
            .unwrap_err()
            .kind(),
        DecodeErrorKind::UnknownApiKey(999)
    ));
}

#[test]
fn unknown_tag_of_a_field_the_version_lacks_is_written_back() {
    // BrokerHeartbeatRequest v0 is flexible but has no OfflineLogDirs (tag 0
    // from v1), so a tag 0 at v0 is an unknown tagged field. It used to be
    // counted in the tag count and in encoded_len but never written.
    // Found by the `roundtrip` fuzz target.
    let mut wire = vec![0u8; 22]; // broker id, epoch, offset, fence, shut down
    wire.extend_from_slice(&[1, 0, 2, 0xab, 0xcd]); // one tag: 0, 2 bytes
    let msg = BrokerHeartbeatRequest::decode(&mut Bytes::from(wire.clone()), 0).unwrap();
    assert_eq!(msg.unknown_tagged_fields.len(), 1);
    assert_eq!(msg.unknown_tagged_fields[0].tag, 0);
    let mut out = BytesMut::new();
    msg.encode(&mut out, 0).unwrap();
    assert_eq!(msg.encoded_len(0), out.len());
    assert_eq!(&out[..], &wire[..]);
    // At v1 the same bytes are the known field.
    let mut wire1 = vec![0u8; 22];
    wire1.extend_from_slice(&[1, 0, 1, 1]); // OfflineLogDirs: empty compact array
    let msg = BrokerHeartbeatRequest::decode(&mut Bytes::from(wire1), 1).unwrap();
    assert!(msg.unknown_tagged_fields.is_empty());
}
