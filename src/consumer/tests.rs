//! Consumer tests against an in-process fake cluster on loopback: one or
//! more fake brokers sharing partition logs, answering Fetch like a Kafka
//! broker (whole batches cut at the byte limits with a partial tail, fetch
//! sessions, leader checks, out-of-range errors) and recording every Fetch
//! request they get.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::config::Config;
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
use crate::protocol::records::{ControlRecord, EncodeOptions, Record, RecordBatch};

/// One stored batch.
struct Stored {
    base: i64,
    last: i64,
    max_ts: i64,
    bytes: Bytes,
}

#[derive(Default)]
struct Log {
    start: i64,
    batches: Vec<Stored>,
}

impl Log {
    fn end(&self) -> i64 {
        self.batches.last().map_or(self.start, |b| b.last + 1)
    }
}

/// One Fetch request as a broker saw it.
#[derive(Debug, Clone)]
struct SeenFetch {
    broker: i32,
    session_id: i32,
    epoch: i32,
    partitions: Vec<(String, i32, i64)>,
    forgotten: Vec<(String, i32)>,
}

#[derive(Default)]
struct ServerSession {
    epoch: i32,
    parts: HashMap<(String, i32), (i64, i32)>,
}

#[derive(Default)]
struct State {
    logs: HashMap<(String, i32), Log>,
    leaders: HashMap<(String, i32), i32>,
    ports: HashMap<i32, i32>,
    fetch_max_version: i16,
    sessions_enabled: bool,
    sessions: HashMap<i32, ServerSession>,
    next_session: i32,
    /// KIP-74: return a first batch bigger than the limit whole.
    kip74: bool,
    aborted: HashMap<(String, i32), Vec<AbortedTransaction>>,
    seen: Vec<SeenFetch>,
}

#[derive(Clone)]
struct Cluster {
    state: Arc<Mutex<State>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Cluster {
    async fn start(brokers: usize, topics: &[(&str, i32)]) -> Cluster {
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
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(c.clone().serve(id, stream));
                }
            });
        }
        cluster
    }

    fn addr(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.state.lock().unwrap().ports[&id])
    }

    fn append(&self, topic: &str, p: i32, values: &[&str], codec: Compression) -> i64 {
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
        base
    }

    fn store(log: &mut Log, batch: &RecordBatch, codec: Compression) {
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

    fn append_batch(&self, topic: &str, p: i32, mut batch: RecordBatch) -> i64 {
        let mut s = self.state.lock().unwrap();
        let log = s.logs.get_mut(&(topic.to_string(), p)).unwrap();
        let base = log.end();
        batch.base_offset = base;
        Self::store(log, &batch, Compression::None);
        base
    }

    fn seen(&self) -> Vec<SeenFetch> {
        self.state.lock().unwrap().seen.clone()
    }

    async fn serve(self, id: i32, mut stream: TcpStream) {
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

    fn metadata(&self) -> MetadataResponse {
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

    fn list_offsets(&self, req: &ListOffsetsRequest) -> ListOffsetsResponse {
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

    async fn fetch(&self, broker: i32, req: &FetchRequest) -> FetchResponse {
        let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
        loop {
            let (resp, has_data) = self.fetch_once(broker, req, Instant::now() >= deadline);
            if let Some(resp) = resp {
                if has_data || Instant::now() >= deadline {
                    return resp;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One attempt at answering; `record`: this is the answer sent, note
    /// the request and update the session.
    fn fetch_once(
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
            match (leader, s.logs.get(&key)) {
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
                    t.partitions
                        .iter()
                        .map(|p| (t.topic.clone(), p.partition, p.fetch_offset))
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

fn session_error(code: ErrorCode) -> FetchResponse {
    FetchResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

fn config(cluster: &Cluster) -> Config {
    let mut c = Config::default();
    c.net.bootstrap_servers = vec![cluster.addr(1)];
    c.net.request_timeout = Duration::from_secs(5);
    c.metadata.refresh_interval = None;
    c.metadata.retry_backoff = Duration::from_millis(20);
    c.consumer.fetch_max_wait = Duration::from_millis(50);
    c
}

async fn consumer_with(
    cluster: &Cluster,
    f: impl FnOnce(&mut Config, &mut ConsumerOptions),
) -> Consumer {
    let mut c = config(cluster);
    let client0 = Client::connect(c.clone()).await.unwrap();
    let mut options = ConsumerOptions::for_client(&client0);
    client0.close().await;
    f(&mut c, &mut options);
    let client = Client::connect(c).await.unwrap();
    Consumer::with_options(client, options)
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

async fn take(pc: &mut PartitionConsumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(pc.recv().await.expect("open").expect("record"));
    }
    out
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

#[tokio::test]
async fn each_start_offset_kind_and_skipping_inside_the_first_batch() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        cluster.append("t", 0, &["a", "b", "c"], Compression::None);
        cluster.append("t", 0, &["d", "e"], Compression::Lz4);
        let consumer = consumer_with(&cluster, |_, _| {}).await;

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 5).await;
        assert_eq!(values(&got), ["a", "b", "c", "d", "e"]);
        assert_eq!(offsets(&got), [0, 1, 2, 3, 4]);
        assert_eq!(got[1].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(got[4].timestamp, 1_000 + 3 + 1);
        assert_eq!(pc.high_water_mark(), 5);
        let again = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await;
        assert!(again.is_err(), "one partition consumer per partition");
        pc.close().await;

        // Offset 4 is inside the compressed second batch: 3 is skipped.
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(4))
            .await
            .unwrap();
        let b = pc.recv_batch().await.unwrap().unwrap();
        assert_eq!(offsets(&b.records), [4]);
        assert_eq!(b.high_water_mark, 5);
        drop(pc);

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Timestamp(1_004))
            .await
            .unwrap();
        assert_eq!(pc.recv().await.unwrap().unwrap().offset, 4);
        drop(pc);

        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Newest)
            .await
            .unwrap();
        cluster.append("t", 0, &["f"], Compression::Zstd);
        let r = pc.recv().await.unwrap().unwrap();
        assert_eq!((r.offset, values(&[r])[0].as_str()), (5, "f"));
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn fetch_sessions_go_full_then_incremental_and_reset_on_session_errors() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 2)]).await;
        cluster.append("t", 0, &["a"], Compression::None);
        cluster.append("t", 1, &["b"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        consumer.pause_all();
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        consumer.resume_all();
        take(&mut p0, 1).await;
        take(&mut p1, 1).await;
        cluster.append("t", 0, &["c"], Compression::None);
        take(&mut p0, 1).await;
        cluster.append("t", 0, &["c2"], Compression::None);
        take(&mut p0, 1).await;
        let seen = cluster.seen();
        let first = &seen[0];
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(first.partitions.len(), 2, "{seen:?}");
        let session = seen[1].session_id;
        assert!(session > 0, "{seen:?}");
        // Later requests are incremental: same session, epochs counting up,
        // and only the partitions whose offset moved.
        for (i, f) in seen.iter().enumerate().skip(1) {
            assert_eq!((f.session_id, f.epoch), (session, i as i32), "{seen:?}");
        }
        assert!(
            seen.iter().skip(1).any(|f| f.partitions.len() < 2),
            "no incremental request left an unchanged partition out: {seen:?}"
        );
        // A paused partition is forgotten from the session.
        p1.pause();
        // (The request in flight when pausing may still list it.)
        for v in ["c3", "c4"] {
            cluster.append("t", 0, &[v], Compression::None);
            take(&mut p0, 1).await;
        }
        assert!(
            cluster
                .seen()
                .iter()
                .any(|f| f.session_id == session && f.forgotten == [("t".to_string(), 1)]),
            "{:?}",
            cluster.seen()
        );
        p1.resume();
        // The broker forgets the session: the consumer starts over.
        cluster.state.lock().unwrap().sessions.clear();
        cluster.append("t", 1, &["d"], Compression::None);
        let got = take(&mut p1, 1).await;
        assert_eq!(values(&got), ["d"]);
        let seen = cluster.seen();
        let reset = seen
            .iter()
            .rposition(|f| f.session_id == 0)
            .expect("a new full fetch");
        assert!(reset > 0);
        assert_eq!(seen[reset].epoch, 0);
        assert_eq!(seen[reset].partitions.len(), 2, "{seen:?}");
        // Wrong epochs reset too.
        let next_session = {
            let mut s = cluster.state.lock().unwrap();
            for sess in s.sessions.values_mut() {
                sess.epoch += 100;
            }
            s.next_session
        };
        cluster.append("t", 0, &["e"], Compression::None);
        assert_eq!(values(&take(&mut p0, 1).await), ["e"]);
        assert!(cluster.state.lock().unwrap().next_session > next_session);
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn without_sessions_every_fetch_is_full() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 2)]).await;
        cluster.state.lock().unwrap().fetch_max_version = 6;
        cluster.append("t", 0, &["a", "b"], Compression::Gzip);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let _p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut p0, 2).await), ["a", "b"]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        for f in cluster.seen().iter().skip(2) {
            assert_eq!(f.partitions.len(), 2, "a v6 fetch lists every partition");
        }
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn out_of_range_offsets_follow_the_reset_policy() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        cluster.append("t", 0, &["a", "b"], Compression::None);
        cluster
            .state
            .lock()
            .unwrap()
            .logs
            .get_mut(&("t".into(), 0))
            .unwrap()
            .start = 0;

        let consumer =
            consumer_with(&cluster, |_, o| o.offset_reset = OffsetResetPolicy::Oldest).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        assert_eq!(pc.recv().await.unwrap().unwrap().offset, 0);
        consumer.close().await;

        let consumer =
            consumer_with(&cluster, |_, o| o.offset_reset = OffsetResetPolicy::Newest).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        cluster.append("t", 0, &["c"], Compression::None);
        let r = pc.recv().await.unwrap().unwrap();
        assert_eq!((r.offset, values(&[r])[0].as_str()), (2, "c"));
        consumer.close().await;

        // auto.offset.reset=none maps to the error policy.
        let consumer = consumer_with(&cluster, |c, o| {
            c.consumer.auto_offset_reset = crate::config::OffsetReset::None;
            o.offset_reset = c.consumer.auto_offset_reset.into();
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        let e = pc.recv().await.unwrap().unwrap_err();
        assert_eq!(e.kafka_code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
        assert!(pc.recv().await.is_none(), "the stream ends after the error");
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_partition_follows_its_leader_to_another_broker() {
    bounded(async {
        let cluster = Cluster::start(2, &[("t", 2)]).await;
        cluster.append("t", 0, &["a", "b"], Compression::None);
        cluster.append("t", 1, &["x"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut p0, 2).await), ["a", "b"]);
        assert_eq!(values(&take(&mut p1, 1).await), ["x"]);
        // Partition 0 moves to broker 2; broker 1 now says NOT_LEADER.
        cluster
            .state
            .lock()
            .unwrap()
            .leaders
            .insert(("t".into(), 0), 2);
        cluster.append("t", 0, &["c", "d"], Compression::Snappy);
        cluster.append("t", 1, &["y"], Compression::None);
        let got = take(&mut p0, 2).await;
        assert_eq!(values(&got), ["c", "d"]);
        assert_eq!(offsets(&got), [2, 3]);
        assert_eq!(values(&take(&mut p1, 1).await), ["y"]);
        let seen = cluster.seen();
        assert!(
            seen.iter()
                .any(|f| f.broker == 2 && f.partitions.iter().any(|p| p.1 == 0 && p.2 == 2)),
            "partition 0 was fetched from broker 2 at offset 2: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|f| f.broker != 2 || f.partitions.iter().all(|p| p.1 == 0)),
            "partition 1 stayed on broker 1"
        );
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn paused_partitions_are_not_fetched_until_resumed() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 2)]).await;
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut p0 = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let mut p1 = consumer
            .consume_partition("t", 1, StartOffset::Oldest)
            .await
            .unwrap();
        p0.pause();
        assert!(p0.is_paused());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = cluster.seen().len();
        cluster.append("t", 0, &["a"], Compression::None);
        cluster.append("t", 1, &["b"], Compression::None);
        assert_eq!(values(&take(&mut p1, 1).await), ["b"]);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), p0.recv())
                .await
                .is_err(),
            "a paused partition delivered a record"
        );
        for f in &cluster.seen()[before..] {
            assert!(
                f.partitions.iter().all(|p| p.1 != 0),
                "paused partition fetched: {f:?}"
            );
        }
        p0.resume();
        assert_eq!(values(&take(&mut p0, 1).await), ["a"]);
        // pause_all stops every partition.
        consumer.pause_all();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = cluster.seen().len();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            cluster.seen().len(),
            n,
            "fetches while everything is paused"
        );
        consumer.resume_all();
        cluster.append("t", 1, &["c"], Compression::None);
        assert_eq!(values(&take(&mut p1, 1).await), ["c"]);
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_full_prefetch_buffer_stops_fetching_that_partition() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        for i in 0..20 {
            cluster.append("t", 0, &[&format!("v{i}")], Compression::None);
        }
        let one_batch = cluster.state.lock().unwrap().logs[&("t".into(), 0)].batches[0]
            .bytes
            .len();
        let consumer = consumer_with(&cluster, |c, o| {
            c.consumer.max_partition_fetch_bytes = one_batch as u32;
            o.prefetch_chunks = 1;
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One chunk in the buffer, and at most one more held by the fetcher.
        let fetched = cluster.seen().len();
        assert!(fetched <= 2, "{fetched} fetches with nobody reading");
        let got = take(&mut pc, 20).await;
        assert_eq!(offsets(&got), (0..20).collect::<Vec<_>>());
        assert!(cluster.seen().len() >= 10);
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn truncated_tails_and_batches_bigger_than_the_limit() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        cluster.append("t", 0, &["small"], Compression::None);
        let big = "x".repeat(5000);
        cluster.append("t", 0, &[&big, &big], Compression::None);
        cluster.append("t", 0, &["after"], Compression::None);
        // Before KIP-74 a broker cuts even the first batch.
        cluster.state.lock().unwrap().kip74 = false;
        let consumer =
            consumer_with(&cluster, |c, _| c.consumer.max_partition_fetch_bytes = 1000).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 4).await;
        assert_eq!(offsets(&got), [0, 1, 2, 3]);
        assert_eq!(got[1].value.as_ref().unwrap().len(), 5000);
        // The first fetch came back with a partial tail after "small"; the
        // limit was raised to fetch the big batch whole.
        let seen = cluster.seen();
        assert!(seen.iter().any(|f| f.partitions.iter().any(|p| p.2 == 1)));
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn control_records_are_hidden_and_read_committed_drops_aborted_data() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        let txn = |pid: i64, v: &'static str| {
            let mut b = RecordBatch::new(0, 0);
            b.is_transactional = true;
            b.producer_id = pid;
            b.records
                .push(Record::new(None, Some(Bytes::from_static(v.as_bytes()))));
            b
        };
        cluster.append_batch("t", 0, txn(7, "aborted"));
        cluster.append_batch(
            "t",
            0,
            ControlRecord::end_transaction(false, 0).to_batch(0, 0, 7, 0),
        );
        cluster.append_batch("t", 0, txn(8, "committed"));
        cluster.append_batch(
            "t",
            0,
            ControlRecord::end_transaction(true, 0).to_batch(0, 0, 8, 0),
        );
        cluster.append("t", 0, &["plain"], Compression::None);
        cluster.state.lock().unwrap().aborted.insert(
            ("t".into(), 0),
            vec![AbortedTransaction {
                producer_id: 7,
                first_offset: 0,
                ..Default::default()
            }],
        );
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 3).await;
        assert_eq!(values(&got), ["aborted", "committed", "plain"]);
        assert_eq!(offsets(&got), [0, 2, 4]);
        consumer.close().await;

        let consumer = consumer_with(&cluster, |c, _| {
            c.consumer.isolation_level = crate::config::IsolationLevel::ReadCommitted;
        })
        .await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let got = take(&mut pc, 2).await;
        assert_eq!(values(&got), ["committed", "plain"]);
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn one_fetch_per_broker_covers_all_its_partitions() {
    bounded(async {
        let cluster = Cluster::start(1, &[("a", 4), ("b", 4)]).await;
        for t in ["a", "b"] {
            for p in 0..4 {
                cluster.append(t, p, &[&format!("{t}{p}")], Compression::None);
            }
        }
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        consumer.pause_all();
        let mut pcs = Vec::new();
        for t in ["a", "b"] {
            for p in 0..4 {
                pcs.push(
                    consumer
                        .consume_partition(t, p, StartOffset::Oldest)
                        .await
                        .unwrap(),
                );
            }
        }
        consumer.resume_all();
        for pc in &mut pcs {
            let r = pc.recv().await.unwrap().unwrap();
            assert_eq!(
                values(std::slice::from_ref(&r))[0],
                format!("{}{}", r.topic, r.partition)
            );
        }
        let seen = cluster.seen();
        assert_eq!(
            seen[0].partitions.len(),
            8,
            "the first fetch covers all 8: {seen:?}"
        );
        assert_eq!(
            cluster.max_in_flight.load(Ordering::SeqCst),
            1,
            "one Fetch at a time per broker"
        );
        consumer.close().await;
    })
    .await;
}

#[tokio::test]
async fn closing_ends_the_streams_and_the_fetchers() {
    bounded(async {
        let cluster = Cluster::start(1, &[("t", 1)]).await;
        cluster.append("t", 0, &["a"], Compression::None);
        let consumer = consumer_with(&cluster, |_, _| {}).await;
        let mut pc = consumer
            .consume_partition("t", 0, StartOffset::Oldest)
            .await
            .unwrap();
        assert_eq!(values(&take(&mut pc, 1).await), ["a"]);
        let c2 = consumer.clone();
        consumer.close().await;
        assert!(pc.recv().await.is_none());
        assert!(
            c2.consume_partition("t", 0, StartOffset::Oldest)
                .await
                .is_err()
        );
    })
    .await;
}

#[test]
fn walk_finds_complete_entries_and_the_partial_size() {
    let mut b = RecordBatch::new(10, 0);
    for i in 0..3 {
        b.records
            .push(Record::new(None, Some(Bytes::from_static(b"v"))).with_offset_delta(i));
    }
    let one = b.encode_to_vec(&EncodeOptions::default()).unwrap();
    let mut data = one.clone();
    data.extend_from_slice(&one[..20]);
    let w = fetcher::walk(&data).unwrap();
    assert_eq!(w.complete, one.len());
    assert_eq!(w.next_offset, 13);
    assert_eq!(w.partial_size, Some(one.len()));
    let w = fetcher::walk(&data[..5]).unwrap();
    assert_eq!((w.complete, w.partial_size), (0, None));
    let mut bad = one.clone();
    bad[16] = 9;
    assert!(fetcher::walk(&bad).is_err());
    bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(fetcher::walk(&bad).is_err());
}
