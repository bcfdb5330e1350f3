//! Produce: the checks a partition leader makes, then the append.

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use klamm::protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use klamm::protocol::records::RecordBatch;

use super::Cx;
use crate::ProducedBatch;
use crate::formats::produced_batches;
use crate::state::State;

/// Whether `pid` at `epoch` has an open transaction that added
/// `topic`-`p`; an older epoch of a transactional id is fenced.
fn in_txn(st: &State, pid: i64, epoch: i16, topic: &str, p: i32) -> Result<bool, ErrorCode> {
    match st.txns.values().find(|t| t.producer_id == pid) {
        Some(t) if epoch < t.epoch => Err(ErrorCode::INVALID_PRODUCER_EPOCH),
        Some(t) => Ok(t.open && t.epoch == epoch && t.partitions.contains(&(topic.to_string(), p))),
        None => Ok(false),
    }
}

/// Answers a Produce request; `None` for `acks=0` (no answer goes out).
pub(crate) fn produce(cx: &Cx<'_>, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks_valid = matches!(req.acks, -1..=1);
    let mut written = false;
    let mut responses = Vec::new();
    {
        let mut st = cx.lock();
        for topic in req.topic_data {
            let mut partitions = Vec::new();
            for pd in topic.partition_data {
                let code = if !acks_valid {
                    Err(ErrorCode::INVALID_REQUIRED_ACKS)
                } else {
                    append(&mut st, cx, &topic.name, pd.index, pd.records)
                };
                let log_start = st
                    .partition(&topic.name, pd.index)
                    .map_or(-1, |p| p.log.log_start());
                partitions.push(match code {
                    Ok(base) => {
                        written = true;
                        PartitionProduceResponse {
                            index: pd.index,
                            base_offset: base,
                            log_append_time_ms: -1,
                            log_start_offset: log_start,
                            ..Default::default()
                        }
                    }
                    Err(code) => PartitionProduceResponse {
                        index: pd.index,
                        error_code: code.code(),
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        ..Default::default()
                    },
                });
            }
            responses.push(TopicProduceResponse {
                name: topic.name,
                partition_responses: partitions,
                ..Default::default()
            });
        }
    }
    if written {
        cx.shared.bump();
    }
    (req.acks != 0).then(|| ProduceResponse {
        responses,
        ..Default::default()
    })
}

fn append(
    st: &mut State,
    cx: &Cx<'_>,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
) -> Result<i64, ErrorCode> {
    let max = st
        .topics
        .get(topic)
        .and_then(|t| t.configs.get("max.message.bytes"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(st.max_message_bytes);
    let Some(p) = st.partition(topic, index) else {
        return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    };
    if p.leader != cx.broker {
        return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
    }
    let data = records.ok_or(ErrorCode::INVALID_RECORD)?;
    let batches = produced_batches(data)?;
    let key = (topic.to_string(), index);
    // An error injected for this partition refuses its batches (they are
    // still recorded, with the error).
    let refused = st.take_partition_fault(ApiKey::Produce, cx.broker, topic, index);
    // (base offset, duplicate) of each batch written, in order.
    let mut written = Vec::with_capacity(batches.len());
    let result = match refused {
        Some(code) => Err(code),
        None => write(st, topic, index, &batches, max, &mut written),
    };
    if st.recording {
        let failed = result.err().unwrap_or(ErrorCode::NONE);
        let seen = batches.iter().enumerate().map(|(i, (raw, b))| {
            let (error, base_offset, duplicate) = match written.get(i) {
                Some(&(offset, dup)) => (ErrorCode::NONE, offset, dup),
                None => (failed, -1, false),
            };
            ProducedBatch {
                broker: cx.broker,
                producer_id: b.producer_id,
                producer_epoch: b.producer_epoch,
                base_sequence: b.base_sequence,
                records: b.records.len() as i32,
                compression: b.compression,
                transactional: b.is_transactional,
                size: raw.len(),
                error,
                base_offset,
                duplicate,
            }
        });
        st.produced.entry(key).or_default().extend(seen);
    }
    result
}

/// The leader's checks of a partition's batches, then the appends; each
/// batch written goes on `written`.
fn write(
    st: &mut State,
    topic: &str,
    index: i32,
    batches: &[(bytes::Bytes, RecordBatch)],
    max: usize,
    written: &mut Vec<(i64, bool)>,
) -> Result<i64, ErrorCode> {
    if batches.iter().any(|(raw, _)| raw.len() > max) {
        return Err(ErrorCode::MESSAGE_TOO_LARGE);
    }
    let mut txn_ok = Vec::with_capacity(batches.len());
    for (_, b) in batches {
        let ok = if b.is_transactional {
            in_txn(st, b.producer_id, b.producer_epoch, topic, index)?
        } else {
            false
        };
        txn_ok.push(ok);
    }
    let mut first = None;
    let mut dups = 0;
    let Some(p) = st.partition_mut(topic, index) else {
        return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    };
    let epoch = p.leader_epoch;
    let mut failed = None;
    for ((raw, batch), ok) in batches.iter().zip(txn_ok) {
        let done = match p.log.append(raw, batch, epoch, ok) {
            Ok(done) => done,
            Err(code) => {
                failed = Some(code);
                break;
            }
        };
        if done.duplicate {
            dups += 1;
        }
        written.push((done.base_offset, done.duplicate));
        first.get_or_insert(done.base_offset);
    }
    if dups > 0 {
        *st.duplicates.entry((topic.to_string(), index)).or_insert(0) += dups;
    }
    if let Some(code) = failed {
        return Err(code);
    }
    first.ok_or(ErrorCode::INVALID_RECORD)
}
