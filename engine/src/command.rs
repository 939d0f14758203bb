//! Commands: the only input of the engine. Each carries its sequence number and timestamp.

use crate::types::{
    AccountId, ClientOrderId, ClosingPriceMethod, Fen, InstrumentId, OrderId, OrderKind, Phase,
    Seq, Side, StpMode, Symbol, TimeInForce, TimestampNs, Tonnes, TradingDate, TransferId,
};

/// One sequenced input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub seq: Seq,
    pub timestamp_ns: TimestampNs,
    pub kind: CommandKind,
}

/// Parameters of one instrument (one allowance vintage). Every rule is a parameter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentSpec {
    pub symbol: Symbol,
    /// Price step; 1 fen (RMB 0.01) by default.
    pub tick_fen: Fen,
    /// Quantity step; 1 t by default.
    pub lot_t: Tonnes,
    /// Previous close: the reference price of the price band.
    pub reference_price_fen: Fen,
    /// Band as basis points of the reference price (1,000 = +/-10%); `None` = no band.
    pub band_bp: Option<u32>,
    /// Largest quantity of one continuous-trading order (99,999 t: orders are < 100,000 t).
    pub max_order_t: Tonnes,
    pub maker_fee_bp: u32,
    pub taker_fee_bp: u32,
    /// Allowances bought on day T become sellable on T+1.
    pub t_plus_one: bool,
    pub closing_method: ClosingPriceMethod,
    /// Holding limit applied to accounts without their own (`u64::MAX` = none).
    pub position_limit_t: Tonnes,
    /// Large-holder reporting threshold (`u64::MAX` = none).
    pub large_holder_t: Tonnes,
    /// The instrument starts the day in the opening call auction.
    pub opening_call: bool,
    /// Smallest block agreement (100,000 t).
    pub block_min_t: Tonnes,
    /// Block agreement band around the reference, basis points (3,000 = +/-30%).
    pub block_band_bp: u32,
    /// Smallest quantity offered in one-way bidding (100,000 t).
    pub bidding_min_t: Tonnes,
    /// Highest bid in one-way bidding, basis points above the previous close (1,000: 1.1x).
    pub bid_cap_bp: u32,
}

impl InstrumentSpec {
    /// The exchange's listed-trading defaults for a vintage with this reference price.
    pub fn listed(symbol: Symbol, reference_price_fen: Fen) -> InstrumentSpec {
        InstrumentSpec {
            symbol,
            tick_fen: 1,
            lot_t: 1,
            reference_price_fen,
            band_bp: Some(1_000),
            max_order_t: 99_999,
            maker_fee_bp: 0,
            taker_fee_bp: 0,
            t_plus_one: true,
            closing_method: ClosingPriceMethod::Vwap,
            position_limit_t: u64::MAX,
            large_holder_t: u64::MAX,
            opening_call: false,
            block_min_t: 100_000,
            block_band_bp: 3_000,
            bidding_min_t: 100_000,
            bid_cap_bp: 1_000,
        }
    }

    /// A plain FIFO book: no band, no size cap, no fees, no T+1.
    pub fn plain(symbol: Symbol, reference_price_fen: Fen) -> InstrumentSpec {
        InstrumentSpec {
            band_bp: None,
            max_order_t: u64::MAX,
            t_plus_one: false,
            ..InstrumentSpec::listed(symbol, reference_price_fen)
        }
    }
}

/// The reserve price of a one-way bidding auction, chosen by the seller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveRule {
    /// The previous close (the instrument's reference price).
    PreviousClose,
    /// 10% below the previous close (rounded up to the tick).
    TenPercentBelow,
}

/// How winners of a one-way bidding auction pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pricing {
    /// Everyone pays the lowest accepted bid.
    Uniform,
    /// Everyone pays their own bid.
    PayAsBid,
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub kind: OrderKind,
    pub time_in_force: TimeInForce,
    /// Limit price; ignored for market orders.
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub post_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    CreateInstrument(InstrumentSpec),
    OpenAccount {
        account: AccountId,
        stp: StpMode,
    },
    SetStpMode {
        account: AccountId,
        stp: StpMode,
    },
    /// Restricted accounts may cancel but not place or amend orders.
    RestrictAccount {
        account: AccountId,
        restricted: bool,
        cancel_orders: bool,
    },
    /// Holding limit of one account in one instrument (`u64::MAX` = none).
    SetPositionLimit {
        account: AccountId,
        instrument: InstrumentId,
        limit_t: Tonnes,
    },
    /// The instrument's default holding limit and large-holder threshold (`None`: unchanged;
    /// `u64::MAX`: none). Accounts with their own limit keep it.
    SetInstrumentLimits {
        instrument: InstrumentId,
        position_limit_t: Option<Tonnes>,
        large_holder_t: Option<Tonnes>,
    },
    /// Funds from the settlement bank.
    CreditFunds {
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
    },
    DebitFunds {
        transfer: TransferId,
        account: AccountId,
        amount_fen: Fen,
    },
    /// Allowances moved from the registry's `trading` position into the engine.
    DepositAllowances {
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
    },
    /// Free allowances leaving the engine for the registry.
    WithdrawAllowances {
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
    },
    OpenDay {
        date: TradingDate,
    },
    SetPhase {
        phase: Phase,
    },
    CloseDay,
    HaltInstrument {
        instrument: InstrumentId,
        cancel_orders: bool,
    },
    ResumeInstrument {
        instrument: InstrumentId,
    },
    /// Overrides the reference price (only while no day is open).
    SetReferencePrice {
        instrument: InstrumentId,
        price_fen: Fen,
    },
    PlaceOrder(NewOrder),
    CancelOrder {
        account: AccountId,
        order: OrderId,
    },
    CancelAll {
        account: AccountId,
        instrument: Option<InstrumentId>,
    },
    /// New limit price and/or new total quantity (filled included).
    AmendOrder {
        account: AccountId,
        order: OrderId,
        price_fen: Option<Fen>,
        quantity_t: Option<Tonnes>,
    },
    /// Opens or closes the block-trade window (closing expires pending proposals).
    SetBlockWindow {
        open: bool,
    },
    /// A block agreement offered to a named counterparty; `side` is the proposer's.
    ProposeBlock {
        proposer: AccountId,
        counterparty: AccountId,
        client_order_id: ClientOrderId,
        instrument: InstrumentId,
        side: Side,
        price_fen: Fen,
        quantity_t: Tonnes,
    },
    AcceptBlock {
        account: AccountId,
        block: OrderId,
    },
    RejectBlock {
        account: AccountId,
        block: OrderId,
    },
    CancelBlock {
        account: AccountId,
        block: OrderId,
    },
    /// A seller (a member, or the authority for paid allocation) offers a fixed quantity.
    AnnounceBidding {
        seller: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        reserve: ReserveRule,
        pricing: Pricing,
        /// Most one bidder may buy, basis points of the offered quantity (10,000 = all).
        bidder_max_bp: u32,
    },
    OpenBidding {
        auction: OrderId,
    },
    /// A pledge enforced for auction: the pledged units arrive in the pledgor's account
    /// locked for the pledgee's sale (idempotent by `transfer`, like a deposit); each sale
    /// pays the pledgee first, up to `claim_fen`, and the pledgor the rest.
    DepositForDisposal {
        transfer: TransferId,
        /// The registry's pledge id.
        disposal: u64,
        pledgor: AccountId,
        pledgee: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        claim_fen: Fen,
    },
    /// One-way bidding of a disposal's units (any quantity: the block minimum does not
    /// apply to a pledge sale); opened, bid and closed like any other.
    AnnounceDisposal {
        disposal: u64,
        reserve: ReserveRule,
        pricing: Pricing,
        bidder_max_bp: u32,
    },
    /// A sealed bid; funds are locked when it is accepted.
    PlaceBid {
        auction: OrderId,
        bidder: AccountId,
        client_order_id: ClientOrderId,
        price_fen: Fen,
        quantity_t: Tonnes,
    },
    CloseBidding {
        auction: OrderId,
    },
}
