//! Topics: create, delete (by name or id), list, describe, add partitions.

use std::collections::{BTreeMap, BTreeSet};

use super::Admin;
use super::acls::AclOperation;
use super::call::{Answers, Route, check, check_top, item_error, outcomes};
use super::configs::{ConfigEntry, ConfigSource};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use crate::protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use crate::protocol::messages::delete_topics_request::DeleteTopicState;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::metadata_response::MetadataResponseTopic;
use crate::protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
};
use crate::protocol::primitives::Uuid;

/// A topic to create: partitions and replication factor (or -1 for the
/// broker's defaults), or an explicit replica assignment, and configs.
///
/// ```
/// use klamm::admin::NewTopic;
///
/// let t = NewTopic::new("orders", 3, 2).with_config("cleanup.policy", "compact");
/// assert_eq!(t.partitions, 3);
/// // Partition 0 on brokers 1 and 2, partition 1 on 2 and 3: the counts
/// // come from the assignment.
/// let placed = NewTopic::with_assignment("audit", [(0, vec![1, 2]), (1, vec![2, 3])]);
/// assert_eq!((placed.partitions, placed.replication_factor), (-1, -1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// The number of partitions; -1 for the broker's `num.partitions`
    /// (or with an assignment).
    pub partitions: i32,
    /// The replication factor; -1 for the broker's
    /// `default.replication.factor` (or with an assignment).
    pub replication_factor: i16,
    /// Explicit replicas per partition (the first is the preferred
    /// leader); empty to let the controller place them.
    pub assignment: BTreeMap<i32, Vec<i32>>,
    /// Topic configs (`retention.ms`, `cleanup.policy`, …).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic of `partitions` partitions with `replication_factor`
    /// replicas each (-1 for either: the broker's default).
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            assignment: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// A topic whose partitions are placed on the given brokers.
    pub fn with_assignment(
        name: impl Into<String>,
        assignment: impl IntoIterator<Item = (i32, Vec<i32>)>,
    ) -> NewTopic {
        NewTopic {
            assignment: assignment.into_iter().collect(),
            ..NewTopic::new(name, -1, -1)
        }
    }

    /// The same topic with a config set.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// What the controller made of a created topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Its id (zero before CreateTopics v7).
    pub topic_id: Uuid,
    /// Its partitions (-1 before v5, which does not say).
    pub partitions: i32,
    /// Its replication factor (-1 before v5).
    pub replication_factor: i16,
    /// Its configs as the controller set them (v5+; empty when the
    /// caller may not describe them).
    pub configs: Vec<ConfigEntry>,
}

/// A topic as [`Admin::list_topics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicListing {
    /// The name.
    pub name: String,
    /// The id (zero from brokers before Kafka 2.8).
    pub topic_id: Uuid,
    /// Whether the topic is one of Kafka's own (`__consumer_offsets`, …).
    pub internal: bool,
}

/// A topic as [`Admin::describe_topics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The name.
    pub name: String,
    /// The id.
    pub topic_id: Uuid,
    /// Whether the topic is one of Kafka's own.
    pub internal: bool,
    /// Its partitions, by partition number.
    pub partitions: Vec<PartitionDescription>,
    /// What the caller may do with the topic, when asked for
    /// ([`Admin::describe_topics_with`]) and the broker says.
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: i32,
    /// The leader's broker id, `None` while it has none.
    pub leader: Option<i32>,
    /// The leader epoch (-1 when unknown).
    pub leader_epoch: i32,
    /// The replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are offline.
    pub offline_replicas: Vec<i32>,
    /// A partition-level error the broker reported (e.g.
    /// LEADER_NOT_AVAILABLE), NONE otherwise.
    pub error: ErrorCode,
}

/// Partitions to add to a topic: the new total, and optionally where the
/// new ones go.
///
/// ```
/// use klamm::admin::NewPartitions;
/// let more = NewPartitions::increase_to(12);
/// let placed = NewPartitions::increase_to(4).with_assignment(vec![vec![1, 2]]);
/// assert_eq!(placed.assignment.unwrap().len(), 1);
/// # let _ = more;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The total number of partitions after the change.
    pub total: i32,
    /// Replicas for each new partition, in order; `None` to let the
    /// controller place them.
    pub assignment: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// Grow the topic to `total` partitions.
    pub fn increase_to(total: i32) -> NewPartitions {
        NewPartitions {
            total,
            assignment: None,
        }
    }

    /// The same change with the new partitions placed on these brokers.
    pub fn with_assignment(mut self, assignment: Vec<Vec<i32>>) -> NewPartitions {
        self.assignment = Some(assignment);
        self
    }
}

/// A topic named by name or by id (DeleteTopics v6+ takes either).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TopicRef {
    Name(String),
    Id(Uuid),
}

impl std::fmt::Display for TopicRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRef::Name(n) => write!(f, "topic '{n}'"),
            TopicRef::Id(id) => write!(f, "topic id {}", id.to_kafka_string()),
        }
    }
}

impl Admin {
    /// Creates topics at the controller; each topic's outcome on its own
    /// (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR, POLICY_VIOLATION,
    /// INVALID_CONFIG, … as [`Error::Broker`] with the controller's
    /// message).
    ///
    /// The controller answers once the topic is committed; its brokers
    /// learn of it a moment later, and a producer or consumer started at
    /// once may retry a few times until they do.
    ///
    /// ```no_run
    /// use klamm::admin::NewTopic;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let created = admin
    ///     .create_topics(&[NewTopic::new("orders", 6, 3), NewTopic::new("audit", 1, 3)])
    ///     .await;
    /// for (topic, outcome) in &created {
    ///     match outcome {
    ///         Ok(t) => println!("{topic}: {} partitions", t.partitions),
    ///         Err(e) => println!("{topic}: {e}"), // e.g. TOPIC_ALREADY_EXISTS
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
    ) -> BTreeMap<String, Result<CreatedTopic>> {
        self.create_topics_with(topics, false).await
    }

    /// Like [`create_topics`](Self::create_topics); with `validate_only`
    /// the controller checks everything and creates nothing.
    pub async fn create_topics_with(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> BTreeMap<String, Result<CreatedTopic>> {
        let by_name: BTreeMap<&str, &NewTopic> =
            topics.iter().map(|t| (t.name.as_str(), t)).collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::CreateTopics,
            topics.iter().map(|t| t.name.clone()),
            |_| Route::Controller,
            |conn, names| {
                let req = CreateTopicsRequest {
                    topics: names
                        .iter()
                        .filter_map(|n| by_name.get(n.as_str()))
                        .map(|t| creatable(t))
                        .collect(),
                    timeout_ms,
                    validate_only,
                    ..Default::default()
                };
                async move {
                    let version = conn
                        .api_versions()
                        .version_for(ApiKey::CreateTopics, conn.broker())?;
                    if validate_only && version == 0 {
                        return Err(unsupported(&conn, ApiKey::CreateTopics, 1));
                    }
                    let resp = conn.send_version(&req, version).await?;
                    Ok(resp
                        .topics
                        .into_iter()
                        .map(|t| {
                            let outcome = check(
                                ApiKey::CreateTopics,
                                t.error_code,
                                format!("topic '{}'", t.name),
                                t.error_message.as_deref(),
                            )
                            .map(|()| CreatedTopic {
                                topic_id: t.topic_id,
                                partitions: t.num_partitions,
                                replication_factor: t.replication_factor,
                                configs: t
                                    .configs
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|c| ConfigEntry {
                                        source: ConfigSource::from_wire(c.config_source),
                                        name: c.name,
                                        value: c.value,
                                        read_only: c.read_only,
                                        sensitive: c.is_sensitive,
                                        synonyms: Vec::new(),
                                        config_type: None,
                                        documentation: None,
                                    })
                                    .collect(),
                            });
                            (t.name, outcome)
                        })
                        .collect::<Answers<_, _>>())
                }
            },
        )
        .await
    }

    /// Deletes topics by name at the controller; each topic's outcome on
    /// its own (UNKNOWN_TOPIC_OR_PARTITION for one that does not exist).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (topic, outcome) in admin.delete_topics(&["orders", "audit"]).await {
    ///     println!("{topic}: {:?}", outcome.map_err(|e| e.to_string()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_topics(&self, topics: &[&str]) -> BTreeMap<String, Result<()>> {
        let refs = topics.iter().map(|t| TopicRef::Name(t.to_string()));
        self.delete(refs)
            .await
            .into_iter()
            .filter_map(|(r, o)| match r {
                TopicRef::Name(n) => Some((n, o.map(|_| ()))),
                TopicRef::Id(_) => None,
            })
            .collect()
    }

    /// Deletes topics by id (DeleteTopics v6+, Kafka 2.8+); each topic's
    /// outcome on its own: the deleted topic's name, or UNKNOWN_TOPIC_ID.
    ///
    /// ```no_run
    /// use klamm::protocol::primitives::Uuid;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let id = Uuid::parse("q1BnLL8vQAmZpKnKx1lWTw").expect("a topic id");
    /// let deleted = admin.delete_topics_by_id(&[id]).await;
    /// println!("deleted {:?}", deleted[&id].as_ref().ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_topics_by_id(&self, ids: &[Uuid]) -> BTreeMap<Uuid, Result<String>> {
        self.delete(ids.iter().map(|id| TopicRef::Id(*id)))
            .await
            .into_iter()
            .filter_map(|(r, o)| match r {
                TopicRef::Id(id) => Some((id, o)),
                TopicRef::Name(_) => None,
            })
            .collect()
    }

    async fn delete(
        &self,
        refs: impl Iterator<Item = TopicRef>,
    ) -> BTreeMap<TopicRef, Result<String>> {
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::DeleteTopics,
            refs,
            |_| Route::Controller,
            |conn, refs| async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::DeleteTopics, conn.broker())?;
                let by_id = refs.iter().any(|r| matches!(r, TopicRef::Id(_)));
                if by_id && version < 6 {
                    return Err(unsupported(&conn, ApiKey::DeleteTopics, 6));
                }
                let mut req = DeleteTopicsRequest {
                    timeout_ms,
                    ..Default::default()
                };
                for r in &refs {
                    match (r, version >= 6) {
                        (TopicRef::Name(n), false) => req.topic_names.push(n.clone()),
                        (TopicRef::Name(n), true) => req.topics.push(DeleteTopicState {
                            name: Some(n.clone()),
                            ..Default::default()
                        }),
                        (TopicRef::Id(id), _) => req.topics.push(DeleteTopicState {
                            topic_id: *id,
                            ..Default::default()
                        }),
                    }
                }
                let resp = conn.send_version(&req, version).await?;
                let mut answers = Vec::new();
                for r in resp.responses {
                    let name = r.name.clone().unwrap_or_default();
                    // Answered by the key it was asked with: a name when
                    // the request named one, else the id.
                    let key = if refs.contains(&TopicRef::Name(name.clone())) {
                        TopicRef::Name(name.clone())
                    } else {
                        TopicRef::Id(r.topic_id)
                    };
                    let outcome = check(
                        ApiKey::DeleteTopics,
                        r.error_code,
                        &key,
                        r.error_message.as_deref(),
                    )
                    .map(|()| name);
                    answers.push((key, outcome));
                }
                Ok(answers)
            },
        )
        .await
    }

    /// Every topic of the cluster, sorted by name; Kafka's own topics
    /// only with `include_internal`.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for t in admin.list_topics(false).await? {
    ///     println!("{} {}", t.name, t.topic_id.to_kafka_string());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicListing>> {
        let resp = self.metadata(None, false).await?;
        let mut topics: Vec<TopicListing> = resp
            .into_iter()
            .filter(|t| ErrorCode(t.error_code).is_ok() && (include_internal || !t.is_internal))
            .map(|t| TopicListing {
                name: t.name.unwrap_or_default(),
                topic_id: t.topic_id,
                internal: t.is_internal,
            })
            .collect();
        topics.sort();
        Ok(topics)
    }

    /// Describes topics by name (one Metadata request to any broker); each
    /// topic's outcome on its own (UNKNOWN_TOPIC_OR_PARTITION,
    /// TOPIC_AUTHORIZATION_FAILED).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let described = admin.describe_topics(&["orders"]).await;
    /// for p in &described["orders"].as_ref().map_err(|e| e.to_string()).unwrap().partitions {
    ///     println!("{}: leader {:?}, replicas {:?}, isr {:?}", p.partition, p.leader, p.replicas, p.isr);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_topics(
        &self,
        topics: &[&str],
    ) -> BTreeMap<String, Result<TopicDescription>> {
        self.describe_topics_with(topics, false).await
    }

    /// Like [`describe_topics`](Self::describe_topics), with
    /// [`TopicDescription::authorized_operations`] filled in when
    /// `authorized_operations` is set.
    pub async fn describe_topics_with(
        &self,
        topics: &[&str],
        authorized_operations: bool,
    ) -> BTreeMap<String, Result<TopicDescription>> {
        let wanted: Vec<MetadataRequestTopic> = topics
            .iter()
            .map(|t| MetadataRequestTopic {
                name: Some(t.to_string()),
                ..Default::default()
            })
            .collect();
        self.described(
            topics.iter().map(|t| t.to_string()),
            wanted,
            authorized_operations,
            |t| t.name.clone().unwrap_or_default(),
            |name| format!("topic '{name}'"),
        )
        .await
    }

    /// Describes topics by id (Metadata v12+, Kafka 3.1+); each topic's
    /// outcome on its own (UNKNOWN_TOPIC_ID for an id no topic has).
    ///
    /// ```no_run
    /// use klamm::protocol::primitives::Uuid;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let id = Uuid::parse("q1BnLL8vQAmZpKnKx1lWTw").expect("a topic id");
    /// if let Ok(t) = &admin.describe_topics_by_id(&[id]).await[&id] {
    ///     println!("{id} is {}", t.name);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_topics_by_id(
        &self,
        ids: &[Uuid],
    ) -> BTreeMap<Uuid, Result<TopicDescription>> {
        let wanted: Vec<MetadataRequestTopic> = ids
            .iter()
            .map(|id| MetadataRequestTopic {
                topic_id: *id,
                name: None,
                ..Default::default()
            })
            .collect();
        self.described(
            ids.iter().copied(),
            wanted,
            false,
            |t| t.topic_id,
            |id| format!("topic id {}", id.to_kafka_string()),
        )
        .await
    }

    async fn described<K: Ord + Clone + std::fmt::Debug>(
        &self,
        keys: impl Iterator<Item = K>,
        wanted: Vec<MetadataRequestTopic>,
        authorized_operations: bool,
        key_of: impl Fn(&MetadataResponseTopic) -> K,
        label: impl Fn(&K) -> String,
    ) -> BTreeMap<K, Result<TopicDescription>> {
        let keys: Vec<K> = keys.collect();
        match self.metadata(Some(wanted), authorized_operations).await {
            Err(e) => keys.into_iter().map(|k| (k, Err(e.duplicate()))).collect(),
            Ok(answer) => {
                let mut found: BTreeMap<K, MetadataResponseTopic> =
                    answer.into_iter().map(|t| (key_of(&t), t)).collect();
                keys.into_iter()
                    .map(|k| {
                        let outcome = match found.remove(&k) {
                            None => Err(Error::ProtocolViolation {
                                broker: "the cluster".into(),
                                reason: format!("Metadata answer has no {}", label(&k)),
                            }),
                            Some(t) => describe(t, authorized_operations, &label(&k)),
                        };
                        (k, outcome)
                    })
                    .collect()
            }
        }
    }

    /// The topics of a Metadata request to any broker, retried while
    /// every topic (or the request) fails retriably.
    async fn metadata(
        &self,
        topics: Option<Vec<MetadataRequestTopic>>,
        authorized_operations: bool,
    ) -> Result<Vec<MetadataResponseTopic>> {
        let by_id = topics
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t.name.is_none()));
        self.single(ApiKey::Metadata, Route::Any, |conn| {
            let topics = topics.clone();
            async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::Metadata, conn.broker())?;
                if by_id && version < 12 {
                    return Err(unsupported(&conn, ApiKey::Metadata, 12));
                }
                let req = MetadataRequest {
                    topics,
                    allow_auto_topic_creation: false,
                    include_topic_authorized_operations: authorized_operations,
                    ..Default::default()
                };
                let resp = conn.send_version(&req, version).await?;
                check_top(&conn, ApiKey::Metadata, resp.error_code, None)?;
                // A topic being created has no leaders yet: ask again.
                if let Some(t) = resp
                    .topics
                    .iter()
                    .find(|t| matches!(ErrorCode(t.error_code), ErrorCode::LEADER_NOT_AVAILABLE))
                {
                    return Err(item_error(
                        ApiKey::Metadata,
                        ErrorCode(t.error_code),
                        format!("topic '{}'", t.name.as_deref().unwrap_or_default()),
                        None,
                    ));
                }
                Ok(resp.topics)
            }
        })
        .await
    }

    /// Adds partitions to topics at the controller; each topic's outcome
    /// on its own (INVALID_PARTITIONS when the total is not larger).
    ///
    /// ```no_run
    /// use klamm::admin::NewPartitions;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let grown = admin.create_partitions(&[("orders", NewPartitions::increase_to(12))]).await;
    /// grown["orders"].as_ref().map_err(|e| e.to_string()).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_partitions(
        &self,
        changes: &[(&str, NewPartitions)],
    ) -> BTreeMap<String, Result<()>> {
        self.create_partitions_with(changes, false).await
    }

    /// Like [`create_partitions`](Self::create_partitions); with
    /// `validate_only` nothing changes.
    pub async fn create_partitions_with(
        &self,
        changes: &[(&str, NewPartitions)],
        validate_only: bool,
    ) -> BTreeMap<String, Result<()>> {
        let by_name: BTreeMap<&str, &NewPartitions> =
            changes.iter().map(|(t, p)| (*t, p)).collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::CreatePartitions,
            changes.iter().map(|(t, _)| t.to_string()),
            |_| Route::Controller,
            |conn, names| {
                let req = CreatePartitionsRequest {
                    topics: names
                        .iter()
                        .filter_map(|n| by_name.get(n.as_str()).map(|p| (n, p)))
                        .map(|(n, p)| CreatePartitionsTopic {
                            name: n.clone(),
                            count: p.total,
                            assignments: p.assignment.as_ref().map(|a| {
                                a.iter()
                                    .map(|brokers| CreatePartitionsAssignment {
                                        broker_ids: brokers.as_slice().into(),
                                        ..Default::default()
                                    })
                                    .collect()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms,
                    validate_only,
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(outcomes(
                        ApiKey::CreatePartitions,
                        resp.results.into_iter().map(|r| {
                            let label = format!("topic '{}'", r.name);
                            (r.name, label, r.error_code, r.error_message)
                        }),
                    ))
                }
            },
        )
        .await
    }
}

fn creatable(t: &NewTopic) -> CreatableTopic {
    CreatableTopic {
        name: t.name.clone(),
        num_partitions: if t.assignment.is_empty() {
            t.partitions
        } else {
            -1
        },
        replication_factor: if t.assignment.is_empty() {
            t.replication_factor
        } else {
            -1
        },
        assignments: t
            .assignment
            .iter()
            .map(|(p, brokers)| CreatableReplicaAssignment {
                partition_index: *p,
                broker_ids: brokers.as_slice().into(),
                ..Default::default()
            })
            .collect(),
        configs: t
            .configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: k.clone(),
                value: Some(v.clone()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn describe(
    t: MetadataResponseTopic,
    authorized_operations: bool,
    label: &str,
) -> Result<TopicDescription> {
    check(ApiKey::Metadata, t.error_code, label, None)?;
    let mut partitions: Vec<PartitionDescription> = t
        .partitions
        .into_iter()
        .map(|p| PartitionDescription {
            partition: p.partition_index,
            leader: (p.leader_id >= 0).then_some(p.leader_id),
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.into_vec(),
            isr: p.isr_nodes.into_vec(),
            offline_replicas: p.offline_replicas.into_vec(),
            error: ErrorCode(p.error_code),
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    Ok(TopicDescription {
        name: t.name.unwrap_or_default(),
        topic_id: t.topic_id,
        internal: t.is_internal,
        partitions,
        authorized_operations: authorized_operations
            .then(|| AclOperation::from_bits(t.topic_authorized_operations))
            .flatten(),
    })
}

/// The API needs at least `min` for what was asked, and the broker
/// offers less.
pub(crate) fn unsupported(conn: &crate::net::Connection, api: ApiKey, min: i16) -> Error {
    Error::UnsupportedVersion {
        broker: conn.broker().to_string(),
        api,
        broker_versions: conn.api_versions().broker_range(api),
        ours: (min, crate::net::client_max(api)),
    }
}
