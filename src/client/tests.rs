//! Client tests against an in-process fake broker on loopback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::protocol::codec::Message;
use crate::protocol::error::DecodeError;
use crate::protocol::frame::{decode_request, encode_response, split_frame};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::*;
use crate::protocol::messages::*;
use crate::test_support::trace::Capture;
use crate::test_support::{bounded, eventually};

#[derive(Default)]
struct FakeState {
    /// topic -> (partition -> leader)
    topics: HashMap<String, Vec<i32>>,
    metadata_delay: Duration,
    /// Metadata answers at this version or above get a stray trailing byte
    /// (as librdkafka 2.16's mock cluster sends for v9+).
    metadata_trailing_byte_from: Option<i16>,
    /// The version of every Metadata request.
    metadata_versions: Vec<i16>,
    /// The client id of every request, in order.
    client_ids: Vec<Option<String>>,
    /// The highest ListOffsets version advertised (klamm's when `None`).
    list_offsets_max_version: Option<i16>,
    /// ListOffsets answers by the requested timestamp: (offset, timestamp,
    /// leader epoch). Timestamps not listed get offset 0 for -2 and 42
    /// otherwise, timestamp and epoch -1.
    list_offsets_answers: HashMap<i64, (i64, i64, i32)>,
    /// (version, timestamp) of every ListOffsets partition asked for.
    list_offsets_requests: Vec<(i16, i64)>,
    /// ListOffsets partitions to answer with NOT_LEADER_OR_FOLLOWER first
    /// (as a leader that has just lost its leadership does).
    list_offsets_failures: usize,
    /// Metadata answers (v13+) to give REBOOTSTRAP_REQUIRED first.
    rebootstrap_answers: usize,
    /// Connections accepted.
    connections: usize,
}

#[derive(Clone)]
struct Fake {
    addr: String,
    port: i32,
    state: Arc<Mutex<FakeState>>,
    metadata_requests: Arc<AtomicUsize>,
    find_coordinator_keys: Arc<Mutex<Vec<Vec<String>>>>,
    /// While set, the broker is "down": it drops every connection and
    /// answers nothing.
    dead: Arc<std::sync::atomic::AtomicBool>,
    /// FindCoordinator answers to fail with COORDINATOR_NOT_AVAILABLE first.
    coordinator_failures: Arc<AtomicUsize>,
}

impl Fake {
    async fn start(topics: &[(&str, usize)]) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = i32::from(listener.local_addr().expect("addr").port());
        let fake = Fake {
            addr: format!("127.0.0.1:{port}"),
            port,
            state: Arc::new(Mutex::new(FakeState {
                topics: topics
                    .iter()
                    .map(|(t, n)| (t.to_string(), vec![1; *n]))
                    .collect(),
                ..Default::default()
            })),
            metadata_requests: Arc::new(AtomicUsize::new(0)),
            find_coordinator_keys: Arc::new(Mutex::new(Vec::new())),
            dead: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            coordinator_failures: Arc::new(AtomicUsize::new(0)),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok(stream) = crate::test_support::accept(&listener).await {
                if f.dead.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                f.state.lock().unwrap().connections += 1;
                tokio::spawn(f.clone().serve(stream));
            }
        });
        fake
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
            if self.dead.load(Ordering::SeqCst) {
                return; // killed mid-request: the connection drops unanswered
            }
            self.state
                .lock()
                .unwrap()
                .client_ids
                .push(h.client_id.clone());
            let v = h.request_api_version;
            let mut out = BytesMut::new();
            let id = h.correlation_id;
            let ok = match body {
                RequestBody::ApiVersions(_) => {
                    let list_offsets_max = self.state.lock().unwrap().list_offsets_max_version;
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|k| ApiVersion {
                                api_key: k.code(),
                                min_version: 0,
                                max_version: match (k, list_offsets_max) {
                                    (ApiKey::ListOffsets, Some(max)) => max,
                                    _ => k.versions().1,
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::ApiVersions, id, &resp, v)
                }
                RequestBody::Metadata(req) => {
                    self.metadata_requests.fetch_add(1, Ordering::SeqCst);
                    let delay = self.state.lock().unwrap().metadata_delay;
                    tokio::time::sleep(delay).await;
                    let mut resp = self.metadata(&req);
                    {
                        let mut state = self.state.lock().unwrap();
                        if v >= 13 && state.rebootstrap_answers > 0 {
                            state.rebootstrap_answers -= 1;
                            resp.error_code = ErrorCode::REBOOTSTRAP_REQUIRED.code();
                        }
                    }
                    let r = encode_response(&mut out, ApiKey::Metadata, id, &resp, v);
                    let mut state = self.state.lock().unwrap();
                    state.metadata_versions.push(v);
                    if state
                        .metadata_trailing_byte_from
                        .is_some_and(|from| v >= from)
                    {
                        out.extend_from_slice(&[0]);
                        let size = i32::from_be_bytes(out[..4].try_into().unwrap()) + 1;
                        out[..4].copy_from_slice(&size.to_be_bytes());
                    }
                    r
                }
                RequestBody::FindCoordinator(req) => {
                    let keys = if v >= 4 {
                        req.coordinator_keys.clone()
                    } else {
                        vec![req.key.clone()]
                    };
                    self.find_coordinator_keys
                        .lock()
                        .unwrap()
                        .push(keys.clone());
                    let old = v < 4;
                    let failing = self
                        .coordinator_failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let error_code = if failing {
                        ErrorCode::COORDINATOR_NOT_AVAILABLE.code()
                    } else {
                        0
                    };
                    let resp = FindCoordinatorResponse {
                        error_code: if old { error_code } else { 0 },
                        node_id: if old { 1 } else { 0 },
                        host: if old {
                            "127.0.0.1".into()
                        } else {
                            String::new()
                        },
                        port: if old { self.port } else { 0 },
                        coordinators: if v >= 4 {
                            keys.iter()
                                .map(|k| Coordinator {
                                    key: k.clone(),
                                    error_code,
                                    node_id: 1,
                                    host: "127.0.0.1".into(),
                                    port: self.port,
                                    ..Default::default()
                                })
                                .collect()
                        } else {
                            vec![]
                        },
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::FindCoordinator, id, &resp, v)
                }
                RequestBody::ListOffsets(req) => {
                    let mut state = self.state.lock().unwrap();
                    let resp = ListOffsetsResponse {
                        topics: req
                            .topics
                            .iter()
                            .map(|t| ListOffsetsTopicResponse {
                                name: t.name.clone(),
                                partitions: t
                                    .partitions
                                    .iter()
                                    .map(|p| {
                                        state.list_offsets_requests.push((v, p.timestamp));
                                        if state.list_offsets_failures > 0 {
                                            state.list_offsets_failures -= 1;
                                            return ListOffsetsPartitionResponse {
                                                partition_index: p.partition_index,
                                                error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER
                                                    .code(),
                                                ..Default::default()
                                            };
                                        }
                                        let (offset, timestamp, leader_epoch) = state
                                            .list_offsets_answers
                                            .get(&p.timestamp)
                                            .copied()
                                            .unwrap_or(if p.timestamp == -2 {
                                                (0, -1, -1)
                                            } else {
                                                (42, -1, -1)
                                            });
                                        ListOffsetsPartitionResponse {
                                            partition_index: p.partition_index,
                                            offset: if v == 0 { -1 } else { offset },
                                            old_style_offsets: if v == 0 {
                                                vec![offset]
                                            } else {
                                                vec![]
                                            },
                                            timestamp: if v == 0 { -1 } else { timestamp },
                                            leader_epoch: if v >= 4 { leader_epoch } else { -1 },
                                            ..Default::default()
                                        }
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::ListOffsets, id, &resp, v)
                }
                other => panic!("the fake broker does not handle {:?}", other.api_key()),
            };
            ok.expect("fake encodes");
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    fn metadata(&self, req: &MetadataRequest) -> MetadataResponse {
        let state = self.state.lock().unwrap();
        let names: Vec<String> = match &req.topics {
            Some(t) => t.iter().filter_map(|t| t.name.clone()).collect(),
            None => state.topics.keys().cloned().collect(),
        };
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: self.port,
                ..Default::default()
            }],
            controller_id: 1,
            topics: names
                .into_iter()
                .map(|name| match state.topics.get(&name) {
                    Some(leaders) => MetadataResponseTopic {
                        name: Some(name),
                        partitions: leaders
                            .iter()
                            .enumerate()
                            .map(|(i, &leader)| MetadataResponsePartition {
                                partition_index: i as i32,
                                leader_id: leader,
                                leader_epoch: 7,
                                replica_nodes: vec![1],
                                isr_nodes: if leader >= 0 { vec![1] } else { vec![] },
                                offline_replicas: if leader >= 0 { vec![] } else { vec![1] },
                                error_code: if leader >= 0 {
                                    0
                                } else {
                                    ErrorCode::LEADER_NOT_AVAILABLE.code()
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    None => MetadataResponseTopic {
                        name: Some(name),
                        error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                        ..Default::default()
                    },
                })
                .collect(),
            ..Default::default()
        }
    }
}

fn config(seeds: Vec<String>) -> Config {
    let mut c = Config::default();
    c.net.bootstrap_servers = seeds;
    c.net.request_timeout = Duration::from_secs(5);
    c.metadata.refresh_interval = None;
    c
}

#[tokio::test(start_paused = true)]
async fn bootstraps_past_seeds_that_are_down() {
    bounded(async {
        let fake = Fake::start(&[("t", 3)]).await;
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let client = Client::connect(config(vec![
            dead_addr,
            "127.0.0.1:1".into(),
            fake.addr.clone(),
        ]))
        .await
        .expect("bootstrap");
        assert_eq!(client.topics(), ["t"]);
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1, 2]);
        client.close().await;
    })
    .await;
}

/// The pool traces a failed connect (the broker, the error, the backoff
/// before the next try) and the client that it moves on to the next
/// broker; the connect that works is traced as connected.
#[tokio::test(start_paused = true)]
async fn failed_connects_are_traced_with_the_broker_and_the_backoff() {
    let (capture, _capturing) = Capture::start();
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let mut c = config(vec![dead_addr.clone(), fake.addr.clone()]);
        c.net.reconnect_backoff = Duration::from_millis(50);
        let client = Client::connect(c).await.expect("bootstrap");

        let failed = capture.events("connect failed; backing off");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].field("broker"), dead_addr);
        assert!(
            failed[0].field("error").contains("connecting to"),
            "{failed:?}"
        );
        // The first backoff: 50 ms with up to 20 % jitter either way.
        let delay = failed[0].field("delay");
        let ms: f64 = delay
            .strip_suffix("ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("delay {delay:?} is not in milliseconds"));
        assert!((40.0..60.0).contains(&ms), "delay {delay}");
        let moved_on = capture.events("broker unavailable; trying the next");
        assert_eq!(moved_on.len(), 1, "{moved_on:?}");
        assert_eq!(moved_on[0].field("broker"), dead_addr);
        let connected = capture.events("connected");
        assert_eq!(connected.len(), 1, "{connected:?}");
        assert_eq!(connected[0].field("broker"), fake.addr);
        client.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn cluster_shape_accessors() {
    bounded(async {
        let fake = Fake::start(&[("a", 2)]).await;
        fake.state.lock().unwrap().topics.get_mut("a").unwrap()[1] = -1;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        assert_eq!(client.partitions("a").await.unwrap(), [0, 1]);
        assert_eq!(client.writable_partitions("a").await.unwrap(), [0]);
        assert_eq!(client.leader("a", 0).await.unwrap().addr(), fake.addr);
        let err = client.leader("a", 1).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::LEADER_NOT_AVAILABLE));
        assert!(err.is_retriable());
        assert_eq!(client.replicas("a", 0).await.unwrap(), [1]);
        assert_eq!(
            client.in_sync_replicas("a", 1).await.unwrap(),
            Vec::<i32>::new()
        );
        assert_eq!(client.offline_replicas("a", 1).await.unwrap(), [1]);
        assert_eq!(client.controller().await.unwrap().id, 1);
        assert_eq!(client.metadata().partition("a", 0).unwrap().leader_epoch, 7);
        let err = client.partitions("missing").await.unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_refreshes_are_coalesced_into_one_request() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let before = fake.metadata_requests.load(Ordering::SeqCst);
        fake.state.lock().unwrap().metadata_delay = Duration::from_millis(200);
        let topics = vec!["t".to_string()];
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (c, t) = (client.clone(), topics.clone());
            tasks.push(tokio::spawn(
                async move { c.refresh_metadata(Some(&t)).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().expect("refresh");
        }
        let sent = fake.metadata_requests.load(Ordering::SeqCst) - before;
        // The first caller's request only. (Where callers run on several
        // threads, one that asks before the first has even started may
        // send a second, a race the client allows; on this one thread
        // every caller has asked long before the answer, 200 ms later.)
        assert_eq!(
            sent, 1,
            "10 concurrent refreshes sent {sent} Metadata requests"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stale_metadata_errors_trigger_a_refresh() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let before = client.metadata_requests();
        client.report_error(ErrorCode::OFFSET_OUT_OF_RANGE); // not a metadata error
        client.report_error(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        eventually("a refresh", || client.metadata_requests() > before).await;
        assert_eq!(client.metadata_requests(), before + 1);
        // A leader that moved is seen after the refresh.
        fake.state
            .lock()
            .unwrap()
            .topics
            .insert("t".into(), vec![-1]);
        client.report_error(ErrorCode::FENCED_LEADER_EPOCH);
        for _ in 0..100 {
            if client.writable_partitions("t").await.unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the leader change was not picked up");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn metadata_refreshes_in_the_background() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let mut c = config(vec![fake.addr.clone()]);
        c.metadata.refresh_interval = Some(Duration::from_millis(50));
        let client = Client::connect(c).await.unwrap();
        let before = client.metadata_requests();
        // On the paused clock: one refresh each 50 ms, 8 in 425 ms.
        tokio::time::sleep(Duration::from_millis(425)).await;
        assert_eq!(client.metadata_requests() - before, 8, "refreshes");
        client.close().await;
        let after_close = fake.metadata_requests.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            fake.metadata_requests.load(Ordering::SeqCst),
            after_close,
            "close stops the refresher"
        );
    })
    .await;
}

/// Every request names the client: "klamm" unless configured, and no
/// name at all (a null client id) only when set to "".
#[tokio::test(start_paused = true)]
async fn requests_carry_the_client_id() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        for (set, want) in [
            (None, Some("klamm")),
            (Some("billing"), Some("billing")),
            (Some(""), None),
        ] {
            fake.state.lock().unwrap().client_ids.clear();
            let mut c = config(vec![fake.addr.clone()]);
            if let Some(id) = set {
                c.net.client_id = id.to_string();
            }
            let client = Client::connect(c).await.unwrap();
            client
                .list_offsets("t", 0, OffsetSpec::Oldest)
                .await
                .unwrap();
            client.close().await;
            let ids = fake.state.lock().unwrap().client_ids.clone();
            assert!(ids.len() >= 3, "{ids:?}");
            assert!(
                ids.iter().all(|id| id.as_deref() == want),
                "configured {set:?}: {ids:?}"
            );
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn list_offsets_and_coordinators() {
    bounded(async {
        let fake = Fake::start(&[("t", 2)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Oldest)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Newest)
                .await
                .unwrap(),
            42
        );
        let c = client.coordinator("g1").await.unwrap();
        assert_eq!((c.id, c.addr()), (1, fake.addr.clone()));
        // Cached: no second lookup.
        client.coordinator("g1").await.unwrap();
        assert_eq!(fake.find_coordinator_keys.lock().unwrap().len(), 1);
        // Batched where the broker supports v4+.
        let both = client
            .coordinators(&["g2".into(), "g3".into()])
            .await
            .unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(
            fake.find_coordinator_keys.lock().unwrap().last().unwrap(),
            &vec!["g2".to_string(), "g3".to_string()]
        );
        client.refresh_coordinator("g1").await.unwrap();
        assert_eq!(fake.find_coordinator_keys.lock().unwrap().len(), 3);
        client.transaction_coordinator("tx").await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn connections_are_shared_per_broker_and_class() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let b = client.leader("t", 0).await.unwrap();
        let p1 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        let p2 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        let f = client.connection(&b, TrafficClass::Fetch).await.unwrap();
        p1.close().await;
        eventually("p1 and p2 are the same connection: p2 closed", || {
            p2.is_closed()
        })
        .await;
        assert!(!f.is_closed(), "fetch has its own connection");
        // A closed connection is replaced on the next use.
        let p3 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        assert!(!p3.is_closed());
        let _ = Message::encoded_len(&MetadataRequest::default(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn metadata_steps_down_to_v8_when_flexible_answers_have_trailing_bytes() {
    bounded(async {
        let fake = Fake::start(&[("t", 2)]).await;
        fake.state.lock().unwrap().metadata_trailing_byte_from = Some(9);
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .expect("bootstrap despite the stray byte");
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1]);
        // v13 once, then v8 at once, and v8 from then on for this broker.
        client.refresh_metadata(None).await.unwrap();
        assert_eq!(fake.state.lock().unwrap().metadata_versions, [13, 8, 8]);
        client.close().await;

        // A broker whose answers decode keeps v13; other decode errors are
        // not retried at v8.
        let fake = Fake::start(&[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        assert_eq!(fake.state.lock().unwrap().metadata_versions, [13]);
        client.close().await;
        let e: Error = DecodeError::invalid("x").into();
        assert!(!has_trailing_bytes(&e));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_broker_killed_and_restarted_mid_request() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let mut c = config(vec![fake.addr.clone()]);
        c.net.reconnect_backoff = Duration::from_millis(50);
        c.net.reconnect_backoff_max = Duration::from_millis(200);
        let client = Client::connect(c).await.unwrap();
        let broker = client.leader("t", 0).await.unwrap();
        let conn = client
            .connection(&broker, TrafficClass::Other)
            .await
            .unwrap();

        // Killed while a request is in flight: it fails, retriably, at once.
        fake.dead.store(true, Ordering::SeqCst);
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert!(conn.is_closed());
        // While it is down, new connections fail (retriably) without hanging.
        let err = client
            .connection(&broker, TrafficClass::Other)
            .await
            .unwrap_err();
        assert!(err.is_retriable(), "{err}");

        // Restarted: after the backoff the client connects again.
        fake.dead.store(false, Ordering::SeqCst);
        let mut reconnected = None;
        for _ in 0..100 {
            match client.connection(&broker, TrafficClass::Other).await {
                Ok(c) => {
                    reconnected = Some(c);
                    break;
                }
                Err(e) => {
                    assert!(e.is_retriable(), "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let conn = reconnected.expect("reconnected after the restart");
        conn.send(&MetadataRequest::default())
            .await
            .expect("answered after the restart");
        assert_eq!(
            client
                .list_offsets("t", 0, OffsetSpec::Newest)
                .await
                .unwrap(),
            42
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn retriable_coordinator_errors_are_retried() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let mut c = config(vec![fake.addr.clone()]);
        c.metadata.retry_backoff = Duration::from_millis(10);
        let request_timeout = c.net.request_timeout;
        let client = Client::connect(c).await.unwrap();
        // Eight COORDINATOR_NOT_AVAILABLE answers (as while Kafka creates
        // __consumer_offsets), then a coordinator: the lookup retries with
        // backoff for up to request.timeout.ms, not for a fixed number of
        // attempts.
        fake.coordinator_failures.store(8, Ordering::SeqCst);
        let b = client.coordinator("g").await.expect("found after retries");
        assert_eq!(b.id, 1);
        assert_eq!(
            fake.find_coordinator_keys.lock().unwrap().len(),
            9,
            "eight failures, one success"
        );
        // Failures for longer than request.timeout.ms: the last error
        // surfaces, retriable, named by its code, before the deadline.
        fake.coordinator_failures.store(100, Ordering::SeqCst);
        let before = fake.find_coordinator_keys.lock().unwrap().len();
        let started = tokio::time::Instant::now();
        let err = client.coordinator("other").await.unwrap_err();
        assert!(
            started.elapsed() <= request_timeout,
            "{:?}",
            started.elapsed()
        );
        assert!(fake.find_coordinator_keys.lock().unwrap().len() - before > 9);
        assert_eq!(err.kafka_code(), Some(ErrorCode::COORDINATOR_NOT_AVAILABLE));
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn rebootstrap_required_reconnects_to_the_seeds_and_asks_again() {
    bounded(async {
        let fake = Fake::start(&[("t", 2)]).await;
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let v = client
            .connection(&client.leader("t", 0).await.unwrap(), TrafficClass::Other)
            .await
            .unwrap()
            .api_versions()
            .version_for(ApiKey::Metadata, "fake")
            .unwrap();
        assert_eq!(v, 13, "Metadata v13 is negotiated");
        let before = fake.state.lock().unwrap().connections;
        let asked = fake.metadata_requests.load(Ordering::SeqCst);
        // One REBOOTSTRAP_REQUIRED: every connection goes, the seeds are
        // asked again on a new one, and the refresh succeeds.
        fake.state.lock().unwrap().rebootstrap_answers = 1;
        client
            .refresh_metadata(Some(&["t".to_string()]))
            .await
            .expect("answered after the new bootstrap");
        assert_eq!(fake.metadata_requests.load(Ordering::SeqCst), asked + 2);
        assert!(
            fake.state.lock().unwrap().connections > before,
            "a new connection to the seed"
        );
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1]);
        // Control: a cluster that keeps asking is not asked forever; the
        // error comes back typed.
        fake.state.lock().unwrap().rebootstrap_answers = usize::MAX;
        let err = client
            .refresh_metadata(Some(&["t".to_string()]))
            .await
            .unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::REBOOTSTRAP_REQUIRED));
        assert!(!err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn list_offsets_retries_a_leader_that_moved_until_default_api_timeout() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        let mut c = config(vec![fake.addr.clone()]);
        c.metadata.retry_backoff = Duration::from_millis(10);
        c.consumer.default_api_timeout = Duration::from_secs(5);
        let api_timeout = c.consumer.default_api_timeout;
        let client = Client::connect(c).await.unwrap();
        let metadata_before = fake.metadata_requests.load(Ordering::SeqCst);
        // Three NOT_LEADER_OR_FOLLOWER answers (a leader paused and
        // replaced), then the offset: each retry asks for the topic's
        // metadata first.
        fake.state.lock().unwrap().list_offsets_failures = 3;
        let end = client.list_offsets("t", 0, OffsetSpec::Newest).await;
        assert_eq!(end.expect("answered after retries"), 42);
        assert_eq!(fake.state.lock().unwrap().list_offsets_requests.len(), 4);
        assert!(fake.metadata_requests.load(Ordering::SeqCst) >= metadata_before + 3);
        // Control: a leader that never comes back surfaces the broker's
        // error, typed and retriable, within default.api.timeout.ms.
        fake.state.lock().unwrap().list_offsets_failures = usize::MAX;
        let started = tokio::time::Instant::now();
        let err = client
            .list_offset("t", 0, OffsetSpec::Oldest)
            .await
            .unwrap_err();
        assert!(started.elapsed() <= api_timeout, "{:?}", started.elapsed());
        assert!(fake.state.lock().unwrap().list_offsets_requests.len() > 10);
        assert_eq!(err.kafka_code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test]
async fn list_offset_gives_timestamp_and_leader_epoch_with_the_offset() {
    bounded(async {
        let fake = Fake::start(&[("t", 2)]).await;
        {
            let mut state = fake.state.lock().unwrap();
            // A partition whose largest timestamp (9000) is at offset 3,
            // not at its end (10).
            state.list_offsets_answers.insert(-3, (3, 9_000, 5));
            state.list_offsets_answers.insert(2_000, (1, 2_000, 4));
            // Past every record: Kafka answers offset and timestamp -1.
            state.list_offsets_answers.insert(99_000, (-1, -1, -1));
            state.list_offsets_answers.insert(-1, (10, -1, 5));
        }
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let max = client
            .list_offset("t", 1, OffsetSpec::MaxTimestamp)
            .await
            .unwrap();
        assert_eq!(
            max,
            ListedOffset {
                offset: Some(3),
                timestamp: Some(9_000),
                leader_epoch: Some(5)
            }
        );
        let by_time = client
            .list_offset("t", 1, OffsetSpec::Timestamp(2_000))
            .await
            .unwrap();
        assert_eq!(
            by_time,
            ListedOffset {
                offset: Some(1),
                timestamp: Some(2_000),
                leader_epoch: Some(4)
            }
        );
        let none = client
            .list_offset("t", 1, OffsetSpec::Timestamp(99_000))
            .await
            .unwrap();
        assert_eq!(
            none,
            ListedOffset {
                offset: None,
                timestamp: None,
                leader_epoch: None
            }
        );
        // list_offsets keeps its -1 for "no such record".
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Timestamp(99_000))
                .await
                .unwrap(),
            -1
        );
        let newest = client
            .list_offset("t", 1, OffsetSpec::Newest)
            .await
            .unwrap();
        assert_eq!(
            (newest.offset, newest.timestamp, newest.leader_epoch),
            (Some(10), None, Some(5))
        );
        // What went on the wire: the sentinels, at klamm's highest version.
        let sent = fake.state.lock().unwrap().list_offsets_requests.clone();
        let top = crate::net::client_max(ApiKey::ListOffsets);
        assert_eq!(
            sent,
            [
                (top, -3),
                (top, 2_000),
                (top, 99_000),
                (top, 99_000),
                (top, -1)
            ]
        );
        assert_eq!(OffsetSpec::MaxTimestamp.timestamp(), -3);
        assert_eq!(OffsetSpec::Oldest.timestamp(), -2);
        assert_eq!(OffsetSpec::Newest.timestamp(), -1);
        assert_eq!(OffsetSpec::Timestamp(7).timestamp(), 7);
    })
    .await;
}

#[tokio::test]
async fn max_timestamp_needs_list_offsets_v7_and_fails_typed_before() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        fake.state.lock().unwrap().list_offsets_max_version = Some(6);
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let err = client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .unwrap_err();
        match &err {
            Error::UnsupportedVersion {
                api,
                broker_versions,
                ours,
                ..
            } => {
                assert_eq!(*api, ApiKey::ListOffsets);
                assert_eq!(*broker_versions, Some((0, 6)));
                assert_eq!(ours.0, 7, "MaxTimestamp needs v7");
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("ListOffsets"), "{err}");
        // Nothing was sent for it; the other specs still work at v6.
        assert!(fake.state.lock().unwrap().list_offsets_requests.is_empty());
        let oldest = client
            .list_offset("t", 0, OffsetSpec::Oldest)
            .await
            .unwrap();
        assert_eq!(oldest.offset, Some(0));
        assert_eq!(fake.state.lock().unwrap().list_offsets_requests, [(6, -2)]);
        client.close().await;

        // The control: the same call against a broker with v7 is sent.
        let fake = Fake::start(&[("t", 1)]).await;
        fake.state.lock().unwrap().list_offsets_max_version = Some(7);
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .expect("v7 has MaxTimestamp");
        assert_eq!(fake.state.lock().unwrap().list_offsets_requests, [(7, -3)]);
    })
    .await;
}

#[tokio::test]
async fn list_offset_v0_reads_the_old_style_offsets() {
    bounded(async {
        let fake = Fake::start(&[("t", 1)]).await;
        {
            let mut state = fake.state.lock().unwrap();
            state.list_offsets_max_version = Some(0);
            state.list_offsets_answers.insert(-1, (17, 1_234, 3));
        }
        let client = Client::connect(config(vec![fake.addr.clone()]))
            .await
            .unwrap();
        let newest = client
            .list_offset("t", 0, OffsetSpec::Newest)
            .await
            .unwrap();
        assert_eq!(
            newest,
            ListedOffset {
                offset: Some(17),
                timestamp: None,
                leader_epoch: None
            }
        );
        assert_eq!(fake.state.lock().unwrap().list_offsets_requests, [(0, -1)]);
    })
    .await;
}
