//! `carbonx serve`: start-up (recovery, the threads, catch-up), the gRPC services with
//! their limits, health and metrics, then a graceful stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1 as pb;
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::auth::Tokens;
use crate::catalog::Catalog;
use crate::catchup;
use crate::config::{Config, journal_dir, snapshot_dir};
use crate::core::{Core, CoreParts};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::scheduler::Clock;
use crate::services::Ctx;
use crate::services::admin::Admin;
use crate::services::auction::Auctions;
use crate::services::market::MarketData;
use crate::services::registry::RegistryApi;
use crate::services::trading::Trading;

/// How long a graceful stop waits for its snapshot.
pub const SHUTDOWN_SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

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

/// A running server: where it listens, and its services' shared context (for front-ends
/// the binary starts beside it, such as the dashboard).
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub ctx: Ctx,
}

/// Runs the server until `stop` resolves (or ctrl-c / SIGTERM when `stop` is None).
pub async fn serve(
    config: Config,
    on_ready: impl FnOnce(&Running),
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), String> {
    serve_with_clock(config, Clock::system(), on_ready, stop).await
}

/// [`serve`] with the calendar reading `clock` (tests set the time of day).
pub async fn serve_with_clock(
    config: Config,
    clock: Clock,
    on_ready: impl FnOnce(&Running),
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), String> {
    let started = Instant::now();
    let (mut pipeline, tokens, metrics) = start_up(&config, &clock).await?;
    let core = pipeline.core.clone();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = Ctx {
        core: core.clone(),
        tokens,
        limits: config.limits.clone(),
        shutdown: shutdown_rx,
        tls: config.tls.is_some(),
        clock: clock.clone(),
        utc_offset_minutes: config.calendar.utc_offset_minutes,
        market: config.market.clone(),
        holidays: Arc::new(config.calendar.holidays.clone()),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_addr = match config.metrics_listen {
        Some(a) => Some(crate::http::start(a, metrics.clone()).await?),
        None => None,
    };
    if config.calendar.enabled && !config.read_only {
        crate::scheduler::start(&config.calendar, core.clone(), clock, ctx.shutdown.clone())
            .await?;
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::trading_service_server::TradingServiceServer<Trading>>()
        .await;
    watch_health(health_reporter, metrics, ctx.shutdown.clone());
    let router = router(&config, &ctx, health_service)?;
    let running = Running {
        addr,
        metrics_addr,
        ctx: ctx.clone(),
    };
    tracing::info!(%addr, metrics = ?metrics_addr, read_only = config.read_only, elapsed_ms = started.elapsed().as_millis() as u64, "serving");
    on_ready(&running);
    let served = run_until_stopped(router, listener, stop, shutdown_tx, ctx.shutdown.clone()).await;
    drop((ctx, running));
    shut_down(core, &mut pipeline, config.read_only).await;
    served
}

/// Recovery, the threads started, the engine caught up with the registry and the two
/// ledgers reconciled: what is served is known right.
async fn start_up(
    config: &Config,
    clock: &Clock,
) -> Result<(Pipeline, Arc<Tokens>, Arc<Metrics>), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let tokens = Arc::new(load_tokens(config)?);
    crate::auth::check_stable_ids(&tokens, &config.data_dir.join(crate::auth::PRINCIPALS_SEEN))?;
    let metrics = Arc::new(Metrics::default());
    let catalog = Arc::new(Catalog::default());
    let hub = Arc::new(Hub::new(
        config.limits.history_events,
        config.limits.trades_retained,
    ));
    crate::disk::check(&config.data_dir, config.limits.disk_reserve_bytes, &metrics);
    let state = crate::recovery::recover(config, config.read_only, &catalog, &hub, &metrics)?;
    let pipeline = start_pipeline(config, state, &metrics, (hub, catalog), clock)?;
    if !config.read_only {
        let t = Instant::now();
        let (opened, deposits) = catchup::repair(&pipeline.core).await?;
        tracing::info!(
            opened,
            deposits,
            elapsed_ms = t.elapsed().as_millis() as u64,
            "recovery: registry moves re-driven"
        );
    }
    catchup::check_reconciled(&pipeline.core, config.read_only).await?;
    Ok((pipeline, tokens, metrics))
}

/// A snapshot at the last sequence (the next start is quick), then the threads stopped in
/// order. Everything acknowledged is in the journal already; in-flight commands finish
/// first, the durable mark stops last.
async fn shut_down(core: Core, pipeline: &mut Pipeline, read_only: bool) {
    if !read_only {
        match tokio::time::timeout(SHUTDOWN_SNAPSHOT_WAIT, core.snapshot()).await {
            Ok(Ok(seq)) => tracing::info!(seq, "shutdown snapshot written"),
            Ok(Err(e)) => tracing::warn!("shutdown snapshot not written: {}", e.message),
            Err(_) => tracing::warn!("shutdown snapshot timed out"),
        }
    }
    core.shutdown();
    drop(core);
    pipeline.stop();
    tracing::info!("stopped");
}

/// The threads behind the services: the registry writer, the core, the journal's durable
/// mark and the disk watcher.
struct Pipeline {
    core: Core,
    threads: Option<crate::core::Threads>,
    registry_thread: Option<std::thread::JoinHandle<()>>,
    helpers: Vec<std::thread::JoinHandle<()>>,
    helpers_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Pipeline {
    fn stop(&mut self) {
        if let Some(t) = self.threads.take() {
            t.join();
        }
        if let Some(t) = self.registry_thread.take() {
            let _ = t.join();
        }
        self.helpers_stop
            .store(true, std::sync::atomic::Ordering::Release);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn start_pipeline(
    config: &Config,
    state: crate::recovery::State,
    metrics: &Arc<Metrics>,
    (hub, catalog): (Arc<Hub>, Arc<Catalog>),
    clock: &Clock,
) -> Result<Pipeline, String> {
    let copy_buffer = crate::snapshot::CopyBuffer::default();
    let (registry_handle, settled, registry_thread) = crate::regworker::start(
        state.registry,
        config.limits.registry_queue_depth,
        config.limits.registry_batch_max,
        catalog.clone(),
        metrics.clone(),
        crate::regworker::SnapshotFiles {
            dir: snapshot_dir(config),
            archive_journal: config.journal_archive.then(|| journal_dir(config)),
            copy_buffer: copy_buffer.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    let helpers_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut helpers = Vec::new();
    if !config.read_only {
        let m = metrics.clone();
        let durable = move || {
            m.journal_durable_seq
                .load(std::sync::atomic::Ordering::Acquire)
        };
        helpers.push(
            journal::spawn_mark(&journal_dir(config), durable, helpers_stop.clone())
                .map_err(|e| format!("journal durable mark: {e}"))?,
        );
    }
    helpers.push(
        crate::disk::watch(
            config.data_dir.clone(),
            config.limits.disk_reserve_bytes,
            metrics.clone(),
            helpers_stop.clone(),
        )
        .map_err(|e| e.to_string())?,
    );
    let (core, threads) = Core::start(CoreParts {
        engine: state.engine,
        journal: state.journal,
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
        read_only: config.read_only,
        clock: clock.clone(),
    })
    .map_err(|e| e.to_string())?;
    Ok(Pipeline {
        core,
        threads: Some(threads),
        registry_thread: Some(registry_thread),
        helpers,
        helpers_stop,
    })
}

/// Health follows what the server can do: NOT_SERVING while the disk is full, while the
/// registry's store is behind its memory (it refused writes), or after the registry
/// refused a settlement; SERVING again once the disk has room and the store caught up.
fn watch_health(
    reporter: tonic_health::server::HealthReporter,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::disk::DISK_CHECK_INTERVAL);
        let mut serving = true;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let ok = !metrics.disk_full.load(std::sync::atomic::Ordering::Acquire)
                && !metrics.halted.load(std::sync::atomic::Ordering::Acquire)
                && metrics
                    .registry_unwritten
                    .load(std::sync::atomic::Ordering::Acquire)
                    == 0;
            if ok == serving {
                continue;
            }
            serving = ok;
            let status = if ok {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            tracing::warn!(serving = ok, "health: status changed");
            reporter.set_service_status("", status).await;
            let name = <pb::trading_service_server::TradingServiceServer<Trading> as tonic::server::NamedService>::NAME;
            reporter.set_service_status(name, status).await;
        }
    });
}

/// The gRPC services with their limits, TLS and tracing.
/// The services behind the layer that words tonic's own over-size refusal as the API's.
type Router = tonic::transport::server::Router<
    tower_layer::Stack<crate::oversize::OversizeLayer, tower_layer::Identity>,
>;

fn router(
    config: &Config,
    ctx: &Ctx,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<Router, String> {
    // Both reflection versions: grpcurl and grpcio's client read v1, older grpcurl,
    // grpcio-reflection's client and Postman v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1().map_err(|e| e.to_string())?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
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
    if let Some(tls) = tls(config)? {
        builder = builder.tls_config(tls).map_err(|e| e.to_string())?;
    }
    Ok(builder
        .layer(crate::oversize::OversizeLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
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
            pb::carry_over_service_server::CarryOverServiceServer::new(
                crate::services::carry_over::CarryOverApi { ctx: ctx.clone() },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::emissions_service_server::EmissionsServiceServer::new(
                crate::services::emissions::EmissionsApi { ctx: ctx.clone() },
            )
            .max_decoding_message_size(config.limits.bulk_message_bytes_max),
        )
        .add_service(
            pb::verification_service_server::VerificationServiceServer::new(
                crate::services::verification::VerificationApi { ctx: ctx.clone() },
            )
            .max_decoding_message_size(max),
        )
        .add_service(
            pb::compliance_service_server::ComplianceServiceServer::new(
                crate::services::compliance::ComplianceApi { ctx: ctx.clone() },
            )
            .max_decoding_message_size(config.limits.bulk_message_bytes_max),
        ))
}

/// Serves until the stop signal, then stops gracefully: streams end at once, calls in
/// flight get `SHUTDOWN_GRACE`.
async fn run_until_stopped(
    router: Router,
    listener: tokio::net::TcpListener,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
    shutdown_tx: watch::Sender<bool>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), String> {
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
