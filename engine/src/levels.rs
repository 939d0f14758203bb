//! Price levels of one side of a book.
//!
//! Two layouts behind one type:
//! - [`Ladder`]: a flat array of levels, one per tick over a price range that covers the day's
//!   band (and any older resting order), with a bitset of non-empty levels. Best price is a
//!   cached index; when its level empties, the next one is found by scanning bitset words
//!   (64 ticks a step), never by scanning orders. No allocation while trading.
//! - [`Tree`]: a `BTreeMap` from price to level, for instruments configured without a band
//!   (the plain FIFO book), where the price range is unbounded.
//!
//! `benches/benches/engine.rs` measures both on the same workload; the ladder is the default
//! for banded instruments because it is faster there (see BENCHMARKS.md).

use std::collections::BTreeMap;

use crate::types::{Fen, Side};

pub const NIL: u32 = u32::MAX;

/// One price level: a FIFO of resting orders (intrusive list through the order arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub head: u32,
    pub tail: u32,
    pub quantity_t: u64,
    pub orders: u32,
}

impl Level {
    pub const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        quantity_t: 0,
        orders: 0,
    };

    pub fn is_empty(&self) -> bool {
        self.orders == 0
    }
}

/// Levels over a contiguous tick range `[low, low + tick * len)`.
#[derive(Clone, Debug)]
pub struct Ladder {
    low_fen: Fen,
    tick_fen: Fen,
    levels: Vec<Level>,
    occupied: Vec<u64>,
    /// Index of the best non-empty level, if any.
    best: Option<usize>,
}

impl Ladder {
    pub fn new(low_fen: Fen, high_fen: Fen, tick_fen: Fen) -> Ladder {
        // The band is the core's own computation (`band_of`): low <= high, on the tick.
        debug_assert!(
            low_fen <= high_fen && tick_fen > 0,
            "ladder {low_fen}..{high_fen}"
        );
        let span = usize::try_from((high_fen - low_fen) / tick_fen).unwrap_or(0) + 1;
        Ladder {
            low_fen,
            tick_fen,
            levels: vec![Level::EMPTY; span],
            occupied: vec![0; span.div_ceil(64)],
            best: None,
        }
    }

    pub fn low_fen(&self) -> Fen {
        self.low_fen
    }

    pub fn high_fen(&self) -> Fen {
        self.price_of(self.levels.len() - 1)
    }

    #[inline]
    fn index_of(&self, price_fen: Fen) -> Option<usize> {
        if price_fen < self.low_fen {
            return None;
        }
        let index = usize::try_from((price_fen - self.low_fen) / self.tick_fen).ok()?;
        (index < self.levels.len()).then_some(index)
    }

    #[inline]
    fn price_of(&self, index: usize) -> Fen {
        // index < levels.len(), which was computed from an i64 span.
        self.low_fen + self.tick_fen * i64::try_from(index).unwrap_or(i64::MAX)
    }

    #[inline]
    fn set_bit(&mut self, index: usize, on: bool) {
        let word = &mut self.occupied[index / 64];
        let bit = 1u64 << (index % 64);
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Highest occupied index strictly below `index`.
    fn occupied_below(&self, index: usize) -> Option<usize> {
        if index == 0 {
            return None;
        }
        let at = index - 1;
        let mut word_index = at / 64;
        let mut word = self.occupied[word_index] & (u64::MAX >> (63 - (at % 64)));
        loop {
            if word != 0 {
                return Some(word_index * 64 + 63 - word.leading_zeros() as usize);
            }
            if word_index == 0 {
                return None;
            }
            word_index -= 1;
            word = self.occupied[word_index];
        }
    }

    /// Lowest occupied index strictly above `index`.
    fn occupied_above(&self, index: usize) -> Option<usize> {
        let at = index + 1;
        if at >= self.levels.len() {
            return None;
        }
        let mut word_index = at / 64;
        let mut word = self.occupied[word_index] & (u64::MAX << (at % 64));
        loop {
            if word != 0 {
                return Some(word_index * 64 + word.trailing_zeros() as usize);
            }
            word_index += 1;
            if word_index >= self.occupied.len() {
                return None;
            }
            word = self.occupied[word_index];
        }
    }
}

/// Levels keyed by price, for books without a band.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    levels: BTreeMap<Fen, Level>,
}

#[derive(Clone, Debug)]
enum Layout {
    Ladder(Ladder),
    Tree(Tree),
}

/// One side of a book.
#[derive(Clone, Debug)]
pub struct SideLevels {
    side: Side,
    layout: Layout,
}

impl SideLevels {
    pub fn ladder(side: Side, low_fen: Fen, high_fen: Fen, tick_fen: Fen) -> SideLevels {
        SideLevels {
            side,
            layout: Layout::Ladder(Ladder::new(low_fen, high_fen, tick_fen)),
        }
    }

    pub fn tree(side: Side) -> SideLevels {
        SideLevels {
            side,
            layout: Layout::Tree(Tree::default()),
        }
    }

    /// The ladder's price range, if this side is a ladder.
    pub fn ladder_range(&self) -> Option<(Fen, Fen)> {
        match &self.layout {
            Layout::Ladder(ladder) => Some((ladder.low_fen(), ladder.high_fen())),
            Layout::Tree(_) => None,
        }
    }

    /// Whether a level at this price can be held (always true for a tree).
    pub fn can_hold(&self, price_fen: Fen) -> bool {
        match &self.layout {
            Layout::Ladder(ladder) => ladder.index_of(price_fen).is_some(),
            Layout::Tree(_) => true,
        }
    }

    /// Best price: highest bid or lowest ask.
    #[inline]
    pub fn best(&self) -> Option<Fen> {
        match &self.layout {
            Layout::Ladder(ladder) => ladder.best.map(|i| ladder.price_of(i)),
            Layout::Tree(tree) => match self.side {
                Side::Buy => tree.levels.last_key_value().map(|(p, _)| *p),
                Side::Sell => tree.levels.first_key_value().map(|(p, _)| *p),
            },
        }
    }

    /// The next price after `price_fen` going away from the best (lower bids, higher asks).
    pub fn next_worse(&self, price_fen: Fen) -> Option<Fen> {
        match &self.layout {
            Layout::Ladder(ladder) => {
                let index = ladder.index_of(price_fen)?;
                let next = match self.side {
                    Side::Buy => ladder.occupied_below(index),
                    Side::Sell => ladder.occupied_above(index),
                };
                next.map(|i| ladder.price_of(i))
            }
            Layout::Tree(tree) => match self.side {
                Side::Buy => tree.levels.range(..price_fen).next_back().map(|(p, _)| *p),
                Side::Sell => tree
                    .levels
                    .range(price_fen.saturating_add(1)..)
                    .next()
                    .map(|(p, _)| *p),
            },
        }
    }

    #[inline]
    pub fn get(&self, price_fen: Fen) -> Option<&Level> {
        match &self.layout {
            Layout::Ladder(ladder) => {
                let level = &ladder.levels[ladder.index_of(price_fen)?];
                (!level.is_empty()).then_some(level)
            }
            Layout::Tree(tree) => tree.levels.get(&price_fen),
        }
    }

    /// The level at `price_fen`, created empty if absent. `None` only if a ladder cannot hold
    /// the price (the caller checks `can_hold` first).
    #[inline]
    pub fn get_or_insert(&mut self, price_fen: Fen) -> Option<&mut Level> {
        let side = self.side;
        match &mut self.layout {
            Layout::Ladder(ladder) => {
                let index = ladder.index_of(price_fen)?;
                if ladder.levels[index].is_empty() {
                    ladder.set_bit(index, true);
                    let better = match (ladder.best, side) {
                        (None, _) => true,
                        (Some(best), Side::Buy) => index > best,
                        (Some(best), Side::Sell) => index < best,
                    };
                    if better {
                        ladder.best = Some(index);
                    }
                }
                Some(&mut ladder.levels[index])
            }
            Layout::Tree(tree) => Some(tree.levels.entry(price_fen).or_insert(Level::EMPTY)),
        }
    }

    /// The existing level at `price_fen`, for mutation.
    #[inline]
    pub fn get_mut(&mut self, price_fen: Fen) -> Option<&mut Level> {
        match &mut self.layout {
            Layout::Ladder(ladder) => {
                let index = ladder.index_of(price_fen)?;
                Some(&mut ladder.levels[index])
            }
            Layout::Tree(tree) => tree.levels.get_mut(&price_fen),
        }
    }

    /// Forgets the (now empty) level at `price_fen`.
    #[inline]
    pub fn remove_empty(&mut self, price_fen: Fen) {
        let side = self.side;
        match &mut self.layout {
            Layout::Ladder(ladder) => {
                let Some(index) = ladder.index_of(price_fen) else {
                    return;
                };
                debug_assert!(ladder.levels[index].is_empty());
                ladder.levels[index] = Level::EMPTY;
                ladder.set_bit(index, false);
                if ladder.best == Some(index) {
                    ladder.best = match side {
                        Side::Buy => ladder.occupied_below(index),
                        Side::Sell => ladder.occupied_above(index),
                    };
                }
            }
            Layout::Tree(tree) => {
                tree.levels.remove(&price_fen);
            }
        }
    }

    /// Non-empty levels from the best outwards.
    pub fn iter_from_best(&self) -> impl Iterator<Item = (Fen, &Level)> + '_ {
        let mut next = self.best();
        core::iter::from_fn(move || {
            let price = next?;
            next = self.next_worse(price);
            self.get(price).map(|level| (price, level))
        })
    }

    /// Number of non-empty levels (O(levels)).
    #[cfg(test)]
    pub fn count_levels(&self) -> usize {
        self.iter_from_best().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occupy(levels: &mut SideLevels, price: Fen) {
        let level = levels.get_or_insert(price).unwrap();
        level.orders += 1;
        level.quantity_t += 1;
    }

    fn vacate(levels: &mut SideLevels, price: Fen) {
        let level = levels.get_mut(price).unwrap();
        *level = Level::EMPTY;
        levels.remove_empty(price);
    }

    #[test]
    fn ladder_and_tree_agree_on_best_and_order() {
        for side in [Side::Buy, Side::Sell] {
            let mut ladder = SideLevels::ladder(side, 7_000, 9_000, 1);
            let mut tree = SideLevels::tree(side);
            let prices = [8_000, 7_000, 9_000, 7_063, 7_064, 8_127, 7_001, 8_999];
            for &price in &prices {
                occupy(&mut ladder, price);
                occupy(&mut tree, price);
                assert_eq!(ladder.best(), tree.best());
            }
            let walk = |l: &SideLevels| l.iter_from_best().map(|(p, _)| p).collect::<Vec<_>>();
            assert_eq!(walk(&ladder), walk(&tree));
            for &price in &prices {
                vacate(&mut ladder, price);
                vacate(&mut tree, price);
                assert_eq!(ladder.best(), tree.best());
                assert_eq!(walk(&ladder), walk(&tree));
            }
            assert_eq!(ladder.best(), None);
        }
    }

    #[test]
    fn ladder_refuses_prices_outside_its_range_and_off_tick_is_callers_job() {
        let ladder = SideLevels::ladder(Side::Buy, 100, 200, 5);
        assert!(ladder.can_hold(100));
        assert!(ladder.can_hold(200));
        assert!(!ladder.can_hold(99));
        assert!(!ladder.can_hold(205));
        assert_eq!(ladder.ladder_range(), Some((100, 200)));
    }
}
