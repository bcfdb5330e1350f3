//! The accumulator's per-partition state, and the table that holds it.
//!
//! The table hands out a *slot* per partition: an index that stays valid
//! for the producer's life (partitions are never removed). The producer
//! keeps each topic's slots with its cached partition view (so every
//! partition of a topic it sends to has one, written to or not), so that a
//! record reaches its partition's queue by index, under the accumulator's
//! lock, without hashing and comparing its topic name a second time.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::accumulator::Limits;
use super::batch::{BatchId, ProducerBatch, TopicPartition};
use super::hash::FastHash;
use crate::determinism::HashMap;

/// One partition's queue and bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    /// Batches waiting to be sent, oldest first; only the last may be open.
    pub queue: VecDeque<ProducerBatch>,
    /// Ids of this partition's batches in flight.
    pub in_flight: BTreeSet<BatchId>,
    /// A batch came back for a retry (or split): send one batch at a time
    /// until the retried ones are through, so that order holds.
    pub retrying: bool,
    /// The sequence number the next new batch starts at (idempotence).
    pub next_sequence: i32,
    /// The producer id and epoch under which the broker last acknowledged
    /// a batch of this partition. Until it has under the current ones it
    /// may hold no state for them, and a broker without state takes any
    /// first sequence: a batch that overtook a refused one would be
    /// written ahead of it. So until then the partition sends one batch at
    /// a time (idempotence only).
    pub acknowledged: Option<(i64, i16)>,
    /// The size of this partition's last batch when it stopped taking
    /// records (0 before the first): a new batch's buffer starts a quarter
    /// above it rather than at `batch.size`.
    pub last_batch_bytes: usize,
}

impl PartitionState {
    /// Takes back the drained batch `id` (for a retry, or as the pieces it
    /// was split into): it leaves the in-flight set, the partition sends
    /// one batch at a time until it is through, and `batches` go into the
    /// queue in order where `id` stands among the queued batches by
    /// creation.
    pub(crate) fn take_back(
        &mut self,
        id: BatchId,
        batches: impl IntoIterator<Item = ProducerBatch>,
    ) {
        self.in_flight.remove(&id);
        self.retrying = true;
        let at = self
            .queue
            .iter()
            .position(|b| b.id > id)
            .unwrap_or(self.queue.len());
        for (i, b) in batches.into_iter().enumerate() {
            self.queue.insert(at + i, b);
        }
    }

    /// When the head batch may go as far as its age is concerned: now (or
    /// earlier) when it is ready (full, retried, followed by another,
    /// lingered long enough, or every batch is ready: `all_ready`), its
    /// retry backoff's end, or its linger's end. None with no batch.
    pub(crate) fn ready_at(
        &self,
        now: Instant,
        linger: Duration,
        all_ready: bool,
    ) -> Option<Instant> {
        let head = self.queue.front()?;
        if let Some(t) = head.retry_at.filter(|&t| t > now) {
            return Some(t);
        }
        if all_ready || head.closed || head.attempts > 0 || self.queue.len() > 1 {
            return Some(now);
        }
        Some(head.created + linger)
    }

    /// When the sender should look at this partition again, for its head
    /// batch: when it may go or when it expires, whichever comes first.
    /// None with no batch.
    pub(crate) fn look_again_at(
        &self,
        now: Instant,
        limits: &Limits,
        all_ready: bool,
    ) -> Option<Instant> {
        let expires = self.queue.front()?.created + limits.delivery_timeout;
        Some(self.ready_at(now, limits.linger, all_ready)?.min(expires))
    }

    /// The id of the oldest batch not yet completed.
    pub(crate) fn oldest_unfinished(&self) -> Option<BatchId> {
        let queued = self.queue.front().map(|b| b.id);
        let flying = self.in_flight.first().copied();
        match (queued, flying) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Every partition of the topics the producer sends to, each in a slot of
/// its own, in the order they were first looked up.
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    index: HashMap<TopicPartition, usize, FastHash>,
    slots: Vec<(TopicPartition, PartitionState)>,
}

impl Partitions {
    /// The slot of `tp`, made (empty) if it has none yet.
    pub(crate) fn slot(&mut self, tp: &TopicPartition) -> usize {
        if let Some(&i) = self.index.get(tp) {
            return i;
        }
        let i = self.slots.len();
        self.slots.push((tp.clone(), PartitionState::default()));
        self.index.insert(tp.clone(), i);
        i
    }

    /// The partition in `slot` and its state, if that slot holds
    /// `partition` of `topic` (the same `Arc`, or the same name); if not,
    /// those of the partition's own slot.
    pub(crate) fn checked(
        &mut self,
        slot: usize,
        topic: &Arc<str>,
        partition: i32,
    ) -> (&TopicPartition, &mut PartitionState) {
        let holds = self.slots.get(slot).is_some_and(|(tp, _)| {
            tp.1 == partition && (Arc::ptr_eq(&tp.0, topic) || *tp.0 == **topic)
        });
        let i = if holds {
            slot
        } else {
            self.slot(&(Arc::clone(topic), partition))
        };
        let (tp, ps) = &mut self.slots[i];
        (tp, ps)
    }

    /// The state of `tp`, made (empty) if it has none yet.
    pub(crate) fn entry(&mut self, tp: &TopicPartition) -> &mut PartitionState {
        let i = self.slot(tp);
        &mut self.slots[i].1
    }

    pub(crate) fn get(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.index.get(tp).map(|&i| &self.slots[i].1)
    }

    pub(crate) fn get_mut(&mut self, tp: &TopicPartition) -> Option<&mut PartitionState> {
        self.index.get(tp).map(|&i| &mut self.slots[i].1)
    }

    /// Every partition in slot order (the order they were first looked up).
    pub(crate) fn iter_mut(
        &mut self,
    ) -> impl Iterator<Item = (&TopicPartition, &mut PartitionState)> {
        self.slots.iter_mut().map(|(tp, ps)| (&*tp, ps))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &PartitionState> {
        self.slots.iter().map(|(_, ps)| ps)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut PartitionState> {
        self.slots.iter_mut().map(|(_, ps)| ps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_keeps_its_slot_and_each_has_its_own() {
        let mut p = Partitions::default();
        let a: TopicPartition = (Arc::from("a"), 0);
        let b: TopicPartition = (Arc::from("a"), 1);
        let c: TopicPartition = (Arc::from("b"), 0);
        let (sa, sb, sc) = (p.slot(&a), p.slot(&b), p.slot(&c));
        assert_eq!((sa, sb, sc), (0, 1, 2));
        // The same partition, named by another Arc of the same text.
        assert_eq!(p.slot(&(Arc::from(String::from("a")), 1)), sb);
        p.entry(&b).next_sequence = 7;
        let (tp, ps) = p.checked(sb, &Arc::from("a"), 1);
        assert_eq!((&*tp.0, tp.1, ps.next_sequence), ("a", 1, 7));
        assert_eq!(p.get(&a).map(|ps| ps.next_sequence), Some(0));
        assert!(p.get(&(Arc::from("x"), 0)).is_none());
        // A slot holding another partition, or none, is not trusted.
        let (tp, _) = p.checked(sa, &Arc::from("b"), 0);
        assert_eq!(tp, &c);
        let (tp, _) = p.checked(99, &Arc::from("a"), 1);
        assert_eq!(tp, &b);
        // A partition first seen through `checked` gets a slot of its own.
        let (tp, _) = p.checked(0, &Arc::from("b"), 5);
        assert_eq!(tp, &(Arc::from("b"), 5));
        assert_eq!(p.slot(&(Arc::from("b"), 5)), 3);
        let order: Vec<_> = p.iter_mut().map(|(tp, _)| tp.clone()).collect();
        assert_eq!(order, vec![a, b, c, (Arc::from("b"), 5)]);
    }
}
