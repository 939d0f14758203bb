//! The compliance page: totals by sector and province, and the entity table, filtered,
//! sorted and paged on the server.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proto::v1 as pb;
use server::auth::Rpc;
use server::services::compliance::{list_compliance, totals};

use crate::html::{Figure, Shell, grouped, render, yuan};
use crate::session::{refused, viewer};
use crate::{DASHBOARD_PAGE_ROWS, Shared};

/// The year a page shows when none is asked for: the latest one administered.
pub(crate) fn latest_year(ledger: &registry::ledger::Ledger) -> u16 {
    ledger
        .cycle
        .years
        .keys()
        .next_back()
        .copied()
        .unwrap_or(2024)
}

/// A table of totals by sector or by province.
struct TotalsSection {
    title: &'static str,
    key: &'static str,
    rows: Vec<TotalsRow>,
}

struct TotalsRow {
    key: String,
    entities: u64,
    /// obligation, allocated, surrendered, shortfall (t) and penalties (yuan).
    figures: Vec<Figure>,
    short: u64,
}

fn totals_section(title: &'static str, key: &'static str, rows: &[pb::Totals]) -> TotalsSection {
    let rows = rows
        .iter()
        .map(|t| {
            let slug = t.key.to_lowercase().replace(' ', "-");
            let tonnes = |name: &str, v: u64| Figure {
                key: format!("{name}-{slug}"),
                value: i128::from(v),
                shown: grouped(v),
            };
            TotalsRow {
                key: t.key.clone(),
                entities: t.entities,
                figures: vec![
                    tonnes("obligation", t.obligation_t),
                    tonnes("allocated", t.allocated_t),
                    tonnes("surrendered", t.surrendered_t),
                    tonnes("shortfall", t.shortfall_t),
                    Figure {
                        key: format!("penalty-{slug}"),
                        value: i128::from(t.penalty_fen),
                        shown: yuan(t.penalty_fen),
                    },
                ],
                short: t.short,
            }
        })
        .collect();
    TotalsSection { title, key, rows }
}

/// What the page shows, read on the registry's thread in one go.
struct Listing {
    year: u16,
    years: Vec<u16>,
    by_sector: Vec<pb::Totals>,
    by_province: Vec<pb::Totals>,
    listed: pb::ListComplianceReply,
    offset: u32,
}

/// The list request the query string asks for.
fn request_of(q: &HashMap<String, String>, year: u16) -> pb::ListComplianceRequest {
    let sector = q
        .get("sector")
        .and_then(|s| client::names::sector_of(s))
        .map_or(0, |s| s as i32);
    let status = match q.get("status").map(String::as_str) {
        Some("COMPLIANT") => pb::ComplianceStatus::Compliant as i32,
        Some("SHORT") => pb::ComplianceStatus::Short as i32,
        Some("EMISSIONS_NOT_ENTERED") => pb::ComplianceStatus::EmissionsNotEntered as i32,
        _ => 0,
    };
    let order = match q.get("order").map(String::as_str) {
        Some("shortfall") => pb::ComplianceOrder::Shortfall as i32,
        Some("obligation") => pb::ComplianceOrder::Obligation as i32,
        _ => pb::ComplianceOrder::Account as i32,
    };
    pb::ListComplianceRequest {
        year: u32::from(year),
        sector,
        status,
        province: q.get("province").cloned().unwrap_or_default(),
        order,
        offset: q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
        page_size: DASHBOARD_PAGE_ROWS,
    }
}

async fn listing(ctx: &Shared, q: HashMap<String, String>) -> Option<Listing> {
    ctx.core
        .registry
        .read(move |reg| {
            let ledger = reg.ledger();
            let year = q
                .get("year")
                .and_then(|y| y.parse().ok())
                .unwrap_or_else(|| latest_year(ledger));
            let request = request_of(&q, year);
            Listing {
                year,
                years: ledger.cycle.years.keys().copied().collect(),
                by_sector: totals(ledger, year, false),
                by_province: totals(ledger, year, true),
                listed: list_compliance(ledger, &request, year),
                offset: request.offset,
            }
        })
        .await
        .ok()
}

pub(crate) async fn page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::ListCompliance, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(l) = listing(&ctx, query.clone()).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    let year = l.year;
    let link_to = |by: &str| {
        link(
            &query,
            year,
            &[("order", by.into()), ("offset", "0".into())],
        )
    };
    let (previous, next) = pager(&query, &l);
    let shown_to = u64::from(l.offset) + l.listed.rows.len() as u64;
    let page = CompliancePage {
        shell: Shell::page(format!("Compliance {year}"), "/compliance", &v),
        year,
        years: l
            .years
            .iter()
            .map(|y| YearLink {
                year: *y,
                current: *y == year,
            })
            .collect(),
        totals: vec![
            totals_section("By sector", "sector", &l.by_sector),
            totals_section("By province", "province", &l.by_province),
        ],
        sectors: options(&query, "sector", &["power", "steel", "cement", "aluminium"]),
        statuses: options(
            &query,
            "status",
            &["COMPLIANT", "SHORT", "EMISSIONS_NOT_ENTERED"],
        ),
        province: query.get("province").cloned().unwrap_or_default(),
        order_account: link_to("account"),
        order_obligation: link_to("obligation"),
        order_shortfall: link_to("shortfall"),
        entities: l.listed.rows.iter().map(entity_row).collect(),
        total: l.listed.total,
        total_shown: grouped(l.listed.total),
        first: if l.listed.rows.is_empty() {
            0
        } else {
            u64::from(l.offset) + 1
        },
        shown_to,
        previous,
        next,
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "compliance.html")]
struct CompliancePage {
    shell: Shell,
    year: u16,
    years: Vec<YearLink>,
    totals: Vec<TotalsSection>,
    sectors: Vec<Choice>,
    statuses: Vec<Choice>,
    province: String,
    order_account: String,
    order_obligation: String,
    order_shortfall: String,
    entities: Vec<EntityRow>,
    total: u64,
    total_shown: String,
    first: u64,
    shown_to: u64,
    previous: Option<String>,
    next: Option<String>,
}

struct YearLink {
    year: u16,
    current: bool,
}

/// A filter's option, selected when the query asks for it.
struct Choice {
    value: &'static str,
    selected: bool,
}

fn options(query: &HashMap<String, String>, key: &str, values: &[&'static str]) -> Vec<Choice> {
    values
        .iter()
        .map(|&value| Choice {
            value,
            selected: query.get(key).map(String::as_str) == Some(value),
        })
        .collect()
}

struct EntityRow {
    account: u64,
    name: String,
    sector: &'static str,
    province: String,
    status: String,
    obligation: String,
    allocated: String,
    surrendered: String,
    shortfall_t: u64,
    shortfall: String,
    penalty: String,
}

fn entity_row(r: &pb::EntityCompliance) -> EntityRow {
    EntityRow {
        account: r.account_id,
        name: r.name.clone(),
        sector: client::names::sector(r.sector),
        province: r.province.clone(),
        status: r.status_code.clone(),
        obligation: grouped(r.obligation_t),
        allocated: grouped(r.allocated_t.max(r.pre_allocated_t)),
        surrendered: grouped(r.surrendered_cea_t + r.surrendered_ccer_t),
        shortfall_t: r.shortfall_t,
        shortfall: grouped(r.shortfall_t),
        penalty: yuan(r.penalty_fen),
    }
}

/// This page with the query's filters and `changes` applied.
fn link(query: &HashMap<String, String>, year: u16, changes: &[(&str, String)]) -> String {
    let mut params: BTreeMap<&str, String> = BTreeMap::new();
    params.insert("year", year.to_string());
    for k in ["sector", "status", "province", "order", "offset"] {
        if let Some(v) = query.get(k).filter(|v| !v.is_empty()) {
            params.insert(k, v.clone());
        }
    }
    for (k, v) in changes {
        params.insert(k, v.clone());
    }
    let qs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('&', "%26")))
        .collect();
    format!("/compliance?{}", qs.join("&"))
}

/// The links to the previous and next page of entities, where there is one.
fn pager(query: &HashMap<String, String>, l: &Listing) -> (Option<String>, Option<String>) {
    let offset = u64::from(l.offset);
    let shown_to = offset + l.listed.rows.len() as u64;
    let previous = (offset > 0).then(|| {
        let back = offset.saturating_sub(u64::from(DASHBOARD_PAGE_ROWS));
        link(query, l.year, &[("offset", back.to_string())])
    });
    let next = (shown_to < l.listed.total)
        .then(|| link(query, l.year, &[("offset", shown_to.to_string())]));
    (previous, next)
}
