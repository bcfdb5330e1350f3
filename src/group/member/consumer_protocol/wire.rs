//! The consumer-protocol engine's way to the cluster: heartbeats to the
//! group coordinator and topic names from metadata, behind a trait so the
//! engine's tests can script them.
//!
//! A heartbeat runs in the client's coordinator loop
//! ([`Client::coordinator_call`]): a lost connection, NOT_COORDINATOR and
//! COORDINATOR_NOT_AVAILABLE look the coordinator up again,
//! COORDINATOR_LOAD_IN_PROGRESS and other retriable codes ask it again,
//! for a few seconds at most (the same request again: a heartbeat states
//! the member's state, so sending it twice is harmless). Every other code
//! is the engine's to judge.

use std::future::Future;
use std::time::Duration;

use crate::client::coordinator_error;
use crate::client::{CallError, Client, CoordinatorKind, RetryPolicy, Step, TrafficClass};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use crate::protocol::primitives::Uuid;

/// How long one heartbeat may go on retrying coordinator errors before
/// the engine hears of the failure (and schedules the next one itself).
const RETRY_WITHIN: Duration = Duration::from_secs(5);

/// The longest pause between two tries of one heartbeat.
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The engine's way to the cluster. The client implements it; tests
/// script it.
pub(in crate::group::member) trait Coordinator:
    Send + Sync + 'static
{
    /// One heartbeat; an error code in the answer is the caller's to judge.
    fn heartbeat(
        &self,
        req: ConsumerGroupHeartbeatRequest,
    ) -> impl Future<Output = Result<ConsumerGroupHeartbeatResponse>> + Send;
    /// Forget the coordinator and look it up again.
    fn rediscover(&self) -> impl Future<Output = ()> + Send;
    /// The topic names metadata knows, by topic id.
    fn topic_names(&self) -> std::collections::HashMap<Uuid, String>;
    /// Refresh metadata for `topics`.
    fn refresh_topics(&self, topics: &[String]) -> impl Future<Output = ()> + Send;
}

/// [`Coordinator`] over a [`Client`].
pub(super) struct ClientCoordinator {
    client: Client,
    group: String,
    policy: RetryPolicy,
}

impl ClientCoordinator {
    /// Heartbeats for `group`, retried after `backoff` (doubling).
    pub(super) fn new(client: Client, group: String, backoff: Duration) -> Self {
        ClientCoordinator {
            client,
            group,
            policy: RetryPolicy::exponential(backoff, RETRY_BACKOFF_MAX.max(backoff))
                .within(RETRY_WITHIN),
        }
    }

    /// The error a coordinator without ConsumerGroupHeartbeat means.
    fn unsupported(&self, broker: &str) -> Error {
        Error::config(
            "group.protocol",
            format!(
                "the coordinator of group '{}' ({broker}) does not offer ConsumerGroupHeartbeat: \
                 group.protocol=consumer needs Kafka 4.0 or later with the consumer rebalance \
                 protocol enabled; use group.protocol=classic with this cluster",
                self.group
            ),
        )
    }
}

impl Coordinator for ClientCoordinator {
    async fn heartbeat(
        &self,
        req: ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse> {
        let group = self.group.as_str();
        let attempt = |conn: crate::net::Connection| {
            let req = req.clone();
            async move {
                let version = match conn
                    .api_versions()
                    .version_for(ApiKey::ConsumerGroupHeartbeat, conn.broker())
                {
                    Ok(v) => v,
                    Err(Error::UnsupportedVersion { broker, .. }) => {
                        return Ok(Step::Stop(self.unsupported(&broker)));
                    }
                    Err(e) => return Err(e),
                };
                let resp = conn.send_version(&req, version).await?;
                let code = ErrorCode(resp.error_code);
                let context = || {
                    Some(format!(
                        "group '{group}'{}",
                        resp.error_message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ))
                };
                Ok(
                    match coordinator_error(ApiKey::ConsumerGroupHeartbeat, code, context) {
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
                TrafficClass::Other,
                &self.policy,
                attempt,
            )
            .await
        {
            Ok(resp) => Ok(resp),
            Err(CallError::Stopped(e) | CallError::Failed(e)) => Err(e),
            Err(CallError::OutOfTime(last)) => Err(last.unwrap_or_else(|| Error::Timeout {
                what: format!("a heartbeat to the coordinator of group '{group}'"),
                after: RETRY_WITHIN,
            })),
        }
    }

    async fn rediscover(&self) {
        if let Err(e) = self.client.refresh_coordinator(&self.group).await {
            tracing::debug!(group = %self.group, error = %e, "coordinator lookup failed");
        }
    }

    fn topic_names(&self) -> std::collections::HashMap<Uuid, String> {
        self.client.metadata().names_by_id()
    }

    async fn refresh_topics(&self, topics: &[String]) {
        if let Err(e) = self.client.refresh_metadata(Some(topics)).await {
            tracing::debug!(group = %self.group, error = %e, "metadata refresh for topic ids failed");
        }
    }
}
