//! The exchange's risk limits: an instrument's position limit and large-holder threshold,
//! one account's own limit, and the large-holder report.

use std::fmt::Write;

use client::money::grouped;
use client::{Clients, failed};
use proto::v1 as pb;

/// What `carbonx ctl limits` changes on one instrument.
#[derive(Debug)]
pub(super) struct InstrumentLimits<'a> {
    pub instrument: &'a str,
    pub position_limit_t: Option<u64>,
    pub no_position_limit: bool,
    pub large_holder_t: Option<u64>,
    pub no_large_holder: bool,
}

pub(super) async fn instrument_limits(
    c: &mut Clients,
    l: &InstrumentLimits<'_>,
) -> Result<String, String> {
    let r = c
        .admin
        .set_instrument_limits(pb::SetInstrumentLimitsRequest {
            instrument: l.instrument.to_string(),
            position_limit_t: l.position_limit_t.unwrap_or(0),
            no_position_limit: l.no_position_limit,
            large_holder_t: l.large_holder_t.unwrap_or(0),
            no_large_holder: l.no_large_holder,
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let report = large_holders(c, l.instrument).await?;
    Ok(format!("limits set (sequence {})\n{report}", r.sequence))
}

pub(super) async fn position_limit(
    c: &mut Clients,
    account: u64,
    instrument: &str,
    limit_t: Option<u64>,
) -> Result<String, String> {
    let r = c
        .admin
        .set_position_limit(pb::SetPositionLimitRequest {
            account_id: account,
            instrument: instrument.to_string(),
            limit_t: limit_t.unwrap_or(0),
            unlimited: limit_t.is_none(),
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let limit = limit_t.map_or("none".to_string(), |t| format!("{} t", grouped(t)));
    Ok(format!(
        "account {account} {instrument}: position limit {limit} (sequence {})\n",
        r.sequence
    ))
}

fn tonnes_or_none(t: u64) -> String {
    if t == 0 {
        "none".to_string()
    } else {
        format!("{} t", grouped(t))
    }
}

pub(super) async fn large_holders(c: &mut Clients, instrument: &str) -> Result<String, String> {
    let r = c
        .admin
        .get_large_holders(pb::GetLargeHoldersRequest {
            instrument: instrument.to_string(),
        })
        .await
        .map_err(|s| failed(&s))?
        .into_inner();
    let mut out = format!(
        "{}: position limit {}, large holders from {}\n",
        r.instrument,
        tonnes_or_none(r.position_limit_t),
        tonnes_or_none(r.large_holder_t)
    );
    for h in r.holders {
        let _ = writeln!(
            out,
            "  account {:>8}  holds {:>14} t  open buys {:>12} t  limit {}{}",
            h.account_id,
            grouped(h.holding_t),
            grouped(h.open_buy_t),
            tonnes_or_none(h.limit_t),
            if h.own_limit { " (own)" } else { "" }
        );
    }
    Ok(out)
}
