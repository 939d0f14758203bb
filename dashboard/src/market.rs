//! The market page: per vintage, the day's trades with their VWAP, daily bars, the level-2
//! book with depth bars, recent trades, block trades and auction results; and its live
//! updates over server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::{DailyBar, InstrumentId, TradeKind};
use server::auth::Rpc;
use server::hub::TradeRecord;
use server::services::Ctx;
use tokio_stream::wrappers::ReceiverStream;

use crate::html::{Shell, grouped, kind_name, render, yuan};
use crate::session::{refused, viewer};
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

#[derive(Template)]
#[template(path = "market.html")]
struct MarketPage {
    shell: Shell,
    /// None while no instrument is listed.
    book: Option<MarketBody>,
}

struct SymbolLink {
    symbol: String,
    current: bool,
}

struct MarketBody {
    symbol: String,
    symbols: Vec<SymbolLink>,
    date: u32,
    /// `date` as 2026-11-30.
    date_text: String,
    phase: &'static str,
    reference_fen: i64,
    reference: String,
    band_low: String,
    band_high: String,
    best_bid_fen: i64,
    best_bid: String,
    best_ask_fen: i64,
    best_ask: String,
    chart_title: String,
    chart_trades: usize,
    /// The charts' data as JSON (the script draws them).
    chart_points: String,
    bar_days: usize,
    bar_points: String,
    bars: Vec<BarRow>,
    levels: Vec<LevelRow>,
    recent: Vec<TradeRow>,
    negotiated: Vec<TradeRow>,
}

struct BarRow {
    date: u32,
    date_text: String,
    open: String,
    high: String,
    low: String,
    close_fen: i64,
    close: String,
    volume_t: u64,
    volume: String,
    trades: u64,
}

/// One row of the book: a bid level beside an ask level (either may be empty).
#[derive(Default)]
struct LevelRow {
    bid_orders: String,
    bid_t: String,
    bid_px: u64,
    bid: String,
    ask: String,
    ask_px: u64,
    ask_t: String,
    ask_orders: String,
}

struct TradeRow {
    trade: u64,
    kind: &'static str,
    price: String,
    quantity: String,
    buyer: u64,
    seller: u64,
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
        let shell = Shell::page("Market", "/market", &v);
        return render(&MarketPage { shell, book: None });
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
    let shell = Shell::page(format!("Market {symbol}"), "/market", &v);
    let body = market_body(&ctx, symbol, &b, &trades, &bars);
    render(&MarketPage {
        shell,
        book: Some(body),
    })
}

fn market_body(
    ctx: &Ctx,
    symbol: String,
    b: &BookNow,
    trades: &[TradeRecord],
    bars: &[DailyBar],
) -> MarketBody {
    let best_bid_fen = b.bids.first().map_or(0, |l| l.0);
    let best_ask_fen = b.asks.first().map_or(0, |l| l.0);
    let shown = |p: i64| if p > 0 { yuan(p) } else { "-".into() };
    let (chart_title, chart_trades, chart_points) = price_chart(ctx, trades);
    let last_bars: Vec<&DailyBar> = bars.iter().rev().take(120).rev().collect();
    MarketBody {
        symbols: ctx
            .core
            .catalog
            .symbols()
            .into_iter()
            .map(|s| SymbolLink {
                current: s == symbol,
                symbol: s,
            })
            .collect(),
        symbol,
        date: b.date,
        date_text: client::names::date(b.date),
        phase: phase_name(b.phase),
        reference_fen: b.reference_fen,
        reference: yuan(b.reference_fen),
        band_low: yuan(b.band.0),
        band_high: yuan(b.band.1),
        best_bid_fen,
        best_bid: shown(best_bid_fen),
        best_ask_fen,
        best_ask: shown(best_ask_fen),
        chart_title,
        chart_trades,
        chart_points,
        bar_days: last_bars.len(),
        bar_points: bar_points(&last_bars),
        bars: last_bars
            .iter()
            .rev()
            .take(30)
            .map(|bar| bar_row(bar))
            .collect(),
        levels: book_rows(b),
        recent: trades.iter().rev().take(20).map(trade_row).collect(),
        negotiated: trades
            .iter()
            .rev()
            .filter(|t| matches!(t.trade.kind, TradeKind::Block | TradeKind::Bidding))
            .take(50)
            .map(trade_row)
            .collect(),
    }
}

/// The trading day's trades (the last day opened, or the latest 500 when the history does
/// not reach back to that day's opening) with their running VWAP: (title, trades, JSON).
fn price_chart(ctx: &Ctx, trades: &[TradeRecord]) -> (String, usize, String) {
    let (opened_seq, opened_date) = ctx.core.hub.day_opened();
    let today: Vec<_> = trades.iter().filter(|t| t.seq > opened_seq).collect();
    // At most 2,000 points on the chart (the newest).
    let today: Vec<_> = today[today.len().saturating_sub(2_000)..].to_vec();
    let (recent, chart_title) = if opened_date > 0 && !today.is_empty() {
        (
            today,
            format!("trading day {}", client::names::date(opened_date)),
        )
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
    let points = format!(
        "{{\"x\":[{}],\"y\":[{}],\"y2\":[{}],\"v\":[{}],\"label\":\"price (solid), VWAP (dashed), volume\"}}",
        xs.join(","),
        ys.join(","),
        vwap.join(","),
        vs.join(","),
    );
    (chart_title, recent.len(), points)
}

fn bar_points(bars: &[&DailyBar]) -> String {
    let join =
        |f: &dyn Fn(&DailyBar) -> String| bars.iter().map(|b| f(b)).collect::<Vec<_>>().join(",");
    format!(
        "{{\"x\":[{}],\"y\":[{}],\"v\":[{}],\"label\":\"close, volume\"}}",
        join(&|b| format!("\"{}\"", b.date)),
        join(&|b| b.close_fen.to_string()),
        join(&|b| b.volume_t.to_string()),
    )
}

fn bar_row(bar: &DailyBar) -> BarRow {
    BarRow {
        date: bar.date,
        date_text: client::names::date(bar.date),
        open: yuan(bar.open_fen),
        high: yuan(bar.high_fen),
        low: yuan(bar.low_fen),
        close_fen: bar.close_fen,
        close: yuan(bar.close_fen),
        volume_t: bar.volume_t,
        volume: grouped(bar.volume_t),
        trades: bar.trades,
    }
}

/// The book side by side, with depth bars up to 60 px for the largest level.
fn book_rows(b: &BookNow) -> Vec<LevelRow> {
    let max = b
        .bids
        .iter()
        .chain(&b.asks)
        .map(|l| l.1)
        .max()
        .unwrap_or(1)
        .max(1);
    (0..b.bids.len().max(b.asks.len()))
        .map(|n| {
            let mut row = LevelRow::default();
            if let Some(&(price, t, orders)) = b.bids.get(n) {
                (row.bid_orders, row.bid_t, row.bid_px) =
                    (orders.to_string(), grouped(t), t * 60 / max);
                row.bid = yuan(price);
            }
            if let Some(&(price, t, orders)) = b.asks.get(n) {
                (row.ask_orders, row.ask_t, row.ask_px) =
                    (orders.to_string(), grouped(t), t * 60 / max);
                row.ask = yuan(price);
            }
            row
        })
        .collect()
}

fn trade_row(t: &TradeRecord) -> TradeRow {
    TradeRow {
        trade: t.trade.trade.0,
        kind: kind_name(t.trade.kind),
        price: yuan(t.trade.price_fen),
        quantity: grouped(t.trade.quantity_t),
        buyer: t.trade.buy.account.0,
        seller: t.trade.sell.account.0,
    }
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
