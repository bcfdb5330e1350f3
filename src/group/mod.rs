//! Consumer groups, the pure part: what members say in JoinGroup, what the
//! leader hands out in SyncGroup, and the assignors that decide who reads
//! which partition. No I/O and no tokio here: bytes and values in, values
//! and bytes out.
//!
//! - [`protocol`] encodes and decodes the classic consumer protocol's
//!   payloads: a member's [`Subscription`] (the metadata of each protocol
//!   it offers in JoinGroup) and its [`Assignment`] (what SyncGroup
//!   returns to it).
//!
//! ```
//! use klamm::group::{Assignment, Subscription};
//!
//! // A member offers its subscription in JoinGroup...
//! let bytes = Subscription::new(["orders"]).encode(3).unwrap();
//! assert_eq!(Subscription::decode(bytes).unwrap().topics, vec!["orders".to_string()]);
//! // ...and decodes its part of the SyncGroup answer.
//! let mut assignment = Assignment::default();
//! assignment.partitions.insert("orders".into(), vec![0, 1]);
//! let mine = Assignment::decode(assignment.encode(3).unwrap()).unwrap();
//! assert_eq!(mine.partitions["orders"], vec![0, 1]);
//! ```
//!
//! # References
//! - Kafka's `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`
//!   message definitions (versions 0–3)
//! - KIP-54 (the sticky assignor), KIP-341 (its generation in user data),
//!   KIP-345 (static membership: `group.instance.id`), KIP-429 (incremental
//!   cooperative rebalancing, owned partitions), KIP-792 (generation in the
//!   subscription), KIP-881 (rack-aware assignment)

use std::collections::BTreeMap;

pub mod protocol;

pub use protocol::{Assignment, Subscription};

/// Partitions by topic name, each topic's partition ids in the order given.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;
