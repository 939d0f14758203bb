//! The compliance page: totals by sector and province, and the entity table, filtered,
//! sorted and paged on the server.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proto::v1 as pb;
use server::auth::Rpc;
use server::services::compliance::{list_compliance, totals};

use crate::html::{esc, figure, grouped, nav, page_shell, yuan};
use crate::session::{refused, respond, viewer};
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

fn totals_table(title: &str, key: &str, rows: &[pb::Totals]) -> String {
    let mut out = format!(
        "<section class=wide><h2>{title}</h2><table><tr><th>{key}</th><th class=num>entities</th><th class=num>obligation t</th><th class=num>allocated t</th><th class=num>surrendered t</th><th class=num>shortfall t</th><th class=num>penalties yuan</th><th class=num>short</th></tr>"
    );
    for t in rows {
        let slug = t.key.to_lowercase().replace(' ', "-");
        let cell =
            |name: &str, v: u64| figure(&format!("{name}-{slug}"), i128::from(v), &grouped(v));
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=num>{}</td>{}{}{}{}{}<td class=num>{}</td></tr>",
            esc(&t.key),
            t.entities,
            cell("obligation", t.obligation_t),
            cell("allocated", t.allocated_t),
            cell("surrendered", t.surrendered_t),
            cell("shortfall", t.shortfall_t),
            figure(
                &format!("penalty-{slug}"),
                i128::from(t.penalty_fen),
                &yuan(t.penalty_fen)
            ),
            t.short
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=8 class=muted>no covered entities</td></tr>");
    }
    out.push_str("</table></section>");
    out
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
    let year_links: String = l
        .years
        .iter()
        .map(|y| {
            let on = if *y == year { " class=tag" } else { "" };
            format!(" <a href=\"/compliance?year={y}\"{on}>{y}</a>")
        })
        .collect();
    let mut body = format!(
        "<section class=wide><h1>Compliance {year}</h1><div class=muted>years:{year_links}</div></section>"
    );
    body.push_str(&totals_table("By sector", "sector", &l.by_sector));
    body.push_str(&totals_table("By province", "province", &l.by_province));
    body.push_str(&filters(&query, year));
    body.push_str(&entity_table(&query, &l));
    body.push_str(&pager(&query, &l));
    respond(page_shell(
        &format!("Compliance {year}"),
        &nav("/compliance", &v),
        &body,
    ))
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
    format!("/compliance?{}", qs.join("&amp;"))
}

fn filters(query: &HashMap<String, String>, year: u16) -> String {
    let selected = |k: &str, v: &str| {
        if query.get(k).map(String::as_str) == Some(v) {
            " selected"
        } else {
            ""
        }
    };
    format!(
        "<section class=wide><h2>Entities</h2><form class=filters method=get action=/compliance>\
         <input type=hidden name=year value={year}>\
         <select name=sector><option value=\"\">all sectors</option><option{}>power</option><option{}>steel</option><option{}>cement</option><option{}>aluminium</option></select>\
         <select name=status><option value=\"\">all statuses</option><option{}>COMPLIANT</option><option{}>SHORT</option><option{}>EMISSIONS_NOT_ENTERED</option></select>\
         <input name=province placeholder=province value=\"{}\"><button>filter</button></form>",
        selected("sector", "power"),
        selected("sector", "steel"),
        selected("sector", "cement"),
        selected("sector", "aluminium"),
        selected("status", "COMPLIANT"),
        selected("status", "SHORT"),
        selected("status", "EMISSIONS_NOT_ENTERED"),
        esc(query.get("province").map_or("", String::as_str))
    )
}

fn entity_table(query: &HashMap<String, String>, l: &Listing) -> String {
    let year = l.year;
    let order = |by: &str| link(query, year, &[("order", by.into()), ("offset", "0".into())]);
    let mut body = format!(
        "<table><tr><th><a href=\"{}\">account</a></th><th>name</th><th>sector</th><th>province</th><th>status</th><th class=num><a href=\"{}\">obligation t</a></th><th class=num>allocated t</th><th class=num>surrendered t</th><th class=num><a href=\"{}\">shortfall t</a></th><th class=num>penalty yuan</th></tr>",
        order("account"),
        order("obligation"),
        order("shortfall"),
    );
    for r in &l.listed.rows {
        let _ = write!(
            body,
            "<tr><td><a href=\"/entity/{id}?year={year}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"tag {st}\">{st}</span></td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>{}<td class=num>{}</td></tr>",
            esc(&r.name),
            client::names::sector(r.sector),
            esc(&r.province),
            grouped(r.obligation_t),
            grouped(r.allocated_t.max(r.pre_allocated_t)),
            grouped(r.surrendered_cea_t + r.surrendered_ccer_t),
            figure(
                &format!("entity-shortfall-{}", r.account_id),
                i128::from(r.shortfall_t),
                &grouped(r.shortfall_t)
            ),
            yuan(r.penalty_fen),
            id = r.account_id,
            st = esc(&r.status_code),
        );
    }
    if l.listed.rows.is_empty() {
        body.push_str("<tr><td colspan=10 class=muted>no entity matches</td></tr>");
    }
    body.push_str("</table>");
    body
}

fn pager(query: &HashMap<String, String>, l: &Listing) -> String {
    let offset = u64::from(l.offset);
    let shown_to = offset + l.listed.rows.len() as u64;
    let first = if l.listed.rows.is_empty() {
        0
    } else {
        offset + 1
    };
    let mut body = format!(
        "<div class=pager><span data-key=entities-total data-value=\"{}\">{first}-{shown_to} of {}</span>",
        l.listed.total,
        grouped(l.listed.total)
    );
    if offset > 0 {
        let back = offset.saturating_sub(u64::from(DASHBOARD_PAGE_ROWS));
        let href = link(query, l.year, &[("offset", back.to_string())]);
        let _ = write!(body, "<a href=\"{href}\">previous</a>");
    }
    if shown_to < l.listed.total {
        let href = link(query, l.year, &[("offset", shown_to.to_string())]);
        let _ = write!(body, "<a href=\"{href}\">next</a>");
    }
    body.push_str("</div></section>");
    body
}
