//! Closed orders stay queryable: filled at entry, filled while resting, IOC residuals,
//! cancelled, market orders; an account's list; through a snapshot; two trading days kept.

mod common;

use common::*;
use engine::*;

fn closed(h: &Harness, id: OrderId) -> (bool, u64, u64, u64) {
    let c = h
        .engine
        .closed_order(id)
        .unwrap_or_else(|| panic!("{id:?} not kept"));
    assert_eq!(c.view.leaves_t, 0);
    (c.filled, c.view.quantity_t, c.view.filled_t, c.cancelled_t)
}

#[test]
fn every_way_of_leaving_the_book_is_kept() {
    let mut h = Harness::market();
    // B offers 1,000 t at 80.00; A takes 600 of it at once.
    let (offer, _) = h.place(B, Side::Sell, 8_000, 1_000);
    let (take, _) = h.place(A, Side::Buy, 8_000, 600);
    assert_eq!(closed(&h, take), (true, 600, 600, 0));
    let kept = h
        .engine
        .closed_order(take)
        .unwrap_or_else(|| panic!("kept"));
    assert_eq!(
        (
            kept.view.account,
            kept.view.side,
            kept.view.price_fen,
            kept.market
        ),
        (A, Side::Buy, 8_000, false)
    );
    assert!(
        h.engine.closed_order(offer).is_none(),
        "still resting: live"
    );
    // An IOC for 500 fills the offer's last 400; 100 are cancelled. The offer is filled.
    let ioc = NewOrder {
        time_in_force: TimeInForce::Ioc,
        ..h.order(A, Side::Buy, 8_000, 500)
    };
    let (ioc, _) = h.place_order(ioc);
    assert_eq!(closed(&h, ioc), (false, 500, 400, 100));
    assert_eq!(closed(&h, offer), (true, 1_000, 1_000, 0));
    // A resting order cancelled by its owner: 50 t cancelled, nothing filled.
    let (rest, _) = h.place(B, Side::Sell, 8_100, 50);
    h.ok(CommandKind::CancelOrder {
        account: B,
        order: rest,
    });
    assert_eq!(closed(&h, rest), (false, 50, 0, 50));
    // A market sell for 20 t against nothing: cancelled whole, kept as a market order.
    let market = NewOrder {
        kind: OrderKind::Market,
        price_fen: 0,
        time_in_force: TimeInForce::Ioc,
        ..h.order(B, Side::Sell, 0, 20)
    };
    let (market, _) = h.place_order(market);
    let m = h
        .engine
        .closed_order(market)
        .unwrap_or_else(|| panic!("kept"));
    assert_eq!((m.market, m.view.price_fen, m.cancelled_t), (true, 0, 20));
    // Each account's, in order-id order.
    let ids = |h: &Harness, a| {
        h.engine
            .closed_orders_of(a, 10)
            .iter()
            .map(|c| c.view.order)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&h, A), vec![take, ioc]);
    assert_eq!(ids(&h, B), vec![offer, rest, market]);
    assert_eq!(ids(&h, C), vec![]);
    // At most the `max` most recently closed: B's newest two.
    assert_eq!(
        h.engine
            .closed_orders_of(B, 2)
            .iter()
            .map(|c| c.view.order)
            .collect::<Vec<_>>(),
        vec![rest, market]
    );

    // A snapshot keeps them, byte for byte.
    let restored = Engine::restore(&h.engine.snapshot()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    assert_eq!(restored.closed_order(ioc), h.engine.closed_order(ioc));
    assert_eq!(
        restored.closed_orders_of(B, 10),
        h.engine.closed_orders_of(B, 10)
    );
}

#[test]
fn closed_orders_are_kept_through_the_next_trading_day() {
    let mut h = Harness::market();
    let (day_one, _) = h.place(A, Side::Buy, 7_900, 10);
    h.ok(CommandKind::CloseDay);
    // The DAY order expired at the close: kept as cancelled.
    assert_eq!(closed(&h, day_one), (false, 10, 0, 10));
    h.ok(CommandKind::OpenDay { date: 20250103 });
    h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    assert!(
        h.engine.closed_order(day_one).is_some(),
        "the previous day's"
    );
    let (day_two, _) = h.place(A, Side::Buy, 7_900, 10);
    h.ok(CommandKind::CloseDay);
    h.ok(CommandKind::OpenDay { date: 20250106 });
    // Day three: what closed before day two opened is gone; day two's stays.
    assert!(h.engine.closed_order(day_one).is_none());
    assert_eq!(closed(&h, day_two), (false, 10, 0, 10));
    assert_eq!(h.engine.closed_orders_of(A, 10).len(), 1);
}
