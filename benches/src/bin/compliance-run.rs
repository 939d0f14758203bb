#![allow(clippy::float_arithmetic)] // reporting durations, not state
//! Allocation run and year close for a synthetic national market: 10,000 covered entities
//! with 30,000 facilities (6,000 power entities with 4 generating units each, 4,000 steel,
//! cement and aluminium entities with 1-2 product lines): the rules alone, then the same
//! year through the registry's journaled transactions on RocksDB (load, pre-allocation,
//! true-up and its idempotent re-run, surrender, year close), compute and commit timed.
//!
//! `cargo run --release -p benches --bin compliance-run`

use std::time::Instant;

use benches::workload::Rng;
use registry::allocation::{PowerUnit, UnitCategory};
use registry::compliance::{Compliance, EntityYear, Plan, allocate, close};
use registry::cycle::{
    Activity, ActivityRow, DATA_ROWS_MAX, ENTITY_ROWS_MAX, EntityRow, FacilityKind, Fuel,
    VerifiedRow,
};
use registry::industry::{Process, ProcessYear};
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
                processes: Vec::new(),
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
            let verified = output * intensity_milli / 1_000;
            // Each line its share: a steel works' blast furnaces, a cement company's clinker
            // lines, a smelter's pot lines.
            let process = match sector {
                Sector::Steel => Process::Ironmaking,
                Sector::Cement => Process::ClinkerLine,
                _ => Process::Electrolysis,
            };
            let share = |total: u64| Decimal::from(total) / Decimal::from(lines as u64);
            let processes = (1..=lines as u32)
                .map(|facility| ProcessYear {
                    facility,
                    process,
                    output_t: share(output),
                    emissions_t: share(verified),
                    pfc_co2e_t: Decimal::ZERO,
                    carbide_slag_rate: Decimal::ZERO,
                    special: None,
                })
                .collect();
            entities.push(EntityYear {
                account,
                sector,
                province: format!("P{}", n % 31),
                differentiated: false,
                units: Vec::new(),
                processes,
                verified_t: Some(verified),
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

    // The same year through the registry's journaled compliance transactions on RocksDB
    // (synced): each run's compute is timed on a copy of the in-memory ledger, then the
    // whole transaction (compute + one WriteBatch + fsync) through the registry.
    let dir = tempfile::tempdir().expect("dir");
    let mut registry =
        Registry::open(dir.path(), RegistryOptions { sync: true }).expect("registry");
    let (authority, retirement, unit) = (AccountId(1), AccountId(2), UnitId(1));
    let mut n = 0u64;
    let mut tx = |op: Op| {
        n += 1;
        Tx {
            key: format!("k{n}"),
            actor: 1,
            timestamp_ns: n,
            op,
        }
    };
    let setup = vec![
        Op::OpenAccount {
            account: authority,
            kind: AccountType::NationalAuthority,
            name: "MEE".into(),
        },
        Op::OpenAccount {
            account: retirement,
            kind: AccountType::Retirement,
            name: "Retirement".into(),
        },
        Op::CreateUnit {
            unit,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2024,
                project_id: 0,
                registered: 0,
            },
        },
        Op::RegisterPlan {
            plan: Box::new(Plan::plan_2024()),
        },
    ];
    for op in setup {
        registry.apply(&tx(op)).expect("setup");
    }
    let rows: Vec<EntityRow> = entities
        .iter()
        .map(|e| EntityRow {
            account: e.account,
            name: format!("entity {}", e.account.0),
            sector: e.sector,
            province: e.province.clone(),
            differentiated: e.differentiated,
            credit_code: String::new(),
            facilities: if e.sector == Sector::Power {
                e.units
                    .iter()
                    .enumerate()
                    .map(|(i, u)| {
                        let (fuel, capacity_mw) = match u.category {
                            UnitCategory::CoalLarge => (Fuel::Coal, 600),
                            UnitCategory::CoalSmall => (Fuel::Coal, 300),
                            UnitCategory::UnconventionalCoal => (Fuel::UnconventionalCoal, 300),
                            UnitCategory::Gas => (Fuel::Gas, 400),
                        };
                        (i as u32 + 1, FacilityKind::Power { fuel, capacity_mw })
                    })
                    .collect()
            } else {
                e.processes
                    .iter()
                    .map(|p| {
                        (
                            p.facility,
                            FacilityKind::Industry {
                                product_line: format!("line {}", p.facility),
                                process: p.process,
                            },
                        )
                    })
                    .collect()
            },
        })
        .collect();
    let mut activity = Vec::new();
    for (e, row) in entities.iter().zip(&rows) {
        if e.sector == Sector::Power {
            for (u, (id, _)) in e.units.iter().zip(&row.facilities) {
                activity.push(ActivityRow {
                    account: e.account,
                    facility: *id,
                    activity: Activity::Power {
                        electricity_mwh: u.electricity_mwh,
                        heat_gj: u.heat_gj,
                        load_factor: u.load_factor,
                        emissions_t: u.verified_t,
                    },
                });
            }
        } else {
            for p in &e.processes {
                activity.push(ActivityRow {
                    account: e.account,
                    facility: p.facility,
                    activity: Activity::Industry {
                        output_t: p.output_t,
                        emissions_t: p.emissions_t,
                        pfc_co2e_t: p.pfc_co2e_t,
                        carbide_slag_rate: p.carbide_slag_rate,
                        special: p.special,
                    },
                });
            }
        }
    }
    let timed = |registry: &mut Registry, what: &str, tx: Tx| {
        let t = Instant::now();
        let mut copy = registry.ledger().clone();
        let cloned = t.elapsed();
        let t = Instant::now();
        let outcome = copy.execute(registry.seq() + 1, &tx).expect(what);
        let compute = t.elapsed();
        let records = copy.dirty.holdings.len()
            + copy.dirty.cycle.standing.len()
            + copy.dirty.cycle.deductions.len();
        drop(copy);
        let t = Instant::now();
        registry.apply(&tx).expect(what);
        let total = t.elapsed();
        println!(
            "{what}: compute {:.1} ms, compute + RocksDB commit (synced) {:.1} ms, {records} records written{} (copying the ledger for the compute timing: {:.1} ms)",
            compute.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            if outcome == registry::tx::Outcome::Unchanged {
                ", unchanged: no entry"
            } else {
                ""
            },
            cloned.as_secs_f64() * 1e3,
        );
    };
    let t = Instant::now();
    for chunk in rows.chunks(ENTITY_ROWS_MAX) {
        registry
            .apply(&tx(Op::LoadEntities {
                rows: chunk.to_vec(),
            }))
            .expect("entities");
    }
    for chunk in activity.chunks(DATA_ROWS_MAX) {
        registry
            .apply(&tx(Op::LoadActivity {
                year: 2024,
                rows: chunk.to_vec(),
            }))
            .expect("activity");
    }
    for year in [2023, 2024] {
        registry
            .apply(&tx(Op::RecordVerified {
                year,
                rows: entities
                    .iter()
                    .map(|e| VerifiedRow {
                        account: e.account,
                        co2_t: e.verified_t.unwrap_or(0),
                        pfc_co2e_t: 0,
                    })
                    .collect(),
            }))
            .expect("verified");
    }
    println!(
        "loading {} entities, {} activity rows and two years of verified emissions: {:.1} ms",
        rows.len(),
        activity.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let run = |pre: bool| {
        if pre {
            Op::PreAllocate {
                year: 2024,
                plan_version: "2024.1".into(),
                unit,
                authority,
            }
        } else {
            Op::TrueUp {
                year: 2024,
                plan_version: "2024.1".into(),
                unit,
                authority,
            }
        }
    };
    timed(&mut registry, "pre-allocation 2024", tx(run(true)));
    timed(&mut registry, "true-up 2024", tx(run(false)));
    timed(&mut registry, "true-up 2024 re-run", tx(run(false)));
    // Every entity surrenders 95% of its obligation (or what it has).
    let surrenders: Vec<Tx> = entities
        .iter()
        .filter(|e| !e.differentiated)
        .filter_map(|e| {
            let have = registry
                .ledger()
                .holding(e.account, unit)
                .registry_available_t;
            let q = (e.verified_t.unwrap_or(0) * 95 / 100).min(have);
            (q > 0).then(|| {
                tx(Op::Surrender {
                    account: e.account,
                    retirement,
                    unit,
                    quantity_t: q,
                    year: 2024,
                })
            })
        })
        .collect();
    let t = Instant::now();
    for group in surrenders.chunks(GROUP_TXS_MAX) {
        for r in registry.apply_group(group) {
            r.expect("surrender");
        }
    }
    println!(
        "surrender: {} transactions in {} synced groups, {:.1} ms",
        surrenders.len(),
        surrenders.len().div_ceil(GROUP_TXS_MAX),
        t.elapsed().as_secs_f64() * 1e3
    );
    timed(
        &mut registry,
        "year close 2024",
        tx(Op::CloseYear {
            year: 2024,
            average_price_fen: 8_500,
            retirement,
            date: 20_260_105,
            forced_reason: None,
        }),
    );
    registry.check_invariants().expect("invariants");
}
