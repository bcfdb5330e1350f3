//! Produce: the checks a partition leader makes, then the append.

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use klamm::protocol::messages::{ProduceRequest, ProduceResponse};

use super::Cx;
use crate::log::produced_batches;
use crate::state::State;

/// Whether `pid` has an open transaction that added `topic`-`p`.
fn in_txn(st: &State, pid: i64, topic: &str, p: i32) -> bool {
    st.txns
        .values()
        .any(|t| t.open && t.producer_id == pid && t.partitions.contains(&(topic.to_string(), p)))
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
                let code = if acks_valid {
                    append(&mut st, cx, &topic.name, pd.index, pd.records)
                } else {
                    Err(ErrorCode::INVALID_REQUIRED_ACKS)
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
    if batches.iter().any(|(raw, _)| raw.len() > max) {
        return Err(ErrorCode::MESSAGE_TOO_LARGE);
    }
    let txn_ok: Vec<bool> = batches
        .iter()
        .map(|(_, b)| in_txn(st, b.producer_id, topic, index))
        .collect();
    let mut first = None;
    let mut dups = 0;
    let Some(p) = st.partition_mut(topic, index) else {
        return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    };
    let epoch = p.leader_epoch;
    for ((raw, batch), ok) in batches.iter().zip(txn_ok) {
        let done = p.log.append(raw, batch, epoch, ok)?;
        if done.duplicate {
            dups += 1;
        }
        first.get_or_insert(done.base_offset);
    }
    if dups > 0 {
        *st.duplicates.entry((topic.to_string(), index)).or_insert(0) += dups;
    }
    first.ok_or(ErrorCode::INVALID_RECORD)
}
