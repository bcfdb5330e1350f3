//! Consumer groups and their offsets, on top of the [`Client`](crate::Client).
//!
//! - [`OffsetManager`]: marks and commits a group's offsets, reads
//!   committed ones; [`OffsetTracker`] lets an application finish records
//!   out of order and still commit only what is finished.
//! - [`protocol`] encodes and decodes the classic consumer protocol's
//!   payloads: a member's [`Subscription`] (the metadata of each protocol
//!   it offers in JoinGroup) and its [`Assignment`] (what SyncGroup
//!   returns to it).
//! - [`assignor`] holds the [`Assignor`] trait and the built-in assignors
//!   `range`, `roundrobin`, `sticky`, `cooperative-sticky` and `stable`,
//!   which the group leader runs over every member's subscription.
//! - [`SideChannel`] (opt-in, sarama-consumer's side-channel offsets): a
//!   member giving partitions up publishes how far it got, and their next
//!   owner starts there when that is ahead of the commit.
//! - [`GroupAdmin`] administers groups from outside: lists and describes
//!   them (classic and KIP-848), reads their committed offsets and lag,
//!   alters, resets and deletes offsets, removes static members and
//!   deletes groups.
//!
//! ```
//! use klamm::group::assignor::{self, ClusterLayout, GroupMember};
//! use klamm::group::{Assignment, Subscription};
//!
//! // Each member offers a subscription...
//! let bytes = Subscription::new(["orders"]).encode(3).unwrap();
//! // ...the leader decodes them from the JoinGroup answer and assigns.
//! let members = vec![
//!     GroupMember::from_join("m-1", None, bytes.clone()).unwrap(),
//!     GroupMember::from_join("m-2", None, bytes).unwrap(),
//! ];
//! let layout = ClusterLayout::new().with_topic("orders", 4);
//! let range = assignor::by_name("range").unwrap();
//! let plan = range.assign(&members, &layout).unwrap();
//! // Each member then decodes its own part of the SyncGroup answer.
//! let encoded = plan.encode(3).unwrap();
//! let mine = Assignment::decode(encoded["m-1"].clone()).unwrap();
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
use std::fmt;

pub mod assignor;
pub mod protocol;

mod admin;
mod consumer;
mod forward;
mod handler;
mod hooks;
mod member;
mod offsets;
mod side_channel;
mod subscription;
mod tracks;

pub use admin::{
    GroupAdmin, GroupDescription, GroupListing, GroupType, ListGroupsOptions, MemberDescription,
    PartitionLag, PartitionResults, ShareGroupDescription, ShareMemberDescription,
    SharePartitionOffset,
};
pub use assignor::{Assignor, RebalanceProtocol};
pub use consumer::{AckMode, GroupConsumer, GroupEvent, GroupOptions};
pub use handler::{Claim, GroupHandler, GroupSession};
pub use hooks::{HookFuture, NoOlderThan, OffsetHooks, offset_for_age};
pub use offsets::{Generation, OffsetAndMetadata, OffsetManager, OffsetTracker};
pub use protocol::{Assignment, Subscription};
pub use side_channel::{DEFAULT_SIDE_CHANNEL_TOPIC, SideChannel};
pub use subscription::TopicPattern;
pub use tracks::Acker;

pub(crate) use admin::join_all;
pub(crate) use member::new_member_id;

/// Partitions by topic name, each topic's partition ids in the order given.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;

/// A partition of a topic.
///
/// ```
/// use klamm::group::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders/3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic and partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}
