//! Builders for the accounting tests: the checked-in factors files, plans and months.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::str::FromStr;

use mrv::factors::{Factors, Sector};
use mrv::month::{Month, Reading, Role, Row};
use mrv::plan::{Dqcp, Facility, Meter, Param, ProcessKind, Scope, Subject};
use rust_decimal::Decimal;

pub const STEEL: &str = include_str!("../../../registry/factors/steel-2024.toml");
pub const CEMENT: &str = include_str!("../../../registry/factors/cement-2024.toml");
pub const ALUMINIUM: &str = include_str!("../../../registry/factors/aluminium-2024.toml");

pub fn factors(text: &str) -> Factors {
    Factors::from_toml(text).expect("the checked-in factors file is valid")
}

pub fn d(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal")
}

pub fn facility(id: u32, kind: ProcessKind, clinker_type: Option<&str>) -> Facility {
    Facility {
        id,
        name: format!("{} {id}", kind.name()),
        kind,
        clinker_type: clinker_type.map(str::to_string),
    }
}

pub fn plan(sector: Sector, facilities: Vec<Facility>, measured: &[(Param, Subject)]) -> Dqcp {
    Dqcp {
        year: 2025,
        sector,
        facilities,
        meters: vec![Meter {
            id: "WB-01".into(),
            measures: "coal weighbridge".into(),
            calibrated: 20250115,
        }],
        measured: measured.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

pub const E: Scope = Scope::Enterprise;

pub fn at(id: u32) -> Scope {
    Scope::Facility(id)
}

pub fn row(scope: Scope, role: Role, item: &str, quantity: &str) -> Row {
    Row {
        scope,
        role,
        item: item.to_string(),
        quantity: d(quantity),
    }
}

pub fn ncv(fuel: &str, value: &str) -> Reading {
    Reading {
        param: Param::Ncv,
        subject: Subject::Fuel(fuel.to_string()),
        value: d(value),
        evidence: format!("CNAS-LAB {fuel}"),
    }
}

pub fn month(m: u8, rows: Vec<Row>, readings: Vec<Reading>) -> Month {
    Month {
        year: 2025,
        month: m,
        rows,
        readings,
        stoppages: Vec::new(),
    }
}
