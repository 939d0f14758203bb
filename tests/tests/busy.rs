//! A busy session: concurrent members placing, amending and cancelling orders and moving
//! allowances in and out, then Reconcile is clean and funds and allowances are conserved.
//! Also: overload is answered with RESOURCE_EXHAUSTED, and a restart recovers the state.

use proto::v1 as pb;
use tests::*;

async fn trader(server_clients: Clients, account: u64, seed: u64, steps: u64) -> u64 {
    let mut c = server_clients;
    let mut rng = Rng(seed);
    let mut live: Vec<u64> = Vec::new();
    let mut ok = 0;
    for step in 0..steps {
        match rng.below(10) {
            0..=5 => {
                let side = if rng.below(2) == 0 {
                    pb::Side::Buy
                } else {
                    pb::Side::Sell
                };
                let price = 8_400 + rng.below(200) as i64;
                let q = 1 + rng.below(50);
                if let Ok(r) = c
                    .trading
                    .place_order(limit(account, seed * 100_000 + step + 1, side, price, q))
                    .await
                {
                    ok += 1;
                    let o = r.into_inner().order.unwrap_or_default();
                    if o.leaves_t > 0 {
                        live.push(o.order_id);
                    }
                }
            }
            6 => {
                if let Some(id) = live.pop() {
                    let _ = c
                        .trading
                        .cancel_order(pb::CancelOrderRequest {
                            account_id: account,
                            order_id: id,
                        })
                        .await;
                }
            }
            7 => {
                if let Some(&id) = live.last() {
                    let _ = c
                        .trading
                        .amend_order(pb::AmendOrderRequest {
                            account_id: account,
                            order_id: id,
                            price_fen: 8_400 + rng.below(200) as i64,
                            quantity_t: 0,
                        })
                        .await;
                }
            }
            8 => {
                let _ = c
                    .registry
                    .move_to_trading(pb::MoveRequest {
                        idempotency_key: format!("in-{account}-{step}"),
                        account_id: account,
                        unit: "CEA2025".into(),
                        quantity_t: 1 + rng.below(100),
                    })
                    .await;
            }
            _ => {
                let _ = c
                    .registry
                    .move_from_trading(pb::MoveRequest {
                        idempotency_key: format!("out-{account}-{step}"),
                        account_id: account,
                        unit: "CEA2025".into(),
                        quantity_t: 1 + rng.below(100),
                    })
                    .await;
            }
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_is_clean_and_everything_is_conserved_after_a_busy_session() {
    let seed = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_128u64);
    println!("seed {seed}");
    let server = TestServer::start();
    open_market(&server).await;
    let mut tasks = Vec::new();
    for (n, (name, account)) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)]
        .into_iter()
        .enumerate()
    {
        let c = Clients::of(&server, name).await;
        tasks.push(tokio::spawn(trader(c, account, seed + n as u64, 300)));
    }
    let mut placed = 0;
    for t in tasks {
        placed += t.await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(placed > 100, "seed {seed}: only {placed} orders accepted");
    let mut audit = Clients::of(&server, "audit").await;
    let rec = reconcile(&mut audit, &format!("seed {seed}")).await;
    assert!(rec.clean, "seed {seed}: {rec:?}");
    assert!(rec.accounts_checked >= 8);

    // Funds: every fen credited is somewhere (no fees on this instrument).
    let mut ops = Clients::of(&server, "ops").await;
    let mut funds = 0;
    let mut engine_t = 0;
    let mut registry_t = 0;
    for account in [M1, M2, M3, E1] {
        let a = ops
            .trading
            .get_trading_account(pb::GetTradingAccountRequest {
                account_id: account,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        funds += a.funds_free_fen + a.funds_locked_fen + a.funds_pending_fen;
        engine_t += a
            .positions
            .iter()
            .map(|p| p.free_t + p.locked_t + p.pending_t)
            .sum::<u64>();
        registry_t += held_t(&mut ops, account).await;
    }
    assert_eq!(funds, 4 * 1_000_000_000, "seed {seed}");
    // Allowances: what the four were given (100,000 + n each) is still theirs in total.
    assert_eq!(registry_t, 400_006, "seed {seed}");
    assert!(engine_t <= registry_t);
    let verify = verify_journal(&mut audit, &format!("seed {seed}")).await;
    assert!(verify.ok, "seed {seed}: {}", verify.problem);

    // Restart on the same data: the same state comes back (replay of the journal).
    let book_before = audit
        .market
        .get_book(pb::GetBookRequest {
            instrument: "CEA2025".into(),
            depth: 50,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let data = server.data.clone();
    let config = test_config(&data);
    // Keep the directory: stop the server but not its tempdir. The graceful stop leaves a
    // snapshot at the last sequence, which the restart loads.
    let kept = server.stop_keep_dir();
    let (snapshot, skipped) = server::snapshot::load_newest(&data.join("snapshots"), u64::MAX)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(skipped.is_empty(), "{skipped:?}");
    let snapshot = snapshot.unwrap_or_else(|| panic!("no shutdown snapshot"));
    assert_eq!(snapshot.seq, book_before.sequence.max(snapshot.seq));
    let restarted = TestServer::start_with(config);
    let mut audit = Clients::of(&restarted, "audit").await;
    let book_after = audit
        .market
        .get_book(pb::GetBookRequest {
            instrument: "CEA2025".into(),
            depth: 50,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        book_before, book_after,
        "seed {seed}: the book changed across a restart"
    );
    let rec = reconcile(&mut audit, &format!("seed {seed}")).await;
    assert!(rec.clean, "seed {seed}: after restart {rec:?}");
    restarted.stop().unwrap_or_else(|e| panic!("{e}"));
    drop(kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_answered_with_resource_exhausted_at_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = test_config(dir.path());
    config.limits.queue_depth = 1;
    config.limits.batch_max = 1;
    let server = TestServer::start_with(config);
    open_market(&server).await;
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let mut c = Clients::of(&server, "m1").await;
        tasks.push(tokio::spawn(async move {
            c.trading
                .place_order(limit(M1, 1 + i, pb::Side::Buy, 8_000, 1))
                .await
                .map(drop)
        }));
    }
    let mut exhausted = 0;
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(()) => accepted += 1,
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
                assert_eq!(reason(&s), "QUEUE_FULL");
                exhausted += 1;
            }
        }
    }
    assert!(accepted > 0);
    assert!(
        exhausted > 0,
        "64 concurrent orders into a queue of 1 never overflowed"
    );
    // What was refused changed nothing: exactly the accepted orders rest.
    let mut m1 = Clients::of(&server, "m1").await;
    let live = live_orders(&mut m1, M1).await.len();
    assert_eq!(live, accepted);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

async fn trade_crossing(server: &TestServer, from_client_id: u64, n: u64) {
    let mut m1 = Clients::of(server, "m1").await;
    let mut m2 = Clients::of(server, "m2").await;
    for i in 0..n {
        let q = 1 + i % 7;
        m1.trading
            .place_order(limit(M1, from_client_id + i, pb::Side::Sell, 8_500, q))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let r = m2
            .trading
            .place_order(limit(M2, from_client_id + i, pb::Side::Buy, 8_500, q))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        assert_eq!(r.fills.len(), 1, "{r:?}");
    }
}

async fn registry_view(server: &TestServer) -> Vec<Vec<pb::Holding>> {
    let mut ops = Clients::of(server, "ops").await;
    let mut all = Vec::new();
    for account in [M1, M2] {
        all.push(
            ops.registry
                .get_holdings(pb::GetHoldingsRequest {
                    account_id: account,
                })
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_inner()
                .holdings,
        );
    }
    all
}

/// Settlement commits in the registry without an fsync (the engine journal is its durable
/// record). Simulate a power loss that took the registry's latest settlements but not the
/// journal: put back a copy of the registry taken earlier. Start-up re-settles the trades
/// after the registry's watermark from the journal, and the registry ends up exactly where
/// it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_the_registry_lost_are_redone_from_the_journal() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let server = TestServer::start_with(test_config(&data));
    open_market(&server).await;
    trade_crossing(&server, 1, 20).await;
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    let older = dir.path().join("registry-older");
    copy_dir(&data.join("registry"), &older);

    let server = TestServer::start_with(test_config(&data));
    trade_crossing(&server, 1_000, 40).await;
    // Settlement reaches the registry a moment after the trade replies (at most 2 ms
    // later, asynchronously): Reconcile settles everything before it, so the view below
    // has every trade (reading right away raced the last settlement, and the two accounts
    // could even be read either side of it).
    let mut audit = Clients::of(&server, "audit").await;
    assert_reconciled(&mut audit).await;
    let expected = registry_view(&server).await;
    assert_ne!(expected, Vec::<Vec<pb::Holding>>::new());
    server.stop().unwrap_or_else(|e| panic!("{e}"));

    std::fs::remove_dir_all(data.join("registry")).unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&older, &data.join("registry"));
    let server = TestServer::start_with(test_config(&data));
    assert_eq!(registry_view(&server).await, expected);
    audit = Clients::of(&server, "audit").await;
    assert_audit_clean(&mut audit).await;
    server.stop().unwrap_or_else(|e| panic!("{e}"));
}
