//! What a processor callback sees and does (goka's `Context`).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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
    pub(crate) overlay: &'a Overlay,
}

/// A partition's table writes not yet acknowledged by Kafka: callbacks
/// read them before the store, which gets each one only with its
/// acknowledgement (and the offset it was written at). A write that never
/// reaches the table topic never reaches the store.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    entries: Mutex<Pending>,
}

/// The last sequence number given, and each key's pending write with its
/// number.
#[derive(Debug, Default)]
struct Pending(u64, HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>);

type OverlayGuard<'a> = std::sync::MutexGuard<'a, Pending>;

impl Overlay {
    fn lock(&self) -> OverlayGuard<'_> {
        crate::lock(&self.entries)
    }

    /// Records a pending write; returns its sequence number.
    pub(crate) fn put(&self, key: &[u8], value: Option<Vec<u8>>) -> u64 {
        let mut e = self.lock();
        e.0 += 1;
        let seq = e.0;
        e.1.insert(key.to_vec(), (seq, value));
        seq
    }

    /// The pending value of `key`: `Some(None)` for a pending delete.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.lock().1.get(key).map(|(_, v)| v.clone())
    }

    /// Forgets write `seq` of `key` once the store has it (unless a later
    /// write of the key is pending).
    pub(crate) fn applied(&self, key: &[u8], seq: u64) {
        let mut e = self.lock();
        if e.1.get(key).is_some_and(|(s, _)| *s == seq) {
            e.1.remove(key);
        }
    }
}

/// A table write: the key, the value (`None` deletes), its overlay number.
#[derive(Debug)]
pub(crate) struct TableWrite {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) seq: u64,
}

/// A write a callback asked for, sent once it returns.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) record: ProducerRecord,
    /// A write to the group table, applied to the store on its ack.
    pub(crate) table: Option<TableWrite>,
}

/// The context of one input record in a processor callback (goka's
/// `Context`).
///
/// Reads (the table value, joins, lookups) happen at once; writes (the
/// table, emits, the loop) are sent when the callback returns, and the
/// input record is committed only once Kafka has acknowledged all of
/// them (the local store takes a table write only then; until then the
/// partition's callbacks read it from memory). A callback fails by
/// returning an error or calling [`fail`](Self::fail), and so does any
/// misuse of the context (an error from one of its methods), even if the
/// callback ignores the error: the processor stops and the record is not
/// committed.
pub struct Context<'a, V> {
    pub(crate) shared: Shared<'a, V>,
    pub(crate) record: &'a ConsumerRecord,
    /// The key's bytes (goka's keys are strings, which in Go hold any
    /// bytes), and as text.
    pub(crate) key: &'a [u8],
    pub(crate) key_text: &'a str,
    pub(crate) writes: Vec<Write>,
    pub(crate) failed: RefCell<Option<String>>,
}

impl<V> std::fmt::Debug for Context<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("topic", &self.record.topic)
            .field("partition", &self.record.partition)
            .field("offset", &self.record.offset)
            .field("key", &self.key_text)
            .finish_non_exhaustive()
    }
}

impl<'a, V: Send + Sync + 'static> Context<'a, V> {
    /// The input topic.
    pub fn topic(&self) -> &str {
        &self.record.topic
    }

    /// The record's key as text (empty for a null key; bytes that are not
    /// UTF-8 are replaced: see [`key_bytes`](Self::key_bytes)).
    pub fn key(&self) -> &str {
        self.key_text
    }

    /// The record's key as it is: the table is keyed by these bytes.
    pub fn key_bytes(&self) -> &[u8] {
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

    /// Records the first misuse: it fails the callback whatever the
    /// callback returns.
    fn note<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            let mut failed = self.failed.borrow_mut();
            if failed.is_none() {
                *failed = Some(e.to_string());
            }
        }
        r
    }

    fn table(&self) -> Result<(&TableEdge<V>, &Arc<dyn Storage>), Error> {
        match (self.shared.table, self.shared.table_store) {
            (Some(t), Some(s)) => Ok((t, s)),
            _ => Err(Error::Context(
                "cannot access state in a stateless processor".into(),
            )),
        }
    }

    /// The group table's value for the current key (as this partition's
    /// callbacks last set it, acknowledged or not).
    pub fn value(&self) -> Result<Option<V>, Error> {
        self.note(self.read_value())
    }

    fn read_value(&self) -> Result<Option<V>, Error> {
        let (table, store) = self.table()?;
        let bytes = match self.shared.overlay.get(self.key) {
            Some(pending) => pending,
            None => store.get(self.key)?,
        };
        match bytes {
            None => Ok(None),
            Some(bytes) => (table.decode)(&bytes).map(Some).map_err(Error::Codec),
        }
    }

    /// Sets the group table's value for the current key: later reads in
    /// this partition see it at once; it goes to `<group>-table` when the
    /// callback returns, and into the local store once acknowledged.
    pub fn set_value(&mut self, value: &V) -> Result<(), Error> {
        let encoded = self
            .table()
            .and_then(|(table, _)| (table.encode)(value).map_err(Error::Codec));
        let bytes = self.note(encoded)?;
        self.table_write(Some(bytes));
        Ok(())
    }

    /// Deletes the current key from the group table (a tombstone in
    /// `<group>-table`).
    pub fn delete(&mut self) -> Result<(), Error> {
        self.note(self.table().map(|_| ()))?;
        self.table_write(None);
        Ok(())
    }

    fn table_write(&mut self, value: Option<Vec<u8>>) {
        let topic = group_table(self.shared.group);
        let seq = self.shared.overlay.put(self.key, value.clone());
        // The table partition is the input's: the local store that holds
        // the key is this partition's.
        let record = match &value {
            Some(v) => ProducerRecord::new(topic, v.clone()),
            None => ProducerRecord::tombstone(topic),
        }
        .with_key(self.key.to_vec())
        .with_partition(self.record.partition);
        self.writes.push(Write {
            record,
            table: Some(TableWrite {
                key: self.key.to_vec(),
                value,
                seq,
            }),
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
        let encoded = self.output(topic).and_then(|c| c.encode_any(value));
        let bytes = self.note(encoded)?;
        let pushed = self.push_emit(topic, key, Some(bytes), headers);
        self.note(pushed)
    }

    /// Writes a null value (a tombstone) under `key` to the output `topic`.
    pub fn emit_null(&mut self, topic: &str, key: &str) -> Result<(), Error> {
        self.note(self.output(topic).map(|_| ()))?;
        let pushed = self.push_emit(topic, key, None, &[]);
        self.note(pushed)
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
            table: None,
        });
        Ok(())
    }

    /// Writes `value` under `key` to the group's loop stream; it comes
    /// back to the loop callback, on the partition of `key`.
    pub fn loopback<T: Any>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let encoded = self
            .shared
            .loop_codec
            .ok_or_else(|| Error::Context("no loop topic configured".into()))
            .and_then(|codec| codec.encode_any(value));
        let bytes = self.note(encoded)?;
        let topic = loop_stream(self.shared.group);
        let pushed = self.push_emit(&topic, key, Some(bytes), &[]);
        self.note(pushed)
    }

    /// The join table `table`'s value for the current key (same partition
    /// as the input).
    pub fn join<T: 'static>(&self, table: &str) -> Result<Option<T>, Error> {
        let joined = || {
            let (codec, store) = self.shared.joins.get(table).ok_or_else(|| {
                Error::Context(format!("table {table} is not declared as a join"))
            })?;
            match store.get(self.key)? {
                None => Ok(None),
                Some(b) => decode_as(codec, &b).map(Some),
            }
        };
        self.note(joined())
    }

    /// The lookup table `table`'s value for `key` (any partition).
    pub fn lookup<T: 'static>(&self, table: &str, key: &str) -> Result<Option<T>, Error> {
        let looked = || {
            let (codec, view) = self.shared.lookups.get(table).ok_or_else(|| {
                Error::Context(format!("table {table} is not declared as a lookup"))
            })?;
            match view.get_bytes(key)? {
                None => Ok(None),
                Some(b) => decode_as(codec, &b).map(Some),
            }
        };
        self.note(looked())
    }

    /// Fails the callback (goka's `Fail`): whatever it returns, the
    /// processor stops with this error and the record is not committed.
    /// Returns the error too, for `return Err(ctx.fail(e))`.
    pub fn fail(&mut self, error: impl Into<BoxError>) -> BoxError {
        let error = error.into();
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some(error.to_string());
        }
        error
    }
}
