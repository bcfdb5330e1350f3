//! Producer ids and the transaction coordinator: InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn (which
//! writes the markers before it answers).

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use klamm::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use klamm::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use klamm::protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::Cx;
use crate::groups::Committed;
use crate::state::{State, Txn};

/// Kafka's `transaction.max.timeout.ms` default: 15 minutes.
const MAX_TXN_TIMEOUT_MS: i32 = 900_000;

fn new_producer_id(st: &mut State) -> i64 {
    st.next_producer_id += 1;
    st.next_producer_id
}

pub(crate) fn init_producer_id(cx: &Cx<'_>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut st = cx.lock();
    let answer = |r: Result<(i64, i16), ErrorCode>| match r {
        Ok((pid, epoch)) => InitProducerIdResponse {
            producer_id: pid,
            producer_epoch: epoch,
            ..Default::default()
        },
        Err(code) => InitProducerIdResponse {
            error_code: code.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    };
    let Some(tid) = req.transactional_id.filter(|t| !t.is_empty()) else {
        // An idempotent producer: always a new id at epoch 0 (unless the
        // test moved the first epoch), as Kafka's coordinator gives without
        // a transactional id.
        let pid = new_producer_id(&mut st);
        return answer(Ok((pid, st.first_producer_epoch)));
    };
    if st.coordinator(&tid) != Some(cx.broker) {
        return answer(Err(ErrorCode::NOT_COORDINATOR));
    }
    if req.transaction_timeout_ms <= 0 || req.transaction_timeout_ms > MAX_TXN_TIMEOUT_MS {
        return answer(Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT));
    }
    let now = st.clock.now_ms();
    let existing = st.txns.get(&tid).map(|t| (t.producer_id, t.epoch, t.open));
    let (pid, epoch) = match existing {
        None => (new_producer_id(&mut st), st.first_producer_epoch),
        Some((pid, epoch, open)) => {
            if req.producer_id >= 0 && req.producer_id == pid && req.producer_epoch == epoch - 1 {
                // A retry of the request that gave this epoch (its answer
                // was lost): the same answer.
                return answer(Ok((pid, epoch)));
            }
            if req.producer_id >= 0 && (req.producer_id != pid || req.producer_epoch != epoch) {
                return answer(Err(ErrorCode::PRODUCER_FENCED));
            }
            let next = if epoch >= i16::MAX - 1 {
                (new_producer_id(&mut st), st.first_producer_epoch)
            } else {
                (pid, epoch + 1)
            };
            if open {
                // A new instance fences the old one: its transaction aborts
                // at the new epoch, so the old epoch is fenced everywhere.
                if let Some(t) = st.txns.get_mut(&tid) {
                    t.epoch = next.1.max(epoch + 1);
                }
                end(&mut st, &tid, false, now);
            }
            next
        }
    };
    let t = st.txns.entry(tid).or_default();
    t.producer_id = pid;
    t.epoch = epoch;
    t.timeout_ms = req.transaction_timeout_ms;
    t.last_end = None;
    drop(st);
    cx.shared.bump();
    answer(Ok((pid, epoch)))
}

/// The transaction `tid` as coordinated here, after the checks every
/// transactional request makes.
fn check<'a>(
    st: &'a mut State,
    cx: &Cx<'_>,
    tid: &str,
    pid: i64,
    epoch: i16,
) -> Result<&'a mut Txn, ErrorCode> {
    if st.coordinator(tid) != Some(cx.broker) {
        return Err(ErrorCode::NOT_COORDINATOR);
    }
    let t = st
        .txns
        .get_mut(tid)
        .filter(|t| t.producer_id == pid)
        .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
    if epoch < t.epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    if epoch > t.epoch {
        return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
    }
    Ok(t)
}

/// AddPartitionsToTxn. Up to v3 a client adds partitions to its own
/// transaction; from v4 one request carries several transactions, each
/// adding its partitions or, with `verify_only`, asking whether they are in
/// it (as brokers ask the coordinator before they take a transactional
/// batch, KIP-890). Kafka meant v4+ for brokers and checks they come from
/// one with ClusterAction; the fake has no ACLs, so any client may use
/// them.
pub(crate) fn add_partitions(
    cx: &Cx<'_>,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut st = cx.lock();
    if cx.version < 4 {
        let topics = &req.v3_and_below_topics;
        let (tid, pid, epoch) = (
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
        );
        return AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: add_to_txn(&mut st, cx, tid, pid, epoch, topics),
            ..Default::default()
        };
    }
    let results_by_transaction = req
        .transactions
        .iter()
        .map(|t| {
            let topic_results = if t.verify_only {
                verify_in_txn(&mut st, cx, t)
            } else {
                add_to_txn(
                    &mut st,
                    cx,
                    &t.transactional_id,
                    t.producer_id,
                    t.producer_epoch,
                    &t.topics,
                )
            };
            AddPartitionsToTxnResult {
                transactional_id: t.transactional_id.clone(),
                topic_results,
                ..Default::default()
            }
        })
        .collect();
    AddPartitionsToTxnResponse {
        results_by_transaction,
        ..Default::default()
    }
}

/// Adds `topics` to `tid`'s transaction: all of them, or (when one is
/// unknown) none, the others then OPERATION_NOT_ATTEMPTED.
fn add_to_txn(
    st: &mut State,
    cx: &Cx<'_>,
    tid: &str,
    pid: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let unknown: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |&p| (t.name.clone(), p)))
        .filter(|(t, p)| st.partition(t, *p).is_none())
        .collect();
    let result = check(st, cx, tid, pid, epoch).map(|t| {
        if unknown.is_empty() {
            t.open();
            for topic in topics {
                for &p in &topic.partitions {
                    t.partitions.insert((topic.name.clone(), p));
                }
            }
        }
    });
    let code_for = |topic: &str, p: i32| -> i16 {
        match &result {
            Err(code) => code.code(),
            Ok(()) if unknown.is_empty() => 0,
            Ok(()) if unknown.contains(&(topic.to_string(), p)) => {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
            }
            Ok(()) => ErrorCode::OPERATION_NOT_ATTEMPTED.code(),
        }
    };
    topic_results(topics, code_for)
}

/// A `verify_only` transaction of AddPartitionsToTxn v4+: each partition
/// already in the open transaction is NONE, any other TRANSACTION_ABORTABLE
/// (at v4 too, as Apache Kafka 4.4 answers: the differential test checks
/// it); nothing is added.
fn verify_in_txn(
    st: &mut State,
    cx: &Cx<'_>,
    t: &AddPartitionsToTxnTransaction,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let not_in = ErrorCode::TRANSACTION_ABORTABLE;
    let result = check(st, cx, &t.transactional_id, t.producer_id, t.producer_epoch)
        .map(|txn| (txn.open, txn.partitions.clone()));
    topic_results(&t.topics, |topic, p| match &result {
        Err(code) => code.code(),
        Ok((true, added)) if added.contains(&(topic.to_string(), p)) => 0,
        Ok(_) => not_in.code(),
    })
}

/// The AddPartitionsToTxn (v0–3) answer: each partition of `topics` with
/// the code `code_for` gives it.
pub(crate) fn add_partitions_answer(
    topics: &[AddPartitionsToTxnTopic],
    code_for: impl Fn(&str, i32) -> i16,
) -> AddPartitionsToTxnResponse {
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: topic_results(topics, code_for),
        ..Default::default()
    }
}

/// Each partition of `topics` with the code `code_for` gives it.
pub(crate) fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code_for: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: code_for(&t.name, p),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn add_offsets(cx: &Cx<'_>, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let mut st = cx.lock();
    let r = check(
        &mut st,
        cx,
        &req.transactional_id,
        req.producer_id,
        req.producer_epoch,
    )
    .map(|t| {
        t.open();
        t.groups.insert(req.group_id.clone());
    });
    AddOffsetsToTxnResponse {
        error_code: r.err().map_or(0, ErrorCode::code),
        ..Default::default()
    }
}

pub(crate) fn txn_offset_commit(
    cx: &Cx<'_>,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let mut st = cx.lock();
    let result = if st.coordinator(&req.group_id) != Some(cx.broker) {
        Err(ErrorCode::NOT_COORDINATOR)
    } else {
        match st
            .txns
            .iter()
            .find(|(_, t)| t.producer_id == req.producer_id)
            .map(|(id, t)| {
                (
                    id.clone(),
                    t.epoch,
                    t.open && t.groups.contains(&req.group_id),
                )
            }) {
            None => Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
            Some((_, epoch, _)) if req.producer_epoch < epoch => Err(ErrorCode::PRODUCER_FENCED),
            Some((_, _, false)) => Err(ErrorCode::INVALID_TXN_STATE),
            Some((tid, _, true)) => Ok(tid),
        }
    };
    let result = result.and_then(|tid| {
        crate::groups::check_member(
            &st,
            &req.group_id,
            req.generation_id_or_member_epoch,
            &req.member_id,
            true,
        )
        .map(|()| tid)
    });
    let now = st.clock.now_ms();
    let mut topics = Vec::new();
    for t in req.topics {
        let mut partitions = Vec::new();
        for p in t.partitions {
            let injected = match &result {
                Ok(_) => st.take_partition_fault(
                    ApiKey::TxnOffsetCommit,
                    cx.broker,
                    &t.name,
                    p.partition_index,
                ),
                Err(_) => None,
            };
            let code = match (&result, injected) {
                (Err(code), _) => code.code(),
                (Ok(_), Some(code)) => code.code(),
                (Ok(_), None) if st.partition(&t.name, p.partition_index).is_none() => {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
                }
                (Ok(tid), None) => {
                    if let Some(txn) = st.txns.get_mut(tid) {
                        txn.offsets.insert(
                            (req.group_id.clone(), t.name.clone(), p.partition_index),
                            Committed {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata: p.committed_metadata.clone(),
                                timestamp: now,
                            },
                        );
                    }
                    0
                }
            };
            partitions.push(TxnOffsetCommitResponsePartition {
                partition_index: p.partition_index,
                error_code: code,
                ..Default::default()
            });
        }
        topics.push(TxnOffsetCommitResponseTopic {
            name: t.name,
            partitions,
            ..Default::default()
        });
    }
    TxnOffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

pub(crate) fn end_txn(cx: &Cx<'_>, req: EndTxnRequest) -> EndTxnResponse {
    let mut st = cx.lock();
    let now = st.clock.now_ms();
    let r = check(
        &mut st,
        cx,
        &req.transactional_id,
        req.producer_id,
        req.producer_epoch,
    )
    .and_then(|t| match (t.open, t.last_end) {
        (true, _) => Ok(true),
        // A retry of the EndTxn that ended the last transaction (its
        // answer was lost): the same answer, as Kafka's coordinator gives.
        (false, Some(c)) if c == req.committed => Ok(false),
        _ => Err(ErrorCode::INVALID_TXN_STATE),
    });
    if r == Ok(true) {
        end(&mut st, &req.transactional_id, req.committed, now);
    }
    drop(st);
    cx.shared.bump();
    EndTxnResponse {
        error_code: r.err().map_or(0, ErrorCode::code),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}

/// Aborts every open transaction whose timeout has passed, as Kafka's
/// coordinator does (it looks every 10 s by default, the fake at each
/// tick): the epoch is bumped first, so the producer is fenced from the
/// aborted transaction, and the abort markers carry the new epoch. Returns
/// whether any was aborted.
pub(crate) fn expire(st: &mut State, now: tokio::time::Instant, wall_ms: i64) -> bool {
    let due: Vec<String> = st
        .txns
        .iter()
        .filter(|(_, t)| t.open && t.expires.is_some_and(|at| at <= now))
        .map(|(id, _)| id.clone())
        .collect();
    for tid in &due {
        if let Some(t) = st.txns.get_mut(tid) {
            t.epoch = t.epoch.saturating_add(1);
        }
        end(st, tid, false, wall_ms);
        // Not an EndTxn's outcome: a retried EndTxn is not answered as one.
        if let Some(t) = st.txns.get_mut(tid) {
            t.last_end = None;
        }
    }
    !due.is_empty()
}

/// Ends `tid`'s open transaction: markers to each of its partitions, and
/// on commit its offsets to their groups.
pub(crate) fn end(st: &mut State, tid: &str, commit: bool, now: i64) {
    let Some(t) = st.txns.get_mut(tid) else {
        return;
    };
    let (pid, epoch) = (t.producer_id, t.epoch);
    let partitions = std::mem::take(&mut t.partitions);
    let offsets = std::mem::take(&mut t.offsets);
    t.groups.clear();
    t.open = false;
    t.expires = None;
    t.last_end = Some(commit);
    for (topic, p) in partitions {
        if let Some(part) = st.partition_mut(&topic, p) {
            let leader_epoch = part.leader_epoch;
            part.log
                .write_marker(pid, epoch, commit, 0, leader_epoch, now);
        }
    }
    if commit {
        for ((group, topic, p), c) in offsets {
            crate::groups::store_offset(st, &group, &topic, p, c);
        }
    }
}
