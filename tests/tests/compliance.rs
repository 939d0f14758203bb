//! The compliance cycle over gRPC, as the ministry, a verifier and a covered entity use it:
//! entities loaded in bulk (bad rows named), the plan registered from its file, the 2024
//! base, pre-allocation, activity and verification, the true-up (a re-run changes nothing),
//! trading that sets the price, surrender under the plan's rules, year close priced from the
//! exchange's own bars, totals, pages and CSV reports; the books reconcile afterwards.

use proto::v1 as pb;
use tests::*;
use tonic::Code;

const CEMENT_A: u64 = 401;
const CEMENT_B: u64 = 402;

fn plan_toml() -> String {
    let path = plan_path("2025-draft.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entities() -> Vec<pb::EntityRow> {
    let line = |id| pb::Facility {
        facility_id: id,
        kind: pb::FacilityKind::ProductLine as i32,
        product_line: "clinker".into(),
        process: pb::IndustrialProcess::ClinkerLine as i32,
        ..Default::default()
    };
    vec![
        pb::EntityRow {
            account_id: E1,
            name: "Power Plant One".into(),
            sector: pb::Sector::Power as i32,
            province: "Hebei".into(),
            differentiated: false,
            facilities: vec![pb::Facility {
                facility_id: 1,
                kind: pb::FacilityKind::GeneratingUnit as i32,
                fuel: pb::Fuel::Coal as i32,
                capacity_mw: 600,
                product_line: String::new(),
                process: 0,
            }],
            // 9,1,1,3,0,1,0,0,M,A,0,0,0,0,0,0,1 weighted 1,3,9,27,19,26,16,17,20,29,...,28:
            // 9 + 3 + 9 + 81 + 26 + 420 + 290 + 28 = 866, 866 mod 31 = 29, check 31 - 29 = 2.
            credit_code: "91130100MA00000012".into(),
        },
        pb::EntityRow {
            account_id: CEMENT_A,
            name: "Cement A".into(),
            sector: pb::Sector::Cement as i32,
            province: "Anhui".into(),
            differentiated: false,
            facilities: vec![line(1)],
            // 9 + 3 + 27 + 108 + 26 + 420 + 290 + 2 x 28 = 939, mod 31 = 9, 31 - 9 = 22: N.
            credit_code: "91340100MA0000002N".into(),
        },
        pb::EntityRow {
            account_id: CEMENT_B,
            name: "Cement B".into(),
            sector: pb::Sector::Cement as i32,
            province: "Anhui".into(),
            differentiated: true,
            facilities: vec![line(1)],
            // 939 + 28 = 967, mod 31 = 6, 31 - 6 = 25: R.
            credit_code: "91340100MA0000003R".into(),
        },
    ]
}

fn verified(rows: &[(u64, u64)]) -> Vec<pb::VerifiedRow> {
    rows.iter()
        .map(|&(account_id, co2_t)| pb::VerifiedRow {
            account_id,
            co2_t,
            pfc_co2e_t: 0,
        })
        .collect()
}

fn run(key: &str, kind: pb::RunKind) -> pb::RunAllocationRequest {
    pb::RunAllocationRequest {
        idempotency_key: key.into(),
        year: 2025,
        plan_version: "2025.draft".into(),
        kind: kind as i32,
    }
}

fn surrender(key: &str, quantity_t: u64) -> pb::SurrenderRequest {
    pb::SurrenderRequest {
        idempotency_key: key.into(),
        account_id: E1,
        unit: "CEA2025".into(),
        quantity_t,
        year: 2025,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_year_over_grpc() {
    // The registry's clock: 2026-12-15 10:00 Beijing (02:00 UTC), before 2025's surrender
    // deadline of 2026-12-31.
    let now_ns = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
        1_797_300_000 * 1_000_000_000,
    ));
    let server = TestServer::start_at(now_ns.clone());
    open_market(&server).await;
    let ministry = Clients::of(&server, "ministry").await;
    let verifier = Clients::of(&server, "verifier").await;
    let entity = Clients::of(&server, "e1").await;
    let mut c = ministry.compliance.clone();

    // A bad row is named and nothing is loaded.
    let mut bad = entities();
    bad[1].facilities[0].kind = pb::FacilityKind::GeneratingUnit as i32;
    bad[1].facilities[0].fuel = pb::Fuel::Coal as i32;
    bad[1].facilities[0].capacity_mw = 300;
    let e = c
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities-bad".into(),
            rows: bad,
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("bad row accepted"));
    assert_eq!(
        (e.code(), reason(&e).as_str(), field(&e).as_str()),
        (
            Code::InvalidArgument,
            "INVALID_ROW",
            "rows[1].facility_kind"
        )
    );
    // A wrong check character is named.
    let mut bad = entities();
    bad[0].credit_code = "91130100MA00000013".into();
    let e = c
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities-bad-code".into(),
            rows: bad,
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("bad code accepted"));
    assert_eq!(
        (e.code(), reason(&e).as_str(), field(&e).as_str()),
        (Code::InvalidArgument, "INVALID_ROW", "rows[0].credit_code")
    );
    let e = c
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: CEMENT_A,
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("loaded anyway"));
    assert_eq!(e.code(), Code::NotFound);
    c.load_entities(pb::LoadEntitiesRequest {
        idempotency_key: "entities".into(),
        rows: entities(),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // One account per legal entity: Cement A's code on a new account is refused.
    let mut second = entities()[1].clone();
    second.account_id = 403;
    let e = c
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities-second-account".into(),
            rows: vec![entities()[0].clone(), entities()[2].clone(), second],
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("second account for one legal entity"));
    assert_eq!(
        (e.code(), reason(&e).as_str(), field(&e).as_str()),
        (
            Code::AlreadyExists,
            "CREDIT_CODE_TAKEN",
            "rows[2].credit_code"
        )
    );

    // The plan from its file; a bad plan names its key.
    let e = c
        .register_plan(pb::RegisterPlanRequest {
            idempotency_key: "plan-bad".into(),
            plan_toml: plan_toml().replace("penalty_multiple = \"5\"", "penalty_multiple = \"11\""),
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("bad plan accepted"));
    assert_eq!(
        (reason(&e).as_str(), field(&e).as_str()),
        ("INVALID_PLAN", "plan_toml.penalty_multiple")
    );
    c.register_plan(pb::RegisterPlanRequest {
        idempotency_key: "plan-2025".into(),
        plan_toml: plan_toml(),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let plan = c
        .get_plan(pb::GetPlanRequest {
            year: 2025,
            plan_version: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(plan.versions, vec!["2025.draft".to_string()]);
    assert!(plan.plan_toml.contains("coal_large = \"0.7902\""));

    // 2024 verified emissions (the base), then pre-allocation by the plan's per-sector
    // shares: power 50% of 2,500,000 = 1,250,000; cement 70%: 700,000 to A, 280,000 held
    // for the differentiated B; 2,230,000 in all.
    c.record_verified(pb::RecordVerifiedRequest {
        idempotency_key: "verified-2024".into(),
        year: 2024,
        rows: verified(&[(E1, 2_500_000), (CEMENT_A, 1_000_000), (CEMENT_B, 400_000)]),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let pre = c
        .run_allocation(run("pre-2025", pb::RunKind::PreAllocation))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (pre.entities, pre.allocated_t, pre.held_t),
        (3, 2_230_000, 280_000)
    );
    assert!(!pre.unchanged && pre.journal_sequence > 0);
    // Surrender before verification is refused.
    let e = entity
        .compliance
        .clone()
        .surrender(surrender("early", 1))
        .await
        .err()
        .unwrap_or_else(|| panic!("surrendered before verification"));
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::FailedPrecondition, "EMISSIONS_NOT_ENTERED")
    );

    // Activity (a decimal string error names its row and field), verification, true-up.
    let power = pb::ActivityRow {
        account_id: E1,
        facility_id: 1,
        electricity_mwh: "3100000".into(),
        heat_gj: "100000".into(),
        load_factor: "0.55".into(),
        emissions_t: "2700000".into(),
        ..Default::default()
    };
    // One clinker line each: its clinker and its verified emissions (the entity's).
    let output = |account_id, output_t: &str| pb::ActivityRow {
        account_id,
        facility_id: 1,
        output_t: output_t.into(),
        emissions_t: if account_id == CEMENT_A {
            "1000000"
        } else {
            "420000"
        }
        .into(),
        ..Default::default()
    };
    let mut bad = power.clone();
    bad.load_factor = "0,55".into();
    let e = c
        .load_activity(pb::LoadActivityRequest {
            idempotency_key: "activity-bad".into(),
            year: 2025,
            rows: vec![output(CEMENT_A, "1150000"), bad],
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("bad decimal accepted"));
    assert_eq!(
        (reason(&e).as_str(), field(&e).as_str()),
        ("INVALID_ROW", "rows[1].load_factor")
    );
    c.load_activity(pb::LoadActivityRequest {
        idempotency_key: "activity-2025".into(),
        year: 2025,
        rows: vec![
            power,
            output(CEMENT_A, "1150000"),
            output(CEMENT_B, "500000"),
        ],
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    verifier
        .compliance
        .clone()
        .record_verified(pb::RecordVerifiedRequest {
            idempotency_key: "verified-2025".into(),
            year: 2025,
            rows: verified(&[(E1, 2_700_000), (CEMENT_A, 1_000_000), (CEMENT_B, 420_000)]),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let trued = c
        .run_allocation(run("true-up-2025", pb::RunKind::TrueUp))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(trued.entities, 3);
    let again = c
        .run_allocation(run("true-up-2025-again", pb::RunKind::TrueUp))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(again.unchanged && again.journal_sequence == 0, "{again:?}");
    assert_eq!(again.issued_t, trued.issued_t);
    let e1 = c
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    // The 2025 draft: at F = 55% (>= 50%) Ff = 1; 3,100,000 x 0.7902 = 2,449,620 and
    // 100,000 x 0.1027 = 10,270, each floored: 2,459,890 t. Shortfall rate
    // (2,700,000 - 2,459,890) / 2,700,000 = 0.0889 -> 0.09, under 0.20: no floor.
    assert_eq!(
        (e1.allocated_t, e1.method.as_str(), e1.plan_version.as_str()),
        (2_459_890, "benchmark", "2025.draft")
    );
    assert!(e1.explanation.contains("0.7902"), "{}", e1.explanation);
    assert_eq!(e1.pre_allocated_t, 1_250_000);
    // The cement sector balances to its verified total (flooring loses under 1 t each).
    let mut cement = Vec::new();
    for account_id in [CEMENT_A, CEMENT_B] {
        let row = c
            .get_compliance(pb::GetComplianceRequest {
                year: 2025,
                account_id,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        cement.push(row.allocated_t);
    }
    let sum: u64 = cement.iter().sum();
    assert!(sum <= 1_420_000 && 1_420_000 - sum < 2, "{cement:?}");
    let mut auditor = Clients::of(&server, "audit").await;
    let e1_holding = cea2025_holding(&mut auditor, E1).await;
    // 50,003 t left from the market's opening allocation, plus the 2025 allocation.
    assert_eq!(
        e1_holding.registry_available_t,
        50_003 + 2_459_890,
        "registry-available after the true-up"
    );

    // Trading in November sets the price the penalty uses.
    let mut m1 = Clients::of(&server, "m1").await.trading;
    let mut m2 = Clients::of(&server, "m2").await.trading;
    for (n, (price, q)) in [(8_600i64, 1_000u64), (8_700, 500)].into_iter().enumerate() {
        m1.place_order(limit(M1, 500 + n as u64, pb::Side::Sell, price, q))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        m2.place_order(limit(M2, 600 + n as u64, pb::Side::Buy, price, q))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    Clients::of(&server, "ops")
        .await
        .admin
        .close_trading_day(pb::CloseTradingDayRequest {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Surrender: 2,500,000 of the 2,700,000 owed.
    entity
        .compliance
        .clone()
        .surrender(surrender("e1-surrender", 2_500_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = entity
        .compliance
        .clone()
        .surrender(pb::SurrenderRequest {
            account_id: CEMENT_A,
            ..surrender("not-mine", 1)
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("surrendered for another entity"));
    assert_eq!(e.code(), Code::PermissionDenied);

    // The deadline is enforced: on 2026-12-15 the year does not close without a reason, and
    // a blank reason is not a reason.
    let close = |key: &str, force_reason: &str| pb::CloseYearRequest {
        idempotency_key: key.into(),
        year: 2025,
        force_reason: force_reason.into(),
    };
    let e = c
        .close_year(close("close-early", ""))
        .await
        .err()
        .unwrap_or_else(|| panic!("closed before the deadline"));
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "BEFORE_DEADLINE");
    let e = c
        .close_year(close("close-blank", "   "))
        .await
        .err()
        .unwrap_or_else(|| panic!("closed on a blank reason"));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field(&e), "force_reason");

    // 2027-01-04 09:30 Beijing (01:30 UTC): past the deadline, the close goes through.
    now_ns.store(
        1_799_026_200 * 1_000_000_000,
        std::sync::atomic::Ordering::SeqCst,
    );
    // Close: VWAP of November = (1,000 x 86.00 + 500 x 87.00) / 1,500 = 86.33 yuan.
    let closed = c
        .close_year(close("close-2025", ""))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (closed.close_date, closed.force_reason.as_str()),
        (20_270_104, "")
    );
    assert_eq!(
        (closed.average_price_fen, closed.price_month),
        (8_633, 202_611)
    );
    assert_eq!(closed.entities, 3);
    let e1 = c
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (e1.shortfall_t, e1.status_code.as_str(), e1.penalty_fen),
        (200_000, "SHORT", 200_000 * 5 * 8_633)
    );
    assert_eq!(e1.deduction_owed_t, 200_000);
    let b = c
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: CEMENT_B,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        b.forced_t,
        cement[1].min(420_000),
        "forced from what was held"
    );
    let e = entity
        .compliance
        .clone()
        .surrender(surrender("late", 1))
        .await
        .err()
        .unwrap_or_else(|| panic!("surrendered after close"));
    assert_eq!(reason(&e), "YEAR_CLOSED");

    // Totals, pages and reports agree with the entities.
    let totals = c
        .get_totals(pb::GetTotalsRequest {
            year: 2025,
            by: pb::TotalsBy::Sector as i32,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .rows;
    let power_totals = totals
        .iter()
        .find(|t| t.key == "power")
        .unwrap_or_else(|| panic!("{totals:?}"));
    assert_eq!(
        (
            power_totals.shortfall_t,
            power_totals.penalty_fen,
            power_totals.short
        ),
        (200_000, 200_000 * 5 * 8_633, 1)
    );
    let page = c
        .list_compliance(pb::ListComplianceRequest {
            year: 2025,
            order: pb::ComplianceOrder::Shortfall as i32,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((page.total, page.rows.len()), (3, 1));
    assert_eq!(
        page.rows[0].account_id, CEMENT_A,
        "1,000,000 t short: first"
    );
    let cement_total: u64 = totals
        .iter()
        .filter(|t| t.key == "cement")
        .map(|t| t.shortfall_t)
        .sum();
    assert_eq!(cement_total, 1_000_000 + (420_000 - b.forced_t));
    let mut stream = c
        .export_report(pb::ExportReportRequest {
            year: 2025,
            report: pb::Report::Status as i32,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap_or_else(|e| panic!("{e}")) {
        csv.extend(chunk.csv);
    }
    let csv = String::from_utf8(csv).unwrap_or_else(|e| panic!("{e}"));
    let line = format!(
        "2025,{E1},Power Plant One,power,Hebei,2700000,2500000,0,200000,SHORT,true,0,{},200000",
        200_000i64 * 5 * 8_633
    );
    assert!(csv.lines().any(|l| l == line), "{csv}");

    // Both ledgers still agree.
    assert_reconciled(&mut Clients::of(&server, "audit").await).await;
}
