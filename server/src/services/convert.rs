//! Wire <-> domain conversions and the request validators (ids, prices, quantities,
//! idempotency keys): a request's fields are checked and converted here, in one place.
//! Every wire enum is checked (an unknown or unspecified value where one is required is
//! INVALID_FIELD naming the field).

use engine::{
    CancelReason, ClientOrderId, EventKind, InstrumentId, NewOrder, OrderId, OrderKind, Phase,
    Side, TimeInForce, TradeKind,
};
use proto::v1 as pb;

use crate::catalog::Catalog;
use crate::core::Applied;
use crate::error::ApiError;
use registry::compliance::StatusCode;
use registry::model::{AccountStatus, AccountType, Sector};

pub fn side(value: i32, field: &str) -> Result<Side, ApiError> {
    match pb::Side::try_from(value) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        _ => Err(ApiError::field(field, "must be SIDE_BUY or SIDE_SELL")),
    }
}

pub fn side_out(side: Side) -> i32 {
    match side {
        Side::Buy => pb::Side::Buy as i32,
        Side::Sell => pb::Side::Sell as i32,
    }
}

pub fn phase(value: i32, field: &str) -> Result<Phase, ApiError> {
    Ok(match pb::Phase::try_from(value) {
        Ok(pb::Phase::Closed) => Phase::Closed,
        Ok(pb::Phase::PreOpen) => Phase::PreOpen,
        Ok(pb::Phase::OpeningCall) => Phase::OpeningCall,
        Ok(pb::Phase::Continuous) => Phase::Continuous,
        Ok(pb::Phase::Break) => Phase::Break,
        Ok(pb::Phase::PostClose) => Phase::PostClose,
        _ => return Err(ApiError::field(field, "must be a PHASE_ value")),
    })
}

pub fn phase_out(phase: Phase) -> i32 {
    (match phase {
        Phase::Closed => pb::Phase::Closed,
        Phase::PreOpen => pb::Phase::PreOpen,
        Phase::OpeningCall => pb::Phase::OpeningCall,
        Phase::Continuous => pb::Phase::Continuous,
        Phase::Break => pb::Phase::Break,
        Phase::PostClose => pb::Phase::PostClose,
    }) as i32
}

pub fn trade_kind_out(kind: TradeKind) -> i32 {
    (match kind {
        TradeKind::Continuous => pb::TradeKind::Continuous,
        TradeKind::OpeningAuction => pb::TradeKind::OpeningAuction,
        TradeKind::Block => pb::TradeKind::Block,
        TradeKind::Bidding => pb::TradeKind::Bidding,
    }) as i32
}

pub fn tif_out(tif: TimeInForce) -> i32 {
    (match tif {
        TimeInForce::Day => pb::TimeInForce::Day,
        TimeInForce::Gtc => pb::TimeInForce::Gtc,
        TimeInForce::Ioc => pb::TimeInForce::Ioc,
        TimeInForce::Fok => pb::TimeInForce::Fok,
    }) as i32
}

pub fn kind_out(kind: OrderKind) -> i32 {
    (match kind {
        OrderKind::Limit => pb::OrderType::Limit,
        OrderKind::Market => pb::OrderType::Market,
    }) as i32
}

/// The instrument named by a symbol, or NOT_FOUND naming the field.
/// A registry unit by its name (`CEA2025`, `CCER2024-1001`).
pub fn unit(
    catalog: &Catalog,
    name: &str,
    field: &str,
) -> Result<registry::model::UnitId, ApiError> {
    if name.is_empty() {
        return Err(ApiError::field(field, "must name a unit such as CEA2025"));
    }
    catalog.unit(name).ok_or_else(|| {
        ApiError::not_found("UNKNOWN_UNIT", field, format!("{field}: no unit {name:?}"))
    })
}

pub fn instrument(catalog: &Catalog, symbol: &str, field: &str) -> Result<InstrumentId, ApiError> {
    if symbol.is_empty() {
        return Err(ApiError::field(
            field,
            "must name an instrument such as CEA2025",
        ));
    }
    catalog.instrument(symbol).ok_or_else(|| {
        ApiError::not_found(
            "UNKNOWN_INSTRUMENT",
            field,
            format!("{field}: no instrument {symbol:?}"),
        )
    })
}

/// A `PlaceOrderRequest` as an engine order. `prefix` names the request in field paths
/// (e.g. `place.` inside OrderEntry).
pub fn new_order(
    r: &pb::PlaceOrderRequest,
    catalog: &Catalog,
    prefix: &str,
) -> Result<NewOrder, ApiError> {
    new_order_fields(r, catalog).map_err(|e| e.prefixed(prefix))
}

fn new_order_fields(r: &pb::PlaceOrderRequest, catalog: &Catalog) -> Result<NewOrder, ApiError> {
    let account = id(r.account_id, "account_id")?;
    let client_order_id = id(r.client_order_id, "client_order_id")?;
    let instrument = instrument(catalog, &r.instrument, "instrument")?;
    let side = side(r.side, "side")?;
    let kind = match pb::OrderType::try_from(r.order_type) {
        Ok(pb::OrderType::Limit) => OrderKind::Limit,
        Ok(pb::OrderType::Market) => OrderKind::Market,
        _ => {
            return Err(ApiError::field(
                "order_type",
                "must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET",
            ));
        }
    };
    let time_in_force = match pb::TimeInForce::try_from(r.time_in_force) {
        Ok(pb::TimeInForce::Unspecified | pb::TimeInForce::Day) => TimeInForce::Day,
        Ok(pb::TimeInForce::Gtc) => TimeInForce::Gtc,
        Ok(pb::TimeInForce::Ioc) => TimeInForce::Ioc,
        Ok(pb::TimeInForce::Fok) => TimeInForce::Fok,
        Err(_) => return Err(ApiError::field("time_in_force", "unknown value")),
    };
    // A post-only order is one that rests: never with IOC or FOK, never at market.
    if r.post_only
        && (kind == OrderKind::Market
            || matches!(time_in_force, TimeInForce::Ioc | TimeInForce::Fok))
    {
        return Err(ApiError::field(
            "post_only",
            "a post-only order must rest: a limit DAY or GTC order, not IOC, FOK or market",
        ));
    }
    if kind == OrderKind::Market && time_in_force == TimeInForce::Gtc {
        return Err(ApiError::field(
            "time_in_force",
            "a market order cannot rest: DAY, IOC or FOK",
        ));
    }
    let price_fen = match kind {
        OrderKind::Limit => price(r.price_fen, "price_fen")?,
        OrderKind::Market => {
            if r.price_fen != 0 {
                return Err(ApiError::field("price_fen", "must be 0 for a market order"));
            }
            0
        }
    };
    Ok(NewOrder {
        account: engine::AccountId(account),
        client_order_id: ClientOrderId(client_order_id),
        instrument,
        side,
        kind,
        time_in_force,
        price_fen,
        quantity_t: quantity(r.quantity_t, "quantity_t")?,
        post_only: r.post_only,
    })
}

fn status(quantity: u64, filled: u64, leaves: u64, cancelled: bool) -> i32 {
    (if cancelled {
        pb::OrderStatus::Cancelled
    } else if leaves == 0 && filled >= quantity {
        pb::OrderStatus::Filled
    } else if filled > 0 {
        pb::OrderStatus::PartiallyFilled
    } else {
        pb::OrderStatus::New
    }) as i32
}

pub fn report_out(r: &engine::OrderReport, catalog: &Catalog) -> pb::Order {
    pb::Order {
        order_id: r.order.0,
        account_id: r.account.0,
        client_order_id: r.client_order_id.0,
        instrument: catalog.symbol(r.instrument),
        side: side_out(r.side),
        order_type: kind_out(r.kind),
        time_in_force: tif_out(r.time_in_force),
        price_fen: r.price_fen,
        quantity_t: r.quantity_t,
        filled_t: r.filled_t,
        leaves_t: r.leaves_t,
        status: status(r.quantity_t, r.filled_t, r.leaves_t, false),
    }
}

pub fn view_out(v: &engine::OrderView, catalog: &Catalog) -> pb::Order {
    pb::Order {
        order_id: v.order.0,
        account_id: v.account.0,
        client_order_id: v.client_order_id.0,
        instrument: catalog.symbol(v.instrument),
        side: side_out(v.side),
        order_type: pb::OrderType::Limit as i32,
        time_in_force: tif_out(v.time_in_force),
        price_fen: v.price_fen,
        quantity_t: v.quantity_t,
        filled_t: v.filled_t,
        leaves_t: v.leaves_t,
        status: status(v.quantity_t, v.filled_t, v.leaves_t, false),
    }
}

/// A closed order as the API shows it: FILLED, or CANCELLED with its fills (leaves 0).
pub fn closed_out(c: &engine::ClosedView, catalog: &Catalog) -> pb::Order {
    pb::Order {
        order_type: if c.market {
            pb::OrderType::Market
        } else {
            pb::OrderType::Limit
        } as i32,
        status: if c.filled {
            pb::OrderStatus::Filled
        } else {
            pb::OrderStatus::Cancelled
        } as i32,
        ..view_out(&c.view, catalog)
    }
}

pub fn cancel_reason(reason: CancelReason) -> String {
    reason.code().to_string()
}

/// The reply to a place/amend/cancel: the order's state after the command, its fills, and
/// how it left the book. `order` is the order concerned (None: the one accepted here).
pub fn order_reply(
    applied: &Applied,
    order: Option<OrderId>,
    catalog: &Catalog,
) -> Result<pb::OrderReply, ApiError> {
    if !applied.was_journaled() {
        return Err(ApiError::disk_full());
    }
    if let Some(reason) = applied.rejection() {
        return Err(ApiError::engine(reason));
    }
    let mut reply = pb::OrderReply {
        sequence: applied.seq,
        ..pb::OrderReply::default()
    };
    let mut target = order;
    for event in &applied.events {
        match &event.kind {
            EventKind::Accepted(r) if target.is_none() || target == Some(r.order) => {
                target = Some(r.order);
                reply.order = Some(report_out(r, catalog));
            }
            EventKind::Amended { report, .. } if target == Some(report.order) => {
                reply.order = Some(report_out(report, catalog));
            }
            EventKind::Trade(t) => add_fills(&mut reply, t, target),
            EventKind::Cancelled {
                order: o,
                account,
                instrument,
                side,
                quantity_t,
                filled_t,
                cancelled_t,
                reason,
            } if Some(*o) == target => {
                reply.cancel_reason = cancel_reason(*reason);
                reply.cancelled_t = *cancelled_t;
                let order = reply.order.get_or_insert_with(|| pb::Order {
                    order_id: o.0,
                    account_id: account.0,
                    instrument: catalog.symbol(*instrument),
                    side: side_out(*side),
                    ..pb::Order::default()
                });
                order.quantity_t = *quantity_t;
                order.filled_t = *filled_t;
                order.leaves_t = 0;
                order.status = pb::OrderStatus::Cancelled as i32;
            }
            _ => {}
        }
    }
    Ok(reply)
}

/// The fills of `t` on the `target` order, added to its reply with the order's figures
/// after them.
fn add_fills(reply: &mut pb::OrderReply, t: &engine::TradeReport, target: Option<OrderId>) {
    for (fill, side) in [(&t.buy, Side::Buy), (&t.sell, Side::Sell)] {
        if Some(fill.order) != target {
            continue;
        }
        reply.fills.push(pb::Fill {
            trade_id: t.trade.0,
            price_fen: t.price_fen,
            quantity_t: t.quantity_t,
            fee_fen: fill.fee_fen,
            aggressor: t.aggressor == Some(side),
            kind: trade_kind_out(t.kind),
        });
        if let Some(o) = reply.order.as_mut() {
            o.filled_t = fill.filled_t;
            o.leaves_t = fill.leaves_t;
            o.status = status(o.quantity_t, fill.filled_t, fill.leaves_t, false);
        }
    }
}

pub fn bar_out(b: &engine::DailyBar, catalog: &Catalog) -> pb::DailyBar {
    pb::DailyBar {
        instrument: catalog.symbol(b.instrument),
        trading_date: b.date,
        open_fen: b.open_fen,
        high_fen: b.high_fen,
        low_fen: b.low_fen,
        close_fen: b.close_fen,
        volume_t: b.volume_t,
        turnover_fen: b.turnover_fen,
        trade_count: b.trades,
    }
}

pub fn trade_out(
    t: &engine::TradeReport,
    seq: u64,
    timestamp_ns: u64,
    catalog: &Catalog,
) -> pb::Trade {
    pb::Trade {
        trade_id: t.trade.0,
        instrument: catalog.symbol(t.instrument),
        price_fen: t.price_fen,
        quantity_t: t.quantity_t,
        aggressor_side: t.aggressor.map_or(pb::Side::Unspecified as i32, side_out),
        timestamp_ns,
        kind: trade_kind_out(t.kind),
        sequence: seq,
    }
}

/// Validates an idempotency key (1 to 128 bytes).
pub fn idempotency_key(key: &str, field: &str) -> Result<String, ApiError> {
    if key.is_empty() || key.len() > ::registry::tx::IDEMPOTENCY_KEY_BYTES_MAX {
        return Err(ApiError::field(field, "must be 1 to 128 bytes"));
    }
    Ok(key.to_string())
}

/// A required non-zero id.
pub fn id(value: u64, field: &str) -> Result<u64, ApiError> {
    if value == 0 {
        return Err(ApiError::field(field, "must be set (non-zero)"));
    }
    Ok(value)
}

/// A required positive quantity.
pub fn quantity(value: u64, field: &str) -> Result<u64, ApiError> {
    if value == 0 {
        return Err(ApiError::field(field, "must be at least 1 t"));
    }
    if value > engine::ALLOWANCES_T_MAX {
        return Err(ApiError::field(field, "too large"));
    }
    Ok(value)
}

/// A required positive price.
pub fn price(value: i64, field: &str) -> Result<i64, ApiError> {
    if value <= 0 {
        return Err(ApiError::field(field, "must be a positive number of fen"));
    }
    if value > engine::FUNDS_FEN_MAX / 1_000_000 {
        return Err(ApiError::field(field, "too large"));
    }
    Ok(value)
}

pub fn sector_in(v: i32, field: &str) -> Result<Sector, ApiError> {
    match pb::Sector::try_from(v) {
        Ok(pb::Sector::Power) => Ok(Sector::Power),
        Ok(pb::Sector::Steel) => Ok(Sector::Steel),
        Ok(pb::Sector::Cement) => Ok(Sector::Cement),
        Ok(pb::Sector::Aluminium) => Ok(Sector::Aluminium),
        _ => Err(ApiError::field(field, "must be a SECTOR_ value")),
    }
}

pub fn sector_out(s: Sector) -> pb::Sector {
    match s {
        Sector::Power => pb::Sector::Power,
        Sector::Steel => pb::Sector::Steel,
        Sector::Cement => pb::Sector::Cement,
        Sector::Aluminium => pb::Sector::Aluminium,
    }
}

pub fn compliance_status_out(s: StatusCode) -> pb::ComplianceStatus {
    match s {
        StatusCode::Compliant => pb::ComplianceStatus::Compliant,
        StatusCode::Short => pb::ComplianceStatus::Short,
        StatusCode::EmissionsNotEntered => pb::ComplianceStatus::EmissionsNotEntered,
    }
}

/// A registry account type; a covered entity's needs its sector.
pub fn account_type(t: i32, sector: i32) -> Result<AccountType, ApiError> {
    let sector = || {
        sector_in(sector, "sector")
            .map_err(|_| ApiError::field("sector", "a covered entity needs a SECTOR_ value"))
    };
    Ok(match pb::AccountType::try_from(t) {
        Ok(pb::AccountType::NationalAuthority) => AccountType::NationalAuthority,
        Ok(pb::AccountType::ProvincialAuthority) => AccountType::ProvincialAuthority,
        Ok(pb::AccountType::CoveredEntity) => AccountType::CoveredEntity(sector()?),
        Ok(pb::AccountType::MemberFirm) => AccountType::MemberFirm,
        Ok(pb::AccountType::Pledgee) => AccountType::Pledgee,
        Ok(pb::AccountType::ExchangeCustody) => AccountType::ExchangeCustody,
        Ok(pb::AccountType::Retirement) => AccountType::Retirement,
        Ok(pb::AccountType::Cancellation) => AccountType::Cancellation,
        _ => {
            return Err(ApiError::field(
                "account_type",
                "must be an ACCOUNT_TYPE_ value",
            ));
        }
    })
}

/// (account type, sector) on the wire.
pub fn account_type_out(t: AccountType) -> (i32, i32) {
    let (t, s) = match t {
        AccountType::NationalAuthority => {
            (pb::AccountType::NationalAuthority, pb::Sector::Unspecified)
        }
        AccountType::ProvincialAuthority => (
            pb::AccountType::ProvincialAuthority,
            pb::Sector::Unspecified,
        ),
        AccountType::CoveredEntity(s) => (pb::AccountType::CoveredEntity, sector_out(s)),
        AccountType::MemberFirm => (pb::AccountType::MemberFirm, pb::Sector::Unspecified),
        AccountType::Pledgee => (pb::AccountType::Pledgee, pb::Sector::Unspecified),
        AccountType::ExchangeCustody => (pb::AccountType::ExchangeCustody, pb::Sector::Unspecified),
        AccountType::Retirement => (pb::AccountType::Retirement, pb::Sector::Unspecified),
        AccountType::Cancellation => (pb::AccountType::Cancellation, pb::Sector::Unspecified),
    };
    (t as i32, s as i32)
}

pub fn account_status_out(s: AccountStatus) -> i32 {
    (match s {
        AccountStatus::Open => pb::AccountStatus::Open,
        AccountStatus::Restricted => pb::AccountStatus::Restricted,
        AccountStatus::Frozen => pb::AccountStatus::Frozen,
        AccountStatus::Closed => pb::AccountStatus::Closed,
    }) as i32
}
