//! Shared fixtures for the registry tests.

#![allow(dead_code)]

use registry::model::{AccountId, AccountType, Sector, UnitDef, UnitId, UnitKind};
use registry::tx::{Op, Receipt, Tx};
use registry::{Registry, RegistryError, RegistryOptions};

pub const MEE: AccountId = AccountId(1);
pub const PROVINCE: AccountId = AccountId(2);
pub const RETIRED: AccountId = AccountId(8);
pub const CANCELLED: AccountId = AccountId(9);
pub const STEEL: AccountId = AccountId(100);
pub const POWER: AccountId = AccountId(101);
pub const BROKER: AccountId = AccountId(200);
pub const BANK: AccountId = AccountId(300);
pub const CEA2024: UnitId = UnitId(2024);
pub const CEA2025: UnitId = UnitId(2025);
pub const CCER: UnitId = UnitId(9_001);

pub struct Fixture {
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    next_key: u64,
}

impl Fixture {
    /// Authority, retirement and cancellation accounts, two entities, a broker, a bank;
    /// CEA2024, CEA2025 and one CCER unit; 1,000,000 t of CEA2025 issued to the authority.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Registry::open(dir.path(), RegistryOptions { sync: false }).expect("open");
        let mut f = Fixture {
            registry,
            dir,
            next_key: 1,
        };
        for (account, kind, name) in [
            (MEE, AccountType::NationalAuthority, "MEE"),
            (PROVINCE, AccountType::ProvincialAuthority, "Hebei EEB"),
            (RETIRED, AccountType::Retirement, "retirement"),
            (CANCELLED, AccountType::Cancellation, "cancellation"),
            (
                STEEL,
                AccountType::CoveredEntity(Sector::Steel),
                "Hebei Iron & Steel",
            ),
            (
                POWER,
                AccountType::CoveredEntity(Sector::Power),
                "Datang Power",
            ),
            (BROKER, AccountType::MemberFirm, "broker"),
            (BANK, AccountType::Pledgee, "bank"),
        ] {
            f.ok(Op::OpenAccount {
                account,
                kind,
                name: name.to_string(),
            });
        }
        f.ok(Op::CreateUnit {
            unit: CEA2024,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2024,
                project_id: 0,
                registered: 0,
            },
        });
        f.ok(Op::CreateUnit {
            unit: CEA2025,
            def: UnitDef {
                kind: UnitKind::Cea,
                vintage: 2025,
                project_id: 0,
                registered: 0,
            },
        });
        f.ok(Op::CreateUnit {
            unit: CCER,
            def: UnitDef {
                kind: UnitKind::Ccer,
                vintage: 2024,
                project_id: 77,
                registered: 20_240_301,
            },
        });
        f.ok(Op::Issue {
            authority: MEE,
            unit: CEA2025,
            quantity_t: 1_000_000,
        });
        f
    }

    /// Closes the database and opens it again from disk.
    pub fn reopen(&mut self) -> Result<(), RegistryError> {
        let scratch = tempfile::tempdir().expect("temp dir");
        let old = std::mem::replace(
            &mut self.registry,
            Registry::open(scratch.path(), RegistryOptions { sync: false })?,
        );
        drop(old);
        self.registry = Registry::open(self.dir.path(), RegistryOptions { sync: false })?;
        Ok(())
    }

    pub fn tx(&mut self, op: Op) -> Tx {
        self.next_key += 1;
        Tx {
            key: format!("k{}", self.next_key),
            actor: 7,
            timestamp_ns: self.next_key,
            op,
        }
    }

    pub fn try_op(&mut self, op: Op) -> Result<Receipt, RegistryError> {
        let tx = self.tx(op);
        self.apply(&tx)
    }

    pub fn apply(&mut self, tx: &Tx) -> Result<Receipt, RegistryError> {
        let result = self.registry.apply(tx);
        if let Err(e) = self.registry.check_invariants() {
            panic!("invariant broken after {tx:?}: {e}");
        }
        result
    }

    pub fn ok(&mut self, op: Op) -> Receipt {
        let shown = format!("{op:?}");
        self.try_op(op)
            .unwrap_or_else(|e| panic!("{shown} failed: {e}"))
    }

    /// The op must be refused with `code`, and change nothing.
    pub fn rejects(&mut self, op: Op, code: &str) {
        let before = self.registry.ledger().clone();
        let seq = self.registry.seq();
        let shown = format!("{op:?}");
        match self.try_op(op) {
            Ok(r) => panic!("{shown} succeeded: {r:?}"),
            Err(e) => assert_eq!(e.code(), code, "{shown}: {e}"),
        }
        let mut after = self.registry.ledger().clone();
        after.dirty = before.dirty.clone();
        assert!(after == before, "{shown}: a rejection changed the ledger");
        assert_eq!(
            self.registry.seq(),
            seq,
            "{shown}: a rejection wrote a journal entry"
        );
    }

    /// (available, trading, frozen) of one holding.
    pub fn holding(&self, account: AccountId, unit: UnitId) -> (u64, u64, u64) {
        let h = self.registry.ledger().holding(account, unit);
        (h.registry_available_t, h.trading_t, h.frozen_t())
    }
}

/// SplitMix64: the simulations' seeded source of choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
pub mod steel;
