//! Producers and transactions: the producers writing to a partition, the
//! state of transactional ids, every transaction of the cluster, and
//! aborting a transaction left hanging (KIP-664).

use std::collections::BTreeMap;

use super::Admin;
use super::call::{Route, check, check_top, partitions_by_topic, per_partition};
use crate::error::Result;
use crate::group::TopicPartition;
use crate::protocol::messages::describe_producers_request::TopicRequest;
use crate::protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use crate::protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    WriteTxnMarkersRequest,
};

/// A producer that wrote to a partition recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// Its producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// The last sequence number it wrote (-1 none).
    pub last_sequence: i32,
    /// When it last wrote (ms).
    pub last_timestamp: i64,
    /// The epoch of the coordinator of its open transaction (-1 none).
    pub coordinator_epoch: i32,
    /// Where its open transaction starts, `None` when it has none.
    pub current_txn_start_offset: Option<i64>,
}

/// A transactional id's state at its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// `Empty`, `Ongoing`, `PrepareCommit`, `CompleteAbort`, …
    pub state: String,
    /// The transaction timeout (ms).
    pub timeout_ms: i32,
    /// When the open transaction started (ms; -1 none).
    pub start_time_ms: i64,
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The partitions in the open transaction.
    pub partitions: Vec<TopicPartition>,
}

/// A transactional id as [`Admin::list_transactions`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its state.
    pub state: String,
}

impl Admin {
    /// The producers each partition's leader knows; each partition's
    /// outcome on its own.
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let p0 = TopicPartition::new("orders", 0);
    /// for s in admin.describe_producers(std::slice::from_ref(&p0)).await[&p0].as_ref().map_err(|e| e.to_string()).unwrap() {
    ///     println!("producer {} epoch {}: open transaction from {:?}", s.producer_id, s.producer_epoch, s.current_txn_start_offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> BTreeMap<TopicPartition, Result<Vec<ProducerState>>> {
        self.per_item(
            ApiKey::DescribeProducers,
            partitions.iter().cloned(),
            |tp| Route::Leader(tp.topic.clone(), tp.partition),
            |conn, parts| {
                let req = DescribeProducersRequest {
                    topics: partitions_by_topic(&parts)
                        .into_iter()
                        .map(|(name, partition_indexes)| TopicRequest {
                            name,
                            partition_indexes: partition_indexes.into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(per_partition(
                        resp.topics.into_iter().map(|t| (t.name, t.partitions)),
                        |p| p.partition_index,
                        |tp, p| {
                            check(
                                ApiKey::DescribeProducers,
                                p.error_code,
                                tp,
                                p.error_message.as_deref(),
                            )
                            .map(|()| {
                                p.active_producers
                                    .into_iter()
                                    .map(|s| ProducerState {
                                        producer_id: s.producer_id,
                                        producer_epoch: s.producer_epoch,
                                        last_sequence: s.last_sequence,
                                        last_timestamp: s.last_timestamp,
                                        coordinator_epoch: s.coordinator_epoch,
                                        current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                            .then_some(s.current_txn_start_offset),
                                    })
                                    .collect()
                            })
                        },
                    ))
                }
            },
        )
        .await
    }

    /// Describes transactional ids at their coordinators; each id's
    /// outcome on its own (TRANSACTIONAL_ID_NOT_FOUND for an unknown one).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// if let Ok(t) = &admin.describe_transactions(&["orders-writer"]).await["orders-writer"] {
    ///     println!("{} since {} ms on {:?}", t.state, t.start_time_ms, t.partitions);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_transactions(
        &self,
        ids: &[&str],
    ) -> BTreeMap<String, Result<TransactionDescription>> {
        self.per_item(
            ApiKey::DescribeTransactions,
            ids.iter().map(|i| i.to_string()),
            |id| Route::TxnCoordinator(id.clone()),
            |conn, ids| async move {
                let req = DescribeTransactionsRequest {
                    transactional_ids: ids,
                    ..Default::default()
                };
                let resp = conn.send(&req).await?;
                Ok(resp
                    .transaction_states
                    .into_iter()
                    .map(|t| {
                        let outcome = check(
                            ApiKey::DescribeTransactions,
                            t.error_code,
                            format!("transactional id '{}'", t.transactional_id),
                            None,
                        )
                        .map(|()| TransactionDescription {
                            state: t.transaction_state,
                            timeout_ms: t.transaction_timeout_ms,
                            start_time_ms: t.transaction_start_time_ms,
                            producer_id: t.producer_id,
                            producer_epoch: t.producer_epoch,
                            partitions: t
                                .topics
                                .into_iter()
                                .flat_map(|tp| {
                                    let topic = tp.topic;
                                    tp.partitions
                                        .into_iter()
                                        .map(move |p| TopicPartition::new(topic.clone(), p))
                                })
                                .collect(),
                        });
                        (t.transactional_id, outcome)
                    })
                    .collect())
            },
        )
        .await
    }

    /// Every transactional id the cluster's coordinators know, sorted
    /// (ListTransactions at every broker): only those in `states` (empty:
    /// any) and, if given, of `producer_ids` or running longer than
    /// `min_duration_ms` (KIP-994, ListTransactions v1+).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// // Transactions open for more than ten minutes.
    /// for t in admin.list_transactions(&["Ongoing"], &[], Some(600_000)).await? {
    ///     println!("{} (producer {})", t.transactional_id, t.producer_id);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_transactions(
        &self,
        states: &[&str],
        producer_ids: &[i64],
        min_duration_ms: Option<i64>,
    ) -> Result<Vec<TransactionListing>> {
        let mut brokers: Vec<i32> = self.client.metadata().brokers.keys().copied().collect();
        if brokers.is_empty() {
            self.client.refresh_metadata(None).await?;
            brokers = self.client.metadata().brokers.keys().copied().collect();
        }
        let answers = self
            .per_item(
                ApiKey::ListTransactions,
                brokers,
                |id| Route::Broker(*id),
                |conn, ids| async move {
                    let version = conn
                        .api_versions()
                        .version_for(ApiKey::ListTransactions, conn.broker())?;
                    if min_duration_ms.is_some() && version < 1 {
                        return Err(super::topics::unsupported(
                            &conn,
                            ApiKey::ListTransactions,
                            1,
                        ));
                    }
                    let req = ListTransactionsRequest {
                        state_filters: states.iter().map(|s| s.to_string()).collect(),
                        producer_id_filters: producer_ids.to_vec(),
                        duration_filter: min_duration_ms.unwrap_or(-1),
                        ..Default::default()
                    };
                    let resp = conn.send_version(&req, version).await?;
                    let outcome = check_top(&conn, ApiKey::ListTransactions, resp.error_code, None)
                        .map(|()| {
                            resp.transaction_states
                                .into_iter()
                                .map(|t| TransactionListing {
                                    transactional_id: t.transactional_id,
                                    producer_id: t.producer_id,
                                    state: t.transaction_state,
                                })
                                .collect::<Vec<_>>()
                        });
                    Ok(ids.first().map(|id| (*id, outcome)).into_iter().collect())
                },
            )
            .await;
        let mut all = Vec::new();
        for (_, answer) in answers {
            all.extend(answer?);
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// Aborts the open transaction of a producer on one partition, by
    /// writing the abort marker there (WriteTxnMarkers to its leader, as
    /// Java's `abortTransaction` and `kafka-transactions.sh abort` do):
    /// the way out for a transaction whose producer and coordinator both
    /// forgot it, which holds back the last stable offset. `producer` is
    /// the partition's [`describe_producers`](Self::describe_producers)
    /// entry. Needs CLUSTER_ACTION on the cluster.
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let p0 = TopicPartition::new("orders", 0);
    /// let producers = admin.describe_producers(std::slice::from_ref(&p0)).await;
    /// for s in producers[&p0].as_ref().map_err(|e| e.to_string()).unwrap() {
    ///     if s.current_txn_start_offset.is_some() {
    ///         admin.abort_transaction(&p0, s).await?; // lets read_committed consumers past it
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn abort_transaction(
        &self,
        partition: &TopicPartition,
        producer: &ProducerState,
    ) -> Result<()> {
        let tp = partition.clone();
        let mut out = self
            .per_item(
                ApiKey::WriteTxnMarkers,
                [tp.clone()],
                |tp| Route::Leader(tp.topic.clone(), tp.partition),
                |conn, _| {
                    let req = WriteTxnMarkersRequest {
                        markers: vec![WritableTxnMarker {
                            producer_id: producer.producer_id,
                            producer_epoch: producer.producer_epoch as i16,
                            transaction_result: false,
                            topics: vec![WritableTxnMarkerTopic {
                                name: tp.topic.clone(),
                                partition_indexes: [tp.partition].into(),
                                ..Default::default()
                            }],
                            coordinator_epoch: producer.coordinator_epoch,
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    async move {
                        let resp = conn.send(&req).await?;
                        Ok(per_partition(
                            resp.markers
                                .into_iter()
                                .flat_map(|m| m.topics)
                                .map(|t| (t.name, t.partitions)),
                            |p| p.partition_index,
                            |tp, p| check(ApiKey::WriteTxnMarkers, p.error_code, tp, None),
                        ))
                    }
                },
            )
            .await;
        out.remove(partition).unwrap_or(Ok(()))
    }
}
