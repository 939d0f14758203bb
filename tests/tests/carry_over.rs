//! Carry-over over gRPC, as the ministry and a power plant run it: the plant sells 40,000 t
//! of CEA2024 at the exchange in 2025, the ministry fixes the limits on 2026-01-05, the
//! plant moves its units back from trading and applies, the ministry converts them into
//! CEA2025.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::v1 as pb;
use tests::*;
use tonic::Code;

/// 2025-06-02 02:00 UTC (10:00 Beijing) and 2026-01-05 02:00 UTC, seconds.
const JUNE_2025_S: u64 = 1_748_829_600;
const JAN_2026_S: u64 = 1_767_578_400;

async fn limit_of(c: &mut Clients) -> pb::CarryOverQuota {
    c.carry_over
        .get_carry_over(pb::GetCarryOverRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .unwrap_or_else(|e| panic!("limit: {e}"))
        .into_inner()
}

fn apply(key: &str, quantity_t: u64) -> pb::ApplyCarryOverRequest {
    pb::ApplyCarryOverRequest {
        idempotency_key: key.into(),
        year: 2025,
        account_id: E1,
        unit: "CEA2024".into(),
        quantity_t,
    }
}

/// The ministry's set-up: the plant covered, both plans, 150,000 t of CEA2024 allocated
/// to it and a CEA2024 instrument to trade them on.
async fn set_up(ministry: &mut Clients, ops: &mut Clients) {
    ministry
        .compliance
        .load_entities(pb::LoadEntitiesRequest {
            idempotency_key: "entities".into(),
            rows: vec![power_plant_row()],
        })
        .await
        .unwrap_or_else(|e| panic!("entities: {e}"));
    for name in ["2024.toml", "2025-draft.toml"] {
        let path = plan_path(name);
        let plan_toml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        ministry
            .compliance
            .register_plan(pb::RegisterPlanRequest {
                idempotency_key: format!("plan-{name}"),
                plan_toml,
            })
            .await
            .unwrap_or_else(|e| panic!("plan {name}: {e}"));
    }
    ops.admin
        .create_instrument(pb::CreateInstrumentRequest {
            vintage: 2024,
            reference_price_fen: 8_500,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CEA2024: {e}"));
    ministry
        .registry
        .issue(pb::IssueRequest {
            idempotency_key: "issue-2024".into(),
            authority_account_id: AUTHORITY,
            unit: "CEA2024".into(),
            quantity_t: 150_000,
        })
        .await
        .unwrap_or_else(|e| panic!("issue: {e}"));
    ministry
        .registry
        .allocate(pb::TransferRequest {
            idempotency_key: "allocate-2024".into(),
            from_account_id: AUTHORITY,
            to_account_id: E1,
            unit: "CEA2024".into(),
            quantity_t: 150_000,
        })
        .await
        .unwrap_or_else(|e| panic!("allocate: {e}"));
}

async fn move_2024(c: &mut Clients, key: &str, quantity_t: u64, to_trading: bool) {
    let req = pb::MoveRequest {
        idempotency_key: key.into(),
        account_id: E1,
        unit: "CEA2024".into(),
        quantity_t,
    };
    let sent = if to_trading {
        c.registry.move_to_trading(req).await
    } else {
        c.registry.move_from_trading(req).await
    };
    sent.unwrap_or_else(|e| panic!("move {key}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_plant_carries_2024_allowances_into_2025() {
    let now_ns = Arc::new(AtomicU64::new(JUNE_2025_S * 1_000_000_000));
    let server = TestServer::start_at(now_ns.clone());
    open_market(&server).await;
    let mut ministry = Clients::of(&server, "ministry").await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut plant = Clients::of(&server, "e1").await;
    let mut m1 = Clients::of(&server, "m1").await;
    set_up(&mut ministry, &mut ops).await;

    // June 2025: the plant sells 40,000 t of CEA2024 to M1 at the exchange.
    move_2024(&mut plant, "to-trading", 150_000, true).await;
    let sell = pb::PlaceOrderRequest {
        instrument: "CEA2024".into(),
        ..limit(E1, 1, pb::Side::Sell, 8_500, 40_000)
    };
    plant
        .trading
        .place_order(sell)
        .await
        .unwrap_or_else(|e| panic!("sell: {e}"));
    let buy = pb::PlaceOrderRequest {
        instrument: "CEA2024".into(),
        ..limit(M1, 1, pb::Side::Buy, 8_500, 40_000)
    };
    m1.trading
        .place_order(buy)
        .await
        .unwrap_or_else(|e| panic!("buy: {e}"));
    let mut audit = Clients::of(&server, "audit").await;
    assert_reconciled(&mut audit).await;

    // Before the limits are fixed there is nothing to apply against.
    let e = plant
        .carry_over
        .apply_carry_over(apply("early", 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "CARRY_OVER_NOT_FIXED");
    let fix = pb::FixCarryOverRequest {
        idempotency_key: "fix".into(),
        year: 2025,
        plan_version: "2025.draft".into(),
    };
    // Still 2025: the holdings are counted at the end of 2025-12-31.
    let e = ministry
        .carry_over
        .fix_carry_over(fix.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e)),
        (Code::FailedPrecondition, "CARRY_OVER_WINDOW".into())
    );
    now_ns.store(JAN_2026_S * 1_000_000_000, Ordering::SeqCst);
    let e = plant
        .carry_over
        .fix_carry_over(fix.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "only the authority fixes");
    ministry
        .carry_over
        .fix_carry_over(fix)
        .await
        .unwrap_or_else(|e| panic!("fix: {e}"));
    // T = 10,000 + 1.5 x 40,000 = 70,000; holdings 150,000 - 40,000 = 110,000.
    let q = limit_of(&mut plant).await;
    assert_eq!(
        (
            q.net_sales_t,
            q.formula_t,
            q.holdings_t,
            q.limit_t,
            q.barred
        ),
        (40_000, 70_000, 110_000, 70_000, false)
    );
    let e = m1
        .carry_over
        .get_carry_over(pb::GetCarryOverRequest {
            year: 2025,
            account_id: E1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The units come back from the exchange first; then 70,000 t, and not a tonne more.
    let e = plant
        .carry_over
        .apply_carry_over(apply("a1", 70_000))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "INSUFFICIENT_AVAILABLE");
    move_2024(&mut plant, "from-trading", 80_000, false).await;
    plant
        .carry_over
        .apply_carry_over(apply("a2", 70_000))
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let e = plant
        .carry_over
        .apply_carry_over(apply("a3", 1))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e), field(&e)),
        (
            Code::FailedPrecondition,
            "CARRY_OVER_LIMIT".into(),
            "quantity_t".into()
        )
    );
    assert_eq!(limit_of(&mut ministry).await.applied_t, 70_000);

    let holding = |c: &mut Clients, unit: &'static str| {
        let mut r = c.registry.clone();
        async move {
            r.get_holdings(pb::GetHoldingsRequest { account_id: E1 })
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_inner()
                .holdings
                .into_iter()
                .find(|h| h.unit == unit)
                .unwrap_or_default()
        }
    };
    let h = holding(&mut plant, "CEA2024").await;
    assert_eq!(
        (h.registry_available_t, h.trading_t, h.frozen_t),
        (10_000, 30_000, 70_000)
    );
    assert_eq!(h.frozen[0].reason, "CARRY_OVER");
    let before_2025 = holding(&mut plant, "CEA2025").await.registry_available_t;
    ministry
        .carry_over
        .convert_carry_over(pb::ConvertCarryOverRequest {
            idempotency_key: "convert".into(),
            year: 2025,
        })
        .await
        .unwrap_or_else(|e| panic!("convert: {e}"));
    let h = holding(&mut plant, "CEA2024").await;
    assert_eq!((h.registry_available_t, h.frozen_t), (10_000, 0));
    let h = holding(&mut plant, "CEA2025").await;
    assert_eq!(h.registry_available_t, before_2025 + 70_000);
    assert_reconciled(&mut audit).await;

    // The same from the command line.
    let as_ = |principal: &str| gateway::ctl::Connection {
        addr: format!("http://{}", server.addr),
        token: token(principal).to_string(),
    };
    let ctl = |principal, command| {
        let connection = as_(principal);
        async move { gateway::ctl::run(&connection, &command).await }
    };
    let out = ctl(
        "e1",
        gateway::ctl::Ctl::CarryOver {
            account: E1,
            year: 2025,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        "account 201 into 2025 (plan 2025.draft): net sales 40,000 t, formula 70,000 t, holdings 110,000 t, limit 70,000 t, applied 70,000 t\n"
    );
    let out = ctl(
        "ministry",
        gateway::ctl::Ctl::ConvertCarryOver { year: 2025 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "no open carry-over applications into 2025\n");
    let err = ctl(
        "e1",
        gateway::ctl::Ctl::ApplyCarryOver {
            account: E1,
            unit: "CEA2024".into(),
            quantity: 1,
            year: 2025,
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("CARRY_OVER_LIMIT"), "{err}");
}
