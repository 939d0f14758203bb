//! Bad data is refused with the field at fault and why; nothing is computed from it.

mod common;

use common::*;
use mrv::factors::{Factors, Sector};
use mrv::month::Role::{Consumed as C, Produced as P, Sold as S};
use mrv::month::{Month, Row};
use mrv::plan::{Dqcp, Meter, Param, ProcessKind, Subject};

fn steel_plan() -> Dqcp {
    let facilities = vec![facility(3, ProcessKind::Ironmaking, None)];
    plan(
        Sector::Steel,
        facilities,
        &[(Param::Ncv, Subject::Fuel("bituminous".into()))],
    )
}

/// `(field, why)` of the month's refusal.
fn refusal(rows: Vec<Row>, readings: Vec<mrv::month::Reading>) -> (String, String) {
    let month = Month {
        year: 2025,
        month: 3,
        rows,
        readings,
        stoppages: vec![],
    };
    let e = month.validate(&factors(STEEL), &steel_plan()).unwrap_err();
    (e.field, e.why)
}

fn check(rows: Vec<Row>, field: &str, why: &str) {
    assert_eq!(
        refusal(rows, vec![ncv("bituminous", "24.000")]),
        (field.to_string(), why.to_string())
    );
}

#[test]
fn quantities_negative_absurd_or_too_precise() {
    let ok = row(E, C, "bituminous", "1000.00");
    check(
        vec![ok.clone(), row(E, C, "coke", "-5.00")],
        "rows[1].quantity",
        "-5.00 is negative",
    );
    check(
        vec![row(E, C, "coke", "100000000.01")],
        "rows[0].quantity",
        "100000000.01 is above 100000000",
    );
    check(
        vec![row(E, C, "coke", "12.345")],
        "rows[0].quantity",
        "12.345: quantities have at most 2 places",
    );
}

#[test]
fn unknown_items_facilities_and_roles() {
    check(
        vec![row(E, C, "whale_oil", "1.00")],
        "rows[0].item",
        "\"whale_oil\" is no fuel, material or product of steel-2024.1",
    );
    check(
        vec![row(at(9), C, "coke", "1.00")],
        "rows[0].facility_id",
        "facility 9 is not in the plan",
    );
    check(
        vec![row(at(3), S, "coke", "1.00")],
        "rows[0].role",
        "sold fuel coke is not data of ironmaking",
    );
    // Formula (2)'s outputs are each process's own: ironmaking makes BFG, not coke-oven gas.
    check(
        vec![row(at(3), P, "cog", "1.00")],
        "rows[0].role",
        "produced fuel cog is not data of ironmaking",
    );
    check(
        vec![row(at(3), P, "sinter", "1.00")],
        "rows[0].role",
        "produced product sinter is not data of ironmaking",
    );
}

#[test]
fn a_row_given_twice() {
    let r = row(E, C, "coke", "1.00");
    check(
        vec![r.clone(), r],
        "rows[1]",
        "consumed coke at enterprise given twice",
    );
}

#[test]
fn measured_ncvs_plausible_and_required() {
    let coal = vec![row(E, C, "bituminous", "1000.00")];
    // Default 23.736 +- 30%: 16.6152 to 30.8568.
    let (field, why) = refusal(coal.clone(), vec![ncv("bituminous", "35.000")]);
    assert_eq!(
        (field.as_str(), why.as_str()),
        (
            "readings[0].value",
            "35.000 is outside the plausible 16.6152 to 30.8568 for bituminous"
        )
    );
    // The plan measures bituminous coal: a month of it without its reading takes the
    // default, which §6.2 refuses once measured was chosen.
    let (field, why) = refusal(coal.clone(), vec![]);
    assert_eq!(
        (field.as_str(), why.as_str()),
        (
            "readings.ncv",
            "bituminous: measured was chosen in the plan; no reading given"
        )
    );
    // A reading of a fuel the plan takes at its default.
    let (field, why) = refusal(
        coal,
        vec![ncv("bituminous", "24.000"), ncv("anthracite", "25.000")],
    );
    assert_eq!(
        (field.as_str(), why.as_str()),
        (
            "readings[1].parameter",
            "the plan takes the default ncv here"
        )
    );
}

#[test]
fn the_plan_locks_measured_and_the_guidelines_defaults() {
    let factors = factors(STEEL);
    let old = steel_plan();
    // A revision back to the default NCV is refused; adding a measured fuel is not.
    let mut back = old.clone();
    back.measured.clear();
    let e = back.check_revision(&old).unwrap_err();
    assert_eq!(e.field, "measured.ncv");
    assert_eq!(
        e.why,
        "bituminous: measured was chosen for the year; default is refused"
    );
    let mut more = old.clone();
    more.measured
        .insert((Param::Ncv, Subject::Fuel("anthracite".into())));
    more.check_revision(&old)
        .expect("measuring more is allowed");
    // Coke always takes its default NCV.
    let mut coke = old.clone();
    coke.measured
        .insert((Param::Ncv, Subject::Fuel("coke".into())));
    let e = coke.validate(&factors).unwrap_err();
    assert_eq!(e.why, "coke: the guideline allows only the default NCV");
    // A facility of another sector.
    let mut kiln = old;
    kiln.facilities
        .push(facility(4, ProcessKind::ClinkerLine, Some("portland")));
    let e = kiln.validate(&factors).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.why.as_str()),
        (
            "facilities[1].kind",
            "clinker_line is not a process of steel"
        )
    );
}

#[test]
fn meters_older_than_twelve_months_are_flagged() {
    let mut plan = steel_plan();
    plan.meters = vec![
        Meter {
            id: "WB-01".into(),
            measures: "coal weighbridge".into(),
            calibrated: 20240331,
        },
        Meter {
            id: "GF-02".into(),
            measures: "BFG flow meter".into(),
            calibrated: 20240330,
        },
    ];
    // March 2025 ends on the 31st; a year before is 2024-03-31: the meter calibrated that
    // day is within its cycle, the one calibrated the day before is not.
    let stale: Vec<_> = plan
        .stale_meters(3)
        .into_iter()
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(stale, ["GF-02"]);
    // By December both are stale.
    assert_eq!(plan.stale_meters(12).len(), 2);
}

#[test]
fn the_year_needs_its_twelve_months_once_each() {
    let factors = factors(STEEL);
    let plan = steel_plan();
    let m = |n| month(n, vec![row(E, C, "coke", "1.00")], vec![]);
    let eleven: Vec<Month> = (1..=11).map(m).collect();
    let e = mrv::compute(&factors, &plan, &eleven).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.why.as_str()),
        ("months", "month 12 of 2025 has no data")
    );
    let mut twice = eleven.clone();
    twice.push(m(11));
    let e = mrv::compute(&factors, &plan, &twice).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.why.as_str()),
        ("months[11].month", "month 11 given twice")
    );
    // A mass balance below zero is refused, not reported as 0.
    let mut negative: Vec<Month> = (1..=12).map(m).collect();
    negative[0].rows.push(row(E, S, "tar", "100.00"));
    let e = mrv::compute(&factors, &plan, &negative).unwrap_err();
    assert!(
        e.why.starts_with("the enterprise's emissions come to -"),
        "{}",
        e.why
    );
}

#[test]
fn factors_files_refuse_unknown_keys_and_bounds() {
    let unknown = STEEL.replace(
        "measured_ncv_band = \"0.3\"",
        "measured_ncv_band = \"0.3\"\ncolour = \"red\"",
    );
    let e = Factors::from_toml(&unknown).unwrap_err();
    assert_eq!(e.key, "file");
    assert!(e.why.contains("unknown field `colour`"), "{}", e.why);
    let cc = STEEL.replace("cc = \"0.02618\"", "cc = \"0.2618\"");
    let e = Factors::from_toml(&cc).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.why.as_str()),
        ("fuels.bituminous.cc", "0.2618 is outside 0 to 0.1")
    );
    let float = STEEL.replace("ef = \"0.440\"", "ef = 0.44");
    assert_eq!(Factors::from_toml(&float).unwrap_err().key, "file");
    for text in [STEEL, CEMENT, ALUMINIUM] {
        Factors::from_toml(text).expect("checked-in files are valid");
    }
}
