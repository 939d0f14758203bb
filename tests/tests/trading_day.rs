//! A day of trading between members over gRPC, with exact balances in the engine and the
//! registry, daily bars, the next day's T+1 release, and a withdrawal back to the registry.

use proto::v1 as pb;
use tests::*;

fn position(account: &pb::TradingAccount) -> (u64, u64, u64) {
    account
        .positions
        .iter()
        .find(|p| p.instrument == "CEA2025")
        .map_or((0, 0, 0), |p| (p.free_t, p.locked_t, p.pending_t))
}

async fn holding(c: &mut Clients, account: u64) -> (u64, u64) {
    let h = cea2025_holding(c, account).await;
    (h.registry_available_t, h.trading_t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trading_day_between_members_has_exact_balances() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    let mut m3 = Clients::of(&server, "m3").await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut audit = Clients::of(&server, "audit").await;

    // m1 offers 1,000 t at 85.00; m2 lifts 600 t with a limit of 86.00.
    let sell = m1
        .trading
        .place_order(limit(M1, 1, pb::Side::Sell, 8_500, 1_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let sell_order = sell.order.clone().unwrap_or_default();
    assert_eq!(sell_order.status, pb::OrderStatus::New as i32);
    assert_eq!((sell_order.leaves_t, sell_order.filled_t), (1_000, 0));
    assert!(sell.fills.is_empty());

    let buy = m2
        .trading
        .place_order(limit(M2, 1, pb::Side::Buy, 8_600, 600))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let order = buy.order.clone().unwrap_or_default();
    assert_eq!(order.status, pb::OrderStatus::Filled as i32);
    assert_eq!(buy.fills.len(), 1);
    let fill = &buy.fills[0];
    assert_eq!(
        (fill.price_fen, fill.quantity_t, fill.fee_fen),
        (8_500, 600, 0)
    );
    assert!(fill.aggressor);
    assert_eq!(fill.kind, pb::TradeKind::Continuous as i32);

    // m3 takes the remaining 400 t.
    let buy3 = m3
        .trading
        .place_order(limit(M3, 7, pb::Side::Buy, 8_550, 400))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(buy3.fills.iter().map(|f| f.quantity_t).sum::<u64>(), 400);

    // Exact trading balances: 1,000,000,000 fen credited each; T+1 on purchases.
    let account = |c: &mut Clients, id: u64| {
        let mut t = c.trading.clone();
        async move {
            t.get_trading_account(pb::GetTradingAccountRequest { account_id: id })
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_inner()
        }
    };
    let a1 = account(&mut m1, M1).await;
    assert_eq!((a1.funds_free_fen, a1.funds_locked_fen), (1_008_500_000, 0));
    assert_eq!(position(&a1), (49_000, 0, 0));
    let a2 = account(&mut m2, M2).await;
    assert_eq!((a2.funds_free_fen, a2.funds_locked_fen), (994_900_000, 0));
    assert_eq!(position(&a2), (50_000, 0, 600));
    let a3 = account(&mut m3, M3).await;
    assert_eq!((a3.funds_free_fen, a3.funds_locked_fen), (996_600_000, 0));
    assert_eq!(position(&a3), (50_000, 0, 400));
    assert_eq!(a1.live_orders, 0);

    // The registry settled both trades: reconcile, then read the holdings.
    assert_reconciled(&mut audit).await;
    assert_eq!(holding(&mut m1, M1).await, (50_000, 49_000));
    assert_eq!(holding(&mut m2, M2).await, (50_001, 50_600));
    assert_eq!(holding(&mut m3, M3).await, (50_002, 50_400));

    // Trades and the book as the market sees them.
    let trades = m1
        .market
        .get_trades(pb::GetTradesRequest {
            instrument: "CEA2025".into(),
            after_trade_id: 0,
            limit: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .trades;
    assert_eq!(
        trades
            .iter()
            .map(|t| (t.price_fen, t.quantity_t))
            .collect::<Vec<_>>(),
        vec![(8_500, 600), (8_500, 400)]
    );
    assert_eq!(trades[0].aggressor_side, pb::Side::Buy as i32);

    // Close the day: one bar, VWAP close.
    for phase in [pb::Phase::PostClose] {
        ops.admin
            .set_phase(pb::SetPhaseRequest {
                phase: phase as i32,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    ops.admin
        .close_trading_day(pb::CloseTradingDayRequest {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bars = m1
        .market
        .get_daily_bars(pb::GetDailyBarsRequest {
            instrument: "CEA2025".into(),
            from_date: 0,
            to_date: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .bars;
    assert_eq!(bars.len(), 1);
    let bar = &bars[0];
    assert_eq!(
        (
            bar.trading_date,
            bar.open_fen,
            bar.high_fen,
            bar.low_fen,
            bar.close_fen
        ),
        (20_261_130, 8_500, 8_500, 8_500, 8_500)
    );
    assert_eq!(
        (bar.volume_t, bar.turnover_fen, bar.trade_count),
        (1_000, 8_500_000, 2)
    );

    // Next day: yesterday's purchase is sellable; m2 withdraws it to the registry.
    ops.admin
        .open_trading_day(pb::OpenTradingDayRequest {
            trading_date: 20_261_201,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a2 = account(&mut m2, M2).await;
    assert_eq!(position(&a2), (50_600, 0, 0));
    let receipt = m2
        .registry
        .move_from_trading(pb::MoveRequest {
            idempotency_key: "withdraw-1".into(),
            account_id: M2,
            unit: "CEA2025".into(),
            quantity_t: 600,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(receipt.engine_sequence > 0);
    // The reply comes once settled: the registry shows it at once.
    assert_eq!(holding(&mut m2, M2).await, (50_601, 50_000));
    // A retry with the same key changes nothing.
    m2.registry
        .move_from_trading(pb::MoveRequest {
            idempotency_key: "withdraw-1".into(),
            account_id: M2,
            unit: "CEA2025".into(),
            quantity_t: 600,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holding(&mut m2, M2).await, (50_601, 50_000));
    assert_eq!(position(&account(&mut m2, M2).await), (50_000, 0, 0));

    assert_audit_clean(&mut audit).await;
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}
