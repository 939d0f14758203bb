//! The page shell every page extends (`templates/shell.html`: title, navigation, who is
//! logged in), rendering, the formats every page uses, and the static files. Templates,
//! CSS and JS are files included at build time; askama escapes every value it prints.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use engine::TradeKind;

use crate::session::Viewer;

pub(crate) use client::money::{grouped, money, yuan};

const CSS: &str = include_str!("../static/carbonx.css");
const SCRIPT: &str = include_str!("../static/carbonx.js");

/// The pages the navigation links, in its order.
const NAV: [(&str, &str); 5] = [
    ("/market", "Market"),
    ("/compliance", "Compliance"),
    ("/verification", "Verification"),
    ("/registry", "Registry"),
    ("/operations", "Operations"),
];

/// The pages' one script (charts, the live market, the operations page's reload), served
/// from `/static/` so the Content-Security-Policy admits no inline script.
pub(crate) fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT).into_response()
}

pub(crate) fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], CSS).into_response()
}

pub(crate) struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub on: bool,
}

pub(crate) struct Who {
    pub name: String,
    pub role: &'static str,
}

/// What `shell.html` shows around a page's body.
pub(crate) struct Shell {
    pub title: String,
    pub nav: Vec<NavLink>,
    pub who: Option<Who>,
}

impl Shell {
    /// A page of the logged-in `viewer`, with `active` marked in the navigation.
    pub(crate) fn page(title: impl Into<String>, active: &str, viewer: &Viewer) -> Shell {
        Shell {
            title: title.into(),
            nav: NAV
                .iter()
                .map(|&(href, label)| NavLink {
                    href,
                    label,
                    on: href == active,
                })
                .collect(),
            who: Some(Who {
                name: viewer.principal.name.clone(),
                role: viewer.principal.role.name(),
            }),
        }
    }

    /// A page with no navigation (the login form, a refusal).
    pub(crate) fn bare(title: &str) -> Shell {
        Shell {
            title: title.to_string(),
            nav: Vec::new(),
            who: None,
        }
    }
}

/// A rendered page with `status`; a template that fails to render is a 500 (logged).
pub(crate) fn render_with(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("dashboard: a page did not render: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

pub(crate) fn render(page: &impl Template) -> Response {
    render_with(StatusCode::OK, page)
}

/// A figure as a table cell carries its raw value for scripts and tests.
pub(crate) struct Figure {
    pub key: String,
    pub value: i128,
    pub shown: String,
}

pub(crate) fn kind_name(k: TradeKind) -> &'static str {
    match k {
        TradeKind::Continuous => "continuous",
        TradeKind::OpeningAuction => "opening auction",
        TradeKind::Block => "block",
        TradeKind::Bidding => "bidding auction",
    }
}

/// UTC nanoseconds as `2025-12-01 09:30:00` (UTC).
pub(crate) fn utc_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (y, m, d) = server::calendar::civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3_600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn journal_times_read_as_utc_date_and_time() {
        // 1,797,300,000 s after the epoch: 20,802 days (2026-12-15) and 7,200 s (02:00).
        assert_eq!(
            super::utc_time(1_797_300_000 * 1_000_000_000),
            "2026-12-15 02:00:00"
        );
    }
}
