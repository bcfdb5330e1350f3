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
    /// A configuration value was rejected.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Decode(_) | Error::Encode(_) => ErrorKind::Protocol,
            Error::Config(_) => ErrorKind::Config,
        }
    }

    /// Whether retrying the same operation may succeed. Decode and encode
    /// failures are deterministic, so they are not retriable.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
