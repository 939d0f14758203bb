//! The steel works the end-to-end emissions and verification tests share: its entity row
//! (Hebei, a sinter plant and a blast furnace), its monitoring plan, and a month of its
//! data (the same every month), as a works' energy manager would send them.

use proto::v1 as pb;

use crate::E1;

/// 02:00 UTC (10:00 Beijing) on the 10th of the month after `m` of 2025, seconds.
pub fn tenth_after(m: u32) -> u64 {
    // Days from 1970-01-01 to 2025-01-10: 20,098.
    const JAN_10_2025_DAYS: u64 = 20_098;
    let days_in = [31u64, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days: u64 = days_in[..m as usize].iter().sum();
    (JAN_10_2025_DAYS + days) * 86_400 + 2 * 3_600
}

pub fn steel_works() -> pb::EntityRow {
    let line = |id, name: &str, process: pb::IndustrialProcess| pb::Facility {
        facility_id: id,
        kind: pb::FacilityKind::ProductLine as i32,
        fuel: 0,
        capacity_mw: 0,
        product_line: name.into(),
        process: process as i32,
    };
    pb::EntityRow {
        account_id: E1,
        name: "Hebei Iron & Steel".into(),
        sector: pb::Sector::Steel as i32,
        province: "Hebei".into(),
        differentiated: false,
        facilities: vec![
            line(2, "sinter plant", pb::IndustrialProcess::Sintering),
            line(3, "BF 1", pb::IndustrialProcess::Ironmaking),
        ],
        credit_code: String::new(),
    }
}

pub fn monitoring_plan() -> pb::SetMonitoringPlanRequest {
    let facility = |id, kind: &str| pb::MonitoredFacility {
        id,
        name: format!("facility {id}"),
        kind: kind.into(),
        clinker_type: String::new(),
    };
    pb::SetMonitoringPlanRequest {
        idempotency_key: "plan-2025".into(),
        account_id: E1,
        year: 2025,
        facilities: vec![facility(2, "sintering"), facility(3, "ironmaking")],
        meters: vec![pb::Meter {
            id: "WB-01".into(),
            measures: "coal weighbridge".into(),
            calibrated: 20250105,
        }],
        measured: vec![pb::MeasuredParameter {
            parameter: "ncv".into(),
            fuel: "bituminous".into(),
            facility_id: 0,
        }],
    }
}

pub fn month(m: u32, account_id: u64) -> pb::DepositMonthRequest {
    let row = |facility_id, role: &str, item: &str, quantity: &str| pb::EmissionsRow {
        facility_id,
        role: role.into(),
        item: item.into(),
        quantity: quantity.into(),
    };
    pb::DepositMonthRequest {
        idempotency_key: format!("month-{m}"),
        account_id,
        year: 2025,
        month: m,
        rows: vec![
            row(0, "consumed", "coke", "40000.00"),
            row(0, "consumed", "bituminous", "10000.00"),
            row(0, "consumed", "limestone", "5000.00"),
            row(0, "produced", "crude_steel", "100000.00"),
            row(2, "consumed", "coke", "5000.00"),
            row(2, "produced", "sinter", "120000.00"),
            row(3, "consumed", "coke", "30000.00"),
            row(3, "consumed", "bituminous", "10000.00"),
            row(3, "produced", "bfg", "12000.00"),
            row(3, "produced", "hot_metal", "90000.00"),
        ],
        readings: vec![pb::ParameterReading {
            parameter: "ncv".into(),
            fuel: "bituminous".into(),
            facility_id: 0,
            value: "24.000".into(),
            evidence: format!("CNAS L1234 2025-{m:02}"),
        }],
        stoppages: vec![],
        evidence: vec![pb::EvidenceDocument {
            kind: "fuel ledger".into(),
            name: format!("fuel-ledger-2025-{m:02}.pdf"),
            sha256: vec![m as u8; 32],
            size_bytes: 183_211,
        }],
        correction: false,
    }
}
