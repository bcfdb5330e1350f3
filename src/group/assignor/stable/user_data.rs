//! The user data a `stable` member puts in its subscription, and where its
//! stable identity comes from.
//!
//! Layout (version 0; a reader ignores bytes after the fields it knows,
//! so later versions may only append):
//!
//! ```text
//! version: int16 (0)
//! identity: string
//! owned: [topic: string, partitions: [int32]]
//! generation: int32 (-1: none)
//! ```
//!
//! Data that does not decode (or has a negative version) is ignored: the
//! member is then taken at its subscription alone, with no identity unless
//! it is a static member.

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::TopicPartitions;
use crate::group::assignor::sticky::{put_topic_partitions, read_topic_partitions};
use crate::protocol::error::EncodeError;
use crate::protocol::primitives::{put_string, read_i16, read_i32, read_string};

/// The version this module writes.
const VERSION: i16 = 0;

/// What a member's `stable` user data says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StableData {
    /// The member's stable identity (never empty once decoded).
    pub identity: String,
    /// The partitions it owned last.
    pub owned: TopicPartitions,
    /// The generation it owned them in.
    pub generation: Option<i32>,
}

/// Encodes a member's identity, previous partitions and their generation.
pub(super) fn encode(
    identity: &str,
    owned: &TopicPartitions,
    generation: Option<i32>,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i16(VERSION);
    put_string(&mut buf, identity, false)?;
    put_topic_partitions(&mut buf, owned)?;
    buf.put_i32(generation.unwrap_or(-1));
    Ok(buf.freeze())
}

/// Decodes `stable` user data; `None` when it does not decode, has a
/// negative version or an empty identity.
pub(super) fn decode(data: &Bytes) -> Option<StableData> {
    let mut buf = data.clone();
    let version = read_i16(&mut buf).ok()?;
    if version < 0 {
        return None;
    }
    let identity = read_string(&mut buf, false).ok()?;
    if identity.is_empty() {
        return None;
    }
    let owned = read_topic_partitions(&mut buf)?;
    let generation = read_i32(&mut buf).ok().filter(|g| *g >= 0);
    Some(StableData {
        identity,
        owned,
        generation,
    })
}

/// This machine's host name: the kernel's (`/proc/sys/kernel/hostname`),
/// else `/etc/hostname`, else the `HOSTNAME` or `COMPUTERNAME` variable,
/// else `localhost`.
pub(super) fn host_name() -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_and_round_trip() {
        let owned = TopicPartitions::from([("t".to_string(), vec![1, 3])]);
        let expected: &[u8] = &[
            0x00, 0x00, // version 0
            0x00, 0x02, b'i', b'd', // identity "id"
            0x00, 0x00, 0x00, 0x01, // owned: 1 topic
            0x00, 0x01, b't', //       topic "t"
            0x00, 0x00, 0x00, 0x02, // partitions: 2 entries
            0x00, 0x00, 0x00, 0x01, //   1
            0x00, 0x00, 0x00, 0x03, //   3
            0x00, 0x00, 0x00, 0x05, // generation 5
        ];
        let bytes = encode("id", &owned, Some(5)).unwrap();
        assert_eq!(bytes.as_ref(), expected);
        let want = StableData {
            identity: "id".into(),
            owned: owned.clone(),
            generation: Some(5),
        };
        assert_eq!(decode(&bytes), Some(want.clone()));
        // A later version with a field appended reads the same.
        let mut newer = BytesMut::from(expected);
        newer[1] = 1;
        newer.put_u8(0xff);
        assert_eq!(decode(&newer.freeze()), Some(want));
        // No generation.
        let none = encode("id", &TopicPartitions::new(), None).unwrap();
        assert_eq!(decode(&none).unwrap().generation, None);
    }

    #[test]
    fn unreadable_data_is_none() {
        let cases: [&[u8]; 6] = [
            &[],
            &[0],
            &[0xff, 0xff, 0, 1, b'x'],    // negative version
            &[0, 0, 0, 0, 0, 0, 0, 0],    // empty identity
            &[0, 0, 0, 5, b'x'],          // identity cut short
            &[0, 0, 0, 1, b'x', 0x7f, 0], // owned list cut short
        ];
        for case in cases {
            assert_eq!(decode(&Bytes::from_static(case)), None, "{case:?}");
        }
    }

    #[test]
    fn the_host_name_is_never_empty() {
        assert!(!host_name().is_empty());
    }
}
