//! One connection to one broker.
//!
//! A single task owns the socket. Callers hold cheap [`Connection`] handles
//! and send encoded requests to the task over a channel, each with its own
//! reply channel. The task gives every request a correlation id, writes
//! whole frames from its own queue (so a caller that drops its future can
//! never leave half a frame on the wire), reads frames, and hands each
//! response to the request with the same id.
//!
//! ```text
//!  caller ──encode──▶ [channel] ──▶ task: id ▶ out queue ──write──▶ socket
//!  caller ◀─decode─── [oneshot] ◀── task: pending[id] ◀──read─────┘
//! ```
//!
//! Faults close the connection: an I/O error, a malformed frame, a frame
//! over the size limit or a response to no request fails every in-flight
//! request with a retriable [`Error::Disconnected`], or with a
//! non-retriable [`Error::Tls`] when the TLS layer failed (a TLS 1.3
//! broker that refuses the client certificate says so after the
//! handshake, on the first read). A request that is not
//! answered within its timeout fails with [`Error::Timeout`] and closes the
//! connection too, as the Java client does: in a pipelined connection a
//! missing answer means the connection can no longer be trusted.
//!
//! # References
//! - Kafka protocol guide, "Network" (size-delimited frames, correlation
//!   ids, in-order responses)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedRwLockWriteGuard, RwLock, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use super::metrics::MetricsHandle;
use super::sasl::{self, SaslMechanism, SaslSession};
use super::socket::{SocketOptions, tcp_connect};
use super::tls::TlsSettings;
use super::versions::ApiVersions;
use crate::error::{Error, Result};
use crate::protocol::api_versions::{ApiVersionsAnswer, decode_api_versions_response};
use crate::protocol::codec::Message;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::frame::{RequestFrame, decode_response_to, encode_request_parts};
use crate::protocol::messages::{ApiKey, ApiVersionsRequest, Request, ResponseHeader};

mod task;

use task::Task;

const UNSUPPORTED_VERSION: i16 = ErrorCode::UNSUPPORTED_VERSION.code();
/// The size that starts every frame, in bytes (frames as counted in
/// metrics and traces include it: they are the bytes on the wire).
const FRAME_SIZE_LEN: usize = 4;
/// Where the API version sits in every request frame: after the size and
/// the API key (2 bytes).
const API_VERSION_AT: usize = FRAME_SIZE_LEN + 2;
/// Where the correlation id sits in every request frame: after the API
/// version (2 bytes).
const CORRELATION_ID_AT: usize = API_VERSION_AT + 2;

/// Settings for one broker connection.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// The client id sent in every request header.
    pub client_id: Option<String>,
    /// Software name and version sent in ApiVersions v3+ (KIP-511).
    pub client_software: (String, String),
    /// Time allowed for the TCP connect and, over TLS, the handshake.
    /// Default 10 s (the Java client's `socket.connection.setup.timeout.ms`;
    /// a [`Client`](crate::client::Client) grows it per broker over failed
    /// attempts, up to `socket.connection.setup.timeout.max.ms`).
    pub connect_timeout: Duration,
    /// Time allowed for each request's answer. Default 30 s (Java's
    /// `request.timeout.ms`).
    pub request_timeout: Duration,
    /// Requests in flight at once on this connection. Default 5 (Java's
    /// `max.in.flight.requests.per.connection`).
    pub max_in_flight: usize,
    /// The largest response frame accepted. Default 100 MiB.
    pub max_frame_size: usize,
    /// Whether to negotiate versions with ApiVersions on connect. Default
    /// true; without it every request must name its version.
    pub negotiate_versions: bool,
    /// Where to report counters and latencies. Default none.
    pub metrics: Option<MetricsHandle>,
    /// SASL authentication, run right after version negotiation and
    /// before [`Connection::connect`] returns. Default `None` (no SASL).
    /// See [`sasl`](super::sasl).
    pub sasl: Option<SaslMechanism>,
    /// Re-authenticate before the SASL session lifetime the broker
    /// announces runs out (KIP-368). Default true, as the Java client.
    pub sasl_reauthenticate: bool,
    /// Options of the TCP socket (not used by [`Connection::connect_via`],
    /// whose connector makes the stream). Default [`SocketOptions::default`].
    pub socket: SocketOptions,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            client_id: Some("klamm".to_string()),
            client_software: ("klamm".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 5,
            max_frame_size: crate::protocol::frame::DEFAULT_MAX_FRAME_SIZE,
            negotiate_versions: true,
            metrics: None,
            sasl: None,
            sasl_reauthenticate: true,
            socket: SocketOptions::default(),
        }
    }
}

enum Command {
    Send {
        frame: RequestFrame,
        api: ApiKey,
        expects_response: bool,
        timeout: Duration,
        reply: oneshot::Sender<Result<Bytes>>,
    },
    Close,
}

struct Shared {
    broker: String,
    metrics: Option<MetricsHandle>,
    client_id: Option<String>,
    request_timeout: Duration,
    closed: AtomicBool,
    /// Why the task stopped (set before `closed`): `(is_tls, reason)`, so
    /// requests that arrive after the end fail with the real cause.
    stop_reason: Mutex<Option<(bool, String)>>,
    /// Held shared while a request is queued, exclusively during a SASL
    /// exchange, so that no other request goes out between a (re-)
    /// authentication's SaslHandshake and its last SaslAuthenticate.
    gate: Arc<RwLock<()>>,
    /// The last successful SASL authentication.
    sasl: Mutex<Option<SaslSession>>,
    /// Successful SASL authentications: the first, then one per KIP-368
    /// re-authentication.
    sasl_authentications: AtomicU64,
}

/// A handle to one broker connection; clone it freely. Requests from all
/// clones share the socket and are pipelined.
#[derive(Clone)]
pub struct Connection {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    versions: Arc<ApiVersions>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.shared.broker)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects over TCP to `addr` (`host:port`) and negotiates versions.
    pub async fn connect(addr: &str, opts: ConnectionOptions) -> Result<Connection> {
        let stream = tcp_connect(addr, opts.connect_timeout, &opts.socket)
            .instrument(tracing::debug_span!("connect", broker = addr))
            .await?;
        Self::from_stream(stream, addr, opts).await
    }

    /// Connects to `addr` through `connector` (in place of TCP, within the
    /// connect timeout) and negotiates versions.
    pub async fn connect_via(
        connector: &dyn super::Connector,
        addr: &str,
        opts: ConnectionOptions,
    ) -> Result<Connection> {
        let stream = match tokio::time::timeout(opts.connect_timeout, connector.connect(addr)).await
        {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("connecting to {addr}"),
                    after: opts.connect_timeout,
                });
            }
            Ok(Err(e)) => {
                return Err(Error::Io {
                    context: format!("connecting to {addr}"),
                    source: e,
                });
            }
            Ok(Ok(s)) => s,
        };
        Self::from_stream(stream, addr, opts).await
    }

    /// Connects over TCP to `addr` (`host:port`), runs the TLS handshake
    /// with `tls`, and negotiates versions. The TCP connect and the
    /// handshake together must finish within the connect timeout.
    ///
    /// A certificate the settings do not accept (not trusted, not matching
    /// the broker's name), or a broker that refuses ours, fails with
    /// [`Error::Tls`], which is not retriable.
    ///
    /// ```no_run
    /// use klamm::config::TlsConfig;
    /// use klamm::net::{Connection, ConnectionOptions, TlsSettings};
    ///
    /// # async fn run() -> klamm::Result<()> {
    /// let tls = TlsSettings::from_config(&TlsConfig {
    ///     ca_location: Some("ca.pem".into()),
    ///     certificate_location: Some("client.pem".into()),
    ///     key_location: Some("client.key".into()),
    ///     ..TlsConfig::default()
    /// })?;
    /// let conn = Connection::connect_tls("localhost:9093", ConnectionOptions::default(), &tls).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_tls(
        addr: &str,
        opts: ConnectionOptions,
        tls: &TlsSettings,
    ) -> Result<Connection> {
        let started = Instant::now();
        let stream = async {
            let tcp = tcp_connect(addr, opts.connect_timeout, &opts.socket).await?;
            let left = opts.connect_timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, tls.handshake(addr, tcp)).await {
                Err(_) => Err(Error::Timeout {
                    what: format!("connecting to {addr} (TCP and TLS handshake)"),
                    after: opts.connect_timeout,
                }),
                Ok(r) => r,
            }
        }
        .instrument(tracing::debug_span!("connect", broker = addr, tls = true))
        .await?;
        Self::from_stream(stream, addr, opts).await
    }

    /// Runs the protocol over an established stream (plain TCP, TLS, a test
    /// pipe): spawns the task that owns it and negotiates versions.
    pub async fn from_stream<S>(
        stream: S,
        broker: &str,
        opts: ConnectionOptions,
    ) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(256);
        let shared = Arc::new(Shared {
            broker: broker.to_string(),
            metrics: opts.metrics.clone(),
            client_id: opts.client_id.clone(),
            request_timeout: opts.request_timeout,
            closed: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            gate: Arc::new(RwLock::new(())),
            sasl: Mutex::new(None),
            sasl_authentications: AtomicU64::new(0),
        });
        let task = Task {
            shared: shared.clone(),
            max_in_flight: opts.max_in_flight.max(1),
            max_frame_size: opts.max_frame_size,
        };
        if let Some(m) = &opts.metrics {
            m.connected(broker);
        }
        tokio::spawn(task.run(stream, rx));
        let mut conn = Connection {
            tx,
            shared,
            versions: Arc::new(ApiVersions::default()),
        };
        if opts.negotiate_versions {
            let versions = conn.negotiate(&opts.client_software).await;
            match versions {
                Ok(v) => conn.versions = Arc::new(v),
                Err(e) => {
                    conn.close().await;
                    return Err(e);
                }
            }
        }
        if let Some(mech) = &opts.sasl {
            match sasl::authenticate(&conn, mech).await {
                Ok(session) => {
                    if opts.sasl_reauthenticate {
                        sasl::spawn_reauthentication(&conn, mech.clone(), &session);
                    }
                }
                Err(e) => {
                    conn.close().await;
                    return Err(e);
                }
            }
        }
        tracing::debug!(broker, "connected");
        Ok(conn)
    }

    /// Asks the broker which versions it supports, stepping down when it
    /// answers UNSUPPORTED_VERSION (with the version it advertises for
    /// ApiVersions, or v0), as Kafka brokers expect of clients.
    async fn negotiate(&self, software: &(String, String)) -> Result<ApiVersions> {
        let mut version = crate::net::client_max(ApiKey::ApiVersions);
        loop {
            let req = ApiVersionsRequest {
                client_software_name: if version >= 3 {
                    software.0.clone()
                } else {
                    String::new()
                },
                client_software_version: if version >= 3 {
                    software.1.clone()
                } else {
                    String::new()
                },
                ..Default::default()
            };
            let frame = self.encode(&req, version)?;
            let mut resp = self
                .roundtrip(frame, ApiKey::ApiVersions, true, None)
                .await?;
            // ApiVersions responses always use response header v0.
            ResponseHeader::decode(&mut resp, 0)?;
            let answer = decode_api_versions_response(&mut resp, version)?;
            let next = match &answer {
                ApiVersionsAnswer::Answer(r) if r.error_code == 0 => {
                    return Ok(ApiVersions::from_response(r));
                }
                ApiVersionsAnswer::Answer(r) => Err(r.error_code),
                ApiVersionsAnswer::Unsupported { .. } => {
                    answer.retry_version(version).ok_or(UNSUPPORTED_VERSION)
                }
            };
            match next {
                Ok(next) => {
                    tracing::debug!(broker = %self.shared.broker, from = version, to = next, "ApiVersions unsupported; retrying");
                    version = next;
                }
                Err(code) => {
                    return Err(Error::Broker {
                        api: ApiKey::ApiVersions,
                        code: code.into(),
                        context: None,
                    });
                }
            }
        }
    }

    /// The broker address this connection talks to.
    pub fn broker(&self) -> &str {
        &self.shared.broker
    }

    /// The versions negotiated with the broker (empty when negotiation was
    /// turned off).
    pub fn api_versions(&self) -> &ApiVersions {
        &self.versions
    }

    /// The SASL session of the last successful (re-)authentication on this
    /// connection, if any.
    pub fn sasl_session(&self) -> Option<SaslSession> {
        self.shared
            .sasl
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many SASL authentications succeeded on this connection: 1 after
    /// the login, one more per KIP-368 re-authentication (0 without SASL).
    ///
    /// ```no_run
    /// # async fn run(conn: klamm::net::Connection) {
    /// let reauthentications = conn.sasl_authentications().saturating_sub(1);
    /// println!("re-authenticated {reauthentications} times");
    /// # }
    /// ```
    pub fn sasl_authentications(&self) -> u64 {
        self.shared.sasl_authentications.load(Ordering::Acquire)
    }

    pub(crate) fn set_sasl_session(&self, session: SaslSession) {
        *self.shared.sasl.lock().unwrap_or_else(|e| e.into_inner()) = Some(session);
        self.shared
            .sasl_authentications
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Waits until no other request is being queued and keeps every other
    /// sender out until the guard is dropped (for SASL exchanges, which
    /// then use [`Connection::send_exclusive`]).
    pub(crate) async fn lock_exclusive(&self) -> OwnedRwLockWriteGuard<()> {
        self.shared.gate.clone().write_owned().await
    }

    /// Sends `req` at `version` while the caller holds
    /// [`Connection::lock_exclusive`]'s guard.
    pub(crate) async fn send_exclusive<R: Request>(
        &self,
        req: &R,
        version: i16,
        _guard: &OwnedRwLockWriteGuard<()>,
    ) -> Result<R::Response> {
        self.call(req, version, None, false).await
    }

    /// A handle that does not keep the connection open.
    pub(crate) fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            tx: self.tx.downgrade(),
            shared: self.shared.clone(),
            versions: self.versions.clone(),
        }
    }

    /// Whether the connection has closed; every request on it now fails.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends `req` at the highest version both sides support and waits for
    /// its response.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.versions.version_for(R::API_KEY, &self.shared.broker)?;
        self.send_version(req, version).await
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn send_version<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.call(req, version, None, true).await
    }

    /// Sends a request the broker will not answer (Produce with acks=0);
    /// resolves once it is written.
    pub async fn send_without_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        let frame = self.encode(req, version)?;
        self.roundtrip(frame, R::API_KEY, false, None)
            .await
            .map(|_| ())
    }

    /// Like [`Connection::send_version`] with its own timeout instead of
    /// the connection's (for requests that may block long on the broker,
    /// such as JoinGroup or a long-poll Fetch).
    pub async fn send_with_timeout<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        self.call(req, version, Some(timeout), true).await
    }

    /// Encodes `req`, exchanges it (behind the SASL gate when `gated`) and
    /// decodes the typed answer: the one path every typed send takes.
    async fn call<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Option<Duration>,
        gated: bool,
    ) -> Result<R::Response> {
        let frame = self.encode(req, version)?;
        let resp = self
            .exchange(frame, R::API_KEY, true, timeout, gated)
            .await?;
        Ok(decode_response_to::<R>(resp, version)?.1)
    }

    fn encode<R: Request>(&self, req: &R, version: i16) -> Result<RequestFrame> {
        // The task writes the real correlation id into the frame.
        Ok(encode_request_parts(
            0,
            self.shared.client_id.as_deref(),
            req,
            version,
        )?)
    }

    async fn roundtrip(
        &self,
        frame: RequestFrame,
        api: ApiKey,
        expects_response: bool,
        timeout: Option<Duration>,
    ) -> Result<Bytes> {
        self.exchange(frame, api, expects_response, timeout, true)
            .await
    }

    /// Queues a frame (behind the SASL gate when `gated`), waits for its
    /// answer, and reports it to tracing and the metrics sink.
    async fn exchange(
        &self,
        frame: RequestFrame,
        api: ApiKey,
        expects_response: bool,
        timeout: Option<Duration>,
        gated: bool,
    ) -> Result<Bytes> {
        self.begin(frame, api, expects_response, timeout, gated)
            .await
            .finish()
            .await
    }

    /// Queues a frame (behind the SASL gate when `gated`) and returns the
    /// wait for its answer: frames queued one after another are written in
    /// that order.
    async fn begin(
        &self,
        frame: RequestFrame,
        api: ApiKey,
        expects_response: bool,
        timeout: Option<Duration>,
        gated: bool,
    ) -> InFlight {
        let bytes_out = frame.len();
        let version = match frame.head.get(API_VERSION_AT..API_VERSION_AT + 2) {
            Some(&[a, b]) => i16::from_be_bytes([a, b]),
            _ => -1,
        };
        let started = Instant::now();
        if let Some(m) = &self.shared.metrics {
            m.request_sent(&self.shared.broker, api, bytes_out);
        }
        let gate = if gated {
            Some(self.shared.gate.read().await)
        } else {
            None
        };
        let queued = self.queue(frame, api, expects_response, timeout).await;
        drop(gate);
        InFlight {
            conn: self.clone(),
            queued,
            api,
            version,
            started,
            bytes_out,
        }
    }

    /// Queues `req` at `version` and returns once it has its place in the
    /// connection's send order, with a future for its answer. Requests
    /// queued one after another (each `queue_version` awaited before the
    /// next) go out on the wire in that order, while their answers are
    /// awaited concurrently: the producer relies on this to keep a
    /// partition's batches in order with several requests in flight.
    ///
    /// ```no_run
    /// # async fn example(conn: klamm::net::Connection) -> klamm::Result<()> {
    /// use klamm::protocol::messages::MetadataRequest;
    ///
    /// let req = MetadataRequest { topics: Some(vec![]), ..Default::default() };
    /// // Both are on the wire, first before second, before either answer.
    /// let first = conn.queue_version(&req, 8).await?;
    /// let second = conn.queue_version(&req, 8).await?;
    /// let (a, b) = (first.await?, second.await?);
    /// assert_eq!(a.brokers.len(), b.brokers.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn queue_version<R: Request>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<impl Future<Output = Result<R::Response>> + Send + 'static> {
        let frame = self.encode(req, version)?;
        let in_flight = self.begin(frame, R::API_KEY, true, None, true).await;
        Ok(async move {
            let resp = in_flight.finish().await?;
            Ok(decode_response_to::<R>(resp, version)?.1)
        })
    }

    /// Hands a frame to the task; returns where its answer will arrive.
    async fn queue(
        &self,
        frame: RequestFrame,
        api: ApiKey,
        expects_response: bool,
        timeout: Option<Duration>,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        let (reply, rx) = oneshot::channel();
        let timeout = timeout.unwrap_or(self.shared.request_timeout);
        let cmd = Command::Send {
            frame,
            api,
            expects_response,
            timeout,
            reply,
        };
        if self.tx.send(cmd).await.is_err() {
            return Err(self.closed_error());
        }
        Ok(rx)
    }

    fn closed_error(&self) -> Error {
        let broker = self.shared.broker.clone();
        match self
            .shared
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some((true, reason)) => Error::Tls { broker, reason },
            Some((false, reason)) => Error::Disconnected {
                broker,
                reason: format!("the connection is closed: {reason}"),
            },
            None => Error::Disconnected {
                broker,
                reason: "the connection is closed".into(),
            },
        }
    }

    /// Closes the connection gracefully: requests already sent get their
    /// answers (or time out), new ones fail.
    pub async fn close(&self) {
        // A full queue or a closed task both mean nothing more to do.
        let _ = self.tx.send(Command::Close).await;
    }
}

/// A frame handed to the connection task, awaiting its answer.
struct InFlight {
    conn: Connection,
    queued: Result<oneshot::Receiver<Result<Bytes>>>,
    api: ApiKey,
    version: i16,
    started: Instant,
    bytes_out: usize,
}

impl InFlight {
    /// Waits for the answer and reports it to tracing and the metrics sink.
    async fn finish(self) -> Result<Bytes> {
        let InFlight {
            conn,
            queued,
            api,
            version,
            started,
            bytes_out,
        } = self;
        let result = match queued {
            Ok(rx) => rx.await.unwrap_or_else(|_| Err(conn.closed_error())),
            Err(e) => Err(e),
        };
        let broker = conn.shared.broker.as_str();
        let latency = started.elapsed();
        match &result {
            Ok(resp) => {
                let bytes_in = resp.len() + FRAME_SIZE_LEN;
                tracing::debug!(
                    broker,
                    api = api.name(),
                    version,
                    ?latency,
                    bytes_out,
                    bytes_in,
                    "request completed"
                );
                if let Some(m) = &conn.shared.metrics {
                    m.request_completed(broker, api, latency, bytes_in);
                }
            }
            Err(e) => {
                tracing::debug!(broker, api = api.name(), version, ?latency, error = %e, "request failed");
                if let Some(m) = &conn.shared.metrics {
                    m.request_failed(broker, api, e.is_retriable());
                }
            }
        }
        result
    }
}

/// A [`Connection`] handle that does not keep the connection open (the
/// re-authentication task holds one).
pub(crate) struct WeakConnection {
    tx: mpsc::WeakSender<Command>,
    shared: Arc<Shared>,
    versions: Arc<ApiVersions>,
}

impl WeakConnection {
    /// A full handle, unless every [`Connection`] was dropped or the
    /// connection closed.
    pub(crate) fn upgrade(&self) -> Option<Connection> {
        let tx = self.tx.upgrade()?;
        let conn = Connection {
            tx,
            shared: self.shared.clone(),
            versions: self.versions.clone(),
        };
        (!conn.is_closed()).then_some(conn)
    }
}

/// Encodes a response frame for `api` (used by in-process test peers).
#[cfg(test)]
pub(crate) fn response_frame<M: Message>(
    api: ApiKey,
    correlation_id: i32,
    body: &M,
    version: i16,
) -> Bytes {
    let mut out = bytes::BytesMut::new();
    crate::protocol::frame::encode_response(&mut out, api, correlation_id, body, version)
        .unwrap_or_else(|e| panic!("encoding a test response: {e}"));
    out.freeze()
}
