//! The Prometheus endpoint reports what happened: orders, trades, rejects by reason, queue
//! depths, journal fsync and request latency histograms.

use proto::v1 as pb;
use tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut body = String::new();
    s.read_to_string(&mut body)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    body
}

fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
}

/// A server on `config` with its metrics endpoint on and the test market open, and the
/// endpoint's address.
async fn serving_metrics(mut config: server::config::Config) -> (TestServer, std::net::SocketAddr) {
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")));
    let server = TestServer::start_with(config);
    let metrics = server
        .metrics
        .unwrap_or_else(|| panic!("no metrics address"));
    open_market(&server).await;
    (server, metrics)
}

/// m1 sells and m2 buys `quantity_t` at 8,500 (both with client order id `id`): m2's reply,
/// with the trade.
async fn cross(m1: &mut Clients, m2: &mut Clients, id: u64, quantity_t: u64) -> pb::OrderReply {
    m1.trading
        .place_order(limit(M1, id, pb::Side::Sell, 8_500, quantity_t))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    m2.trading
        .place_order(limit(M2, id, pb::Side::Buy, 8_500, quantity_t))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_orders_trades_and_rejects() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (server, metrics) = serving_metrics(test_config(dir.path())).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    m1.trading
        .place_order(limit(M1, 1, pb::Side::Sell, 8_500, 10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    m2.trading
        .place_order(limit(M2, 1, pb::Side::Buy, 8_500, 4))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = m2
        .trading
        .place_order(limit(M2, 2, pb::Side::Buy, 9_999, 1))
        .await;
    let _ = m2
        .trading
        .place_order(limit(M2, 3, pb::Side::Buy, 9_999, 1))
        .await;
    let text = get(metrics, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(value(&text, "carbonx_orders_total"), 2);
    assert_eq!(value(&text, "carbonx_trades_total"), 1);
    assert_eq!(value(&text, "carbonx_traded_tonnes_total"), 4);
    assert_eq!(
        value(
            &text,
            "carbonx_rejects_total{reason=\"PRICE_OUTSIDE_BAND\"}"
        ),
        2
    );
    assert!(value(&text, "carbonx_journal_batches_total") > 0);
    assert!(value(&text, "carbonx_journal_fsync_seconds_count") > 0);
    assert_eq!(value(&text, "carbonx_queue_depth_sequencer"), 0);
    assert!(
        value(
            &text,
            "carbonx_request_seconds_count{method=\"PlaceOrder\"}"
        ) >= 4
    );
    assert!(get(metrics, "/healthz").await.ends_with("ok\n"));
}

/// With async durability the journal is fsync'd only every `async_flush_ms`; settlement
/// must wait for it, or a machine crash could leave the registry settled beyond the end
/// of the journal recovery finds (allowances moved by trades the engine never saw, and
/// the next commands, reusing those sequences, never settled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_async_durability_settlement_never_passes_the_durable_journal() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.durability = server::config::Durability::Async;
    config.async_flush_ms = 300;
    let (server, metrics) = serving_metrics(config).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    let mut audit = Clients::of(&server, "audit").await;
    for round in 0..3u64 {
        let trade = cross(&mut m1, &mut m2, 100 + round, 10).await;
        assert_eq!(trade.fills.len(), 1, "round {round}: {trade:?}");
        // A registry read commits the registry's pending work with an fsync.
        let _ = held_t(&mut m2, M2).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = get(metrics, "/metrics").await;
            let settled = value(&text, "carbonx_settled_sequence");
            let durable = value(&text, "carbonx_journal_durable_sequence");
            assert!(
                settled <= durable,
                "round {round}: settled through {settled}, journal durable through {durable}"
            );
            if settled >= trade.sequence {
                assert!(durable >= trade.sequence);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the trade at {} was never settled (settled {settled}, durable {durable})",
                trade.sequence
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // A reconciliation flushes the journal before it settles and compares.
    cross(&mut m1, &mut m2, 200, 5).await;
    assert_reconciled(&mut audit).await;
    let text = get(metrics, "/metrics").await;
    assert!(
        value(&text, "carbonx_settled_sequence")
            <= value(&text, "carbonx_journal_durable_sequence")
    );
}
