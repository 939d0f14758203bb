//! Stable rejection reasons. The code strings are part of the API: never rename one.

/// Why a command was rejected. A rejected command changes nothing but the sequence.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Reject {
    UnknownAccount,
    AccountExists,
    AccountRestricted,
    AccountsLimit,
    UnknownInstrument,
    InstrumentExists,
    InstrumentsLimit,
    InstrumentHalted,
    InvalidSymbol,
    InvalidParameter,
    MarketClosed,
    DayAlreadyOpen,
    DayNotOpen,
    InvalidDate,
    InvalidPhaseChange,
    InvalidPrice,
    PriceNotOnTick,
    PriceOutsideBand,
    InvalidQuantity,
    QuantityNotOnLot,
    QuantityAboveMax,
    NoPriceProtection,
    InsufficientFunds,
    InsufficientAllowances,
    PositionLimitExceeded,
    DuplicateClientOrderId,
    UnknownOrder,
    OrderClosed,
    NotOrderOwner,
    AmendNoChange,
    AmendBelowFilled,
    PostOnlyWouldTrade,
    FokNotFillable,
    OrdersPerAccountLimit,
    OrdersLimit,
    DuplicateTransferId,
    Overflow,
}

impl Reject {
    /// Every reason, for exhaustive tests and mappings.
    pub const ALL: [Reject; 37] = [
        Reject::UnknownAccount,
        Reject::AccountExists,
        Reject::AccountRestricted,
        Reject::AccountsLimit,
        Reject::UnknownInstrument,
        Reject::InstrumentExists,
        Reject::InstrumentsLimit,
        Reject::InstrumentHalted,
        Reject::InvalidSymbol,
        Reject::InvalidParameter,
        Reject::MarketClosed,
        Reject::DayAlreadyOpen,
        Reject::DayNotOpen,
        Reject::InvalidDate,
        Reject::InvalidPhaseChange,
        Reject::InvalidPrice,
        Reject::PriceNotOnTick,
        Reject::PriceOutsideBand,
        Reject::InvalidQuantity,
        Reject::QuantityNotOnLot,
        Reject::QuantityAboveMax,
        Reject::NoPriceProtection,
        Reject::InsufficientFunds,
        Reject::InsufficientAllowances,
        Reject::PositionLimitExceeded,
        Reject::DuplicateClientOrderId,
        Reject::UnknownOrder,
        Reject::OrderClosed,
        Reject::NotOrderOwner,
        Reject::AmendNoChange,
        Reject::AmendBelowFilled,
        Reject::PostOnlyWouldTrade,
        Reject::FokNotFillable,
        Reject::OrdersPerAccountLimit,
        Reject::OrdersLimit,
        Reject::DuplicateTransferId,
        Reject::Overflow,
    ];

    /// The stable code carried in order reports and gRPC status details.
    pub fn code(self) -> &'static str {
        match self {
            Reject::UnknownAccount => "UNKNOWN_ACCOUNT",
            Reject::AccountExists => "ACCOUNT_EXISTS",
            Reject::AccountRestricted => "ACCOUNT_RESTRICTED",
            Reject::AccountsLimit => "ACCOUNTS_LIMIT",
            Reject::UnknownInstrument => "UNKNOWN_INSTRUMENT",
            Reject::InstrumentExists => "INSTRUMENT_EXISTS",
            Reject::InstrumentsLimit => "INSTRUMENTS_LIMIT",
            Reject::InstrumentHalted => "INSTRUMENT_HALTED",
            Reject::InvalidSymbol => "INVALID_SYMBOL",
            Reject::InvalidParameter => "INVALID_PARAMETER",
            Reject::MarketClosed => "MARKET_CLOSED",
            Reject::DayAlreadyOpen => "DAY_ALREADY_OPEN",
            Reject::DayNotOpen => "DAY_NOT_OPEN",
            Reject::InvalidDate => "INVALID_DATE",
            Reject::InvalidPhaseChange => "INVALID_PHASE_CHANGE",
            Reject::InvalidPrice => "INVALID_PRICE",
            Reject::PriceNotOnTick => "PRICE_NOT_ON_TICK",
            Reject::PriceOutsideBand => "PRICE_OUTSIDE_BAND",
            Reject::InvalidQuantity => "INVALID_QUANTITY",
            Reject::QuantityNotOnLot => "QUANTITY_NOT_ON_LOT",
            Reject::QuantityAboveMax => "QUANTITY_ABOVE_MAX",
            Reject::NoPriceProtection => "NO_PRICE_PROTECTION",
            Reject::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Reject::InsufficientAllowances => "INSUFFICIENT_ALLOWANCES",
            Reject::PositionLimitExceeded => "POSITION_LIMIT_EXCEEDED",
            Reject::DuplicateClientOrderId => "DUPLICATE_CLIENT_ORDER_ID",
            Reject::UnknownOrder => "UNKNOWN_ORDER",
            Reject::OrderClosed => "ORDER_CLOSED",
            Reject::NotOrderOwner => "NOT_ORDER_OWNER",
            Reject::AmendNoChange => "AMEND_NO_CHANGE",
            Reject::AmendBelowFilled => "AMEND_BELOW_FILLED",
            Reject::PostOnlyWouldTrade => "POST_ONLY_WOULD_TRADE",
            Reject::FokNotFillable => "FOK_NOT_FILLABLE",
            Reject::OrdersPerAccountLimit => "ORDERS_PER_ACCOUNT_LIMIT",
            Reject::OrdersLimit => "ORDERS_LIMIT",
            Reject::DuplicateTransferId => "DUPLICATE_TRANSFER_ID",
            Reject::Overflow => "OVERFLOW",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reject;

    #[test]
    fn codes_are_unique_and_upper_snake() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reject::ALL {
            let code = reason.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{code}"
            );
        }
    }
}
