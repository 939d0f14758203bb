//! The market page: per vintage, the day's trades with their VWAP, daily bars, the level-2
//! book with depth bars, recent trades, block trades and auction results; and its live
//! updates over server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::{DailyBar, InstrumentId, TradeKind};
use server::auth::Rpc;
use server::hub::TradeRecord;
use server::services::Ctx;
use tokio_stream::wrappers::ReceiverStream;

use crate::html::{esc, figure, grouped, kind_name, nav, page_shell, yuan};
use crate::session::{refused, respond, viewer};
use crate::{DASHBOARD_PUSH_MS, DASHBOARD_TRADES_MAX, Shared};

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

pub(crate) fn phase_name(p: engine::Phase) -> &'static str {
    client::names::phase(server::services::convert::phase_out(p))
}

fn book_json(b: &BookNow, trades: &[TradeRecord]) -> String {
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

pub(crate) async fn page(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::MarketData, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some((symbol, instrument)) = instrument_of(&ctx, &query) else {
        let body =
            "<section><h1>Market</h1><p class=muted>No instrument is listed yet.</p></section>";
        return respond(page_shell("Market", &nav("/market", &v), body));
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
    let mut body = header(&ctx, &symbol, &b);
    body.push_str(&price_chart(&ctx, &trades));
    body.push_str(&daily_bars(&bars));
    body.push_str(&book_table(&b));
    body.push_str(&recent_trades(&trades));
    body.push_str(&negotiated(&trades));
    respond(page_shell(
        &format!("Market {symbol}"),
        &nav("/market", &v),
        &body,
    ))
}

fn header(ctx: &Ctx, symbol: &str, b: &BookNow) -> String {
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
    let shown = |p: i64| if p > 0 { yuan(p) } else { "-".into() };
    format!(
        "<section class=wide><h1>Market: {sym}</h1><div class=kv>\
         <span>instrument</span><span>{pick}</span>\
         <span>trading date</span><span data-key=trading-date data-value=\"{date}\">{date} ({phase})</span>\
         <span>reference</span><span data-key=reference data-value=\"{reference}\">{ref_y} yuan, band {lo} - {hi}</span>\
         <span>best bid / ask</span><span><b class=bid data-key=best-bid data-value=\"{best_bid}\">{bb}</b> / <b class=ask data-key=best-ask data-value=\"{best_ask}\">{ba}</b></span>\
         </div><p class=muted id=live data-src=\"/market/stream?instrument={sym}\">live updates connecting...</p></section>",
        sym = esc(symbol),
        date = b.date,
        phase = phase_name(b.phase),
        reference = b.reference_fen,
        ref_y = yuan(b.reference_fen),
        lo = yuan(b.band.0),
        hi = yuan(b.band.1),
        bb = shown(best_bid),
        ba = shown(best_ask),
    )
}

/// The trading day's trades (the last day opened, or the latest 500 when the history does
/// not reach back to that day's opening) with their running VWAP.
fn price_chart(ctx: &Ctx, trades: &[TradeRecord]) -> String {
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
    format!(
        "<section><h2>Price: {5}, <span data-key=recent-trades data-value=\"{0}\">{0}</span> trades and their VWAP</h2><svg data-chart data-points='{{\"x\":[{1}],\"y\":[{2}],\"y2\":[{3}],\"v\":[{4}],\"label\":\"price (solid), VWAP (dashed), volume\"}}'></svg></section>",
        recent.len(),
        xs.join(","),
        ys.join(","),
        vwap.join(","),
        vs.join(","),
        chart_title
    )
}

fn daily_bars(bars: &[DailyBar]) -> String {
    let last: Vec<_> = bars.iter().rev().take(120).rev().collect();
    let join =
        |f: &dyn Fn(&DailyBar) -> String| last.iter().map(|b| f(b)).collect::<Vec<_>>().join(",");
    let mut body = format!(
        "<section><h2>Daily bars ({} days)</h2><svg data-chart data-points='{{\"x\":[{}],\"y\":[{}],\"v\":[{}],\"label\":\"close, volume\"}}'></svg>",
        last.len(),
        join(&|b| format!("\"{}\"", b.date)),
        join(&|b| b.close_fen.to_string()),
        join(&|b| b.volume_t.to_string()),
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
    body
}

/// The book with depth bars.
fn book_table(b: &BookNow) -> String {
    let max = b
        .bids
        .iter()
        .chain(&b.asks)
        .map(|l| l.1)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut body = String::from(
        "<section><h2>Order book (level 2)</h2><table><tr><th class=num>orders</th><th class=num>bid t</th><th class=num>bid</th><th class=num>ask</th><th>ask t</th><th class=num>orders</th></tr><tbody id=book>",
    );
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
    body
}

fn recent_trades(trades: &[TradeRecord]) -> String {
    let mut body = String::from(
        "<section><h2>Recent trades</h2><table><tr><th>trade</th><th class=num>price</th><th class=num>t</th><th>kind</th></tr><tbody id=trades>",
    );
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
    body
}

fn negotiated(trades: &[TradeRecord]) -> String {
    let mut body = String::from(
        "<section><h2>Block trades and auction results</h2><table><tr><th>trade</th><th>kind</th><th class=num>price</th><th class=num>t</th><th>buyer</th><th>seller</th></tr>",
    );
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
    body
}

/// The market page's live updates: the book and recent trades after each change.
pub(crate) async fn stream(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&ctx, &headers, &query, Rpc::MarketData, &[]) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    // Counted with the principal's gRPC streams: one token cannot open streams without end.
    let slot = match server::auth::take_slot(&v.principal, true, ctx.limits.streams_per_principal) {
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
