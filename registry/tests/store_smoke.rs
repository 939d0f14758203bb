//! RocksDB is really compiled, linked and exercised: a synced batch survives a reopen.

use registry::store::{Batch, Store};

#[test]
fn a_synced_batch_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        batch.put(b"holding/1/CEA2025", &42u64.to_le_bytes());
        batch.put(b"journal/1", b"issue 42 t");
        batch.put(b"doomed", b"x");
        batch.delete(b"doomed");
        assert_eq!(batch.len(), 4);
        store.commit(&batch, true).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get(b"holding/1/CEA2025").unwrap(),
        Some(42u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        store.get(b"journal/1").unwrap(),
        Some(b"issue 42 t".to_vec())
    );
    assert_eq!(store.get(b"doomed").unwrap(), None);
    assert_eq!(store.get(b"never").unwrap(), None);
}
