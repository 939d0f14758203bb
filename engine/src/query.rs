//! Read-only views for the gateway and tests (never used by the matching path).

use crate::engine::Engine;
use crate::types::{
    AccountId, ClientOrderId, Fen, InstrumentId, OrderId, Phase, Side, Symbol, TimeInForce, Tonnes,
    TradingDate, TransferId,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookLevel {
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub orders: u32,
}

/// Level-2 depth of one instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookView {
    pub instrument: InstrumentId,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionView {
    pub instrument: InstrumentId,
    pub free_t: Tonnes,
    pub locked_t: Tonnes,
    pub pending_t: Tonnes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub account: AccountId,
    pub free_fen: Fen,
    pub locked_fen: Fen,
    pub pending_fen: Fen,
    pub restricted: bool,
    pub live_orders: u32,
    pub positions: Vec<PositionView>,
}

/// One instrument as the gateway shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentView {
    pub instrument: InstrumentId,
    pub symbol: Symbol,
    pub reference_price_fen: Fen,
    /// Today's band `[low, high]`; `None` when the instrument has no band.
    pub band: Option<(Fen, Fen)>,
    pub halted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order: OrderId,
    pub client_order_id: ClientOrderId,
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub time_in_force: TimeInForce,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub filled_t: Tonnes,
    pub leaves_t: Tonnes,
}

/// An order that left the book (see `closed.rs` for how long it is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosedView {
    /// As it left: `leaves_t` 0; `price_fen` 0 for a market order.
    pub view: OrderView,
    pub market: bool,
    /// Filled in full (else cancelled: `quantity_t - filled_t` was cancelled).
    pub filled: bool,
    pub cancelled_t: Tonnes,
}

/// One account's holding of an instrument against its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HolderView {
    pub account: AccountId,
    /// Free + locked + pending at the exchange.
    pub holding_t: Tonnes,
    /// Leaves of its resting buys (what the position limit counts beside the holding).
    pub open_buy_t: Tonnes,
    /// The limit that applies to it: its own, else the instrument's (`u64::MAX`: none).
    pub limit_t: Tonnes,
    /// Whether `limit_t` is the account's own.
    pub own_limit: bool,
}

/// An instrument's risk limits and the accounts at or above its large-holder threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeHoldersView {
    pub instrument: InstrumentId,
    pub position_limit_t: Tonnes,
    pub large_holder_t: Tonnes,
    /// Largest holding first, then by account id.
    pub holders: Vec<HolderView>,
}

impl Engine {
    pub fn phase(&self) -> Phase {
        self.state.phase
    }

    pub fn trading_date(&self) -> TradingDate {
        self.state.date
    }

    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<InstrumentId> {
        let symbol = Symbol::new(symbol)?;
        let index = self
            .state
            .instruments
            .iter()
            .position(|i| i.spec.symbol == symbol)?;
        Some(InstrumentId(u32::try_from(index).ok()?))
    }

    /// The reference price and today's band of an instrument.
    pub fn reference(&self, instrument: InstrumentId) -> Option<(Fen, Option<(Fen, Fen)>)> {
        let i = self.state.instruments.get(instrument.0 as usize)?;
        Some((i.spec.reference_price_fen, i.band))
    }

    /// Top `depth` levels of each side.
    pub fn book(&self, instrument: InstrumentId, depth: usize) -> Option<BookView> {
        let i = self.state.instruments.get(instrument.0 as usize)?;
        let levels = |side: Side| {
            i.side(side)
                .iter_from_best()
                .take(depth)
                .map(|(price_fen, l)| BookLevel {
                    price_fen,
                    quantity_t: l.quantity_t,
                    orders: l.orders,
                })
                .collect()
        };
        Some(BookView {
            instrument,
            bids: levels(Side::Buy),
            asks: levels(Side::Sell),
        })
    }

    pub fn best_bid(&self, instrument: InstrumentId) -> Option<Fen> {
        self.state
            .instruments
            .get(instrument.0 as usize)?
            .bids
            .best()
    }

    pub fn best_ask(&self, instrument: InstrumentId) -> Option<Fen> {
        self.state
            .instruments
            .get(instrument.0 as usize)?
            .asks
            .best()
    }

    pub fn account_view(&self, account: AccountId) -> Option<AccountView> {
        let slot = self.state.account_slot(account)?;
        let a = &self.state.accounts[slot as usize];
        let positions = a
            .positions
            .iter()
            .enumerate()
            .map(|(index, p)| PositionView {
                instrument: InstrumentId(index as u32),
                free_t: p.free_t,
                locked_t: p.locked_t,
                pending_t: p.pending_t,
            })
            .collect();
        Some(AccountView {
            account,
            free_fen: a.free_fen,
            locked_fen: a.locked_fen,
            pending_fen: a.pending_fen,
            restricted: a.restricted,
            live_orders: a.orders,
            positions,
        })
    }

    /// A live (resting) order.
    pub fn order(&self, order: OrderId) -> Option<OrderView> {
        let slot = self.state.order_slot(order.0)?;
        Some(self.view_of(&self.state.orders[slot as usize]))
    }

    /// The view of an order record (a closed one's caller sets its leaves to 0).
    fn view_of(&self, o: &crate::state::Order) -> OrderView {
        OrderView {
            order: OrderId(o.id),
            client_order_id: ClientOrderId(o.client_order_id),
            account: self.state.accounts[o.account as usize].id,
            instrument: InstrumentId(u32::from(o.instrument)),
            side: o.side(),
            time_in_force: o.time_in_force(),
            price_fen: o.price_fen,
            quantity_t: o.quantity_t,
            filled_t: o.filled_t,
            leaves_t: o.leaves_t(),
        }
    }

    /// A closed order still kept: filled or cancelled since the previous trading day
    /// opened, within the newest `CLOSED_ORDER_IDS_MAX` order ids.
    pub fn closed_order(&self, order: OrderId) -> Option<ClosedView> {
        self.state.closed.get(order.0).map(|o| self.closed_view(o))
    }

    /// An account's closed orders still kept, in order-id order: the `max` most recently
    /// closed.
    pub fn closed_orders_of(&self, account: AccountId, max: usize) -> Vec<ClosedView> {
        let Some(slot) = self.state.account_slot(account) else {
            return Vec::new();
        };
        let mut views: Vec<ClosedView> = self
            .state
            .closed
            .of_account(slot, max)
            .iter()
            .map(|o| self.closed_view(o))
            .collect();
        views.sort_by_key(|v| v.view.order);
        views
    }

    fn closed_view(&self, o: &crate::state::Order) -> ClosedView {
        ClosedView {
            view: OrderView {
                leaves_t: 0,
                ..self.view_of(o)
            },
            market: o.is_market(),
            filled: o.filled_t == o.quantity_t,
            cancelled_t: o.quantity_t - o.filled_t,
        }
    }

    /// Live orders of an account, in order-id order.
    pub fn orders_of(&self, account: AccountId) -> Vec<OrderView> {
        let Some(slot) = self.state.account_slot(account) else {
            return Vec::new();
        };
        let mut views = Vec::new();
        let mut at = self.state.accounts[slot as usize].order_head;
        while at != crate::levels::NIL {
            let o = &self.state.orders[at as usize];
            if let Some(view) = self.order(OrderId(o.id)) {
                views.push(view);
            }
            at = o.account_next;
        }
        views.sort_by_key(|v| v.order);
        views
    }

    pub fn live_orders(&self) -> usize {
        self.state.live_orders()
    }

    /// Every instrument, in id order.
    pub fn instruments(&self) -> Vec<InstrumentView> {
        self.state
            .instruments
            .iter()
            .enumerate()
            .map(|(n, i)| InstrumentView {
                instrument: InstrumentId(n as u32),
                symbol: i.spec.symbol,
                reference_price_fen: i.spec.reference_price_fen,
                band: i.band,
                halted: i.halted,
            })
            .collect()
    }

    pub fn instrument_view(&self, instrument: InstrumentId) -> Option<InstrumentView> {
        self.instruments().get(instrument.0 as usize).copied()
    }

    /// Every trading account's id.
    pub fn account_ids(&self) -> Vec<AccountId> {
        self.state.accounts.iter().map(|a| a.id).collect()
    }

    /// Whether a transfer id was applied.
    pub fn transfer_applied(&self, transfer: TransferId) -> bool {
        self.state.transfers.contains_key(&transfer)
    }

    /// Every non-zero holding: (account, instrument, free + locked + pending tonnes).
    pub fn holdings(&self) -> Vec<(AccountId, InstrumentId, Tonnes)> {
        let mut out = Vec::new();
        for account in &self.state.accounts {
            for (index, p) in account.positions.iter().enumerate() {
                let total = p.free_t + p.locked_t + p.pending_t;
                if total > 0 {
                    out.push((account.id, InstrumentId(index as u32), total));
                }
            }
        }
        out
    }

    /// The large-holder report of one instrument.
    pub fn large_holders(&self, instrument: InstrumentId) -> Option<LargeHoldersView> {
        let index = instrument.0 as usize;
        let spec = &self.state.instruments.get(index)?.spec;
        let mut holders: Vec<HolderView> = self
            .state
            .accounts
            .iter()
            .filter_map(|a| {
                let p = a.positions.get(index)?;
                (p.holding_t() >= spec.large_holder_t).then_some(HolderView {
                    account: a.id,
                    holding_t: p.holding_t(),
                    open_buy_t: p.open_buy_t,
                    limit_t: p.limit_t.unwrap_or(spec.position_limit_t),
                    own_limit: p.limit_t.is_some(),
                })
            })
            .collect();
        holders.sort_by_key(|h| (std::cmp::Reverse(h.holding_t), h.account));
        Some(LargeHoldersView {
            instrument,
            position_limit_t: spec.position_limit_t,
            large_holder_t: spec.large_holder_t,
            holders,
        })
    }

    /// Bytes held by the order arena and its two indexes (the per-order memory).
    pub fn order_memory_bytes(&self) -> usize {
        self.state.orders.capacity() * core::mem::size_of::<crate::state::Order>()
            + self.state.order_index.bytes()
            + self.state.client_index.bytes()
    }
}
