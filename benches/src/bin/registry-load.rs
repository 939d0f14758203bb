#![allow(clippy::float_arithmetic)] // rates for the report, never state
//! Registry transactions over gRPC: `--clients` concurrent clients (the test market's four
//! trading accounts' principals), each sending `ProposeTransfer` one after another (each
//! waits for its receipt), for `--seconds`. Measures what a registry transaction costs end
//! to end: authentication, the core thread's journal batch and fsync, the registry writer,
//! the reply.
//!
//! `cargo run --release -p benches --bin registry-load -- [--target ADDR --setup] [--clients N]`
//!
//! Without `--target` it starts the server in-process (sync durability, the test principals,
//! the test market open). With `--target` the server must know the test principals
//! (`loadgen --write-tokens`); `--setup` opens the test market there first.
//! The last line: `registry_tx_per_s=N p50_us=N p99_us=N max_us=N errors=N`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use proto::v1 as pb;
use tests::{Clients, E1, M1, M2, M3, Principals, TestServer, open_market_at, test_config};

#[derive(Clone, Debug, Parser)]
#[command(about = "carbonx registry load")]
struct Args {
    /// A running server (default: start one in-process).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// With --target: open the test market first.
    #[arg(long)]
    setup: bool,
    /// Concurrent clients (spread over the four trading accounts).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Prefix of the idempotency keys (a second run against the same server needs another).
    #[arg(long, default_value = "load")]
    tag: String,
}

const ACCOUNTS: [(&str, u64); 4] = [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)];

/// One client's transfers until `until`: its latencies and errors.
async fn client(addr: SocketAddr, n: usize, tag: String, until: Instant) -> (Histogram<u64>, u64) {
    let (name, from) = ACCOUNTS[n % ACCOUNTS.len()];
    let to = ACCOUNTS[(n + 1) % ACCOUNTS.len()].1;
    let mut hist = Histogram::<u64>::new(3).unwrap_or_else(|e| panic!("{e}"));
    let mut errors = 0;
    let mut c = Clients::at(addr, name)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let started = Instant::now();
        let r = c
            .registry
            .propose_transfer(pb::TransferRequest {
                idempotency_key: format!("{tag}-{n}-{i}"),
                from_account_id: from,
                to_account_id: to,
                unit: "CEA2025".into(),
                quantity_t: 1,
            })
            .await;
        match r {
            Ok(_) => {
                let _ = hist.record(started.elapsed().as_micros() as u64);
            }
            Err(_) => errors += 1,
        }
    }
    (hist, errors)
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (server, addr) = match args.target {
        Some(addr) => (None, addr),
        None => {
            let s = TestServer::start_with(test_config(dir.path()));
            let addr = s.addr;
            (Some(s), addr)
        }
    };
    runtime.block_on(async {
        if server.is_some() || args.setup {
            open_market_at(addr).await;
        }
        let until = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..args.clients)
            .map(|n| tokio::spawn(client(addr, n, args.tag.clone(), until)))
            .collect();
        let mut all = Histogram::<u64>::new(3).unwrap_or_else(|e| panic!("{e}"));
        let mut errors = 0;
        for t in tasks {
            let (h, e) = t.await.unwrap_or_else(|e| panic!("{e}"));
            all.add(&h).unwrap_or_else(|e| panic!("{e}"));
            errors += e;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "registry_tx_per_s={:.0} p50_us={} p99_us={} max_us={} errors={errors}",
            all.len() as f64 / secs,
            all.value_at_quantile(0.5),
            all.value_at_quantile(0.99),
            all.max()
        );
    });
    drop(server);
}
