//! `carbonx demo`: one compliance year of a synthetic national market, played over real
//! gRPC clients against an embedded server (RocksDB registry, journal, engine) in a fresh
//! data directory.
//!
//! The market (`market.rs`): ~3,700 covered entities (power, steel, cement, aluminium)
//! with generating units and product lines, plausible activity data and emissions, the 2024
//! allocation plan (`registry/plans/2024.toml`). The year (`year.rs`, one method per
//! phase, each on its date of the cycle, `calendar.rs`): the ministry pre-allocates on 2023
//! emissions; the industrial entities deposit their months and submit their reports
//! (`accounting.rs`), which their provinces have verified by bodies, with a few findings
//! and one objection (`verification.rs`); the power plants' verified emissions are typed
//! in; the year is trued up; dozens of members and the entities trade for a few days
//! (`trading.rs`: continuous trading, a block trade, a one-way bidding auction of paid
//! allocation); a bank takes pledges, releases most and enforces one default; entities
//! surrender; the ministry closes the year at the November average price. The report on
//! stdout (`report.rs`) depends only on the seed; progress and timings go to stderr.
//!
//! Determinism: everything random comes from one seeded generator; orders and bids are
//! sent one at a time in a seeded order (matching depends on arrival); steps whose order
//! cannot change their result (funds, deposits, surrenders of different accounts) run
//! concurrently.

mod accounting;
mod calendar;
mod market;
mod report;
mod report_verification;
mod trading;
mod verification;
mod year;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use server::config::Config;

use market::Entity;

/// What to play.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    /// Data directory; `None`: a fresh temporary directory, removed afterwards.
    pub data: Option<PathBuf>,
    pub entities: usize,
    pub members: usize,
    pub days: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 7,
            data: None,
            entities: 3_700,
            members: 40,
            days: 5,
        }
    }
}

/// Most entities a demo market may have.
pub const DEMO_ENTITIES_MAX: usize = 10_000;
/// Requests the demo keeps in flight when their order does not matter.
const CONCURRENCY: usize = 64;

const AUTHORITY: u64 = 1;
const RETIREMENT: u64 = 2;
const CANCELLATION: u64 = 3;
const BANK: u64 = 900;
const FIRST_MEMBER: u64 = 5_001;
const FIRST_ENTITY: u64 = 10_001;
/// Principal numbers of the provinces' authorities (one per province of `market.rs`).
pub const PROVINCE_TOKENS: u64 = 10;
/// Principal numbers of the verification bodies' staff (body 1 is `BODY_TOKENS + 1`).
pub const BODY_TOKENS: u64 = 50;
const INSTRUMENT: &str = "CEA2024";
const REFERENCE_FEN: i64 = 8_500;
const PLAN_2024: &str = include_str!("../../../registry/plans/2024.toml");
/// Trading days: the last week of November 2025, before the 31 December deadline.
const FIRST_DAY: u32 = 20_251_124;

/// A small deterministic generator (splitmix64).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The bearer token the demo gives principal `n` (1 ministry, 2 verifier, 3 operator,
/// 4 bank, 5 auditor; [`PROVINCE_TOKENS`] + i the i-th province's authority,
/// [`BODY_TOKENS`] + b the staff of verification body b; members and entities by account
/// id) for `seed`.
pub fn token(seed: u64, n: u64) -> String {
    let mut r = Rng(seed ^ 0x5eed_0000 ^ n.wrapping_mul(0x1000_0001));
    format!("demo-{:016x}{:016x}", r.next(), r.next())
}

fn fail(what: &str) -> impl Fn(tonic::Status) -> String + '_ {
    move |s| format!("{what}: {:?} {}", s.code(), s.message())
}

/// Runs `f` over `items` with `CONCURRENCY` requests in flight.
async fn concurrently<T, F, Fut>(items: Vec<T>, f: F) -> Result<(), String>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for item in items {
        if set.len() >= CONCURRENCY
            && let Some(done) = set.join_next().await
        {
            done.map_err(|e| e.to_string())??;
        }
        set.spawn(f(item));
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

struct Progress {
    started: Instant,
    quiet: bool,
}

impl Progress {
    fn step(&self, what: &str) {
        if !self.quiet {
            eprintln!("[{:>5.1} s] {what}", self.started.elapsed().as_secs_f64());
        }
    }
}

fn check(options: &DemoOptions) -> Result<(), String> {
    if options.entities == 0 || options.entities > DEMO_ENTITIES_MAX {
        return Err("--entities must be 1 to 10,000".into());
    }
    if options.members < 2 || options.members > 500 {
        return Err("--members must be 2 to 500".into());
    }
    if !(2..=20).contains(&options.days) {
        return Err("--days must be 2 to 20".into());
    }
    Ok(())
}

/// The data directory (and whether it is a temporary one), which must hold no market yet.
fn data_dir(options: &DemoOptions) -> Result<(PathBuf, bool), String> {
    let (data, temporary) = match &options.data {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "carbonx-demo-{}-{}",
                std::process::id(),
                options.seed
            )),
            true,
        ),
    };
    if data.join("registry").exists() {
        return Err(format!(
            "{} holds a carbonx market already: the demo needs an empty directory",
            data.display()
        ));
    }
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    Ok((data, temporary))
}

/// Principals: the ministry, a verifier, the operator, the bank, an auditor, every
/// province's authority, every verification body's staff, every member and every covered
/// entity with its own token. Returns the tokens file's path.
fn write_tokens(
    data: &Path,
    seed: u64,
    members: &[u64],
    entities: &[Entity],
) -> Result<PathBuf, String> {
    let mut tokens = String::from("# carbonx demo principals\n");
    let mut next_id = 0u64;
    let mut principal = |name: String,
                         role: &str,
                         token: String,
                         accounts: &[u64],
                         scope: String| {
        next_id += 1;
        let _ = write!(
            tokens,
            "[[principal]]\nid = {next_id}\nname = \"{name}\"\nrole = \"{role}\"\ntoken = \"{token}\"\naccounts = {accounts:?}\n{scope}\n"
        );
    };
    let none = String::new;
    principal(
        "ministry".into(),
        "authority",
        token(seed, 1),
        &[AUTHORITY],
        none(),
    );
    principal("verifier".into(), "verifier", token(seed, 2), &[], none());
    principal("operator".into(), "operator", token(seed, 3), &[], none());
    principal("bank".into(), "pledgee", token(seed, 4), &[BANK], none());
    principal("auditor".into(), "auditor", token(seed, 5), &[], none());
    for m in members {
        principal(
            format!("member-{m}"),
            "member",
            token(seed, *m),
            &[*m],
            none(),
        );
    }
    for e in entities {
        let id = e.id;
        principal(
            format!("entity-{id}"),
            "entity",
            token(seed, id),
            &[id],
            none(),
        );
    }
    for (name, role, token, scope) in scoped_principals(seed) {
        principal(name, role, token, &[], scope);
    }
    let path = data.join("demo-tokens.toml");
    std::fs::write(&path, tokens).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Every province's authority and every verification body's staff: (name, role, token,
/// the scope line of the tokens file).
fn scoped_principals(seed: u64) -> Vec<(String, &'static str, String, String)> {
    let provinces = market::PROVINCES.iter().enumerate().map(|(i, province)| {
        let n = PROVINCE_TOKENS + i as u64;
        let scope = format!("province = \"{province}\"\n");
        (format!("{province} DEE"), "province", token(seed, n), scope)
    });
    let bodies = verification::BODIES.iter().map(|(body, name)| {
        let n = BODY_TOKENS + u64::from(*body);
        let scope = format!("body = {body}\n");
        (format!("{name} staff"), "verifier", token(seed, n), scope)
    });
    provinces.chain(bodies).collect()
}

/// The embedded server: its thread, address and stop signal.
struct Embedded {
    thread: std::thread::JoinHandle<Result<(), String>>,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
}

fn start_server(
    data: &Path,
    tokens_file: PathBuf,
    clock: server::scheduler::Clock,
) -> Result<Embedded, String> {
    let config = Config {
        data_dir: data.to_path_buf(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_listen: None,
        dashboard_listen: None,
        tokens_file: Some(tokens_file),
        ..Config::default()
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("demo-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(server::server::serve_with_clock(
                config,
                clock,
                move |running| {
                    let _ = ready_tx.send(running.addr);
                },
                Some(stop_rx),
            ))
        })
        .map_err(|e| e.to_string())?;
    match ready_rx.recv_timeout(Duration::from_secs(120)) {
        Ok(addr) => Ok(Embedded { thread, addr, stop }),
        Err(_) => {
            let why = thread
                .join()
                .map_err(|_| "panicked".to_string())
                .and_then(|r| r);
            Err(format!("the embedded server did not start: {why:?}"))
        }
    }
}

/// Plays the year; returns the report.
pub fn run(options: &DemoOptions, quiet: bool) -> Result<String, String> {
    check(options)?;
    let progress = Progress {
        started: Instant::now(),
        quiet,
    };
    let (data, temporary) = data_dir(options)?;
    let entities = market::market(options.seed, options.entities)?;
    let members: Vec<u64> = (0..options.members as u64)
        .map(|n| FIRST_MEMBER + n)
        .collect();
    let tokens_file = write_tokens(&data, options.seed, &members, &entities)?;
    let clock = calendar::DemoClock::new();
    let server = start_server(&data, tokens_file, clock.server_clock())?;
    progress.step(&format!(
        "embedded carbonx server on {}, data in {}",
        server.addr,
        data.display()
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(year::play(
        server.addr,
        options,
        &entities,
        &members,
        &progress,
        clock,
    ));
    let _ = server.stop.send(());
    let stopped = server
        .thread
        .join()
        .map_err(|_| "the server panicked".to_string())?;
    if temporary {
        let _ = std::fs::remove_dir_all(&data);
    }
    let report = result?;
    stopped.map_err(|e| format!("server: {e}"))?;
    progress.step("done");
    Ok(report)
}
