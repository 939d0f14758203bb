//! Malformed and out-of-range fields for every request type: each gets INVALID_ARGUMENT
//! (or the right reason code) naming the field, and changes nothing.

use proto::v1 as pb;
use tests::*;
use tonic::{Code, Status};

async fn sequences(c: &mut Clients) -> (u64, u64) {
    let engine = c
        .market
        .get_market_status(pb::GetMarketStatusRequest {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .sequence;
    let registry = verify_journal(c, "counts").await.entries;
    (engine, registry)
}

/// (what, result, expected code, expected reason, expected field)
type Case = (String, Result<(), Status>, Code, &'static str, &'static str);

fn place(f: impl FnOnce(&mut pb::PlaceOrderRequest)) -> pb::PlaceOrderRequest {
    let mut r = limit(M1, 1, pb::Side::Buy, 8_500, 10);
    f(&mut r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_fields_are_refused_naming_the_field_and_change_nothing() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut ministry = Clients::of(&server, "ministry").await;
    let mut bank = Clients::of(&server, "bank").await;
    let mut audit = Clients::of(&server, "audit").await;
    let before = sequences(&mut audit).await;

    // (what, result, expected code, expected reason, expected field)
    let mut cases: Vec<Case> = Vec::new();
    macro_rules! case {
        ($what:expr, $call:expr, $code:expr, $reason:expr, $field:expr) => {
            cases.push((
                $what.to_string(),
                $call.await.map(drop),
                $code,
                $reason,
                $field,
            ));
        };
    }
    use Code::{InvalidArgument as IA, NotFound as NF};
    let t = &mut m1.trading;
    case!(
        "place: account 0",
        t.place_order(place(|r| r.account_id = 0)),
        Code::PermissionDenied,
        "ACCOUNT_NOT_ALLOWED",
        ""
    );
    case!(
        "place: client id 0",
        t.place_order(place(|r| r.client_order_id = 0)),
        IA,
        "INVALID_FIELD",
        "client_order_id"
    );
    case!(
        "place: no instrument",
        t.place_order(place(|r| r.instrument.clear())),
        IA,
        "INVALID_FIELD",
        "instrument"
    );
    case!(
        "place: unknown instrument",
        t.place_order(place(|r| r.instrument = "CEA1999".into())),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instrument"
    );
    // An echoed 20,000-character name is cut: the refusal is still the instrument's, not
    // RESOURCE_EXHAUSTED for oversized metadata.
    case!(
        "place: a 20,000-character instrument",
        t.place_order(place(|r| r.instrument = "X".repeat(20_000))),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instrument"
    );
    case!(
        "place: side unspecified",
        t.place_order(place(|r| r.side = 0)),
        IA,
        "INVALID_FIELD",
        "side"
    );
    case!(
        "place: side out of range",
        t.place_order(place(|r| r.side = 99)),
        IA,
        "INVALID_FIELD",
        "side"
    );
    case!(
        "place: type unspecified",
        t.place_order(place(|r| r.order_type = 0)),
        IA,
        "INVALID_FIELD",
        "order_type"
    );
    case!(
        "place: tif out of range",
        t.place_order(place(|r| r.time_in_force = -3)),
        IA,
        "INVALID_FIELD",
        "time_in_force"
    );
    case!(
        "place: price 0",
        t.place_order(place(|r| r.price_fen = 0)),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "place: price negative",
        t.place_order(place(|r| r.price_fen = -1)),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "place: price huge",
        t.place_order(place(|r| r.price_fen = i64::MAX)),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "place: FOK post-only",
        t.place_order(place(|r| {
            r.time_in_force = pb::TimeInForce::Fok as i32;
            r.post_only = true;
        })),
        IA,
        "INVALID_FIELD",
        "post_only"
    );
    case!(
        "place: market GTC",
        t.place_order(place(|r| {
            r.order_type = pb::OrderType::Market as i32;
            r.price_fen = 0;
            r.time_in_force = pb::TimeInForce::Gtc as i32;
        })),
        IA,
        "INVALID_FIELD",
        "time_in_force"
    );
    case!(
        "place: market with price",
        t.place_order(place(|r| {
            r.order_type = pb::OrderType::Market as i32;
        })),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "place: quantity 0",
        t.place_order(place(|r| r.quantity_t = 0)),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "place: quantity huge",
        t.place_order(place(|r| r.quantity_t = u64::MAX)),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "place: above max order",
        t.place_order(place(|r| r.quantity_t = 100_000)),
        IA,
        "QUANTITY_ABOVE_MAX",
        "quantity_t"
    );
    case!(
        "place: outside band",
        t.place_order(place(|r| r.price_fen = 9_999)),
        Code::FailedPrecondition,
        "PRICE_OUTSIDE_BAND",
        "price_fen"
    );
    case!(
        "cancel: order 0",
        t.cancel_order(pb::CancelOrderRequest {
            account_id: M1,
            order_id: 0
        }),
        IA,
        "INVALID_FIELD",
        "order_id"
    );
    case!(
        "cancel: unknown order",
        t.cancel_order(pb::CancelOrderRequest {
            account_id: M1,
            order_id: 424_242
        }),
        NF,
        "UNKNOWN_ORDER",
        "order_id"
    );
    case!(
        "amend: nothing to change",
        t.amend_order(pb::AmendOrderRequest {
            account_id: M1,
            order_id: 5,
            price_fen: 0,
            quantity_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "amend: negative price",
        t.amend_order(pb::AmendOrderRequest {
            account_id: M1,
            order_id: 5,
            price_fen: -5,
            quantity_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );
    case!(
        "cancel all: unknown instrument",
        t.cancel_all(pb::CancelAllRequest {
            account_id: M1,
            instrument: "XX".into()
        }),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instrument"
    );
    case!(
        "get order: 0",
        t.get_order(pb::GetOrderRequest {
            account_id: M1,
            order_id: 0
        }),
        IA,
        "INVALID_FIELD",
        "order_id"
    );
    case!(
        "block: quantity 0",
        t.propose_block(pb::ProposeBlockRequest {
            account_id: M1,
            counterparty_account_id: M2,
            client_order_id: 1,
            instrument: "CEA2025".into(),
            side: 1,
            price_fen: 8_500,
            quantity_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "block: counterparty 0",
        t.propose_block(pb::ProposeBlockRequest {
            account_id: M1,
            counterparty_account_id: 0,
            client_order_id: 1,
            instrument: "CEA2025".into(),
            side: 1,
            price_fen: 8_500,
            quantity_t: 100_000
        }),
        IA,
        "INVALID_FIELD",
        "counterparty_account_id"
    );
    case!(
        "block accept: id 0",
        t.accept_block(pb::BlockActionRequest {
            account_id: M1,
            block_id: 0
        }),
        IA,
        "INVALID_FIELD",
        "block_id"
    );
    case!(
        "executions: account 0",
        t.stream_executions(pb::StreamExecutionsRequest {
            account_id: 0,
            after: None,
            from_now: true
        }),
        Code::PermissionDenied,
        "ACCOUNT_NOT_ALLOWED",
        ""
    );
    let md = &mut m1.market;
    case!(
        "book: depth too large",
        md.get_book(pb::GetBookRequest {
            instrument: "CEA2025".into(),
            depth: 5_000
        }),
        IA,
        "INVALID_FIELD",
        "depth"
    );
    case!(
        "book: unknown",
        md.get_book(pb::GetBookRequest {
            instrument: "NOPE".into(),
            depth: 1
        }),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instrument"
    );
    case!(
        "trades: limit too large",
        md.get_trades(pb::GetTradesRequest {
            instrument: "CEA2025".into(),
            after_trade_id: 0,
            limit: 1_001
        }),
        IA,
        "INVALID_FIELD",
        "limit"
    );
    case!(
        "bars: inverted dates",
        md.get_daily_bars(pb::GetDailyBarsRequest {
            instrument: "CEA2025".into(),
            from_date: 20_261_201,
            to_date: 20_261_101
        }),
        IA,
        "INVALID_FIELD",
        "to_date"
    );
    case!(
        "stream: unknown instrument",
        md.stream_market_data(pb::StreamMarketDataRequest {
            instruments: vec!["CEA2025".into(), "BAD".into()],
            after: None,
            from_now: true
        }),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instruments[1]"
    );
    let r = &mut m1.registry;
    case!(
        "move: empty key",
        r.move_to_trading(pb::MoveRequest {
            idempotency_key: String::new(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 1
        }),
        IA,
        "INVALID_FIELD",
        "idempotency_key"
    );
    case!(
        "move: key too long",
        r.move_to_trading(pb::MoveRequest {
            idempotency_key: "k".repeat(129),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 1
        }),
        IA,
        "INVALID_FIELD",
        "idempotency_key"
    );
    case!(
        "move: unknown unit",
        r.move_to_trading(pb::MoveRequest {
            idempotency_key: "x".into(),
            account_id: M1,
            unit: "CEA1990".into(),
            quantity_t: 1
        }),
        NF,
        "UNKNOWN_UNIT",
        "unit"
    );
    case!(
        "move: quantity 0",
        r.move_to_trading(pb::MoveRequest {
            idempotency_key: "x".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "move: more than held",
        r.move_to_trading(pb::MoveRequest {
            idempotency_key: "x".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 10_000_000
        }),
        Code::FailedPrecondition,
        "INSUFFICIENT_AVAILABLE",
        "quantity_t"
    );
    case!(
        "withdraw: more than free",
        r.move_from_trading(pb::MoveRequest {
            idempotency_key: "y".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 10_000_000
        }),
        Code::FailedPrecondition,
        "INSUFFICIENT_ALLOWANCES",
        ""
    );
    case!(
        "transfer: to account 0",
        r.propose_transfer(pb::TransferRequest {
            idempotency_key: "t".into(),
            from_account_id: M1,
            to_account_id: 0,
            unit: "CEA2025".into(),
            quantity_t: 1
        }),
        IA,
        "INVALID_FIELD",
        "to_account_id"
    );
    case!(
        "cancel: no unit",
        r.voluntary_cancel(pb::MoveRequest {
            idempotency_key: "v".into(),
            account_id: M1,
            unit: String::new(),
            quantity_t: 1
        }),
        IA,
        "INVALID_FIELD",
        "unit"
    );
    let r = &mut ministry.registry;
    case!(
        "open: type unspecified",
        r.open_account(pb::OpenAccountRequest {
            idempotency_key: "o".into(),
            account_id: 77,
            account_type: 0,
            sector: 0,
            name: "x".into()
        }),
        IA,
        "INVALID_FIELD",
        "account_type"
    );
    case!(
        "open: entity without sector",
        r.open_account(pb::OpenAccountRequest {
            idempotency_key: "o".into(),
            account_id: 77,
            account_type: pb::AccountType::CoveredEntity as i32,
            sector: 0,
            name: "x".into()
        }),
        IA,
        "INVALID_FIELD",
        "sector"
    );
    case!(
        "open: id 0",
        r.open_account(pb::OpenAccountRequest {
            idempotency_key: "o".into(),
            account_id: 0,
            account_type: 4,
            sector: 0,
            name: "x".into()
        }),
        IA,
        "INVALID_FIELD",
        "account_id"
    );
    case!(
        "open: existing",
        r.open_account(pb::OpenAccountRequest {
            idempotency_key: "o2".into(),
            account_id: M1,
            account_type: 4,
            sector: 0,
            name: "x".into()
        }),
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
        "account_id"
    );
    case!(
        "status: unspecified",
        r.set_account_status(pb::SetAccountStatusRequest {
            idempotency_key: "s".into(),
            account_id: M1,
            status: 0
        }),
        IA,
        "INVALID_FIELD",
        "status"
    );
    case!(
        "issue: quantity 0",
        r.issue(pb::IssueRequest {
            idempotency_key: "i".into(),
            authority_account_id: AUTHORITY,
            unit: "CEA2025".into(),
            quantity_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "four eyes: 0",
        r.set_four_eyes_threshold(pb::FourEyesRequest {
            idempotency_key: "f".into(),
            threshold_t: 0
        }),
        IA,
        "INVALID_FIELD",
        "threshold_t"
    );
    case!(
        "approve: proposal 0",
        r.approve_transfer(pb::ProposalRequest {
            idempotency_key: "a".into(),
            proposal_id: 0
        }),
        IA,
        "INVALID_FIELD",
        "proposal_id"
    );
    case!(
        "freeze: court order 0",
        r.freeze(pb::FreezeRequest {
            idempotency_key: "z".into(),
            account_id: M1,
            unit: "CEA2025".into(),
            quantity_t: 1,
            court_order: 0
        }),
        IA,
        "INVALID_FIELD",
        "court_order"
    );
    case!(
        "journal: limit too large",
        r.read_journal(pb::ReadJournalRequest {
            from_sequence: 1,
            limit: 20_000
        }),
        IA,
        "INVALID_FIELD",
        "limit"
    );
    let b = &mut bank.registry;
    case!(
        "pledge: quantity 0",
        b.register_pledge(pb::PledgeRequest {
            idempotency_key: "p".into(),
            pledgor_account_id: M1,
            pledgee_account_id: BANK,
            unit: "CEA2025".into(),
            quantity_t: 0,
            secured_fen: 1,
        }),
        IA,
        "INVALID_FIELD",
        "quantity_t"
    );
    case!(
        "pledge: no secured amount",
        b.register_pledge(pb::PledgeRequest {
            idempotency_key: "p".into(),
            pledgor_account_id: M1,
            pledgee_account_id: BANK,
            unit: "CEA2025".into(),
            quantity_t: 10,
            secured_fen: 0,
        }),
        IA,
        "INVALID_FIELD",
        "secured_fen"
    );
    let a = &mut ops.admin;
    case!(
        "instrument: vintage 0",
        a.create_instrument(pb::CreateInstrumentRequest {
            vintage: 0,
            reference_price_fen: 8_000,
            ..Default::default()
        }),
        IA,
        "INVALID_FIELD",
        "vintage"
    );
    case!(
        "instrument: price 0",
        a.create_instrument(pb::CreateInstrumentRequest {
            vintage: 2030,
            reference_price_fen: 0,
            ..Default::default()
        }),
        IA,
        "INVALID_FIELD",
        "reference_price_fen"
    );
    case!(
        "instrument: band too wide",
        a.create_instrument(pb::CreateInstrumentRequest {
            vintage: 2030,
            reference_price_fen: 8_000,
            price_band_bp: 99_999,
            ..Default::default()
        }),
        IA,
        "INVALID_FIELD",
        "price_band_bp"
    );
    case!(
        "instrument: exists",
        a.create_instrument(pb::CreateInstrumentRequest {
            vintage: 2025,
            reference_price_fen: 8_000,
            ..Default::default()
        }),
        Code::AlreadyExists,
        "INSTRUMENT_EXISTS",
        "instrument"
    );
    case!(
        "day: bad date",
        a.open_trading_day(pb::OpenTradingDayRequest {
            trading_date: 20_261_399
        }),
        IA,
        "INVALID_FIELD",
        "trading_date"
    );
    case!(
        "phase: unspecified",
        a.set_phase(pb::SetPhaseRequest { phase: 0 }),
        IA,
        "INVALID_FIELD",
        "phase"
    );
    case!(
        "funds: transfer 0",
        a.credit_funds(pb::FundsRequest {
            transfer_id: 0,
            account_id: M1,
            amount_fen: 1
        }),
        IA,
        "INVALID_FIELD",
        "transfer_id"
    );
    case!(
        "funds: reserved transfer id",
        a.credit_funds(pb::FundsRequest {
            transfer_id: 1 << 62,
            account_id: M1,
            amount_fen: 1
        }),
        IA,
        "INVALID_FIELD",
        "transfer_id"
    );
    case!(
        "funds: negative",
        a.credit_funds(pb::FundsRequest {
            transfer_id: 5,
            account_id: M1,
            amount_fen: -100
        }),
        IA,
        "INVALID_FIELD",
        "amount_fen"
    );
    case!(
        "funds: reused id",
        a.credit_funds(pb::FundsRequest {
            transfer_id: M1,
            account_id: M1,
            amount_fen: 7
        }),
        Code::AlreadyExists,
        "DUPLICATE_TRANSFER_ID",
        "transfer_id"
    );
    case!(
        "funds: debit 2^63-1 (more than any balance may hold)",
        a.debit_funds(pb::FundsRequest {
            transfer_id: 7,
            account_id: M1,
            amount_fen: i64::MAX
        }),
        IA,
        "INVALID_FIELD",
        "amount_fen"
    );
    let e = a
        .debit_funds(pb::FundsRequest {
            transfer_id: 7,
            account_id: M1,
            amount_fen: i64::MAX,
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("too large"),
        "says what is wrong: {e:?}"
    );
    case!(
        "funds: debit too much",
        a.debit_funds(pb::FundsRequest {
            transfer_id: 6,
            account_id: M1,
            amount_fen: i64::MAX / 8
        }),
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
        ""
    );
    case!(
        "reference: unknown",
        a.set_reference_price(pb::SetReferencePriceRequest {
            instrument: "CEA1".into(),
            price_fen: 1
        }),
        NF,
        "UNKNOWN_INSTRUMENT",
        "instrument"
    );
    let au = &mut ops.auction;
    case!(
        "bidding: reserve unspecified",
        au.announce_bidding(pb::AnnounceBiddingRequest {
            seller_account_id: M1,
            instrument: "CEA2025".into(),
            quantity_t: 100_000,
            reserve: 0,
            pricing: 1,
            bidder_max_bp: 0
        }),
        IA,
        "INVALID_FIELD",
        "reserve"
    );
    case!(
        "bidding: bidder max too high",
        au.announce_bidding(pb::AnnounceBiddingRequest {
            seller_account_id: M1,
            instrument: "CEA2025".into(),
            quantity_t: 100_000,
            reserve: 1,
            pricing: 1,
            bidder_max_bp: 10_001
        }),
        IA,
        "INVALID_FIELD",
        "bidder_max_bp"
    );
    case!(
        "bidding: auction 0",
        au.open_bidding(pb::AuctionActionRequest { auction_id: 0 }),
        IA,
        "INVALID_FIELD",
        "auction_id"
    );
    case!(
        "bidding: unknown auction",
        au.close_bidding(pb::AuctionActionRequest { auction_id: 31_337 }),
        NF,
        "UNKNOWN_AUCTION",
        "auction_id"
    );
    let au = &mut m1.auction;
    case!(
        "bid: price 0",
        au.place_bid(pb::PlaceBidRequest {
            auction_id: 1,
            account_id: M1,
            client_order_id: 1,
            price_fen: 0,
            quantity_t: 1
        }),
        IA,
        "INVALID_FIELD",
        "price_fen"
    );

    let mut failures = Vec::new();
    for (what, result, code, reason_code, field_name) in &cases {
        match result {
            Ok(()) => failures.push(format!("{what}: accepted")),
            Err(s) => {
                if s.code() != *code || reason(s) != *reason_code || field(s) != *field_name {
                    failures.push(format!(
                        "{what}: got {:?} {} field {:?} ({}), want {code:?} {reason_code} field {field_name:?}",
                        s.code(),
                        reason(s),
                        field(s),
                        s.message()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 60, "{}", cases.len());

    // Rejected requests changed nothing: refused before the engine or the registry, or
    // refused there (a refused engine command still takes a sequence number, recorded as
    // rejected, but moves nothing; the registry journals nothing refused).
    let after = sequences(&mut audit).await;
    assert_eq!(after.1, before.1, "registry journal grew");
    assert_reconciled(&mut audit).await;
    let account = m1
        .trading
        .get_trading_account(pb::GetTradingAccountRequest { account_id: M1 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        (
            account.funds_free_fen,
            account.funds_locked_fen,
            account.live_orders
        ),
        (1_000_000_000, 0, 0)
    );
    assert_eq!(
        account
            .positions
            .iter()
            .map(|p| (p.free_t, p.locked_t))
            .collect::<Vec<_>>(),
        vec![(50_000, 0)]
    );
}
