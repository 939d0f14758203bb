//! Position limits and large-holder reporting as the operator runs them: the market-wide
//! values from `[market]` in the config, an instrument's changed through the API, one
//! account's own limit, the large-holder report, and the same after a restart.

use proto::v1 as pb;
use tests::*;
use tonic::Code;

fn buy(account: u64, client_order_id: u64, quantity_t: u64) -> pb::PlaceOrderRequest {
    limit(account, client_order_id, pb::Side::Buy, 8_500, quantity_t)
}

async fn report(ops: &mut Clients) -> pb::LargeHoldersReply {
    ops.admin
        .get_large_holders(pb::GetLargeHoldersRequest {
            instrument: "CEA2025".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("report: {e}"))
        .into_inner()
}

/// (account, holding, limit, own limit) of each reported holder.
fn rows(r: &pb::LargeHoldersReply) -> Vec<(u64, u64, u64, bool)> {
    r.holders
        .iter()
        .map(|h| (h.account_id, h.holding_t, h.limit_t, h.own_limit))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_from_the_config_and_the_api_refuse_buys_and_feed_the_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.market.position_limit_t = Some(50_100);
    config.market.large_holder_t = Some(50_010);
    let server = TestServer::start_with(config.clone());
    open_market(&server).await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    let mut m3 = Clients::of(&server, "m3").await;

    // Every trading account starts with 50,000 t of CEA2025 (`open_market`), which was
    // created without limits of its own: it took the configured ones.
    let r = report(&mut ops).await;
    assert_eq!((r.position_limit_t, r.large_holder_t), (50_100, 50_010));
    assert_eq!(rows(&r), vec![], "everyone holds 50,000 < 50,010");

    m2.trading
        .place_order(limit(M2, 1, pb::Side::Sell, 8_500, 2_000))
        .await
        .unwrap_or_else(|e| panic!("sell: {e}"));
    m1.trading
        .place_order(buy(M1, 1, 20))
        .await
        .unwrap_or_else(|e| panic!("buy 20: {e}"));
    // 50,020 + 81 = 50,101 > 50,100: refused, naming the quantity.
    let e = m1.trading.place_order(buy(M1, 2, 81)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "POSITION_LIMIT_EXCEEDED");
    assert_eq!(field(&e), "quantity_t");
    m1.trading
        .place_order(buy(M1, 3, 80))
        .await
        .unwrap_or_else(|e| panic!("buy 80 reaches the limit exactly: {e}"));
    assert_eq!(
        rows(&report(&mut ops).await),
        vec![(M1, 50_100, 50_100, false)]
    );

    // M1's own limit of 60,000 t beats the instrument's 50,100.
    ops.admin
        .set_position_limit(pb::SetPositionLimitRequest {
            account_id: M1,
            instrument: "CEA2025".into(),
            limit_t: 60_000,
            unlimited: false,
        })
        .await
        .unwrap_or_else(|e| panic!("own limit: {e}"));
    m1.trading
        .place_order(buy(M1, 4, 100))
        .await
        .unwrap_or_else(|e| panic!("under its own limit: {e}"));
    let e = m3.trading.place_order(buy(M3, 1, 101)).await.unwrap_err();
    assert_eq!(
        reason(&e),
        "POSITION_LIMIT_EXCEEDED",
        "M3 is still on 50,100"
    );

    // The instrument's limit lifted and its threshold raised to 50,150: M3 buys 200.
    ops.admin
        .set_instrument_limits(pb::SetInstrumentLimitsRequest {
            instrument: "CEA2025".into(),
            no_position_limit: true,
            large_holder_t: 50_150,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("instrument limits: {e}"));
    m3.trading
        .place_order(buy(M3, 2, 200))
        .await
        .unwrap_or_else(|e| panic!("no limit now: {e}"));
    // M2 sold 20 + 80 + 100 + 200 = 400 of its 50,000: 49,600 t (1,600 of it locked in
    // the rest of its order), under. M1 50,200 (own 60,000), M3 50,200 (none: 0).
    let expected = vec![(M1, 50_200, 60_000, true), (M3, 50_200, 0, false)];
    let r = report(&mut ops).await;
    assert_eq!((r.position_limit_t, r.large_holder_t), (0, 50_150));
    assert_eq!(rows(&r), expected);

    // The limits are engine state: journaled, snapshotted, there after a restart.
    let kept = server.stop_keep_dir();
    let server = TestServer::start_with(config);
    let mut ops = Clients::of(&server, "ops").await;
    let r = report(&mut ops).await;
    assert_eq!((r.position_limit_t, r.large_holder_t), (0, 50_150));
    assert_eq!(rows(&r), expected);
    drop(kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limit_requests_name_their_field_and_change_nothing() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut ops = Clients::of(&server, "ops").await;
    let cases: Vec<(pb::SetPositionLimitRequest, Code, &str, &str)> = vec![
        (
            pb::SetPositionLimitRequest {
                account_id: M1,
                instrument: "CEA2025".into(),
                limit_t: 0,
                unlimited: false,
            },
            Code::InvalidArgument,
            "INVALID_FIELD",
            "limit_t",
        ),
        (
            pb::SetPositionLimitRequest {
                account_id: M1,
                instrument: "CEA2025".into(),
                limit_t: 5,
                unlimited: true,
            },
            Code::InvalidArgument,
            "INVALID_FIELD",
            "limit_t",
        ),
        (
            pb::SetPositionLimitRequest {
                account_id: M1,
                instrument: "CEA1999".into(),
                limit_t: 5,
                unlimited: false,
            },
            Code::NotFound,
            "UNKNOWN_INSTRUMENT",
            "instrument",
        ),
        (
            pb::SetPositionLimitRequest {
                account_id: 0,
                instrument: "CEA2025".into(),
                limit_t: 5,
                unlimited: false,
            },
            Code::InvalidArgument,
            "INVALID_FIELD",
            "account_id",
        ),
    ];
    for (request, code, want_reason, want_field) in cases {
        let e = ops
            .admin
            .set_position_limit(request.clone())
            .await
            .unwrap_err();
        let got = (e.code(), reason(&e), field(&e));
        let want = (code, want_reason.to_string(), want_field.to_string());
        assert_eq!(got, want, "{request:?}");
    }
    let instrument_cases = [
        (pb::SetInstrumentLimitsRequest::default(), "instrument"),
        (
            pb::SetInstrumentLimitsRequest {
                instrument: "CEA2025".into(),
                ..Default::default()
            },
            "position_limit_t",
        ),
        (
            pb::SetInstrumentLimitsRequest {
                instrument: "CEA2025".into(),
                large_holder_t: 10,
                no_large_holder: true,
                ..Default::default()
            },
            "large_holder_t",
        ),
        (
            pb::SetInstrumentLimitsRequest {
                instrument: "CEA2025".into(),
                position_limit_t: u64::MAX,
                ..Default::default()
            },
            "position_limit_t",
        ),
    ];
    for (request, want_field) in instrument_cases {
        let e = ops
            .admin
            .set_instrument_limits(request.clone())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(field(&e), want_field, "{request:?}");
    }
    let e = ops
        .admin
        .create_instrument(pb::CreateInstrumentRequest {
            vintage: 2026,
            reference_price_fen: 8_500,
            large_holder_t: u64::MAX,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field(&e)),
        (Code::InvalidArgument, "large_holder_t".into())
    );
    // Nothing changed: no limit, no threshold (the test config sets no `[market]`).
    let r = report(&mut ops).await;
    assert_eq!((r.position_limit_t, r.large_holder_t), (0, 0));
    let mut m1 = Clients::of(&server, "m1").await;
    m1.trading
        .place_order(buy(M1, 1, 99_999))
        .await
        .unwrap_or_else(|e| panic!("no limit: {e}"));
}
