//! Requests per second over one connection with 1, 8 and 64 requests in
//! flight: against a broker (`KLAMM_BROKERS`, if set) and against an
//! in-process echo peer that answers every Metadata request with the same
//! small response, so the second figure is the client's own cost.
//!
//! ```sh
//! cargo run --release --example pipeline                  # echo peer only
//! KLAMM_BROKERS=127.0.0.1:9092 cargo run --release --example pipeline
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::frame::{decode_request, encode_response, split_frame};
use klamm::protocol::messages::api_versions_response::ApiVersion;
use klamm::protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestBody,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const RUN_FOR: Duration = Duration::from_secs(3);

/// Answers ApiVersions properly, then every Metadata request with one fixed
/// response (only the correlation id changes).
async fn echo_peer() -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::with_capacity(1 << 16);
                let mut out = BytesMut::with_capacity(1 << 16);
                loop {
                    while let Ok(Some(frame)) = split_frame(&mut buf, 1 << 20) {
                        let Ok((h, body)) = decode_request(frame.freeze()) else {
                            return;
                        };
                        let id = h.correlation_id;
                        let v = h.request_api_version;
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
                            _ => encode_response(
                                &mut out,
                                ApiKey::Metadata,
                                id,
                                &MetadataResponse::default(),
                                v,
                            ),
                        };
                        if r.is_err() {
                            return;
                        }
                    }
                    if !out.is_empty() {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Runs `in_flight` concurrent request loops on one connection for
/// `RUN_FOR`; returns requests per second.
async fn measure(addr: &str, in_flight: usize) -> Result<f64, BoxError> {
    let opts = ConnectionOptions {
        max_in_flight: in_flight,
        ..Default::default()
    };
    let conn = Connection::connect(addr, opts).await?;
    let done = Arc::new(AtomicU64::new(0));
    let req = MetadataRequest {
        topics: Some(vec![]),
        ..Default::default()
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (conn, done, req) = (conn.clone(), done.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN_FOR {
                conn.send(&req).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), klamm::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    conn.close().await;
    Ok(done.load(Ordering::Relaxed) as f64 / secs)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let mut targets = vec![("in-process echo peer".to_string(), echo_peer().await?)];
    if let Ok(b) = std::env::var("KLAMM_BROKERS") {
        let first = b.split(',').next().unwrap_or_default().to_string();
        targets.push((format!("broker {first}"), first));
    }
    println!("| peer | in flight | Metadata requests/s |");
    println!("|---|---:|---:|");
    for (name, addr) in &targets {
        for in_flight in [1, 8, 64] {
            let rps = measure(addr, in_flight).await?;
            println!("| {name} | {in_flight} | {rps:.0} |");
        }
    }
    Ok(())
}
