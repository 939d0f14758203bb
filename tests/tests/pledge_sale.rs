//! A pledge enforced for auction, end to end: the bank enforces, the units are locked in
//! the pledgor's trading account, the bank announces their sale, members bid, the operator
//! closes, and the proceeds pay the bank first, up to its claim, and the pledgor the rest,
//! to the fen; the ledgers reconcile.

use proto::v1 as pb;
use tests::*;
use tonic::Code;

async fn funds(c: &mut Clients, account: u64) -> (i64, i64) {
    let a = c
        .trading
        .get_trading_account(pb::GetTradingAccountRequest {
            account_id: account,
        })
        .await
        .unwrap_or_else(|e| panic!("account {account}: {e}"))
        .into_inner();
    (a.funds_free_fen, a.funds_locked_fen)
}

async fn pledge_and_enforce(bank: &mut Clients, claim_fen: u64) -> u64 {
    let pledge = bank
        .registry
        .register_pledge(pb::PledgeRequest {
            idempotency_key: "pledge-1".into(),
            pledgor_account_id: M3,
            pledgee_account_id: BANK,
            unit: "CEA2025".into(),
            quantity_t: 2_000,
            // A loan of up to RMB 200,000.00.
            secured_fen: 20_000_000,
        })
        .await
        .unwrap_or_else(|e| panic!("pledge: {e}"))
        .into_inner()
        .pledge_id;
    bank.registry
        .enforce_pledge(pb::PledgeActionRequest {
            idempotency_key: "enforce-1".into(),
            pledge_id: pledge,
            enforcement: pb::Enforcement::ForAuction as i32,
            claim_fen,
        })
        .await
        .unwrap_or_else(|e| panic!("enforce: {e}"));
    pledge
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_defaulted_pledge_is_sold_and_the_bank_is_paid_first() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut bank = Clients::of(&server, "bank").await;
    let mut m3 = Clients::of(&server, "m3").await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut audit = Clients::of(&server, "audit").await;

    // Claims above the secured RMB 200,000.00 are refused; the bank claims RMB 120,000.00.
    let pledge = bank
        .registry
        .register_pledge(pb::PledgeRequest {
            idempotency_key: "pledge-0".into(),
            pledgor_account_id: M3,
            pledgee_account_id: BANK,
            unit: "CEA2025".into(),
            quantity_t: 10,
            secured_fen: 1_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .pledge_id;
    let e = bank
        .registry
        .enforce_pledge(pb::PledgeActionRequest {
            idempotency_key: "enforce-0".into(),
            pledge_id: pledge,
            enforcement: pb::Enforcement::ForAuction as i32,
            claim_fen: 1_001,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e), field(&e)),
        (
            Code::InvalidArgument,
            "INVALID_FIELD".into(),
            "claim_fen".into()
        )
    );
    let pledge = pledge_and_enforce(&mut bank, 12_000_000).await;
    let listed = bank
        .registry
        .list_pledges(pb::ListPledgesRequest {
            pledgee_account_id: BANK,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .pledges;
    let p = listed.iter().find(|p| p.pledge_id == pledge).unwrap();
    assert_eq!(
        (p.state.as_str(), p.secured_fen, p.claim_fen),
        ("ENFORCED_FOR_AUCTION", 20_000_000, 12_000_000)
    );

    // The pledgor holds 50,000 t free and the 2,000 pledged locked: it cannot sell them or
    // take them back to the registry.
    let e = m3
        .trading
        .place_order(limit(M3, 1, pb::Side::Sell, 8_500, 50_001))
        .await
        .unwrap_err();
    assert!(
        matches!(
            reason(&e).as_str(),
            "INSUFFICIENT_ALLOWANCES" | "QUANTITY_ABOVE_MAX"
        ),
        "{e:?}"
    );
    let e = m3
        .registry
        .move_from_trading(pb::MoveRequest {
            idempotency_key: "back".into(),
            account_id: M3,
            unit: "CEA2025".into(),
            quantity_t: 50_001,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "INSUFFICIENT_ALLOWANCES", "{e:?}");

    // Only the pledge's pledgee (or the operator) announces its sale.
    let announce = pb::AnnounceDisposalRequest {
        pledge_id: pledge,
        reserve: pb::ReserveRule::PreviousClose as i32,
        pricing: pb::Pricing::Uniform as i32,
        bidder_max_bp: 0,
    };
    let mut m1 = Clients::of(&server, "m1").await;
    let e = m1.auction.announce_disposal(announce).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let auction = bank
        .auction
        .announce_disposal(announce)
        .await
        .unwrap_or_else(|e| panic!("announce: {e}"))
        .into_inner()
        .auction_id;
    let e = bank.auction.announce_disposal(announce).await.unwrap_err();
    assert_eq!(reason(&e), "DISPOSAL_IN_AUCTION");
    ops.auction
        .open_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let mut m2 = Clients::of(&server, "m2").await;
    for (c, account, price_fen, quantity_t) in
        [(&mut m1, M1, 8_600, 1_500), (&mut m2, M2, 8_550, 1_000)]
    {
        c.auction
            .place_bid(pb::PlaceBidRequest {
                auction_id: auction,
                account_id: account,
                client_order_id: 1,
                price_fen,
                quantity_t,
            })
            .await
            .unwrap_or_else(|e| panic!("bid: {e}"));
    }
    let (bank_before, _) = funds(&mut bank, BANK).await;
    let (m3_before, _) = funds(&mut m3, M3).await;
    let result = ops
        .auction
        .close_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("close: {e}"))
        .into_inner();
    // Uniform price: M1's 1,500 and 500 of M2's 1,000 fill at the lowest winning bid,
    // 85.50. 2,000 t x 85.50 = RMB 171,000.00 = 17,100,000 fen, no fee on CEA2025. The
    // bank's claim, 12,000,000 fen, comes first; M3 gets 17,100,000 - 12,000,000 =
    // 5,100,000 fen (RMB 51,000.00).
    assert_eq!(
        (result.clearing_fen, result.sold_t, result.unsold_t),
        (8_550, 2_000, 0)
    );
    assert_eq!(
        result.disposal,
        Some(pb::DisposalSettlement {
            pledge_id: pledge,
            pledgee_account_id: BANK,
            paid_fen: 12_000_000,
            claim_left_fen: 0,
            kept_t: 0,
            released_t: 0,
        })
    );
    assert_eq!(funds(&mut bank, BANK).await, (bank_before + 12_000_000, 0));
    assert_eq!(funds(&mut m3, M3).await, (m3_before + 5_100_000, 0));
    // The sold units left M3's registry trading position at settlement.
    assert_reconciled(&mut audit).await;
    let h = cea2025_holding(&mut m3, M3).await;
    assert_eq!(h.trading_t, 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_claim_keeps_the_rest_locked_across_a_restart() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut bank = Clients::of(&server, "bank").await;
    // No claim given: the pledge's secured amount, RMB 200,000.00, is claimed.
    let pledge = pledge_and_enforce(&mut bank, 0).await;
    let dir = server
        .stop_keep_dir()
        .unwrap_or_else(|| panic!("no data directory"));
    let server = TestServer::start_with(test_config(dir.path()));
    let mut bank = Clients::of(&server, "bank").await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m3 = Clients::of(&server, "m3").await;
    // The day open before the restart is still open.
    let announce = pb::AnnounceDisposalRequest {
        pledge_id: pledge,
        reserve: pb::ReserveRule::TenPercentBelow as i32,
        pricing: pb::Pricing::PayAsBid as i32,
        bidder_max_bp: 0,
    };
    let auction = bank
        .auction
        .announce_disposal(announce)
        .await
        .unwrap_or_else(|e| panic!("announce after the restart: {e}"))
        .into_inner()
        .auction_id;
    ops.auction
        .open_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    m1.auction
        .place_bid(pb::PlaceBidRequest {
            auction_id: auction,
            account_id: M1,
            client_order_id: 1,
            price_fen: 8_000,
            quantity_t: 1_200,
        })
        .await
        .unwrap_or_else(|e| panic!("bid: {e}"));
    let result = ops
        .auction
        .close_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    // 1,200 t x 80.00 = 9,600,000 fen, all to the bank (under its 20,000,000 claim):
    // 10,400,000 still owed, so the 800 t unsold stay locked for another auction.
    assert_eq!(
        result.disposal,
        Some(pb::DisposalSettlement {
            pledge_id: pledge,
            pledgee_account_id: BANK,
            paid_fen: 9_600_000,
            claim_left_fen: 10_400_000,
            kept_t: 800,
            released_t: 0,
        })
    );
    let a3 = m3
        .trading
        .get_trading_account(pb::GetTradingAccountRequest { account_id: M3 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (a3.positions[0].free_t, a3.positions[0].locked_t),
        (50_000, 800)
    );
    bank.auction
        .announce_disposal(announce)
        .await
        .unwrap_or_else(|e| panic!("the rest is for sale again: {e}"));
    drop(dir);
}
