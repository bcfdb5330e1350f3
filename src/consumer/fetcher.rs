//! One fetcher task per broker: a Fetch request covering every partition
//! the broker leads for this consumer, one request in flight at a time.
//!
//! The fetcher does not decode records. It walks the batch headers of each
//! partition's data to find where the complete batches end and what the
//! next fetch offset is, and hands the complete batches on as one chunk.
//! Partitions that are paused, closed, or whose buffer is full are left
//! out of the request (and forgotten from the fetch session).

use crate::determinism::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{Notify, mpsc};

use super::session::{FetchSession, Key, PartitionParams};
use super::{Chunk, ConsumerInner, Delivery, PartitionShared, Placement, Settings, lock, place};
use crate::client::{BrokerInfo, Client, OffsetSpec};
use crate::config::IsolationLevel;
use crate::error::{Error, Result};
use crate::protocol::error::DecodeError;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::messages::fetch_response::PartitionData;
use crate::protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use crate::protocol::primitives::Uuid;

/// The highest Fetch version used: v13+ name topics by id only.
/// The last Fetch version that names topics; v13 and later name them by
/// id (the main fetch uses ids when metadata knows them all; the one-off
/// high-watermark fetch keeps names).
pub(crate) const LAST_FETCH_BY_NAME: i16 = 12;

/// A partition as a fetcher tracks it.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) shared: Arc<PartitionShared>,
    pub(crate) tx: mpsc::Sender<Delivery>,
    /// The next offset to fetch.
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    /// The partition's byte limit for the next fetch: the configured one,
    /// or more when a batch bigger than it came back cut short.
    pub(crate) max_bytes: i32,
    /// A chunk the buffer had no room for; sent before anything else.
    overflow: Option<Delivery>,
}

impl Tracked {
    pub(crate) fn new(
        shared: Arc<PartitionShared>,
        tx: mpsc::Sender<Delivery>,
        offset: i64,
        settings: &Settings,
    ) -> Self {
        Tracked {
            shared,
            tx,
            offset,
            leader_epoch: -1,
            max_bytes: settings.partition_max_bytes,
            overflow: None,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }

    fn key(&self) -> Key {
        (self.shared.topic.clone(), self.shared.partition)
    }

    /// Delivers an error that ends the partition consumer.
    pub(crate) fn fail(self, e: Error) {
        tracing::debug!(topic = %self.shared.topic, partition = self.shared.partition,
            error = %e, "partition consumer ends with an error");
        // The receiver drains the buffer first; wait for room without
        // blocking the caller.
        let tx = self.tx;
        tokio::spawn(async move {
            let _ = tx.send(Err(e)).await;
        });
    }

    /// Hands `d` to the partition consumer, or keeps it when the buffer is
    /// full.
    fn deliver(&mut self, d: Delivery) {
        match self.tx.try_send(d) {
            Ok(()) => {}
            Err(TrySendError::Full(d)) => {
                self.overflow = Some(d);
                self.shared.blocked.store(true, Ordering::SeqCst);
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Whether the partition may be fetched now (setting `blocked` when its
    /// buffer is full, so the partition consumer wakes the fetcher).
    fn fetchable(&mut self, paused_all: bool) -> bool {
        if paused_all || self.shared.paused.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(d) = self.overflow.take() {
            self.deliver(d);
            if self.overflow.is_some() {
                return false;
            }
        }
        if self.tx.capacity() > 0 {
            return true;
        }
        self.shared.blocked.store(true, Ordering::SeqCst);
        // The consumer may have made room between the check and the flag.
        if self.tx.capacity() > 0 {
            self.shared.blocked.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }

    fn params(&self) -> PartitionParams {
        PartitionParams {
            offset: self.offset,
            max_bytes: self.max_bytes,
            leader_epoch: self.leader_epoch,
        }
    }
}

/// Whether the fetcher goes on after a fetch.
enum Flow {
    Go,
    Stop,
}

pub(crate) enum Cmd {
    Add(Tracked),
    Shutdown,
}

pub(crate) struct FetcherHandle {
    pub(crate) cmd: mpsc::UnboundedSender<Cmd>,
    pub(crate) wake: Arc<Notify>,
    /// Ends the fetcher, even in the middle of a long poll.
    pub(crate) stop: Arc<Notify>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// Hands `tracked` to the fetcher of `leader`, starting one if needed.
/// Gives it back if the consumer is closing.
pub(crate) fn assign(
    inner: &Arc<ConsumerInner>,
    leader: &BrokerInfo,
    tracked: Tracked,
) -> std::result::Result<(), Tracked> {
    if inner.closed.load(Ordering::Acquire) {
        return Err(tracked);
    }
    let mut fetchers = lock(&inner.fetchers);
    let handle = fetchers
        .entry(leader.id)
        .or_insert_with(|| spawn(inner, leader.clone()));
    let tracked = match handle.cmd.send(Cmd::Add(tracked)) {
        Ok(()) => return Ok(()),
        Err(mpsc::error::SendError(Cmd::Add(t))) => t,
        Err(_) => return Ok(()),
    };
    // The old fetcher ended; start a new one.
    let handle = spawn(inner, leader.clone());
    let r = match handle.cmd.send(Cmd::Add(tracked)) {
        Ok(()) => Ok(()),
        Err(mpsc::error::SendError(Cmd::Add(t))) => Err(t),
        Err(_) => Ok(()),
    };
    fetchers.insert(leader.id, handle);
    r
}

fn spawn(inner: &Arc<ConsumerInner>, broker: BrokerInfo) -> FetcherHandle {
    let (cmd, cmd_rx) = mpsc::unbounded_channel();
    let wake = Arc::new(Notify::new());
    let stop = Arc::new(Notify::new());
    let fetcher = Fetcher {
        broker,
        client: inner.client.clone(),
        settings: inner.settings.clone(),
        paused_all: inner.paused_all.clone(),
        consumer: Arc::downgrade(inner),
        parts: Vec::new(),
        cmd_rx,
        wake: wake.clone(),
        stop: stop.clone(),
        session: FetchSession::default(),
        session_by_id: None,
        session_ids: HashMap::default(),
        rotate: 0,
    };
    FetcherHandle {
        cmd,
        wake,
        stop,
        task: tokio::spawn(fetcher.run()),
    }
}

struct Fetcher {
    broker: BrokerInfo,
    client: Client,
    settings: Arc<Settings>,
    paused_all: Arc<std::sync::atomic::AtomicBool>,
    consumer: std::sync::Weak<ConsumerInner>,
    parts: Vec<Tracked>,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    wake: Arc<Notify>,
    stop: Arc<Notify>,
    session: FetchSession,
    /// Whether the open session names topics by id (Fetch v13+); `None`
    /// before the first request.
    session_by_id: Option<bool>,
    /// The topic ids the open session was given (by-id sessions): a topic
    /// deleted and made again under the same name has a new id, which the
    /// broker's session does not know, so it answers UNKNOWN_TOPIC_ID to
    /// every incremental fetch; a new id in metadata starts a new session.
    session_ids: HashMap<String, Uuid>,
    /// Where the next request starts in `parts`, so that under
    /// `fetch.max.bytes` no partition always comes last.
    rotate: usize,
}

impl Fetcher {
    async fn run(mut self) {
        self.serve().await;
        self.close_session().await;
    }

    /// Fetches until told to stop.
    async fn serve(&mut self) {
        loop {
            loop {
                match self.cmd_rx.try_recv() {
                    Ok(Cmd::Add(t)) => self.add(t),
                    Ok(Cmd::Shutdown) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.parts.retain(|t| !t.is_closed());
            let paused_all = self.paused_all.load(Ordering::SeqCst);
            let n = self.parts.len();
            let mut wanted = Vec::with_capacity(n);
            for i in 0..n {
                let idx = (i + self.rotate) % n;
                if self.parts[idx].fetchable(paused_all) {
                    wanted.push(idx);
                }
            }
            if wanted.is_empty() {
                tokio::select! {
                    c = self.cmd_rx.recv() => match c {
                        Some(Cmd::Add(t)) => self.add(t),
                        Some(Cmd::Shutdown) | None => return,
                    },
                    _ = self.wake.notified() => {}
                    _ = self.stop.notified() => return,
                }
                continue;
            }
            self.rotate = self.rotate.wrapping_add(1);
            match self.fetch(&wanted).await {
                Ok(Flow::Go) => {}
                Ok(Flow::Stop) => return,
                Err(e) => {
                    self.session.reset();
                    self.failed(e);
                }
            }
        }
    }

    /// Tells the broker to drop our fetch session (epoch -1, KIP-227), so
    /// it need not wait for the session to expire. Best effort.
    async fn close_session(&mut self) {
        let id = self.session.id();
        if id == 0 {
            return;
        }
        self.session.reset();
        let close = async {
            let conn = self
                .client
                .connection(&self.broker, self.settings.class)
                .await?;
            let version = conn
                .api_versions()
                .version_for(ApiKey::Fetch, conn.broker())?
                .min(LAST_FETCH_BY_NAME);
            let req = FetchRequest {
                session_id: id,
                session_epoch: -1,
                max_bytes: 1,
                ..Default::default()
            };
            conn.send_with_timeout(&req, version, self.settings.request_timeout)
                .await
                .map(|_| ())
        };
        if let Ok(Err(e)) = tokio::time::timeout(std::time::Duration::from_secs(1), close).await {
            tracing::debug!(broker = %self.broker.addr(), error = %e, "closing the fetch session failed");
        }
    }

    fn add(&mut self, t: Tracked) {
        *lock(&t.shared.wake) = Some(self.wake.clone());
        tracing::debug!(broker = self.broker.id, topic = %t.shared.topic,
            partition = t.shared.partition, offset = t.offset, "fetching partition");
        self.parts.push(t);
    }

    /// Moves the partition at `idx` elsewhere (after a leader change or to
    /// reset its offset).
    fn hand_off(&mut self, idx: usize, why: Placement) {
        let t = self.parts.swap_remove(idx);
        *lock(&t.shared.wake) = None;
        if let Some(inner) = self.consumer.upgrade() {
            tokio::spawn(place(inner, t, why));
        }
    }

    /// The whole request failed: the broker may be gone. Every partition is
    /// placed again (after a metadata refresh and a backoff); those still
    /// led by this broker come back.
    fn failed(&mut self, e: Error) {
        tracing::debug!(broker = %self.broker.addr(), error = %e, "fetch failed");
        if e.is_retriable() {
            while !self.parts.is_empty() {
                self.hand_off(self.parts.len() - 1, Placement::LeaderMoved);
            }
        } else {
            let msg = e.to_string();
            let mut first = Some(e);
            for t in self.parts.drain(..) {
                let e = first.take().unwrap_or_else(|| Error::ProtocolViolation {
                    broker: self.broker.addr(),
                    reason: msg.clone(),
                });
                t.fail(e);
            }
        }
    }

    async fn fetch(&mut self, wanted: &[usize]) -> Result<Flow> {
        let conn = self
            .client
            .connection(&self.broker, self.settings.class)
            .await?;
        let version = conn.api_versions().version_up_to(
            ApiKey::Fetch,
            conn.broker(),
            ApiKey::Fetch.versions().1,
        )?;
        // v13+ names topics by id: only when metadata knows the id of every
        // topic this session fetches or forgets (as the Java consumer
        // does); otherwise v12, by name. A session opened in one mode is
        // not continued in the other.
        let (version, ids) = self.topic_ids(version);
        let by_id = version > LAST_FETCH_BY_NAME;
        if self.session_by_id != Some(by_id) {
            if self.session_by_id.is_some() {
                self.session.reset();
            }
            self.session_by_id = Some(by_id);
        }
        if ids
            .iter()
            .any(|(name, id)| self.session_ids.get(name).is_some_and(|old| old != id))
        {
            tracing::debug!(broker = %self.broker.addr(), "a topic id changed; new fetch session");
            self.session.reset();
        }
        self.session_ids.clone_from(&ids);
        let id_of = |name: &str| ids.get(name).copied().unwrap_or(Uuid::ZERO);
        let params: Vec<(Key, PartitionParams)> = wanted
            .iter()
            .map(|&i| (self.parts[i].key(), self.parts[i].params()))
            .collect();
        let plan = self.session.plan(&params, version >= 7);
        let s = &self.settings;
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut max_bytes = s.max_bytes;
        for &i in &plan.send {
            let ((topic, partition), p) = &params[i];
            max_bytes = max_bytes.max(p.max_bytes);
            let fp = FetchPartition {
                partition: *partition,
                current_leader_epoch: p.leader_epoch,
                fetch_offset: p.offset,
                partition_max_bytes: p.max_bytes,
                ..Default::default()
            };
            let topic_id = id_of(topic);
            match topics.iter_mut().find(|t| {
                if by_id {
                    t.topic_id == topic_id
                } else {
                    *t.topic == **topic
                }
            }) {
                Some(t) => t.partitions.push(fp),
                None => topics.push(FetchTopic {
                    topic: if by_id {
                        String::new()
                    } else {
                        topic.to_string()
                    },
                    topic_id,
                    partitions: vec![fp],
                    ..Default::default()
                }),
            }
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for (topic, partition) in &plan.forgotten {
            let topic_id = id_of(topic);
            match forgotten.iter_mut().find(|t| {
                if by_id {
                    t.topic_id == topic_id
                } else {
                    *t.topic == **topic
                }
            }) {
                Some(t) => t.partitions.push(*partition),
                None => forgotten.push(ForgottenTopic {
                    topic: if by_id {
                        String::new()
                    } else {
                        topic.to_string()
                    },
                    topic_id,
                    partitions: [*partition].into(),
                    ..Default::default()
                }),
            }
        }
        let req = FetchRequest {
            max_wait_ms: i32::try_from(s.max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: s.min_bytes,
            max_bytes,
            isolation_level: s.isolation.code(),
            session_id: plan.session_id,
            session_epoch: plan.epoch,
            topics,
            forgotten_topics_data: forgotten,
            ..Default::default()
        };
        let timeout = s.request_timeout + s.max_wait;
        let resp: FetchResponse = tokio::select! {
            r = conn.send_with_timeout(&req, version, timeout) => r?,
            _ = self.stop.notified() => return Ok(Flow::Stop),
        };
        let code = ErrorCode(resp.error_code);
        if !code.is_ok() {
            self.session.reset();
            if code == ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                || code == ErrorCode::INVALID_FETCH_SESSION_EPOCH
                || code == ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR
            {
                tracing::debug!(broker = %self.broker.addr(), %code, "fetch session reset");
                return Ok(Flow::Go);
            }
            return Err(Error::Broker {
                api: ApiKey::Fetch,
                code,
                context: Some(self.broker.addr()),
            });
        }
        if version >= 7 {
            self.session.on_response(resp.session_id);
        }
        let throttle = resp.throttle_time_ms;
        // Each answered partition is found through one index of the
        // tracked ones (a search per answer was quadratic in partitions),
        // then handled from the highest index down: a partition that
        // leaves takes the last one's place (`swap_remove`), which was
        // handled already, so the lower indices stay true. A partition
        // answered twice (no broker does) counts once; what the second
        // copy held is fetched again from the partition's offset.
        let mut answered: Vec<(usize, PartitionData)> = Vec::new();
        {
            let index: HashMap<(&str, i32), usize> = self
                .parts
                .iter()
                .enumerate()
                .map(|(i, t)| ((&*t.shared.topic, t.shared.partition), i))
                .collect();
            let mut seen = vec![false; self.parts.len()];
            for topic in resp.responses {
                // Answers by topic id: the name is the one this request
                // used for the id.
                let name: &str = if by_id {
                    match ids.iter().find(|(_, id)| **id == topic.topic_id) {
                        Some((n, _)) => n,
                        None => continue,
                    }
                } else {
                    &topic.topic
                };
                for pd in topic.partitions {
                    let Some(&idx) = index.get(&(name, pd.partition_index)) else {
                        continue;
                    };
                    if std::mem::replace(&mut seen[idx], true) {
                        tracing::debug!(broker = %self.broker.addr(), topic = name,
                            partition = pd.partition_index, "partition answered twice; the copy is ignored");
                        continue;
                    }
                    answered.push((idx, pd));
                }
            }
        }
        answered.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        for (idx, pd) in answered {
            self.partition_data(idx, pd, version);
        }
        if throttle > 0 {
            // The broker asks us to hold off (quota); Kafka clients wait
            // that long before the next request to it.
            let wait = std::time::Duration::from_millis(throttle.min(60_000) as u64);
            tracing::debug!(broker = %self.broker.addr(), ?wait, "fetch throttled");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.notified() => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Go)
    }

    /// The version to fetch at (at most `offered`) and, from v13 on, the
    /// id of every topic the request may name: the partitions tracked
    /// and those still in the session. v12 when metadata lacks one.
    fn topic_ids(&self, offered: i16) -> (i16, HashMap<String, Uuid>) {
        let mut ids = HashMap::default();
        if offered <= LAST_FETCH_BY_NAME {
            return (offered, ids);
        }
        let meta = self.client.metadata();
        let names = self
            .parts
            .iter()
            .map(|t| &t.shared.topic)
            .chain(self.session.topics());
        for name in names {
            if ids.contains_key(&**name) {
                continue;
            }
            match meta.topics.get(&**name).map(|t| t.id) {
                Some(id) if id != Uuid::ZERO => {
                    ids.insert(name.to_string(), id);
                }
                _ => return (offered.min(LAST_FETCH_BY_NAME), HashMap::default()),
            }
        }
        (offered, ids)
    }

    fn partition_data(&mut self, idx: usize, pd: PartitionData, version: i16) {
        let code = ErrorCode(pd.error_code);
        let settings = self.settings.clone();
        let paused_all = self.paused_all.load(Ordering::SeqCst);
        let t = &mut self.parts[idx];
        if code.is_ok() && (paused_all || t.shared.paused.load(Ordering::SeqCst)) {
            // Paused while this fetch was in flight: nothing fetched after
            // `pause()` reaches the application. The data is dropped and
            // the position kept, so it is fetched again after `resume()`.
            tracing::trace!(topic = %t.shared.topic, partition = t.shared.partition,
                offset = t.offset, "data for a paused partition dropped");
            return;
        }
        if code.is_ok() {
            let lso = if version >= 4 {
                pd.last_stable_offset
            } else {
                -1
            };
            t.shared
                .high_water_mark
                .store(pd.high_watermark, Ordering::Relaxed);
            t.shared.last_stable_offset.store(lso, Ordering::Relaxed);
            let data = pd.records.unwrap_or_default();
            match walk(&data) {
                Ok(w) if w.complete > 0 => {
                    let chunk = Chunk {
                        records: data.slice(..w.complete),
                        start: t.offset,
                        high_water_mark: pd.high_watermark,
                        last_stable_offset: lso,
                        aborted: if settings.isolation == IsolationLevel::ReadCommitted {
                            pd.aborted_transactions.unwrap_or_default()
                        } else {
                            Vec::new()
                        },
                    };
                    t.offset = t.offset.max(w.next_offset);
                    t.max_bytes = settings.partition_max_bytes;
                    t.deliver(Ok(chunk));
                }
                Ok(w) => {
                    // Nothing complete: a first batch bigger than the limit
                    // came back cut short (brokers before KIP-74, or a
                    // partition after the first). Ask for all of it next.
                    if let Some(size) = w.partial_size {
                        let size = i32::try_from(size).unwrap_or(i32::MAX);
                        if size > t.max_bytes {
                            tracing::debug!(topic = %t.shared.topic, partition = t.shared.partition,
                                size, "record batch bigger than the partition limit; raising it");
                            t.max_bytes = size;
                        }
                    }
                }
                Err(e) => {
                    let t = self.parts.swap_remove(idx);
                    *lock(&t.shared.wake) = None;
                    t.fail(Error::Decode(e.context("FetchResponse.records")));
                }
            }
            return;
        }
        let (topic, partition) = (t.shared.topic.clone(), t.shared.partition);
        if code == ErrorCode::OFFSET_OUT_OF_RANGE {
            tracing::debug!(%topic, partition, offset = t.offset, "fetch offset out of range");
            self.hand_off(idx, Placement::OutOfRange);
        } else if code.invalidates_metadata() || code.is_retriable() {
            tracing::debug!(%topic, partition, %code, "partition moves; looking up its leader");
            self.client.report_error(code);
            self.hand_off(idx, Placement::LeaderMoved);
        } else {
            let t = self.parts.swap_remove(idx);
            *lock(&t.shared.wake) = None;
            t.fail(Error::Broker {
                api: ApiKey::Fetch,
                code,
                context: Some(format!("{topic}/{partition}")),
            });
        }
    }
}

/// Where the complete entries of a `records` field end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Bytes of complete entries.
    pub(crate) complete: usize,
    /// The offset after the last complete entry (0 when there is none).
    pub(crate) next_offset: i64,
    /// The full size of the partial entry after them, when its header says.
    pub(crate) partial_size: Option<usize>,
}

/// Walks the entry headers of a `records` field (v2 batches and legacy
/// messages alike: the length is at bytes 8..12 and the magic at 16) to
/// find the complete entries and the offset after them, without decoding
/// any record.
pub(crate) fn walk(data: &[u8]) -> std::result::Result<Walk, DecodeError> {
    const LOG_OVERHEAD: usize = 12;
    let mut pos = 0usize;
    let mut next_offset = 0i64;
    while data.len() - pos >= LOG_OVERHEAD {
        let e = &data[pos..];
        let size = i32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        let total = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(LOG_OVERHEAD))
            .ok_or_else(|| {
                DecodeError::invalid(format!("negative entry size {size}")).context("RecordSet")
            })?;
        if total > e.len() {
            return Ok(Walk {
                complete: pos,
                next_offset,
                partial_size: Some(total),
            });
        }
        if total <= 16 {
            return Err(DecodeError::invalid(format!(
                "entry of {total} bytes is too short to hold a magic byte"
            ))
            .context("RecordSet"));
        }
        let first = i64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let last = match e[16] {
            2 if total >= 27 => {
                let delta = i32::from_be_bytes([e[23], e[24], e[25], e[26]]);
                first.wrapping_add(i64::from(delta))
            }
            // A legacy entry's offset is its last (inner) offset.
            0 | 1 => first,
            m => {
                return Err(
                    DecodeError::invalid(format!("unknown magic {m} or short entry"))
                        .context("RecordSet"),
                );
            }
        };
        next_offset = last.wrapping_add(1);
        pos += total;
    }
    Ok(Walk {
        complete: pos,
        next_offset,
        partial_size: None,
    })
}

/// The high watermark of a partition (the last stable offset under
/// `read_committed`), read from a Fetch at the log start: ListOffsets
/// LATEST is answered wrongly by some brokers, a Fetch never is.
pub(crate) async fn high_water_mark(
    client: &Client,
    settings: &Settings,
    topic: &str,
    partition: i32,
) -> Result<i64> {
    let mut attempt = 0;
    // One byte is enough for a broker that returns the first batch whole
    // anyway (KIP-74); one that leaves the partition out of the answer
    // when nothing fits is asked again with the configured limit.
    let mut limit = 1;
    loop {
        attempt += 1;
        let start = client
            .list_offsets(topic, partition, OffsetSpec::Oldest)
            .await?;
        let leader = client.leader(topic, partition).await?;
        let conn = client.connection(&leader, settings.class).await?;
        let version = conn
            .api_versions()
            .version_for(ApiKey::Fetch, conn.broker())?
            .min(LAST_FETCH_BY_NAME);
        let req = FetchRequest {
            // tansu answers a zero wait with no partitions at all.
            max_wait_ms: 10,
            min_bytes: 1,
            max_bytes: limit,
            isolation_level: settings.isolation.code(),
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.to_string(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: start,
                    partition_max_bytes: limit,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let found = resp
            .responses
            .iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition);
        let p = match found {
            Some(p) => p,
            None if limit == 1 && resp.error_code == 0 => {
                limit = settings.partition_max_bytes;
                attempt -= 1;
                continue;
            }
            None => {
                return Err(Error::ProtocolViolation {
                    broker: leader.addr(),
                    reason: format!("Fetch answer has no {topic}/{partition}"),
                });
            }
        };
        let code = ErrorCode(if resp.error_code != 0 {
            resp.error_code
        } else {
            p.error_code
        });
        if code.is_ok() {
            let lso = p.last_stable_offset;
            return Ok(
                if settings.isolation == IsolationLevel::ReadCommitted && version >= 4 && lso >= 0 {
                    lso
                } else {
                    p.high_watermark
                },
            );
        }
        client.report_error(code);
        // The log start moved between the two requests: ask again.
        if code == ErrorCode::OFFSET_OUT_OF_RANGE && attempt < 3 {
            continue;
        }
        return Err(Error::Broker {
            api: ApiKey::Fetch,
            code,
            context: Some(format!("high watermark of {topic}/{partition}")),
        });
    }
}
