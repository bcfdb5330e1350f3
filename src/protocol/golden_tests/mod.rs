//! Golden-byte tests: an independent check of the generated codecs.
//!
//! Every expected byte string here was derived by hand from Apache Kafka
//! 3.8.0's message definitions (`clients/src/main/resources/common/message/
//! *.json`) and the protocol's encoding rules, never by running klamm's
//! encoder. Each literal carries a comment per field giving its name, wire
//! type, encoding and value.
//!
//! Encoding rules used throughout:
//! - int8/16/32/64: big-endian two's complement; bool: one byte 00/01;
//!   uuid: 16 raw bytes.
//! - Non-flexible versions: string = int16 length + UTF-8 (-1 = null);
//!   bytes/array = int32 length/count (-1 = null).
//! - Flexible versions: string/bytes/array = unsigned varint of
//!   (length + 1), 0 = null; every struct (the body and each nested struct)
//!   ends with a tagged-field section: unsigned varint count, then for each
//!   field unsigned varint tag, unsigned varint size, data. Tagged fields
//!   are written only when they differ from their default.
//! - Fields are written only in the versions their `versions` range lists.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::codec::Message;
use super::primitives::Uuid;

mod admin;
mod api_versions;
mod edge_cases;
mod fetch;
mod groups;
mod headers;
mod kafka44;
mod metadata;
mod offsets;
mod produce;

/// A topic id used across the tests; on the wire it is these 16 bytes as is.
const TOPIC_ID: Uuid = Uuid([
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
]);

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that `value` encodes at `version` to exactly `golden`, that
/// `encoded_len` agrees, and that decoding `golden` gives `value` back with
/// nothing left over.
fn check<T: Message + PartialEq + Debug>(value: &T, version: i16, golden: &[u8]) {
    let mut buf = BytesMut::new();
    value
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{} v{version}: encode failed: {e}", T::NAME));
    assert_eq!(
        hex(&buf),
        hex(golden),
        "{} v{version}: encoded bytes (left) differ from golden (right)",
        T::NAME
    );
    assert_eq!(
        value.encoded_len(version),
        golden.len(),
        "{} v{version}: encoded_len",
        T::NAME
    );
    let mut input = Bytes::copy_from_slice(golden);
    let back = T::decode(&mut input, version)
        .unwrap_or_else(|e| panic!("{} v{version}: decode failed: {e}", T::NAME));
    assert!(
        input.is_empty(),
        "{} v{version}: {} bytes left over after decode",
        T::NAME,
        input.len()
    );
    assert_eq!(&back, value, "{} v{version}: decoded value", T::NAME);
}
