//! The operator CLI (`carbonx ctl ...`) against the real server: the text it prints and
//! the refusals it reports.

use gateway::cli::{Connection, Ctl, run};
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
        status.contains("trading date 20261130  phase continuous"),
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
