//! Delivery reports: one shared completion per batch, and a
//! [`DeliveryFuture`] per record that points into it.
//!
//! A batch's records all succeed or fail together, so the outcome is stored
//! once per batch. A record's future is the batch's `Arc` plus the record's
//! index and timestamp: sending a record allocates nothing of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::record::RecordMetadata;
use crate::error::{Error, Result};

/// How a batch ended: its base offset and log-append time (-1 for create
/// time), or the error every record of it gets.
type Outcome = std::result::Result<(i64, i64), Error>;

/// The completion state a batch shares with its records' futures.
///
/// The outcome is set once and read without a lock (a completed batch's
/// futures resolve with one atomic load); the mutex guards only the
/// wakers. `complete` sets the outcome before it takes the wakers under
/// the lock, and `poll` checks the outcome again under the lock before it
/// registers its waker, so a waker is never left behind.
#[derive(Debug)]
pub(crate) struct BatchCompletion {
    partition: i32,
    outcome: OnceLock<Outcome>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    wakers: Vec<Waker>,
}

impl BatchCompletion {
    pub(crate) fn new(partition: i32) -> Arc<Self> {
        Arc::new(BatchCompletion {
            partition,
            outcome: OnceLock::new(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Completes the batch (the first outcome wins) and wakes every waiting
    /// future.
    pub(crate) fn complete(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let wakers = std::mem::take(&mut self.lock().wakers);
        for w in wakers {
            w.wake();
        }
    }

    /// A future for record `index` of the batch.
    pub(crate) fn future(self: &Arc<Self>, index: i32, timestamp: i64) -> DeliveryFuture {
        DeliveryFuture {
            batch: Arc::clone(self),
            index,
            timestamp,
            waker_slot: None,
        }
    }
}

/// The outcome of one sent record: resolves to its [`RecordMetadata`]
/// once the broker has acknowledged its batch, or to the error that ended
/// the batch (after retries, or at the delivery timeout, or at close).
///
/// Dropping it does not cancel the record; it is still delivered.
///
/// ```no_run
/// # async fn example(producer: klamm::producer::AsyncProducer) -> klamm::Result<()> {
/// use klamm::producer::ProducerRecord;
///
/// let delivery = producer.send(ProducerRecord::new("events", "hello")).await?;
/// let meta = delivery.await?;
/// println!("written to partition {} at offset {}", meta.partition, meta.offset);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DeliveryFuture {
    batch: Arc<BatchCompletion>,
    index: i32,
    timestamp: i64,
    waker_slot: Option<usize>,
}

impl DeliveryFuture {
    /// The partition the record went to.
    pub fn partition(&self) -> i32 {
        self.batch.partition
    }

    /// The record's outcome if its batch has completed.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.batch.outcome.get().map(|o| self.resolve(o))
    }

    fn resolve(&self, outcome: &Outcome) -> Result<RecordMetadata> {
        match outcome {
            Ok((base, append_time)) => Ok(RecordMetadata {
                partition: self.batch.partition,
                offset: if *base < 0 {
                    -1
                } else {
                    base + i64::from(self.index)
                },
                timestamp: if *append_time >= 0 {
                    *append_time
                } else {
                    self.timestamp
                },
            }),
            Err(e) => Err(duplicate(e)),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(o) = this.batch.outcome.get() {
            return Poll::Ready(this.resolve(o));
        }
        let mut state = this.batch.lock();
        if let Some(o) = this.batch.outcome.get() {
            return Poll::Ready(this.resolve(o));
        }
        match this.waker_slot {
            Some(i) if i < state.wakers.len() => {
                if !state.wakers[i].will_wake(cx.waker()) {
                    state.wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                this.waker_slot = Some(state.wakers.len());
                state.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// A copy of an error for each record of a failed batch (`Error` is not
/// `Clone`: it may carry an `io::Error`, copied here by kind and message).
pub(crate) fn duplicate(e: &Error) -> Error {
    match e {
        Error::Decode(d) => Error::Decode(d.clone()),
        Error::Encode(x) => Error::Encode(x.clone()),
        Error::Config { key, reason } => Error::Config {
            key: key.clone(),
            reason: reason.clone(),
        },
        Error::Io { context, source } => Error::Io {
            context: context.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Disconnected { broker, reason } => Error::Disconnected {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::ProtocolViolation { broker, reason } => Error::ProtocolViolation {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::Timeout { what, after } => Error::Timeout {
            what: what.clone(),
            after: *after,
        },
        Error::UnsupportedVersion {
            broker,
            api,
            broker_versions,
            ours,
        } => Error::UnsupportedVersion {
            broker: broker.clone(),
            api: *api,
            broker_versions: *broker_versions,
            ours: *ours,
        },
        Error::Broker { api, code, context } => Error::Broker {
            api: *api,
            code: *code,
            context: context.clone(),
        },
        Error::Auth(s) => Error::Auth(s.clone()),
        Error::Tls { broker, reason } => Error::Tls {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::Aborted { reason } => Error::Aborted {
            reason: reason.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error_codes::ErrorCode;
    use crate::protocol::messages::ApiKey;

    #[test]
    fn futures_and_producers_can_cross_threads() {
        fn sendable<T: Send + Sync + Unpin + 'static>() {}
        sendable::<DeliveryFuture>();
        sendable::<crate::producer::AsyncProducer>();
        sendable::<crate::producer::SyncProducer>();
    }

    #[tokio::test]
    async fn every_record_of_a_batch_resolves_with_its_own_offset_and_timestamp() {
        let batch = BatchCompletion::new(3);
        let a = batch.future(0, 100);
        let b = batch.future(1, 105);
        let waiter = tokio::spawn(b);
        batch.complete(Ok((40, -1)));
        assert_eq!(
            a.await.ok(),
            Some(RecordMetadata {
                partition: 3,
                offset: 40,
                timestamp: 100
            })
        );
        let b = waiter.await.ok().and_then(|r| r.ok());
        assert_eq!(b.map(|m| (m.offset, m.timestamp)), Some((41, 105)));
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_record_with_the_error() {
        let batch = BatchCompletion::new(0);
        let futures: Vec<_> = (0..3).map(|i| batch.future(i, 0)).collect();
        batch.complete(Err(Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::MESSAGE_TOO_LARGE,
            context: None,
        }));
        // A second outcome does not replace the first.
        batch.complete(Ok((0, -1)));
        for f in futures {
            let err = f.await.err().and_then(|e| e.kafka_code());
            assert_eq!(err, Some(ErrorCode::MESSAGE_TOO_LARGE));
        }
    }

    #[test]
    fn log_append_time_and_acks_zero_are_reported() {
        let batch = BatchCompletion::new(1);
        let f = batch.future(2, 7);
        batch.complete(Ok((-1, 999)));
        let m = f.try_result().and_then(|r| r.ok());
        assert_eq!(m.map(|m| (m.offset, m.timestamp)), Some((-1, 999)));
    }
}
