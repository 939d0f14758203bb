//! Emissions accounting over gRPC, as a steel works' energy manager and its verifier use
//! it: the ministry covers the works and registers the steel factors, the works sets its
//! monitoring plan and deposits each month after it ends, submits its annual report, and
//! the verifier confirms it into the compliance cycle. Refusals carry their reason and the
//! field at fault. Figures worked by hand from the guideline's formulas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::v1 as pb;
use tests::steel::*;
use tests::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steel_works_year_from_deposits_to_its_verified_emissions() {
    let now = Arc::new(AtomicU64::new(tenth_after(0) * 1_000_000_000));
    let server = TestServer::start_at(now.clone());
    let channel = server.channel().await;
    let mut ministry = Clients::new(channel.clone(), Some(token("ministry")));
    let mut works = Clients::new(channel.clone(), Some(token("e1")));
    let mut verifier = Clients::new(channel.clone(), Some(token("verifier")));

    ministry
        .compliance
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities".into(),
            rows: vec![steel_works()],
        })
        .await
        .expect("entities");
    let plan_toml = std::fs::read_to_string(plan_path("2025-draft.toml")).expect("plan file");
    ministry
        .compliance
        .register_plan(pb::RegisterPlanRequest {
            idempotency_key: "plan".into(),
            plan_toml,
        })
        .await
        .expect("plan");
    let factors =
        std::fs::read_to_string(plan_path("../factors/steel-2024.toml")).expect("factors file");
    ministry
        .emissions
        .register_factors(pb::RegisterFactorsRequest {
            idempotency_key: "factors".into(),
            year: 2025,
            factors_toml: factors,
        })
        .await
        .expect("factors");
    works
        .emissions
        .set_monitoring_plan(monitoring_plan())
        .await
        .expect("monitoring plan");

    // Before January has ended (it is 10 January).
    let early = works
        .emissions
        .deposit_month(month(1, E1))
        .await
        .unwrap_err();
    assert_eq!(
        (early.code(), reason(&early)),
        (Code::FailedPrecondition, "MONTH_NOT_ENDED".into())
    );
    // Another entity's account.
    let foreign = works
        .emissions
        .deposit_month(month(1, M1))
        .await
        .unwrap_err();
    assert_eq!(
        (foreign.code(), reason(&foreign)),
        (Code::PermissionDenied, "ACCOUNT_NOT_ALLOWED".into())
    );

    for m in 1..=12 {
        now.store(tenth_after(m) * 1_000_000_000, Ordering::SeqCst);
        if m == 5 {
            // A negative quantity: refused, naming the row and field; nothing kept.
            let mut bad = month(m, E1);
            bad.idempotency_key = "bad".into();
            bad.rows[2].quantity = "-5000.00".into();
            let e = works.emissions.deposit_month(bad).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument);
            assert_eq!(
                (reason(&e), field(&e)),
                ("INVALID_EMISSIONS_DATA".into(), "rows[2].quantity".into())
            );
            assert_eq!(e.message(), "rows[2].quantity: -5000.00 is negative");
        }
        works
            .emissions
            .deposit_month(month(m, E1))
            .await
            .unwrap_or_else(|e| panic!("month {m}: {e}"));
    }
    // January again, not as a correction.
    let mut again = month(1, E1);
    again.idempotency_key = "again".into();
    let e = works.emissions.deposit_month(again).await.unwrap_err();
    assert_eq!(
        (e.code(), reason(&e)),
        (Code::AlreadyExists, "MONTH_ALREADY_DEPOSITED".into())
    );

    let may = works
        .emissions
        .get_month(pb::GetMonthRequest {
            account_id: E1,
            year: 2025,
            month: 5,
        })
        .await
        .expect("month")
        .into_inner();
    assert_eq!(may.versions.len(), 1);
    let v = &may.versions[0];
    // Deposited 10 June, within May's 40 days (deadline 10 July).
    assert_eq!((v.deposited, v.late, v.rows.len()), (20250610, false, 10));
    assert_eq!(v.evidence[0].sha256, vec![5u8; 32]);

    works
        .emissions
        .submit_report(pb::SubmitReportRequest {
            idempotency_key: "report".into(),
            account_id: E1,
            year: 2025,
        })
        .await
        .expect("report");
    let report = works
        .emissions
        .get_emissions_report(pb::GetEmissionsReportRequest {
            account_id: E1,
            year: 2025,
        })
        .await
        .expect("report")
        .into_inner();
    // coke 480,000.00 x 28.435 x 0.02942 x 44/12 = 1,472,341.55; bituminous 120,000.00 x
    // 24.000 x 0.02618 x 44/12 = 276,460.80; limestone 60,000.00 x 0.440 = 26,400.00; crude
    // steel -1,200,000.00 x 0.037 = -44,400.00: E_ent = 1,730,802.35 -> 1,730,802 t.
    assert_eq!(
        (report.enterprise_t.as_str(), report.total_t),
        ("1730802.35", 1_730_802)
    );
    assert_eq!(report.guideline, "CETS-AG-03.01-V01-2024");
    let coke = report
        .lines
        .iter()
        .find(|l| l.facility_id == 0 && l.item == "coke")
        .expect("coke line");
    assert_eq!(
        coke.working,
        "480000.00 t x NCV 28.435 GJ/t x CC 0.02942 tC/GJ x 44/12 = 1472341.55"
    );
    // Is = (147,097.76 + 184,042.69) / 1,080,000.00 = 0.306611... -> 0.3066
    assert_eq!(report.steel_intensity, "0.3066");
    assert_eq!(report.confirmed_seq, 0);

    // Only the entity itself submits; the verifier confirms.
    let e = verifier
        .emissions
        .submit_report(pb::SubmitReportRequest {
            idempotency_key: "v".into(),
            account_id: E1,
            year: 2025,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "ROLE_NOT_ALLOWED");
    verifier
        .emissions
        .confirm_report(pb::ConfirmReportRequest {
            idempotency_key: "confirm".into(),
            account_id: E1,
            year: 2025,
        })
        .await
        .expect("confirm");
    let standing = ministry
        .compliance
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .expect("compliance")
        .into_inner();
    assert!(standing.verified);
    assert_eq!(standing.obligation_t, 1_730_802);
    server.stop().expect("stop");
}

const PLAN_TOML: &str = r#"
[[facilities]]
id = 2
name = "sinter plant"
kind = "sintering"

[[facilities]]
id = 3
name = "BF 1"
kind = "ironmaking"

[[meters]]
id = "WB-01"
measures = "coal weighbridge"
calibrated = 20240105

[[measured]]
parameter = "ncv"
fuel = "bituminous"
"#;

const MONTH_CSV: &str = "record,facility_id,role,item,quantity,evidence
row,0,consumed,coke,40000.00,
row,0,consumed,bituminous,10000.00,
row,0,consumed,limestone,5000.00,
row,0,produced,crude_steel,100000.00,
row,2,consumed,coke,5000.00,
row,2,produced,sinter,120000.00,
row,3,consumed,coke,30000.00,
row,3,consumed,bituminous,10000.00,
row,3,produced,bfg,12000.00,
row,3,produced,hot_metal,90000.00,
reading,0,ncv,bituminous,24.000,CNAS L1234
stoppage,2,,,3,
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_energy_manager_deposits_from_the_command_line() {
    use gateway::ctl::emissions::EmissionsCmd;
    use gateway::ctl::{Connection, Ctl, run};
    let now = Arc::new(AtomicU64::new(tenth_after(0) * 1_000_000_000));
    let server = TestServer::start_at(now.clone());
    let as_ = |name: &str| Connection {
        addr: format!("http://{}", server.addr),
        token: token(name).to_string(),
    };
    let (ministry, works, verifier) = (as_("ministry"), as_("e1"), as_("verifier"));
    let mut c = Clients::new(server.channel().await, Some(token("ministry")));
    c.compliance
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "e".into(),
            rows: vec![steel_works()],
        })
        .await
        .expect("entities");
    let plan_toml = std::fs::read_to_string(plan_path("2025-draft.toml")).expect("plan file");
    c.compliance
        .register_plan(pb::RegisterPlanRequest {
            idempotency_key: "p".into(),
            plan_toml,
        })
        .await
        .expect("plan");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let cmd = |command| Ctl::Emissions { command };
    let out = run(
        &ministry,
        &cmd(EmissionsCmd::Factors {
            year: 2025,
            file: plan_path("../factors/steel-2024.toml"),
        }),
    )
    .await
    .expect("factors");
    assert!(out.starts_with("factors "), "{out}");
    let out = run(
        &works,
        &cmd(EmissionsCmd::Plan {
            account: E1,
            year: 2025,
            file: file("plan.toml", PLAN_TOML),
        }),
    )
    .await
    .expect("plan");
    assert!(
        out.starts_with("monitoring plan 2025 of account 201 set: 2 facilities, 1 meters"),
        "{out}"
    );
    let month_csv = file("month.csv", MONTH_CSV);
    let ledger = file("ledger.pdf", "fuel ledger, January");
    for m in 1..=12u32 {
        // March is deposited on 10 June: past its deadline of 10 May.
        let at = if m == 3 {
            tenth_after(5)
        } else {
            tenth_after(m)
        };
        now.store(at * 1_000_000_000, Ordering::SeqCst);
        let deposit = EmissionsCmd::Deposit {
            account: E1,
            year: 2025,
            month: m,
            file: month_csv.clone(),
            evidence: vec![format!("fuel ledger={}", ledger.display())],
            correction: false,
        };
        let out = run(&works, &cmd(deposit))
            .await
            .unwrap_or_else(|e| panic!("month {m}: {e}"));
        assert!(
            out.starts_with(&format!(
                "2025-{m:02} of account 201 deposited: 10 rows, version 1"
            )),
            "{out}"
        );
        // The weighbridge was calibrated 2024-01-05: past its 12 months from January's end.
        assert!(
            out.contains("meters past their 12-month calibration: WB-01"),
            "{out}"
        );
        assert_eq!(out.contains("late:"), m == 3, "{out}");
    }
    // A bad file names its line and column.
    let bad = file(
        "bad.csv",
        "record,facility_id,role,item,quantity,evidence\nrow,x,consumed,coke,1.00,\n",
    );
    let deposit = EmissionsCmd::Deposit {
        account: E1,
        year: 2025,
        month: 1,
        file: bad,
        evidence: vec![],
        correction: true,
    };
    let e = run(&works, &cmd(deposit)).await.unwrap_err();
    assert!(
        e.ends_with("bad.csv: line 2, column 2: a facility id (0: the enterprise)"),
        "{e}"
    );

    let out = run(
        &works,
        &cmd(EmissionsCmd::Submit {
            account: E1,
            year: 2025,
        }),
    )
    .await
    .expect("submit");
    assert!(
        out.starts_with("2025 emissions report of account 201 submitted: 1,730,802 t"),
        "{out}"
    );
    let out = run(
        &verifier,
        &cmd(EmissionsCmd::Confirm {
            account: E1,
            year: 2025,
        }),
    )
    .await
    .expect("confirm");
    assert!(out.contains("confirmed into the compliance cycle"), "{out}");
    let text = run(
        &verifier,
        &cmd(EmissionsCmd::Report {
            account: E1,
            year: 2025,
            out: None,
        }),
    )
    .await
    .expect("report");
    assert!(
        text.contains("facility 3 BF 1 (ironmaking): 147097.76 t, product 1080000.00 t"),
        "{text}"
    );
    assert!(
        text.contains(
            "enterprise 1730802.35 t -> total 1,730,802 t (CO2 1,730,802, PFCs 0 t CO2e)"
        ),
        "{text}"
    );
    let csv_path = dir.path().join("report.csv");
    run(
        &verifier,
        &cmd(EmissionsCmd::Report {
            account: E1,
            year: 2025,
            out: Some(csv_path.clone()),
        }),
    )
    .await
    .expect("csv");
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    assert!(
        csv.starts_with(
            "facility_id,term,item,emissions_t,working\n0,net fossil fuel,bituminous,276460.80,"
        ),
        "{csv}"
    );
    assert!(csv.ends_with(",total,,1730802,\n"), "{csv}");
    server.stop().expect("stop");
}
