//! The `consumer` section.

use std::fmt;
use std::time::Duration;

use super::{Check, invalid};
use crate::Error;

/// How records are fetched and how a consumer takes part in a group.
///
/// Defaults follow the Java consumer (Kafka 4.x `ConsumerConfig`); where
/// Sarama differs, the field says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// `group.id`: the consumer group; `None` (the default) means no group:
    /// no group membership and no offset commits.
    pub group_id: Option<String>,
    /// `group.instance.id`: a static member id (KIP-345). Default `None`.
    pub group_instance_id: Option<String>,
    /// `group.stable.id` (klamm name): the identity a member names to the
    /// `stable` assignor, so that it gets its partitions back after a
    /// restart ([`StableAssignor`](crate::group::assignor::StableAssignor)).
    /// `group.instance.id` takes precedence; `None` (the default) uses
    /// `client.id@<host name>`.
    pub group_stable_id: Option<String>,
    /// `fetch.min.bytes`: the broker answers a fetch once this much data is
    /// available (or `fetch.max.wait.ms` passes). Default 1 (Java and
    /// Sarama).
    pub fetch_min_bytes: u32,
    /// `fetch.max.bytes`: the most data one fetch response should carry.
    /// Default 50 MiB (Java; Sarama's `Fetch.MaxBytes` is the same).
    pub fetch_max_bytes: u32,
    /// `fetch.max.decompressed.bytes` (klamm name): the most one fetched
    /// compressed batch may decompress to; a batch that would go past it
    /// fails to decode (the stream reports the error), and no more than
    /// this is ever allocated for it. `None` (`-1`, the default) takes
    /// `fetch.max.bytes`: a batch may hold at most what a whole fetch may
    /// carry, so a small hostile batch from a broker costs no more memory
    /// than a fetch of plain records would. The Java client and Sarama have
    /// no cap.
    pub fetch_max_decompressed_bytes: Option<usize>,
    /// `max.partition.fetch.bytes`: the most data per partition in a fetch.
    /// Default 1 MiB (Java; Sarama's `Fetch.Default` is the same).
    pub max_partition_fetch_bytes: u32,
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch waiting
    /// for `fetch.min.bytes`. Default 500 ms (Java; current Sarama's
    /// `MaxWaitTime` is the same, older Sarama used 250 ms). Must be less
    /// than `request.timeout.ms`.
    pub fetch_max_wait: Duration,
    /// `isolation.level`: whether records of open or aborted transactions
    /// are returned. Default [`IsolationLevel::ReadUncommitted`] (Java and
    /// Sarama).
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset`: where to start when there is no committed
    /// offset or it is out of range. Default [`OffsetReset::Latest`] (Java;
    /// Sarama's `OffsetNewest` is the same).
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`: commit consumed offsets in the background.
    /// Default on (Java and Sarama). Has no effect without a `group.id`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`: how often offsets are auto-committed.
    /// Default 5 s (Java); Sarama commits every 1 s.
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms`: how long the group coordinator waits for a
    /// heartbeat before removing the member. Default 45 s (Java since
    /// 3.0); Sarama uses 10 s.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`: how often heartbeats are sent; must be less
    /// than `session.timeout.ms`, typically a third of it at most. Default
    /// 3 s (Java and Sarama).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest the application may go between
    /// polls before the member leaves the group. Default 300 s (Java).
    pub max_poll_interval: Duration,
    /// `rebalance.timeout.ms` (klamm name): how long members have to rejoin
    /// once a rebalance starts, sent in JoinGroup. `None` (the default)
    /// uses `max.poll.interval.ms`, as the Java client does; Sarama uses
    /// 60 s.
    pub rebalance_timeout: Option<Duration>,
    /// `max.poll.records`: the most records one poll returns: a group
    /// consumer's [`GroupEvent::Records`](crate::group::GroupEvent::Records)
    /// (a longer fetched batch comes in pieces) and the records a share
    /// consumer asks each broker for
    /// ([`ShareOptions::from_config`](crate::share::ShareOptions::from_config)).
    /// Default 500 (Java).
    pub max_poll_records: u32,
    /// `check.crcs`: verify the CRC of fetched record batches. Default on
    /// (Java).
    pub check_crcs: bool,
    /// `default.api.timeout.ms`: how long a blocking consumer call with no
    /// timeout of its own (committing, reading committed offsets, closing)
    /// may take. Default 60 s (Java).
    pub default_api_timeout: Duration,
    /// `group.protocol`: the consumer-group protocol. Default
    /// [`GroupProtocol::Classic`] (Java).
    pub group_protocol: GroupProtocol,
    /// `partition.assignment.strategy`: the assignors a member of a
    /// classic group offers, in order of preference, by name (`range`,
    /// `roundrobin`, `sticky`, `cooperative-sticky`, `stable`; Java class names of
    /// these are accepted in properties). Default `range`,
    /// `cooperative-sticky` (Java since 3.0); Sarama offers `range`.
    pub partition_assignment_strategy: Vec<String>,
    /// `group.remote.assignor`: the broker-side assignor a member of a
    /// `consumer`-protocol group asks for (`uniform` or `range` on Apache
    /// Kafka). Default `None`: the broker's default.
    pub group_remote_assignor: Option<String>,
    /// `client.rack`: the rack of this consumer, for rack-aware
    /// assignment (KIP-881) and fetching from the closest replica.
    /// Default `None`.
    pub client_rack: Option<String>,
}

/// `group.protocol`: how a consumer group is coordinated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupProtocol {
    /// `classic`: JoinGroup/SyncGroup/Heartbeat, assignment by the group
    /// leader (the default).
    #[default]
    Classic,
    /// `consumer`: KIP-848's ConsumerGroupHeartbeat, assignment by the
    /// broker (Kafka 4.0+).
    Consumer,
}

impl GroupProtocol {
    /// The property value: `classic` or `consumer`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Consumer => "consumer",
        }
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            group_instance_id: None,
            group_stable_id: None,
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            fetch_max_decompressed_bytes: None,
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_wait: Duration::from_millis(500),
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            rebalance_timeout: None,
            max_poll_records: 500,
            check_crcs: true,
            default_api_timeout: Duration::from_secs(60),
            group_protocol: GroupProtocol::Classic,
            partition_assignment_strategy: vec!["range".into(), "cooperative-sticky".into()],
            group_remote_assignor: None,
            client_rack: None,
        }
    }
}

impl ConsumerConfig {
    /// The rebalance timeout to send in JoinGroup: `rebalance_timeout`, or
    /// `max_poll_interval` when it is unset.
    pub fn effective_rebalance_timeout(&self) -> Duration {
        self.rebalance_timeout.unwrap_or(self.max_poll_interval)
    }

    /// The most one fetched batch may decompress to:
    /// `fetch.max.decompressed.bytes`, or `fetch.max.bytes` when it is
    /// unset.
    ///
    /// ```
    /// use klamm::Config;
    ///
    /// assert_eq!(Config::default().consumer.decompression_cap(), 50 << 20);
    /// let c = Config::from_properties([("fetch.max.bytes", "1048576")])?;
    /// assert_eq!(c.consumer.decompression_cap(), 1 << 20);
    /// let c = Config::from_properties([("fetch.max.decompressed.bytes", "268435456")])?;
    /// assert_eq!(c.consumer.decompression_cap(), 256 << 20);
    /// # Ok::<(), klamm::Error>(())
    /// ```
    pub fn decompression_cap(&self) -> usize {
        self.fetch_max_decompressed_bytes
            .unwrap_or(self.fetch_max_bytes as usize)
            .max(1)
    }
}

/// `isolation.level`: which transactional records a consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted`: every record, including those of open and
    /// aborted transactions (the default).
    #[default]
    ReadUncommitted,
    /// `read_committed`: only committed transactional records, up to the
    /// last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The value of the Fetch request's `isolation_level` field.
    pub fn code(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }

    /// The property value: `read_uncommitted` or `read_committed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ReadUncommitted => "read_uncommitted",
            Self::ReadCommitted => "read_committed",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `auto.offset.reset`: where to start without a valid committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetReset {
    /// `earliest`: the oldest record still in the log.
    Earliest,
    /// `latest`: only records produced from now on (the default).
    #[default]
    Latest,
    /// `none`: report an error instead.
    None,
}

impl OffsetReset {
    /// The property value: `earliest`, `latest` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
            Self::None => "none",
        }
    }
}

impl fmt::Display for OffsetReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ConsumerConfig {
    pub(super) fn validate(&self, request_timeout: Duration) -> Result<(), Error> {
        if self.group_id.as_deref() == Some("") {
            return Err(invalid(
                "group.id",
                "must not be empty; leave it unset for no group",
            ));
        }
        if self.group_instance_id.as_deref() == Some("") {
            return Err(invalid("group.instance.id", "must not be empty"));
        }
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(invalid("group.instance.id", "needs group.id"));
        }
        for (key, v) in [
            ("fetch.min.bytes", self.fetch_min_bytes),
            ("fetch.max.bytes", self.fetch_max_bytes),
            ("max.partition.fetch.bytes", self.max_partition_fetch_bytes),
        ] {
            if v > i32::MAX as u32 {
                return Err(invalid(key, "must be at most 2147483647"));
            }
        }
        if self.fetch_max_bytes == 0 {
            return Err(invalid("fetch.max.bytes", "must be at least 1"));
        }
        if self.max_partition_fetch_bytes == 0 {
            return Err(invalid("max.partition.fetch.bytes", "must be at least 1"));
        }
        if self.fetch_min_bytes > self.fetch_max_bytes {
            return Err(invalid(
                "fetch.min.bytes",
                format!(
                    "{} is larger than fetch.max.bytes ({})",
                    self.fetch_min_bytes, self.fetch_max_bytes
                ),
            ));
        }
        Check::fits_i32_ms("fetch.max.wait.ms", self.fetch_max_wait)?;
        if self.fetch_max_wait >= request_timeout {
            return Err(invalid(
                "fetch.max.wait.ms",
                "must be less than request.timeout.ms, or every idle fetch would time out",
            ));
        }
        if self.enable_auto_commit {
            Check::positive("auto.commit.interval.ms", self.auto_commit_interval)?;
        }
        Check::positive("session.timeout.ms", self.session_timeout)?;
        Check::fits_i32_ms("session.timeout.ms", self.session_timeout)?;
        Check::positive("heartbeat.interval.ms", self.heartbeat_interval)?;
        if self.heartbeat_interval >= self.session_timeout {
            return Err(invalid(
                "heartbeat.interval.ms",
                "must be less than session.timeout.ms",
            ));
        }
        Check::positive("max.poll.interval.ms", self.max_poll_interval)?;
        Check::fits_i32_ms("max.poll.interval.ms", self.max_poll_interval)?;
        if let Some(t) = self.rebalance_timeout {
            Check::positive("rebalance.timeout.ms", t)?;
            Check::fits_i32_ms("rebalance.timeout.ms", t)?;
        }
        if self.fetch_max_decompressed_bytes == Some(0) {
            return Err(invalid(
                "fetch.max.decompressed.bytes",
                "must be at least 1 (or -1: fetch.max.bytes)",
            ));
        }
        if self.max_poll_records == 0 {
            return Err(invalid("max.poll.records", "must be at least 1"));
        }
        Check::positive("default.api.timeout.ms", self.default_api_timeout)?;
        if self.partition_assignment_strategy.is_empty() {
            return Err(invalid(
                "partition.assignment.strategy",
                "must name at least one assignor",
            ));
        }
        if let Some(name) = self
            .partition_assignment_strategy
            .iter()
            .find(|n| n.is_empty() || !n.is_ascii())
        {
            return Err(invalid(
                "partition.assignment.strategy",
                format!("`{name}` is not an assignor name"),
            ));
        }
        Ok(())
    }
}
