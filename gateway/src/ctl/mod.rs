//! `carbonx ctl`: the operator and ministry commands, talking to a running server over
//! gRPC with the address and token from flags or the environment. Prices are typed and
//! shown in yuan (`85.42`), quantities in tonnes. Each command is one function that returns
//! the text it prints, so tests run it against a real server: the trading day's in
//! `market.rs`, the compliance year's in `compliance.rs`.

mod carry_over;
mod compliance;
pub mod emissions;
mod market;
mod risk;
pub mod verify;

use client::Clients;

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
    /// Change an instrument's position limit (accounts without their own) and its
    /// large-holder reporting threshold, in tonnes; prints the large-holder report.
    Limits {
        instrument: String,
        #[arg(long, conflicts_with = "no_position_limit")]
        position_limit: Option<u64>,
        #[arg(long)]
        no_position_limit: bool,
        #[arg(long, conflicts_with = "no_large_holder")]
        large_holder: Option<u64>,
        #[arg(long)]
        no_large_holder: bool,
    },
    /// Set one account's own position limit in an instrument (tonnes; --unlimited for none).
    PositionLimit {
        account: u64,
        instrument: String,
        #[arg(required_unless_present = "unlimited", conflicts_with = "unlimited")]
        limit: Option<u64>,
        #[arg(long)]
        unlimited: bool,
    },
    /// Accounts holding at least an instrument's large-holder threshold, largest first.
    LargeHolders { instrument: String },
    /// Register an allocation plan from its TOML file (e.g. registry/plans/2024.toml).
    RegisterPlan { file: std::path::PathBuf },
    /// Load covered entities and their facilities from CSV (account_id, name, sector,
    /// province, differentiated, facility_id, facility_kind, fuel, capacity_mw, product_line,
    /// process, credit_code).
    LoadEntities { file: std::path::PathBuf },
    /// Load a year's activity data from CSV (account_id, facility_id; a generating unit's
    /// electricity_mwh, heat_gj, load_factor, emissions_t; a product line's output_t,
    /// emissions_t, pfc_co2e_t, carbide_slag_rate, special_case).
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
    /// Close a compliance year after its surrender deadline (earlier only with a reason).
    CloseYear {
        #[arg(long)]
        year: u32,
        /// Why the authority closes before the deadline (recorded with the close).
        #[arg(long)]
        force_reason: Option<String>,
    },
    /// Fix every covered entity's carry-over limit into a year (the authority, after the
    /// plan's holdings date).
    FixCarryOver {
        #[arg(long)]
        year: u32,
        #[arg(long)]
        plan: String,
    },
    /// Apply to carry old-vintage units into a year (the covered entity; units in its
    /// registry position).
    ApplyCarryOver {
        account: u64,
        unit: String,
        quantity: u64,
        #[arg(long)]
        year: u32,
    },
    /// Convert the open carry-over applications into a year's vintage (the authority).
    ConvertCarryOver {
        #[arg(long)]
        year: u32,
    },
    /// An entity's carry-over limit and what it applied for.
    CarryOver {
        account: u64,
        #[arg(long)]
        year: u32,
    },
    /// Emissions accounting: factors, monitoring plans, monthly deposits, annual reports.
    Emissions {
        #[command(subcommand)]
        command: emissions::EmissionsCmd,
    },
    /// Verification of annual reports: rules, bodies, assignment, review, findings,
    /// conclusion, notification, objection; the file and the queue.
    Verify {
        #[command(subcommand)]
        command: verify::VerifyCmd,
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

/// Runs one command; the text to print, or the error to print.
pub async fn run(connection: &Connection, command: &Ctl) -> Result<String, String> {
    let mut c = Clients::connect(&connection.addr, &connection.token)
        .await
        .map_err(|e| format!("--addr: {e}"))?;
    dispatch(&mut c, command).await
}

/// One function per command (`market.rs`: the trading day; `compliance.rs`: the year).
async fn dispatch(c: &mut Clients, command: &Ctl) -> Result<String, String> {
    match command {
        Ctl::Status => market::status(c).await,
        Ctl::Book { instrument, depth } => market::book(c, instrument, *depth).await,
        Ctl::OpenDay { date } => market::open_day(c, *date).await,
        Ctl::Phase { phase } => market::phase(c, phase).await,
        Ctl::CloseDay => market::close_day(c).await,
        Ctl::Credit {
            account,
            amount,
            transfer,
        } => market::credit(c, *account, amount, *transfer).await,
        Ctl::Place {
            account,
            side,
            instrument,
            quantity,
            price,
            client_order_id,
        } => {
            let order = market::Order {
                account: *account,
                side,
                instrument,
                quantity_t: *quantity,
                price,
                client_order_id: *client_order_id,
            };
            market::place(c, &order).await
        }
        Ctl::Cancel { account, order } => market::cancel(c, *account, *order).await,
        Ctl::Reconcile => market::reconcile(c).await,
        Ctl::Limits {
            instrument,
            position_limit,
            no_position_limit,
            large_holder,
            no_large_holder,
        } => {
            let l = risk::InstrumentLimits {
                instrument,
                position_limit_t: *position_limit,
                no_position_limit: *no_position_limit,
                large_holder_t: *large_holder,
                no_large_holder: *no_large_holder,
            };
            risk::instrument_limits(c, &l).await
        }
        Ctl::PositionLimit {
            account,
            instrument,
            limit,
            unlimited: _,
        } => risk::position_limit(c, *account, instrument, *limit).await,
        Ctl::LargeHolders { instrument } => risk::large_holders(c, instrument).await,
        Ctl::RegisterPlan { file } => compliance::register_plan(c, file).await,
        Ctl::LoadEntities { file } => compliance::load_entities(c, file).await,
        Ctl::LoadActivity { year, file } => compliance::load_activity(c, *year, file).await,
        Ctl::RecordVerified { year, file } => compliance::record_verified(c, *year, file).await,
        Ctl::Allocate {
            year,
            plan,
            pre,
            out,
        } => compliance::allocate(c, *year, plan, *pre, out.as_deref()).await,
        Ctl::Compliance { year, account } => match account {
            Some(account) => compliance::entity(c, *year, *account).await,
            None => compliance::totals(c, *year).await,
        },
        Ctl::Surrender {
            account,
            unit,
            quantity,
            year,
            key,
        } => {
            let s = compliance::Surrender {
                account: *account,
                unit,
                quantity_t: *quantity,
                year: *year,
                key: key.as_deref(),
            };
            compliance::surrender(c, &s).await
        }
        Ctl::CloseYear { year, force_reason } => {
            compliance::close_year(c, *year, force_reason.as_deref()).await
        }
        Ctl::FixCarryOver { year, plan } => carry_over::fix(c, *year, plan).await,
        Ctl::ApplyCarryOver {
            account,
            unit,
            quantity,
            year,
        } => {
            let a = carry_over::Application {
                year: *year,
                account: *account,
                unit,
                quantity_t: *quantity,
            };
            carry_over::apply(c, &a).await
        }
        Ctl::ConvertCarryOver { year } => carry_over::convert(c, *year).await,
        Ctl::CarryOver { account, year } => carry_over::show(c, *year, *account).await,
        Ctl::Report { year, kind, out } => compliance::report(c, *year, kind, out.as_deref()).await,
        Ctl::Emissions { command } => emissions::run(c, command).await,
        Ctl::Verify { command } => verify::run(c, command).await,
    }
}

/// Nanoseconds since the epoch, for idempotency keys that must be new.
fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
