//! `check_invariants()`: an O(n) audit of the whole state, run after every command in tests
//! and simulations.

use crate::engine::Engine;
use crate::levels::{Level, NIL};
use crate::orders::buy_required_fen;
use crate::types::Side;

/// The first broken invariant found, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub String);

impl core::fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(InvariantViolation(format!($($arg)*)));
        }
    };
}

/// What resting orders hold, per account and per position, summed from the books.
#[derive(Clone, Default)]
struct Held {
    locked_fen: Vec<i64>,
    /// Per account, per instrument: (sell leaves, buy leaves).
    leaves: Vec<Vec<(u64, u64)>>,
    orders: Vec<u32>,
}

impl Engine {
    /// Checks every structural and accounting invariant of the state.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let state = &self.state;
        let accounts = state.accounts.len();
        let instruments = state.instruments.len();
        let mut held = Held {
            locked_fen: vec![0; accounts],
            leaves: vec![vec![(0, 0); instruments]; accounts],
            orders: vec![0; accounts],
        };
        let mut resting = 0usize;
        for index in 0..instruments {
            resting += self.check_book(index, &mut held)?;
        }
        ensure!(
            resting == state.order_index.len(),
            "{resting} resting orders, order index holds {}",
            state.order_index.len()
        );
        ensure!(
            resting == state.client_index.len(),
            "{resting} resting orders, client index holds {}",
            state.client_index.len()
        );
        let mut free = 0usize;
        let mut slot = state.free_order;
        while slot != NIL && free <= state.orders.len() {
            ensure!(
                !state.orders[slot as usize].is_live(),
                "free list holds live slot {slot}"
            );
            free += 1;
            slot = state.orders[slot as usize].next;
        }
        ensure!(
            free + resting == state.orders.len(),
            "arena: {free} free + {resting} live != {}",
            state.orders.len()
        );
        self.hold_negotiated(&mut held);
        self.check_accounts(&held)
    }

    /// Walks one instrument's book; returns the number of resting orders.
    fn check_book(&self, index: usize, held: &mut Held) -> Result<usize, InvariantViolation> {
        let state = &self.state;
        let instrument = &state.instruments[index];
        if let (Some(bid), Some(ask), false) = (
            instrument.bids.best(),
            instrument.asks.best(),
            self.in_call(index),
        ) {
            ensure!(
                bid < ask,
                "instrument {index}: book crossed, bid {bid} >= ask {ask}"
            );
        }
        let bp = instrument
            .spec
            .maker_fee_bp
            .max(instrument.spec.taker_fee_bp);
        let mut count = 0;
        for side in [Side::Buy, Side::Sell] {
            let mut previous_price = None;
            for (price, level) in instrument.side(side).iter_from_best() {
                if let Some(previous) = previous_price {
                    let worse = match side {
                        Side::Buy => price < previous,
                        Side::Sell => price > previous,
                    };
                    ensure!(
                        worse,
                        "instrument {index} {side:?}: levels out of order at {price}"
                    );
                }
                previous_price = Some(price);
                let orders = self.check_level(index, side, price, level, bp, held)?;
                count += orders as usize;
            }
        }
        Ok(count)
    }

    /// One price level: its linked orders, their indexes and what they hold; returns the
    /// number of orders on it.
    fn check_level(
        &self,
        index: usize,
        side: Side,
        price: i64,
        level: &Level,
        bp: u32,
        held: &mut Held,
    ) -> Result<u32, InvariantViolation> {
        let state = &self.state;
        ensure!(
            level.orders > 0,
            "instrument {index} {side:?} {price}: empty level listed"
        );
        let (mut quantity, mut orders, mut prev, mut slot) = (0u64, 0u32, NIL, level.head);
        while slot != NIL {
            let order = &state.orders[slot as usize];
            ensure!(order.is_live(), "level {price} links free slot {slot}");
            ensure!(order.prev == prev, "order {}: broken back link", order.id);
            self.check_resting(index, side, price, slot)?;
            quantity += order.leaves_t();
            orders += 1;
            let account = order.account as usize;
            held.orders[account] += 1;
            match side {
                Side::Buy => {
                    held.locked_fen[account] += buy_required_fen(order.leaves_t(), price, bp);
                    held.leaves[account][index].1 += order.leaves_t();
                }
                Side::Sell => held.leaves[account][index].0 += order.leaves_t(),
            }
            prev = slot;
            slot = order.next;
        }
        ensure!(
            level.tail == prev,
            "level {price}: tail is not the last order"
        );
        ensure!(
            level.quantity_t == quantity,
            "level {price}: total {} != sum {quantity}",
            level.quantity_t
        );
        ensure!(
            level.orders == orders,
            "level {price}: count {} != {orders}",
            level.orders
        );
        Ok(orders)
    }

    /// A resting order sits on its own book, side and level, with leaves, and both its ids
    /// find its slot.
    fn check_resting(
        &self,
        index: usize,
        side: Side,
        price: i64,
        slot: u32,
    ) -> Result<(), InvariantViolation> {
        let state = &self.state;
        let order = &state.orders[slot as usize];
        ensure!(
            order.price_fen == price && order.side() == side,
            "order {} on the wrong level",
            order.id
        );
        ensure!(
            usize::from(order.instrument) == index,
            "order {} on the wrong book",
            order.id
        );
        ensure!(
            order.leaves_t() > 0,
            "order {} rests with no leaves",
            order.id
        );
        ensure!(
            state.order_slot(order.id) == Some(slot),
            "order {} not indexed",
            order.id
        );
        ensure!(
            state.client_slot(order.account, order.client_order_id) == Some(slot),
            "order {} client id not indexed",
            order.id
        );
        Ok(())
    }

    /// Block proposals, sealed bids and auction offers hold funds and allowances too.
    fn hold_negotiated(&self, held: &mut Held) {
        let state = &self.state;
        for b in &state.blocks {
            let instrument = &state.instruments[b.instrument];
            let bp = instrument
                .spec
                .maker_fee_bp
                .max(instrument.spec.taker_fee_bp);
            match b.side {
                Side::Buy => {
                    held.locked_fen[b.proposer as usize] +=
                        buy_required_fen(b.quantity_t, b.price_fen, bp)
                }
                Side::Sell => held.leaves[b.proposer as usize][b.instrument].0 += b.quantity_t,
            }
        }
        for d in &state.disposals {
            held.leaves[d.pledgor as usize][d.instrument].0 += d.quantity_t;
        }
        for a in &state.auctions {
            let instrument = &state.instruments[a.instrument];
            let bp = instrument
                .spec
                .maker_fee_bp
                .max(instrument.spec.taker_fee_bp);
            held.leaves[a.seller as usize][a.instrument].0 += a.quantity_t;
            for bid in &a.bids {
                held.locked_fen[bid.bidder as usize] +=
                    buy_required_fen(bid.quantity_t, bid.price_fen, bp);
            }
        }
    }

    fn check_accounts(&self, held: &Held) -> Result<(), InvariantViolation> {
        let state = &self.state;
        let risk = state.config.risk_checks;
        let mut funds_total: i64 = 0;
        let mut allowances_total = vec![0u64; state.instruments.len()];
        for (slot, account) in state.accounts.iter().enumerate() {
            let id = account.id.0;
            ensure!(
                account.orders == held.orders[slot],
                "account {id}: {} orders counted, {} resting",
                account.orders,
                held.orders[slot]
            );
            ensure!(
                state.account_slot(account.id) == Some(slot as u32),
                "account {id} not indexed"
            );
            ensure!(
                account.free_fen >= 0 && account.locked_fen >= 0 && account.pending_fen >= 0,
                "account {id}: negative funds"
            );
            funds_total += account.free_fen + account.locked_fen + account.pending_fen;
            if risk {
                ensure!(
                    account.locked_fen == held.locked_fen[slot],
                    "account {id}: locked {} != needed {}",
                    account.locked_fen,
                    held.locked_fen[slot]
                );
            }
            for (index, position) in account.positions.iter().enumerate() {
                allowances_total[index] += position.holding_t();
                if risk {
                    let (sell, buy) = held.leaves[slot][index];
                    ensure!(
                        position.locked_t == sell,
                        "account {id} instrument {index}: locked {} != sell leaves {sell}",
                        position.locked_t
                    );
                    ensure!(
                        position.open_buy_t == buy,
                        "account {id} instrument {index}: open buys {} != buy leaves {buy}",
                        position.open_buy_t
                    );
                }
            }
        }
        ensure!(
            funds_total == state.net_funds_fen,
            "funds not conserved: {funds_total} held, {} credited net",
            state.net_funds_fen
        );
        for (index, total) in allowances_total.iter().enumerate() {
            let net = state.instruments[index].net_deposited_t;
            ensure!(
                *total == net,
                "instrument {index}: {total} t held, {net} t deposited net"
            );
        }
        Ok(())
    }
}
