//! Share-group membership: ShareGroupHeartbeat to the group coordinator.
//!
//! A member names itself (a random UUID in Kafka's text form, kept for the
//! consumer's life), joins at epoch 0 with its topics, then heartbeats at
//! the interval the coordinator gives, sending its topics and rack again
//! only after a reset. The answer carries the whole assignment when it
//! changed (`null` otherwise); there is no revocation step as in KIP-848,
//! since a partition may be shared by many members. UNKNOWN_MEMBER_ID and
//! FENCED_MEMBER_EPOCH drop the assignment and rejoin at epoch 0 with the
//! same id; coordinator moves are handled by the client's coordinator
//! loop; other errors end the membership (the consumer reports them).

use crate::determinism::HashMap;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::client::coordinator_error;
use crate::client::{CallError, Client, CoordinatorKind, RetryPolicy, Step, TrafficClass};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{ApiKey, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use crate::protocol::primitives::Uuid;

use super::session::Tp;

/// How long one heartbeat retries coordinator errors before the loop
/// hears of it (and tries again at the next beat).
const RETRY_WITHIN: Duration = Duration::from_secs(5);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the consumer reads of the membership.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    /// The partitions assigned, by topic id.
    pub assignment: BTreeSet<Tp>,
    /// The epoch (0 before the first answer).
    pub epoch: i32,
    /// Why the membership ended, if it did.
    pub fatal: Option<Arc<Error>>,
}

/// The heartbeat loop's shared state.
pub(crate) struct Member {
    pub client: Client,
    pub group: String,
    pub member_id: String,
    pub topics: Vec<String>,
    pub rack: Option<String>,
    pub backoff: Duration,
    /// The membership as the last heartbeat left it.
    pub state: watch::Sender<Membership>,
    /// Wakes the loop early (close).
    pub wake: Notify,
    pub closing: std::sync::atomic::AtomicBool,
    /// Topic names by id, as resolved so far.
    pub names: Mutex<HashMap<Uuid, String>>,
}

impl Member {
    /// Topic names for `ids`, refreshing metadata once for unknown ones.
    pub(crate) async fn resolve(&self, ids: impl Iterator<Item = Uuid>) {
        let unknown: Vec<Uuid> = {
            let names = lock(&self.names);
            ids.filter(|id| !names.contains_key(id)).collect()
        };
        if unknown.is_empty() {
            return;
        }
        let mut known = self.known_names();
        if unknown.iter().any(|id| !known.contains_key(id)) {
            if let Err(e) = self.client.refresh_metadata(Some(&self.topics)).await {
                tracing::debug!(group = %self.group, error = %e, "metadata refresh for topic ids failed");
            }
            known = self.known_names();
        }
        lock(&self.names).extend(known);
    }

    fn known_names(&self) -> std::collections::HashMap<Uuid, String> {
        self.client.metadata().names_by_id()
    }

    /// The name of topic `id`, if known.
    pub(crate) fn name_of(&self, id: &Uuid) -> Option<String> {
        lock(&self.names).get(id).cloned()
    }

    /// One heartbeat at `epoch`, through the coordinator loop.
    async fn beat(&self, epoch: i32, full: bool) -> Result<ShareGroupHeartbeatResponse> {
        let req = ShareGroupHeartbeatRequest {
            group_id: self.group.clone(),
            member_id: self.member_id.clone(),
            member_epoch: epoch,
            rack_id: if full { self.rack.clone() } else { None },
            subscribed_topic_names: (full && epoch >= 0).then(|| self.topics.clone()),
            ..Default::default()
        };
        let group = self.group.as_str();
        let policy = RetryPolicy::exponential(self.backoff, RETRY_BACKOFF_MAX.max(self.backoff))
            .within(RETRY_WITHIN);
        let attempt = |conn: crate::net::Connection| {
            let req = req.clone();
            async move {
                let version = match conn
                    .api_versions()
                    .version_for(ApiKey::ShareGroupHeartbeat, conn.broker())
                {
                    Ok(v) => v,
                    Err(Error::UnsupportedVersion { broker, .. }) => {
                        return Ok(Step::Stop(Error::config(
                            "share group",
                            format!(
                                "the coordinator of group '{group}' ({broker}) does not offer \
                                 ShareGroupHeartbeat v1: share groups need Apache Kafka 4.1 or \
                                 later with the share.version feature enabled"
                            ),
                        )));
                    }
                    Err(e) => return Err(e),
                };
                let resp = conn.send_version(&req, version).await?;
                let code = ErrorCode(resp.error_code);
                let context = || Some(context_of(group, resp.error_message.as_deref()));
                Ok(
                    match coordinator_error(ApiKey::ShareGroupHeartbeat, code, context) {
                        Some(step) => step,
                        None => Step::Done(resp),
                    },
                )
            }
        };
        match self
            .client
            .coordinator_call(
                CoordinatorKind::Group,
                group,
                TrafficClass::Group,
                &policy,
                attempt,
            )
            .await
        {
            Ok(resp) => Ok(resp),
            Err(CallError::Stopped(e) | CallError::Failed(e)) => Err(e),
            Err(CallError::OutOfTime(last)) => Err(last.unwrap_or_else(|| Error::Timeout {
                what: format!("a share-group heartbeat to the coordinator of group '{group}'"),
                after: RETRY_WITHIN,
            })),
        }
    }

    /// Heartbeats until closed or a fatal error.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut epoch = 0;
        let mut full = true;
        let mut interval = Duration::from_secs(5);
        loop {
            if self.closing.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            let mut pause = interval;
            match self.beat(epoch, full).await {
                Ok(resp) => match ErrorCode(resp.error_code) {
                    ErrorCode::NONE => {
                        epoch = resp.member_epoch;
                        full = false;
                        if resp.heartbeat_interval_ms > 0 {
                            interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
                            pause = interval;
                        }
                        if let Some(a) = resp.assignment {
                            let mut tps = BTreeSet::new();
                            for t in &a.topic_partitions {
                                for &p in &t.partitions {
                                    tps.insert((t.topic_id, p));
                                }
                            }
                            self.resolve(tps.iter().map(|(id, _)| *id)).await;
                            tracing::debug!(group = %self.group, epoch, partitions = tps.len(), "share assignment");
                            self.state.send_modify(|m| {
                                m.assignment = tps;
                                m.epoch = epoch;
                            });
                        } else {
                            self.state.send_modify(|m| m.epoch = epoch);
                        }
                    }
                    code @ (ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::FENCED_MEMBER_EPOCH) => {
                        tracing::info!(group = %self.group, %code, "share member fenced; rejoining");
                        epoch = 0;
                        full = true;
                        pause = Duration::ZERO;
                        self.state.send_modify(|m| {
                            m.assignment.clear();
                            m.epoch = 0;
                        });
                    }
                    code => {
                        self.stop(Error::Broker {
                            api: ApiKey::ShareGroupHeartbeat,
                            code,
                            context: Some(context_of(&self.group, resp.error_message.as_deref())),
                        });
                        return;
                    }
                },
                Err(e) if e.is_retriable() || matches!(e, Error::Timeout { .. }) => {
                    tracing::debug!(group = %self.group, error = %e, "share heartbeat failed; trying again");
                    full = true;
                    pause = self.backoff.max(Duration::from_millis(100));
                }
                Err(e) => {
                    self.stop(e);
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    fn stop(&self, e: Error) {
        tracing::warn!(group = %self.group, error = %e, "share membership ended");
        self.state.send_modify(|m| {
            m.assignment.clear();
            m.fatal = Some(Arc::new(e));
        });
    }

    /// Leaves the group (epoch -1); errors are only logged.
    pub(crate) async fn leave(&self) {
        if let Err(e) = self.beat(-1, false).await {
            tracing::debug!(group = %self.group, error = %e, "leaving the share group failed");
        }
    }
}

fn context_of(group: &str, message: Option<&str>) -> String {
    format!(
        "group '{group}'{}",
        message.map(|m| format!(": {m}")).unwrap_or_default()
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
