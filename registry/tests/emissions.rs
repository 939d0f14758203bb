//! Emissions accounting in the registry: factors registered, a steel works' monitoring plan,
//! twelve monthly deposits (one late, one corrected), the annual report computed from them
//! and confirmed into the compliance cycle; every refusal changes nothing; all of it
//! survives a reopen. Figures are worked by hand from the guideline's formulas.

mod common;

use common::steel::*;
use common::*;
use registry::cycle::Activity;
use registry::tx::{Op, Outcome};

#[test]
fn the_year_from_deposits_to_the_compliance_cycle() {
    let mut f = set_up();
    // Nothing before the factors and the plan.
    f.rejects(deposit(1, on_time(1), false, "5000.00"), "FACTORS_MISSING");
    f.ok(Op::RegisterFactors {
        year: 2025,
        text: FACTORS.into(),
    });
    let again = f.ok(Op::RegisterFactors {
        year: 2025,
        text: FACTORS.into(),
    });
    assert_eq!(again.outcome, Outcome::Unchanged);
    f.rejects(
        deposit(1, on_time(1), false, "5000.00"),
        "MONITORING_PLAN_MISSING",
    );
    let plan = Op::SetMonitoringPlan {
        account: STEEL,
        plan: Box::new(monitoring_plan()),
        date: 20241220,
    };
    f.ok(plan);

    for m in 1..=12 {
        // March's data came in on 15 May: past its deadline of 10 May, accepted and flagged.
        let date = if m == 3 { 20250515 } else { on_time(m) };
        f.ok(deposit(m, date, false, "5000.00"));
    }
    let e = &f.registry.ledger().emissions;
    let march = &e.months[&(2025, STEEL, 3)][0];
    assert!(march.late);
    assert!(!e.months[&(2025, STEEL, 2)][0].late);
    // The weighbridge was calibrated 2025-01-10: stale from the month ending more than 12
    // months after, none of 2025's.
    assert!(march.stale_meters.is_empty());
    assert_eq!(march.evidence[0].sha256, [3; 32]);

    // April again without saying it is a correction: refused; as a correction, version 2.
    f.rejects(
        deposit(4, 20250520, false, "6000.00"),
        "MONTH_ALREADY_DEPOSITED",
    );
    f.ok(deposit(4, 20250520, true, "6000.00"));
    assert_eq!(
        f.registry.ledger().emissions.months[&(2025, STEEL, 4)].len(),
        2
    );

    f.ok(Op::SubmitReport {
        account: STEEL,
        year: 2025,
        date: 20260320,
    });
    let s = f
        .registry
        .ledger()
        .emissions
        .report_of(2025, STEEL)
        .unwrap()
        .clone();
    // Formula (1), twelve months (April's limestone 6,000.00 t, the rest 5,000.00):
    //   coke 480,000.00 x 28.435 x 0.02942 = 401,547.696 tC x 44/12 = 1,472,341.55
    //   bituminous 120,000.00 x 24.000 (measured) x 0.02618 = 75,398.4 tC -> 276,460.80
    //   limestone (11 x 5,000 + 6,000) = 61,000.00 x 0.440 = 26,840.00
    //   crude steel 1,200,000.00 x 0.037 = -44,400.00
    //   E_ent = 1,731,242.35 -> 1,731,242 t
    assert_eq!(
        (s.total_t, s.co2_t, s.pfc_co2e_t),
        (1_731_242, 1_731_242, 0)
    );
    assert_eq!(s.month_versions, [1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(s.factors_version, "steel-2024.1");
    // Sintering: coke 60,000.00 -> 50,193.462 tC -> 184,042.69 over 1,440,000.00 t sinter.
    // Ironmaking: coke 360,000.00 -> 1,104,256.16; coal 120,000.00 -> 276,460.80; BFG out
    // 144,000.00 x 33.000 x 0.07080 = 336,441.6 tC -> 1,233,619.20; E = 147,097.76 over
    // 1,080,000.00 t hot metal.
    let figures: Vec<_> = s
        .facilities
        .iter()
        .map(|f| (f.id, f.emissions_t.to_string(), f.output_t.to_string()))
        .collect();
    assert_eq!(
        figures,
        [
            (2, "184042.69".to_string(), "1440000.00".to_string()),
            (3, "147097.76".to_string(), "1080000.00".to_string()),
        ]
    );
    assert!(s.confirmed_seq.is_none());

    // Confirmed, the report's figures are the year's verified emissions and the
    // allocation units' data.
    let receipt = f.ok(Op::ConfirmReport {
        account: STEEL,
        year: 2025,
    });
    let ledger = f.registry.ledger();
    assert_eq!(
        ledger.cycle.standing(2025, STEEL).verified_t(),
        Some(1_731_242)
    );
    match ledger.cycle.activity[&(2025, STEEL, 3)] {
        Activity::Industry {
            output_t,
            emissions_t,
            ..
        } => {
            assert_eq!(
                (output_t.to_string(), emissions_t.to_string()),
                ("1080000.00".into(), "147097.76".into())
            );
        }
        a => panic!("{a:?}"),
    }
    assert_eq!(
        ledger
            .emissions
            .report_of(2025, STEEL)
            .unwrap()
            .confirmed_seq,
        Some(receipt.seq)
    );
    // The lines are recomputed from what the submission used.
    let report = ledger.emissions.recompute(2025, STEEL).expect("recomputed");
    assert_eq!(report.total_t, 1_731_242);

    // Everything survives a reopen.
    let before = f.registry.ledger().emissions.clone();
    f.reopen().expect("reopen");
    assert_eq!(f.registry.ledger().emissions, before);
}

#[test]
fn refusals_name_the_field_and_change_nothing() {
    let mut f = set_up();
    f.ok(Op::RegisterFactors {
        year: 2025,
        text: FACTORS.into(),
    });
    f.ok(Op::SetMonitoringPlan {
        account: STEEL,
        plan: Box::new(monitoring_plan()),
        date: 20241220,
    });
    // A power entity has no industrial guideline here.
    let mut power = month(1, "5000.00");
    power.rows.truncate(1);
    f.rejects(
        Op::DepositMonth {
            account: POWER,
            month: Box::new(power),
            evidence: vec![],
            correction: false,
            date: 20250210,
        },
        "NOT_INDUSTRIAL",
    );
    // Before the month has ended.
    f.rejects(deposit(1, 20250131, false, "5000.00"), "MONTH_NOT_ENDED");
    // A correction of a month never deposited.
    f.rejects(deposit(1, 20250210, true, "5000.00"), "NOTHING_TO_CORRECT");
    // Default NCV after measured was chosen: the reading left out.
    let mut no_reading = month(1, "5000.00");
    no_reading.readings.clear();
    let op = Op::DepositMonth {
        account: STEEL,
        month: Box::new(no_reading),
        evidence: vec![],
        correction: false,
        date: 20250210,
    };
    let err = f.try_op(op.clone()).unwrap_err();
    assert_eq!(err.code(), "INVALID_EMISSIONS_DATA");
    assert_eq!(
        err.to_string(),
        "readings.ncv: bituminous: measured was chosen in the plan; no reading given"
    );
    f.rejects(op, "INVALID_EMISSIONS_DATA");
    // A negative quantity names its row.
    let bad = deposit(1, 20250210, false, "-1.00");
    let err = f.try_op(bad.clone()).unwrap_err();
    assert_eq!(err.to_string(), "rows[2].quantity: -1.00 is negative");
    f.rejects(bad, "INVALID_EMISSIONS_DATA");
    // Evidence without its size.
    let mut op = deposit(1, 20250210, false, "5000.00");
    if let Op::DepositMonth { evidence, .. } = &mut op {
        evidence[0].bytes = 0;
    }
    f.rejects(op, "INVALID_EMISSIONS_DATA");
    // A revision back to the default NCV.
    let mut revised = monitoring_plan();
    revised.measured.clear();
    f.rejects(
        Op::SetMonitoringPlan {
            account: STEEL,
            plan: Box::new(revised),
            date: 20250301,
        },
        "INVALID_EMISSIONS_DATA",
    );
    // A report before the twelve months; confirming a report never submitted.
    f.ok(deposit(1, 20250210, false, "5000.00"));
    let err = f
        .try_op(Op::SubmitReport {
            account: STEEL,
            year: 2025,
            date: 20250301,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "year: months 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 of 2025 are not deposited"
    );
    f.rejects(
        Op::SubmitReport {
            account: STEEL,
            year: 2025,
            date: 20250301,
        },
        "MONTHS_MISSING",
    );
    f.rejects(
        Op::ConfirmReport {
            account: STEEL,
            year: 2025,
        },
        "REPORT_MISSING",
    );
}
