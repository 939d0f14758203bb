//! One covered entity's page: its compliance for the year, how its allocation was
//! computed, its holdings by position and the journal entries that name it.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proto::v1 as pb;
use registry::model::{AccountId, FreezeReason, Holding, UnitId};
use server::auth::Rpc;
use server::services::compliance::entity_compliance;

use crate::compliance::latest_year;
use crate::html::{esc, figure, grouped, money, nav, page_shell};
use crate::session::{refused, respond, viewer};
use crate::{DASHBOARD_JOURNAL_SCAN, Shared};

/// Journal entries the page lists (the newest of those scanned).
const ENTITY_ENTRIES_SHOWN: usize = 100;
/// An entry's operation is cut to this many characters.
const ENTRY_TEXT_CHARS: usize = 200;

/// What the page shows, read on the registry's thread in one go.
struct EntityNow {
    year: u16,
    compliance: pb::EntityCompliance,
    holdings: Vec<(String, Holding)>,
    /// (journal sequence, the operation as text), oldest first.
    entries: Vec<(u64, String)>,
}

async fn entity_now(ctx: &Shared, id: u64, year: Option<u16>) -> Option<EntityNow> {
    let catalog = ctx.core.catalog.clone();
    ctx.core
        .registry
        .read(move |reg| {
            let ledger = reg.ledger();
            let year = year.unwrap_or_else(|| latest_year(ledger));
            let compliance = entity_compliance(ledger, year, AccountId(id))?;
            let holdings = ledger
                .holdings
                .range((AccountId(id), UnitId(0))..=(AccountId(id), UnitId(u32::MAX)))
                .map(|((_, u), h)| (catalog.unit_name(*u), h.clone()))
                .collect();
            let from = reg.seq().saturating_sub(DASHBOARD_JOURNAL_SCAN as u64) + 1;
            let needle = format!("AccountId({id})");
            let entries = reg
                .journal(from, DASHBOARD_JOURNAL_SCAN)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    let text = format!("{:?}", e.tx.op);
                    text.contains(&needle).then_some((e.seq, text))
                })
                .collect();
            Some(EntityNow {
                year,
                compliance,
                holdings,
                entries,
            })
        })
        .await
        .ok()
        .flatten()
}

pub(crate) async fn page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::GetCompliance, &[id]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let year = query.get("year").and_then(|y| y.parse().ok());
    let Some(e) = entity_now(&ctx, id, year).await else {
        return refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no covered entity with that account",
        );
    };
    let mut body = summary(e.year, &e.compliance);
    body.push_str(&explanation(&e.compliance.explanation));
    body.push_str(&holdings_table(&e.holdings));
    body.push_str(&entries_table(&e.entries));
    respond(page_shell(
        &format!("Entity {id}"),
        &nav("/compliance", &v),
        &body,
    ))
}

fn summary(year: u16, c: &pb::EntityCompliance) -> String {
    let deduction = if c.deduction_owed_t > 0 {
        format!("; deduction owed {} t", grouped(c.deduction_owed_t))
    } else {
        String::new()
    };
    format!(
        "<section class=wide><h1>{} <span class=muted>account {}</span></h1><div class=kv>\
         <span>sector / province</span><span>{} / {}</span>\
         <span>compliance {year}</span><span><span class=\"tag {st}\">{st}</span></span>\
         <span>obligation (verified)</span><span data-key=obligation data-value=\"{}\">{} t</span>\
         <span>surrendered</span><span>{} t CEA + {} t CCER</span>\
         <span>shortfall</span><span data-key=shortfall data-value=\"{}\">{} t</span>\
         <span>pre-allocated</span><span>{} t</span>\
         <span>allocated ({}, plan {})</span><span data-key=allocated data-value=\"{}\">{} t</span>\
         <span>delivered / held / deducted / clawed back</span><span>{} / {} / {} / {} t</span>\
         <span>penalty</span><span>{} yuan{deduction}</span></div></section>",
        esc(&c.name),
        c.account_id,
        client::names::sector(c.sector),
        esc(&c.province),
        c.obligation_t,
        grouped(c.obligation_t),
        grouped(c.surrendered_cea_t),
        grouped(c.surrendered_ccer_t),
        c.shortfall_t,
        grouped(c.shortfall_t),
        grouped(c.pre_allocated_t),
        esc(&c.method),
        esc(&c.plan_version),
        c.allocated_t,
        grouped(c.allocated_t),
        grouped(c.delivered_t),
        grouped(c.held_t),
        grouped(c.deducted_t),
        grouped(c.clawed_back_t),
        money(c.penalty_fen),
        st = esc(&c.status_code),
    )
}

/// The allocation's worked steps, one per line.
fn explanation(text: &str) -> String {
    let steps = text.replace(". ", ".\n").replace("; ", ";\n");
    let shown = if steps.is_empty() {
        "not allocated yet".to_string()
    } else {
        esc(&steps)
    };
    format!(
        "<section class=wide><h2>How the allocation was computed</h2><pre class=explain>{shown}</pre></section>"
    )
}

fn holdings_table(holdings: &[(String, Holding)]) -> String {
    let mut out = String::from(
        "<section><h2>Holdings by position</h2><table><tr><th>unit</th><th class=num>registry</th><th class=num>trading</th><th class=num>frozen</th><th>frozen by reason</th></tr>",
    );
    for (unit, h) in holdings {
        let reasons: Vec<String> = h
            .frozen
            .iter()
            .map(|(r, q)| match r {
                FreezeReason::Pledge(p) => format!("pledge {p}: {}", grouped(*q)),
                FreezeReason::Judicial(o) => format!("court order {o}: {}", grouped(*q)),
                FreezeReason::Pending(p) => format!("transfer {p}: {}", grouped(*q)),
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td>{}<td class=num>{}</td><td class=num>{}</td><td>{}</td></tr>",
            esc(unit),
            figure(
                &format!("registry-{unit}"),
                i128::from(h.registry_available_t),
                &grouped(h.registry_available_t)
            ),
            grouped(h.trading_t),
            grouped(h.frozen_t()),
            reasons.join(", ")
        );
    }
    out.push_str("</table></section>");
    out
}

fn entries_table(entries: &[(u64, String)]) -> String {
    let mut out = String::from(
        "<section><h2>Journal entries</h2><table><tr><th class=num>entry</th><th>operation</th></tr>",
    );
    for (seq, text) in entries.iter().rev().take(ENTITY_ENTRIES_SHOWN) {
        let _ = write!(
            out,
            "<tr><td class=num>{seq}</td><td style=\"white-space:normal\">{}</td></tr>",
            esc(&text.chars().take(ENTRY_TEXT_CHARS).collect::<String>())
        );
    }
    out.push_str("</table></section>");
    out
}
