//! The one error type of the crate, and what handlers return.

use crate::state::State;

/// An error from application code (a handler, a close hook).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call on a [`ConsumerGroup`](crate::ConsumerGroup) or a
/// [`Producer`](crate::Producer) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (which field, and why).
    #[error("validation error: {field}: {reason}")]
    Config {
        /// The field of the configuration struct.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The consumer is closing (or closed): it cannot be started again.
    #[error("the consumer cannot be started because it is closing")]
    Closing,
    /// The producer was closed: nothing more can be sent.
    #[error("the producer is closed")]
    Closed,
    /// The producer has not reached the cluster yet (it keeps trying in
    /// the background); the record was not sent.
    #[error("the producer is not initialised")]
    NotInitialised,
    /// A handler (or batch handler) is registered already: a consumer
    /// takes only one.
    #[error("a handler or batch handler is registered already, only one is allowed")]
    HandlerRegistered,
    /// A state change the lifecycle does not allow.
    #[error("state transition from {from} to {to} is not allowed")]
    Transition {
        /// The state the machine was in.
        from: State,
        /// The state asked for.
        to: State,
    },
    /// A deadline passed (closing, waiting for a state).
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The deadline it had.
        after: std::time::Duration,
    },
    /// A value could not be encoded as JSON.
    #[error("failed to marshal the event as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Kafka failed (connecting, consuming, committing, producing).
    #[error(transparent)]
    Kafka(#[from] klamm::Error),
}

impl Error {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}

/// A handler's failure, and whether the record (or batch) it failed on is
/// still committed.
///
/// dp-kafka commits a record whose handler failed unless the error says
/// otherwise (its `Commiter` interface); so does this: any error turned
/// into a `HandlerError` with `?` or [`HandlerError::new`] commits, and
/// [`HandlerError::do_not_commit`] leaves the offset where it was, for
/// the record to be read again after the next restart or rebalance
/// (unless a later record of the same partition is committed first: an
/// offset commit covers everything before it).
///
/// ```
/// use klamm_dpkafka::HandlerError;
///
/// fn parse(data: &[u8]) -> Result<u64, HandlerError> {
///     // A malformed record is logged and committed: retrying cannot help.
///     let text = std::str::from_utf8(data)?;
///     // A record whose store is down is left for later.
///     text.parse::<u64>().map_err(HandlerError::do_not_commit)
/// }
///
/// assert!(parse(b"17").is_ok());
/// assert!(parse(b"\xff").unwrap_err().commits());
/// assert!(!parse(b"x").unwrap_err().commits());
/// ```
#[derive(Debug)]
pub struct HandlerError {
    source: BoxError,
    commit: bool,
}

impl HandlerError {
    /// A failure after which the record is still committed.
    pub fn new(source: impl Into<BoxError>) -> HandlerError {
        HandlerError {
            source: source.into(),
            commit: true,
        }
    }

    /// A failure after which the record is not committed.
    pub fn do_not_commit(source: impl Into<BoxError>) -> HandlerError {
        HandlerError {
            source: source.into(),
            commit: false,
        }
    }

    /// Whether the record (or batch) is committed despite the failure.
    pub fn commits(&self) -> bool {
        self.commit
    }

    /// The failure itself.
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl<E: Into<BoxError>> From<E> for HandlerError {
    fn from(e: E) -> HandlerError {
        HandlerError::new(e)
    }
}

/// Whether a handler's outcome commits its record: success does, and so
/// does a failure unless it says otherwise.
pub(crate) fn shall_commit(outcome: &Result<(), HandlerError>) -> bool {
    outcome
        .as_ref()
        .map_or_else(HandlerError::commits, |()| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_plain_failures_commit_and_a_refusal_does_not() {
        assert!(shall_commit(&Ok(())));
        assert!(shall_commit(&Err(HandlerError::new("boom"))));
        let via_question_mark = || -> Result<(), HandlerError> {
            let _: i32 = "x".parse()?;
            Ok(())
        };
        assert!(shall_commit(&via_question_mark()));
        assert!(!shall_commit(&Err(HandlerError::do_not_commit("later"))));
        assert_eq!(HandlerError::do_not_commit("later").to_string(), "later");
    }
}
