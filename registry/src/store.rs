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

    /// Every put of the batch, in order (deletes are not listed).
    pub fn puts(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        struct Puts(Vec<(Vec<u8>, Vec<u8>)>);
        impl rocksdb::WriteBatchIterator for Puts {
            fn put(&mut self, key: &[u8], value: &[u8]) {
                self.0.push((key.to_vec(), value.to_vec()));
            }
            fn delete(&mut self, _key: &[u8]) {}
        }
        let mut puts = Puts(Vec::new());
        self.inner.iterate(&mut puts);
        puts.0
    }
}

impl Store {
    /// Opens (creating if missing) the database at `path`. Damage is an error, never
    /// records dropped in silence: a bad record in the write-ahead log fails the open
    /// (instead of ending the replay early there, RocksDB's default) and every block read
    /// is checked; the caller rebuilds the state from its own record instead. Only an
    /// incomplete last record is dropped: the write a crash cut short, which was never
    /// acknowledged (a synced write is whole on disk before it returns; an unsynced one
    /// is in the server's journal). Absolute consistency refused even that: a registry
    /// killed mid-write could not be reopened (`registry/tests/crash.rs`, 1 kill in ~60).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_paranoid_checks(true);
        // Idempotency checks look up keys that are almost always absent: a bloom filter
        // answers those without reading blocks.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        Ok(Store {
            db: rocksdb::DB::open(&options, path)?,
        })
    }

    /// Commits `batch` atomically (the batch is left as it was); with `sync` the call returns only once the write is on
    /// stable storage (fsync of the write-ahead log).
    pub fn commit(&self, batch: &Batch, sync: bool) -> Result<(), StoreError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(sync);
        // A copy of the batch's bytes: a batch that failed (a full disk) is kept and
        // written again later.
        let copy = rocksdb::WriteBatch::from_data(batch.inner.data());
        self.db.write_opt(copy, &options)?;
        Ok(())
    }

    /// A consistent copy of the database at `path` (which must not exist): the memtable
    /// flushed, the table files hard-linked (they are never changed once written), the
    /// manifest copied; durable when this returns.
    pub fn checkpoint(&self, path: &Path) -> Result<(), StoreError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(path)?;
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
