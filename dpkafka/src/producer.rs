//! The managed producer: background initialisation, a header on every
//! record, health check, close.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::Bytes;
use klamm::Client;
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::backoff::initialise_until;
use crate::config::ProducerConfig;
use crate::health::{Health, Prober, Subject, verdict};
use crate::lock;
use crate::message::TRACE_ID_HEADER;

#[derive(Debug)]
struct Inner {
    config: ProducerConfig,
    client_config: klamm::Config,
    ready: StdMutex<Option<(Client, AsyncProducer)>>,
    initialised: watch::Sender<bool>,
    headers: StdMutex<Vec<(String, String)>>,
    closed: AtomicBool,
    stop: watch::Sender<bool>,
    init_task: StdMutex<Option<JoinHandle<()>>>,
    prober: Arc<Prober>,
}

/// A producer for one topic that starts without the cluster (dp-kafka's
/// `Producer`).
///
/// - Creating one never fails because the cluster is unreachable: it
///   keeps trying in the background; until it succeeds,
///   [`send_bytes`](Self::send_bytes) fails with
///   [`Error::NotInitialised`] (dp-kafka dropped such records and
///   reported them on its error channel).
/// - Every record carries the producer's headers: `request-id` (a random
///   UUID, one per producer, or [`ProducerConfig::trace_id`]) and any
///   added with [`add_header`](Self::add_header).
/// - Records go out with klamm's producer defaults (`acks=all`,
///   idempotent, batched); each send returns the
///   [`DeliveryFuture`] of its acknowledgement (dp-kafka's error channel:
///   await it to learn of a failure).
/// - After [`close`](Self::close), sends fail with [`Error::Closed`].
///
/// ```no_run
/// use std::time::Duration;
/// use klamm_dpkafka::{Producer, ProducerConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = ProducerConfig::new(["localhost:9092"], "orders");
/// config.min_brokers_healthy = 1;
/// let producer = Producer::new(config).await?;
/// producer.wait_initialised().await?;
/// producer.add_header("source", "billing");
/// let delivered = producer.send_json(&serde_json::json!({"order": 17})).await?;
/// delivered.await?;
/// producer.close(Duration::from_secs(10)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Stops the background initialisation when the last handle is dropped
/// without `close`.
#[derive(Debug)]
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.0.stop.send_replace(true);
    }
}

impl Producer {
    /// Checks `config`, makes one attempt to reach the cluster, and
    /// returns; the attempts go on in the background until one succeeds.
    /// Only a bad configuration fails.
    pub async fn new(config: ProducerConfig) -> Result<Producer, Error> {
        let client_config = config.client_config()?;
        let prober = Prober::new(&client_config, &config.topic)?;
        let trace = config.trace_id.clone().unwrap_or_else(uuid_v4);
        let inner = Arc::new(Inner {
            config,
            client_config,
            ready: StdMutex::new(None),
            initialised: watch::Sender::new(false),
            headers: StdMutex::new(vec![(TRACE_ID_HEADER.to_string(), trace)]),
            closed: AtomicBool::new(false),
            stop: watch::Sender::new(false),
            init_task: StdMutex::new(None),
            prober,
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(initialise(inner.clone(), first_tx));
        *lock(&inner.init_task) = Some(task);
        let _ = first_rx.await;
        Ok(Producer {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Whether the cluster has been reached.
    pub fn is_initialised(&self) -> bool {
        *self.inner.initialised.borrow()
    }

    /// Waits until the cluster has been reached; [`Error::Closed`] if the
    /// producer is closed first.
    pub async fn wait_initialised(&self) -> Result<(), Error> {
        let mut ready = self.inner.initialised.subscribe();
        let mut stop = self.inner.stop.subscribe();
        tokio::select! {
            _ = ready.wait_for(|i| *i) => Ok(()),
            _ = stop.wait_for(|s| *s) => Err(Error::Closed),
        }
    }

    /// The producer's headers, in the order they go on records.
    pub fn headers(&self) -> Vec<(String, String)> {
        lock(&self.inner.headers).clone()
    }

    /// Adds a header to every record sent from now on (an empty key is
    /// ignored; a key may repeat).
    pub fn add_header(&self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        if !key.is_empty() {
            lock(&self.inner.headers).push((key, value.into()));
        }
    }

    /// Sends `value` to the topic; the future resolves when it is
    /// acknowledged.
    pub async fn send_bytes(&self, value: impl Into<Bytes>) -> Result<DeliveryFuture, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let producer = match &*lock(&self.inner.ready) {
            Some((_, p)) => p.clone(),
            None if self.inner.closed.load(Ordering::Acquire) => return Err(Error::Closed),
            None => return Err(Error::NotInitialised),
        };
        let mut record = ProducerRecord::new(self.inner.config.topic.clone(), value.into());
        for (k, v) in lock(&self.inner.headers).iter() {
            record = record.with_header(k.clone(), v.clone());
        }
        producer.send(record).await.map_err(|e| {
            if self.inner.closed.load(Ordering::Acquire) {
                Error::Closed
            } else {
                Error::Kafka(e)
            }
        })
    }

    /// Sends `event` encoded as JSON.
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &self,
        event: &T,
    ) -> Result<DeliveryFuture, Error> {
        let bytes = serde_json::to_vec(event)?;
        self.send_bytes(bytes).await
    }

    /// Probes every configured broker for the topic, as
    /// [`ConsumerGroup::check_health`](crate::ConsumerGroup::check_health)
    /// does.
    pub async fn check_health(&self) -> Health {
        let probes = self.inner.prober.probe_all().await;
        verdict(
            Subject::Producer,
            &self.inner.config.topic,
            &probes,
            self.inner.config.min_brokers_healthy,
            self.is_initialised(),
        )
    }

    /// Stops taking records, delivers what is buffered and disconnects,
    /// within `deadline` (past it: [`Error::Timeout`], the rest goes on in
    /// the background). Idempotent.
    pub async fn close(&self, deadline: Duration) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.inner.stop.send_replace(true);
        let inner = self.inner.clone();
        let work = async move {
            let init = lock(&inner.init_task).take();
            if let Some(init) = init {
                let _ = init.await;
            }
            let ready = lock(&inner.ready).take();
            let mut outcome = Ok(());
            if let Some((client, producer)) = ready {
                outcome = producer.close().await.map_err(Error::Kafka);
                client.close().await;
            }
            inner.prober.close().await;
            outcome
        };
        match tokio::time::timeout(deadline, tokio::spawn(work)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Err(Error::Kafka(klamm::Error::Disconnected {
                broker: "producer".into(),
                reason: format!("closing ended abnormally: {join}"),
            })),
            Err(_) => Err(Error::Timeout {
                what: "closing the producer",
                after: deadline,
            }),
        }
    }
}

async fn initialise(inner: Arc<Inner>, first: oneshot::Sender<()>) {
    let mut first = Some(first);
    let ready = initialise_until(
        (inner.config.min_retry_period, inner.config.max_retry_period),
        "the producer",
        &mut first,
        || *inner.stop.borrow(),
        inner.stop.subscribe(),
        true,
        || async {
            let client = Client::connect(inner.client_config.clone()).await?;
            match AsyncProducer::new(client.clone()).await {
                Ok(p) => Ok((client, p)),
                Err(e) => {
                    client.close().await;
                    Err(e)
                }
            }
        },
    )
    .await;
    if let Some(ready) = ready {
        *lock(&inner.ready) = Some(ready);
        let _ = inner.initialised.send_replace(true);
    }
    if let Some(f) = first.take() {
        let _ = f.send(());
    }
}

/// A random (version 4) UUID in its usual text form.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: still unique enough per process and moment.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (nanos ^ u128::from(std::process::id())).to_be_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[tokio::test]
    async fn without_a_cluster_sends_fail_clearly_and_close_is_final() {
        // A port nothing listens on (bound, then freed).
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut config = ProducerConfig::new([addr.as_str()], "t");
        config.min_brokers_healthy = 1;
        config.trace_id = Some("trace-1".into());
        let p = Producer::new(config).await.unwrap();
        assert!(!p.is_initialised());
        assert!(matches!(
            p.send_bytes("x").await,
            Err(Error::NotInitialised)
        ));
        let health = p.check_health().await;
        assert_eq!(health.status, crate::Status::Critical);
        assert_eq!(
            health.message,
            format!("broker(s) not reachable at: [{addr}]")
        );
        p.add_header("", "ignored");
        p.add_header("source", "test");
        assert_eq!(
            p.headers(),
            [
                ("request-id".to_string(), "trace-1".to_string()),
                ("source".to_string(), "test".to_string())
            ]
        );
        p.close(Duration::from_secs(5)).await.unwrap();
        p.close(Duration::from_secs(5)).await.unwrap();
        assert!(matches!(p.send_bytes("x").await, Err(Error::Closed)));
        assert!(matches!(p.wait_initialised().await, Err(Error::Closed)));
    }
}
