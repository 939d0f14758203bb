//! An aluminium smelter with two pot lines: line 1 measures its anode-effect minutes (the
//! slope method), line 2 takes the default PFC factors. Anode contents are the defaults.
//! Every factor is the factors file's (unconfirmed, MRV.md §3). Worked by hand.

mod common;

use common::*;
use mrv::factors::Sector;
use mrv::month::Reading;
use mrv::month::Role::{Consumed as C, Produced as P};
use mrv::plan::{Param, ProcessKind, Subject};
use mrv::report::{Report, Term};

fn smelter() -> (mrv::plan::Dqcp, Vec<mrv::month::Month>) {
    let facilities = vec![
        facility(1, ProcessKind::Electrolysis, None),
        facility(2, ProcessKind::Electrolysis, None),
    ];
    let plan = plan(
        Sector::Aluminium,
        facilities,
        &[(Param::AnodeEffectMinutes, Subject::Facility(1))],
    );
    let months = (1..=12)
        .map(|m| {
            let rows = vec![
                row(at(1), C, "prebaked_anode", "16400.00"),
                row(at(1), P, "liquid_aluminium", "40000.00"),
                row(at(2), C, "prebaked_anode", "4200.00"),
                row(at(2), P, "liquid_aluminium", "10000.00"),
                row(E, C, "natural_gas", "50.00"),
            ];
            let minutes = Reading {
                param: Param::AnodeEffectMinutes,
                subject: Subject::Facility(1),
                value: d(if m <= 6 { "0.050" } else { "0.030" }),
                evidence: format!("potroom log 2025-{m:02}"),
            };
            month(m, rows, vec![minutes])
        })
        .collect();
    (plan, months)
}

fn computed() -> Report {
    let (plan, months) = smelter();
    mrv::compute(&factors(ALUMINIUM), &plan, &months).expect("computed")
}

fn lines(report: &Report, id: u32) -> Vec<(Term, String)> {
    report
        .lines_of(at(id))
        .map(|l| (l.term, l.emissions_t.to_string()))
        .collect()
}

#[test]
fn line_1_anode_co2_and_pfcs_by_the_slope_method() {
    let report = computed();
    // Anode: 12 x 16,400.00 = 196,800.00 t x (1 - 0.02 - 0.004) = 192,076.8 t C x 44/12
    // = 704,281.60.
    // Minutes weighted by the aluminium made (equal months): (6 x 0.050 + 6 x 0.030) / 12
    // = 0.0400. CF4: 0.143 x 0.0400 = 0.00572 kg/t x 480,000.00 t / 1000 = 2.7456 t x 6,630
    // = 18,203.328 -> 18,203.33. C2F6: 0.0173 x 0.0400 = 0.000692 kg/t x 480,000 / 1000 =
    // 0.33216 t x 11,100 = 3,686.976 -> 3,686.98.
    assert_eq!(
        lines(&report, 1),
        [
            (Term::Anode, "704281.60".to_string()),
            (Term::Cf4, "18203.33".to_string()),
            (Term::C2f6, "3686.98".to_string()),
        ]
    );
    let pot = report.facility(1).unwrap();
    assert_eq!(pot.emissions_t.to_string(), "704281.60");
    // PFCs 18,203.33 + 3,686.98 = 21,890.31; E = 726,171.91; Ia = 726,171.91 / 480,000 =
    // 1.512858... -> 1.5129
    assert_eq!(pot.pfc_co2e_t.to_string(), "21890.31");
    assert_eq!(pot.intensity.unwrap().to_string(), "1.5129");
}

#[test]
fn line_2_takes_the_default_pfc_factors() {
    let report = computed();
    // Anode 50,400.00 t x 0.976 = 49,190.4 x 44/12 = 180,364.80; CF4 0.034 kg/t x 120,000.00
    // t / 1000 = 4.08 t x 6,630 = 27,050.40; C2F6 0.0034 x 120,000 / 1000 = 0.408 t x 11,100
    // = 4,528.80. E = 211,944.00; Ia = 211,944 / 120,000 = 1.7662
    assert_eq!(
        lines(&report, 2),
        [
            (Term::Anode, "180364.80".to_string()),
            (Term::Cf4, "27050.40".to_string()),
            (Term::C2f6, "4528.80".to_string()),
        ]
    );
    assert_eq!(
        report.facility(2).unwrap().intensity.unwrap().to_string(),
        "1.7662"
    );
}

#[test]
fn the_enterprise_total_splits_co2_from_pfcs() {
    let report = computed();
    // Other combustion: 600.00 (10^4 Nm3) x 389.310 x 0.01532 x 0.99 = 3,542.7521448 tC
    // x 44/12 = 12,990.0912 -> 12,990.09.
    let other: Vec<_> = report
        .lines_of(E)
        .map(|l| l.emissions_t.to_string())
        .collect();
    assert_eq!(other, ["12990.09"]);
    // 726,171.91 + 211,944.00 + 12,990.09 = 951,106.00 t; PFCs 21,890.31 + 27,050.40 +
    // 4,528.80 = 53,469.51 -> 53,470 t CO2e; CO2 951,106 - 53,470 = 897,636 t.
    assert_eq!(report.enterprise_t.to_string(), "951106.00");
    assert_eq!(report.total_t, 951_106);
    assert_eq!((report.co2_t, report.pfc_co2e_t), (897_636, 53_470));
}

#[test]
fn the_slope_method_needs_every_producing_months_minutes() {
    let (plan, mut months) = smelter();
    months[4].readings.clear();
    let err = mrv::compute(&factors(ALUMINIUM), &plan, &months).unwrap_err();
    assert_eq!(err.field, "months");
    assert_eq!(err.why, "facility 1: month 5 has no anode-effect minutes");
}
