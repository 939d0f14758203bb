//! Registry flows over gRPC (four eyes, pledges enforced for auction, voluntary
//! cancellation, the journal) and the negotiated trades (a block trade, a one-way bidding
//! auction), each ending with a clean reconciliation.

use proto::v1 as pb;
use tests::*;
use tonic::Code;

async fn reconcile_clean(server: &TestServer) {
    let mut audit = Clients::of(server, "audit").await;
    assert_reconciled(&mut audit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_pledges_and_cancellation_through_the_api() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut ministry = Clients::of(&server, "ministry").await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m3 = Clients::of(&server, "m3").await;
    let mut bank = Clients::of(&server, "bank").await;
    let mut audit = Clients::of(&server, "audit").await;

    ministry
        .registry
        .set_four_eyes_threshold(pb::FourEyesRequest {
            idempotency_key: "4eyes".into(),
            threshold_t: 1_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let proposed = m1
        .registry
        .propose_transfer(pb::TransferRequest {
            idempotency_key: "big".into(),
            from_account_id: M1,
            to_account_id: M2,
            unit: "CEA2025".into(),
            quantity_t: 5_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(proposed.proposal_id > 0);
    let h = cea2025_holding(&mut m1, M1).await;
    assert_eq!((h.registry_available_t, h.frozen_t), (45_000, 5_000));
    assert_eq!(h.frozen[0].reason, "PENDING_TRANSFER");
    // The proposer cannot be the second approver.
    let err = m1
        .registry
        .approve_transfer(pb::ProposalRequest {
            idempotency_key: "self-approve".into(),
            proposal_id: proposed.proposal_id,
        })
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "SAME_APPROVER")
    );
    let pending = audit
        .registry
        .list_proposals(pb::ListProposalsRequest { pending_only: true })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .proposals;
    assert_eq!(pending.len(), 1);
    ministry
        .registry
        .approve_transfer(pb::ProposalRequest {
            idempotency_key: "approve".into(),
            proposal_id: proposed.proposal_id,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cea2025_holding(&mut m1, M1).await.frozen_t, 0);
    assert_eq!(
        cea2025_holding(&mut ministry, M2)
            .await
            .registry_available_t,
        55_001
    );

    // A bank takes a pledge on m3's registry holding (securing RMB 200,000.00), then
    // enforces it for sale at the exchange: the units land in m3's trading position,
    // locked there for the bank's sale (tests/pledge_sale.rs sells them).
    let pledge = bank
        .registry
        .register_pledge(pb::PledgeRequest {
            idempotency_key: "pledge-1".into(),
            pledgor_account_id: M3,
            pledgee_account_id: BANK,
            unit: "CEA2025".into(),
            quantity_t: 2_000,
            secured_fen: 20_000_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .pledge_id;
    assert!(pledge > 0);
    let h = cea2025_holding(&mut m3, M3).await;
    assert_eq!(
        (
            h.registry_available_t,
            h.frozen_t,
            h.frozen[0].reason.as_str()
        ),
        (48_002, 2_000, "PLEDGE")
    );
    let listed = bank
        .registry
        .list_pledges(pb::ListPledgesRequest {
            pledgee_account_id: BANK,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .pledges;
    assert_eq!(listed[0].state, "REGISTERED");
    let enforced = bank
        .registry
        .enforce_pledge(pb::PledgeActionRequest {
            idempotency_key: "enforce-1".into(),
            pledge_id: pledge,
            enforcement: pb::Enforcement::ForAuction as i32,
            claim_fen: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(enforced.engine_sequence > 0);
    let h = cea2025_holding(&mut m3, M3).await;
    assert_eq!(
        (h.registry_available_t, h.trading_t, h.frozen_t),
        (48_002, 52_000, 0)
    );
    let a3 = m3
        .trading
        .get_trading_account(pb::GetTradingAccountRequest { account_id: M3 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (a3.positions[0].free_t, a3.positions[0].locked_t),
        (50_000, 2_000)
    );
    reconcile_clean(&server).await;

    // Voluntary cancellation retires units for good.
    m1.registry
        .voluntary_cancel(pb::MoveRequest {
            idempotency_key: "cancel-1".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 100,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cea2025_holding(&mut audit, CANCELLATION)
            .await
            .registry_available_t,
        100
    );

    // The journal names each operation, chains, and verifies.
    let mut entries = audit
        .registry
        .read_journal(pb::ReadJournalRequest {
            from_sequence: 1,
            limit: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut kinds = Vec::new();
    let mut prev: Vec<u8> = vec![0; 32];
    while let Some(e) = entries.message().await.unwrap_or_else(|e| panic!("{e}")) {
        assert_eq!(e.prev_hash, prev, "entry {} does not chain", e.sequence);
        prev = e.hash.clone();
        kinds.push(e.kind);
    }
    for k in [
        "OPEN_ACCOUNT",
        "CREATE_UNIT",
        "ISSUE",
        "ALLOCATE",
        "TRANSFER",
        "MOVE_TO_TRADING",
        "APPROVE_TRANSFER",
        "PLEDGE_REGISTER",
        "PLEDGE_ENFORCE",
        "VOLUNTARY_CANCEL",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let verify = verify_journal(&mut audit, "flows").await;
    assert!(
        verify.ok && verify.entries == kinds.len() as u64,
        "{verify:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_trade_and_a_bidding_auction_settle_in_the_registry() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    let mut m3 = Clients::of(&server, "m3").await;
    // Top up m1's exchange position so it can sell a block of 100,000 t... it has 50,000;
    // use two sellers' worth: the block is m1 -> m2 for the minimum 100,000 t after a
    // further deposit of the rest of m1's registry holding.
    m1.registry
        .move_to_trading(pb::MoveRequest {
            idempotency_key: "more".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 50_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ops.admin
        .set_block_window(pb::SetBlockWindowRequest { open: true })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let block = m1
        .trading
        .propose_block(pb::ProposeBlockRequest {
            account_id: M1,
            counterparty_account_id: M2,
            client_order_id: 1,
            instrument: "CEA2025".into(),
            side: pb::Side::Sell as i32,
            price_fen: 8_000,
            quantity_t: 100_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(block.block_id > 0);
    // Only the named counterparty may accept.
    let err = m3
        .trading
        .accept_block(pb::BlockActionRequest {
            account_id: M3,
            block_id: block.block_id,
        })
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(reason(&err), "NOT_COUNTERPARTY");
    let accepted = m2
        .trading
        .accept_block(pb::BlockActionRequest {
            account_id: M2,
            block_id: block.block_id,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(accepted.trade_id > 0);
    let trades = m3
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
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (trades[0].kind, trades[0].quantity_t, trades[0].price_fen),
        (pb::TradeKind::Block as i32, 100_000, 8_000)
    );
    reconcile_clean(&server).await;
    assert_eq!(cea2025_holding(&mut m2, M2).await.trading_t, 150_000);

    // m3 sells 100,000 t in a one-way bidding auction; m1 and m2 bid.
    let announced = ops
        .auction
        .announce_bidding(pb::AnnounceBiddingRequest {
            seller_account_id: M3,
            instrument: "CEA2025".into(),
            quantity_t: 100_000,
            reserve: pb::ReserveRule::TenPercentBelow as i32,
            pricing: pb::Pricing::Uniform as i32,
            bidder_max_bp: 0,
        })
        .await;
    // m3 holds only 50,000 t at the exchange: refused for allowances.
    let err = announced.map(drop).unwrap_err();
    assert_eq!(reason(&err), "INSUFFICIENT_ALLOWANCES");
    let auction = ops
        .auction
        .announce_bidding(pb::AnnounceBiddingRequest {
            seller_account_id: M3,
            instrument: "CEA2025".into(),
            quantity_t: 40_000,
            reserve: pb::ReserveRule::TenPercentBelow as i32,
            pricing: pb::Pricing::Uniform as i32,
            bidder_max_bp: 0,
        })
        .await;
    // Below the bidding minimum of 100,000 t.
    assert_eq!(
        reason(&auction.map(drop).unwrap_err()),
        "QUANTITY_BELOW_MIN"
    );
    // The seller tops up and offers 100,000 t.
    m3.registry
        .move_to_trading(pb::MoveRequest {
            idempotency_key: "m3-more".into(),
            account_id: M3,
            unit: "CEA2025".into(),
            quantity_t: 50_002,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let auction = ops
        .auction
        .announce_bidding(pb::AnnounceBiddingRequest {
            seller_account_id: M3,
            instrument: "CEA2025".into(),
            quantity_t: 100_000,
            reserve: pb::ReserveRule::TenPercentBelow as i32,
            pricing: pb::Pricing::Uniform as i32,
            bidder_max_bp: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .auction_id;
    ops.auction
        .open_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // m2 paid 800,000,000 fen for the block; the settlement bank tops it up.
    ops.admin
        .credit_funds(pb::FundsRequest {
            transfer_id: 9_001,
            account_id: M2,
            amount_fen: 1_000_000_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (c, account, price, q) in [(&mut m1, M1, 8_400, 60_000), (&mut m2, M2, 8_300, 60_000)] {
        c.auction
            .place_bid(pb::PlaceBidRequest {
                auction_id: auction,
                account_id: account,
                client_order_id: 7,
                price_fen: price,
                quantity_t: q,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let result = ops
        .auction
        .close_bidding(pb::AuctionActionRequest {
            auction_id: auction,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    // Uniform price: the lowest accepted bid (8,300) for all 100,000 t.
    assert_eq!(
        (result.clearing_fen, result.sold_t, result.unsold_t),
        (8_300, 100_000, 0)
    );
    reconcile_clean(&server).await;
    assert_eq!(cea2025_holding(&mut m1, M1).await.trading_t, 60_000);
    assert_eq!(cea2025_holding(&mut m2, M2).await.trading_t, 190_000);
    assert_eq!(cea2025_holding(&mut m3, M3).await.trading_t, 2);
}
