//! What the application hands the producer, and what it gets back.

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::records::Header;

/// A record to produce.
///
/// The topic is an `Arc<str>` so that sending many records to one topic
/// clones a pointer, not the name.
///
/// ```
/// use klamm::producer::ProducerRecord;
///
/// let record = ProducerRecord::new("orders", "payload")
///     .with_key("customer-7")
///     .with_header("trace", "abc")
///     .with_timestamp(1_700_000_000_000);
/// assert_eq!(&*record.topic, "orders");
/// assert_eq!(record.partition, None);
/// assert_eq!(record.key.as_deref(), Some(&b"customer-7"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition; `None` lets the configured partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; repeated keys are allowed.
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` takes the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value, no key, no headers, for the partitioner to
    /// place.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record with a null value (a tombstone for `key` on compacted
    /// topics, once a key is set).
    ///
    /// ```
    /// use klamm::producer::ProducerRecord;
    ///
    /// let tombstone = ProducerRecord::tombstone("users").with_key("u1");
    /// assert!(tombstone.value.is_none());
    /// ```
    pub fn tombstone(topic: impl Into<Arc<str>>) -> Self {
        ProducerRecord {
            value: None,
            ..ProducerRecord::new(topic, Bytes::new())
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends the record to this partition, bypassing the partitioner.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sets the create time (ms since the epoch).
    pub fn with_timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, where the broker does not
    /// answer.
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's append time
    /// when the topic uses log-append time.
    pub timestamp: i64,
}
