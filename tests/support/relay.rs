//! A TCP relay in front of the test broker that the test can cut: the
//! client reaches the broker only through it (Metadata answers are
//! rewritten to name the relay), and chosen Produce requests reach the
//! broker but have their connection dropped before the answer comes back,
//! so the producer must retry records the broker may have written
//! ([`Cut::Sent`]) or certainly wrote ([`Cut::Answered`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use klamm::protocol::frame::{decode_request, decode_response_to, encode_response, split_frame};
use klamm::protocol::messages::{ApiKey, MetadataRequest, ProduceRequest, RequestBody};
use klamm::protocol::records::{Batch, DecodeOptions, decode_record_set};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// When the relay drops the connection of a chosen Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Right after forwarding the request: the broker may or may not have
    /// written it by the time the client notices.
    Sent,
    /// After the broker's answer to it came back: the answer is dropped
    /// with the connection, so the broker has written the batches (the
    /// answer says so: see [`Swallowed`]) and the client cannot know.
    /// Requests the client sends after it on that connection are not
    /// forwarded, so only its batches are written unacknowledged.
    Answered,
}

/// A Produce answer the relay dropped ([`Cut::Answered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swallowed {
    /// The Produce request's number (1-based, over all connections).
    pub number: usize,
    /// Records in the request, over all its batches.
    pub records: usize,
    /// The answer's error code per partition (0: written).
    pub error_codes: Vec<i16>,
}

pub struct Relay {
    pub addr: String,
    /// Produce requests seen so far.
    pub produce_requests: Arc<AtomicUsize>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
    /// The answers dropped so far ([`Cut::Answered`]).
    pub swallowed: Arc<Mutex<Vec<Swallowed>>>,
}

/// What every relayed connection shares.
struct Shared {
    port: i32,
    how: Cut,
    seen: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
    cut_at: HashSet<usize>,
    swallowed: Arc<Mutex<Vec<Swallowed>>>,
}

impl Relay {
    /// Relays to `upstream`; the Produce requests numbered in `cut_at`
    /// (1-based, over all connections) are forwarded, then their
    /// connection is dropped unanswered.
    pub async fn start(upstream: String, cut_at: Vec<usize>) -> Relay {
        Relay::start_with(upstream, cut_at, Cut::Sent).await
    }

    /// Relays to `upstream`; the Produce requests numbered in `cut_at`
    /// are forwarded and their connection dropped as `how` says.
    pub async fn start_with(upstream: String, cut_at: Vec<usize>, how: Cut) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let produce_requests = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let swallowed = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            port: i32::from(port),
            how,
            seen: Arc::clone(&produce_requests),
            cuts: Arc::clone(&cuts),
            cut_at: cut_at.into_iter().collect(),
            swallowed: Arc::clone(&swallowed),
        });
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, broker, Arc::clone(&shared)));
            }
        });
        Relay {
            addr: format!("127.0.0.1:{port}"),
            produce_requests,
            cuts,
            swallowed,
        }
    }

    /// Records in the requests whose answers were dropped, counting only
    /// answers that said every batch was written.
    pub fn records_written_unacknowledged(&self) -> usize {
        self.swallowed
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.error_codes.iter().all(|&c| c == 0))
            .map(|s| s.records)
            .sum()
    }
}

/// A Produce request whose answer the relay drops: its number, version
/// and records.
struct Doomed {
    number: usize,
    version: i16,
    records: usize,
}

/// The records in a Produce request frame (without its size prefix).
fn produce_records(frame: &[u8]) -> usize {
    let (_, body) = decode_request(Bytes::copy_from_slice(frame)).expect("Produce request");
    let RequestBody::Produce(req) = body else {
        panic!("not a Produce request");
    };
    let mut n = 0;
    for t in &req.topic_data {
        for p in &t.partition_data {
            let data = p.records.clone().unwrap_or_default();
            let set = decode_record_set(data, &DecodeOptions::default()).expect("record set");
            for b in set.batches {
                match b {
                    Batch::V2(b) => n += b.records.len(),
                    _ => panic!("a legacy message set in a Produce request"),
                }
            }
        }
    }
    n
}

async fn relay(client: TcpStream, broker: TcpStream, shared: Arc<Shared>) {
    let port = shared.port;
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut broker_rd, mut broker_wr) = broker.into_split();
    // correlation id -> Metadata version, for the answers to rewrite.
    let metadata: Arc<Mutex<HashMap<i32, i16>>> = Arc::default();
    // correlation id -> the request to drop the answer of (Cut::Answered).
    let doomed: Arc<Mutex<HashMap<i32, Doomed>>> = Arc::default();
    let (cut_tx, mut cut_rx) = tokio::sync::watch::channel(false);
    let md = Arc::clone(&metadata);
    let up_shared = Arc::clone(&shared);
    let up_doomed = Arc::clone(&doomed);
    let upward = async move {
        let shared = up_shared;
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
            let number = (key == ApiKey::Produce.code())
                .then(|| shared.seen.fetch_add(1, Ordering::SeqCst) + 1);
            let cut_here = number.is_some_and(|n| shared.cut_at.contains(&n));
            if cut_here && shared.how == Cut::Answered {
                let records = produce_records(&frame);
                let n = number.unwrap_or_default();
                up_doomed.lock().unwrap().insert(
                    id,
                    Doomed {
                        number: n,
                        version,
                        records,
                    },
                );
            }
            let mut out = BytesMut::with_capacity(frame.len() + 4);
            out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
            out.extend_from_slice(&frame);
            if broker_wr.write_all(&out).await.is_err() {
                return;
            }
            if cut_here {
                match shared.how {
                    Cut::Sent => {
                        shared.cuts.fetch_add(1, Ordering::SeqCst);
                        let _ = cut_tx.send(true);
                        return;
                    }
                    // Forward nothing more: the connection ends when the
                    // answer comes back (the downward half returns).
                    Cut::Answered => std::future::pending::<()>().await,
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
            let answered = doomed.lock().unwrap().remove(&id);
            if let Some(Doomed {
                number,
                version,
                records,
            }) = answered
            {
                let (_, resp) = decode_response_to::<ProduceRequest>(Bytes::from(frame), version)
                    .expect("Produce answer");
                let error_codes = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                    .collect();
                shared.swallowed.lock().unwrap().push(Swallowed {
                    number,
                    records,
                    error_codes,
                });
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
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
