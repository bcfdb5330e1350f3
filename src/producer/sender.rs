//! The sender task: drains ready batches from the accumulator, sends them
//! in Produce requests (one per broker, at most `max.in.flight` of them
//! awaiting answers per broker), and completes, retries or fails each
//! batch from the answer.
//!
//! Requests to a broker are queued on its connection one after another
//! from this one task, so they are written in drain order; answers are
//! awaited concurrently. A batch that fails retriably goes back to the
//! front of its partition's queue in creation order, and the partition
//! then sends one batch at a time until the retried ones are through. A
//! batch of several records refused as too large (MESSAGE_TOO_LARGE) goes
//! back the same way as two halves, which take its sequence range.

use crate::determinism::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::accumulator::{Accumulator, Drain, Drained};
use super::batch::{ProducerBatch, Stamp, TopicPartition};
use super::idempotence::ProducerIdentity;
use super::stats::Counters;
use super::transaction::TransactionManager;
use crate::client::{Client, ClusterMetadata, TrafficClass};
use crate::config::{Acks, ProducerConfig};
use crate::error::{Error, Result};
use crate::net::Connection;
use crate::protocol::compression::Compression;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::produce_response::PartitionProduceResponse;
use crate::protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use crate::protocol::primitives::Uuid;

/// The lowest Produce version that carries v2 record batches.
const MIN_PRODUCE_VERSION: i16 = 3;

/// The shortest pause before connecting again to a broker whose connect
/// failed (`retry.backoff.ms` when longer).
const MIN_CONNECT_PAUSE: Duration = Duration::from_millis(1);

/// A finished connect: the broker id and the connection or the error.
type Connected = (i32, Result<Connection>);

/// A finished AddPartitionsToTxn: the partitions it added, and how it
/// ended.
type Added = (Vec<TopicPartition>, Result<()>);

/// A request's batches with their stamps, and how it ended.
struct Answered {
    broker: i32,
    batches: Vec<(ProducerBatch, Stamp)>,
    result: Result<ProduceResponse>,
}

/// The first Produce version that names topics by id.
const PRODUCE_BY_TOPIC_ID: i16 = 13;

/// The last Produce version of transactions V1: a transactional producer
/// stays there unless its transaction runs transactions V2 (v12 says the
/// client speaks V2, KIP-890: the broker adds the partition itself).
const LAST_TV1_PRODUCE: i16 = 11;

pub(crate) struct Sender {
    pub client: Client,
    pub acc: Arc<Accumulator>,
    pub identity: Option<Arc<ProducerIdentity>>,
    /// A transactional producer's manager: partitions join the
    /// transaction before their first batch goes out; the epoch is its to
    /// bump.
    pub txn: Option<TransactionManager>,
    pub config: ProducerConfig,
    pub counters: Arc<Counters>,
    in_flight: HashMap<i32, usize>,
    /// Connections ready to use, by broker id.
    connections: HashMap<i32, Connection>,
    /// Brokers being connected to: the loop never waits for a connect, so
    /// a broker that is slow to connect holds up only its own batches.
    connecting: HashSet<i32>,
    /// Connects that finished, for the loop to pick up.
    connected: Arc<Mutex<Vec<Connected>>>,
    /// Brokers whose last connect failed, and when to try again. The pool
    /// fails a connect at once while its reconnect backoff runs, so
    /// without this pause the loop and its connect tasks would spin on
    /// those failures.
    connect_retry_at: HashMap<i32, Instant>,
    answers: JoinSet<Answered>,
    last_leader_refresh: Option<Instant>,
    /// Partitions whose AddPartitionsToTxn is on its way. Like a connect,
    /// it runs in a task of its own: the manager may be busy for up to
    /// `max.block.ms` with another operation (sending offsets), and the
    /// loop must go on sending the other partitions' batches and handling
    /// answers meanwhile. These partitions' batches wait in the
    /// accumulator.
    txn_adding: Vec<TopicPartition>,
    /// AddPartitionsToTxn calls that finished, for the loop to pick up.
    txn_added: Arc<Mutex<Vec<Added>>>,
}

impl Sender {
    pub(crate) fn new(
        client: Client,
        acc: Arc<Accumulator>,
        identity: Option<Arc<ProducerIdentity>>,
        txn: Option<TransactionManager>,
        config: ProducerConfig,
        counters: Arc<Counters>,
    ) -> Self {
        Sender {
            client,
            acc,
            identity,
            txn,
            config,
            counters,
            in_flight: HashMap::default(),
            connections: HashMap::default(),
            connecting: HashSet::default(),
            connected: Arc::default(),
            connect_retry_at: HashMap::default(),
            txn_adding: Vec::new(),
            txn_added: Arc::default(),
            answers: JoinSet::new(),
            last_leader_refresh: None,
        }
    }

    fn total_in_flight(&self) -> usize {
        self.answers.len()
    }

    /// Runs until the producer is closed and every batch is completed.
    pub(crate) async fn run(mut self) {
        loop {
            let now = Instant::now();
            for batch in self.acc.expire(now) {
                let err = self.expired(&batch);
                self.fail(batch, err);
            }
            // A transactional producer's epoch is bumped by its manager,
            // in abort_transaction.
            let bumping =
                self.txn.is_none() && self.identity.as_ref().is_some_and(|i| i.bump_needed());
            // When to look again if nothing wakes the loop first, and
            // whether it comes from a drain (which `arm` completes).
            let (wake_at, drained) = if bumping {
                // Batches the broker may have written are settled first,
                // under the stamp they were sent with (where the broker
                // recognises a copy); nothing else goes out meanwhile.
                if self.total_in_flight() == 0 && !self.acc.has_unresolved() {
                    self.bump_epoch().await;
                } else {
                    self.send_ready(now, true).await;
                }
                (self.acc.next_deadline(), false)
            } else {
                (self.send_ready(now, false).await, true)
            };
            if self.acc.is_closed() && self.acc.pending() == 0 && self.total_in_flight() == 0 {
                break;
            }
            let deadline = wake_at
                .map(|d| d.max(now + Duration::from_millis(1)))
                .unwrap_or(now + Duration::from_secs(3600));
            if drained {
                self.acc.arm(deadline);
            }
            let wake = self.acc.wake.notified();
            tokio::select! {
                _ = wake => {}
                Some(done) = self.answers.join_next(), if !self.answers.is_empty() => {
                    if let Ok(answered) = done {
                        self.on_answer(answered);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            while let Some(done) = self.answers.try_join_next() {
                if let Ok(answered) = done {
                    self.on_answer(answered);
                }
            }
        }
    }

    /// Bumps the epoch (or gets the first producer id, or a new one when
    /// the epoch is used up), then restarts every partition's sequence
    /// numbers. Failing that, the queued batches fail with the error once
    /// their delivery timeout passes.
    async fn bump_epoch(&mut self) {
        let Some(identity) = self.identity.clone() else {
            return;
        };
        if identity.bump_locally() {
            Counters::add(&self.counters.producer_id_requests, 1);
            self.acc.reset_sequences();
            return;
        }
        match identity
            .init(
                &self.client,
                self.config.retry_backoff,
                self.config.request_timeout,
            )
            .await
        {
            Ok(()) => {
                Counters::add(&self.counters.producer_id_requests, 1);
                self.acc.reset_sequences();
            }
            Err(e) => {
                tracing::warn!(error = %e, "InitProducerId failed; retrying after backoff");
                tokio::time::sleep(self.config.retry_backoff).await;
            }
        }
    }

    fn leader_of(meta: &ClusterMetadata, topic: &str, partition: i32) -> Option<i32> {
        let p = meta.partition(topic, partition)?;
        (p.leader >= 0 && meta.brokers.contains_key(&p.leader)).then_some(p.leader)
    }

    /// Takes the connects that finished.
    fn collect_connects(&mut self) {
        let done = std::mem::take(&mut *self.connected.lock().unwrap_or_else(|p| p.into_inner()));
        for (broker, result) in done {
            self.connecting.remove(&broker);
            match result {
                Ok(conn) => {
                    self.connect_retry_at.remove(&broker);
                    self.connections.insert(broker, conn);
                }
                Err(e) => {
                    tracing::debug!(broker, error = %e, "producer connect failed");
                    let now = Instant::now();
                    let pause = self.config.retry_backoff.max(MIN_CONNECT_PAUSE);
                    self.connect_retry_at.insert(broker, now + pause);
                    self.refresh_leaders(now);
                }
            }
        }
    }

    /// Starts connecting to `broker` in the background; the sender is woken
    /// when it is done.
    fn start_connect(&mut self, meta: &ClusterMetadata, broker: i32) {
        if self.connecting.contains(&broker)
            || self
                .connect_retry_at
                .get(&broker)
                .is_some_and(|at| Instant::now() < *at)
        {
            return;
        }
        let Some(info) = meta.brokers.get(&broker).cloned() else {
            return;
        };
        self.connecting.insert(broker);
        let client = self.client.clone();
        let acc = Arc::clone(&self.acc);
        let connected = Arc::clone(&self.connected);
        tokio::spawn(async move {
            let r = client.connection(&info, TrafficClass::Produce).await;
            connected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((broker, r));
            acc.wake.notify_one();
        });
    }

    /// Sends the batches that are ready; with `unresolved_only`, only the
    /// ones the broker may have written, under their stamps. Returns when
    /// to look again unless an answer, a connect or a new batch comes
    /// first ([`Drain::wake_at`], or sooner to connect again or to look
    /// for a missing leader).
    async fn send_ready(&mut self, now: Instant, unresolved_only: bool) -> Option<Instant> {
        self.collect_connects();
        self.collect_txn_adds();
        self.connections.retain(|_, c| !c.is_closed());
        let meta = self.client.metadata();
        let identity = self.identity.as_ref().and_then(|i| i.current());
        let max = self.config.max_in_flight_requests_per_connection;
        let in_flight = &self.in_flight;
        let connections = &self.connections;
        let txn = self.txn.as_ref();
        let adding = &self.txn_adding;
        let mut unconnected = Vec::new();
        let mut to_add: Vec<TopicPartition> = Vec::new();
        let Drain {
            batches: drained,
            leaderless,
            mut wake_at,
        } = self.acc.drain_where(
            now,
            identity,
            unresolved_only,
            |tp| {
                let Some(txn) = txn else {
                    return true;
                };
                if txn.is_partition_added(&tp.0, tp.1) {
                    return true;
                }
                if !adding.contains(tp) && !to_add.contains(tp) {
                    to_add.push(tp.clone());
                }
                false
            },
            |tp| Self::leader_of(&meta, &tp.0, tp.1),
            |broker| {
                if !connections.contains_key(&broker) {
                    if !unconnected.contains(&broker) {
                        unconnected.push(broker);
                    }
                    return false;
                }
                in_flight.get(&broker).copied().unwrap_or(0) < max
            },
        );
        let mut sooner = |t: Instant| wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
        for broker in unconnected {
            self.start_connect(&meta, broker);
            // A connect under way wakes the sender when it ends; one that
            // failed is tried again after its pause.
            if !self.connecting.contains(&broker)
                && let Some(&at) = self.connect_retry_at.get(&broker)
            {
                sooner(at);
            }
        }
        if leaderless {
            // The metadata refresh does not wake the sender.
            self.refresh_leaders(now);
            sooner(now + self.config.retry_backoff);
        }
        if !to_add.is_empty() {
            self.start_txn_add(to_add);
        }
        let mut by_broker: HashMap<i32, Vec<(ProducerBatch, Stamp)>> = HashMap::default();
        for Drained {
            broker,
            batch,
            stamp,
        } in drained
        {
            by_broker.entry(broker).or_default().push((batch, stamp));
        }
        for (broker, batches) in by_broker {
            self.send_to(broker, batches).await;
        }
        wake_at
    }

    /// Adds `partitions` to the transaction in a task of its own; the
    /// sender is woken when it is done. Their batches wait until then.
    fn start_txn_add(&mut self, partitions: Vec<TopicPartition>) {
        let Some(txn) = self.txn.clone() else {
            return;
        };
        self.txn_adding.extend(partitions.iter().cloned());
        let added = Arc::clone(&self.txn_added);
        let acc = Arc::clone(&self.acc);
        tokio::spawn(async move {
            let result = txn.add_partitions(&partitions).await;
            added
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((partitions, result));
            acc.wake.notify_one();
        });
    }

    /// Takes the AddPartitionsToTxn calls that finished. The partitions of
    /// one that failed have their queued batches failed with its error
    /// (the transaction is then abortable, or fatal, as the manager says).
    fn collect_txn_adds(&mut self) {
        let done = std::mem::take(&mut *self.txn_added.lock().unwrap_or_else(|p| p.into_inner()));
        for (partitions, result) in done {
            self.txn_adding.retain(|p| !partitions.contains(p));
            let Err(e) = result else {
                continue;
            };
            tracing::debug!(error = %e, "AddPartitionsToTxn failed; failing the partitions' batches");
            for batch in self.acc.take_queued_where(|tp| partitions.contains(tp)) {
                self.fail(batch, e.duplicate());
            }
        }
    }

    /// Starts a background metadata refresh, at most once per
    /// `retry.backoff.ms`.
    fn refresh_leaders(&mut self, now: Instant) {
        if self
            .last_leader_refresh
            .is_none_or(|t| now >= t + self.config.retry_backoff)
        {
            self.last_leader_refresh = Some(now);
            self.client.report_error(ErrorCode::LEADER_NOT_AVAILABLE);
        }
    }

    async fn send_to(&mut self, broker: i32, batches: Vec<(ProducerBatch, Stamp)>) {
        let Some(conn) = self.connections.get(&broker).cloned() else {
            let err = Error::Broker {
                api: ApiKey::Produce,
                code: ErrorCode::LEADER_NOT_AVAILABLE,
                context: Some(format!("no connection to broker {broker}")),
            };
            return self.retry_all(batches, &err);
        };
        let version = match conn.api_versions().version_up_to(
            ApiKey::Produce,
            conn.broker(),
            PRODUCE_BY_TOPIC_ID,
        ) {
            Ok(v) if v >= MIN_PRODUCE_VERSION => v,
            Ok(v) => {
                let err = Error::UnsupportedVersion {
                    broker: conn.broker().to_string(),
                    api: ApiKey::Produce,
                    broker_versions: Some((0, v)),
                    ours: (MIN_PRODUCE_VERSION, PRODUCE_BY_TOPIC_ID),
                };
                for (b, _) in batches {
                    self.fail(b, err.duplicate());
                }
                return;
            }
            Err(e) => {
                for (b, _) in batches {
                    self.fail(b, e.duplicate());
                }
                return;
            }
        };
        let transactional = self.config.transactional_id.is_some();
        let tv1 = transactional && !self.txn.as_ref().is_some_and(|t| t.is_transaction_v2());
        let mut version = if tv1 {
            version.min(LAST_TV1_PRODUCE)
        } else {
            version
        };
        // v13 names topics by id: only when metadata knows every topic's
        // id (as the Java producer does); otherwise v12, by name.
        let ids: Vec<(Arc<str>, Uuid)> = if version >= PRODUCE_BY_TOPIC_ID {
            let meta = self.client.metadata();
            let mut ids = Vec::new();
            for (b, _) in &batches {
                if ids.iter().any(|(n, _): &(Arc<str>, Uuid)| **n == *b.tp.0) {
                    continue;
                }
                match meta.topics.get(&*b.tp.0).map(|t| t.id) {
                    Some(id) if id != Uuid::ZERO => ids.push((b.tp.0.clone(), id)),
                    _ => {
                        version = PRODUCE_BY_TOPIC_ID - 1;
                        break;
                    }
                }
            }
            if version >= PRODUCE_BY_TOPIC_ID {
                ids
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        let id_of = |name: &str| {
            ids.iter()
                .find(|(n, _)| **n == *name)
                .map_or(Uuid::ZERO, |(_, id)| *id)
        };
        let mut topics: Vec<TopicProduceData> = Vec::new();
        let mut kept = Vec::with_capacity(batches.len());
        // A compressed batch's records buffer is spent once its wire form
        // is written: the next batch's wire form goes into it, and the
        // first one's into a kept buffer, so compressing allocates nothing.
        let compressed = self.config.compression != Compression::None;
        let mut scratch = if compressed {
            self.acc.spare_buffer()
        } else {
            None
        };
        for (mut batch, stamp) in batches {
            let bytes = match batch.encoded(
                stamp,
                transactional,
                self.config.compression,
                self.config.compression_level,
                &mut scratch,
            ) {
                Ok(b) => b,
                Err(e) => {
                    // Its sequence numbers were taken: start afresh.
                    if let Some(identity) = &self.identity {
                        identity.request_bump();
                    }
                    self.fail(batch, e);
                    continue;
                }
            };
            if scratch.is_none() {
                scratch = batch.take_spent_records();
            }
            batch.attempts += 1;
            Counters::add(&self.counters.batches_sent, 1);
            let data = PartitionProduceData {
                index: batch.tp.1,
                records: Some(bytes),
                ..Default::default()
            };
            let by_id = version >= PRODUCE_BY_TOPIC_ID;
            let topic_id = id_of(&batch.tp.0);
            match topics.iter_mut().find(|t| {
                if by_id {
                    t.topic_id == topic_id
                } else {
                    *t.name == *batch.tp.0
                }
            }) {
                Some(t) => t.partition_data.push(data),
                None => topics.push(TopicProduceData {
                    name: if by_id {
                        String::new()
                    } else {
                        batch.tp.0.to_string()
                    },
                    topic_id: if by_id { topic_id } else { Uuid::ZERO },
                    partition_data: vec![data],
                    ..Default::default()
                }),
            }
            kept.push((batch, stamp));
        }
        if let Some(buf) = scratch {
            self.acc.recycle(buf);
        }
        if kept.is_empty() {
            return;
        }
        let req = ProduceRequest {
            transactional_id: self.config.transactional_id.clone(),
            acks: self.config.acks.code(),
            timeout_ms: i32::try_from(self.config.request_timeout.as_millis()).unwrap_or(i32::MAX),
            topic_data: topics,
            ..Default::default()
        };
        Counters::add(&self.counters.requests, 1);
        if self.config.acks == Acks::None {
            match conn.send_without_response(&req, version).await {
                Ok(()) => {
                    for (b, _) in kept {
                        self.written(b, (-1, -1));
                    }
                }
                Err(e) => self.retry_all(kept, &e),
            }
            return;
        }
        match conn.queue_version(&req, version).await {
            Ok(answer) => {
                *self.in_flight.entry(broker).or_default() += 1;
                self.answers.spawn(async move {
                    Answered {
                        broker,
                        batches: kept,
                        // Answers by topic id get their names back here.
                        result: answer.await.map(|mut resp| {
                            for t in &mut resp.responses {
                                if t.name.is_empty()
                                    && let Some((n, _)) =
                                        ids.iter().find(|(_, id)| *id == t.topic_id)
                                {
                                    t.name = n.to_string();
                                }
                            }
                            resp
                        }),
                    }
                });
            }
            Err(e) => self.retry_all(kept, &e),
        }
    }

    fn on_answer(&mut self, answered: Answered) {
        let Answered {
            broker,
            batches,
            result,
        } = answered;
        if let Some(n) = self.in_flight.get_mut(&broker) {
            *n = n.saturating_sub(1);
        }
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                // The broker may be gone for good: have the leaders looked
                // up again before the retry (as the Java client does after
                // a disconnect).
                if e.is_retriable() {
                    self.refresh_leaders(Instant::now());
                }
                // No answer: the request may have been written.
                let batches = batches
                    .into_iter()
                    .map(|(mut b, stamp)| {
                        b.maybe_written = true;
                        (b, stamp)
                    })
                    .collect();
                return self.retry_all(batches, &e);
            }
        };
        // One lookup per batch: a request to a broker leading thousands of
        // partitions carries thousands of batches, and a search of the
        // answer per batch was quadratic in them. The first answer for a
        // partition counts, as a search would have found it.
        let mut by_partition: HashMap<(&str, i32), &PartitionProduceResponse> = HashMap::default();
        for t in &resp.responses {
            for p in &t.partition_responses {
                by_partition.entry((t.name.as_str(), p.index)).or_insert(p);
            }
        }
        for (batch, stamp) in batches {
            let found = by_partition.get(&(&*batch.tp.0, batch.tp.1)).copied();
            match found {
                Some(p) => self.on_partition(batch, stamp, p),
                None => {
                    let err = Error::ProtocolViolation {
                        broker: broker.to_string(),
                        reason: format!("Produce answer has no {}/{}", batch.tp.0, batch.tp.1),
                    };
                    self.fail(batch, err);
                }
            }
        }
    }

    fn on_partition(&mut self, batch: ProducerBatch, stamp: Stamp, p: &PartitionProduceResponse) {
        let code = ErrorCode(p.error_code);
        if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
            return self.written(batch, (p.base_offset, p.log_append_time_ms));
        }
        let err = Error::Broker {
            api: ApiKey::Produce,
            code,
            context: Some(match &p.error_message {
                Some(m) if !m.is_empty() => format!("{}/{}: {m}", batch.tp.0, batch.tp.1),
                _ => format!("{}/{}", batch.tp.0, batch.tp.1),
            }),
        };
        self.client.report_error(code);
        if code == ErrorCode::MESSAGE_TOO_LARGE && batch.count() > 1 {
            return self.split(batch, &err);
        }
        if let Some(identity) = self.identity.clone() {
            if code == ErrorCode::UNKNOWN_PRODUCER_ID {
                // The broker no longer knows us (its state for this
                // producer expired): new epoch, sequences from 0, retry.
                // It holds nothing to match a copy against either, so the
                // batch cannot be settled under its old stamp.
                identity.request_bump();
                let mut batch = batch;
                batch.maybe_written = false;
                return self.retry(batch, &err);
            }
            if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER {
                let oldest = self
                    .acc
                    .lock()
                    .partitions
                    .get(&batch.tp)
                    .and_then(|ps| ps.oldest_unfinished());
                if oldest.is_some_and(|o| o < batch.id) {
                    // An earlier batch of the partition is being retried;
                    // this one follows it.
                    return self.retry(batch, &err);
                }
                // A real gap: the broker lost batches it had acknowledged.
                // Like the Java client, fail this batch and carry on under
                // a new epoch.
                let _ = stamp;
                return self.fail(batch, err);
            }
        }
        self.retry(batch, &err)
    }

    /// Splits a batch the broker refused as too large in two and puts the
    /// pieces back at the head of its partition's queue. The broker wrote
    /// nothing of it and kept its sequence range free, so the pieces take
    /// that range between them and later batches keep theirs (one that
    /// overtook the pieces is refused as out of order and retried after
    /// them). The refused attempt does not count against `retries`.
    fn split(&mut self, batch: ProducerBatch, err: &Error) {
        match batch.split() {
            Ok((at, pieces)) => {
                tracing::debug!(topic = %batch.tp.0, partition = batch.tp.1, records = batch.count(),
                    bytes = batch.size(), "batch too large for the broker; split in two");
                Counters::add(&self.counters.batches_split, 1);
                self.acc.split(batch, at, pieces);
            }
            Err(e) => {
                tracing::warn!(topic = %batch.tp.0, partition = batch.tp.1, error = %e,
                    "cannot split a batch refused as too large");
                self.fail(batch, err.duplicate());
            }
        }
    }

    fn written(&self, batch: ProducerBatch, at: (i64, i64)) {
        Counters::add(&self.counters.batches_written, 1);
        self.acc.complete(batch, Ok(at));
    }

    fn expired(&self, batch: &ProducerBatch) -> Error {
        Error::Timeout {
            what: format!(
                "delivery of {} records to {}/{} (delivery.timeout.ms)",
                batch.count(),
                batch.tp.0,
                batch.tp.1
            ),
            after: self.config.delivery_timeout,
        }
    }

    fn retry_all(&mut self, batches: Vec<(ProducerBatch, Stamp)>, err: &Error) {
        for (b, _) in batches {
            self.retry(b, err);
        }
    }

    /// Retries a batch that failed with `err` if the error is retriable
    /// and the batch has attempts and time left; fails it otherwise.
    fn retry(&mut self, batch: ProducerBatch, err: &Error) {
        let retriable = err.is_retriable()
            || matches!(
                err.kafka_code(),
                Some(ErrorCode::UNKNOWN_PRODUCER_ID | ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            );
        let time_left = Instant::now() + self.config.retry_backoff
            < batch.created + self.config.delivery_timeout;
        if retriable && batch.counted_attempts() <= self.config.retries && time_left {
            tracing::debug!(topic = %batch.tp.0, partition = batch.tp.1, attempt = batch.attempts,
                error = %err, "produce failed; retrying");
            Counters::add(&self.counters.batches_retried, 1);
            self.acc.requeue(batch, self.config.retry_backoff);
        } else if retriable && !time_left {
            // Retrying would have helped, but the delivery timeout ran
            // out: that is the records' error (Java's "expiring records"),
            // naming the last failure.
            let expired = match self.expired(&batch) {
                Error::Timeout { what, after } => Error::Timeout {
                    what: format!("{what}; last error: {err}"),
                    after,
                },
                other => other,
            };
            self.fail(batch, expired);
        } else {
            self.fail(batch, err.duplicate());
        }
    }

    /// Fails a batch for good. A batch that had a sequence number leaves a
    /// gap in its partition's sequence: the epoch is bumped so the next
    /// batches start a fresh sequence.
    fn fail(&mut self, batch: ProducerBatch, err: Error) {
        if let Some(identity) = &self.identity
            && (batch.attempts > 0 || batch.stamp.is_some())
        {
            identity.request_bump();
        }
        tracing::debug!(topic = %batch.tp.0, partition = batch.tp.1, error = %err, "batch failed");
        let mut err = err;
        if let Some(txn) = &self.txn {
            txn.fail_transaction(&err);
            // Fenced (in transactions V2 a fenced producer hears it from
            // the Produce itself, not from AddPartitionsToTxn): the record
            // fails with the manager's account, which says what to do.
            if txn.state() == crate::producer::transaction::TransactionState::FatalError
                && let Err(fatal) = txn.check_send()
            {
                err = fatal;
            }
        }
        Counters::add(&self.counters.batches_failed, 1);
        self.acc.complete(batch, Err(err));
    }
}
