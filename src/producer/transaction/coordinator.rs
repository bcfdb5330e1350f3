//! Talking to the transaction and group coordinators: one request per
//! attempt, with coordinator rediscovery and backoff around it, and the
//! per-API request shapes and answer parsing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::state::{Disposition, StoredError, classify, describe};
use super::{ConsumerGroupMetadata, ProducerIdAndEpoch};
use crate::client::{CallError, Client, CoordinatorKind, RetryPolicy, TrafficClass};
use crate::error::{Error, Result};
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use crate::protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use crate::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
    EndTxnRequest, InitProducerIdRequest, TxnOffsetCommitRequest,
};
use crate::protocol::primitives::Uuid;

/// The longest pause between two attempts (Java's `retry.backoff.max.ms`).
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The highest AddPartitionsToTxn version a client sends: v4+ batch several
/// transactional ids and are meant for brokers (KIP-890), so they are used
/// only against a broker that offers nothing older.
const ADD_PARTITIONS_CLIENT_MAX: i16 = 3;

/// The last versions of transactions V1: EndTxn v5, TxnOffsetCommit v5
/// and Produce v12 say the client speaks transactions V2 (KIP-890).
pub(crate) const LAST_TV1_END_TXN: i16 = 4;
pub(crate) const LAST_TV1_TXN_OFFSET_COMMIT: i16 = 4;
/// The transactions-V2 versions: EndTxn v5 bumps the epoch and answers
/// with it; TxnOffsetCommit v5 adds the group's offsets partition itself,
/// and v6 names topics by id (used when metadata knows every id).
const TV2_END_TXN: i16 = 5;
const TV2_TXN_OFFSET_COMMIT: i16 = 5;
const TXN_OFFSET_COMMIT_BY_ID: i16 = 6;
/// The first Produce version of transactions V2 (partitions join the
/// transaction with their first batch).
pub(crate) const TV2_PRODUCE: i16 = 12;

/// Whether the broker behind `conn` runs transactions V2: the cluster has
/// finalized `transaction.version` 2 or higher (Kafka 4.0+ clusters
/// formatted at 4.0 or later), and it offers the V2 versions of EndTxn,
/// TxnOffsetCommit and Produce (Java's test, KIP-890).
pub(crate) fn offers_transactions_v2(conn: &Connection) -> bool {
    let v = conn.api_versions();
    let reaches = |api: ApiKey, min: i16| v.broker_range(api).is_some_and(|(_, max)| max >= min);
    v.finalized_feature("transaction.version")
        .is_some_and(|level| level >= 2)
        && reaches(ApiKey::EndTxn, TV2_END_TXN)
        && reaches(ApiKey::TxnOffsetCommit, TV2_TXN_OFFSET_COMMIT)
        && reaches(ApiKey::Produce, TV2_PRODUCE)
}

/// Which coordinator a request goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The transaction coordinator of the manager's transactional id.
    Transaction,
    /// The group coordinator of this consumer group.
    Group(&'a str),
}

/// The outcome of one attempt: the client's coordinator step, stopped
/// with the transaction's verdict.
pub(crate) type Step<T> = crate::client::Step<T, Verdict>;

/// Why an attempt gave up.
pub(crate) enum Verdict {
    /// The transaction must be aborted.
    Abortable(StoredError),
    /// The producer must be closed.
    Fatal(StoredError),
}

/// Why an operation failed, which decides the state it leaves behind.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Time ran out or the transport failed for good; the state is kept
    /// so that the call can be repeated.
    Plain(Error),
    Abortable(StoredError),
    Fatal(StoredError),
}

/// Settings for talking to the coordinators.
#[derive(Debug, Clone)]
pub(crate) struct Coordinators {
    pub(crate) client: Client,
    pub(crate) transactional_id: String,
    pub(crate) max_block: Duration,
    pub(crate) retry_backoff: Duration,
    /// Whether the transaction coordinator last talked to runs
    /// transactions V2 (read at each InitProducerId and EndTxn; a
    /// transaction keeps the mode it began in).
    pub(crate) tv2: Arc<AtomicBool>,
}

impl Coordinators {
    /// Runs `attempt` against the coordinator of `target` until it is done,
    /// fails for good or `max.block.ms` passes (the client's coordinator
    /// loop: connection failures and NOT_COORDINATOR/COORDINATOR_NOT_AVAILABLE
    /// look the coordinator up again; other retriable answers back off and
    /// retry).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        target: Target<'_>,
        api: ApiKey,
        attempt: F,
    ) -> std::result::Result<T, Failure>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<Step<T>>>,
    {
        let (kind, key) = match target {
            Target::Transaction => (CoordinatorKind::Transaction, self.transactional_id.as_str()),
            Target::Group(g) => (CoordinatorKind::Group, g),
        };
        let policy = RetryPolicy::exponential(self.retry_backoff, RETRY_BACKOFF_MAX)
            .within(self.max_block)
            .waiting_out();
        self.client
            .coordinator_call(kind, key, TrafficClass::Other, &policy, attempt)
            .await
            .map_err(|e| match e {
                CallError::Stopped(Verdict::Abortable(e)) => Failure::Abortable(e),
                CallError::Stopped(Verdict::Fatal(e)) => Failure::Fatal(e),
                CallError::Failed(e) => Failure::Plain(e),
                CallError::OutOfTime(last) => Failure::Plain(self.timed_out(api, last)),
            })
    }

    fn timed_out(&self, api: ApiKey, last: Option<Error>) -> Error {
        let last = last
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        Error::Timeout {
            what: format!(
                "{api} for transactional.id '{}' (max.block.ms{last})",
                self.transactional_id
            ),
            after: self.max_block,
        }
    }

    /// The step for one error code from `api`.
    pub(crate) fn step<T>(
        &self,
        api: ApiKey,
        code: ErrorCode,
        detail: Option<&str>,
        ok: T,
    ) -> Step<T> {
        let error = || Error::Broker {
            api,
            code,
            context: detail.map(str::to_string),
        };
        match classify(api, code) {
            Disposition::Done => Step::Done(ok),
            Disposition::Retry => Step::Retry(error()),
            Disposition::Rediscover => Step::Rediscover(error()),
            Disposition::Abortable => Step::Stop(Verdict::Abortable(describe(
                api,
                code,
                &self.transactional_id,
                detail,
            ))),
            Disposition::Fatal => Step::Stop(Verdict::Fatal(describe(
                api,
                code,
                &self.transactional_id,
                detail,
            ))),
        }
    }

    /// InitProducerId for the transactional id (the highest version both
    /// sides support; v3+ carry the current id and epoch, -1 for a new
    /// producer).
    pub(crate) async fn init_producer_id(
        &self,
        transaction_timeout_ms: i32,
        current: Option<ProducerIdAndEpoch>,
    ) -> std::result::Result<ProducerIdAndEpoch, Failure> {
        self.call(
            Target::Transaction,
            ApiKey::InitProducerId,
            |conn| async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::InitProducerId, conn.broker())?;
                let (producer_id, producer_epoch) = match current {
                    Some(p) if version >= 3 => (p.id, p.epoch),
                    _ => (-1, -1),
                };
                let req = InitProducerIdRequest {
                    transactional_id: Some(self.transactional_id.clone()),
                    transaction_timeout_ms,
                    producer_id,
                    producer_epoch,
                    ..Default::default()
                };
                let resp = conn.send_version(&req, version).await?;
                self.tv2
                    .store(offers_transactions_v2(&conn), Ordering::Relaxed);
                let got = ProducerIdAndEpoch {
                    id: resp.producer_id,
                    epoch: resp.producer_epoch,
                };
                Ok(self.step(
                    ApiKey::InitProducerId,
                    ErrorCode(resp.error_code),
                    current.map(|_| "bumping the epoch after the abort (KIP-360)"),
                    got,
                ))
            },
        )
        .await
    }

    /// AddPartitionsToTxn for `partitions` (one request for all of them).
    pub(crate) async fn add_partitions(
        &self,
        pid: ProducerIdAndEpoch,
        partitions: &[(String, i32)],
    ) -> std::result::Result<(), Failure> {
        let topics = group_by_topic(partitions);
        self.call(Target::Transaction, ApiKey::AddPartitionsToTxn, |conn| {
            let topics = topics.clone();
            async move {
                let version = add_partitions_version(&conn)?;
                let mut req = AddPartitionsToTxnRequest::default();
                if version >= 4 {
                    req.transactions = vec![AddPartitionsToTxnTransaction {
                        transactional_id: self.transactional_id.clone(),
                        producer_id: pid.id,
                        producer_epoch: pid.epoch,
                        verify_only: false,
                        topics,
                        ..Default::default()
                    }];
                } else {
                    req.v3_and_below_transactional_id = self.transactional_id.clone();
                    req.v3_and_below_producer_id = pid.id;
                    req.v3_and_below_producer_epoch = pid.epoch;
                    req.v3_and_below_topics = topics;
                }
                let resp = conn.send_version(&req, version).await?;
                let codes = self.add_partitions_codes(&conn, &resp, version)?;
                Ok(self.worst(ApiKey::AddPartitionsToTxn, &codes))
            }
        })
        .await
    }

    /// Every (topic/partition, code) in an AddPartitionsToTxn answer.
    fn add_partitions_codes(
        &self,
        conn: &Connection,
        resp: &AddPartitionsToTxnResponse,
        version: i16,
    ) -> Result<Vec<(String, ErrorCode)>> {
        let mut out = Vec::new();
        let topics = if version >= 4 {
            let top = ErrorCode(resp.error_code);
            if !top.is_ok() {
                return Ok(vec![(String::new(), top)]);
            }
            let ours = resp
                .results_by_transaction
                .iter()
                .find(|r| r.transactional_id == self.transactional_id)
                .ok_or_else(|| Error::ProtocolViolation {
                    broker: conn.broker().to_string(),
                    reason: format!(
                        "AddPartitionsToTxn answer has no result for transactional.id '{}'",
                        self.transactional_id
                    ),
                })?;
            &ours.topic_results
        } else {
            &resp.results_by_topic_v3_and_below
        };
        for t in topics {
            for p in &t.results_by_partition {
                out.push((
                    format!("{}/{}", t.name, p.partition_index),
                    ErrorCode(p.partition_error_code),
                ));
            }
        }
        Ok(out)
    }

    /// The step for a set of per-partition codes: the most severe one wins;
    /// OPERATION_NOT_ATTEMPTED only marks partitions skipped because of
    /// another partition's error.
    fn worst(&self, api: ApiKey, codes: &[(String, ErrorCode)]) -> Step<()> {
        let failed = codes
            .iter()
            .filter(|(_, c)| !c.is_ok())
            .filter(|(_, c)| {
                *c != ErrorCode::OPERATION_NOT_ATTEMPTED
                    || codes
                        .iter()
                        .all(|(_, c)| c.is_ok() || *c == ErrorCode::OPERATION_NOT_ATTEMPTED)
            })
            .max_by_key(|(_, c)| classify(api, *c));
        match failed {
            None => Step::Done(()),
            Some((what, code)) => {
                let detail = (!what.is_empty()).then_some(what.as_str());
                self.step(api, *code, detail, ())
            }
        }
    }

    /// AddOffsetsToTxn: puts the group's offsets topic partition into the
    /// transaction.
    pub(crate) async fn add_offsets(
        &self,
        pid: ProducerIdAndEpoch,
        group_id: &str,
    ) -> std::result::Result<(), Failure> {
        self.call(
            Target::Transaction,
            ApiKey::AddOffsetsToTxn,
            |conn| async move {
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::AddOffsetsToTxn, conn.broker())?;
                let req = AddOffsetsToTxnRequest {
                    transactional_id: self.transactional_id.clone(),
                    producer_id: pid.id,
                    producer_epoch: pid.epoch,
                    group_id: group_id.to_string(),
                    ..Default::default()
                };
                let resp = conn.send_version(&req, version).await?;
                let detail = format!("group '{group_id}'");
                Ok(self.step(
                    ApiKey::AddOffsetsToTxn,
                    ErrorCode(resp.error_code),
                    Some(&detail),
                    (),
                ))
            },
        )
        .await
    }

    /// TxnOffsetCommit to the group coordinator; partitions that fail with
    /// a retriable code are sent again.
    pub(crate) async fn txn_offset_commit(
        &self,
        pid: ProducerIdAndEpoch,
        offsets: &[(String, i32, i64, Option<String>)],
        group: &ConsumerGroupMetadata,
        tv2: bool,
    ) -> std::result::Result<(), Failure> {
        // v6 names topics by id: only when metadata knows every one.
        let ids = self
            .client
            .metadata()
            .topic_ids(offsets.iter().map(|o| o.0.as_str()))
            .unwrap_or_default();
        // An id the coordinator refuses (a topic made again since our
        // metadata was read) sends the next attempt by name.
        let ids = std::sync::Mutex::new(ids);
        let pending = std::sync::Mutex::new(offsets.to_vec());
        let group_id = group.group_id.as_str();
        self.call(Target::Group(group_id), ApiKey::TxnOffsetCommit, |conn| {
            let pending = &pending;
            let ids_now = lock(&ids).clone();
            let ids = &ids;
            let max = match (tv2, ids_now.is_empty()) {
                (true, false) => TXN_OFFSET_COMMIT_BY_ID,
                (true, true) => TV2_TXN_OFFSET_COMMIT,
                (false, _) => LAST_TV1_TXN_OFFSET_COMMIT,
            };
            async move {
                let version = conn.api_versions().version_up_to(
                    ApiKey::TxnOffsetCommit,
                    conn.broker(),
                    max,
                )?;
                let todo = lock(pending).clone();
                let by_id = version >= TXN_OFFSET_COMMIT_BY_ID;
                let req = txn_offset_commit_request(
                    &self.transactional_id,
                    pid,
                    group,
                    &todo,
                    version,
                    by_id.then_some(&ids_now),
                );
                let resp = conn.send_version(&req, version).await?;
                let mut codes = Vec::new();
                let mut retry = Vec::new();
                for t in &resp.topics {
                    // A v6 answer names topics by the ids asked for.
                    let name = if by_id {
                        match ids_now.iter().find(|(_, id)| **id == t.topic_id) {
                            Some((name, _)) => name.as_str(),
                            None => continue,
                        }
                    } else {
                        t.name.as_str()
                    };
                    for p in &t.partitions {
                        let code = ErrorCode(p.error_code);
                        codes.push((format!("{name}/{}", p.partition_index), code));
                        if !code.is_ok() {
                            retry.extend(
                                todo.iter()
                                    .filter(|o| o.0 == name && o.1 == p.partition_index)
                                    .cloned(),
                            );
                        }
                    }
                }
                if codes.iter().any(|(_, c)| c.refuses_topic_id()) {
                    lock(ids).clear();
                }
                let step = self.worst(ApiKey::TxnOffsetCommit, &codes);
                if !retry.is_empty() {
                    *lock(pending) = retry;
                }
                Ok(step)
            }
        })
        .await
    }

    /// EndTxn: commits or aborts the open transaction. In transactions V2
    /// (`tv2`, EndTxn v5) the coordinator bumps the epoch (or, at the
    /// last epoch, hands out a new producer id) and answers with it: the
    /// next transaction must use it.
    pub(crate) async fn end_txn(
        &self,
        pid: ProducerIdAndEpoch,
        committed: bool,
        tv2: bool,
    ) -> std::result::Result<Option<ProducerIdAndEpoch>, Failure> {
        let max = if tv2 { TV2_END_TXN } else { LAST_TV1_END_TXN };
        self.call(Target::Transaction, ApiKey::EndTxn, |conn| async move {
            let version = conn
                .api_versions()
                .version_up_to(ApiKey::EndTxn, conn.broker(), max)?;
            let req = EndTxnRequest {
                transactional_id: self.transactional_id.clone(),
                producer_id: pid.id,
                producer_epoch: pid.epoch,
                committed,
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            let code = ErrorCode(resp.error_code);
            if code.is_ok() {
                self.tv2
                    .store(offers_transactions_v2(&conn), Ordering::Relaxed);
            }
            let next =
                (version >= TV2_END_TXN && resp.producer_id >= 0 && resp.producer_epoch >= 0)
                    .then_some(ProducerIdAndEpoch {
                        id: resp.producer_id,
                        epoch: resp.producer_epoch,
                    });
            Ok(self.step(ApiKey::EndTxn, code, None, next))
        })
        .await
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The AddPartitionsToTxn version for this broker: the highest client
/// version (v3 or below), or v4+ only if the broker offers nothing older.
fn add_partitions_version(conn: &Connection) -> Result<i16> {
    let api = ApiKey::AddPartitionsToTxn;
    match conn.api_versions().broker_range(api) {
        Some((min, max)) if min <= ADD_PARTITIONS_CLIENT_MAX && max >= api.versions().0 => {
            Ok(max.min(ADD_PARTITIONS_CLIENT_MAX))
        }
        _ => conn.api_versions().version_for(api, conn.broker()),
    }
}

/// Partitions grouped by topic, in first-seen order.
fn group_by_topic(partitions: &[(String, i32)]) -> Vec<AddPartitionsToTxnTopic> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, p) in partitions {
        match topics.iter_mut().find(|t| &t.name == topic) {
            Some(t) => t.partitions.push(*p),
            None => topics.push(AddPartitionsToTxnTopic {
                name: topic.clone(),
                partitions: [*p].into(),
                ..Default::default()
            }),
        }
    }
    topics
}

fn txn_offset_commit_request(
    transactional_id: &str,
    pid: ProducerIdAndEpoch,
    group: &ConsumerGroupMetadata,
    offsets: &[(String, i32, i64, Option<String>)],
    version: i16,
    ids: Option<&std::collections::HashMap<String, Uuid>>,
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in offsets {
        let p = TxnOffsetCommitRequestPartition {
            partition_index: *partition,
            committed_offset: *offset,
            committed_leader_epoch: -1,
            committed_metadata: metadata.clone(),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| &t.name == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(TxnOffsetCommitRequestTopic {
                name: topic.clone(),
                topic_id: ids
                    .and_then(|ids| ids.get(topic))
                    .copied()
                    .unwrap_or(Uuid::ZERO),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let mut req = TxnOffsetCommitRequest {
        transactional_id: transactional_id.to_string(),
        group_id: group.group_id.clone(),
        producer_id: pid.id,
        producer_epoch: pid.epoch,
        topics,
        ..Default::default()
    };
    if version >= 3 {
        req.generation_id_or_member_epoch = group.generation_id;
        req.member_id = group.member_id.clone();
        req.group_instance_id = group.group_instance_id.clone();
    }
    req
}
