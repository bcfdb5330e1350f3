//! One fetch round of a [`ShareConsumer`]: ShareFetch to every leader
//! together, each carrying the acknowledgements of its session, and the
//! records of the answers (acquired ranges checked, gaps noted).

use crate::determinism::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::acks::{GAP, PartitionAcks};
use super::session::{self, Session, Tp};
use super::{AckFailure, ShareConsumer, ShareRecord, lock};
use crate::client::BrokerInfo;
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::share_fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::messages::share_fetch_response::ShareFetchResponse;
use crate::protocol::messages::{ApiKey, ShareFetchRequest};
use crate::protocol::primitives::Uuid;
use crate::protocol::records::{Batch, decode_record_set};

/// What one fetch round brought from one leader.
struct Round {
    records: Vec<ShareRecord>,
    gaps: Vec<(Tp, i64)>,
    failures: Vec<AckFailure>,
    fatal: Option<Error>,
}

impl ShareConsumer {
    /// One fetch from every leader of the assignment (and every leader
    /// with acknowledgements to send), together.
    pub(super) async fn round(
        &self,
        sessions: &mut HashMap<i32, Session>,
        assignment: &BTreeSet<Tp>,
        wait: Duration,
    ) -> Result<Vec<ShareRecord>> {
        // The leaders of the assigned partitions.
        let mut wanted: BTreeMap<i32, (BrokerInfo, BTreeSet<Tp>)> = BTreeMap::new();
        for &(id, p) in assignment {
            let Some(name) = self.member.name_of(&id) else {
                continue;
            };
            match self.client.leader(&name, p).await {
                Ok(b) => {
                    wanted
                        .entry(b.id)
                        .or_insert_with(|| (b.clone(), BTreeSet::new()))
                        .1
                        .insert((id, p));
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = p, error = %e, "no leader for a share partition yet")
                }
            }
        }
        // Acknowledgements go to the session that acquired the records.
        let mut by_leader = self.take_ready();
        let mut leaders: BTreeSet<i32> = wanted.keys().copied().collect();
        leaders.extend(by_leader.keys().copied());
        leaders.extend(
            sessions
                .iter()
                .filter(|(_, s)| s.is_open())
                .map(|(id, _)| *id),
        );

        let mut requests = Vec::new();
        for leader in leaders {
            let (broker, tps) = match wanted.remove(&leader) {
                Some(w) => (Some(w.0), w.1),
                None => (self.broker(leader), BTreeSet::new()),
            };
            let mut acks = by_leader.remove(&leader).unwrap_or_default();
            let session = sessions.entry(leader).or_default();
            if !session.is_open() && !acks.is_empty() {
                // The session these records came from is gone; the broker
                // released them (they will be delivered again).
                tracing::debug!(
                    leader,
                    partitions = acks.len(),
                    "acknowledgements of a closed share session dropped"
                );
                acks.clear();
            }
            if tps.is_empty() && acks.is_empty() && !session.is_open() {
                continue;
            }
            let Some(broker) = broker else {
                session.reset();
                continue;
            };
            let acked: BTreeSet<Tp> = acks.keys().copied().collect();
            let plan = session.plan(&tps, &acked);
            let req = self.fetch_request(&plan, &acks, !tps.is_empty(), wait);
            requests.push((leader, broker, plan, req, acks));
        }
        if requests.is_empty() {
            // Nothing to fetch: wait out a little of the time, so that a
            // poll loop without an assignment does not spin.
            tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
            return Ok(Vec::new());
        }
        let sent = requests
            .into_iter()
            .map(|(leader, broker, plan, req, acks)| async move {
                let answer = self.send_fetch(&broker, &req, wait).await;
                (leader, plan, acks, answer)
            });
        let answers = crate::group::join_all(sent).await;
        let mut records = Vec::new();
        let mut fatal = None;
        for (leader, plan, acks, answer) in answers {
            let session = sessions.entry(leader).or_default();
            let resp = match answer {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::debug!(leader, error = %e, "share fetch failed; the session opens again");
                    session.reset();
                    if !e.is_retriable() {
                        fatal.get_or_insert(e);
                    }
                    continue;
                }
            };
            let code = ErrorCode(resp.error_code);
            if !code.is_ok() {
                session.reset();
                let e = Error::Broker {
                    api: ApiKey::ShareFetch,
                    code,
                    context: Some(format!(
                        "group '{}'{}",
                        self.member.group,
                        resp.error_message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )),
                };
                if code.is_retriable() {
                    tracing::debug!(leader, error = %e, "share session reset");
                } else {
                    fatal.get_or_insert(e);
                }
                continue;
            }
            session.answered(plan);
            let r = self.read_response(leader, resp, &acks)?;
            records.extend(r.records);
            let mut a = lock(&self.acks);
            for (tp, offset) in r.gaps {
                a.ready.entry((leader, tp)).or_default().add(offset, GAP);
            }
            a.failures.extend(r.failures);
            if let Some(e) = r.fatal {
                fatal.get_or_insert(e);
            }
        }
        if let Some(e) = fatal
            && records.is_empty()
        {
            return Err(e);
        }
        let mut a = lock(&self.acks);
        for r in &records {
            a.outstanding.insert(
                (r.leader, (r.topic_id, r.record.partition), r.record.offset),
                None,
            );
        }
        Ok(records)
    }

    pub(super) fn broker(&self, id: i32) -> Option<BrokerInfo> {
        self.client.metadata().brokers.get(&id).cloned()
    }

    fn fetch_request(
        &self,
        plan: &session::Plan,
        acks: &BTreeMap<Tp, PartitionAcks>,
        fetching: bool,
        wait: Duration,
    ) -> ShareFetchRequest {
        let o = &self.options;
        let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
        for tp in &plan.listed {
            topics.entry(tp.0).or_default().push(FetchPartition {
                partition_index: tp.1,
                acknowledgement_batches: acks
                    .get(tp)
                    .filter(|_| plan.epoch != 0)
                    .map(PartitionAcks::batches)
                    .unwrap_or_default(),
                ..Default::default()
            });
        }
        let mut forgotten: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for tp in &plan.forgotten {
            forgotten.entry(tp.0).or_default().push(tp.1);
        }
        // A request that only acknowledges asks for nothing (as Java's).
        let (max_wait, min_bytes, max_bytes, max_records) = if fetching {
            let wait_ms = wait.min(o.max_wait).as_millis().min(i32::MAX as u128) as i32;
            (wait_ms, o.min_bytes, o.max_bytes, o.max_records)
        } else {
            (0, 0, 0, 0)
        };
        ShareFetchRequest {
            group_id: Some(self.member.group.clone()),
            member_id: Some(self.member.member_id.clone()),
            share_session_epoch: plan.epoch,
            max_wait_ms: max_wait,
            min_bytes,
            max_bytes,
            max_records,
            batch_size: max_records,
            share_acquire_mode: o.acquire_mode.code(),
            // Renewals reach a fetch only when a commit runs alongside a
            // poll on another task; the broker then acquires nothing new.
            is_renew_ack: plan.epoch != 0 && acks.values().any(PartitionAcks::renews),
            topics: topics
                .into_iter()
                .map(|(topic_id, partitions)| FetchTopic {
                    topic_id,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            forgotten_topics_data: forgotten
                .into_iter()
                .map(|(topic_id, partitions)| ForgottenTopic {
                    topic_id,
                    partitions: partitions.into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn send_fetch(
        &self,
        broker: &BrokerInfo,
        req: &ShareFetchRequest,
        wait: Duration,
    ) -> Result<ShareFetchResponse> {
        let conn = self.client.connection(broker, self.class).await?;
        let version = conn
            .api_versions()
            .version_for(ApiKey::ShareFetch, conn.broker())?;
        let timeout = self.client.config().net.request_timeout + wait;
        conn.send_with_timeout(req, version, timeout).await
    }

    /// The records of one answer, the gaps to acknowledge, and refused
    /// acknowledgements.
    fn read_response(
        &self,
        leader: i32,
        resp: ShareFetchResponse,
        sent: &BTreeMap<Tp, PartitionAcks>,
    ) -> Result<Round> {
        let mut round = Round {
            records: Vec::new(),
            gaps: Vec::new(),
            failures: Vec::new(),
            fatal: None,
        };
        for t in resp.responses {
            let name = self.member.name_of(&t.topic_id);
            for p in t.partitions {
                let tp = (t.topic_id, p.partition_index);
                let topic = name.clone().unwrap_or_else(|| t.topic_id.to_string());
                let ack_code = ErrorCode(p.acknowledge_error_code);
                if !ack_code.is_ok() && sent.contains_key(&tp) {
                    round.failures.push(AckFailure {
                        topic: topic.clone(),
                        partition: p.partition_index,
                        error: Error::Broker {
                            api: ApiKey::ShareFetch,
                            code: ack_code,
                            context: p.acknowledge_error_message.clone(),
                        },
                    });
                }
                let code = ErrorCode(p.error_code);
                if !code.is_ok() {
                    self.client.report_error(code);
                    if !code.is_retriable() {
                        round.fatal.get_or_insert(Error::Broker {
                            api: ApiKey::ShareFetch,
                            code,
                            context: Some(format!("{topic}/{}", p.partition_index)),
                        });
                    }
                    continue;
                }
                if p.acquired_records.is_empty() {
                    continue;
                }
                let Some(name) = &name else {
                    // Records of a topic whose name we cannot give: left
                    // unacknowledged, they come back after their lock.
                    continue;
                };
                let topic: Arc<str> = Arc::from(name.as_str());
                self.take_records(
                    leader,
                    tp,
                    &topic,
                    p.records,
                    &p.acquired_records,
                    &mut round,
                )?;
            }
        }
        Ok(round)
    }

    /// Delivers the records inside the acquired ranges and notes the
    /// acquired offsets without a record as gaps.
    fn take_records(
        &self,
        leader: i32,
        tp: Tp,
        topic: &Arc<str>,
        data: Option<Bytes>,
        acquired: &[crate::protocol::messages::share_fetch_response::AcquiredRecords],
        round: &mut Round,
    ) -> Result<()> {
        let mut span: u64 = 0;
        for a in acquired {
            if a.last_offset < a.first_offset || a.first_offset < 0 {
                return Err(Error::ProtocolViolation {
                    broker: format!("node {leader}"),
                    reason: format!(
                        "ShareFetch acquired records {}..={} of {topic}/{}",
                        a.first_offset, a.last_offset, tp.1
                    ),
                });
            }
            span = span.saturating_add((a.last_offset - a.first_offset) as u64 + 1);
        }
        // Acquisitions beyond what a fetch could ever carry are a broker
        // fault, refused before anything is sized by them.
        let limit = (self.options.max_records.max(1) as u64)
            .saturating_mul(1024)
            .max(1 << 20);
        if span > limit {
            return Err(Error::ProtocolViolation {
                broker: format!("node {leader}"),
                reason: format!(
                    "ShareFetch acquired {span} offsets of {topic}/{} at once",
                    tp.1
                ),
            });
        }
        let count_of = |offset: i64| {
            acquired
                .iter()
                .find(|a| a.first_offset <= offset && offset <= a.last_offset)
                .map(|a| a.delivery_count)
        };
        let mut delivered = BTreeSet::new();
        if let Some(data) = data.filter(|d| !d.is_empty()) {
            let set = decode_record_set(data, &self.options.decode).map_err(Error::Decode)?;
            for batch in set.batches {
                let records = match batch {
                    Batch::V2(b) if b.is_control => continue,
                    Batch::V2(b) => crate::consumer::records_of_v2(b, topic, tp.1, 0, i64::MAX),
                    Batch::Legacy(b) => crate::consumer::records_of_legacy(b, topic, tp.1, 0),
                };
                for r in records {
                    let Some(delivery_count) = count_of(r.offset) else {
                        continue;
                    };
                    if !delivered.insert(r.offset) {
                        continue;
                    }
                    round.records.push(ShareRecord {
                        record: r,
                        delivery_count,
                        topic_id: tp.0,
                        leader,
                    });
                }
            }
        }
        for a in acquired {
            for offset in a.first_offset..=a.last_offset {
                if !delivered.contains(&offset) {
                    round.gaps.push((tp, offset));
                }
            }
        }
        Ok(())
    }
}
