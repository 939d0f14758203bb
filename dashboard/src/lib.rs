//! # carbonx dashboard
//!
//! Read-only web pages for the ministry, the exchange operator, members and auditors,
//! served beside the gRPC server (`dashboard_listen`, default 127.0.0.1:9470, "off" to
//! disable), behind the same bearer tokens and authorization table as the API.
//!
//! Pages are rendered on the server from the same code paths as the gRPC answers: the
//! engine's query views and the hub for the market, `server::services::compliance::{totals,
//! list_compliance, entity_compliance}` for compliance, the registry ledger for holdings,
//! pledges and proposals, `Metrics` for operations. One module per page (its data, then
//! the rows its template prints): `market.rs`, `compliance.rs`, `entity.rs`, `registry.rs`,
//! `operations.rs`, `verification.rs` (a province's queue, a body's assignments, an entity's
//! file); `session.rs` the login and who is asking; `html.rs` the page shell,
//! rendering and formats. The HTML is in `templates/` (askama: compiled in, every value
//! escaped), the CSS and the one script in `static/` (included at build time): charts
//! are drawn as SVG in the browser from data embedded in the page, the market page updates
//! live over server-sent events, tables page on the server (10,000 entities never load at
//! once). Key figures carry `data-key`/`data-value` attributes with the raw integers (for
//! scripts and tests).
//!
//! Authentication: a login form (`/login`, the token posted, never in a URL that browsers
//! keep in history and servers in logs) sets an HttpOnly, SameSite=Strict cookie that
//! expires after [`SESSION_S`] (Secure when the server runs TLS); scripts may send
//! `Authorization: Bearer <token>` instead. A page without a valid token is refused with
//! 401 and a link to the login form, a role the table does not allow with 403. Every
//! response carries a Content-Security-Policy (scripts only from `/static/`), frame
//! denial and nosniff; pages with holdings are `Cache-Control: no-store`. A principal has
//! at most `limits.streams_per_principal` live market streams open (counted with its gRPC
//! streams).

mod compliance;
mod emissions;
mod entity;
mod html;
mod market;
mod operations;
mod registry;
mod session;
mod verification;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use server::services::Ctx;

pub use session::SESSION_S;

/// Entities per page of the compliance table (at most `COMPLIANCE_PAGE_MAX`).
pub const DASHBOARD_PAGE_ROWS: u32 = 50;
/// Market updates pushed to one page at most this often.
pub const DASHBOARD_PUSH_MS: u64 = 250;
/// Trades the market page reads from the hub (the newest).
pub const DASHBOARD_TRADES_MAX: usize = 20_000;
/// Journal entries scanned for one entity's page (the most recent). The scan runs on the
/// registry's writer thread, between transactions: kept small so a page view never holds
/// settlement up for long.
pub const DASHBOARD_JOURNAL_SCAN: usize = 5_000;

type Shared = Arc<Ctx>;

/// Binds `addr` and serves the dashboard on the running server's runtime (call it from
/// inside it, e.g. `serve`'s `on_ready`); returns the bound address.
pub fn start(addr: SocketAddr, ctx: Ctx) -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("dashboard listen {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = router(ctx);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("dashboard stopped: {e}");
        }
    });
    Ok(bound)
}

fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/market") }))
        .route(
            "/login",
            get(session::login_form).post(session::login).layer(
                axum::extract::DefaultBodyLimit::max(session::LOGIN_BYTES_MAX),
            ),
        )
        .route("/logout", post(session::logout))
        .route("/static/carbonx.js", get(|| async { html::script() }))
        .route("/static/carbonx.css", get(|| async { html::stylesheet() }))
        .route("/market", get(market::page))
        .route("/market/stream", get(market::stream))
        .route("/compliance", get(compliance::page))
        .route("/entity/{id}", get(entity::page))
        .route("/verification", get(verification::queue_page))
        .route("/verification/{id}", get(verification::file_page))
        .route("/registry", get(registry::page))
        .route("/operations", get(operations::page))
        .layer(axum::middleware::map_response(session::security_headers))
        .with_state(Arc::new(ctx))
}
