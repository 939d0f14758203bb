//! The verification pages: a year's queue (a province's entities, a body's assignments, or
//! all for the ministry and auditors), entities counted by state and listed late first;
//! and one entity's verification file (findings, corrections, conclusions, objection,
//! every step). The rows are `registry::verification::queue`'s and the file the API's
//! `GetVerificationFile` answer, from the same functions.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proto::v1 as pb;
use registry::model::AccountId;
use registry::verification::queue::{State as QueueState, queue};
use server::auth::Rpc;
use server::services::verification::queue_filter;
use server::services::verification_convert::{FileView, file_out, queue_row_out};

use crate::compliance::latest_year;
use crate::html::{Shell, grouped, render};
use crate::session::{refused, viewer_scoped};
use crate::{DASHBOARD_PAGE_ROWS, Shared};

struct StateCount {
    state: &'static str,
    entities: usize,
    late: usize,
}

struct Row {
    r: pb::QueueRow,
    reported: String,
    verified: String,
}

#[derive(Template)]
#[template(path = "verification.html")]
struct QueuePage {
    shell: Shell,
    year: u16,
    whose: String,
    states: Vec<StateCount>,
    rows: Vec<Row>,
    total: usize,
    first: usize,
    shown_to: usize,
    previous: Option<String>,
    next: Option<String>,
}

fn year_of(query: &HashMap<String, String>) -> Option<u16> {
    query.get("year").and_then(|y| y.parse().ok())
}

fn number(query: &HashMap<String, String>, key: &str) -> u32 {
    query.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(crate) async fn queue_page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer_scoped(&ctx, &headers, &query, Rpc::ListVerificationQueue, &[], 0).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let province = query.get("province").cloned().unwrap_or_default();
    let filter = match queue_filter(&v.principal, &province, number(&query, "body")) {
        Ok(f) => f,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.reason, &e.message),
    };
    let whose = match (&filter.province, filter.body) {
        (Some(p), Some(b)) => format!("{p}, body {b}"),
        (Some(p), None) => p.clone(),
        (None, Some(b)) => format!("body {b}"),
        (None, None) => "all provinces".into(),
    };
    let (year, today) = (year_of(&query), ctx.today());
    let read = ctx
        .core
        .registry
        .read(move |reg| {
            let year = year.unwrap_or_else(|| latest_year(reg.ledger()));
            (year, queue(reg.ledger(), year, &filter, today))
        })
        .await;
    let Ok((year, rows)) = read else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    let offset = number(&query, "offset") as usize;
    let page_rows = DASHBOARD_PAGE_ROWS as usize;
    let link = |at: usize| {
        format!(
            "/verification?year={year}&province={province}&body={}&offset={at}",
            number(&query, "body")
        )
    };
    let page = QueuePage {
        shell: Shell::page(format!("Verification {year}"), "/verification", &v),
        year,
        whose,
        states: counts(&rows),
        total: rows.len(),
        first: if rows.len() > offset { offset + 1 } else { 0 },
        shown_to: rows.len().min(offset + page_rows),
        previous: (offset > 0).then(|| link(offset.saturating_sub(page_rows))),
        next: (offset + page_rows < rows.len()).then(|| link(offset + page_rows)),
        rows: rows
            .iter()
            .skip(offset)
            .take(page_rows)
            .map(|r| Row {
                r: queue_row_out(r),
                reported: r.reported_t.map(grouped).unwrap_or_default(),
                verified: r.verified_t.map(grouped).unwrap_or_default(),
            })
            .collect(),
    };
    render(&page)
}

/// Entities by state along the path, with how many of them are late.
fn counts(rows: &[registry::verification::queue::Row]) -> Vec<StateCount> {
    let mut states: Vec<QueueState> = rows.iter().map(|r| r.state).collect();
    states.sort();
    states.dedup();
    states
        .into_iter()
        .map(|s| StateCount {
            state: s.name(),
            entities: rows.iter().filter(|r| r.state == s).count(),
            late: rows.iter().filter(|r| r.state == s && r.late).count(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "verification_file.html")]
struct FilePage {
    shell: Shell,
    f: pb::VerificationFile,
}

pub(crate) async fn file_page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let year = year_of(&query).unwrap_or(0);
    let scoped = viewer_scoped(
        &ctx,
        &headers,
        &query,
        Rpc::GetVerificationFile,
        &[id],
        year,
    )
    .await;
    let v = match scoped {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let tokens = ctx.tokens.clone();
    let read = ctx
        .core
        .registry
        .read(move |reg| {
            let l = reg.ledger();
            let file = l.verification.file_of(year, AccountId(id))?;
            let view = FileView {
                year,
                account: id,
                name: l
                    .accounts
                    .get(&AccountId(id))
                    .map(|a| a.name.clone())
                    .unwrap_or_default(),
                body: l.verification.bodies.get(&file.body),
                file,
            };
            Some(file_out(&view, &tokens))
        })
        .await;
    let Ok(Some(f)) = read else {
        return refused(
            StatusCode::NOT_FOUND,
            "VERIFICATION_FILE_MISSING",
            "no verification file for that entity and year",
        );
    };
    let shell = Shell::page(format!("Verification of {id}, {year}"), "/verification", &v);
    render(&FilePage { shell, f })
}
