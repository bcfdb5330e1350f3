//! The crate's error type.
//!
//! One [`Error`] for everything klamm returns, with an [`ErrorKind`] that says
//! which layer failed and [`Error::is_retriable`] that says whether trying
//! again may help. The protocol layer's detailed errors ([`DecodeError`],
//! [`EncodeError`]) stay reachable through [`std::error::Error::source`].

use std::time::Duration;

use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;

/// Which kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connecting, reading or writing failed, or a connection closed.
    Network,
    /// Bytes from the wire could not be decoded, a value could not be
    /// encoded for the chosen version, or a peer broke the protocol.
    Protocol,
    /// The broker answered with a Kafka error code.
    Broker,
    /// A configuration value was rejected.
    Config,
    /// An operation did not finish in time.
    Timeout,
    /// Authentication failed.
    Auth,
    /// The application gave the work up: a record of a transaction that
    /// was aborted before the record was sent.
    Aborted,
    /// A call the object's current state does not allow (an operation on
    /// a closed consumer, a poll with records left unacknowledged).
    State,
}

/// The error type of every fallible klamm API.
///
/// ```
/// use klamm::{Error, ErrorKind};
/// use klamm::protocol::error::DecodeError;
/// use klamm::protocol::error_codes::ErrorCode;
/// use klamm::protocol::messages::ApiKey;
///
/// let err: Error = DecodeError::invalid("bad magic byte 7").into();
/// assert_eq!(err.kind(), ErrorKind::Protocol);
/// assert!(!err.is_retriable());
///
/// let err = Error::Broker { api: ApiKey::Produce, code: ErrorCode::NOT_LEADER_OR_FOLLOWER, context: None };
/// assert_eq!(err.kind(), ErrorKind::Broker);
/// assert!(err.is_retriable());
/// assert!(err.to_string().contains("NOT_LEADER_OR_FOLLOWER"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Decoding wire data failed.
    #[error("protocol decode error: {0}")]
    Decode(#[from] DecodeError),
    /// Encoding a value failed.
    #[error("protocol encode error: {0}")]
    Encode(#[from] EncodeError),
    /// A configuration value was rejected: `key` names the setting (by its
    /// Java/librdkafka property name, e.g. `linger.ms`) and `reason` says
    /// what is wrong with it. The reason never contains a secret such as
    /// `sasl.password`.
    #[error("invalid configuration: {key}: {reason}")]
    Config {
        /// The property name of the offending setting.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O operation against a broker failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and with which broker.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The connection closed (or was closed after a fault) before the
    /// request completed. Retriable: a new connection may succeed.
    #[error("connection to {broker} closed: {reason}")]
    Disconnected {
        /// The broker address.
        broker: String,
        /// Why the connection closed.
        reason: String,
    },
    /// A peer broke the protocol (an answer to no request, a malformed
    /// frame). The connection is closed.
    #[error("protocol violation by {broker}: {reason}")]
    ProtocolViolation {
        /// The broker address.
        broker: String,
        /// What it did.
        reason: String,
    },
    /// An operation did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: String,
        /// The time limit.
        after: Duration,
    },
    /// No version of the API is supported by both the broker and klamm.
    #[error("{broker} supports {api} versions {broker_versions:?}; klamm supports {ours:?}")]
    UnsupportedVersion {
        /// The broker address.
        broker: String,
        /// The API.
        api: ApiKey,
        /// The broker's range, or `None` if it does not offer the API.
        broker_versions: Option<(i16, i16)>,
        /// klamm's range.
        ours: (i16, i16),
    },
    /// The broker answered with a Kafka error code.
    #[error("{api} failed: {code}{}", context_suffix(.context))]
    Broker {
        /// The API that failed.
        api: ApiKey,
        /// The Kafka error code, with its name, message and retriable flag.
        code: ErrorCode,
        /// Extra detail (a topic, a broker's error message).
        context: Option<String>,
    },
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// TLS with a broker failed: its certificate is not trusted or does
    /// not match its name, it refused our certificate (or its absence), or
    /// the two sides could not agree on a TLS session. Of kind
    /// [`ErrorKind::Auth`], as the Java client reports these
    /// (`SslAuthenticationException`), and not retriable: the same
    /// settings fail the same way. Plain I/O failures during the handshake
    /// are [`Error::Io`] instead.
    ///
    /// ```
    /// use klamm::{Error, ErrorKind};
    ///
    /// let err = Error::Tls {
    ///     broker: "kafka-1:9093".into(),
    ///     reason: "the broker's certificate is not trusted".into(),
    /// };
    /// assert_eq!(err.kind(), ErrorKind::Auth);
    /// assert!(!err.is_retriable());
    /// assert_eq!(err.to_string(), "TLS with kafka-1:9093 failed: the broker's certificate is not trusted");
    /// ```
    #[error("TLS with {broker} failed: {reason}")]
    Tls {
        /// The broker address.
        broker: String,
        /// What went wrong, in words that say what to fix.
        reason: String,
    },
    /// The record was not written because the application aborted the
    /// transaction it belonged to before it was sent (the Java client's
    /// "failing batch since transaction was aborted"). Of kind
    /// [`ErrorKind::Aborted`]; not retriable.
    ///
    /// ```
    /// use klamm::{Error, ErrorKind};
    ///
    /// let err = Error::Aborted { reason: "transaction of orders-1 aborted".into() };
    /// assert_eq!(err.kind(), ErrorKind::Aborted);
    /// assert!(!err.is_retriable());
    /// assert_eq!(err.to_string(), "aborted: transaction of orders-1 aborted");
    /// ```
    #[error("aborted: {reason}")]
    Aborted {
        /// What was aborted.
        reason: String,
    },
    /// The call is not allowed in the current state of the object it was
    /// made on. Of kind [`ErrorKind::State`]; not retriable as such (the
    /// application must first do what the message says).
    ///
    /// ```
    /// use klamm::{Error, ErrorKind};
    ///
    /// let err = Error::State { reason: "the share consumer is closed".into() };
    /// assert_eq!(err.kind(), ErrorKind::State);
    /// assert!(!err.is_retriable());
    /// assert_eq!(err.to_string(), "not allowed now: the share consumer is closed");
    /// ```
    #[error("not allowed now: {reason}")]
    State {
        /// What the state is and what to do first.
        reason: String,
    },
}

fn context_suffix(c: &Option<String>) -> String {
    c.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Decode(_) | Error::Encode(_) => ErrorKind::Protocol,
            Error::ProtocolViolation { .. } | Error::UnsupportedVersion { .. } => {
                ErrorKind::Protocol
            }
            Error::Config { .. } => ErrorKind::Config,
            Error::Io { .. } | Error::Disconnected { .. } => ErrorKind::Network,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Broker { .. } => ErrorKind::Broker,
            Error::Auth(_) | Error::Tls { .. } => ErrorKind::Auth,
            Error::Aborted { .. } => ErrorKind::Aborted,
            Error::State { .. } => ErrorKind::State,
        }
    }

    /// A copy of this error, for each of the items one failure concerns
    /// (the records of a failed batch, the topics of a failed admin
    /// request). `Error` is not `Clone`: it may carry an `io::Error`,
    /// copied here by kind and message.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Decode(d) => Error::Decode(d.clone()),
            Error::Encode(x) => Error::Encode(x.clone()),
            Error::Config { key, reason } => Error::Config {
                key: key.clone(),
                reason: reason.clone(),
            },
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Disconnected { broker, reason } => Error::Disconnected {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::ProtocolViolation { broker, reason } => Error::ProtocolViolation {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::Timeout { what, after } => Error::Timeout {
                what: what.clone(),
                after: *after,
            },
            Error::UnsupportedVersion {
                broker,
                api,
                broker_versions,
                ours,
            } => Error::UnsupportedVersion {
                broker: broker.clone(),
                api: *api,
                broker_versions: *broker_versions,
                ours: *ours,
            },
            Error::Broker { api, code, context } => Error::Broker {
                api: *api,
                code: *code,
                context: context.clone(),
            },
            Error::Auth(s) => Error::Auth(s.clone()),
            Error::Tls { broker, reason } => Error::Tls {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::State { reason } => Error::State {
                reason: reason.clone(),
            },
            Error::Aborted { reason } => Error::Aborted {
                reason: reason.clone(),
            },
        }
    }

    /// Whether retrying the same operation may succeed: network failures,
    /// closed connections, timeouts and retriable Kafka error codes.
    /// Decode/encode failures, configuration, authentication and TLS
    /// errors are deterministic and are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. } | Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// The bootstrap servers answered, but the cluster metadata names no
    /// broker to send `api` to: a state of the cluster
    /// (`BROKER_NOT_AVAILABLE`), not an error of `bootstrap.servers`.
    pub(crate) fn no_brokers(api: ApiKey) -> Self {
        Error::Broker {
            api,
            code: ErrorCode::BROKER_NOT_AVAILABLE,
            context: Some("the cluster metadata lists no brokers".into()),
        }
    }

    /// A configuration error for the setting `key`.
    ///
    /// ```
    /// use klamm::{Error, ErrorKind};
    ///
    /// let err = Error::config("linger.ms", "must not be negative");
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// assert_eq!(err.config_key(), Some("linger.ms"));
    /// assert!(!err.is_retriable());
    /// assert_eq!(err.to_string(), "invalid configuration: linger.ms: must not be negative");
    /// ```
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The property name a configuration error is about; `None` for other
    /// kinds of error.
    pub fn config_key(&self) -> Option<&str> {
        match self {
            Error::Config { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The Kafka error code, for [`ErrorKind::Broker`] errors.
    pub fn kafka_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
