//! Emitters: write keyed values to a topic, placed as goka places them
//! (goka's `Emitter`).

use klamm::Client;
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};

use crate::codec::Codec;
use crate::error::Error;
use crate::hasher::goka_partition;

/// Writes values under keys to one topic, each on the partition goka's
/// hasher gives its key, so goka processors (Go or Rust) find them.
///
/// ```no_run
/// use klamm_goka::{Emitter, StringCodec};
///
/// # async fn run(client: klamm::Client) -> Result<(), klamm_goka::Error> {
/// let emitter = Emitter::new(client, "user-clicks", StringCodec).await?;
/// emitter.emit_sync("user-3", &"click".to_string()).await?;
/// emitter.finish().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Emitter<C: Codec> {
    topic: String,
    partitions: i32,
    codec: C,
    headers: Vec<(String, Vec<u8>)>,
    producer: AsyncProducer,
}

impl<C: Codec> Emitter<C> {
    /// An emitter to `topic` (which must exist: its partition count places
    /// the keys).
    pub async fn new(client: Client, topic: &str, codec: C) -> Result<Emitter<C>, Error> {
        let partitions = i32::try_from(client.partitions(topic).await?.len()).unwrap_or(i32::MAX);
        let producer = AsyncProducer::new(client).await?;
        Ok(Emitter {
            topic: topic.to_string(),
            partitions,
            codec,
            headers: Vec::new(),
            producer,
        })
    }

    /// Headers put on every record (goka's `WithEmitterDefaultHeaders`).
    pub fn with_default_headers(mut self, headers: &[(&str, &[u8])]) -> Self {
        self.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        self
    }

    /// The partition `key` goes to.
    pub fn partition_of(&self, key: &str) -> i32 {
        goka_partition(key.as_bytes(), self.partitions)
    }

    /// Queues `value` under `key`; the future resolves when Kafka has it.
    pub async fn emit(&self, key: &str, value: &C::Value) -> Result<DeliveryFuture, Error> {
        let bytes = self.codec.encode(value).map_err(Error::Codec)?;
        self.send(key, Some(bytes), &[]).await
    }

    /// [`emit`](Self::emit) with headers (they win over the defaults).
    pub async fn emit_with_headers(
        &self,
        key: &str,
        value: &C::Value,
        headers: &[(&str, &[u8])],
    ) -> Result<DeliveryFuture, Error> {
        let bytes = self.codec.encode(value).map_err(Error::Codec)?;
        self.send(key, Some(bytes), headers).await
    }

    /// Queues a null value (a tombstone) under `key`.
    pub async fn emit_null(&self, key: &str) -> Result<DeliveryFuture, Error> {
        self.send(key, None, &[]).await
    }

    /// Emits and waits for Kafka's acknowledgement.
    pub async fn emit_sync(&self, key: &str, value: &C::Value) -> Result<(), Error> {
        self.emit(key, value).await?.await?;
        Ok(())
    }

    async fn send(
        &self,
        key: &str,
        value: Option<Vec<u8>>,
        headers: &[(&str, &[u8])],
    ) -> Result<DeliveryFuture, Error> {
        let mut record = match value {
            Some(v) => ProducerRecord::new(self.topic.clone(), v),
            None => ProducerRecord::tombstone(self.topic.clone()),
        }
        .with_key(key.as_bytes().to_vec())
        .with_partition(self.partition_of(key));
        for (k, v) in &self.headers {
            if !headers.iter().any(|(h, _)| h == k) {
                record = record.with_header(k.clone(), v.clone());
            }
        }
        for (k, v) in headers {
            record = record.with_header(k.to_string(), v.to_vec());
        }
        Ok(self.producer.send(record).await?)
    }

    /// Waits for everything emitted and closes (goka's `Finish`).
    pub async fn finish(self) -> Result<(), Error> {
        self.producer.flush().await?;
        self.producer.close().await?;
        Ok(())
    }
}
