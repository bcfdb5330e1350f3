//! Consumer groups and their offsets, on top of the [`Client`](crate::Client).
//!
//! - [`OffsetManager`]: marks and commits a group's offsets, reads
//!   committed ones.
//! - [`OffsetTracker`]: lets an application finish records out of order
//!   and still commit only what is finished.

mod offsets;

pub use offsets::{Generation, OffsetAndMetadata, OffsetManager, OffsetTracker};

use std::fmt;

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
