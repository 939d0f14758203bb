//! The journal is the one truth: a registry whose RocksDB is damaged, cut or gone is
//! rebuilt from its checkpoint and the journal with nothing acknowledged lost, and a
//! journal that lost acknowledged records (a zeroed tail, a damaged last record) is never
//! served, unless the operator starts read-only to inspect it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use proto::v1 as pb;
use tests::*;

/// In the child: the server, until killed.
#[test]
fn child_entry_point() {
    run_child_if_asked();
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One byte of the registry's write-ahead log flipped.
    FlipWal,
    /// The write-ahead log cut to half its length.
    TruncateWal,
    /// `data/registry` deleted.
    Delete,
}

/// The registry's newest write-ahead log file.
fn newest_wal(registry: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(registry)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no write-ahead log in {}", registry.display()))
}

fn damage(data: &Path, how: Damage) {
    let registry = data.join("registry");
    match how {
        Damage::FlipWal | Damage::TruncateWal => {
            let wal = newest_wal(&registry);
            let mut bytes = std::fs::read(&wal).unwrap_or_default();
            assert!(
                bytes.len() > 1_000,
                "the WAL holds too little to damage: {}",
                bytes.len()
            );
            if let Damage::FlipWal = how {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x10;
            } else {
                bytes.truncate(bytes.len() / 2);
            }
            std::fs::write(&wal, &bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        Damage::Delete => std::fs::remove_dir_all(&registry).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// What the clients were told: each acknowledged transfer with its journal entry, and the
/// holdings of M1 and M2 after the last.
struct Told {
    transfers: Vec<(pb::TransferRequest, u64)>,
    held: (u64, u64),
}

async fn transfer(m1: &mut Clients, key: String, quantity_t: u64) -> (pb::TransferRequest, u64) {
    let req = pb::TransferRequest {
        idempotency_key: key,
        from_account_id: M1,
        to_account_id: M2,
        unit: "CEA2025".into(),
        quantity_t,
    };
    let receipt = m1
        .registry
        .propose_transfer(req.clone())
        .await
        .unwrap_or_else(|e| panic!("transfer: {e}"))
        .into_inner();
    (req, receipt.journal_sequence)
}

/// Transfers and orders (the orders bring periodic snapshots and checkpoints), then more
/// transfers after the last snapshot, so the registry's write-ahead log holds them.
async fn work(addr: SocketAddr) -> Told {
    let mut m1 = Clients::at(addr, "m1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut transfers = Vec::new();
    for i in 0..60u64 {
        transfers.push(transfer(&mut m1, format!("x-{i}"), 1 + i % 3).await);
        m1.trading
            .place_order(limit(M1, 10_000 + i, pb::Side::Sell, 9_000 + i as i64, 1))
            .await
            .unwrap_or_else(|e| panic!("order: {e}"));
    }
    for i in 60..100u64 {
        transfers.push(transfer(&mut m1, format!("x-{i}"), 2).await);
    }
    let mut audit = Clients::at(addr, "audit")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let held = (held_t(&mut audit, M1).await, held_t(&mut audit, M2).await);
    Told { transfers, held }
}

/// Everything told is there: each transfer retried returns its original entry, the
/// holdings are as they were, the hash chain verifies, the ledgers reconcile.
async fn check(addr: SocketAddr, told: &Told, ctx: &str) {
    let mut m1 = Clients::at(addr, "m1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (req, seq) in &told.transfers {
        let again = m1
            .registry
            .propose_transfer(req.clone())
            .await
            .unwrap_or_else(|e| panic!("{ctx}: retry {}: {e}", req.idempotency_key))
            .into_inner();
        assert_eq!(
            again.journal_sequence, *seq,
            "{ctx}: {} lost",
            req.idempotency_key
        );
    }
    let mut audit = Clients::at(addr, "audit")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let held = (held_t(&mut audit, M1).await, held_t(&mut audit, M2).await);
    assert_eq!(held, told.held, "{ctx}: holdings changed");
    assert_audit_clean(&mut audit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cut_or_deleted_registry_is_rebuilt_with_nothing_lost() {
    for how in [Damage::FlipWal, Damage::TruncateWal, Damage::Delete] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().to_path_buf();
        let server = ChildServer::start(&data, 40);
        open_market_at(server.addr).await;
        let told = work(server.addr).await;
        server.kill();
        let checkpoints = server::snapshot::checkpoints(&data.join("snapshots"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !checkpoints.is_empty(),
            "{how:?}: no registry checkpoint was made"
        );
        damage(&data, how);
        let server = ChildServer::start(&data, 40);
        check(server.addr, &told, &format!("{how:?}")).await;
        server.kill();
        if let Damage::FlipWal = how {
            // The damaged database is kept for the operator, not deleted.
            let aside = std::fs::read_dir(&data)
                .unwrap_or_else(|e| panic!("{e}"))
                .filter_map(|e| e.ok())
                .any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("registry.damaged-")
                });
            assert!(aside, "{how:?}: the damaged registry was not kept");
        }
    }
}

/// Offsets of the records of a journal segment written without preallocation.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut offsets = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if len == 0 {
            break;
        }
        offsets.push(at);
        at += 8 + len as usize;
    }
    offsets
}

fn last_segment(data: &Path) -> PathBuf {
    journal::segments(&data.join("journal"))
        .unwrap_or_default()
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no journal segment"))
}

/// A market with 30 resting orders and 3 transfers, stopped cleanly.
async fn stopped_market(data: &Path) {
    let server = TestServer::start_with(test_config(data));
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    for i in 0..30 {
        m1.trading
            .place_order(limit(M1, 1 + i, pb::Side::Sell, 9_000, 1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for i in 0..3 {
        transfer(&mut m1, format!("t-{i}"), 1).await;
    }
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeroed_journal_tail_is_refused_and_can_be_inspected_read_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    stopped_market(&data).await;
    let segment = last_segment(&data);
    let mut bytes = std::fs::read(&segment).unwrap_or_default();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() > 40, "{}", offsets.len());
    // The last 10 records zeroed: to the records' own framing, the journal just ends
    // earlier.
    let cut = offsets[offsets.len() - 10];
    bytes[cut..].fill(0);
    std::fs::write(&segment, &bytes).unwrap_or_else(|e| panic!("{e}"));

    // The durable mark says more was acknowledged: refused, with both sequences.
    let err = refused_start(test_config(&data));
    assert!(err.contains("refusing to serve"), "{err}");
    assert!(
        err.contains("ends at sequence") && err.contains("durable through"),
        "{err}"
    );
    // Without the mark, the registry has seen the lost records: refused too.
    std::fs::remove_file(data.join("journal").join(journal::HWM_NAME))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = refused_start(test_config(&data));
    assert!(
        err.contains("the registry has applied the journal through"),
        "{err}"
    );
    // Nothing was cut or rebuilt by the refused starts.
    assert_eq!(std::fs::read(&segment).unwrap_or_default(), bytes);

    // Read-only, the operator looks at what is there; nothing can change it.
    let mut config = test_config(&data);
    config.read_only = true;
    let server = TestServer::start_with(config);
    let mut m1 = Clients::of(&server, "m1").await;
    let account = m1
        .trading
        .get_trading_account(pb::GetTradingAccountRequest { account_id: M1 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(account.account_id, M1);
    let refused = m1
        .trading
        .place_order(limit(M1, 99, pb::Side::Sell, 9_000, 1))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (tonic::Code::FailedPrecondition, "READ_ONLY")
    );
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&segment).unwrap_or_default(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_last_record_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    stopped_market(&data).await;
    let segment = last_segment(&data);
    let mut bytes = std::fs::read(&segment).unwrap_or_default();
    let last = *record_offsets(&bytes).last().unwrap_or(&0);
    // A byte of the payload's timestamp (record header 8 bytes, then the sequence).
    bytes[last + 8 + 9] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let err = refused_start(test_config(&data));
    assert!(err.contains("damage, not a torn write"), "{err}");
    assert!(err.contains(&format!("offset {last}")), "{err}");
    // `carbonx journal verify` reads it the same way (through `journal::inspect`).
    let verify = journal::inspect(&data.join("journal"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(verify.contains("damage, not a torn write"), "{verify}");
    assert_eq!(std::fs::read(&segment).unwrap_or_default(), bytes);
}
