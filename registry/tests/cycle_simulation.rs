//! Seeded simulation of the compliance cycle: random loads, verifications and corrections,
//! pre-allocations and true-ups (and their re-runs), trading moves, surrenders and year
//! closes across two compliance years, valid and invalid. After every step: the ledger's
//! invariants (issued = sum of holdings per unit, freezes match their records, entities
//! match their accounts, the authority holds what it keeps for differentiated entities),
//! and after every true-up each allocated entity's credited allocation equals its final
//! allocation. At the end the database is reopened and the journal replayed to the same
//! books. The seed is printed on failure; rerun one with
//! `CARBONX_SEED=<seed> cargo test -p registry --test cycle_simulation`.

mod common;

use common::Rng;
use registry::compliance::Plan;
use registry::cycle::{Activity, ActivityRow, EntityRow, FacilityKind, Fuel, VerifiedRow};
use registry::industry::Process;
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Tx};
use registry::{Registry, RegistryOptions};
use rust_decimal::Decimal;

const AUTHORITY: AccountId = AccountId(1);
const RETIREMENT: AccountId = AccountId(2);
const MEMBER: AccountId = AccountId(3);
const ENTITIES: u64 = 8;
const YEARS: [(u16, UnitId); 2] = [(2024, UnitId(1)), (2025, UnitId(2))];

fn entity(n: u64) -> AccountId {
    AccountId(100 + n)
}

fn sector(n: u64) -> Sector {
    [
        Sector::Power,
        Sector::Power,
        Sector::Power,
        Sector::Steel,
        Sector::Cement,
        Sector::Aluminium,
    ][(n % 6) as usize]
}

fn rows() -> Vec<EntityRow> {
    (0..ENTITIES)
        .map(|n| EntityRow {
            account: entity(n),
            name: format!("entity {n}"),
            sector: sector(n),
            province: ["Hebei", "Anhui"][(n % 2) as usize].into(),
            differentiated: n == 2 || n == 4,
            credit_code: registry::uscc::complete_uscc(&format!("91110000MA{n:07}"))
                .unwrap_or_default(),
            facilities: if sector(n) == Sector::Power {
                vec![
                    (
                        1,
                        FacilityKind::Power {
                            fuel: Fuel::Coal,
                            capacity_mw: 600,
                        },
                    ),
                    (
                        2,
                        FacilityKind::Power {
                            fuel: Fuel::Gas,
                            capacity_mw: 300,
                        },
                    ),
                ]
            } else {
                vec![(
                    1,
                    FacilityKind::Industry {
                        product_line: "line".into(),
                        process: match sector(n) {
                            Sector::Steel => Process::Ironmaking,
                            Sector::Cement => Process::ClinkerLine,
                            _ => Process::Electrolysis,
                        },
                    },
                )]
            },
        })
        .collect()
}

fn activity(rng: &mut Rng, n: u64) -> Vec<ActivityRow> {
    if sector(n) == Sector::Power {
        (1..=2)
            .map(|f| ActivityRow {
                account: entity(n),
                facility: f,
                activity: Activity::Power {
                    electricity_mwh: Decimal::from(100_000 + rng.below(900_000)),
                    heat_gj: Decimal::from(rng.below(50_000)),
                    load_factor: Decimal::new(30 + rng.below(60) as i64, 2),
                    emissions_t: Decimal::from(50_000 + rng.below(500_000)),
                },
            })
            .collect()
    } else {
        vec![ActivityRow {
            account: entity(n),
            facility: 1,
            activity: Activity::Industry {
                output_t: Decimal::from(100_000 + rng.below(900_000)),
                emissions_t: Decimal::from(50_000 + rng.below(950_000)),
                pfc_co2e_t: Decimal::ZERO,
                carbide_slag_rate: Decimal::ZERO,
                special: None,
            },
        }]
    }
}

fn random_op(rng: &mut Rng) -> Op {
    let (year, unit) = YEARS[rng.below(2) as usize];
    let plan = if year == 2024 { "2024.1" } else { "2025.draft" };
    let n = rng.below(ENTITIES);
    match rng.below(12) {
        0 | 1 => {
            let mut rows = Vec::new();
            for m in 0..ENTITIES {
                if m != n && rng.below(2) == 0 {
                    continue;
                }
                rows.push(VerifiedRow {
                    account: entity(m),
                    co2_t: if m == n {
                        rng.below(2_000_000)
                    } else {
                        100_000 + rng.below(1_000_000)
                    },
                    pfc_co2e_t: if sector(m) == Sector::Aluminium {
                        rng.below(50_000)
                    } else {
                        0
                    },
                });
            }
            Op::RecordVerified {
                year: if rng.below(5) == 0 { year - 1 } else { year },
                rows,
            }
        }
        2 => Op::LoadActivity {
            year,
            rows: activity(rng, n),
        },
        3 => Op::PreAllocate {
            year,
            plan_version: plan.into(),
            unit,
            authority: AUTHORITY,
        },
        4 | 5 => Op::TrueUp {
            year,
            plan_version: plan.into(),
            unit,
            authority: AUTHORITY,
        },
        6 | 7 => Op::Surrender {
            account: entity(n),
            retirement: RETIREMENT,
            unit: YEARS[rng.below(2) as usize].1,
            quantity_t: 1 + rng.below(600_000),
            year,
        },
        8 => Op::Transfer {
            from: entity(n),
            to: if rng.below(2) == 0 {
                MEMBER
            } else {
                entity(rng.below(ENTITIES))
            },
            unit,
            quantity_t: 1 + rng.below(200_000),
        },
        9 => Op::Transfer {
            from: MEMBER,
            to: entity(n),
            unit,
            quantity_t: 1 + rng.below(200_000),
        },
        // Closing is rare: most of a run happens inside open years.
        // A close on a date before, just after or long after the 2024 deadline
        // (2025-12-31), a quarter of them forced with a reason.
        10 if rng.below(10) == 0 => Op::CloseYear {
            year,
            average_price_fen: 5_000 + rng.below(5_000) as i64,
            retirement: RETIREMENT,
            date: [20_251_231, 20_260_105, 20_270_105][rng.below(3) as usize],
            forced_reason: (rng.below(4) == 0).then(|| "the ministry closes early".to_owned()),
        },
        10 => Op::TrueUp {
            year,
            plan_version: plan.into(),
            unit,
            authority: AUTHORITY,
        },
        _ => Op::LoadEntities {
            rows: vec![rows()[n as usize].clone()],
        },
    }
}

/// Successful operations by kind, across seeds (each kind must happen).
type Tally = std::collections::BTreeMap<&'static str, u64>;

fn kind(op: &Op) -> &'static str {
    match op {
        Op::RecordVerified { .. } => "RecordVerified",
        Op::LoadActivity { .. } => "LoadActivity",
        Op::PreAllocate { .. } => "PreAllocate",
        Op::TrueUp { .. } => "TrueUp",
        Op::Surrender { .. } => "Surrender",
        Op::Transfer { .. } => "Transfer",
        Op::CloseYear { .. } => "CloseYear",
        Op::LoadEntities { .. } => "LoadEntities",
        _ => "other",
    }
}

fn run(seed: u64, tally: &mut Tally) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut r = Registry::open(dir.path(), RegistryOptions { sync: false })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(seed);
    let mut n = 0u64;
    let mut apply = |r: &mut Registry, op: Op| {
        n += 1;
        r.apply(&Tx {
            key: format!("s{n}"),
            actor: 1,
            timestamp_ns: n,
            op,
        })
    };
    let mut setup = vec![
        Op::OpenAccount {
            account: AUTHORITY,
            kind: AccountType::NationalAuthority,
            name: "ministry".into(),
        },
        Op::OpenAccount {
            account: RETIREMENT,
            kind: AccountType::Retirement,
            name: "retirement".into(),
        },
        Op::OpenAccount {
            account: MEMBER,
            kind: AccountType::MemberFirm,
            name: "member".into(),
        },
        Op::RegisterPlan {
            plan: Box::new(Plan::plan_2024()),
        },
        Op::RegisterPlan {
            plan: Box::new(Plan::draft_2025()),
        },
        Op::LoadEntities { rows: rows() },
    ];
    for (year, unit) in YEARS {
        setup.push(Op::CreateUnit {
            unit,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: year,
                project_id: 0,
                registered: 0,
            },
        });
        // The member holds some of each vintage to sell to entities.
        setup.push(Op::Issue {
            authority: AUTHORITY,
            unit,
            quantity_t: 5_000_000,
        });
        setup.push(Op::Transfer {
            from: AUTHORITY,
            to: MEMBER,
            unit,
            quantity_t: 5_000_000,
        });
    }
    for op in setup {
        apply(&mut r, op).unwrap_or_else(|e| panic!("seed {seed}: setup: {e}"));
    }
    let (mut ok, mut refused) = (0, 0);
    for step in 0..400 {
        let op = random_op(&mut rng);
        let result = apply(&mut r, op.clone());
        match &result {
            Ok(_) => {
                ok += 1;
                *tally.entry(kind(&op)).or_default() += 1;
            }
            Err(e) => {
                assert!(
                    e.is_rejection(),
                    "seed {seed} step {step}: {op:?}: failure {e}"
                );
                refused += 1;
            }
        }
        r.check_invariants()
            .unwrap_or_else(|e| panic!("seed {seed} step {step}: {op:?}: {e}"));
        // In a trued-up, open year every allocated entity's credited allocation is its
        // final allocation, whatever happened since (corrections re-run the true-up).
        let ledger = r.ledger();
        for (&(year, account), s) in &ledger.cycle.standing {
            let trued = ledger
                .cycle
                .years
                .get(&year)
                .is_some_and(|y| y.trued.is_some() && y.closed.is_none());
            if trued && let Some(final_t) = s.final_t {
                assert_eq!(
                    s.credited_t(),
                    final_t,
                    "seed {seed} step {step} after {op:?}: {account:?} {year}: credited differs from final"
                );
            }
        }
    }
    assert!(
        ok > 50 && refused > 10,
        "seed {seed}: {ok} ok, {refused} refused"
    );
    let mut books = r.ledger().clone();
    books.dirty = Default::default();
    drop(r);
    let r = Registry::open(dir.path(), RegistryOptions { sync: false })
        .unwrap_or_else(|e| panic!("seed {seed}: reopen: {e}"));
    assert!(r.ledger() == &books, "seed {seed}: reloaded books differ");
    r.verify_journal()
        .unwrap_or_else(|e| panic!("seed {seed}: journal: {e}"));
}

#[test]
fn random_compliance_cycles_keep_every_tonne_and_every_allocation() {
    let seeds: Vec<u64> = match std::env::var("CARBONX_SEED") {
        Ok(s) => vec![s.parse().unwrap_or_else(|e| panic!("CARBONX_SEED: {e}"))],
        Err(_) => (1..=16).collect(),
    };
    let mut tally = Tally::new();
    for seed in &seeds {
        run(*seed, &mut tally);
    }
    eprintln!(
        "successful operations over {} seeds: {tally:?}",
        seeds.len()
    );
    if seeds.len() > 1 {
        for k in [
            "RecordVerified",
            "LoadActivity",
            "PreAllocate",
            "TrueUp",
            "Surrender",
            "Transfer",
            "CloseYear",
            "LoadEntities",
        ] {
            assert!(
                tally.get(k).copied().unwrap_or(0) > 0,
                "no successful {k}: {tally:?}"
            );
        }
    }
}
