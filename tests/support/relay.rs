//! A TCP relay in front of the test broker that the test can cut: the
//! client reaches the broker only through it (Metadata answers are
//! rewritten to name the relay), and chosen Produce requests reach the
//! broker but have their connection dropped before the answer comes back,
//! so the producer must retry records the broker already wrote.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use klamm::protocol::frame::{decode_response_to, encode_response, split_frame};
use klamm::protocol::messages::{ApiKey, MetadataRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Relay {
    pub addr: String,
    /// Produce requests seen so far.
    pub produce_requests: Arc<AtomicUsize>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
}

impl Relay {
    /// Relays to `upstream`; the Produce requests numbered in `cut_at`
    /// (1-based, over all connections) are forwarded, then their
    /// connection is dropped unanswered.
    pub async fn start(upstream: String, cut_at: Vec<usize>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let produce_requests = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let cut_at: Arc<HashSet<usize>> = Arc::new(cut_at.into_iter().collect());
        let (seen, cut) = (Arc::clone(&produce_requests), Arc::clone(&cuts));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(
                    client,
                    broker,
                    i32::from(port),
                    Arc::clone(&seen),
                    Arc::clone(&cut),
                    Arc::clone(&cut_at),
                ));
            }
        });
        Relay {
            addr: format!("127.0.0.1:{port}"),
            produce_requests,
            cuts,
        }
    }
}

async fn relay(
    client: TcpStream,
    broker: TcpStream,
    port: i32,
    seen: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
    cut_at: Arc<HashSet<usize>>,
) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut broker_rd, mut broker_wr) = broker.into_split();
    // correlation id -> Metadata version, for the answers to rewrite.
    let metadata: Arc<Mutex<HashMap<i32, i16>>> = Arc::default();
    let (cut_tx, mut cut_rx) = tokio::sync::watch::channel(false);
    let md = Arc::clone(&metadata);
    let upward = async move {
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 64 << 20) {
                Ok(Some(f)) => f,
                Ok(None) => match client_rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
                Err(_) => return,
            };
            if frame.len() < 8 {
                return;
            }
            let key = i16::from_be_bytes([frame[0], frame[1]]);
            let version = i16::from_be_bytes([frame[2], frame[3]]);
            let id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            if key == ApiKey::Metadata.code() {
                md.lock().unwrap().insert(id, version);
            }
            let mut out = BytesMut::with_capacity(frame.len() + 4);
            out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
            out.extend_from_slice(&frame);
            if broker_wr.write_all(&out).await.is_err() {
                return;
            }
            if key == ApiKey::Produce.code() {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                if cut_at.contains(&n) {
                    cuts.fetch_add(1, Ordering::SeqCst);
                    let _ = cut_tx.send(true);
                    return;
                }
            }
        }
    };
    let downward = async move {
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 64 << 20) {
                Ok(Some(f)) => f,
                Ok(None) => tokio::select! {
                    r = broker_rd.read_buf(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                    _ = cut_rx.changed() => return,
                },
                Err(_) => return,
            };
            if *cut_rx.borrow() {
                return;
            }
            let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let version = metadata.lock().unwrap().remove(&id);
            let out = match version {
                Some(v) => {
                    let (_, mut resp) =
                        decode_response_to::<MetadataRequest>(Bytes::from(frame), v)
                            .expect("metadata answer");
                    for b in &mut resp.brokers {
                        b.port = port;
                    }
                    let mut out = BytesMut::new();
                    encode_response(&mut out, ApiKey::Metadata, id, &resp, v).expect("encode");
                    out
                }
                None => {
                    let mut out = BytesMut::with_capacity(frame.len() + 4);
                    out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
                    out.extend_from_slice(&frame);
                    out
                }
            };
            if client_wr.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends both: the sockets drop here.
    tokio::select! {
        _ = upward => {}
        _ = downward => {}
    }
}
