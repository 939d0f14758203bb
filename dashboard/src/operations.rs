//! The operations page: the trading day, how far the journal and settlement have got,
//! queue depths, traffic and rejections by reason (the figures of `/metrics`).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use server::auth::Rpc;
use server::metrics::Metrics;

use crate::Shared;
use crate::html::{figure, grouped, nav, page_shell};
use crate::market::phase_name;
use crate::session::{respond, viewer};

/// How often the page reloads itself (the script reads `data-reload-ms`).
const OPERATIONS_RELOAD_MS: u64 = 5_000;

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
    let m = &ctx.core.metrics;
    let mut body = progress(m, day.unwrap_or((0, engine::Phase::Closed, 0)));
    body.push_str(&queues(m));
    body.push_str(&traffic(m));
    body.push_str(&rejections(m));
    respond(page_shell("Operations", &nav("/operations", &v), &body))
}

fn progress(m: &Metrics, (date, phase, seq): (u32, engine::Phase, u64)) -> String {
    format!(
        "<section class=wide><h1>Operations</h1><div class=kv>\
         <span>trading date</span><span data-key=trading-date data-value=\"{date}\">{date}</span>\
         <span>phase</span><span>{}</span><span>engine sequence</span><span data-key=sequence data-value=\"{seq}\">{seq}</span>\
         <span>journal durable through</span><span data-key=journal-durable data-value=\"{durable}\">{durable}</span>\
         <span>settled through</span><span data-key=settled data-value=\"{settled}\">{settled}</span>\
         <span>settlement failures</span><span>{}</span></div></section>",
        phase_name(phase),
        m.settlement_failures.load(Relaxed),
        durable = m.journal_durable_seq.load(Relaxed),
        settled = m.settled_seq.load(Relaxed),
    )
}

fn queues(m: &Metrics) -> String {
    let mut out = String::from(
        "<section><h2>Queues</h2><table><tr><th>queue</th><th class=num>depth</th></tr>",
    );
    for (name, q) in [
        ("core (sequencer)", &m.sequencer_queue),
        ("registry writer", &m.registry_queue),
    ] {
        let depth = q.load(Relaxed);
        let key = format!("queue-{}", name.replace(' ', "-"));
        let _ = write!(
            out,
            "<tr><td>{name}</td>{}</tr>",
            figure(&key, i128::from(depth), &depth.to_string())
        );
    }
    out.push_str("</table></section>");
    out
}

fn traffic(m: &Metrics) -> String {
    let commands = m.commands.load(Relaxed);
    format!(
        "<section><h2>Journal and traffic</h2><table>\
         <tr><td>journal batches (fsyncs)</td><td class=num>{}</td></tr>\
         <tr><td>fsync latency p50 / p99 / p99.9</td><td class=num>{} / {} / {} us</td></tr>\
         <tr><td>commands</td>{}</tr><tr><td>orders</td><td class=num>{}</td></tr>\
         <tr><td>trades</td><td class=num>{}</td></tr><tr><td>traded t</td><td class=num>{}</td></tr>\
         <tr><td>streams open</td><td class=num>{}</td></tr><tr><td>slow consumers dropped</td><td class=num>{}</td></tr>\
         <tr><td>requests refused for overload</td><td class=num>{}</td></tr></table></section>",
        grouped(m.journal_batches.load(Relaxed)),
        m.journal_fsync.quantile_us(500),
        m.journal_fsync.quantile_us(990),
        m.journal_fsync.quantile_us(999),
        figure("commands", i128::from(commands), &grouped(commands)),
        grouped(m.orders.load(Relaxed)),
        grouped(m.trades.load(Relaxed)),
        grouped(m.traded_t.load(Relaxed)),
        m.streams_open.load(Relaxed),
        m.slow_consumers_dropped.load(Relaxed),
        m.overloaded.load(Relaxed)
    )
}

fn rejections(m: &Metrics) -> String {
    let mut out = String::from(
        "<section><h2>Rejections by reason</h2><table><tr><th>reason</th><th class=num>count</th></tr>",
    );
    let rejects = m.rejects.lock().clone();
    for (reason, n) in &rejects {
        let _ = write!(
            out,
            "<tr><td>{reason}</td>{}</tr>",
            figure(&format!("reject-{reason}"), i128::from(*n), &grouped(*n))
        );
    }
    if rejects.is_empty() {
        out.push_str("<tr><td colspan=2 class=muted>none</td></tr>");
    }
    let _ = write!(
        out,
        "</table><p class=muted data-reload-ms={OPERATIONS_RELOAD_MS}>The same figures as <code>/metrics</code> on the metrics port. This page reloads every {} s.</p></section>",
        OPERATIONS_RELOAD_MS / 1000
    );
    out
}
