//! A steel works for the emissions and verification tests: its entity row, monitoring plan,
//! months of data and their evidence (figures worked by hand in the tests that use them).

use std::collections::BTreeSet;
use std::str::FromStr;

use mrv::month::{Month, Reading, Role, Row};
use mrv::plan::{Dqcp, Facility, Meter, Param, ProcessKind, Scope, Subject};
use registry::compliance::Plan;
use registry::cycle::{EntityRow, FacilityKind};
use registry::emissions::Evidence;
use registry::industry::Process;
use registry::model::Sector;
use registry::tx::Op;
use rust_decimal::Decimal;

use super::*;

pub const FACTORS: &str = include_str!("../../factors/steel-2024.toml");

pub fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

pub fn works() -> EntityRow {
    let line = |name: &str, process| FacilityKind::Industry {
        product_line: name.into(),
        process,
    };
    EntityRow {
        account: STEEL,
        name: "Hebei Iron & Steel".into(),
        sector: Sector::Steel,
        province: "Hebei".into(),
        differentiated: false,
        credit_code: String::new(),
        facilities: vec![
            (2, line("sinter plant", Process::Sintering)),
            (3, line("BF 1", Process::Ironmaking)),
        ],
    }
}

pub fn monitoring_plan() -> Dqcp {
    let facility = |id, kind| Facility {
        id,
        name: format!("facility {id}"),
        kind,
        clinker_type: None,
    };
    Dqcp {
        year: 2025,
        sector: mrv::factors::Sector::Steel,
        facilities: vec![
            facility(2, ProcessKind::Sintering),
            facility(3, ProcessKind::Ironmaking),
        ],
        meters: vec![Meter {
            id: "WB-01".into(),
            measures: "coal weighbridge".into(),
            calibrated: 20250110,
        }],
        measured: BTreeSet::from([(Param::Ncv, Subject::Fuel("bituminous".into()))]),
    }
}

pub fn month(m: u8, limestone: &str) -> Month {
    let row = |scope, role, item: &str, q: &str| Row {
        scope,
        role,
        item: item.into(),
        quantity: d(q),
    };
    use Role::{Consumed as C, Produced as P};
    let (e, sinter, iron) = (Scope::Enterprise, Scope::Facility(2), Scope::Facility(3));
    Month {
        year: 2025,
        month: m,
        rows: vec![
            row(e, C, "coke", "40000.00"),
            row(e, C, "bituminous", "10000.00"),
            row(e, C, "limestone", limestone),
            row(e, P, "crude_steel", "100000.00"),
            row(sinter, C, "coke", "5000.00"),
            row(sinter, P, "sinter", "120000.00"),
            row(iron, C, "coke", "30000.00"),
            row(iron, C, "bituminous", "10000.00"),
            row(iron, P, "bfg", "12000.00"),
            row(iron, P, "hot_metal", "90000.00"),
        ],
        readings: vec![Reading {
            param: Param::Ncv,
            subject: Subject::Fuel("bituminous".into()),
            value: d("24.000"),
            evidence: format!("CNAS L1234 2025-{m:02}"),
        }],
        stoppages: vec![],
    }
}

pub fn evidence(m: u8) -> Vec<Evidence> {
    vec![Evidence {
        kind: "fuel ledger".into(),
        name: format!("fuel-ledger-2025-{m:02}.pdf"),
        sha256: [m; 32],
        bytes: 183_211,
    }]
}

pub fn deposit(m: u8, date: u32, correction: bool, limestone: &str) -> Op {
    Op::DepositMonth {
        account: STEEL,
        month: Box::new(month(m, limestone)),
        evidence: evidence(m),
        correction,
        date,
    }
}

/// The 10th of the month after `m` (on time; December's is in 2026).
pub fn on_time(m: u8) -> u32 {
    if m == 12 {
        20260110
    } else {
        20250010 + u32::from(m + 1) * 100
    }
}

pub fn set_up() -> Fixture {
    let mut f = Fixture::new();
    let power = EntityRow {
        account: POWER,
        name: "Datang Power".into(),
        sector: Sector::Power,
        province: "Hebei".into(),
        differentiated: false,
        credit_code: String::new(),
        facilities: vec![(
            1,
            FacilityKind::Power {
                fuel: registry::cycle::Fuel::Coal,
                capacity_mw: 600,
            },
        )],
    };
    f.ok(Op::LoadEntities {
        rows: vec![works(), power],
    });
    f.ok(Op::RegisterPlan {
        plan: Box::new(Plan::draft_2025()),
    });
    f
}
