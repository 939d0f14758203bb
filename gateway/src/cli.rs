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
    /// Register an allocation plan from its TOML file (e.g. registry/plans/2024.toml).
    RegisterPlan { file: std::path::PathBuf },
    /// Load covered entities and their facilities from CSV (account_id, name, sector,
    /// province, differentiated, facility_id, facility_kind, fuel, capacity_mw, product_line).
    LoadEntities { file: std::path::PathBuf },
    /// Load a year's activity data from CSV (account_id, facility_id, electricity_mwh,
    /// heat_gj, load_factor, emissions_t | output_t).
    LoadActivity {
        #[arg(long)]
        year: u32,
        file: std::path::PathBuf,
    },
    /// Record a year's verified emissions from CSV (account_id, co2_t, pfc_co2e_t).
    RecordVerified {
        #[arg(long)]
        year: u32,
        file: std::path::PathBuf,
    },
    /// Run a year's allocation under a registered plan (the true-up, or with --pre the
    /// pre-allocation) and write the allocation report as CSV.
    Allocate {
        #[arg(long)]
        year: u32,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        pre: bool,
        /// Where to write the allocation CSV (default: not written).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Compliance status of a year: totals by sector, or one entity with --account.
    Compliance {
        #[arg(long)]
        year: u32,
        #[arg(long)]
        account: Option<u64>,
    },
    /// Surrender allowances against a compliance year (covered entities).
    Surrender {
        account: u64,
        unit: String,
        quantity: u64,
        #[arg(long)]
        year: u32,
        /// Idempotency key: give the same one to retry safely (default: a new one).
        #[arg(long)]
        key: Option<String>,
    },
    /// Close a compliance year at its deadline.
    CloseYear {
        #[arg(long)]
        year: u32,
    },
    /// Export a report as CSV: allocation, status, sectors or provinces.
    Report {
        #[arg(long)]
        year: u32,
        kind: String,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// Entities per LoadEntities request the CLI sends.
pub const CLI_ENTITIES_PER_REQUEST: usize = 1_000;
/// Activity or verified rows per request the CLI sends.
pub const CLI_ROWS_PER_REQUEST: usize = 5_000;

fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A refused bulk request: a row error points back at the file's line.
fn failed_rows(status: tonic::Status, path: &std::path::Path, lines: &[usize]) -> String {
    if let Some(r) = crate::error::rejection_of(&status)
        && let Some(rest) = r.field.strip_prefix("rows[")
        && let Some((index, column)) = rest.split_once("].")
        && let Some(line) = index.parse::<usize>().ok().and_then(|i| lines.get(i))
    {
        return format!(
            "{} line {line}, column {column}: refused: {}: {}",
            path.display(),
            r.reason,
            r.message
        );
    }
    format!("{}: {}", path.display(), failed(status))
}

fn status_name(s: i32) -> &'static str {
    match pb::ComplianceStatus::try_from(s) {
        Ok(pb::ComplianceStatus::Compliant) => "COMPLIANT",
        Ok(pb::ComplianceStatus::Short) => "SHORT",
        Ok(pb::ComplianceStatus::EmissionsNotEntered) => "EMISSIONS_NOT_ENTERED",
        _ => "UNKNOWN",
    }
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
    let mut compliance = pb::compliance_service_client::ComplianceServiceClient::with_interceptor(
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
        Ctl::RegisterPlan { file } => {
            let text = read(file)?;
            let r = compliance
                .register_plan(pb::RegisterPlanRequest {
                    idempotency_key: format!("plan-{:016x}", fnv(text.as_bytes())),
                    plan_toml: text,
                })
                .await
                .map_err(|e| format!("{}: {}", file.display(), failed(e)))?
                .into_inner();
            let _ = writeln!(
                out,
                "plan {} registered (journal entry {})",
                file.display(),
                r.journal_sequence
            );
        }
        Ctl::LoadEntities { file } => {
            let text = read(file)?;
            let rows =
                crate::csvfile::entities(&text).map_err(|e| format!("{} {e}", file.display()))?;
            let hash = fnv(text.as_bytes());
            let mut facilities = 0;
            for (n, chunk) in rows.chunks(CLI_ENTITIES_PER_REQUEST).enumerate() {
                let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
                facilities += chunk.iter().map(|(_, r)| r.facilities.len()).sum::<usize>();
                compliance
                    .load_entities(pb::LoadEntitiesRequest {
                        idempotency_key: format!("entities-{hash:016x}-{n}"),
                        rows: chunk.iter().map(|(_, r)| r.clone()).collect(),
                    })
                    .await
                    .map_err(|e| failed_rows(e, file, &lines))?;
            }
            let _ = writeln!(
                out,
                "{} entities with {facilities} facilities loaded from {}",
                rows.len(),
                file.display()
            );
        }
        Ctl::LoadActivity { year, file } => {
            let text = read(file)?;
            let rows =
                crate::csvfile::activity(&text).map_err(|e| format!("{} {e}", file.display()))?;
            let hash = fnv(text.as_bytes());
            for (n, chunk) in rows.chunks(CLI_ROWS_PER_REQUEST).enumerate() {
                let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
                compliance
                    .load_activity(pb::LoadActivityRequest {
                        idempotency_key: format!("activity-{year}-{hash:016x}-{n}"),
                        year: *year,
                        rows: chunk.iter().map(|(_, r)| r.clone()).collect(),
                    })
                    .await
                    .map_err(|e| failed_rows(e, file, &lines))?;
            }
            let _ = writeln!(
                out,
                "{} activity rows for {year} loaded from {}",
                rows.len(),
                file.display()
            );
        }
        Ctl::RecordVerified { year, file } => {
            let text = read(file)?;
            let rows =
                crate::csvfile::verified(&text).map_err(|e| format!("{} {e}", file.display()))?;
            let hash = fnv(text.as_bytes());
            let mut total = 0u64;
            for (n, chunk) in rows.chunks(CLI_ROWS_PER_REQUEST).enumerate() {
                let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
                total += chunk
                    .iter()
                    .map(|(_, r)| r.co2_t + r.pfc_co2e_t)
                    .sum::<u64>();
                compliance
                    .record_verified(pb::RecordVerifiedRequest {
                        idempotency_key: format!("verified-{year}-{hash:016x}-{n}"),
                        year: *year,
                        rows: chunk.iter().map(|(_, r)| *r).collect(),
                    })
                    .await
                    .map_err(|e| failed_rows(e, file, &lines))?;
            }
            let _ = writeln!(
                out,
                "verified emissions of {} entities for {year} recorded: {total} t CO2e",
                rows.len()
            );
        }
        Ctl::Allocate {
            year,
            plan,
            pre,
            out: csv_out,
        } => {
            let kind = if *pre {
                pb::RunKind::PreAllocation
            } else {
                pb::RunKind::TrueUp
            };
            let r = compliance
                .run_allocation(pb::RunAllocationRequest {
                    idempotency_key: format!(
                        "run-{year}-{plan}-{}-{}",
                        if *pre { "pre" } else { "true-up" },
                        crate::core::now_ns()
                    ),
                    year: *year,
                    plan_version: plan.clone(),
                    kind: kind as i32,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "{} {year} under plan {plan}: {}",
                if *pre { "pre-allocation" } else { "true-up" },
                if r.unchanged {
                    "nothing to do (same plan and data as the last run)".to_string()
                } else {
                    format!("journal entry {}", r.journal_sequence)
                }
            );
            let _ = writeln!(
                out,
                "  {} entities, {} t allocated; {} t issued in all, {} t held for differentiated entities, {} t of deductions netted, {} t clawed back",
                r.entities, r.allocated_t, r.issued_t, r.held_t, r.deducted_t, r.clawed_back_t
            );
            if let Some(path) = csv_out {
                let csv = export(&mut compliance, *year, pb::Report::Allocation).await?;
                std::fs::write(path, &csv)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                let _ = writeln!(
                    out,
                    "  allocation report ({} lines) written to {}",
                    csv.lines().count().saturating_sub(1),
                    path.display()
                );
            }
        }
        Ctl::Compliance { year, account } => match account {
            Some(account) => {
                let c = compliance
                    .get_compliance(pb::GetComplianceRequest {
                        year: *year,
                        account_id: *account,
                    })
                    .await
                    .map_err(failed)?
                    .into_inner();
                let _ = writeln!(
                    out,
                    "{} {} ({}), {year}: {}",
                    c.account_id, c.name, c.province, c.status_code
                );
                let _ = writeln!(
                    out,
                    "  obligation {} t, surrendered {} t CEA + {} t CCER, shortfall {} t",
                    c.obligation_t, c.surrendered_cea_t, c.surrendered_ccer_t, c.shortfall_t
                );
                let _ = writeln!(
                    out,
                    "  pre-allocated {} t, allocated {} t ({} under plan {}), delivered {} t, held {} t, deducted {} t, clawed back {} t",
                    c.pre_allocated_t,
                    c.allocated_t,
                    c.method,
                    c.plan_version,
                    c.delivered_t,
                    c.held_t,
                    c.deducted_t,
                    c.clawed_back_t
                );
                if !c.explanation.is_empty() {
                    let _ = writeln!(out, "  how: {}", c.explanation);
                }
                if c.closed {
                    let _ = writeln!(
                        out,
                        "  closed: forced {} t, released {} t, penalty {} yuan",
                        c.forced_t,
                        c.released_t,
                        yuan(c.penalty_fen)
                    );
                }
                if c.deduction_owed_t > 0 {
                    let _ = writeln!(out, "  deduction owed: {} t", c.deduction_owed_t);
                }
            }
            None => {
                let rows = compliance
                    .get_totals(pb::GetTotalsRequest {
                        year: *year,
                        by: pb::TotalsBy::Sector as i32,
                    })
                    .await
                    .map_err(failed)?
                    .into_inner()
                    .rows;
                let _ = writeln!(
                    out,
                    "{:<10} {:>8} {:>14} {:>14} {:>14} {:>12} {:>10} {:>6} {:>12} {:>18}",
                    "sector",
                    "entities",
                    "obligation t",
                    "allocated t",
                    "surrendered t",
                    "shortfall t",
                    "compliant",
                    "short",
                    "not entered",
                    "penalties yuan"
                );
                for t in rows {
                    let _ = writeln!(
                        out,
                        "{:<10} {:>8} {:>14} {:>14} {:>14} {:>12} {:>10} {:>6} {:>12} {:>18}",
                        t.key,
                        t.entities,
                        t.obligation_t,
                        t.allocated_t,
                        t.surrendered_t,
                        t.shortfall_t,
                        t.compliant,
                        t.short,
                        t.emissions_not_entered,
                        yuan(t.penalty_fen)
                    );
                }
            }
        },
        Ctl::Surrender {
            account,
            unit,
            quantity,
            year,
            key,
        } => {
            let r = compliance
                .surrender(pb::SurrenderRequest {
                    idempotency_key: key.clone().unwrap_or_else(|| {
                        format!("surrender-{account}-{}", crate::core::now_ns())
                    }),
                    account_id: *account,
                    unit: unit.clone(),
                    quantity_t: *quantity,
                    year: *year,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let status = compliance
                .get_compliance(pb::GetComplianceRequest {
                    year: *year,
                    account_id: *account,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "{quantity} t of {unit} surrendered for {year} (journal entry {}); now {} with {} t short",
                r.journal_sequence,
                status_name(status.status),
                status.shortfall_t
            );
        }
        Ctl::CloseYear { year } => {
            let r = compliance
                .close_year(pb::CloseYearRequest {
                    idempotency_key: format!("close-{year}"),
                    year: *year,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let _ = writeln!(
                out,
                "{year} closed (journal entry {}) at an average price of {} yuan ({}): {} entities, {} compliant, {} short, {} without verified emissions",
                r.journal_sequence,
                yuan(r.average_price_fen),
                r.price_month,
                r.entities,
                r.compliant,
                r.short,
                r.emissions_not_entered
            );
            let _ = writeln!(
                out,
                "  shortfall {} t, penalties {} yuan; forced surrender {} t, released {} t",
                r.shortfall_t,
                yuan(r.penalty_fen),
                r.forced_t,
                r.released_t
            );
        }
        Ctl::Report {
            year,
            kind,
            out: csv_out,
        } => {
            let report = match kind.as_str() {
                "allocation" => pb::Report::Allocation,
                "status" => pb::Report::Status,
                "sectors" => pb::Report::SectorTotals,
                "provinces" => pb::Report::ProvinceTotals,
                other => {
                    return Err(format!(
                        "report {other:?}: allocation, status, sectors or provinces"
                    ));
                }
            };
            let csv = export(&mut compliance, *year, report).await?;
            match csv_out {
                Some(path) => {
                    std::fs::write(path, &csv)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    let _ = writeln!(
                        out,
                        "{kind} report for {year} ({} lines) written to {}",
                        csv.lines().count().saturating_sub(1),
                        path.display()
                    );
                }
                None => out.push_str(&csv),
            }
        }
    }
    Ok(out)
}

async fn export<S>(
    client: &mut pb::compliance_service_client::ComplianceServiceClient<S>,
    year: u32,
    report: pb::Report,
) -> Result<String, String>
where
    S: tonic::client::GrpcService<tonic::body::Body>,
    S::Error: Into<tonic::codegen::StdError>,
    S::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <S::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut stream = client
        .export_report(pb::ExportReportRequest {
            year,
            report: report as i32,
        })
        .await
        .map_err(failed)?
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(failed)? {
        csv.extend(chunk.csv);
    }
    String::from_utf8(csv).map_err(|_| "the report is not UTF-8".to_string())
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
