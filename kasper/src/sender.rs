//! What a processor writes: collected during `process`, produced after.

use klamm::producer::{AsyncProducer, ProducerRecord};

use crate::metrics::Metrics;

/// Collects a batch's output records (Kasper's `Sender`). Nothing is
/// written while `process` runs unless it calls [`Sender::flush`]; what is
/// left when it returns is produced then, and the batch's input offsets
/// are committed only once every output is acknowledged.
pub struct Sender<'a> {
    producer: &'a AsyncProducer,
    metrics: &'a Metrics,
    pending: Vec<ProducerRecord>,
}

impl<'a> Sender<'a> {
    pub(crate) fn new(producer: &'a AsyncProducer, metrics: &'a Metrics) -> Self {
        Sender {
            producer,
            metrics,
            pending: Vec::new(),
        }
    }

    /// Adds an output record (Kasper's `Send`); it is produced after
    /// `process` returns, or at the next [`Sender::flush`].
    pub fn send(&mut self, record: ProducerRecord) {
        self.pending.push(record);
    }

    /// The records collected and not yet produced.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Produces the collected records now and waits until each is
    /// acknowledged (Kasper's `Flush`). On an error every collected record
    /// stays collected, to go again with the next flush (some may then be
    /// written twice: outputs are at least once).
    pub async fn flush(&mut self) -> klamm::Result<()> {
        let mut deliveries = Vec::with_capacity(self.pending.len());
        for record in &self.pending {
            let topic = record.topic.clone();
            deliveries.push((topic, self.producer.send(record.clone()).await?));
        }
        let mut written = Vec::with_capacity(deliveries.len());
        for (topic, delivery) in deliveries {
            written.push((topic, delivery.await?.partition));
        }
        for (topic, partition) in written {
            self.metrics.outgoing(&topic, partition);
        }
        self.pending.clear();
        Ok(())
    }
}
