//! Balance, position and level-2 changes of one command, coalesced into one event each.
//!
//! Before the engine changes an account's funds, a position or a price level, it records the
//! value before (once per command, O(1) for accounts and positions via a sequence mark). At
//! the end of the command the touched items are sorted and an event is emitted for each one
//! whose value changed.

use crate::engine::{Engine, LevelTouch};
use crate::event::{Event, EventKind};
use crate::state::State;
use crate::types::{InstrumentId, Side};

impl Engine {
    #[inline]
    pub(crate) fn touch_account(&mut self, slot: u32) {
        let account = &mut self.state.accounts[slot as usize];
        if account.touched_seq != self.seq {
            account.touched_seq = self.seq;
            account.before = (account.free_fen, account.locked_fen, account.pending_fen);
            self.touched_accounts.push(slot);
        }
    }

    #[inline]
    pub(crate) fn touch_position(&mut self, slot: u32, index: usize) {
        let position = &mut self.state.accounts[slot as usize].positions[index];
        if position.touched_seq != self.seq {
            position.touched_seq = self.seq;
            position.before = (position.free_t, position.locked_t, position.pending_t);
            self.touched_positions.push((slot, index as u32));
        }
    }

    #[inline]
    pub(crate) fn touch_level(&mut self, index: usize, side: Side, price_fen: i64) {
        let instrument = index as u32;
        let seen = self
            .touched_levels
            .iter()
            .any(|t| t.price_fen == price_fen && t.side == side && t.instrument == instrument);
        if seen {
            return;
        }
        let level = self.state.instruments[index].side(side).get(price_fen);
        self.touched_levels.push(LevelTouch {
            instrument,
            side,
            price_fen,
            quantity_t: level.map_or(0, |l| l.quantity_t),
            orders: level.map_or(0, |l| l.orders),
        });
    }

    /// Emits the coalesced changes of the command and forgets them.
    pub(crate) fn flush_touched(&mut self, out: &mut Vec<Event>) {
        let seq = self.seq;
        let Engine {
            state,
            touched_accounts,
            touched_positions,
            touched_levels,
            ..
        } = self;
        if !touched_accounts.is_empty() {
            flush_accounts(state, touched_accounts, seq, out);
        }
        if !touched_positions.is_empty() {
            flush_positions(state, touched_positions, seq, out);
        }
        if !touched_levels.is_empty() {
            flush_levels(state, touched_levels, seq, out);
        }
    }
}

fn flush_accounts(state: &State, touched: &mut Vec<u32>, seq: u64, out: &mut Vec<Event>) {
    touched.sort_unstable_by_key(|&slot| state.accounts[slot as usize].id);
    for &slot in touched.iter() {
        let a = &state.accounts[slot as usize];
        if a.before != (a.free_fen, a.locked_fen, a.pending_fen) {
            let kind = EventKind::Balance {
                account: a.id,
                free_fen: a.free_fen,
                locked_fen: a.locked_fen,
                pending_fen: a.pending_fen,
            };
            out.push(Event { seq, kind });
        }
    }
    touched.clear();
}

/// Position changes, then the large-holder crossings they made (in that order).
fn flush_positions(state: &State, touched: &mut Vec<(u32, u32)>, seq: u64, out: &mut Vec<Event>) {
    touched.sort_unstable_by_key(|&(slot, i)| (state.accounts[slot as usize].id, i));
    for &(slot, index) in touched.iter() {
        let a = &state.accounts[slot as usize];
        let p = &a.positions[index as usize];
        if p.before != (p.free_t, p.locked_t, p.pending_t) {
            let kind = EventKind::Position {
                account: a.id,
                instrument: InstrumentId(index),
                free_t: p.free_t,
                locked_t: p.locked_t,
                pending_t: p.pending_t,
            };
            out.push(Event { seq, kind });
        }
    }
    for &(slot, index) in touched.iter() {
        let a = &state.accounts[slot as usize];
        let p = &a.positions[index as usize];
        let threshold = state.instruments[index as usize].spec.large_holder_t;
        let before = p.before.0 + p.before.1 + p.before.2;
        if before < threshold && p.holding_t() >= threshold {
            let kind = EventKind::LargeHolder {
                account: a.id,
                instrument: InstrumentId(index),
                holding_t: p.holding_t(),
            };
            out.push(Event { seq, kind });
        }
    }
    touched.clear();
}

fn flush_levels(state: &State, touched: &mut Vec<LevelTouch>, seq: u64, out: &mut Vec<Event>) {
    touched.sort_unstable_by_key(|t| (t.instrument, t.side == Side::Sell, t.price_fen));
    for t in touched.iter() {
        let level = state.instruments[t.instrument as usize]
            .side(t.side)
            .get(t.price_fen);
        let (quantity_t, orders) = level.map_or((0, 0), |l| (l.quantity_t, l.orders));
        if (quantity_t, orders) != (t.quantity_t, t.orders) {
            let kind = EventKind::Level {
                instrument: InstrumentId(t.instrument),
                side: t.side,
                price_fen: t.price_fen,
                quantity_t,
                orders,
            };
            out.push(Event { seq, kind });
        }
    }
    touched.clear();
}
