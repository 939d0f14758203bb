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

use gateway::demo::{DemoOptions, token};
use proto::v1 as pb;
use server::config::Config;
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

/// A headless Chromium profile logged in as one principal: the dashboard takes tokens
/// only through its login form (never in a URL), so the profile posts the form once, from
/// a page that submits itself, and keeps the session cookie for the pages after.
struct Browser {
    profile: tempfile::TempDir,
}

impl Browser {
    fn login(web: SocketAddr, token: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let page = profile.path().join("login.html");
        std::fs::write(
            &page,
            format!(
                "<form method=post action=\"http://{web}/login\"><input name=token value=\"{token}\">\
                 <input name=next value=\"/market\"></form><script>document.forms[0].submit()</script>"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let b = Browser { profile };
        let landed = b.dom(&format!("file://{}", page.display()));
        assert!(
            !landed.contains("data-value=\"BAD_TOKEN\""),
            "login refused:\n{landed}"
        );
        b
    }

    /// The page's DOM after its scripts ran.
    fn dom(&self, url: &str) -> String {
        String::from_utf8(browser(
            self.profile.path(),
            &["--window-size=1280,1000", "--dump-dom"],
            url,
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn screenshot(&self, url: &str, path: &Path, width: u32) {
        let _ = std::fs::remove_file(path);
        browser(
            self.profile.path(),
            &[
                &format!("--window-size={width},1400"),
                &format!("--screenshot={}", path.display()),
            ],
            url,
        );
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is {size} bytes", path.display());
    }
}

fn browser(profile: &Path, args: &[&str], url: &str) -> Vec<u8> {
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
        .arg(format!(
            "--user-data-dir={}",
            profile.join("chromium").display()
        ))
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

/// A plain HTTP request (no browser): the status and the response's head.
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    s.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_lowercase();
    (status, head)
}

/// Status of a plain HTTP GET, with the token as a bearer header when given.
fn http_status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"),
    )
    .0
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
        let outstanding: Vec<pb::Pledge> = clients(&channel, BANK_PRINCIPAL)
            .registry
            .list_pledges(pb::ListPledgesRequest {
                pledgee_account_id: 900,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner()
            .pledges
            .into_iter()
            .filter(|p| p.state == "REGISTERED")
            .collect();
        let pledged = (
            outstanding.iter().map(|p| p.quantity_t).sum::<u64>(),
            outstanding.first().map(|p| (p.pledge_id, p.secured_fen)),
        );
        let status = auditor
            .market
            .get_market_status(pb::GetMarketStatusRequest {})
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        (book, totals, entity, pledged, status)
    });

    let ministry = Browser::login(web, &token(SEED, MINISTRY));
    let url = |path: &str| format!("http://{web}{path}");

    // Market: the best bid on the page is the API's.
    let market = ministry.dom(&url("/market?instrument=CEA2024"));
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
    ministry.screenshot(
        &url("/market?instrument=CEA2024"),
        &shots.join("market.png"),
        1280,
    );

    // Compliance: every sector's shortfall and penalties; the table pages the entities.
    let compliance = ministry.dom(&url("/compliance?year=2024"));
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
    ministry.screenshot(
        &url("/compliance?year=2024"),
        &shots.join("compliance.png"),
        1280,
    );
    ministry.screenshot(
        &url("/compliance?year=2024&order=shortfall"),
        &shots.join("compliance-phone.png"),
        390,
    );

    // One entity: its allocation as computed, with the explanation.
    let page = ministry.dom(&url(&format!("/entity/{ENTITY}?year=2024")));
    assert_eq!(value(&page, "allocated"), i128::from(entity.allocated_t));
    assert_eq!(value(&page, "obligation"), i128::from(entity.obligation_t));
    assert!(page.contains("Qe x Be x Ff"), "the explanation is shown");
    ministry.screenshot(
        &url(&format!("/entity/{ENTITY}?year=2024")),
        &shots.join("entity.png"),
        1280,
    );
    // A steel works (the first after the 118 power companies of 200): how its emissions
    // were computed from its deposits, next to its allocation; the total is its obligation.
    let steel = ministry.dom(&url("/entity/10119?year=2024"));
    assert!(steel.contains("How the emissions were computed"), "{steel}");
    assert!(
        steel.contains("CETS-AG-03.01-V01-2024 / steel-2024.1"),
        "{steel}"
    );
    // Its verification file had an estimated month, so the figure is the conclusion's.
    assert!(
        steel.contains("(the verification's conclusion, notified by the province)"),
        "{steel}"
    );
    assert!(steel.contains("ironmaking 1 (ironmaking)"), "{steel}");
    assert!(steel.contains("tC/GJ x 44/12 = "), "{steel}");
    ministry.screenshot(
        &url("/entity/10119?year=2024"),
        &shots.join("entity-steel.png"),
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
    let auditor = Browser::login(web, &token(SEED, AUDITOR));
    let registry = auditor.dom(&url("/registry"));
    assert_eq!(value(&registry, "pledged-900"), i128::from(pledged.0));
    // Each outstanding pledge shows the loan it secures, in yuan.
    let (first, secured_fen) = pledged
        .1
        .unwrap_or_else(|| panic!("the demo keeps pledges"));
    let shown = format!(
        "data-key=\"secured-{first}\">{}</td>",
        client::money::money(secured_fen as i64)
    );
    assert!(registry.contains(&shown), "{shown} missing");
    auditor.screenshot(&url("/registry?q=power"), &shots.join("registry.png"), 1280);

    // Operations: the trading day the engine reports.
    let operator = Browser::login(web, &token(SEED, OPERATOR));
    let operations = operator.dom(&url("/operations"));
    assert_eq!(value(&operations, "trading-date"), 20_251_201);
    assert!(
        operations.contains(">2025-12-01<"),
        "dates read as 2025-12-01"
    );
    // With sync durability the journal is durable through every command the engine has
    // applied (read after the engine's sequence, so at least that), and settlement never
    // passes it.
    let durable = value(&operations, "journal-durable");
    assert!(durable >= value(&operations, "sequence") && durable > 0);
    assert!(value(&operations, "settled") <= durable);
    operator.screenshot(&url("/operations"), &shots.join("operations.png"), 1280);

    // Without a token: refused, in the browser and on the wire.
    let anonymous = Browser {
        profile: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
    }
    .dom(&format!("http://{web}/market"));
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
    security(web, &token(SEED, MINISTRY), &member);
    drop(server);
}

/// Tokens travel only in the login form's body and the session cookie; every page says
/// how it may be used; one principal's live streams are capped.
fn security(web: SocketAddr, ministry: &str, member: &str) {
    // A token in the URL no longer opens a page (it would sit in history and logs).
    assert_eq!(
        http_status(web, &format!("/market?token={ministry}"), None),
        401
    );
    // Logging in: a session cookie, HttpOnly, SameSite=Strict, with an expiry (not Secure
    // on this plaintext server); a wrong token gets the form again.
    let body = format!("token={ministry}&next=%2Fcompliance");
    let (status, head) = http(
        web,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /compliance"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    for part in ["httponly", "samesite=strict", "max-age=28800", "path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("secure"), "{cookie}");
    let bad = "token=not-a-token-at-all";
    let (status, _) = http(
        web,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{bad}",
            bad.len()
        ),
    );
    assert_eq!(status, 401);
    // A login never sends the browser off the dashboard.
    let away = format!("token={ministry}&next=%2F%2Fevil.example%2F");
    let (_, head) = http(
        web,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{away}",
            away.len()
        ),
    );
    assert!(head.contains("location: /market"), "{head}");
    // Every page: its policy, no framing, no sniffing, not cached (holdings).
    let (status, head) = http(
        web,
        &format!(
            "GET /registry HTTP/1.1\r\nHost: localhost\r\nCookie: carbonx_token={ministry}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{head}");
    for line in [
        "content-security-policy: default-src 'none'; script-src 'self';",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
    ] {
        assert!(head.contains(line), "{line} missing from:\n{head}");
    }
    // At most `streams_per_principal` (32 by default) live market streams per principal.
    let stream = format!(
        "GET /market/stream?instrument=CEA2024 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {member}\r\n\r\n"
    );
    let mut open = Vec::new();
    for n in 0..32 {
        let mut s = std::net::TcpStream::connect(web).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(stream.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut first = [0u8; 12];
        s.read_exact(&mut first)
            .unwrap_or_else(|e| panic!("stream {n}: {e}"));
        assert_eq!(&first, b"HTTP/1.1 200", "stream {n}");
        open.push(s);
    }
    let (status, _) = http(
        web,
        &format!("{}Connection: close\r\n\r\n", &stream[..stream.len() - 2]),
    );
    assert_eq!(status, 429, "the 33rd stream of one principal");
    drop(open);
}
