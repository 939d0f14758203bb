//! `carbonx serve`: recovery, then the gRPC server (and metrics), then a graceful stop.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{
    AccountId as EngineAccount, CommandKind, Engine, EngineConfig, Limits as EngineLimits,
};
use proto::v1 as pb;
use registry::tx::{Enforcement, Op, SETTLE_LEGS_MAX, SettleLeg};
use registry::{Registry, RegistryOptions};
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::auth::Tokens;
use crate::catalog::Catalog;
use crate::config::{Config, Durability};
use crate::core::{Core, CoreParts, MetricCounts, settlement_legs};
use crate::hub::Hub;
use crate::journal::{self, Journal};
use crate::metrics::Metrics;
use crate::services::Ctx;
use crate::services::admin::{Admin, Auctions};
use crate::services::market::MarketData;
use crate::services::registry::{RegistryApi, deposit_transfer, trades};
use crate::services::trading::Trading;

/// Where things live under the data directory.
pub fn journal_dir(config: &Config) -> PathBuf {
    config.data_dir.join("journal")
}

pub fn registry_dir(config: &Config) -> PathBuf {
    config.data_dir.join("registry")
}

pub fn snapshot_dir(config: &Config) -> PathBuf {
    config.data_dir.join("snapshots")
}

pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        fee_account: EngineAccount(config.engine.fee_account),
        risk_checks: true,
        proceeds_same_day: config.engine.proceeds_same_day,
        limits: EngineLimits {
            accounts_max: config.limits.accounts_max,
            orders_max: config.limits.orders_max,
            orders_per_account_max: config.limits.orders_per_account_max,
            ..EngineLimits::default()
        },
    }
}

/// Loads (or creates on first start) the principals.
pub fn load_tokens(config: &Config) -> Result<Tokens, String> {
    let path = match &config.tokens_file {
        Some(p) => p.clone(),
        None => {
            let p = config.data_dir.join("tokens.toml");
            if !p.exists() {
                Tokens::generate(&p)?;
                tracing::warn!(path = %p.display(), "no tokens file configured: generated one token per role");
            }
            p
        }
    };
    let tokens = Tokens::load(&path)?;
    if tokens.is_empty() {
        return Err(format!("{}: no principals", path.display()));
    }
    Ok(tokens)
}

/// What recovery did, for the log and for tests.
#[derive(Debug, Default)]
pub struct Recovered {
    pub replayed: u64,
    pub last_seq: u64,
    pub settled_from: u64,
    pub settle_legs: usize,
    pub truncated: Option<(PathBuf, u64, u64)>,
}

/// Replays the journal into a fresh engine, rebuilding the stream history, and settles in
/// the registry whatever the engine did after the registry's settlement watermark.
pub fn recover(
    config: &Config,
    registry: &mut Registry,
    catalog: &Catalog,
    hub: &Hub,
    metrics: &Metrics,
) -> Result<(Engine, Journal, Recovered), String> {
    let dir = journal_dir(config);
    let started = Instant::now();
    let (mut journal, report) = Journal::open_with(
        &dir,
        config.limits.journal_segment_bytes,
        config.journal_preallocate,
    )
    .map_err(|e| format!("journal: {e}"))?;
    // Direct I/O where every batch is fsync'd into preallocated blocks: only the blocks a
    // batch touches reach the disk (journal.rs). With async durability buffered writes
    // stay (a direct write waits for the device, which async mode exists to avoid).
    if config.journal_preallocate && config.durability == Durability::Sync {
        let direct = journal
            .use_direct_io()
            .map_err(|e| format!("journal: {e}"))?;
        tracing::info!(direct_io = direct, "journal: write mode");
    }
    if let Some((segment, offset, bytes)) = &report.truncated {
        tracing::warn!(segment = %segment.display(), offset, bytes, "journal: torn tail truncated");
    }
    // What the journal holds may be a crashed process's page cache only (async
    // durability): durable before the registry is settled from it below.
    journal.flush().map_err(|e| format!("journal: {e}"))?;
    let settled = registry.ledger().settled_seq;
    // The newest snapshot the registry has settled through; older or broken ones are
    // skipped (a full replay is the last resort).
    let (snapshot, skipped) = crate::snapshot::load_newest(&snapshot_dir(config), settled)
        .map_err(|e| format!("snapshots: {e}"))?;
    for why in skipped {
        tracing::warn!("recovery: snapshot skipped: {why}");
    }
    let (mut engine, from) = match snapshot {
        Some(loaded) => {
            tracing::info!(seq = loaded.seq, path = %loaded.path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "recovery: snapshot loaded");
            for (n, i) in loaded.engine.state().instruments.iter().enumerate() {
                catalog.add_instrument(engine::InstrumentId(n as u32), i.spec.symbol.as_str());
            }
            rebuild_history(config, hub, loaded.seq)?;
            hub.set_bars(loaded.bars);
            (loaded.engine, loaded.seq + 1)
        }
        None => (Engine::new(engine_config(config)), 1),
    };
    let snapshot_seq = from - 1;
    let mut legs: Vec<SettleLeg> = Vec::new();
    let mut events = Vec::with_capacity(64);
    let mut tally = BTreeMap::new();
    let mut counts = MetricCounts::default();
    let mut pending_through = 0;
    let mut pending_ts = 0;
    let mut settle_legs = 0;
    let mut flush = |registry: &mut Registry,
                     legs: &mut Vec<SettleLeg>,
                     through: u64,
                     ts: u64|
     -> Result<(), String> {
        if legs.is_empty() {
            return Ok(());
        }
        settle_legs += legs.len();
        registry
            .apply(&crate::regworker::settle_tx(
                through,
                ts,
                std::mem::take(legs),
            ))
            .map(|_| ())
            .map_err(|e| format!("settling the engine through {through}: {e}"))
    };
    if report.last_seq < snapshot_seq {
        return Err(format!(
            "the journal ends at {} but the snapshot is at {snapshot_seq}: journal segments are missing",
            report.last_seq
        ));
    }
    let replayed = journal::replay(&dir, from, |command| {
        events.clear();
        engine
            .apply(command, &mut events)
            .map_err(|e| format!("{e:?}"))?;
        crate::core::tally(&events, &mut tally);
        counts.count(metrics, &events);
        hub.publish(command.seq, command.timestamp_ns, &events);
        let before = legs.len();
        settlement_legs(&events, catalog, &mut legs);
        if command.seq <= settled {
            legs.truncate(before);
        } else {
            pending_through = command.seq;
            pending_ts = command.timestamp_ns;
            if legs.len() >= SETTLE_LEGS_MAX / 2 {
                flush(registry, &mut legs, pending_through, pending_ts)?;
                hub.notify();
            }
        }
        Ok(())
    })
    .map_err(|e| format!("journal replay: {e}"))?;
    counts.add_to(metrics);
    flush(registry, &mut legs, pending_through, pending_ts)?;
    hub.notify();
    tracing::info!(
        replayed,
        from_snapshot = snapshot_seq,
        last_seq = engine.last_seq(),
        settled_from = settled,
        settle_legs,
        ?tally,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovery: journal replayed"
    );
    Ok((
        engine,
        journal,
        Recovered {
            replayed,
            last_seq: report.last_seq,
            settled_from: settled,
            settle_legs,
            truncated: report.truncated,
        },
    ))
}

/// Streams resume across a restart (and recent trades stay on the market pages): the
/// history before the newest snapshot is rebuilt by replaying, on a scratch copy of the
/// previous snapshot, the journal between the two (at most one snapshot interval). Without
/// a previous snapshot, a journal of at most one snapshot interval is replayed from its
/// start on a fresh engine; a longer one leaves the history starting at `newest`.
fn rebuild_history(config: &Config, hub: &Hub, newest: u64) -> Result<(), String> {
    let started = Instant::now();
    let older = crate::snapshot::older_than(&snapshot_dir(config), newest)
        .map_err(|e| format!("snapshots: {e}"))?;
    let interval = if config.snapshot_every == 0 {
        1_000_000
    } else {
        config.snapshot_every
    };
    let journal_from = journal::first_seq(&journal_dir(config)).unwrap_or(1);
    let (from, mut scratch) = match older {
        Some(older) => (older.seq, older.engine),
        None if newest <= interval => (0, Engine::new(engine_config(config))),
        None => {
            hub.set_floor(newest, Vec::new());
            return Ok(());
        }
    };
    if from + 1 < journal_from {
        // The journal before it was archived: the history starts at `newest` (recovery
        // itself needs only the journal after `newest`).
        hub.set_floor(newest, Vec::new());
        return Ok(());
    }
    hub.set_floor(from, Vec::new());
    let mut events = Vec::with_capacity(64);
    let replayed = journal::replay(&journal_dir(config), from + 1, |command| {
        if command.seq > newest {
            return Ok(());
        }
        events.clear();
        scratch
            .apply(command, &mut events)
            .map_err(|e| format!("{e:?}"))?;
        hub.publish(command.seq, command.timestamp_ns, &events);
        Ok(())
    })
    .map_err(|e| format!("rebuilding the stream history: {e}"))?;
    tracing::info!(
        from,
        to = newest,
        replayed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovery: stream history rebuilt"
    );
    Ok(())
}

/// Brings the engine in line with registry facts it may have missed in a crash: trading
/// accounts for every registry account, deposits for every move into trading.
async fn repair(core: &Core) -> Result<(usize, usize), String> {
    let accounts: Vec<(u64, bool)> = core
        .registry
        .read(|r| {
            r.ledger()
                .accounts
                .values()
                .map(|a| (a.id.0, trades(a.kind)))
                .collect()
        })
        .await
        .map_err(|e| e.message)?;
    let known: HashSet<u64> = core
        .query(|e| e.state().accounts.iter().map(|a| a.id.0).collect())
        .await
        .map_err(|e| e.message)?;
    let mut opened = 0;
    for (account, trades) in accounts {
        if trades && !known.contains(&account) {
            core.execute(CommandKind::OpenAccount {
                account: EngineAccount(account),
                stp: engine::StpMode::default(),
            })
            .await
            .map_err(|e| e.message)?;
            opened += 1;
        }
    }
    let applied: HashSet<u64> = core
        .query(|e| e.state().transfers.keys().map(|t| t.0).collect())
        .await
        .map_err(|e| e.message)?;
    let mut deposits = 0;
    let mut from = 1;
    loop {
        let entries = core
            .registry
            .read(move |r| r.journal(from, 4_096))
            .await
            .map_err(|e| e.message)?
            .map_err(|e| e.to_string())?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            break;
        };
        for entry in entries {
            let (account, unit, quantity_t) = match entry.tx.op {
                Op::MoveToTrading {
                    account,
                    unit,
                    quantity_t,
                } => (account, unit, quantity_t),
                Op::PledgeEnforce {
                    pledge,
                    how: Enforcement::ForAuction,
                } => {
                    let Some(p) = core
                        .registry
                        .read(move |r| r.ledger().pledges.get(&pledge).copied())
                        .await
                        .map_err(|e| e.message)?
                    else {
                        continue;
                    };
                    (p.pledgor, p.unit, p.quantity_t)
                }
                _ => continue,
            };
            if applied.contains(&deposit_transfer(entry.seq).0) {
                continue;
            }
            let Some(instrument) = core.catalog.instrument_of_unit(unit) else {
                continue;
            };
            core.execute(CommandKind::DepositAllowances {
                transfer: deposit_transfer(entry.seq),
                account: EngineAccount(account.0),
                instrument,
                quantity_t,
            })
            .await
            .map_err(|e| e.message)?;
            deposits += 1;
        }
        from = last + 1;
    }
    Ok((opened, deposits))
}

fn tls(config: &Config) -> Result<Option<ServerTlsConfig>, String> {
    let Some(t) = &config.tls else {
        return Ok(None);
    };
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&t.cert)?, read(&t.key)?));
    if let Some(ca) = &t.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub dashboard_addr: Option<SocketAddr>,
}

/// Runs the server until `stop` resolves (or ctrl-c / SIGTERM when `stop` is None).
pub async fn serve(
    config: Config,
    on_ready: impl FnOnce(&Running),
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), String> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let tokens = Arc::new(load_tokens(&config)?);
    let metrics = Arc::new(Metrics::default());
    let catalog = Arc::new(Catalog::default());
    let hub = Arc::new(Hub::new(
        config.limits.history_events,
        config.limits.trades_retained,
    ));

    let t = Instant::now();
    let mut registry = Registry::open(
        &registry_dir(&config),
        RegistryOptions {
            sync: config.durability == Durability::Sync,
        },
    )
    .map_err(|e| format!("registry: {e}"))?;
    for (unit, def) in &registry.ledger().units {
        catalog.add_unit(*unit, def);
    }
    tracing::info!(
        entries = registry.seq(),
        elapsed_ms = t.elapsed().as_millis() as u64,
        "recovery: registry opened"
    );

    let t = Instant::now();
    let (engine, journal, recovered) = recover(&config, &mut registry, &catalog, &hub, &metrics)?;
    tracing::info!(
        replayed = recovered.replayed,
        elapsed_ms = t.elapsed().as_millis() as u64,
        "recovery: engine rebuilt"
    );

    let copy_buffer = crate::snapshot::CopyBuffer::default();
    let (registry_handle, settled, registry_thread) = crate::regworker::start(
        registry,
        config.limits.registry_queue_depth,
        config.limits.registry_batch_max,
        catalog.clone(),
        metrics.clone(),
        crate::regworker::SnapshotFiles {
            dir: snapshot_dir(&config),
            archive_journal: config.journal_archive.then(|| journal_dir(&config)),
            copy_buffer: copy_buffer.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    let (core, threads) = Core::start(CoreParts {
        engine,
        journal,
        durability: config.durability,
        async_flush: Duration::from_millis(config.async_flush_ms.max(1)),
        queue_depth: config.limits.queue_depth,
        batch_max: config.limits.batch_max,
        metrics: metrics.clone(),
        hub,
        catalog,
        registry: registry_handle,
        settled,
        snapshot_every: config.snapshot_every,
        copy_buffer,
    })
    .map_err(|e| e.to_string())?;

    let t = Instant::now();
    let (opened, deposits) = repair(&core).await?;
    tracing::info!(
        opened,
        deposits,
        elapsed_ms = t.elapsed().as_millis() as u64,
        "recovery: registry moves re-driven"
    );
    let t = Instant::now();
    let outcome = core.reconcile().await.map_err(|e| e.message)?;
    if outcome.clean() {
        tracing::info!(
            seq = outcome.seq,
            accounts = outcome.accounts_checked,
            elapsed_ms = t.elapsed().as_millis() as u64,
            "recovery: reconciliation clean"
        );
    } else {
        tracing::error!(seq = outcome.seq, differences = ?outcome.differences, problems = ?outcome.problems, "recovery: reconciliation NOT clean");
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = Ctx {
        core: core.clone(),
        tokens,
        limits: config.limits.clone(),
        shutdown: shutdown_rx,
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_addr = match config.metrics_listen {
        Some(a) => Some(crate::http::start(a, metrics.clone()).await?),
        None => None,
    };
    if config.calendar.enabled {
        crate::scheduler::start(&config.calendar, core.clone(), ctx.shutdown.clone())?;
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::trading_service_server::TradingServiceServer<Trading>>()
        .await;
    // Settlement refused by the registry stops settlement; say so to health checks (the
    // whole server and the trading service) so operators and load balancers see it.
    {
        let reporter = health_reporter.clone();
        let metrics = metrics.clone();
        let mut shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                if metrics
                    .settlement_failures
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0
                {
                    tracing::error!("settlement stopped: health set to NOT_SERVING");
                    reporter
                        .set_service_status("", tonic_health::ServingStatus::NotServing)
                        .await;
                    reporter
                        .set_not_serving::<pb::trading_service_server::TradingServiceServer<Trading>>()
                        .await;
                    return;
                }
            }
        });
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| e.to_string())?;
    let max = config.limits.message_bytes_max;
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(config.limits.in_flight_per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        // One span per request; handlers record the principal and the ids they act on.
        .trace_fn(|request| {
            tracing::info_span!(
                "rpc",
                method = %request.uri().path(),
                principal = tracing::field::Empty,
                accounts = tracing::field::Empty,
            )
        });
    if let Some(tls) = tls(&config)? {
        builder = builder.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            pb::trading_service_server::TradingServiceServer::new(Trading { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            pb::market_data_service_server::MarketDataServiceServer::new(MarketData {
                ctx: ctx.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::registry_service_server::RegistryServiceServer::new(RegistryApi {
                ctx: ctx.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::admin_service_server::AdminServiceServer::new(Admin { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            pb::auction_service_server::AuctionServiceServer::new(Auctions { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            pb::compliance_service_server::ComplianceServiceServer::new(
                crate::services::compliance::ComplianceApi { ctx: ctx.clone() },
            )
            .max_decoding_message_size(config.limits.bulk_message_bytes_max),
        );
    let dashboard_addr = match config.dashboard_listen {
        Some(a) => Some(crate::dashboard::start(a, ctx.clone()).await?),
        None => None,
    };
    let running = Running {
        addr,
        metrics_addr,
        dashboard_addr,
    };
    tracing::info!(%addr, metrics = ?metrics_addr, dashboard = ?dashboard_addr, elapsed_ms = started.elapsed().as_millis() as u64, "serving");
    on_ready(&running);

    let shutdown_tx = Arc::new(shutdown_tx);
    let tell = shutdown_tx.clone();
    let signal = async move {
        match stop {
            Some(rx) => {
                let _ = rx.await;
            }
            None => shutdown_signal().await,
        }
        tracing::info!(
            "shutting down: no new connections; streams end once what they took is answered"
        );
        // Open streams would otherwise hold the graceful shutdown for as long as their
        // clients keep them open: subscriptions end now with UNAVAILABLE (clients resume
        // from their last position), order entry after answering what it read.
        let _ = tell.send(true);
    };
    let mut stopping = ctx.shutdown.clone();
    let grace = async move {
        let _ = stopping.wait_for(|down| *down).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    // Our own listener (bound before the port is announced), so the builder's tcp_nodelay
    // does not reach it: set it here, or Nagle's algorithm holds small replies back until
    // the peer's delayed ACK (40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tokio::select! {
        served = router.serve_with_incoming_shutdown(incoming, signal) => served,
        () = grace => {
            tracing::warn!(
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "connections still open after the shutdown grace period: closing them"
            );
            Ok(())
        }
    };
    let _ = shutdown_tx.send(true);
    drop(ctx);
    // A snapshot at the last sequence makes the next start quick.
    match tokio::time::timeout(Duration::from_secs(60), core.snapshot()).await {
        Ok(Ok(seq)) => tracing::info!(seq, "shutdown snapshot written"),
        Ok(Err(e)) => tracing::warn!("shutdown snapshot not written: {}", e.message),
        Err(_) => tracing::warn!("shutdown snapshot timed out"),
    }
    // Everything acknowledged is in the journal already; wait for in-flight commands to
    // finish, then stop the threads in order.
    core.shutdown();
    drop(core);
    threads.join();
    let _ = registry_thread.join();
    tracing::info!("stopped");
    served.map_err(|e| e.to_string())
}

/// After the stop signal, how long open connections get to finish their calls (a client
/// that stops reading its replies could otherwise hold the shutdown forever).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
