//! Faults a test injects into the cluster: what the next requests of an API
//! at a broker get instead of (or on top of) the usual answer.

use std::time::Duration;

use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;

/// What a request matched by an injected fault gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered with this error code (every partition or item of the
    /// request carries it, and those of an incremental Fetch's session
    /// too; a fetch session error is a Fetch answer's own, with no
    /// partitions, as Kafka sends it); nothing is applied.
    Error(ErrorCode),
    /// Applied at once, answered after this long (the connection handles
    /// nothing else meanwhile, as a broker handles one request of a
    /// connection at a time).
    Delay(Duration),
    /// Applied, never answered; the connection stays open and answers
    /// nothing more (a broker answers a connection's requests in order, so
    /// no later answer can pass the lost one), until the client closes it.
    NoResponse,
    /// Applied, then the connection closes before the answer goes out: the
    /// client cannot tell whether its request took effect.
    CutAfterApply,
    /// The connection closes as the request arrives; nothing is applied.
    CutBeforeApply,
    /// Applied and answered, with this many zero bytes after the answer's
    /// last field (inside the frame): a broker or proxy whose answers carry
    /// bytes the schema does not, as librdkafka's mock cluster does after
    /// flexible Metadata answers. A strict client fails to read it.
    TrailingBytes(u16),
}

/// A fault waiting for the requests it applies to.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub api: ApiKey,
    /// The broker it applies at; `None` for every broker.
    pub broker: Option<i32>,
    pub fault: Fault,
    pub remaining: u64,
}

/// An error waiting for one partition of the next requests of an API
/// ([`crate::FakeCluster::inject_partition_error`]).
#[derive(Debug, Clone)]
pub(crate) struct PartitionRule {
    pub api: ApiKey,
    /// The broker it applies at; `None` for every broker.
    pub broker: Option<i32>,
    pub topic: String,
    pub partition: i32,
    pub code: ErrorCode,
    pub remaining: u64,
}

/// The APIs whose answers carry an error per partition that a broker
/// gives each partition on its own: those
/// [`crate::FakeCluster::inject_partition_error`] takes.
pub(crate) const PER_PARTITION: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::OffsetCommit,
    ApiKey::TxnOffsetCommit,
];

/// Why a fault could not be injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultError {
    /// The fake cannot shape an error answer for this API (it can for
    /// every API it implements but ApiVersions and the SASL ones).
    NoErrorAnswer(ApiKey),
    /// No broker has this id.
    UnknownBroker(i32),
    /// The fake cannot fail one partition of this API alone (it can for
    /// Produce, Fetch, OffsetCommit and TxnOffsetCommit).
    NoPartitionErrorAnswer(ApiKey),
    /// No such topic or partition.
    UnknownPartition(String, i32),
    /// The broker named is not a replica of the partition.
    NotAReplica(i32),
    /// The broker named is down.
    BrokerDown(i32),
    /// Bytes given as record-set entries are not whole, valid entries.
    InvalidRecords(String),
}

impl std::fmt::Display for FaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoErrorAnswer(api) => {
                write!(
                    f,
                    "the fake cluster cannot answer {} with an error code",
                    api.name()
                )
            }
            Self::UnknownBroker(id) => write!(f, "no broker {id} in the fake cluster"),
            Self::NoPartitionErrorAnswer(api) => write!(
                f,
                "the fake cluster cannot fail one partition of {} alone",
                api.name()
            ),
            Self::UnknownPartition(t, p) => write!(f, "no partition {t}-{p} in the fake cluster"),
            Self::NotAReplica(id) => write!(f, "broker {id} is not a replica of the partition"),
            Self::BrokerDown(id) => write!(f, "broker {id} is down"),
            Self::InvalidRecords(why) => write!(f, "not valid record-set entries: {why}"),
        }
    }
}

impl std::error::Error for FaultError {}
