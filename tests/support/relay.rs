//! A TCP relay in front of the test broker. The client reaches the broker
//! only through it (Metadata answers are rewritten to name the relay), and
//! the relay
//!
//! - records every request it relays, decoded with klamm's protocol layer,
//!   and the answer to it (the [`Log`]), so a test can check what a client
//!   really put on the wire and what the broker really said;
//! - can cut chosen Produce requests: forwarded, then their connection is
//!   dropped before the answer comes back, so the producer must retry
//!   records the broker may have written ([`Cut::Sent`]), or dropped only
//!   once the broker's answer came back, which it swallows, so the records
//!   were certainly written and the producer cannot know ([`Cut::Answered`]);
//! - can hold chosen Produce requests: neither forwarded nor answered, the
//!   connection left open, so the records are never written and the
//!   producer hears nothing until its own timeouts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use klamm::protocol::frame::{
    decode_request, decode_response, decode_response_to, encode_response, split_frame,
};
use klamm::protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, ProduceRequest, ProduceResponse,
    RequestBody, RequestHeader, ResponseBody,
};
use klamm::protocol::records::{Batch, DecodeOptions, decode_record_set};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the relay does with chosen Produce requests, numbered from 1 over
/// all connections in the order they reach the relay.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Forwarded, then the connection is dropped unanswered.
    pub cut_at: Vec<usize>,
    /// Forwarded; nothing more is forwarded on that connection, and when
    /// the broker's answer comes back it is swallowed and the connection
    /// dropped.
    pub cut_after_answer_at: Vec<usize>,
    /// Swallowed: not forwarded, not answered, the connection kept open.
    pub hold_at: Vec<usize>,
}

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

/// A Produce answer the relay swallowed ([`Cut::Answered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swallowed {
    /// The Produce request's number (1-based, over all connections).
    pub number: usize,
    /// Records in the request, over all its batches.
    pub records: usize,
    /// The answer's error code per partition (0: written).
    pub error_codes: Vec<i16>,
}

/// What became of a relayed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Forwarded to the broker.
    Forwarded,
    /// Forwarded, then its connection was dropped before any answer.
    Cut,
    /// Forwarded, answered by the broker, the answer swallowed and the
    /// connection dropped.
    CutAfterAnswer,
    /// Never forwarded (and never answered).
    Held,
}

/// One request the relay saw, and the answer it passed back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Which client connection (numbered from 1 in accept order).
    pub connection: usize,
    pub header: RequestHeader,
    pub request: RequestBody,
    /// The broker's answer, once it has come back through the relay.
    pub response: Option<ResponseBody>,
    pub fate: Fate,
}

impl Exchange {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn produce(&self) -> Option<&ProduceRequest> {
        match &self.request {
            RequestBody::Produce(r) => Some(r),
            _ => None,
        }
    }

    pub fn produce_response(&self) -> Option<&ProduceResponse> {
        match &self.response {
            Some(ResponseBody::Produce(r)) => Some(r),
            _ => None,
        }
    }

    pub fn fetch(&self) -> Option<&FetchRequest> {
        match &self.request {
            RequestBody::Fetch(r) => Some(r),
            _ => None,
        }
    }

    pub fn fetch_response(&self) -> Option<&FetchResponse> {
        match &self.response {
            Some(ResponseBody::Fetch(r)) => Some(r),
            _ => None,
        }
    }
}

/// A frame exactly as it crossed the relay (without its size prefix),
/// before any rewriting: a client's request or a broker's answer.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Which client connection.
    pub connection: usize,
    /// `true` for a request, `false` for an answer.
    pub request: bool,
    /// The API and version (an answer's are its request's).
    pub api: ApiKey,
    pub version: i16,
    pub bytes: Bytes,
}

/// Every request relayed so far, in the order the relay read them.
#[derive(Debug)]
pub struct Log {
    entries: Mutex<Vec<Exchange>>,
    /// Every frame both ways, as it came.
    raw: Mutex<Vec<RawFrame>>,
    /// Bumped on every change, so a test can wait for an event.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Log {
    fn new() -> Log {
        Log {
            entries: Mutex::new(Vec::new()),
            raw: Mutex::new(Vec::new()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Exchange>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, e: Exchange) -> usize {
        let mut entries = self.lock();
        entries.push(e);
        let i = entries.len() - 1;
        drop(entries);
        self.changed.send_modify(|n| *n += 1);
        i
    }

    fn raw(&self, f: RawFrame) {
        self.raw.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    /// Every frame that crossed the relay so far, both ways, as it came.
    pub fn raw_frames(&self) -> Vec<RawFrame> {
        self.raw.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn answer(&self, i: usize, response: ResponseBody) {
        if let Some(e) = self.lock().get_mut(i) {
            e.response = Some(response);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn set_fate(&self, i: usize, fate: Fate) {
        if let Some(e) = self.lock().get_mut(i) {
            e.fate = fate;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Exchange> {
        self.lock().clone()
    }

    /// The recorded exchanges of one API.
    pub fn of(&self, api: ApiKey) -> Vec<Exchange> {
        self.lock()
            .iter()
            .filter(|e| e.request.api_key() == api)
            .cloned()
            .collect()
    }

    /// How many exchanges are recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Waits (up to `within`) until `f` finds what it looks for in the
    /// log; it is asked again after every change. Panics naming `what`
    /// when time runs out.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&[Exchange]) -> Option<T>,
    ) -> T {
        let mut rx = self.changed.subscribe();
        let look = async {
            loop {
                rx.borrow_and_update();
                if let Some(v) = f(&self.lock()) {
                    return v;
                }
                if rx.changed().await.is_err() {
                    panic!("the relay's log went away while waiting for {what}");
                }
            }
        };
        match tokio::time::timeout(within, look).await {
            Ok(v) => v,
            Err(_) => panic!(
                "the relay did not see {what} within {within:?}; it saw {} requests",
                self.len()
            ),
        }
    }
}

pub struct Relay {
    pub addr: String,
    /// Produce requests seen so far.
    pub produce_requests: Arc<AtomicUsize>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
    /// Produce requests held so far.
    pub holds: Arc<AtomicUsize>,
    /// Every request relayed, decoded, with its answer.
    pub log: Arc<Log>,
    /// The answers swallowed so far ([`Cut::Answered`]).
    pub swallowed: Arc<Mutex<Vec<Swallowed>>>,
}

/// What every connection of one relay shares.
struct Shared {
    upstream: String,
    port: i32,
    rules: Rules,
    produce_requests: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
    holds: Arc<AtomicUsize>,
    log: Arc<Log>,
    swallowed: Arc<Mutex<Vec<Swallowed>>>,
    connections: AtomicUsize,
}

impl Relay {
    /// Relays to `upstream`; the Produce requests numbered in `cut_at`
    /// (1-based, over all connections) are forwarded, then their
    /// connection is dropped unanswered.
    pub async fn start(upstream: String, cut_at: Vec<usize>) -> Relay {
        Self::with_rules(
            upstream,
            Rules {
                cut_at,
                ..Rules::default()
            },
        )
        .await
    }

    /// Relays to `upstream`; the Produce requests numbered in `cut_at` are
    /// forwarded and their connection dropped as `how` says.
    pub async fn start_with(upstream: String, cut_at: Vec<usize>, how: Cut) -> Relay {
        let rules = match how {
            Cut::Sent => Rules {
                cut_at,
                ..Rules::default()
            },
            Cut::Answered => Rules {
                cut_after_answer_at: cut_at,
                ..Rules::default()
            },
        };
        Self::with_rules(upstream, rules).await
    }

    /// Records in the requests whose answers were swallowed, counting only
    /// answers that said every batch was written.
    pub fn records_written_unacknowledged(&self) -> usize {
        self.swallowed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.error_codes.iter().all(|&c| c == 0))
            .map(|s| s.records)
            .sum()
    }

    /// Relays to `upstream`, recording everything, with `rules` for chosen
    /// Produce requests.
    pub async fn with_rules(upstream: String, rules: Rules) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            upstream,
            port: i32::from(port),
            rules,
            produce_requests: Arc::new(AtomicUsize::new(0)),
            cuts: Arc::new(AtomicUsize::new(0)),
            holds: Arc::new(AtomicUsize::new(0)),
            log: Arc::new(Log::new()),
            swallowed: Arc::default(),
            connections: AtomicUsize::new(0),
        });
        let relay = Relay {
            addr: format!("127.0.0.1:{port}"),
            produce_requests: Arc::clone(&shared.produce_requests),
            cuts: Arc::clone(&shared.cuts),
            holds: Arc::clone(&shared.holds),
            log: Arc::clone(&shared.log),
            swallowed: Arc::clone(&shared.swallowed),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = TcpStream::connect(&shared.upstream).await else {
                    continue;
                };
                let n = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(pump(client, broker, n, Arc::clone(&shared)));
            }
        });
        relay
    }
}

/// A request on its way to the broker, as the answer must be read.
struct Pending {
    api: Option<ApiKey>,
    version: i16,
    /// Its place in the log, if it was recorded.
    logged: Option<usize>,
    /// A Produce request whose answer is to be swallowed: its number and
    /// record count.
    swallow: Option<(usize, usize)>,
}

async fn pump(client: TcpStream, broker: TcpStream, connection: usize, shared: Arc<Shared>) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut broker_rd, mut broker_wr) = broker.into_split();
    // correlation id -> what the answer answers.
    let pending: Arc<Mutex<HashMap<i32, Pending>>> = Arc::default();
    let (cut_tx, mut cut_rx) = tokio::sync::watch::channel(false);
    let up_pending = Arc::clone(&pending);
    let up_shared = Arc::clone(&shared);
    let upward = async move {
        let shared = up_shared;
        let cut_at: HashSet<usize> = shared.rules.cut_at.iter().copied().collect();
        let hold_at: HashSet<usize> = shared.rules.hold_at.iter().copied().collect();
        let answer_cut_at: HashSet<usize> =
            shared.rules.cut_after_answer_at.iter().copied().collect();
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 64 << 20) {
                Ok(Some(f)) => f.freeze(),
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
            if let Some(api) = ApiKey::from_code(key) {
                shared.log.raw(RawFrame {
                    connection,
                    request: true,
                    api,
                    version,
                    bytes: frame.clone(),
                });
            }
            let logged = match decode_request(frame.clone()) {
                Ok((header, request)) => Some(shared.log.push(Exchange {
                    connection,
                    header,
                    request,
                    response: None,
                    fate: Fate::Forwarded,
                })),
                Err(e) => {
                    eprintln!("relay: request (api {key} v{version}) not decoded: {e}");
                    None
                }
            };
            let mut fate = Fate::Forwarded;
            let mut swallow = None;
            if key == ApiKey::Produce.code() {
                let n = shared.produce_requests.fetch_add(1, Ordering::SeqCst) + 1;
                if hold_at.contains(&n) {
                    fate = Fate::Held;
                } else if cut_at.contains(&n) {
                    fate = Fate::Cut;
                } else if answer_cut_at.contains(&n) {
                    fate = Fate::CutAfterAnswer;
                    swallow = Some((n, produce_records(&frame)));
                }
            }
            if let (Some(i), true) = (logged, fate != Fate::Forwarded) {
                shared.log.set_fate(i, fate);
            }
            if fate == Fate::Held {
                shared.holds.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            up_pending.lock().unwrap().insert(
                id,
                Pending {
                    api: ApiKey::from_code(key),
                    version,
                    logged,
                    swallow,
                },
            );
            let mut out = BytesMut::with_capacity(frame.len() + 4);
            out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
            out.extend_from_slice(&frame);
            if broker_wr.write_all(&out).await.is_err() {
                return;
            }
            if fate == Fate::Cut {
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                let _ = cut_tx.send(true);
                return;
            }
            if fate == Fate::CutAfterAnswer {
                // Forward nothing more: what the client sends from here on
                // is read and dropped until it closes its end, so the
                // relay's socket never closes with unread bytes (which
                // would send a reset, and a reset can discard answers
                // already relayed but not yet read by the client).
                let mut scratch = BytesMut::with_capacity(64 << 10);
                loop {
                    scratch.clear();
                    match client_rd.read_buf(&mut scratch).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            }
        }
    };
    let port = shared.port;
    let log = Arc::clone(&shared.log);
    let down_shared = Arc::clone(&shared);
    let downward = async move {
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 64 << 20) {
                Ok(Some(f)) => f.freeze(),
                Ok(None) => tokio::select! {
                    r = broker_rd.read_buf(&mut buf) => match r {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => continue,
                    },
                    _ = cut_rx.changed() => return false,
                },
                Err(_) => return false,
            };
            if *cut_rx.borrow() {
                return false;
            }
            if frame.len() < 4 {
                return false;
            }
            let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let asked = pending.lock().unwrap().remove(&id);
            if let Some(Pending {
                api: Some(api),
                version,
                ..
            }) = &asked
            {
                log.raw(RawFrame {
                    connection,
                    request: false,
                    api: *api,
                    version: *version,
                    bytes: frame.clone(),
                });
            }
            if let Some(Pending {
                api: Some(api),
                version,
                logged: Some(i),
                ..
            }) = &asked
            {
                match decode_response(frame.clone(), *api, *version) {
                    Ok((_, body)) => log.answer(*i, body),
                    Err(e) => eprintln!("relay: {api:?} v{version} answer not decoded: {e}"),
                }
            }
            if let Some(Pending {
                version,
                swallow: Some((number, records)),
                ..
            }) = &asked
            {
                let (_, resp) = decode_response_to::<ProduceRequest>(frame.clone(), *version)
                    .expect("Produce answer");
                let error_codes = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                    .collect();
                down_shared
                    .swallowed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Swallowed {
                        number: *number,
                        records: *records,
                        error_codes,
                    });
                down_shared.cuts.fetch_add(1, Ordering::SeqCst);
                // End the client's side cleanly: it reads every answer
                // relayed before this one, then the end of the stream.
                let _ = client_wr.shutdown().await;
                return true;
            }
            let out = match asked {
                Some(Pending {
                    api: Some(ApiKey::Metadata),
                    version,
                    ..
                }) => rewrite_metadata(frame, id, version, port),
                Some(Pending {
                    api: Some(ApiKey::FindCoordinator),
                    version,
                    ..
                }) => rewrite_find_coordinator(frame, id, version, port),
                _ => {
                    let mut out = BytesMut::with_capacity(frame.len() + 4);
                    out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
                    out.extend_from_slice(&frame);
                    out
                }
            };
            if client_wr.write_all(&out).await.is_err() {
                return false;
            }
        }
    };
    // Either side ending ends both: the sockets drop here. After a
    // swallowed answer the upward half drains the client until it closes
    // (bounded), so the close is orderly.
    tokio::pin!(upward, downward);
    tokio::select! {
        _ = &mut upward => {}
        swallowed = &mut downward => {
            if swallowed {
                let _ = tokio::time::timeout(Duration::from_secs(10), upward).await;
            }
        }
    }
}

/// The records in a Produce request frame (without its size prefix).
fn produce_records(frame: &Bytes) -> usize {
    let (_, body) = decode_request(frame.clone()).expect("Produce request");
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
                    Batch::Legacy(_) => panic!("a legacy message set in a Produce request"),
                }
            }
        }
    }
    n
}

/// A FindCoordinator answer naming the relay instead of the broker, so
/// that coordinator traffic goes through the relay too.
fn rewrite_find_coordinator(frame: Bytes, id: i32, version: i16, port: i32) -> BytesMut {
    let (_, mut resp) =
        decode_response_to::<klamm::protocol::messages::FindCoordinatorRequest>(frame, version)
            .expect("FindCoordinator answer");
    if resp.port > 0 {
        resp.port = port;
    }
    for c in &mut resp.coordinators {
        if c.port > 0 {
            c.port = port;
        }
    }
    let mut out = BytesMut::new();
    encode_response(&mut out, ApiKey::FindCoordinator, id, &resp, version).expect("encode");
    out
}

/// A Metadata answer with every broker's port replaced by the relay's.
fn rewrite_metadata(frame: Bytes, id: i32, version: i16, port: i32) -> BytesMut {
    let (_, mut resp) =
        decode_response_to::<MetadataRequest>(frame, version).expect("metadata answer");
    for b in &mut resp.brokers {
        b.port = port;
    }
    let mut out = BytesMut::new();
    encode_response(&mut out, ApiKey::Metadata, id, &resp, version).expect("encode");
    out
}
