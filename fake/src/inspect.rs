//! What a test reads back from the cluster: the logs, the markers, the
//! producers and groups, and every request the brokers handled (counted,
//! in flight, and kept whole while recording).

use std::collections::BTreeMap;

use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::{ApiKey, RequestBody};

use crate::FakeCluster;
use crate::log::{LoggedRecord, TxnMarker};

/// A request a broker handled, as [`FakeCluster::history`] keeps it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The broker that handled it.
    pub broker: i32,
    /// The version it was sent at.
    pub version: i16,
    /// The client id of its header (`None` when null).
    pub client_id: Option<String>,
    /// The request, decoded.
    pub body: RequestBody,
}

impl SeenRequest {
    /// The request's API.
    pub fn api(&self) -> ApiKey {
        self.body.api_key()
    }
}

/// One batch of a Produce request as the partition's leader handled it,
/// as [`FakeCluster::produced`] keeps it: what the producer sent (from the
/// batch's header) and what the leader made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBatch {
    /// The broker that handled it.
    pub broker: i32,
    /// Its producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// The sequence of its first record (-1 without idempotence).
    pub base_sequence: i32,
    /// How many records it holds.
    pub records: i32,
    /// The codec it was compressed with.
    pub compression: Compression,
    /// Whether it was sent in a transaction.
    pub transactional: bool,
    /// Its size in bytes, as `max.message.bytes` is checked against (a
    /// legacy message set's once converted to a v2 batch).
    pub size: usize,
    /// What the leader answered for it: NONE when it was written or
    /// recognised as a retry, else the error its partition got.
    pub error: ErrorCode,
    /// The offset it was written at (for a retry recognised, the first
    /// write's); -1 when it was not written.
    pub base_offset: i64,
    /// Whether it repeated a batch already written (a retry the
    /// idempotence checks recognised), so was not written again.
    pub duplicate: bool,
}

impl FakeCluster {
    /// The records a partition holds, in offset order (control records
    /// left out); empty for an unknown partition.
    pub fn records(&self, topic: &str, partition: i32) -> Vec<LoggedRecord> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.log.records())
            .unwrap_or_default()
    }

    /// The transaction markers a partition holds (the commit and abort
    /// control records its transaction coordinator wrote), in offset
    /// order; empty for an unknown partition.
    pub fn markers(&self, topic: &str, partition: i32) -> Vec<TxnMarker> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.log.markers())
            .unwrap_or_default()
    }

    /// The producer id and epoch the transaction coordinator holds for
    /// `transactional_id` (as its last InitProducerId gave them, or a
    /// fencing raised them); `None` before its first InitProducerId.
    pub fn transactional_producer(&self, transactional_id: &str) -> Option<(i64, i16)> {
        self.state()
            .txns
            .get(transactional_id)
            .map(|t| (t.producer_id, t.epoch))
    }

    /// A partition's high watermark (its log end: every write is on every
    /// replica at once).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.log.high_watermark())
    }

    /// A partition's last stable offset (below its oldest open
    /// transaction).
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.log.last_stable())
    }

    /// A partition's leader (`None` while no replica is up).
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.leader)
            .filter(|&l| l >= 0)
    }

    /// The offset `group` committed for a partition.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.state()
            .groups
            .get(group)
            .and_then(|g| g.offsets.get(&(topic.to_string(), partition)))
            .map(|c| c.offset)
    }

    /// The members of a group and the generation, as the coordinator has
    /// them now.
    pub fn group_members(&self, group: &str) -> (i32, Vec<String>) {
        self.state()
            .groups
            .get(group)
            .map(|g| (g.generation, g.members.keys().cloned().collect()))
            .unwrap_or((0, Vec::new()))
    }

    /// How many batches sent to a partition repeated one already written
    /// (retries the idempotence checks recognised).
    pub fn duplicates(&self, topic: &str, partition: i32) -> u64 {
        self.state()
            .duplicates
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests of `api` a broker (or, with `None`, every broker)
    /// handled.
    pub fn requests(&self, broker: Option<i32>, api: ApiKey) -> u64 {
        self.state()
            .handled
            .iter()
            .filter(|((b, k), _)| *k == api && broker.is_none_or(|x| x == *b))
            .map(|(_, n)| *n)
            .sum()
    }

    /// How many requests of `api` a broker (or, with `None`, every broker)
    /// is handling now: received and not yet answered, as a long poll
    /// waiting for data or a delayed answer is (a request never to be
    /// answered, [`Fault::NoResponse`](crate::Fault::NoResponse), counts until its connection closes).
    pub fn in_flight(&self, broker: Option<i32>, api: ApiKey) -> u64 {
        self.state()
            .in_flight
            .iter()
            .filter(|((b, k), _)| *k == api && broker.is_none_or(|x| x == *b))
            .map(|(_, (now, _))| *now)
            .sum()
    }

    /// The most requests of `api` that `broker` (or, with `None`, any one
    /// broker) was handling at once since the cluster started: 1 for a
    /// client that waits for each answer before its next request there.
    pub fn peak_in_flight(&self, broker: Option<i32>, api: ApiKey) -> u64 {
        self.state()
            .in_flight
            .iter()
            .filter(|((b, k), _)| *k == api && broker.is_none_or(|x| x == *b))
            .map(|(_, (_, peak))| *peak)
            .max()
            .unwrap_or(0)
    }

    /// The fetch sessions (KIP-227) the brokers hold, by id: a session is
    /// opened by a full Fetch and closed by a Fetch at epoch -1.
    pub fn fetch_sessions(&self) -> Vec<i32> {
        self.state().sessions.keys().copied().collect()
    }

    /// Every request handled since the cluster started, in order, when it
    /// was built with [`Builder::record_requests`](crate::Builder::record_requests) (empty otherwise).
    ///
    /// ```
    /// use klamm::protocol::messages::{ApiKey, RequestBody};
    /// use klamm_fake::FakeCluster;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = FakeCluster::builder().record_requests(true).start().await?;
    /// let mut config = klamm::Config::default();
    /// config.net.bootstrap_servers = cluster.addresses();
    /// config.net.client_id = "my-service".into();
    /// klamm::Client::connect(config).await?.close().await;
    /// let seen = cluster.history();
    /// assert_eq!(seen[0].api(), ApiKey::ApiVersions);
    /// assert!(seen.iter().all(|r| r.client_id.as_deref() == Some("my-service")));
    /// assert!(matches!(seen[1].body, RequestBody::Metadata(_)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn history(&self) -> Vec<SeenRequest> {
        self.state().history.clone()
    }

    /// Every batch sent to a partition that its leader examined, in the
    /// order handled, with its answer, when the cluster was built with
    /// [`Builder::record_requests`](crate::Builder::record_requests) (empty otherwise). Batches of a request
    /// answered by an injected [`Fault`](crate::Fault), sent to a broker that does not
    /// lead the partition or that could not be read are not among them.
    ///
    /// ```
    /// use klamm::producer::{AsyncProducer, ProducerRecord};
    /// use klamm::protocol::error_codes::ErrorCode;
    /// use klamm_fake::FakeCluster;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = FakeCluster::builder().record_requests(true).topic("t", 1).start().await?;
    /// let mut config = klamm::Config::default();
    /// config.net.bootstrap_servers = cluster.addresses();
    /// let producer = AsyncProducer::new(klamm::Client::connect(config).await?).await?;
    /// producer.send(ProducerRecord::new("t", "x").with_partition(0)).await?.await?;
    /// producer.close().await?;
    /// let sent = cluster.produced("t", 0);
    /// assert_eq!((sent[0].records, sent[0].base_sequence, sent[0].error), (1, 0, ErrorCode::NONE));
    /// # Ok(())
    /// # }
    /// ```
    pub fn produced(&self, topic: &str, partition: i32) -> Vec<ProducedBatch> {
        self.state()
            .produced
            .get(&(topic.to_string(), partition))
            .cloned()
            .unwrap_or_default()
    }

    /// How many requests of each API (by name) every broker handled.
    pub fn requests_by_api(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((_, api), n) in &self.state().handled {
            *out.entry(api.name()).or_insert(0) += n;
        }
        out
    }

    /// A digest of every request the brokers handled, in order, with the
    /// runtime's time (milliseconds since the cluster started) and the
    /// broker: two runs that handled the same requests at the same virtual
    /// times have the same digest.
    pub fn trace_digest(&self) -> u64 {
        self.state().trace
    }

    /// Why the brokers closed connections other than by an injected fault:
    /// requests they could not read, did not offer, or cannot answer. A
    /// test that expects none can assert this is empty.
    pub fn problems(&self) -> Vec<String> {
        self.state().problems.clone()
    }

    /// Connections `broker` has accepted so far.
    pub fn connections(&self, broker: i32) -> u64 {
        self.state().connections.get(&broker).copied().unwrap_or(0)
    }

    /// The current leader epoch of a partition (it starts at 0 and grows
    /// with each change of leader), or `None` if there is no such partition.
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        self.state()
            .partition(topic, partition)
            .map(|p| p.leader_epoch)
    }

    /// How many requests the injected faults still waiting will apply to
    /// (those of [`FakeCluster::inject`] and
    /// [`FakeCluster::inject_partition_error`]), for `api` or for every
    /// API: 0 once each was used.
    pub fn faults_left(&self, api: Option<ApiKey>) -> u64 {
        let st = self.state();
        let wanted = |a: ApiKey| api.is_none_or(|want| want == a);
        let whole = st
            .rules
            .iter()
            .filter(|r| wanted(r.api))
            .map(|r| r.remaining);
        let partial = st
            .partition_rules
            .iter()
            .filter(|r| wanted(r.api))
            .map(|r| r.remaining);
        whole.chain(partial).fold(0u64, u64::saturating_add)
    }
}
