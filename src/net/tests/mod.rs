//! Fault tests for one connection, against scripted in-process peers on
//! loopback: out-of-order answers, a peer that dies, garbage, truncated and
//! oversized frames, silence, cancelled writers, version fallback.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::connection::response_frame;
use super::{Connection, ConnectionOptions};
use crate::error::Error;
use crate::protocol::frame::{decode_request, split_frame};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::*;
use crate::test_support::{bounded, eventually};

mod traces;

/// One accepted connection, seen from the broker's side.
pub(in crate::net) struct Peer {
    pub(in crate::net) stream: TcpStream,
    pub(in crate::net) buf: BytesMut,
}

impl Peer {
    /// Reads the next request frame.
    pub(in crate::net) async fn read(&mut self) -> (RequestHeader, RequestBody) {
        let (_, header, body) = self.read_sized().await;
        (header, body)
    }

    /// Reads the next request frame; also returns its size on the wire
    /// (the 4-byte size included).
    pub(in crate::net) async fn read_sized(&mut self) -> (usize, RequestHeader, RequestBody) {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, 64 << 20).expect("client frame") {
                let size = 4 + frame.len();
                let (header, body) =
                    decode_request(frame.freeze()).expect("client request decodes");
                return (size, header, body);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .expect("peer read");
            assert!(n > 0, "client closed while the peer expected a request");
        }
    }

    /// Whether another request arrives within `wait`.
    pub(in crate::net) async fn quiet_for(&mut self, wait: Duration) -> bool {
        if split_frame(&mut self.buf.clone(), 64 << 20)
            .ok()
            .flatten()
            .is_some()
        {
            return false;
        }
        tokio::time::timeout(wait, self.stream.read_buf(&mut self.buf))
            .await
            .is_err()
    }

    /// Writes a response frame; returns its size on the wire.
    pub(in crate::net) async fn answer<M: crate::protocol::codec::Message>(
        &mut self,
        api: ApiKey,
        id: i32,
        body: &M,
        version: i16,
    ) -> usize {
        let frame = response_frame(api, id, body, version);
        self.stream.write_all(&frame).await.expect("peer write");
        frame.len()
    }

    pub(in crate::net) async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("peer write");
    }

    /// Answers the client's ApiVersions request offering every klamm API;
    /// returns the sizes of the request and response frames.
    pub(in crate::net) async fn handshake(&mut self) -> (usize, usize) {
        self.handshake_offering(&ApiKey::ALL).await
    }

    /// Answers the client's ApiVersions request offering `apis` (at every
    /// version klamm has); returns the sizes of the request and response
    /// frames.
    pub(in crate::net) async fn handshake_offering(&mut self, apis: &[ApiKey]) -> (usize, usize) {
        let (request, h, body) = self.read_sized().await;
        assert!(matches!(body, RequestBody::ApiVersions(_)));
        let resp = ApiVersionsResponse {
            api_keys: apis
                .iter()
                .map(|k| ApiVersion {
                    api_key: k.code(),
                    min_version: k.versions().0,
                    max_version: k.versions().1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let response = self
            .answer(
                ApiKey::ApiVersions,
                h.correlation_id,
                &resp,
                h.request_api_version,
            )
            .await;
        (request, response)
    }
}

/// Binds a loopback listener, runs `script` on the first connection, and
/// returns the address to connect to.
pub(in crate::net) async fn peer<F, Fut>(script: F) -> String
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let stream = crate::test_support::accept(&listener)
            .await
            .expect("accept");
        script(Peer {
            stream,
            buf: BytesMut::new(),
        })
        .await;
    });
    addr
}

pub(in crate::net) fn opts() -> ConnectionOptions {
    ConnectionOptions {
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

pub(in crate::net) fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic {
            name: Some(topic.into()),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

pub(in crate::net) fn metadata_answer(req: &RequestBody) -> MetadataResponse {
    let RequestBody::Metadata(m) = req else {
        panic!("expected Metadata, got {req:?}")
    };
    let name = m.topics.as_ref().and_then(|t| t[0].name.clone());
    MetadataResponse {
        topics: vec![metadata_response::MetadataResponseTopic {
            name,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_matched_even_when_answered_out_of_order() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let mut reqs = Vec::new();
            for _ in 0..5 {
                reqs.push(p.read().await);
            }
            // Answer in reverse order: ids, not arrival order, match answers.
            for (h, body) in reqs.iter().rev() {
                p.answer(
                    ApiKey::Metadata,
                    h.correlation_id,
                    &metadata_answer(body),
                    h.request_api_version,
                )
                .await;
            }
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        assert_eq!(
            conn.api_versions()
                .version_for(ApiKey::Metadata, "x")
                .unwrap(),
            13
        );
        let calls = (0..5).map(|i| {
            let conn = conn.clone();
            async move { conn.send(&metadata_for(&format!("t{i}"))).await }
        });
        let results = futures_join_all(calls).await;
        for (i, r) in results.into_iter().enumerate() {
            let resp = r.expect("answered");
            assert_eq!(
                resp.topics[0].name.as_deref(),
                Some(format!("t{i}").as_str())
            );
        }
    })
    .await;
}

/// A tiny join_all: runs the futures concurrently on this task.
pub(in crate::net) async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futs.into_iter().map(|f| Box::pin(f)).collect();
    let mut slots: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, h) in handles.iter_mut().enumerate() {
            if let Some(f) = h {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        slots[i] = Some(v);
                        *h = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    slots.into_iter().map(|s| s.expect("completed")).collect()
}

#[tokio::test(start_paused = true)]
async fn max_in_flight_is_respected() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let a = p.read().await;
            let b = p.read().await;
            assert!(
                p.quiet_for(Duration::from_millis(200)).await,
                "a third request came early"
            );
            p.answer(
                ApiKey::Metadata,
                a.0.correlation_id,
                &metadata_answer(&a.1),
                a.0.request_api_version,
            )
            .await;
            let c = p.read().await;
            for (h, body) in [b, c] {
                p.answer(
                    ApiKey::Metadata,
                    h.correlation_id,
                    &metadata_answer(&body),
                    h.request_api_version,
                )
                .await;
            }
        })
        .await;
        let conn = Connection::connect(
            &addr,
            ConnectionOptions {
                max_in_flight: 2,
                ..opts()
            },
        )
        .await
        .expect("connect");
        let calls = (0..3).map(|i| {
            let conn = conn.clone();
            async move { conn.send(&metadata_for(&format!("t{i}"))).await }
        });
        for r in futures_join_all(calls).await {
            r.expect("answered");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_broker_dying_mid_request_fails_in_flight_requests_retriably() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let _ = p.read().await;
            drop(p); // killed before answering
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(err.is_retriable());
        assert!(conn.is_closed());
        // Later requests fail at once, they do not hang.
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn connection_refused_is_a_retriable_network_error() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let err = Connection::connect(&addr, opts()).await.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Network);
        assert!(err.is_retriable());
    })
    .await;
}

async fn fault_after_request(bytes: &'static [u8]) -> Error {
    let addr = peer(move |mut p| async move {
        p.handshake().await;
        let _ = p.read().await;
        p.raw(bytes).await;
        // Keep the socket open: the client must notice by itself.
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let conn = Connection::connect(&addr, opts()).await.expect("connect");
    let err = conn.send(&metadata_for("t")).await.unwrap_err();
    assert!(conn.is_closed());
    err
}

#[tokio::test(start_paused = true)]
async fn garbage_closes_the_connection() {
    bounded(async {
        // A well-formed frame whose correlation id answers nothing.
        let err = fault_after_request(b"\x00\x00\x00\x05\x7f\x7f\x7f\x7f\x00").await;
        assert!(err.is_retriable(), "{err}");
        assert!(err.to_string().contains("answers no request"), "{err}");
        // A negative frame size.
        let err = fault_after_request(b"\xff\xff\xff\xfb junk").await;
        assert!(err.to_string().contains("negative length"), "{err}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_2gb_frame_length_is_refused_without_allocating_it() {
    bounded(async {
        let err = fault_after_request(b"\x7f\xff\xff\xff\x00\x00\x00\x01").await;
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_truncated_frame_then_close_does_not_hang() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let _ = p.read().await;
            p.raw(b"\x00\x00\x00\x64\x00\x00\x00\x01only ten").await;
            drop(p);
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_times_out() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let _ = p.read().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        let o = ConnectionOptions {
            request_timeout: Duration::from_millis(300),
            ..opts()
        };
        let conn = Connection::connect(&addr, o).await.expect("connect");
        let started = tokio::time::Instant::now();
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(err.is_retriable());
        // On the paused clock: at the request timeout to the millisecond.
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert!(conn.is_closed(), "a timed-out connection is closed");
    })
    .await;
}

/// On the real clock: an 8 MiB frame over loopback is the one exchange
/// here whose pace is the kernel's (buffer space, window updates), and a
/// paused clock could jump past the connection's request timeout during
/// it.
#[tokio::test]
async fn a_request_dropped_mid_write_leaves_no_half_frame() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            // The big request arrives whole, then the small one.
            let (_, big) = p.read().await;
            let RequestBody::Produce(big) = big else {
                panic!("expected the big produce")
            };
            let len = big.topic_data[0].partition_data[0]
                .records
                .as_ref()
                .map_or(0, Bytes::len);
            assert_eq!(len, 8 << 20);
            let (h, small) = p.read().await;
            p.answer(
                ApiKey::Metadata,
                h.correlation_id,
                &metadata_answer(&small),
                h.request_api_version,
            )
            .await;
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let big = ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from(vec![7u8; 8 << 20])),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        // Queue the big request (one poll gets it to the connection's
        // task, which has written none of it yet), then drop it.
        {
            let mut send = std::pin::pin!(conn.send(&big));
            let first = std::future::poll_fn(|cx| std::task::Poll::Ready(send.as_mut().poll(cx)));
            assert!(first.await.is_pending(), "queued, not answered");
        }
        let resp = conn
            .send(&metadata_for("after"))
            .await
            .expect("the next request still works");
        assert_eq!(resp.topics[0].name.as_deref(), Some("after"));
    })
    .await;
}

/// A Produce request goes out as parts (its large batches are not copied
/// into the frame) and arrives whole and in order with the requests queued
/// around it: a request without an answer right after it, then a Metadata
/// request. The batches are large enough (several MiB) that the socket
/// takes them in several writes, so writes end inside parts and between
/// frames. Real clock, as for the test above.
#[tokio::test]
async fn record_batches_written_from_their_own_buffers_arrive_whole_and_in_order() {
    bounded(async {
        let batch = |seed: u8, len: usize| -> Bytes {
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect::<Vec<u8>>()
                .into()
        };
        let partition = |index, records| PartitionProduceData {
            index,
            records,
            ..Default::default()
        };
        let produce = |acks, topic: &str, batches: Vec<Option<Bytes>>| ProduceRequest {
            acks,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: batches
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| partition(i as i32, b))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let answered = produce(
            1,
            "answered",
            vec![
                Some(batch(1, 3 << 20)),
                Some(batch(2, 100)),
                None,
                Some(batch(3, (2 << 20) + 1)),
            ],
        );
        let unanswered = produce(0, "unanswered", vec![Some(batch(4, 1 << 20))]);
        let (want_answered, want_unanswered) = (answered.clone(), unanswered.clone());
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let (h, first) = p.read().await;
            assert!(matches!(first, RequestBody::Produce(ref r) if *r == want_answered));
            let (_, second) = p.read().await;
            assert!(matches!(second, RequestBody::Produce(ref r) if *r == want_unanswered));
            let (mh, third) = p.read().await;
            p.answer(
                ApiKey::Metadata,
                mh.correlation_id,
                &metadata_answer(&third),
                mh.request_api_version,
            )
            .await;
            p.answer(
                ApiKey::Produce,
                h.correlation_id,
                &ProduceResponse::default(),
                h.request_api_version,
            )
            .await;
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let version = conn
            .api_versions()
            .version_for(ApiKey::Produce, &addr)
            .expect("produce version");
        let first = conn
            .queue_version(&answered, version)
            .await
            .expect("queued");
        conn.send_without_response(&unanswered, version)
            .await
            .expect("written");
        let meta = conn.send(&metadata_for("last")).await.expect("metadata");
        assert_eq!(meta.topics[0].name.as_deref(), Some("last"));
        first.await.expect("the produce is answered");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_response_resolve_once_written() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let (_, body) = p.read().await;
            assert!(matches!(
                body,
                RequestBody::Produce(ProduceRequest { acks: 0, .. })
            ));
            let (h, body) = p.read().await;
            p.answer(
                ApiKey::Metadata,
                h.correlation_id,
                &metadata_answer(&body),
                h.request_api_version,
            )
            .await;
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let req = ProduceRequest {
            acks: 0,
            timeout_ms: 1000,
            ..Default::default()
        };
        conn.send_without_response(&req, 9).await.expect("written");
        conn.send(&metadata_for("t"))
            .await
            .expect("next request answered");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn api_versions_falls_back_when_the_broker_refuses_the_newest() {
    bounded(async {
        let addr = peer(|mut p| async move {
            // First attempt: klamm's newest (v5), answered
            // UNSUPPORTED_VERSION with a v0 body that advertises
            // ApiVersions up to v2 (a Kafka 2.x broker).
            let (h, _) = p.read().await;
            assert_eq!(h.request_api_version, 5);
            assert_eq!(
                h.request_api_version,
                crate::net::client_max(ApiKey::ApiVersions)
            );
            let mut frame = BytesMut::new();
            frame.extend_from_slice(&h.correlation_id.to_be_bytes());
            frame.extend_from_slice(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2]);
            let mut out = (frame.len() as i32).to_be_bytes().to_vec();
            out.extend_from_slice(&frame);
            p.raw(&out).await;
            // Second attempt: v2, answered normally.
            let (h, _) = p.read().await;
            assert_eq!(h.request_api_version, 2);
            let resp = ApiVersionsResponse {
                api_keys: vec![ApiVersion {
                    api_key: 3,
                    min_version: 0,
                    max_version: 9,
                    ..Default::default()
                }],
                ..Default::default()
            };
            p.answer(ApiKey::ApiVersions, h.correlation_id, &resp, 2)
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let conn = Connection::connect(&addr, opts())
            .await
            .expect("connect after fallback");
        assert_eq!(
            conn.api_versions().broker_range(ApiKey::Metadata),
            Some((0, 9))
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn api_versions_short_error_body_falls_back_to_v0() {
    bounded(async {
        let addr = peer(|mut p| async move {
            // librdkafka's mock answers an unsupported ApiVersions with only
            // the error code.
            let (h, _) = p.read().await;
            let mut out = 6i32.to_be_bytes().to_vec();
            out.extend_from_slice(&h.correlation_id.to_be_bytes());
            out.extend_from_slice(&[0, 35]);
            p.raw(&out).await;
            let (h, _) = p.read().await;
            assert_eq!(h.request_api_version, 0);
            let resp = ApiVersionsResponse {
                api_keys: vec![ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 7,
                    ..Default::default()
                }],
                ..Default::default()
            };
            p.answer(ApiKey::ApiVersions, h.correlation_id, &resp, 0)
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let conn = Connection::connect(&addr, opts())
            .await
            .expect("connect after v0 fallback");
        assert_eq!(
            conn.api_versions()
                .version_for(ApiKey::Produce, "x")
                .unwrap(),
            7
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn metrics_count_requests_bytes_latency_and_errors() {
    use super::{AtomicMetrics, Metrics};
    use std::sync::Arc;
    bounded(async {
        let (bytes_tx, bytes) = tokio::sync::oneshot::channel();
        let addr = peer(|mut p| async move {
            // The bytes each way, as the peer sees them on the wire.
            let (mut from_client, mut to_client) = p.handshake().await;
            for _ in 0..3 {
                let (n, h, body) = p.read_sized().await;
                from_client += n;
                to_client += p
                    .answer(
                        ApiKey::Metadata,
                        h.correlation_id,
                        &metadata_answer(&body),
                        h.request_api_version,
                    )
                    .await;
            }
            let (n, _, _) = p.read_sized().await;
            let _ = bytes_tx.send((from_client + n, to_client));
            drop(p);
        })
        .await;
        let metrics = Arc::new(AtomicMetrics::default());
        let handle: Arc<dyn Metrics> = metrics.clone();
        let conn = Connection::connect(
            &addr,
            ConnectionOptions {
                metrics: Some(handle),
                ..opts()
            },
        )
        .await
        .expect("connect");
        for i in 0..3 {
            conn.send(&metadata_for(&format!("t{i}")))
                .await
                .expect("answered");
        }
        conn.send(&metadata_for("dies")).await.unwrap_err();
        // The connection's task reports the disconnect before it fails
        // the requests in flight: everything is counted by now.
        let s = metrics.snapshot();
        // ApiVersions + 3 answered Metadata + 1 failed.
        assert_eq!(
            (s.connections, s.requests, s.completed, s.errors),
            (1, 5, 4, 1)
        );
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.disconnects, 1);
        let (bytes_out, bytes_in) = bytes.await.expect("the peer's byte counts");
        assert_eq!(
            (s.bytes_out, s.bytes_in),
            (bytes_out as u64, bytes_in as u64)
        );
        assert_eq!(s.latency_buckets.iter().sum::<u64>(), 4);
    })
    .await;
}

/// Records the in-flight counts a connection reports.
#[derive(Default)]
struct PeakInFlight(std::sync::Mutex<Vec<usize>>);

impl super::Metrics for PeakInFlight {
    fn in_flight(&self, _: &str, count: usize) {
        self.0.lock().unwrap().push(count);
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_see_the_in_flight_count() {
    use std::sync::Arc;
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let a = p.read().await;
            let b = p.read().await;
            for (h, body) in [a, b] {
                p.answer(
                    ApiKey::Metadata,
                    h.correlation_id,
                    &metadata_answer(&body),
                    h.request_api_version,
                )
                .await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let sink = Arc::new(PeakInFlight::default());
        let handle: Arc<dyn super::Metrics> = sink.clone();
        let conn = Connection::connect(
            &addr,
            ConnectionOptions {
                metrics: Some(handle),
                ..opts()
            },
        )
        .await
        .expect("connect");
        let calls = (0..2).map(|i| {
            let conn = conn.clone();
            async move { conn.send(&metadata_for(&format!("t{i}"))).await }
        });
        for r in futures_join_all(calls).await {
            r.expect("answered");
        }
        conn.close().await;
        // The task reports the last count as it closes.
        eventually("the connection closed", || conn.is_closed()).await;
        let seen = sink.0.lock().unwrap().clone();
        assert!(
            seen.contains(&2),
            "both requests were in flight together: {seen:?}"
        );
        assert_eq!(seen.last(), Some(&0), "ends at zero: {seen:?}");
    })
    .await;
}
