//! Wire <-> `mrv` conversions of the EmissionsService: every field validated on receipt,
//! errors naming the request's field (`rows[3].quantity`), codes checked against the names
//! the accounting uses.

use std::collections::BTreeSet;
use std::str::FromStr;

use mrv::factors::Sector;
use mrv::month::{Month, Reading, Role, Row, Stoppage};
use mrv::plan::{Dqcp, Facility, Meter, Param, ProcessKind, Scope, Subject};
use mrv::report::Report;
use proto::v1 as pb;
use registry::emissions::{Deposit, Evidence, Submission};
use rust_decimal::Decimal;

use crate::error::ApiError;

/// Longest code or name accepted in a field, bytes (the accounting bounds them further).
const TEXT_BYTES_MAX: usize = 256;

fn text(value: &str, field: &str) -> Result<String, ApiError> {
    if value.len() > TEXT_BYTES_MAX {
        return Err(ApiError::field(
            field,
            format!("at most {TEXT_BYTES_MAX} bytes"),
        ));
    }
    Ok(value.to_string())
}

/// A decimal string; exponents and floats' spellings are refused.
pub fn decimal(value: &str, field: &str) -> Result<Decimal, ApiError> {
    let plain = !value.is_empty()
        && value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    match Decimal::from_str(value) {
        Ok(d) if plain => Ok(d),
        _ => Err(ApiError::field(
            field,
            format!("{value:?} is not a decimal number"),
        )),
    }
}

pub fn month_number(v: u32) -> Result<u8, ApiError> {
    match u8::try_from(v) {
        Ok(m @ 1..=12) => Ok(m),
        _ => Err(ApiError::field("month", "must be 1 to 12")),
    }
}

fn scope(facility_id: u32) -> Scope {
    match facility_id {
        0 => Scope::Enterprise,
        id => Scope::Facility(id),
    }
}

fn scope_out(s: Scope) -> u32 {
    match s {
        Scope::Enterprise => 0,
        Scope::Facility(id) => id,
    }
}

fn subject(parameter: Param, fuel: &str, facility_id: u32, at: &str) -> Result<Subject, ApiError> {
    match (parameter, fuel.is_empty(), facility_id) {
        (Param::Ncv, false, 0) => Ok(Subject::Fuel(text(fuel, &format!("{at}.fuel"))?)),
        (Param::Ncv, _, _) => Err(ApiError::field(
            &format!("{at}.fuel"),
            "an NCV names its fuel (and no facility)",
        )),
        (_, true, id) if id != 0 => Ok(Subject::Facility(id)),
        _ => Err(ApiError::field(
            &format!("{at}.facility_id"),
            "an anode parameter names its facility (and no fuel)",
        )),
    }
}

fn parameter(name: &str, at: &str) -> Result<Param, ApiError> {
    Param::parse(name).ok_or_else(|| {
        let why = "one of ncv, anode_sulfur, anode_ash, anode_effect_minutes";
        ApiError::field(&format!("{at}.parameter"), why)
    })
}

pub fn plan_in(
    r: &pb::SetMonitoringPlanRequest,
    year: u16,
    sector: Sector,
) -> Result<Dqcp, ApiError> {
    let mut facilities = Vec::with_capacity(r.facilities.len());
    for (i, f) in r.facilities.iter().enumerate() {
        let at = format!("facilities[{i}]");
        let kind = ProcessKind::parse(&f.kind).ok_or_else(|| {
            ApiError::field(
                &format!("{at}.kind"),
                format!("{:?} is not a process kind", f.kind),
            )
        })?;
        if f.id == 0 {
            return Err(ApiError::field(
                &format!("{at}.id"),
                "0 is the enterprise; facilities are 1 and up",
            ));
        }
        facilities.push(Facility {
            id: f.id,
            name: text(&f.name, &format!("{at}.name"))?,
            kind,
            clinker_type: (!f.clinker_type.is_empty()).then(|| f.clinker_type.clone()),
        });
    }
    let meters = r
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(Meter {
                id: text(&m.id, &format!("meters[{i}].id"))?,
                measures: text(&m.measures, &format!("meters[{i}].measures"))?,
                calibrated: m.calibrated,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut measured = BTreeSet::new();
    for (i, m) in r.measured.iter().enumerate() {
        let at = format!("measured[{i}]");
        let p = parameter(&m.parameter, &at)?;
        measured.insert((p, subject(p, &m.fuel, m.facility_id, &at)?));
    }
    Ok(Dqcp {
        year,
        sector,
        facilities,
        meters,
        measured,
    })
}

pub fn month_in(r: &pb::DepositMonthRequest, year: u16) -> Result<Month, ApiError> {
    let rows = r
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("rows[{i}]");
            let role = Role::parse(&row.role).ok_or_else(|| {
                ApiError::field(&format!("{at}.role"), "one of consumed, sold, produced")
            })?;
            Ok(Row {
                scope: scope(row.facility_id),
                role,
                item: text(&row.item, &format!("{at}.item"))?,
                quantity: decimal(&row.quantity, &format!("{at}.quantity"))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let readings = r
        .readings
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let at = format!("readings[{i}]");
            let param = parameter(&x.parameter, &at)?;
            Ok(Reading {
                param,
                subject: subject(param, &x.fuel, x.facility_id, &at)?,
                value: decimal(&x.value, &format!("{at}.value"))?,
                evidence: text(&x.evidence, &format!("{at}.evidence"))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let stoppages = r
        .stoppages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let days = u8::try_from(s.days)
                .map_err(|_| ApiError::field(&format!("stoppages[{i}].days"), "at most 31"))?;
            Ok(Stoppage {
                facility: s.facility_id,
                days,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Month {
        year,
        month: month_number(r.month)?,
        rows,
        readings,
        stoppages,
    })
}

pub fn evidence_in(docs: &[pb::EvidenceDocument]) -> Result<Vec<Evidence>, ApiError> {
    docs.iter()
        .enumerate()
        .map(|(i, e)| {
            let sha256: [u8; 32] = e.sha256.as_slice().try_into().map_err(|_| {
                ApiError::field(&format!("evidence[{i}].sha256"), "a SHA-256 is 32 bytes")
            })?;
            Ok(Evidence {
                kind: text(&e.kind, &format!("evidence[{i}].kind"))?,
                name: text(&e.name, &format!("evidence[{i}].name"))?,
                sha256,
                bytes: e.size_bytes,
            })
        })
        .collect()
}

fn row_out(r: &Row) -> pb::EmissionsRow {
    pb::EmissionsRow {
        facility_id: scope_out(r.scope),
        role: r.role.name().into(),
        item: r.item.clone(),
        quantity: r.quantity.to_string(),
    }
}

fn reading_out(r: &Reading) -> pb::ParameterReading {
    let (fuel, facility_id) = match &r.subject {
        Subject::Fuel(code) => (code.clone(), 0),
        Subject::Facility(id) => (String::new(), *id),
    };
    pb::ParameterReading {
        parameter: r.param.name().into(),
        fuel,
        facility_id,
        value: r.value.to_string(),
        evidence: r.evidence.clone(),
    }
}

pub fn month_out(version: usize, d: &Deposit) -> pb::MonthVersion {
    pb::MonthVersion {
        version: version as u32,
        deposited: d.date,
        late: d.late,
        stale_meters: d.stale_meters.clone(),
        journal_seq: d.seq,
        rows: d.month.rows.iter().map(row_out).collect(),
        readings: d.month.readings.iter().map(reading_out).collect(),
        stoppages: d
            .month
            .stoppages
            .iter()
            .map(|s| pb::Stoppage {
                facility_id: s.facility,
                days: u32::from(s.days),
            })
            .collect(),
        evidence: d
            .evidence
            .iter()
            .map(|e| pb::EvidenceDocument {
                kind: e.kind.clone(),
                name: e.name.clone(),
                sha256: e.sha256.to_vec(),
                size_bytes: e.bytes,
            })
            .collect(),
    }
}

fn opt(d: Option<Decimal>) -> String {
    d.map_or(String::new(), |d| d.to_string())
}

pub fn report_out(version: usize, s: &Submission, report: &Report) -> pb::EmissionsReport {
    let lines = report
        .lines
        .iter()
        .map(|l| pb::EmissionsLine {
            facility_id: scope_out(l.scope),
            term: l.term.name().into(),
            item: l.item.clone(),
            emissions_t: l.emissions_t.to_string(),
            working: l.working.clone(),
        })
        .collect();
    let facilities = report
        .facilities
        .iter()
        .map(|f| pb::FacilityEmissions {
            id: f.id,
            name: f.name.clone(),
            kind: f.kind.name().into(),
            emissions_t: f.emissions_t.to_string(),
            pfc_co2e_t: f.pfc_co2e_t.to_string(),
            output_t: f.output_t.to_string(),
            intensity: opt(f.intensity),
            carbide_slag_rate: opt(f.carbide_slag_rate),
        })
        .collect();
    pb::EmissionsReport {
        version: version as u32,
        submitted: s.date,
        guideline: report.guideline.clone(),
        factors_version: report.factors_version.clone(),
        enterprise_t: report.enterprise_t.to_string(),
        total_t: report.total_t,
        co2_t: report.co2_t,
        pfc_co2e_t: report.pfc_co2e_t,
        lines,
        facilities,
        steel_intensity: opt(report.steel.and_then(|s| s.intensity)),
        month_versions: s.month_versions.to_vec(),
        confirmed_seq: s.confirmed_seq.unwrap_or(0),
        journal_seq: s.seq,
    }
}
