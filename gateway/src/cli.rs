//! The operator CLI: `carbonx` subcommands that talk to a running server over gRPC, with
//! the address and token from flags or the environment. Prices are typed and shown in yuan
//! (`85.42`), quantities in tonnes. Each command returns the text it prints, so tests run it
//! against a real server.

use std::fmt::Write;

use proto::v1 as pb;
use tonic::transport::Channel;

/// Where the server is and who is asking.
#[derive(Clone, Debug, clap::Args)]
pub struct Connection {
    /// gRPC address of the server.
    #[arg(long, env = "CARBONX_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Bearer token of the principal (see the server's tokens file).
    #[arg(long, env = "CARBONX_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum Ctl {
    /// Trading date, phase, and each instrument's reference, band and best prices.
    Status,
    /// The level-2 book of an instrument.
    Book {
        instrument: String,
        #[arg(long, default_value_t = 10)]
        depth: u32,
    },
    /// Open a trading day (YYYYMMDD).
    OpenDay { date: u32 },
    /// Move the market to a phase: pre-open, opening-call, continuous, break, post-close.
    Phase { phase: String },
    /// Close the trading day (closing prices, expiry of DAY orders).
    CloseDay,
    /// Credit funds from the settlement bank to a trading account.
    Credit {
        account: u64,
        /// Amount in yuan, e.g. 1000000.00
        amount: String,
        /// The settlement bank's transfer id (idempotent).
        #[arg(long)]
        transfer: u64,
    },
    /// Place a limit order.
    Place {
        account: u64,
        /// buy or sell
        side: String,
        instrument: String,
        /// Tonnes.
        quantity: u64,
        /// Limit price in yuan, e.g. 85.42
        price: String,
        #[arg(long)]
        client_order_id: u64,
    },
    /// Cancel an order.
    Cancel { account: u64, order: u64 },
    /// Compare the registry with the exchange.
    Reconcile,
}

/// Yuan as typed by people (`85`, `85.4`, `85.42`) to fen, exactly.
pub fn parse_yuan(text: &str) -> Result<i64, String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let bad = || format!("{text:?} is not an amount in yuan (e.g. 85.42)");
    if whole.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Fen as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        fen.unsigned_abs() / 100,
        fen.unsigned_abs() % 100
    )
}

fn phase_name(p: i32) -> &'static str {
    match pb::Phase::try_from(p) {
        Ok(pb::Phase::Closed) => "closed",
        Ok(pb::Phase::PreOpen) => "pre-open",
        Ok(pb::Phase::OpeningCall) => "opening-call",
        Ok(pb::Phase::Continuous) => "continuous",
        Ok(pb::Phase::Break) => "break",
        Ok(pb::Phase::PostClose) => "post-close",
        _ => "unknown",
    }
}

fn failed(status: tonic::Status) -> String {
    match crate::error::rejection_of(&status) {
        Some(r) if !r.reason.is_empty() => {
            let field = if r.field.is_empty() {
                String::new()
            } else {
                format!(" (field {})", r.field)
            };
            format!("refused: {}{field}: {}", r.reason, r.message)
        }
        _ => format!("failed: {:?}: {}", status.code(), status.message()),
    }
}

/// Runs one command; the text to print, or the error to print.
pub async fn run(connection: &Connection, command: &Ctl) -> Result<String, String> {
    let channel = Channel::from_shared(connection.addr.clone())
        .map_err(|e| format!("--addr {:?}: {e}", connection.addr))?
        .connect()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", connection.addr))?;
    let token: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", connection.token)
            .parse()
            .map_err(|_| "--token: not a valid token".to_string())?;
    let auth = move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", token.clone());
        Ok(r)
    };
    let mut market = pb::market_data_service_client::MarketDataServiceClient::with_interceptor(
        channel.clone(),
        auth.clone(),
    );
    let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(
        channel.clone(),
        auth.clone(),
    );
    let mut trading =
        pb::trading_service_client::TradingServiceClient::with_interceptor(channel, auth);
    let mut out = String::new();
    match command {
        Ctl::Status => {
            let s = market
                .get_market_status(pb::GetMarketStatusRequest {})
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "trading date {}  phase {}  sequence {}",
                s.trading_date,
                phase_name(s.phase),
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
        }
        Ctl::Book { instrument, depth } => {
            let b = market
                .get_book(pb::GetBookRequest {
                    instrument: instrument.clone(),
                    depth: *depth,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(out, "{} at sequence {}", b.instrument, b.sequence);
            let _ = writeln!(
                out,
                "{:>10} {:>8} {:>10} | {:<10} {:<8} {:<10}",
                "bid t", "orders", "bid", "ask", "orders", "ask t"
            );
            for n in 0..b.bids.len().max(b.asks.len()) {
                let bid =
                    b.bids
                        .get(n)
                        .map_or((String::new(), String::new(), String::new()), |l| {
                            (
                                l.quantity_t.to_string(),
                                l.order_count.to_string(),
                                yuan(l.price_fen),
                            )
                        });
                let ask =
                    b.asks
                        .get(n)
                        .map_or((String::new(), String::new(), String::new()), |l| {
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
        }
        Ctl::OpenDay { date } => {
            let r = admin
                .open_trading_day(pb::OpenTradingDayRequest {
                    trading_date: *date,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(out, "trading day {date} open (sequence {})", r.sequence);
        }
        Ctl::Phase { phase } => {
            let p = match phase.as_str() {
                "pre-open" => pb::Phase::PreOpen,
                "opening-call" => pb::Phase::OpeningCall,
                "continuous" => pb::Phase::Continuous,
                "break" => pb::Phase::Break,
                "post-close" => pb::Phase::PostClose,
                other => {
                    return Err(format!(
                        "phase {other:?}: one of pre-open, opening-call, continuous, break, post-close"
                    ));
                }
            };
            let r = admin
                .set_phase(pb::SetPhaseRequest { phase: p as i32 })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(out, "phase {phase} (sequence {})", r.sequence);
        }
        Ctl::CloseDay => {
            let r = admin
                .close_trading_day(pb::CloseTradingDayRequest {})
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(out, "trading day closed (sequence {})", r.sequence);
        }
        Ctl::Credit {
            account,
            amount,
            transfer,
        } => {
            let fen = parse_yuan(amount)?;
            let r = admin
                .credit_funds(pb::FundsRequest {
                    transfer_id: *transfer,
                    account_id: *account,
                    amount_fen: fen,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "credited {} yuan to account {account} (sequence {})",
                yuan(fen),
                r.sequence
            );
        }
        Ctl::Place {
            account,
            side,
            instrument,
            quantity,
            price,
            client_order_id,
        } => {
            let side = match side.as_str() {
                "buy" => pb::Side::Buy,
                "sell" => pb::Side::Sell,
                other => return Err(format!("side {other:?}: buy or sell")),
            };
            let r = trading
                .place_order(pb::PlaceOrderRequest {
                    account_id: *account,
                    client_order_id: *client_order_id,
                    instrument: instrument.clone(),
                    side: side as i32,
                    order_type: pb::OrderType::Limit as i32,
                    time_in_force: pb::TimeInForce::Day as i32,
                    price_fen: parse_yuan(price)?,
                    quantity_t: *quantity,
                    post_only: false,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let o = r.order.unwrap_or_default();
            let _ = writeln!(
                out,
                "order {}: filled {} t, resting {} t (sequence {})",
                o.order_id, o.filled_t, o.leaves_t, r.sequence
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
        }
        Ctl::Cancel { account, order } => {
            let r = trading
                .cancel_order(pb::CancelOrderRequest {
                    account_id: *account,
                    order_id: *order,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "order {order} cancelled: {} t (sequence {})",
                r.cancelled_t, r.sequence
            );
        }
        Ctl::Reconcile => {
            let r = admin
                .reconcile(pb::ReconcileRequest {})
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "reconciliation at sequence {}: {} ({} accounts)",
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
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_parse_and_print_exactly() {
        assert_eq!(parse_yuan("85.42"), Ok(8_542));
        assert_eq!(parse_yuan("85.4"), Ok(8_540));
        assert_eq!(parse_yuan("85"), Ok(8_500));
        assert_eq!(parse_yuan("0.07"), Ok(7));
        for bad in [
            "",
            ".5",
            "85.423",
            "-1",
            "1e3",
            "8 5",
            "99999999999999999999",
        ] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(yuan(8_542), "85.42");
        assert_eq!(yuan(-7), "-0.07");
    }
}
