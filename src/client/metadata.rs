//! The cluster as the last Metadata response described it: brokers,
//! controller, topics and partitions with leaders, epochs and replicas.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::MetadataResponse;
use crate::protocol::primitives::Uuid;

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub id: i32,
    /// Host name as the broker advertises it.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack, if the broker has one.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub id: i32,
    /// Leader broker id, -1 when there is none.
    pub leader: i32,
    /// The leader's epoch (-1 when the broker does not report it).
    pub leader_epoch: i32,
    /// All replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub in_sync_replicas: Vec<i32>,
    /// Offline replicas.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error the broker reported.
    pub error: ErrorCode,
}

impl PartitionInfo {
    /// Whether records can be written to it now: it has a leader and no
    /// error (Sarama's "writable partitions").
    pub fn is_writable(&self) -> bool {
        self.leader >= 0 && self.error.is_ok()
    }
}

/// One topic's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The topic id (zero when the broker does not report one).
    pub id: Uuid,
    /// Whether it is an internal topic.
    pub is_internal: bool,
    /// The topic-level error.
    pub error: ErrorCode,
    /// Partitions in index order.
    pub partitions: Vec<PartitionInfo>,
}

/// A snapshot of the cluster's metadata.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// The controller's id, -1 if unknown.
    pub controller: i32,
    /// The cluster id, if reported.
    pub cluster_id: Option<String>,
    /// Topics by name.
    pub topics: HashMap<String, TopicInfo>,
    /// When this snapshot was taken.
    pub updated: Option<Instant>,
}

impl ClusterMetadata {
    /// Merges a Metadata response into a new snapshot. Brokers and the
    /// controller are replaced; topics in the response replace the ones
    /// known, other known topics stay when the response covered only some
    /// topics (`all_topics == false`) and are dropped when it covered all.
    pub fn merged(&self, resp: &MetadataResponse, all_topics: bool) -> ClusterMetadata {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.node_id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                };
                (b.node_id, info)
            })
            .collect();
        let mut topics = if all_topics {
            HashMap::new()
        } else {
            self.topics.clone()
        };
        for t in &resp.topics {
            let Some(name) = t.name.clone() else { continue };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    id: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.to_vec(),
                    in_sync_replicas: p.isr_nodes.to_vec(),
                    offline_replicas: p.offline_replicas.to_vec(),
                    error: ErrorCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            let error = ErrorCode(t.error_code);
            // A topic the broker does not know is not kept as if it existed.
            if error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION && partitions.is_empty() {
                topics.remove(&name);
                continue;
            }
            topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: t.topic_id,
                    is_internal: t.is_internal,
                    error,
                    partitions,
                },
            );
        }
        ClusterMetadata {
            brokers,
            controller: resp.controller_id,
            cluster_id: resp.cluster_id.clone(),
            topics,
            updated: Some(Instant::now()),
        }
    }

    /// The id of `topic`, if known (brokers before Kafka 2.8 report none).
    ///
    /// ```
    /// use klamm::client::ClusterMetadata;
    ///
    /// assert_eq!(ClusterMetadata::default().topic_id("orders"), None);
    /// ```
    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics
            .get(topic)
            .map(|t| t.id)
            .filter(|id| *id != Uuid::ZERO)
    }

    /// The id of every topic in `topics` by name, if every one is known
    /// (a request that names topics by id needs them all; otherwise it
    /// goes by name). `None` for no topics too.
    pub fn topic_ids<'a>(
        &self,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Option<HashMap<String, Uuid>> {
        let mut ids = HashMap::new();
        for t in topics {
            ids.insert(t.to_string(), self.topic_id(t)?);
        }
        (!ids.is_empty()).then_some(ids)
    }

    /// The name of every topic whose id is known, by id (to read answers
    /// that name topics by id: heartbeats of the consumer and share group
    /// protocols, Fetch v13+, OffsetCommit/OffsetFetch v10).
    pub fn names_by_id(&self) -> HashMap<Uuid, String> {
        self.topics
            .values()
            .filter(|t| t.id != Uuid::ZERO)
            .map(|t| (t.id, t.name.clone()))
            .collect()
    }

    /// A partition, if known. Partitions are kept in id order, so
    /// partition `n` is usually at index `n`: found without a search
    /// (the producer's sender asks for every queued partition's leader on
    /// each pass, which a linear search made quadratic in partitions).
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionInfo> {
        let parts = &self.topics.get(topic)?.partitions;
        let at = usize::try_from(partition).ok()?;
        match parts.get(at) {
            Some(p) if p.id == partition => Some(p),
            _ => parts.iter().find(|p| p.id == partition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata_response::*;

    /// (topic, error code, [(partition, leader)])
    type TopicSpec<'a> = (&'a str, i16, &'a [(i32, i32)]);

    fn resp(topics: &[TopicSpec<'_>]) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                ..Default::default()
            }],
            controller_id: 1,
            topics: topics
                .iter()
                .map(|(name, err, parts)| MetadataResponseTopic {
                    name: Some(name.to_string()),
                    error_code: *err,
                    partitions: parts
                        .iter()
                        .map(|&(i, leader)| MetadataResponsePartition {
                            partition_index: i,
                            leader_id: leader,
                            replica_nodes: [1].into(),
                            isr_nodes: [1].into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Partition `n` is found at index `n`, and by its id when the ids
    /// have gaps (a broker may leave partitions out of its answer).
    #[test]
    fn a_partition_is_found_by_id_with_or_without_gaps() {
        let m = ClusterMetadata::default().merged(
            &resp(&[
                ("a", 0, &[(2, 1), (0, 1), (1, 1)]),
                ("b", 0, &[(5, 1), (3, -1)]),
            ]),
            true,
        );
        for i in 0..3 {
            assert_eq!(m.partition("a", i).map(|p| p.id), Some(i));
        }
        assert_eq!(m.partition("b", 3).map(|p| p.leader), Some(-1));
        assert_eq!(m.partition("b", 5).map(|p| p.id), Some(5));
        for missing in [-1, 0, 1, 4, 6] {
            assert!(m.partition("b", missing).is_none(), "{missing}");
        }
        assert!(m.partition("a", 3).is_none());
        assert!(m.partition("c", 0).is_none());
    }

    #[test]
    fn partial_refreshes_keep_other_topics_full_ones_replace() {
        let m = ClusterMetadata::default().merged(
            &resp(&[("a", 0, &[(1, 1), (0, 1)]), ("b", 0, &[(0, -1)])]),
            true,
        );
        assert_eq!(
            m.topics["a"]
                .partitions
                .iter()
                .map(|p| p.id)
                .collect::<Vec<_>>(),
            [0, 1]
        );
        assert!(!m.partition("b", 0).unwrap().is_writable());
        let m2 = m.merged(&resp(&[("a", 0, &[(0, 1)])]), false);
        assert!(
            m2.topics.contains_key("b"),
            "a partial refresh keeps other topics"
        );
        assert_eq!(m2.topics["a"].partitions.len(), 1);
        let m3 = m.merged(&resp(&[("a", 0, &[(0, 1)])]), true);
        assert!(
            !m3.topics.contains_key("b"),
            "a full refresh drops topics that are gone"
        );
        let m4 = m.merged(&resp(&[("a", 3, &[])]), false);
        assert!(
            !m4.topics.contains_key("a"),
            "an unknown topic is forgotten"
        );
        assert_eq!(m.brokers[&1].addr(), "h:9092");
    }
}
