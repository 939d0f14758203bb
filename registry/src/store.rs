//! The narrow storage interface over RocksDB.

use std::path::Path;

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
}

/// A RocksDB database opened for the registry.
#[derive(Debug)]
pub struct Store {
    db: rocksdb::DB,
}

/// Writes that commit together or not at all.
#[derive(Default)]
pub struct Batch {
    inner: rocksdb::WriteBatch,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("writes", &self.inner.len())
            .finish()
    }
}

impl Batch {
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.inner.put(key, value);
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.inner.delete(key);
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl Store {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        // Idempotency checks look up keys that are almost always absent: a bloom filter
        // answers those without reading blocks.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        Ok(Store {
            db: rocksdb::DB::open(&options, path)?,
        })
    }

    /// Commits `batch` atomically; with `sync` the call returns only once the write is on
    /// stable storage (fsync of the write-ahead log).
    pub fn commit(&self, batch: Batch, sync: bool) -> Result<(), StoreError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch.inner, &options)?;
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?)
    }

    /// Calls `visit` for each key starting with `prefix`, in key order, from `start` (a key
    /// at or after the prefix); stops early when `visit` returns `Ok(false)`.
    pub fn scan<E: From<StoreError>>(
        &self,
        prefix: &[u8],
        start: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        for item in self.db.iterator(mode) {
            let (key, value) = item.map_err(StoreError::from)?;
            if !key.starts_with(prefix) || !visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }
}
