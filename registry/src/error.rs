//! Registry rejections and failures, each with a stable reason code.

use crate::store::StoreError;

/// Why a registry transaction was refused (and changed nothing), or failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("account {0} does not exist")]
    UnknownAccount(u64),
    #[error("account {0} exists already")]
    AccountExists(u64),
    #[error("account {0} is frozen")]
    AccountFrozen(u64),
    #[error("account {0} is restricted")]
    AccountRestricted(u64),
    #[error("account {0} is closed")]
    AccountClosed(u64),
    #[error("unit {0} does not exist")]
    UnknownUnit(u32),
    #[error("unit {0} exists already")]
    UnitExists(u32),
    #[error("account {account} may not take part in {what} for this unit")]
    UnitNotAllowed { account: u64, what: &'static str },
    #[error("not enough available units: {available} t available, {wanted} t wanted")]
    InsufficientAvailable { available: u64, wanted: u64 },
    #[error("not enough units at the exchange: {available} t, {wanted} t wanted")]
    InsufficientTrading { available: u64, wanted: u64 },
    #[error("quantity must be positive")]
    InvalidQuantity,
    #[error("invalid field {field}: {why}")]
    InvalidField {
        field: &'static str,
        why: &'static str,
    },
    #[error("idempotency key reused with a different payload")]
    DuplicateKeyDifferentPayload,
    #[error("pledge {0} not found")]
    PledgeNotFound(u64),
    #[error("pledge {0} is no longer registered")]
    PledgeNotActive(u64),
    #[error("proposal {0} not found")]
    ProposalNotFound(u64),
    #[error("proposal {0} is no longer pending")]
    ProposalNotPending(u64),
    #[error("the second approver must differ from the proposer")]
    SameApprover,
    #[error("no judicial freeze {0} on that holding")]
    FreezeNotFound(u64),
    #[error("journal entry {0} cannot be reversed")]
    NotReversible(u64),
    #[error("quantity overflow")]
    Overflow,
    #[error("row {row}, {field}: {why}")]
    InvalidRow {
        /// 0-based index of the row in the request.
        row: usize,
        field: &'static str,
        why: String,
    },
    #[error("row {row}: credit code {code} already has covered-entity account {holder}")]
    CreditCodeTaken {
        row: usize,
        code: String,
        holder: u64,
    },
    #[error("{0}")]
    Surrender(#[from] crate::compliance::SurrenderError),
    #[error("no allocation plan {version:?} for {year}")]
    PlanNotFound { year: u16, version: String },
    #[error("plan {version:?} for {year} exists already with other values")]
    PlanExists { year: u16, version: String },
    #[error("account {0} is not a registered covered entity")]
    NotCovered(u64),
    #[error("allocation failed: {0}")]
    Allocation(#[from] crate::allocation::AllocationError),
    /// A compliance-cycle precondition (year closed, run order...), with its own code.
    #[error("{why}")]
    Cycle {
        code: crate::cycle::CycleCode,
        why: String,
    },
    /// An emissions-accounting refusal: its code, the field at fault, and why.
    #[error("{field}: {why}")]
    Emissions {
        code: crate::emissions::EmissionsCode,
        field: String,
        why: String,
    },
    /// A verification refusal: its code, the field at fault, and why.
    #[error("{field}: {why}")]
    Verification {
        code: crate::verification::VerificationCode,
        field: String,
        why: String,
    },
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("the registry stopped after a storage failure; restart to recover")]
    Poisoned,
}

impl RegistryError {
    /// The stable reason code for replies and the journal.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            RegistryError::AccountExists(_) => "ACCOUNT_EXISTS",
            RegistryError::AccountFrozen(_) => "ACCOUNT_FROZEN",
            RegistryError::AccountRestricted(_) => "ACCOUNT_RESTRICTED",
            RegistryError::AccountClosed(_) => "ACCOUNT_CLOSED",
            RegistryError::UnknownUnit(_) => "UNKNOWN_UNIT",
            RegistryError::UnitExists(_) => "UNIT_EXISTS",
            RegistryError::UnitNotAllowed { .. } => "UNIT_NOT_ALLOWED",
            RegistryError::InsufficientAvailable { .. } => "INSUFFICIENT_AVAILABLE",
            RegistryError::InsufficientTrading { .. } => "INSUFFICIENT_TRADING",
            RegistryError::InvalidQuantity => "INVALID_QUANTITY",
            RegistryError::InvalidField { .. } => "INVALID_FIELD",
            RegistryError::DuplicateKeyDifferentPayload => "DUPLICATE_KEY_DIFFERENT_PAYLOAD",
            RegistryError::PledgeNotFound(_) => "PLEDGE_NOT_FOUND",
            RegistryError::PledgeNotActive(_) => "PLEDGE_NOT_ACTIVE",
            RegistryError::ProposalNotFound(_) => "PROPOSAL_NOT_FOUND",
            RegistryError::ProposalNotPending(_) => "PROPOSAL_NOT_PENDING",
            RegistryError::SameApprover => "SAME_APPROVER",
            RegistryError::FreezeNotFound(_) => "FREEZE_NOT_FOUND",
            RegistryError::NotReversible(_) => "NOT_REVERSIBLE",
            RegistryError::Overflow => "OVERFLOW",
            RegistryError::InvalidRow { .. } => "INVALID_ROW",
            RegistryError::CreditCodeTaken { .. } => "CREDIT_CODE_TAKEN",
            RegistryError::Surrender(e) => e.code(),
            RegistryError::PlanNotFound { .. } => "PLAN_NOT_FOUND",
            RegistryError::PlanExists { .. } => "PLAN_VERSION_EXISTS",
            RegistryError::NotCovered(_) => "NOT_COVERED",
            RegistryError::Allocation(_) => "ALLOCATION_FAILED",
            RegistryError::Cycle { code, .. } => code.code(),
            RegistryError::Emissions { code, .. } => code.code(),
            RegistryError::Verification { code, .. } => code.code(),
            RegistryError::Storage(_) => "STORAGE",
            RegistryError::Corrupt(_) => "CORRUPT",
            RegistryError::Poisoned => "UNAVAILABLE",
        }
    }

    /// Whether this is a rejection of the request (as opposed to a failure of the registry).
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self,
            RegistryError::Storage(_) | RegistryError::Corrupt(_) | RegistryError::Poisoned
        )
    }
}
