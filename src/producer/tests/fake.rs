//! A scripted in-process broker for producer fault tests: one node, one
//! topic, a log per partition with the broker's idempotence checks
//! (duplicates, out-of-order sequences, epochs), and faults to inject into
//! the next Produce requests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::protocol::error_codes::ErrorCode;
use crate::protocol::frame::{decode_request, encode_response, split_frame};
use crate::protocol::messages::api_versions_response::ApiVersion;
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
}

/// One partition's log and producer state.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub values: Vec<Bytes>,
    /// (producer id, epoch, last sequence written)
    producer: Option<(i64, i16, i32)>,
    /// (base sequence, base offset) of recent batches, for duplicates.
    recent: VecDeque<(i32, i64)>,
}

#[derive(Debug, Default)]
pub(crate) struct FakeState {
    pub logs: HashMap<i32, Log>,
    pub faults: VecDeque<Fault>,
    /// (producer id, epoch) of every InitProducerId request.
    pub init_requests: Vec<(i64, i16)>,
    pub produce_requests: usize,
    /// Answer epoch bumps with UNKNOWN_SERVER_ERROR, as tansu 0.6 does.
    pub refuse_bumps: bool,
    /// Partition 1's leader is broker 2 at this port (a peer that never
    /// answers), when set.
    pub silent_leader_port: Option<i32>,
    /// The metadata also lists broker 0 at this port (nothing listens
    /// there: a broker that is down), leading nothing, when set.
    pub down_broker_port: Option<i32>,
    next_producer_id: i64,
    epoch: i16,
}

#[derive(Clone)]
pub(crate) struct FakeBroker {
    pub addr: String,
    port: i32,
    partitions: i32,
    topic: String,
    pub state: Arc<Mutex<FakeState>>,
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
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
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

    /// The values written to a partition, in offset order.
    pub(crate) fn values(&self, partition: i32) -> Vec<Bytes> {
        self.lock()
            .logs
            .get(&partition)
            .map(|l| l.values.clone())
            .unwrap_or_default()
    }

    async fn serve(self, mut stream: TcpStream) {
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 1 << 24) {
                Ok(Some(f)) => f,
                Ok(None) => match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
                Err(_) => return,
            };
            let Ok((h, body)) = decode_request(frame.freeze()) else {
                return;
            };
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
                    let mut s = self.lock();
                    s.init_requests.push((req.producer_id, req.producer_epoch));
                    let refused = req.producer_id >= 0 && s.refuse_bumps;
                    let (pid, epoch) = if refused {
                        (-1, -1)
                    } else if req.producer_id >= 0 {
                        s.epoch += 1;
                        (req.producer_id, s.epoch)
                    } else {
                        s.next_producer_id += 1;
                        s.epoch = 0;
                        (s.next_producer_id, 0)
                    };
                    drop(s);
                    let resp = InitProducerIdResponse {
                        error_code: if refused {
                            ErrorCode::UNKNOWN_SERVER_ERROR.code()
                        } else {
                            0
                        },
                        producer_id: pid,
                        producer_epoch: epoch,
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::InitProducerId, id, &resp, v)
                }
                RequestBody::Produce(req) => {
                    let fault = {
                        let mut s = self.lock();
                        s.produce_requests += 1;
                        s.faults.pop_front()
                    };
                    match fault {
                        Some(Fault::Drop) => return,
                        Some(Fault::WriteThenDrop) => {
                            self.produce(&req, None);
                            return;
                        }
                        Some(Fault::Code(code)) => {
                            let resp = self.produce(&req, Some(code));
                            encode_response(&mut out, ApiKey::Produce, id, &resp, v)
                        }
                        None => {
                            let resp = self.produce(&req, None);
                            encode_response(&mut out, ApiKey::Produce, id, &resp, v)
                        }
                    }
                }
                _ => return,
            };
            if r.is_err() || stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    fn metadata(&self) -> MetadataResponse {
        let (silent, down) = {
            let s = self.lock();
            (s.silent_leader_port, s.down_broker_port)
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
                partitions: (0..self.partitions)
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
        let mut responses = Vec::new();
        for t in &req.topic_data {
            let mut parts = Vec::new();
            for p in &t.partition_data {
                let (code, base) = match fail {
                    Some(code) => (code, -1),
                    None => {
                        let mut bytes = p.records.clone().unwrap_or_default();
                        match RecordBatch::decode(&mut bytes, &DecodeOptions::default()) {
                            Ok(batch) => append(s.logs.entry(p.index).or_default(), &batch),
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

/// The broker's idempotence checks, then the append.
fn append(log: &mut Log, batch: &RecordBatch) -> (ErrorCode, i64) {
    let count = batch.records.len() as i32;
    if batch.producer_id >= 0 {
        let seq = batch.base_sequence;
        match log.producer {
            Some((pid, epoch, last))
                if pid == batch.producer_id && epoch == batch.producer_epoch =>
            {
                if let Some(&(_, offset)) = log.recent.iter().find(|(s, _)| *s == seq) {
                    return (ErrorCode::DUPLICATE_SEQUENCE_NUMBER, offset);
                }
                if seq != last.wrapping_add(1) {
                    return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
                }
            }
            Some((pid, epoch, _)) if pid == batch.producer_id && batch.producer_epoch < epoch => {
                return (ErrorCode::INVALID_PRODUCER_EPOCH, -1);
            }
            _ => {
                if seq != 0 {
                    return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
                }
                // A new producer or epoch: its sequence starts afresh.
                log.recent.clear();
            }
        }
        log.producer = Some((batch.producer_id, batch.producer_epoch, seq + count - 1));
    }
    let base = log.values.len() as i64;
    log.recent.push_back((batch.base_sequence, base));
    if log.recent.len() > 5 {
        log.recent.pop_front();
    }
    for r in &batch.records {
        log.values.push(r.value.clone().unwrap_or_default());
    }
    (ErrorCode::NONE, base)
}
