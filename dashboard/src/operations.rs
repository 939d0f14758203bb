//! The operations page: the trading day, how far the journal and settlement have got,
//! queue depths, traffic and rejections by reason (the figures of `/metrics`).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use server::auth::Rpc;
use server::metrics::Metrics;

use crate::Shared;
use crate::html::{Shell, grouped, render};
use crate::market::phase_name;
use crate::session::viewer;

/// How often the page reloads itself (the script reads `data-reload-ms`).
const OPERATIONS_RELOAD_MS: u64 = 5_000;

#[derive(Template)]
#[template(path = "operations.html")]
struct OperationsPage {
    shell: Shell,
    date: u32,
    /// `date` as 2026-11-30.
    date_text: String,
    phase: &'static str,
    sequence: u64,
    durable: u64,
    settled: u64,
    settlement_failures: u64,
    queues: Vec<Queue>,
    journal_batches: String,
    fsync_p50_us: u64,
    fsync_p99_us: u64,
    fsync_p999_us: u64,
    commands_n: u64,
    commands: String,
    orders: String,
    trades: String,
    traded_t: String,
    streams_open: i64,
    slow_consumers_dropped: u64,
    overloaded: u64,
    /// (reason, count, count shown).
    rejects: Vec<(String, u64, String)>,
    reload_ms: u64,
    reload_s: u64,
}

struct Queue {
    name: &'static str,
    key: &'static str,
    depth: i64,
}

pub(crate) async fn page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::Reconcile, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let day = ctx
        .core
        .query(|e| (e.trading_date(), e.phase(), e.last_seq()))
        .await
        .ok();
    let (date, phase, sequence) = day.unwrap_or((0, engine::Phase::Closed, 0));
    let m = &ctx.core.metrics;
    let mut page = figures(m, Shell::page("Operations", "/operations", &v));
    (page.date, page.phase, page.sequence) = (date, phase_name(phase), sequence);
    page.date_text = client::names::date(date);
    render(&page)
}

/// The page with the metrics' figures (the trading day's filled in by the caller).
fn figures(m: &Metrics, shell: Shell) -> OperationsPage {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
    let commands = load(&m.commands);
    let rejects = m.rejects.lock().clone();
    OperationsPage {
        shell,
        date: 0,
        date_text: String::new(),
        phase: "",
        sequence: 0,
        durable: load(&m.journal_durable_seq),
        settled: load(&m.settled_seq),
        settlement_failures: load(&m.settlement_failures),
        queues: vec![
            Queue {
                name: "core (sequencer)",
                key: "queue-core-(sequencer)",
                depth: m.sequencer_queue.load(Relaxed),
            },
            Queue {
                name: "registry writer",
                key: "queue-registry-writer",
                depth: m.registry_queue.load(Relaxed),
            },
        ],
        journal_batches: grouped(load(&m.journal_batches)),
        fsync_p50_us: m.journal_fsync.quantile_us(500),
        fsync_p99_us: m.journal_fsync.quantile_us(990),
        fsync_p999_us: m.journal_fsync.quantile_us(999),
        commands_n: commands,
        commands: grouped(commands),
        orders: grouped(load(&m.orders)),
        trades: grouped(load(&m.trades)),
        traded_t: grouped(load(&m.traded_t)),
        streams_open: m.streams_open.load(Relaxed),
        slow_consumers_dropped: load(&m.slow_consumers_dropped),
        overloaded: load(&m.overloaded),
        rejects: rejects
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n, grouped(n)))
            .collect(),
        reload_ms: OPERATIONS_RELOAD_MS,
        reload_s: OPERATIONS_RELOAD_MS / 1000,
    }
}
