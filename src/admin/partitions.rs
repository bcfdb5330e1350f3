//! Partitions: reassignments (alter, cancel, list) and leader elections.

use std::collections::BTreeMap;

use super::Admin;
use super::call::{Route, check, check_top, partitions_by_topic, per_partition};
use crate::error::Result;
use crate::group::TopicPartition;
use crate::protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use crate::protocol::messages::elect_leaders_request::TopicPartitions;
use crate::protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use crate::protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, ElectLeadersRequest,
    ListPartitionReassignmentsRequest,
};

/// A reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    /// The replicas now (the old and the new ones while it moves).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// Which leader an election picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The preferred replica (the first of the assignment), if in sync.
    Preferred,
    /// Any live replica when no in-sync one is left (may lose records).
    Unclean,
}

impl Admin {
    /// Moves partitions to new replicas (`Some`), or cancels a move in
    /// progress (`None`), at the controller; each partition's outcome on
    /// its own (NO_REASSIGNMENT_IN_PROGRESS for a cancel with none). The
    /// call returns once the move has started: follow it with
    /// [`list_partition_reassignments`](Self::list_partition_reassignments).
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let p0 = TopicPartition::new("orders", 0);
    /// let moved = admin.alter_partition_reassignments(&[(p0.clone(), Some(vec![3, 1, 2]))]).await;
    /// moved[&p0].as_ref().map_err(|e| e.to_string()).unwrap();
    /// while admin.list_partition_reassignments(Some(&[p0.clone()])).await?.contains_key(&p0) {
    ///     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_partition_reassignments(
        &self,
        moves: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> BTreeMap<TopicPartition, Result<()>> {
        let targets: BTreeMap<TopicPartition, Option<Vec<i32>>> = moves.iter().cloned().collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::AlterPartitionReassignments,
            targets.keys().cloned(),
            |_| Route::Controller,
            |conn, parts| {
                let req = AlterPartitionReassignmentsRequest {
                    timeout_ms,
                    allow_replication_factor_change: true,
                    topics: partitions_by_topic(&parts)
                        .into_iter()
                        .map(|(name, ps)| ReassignableTopic {
                            partitions: ps
                                .into_iter()
                                .map(|p| ReassignablePartition {
                                    partition_index: p,
                                    replicas: targets
                                        .get(&TopicPartition::new(name.clone(), p))
                                        .and_then(|r| {
                                            r.as_deref()
                                                .map(crate::protocol::primitives::Int32List::from)
                                        }),
                                    ..Default::default()
                                })
                                .collect(),
                            name,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    check_top(
                        &conn,
                        ApiKey::AlterPartitionReassignments,
                        resp.error_code,
                        resp.error_message.as_deref(),
                    )?;
                    Ok(per_partition(
                        resp.responses.into_iter().map(|t| (t.name, t.partitions)),
                        |p| p.partition_index,
                        |tp, p| {
                            check(
                                ApiKey::AlterPartitionReassignments,
                                p.error_code,
                                tp,
                                p.error_message.as_deref(),
                            )
                        },
                    ))
                }
            },
        )
        .await
    }

    /// The reassignments in progress, of the given partitions or (with
    /// `None`) of all.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (tp, r) in admin.list_partition_reassignments(None).await? {
    ///     println!("{tp}: adding {:?}, removing {:?}", r.adding, r.removing);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, PartitionReassignment>> {
        let topics = partitions.map(|ps| {
            partitions_by_topic(ps)
                .into_iter()
                .map(
                    |(name, partition_indexes)| ListPartitionReassignmentsTopics {
                        name,
                        partition_indexes: partition_indexes.into(),
                        ..Default::default()
                    },
                )
                .collect::<Vec<_>>()
        });
        let timeout_ms = self.timeout_ms();
        self.single(
            ApiKey::ListPartitionReassignments,
            Route::Controller,
            |conn| {
                let req = ListPartitionReassignmentsRequest {
                    timeout_ms,
                    topics: topics.clone(),
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    check_top(
                        &conn,
                        ApiKey::ListPartitionReassignments,
                        resp.error_code,
                        resp.error_message.as_deref(),
                    )?;
                    Ok(resp
                        .topics
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.name;
                            t.partitions.into_iter().map(move |p| {
                                (
                                    TopicPartition::new(name.clone(), p.partition_index),
                                    PartitionReassignment {
                                        replicas: p.replicas.into_vec(),
                                        adding: p.adding_replicas.into_vec(),
                                        removing: p.removing_replicas.into_vec(),
                                    },
                                )
                            })
                        })
                        .collect())
                }
            },
        )
        .await
    }

    /// Elects leaders for the given partitions (or, with `None`, every
    /// partition whose leader is not the preferred one, for
    /// [`ElectionType::Preferred`]); each partition's outcome on its own
    /// (ELECTION_NOT_NEEDED when it already has that leader,
    /// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE).
    ///
    /// ```no_run
    /// use klamm::admin::ElectionType;
    /// use klamm::protocol::error_codes::ErrorCode;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for (tp, outcome) in admin.elect_leaders(ElectionType::Preferred, None).await? {
    ///     match outcome {
    ///         Ok(()) => println!("{tp}: preferred leader elected"),
    ///         Err(e) if e.kafka_code() == Some(ErrorCode::ELECTION_NOT_NEEDED) => {}
    ///         Err(e) => println!("{tp}: {e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let topic_partitions = partitions.map(|ps| {
            partitions_by_topic(ps)
                .into_iter()
                .map(|(topic, partitions)| TopicPartitions {
                    topic,
                    partitions: partitions.into(),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
        });
        let timeout_ms = self.timeout_ms();
        self.single(ApiKey::ElectLeaders, Route::Controller, |conn| {
            let req = ElectLeadersRequest {
                election_type: match election {
                    ElectionType::Preferred => 0,
                    ElectionType::Unclean => 1,
                },
                topic_partitions: topic_partitions.clone(),
                timeout_ms,
                ..Default::default()
            };
            async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::ElectLeaders, conn.broker())?;
                if election == ElectionType::Unclean && version == 0 {
                    return Err(super::topics::unsupported(&conn, ApiKey::ElectLeaders, 1));
                }
                let resp = conn.send_version(&req, version).await?;
                check_top(&conn, ApiKey::ElectLeaders, resp.error_code, None)?;
                Ok(per_partition(
                    resp.replica_election_results
                        .into_iter()
                        .map(|t| (t.topic, t.partition_result)),
                    |p| p.partition_id,
                    |tp, p| {
                        check(
                            ApiKey::ElectLeaders,
                            p.error_code,
                            tp,
                            p.error_message.as_deref(),
                        )
                    },
                )
                .into_iter()
                .collect())
            }
        })
        .await
    }
}
