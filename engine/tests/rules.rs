//! One test per trading rule, asserting exact events and balances.

mod common;

use common::*;
use engine::*;

const MILLION_RMB: i64 = 100_000_000;

fn report(
    order: OrderId,
    side: Side,
    price_fen: i64,
    quantity_t: u64,
    filled_t: u64,
) -> OrderReport {
    OrderReport {
        order,
        client_order_id: ClientOrderId(0),
        account: A,
        instrument: CEA,
        side,
        kind: OrderKind::Limit,
        time_in_force: TimeInForce::Day,
        price_fen,
        quantity_t,
        filled_t,
        leaves_t: quantity_t - filled_t,
    }
}

#[test]
fn a_limit_buy_rests_and_locks_price_times_quantity() {
    let mut h = Harness::market();
    let order = h.order(A, Side::Buy, 8_000, 100);
    let events = h.ok(CommandKind::PlaceOrder(order));
    let accepted = OrderReport {
        client_order_id: order.client_order_id,
        ..report(OrderId(1), Side::Buy, 8_000, 100, 0)
    };
    assert_eq!(
        events,
        vec![
            EventKind::Accepted(accepted),
            EventKind::Balance {
                account: A,
                free_fen: MILLION_RMB - 800_000,
                locked_fen: 800_000,
                pending_fen: 0
            },
            EventKind::Level {
                instrument: CEA,
                side: Side::Buy,
                price_fen: 8_000,
                quantity_t: 100,
                orders: 1
            },
        ]
    );
    assert_eq!(h.engine.best_bid(CEA), Some(8_000));
}

#[test]
fn a_trade_happens_at_the_resting_price_and_settles_both_sides() {
    let mut h = Harness::market();
    let (sell, _) = h.place(B, Side::Sell, 7_990, 100);
    assert_eq!(h.position(B), (9_900, 100, 0));
    let (buy, events) = h.place(A, Side::Buy, 8_000, 100);
    let t = trades(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].price_fen, t[0].quantity_t, t[0].aggressor),
        (7_990, 100, Some(Side::Buy))
    );
    assert_eq!((t[0].buy.order, t[0].sell.order), (buy, sell));
    assert_eq!(
        (t[0].buy.filled_t, t[0].buy.leaves_t, t[0].sell.leaves_t),
        (100, 0, 0)
    );
    // The buyer locked 800,000 and paid 799,000: price improvement is released.
    assert_eq!(h.funds(A), (MILLION_RMB - 799_000, 0, 0));
    // Bought today: pending until the next trading day (T+1).
    assert_eq!(h.position(A), (10_000, 0, 100));
    assert_eq!(h.funds(B), (MILLION_RMB + 799_000, 0, 0));
    assert_eq!(h.position(B), (9_900, 0, 0));
    assert_eq!(
        levels(&events),
        vec![(Side::Sell, 7_990, 0, 0)],
        "the ask level is gone and the buy never rested"
    );
    assert_eq!(h.engine.live_orders(), 0);
}

#[test]
fn price_time_priority_fills_the_earlier_order_first() {
    let mut h = Harness::market();
    let (first, _) = h.place(B, Side::Sell, 8_000, 50);
    let (second, _) = h.place(C, Side::Sell, 8_000, 50);
    let (better, _) = h.place(C, Side::Sell, 7_999, 10);
    let (_, events) = h.place(A, Side::Buy, 8_000, 70);
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.sell.order, t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(
        fills,
        vec![(better, 7_999, 10), (first, 8_000, 50), (second, 8_000, 10)]
    );
    assert_eq!(h.engine.order(second).unwrap().leaves_t, 40);
}

#[test]
fn a_marketable_limit_never_trades_through_its_own_limit() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 7_990, 50);
    h.place(B, Side::Sell, 8_000, 50);
    h.place(B, Side::Sell, 8_010, 50);
    let (buy, events) = h.place(A, Side::Buy, 8_000, 120);
    let prices: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(prices, vec![(7_990, 50), (8_000, 50)]);
    let resting = h.engine.order(buy).unwrap();
    assert_eq!(
        (resting.price_fen, resting.filled_t, resting.leaves_t),
        (8_000, 100, 20)
    );
    assert_eq!(h.engine.best_ask(CEA), Some(8_010));
    assert_eq!(h.engine.best_bid(CEA), Some(8_000));
    // Locked: exactly what the 20 t left at 8,000 need.
    assert_eq!(h.funds(A), (MILLION_RMB - 799_500 - 160_000, 160_000, 0));
}

#[test]
fn ioc_residual_is_cancelled_and_never_rests() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 8_000, 30);
    let order = NewOrder {
        time_in_force: TimeInForce::Ioc,
        ..h.order(A, Side::Buy, 8_000, 100)
    };
    let (id, events) = h.place_order(order);
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(cancels(&events), vec![(id, 70, CancelReason::IocResidual)]);
    assert_eq!(h.engine.order(id), None);
    assert_eq!(h.funds(A), (MILLION_RMB - 240_000, 0, 0));
    assert_eq!(h.engine.best_bid(CEA), None);
}

#[test]
fn fok_fills_against_the_total_within_its_limit_or_not_at_all() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 7_990, 40);
    h.place(C, Side::Sell, 8_000, 40);
    h.place(C, Side::Sell, 8_010, 100);
    let too_big = NewOrder {
        time_in_force: TimeInForce::Fok,
        ..h.order(A, Side::Buy, 8_000, 81)
    };
    h.rejects(CommandKind::PlaceOrder(too_big), Reject::FokNotFillable);
    let fits = NewOrder {
        time_in_force: TimeInForce::Fok,
        ..h.order(A, Side::Buy, 8_000, 80)
    };
    let (_, events) = h.place_order(fits);
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(fills, vec![(7_990, 40), (8_000, 40)]);
    assert!(cancels(&events).is_empty());
}

#[test]
fn market_orders_are_protected_by_the_band_and_their_residual_cancelled() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 7_990, 50);
    h.place(B, Side::Sell, 8_800, 50);
    h.rejects_order(B, Side::Sell, 8_801, 1, Reject::PriceOutsideBand);
    let market = NewOrder {
        kind: OrderKind::Market,
        price_fen: 0,
        ..h.order(A, Side::Buy, 0, 150)
    };
    let (id, events) = h.place_order(market);
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(fills, vec![(7_990, 50), (8_800, 50)]);
    assert_eq!(
        cancels(&events),
        vec![(id, 50, CancelReason::MarketResidual)]
    );
    assert_eq!(h.funds(A), (MILLION_RMB - 399_500 - 440_000, 0, 0));

    let mut plain = Harness::market_with(InstrumentSpec::plain(
        Symbol::new("CEA2025").unwrap(),
        8_000,
    ));
    let market = NewOrder {
        kind: OrderKind::Market,
        ..plain.order(A, Side::Buy, 0, 10)
    };
    plain.rejects(CommandKind::PlaceOrder(market), Reject::NoPriceProtection);
}

#[test]
fn post_only_rests_or_is_rejected_if_it_would_trade() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 8_000, 10);
    let crossing = NewOrder {
        post_only: true,
        ..h.order(A, Side::Buy, 8_000, 10)
    };
    h.rejects(
        CommandKind::PlaceOrder(crossing),
        Reject::PostOnlyWouldTrade,
    );
    let passive = NewOrder {
        post_only: true,
        ..h.order(A, Side::Buy, 7_999, 10)
    };
    let (id, events) = h.place_order(passive);
    assert!(trades(&events).is_empty());
    assert_eq!(h.engine.order(id).unwrap().leaves_t, 10);
    // An amend that would make it cross is refused too.
    h.rejects(
        CommandKind::AmendOrder {
            account: A,
            order: id,
            price_fen: Some(8_000),
            quantity_t: None,
        },
        Reject::PostOnlyWouldTrade,
    );
    let ioc = NewOrder {
        post_only: true,
        time_in_force: TimeInForce::Ioc,
        ..h.order(A, Side::Buy, 7_000 + 900, 1)
    };
    h.rejects(CommandKind::PlaceOrder(ioc), Reject::InvalidParameter);
}

#[test]
fn client_order_ids_are_unique_among_live_orders_of_an_account() {
    let mut h = Harness::market();
    let first = h.order(A, Side::Buy, 7_900, 10);
    let (id, _) = h.place_order(first);
    h.rejects(
        CommandKind::PlaceOrder(first),
        Reject::DuplicateClientOrderId,
    );
    // Another account may use the same client id.
    h.place_order(NewOrder {
        account: B,
        side: Side::Sell,
        price_fen: 8_100,
        ..first
    });
    h.ok(CommandKind::CancelOrder {
        account: A,
        order: id,
    });
    let (reused, _) = h.place_order(first);
    assert_ne!(reused, id);
}

#[test]
fn cancel_releases_exactly_and_is_refused_for_closed_unknown_and_foreign_orders() {
    let mut h = Harness::market();
    let (buy, _) = h.place(A, Side::Buy, 7_950, 100);
    let (sell, _) = h.place(B, Side::Sell, 8_050, 100);
    h.rejects(
        CommandKind::CancelOrder {
            account: B,
            order: buy,
        },
        Reject::NotOrderOwner,
    );
    let events = h.ok(CommandKind::CancelOrder {
        account: A,
        order: buy,
    });
    assert_eq!(cancels(&events), vec![(buy, 100, CancelReason::User)]);
    assert_eq!(h.funds(A), (MILLION_RMB, 0, 0));
    assert_eq!(levels(&events), vec![(Side::Buy, 7_950, 0, 0)]);
    h.rejects(
        CommandKind::CancelOrder {
            account: A,
            order: buy,
        },
        Reject::OrderClosed,
    );
    h.rejects(
        CommandKind::CancelOrder {
            account: A,
            order: OrderId(999),
        },
        Reject::UnknownOrder,
    );
    h.rejects(
        CommandKind::CancelOrder {
            account: AccountId(55),
            order: sell,
        },
        Reject::UnknownAccount,
    );
    h.ok(CommandKind::CancelOrder {
        account: B,
        order: sell,
    });
    assert_eq!(h.position(B), (10_000, 0, 0));
    // A filled order is closed too.
    let (maker, _) = h.place(B, Side::Sell, 8_000, 10);
    h.place(A, Side::Buy, 8_000, 10);
    h.rejects(
        CommandKind::CancelOrder {
            account: B,
            order: maker,
        },
        Reject::OrderClosed,
    );
    h.rejects(
        CommandKind::AmendOrder {
            account: B,
            order: maker,
            price_fen: None,
            quantity_t: Some(5),
        },
        Reject::OrderClosed,
    );
}

#[test]
fn amend_down_keeps_priority_and_price_or_size_up_loses_it() {
    let mut h = Harness::market();
    let (b, _) = h.place(B, Side::Sell, 8_000, 50);
    let (c, _) = h.place(C, Side::Sell, 8_000, 50);
    let events = h.ok(CommandKind::AmendOrder {
        account: B,
        order: b,
        price_fen: None,
        quantity_t: Some(30),
    });
    assert!(
        matches!(events[0], EventKind::Amended { priority_kept: true, report } if report.quantity_t == 30 && report.leaves_t == 30)
    );
    assert_eq!(h.position(B), (9_970, 30, 0));
    let (_, events) = h.place(A, Side::Buy, 8_000, 10);
    assert_eq!(trades(&events)[0].sell.order, b, "B kept its place");

    // B increases: loses priority behind C.
    let events = h.ok(CommandKind::AmendOrder {
        account: B,
        order: b,
        price_fen: None,
        quantity_t: Some(60),
    });
    assert!(
        matches!(events[0], EventKind::Amended { priority_kept: false, report } if report.quantity_t == 60 && report.filled_t == 10 && report.leaves_t == 50)
    );
    let (_, events) = h.place(A, Side::Buy, 8_000, 10);
    assert_eq!(trades(&events)[0].sell.order, c);

    // C changes price to 7,990 and becomes the best; a crossing reprice trades at once.
    h.ok(CommandKind::AmendOrder {
        account: C,
        order: c,
        price_fen: Some(7_990),
        quantity_t: None,
    });
    assert_eq!(h.engine.best_ask(CEA), Some(7_990));
    let (bid, _) = h.place(A, Side::Buy, 7_980, 5);
    let events = h.ok(CommandKind::AmendOrder {
        account: B,
        order: b,
        price_fen: Some(7_980),
        quantity_t: None,
    });
    let t = trades(&events);
    assert_eq!(
        (
            t[0].buy.order,
            t[0].sell.order,
            t[0].price_fen,
            t[0].quantity_t,
            t[0].aggressor
        ),
        (bid, b, 7_980, 5, Some(Side::Sell))
    );

    h.rejects(
        CommandKind::AmendOrder {
            account: B,
            order: b,
            price_fen: Some(7_980),
            quantity_t: None,
        },
        Reject::AmendNoChange,
    );
    h.rejects(
        CommandKind::AmendOrder {
            account: B,
            order: b,
            price_fen: None,
            quantity_t: Some(15),
        },
        Reject::AmendBelowFilled,
    );
    h.rejects(
        CommandKind::AmendOrder {
            account: C,
            order: b,
            price_fen: None,
            quantity_t: Some(40),
        },
        Reject::NotOrderOwner,
    );
    h.rejects(
        CommandKind::AmendOrder {
            account: B,
            order: b,
            price_fen: Some(9_000),
            quantity_t: None,
        },
        Reject::PriceOutsideBand,
    );
}

#[test]
fn amend_up_needs_funds_and_allowances() {
    let mut h = Harness::market();
    let (sell, _) = h.place(B, Side::Sell, 8_100, 10_000);
    h.rejects(
        CommandKind::AmendOrder {
            account: B,
            order: sell,
            price_fen: None,
            quantity_t: Some(10_001),
        },
        Reject::InsufficientAllowances,
    );
    let (buy, _) = h.place(A, Side::Buy, 8_000, 12_000);
    assert_eq!(h.funds(A), (MILLION_RMB - 96_000_000, 96_000_000, 0));
    h.rejects(
        CommandKind::AmendOrder {
            account: A,
            order: buy,
            price_fen: None,
            quantity_t: Some(12_501),
        },
        Reject::InsufficientFunds,
    );
    h.ok(CommandKind::AmendOrder {
        account: A,
        order: buy,
        price_fen: Some(7_000 + 999),
        quantity_t: None,
    });
    assert_eq!(h.funds(A).1, 12_000 * 7_999);
}

#[test]
fn self_trade_prevention_modes() {
    for (mode, expect_resting_left, expect_incoming_cancelled) in [
        (StpMode::CancelIncoming, true, true),
        (StpMode::CancelResting, false, false),
        (StpMode::CancelBoth, false, true),
    ] {
        let mut h = Harness::market();
        h.ok(CommandKind::SetStpMode {
            account: A,
            stp: mode,
        });
        let (own, _) = h.place(A, Side::Sell, 8_000, 10);
        h.place(B, Side::Sell, 8_000, 10);
        let (buy, events) = h.place(A, Side::Buy, 8_000, 15);
        let c = cancels(&events);
        assert_eq!(
            h.engine.order(own).is_some(),
            expect_resting_left,
            "{mode:?}"
        );
        assert_eq!(
            c.iter()
                .any(|(id, _, r)| *id == own && *r == CancelReason::SelfTrade),
            !expect_resting_left,
            "{mode:?}"
        );
        assert_eq!(
            c.iter()
                .any(|(id, _, r)| *id == buy && *r == CancelReason::SelfTrade),
            expect_incoming_cancelled,
            "{mode:?}"
        );
        let t = trades(&events);
        match mode {
            StpMode::CancelResting => {
                assert_eq!(t.len(), 1);
                assert_eq!(h.engine.order(buy).unwrap().leaves_t, 5);
            }
            _ => assert!(
                t.is_empty(),
                "{mode:?}: own order first in the queue stops the match"
            ),
        }
        assert!(t.iter().all(|t| t.buy.account != t.sell.account));
    }
}

#[test]
fn no_short_selling_and_no_credit() {
    let mut h = Harness::market();
    h.rejects_order(A, Side::Sell, 8_000, 10_001, Reject::InsufficientAllowances);
    h.rejects_order(A, Side::Buy, 8_000, 12_501, Reject::InsufficientFunds);
    h.place(A, Side::Buy, 8_000, 12_500);
    assert_eq!(h.funds(A), (0, MILLION_RMB, 0));
    h.rejects_order(A, Side::Buy, 7_200, 1, Reject::InsufficientFunds);
}

#[test]
fn fees_go_to_the_exchange_floored_to_the_fen() {
    let spec = InstrumentSpec {
        maker_fee_bp: 2,
        taker_fee_bp: 5,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::market_with(spec);
    h.place(B, Side::Sell, 7_990, 100);
    // Lock: 800,000 + floor(800,000 x 5 / 10,000) = 800,400.
    let order = h.order(A, Side::Buy, 8_000, 100);
    let events = h.ok(CommandKind::PlaceOrder(order));
    let t = trades(&events)[0];
    // Notional 799,000: taker 399.5 -> 399, maker 159.8 -> 159.
    assert_eq!((t.buy.fee_fen, t.sell.fee_fen), (399, 159));
    assert_eq!(h.funds(A), (MILLION_RMB - 799_000 - 399, 0, 0));
    assert_eq!(h.funds(B), (MILLION_RMB + 799_000 - 159, 0, 0));
    assert_eq!(h.funds(FEES), (558, 0, 0));
    let lock_event = events
        .iter()
        .any(|e| matches!(e, EventKind::Balance { account, .. } if *account == FEES));
    assert!(lock_event);
}

#[test]
fn allowances_bought_today_are_sellable_from_the_next_day() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 8_000, 100);
    h.place(A, Side::Buy, 8_000, 100);
    h.ok(CommandKind::WithdrawAllowances {
        transfer: TransferId(900),
        account: A,
        instrument: CEA,
        quantity_t: 10_000,
    });
    assert_eq!(h.position(A), (0, 0, 100));
    h.rejects_order(A, Side::Sell, 8_000, 1, Reject::InsufficientAllowances);
    h.ok(CommandKind::CloseDay);
    let events = h.ok(CommandKind::OpenDay { date: 20250103 });
    assert!(events.contains(&EventKind::Position {
        account: A,
        instrument: CEA,
        free_t: 100,
        locked_t: 0,
        pending_t: 0
    }));
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    h.place(A, Side::Sell, 8_000, 100);
}

#[test]
fn t_plus_zero_and_deferred_proceeds_are_parameters() {
    let spec = InstrumentSpec {
        t_plus_one: false,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::new(EngineConfig {
        proceeds_same_day: false,
        ..Harness::config()
    });
    h.ok(CommandKind::CreateInstrument(spec));
    for account in [A, B] {
        h.ok(CommandKind::OpenAccount {
            account,
            stp: StpMode::CancelIncoming,
        });
        h.credit(account, MILLION_RMB);
        h.deposit(account, 100);
    }
    h.ok(CommandKind::OpenDay { date: 20250102 });
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    h.place(B, Side::Sell, 8_000, 100);
    h.place(A, Side::Buy, 8_000, 100);
    assert_eq!(h.position(A), (200, 0, 0), "T+0: sellable at once");
    assert_eq!(
        h.funds(B),
        (MILLION_RMB, 0, 800_000),
        "proceeds pending until tomorrow"
    );
    h.ok(CommandKind::CloseDay);
    h.ok(CommandKind::OpenDay { date: 20250103 });
    assert_eq!(h.funds(B), (MILLION_RMB + 800_000, 0, 0));
}

#[test]
fn position_limits_and_large_holder_reports() {
    let spec = InstrumentSpec {
        large_holder_t: 10_050,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::market_with(spec);
    h.ok(CommandKind::SetPositionLimit {
        account: A,
        instrument: CEA,
        limit_t: 10_100,
    });
    h.place(B, Side::Sell, 8_000, 500);
    let (_, events) = h.place(A, Side::Buy, 8_000, 60);
    assert!(events.contains(&EventKind::LargeHolder {
        account: A,
        instrument: CEA,
        holding_t: 10_060
    }));
    h.place(A, Side::Buy, 7_000 + 900, 40);
    // Holding 10,060 + open buy 40 = the limit: one more tonne is refused.
    h.rejects_order(A, Side::Buy, 7_900, 1, Reject::PositionLimitExceeded);
    let (_, events) = h.place(C, Side::Buy, 8_000, 1);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EventKind::LargeHolder { .. }))
    );
}

#[test]
fn the_instrument_wide_limits_apply_to_accounts_without_their_own() {
    let mut h = Harness::market();
    h.ok(CommandKind::SetPositionLimit {
        account: A,
        instrument: CEA,
        limit_t: 20_000,
    });
    let events = h.ok(CommandKind::SetInstrumentLimits {
        instrument: CEA,
        position_limit_t: Some(10_030),
        large_holder_t: Some(10_020),
    });
    assert_eq!(
        events,
        vec![EventKind::InstrumentLimitsSet {
            instrument: CEA,
            position_limit_t: 10_030,
            large_holder_t: 10_020,
        }]
    );
    h.place(B, Side::Sell, 8_000, 500);
    // C holds 10,000: a 20 t buy reaches the 10,020 t threshold (reported), and then
    // 10,020 + 11 > 10,030 is refused while 10 more fits exactly.
    let (_, events) = h.place(C, Side::Buy, 8_000, 20);
    assert!(events.contains(&EventKind::LargeHolder {
        account: C,
        instrument: CEA,
        holding_t: 10_020
    }));
    h.rejects_order(C, Side::Buy, 8_000, 11, Reject::PositionLimitExceeded);
    h.place(C, Side::Buy, 8_000, 10);
    // A keeps its own 20,000 t limit.
    h.place(A, Side::Buy, 8_000, 400);
    // `None` leaves a value as it is; `u64::MAX` lifts it.
    let events = h.ok(CommandKind::SetInstrumentLimits {
        instrument: CEA,
        position_limit_t: Some(u64::MAX),
        large_holder_t: None,
    });
    assert_eq!(
        events,
        vec![EventKind::InstrumentLimitsSet {
            instrument: CEA,
            position_limit_t: u64::MAX,
            large_holder_t: 10_020,
        }]
    );
    // The report: A (10,000 + 400, its own 20,000 t limit) before C (10,000 + 30, the
    // instrument's, now none); B sold 430 of its 10,000 and holds 9,570 + 70 locked
    // = 9,640 t, under the threshold.
    let report = h.engine.large_holders(CEA).unwrap();
    assert_eq!(
        (report.position_limit_t, report.large_holder_t),
        (u64::MAX, 10_020)
    );
    let rows: Vec<_> = report
        .holders
        .iter()
        .map(|r| (r.account, r.holding_t, r.limit_t, r.own_limit))
        .collect();
    assert_eq!(
        rows,
        vec![(A, 10_400, 20_000, true), (C, 10_030, u64::MAX, false)]
    );
    h.rejects(
        CommandKind::SetInstrumentLimits {
            instrument: engine::InstrumentId(9),
            position_limit_t: Some(1),
            large_holder_t: None,
        },
        Reject::UnknownInstrument,
    );
}

#[test]
fn orders_are_accepted_only_in_continuous_sessions_and_cancels_always() {
    let mut h = Harness::market();
    let (id, _) = h.place(A, Side::Buy, 8_000, 10);
    h.ok(CommandKind::SetPhase {
        phase: Phase::Break,
    });
    h.rejects_order(A, Side::Buy, 8_000, 10, Reject::MarketClosed);
    h.rejects(
        CommandKind::AmendOrder {
            account: A,
            order: id,
            price_fen: Some(7_990),
            quantity_t: None,
        },
        Reject::MarketClosed,
    );
    h.ok(CommandKind::CancelOrder {
        account: A,
        order: id,
    });
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    h.ok(CommandKind::SetPhase {
        phase: Phase::PostClose,
    });
    h.rejects_order(A, Side::Buy, 8_000, 10, Reject::MarketClosed);
    h.rejects(
        CommandKind::SetPhase {
            phase: Phase::PreOpen,
        },
        Reject::InvalidPhaseChange,
    );
    h.ok(CommandKind::CloseDay);
    h.rejects(
        CommandKind::SetPhase {
            phase: Phase::Continuous,
        },
        Reject::DayNotOpen,
    );
    h.rejects(CommandKind::CloseDay, Reject::DayNotOpen);
    h.rejects(CommandKind::OpenDay { date: 20250102 }, Reject::InvalidDate);
    h.rejects(CommandKind::OpenDay { date: 20251345 }, Reject::InvalidDate);
    h.ok(CommandKind::OpenDay { date: 20250103 });
    h.rejects(
        CommandKind::OpenDay { date: 20250104 },
        Reject::DayAlreadyOpen,
    );
    h.rejects_order(A, Side::Buy, 8_000, 10, Reject::MarketClosed);
}

#[test]
fn halt_rejects_orders_and_can_cancel_the_book() {
    let mut h = Harness::market();
    let (a, _) = h.place(A, Side::Buy, 7_990, 10);
    let (b, _) = h.place(B, Side::Sell, 8_010, 10);
    h.ok(CommandKind::HaltInstrument {
        instrument: CEA,
        cancel_orders: false,
    });
    h.rejects_order(A, Side::Buy, 8_000, 10, Reject::InstrumentHalted);
    assert!(h.engine.order(a).is_some());
    let events = h.ok(CommandKind::HaltInstrument {
        instrument: CEA,
        cancel_orders: true,
    });
    assert_eq!(
        cancels(&events),
        vec![(a, 10, CancelReason::Halt), (b, 10, CancelReason::Halt)]
    );
    h.ok(CommandKind::ResumeInstrument { instrument: CEA });
    h.place(A, Side::Buy, 8_000, 10);
    h.rejects(
        CommandKind::HaltInstrument {
            instrument: InstrumentId(9),
            cancel_orders: false,
        },
        Reject::UnknownInstrument,
    );
}

#[test]
fn close_day_expires_day_orders_and_publishes_the_vwap_close() {
    let mut h = Harness::market();
    h.place(B, Side::Sell, 7_990, 100);
    h.place(A, Side::Buy, 7_990, 100);
    h.place(B, Side::Sell, 8_010, 300);
    h.place(A, Side::Buy, 8_010, 300);
    let (day, _) = h.place(A, Side::Buy, 7_500, 10);
    let gtc = NewOrder {
        time_in_force: TimeInForce::Gtc,
        ..h.order(A, Side::Buy, 7_200, 10)
    };
    let (gtc, _) = h.place_order(gtc);
    h.ok(CommandKind::SetPhase {
        phase: Phase::PostClose,
    });
    let events = h.ok(CommandKind::CloseDay);
    assert_eq!(cancels(&events), vec![(day, 10, CancelReason::Expiry)]);
    // VWAP = (100 x 7,990 + 300 x 8,010) / 400 = 8,005.
    let bar = DailyBar {
        instrument: CEA,
        date: 20250102,
        open_fen: 7_990,
        high_fen: 8_010,
        low_fen: 7_990,
        close_fen: 8_005,
        volume_t: 400,
        turnover_fen: 3_202_000,
        trades: 2,
    };
    assert!(events.contains(&EventKind::ClosingPrice(bar)));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, EventKind::DayClosed { date: 20250102 }))
            .count(),
        1
    );
    assert!(h.engine.order(gtc).is_some(), "GTC survives the close");
    // Next day's band: 8,005 +/- 10% = [7,204.5 -> 7,205, 8,805.5 -> 8,805]; the GTC order at
    // 7,200 keeps resting below the new band.
    let events = h.ok(CommandKind::OpenDay { date: 20250103 });
    assert!(events.contains(&EventKind::PriceBand {
        instrument: CEA,
        reference_fen: 8_005,
        low_fen: 7_205,
        high_fen: 8_805
    }));
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    assert_eq!(h.engine.best_bid(CEA), Some(7_200));
    h.rejects_order(A, Side::Buy, 7_204, 1, Reject::PriceOutsideBand);
    // A day without trades closes at the previous close.
    let events = h.ok(CommandKind::CloseDay);
    assert!(events.iter().any(
        |e| matches!(e, EventKind::ClosingPrice(bar) if bar.close_fen == 8_005 && bar.volume_t == 0)
    ));
}

#[test]
fn last_trade_closing_method_is_a_parameter() {
    let spec = InstrumentSpec {
        closing_method: ClosingPriceMethod::LastTrade,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::market_with(spec);
    h.place(B, Side::Sell, 7_990, 100);
    h.place(A, Side::Buy, 7_990, 100);
    h.place(B, Side::Sell, 8_010, 1);
    h.place(A, Side::Buy, 8_010, 1);
    let events = h.ok(CommandKind::CloseDay);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EventKind::ClosingPrice(bar) if bar.close_fen == 8_010))
    );
}

#[test]
fn price_and_quantity_validation() {
    let spec = InstrumentSpec {
        tick_fen: 5,
        lot_t: 10,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::market_with(spec);
    h.rejects_order(A, Side::Buy, 8_001, 10, Reject::PriceNotOnTick);
    h.rejects_order(A, Side::Buy, 0, 10, Reject::InvalidPrice);
    h.rejects_order(A, Side::Buy, -5, 10, Reject::InvalidPrice);
    h.rejects_order(A, Side::Buy, 7_195, 10, Reject::PriceOutsideBand);
    h.rejects_order(A, Side::Buy, 8_000, 0, Reject::InvalidQuantity);
    h.rejects_order(A, Side::Buy, 8_000, 15, Reject::QuantityNotOnLot);
    h.rejects_order(A, Side::Buy, 8_000, 100_000, Reject::QuantityAboveMax);
    let unknown = NewOrder {
        instrument: InstrumentId(7),
        ..h.order(A, Side::Buy, 8_000, 10)
    };
    h.rejects(CommandKind::PlaceOrder(unknown), Reject::UnknownInstrument);
    h.place(A, Side::Buy, 7_200, 10);
    h.place(A, Side::Buy, 8_800, 10);
    h.ok(CommandKind::CreditFunds {
        transfer: TransferId(77),
        account: A,
        amount_fen: 10 * MILLION_RMB,
    });
    h.place(A, Side::Buy, 8_000, 99_990);
}

#[test]
fn transfers_are_idempotent_by_id() {
    let mut h = Harness::market();
    let deposit = CommandKind::DepositAllowances {
        transfer: TransferId(500),
        account: A,
        instrument: CEA,
        quantity_t: 25,
    };
    h.ok(deposit);
    assert_eq!(
        h.ok(deposit),
        vec![EventKind::TransferAlreadyApplied {
            transfer: TransferId(500)
        }]
    );
    assert_eq!(h.position(A), (10_025, 0, 0));
    h.rejects(
        CommandKind::DepositAllowances {
            transfer: TransferId(500),
            account: A,
            instrument: CEA,
            quantity_t: 26,
        },
        Reject::DuplicateTransferId,
    );
    h.rejects(
        CommandKind::WithdrawAllowances {
            transfer: TransferId(501),
            account: A,
            instrument: CEA,
            quantity_t: 10_026,
        },
        Reject::InsufficientAllowances,
    );
    h.rejects(
        CommandKind::DebitFunds {
            transfer: TransferId(502),
            account: A,
            amount_fen: MILLION_RMB + 1,
        },
        Reject::InsufficientFunds,
    );
    h.rejects(
        CommandKind::CreditFunds {
            transfer: TransferId(503),
            account: A,
            amount_fen: 0,
        },
        Reject::InvalidParameter,
    );
    h.rejects(
        CommandKind::DepositAllowances {
            transfer: TransferId(504),
            account: A,
            instrument: CEA,
            quantity_t: 0,
        },
        Reject::InvalidQuantity,
    );
    h.rejects(
        CommandKind::CreditFunds {
            transfer: TransferId(505),
            account: AccountId(404),
            amount_fen: 1,
        },
        Reject::UnknownAccount,
    );
    let debit = CommandKind::DebitFunds {
        transfer: TransferId(506),
        account: A,
        amount_fen: 100,
    };
    assert_eq!(
        h.ok(debit),
        vec![
            EventKind::FundsDebited {
                transfer: TransferId(506),
                account: A,
                amount_fen: 100
            },
            EventKind::Balance {
                account: A,
                free_fen: MILLION_RMB - 100,
                locked_fen: 0,
                pending_fen: 0
            },
        ]
    );
    assert_eq!(
        h.ok(debit),
        vec![EventKind::TransferAlreadyApplied {
            transfer: TransferId(506)
        }]
    );
}

#[test]
fn restricted_accounts_may_cancel_but_not_trade() {
    let mut h = Harness::market();
    let (id, _) = h.place(A, Side::Buy, 7_990, 10);
    h.ok(CommandKind::RestrictAccount {
        account: A,
        restricted: true,
        cancel_orders: false,
    });
    h.rejects_order(A, Side::Buy, 8_000, 10, Reject::AccountRestricted);
    h.rejects(
        CommandKind::AmendOrder {
            account: A,
            order: id,
            price_fen: Some(7_980),
            quantity_t: None,
        },
        Reject::AccountRestricted,
    );
    h.ok(CommandKind::CancelOrder {
        account: A,
        order: id,
    });
    h.ok(CommandKind::RestrictAccount {
        account: A,
        restricted: false,
        cancel_orders: false,
    });
    let (id, _) = h.place(A, Side::Buy, 8_000, 10);
    let events = h.ok(CommandKind::RestrictAccount {
        account: A,
        restricted: true,
        cancel_orders: true,
    });
    assert_eq!(cancels(&events), vec![(id, 10, CancelReason::Restricted)]);
}

#[test]
fn cancel_all_cancels_in_order_id_order_optionally_per_instrument() {
    let mut h = Harness::market();
    h.ok(CommandKind::CreateInstrument(InstrumentSpec::listed(
        Symbol::new("CEA2024").unwrap(),
        6_000,
    )));
    h.ok(CommandKind::DepositAllowances {
        transfer: TransferId(600),
        account: A,
        instrument: InstrumentId(1),
        quantity_t: 50,
    });
    let (x, _) = h.place(A, Side::Buy, 7_900, 10);
    let other = NewOrder {
        instrument: InstrumentId(1),
        ..h.order(A, Side::Sell, 6_000, 50)
    };
    let (y, _) = h.place_order(other);
    let (z, _) = h.place(A, Side::Buy, 7_800, 10);
    h.ok(CommandKind::AmendOrder {
        account: A,
        order: x,
        price_fen: Some(7_700),
        quantity_t: None,
    });
    let events = h.ok(CommandKind::CancelAll {
        account: A,
        instrument: Some(CEA),
    });
    assert_eq!(
        cancels(&events),
        vec![
            (x, 10, CancelReason::CancelAll),
            (z, 10, CancelReason::CancelAll)
        ]
    );
    let events = h.ok(CommandKind::CancelAll {
        account: A,
        instrument: None,
    });
    assert_eq!(cancels(&events), vec![(y, 50, CancelReason::CancelAll)]);
    assert_eq!(
        h.ok(CommandKind::CancelAll {
            account: A,
            instrument: None
        }),
        vec![]
    );
}

#[test]
fn plain_fifo_book_without_band_or_funds() {
    let mut h = Harness::new(EngineConfig {
        risk_checks: false,
        ..Harness::config()
    });
    h.ok(CommandKind::CreateInstrument(InstrumentSpec::plain(
        Symbol::new("X").unwrap(),
        100,
    )));
    h.ok(CommandKind::OpenAccount {
        account: A,
        stp: StpMode::CancelIncoming,
    });
    h.ok(CommandKind::OpenAccount {
        account: B,
        stp: StpMode::CancelIncoming,
    });
    h.ok(CommandKind::OpenDay { date: 20250102 });
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    // No funds, no allowances, any price, any size.
    h.place(B, Side::Sell, 1, 5_000_000);
    h.place(B, Side::Sell, 1_000_000, 7);
    let (_, events) = h.place(A, Side::Buy, 2_000_000, 5_000_003);
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(fills, vec![(1, 5_000_000), (1_000_000, 3)]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EventKind::Balance { .. } | EventKind::Position { .. }))
    );
    assert_eq!(h.funds(A), (0, 0, 0));
}

#[test]
fn named_limits_are_enforced() {
    let mut h = Harness::new(EngineConfig {
        limits: Limits {
            accounts_max: 3,
            instruments_max: 1,
            orders_max: 4,
            orders_per_account_max: 3,
            ..Limits::default()
        },
        ..Harness::config()
    });
    h.ok(CommandKind::CreateInstrument(InstrumentSpec::listed(
        Symbol::new("CEA2025").unwrap(),
        8_000,
    )));
    h.rejects(
        CommandKind::CreateInstrument(InstrumentSpec::listed(
            Symbol::new("CEA2026").unwrap(),
            8_000,
        )),
        Reject::InstrumentsLimit,
    );
    h.rejects(
        CommandKind::CreateInstrument(InstrumentSpec::listed(
            Symbol::new("CEA2025").unwrap(),
            8_000,
        )),
        Reject::InstrumentExists,
    );
    h.ok(CommandKind::OpenAccount {
        account: A,
        stp: StpMode::CancelIncoming,
    });
    h.ok(CommandKind::OpenAccount {
        account: B,
        stp: StpMode::CancelIncoming,
    });
    h.rejects(
        CommandKind::OpenAccount {
            account: B,
            stp: StpMode::CancelIncoming,
        },
        Reject::AccountExists,
    );
    h.rejects(
        CommandKind::OpenAccount {
            account: C,
            stp: StpMode::CancelIncoming,
        },
        Reject::AccountsLimit,
    );
    h.credit(A, MILLION_RMB);
    h.credit(B, MILLION_RMB);
    h.ok(CommandKind::OpenDay { date: 20250102 });
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    for price in [7_900, 7_901, 7_902] {
        h.place(A, Side::Buy, price, 1);
    }
    h.rejects_order(A, Side::Buy, 7_903, 1, Reject::OrdersPerAccountLimit);
    h.place(B, Side::Buy, 7_903, 1);
    h.rejects_order(B, Side::Buy, 7_904, 1, Reject::OrdersLimit);
    // An IOC never rests, so the limits do not apply to it.
    let ioc = NewOrder {
        time_in_force: TimeInForce::Ioc,
        ..h.order(A, Side::Buy, 7_904, 1)
    };
    h.place_order(ioc);
}

#[test]
fn invalid_instrument_parameters_are_rejected() {
    let mut h = Harness::new(Harness::config());
    let base = InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000);
    for (spec, reason) in [
        (
            InstrumentSpec {
                tick_fen: 0,
                ..base
            },
            Reject::InvalidParameter,
        ),
        (
            InstrumentSpec { lot_t: 0, ..base },
            Reject::InvalidParameter,
        ),
        (
            InstrumentSpec {
                taker_fee_bp: 1_001,
                ..base
            },
            Reject::InvalidParameter,
        ),
        (
            InstrumentSpec {
                band_bp: Some(10_001),
                ..base
            },
            Reject::InvalidParameter,
        ),
        (
            InstrumentSpec {
                reference_price_fen: 0,
                ..base
            },
            Reject::InvalidPrice,
        ),
        (
            InstrumentSpec {
                tick_fen: 3,
                reference_price_fen: 8_000,
                ..base
            },
            Reject::PriceNotOnTick,
        ),
    ] {
        h.rejects(CommandKind::CreateInstrument(spec), reason);
    }
    assert!(
        Symbol::new("").is_none()
            && Symbol::new("CEA-2025").is_none()
            && Symbol::new("ABCDEFGHIJKLM").is_none()
    );
}

#[test]
fn commands_must_arrive_in_sequence() {
    let mut engine = Engine::new(Harness::config());
    let mut out = Vec::new();
    let open = CommandKind::OpenAccount {
        account: A,
        stp: StpMode::CancelIncoming,
    };
    let err = engine
        .apply(
            &Command {
                seq: 2,
                timestamp_ns: 0,
                kind: open,
            },
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err,
        SequenceError {
            expected: 1,
            got: 2
        }
    );
    assert!(out.is_empty());
    engine
        .apply(
            &Command {
                seq: 1,
                timestamp_ns: 0,
                kind: open,
            },
            &mut out,
        )
        .unwrap();
    assert!(
        engine
            .apply(
                &Command {
                    seq: 1,
                    timestamp_ns: 0,
                    kind: open
                },
                &mut out
            )
            .is_err()
    );
}

#[test]
fn level_two_depth_view() {
    let mut h = Harness::market();
    h.place(A, Side::Buy, 7_990, 10);
    h.place(B, Side::Buy, 7_990, 5);
    h.place(A, Side::Buy, 7_980, 1);
    h.place(B, Side::Sell, 8_020, 3);
    let book = h.engine.book(CEA, 1).unwrap();
    assert_eq!(
        book.bids,
        vec![BookLevel {
            price_fen: 7_990,
            quantity_t: 15,
            orders: 2
        }]
    );
    assert_eq!(
        book.asks,
        vec![BookLevel {
            price_fen: 8_020,
            quantity_t: 3,
            orders: 1
        }]
    );
    assert_eq!(h.engine.book(CEA, 10).unwrap().bids.len(), 2);
}
