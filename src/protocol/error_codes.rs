//! Every error code Apache Kafka defines (as of Kafka 3.8), with its
//! canonical name, a short description, and how a client should react.
//!
//! Kafka responses carry errors as an `int16` code. [`ErrorCode`] wraps that
//! value and looks up everything else from one static table:
//!
//! - [`ErrorCode::name`]: the name Kafka uses (`NOT_LEADER_OR_FOLLOWER`);
//! - [`ErrorCode::message`]: a one-line explanation;
//! - [`ErrorCode::is_retriable`]: whether retrying the same request may
//!   succeed (the Java client's exception for the code extends
//!   `RetriableException`);
//! - [`ErrorCode::invalidates_metadata`]: whether the client's cluster
//!   metadata is probably stale and should be refreshed before retrying (the
//!   Java exception extends `InvalidMetadataException`). Every such code is
//!   also retriable.
//!
//! Codes are contiguous from -1 to [`ErrorCode::MAX_KNOWN`], so lookups are a
//! bounds check and an index. Codes outside the table (a newer broker, or a
//! corrupt response) are still representable; they report the name
//! `UNKNOWN_CODE` and are not retriable.
//!
//! ```
//! use klamm::protocol::error_codes::ErrorCode;
//!
//! let err = ErrorCode::from(6);
//! assert_eq!(err, ErrorCode::NOT_LEADER_OR_FOLLOWER);
//! assert_eq!(err.name(), "NOT_LEADER_OR_FOLLOWER");
//! assert!(err.is_retriable() && err.invalidates_metadata());
//! assert_eq!(format!("{err:?}"), "NOT_LEADER_OR_FOLLOWER(6)");
//!
//! assert!(ErrorCode::NONE.is_ok());
//! assert!(!ErrorCode::TOPIC_AUTHORIZATION_FAILED.is_retriable());
//! assert_eq!(ErrorCode::from(9999).name(), "UNKNOWN_CODE");
//! assert_eq!(ErrorCode::from_name("UNKNOWN_TOPIC_ID"), Some(ErrorCode(100)));
//! ```
//!
//! # References
//! - Kafka protocol guide, "Error Codes": <https://kafka.apache.org/protocol#protocol_error_codes>
//! - Java client: `org.apache.kafka.common.protocol.Errors` and the exception
//!   classes in `org.apache.kafka.common.errors`, from apache/kafka at tag
//!   3.8.0 (commit 771b9576b00ecf5b64ab6e8bedf04156fbdb5cd6)

use std::fmt;

/// A Kafka error code as it appears on the wire (an int16).
///
/// Any `i16` is a valid `ErrorCode`; use [`ErrorCode::is_known`] to ask
/// whether it is one Kafka defines. The default is [`ErrorCode::NONE`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(pub i16);

/// One row of the table: everything known about one code.
struct Row {
    code: i16,
    name: &'static str,
    retriable: bool,
    invalidates_metadata: bool,
    message: &'static str,
}

// Flags used in the table below: `(retriable, invalidates_metadata)`.
// In Kafka every metadata-invalidating error is also retriable, so there is
// no "metadata but not retriable" combination.
/// Not retriable.
const N: (bool, bool) = (false, false);
/// Retriable; metadata is still valid.
const R: (bool, bool) = (true, false);
/// Retriable, and the client's metadata is stale: refresh it first.
const RM: (bool, bool) = (true, true);

/// Defines, from one list, the associated constants, [`ErrorCode::ALL`] and
/// the lookup table. Entries must be in ascending code order starting at -1
/// with no gaps; a compile-time check below enforces it.
macro_rules! error_codes {
    ($($name:ident = $code:literal, $flags:ident, $msg:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($code), "): ", $msg, ".")]
                pub const $name: ErrorCode = ErrorCode($code);
            )*

            /// Every error code Kafka defines, in ascending order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }

        /// The table, indexed by `code + 1`.
        static TABLE: &[Row] = &[$(
            Row {
                code: $code,
                name: stringify!($name),
                retriable: $flags.0,
                invalidates_metadata: $flags.1,
                message: $msg,
            }
        ),*];
    };
}

// Facts (codes, names, flags) from Kafka 4.4.0's `Errors` and exception
// hierarchy (checked in the kafka-clients 4.4.0 jar: codes from the enum's
// initialiser, retriable where the exception extends RetriableException);
// the messages are this crate's own wording.
error_codes! {
    UNKNOWN_SERVER_ERROR = -1, N,
        "the broker hit an unexpected internal error; check the broker logs";
    NONE = 0, N, "no error";
    OFFSET_OUT_OF_RANGE = 1, N,
        "the offset is outside the range the partition's log holds; reset the position";
    CORRUPT_MESSAGE = 2, R,
        "a record is corrupt (bad CRC or size, or a null key on a compacted topic)";
    UNKNOWN_TOPIC_OR_PARTITION = 3, RM,
        "the broker does not host this topic or partition; refresh metadata and retry";
    INVALID_FETCH_SIZE = 4, N, "the fetch size in the request is not valid";
    LEADER_NOT_AVAILABLE = 5, RM,
        "the partition has no leader right now (an election may be running); refresh metadata and retry";
    NOT_LEADER_OR_FOLLOWER = 6, RM,
        "the broker is not the leader (or a follower) for this partition; refresh metadata and retry";
    REQUEST_TIMED_OUT = 7, R, "the broker did not finish the request within its timeout";
    BROKER_NOT_AVAILABLE = 8, N, "the broker is not available";
    REPLICA_NOT_AVAILABLE = 9, RM,
        "a replica of the partition is unavailable on the broker; refresh metadata and retry";
    MESSAGE_TOO_LARGE = 10, N,
        "the record or batch is larger than the broker or topic accepts";
    STALE_CONTROLLER_EPOCH = 11, N,
        "the request carried an outdated controller epoch; the controller has moved";
    OFFSET_METADATA_TOO_LARGE = 12, N,
        "the metadata string attached to a committed offset is too long";
    NETWORK_EXCEPTION = 13, RM,
        "the connection was closed before a response arrived; refresh metadata and retry";
    COORDINATOR_LOAD_IN_PROGRESS = 14, R,
        "the coordinator is still loading its state; retry shortly";
    COORDINATOR_NOT_AVAILABLE = 15, R,
        "the group or transaction coordinator is unavailable; look it up again and retry";
    NOT_COORDINATOR = 16, R,
        "this broker is not the coordinator for the group or transaction; find it again and retry";
    INVALID_TOPIC_EXCEPTION = 17, N,
        "the request targets an invalid topic (a bad name, or an operation not allowed on it)";
    RECORD_LIST_TOO_LARGE = 18, N,
        "a record batch is larger than the broker's configured log segment size";
    NOT_ENOUGH_REPLICAS = 19, R,
        "fewer in-sync replicas than min.insync.replicas; the write was rejected";
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20, R,
        "the write reached the leader's log, but too few in-sync replicas acknowledged it";
    INVALID_REQUIRED_ACKS = 21, N, "the acks value is not valid (use -1, 0 or 1)";
    ILLEGAL_GENERATION = 22, N, "the member's group generation is out of date; rejoin the group";
    INCONSISTENT_GROUP_PROTOCOL = 23, N,
        "the member's protocol type or protocols do not match the group's";
    INVALID_GROUP_ID = 24, N, "the group id is empty or otherwise invalid";
    UNKNOWN_MEMBER_ID = 25, N, "the coordinator does not know this member id; rejoin the group";
    INVALID_SESSION_TIMEOUT = 26, N,
        "the session timeout is outside the range the broker allows";
    REBALANCE_IN_PROGRESS = 27, N, "the group is rebalancing; rejoin the group";
    INVALID_COMMIT_OFFSET_SIZE = 28, N,
        "the offset commit was rejected because its data size is invalid";
    TOPIC_AUTHORIZATION_FAILED = 29, N, "the client is not authorized to access this topic";
    GROUP_AUTHORIZATION_FAILED = 30, N, "the client is not authorized to access this group";
    CLUSTER_AUTHORIZATION_FAILED = 31, N,
        "the client is not authorized for this cluster-level operation";
    INVALID_TIMESTAMP = 32, N, "a record timestamp is outside the range the topic accepts";
    UNSUPPORTED_SASL_MECHANISM = 33, N,
        "the broker does not enable the requested SASL mechanism";
    ILLEGAL_SASL_STATE = 34, N, "the request is not valid at this point of the SASL exchange";
    UNSUPPORTED_VERSION = 35, N, "the broker does not support this API version";
    TOPIC_ALREADY_EXISTS = 36, N, "a topic with this name already exists";
    INVALID_PARTITIONS = 37, N,
        "the partition count is invalid (for example zero, negative, or a decrease)";
    INVALID_REPLICATION_FACTOR = 38, N,
        "the replication factor is invalid or larger than the number of brokers";
    INVALID_REPLICA_ASSIGNMENT = 39, N, "the explicit replica assignment is invalid";
    INVALID_CONFIG = 40, N, "a configuration value in the request is invalid";
    NOT_CONTROLLER = 41, R,
        "this broker is not the active controller; retry against the current controller";
    INVALID_REQUEST = 42, N,
        "the request is malformed or inconsistent (likely a client bug); see the broker log";
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43, N,
        "the broker's message format version is too old for this request";
    POLICY_VIOLATION = 44, N, "a broker-side policy rejected the request";
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45, N,
        "the broker saw an unexpected producer sequence number; records may be missing";
    DUPLICATE_SEQUENCE_NUMBER = 46, N,
        "the broker already holds a batch with this producer sequence number";
    INVALID_PRODUCER_EPOCH = 47, N,
        "the producer epoch is stale (a newer instance took over, or the transaction timed out)";
    INVALID_TXN_STATE = 48, N, "the operation is not allowed in the transaction's current state";
    INVALID_PRODUCER_ID_MAPPING = 49, N,
        "the transactional id has no valid producer id mapping (it may have expired)";
    INVALID_TRANSACTION_TIMEOUT = 50, N,
        "the transaction timeout exceeds the broker's transaction.max.timeout.ms";
    CONCURRENT_TRANSACTIONS = 51, R,
        "another transactional operation for this producer is still completing; retry";
    TRANSACTION_COORDINATOR_FENCED = 52, N,
        "this transaction coordinator has been replaced by a newer one";
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53, N,
        "the client is not authorized to use this transactional id";
    SECURITY_DISABLED = 54, N, "security features are disabled on the broker";
    OPERATION_NOT_ATTEMPTED = 55, N,
        "the broker skipped this operation because another part of the batch failed";
    KAFKA_STORAGE_ERROR = 56, RM,
        "the partition's log directory is offline on the broker; refresh metadata and retry";
    LOG_DIR_NOT_FOUND = 57, N,
        "the named log directory is not in the broker's configuration";
    SASL_AUTHENTICATION_FAILED = 58, N,
        "SASL authentication failed; check the credentials and mechanism";
    UNKNOWN_PRODUCER_ID = 59, N,
        "the broker has no state for this producer id (it may have expired)";
    REASSIGNMENT_IN_PROGRESS = 60, N,
        "a replica reassignment is already running for this partition";
    DELEGATION_TOKEN_AUTH_DISABLED = 61, N,
        "delegation token authentication is disabled on the broker";
    DELEGATION_TOKEN_NOT_FOUND = 62, N, "no such delegation token exists";
    DELEGATION_TOKEN_OWNER_MISMATCH = 63, N,
        "the principal is neither the owner nor a renewer of this delegation token";
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64, N,
        "delegation token operations need an authenticated, non-token channel (not plaintext or one-way TLS)";
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65, N,
        "the client is not authorized for this delegation token operation";
    DELEGATION_TOKEN_EXPIRED = 66, N, "the delegation token has expired";
    INVALID_PRINCIPAL_TYPE = 67, N, "the principal type is not supported";
    NON_EMPTY_GROUP = 68, N, "the group still has members, so it cannot be deleted";
    GROUP_ID_NOT_FOUND = 69, N, "no group with this id exists";
    FETCH_SESSION_ID_NOT_FOUND = 70, R,
        "the broker no longer has this fetch session; start a new one";
    INVALID_FETCH_SESSION_EPOCH = 71, R,
        "the fetch session epoch is not the expected one; start a new session";
    LISTENER_NOT_FOUND = 72, RM,
        "the leader has no endpoint for the listener this client uses; refresh metadata and retry";
    TOPIC_DELETION_DISABLED = 73, N, "topic deletion is disabled on the broker";
    FENCED_LEADER_EPOCH = 74, RM,
        "the request's leader epoch is older than the broker's; refresh metadata and retry";
    UNKNOWN_LEADER_EPOCH = 75, R,
        "the request's leader epoch is newer than the broker knows yet; retry later";
    UNSUPPORTED_COMPRESSION_TYPE = 76, N,
        "the client's request version cannot carry the topic's compression codec (e.g. zstd)";
    STALE_BROKER_EPOCH = 77, N, "the broker epoch in the request is out of date";
    OFFSET_NOT_AVAILABLE = 78, R,
        "the leader cannot serve this offset yet (e.g. just after an election); retry";
    MEMBER_ID_REQUIRED = 79, N,
        "the group needs a member id; rejoin with the id the coordinator returned";
    PREFERRED_LEADER_NOT_AVAILABLE = 80, RM,
        "the preferred replica could not become leader (offline or out of sync)";
    GROUP_MAX_SIZE_REACHED = 81, N, "the group already has its maximum number of members";
    FENCED_INSTANCE_ID = 82, N,
        "another member with the same group.instance.id has taken over this static member";
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83, RM,
        "no replica eligible to become leader is available for this partition";
    ELECTION_NOT_NEEDED = 84, RM,
        "no leader election was needed (the wanted replica already leads)";
    NO_REASSIGNMENT_IN_PROGRESS = 85, N,
        "there is no replica reassignment running to cancel";
    GROUP_SUBSCRIBED_TO_TOPIC = 86, N,
        "offsets cannot be deleted for a topic the group is subscribed to";
    INVALID_RECORD = 87, N,
        "the broker rejected a record that failed its validation";
    UNSTABLE_OFFSET_COMMIT = 88, R,
        "a transactional offset commit is still pending for this partition; retry later";
    THROTTLING_QUOTA_EXCEEDED = 89, R,
        "a rate quota (e.g. topic creation) was exceeded; retry after the throttle time";
    PRODUCER_FENCED = 90, N,
        "a newer producer with the same transactional id has fenced this one";
    RESOURCE_NOT_FOUND = 91, N, "the requested resource does not exist";
    DUPLICATE_RESOURCE = 92, N, "the request names the same resource more than once";
    UNACCEPTABLE_CREDENTIAL = 93, N, "the credential does not meet the broker's requirements";
    INCONSISTENT_VOTER_SET = 94, N,
        "the sender or receiver of a KRaft voter request is not one of the expected voters";
    INVALID_UPDATE_VERSION = 95, N, "the requested feature version update is invalid";
    FEATURE_UPDATE_FAILED = 96, N,
        "finalized features could not be updated because of a server-side failure";
    PRINCIPAL_DESERIALIZATION_FAILURE = 97, N,
        "the broker could not decode the principal of a forwarded request (a cluster security setup problem)";
    SNAPSHOT_NOT_FOUND = 98, N, "the requested KRaft snapshot does not exist";
    POSITION_OUT_OF_RANGE = 99, N,
        "the requested position is negative or past the end of the snapshot";
    UNKNOWN_TOPIC_ID = 100, RM,
        "the broker does not know this topic id; refresh metadata and retry";
    DUPLICATE_BROKER_REGISTRATION = 101, N,
        "another broker is already registered with this broker id";
    BROKER_ID_NOT_REGISTERED = 102, N, "no broker is registered with this id";
    INCONSISTENT_TOPIC_ID = 103, RM,
        "the topic id in the request differs from the one in the broker's log; refresh metadata";
    INCONSISTENT_CLUSTER_ID = 104, N,
        "the cluster id in the request does not match the receiver's cluster id";
    TRANSACTIONAL_ID_NOT_FOUND = 105, N, "no transaction state exists for this transactional id";
    FETCH_SESSION_TOPIC_ID_ERROR = 106, R,
        "the fetch session mixed topic ids inconsistently; start a new session";
    INELIGIBLE_REPLICA = 107, N,
        "the proposed ISR includes at least one replica that is not eligible";
    NEW_LEADER_ELECTED = 108, N,
        "the partition state was updated, but the leader changed in the meantime";
    OFFSET_MOVED_TO_TIERED_STORAGE = 109, N,
        "the requested offset now lives only in tiered (remote) storage";
    FENCED_MEMBER_EPOCH = 110, N,
        "the coordinator fenced this member's epoch; give up partitions and rejoin";
    UNRELEASED_INSTANCE_ID = 111, N,
        "the static instance id is still held by a member that has not left the group";
    UNSUPPORTED_ASSIGNOR = 112, N,
        "the group coordinator does not support the requested assignor";
    STALE_MEMBER_EPOCH = 113, N,
        "the member epoch is out of date; retry once the heartbeat returns the current epoch";
    MISMATCHED_ENDPOINT_TYPE = 114, N,
        "the request reached the wrong kind of endpoint (e.g. a broker instead of a controller)";
    UNSUPPORTED_ENDPOINT_TYPE = 115, N, "the server does not yet support this kind of endpoint";
    UNKNOWN_CONTROLLER_ID = 116, N, "the receiver does not recognise the given controller id";
    UNKNOWN_SUBSCRIPTION_ID = 117, N,
        "the telemetry subscription id is unknown or outdated; get a new subscription";
    TELEMETRY_TOO_LARGE = 118, N,
        "the pushed client telemetry is larger than the broker accepts";
    INVALID_REGISTRATION = 119, N, "the controller rejected the broker registration as invalid";
    TRANSACTION_ABORTABLE = 120, N,
        "the transaction hit an error; abort it to keep using this transactional id";
    INVALID_RECORD_STATE = 121, N,
        "the record is no longer acquired by this share member (lock expired, or acknowledged)";
    SHARE_SESSION_NOT_FOUND = 122, R,
        "the broker has no share session for this member; open a new one";
    INVALID_SHARE_SESSION_EPOCH = 123, R,
        "the share session epoch is not the one the broker expects; open a new session";
    FENCED_STATE_EPOCH = 124, N, "the share-partition state epoch is stale";
    INVALID_VOTER_KEY = 125, N, "the voter key does not match the receiver's";
    DUPLICATE_VOTER = 126, N, "the voter is already part of the KRaft quorum";
    VOTER_NOT_FOUND = 127, N, "the voter is not part of the KRaft quorum";
    INVALID_REGULAR_EXPRESSION = 128, N,
        "the regular expression of the subscription is not valid (RE2J syntax)";
    REBOOTSTRAP_REQUIRED = 129, N,
        "the client must bootstrap again from its configured servers";
    STREAMS_INVALID_TOPOLOGY = 130, N, "the streams topology is not valid";
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131, N, "the streams topology epoch is not valid";
    STREAMS_TOPOLOGY_FENCED = 132, N,
        "the streams topology is stale; the member must rejoin with the current one";
    SHARE_SESSION_LIMIT_REACHED = 133, R,
        "the broker holds as many share sessions as it allows; try again later";
    GROUP_DELETION_FAILED = 134, N, "the group could not be deleted";
    STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED = 135, N,
        "the streams topology description could not be updated";
    CONTROLLER_ID_NOT_REGISTERED = 136, N, "the controller id is not registered";
}

// The table must start at -1 and step by one, so that `code + 1` indexes it,
// and `ALL` must list the same codes in the same order.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].code as i32 == i as i32 - 1);
        assert!(ErrorCode::ALL[i].0 == TABLE[i].code);
        // Kafka's InvalidMetadataException extends RetriableException.
        assert!(TABLE[i].retriable || !TABLE[i].invalidates_metadata);
        i += 1;
    }
    assert!(ErrorCode::ALL.len() == TABLE.len());
};

/// Name reported for codes that are not in the table.
const UNKNOWN_NAME: &str = "UNKNOWN_CODE";
/// Message reported for codes that are not in the table.
const UNKNOWN_MESSAGE: &str =
    "an error code this client does not know (perhaps from a newer broker)";

impl ErrorCode {
    /// The highest error code in the table (Kafka 4.4 defines up to 136,
    /// `CONTROLLER_ID_NOT_REGISTERED`).
    pub const MAX_KNOWN: ErrorCode = ErrorCode(TABLE.len() as i16 - 2);

    /// The raw wire value.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// `true` for [`ErrorCode::NONE`] (success).
    pub fn is_ok(self) -> bool {
        self == ErrorCode::NONE
    }

    /// The canonical Kafka name, such as `"NOT_LEADER_OR_FOLLOWER"`, or
    /// `"UNKNOWN_CODE"` for a code not in the table.
    pub fn name(self) -> &'static str {
        self.row().map_or(UNKNOWN_NAME, |r| r.name)
    }

    /// A one-line, lower-case description of the error and, where useful,
    /// what to do about it.
    pub fn message(self) -> &'static str {
        self.row().map_or(UNKNOWN_MESSAGE, |r| r.message)
    }

    /// Whether the same request may succeed if retried (after a metadata
    /// refresh, when [`ErrorCode::invalidates_metadata`] is also true).
    /// Unknown codes are not retriable.
    pub fn is_retriable(self) -> bool {
        self.row().is_some_and(|r| r.retriable)
    }

    /// Whether the broker does not know the topic id a request named
    /// (UNKNOWN_TOPIC_ID, INCONSISTENT_TOPIC_ID): its metadata lags behind
    /// the client's, or the topic was deleted and made again under the
    /// same name. Requests that can also name topics by name may be sent
    /// again that way.
    ///
    /// ```
    /// use klamm::protocol::error_codes::ErrorCode;
    ///
    /// assert!(ErrorCode::UNKNOWN_TOPIC_ID.refuses_topic_id());
    /// assert!(!ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.refuses_topic_id());
    /// ```
    pub fn refuses_topic_id(self) -> bool {
        self == ErrorCode::UNKNOWN_TOPIC_ID || self == ErrorCode::INCONSISTENT_TOPIC_ID
    }

    /// Whether this error means the client's cluster metadata (leaders,
    /// topic ids, partitions) is likely stale and should be refreshed
    /// before retrying. Implies [`ErrorCode::is_retriable`].
    pub fn invalidates_metadata(self) -> bool {
        self.row().is_some_and(|r| r.invalidates_metadata)
    }

    /// Whether Kafka defines this code (it is in [`ErrorCode::ALL`]).
    pub fn is_known(self) -> bool {
        self.row().is_some()
    }

    /// Looks up a code by its exact canonical name (case-sensitive), for
    /// example `"UNKNOWN_TOPIC_ID"`. `"UNKNOWN_CODE"` is not a name in the
    /// table and gives `None`.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        TABLE
            .iter()
            .find(|r| r.name == name)
            .map(|r| ErrorCode(r.code))
    }

    /// The table row for this code, found by index.
    fn row(self) -> Option<&'static Row> {
        let index = usize::try_from(i32::from(self.0) + 1).ok()?;
        TABLE.get(index)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

/// `NAME(code)`, for example `NOT_LEADER_OR_FOLLOWER(6)` or
/// `UNKNOWN_CODE(9999)`.
impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// `NAME (code): message`.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.0, self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Kafka 4.4.0's `Errors` enum has 138 constants: `UNKNOWN_SERVER_ERROR`
    /// (-1), `NONE` (0) and 1..=136 with no gaps. Checked with `javap` on
    /// `org.apache.kafka.common.protocol.Errors` in kafka-clients 4.4.0
    /// (3.8.0 stopped at 120, `TRANSACTION_ABORTABLE`).
    const KAFKA_4_4_COUNT: usize = 138;

    #[test]
    fn table_is_sorted_contiguous_and_unique() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(i32::from(row.code), i as i32 - 1, "{}", row.name);
        }
        assert!(ErrorCode::ALL.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        assert_eq!(
            ErrorCode::ALL.first(),
            Some(&ErrorCode::UNKNOWN_SERVER_ERROR)
        );
        assert_eq!(ErrorCode::ALL.last(), Some(&ErrorCode::MAX_KNOWN));
        let codes: HashSet<i16> = TABLE.iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), TABLE.len());
        for (row, code) in TABLE.iter().zip(ErrorCode::ALL) {
            assert_eq!(row.code, code.0);
            assert_eq!(row.name, code.name());
        }
    }

    #[test]
    fn count_matches_kafka_4_4() {
        assert_eq!(ErrorCode::ALL.len(), KAFKA_4_4_COUNT);
        assert_eq!(ErrorCode::MAX_KNOWN, ErrorCode(136));
        assert_eq!(
            ErrorCode::MAX_KNOWN,
            ErrorCode::CONTROLLER_ID_NOT_REGISTERED
        );
        assert!(ErrorCode::SHARE_SESSION_NOT_FOUND.is_retriable());
        assert!(ErrorCode::INVALID_SHARE_SESSION_EPOCH.is_retriable());
        assert!(ErrorCode::SHARE_SESSION_LIMIT_REACHED.is_retriable());
        assert!(!ErrorCode::INVALID_RECORD_STATE.is_retriable());
        assert!(!ErrorCode::REBOOTSTRAP_REQUIRED.is_retriable());
    }

    #[test]
    fn names_are_unique_screaming_snake() {
        let mut seen = HashSet::new();
        for row in TABLE {
            assert!(seen.insert(row.name), "duplicate name {}", row.name);
            let ok = !row.name.is_empty()
                && row
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && row.name.as_bytes()[0].is_ascii_uppercase()
                && !row.name.ends_with('_')
                && !row.name.contains("__");
            assert!(ok, "not SCREAMING_SNAKE: {}", row.name);
        }
        assert!(!seen.contains(UNKNOWN_NAME));
    }

    #[test]
    fn messages_are_short_single_lines() {
        for row in TABLE {
            assert!(
                !row.message.is_empty() && row.message.len() <= 110,
                "{}",
                row.name
            );
            assert!(
                !row.message.contains('\n') && !row.message.ends_with('.'),
                "{}",
                row.name
            );
        }
    }

    /// Flags checked against the exception class each code maps to in Kafka
    /// 3.8.0 (`org.apache.kafka.common.errors` unless noted) and its
    /// superclass chain.
    #[test]
    fn spot_checks_against_java_hierarchy() {
        // (code, retriable, invalidates_metadata)
        let cases = [
            // UnknownServerException extends ApiException
            (ErrorCode::UNKNOWN_SERVER_ERROR, false, false),
            // OffsetOutOfRangeException extends InvalidOffsetException extends ApiException
            (ErrorCode::OFFSET_OUT_OF_RANGE, false, false),
            // CorruptRecordException extends RetriableException
            (ErrorCode::CORRUPT_MESSAGE, true, false),
            // UnknownTopicOrPartitionException extends InvalidMetadataException
            (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, true, true),
            // LeaderNotAvailableException extends InvalidMetadataException
            (ErrorCode::LEADER_NOT_AVAILABLE, true, true),
            // NotLeaderOrFollowerException extends NotLeaderForPartitionException
            // extends InvalidMetadataException
            (ErrorCode::NOT_LEADER_OR_FOLLOWER, true, true),
            // TimeoutException extends RetriableException
            (ErrorCode::REQUEST_TIMED_OUT, true, false),
            // BrokerNotAvailableException extends ApiException
            (ErrorCode::BROKER_NOT_AVAILABLE, false, false),
            // NetworkException extends InvalidMetadataException
            (ErrorCode::NETWORK_EXCEPTION, true, true),
            // CoordinatorLoadInProgressException extends RetriableException
            (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, true, false),
            // NotEnoughReplicasAfterAppendException extends RetriableException
            (ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, true, false),
            // RebalanceInProgressException extends ApiException
            (ErrorCode::REBALANCE_IN_PROGRESS, false, false),
            // TopicAuthorizationException extends AuthorizationException extends ApiException
            (ErrorCode::TOPIC_AUTHORIZATION_FAILED, false, false),
            // NotControllerException extends RetriableException
            (ErrorCode::NOT_CONTROLLER, true, false),
            // ConcurrentTransactionsException extends RetriableException
            (ErrorCode::CONCURRENT_TRANSACTIONS, true, false),
            // KafkaStorageException extends InvalidMetadataException
            (ErrorCode::KAFKA_STORAGE_ERROR, true, true),
            // UnknownProducerIdException extends OutOfOrderSequenceException extends ApiException
            (ErrorCode::UNKNOWN_PRODUCER_ID, false, false),
            // FencedLeaderEpochException extends InvalidMetadataException
            (ErrorCode::FENCED_LEADER_EPOCH, true, true),
            // UnknownLeaderEpochException extends RetriableException (not metadata)
            (ErrorCode::UNKNOWN_LEADER_EPOCH, true, false),
            // OffsetNotAvailableException extends RetriableException
            (ErrorCode::OFFSET_NOT_AVAILABLE, true, false),
            // ElectionNotNeededException extends InvalidMetadataException
            (ErrorCode::ELECTION_NOT_NEEDED, true, true),
            // org.apache.kafka.common.InvalidRecordException extends ApiException
            (ErrorCode::INVALID_RECORD, false, false),
            // ThrottlingQuotaExceededException extends RetriableException
            (ErrorCode::THROTTLING_QUOTA_EXCEEDED, true, false),
            // ProducerFencedException extends ApiException
            (ErrorCode::PRODUCER_FENCED, false, false),
            // PositionOutOfRangeException extends ApiException
            (ErrorCode::POSITION_OUT_OF_RANGE, false, false),
            // UnknownTopicIdException extends InvalidMetadataException
            (ErrorCode::UNKNOWN_TOPIC_ID, true, true),
            // InconsistentTopicIdException extends InvalidMetadataException
            (ErrorCode::INCONSISTENT_TOPIC_ID, true, true),
            // FetchSessionTopicIdException extends RetriableException
            (ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR, true, false),
            // TransactionAbortableException extends ApiException
            (ErrorCode::TRANSACTION_ABORTABLE, false, false),
        ];
        for (code, retriable, metadata) in cases {
            assert_eq!(code.is_retriable(), retriable, "{code:?}");
            assert_eq!(code.invalidates_metadata(), metadata, "{code:?}");
        }
    }

    #[test]
    fn spot_check_codes_and_names() {
        let cases = [
            (-1, "UNKNOWN_SERVER_ERROR"),
            (0, "NONE"),
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (14, "COORDINATOR_LOAD_IN_PROGRESS"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (49, "INVALID_PRODUCER_ID_MAPPING"),
            (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"),
            (99, "POSITION_OUT_OF_RANGE"),
            (100, "UNKNOWN_TOPIC_ID"),
            (120, "TRANSACTION_ABORTABLE"),
        ];
        for (code, name) in cases {
            assert_eq!(ErrorCode(code).name(), name);
            assert!(ErrorCode(code).is_known());
        }
    }

    #[test]
    fn metadata_codes_are_retriable() {
        for code in ErrorCode::ALL {
            assert!(
                !code.invalidates_metadata() || code.is_retriable(),
                "{code:?}"
            );
        }
    }

    #[test]
    fn unknown_codes() {
        for raw in [9999, -2, 137, i16::MIN, i16::MAX] {
            let code = ErrorCode::from(raw);
            assert!(!code.is_known());
            assert_eq!(code.name(), "UNKNOWN_CODE");
            assert!(!code.is_retriable());
            assert!(!code.invalidates_metadata());
            assert!(!code.is_ok());
            assert_eq!(code.message(), UNKNOWN_MESSAGE);
            assert_eq!(format!("{code:?}"), format!("UNKNOWN_CODE({raw})"));
        }
        assert_eq!(ErrorCode::from_name("UNKNOWN_CODE"), None);
        assert_eq!(ErrorCode::from_name("not_leader_or_follower"), None);
    }

    #[test]
    fn from_name_round_trips() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.name()), Some(code));
        }
    }

    #[test]
    fn basics_and_formatting() {
        assert_eq!(ErrorCode::default(), ErrorCode::NONE);
        assert!(ErrorCode::NONE.is_ok() && !ErrorCode::NONE.is_retriable());
        assert!(!ErrorCode::UNKNOWN_SERVER_ERROR.is_ok());
        assert_eq!(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code(), 14);
        assert_eq!(i16::from(ErrorCode::UNKNOWN_TOPIC_ID), 100);
        let e = ErrorCode::NOT_LEADER_OR_FOLLOWER;
        assert_eq!(format!("{e:?}"), "NOT_LEADER_OR_FOLLOWER(6)");
        assert_eq!(
            e.to_string(),
            format!("NOT_LEADER_OR_FOLLOWER (6): {}", e.message())
        );
        assert!(ErrorCode(-1) < ErrorCode::NONE);
    }
}
