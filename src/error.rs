//! The crate's error type.
//!
//! One [`Error`] for everything klamm returns, with a [`ErrorKind`] that says
//! which layer failed. The protocol layer's detailed errors
//! ([`DecodeError`], [`EncodeError`]) are kept inside and reachable through
//! [`std::error::Error::source`].

use crate::protocol::error::{DecodeError, EncodeError};

/// Which kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bytes from the wire could not be decoded, or a value could not be
    /// encoded for the chosen version.
    Protocol,
    /// A configuration value was rejected.
    Config,
}

/// The error type of every fallible klamm API.
///
/// ```
/// use klamm::{Error, ErrorKind};
/// use klamm::protocol::error::DecodeError;
///
/// let err: Error = DecodeError::invalid("bad magic byte 7").into();
/// assert_eq!(err.kind(), ErrorKind::Protocol);
/// assert!(!err.is_retriable());
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
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Decode(_) | Error::Encode(_) => ErrorKind::Protocol,
            Error::Config { .. } => ErrorKind::Config,
        }
    }

    /// Whether retrying the same operation may succeed. Decode, encode and
    /// configuration failures are deterministic, so they are not retriable.
    pub fn is_retriable(&self) -> bool {
        false
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
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
