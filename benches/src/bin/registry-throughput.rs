//! Registry throughput: synced transfers one at a time, group-committed transfers (one
//! WriteBatch and one fsync per group), and, in the same run, raw RocksDB synced WriteBatches
//! with the same number of keys and value sizes as one group. The ratio compares group
//! commits per second with raw batches per second. Ends with
//! `synced_tx_per_s=N grouped_tx_per_s=N raw_batch_per_s=N ratio=N`.
//!
//! Then the same transfers the way the server commits them since the journal is the one
//! truth: each journaled (one record per transaction in the gateway's journal, one fsync
//! per batch, direct I/O into preallocated segments as `carbonx serve` writes them) and
//! applied to a registry written without an fsync. Ends with a second line,
//! `journaled_tx_per_s=N journaled_grouped_tx_per_s=N`.
//!
//! `cargo run --release -p benches --bin registry-throughput -- [--group N] [--groups N]`

use std::time::Instant;

use journal::Journal;
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::store::{Batch, Store};
use registry::tx::{Op, Tx};
use registry::{Registry, RegistryOptions};

const MEE: AccountId = AccountId(1);
const UNIT: UnitId = UnitId(2025);
const ENTITIES: u64 = 1_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn setup(registry: &mut Registry) {
    let mut n = 0u64;
    let mut apply = |registry: &mut Registry, op: Op| {
        n += 1;
        registry
            .apply(&Tx {
                key: format!("setup-{n}"),
                actor: 1,
                timestamp_ns: n,
                op,
            })
            .expect("setup");
    };
    apply(
        registry,
        Op::OpenAccount {
            account: MEE,
            kind: AccountType::NationalAuthority,
            name: "MEE".into(),
        },
    );
    apply(
        registry,
        Op::CreateUnit {
            unit: UNIT,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2025,
                project_id: 0,
                registered: 0,
            },
        },
    );
    apply(
        registry,
        Op::Issue {
            authority: MEE,
            unit: UNIT,
            quantity_t: ENTITIES * 1_000_000,
        },
    );
    for e in 0..ENTITIES {
        let account = AccountId(100 + e);
        apply(
            registry,
            Op::OpenAccount {
                account,
                kind: AccountType::CoveredEntity(Sector::Power),
                name: format!("entity {e}"),
            },
        );
        apply(
            registry,
            Op::Allocate {
                from: MEE,
                to: account,
                unit: UNIT,
                quantity_t: 1_000_000,
            },
        );
    }
}

fn transfer(i: u64) -> Tx {
    let from = AccountId(100 + i % ENTITIES);
    let to = AccountId(100 + (i * 7 + 3) % ENTITIES);
    let to = if to == from {
        AccountId(100 + (i + 1) % ENTITIES)
    } else {
        to
    };
    Tx {
        key: format!("transfer-{i:012}"),
        actor: 1,
        timestamp_ns: i,
        op: Op::Transfer {
            from,
            to,
            unit: UNIT,
            quantity_t: 1 + i % 100,
        },
    }
}

fn per_second(count: u64, start: Instant) -> u64 {
    let ns = start.elapsed().as_nanos().max(1);
    u64::try_from(u128::from(count) * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

/// A raw batch shaped like one group of `group` transfers: per transfer a journal entry,
/// an idempotency record, two holdings and a movement record; plus one meta record.
fn raw_batch(group: u64, round: u64) -> Batch {
    let mut batch = Batch::default();
    for i in 0..group {
        let n = round * group + i;
        batch.put(&[b"j".as_slice(), &n.to_be_bytes()].concat(), &[7u8; 133]);
        batch.put(format!("itransfer-{n:012}").as_bytes(), &[3u8; 49]);
        batch.put(
            &[
                b"h".as_slice(),
                &(n % 1_000).to_be_bytes(),
                &2025u32.to_be_bytes(),
            ]
            .concat(),
            &[1u8; 20],
        );
        batch.put(
            &[
                b"h".as_slice(),
                &((n + 3) % 1_000).to_be_bytes(),
                &2025u32.to_be_bytes(),
            ]
            .concat(),
            &[1u8; 20],
        );
        batch.put(&[b"m".as_slice(), &n.to_be_bytes()].concat(), &[5u8; 29]);
    }
    batch.put(b"M", &[9u8; 64]);
    batch
}

fn main() {
    let group = arg("--group", 64);
    let groups = arg("--groups", 60);
    let singles = arg("--singles", 400);
    let dir = std::env::temp_dir().join(format!("carbonx-registry-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let mut registry = Registry::open(&dir.join("registry"), RegistryOptions { sync: true })
        .expect("open registry");
    setup(&mut registry);
    // Requests are built before the clock starts: the figure is the registry's, not the
    // caller's string formatting.
    let single_txs: Vec<Tx> = (0..singles).map(transfer).collect();
    let start = Instant::now();
    for tx in &single_txs {
        registry.apply(tx).expect("transfer");
    }
    let synced_tx_per_s = per_second(singles, start);

    let grouped_txs: Vec<Vec<Tx>> = (0..groups)
        .map(|g| {
            (0..group)
                .map(|j| transfer(singles + g * group + j))
                .collect()
        })
        .collect();
    let start = Instant::now();
    for txs in &grouped_txs {
        for result in registry.apply_group(txs) {
            result.expect("grouped transfer");
        }
    }
    let grouped_tx_per_s = per_second(groups * group, start);
    registry.check_invariants().expect("invariants");

    let raw = Store::open(&dir.join("raw")).expect("open raw");
    let batches: Vec<Batch> = (0..groups).map(|round| raw_batch(group, round)).collect();
    let start = Instant::now();
    for batch in batches {
        raw.commit(&batch, true).expect("raw commit");
    }
    let raw_batch_per_s = per_second(groups, start);
    let batches: Vec<Batch> = (0..singles)
        .map(|round| raw_batch(1, groups + round))
        .collect();
    let start = Instant::now();
    for batch in batches {
        raw.commit(&batch, true).expect("raw commit");
    }
    let raw_single_per_s = per_second(singles, start);
    drop(registry);
    drop(raw);
    let (journaled_tx_per_s, journaled_grouped_tx_per_s) =
        journaled(&dir, &single_txs, &grouped_txs);
    let _ = std::fs::remove_dir_all(&dir);

    // Groups committed per second against raw batches of the same shape per second.
    let ratio_milli = u128::from(grouped_tx_per_s) * 1_000
        / u128::from(group.max(1))
        / u128::from(raw_batch_per_s.max(1));
    println!(
        "group of {group} transfers = {} keys per WriteBatch; {groups} groups, {singles} single transfers",
        group * 5 + 1
    );
    println!(
        "raw synced WriteBatch of one transfer's shape: {raw_single_per_s}/s (vs {synced_tx_per_s} synced registry transfers/s)"
    );
    println!(
        "synced_tx_per_s={synced_tx_per_s} grouped_tx_per_s={grouped_tx_per_s} raw_batch_per_s={raw_batch_per_s} ratio={}.{:03}",
        ratio_milli / 1_000,
        ratio_milli % 1_000
    );
    println!(
        "journaled_tx_per_s={journaled_tx_per_s} journaled_grouped_tx_per_s={journaled_grouped_tx_per_s}"
    );
}

/// The same transfers through the journal: one fsync'd journal batch per transaction,
/// then per group, each applied to a registry that is not fsync'd (its durable record is
/// the journal). Returns (one per batch, grouped) transactions per second.
fn journaled(dir: &std::path::Path, singles: &[Tx], groups: &[Vec<Tx>]) -> (u64, u64) {
    let mut registry = Registry::open(&dir.join("journaled"), RegistryOptions { sync: false })
        .expect("open registry");
    setup(&mut registry);
    let (mut journal, _) =
        Journal::open_with(&dir.join("journal"), 64 << 20, true).expect("open journal");
    journal.use_direct_io().expect("direct io");
    let mut apply = |journal: &mut Journal, txs: &[Tx]| {
        for tx in txs {
            journal.append_tx(tx.timestamp_ns, tx).expect("append");
        }
        journal.commit(true).expect("commit");
        for result in registry.apply_journaled(txs, journal.last_seq()) {
            result.expect("journaled transfer");
        }
    };
    let start = Instant::now();
    for tx in singles {
        apply(&mut journal, std::slice::from_ref(tx));
    }
    let single = per_second(singles.len() as u64, start);
    let start = Instant::now();
    for txs in groups {
        apply(&mut journal, txs);
    }
    let grouped = per_second(groups.iter().map(|g| g.len() as u64).sum(), start);
    registry.check_invariants().expect("invariants");
    (single, grouped)
}
