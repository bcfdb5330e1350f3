//! Delivery reports: one shared completion per batch, and a
//! [`DeliveryFuture`] per record that points into it.
//!
//! A batch's records all succeed or fail together, so the outcome is stored
//! once per batch. A record's future is the batch's `Arc` plus the record's
//! index and timestamp: sending a record allocates nothing of its own.
//!
//! A batch the broker refused as too large is split in two; its completion
//! then names the pieces' completions, and each future moves on to the
//! piece that holds its record (again and again if a piece is split too),
//! so a record resolves once, when its own piece is written or fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::record::RecordMetadata;
use crate::error::{Error, Result};

/// How a batch ended.
#[derive(Debug)]
enum Outcome {
    /// Written at this base offset and log-append time (-1 for create
    /// time), or failed with the error every record of it gets.
    Done(std::result::Result<(i64, i64), Error>),
    /// Refused as too large and split in two: records before index `at`
    /// went to the first piece (same index), the rest to the second (index
    /// minus `at`). A record's future follows it there.
    Split {
        at: i32,
        pieces: [Arc<BatchCompletion>; 2],
    },
}

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
    pub(crate) fn complete(&self, outcome: Result<(i64, i64)>) {
        self.settle(Outcome::Done(outcome));
    }

    /// Hands the batch's records on to the two pieces it was split into:
    /// the first `at` records to `pieces[0]`, the rest to `pieces[1]`.
    /// Waiting futures wake and wait on their piece.
    pub(crate) fn split(&self, at: i32, pieces: [Arc<BatchCompletion>; 2]) {
        self.settle(Outcome::Split { at, pieces });
    }

    fn settle(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let wakers = std::mem::take(&mut self.lock().wakers);
        for w in wakers {
            w.wake();
        }
    }

    /// This batch's own outcome (splits not followed), or registers the
    /// task's waker (at `slot` in the list) to be woken when it is set.
    fn poll_outcome(&self, cx: &mut Context<'_>, slot: &mut Option<usize>) -> Poll<&Outcome> {
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o);
        }
        let mut state = self.lock();
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o);
        }
        match *slot {
            Some(i) if i < state.wakers.len() => {
                if !state.wakers[i].will_wake(cx.waker()) {
                    state.wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                *slot = Some(state.wakers.len());
                state.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }

    /// Waits until every record of the batch has its outcome, following
    /// splits to the pieces (for flush and abort).
    pub(crate) async fn settled(self: Arc<Self>) {
        let mut waiting = vec![self];
        while let Some(batch) = waiting.pop() {
            let mut slot = None;
            let pieces = std::future::poll_fn(|cx| {
                batch.poll_outcome(cx, &mut slot).map(|o| match o {
                    Outcome::Split { pieces, .. } => Some(pieces.clone()),
                    Outcome::Done(_) => None,
                })
            })
            .await;
            waiting.extend(pieces.into_iter().flatten());
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

/// Where record `index` of a split batch went: its piece and its index
/// there.
fn piece_of(
    at: i32,
    pieces: &[Arc<BatchCompletion>; 2],
    index: i32,
) -> (&Arc<BatchCompletion>, i32) {
    if index < at {
        (&pieces[0], index)
    } else {
        (&pieces[1], index - at)
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
        let (mut batch, mut index) = (&self.batch, self.index);
        loop {
            match batch.outcome.get()? {
                Outcome::Done(o) => return Some(self.resolve(index, o)),
                Outcome::Split { at, pieces } => (batch, index) = piece_of(*at, pieces, index),
            }
        }
    }

    fn resolve(
        &self,
        index: i32,
        outcome: &std::result::Result<(i64, i64), Error>,
    ) -> Result<RecordMetadata> {
        match outcome {
            Ok((base, append_time)) => Ok(RecordMetadata {
                partition: self.batch.partition,
                offset: if *base < 0 {
                    -1
                } else {
                    base + i64::from(index)
                },
                timestamp: if *append_time >= 0 {
                    *append_time
                } else {
                    self.timestamp
                },
            }),
            Err(e) => Err(e.duplicate()),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let (piece, index) = match this.batch.poll_outcome(cx, &mut this.waker_slot) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Outcome::Done(o)) => return Poll::Ready(this.resolve(this.index, o)),
                Poll::Ready(Outcome::Split { at, pieces }) => {
                    let (piece, index) = piece_of(*at, pieces, this.index);
                    (Arc::clone(piece), index)
                }
            };
            // Follow the record to its piece and wait there.
            this.batch = piece;
            this.index = index;
            this.waker_slot = None;
        }
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

    #[tokio::test]
    async fn futures_follow_their_records_into_the_pieces_of_a_split() {
        let batch = BatchCompletion::new(2);
        let futures: Vec<_> = (0..5)
            .map(|i| batch.future(i, 100 + i64::from(i)))
            .collect();
        let early = tokio::spawn(batch.future(4, 104));
        // Records 0..2 go to `a`, 2..5 to `b`; `b` splits again at 1.
        let (a, b) = (BatchCompletion::new(2), BatchCompletion::new(2));
        batch.split(2, [Arc::clone(&a), Arc::clone(&b)]);
        let (b1, b2) = (BatchCompletion::new(2), BatchCompletion::new(2));
        b.split(1, [Arc::clone(&b1), Arc::clone(&b2)]);
        assert!(
            futures.iter().all(|f| f.try_result().is_none()),
            "nothing written yet"
        );
        let flushed = tokio::spawn(Arc::clone(&batch).settled());
        a.complete(Ok((10, -1)));
        b1.complete(Ok((12, -1)));
        b2.complete(Err(Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::MESSAGE_TOO_LARGE,
            context: None,
        }));
        flushed.await.expect("settled once every piece is");
        let got: Vec<_> = futures
            .iter()
            .map(|f| {
                f.try_result().map(|r| {
                    r.map(|m| (m.offset, m.timestamp))
                        .map_err(|e| e.kafka_code())
                })
            })
            .collect();
        let too_large = Err(Some(ErrorCode::MESSAGE_TOO_LARGE));
        assert_eq!(
            got,
            [
                Some(Ok((10, 100))),
                Some(Ok((11, 101))),
                Some(Ok((12, 102))),
                Some(too_large),
                Some(too_large),
            ]
        );
        for (f, want) in futures
            .into_iter()
            .zip([Ok(10), Ok(11), Ok(12), Err(()), Err(())])
        {
            assert_eq!(f.await.map(|m| m.offset).map_err(|_| ()), want);
        }
        let early = early.await.expect("joined").map_err(|e| e.kafka_code());
        assert_eq!(
            early.map(|m| m.offset),
            Err(Some(ErrorCode::MESSAGE_TOO_LARGE))
        );
        // Control: a split batch's outcome is not a second outcome of its
        // own; completing it afterwards changes nothing.
        batch.complete(Ok((99, -1)));
        assert_eq!(
            batch
                .future(0, 0)
                .try_result()
                .and_then(|r| r.ok())
                .map(|m| m.offset),
            Some(10)
        );
    }

    #[tokio::test]
    async fn settled_waits_for_every_piece() {
        let batch = BatchCompletion::new(0);
        let (a, b) = (BatchCompletion::new(0), BatchCompletion::new(0));
        batch.split(1, [Arc::clone(&a), Arc::clone(&b)]);
        a.complete(Ok((0, -1)));
        let mut settled = Box::pin(Arc::clone(&batch).settled());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            settled.as_mut().poll(&mut cx).is_pending(),
            "the second piece is not done"
        );
        b.complete(Ok((1, -1)));
        assert!(settled.as_mut().poll(&mut cx).is_ready());
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
