//! Criterion benches of the registry's CPU path: in-memory execution of a transfer, and a
//! full apply (journal hash, encoding, WriteBatch) without fsync. The synced figures come
//! from the `registry-throughput` binary.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use registry::ledger::Ledger;
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Tx};
use registry::{Registry, RegistryOptions};

const MEE: AccountId = AccountId(1);
const UNIT: UnitId = UnitId(2025);

fn setup_ops() -> Vec<Op> {
    let mut ops = vec![
        Op::OpenAccount {
            account: MEE,
            kind: AccountType::NationalAuthority,
            name: "MEE".into(),
        },
        Op::CreateUnit {
            unit: UNIT,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2025,
                project_id: 0,
                registered: 0,
            },
        },
        Op::Issue {
            authority: MEE,
            unit: UNIT,
            quantity_t: 1 << 40,
        },
    ];
    for e in 0..1_000u64 {
        let account = AccountId(100 + e);
        ops.push(Op::OpenAccount {
            account,
            kind: AccountType::CoveredEntity(Sector::Steel),
            name: format!("e{e}"),
        });
        ops.push(Op::Allocate {
            from: MEE,
            to: account,
            unit: UNIT,
            quantity_t: 1 << 30,
        });
    }
    ops
}

fn transfer(i: u64) -> Tx {
    let from = AccountId(100 + i % 1_000);
    let to = AccountId(100 + (i + 1) % 1_000);
    Tx {
        key: format!("t{i}"),
        actor: 1,
        timestamp_ns: i,
        op: Op::Transfer {
            from,
            to,
            unit: UNIT,
            quantity_t: 1,
        },
    }
}

fn registry_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ledger_execute_transfer", |b| {
        let mut ledger = Ledger::new();
        for (n, op) in setup_ops().into_iter().enumerate() {
            ledger
                .execute(
                    n as u64 + 1,
                    &Tx {
                        key: format!("s{n}"),
                        actor: 1,
                        timestamp_ns: 0,
                        op,
                    },
                )
                .expect("setup");
        }
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            ledger.execute(10_000 + i, &transfer(i)).expect("transfer")
        });
    });
    group.bench_function("apply_transfer_without_fsync", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut registry =
            Registry::open(dir.path(), RegistryOptions { sync: false }).expect("open");
        for (n, op) in setup_ops().into_iter().enumerate() {
            registry
                .apply(&Tx {
                    key: format!("s{n}"),
                    actor: 1,
                    timestamp_ns: 0,
                    op,
                })
                .expect("setup");
        }
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            registry.apply(&transfer(i)).expect("transfer")
        });
    });
    group.finish();
}

criterion_group!(benches, registry_benches);
criterion_main!(benches);
