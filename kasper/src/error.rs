//! The one error type of the processor.

/// An error from a processor's own code (`process`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a topic processor could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (named field, reason).
    #[error("kasper configuration: {field}: {reason}")]
    Config {
        /// The field of [`Config`](crate::Config) (or the client setting).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The processor of `partition` failed; nothing of that batch was
    /// produced or committed.
    #[error("processing a batch of partition {partition} failed: {source}")]
    Process {
        /// The partition number of the batch.
        partition: i32,
        /// The processor's error.
        #[source]
        source: BoxError,
    },
    /// A partition consumer stopped delivering records while the
    /// processor ran (something closed it); the run stops rather than go
    /// on without the partition.
    #[error("the consumer of {topic}/{partition} stopped while the processor ran")]
    ConsumerEnded {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Kafka failed: consuming, producing the outputs, or committing the
    /// offsets (an output that failed leaves its batch uncommitted).
    #[error(transparent)]
    Kafka(#[from] klamm::Error),
}
