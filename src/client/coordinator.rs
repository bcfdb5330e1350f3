//! Group and transaction coordinators: finding them (cached per key,
//! batched in one FindCoordinator v4+), and [`Client::coordinator_call`],
//! the one loop every coordinator request runs in — the consumer group,
//! the offset manager and the transaction manager alike.

use std::future::Future;
use std::time::Duration;

use super::retry::RetryPolicy;
use super::{BrokerInfo, Client, TrafficClass, lock};
use crate::error::{Error, Result};
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;

/// Which coordinator to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CoordinatorKind {
    /// The group coordinator of a consumer group (key: the group id).
    Group = 0,
    /// The transaction coordinator of a transactional id.
    Transaction = 1,
}

/// The longest wait between two coordinator lookups.
const COORDINATOR_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What one attempt of a coordinator request came to.
pub(crate) enum Step<T, E> {
    /// Finished.
    Done(T),
    /// Ask the same coordinator again after a pause.
    Retry(Error),
    /// Look the coordinator up again, then retry after a pause.
    Rediscover(Error),
    /// Give up with the caller's own verdict (fenced, rejoin needed, …).
    Stop(E),
}

/// How a [`Client::coordinator_call`] failed.
#[derive(Debug)]
pub(crate) enum CallError<E> {
    /// An attempt stopped the loop.
    Stopped(E),
    /// A request failed in a way retrying cannot help.
    Failed(Error),
    /// The policy's time ran out; the last retriable failure, if any.
    OutOfTime(Option<Error>),
}

/// The step for an error code that every coordinator API shares:
/// NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE send the loop to look the
/// coordinator up again; COORDINATOR_LOAD_IN_PROGRESS and other retriable
/// codes retry it. `None` for success and for codes the caller must judge.
pub(crate) fn coordinator_error<T, E>(
    api: ApiKey,
    code: ErrorCode,
    context: impl FnOnce() -> Option<String>,
) -> Option<Step<T, E>> {
    if code.is_ok() {
        return None;
    }
    let error = Error::Broker {
        api,
        code,
        context: context(),
    };
    if code == ErrorCode::NOT_COORDINATOR || code == ErrorCode::COORDINATOR_NOT_AVAILABLE {
        Some(Step::Rediscover(error))
    } else if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS || code.is_retriable() {
        Some(Step::Retry(error))
    } else {
        None
    }
}

impl Client {
    /// Runs `attempt` against the coordinator of `key` on a connection of
    /// `class`, under `policy`: a retriable connection failure or a
    /// [`Step::Rediscover`] forgets the cached coordinator and looks it up
    /// again; [`Step::Retry`] asks the same one again; both after the
    /// policy's pause. Each attempt is cut off at the policy's deadline.
    pub(crate) async fn coordinator_call<T, E, F, Fut>(
        &self,
        kind: CoordinatorKind,
        key: &str,
        class: TrafficClass,
        policy: &RetryPolicy,
        mut attempt: F,
    ) -> std::result::Result<T, CallError<E>>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<Step<T, E>>>,
    {
        let mut retry = policy.start();
        let mut rediscover = false;
        loop {
            let once = async {
                let broker = if rediscover {
                    lock(&self.inner.coordinators).remove(&(kind, key.to_string()));
                    self.cached_coordinator(kind, key).await?
                } else {
                    self.cached_coordinator(kind, key).await?
                };
                let conn = self.connection(&broker, class).await?;
                attempt(conn).await
            };
            let step = match retry.bounded(once).await {
                None => return Err(CallError::OutOfTime(retry.take_last_error())),
                Some(Ok(step)) => step,
                Some(Err(e)) if e.is_retriable() => Step::Rediscover(e),
                Some(Err(e)) => return Err(CallError::Failed(e)),
            };
            let error = match step {
                Step::Done(t) => return Ok(t),
                Step::Stop(e) => return Err(CallError::Stopped(e)),
                Step::Retry(e) => {
                    tracing::debug!(error = %e, key, "coordinator request: retrying");
                    rediscover = false;
                    e
                }
                Step::Rediscover(e) => {
                    tracing::debug!(error = %e, key, "coordinator request: looking the coordinator up again");
                    rediscover = true;
                    e
                }
            };
            if let Err(last) = retry.pause(error).await {
                return Err(CallError::OutOfTime(Some(last)));
            }
        }
    }

    /// The coordinator of a consumer group (cached; see
    /// [`Client::refresh_coordinator`]).
    pub async fn coordinator(&self, group: &str) -> Result<BrokerInfo> {
        self.cached_coordinator(CoordinatorKind::Group, group).await
    }

    /// The coordinator of a transactional id (cached).
    pub async fn transaction_coordinator(&self, transactional_id: &str) -> Result<BrokerInfo> {
        self.cached_coordinator(CoordinatorKind::Transaction, transactional_id)
            .await
    }

    async fn cached_coordinator(&self, kind: CoordinatorKind, key: &str) -> Result<BrokerInfo> {
        if let Some(b) = lock(&self.inner.coordinators).get(&(kind, key.to_string())) {
            return Ok(b.clone());
        }
        let found = self.find_coordinators(kind, &[key.to_string()]).await?;
        found.into_iter().next().ok_or_else(|| Error::Broker {
            api: ApiKey::FindCoordinator,
            code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            context: Some(key.to_string()),
        })
    }

    /// Forgets the cached coordinator of `group` and looks it up again.
    pub async fn refresh_coordinator(&self, group: &str) -> Result<BrokerInfo> {
        lock(&self.inner.coordinators).remove(&(CoordinatorKind::Group, group.to_string()));
        self.coordinator(group).await
    }

    /// Forgets the cached coordinator of `transactional_id` and looks it up
    /// again (after a NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE answer,
    /// or a connection failure to it).
    pub async fn refresh_transaction_coordinator(
        &self,
        transactional_id: &str,
    ) -> Result<BrokerInfo> {
        lock(&self.inner.coordinators)
            .remove(&(CoordinatorKind::Transaction, transactional_id.to_string()));
        self.transaction_coordinator(transactional_id).await
    }

    /// Looks up the group coordinators of several groups, in one request
    /// where the broker supports batching (FindCoordinator v4+).
    pub async fn coordinators(&self, groups: &[String]) -> Result<Vec<BrokerInfo>> {
        self.find_coordinators(CoordinatorKind::Group, groups).await
    }

    async fn find_coordinators(
        &self,
        kind: CoordinatorKind,
        keys: &[String],
    ) -> Result<Vec<BrokerInfo>> {
        // Retriable answers (COORDINATOR_NOT_AVAILABLE while Kafka creates
        // __consumer_offsets or __transaction_state, a broker going away)
        // are retried with backoff for up to request.timeout.ms.
        let mut retry = RetryPolicy::exponential(
            self.inner.config.metadata.retry_backoff,
            COORDINATOR_BACKOFF_MAX,
        )
        .within(self.inner.config.net.request_timeout)
        .start();
        loop {
            match self.find_coordinators_once(kind, keys).await {
                Ok(found) => {
                    let mut cache = lock(&self.inner.coordinators);
                    for (k, b) in keys.iter().zip(&found) {
                        cache.insert((kind, k.clone()), b.clone());
                    }
                    return Ok(found);
                }
                Err(e) if e.is_retriable() => retry.pause(e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    async fn find_coordinators_once(
        &self,
        kind: CoordinatorKind,
        keys: &[String],
    ) -> Result<Vec<BrokerInfo>> {
        self.any_broker(|conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::FindCoordinator, conn.broker())?;
            let mut out = Vec::with_capacity(keys.len());
            if version >= 4 {
                let req = FindCoordinatorRequest {
                    key_type: kind as i8,
                    coordinator_keys: keys.to_vec(),
                    ..Default::default()
                };
                let resp = conn.send_version(&req, version).await?;
                for key in keys {
                    let c = resp
                        .coordinators
                        .iter()
                        .find(|c| &c.key == key)
                        .ok_or_else(|| Error::ProtocolViolation {
                            broker: conn.broker().to_string(),
                            reason: format!("FindCoordinator answer has no entry for {key}"),
                        })?;
                    check_code(ErrorCode(c.error_code), key)?;
                    out.push(BrokerInfo {
                        id: c.node_id,
                        host: c.host.clone(),
                        port: c.port,
                        rack: None,
                    });
                }
            } else {
                for key in keys {
                    let req = FindCoordinatorRequest {
                        key: key.clone(),
                        key_type: if version >= 1 { kind as i8 } else { 0 },
                        ..Default::default()
                    };
                    let resp = conn.send_version(&req, version).await?;
                    check_code(ErrorCode(resp.error_code), key)?;
                    out.push(BrokerInfo {
                        id: resp.node_id,
                        host: resp.host,
                        port: resp.port,
                        rack: None,
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}

fn check_code(code: ErrorCode, key: &str) -> Result<()> {
    if code.is_ok() {
        Ok(())
    } else {
        Err(Error::Broker {
            api: ApiKey::FindCoordinator,
            code,
            context: Some(key.to_string()),
        })
    }
}
