//! The record accumulator: per-partition queues of batches, the
//! `buffer.memory` bound, and the rules for when a batch is ready to go.
//!
//! `send` appends under one short lock; the sender task drains ready
//! batches (at most one per partition per request), puts failed ones back
//! in creation order for a retry, or the two pieces of a batch refused as
//! too large in its place, and completes them.

use crate::determinism::HashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::batch::{BatchId, HEADER, ProducerBatch, Stamp, TopicPartition, add_sequence};
use super::delivery::{BatchCompletion, DeliveryFuture};
use super::partitions::{PartitionState, Partitions};
use super::record::ProducerRecord;
use crate::error::{Error, Result};

/// How finely the sender's timer fires: tokio's timers run on whole
/// milliseconds.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// How long a batch that is not full waits before the sender takes it,
/// for a `linger.ms` of `linger`.
///
/// `linger.ms` is an upper bound on the delay batching adds, but a tokio
/// timer fires up to two ticks after its deadline: the deadline is rounded
/// up to a whole tick, and the driver then parks for whole ticks counted
/// from the tick it is in, not from the moment it parks. Aimed two ticks
/// early, a batch leaves within the last two milliseconds of its linger
/// (the Java client's, timed in whole milliseconds too, within the last
/// one). At least one tick of lingering is kept, so a `linger.ms` of 1 or
/// 2 waits 1 to 3 ms, and 0 sends at once.
pub(crate) fn linger_wait(linger: Duration) -> Duration {
    linger - (2 * TIMER_TICK).min(linger.saturating_sub(TIMER_TICK))
}

/// What the accumulator needs of the producer's settings.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub batch_size: usize,
    /// How long a batch that is not full waits: [`linger_wait`] of
    /// `linger.ms`.
    pub linger: Duration,
    pub buffer_memory: usize,
    /// `max.buffered.records`.
    pub max_records: usize,
    pub block_on_full: bool,
    pub max_block: Duration,
    pub max_request_size: usize,
    /// `max.in.flight.requests.per.connection`, also applied per
    /// partition: with 1, a partition waits for its batch in flight before
    /// sending the next (the Java client's ordering guarantee), even when
    /// its leader moved to another broker.
    pub max_in_flight: usize,
    /// `delivery.timeout.ms`: a queued batch older than this fails.
    pub delivery_timeout: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub partitions: Partitions,
    /// No more sends; deliver what is here and stop.
    pub closed: bool,
    /// Flushes in progress: every batch is ready at once.
    pub flushing: usize,
    /// Every batch not yet completed, by id.
    pub incomplete: BTreeMap<BatchId, Arc<BatchCompletion>>,
    /// The deadline the sender last computed ([`Accumulator::next_deadline`])
    /// and sleeps until at the latest: a new batch, which lingers to a
    /// later one, need not wake it.
    armed: Option<Instant>,
    next_id: u64,
    /// Buffers of completed batches, for new ones (see [`BufferPool`]).
    spare: BufferPool,
}

/// The buffers of completed batches, kept for new batches as the Java
/// client's `BufferPool` keeps `batch.size` buffers: at full speed a
/// producer would otherwise allocate, fault in and free a buffer of about
/// `batch.size` per batch, and allocators hand buffers of that size
/// (128 KiB and up) straight from and back to the kernel. At most
/// [`BufferPool::MAX`] buffers of half to twice `batch.size`; a buffer
/// goes back only once no request holds its bytes.
#[derive(Debug, Default)]
struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    const MAX: usize = 8;

    /// Keeps `buf` if there is room and it is near `batch.size` (half to
    /// twice): smaller ones (a compressed batch's, a quiet partition's)
    /// would hold a slot that full batches then cannot use.
    fn put(&mut self, buf: Vec<u8>, batch_size: usize) {
        let size = batch_size.max(HEADER);
        if self.free.len() < Self::MAX && (size / 2..=2 * size).contains(&buf.capacity()) {
            self.free.push(buf);
        }
    }

    /// A kept buffer with room for `capacity` bytes, if there is one.
    fn take(&mut self, capacity: usize) -> Option<Vec<u8>> {
        let at = self.free.iter().rposition(|b| b.capacity() >= capacity)?;
        Some(self.free.swap_remove(at))
    }
}

/// The outcome of an append.
pub(crate) struct Appended {
    pub future: DeliveryFuture,
    /// The append closed a full batch (the sticky partitioner moves on).
    pub batch_full: bool,
}

/// What a drain took, and when the sender should look again.
pub(crate) struct Drain {
    pub batches: Vec<Drained>,
    /// Some partition with a ready batch has no known leader.
    pub leaderless: bool,
    /// The earliest time a batch left behind becomes ready (its linger or
    /// retry backoff ends) or expires; now when a ready batch did not fit
    /// its broker's request. A ready batch held back by its broker (all
    /// its requests in flight, not connected) or by its partition (its
    /// batches in flight) does not count: the answer, or the connect,
    /// wakes the sender. (Counting it had the sender look again every
    /// millisecond while a broker was busy, going over every partition
    /// each time.)
    pub wake_at: Option<Instant>,
}

/// Moves `at` to `t` if `t` is earlier.
fn earliest(at: &mut Option<Instant>, t: Instant) {
    *at = Some(at.map_or(t, |a| a.min(t)));
}

/// A drained batch with the stamp it is to be sent with.
pub(crate) struct Drained {
    pub broker: i32,
    pub batch: ProducerBatch,
    pub stamp: Stamp,
}

#[derive(Debug)]
pub(crate) struct Accumulator {
    state: Mutex<State>,
    memory: Semaphore,
    /// `max.buffered.records`: one permit per record held, given back with
    /// the batch's memory.
    records: Semaphore,
    pub limits: Limits,
    /// Wakes the sender: a batch filled or started, a flush, a close.
    pub wake: Notify,
}

/// What a send to a closed producer gets: a state, not a setting, is wrong.
pub(crate) fn closed_error() -> Error {
    Error::State {
        reason: "the producer is closed".into(),
    }
}

/// The `buffer.memory` a record holds: its size in a batch, bounded above
/// (varint deltas at their largest).
pub(crate) fn record_memory(record: &ProducerRecord) -> usize {
    fn part(b: Option<&[u8]>) -> usize {
        b.map_or(1, |b| 5 + b.len())
    }
    let mut n = 5 + 1 + 10 + 5 + part(record.key.as_deref()) + part(record.value.as_deref()) + 5;
    for h in &record.headers {
        n += part(Some(&h.key)) + part(h.value.as_deref());
    }
    n
}

/// The buffer a new batch starts with: a quarter above the partition's
/// last batch (which grows by doubling if that is not enough), at most
/// `limit`; 16 KiB for a partition's first. A partition that gets a few
/// records per `linger.ms` does not hold (and fault in) `batch.size` bytes
/// per batch: with 600 partitions and 128 KiB batches that was 75 MiB of
/// fresh memory per linger round.
pub(crate) fn batch_capacity(last: usize, limit: usize) -> usize {
    const FIRST: usize = 16 * 1024;
    let want = if last == 0 { FIRST } else { last + last / 4 };
    want.clamp(HEADER, limit.max(HEADER))
}

impl Accumulator {
    pub(crate) fn new(limits: Limits) -> Self {
        let permits = limits.buffer_memory.min(Semaphore::MAX_PERMITS);
        Accumulator {
            state: Mutex::new(State::default()),
            memory: Semaphore::new(permits),
            records: Semaphore::new(limits.max_records.clamp(1, Semaphore::MAX_PERMITS)),
            limits,
            wake: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `bytes` of `buffer.memory` and one of `max.buffered.records`
    /// for a record: waits for room (up to `max.block.ms`) or fails at once,
    /// as configured. [`Accumulator::release`] gives both back.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<()> {
        let want = u32::try_from(bytes)
            .ok()
            .filter(|&b| (b as usize) <= self.limits.buffer_memory)
            .ok_or_else(|| {
                Error::config(
                    "buffer.memory",
                    format!(
                        "a record of {bytes} bytes is larger than buffer.memory ({})",
                        self.limits.buffer_memory
                    ),
                )
            })?;
        // Room now: no timer needed (the common case, per record).
        let record = match self.records.try_acquire() {
            Ok(record) => match self.memory.try_acquire_many(want) {
                Ok(memory) => {
                    memory.forget();
                    record.forget();
                    return Ok(());
                }
                Err(tokio::sync::TryAcquireError::Closed) => return Err(closed_error()),
                Err(tokio::sync::TryAcquireError::NoPermits) => Some(record),
            },
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed_error()),
            Err(tokio::sync::TryAcquireError::NoPermits) => None,
        };
        // Which bound is full, for the error.
        let full = |records: bool| {
            if records {
                format!(
                    "max.buffered.records (all {} records held, not yet acknowledged)",
                    self.limits.max_records
                )
            } else {
                format!(
                    "buffer.memory (all {} bytes held by records not yet acknowledged)",
                    self.limits.buffer_memory
                )
            }
        };
        if !self.limits.block_on_full || self.limits.max_block.is_zero() {
            // A full buffer is the producer's state, not a setting gone
            // wrong: like the blocking wait running out (and Java's
            // BufferExhaustedException), it is a timeout, here of no wait.
            return Err(Error::Timeout {
                what: format!(
                    "room in {}; block.on.buffer.full is false or max.block.ms is 0, \
                     so send does not wait",
                    full(record.is_none())
                ),
                after: Duration::ZERO,
            });
        }
        // Waiting: the record's permit first, then the bytes, each in
        // arrival order; a permit taken is given back if the other is not.
        let waiting_for_record = AtomicBool::new(record.is_none());
        let both = async {
            let record = match record {
                Some(p) => p,
                None => self.records.acquire().await.map_err(|_| closed_error())?,
            };
            waiting_for_record.store(false, Ordering::Relaxed);
            let memory = self
                .memory
                .acquire_many(want)
                .await
                .map_err(|_| closed_error())?;
            memory.forget();
            record.forget();
            Ok(())
        };
        match tokio::time::timeout(self.limits.max_block, both).await {
            Ok(done) => done,
            Err(_) => Err(Error::Timeout {
                what: format!(
                    "waiting for room in {}",
                    full(waiting_for_record.load(Ordering::Relaxed))
                ),
                after: self.limits.max_block,
            }),
        }
    }

    /// Gives back `bytes` of `buffer.memory` and `records` of
    /// `max.buffered.records`.
    pub(crate) fn release(&self, bytes: usize, records: usize) {
        if bytes > 0 {
            self.memory.add_permits(bytes);
        }
        if records > 0 {
            self.records.add_permits(records);
        }
    }

    /// The slots of `topic`'s partitions `0..count`, in partition order,
    /// for [`Accumulator::append_at`].
    pub(crate) fn slots(&self, topic: &Arc<str>, count: i32) -> Vec<usize> {
        let mut state = self.lock();
        (0..count.max(0))
            .map(|p| state.partitions.slot(&(Arc::clone(topic), p)))
            .collect()
    }

    /// [`Accumulator::append_at`] with the partition's slot looked up.
    #[cfg(test)]
    pub(crate) fn append(
        &self,
        partition: i32,
        record: ProducerRecord,
        timestamp: i64,
        memory: usize,
    ) -> Result<Appended> {
        let slot = self
            .lock()
            .partitions
            .slot(&(Arc::clone(&record.topic), partition));
        self.append_at(slot, partition, record, timestamp, memory)
    }

    /// Appends a record whose memory is reserved (`memory` bytes) to the
    /// open batch of `partition` of its topic, or to a new one. `slot` is
    /// that partition's slot ([`Accumulator::slots`]); a slot that holds
    /// another partition is not trusted, the partition's own is looked up.
    pub(crate) fn append_at(
        &self,
        slot: usize,
        partition: i32,
        record: ProducerRecord,
        timestamp: i64,
        memory: usize,
    ) -> Result<Appended> {
        let limit = self.limits.batch_size.max(HEADER + 1);
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closed {
            drop(guard);
            self.release(memory, 1);
            return Err(closed_error());
        }
        let (tp, ps) = state.partitions.checked(slot, &record.topic, partition);
        let mut record = record;
        let mut batch_full = false;
        if let Some(open) = ps.queue.back_mut() {
            match open.try_append(record, timestamp, limit) {
                Ok(Ok(future)) => {
                    open.memory += memory;
                    let full = open.closed;
                    drop(guard);
                    if full || self.limits.linger.is_zero() {
                        self.wake.notify_one();
                    }
                    return Ok(Appended {
                        future,
                        batch_full: full,
                    });
                }
                Ok(Err(e)) => {
                    drop(guard);
                    self.release(memory, 1);
                    return Err(e);
                }
                Err(back) => {
                    record = back;
                    batch_full = true;
                }
            }
        }
        let id = BatchId {
            created: state.next_id,
            first: 0,
        };
        state.next_id += 1;
        if let Some(full) = ps.queue.back() {
            ps.last_batch_bytes = full.size();
        }
        let capacity = batch_capacity(ps.last_batch_bytes, limit);
        let tp = tp.clone();
        let mut batch = match state.spare.take(capacity) {
            Some(buf) => ProducerBatch::in_buffer(tp, id, buf, Instant::now()),
            None => ProducerBatch::new(tp, id, capacity, Instant::now()),
        };
        let result = batch.try_append(record, timestamp, limit);
        let future = match result {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                drop(guard);
                self.release(memory, 1);
                return Err(e);
            }
            // An empty batch takes any record.
            Err(_) => {
                drop(guard);
                self.release(memory, 1);
                return Err(Error::config(
                    "batch.size",
                    "a record did not fit a new batch",
                ));
            }
        };
        batch.memory = memory;
        batch_full |= batch.closed;
        let ready_at = batch.created + self.limits.linger;
        state.incomplete.insert(id, Arc::clone(&batch.completion));
        ps.queue.push_back(batch);
        // The sender must hear of a batch that is ready now, or that is
        // ready before the deadline it sleeps until; otherwise it finds the
        // batch when it next looks. (Waking it for every new batch made it
        // scan every partition per new batch: quadratic in partitions.)
        let wake = batch_full
            || self.limits.linger.is_zero()
            || state.armed.is_none_or(|armed| armed > ready_at);
        drop(guard);
        if wake {
            self.wake.notify_one();
        }
        Ok(Appended { future, batch_full })
    }

    /// Takes the batches that are ready and may go now, and with them the
    /// first batch of every other partition whose leader is being sent a
    /// ready batch: at most one per partition, grouped by the leader
    /// `leader_of` names, up to
    /// `max.request.size` per broker and only for brokers `broker_open`
    /// accepts. `identity` is the producer id and epoch to stamp (None
    /// without idempotence). Returns the batches and whether some ready
    /// partition has no known leader.
    #[cfg(test)]
    pub(crate) fn drain(
        &self,
        now: Instant,
        identity: Option<(i64, i16)>,
        leader_of: impl FnMut(&TopicPartition) -> Option<i32>,
        broker_open: impl FnMut(i32) -> bool,
    ) -> (Vec<Drained>, bool) {
        let d = self.drain_where(now, identity, false, |_| true, leader_of, broker_open);
        (d.batches, d.leaderless)
    }

    /// [`Accumulator::drain`], but with `unresolved_only` only batches the
    /// broker may have written ([`ProducerBatch::maybe_written`]) under the
    /// stamp they carry, which must be `identity`'s: they go again under
    /// it before the epoch may change. A partition whose batch is ready is
    /// drained only if `may_send` agrees (a transactional producer's
    /// partition must first be added to the transaction).
    ///
    /// Until the sender names the time it sleeps to ([`Accumulator::arm`]),
    /// every new batch wakes it.
    pub(crate) fn drain_where(
        &self,
        now: Instant,
        identity: Option<(i64, i16)>,
        unresolved_only: bool,
        mut may_send: impl FnMut(&TopicPartition) -> bool,
        mut leader_of: impl FnMut(&TopicPartition) -> Option<i32>,
        mut broker_open: impl FnMut(i32) -> bool,
    ) -> Drain {
        let mut out: Vec<Drained> = Vec::new();
        let mut request_bytes: HashMap<i32, usize> = HashMap::default();
        let mut leaderless = false;
        let mut wake_at = None;
        let mut guard = self.lock();
        let state = &mut *guard;
        state.armed = None;
        let all_ready = state.closed || state.flushing > 0;
        // First the partitions that could send now, with their leader and
        // whether their own batch is ready; a broker with one ready batch
        // takes the others' too (as the Java client drains every partition
        // of a ready node): fewer, fuller requests, and no partition waits
        // out its own linger.ms once its broker is being sent to anyway.
        let mut candidates = Vec::new();
        let mut ready_brokers: Vec<i32> = Vec::new();
        for (tp, ps) in state.partitions.iter_mut() {
            let Some(head) = ps.queue.front() else {
                continue;
            };
            // A batch that stays queued counts for `wake_at` by its
            // delivery deadline, and by when it could go unless something
            // else wakes the sender then.
            let expires = head.created + self.limits.delivery_timeout;
            let alone =
                ps.retrying || identity.is_some_and(|current| ps.acknowledged != Some(current));
            if (alone && !ps.in_flight.is_empty())
                || ps.in_flight.len() >= self.limits.max_in_flight
            {
                earliest(&mut wake_at, expires);
                continue;
            }
            if let Some(t) = head.retry_at.filter(|&t| t > now) {
                earliest(&mut wake_at, t.min(expires));
                continue;
            }
            if unresolved_only
                && !(head.maybe_written
                    && head
                        .stamp
                        .is_some_and(|s| Some((s.producer_id, s.epoch)) == identity))
            {
                earliest(&mut wake_at, expires);
                continue;
            }
            let ready = ps
                .ready_at(now, self.limits.linger, all_ready)
                .is_some_and(|t| t <= now);
            let Some(broker) = leader_of(tp) else {
                leaderless |= ready;
                if let Some(t) = ps.look_again_at(now, &self.limits, all_ready) {
                    earliest(&mut wake_at, t);
                }
                continue;
            };
            if ready {
                if !may_send(tp) || !broker_open(broker) {
                    earliest(&mut wake_at, expires);
                    continue;
                }
                if !ready_brokers.contains(&broker) {
                    ready_brokers.push(broker);
                }
            }
            let created = head.created;
            candidates.push((tp, ps, broker, ready, created));
        }
        // The ready batches claim their requests' room first, the oldest
        // first: when a request has no room for every ready batch, those
        // left out are the first of the next one. (In the partition map's
        // order the same partitions came first every time, and at 6,000
        // partitions some waited out delivery.timeout.ms behind them.)
        candidates.sort_by_key(|&(_, _, _, ready, created)| (!ready, created));
        for (tp, ps, broker, ready, _) in candidates {
            // Looked at again when it stays (or, once drained, for the
            // batch behind it).
            let stays = |ps: &PartitionState, wake_at: &mut Option<Instant>| {
                if let Some(t) = ps.look_again_at(now, &self.limits, all_ready) {
                    earliest(wake_at, t);
                }
            };
            if !ready {
                let goes_along =
                    ready_brokers.contains(&broker) && may_send(tp) && broker_open(broker);
                if !goes_along {
                    stays(ps, &mut wake_at);
                    continue;
                }
            }
            let Some(size) = ps.queue.front().map(ProducerBatch::size) else {
                continue;
            };
            let used = request_bytes.entry(broker).or_default();
            if *used > 0 && *used + size > self.limits.max_request_size {
                // The next request to this broker takes it (if ready).
                stays(ps, &mut wake_at);
                continue;
            }
            let Some(batch) = ps.queue.pop_front() else {
                continue;
            };
            *used += batch.size();
            ps.last_batch_bytes = batch.size();
            let stamp = match identity {
                None => Stamp::NONE,
                Some((producer_id, epoch)) => match batch.stamp {
                    Some(s) if s.producer_id == producer_id && s.epoch == epoch => s,
                    _ => {
                        let s = Stamp {
                            producer_id,
                            epoch,
                            base_sequence: ps.next_sequence,
                        };
                        ps.next_sequence = add_sequence(ps.next_sequence, batch.count());
                        s
                    }
                },
            };
            ps.in_flight.insert(batch.id);
            stays(ps, &mut wake_at);
            out.push(Drained {
                broker,
                batch,
                stamp,
            });
        }
        Drain {
            batches: out,
            leaderless,
            wake_at,
        }
    }

    /// Notes the time the sender sleeps until at the latest (after a
    /// drain): a new batch that becomes ready later need not wake it.
    pub(crate) fn arm(&self, until: Instant) {
        self.lock().armed = Some(until);
    }

    /// Puts a batch back for a retry after `backoff`, in creation order
    /// among its partition's batches.
    pub(crate) fn requeue(&self, mut batch: ProducerBatch, backoff: Duration) {
        batch.retry_at = Some(Instant::now() + backoff);
        let mut state = self.lock();
        let ps = state.partitions.entry(&batch.tp);
        ps.take_back(batch.id, [batch]);
        drop(state);
        self.wake.notify_one();
    }

    /// Puts the two pieces of a drained batch the broker refused as too
    /// large in its place, at the head of its partition's queue in order,
    /// ready at once; its records' futures follow them. The partition
    /// sends one batch at a time until they are through, as after a retry.
    /// The batch's memory passes to the pieces.
    pub(crate) fn split(&self, batch: ProducerBatch, at: i32, pieces: [ProducerBatch; 2]) {
        let completions = [
            Arc::clone(&pieces[0].completion),
            Arc::clone(&pieces[1].completion),
        ];
        {
            let mut state = self.lock();
            let state = &mut *state;
            // The first piece has the batch's id: out before it goes in.
            state.incomplete.remove(&batch.id);
            for p in &pieces {
                state.incomplete.insert(p.id, Arc::clone(&p.completion));
            }
            let ps = state.partitions.entry(&batch.tp);
            ps.take_back(batch.id, pieces);
        }
        batch.completion.split(at, completions);
        self.wake.notify_one();
    }

    /// A kept buffer, for a compressed batch's wire form.
    pub(crate) fn spare_buffer(&self) -> Option<Vec<u8>> {
        self.lock().spare.take(0)
    }

    /// Keeps a buffer a compressed batch no longer needs, for new batches.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        self.lock().spare.put(buf, self.limits.batch_size);
    }

    /// Completes a batch that was drained: its records get `outcome`, its
    /// memory comes back.
    pub(crate) fn complete(&self, mut batch: ProducerBatch, outcome: Result<(i64, i64)>) {
        let buffer = batch.take_buffer();
        {
            let mut state = self.lock();
            if let Some(buf) = buffer {
                state.spare.put(buf, self.limits.batch_size);
            }
            state.incomplete.remove(&batch.id);
            if let Some(ps) = state.partitions.get_mut(&batch.tp) {
                ps.in_flight.remove(&batch.id);
                if outcome.is_ok()
                    && let Some(s) = batch.stamp
                    && s.producer_id >= 0
                {
                    ps.acknowledged = Some((s.producer_id, s.epoch));
                }
                if ps.retrying
                    && ps.in_flight.is_empty()
                    && ps.queue.front().is_none_or(|b| b.attempts == 0)
                {
                    ps.retrying = false;
                }
            }
        }
        batch.completion.complete(outcome);
        self.release(batch.memory, usize::try_from(batch.count()).unwrap_or(0));
        self.wake.notify_one();
    }

    /// Removes the queued batches older than `delivery.timeout.ms` (none in
    /// flight).
    pub(crate) fn expire(&self, now: Instant) -> Vec<ProducerBatch> {
        let timeout = self.limits.delivery_timeout;
        let mut out = Vec::new();
        let mut state = self.lock();
        for ps in state.partitions.values_mut() {
            while ps.queue.front().is_some_and(|b| now >= b.created + timeout) {
                if let Some(b) = ps.queue.pop_front() {
                    ps.in_flight.insert(b.id);
                    out.push(b);
                }
            }
        }
        out
    }

    /// Removes every queued batch (none in flight), for a transaction
    /// abort: the caller completes each one.
    pub(crate) fn take_queued(&self) -> Vec<ProducerBatch> {
        self.take_queued_where(|_| true)
    }

    /// [`Accumulator::take_queued`] of the partitions `which` picks.
    pub(crate) fn take_queued_where(
        &self,
        mut which: impl FnMut(&TopicPartition) -> bool,
    ) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        let mut state = self.lock();
        for (tp, ps) in state.partitions.iter_mut() {
            if !which(tp) {
                continue;
            }
            while let Some(b) = ps.queue.pop_front() {
                ps.in_flight.insert(b.id);
                out.push(b);
            }
            ps.retrying = false;
        }
        out
    }

    /// Whether some partition's next batch may have been written under the
    /// stamp it carries ([`ProducerBatch::maybe_written`]): sent again under
    /// another epoch it could be stored twice, so the epoch must not change
    /// before it is settled (acknowledged, a duplicate, or failed).
    pub(crate) fn has_unresolved(&self) -> bool {
        self.lock().partitions.values().any(|ps| {
            ps.queue
                .front()
                .is_some_and(|b| b.maybe_written && b.stamp.is_some())
        })
    }

    /// Every partition's sequence numbers start again from 0 (a new
    /// producer id or epoch); queued batches get new ones when drained.
    pub(crate) fn reset_sequences(&self) {
        let mut state = self.lock();
        for ps in state.partitions.values_mut() {
            ps.next_sequence = 0;
        }
    }

    /// When the sender should look again: the earliest linger end, retry
    /// backoff end or delivery deadline among queued batches, whether or
    /// not their broker could take them. The sender calls it before it
    /// sleeps when it did not drain (while an epoch bump waits); the
    /// answer is kept for `append`.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let delivery_timeout = self.limits.delivery_timeout;
        let mut state = self.lock();
        let mut best: Option<Instant> = None;
        let mut consider = |t: Instant| {
            best = Some(best.map_or(t, |b| b.min(t)));
        };
        for ps in state.partitions.values() {
            if let Some(head) = ps.queue.front() {
                consider(head.created + delivery_timeout);
                match head.retry_at {
                    Some(t) => consider(t),
                    None => consider(head.created + self.limits.linger),
                }
            }
        }
        state.armed = best;
        best
    }

    /// The completions of every batch not yet completed (for flush).
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchCompletion>> {
        self.lock().incomplete.values().cloned().collect()
    }

    /// Batches queued or in flight.
    pub(crate) fn pending(&self) -> usize {
        self.lock().incomplete.len()
    }

    /// Stops new sends; the sender delivers what is left.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Makes every batch ready until the matching [`Self::end_flush`].
    pub(crate) fn begin_flush(&self) {
        self.lock().flushing += 1;
        self.wake.notify_one();
    }

    pub(crate) fn end_flush(&self) {
        let mut state = self.lock();
        state.flushing = state.flushing.saturating_sub(1);
    }
}
