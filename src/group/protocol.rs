//! The classic consumer protocol's payloads, as Java, librdkafka and Sarama
//! put them on the wire.
//!
//! A member's JoinGroup metadata (one per protocol it offers) is an `int16`
//! version followed by the body of `ConsumerProtocolSubscription` at that
//! version; the assignment the leader sends through SyncGroup is an `int16`
//! version followed by the body of `ConsumerProtocolAssignment`.
//!
//! | version | subscription adds | assignment |
//! |---|---|---|
//! | 0 | topics, user data | partitions, user data |
//! | 1 | owned partitions (KIP-429) | same body |
//! | 2 | generation id (KIP-792) | same body |
//! | 3 | rack id (KIP-881) | same body |
//!
//! Decoding follows the Java client's rules:
//!
//! - a version higher than 3 is read as version 3 and whatever follows is
//!   ignored (newer clients may only append fields);
//! - bytes after the fields of the version are ignored at every version;
//! - a negative version is an error, and so is input that ends early: a
//!   [`DecodeError`], never a panic. Lengths are checked against the bytes
//!   left before anything is allocated.
//!
//! We write version 3 of both by default: the highest Kafka 3.8 defines,
//! and the one the Java client writes since rack ids came in (Kafka 3.5).
//!
//! # References
//! - Kafka's `ConsumerProtocolSubscription.json` and
//!   `ConsumerProtocolAssignment.json` (Kafka 3.8: versions 0–3)
//! - KIP-429, KIP-792, KIP-881

use bytes::{BufMut, Bytes, BytesMut};

use super::TopicPartitions;
use crate::protocol::codec::Message;
use crate::protocol::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::protocol::messages::consumer_protocol_assignment as wire_assignment;
use crate::protocol::messages::consumer_protocol_subscription as wire_subscription;
use crate::protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use crate::protocol::primitives::read_i16;

/// The subscription version klamm writes by default (the highest it knows).
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version klamm writes by default (the highest it knows;
/// the body is the same at every version).
pub const ASSIGNMENT_VERSION: i16 = 3;

/// What a member tells the group in JoinGroup: the topics it wants and,
/// from version 1 on, what it owns now.
///
/// ```
/// use klamm::group::Subscription;
///
/// let mut sub = Subscription::new(["orders", "payments"]);
/// sub.owned_partitions.insert("orders".into(), vec![0, 2]);
/// sub.generation = Some(7);
/// sub.rack = Some("eu-west-1a".into());
/// let bytes = sub.encode(3).unwrap();
/// assert_eq!(Subscription::decode(bytes).unwrap(), sub);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// Assignor-specific data (the eager `sticky` assignor keeps the
    /// member's previous assignment here); `None` is null on the wire.
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (version 1+; dropped when
    /// encoding version 0). A topic listed twice on the wire is merged.
    pub owned_partitions: TopicPartitions,
    /// The generation the owned partitions were assigned in (version 2+);
    /// `None` is written as -1, and any negative value reads as `None`.
    pub generation: Option<i32>,
    /// The member's rack, `client.rack` (version 3+); an empty rack reads
    /// as `None`.
    pub rack: Option<String>,
}

impl Subscription {
    /// A subscription to `topics` with nothing else set.
    pub fn new<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> Self {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Encodes the subscription at `version` (0–3), version prefix
    /// included. Fields the version cannot carry are left out, as the Java
    /// client does.
    pub fn encode(&self, version: i16) -> Result<Bytes, EncodeError> {
        let body = ConsumerProtocolSubscription {
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned_partitions: if version >= 1 {
                self.owned_partitions
                    .iter()
                    .map(|(topic, partitions)| wire_subscription::TopicPartition {
                        topic: topic.clone(),
                        partitions: partitions.as_slice().into(),
                        unknown_tagged_fields: Vec::new(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            generation_id: self.generation.unwrap_or(-1),
            rack_id: self.rack.clone(),
            unknown_tagged_fields: Vec::new(),
        };
        with_version(&body, version)
    }

    /// Decodes a subscription (version prefix included).
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut buf = bytes;
        let version = read_version::<ConsumerProtocolSubscription>(&mut buf)?;
        let body = ConsumerProtocolSubscription::decode(&mut buf, version)?;
        let mut owned_partitions = TopicPartitions::new();
        for tp in body.owned_partitions {
            owned_partitions
                .entry(tp.topic)
                .or_default()
                .extend(tp.partitions);
        }
        Ok(Subscription {
            topics: body.topics,
            user_data: body.user_data,
            owned_partitions,
            generation: (version >= 2 && body.generation_id >= 0).then_some(body.generation_id),
            rack: body.rack_id.filter(|r| !r.is_empty()),
        })
    }
}

/// What the leader assigns to one member, as SyncGroup hands it over.
///
/// ```
/// use klamm::group::Assignment;
///
/// let mut assignment = Assignment::default();
/// assignment.partitions.insert("orders".into(), vec![1, 3]);
/// let bytes = assignment.encode(3).unwrap();
/// assert_eq!(Assignment::decode(bytes).unwrap(), assignment);
/// // The coordinator sends zero bytes to a member the leader left out.
/// assert_eq!(Assignment::decode(bytes::Bytes::new()).unwrap(), Assignment::default());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The partitions assigned, by topic. A topic listed twice on the wire
    /// is merged.
    pub partitions: TopicPartitions,
    /// Assignor-specific data; `None` is null on the wire.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// Encodes the assignment at `version` (0–3; the body is the same at
    /// every version), version prefix included.
    pub fn encode(&self, version: i16) -> Result<Bytes, EncodeError> {
        let body = ConsumerProtocolAssignment {
            assigned_partitions: self
                .partitions
                .iter()
                .map(|(topic, partitions)| wire_assignment::TopicPartition {
                    topic: topic.clone(),
                    partitions: partitions.as_slice().into(),
                    unknown_tagged_fields: Vec::new(),
                })
                .collect(),
            user_data: self.user_data.clone(),
            unknown_tagged_fields: Vec::new(),
        };
        with_version(&body, version)
    }

    /// Decodes an assignment (version prefix included). Zero bytes decode
    /// as an empty assignment: the coordinator sends that to a member the
    /// leader's SyncGroup did not mention.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut buf = bytes;
        let version = read_version::<ConsumerProtocolAssignment>(&mut buf)?;
        let body = ConsumerProtocolAssignment::decode(&mut buf, version)?;
        let mut partitions = TopicPartitions::new();
        for tp in body.assigned_partitions {
            partitions
                .entry(tp.topic)
                .or_default()
                .extend(tp.partitions);
        }
        Ok(Assignment {
            partitions,
            user_data: body.user_data,
        })
    }

    /// The partitions of `owned` this assignment does not contain: what a
    /// member owning `owned` must give up (revoke) on receiving it. Under
    /// the cooperative protocol a non-empty answer means the member must
    /// rejoin at once so the partitions can go to their new owners.
    ///
    /// ```
    /// use klamm::group::{Assignment, TopicPartitions};
    ///
    /// let owned = TopicPartitions::from([("t".to_string(), vec![0, 1, 2])]);
    /// let mut next = Assignment::default();
    /// next.partitions.insert("t".into(), vec![0, 2, 5]);
    /// assert_eq!(next.revoked_from(&owned), TopicPartitions::from([("t".to_string(), vec![1])]));
    /// ```
    pub fn revoked_from(&self, owned: &TopicPartitions) -> TopicPartitions {
        difference(owned, &self.partitions)
    }

    /// The partitions of this assignment that `owned` does not contain:
    /// what a member owning `owned` starts reading on receiving it.
    pub fn added_to(&self, owned: &TopicPartitions) -> TopicPartitions {
        difference(&self.partitions, owned)
    }
}

/// The partitions of `a` not in `b`, topics without any left out.
fn difference(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (topic, partitions) in a {
        let other = b.get(topic).map(Vec::as_slice).unwrap_or_default();
        let left: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| !other.contains(p))
            .collect();
        if !left.is_empty() {
            out.insert(topic.clone(), left);
        }
    }
    out
}

/// Writes `version` and then the body of `body` at that version.
fn with_version<M: Message>(body: &M, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(2 + body.encoded_len(version));
    buf.put_i16(version);
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads the version prefix: a negative one is an error, one above what
/// `M` knows is read as its highest.
fn read_version<M: Message>(buf: &mut Bytes) -> Result<i16, DecodeError> {
    let version = read_i16(buf).map_err(|e| e.context("Version").context(M::NAME))?;
    let (min, max) = M::VERSIONS;
    if version < min {
        return Err(
            DecodeError::new(DecodeErrorKind::UnsupportedVersion { version, min, max })
                .context(M::NAME),
        );
    }
    Ok(version.min(max))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tp(entries: &[(&str, &[i32])]) -> TopicPartitions {
        entries
            .iter()
            .map(|(t, p)| (t.to_string(), p.to_vec()))
            .collect()
    }

    /// Subscription v3 {topics [t0, t1], user data null, owned {t0: [1]},
    /// generation 5, rack "r1"}, written out field by field.
    const SUBSCRIPTION_V3: &[u8] = &[
        0x00, 0x03, //                          version 3
        0x00, 0x00, 0x00, 0x02, //              topics: 2 entries
        0x00, 0x02, b't', b'0', //              "t0"
        0x00, 0x02, b't', b'1', //              "t1"
        0xff, 0xff, 0xff, 0xff, //              user data: null (-1)
        0x00, 0x00, 0x00, 0x01, //              owned partitions: 1 topic
        0x00, 0x02, b't', b'0', //                topic "t0"
        0x00, 0x00, 0x00, 0x01, //                partitions: 1 entry
        0x00, 0x00, 0x00, 0x01, //                  1
        0x00, 0x00, 0x00, 0x05, //              generation 5
        0x00, 0x02, b'r', b'1', //              rack "r1"
    ];

    fn subscription_v3() -> Subscription {
        Subscription {
            topics: vec!["t0".into(), "t1".into()],
            user_data: None,
            owned_partitions: tp(&[("t0", &[1])]),
            generation: Some(5),
            rack: Some("r1".into()),
        }
    }

    #[test]
    fn subscription_v3_golden_bytes() {
        let sub = subscription_v3();
        assert_eq!(sub.encode(3).unwrap().as_ref(), SUBSCRIPTION_V3);
        assert_eq!(
            Subscription::decode(Bytes::from_static(SUBSCRIPTION_V3)).unwrap(),
            sub
        );
    }

    #[test]
    fn subscription_v0_golden_bytes_leave_the_newer_fields_out() {
        // version 0, topics ["a"], user data 0x01 0x02 (length 2)
        let expected: &[u8] = &[
            0x00, 0x00, //                      version 0
            0x00, 0x00, 0x00, 0x01, //          topics: 1 entry
            0x00, 0x01, b'a', //                "a"
            0x00, 0x00, 0x00, 0x02, 0x01, 0x02, // user data: 2 bytes
        ];
        let mut sub = Subscription::new(["a"]);
        sub.user_data = Some(Bytes::from_static(&[1, 2]));
        let mut with_more = sub.clone();
        with_more.owned_partitions = tp(&[("a", &[0])]);
        with_more.generation = Some(3);
        with_more.rack = Some("r".into());
        assert_eq!(with_more.encode(0).unwrap().as_ref(), expected);
        assert_eq!(
            Subscription::decode(Bytes::from_static(expected)).unwrap(),
            sub
        );
    }

    #[test]
    fn subscription_v2_reads_minus_one_as_no_generation() {
        let expected: &[u8] = &[
            0x00, 0x02, //                      version 2
            0x00, 0x00, 0x00, 0x00, //          topics: none
            0xff, 0xff, 0xff, 0xff, //          user data: null
            0x00, 0x00, 0x00, 0x00, //          owned partitions: none
            0xff, 0xff, 0xff, 0xff, //          generation -1
        ];
        let sub = Subscription::default();
        assert_eq!(sub.encode(2).unwrap().as_ref(), expected);
        assert_eq!(
            Subscription::decode(Bytes::from_static(expected)).unwrap(),
            sub
        );
    }

    #[test]
    fn a_newer_subscription_version_reads_as_v3_and_its_extra_fields_are_ignored() {
        let mut newer = SUBSCRIPTION_V3.to_vec();
        newer[1] = 9; // version 9
        newer.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]); // fields we do not know
        assert_eq!(
            Subscription::decode(Bytes::from(newer)).unwrap(),
            subscription_v3()
        );
    }

    #[test]
    fn an_empty_rack_reads_as_none() {
        let mut sub = subscription_v3();
        sub.rack = Some(String::new());
        let back = Subscription::decode(sub.encode(3).unwrap()).unwrap();
        assert_eq!(back.rack, None);
    }

    #[test]
    fn owned_partitions_listed_twice_merge() {
        let bytes: &[u8] = &[
            0x00, 0x01, //                      version 1
            0x00, 0x00, 0x00, 0x00, //          topics: none
            0xff, 0xff, 0xff, 0xff, //          user data: null
            0x00, 0x00, 0x00, 0x02, //          owned: 2 entries
            0x00, 0x01, b't', 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, // t: [4]
            0x00, 0x01, b't', 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // t: [2]
        ];
        let sub = Subscription::decode(Bytes::from_static(bytes)).unwrap();
        assert_eq!(sub.owned_partitions, tp(&[("t", &[4, 2])]));
    }

    /// Assignment v3 {t0: [0, 2]}, user data null.
    const ASSIGNMENT_V3: &[u8] = &[
        0x00, 0x03, //                          version 3
        0x00, 0x00, 0x00, 0x01, //              assigned partitions: 1 topic
        0x00, 0x02, b't', b'0', //                topic "t0"
        0x00, 0x00, 0x00, 0x02, //                partitions: 2 entries
        0x00, 0x00, 0x00, 0x00, //                  0
        0x00, 0x00, 0x00, 0x02, //                  2
        0xff, 0xff, 0xff, 0xff, //              user data: null
    ];

    #[test]
    fn assignment_golden_bytes_at_every_version() {
        let assignment = Assignment {
            partitions: tp(&[("t0", &[0, 2])]),
            user_data: None,
        };
        for version in 0..=3i16 {
            let mut expected = ASSIGNMENT_V3.to_vec();
            expected[..2].copy_from_slice(&version.to_be_bytes());
            assert_eq!(
                assignment.encode(version).unwrap().as_ref(),
                expected.as_slice()
            );
            assert_eq!(
                Assignment::decode(Bytes::from(expected)).unwrap(),
                assignment
            );
        }
        let mut newer = ASSIGNMENT_V3.to_vec();
        newer[1] = 4;
        newer.extend_from_slice(&[0x00, 0x00, 0x00, 0x07]);
        assert_eq!(Assignment::decode(Bytes::from(newer)).unwrap(), assignment);
    }

    #[test]
    fn encoding_an_unknown_version_fails() {
        assert!(Subscription::default().encode(4).is_err());
        assert!(Subscription::default().encode(-1).is_err());
        assert!(Assignment::default().encode(4).is_err());
    }

    #[test]
    fn hostile_input_is_a_decode_error() {
        // Every strict prefix of a valid payload ends early (the empty
        // assignment is the one exception, by design).
        for cut in 0..SUBSCRIPTION_V3.len() {
            let err = Subscription::decode(Bytes::copy_from_slice(&SUBSCRIPTION_V3[..cut]));
            assert!(err.is_err(), "prefix of {cut} bytes decoded");
        }
        for cut in 1..ASSIGNMENT_V3.len() {
            let err = Assignment::decode(Bytes::copy_from_slice(&ASSIGNMENT_V3[..cut]));
            assert!(err.is_err(), "prefix of {cut} bytes decoded");
        }
        // A negative version.
        let err = Subscription::decode(Bytes::from_static(&[0xff, 0xfe])).unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::UnsupportedVersion { version: -2, .. }
        ));
        assert!(Assignment::decode(Bytes::from_static(&[0x80, 0x00])).is_err());
        // A negative array length (other than the -1 of null, which a
        // non-nullable array rejects too).
        let negative = [0x00, 0x00, 0xff, 0xff, 0xff, 0xfe];
        let err = Subscription::decode(Bytes::copy_from_slice(&negative)).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::NegativeLength(-2));
        let null_topics = [0x00, 0x00, 0xff, 0xff, 0xff, 0xff];
        let err = Subscription::decode(Bytes::copy_from_slice(&null_topics)).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::UnexpectedNull);
        // A huge count with nothing behind it is refused before allocating.
        let huge = [0x00, 0x03, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00];
        let err = Assignment::decode(Bytes::copy_from_slice(&huge)).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::LengthTooLarge { .. }));
        // A string that is not UTF-8.
        let bad_utf8 = [0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0xff];
        let err = Subscription::decode(Bytes::copy_from_slice(&bad_utf8)).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::InvalidUtf8);
    }

    #[test]
    fn revoked_and_added() {
        let owned = tp(&[("a", &[0, 1]), ("b", &[3])]);
        let next = Assignment {
            partitions: tp(&[("a", &[1, 2]), ("c", &[0])]),
            user_data: None,
        };
        assert_eq!(next.revoked_from(&owned), tp(&[("a", &[0]), ("b", &[3])]));
        assert_eq!(next.added_to(&owned), tp(&[("a", &[2]), ("c", &[0])]));
    }

    fn topic_partitions() -> impl Strategy<Value = TopicPartitions> {
        prop::collection::btree_map(
            "[a-z.]{0,6}",
            prop::collection::vec(any::<i32>(), 0..5),
            0..4,
        )
    }

    fn subscription(version: i16) -> impl Strategy<Value = Subscription> {
        (
            prop::collection::vec("[a-zA-Z0-9._-]{0,8}", 0..5),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
            topic_partitions(),
            prop::option::of(0..=i32::MAX),
            prop::option::of("[a-z0-9-]{1,6}"),
        )
            .prop_map(
                move |(topics, user_data, owned, generation, rack)| Subscription {
                    topics,
                    user_data: user_data.map(Bytes::from),
                    owned_partitions: if version >= 1 {
                        owned
                    } else {
                        TopicPartitions::new()
                    },
                    generation: if version >= 2 { generation } else { None },
                    rack: if version >= 3 { rack } else { None },
                },
            )
    }

    proptest! {
        #[test]
        fn subscriptions_round_trip(
            (version, sub) in (0..=3i16).prop_flat_map(|v| (Just(v), subscription(v)))
        ) {
            let bytes = sub.encode(version).unwrap();
            prop_assert_eq!(&bytes[..2], &version.to_be_bytes()[..]);
            prop_assert_eq!(Subscription::decode(bytes).unwrap(), sub);
        }

        #[test]
        fn assignments_round_trip(
            version in 0..=3i16,
            partitions in topic_partitions(),
            user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        ) {
            let assignment = Assignment { partitions, user_data: user_data.map(Bytes::from) };
            let back = Assignment::decode(assignment.encode(version).unwrap()).unwrap();
            prop_assert_eq!(back, assignment);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Subscription::decode(Bytes::from(bytes.clone()));
            let _ = Assignment::decode(Bytes::from(bytes));
        }
    }
}
