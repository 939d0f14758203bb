//! Verification in the registry: one steel works' 2025 report walked through the whole path
//! (a body assigned by its province, document review, on-site check, two findings: one
//! corrected by the entity, one estimated conservatively; conclusion; notification into the
//! compliance cycle; allocation; an objection upheld, a re-review that changes the verified
//! figure after allocation, and the claw-back to the tonne). Every refusal names its code
//! and changes nothing; all of it survives a reopen. Figures are worked by hand from the
//! guideline's formulas with the steel factors (coke NCV 28.435 GJ/t, CC 0.02942 tC/GJ;
//! limestone 0.440 t CO2/t; crude steel 0.037 tC... as the emissions tests write them out).

mod common;

use common::steel::*;
use common::*;
use mrv::month::Role;
use mrv::plan::Scope;
use registry::compliance::Plan;
use registry::tx::Op;
use registry::verification::{Resolution, Stage, Target};

const RULES: &str = include_str!("../verification/2025.toml");
const YEAR: u16 = 2025;
const CEC: u32 = 1;
const CONSULTANCY: u32 = 2;

/// The steel works alone in its sector, under a 2025 plan that allocates industry its
/// verified emissions (the 2024 method), so the allocation is the verified figure to the
/// tonne and a changed conclusion moves it by exactly the change.
fn set_up() -> Fixture {
    let mut f = Fixture::new();
    f.ok(Op::LoadEntities {
        rows: vec![works()],
    });
    let mut plan = Plan::plan_2024();
    plan.year = YEAR;
    plan.version = "2025.verified".into();
    plan.deadline = 20261231;
    f.ok(Op::RegisterPlan {
        plan: Box::new(plan),
    });
    f.ok(Op::RegisterFactors {
        year: YEAR,
        text: FACTORS.into(),
    });
    f.ok(Op::SetMonitoringPlan {
        account: STEEL,
        plan: Box::new(monitoring_plan()),
        date: 20241220,
    });
    for m in 1..=12 {
        f.ok(deposit(m, on_time(m), false, "5000.00"));
    }
    f.ok(Op::SubmitReport {
        account: STEEL,
        year: YEAR,
        date: 20260320,
    });
    f.ok(Op::RegisterVerificationRules { text: RULES.into() });
    for (body, name) in [
        (CEC, "CEC Verification"),
        (CONSULTANCY, "Hebei Carbon Consulting"),
    ] {
        f.ok(Op::RegisterBody {
            body,
            name: name.into(),
            credit_code: String::new(),
        });
    }
    f
}

fn assign(body: u32, province: &str) -> Op {
    Op::AssignBody {
        year: YEAR,
        account: STEEL,
        body,
        province: province.into(),
        date: 20260401,
    }
}

fn step(body: u32, stage: Stage, date: u32) -> Op {
    Op::ReviewStep {
        year: YEAR,
        account: STEEL,
        body,
        stage,
        date,
    }
}

fn enterprise(item: &str) -> Target {
    Target::Row {
        scope: Scope::Enterprise,
        role: Role::Consumed,
        item: item.into(),
    }
}

fn finding(month: u8, target: Target, text: &str, date: u32) -> Op {
    Op::RaiseFinding {
        year: YEAR,
        account: STEEL,
        body: CEC,
        month,
        target,
        text: text.into(),
        date,
    }
}

fn resolve(finding: u32, estimate: Option<&str>, date: u32) -> Op {
    Op::ResolveFinding {
        year: YEAR,
        account: STEEL,
        body: CEC,
        finding,
        estimate: estimate.map(d),
        date,
    }
}

fn conclude(date: u32) -> Op {
    Op::Conclude {
        year: YEAR,
        account: STEEL,
        body: CEC,
        date,
    }
}

fn notify(date: u32, objection_until: u32) -> Op {
    Op::Notify {
        year: YEAR,
        account: STEEL,
        province: "Hebei".into(),
        date,
        objection_until,
    }
}

fn object(date: u32) -> Op {
    Op::Object {
        year: YEAR,
        account: STEEL,
        reason: "September's invoices include 1,000 t of coke delivered to the sinter \
                 plant's yard and counted there"
            .into(),
        date,
        decide_by: 20260603,
    }
}

fn true_up() -> Op {
    Op::TrueUp {
        year: YEAR,
        plan_version: "2025.verified".into(),
        unit: CEA2025,
        authority: MEE,
    }
}

fn stage(f: &Fixture) -> Stage {
    f.registry.ledger().verification.files[&(YEAR, STEEL)].stage
}

#[test]
fn a_steel_works_through_verification_objection_and_claw_back() {
    let mut f = set_up();
    // The consultancy served the works as its technical service body in 2024: it may not
    // verify 2025. Shanxi's authority has no say over a Hebei entity.
    f.ok(Op::RecordEngagement {
        year: 2024,
        account: STEEL,
        body: CONSULTANCY,
        province: "Hebei".into(),
    });
    f.rejects(assign(CONSULTANCY, "Hebei"), "CONSULTANT_CONFLICT");
    f.rejects(assign(CEC, "Shanxi"), "OUTSIDE_JURISDICTION");
    f.ok(assign(CEC, "Hebei"));
    // Only the assigned body works on the file, in order.
    f.rejects(
        step(CONSULTANCY, Stage::DocumentReview, 20260410),
        "BODY_NOT_ASSIGNED",
    );
    f.rejects(step(CEC, Stage::OnSite, 20260410), "VERIFICATION_STAGE");
    f.ok(step(CEC, Stage::DocumentReview, 20260410));

    // Finding 1: June's limestone. The weighbridge slips say 5,500 t, the ledger 5,000 t.
    f.ok(finding(
        6,
        enterprise("limestone"),
        "weighbridge slips: 5,500 t",
        20260412,
    ));
    f.rejects(resolve(1, None, 20260413), "FINDING_NOT_CORRECTED");
    f.ok(deposit(6, 20260415, true, "5500.00"));
    f.ok(Op::SubmitReport {
        account: STEEL,
        year: YEAR,
        date: 20260415,
    });
    f.ok(resolve(1, None, 20260416));
    f.ok(step(CEC, Stage::OnSite, 20260420));

    // Finding 2: September's enterprise coke. The purchase invoices show 41,000 t, the
    // ledger 40,000 t; the works does not correct it, the body estimates 41,000.00 t.
    f.ok(finding(
        9,
        enterprise("coke"),
        "invoices: 41,000 t of coke",
        20260421,
    ));
    f.rejects(conclude(20260505), "FINDINGS_OPEN");
    f.rejects(
        resolve(2, Some("-1"), 20260505),
        "INVALID_VERIFICATION_DATA",
    );
    f.rejects(resolve(7, Some("41000.00"), 20260505), "FINDING_UNKNOWN");
    f.ok(resolve(2, Some("41000.00"), 20260505));
    f.ok(conclude(20260510));

    // The resubmitted report (version 2): formula (1) over the year,
    //   coke 480,000.00 x 28.435 x 0.02942 = 401,547.696 tC x 44/12 = 1,472,341.55
    //   bituminous 120,000.00 x 24.000 x 0.02618 = 75,398.4 tC x 44/12 = 276,460.80
    //   limestone (11 x 5,000 + 5,500) = 60,500.00 x 0.440 = 26,620.00
    //   crude steel 1,200,000.00 x 0.037 x 44/12 = -44,400.00
    //   E = 1,731,022.35 -> 1,731,022 t reported.
    // The conclusion, with September's coke at 41,000.00 (481,000.00 for the year):
    //   481,000.00 x 28.435 = 13,677,235 GJ x 0.02942 = 402,384.2537 tC x 44/12
    //   = 1,475,408.93; E = 1,475,408.93 + 276,460.80 + 26,620.00 - 44,400.00
    //   = 1,734,089.73 -> 1,734,090 t verified.
    let file = &f.registry.ledger().verification.files[&(YEAR, STEEL)];
    let c = file.conclusion().expect("concluded");
    assert_eq!(
        (c.reported_t, c.total_t, c.report_version),
        (1_731_022, 1_734_090, 2)
    );
    assert_eq!(file.stage, Stage::Concluded);
    assert!(matches!(
        file.findings[0].resolution,
        Some((Resolution::Corrected { report_version: 2 }, _))
    ));

    // Notified (the objection window: 7 working days from Friday 15 May 2026, to 26 May):
    // the conclusion is the year's verified emissions; the true-up allocates exactly that.
    f.ok(notify(20260515, 20260526));
    let ledger = f.registry.ledger();
    assert_eq!(
        ledger.cycle.standing(YEAR, STEEL).verified_t(),
        Some(1_734_090)
    );
    f.ok(true_up());
    assert_eq!(f.holding(STEEL, CEA2025).0, 1_734_090);

    // The works objects on 20 May; Hebei upholds it on 27 May: a re-review.
    f.rejects(object(20260527), "OBJECTION_CLOSED");
    f.ok(object(20260520));
    assert_eq!(stage(&f), Stage::Objected);
    f.ok(Op::DecideObjection {
        year: YEAR,
        account: STEEL,
        province: "Hebei".into(),
        upheld: true,
        reason: "the yard's 1,000 t: 500 t are the sinter plant's".into(),
        date: 20260527,
    });
    assert_eq!(stage(&f), Stage::DocumentReview);
    // Finding 3 re-estimates September's enterprise coke at 40,500.00 t (it supersedes
    // finding 2's estimate): 480,500.00 for the year,
    //   480,500.00 x 28.435 = 13,663,017.5 GJ x 0.02942 = 401,965.97485 tC x 44/12
    //   = 1,473,875.24; E = 1,473,875.24 + 276,460.80 + 26,620.00 - 44,400.00
    //   = 1,732,556.04 -> 1,732,556 t.
    f.ok(finding(
        9,
        enterprise("coke"),
        "re-review: 40,500 t",
        20260528,
    ));
    f.ok(resolve(3, Some("40500.00"), 20260528));
    f.ok(conclude(20260601));
    f.ok(notify(20260603, 20260612));
    // After allocation: the true-up re-runs in the same transaction and claws back
    // 1,734,090 - 1,732,556 = 1,534 t.
    let ledger = f.registry.ledger();
    assert_eq!(
        ledger.cycle.standing(YEAR, STEEL).verified_t(),
        Some(1_732_556)
    );
    assert_eq!(f.holding(STEEL, CEA2025).0, 1_732_556);
    let file = &ledger.verification.files[&(YEAR, STEEL)];
    assert_eq!(file.conclusions.len(), 2);
    assert_eq!(file.round, 2);
    assert!(!file.late());
    // One objection per file: the re-review's conclusion stands.
    f.rejects(object(20260604), "OBJECTION_CLOSED");

    // Every step is in the file's history, and everything survives a reopen.
    let steps: Vec<&str> = f.registry.ledger().verification.files[&(YEAR, STEEL)]
        .steps
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert_eq!(steps.len(), 15, "{steps:#?}");
    assert_eq!(steps[0], "assigned to body 1");
    assert_eq!(steps[8], "notified: 1734090 t");
    let before = f.registry.ledger().verification.clone();
    f.reopen().expect("reopen");
    assert_eq!(f.registry.ledger().verification, before);
}

#[test]
fn refusals_of_the_workflow_change_nothing() {
    let mut f = set_up();
    // No file before a body is assigned; no body 9.
    f.rejects(
        step(CEC, Stage::DocumentReview, 20260410),
        "VERIFICATION_FILE_MISSING",
    );
    f.rejects(assign(9, "Hebei"), "VERIFICATION_BODY_UNKNOWN");
    // A body assigned to verify the works cannot then be recorded as its consultant.
    f.ok(assign(CEC, ""));
    f.rejects(
        Op::RecordEngagement {
            year: YEAR,
            account: STEEL,
            body: CEC,
            province: "Hebei".into(),
        },
        "CONSULTANT_CONFLICT",
    );
    // Reassigned before the review starts; not after.
    f.ok(assign(CONSULTANCY, "Hebei"));
    f.ok(step(CONSULTANCY, Stage::DocumentReview, 20260410));
    f.rejects(assign(CEC, "Hebei"), "VERIFICATION_STAGE");
    // A notification before the conclusion; a finding of month 13; an empty text.
    f.rejects(notify(20260515, 20260526), "VERIFICATION_STAGE");
    let mut bad = finding(13, enterprise("coke"), "x", 20260411);
    if let Op::RaiseFinding { body, .. } = &mut bad {
        *body = CONSULTANCY;
    }
    f.rejects(bad, "INVALID_VERIFICATION_DATA");
    // A rules file with an unknown key.
    f.rejects(
        Op::RegisterVerificationRules {
            text: format!("{RULES}\nfraud_share = \"0.5\"\n"),
        },
        "INVALID_VERIFICATION_DATA",
    );
    // A step after the year's deadline (31 July 2026 for industry) is taken and flagged.
    f.ok(step(CONSULTANCY, Stage::OnSite, 20260803));
    let file = &f.registry.ledger().verification.files[&(YEAR, STEEL)];
    assert!(file.steps.last().is_some_and(|s| s.late));
}
