//! What the application gives a consumer: a per-record handler run by
//! workers, or a batch handler; and the tasks that run them.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot, watch};

use crate::error::{HandlerError, shall_commit};
use crate::message::Message;

/// Handles one record at a time (dp-kafka's `Handler`), on
/// `num_workers` tasks at once: at most one record per partition is in
/// hand at a time, so records of a partition are handled in order and
/// the concurrency is at most the number of assigned partitions.
///
/// The record is committed after `handle` returns, unless it returns
/// [`HandlerError::do_not_commit`], and released either way.
///
/// ```
/// use klamm_dpkafka::{Handler, HandlerError, Message};
///
/// struct Printer;
///
/// impl Handler for Printer {
///     async fn handle(&self, worker: usize, message: &Message) -> Result<(), HandlerError> {
///         let text = std::str::from_utf8(message.data())?;
///         println!("worker {worker}: {text} (request {:?})", message.request_id());
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`; `worker` is the task's number, from 1.
    fn handle(
        &self,
        worker: usize,
        message: &Message,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Handles records in batches (dp-kafka's `BatchHandler`) on one task.
///
/// A batch is handed over when it holds `batch_size` records, or when
/// `batch_wait_time` passes without a new record. Nothing of a batch is
/// committed before `handle` returns; then all of it is, unless it
/// returns [`HandlerError::do_not_commit`].
///
/// ```
/// use klamm_dpkafka::{BatchHandler, HandlerError, Message};
///
/// struct Totals(u64);
///
/// impl BatchHandler for Totals {
///     async fn handle(&mut self, batch: &[Message]) -> Result<(), HandlerError> {
///         self.0 += batch.len() as u64;
///         Ok(())
///     }
/// }
/// ```
pub trait BatchHandler: Send + 'static {
    /// Handles `batch` (never empty).
    fn handle(
        &mut self,
        batch: &[Message],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Where handler tasks take messages from: the consumer's queue, and the
/// signal that the consumer is closed.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) rx: Arc<Mutex<mpsc::Receiver<Message>>>,
    pub(crate) closed: watch::Receiver<bool>,
}

impl Upstream {
    /// The next message; `None` once the consumer is closed.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        let mut rx = self.rx.lock().await;
        tokio::select! {
            biased;
            _ = self.closed.wait_for(|c| *c) => None,
            m = rx.recv() => m,
        }
    }
}

/// Runs a future, turning a panic into an error: a handler that panics
/// fails its record (not committed) instead of ending its worker.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string()))),
        }
    }
}

/// A handler's outcome, a panic counting as a failure that does not commit.
async fn guarded<F: Future<Output = Result<(), HandlerError>>>(f: F) -> Result<(), HandlerError> {
    match CatchPanic(Box::pin(f)).await {
        Ok(outcome) => outcome,
        Err(panic) => Err(HandlerError::do_not_commit(format!(
            "the handler panicked: {panic}"
        ))),
    }
}

pub(crate) async fn run_worker<H: Handler>(handler: Arc<H>, worker: usize, mut upstream: Upstream) {
    while let Some(mut message) = upstream.next().await {
        let outcome = guarded(handler.handle(worker, &message)).await;
        if let Err(e) = &outcome {
            tracing::warn!(
                worker,
                topic = message.topic(),
                partition = message.partition(),
                offset = message.offset(),
                commit_message = e.commits(),
                error = %e,
                "failed to handle message"
            );
        }
        if shall_commit(&outcome) {
            if let Err(e) = message.commit().await {
                tracing::warn!(offset = message.offset(), error = %e, "commit failed");
            }
        }
        message.release();
    }
}

pub(crate) async fn run_batches<B: BatchHandler>(
    mut handler: B,
    size: usize,
    wait: Duration,
    mut upstream: Upstream,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(size.min(1024));
    loop {
        // The wait starts again with every record: a batch goes when no
        // record came for `wait` (dp-kafka's rule), or when it is full.
        let next = tokio::select! {
            biased;
            Some(done) = flushes.recv() => {
                // The session is ending: hand over what is gathered.
                if !batch.is_empty() {
                    handle_batch(&mut handler, &mut batch).await;
                }
                let _ = done.send(());
                continue;
            }
            m = upstream.next() => Some(m),
            _ = tokio::time::sleep(wait) => None,
        };
        match next {
            Some(None) => break,
            Some(Some(mut message)) => {
                // Released at once, so partitions keep flowing; the one
                // that fills the batch only after the batch is handled.
                let full = batch.len() + 1 >= size;
                if !full {
                    message.release();
                }
                batch.push(message);
                if full {
                    handle_batch(&mut handler, &mut batch).await;
                }
            }
            None => {
                if !batch.is_empty() {
                    handle_batch(&mut handler, &mut batch).await;
                }
            }
        }
    }
    if !batch.is_empty() {
        tracing::debug!(
            records = batch.len(),
            "consumer closed with a batch not handed over; it is not committed"
        );
    }
}

async fn handle_batch<B: BatchHandler>(handler: &mut B, batch: &mut Vec<Message>) {
    let outcome = guarded(handler.handle(batch)).await;
    if let Err(e) = &outcome {
        tracing::warn!(records = batch.len(), commit_batch = e.commits(), error = %e, "failed to handle message batch");
    }
    if shall_commit(&outcome) {
        for m in batch.iter() {
            m.mark();
        }
        // One commit per group generation the batch spans (usually one).
        let mut committed = Vec::new();
        for m in batch.iter() {
            let generation = m.session().generation();
            if committed.contains(&generation) {
                continue;
            }
            committed.push(generation);
            if let Err(e) = m.session().commit().await {
                tracing::warn!(error = %e, "commit of a batch failed");
            }
        }
    }
    for mut m in batch.drain(..) {
        m.release();
    }
}
