//! An in-process fake Kafka cluster for tests: N brokers on loopback TCP
//! speaking the real wire protocol, so any client (klamm, the Java client,
//! librdkafka, Sarama) connects to it as to Kafka.
//!
//! It keeps topics with partitions, leaders and replicas; takes Produce in
//! every codec and the legacy message formats, with the idempotence checks
//! of a real leader (retried batches answered with their first offset, out
//! of order sequences and fenced epochs refused); runs transactions with
//! markers, the last stable offset and the aborted-transactions list;
//! answers Fetch with long polls, size limits and fetch sessions, and
//! ListOffsets, Metadata, classic consumer groups, offset commits and the
//! admin basics. A test can then move leaders, stop and start brokers and
//! inject faults ([`Fault`]): error codes, delays, lost answers, and
//! connections cut after the request took effect; refuse one partition's
//! writes, hold answers while later requests come, and read back what each
//! batch sent was answered ([`FakeCluster::produced`]).
//!
//! ```
//! use klamm::{Client, Config};
//! use klamm::producer::{AsyncProducer, ProducerRecord};
//! use klamm_fake::FakeCluster;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = FakeCluster::builder().brokers(3).topic("orders", 2).start().await?;
//!
//! let mut config = Config::default();
//! config.net.bootstrap_servers = cluster.addresses();
//! let client = Client::connect(config).await?;
//! let producer = AsyncProducer::new(client.clone()).await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("orders", "hello").with_partition(1))
//!     .await?;
//! assert_eq!(delivery.await?.offset, 0);
//! producer.close().await?;
//!
//! let stored = cluster.records("orders", 1);
//! assert_eq!(stored[0].value.as_deref(), Some(&b"hello"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! Things it does not do: replication between brokers (every write is at
//! once on every replica, so the high watermark is the log end), log
//! compaction and retention, quotas, ACLs, SASL and TLS, topic ids in
//! Produce and Fetch (it offers Produce up to v12 and Fetch up to v12),
//! the KIP-848 group protocol and KIP-890's second transaction protocol.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use tokio::task::JoinHandle;

mod api;
mod builder;
mod control;
mod formats;
mod groups;
mod inspect;
mod log;
mod memory;
mod scripted;
mod server;
mod signal;
pub mod sim;
mod state;

pub use builder::Builder;
pub use control::{Fault, FaultError};
pub use inspect::{ProducedBatch, SeenRequest};
/// The klamm this crate is built on: its protocol types are the ones
/// [`ScriptedBroker`] answers with and [`FakeCluster::inject`] takes. A
/// crate whose own unit tests use the fake (klamm's do) names them through
/// this path, since those tests see a second build of klamm.
pub use klamm;
pub use log::{LoggedRecord, TxnMarker, TxnStatus};
pub use scripted::ScriptedBroker;

use server::Shared;
use state::State;

/// How often the cluster expires group members whose session ran out and
/// aborts transactions past their timeout.
const TICK: Duration = Duration::from_millis(100);

/// A running fake cluster. Dropping it stops every broker (dropping a
/// [`FakeCluster::handle`] does not).
#[derive(Debug)]
pub struct FakeCluster {
    shared: Arc<Shared>,
    /// The expiry ticker; `None` in a handle that does not own the cluster.
    ticker: Option<JoinHandle<()>>,
}

impl FakeCluster {
    /// A cluster of one broker and no topics (topics are created when
    /// first named).
    pub async fn start() -> std::io::Result<FakeCluster> {
        Builder::default().start().await
    }

    /// Settings for a cluster of more brokers, topics made up front and
    /// other broker defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Another handle to this cluster, for another task to control it;
    /// dropping the handle leaves the cluster running.
    pub fn handle(&self) -> FakeCluster {
        FakeCluster {
            shared: Arc::clone(&self.shared),
            ticker: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Every broker's `host:port`, comma-separated, as the
    /// `bootstrap.servers` property and other clients take it.
    pub fn bootstrap(&self) -> String {
        self.addresses().join(",")
    }

    /// Every broker's `host:port`, in id order.
    pub fn addresses(&self) -> Vec<String> {
        self.state()
            .brokers
            .values()
            .map(|b| format!("127.0.0.1:{}", b.port))
            .collect()
    }

    /// The ids of the brokers (1 to N).
    pub fn broker_ids(&self) -> Vec<i32> {
        self.state().brokers.keys().copied().collect()
    }

    /// Creates a topic (as CreateTopics would); an existing one is left as
    /// it is and `false` returned.
    pub fn create_topic(&self, name: &str, partitions: i32, replication: i16) -> bool {
        let mut st = self.state();
        if st.topics.contains_key(name) {
            return false;
        }
        let rf = replication.clamp(1, st.brokers.len() as i16);
        st.create_topic(name, partitions.max(1), rf, None, BTreeMap::new());
        drop(st);
        self.shared.bump();
        true
    }

    /// Appends record-set entries (v2 record batches, control batches
    /// among them, or legacy magic 0 and 1 messages, in any codec) to a
    /// partition's log as its leader stores them, for logs a producer
    /// would not write: chosen transaction markers, old message formats,
    /// batches bigger than a fetch asks for. Each entry goes at the log
    /// end with the log's offsets and the leader epoch stamped; a
    /// transactional batch opens its producer's transaction and a marker
    /// ends it (an abort is then in the aborted transactions that
    /// `read_committed` fetches get). No producer checks are made and no
    /// size limit applies. Returns the offset of the first entry; nothing
    /// is written unless every entry is whole and valid.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use klamm::protocol::records::{ControlRecord, EncodeOptions, Record, RecordBatch};
    /// use klamm_fake::{FakeCluster, TxnStatus};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = FakeCluster::builder().topic("t", 1).start().await?;
    /// let mut batch = RecordBatch::new(0, 1_000);
    /// batch.is_transactional = true;
    /// batch.producer_id = 7;
    /// batch.records.push(Record::new(None, Some(Bytes::from_static(b"v"))));
    /// let abort = ControlRecord::end_transaction(false, 0).to_batch(0, 1_000, 7, 0);
    /// let mut data = batch.encode_to_vec(&EncodeOptions::default())?;
    /// data.extend(abort.encode_to_vec(&EncodeOptions::default())?);
    /// assert_eq!(cluster.append_raw("t", 0, &data)?, 0);
    /// assert_eq!(cluster.high_watermark("t", 0), Some(2));
    /// assert_eq!(cluster.records("t", 0)[0].transaction, TxnStatus::Aborted);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append_raw(&self, topic: &str, partition: i32, data: &[u8]) -> Result<i64, FaultError> {
        let mut st = self.state();
        let p = st
            .partition_mut(topic, partition)
            .ok_or_else(|| FaultError::UnknownPartition(topic.to_string(), partition))?;
        let epoch = p.leader_epoch;
        let base = p
            .log
            .append_raw(bytes::Bytes::copy_from_slice(data), epoch)
            .map_err(FaultError::InvalidRecords)?;
        drop(st);
        self.shared.bump();
        Ok(base)
    }

    /// Makes the next `times` Metadata answers that describe `topic`
    /// describe it with `code` and no partitions, as a broker does for a
    /// topic whose creation has not reached it yet
    /// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE) or one the
    /// client may not describe (TOPIC_AUTHORIZATION_FAILED). The topic is
    /// otherwise unchanged (and not auto-created by those requests).
    pub fn metadata_topic_error(&self, topic: &str, code: ErrorCode, times: u64) {
        if times > 0 {
            self.state()
                .topic_errors
                .entry(topic.to_string())
                .or_default()
                .push_back((code, times));
        }
    }

    /// Holds the answers to requests of `api` that arrive from now on, at
    /// every broker, until [`FakeCluster::release`]: each request is
    /// handled (and counted by [`FakeCluster::requests`]) as it arrives,
    /// but its answer waits, and so does every later answer on its
    /// connection (answers go out in order). As if the answers were slow on
    /// their way back: the client meanwhile sends more requests, which
    /// are read and handled. Answers held when a connection closes are
    /// lost.
    pub fn hold(&self, api: ApiKey) {
        self.state().held.insert(api);
    }

    /// Stops holding the answers to `api` and sends those held, in order.
    pub fn release(&self, api: ApiKey) {
        self.state().held.remove(&api);
        self.shared.bump();
    }

    /// From now on, new producer ids (from InitProducerId) start at
    /// `epoch` instead of 0: a producer then soon runs out of epochs, as a
    /// long-lived one does after many bumps.
    pub fn first_producer_epoch(&self, epoch: i16) {
        self.state().first_producer_epoch = epoch;
    }

    /// Makes `broker` the coordinator of `key` (a group id or a
    /// transactional id) from now on, as if its `__consumer_offsets` or
    /// `__transaction_state` partition moved there; requests for the key
    /// elsewhere get NOT_COORDINATOR.
    pub fn place_coordinator(&self, key: &str, broker: i32) -> Result<(), FaultError> {
        let mut st = self.state();
        if !st.brokers.contains_key(&broker) {
            return Err(FaultError::UnknownBroker(broker));
        }
        st.placed.insert(key.to_string(), broker);
        Ok(())
    }

    /// Makes `broker` the partition's leader, bumping the leader epoch: the
    /// old leader answers NOT_LEADER_OR_FOLLOWER from now on.
    pub fn move_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<(), FaultError> {
        let mut st = self.state();
        let up = match st.brokers.get(&broker) {
            None => return Err(FaultError::UnknownBroker(broker)),
            Some(b) => b.up,
        };
        let p = st
            .partition_mut(topic, partition)
            .ok_or_else(|| FaultError::UnknownPartition(topic.to_string(), partition))?;
        if !p.replicas.contains(&broker) {
            return Err(FaultError::NotAReplica(broker));
        }
        if !up {
            return Err(FaultError::BrokerDown(broker));
        }
        if p.leader != broker {
            p.leader = broker;
            p.leader_epoch += 1;
        }
        drop(st);
        self.shared.bump();
        Ok(())
    }

    /// Stops a broker: its port closes, its connections drop, and its
    /// partitions elect another live replica (or have no leader).
    pub fn stop_broker(&self, broker: i32) -> Result<(), FaultError> {
        {
            let mut st = self.state();
            let b = st
                .brokers
                .get_mut(&broker)
                .ok_or(FaultError::UnknownBroker(broker))?;
            b.up = false;
            st.reelect();
        }
        let task = self
            .shared
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&broker);
        if let Some(t) = task {
            t.abort();
        }
        self.shared.close_connections(broker);
        self.shared.bump();
        Ok(())
    }

    /// Starts a stopped broker again on its port; partitions left without
    /// a leader elect it if it is a replica.
    pub async fn start_broker(&self, broker: i32) -> std::io::Result<()> {
        let port = match self.state().brokers.get(&broker) {
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    FaultError::UnknownBroker(broker),
                ));
            }
            Some(b) if b.up => return Ok(()),
            Some(b) => b.port,
        };
        // The old listener's socket may take a moment to close.
        let mut tries = 0;
        let listener = loop {
            match server::bind(port) {
                Ok(l) => break l,
                Err(e) if tries >= 50 => return Err(e),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        {
            let mut st = self.state();
            if let Some(b) = st.brokers.get_mut(&broker) {
                b.up = true;
            }
            st.reelect();
        }
        server::spawn_listener(Arc::clone(&self.shared), broker, listener);
        self.shared.bump();
        Ok(())
    }

    /// Injects `fault` into the next `times` requests of `api` at `broker`
    /// (`None`: at any broker). Faults queue in the order injected; a
    /// request takes the first that matches it.
    pub fn inject(
        &self,
        api: ApiKey,
        broker: Option<i32>,
        fault: Fault,
        times: u64,
    ) -> Result<(), FaultError> {
        if let Fault::Error(_) = fault
            && !api::errors::can_fail(api)
        {
            return Err(FaultError::NoErrorAnswer(api));
        }
        let mut st = self.state();
        if let Some(b) = broker
            && !st.brokers.contains_key(&b)
        {
            return Err(FaultError::UnknownBroker(b));
        }
        st.rules.push(control::Rule {
            api,
            broker,
            fault,
            remaining: times,
        });
        Ok(())
    }

    /// Injects `code` for one partition into the next `times` requests of
    /// `api` at `broker` (`None`: at any broker) that name
    /// `topic`-`partition`: that partition is answered with `code` and left
    /// as it was, while the request's other partitions are handled as
    /// usual, as a broker answers each partition of a Produce, a Fetch or
    /// an offset commit on its own (a Fetch that names it, or whose
    /// session holds it, is answered at once). A request refused as a
    /// whole (at a broker that is not the coordinator, from a fenced
    /// producer, ...) is answered as usual and does not use the error up.
    /// Produce, Fetch, OffsetCommit and TxnOffsetCommit take such errors;
    /// errors queue in the order injected.
    ///
    /// ```
    /// use klamm::protocol::error_codes::ErrorCode;
    /// use klamm::protocol::messages::ApiKey;
    /// use klamm_fake::FakeCluster;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = FakeCluster::builder().topic("in", 2).start().await?;
    /// // The next offset commit that names in-1 fails there, once.
    /// cluster.inject_partition_error(
    ///     ApiKey::OffsetCommit,
    ///     None,
    ///     "in",
    ///     1,
    ///     ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
    ///     1,
    /// )?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn inject_partition_error(
        &self,
        api: ApiKey,
        broker: Option<i32>,
        topic: &str,
        partition: i32,
        code: klamm::protocol::error_codes::ErrorCode,
        times: u64,
    ) -> Result<(), FaultError> {
        if !control::PER_PARTITION.contains(&api) {
            return Err(FaultError::NoPartitionErrorAnswer(api));
        }
        let mut st = self.state();
        if let Some(b) = broker
            && !st.brokers.contains_key(&b)
        {
            return Err(FaultError::UnknownBroker(b));
        }
        st.partition_rules.push(control::PartitionRule {
            api,
            broker,
            topic: topic.to_string(),
            partition,
            code,
            remaining: times,
        });
        Ok(())
    }

    /// A [`Connector`](klamm::net::Connector) that opens in-memory pipes to
    /// these brokers instead of sockets (give it to
    /// [`ClientOptions::connector`](klamm::client::ClientOptions)): the
    /// client and the cluster then share one runtime with no I/O, as the
    /// simulation runs them.
    pub fn connector(&self) -> Arc<dyn klamm::net::Connector> {
        Arc::new(memory::InMemory {
            shared: Arc::clone(&self.shared),
        })
    }

    /// From now on, offers only versions `min..=max` of `api` (within those
    /// the fake implements): ApiVersions says so, and a request at another
    /// version closes its connection, as Kafka does. An empty range stops
    /// offering the API.
    pub fn offer_versions(&self, api: ApiKey, min: i16, max: i16) {
        self.state().version_caps.insert(api, (min, max));
    }

    /// From now on, answers Fetch requests with slices of the log cut at
    /// their byte limits, as Kafka's log reads are (on), or with whole
    /// batches only (off, the default). Sliced, a partition's data may end
    /// in a partial batch, and its first batch is whole even when larger
    /// than the limit only in the first partition with data of a Fetch v3
    /// or later (KIP-74): a later partition's, or any at v0 to v2, is cut
    /// at the limit too. A client must then find where the whole batches
    /// end, and ask for more when none is.
    pub fn slice_fetches(&self, on: bool) {
        self.state().slice_fetches = on;
    }

    /// Drops every fault still waiting (those for single partitions too).
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.rules.clear();
        st.partition_rules.clear();
    }

    /// Cuts the client with `client_id` off `broker`: its connections there
    /// close at their next request, and so do new ones, until
    /// [`FakeCluster::heal`].
    pub fn partition_client(&self, client_id: &str, broker: i32) {
        self.state()
            .partitioned
            .insert((client_id.to_string(), broker));
    }

    /// Ends a [`FakeCluster::partition_client`].
    pub fn heal(&self, client_id: &str, broker: i32) {
        self.state()
            .partitioned
            .remove(&(client_id.to_string(), broker));
    }

    /// Forgets every producer's state on a partition (as retention does
    /// when it removes a producer's last batches): like Kafka since 2.5,
    /// the partition then takes the producer's next batch at whatever
    /// sequence it carries and checks from there.
    pub fn forget_producers(&self, topic: &str, partition: i32) -> Result<(), FaultError> {
        let mut st = self.state();
        let p = st
            .partition_mut(topic, partition)
            .ok_or_else(|| FaultError::UnknownPartition(topic.to_string(), partition))?;
        p.log.forget_producers();
        Ok(())
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        let Some(ticker) = self.ticker.take() else {
            return;
        };
        ticker.abort();
        let ids: Vec<i32> = self.broker_ids();
        let tasks: Vec<JoinHandle<()>> = {
            let mut l = self
                .shared
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *l).into_values().collect()
        };
        for t in tasks {
            t.abort();
        }
        if let Ok(mut st) = self.shared.state.lock() {
            for b in st.brokers.values_mut() {
                b.up = false;
            }
        }
        for id in ids {
            self.shared.close_connections(id);
        }
    }
}
