//! The operator CLI (`carbonx ctl ...`) against the real server: the text it prints and
//! the refusals it reports.

use gateway::ctl::{Connection, Ctl, run};
use tests::*;

fn as_(server: &TestServer, principal: &str) -> Connection {
    Connection {
        addr: format!("http://{}", server.addr),
        token: token(principal).to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_day_from_the_command_line() {
    let server = TestServer::start();
    open_market(&server).await;
    let ops = as_(&server, "ops");
    let m1 = as_(&server, "m1");
    let m2 = as_(&server, "m2");

    let status = run(&ops, &Ctl::Status)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.contains("trading date 2026-11-30  phase continuous"),
        "{status}"
    );
    assert!(
        status.contains("CEA2025    reference    85.00  band    76.50 - 93.50"),
        "{status}"
    );

    let out = run(
        &ops,
        &Ctl::Credit {
            account: M1,
            amount: "1000.50".into(),
            transfer: 777,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.starts_with("credited 1000.50 yuan to account 101"),
        "{out}"
    );

    let sell = run(
        &m1,
        &Ctl::Place {
            account: M1,
            side: "sell".into(),
            instrument: "CEA2025".into(),
            quantity: 300,
            price: "85.42".into(),
            client_order_id: 1,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(sell.contains("filled 0 t, resting 300 t"), "{sell}");
    let buy = run(
        &m2,
        &Ctl::Place {
            account: M2,
            side: "buy".into(),
            instrument: "CEA2025".into(),
            quantity: 100,
            price: "85.5".into(),
            client_order_id: 1,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        buy.contains("filled 100 t, resting 0 t") && buy.contains("100 t at 85.42"),
        "{buy}"
    );

    let book = run(
        &ops,
        &Ctl::Book {
            instrument: "CEA2025".into(),
            depth: 5,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        book.lines()
            .any(|l| l.contains("| 85.42      1        200")),
        "{book}"
    );

    // A refusal is reported with its reason code and field.
    let err = run(
        &m2,
        &Ctl::Place {
            account: M2,
            side: "buy".into(),
            instrument: "CEA2025".into(),
            quantity: 1,
            price: "99.99".into(),
            client_order_id: 2,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        "refused: PRICE_OUTSIDE_BAND (field price_fen): price outside today's band"
    );
    let err = run(
        &m2,
        &Ctl::Credit {
            account: M2,
            amount: "1".into(),
            transfer: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("refused: ROLE_NOT_ALLOWED"), "{err}");
    let err = run(
        &ops,
        &Ctl::Credit {
            account: M2,
            amount: "1.234".into(),
            transfer: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("not an amount in yuan"), "{err}");

    let order: u64 = sell
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("{sell}"));
    let out = run(&m1, &Ctl::Cancel { account: M1, order })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("cancelled: 200 t"), "{out}");
    run(
        &ops,
        &Ctl::Phase {
            phase: "post-close".into(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&ops, &Ctl::CloseDay)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.starts_with("trading day closed"), "{out}");
    let out = run(&ops, &Ctl::Reconcile)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains(": clean"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ministry_runs_a_year_from_csv_files() {
    let server = TestServer::start();
    open_market(&server).await;
    let ministry = as_(&server, "ministry");
    let verifier = as_(&server, "verifier");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    let ctl = |c: &Connection, cmd: Ctl| {
        let c = c.clone();
        async move { run(&c, &cmd).await }
    };

    let plan = plan_path("2025-draft.toml");
    let out = ctl(&ministry, Ctl::RegisterPlan { file: plan })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("registered"), "{out}");

    // A bad line is named with its column; a row the server refuses points at its line.
    let header = "account_id,name,sector,province,differentiated,facility_id,facility_kind,fuel,capacity_mw,product_line,process\n";
    let bad = file(
        "bad.csv",
        &format!("{header}201,Power Plant One,power,Hebei,false,1,generating_unit,oil,600,,\n"),
    );
    let e = ctl(&ministry, Ctl::LoadEntities { file: bad })
        .await
        .err()
        .unwrap_or_else(|| panic!("bad fuel accepted"));
    assert!(
        e.ends_with("line 2, column fuel: \"oil\": coal, unconventional_coal or gas"),
        "{e}"
    );
    let refused = file(
        "refused.csv",
        &format!(
            "{header}201,Power Plant One,power,Hebei,false,1,generating_unit,coal,600,,\n\
             401,Cement A,cement,Anhui,false,1,generating_unit,coal,300,,\n"
        ),
    );
    let e = ctl(&ministry, Ctl::LoadEntities { file: refused })
        .await
        .err()
        .unwrap_or_else(|| panic!("refused row accepted"));
    assert!(
        e.contains("line 3, column facility_kind: refused: INVALID_ROW"),
        "{e}"
    );

    let entities = file(
        "entities.csv",
        &format!(
            "{header}201,Power Plant One,power,Hebei,false,1,generating_unit,coal,600,,\n\
             401,Cement A,cement,Anhui,false,1,product_line,,,clinker,clinker_line\n"
        ),
    );
    let out = ctl(&ministry, Ctl::LoadEntities { file: entities })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.starts_with("2 entities with 2 facilities loaded"),
        "{out}"
    );
    let activity = file(
        "activity.csv",
        "account_id,facility_id,electricity_mwh,heat_gj,load_factor,emissions_t,output_t\n\
         201,1,3300000,100000,0.55,2700000,\n401,1,,,,1000000,1150000\n",
    );
    ctl(
        &ministry,
        Ctl::LoadActivity {
            year: 2025,
            file: activity,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let verified = file(
        "verified.csv",
        "account_id,co2_t\n201,2700000\n401,1000000\n",
    );
    let out = ctl(
        &verifier,
        Ctl::RecordVerified {
            year: 2025,
            file: verified,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.ends_with("3700000 t CO2e\n"), "{out}");

    let csv_path = dir.path().join("allocation.csv");
    let out = ctl(
        &ministry,
        Ctl::Allocate {
            year: 2025,
            plan: "2025.draft".into(),
            pre: false,
            out: Some(csv_path.clone()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The 2025 draft: F = 55% (>= 50%) so Ff = 1; 3,300,000 x 0.7902 = 2,607,660 and
    // 100,000 x 0.1027 = 10,270: 2,617,930 t (shortfall rate 0.03: no floor); the cement
    // line, alone in its sector, 1,000,000. 3,617,930 t in all.
    assert!(out.contains("2 entities, 3617930 t allocated"), "{out}");
    let csv = std::fs::read_to_string(&csv_path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        csv.lines().any(|l| l.starts_with(
            "2025,201,Power Plant One,power,Hebei,false,2700000,0,3300000,100000,2025.draft,benchmark,0,2617930,"
        )),
        "{csv}"
    );
    // A single cement plant is its own sector balance: allocation = emissions.
    assert!(
        csv.lines().any(|l| l
            .contains(",cement,Anhui,false,1000000,1150000,0,0,2025.draft,intensity,0,1000000,")),
        "{csv}"
    );
    let out = ctl(
        &ministry,
        Ctl::Allocate {
            year: 2025,
            plan: "2025.draft".into(),
            pre: false,
            out: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("nothing to do"), "{out}");

    let out = ctl(
        &as_(&server, "e1"),
        Ctl::Surrender {
            account: E1,
            unit: "CEA2025".into(),
            quantity: 2_600_000,
            year: 2025,
            key: Some("e1-2025".into()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.ends_with("now SHORT with 100000 t short\n"), "{out}");

    let out = ctl(
        &ministry,
        Ctl::Compliance {
            year: 2025,
            account: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == [
                "power", "1", "2700000", "2617930", "2600000", "100000", "0", "1", "0", "0.00"
            ]),
        "{out}"
    );
    let out = ctl(
        &ministry,
        Ctl::Compliance {
            year: 2025,
            account: Some(E1),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("how: unit 1: Qe x Be x Ff = 3300000 x 0.7902 x 1 = 2607660"),
        "{out}"
    );

    // No trades yet: closing needs a price.
    let e = ctl(
        &ministry,
        Ctl::CloseYear {
            year: 2025,
            force_reason: None,
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("closed without a price"));
    assert!(e.contains("NO_PRICE_HISTORY"), "{e}");
    let out = ctl(
        &ministry,
        Ctl::Report {
            year: 2025,
            kind: "sectors".into(),
            out: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("\npower,1,2700000,2617930,2600000,100000,0,0,1,0\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_position_limits_and_reads_the_large_holders() {
    let server = TestServer::start();
    open_market(&server).await;
    let ops = as_(&server, "ops");
    let out = run(
        &ops,
        &Ctl::Limits {
            instrument: "CEA2025".into(),
            position_limit: Some(1_000_000),
            no_position_limit: false,
            large_holder: Some(50_000),
            no_large_holder: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The four trading accounts each hold exactly 50,000 t: all at the threshold.
    assert!(
        out.contains("CEA2025: position limit 1,000,000 t, large holders from 50,000 t\n"),
        "{out}"
    );
    assert_eq!(out.matches("holds         50,000 t").count(), 4, "{out}");
    let out = run(
        &ops,
        &Ctl::PositionLimit {
            account: M1,
            instrument: "CEA2025".into(),
            limit: None,
            unlimited: true,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.starts_with("account 101 CEA2025: position limit none"),
        "{out}"
    );
    let out = run(
        &ops,
        &Ctl::LargeHolders {
            instrument: "CEA2025".into(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains(
            "account      101  holds         50,000 t  open buys            0 t  limit none (own)"
        ),
        "{out}"
    );
    let err = run(
        &as_(&server, "m1"),
        &Ctl::LargeHolders {
            instrument: "CEA2025".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("ROLE_NOT_ALLOWED"), "{err}");
}
