//! One covered entity's page: its compliance for the year, how its allocation was
//! computed, its holdings by position and the journal entries that name it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proto::v1 as pb;
use registry::model::{AccountId, FreezeReason, Holding, UnitId};
use server::auth::Rpc;
use server::services::compliance::entity_compliance;

use crate::compliance::latest_year;
use crate::html::{Shell, grouped, money, render};
use crate::session::{refused, viewer_scoped};
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
    /// The journal entries naming the entity, oldest first.
    entries: Vec<Entry>,
    emissions: Option<crate::emissions::EmissionsView>,
}

/// One journal entry as the page shows it: who did what, when.
struct Entry {
    seq: u64,
    /// UTC, `2025-12-01 09:30:00`.
    when: String,
    /// The actor's principal: its name when the tokens file still has it, else its id.
    who: String,
    /// The operation in words (`registry::describe`), a settlement's legs of this entity.
    what: String,
}

async fn entity_now(ctx: &Shared, id: u64, year: Option<u16>) -> Option<EntityNow> {
    let catalog = ctx.core.catalog.clone();
    let tokens = ctx.tokens.clone();
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
            let unit = |u: UnitId| catalog.unit_name(u);
            let entries = reg
                .journal(from, DASHBOARD_JOURNAL_SCAN)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| registry::describe::accounts(&e.tx.op).contains(&AccountId(id)))
                .map(|e| Entry {
                    seq: e.seq,
                    when: crate::html::utc_time(e.tx.timestamp_ns),
                    who: tokens
                        .name_of(e.tx.actor)
                        .unwrap_or_else(|| format!("principal {}", e.tx.actor)),
                    what: registry::describe::describe(&e.tx.op, &unit, Some(AccountId(id))),
                })
                .collect();
            Some(EntityNow {
                year,
                compliance,
                holdings,
                entries,
                emissions: crate::emissions::view(ledger, year, AccountId(id)),
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
    let year = query.get("year").and_then(|y| y.parse().ok());
    let scoped = viewer_scoped(&ctx, &headers, &query, Rpc::GetCompliance, &[id], 0).await;
    let v = match scoped {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(e) = entity_now(&ctx, id, year).await else {
        return refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no covered entity with that account",
        );
    };
    render(&EntityPage::of(id, &v, e))
}

#[derive(Template)]
#[template(path = "entity.html")]
struct EntityPage {
    shell: Shell,
    year: u16,
    c: pb::EntityCompliance,
    sector: &'static str,
    obligation: String,
    surrendered_cea: String,
    surrendered_ccer: String,
    shortfall: String,
    pre_allocated: String,
    allocated: String,
    delivered: String,
    held: String,
    deducted: String,
    clawed_back: String,
    penalty: String,
    deduction_owed: Option<String>,
    explanation: String,
    holdings: Vec<HoldingRow>,
    /// Newest first, each operation cut to `ENTRY_TEXT_CHARS`.
    entries: Vec<Entry>,
    emissions: Option<crate::emissions::EmissionsView>,
}

struct HoldingRow {
    unit: String,
    registry_t: u64,
    registry: String,
    trading: String,
    frozen: String,
    reasons: String,
}

impl EntityPage {
    fn of(id: u64, v: &crate::session::Viewer, e: EntityNow) -> EntityPage {
        let c = e.compliance;
        // The allocation's worked steps, one per line.
        let steps = c.explanation.replace(". ", ".\n").replace("; ", ";\n");
        EntityPage {
            shell: Shell::page(format!("Entity {id}"), "/compliance", v),
            year: e.year,
            sector: client::names::sector(c.sector),
            obligation: grouped(c.obligation_t),
            surrendered_cea: grouped(c.surrendered_cea_t),
            surrendered_ccer: grouped(c.surrendered_ccer_t),
            shortfall: grouped(c.shortfall_t),
            pre_allocated: grouped(c.pre_allocated_t),
            allocated: grouped(c.allocated_t),
            delivered: grouped(c.delivered_t),
            held: grouped(c.held_t),
            deducted: grouped(c.deducted_t),
            clawed_back: grouped(c.clawed_back_t),
            penalty: money(c.penalty_fen),
            deduction_owed: (c.deduction_owed_t > 0).then(|| grouped(c.deduction_owed_t)),
            explanation: if steps.is_empty() {
                "not allocated yet".to_string()
            } else {
                steps
            },
            holdings: e.holdings.iter().map(|(u, h)| holding_row(u, h)).collect(),
            emissions: e.emissions,
            entries: e
                .entries
                .into_iter()
                .rev()
                .take(ENTITY_ENTRIES_SHOWN)
                .map(|e| Entry {
                    what: e.what.chars().take(ENTRY_TEXT_CHARS).collect(),
                    ..e
                })
                .collect(),
            c,
        }
    }
}

fn holding_row(unit: &str, h: &Holding) -> HoldingRow {
    let reasons: Vec<String> = h
        .frozen
        .iter()
        .map(|(r, q)| match r {
            FreezeReason::Pledge(p) => format!("pledge {p}: {}", grouped(*q)),
            FreezeReason::Judicial(o) => format!("court order {o}: {}", grouped(*q)),
            FreezeReason::Pending(p) => format!("transfer {p}: {}", grouped(*q)),
            FreezeReason::CarryOver(a) => format!("carry-over application {a}: {}", grouped(*q)),
        })
        .collect();
    HoldingRow {
        unit: unit.to_string(),
        registry_t: h.registry_available_t,
        registry: grouped(h.registry_available_t),
        trading: grouped(h.trading_t),
        frozen: grouped(h.frozen_t()),
        reasons: reasons.join(", "),
    }
}
