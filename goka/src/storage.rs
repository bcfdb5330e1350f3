//! Local storage of table partitions (goka's `storage.Storage`): one store
//! per topic and partition, holding the keys and values and the offset of
//! the last record applied.
//!
//! [`RedbBuilder`] keeps them on disk with [redb](https://docs.rs/redb)
//! (see DESIGN.md for the choice); [`MemoryBuilder`] keeps them in memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::Error;
use crate::lock;

/// A change to a table partition: a value, or `None` to delete the key.
pub type Update = (Vec<u8>, Option<Vec<u8>>);

/// Keys and values, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

type Stores<S> = Arc<Mutex<BTreeMap<(String, i32), Arc<S>>>>;

/// The store of one table partition.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Whether `key` has a value.
    fn has(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.get(key)?.is_some())
    }
    /// Applies `updates` in order and records `offset` (the last record
    /// applied) with them, atomically where the store can.
    fn apply(&self, updates: &[Update], offset: Option<i64>) -> Result<(), Error>;
    /// Sets one key.
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.apply(&[(key.to_vec(), Some(value.to_vec()))], None)
    }
    /// Deletes one key.
    fn delete(&self, key: &[u8]) -> Result<(), Error> {
        self.apply(&[(key.to_vec(), None)], None)
    }
    /// The offset of the last record applied; `None` when nothing is stored.
    fn offset(&self) -> Result<Option<i64>, Error>;
    /// Records the offset of the last record applied.
    fn set_offset(&self, offset: i64) -> Result<(), Error> {
        self.apply(&[], Some(offset))
    }
    /// The keys and values between `start` and `end`, in key order (a
    /// snapshot).
    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Entries, Error>;
    /// Makes everything written so far durable (after recovery, and on
    /// close).
    fn flush(&self) -> Result<(), Error>;
}

/// Opens the store of a topic's partition (goka's `storage.Builder`).
pub trait StorageBuilder: Send + Sync + std::fmt::Debug {
    /// The store of `topic`'s `partition`.
    fn build(&self, topic: &str, partition: i32) -> Result<Arc<dyn Storage>, Error>;
    /// Removes what is stored for `topic`'s `partition`.
    fn wipe(&self, topic: &str, partition: i32) -> Result<(), Error>;
}

/// Stores in memory: gone with the process (goka's `storage.MemoryBuilder`).
/// The same builder gives the same store for a partition again.
#[derive(Debug, Default, Clone)]
pub struct MemoryBuilder {
    stores: Stores<MemoryStorage>,
}

impl MemoryBuilder {
    /// A builder with nothing stored.
    pub fn new() -> MemoryBuilder {
        MemoryBuilder::default()
    }
}

impl StorageBuilder for MemoryBuilder {
    fn build(&self, topic: &str, partition: i32) -> Result<Arc<dyn Storage>, Error> {
        let store = lock(&self.stores)
            .entry((topic.to_string(), partition))
            .or_default()
            .clone();
        Ok(store)
    }

    fn wipe(&self, topic: &str, partition: i32) -> Result<(), Error> {
        lock(&self.stores).remove(&(topic.to_string(), partition));
        Ok(())
    }
}

/// One partition in memory.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: Mutex<MemoryData>,
}

#[derive(Debug, Default)]
struct MemoryData {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    offset: Option<i64>,
}

impl Storage for MemoryStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(lock(&self.inner).data.get(key).cloned())
    }

    fn apply(&self, updates: &[Update], offset: Option<i64>) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        for (k, v) in updates {
            match v {
                Some(v) => inner.data.insert(k.clone(), v.clone()),
                None => inner.data.remove(k),
            };
        }
        if offset.is_some() {
            inner.offset = offset;
        }
        Ok(())
    }

    fn offset(&self) -> Result<Option<i64>, Error> {
        Ok(lock(&self.inner).offset)
    }

    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Entries, Error> {
        if !valid_range(start, end) {
            return Ok(Vec::new());
        }
        Ok(lock(&self.inner)
            .data
            .range::<[u8], _>((start, end))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const OFFSET: &str = "offset";

/// Stores on disk with redb, one file per partition:
/// `<dir>/<topic>.<partition>.redb`.
#[derive(Debug, Clone)]
pub struct RedbBuilder {
    dir: PathBuf,
    open: Stores<RedbStorage>,
}

impl RedbBuilder {
    /// Stores under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> RedbBuilder {
        RedbBuilder {
            dir: dir.into(),
            open: Arc::default(),
        }
    }

    /// The file of `topic`'s `partition`.
    pub fn path(&self, topic: &str, partition: i32) -> PathBuf {
        self.dir.join(format!("{topic}.{partition}.redb"))
    }
}

impl StorageBuilder for RedbBuilder {
    fn build(&self, topic: &str, partition: i32) -> Result<Arc<dyn Storage>, Error> {
        let mut open = lock(&self.open);
        if let Some(s) = open.get(&(topic.to_string(), partition)) {
            return Ok(s.clone());
        }
        std::fs::create_dir_all(&self.dir).map_err(Error::storage)?;
        let store = Arc::new(RedbStorage::open(&self.path(topic, partition))?);
        open.insert((topic.to_string(), partition), store.clone());
        Ok(store)
    }

    fn wipe(&self, topic: &str, partition: i32) -> Result<(), Error> {
        lock(&self.open).remove(&(topic.to_string(), partition));
        match std::fs::remove_file(self.path(topic, partition)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::storage(e)),
        }
    }
}

/// One partition in a redb file. Writes commit without waiting for the
/// disk; [`Storage::flush`] (after recovery, on close, and every 1,000
/// writes) makes them durable. The data and the offset commit together, so
/// after a crash the store is as of some earlier offset and recovery
/// replays the rest.
#[derive(Debug)]
pub struct RedbStorage {
    db: Database,
    unflushed: Mutex<u32>,
}

impl RedbStorage {
    fn open(path: &Path) -> Result<RedbStorage, Error> {
        let db = Database::create(path).map_err(Error::storage)?;
        let tx = db.begin_write().map_err(Error::storage)?;
        {
            tx.open_table(DATA).map_err(Error::storage)?;
            tx.open_table(META).map_err(Error::storage)?;
        }
        tx.commit().map_err(Error::storage)?;
        Ok(RedbStorage {
            db,
            unflushed: Mutex::new(0),
        })
    }
}

impl Storage for RedbStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let tx = self.db.begin_read().map_err(Error::storage)?;
        let table = tx.open_table(DATA).map_err(Error::storage)?;
        Ok(table
            .get(key)
            .map_err(Error::storage)?
            .map(|v| v.value().to_vec()))
    }

    fn apply(&self, updates: &[Update], offset: Option<i64>) -> Result<(), Error> {
        let mut tx = self.db.begin_write().map_err(Error::storage)?;
        tx.set_durability(Durability::None)
            .map_err(Error::storage)?;
        {
            let mut data = tx.open_table(DATA).map_err(Error::storage)?;
            for (k, v) in updates {
                match v {
                    Some(v) => {
                        data.insert(k.as_slice(), v.as_slice())
                            .map_err(Error::storage)?;
                    }
                    None => {
                        data.remove(k.as_slice()).map_err(Error::storage)?;
                    }
                }
            }
            if let Some(o) = offset {
                let mut meta = tx.open_table(META).map_err(Error::storage)?;
                meta.insert(OFFSET, o).map_err(Error::storage)?;
            }
        }
        tx.commit().map_err(Error::storage)?;
        let due = {
            let mut n = lock(&self.unflushed);
            *n += 1;
            *n >= 1000
        };
        if due {
            self.flush()?;
        }
        Ok(())
    }

    fn offset(&self) -> Result<Option<i64>, Error> {
        let tx = self.db.begin_read().map_err(Error::storage)?;
        let table = tx.open_table(META).map_err(Error::storage)?;
        Ok(table
            .get(OFFSET)
            .map_err(Error::storage)?
            .map(|v| v.value()))
    }

    fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Entries, Error> {
        if !valid_range(start, end) {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read().map_err(Error::storage)?;
        let table = tx.open_table(DATA).map_err(Error::storage)?;
        let mut out = Vec::new();
        for item in table.range((start, end)).map_err(Error::storage)? {
            let (k, v) = item.map_err(Error::storage)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<(), Error> {
        // An empty commit with immediate durability persists every
        // non-durable commit before it.
        let tx = self.db.begin_write().map_err(Error::storage)?;
        tx.commit().map_err(Error::storage)?;
        *lock(&self.unflushed) = 0;
        Ok(())
    }
}

/// `BTreeMap::range` panics on a start after the end: such a range is
/// empty here.
fn valid_range(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s < e,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(b: &dyn StorageBuilder) {
        let s = b.build("t", 3).unwrap();
        assert_eq!(s.offset().unwrap(), None);
        s.apply(
            &[
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
                (b"b".to_vec(), None),
            ],
            Some(7),
        )
        .unwrap();
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert!(!s.has(b"b").unwrap());
        assert_eq!(s.offset().unwrap(), Some(7));
        s.set(b"d", b"4").unwrap();
        s.delete(b"a").unwrap();
        let keys: Vec<Vec<u8>> = s
            .range(Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [b"c".to_vec(), b"d".to_vec()]);
        let from_c = s
            .range(Bound::Included(b"c"), Bound::Excluded(b"d"))
            .unwrap();
        assert_eq!(from_c, [(b"c".to_vec(), b"3".to_vec())]);
        assert!(
            s.range(Bound::Included(b"z"), Bound::Excluded(b"a"))
                .unwrap()
                .is_empty()
        );
        s.flush().unwrap();
        assert_eq!(s.offset().unwrap(), Some(7), "set does not move the offset");
        b.wipe("t", 3).unwrap();
        let again = b.build("t", 3).unwrap();
        assert_eq!(again.offset().unwrap(), None);
        assert_eq!(again.get(b"c").unwrap(), None);
    }

    #[test]
    fn memory_storage() {
        exercise(&MemoryBuilder::new());
    }

    #[test]
    fn redb_storage_and_reopening() {
        let dir = std::env::temp_dir().join(format!("klamm-goka-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        exercise(&RedbBuilder::new(&dir));
        {
            let b = RedbBuilder::new(&dir);
            let s = b.build("u", 0).unwrap();
            s.apply(&[(b"k".to_vec(), Some(b"v".to_vec()))], Some(41))
                .unwrap();
            s.flush().unwrap();
        }
        let b = RedbBuilder::new(&dir);
        let s = b.build("u", 0).unwrap();
        assert_eq!(s.offset().unwrap(), Some(41));
        assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
