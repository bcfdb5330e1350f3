//! [`SyncProducer`]: a blocking producer on its own runtime thread.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::accumulator::closed_error;
use super::async_producer::AsyncProducer;
use super::partitioner::Partitioner;
use super::record::ProducerRecord;
use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, Result};

/// A blocking producer: each call returns once its records are written
/// (or failed). It runs an [`AsyncProducer`] on a runtime thread of its
/// own, so it is for code outside any async runtime; calling it from
/// inside one panics (as blocking there would stall the runtime).
///
/// ```no_run
/// use klamm::producer::{ProducerRecord, SyncProducer};
/// use klamm::Config;
///
/// # fn main() -> klamm::Result<()> {
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["localhost:9092".into()];
/// let producer = SyncProducer::connect(config)?;
/// let (partition, offset) = producer.send_message(ProducerRecord::new("events", "hello"))?;
/// println!("written to {partition} at {offset}");
/// producer.close()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SyncProducer {
    producer: Option<AsyncProducer>,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SyncProducer {
    /// A producer on `client`, with `client.config().producer`. The
    /// client's new connections are made on the producer's runtime.
    pub fn new(client: Client) -> Result<SyncProducer> {
        Self::start(|| async move { AsyncProducer::new(client).await })
    }

    /// [`SyncProducer::new`] with a [`Partitioner`] of your own in place of
    /// the `partitioner` setting's (see [`AsyncProducer::with_partitioner`]).
    pub fn with_partitioner(
        client: Client,
        partitioner: Arc<dyn Partitioner>,
    ) -> Result<SyncProducer> {
        Self::start(|| async move { AsyncProducer::with_partitioner(client, partitioner).await })
    }

    /// Connects a [`Client`] with `config` and starts a producer on it.
    pub fn connect(config: Config) -> Result<SyncProducer> {
        Self::start(|| async move { AsyncProducer::new(Client::connect(config).await?).await })
    }

    fn start<F, Fut>(make: F) -> Result<SyncProducer>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<AsyncProducer>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                context: "starting the producer's runtime".into(),
                source: e,
            })?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("klamm-sync-producer".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| Error::Io {
                context: "starting the producer's thread".into(),
                source: e,
            })?;
        let mut this = SyncProducer {
            producer: None,
            handle,
            stop: Some(stop),
            thread: Some(thread),
        };
        let producer = this.handle.block_on(this.handle.spawn(make()));
        this.producer = Some(producer.map_err(|e| Error::Disconnected {
            broker: "producer".into(),
            reason: format!("starting the producer failed: {e}"),
        })??);
        Ok(this)
    }

    fn producer(&self) -> Result<AsyncProducer> {
        self.producer.clone().ok_or_else(closed_error)
    }

    /// Sends one record and waits until it is written: its partition and
    /// offset (offset -1 with `acks=0`).
    pub fn send_message(&self, record: ProducerRecord) -> Result<(i32, i64)> {
        let producer = self.producer()?;
        self.handle.block_on(async move {
            let f = producer.send(record).await?;
            producer.flush().await?;
            let meta = f.await?;
            Ok((meta.partition, meta.offset))
        })
    }

    /// Sends records together and waits for all of them; each gets its own
    /// result, in order.
    pub fn send_messages(&self, records: Vec<ProducerRecord>) -> Vec<Result<(i32, i64)>> {
        let producer = match self.producer() {
            Ok(p) => p,
            Err(e) => {
                return records.iter().map(|_| Err(e.duplicate())).collect();
            }
        };
        self.handle.block_on(async move {
            let mut sent = Vec::with_capacity(records.len());
            for r in records {
                sent.push(producer.send(r).await);
            }
            let _ = producer.flush().await;
            let mut out = Vec::with_capacity(sent.len());
            for s in sent {
                out.push(match s {
                    Ok(f) => f.await.map(|m| (m.partition, m.offset)),
                    Err(e) => Err(e),
                });
            }
            out
        })
    }

    /// [`AsyncProducer::init_transactions`], blocking.
    pub fn init_transactions(&self) -> Result<()> {
        let producer = self.producer()?;
        self.handle
            .block_on(async move { producer.init_transactions().await })
    }

    /// [`AsyncProducer::begin_transaction`].
    pub fn begin_transaction(&self) -> Result<()> {
        self.producer()?.begin_transaction()
    }

    /// [`AsyncProducer::send_offsets_to_transaction`], blocking.
    pub fn send_offsets_to_transaction<T: AsRef<str>>(
        &self,
        offsets: &[(T, i32, i64, Option<&str>)],
        group: &super::transaction::ConsumerGroupMetadata,
    ) -> Result<()> {
        let producer = self.producer()?;
        self.handle
            .block_on(producer.send_offsets_to_transaction(offsets, group))
    }

    /// [`AsyncProducer::commit_transaction`], blocking.
    pub fn commit_transaction(&self) -> Result<()> {
        let producer = self.producer()?;
        self.handle
            .block_on(async move { producer.commit_transaction().await })
    }

    /// [`AsyncProducer::abort_transaction`], blocking.
    pub fn abort_transaction(&self) -> Result<()> {
        let producer = self.producer()?;
        self.handle
            .block_on(async move { producer.abort_transaction().await })
    }

    /// Delivers what is buffered and stops the producer and its thread.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let result = match self.producer.take() {
            Some(p) => self.handle.block_on(p.close()),
            None => Ok(()),
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        result
    }
}

impl Drop for SyncProducer {
    fn drop(&mut self) {
        if self.producer.is_some() && Handle::try_current().is_err() {
            let _ = self.shutdown();
        }
    }
}
