//! The engine's state: accounts, instruments, the order arena and the indexes over it.

use crate::command::InstrumentSpec;
use crate::index::{SlotIndex, hash_run, hash_u64};
use crate::levels::{NIL, SideLevels};
use crate::types::{
    AccountId, ClosingPriceMethod, Fen, Phase, Seq, Side, StpMode, TimeInForce, Tonnes,
    TradingDate, TransferId,
};

/// Named limits; going one past any of them is a clear rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub accounts_max: u32,
    pub instruments_max: u32,
    /// Resting orders in the whole engine (the arena's capacity).
    pub orders_max: u32,
    pub orders_per_account_max: u32,
    /// Pending block proposals in the engine.
    pub blocks_max: u32,
    /// One-way bidding auctions announced or open at once.
    pub auctions_max: u32,
    /// Bids in one auction.
    pub bids_per_auction_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            accounts_max: 100_000,
            instruments_max: 64,
            orders_max: 1 << 20,
            orders_per_account_max: 10_000,
            blocks_max: 1_024,
            auctions_max: 16,
            bids_per_auction_max: 10_000,
        }
    }
}

/// Engine-wide configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// The exchange's fee account (opened with the engine).
    pub fee_account: AccountId,
    /// `false` turns the engine into a plain FIFO book: no funds or allowance checks, no
    /// locking, no settlement (unlimited funds).
    pub risk_checks: bool,
    /// Sale proceeds usable the same day (`false`: credited as pending until the next day).
    pub proceeds_same_day: bool,
    pub limits: Limits,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            fee_account: AccountId(0),
            risk_checks: true,
            proceeds_same_day: true,
            limits: Limits::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub free_t: Tonnes,
    pub locked_t: Tonnes,
    pub pending_t: Tonnes,
    /// Leaves of the account's resting buy orders (potential holding, for position limits).
    pub open_buy_t: Tonnes,
    /// Account-specific holding limit; `None` uses the instrument's.
    pub limit_t: Option<Tonnes>,
    pub(crate) touched_seq: Seq,
    pub(crate) before: (Tonnes, Tonnes, Tonnes),
}

impl Position {
    pub fn holding_t(&self) -> Tonnes {
        self.free_t + self.locked_t + self.pending_t
    }
}

#[derive(Clone, Debug)]
pub struct Account {
    pub id: AccountId,
    pub stp: StpMode,
    pub restricted: bool,
    pub free_fen: Fen,
    pub locked_fen: Fen,
    pub pending_fen: Fen,
    pub positions: Vec<Position>,
    /// Live (resting) orders of the account.
    pub orders: u32,
    pub(crate) order_head: u32,
    pub(crate) order_tail: u32,
    pub(crate) touched_seq: Seq,
    pub(crate) before: (Fen, Fen, Fen),
}

impl Account {
    pub(crate) fn new(id: AccountId, stp: StpMode, instruments: usize) -> Account {
        Account {
            id,
            stp,
            restricted: false,
            free_fen: 0,
            locked_fen: 0,
            pending_fen: 0,
            positions: vec![Position::default(); instruments],
            orders: 0,
            order_head: NIL,
            order_tail: NIL,
            touched_seq: 0,
            before: (0, 0, 0),
        }
    }
}

/// Today's trading figures of one instrument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayStats {
    pub open_fen: Fen,
    pub high_fen: Fen,
    pub low_fen: Fen,
    pub last_fen: Fen,
    pub volume_t: Tonnes,
    pub turnover_fen: Fen,
    pub trades: u64,
}

impl DayStats {
    pub(crate) fn record(&mut self, price_fen: Fen, quantity_t: Tonnes, notional_fen: Fen) {
        if self.trades == 0 {
            self.open_fen = price_fen;
            self.high_fen = price_fen;
            self.low_fen = price_fen;
        }
        self.high_fen = self.high_fen.max(price_fen);
        self.low_fen = self.low_fen.min(price_fen);
        self.last_fen = price_fen;
        self.volume_t = self.volume_t.saturating_add(quantity_t);
        self.turnover_fen = self.turnover_fen.saturating_add(notional_fen);
        self.trades += 1;
    }

    /// The closing price by `method`; `previous` when nothing traded.
    pub fn close(&self, method: ClosingPriceMethod, tick_fen: Fen, previous: Fen) -> Fen {
        if self.volume_t == 0 {
            return previous;
        }
        match method {
            ClosingPriceMethod::LastTrade => self.last_fen,
            ClosingPriceMethod::Vwap => {
                // Round half up to the tick, in integers.
                let volume = i128::from(self.volume_t) * i128::from(tick_fen);
                let ticks = (2 * i128::from(self.turnover_fen) + volume) / (2 * volume);
                i64::try_from(ticks * i128::from(tick_fen)).unwrap_or(previous)
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Instrument {
    pub spec: InstrumentSpec,
    pub halted: bool,
    /// Today's band `[low, high]`; `None` when the instrument has no band.
    pub band: Option<(Fen, Fen)>,
    pub bids: SideLevels,
    pub asks: SideLevels,
    pub day: DayStats,
    /// Allowances deposited minus withdrawn: what all positions must add up to.
    pub net_deposited_t: Tonnes,
    /// Last indicative uncross published in the opening call (price, volume, imbalance).
    pub indicative: (Fen, Tonnes, i64),
}

impl Instrument {
    pub fn side(&self, side: Side) -> &SideLevels {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    pub fn side_mut(&mut self, side: Side) -> &mut SideLevels {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }
}

/// The band around `reference` of `band_bp` basis points, snapped inwards to the tick.
pub fn band_of(reference_fen: Fen, band_bp: u32, tick_fen: Fen) -> (Fen, Fen) {
    let reference = i128::from(reference_fen);
    let tick = i128::from(tick_fen);
    let bp = i128::from(band_bp);
    let low_raw = reference * (10_000 - bp.min(10_000));
    let high_raw = reference * (10_000 + bp);
    // low: ceil(low_raw / 10_000) to the tick above; high: floor to the tick below.
    let low = (low_raw + 10_000 * tick - 1) / (10_000 * tick) * tick;
    let high = high_raw / (10_000 * tick) * tick;
    let low = i64::try_from(low.max(tick)).unwrap_or(i64::MAX);
    let high = i64::try_from(high).unwrap_or(i64::MAX);
    (low, high)
}

/// A resting order in the arena. 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: u64,
    pub client_order_id: u64,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub filled_t: Tonnes,
    pub account: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) account_prev: u32,
    pub(crate) account_next: u32,
    pub instrument: u16,
    pub(crate) flags: u8,
}

const FLAG_SELL: u8 = 1;
const FLAG_POST_ONLY: u8 = 1 << 1;
const TIF_SHIFT: u8 = 2;
/// Set only on a closed market order's record (a market order never rests).
const FLAG_MARKET: u8 = 1 << 4;

impl Order {
    pub const FREE: Order = Order {
        id: 0,
        client_order_id: 0,
        price_fen: 0,
        quantity_t: 0,
        filled_t: 0,
        account: NIL,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
        instrument: 0,
        flags: 0,
    };

    pub(crate) fn set_flags(&mut self, side: Side, tif: TimeInForce, post_only: bool) {
        let tif_bits = match tif {
            TimeInForce::Day => 0,
            TimeInForce::Gtc => 1,
            TimeInForce::Ioc => 2,
            TimeInForce::Fok => 3,
        };
        self.flags = (u8::from(side == Side::Sell) * FLAG_SELL)
            | (u8::from(post_only) * FLAG_POST_ONLY)
            | (tif_bits << TIF_SHIFT);
    }

    pub fn side(&self) -> Side {
        if self.flags & FLAG_SELL != 0 {
            Side::Sell
        } else {
            Side::Buy
        }
    }

    pub(crate) fn set_market(&mut self) {
        self.flags |= FLAG_MARKET;
    }

    pub fn is_market(&self) -> bool {
        self.flags & FLAG_MARKET != 0
    }

    pub fn post_only(&self) -> bool {
        self.flags & FLAG_POST_ONLY != 0
    }

    pub fn time_in_force(&self) -> TimeInForce {
        match (self.flags >> TIF_SHIFT) & 3 {
            0 => TimeInForce::Day,
            1 => TimeInForce::Gtc,
            2 => TimeInForce::Ioc,
            _ => TimeInForce::Fok,
        }
    }

    pub fn leaves_t(&self) -> Tonnes {
        self.quantity_t - self.filled_t
    }

    pub fn is_live(&self) -> bool {
        self.account != NIL
    }
}

/// What a transfer id was used for, to tell a retry from a clash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    pub kind: u8,
    pub account: AccountId,
    pub instrument: u32,
    pub amount: u64,
    /// The command that applied it (a retry is answered with it).
    pub seq: Seq,
}

impl TransferRecord {
    /// Whether `other` asks for the same move (whichever command applied it).
    pub fn same_request(&self, other: &TransferRecord) -> bool {
        (self.kind, self.account, self.instrument, self.amount)
            == (other.kind, other.account, other.instrument, other.amount)
    }
}

pub const TRANSFER_CREDIT: u8 = 1;
pub const TRANSFER_DEBIT: u8 = 2;
pub const TRANSFER_DEPOSIT: u8 = 3;
pub const TRANSFER_WITHDRAW: u8 = 4;
/// Pledged units deposited for disposal (`DepositForDisposal`).
pub const TRANSFER_DISPOSAL: u8 = 5;

/// Everything the engine owns, in the layout the hot path wants.
#[derive(Clone, Debug)]
pub struct State {
    pub config: EngineConfig,
    pub last_seq: Seq,
    pub phase: Phase,
    pub date: TradingDate,
    pub next_order_id: u64,
    pub next_trade_id: u64,
    pub accounts: Vec<Account>,
    pub account_index: SlotIndex,
    pub instruments: Vec<Instrument>,
    pub orders: Vec<Order>,
    pub free_order: u32,
    pub order_index: SlotIndex,
    pub client_index: SlotIndex,
    pub transfers: std::collections::HashMap<TransferId, TransferRecord>,
    /// Funds credited minus debited: what all balances must add up to (fees included).
    pub net_funds_fen: Fen,
    pub block_window: bool,
    /// Pending block proposals, oldest first.
    pub blocks: Vec<BlockProposal>,
    /// One-way bidding auctions announced or open.
    pub auctions: Vec<Bidding>,
    /// Pledged units locked for their pledgee's sale, by pledge id.
    pub disposals: Vec<Disposal>,
    /// Orders that left the book, kept for queries (`closed.rs`).
    pub(crate) closed: crate::closed::ClosedOrders,
}

/// Units of a pledge enforced for auction, locked in the pledgor's position until sold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disposal {
    /// The registry's pledge id.
    pub id: u64,
    pub pledgor: u32,
    pub pledgee: u32,
    pub instrument: usize,
    /// Locked and not on offer (an auction of the disposal holds the rest).
    pub quantity_t: Tonnes,
    /// Still owed to the pledgee from the sales.
    pub claim_fen: Fen,
    /// The auction selling it now.
    pub auction: Option<u64>,
}

/// A block agreement waiting for its counterparty. The proposer's side is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockProposal {
    pub id: u64,
    pub client_order_id: u64,
    pub proposer: u32,
    pub counterparty: u32,
    pub instrument: usize,
    pub side: Side,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
}

/// A sealed bid; `price x quantity + fee` is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bid {
    pub id: u64,
    pub client_order_id: u64,
    pub bidder: u32,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
}

/// A one-way bidding auction; the offered quantity is locked in the seller's allowances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bidding {
    pub id: u64,
    pub seller: u32,
    pub instrument: usize,
    pub quantity_t: Tonnes,
    pub reserve_fen: Fen,
    pub cap_fen: Fen,
    pub uniform: bool,
    pub bidder_max_t: Tonnes,
    pub open: bool,
    pub bids: Vec<Bid>,
    /// The pledge disposal it sells (its proceeds pay the pledgee first).
    pub disposal: Option<u64>,
}

impl State {
    pub fn new(config: EngineConfig) -> State {
        let orders_max = config.limits.orders_max as usize;
        let mut orders = vec![Order::FREE; orders_max];
        for (slot, order) in orders.iter_mut().enumerate() {
            order.next = u32::try_from(slot + 1)
                .ok()
                .filter(|&n| (n as usize) < orders_max)
                .unwrap_or(NIL);
        }
        let mut state = State {
            config,
            last_seq: 0,
            phase: Phase::Closed,
            date: 0,
            next_order_id: 1,
            next_trade_id: 1,
            accounts: Vec::with_capacity(config.limits.accounts_max.min(1 << 16) as usize),
            account_index: SlotIndex::with_capacity(config.limits.accounts_max as usize),
            instruments: Vec::new(),
            orders,
            free_order: if orders_max > 0 { 0 } else { NIL },
            order_index: SlotIndex::with_capacity(orders_max),
            client_index: SlotIndex::with_capacity(orders_max),
            transfers: std::collections::HashMap::new(),
            net_funds_fen: 0,
            block_window: false,
            blocks: Vec::new(),
            auctions: Vec::new(),
            disposals: Vec::new(),
            closed: crate::closed::ClosedOrders::with_window(),
        };
        state.insert_account(Account::new(config.fee_account, StpMode::default(), 0));
        state
    }

    #[inline]
    pub fn account_slot(&self, id: AccountId) -> Option<u32> {
        let accounts = &self.accounts;
        self.account_index
            .find(hash_u64(id.0), |slot| accounts[slot as usize].id == id)
    }

    pub(crate) fn insert_account(&mut self, account: Account) -> u32 {
        let slot = u32::try_from(self.accounts.len()).unwrap_or(NIL);
        let inserted = self.account_index.insert(hash_u64(account.id.0), slot);
        debug_assert!(inserted);
        self.accounts.push(account);
        slot
    }

    #[inline]
    pub fn order_slot(&self, id: u64) -> Option<u32> {
        let orders = &self.orders;
        self.order_index
            .find(hash_run(0, id), |slot| orders[slot as usize].id == id)
    }

    #[inline]
    pub fn client_slot(&self, account: u32, client_order_id: u64) -> Option<u32> {
        let orders = &self.orders;
        self.client_index
            .find(hash_run(u64::from(account), client_order_id), |slot| {
                let order = &orders[slot as usize];
                order.account == account && order.client_order_id == client_order_id
            })
    }

    pub fn live_orders(&self) -> usize {
        self.order_index.len()
    }
}
