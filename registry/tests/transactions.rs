//! One test per transaction type and per rejection, on exact holdings and reason codes.

mod common;

use common::*;
use registry::model::{
    AccountId, AccountStatus, AccountType, FreezeReason, PledgeState, UnitDef, UnitId, UnitKind,
};
use registry::tx::{Enforcement, Op, Outcome};
use registry::{Registry, RegistryError, RegistryOptions};

#[test]
fn issue_then_allocate_moves_units_from_the_authority() {
    let mut f = Fixture::new();
    assert_eq!(f.holding(MEE, CEA2025), (1_000_000, 0, 0));
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 700_000,
    });
    assert_eq!(f.holding(MEE, CEA2025), (300_000, 0, 0));
    assert_eq!(f.holding(STEEL, CEA2025), (700_000, 0, 0));
    assert_eq!(f.registry.ledger().issued[&CEA2025], 1_000_000);
    f.rejects(
        Op::Allocate {
            from: MEE,
            to: STEEL,
            unit: CEA2025,
            quantity_t: 300_001,
        },
        "INSUFFICIENT_AVAILABLE",
    );
    f.rejects(
        Op::Allocate {
            from: MEE,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.rejects(
        Op::Allocate {
            from: STEEL,
            to: POWER,
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.rejects(
        Op::Allocate {
            from: MEE,
            to: STEEL,
            unit: CCER,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.rejects(
        Op::Issue {
            authority: STEEL,
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.rejects(
        Op::Issue {
            authority: MEE,
            unit: UnitId(1),
            quantity_t: 1,
        },
        "UNKNOWN_UNIT",
    );
    f.rejects(
        Op::Issue {
            authority: MEE,
            unit: CEA2025,
            quantity_t: 0,
        },
        "INVALID_QUANTITY",
    );
    f.rejects(
        Op::Allocate {
            from: MEE,
            to: AccountId(999),
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNKNOWN_ACCOUNT",
    );
}

#[test]
fn transfers_and_four_eyes_approval() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 500_000,
    });
    f.ok(Op::SetFourEyesThreshold {
        quantity_t: 100_000,
    });
    f.ok(Op::Transfer {
        from: STEEL,
        to: BROKER,
        unit: CEA2025,
        quantity_t: 99_999,
    });
    assert_eq!(f.holding(BROKER, CEA2025), (99_999, 0, 0));
    let proposed = f.ok(Op::Transfer {
        from: STEEL,
        to: POWER,
        unit: CEA2025,
        quantity_t: 100_000,
    });
    let Outcome::Proposed { proposal } = proposed.outcome else {
        panic!("expected a proposal")
    };
    // Frozen as pending until approved: owned, not movable.
    assert_eq!(f.holding(STEEL, CEA2025), (300_001, 0, 100_000));
    assert_eq!(
        f.registry
            .ledger()
            .holding(STEEL, CEA2025)
            .frozen
            .get(&FreezeReason::Pending(proposal)),
        Some(&100_000)
    );
    // The proposer (actor 7) cannot approve their own transfer.
    f.rejects(Op::ApproveTransfer { proposal }, "SAME_APPROVER");
    let mut approval = f.tx(Op::ApproveTransfer { proposal });
    approval.actor = 8;
    f.apply(&approval).unwrap();
    assert_eq!(f.holding(STEEL, CEA2025), (300_001, 0, 0));
    assert_eq!(f.holding(POWER, CEA2025), (100_000, 0, 0));
    f.rejects(Op::ApproveTransfer { proposal }, "PROPOSAL_NOT_PENDING");
    f.rejects(Op::CancelProposal { proposal: 99 }, "PROPOSAL_NOT_FOUND");
    // A proposal can be cancelled until approved.
    let Outcome::Proposed { proposal } = f
        .ok(Op::Transfer {
            from: STEEL,
            to: POWER,
            unit: CEA2025,
            quantity_t: 200_000,
        })
        .outcome
    else {
        panic!()
    };
    f.ok(Op::CancelProposal { proposal });
    assert_eq!(f.holding(STEEL, CEA2025), (300_001, 0, 0));
    f.rejects(
        Op::Transfer {
            from: STEEL,
            to: STEEL,
            unit: CEA2025,
            quantity_t: 1,
        },
        "INVALID_FIELD",
    );
    f.rejects(
        Op::Transfer {
            from: STEEL,
            to: RETIRED,
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
}

#[test]
fn account_status_blocks_movements() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.ok(Op::SetStatus {
        account: STEEL,
        status: AccountStatus::Restricted,
    });
    f.rejects(
        Op::Transfer {
            from: STEEL,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 1,
        },
        "ACCOUNT_RESTRICTED",
    );
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1,
    });
    f.ok(Op::SetStatus {
        account: STEEL,
        status: AccountStatus::Frozen,
    });
    f.rejects(
        Op::Allocate {
            from: MEE,
            to: STEEL,
            unit: CEA2025,
            quantity_t: 1,
        },
        "ACCOUNT_FROZEN",
    );
    f.rejects(
        Op::MoveToTrading {
            account: STEEL,
            unit: CEA2025,
            quantity_t: 1,
        },
        "ACCOUNT_FROZEN",
    );
    f.ok(Op::SetStatus {
        account: STEEL,
        status: AccountStatus::Closed,
    });
    f.rejects(
        Op::Transfer {
            from: STEEL,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 1,
        },
        "ACCOUNT_CLOSED",
    );
    f.ok(Op::SetStatus {
        account: STEEL,
        status: AccountStatus::Open,
    });
    f.ok(Op::Transfer {
        from: STEEL,
        to: BROKER,
        unit: CEA2025,
        quantity_t: 1,
    });
}

#[test]
fn moves_to_and_from_trading() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: POWER,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.ok(Op::MoveToTrading {
        account: POWER,
        unit: CEA2025,
        quantity_t: 600,
    });
    assert_eq!(f.holding(POWER, CEA2025), (400, 600, 0));
    f.rejects(
        Op::MoveToTrading {
            account: POWER,
            unit: CEA2025,
            quantity_t: 401,
        },
        "INSUFFICIENT_AVAILABLE",
    );
    f.rejects(
        Op::MoveFromTrading {
            account: POWER,
            unit: CEA2025,
            quantity_t: 601,
        },
        "INSUFFICIENT_TRADING",
    );
    f.ok(Op::MoveFromTrading {
        account: POWER,
        unit: CEA2025,
        quantity_t: 100,
    });
    assert_eq!(f.holding(POWER, CEA2025), (500, 500, 0));
    // Units at the exchange cannot be transferred in the registry.
    f.rejects(
        Op::Transfer {
            from: POWER,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 501,
        },
        "INSUFFICIENT_AVAILABLE",
    );
    f.ok(Op::Issue {
        authority: MEE,
        unit: CCER,
        quantity_t: 10,
    });
    f.ok(Op::Transfer {
        from: MEE,
        to: POWER,
        unit: CCER,
        quantity_t: 10,
    });
    f.rejects(
        Op::MoveToTrading {
            account: POWER,
            unit: CCER,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
}

#[test]
fn judicial_freeze_and_unfreeze() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.ok(Op::Freeze {
        account: STEEL,
        unit: CEA2025,
        quantity_t: 300,
        order: 42,
    });
    assert_eq!(f.holding(STEEL, CEA2025), (700, 0, 300));
    f.rejects(
        Op::Transfer {
            from: STEEL,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 701,
        },
        "INSUFFICIENT_AVAILABLE",
    );
    f.rejects(
        Op::Unfreeze {
            account: STEEL,
            unit: CEA2025,
            order: 43,
        },
        "FREEZE_NOT_FOUND",
    );
    f.ok(Op::Unfreeze {
        account: STEEL,
        unit: CEA2025,
        order: 42,
    });
    assert_eq!(f.holding(STEEL, CEA2025), (1_000, 0, 0));
}

#[test]
fn pledges_register_release_and_enforce() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 10_000,
    });
    let Outcome::Pledged { pledge } = f
        .ok(Op::PledgeRegister {
            pledgor: STEEL,
            pledgee: BANK,
            unit: CEA2025,
            quantity_t: 4_000,
            secured_fen: 0,
        })
        .outcome
    else {
        panic!()
    };
    assert_eq!(f.holding(STEEL, CEA2025), (6_000, 0, 4_000));
    f.rejects(
        Op::Surrender {
            account: STEEL,
            retirement: RETIRED,
            unit: CEA2025,
            quantity_t: 6_001,
            year: 2025,
        },
        "INSUFFICIENT_AVAILABLE",
    );
    f.rejects(
        Op::PledgeRegister {
            pledgor: STEEL,
            pledgee: BROKER,
            unit: CEA2025,
            quantity_t: 1,
            secured_fen: 0,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.ok(Op::PledgeRelease { pledge });
    assert_eq!(f.holding(STEEL, CEA2025), (10_000, 0, 0));
    f.rejects(Op::PledgeRelease { pledge }, "PLEDGE_NOT_ACTIVE");
    f.rejects(Op::PledgeRelease { pledge: 77 }, "PLEDGE_NOT_FOUND");

    let Outcome::Pledged { pledge } = f
        .ok(Op::PledgeRegister {
            pledgor: STEEL,
            pledgee: BANK,
            unit: CEA2025,
            quantity_t: 3_000,
            secured_fen: 0,
        })
        .outcome
    else {
        panic!()
    };
    f.rejects(
        Op::PledgeEnforce {
            pledge,
            how: Enforcement::ToPledgee,
            claim_fen: Some(1),
        },
        "INVALID_FIELD",
    );
    f.ok(Op::PledgeEnforce {
        pledge,
        how: Enforcement::ToPledgee,
        claim_fen: None,
    });
    assert_eq!(f.holding(STEEL, CEA2025), (7_000, 0, 0));
    assert_eq!(f.holding(BANK, CEA2025), (3_000, 0, 0));
    assert_eq!(
        f.registry.ledger().pledges[&pledge].state,
        PledgeState::EnforcedToPledgee
    );

    let Outcome::Pledged { pledge } = f
        .ok(Op::PledgeRegister {
            pledgor: STEEL,
            pledgee: BANK,
            unit: CEA2025,
            quantity_t: 2_000,
            // RMB 150,000.00 secured.
            secured_fen: 15_000_000,
        })
        .outcome
    else {
        panic!()
    };
    // Zero, and one fen over the secured amount: refused, naming the field.
    for claim_fen in [0, 15_000_001] {
        let op = Op::PledgeEnforce {
            pledge,
            how: Enforcement::ForAuction,
            claim_fen: Some(claim_fen),
        };
        f.rejects(op.clone(), "INVALID_FIELD");
        let refused = f.try_op(op).map(drop).unwrap_err();
        assert!(
            matches!(
                refused,
                RegistryError::InvalidField {
                    field: "claim_fen",
                    ..
                }
            ),
            "{refused}"
        );
    }
    // The bank claims RMB 120,000.00 outstanding, under the RMB 150,000.00 secured.
    f.ok(Op::PledgeEnforce {
        pledge,
        how: Enforcement::ForAuction,
        claim_fen: Some(12_000_000),
    });
    assert_eq!(
        f.holding(STEEL, CEA2025),
        (5_000, 2_000, 0),
        "moved to the exchange for auction"
    );
    let enforced = f.registry.ledger().pledges[&pledge];
    assert_eq!(
        (enforced.state, enforced.secured_fen, enforced.claim_fen),
        (PledgeState::EnforcedForAuction, 15_000_000, 12_000_000)
    );
    f.rejects(
        Op::PledgeEnforce {
            pledge,
            how: Enforcement::ToPledgee,
            claim_fen: None,
        },
        "PLEDGE_NOT_ACTIVE",
    );
}

#[test]
fn surrender_and_voluntary_cancellation_retire_units() {
    let mut f = Fixture::new();
    f.ok(Op::Allocate {
        from: MEE,
        to: POWER,
        unit: CEA2025,
        quantity_t: 5_000,
    });
    f.rejects(
        Op::Surrender {
            account: POWER,
            retirement: RETIRED,
            unit: CEA2025,
            quantity_t: 1,
            year: 2024,
        },
        "INVALID_FIELD",
    );
    f.ok(Op::Surrender {
        account: POWER,
        retirement: RETIRED,
        unit: CEA2025,
        quantity_t: 4_000,
        year: 2025,
    });
    assert_eq!(f.holding(RETIRED, CEA2025), (4_000, 0, 0));
    f.rejects(
        Op::Surrender {
            account: POWER,
            retirement: CANCELLED,
            unit: CEA2025,
            quantity_t: 1,
            year: 2025,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.rejects(
        Op::Transfer {
            from: RETIRED,
            to: POWER,
            unit: CEA2025,
            quantity_t: 1,
        },
        "UNIT_NOT_ALLOWED",
    );
    f.ok(Op::Transfer {
        from: POWER,
        to: BROKER,
        unit: CEA2025,
        quantity_t: 500,
    });
    f.ok(Op::VoluntaryCancel {
        account: BROKER,
        cancellation: CANCELLED,
        unit: CEA2025,
        quantity_t: 500,
    });
    assert_eq!(f.holding(CANCELLED, CEA2025), (500, 0, 0));
    assert_eq!(f.registry.ledger().issued[&CEA2025], 1_000_000);
}

#[test]
fn the_authority_reverses_an_allocation_with_a_reason() {
    let mut f = Fixture::new();
    let receipt = f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.rejects(
        Op::Reverse {
            entry: receipt.seq,
            reason: String::new(),
        },
        "INVALID_FIELD",
    );
    f.ok(Op::Reverse {
        entry: receipt.seq,
        reason: "allocated to the wrong entity".into(),
    });
    assert_eq!(f.holding(STEEL, CEA2025), (0, 0, 0));
    assert_eq!(f.holding(MEE, CEA2025), (1_000_000, 0, 0));
    f.rejects(
        Op::Reverse {
            entry: receipt.seq,
            reason: "twice".into(),
        },
        "NOT_REVERSIBLE",
    );
    f.rejects(
        Op::Reverse {
            entry: 1,
            reason: "not a movement".into(),
        },
        "NOT_REVERSIBLE",
    );
    let receipt = f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 1_000,
    });
    f.ok(Op::MoveToTrading {
        account: STEEL,
        unit: CEA2025,
        quantity_t: 1,
    });
    f.rejects(
        Op::Reverse {
            entry: receipt.seq,
            reason: "too late".into(),
        },
        "INSUFFICIENT_AVAILABLE",
    );
}

#[test]
fn setup_validation() {
    let mut f = Fixture::new();
    f.rejects(
        Op::OpenAccount {
            account: STEEL,
            kind: AccountType::MemberFirm,
            name: "x".into(),
        },
        "ACCOUNT_EXISTS",
    );
    f.rejects(
        Op::OpenAccount {
            account: AccountId(5),
            kind: AccountType::MemberFirm,
            name: String::new(),
        },
        "INVALID_FIELD",
    );
    f.rejects(
        Op::CreateUnit {
            unit: CEA2025,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2025,
                project_id: 0,
                registered: 0,
            },
        },
        "UNIT_EXISTS",
    );
    f.rejects(
        Op::CreateUnit {
            unit: UnitId(1),
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 1999,
                project_id: 0,
                registered: 0,
            },
        },
        "INVALID_FIELD",
    );
    f.rejects(
        Op::CreateUnit {
            unit: UnitId(1),
            def: UnitDef {
                kind: UnitKind::Ccer,
                vintage: 2024,
                project_id: 0,
                registered: 0,
            },
        },
        "INVALID_FIELD",
    );
    f.rejects(
        Op::SetFourEyesThreshold { quantity_t: 0 },
        "INVALID_QUANTITY",
    );
}

#[test]
fn idempotency_returns_the_original_result_and_refuses_a_different_payload() {
    let mut f = Fixture::new();
    let tx = f.tx(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 10,
    });
    let first = f.apply(&tx).unwrap();
    let again = f.apply(&tx).unwrap();
    assert_eq!(first, again);
    assert_eq!(f.holding(STEEL, CEA2025), (10, 0, 0), "applied once");
    let mut other = tx.clone();
    other.op = Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 11,
    };
    assert_eq!(
        f.apply(&other).unwrap_err().code(),
        "DUPLICATE_KEY_DIFFERENT_PAYLOAD"
    );
    let mut empty = tx.clone();
    empty.key = String::new();
    assert_eq!(f.apply(&empty).unwrap_err().code(), "INVALID_FIELD");
    empty.key = "k".repeat(129);
    assert_eq!(f.apply(&empty).unwrap_err().code(), "INVALID_FIELD");
}

#[test]
fn a_group_commits_in_order_and_rejections_inside_change_nothing() {
    let mut f = Fixture::new();
    let txs = vec![
        f.tx(Op::Allocate {
            from: MEE,
            to: STEEL,
            unit: CEA2025,
            quantity_t: 10,
        }),
        f.tx(Op::Transfer {
            from: STEEL,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 11,
        }),
        f.tx(Op::Transfer {
            from: STEEL,
            to: BROKER,
            unit: CEA2025,
            quantity_t: 10,
        }),
    ];
    let mut dup = txs[0].clone();
    dup.op = Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 99,
    };
    let mut all = txs.clone();
    all.push(dup);
    all.push(txs[0].clone());
    let seq = f.registry.seq();
    let results = f.registry.apply_group(&all);
    assert_eq!(results[0].as_ref().unwrap().seq, seq + 1);
    assert_eq!(
        results[1].as_ref().unwrap_err().code(),
        "INSUFFICIENT_AVAILABLE"
    );
    assert_eq!(results[2].as_ref().unwrap().seq, seq + 2);
    assert_eq!(
        results[3].as_ref().unwrap_err().code(),
        "DUPLICATE_KEY_DIFFERENT_PAYLOAD"
    );
    assert_eq!(results[4].as_ref().unwrap(), results[0].as_ref().unwrap());
    assert_eq!(f.holding(BROKER, CEA2025), (10, 0, 0));
    f.registry.check_invariants().unwrap();
}

#[test]
fn everything_survives_a_reopen_and_the_journal_verifies() {
    let mut f = Fixture::new();
    f.ok(Op::SetFourEyesThreshold { quantity_t: 50_000 });
    f.ok(Op::Allocate {
        from: MEE,
        to: STEEL,
        unit: CEA2025,
        quantity_t: 200_000,
    });
    f.ok(Op::Transfer {
        from: STEEL,
        to: BROKER,
        unit: CEA2025,
        quantity_t: 60_000,
    });
    f.ok(Op::PledgeRegister {
        pledgor: STEEL,
        pledgee: BANK,
        unit: CEA2025,
        quantity_t: 1_000,
        secured_fen: 0,
    });
    f.ok(Op::Freeze {
        account: STEEL,
        unit: CEA2025,
        quantity_t: 5,
        order: 9,
    });
    f.ok(Op::MoveToTrading {
        account: STEEL,
        unit: CEA2025,
        quantity_t: 100,
    });
    let ledger = f.registry.ledger().clone();
    let (seq, head) = (f.registry.seq(), f.registry.head_hash());
    let report = f.registry.verify_journal().unwrap();
    assert_eq!((report.entries, report.head_hash), (seq, head));
    let path = f.dir.path().to_path_buf();
    drop(f.registry);
    let reopened = Registry::open(&path, RegistryOptions::default()).unwrap();
    assert_eq!(reopened.seq(), seq);
    assert_eq!(reopened.head_hash(), head);
    let mut loaded = reopened.ledger().clone();
    loaded.dirty = ledger.dirty.clone();
    assert!(loaded == ledger, "reloaded ledger differs");
    reopened.verify_journal().unwrap();
    let entries = reopened.journal(1, 3).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(entries[1].prev_hash, entries[0].hash);
}

#[test]
fn pledges_journaled_before_amounts_replay_with_none() {
    // key "k" (u32 length + bytes), actor 9, time 1, then the op: tag 13, pledgor 5,
    // pledgee 6, unit 2, 700 t; tag 15, pledge 3, for auction (1).
    let head = |op: &[u8]| {
        let mut b = 1u32.to_le_bytes().to_vec();
        b.push(b'k');
        b.extend(9u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(op);
        b
    };
    let mut register = vec![13u8];
    register.extend(5u64.to_le_bytes());
    register.extend(6u64.to_le_bytes());
    register.extend(2u32.to_le_bytes());
    register.extend(700u64.to_le_bytes());
    let tx = registry::tx::Tx::decode(&head(&register)).unwrap();
    assert_eq!(
        tx.op,
        Op::PledgeRegister {
            pledgor: registry::model::AccountId(5),
            pledgee: registry::model::AccountId(6),
            unit: registry::model::UnitId(2),
            quantity_t: 700,
            secured_fen: 0,
        }
    );
    let mut enforce = vec![15u8];
    enforce.extend(3u64.to_le_bytes());
    enforce.push(1);
    let tx = registry::tx::Tx::decode(&head(&enforce)).unwrap();
    assert_eq!(
        tx.op,
        Op::PledgeEnforce {
            pledge: 3,
            how: Enforcement::ForAuction,
            claim_fen: None,
        }
    );
    // Written again, both take the new tags and round-trip.
    for op in [register, enforce] {
        let tx = registry::tx::Tx::decode(&head(&op)).unwrap();
        assert_eq!(registry::tx::Tx::decode(&tx.encode()).unwrap(), tx);
    }
}
