//! Faults an outside test found, each pinned: idempotency keys are the caller's own, a
//! retry journals nothing new, the bearer header is exactly `Bearer <token>`, a request
//! that does not decode is the client's error, the tokens file cannot move an id to
//! another principal, `GetTrades` keeps its retention across restarts, and a bid counts
//! against the principal's in-flight limit like an order.

use proto::v1 as pb;
use tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn transfer(key: &str, from: u64, to: u64, quantity_t: u64) -> pb::TransferRequest {
    pb::TransferRequest {
        idempotency_key: key.into(),
        from_account_id: from,
        to_account_id: to,
        unit: "CEA2025".into(),
        quantity_t,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_belong_to_the_principal_that_sent_them() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    let mut audit = Clients::of(&server, "audit").await;
    let m3_before = cea2025_holding(&mut audit, M3).await.registry_available_t;
    // m2 takes the key m1 is about to use: no effect on m1.
    let m2_first = m2
        .registry
        .propose_transfer(transfer("m1-next-1", M2, M3, 2))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let m1_first = m1
        .registry
        .propose_transfer(transfer("m1-next-1", M1, M3, 5))
        .await
        .unwrap_or_else(|e| panic!("m1's own key was taken: {e}"))
        .into_inner();
    assert_ne!(m1_first.journal_sequence, m2_first.journal_sequence);
    // Each retry gets its own principal's receipt; each principal's other request under
    // the key is still refused.
    for (c, req, first) in [
        (&mut m1, transfer("m1-next-1", M1, M3, 5), &m1_first),
        (&mut m2, transfer("m1-next-1", M2, M3, 2), &m2_first),
    ] {
        let again = c
            .registry
            .propose_transfer(req)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        assert_eq!(again.journal_sequence, first.journal_sequence);
    }
    let clash = m1
        .registry
        .propose_transfer(transfer("m1-next-1", M1, M3, 6))
        .await
        .unwrap_err();
    assert_eq!(reason(&clash), "DUPLICATE_KEY_DIFFERENT_PAYLOAD");
    // M3 got both, once each: 5 + 2.
    assert_eq!(
        cea2025_holding(&mut audit, M3).await.registry_available_t,
        m3_before + 7
    );
}

async fn durable_sequence(metrics: std::net::SocketAddr) -> u64 {
    let mut s = tokio::net::TcpStream::connect(metrics)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    s.read_to_string(&mut text)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("carbonx_journal_durable_sequence "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no durable sequence in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_returns_the_original_result_and_journals_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")));
    let server = TestServer::start_with(config);
    let metrics = server.metrics.unwrap_or_else(|| panic!("no metrics"));
    open_market(&server).await;
    let mut ops = Clients::of(&server, "ops").await;
    let mut e1 = Clients::of(&server, "e1").await;
    let credit = pb::FundsRequest {
        transfer_id: 77,
        account_id: M1,
        amount_fen: 12_345,
    };
    let first_credit = ops
        .admin
        .credit_funds(credit)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deposit = pb::MoveRequest {
        idempotency_key: "dep-1".into(),
        account_id: E1,
        unit: "CEA2025".into(),
        quantity_t: 10,
    };
    let first_deposit = e1
        .registry
        .move_to_trading(deposit.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let withdrawal = pb::MoveRequest {
        idempotency_key: "wd-1".into(),
        ..deposit.clone()
    };
    let first_withdrawal = e1
        .registry
        .move_from_trading(withdrawal.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let before = durable_sequence(metrics).await;
    for _ in 0..3 {
        let c = ops
            .admin
            .credit_funds(credit)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.into_inner().sequence, first_credit.get_ref().sequence);
        let d = e1
            .registry
            .move_to_trading(deposit.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        assert_eq!(
            (d.journal_sequence, d.engine_sequence),
            (
                first_deposit.journal_sequence,
                first_deposit.engine_sequence
            )
        );
        let w = e1
            .registry
            .move_from_trading(withdrawal.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        assert_eq!(w.engine_sequence, first_withdrawal.engine_sequence);
    }
    assert_eq!(
        durable_sequence(metrics).await,
        before,
        "a retry was journaled"
    );
    // Applied once: M1 has its 10 M yuan (the test market's) and 12,345 fen more.
    let account = ops
        .trading
        .get_trading_account(pb::GetTradingAccountRequest { account_id: M1 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(account.funds_free_fen, 1_000_000_000 + 12_345);
}

/// Calls PlaceOrder with `authorization` set to exactly `value`.
async fn place_with(server: &TestServer, value: &str) -> tonic::Status {
    let mut client = pb::trading_service_client::TradingServiceClient::new(server.channel().await);
    let mut request = tonic::Request::new(limit(M1, 1, pb::Side::Sell, 9_000, 1));
    request.metadata_mut().insert(
        "authorization",
        value.parse().unwrap_or_else(|e| panic!("{e}")),
    );
    client.place_order(request).await.map(|_| ()).unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_header_is_exactly_bearer_and_the_token() {
    let server = TestServer::start();
    open_market(&server).await;
    let t = token("m1");
    for value in [
        t.to_string(),
        format!("Bearer  {t}"),
        format!("bearer {t}"),
        format!("Basic {t}"),
    ] {
        let s = place_with(&server, &value).await;
        assert_eq!(
            (s.code(), reason(&s).as_str()),
            (tonic::Code::Unauthenticated, "BAD_TOKEN"),
            "{value:?}"
        );
    }
}

/// A message whose field 3 (PlaceOrderRequest's `instrument`, a string) holds bytes that
/// are not UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "3")]
    instrument: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_decode_is_invalid_argument_with_a_reason() {
    let server = TestServer::start();
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap_or_else(|e| panic!("{e}"));
    let mut request = tonic::Request::new(NotUtf8 {
        instrument: vec![0xff, 0xfe, 0x41],
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token("m1"))
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/carbonx.v1.TradingService/PlaceOrder",
    );
    let codec = tonic_prost::ProstCodec::<NotUtf8, pb::OrderReply>::default();
    let status = grpc
        .unary(request, path, codec)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (tonic::Code::InvalidArgument, "MALFORMED_REQUEST"),
        "{status:?}"
    );
}

#[test]
fn a_tokens_file_that_gives_an_id_to_another_principal_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = test_config(dir.path());
    let server = TestServer::start_with(config.clone());
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    // The first entry removed and the rest renumbered from 1: m1 (id 3) would become 2.
    let tokens = config.tokens_file.clone().unwrap_or_default();
    let text = std::fs::read_to_string(&tokens).unwrap_or_default();
    let mut renumbered = String::new();
    let mut id = 0;
    for entry in text.split("[[principal]]").skip(2) {
        id += 1;
        let rest: String = entry
            .lines()
            .filter(|l| !l.starts_with("id = "))
            .map(|l| format!("{l}\n"))
            .collect();
        renumbered.push_str(&format!("[[principal]]\nid = {id}{rest}"));
    }
    std::fs::write(&tokens, renumbered).unwrap_or_else(|e| panic!("{e}"));
    let mut again = config;
    // test_config writes the tokens file again; point at the edited copy instead.
    let edited = dir.path().join("edited-tokens.toml");
    std::fs::copy(&tokens, &edited).unwrap_or_else(|e| panic!("{e}"));
    again.tokens_file = Some(edited);
    let err = refused_start(again);
    assert!(
        err.contains("ids must not move to another principal"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_trades_keeps_its_retention_across_restarts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    let server = TestServer::start_with(test_config(&data));
    open_market(&server).await;
    // Three runs of 20 trades, each ended by a restart (a snapshot at each stop).
    let mut server = Some(server);
    for run in 0..3u64 {
        let s = match server.take() {
            Some(s) => s,
            None => TestServer::start_with(test_config(&data)),
        };
        let mut m1 = Clients::of(&s, "m1").await;
        let mut m2 = Clients::of(&s, "m2").await;
        for i in 0..20 {
            let id = run * 100 + i + 1;
            m1.trading
                .place_order(limit(M1, id, pb::Side::Sell, 8_500, 1))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            m2.trading
                .place_order(limit(M2, id, pb::Side::Buy, 8_500, 1))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        s.stop().unwrap_or_else(|e| panic!("{e}"));
    }
    let s = TestServer::start_with(test_config(&data));
    let mut audit = Clients::of(&s, "audit").await;
    let trades = audit
        .market
        .get_trades(pb::GetTradesRequest {
            instrument: "CEA2025".into(),
            after_trade_id: 0,
            limit: 1_000,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .trades;
    // Every one of the 60, not only those after the older snapshot kept.
    assert_eq!(trades.len(), 60);
    assert_eq!(trades.first().map(|t| t.trade_id), Some(1));
    s.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bid_counts_against_the_in_flight_limit_like_an_order() {
    // No slot at all: every command a member sends the engine is refused at the limit,
    // whichever service carries it (before the engine sees it: no auction 77 is needed).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.in_flight_per_principal = 0;
    let server = TestServer::start_with(config);
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let order = m1
        .trading
        .place_order(limit(M1, 1, pb::Side::Buy, 9_000, 1))
        .await
        .unwrap_err();
    let bid = m1
        .auction
        .place_bid(pb::PlaceBidRequest {
            auction_id: 77,
            account_id: M1,
            client_order_id: 1,
            price_fen: 9_000,
            quantity_t: 1,
        })
        .await
        .unwrap_err();
    for refused in [order, bid] {
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (
                tonic::Code::ResourceExhausted,
                "IN_FLIGHT_PER_PRINCIPAL_LIMIT"
            )
        );
    }
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}
