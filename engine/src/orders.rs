//! Order entry, matching, cancel and amend: the hot path.

use crate::command::NewOrder;
use crate::engine::{Engine, FEE_BP_MAX};
use crate::event::{Event, EventKind, FillSide, OrderReport, TradeReport};
use crate::index::hash_run;
use crate::levels::NIL;
use crate::reason::Reject;
use crate::state::{Instrument, Order};
use crate::types::{
    AccountId, CancelReason, ClientOrderId, Fen, InstrumentId, OrderId, OrderKind, Phase, Side,
    StpMode, TimeInForce, Tonnes, TradeId, TradeKind,
};

/// The largest notional (price x quantity) of one order: far enough from `i64::MAX` that
/// fees and sums can never overflow.
pub const NOTIONAL_FEN_MAX: i128 = (i64::MAX / (2 * (10_000 + FEE_BP_MAX as i64))) as i128;

/// An order being matched (a new order, or a resting one re-entering after an amend).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Incoming {
    pub id: u64,
    pub client_order_id: u64,
    pub account: u32,
    pub instrument: usize,
    pub side: Side,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    pub post_only: bool,
    /// Limit price; for a market order, its protection price (the band edge).
    pub limit_fen: Fen,
    pub quantity_t: Tonnes,
    pub filled_t: Tonnes,
}

impl Incoming {
    fn leaves_t(&self) -> Tonnes {
        self.quantity_t - self.filled_t
    }

    /// The order as the book holds it (unlinked), at its limit price.
    fn as_order(&self) -> Order {
        let mut order = Order {
            id: self.id,
            client_order_id: self.client_order_id,
            price_fen: self.limit_fen,
            quantity_t: self.quantity_t,
            filled_t: self.filled_t,
            account: self.account,
            instrument: self.instrument as u16,
            ..Order::FREE
        };
        order.set_flags(self.side, self.tif, self.post_only);
        order
    }

    /// Its record for the closed-order store, having never rested (a market order: price 0,
    /// not its protection price).
    fn closed(&self) -> Order {
        let mut order = self.as_order();
        if self.kind == OrderKind::Market {
            order.price_fen = 0;
            order.set_market();
        }
        order
    }
}

/// Funds a buy of `leaves` at `price` must hold: notional plus the highest fee it may pay.
/// Fees are floored to the fen on each fill, so the sum of fill fees never exceeds this.
#[inline]
pub fn buy_required_fen(leaves_t: Tonnes, price_fen: Fen, fee_bp: u32) -> Fen {
    let notional = leaves_t as i64 * price_fen;
    notional + fee_fen(notional, fee_bp)
}

/// Fee on a notional, floored to the fen.
#[inline]
pub fn fee_fen(notional_fen: Fen, fee_bp: u32) -> Fen {
    notional_fen * i64::from(fee_bp) / 10_000
}

#[inline]
fn crosses(side: Side, limit_fen: Fen, opposite_best: Fen) -> bool {
    match side {
        Side::Buy => opposite_best <= limit_fen,
        Side::Sell => opposite_best >= limit_fen,
    }
}

pub(crate) fn lock_bp(instrument: &Instrument) -> u32 {
    instrument
        .spec
        .maker_fee_bp
        .max(instrument.spec.taker_fee_bp)
}

impl Engine {
    pub(crate) fn place(&mut self, order: &NewOrder, out: &mut Vec<Event>) -> Result<(), Reject> {
        let account = self.account(order.account)?;
        let index = self.instrument(order.instrument)?;
        let incoming = self.check_new(account, index, order)?;
        self.state.next_order_id += 1;
        self.lock(&incoming);
        self.emit(out, EventKind::Accepted(self.report(&incoming)));
        self.execute(incoming, out);
        Ok(())
    }

    pub(crate) fn check_tradable(&self, account: u32, index: usize) -> Result<(), Reject> {
        if self.state.phase != Phase::Continuous && !self.in_call(index) {
            return Err(Reject::MarketClosed);
        }
        if self.state.instruments[index].halted {
            return Err(Reject::InstrumentHalted);
        }
        if self.state.accounts[account as usize].restricted {
            return Err(Reject::AccountRestricted);
        }
        Ok(())
    }

    pub(crate) fn check_quantity(&self, index: usize, quantity_t: Tonnes) -> Result<(), Reject> {
        let spec = &self.state.instruments[index].spec;
        if quantity_t == 0 {
            return Err(Reject::InvalidQuantity);
        }
        if !quantity_t.is_multiple_of(spec.lot_t) {
            return Err(Reject::QuantityNotOnLot);
        }
        if quantity_t > spec.max_order_t {
            return Err(Reject::QuantityAboveMax);
        }
        Ok(())
    }

    pub(crate) fn check_price(&self, index: usize, price_fen: Fen) -> Result<(), Reject> {
        let instrument = &self.state.instruments[index];
        if price_fen <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if price_fen % instrument.spec.tick_fen != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        if let Some((low, high)) = instrument.band
            && (price_fen < low || price_fen > high)
        {
            return Err(Reject::PriceOutsideBand);
        }
        Ok(())
    }

    /// Every check of a new order, before anything changes.
    fn check_new(&self, account: u32, index: usize, o: &NewOrder) -> Result<Incoming, Reject> {
        self.check_tradable(account, index)?;
        let in_call = self.in_call(index);
        if in_call
            && (o.kind != OrderKind::Limit
                || !matches!(o.time_in_force, TimeInForce::Day | TimeInForce::Gtc))
        {
            return Err(Reject::NotAllowedInPhase);
        }
        self.check_quantity(index, o.quantity_t)?;
        let instrument = &self.state.instruments[index];
        let limit_fen = match o.kind {
            OrderKind::Limit => {
                self.check_price(index, o.price_fen)?;
                o.price_fen
            }
            OrderKind::Market => {
                if o.post_only || o.time_in_force == TimeInForce::Gtc {
                    return Err(Reject::InvalidParameter);
                }
                let (low, high) = instrument.band.ok_or(Reject::NoPriceProtection)?;
                if o.side == Side::Buy { high } else { low }
            }
        };
        if o.post_only && matches!(o.time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
            return Err(Reject::InvalidParameter);
        }
        if i128::from(limit_fen) * i128::from(o.quantity_t) > NOTIONAL_FEN_MAX {
            return Err(Reject::Overflow);
        }
        if self
            .state
            .client_slot(account, o.client_order_id.0)
            .is_some()
        {
            return Err(Reject::DuplicateClientOrderId);
        }
        let may_rest = o.kind == OrderKind::Limit
            && matches!(o.time_in_force, TimeInForce::Day | TimeInForce::Gtc);
        if may_rest {
            let limits = &self.state.config.limits;
            if self.state.accounts[account as usize].orders >= limits.orders_per_account_max {
                return Err(Reject::OrdersPerAccountLimit);
            }
            if self.state.free_order == NIL {
                return Err(Reject::OrdersLimit);
            }
        }
        let incoming = Incoming {
            id: self.state.next_order_id,
            client_order_id: o.client_order_id.0,
            account,
            instrument: index,
            side: o.side,
            kind: o.kind,
            tif: o.time_in_force,
            post_only: o.post_only,
            limit_fen,
            quantity_t: o.quantity_t,
            filled_t: 0,
        };
        self.check_risk(&incoming, 0, 0)?;
        if !in_call {
            self.check_liquidity(&incoming)?;
        }
        Ok(incoming)
    }

    /// Funds, allowances and position limit for `incoming`, given that it replaces an order
    /// already holding `old_required_fen` (buy) and `old_leaves_t`.
    fn check_risk(
        &self,
        incoming: &Incoming,
        old_required_fen: Fen,
        old_leaves_t: Tonnes,
    ) -> Result<(), Reject> {
        if !self.state.config.risk_checks {
            return Ok(());
        }
        let instrument = &self.state.instruments[incoming.instrument];
        let account = &self.state.accounts[incoming.account as usize];
        let position = &account.positions[incoming.instrument];
        let leaves_t = incoming.leaves_t();
        match incoming.side {
            Side::Buy => {
                let required = buy_required_fen(leaves_t, incoming.limit_fen, lock_bp(instrument));
                if required - old_required_fen > account.free_fen {
                    return Err(Reject::InsufficientFunds);
                }
                if self.over_position_limit(
                    incoming.account,
                    incoming.instrument,
                    old_leaves_t,
                    leaves_t,
                ) {
                    return Err(Reject::PositionLimitExceeded);
                }
            }
            Side::Sell => {
                if leaves_t > old_leaves_t && leaves_t - old_leaves_t > position.free_t {
                    return Err(Reject::InsufficientAllowances);
                }
            }
        }
        Ok(())
    }

    /// Whether an account's potential holding of an instrument (held plus open buys), with
    /// `released_t` of open buys replaced by `added_t`, would pass its position limit.
    pub(crate) fn over_position_limit(
        &self,
        account: u32,
        index: usize,
        released_t: Tonnes,
        added_t: Tonnes,
    ) -> bool {
        let position = &self.state.accounts[account as usize].positions[index];
        let limit_t = position
            .limit_t
            .unwrap_or(self.state.instruments[index].spec.position_limit_t);
        (position.holding_t() + position.open_buy_t - released_t).saturating_add(added_t) > limit_t
    }

    /// Post-only must not trade; fill-or-kill must be able to fill completely.
    fn check_liquidity(&self, incoming: &Incoming) -> Result<(), Reject> {
        let instrument = &self.state.instruments[incoming.instrument];
        let opposite = instrument.side(incoming.side.opposite());
        if incoming.post_only
            && opposite
                .best()
                .is_some_and(|best| crosses(incoming.side, incoming.limit_fen, best))
        {
            return Err(Reject::PostOnlyWouldTrade);
        }
        if incoming.tif == TimeInForce::Fok && !self.fillable(incoming) {
            return Err(Reject::FokNotFillable);
        }
        Ok(())
    }

    /// Whether matching would fill `incoming` completely (self-trade prevention included).
    fn fillable(&self, incoming: &Incoming) -> bool {
        let instrument = &self.state.instruments[incoming.instrument];
        let stp = self.state.accounts[incoming.account as usize].stp;
        let wanted = incoming.leaves_t();
        let mut reachable: Tonnes = 0;
        for (price, level) in instrument.side(incoming.side.opposite()).iter_from_best() {
            if !crosses(incoming.side, incoming.limit_fen, price) {
                return false;
            }
            let mut slot = level.head;
            while slot != NIL {
                let order = &self.state.orders[slot as usize];
                if order.account == incoming.account {
                    if stp != StpMode::CancelResting {
                        return false;
                    }
                } else {
                    reachable += order.leaves_t();
                    if reachable >= wanted {
                        return true;
                    }
                }
                slot = order.next;
            }
        }
        false
    }

    fn report(&self, incoming: &Incoming) -> OrderReport {
        OrderReport {
            order: OrderId(incoming.id),
            client_order_id: ClientOrderId(incoming.client_order_id),
            account: self.state.accounts[incoming.account as usize].id,
            instrument: InstrumentId(incoming.instrument as u32),
            side: incoming.side,
            kind: incoming.kind,
            time_in_force: incoming.tif,
            price_fen: incoming.limit_fen,
            quantity_t: incoming.quantity_t,
            filled_t: incoming.filled_t,
            leaves_t: incoming.leaves_t(),
        }
    }

    /// Locks what `incoming`'s leaves need.
    fn lock(&mut self, incoming: &Incoming) {
        if !self.state.config.risk_checks {
            return;
        }
        let bp = lock_bp(&self.state.instruments[incoming.instrument]);
        self.touch_account(incoming.account);
        self.touch_position(incoming.account, incoming.instrument);
        let account = &mut self.state.accounts[incoming.account as usize];
        let leaves_t = incoming.leaves_t();
        match incoming.side {
            Side::Buy => {
                let required = buy_required_fen(leaves_t, incoming.limit_fen, bp);
                account.free_fen -= required;
                account.locked_fen += required;
                account.positions[incoming.instrument].open_buy_t += leaves_t;
            }
            Side::Sell => {
                let position = &mut account.positions[incoming.instrument];
                position.free_t -= leaves_t;
                position.locked_t += leaves_t;
            }
        }
    }

    /// Releases what `leaves_t` of an order at `price_fen` held.
    fn unlock(&mut self, account: u32, index: usize, side: Side, price_fen: Fen, leaves_t: Tonnes) {
        if !self.state.config.risk_checks || leaves_t == 0 {
            return;
        }
        let bp = lock_bp(&self.state.instruments[index]);
        self.touch_account(account);
        self.touch_position(account, index);
        let account = &mut self.state.accounts[account as usize];
        match side {
            Side::Buy => {
                let required = buy_required_fen(leaves_t, price_fen, bp);
                account.free_fen += required;
                account.locked_fen -= required;
                account.positions[index].open_buy_t -= leaves_t;
            }
            Side::Sell => {
                let position = &mut account.positions[index];
                position.locked_t -= leaves_t;
                position.free_t += leaves_t;
            }
        }
    }

    /// Matches `incoming`, then rests its residual or cancels it.
    fn execute(&mut self, mut incoming: Incoming, out: &mut Vec<Event>) {
        // In the opening call orders only collect; the uncross matches them.
        let stopped_by_stp =
            !self.in_call(incoming.instrument) && self.match_incoming(&mut incoming, out);
        let leaves_t = incoming.leaves_t();
        if leaves_t == 0 {
            self.state.closed.record(incoming.closed());
            return;
        }
        let reason = if stopped_by_stp {
            Some(CancelReason::SelfTrade)
        } else if incoming.kind == OrderKind::Market {
            Some(CancelReason::MarketResidual)
        } else if matches!(incoming.tif, TimeInForce::Ioc | TimeInForce::Fok) {
            Some(CancelReason::IocResidual)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                let (side, limit) = (incoming.side, incoming.limit_fen);
                self.unlock(incoming.account, incoming.instrument, side, limit, leaves_t);
                self.emit(
                    out,
                    EventKind::Cancelled {
                        order: OrderId(incoming.id),
                        account: self.state.accounts[incoming.account as usize].id,
                        instrument: InstrumentId(incoming.instrument as u32),
                        side,
                        quantity_t: incoming.quantity_t,
                        filled_t: incoming.filled_t,
                        cancelled_t: leaves_t,
                        reason,
                    },
                );
                self.state.closed.record(incoming.closed());
            }
            None => self.rest(&incoming),
        }
    }

    /// Trades `incoming` against the opposite side while it crosses. Returns true when
    /// self-trade prevention stopped it (its residual must be cancelled).
    fn match_incoming(&mut self, incoming: &mut Incoming, out: &mut Vec<Event>) -> bool {
        let opposite = incoming.side.opposite();
        let stp = self.state.accounts[incoming.account as usize].stp;
        loop {
            if incoming.leaves_t() == 0 {
                return false;
            }
            let book = self.state.instruments[incoming.instrument].side(opposite);
            let Some(best) = book.best() else {
                return false;
            };
            if !crosses(incoming.side, incoming.limit_fen, best) {
                return false;
            }
            let mut slot = book.get(best).map_or(NIL, |level| level.head);
            while slot != NIL && incoming.leaves_t() > 0 {
                let resting = self.state.orders[slot as usize];
                if resting.account == incoming.account {
                    match stp {
                        StpMode::CancelIncoming => return true,
                        StpMode::CancelResting => {
                            self.cancel_resting(slot, CancelReason::SelfTrade, out)
                        }
                        StpMode::CancelBoth => {
                            self.cancel_resting(slot, CancelReason::SelfTrade, out);
                            return true;
                        }
                    }
                } else {
                    self.fill(incoming, slot, best, out);
                }
                slot = resting.next;
            }
        }
    }

    /// One trade between `incoming` (the aggressor) and the resting order at `slot`.
    fn fill(&mut self, incoming: &mut Incoming, slot: u32, price_fen: Fen, out: &mut Vec<Event>) {
        let resting = self.state.orders[slot as usize];
        let quantity_t = incoming.leaves_t().min(resting.leaves_t());
        let notional = quantity_t as i64 * price_fen;
        let index = incoming.instrument;
        let spec = self.state.instruments[index].spec;
        let taker_fee = fee_fen(notional, spec.taker_fee_bp);
        let maker_fee = fee_fen(notional, spec.maker_fee_bp);
        let (buy_fee, sell_fee) = match incoming.side {
            Side::Buy => (taker_fee, maker_fee),
            Side::Sell => (maker_fee, taker_fee),
        };
        if self.state.config.risk_checks {
            let fill = (quantity_t, notional, buy_fee, sell_fee);
            self.settle_fill(incoming, &resting, fill);
        }
        incoming.filled_t += quantity_t;
        self.touch_level(index, resting.side(), price_fen);
        let order = &mut self.state.orders[slot as usize];
        order.filled_t += quantity_t;
        let resting_after = *order;
        let instrument = &mut self.state.instruments[index];
        if let Some(level) = instrument.side_mut(resting.side()).get_mut(price_fen) {
            level.quantity_t -= quantity_t;
        }
        instrument.day.record(price_fen, quantity_t, notional);
        let trade = TradeId(self.state.next_trade_id);
        self.state.next_trade_id += 1;
        let incoming_side = self.fill_side_of_incoming(incoming, buy_fee, sell_fee);
        let resting_side = FillSide {
            order: OrderId(resting.id),
            account: self.state.accounts[resting.account as usize].id,
            fee_fen: if incoming.side == Side::Buy {
                sell_fee
            } else {
                buy_fee
            },
            filled_t: resting_after.filled_t,
            leaves_t: resting_after.leaves_t(),
        };
        let (buy, sell) = match incoming.side {
            Side::Buy => (incoming_side, resting_side),
            Side::Sell => (resting_side, incoming_side),
        };
        self.emit(
            out,
            EventKind::Trade(TradeReport {
                trade,
                instrument: InstrumentId(index as u32),
                price_fen,
                quantity_t,
                aggressor: Some(incoming.side),
                kind: TradeKind::Continuous,
                buy,
                sell,
            }),
        );
        if resting_after.leaves_t() == 0 {
            self.close_resting(slot);
        }
    }

    /// The funds and allowances of one fill between `incoming` and `resting`:
    /// `(quantity_t, notional_fen, buy_fee_fen, sell_fee_fen)`.
    #[inline]
    fn settle_fill(&mut self, incoming: &Incoming, resting: &Order, fill: (u64, Fen, Fen, Fen)) {
        let (quantity_t, notional, buy_fee, sell_fee) = fill;
        let (buyer, buy_limit, buy_leaves, seller) = match incoming.side {
            Side::Buy => (
                incoming.account,
                incoming.limit_fen,
                incoming.leaves_t(),
                resting.account,
            ),
            Side::Sell => (
                resting.account,
                resting.price_fen,
                resting.leaves_t(),
                incoming.account,
            ),
        };
        let index = incoming.instrument;
        self.settle_buy(
            buyer,
            index,
            buy_limit,
            buy_leaves,
            quantity_t,
            notional + buy_fee,
        );
        self.settle_sell(seller, index, quantity_t, notional - sell_fee);
        self.collect_fee(buy_fee + sell_fee);
    }

    fn fill_side_of_incoming(&self, incoming: &Incoming, buy_fee: Fen, sell_fee: Fen) -> FillSide {
        FillSide {
            order: OrderId(incoming.id),
            account: self.state.accounts[incoming.account as usize].id,
            fee_fen: if incoming.side == Side::Buy {
                buy_fee
            } else {
                sell_fee
            },
            filled_t: incoming.filled_t,
            leaves_t: incoming.leaves_t(),
        }
    }

    /// The buyer pays `cost_fen` out of what its order locked at `limit_fen`.
    pub(crate) fn settle_buy(
        &mut self,
        buyer: u32,
        index: usize,
        limit_fen: Fen,
        leaves_t: Tonnes,
        quantity_t: Tonnes,
        cost_fen: Fen,
    ) {
        let bp = lock_bp(&self.state.instruments[index]);
        let t_plus_one = self.state.instruments[index].spec.t_plus_one;
        self.touch_account(buyer);
        self.touch_position(buyer, index);
        let released = buy_required_fen(leaves_t, limit_fen, bp)
            - buy_required_fen(leaves_t - quantity_t, limit_fen, bp);
        debug_assert!(
            released >= cost_fen,
            "lock {released} does not cover cost {cost_fen}"
        );
        let account = &mut self.state.accounts[buyer as usize];
        account.locked_fen -= released;
        account.free_fen += released - cost_fen;
        let position = &mut account.positions[index];
        position.open_buy_t -= quantity_t;
        if t_plus_one {
            position.pending_t += quantity_t;
        } else {
            position.free_t += quantity_t;
        }
    }

    pub(crate) fn settle_sell(
        &mut self,
        seller: u32,
        index: usize,
        quantity_t: Tonnes,
        proceeds_fen: Fen,
    ) {
        let same_day = self.state.config.proceeds_same_day;
        self.touch_account(seller);
        self.touch_position(seller, index);
        let account = &mut self.state.accounts[seller as usize];
        account.positions[index].locked_t -= quantity_t;
        if same_day {
            account.free_fen += proceeds_fen;
        } else {
            account.pending_fen += proceeds_fen;
        }
    }

    pub(crate) fn collect_fee(&mut self, fee_fen: Fen) {
        if fee_fen == 0 {
            return;
        }
        // The fee account is opened with the engine, in slot 0.
        self.touch_account(0);
        self.state.accounts[0].free_fen += fee_fen;
    }

    /// Puts `incoming`'s residual on the book at the tail of its level.
    fn rest(&mut self, incoming: &Incoming) {
        let slot = self.state.free_order;
        debug_assert_ne!(slot, NIL, "checked at entry");
        self.touch_level(incoming.instrument, incoming.side, incoming.limit_fen);
        let order = incoming.as_order();
        self.state.free_order = self.state.orders[slot as usize].next;
        self.link(slot, order);
    }

    /// Links `order` into `slot`: its level's FIFO tail, its account's list, the indexes.
    pub(crate) fn link(&mut self, slot: u32, mut order: Order) {
        let state = &mut self.state;
        let instrument = &mut state.instruments[order.instrument as usize];
        let levels = instrument.side_mut(order.side());
        let Some(level) = levels.get_or_insert(order.price_fen) else {
            debug_assert!(false, "price outside the ladder");
            return;
        };
        order.prev = level.tail;
        order.next = NIL;
        if level.tail == NIL {
            level.head = slot;
        } else {
            state.orders[level.tail as usize].next = slot;
        }
        level.tail = slot;
        level.quantity_t += order.leaves_t();
        level.orders += 1;
        let account = &mut state.accounts[order.account as usize];
        order.account_prev = account.order_tail;
        order.account_next = NIL;
        if account.order_tail == NIL {
            account.order_head = slot;
        } else {
            state.orders[account.order_tail as usize].account_next = slot;
        }
        account.order_tail = slot;
        account.orders += 1;
        state.orders[slot as usize] = order;
        let inserted = state.order_index.insert(hash_run(0, order.id), slot)
            && state.client_index.insert(
                hash_run(u64::from(order.account), order.client_order_id),
                slot,
            );
        debug_assert!(inserted, "index sized to the arena");
    }

    /// A resting order leaves the book for good (filled or cancelled): unlinked, and kept
    /// in the closed-order store for queries.
    pub(crate) fn close_resting(&mut self, slot: u32) {
        let order = self.state.orders[slot as usize];
        self.unlink(slot);
        self.state.closed.record(order);
    }

    /// Removes the order at `slot` from its level, its account and the indexes, and frees it.
    pub(crate) fn unlink(&mut self, slot: u32) {
        let order = self.state.orders[slot as usize];
        self.touch_level(order.instrument as usize, order.side(), order.price_fen);
        let state = &mut self.state;
        let levels = state.instruments[order.instrument as usize].side_mut(order.side());
        if let Some(level) = levels.get_mut(order.price_fen) {
            if order.prev == NIL {
                level.head = order.next
            } else {
                state.orders[order.prev as usize].next = order.next
            }
            if order.next == NIL {
                level.tail = order.prev
            } else {
                state.orders[order.next as usize].prev = order.prev
            }
            level.quantity_t -= order.leaves_t();
            level.orders -= 1;
            if level.orders == 0 {
                levels.remove_empty(order.price_fen);
            }
        }
        let account = &mut state.accounts[order.account as usize];
        if order.account_prev == NIL {
            account.order_head = order.account_next;
        } else {
            state.orders[order.account_prev as usize].account_next = order.account_next;
        }
        if order.account_next == NIL {
            account.order_tail = order.account_prev;
        } else {
            state.orders[order.account_next as usize].account_prev = order.account_prev;
        }
        account.orders -= 1;
        let orders = &state.orders;
        state.order_index.remove(hash_run(0, order.id), slot, |s| {
            hash_run(0, orders[s as usize].id)
        });
        state.client_index.remove(
            hash_run(u64::from(order.account), order.client_order_id),
            slot,
            |s| {
                let o = &orders[s as usize];
                hash_run(u64::from(o.account), o.client_order_id)
            },
        );
        state.orders[slot as usize] = Order {
            next: state.free_order,
            ..Order::FREE
        };
        state.free_order = slot;
    }

    /// Cancels a resting order: releases what it locked, reports, unlinks.
    pub(crate) fn cancel_resting(&mut self, slot: u32, reason: CancelReason, out: &mut Vec<Event>) {
        let order = self.state.orders[slot as usize];
        let index = order.instrument as usize;
        self.unlock(
            order.account,
            index,
            order.side(),
            order.price_fen,
            order.leaves_t(),
        );
        self.emit(
            out,
            EventKind::Cancelled {
                order: OrderId(order.id),
                account: self.state.accounts[order.account as usize].id,
                instrument: InstrumentId(u32::from(order.instrument)),
                side: order.side(),
                quantity_t: order.quantity_t,
                filled_t: order.filled_t,
                cancelled_t: order.leaves_t(),
                reason,
            },
        );
        self.close_resting(slot);
    }

    /// The slot of a live order owned by `account`.
    fn owned_order(&self, account: AccountId, order: OrderId) -> Result<(u32, u32), Reject> {
        let account = self.account(account)?;
        let Some(slot) = self.state.order_slot(order.0) else {
            let issued = order.0 > 0 && order.0 < self.state.next_order_id;
            return Err(if issued {
                Reject::OrderClosed
            } else {
                Reject::UnknownOrder
            });
        };
        if self.state.orders[slot as usize].account != account {
            return Err(Reject::NotOrderOwner);
        }
        Ok((account, slot))
    }

    pub(crate) fn cancel(
        &mut self,
        account: AccountId,
        order: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (_, slot) = self.owned_order(account, order)?;
        self.cancel_resting(slot, CancelReason::User, out);
        Ok(())
    }

    pub(crate) fn cancel_all(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(account)?;
        let index = instrument.map(|i| self.instrument(i)).transpose()?;
        self.cancel_account_orders(slot, index, CancelReason::CancelAll, out);
        Ok(())
    }

    /// Cancels an account's orders (of one instrument, or all), in order-id order.
    pub(crate) fn cancel_account_orders(
        &mut self,
        account: u32,
        index: Option<usize>,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        self.scratch.clear();
        let mut slot = self.state.accounts[account as usize].order_head;
        while slot != NIL {
            let order = &self.state.orders[slot as usize];
            if index.is_none_or(|i| usize::from(order.instrument) == i) {
                self.scratch.push((order.id, slot));
            }
            slot = order.account_next;
        }
        self.cancel_scratch(reason, out);
    }

    /// Cancels every live order matching `keep`, in order-id order.
    pub(crate) fn cancel_matching(
        &mut self,
        keep: impl Fn(&Order) -> bool,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        self.scratch.clear();
        for (slot, order) in self.state.orders.iter().enumerate() {
            if order.is_live() && keep(order) {
                self.scratch.push((order.id, slot as u32));
            }
        }
        self.cancel_scratch(reason, out);
    }

    fn cancel_scratch(&mut self, reason: CancelReason, out: &mut Vec<Event>) {
        self.scratch.sort_unstable();
        let mut scratch = core::mem::take(&mut self.scratch);
        for &(_, slot) in &scratch {
            self.cancel_resting(slot, reason, out);
        }
        scratch.clear();
        self.scratch = scratch;
    }

    pub(crate) fn amend(
        &mut self,
        account: AccountId,
        order: OrderId,
        price_fen: Option<Fen>,
        quantity_t: Option<Tonnes>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (account, slot) = self.owned_order(account, order)?;
        let resting = self.state.orders[slot as usize];
        let index = usize::from(resting.instrument);
        self.check_tradable(account, index)?;
        if let Some(price) = price_fen {
            self.check_price(index, price)?;
        }
        if let Some(quantity) = quantity_t {
            self.check_quantity(index, quantity)?;
        }
        let new_price = price_fen.unwrap_or(resting.price_fen);
        let new_quantity = quantity_t.unwrap_or(resting.quantity_t);
        if new_price == resting.price_fen && new_quantity == resting.quantity_t {
            return Err(Reject::AmendNoChange);
        }
        if new_quantity <= resting.filled_t {
            return Err(Reject::AmendBelowFilled);
        }
        if new_price == resting.price_fen && new_quantity < resting.quantity_t {
            self.reduce(slot, new_quantity, out);
            return Ok(());
        }
        self.replace(slot, new_price, new_quantity, out)
    }

    /// Quantity decrease at the same price: keeps time priority.
    fn reduce(&mut self, slot: u32, new_quantity_t: Tonnes, out: &mut Vec<Event>) {
        let order = self.state.orders[slot as usize];
        let index = usize::from(order.instrument);
        let released_t = order.quantity_t - new_quantity_t;
        // Unlock the difference: the lock of the old leaves minus the lock of the new ones.
        self.unlock(
            order.account,
            index,
            order.side(),
            order.price_fen,
            order.leaves_t(),
        );
        let remaining = Incoming {
            quantity_t: new_quantity_t,
            ..self.incoming_of(&order)
        };
        self.lock(&remaining);
        self.touch_level(index, order.side(), order.price_fen);
        if let Some(level) = self.state.instruments[index]
            .side_mut(order.side())
            .get_mut(order.price_fen)
        {
            level.quantity_t -= released_t;
        }
        self.state.orders[slot as usize].quantity_t = new_quantity_t;
        self.emit(
            out,
            EventKind::Amended {
                report: self.report(&remaining),
                priority_kept: true,
            },
        );
    }

    /// Price change or quantity increase: cancel/replace under the same order id, losing
    /// time priority; the replacement may trade at once.
    fn replace(
        &mut self,
        slot: u32,
        new_price: Fen,
        new_quantity: Tonnes,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let order = self.state.orders[slot as usize];
        let index = usize::from(order.instrument);
        let replacement = Incoming {
            limit_fen: new_price,
            quantity_t: new_quantity,
            ..self.incoming_of(&order)
        };
        if i128::from(new_price) * i128::from(new_quantity) > NOTIONAL_FEN_MAX {
            return Err(Reject::Overflow);
        }
        let old_required = match order.side() {
            Side::Buy => buy_required_fen(
                order.leaves_t(),
                order.price_fen,
                lock_bp(&self.state.instruments[index]),
            ),
            Side::Sell => 0,
        };
        self.check_risk(&replacement, old_required, order.leaves_t())?;
        if replacement.post_only && !self.in_call(index) {
            let opposite = self.state.instruments[index].side(order.side().opposite());
            if opposite
                .best()
                .is_some_and(|best| crosses(order.side(), new_price, best))
            {
                return Err(Reject::PostOnlyWouldTrade);
            }
        }
        self.unlock(
            order.account,
            index,
            order.side(),
            order.price_fen,
            order.leaves_t(),
        );
        self.unlink(slot);
        self.lock(&replacement);
        self.emit(
            out,
            EventKind::Amended {
                report: self.report(&replacement),
                priority_kept: false,
            },
        );
        self.execute(replacement, out);
        Ok(())
    }

    fn incoming_of(&self, order: &Order) -> Incoming {
        Incoming {
            id: order.id,
            client_order_id: order.client_order_id,
            account: order.account,
            instrument: usize::from(order.instrument),
            side: order.side(),
            kind: OrderKind::Limit,
            tif: order.time_in_force(),
            post_only: order.post_only(),
            limit_fen: order.price_fen,
            quantity_t: order.quantity_t,
            filled_t: order.filled_t,
        }
    }
}
