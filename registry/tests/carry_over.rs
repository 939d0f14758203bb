//! Carry-over of 2019-2024 allowances into the 2025 vintage, as the 2025 draft plan's
//! `[carry_over]` terms say: net sales counted from settled trades, limits fixed after the
//! holdings date, applications frozen and capped, barred entities refused, conversion
//! issuing 2025 units; all of it reopened from disk and re-verified from the journal.

mod common;

use common::*;
use registry::compliance::Plan;
use registry::cycle::{EntityRow, FacilityKind, Fuel, VerifiedRow};
use registry::industry::Process;
use registry::model::{AccountId, FreezeReason, Sector};
use registry::tx::{Op, SettleLeg, Tx};

const CEMENT: AccountId = AccountId(102);

/// Noon UTC of a date (20:00 in Beijing: the time does not matter, only the year).
fn at(y: i64, m: i64, d: i64) -> u64 {
    // Days from 1970-01-01 by the civil-from-days inverse (March-based years).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + 43_200) as u64 * 1_000_000_000
}

fn plan(name: &str) -> Plan {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{dir}/plans/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Plan::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn entity(account: AccountId, sector: Sector) -> EntityRow {
    let facility = match sector {
        Sector::Power => FacilityKind::Power {
            fuel: Fuel::Coal,
            capacity_mw: 600,
        },
        _ => FacilityKind::Industry {
            product_line: "line 1".into(),
            process: match sector {
                Sector::Steel => Process::Ironmaking,
                _ => Process::ClinkerLine,
            },
        },
    };
    EntityRow {
        account,
        name: format!("entity {}", account.0),
        sector,
        province: "Hebei".into(),
        differentiated: false,
        facilities: vec![(1, facility)],
        credit_code: String::new(),
    }
}

/// A settlement of `legs` at `timestamp_ns` (the engine's time of the settlement point).
fn settle(f: &mut Fixture, through_seq: u64, timestamp_ns: u64, legs: Vec<SettleLeg>) {
    let tx = Tx {
        key: format!("settle:{through_seq}"),
        actor: 0,
        timestamp_ns,
        op: Op::Settle { through_seq, legs },
    };
    f.apply(&tx)
        .unwrap_or_else(|e| panic!("settle {through_seq}: {e}"));
}

fn trade(seller: AccountId, buyer: AccountId, unit: registry::model::UnitId, q: u64) -> SettleLeg {
    SettleLeg::Trade {
        seller,
        buyer,
        unit,
        quantity_t: q,
    }
}

fn apply(account: AccountId, quantity_t: u64, date: u32) -> Op {
    Op::ApplyCarryOver {
        year: 2025,
        account,
        unit: CEA2024,
        quantity_t,
        date,
    }
}

/// STEEL, POWER and CEMENT covered; CEA2024 held 150,000 / 6,000 / 20,000 (and 100,000
/// by the broker, from STEEL); CEMENT short in 2024.
fn market() -> Fixture {
    let mut f = Fixture::new();
    f.ok(Op::LoadEntities {
        rows: vec![
            entity(STEEL, Sector::Steel),
            entity(POWER, Sector::Power),
            entity(CEMENT, Sector::Cement),
        ],
    });
    for name in ["2024.toml", "2025-draft.toml"] {
        f.ok(Op::RegisterPlan {
            plan: Box::new(plan(name)),
        });
    }
    f.ok(Op::Issue {
        authority: MEE,
        unit: CEA2024,
        quantity_t: 276_000,
    });
    for (to, q) in [(STEEL, 250_000), (POWER, 6_000), (CEMENT, 20_000)] {
        f.ok(Op::Allocate {
            from: MEE,
            to,
            unit: CEA2024,
            quantity_t: q,
        });
    }
    // A registry transfer is not a sale at the exchange: it does not count.
    f.ok(Op::Transfer {
        from: STEEL,
        to: BROKER,
        unit: CEA2024,
        quantity_t: 100_000,
    });
    // CEMENT emitted 5,000 t in 2024 and surrendered nothing: the close leaves it short.
    f.ok(Op::RecordVerified {
        year: 2024,
        rows: vec![VerifiedRow {
            account: CEMENT,
            co2_t: 5_000,
            pfc_co2e_t: 0,
        }],
    });
    f.ok(Op::CloseYear {
        year: 2024,
        average_price_fen: 9_000,
        retirement: RETIRED,
        date: 20_260_105,
        forced_reason: None,
    });
    f
}

#[test]
fn net_sales_of_40000_t_give_a_limit_of_70000_t_capped_by_the_holdings() {
    let mut f = market();
    for (account, q) in [(STEEL, 150_000), (BROKER, 100_000), (POWER, 6_000)] {
        f.ok(Op::MoveToTrading {
            account,
            unit: CEA2024,
            quantity_t: q,
        });
    }
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.ok(Op::MoveToTrading {
        account: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    // STEEL sells 50,000 t of CEA2024 in 2024 and buys 10,000 back in 2025: net sales
    // 40,000. Its 1,000 t of CEA2025 sold in 2025 are not an old vintage; a 2023 sale of
    // 2,000 t is outside the sales years.
    settle(
        &mut f,
        1,
        at(2023, 12, 29),
        vec![trade(STEEL, BROKER, CEA2024, 2_000)],
    );
    settle(
        &mut f,
        2,
        at(2024, 6, 3),
        vec![trade(STEEL, BROKER, CEA2024, 50_000)],
    );
    settle(
        &mut f,
        3,
        at(2025, 3, 3),
        vec![
            trade(BROKER, STEEL, CEA2024, 10_000),
            trade(STEEL, BROKER, CEA2025, 1_000),
        ],
    );
    assert_eq!(
        f.registry.ledger().cycle.net_sales[&(STEEL, 2024, 2024)],
        50_000
    );
    assert_eq!(
        f.registry.ledger().cycle.net_sales[&(STEEL, 2024, 2025)],
        -10_000
    );

    // CEMENT's 20,000 t: 5,000 under a court order (they count) and 5,000 pledged (they
    // do not).
    f.ok(Op::Freeze {
        account: CEMENT,
        unit: CEA2024,
        quantity_t: 5_000,
        order: 41,
    });
    f.ok(Op::PledgeRegister {
        pledgor: CEMENT,
        pledgee: BANK,
        unit: CEA2024,
        quantity_t: 5_000,
        secured_fen: 30_000_000,
    });

    // Too early: the limits are fixed after the end of 2025-12-31.
    let fix = |date| Op::FixCarryOver {
        year: 2025,
        plan_version: "2025.draft".into(),
        date,
    };
    f.rejects(apply(STEEL, 1, 20_260_102), "CARRY_OVER_NOT_FIXED");
    f.rejects(fix(20_251_231), "CARRY_OVER_WINDOW");
    f.ok(fix(20_260_101));
    f.rejects(fix(20_260_102), "CARRY_OVER_FIXED");
    let quota = |f: &Fixture, a| f.registry.ledger().cycle.quotas[&(2025, a)].clone();
    // STEEL: T = 10,000 + 1.5 x 40,000 = 70,000; it holds 150,000 - 2,000 - 50,000 +
    // 10,000 = 108,000 t of CEA2024 (all at the exchange): the limit is 70,000.
    let q = quota(&f, STEEL);
    assert_eq!(
        (
            q.net_sales_t,
            q.formula_t,
            q.holdings_t,
            q.limit_t,
            q.barred
        ),
        (40_000, 70_000, 108_000, 70_000, false)
    );
    // POWER: no sales, T = 10,000, but it holds only 6,000: capped at 6,000.
    let q = quota(&f, POWER);
    assert_eq!(
        (q.formula_t, q.holdings_t, q.limit_t),
        (10_000, 6_000, 6_000)
    );
    // CEMENT missed 2024: barred (its 10,000 available + 5,000 judicially frozen = 15,000
    // t would have given 10,000).
    let q = quota(&f, CEMENT);
    assert_eq!(
        (q.formula_t, q.holdings_t, q.limit_t, q.barred),
        (10_000, 15_000, 0, true)
    );
    assert!(
        !f.registry
            .ledger()
            .cycle
            .quotas
            .contains_key(&(2025, BROKER))
    );

    // Units must first come back from trading to the registry position.
    f.rejects(apply(STEEL, 50_000, 20_260_105), "INSUFFICIENT_AVAILABLE");
    f.ok(Op::MoveFromTrading {
        account: STEEL,
        unit: CEA2024,
        quantity_t: 80_000,
    });
    f.ok(apply(STEEL, 50_000, 20_260_105));
    assert_eq!(
        f.holding(STEEL, CEA2024),
        (30_000, 28_000, 50_000),
        "frozen from application"
    );
    // 50,000 + 30,000 = 80,000 > 70,000: refused; 20,000 more reaches it exactly.
    f.rejects(apply(STEEL, 30_000, 20_260_201), "CARRY_OVER_LIMIT");
    f.ok(apply(STEEL, 20_000, 20_260_201));
    f.rejects(apply(STEEL, 1, 20_260_201), "CARRY_OVER_LIMIT");
    f.rejects(apply(CEMENT, 1_000, 20_260_201), "CARRY_OVER_BARRED");
    f.rejects(apply(POWER, 1_000, 20_260_611), "CARRY_OVER_WINDOW");
    f.rejects(
        Op::ApplyCarryOver {
            year: 2025,
            account: STEEL,
            unit: CEA2025,
            quantity_t: 1,
            date: 20_260_201,
        },
        "INVALID_FIELD",
    );

    // Conversion: the 70,000 t of CEA2024 go to the cancellation account, 70,000 t of
    // CEA2025 are issued to STEEL (1,000,000 issued to the authority + 70,000).
    f.rejects(
        Op::ConvertCarryOver {
            year: 2025,
            unit: CEA2024,
            cancellation: CANCELLED,
        },
        "INVALID_FIELD",
    );
    f.ok(Op::ConvertCarryOver {
        year: 2025,
        unit: CEA2025,
        cancellation: CANCELLED,
    });
    assert_eq!(f.holding(STEEL, CEA2024), (10_000, 28_000, 0));
    assert_eq!(f.holding(STEEL, CEA2025), (70_000, 0, 0));
    assert_eq!(f.holding(CANCELLED, CEA2024), (70_000, 0, 0));
    assert_eq!(f.registry.ledger().issued[&CEA2025], 1_070_000);
    assert!(
        f.registry
            .ledger()
            .holding(STEEL, CEA2024)
            .frozen
            .keys()
            .all(|r| !matches!(r, FreezeReason::CarryOver(_)))
    );

    // Everything is on disk and in the journal.
    let before = f.registry.ledger().cycle.clone();
    f.reopen().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        f.registry.ledger().cycle == before,
        "carry-over records survive a reopen"
    );
    let report = f
        .registry
        .verify_journal()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.entries,
        f.registry.seq(),
        "every entry replays to these records"
    );
}
