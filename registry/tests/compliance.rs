//! The compliance cycle's rules, hand-computed with real 2024 benchmark values, and a full
//! year walked through the registry: pre-allocation, verification, true-up, trading moves,
//! surrender, year close, next year's deduction; every tonne accounted for.

use std::collections::BTreeMap;

use registry::allocation::{PowerUnit, UnitCategory};
use registry::compliance::*;
use registry::industry::{Process, ProcessYear};
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Tx};
use registry::{Registry, RegistryOptions};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn coal_600mw() -> PowerUnit {
    PowerUnit {
        category: UnitCategory::CoalLarge,
        electricity_mwh: dec!(3000000),
        heat_gj: dec!(100000),
        load_factor: dec!(0.55),
        verified_t: dec!(2700000),
    }
}

fn entity(account: u64, sector: Sector, verified: Option<u64>) -> EntityYear {
    EntityYear {
        account: AccountId(account),
        sector,
        province: "Hebei".into(),
        differentiated: false,
        units: Vec::new(),
        processes: Vec::new(),
        verified_t: verified,
    }
}

/// A clinker line (an allocation unit of its own) with its output and emissions.
fn clinker_line(facility: u32, output_t: Decimal, emissions_t: Decimal) -> ProcessYear {
    ProcessYear {
        facility,
        process: Process::ClinkerLine,
        output_t,
        emissions_t,
        pfc_co2e_t: Decimal::ZERO,
        carbide_slag_rate: Decimal::ZERO,
        special: None,
    }
}

#[test]
fn a_power_entity_is_allocated_by_benchmark_with_its_steps_explained() {
    // 600 MW coal unit, F = 0.55: Ff = 1.015^(16 - 20 x 0.55) = 1.015^5 = 1.077284003884375.
    // Qe x Be x Ff = 3,000,000 x 0.7910 x 1.077284003884375 = 2,556,394.9412...
    // Qh x Bh = 100,000 x 0.1033 = 10,330; sum 2,566,724.94 -> 2,566,724 t
    // (above the floor 0.8 x 2,700,000 = 2,160,000).
    let mut e = entity(10, Sector::Power, Some(2_700_000));
    e.units = vec![coal_600mw()];
    let run = allocate(&Plan::plan_2024(), &[e]).unwrap_or_else(|e| panic!("{e}"));
    let a = &run.allocations[0];
    assert_eq!((a.method, a.allocated_t), ("benchmark", 2_566_724));
    assert!(a.explanation.contains("1.077284"), "{}", a.explanation);
    assert!(a.explanation.contains("-> 2566724 t"), "{}", a.explanation);
    assert_eq!(run.plan_version, "2024.1");
}

#[test]
fn industry_is_grandfathered_in_2024_and_balanced_by_intensity_from_2025() {
    let cement = [
        (21, 1_000_000u64, dec!(1200000)),
        (22, 500_000, dec!(500000)),
        (23, 800_000, dec!(1000000)),
    ];
    let entities: Vec<EntityYear> = cement
        .iter()
        .map(|&(id, verified, output)| EntityYear {
            processes: vec![clinker_line(1, output, Decimal::from(verified))],
            ..entity(id, Sector::Cement, Some(verified))
        })
        .collect();
    let run = allocate(&Plan::plan_2024(), &entities).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run.allocations
            .iter()
            .map(|a| a.allocated_t)
            .collect::<Vec<_>>(),
        vec![1_000_000, 500_000, 800_000]
    );
    let run = allocate(&Plan::draft_2025(), &entities).unwrap_or_else(|e| panic!("{e}"));
    let total: u64 = run.allocations.iter().map(|a| a.allocated_t).sum();
    // The balance value makes the sector's allocation equal its verified emissions; after
    // flooring each entity the sector is short by less than one tonne per entity.
    let verified = 2_300_000u64;
    assert!(total <= verified && verified - total < 3, "{total}");
    let solution = run
        .balance
        .get(&Sector::Cement)
        .unwrap_or_else(|| panic!("no BP"));
    assert!(solution.residual_t.abs() < dec!(0.5), "{solution:?}");
    // The most efficient (lowest intensity 0.8333 t/t) gets more than its emissions.
    assert!(run.allocations[0].allocated_t > 1_000_000);
    assert!(run.allocations[1].allocated_t < 500_000);
    assert!(run.allocations.iter().all(|a| a.method == "intensity"));
    // Entities without verified emissions are not allocated yet.
    let mut pending = entities.clone();
    pending[2].verified_t = None;
    assert_eq!(
        allocate(&Plan::draft_2025(), &pending).map(|r| r.allocations.len()),
        Ok(2)
    );
    // Reproducible: the same inputs give the same tonnes.
    assert_eq!(
        allocate(&Plan::draft_2025(), &entities).map(|r| r.allocations),
        Ok(run.allocations)
    );
}

#[test]
fn pre_allocation_true_up_and_deductions() {
    // 70% of 1,000,001 = 700,000.7 -> 700,000.
    let power = Sector::Power;
    assert_eq!(
        pre_allocation(&Plan::plan_2024(), power, 1_000_001),
        Ok(700_000)
    );
    assert_eq!(
        pre_allocation(&Plan::draft_2025(), power, 1_000_001),
        Ok(500_000)
    );
    // Steel, cement, aluminium: no pre-allocation for 2024; 2025: 70% of 2024 verified
    // (a per-sector plan value): 70% of 1,000,001 -> 700,000.
    for sector in [Sector::Steel, Sector::Cement, Sector::Aluminium] {
        assert_eq!(pre_allocation(&Plan::plan_2024(), sector, 1_000_001), Ok(0));
        assert_eq!(
            pre_allocation(&Plan::draft_2025(), sector, 1_000_001),
            Ok(700_000)
        );
    }
    // Final 900,000 after 700,000 pre-allocated, 50,000 deduction owed: issue 150,000.
    assert_eq!(
        true_up(900_000, 700_000, 50_000),
        Issuance {
            issue_t: 150_000,
            claw_back_t: 0,
            deduction_applied_t: 50_000,
            deduction_carried_t: 0
        }
    );
    // A deduction larger than what is due carries forward.
    assert_eq!(
        true_up(720_000, 700_000, 50_000),
        Issuance {
            issue_t: 0,
            claw_back_t: 0,
            deduction_applied_t: 20_000,
            deduction_carried_t: 30_000
        }
    );
    // Pre-allocation above the final allocation: claw back, the deduction stays owed.
    assert_eq!(
        true_up(600_000, 700_000, 5),
        Issuance {
            issue_t: 0,
            claw_back_t: 100_000,
            deduction_applied_t: 0,
            deduction_carried_t: 5
        }
    );
}

fn cea(vintage: u16) -> UnitDef {
    UnitDef {
        kind: UnitKind::Cea,
        vintage,
        project_id: 0,
        registered: 0,
    }
}

#[test]
fn surrender_rules_vintage_ccer_cap_and_closed_years() {
    let plan = Plan::plan_2024();
    let status = Compliance {
        obligation_t: Some(100_000),
        surrendered_cea_t: 0,
        surrendered_ccer_t: 0,
    };
    assert_eq!(
        check_surrender(&plan, false, &status, &cea(2024), 90_000),
        Ok(())
    );
    assert_eq!(
        check_surrender(&plan, false, &status, &cea(2019), 1),
        Ok(())
    );
    let e = check_surrender(&plan, false, &status, &cea(2025), 1).unwrap_err();
    assert_eq!(e.code(), "VINTAGE_AFTER_YEAR");
    let e = check_surrender(&plan, false, &status, &cea(2018), 1).unwrap_err();
    assert_eq!(e.code(), "VINTAGE_TOO_OLD");
    assert_eq!(
        check_surrender(&Plan::draft_2025(), false, &status, &cea(2024), 1).map_err(|e| e.code()),
        Err("VINTAGE_TOO_OLD")
    );
    let ccer = UnitDef {
        kind: UnitKind::Ccer,
        vintage: 2023,
        project_id: 7,
        registered: 20_240_101,
    };
    // 5% of 100,000 = 5,000 t of CCER at most.
    assert_eq!(check_surrender(&plan, false, &status, &ccer, 5_000), Ok(()));
    let used = Compliance {
        surrendered_ccer_t: 4_000,
        ..status
    };
    assert_eq!(
        check_surrender(&plan, false, &used, &ccer, 1_001),
        Err(SurrenderError::CcerLimitExceeded {
            cap_t: 5_000,
            used_t: 4_000,
            wanted_t: 1_001
        })
    );
    // For 2025 and 2026 only CCER registered after 2024-01-22 count (a lower bound).
    let strict = Plan {
        ccer_registered_after: 20_240_122,
        ..Plan::plan_2024()
    };
    for (registered, ok) in [(20_240_121, false), (20_240_122, false), (20_240_123, true)] {
        let unit = UnitDef { registered, ..ccer };
        assert_eq!(
            check_surrender(&strict, false, &status, &unit, 1).map_err(|e| e.code()),
            if ok { Ok(()) } else { Err("CCER_NOT_ELIGIBLE") },
            "registered {registered}"
        );
    }
    assert_eq!(Plan::draft_2025().ccer_registered_after, 20_240_122);
    assert_eq!(
        check_surrender(&plan, true, &status, &cea(2024), 1).map_err(|e| e.code()),
        Err("YEAR_CLOSED")
    );
    let unknown = Compliance::default();
    assert_eq!(
        check_surrender(&plan, false, &unknown, &cea(2024), 1).map_err(|e| e.code()),
        Err("EMISSIONS_NOT_ENTERED")
    );
    assert_eq!(unknown.status(), StatusCode::EmissionsNotEntered);
}

#[test]
fn closing_the_year_forces_surrender_fines_shortfalls_and_carries_deductions() {
    let plan = Plan::plan_2024();
    let short = Compliance {
        obligation_t: Some(100_000),
        surrendered_cea_t: 85_000,
        surrendered_ccer_t: 5_000,
    };
    // 10,000 t short x 5 x 85.00 yuan = 4,250,000.00 yuan = 425,000,000 fen.
    let c = close(&plan, AccountId(1), &short, false, 0, 8_500);
    assert_eq!(
        (c.status, c.shortfall_t, c.penalty_fen, c.deduction_t),
        (StatusCode::Short, 10_000, 425_000_000, 10_000)
    );
    // Differentiated: the authority holds 95,000 for it; all of it is surrendered, 5,000 short.
    let nothing = Compliance {
        obligation_t: Some(100_000),
        ..Compliance::default()
    };
    let c = close(&plan, AccountId(2), &nothing, true, 95_000, 8_500);
    assert_eq!(
        (c.forced_t, c.released_t, c.shortfall_t),
        (95_000, 0, 5_000)
    );
    // Held 120,000: 100,000 surrendered, 20,000 surplus released, compliant.
    let c = close(&plan, AccountId(3), &nothing, true, 120_000, 8_500);
    assert_eq!(
        (
            c.forced_t,
            c.released_t,
            c.shortfall_t,
            c.penalty_fen,
            c.status
        ),
        (100_000, 20_000, 0, 0, StatusCode::Compliant)
    );
}

fn tx(n: &mut u64, op: Op) -> Tx {
    *n += 1;
    Tx {
        key: format!("year-{n}"),
        actor: 1,
        timestamp_ns: *n,
        op,
    }
}

#[test]
fn a_full_year_walked_through_the_registry_accounts_for_every_tonne() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut r = Registry::open(dir.path(), RegistryOptions { sync: false })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0;
    let mut apply =
        |r: &mut Registry, op: Op| r.apply(&tx(&mut n, op)).unwrap_or_else(|e| panic!("{e}"));
    let (authority, retirement) = (AccountId(1), AccountId(2));
    let (power, cement, diff) = (AccountId(10), AccountId(21), AccountId(30));
    for (id, kind) in [
        (authority, AccountType::NationalAuthority),
        (retirement, AccountType::Retirement),
        (power, AccountType::CoveredEntity(Sector::Power)),
        (cement, AccountType::CoveredEntity(Sector::Cement)),
        (diff, AccountType::CoveredEntity(Sector::Cement)),
    ] {
        apply(
            &mut r,
            Op::OpenAccount {
                account: id,
                kind,
                name: format!("{}", id.0),
            },
        );
    }
    let (u2024, u2025) = (UnitId(1), UnitId(2));
    apply(
        &mut r,
        Op::CreateUnit {
            unit: u2024,
            def: cea(2024),
        },
    );
    apply(
        &mut r,
        Op::CreateUnit {
            unit: u2025,
            def: cea(2025),
        },
    );
    let plan = Plan::plan_2024();
    // Pre-allocation from 2023 verified emissions (70%); the differentiated entity's stays
    // in the authority's account.
    let previous = BTreeMap::from([(power, 2_500_000u64), (cement, 1_000_000), (diff, 400_000)]);
    // Only power is pre-allocated in 2024 (industry: allocation = verified, issued once
    // verified): 70% of 2,500,000 = 1,750,000.
    let sector = |a: &AccountId| {
        if *a == power {
            Sector::Power
        } else {
            Sector::Cement
        }
    };
    let pre: BTreeMap<AccountId, u64> = previous
        .iter()
        .map(|(a, v)| {
            (
                *a,
                pre_allocation(&plan, sector(a), *v).unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect();
    assert_eq!((pre[&power], pre[&cement], pre[&diff]), (1_750_000, 0, 0));
    apply(
        &mut r,
        Op::Issue {
            authority,
            unit: u2024,
            quantity_t: 10_000_000,
        },
    );
    for (a, q) in &pre {
        if *a != diff && *q > 0 {
            apply(
                &mut r,
                Op::Allocate {
                    from: authority,
                    to: *a,
                    unit: u2024,
                    quantity_t: *q,
                },
            );
        }
    }
    // Verification, then the final allocation and the true-up.
    let mut p = entity(10, Sector::Power, Some(2_700_000));
    p.units = vec![coal_600mw()];
    let c = entity(21, Sector::Cement, Some(900_000));
    let d = EntityYear {
        differentiated: true,
        ..entity(30, Sector::Cement, Some(420_000))
    };
    let run = allocate(&plan, &[p, c, d]).unwrap_or_else(|e| panic!("{e}"));
    let finals: BTreeMap<AccountId, u64> = run
        .allocations
        .iter()
        .map(|a| (a.account, a.allocated_t))
        .collect();
    assert_eq!(finals[&power], 2_566_724);
    let mut held_for_diff = 0;
    for (a, final_t) in &finals {
        let t = true_up(*final_t, pre[a], 0);
        if *a == diff {
            held_for_diff = *final_t;
            continue;
        }
        if t.issue_t > 0 {
            apply(
                &mut r,
                Op::Allocate {
                    from: authority,
                    to: *a,
                    unit: u2024,
                    quantity_t: t.issue_t,
                },
            );
        }
        if t.claw_back_t > 0 {
            apply(
                &mut r,
                Op::Transfer {
                    from: *a,
                    to: authority,
                    unit: u2024,
                    quantity_t: t.claw_back_t,
                },
            );
        }
    }
    // cement: nothing pre-allocated, its final 900,000 issued at the true-up.
    assert_eq!(
        r.ledger().holding(cement, u2024).registry_available_t,
        900_000
    );
    assert_eq!(
        r.ledger().holding(power, u2024).registry_available_t,
        2_566_724
    );
    // Trading moves: the power entity sells 100,000 t to the cement entity.
    apply(
        &mut r,
        Op::MoveToTrading {
            account: power,
            unit: u2024,
            quantity_t: 100_000,
        },
    );
    apply(
        &mut r,
        Op::MoveFromTrading {
            account: power,
            unit: u2024,
            quantity_t: 100_000,
        },
    );
    apply(
        &mut r,
        Op::Transfer {
            from: power,
            to: cement,
            unit: u2024,
            quantity_t: 100_000,
        },
    );
    // Surrender: power covers 2,700,000 with what it has (2,466,724): short 233,276;
    // cement surrenders 900,000 of its 1,000,000.
    let mut status: BTreeMap<AccountId, Compliance> = BTreeMap::new();
    for (a, v) in [(power, 2_700_000u64), (cement, 900_000), (diff, 420_000)] {
        status.insert(
            a,
            Compliance {
                obligation_t: Some(v),
                ..Compliance::default()
            },
        );
    }
    for (a, q) in [(power, 2_466_724u64), (cement, 900_000)] {
        let s = status.get_mut(&a).unwrap_or_else(|| panic!("status"));
        check_surrender(&plan, false, s, &cea(2024), q).unwrap_or_else(|e| panic!("{e}"));
        apply(
            &mut r,
            Op::Surrender {
                account: a,
                retirement,
                unit: u2024,
                quantity_t: q,
                year: 2024,
            },
        );
        s.surrendered_cea_t += q;
    }
    // 2025 units cannot cover 2024.
    assert_eq!(
        check_surrender(&plan, false, &status[&cement], &cea(2025), 1).map_err(|e| e.code()),
        Err("VINTAGE_AFTER_YEAR")
    );
    // Year close at an average price of 85.00 yuan.
    let mut deductions = BTreeMap::new();
    for (a, s) in &status {
        let c = close(
            &plan,
            *a,
            s,
            *a == diff,
            if *a == diff { held_for_diff } else { 0 },
            8_500,
        );
        if c.forced_t > 0 {
            apply(
                &mut r,
                Op::Surrender {
                    account: authority,
                    retirement,
                    unit: u2024,
                    quantity_t: c.forced_t,
                    year: 2024,
                },
            );
        }
        if c.released_t > 0 {
            apply(
                &mut r,
                Op::Allocate {
                    from: authority,
                    to: *a,
                    unit: u2024,
                    quantity_t: c.released_t,
                },
            );
        }
        deductions.insert(*a, c.deduction_t);
        if *a == power {
            assert_eq!(
                (c.shortfall_t, c.penalty_fen),
                (233_276, 233_276 * 5 * 8_500)
            );
        }
    }
    // The differentiated cement entity: final allocation = verified (grandfathering) =
    // 420,000 held by the authority, all surrendered for it, nothing short.
    assert_eq!(deductions[&diff], 0);
    assert!(check_surrender(&plan, true, &status[&cement], &cea(2024), 1).is_err());
    // Next year: the power entity's shortfall comes off its 2025 pre-allocation.
    let plan_2025 = Plan::draft_2025();
    let pre_2025 =
        pre_allocation(&plan_2025, Sector::Power, 2_700_000).unwrap_or_else(|e| panic!("{e}"));
    let i = net_issuance(pre_2025, deductions[&power]);
    assert_eq!(
        (
            pre_2025,
            i.issue_t,
            i.deduction_applied_t,
            i.deduction_carried_t
        ),
        (1_350_000, 1_116_724, 233_276, 0)
    );
    apply(
        &mut r,
        Op::Issue {
            authority,
            unit: u2025,
            quantity_t: 5_000_000,
        },
    );
    apply(
        &mut r,
        Op::Allocate {
            from: authority,
            to: power,
            unit: u2025,
            quantity_t: i.issue_t,
        },
    );
    // Every tonne accounted for: per unit, issued = held + retired.
    r.check_invariants().unwrap_or_else(|e| panic!("{e}"));
    let l = r.ledger();
    let total = |unit| {
        l.holdings
            .iter()
            .filter(|((_, u), _)| *u == unit)
            .map(|(_, h)| h.total_t())
            .sum::<u64>()
    };
    assert_eq!(total(u2024), 10_000_000);
    assert_eq!(total(u2025), 5_000_000);
    let retired = l.holding(retirement, u2024).total_t();
    assert_eq!(retired, 2_466_724 + 900_000 + 420_000);
    assert_eq!(l.holding(cement, u2024).total_t(), 100_000);
    assert_eq!(l.holding(power, u2025).total_t(), 1_116_724);
    // The reports are written from the ledger's cycle (registry/tests/cycle.rs checks
    // their lines).
}
