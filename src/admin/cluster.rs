//! The cluster: its brokers and controller, its features, the metadata
//! quorum, and the brokers' log directories.

use std::collections::{BTreeMap, BTreeSet};

use super::Admin;
use super::acls::AclOperation;
use super::call::{Route, check, check_top, outcomes, per_partition};
use super::topics::unsupported;
use crate::client::BrokerInfo;
use crate::error::Result;
use crate::group::TopicPartition;
use crate::protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use crate::protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use crate::protocol::messages::update_features_request::FeatureUpdateKey;
use crate::protocol::messages::{
    AlterReplicaLogDirsRequest, ApiKey, ApiVersionsRequest, DescribeClusterRequest,
    DescribeLogDirsRequest, DescribeQuorumRequest, MetadataRequest, UpdateFeaturesRequest,
    describe_quorum_response as dq,
};
use crate::protocol::primitives::Uuid;

/// The cluster as [`Admin::describe_cluster`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's broker id as brokers report it (in KRaft a
    /// broker that forwards to the active controller), `None` if none.
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerInfo>,
    /// Brokers the controller has fenced (when asked for; DescribeCluster
    /// v2+).
    pub fenced_brokers: BTreeSet<i32>,
    /// What the caller may do with the cluster, when asked for.
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
}

/// One feature of [`Features`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureDescription {
    /// The versions the answering broker supports.
    pub supported: Option<(i16, i16)>,
    /// The finalized (cluster-wide, in force) version level, if any.
    pub finalized: Option<i16>,
}

/// The features of the cluster (`metadata.version`,
/// `transaction.version`, `group.version`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// Each feature the broker supports or the cluster finalized.
    pub features: BTreeMap<String, FeatureDescription>,
    /// The epoch of the finalized levels (-1 when unknown).
    pub finalized_epoch: i64,
}

/// A feature change for [`Admin::update_features`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureUpgrade {
    /// Raise the level (or set it when not set).
    Upgrade,
    /// Lower it, keeping metadata that the lower level cannot hold out
    /// (refused if any would be lost).
    SafeDowngrade,
    /// Lower it even if metadata is lost.
    UnsafeDowngrade,
}

/// One replica of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// Its node id.
    pub replica_id: i32,
    /// Its log directory id (v2+).
    pub directory_id: Uuid,
    /// Its log end offset.
    pub log_end_offset: i64,
    /// When the leader last heard from it (ms; -1 unknown).
    pub last_fetch_timestamp: i64,
    /// When it was last caught up (ms; -1 unknown).
    pub last_caught_up_timestamp: i64,
}

/// The metadata quorum (KRaft) as [`Admin::describe_metadata_quorum`]
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The active controller's node id.
    pub leader_id: i32,
    /// Its epoch.
    pub leader_epoch: i32,
    /// The high watermark of the metadata log.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<ReplicaState>,
    /// The observers (the brokers).
    pub observers: Vec<ReplicaState>,
}

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    /// Its path.
    pub path: String,
    /// KAFKA_STORAGE_ERROR when the directory is offline, NONE otherwise.
    pub error: crate::protocol::error_codes::ErrorCode,
    /// The replicas in it.
    pub replicas: BTreeMap<TopicPartition, ReplicaLogDir>,
    /// Its size and free space in bytes (v4+; -1 unknown).
    pub total_bytes: i64,
    /// Free space in bytes (v4+; -1 unknown).
    pub usable_bytes: i64,
}

/// One replica in a log directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaLogDir {
    /// Its size in bytes.
    pub size: i64,
    /// How far it is behind the leader (or, for a future replica, the
    /// current one).
    pub offset_lag: i64,
    /// Whether it is a future replica (being moved here).
    pub is_future: bool,
}

impl Admin {
    /// The cluster id, the controller and the brokers (DescribeCluster,
    /// Kafka 2.8+, else Metadata).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let cluster = admin.describe_cluster().await?;
    /// println!("{} (controller {:?})", cluster.cluster_id, cluster.controller);
    /// for b in &cluster.brokers {
    ///     println!("broker {} at {}", b.id, b.addr());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.describe_cluster_with(false, false).await
    }

    /// Like [`describe_cluster`](Self::describe_cluster), with fenced
    /// brokers and the caller's authorized operations when asked for.
    pub async fn describe_cluster_with(
        &self,
        include_fenced: bool,
        authorized_operations: bool,
    ) -> Result<ClusterDescription> {
        self.single(ApiKey::DescribeCluster, Route::Any, |conn| async move {
            if conn
                .api_versions()
                .broker_range(ApiKey::DescribeCluster)
                .is_none()
            {
                let req = MetadataRequest {
                    topics: Some(Vec::new()),
                    include_cluster_authorized_operations: authorized_operations,
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                return Ok(ClusterDescription {
                    cluster_id: resp.cluster_id.unwrap_or_default(),
                    controller: (resp.controller_id >= 0).then_some(resp.controller_id),
                    brokers: sorted(resp.brokers.into_iter().map(|b| BrokerInfo {
                        id: b.node_id,
                        host: b.host,
                        port: b.port,
                        rack: b.rack,
                    })),
                    fenced_brokers: BTreeSet::new(),
                    authorized_operations: authorized_operations
                        .then(|| AclOperation::from_bits(resp.cluster_authorized_operations))
                        .flatten(),
                });
            }
            let version = conn
                .api_versions()
                .version_for(ApiKey::DescribeCluster, conn.broker())?;
            if include_fenced && version < 2 {
                return Err(unsupported(&conn, ApiKey::DescribeCluster, 2));
            }
            let req = DescribeClusterRequest {
                include_cluster_authorized_operations: authorized_operations,
                endpoint_type: 1,
                include_fenced_brokers: include_fenced,
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            check_top(
                &conn,
                ApiKey::DescribeCluster,
                resp.error_code,
                resp.error_message.as_deref(),
            )?;
            Ok(ClusterDescription {
                cluster_id: resp.cluster_id,
                controller: (resp.controller_id >= 0).then_some(resp.controller_id),
                fenced_brokers: resp
                    .brokers
                    .iter()
                    .filter(|b| b.is_fenced)
                    .map(|b| b.broker_id)
                    .collect(),
                brokers: sorted(resp.brokers.into_iter().map(|b| BrokerInfo {
                    id: b.broker_id,
                    host: b.host,
                    port: b.port,
                    rack: b.rack,
                })),
                authorized_operations: authorized_operations
                    .then(|| AclOperation::from_bits(resp.cluster_authorized_operations))
                    .flatten(),
            })
        })
        .await
    }

    /// The features the cluster has finalized and a broker supports
    /// (ApiVersions v3+).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let features = admin.describe_features().await?;
    /// for (name, f) in &features.features {
    ///     println!("{name}: finalized {:?}, supported {:?}", f.finalized, f.supported);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_features(&self) -> Result<Features> {
        self.single(ApiKey::ApiVersions, Route::Any, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::ApiVersions, conn.broker())?;
            if version < 3 {
                return Err(unsupported(&conn, ApiKey::ApiVersions, 3));
            }
            let req = ApiVersionsRequest {
                client_software_name: "klamm".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            check_top(&conn, ApiKey::ApiVersions, resp.error_code, None)?;
            let mut features: BTreeMap<String, FeatureDescription> = BTreeMap::new();
            for f in resp.supported_features {
                features
                    .entry(f.name)
                    .or_insert(FeatureDescription {
                        supported: None,
                        finalized: None,
                    })
                    .supported = Some((f.min_version, f.max_version));
            }
            for f in resp.finalized_features {
                features
                    .entry(f.name)
                    .or_insert(FeatureDescription {
                        supported: None,
                        finalized: None,
                    })
                    .finalized = Some(f.max_version_level);
            }
            Ok(Features {
                features,
                finalized_epoch: resp.finalized_features_epoch,
            })
        })
        .await
    }

    /// Sets finalized feature levels at the controller (level 0 removes a
    /// feature); each feature's outcome on its own.
    ///
    /// ```no_run
    /// use klamm::admin::FeatureUpgrade;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// // Check first (validate_only), then do it.
    /// let checked = admin.update_features(&[("transaction.version", 2, FeatureUpgrade::Upgrade)], true).await;
    /// if checked["transaction.version"].is_ok() {
    ///     admin.update_features(&[("transaction.version", 2, FeatureUpgrade::Upgrade)], false).await;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_features(
        &self,
        updates: &[(&str, i16, FeatureUpgrade)],
        validate_only: bool,
    ) -> BTreeMap<String, Result<()>> {
        let wanted: BTreeMap<String, (i16, FeatureUpgrade)> = updates
            .iter()
            .map(|(f, level, how)| (f.to_string(), (*level, *how)))
            .collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::UpdateFeatures,
            wanted.keys().cloned(),
            |_| Route::Controller,
            |conn, names| {
                let updates: Vec<(String, i16, FeatureUpgrade)> = names
                    .iter()
                    .map(|n| (n.clone(), wanted[n].0, wanted[n].1))
                    .collect();
                async move {
                    let version = conn
                        .api_versions()
                        .version_for(ApiKey::UpdateFeatures, conn.broker())?;
                    // v0 says "downgrade" with AllowDowngrade, v1+ with
                    // UpgradeType (and refuses the other field).
                    let req = UpdateFeaturesRequest {
                        timeout_ms,
                        validate_only,
                        feature_updates: updates
                            .iter()
                            .map(|(n, level, how)| FeatureUpdateKey {
                                feature: n.clone(),
                                max_version_level: *level,
                                allow_downgrade: version == 0 && *how != FeatureUpgrade::Upgrade,
                                upgrade_type: if version == 0 {
                                    1
                                } else {
                                    match how {
                                        FeatureUpgrade::Upgrade => 1,
                                        FeatureUpgrade::SafeDowngrade => 2,
                                        FeatureUpgrade::UnsafeDowngrade => 3,
                                    }
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    if validate_only && version == 0 {
                        return Err(unsupported(&conn, ApiKey::UpdateFeatures, 1));
                    }
                    let resp = conn.send_version(&req, version).await?;
                    // A top-level error applies to every feature.
                    let top = check_top(
                        &conn,
                        ApiKey::UpdateFeatures,
                        resp.error_code,
                        resp.error_message.as_deref(),
                    );
                    if let Err(e) = top {
                        return Ok(names.into_iter().map(|n| (n, Err(e.duplicate()))).collect());
                    }
                    // v2+ (KIP-1022) sends no per-feature results: the
                    // top-level code is every feature's.
                    if resp.results.is_empty() {
                        return Ok(names.into_iter().map(|n| (n, Ok(()))).collect());
                    }
                    Ok(outcomes(
                        ApiKey::UpdateFeatures,
                        resp.results.into_iter().map(|r| {
                            let label = format!("feature '{}'", r.feature);
                            (r.feature, label, r.error_code, r.error_message)
                        }),
                    ))
                }
            },
        )
        .await
    }

    /// The KRaft metadata quorum: its leader, voters and observers
    /// (DescribeQuorum, forwarded by any broker to the controllers).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let quorum = admin.describe_metadata_quorum().await?;
    /// println!("active controller {} at epoch {}", quorum.leader_id, quorum.leader_epoch);
    /// for v in &quorum.voters {
    ///     println!("voter {}: log end {}", v.replica_id, v.log_end_offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_metadata_quorum(&self) -> Result<QuorumDescription> {
        self.single(ApiKey::DescribeQuorum, Route::Any, |conn| async move {
            let req = DescribeQuorumRequest {
                topics: vec![TopicData {
                    topic_name: "__cluster_metadata".into(),
                    partitions: vec![PartitionData {
                        partition_index: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let resp = conn.send(&req).await?;
            check_top(
                &conn,
                ApiKey::DescribeQuorum,
                resp.error_code,
                resp.error_message.as_deref(),
            )?;
            let p = resp
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .next()
                .ok_or_else(|| crate::Error::ProtocolViolation {
                    broker: conn.broker().to_string(),
                    reason: "DescribeQuorum answer has no partition".into(),
                })?;
            check(
                ApiKey::DescribeQuorum,
                p.error_code,
                "__cluster_metadata/0",
                p.error_message.as_deref(),
            )?;
            let replica = |r: dq::ReplicaState| ReplicaState {
                replica_id: r.replica_id,
                directory_id: r.replica_directory_id,
                log_end_offset: r.log_end_offset,
                last_fetch_timestamp: r.last_fetch_timestamp,
                last_caught_up_timestamp: r.last_caught_up_timestamp,
            };
            Ok(QuorumDescription {
                leader_id: p.leader_id,
                leader_epoch: p.leader_epoch,
                high_watermark: p.high_watermark,
                voters: p.current_voters.into_iter().map(replica).collect(),
                observers: p.observers.into_iter().map(replica).collect(),
            })
        })
        .await
    }

    /// The log directories of each broker, with the replicas in them;
    /// each broker's outcome on its own.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (broker, dirs) in admin.describe_log_dirs(&[1, 2, 3]).await {
    ///     for d in dirs? {
    ///         let bytes: i64 = d.replicas.values().map(|r| r.size).sum();
    ///         println!("broker {broker} {}: {} replicas, {bytes} bytes", d.path, d.replicas.len());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
    ) -> BTreeMap<i32, Result<Vec<LogDirDescription>>> {
        self.per_item(
            ApiKey::DescribeLogDirs,
            brokers.iter().copied(),
            |id| Route::Broker(*id),
            |conn, ids| async move {
                let req = DescribeLogDirsRequest {
                    topics: None,
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                let outcome =
                    check_top(&conn, ApiKey::DescribeLogDirs, resp.error_code, None).map(|()| {
                        resp.results
                            .into_iter()
                            .map(|d| LogDirDescription {
                                path: d.log_dir,
                                error: crate::protocol::error_codes::ErrorCode(d.error_code),
                                total_bytes: d.total_bytes,
                                usable_bytes: d.usable_bytes,
                                replicas: d
                                    .topics
                                    .into_iter()
                                    .flat_map(|t| {
                                        let name = t.name;
                                        t.partitions.into_iter().map(move |p| {
                                            (
                                                TopicPartition::new(
                                                    name.clone(),
                                                    p.partition_index,
                                                ),
                                                ReplicaLogDir {
                                                    size: p.partition_size,
                                                    offset_lag: p.offset_lag,
                                                    is_future: p.is_future_key,
                                                },
                                            )
                                        })
                                    })
                                    .collect(),
                            })
                            .collect()
                    });
                // One broker per request: the answer is that broker's.
                Ok(ids.first().map(|id| (*id, outcome)).into_iter().collect())
            },
        )
        .await
    }

    /// Moves replicas between log directories of the broker that holds
    /// them: `(broker, partition) → directory path`; each replica's
    /// outcome on its own.
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let replica = (1, TopicPartition::new("orders", 0)); // broker 1's replica
    /// let moved = admin.alter_replica_log_dirs(&[(replica.clone(), "/data/disk2".into())]).await;
    /// moved[&replica].as_ref().map_err(|e| e.to_string()).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_replica_log_dirs(
        &self,
        moves: &[((i32, TopicPartition), String)],
    ) -> BTreeMap<(i32, TopicPartition), Result<()>> {
        let targets: BTreeMap<(i32, TopicPartition), String> = moves.iter().cloned().collect();
        self.per_item(
            ApiKey::AlterReplicaLogDirs,
            targets.keys().cloned(),
            |(broker, _)| Route::Broker(*broker),
            |conn, keys| {
                let broker = keys.first().map(|(b, _)| *b).unwrap_or(-1);
                let mut dirs: BTreeMap<&str, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
                for k in &keys {
                    dirs.entry(targets[k].as_str())
                        .or_default()
                        .entry(k.1.topic.clone())
                        .or_default()
                        .push(k.1.partition);
                }
                let req = AlterReplicaLogDirsRequest {
                    dirs: dirs
                        .into_iter()
                        .map(|(path, topics)| AlterReplicaLogDir {
                            path: path.to_string(),
                            topics: topics
                                .into_iter()
                                .map(|(name, partitions)| AlterReplicaLogDirTopic {
                                    name,
                                    partitions: partitions.into(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(per_partition(
                        resp.results
                            .into_iter()
                            .map(|t| (t.topic_name, t.partitions)),
                        |p| p.partition_index,
                        |tp, p| {
                            let on = format!("{tp} on broker {broker}");
                            check(ApiKey::AlterReplicaLogDirs, p.error_code, on, None)
                        },
                    )
                    .into_iter()
                    .map(|(tp, outcome)| ((broker, tp), outcome))
                    .collect())
                }
            },
        )
        .await
    }
}

fn sorted(brokers: impl Iterator<Item = BrokerInfo>) -> Vec<BrokerInfo> {
    let mut b: Vec<BrokerInfo> = brokers.collect();
    b.sort_by_key(|b| b.id);
    b
}
