//! The trading day's commands: status, book, the day's lifecycle, funds, orders,
//! reconciliation.

use std::fmt::Write;

use client::money::{parse_yuan, yuan};
use client::{Clients, failed, names};
use proto::v1 as pb;

fn refused(s: tonic::Status) -> String {
    failed(&s)
}

pub(super) async fn status(c: &mut Clients) -> Result<String, String> {
    let s = c
        .market
        .get_market_status(pb::GetMarketStatusRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trading date {}  phase {}  sequence {}",
        names::date(s.trading_date),
        names::phase(s.phase),
        s.sequence
    );
    for i in s.instruments {
        let _ = writeln!(
            out,
            "{:<10} reference {:>8}  band {:>8} - {:<8}  bid {:>8}  ask {:>8}{}",
            i.instrument,
            yuan(i.reference_price_fen),
            yuan(i.band_low_fen),
            yuan(i.band_high_fen),
            yuan(i.best_bid_fen),
            yuan(i.best_ask_fen),
            if i.halted { "  HALTED" } else { "" }
        );
    }
    Ok(out)
}

pub(super) async fn book(c: &mut Clients, instrument: &str, depth: u32) -> Result<String, String> {
    let b = c
        .market
        .get_book(pb::GetBookRequest {
            instrument: instrument.to_string(),
            depth,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = String::new();
    let _ = writeln!(out, "{} at sequence {}", b.instrument, b.sequence);
    let _ = writeln!(
        out,
        "{:>10} {:>8} {:>10} | {:<10} {:<8} {:<10}",
        "bid t", "orders", "bid", "ask", "orders", "ask t"
    );
    let blank = || (String::new(), String::new(), String::new());
    for n in 0..b.bids.len().max(b.asks.len()) {
        let bid = b.bids.get(n).map_or_else(blank, |l| {
            (
                l.quantity_t.to_string(),
                l.order_count.to_string(),
                yuan(l.price_fen),
            )
        });
        let ask = b.asks.get(n).map_or_else(blank, |l| {
            (
                yuan(l.price_fen),
                l.order_count.to_string(),
                l.quantity_t.to_string(),
            )
        });
        let _ = writeln!(
            out,
            "{:>10} {:>8} {:>10} | {:<10} {:<8} {:<10}",
            bid.0, bid.1, bid.2, ask.0, ask.1, ask.2
        );
    }
    Ok(out)
}

pub(super) async fn open_day(c: &mut Clients, date: u32) -> Result<String, String> {
    let r = c
        .admin
        .open_trading_day(pb::OpenTradingDayRequest { trading_date: date })
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!(
        "trading day {date} open (sequence {})\n",
        r.sequence
    ))
}

pub(super) async fn phase(c: &mut Clients, phase: &str) -> Result<String, String> {
    let Some(p) = client::names::phase_of(phase) else {
        let words: Vec<&str> = client::names::PHASES.iter().map(|(_, w)| *w).collect();
        return Err(format!("phase {phase:?}: one of {}", words.join(", ")));
    };
    let r = c
        .admin
        .set_phase(pb::SetPhaseRequest { phase: p as i32 })
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!("phase {phase} (sequence {})\n", r.sequence))
}

pub(super) async fn close_day(c: &mut Clients) -> Result<String, String> {
    let r = c
        .admin
        .close_trading_day(pb::CloseTradingDayRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!("trading day closed (sequence {})\n", r.sequence))
}

pub(super) async fn credit(
    c: &mut Clients,
    account: u64,
    amount: &str,
    transfer: u64,
) -> Result<String, String> {
    let fen = parse_yuan(amount)?;
    let r = c
        .admin
        .credit_funds(pb::FundsRequest {
            transfer_id: transfer,
            account_id: account,
            amount_fen: fen,
        })
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!(
        "credited {} yuan to account {account} (sequence {})\n",
        yuan(fen),
        r.sequence
    ))
}

/// A limit order as typed on the command line.
#[derive(Debug)]
pub(super) struct Order<'a> {
    pub account: u64,
    pub side: &'a str,
    pub instrument: &'a str,
    pub quantity_t: u64,
    pub price: &'a str,
    pub client_order_id: u64,
}

pub(super) async fn place(c: &mut Clients, o: &Order<'_>) -> Result<String, String> {
    let side = match o.side {
        "buy" => pb::Side::Buy,
        "sell" => pb::Side::Sell,
        other => return Err(format!("side {other:?}: buy or sell")),
    };
    let r = c
        .trading
        .place_order(pb::PlaceOrderRequest {
            account_id: o.account,
            client_order_id: o.client_order_id,
            instrument: o.instrument.to_string(),
            side: side as i32,
            order_type: pb::OrderType::Limit as i32,
            time_in_force: pb::TimeInForce::Day as i32,
            price_fen: parse_yuan(o.price)?,
            quantity_t: o.quantity_t,
            post_only: false,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let order = r.order.unwrap_or_default();
    let mut out = format!(
        "order {}: filled {} t, resting {} t (sequence {})\n",
        order.order_id, order.filled_t, order.leaves_t, r.sequence
    );
    for f in r.fills {
        let _ = writeln!(
            out,
            "  trade {}: {} t at {}",
            f.trade_id,
            f.quantity_t,
            yuan(f.price_fen)
        );
    }
    Ok(out)
}

pub(super) async fn cancel(c: &mut Clients, account: u64, order: u64) -> Result<String, String> {
    let r = c
        .trading
        .cancel_order(pb::CancelOrderRequest {
            account_id: account,
            order_id: order,
        })
        .await
        .map_err(refused)?
        .into_inner();
    Ok(format!(
        "order {order} cancelled: {} t (sequence {})\n",
        r.cancelled_t, r.sequence
    ))
}

pub(super) async fn reconcile(c: &mut Clients) -> Result<String, String> {
    let r = c
        .admin
        .reconcile(pb::ReconcileRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = format!(
        "reconciliation at sequence {}: {} ({} accounts)\n",
        r.sequence,
        if r.clean { "clean" } else { "NOT CLEAN" },
        r.accounts_checked
    );
    for d in r.differences {
        let _ = writeln!(
            out,
            "  account {} {}: registry trading {} t, exchange {} t",
            d.account_id, d.unit, d.registry_trading_t, d.exchange_t
        );
    }
    for p in r.problems {
        let _ = writeln!(out, "  {p}");
    }
    Ok(out)
}
