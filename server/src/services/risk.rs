//! Position limits and large-holder reporting at the API edge: the requests checked and
//! turned into engine commands, the market-wide defaults of a new instrument, the report.
//! The engine enforces the limits (`POSITION_LIMIT_EXCEEDED` at order entry) and keeps them
//! in its snapshot; nothing here holds state.

use engine::{AccountId, CommandKind, InstrumentSpec, LargeHoldersView, Tonnes};
use proto::v1 as pb;

use crate::catalog::Catalog;
use crate::config::MarketSection;
use crate::error::ApiError;
use crate::services::convert::{self, id, quantity};

/// The engine's "none" for a limit or threshold.
const NONE_T: Tonnes = u64::MAX;

/// A new instrument's limits: the request's own, else the server's `[market]` ones.
pub fn creation_limits(
    spec: &mut InstrumentSpec,
    r: &pb::CreateInstrumentRequest,
    market: &MarketSection,
) -> Result<(), ApiError> {
    for (value, field) in [
        (r.position_limit_t, "position_limit_t"),
        (r.large_holder_t, "large_holder_t"),
    ] {
        if value != 0 {
            quantity(value, field)?;
        }
    }
    spec.position_limit_t = chosen(r.position_limit_t, market.position_limit_t);
    spec.large_holder_t = chosen(r.large_holder_t, market.large_holder_t);
    Ok(())
}

fn chosen(requested_t: u64, configured_t: Option<u64>) -> Tonnes {
    match requested_t {
        0 => configured_t.unwrap_or(NONE_T),
        t => t,
    }
}

/// `SetInstrumentLimits`: each value set, removed, or (0 and not removed) unchanged.
pub fn instrument_limits(
    catalog: &Catalog,
    r: &pb::SetInstrumentLimitsRequest,
) -> Result<CommandKind, ApiError> {
    let instrument = convert::instrument(catalog, &r.instrument, "instrument")?;
    let position_limit_t = change(r.position_limit_t, r.no_position_limit, "position_limit_t")?;
    let large_holder_t = change(r.large_holder_t, r.no_large_holder, "large_holder_t")?;
    if position_limit_t.is_none() && large_holder_t.is_none() {
        return Err(ApiError::field(
            "position_limit_t",
            "nothing to change: give position_limit_t, large_holder_t or a no_ flag",
        ));
    }
    Ok(CommandKind::SetInstrumentLimits {
        instrument,
        position_limit_t,
        large_holder_t,
    })
}

fn change(value_t: u64, remove: bool, field: &'static str) -> Result<Option<Tonnes>, ApiError> {
    match (value_t, remove) {
        (0, false) => Ok(None),
        (0, true) => Ok(Some(NONE_T)),
        (_, true) => Err(ApiError::field(field, "a value and its no_ flag together")),
        (t, false) => quantity(t, field).map(Some),
    }
}

/// `SetPositionLimit`: one account's own limit, or none for it.
pub fn position_limit(
    catalog: &Catalog,
    r: &pb::SetPositionLimitRequest,
) -> Result<CommandKind, ApiError> {
    let account = AccountId(id(r.account_id, "account_id")?);
    let instrument = convert::instrument(catalog, &r.instrument, "instrument")?;
    let limit_t = match (r.limit_t, r.unlimited) {
        (0, true) => NONE_T,
        (_, true) => return Err(ApiError::field("limit_t", "a limit and unlimited together")),
        (0, false) => {
            return Err(ApiError::field(
                "limit_t",
                "must be at least 1 t (or unlimited; RestrictTradingAccount stops trading)",
            ));
        }
        (t, false) => quantity(t, "limit_t")?,
    };
    Ok(CommandKind::SetPositionLimit {
        account,
        instrument,
        limit_t,
    })
}

/// The engine's report on the wire: "none" is 0 there (a set limit is at least 1 t).
pub fn large_holders_reply(catalog: &Catalog, view: &LargeHoldersView) -> pb::LargeHoldersReply {
    let wire = |t: Tonnes| if t == NONE_T { 0 } else { t };
    pb::LargeHoldersReply {
        instrument: catalog.symbol(view.instrument),
        position_limit_t: wire(view.position_limit_t),
        large_holder_t: wire(view.large_holder_t),
        holders: view
            .holders
            .iter()
            .map(|h| pb::LargeHolder {
                account_id: h.account.0,
                holding_t: h.holding_t,
                open_buy_t: h.open_buy_t,
                limit_t: wire(h.limit_t),
                own_limit: h.own_limit,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_in_the_request_takes_the_configured_value_and_none_is_the_maximum() {
        assert_eq!(chosen(0, None), NONE_T);
        assert_eq!(chosen(0, Some(500_000)), 500_000);
        assert_eq!(chosen(7, Some(500_000)), 7);
        assert_eq!(change(0, false, "f").ok(), Some(None));
        assert_eq!(change(0, true, "f").ok(), Some(Some(NONE_T)));
        assert_eq!(change(9, false, "f").ok(), Some(Some(9)));
        assert!(change(9, true, "f").is_err());
        assert!(
            change(u64::MAX, false, "f").is_err(),
            "beyond ALLOWANCES_T_MAX"
        );
    }
}
