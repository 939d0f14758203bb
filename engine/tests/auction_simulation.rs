//! Seeded simulation of whole trading days with the opening call, block agreements and
//! one-way bidding mixed into continuous trading: `check_invariants()` (funds and allowances
//! conserved, locks equal to what orders, proposals, bids and offers hold) after every
//! command, and a snapshot round trip at every day's end. Rerun a seed with
//! `CARBONX_SEED=<seed> cargo test -p engine --test auction_simulation`.

mod common;

use common::{Harness, Rng};
use engine::*;

const ACCOUNTS: [AccountId; 5] = [
    AccountId(11),
    AccountId(12),
    AccountId(13),
    AccountId(14),
    AccountId(15),
];

fn pick(rng: &mut Rng) -> AccountId {
    ACCOUNTS[rng.below(5) as usize]
}

fn last_id(events: &[EventKind]) -> Option<OrderId> {
    events.iter().rev().find_map(|e| match e {
        EventKind::BlockProposed { block, .. } => Some(*block),
        EventKind::BiddingAnnounced { auction, .. } => Some(*auction),
        _ => None,
    })
}

fn order(rng: &mut Rng, client: u64) -> CommandKind {
    let instrument = InstrumentId(rng.below(2) as u32);
    let side = if rng.below(2) == 0 {
        Side::Buy
    } else {
        Side::Sell
    };
    let offset = rng.below(60) as i64 - 30;
    CommandKind::PlaceOrder(NewOrder {
        account: pick(rng),
        client_order_id: ClientOrderId(client),
        instrument,
        side,
        kind: OrderKind::Limit,
        time_in_force: [TimeInForce::Day, TimeInForce::Gtc, TimeInForce::Ioc]
            [rng.below(3) as usize],
        price_fen: 8_000 + offset,
        quantity_t: 1 + rng.below(400),
        post_only: false,
    })
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed);
    let mut h = Harness::new(EngineConfig {
        fee_account: AccountId(1),
        limits: Limits {
            accounts_max: 16,
            instruments_max: 4,
            orders_max: 4_096,
            orders_per_account_max: 1_000,
            ..Limits::default()
        },
        ..EngineConfig::default()
    });
    let call = InstrumentSpec {
        opening_call: true,
        maker_fee_bp: 3,
        taker_fee_bp: 5,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    h.ok(CommandKind::CreateInstrument(call));
    h.ok(CommandKind::CreateInstrument(InstrumentSpec {
        maker_fee_bp: 1,
        ..InstrumentSpec::listed(Symbol::new("CEA2024").unwrap(), 8_000)
    }));
    for (n, account) in ACCOUNTS.iter().enumerate() {
        h.ok(CommandKind::OpenAccount {
            account: *account,
            stp: StpMode::CancelIncoming,
        });
        h.ok(CommandKind::CreditFunds {
            transfer: TransferId(100 + n as u64),
            account: *account,
            amount_fen: 1 << 42,
        });
        for i in 0..2u32 {
            let transfer = TransferId(200 + 2 * n as u64 + u64::from(i));
            h.ok(CommandKind::DepositAllowances {
                transfer,
                account: *account,
                instrument: InstrumentId(i),
                quantity_t: 600_000,
            });
        }
    }
    let (mut blocks, mut auctions, mut client) = (Vec::new(), Vec::new(), 0u64);
    let mut trades_by_kind = [0usize; 4];
    for day in 0..6u32 {
        h.ok(CommandKind::OpenDay {
            date: 20250102 + day,
        });
        h.ok(CommandKind::SetPhase {
            phase: Phase::OpeningCall,
        });
        for _ in 0..60 {
            client += 1;
            let kind = order(&mut rng, client);
            h.run(kind);
        }
        let events = h.ok(CommandKind::SetPhase {
            phase: Phase::Continuous,
        });
        count(&events, &mut trades_by_kind);
        h.ok(CommandKind::SetBlockWindow { open: true });
        for step in 0..400 {
            if step == 200 {
                // Mid-day, with pending blocks, open auctions and their bids.
                roundtrip(&mut h, seed, day);
            }
            client += 1;
            let instrument = InstrumentId(rng.below(2) as u32);
            let kind = match rng.below(20) {
                0..=8 => order(&mut rng, client),
                9 => CommandKind::ProposeBlock {
                    proposer: pick(&mut rng),
                    counterparty: pick(&mut rng),
                    client_order_id: ClientOrderId(client),
                    instrument,
                    side: if rng.below(2) == 0 {
                        Side::Buy
                    } else {
                        Side::Sell
                    },
                    price_fen: 6_000 + rng.below(4_000) as i64,
                    quantity_t: 100_000 + rng.below(3) * 50_000,
                },
                10 | 11 if !blocks.is_empty() => {
                    let block = blocks[rng.below(blocks.len() as u64) as usize];
                    match rng.below(3) {
                        0 => CommandKind::AcceptBlock {
                            account: pick(&mut rng),
                            block,
                        },
                        1 => CommandKind::RejectBlock {
                            account: pick(&mut rng),
                            block,
                        },
                        _ => CommandKind::CancelBlock {
                            account: pick(&mut rng),
                            block,
                        },
                    }
                }
                12 => CommandKind::AnnounceBidding {
                    seller: pick(&mut rng),
                    instrument,
                    quantity_t: 100_000 + rng.below(2) * 100_000,
                    reserve: if rng.below(2) == 0 {
                        ReserveRule::PreviousClose
                    } else {
                        ReserveRule::TenPercentBelow
                    },
                    pricing: if rng.below(2) == 0 {
                        Pricing::Uniform
                    } else {
                        Pricing::PayAsBid
                    },
                    bidder_max_bp: 2_000 + rng.below(8_001) as u32,
                },
                13..=17 if !auctions.is_empty() => {
                    let auction = auctions[rng.below(auctions.len() as u64) as usize];
                    match rng.below(10) {
                        0 | 1 => CommandKind::OpenBidding { auction },
                        2 => CommandKind::CloseBidding { auction },
                        _ => CommandKind::PlaceBid {
                            auction,
                            bidder: pick(&mut rng),
                            client_order_id: ClientOrderId(client),
                            price_fen: 7_200 + rng.below(1_600) as i64,
                            quantity_t: 1 + rng.below(80_000),
                        },
                    }
                }
                18 => CommandKind::CancelAll {
                    account: pick(&mut rng),
                    instrument: None,
                },
                _ => order(&mut rng, client),
            };
            let events = h.run(kind);
            count(&events, &mut trades_by_kind);
            if let Some(id) = last_id(&events) {
                if matches!(kind, CommandKind::ProposeBlock { .. }) {
                    blocks.push(id)
                } else {
                    auctions.push(id)
                }
            }
        }
        let events = h.ok(CommandKind::CloseDay);
        count(&events, &mut trades_by_kind);
        let hash = h.engine.state_hash();
        let restored = Engine::restore(&h.engine.snapshot())
            .unwrap_or_else(|e| panic!("seed {seed} day {day}: {e}"));
        assert_eq!(
            restored.state_hash(),
            hash,
            "seed {seed} day {day}: snapshot round trip"
        );
        h.engine = restored;
    }
    eprintln!("seed {seed}: trades continuous/auction/block/bidding = {trades_by_kind:?}");
    assert!(
        trades_by_kind.iter().all(|n| *n > 0),
        "seed {seed}: every kind of trade should occur: {trades_by_kind:?}"
    );
}

/// Replaces the engine by one restored from its snapshot; the state must hash the same.
fn roundtrip(h: &mut Harness, seed: u64, day: u32) {
    let hash = h.engine.state_hash();
    let restored = Engine::restore(&h.engine.snapshot())
        .unwrap_or_else(|e| panic!("seed {seed} day {day}: {e}"));
    assert_eq!(
        restored.state_hash(),
        hash,
        "seed {seed} day {day}: snapshot round trip"
    );
    h.engine = restored;
}

fn count(events: &[EventKind], by_kind: &mut [usize; 4]) {
    for event in events {
        if let EventKind::Trade(t) = event {
            let slot = match t.kind {
                TradeKind::Continuous => 0,
                TradeKind::OpeningAuction => 1,
                TradeKind::Block => 2,
                TradeKind::Bidding => 3,
            };
            by_kind[slot] += 1;
            assert!(t.quantity_t > 0 && t.buy.account != t.sell.account);
        }
    }
}

#[test]
fn days_with_auctions_and_negotiated_trades_keep_every_invariant() {
    let seeds: Vec<u64> = match std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (1..6).collect(),
    };
    for seed in seeds {
        simulate(seed);
    }
}
