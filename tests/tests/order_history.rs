//! Closed orders over gRPC: GetOrder answers for a filled and a cancelled order, ListOrders
//! lists them on request, both survive a restart; and a request over the message-size limit
//! is refused with its reason like any other refusal.

use proto::v1 as pb;
use tests::*;
use tonic::Code;

async fn list(c: &mut Clients, account: u64, include_closed: bool) -> Vec<(u64, i32, u64)> {
    c.trading
        .list_orders(pb::ListOrdersRequest {
            account_id: account,
            instrument: String::new(),
            include_closed,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .orders
        .iter()
        .map(|o| (o.client_order_id, o.status, o.filled_t))
        .collect()
}

async fn get(c: &mut Clients, account: u64, order_id: u64) -> (i32, u64, u64) {
    let o = c
        .trading
        .get_order(pb::GetOrderRequest {
            account_id: account,
            order_id,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    (o.status, o.filled_t, o.leaves_t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filled_and_cancelled_orders_stay_queryable_across_a_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(test_config(dir.path()));
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    // M1 offers 1,000 t at 85.00; M2 takes 600 (filled at once); M1 cancels the other 400.
    let sell = m1
        .trading
        .place_order(limit(M1, 1, pb::Side::Sell, 8_500, 1_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .order
        .unwrap_or_default()
        .order_id;
    let buy = m2
        .trading
        .place_order(limit(M2, 2, pb::Side::Buy, 8_500, 600))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .order
        .unwrap_or_default()
        .order_id;
    m1.trading
        .cancel_order(pb::CancelOrderRequest {
            account_id: M1,
            order_id: sell,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (filled, cancelled) = (
        pb::OrderStatus::Filled as i32,
        pb::OrderStatus::Cancelled as i32,
    );
    assert_eq!(get(&mut m2, M2, buy).await, (filled, 600, 0));
    assert_eq!(get(&mut m1, M1, sell).await, (cancelled, 600, 0));
    assert_eq!(list(&mut m1, M1, false).await, vec![]);
    assert_eq!(list(&mut m1, M1, true).await, vec![(1, cancelled, 600)]);
    // Another member's closed order is not found for it (nor is an id never issued).
    let e = m1
        .trading
        .get_order(pb::GetOrderRequest {
            account_id: M1,
            order_id: buy,
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("another account's order"));
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::NotFound, "UNKNOWN_ORDER")
    );

    // A restart (the snapshot at the stop carries them).
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(test_config(dir.path()));
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    assert_eq!(get(&mut m2, M2, buy).await, (filled, 600, 0));
    assert_eq!(list(&mut m1, M1, true).await, vec![(1, cancelled, 600)]);
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_refused_with_its_reason() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    // 70,000 bytes of instrument name: over the 65,536-byte default limit. The message is
    // 70,019 bytes: account 101 and client id 1 (tag + 1-byte varint: 2 each), the name
    // (tag + 3-byte length + 70,000), side, type and time in force (2 each), price 8,500
    // (tag + 2-byte varint: 3), quantity 1 (2): 4 + 70,004 + 6 + 3 + 2.
    let mut order = limit(M1, 1, pb::Side::Buy, 8_500, 1);
    order.instrument = "X".repeat(70_000);
    let e = m1
        .trading
        .place_order(order)
        .await
        .err()
        .unwrap_or_else(|| panic!("over-size request accepted"));
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::ResourceExhausted, "MESSAGE_TOO_LARGE")
    );
    assert!(
        e.message()
            .contains("70019 bytes, over this service's limit of 65536 bytes"),
        "{}",
        e.message()
    );
}
