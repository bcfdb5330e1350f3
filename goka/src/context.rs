//! What a processor callback sees and does (goka's `Context`).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use klamm::consumer::ConsumerRecord;
use klamm::producer::ProducerRecord;

use crate::codec::{SharedCodec, decode_as};
use crate::error::{BoxError, Error};
use crate::graph::{TableEdge, group_table, loop_stream};
use crate::hasher::goka_partition;
use crate::storage::Storage;
use crate::view::ViewCore;

/// What a callback's context needs of its processor.
pub(crate) struct Shared<'a, V> {
    pub(crate) group: &'a str,
    pub(crate) table: Option<&'a TableEdge<V>>,
    pub(crate) loop_codec: Option<&'a SharedCodec>,
    pub(crate) outputs: &'a BTreeMap<String, SharedCodec>,
    pub(crate) joins: &'a BTreeMap<String, (SharedCodec, Arc<dyn Storage>)>,
    pub(crate) lookups: &'a BTreeMap<String, (SharedCodec, Arc<ViewCore>)>,
    /// Partition counts of the outputs and the loop.
    pub(crate) partitions: &'a BTreeMap<String, i32>,
    pub(crate) table_store: Option<&'a Arc<dyn Storage>>,
}

/// A write a callback asked for, sent once it returns.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) record: ProducerRecord,
    /// A write to the group table (its ack moves the store's offset).
    pub(crate) table: bool,
}

/// The context of one input record in a processor callback (goka's
/// `Context`).
///
/// Reads (the table value, joins, lookups) happen at once; writes (the
/// table, emits, the loop) are sent when the callback returns, and the
/// input record is committed only once Kafka has acknowledged all of
/// them. A callback fails by returning an error (or calling
/// [`fail`](Self::fail)): the processor stops and the record is not
/// committed.
pub struct Context<'a, V> {
    pub(crate) shared: Shared<'a, V>,
    pub(crate) record: &'a ConsumerRecord,
    pub(crate) key: &'a str,
    pub(crate) writes: Vec<Write>,
    pub(crate) failed: Option<String>,
}

impl<V> std::fmt::Debug for Context<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("topic", &self.record.topic)
            .field("partition", &self.record.partition)
            .field("offset", &self.record.offset)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'a, V: Send + Sync + 'static> Context<'a, V> {
    /// The input topic.
    pub fn topic(&self) -> &str {
        &self.record.topic
    }

    /// The record's key (empty for a null key).
    pub fn key(&self) -> &str {
        self.key
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.record.partition
    }

    /// The record's offset.
    pub fn offset(&self) -> i64 {
        self.record.offset
    }

    /// The record's timestamp, ms since the epoch.
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp
    }

    /// The group.
    pub fn group(&self) -> &str {
        self.shared.group
    }

    /// The record's headers; a key that repeats gives its last value
    /// (goka's `Headers` map).
    pub fn headers(&self) -> BTreeMap<String, Vec<u8>> {
        self.record
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(&h.key).into_owned(),
                    h.value.as_deref().unwrap_or_default().to_vec(),
                )
            })
            .collect()
    }

    /// The whole input record.
    pub fn record(&self) -> &ConsumerRecord {
        self.record
    }

    fn table(&self) -> Result<(&TableEdge<V>, &Arc<dyn Storage>), Error> {
        match (self.shared.table, self.shared.table_store) {
            (Some(t), Some(s)) => Ok((t, s)),
            _ => Err(Error::Context(
                "cannot access state in a stateless processor".into(),
            )),
        }
    }

    /// The group table's value for the current key.
    pub fn value(&self) -> Result<Option<V>, Error> {
        let (table, store) = self.table()?;
        match store.get(self.key.as_bytes())? {
            None => Ok(None),
            Some(bytes) => (table.decode)(&bytes).map(Some).map_err(Error::Codec),
        }
    }

    /// Sets the group table's value for the current key: in the local
    /// store now (later reads see it), and in `<group>-table` when the
    /// callback returns.
    pub fn set_value(&mut self, value: &V) -> Result<(), Error> {
        let (table, store) = self.table()?;
        let bytes = (table.encode)(value).map_err(Error::Codec)?;
        store.set(self.key.as_bytes(), &bytes)?;
        self.table_write(Some(bytes));
        Ok(())
    }

    /// Deletes the current key from the group table (a tombstone in
    /// `<group>-table`).
    pub fn delete(&mut self) -> Result<(), Error> {
        let (_, store) = self.table()?;
        store.delete(self.key.as_bytes())?;
        self.table_write(None);
        Ok(())
    }

    fn table_write(&mut self, value: Option<Vec<u8>>) {
        let topic = group_table(self.shared.group);
        // The table partition is the input's: the local store that holds
        // the key is this partition's.
        let record = match value {
            Some(v) => ProducerRecord::new(topic, v),
            None => ProducerRecord::tombstone(topic),
        }
        .with_key(self.key.as_bytes().to_vec())
        .with_partition(self.record.partition);
        self.writes.push(Write {
            record,
            table: true,
        });
    }

    /// Writes `value` under `key` to the declared output `topic`, on the
    /// partition goka's hasher gives the key.
    pub fn emit<T: Any>(&mut self, topic: &str, key: &str, value: &T) -> Result<(), Error> {
        self.emit_with_headers(topic, key, value, &[])
    }

    /// [`emit`](Self::emit) with headers.
    pub fn emit_with_headers<T: Any>(
        &mut self,
        topic: &str,
        key: &str,
        value: &T,
        headers: &[(&str, &[u8])],
    ) -> Result<(), Error> {
        let codec = self.output(topic)?;
        let bytes = codec.encode_any(value)?;
        self.push_emit(topic, key, Some(bytes), headers)
    }

    /// Writes a null value (a tombstone) under `key` to the output `topic`.
    pub fn emit_null(&mut self, topic: &str, key: &str) -> Result<(), Error> {
        self.output(topic)?;
        self.push_emit(topic, key, None, &[])
    }

    fn output(&self, topic: &str) -> Result<&SharedCodec, Error> {
        if topic.is_empty() {
            return Err(Error::Context("cannot emit to empty topic".into()));
        }
        if topic == loop_stream(self.shared.group) {
            return Err(Error::Context(
                "cannot emit to loop topic (use loopback instead)".into(),
            ));
        }
        if topic == group_table(self.shared.group) {
            return Err(Error::Context(
                "cannot emit to table topic (use set_value instead)".into(),
            ));
        }
        self.shared.outputs.get(topic).ok_or_else(|| {
            Error::Context(format!(
                "topic {topic} is not configured for output; declare it with GroupGraph::output"
            ))
        })
    }

    fn push_emit(
        &mut self,
        topic: &str,
        key: &str,
        value: Option<Vec<u8>>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), Error> {
        let partitions =
            self.shared.partitions.get(topic).copied().ok_or_else(|| {
                Error::Context(format!("the partitions of {topic} are not known"))
            })?;
        let mut record = match value {
            Some(v) => ProducerRecord::new(topic.to_string(), v),
            None => ProducerRecord::tombstone(topic.to_string()),
        }
        .with_key(key.as_bytes().to_vec())
        .with_partition(goka_partition(key.as_bytes(), partitions));
        for (k, v) in headers {
            record = record.with_header(k.as_bytes().to_vec(), v.to_vec());
        }
        self.writes.push(Write {
            record,
            table: false,
        });
        Ok(())
    }

    /// Writes `value` under `key` to the group's loop stream; it comes
    /// back to the loop callback, on the partition of `key`.
    pub fn loopback<T: Any>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let codec = self
            .shared
            .loop_codec
            .ok_or_else(|| Error::Context("no loop topic configured".into()))?;
        let bytes = codec.encode_any(value)?;
        let topic = loop_stream(self.shared.group);
        self.push_emit(&topic, key, Some(bytes), &[])
    }

    /// The join table `table`'s value for the current key (same partition
    /// as the input).
    pub fn join<T: 'static>(&self, table: &str) -> Result<Option<T>, Error> {
        let (codec, store) =
            self.shared.joins.get(table).ok_or_else(|| {
                Error::Context(format!("table {table} is not declared as a join"))
            })?;
        match store.get(self.key.as_bytes())? {
            None => Ok(None),
            Some(b) => decode_as(codec, &b).map(Some),
        }
    }

    /// The lookup table `table`'s value for `key` (any partition).
    pub fn lookup<T: 'static>(&self, table: &str, key: &str) -> Result<Option<T>, Error> {
        let (codec, view) =
            self.shared.lookups.get(table).ok_or_else(|| {
                Error::Context(format!("table {table} is not declared as a lookup"))
            })?;
        match view.get_bytes(key)? {
            None => Ok(None),
            Some(b) => decode_as(codec, &b).map(Some),
        }
    }

    /// Fails the callback (goka's `Fail`): whatever it returns, the
    /// processor stops with this error and the record is not committed.
    /// Returns the error too, for `return Err(ctx.fail(e))`.
    pub fn fail(&mut self, error: impl Into<BoxError>) -> BoxError {
        let error = error.into();
        self.failed = Some(error.to_string());
        error
    }
}
