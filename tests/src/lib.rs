//! Test helpers for the end-to-end tests under `tests/tests/`: start the real server (the
//! same `server::server::serve` that `carbonx serve` runs, on its own runtime and threads,
//! listening on 127.0.0.1:0 with a temporary data directory) and talk to it with the
//! generated tonic clients.

pub mod steel;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use proto::v1 as pb;
use server::config::Config;
use tonic::Status;
use tonic::transport::Channel;

pub use client::{
    AdminServiceClient, AuctionServiceClient, Authed, Bearer, Clients, ComplianceServiceClient,
    MarketDataServiceClient, RegistryServiceClient, TradingServiceClient,
};

/// Account ids of the test market.
pub const AUTHORITY: u64 = 1;
pub const RETIREMENT: u64 = 2;
pub const CANCELLATION: u64 = 3;
pub const M1: u64 = 101;
pub const M2: u64 = 102;
pub const M3: u64 = 103;
pub const E1: u64 = 201;
pub const BANK: u64 = 301;

/// (principal, role, token, accounts) of the test tokens file.
pub const PRINCIPALS: &[(&str, &str, &str, &[u64])] = &[
    (
        "ministry",
        "authority",
        "token-authority-0001",
        &[AUTHORITY],
    ),
    ("verifier", "verifier", "token-verifier-0001", &[]),
    ("m1", "member", "token-member-m1-0001", &[M1]),
    ("m2", "member", "token-member-m2-0001", &[M2]),
    ("m3", "member", "token-member-m3-0001", &[M3]),
    ("e1", "entity", "token-entity-e1-0001", &[E1]),
    ("bank", "pledgee", "token-pledgee-0001", &[BANK]),
    ("ops", "operator", "token-operator-0001", &[]),
    ("audit", "auditor", "token-auditor-0001", &[]),
    // Provinces and verification bodies' staff: their province or body is in
    // `SCOPING`.
    ("hebei", "province", "token-province-hebei-01", &[]),
    ("shanxi", "province", "token-province-shanxi-01", &[]),
    ("cec", "verifier", "token-verifier-cec-0001", &[]),
    ("cbd", "verifier", "token-verifier-cbd-0001", &[]),
];

/// Verification bodies of the test market (the ids the `SCOPING` lines name).
pub const CEC_BODY: u32 = 1;
pub const CBD_BODY: u32 = 3;

/// The province or body line of the principals that have one.
pub const SCOPING: &[(&str, &str)] = &[
    ("hebei", "province = \"Hebei\""),
    ("shanxi", "province = \"Shanxi\""),
    ("cec", "body = 1"),
    ("cbd", "body = 3"),
];

pub fn token(name: &str) -> &'static str {
    PRINCIPALS
        .iter()
        .find(|p| p.0 == name)
        .map(|p| p.2)
        .unwrap_or_else(|| panic!("no principal {name}"))
}

/// A server running in this process on its own runtime.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    /// The metrics endpoint, when the configuration turned it on.
    pub metrics: Option<SocketAddr>,
    /// The web dashboard, when the configuration turned it on.
    pub dashboard: Option<SocketAddr>,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

pub fn write_tokens(path: &Path) {
    let mut text = String::new();
    for (n, (name, role, token, accounts)) in PRINCIPALS.iter().enumerate() {
        let id = n + 1;
        text.push_str(&format!(
            "[[principal]]\nid = {id}\nname = \"{name}\"\nrole = \"{role}\"\ntoken = \"{token}\"\naccounts = {accounts:?}\n"
        ));
        if let Some((_, line)) = SCOPING.iter().find(|(who, _)| who == name) {
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("tokens: {e}"));
}

/// The configuration tests use: loopback port 0, no metrics port, the test tokens.
pub fn test_config(data: &Path) -> Config {
    let tokens = data.join("test-tokens.toml");
    std::fs::create_dir_all(data).unwrap_or_else(|e| panic!("{e}"));
    write_tokens(&tokens);
    Config {
        data_dir: data.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        metrics_listen: None,
        dashboard_listen: None,
        tokens_file: Some(tokens),
        // Each test server would write a 64 MiB spare segment; the journal's own tests
        // and the crash test cover preallocation.
        journal_preallocate: false,
        ..Config::default()
    }
}

impl TestServer {
    /// A fresh server on a new temporary data directory.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = test_config(dir.path());
        let mut server = TestServer::start_with(config);
        server._dir = Some(dir);
        server
    }

    pub fn start_with(config: Config) -> TestServer {
        TestServer::start_with_clock(config, server::scheduler::Clock::system())
    }

    /// A fresh server whose wall clock reads `now_ns` (UTC nanoseconds), which the test moves.
    pub fn start_at(now_ns: std::sync::Arc<std::sync::atomic::AtomicU64>) -> TestServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clock = server::scheduler::Clock::from_fn(move || {
            now_ns.load(std::sync::atomic::Ordering::SeqCst)
        });
        let mut server = TestServer::start_with_clock(test_config(dir.path()), clock);
        server._dir = Some(dir);
        server
    }

    /// A server whose calendar reads `clock`.
    pub fn start_with_clock(config: Config, clock: server::scheduler::Clock) -> TestServer {
        let data = config.data_dir.clone();
        let dashboard_listen = config.dashboard_listen;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(
                    std::env::var("CARBONX_TEST_WORKERS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(2),
                )
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(server::server::serve_with_clock(
                config,
                clock,
                move |running| {
                    // As `carbonx serve` does: the dashboard beside the server, on its state.
                    let dashboard = dashboard_listen.map(|addr| {
                        dashboard::start(addr, running.ctx.clone())
                            .unwrap_or_else(|e| panic!("dashboard: {e}"))
                    });
                    let _ = ready_tx.send((running.addr, running.metrics_addr, dashboard));
                },
                Some(stop_rx),
            ))
        });
        let (addr, metrics, dashboard) =
            match ready_rx.recv_timeout(std::time::Duration::from_secs(120)) {
                Ok(ready) => ready,
                Err(_) => {
                    let result = thread.join();
                    panic!("the server did not start: {result:?}");
                }
            };
        TestServer {
            addr,
            metrics,
            dashboard,
            data,
            _dir: None,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap_or_else(|e| panic!("{e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(mut self) -> Result<(), String> {
        self.shutdown()
    }

    /// Stops the server and returns its temporary directory (if it made one), so the data
    /// can be opened again by another server.
    pub fn stop_keep_dir(mut self) -> Option<tempfile::TempDir> {
        if let Err(e) = self.shutdown() {
            panic!("stop: {e}");
        }
        self._dir.take()
    }

    fn shutdown(&mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| "server thread panicked".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `Clients` of the test principals, by name (`"m1"`, `"ops"`...).
pub trait Principals: Sized {
    /// Clients of an in-process server.
    fn of(server: &TestServer, principal: &str) -> impl Future<Output = Self> + Send;
    /// Clients of a server at `addr` (e.g. one running in a child process).
    fn at(
        addr: SocketAddr,
        principal: &str,
    ) -> impl Future<Output = Result<Self, tonic::transport::Error>> + Send;
}

impl Principals for Clients {
    async fn of(server: &TestServer, principal: &str) -> Clients {
        Clients::new(server.channel().await, Some(token(principal)))
    }

    async fn at(addr: SocketAddr, principal: &str) -> Result<Clients, tonic::transport::Error> {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .connect()
            .await?;
        Ok(Clients::new(channel, Some(token(principal))))
    }
}

/// The reason code in a status.
pub fn reason(status: &Status) -> String {
    client::rejection_of(status)
        .map(|r| r.reason)
        .unwrap_or_default()
}

pub fn field(status: &Status) -> String {
    client::rejection_of(status)
        .map(|r| r.field)
        .unwrap_or_default()
}

/// Opens the test market: accounts, the CEA2025 instrument, allowances for the members
/// and the entity at the exchange, funds; leaves the day open in continuous trading.
pub async fn open_market(server: &TestServer) {
    open_market_at(server.addr).await;
}

/// `open_market` for a server at `addr`.
pub async fn open_market_at(addr: SocketAddr) {
    let of = |name: &'static str| async move {
        Clients::at(addr, name)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    };
    let ministry = of("ministry").await;
    let ops = of("ops").await;
    let mut reg = ministry.registry.clone();
    let accounts = [
        (
            AUTHORITY,
            pb::AccountType::NationalAuthority,
            pb::Sector::Unspecified,
            "Ministry",
        ),
        (
            RETIREMENT,
            pb::AccountType::Retirement,
            pb::Sector::Unspecified,
            "Retirement",
        ),
        (
            CANCELLATION,
            pb::AccountType::Cancellation,
            pb::Sector::Unspecified,
            "Cancellation",
        ),
        (
            M1,
            pb::AccountType::MemberFirm,
            pb::Sector::Unspecified,
            "Member One",
        ),
        (
            M2,
            pb::AccountType::MemberFirm,
            pb::Sector::Unspecified,
            "Member Two",
        ),
        (
            M3,
            pb::AccountType::MemberFirm,
            pb::Sector::Unspecified,
            "Member Three",
        ),
        (
            E1,
            pb::AccountType::CoveredEntity,
            pb::Sector::Power,
            "Power Plant One",
        ),
        (
            BANK,
            pb::AccountType::Pledgee,
            pb::Sector::Unspecified,
            "Bank",
        ),
    ];
    for (id, t, s, name) in accounts {
        reg.open_account(pb::OpenAccountRequest {
            idempotency_key: format!("open-{id}"),
            account_id: id,
            account_type: t as i32,
            sector: s as i32,
            name: name.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("open {id}: {e}"));
    }
    let mut admin = ops.admin.clone();
    admin
        .create_instrument(pb::CreateInstrumentRequest {
            vintage: 2025,
            reference_price_fen: 8_500,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("instrument: {e}"));
    supply(
        addr,
        &Supply {
            tag: "",
            issue_t: 10_000_000,
            transfer_t: |n| 100_000 + n as u64,
            deposit_t: 50_000,
            funds_fen: 1_000_000_000,
            funds_transfer_base: 0,
        },
    )
    .await;
    admin
        .open_trading_day(pb::OpenTradingDayRequest {
            trading_date: 20_261_130,
        })
        .await
        .unwrap_or_else(|e| panic!("open day: {e}"));
    admin
        .set_phase(pb::SetPhaseRequest {
            phase: pb::Phase::Continuous as i32,
        })
        .await
        .unwrap_or_else(|e| panic!("continuous: {e}"));
}

/// What `supply` gives the four trading accounts (M1, M2, M3, E1).
#[derive(Debug)]
pub struct Supply {
    /// Prefix of the idempotency keys, so that a second supply is not taken for a retry.
    pub tag: &'static str,
    /// Issued to the authority first.
    pub issue_t: u64,
    /// Allocated (E1) or transferred (members) from the authority, by account index.
    pub transfer_t: fn(usize) -> u64,
    /// Moved into each account's trading account.
    pub deposit_t: u64,
    /// Credited to each account (funds transfer id: the account id plus
    /// `funds_transfer_base`).
    pub funds_fen: i64,
    pub funds_transfer_base: u64,
}

/// Issues allowances, hands them to the four trading accounts, moves them to trading and
/// credits funds (the test market's supply, and the load generator's deeper one).
pub async fn supply(addr: SocketAddr, supply: &Supply) {
    let of = |name: &'static str| async move {
        Clients::at(addr, name)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    };
    let tag = supply.tag;
    let mut reg = of("ministry").await.registry;
    let mut admin = of("ops").await.admin;
    reg.issue(pb::IssueRequest {
        idempotency_key: format!("{tag}issue-2025"),
        authority_account_id: AUTHORITY,
        unit: "CEA2025".into(),
        quantity_t: supply.issue_t,
    })
    .await
    .unwrap_or_else(|e| panic!("issue: {e}"));
    for (n, to) in [M1, M2, M3, E1].into_iter().enumerate() {
        let rpc = if to == E1 { "alloc" } else { "xfer" };
        let req = pb::TransferRequest {
            idempotency_key: format!("{tag}{rpc}-{to}"),
            from_account_id: AUTHORITY,
            to_account_id: to,
            unit: "CEA2025".into(),
            quantity_t: (supply.transfer_t)(n),
        };
        if to == E1 {
            reg.allocate(req).await
        } else {
            reg.propose_transfer(req).await
        }
        .unwrap_or_else(|e| panic!("fund {to}: {e}"));
    }
    for (name, account) in [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)] {
        let mut c = of(name).await;
        c.registry
            .move_to_trading(pb::MoveRequest {
                idempotency_key: format!("{tag}deposit-{account}"),
                account_id: account,
                unit: "CEA2025".into(),
                quantity_t: supply.deposit_t,
            })
            .await
            .unwrap_or_else(|e| panic!("deposit {account}: {e}"));
        admin
            .credit_funds(pb::FundsRequest {
                transfer_id: supply.funds_transfer_base + account,
                account_id: account,
                amount_fen: supply.funds_fen,
            })
            .await
            .unwrap_or_else(|e| panic!("credit {account}: {e}"));
    }
}

pub fn limit(
    account: u64,
    client_order_id: u64,
    side: pb::Side,
    price_fen: i64,
    quantity_t: u64,
) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        account_id: account,
        client_order_id,
        instrument: "CEA2025".into(),
        side: side as i32,
        order_type: pb::OrderType::Limit as i32,
        time_in_force: pb::TimeInForce::Day as i32,
        price_fen,
        quantity_t,
        post_only: false,
    }
}

/// E1 as a covered entity: "Power Plant One", one 600 MW coal unit (facility 1), Hebei,
/// no credit code.
pub fn power_plant_row() -> pb::EntityRow {
    pb::EntityRow {
        account_id: E1,
        name: "Power Plant One".into(),
        sector: pb::Sector::Power as i32,
        province: "Hebei".into(),
        differentiated: false,
        facilities: vec![pb::Facility {
            facility_id: 1,
            kind: pb::FacilityKind::GeneratingUnit as i32,
            fuel: pb::Fuel::Coal as i32,
            capacity_mw: 600,
            product_line: String::new(),
            process: 0,
        }],
        credit_code: String::new(),
    }
}

/// SplitMix64: small, seeded, deterministic; seeds print on failure.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `registry/plans/<name>` of this workspace. The directory comes from the environment
/// cargo sets when it runs the test (a binary built in another checkout sharing the build
/// cache has that checkout's path compiled in), falling back to the one compiled in.
pub fn plan_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&dir).join("../registry/plans").join(name)
}

/// Opens `account`'s execution reports from the server's history: after the stream
/// position `after` (sequence, event index), or from the oldest kept.
pub async fn executions(
    c: &mut Clients,
    account: u64,
    after: Option<(u64, u32)>,
) -> Result<tonic::Streaming<pb::ExecutionReport>, Status> {
    c.trading
        .stream_executions(pb::StreamExecutionsRequest {
            account_id: account,
            after: after.map(|(sequence, index)| pb::StreamPosition { sequence, index }),
            from_now: false,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An account's registry holding of CEA2025 (all zero when it holds none).
pub async fn cea2025_holding(c: &mut Clients, account: u64) -> pb::Holding {
    holdings(c, account)
        .await
        .into_iter()
        .find(|h| h.unit == "CEA2025")
        .unwrap_or_default()
}

/// Everything an account holds in the registry: every unit, available + trading + frozen.
pub async fn held_t(c: &mut Clients, account: u64) -> u64 {
    holdings(c, account)
        .await
        .iter()
        .map(|h| h.registry_available_t + h.trading_t + h.frozen_t)
        .sum()
}

async fn holdings(c: &mut Clients, account: u64) -> Vec<pb::Holding> {
    c.registry
        .get_holdings(pb::GetHoldingsRequest {
            account_id: account,
        })
        .await
        .unwrap_or_else(|e| panic!("holdings of {account}: {e}"))
        .into_inner()
        .holdings
}

/// Reconcile (engine against registry); `ctx` names the caller if the call fails.
pub async fn reconcile(audit: &mut Clients, ctx: &str) -> pb::ReconcileReply {
    audit
        .admin
        .reconcile(pb::ReconcileRequest {})
        .await
        .unwrap_or_else(|e| panic!("{ctx}: reconcile: {e}"))
        .into_inner()
}

/// VerifyJournal (the registry's hash chain); `ctx` names the caller if the call fails.
pub async fn verify_journal(audit: &mut Clients, ctx: &str) -> pb::VerifyJournalReply {
    audit
        .registry
        .verify_journal(pb::VerifyJournalRequest {})
        .await
        .unwrap_or_else(|e| panic!("{ctx}: verify journal: {e}"))
        .into_inner()
}

/// Reconcile (engine against registry) is clean.
pub async fn assert_reconciled(audit: &mut Clients) {
    let rec = reconcile(audit, "audit").await;
    assert!(rec.clean, "{rec:?}");
}

/// The auditor's two checks: Reconcile is clean and the registry journal verifies.
pub async fn assert_audit_clean(audit: &mut Clients) {
    assert_reconciled(audit).await;
    let verify = verify_journal(audit, "audit").await;
    assert!(verify.ok, "{}", verify.problem);
}

/// The live orders of an account (every instrument).
pub async fn live_orders(c: &mut Clients, account: u64) -> Vec<pb::Order> {
    c.trading
        .list_orders(pb::ListOrdersRequest {
            account_id: account,
            instrument: String::new(),
            include_closed: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .orders
}

/// A server in a child process of the test binary (re-executed), to be SIGKILLed: no
/// destructor, no flush, no shutdown snapshot. The test binary must have a test named
/// `child_entry_point` that calls [`run_child_if_asked`].
#[derive(Debug)]
pub struct ChildServer {
    child: std::process::Child,
    pub addr: SocketAddr,
}

const CHILD_DATA: &str = "CARBONX_TEST_CHILD_DATA";
const CHILD_SNAPSHOT_EVERY: &str = "CARBONX_TEST_CHILD_SNAPSHOT_EVERY";

/// In the child (when the environment says so): serves `test_config` on the data
/// directory until killed, with `snapshot_every` from the environment.
pub fn run_child_if_asked() {
    let Ok(data) = std::env::var(CHILD_DATA) else {
        return;
    };
    let data = PathBuf::from(data);
    let mut config = test_config(&data);
    if let Some(every) = std::env::var(CHILD_SNAPSHOT_EVERY)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.snapshot_every = every;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let addr_file = data.join("addr");
    let result = runtime.block_on(server::server::serve(
        config,
        move |running| {
            let tmp = addr_file.with_extension("tmp");
            std::fs::write(&tmp, running.addr.to_string()).unwrap_or_else(|e| panic!("{e}"));
            std::fs::rename(&tmp, &addr_file).unwrap_or_else(|e| panic!("{e}"));
        },
        None,
    ));
    if let Err(e) = result {
        eprintln!("child server failed: {e}");
        std::process::exit(3);
    }
}

impl ChildServer {
    /// Starts the child on `data` and waits for its address.
    pub fn start(data: &Path, snapshot_every: u64) -> ChildServer {
        let _ = std::fs::remove_file(data.join("addr"));
        std::fs::create_dir_all(data).unwrap_or_else(|e| panic!("{e}"));
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "child_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DATA, data)
            .env(CHILD_SNAPSHOT_EVERY, snapshot_every.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let started = std::time::Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(data.join("addr"))
                && let Ok(addr) = text.parse()
            {
                return ChildServer { child, addr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the child server exited: {status}");
            }
            if started.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child server did not start");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGKILL: nothing of the shutdown path runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server on `config` in this process and returns why it would not serve.
pub fn refused_start(config: Config) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // Were it to serve, it stops again at once.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let on_ready = move |_: &server::server::Running| {
        let _ = stop_tx.send(());
    };
    std::thread::spawn(move || {
        runtime.block_on(server::server::serve(config, on_ready, Some(stop_rx)))
    })
    .join()
    .unwrap_or_else(|_| panic!("the server panicked"))
    .err()
    .unwrap_or_else(|| panic!("the server served instead of refusing"))
}
