//! The registry's data model: accounts, units, holdings, pledges, proposals, and the
//! declarative table of which account types take part in which transactions.

use std::collections::BTreeMap;

/// A registry account id, chosen by whoever opens the account.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AccountId(pub u64);

/// A unit (one CEA vintage, or one CCER issuance) by its dense id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct UnitId(pub u32);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Sector {
    Power,
    Steel,
    Cement,
    Aluminium,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum AccountType {
    NationalAuthority,
    ProvincialAuthority,
    CoveredEntity(Sector),
    MemberFirm,
    Pledgee,
    ExchangeCustody,
    /// Where surrendered units end up, retired for good.
    Retirement,
    /// Where voluntarily cancelled units end up; they leave the national total.
    Cancellation,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AccountStatus {
    Open,
    /// No outgoing transactions (debits); incoming still allowed.
    Restricted,
    /// Nothing in or out.
    Frozen,
    Closed,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum UnitKind {
    Cea,
    Ccer,
}

/// A unit: a CEA vintage, or a CCER vintage of one project registered on a date.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UnitDef {
    pub kind: UnitKind,
    pub vintage: u16,
    /// CCER only: the project id (0 for CEA).
    pub project_id: u64,
    /// CCER only: registration date `YYYYMMDD` (0 for CEA).
    pub registered: u32,
}

/// Why units are frozen.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum FreezeReason {
    Pledge(u64),
    Judicial(u64),
    /// A transfer proposal waiting for its second approver.
    Pending(u64),
    /// Old-vintage units applied for carry-over (the application's id), until converted.
    CarryOver(u64),
}

/// One account's holding of one unit. Frozen units count as owned and cannot move.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    pub registry_available_t: u64,
    /// Held at the exchange (moved to trading).
    pub trading_t: u64,
    pub frozen: BTreeMap<FreezeReason, u64>,
}

impl Holding {
    pub fn frozen_t(&self) -> u64 {
        self.frozen.values().sum()
    }

    pub fn total_t(&self) -> u64 {
        self.registry_available_t + self.trading_t + self.frozen_t()
    }

    pub fn is_empty(&self) -> bool {
        self.total_t() == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub kind: AccountType,
    pub status: AccountStatus,
    pub name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PledgeState {
    Registered,
    Released,
    /// Enforced: the units went to the pledgee.
    EnforcedToPledgee,
    /// Enforced: the units were moved to the exchange for a one-way auction; proceeds are the
    /// pledgee's.
    EnforcedForAuction,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Pledge {
    pub id: u64,
    pub pledgor: AccountId,
    pub pledgee: AccountId,
    pub unit: UnitId,
    pub quantity_t: u64,
    pub state: PledgeState,
    /// The most the pledge secures, fen (0: registered before amounts were recorded).
    pub secured_fen: u64,
    /// Enforced for auction: what the sale pays the pledgee first, fen (0 otherwise).
    pub claim_fen: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProposalState {
    Pending,
    Approved,
    Cancelled,
}

/// A transfer at or above the four-eyes threshold, waiting for a second approver. Its
/// quantity is frozen (`FreezeReason::Pending`) in the source holding meanwhile.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Proposal {
    pub id: u64,
    pub from: AccountId,
    pub to: AccountId,
    pub unit: UnitId,
    pub quantity_t: u64,
    pub proposer: u64,
    pub state: ProposalState,
}

/// The kinds of transaction, for the permission table and the journal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TxKind {
    Issue,
    Allocate,
    Transfer,
    MoveToTrading,
    MoveFromTrading,
    Freeze,
    Pledge,
    PledgeEnforce,
    Surrender,
    VoluntaryCancel,
    Reverse,
}

/// Which end of a movement an account is on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Leg {
    Debit,
    Credit,
}

/// One row of the permission table: account types that may take `leg` of `kind`, for units
/// of `units`.
#[derive(Clone, Copy, Debug)]
pub struct Permission {
    pub kind: TxKind,
    pub leg: Leg,
    pub accounts: &'static [AccountClass],
    pub units: &'static [UnitKind],
}

/// Account types grouped for the table (sector does not matter for permissions).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AccountClass {
    NationalAuthority,
    ProvincialAuthority,
    CoveredEntity,
    MemberFirm,
    Pledgee,
    ExchangeCustody,
    Retirement,
    Cancellation,
}

impl AccountType {
    pub fn class(self) -> AccountClass {
        match self {
            AccountType::NationalAuthority => AccountClass::NationalAuthority,
            AccountType::ProvincialAuthority => AccountClass::ProvincialAuthority,
            AccountType::CoveredEntity(_) => AccountClass::CoveredEntity,
            AccountType::MemberFirm => AccountClass::MemberFirm,
            AccountType::Pledgee => AccountClass::Pledgee,
            AccountType::ExchangeCustody => AccountClass::ExchangeCustody,
            AccountType::Retirement => AccountClass::Retirement,
            AccountType::Cancellation => AccountClass::Cancellation,
        }
    }
}

use AccountClass as C;
use UnitKind::{Ccer, Cea};

const HOLDERS: &[AccountClass] = &[C::CoveredEntity, C::MemberFirm, C::Pledgee];
const AUTHORITIES: &[AccountClass] = &[C::NationalAuthority, C::ProvincialAuthority];
const BOTH: &[UnitKind] = &[Cea, Ccer];
/// Holders and authorities: who may transfer to each other, and whose movements the
/// authority may reverse.
const TRANSFER_PARTIES: &[AccountClass] = &[
    C::CoveredEntity,
    C::MemberFirm,
    C::Pledgee,
    C::NationalAuthority,
    C::ProvincialAuthority,
];
/// Who may keep units at the exchange.
const TRADERS: &[AccountClass] = &[
    C::CoveredEntity,
    C::MemberFirm,
    C::Pledgee,
    C::NationalAuthority,
];

/// Which account types may hold which units and take part in which transactions: the one
/// place this is decided. CEA trades at this exchange; CCER is held and surrendered here but
/// traded elsewhere, so it never moves to trading.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        kind: TxKind::Issue,
        leg: Leg::Credit,
        accounts: &[C::NationalAuthority],
        units: BOTH,
    },
    Permission {
        kind: TxKind::Allocate,
        leg: Leg::Debit,
        accounts: AUTHORITIES,
        units: &[Cea],
    },
    Permission {
        kind: TxKind::Allocate,
        leg: Leg::Credit,
        accounts: &[C::CoveredEntity, C::ProvincialAuthority],
        units: &[Cea],
    },
    Permission {
        kind: TxKind::Transfer,
        leg: Leg::Debit,
        accounts: TRANSFER_PARTIES,
        units: BOTH,
    },
    Permission {
        kind: TxKind::Transfer,
        leg: Leg::Credit,
        accounts: TRANSFER_PARTIES,
        units: BOTH,
    },
    Permission {
        kind: TxKind::MoveToTrading,
        leg: Leg::Debit,
        accounts: TRADERS,
        units: &[Cea],
    },
    Permission {
        kind: TxKind::MoveFromTrading,
        leg: Leg::Credit,
        accounts: TRADERS,
        units: &[Cea],
    },
    Permission {
        kind: TxKind::Freeze,
        leg: Leg::Debit,
        accounts: &[C::CoveredEntity, C::MemberFirm, C::Pledgee],
        units: BOTH,
    },
    Permission {
        kind: TxKind::Pledge,
        leg: Leg::Debit,
        accounts: &[C::CoveredEntity, C::MemberFirm],
        units: &[Cea],
    },
    Permission {
        kind: TxKind::Pledge,
        leg: Leg::Credit,
        accounts: &[C::Pledgee],
        units: &[Cea],
    },
    Permission {
        kind: TxKind::PledgeEnforce,
        leg: Leg::Credit,
        accounts: &[C::Pledgee],
        units: &[Cea],
    },
    Permission {
        kind: TxKind::Surrender,
        leg: Leg::Debit,
        accounts: &[
            C::CoveredEntity,
            C::NationalAuthority,
            C::ProvincialAuthority,
        ],
        units: BOTH,
    },
    Permission {
        kind: TxKind::Surrender,
        leg: Leg::Credit,
        accounts: &[C::Retirement],
        units: BOTH,
    },
    Permission {
        kind: TxKind::VoluntaryCancel,
        leg: Leg::Debit,
        accounts: HOLDERS,
        units: BOTH,
    },
    Permission {
        kind: TxKind::VoluntaryCancel,
        leg: Leg::Credit,
        accounts: &[C::Cancellation],
        units: BOTH,
    },
    Permission {
        kind: TxKind::Reverse,
        leg: Leg::Debit,
        accounts: TRANSFER_PARTIES,
        units: BOTH,
    },
    Permission {
        kind: TxKind::Reverse,
        leg: Leg::Credit,
        accounts: TRANSFER_PARTIES,
        units: BOTH,
    },
];

/// Whether an account of `kind` may take `leg` of a `tx` in units of `unit`.
pub fn permitted(tx: TxKind, leg: Leg, kind: AccountType, unit: UnitKind) -> bool {
    PERMISSIONS.iter().any(|p| {
        p.kind == tx
            && p.leg == leg
            && p.accounts.contains(&kind.class())
            && p.units.contains(&unit)
    })
}
