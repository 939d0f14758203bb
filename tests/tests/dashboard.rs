//! The web dashboard in a real browser: the server runs on the data the demo leaves behind,
//! headless Chromium (Debian's `chromium`, installed by `.ci/setup`) loads every page, and
//! the key figures on the pages must equal what the gRPC API answers (a sector's total
//! shortfall, an entity's allocation, the best bid, pledges outstanding, the trading date).
//! A page without a token is refused, a role the table does not allow is refused. A
//! screenshot of each page is saved (to `$CARBONX_SCREENSHOTS_DIR` when set, which is how
//! `docs/screenshots/` is refreshed; otherwise to the test's temporary directory).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::config::Config;
use gateway::demo::{DemoOptions, token};
use proto::v1 as pb;
use tests::*;

const SEED: u64 = 21;
const MINISTRY: u64 = 1;
const OPERATOR: u64 = 3;
const BANK_PRINCIPAL: u64 = 4;
const AUDITOR: u64 = 5;
const MEMBER: u64 = 5_001;
const ENTITY: u64 = 10_001;

fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "headless Chromium is needed for the dashboard test: run .ci/setup, or `sudo apt-get install -y chromium`"
    );
}

fn browser(args: &[&str], url: &str) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--timeout=2500",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("chromium: {e}"));
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The page's DOM after its scripts ran.
fn dom(url: &str) -> String {
    String::from_utf8(browser(&["--window-size=1280,1000", "--dump-dom"], url))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn screenshot(url: &str, path: &Path, width: u32) {
    let _ = std::fs::remove_file(path);
    browser(
        &[
            &format!("--window-size={width},1400"),
            &format!("--screenshot={}", path.display()),
        ],
        url,
    );
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "{} is {size} bytes", path.display());
}

/// `data-value` of the element with `data-key=key`.
fn value(dom: &str, key: &str) -> i128 {
    let marker = format!("data-key=\"{key}\" data-value=\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {key} on the page:\n{}", &dom[..dom.len().min(3000)]))
        + marker.len();
    let end = start + dom[start..].find('"').unwrap_or(0);
    dom[start..end]
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// Status line of a plain HTTP GET (no browser, no token).
fn http_status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn clients(channel: &tonic::transport::Channel, n: u64) -> Clients {
    Clients::new(channel.clone(), Some(&token(SEED, n)))
}

#[test]
fn every_page_in_a_real_browser_shows_the_figures_the_api_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("market");
    gateway::demo::run(
        &DemoOptions {
            seed: SEED,
            data: Some(data.clone()),
            entities: 200,
            members: 8,
            days: 2,
        },
        true,
    )
    .unwrap_or_else(|e| panic!("demo: {e}"));
    let config = Config {
        data_dir: data.clone(),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        metrics_listen: None,
        dashboard_listen: Some("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"))),
        tokens_file: Some(data.join("demo-tokens.toml")),
        ..Config::default()
    };
    let server = TestServer::start_with(config);
    let web = server.dashboard.unwrap_or_else(|| panic!("no dashboard"));
    let shots = std::env::var("CARBONX_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{e}"));

    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (book, totals, entity, pledged, status) = runtime.block_on(async {
        let channel = server.channel().await;
        // A new day with a live bid, so the book has something to show.
        let mut ops = clients(&channel, OPERATOR);
        ops.admin
            .open_trading_day(pb::OpenTradingDayRequest {
                trading_date: 20_251_201,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ops.admin
            .set_phase(pb::SetPhaseRequest {
                phase: pb::Phase::Continuous as i32,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut member = clients(&channel, MEMBER);
        for (n, (price, q)) in [(8_101i64, 1_500u64), (8_055, 700)].into_iter().enumerate() {
            member
                .trading
                .place_order(pb::PlaceOrderRequest {
                    account_id: MEMBER,
                    client_order_id: 900_000 + n as u64,
                    instrument: "CEA2024".into(),
                    side: pb::Side::Buy as i32,
                    order_type: pb::OrderType::Limit as i32,
                    time_in_force: pb::TimeInForce::Day as i32,
                    price_fen: price,
                    quantity_t: q,
                    post_only: false,
                })
                .await
                .unwrap_or_else(|e| panic!("bid: {e}"));
        }
        let mut auditor = clients(&channel, AUDITOR);
        let book = auditor
            .market
            .get_book(pb::GetBookRequest {
                instrument: "CEA2024".into(),
                depth: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        let totals = clients(&channel, MINISTRY)
            .compliance
            .get_totals(pb::GetTotalsRequest {
                year: 2024,
                by: pb::TotalsBy::Sector as i32,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner()
            .rows;
        let entity = clients(&channel, MINISTRY)
            .compliance
            .get_compliance(pb::GetComplianceRequest {
                year: 2024,
                account_id: ENTITY,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        let pledged: u64 = clients(&channel, BANK_PRINCIPAL)
            .registry
            .list_pledges(pb::ListPledgesRequest {
                pledgee_account_id: 900,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner()
            .pledges
            .iter()
            .filter(|p| p.state == "REGISTERED")
            .map(|p| p.quantity_t)
            .sum();
        let status = auditor
            .market
            .get_market_status(pb::GetMarketStatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        (book, totals, entity, pledged, status)
    });

    let ministry = token(SEED, MINISTRY);
    let url = |path: &str, t: &str| {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("http://{web}{path}{sep}token={t}")
    };

    // Market: the best bid on the page is the API's.
    let market = dom(&url("/market?instrument=CEA2024", &ministry));
    assert_eq!(
        value(&market, "best-bid"),
        i128::from(book.bids[0].price_fen)
    );
    assert_eq!(book.bids[0].price_fen, 8_101);
    // The demo's trades are on the page after the restart (the history is rebuilt).
    assert!(value(&market, "recent-trades") > 0);
    assert_eq!(
        value(&market, "trading-date"),
        i128::from(status.trading_date)
    );
    screenshot(
        &url("/market?instrument=CEA2024", &ministry),
        &shots.join("market.png"),
        1280,
    );

    // Compliance: every sector's shortfall and penalties; the table pages the entities.
    let compliance = dom(&url("/compliance?year=2024", &ministry));
    assert_eq!(totals.len(), 4);
    for t in &totals {
        assert_eq!(
            value(&compliance, &format!("shortfall-{}", t.key)),
            i128::from(t.shortfall_t),
            "{}",
            t.key
        );
        assert_eq!(
            value(&compliance, &format!("penalty-{}", t.key)),
            i128::from(t.penalty_fen)
        );
    }
    assert_eq!(value(&compliance, "entities-total"), 200);
    assert!(compliance.contains(">next</a>"), "the table pages");
    screenshot(
        &url("/compliance?year=2024", &ministry),
        &shots.join("compliance.png"),
        1280,
    );
    screenshot(
        &url("/compliance?year=2024&order=shortfall", &ministry),
        &shots.join("compliance-phone.png"),
        390,
    );

    // One entity: its allocation as computed, with the explanation.
    let page = dom(&url(&format!("/entity/{ENTITY}?year=2024"), &ministry));
    assert_eq!(value(&page, "allocated"), i128::from(entity.allocated_t));
    assert_eq!(value(&page, "obligation"), i128::from(entity.obligation_t));
    assert!(page.contains("Qe x Be x Ff"), "the explanation is shown");
    screenshot(
        &url(&format!("/entity/{ENTITY}?year=2024"), &ministry),
        &shots.join("entity.png"),
        1280,
    );
    // The entity itself may see its own page, not another's, nor the sector table.
    let own = token(SEED, ENTITY);
    assert_eq!(
        http_status(web, &format!("/entity/{ENTITY}?year=2024"), Some(&own)),
        200
    );
    assert_eq!(http_status(web, "/entity/10002?year=2024", Some(&own)), 403);
    assert_eq!(http_status(web, "/compliance", Some(&own)), 403);

    // Registry: pledges outstanding by pledgee.
    let auditor = token(SEED, AUDITOR);
    let registry = dom(&url("/registry", &auditor));
    assert_eq!(value(&registry, "pledged-900"), i128::from(pledged));
    screenshot(
        &url("/registry?q=power", &auditor),
        &shots.join("registry.png"),
        1280,
    );

    // Operations: the trading day the engine reports.
    let operator = token(SEED, OPERATOR);
    let operations = dom(&url("/operations", &operator));
    assert_eq!(value(&operations, "trading-date"), 20_251_201);
    // With sync durability the journal is durable through every command the engine has
    // applied (read after the engine's sequence, so at least that), and settlement never
    // passes it.
    let durable = value(&operations, "journal-durable");
    assert!(durable >= value(&operations, "sequence") && durable > 0);
    assert!(value(&operations, "settled") <= durable);
    screenshot(
        &url("/operations", &operator),
        &shots.join("operations.png"),
        1280,
    );

    // Without a token: refused, in the browser and on the wire.
    let anonymous = dom(&format!("http://{web}/market"));
    assert!(anonymous.contains("data-value=\"NO_TOKEN\""), "{anonymous}");
    for path in [
        "/market",
        "/compliance",
        "/registry",
        "/operations",
        "/entity/10001",
    ] {
        assert_eq!(http_status(web, path, None), 401, "{path}");
        assert_eq!(
            http_status(web, path, Some("not-a-token-at-all")),
            401,
            "{path}"
        );
    }
    // A member sees the market but not the ministry's pages.
    let member = token(SEED, MEMBER);
    assert_eq!(http_status(web, "/market", Some(&member)), 200);
    assert_eq!(http_status(web, "/operations", Some(&member)), 403);
    drop(server);
}
