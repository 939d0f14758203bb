//! The compliance cycle as journaled registry transactions on RocksDB: entities loaded in
//! bulk, plans registered from their TOML files, pre-allocation, verification, true-up
//! (idempotent), a correction with top-up and claw-back, trading moves, surrender under the
//! plan's rules, year close with forced surrender, penalties and deductions, next year's
//! pre-allocation net of them; reopened from disk and re-verified from the journal. Every
//! tonne is accounted for.

use registry::compliance::{Plan, StatusCode};
use registry::cycle::{Activity, ActivityRow, EntityRow, FacilityKind, Fuel, VerifiedRow};
use registry::industry::{Process, SpecialCase};
use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Outcome, Receipt, Tx};
use registry::{Registry, RegistryError, RegistryOptions};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const AUTHORITY: AccountId = AccountId(1);
const RETIREMENT: AccountId = AccountId(2);
const COAL: AccountId = AccountId(10);
const GAS: AccountId = AccountId(11);
const CEMENT: AccountId = AccountId(21);
const DIFF: AccountId = AccountId(30);
const ALU: AccountId = AccountId(40);
const MEMBER: AccountId = AccountId(50);
const BANK: AccountId = AccountId(60);
const U2024: UnitId = UnitId(1);
const U2025: UnitId = UnitId(2);
const CCER: UnitId = UnitId(3);

struct Book {
    r: Registry,
    n: u64,
}

impl Book {
    /// A registry on `dir` (unsynced: these tests do not crash).
    fn open(dir: &std::path::Path) -> Book {
        let r =
            Registry::open(dir, RegistryOptions { sync: false }).unwrap_or_else(|e| panic!("{e}"));
        Book { r, n: 0 }
    }

    fn tx(&mut self, op: Op) -> Tx {
        self.n += 1;
        Tx {
            key: format!("k{}", self.n),
            actor: 1,
            timestamp_ns: self.n,
            op,
        }
    }
    fn try_apply(&mut self, op: Op) -> Result<Receipt, RegistryError> {
        let tx = self.tx(op);
        let result = self.r.apply(&tx);
        self.r
            .check_invariants()
            .unwrap_or_else(|e| panic!("invariant broken after {tx:?}: {e}"));
        result
    }
    fn ok(&mut self, op: Op) -> Receipt {
        self.try_apply(op.clone())
            .unwrap_or_else(|e| panic!("{op:?}: {e}"))
    }
    /// Refused with `code`, and nothing changed.
    fn refused(&mut self, op: Op, code: &str) -> RegistryError {
        let books = |r: &Registry| {
            let mut l = r.ledger().clone();
            l.dirty = Default::default();
            l
        };
        let before = books(&self.r);
        let seq = self.r.seq();
        let e = self
            .try_apply(op.clone())
            .err()
            .unwrap_or_else(|| panic!("{op:?} passed"));
        assert_eq!(e.code(), code, "{op:?}: {e}");
        assert!(books(&self.r) == before, "{op:?} changed the ledger");
        assert_eq!(self.r.seq(), seq);
        e
    }
    fn available(&self, account: AccountId, unit: UnitId) -> u64 {
        self.r.ledger().holding(account, unit).registry_available_t
    }
    fn standing(&self, year: u16, account: AccountId) -> registry::cycle::Standing {
        self.r.ledger().cycle.standing(year, account)
    }
}

fn power(account: AccountId, fuel: Fuel, capacity_mw: u32) -> EntityRow {
    EntityRow {
        account,
        name: format!("Power {}", account.0),
        sector: Sector::Power,
        province: "Hebei".into(),
        differentiated: false,
        facilities: vec![(1, FacilityKind::Power { fuel, capacity_mw })],
        credit_code: String::new(),
    }
}

fn industry(account: AccountId, sector: Sector, differentiated: bool) -> EntityRow {
    EntityRow {
        account,
        name: format!("Plant {}", account.0),
        sector,
        province: "Shandong".into(),
        differentiated,
        credit_code: String::new(),
        facilities: vec![(
            1,
            FacilityKind::Industry {
                product_line: "line 1".into(),
                process: match sector {
                    Sector::Steel => Process::Ironmaking,
                    Sector::Cement => Process::ClinkerLine,
                    _ => Process::Electrolysis,
                },
            },
        )],
    }
}

/// A product line's year: its output and emissions, nothing special.
fn line_year(output_t: Decimal, emissions_t: Decimal) -> Activity {
    Activity::Industry {
        output_t,
        emissions_t,
        pfc_co2e_t: Decimal::ZERO,
        carbide_slag_rate: Decimal::ZERO,
        special: None,
    }
}

fn verified(rows: &[(AccountId, u64, u64)]) -> Vec<VerifiedRow> {
    rows.iter()
        .map(|&(account, co2_t, pfc_co2e_t)| VerifiedRow {
            account,
            co2_t,
            pfc_co2e_t,
        })
        .collect()
}

fn surrender(account: AccountId, unit: UnitId, quantity_t: u64) -> Op {
    Op::Surrender {
        account,
        retirement: RETIREMENT,
        unit,
        quantity_t,
        year: 2024,
    }
}

/// `registry/plans/<name>`. The directory comes from the environment cargo sets when it
/// runs the test (a binary built in another checkout sharing the build cache has that
/// checkout's path compiled in), falling back to the one compiled in.
fn plans_path(name: &str) -> String {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    format!("{dir}/plans/{name}")
}

fn plan_file(name: &str) -> Plan {
    let path = plans_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Plan::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_plan_files_are_the_plans_the_rules_were_computed_with() {
    assert_eq!(plan_file("2024.toml"), Plan::plan_2024());
    assert_eq!(plan_file("2025-draft.toml"), Plan::draft_2025());
    // to_toml reads back to the same plan.
    for plan in [Plan::plan_2024(), Plan::draft_2025()] {
        assert_eq!(Plan::from_toml(&plan.to_toml()), Ok(plan));
    }
    // Errors name the key at fault.
    let text = std::fs::read_to_string(plans_path("2024.toml")).unwrap_or_else(|e| panic!("{e}"));
    let bad = text.replace("penalty_multiple = \"5\"", "penalty_multiple = \"12\"");
    assert_eq!(
        Plan::from_toml(&bad).map_err(|e| e.key),
        Err("penalty_multiple".into())
    );
    let bad = text.replace("coal_large = \"0.7910\"", "coal_large = \"0.79x\"");
    assert_eq!(
        Plan::from_toml(&bad).map_err(|e| e.key),
        Err("power.benchmarks.coal_large".into())
    );
    let bad = text.replace("gas_top_up = true", "gas_top_up = true\nsurprise = 1");
    assert!(Plan::from_toml(&bad).is_err());
    let bad = text.replace("coal_large = \"0.7910\"", "coal_large = 0.7910");
    assert!(
        Plan::from_toml(&bad).is_err(),
        "a float coefficient is refused"
    );
}

#[test]
fn a_compliance_year_through_the_registry_journal_accounts_for_every_tonne() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = Book::open(dir.path());
    for (account, kind) in [
        (AUTHORITY, AccountType::NationalAuthority),
        (RETIREMENT, AccountType::Retirement),
        (MEMBER, AccountType::MemberFirm),
        (BANK, AccountType::Pledgee),
    ] {
        b.ok(Op::OpenAccount {
            account,
            kind,
            name: format!("account {}", account.0),
        });
    }
    for (unit, kind, vintage, project_id, registered) in [
        (U2024, UnitKind::Cea, 2024, 0, 0),
        (U2025, UnitKind::Cea, 2025, 0, 0),
        (CCER, UnitKind::Ccer, 2023, 7, 20_240_301),
    ] {
        b.ok(Op::CreateUnit {
            unit,
            def: UnitDef {
                kind,
                vintage,
                project_id,
                registered,
            },
        });
    }

    // Entities in bulk; a bad row names itself and changes nothing.
    let mut rows = vec![
        power(COAL, Fuel::Coal, 600),
        power(GAS, Fuel::Gas, 300),
        industry(CEMENT, Sector::Cement, false),
        industry(DIFF, Sector::Cement, true),
        industry(ALU, Sector::Aluminium, false),
    ];
    let mut bad = rows.clone();
    bad[3].facilities = vec![(
        1,
        FacilityKind::Power {
            fuel: Fuel::Coal,
            capacity_mw: 300,
        },
    )];
    match b.refused(Op::LoadEntities { rows: bad }, "INVALID_ROW") {
        RegistryError::InvalidRow { row, field, .. } => {
            assert_eq!((row, field), (3, "facility_kind"))
        }
        e => panic!("{e}"),
    }
    // A cement company's line named as ironmaking: a process of another sector.
    let mut bad = rows.clone();
    bad[2].facilities[0].1 = FacilityKind::Industry {
        product_line: "kiln 1".into(),
        process: Process::Ironmaking,
    };
    match b.refused(Op::LoadEntities { rows: bad }, "INVALID_ROW") {
        RegistryError::InvalidRow { row, field, .. } => assert_eq!((row, field), (2, "process")),
        e => panic!("{e}"),
    }
    rows[4].province = "Inner Mongolia".into();
    b.ok(Op::LoadEntities { rows });
    assert_eq!(
        b.r.ledger().accounts[&DIFF].kind,
        AccountType::CoveredEntity(Sector::Cement)
    );

    // Plans from their files; the same again changes nothing, other values are refused.
    let plan = plan_file("2024.toml");
    b.ok(Op::RegisterPlan {
        plan: Box::new(plan.clone()),
    });
    let head = b.r.seq();
    let again = b.ok(Op::RegisterPlan {
        plan: Box::new(plan.clone()),
    });
    assert_eq!((again.outcome, again.seq), (Outcome::Unchanged, head));
    let mut other = plan.clone();
    other.penalty_multiple = dec!(6);
    b.refused(
        Op::RegisterPlan {
            plan: Box::new(other),
        },
        "PLAN_VERSION_EXISTS",
    );

    // 2023 verified emissions (the pre-allocation base); the aluminium plant is new.
    b.ok(Op::RecordVerified {
        year: 2023,
        rows: verified(&[
            (COAL, 2_500_000, 0),
            (GAS, 380_000, 0),
            (CEMENT, 1_000_000, 0),
            (DIFF, 400_000, 0),
        ]),
    });
    let run =
        |op: fn(u16, String, UnitId, AccountId) -> Op| op(2024, "2024.1".into(), U2024, AUTHORITY);
    let pre = |year, plan_version, unit, authority| Op::PreAllocate {
        year,
        plan_version,
        unit,
        authority,
    };
    let true_up = |year, plan_version, unit, authority| Op::TrueUp {
        year,
        plan_version,
        unit,
        authority,
    };
    b.refused(
        Op::PreAllocate {
            year: 2024,
            plan_version: "2024.9".into(),
            unit: U2024,
            authority: AUTHORITY,
        },
        "PLAN_NOT_FOUND",
    );
    b.refused(
        Op::PreAllocate {
            year: 2024,
            plan_version: "2024.1".into(),
            unit: U2025,
            authority: AUTHORITY,
        },
        "INVALID_FIELD",
    );
    b.ok(run(pre));
    // 2024 pre-allocates power only, 70%: 1,750,000 / 266,000 delivered. Steel, cement and
    // aluminium get nothing before their 2024 emissions are verified (allocation = verified).
    assert_eq!(b.available(COAL, U2024), 1_750_000);
    assert_eq!(b.available(GAS, U2024), 266_000);
    assert_eq!(b.available(CEMENT, U2024), 0);
    assert_eq!(b.available(DIFF, U2024), 0);
    assert_eq!(b.available(AUTHORITY, U2024), 0);
    assert_eq!(b.standing(2024, DIFF).held_t, 0);
    assert!(b.standing(2024, CEMENT).pre_done);
    assert_eq!(b.r.ledger().issued[&U2024], 2_016_000);
    let head = b.r.seq();
    assert_eq!(b.ok(run(pre)).outcome, Outcome::Unchanged);
    assert_eq!(b.r.seq(), head, "a re-run writes no entry");
    // Pre-allocated units of the current year may be pledged (a loan against them before
    // the true-up); released, they are available again.
    let pledged = b.ok(Op::PledgeRegister {
        pledgor: COAL,
        pledgee: BANK,
        unit: U2024,
        quantity_t: 500_000,
        secured_fen: 3_000_000_000,
    });
    let Outcome::Pledged { pledge } = pledged.outcome else {
        panic!("{pledged:?}")
    };
    assert_eq!(b.available(COAL, U2024), 1_250_000);
    b.ok(Op::PledgeRelease { pledge });
    assert_eq!(b.available(COAL, U2024), 1_750_000);

    // Activity and verification of 2024.
    let power_activity =
        |account, electricity_mwh, heat_gj, load_factor, emissions_t| ActivityRow {
            account,
            facility: 1,
            activity: Activity::Power {
                electricity_mwh,
                heat_gj,
                load_factor,
                emissions_t,
            },
        };
    let output = |account, output_t| ActivityRow {
        account,
        facility: 1,
        activity: line_year(output_t, Decimal::ZERO),
    };
    let mut activity = vec![
        power_activity(COAL, dec!(3000000), dec!(100000), dec!(0.55), dec!(2700000)),
        power_activity(GAS, dec!(1000000), dec!(0), dec!(0.5), dec!(400000)),
        output(CEMENT, dec!(1150000)),
        output(DIFF, dec!(500000)),
        output(ALU, dec!(40000)),
    ];
    activity[1].activity = line_year(dec!(1), Decimal::ZERO);
    match b.refused(
        Op::LoadActivity {
            year: 2024,
            rows: activity.clone(),
        },
        "INVALID_ROW",
    ) {
        RegistryError::InvalidRow { row, field, .. } => {
            assert_eq!((row, field), (1, "electricity_mwh"))
        }
        e => panic!("{e}"),
    }
    activity[1] = power_activity(GAS, dec!(1000000), dec!(0), dec!(0.5), dec!(400000));
    // Plausibility: the 600 MW coal unit can make at most 600 x 8,784 h = 5,270,400 MWh.
    let mut implausible = activity.clone();
    implausible[0] = power_activity(COAL, dec!(5270401), dec!(0), dec!(0.55), dec!(2700000));
    match b.refused(
        Op::LoadActivity {
            year: 2024,
            rows: implausible,
        },
        "INVALID_ROW",
    ) {
        RegistryError::InvalidRow { row, field, .. } => {
            assert_eq!((row, field), (0, "electricity_mwh"))
        }
        e => panic!("{e}"),
    }
    // What a process does not have is refused, naming the field: PFCs on a clinker line,
    // a hydrogen-rich blast furnace declared for a clinker line.
    for (activity_of_cement, field) in [
        (
            Activity::Industry {
                output_t: dec!(1150000),
                emissions_t: Decimal::ZERO,
                pfc_co2e_t: dec!(5),
                carbide_slag_rate: Decimal::ZERO,
                special: None,
            },
            "pfc_co2e_t",
        ),
        (
            Activity::Industry {
                output_t: dec!(1150000),
                emissions_t: Decimal::ZERO,
                pfc_co2e_t: Decimal::ZERO,
                carbide_slag_rate: Decimal::ZERO,
                special: Some(SpecialCase::HydrogenRichBlastFurnace),
            },
            "special_case",
        ),
    ] {
        let mut rows = activity.clone();
        rows[2].activity = activity_of_cement;
        match b.refused(Op::LoadActivity { year: 2024, rows }, "INVALID_ROW") {
            RegistryError::InvalidRow { row, field: f, .. } => assert_eq!((row, f), (2, field)),
            e => panic!("{e}"),
        }
    }
    b.ok(Op::LoadActivity {
        year: 2024,
        rows: activity,
    });
    b.refused(
        Op::RecordVerified {
            year: 2024,
            rows: verified(&[(CEMENT, 1_000_000, 5)]),
        },
        "INVALID_ROW",
    );
    b.ok(Op::RecordVerified {
        year: 2024,
        rows: verified(&[
            (COAL, 2_700_000, 0),
            (GAS, 400_000, 0),
            (CEMENT, 1_000_000, 0),
            (DIFF, 420_000, 0),
            (ALU, 500_000, 50_000),
        ]),
    });

    // True-up: coal 2,566,724 (hand-computed in tests/compliance.rs), gas topped up to its
    // verified 400,000, industry grandfathered, aluminium's PFCs included.
    b.ok(run(true_up));
    let finals = [
        (COAL, 2_566_724u64),
        (GAS, 400_000),
        (CEMENT, 1_000_000),
        (DIFF, 420_000),
        (ALU, 550_000),
    ];
    for (account, final_t) in finals {
        let s = b.standing(2024, account);
        assert_eq!(
            (s.final_t, s.credited_t()),
            (Some(final_t), final_t),
            "{account:?}"
        );
        assert_eq!(s.plan_version, "2024.1");
    }
    assert!(b.standing(2024, COAL).explanation.contains("1.077284"));
    assert_eq!(b.available(COAL, U2024), 2_566_724);
    assert_eq!(b.available(AUTHORITY, U2024), 420_000);
    // Issued = the finals: 2,566,724 + 400,000 + 1,000,000 + 420,000 + 550,000.
    assert_eq!(b.r.ledger().issued[&U2024], 2_016_000 + 2_920_724);
    let head = b.r.seq();
    assert_eq!(b.ok(run(true_up)).outcome, Outcome::Unchanged);
    assert_eq!(b.r.seq(), head, "the same plan and data change nothing");

    // Trading moves.
    for (from, q) in [(COAL, 100_000u64), (CEMENT, 50_000)] {
        b.ok(Op::Transfer {
            from,
            to: MEMBER,
            unit: U2024,
            quantity_t: q,
        });
    }

    // Corrections after allocation recompute: cement down (claw-back), coal up (its floor
    // 0.8 x 3,300,000 = 2,640,000 now beats the benchmark: top-up 73,276).
    b.ok(Op::RecordVerified {
        year: 2024,
        rows: verified(&[(CEMENT, 940_000, 0), (COAL, 3_300_000, 0)]),
    });
    let cement = b.standing(2024, CEMENT);
    assert_eq!((cement.final_t, cement.clawed_t), (Some(940_000), 60_000));
    assert_eq!(b.available(CEMENT, U2024), 1_000_000 - 50_000 - 60_000);
    assert_eq!(b.standing(2024, COAL).final_t, Some(2_640_000));
    assert_eq!(b.available(COAL, U2024), 2_640_000 - 100_000);

    // Surrender under the plan's rules.
    b.refused(surrender(ALU, U2025, 1), "VINTAGE_AFTER_YEAR");
    b.refused(surrender(MEMBER, U2024, 1), "NOT_COVERED");
    b.ok(Op::Issue {
        authority: AUTHORITY,
        unit: CCER,
        quantity_t: 40_000,
    });
    b.ok(Op::Transfer {
        from: AUTHORITY,
        to: ALU,
        unit: CCER,
        quantity_t: 40_000,
    });
    // 5% of 550,000 = 27,500 t of CCER at most.
    b.refused(surrender(ALU, CCER, 27_501), "CCER_LIMIT_EXCEEDED");
    b.ok(surrender(ALU, CCER, 27_500));
    b.refused(surrender(ALU, CCER, 1), "CCER_LIMIT_EXCEEDED");
    b.ok(surrender(ALU, U2024, 522_500));
    // Frozen units cannot be surrendered.
    b.ok(Op::Freeze {
        account: GAS,
        unit: U2024,
        quantity_t: 10_000,
        order: 77,
    });
    b.refused(surrender(GAS, U2024, 400_000), "INSUFFICIENT_AVAILABLE");
    b.ok(Op::Unfreeze {
        account: GAS,
        unit: U2024,
        order: 77,
    });
    b.ok(surrender(GAS, U2024, 400_000));
    b.ok(surrender(COAL, U2024, 2_540_000));
    b.ok(surrender(CEMENT, U2024, 890_000));
    let status = |b: &Book, a| {
        let c = b.standing(2024, a).compliance();
        (c.shortfall_t(), c.status())
    };
    assert_eq!(status(&b, ALU), (0, StatusCode::Compliant));
    assert_eq!(status(&b, COAL), (760_000, StatusCode::Short));
    assert_eq!(status(&b, DIFF), (420_000, StatusCode::Short));

    // Year close at 85.00 yuan: forced surrender of what the authority holds for the
    // differentiated plant; penalties 5 x 85.00 x shortfall; shortfalls carried.
    let close_2024 = |average_price_fen, date, forced_reason: Option<&str>| Op::CloseYear {
        year: 2024,
        average_price_fen,
        retirement: RETIREMENT,
        date,
        forced_reason: forced_reason.map(str::to_owned),
    };
    b.refused(close_2024(0, 20_260_105, None), "INVALID_FIELD");
    // The plan's deadline is 2025-12-31, the last day to surrender: closing on it is
    // refused (a blank reason does not force it), on the next working day it goes through.
    b.refused(close_2024(8_500, 20_251_231, None), "BEFORE_DEADLINE");
    b.refused(close_2024(8_500, 20_251_231, Some(" \t")), "INVALID_FIELD");
    b.ok(close_2024(8_500, 20_260_105, None));
    let close = b.r.ledger().cycle.years[&2024].closed.clone();
    assert_eq!(
        close.map(|c| (c.date, c.forced_reason)),
        Some((20_260_105, None))
    );
    let closing = |b: &Book, a| {
        b.standing(2024, a)
            .closing
            .unwrap_or_else(|| panic!("closed"))
    };
    let diff = closing(&b, DIFF);
    assert_eq!(
        (diff.forced_t, diff.released_t, diff.status),
        (420_000, 0, StatusCode::Compliant)
    );
    let coal = closing(&b, COAL);
    assert_eq!(
        (coal.shortfall_t, coal.penalty_fen, coal.status),
        (760_000, 760_000 * 5 * 8_500, StatusCode::Short)
    );
    assert_eq!(closing(&b, CEMENT).penalty_fen, 50_000 * 5 * 8_500);
    assert_eq!(b.r.ledger().cycle.deductions[&COAL], 760_000);
    assert_eq!(b.r.ledger().cycle.deductions[&CEMENT], 50_000);
    b.refused(surrender(ALU, U2024, 1), "YEAR_CLOSED");
    b.refused(
        Op::RecordVerified {
            year: 2024,
            rows: verified(&[(ALU, 1, 0)]),
        },
        "YEAR_CLOSED",
    );

    // The reports, one line per entity, from the books (a name with a comma is quoted).
    let names = std::collections::BTreeMap::from([
        (COAL, "Coal Power, Tangshan".to_string()),
        (CEMENT, "Cement One".to_string()),
    ]);
    let status_csv = b.r.ledger().cycle.status_csv(2024, &names);
    // Coal: obligation 3,300,000 (corrected), surrendered 2,540,000, short 760,000;
    // penalty 760,000 x 5 x 8,500 fen = 32,300,000,000 fen; the shortfall is owed next year.
    let line = "2024,10,\"Coal Power, Tangshan\",power,Hebei,3300000,2540000,0,760000,SHORT,true,0,32300000000,760000";
    assert!(status_csv.lines().any(|l| l == line), "{status_csv}");
    let line = "2024,40,,aluminium,Inner Mongolia,550000,522500,27500,0,COMPLIANT,true,0,0,0";
    assert!(status_csv.lines().any(|l| l == line), "{status_csv}");
    let allocation_csv = b.r.ledger().cycle.allocation_csv(2024, &names);
    let row = |account: AccountId| -> Vec<String> {
        let line = allocation_csv
            .lines()
            .find(|l| l.starts_with(&format!("2024,{},", account.0)))
            .unwrap_or_else(|| panic!("{allocation_csv}"));
        let fields: Vec<&str> = line.split(',').collect();
        // The name of COAL holds a comma: rejoin its two halves.
        let mut out: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        if account == COAL {
            let name = format!("{},{}", out[2], out[3]);
            out.splice(2..4, [name]);
        }
        out
    };
    // Coal: delivered 1,750,000 pre + 816,724 true-up + 73,276 correction = 2,640,000.
    assert_eq!(
        row(COAL)[..11].join("|") + "|" + &row(COAL)[12..18].join("|"),
        "2024|10|\"Coal Power, Tangshan\"|power|Hebei|false|3300000|0|3000000|100000|2024.1\
         |1750000|2640000|2640000|0|0|0"
    );
    // Cement: nothing pre-allocated, 1,000,000 delivered at the true-up; 60,000 clawed
    // back after the correction.
    assert_eq!(
        row(CEMENT)[..11].join("|") + "|" + &row(CEMENT)[12..18].join("|"),
        "2024|21|Cement One|cement|Shandong|false|940000|1150000|0|0|2024.1\
         |0|940000|1000000|0|0|60000"
    );

    // Every tonne of 2024 accounted for.
    let issued = b.r.ledger().issued[&U2024];
    assert_eq!(issued, 2_016_000 + 2_920_724 + 73_276);
    let retired = b.available(RETIREMENT, U2024);
    assert_eq!(retired, 522_500 + 400_000 + 2_540_000 + 890_000 + 420_000);
    assert_eq!(b.available(AUTHORITY, U2024), 60_000, "the claw-back");
    assert_eq!(b.available(MEMBER, U2024), 150_000);
    assert_eq!(b.available(ALU, U2024), 27_500);
    assert_eq!(issued, retired + 60_000 + 150_000 + 27_500);

    // Next year: pre-allocation on 2024 verified emissions by the 2025 plan's per-sector
    // shares (power 50%: 3,300,000 -> 1,650,000; industry 70%: cement 940,000 -> 658,000,
    // the differentiated plant 420,000 -> 294,000 held), deductions netted.
    b.ok(Op::RegisterPlan {
        plan: Box::new(plan_file("2025-draft.toml")),
    });
    b.ok(Op::PreAllocate {
        year: 2025,
        plan_version: "2025.draft".into(),
        unit: U2025,
        authority: AUTHORITY,
    });
    assert_eq!(b.available(COAL, U2025), 1_650_000 - 760_000);
    assert_eq!(b.available(CEMENT, U2025), 658_000 - 50_000);
    assert_eq!(b.standing(2025, COAL).deducted_t, 760_000);
    assert!(b.r.ledger().cycle.deductions.is_empty());
    assert_eq!(b.standing(2025, DIFF).held_t, 294_000);

    // Reopened from disk: the same books; the journal alone rebuilds them.
    let mut ledger = b.r.ledger().clone();
    ledger.dirty = Default::default();
    drop(b);
    let r = Registry::open(dir.path(), RegistryOptions { sync: false })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.ledger() == &ledger, "reloaded books differ");
    r.verify_journal().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_intensity_true_up_balances_each_sector_and_names_missing_output() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = Book::open(dir.path());
    b.ok(Op::OpenAccount {
        account: AUTHORITY,
        kind: AccountType::NationalAuthority,
        name: "ministry".into(),
    });
    b.ok(Op::CreateUnit {
        unit: U2025,
        def: UnitDef {
            kind: UnitKind::Cea,
            vintage: 2025,
            project_id: 0,
            registered: 0,
        },
    });
    let ids = [101u64, 102, 103, 104];
    b.ok(Op::LoadEntities {
        rows: ids
            .iter()
            .map(|id| industry(AccountId(*id), Sector::Steel, false))
            .collect(),
    });
    b.ok(Op::RegisterPlan {
        plan: Box::new(Plan::draft_2025()),
    });
    let emissions = [1_900_000u64, 2_100_000, 1_500_000, 2_600_000];
    b.ok(Op::RecordVerified {
        year: 2025,
        rows: ids
            .iter()
            .zip(emissions)
            .map(|(id, e)| VerifiedRow {
                account: AccountId(*id),
                co2_t: e,
                pfc_co2e_t: 0,
            })
            .collect(),
    });
    let true_up = Op::TrueUp {
        year: 2025,
        plan_version: "2025.draft".into(),
        unit: U2025,
        authority: AUTHORITY,
    };
    // No output for the last plant: refused, naming it.
    b.ok(Op::LoadActivity {
        year: 2025,
        rows: [
            (101u64, dec!(1000000)),
            (102, dec!(1000000)),
            (103, dec!(1000000)),
        ]
        .iter()
        .zip(emissions)
        .map(|(&(id, output_t), e)| ActivityRow {
            account: AccountId(id),
            facility: 1,
            // The plant is one blast furnace: its emissions over its hot metal.
            activity: line_year(output_t, Decimal::from(e)),
        })
        .collect(),
    });
    let e = b.refused(true_up.clone(), "ACTIVITY_MISSING");
    assert!(e.to_string().contains("104"), "{e}");
    b.ok(Op::LoadActivity {
        year: 2025,
        rows: vec![ActivityRow {
            account: AccountId(104),
            facility: 1,
            activity: line_year(dec!(1000000), Decimal::from(emissions[3])),
        }],
    });
    b.ok(true_up);
    let total: u64 = ids
        .iter()
        .map(|id| b.standing(2025, AccountId(*id)).final_t.unwrap_or(0))
        .sum();
    let verified_total: u64 = emissions.iter().sum();
    // Balanced before flooring to within the plan's 0.5 t; flooring loses under 1 t each.
    assert!(
        total <= verified_total && verified_total - total < ids.len() as u64,
        "{total}"
    );
    // The cleaner plant gains, the dirtier loses.
    assert!(b.standing(2025, AccountId(103)).final_t > Some(1_500_000));
    assert!(b.standing(2025, AccountId(104)).final_t < Some(2_600_000));
    let text = b.standing(2025, AccountId(101)).explanation;
    assert!(
        text.contains("E_ironmaking 1900000") && text.contains("BP = "),
        "{text}"
    );
}

#[test]
fn units_held_for_an_entity_no_longer_differentiated_are_used_at_the_close() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = Book::open(dir.path());
    for (account, kind) in [
        (AUTHORITY, AccountType::NationalAuthority),
        (RETIREMENT, AccountType::Retirement),
    ] {
        b.ok(Op::OpenAccount {
            account,
            kind,
            name: "x".into(),
        });
    }
    b.ok(Op::CreateUnit {
        unit: U2024,
        def: UnitDef {
            kind: UnitKind::Cea,
            vintage: 2024,
            project_id: 0,
            registered: 0,
        },
    });
    b.ok(Op::RegisterPlan {
        plan: Box::new(Plan::plan_2024()),
    });
    // A differentiated power plant: its 2024 pre-allocation (70% of 400,000) is held.
    let plant = |differentiated| EntityRow {
        differentiated,
        ..power(DIFF, Fuel::Coal, 600)
    };
    b.ok(Op::LoadEntities {
        rows: vec![plant(true)],
    });
    b.ok(Op::RecordVerified {
        year: 2023,
        rows: verified(&[(DIFF, 400_000, 0)]),
    });
    b.ok(Op::PreAllocate {
        year: 2024,
        plan_version: "2024.1".into(),
        unit: U2024,
        authority: AUTHORITY,
    });
    assert_eq!(b.standing(2024, DIFF).held_t, 280_000);
    // No longer differentiated; verified 300,000 t; never trued up.
    b.ok(Op::LoadEntities {
        rows: vec![plant(false)],
    });
    b.ok(Op::RecordVerified {
        year: 2024,
        rows: verified(&[(DIFF, 300_000, 0)]),
    });
    // Closed early by the authority (2025-06-30, before the 2025-12-31 deadline), with its
    // reason recorded.
    b.ok(Op::CloseYear {
        year: 2024,
        average_price_fen: 8_000,
        retirement: RETIREMENT,
        date: 20_250_630,
        forced_reason: Some("plant closed; the ministry settles its year now".into()),
    });
    let close = b.r.ledger().cycle.years[&2024].closed.clone();
    assert_eq!(
        close.map(|c| (c.date, c.forced_reason)),
        Some((
            20_250_630,
            Some("plant closed; the ministry settles its year now".into())
        ))
    );
    let c = b
        .standing(2024, DIFF)
        .closing
        .unwrap_or_else(|| panic!("closed"));
    // The 280,000 t held cover 280,000 t of the obligation; 20,000 t short.
    assert_eq!(
        (c.forced_t, c.released_t, c.shortfall_t),
        (280_000, 0, 20_000)
    );
    assert_eq!(b.available(AUTHORITY, U2024), 0);
    assert_eq!(b.available(RETIREMENT, U2024), 280_000);
}

#[test]
fn one_account_per_unified_social_credit_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = Book::open(dir.path());
    // 91370100MA0000001 weighs 9x1 + 1x3 + 3x9 + 7x27 + 1x26 + 21(M)x20 + 10(A)x29 + 1x28
    // = 992 = 32 x 31, so its check is 31 - 0 = 31, written '0'. 91370100MA0000002 weighs
    // 992 - 28 + 56 = 1020, 1020 mod 31 = 28, check 3.
    let (first, second) = ("91370100MA00000010", "91370100MA00000023");
    let with_code = |account, code: &str| EntityRow {
        credit_code: code.into(),
        ..industry(account, Sector::Cement, false)
    };
    b.ok(Op::LoadEntities {
        rows: vec![with_code(CEMENT, first)],
    });
    // The same legal entity asking for a second account: refused, naming who holds it.
    let e = b.refused(
        Op::LoadEntities {
            rows: vec![with_code(AccountId(22), first)],
        },
        "CREDIT_CODE_TAKEN",
    );
    assert!(
        matches!(e, RegistryError::CreditCodeTaken { row: 0, ref code, holder: 21 } if code == first),
        "{e:?}"
    );
    // Twice in one load: the second row is the one refused.
    let e = b.refused(
        Op::LoadEntities {
            rows: vec![
                with_code(AccountId(22), second),
                with_code(AccountId(23), second),
            ],
        },
        "CREDIT_CODE_TAKEN",
    );
    assert!(
        matches!(
            e,
            RegistryError::CreditCodeTaken {
                row: 1,
                holder: 22,
                ..
            }
        ),
        "{e:?}"
    );
    // A wrong check character, a letter outside the alphabet, a short code: INVALID_ROW.
    for bad in [
        "91370100MA00000011",
        "91370100MA0000001O",
        "91370100MA000001",
    ] {
        b.refused(
            Op::LoadEntities {
                rows: vec![with_code(AccountId(22), bad)],
            },
            "INVALID_ROW",
        );
    }
    // A reload of the holder without a code keeps its code; with its own code it is fine.
    b.ok(Op::LoadEntities {
        rows: vec![with_code(CEMENT, "")],
    });
    assert_eq!(b.r.ledger().cycle.entities[&CEMENT].credit_code, first);
    b.ok(Op::LoadEntities {
        rows: vec![with_code(CEMENT, first), with_code(AccountId(22), second)],
    });
    assert_eq!(
        b.r.ledger().cycle.entities[&AccountId(22)].credit_code,
        second
    );
    // The code survives a restart (the entity record keeps it).
    drop(b);
    let b = Book::open(dir.path());
    assert_eq!(b.r.ledger().cycle.entities[&CEMENT].credit_code, first);
}
