//! A scripted in-process broker for producer fault tests: one node, one
//! topic, a log per partition with the broker's idempotence checks
//! (duplicates, out-of-order sequences, epochs), Kafka's batch size limit
//! (`max.message.bytes`, per partition here), just enough of a transaction
//! coordinator for a transactional producer, faults to inject into the
//! next Produce requests, and a gate that holds Produce requests unanswered
//! while later ones arrive.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::Client;
use crate::config::Config;
use crate::producer::AsyncProducer;
use crate::producer::batch::add_sequence;
use crate::protocol::compression::Compression;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::frame::{decode_request, encode_response, split_frame};
use crate::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::metadata_response::*;
use crate::protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use crate::protocol::messages::*;
use crate::protocol::records::{DecodeOptions, RecordBatch};

/// What the next Produce request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Every partition of the request fails with this code; nothing is
    /// written.
    Code(ErrorCode),
    /// The request is written, then the connection drops unanswered.
    WriteThenDrop,
    /// The connection drops before anything is written.
    Drop,
    /// Handled as usual (to aim the next fault at a later request).
    Pass,
}

/// One partition's log and the state of each producer id that wrote to it.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub values: Vec<Bytes>,
    producers: HashMap<i64, ProducerEntry>,
    /// The producer id of the last idempotent batch written.
    last_writer: Option<i64>,
}

/// What the broker keeps of a producer id on one partition.
#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    last_sequence: i32,
    /// (base sequence, base offset) of recent batches, for duplicates.
    recent: VecDeque<(i32, i64)>,
}

/// A batch the fake was sent, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub partition: i32,
    /// The batch's size on the wire, as Kafka checks it.
    pub size: usize,
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub count: i32,
    pub compression: Compression,
    pub transactional: bool,
    pub code: ErrorCode,
    /// The base offset it was written at (-1 if not written).
    pub offset: i64,
}

#[derive(Debug, Default)]
pub(crate) struct FakeState {
    /// How the next Metadata answers report the topic, in order: with this
    /// error and no partitions (a topic being created, or one the client
    /// may not see). Empty: the topic and its partitions.
    pub topic_answers: VecDeque<ErrorCode>,
    /// Metadata requests answered.
    pub metadata_requests: usize,
    pub logs: HashMap<i32, Log>,
    pub faults: VecDeque<Fault>,
    /// Codes the next batches written to a partition fail with, in order
    /// (the request's other partitions are written).
    pub partition_errors: HashMap<i32, VecDeque<ErrorCode>>,
    /// (producer id, epoch) of every InitProducerId request.
    pub init_requests: Vec<(i64, i16)>,
    pub produce_requests: usize,
    /// The epoch new producer ids start at (0, as Apache Kafka's do).
    pub first_epoch: i16,
    /// Partition 1's leader is broker 2 at this port (a peer that never
    /// answers), when set.
    pub silent_leader_port: Option<i32>,
    /// `max.message.bytes` by partition: a larger batch is refused with
    /// MESSAGE_TOO_LARGE before anything else is checked, as Kafka does.
    pub max_batch_bytes: HashMap<i32, usize>,
    /// Every batch of every Produce request (faults aside), in the order
    /// they were handled.
    pub seen: Vec<Seen>,
    /// The partitions of every AddPartitionsToTxn request.
    pub added_to_txn: Vec<Vec<i32>>,
    /// EndTxn requests: `true` for a commit.
    pub ended_txns: Vec<bool>,
    /// The metadata also lists broker 0 at this port (nothing listens
    /// there: a broker that is down), leading nothing, when set.
    pub down_broker_port: Option<i32>,
    next_producer_id: i64,
}

/// A broker that accepts connections and never answers (nor closes
/// them); returns its port, for [`FakeState::silent_leader_port`].
pub(crate) async fn silent_broker() -> i32 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = i32::from(listener.local_addr().expect("addr").port());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(s) = crate::test_support::accept(&listener).await {
            held.push(s);
        }
    });
    port
}

#[derive(Clone)]
pub(crate) struct FakeBroker {
    pub addr: String,
    port: i32,
    partitions: i32,
    topic: String,
    pub state: Arc<Mutex<FakeState>>,
    /// Produce requests read so far (answered or not).
    received: Arc<watch::Sender<usize>>,
    /// While true, Produce requests wait unanswered (in order).
    held: Arc<watch::Sender<bool>>,
}

impl FakeBroker {
    pub(crate) async fn start(topic: &str, partitions: i32) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = i32::from(listener.local_addr().expect("addr").port());
        let fake = FakeBroker {
            addr: format!("127.0.0.1:{port}"),
            port,
            partitions,
            topic: topic.to_string(),
            state: Arc::new(Mutex::new(FakeState {
                next_producer_id: 1000,
                ..Default::default()
            })),
            received: Arc::new(watch::Sender::new(0)),
            held: Arc::new(watch::Sender::new(false)),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok(stream) = crate::test_support::accept(&listener).await {
                tokio::spawn(f.clone().serve(stream));
            }
        });
        fake
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn inject(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    /// Holds Produce requests unanswered (`true`) or lets them through.
    pub(crate) fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    /// Produce requests read so far, answered or held.
    pub(crate) fn received(&self) -> usize {
        *self.received.borrow()
    }

    /// Waits until `n` Produce requests have been read.
    pub(crate) async fn wait_received(&self, n: usize) {
        let mut rx = self.received.subscribe();
        let _ = rx.wait_for(|&got| got >= n).await;
    }

    /// The batches written, in offset order, with what the fake was sent.
    pub(crate) fn written(&self, partition: i32) -> Vec<Seen> {
        let mut w: Vec<Seen> = self
            .lock()
            .seen
            .iter()
            .filter(|b| b.partition == partition && b.code == ErrorCode::NONE)
            .cloned()
            .collect();
        w.sort_by_key(|b| b.offset);
        w
    }

    /// The producer id, epoch and last sequence of the last idempotent
    /// batch written to a partition.
    pub(crate) fn producer(&self, partition: i32) -> Option<(i64, i16, i32)> {
        let state = self.lock();
        let log = state.logs.get(&partition)?;
        let pid = log.last_writer?;
        log.producers
            .get(&pid)
            .map(|p| (pid, p.epoch, p.last_sequence))
    }

    /// The next batch written to `partition` fails with `code`.
    pub(crate) fn fail_partition(&self, partition: i32, code: ErrorCode) {
        self.lock()
            .partition_errors
            .entry(partition)
            .or_default()
            .push_back(code);
    }

    /// A producer's settings for this broker: 1 ms linger, 10 ms retry
    /// backoff, 200-byte batches.
    pub(crate) fn config(&self) -> Config {
        let mut config = Config::default();
        config.net.bootstrap_servers = vec![self.addr.clone()];
        config.producer.linger = Duration::from_millis(1);
        config.producer.retry_backoff = Duration::from_millis(10);
        config.producer.batch_size = 200;
        config
    }

    /// The values written to a partition, in offset order.
    pub(crate) fn values(&self, partition: i32) -> Vec<Bytes> {
        self.lock()
            .logs
            .get(&partition)
            .map(|l| l.values.clone())
            .unwrap_or_default()
    }

    async fn serve(self, stream: TcpStream) {
        // Requests are read as they come and handled one after another, so
        // that requests held at the gate are counted as they arrive.
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let received = Arc::clone(&self.received);
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                let frame = match split_frame(&mut buf, 1 << 24) {
                    Ok(Some(f)) => f,
                    Ok(None) => match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                    Err(_) => return,
                };
                let Ok(request) = decode_request(frame.freeze()) else {
                    return;
                };
                if matches!(request.1, RequestBody::Produce(_)) {
                    received.send_modify(|n| *n += 1);
                }
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        while let Some((h, body)) = rx.recv().await {
            if self.answer(h, body, &mut wr).await.is_err() {
                break;
            }
        }
        reader.abort();
    }

    /// Answers one request; an error ends the connection.
    async fn answer(
        &self,
        h: RequestHeader,
        body: RequestBody,
        wr: &mut tokio::net::tcp::OwnedWriteHalf,
    ) -> Result<(), ()> {
        {
            let v = h.request_api_version;
            let id = h.correlation_id;
            let mut out = BytesMut::new();
            let r = match body {
                RequestBody::ApiVersions(_) => {
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|k| ApiVersion {
                                api_key: k.code(),
                                min_version: 0,
                                max_version: k.versions().1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::ApiVersions, id, &resp, v)
                }
                RequestBody::Metadata(_) => {
                    let resp = self.metadata();
                    encode_response(&mut out, ApiKey::Metadata, id, &resp, v)
                }
                RequestBody::InitProducerId(req) => {
                    // As Apache Kafka does without a transactional id: a
                    // new producer id, whatever id and epoch are named.
                    let mut s = self.lock();
                    s.init_requests.push((req.producer_id, req.producer_epoch));
                    s.next_producer_id += 1;
                    let (pid, epoch) = (s.next_producer_id, s.first_epoch);
                    drop(s);
                    let resp = InitProducerIdResponse {
                        producer_id: pid,
                        producer_epoch: epoch,
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::InitProducerId, id, &resp, v)
                }
                RequestBody::FindCoordinator(req) => {
                    let coordinator = |key: String| Coordinator {
                        key,
                        node_id: 1,
                        host: "127.0.0.1".into(),
                        port: self.port,
                        ..Default::default()
                    };
                    let resp = if v >= 4 {
                        FindCoordinatorResponse {
                            coordinators: req
                                .coordinator_keys
                                .into_iter()
                                .map(coordinator)
                                .collect(),
                            ..Default::default()
                        }
                    } else {
                        FindCoordinatorResponse {
                            node_id: 1,
                            host: "127.0.0.1".into(),
                            port: self.port,
                            ..Default::default()
                        }
                    };
                    encode_response(&mut out, ApiKey::FindCoordinator, id, &resp, v)
                }
                RequestBody::AddPartitionsToTxn(req) if v <= 3 => {
                    let topics = req.v3_and_below_topics;
                    self.lock().added_to_txn.push(
                        topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().copied())
                            .collect(),
                    );
                    let resp = AddPartitionsToTxnResponse {
                        results_by_topic_v3_and_below: topics
                            .iter()
                            .map(|t| AddPartitionsToTxnTopicResult {
                                name: t.name.clone(),
                                results_by_partition: t
                                    .partitions
                                    .iter()
                                    .map(|&p| AddPartitionsToTxnPartitionResult {
                                        partition_index: p,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::AddPartitionsToTxn, id, &resp, v)
                }
                RequestBody::EndTxn(req) => {
                    self.lock().ended_txns.push(req.committed);
                    let resp = EndTxnResponse::default();
                    encode_response(&mut out, ApiKey::EndTxn, id, &resp, v)
                }
                RequestBody::Produce(req) => {
                    let mut gate = self.held.subscribe();
                    let _ = gate.wait_for(|held| !held).await;
                    let fault = {
                        let mut s = self.lock();
                        s.produce_requests += 1;
                        s.faults.pop_front()
                    };
                    match fault {
                        Some(Fault::Drop) => return Err(()),
                        Some(Fault::WriteThenDrop) => {
                            self.produce(&req, None);
                            return Err(());
                        }
                        Some(Fault::Code(code)) => {
                            let resp = self.produce(&req, Some(code));
                            encode_response(&mut out, ApiKey::Produce, id, &resp, v)
                        }
                        Some(Fault::Pass) | None => {
                            let resp = self.produce(&req, None);
                            encode_response(&mut out, ApiKey::Produce, id, &resp, v)
                        }
                    }
                }
                _ => return Err(()),
            };
            if r.is_err() || wr.write_all(&out).await.is_err() {
                return Err(());
            }
        }
        Ok(())
    }

    fn metadata(&self) -> MetadataResponse {
        let (silent, down, topic_error) = {
            let mut s = self.lock();
            s.metadata_requests += 1;
            (
                s.silent_leader_port,
                s.down_broker_port,
                s.topic_answers.pop_front(),
            )
        };
        let mut brokers = vec![MetadataResponseBroker {
            node_id: 1,
            host: "127.0.0.1".into(),
            port: self.port,
            ..Default::default()
        }];
        if let Some(port) = down {
            brokers.insert(
                0,
                MetadataResponseBroker {
                    node_id: 0,
                    host: "127.0.0.1".into(),
                    port,
                    ..Default::default()
                },
            );
        }
        if let Some(port) = silent {
            brokers.push(MetadataResponseBroker {
                node_id: 2,
                host: "127.0.0.1".into(),
                port,
                ..Default::default()
            });
        }
        MetadataResponse {
            brokers,
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some(self.topic.clone()),
                error_code: topic_error.map_or(0, |c| c.code()),
                partitions: (0..if topic_error.is_some() {
                    0
                } else {
                    self.partitions
                })
                    .map(|i| MetadataResponsePartition {
                        partition_index: i,
                        leader_id: if i == 1 && silent.is_some() { 2 } else { 1 },
                        replica_nodes: vec![1],
                        isr_nodes: vec![1],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Writes the request's batches as a broker with idempotence would,
    /// or fails every partition with `fail`.
    fn produce(&self, req: &ProduceRequest, fail: Option<ErrorCode>) -> ProduceResponse {
        let mut s = self.lock();
        let s = &mut *s;
        let mut responses = Vec::new();
        for t in &req.topic_data {
            let mut parts = Vec::new();
            for p in &t.partition_data {
                let injected = s
                    .partition_errors
                    .get_mut(&p.index)
                    .and_then(VecDeque::pop_front);
                let (code, base) = match fail.or(injected) {
                    Some(code) => (code, -1),
                    None => {
                        let records = p.records.clone().unwrap_or_default();
                        let size = records.len();
                        let limit = s.max_batch_bytes.get(&p.index).copied();
                        match RecordBatch::decode(&mut records.clone(), &DecodeOptions::default()) {
                            Ok(batch) => {
                                let (code, base) = if limit.is_some_and(|l| size > l) {
                                    (ErrorCode::MESSAGE_TOO_LARGE, -1)
                                } else {
                                    append(s.logs.entry(p.index).or_default(), &batch)
                                };
                                s.seen.push(Seen {
                                    partition: p.index,
                                    size,
                                    producer_id: batch.producer_id,
                                    epoch: batch.producer_epoch,
                                    base_sequence: batch.base_sequence,
                                    count: batch.records.len() as i32,
                                    compression: batch.compression,
                                    transactional: batch.is_transactional,
                                    code,
                                    offset: base,
                                });
                                (code, base)
                            }
                            Err(_) => (ErrorCode::CORRUPT_MESSAGE, -1),
                        }
                    }
                };
                parts.push(PartitionProduceResponse {
                    index: p.index,
                    error_code: code.code(),
                    base_offset: base,
                    log_append_time_ms: -1,
                    ..Default::default()
                });
            }
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: parts,
                ..Default::default()
            });
        }
        ProduceResponse {
            responses,
            ..Default::default()
        }
    }
}

/// The broker's idempotence checks, then the append. As in Kafka, a
/// producer id the partition holds no state for may start at any sequence;
/// a known one must go on from its last sequence, or start at 0 under a
/// new epoch.
pub(crate) fn append(log: &mut Log, batch: &RecordBatch) -> (ErrorCode, i64) {
    let count = batch.records.len() as i32;
    let base = log.values.len() as i64;
    if batch.producer_id >= 0 {
        let seq = batch.base_sequence;
        match log.producers.get_mut(&batch.producer_id) {
            Some(p) if p.epoch == batch.producer_epoch => {
                if let Some(&(_, offset)) = p.recent.iter().find(|(s, _)| *s == seq) {
                    return (ErrorCode::DUPLICATE_SEQUENCE_NUMBER, offset);
                }
                if seq != add_sequence(p.last_sequence, 1) {
                    return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
                }
                p.last_sequence = add_sequence(seq, count - 1);
                p.recent.push_back((seq, base));
                if p.recent.len() > 5 {
                    p.recent.pop_front();
                }
            }
            Some(p) if batch.producer_epoch < p.epoch => {
                return (ErrorCode::INVALID_PRODUCER_EPOCH, -1);
            }
            Some(_) if seq != 0 => return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
            _ => {
                log.producers.insert(
                    batch.producer_id,
                    ProducerEntry {
                        epoch: batch.producer_epoch,
                        last_sequence: add_sequence(seq, count - 1),
                        recent: VecDeque::from([(seq, base)]),
                    },
                );
            }
        }
    }
    if batch.producer_id >= 0 {
        log.last_writer = Some(batch.producer_id);
    }
    for r in &batch.records {
        log.values.push(r.value.clone().unwrap_or_default());
    }
    (ErrorCode::NONE, base)
}

/// A producer on a client connected with `config`.
pub(crate) async fn producer(config: Config) -> AsyncProducer {
    let client = Client::connect(config).await.expect("connect");
    AsyncProducer::new(client).await.expect("producer")
}
