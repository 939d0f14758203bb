//! Events: the only output of the engine. Each is stamped with the sequence of the command
//! that caused it. Within one command, events come in this order: the command's own reports
//! (accepted / rejected / amended / trades / cancels / lifecycle), then balance changes sorted
//! by account, then position changes sorted by (account, instrument), then large-holder
//! reports, then level-2 updates sorted by (instrument, side, price). Balance, position and
//! level events carry the values after the command and appear only when a value changed.

use crate::reason::Reject;
use crate::types::{
    AccountId, CancelReason, ClientOrderId, Fen, InstrumentId, OrderId, OrderKind, Phase, Seq,
    Side, Symbol, TimeInForce, Tonnes, TradeId, TradeKind, TradingDate, TransferId,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: Seq,
    pub kind: EventKind,
}

/// The state of an order as reported: `quantity_t == filled_t + leaves_t` always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderReport {
    pub order: OrderId,
    pub client_order_id: ClientOrderId,
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub kind: OrderKind,
    pub time_in_force: TimeInForce,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub filled_t: Tonnes,
    pub leaves_t: Tonnes,
}

/// One side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillSide {
    pub order: OrderId,
    pub account: AccountId,
    pub fee_fen: Fen,
    /// The order's filled and leaves quantities after this trade.
    pub filled_t: Tonnes,
    pub leaves_t: Tonnes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeReport {
    pub trade: TradeId,
    pub instrument: InstrumentId,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    /// The side that took liquidity; `None` for auction, block and bidding trades.
    pub aggressor: Option<Side>,
    pub kind: TradeKind,
    pub buy: FillSide,
    pub sell: FillSide,
}

/// The day's figures of one instrument, published at close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyBar {
    pub instrument: InstrumentId,
    pub date: TradingDate,
    /// 0 when nothing traded (then high, low and open are 0 too).
    pub open_fen: Fen,
    pub high_fen: Fen,
    pub low_fen: Fen,
    /// The closing price: the next day's reference.
    pub close_fen: Fen,
    pub volume_t: Tonnes,
    pub turnover_fen: Fen,
    pub trades: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The command was refused and changed nothing.
    Rejected {
        reason: Reject,
    },
    InstrumentCreated {
        instrument: InstrumentId,
        symbol: Symbol,
    },
    AccountOpened {
        account: AccountId,
    },
    StpModeSet {
        account: AccountId,
    },
    AccountRestricted {
        account: AccountId,
        restricted: bool,
    },
    PositionLimitSet {
        account: AccountId,
        instrument: InstrumentId,
        limit_t: Tonnes,
    },
    /// Pledged units locked in the pledgor's account for the pledgee's sale.
    DisposalOpened {
        disposal: u64,
        pledgor: AccountId,
        pledgee: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        claim_fen: Fen,
    },
    /// A disposal auction closed: `paid_fen` of the pledgor's net proceeds went to the
    /// pledgee; `kept_t` stay locked for another sale (claim left), `released_t` went back
    /// to the pledgor (claim paid). With neither, the disposal is over.
    DisposalSettled {
        disposal: u64,
        auction: OrderId,
        pledgee: AccountId,
        paid_fen: Fen,
        claim_left_fen: Fen,
        kept_t: Tonnes,
        released_t: Tonnes,
    },
    /// The instrument's limits after a `SetInstrumentLimits` (`u64::MAX`: none).
    InstrumentLimitsSet {
        instrument: InstrumentId,
        position_limit_t: Tonnes,
        large_holder_t: Tonnes,
    },
    FundsCredited {
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
    },
    FundsDebited {
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
    },
    AllowancesDeposited {
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
    },
    AllowancesWithdrawn {
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
    },
    /// A retried transfer id with the same payload: already applied, nothing changed.
    TransferAlreadyApplied {
        transfer: TransferId,
    },
    DayOpened {
        date: TradingDate,
    },
    /// The band in force for the day.
    PriceBand {
        instrument: InstrumentId,
        reference_fen: Fen,
        low_fen: Fen,
        high_fen: Fen,
    },
    PhaseChanged {
        phase: Phase,
    },
    ClosingPrice(DailyBar),
    DayClosed {
        date: TradingDate,
    },
    InstrumentHalted {
        instrument: InstrumentId,
    },
    InstrumentResumed {
        instrument: InstrumentId,
    },
    ReferencePriceSet {
        instrument: InstrumentId,
        price_fen: Fen,
    },
    Accepted(OrderReport),
    Amended {
        report: OrderReport,
        priority_kept: bool,
    },
    Trade(TradeReport),
    /// The order left the book; `cancelled_t` is what was left (`quantity = filled +
    /// cancelled`), and leaves are 0 from now on.
    Cancelled {
        order: OrderId,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        quantity_t: Tonnes,
        filled_t: Tonnes,
        cancelled_t: Tonnes,
        reason: CancelReason,
    },
    /// Funds of an account after the command.
    Balance {
        account: AccountId,
        free_fen: Fen,
        locked_fen: Fen,
        pending_fen: Fen,
    },
    /// Allowances of an account in an instrument after the command.
    Position {
        account: AccountId,
        instrument: InstrumentId,
        free_t: Tonnes,
        locked_t: Tonnes,
        pending_t: Tonnes,
    },
    /// The holding crossed the instrument's large-holder reporting threshold upwards.
    LargeHolder {
        account: AccountId,
        instrument: InstrumentId,
        holding_t: Tonnes,
    },
    /// Opening call: the price and volume an uncross would give now (price 0: no cross);
    /// `imbalance_t` is buy minus sell volume at that price.
    Indicative {
        instrument: InstrumentId,
        price_fen: Fen,
        volume_t: Tonnes,
        imbalance_t: i64,
    },
    /// The opening call auction uncrossed (volume 0: nothing crossed).
    AuctionUncross {
        instrument: InstrumentId,
        price_fen: Fen,
        volume_t: Tonnes,
    },
    BlockWindow {
        open: bool,
    },
    BlockProposed {
        block: OrderId,
        proposer: AccountId,
        counterparty: AccountId,
        instrument: InstrumentId,
        side: Side,
        price_fen: Fen,
        quantity_t: Tonnes,
    },
    BlockRejected {
        block: OrderId,
    },
    BlockCancelled {
        block: OrderId,
    },
    BlockExpired {
        block: OrderId,
    },
    BiddingAnnounced {
        auction: OrderId,
        seller: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        reserve_fen: Fen,
        cap_fen: Fen,
        uniform: bool,
    },
    BiddingOpened {
        auction: OrderId,
    },
    BidAccepted {
        auction: OrderId,
        bid: OrderId,
        bidder: AccountId,
        price_fen: Fen,
        quantity_t: Tonnes,
    },
    /// Results: the fills precede this event as `Trade`s of kind `Bidding`.
    BiddingClosed {
        auction: OrderId,
        clearing_fen: Fen,
        sold_t: Tonnes,
        unsold_t: Tonnes,
    },
    /// Level-2: the total at a price level after the command (0 = the level is gone).
    Level {
        instrument: InstrumentId,
        side: Side,
        price_fen: Fen,
        quantity_t: Tonnes,
        orders: u32,
    },
}
