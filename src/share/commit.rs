//! Acknowledgements sent on their own: ShareAcknowledge to each leader
//! (a commit), or at epoch -1 to every open session (close).

use crate::determinism::HashMap;
use std::collections::BTreeMap;

use super::acks::PartitionAcks;
use super::session::{Session, Tp};
use super::{AckFailure, ShareConsumer, lock};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use crate::protocol::messages::{ApiKey, ShareAcknowledgeRequest};
use crate::protocol::primitives::Uuid;

/// The first ShareAcknowledge version with renewals (KIP-1222).
const RENEW_SINCE: i16 = 2;

impl ShareConsumer {
    /// ShareAcknowledge to every leader with acknowledgements (`closing`:
    /// to every open session, at epoch -1, closing it).
    pub(super) async fn acknowledge_all(
        &self,
        sessions: &mut HashMap<i32, Session>,
        closing: bool,
    ) -> Result<Vec<AckFailure>> {
        let mut by_leader = self.take_ready();
        if closing {
            for (id, s) in sessions.iter() {
                if s.is_open() {
                    by_leader.entry(*id).or_default();
                }
            }
        }
        let mut failures = std::mem::take(&mut lock(&self.acks).failures);
        let mut first_error = None;
        for (leader, acks) in by_leader {
            let session = sessions.entry(leader).or_default();
            if !session.is_open() {
                if !acks.is_empty() {
                    tracing::debug!(leader, "acknowledgements of a closed share session dropped");
                }
                continue;
            }
            let Some(broker) = self.broker(leader) else {
                session.reset();
                continue;
            };
            let renews = acks.values().any(PartitionAcks::renews);
            let req = ShareAcknowledgeRequest {
                group_id: Some(self.member.group.clone()),
                member_id: Some(self.member.member_id.clone()),
                share_session_epoch: if closing { -1 } else { session.epoch() },
                is_renew_ack: renews,
                topics: ack_topics(&acks),
                ..Default::default()
            };
            let answer = async {
                let conn = self.client.connection(&broker, self.class).await?;
                let api = ApiKey::ShareAcknowledge;
                let version = conn.api_versions().version_for(api, conn.broker())?;
                if renews && version < RENEW_SINCE {
                    return Err(Error::UnsupportedVersion {
                        broker: conn.broker().to_string(),
                        api,
                        broker_versions: conn.api_versions().broker_range(api),
                        ours: (RENEW_SINCE, crate::net::client_max(api)),
                    });
                }
                conn.send_version(&req, version).await
            }
            .await;
            match answer {
                Ok(resp) if ErrorCode(resp.error_code).is_ok() => {
                    if closing {
                        session.reset();
                    } else {
                        session.answered_without_changes();
                    }
                    for t in resp.responses {
                        let name = self
                            .member
                            .name_of(&t.topic_id)
                            .unwrap_or_else(|| t.topic_id.to_string());
                        for p in t.partitions {
                            let code = ErrorCode(p.error_code);
                            if !code.is_ok() {
                                failures.push(AckFailure {
                                    topic: name.clone(),
                                    partition: p.partition_index,
                                    error: Error::Broker {
                                        api: ApiKey::ShareAcknowledge,
                                        code,
                                        context: p.error_message,
                                    },
                                });
                            }
                        }
                    }
                }
                Ok(resp) => {
                    session.reset();
                    first_error.get_or_insert(Error::Broker {
                        api: ApiKey::ShareAcknowledge,
                        code: ErrorCode(resp.error_code),
                        context: resp.error_message,
                    });
                }
                Err(e) => {
                    session.reset();
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !closing => Err(e),
            Some(e) => {
                tracing::debug!(error = %e, "closing a share session failed");
                Ok(failures)
            }
            None => Ok(failures),
        }
    }
}

/// The acknowledgements of one leader in ShareAcknowledge's shape.
fn ack_topics(acks: &BTreeMap<Tp, PartitionAcks>) -> Vec<AcknowledgeTopic> {
    let mut topics: BTreeMap<Uuid, Vec<AcknowledgePartition>> = BTreeMap::new();
    for (tp, a) in acks {
        if a.is_empty() {
            continue;
        }
        topics.entry(tp.0).or_default().push(AcknowledgePartition {
            partition_index: tp.1,
            acknowledgement_batches: a
                .batches()
                .into_iter()
                .map(|b| AckBatch {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    acknowledge_types: b.acknowledge_types,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    topics
        .into_iter()
        .map(|(topic_id, partitions)| AcknowledgeTopic {
            topic_id,
            partitions,
            ..Default::default()
        })
        .collect()
}
