//! Pledge disposal: pledged units locked in the pledgor's account, sold by one-way bidding,
//! the proceeds paying the pledgee first up to its claim and the pledgor the rest, to the fen.

mod common;

use common::*;
use engine::*;

const MILLION_RMB: i64 = 100_000_000;
const PLEDGE: u64 = 7;

/// C pledged `quantity_t` to the bank B; A bids. Every account starts with RMB 1,000,000.00
/// and 10,000 t free.
fn disposal_market(spec: InstrumentSpec, quantity_t: u64, claim_fen: i64) -> Harness {
    let mut h = Harness::market_with(spec);
    h.credit(A, 100 * MILLION_RMB);
    let events = h.ok(deposit(quantity_t, claim_fen));
    assert!(events.contains(&EventKind::DisposalOpened {
        disposal: PLEDGE,
        pledgor: C,
        pledgee: B,
        instrument: CEA,
        quantity_t,
        claim_fen,
    }));
    h
}

fn deposit(quantity_t: u64, claim_fen: i64) -> CommandKind {
    CommandKind::DepositForDisposal {
        transfer: TransferId(900),
        disposal: PLEDGE,
        pledgor: C,
        pledgee: B,
        instrument: CEA,
        quantity_t,
        claim_fen,
    }
}

fn announce_disposal() -> CommandKind {
    CommandKind::AnnounceDisposal {
        disposal: PLEDGE,
        reserve: ReserveRule::PreviousClose,
        pricing: Pricing::Uniform,
        bidder_max_bp: 10_000,
    }
}

/// Announces and opens the disposal's auction; its id.
fn open_disposal(h: &mut Harness) -> OrderId {
    let events = h.ok(announce_disposal());
    let auction = events
        .iter()
        .find_map(|e| match e {
            EventKind::BiddingAnnounced { auction, .. } => Some(*auction),
            _ => None,
        })
        .unwrap();
    h.ok(CommandKind::OpenBidding { auction });
    auction
}

fn bid(h: &mut Harness, auction: OrderId, price_fen: i64, quantity_t: u64) {
    h.ok(CommandKind::PlaceBid {
        auction,
        bidder: A,
        client_order_id: ClientOrderId(quantity_t),
        price_fen,
        quantity_t,
    });
}

fn settled(events: &[EventKind]) -> Option<EventKind> {
    events
        .iter()
        .find(|e| matches!(e, EventKind::DisposalSettled { .. }))
        .cloned()
}

#[test]
fn the_pledgee_is_paid_its_claim_first_and_the_pledgor_the_rest() {
    let spec = InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000);
    let mut h = disposal_market(spec, 5_000, 30_000_000);
    assert_eq!(
        h.position(C),
        (10_000, 5_000, 0),
        "the pledged 5,000 t are locked"
    );
    // The pledgor cannot sell them: 10,001 t is more than its free 10,000.
    h.rejects_order(C, Side::Sell, 8_000, 10_001, Reject::InsufficientAllowances);
    // A retry of the deposit is answered, not applied twice.
    assert_eq!(
        h.ok(deposit(5_000, 30_000_000)),
        vec![EventKind::TransferAlreadyApplied {
            transfer: TransferId(900)
        }]
    );
    let auction = open_disposal(&mut h);
    // 5,000 t is below the 100,000 t bidding minimum: a pledge sale has none.
    h.rejects(announce_disposal(), Reject::DisposalInAuction);
    bid(&mut h, auction, 8_500, 3_000);
    bid(&mut h, auction, 8_200, 1_000);
    let events = h.ok(CommandKind::CloseBidding { auction });
    // Uniform price: the lowest winning bid, 8,200. 4,000 t x 82.00 = RMB 328,000.00 =
    // 32,800,000 fen, no fee on this instrument. The claim of 30,000,000 fen is paid in
    // full; the pledgor keeps 2,800,000. The claim is settled, so the unsold 1,000 t go
    // back to the pledgor.
    assert_eq!(
        settled(&events),
        Some(EventKind::DisposalSettled {
            disposal: PLEDGE,
            auction,
            pledgee: B,
            paid_fen: 30_000_000,
            claim_left_fen: 0,
            kept_t: 0,
            released_t: 1_000,
        })
    );
    assert_eq!(h.funds(B), (MILLION_RMB + 30_000_000, 0, 0));
    assert_eq!(h.funds(C), (MILLION_RMB + 2_800_000, 0, 0));
    assert_eq!(h.funds(A), (101 * MILLION_RMB - 32_800_000, 0, 0));
    assert_eq!(h.position(C), (11_000, 0, 0));
    h.rejects(announce_disposal(), Reject::UnknownDisposal);
}

#[test]
fn a_claim_larger_than_the_sale_keeps_the_unsold_units_locked_for_another_auction() {
    let spec = InstrumentSpec {
        maker_fee_bp: 10,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
    };
    let mut h = disposal_market(spec, 5_000, 50_000_000);
    let auction = open_disposal(&mut h);
    bid(&mut h, auction, 8_000, 2_000);
    let events = h.ok(CommandKind::CloseBidding { auction });
    // 2,000 t x 80.00 = 16,000,000 fen; the seller's fee 0.1% = 16,000: net 15,984,000,
    // all of it to the pledgee; 50,000,000 - 15,984,000 = 34,016,000 still owed, so the
    // unsold 3,000 t stay locked.
    assert_eq!(
        settled(&events),
        Some(EventKind::DisposalSettled {
            disposal: PLEDGE,
            auction,
            pledgee: B,
            paid_fen: 15_984_000,
            claim_left_fen: 34_016_000,
            kept_t: 3_000,
            released_t: 0,
        })
    );
    assert_eq!(h.funds(B), (MILLION_RMB + 15_984_000, 0, 0));
    assert_eq!(
        h.funds(C),
        (MILLION_RMB, 0, 0),
        "nothing for the pledgor yet"
    );
    assert_eq!(h.position(C), (10_000, 3_000, 0));
    // The rest, in a second auction, through a snapshot in between.
    let bytes = h.engine.snapshot();
    h.engine = Engine::restore(&bytes).unwrap();
    assert_eq!(
        h.engine.snapshot(),
        bytes,
        "the disposal survives the snapshot as it was"
    );
    let auction = open_disposal(&mut h);
    bid(&mut h, auction, 8_000, 3_000);
    let events = h.ok(CommandKind::CloseBidding { auction });
    // 3,000 x 80.00 = 24,000,000 fen, fee 24,000: net 23,976,000, under the claim; all
    // to the pledgee, claim left 10,040,000, nothing unsold: the disposal is over.
    assert_eq!(
        settled(&events),
        Some(EventKind::DisposalSettled {
            disposal: PLEDGE,
            auction,
            pledgee: B,
            paid_fen: 23_976_000,
            claim_left_fen: 10_040_000,
            kept_t: 0,
            released_t: 0,
        })
    );
    assert_eq!(h.funds(B), (MILLION_RMB + 15_984_000 + 23_976_000, 0, 0));
    assert_eq!(h.position(C), (10_000, 0, 0));
    h.rejects(announce_disposal(), Reject::UnknownDisposal);
}

#[test]
fn bad_disposal_deposits_are_refused_and_change_nothing() {
    let mut h = Harness::market();
    let with =
        |pledgee: AccountId, quantity_t: u64, claim_fen: i64| CommandKind::DepositForDisposal {
            transfer: TransferId(901),
            disposal: PLEDGE,
            pledgor: C,
            pledgee,
            instrument: CEA,
            quantity_t,
            claim_fen,
        };
    h.rejects(with(C, 5_000, 1), Reject::InvalidParameter);
    h.rejects(with(B, 5_000, 0), Reject::InvalidParameter);
    h.rejects(with(B, 0, 1), Reject::InvalidQuantity);
    h.rejects(with(AccountId(99), 5_000, 1), Reject::UnknownAccount);
    assert_eq!(h.position(C), (10_000, 0, 0));
    h.ok(with(B, 5_000, 1));
    // The same pledge under another transfer id is not a second disposal.
    h.rejects(
        CommandKind::DepositForDisposal {
            transfer: TransferId(902),
            disposal: PLEDGE,
            pledgor: C,
            pledgee: B,
            instrument: CEA,
            quantity_t: 5_000,
            claim_fen: 1,
        },
        Reject::InvalidParameter,
    );
}
