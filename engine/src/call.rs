//! The opening call auction: orders collect without matching, an indicative price and volume
//! are published as they arrive, and leaving the call phase uncrosses each book at one price.
//!
//! The price maximises executable volume; ties go to the smallest imbalance, then to market
//! pressure (all remaining candidates with buy surplus: the highest; all with sell surplus:
//! the lowest), then to the price closest to the reference, then to the lower price.
//! Candidates are every price level of either side and the reference price. Execution takes
//! the best bid against the best ask in price-time priority until nothing crosses the price,
//! so the remaining book is never crossed and keeps its time priority. Self-trade prevention
//! in the uncross cancels the later of two orders of one account that would meet; if that
//! leaves a crossed remainder, it is uncrossed again at its own price (a second
//! `AuctionUncross` event).

use crate::engine::Engine;
use crate::event::{Event, EventKind, FillSide, TradeReport};
use crate::levels::NIL;
use crate::orders::fee_fen;
use crate::types::{
    CancelReason, Fen, InstrumentId, OrderId, Phase, Side, Tonnes, TradeId, TradeKind,
};

/// The chosen uncross: price, executable volume, buy minus sell volume at that price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uncross {
    pub price_fen: Fen,
    pub volume_t: Tonnes,
    pub imbalance_t: i64,
}

/// Picks the uncross price from bid levels (best first, i.e. descending) and ask levels
/// (ascending). `candidates` is scratch space. `None` when nothing crosses.
pub fn uncross_price(
    bids: &[(Fen, Tonnes)],
    asks: &[(Fen, Tonnes)],
    reference_fen: Fen,
    candidates: &mut Vec<(Fen, Tonnes, Tonnes)>,
) -> Option<Uncross> {
    let (best_bid, best_ask) = (bids.first()?.0, asks.first()?.0);
    if best_bid < best_ask {
        return None;
    }
    merge_candidates(bids, asks, reference_fen, candidates);
    // Sell volume at or below each price (ascending sweep), buy volume at or above (descending).
    let (mut sell, mut at) = (0u64, 0usize);
    for candidate in candidates.iter_mut() {
        while at < asks.len() && asks[at].0 <= candidate.0 {
            sell += asks[at].1;
            at += 1;
        }
        candidate.2 = sell;
    }
    let (mut buy, mut at) = (0u64, 0usize);
    for candidate in candidates.iter_mut().rev() {
        while at < bids.len() && bids[at].0 >= candidate.0 {
            buy += bids[at].1;
            at += 1;
        }
        candidate.1 = buy;
    }
    choose(candidates, reference_fen)
}

/// Candidate prices in ascending order without repeats: every level price within
/// [best ask, best bid] and the reference, merged from the two sorted level lists (no sort).
fn merge_candidates(
    bids: &[(Fen, Tonnes)],
    asks: &[(Fen, Tonnes)],
    reference_fen: Fen,
    candidates: &mut Vec<(Fen, Tonnes, Tonnes)>,
) {
    candidates.clear();
    let (best_bid, best_ask) = (bids[0].0, asks[0].0);
    // Bids at or above the best ask are a prefix of the descending bid list; walk it backwards.
    let mut bid = bids.iter().take_while(|(p, _)| *p >= best_ask).count();
    let mut ask = 0;
    let in_range = (best_ask..=best_bid).contains(&reference_fen);
    let mut reference = if in_range { Some(reference_fen) } else { None };
    loop {
        let next_ask = asks.get(ask).map(|l| l.0).filter(|p| *p <= best_bid);
        let next_bid = bid.checked_sub(1).map(|i| bids[i].0);
        let price = match (next_ask, next_bid, reference) {
            (None, None, None) => return,
            _ => [next_ask, next_bid, reference]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(best_ask),
        };
        if next_ask == Some(price) {
            ask += 1;
        }
        if next_bid == Some(price) {
            bid -= 1;
        }
        if reference == Some(price) {
            reference = None;
        }
        if candidates.last().is_none_or(|c| c.0 != price) {
            candidates.push((price, 0, 0));
        }
    }
}

fn choose(candidates: &[(Fen, Tonnes, Tonnes)], reference_fen: Fen) -> Option<Uncross> {
    let volume = |c: &(Fen, Tonnes, Tonnes)| c.1.min(c.2);
    let imbalance = |c: &(Fen, Tonnes, Tonnes)| c.1 as i64 - c.2 as i64;
    let best_volume = candidates.iter().map(volume).max()?;
    if best_volume == 0 {
        return None;
    }
    let min_imbalance = candidates
        .iter()
        .filter(|c| volume(c) == best_volume)
        .map(|c| imbalance(c).unsigned_abs())
        .min()?;
    let finalists = || {
        candidates.iter().filter(move |c| {
            volume(c) == best_volume && imbalance(c).unsigned_abs() == min_imbalance
        })
    };
    let chosen = if finalists().all(|c| imbalance(c) > 0) {
        finalists().max_by_key(|c| c.0)
    } else if finalists().all(|c| imbalance(c) < 0) {
        finalists().min_by_key(|c| c.0)
    } else {
        finalists().min_by_key(|c| ((c.0 - reference_fen).unsigned_abs(), c.0))
    }?;
    Some(Uncross {
        price_fen: chosen.0,
        volume_t: best_volume,
        imbalance_t: imbalance(chosen),
    })
}

impl Engine {
    /// Whether instrument `index` is collecting orders in the opening call right now.
    #[inline]
    pub(crate) fn in_call(&self, index: usize) -> bool {
        self.state.phase == Phase::OpeningCall && self.state.instruments[index].spec.opening_call
    }

    /// The uncross the book of `index` would give now.
    pub(crate) fn current_uncross(&mut self, index: usize) -> Option<Uncross> {
        let instrument = &self.state.instruments[index];
        self.level_scratch.0.clear();
        self.level_scratch.1.clear();
        for (price, level) in instrument.bids.iter_from_best() {
            self.level_scratch.0.push((price, level.quantity_t));
        }
        for (price, level) in instrument.asks.iter_from_best() {
            self.level_scratch.1.push((price, level.quantity_t));
        }
        let reference = instrument.spec.reference_price_fen;
        let (bids, asks, candidates) = (
            &self.level_scratch.0,
            &self.level_scratch.1,
            &mut self.level_scratch.2,
        );
        uncross_price(bids, asks, reference, candidates)
    }

    /// During the call, publishes each call instrument's indicative uncross when it changed.
    pub(crate) fn publish_indicative(&mut self, out: &mut Vec<Event>) {
        if self.state.phase != Phase::OpeningCall {
            return;
        }
        for index in 0..self.state.instruments.len() {
            if !self.state.instruments[index].spec.opening_call {
                continue;
            }
            let now = self
                .current_uncross(index)
                .map_or((0, 0, 0), |u| (u.price_fen, u.volume_t, u.imbalance_t));
            if now != self.state.instruments[index].indicative {
                self.state.instruments[index].indicative = now;
                let (price_fen, volume_t, imbalance_t) = now;
                self.emit(
                    out,
                    EventKind::Indicative {
                        instrument: InstrumentId(index as u32),
                        price_fen,
                        volume_t,
                        imbalance_t,
                    },
                );
            }
        }
    }

    /// Uncrosses every instrument in the call (called when the call phase ends).
    pub(crate) fn uncross_all(&mut self, out: &mut Vec<Event>) {
        for index in 0..self.state.instruments.len() {
            if !self.state.instruments[index].spec.opening_call {
                continue;
            }
            self.state.instruments[index].indicative = (0, 0, 0);
            let mut first = true;
            // One round normally. Only when self-trade prevention cancels orders during a
            // round can the rest still cross; it is then uncrossed again at its own price.
            loop {
                let uncross = self.current_uncross(index);
                if uncross.is_none() && !first {
                    break;
                }
                let (price_fen, volume_t) = uncross.map_or((0, 0), |u| (u.price_fen, u.volume_t));
                let instrument = InstrumentId(index as u32);
                self.emit(
                    out,
                    EventKind::AuctionUncross {
                        instrument,
                        price_fen,
                        volume_t,
                    },
                );
                first = false;
                if uncross.is_none() {
                    break;
                }
                self.execute_uncross(index, price_fen, out);
            }
        }
    }

    fn execute_uncross(&mut self, index: usize, price_fen: Fen, out: &mut Vec<Event>) {
        loop {
            let instrument = &self.state.instruments[index];
            let (Some(bid), Some(ask)) = (instrument.bids.best(), instrument.asks.best()) else {
                return;
            };
            if bid < price_fen || ask > price_fen {
                return;
            }
            let bid_slot = instrument.bids.get(bid).map_or(NIL, |l| l.head);
            let ask_slot = instrument.asks.get(ask).map_or(NIL, |l| l.head);
            let (b, a) = (
                self.state.orders[bid_slot as usize],
                self.state.orders[ask_slot as usize],
            );
            if b.account == a.account {
                // Self-trade prevention in the auction: the later of the two orders goes.
                let later = if b.id > a.id { bid_slot } else { ask_slot };
                self.cancel_resting(later, CancelReason::SelfTrade, out);
                continue;
            }
            self.fill_resting(
                bid_slot,
                ask_slot,
                price_fen,
                TradeKind::OpeningAuction,
                out,
            );
        }
    }

    /// A trade at `price_fen` between two resting orders; both pay the maker fee.
    pub(crate) fn fill_resting(
        &mut self,
        bid_slot: u32,
        ask_slot: u32,
        price_fen: Fen,
        kind: TradeKind,
        out: &mut Vec<Event>,
    ) {
        let (b, a) = (
            self.state.orders[bid_slot as usize],
            self.state.orders[ask_slot as usize],
        );
        let index = usize::from(b.instrument);
        let quantity_t = b.leaves_t().min(a.leaves_t());
        let notional = quantity_t as i64 * price_fen;
        let fee = fee_fen(notional, self.state.instruments[index].spec.maker_fee_bp);
        if self.state.config.risk_checks {
            self.settle_buy(
                b.account,
                index,
                b.price_fen,
                b.leaves_t(),
                quantity_t,
                notional + fee,
            );
            self.settle_sell(a.account, index, quantity_t, notional - fee);
            self.collect_fee(2 * fee);
        }
        for (slot, side, price) in [
            (bid_slot, Side::Buy, b.price_fen),
            (ask_slot, Side::Sell, a.price_fen),
        ] {
            self.fill_on_level(index, slot, (side, price), quantity_t);
        }
        self.state.instruments[index]
            .day
            .record(price_fen, quantity_t, notional);
        let trade = TradeId(self.state.next_trade_id);
        self.state.next_trade_id += 1;
        let (buy, sell) = (
            self.resting_fill_side(bid_slot, fee),
            self.resting_fill_side(ask_slot, fee),
        );
        self.emit(
            out,
            EventKind::Trade(TradeReport {
                trade,
                instrument: InstrumentId(index as u32),
                price_fen,
                quantity_t,
                aggressor: None,
                kind,
                buy,
                sell,
            }),
        );
        for (slot, fill) in [(bid_slot, buy), (ask_slot, sell)] {
            if fill.leaves_t == 0 {
                self.close_resting(slot);
            }
        }
    }
}

impl Engine {
    /// `quantity_t` of the resting order at `slot` filled, off its level at `(side, price)`.
    #[inline]
    fn fill_on_level(&mut self, index: usize, slot: u32, at: (Side, Fen), quantity_t: Tonnes) {
        let (side, price) = at;
        self.touch_level(index, side, price);
        self.state.orders[slot as usize].filled_t += quantity_t;
        if let Some(level) = self.state.instruments[index].side_mut(side).get_mut(price) {
            level.quantity_t -= quantity_t;
        }
    }

    fn resting_fill_side(&self, slot: u32, fee_fen: Fen) -> FillSide {
        let o = self.state.orders[slot as usize];
        FillSide {
            order: OrderId(o.id),
            account: self.state.accounts[o.account as usize].id,
            fee_fen,
            filled_t: o.filled_t,
            leaves_t: o.leaves_t(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(bids: &[(Fen, Tonnes)], asks: &[(Fen, Tonnes)], reference: Fen) -> Option<Uncross> {
        uncross_price(bids, asks, reference, &mut Vec::new())
    }

    #[test]
    fn maximum_volume_decides_first() {
        // Bids 8,010 x 100, 8,000 x 100; asks 7,990 x 50, 8,005 x 200.
        // At 8,005: buy 100, sell 250 -> 100. At 8,000: buy 200, sell 50 -> 50. 8,010: 100 vs 250.
        let u = price(
            &[(8_010, 100), (8_000, 100)],
            &[(7_990, 50), (8_005, 200)],
            8_000,
        )
        .unwrap();
        assert_eq!((u.volume_t, u.price_fen), (100, 8_005));
    }

    #[test]
    fn equal_volume_goes_to_the_smaller_imbalance() {
        // At 8,000 and 8,010 the volume is 100; imbalance at 8,000 is 0 (100 vs 100), at
        // 8,010 it is 100 - 150 = -50. The reference, 8,010, would pick 8,010: the
        // imbalance rule comes first.
        let u = price(&[(8_010, 100)], &[(8_000, 100), (8_010, 50)], 8_010).unwrap();
        assert_eq!((u.price_fen, u.volume_t, u.imbalance_t), (8_000, 100, 0));
    }

    #[test]
    fn buy_pressure_takes_the_highest_and_sell_pressure_the_lowest() {
        // Bids 8,010 x 300; asks 8,000 x 100 and 8,005 x 100: at 8,005 and 8,010 volume 200,
        // imbalance +100 at both: buy surplus everywhere -> the highest, 8,010.
        let u = price(&[(8_010, 300)], &[(8_000, 100), (8_005, 100)], 8_000).unwrap();
        assert_eq!((u.price_fen, u.volume_t, u.imbalance_t), (8_010, 200, 100));
        // Mirror: sell surplus everywhere -> the lowest.
        let u = price(&[(8_010, 100), (8_005, 100)], &[(8_000, 300)], 8_010).unwrap();
        assert_eq!((u.price_fen, u.volume_t, u.imbalance_t), (8_000, 200, -100));
    }

    #[test]
    fn then_the_price_closest_to_the_reference() {
        // Bid 8,010 x 100, ask 7,990 x 100: every price in between trades 100 with imbalance 0;
        // candidates are 7,990, 8,010 and the reference.
        let u = price(&[(8_010, 100)], &[(7_990, 100)], 8_003).unwrap();
        assert_eq!(u.price_fen, 8_003);
        // Reference outside the crossing range: the nearer end.
        let u = price(&[(8_010, 100)], &[(7_990, 100)], 9_000).unwrap();
        assert_eq!(u.price_fen, 8_010);
        // The reference itself when it is among the best.
        let u = price(&[(8_010, 100)], &[(7_990, 100)], 8_000).unwrap();
        assert_eq!(u.price_fen, 8_000);
        let u = price(
            &[(8_010, 100), (8_000, 1)],
            &[(7_990, 100), (8_000, 1)],
            8_000,
        )
        .unwrap();
        assert_eq!((u.price_fen, u.volume_t), (8_000, 101));
    }

    #[test]
    fn candidates_are_merged_in_order_without_repeats() {
        let mut candidates = Vec::new();
        let bids = [(8_030, 1), (8_010, 1), (8_000, 1), (7_990, 1)];
        let asks = [(7_995, 1), (8_000, 1), (8_020, 1), (8_040, 1)];
        merge_candidates(&bids, &asks, 8_005, &mut candidates);
        let prices: Vec<Fen> = candidates.iter().map(|c| c.0).collect();
        assert_eq!(prices, vec![7_995, 8_000, 8_005, 8_010, 8_020, 8_030]);
        merge_candidates(&bids, &asks, 8_100, &mut candidates);
        assert_eq!(
            candidates.len(),
            5,
            "a reference outside the crossing range is no candidate"
        );
    }

    #[test]
    fn no_uncross_without_a_cross() {
        assert_eq!(price(&[(7_990, 100)], &[(8_000, 100)], 8_000), None);
        assert_eq!(price(&[], &[(8_000, 100)], 8_000), None);
        assert_eq!(price(&[(8_000, 100)], &[], 8_000), None);
    }
}
