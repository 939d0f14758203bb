//! Crash test: a child process applies synced transactions and prints each acknowledgement;
//! the parent kills it with SIGKILL at seeded random moments (24 times), reopens the
//! registry after each kill and checks that every acknowledged transaction is present with
//! its sequence, that nothing is half-applied (invariants, journal verification from the
//! first entry), and that the units are conserved.
//!
//! The child is this same test binary, re-run with `CARBONX_CRASH_CHILD` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Tx};
use registry::{Registry, RegistryOptions};

const MEE: AccountId = AccountId(1);
const BANK: AccountId = AccountId(2);
const UNIT: UnitId = UnitId(2025);
const ENTITIES: u64 = 20;
const ISSUED_T: u64 = 10_000_000;
const KILLS: u64 = 24;

fn entity(n: u64) -> AccountId {
    AccountId(100 + n)
}

fn setup_ops() -> Vec<Op> {
    let mut ops = vec![
        Op::OpenAccount {
            account: MEE,
            kind: AccountType::NationalAuthority,
            name: "MEE".into(),
        },
        Op::OpenAccount {
            account: BANK,
            kind: AccountType::Pledgee,
            name: "bank".into(),
        },
        Op::CreateUnit {
            unit: UNIT,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2025,
                project_id: 0,
                registered: 0,
            },
        },
        Op::Issue {
            authority: MEE,
            unit: UNIT,
            quantity_t: ISSUED_T,
        },
    ];
    for n in 0..ENTITIES {
        ops.push(Op::OpenAccount {
            account: entity(n),
            kind: AccountType::CoveredEntity(Sector::Cement),
            name: format!("entity {n}"),
        });
        ops.push(Op::Allocate {
            from: MEE,
            to: entity(n),
            unit: UNIT,
            quantity_t: 100_000,
        });
    }
    ops
}

/// The child: set up (idempotent keys), then apply small groups of transactions forever,
/// printing `ack <key> <seq>` once each group is durable.
fn child(dir: &str, run: u64) {
    let mut registry = Registry::open(std::path::Path::new(dir), RegistryOptions { sync: true })
        .expect("child open");
    for (n, op) in setup_ops().into_iter().enumerate() {
        let tx = Tx {
            key: format!("setup-{n}"),
            actor: 1,
            timestamp_ns: 0,
            op,
        };
        registry.apply(&tx).expect("setup");
    }
    let mut state = run.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let stdout = std::io::stdout();
    for i in 0.. {
        let group: Vec<Tx> = (0..1 + next() % 6)
            .map(|j| {
                let from = entity(next() % ENTITIES);
                let to = entity(next() % ENTITIES);
                let quantity_t = 1 + next() % 500;
                let op = match next() % 10 {
                    0 => Op::MoveToTrading {
                        account: from,
                        unit: UNIT,
                        quantity_t,
                    },
                    1 => Op::MoveFromTrading {
                        account: from,
                        unit: UNIT,
                        quantity_t,
                    },
                    2 => Op::PledgeRegister {
                        pledgor: from,
                        pledgee: BANK,
                        unit: UNIT,
                        quantity_t,
                        secured_fen: 1_000_000,
                    },
                    _ => Op::Transfer {
                        from,
                        to,
                        unit: UNIT,
                        quantity_t,
                    },
                };
                Tx {
                    key: format!("run{run}-{i}-{j}"),
                    actor: 1,
                    timestamp_ns: i,
                    op,
                }
            })
            .collect();
        let results = registry.apply_group(&group);
        let mut out = stdout.lock();
        for (tx, result) in group.iter().zip(results) {
            if let Ok(receipt) = result {
                writeln!(out, "ack {} {}", tx.key, receipt.seq).expect("stdout");
            }
        }
        out.flush().expect("stdout");
    }
}

#[test]
fn crash_child_entry_point() {
    // Only does something when re-run as the child by the test below.
    if let (Ok(dir), Ok(run)) = (
        std::env::var("CARBONX_CRASH_CHILD"),
        std::env::var("CARBONX_CRASH_RUN"),
    ) {
        child(&dir, run.parse().expect("run number"));
    }
}

#[test]
fn acknowledged_transactions_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed: u64 = std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_251_128);
    let mut rng = seed;
    let mut acked: Vec<(String, u64)> = Vec::new();
    for run in 0..KILLS {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay_ms = 30 + (rng >> 33) % 250;
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "crash_child_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CARBONX_CRASH_CHILD", dir.path())
            .env("CARBONX_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    let mut parts = line.strip_prefix("ack ")?.split(' ');
                    Some((
                        parts.next()?.to_string(),
                        parts.next()?.parse::<u64>().ok()?,
                    ))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        // std's Child::kill sends SIGKILL on Unix: no destructor, no flush, no goodbye.
        child.kill().expect("SIGKILL");
        child.wait().expect("reap child");
        let this_run = reader.join().expect("reader");
        acked.extend(this_run.iter().cloned());

        let registry = Registry::open(dir.path(), RegistryOptions::default())
            .unwrap_or_else(|e| panic!("seed {seed} kill {run}: reopen failed: {e}"));
        registry
            .check_invariants()
            .unwrap_or_else(|e| panic!("seed {seed} kill {run}: {e}"));
        let report = registry
            .verify_journal()
            .unwrap_or_else(|e| panic!("seed {seed} kill {run}: {e}"));
        assert_eq!(report.entries, registry.seq());
        for (k, seq) in &acked {
            let receipt = registry
                .receipt(1, k)
                .expect("read")
                .unwrap_or_else(|| panic!("seed {seed} kill {run}: acknowledged {k} lost"));
            assert_eq!(
                receipt.seq, *seq,
                "seed {seed} kill {run}: {k} has another sequence"
            );
        }
        let total: u64 = registry
            .ledger()
            .holdings
            .iter()
            .filter(|((_, u), _)| *u == UNIT)
            .map(|(_, h)| h.total_t())
            .sum();
        assert_eq!(
            total, ISSUED_T,
            "seed {seed} kill {run}: units not conserved"
        );
        eprintln!(
            "kill {run} after {delay_ms} ms: {} acknowledged this run, journal at {}",
            this_run.len(),
            registry.seq()
        );
    }
    assert!(
        acked.len() as u64 > KILLS * 5,
        "seed {seed}: the child should acknowledge work between kills"
    );
}
