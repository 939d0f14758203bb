//! A fixed-capacity open-addressing hash index of `u32` slots.
//!
//! The table stores only slot numbers (4 bytes a bucket); the key of a slot lives in the arena
//! the slot points into, so lookups take a closure that compares it. Linear probing with
//! backward-shift deletion: no tombstones, no allocation after construction, and the layout
//! depends only on the sequence of inserts and removes (deterministic).

const EMPTY: u32 = u32::MAX;

/// Hash of a `u64` key (Fibonacci multiply, then fold), good enough for sequential ids.
#[inline]
pub fn hash_u64(key: u64) -> u64 {
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Hash of a pair of `u64` keys.
#[inline]
pub fn hash_pair(a: u64, b: u64) -> u64 {
    hash_u64(a ^ hash_u64(b).rotate_left(17))
}

#[derive(Clone, Debug)]
pub struct SlotIndex {
    table: Vec<u32>,
    mask: usize,
    len: usize,
}

impl SlotIndex {
    /// An index for up to `capacity` entries, kept at most half full.
    pub fn with_capacity(capacity: usize) -> SlotIndex {
        let buckets = capacity.saturating_mul(2).max(16).next_power_of_two();
        SlotIndex {
            table: vec![EMPTY; buckets],
            mask: buckets - 1,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the table.
    pub fn bytes(&self) -> usize {
        self.table.len() * core::mem::size_of::<u32>()
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Fold the high bits in: the multiply puts its entropy there.
        ((hash >> 32) ^ hash) as usize & self.mask
    }

    /// The slot whose key matches, if any.
    #[inline]
    pub fn find(&self, hash: u64, mut matches: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut at = self.home(hash);
        loop {
            let slot = self.table[at];
            if slot == EMPTY {
                return None;
            }
            if matches(slot) {
                return Some(slot);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Inserts a slot whose key is not yet present. Returns false when full (the caller's
    /// limit should have stopped it first).
    #[inline]
    pub fn insert(&mut self, hash: u64, slot: u32) -> bool {
        debug_assert_ne!(slot, EMPTY);
        if self.len * 2 >= self.table.len() {
            return false;
        }
        let mut at = self.home(hash);
        while self.table[at] != EMPTY {
            at = (at + 1) & self.mask;
        }
        self.table[at] = slot;
        self.len += 1;
        true
    }

    /// Removes `slot` (which must be present under `hash`); `hash_of` gives the hash of any
    /// other slot, to shift the probe chain back over the hole.
    #[inline]
    pub fn remove(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        let mut hole = self.home(hash);
        loop {
            let at_slot = self.table[hole];
            if at_slot == EMPTY {
                return false;
            }
            if at_slot == slot {
                break;
            }
            hole = (hole + 1) & self.mask;
        }
        let mut probe = hole;
        loop {
            probe = (probe + 1) & self.mask;
            let moving = self.table[probe];
            if moving == EMPTY {
                break;
            }
            let home = self.home(hash_of(moving));
            // Move `moving` into the hole unless its home lies cyclically in (hole, probe].
            let stays = if hole <= probe {
                hole < home && home <= probe
            } else {
                hole < home || home <= probe
            };
            if !stays {
                self.table[hole] = moving;
                hole = probe;
            }
        }
        self.table[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Removes every entry, keeping the capacity.
    pub fn clear(&mut self) {
        self.table.fill(EMPTY);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_against_a_model() {
        // keys[slot] is the key stored at that slot; every hash collides into few buckets
        // to exercise probe chains and backward shifts.
        let keys: Vec<u64> = (0..500).map(|i| i * 7919).collect();
        let weak = |k: u64| k % 13;
        let mut index = SlotIndex::with_capacity(600);
        let mut present = std::collections::BTreeSet::new();
        let mut state = 12345u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let slot = ((state >> 33) % 500) as u32;
            let key = keys[slot as usize];
            if present.contains(&slot) {
                assert!(index.remove(weak(key), slot, |s| weak(keys[s as usize])));
                present.remove(&slot);
            } else {
                assert!(index.insert(weak(key), slot));
                present.insert(slot);
            }
            assert_eq!(index.len(), present.len());
            for probe in [slot, (slot + 1) % 500] {
                let k = keys[probe as usize];
                let found = index.find(weak(k), |s| keys[s as usize] == k);
                assert_eq!(found.is_some(), present.contains(&probe));
            }
        }
    }

    #[test]
    fn full_table_refuses_inserts() {
        let mut index = SlotIndex::with_capacity(8);
        let mut inserted = 0;
        for slot in 0..100u32 {
            if index.insert(hash_u64(u64::from(slot)), slot) {
                inserted += 1;
            }
        }
        assert_eq!(inserted, 8);
    }
}
