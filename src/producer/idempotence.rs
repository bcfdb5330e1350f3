//! The idempotent producer's identity: producer id and epoch from
//! InitProducerId, and the epoch bump of KIP-360.
//!
//! The id and epoch live here and nowhere else; the per-partition sequence
//! numbers live with the partition queues in the accumulator (they advance
//! as batches are drained) and restart from 0 whenever the identity
//! changes. A transaction manager builds on this type: it runs
//! InitProducerId with its `transactional.id` through
//! [`ProducerIdentity::init`] and fences on the same state.
//!
//! An idempotent producer without a `transactional.id` bumps its epoch
//! itself ([`ProducerIdentity::bump_locally`]): Apache Kafka answers every
//! InitProducerId without a transactional id with a new producer id at
//! epoch 0, whatever id and epoch it names, while a batch at the next epoch
//! of the id it has, from sequence 0, is accepted and fences the batches of
//! the older epoch that may still arrive (the Java client's client-side
//! bump). A new producer id is asked for only when the epoch is used up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::client::{BrokerInfo, Client, RetryPolicy, TrafficClass};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{ApiKey, InitProducerIdRequest};

/// The first InitProducerId version that takes the current producer id and
/// epoch to bump the epoch (KIP-360).
const BUMP_VERSION: i16 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    producer_id: i64,
    epoch: i16,
}

#[derive(Debug)]
struct State {
    ids: Option<Ids>,
    bump_needed: bool,
}

/// Producer id and epoch, shared by the producer's sender and (later) a
/// transaction manager.
#[derive(Debug)]
pub(crate) struct ProducerIdentity {
    transactional_id: Option<String>,
    transaction_timeout: Duration,
    state: Mutex<State>,
    /// Which broker (an index into the brokers by id) the next
    /// InitProducerId without a transactional id goes to first: it moves
    /// on past a broker that failed, so a broker that is down or hung
    /// costs one attempt, not every one.
    next_broker: AtomicUsize,
}

impl ProducerIdentity {
    pub(crate) fn new(transactional_id: Option<String>, transaction_timeout: Duration) -> Self {
        ProducerIdentity {
            transactional_id,
            transaction_timeout,
            state: Mutex::new(State {
                ids: None,
                bump_needed: false,
            }),
            next_broker: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The producer id and epoch, once known.
    pub(crate) fn current(&self) -> Option<(i64, i16)> {
        self.lock().ids.map(|i| (i.producer_id, i.epoch))
    }

    /// Installs a producer id and epoch obtained elsewhere (a transactional
    /// producer's come from its transaction manager).
    pub(crate) fn set(&self, producer_id: i64, epoch: i16) {
        let mut s = self.lock();
        s.ids = Some(Ids { producer_id, epoch });
        s.bump_needed = false;
    }

    /// Asks for a new epoch before more batches go out: a batch failed
    /// after getting a sequence number, or the broker lost our state
    /// (UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER).
    pub(crate) fn request_bump(&self) {
        self.lock().bump_needed = true;
    }

    pub(crate) fn bump_needed(&self) -> bool {
        let s = self.lock();
        s.bump_needed || s.ids.is_none()
    }

    /// The epoch bump of a producer without a `transactional.id` (KIP-360):
    /// the same producer id at the next epoch, without asking the cluster.
    /// Returns false, changing nothing, when there is no id yet, the
    /// producer is transactional (its coordinator bumps the epoch), or the
    /// epoch is used up: then [`ProducerIdentity::init`] gets a new id.
    pub(crate) fn bump_locally(&self) -> bool {
        if self.transactional_id.is_some() {
            return false;
        }
        let mut s = self.lock();
        match s.ids {
            Some(ids) if ids.epoch >= 0 && ids.epoch < i16::MAX => {
                s.ids = Some(Ids {
                    producer_id: ids.producer_id,
                    epoch: ids.epoch + 1,
                });
                s.bump_needed = false;
                tracing::debug!(
                    producer_id = ids.producer_id,
                    epoch = ids.epoch + 1,
                    "producer epoch bumped"
                );
                true
            }
            _ => false,
        }
    }

    /// Gets a producer id and epoch from the cluster: a first one, or, for
    /// a transactional id that holds one, the next epoch of it
    /// (InitProducerId v3+ with the current id and epoch; older brokers
    /// hand out a new epoch without it). Without a transactional id the
    /// answer is always a new producer id (see the module docs).
    /// Retriable errors are retried with `backoff` until `within` passes.
    pub(crate) async fn init(
        &self,
        client: &Client,
        backoff: Duration,
        within: Duration,
    ) -> Result<()> {
        let mut retry = RetryPolicy::constant(backoff).within(within).start();
        loop {
            match self.init_once(client).await {
                Ok(ids) => {
                    let mut s = self.lock();
                    s.ids = Some(ids);
                    s.bump_needed = false;
                    tracing::debug!(
                        producer_id = ids.producer_id,
                        epoch = ids.epoch,
                        "producer id"
                    );
                    return Ok(());
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "InitProducerId failed; retrying");
                    retry.pause(e).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn init_once(&self, client: &Client) -> Result<Ids> {
        // Only a transactional id names its current id and epoch: for an
        // idempotent producer the cluster hands out a new id anyway, and
        // naming one makes some brokers (tansu 0.6) refuse the request.
        let current = if self.transactional_id.is_some() {
            self.lock().ids
        } else {
            None
        };
        self.request(client, current).await
    }

    /// One InitProducerId: bumping `current` when given and supported. A
    /// transactional id's goes to its coordinator; otherwise any broker
    /// answers, and they are asked in turn until one does.
    async fn request(&self, client: &Client, current: Option<Ids>) -> Result<Ids> {
        if let Some(id) = &self.transactional_id {
            let broker = client.transaction_coordinator(id).await?;
            return self.request_from(client, &broker, current).await;
        }
        let brokers = Self::brokers(client).await?;
        let mut last = None;
        for _ in 0..brokers.len() {
            let i = self.next_broker.load(Ordering::Relaxed) % brokers.len();
            match self.request_from(client, &brokers[i], current).await {
                Err(e) if e.is_retriable() => {
                    tracing::debug!(broker = brokers[i].id, error = %e,
                        "InitProducerId failed; asking the next broker");
                    self.next_broker.store(i + 1, Ordering::Relaxed);
                    last = Some(e);
                }
                r => return r,
            }
        }
        // None answered: the broker list may be stale (a broker gone for
        // good stays listed until the metadata is fetched again).
        client.report_error(ErrorCode::LEADER_NOT_AVAILABLE);
        Err(last.unwrap_or_else(|| Error::no_brokers(ApiKey::InitProducerId)))
    }

    /// The brokers of the cluster metadata, in id order (fetched first if
    /// none are known).
    async fn brokers(client: &Client) -> Result<Vec<BrokerInfo>> {
        let known: Vec<BrokerInfo> = client.metadata().brokers.values().cloned().collect();
        if !known.is_empty() {
            return Ok(known);
        }
        client.refresh_metadata(None).await?;
        let known: Vec<BrokerInfo> = client.metadata().brokers.values().cloned().collect();
        if known.is_empty() {
            return Err(Error::no_brokers(ApiKey::InitProducerId));
        }
        Ok(known)
    }

    /// One InitProducerId to `broker`.
    async fn request_from(
        &self,
        client: &Client,
        broker: &BrokerInfo,
        current: Option<Ids>,
    ) -> Result<Ids> {
        let conn = client.connection(broker, TrafficClass::Other).await?;
        let version = conn
            .api_versions()
            .version_for(ApiKey::InitProducerId, conn.broker())?;
        let (producer_id, producer_epoch) = match current {
            Some(ids) if version >= BUMP_VERSION && ids.epoch < i16::MAX - 1 => {
                (ids.producer_id, ids.epoch)
            }
            _ => (-1, -1),
        };
        let req = InitProducerIdRequest {
            transactional_id: self.transactional_id.clone(),
            transaction_timeout_ms: i32::try_from(self.transaction_timeout.as_millis())
                .unwrap_or(i32::MAX),
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let code = ErrorCode(resp.error_code);
        if !code.is_ok() {
            client.report_error(code);
            return Err(Error::Broker {
                api: ApiKey::InitProducerId,
                code,
                context: Some(format!("from {}", conn.broker())),
            });
        }
        Ok(Ids {
            producer_id: resp.producer_id,
            epoch: resp.producer_epoch,
        })
    }
}
