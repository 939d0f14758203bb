//! Verification over gRPC, as its users work it: the ministry sets the year's rules, Hebei's
//! authority registers the bodies, records a consultancy and assigns a body to its steel
//! works' report; the body's staff review, raise two findings (one corrected by the works,
//! one estimated conservatively) and conclude; Hebei notifies (the objection window counted
//! in working days past a calendar holiday), the true-up allocates the verified figure, the
//! works objects, Hebei upholds, the body re-reviews and the changed conclusion claws back
//! to the tonne. Each party outside its lane is refused with its code and nothing changes.
//! Figures worked by hand in the registry's verification test and again below.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::v1 as pb;
use tests::steel::*;
use tests::*;
use tonic::Code;

const YEAR: u32 = 2025;
/// A cement works in Shanxi and an aluminium smelter in Hebei that never report.
const SHANXI_CEMENT: u64 = 202;
const HEBEI_SMELTER: u64 = 203;
const CONSULTANCY: u32 = 2;

/// 02:00 UTC (10:00 Beijing) on `date` (`YYYYMMDD`), nanoseconds.
fn at(date: u32) -> u64 {
    let days =
        server::calendar::days_from_civil(i64::from(date / 10_000), date / 100 % 100, date % 100);
    (days as u64 * 86_400 + 2 * 3_600) * 1_000_000_000
}

fn entity(
    account: u64,
    sector: pb::Sector,
    province: &str,
    process: pb::IndustrialProcess,
) -> pb::EntityRow {
    pb::EntityRow {
        account_id: account,
        name: format!("works {account}"),
        sector: sector as i32,
        province: province.into(),
        differentiated: false,
        facilities: vec![pb::Facility {
            facility_id: 1,
            kind: pb::FacilityKind::ProductLine as i32,
            fuel: 0,
            capacity_mw: 0,
            product_line: "line 1".into(),
            process: process as i32,
        }],
        credit_code: String::new(),
    }
}

/// The 2024 plan's method (industry allocated its verified emissions) for 2025, so the
/// allocation is the verified figure to the tonne.
fn plan_2025() -> String {
    let text = std::fs::read_to_string(plan_path("2024.toml")).expect("plan file");
    text.replacen("\nyear = 2024\n", "\nyear = 2025\n", 1)
        .replacen("version = \"2024.1\"", "version = \"2025.verified\"", 1)
        .replacen("deadline = 20251231", "deadline = 20261231", 1)
}

struct Market {
    now: Arc<AtomicU64>,
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Market {
    fn set(&self, date: u32) {
        self.now.store(at(date), Ordering::SeqCst);
    }

    async fn of(&self, who: &str) -> Clients {
        Clients::new(self.server.channel().await, Some(token(who)))
    }
}

/// The market up to the works' submitted 2025 report (1,730,802 t) and the year's rules;
/// Tuesday 19 May 2026 is a holiday of the trading calendar.
async fn set_up() -> Market {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = test_config(dir.path());
    config.calendar.holidays = vec![20260519];
    config.dashboard_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let now = Arc::new(AtomicU64::new(at(20250110)));
    let clock = {
        let now = now.clone();
        server::scheduler::Clock::from_fn(move || now.load(Ordering::SeqCst))
    };
    let server = TestServer::start_with_clock(config, clock);
    let market = Market {
        now,
        server,
        _dir: dir,
    };
    let mut ministry = market.of("ministry").await;
    ministry
        .registry
        .open_account(pb::OpenAccountRequest {
            idempotency_key: "open-authority".into(),
            account_id: AUTHORITY,
            account_type: pb::AccountType::NationalAuthority as i32,
            sector: pb::Sector::Unspecified as i32,
            name: "Ministry".into(),
        })
        .await
        .expect("authority account");
    let mut ops = market.of("ops").await;
    let unit = pb::CreateInstrumentRequest {
        vintage: 2025,
        reference_price_fen: 8_500,
        ..Default::default()
    };
    ops.admin.create_instrument(unit).await.expect("CEA2025");
    let rows = vec![
        steel_works(),
        entity(
            SHANXI_CEMENT,
            pb::Sector::Cement,
            "Shanxi",
            pb::IndustrialProcess::ClinkerLine,
        ),
        entity(
            HEBEI_SMELTER,
            pb::Sector::Aluminium,
            "Hebei",
            pb::IndustrialProcess::Electrolysis,
        ),
    ];
    let c = &mut ministry.compliance;
    c.load_entities(pb::LoadEntitiesRequest {
        idempotency_key: "entities".into(),
        rows,
    })
    .await
    .expect("entities");
    c.register_plan(pb::RegisterPlanRequest {
        idempotency_key: "plan".into(),
        plan_toml: plan_2025(),
    })
    .await
    .expect("plan");
    let factors =
        std::fs::read_to_string(plan_path("../factors/steel-2024.toml")).expect("factors file");
    ministry
        .emissions
        .register_factors(pb::RegisterFactorsRequest {
            idempotency_key: "factors".into(),
            year: YEAR,
            factors_toml: factors,
        })
        .await
        .expect("factors");
    let rules = std::fs::read_to_string(plan_path("../verification/2025.toml")).expect("rules");
    ministry
        .verification
        .register_verification_rules(pb::RegisterVerificationRulesRequest {
            idempotency_key: "rules".into(),
            rules_toml: rules,
        })
        .await
        .expect("rules");
    let mut works = market.of("e1").await;
    works
        .emissions
        .set_monitoring_plan(monitoring_plan())
        .await
        .expect("monitoring plan");
    for m in 1..=12 {
        market
            .now
            .store(tenth_after(m) * 1_000_000_000, Ordering::SeqCst);
        works
            .emissions
            .deposit_month(month(m, E1))
            .await
            .expect("month");
    }
    submit(&mut works, "report").await;
    market
}

async fn submit(works: &mut Clients, key: &str) {
    works
        .emissions
        .submit_report(pb::SubmitReportRequest {
            idempotency_key: key.into(),
            account_id: E1,
            year: YEAR,
        })
        .await
        .expect("report");
}

fn assign(key: &str, account: u64, body: u32) -> pb::AssignBodyRequest {
    pb::AssignBodyRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: account,
        body_id: body,
    }
}

fn review(key: &str, stage: &str) -> pb::ReviewStepRequest {
    pb::ReviewStepRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: E1,
        stage: stage.into(),
    }
}

fn finding(key: &str, month: u32, item: &str, text: &str) -> pb::RaiseFindingRequest {
    pb::RaiseFindingRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: E1,
        month,
        role: "consumed".into(),
        item: item.into(),
        text: text.into(),
        ..pb::RaiseFindingRequest::default()
    }
}

fn resolve(key: &str, finding_id: u32, estimate: &str) -> pb::ResolveFindingRequest {
    pb::ResolveFindingRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: E1,
        finding_id,
        estimate: estimate.into(),
    }
}

fn conclude(key: &str) -> pb::ConcludeRequest {
    pb::ConcludeRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: E1,
    }
}

fn notify(key: &str) -> pb::NotifyRequest {
    pb::NotifyRequest {
        idempotency_key: key.into(),
        year: YEAR,
        account_id: E1,
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("refused");
    (e.code(), reason(&e))
}

async fn file(c: &mut Clients) -> pb::VerificationFile {
    c.verification
        .get_verification_file(pb::GetVerificationFileRequest {
            year: YEAR,
            account_id: E1,
        })
        .await
        .expect("file")
        .into_inner()
}

async fn holding_2025(c: &mut Clients) -> u64 {
    let h = c
        .registry
        .get_holdings(pb::GetHoldingsRequest { account_id: E1 })
        .await
        .expect("holdings");
    h.into_inner()
        .holdings
        .iter()
        .filter(|h| h.unit == "CEA2025")
        .map(|h| h.registry_available_t)
        .sum()
}

/// The year's verified emissions, and where the figure comes from.
async fn verified_t(c: &mut Clients) -> (u64, String) {
    let r = pb::GetComplianceRequest {
        year: YEAR,
        account_id: E1,
    };
    let c = c
        .compliance
        .get_compliance(r)
        .await
        .expect("compliance")
        .into_inner();
    (c.obligation_t, c.emissions_source)
}

/// Hebei registers the bodies and the consultancy, and assigns CEC: a consultant, another
/// province and a body's staff are refused on the way.
async fn assignment(m: &Market) {
    let mut hebei = m.of("hebei").await;
    for (id, name) in [
        (CEC_BODY, "CEC Verification"),
        (CONSULTANCY, "Hebei Carbon Consulting"),
        (CBD_BODY, "CBD Assurance"),
    ] {
        let r = pb::RegisterBodyRequest {
            idempotency_key: format!("body-{id}"),
            body_id: id,
            name: name.into(),
            credit_code: String::new(),
        };
        hebei.verification.register_body(r).await.expect("body");
    }
    let engagement = pb::RecordEngagementRequest {
        idempotency_key: "consulted".into(),
        year: YEAR,
        account_id: E1,
        body_id: CONSULTANCY,
    };
    hebei
        .verification
        .record_engagement(engagement)
        .await
        .expect("engagement");
    m.set(20260401);
    let r = hebei
        .verification
        .assign_body(assign("a-consultant", E1, CONSULTANCY))
        .await;
    assert_eq!(
        refused(r),
        (Code::FailedPrecondition, "CONSULTANT_CONFLICT".into())
    );
    let mut shanxi = m.of("shanxi").await;
    let r = shanxi
        .verification
        .assign_body(assign("a-shanxi", E1, CEC_BODY))
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "OUTSIDE_JURISDICTION".into())
    );
    let mut cec = m.of("cec").await;
    let r = cec
        .verification
        .assign_body(assign("a-self", E1, CEC_BODY))
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".into())
    );
    hebei
        .verification
        .assign_body(assign("assign", E1, CEC_BODY))
        .await
        .expect("assign");
}

/// The review's first round: the works corrects June's limestone, the body estimates
/// September's coke; the works cannot conclude for itself, CBD cannot act on CEC's file.
async fn first_round(m: &Market) {
    let (mut cec, mut cbd, mut works) = (m.of("cec").await, m.of("cbd").await, m.of("e1").await);
    m.set(20260410);
    let r = cbd
        .verification
        .review_step(review("cbd-review", "document_review"))
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "BODY_NOT_ASSIGNED".into())
    );
    let r = cec
        .verification
        .review_step(review("early", "on_site"))
        .await;
    assert_eq!(
        refused(r),
        (Code::FailedPrecondition, "VERIFICATION_STAGE".into())
    );
    cec.verification
        .review_step(review("documents", "document_review"))
        .await
        .expect("review");
    m.set(20260412);
    cec.verification
        .raise_finding(finding("f1", 6, "limestone", "weighbridge slips: 5,500 t"))
        .await
        .expect("f1");
    let r = cec
        .verification
        .resolve_finding(resolve("f1-early", 1, ""))
        .await;
    assert_eq!(
        refused(r),
        (Code::FailedPrecondition, "FINDING_NOT_CORRECTED".into())
    );
    m.set(20260415);
    let mut june = month(6, E1);
    june.idempotency_key = "june-corrected".into();
    june.correction = true;
    june.rows[2].quantity = "5500.00".into();
    works
        .emissions
        .deposit_month(june)
        .await
        .expect("correction");
    submit(&mut works, "report-2").await;
    m.set(20260416);
    cec.verification
        .resolve_finding(resolve("f1-corrected", 1, ""))
        .await
        .expect("corrected");
    m.set(20260420);
    cec.verification
        .review_step(review("on-site", "on_site"))
        .await
        .expect("on site");
    m.set(20260421);
    cec.verification
        .raise_finding(finding("f2", 9, "coke", "invoices: 41,000 t of coke"))
        .await
        .expect("f2");
    let r = cec.verification.conclude(conclude("open")).await;
    assert_eq!(
        refused(r),
        (Code::FailedPrecondition, "FINDINGS_OPEN".into())
    );
    let r = cec
        .verification
        .resolve_finding(resolve("f2-bad", 2, "4.1e4"))
        .await;
    assert_eq!(refused(r), (Code::InvalidArgument, "INVALID_FIELD".into()));
    m.set(20260505);
    cec.verification
        .resolve_finding(resolve("f2-estimated", 2, "41000.00"))
        .await
        .expect("estimated");
    // The entity approving its own conclusion, and another body's staff.
    let r = works.verification.conclude(conclude("self")).await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".into())
    );
    let r = cbd.verification.conclude(conclude("cbd")).await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "BODY_NOT_ASSIGNED".into())
    );
    m.set(20260510);
    cec.verification
        .conclude(conclude("conclude"))
        .await
        .expect("conclude");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steel_works_verified_through_its_province_and_body_with_an_upheld_objection() {
    let m = set_up().await;
    assignment(&m).await;
    first_round(&m).await;
    let (mut hebei, mut works, mut cec) =
        (m.of("hebei").await, m.of("e1").await, m.of("cec").await);
    let mut ministry = m.of("ministry").await;

    // The resubmitted report (version 2): coke 480,000.00 x 28.435 x 0.02942 x 44/12 =
    // 1,472,341.55; bituminous 276,460.80; limestone (11 x 5,000 + 5,500) = 60,500.00 x
    // 0.440 = 26,620.00; crude steel -44,400.00: 1,731,022.35 -> 1,731,022 t reported.
    // The conclusion with September's coke at 41,000.00 (481,000.00 for the year):
    // 481,000.00 x 28.435 x 0.02942 x 44/12 = 1,475,408.93; E = 1,475,408.93 + 276,460.80
    // + 26,620.00 - 44,400.00 = 1,734,089.73 -> 1,734,090 t.
    let f = file(&mut hebei).await;
    assert_eq!(
        (f.stage.as_str(), f.body_id, f.body_name.as_str()),
        ("concluded", CEC_BODY, "CEC Verification")
    );
    let c = &f.conclusions[0];
    assert_eq!(
        (c.reported_t, c.total_t, c.report_version),
        (1_731_022, 1_734_090, 2)
    );
    assert_eq!(
        (
            f.findings[0].resolution.as_str(),
            f.findings[0].report_version
        ),
        ("corrected", 2)
    );
    assert_eq!(
        (
            f.findings[1].resolution.as_str(),
            f.findings[1].estimate.as_str()
        ),
        ("estimated", "41000.00")
    );
    assert_eq!(f.findings[1].target, "coke consumed (enterprise)");

    // Notified Friday 15 May 2026. Seven working days, Tuesday 19 May a holiday: 18, 20,
    // 21, 22, 25, 26, 27 -> the window closes Wednesday 27 May.
    m.set(20260515);
    let mut shanxi = m.of("shanxi").await;
    let r = shanxi.verification.notify(notify("n-shanxi")).await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "OUTSIDE_JURISDICTION".into())
    );
    hebei
        .verification
        .notify(notify("notify"))
        .await
        .expect("notify");
    let f = file(&mut works).await;
    assert_eq!(
        (f.stage.as_str(), f.notified, f.objection_until),
        ("notified", 20260515, 20260527)
    );
    assert_eq!(
        verified_t(&mut ministry).await,
        (1_734_090, "verification".to_string())
    );
    let run = pb::RunAllocationRequest {
        idempotency_key: "true-up".into(),
        year: YEAR,
        plan_version: "2025.verified".into(),
        kind: pb::RunKind::TrueUp as i32,
    };
    ministry
        .compliance
        .run_allocation(run)
        .await
        .expect("true-up");
    assert_eq!(holding_2025(&mut works).await, 1_734_090);

    // The works objects on Wednesday 20 May; the decision is due 10 working days on (21,
    // 22, 25, 26, 27, 28, 29 May, 1, 2, 3 June: 3 June); Hebei upholds on 27 May.
    m.set(20260520);
    let objection = pb::ObjectRequest {
        idempotency_key: "object".into(),
        year: YEAR,
        account_id: E1,
        reason: "500 t of September's coke went to the sinter plant".into(),
    };
    let mut other = m.of("m1").await;
    let r = other.verification.object(objection.clone()).await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".into())
    );
    works.verification.object(objection).await.expect("object");
    assert_eq!(file(&mut cec).await.decide_by, 20260603);
    m.set(20260527);
    let decision = pb::DecideObjectionRequest {
        idempotency_key: "decide".into(),
        year: YEAR,
        account_id: E1,
        upheld: true,
        reason: "the yard's 1,000 t: 500 t are the sinter plant's".into(),
    };
    hebei
        .verification
        .decide_objection(decision)
        .await
        .expect("decide");

    // The re-review estimates September's coke at 40,500.00 (480,500.00 for the year):
    // 480,500.00 x 28.435 x 0.02942 x 44/12 = 1,473,875.24; E = 1,473,875.24 + 276,460.80
    // + 26,620.00 - 44,400.00 = 1,732,556.04 -> 1,732,556 t.
    m.set(20260528);
    cec.verification
        .raise_finding(finding("f3", 9, "coke", "re-review: 40,500 t"))
        .await
        .expect("f3");
    cec.verification
        .resolve_finding(resolve("f3-estimated", 3, "40500.00"))
        .await
        .expect("f3 estimated");
    m.set(20260601);
    cec.verification
        .conclude(conclude("conclude-2"))
        .await
        .expect("conclude 2");
    m.set(20260603);
    hebei
        .verification
        .notify(notify("notify-2"))
        .await
        .expect("notify 2");
    // After allocation: the true-up re-ran in the same transaction and clawed back
    // 1,734,090 - 1,732,556 = 1,534 t.
    assert_eq!(
        verified_t(&mut ministry).await,
        (1_732_556, "verification".to_string())
    );
    assert_eq!(holding_2025(&mut works).await, 1_732_556);
    let f = file(&mut works).await;
    assert_eq!(
        (f.round, f.conclusions.len(), f.decision.as_str(), f.late),
        (2, 2, "upheld", false)
    );
    let steps: Vec<(&str, &str)> = f
        .steps
        .iter()
        .map(|s| (s.what.as_str(), s.actor_name.as_str()))
        .collect();
    assert_eq!(steps.first().map(|s| s.1), Some("hebei"));
    assert!(
        steps.iter().any(|s| s.1 == "cec") && steps.iter().any(|s| s.1 == "e1"),
        "{steps:?}"
    );
    queues(&m).await;
    pages(&m);
    m.server.stop().expect("stop");
}

/// A GET of the dashboard with a bearer token: the status and the body.
fn get(m: &Market, path: &str, who: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let web = m.server.dashboard.expect("dashboard");
    let mut s = std::net::TcpStream::connect(web).expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token(who)
    );
    s.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// The dashboard's verification pages show what the API answers, to the same parties: a
/// province its own entities only (the entity page too), a body its own files.
fn pages(m: &Market) {
    let (status, page) = get(m, "/verification?year=2025", "hebei");
    assert_eq!(status, 200);
    assert!(
        page.contains("data-key=queue-total data-value=\"2\""),
        "{page}"
    );
    assert!(
        page.contains("data-key=\"late-no_report\" data-value=\"1\""),
        "{page}"
    );
    assert!(
        page.contains("data-key=\"verified-201\" data-value=\"1732556\""),
        "{page}"
    );
    let (status, page) = get(m, "/verification/201?year=2025", "hebei");
    assert_eq!(status, 200);
    assert!(
        page.contains("data-key=\"verified-round-1\" data-value=\"1734090\""),
        "{page}"
    );
    assert!(
        page.contains("data-key=\"verified-round-2\" data-value=\"1732556\""),
        "{page}"
    );
    assert!(page.contains("estimated 40500.00"), "{page}");
    assert_eq!(get(m, "/verification/201?year=2025", "cec").0, 200);
    assert_eq!(get(m, "/verification/201?year=2025", "e1").0, 200);
    for (path, who, reason) in [
        (
            "/verification/201?year=2025",
            "shanxi",
            "OUTSIDE_JURISDICTION",
        ),
        ("/verification/201?year=2025", "cbd", "BODY_NOT_ASSIGNED"),
        ("/entity/201?year=2025", "shanxi", "OUTSIDE_JURISDICTION"),
        ("/verification?year=2025", "m1", "ROLE_NOT_ALLOWED"),
    ] {
        let (status, page) = get(m, path, who);
        assert_eq!(status, 403, "{path} as {who}");
        assert!(page.contains(reason), "{path} as {who}: {page}");
    }
    assert_eq!(get(m, "/entity/201?year=2025", "hebei").0, 200);
    let (_, shanxi) = get(m, "/verification?year=2025", "shanxi");
    assert!(
        shanxi.contains("data-key=queue-total data-value=\"1\""),
        "{shanxi}"
    );
}

/// Each principal's queue on 3 June 2026: Hebei sees its two entities (the smelter that
/// never reported late, first), Shanxi its cement works, CEC its one assignment, CBD none;
/// the file is read by its parties only.
async fn queues(m: &Market) {
    let list = |who: &'static str| async move {
        let mut c = m.of(who).await;
        let r = pb::ListVerificationQueueRequest {
            year: YEAR,
            ..Default::default()
        };
        let rows = c
            .verification
            .list_verification_queue(r)
            .await
            .expect("queue")
            .into_inner()
            .rows;
        rows.iter()
            .map(|r| (r.account_id, r.state.clone(), r.late))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list("hebei").await,
        vec![
            (HEBEI_SMELTER, "no_report".into(), true),
            (E1, "notified".into(), false)
        ]
    );
    assert_eq!(
        list("shanxi").await,
        vec![(SHANXI_CEMENT, "no_report".into(), true)]
    );
    assert_eq!(list("cec").await, vec![(E1, "notified".into(), false)]);
    assert_eq!(list("cbd").await, vec![]);
    assert_eq!(list("ministry").await.len(), 3);
    let mut shanxi = m.of("shanxi").await;
    let r = shanxi
        .verification
        .get_verification_file(pb::GetVerificationFileRequest {
            year: YEAR,
            account_id: E1,
        })
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "OUTSIDE_JURISDICTION".into())
    );
    let mut cbd = m.of("cbd").await;
    let r = cbd
        .verification
        .get_verification_file(pb::GetVerificationFileRequest {
            year: YEAR,
            account_id: E1,
        })
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "BODY_NOT_ASSIGNED".into())
    );
    let r = shanxi
        .emissions
        .get_emissions_report(pb::GetEmissionsReportRequest {
            year: YEAR,
            account_id: E1,
        })
        .await;
    assert_eq!(
        refused(r),
        (Code::PermissionDenied, "OUTSIDE_JURISDICTION".into())
    );
    let mut hebei = m.of("hebei").await;
    let r = hebei
        .emissions
        .get_emissions_report(pb::GetEmissionsReportRequest {
            year: YEAR,
            account_id: E1,
        })
        .await;
    assert_eq!(
        r.expect("Hebei reads its works' report")
            .into_inner()
            .total_t,
        1_731_022
    );
    // Refusals changed nothing: one finding of the works' file per raise that succeeded.
    assert_eq!(file(&mut hebei).await.findings.len(), 3);
}

/// The same path from the command line (`carbonx ctl verify ...`), without findings: the
/// conclusion is the report's 1,730,802 t.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_and_a_body_verify_from_the_command_line() {
    use gateway::ctl::verify::VerifyCmd;
    use gateway::ctl::{Connection, Ctl, run};
    let m = set_up().await;
    let as_ = |who: &str| Connection {
        addr: format!("http://{}", m.server.addr),
        token: token(who).to_string(),
    };
    let (hebei, cec) = (as_("hebei"), as_("cec"));
    let verify = |command| Ctl::Verify { command };
    let ok = |r: Result<String, String>| r.unwrap_or_else(|e| panic!("{e}"));
    let body = VerifyCmd::Body {
        body: CEC_BODY,
        name: "CEC Verification".into(),
        credit_code: String::new(),
    };
    assert!(ok(run(&hebei, &verify(body)).await).starts_with("body 1 registered (journal entry"));
    m.set(20260401);
    let assign = VerifyCmd::Assign {
        account: E1,
        year: YEAR,
        body: CEC_BODY,
    };
    ok(run(&hebei, &verify(assign)).await);
    for (stage, date) in [("document_review", 20260410), ("on_site", 20260420)] {
        m.set(date);
        let step = VerifyCmd::Review {
            account: E1,
            year: YEAR,
            stage: stage.into(),
        };
        ok(run(&cec, &verify(step)).await);
    }
    // The works may not conclude its own: the CLI prints the refusal's reason.
    let own = VerifyCmd::Conclude {
        account: E1,
        year: YEAR,
    };
    let e = run(&as_("e1"), &verify(own.clone())).await.unwrap_err();
    assert!(e.starts_with("refused: ROLE_NOT_ALLOWED"), "{e}");
    m.set(20260430);
    ok(run(&cec, &verify(own)).await);
    m.set(20260505);
    ok(run(
        &hebei,
        &verify(VerifyCmd::Notify {
            account: E1,
            year: YEAR,
        }),
    )
    .await);
    let file = ok(run(
        &hebei,
        &verify(VerifyCmd::File {
            account: E1,
            year: YEAR,
        }),
    )
    .await);
    assert!(file.starts_with("201 Hebei Iron & Steel (Hebei), 2025: body 1 CEC Verification; stage notified, round 1\n"), "{file}");
    // 7 working days from Tuesday 5 May 2026: 6, 7, 8, 11, 12, 13, 14 -> 14 May.
    assert!(file.contains("conclusion round 1 on 20260430: 1730802 t verified (1730802 t reported, report version 1)"), "{file}");
    assert!(
        file.contains("notified 20260505; objections until 20260514"),
        "{file}"
    );
    assert!(file.contains("20260401 #"), "{file}");
    let queue = ok(run(
        &hebei,
        &verify(VerifyCmd::Queue {
            year: YEAR,
            province: String::new(),
        }),
    )
    .await);
    let lines: Vec<&str> = queue.lines().collect();
    assert_eq!(lines.len(), 3, "{queue}");
    assert!(
        lines[1].starts_with("203 ") && lines[1].ends_with("LATE"),
        "{queue}"
    );
    assert!(
        lines[2].starts_with("201 ") && lines[2].contains("notified"),
        "{queue}"
    );
    m.server.stop().expect("stop");
}
