//! Every refusal of the API: a gRPC code, a stable reason code, the field at fault and a
//! message. One exhaustive mapping from each domain error (engine, registry) to a code.

use engine::Reject;
use registry::RegistryError;
use registry::cycle::CycleCode;
use registry::emissions::EmissionsCode;
use registry::verification::VerificationCode;
use tonic::{Code, Status};

/// Longest message or field path a refusal carries, bytes: whatever a request echoes in
/// it (an instrument name of 20,000 characters) is cut here, so the status stays far
/// below clients' 8-16 KiB header limits and every refusal stays readable.
pub const REFUSAL_TEXT_BYTES_MAX: usize = 512;

/// `text` cut to [`REFUSAL_TEXT_BYTES_MAX`] bytes on a character boundary, marked as cut.
fn bounded(text: &str) -> String {
    if text.len() <= REFUSAL_TEXT_BYTES_MAX {
        return text.to_string();
    }
    let mut end = REFUSAL_TEXT_BYTES_MAX - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A refused request, before it becomes a `tonic::Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub reason: &'static str,
    pub field: String,
    pub message: String,
    /// Refused by the engine (already counted by the core thread from its event).
    pub from_engine: bool,
}

impl ApiError {
    pub fn new(code: Code, reason: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            field: field.to_string(),
            message: message.into(),
            from_engine: false,
        }
    }

    /// The same error for a field inside `prefix` (e.g. `place.`): the field path and the
    /// message (which starts with the field's name) gain the prefix. Validation names bare
    /// fields and prefixes only on the error path, so a valid request formats nothing.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() && !self.field.is_empty() {
            if self.message.starts_with(&self.field) {
                self.message.insert_str(0, prefix);
            }
            self.field.insert_str(0, prefix);
        }
        self
    }

    /// A bad field: INVALID_ARGUMENT, reason INVALID_FIELD, naming it.
    pub fn field(field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        ApiError::new(
            Code::InvalidArgument,
            "INVALID_FIELD",
            field,
            format!("{field}: {why}"),
        )
    }

    pub fn permission(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Code::PermissionDenied, reason, "", message)
    }

    pub fn exhausted(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Code::ResourceExhausted, reason, "", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(Code::Unavailable, "UNAVAILABLE", "", message)
    }

    /// The disk holding the data directory is full (or below its reserve): nothing is
    /// journaled until space returns, so nothing can be acknowledged.
    pub fn disk_full() -> Self {
        ApiError::exhausted(
            "DISK_FULL",
            "the server's disk is full: nothing is accepted until space returns; retry later",
        )
    }

    /// The server was started read-only (to inspect a state it would not serve).
    pub fn read_only() -> Self {
        ApiError::new(
            Code::FailedPrecondition,
            "READ_ONLY",
            "",
            "the server runs read-only: it accepts no changes",
        )
    }

    pub fn not_found(reason: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(Code::NotFound, reason, field, message)
    }

    pub fn rejection(&self) -> proto::v1::Rejection {
        proto::v1::Rejection {
            reason: self.reason.to_string(),
            field: bounded(&self.field),
            message: bounded(&self.message),
        }
    }

    /// An engine rejection, with the request field it concerns when there is one.
    pub fn engine(reject: Reject) -> Self {
        let (code, field) = engine_code(reject);
        ApiError {
            from_engine: true,
            ..ApiError::new(code, reject.code(), field, engine_message(reject))
        }
    }

    pub fn registry(e: &RegistryError) -> Self {
        let (code, field) = registry_code(e);
        let field = match e {
            RegistryError::InvalidField { field, .. } => (*field).to_string(),
            RegistryError::InvalidRow { row, field, .. } => format!("rows[{row}].{field}"),
            RegistryError::CreditCodeTaken { row, .. } => format!("rows[{row}].credit_code"),
            RegistryError::Emissions { field, .. } => field.clone(),
            RegistryError::Verification { field, .. } => field.clone(),
            _ => field.to_string(),
        };
        ApiError::new(code, e.code(), &field, e.to_string())
    }
}

pub use proto::status::ERROR_DOMAIN;

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        proto::status::refusal(e.code, &e.rejection())
    }
}

fn engine_code(r: Reject) -> (Code, &'static str) {
    use Code::{
        AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
        ResourceExhausted,
    };
    match r {
        Reject::UnknownAccount => (NotFound, "account_id"),
        Reject::AccountExists => (AlreadyExists, "account_id"),
        Reject::AccountRestricted => (FailedPrecondition, "account_id"),
        Reject::AccountsLimit => (ResourceExhausted, ""),
        Reject::UnknownInstrument => (NotFound, "instrument"),
        Reject::InstrumentExists => (AlreadyExists, "instrument"),
        Reject::InstrumentsLimit => (ResourceExhausted, ""),
        Reject::InstrumentHalted => (FailedPrecondition, "instrument"),
        Reject::InvalidSymbol => (InvalidArgument, "instrument"),
        Reject::InvalidParameter => (InvalidArgument, ""),
        Reject::MarketClosed => (FailedPrecondition, ""),
        Reject::DayAlreadyOpen => (FailedPrecondition, ""),
        Reject::DayNotOpen => (FailedPrecondition, ""),
        Reject::InvalidDate => (InvalidArgument, "trading_date"),
        Reject::InvalidPhaseChange => (FailedPrecondition, "phase"),
        Reject::InvalidPrice => (InvalidArgument, "price_fen"),
        Reject::PriceNotOnTick => (InvalidArgument, "price_fen"),
        Reject::PriceOutsideBand => (FailedPrecondition, "price_fen"),
        Reject::InvalidQuantity => (InvalidArgument, "quantity_t"),
        Reject::QuantityNotOnLot => (InvalidArgument, "quantity_t"),
        Reject::QuantityAboveMax => (InvalidArgument, "quantity_t"),
        Reject::NoPriceProtection => (FailedPrecondition, "order_type"),
        Reject::InsufficientFunds => (FailedPrecondition, ""),
        Reject::InsufficientAllowances => (FailedPrecondition, ""),
        Reject::PositionLimitExceeded => (FailedPrecondition, "quantity_t"),
        Reject::DuplicateClientOrderId => (AlreadyExists, "client_order_id"),
        Reject::UnknownOrder => (NotFound, "order_id"),
        Reject::OrderClosed => (FailedPrecondition, "order_id"),
        Reject::NotOrderOwner => (PermissionDenied, "order_id"),
        Reject::AmendNoChange => (InvalidArgument, ""),
        Reject::AmendBelowFilled => (FailedPrecondition, "quantity_t"),
        Reject::PostOnlyWouldTrade => (FailedPrecondition, "post_only"),
        Reject::FokNotFillable => (FailedPrecondition, "time_in_force"),
        Reject::OrdersPerAccountLimit => (ResourceExhausted, ""),
        Reject::OrdersLimit => (ResourceExhausted, ""),
        Reject::DuplicateTransferId => (AlreadyExists, "transfer_id"),
        Reject::Overflow => (FailedPrecondition, ""),
        Reject::NotAllowedInPhase => (FailedPrecondition, ""),
        Reject::BlockWindowClosed => (FailedPrecondition, ""),
        Reject::QuantityBelowMin => (InvalidArgument, "quantity_t"),
        Reject::UnknownBlock => (NotFound, "block_id"),
        Reject::NotCounterparty => (PermissionDenied, "block_id"),
        Reject::BlocksLimit => (ResourceExhausted, ""),
        Reject::UnknownAuction => (NotFound, "auction_id"),
        Reject::AuctionNotOpen => (FailedPrecondition, "auction_id"),
        Reject::BidBelowReserve => (FailedPrecondition, "price_fen"),
        Reject::BidAboveCap => (FailedPrecondition, "price_fen"),
        Reject::BidderLimitExceeded => (FailedPrecondition, "quantity_t"),
        Reject::BidsLimit => (ResourceExhausted, ""),
        Reject::AuctionsLimit => (ResourceExhausted, ""),
        Reject::UnknownDisposal => (NotFound, "pledge_id"),
        Reject::DisposalInAuction => (FailedPrecondition, "pledge_id"),
    }
}

fn engine_message(r: Reject) -> String {
    let text = match r {
        Reject::InsufficientFunds => "not enough free funds for this order",
        Reject::InsufficientAllowances => "not enough free allowances for this order",
        Reject::PriceOutsideBand => "price outside today's band",
        Reject::MarketClosed => "the market is not open for this request",
        Reject::NotAllowedInPhase => "not allowed in the current trading phase",
        _ => "",
    };
    if text.is_empty() {
        r.code().to_lowercase().replace('_', " ")
    } else {
        text.to_string()
    }
}

fn registry_code(e: &RegistryError) -> (Code, &'static str) {
    use Code::{
        AlreadyExists, DataLoss, FailedPrecondition, Internal, InvalidArgument, NotFound,
        PermissionDenied, Unavailable,
    };
    match e {
        RegistryError::UnknownAccount(_) => (NotFound, "account_id"),
        RegistryError::AccountExists(_) => (AlreadyExists, "account_id"),
        RegistryError::AccountFrozen(_)
        | RegistryError::AccountRestricted(_)
        | RegistryError::AccountClosed(_) => (FailedPrecondition, "account_id"),
        RegistryError::UnknownUnit(_) => (NotFound, "unit"),
        RegistryError::UnitExists(_) => (AlreadyExists, "unit"),
        RegistryError::UnitNotAllowed { .. } => (PermissionDenied, "unit"),
        RegistryError::InsufficientAvailable { .. } | RegistryError::InsufficientTrading { .. } => {
            (FailedPrecondition, "quantity_t")
        }
        RegistryError::InvalidQuantity => (InvalidArgument, "quantity_t"),
        RegistryError::InvalidField { .. } => (InvalidArgument, ""),
        RegistryError::DuplicateKeyDifferentPayload => (AlreadyExists, "idempotency_key"),
        RegistryError::PledgeNotFound(_) => (NotFound, "pledge_id"),
        RegistryError::PledgeNotActive(_) => (FailedPrecondition, "pledge_id"),
        RegistryError::ProposalNotFound(_) => (NotFound, "proposal_id"),
        RegistryError::ProposalNotPending(_) => (FailedPrecondition, "proposal_id"),
        RegistryError::SameApprover => (PermissionDenied, "proposal_id"),
        RegistryError::FreezeNotFound(_) => (NotFound, "court_order"),
        RegistryError::NotReversible(_) => (FailedPrecondition, "entry"),
        RegistryError::Overflow => (FailedPrecondition, "quantity_t"),
        RegistryError::InvalidRow { .. } => (InvalidArgument, "rows"),
        RegistryError::CreditCodeTaken { .. } => (AlreadyExists, "rows"),
        RegistryError::Surrender(_) => (FailedPrecondition, "unit"),
        RegistryError::PlanNotFound { .. } => (NotFound, "plan_version"),
        RegistryError::PlanExists { .. } => (AlreadyExists, "plan_toml"),
        RegistryError::NotCovered(_) => (FailedPrecondition, "account_id"),
        RegistryError::Allocation(_) => (FailedPrecondition, "plan_version"),
        RegistryError::Cycle { code, .. } => (
            FailedPrecondition,
            match code {
                CycleCode::CarryOverLimit => "quantity_t",
                CycleCode::CarryOverBarred => "account_id",
                _ => "year",
            },
        ),
        RegistryError::Emissions { code, .. } => (
            match code {
                EmissionsCode::InvalidData => InvalidArgument,
                EmissionsCode::FactorsMissing | EmissionsCode::ReportMissing => NotFound,
                EmissionsCode::MonthDeposited => AlreadyExists,
                EmissionsCode::TooManyVersions => Code::ResourceExhausted,
                _ => FailedPrecondition,
            },
            "",
        ),
        RegistryError::Verification { code, .. } => (
            match code {
                VerificationCode::InvalidData => InvalidArgument,
                VerificationCode::BodyUnknown
                | VerificationCode::FindingUnknown
                | VerificationCode::FileMissing
                | VerificationCode::RulesMissing => NotFound,
                VerificationCode::NotAssigned | VerificationCode::OutsideJurisdiction => {
                    PermissionDenied
                }
                VerificationCode::TooMany => Code::ResourceExhausted,
                _ => FailedPrecondition,
            },
            "",
        ),
        RegistryError::Storage(_) => (Unavailable, ""),
        RegistryError::Corrupt(_) => (DataLoss, ""),
        RegistryError::Poisoned => (Internal, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_text_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        // 300 two-byte characters = 600 bytes: cut to at most 509 bytes + "...".
        let long = "é".repeat(300);
        let cut = bounded(&long);
        assert!(cut.len() <= REFUSAL_TEXT_BYTES_MAX, "{}", cut.len());
        assert!(cut.ends_with("..."));
        assert_eq!(cut.len(), 508 + 3, "254 whole characters");
    }

    #[test]
    fn an_invalid_field_is_also_a_bad_request_violation() {
        let status = Status::from(ApiError::field("quantity_t", "must be positive"));
        let bad = tonic_types::StatusExt::get_details_bad_request(&status).expect("BadRequest");
        assert_eq!(bad.field_violations.len(), 1);
        assert_eq!(bad.field_violations[0].field, "quantity_t");
        assert_eq!(
            bad.field_violations[0].description,
            "quantity_t: must be positive"
        );
        let info = tonic_types::StatusExt::get_details_error_info(&status).expect("ErrorInfo");
        assert_eq!(info.reason, "INVALID_FIELD");
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("quantity_t")
        );
        // A refusal that is not about a field's syntax carries no BadRequest.
        let status = Status::from(ApiError::engine(Reject::InsufficientFunds));
        assert!(tonic_types::StatusExt::get_details_bad_request(&status).is_none());
    }

    #[test]
    fn every_engine_rejection_maps_to_a_non_ok_code_with_its_reason() {
        for r in Reject::ALL {
            let e = ApiError::engine(r);
            assert_ne!(e.code, Code::Ok);
            assert_eq!(e.reason, r.code());
            let status = Status::from(e.clone());
            let back = client::rejection_of(&status).unwrap_or_else(|| panic!("{r:?}: no details"));
            assert_eq!(back.reason, r.code());
            let info = tonic_types::StatusExt::get_details_error_info(&status)
                .unwrap_or_else(|| panic!("{r:?}: no ErrorInfo"));
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (r.code(), ERROR_DOMAIN)
            );
            assert_eq!(
                status
                    .metadata()
                    .get("x-carbonx-reason")
                    .and_then(|v| v.to_str().ok()),
                Some(r.code())
            );
        }
    }
}
