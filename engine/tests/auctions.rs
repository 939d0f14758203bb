//! Opening call auction, block agreements and one-way bidding, on exact events and balances.

mod common;

use common::*;
use engine::*;

const MILLION_RMB: i64 = 100_000_000;

fn call_market() -> Harness {
    let spec = InstrumentSpec {
        opening_call: true,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = Harness::new(Harness::config());
    h.ok(CommandKind::CreateInstrument(spec));
    for account in [A, B, C] {
        h.ok(CommandKind::OpenAccount {
            account,
            stp: StpMode::CancelIncoming,
        });
        h.credit(account, MILLION_RMB);
        h.deposit(account, 10_000);
    }
    h.ok(CommandKind::OpenDay { date: 20250102 });
    h.ok(CommandKind::SetPhase {
        phase: Phase::OpeningCall,
    });
    h
}

fn indicative(events: &[EventKind]) -> Option<(i64, u64, i64)> {
    events.iter().find_map(|e| match e {
        EventKind::Indicative {
            price_fen,
            volume_t,
            imbalance_t,
            ..
        } => Some((*price_fen, *volume_t, *imbalance_t)),
        _ => None,
    })
}

#[test]
fn the_call_collects_orders_publishes_indicative_and_uncrosses_at_one_price() {
    let mut h = call_market();
    let (_, events) = h.place(A, Side::Buy, 8_020, 100);
    assert!(trades(&events).is_empty());
    assert_eq!(
        indicative(&events),
        None,
        "one side only: nothing to publish yet"
    );
    let (ask1, events) = h.place(B, Side::Sell, 7_990, 60);
    assert!(trades(&events).is_empty(), "no matching during the call");
    // Candidates 7,990, 8,000 (reference), 8,020 all trade 60 with buy surplus 40: the
    // highest price wins on market pressure.
    assert_eq!(indicative(&events), Some((8_020, 60, 40)));
    let (ask2, events) = h.place(C, Side::Sell, 8_010, 60);
    // At 8,010 and 8,020: 100 trade (buy 100, sell 120), imbalance -20: sell surplus -> 8,010.
    assert_eq!(indicative(&events), Some((8_010, 100, -20)));
    // The book may be crossed during the call.
    assert_eq!(
        (h.engine.best_bid(CEA), h.engine.best_ask(CEA)),
        (Some(8_020), Some(7_990))
    );
    let (later, _) = h.place(A, Side::Buy, 8_010, 10);
    let ioc = NewOrder {
        time_in_force: TimeInForce::Ioc,
        ..h.order(A, Side::Buy, 8_000, 1)
    };
    h.rejects(CommandKind::PlaceOrder(ioc), Reject::NotAllowedInPhase);

    let events = h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    assert_eq!(
        events[0],
        EventKind::AuctionUncross {
            instrument: CEA,
            price_fen: 8_010,
            volume_t: 110
        }
    );
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.sell.order, t.price_fen, t.quantity_t, t.kind, t.aggressor))
        .collect();
    assert_eq!(
        fills,
        vec![
            (ask1, 8_010, 60, TradeKind::OpeningAuction, None),
            (ask2, 8_010, 40, TradeKind::OpeningAuction, None),
            (ask2, 8_010, 10, TradeKind::OpeningAuction, None),
        ]
    );
    assert!(trades(&events)[2].buy.order == later);
    assert!(events.contains(&EventKind::PhaseChanged {
        phase: Phase::Continuous
    }));
    // A paid 110 x 8,010 from locks taken at its own limits; B and C sold at 8,010.
    assert_eq!(h.funds(A), (MILLION_RMB - 110 * 8_010, 0, 0));
    assert_eq!(h.funds(B).0, MILLION_RMB + 60 * 8_010);
    assert_eq!(
        h.position(C),
        (9_940, 10, 0),
        "10 t of C's ask carry into continuous trading"
    );
    assert_eq!(h.engine.best_ask(CEA), Some(8_010));
    assert_eq!(h.engine.best_bid(CEA), None);
}

#[test]
fn remaining_orders_keep_their_time_priority_into_continuous_trading() {
    let mut h = call_market();
    let (first, _) = h.place(A, Side::Buy, 7_990, 10);
    let (second, _) = h.place(B, Side::Buy, 7_990, 10);
    let events = h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    assert_eq!(
        events[0],
        EventKind::AuctionUncross {
            instrument: CEA,
            price_fen: 0,
            volume_t: 0
        },
        "one-sided book: no uncross"
    );
    let (_, events) = h.place(C, Side::Sell, 7_990, 15);
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.buy.order, t.quantity_t))
        .collect();
    assert_eq!(fills, vec![(first, 10), (second, 5)]);
}

#[test]
fn self_matches_in_the_uncross_cancel_the_later_order() {
    let mut h = call_market();
    h.place(A, Side::Buy, 8_000, 10);
    let (own, _) = h.place(A, Side::Sell, 8_000, 10);
    h.place(B, Side::Sell, 8_000, 10);
    let events = h.ok(CommandKind::SetPhase {
        phase: Phase::Continuous,
    });
    assert_eq!(cancels(&events), vec![(own, 10, CancelReason::SelfTrade)]);
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(trades(&events)[0].sell.account, B);
}

fn block_market() -> Harness {
    let mut h = Harness::market();
    h.credit(A, 100 * MILLION_RMB);
    h.deposit(B, 200_000);
    h.ok(CommandKind::SetBlockWindow { open: true });
    h
}

fn propose(
    proposer: AccountId,
    counterparty: AccountId,
    side: Side,
    price_fen: i64,
    quantity_t: u64,
) -> CommandKind {
    CommandKind::ProposeBlock {
        proposer,
        counterparty,
        client_order_id: ClientOrderId(9),
        instrument: CEA,
        side,
        price_fen,
        quantity_t,
    }
}

fn block_id(events: &[EventKind]) -> OrderId {
    events
        .iter()
        .find_map(|e| {
            if let EventKind::BlockProposed { block, .. } = e {
                Some(*block)
            } else {
                None
            }
        })
        .unwrap()
}

#[test]
fn a_block_trade_locks_the_proposer_and_settles_on_acceptance() {
    let mut h = block_market();
    let events = h.ok(propose(B, A, Side::Sell, 9_000, 150_000));
    let block = block_id(&events);
    assert_eq!(
        h.position(B),
        (60_000, 150_000, 0),
        "the proposer's allowances are locked"
    );
    h.rejects(
        CommandKind::AcceptBlock { account: C, block },
        Reject::NotCounterparty,
    );
    let events = h.ok(CommandKind::AcceptBlock { account: A, block });
    let t = trades(&events);
    assert_eq!(
        (t[0].kind, t[0].price_fen, t[0].quantity_t, t[0].aggressor),
        (TradeKind::Block, 9_000, 150_000, None)
    );
    assert_eq!(h.funds(A), (101 * MILLION_RMB - 150_000 * 9_000, 0, 0));
    assert_eq!(h.position(A), (10_000, 0, 150_000));
    assert_eq!(h.funds(B), (MILLION_RMB + 150_000 * 9_000, 0, 0));
    assert_eq!(h.position(B), (60_000, 0, 0));
    h.rejects(
        CommandKind::AcceptBlock { account: A, block },
        Reject::UnknownBlock,
    );
    // Block trades do not move the continuous closing price.
    let events = h.ok(CommandKind::CloseDay);
    assert!(events.iter().any(
        |e| matches!(e, EventKind::ClosingPrice(bar) if bar.close_fen == 8_000 && bar.volume_t == 0)
    ));
}

#[test]
fn block_rules_size_band_window_and_funds() {
    let mut h = block_market();
    h.rejects(
        propose(B, A, Side::Sell, 9_000, 99_999),
        Reject::QuantityBelowMin,
    );
    // +/-30% of 8,000: 5,600 to 10,400.
    h.rejects(
        propose(B, A, Side::Sell, 10_401, 100_000),
        Reject::PriceOutsideBand,
    );
    h.rejects(
        propose(B, A, Side::Sell, 5_599, 100_000),
        Reject::PriceOutsideBand,
    );
    h.rejects(
        propose(B, B, Side::Sell, 9_000, 100_000),
        Reject::NotCounterparty,
    );
    h.rejects(
        propose(C, A, Side::Sell, 9_000, 100_000),
        Reject::InsufficientAllowances,
    );
    h.rejects(
        propose(C, A, Side::Buy, 9_000, 100_000),
        Reject::InsufficientFunds,
    );
    let block = block_id(&h.ok(propose(A, C, Side::Buy, 10_400, 100_000)));
    // C has 10,000 t: it cannot accept a 100,000 t sale.
    h.rejects(
        CommandKind::AcceptBlock { account: C, block },
        Reject::InsufficientAllowances,
    );
    h.ok(CommandKind::RejectBlock { account: C, block });
    assert_eq!(h.funds(A), (101 * MILLION_RMB, 0, 0));
    let block = block_id(&h.ok(propose(B, A, Side::Sell, 9_000, 100_000)));
    h.ok(CommandKind::CancelBlock { account: B, block });
    let block = block_id(&h.ok(propose(B, A, Side::Sell, 9_000, 100_000)));
    let events = h.ok(CommandKind::SetBlockWindow { open: false });
    assert!(events.contains(&EventKind::BlockExpired { block }));
    assert_eq!(h.position(B), (210_000, 0, 0));
    h.rejects(
        propose(B, A, Side::Sell, 9_000, 100_000),
        Reject::BlockWindowClosed,
    );
}

fn bidding_market() -> Harness {
    let mut h = Harness::market();
    h.deposit(C, 190_000);
    for account in [A, B] {
        h.credit(account, 20 * MILLION_RMB);
    }
    h
}

fn announce(
    h: &mut Harness,
    reserve: ReserveRule,
    pricing: Pricing,
    bidder_max_bp: u32,
) -> OrderId {
    let events = h.ok(CommandKind::AnnounceBidding {
        seller: C,
        instrument: CEA,
        quantity_t: 200_000,
        reserve,
        pricing,
        bidder_max_bp,
    });
    let id = events
        .iter()
        .find_map(|e| {
            if let EventKind::BiddingAnnounced { auction, .. } = e {
                Some(*auction)
            } else {
                None
            }
        })
        .unwrap();
    h.ok(CommandKind::OpenBidding { auction: id });
    id
}

fn bid(
    h: &mut Harness,
    auction: OrderId,
    bidder: AccountId,
    price_fen: i64,
    quantity_t: u64,
) -> Vec<EventKind> {
    h.run(CommandKind::PlaceBid {
        auction,
        bidder,
        client_order_id: ClientOrderId(1),
        price_fen,
        quantity_t,
    })
}

#[test]
fn uniform_price_bidding_fills_by_price_then_time_with_a_partial_marginal_bid() {
    let mut h = bidding_market();
    let auction = announce(
        &mut h,
        ReserveRule::TenPercentBelow,
        Pricing::Uniform,
        10_000,
    );
    assert_eq!(h.position(C), (0, 200_000, 0), "the offer is locked");
    // Reserve 7,200 (8,000 - 10%); cap 8,800 (8,000 + 10%).
    assert_eq!(
        bid(&mut h, auction, A, 7_199, 1_000),
        vec![EventKind::Rejected {
            reason: Reject::BidBelowReserve
        }]
    );
    assert_eq!(
        bid(&mut h, auction, A, 8_801, 1_000),
        vec![EventKind::Rejected {
            reason: Reject::BidAboveCap
        }]
    );
    assert_eq!(
        bid(&mut h, auction, C, 8_000, 1_000),
        vec![EventKind::Rejected {
            reason: Reject::NotCounterparty
        }]
    );
    bid(&mut h, auction, A, 8_500, 120_000);
    bid(&mut h, auction, B, 8_000, 60_000);
    bid(&mut h, auction, A, 8_000, 50_000);
    bid(&mut h, auction, B, 7_500, 10_000);
    let events = h.ok(CommandKind::CloseBidding { auction });
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.buy.account, t.price_fen, t.quantity_t, t.kind))
        .collect();
    // 120,000 at the top, then 80,000 left for the two 8,000 bids: B came first (60,000),
    // A's marginal bid gets 20,000. Everyone pays the lowest accepted bid, 8,000.
    assert_eq!(
        fills,
        vec![
            (A, 8_000, 120_000, TradeKind::Bidding),
            (B, 8_000, 60_000, TradeKind::Bidding),
            (A, 8_000, 20_000, TradeKind::Bidding)
        ]
    );
    assert!(events.contains(&EventKind::BiddingClosed {
        auction,
        clearing_fen: 8_000,
        sold_t: 200_000,
        unsold_t: 0
    }));
    assert_eq!(
        h.funds(A),
        (21 * MILLION_RMB - 140_000 * 8_000, 0, 0),
        "unfilled bid funds released"
    );
    assert_eq!(h.funds(B), (21 * MILLION_RMB - 60_000 * 8_000, 0, 0));
    assert_eq!(h.funds(C), (MILLION_RMB + 200_000 * 8_000, 0, 0));
    assert_eq!(h.position(A), (10_000, 0, 140_000));
    h.rejects(
        CommandKind::CloseBidding { auction },
        Reject::UnknownAuction,
    );
}

#[test]
fn pay_as_bid_limits_and_unsold_quantity_returns() {
    let mut h = bidding_market();
    let auction = announce(&mut h, ReserveRule::PreviousClose, Pricing::PayAsBid, 5_000);
    assert_eq!(
        bid(&mut h, auction, A, 7_999, 1_000),
        vec![EventKind::Rejected {
            reason: Reject::BidBelowReserve
        }]
    );
    bid(&mut h, auction, A, 8_200, 60_000);
    // Per-bidder limit: 50% of 200,000 = 100,000.
    assert_eq!(
        bid(&mut h, auction, A, 8_100, 40_001),
        vec![EventKind::Rejected {
            reason: Reject::BidderLimitExceeded
        }]
    );
    bid(&mut h, auction, A, 8_100, 40_000);
    bid(&mut h, auction, B, 8_000, 30_000);
    let events = h.ok(CommandKind::CloseBidding { auction });
    let fills: Vec<_> = trades(&events)
        .iter()
        .map(|t| (t.buy.account, t.price_fen, t.quantity_t))
        .collect();
    assert_eq!(
        fills,
        vec![(A, 8_200, 60_000), (A, 8_100, 40_000), (B, 8_000, 30_000)]
    );
    assert!(events.contains(&EventKind::BiddingClosed {
        auction,
        clearing_fen: 8_000,
        sold_t: 130_000,
        unsold_t: 70_000
    }));
    assert_eq!(
        h.position(C),
        (70_000, 0, 0),
        "unsold allowances return to the seller"
    );
    assert_eq!(
        h.funds(C).0,
        MILLION_RMB + 60_000 * 8_200 + 40_000 * 8_100 + 30_000 * 8_000
    );
}

#[test]
fn bidding_announcement_rules() {
    let mut h = bidding_market();
    let announce = |quantity_t, bidder_max_bp| CommandKind::AnnounceBidding {
        seller: C,
        instrument: CEA,
        quantity_t,
        reserve: ReserveRule::PreviousClose,
        pricing: Pricing::Uniform,
        bidder_max_bp,
    };
    h.rejects(announce(99_999, 10_000), Reject::QuantityBelowMin);
    h.rejects(announce(200_001, 10_000), Reject::InsufficientAllowances);
    h.rejects(announce(100_000, 0), Reject::InvalidParameter);
    let events = h.ok(announce(100_000, 10_000));
    let auction = events
        .iter()
        .find_map(|e| {
            if let EventKind::BiddingAnnounced { auction, .. } = e {
                Some(*auction)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(
        bid(&mut h, auction, A, 8_000, 1),
        vec![EventKind::Rejected {
            reason: Reject::AuctionNotOpen
        }]
    );
    // Closing with no bids returns everything.
    let events = h.ok(CommandKind::CloseBidding { auction });
    assert!(events.contains(&EventKind::BiddingClosed {
        auction,
        clearing_fen: 0,
        sold_t: 0,
        unsold_t: 100_000
    }));
    assert_eq!(h.position(C), (200_000, 0, 0));
}
