//! A fake Kafka cluster for the consumer tests: one or more brokers on
//! loopback sharing partition logs, answering Fetch like a Kafka broker
//! (whole batches cut at the byte limits with a partial tail, fetch
//! sessions, leader checks, out-of-range and injected errors) and recording
//! every Fetch request they get.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::protocol::compression::Compression;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::frame::{decode_request, encode_response, split_frame};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::*;
use crate::protocol::messages::*;
use crate::protocol::records::{EncodeOptions, Record, RecordBatch};
/// One stored batch.
pub(super) struct Stored {
    pub(super) base: i64,
    pub(super) last: i64,
    pub(super) max_ts: i64,
    pub(super) bytes: Bytes,
}

#[derive(Default)]
pub(super) struct Log {
    pub(super) start: i64,
    pub(super) batches: Vec<Stored>,
}

impl Log {
    pub(super) fn end(&self) -> i64 {
        self.batches.last().map_or(self.start, |b| b.last + 1)
    }
}

/// One Fetch request as a broker saw it.
#[derive(Debug, Clone)]
pub(super) struct SeenFetch {
    pub(super) broker: i32,
    pub(super) session_id: i32,
    pub(super) epoch: i32,
    /// (topic, partition, fetch offset, current leader epoch)
    pub(super) partitions: Vec<(String, i32, i64, i32)>,
    pub(super) forgotten: Vec<(String, i32)>,
}

#[derive(Default)]
pub(super) struct ServerSession {
    pub(super) epoch: i32,
    pub(super) parts: HashMap<(String, i32), (i64, i32)>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) logs: HashMap<(String, i32), Log>,
    pub(super) leaders: HashMap<(String, i32), i32>,
    pub(super) ports: HashMap<i32, i32>,
    pub(super) fetch_max_version: i16,
    pub(super) sessions_enabled: bool,
    pub(super) sessions: HashMap<i32, ServerSession>,
    pub(super) next_session: i32,
    /// KIP-74: return a first batch bigger than the limit whole.
    pub(super) kip74: bool,
    pub(super) aborted: HashMap<(String, i32), Vec<AbortedTransaction>>,
    pub(super) seen: Vec<SeenFetch>,
    /// Brokers that drop every connection at its first request.
    pub(super) dead: std::collections::HashSet<i32>,
    /// Errors the next fetches of a partition get, in order.
    pub(super) errors: HashMap<(String, i32), std::collections::VecDeque<ErrorCode>>,
    pub(super) metadata_requests: usize,
}

#[derive(Clone)]
pub(super) struct Cluster {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) max_in_flight: Arc<AtomicUsize>,
    /// Notified at every append, for the long polls waiting for data.
    appended: Arc<Notify>,
}

impl Cluster {
    pub(super) async fn start(brokers: usize, topics: &[(&str, i32)]) -> Cluster {
        let cluster = Cluster {
            state: Arc::new(Mutex::new(State {
                fetch_max_version: 12,
                sessions_enabled: true,
                kip74: true,
                next_session: 1000,
                ..Default::default()
            })),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
            appended: Arc::new(Notify::new()),
        };
        {
            let mut s = cluster.state.lock().unwrap();
            for (t, n) in topics {
                for p in 0..*n {
                    s.logs.insert((t.to_string(), p), Log::default());
                    s.leaders.insert((t.to_string(), p), 1);
                }
            }
        }
        for id in 1..=brokers as i32 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = i32::from(listener.local_addr().unwrap().port());
            cluster.state.lock().unwrap().ports.insert(id, port);
            let c = cluster.clone();
            tokio::spawn(async move {
                while let Ok(stream) = crate::test_support::accept(&listener).await {
                    tokio::spawn(c.clone().serve(id, stream));
                }
            });
        }
        cluster
    }

    pub(super) fn addr(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.state.lock().unwrap().ports[&id])
    }

    pub(super) fn append(&self, topic: &str, p: i32, values: &[&str], codec: Compression) -> i64 {
        let mut s = self.state.lock().unwrap();
        let log = s.logs.get_mut(&(topic.to_string(), p)).unwrap();
        let base = log.end();
        let mut batch = RecordBatch::new(base, 1_000 + base);
        for (i, v) in values.iter().enumerate() {
            batch.records.push(
                Record::new(
                    Some(Bytes::from(format!("k{}", base + i as i64))),
                    Some(Bytes::copy_from_slice(v.as_bytes())),
                )
                .with_offset_delta(i as i32)
                .with_timestamp_delta(i as i64),
            );
        }
        Self::store(log, &batch, codec);
        drop(s);
        self.appended.notify_waiters();
        base
    }

    pub(super) fn store(log: &mut Log, batch: &RecordBatch, codec: Compression) {
        let bytes = batch
            .encode_to_vec(&EncodeOptions::compressed(codec))
            .unwrap();
        log.batches.push(Stored {
            base: batch.base_offset,
            last: batch.last_offset(),
            max_ts: batch.effective_max_timestamp(),
            bytes: Bytes::from(bytes),
        });
    }

    pub(super) fn append_batch(&self, topic: &str, p: i32, mut batch: RecordBatch) -> i64 {
        let mut s = self.state.lock().unwrap();
        let log = s.logs.get_mut(&(topic.to_string(), p)).unwrap();
        let base = log.end();
        batch.base_offset = base;
        Self::store(log, &batch, Compression::None);
        drop(s);
        self.appended.notify_waiters();
        base
    }

    pub(super) fn seen(&self) -> Vec<SeenFetch> {
        self.state.lock().unwrap().seen.clone()
    }

    pub(super) async fn serve(self, id: i32, mut stream: TcpStream) {
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
            if self.state.lock().unwrap().dead.contains(&id) {
                return;
            }
            let v = h.request_api_version;
            let cid = h.correlation_id;
            let mut out = BytesMut::new();
            let r = match body {
                RequestBody::ApiVersions(_) => {
                    let fetch_max = self.state.lock().unwrap().fetch_max_version;
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|k| ApiVersion {
                                api_key: k.code(),
                                min_version: 0,
                                max_version: if *k == ApiKey::Fetch {
                                    fetch_max
                                } else {
                                    k.versions().1
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::ApiVersions, cid, &resp, v)
                }
                RequestBody::Metadata(_) => {
                    self.state.lock().unwrap().metadata_requests += 1;
                    let resp = self.metadata();
                    encode_response(&mut out, ApiKey::Metadata, cid, &resp, v)
                }
                RequestBody::ListOffsets(req) => {
                    let resp = self.list_offsets(&req);
                    encode_response(&mut out, ApiKey::ListOffsets, cid, &resp, v)
                }
                RequestBody::Fetch(req) => {
                    let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    self.max_in_flight.fetch_max(n, Ordering::SeqCst);
                    let resp = self.fetch(id, &req).await;
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                    encode_response(&mut out, ApiKey::Fetch, cid, &resp, v)
                }
                other => panic!("the fake broker does not handle {:?}", other.api_key()),
            };
            r.expect("fake encodes");
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    pub(super) fn metadata(&self) -> MetadataResponse {
        let s = self.state.lock().unwrap();
        let mut topics: HashMap<String, Vec<MetadataResponsePartition>> = HashMap::new();
        for ((t, p), leader) in &s.leaders {
            topics
                .entry(t.clone())
                .or_default()
                .push(MetadataResponsePartition {
                    partition_index: *p,
                    leader_id: *leader,
                    leader_epoch: 3,
                    replica_nodes: s.ports.keys().copied().collect(),
                    isr_nodes: s.ports.keys().copied().collect(),
                    ..Default::default()
                });
        }
        MetadataResponse {
            brokers: s
                .ports
                .iter()
                .map(|(id, port)| MetadataResponseBroker {
                    node_id: *id,
                    host: "127.0.0.1".into(),
                    port: *port,
                    ..Default::default()
                })
                .collect(),
            controller_id: 1,
            topics: topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    MetadataResponseTopic {
                        name: Some(name),
                        partitions,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    }

    pub(super) fn list_offsets(&self, req: &ListOffsetsRequest) -> ListOffsetsResponse {
        let s = self.state.lock().unwrap();
        ListOffsetsResponse {
            topics: req
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let log = &s.logs[&(t.name.clone(), p.partition_index)];
                            let offset = match p.timestamp {
                                -2 => log.start,
                                -1 => log.end(),
                                ts => log
                                    .batches
                                    .iter()
                                    .find(|b| b.max_ts >= ts)
                                    .map_or(-1, |b| b.base + (ts - (1_000 + b.base)).max(0)),
                            };
                            ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                offset,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Answers a Fetch as a broker does: at once when there is data (or
    /// an error), else when data is appended or `max_wait_ms` has passed.
    pub(super) async fn fetch(&self, broker: i32, req: &FetchRequest) -> FetchResponse {
        let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
        loop {
            let appended = self.appended.notified();
            let mut appended = std::pin::pin!(appended);
            appended.as_mut().enable();
            let last = Instant::now() >= deadline;
            let (resp, has_data) = self.fetch_once(broker, req, last);
            if let Some(resp) = resp {
                if has_data || last {
                    return resp;
                }
            }
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// One attempt at answering; `record`: this is the answer sent, note
    /// the request and update the session.
    pub(super) fn fetch_once(
        &self,
        broker: i32,
        req: &FetchRequest,
        last: bool,
    ) -> (Option<FetchResponse>, bool) {
        let mut s = self.state.lock().unwrap();
        // Which partitions this request covers, and at which offsets.
        let mut parts: Vec<((String, i32), (i64, i32))> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        (t.topic.clone(), p.partition),
                        (p.fetch_offset, p.partition_max_bytes),
                    )
                })
            })
            .collect();
        let mut session_id = 0;
        if req.session_id != 0 && req.session_epoch == -1 {
            // The client closes its session.
            s.sessions.remove(&req.session_id);
            s.seen.push(SeenFetch {
                broker,
                session_id: req.session_id,
                epoch: -1,
                partitions: Vec::new(),
                forgotten: Vec::new(),
            });
            return (Some(FetchResponse::default()), true);
        }
        if s.sessions_enabled && req.session_id != 0 {
            let Some(sess) = s.sessions.get(&req.session_id) else {
                return (
                    Some(session_error(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)),
                    true,
                );
            };
            if sess.epoch != req.session_epoch {
                return (
                    Some(session_error(ErrorCode::INVALID_FETCH_SESSION_EPOCH)),
                    true,
                );
            }
            let mut all = sess.parts.clone();
            for f in &req.forgotten_topics_data {
                for p in &f.partitions {
                    all.remove(&(f.topic.clone(), *p));
                }
            }
            for (k, v) in &parts {
                all.insert(k.clone(), *v);
            }
            parts = all.into_iter().collect();
            parts.sort();
            session_id = req.session_id;
        }
        let mut has_data = false;
        let mut responses: Vec<FetchableTopicResponse> = Vec::new();
        let mut room = req.max_bytes.max(0) as usize;
        let mut first = true;
        for ((topic, p), (offset, max_bytes)) in &parts {
            let key = (topic.clone(), *p);
            let mut pd = PartitionData {
                partition_index: *p,
                ..Default::default()
            };
            let leader = s.leaders.get(&key).copied();
            let injected = s.errors.get_mut(&key).and_then(|q| q.pop_front());
            match (leader, s.logs.get(&key)) {
                _ if injected.is_some() => {
                    pd.error_code = injected.unwrap_or_default().code();
                    has_data = true;
                }
                (Some(l), Some(log)) if l == broker => {
                    pd.high_watermark = log.end();
                    pd.last_stable_offset = log.end();
                    pd.log_start_offset = log.start;
                    if *offset < log.start || *offset > log.end() {
                        pd.error_code = ErrorCode::OFFSET_OUT_OF_RANGE.code();
                        has_data = true;
                    } else {
                        let limit = (*max_bytes as usize).min(room);
                        let mut data = Vec::new();
                        for b in log.batches.iter().filter(|b| b.last >= *offset) {
                            let fits = data.len() + b.bytes.len() <= limit;
                            if fits || (first && data.is_empty() && s.kip74) {
                                data.extend_from_slice(&b.bytes);
                            } else {
                                // A broker cuts the data at the limit.
                                let n = limit.saturating_sub(data.len()).min(b.bytes.len());
                                data.extend_from_slice(&b.bytes[..n]);
                                break;
                            }
                        }
                        if !data.is_empty() {
                            has_data = true;
                            first = false;
                            room = room.saturating_sub(data.len());
                        }
                        pd.aborted_transactions = s.aborted.get(&key).cloned();
                        pd.records = Some(Bytes::from(data));
                    }
                }
                (Some(_), Some(_)) => {
                    pd.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
                    has_data = true;
                }
                _ => {
                    pd.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
                    has_data = true;
                }
            }
            // An incremental answer leaves out partitions with nothing new.
            let quiet = pd.error_code == 0 && pd.records.as_ref().is_none_or(|r| r.is_empty());
            if session_id != 0 && quiet {
                continue;
            }
            match responses.iter_mut().find(|t| t.topic == *topic) {
                Some(t) => t.partitions.push(pd),
                None => responses.push(FetchableTopicResponse {
                    topic: topic.clone(),
                    partitions: vec![pd],
                    ..Default::default()
                }),
            }
        }
        if !has_data && !last {
            return (None, false);
        }
        // This answer goes out: record the request, advance the session.
        s.seen.push(SeenFetch {
            broker,
            session_id: req.session_id,
            epoch: req.session_epoch,
            partitions: req
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.topic.clone(),
                            p.partition,
                            p.fetch_offset,
                            p.current_leader_epoch,
                        )
                    })
                })
                .collect(),
            forgotten: req
                .forgotten_topics_data
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
                .collect(),
        });
        if s.sessions_enabled {
            if req.session_id == 0 && req.session_epoch == 0 {
                s.next_session += 1;
                session_id = s.next_session;
                s.sessions.insert(
                    session_id,
                    ServerSession {
                        epoch: 1,
                        parts: parts.iter().cloned().collect(),
                    },
                );
            } else if let Some(sess) = s.sessions.get_mut(&req.session_id) {
                sess.epoch += 1;
                sess.parts = parts.iter().cloned().collect();
            }
        }
        let resp = FetchResponse {
            session_id,
            responses,
            ..Default::default()
        };
        (Some(resp), has_data)
    }
}

pub(super) fn session_error(code: ErrorCode) -> FetchResponse {
    FetchResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
