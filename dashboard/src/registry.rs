//! The registry page: accounts and their holdings (searched by id or name), pledges
//! outstanding by pledgee, and transfers awaiting a second approver.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use registry::Registry;
use registry::model::{PledgeState, ProposalState, UnitId};
use server::auth::Rpc;

use crate::Shared;
use crate::html::{esc, figure, grouped, nav, page_shell};
use crate::session::{refused, respond, viewer};

/// Accounts one page lists (search to narrow).
const REGISTRY_ACCOUNTS_SHOWN: usize = 50;

/// (unit, registry t, trading t, frozen t).
type HoldingRow = (String, u64, u64, u64);

struct AccountRow {
    id: u64,
    name: String,
    kind: String,
    holdings: Vec<HoldingRow>,
}

/// (id, from, to, unit, t): a pledge (pledgor → pledgee) or a pending transfer.
type Movement = (u64, u64, u64, String, u64);

/// What the page shows, read on the registry's thread in one go.
struct RegistryNow {
    accounts: Vec<AccountRow>,
    accounts_total: usize,
    /// Pledgee → (pledges, t).
    by_pledgee: BTreeMap<u64, (u64, u64)>,
    pledges: Vec<Movement>,
    proposals: Vec<Movement>,
}

fn accounts(reg: &Registry, catalog: &server::catalog::Catalog, needle: &str) -> Vec<AccountRow> {
    let l = reg.ledger();
    l.accounts
        .values()
        .filter(|a| {
            needle.is_empty()
                || a.id.0.to_string() == needle
                || a.name.to_lowercase().contains(needle)
        })
        .take(REGISTRY_ACCOUNTS_SHOWN)
        .map(|a| AccountRow {
            id: a.id.0,
            name: a.name.clone(),
            kind: format!("{:?}", a.kind),
            holdings: l
                .holdings
                .range((a.id, UnitId(0))..=(a.id, UnitId(u32::MAX)))
                .map(|((_, u), h)| {
                    let name = catalog.unit_name(*u);
                    (name, h.registry_available_t, h.trading_t, h.frozen_t())
                })
                .collect(),
        })
        .collect()
}

async fn registry_now(ctx: &Shared, search: &str) -> Option<RegistryNow> {
    let catalog = ctx.core.catalog.clone();
    let needle = search.to_lowercase();
    ctx.core
        .registry
        .read(move |reg| {
            let l = reg.ledger();
            let mut by_pledgee: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
            let mut pledges = Vec::new();
            for p in l
                .pledges
                .values()
                .filter(|p| p.state == PledgeState::Registered)
            {
                let e = by_pledgee.entry(p.pledgee.0).or_default();
                e.0 += 1;
                e.1 += p.quantity_t;
                let unit = catalog.unit_name(p.unit);
                pledges.push((p.id, p.pledgor.0, p.pledgee.0, unit, p.quantity_t));
            }
            let proposals = l
                .proposals
                .values()
                .filter(|p| p.state == ProposalState::Pending)
                .map(|p| {
                    (
                        p.id,
                        p.from.0,
                        p.to.0,
                        catalog.unit_name(p.unit),
                        p.quantity_t,
                    )
                })
                .collect();
            RegistryNow {
                accounts: accounts(reg, &catalog, &needle),
                accounts_total: l.accounts.len(),
                by_pledgee,
                pledges,
                proposals,
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
    let v = match viewer(&ctx, &headers, &query, Rpc::ListProposals, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let search = query.get("q").cloned().unwrap_or_default();
    let Some(r) = registry_now(&ctx, &search).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    let mut body = accounts_table(&search, &r);
    body.push_str(&pledges_section(&r));
    body.push_str(&proposals_table(&r.proposals));
    respond(page_shell("Registry", &nav("/registry", &v), &body))
}

fn accounts_table(search: &str, r: &RegistryNow) -> String {
    let mut out = format!(
        "<section class=wide><h1>Registry</h1><form class=filters method=get action=/registry><input name=q placeholder=\"account id or name\" value=\"{}\"><button>search</button></form>\
         <table><tr><th>account</th><th>name</th><th>type</th><th>unit</th><th class=num>registry t</th><th class=num>trading t</th><th class=num>frozen t</th></tr>",
        esc(search)
    );
    for a in &r.accounts {
        let (id, name, kind) = (a.id, esc(&a.name), esc(&a.kind));
        if a.holdings.is_empty() {
            let _ = write!(
                out,
                "<tr><td>{id}</td><td>{name}</td><td>{kind}</td><td colspan=4 class=muted>no holdings</td></tr>"
            );
        }
        for (unit, available, trading, frozen) in &a.holdings {
            let _ = write!(
                out,
                "<tr><td>{id}</td><td>{name}</td><td>{kind}</td><td>{}</td>{}<td class=num>{}</td><td class=num>{}</td></tr>",
                esc(unit),
                figure(
                    &format!("registry-{id}-{unit}"),
                    i128::from(*available),
                    &grouped(*available)
                ),
                grouped(*trading),
                grouped(*frozen)
            );
        }
    }
    let _ = write!(
        out,
        "</table><p class=muted>{} of {} accounts shown (at most {REGISTRY_ACCOUNTS_SHOWN}: search to narrow)</p></section>",
        r.accounts.len(),
        grouped(r.accounts_total as u64)
    );
    out
}

fn pledges_section(r: &RegistryNow) -> String {
    let mut out = String::from(
        "<section><h2>Pledges outstanding by pledgee</h2><table><tr><th>pledgee</th><th class=num>pledges</th><th class=num>t</th></tr>",
    );
    for (pledgee, (n, t)) in &r.by_pledgee {
        let _ = write!(
            out,
            "<tr><td>{pledgee}</td><td class=num>{n}</td>{}</tr>",
            figure(&format!("pledged-{pledgee}"), i128::from(*t), &grouped(*t))
        );
    }
    if r.by_pledgee.is_empty() {
        out.push_str("<tr><td colspan=3 class=muted>none</td></tr>");
    }
    out.push_str("</table><table><tr><th>pledge</th><th>pledgor</th><th>pledgee</th><th>unit</th><th class=num>t</th></tr>");
    for (id, pledgor, pledgee, unit, q) in &r.pledges {
        let _ = write!(
            out,
            "<tr><td>{id}</td><td>{pledgor}</td><td>{pledgee}</td><td>{}</td><td class=num>{}</td></tr>",
            esc(unit),
            grouped(*q)
        );
    }
    out.push_str("</table></section>");
    out
}

fn proposals_table(proposals: &[Movement]) -> String {
    let mut out = String::from(
        "<section><h2>Transfers awaiting a second approver</h2><table><tr><th>proposal</th><th>from</th><th>to</th><th>unit</th><th class=num>t</th></tr>",
    );
    for (id, from, to, unit, q) in proposals {
        let _ = write!(
            out,
            "<tr><td>{id}</td><td>{from}</td><td>{to}</td><td>{}</td><td class=num>{}</td></tr>",
            esc(unit),
            grouped(*q)
        );
    }
    if proposals.is_empty() {
        out.push_str("<tr><td colspan=5 class=muted>none</td></tr>");
    }
    out.push_str("</table></section>");
    out
}
