//! The tracing events of a connection, captured ([`Capture`]) while it
//! talks to scripted peers on tokio's paused clock: the connect, each
//! request's outcome (API, version, broker, latency, bytes on the wire),
//! and a connection's fault.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{metadata_answer, metadata_for, opts, peer};
use crate::error::Error;
use crate::net::{Connection, ConnectionOptions};
use crate::protocol::messages::*;
use crate::test_support::bounded;
use crate::test_support::trace::{Capture, Seen};

/// What the peer saw of one request and its answer.
#[derive(Debug)]
struct Exchange {
    correlation_id: i32,
    version: i16,
    /// The request frame's size on the wire.
    request: usize,
    /// The response frame's size on the wire (0 when not answered).
    response: usize,
}

/// The events among `events` whose `api` field is `api`.
fn of_api(events: Vec<Seen>, api: ApiKey) -> Vec<Seen> {
    events
        .into_iter()
        .filter(|e| e.field("api") == api.name())
        .collect()
}

fn number(e: &Seen, field: &str) -> usize {
    let text = e.field(field);
    text.parse()
        .unwrap_or_else(|_| panic!("{}: {field} = {text:?} is not a number", e.name))
}

#[tokio::test(start_paused = true)]
async fn a_request_is_traced_with_its_api_version_broker_bytes_and_latency() {
    let (capture, _capturing) = Capture::start();
    bounded(async {
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let addr = peer(move |mut p| async move {
            p.handshake().await;
            let (request, h, body) = p.read_sized().await;
            // Answered 25 ms later, on the paused clock.
            tokio::time::sleep(Duration::from_millis(25)).await;
            let response = p
                .answer(
                    ApiKey::Metadata,
                    h.correlation_id,
                    &metadata_answer(&body),
                    h.request_api_version,
                )
                .await;
            let _ = seen_tx.send(Exchange {
                correlation_id: h.correlation_id,
                version: h.request_api_version,
                request,
                response,
            });
            p.quiet_for(Duration::from_secs(5)).await;
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        conn.send(&metadata_for("t")).await.expect("answered");
        let x = seen.recv().await.expect("the peer saw the request");

        // The connect: a span and an event, both naming the broker; the
        // version negotiation is a request like any other.
        let spans = capture.spans("connect");
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].field("broker"), addr);
        let connected = capture.events("connected");
        assert_eq!(connected.len(), 1, "{connected:?}");
        assert_eq!(connected[0].field("broker"), addr);
        let negotiated = of_api(capture.events("request completed"), ApiKey::ApiVersions);
        assert_eq!(negotiated.len(), 1, "{negotiated:?}");
        assert_eq!(
            negotiated[0].field("version"),
            crate::net::client_max(ApiKey::ApiVersions).to_string()
        );

        // The request: its outcome, with what went over the wire.
        let done = of_api(capture.events("request completed"), ApiKey::Metadata);
        assert_eq!(done.len(), 1, "{done:?}");
        let e = &done[0];
        assert_eq!(e.field("broker"), addr);
        assert_eq!(x.version, crate::net::client_max(ApiKey::Metadata));
        assert_eq!(e.field("version"), x.version.to_string());
        assert_eq!(number(e, "bytes_out"), x.request, "the request frame");
        assert_eq!(number(e, "bytes_in"), x.response, "the response frame");
        assert_eq!(
            e.field("latency"),
            format!("{:?}", Duration::from_millis(25))
        );
        assert!(capture.events("request failed").is_empty());

        // The connection task's finer events: the frame out, the frame in.
        let out = of_api(capture.events("request"), ApiKey::Metadata);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].field("correlation_id"), x.correlation_id.to_string());
        assert_eq!(number(&out[0], "bytes"), x.request);
        let back = of_api(capture.events("response"), ApiKey::Metadata);
        assert_eq!(back.len(), 1, "{back:?}");
        assert_eq!(
            back[0].field("correlation_id"),
            x.correlation_id.to_string()
        );
        assert_eq!(number(&back[0], "bytes"), x.response);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_request_that_times_out_is_traced_as_failed() {
    let (capture, _capturing) = Capture::start();
    bounded(async {
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let addr = peer(move |mut p| async move {
            p.handshake().await;
            let (request, h, _) = p.read_sized().await;
            let _ = seen_tx.send(Exchange {
                correlation_id: h.correlation_id,
                version: h.request_api_version,
                request,
                response: 0,
            });
            // Never answers.
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        let o = ConnectionOptions {
            request_timeout: Duration::from_millis(300),
            ..opts()
        };
        let conn = Connection::connect(&addr, o).await.expect("connect");
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        let x = seen.recv().await.expect("the peer saw the request");

        assert!(
            of_api(capture.events("request completed"), ApiKey::Metadata).is_empty(),
            "not completed"
        );
        let failed = of_api(capture.events("request failed"), ApiKey::Metadata);
        assert_eq!(failed.len(), 1, "{failed:?}");
        let e = &failed[0];
        assert_eq!(e.field("broker"), addr);
        assert_eq!(e.field("version"), x.version.to_string());
        assert_eq!(e.field("error"), err.to_string());
        assert!(e.field("error").contains("timed out"), "{e:?}");
        // At the timeout, to the millisecond.
        assert_eq!(
            e.field("latency"),
            format!("{:?}", Duration::from_millis(300))
        );
        // It went out, and nothing came back.
        let out = of_api(capture.events("request"), ApiKey::Metadata);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(number(&out[0], "bytes"), x.request);
        assert!(of_api(capture.events("response"), ApiKey::Metadata).is_empty());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_drops_traces_its_fault_and_the_failed_request() {
    let (capture, _capturing) = Capture::start();
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

        let failed = of_api(capture.events("request failed"), ApiKey::Metadata);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].field("broker"), addr);
        assert_eq!(failed[0].field("error"), err.to_string());
        assert_eq!(failed[0].field("latency"), format!("{:?}", Duration::ZERO));
        let faults = capture.events("connection failed");
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].field("broker"), addr);
        assert_eq!(faults[0].field("in_flight"), "1");
        assert!(
            faults[0].field("reason").contains("closed the connection"),
            "{faults:?}"
        );
    })
    .await;
}

/// The control: a request that never goes out (the broker does not offer
/// its API) leaves no request event, while one that does go out on the
/// same connection leaves one of each.
#[tokio::test(start_paused = true)]
async fn a_request_that_is_not_sent_is_not_traced() {
    let (capture, _capturing) = Capture::start();
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake_offering(&[ApiKey::ApiVersions, ApiKey::Metadata])
                .await;
            let (h, body) = p.read().await;
            p.answer(
                ApiKey::Metadata,
                h.correlation_id,
                &metadata_answer(&body),
                h.request_api_version,
            )
            .await;
            p.quiet_for(Duration::from_secs(5)).await;
        })
        .await;
        let conn = Connection::connect(&addr, opts()).await.expect("connect");
        let err = conn.send(&ProduceRequest::default()).await.unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
        conn.send(&metadata_for("t")).await.expect("answered");

        for message in ["request", "response", "request completed", "request failed"] {
            let produce = of_api(capture.events(message), ApiKey::Produce);
            assert!(produce.is_empty(), "{message}: {produce:?}");
            let metadata = of_api(capture.events(message), ApiKey::Metadata);
            let want = usize::from(message != "request failed");
            assert_eq!(metadata.len(), want, "{message}: {metadata:?}");
        }
    })
    .await;
}
