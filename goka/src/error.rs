//! The one error type of the crate.

/// An error from application code (a callback, a codec).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a graph, a processor, a view or an emitter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The group graph breaks one of goka's rules.
    #[error("invalid group graph: {0}")]
    Graph(String),
    /// A setting a processor cannot work with.
    #[error("configuration: {0}")]
    Config(String),
    /// The topics a processor reads are not co-partitioned (or missing).
    #[error("topics are not co-partitioned: {0}")]
    Copartitioning(String),
    /// A callback failed ([`Context::fail`](crate::Context::fail), or an
    /// error it returned): the processor stopped and the record was not
    /// committed.
    #[error("processing {topic}/{partition} at offset {offset} failed: {source}")]
    Callback {
        /// The input topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The input record's offset.
        offset: i64,
        /// The callback's error.
        #[source]
        source: BoxError,
    },
    /// A callback used its context wrongly (emit to an undeclared topic,
    /// a value in a stateless processor...).
    #[error("{0}")]
    Context(String),
    /// A value could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(BoxError),
    /// The local storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A key was asked of a partition this processor does not hold, or
    /// before it has recovered.
    #[error("partition {partition} of {topic} is not {why}")]
    NotReady {
        /// The table topic.
        topic: String,
        /// The partition the key belongs to.
        partition: i32,
        /// "owned by this processor" or "recovered yet".
        why: &'static str,
    },
    /// The processor, view or emitter was closed, or run twice.
    #[error("{0}")]
    State(&'static str),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] klamm::Error),
}

impl Error {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Error {
        Error::Storage(e.to_string())
    }
}
