//! A cement company with two clinker lines, one using carbide slag, by the cement
//! guideline's structure (fuel + process per line) and the factors file's values (its
//! clinker and carbide-slag factors are unconfirmed parameters). Worked by hand.

mod common;

use common::*;
use mrv::factors::Sector;
use mrv::month::Role::{Consumed as C, Produced as P};
use mrv::plan::ProcessKind;
use mrv::report::{Report, Term};

fn company() -> (mrv::plan::Dqcp, Vec<mrv::month::Month>) {
    let facilities = vec![
        facility(1, ProcessKind::ClinkerLine, Some("portland")),
        facility(2, ProcessKind::ClinkerLine, Some("portland")),
    ];
    let plan = plan(Sector::Cement, facilities, &[]);
    let months = (1..=12)
        .map(|m| {
            let rows = vec![
                row(at(1), C, "bituminous", "14000.00"),
                row(at(1), P, "clinker", "100000.00"),
                row(at(2), C, "bituminous", "11000.00"),
                row(at(2), C, "diesel", "10.00"),
                row(at(2), C, "carbide_slag", "8000.00"),
                row(at(2), P, "clinker", "80000.00"),
                // The quarry's trucks: the enterprise's other combustion.
                row(E, C, "diesel", "5.00"),
            ];
            month(m, rows, vec![])
        })
        .collect();
    (plan, months)
}

fn computed() -> Report {
    let (plan, months) = company();
    mrv::compute(&factors(CEMENT), &plan, &months).expect("computed")
}

#[test]
fn line_1_fuel_plus_clinker_process() {
    let report = computed();
    // Kiln coal: 12 x 14,000.00 = 168,000.00 t x 23.736 x 0.02618 x OF 0.99 =
    // 103,352.6583936 tC x 44/12 = 378,959.7474 -> 378,959.75
    let lines: Vec<_> = report
        .lines_of(at(1))
        .map(|l| (l.term, l.emissions_t.to_string()))
        .collect();
    assert_eq!(
        lines,
        [
            (Term::Combustion, "378959.75".to_string()),
            // Process: 12 x 100,000.00 = 1,200,000.00 t clinker x 0.535 = 642,000.00
            (Term::ClinkerProcess, "642000.00".to_string()),
        ]
    );
    let line = report.facility(1).unwrap();
    // E = 378,959.75 + 642,000.00 = 1,020,959.75; Ic = 1,020,959.75 / 1,200,000 = 0.850800
    // (0.85079979...) -> 0.8508
    assert_eq!(line.emissions_t.to_string(), "1020959.75");
    assert_eq!(line.output_t.to_string(), "1200000.00");
    assert_eq!(line.intensity.unwrap().to_string(), "0.8508");
    // No carbide slag: the rate is 0.
    assert_eq!(line.carbide_slag_rate.unwrap().to_string(), "0");
}

#[test]
fn line_2_with_the_carbide_slag_deduction_and_rate() {
    let report = computed();
    // Coal 132,000.00 t x 23.736 x 0.02618 x 0.99 = 81,205.6601664 tC -> 297,754.09;
    // diesel 120.00 t x 42.652 x 0.02020 x 0.98 = 101.32067904 tC -> 371.5091 -> 371.51;
    // process 960,000.00 x 0.535 = 513,600.00; carbide slag 96,000.00 t x 0.511 = 49,056.00
    // deducted.
    let lines: Vec<_> = report
        .lines_of(at(2))
        .map(|l| (l.item.as_str(), l.emissions_t.to_string()))
        .collect();
    assert_eq!(
        lines,
        [
            ("bituminous", "297754.09".to_string()),
            ("diesel", "371.51".to_string()),
            ("portland", "513600.00".to_string()),
            ("carbide_slag", "-49056.00".to_string()),
        ]
    );
    let line = report.facility(2).unwrap();
    // E = 297,754.09 + 371.51 + 513,600.00 - 49,056.00 = 762,669.60;
    // Ic = 762,669.60 / 960,000 = 0.794447... -> 0.7944
    assert_eq!(line.emissions_t.to_string(), "762669.60");
    assert_eq!(line.intensity.unwrap().to_string(), "0.7944");
    // Rate = (96,000 x 0.511) / (960,000 x 0.535) = 49,056 / 513,600 = 0.095514 -> 0.0955
    assert_eq!(line.carbide_slag_rate.unwrap().to_string(), "0.0955");
}

#[test]
fn the_enterprise_is_its_lines_and_its_other_combustion() {
    let report = computed();
    // Trucks: 60.00 t diesel x 42.652 x 0.02020 x 0.98 = 50.66033952 tC -> 185.7546 -> 185.75
    let other: Vec<_> = report
        .lines_of(E)
        .map(|l| l.emissions_t.to_string())
        .collect();
    assert_eq!(other, ["185.75"]);
    // 1,020,959.75 + 762,669.60 + 185.75 = 1,783,815.10 -> 1,783,815 t
    assert_eq!(report.enterprise_t.to_string(), "1783815.10");
    assert_eq!(report.total_t, 1_783_815);
    assert_eq!(report.factors_version, "cement-2024.1");
}
