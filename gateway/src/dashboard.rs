//! The web dashboard: read-only pages for the ministry, the exchange operator, members and
//! auditors, served by `carbonx serve` on its own HTTP port (`dashboard_listen`, default
//! 127.0.0.1:9470, "off" to disable), behind the same bearer tokens and authorization table
//! as the gRPC API.
//!
//! Pages are rendered on the server from the same code paths as the gRPC answers: the
//! engine's query views and the hub for the market, `services::compliance::{totals,
//! list_compliance, entity_compliance}` for compliance, the registry ledger for holdings,
//! pledges and proposals, `Metrics` for operations. Plain HTML and CSS with a little
//! JavaScript shipped in the binary: charts are drawn as SVG in the browser from data
//! embedded in the page, the market page updates live over server-sent events, tables page
//! on the server (10,000 entities never load at once). Key figures carry
//! `data-key`/`data-value` attributes with the raw integers (for scripts and tests).
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

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use engine::{InstrumentId, TradeKind};
use proto::v1 as pb;
use registry::model::{AccountId, FreezeReason, PledgeState, ProposalState};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::{Principal, Rpc, authorize};
use crate::cli::yuan;
use crate::services::Ctx;
use crate::services::compliance::{entity_compliance, list_compliance, totals};

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
/// A login lasts this long (the cookie's Max-Age).
pub const SESSION_S: u64 = 8 * 3_600;
/// The login form's body is at most this long.
const LOGIN_BYTES_MAX: usize = 4_096;
const COOKIE: &str = "carbonx_token";
/// What pages may load: scripts and styles from the dashboard's own `/static/` only (the
/// bars' widths are inline style attributes), nothing framed, forms posted back here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

type Shared = Arc<Ctx>;
/// An account found by the registry search: id, name, type, and per unit (name, registry,
/// trading, frozen).
type AccountRow = (u64, String, String, Vec<(String, u64, u64, u64)>);

/// Binds and serves the dashboard in the background; returns the bound address.
pub async fn start(addr: SocketAddr, ctx: Ctx) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("dashboard listen {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/market") }))
        .route(
            "/login",
            get(login_form)
                .post(login)
                .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BYTES_MAX)),
        )
        .route("/logout", post(logout))
        .route("/static/carbonx.js", get(|| async { script() }))
        .route(
            "/static/carbonx.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route("/market", get(market))
        .route("/market/stream", get(market_stream))
        .route("/compliance", get(compliance))
        .route("/entity/{id}", get(entity))
        .route("/registry", get(registry_page))
        .route("/operations", get(operations))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Arc::new(ctx));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("dashboard stopped: {e}");
        }
    });
    Ok(bound)
}

/// Who is asking: the principal of the cookie (or of the bearer header).
struct Viewer {
    principal: Arc<Principal>,
}

/// What every response of the dashboard carries; pages (HTML, the market stream) are
/// never cached (they show holdings), the static files may be.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let is_asset = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/javascript") || t.starts_with("text/css"));
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn refused(status: StatusCode, reason: &str, message: &str) -> Response {
    let login = if status == StatusCode::UNAUTHORIZED {
        "<p><a href=\"/login\">Log in</a> with your token (from the server's tokens file).</p>"
    } else {
        ""
    };
    let body = page_shell(
        "Refused",
        "",
        &format!(
            "<section><h1>Refused</h1><p class=refused data-key=refused data-value=\"{}\">{}: {}</p>{login}</section>",
            esc(reason),
            esc(reason),
            esc(message)
        ),
    );
    (status, Html(body)).into_response()
}

/// Where a login may send the browser next: a path of this dashboard only.
fn next_path(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/market".into(),
    }
}

fn login_page(status: StatusCode, next: &str, problem: &str) -> Response {
    let problem = if problem.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=refused data-key=refused data-value=BAD_TOKEN>{}</p>",
            esc(problem)
        )
    };
    let body = page_shell(
        "Log in",
        "",
        &format!(
            "<section><h1>Log in</h1>{problem}<form method=post action=/login>\
             <input type=hidden name=next value=\"{}\"><label>Token <input type=password name=token autocomplete=off autofocus></label> \
             <button>Log in</button></form></section>",
            esc(next)
        ),
    );
    (status, Html(body)).into_response()
}

async fn login_form(Query(query): Query<HashMap<String, String>>) -> Response {
    login_page(StatusCode::OK, &next_path(query.get("next")), "")
}

/// The login form's fields.
#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// The posted token, checked: the session cookie and a redirect to where the user was
/// going, or the form again with the reason.
async fn login(State(ctx): State<Shared>, form: axum::Form<LoginForm>) -> Response {
    let next = next_path(form.next.as_ref());
    let token = form.token.as_str();
    if ctx.tokens.authenticate(token).is_none() || !cookie_safe(token) {
        return login_page(StatusCode::UNAUTHORIZED, &next, "unknown token");
    }
    let secure = if ctx.tls { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_S}{secure}");
    let mut r = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, value);
    }
    r
}

async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("carbonx_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// Tokens a cookie can carry as they are.
fn cookie_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn viewer(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    rpc: Rpc,
    accounts: &[u64],
) -> Result<Viewer, Box<Response>> {
    let _ = query;
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == COOKIE)
                .map(|(_, v)| v.to_string())
        });
    let Some(token) = from_header.or(from_cookie) else {
        return Err(Box::new(refused(
            StatusCode::UNAUTHORIZED,
            "NO_TOKEN",
            "this page needs a bearer token",
        )));
    };
    let Some(principal) = ctx.tokens.authenticate(&token) else {
        return Err(Box::new(refused(
            StatusCode::UNAUTHORIZED,
            "BAD_TOKEN",
            "unknown token",
        )));
    };
    authorize(&principal, rpc, accounts)
        .map_err(|e| Box::new(refused(StatusCode::FORBIDDEN, e.reason, &e.message)))?;
    Ok(Viewer { principal })
}

fn respond(_v: &Viewer, html: String) -> Response {
    Html(html).into_response()
}

fn esc(s: &str) -> String {
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

/// 1234567 -> "1,234,567".
fn grouped(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fen as yuan with thousands separators: 470750060 -> "4,707,500.60".
fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        grouped(fen.unsigned_abs() / 100),
        fen.unsigned_abs() % 100
    )
}

/// A cell with the raw value for scripts and tests.
fn figure(key: &str, value: i128, shown: &str) -> String {
    format!(
        "<td class=num data-key=\"{}\" data-value=\"{value}\">{}</td>",
        esc(key),
        esc(shown)
    )
}

const CSS: &str = r##"
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans SC",sans-serif;color:#1b2a32;background:#f4f6f5}
header{background:#12463a;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center}
header b{font-size:17px;margin-right:8px}header a{color:#cfe9df;text-decoration:none;padding:2px 0}header a.on{color:#fff;border-bottom:2px solid #7fd1b3}
header .who{margin-left:auto;font-size:12px;color:#cfe9df}
main{padding:12px 16px;display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:12px}
section{background:#fff;border:1px solid #dde4e1;border-radius:6px;padding:10px 12px;overflow-x:auto;min-width:0}
section.wide{grid-column:1/-1}h1{font-size:18px;margin:2px 0 8px}h2{font-size:15px;margin:2px 0 8px;color:#12463a}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{padding:3px 6px;border-bottom:1px solid #eef1f0;text-align:left;white-space:nowrap}
th{font-weight:600;color:#4a5d66;font-size:12px}td.num,th.num{text-align:right}
.bid{color:#0b7a43}.ask{color:#b3261e}.bar{height:10px;display:inline-block;vertical-align:middle;border-radius:2px}
.bar.b{background:#9fd9bb}.bar.a{background:#f2b5b0}.tag{font-size:11px;padding:1px 5px;border-radius:8px;background:#e7efec}
.SHORT{background:#fde2df;color:#8c1d16}.COMPLIANT{background:#dcf3e6;color:#0b5a33}.EMISSIONS_NOT_ENTERED{background:#fff2cc;color:#6b5200}
form.filters{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:8px}form.filters *{font:inherit}
.pager{display:flex;gap:12px;align-items:center;margin-top:8px}.muted{color:#6b7c84;font-size:12px}
svg{width:100%;height:auto;display:block}.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}
pre.explain{white-space:pre-wrap;background:#f7faf9;padding:8px;border-radius:4px;font-size:12px}
.refused{color:#8c1d16;font-weight:600}
@media (max-width:600px){main{grid-template-columns:1fr;padding:8px}header{padding:8px}section{padding:8px}th,td{padding:2px 4px;font-size:12px}}
"##;

/// Draws `<svg data-chart>` elements from the JSON in their `data-points` attribute:
/// a line (prices, and a dashed line for a second series) with optional volume bars.
const CHART_JS: &str = r##"
function drawCharts(){for(const svg of document.querySelectorAll('svg[data-chart]')){
 const d=JSON.parse(svg.dataset.points||'{}');const W=600,H=220,P=34;const xs=d.x||[];
 svg.setAttribute('viewBox',`0 0 ${W} ${H}`);svg.innerHTML='';
 if(!xs.length){svg.innerHTML=`<text x="${W/2}" y="${H/2}" text-anchor="middle" fill="#6b7c84">no data yet</text>`;continue}
 const ys=(d.y||[]).concat(d.y2||[]).filter(v=>v>0);let lo=Math.min(...ys),hi=Math.max(...ys);if(hi===lo){hi+=1;lo-=1}
 const X=i=>P+(xs.length<2?0:(W-2*P)*i/(xs.length-1)),Y=v=>H-P-(H-2*P-40)*(v-lo)/(hi-lo);
 let s='';const vmax=Math.max(1,...(d.v||[0]));
 (d.v||[]).forEach((v,i)=>{const h=40*v/vmax;s+=`<rect x="${X(i)-2}" y="${H-P-h}" width="4" height="${h}" fill="#c8d8d2"/>`});
 const line=(arr,style)=>{const pts=arr.map((v,i)=>v>0?`${X(i)},${Y(v)}`:'').filter(Boolean).join(' ');return `<polyline fill="none" ${style} points="${pts}"/>`};
 s+=line(d.y||[],'stroke="#12463a" stroke-width="2"');if(d.y2)s+=line(d.y2,'stroke="#d08a1e" stroke-width="1.5" stroke-dasharray="4 3"');
 s+=`<text x="4" y="${Y(hi)+4}" font-size="11" fill="#4a5d66">${(hi/100).toFixed(2)}</text><text x="4" y="${Y(lo)+4}" font-size="11" fill="#4a5d66">${(lo/100).toFixed(2)}</text>`;
 s+=`<text x="${P}" y="${H-8}" font-size="11" fill="#4a5d66">${xs[0]}</text><text x="${W-P}" y="${H-8}" font-size="11" text-anchor="end" fill="#4a5d66">${xs[xs.length-1]}</text>`;
 if(d.label)s+=`<text x="${W-P}" y="14" font-size="11" text-anchor="end" fill="#4a5d66">${d.label}</text>`;svg.innerHTML=s}}
document.addEventListener('DOMContentLoaded',drawCharts);
document.addEventListener('DOMContentLoaded',()=>{const r=document.querySelector('[data-reload-ms]');if(r)setTimeout(()=>location.reload(),+r.dataset.reloadMs)});
"##;

/// Keeps the book and recent trades of the market page current over server-sent events.
const LIVE_JS: &str = r##"
document.addEventListener('DOMContentLoaded',()=>{const el=document.getElementById('live');if(!el||!window.EventSource)return;
 const es=new EventSource(el.dataset.src);es.onmessage=e=>{const d=JSON.parse(e.data);
  const yuan=f=>(f/100).toFixed(2),g=n=>n.toLocaleString('en-US');const max=Math.max(1,...d.bids.map(l=>l[1]),...d.asks.map(l=>l[1]));
  const rows=[];for(let i=0;i<Math.max(d.bids.length,d.asks.length);i++){const b=d.bids[i],a=d.asks[i];
   rows.push(`<tr><td class=num>${b?g(b[2]):''}</td><td class=num>${b?g(b[1]):''} <span class="bar b" style="width:${b?60*b[1]/max:0}px"></span></td><td class="num bid">${b?yuan(b[0]):''}</td><td class="num ask">${a?yuan(a[0]):''}</td><td><span class="bar a" style="width:${a?60*a[1]/max:0}px"></span> ${a?g(a[1]):''}</td><td class=num>${a?g(a[2]):''}</td></tr>`)}
  document.getElementById('book').innerHTML=rows.join('')||'<tr><td colspan=6 class=muted>empty book</td></tr>';
  const bb=document.querySelector('[data-key=best-bid]');if(bb){bb.dataset.value=d.bids.length?d.bids[0][0]:0;bb.textContent=d.bids.length?yuan(d.bids[0][0]):'-'}
  const ba=document.querySelector('[data-key=best-ask]');if(ba){ba.dataset.value=d.asks.length?d.asks[0][0]:0;ba.textContent=d.asks.length?yuan(d.asks[0][0]):'-'}
  document.getElementById('trades').innerHTML=d.trades.map(t=>`<tr><td>${t[0]}</td><td class=num>${yuan(t[1])}</td><td class=num>${g(t[2])}</td><td>${t[3]}</td></tr>`).join('')||'<tr><td colspan=4 class=muted>no trades yet</td></tr>';
  el.textContent='live: sequence '+d.sequence}});
"##;

/// The pages' one script (charts, the live market, the operations page's reload), served
/// from `/static/` so the Content-Security-Policy admits no inline script.
fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript")],
        format!("{CHART_JS}{LIVE_JS}"),
    )
        .into_response()
}

fn page_shell(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{} - carbonx</title><link rel=stylesheet href=/static/carbonx.css><script src=/static/carbonx.js defer></script></head>\
         <body><header><b>carbonx</b>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    )
}

fn nav(active: &str, v: &Viewer) -> String {
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
        "<span class=who>{} ({})</span>",
        esc(&v.principal.name),
        v.principal.role.name()
    );
    out
}

fn kind_name(k: TradeKind) -> &'static str {
    match k {
        TradeKind::Continuous => "continuous",
        TradeKind::OpeningAuction => "opening auction",
        TradeKind::Block => "block",
        TradeKind::Bidding => "bidding auction",
    }
}

fn phase_name(p: engine::Phase) -> &'static str {
    match p {
        engine::Phase::Closed => "closed",
        engine::Phase::PreOpen => "pre-open",
        engine::Phase::OpeningCall => "opening call",
        engine::Phase::Continuous => "continuous",
        engine::Phase::Break => "break",
        engine::Phase::PostClose => "post-close",
    }
}

/// The book, best prices and status of an instrument, from the core thread.
struct BookNow {
    sequence: u64,
    date: u32,
    phase: engine::Phase,
    reference_fen: i64,
    band: (i64, i64),
    bids: Vec<(i64, u64, u32)>,
    asks: Vec<(i64, u64, u32)>,
}

async fn book_now(ctx: &Ctx, instrument: InstrumentId) -> Option<BookNow> {
    ctx.core
        .query(move |e| {
            let i = e.instrument_view(instrument)?;
            let book = e.book(instrument, 10);
            let level = |l: &engine::BookLevel| (l.price_fen, l.quantity_t, l.orders);
            Some(BookNow {
                sequence: e.last_seq(),
                date: e.trading_date(),
                phase: e.phase(),
                reference_fen: i.reference_price_fen,
                band: i.band.unwrap_or((0, 0)),
                bids: book
                    .as_ref()
                    .map_or(Vec::new(), |b| b.bids.iter().map(level).collect()),
                asks: book
                    .as_ref()
                    .map_or(Vec::new(), |b| b.asks.iter().map(level).collect()),
            })
        })
        .await
        .ok()
        .flatten()
}

fn book_json(b: &BookNow, trades: &[crate::hub::TradeRecord]) -> String {
    let levels = |l: &[(i64, u64, u32)]| {
        l.iter()
            .map(|(p, q, n)| format!("[{p},{q},{n}]"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let trades = trades
        .iter()
        .rev()
        .take(20)
        .map(|t| {
            format!(
                "[{},{},{},\"{}\"]",
                t.trade.trade.0,
                t.trade.price_fen,
                t.trade.quantity_t,
                kind_name(t.trade.kind)
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{{\"sequence\":{},\"bids\":[{}],\"asks\":[{}],\"trades\":[{trades}]}}",
        b.sequence,
        levels(&b.bids),
        levels(&b.asks)
    )
}

fn instrument_of(ctx: &Ctx, query: &HashMap<String, String>) -> Option<(String, InstrumentId)> {
    let symbols = ctx.core.catalog.symbols();
    let symbol = query
        .get("instrument")
        .cloned()
        .or_else(|| symbols.last().cloned())?;
    let id = ctx.core.catalog.instrument(&symbol)?;
    Some((symbol, id))
}

async fn market(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::MarketData, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut body = String::new();
    let Some((symbol, instrument)) = instrument_of(&ctx, &query) else {
        body.push_str(
            "<section><h1>Market</h1><p class=muted>No instrument is listed yet.</p></section>",
        );
        return respond(&v, page_shell("Market", &nav("/market", &v), &body));
    };
    let Some(b) = book_now(&ctx, instrument).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the engine did not answer",
        );
    };
    // The page shows at most a trading day's trades (capped) and the newest 50 negotiated
    // ones; the hub keeps `limits.trades_retained` per instrument.
    let trades = ctx.core.hub.recent_trades(instrument, DASHBOARD_TRADES_MAX);
    let bars = ctx.core.hub.bars(instrument, 0, 0);
    let mut pick = String::new();
    for s in ctx.core.catalog.symbols() {
        let _ = write!(
            pick,
            " <a href=\"/market?instrument={0}\"{1}>{0}</a>",
            esc(&s),
            if s == symbol { " class=tag" } else { "" }
        );
    }
    let best_bid = b.bids.first().map_or(0, |l| l.0);
    let best_ask = b.asks.first().map_or(0, |l| l.0);
    let _ = write!(
        body,
        "<section class=wide><h1>Market: {sym}</h1><div class=kv>\
         <span>instrument</span><span>{pick}</span>\
         <span>trading date</span><span data-key=trading-date data-value=\"{date}\">{date} ({phase})</span>\
         <span>reference</span><span data-key=reference data-value=\"{reference}\">{ref_y} yuan, band {lo} - {hi}</span>\
         <span>best bid / ask</span><span><b class=bid data-key=best-bid data-value=\"{best_bid}\">{bb}</b> / <b class=ask data-key=best-ask data-value=\"{best_ask}\">{ba}</b></span>\
         </div><p class=muted id=live data-src=\"/market/stream?instrument={sym}\">live updates connecting...</p></section>",
        sym = esc(&symbol),
        date = b.date,
        phase = phase_name(b.phase),
        reference = b.reference_fen,
        ref_y = yuan(b.reference_fen),
        lo = yuan(b.band.0),
        hi = yuan(b.band.1),
        bb = if best_bid > 0 {
            yuan(best_bid)
        } else {
            "-".into()
        },
        ba = if best_ask > 0 {
            yuan(best_ask)
        } else {
            "-".into()
        },
    );
    // The trading day's trades (the last day opened, or the latest 500 when the history
    // does not reach back to that day's opening) with their running VWAP.
    let (opened_seq, opened_date) = ctx.core.hub.day_opened();
    let today: Vec<_> = trades.iter().filter(|t| t.seq > opened_seq).collect();
    // At most 2,000 points on the chart (the newest).
    let today: Vec<_> = today[today.len().saturating_sub(2_000)..].to_vec();
    let (recent, chart_title) = if opened_date > 0 && !today.is_empty() {
        (today, format!("trading day {opened_date}"))
    } else {
        (
            trades.iter().rev().take(500).rev().collect(),
            "latest trades".to_string(),
        )
    };
    let (mut value, mut volume) = (0i128, 0i128);
    let (mut xs, mut ys, mut vwap, mut vs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in &recent {
        value += i128::from(t.trade.price_fen) * i128::from(t.trade.quantity_t);
        volume += i128::from(t.trade.quantity_t);
        xs.push(format!("\"#{}\"", t.trade.trade.0));
        ys.push(t.trade.price_fen.to_string());
        vwap.push((value / volume.max(1)).to_string());
        vs.push(t.trade.quantity_t.to_string());
    }
    let _ = write!(
        body,
        "<section><h2>Price: {5}, <span data-key=recent-trades data-value=\"{0}\">{0}</span> trades and their VWAP</h2><svg data-chart data-points='{{\"x\":[{1}],\"y\":[{2}],\"y2\":[{3}],\"v\":[{4}],\"label\":\"price (solid), VWAP (dashed), volume\"}}'></svg></section>",
        recent.len(),
        xs.join(","),
        ys.join(","),
        vwap.join(","),
        vs.join(","),
        chart_title
    );
    let last: Vec<_> = bars.iter().rev().take(120).rev().collect();
    let _ = write!(
        body,
        "<section><h2>Daily bars ({} days)</h2><svg data-chart data-points='{{\"x\":[{}],\"y\":[{}],\"v\":[{}],\"label\":\"close, volume\"}}'></svg>",
        last.len(),
        last.iter()
            .map(|b| format!("\"{}\"", b.date))
            .collect::<Vec<_>>()
            .join(","),
        last.iter()
            .map(|b| b.close_fen.to_string())
            .collect::<Vec<_>>()
            .join(","),
        last.iter()
            .map(|b| b.volume_t.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    body.push_str("<table><tr><th>date</th><th class=num>open</th><th class=num>high</th><th class=num>low</th><th class=num>close</th><th class=num>volume t</th><th class=num>trades</th></tr>");
    for bar in last.iter().rev().take(30) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>{}{}<td class=num>{}</td></tr>",
            bar.date,
            yuan(bar.open_fen),
            yuan(bar.high_fen),
            yuan(bar.low_fen),
            figure(
                &format!("close-{}", bar.date),
                i128::from(bar.close_fen),
                &yuan(bar.close_fen)
            ),
            figure(
                &format!("volume-{}", bar.date),
                i128::from(bar.volume_t),
                &grouped(bar.volume_t)
            ),
            bar.trades
        );
    }
    body.push_str("</table></section>");
    // The book with depth bars.
    let max = b
        .bids
        .iter()
        .chain(&b.asks)
        .map(|l| l.1)
        .max()
        .unwrap_or(1)
        .max(1);
    body.push_str("<section><h2>Order book (level 2)</h2><table><tr><th class=num>orders</th><th class=num>bid t</th><th class=num>bid</th><th class=num>ask</th><th>ask t</th><th class=num>orders</th></tr><tbody id=book>");
    for n in 0..b.bids.len().max(b.asks.len()) {
        let bid = b.bids.get(n);
        let ask = b.asks.get(n);
        let _ = write!(
            body,
            "<tr><td class=num>{}</td><td class=num>{} <span class=\"bar b\" style=\"width:{}px\"></span></td><td class=\"num bid\">{}</td><td class=\"num ask\">{}</td><td><span class=\"bar a\" style=\"width:{}px\"></span> {}</td><td class=num>{}</td></tr>",
            bid.map_or(String::new(), |l| l.2.to_string()),
            bid.map_or(String::new(), |l| grouped(l.1)),
            bid.map_or(0, |l| l.1 * 60 / max),
            bid.map_or(String::new(), |l| yuan(l.0)),
            ask.map_or(String::new(), |l| yuan(l.0)),
            ask.map_or(0, |l| l.1 * 60 / max),
            ask.map_or(String::new(), |l| grouped(l.1)),
            ask.map_or(String::new(), |l| l.2.to_string()),
        );
    }
    if b.bids.is_empty() && b.asks.is_empty() {
        body.push_str("<tr><td colspan=6 class=muted>empty book</td></tr>");
    }
    body.push_str("</tbody></table></section>");
    body.push_str("<section><h2>Recent trades</h2><table><tr><th>trade</th><th class=num>price</th><th class=num>t</th><th>kind</th></tr><tbody id=trades>");
    for t in trades.iter().rev().take(20) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td></tr>",
            t.trade.trade.0,
            yuan(t.trade.price_fen),
            grouped(t.trade.quantity_t),
            kind_name(t.trade.kind)
        );
    }
    if trades.is_empty() {
        body.push_str("<tr><td colspan=4 class=muted>no trades yet</td></tr>");
    }
    body.push_str("</tbody></table></section>");
    body.push_str("<section><h2>Block trades and auction results</h2><table><tr><th>trade</th><th>kind</th><th class=num>price</th><th class=num>t</th><th>buyer</th><th>seller</th></tr>");
    let negotiated: Vec<_> = trades
        .iter()
        .filter(|t| matches!(t.trade.kind, TradeKind::Block | TradeKind::Bidding))
        .collect();
    for t in negotiated.iter().rev().take(50) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td><td>{}</td></tr>",
            t.trade.trade.0,
            kind_name(t.trade.kind),
            yuan(t.trade.price_fen),
            grouped(t.trade.quantity_t),
            t.trade.buy.account.0,
            t.trade.sell.account.0
        );
    }
    if negotiated.is_empty() {
        body.push_str("<tr><td colspan=6 class=muted>none</td></tr>");
    }
    body.push_str("</table></section>");
    respond(
        &v,
        page_shell(&format!("Market {symbol}"), &nav("/market", &v), &body),
    )
}

async fn market_stream(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::MarketData, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    // Counted with the principal's gRPC streams: one token cannot open streams without end.
    let slot = match crate::auth::take_slot(&v.principal, true, ctx.limits.streams_per_principal) {
        Ok(slot) => slot,
        Err(e) => return refused(StatusCode::TOO_MANY_REQUESTS, e.reason, &e.message),
    };
    let Some((_, instrument)) = instrument_of(&ctx, &query) else {
        return refused(
            StatusCode::NOT_FOUND,
            "UNKNOWN_INSTRUMENT",
            "no such instrument",
        );
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(4);
    let mut changes = ctx.core.hub.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let _slot = slot;
        loop {
            if let Some(b) = book_now(&ctx, instrument).await {
                let trades = ctx.core.hub.recent_trades(instrument, 20);
                if tx
                    .send(Ok(SseEvent::default().data(book_json(&b, &trades))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
            tokio::time::sleep(Duration::from_millis(DASHBOARD_PUSH_MS)).await;
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn latest_year(ledger: &registry::ledger::Ledger) -> u16 {
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
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=num>{}</td>{}{}{}{}{}<td class=num>{}</td></tr>",
            esc(&t.key),
            t.entities,
            figure(
                &format!("obligation-{slug}"),
                i128::from(t.obligation_t),
                &grouped(t.obligation_t)
            ),
            figure(
                &format!("allocated-{slug}"),
                i128::from(t.allocated_t),
                &grouped(t.allocated_t)
            ),
            figure(
                &format!("surrendered-{slug}"),
                i128::from(t.surrendered_t),
                &grouped(t.surrendered_t)
            ),
            figure(
                &format!("shortfall-{slug}"),
                i128::from(t.shortfall_t),
                &grouped(t.shortfall_t)
            ),
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

async fn compliance(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::ListCompliance, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let q = query.clone();
    let page = ctx
        .core
        .registry
        .read(move |reg| {
            let ledger = reg.ledger();
            let year = q
                .get("year")
                .and_then(|y| y.parse().ok())
                .unwrap_or_else(|| latest_year(ledger));
            let sector = match q.get("sector").map(String::as_str) {
                Some("power") => pb::Sector::Power as i32,
                Some("steel") => pb::Sector::Steel as i32,
                Some("cement") => pb::Sector::Cement as i32,
                Some("aluminium") => pb::Sector::Aluminium as i32,
                _ => 0,
            };
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
            let request = pb::ListComplianceRequest {
                year: u32::from(year),
                sector,
                status,
                province: q.get("province").cloned().unwrap_or_default(),
                order,
                offset: q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
                page_size: DASHBOARD_PAGE_ROWS,
            };
            let listed = list_compliance(ledger, &request, year);
            let years: Vec<u16> = ledger.cycle.years.keys().copied().collect();
            (
                year,
                years,
                totals(ledger, year, false),
                totals(ledger, year, true),
                listed,
                request,
            )
        })
        .await;
    let Ok((year, years, by_sector, by_province, listed, request)) = page else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    let mut body = String::new();
    let year_links: String = years
        .iter()
        .map(|y| {
            format!(
                " <a href=\"/compliance?year={y}\"{}>{y}</a>",
                if *y == year { " class=tag" } else { "" }
            )
        })
        .collect();
    let _ = write!(
        body,
        "<section class=wide><h1>Compliance {year}</h1><div class=muted>years:{year_links}</div></section>"
    );
    body.push_str(&totals_table("By sector", "sector", &by_sector));
    body.push_str(&totals_table("By province", "province", &by_province));
    // The entity table: server-side filter, sort and paging.
    let link = |changes: &[(&str, String)]| {
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
    };
    let selected = |k: &str, v: &str| {
        if query.get(k).map(String::as_str) == Some(v) {
            " selected"
        } else {
            ""
        }
    };
    let _ = write!(
        body,
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
    );
    let _ = write!(
        body,
        "<table><tr><th><a href=\"{}\">account</a></th><th>name</th><th>sector</th><th>province</th><th>status</th><th class=num><a href=\"{}\">obligation t</a></th><th class=num>allocated t</th><th class=num>surrendered t</th><th class=num><a href=\"{}\">shortfall t</a></th><th class=num>penalty yuan</th></tr>",
        link(&[("order", "account".into()), ("offset", "0".into())]),
        link(&[("order", "obligation".into()), ("offset", "0".into())]),
        link(&[("order", "shortfall".into()), ("offset", "0".into())]),
    );
    let sector_label = |s: i32| match pb::Sector::try_from(s) {
        Ok(pb::Sector::Power) => "power",
        Ok(pb::Sector::Steel) => "steel",
        Ok(pb::Sector::Cement) => "cement",
        _ => "aluminium",
    };
    for r in &listed.rows {
        let _ = write!(
            body,
            "<tr><td><a href=\"/entity/{id}?year={year}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"tag {st}\">{st}</span></td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>{}<td class=num>{}</td></tr>",
            esc(&r.name),
            sector_label(r.sector),
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
    if listed.rows.is_empty() {
        body.push_str("<tr><td colspan=10 class=muted>no entity matches</td></tr>");
    }
    body.push_str("</table>");
    let offset = u64::from(request.offset);
    let shown_to = offset + listed.rows.len() as u64;
    let _ = write!(
        body,
        "<div class=pager><span data-key=entities-total data-value=\"{}\">{}-{} of {}</span>",
        listed.total,
        if listed.rows.is_empty() {
            0
        } else {
            offset + 1
        },
        shown_to,
        grouped(listed.total)
    );
    if offset > 0 {
        let _ = write!(
            body,
            "<a href=\"{}\">previous</a>",
            link(&[(
                "offset",
                offset
                    .saturating_sub(u64::from(DASHBOARD_PAGE_ROWS))
                    .to_string()
            )])
        );
    }
    if shown_to < listed.total {
        let _ = write!(
            body,
            "<a href=\"{}\">next</a>",
            link(&[("offset", shown_to.to_string())])
        );
    }
    body.push_str("</div></section>");
    respond(
        &v,
        page_shell(
            &format!("Compliance {year}"),
            &nav("/compliance", &v),
            &body,
        ),
    )
}

async fn entity(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::GetCompliance, &[id]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let q = query.clone();
    let catalog = ctx.core.catalog.clone();
    let found = ctx
        .core
        .registry
        .read(move |reg| {
            let ledger = reg.ledger();
            let year = q
                .get("year")
                .and_then(|y| y.parse().ok())
                .unwrap_or_else(|| latest_year(ledger));
            let c = entity_compliance(ledger, year, AccountId(id))?;
            let holdings: Vec<(String, registry::model::Holding)> = ledger
                .holdings
                .range(
                    (AccountId(id), registry::model::UnitId(0))
                        ..=(AccountId(id), registry::model::UnitId(u32::MAX)),
                )
                .map(|((_, u), h)| (catalog.unit_name(*u), h.clone()))
                .collect();
            let from = reg.seq().saturating_sub(DASHBOARD_JOURNAL_SCAN as u64) + 1;
            let entries: Vec<(u64, u64, String)> = reg
                .journal(from, DASHBOARD_JOURNAL_SCAN)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    let text = format!("{:?}", e.tx.op);
                    text.contains(&format!("AccountId({id})")).then_some((
                        e.seq,
                        e.tx.timestamp_ns,
                        text,
                    ))
                })
                .collect();
            Some((year, c, holdings, entries))
        })
        .await;
    let Ok(Some((year, c, holdings, entries))) = found else {
        return refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no covered entity with that account",
        );
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<section class=wide><h1>{} <span class=muted>account {}</span></h1><div class=kv>\
         <span>sector / province</span><span>{} / {}</span>\
         <span>compliance {year}</span><span><span class=\"tag {st}\">{st}</span></span>\
         <span>obligation (verified)</span><span data-key=obligation data-value=\"{}\">{} t</span>\
         <span>surrendered</span><span>{} t CEA + {} t CCER</span>\
         <span>shortfall</span><span data-key=shortfall data-value=\"{}\">{} t</span>\
         <span>pre-allocated</span><span>{} t</span>\
         <span>allocated ({}, plan {})</span><span data-key=allocated data-value=\"{}\">{} t</span>\
         <span>delivered / held / deducted / clawed back</span><span>{} / {} / {} / {} t</span>\
         <span>penalty</span><span>{} yuan{}</span></div></section>",
        esc(&c.name),
        c.account_id,
        match pb::Sector::try_from(c.sector) {
            Ok(pb::Sector::Power) => "power",
            Ok(pb::Sector::Steel) => "steel",
            Ok(pb::Sector::Cement) => "cement",
            _ => "aluminium",
        },
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
        if c.deduction_owed_t > 0 {
            format!("; deduction owed {} t", grouped(c.deduction_owed_t))
        } else {
            String::new()
        },
        st = esc(&c.status_code),
    );
    let steps = c.explanation.replace(". ", ".\n").replace("; ", ";\n");
    let _ = write!(
        body,
        "<section class=wide><h2>How the allocation was computed</h2><pre class=explain>{}</pre></section>",
        if steps.is_empty() {
            "not allocated yet".to_string()
        } else {
            esc(&steps)
        }
    );
    body.push_str("<section><h2>Holdings by position</h2><table><tr><th>unit</th><th class=num>registry</th><th class=num>trading</th><th class=num>frozen</th><th>frozen by reason</th></tr>");
    for (unit, h) in &holdings {
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
            body,
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
    body.push_str("</table></section>");
    body.push_str("<section><h2>Journal entries</h2><table><tr><th class=num>entry</th><th>operation</th></tr>");
    for (seq, _, text) in entries.iter().rev().take(100) {
        let _ = write!(
            body,
            "<tr><td class=num>{seq}</td><td style=\"white-space:normal\">{}</td></tr>",
            esc(&text.chars().take(200).collect::<String>())
        );
    }
    body.push_str("</table></section>");
    respond(
        &v,
        page_shell(&format!("Entity {id}"), &nav("/compliance", &v), &body),
    )
}

async fn registry_page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::ListProposals, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let search = query.get("q").cloned().unwrap_or_default();
    let catalog = ctx.core.catalog.clone();
    let s = search.clone();
    let data = ctx
        .core
        .registry
        .read(move |reg| {
            let l = reg.ledger();
            let needle = s.to_lowercase();
            let accounts: Vec<AccountRow> = l
                .accounts
                .values()
                .filter(|a| {
                    needle.is_empty()
                        || a.id.0.to_string() == needle
                        || a.name.to_lowercase().contains(&needle)
                })
                .take(50)
                .map(|a| {
                    let holdings = l
                        .holdings
                        .range(
                            (a.id, registry::model::UnitId(0))
                                ..=(a.id, registry::model::UnitId(u32::MAX)),
                        )
                        .map(|((_, u), h)| {
                            (
                                catalog.unit_name(*u),
                                h.registry_available_t,
                                h.trading_t,
                                h.frozen_t(),
                            )
                        })
                        .collect();
                    (a.id.0, a.name.clone(), format!("{:?}", a.kind), holdings)
                })
                .collect();
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
                pledges.push((
                    p.id,
                    p.pledgor.0,
                    p.pledgee.0,
                    catalog.unit_name(p.unit),
                    p.quantity_t,
                ));
            }
            let proposals: Vec<_> = l
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
            (accounts, by_pledgee, pledges, proposals, l.accounts.len())
        })
        .await;
    let Ok((accounts, by_pledgee, pledges, proposals, total)) = data else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the registry did not answer",
        );
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<section class=wide><h1>Registry</h1><form class=filters method=get action=/registry><input name=q placeholder=\"account id or name\" value=\"{}\"><button>search</button></form>\
         <table><tr><th>account</th><th>name</th><th>type</th><th>unit</th><th class=num>registry t</th><th class=num>trading t</th><th class=num>frozen t</th></tr>",
        esc(&search)
    );
    for (id, name, kind, holdings) in &accounts {
        if holdings.is_empty() {
            let _ = write!(
                body,
                "<tr><td>{id}</td><td>{}</td><td>{}</td><td colspan=4 class=muted>no holdings</td></tr>",
                esc(name),
                esc(kind)
            );
        }
        for (unit, available, trading, frozen) in holdings {
            let _ = write!(
                body,
                "<tr><td>{id}</td><td>{}</td><td>{}</td><td>{}</td>{}<td class=num>{}</td><td class=num>{}</td></tr>",
                esc(name),
                esc(kind),
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
        body,
        "</table><p class=muted>{} of {} accounts shown (at most 50: search to narrow)</p></section>",
        accounts.len(),
        grouped(total as u64)
    );
    body.push_str("<section><h2>Pledges outstanding by pledgee</h2><table><tr><th>pledgee</th><th class=num>pledges</th><th class=num>t</th></tr>");
    for (pledgee, (n, t)) in &by_pledgee {
        let _ = write!(
            body,
            "<tr><td>{pledgee}</td><td class=num>{n}</td>{}</tr>",
            figure(&format!("pledged-{pledgee}"), i128::from(*t), &grouped(*t))
        );
    }
    if by_pledgee.is_empty() {
        body.push_str("<tr><td colspan=3 class=muted>none</td></tr>");
    }
    body.push_str("</table><table><tr><th>pledge</th><th>pledgor</th><th>pledgee</th><th>unit</th><th class=num>t</th></tr>");
    for (id, pledgor, pledgee, unit, q) in &pledges {
        let _ = write!(
            body,
            "<tr><td>{id}</td><td>{pledgor}</td><td>{pledgee}</td><td>{}</td><td class=num>{}</td></tr>",
            esc(unit),
            grouped(*q)
        );
    }
    body.push_str("</table></section>");
    body.push_str("<section><h2>Transfers awaiting a second approver</h2><table><tr><th>proposal</th><th>from</th><th>to</th><th>unit</th><th class=num>t</th></tr>");
    for (id, from, to, unit, q) in &proposals {
        let _ = write!(
            body,
            "<tr><td>{id}</td><td>{from}</td><td>{to}</td><td>{}</td><td class=num>{}</td></tr>",
            esc(unit),
            grouped(*q)
        );
    }
    if proposals.is_empty() {
        body.push_str("<tr><td colspan=5 class=muted>none</td></tr>");
    }
    body.push_str("</table></section>");
    respond(&v, page_shell("Registry", &nav("/registry", &v), &body))
}

async fn operations(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::Reconcile, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    use std::sync::atomic::Ordering::Relaxed;
    let m = &ctx.core.metrics;
    let day = ctx
        .core
        .query(|e| (e.trading_date(), e.phase(), e.last_seq()))
        .await
        .ok();
    let mut body = String::new();
    let (date, phase, seq) = day.unwrap_or((0, engine::Phase::Closed, 0));
    let _ = write!(
        body,
        "<section class=wide><h1>Operations</h1><div class=kv>\
         <span>trading date</span><span data-key=trading-date data-value=\"{date}\">{date}</span>\
         <span>phase</span><span>{}</span><span>engine sequence</span><span data-key=sequence data-value=\"{seq}\">{seq}</span>\
         <span>journal durable through</span><span data-key=journal-durable data-value=\"{durable}\">{durable}</span>\
         <span>settled through</span><span data-key=settled data-value=\"{settled}\">{settled}</span>\
         <span>settlement failures</span><span>{}</span></div></section>",
        phase_name(phase),
        m.settlement_failures.load(Relaxed),
        durable = m.journal_durable_seq.load(Relaxed),
        settled = m.settled_seq.load(Relaxed),
    );
    body.push_str("<section><h2>Queues</h2><table><tr><th>queue</th><th class=num>depth</th></tr>");
    for (name, q) in [
        ("core (sequencer)", &m.sequencer_queue),
        ("registry writer", &m.registry_queue),
    ] {
        let depth = q.load(Relaxed);
        let _ = write!(
            body,
            "<tr><td>{name}</td>{}</tr>",
            figure(
                &format!("queue-{}", name.replace(' ', "-")),
                i128::from(depth),
                &depth.to_string()
            )
        );
    }
    let _ = write!(
        body,
        "</table></section><section><h2>Journal and traffic</h2><table>\
         <tr><td>journal batches (fsyncs)</td><td class=num>{}</td></tr>\
         <tr><td>fsync latency p50 / p99 / p99.9</td><td class=num>{} / {} / {} us</td></tr>\
         <tr><td>commands</td>{}</tr><tr><td>orders</td><td class=num>{}</td></tr>\
         <tr><td>trades</td><td class=num>{}</td></tr><tr><td>traded t</td><td class=num>{}</td></tr>\
         <tr><td>streams open</td><td class=num>{}</td></tr><tr><td>slow consumers dropped</td><td class=num>{}</td></tr>\
         <tr><td>requests refused for overload</td><td class=num>{}</td></tr></table></section>",
        grouped(m.journal_batches.load(Relaxed)),
        m.journal_fsync.quantile_us(500),
        m.journal_fsync.quantile_us(990),
        m.journal_fsync.quantile_us(999),
        figure(
            "commands",
            i128::from(m.commands.load(Relaxed)),
            &grouped(m.commands.load(Relaxed))
        ),
        grouped(m.orders.load(Relaxed)),
        grouped(m.trades.load(Relaxed)),
        grouped(m.traded_t.load(Relaxed)),
        m.streams_open.load(Relaxed),
        m.slow_consumers_dropped.load(Relaxed),
        m.overloaded.load(Relaxed)
    );
    body.push_str("<section><h2>Rejections by reason</h2><table><tr><th>reason</th><th class=num>count</th></tr>");
    let rejects = m.rejects.lock().clone();
    for (reason, n) in &rejects {
        let _ = write!(
            body,
            "<tr><td>{reason}</td>{}</tr>",
            figure(&format!("reject-{reason}"), i128::from(*n), &grouped(*n))
        );
    }
    if rejects.is_empty() {
        body.push_str("<tr><td colspan=2 class=muted>none</td></tr>");
    }
    body.push_str("</table><p class=muted data-reload-ms=5000>The same figures as <code>/metrics</code> on the metrics port. This page reloads every 5 s.</p></section>");
    respond(&v, page_shell("Operations", &nav("/operations", &v), &body))
}
