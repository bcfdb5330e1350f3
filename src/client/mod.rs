//! The cluster as the client sees it: a connection pool shared by
//! everything that uses the [`Client`], and a metadata cache that refreshes
//! itself in the background and at once when an answer says it is stale.
//!
//! # References
//! - KIP-320 (leader epochs), KIP-699 (batched FindCoordinator, v4+)

mod coordinator;
mod metadata;
mod offsets;
mod pool;
mod retry;

#[cfg(test)]
mod tests;

use crate::determinism::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub use offsets::{ListedOffset, OffsetSpec};
pub use pool::TrafficClass;
pub use retry::{Retrier, RetryPolicy};

pub(crate) use coordinator::{CallError, CoordinatorKind, Step, coordinator_error};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::net::{Connection, ConnectionOptions, SocketOptions};
use crate::protocol::error::DecodeErrorKind;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::{ApiKey, MetadataRequest};
use pool::Pool;

/// What [`Client::connect_with`] takes besides the [`Config`].
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Where connections report counters and latencies.
    pub metrics: Option<crate::net::MetricsHandle>,
    /// Supplies OAUTHBEARER tokens (needed when `sasl.mechanism` is
    /// OAUTHBEARER).
    pub token_provider: Option<Arc<dyn crate::net::sasl::TokenProvider>>,
    /// Opens every connection in place of TCP (an in-process cluster, a
    /// simulation); TLS settings do not apply to its streams.
    pub connector: Option<Arc<dyn crate::net::Connector>>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("metrics", &self.metrics.is_some())
            .field("token_provider", &self.token_provider.is_some())
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

struct Inner {
    config: Config,
    pool: Pool,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Held while a Metadata request is in flight; concurrent refreshes wait
    /// on it and reuse the result.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Completed refreshes, and what the last one covered (None = all).
    generation: AtomicU64,
    /// Counts every replacement of `metadata` (refreshes and
    /// re-bootstraps), bumped after the new snapshot is in place: a cache
    /// built from a snapshot read after seeing count `n` is current while
    /// the count is still `n`.
    snapshots: AtomicU64,
    last_covered: Mutex<Option<Vec<String>>>,
    /// When the last refresh of every known topic (or of the whole
    /// cluster) succeeded: the metadata's age, for the background refresh.
    refreshed_all: Mutex<tokio::time::Instant>,
    metadata_requests: AtomicUsize,
    /// The next [`TrafficClass::Dedicated`] number.
    dedicated: AtomicU64,
    coordinators: Mutex<HashMap<(CoordinatorKind, String), BrokerInfo>>,
    /// Brokers whose flexible Metadata answers (v9+) did not decode
    /// cleanly; they are asked with v8 from then on.
    metadata_v8_brokers: Mutex<HashSet<String>>,
    closed: AtomicBool,
    refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A handle to a Kafka cluster (Sarama's `Client`): cheap to clone, shared
/// by producers, consumers and admin code alike.
///
/// ```no_run
/// use klamm::{Client, Config};
/// use klamm::client::OffsetSpec;
///
/// # async fn run() -> klamm::Result<()> {
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["localhost:9092".into()];
/// let client = Client::connect(config).await?;
/// for topic in client.topics() {
///     let partitions = client.partitions(&topic).await?;
///     let newest = client.list_offsets(&topic, partitions[0], OffsetSpec::Newest).await?;
///     println!("{topic}: {} partitions, partition 0 ends at {newest}", partitions.len());
/// }
/// client.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.net.bootstrap_servers)
            .field("brokers", &self.metadata().brokers.len())
            .finish()
    }
}

impl ConnectionOptions {
    /// Connection settings from the `net` section of a [`Config`].
    pub fn from_config(config: &Config) -> ConnectionOptions {
        let net = &config.net;
        ConnectionOptions {
            client_id: (!net.client_id.is_empty()).then(|| net.client_id.clone()),
            connect_timeout: net.connect_timeout,
            request_timeout: net.request_timeout,
            max_in_flight: net.max_in_flight_requests.max(1),
            max_frame_size: net.max_response_size,
            socket: SocketOptions {
                nodelay: net.tcp_nodelay,
                keepalive: net.tcp_keepalive,
                send_buffer_size: net.send_buffer_size,
                receive_buffer_size: net.receive_buffer_size,
            },
            ..ConnectionOptions::default()
        }
    }
}

impl Client {
    /// Validates `config`, bootstraps from its seed brokers (trying each in
    /// turn: any may be down) and loads the cluster's metadata.
    pub async fn connect(config: Config) -> Result<Client> {
        Self::connect_with(config, ClientOptions::default()).await
    }

    /// Like [`Client::connect`], with what a [`Config`] cannot hold: a
    /// metrics sink and an OAUTHBEARER token provider. TLS and SASL follow
    /// `security.protocol`: `SSL` and `SASL_SSL` connect over TLS (the
    /// `ssl.*` settings), `SASL_*` authenticate every connection.
    pub async fn connect_with(config: Config, options: ClientOptions) -> Result<Client> {
        config.validate()?;
        use crate::config::SecurityProtocol as P;
        let protocol = config.net.security_protocol;
        let tls = match protocol {
            P::Ssl | P::SaslSsl => Some(crate::net::TlsSettings::from_config(&config.net.tls)?),
            P::Plaintext | P::SaslPlaintext => None,
        };
        let sasl = match protocol {
            P::SaslPlaintext | P::SaslSsl => crate::net::sasl::SaslMechanism::from_config(
                &config.net.sasl,
                options.token_provider.clone(),
            )?,
            P::Plaintext | P::Ssl => None,
        };
        let opts = ConnectionOptions {
            metrics: options.metrics,
            sasl,
            sasl_reauthenticate: config.net.sasl.reauthenticate,
            ..ConnectionOptions::from_config(&config)
        };
        let pool = Pool::new(
            opts,
            tls,
            options.connector,
            (
                config.net.reconnect_backoff,
                config.net.reconnect_backoff_max,
                config.net.backoff_jitter,
            ),
            config.net.connect_timeout_max,
        );
        let inner = Arc::new(Inner {
            pool,
            metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
            refresh_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            last_covered: Mutex::new(None),
            refreshed_all: Mutex::new(tokio::time::Instant::now()),
            metadata_requests: AtomicUsize::new(0),
            dedicated: AtomicU64::new(0),
            coordinators: Mutex::new(HashMap::default()),
            metadata_v8_brokers: Mutex::new(HashSet::default()),
            closed: AtomicBool::new(false),
            refresher: Mutex::new(None),
            config,
        });
        let client = Client { inner };
        client.refresh_metadata(None).await?;
        let metadata = &client.inner.config.metadata;
        if let Some(interval) = metadata.refresh_interval {
            let every = interval.min(metadata.max_age);
            let failed = crate::net::Backoff::new(
                metadata.retry_backoff,
                metadata.retry_backoff.max(FAILED_REFRESH_BACKOFF_MAX),
            )
            .with_jitter(client.inner.config.net.backoff_jitter);
            let task = tokio::spawn(background_refresh(
                Arc::downgrade(&client.inner),
                every,
                failed,
            ));
            *lock(&client.inner.refresher) = Some(task);
        }
        Ok(client)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The number of metadata snapshots installed so far: read it before
    /// [`metadata`](Self::metadata), and what is derived from that snapshot
    /// stays current while this number does not change (one atomic load,
    /// where `metadata` takes a lock and clones an `Arc`).
    pub(crate) fn metadata_snapshots(&self) -> u64 {
        self.inner.snapshots.load(Ordering::Acquire)
    }

    /// How many Metadata requests this client has sent (for tests and
    /// metrics).
    pub fn metadata_requests(&self) -> usize {
        self.inner.metadata_requests.load(Ordering::Relaxed)
    }

    /// Known topic names, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.metadata().topics.keys().cloned().collect();
        t.sort();
        t
    }

    /// The metadata, holding `topic`: fetched when the topic is not cached
    /// (or cached with an error), asking the broker to create a missing
    /// topic only with `auto_create`. A topic the broker answered with an
    /// error and no partitions is that error (TOPIC_AUTHORIZATION_FAILED,
    /// LEADER_NOT_AVAILABLE while it is being created, ...); an absent one
    /// is UNKNOWN_TOPIC_OR_PARTITION. Callers read what they need from the
    /// snapshot: a topic of thousands of partitions is not copied.
    async fn metadata_with(&self, topic: &str, auto_create: bool) -> Result<Arc<ClusterMetadata>> {
        let usable = |t: &TopicInfo| t.error.is_ok() || !t.partitions.is_empty();
        let meta = self.metadata();
        if meta.topics.get(topic).is_some_and(usable) {
            return Ok(meta);
        }
        self.refresh(Some(&[topic.to_string()]), false, auto_create)
            .await?;
        let meta = self.metadata();
        let t = meta.topics.get(topic).ok_or_else(|| Error::Broker {
            api: ApiKey::Metadata,
            code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            context: Some(format!("topic {topic}")),
        })?;
        if !usable(t) {
            return Err(Error::Broker {
                api: ApiKey::Metadata,
                code: t.error,
                context: Some(format!("topic {topic}")),
            });
        }
        Ok(meta)
    }

    /// The ids of `topic`'s partitions that `keep` accepts (fetching its
    /// metadata if unknown).
    async fn partition_ids(
        &self,
        topic: &str,
        keep: impl Fn(&PartitionInfo) -> bool,
    ) -> Result<Vec<i32>> {
        let auto_create = self.inner.config.metadata.allow_auto_topic_creation;
        let meta = self.metadata_with(topic, auto_create).await?;
        Ok(meta.topics.get(topic).map_or_else(Vec::new, |t| {
            t.partitions
                .iter()
                .filter(|p| keep(p))
                .map(|p| p.id)
                .collect()
        }))
    }

    /// The partition ids of `topic` (fetching its metadata if unknown).
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        self.partition_ids(topic, |_| true).await
    }

    /// The partitions of `topic` that have a leader now.
    pub async fn writable_partitions(&self, topic: &str) -> Result<Vec<i32>> {
        self.partition_ids(topic, PartitionInfo::is_writable).await
    }

    async fn partition(&self, topic: &str, partition: i32) -> Result<PartitionInfo> {
        let auto_create = self.inner.config.metadata.allow_auto_topic_creation;
        self.partition_with(topic, partition, auto_create).await
    }

    async fn partition_with(
        &self,
        topic: &str,
        partition: i32,
        auto_create: bool,
    ) -> Result<PartitionInfo> {
        let meta = self.metadata_with(topic, auto_create).await?;
        meta.partition(topic, partition)
            .cloned()
            .ok_or_else(|| Error::Broker {
                api: ApiKey::Metadata,
                code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                context: Some(format!("{topic}/{partition}")),
            })
    }

    /// The leader of a partition.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<BrokerInfo> {
        let p = self.partition(topic, partition).await?;
        self.leader_of(topic, p)
    }

    /// The leader of a partition, never asking the broker to create the
    /// topic (what the admin needs: Java's admin never creates topics by
    /// looking them up).
    pub(crate) async fn leader_of_existing(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<BrokerInfo> {
        let p = self.partition_with(topic, partition, false).await?;
        self.leader_of(topic, p)
    }

    fn leader_of(&self, topic: &str, p: PartitionInfo) -> Result<BrokerInfo> {
        let partition = p.id;
        self.broker(p.leader).ok_or_else(|| Error::Broker {
            api: ApiKey::Metadata,
            code: ErrorCode::LEADER_NOT_AVAILABLE,
            context: Some(format!("{topic}/{partition}")),
        })
    }

    /// The replicas of a partition.
    pub async fn replicas(&self, topic: &str, partition: i32) -> Result<Vec<i32>> {
        Ok(self.partition(topic, partition).await?.replicas)
    }

    /// The in-sync replicas of a partition.
    pub async fn in_sync_replicas(&self, topic: &str, partition: i32) -> Result<Vec<i32>> {
        Ok(self.partition(topic, partition).await?.in_sync_replicas)
    }

    /// The offline replicas of a partition.
    pub async fn offline_replicas(&self, topic: &str, partition: i32) -> Result<Vec<i32>> {
        Ok(self.partition(topic, partition).await?.offline_replicas)
    }

    /// A broker by id, from the cached metadata.
    pub fn broker(&self, id: i32) -> Option<BrokerInfo> {
        self.metadata().brokers.get(&id).cloned()
    }

    /// The controller broker.
    pub async fn controller(&self) -> Result<BrokerInfo> {
        if let Some(b) = self.broker(self.metadata().controller) {
            return Ok(b);
        }
        self.refresh_metadata(None).await?;
        self.broker(self.metadata().controller)
            .ok_or_else(|| Error::Broker {
                api: ApiKey::Metadata,
                code: ErrorCode::NOT_CONTROLLER,
                context: Some("no controller in the cluster metadata".into()),
            })
    }

    /// A pooled connection to `broker` for `class` of traffic.
    pub async fn connection(&self, broker: &BrokerInfo, class: TrafficClass) -> Result<Connection> {
        self.inner.pool.get(&broker.addr(), class).await
    }

    /// A traffic class of its own, for a user whose requests must not wait
    /// behind anyone else's (a group member's JoinGroup). Its connections
    /// are closed by [`Client::close_class`].
    pub fn dedicated_class(&self) -> TrafficClass {
        TrafficClass::Dedicated(self.inner.dedicated.fetch_add(1, Ordering::Relaxed))
    }

    /// Closes every connection of `class` (to all brokers).
    pub async fn close_class(&self, class: TrafficClass) {
        self.inner.pool.close_class(class).await;
    }

    /// Notes a Kafka error code from an answer: codes that mean the cached
    /// metadata is stale (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
    /// LEADER_NOT_AVAILABLE, FENCED_LEADER_EPOCH, …) start a refresh at once,
    /// in the background.
    pub fn report_error(&self, code: ErrorCode) {
        if code.invalidates_metadata() && !self.inner.closed.load(Ordering::Acquire) {
            let client = self.clone();
            tokio::spawn(async move {
                if let Err(e) = client.refresh_metadata(None).await {
                    tracing::debug!(error = %e, "metadata refresh after {code:?} failed");
                }
            });
        }
    }

    /// Refreshes the metadata of `topics` (all known topics with `None`;
    /// every topic in the cluster when none are known yet). Refreshes
    /// asked for while one is in flight wait for it and reuse its answer
    /// when it covered their topics.
    pub async fn refresh_metadata(&self, topics: Option<&[String]>) -> Result<()> {
        self.refresh(
            topics,
            false,
            self.inner.config.metadata.allow_auto_topic_creation,
        )
        .await
    }

    /// [`refresh_metadata`](Self::refresh_metadata) that never asks the
    /// broker to create a topic (for the admin).
    pub(crate) async fn refresh_existing(&self, topics: &[String]) -> Result<()> {
        self.refresh(Some(topics), false, false).await
    }

    /// Refreshes the metadata of every topic in the cluster (what a
    /// subscription by pattern needs to see new topics), forgetting the
    /// topics that no longer exist.
    pub async fn refresh_cluster_metadata(&self) -> Result<()> {
        self.refresh(None, true, false).await
    }

    async fn refresh(
        &self,
        topics: Option<&[String]>,
        whole_cluster: bool,
        auto_create: bool,
    ) -> Result<()> {
        let asked_at = self.inner.generation.load(Ordering::Acquire);
        let _guard = self.inner.refresh_lock.lock().await;
        if self.inner.generation.load(Ordering::Acquire) > asked_at
            && !whole_cluster
            && self.last_refresh_covered(topics)
        {
            return Ok(());
        }
        let wanted: Option<Vec<String>> = match topics {
            Some(t) => Some(t.to_vec()),
            None if whole_cluster => None,
            None => {
                let known = self.topics();
                (!known.is_empty()).then_some(known)
            }
        };
        let req = MetadataRequest {
            topics: wanted.as_ref().map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: auto_create,
            ..Default::default()
        };
        let ask = |conn: Connection| {
            let req = req.clone();
            async move {
                let mut version = conn
                    .api_versions()
                    .version_for(ApiKey::Metadata, conn.broker())?;
                if version > LAST_RIGID_METADATA
                    && lock(&self.inner.metadata_v8_brokers).contains(conn.broker())
                {
                    version = LAST_RIGID_METADATA;
                }
                // Topics = null means "all topics" only from v1; v0 uses [].
                let req = if version == 0 && req.topics.is_none() {
                    MetadataRequest {
                        topics: Some(vec![]),
                        ..req
                    }
                } else {
                    req
                };
                let resp = match conn.send_version(&req, version).await {
                    Err(e) if version > LAST_RIGID_METADATA && has_trailing_bytes(&e) => {
                        // librdkafka's mock cluster (2.16) ends every
                        // flexible Metadata answer with a stray byte.
                        // Rather than guess what else it got wrong, ask
                        // this broker with the last non-flexible version.
                        tracing::debug!(broker = %conn.broker(), version, error = %e,
                                "Metadata answer has trailing bytes; using v8 with this broker");
                        lock(&self.inner.metadata_v8_brokers).insert(conn.broker().to_string());
                        conn.send_version(&req, LAST_RIGID_METADATA).await
                    }
                    r => r,
                }?;
                // v13+: an error for the whole answer (REBOOTSTRAP_REQUIRED).
                let code = ErrorCode(resp.error_code);
                if !code.is_ok() {
                    return Err(Error::Broker {
                        api: ApiKey::Metadata,
                        code,
                        context: Some(conn.broker().to_string()),
                    });
                }
                Ok(resp)
            }
        };
        let resp = match self.any_broker(&ask).await {
            Err(e) if e.kafka_code() == Some(ErrorCode::REBOOTSTRAP_REQUIRED) => {
                // KIP-1102: the cluster is not the one the client knows
                // (moved, replaced). As the Java client does: drop every
                // connection and what metadata said, and start again from
                // bootstrap.servers; asked again, the error stands.
                tracing::info!(error = %e, "the cluster asked for a new bootstrap; reconnecting to bootstrap.servers");
                self.rebootstrap().await;
                self.any_broker(&ask).await?
            }
            r => r?,
        };
        self.inner.metadata_requests.fetch_add(1, Ordering::Relaxed);
        let all = topics.is_none() && wanted.is_none();
        let merged = self.metadata().merged(&resp, all);
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(merged);
        self.inner.snapshots.fetch_add(1, Ordering::AcqRel);
        *lock(&self.inner.last_covered) = topics.map(<[String]>::to_vec);
        if topics.is_none() {
            *lock(&self.inner.refreshed_all) = tokio::time::Instant::now();
        }
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Forgets every connection, broker, coordinator and topic, so that
    /// the next request goes to `bootstrap.servers`.
    async fn rebootstrap(&self) {
        self.inner.pool.close_all().await;
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(ClusterMetadata::default());
        self.inner.snapshots.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.coordinators).clear();
        lock(&self.inner.metadata_v8_brokers).clear();
    }

    fn last_refresh_covered(&self, topics: Option<&[String]>) -> bool {
        match (&*lock(&self.inner.last_covered), topics) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(covered), Some(wanted)) => wanted.iter().all(|t| covered.contains(t)),
        }
    }

    /// Runs `f` on a connection to some broker: known brokers first, then
    /// the seeds, moving on from any that fails.
    async fn any_broker<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut addrs: Vec<String> = self
            .metadata()
            .brokers
            .values()
            .map(BrokerInfo::addr)
            .collect();
        for seed in &self.inner.config.net.bootstrap_servers {
            if !addrs.contains(seed) {
                addrs.push(seed.clone());
            }
        }
        // What a broker answered says more than a seed that could not be
        // reached: report the former when both happened.
        let mut answered = None;
        let mut last = None;
        for addr in addrs {
            match self.inner.pool.get(&addr, TrafficClass::Other).await {
                Ok(conn) => match f(conn).await {
                    Ok(v) => return Ok(v),
                    Err(e @ Error::Broker { .. }) if e.is_retriable() => answered = Some(e),
                    Err(e) if e.is_retriable() => last = Some(e),
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "broker unavailable; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(answered
            .or(last)
            .unwrap_or_else(|| Error::config("bootstrap.servers", "no brokers to connect to")))
    }

    /// Stops the background refresh and closes every connection. Requests
    /// in flight get their answers or fail; the client cannot be used after.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Some(task) = lock(&self.inner.refresher).take() {
            task.abort();
        }
        self.inner.pool.close_all().await;
    }
}

/// The last Metadata version without tagged fields.
const LAST_RIGID_METADATA: i16 = 8;

fn has_trailing_bytes(e: &Error) -> bool {
    matches!(e, Error::Decode(d) if matches!(d.kind(), DecodeErrorKind::TrailingBytes(_)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The most a failed background refresh waits before the next try (the
/// Java client's `retry.backoff.max.ms` default).
const FAILED_REFRESH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Refreshes every known topic's metadata once it is `every` old
/// (`metadata.refresh.interval.ms` or `metadata.max.age.ms`, the shorter).
/// Its age counts from the last refresh of every known topic, whatever
/// asked for it, as the Java client's metadata ages from its last update;
/// a failed refresh is tried again after `failed`'s backoff
/// (`retry.backoff.ms`, doubling up to 1 s) rather than a whole period
/// later. Holds the client only while refreshing.
async fn background_refresh(inner: Weak<Inner>, every: Duration, mut failed: crate::net::Backoff) {
    loop {
        let due = match inner.upgrade() {
            Some(inner) => *lock(&inner.refreshed_all) + every,
            None => return,
        };
        tokio::time::sleep_until(due).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if *lock(&inner.refreshed_all) + every > tokio::time::Instant::now() {
            continue; // refreshed meanwhile
        }
        let client = Client { inner };
        match client.refresh_metadata(None).await {
            Ok(()) => failed.reset(),
            Err(e) => {
                drop(client);
                let wait = failed.next_delay();
                tracing::debug!(error = %e, ?wait, "background metadata refresh failed");
                tokio::time::sleep(wait).await;
            }
        }
    }
}
