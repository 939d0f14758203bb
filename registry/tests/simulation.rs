//! Seeded simulation: random valid and invalid transactions, invariants after each, the
//! journal verified and the database reopened along the way. The seed is printed on failure;
//! rerun one with `CARBONX_SEED=<seed> cargo test -p registry --test simulation`.

mod common;

use common::*;
use registry::model::{AccountId, AccountStatus, UnitId};
use registry::tx::{Enforcement, Op, Outcome};

const ACCOUNTS: [AccountId; 14] = [
    MEE,
    PROVINCE,
    RETIRED,
    CANCELLED,
    STEEL,
    STEEL,
    STEEL,
    POWER,
    POWER,
    POWER,
    BROKER,
    BROKER,
    BANK,
    AccountId(404),
];
const UNITS: [UnitId; 8] = [
    CEA2024,
    CEA2025,
    CEA2025,
    CEA2025,
    CEA2025,
    CEA2025,
    CCER,
    UnitId(1),
];

fn random_op(rng: &mut Rng, pledges: u64, proposals: u64, seq: u64) -> Op {
    let a = rng.pick(&ACCOUNTS);
    let b = rng.pick(&ACCOUNTS);
    let unit = rng.pick(&UNITS);
    let q = match rng.below(10) {
        0 => 0,
        1 => 1_000_000,
        _ => 1 + rng.below(3_000),
    };
    match rng.below(20) {
        0 => Op::Issue {
            authority: a,
            unit,
            quantity_t: q,
        },
        1 | 2 | 16 | 17 => Op::Allocate {
            from: MEE,
            to: b,
            unit,
            quantity_t: q,
        },
        3..=5 | 18 => Op::Transfer {
            from: a,
            to: b,
            unit,
            quantity_t: q,
        },
        6 => Op::ApproveTransfer {
            proposal: rng.below(proposals + 1),
        },
        7 => Op::CancelProposal {
            proposal: rng.below(proposals + 1),
        },
        8 => Op::MoveToTrading {
            account: a,
            unit,
            quantity_t: q,
        },
        9 => Op::MoveFromTrading {
            account: a,
            unit,
            quantity_t: q,
        },
        10 => Op::Freeze {
            account: a,
            unit,
            quantity_t: q,
            order: rng.below(3),
        },
        11 => Op::Unfreeze {
            account: a,
            unit,
            order: rng.below(3),
        },
        12 => Op::PledgeRegister {
            pledgor: a,
            pledgee: rng.pick(&[BANK, b]),
            unit,
            quantity_t: q,
            secured_fen: rng.below(3) * 1_000_000,
        },
        13 => match rng.below(3) {
            0 => Op::PledgeRelease {
                pledge: rng.below(pledges + 1),
            },
            1 => Op::PledgeEnforce {
                pledge: rng.below(pledges + 1),
                how: Enforcement::ToPledgee,
                claim_fen: None,
            },
            _ => Op::PledgeEnforce {
                pledge: rng.below(pledges + 1),
                how: Enforcement::ForAuction,
                // Claims over the secured amount, zero, legacy (none) and valid.
                claim_fen: [None, Some(0), Some(500_000), Some(1_500_000)][rng.below(4) as usize],
            },
        },
        14 => match rng.below(4) {
            0 => Op::Surrender {
                account: a,
                retirement: RETIRED,
                unit,
                quantity_t: q,
                year: 2024 + rng.below(2) as u16,
            },
            1 => Op::VoluntaryCancel {
                account: a,
                cancellation: CANCELLED,
                unit,
                quantity_t: q,
            },
            2 => Op::Reverse {
                entry: 1 + rng.below(seq + 1),
                reason: "correction".into(),
            },
            _ => Op::SetFourEyesThreshold {
                quantity_t: 5_000 + rng.below(50_000),
            },
        },
        _ => Op::SetStatus {
            account: a,
            status: rng.pick(&[
                AccountStatus::Open,
                AccountStatus::Open,
                AccountStatus::Open,
                AccountStatus::Open,
                AccountStatus::Open,
                AccountStatus::Restricted,
                AccountStatus::Frozen,
            ]),
        },
    }
}

fn simulate(seed: u64, steps: u64) {
    let mut f = Fixture::new();
    let mut rng = Rng(seed);
    f.ok(Op::Issue {
        authority: MEE,
        unit: CCER,
        quantity_t: 100_000,
    });
    f.ok(Op::Issue {
        authority: MEE,
        unit: CEA2024,
        quantity_t: 500_000,
    });
    let (mut ok, mut rejected) = (0u64, 0u64);
    let mut codes = std::collections::BTreeMap::new();
    for step in 0..steps {
        let ledger = f.registry.ledger();
        let (pledges, proposals) = (ledger.next_pledge, ledger.next_proposal);
        let op = random_op(&mut rng, pledges, proposals, f.registry.seq());
        let mut tx = f.tx(op);
        tx.actor = rng.below(3);
        let before = f.registry.ledger().clone();
        let seq = f.registry.seq();
        match f.registry.apply(&tx) {
            Ok(receipt) => {
                ok += 1;
                assert_eq!(receipt.seq, seq + 1, "seed {seed} step {step}");
                if let Outcome::Proposed { proposal } = receipt.outcome {
                    assert!(f.registry.ledger().proposals.contains_key(&proposal));
                }
            }
            Err(e) => {
                rejected += 1;
                *codes.entry(e.code()).or_insert(0u32) += 1;
                assert!(e.is_rejection(), "seed {seed} step {step}: {e}");
                let mut after = f.registry.ledger().clone();
                after.dirty = before.dirty.clone();
                assert!(
                    after == before,
                    "seed {seed} step {step}: rejected {tx:?} changed the ledger"
                );
            }
        }
        if let Err(e) = f.registry.check_invariants() {
            panic!("seed {seed} step {step}: {e} after {tx:?}");
        }
        if step % 250 == 249 {
            f.registry
                .verify_journal()
                .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
            let ledger = f.registry.ledger().clone();
            f.reopen()
                .unwrap_or_else(|e| panic!("seed {seed}: reopen: {e}"));
            let mut loaded = f.registry.ledger().clone();
            loaded.dirty = ledger.dirty.clone();
            assert!(
                loaded == ledger,
                "seed {seed} step {step}: reopened ledger differs"
            );
        }
    }
    eprintln!("seed {seed}: {ok} committed, {rejected} rejected: {codes:?}");
    assert!(
        ok > steps / 6 && rejected > steps / 10,
        "seed {seed}: the stream should mix valid and invalid transactions"
    );
}

#[test]
fn random_transactions_keep_every_invariant() {
    let seeds: Vec<u64> = match std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (1..5).collect(),
    };
    for seed in seeds {
        simulate(seed, 1_500);
    }
}
