//! The registry page: accounts and their holdings (searched by id or name), pledges
//! outstanding by pledgee, and transfers awaiting a second approver.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use registry::Registry;
use registry::model::{PledgeState, ProposalState, UnitId};
use server::auth::Rpc;

use crate::Shared;
use crate::html::{Shell, grouped, money, render};
use crate::session::{refused, viewer};

/// Accounts one page lists (search to narrow).
const REGISTRY_ACCOUNTS_SHOWN: usize = 50;

struct HoldingRow {
    unit: String,
    registry_t: u64,
    registry: String,
    trading: String,
    frozen: String,
}

struct AccountRow {
    id: u64,
    name: String,
    kind: String,
    holdings: Vec<HoldingRow>,
}

/// A pledge (pledgor -> pledgee) or a pending transfer (from -> to).
struct Movement {
    id: u64,
    from: u64,
    to: u64,
    unit: String,
    quantity: String,
}

/// An outstanding pledge: its movement and the loan it secures.
struct PledgeRow {
    pledge: Movement,
    /// What the pledge secures, yuan (`-` for pledges registered before amounts were).
    secured: String,
}

struct PledgeeRow {
    pledgee: u64,
    pledges: u64,
    quantity_t: u64,
    quantity: String,
}

/// What the page shows, read on the registry's thread in one go.
#[derive(Template)]
#[template(path = "registry.html")]
struct RegistryPage {
    shell: Shell,
    search: String,
    accounts: Vec<AccountRow>,
    accounts_total: String,
    shown_max: usize,
    by_pledgee: Vec<PledgeeRow>,
    pledges: Vec<PledgeRow>,
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
                .map(|((_, u), h)| HoldingRow {
                    unit: catalog.unit_name(*u),
                    registry_t: h.registry_available_t,
                    registry: grouped(h.registry_available_t),
                    trading: grouped(h.trading_t),
                    frozen: grouped(h.frozen_t()),
                })
                .collect(),
        })
        .collect()
}

async fn registry_now(ctx: &Shared, shell: Shell, search: String) -> Option<RegistryPage> {
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
                let (id, from, to, unit) =
                    (p.id, p.pledgor.0, p.pledgee.0, catalog.unit_name(p.unit));
                let quantity = grouped(p.quantity_t);
                let secured = match p.secured_fen {
                    0 => "-".to_string(),
                    fen => money(i64::try_from(fen).unwrap_or(i64::MAX)),
                };
                let pledge = Movement {
                    id,
                    from,
                    to,
                    unit,
                    quantity,
                };
                pledges.push(PledgeRow { pledge, secured });
            }
            let proposals = l
                .proposals
                .values()
                .filter(|p| p.state == ProposalState::Pending)
                .map(|p| Movement {
                    id: p.id,
                    from: p.from.0,
                    to: p.to.0,
                    unit: catalog.unit_name(p.unit),
                    quantity: grouped(p.quantity_t),
                })
                .collect();
            RegistryPage {
                shell,
                accounts: accounts(reg, &catalog, &needle),
                search,
                accounts_total: grouped(l.accounts.len() as u64),
                shown_max: REGISTRY_ACCOUNTS_SHOWN,
                by_pledgee: by_pledgee
                    .into_iter()
                    .map(|(pledgee, (pledges, quantity_t))| PledgeeRow {
                        pledgee,
                        pledges,
                        quantity_t,
                        quantity: grouped(quantity_t),
                    })
                    .collect(),
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
    let shell = Shell::page("Registry", "/registry", &v);
    let Some(page) = registry_now(&ctx, shell, search).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    render(&page)
}
