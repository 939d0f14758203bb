//! The durability promise, tested the hard way: the real server runs as a child process
//! (this test binary re-executed), concurrent clients drive orders, cancels, funds, deposits
//! and transfers, and the child is SIGKILLed at random moments (seeded), at least 20 times.
//! After each restart: every acknowledged order, trade, credit, deposit and transfer is
//! there; no trade is duplicated; retried requests apply once; the registry journal
//! verifies; Reconcile is clean; funds and allowances are conserved.
//!
//! Also: a corrupt journal tail is truncated at start, a corrupt middle stops start-up with
//! an error naming the segment and offset.
//!
//! And the machine crash: the data directory on a loop-mounted ext4 file system, whose
//! disk image is copied the moment the server is killed. What the kernel had not written
//! to the device (every write not fsync'd) is lost in that copy, as in a power cut; the
//! next server starts from it. In both durability modes every acknowledged registry
//! transaction survives; with sync every acknowledged order too, with async every order
//! acknowledged before the promised window (`async_flush_ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::v1 as pb;
use tests::*;

const CHILD_ENV: &str = "CARBONX_CRASH_CHILD";

/// In the child: run the server on the given data directory until killed.
#[test]
fn crash_child_entry_point() {
    let Ok(data) = std::env::var(CHILD_ENV) else {
        return;
    };
    let data = PathBuf::from(data);
    let mut config = test_config(&data);
    // As `carbonx serve` runs by default, with small segments so that SIGKILL also lands
    // around segment rolls and spare segments being prepared.
    config.journal_preallocate = true;
    config.limits.journal_segment_bytes = 256 << 10;
    if let Some(every) = std::env::var("CARBONX_CRASH_SNAPSHOT_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.snapshot_every = every;
    }
    if std::env::var("CARBONX_CRASH_DURABILITY").as_deref() == Ok("async") {
        config.durability = server::config::Durability::Async;
    }
    if std::env::var("CARBONX_CRASH_SMALL_DISK").is_ok() {
        // A file system of a few hundred MiB: keep the reserve small.
        config.limits.disk_reserve_bytes = 8 << 20;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let addr_file = data.join("addr");
    let result = runtime.block_on(server::server::serve(
        config,
        move |running| {
            let tmp = addr_file.with_extension("tmp");
            std::fs::write(&tmp, running.addr.to_string()).unwrap_or_else(|e| panic!("{e}"));
            std::fs::rename(&tmp, &addr_file).unwrap_or_else(|e| panic!("{e}"));
        },
        None,
    ));
    if let Err(e) = result {
        eprintln!("child server failed: {e}");
        std::process::exit(3);
    }
}

struct ChildServer {
    child: Child,
    addr: SocketAddr,
}

fn start_child(data: &Path) -> ChildServer {
    start_child_with(data, 0)
}

/// `snapshot_every`: 0 keeps the server's default.
fn start_child_with(data: &Path, snapshot_every: u64) -> ChildServer {
    start_child_env(data, snapshot_every, &[])
}

fn start_child_env(data: &Path, snapshot_every: u64, env: &[(&str, &str)]) -> ChildServer {
    let _ = std::fs::remove_file(data.join("addr"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(exe)
        .envs(env.iter().copied())
        .args([
            "--exact",
            "crash_child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, data)
        .env(
            "CARBONX_CRASH_SNAPSHOT_EVERY",
            if snapshot_every == 0 {
                String::new()
            } else {
                snapshot_every.to_string()
            },
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut child = child;
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("addr"))
            && let Ok(addr) = text.parse()
        {
            return ChildServer { child, addr };
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child server did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(mut server: ChildServer) {
    // SIGKILL: no shutdown path runs.
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// What the clients were told (acknowledged) and what they merely attempted.
#[derive(Default)]
struct Ledger {
    /// Acknowledged orders: order id -> (account, client order id).
    orders: BTreeMap<u64, (u64, u64)>,
    /// When each order, and each fill, was acknowledged.
    acked_at: BTreeMap<u64, Instant>,
    trade_acked_at: BTreeMap<u64, Instant>,
    /// Acknowledged fills: trade id -> (price, quantity).
    trades: BTreeMap<u64, (i64, u64)>,
    /// Credits: transfer id -> (account, amount, acknowledged).
    credits: BTreeMap<u64, (u64, i64, bool)>,
    /// Registry requests: key -> (request, journal sequence if acknowledged).
    registry: BTreeMap<String, (RegistryRequest, Option<u64>)>,
}

#[derive(Clone, Debug)]
enum RegistryRequest {
    Deposit(pb::MoveRequest),
    Transfer(pb::TransferRequest),
}

async fn trader(
    addr: SocketAddr,
    name: &'static str,
    account: u64,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
    deadline: Instant,
) {
    let Ok(mut c) = Clients::at(addr, name).await else {
        return;
    };
    let Ok(mut ops) = Clients::at(addr, "ops").await else {
        return;
    };
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    let mut step = 0u64;
    while Instant::now() < deadline {
        step += 1;
        let lock = || ledger.lock().unwrap_or_else(|e| e.into_inner());
        match rng.below(10) {
            0..=4 => {
                let side = if rng.below(2) == 0 {
                    pb::Side::Buy
                } else {
                    pb::Side::Sell
                };
                let client_id = seed.wrapping_mul(1_000_003).wrapping_add(step) & ((1 << 50) - 1);
                let r = c
                    .trading
                    .place_order(limit(
                        account,
                        client_id,
                        side,
                        8_450 + rng.below(100) as i64,
                        1 + rng.below(20),
                    ))
                    .await;
                match r {
                    Ok(r) => {
                        let r = r.into_inner();
                        let o = r.order.unwrap_or_default();
                        let mut l = lock();
                        l.orders.insert(o.order_id, (account, client_id));
                        l.acked_at.insert(o.order_id, Instant::now());
                        for f in r.fills {
                            l.trades.insert(f.trade_id, (f.price_fen, f.quantity_t));
                            l.trade_acked_at.insert(f.trade_id, Instant::now());
                        }
                        if o.leaves_t > 0 {
                            live.push(o.order_id);
                        }
                    }
                    Err(s)
                        if s.code() == tonic::Code::Unavailable
                            || s.code() == tonic::Code::Unknown
                            || s.code() == tonic::Code::Cancelled =>
                    {
                        return;
                    }
                    Err(_) => {}
                }
            }
            5 => {
                if let Some(id) = live.pop()
                    && let Err(s) = c
                        .trading
                        .cancel_order(pb::CancelOrderRequest {
                            account_id: account,
                            order_id: id,
                        })
                        .await
                    && s.code() == tonic::Code::Unavailable
                {
                    return;
                }
            }
            6 => {
                let id = seed * 1_000_000 + step;
                let amount = 1 + rng.below(1_000_000) as i64;
                lock().credits.insert(id, (account, amount, false));
                if ops
                    .admin
                    .credit_funds(pb::FundsRequest {
                        transfer_id: id,
                        account_id: account,
                        amount_fen: amount,
                    })
                    .await
                    .is_ok()
                {
                    lock().credits.insert(id, (account, amount, true));
                } else {
                    return;
                }
            }
            7 => {
                let req = pb::MoveRequest {
                    idempotency_key: format!("dep-{seed}-{step}"),
                    account_id: account,
                    unit: "CEA2025".into(),
                    quantity_t: 1 + rng.below(10),
                };
                lock().registry.insert(
                    req.idempotency_key.clone(),
                    (RegistryRequest::Deposit(req.clone()), None),
                );
                match c.registry.move_to_trading(req.clone()).await {
                    Ok(r) => {
                        lock().registry.insert(
                            req.idempotency_key.clone(),
                            (
                                RegistryRequest::Deposit(req),
                                Some(r.into_inner().journal_sequence),
                            ),
                        );
                    }
                    Err(_) => return,
                }
            }
            _ => {
                // Another account (a transfer to itself is refused, and would end this
                // trader's run early: the first self-transfer used to stop it).
                let others: Vec<u64> = [M1, M2, M3, E1]
                    .into_iter()
                    .filter(|a| *a != account)
                    .collect();
                let to = others[rng.below(3) as usize];
                let req = pb::TransferRequest {
                    idempotency_key: format!("xfer-{seed}-{step}"),
                    from_account_id: account,
                    to_account_id: to,
                    unit: "CEA2025".into(),
                    quantity_t: 1 + rng.below(5),
                };
                lock().registry.insert(
                    req.idempotency_key.clone(),
                    (RegistryRequest::Transfer(req.clone()), None),
                );
                match c.registry.propose_transfer(req.clone()).await {
                    Ok(r) => {
                        lock().registry.insert(
                            req.idempotency_key.clone(),
                            (
                                RegistryRequest::Transfer(req),
                                Some(r.into_inner().journal_sequence),
                            ),
                        );
                    }
                    Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                    Err(_) => return,
                }
            }
        }
    }
}

/// Every check of the promise, on a freshly restarted server.
/// `history`: also check acknowledged orders and trades against the replayed history
/// (only complete when recovery replayed the whole journal, not from a snapshot).
async fn verify(addr: SocketAddr, ledger: &Mutex<Ledger>, seed: u64, round: u32, history: bool) {
    let ctx = format!("seed {seed} round {round}");
    let mut audit = Clients::at(addr, "audit")
        .await
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let mut ops = Clients::at(addr, "ops")
        .await
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    // What the clients were told, copied so no lock is held across the calls below.
    let (orders, acked_trades, credits, keys) = {
        let l = ledger.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<(String, RegistryRequest, Option<u64>)> = l
            .registry
            .iter()
            .map(|(k, (r, s))| (k.clone(), r.clone(), *s))
            .collect();
        (l.orders.clone(), l.trades.clone(), l.credits.clone(), keys)
    };

    if history {
        check_history(&mut audit, &orders, &acked_trades, &ctx).await;
    }
    check_rest(addr, &mut audit, &mut ops, ledger, &credits, keys, &ctx).await;
}

async fn check_history(
    audit: &mut Clients,
    orders: &BTreeMap<u64, (u64, u64)>,
    acked_trades: &BTreeMap<u64, (i64, u64)>,
    ctx: &str,
) {
    // Every acknowledged order was accepted (its NEW report is in the replayed history).
    let mut accepted = BTreeSet::new();
    for account in [M1, M2, M3, E1] {
        let mut stream = executions(audit, account, None)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        // The history is complete once read; a short idle gap means the end was reached.
        loop {
            let next = tokio::time::timeout(Duration::from_millis(100), stream.message()).await;
            let Ok(Ok(Some(report))) = next else { break };
            if report.execution_type == pb::ExecutionType::New as i32 {
                accepted.insert(report.order.unwrap_or_default().order_id);
            }
        }
    }
    let lost: Vec<_> = orders.keys().filter(|id| !accepted.contains(id)).collect();
    assert!(lost.is_empty(), "{ctx}: acknowledged orders lost: {lost:?}");

    // Every acknowledged trade is there with the same price and quantity; no duplicates.
    let mut trades = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = audit
            .market
            .get_trades(pb::GetTradesRequest {
                instrument: "CEA2025".into(),
                after_trade_id: after,
                limit: 1_000,
            })
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"))
            .into_inner()
            .trades;
        let Some(last) = page.last().map(|t| t.trade_id) else {
            break;
        };
        for t in page {
            assert!(
                trades
                    .insert(t.trade_id, (t.price_fen, t.quantity_t))
                    .is_none(),
                "{ctx}: trade {} twice",
                t.trade_id
            );
        }
        after = last;
    }
    for (id, fill) in acked_trades {
        assert_eq!(
            trades.get(id),
            Some(fill),
            "{ctx}: acknowledged trade {id} lost or changed"
        );
    }
    let ids: Vec<u64> = trades.keys().copied().collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "{ctx}: trade ids not contiguous"
    );
}

#[allow(clippy::too_many_arguments)]
async fn check_rest(
    addr: SocketAddr,
    audit: &mut Clients,
    ops: &mut Clients,
    ledger: &Mutex<Ledger>,
    credits: &BTreeMap<u64, (u64, i64, bool)>,
    keys: Vec<(String, RegistryRequest, Option<u64>)>,
    ctx: &str,
) {
    // Funds: retry every credit ever attempted (idempotent): afterwards the engine holds
    // exactly their sum, so none was lost or applied twice.
    for (id, (account, amount, _)) in credits {
        ops.admin
            .credit_funds(pb::FundsRequest {
                transfer_id: *id,
                account_id: *account,
                amount_fen: *amount,
            })
            .await
            .unwrap_or_else(|e| panic!("{ctx}: retry credit {id}: {e}"));
    }
    let mut funds = 0;
    for account in [M1, M2, M3, E1] {
        let a = ops
            .trading
            .get_trading_account(pb::GetTradingAccountRequest {
                account_id: account,
            })
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"))
            .into_inner();
        funds += a.funds_free_fen + a.funds_locked_fen + a.funds_pending_fen;
    }
    let credited: i64 = credits.values().map(|c| c.1).sum();
    assert_eq!(
        funds,
        4 * 1_000_000_000 + credited,
        "{ctx}: funds not conserved"
    );

    // Registry: an acknowledged request, retried, returns its original journal entry.
    let mut owners = BTreeMap::new();
    for (name, account) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)] {
        owners.insert(
            account,
            Clients::at(addr, name)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: {e}")),
        );
    }
    for (key, request, acked) in keys {
        let owner = match &request {
            RegistryRequest::Deposit(r) => r.account_id,
            RegistryRequest::Transfer(r) => r.from_account_id,
        };
        let Some(c) = owners.get_mut(&owner) else {
            panic!("{ctx}: no client for {owner}");
        };
        let result = match request.clone() {
            RegistryRequest::Deposit(r) => c.registry.move_to_trading(r).await,
            RegistryRequest::Transfer(r) => c.registry.propose_transfer(r).await,
        };
        match (result, acked) {
            (Ok(r), Some(seq)) => assert_eq!(
                r.into_inner().journal_sequence,
                seq,
                "{ctx}: {key} was acknowledged as entry {seq} but not durable"
            ),
            (Ok(r), None) => {
                let seq = r.into_inner().journal_sequence;
                ledger
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .registry
                    .insert(key, (request, Some(seq)));
            }
            (Err(s), Some(_)) => panic!("{ctx}: retry of acknowledged {key}: {s}"),
            (Err(_), None) => {}
        }
    }
    let verify = verify_journal(audit, ctx).await;
    assert!(verify.ok, "{ctx}: registry journal: {}", verify.problem);
    let rec = reconcile(audit, ctx).await;
    assert!(rec.clean, "{ctx}: {rec:?}");
    // Allowances: the four hold what they were given, wherever it sits.
    let mut held = 0;
    for account in [M1, M2, M3, E1] {
        held += held_t(audit, account).await;
    }
    assert_eq!(held, 400_006, "{ctx}: allowances not conserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_sigkill_at_random_moments() {
    let seed = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC4A5_u64);
    println!("seed {seed}");
    let rounds: u32 = std::env::var("CARBONX_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    let server = start_child(&data);
    open_market_at(server.addr).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed);
    let mut server = server;
    for round in 0..rounds {
        // Drive the server, then kill it at a random moment while the clients are busy.
        let run_for = Duration::from_millis(100 + rng.below(400));
        let deadline = Instant::now() + run_for + Duration::from_secs(5);
        let mut tasks = Vec::new();
        for (n, (name, account)) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)]
            .into_iter()
            .enumerate()
        {
            let task_seed = seed
                .wrapping_mul(31)
                .wrapping_add(u64::from(round) * 8 + n as u64 + 1);
            tasks.push(tokio::spawn(trader(
                server.addr,
                name,
                account,
                task_seed,
                ledger.clone(),
                deadline,
            )));
        }
        tokio::time::sleep(run_for).await;
        kill(server);
        for t in tasks {
            let _ = t.await;
        }
        let t = Instant::now();
        server = start_child(&data);
        let restart = t.elapsed();
        let t = Instant::now();
        verify(server.addr, &ledger, seed, round, true).await;
        println!(
            "round {round}: ran {run_for:?}, restart {restart:?}, verify {:?}",
            t.elapsed()
        );
    }
    let l = ledger.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "seed {seed}: {rounds} SIGKILLs, {} acknowledged orders, {} acknowledged trades, {} credits, {} registry requests",
        l.orders.len(),
        l.trades.len(),
        l.credits.len(),
        l.registry.len()
    );
    assert!(
        l.orders.len() > 50,
        "seed {seed}: too little work was acknowledged to mean anything"
    );
    drop(l);
    kill(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_snapshots_survives_sigkill() {
    let seed = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5A9_u64);
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    let mut server = start_child_with(&data, 100);
    open_market_at(server.addr).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed);
    for round in 0..6 {
        let run_for = Duration::from_millis(200 + rng.below(300));
        let deadline = Instant::now() + run_for + Duration::from_secs(5);
        let mut tasks = Vec::new();
        for (n, (name, account)) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)]
            .into_iter()
            .enumerate()
        {
            let task_seed = seed
                .wrapping_mul(17)
                .wrapping_add(u64::from(round) * 8 + n as u64 + 1);
            tasks.push(tokio::spawn(trader(
                server.addr,
                name,
                account,
                task_seed,
                ledger.clone(),
                deadline,
            )));
        }
        tokio::time::sleep(run_for).await;
        kill(server);
        for t in tasks {
            let _ = t.await;
        }
        let snapshots = server::snapshot::list(&data.join("snapshots")).unwrap_or_default();
        // Two are kept; a kill between a new snapshot's rename and the pruning of the oldest
        // leaves one more on disk (the oldest is removed by the next write), never fewer
        // than one and never an unbounded pile.
        let kept = server::snapshot::SNAPSHOTS_KEPT;
        assert!(
            !snapshots.is_empty() && snapshots.len() <= kept + 1,
            "seed {seed}: {snapshots:?}"
        );
        // The newest snapshot loads (recovery starts from it, not from a fallback).
        let (loaded, skipped) = server::snapshot::load_newest(&data.join("snapshots"), u64::MAX)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(skipped.is_empty(), "seed {seed}: {skipped:?}");
        assert_eq!(loaded.map(|l| l.seq), snapshots.first().map(|s| s.0));
        server = start_child_with(&data, 100);
        verify(server.addr, &ledger, seed, round, false).await;
    }
    kill(server);
}

fn last_segment(data: &Path) -> PathBuf {
    journal::segments(&data.join("journal"))
        .unwrap_or_default()
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no journal segment"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_and_a_corrupt_middle_stops_start_up() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().to_path_buf();
    let server = TestServer::start_with(test_config(&data));
    open_market(&server).await;
    let mut m1 = Clients::of(&server, "m1").await;
    for i in 0..50 {
        m1.trading
            .place_order(limit(M1, 1 + i, pb::Side::Sell, 9_000, 1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    let segment = last_segment(&data);

    // Torn tail: half a record of garbage at the end. Start-up truncates it and serves.
    let mut bytes = std::fs::read(&segment).unwrap_or_default();
    let good_len = bytes.len();
    bytes.extend_from_slice(&[0x11, 0x00, 0x00, 0x00, 0xde, 0xad]);
    std::fs::write(&segment, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(test_config(&data));
    assert_eq!(
        std::fs::metadata(&segment).map(|m| m.len()).unwrap_or(0) as usize,
        good_len
    );
    let mut m1 = Clients::of(&server, "m1").await;
    let live = live_orders(&mut m1, M1).await.len();
    assert_eq!(live, 50);
    server.stop().unwrap_or_else(|e| panic!("{e}"));

    // A flipped byte in the middle: start-up refuses, naming the segment and offset.
    let mut bytes = std::fs::read(&segment).unwrap_or_default();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let config = test_config(&data);
    let err =
        std::thread::spawn(move || runtime.block_on(server::server::serve(config, |_| {}, None)))
            .join()
            .unwrap_or_else(|_| panic!("panicked"))
            .unwrap_err();
    let name = segment
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(err.contains(&name) && err.contains("offset"), "{err}");
    // Nothing was cut by the refused start.
    assert_eq!(std::fs::read(&segment).unwrap_or_default(), bytes);
}

/// A file system image, loop-mounted: the machine the server runs on.
struct Disk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Disk {
    const SIZE: &str = "384M";

    fn image(&self) -> PathBuf {
        self.dir.path().join("disk.img")
    }

    fn mount_point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// A fresh ext4 file system, mounted. Its journal commits only when something is
    /// fsync'd (`commit=600`) and nothing is written on close (`noauto_da_alloc`): what is
    /// not synced stays in the page cache, where a power cut loses it.
    fn new() -> Disk {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let disk = Disk {
            dir,
            mounted: false,
        };
        run(
            "truncate",
            &["-s", Disk::SIZE, &disk.image().display().to_string()],
        );
        run(
            "mkfs.ext4",
            &["-q", "-F", &disk.image().display().to_string()],
        );
        std::fs::create_dir_all(disk.mount_point()).unwrap_or_else(|e| panic!("{e}"));
        let mut disk = disk;
        disk.mount();
        disk
    }

    fn mount(&mut self) {
        run(
            "mount",
            &[
                "-o",
                "loop,noauto_da_alloc,commit=600",
                &self.image().display().to_string(),
                &self.mount_point().display().to_string(),
            ],
        );
        self.mounted = true;
    }

    /// The power cut: the device's contents as of now (what the kernel wrote to it) become
    /// the disk; the page cache of the mounted file system is thrown away with the old
    /// mount. Call with the server already killed, so nothing writes meanwhile.
    fn crash(&mut self) {
        let copy = self.dir.path().join("crash.img");
        run(
            "cp",
            &[
                "--sparse=always",
                &self.image().display().to_string(),
                &copy.display().to_string(),
            ],
        );
        run("umount", &[&self.mount_point().display().to_string()]);
        self.mounted = false;
        std::fs::rename(&copy, self.image()).unwrap_or_else(|e| panic!("{e}"));
        self.mount();
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.mount_point()).status();
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed (the machine-crash test needs root, loop devices and \
         mkfs.ext4, as this project's machines have): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drives the traders against `addr` for `run_for`, then SIGKILLs the server; returns
/// when it was killed.
async fn load_then_kill(
    server: ChildServer,
    ledger: &Arc<Mutex<Ledger>>,
    seed: u64,
    round: u32,
    run_for: Duration,
) -> Instant {
    let deadline = Instant::now() + run_for + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for (n, (name, account)) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)]
        .into_iter()
        .enumerate()
    {
        let task_seed = seed
            .wrapping_mul(13)
            .wrapping_add(u64::from(round) * 8 + n as u64 + 1);
        tasks.push(tokio::spawn(trader(
            server.addr,
            name,
            account,
            task_seed,
            ledger.clone(),
            deadline,
        )));
    }
    tokio::time::sleep(run_for).await;
    kill(server);
    let killed = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    killed
}

/// With async durability, orders acknowledged in the last `window` before the crash may
/// be lost (the promise); those are forgotten here, with their fills, so the checks after
/// hold the rest to the full promise.
fn forget_the_window(ledger: &Mutex<Ledger>, killed: Instant, window: Duration) -> usize {
    let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let recent = |at: &BTreeMap<u64, Instant>| -> Vec<u64> {
        at.iter()
            .filter(|(_, at)| killed.saturating_duration_since(**at) < window)
            .map(|(id, _)| *id)
            .collect()
    };
    let orders = recent(&l.acked_at);
    let newest = l
        .acked_at
        .values()
        .max()
        .map(|at| killed.saturating_duration_since(*at));
    println!(
        "newest acknowledged order {newest:?} before the power cut; {} in the window",
        orders.len()
    );
    for id in &orders {
        l.orders.remove(id);
        l.acked_at.remove(id);
    }
    for id in recent(&l.trade_acked_at) {
        l.trades.remove(&id);
        l.trade_acked_at.remove(&id);
    }
    orders.len()
}

async fn machine_crashes(durability: &str, seed: u64, rounds: u32) {
    println!("seed {seed}, durability {durability}");
    let mut disk = Disk::new();
    let data = disk.mount_point().join("data");
    let env = [
        ("CARBONX_CRASH_DURABILITY", durability),
        ("CARBONX_CRASH_SMALL_DISK", "1"),
    ];
    let mut server = start_child_env(&data, 0, &env);
    open_market_at(server.addr).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed);
    // The promise of async durability: a flush every `async_flush_ms` (50), plus the
    // fsync itself and the time the reply took to be counted here.
    let window = Duration::from_millis(250);
    let mut forgotten = 0;
    for round in 0..rounds {
        let run_for = Duration::from_millis(300 + rng.below(700));
        let killed = load_then_kill(server, &ledger, seed, round, run_for).await;
        disk.crash();
        if durability == "async" {
            forgotten += forget_the_window(&ledger, killed, window);
        }
        server = start_child_env(&data, 0, &env);
        verify(server.addr, &ledger, seed, round, true).await;
        println!(
            "{durability} round {round}: ran {run_for:?}, power cut, everything acknowledged is there"
        );
    }
    let l = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let registry = l
        .registry
        .values()
        .filter(|(_, acked)| acked.is_some())
        .count();
    println!(
        "{durability}: {rounds} machine crashes, {} acknowledged orders checked ({forgotten} inside the async window), {registry} acknowledged registry requests",
        l.orders.len()
    );
    assert!(
        l.orders.len() > 50 && registry > 10,
        "too little work to mean anything"
    );
    drop(l);
    kill(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_a_machine_crash_with_sync_durability() {
    let seed = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xD15C_u64);
    machine_crashes("sync", seed, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_crash_with_async_durability_loses_at_most_the_window() {
    let seed = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xA5C_u64);
    machine_crashes("async", seed, 4).await;
}
