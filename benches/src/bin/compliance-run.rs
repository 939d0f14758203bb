#![allow(clippy::float_arithmetic)] // reporting durations, not state
//! Allocation run and year close for a synthetic national market: 10,000 covered entities
//! with 30,000 facilities (6,000 power entities with 4 generating units each, 4,000 steel,
//! cement and aluminium entities with 1-2 product lines), plus the RocksDB commit of the
//! resulting issuance (one synced group per 4,096 transactions).
//!
//! `cargo run --release -p benches --bin compliance-run`

use std::time::Instant;

use benches::workload::Rng;
use registry::allocation::{PowerUnit, UnitCategory};
use registry::compliance::{
    Compliance, EntityYear, Plan, allocate, close, pre_allocation, true_up,
};
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Tx};
use registry::{GROUP_TXS_MAX, Registry, RegistryOptions};
use rust_decimal::Decimal;

fn main() {
    let mut rng = Rng(20_261_128);
    let mut entities = Vec::with_capacity(10_000);
    let mut facilities = 0;
    for n in 0..10_000u64 {
        let account = AccountId(1_000 + n);
        if n < 6_000 {
            let units: Vec<PowerUnit> = (0..4)
                .map(|_| {
                    let category = match rng.below(10) {
                        0..=5 => UnitCategory::CoalLarge,
                        6..=7 => UnitCategory::CoalSmall,
                        8 => UnitCategory::UnconventionalCoal,
                        _ => UnitCategory::Gas,
                    };
                    let mwh = 100_000 + rng.below(400_000);
                    PowerUnit {
                        category,
                        electricity_mwh: Decimal::from(mwh),
                        heat_gj: Decimal::from(rng.below(500_000)),
                        load_factor: Decimal::new(40 + rng.below(50) as i64, 2),
                        verified_t: Decimal::from(mwh * 8 / 10),
                    }
                })
                .collect();
            facilities += units.len();
            let verified: u64 = units
                .iter()
                .map(|u| u.verified_t.trunc().try_into().unwrap_or(0u64))
                .sum();
            entities.push(EntityYear {
                account,
                sector: Sector::Power,
                province: format!("P{}", n % 31),
                differentiated: n % 50 == 0,
                units,
                output_t: Decimal::ZERO,
                verified_t: Some(verified),
            });
        } else {
            let sector = [Sector::Steel, Sector::Cement, Sector::Aluminium][(n % 3) as usize];
            let lines = 1 + (n % 2) as usize;
            facilities += lines;
            let output = 10_000 + rng.below(500_000);
            let intensity_milli = match sector {
                Sector::Steel => 1_500 + rng.below(600),
                Sector::Cement => 800 + rng.below(200),
                _ => 1_300 + rng.below(400),
            };
            entities.push(EntityYear {
                account,
                sector,
                province: format!("P{}", n % 31),
                differentiated: false,
                units: Vec::new(),
                output_t: Decimal::from(output),
                verified_t: Some(output * intensity_milli / 1_000),
            });
        }
    }
    println!("# {} entities, {facilities} facilities", entities.len());
    for plan in [Plan::plan_2024(), Plan::draft_2025()] {
        let t = Instant::now();
        let run = allocate(&plan, &entities).expect("allocation");
        let secs = t.elapsed().as_secs_f64();
        let total: u64 = run.allocations.iter().map(|a| a.allocated_t).sum();
        println!(
            "allocation run, plan {}: {} entities in {:.1} ms ({} t allocated{})",
            plan.version,
            run.allocations.len(),
            secs * 1e3,
            total,
            run.balance
                .iter()
                .map(|(s, b)| format!(
                    ", {s:?} BP {} in {} iterations",
                    b.balance_value.round_dp(4),
                    b.iterations
                ))
                .collect::<String>()
        );
    }
    let plan = Plan::plan_2024();
    let run = allocate(&plan, &entities).expect("allocation");
    // Year close: every entity surrendered 95% of its obligation.
    let t = Instant::now();
    let mut penalties = 0i64;
    for (e, a) in entities.iter().zip(&run.allocations) {
        let v = e.verified_t.unwrap_or(0);
        let status = Compliance {
            obligation_t: Some(v),
            surrendered_cea_t: v * 95 / 100,
            surrendered_ccer_t: 0,
        };
        let c = close(
            &plan,
            e.account,
            &status,
            e.differentiated,
            if e.differentiated { a.allocated_t } else { 0 },
            8_500,
        );
        penalties = penalties.saturating_add(c.penalty_fen);
    }
    println!(
        "year close: {} entities in {:.1} ms (penalties {} fen)",
        entities.len(),
        t.elapsed().as_secs_f64() * 1e3,
        penalties
    );

    // The issuance of the true-up committed to RocksDB (synced groups).
    let dir = tempfile::tempdir().expect("dir");
    let mut registry =
        Registry::open(dir.path(), RegistryOptions { sync: true }).expect("registry");
    let authority = AccountId(1);
    let mut setup = vec![
        Op::OpenAccount {
            account: authority,
            kind: AccountType::NationalAuthority,
            name: "MEE".into(),
        },
        Op::CreateUnit {
            unit: UnitId(1),
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2024,
                project_id: 0,
                registered: 0,
            },
        },
        Op::Issue {
            authority,
            unit: UnitId(1),
            quantity_t: u64::MAX / 8,
        },
    ];
    for e in &entities {
        setup.push(Op::OpenAccount {
            account: e.account,
            kind: AccountType::CoveredEntity(e.sector),
            name: format!("entity {}", e.account.0),
        });
    }
    let txs: Vec<Tx> = setup
        .into_iter()
        .enumerate()
        .map(|(n, op)| Tx {
            key: format!("s{n}"),
            actor: 1,
            timestamp_ns: 0,
            op,
        })
        .collect();
    for group in txs.chunks(GROUP_TXS_MAX) {
        for r in registry.apply_group(group) {
            r.expect("setup");
        }
    }
    let issuance: Vec<Tx> = run
        .allocations
        .iter()
        .zip(&entities)
        .filter(|(_, e)| !e.differentiated)
        .map(|(a, e)| {
            let pre = pre_allocation(&plan, e.verified_t.unwrap_or(0));
            let t = true_up(a.allocated_t, 0, 0);
            Tx {
                key: format!("issue-{}", a.account.0),
                actor: 1,
                timestamp_ns: 0,
                op: Op::Allocate {
                    from: authority,
                    to: a.account,
                    unit: UnitId(1),
                    quantity_t: (t.issue_t).max(pre).max(1),
                },
            }
        })
        .collect();
    let t = Instant::now();
    for group in issuance.chunks(GROUP_TXS_MAX) {
        for r in registry.apply_group(group) {
            r.expect("issuance");
        }
    }
    println!(
        "issuance committed: {} allocations in {} synced groups, {:.1} ms",
        issuance.len(),
        issuance.len().div_ceil(GROUP_TXS_MAX),
        t.elapsed().as_secs_f64() * 1e3
    );
}
