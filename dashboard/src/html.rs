//! The page shell, the navigation, escaping and the formats every page uses, and the
//! static files (included at build time).

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use engine::TradeKind;

use crate::session::Viewer;

pub(crate) use client::money::{grouped, money, yuan};

const CSS: &str = include_str!("../static/carbonx.css");
const SCRIPT: &str = include_str!("../static/carbonx.js");

/// The pages' one script (charts, the live market, the operations page's reload), served
/// from `/static/` so the Content-Security-Policy admits no inline script.
pub(crate) fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT).into_response()
}

pub(crate) fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], CSS).into_response()
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A cell with the raw value for scripts and tests.
pub(crate) fn figure(key: &str, value: i128, shown: &str) -> String {
    format!(
        "<td class=num data-key=\"{}\" data-value=\"{value}\">{}</td>",
        esc(key),
        esc(shown)
    )
}

pub(crate) fn page_shell(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{} - carbonx</title><link rel=stylesheet href=/static/carbonx.css><script src=/static/carbonx.js defer></script></head>\
         <body><header><b>carbonx</b>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    )
}

pub(crate) fn nav(active: &str, v: &Viewer) -> String {
    let mut out = String::new();
    for (href, label) in [
        ("/market", "Market"),
        ("/compliance", "Compliance"),
        ("/registry", "Registry"),
        ("/operations", "Operations"),
    ] {
        let _ = write!(
            out,
            "<a href=\"{href}\"{}>{label}</a>",
            if href == active { " class=on" } else { "" }
        );
    }
    let _ = write!(
        out,
        "<form class=who method=post action=/logout>{} ({}) <button>log out</button></form>",
        esc(&v.principal.name),
        v.principal.role.name()
    );
    out
}

pub(crate) fn kind_name(k: TradeKind) -> &'static str {
    match k {
        TradeKind::Continuous => "continuous",
        TradeKind::OpeningAuction => "opening auction",
        TradeKind::Block => "block",
        TradeKind::Bidding => "bidding auction",
    }
}
