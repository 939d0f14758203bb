//! CCERs end to end: the authority records two projects' issuances from the CCER registry,
//! hands them to a power plant, and the 2025 surrender takes the one registered after
//! 2024-01-22 up to 5% of the obligation and refuses the one registered before.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use proto::v1 as pb;
use tests::*;
use tonic::Code;

/// 2026-06-01 02:00 UTC: inside 2025's surrender window.
const JUNE_2026_S: u64 = 1_780_279_200;

async fn register(c: &mut Clients, key: &str, project_id: u64, registered: u32) -> String {
    c.registry
        .register_ccer(pb::RegisterCcerRequest {
            idempotency_key: key.into(),
            authority_account_id: AUTHORITY,
            project_id,
            registered,
            vintage: 2024,
            quantity_t: 10_000,
        })
        .await
        .unwrap_or_else(|e| panic!("register {project_id}: {e}"))
        .into_inner()
        .unit
}

fn surrender(key: &str, unit: &str, quantity_t: u64) -> pb::SurrenderRequest {
    pb::SurrenderRequest {
        idempotency_key: key.into(),
        account_id: E1,
        unit: unit.into(),
        quantity_t,
        year: 2025,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccers_registered_after_the_cut_off_cover_up_to_five_percent() {
    let server = TestServer::start_at(Arc::new(AtomicU64::new(JUNE_2026_S * 1_000_000_000)));
    open_market(&server).await;
    let mut ministry = Clients::of(&server, "ministry").await;
    let mut verifier = Clients::of(&server, "verifier").await;
    let mut plant = Clients::of(&server, "e1").await;
    ministry
        .compliance
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities".into(),
            rows: vec![power_plant_row()],
        })
        .await
        .unwrap_or_else(|e| panic!("entities: {e}"));
    let plan_toml =
        std::fs::read_to_string(plan_path("2025-draft.toml")).unwrap_or_else(|e| panic!("{e}"));
    ministry
        .compliance
        .register_plan(pb::RegisterPlanRequest {
            idempotency_key: "plan".into(),
            plan_toml,
        })
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"));
    verifier
        .compliance
        .record_verified(pb::RecordVerifiedRequest {
            idempotency_key: "verified".into(),
            year: 2025,
            rows: vec![pb::VerifiedRow {
                account_id: E1,
                co2_t: 100_000,
                pfc_co2e_t: 0,
            }],
        })
        .await
        .unwrap_or_else(|e| panic!("verified: {e}"));

    // Two projects: registered the day before and the day after the cut-off.
    let late = register(&mut ministry, "ccer-1001", 1001, 20_240_123).await;
    let early = register(&mut ministry, "ccer-1002", 1002, 20_240_121).await;
    assert_eq!(
        (late.as_str(), early.as_str()),
        ("CCER2024-1001", "CCER2024-1002")
    );
    // A second issuance of a project keeps its registration date.
    let e = ministry
        .registry
        .register_ccer(pb::RegisterCcerRequest {
            idempotency_key: "ccer-1001-again".into(),
            authority_account_id: AUTHORITY,
            project_id: 1001,
            registered: 20_240_301,
            vintage: 2024,
            quantity_t: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field(&e)),
        (Code::InvalidArgument, "registered".into())
    );
    let e = plant
        .registry
        .register_ccer(pb::RegisterCcerRequest {
            idempotency_key: "not-mine".into(),
            authority_account_id: AUTHORITY,
            project_id: 7,
            registered: 20_240_301,
            vintage: 2024,
            quantity_t: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    for unit in [&late, &early] {
        ministry
            .registry
            .propose_transfer(pb::TransferRequest {
                idempotency_key: format!("to-plant-{unit}"),
                from_account_id: AUTHORITY,
                to_account_id: E1,
                unit: unit.clone(),
                quantity_t: 10_000,
            })
            .await
            .unwrap_or_else(|e| panic!("transfer {unit}: {e}"));
    }

    let e = plant
        .compliance
        .surrender(surrender("early", &early, 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "CCER_NOT_ELIGIBLE", "{e:?}");
    // 5% of 100,000 t = 5,000 t of CCER at most.
    plant
        .compliance
        .surrender(surrender("late", &late, 5_000))
        .await
        .unwrap_or_else(|e| panic!("surrender 5,000 CCER: {e}"));
    let e = plant
        .compliance
        .surrender(surrender("late-more", &late, 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "CCER_LIMIT_EXCEEDED", "{e:?}");
    let status = plant
        .compliance
        .get_compliance(pb::GetComplianceRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(status.surrendered_ccer_t, 5_000);
}
