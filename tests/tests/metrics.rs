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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_orders_trades_and_rejects() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")));
    let server = TestServer::start_with(config);
    let metrics = server
        .metrics
        .unwrap_or_else(|| panic!("no metrics address"));
    open_market(&server).await;
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
