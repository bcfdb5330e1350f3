//! What the leader knows about the partitions it assigns: each subscribed
//! topic's partitions and the racks their replicas live in.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::ClusterMetadata;

/// The partitions of the topics a group subscribes to, with the racks of
/// each partition's replicas (KIP-881; an empty set when unknown).
///
/// The leader builds it from a Metadata answer covering every topic any
/// member subscribes to, with [`ClusterLayout::from_metadata`] or by hand.
/// Topics no member subscribes to are ignored by the assignors; subscribed
/// topics missing here (not created yet) get no partitions assigned.
///
/// ```
/// use klamm::group::assignor::ClusterLayout;
///
/// let mut layout = ClusterLayout::new().with_topic("orders", 3);
/// layout.add_partition("payments", 0, ["rack-a", "rack-b"]);
/// assert_eq!(layout.partitions("orders").collect::<Vec<_>>(), vec![0, 1, 2]);
/// assert!(layout.replica_racks("payments", 0).unwrap().contains("rack-b"));
/// assert!(layout.replica_racks("payments", 1).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterLayout {
    topics: BTreeMap<String, BTreeMap<i32, BTreeSet<String>>>,
}

impl ClusterLayout {
    /// An empty layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `topic` with partitions `0..partitions` and no rack
    /// information, builder style.
    pub fn with_topic(mut self, topic: impl Into<String>, partitions: i32) -> Self {
        self.add_topic(topic, partitions);
        self
    }

    /// Adds `topic` with partitions `0..partitions` and no rack
    /// information (a count below 1 adds the topic with no partitions).
    pub fn add_topic(&mut self, topic: impl Into<String>, partitions: i32) {
        let entry = self.topics.entry(topic.into()).or_default();
        for p in 0..partitions.max(0) {
            entry.entry(p).or_default();
        }
    }

    /// Adds one partition of `topic` with the racks of its replicas (racks
    /// add up if the partition is added again).
    pub fn add_partition<S: Into<String>>(
        &mut self,
        topic: impl Into<String>,
        partition: i32,
        replica_racks: impl IntoIterator<Item = S>,
    ) {
        self.topics
            .entry(topic.into())
            .or_default()
            .entry(partition)
            .or_default()
            .extend(replica_racks.into_iter().map(Into::into));
    }

    /// Every topic and partition of a metadata snapshot, each partition
    /// with the racks of the brokers holding its replicas (brokers without
    /// a rack, or not in the snapshot, add none).
    pub fn from_metadata(metadata: &ClusterMetadata) -> Self {
        let mut layout = ClusterLayout::new();
        for topic in metadata.topics.values() {
            let entry = layout.topics.entry(topic.name.clone()).or_default();
            for partition in &topic.partitions {
                let racks = entry.entry(partition.id).or_default();
                for replica in &partition.replicas {
                    if let Some(rack) = metadata.brokers.get(replica).and_then(|b| b.rack.clone()) {
                        racks.insert(rack);
                    }
                }
            }
        }
        layout
    }

    /// The topics, in name order.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// The partitions of `topic` in id order (none for an unknown topic).
    pub fn partitions(&self, topic: &str) -> impl Iterator<Item = i32> + '_ {
        self.topics
            .get(topic)
            .into_iter()
            .flat_map(|parts| parts.keys().copied())
    }

    /// The racks of the replicas of one partition; `None` for a partition
    /// the layout does not have.
    pub fn replica_racks(&self, topic: &str, partition: i32) -> Option<&BTreeSet<String>> {
        self.topics.get(topic)?.get(&partition)
    }

    /// Whether the layout has this partition.
    pub fn contains(&self, topic: &str, partition: i32) -> bool {
        self.replica_racks(topic, partition).is_some()
    }

    /// The partitions of `topic` with their replica racks, in id order.
    pub(crate) fn topic(&self, topic: &str) -> Option<&BTreeMap<i32, BTreeSet<String>>> {
        self.topics.get(topic)
    }
}
