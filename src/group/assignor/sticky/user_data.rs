//! The user data the sticky assignors put in a member's subscription, in
//! the Java client's layouts (no version prefix):
//!
//! - `sticky`: the member's previous assignment and its generation,
//!   `[topic: string, partitions: [int32]] generation: int32`. The
//!   generation was added later (KIP-341); data without it is read as
//!   having none.
//! - `cooperative-sticky`: the generation alone, `generation: int32`, for
//!   leaders that read subscriptions older than version 2.
//!
//! Data that does not decode is ignored, as the Java client ignores it: a
//! member's unreadable user data must not stop the whole group.

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::TopicPartitions;
use crate::protocol::codec::{put_array, read_array, required};
use crate::protocol::error::EncodeError;
use crate::protocol::primitives::{put_string, read_i32, read_string};

/// Encodes a `sticky` member's previous assignment and generation.
pub(super) fn encode_sticky(
    previous: &TopicPartitions,
    generation: i32,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    put_topic_partitions(&mut buf, previous)?;
    buf.put_i32(generation);
    Ok(buf.freeze())
}

/// Writes `[topic: string, partitions: [int32]]`, the partitions layout
/// the sticky and stable user data share.
pub(in crate::group::assignor) fn put_topic_partitions(
    buf: &mut BytesMut,
    partitions: &TopicPartitions,
) -> Result<(), EncodeError> {
    let entries: Vec<(&String, &Vec<i32>)> = partitions.iter().collect();
    put_array(
        buf,
        Some(entries.as_slice()),
        false,
        |b, (topic, partitions)| {
            put_string(b, topic, false)?;
            put_array(b, Some(partitions.as_slice()), false, |b, p| {
                b.put_i32(*p);
                Ok(())
            })
        },
    )
}

/// Reads what [`put_topic_partitions`] writes; `None` if it does not
/// decode.
pub(in crate::group::assignor) fn read_topic_partitions(
    buf: &mut Bytes,
) -> Option<TopicPartitions> {
    let entries = required(read_array(buf, false, |b| {
        let topic = read_string(b, false)?;
        let partitions = required(read_array(b, false, read_i32))?;
        Ok((topic, partitions))
    }))
    .ok()?;
    let mut out = TopicPartitions::new();
    for (topic, partitions) in entries {
        out.entry(topic).or_default().extend(partitions);
    }
    Some(out)
}

/// Decodes a `sticky` member's previous assignment and its generation
/// (`None` in the older layout without one); `None` if it does not decode.
pub(super) fn decode_sticky(data: &Bytes) -> Option<(TopicPartitions, Option<i32>)> {
    let mut buf = data.clone();
    let previous = read_topic_partitions(&mut buf)?;
    let generation = read_i32(&mut buf).ok();
    Some((previous, generation))
}

/// Encodes a `cooperative-sticky` member's generation.
pub(super) fn encode_generation(generation: i32) -> Bytes {
    Bytes::copy_from_slice(&generation.to_be_bytes())
}

/// Decodes a `cooperative-sticky` member's generation; `None` if it does
/// not decode.
pub(super) fn decode_generation(data: &Bytes) -> Option<i32> {
    read_i32(&mut data.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_user_data_golden_bytes() {
        let previous = TopicPartitions::from([("t".to_string(), vec![0, 3])]);
        let expected: &[u8] = &[
            0x00, 0x00, 0x00, 0x01, // previous assignment: 1 topic
            0x00, 0x01, b't', //       topic "t"
            0x00, 0x00, 0x00, 0x02, // partitions: 2 entries
            0x00, 0x00, 0x00, 0x00, //   0
            0x00, 0x00, 0x00, 0x03, //   3
            0x00, 0x00, 0x00, 0x07, // generation 7
        ];
        let bytes = encode_sticky(&previous, 7).unwrap();
        assert_eq!(bytes.as_ref(), expected);
        assert_eq!(decode_sticky(&bytes), Some((previous.clone(), Some(7))));
        // The older layout, without the generation.
        let old = Bytes::copy_from_slice(&expected[..expected.len() - 4]);
        assert_eq!(decode_sticky(&old), Some((previous, None)));
    }

    #[test]
    fn unreadable_user_data_is_none() {
        assert_eq!(decode_sticky(&Bytes::from_static(&[0, 0, 0])), None);
        assert_eq!(decode_sticky(&Bytes::from_static(&[0x7f, 0, 0, 0])), None);
        assert_eq!(
            decode_sticky(&Bytes::from_static(&[0, 0, 0, 1, 0, 5, b'x'])),
            None
        );
        assert_eq!(decode_generation(&Bytes::from_static(&[0, 1])), None);
        assert_eq!(decode_generation(&encode_generation(-1)), Some(-1));
        assert_eq!(encode_generation(258).as_ref(), &[0, 0, 1, 2]);
    }
}
