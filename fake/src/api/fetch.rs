//! Fetch (long polls, size limits, fetch sessions) and ListOffsets.

use std::collections::BTreeMap;
use std::time::Duration;

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use klamm::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use klamm::protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use tokio::time::Instant;

use super::Cx;
use crate::formats::{downconvert, slice};
use crate::state::{FetchSession, State};

const READ_COMMITTED: i8 = 1;

/// (high watermark, last stable offset, log start) of a partition.
type Marks = (i64, i64, i64);

/// One partition a fetch reads.
#[derive(Debug, Clone)]
struct Wanted {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
}

/// How the request's session resolved.
enum Session {
    /// No session: a full answer.
    None,
    /// A session (new or continued): its id, and whether the answer is
    /// incremental.
    Open { id: i32, incremental: bool },
}

pub(crate) async fn fetch(cx: &Cx<'_>, req: FetchRequest) -> FetchResponse {
    let committed = req.isolation_level == READ_COMMITTED;
    let mut wanted: Vec<Wanted> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            wanted.push(Wanted {
                topic: t.topic.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                leader_epoch: p.current_leader_epoch,
            });
        }
    }
    let session = {
        let mut st = cx.lock();
        match open_session(&mut st, cx.version, &req, &wanted) {
            Ok(s) => s,
            Err(code) => {
                return FetchResponse {
                    error_code: code.code(),
                    ..Default::default()
                };
            }
        }
    };
    if let Session::Open { id, .. } = session {
        // The session's partitions, in its order, at its offsets.
        let st = cx.lock();
        if let Some(s) = st.sessions.get(&id) {
            wanted = s
                .partitions
                .iter()
                .map(|((t, p), sp)| Wanted {
                    topic: t.clone(),
                    partition: *p,
                    offset: sp.fetch_offset,
                    max_bytes: sp.max_bytes,
                    leader_epoch: -1,
                })
                .collect();
        }
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let mut changed = cx.shared.changed.subscribe();
    loop {
        let (resp, bytes, errors) = {
            let mut st = cx.lock();
            answer(&mut st, cx, &req, &wanted, committed, &session)
        };
        let done = bytes >= req.min_bytes.max(0) as usize
            || wanted.is_empty()
            || errors
            || req.max_wait_ms <= 0
            || Instant::now() >= deadline;
        if done {
            let mut st = cx.lock();
            record_sent(&mut st, &session, &resp);
            return resp;
        }
        tokio::select! {
            biased;
            () = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// An incremental Fetch with the rest of its session's partitions listed
/// (at their session offsets, forgotten ones left out), so that an error
/// answer shaped from it carries the error on every partition the session
/// fetches, as the answer of a failing broker would. Other requests come
/// back as they are.
pub(crate) fn with_session_partitions(st: &State, mut req: FetchRequest) -> FetchRequest {
    if req.session_id == 0 || req.session_epoch <= 0 {
        return req;
    }
    let Some(session) = st.sessions.get(&req.session_id) else {
        return req;
    };
    for ((topic, partition), sp) in &session.partitions {
        let listed = req
            .topics
            .iter()
            .any(|t| t.topic == *topic && t.partitions.iter().any(|p| p.partition == *partition));
        let forgotten = req
            .forgotten_topics_data
            .iter()
            .any(|f| f.topic == *topic && f.partitions.contains(partition));
        if listed || forgotten {
            continue;
        }
        let fp = FetchPartition {
            partition: *partition,
            fetch_offset: sp.fetch_offset,
            partition_max_bytes: sp.max_bytes,
            ..Default::default()
        };
        match req.topics.iter_mut().find(|t| t.topic == *topic) {
            Some(t) => t.partitions.push(fp),
            None => req.topics.push(FetchTopic {
                topic: topic.clone(),
                partitions: vec![fp],
                ..Default::default()
            }),
        }
    }
    req
}

fn open_session(
    st: &mut State,
    version: i16,
    req: &FetchRequest,
    wanted: &[Wanted],
) -> Result<Session, ErrorCode> {
    if version < 7 {
        return Ok(Session::None);
    }
    let put = |s: &mut FetchSession| {
        for w in wanted {
            let e = s
                .partitions
                .entry((w.topic.clone(), w.partition))
                .or_default();
            e.fetch_offset = w.offset;
            e.max_bytes = w.max_bytes;
        }
    };
    match (req.session_id, req.session_epoch) {
        (0, -1) => Ok(Session::None),
        (id, -1) => {
            st.sessions.remove(&id);
            Ok(Session::None)
        }
        (_, 0) => {
            if req.session_id != 0 {
                st.sessions.remove(&req.session_id);
            }
            st.next_session = st.next_session.wrapping_add(1).max(1);
            let id = st.next_session;
            let mut s = FetchSession {
                epoch: 1,
                ..Default::default()
            };
            put(&mut s);
            st.sessions.insert(id, s);
            Ok(Session::Open {
                id,
                incremental: false,
            })
        }
        (0, _) => Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH),
        (id, epoch) => {
            let s = st
                .sessions
                .get_mut(&id)
                .ok_or(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)?;
            if s.epoch != epoch {
                return Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
            }
            s.epoch = epoch.wrapping_add(1).max(1);
            for f in &req.forgotten_topics_data {
                for p in &f.partitions {
                    s.partitions.remove(&(f.topic.clone(), *p));
                }
            }
            put(s);
            Ok(Session::Open {
                id,
                incremental: true,
            })
        }
    }
}

/// Builds the answer as the logs are now: the response, the record bytes
/// in it, and whether a partition carried an error.
fn answer(
    st: &mut State,
    cx: &Cx<'_>,
    req: &FetchRequest,
    wanted: &[Wanted],
    committed: bool,
    session: &Session,
) -> (FetchResponse, usize, bool) {
    let (session_id, incremental) = match session {
        Session::None => (0, false),
        Session::Open { id, incremental } => (*id, *incremental),
    };
    let last_sent: BTreeMap<(String, i32), Option<Marks>> = st
        .sessions
        .get(&session_id)
        .map(|s| {
            s.partitions
                .iter()
                .map(|(k, v)| (k.clone(), v.last_sent))
                .collect()
        })
        .unwrap_or_default();
    let mut budget = if cx.version >= 3 {
        req.max_bytes.max(0) as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    let sliced = st.slice_fetches;
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for w in wanted {
        let mut pd = PartitionData {
            partition_index: w.partition,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            preferred_read_replica: -1,
            ..Default::default()
        };
        let injected = st.take_partition_fault(ApiKey::Fetch, cx.broker, &w.topic, w.partition);
        match st.partition(&w.topic, w.partition) {
            _ if injected.is_some() => pd.error_code = injected.map_or(0, |c| c.code()),
            None => pd.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            Some(p) if p.leader != cx.broker => {
                pd.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
                if cx.version >= 12 {
                    pd.current_leader.leader_id = p.leader;
                    pd.current_leader.leader_epoch = p.leader_epoch;
                }
            }
            Some(p) if w.leader_epoch >= 0 && w.leader_epoch > p.leader_epoch => {
                pd.error_code = ErrorCode::UNKNOWN_LEADER_EPOCH.code();
            }
            Some(p) if w.leader_epoch >= 0 && w.leader_epoch < p.leader_epoch => {
                pd.error_code = ErrorCode::FENCED_LEADER_EPOCH.code();
            }
            Some(p) => {
                pd.high_watermark = p.log.high_watermark();
                pd.last_stable_offset = p.log.last_stable();
                pd.log_start_offset = p.log.log_start();
                let limit = (w.max_bytes.max(0) as usize).min(budget);
                let read = if sliced {
                    p.log.read_covering(w.offset, limit, committed)
                } else {
                    p.log.read(w.offset, limit.max(1), committed)
                };
                match read {
                    Ok((data, aborted)) => {
                        let data = if sliced {
                            // A slice of the log at the limit; whole first
                            // batches only for the first partition with
                            // data, and not before v3 (KIP-74).
                            let data = if cx.version < 4 {
                                downconvert(data, cx.version, w.offset)
                            } else {
                                data
                            };
                            slice(data, limit, cx.version >= 3 && total == 0)
                        } else if total > 0 && data.len() > budget {
                            // Past the overall limit only the first batch of
                            // the first partition with data goes (KIP-74).
                            bytes::Bytes::new()
                        } else {
                            data
                        };
                        budget = budget.saturating_sub(data.len());
                        total += data.len();
                        if committed && cx.version >= 4 {
                            pd.aborted_transactions = Some(
                                aborted
                                    .iter()
                                    .map(|a| AbortedTransaction {
                                        producer_id: a.producer_id,
                                        first_offset: a.first_offset,
                                        ..Default::default()
                                    })
                                    .collect(),
                            );
                        }
                        pd.records = Some(if cx.version < 4 && !sliced {
                            downconvert(data, cx.version, w.offset)
                        } else {
                            data
                        });
                    }
                    Err(code) => pd.error_code = code.code(),
                }
            }
        }
        if pd.error_code != 0 {
            errors = true;
        }
        if incremental {
            let now = (
                pd.high_watermark,
                pd.last_stable_offset,
                pd.log_start_offset,
            );
            let has_records = pd.records.as_ref().is_some_and(|r| !r.is_empty());
            let prev = last_sent
                .get(&(w.topic.clone(), w.partition))
                .copied()
                .flatten();
            if pd.error_code == 0 && !has_records && prev == Some(now) {
                continue;
            }
        }
        match topics.last_mut() {
            Some(t) if t.topic == w.topic => t.partitions.push(pd),
            _ => topics.push(FetchableTopicResponse {
                topic: w.topic.clone(),
                partitions: vec![pd],
                ..Default::default()
            }),
        }
    }
    let resp = FetchResponse {
        session_id,
        responses: topics,
        ..Default::default()
    };
    (resp, total, errors)
}

/// Notes in the session what the answer told the client.
fn record_sent(st: &mut State, session: &Session, resp: &FetchResponse) {
    let Session::Open { id, .. } = session else {
        return;
    };
    let Some(s) = st.sessions.get_mut(id) else {
        return;
    };
    for t in &resp.responses {
        for p in &t.partitions {
            if let Some(sp) = s.partitions.get_mut(&(t.topic.clone(), p.partition_index)) {
                sp.last_sent = Some((p.high_watermark, p.last_stable_offset, p.log_start_offset));
            }
        }
    }
}

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub(crate) fn list_offsets(cx: &Cx<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let st = cx.lock();
    let committed = req.isolation_level == READ_COMMITTED;
    let topics = req
        .topics
        .into_iter()
        .map(|t| ListOffsetsTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                        ..Default::default()
                    };
                    let found = match st.partition(&t.name, p.partition_index) {
                        None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                        Some(part) if part.leader != cx.broker => {
                            Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                        }
                        Some(part) => {
                            let log = &part.log;
                            // An offset found by time carries the epoch of
                            // the batch holding its record, as Kafka's;
                            // the log's ends carry the current epoch.
                            let now = part.leader_epoch;
                            Ok(match p.timestamp {
                                LATEST if committed => Some((log.last_stable(), -1, now)),
                                LATEST => Some((log.high_watermark(), -1, now)),
                                EARLIEST | EARLIEST_LOCAL => Some((log.log_start(), -1, now)),
                                MAX_TIMESTAMP => log.max_timestamp(),
                                LATEST_TIERED => None,
                                ts if ts >= 0 => log.offset_for_time(ts),
                                _ => None,
                            }
                            // Under read_committed nothing at or past the
                            // last stable offset is an answer.
                            .filter(|&(o, ts, _)| !committed || ts == -1 || o < log.last_stable()))
                        }
                    };
                    match found {
                        Err(code) => r.error_code = code.code(),
                        // Version 0 answers with a list of offsets; later
                        // versions with one offset and its timestamp.
                        Ok(Some((offset, _, _))) if cx.version == 0 => {
                            r.old_style_offsets = vec![offset];
                        }
                        Ok(Some((offset, ts, epoch))) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            r.leader_epoch = epoch;
                        }
                        Ok(None) => {}
                    }
                    if cx.version < 4 {
                        r.leader_epoch = -1;
                    }
                    r
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
