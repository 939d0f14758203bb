//! Streams: execution reports and market data resume after a reconnect with no gap and no
//! duplicate; order entry replies in request order; reflection and health answer.

use proto::v1 as pb;
use tests::*;
use tokio_stream::StreamExt;

type Pos = (u64, u32);

fn pos(p: &Option<pb::StreamPosition>) -> Pos {
    p.as_ref().map_or((0, 0), |p| (p.sequence, p.index))
}

async fn read_executions(
    c: &mut Clients,
    after: Option<Pos>,
    n: usize,
) -> Vec<pb::ExecutionReport> {
    let mut stream = executions(c, M1, after)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(r))) => out.push(r),
            other => panic!("stream ended early after {}: {other:?}", out.len()),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_reports_resume_after_a_reconnect_with_no_gap_and_no_duplicate() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    // 10 resting sells, 5 of them hit: 10 NEW + 5 TRADE reports for m1.
    for i in 0..10 {
        m1.trading
            .place_order(limit(M1, 100 + i, pb::Side::Sell, 8_500 + i as i64, 10))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for i in 0..5 {
        m2.trading
            .place_order(limit(M2, 200 + i, pb::Side::Buy, 8_600, 10))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let all = read_executions(&mut m1, None, 15).await;
    let positions: Vec<Pos> = all.iter().map(|r| pos(&r.position)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(
        all.iter()
            .filter(|r| r.execution_type == pb::ExecutionType::Trade as i32)
            .count(),
        5
    );
    // Read 6, "disconnect", resume after the 6th: exactly the rest, in order.
    let first = read_executions(&mut m1, None, 6).await;
    let resumed = read_executions(&mut m1, Some(pos(&first[5].position)), 9).await;
    let joined: Vec<Pos> = first
        .iter()
        .chain(resumed.iter())
        .map(|r| pos(&r.position))
        .collect();
    assert_eq!(joined, positions);
    // Cancel everything: the stream resumed at the end carries only the new reports.
    m1.trading
        .cancel_all(pb::CancelAllRequest {
            account_id: M1,
            instrument: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tail = read_executions(&mut m1, Some(*positions.last().unwrap_or(&(0, 0))), 5).await;
    assert!(
        tail.iter()
            .all(|r| r.execution_type == pb::ExecutionType::Cancelled as i32
                && r.cancel_reason == "CANCEL_ALL"
                && r.cancelled_t == 10)
    );

    // Market data: trades and levels, resumable the same way.
    let mut md = m1
        .market
        .stream_market_data(pb::StreamMarketDataRequest {
            instruments: vec!["CEA2025".into()],
            after: None,
            from_now: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut trades = 0;
    let mut last = (0, 0);
    while trades < 5 {
        let event = md
            .next()
            .await
            .unwrap_or_else(|| panic!("ended"))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = pos(&event.position);
        assert!(p > last);
        last = p;
        if let Some(pb::market_data_event::Event::Trade(t)) = event.event {
            assert_eq!(t.quantity_t, 10);
            trades += 1;
        }
    }
    // A resume point from before anything was evicted is fine; one that the server no
    // longer holds would be OUT_OF_RANGE (tested with a tiny history below).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_older_than_the_history_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.history_events = 8;
    let server = TestServer::start_with(config);
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    for i in 0..20 {
        m1.trading
            .place_order(limit(M1, 1 + i, pb::Side::Sell, 9_000, 1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let err = executions(&mut m1, M1, Some((1, 0)))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange);
    assert_eq!(reason(&err), "RESUME_POINT_TOO_OLD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_entry_replies_in_request_order_with_rejections_inline() {
    let server = TestServer::start();
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut requests = Vec::new();
    for i in 0..200u64 {
        let request = if i % 50 == 49 {
            // Invalid: zero quantity, rejected inline.
            pb::order_entry_request::Request::Place(limit(M1, 10_000 + i, pb::Side::Buy, 8_000, 0))
        } else {
            pb::order_entry_request::Request::Place(limit(
                M1,
                10_000 + i,
                pb::Side::Buy,
                8_000 + (i % 7) as i64,
                1,
            ))
        };
        requests.push(pb::OrderEntryRequest {
            correlation_id: i,
            request: Some(request),
        });
    }
    let mut replies = m1
        .trading
        .order_entry(tokio_stream::iter(requests))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut seen = Vec::new();
    let mut last_seq = 0;
    while let Some(reply) = replies.message().await.unwrap_or_else(|e| panic!("{e}")) {
        let r = reply.reply.unwrap_or_default();
        if reply.correlation_id % 50 == 49 {
            let rej = r.rejection.unwrap_or_default();
            assert_eq!(
                (rej.reason.as_str(), rej.field.as_str()),
                ("INVALID_FIELD", "place.quantity_t")
            );
            assert_eq!(rej.message, "place.quantity_t: must be at least 1 t");
        } else {
            assert!(r.rejection.is_none(), "{r:?}");
            assert!(r.sequence > last_seq, "replies out of engine order");
            last_seq = r.sequence;
        }
        seen.push(reply.correlation_id);
    }
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    let orders = live_orders(&mut m1, M1).await;
    assert_eq!(orders.len(), 196);
}

/// With room for only 3 requests per connection the reader waits for replies to go out:
/// every request is still answered, in order; a client that walks away mid-stream leaves
/// the server serving (its slot and in-flight count are given back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_entry_waits_for_room_and_survives_a_client_that_leaves() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.in_flight_per_connection = 3;
    config.limits.streams_per_principal = 1;
    let server = TestServer::start_with(config);
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    // `n` bids of 1 t for M1 at `price_fen`, correlation ids 0.., client order ids from
    // `first_client_id`.
    let bids = |n: u64, first_client_id: u64, price_fen: i64| -> Vec<pb::OrderEntryRequest> {
        (0..n)
            .map(|i| pb::OrderEntryRequest {
                correlation_id: i,
                request: Some(pb::order_entry_request::Request::Place(limit(
                    M1,
                    first_client_id + i,
                    pb::Side::Buy,
                    price_fen,
                    1,
                ))),
            })
            .collect()
    };
    let mut replies = m1
        .trading
        .order_entry(tokio_stream::iter(bids(300, 20_000, 8_000)))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut seen = Vec::new();
    while let Some(reply) = replies.message().await.unwrap_or_else(|e| panic!("{e}")) {
        let r = reply.reply.unwrap_or_default();
        assert!(r.rejection.is_none(), "{r:?}");
        seen.push(reply.correlation_id);
    }
    assert_eq!(seen, (0..300).collect::<Vec<_>>());

    // A client that sends and leaves without reading: the stream's slot comes back (one
    // stream per principal here), so a new stream works.
    for round in 0..3u64 {
        let requests = bids(10, 30_000 + round * 100, 8_001);
        let (c, tx, mut stream) = open_when_free(&server, round, requests).await;
        // Read one reply, then drop everything.
        let first = stream.message().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(first.is_some());
        drop(stream);
        drop(tx);
        drop(c);
    }
    // The last round's slot comes back too.
    let (c, tx, stream) = open_when_free(&server, 3, Vec::new()).await;
    drop((c, tx, stream));
    let orders = live_orders(&mut m1, M1).await;
    assert!(orders.len() >= 301, "{}", orders.len());
}

/// Opens an order-entry stream for m1 with `requests` already sent. The server lets go of a
/// stream whose client left once it sees the reset, which may come a moment after the
/// client's next call: while m1's only stream slot is still held (STREAMS_PER_PRINCIPAL_LIMIT)
/// this tries again, for at most a second.
async fn open_when_free(
    server: &TestServer,
    round: u64,
    requests: Vec<pb::OrderEntryRequest>,
) -> (
    Clients,
    tokio::sync::mpsc::Sender<pb::OrderEntryRequest>,
    tonic::Streaming<pb::OrderEntryReply>,
) {
    for _ in 0..50 {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        for request in &requests {
            let _ = tx.send(request.clone()).await;
        }
        let mut c = Clients::of(server, "m1").await;
        match c
            .trading
            .order_entry(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(stream) => return (c, tx, stream.into_inner()),
            Err(e) => {
                assert_eq!(
                    reason(&e),
                    "STREAMS_PER_PRINCIPAL_LIMIT",
                    "round {round}: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    panic!("round {round}: the stream slot was never given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_health_is_serving() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = TestServer::start();
    let channel = server.channel().await;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no response"));
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for wanted in [
        "carbonx.v1.AdminService",
        "carbonx.v1.AuctionService",
        "carbonx.v1.MarketDataService",
        "carbonx.v1.RegistryService",
        "carbonx.v1.TradingService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_dropped_with_a_clear_status_and_trading_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.stream_buffer = 4;
    config.limits.slow_consumer_ms = 200;
    let server = TestServer::start_with(config);
    open_market(&server).await;
    // A client with small HTTP/2 windows, so that not reading stops the server's sends soon.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap_or_else(|e| panic!("{e}"))
        .initial_stream_window_size(Some(4_096))
        .initial_connection_window_size(Some(4_096))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut watcher = Clients::new(channel, Some(token("audit")));
    let mut stalled = watcher
        .market
        .stream_market_data(pb::StreamMarketDataRequest {
            instruments: vec![],
            after: None,
            from_now: true,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    // Lots of level updates while the watcher reads nothing.
    let mut m1 = Clients::of(&server, "m1").await;
    let requests: Vec<pb::OrderEntryRequest> = (0..6_000u64)
        .map(|i| pb::OrderEntryRequest {
            correlation_id: i,
            request: Some(pb::order_entry_request::Request::Place(limit(
                M1,
                1 + i,
                pb::Side::Buy,
                7_650 + (i % 800) as i64,
                1,
            ))),
        })
        .collect();
    let mut replies = m1
        .trading
        .order_entry(tokio_stream::iter(requests))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut n = 0;
    while let Some(r) = replies.message().await.unwrap_or_else(|e| panic!("{e}")) {
        assert!(r.reply.unwrap_or_default().rejection.is_none());
        n += 1;
    }
    assert_eq!(n, 6_000);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    // The watcher now finds what was buffered, then the reason it was dropped.
    let mut got = 0;
    let status = loop {
        match stalled.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a status after {got} items"),
        }
    };
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(reason(&status), "SLOW_CONSUMER");
    assert!(got < 6_000, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_across_a_restart_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    // Periodic snapshots, so the restart loads a snapshot and rebuilds the history before
    // it from the previous one.
    config.snapshot_every = 40;
    let server = TestServer::start_with(config.clone());
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let mut m2 = Clients::of(&server, "m2").await;
    for i in 0..30 {
        m1.trading
            .place_order(limit(M1, 100 + i, pb::Side::Sell, 8_500 + i as i64, 10))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if i % 3 == 0 {
            m2.trading
                .place_order(limit(M2, 200 + i, pb::Side::Buy, 8_600, 5))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let before = read_executions(&mut m1, None, 30).await;
    drop(m1);
    drop(m2);
    let kept = server.stop_keep_dir();
    let snapshots = server::snapshot::list(&dir.path().join("snapshots")).unwrap_or_default();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    // The client had processed the reports up to one just after the older snapshot when
    // the server went down; the newer (shutdown) snapshot is past all of them.
    let k = before
        .iter()
        .position(|r| pos(&r.position).0 > snapshots[1].0)
        .unwrap_or_else(|| panic!("no report after the older snapshot {snapshots:?}"));
    assert!(k + 3 < before.len(), "too few reports to resume: {k}");
    assert!(pos(&before[before.len() - 1].position).0 <= snapshots[0].0);
    let resume_at = pos(&before[k].position);
    let expected: Vec<Pos> = before[k + 1..].iter().map(|r| pos(&r.position)).collect();
    let restarted = TestServer::start_with(config);
    let mut m1 = Clients::of(&restarted, "m1").await;
    let resumed = read_executions(&mut m1, Some(resume_at), expected.len()).await;
    let got: Vec<Pos> = resumed.iter().map(|r| pos(&r.position)).collect();
    assert_eq!(got, expected);
    drop(kept);
}

/// Stopping the server with streams open: the order-entry stream answers what it took,
/// then ends with UNAVAILABLE / SHUTTING_DOWN while its client still holds the request side
/// open; a subscription ends with UNAVAILABLE; the server stops (instead of waiting for its
/// clients to hang up) and every answered order is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_after_answering_what_they_took() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = test_config(dir.path());
    let server = TestServer::start_with(config.clone());
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut replies = m1
        .trading
        .order_entry(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    for i in 0..20u64 {
        let place = limit(M1, 40_000 + i, pb::Side::Buy, 8_000 + i as i64, 1);
        tx.send(pb::OrderEntryRequest {
            correlation_id: i,
            request: Some(pb::order_entry_request::Request::Place(place)),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for i in 0..20u64 {
        let reply = replies.message().await.unwrap_or_else(|e| panic!("{e}"));
        let reply = reply.unwrap_or_else(|| panic!("stream ended before reply {i}"));
        assert_eq!(reply.correlation_id, i);
        assert!(reply.reply.unwrap_or_default().rejection.is_none());
    }
    let mut reports = executions(&mut m1, M1, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..20 {
        let report = reports.message().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(report.is_some());
    }

    // `tx` stays open: the client neither half-closes nor hangs up.
    let stopping = tokio::task::spawn_blocking(move || server.stop_keep_dir());
    let ended = replies
        .message()
        .await
        .expect_err("the order-entry stream ends with a status");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended}");
    assert_eq!(reason(&ended), "SHUTTING_DOWN", "{ended}");
    let ended = reports
        .message()
        .await
        .expect_err("the subscription ends with a status");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended}");
    let kept = tokio::time::timeout(std::time::Duration::from_secs(60), stopping)
        .await
        .unwrap_or_else(|_| panic!("the server did not stop"))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(tx);

    let restarted = TestServer::start_with(config);
    let mut m1 = Clients::of(&restarted, "m1").await;
    let mut ids: Vec<u64> = live_orders(&mut m1, M1)
        .await
        .iter()
        .map(|o| o.client_order_id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (40_000..40_020).collect::<Vec<_>>());
    drop(kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_answers_for_older_clients() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let server = TestServer::start();
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "carbonx.v1.CarryOverService".into(),
            )),
        },
    ];
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let first = responses
        .message()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no response"));
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected {first:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "carbonx.v1.CarryOverService",
        "carbonx.v1.ComplianceService",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    let second = responses
        .message()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no second response"));
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("unexpected {second:?}");
    };
    assert!(
        !files.file_descriptor_proto.is_empty(),
        "the file of the service"
    );
}
