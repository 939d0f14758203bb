//! Closed orders kept for queries (GetOrder of a filled or cancelled order, ListOrders'
//! closed filter): every order that closed since the previous trading day opened, within
//! the newest [`CLOSED_ORDER_IDS_MAX`] order ids. The store is a window of order ids, not a
//! map: ids are the engine's own, dense and increasing, so a closed order goes into its
//! id's slot with no hashing and no allocation once the window has grown (two days, or the
//! bound, whichever is less). A slot holds the order as it left the book (`Order::FREE`:
//! live, a block's or an auction's id, or never accepted); the `account_prev` field links
//! an account's closed orders, most recently closed first: the signed distance (as i32) from
//! this order's id to the one the account closed before it, 0 for none. Orders close in any
//! id order (an old resting order fills after a newer one was cancelled).

use std::collections::VecDeque;

use crate::levels::NIL;
use crate::state::Order;

/// The widest span of order ids whose closed orders are kept (64 bytes each: 64 MiB when
/// full). An order older than that, or closed before the previous trading day opened, is
/// reported on `StreamExecutions` only.
pub const CLOSED_ORDER_IDS_MAX: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClosedOrders {
    /// Slot `i` is order id `base_id + i`.
    pub slots: VecDeque<Order>,
    pub base_id: u64,
    /// By account slot: the id of its most recently closed order (0: none).
    pub last_of_account: Vec<u64>,
    /// The first order id of the current and of the previous trading day.
    pub day_first_id: [u64; 2],
}

impl ClosedOrders {
    /// An empty store with its whole window reserved up front: growing a 64 MiB deque by
    /// doubling would copy it on the core thread (milliseconds at the p99.9). The pages are
    /// only touched, hence resident, as orders close.
    pub fn with_window() -> ClosedOrders {
        ClosedOrders {
            slots: VecDeque::with_capacity(CLOSED_ORDER_IDS_MAX),
            ..ClosedOrders::default()
        }
    }

    /// Keeps `order` (its leaves no longer count: filled_t == quantity_t means filled).
    pub fn record(&mut self, mut order: Order) {
        if order.id == 0 || order.id < self.base_id {
            return;
        }
        // The window ends at the newest id closed: older ones beyond its width go.
        let window = CLOSED_ORDER_IDS_MAX as u64;
        if order.id - self.base_id >= window {
            let new_base = order.id + 1 - window;
            while self.base_id < new_base && !self.slots.is_empty() {
                self.evict_oldest();
            }
            self.base_id = self.base_id.max(new_base);
        }
        let offset = (order.id - self.base_id) as usize;
        while self.slots.len() <= offset {
            self.slots.push_back(Order::FREE);
        }
        let account = order.account as usize;
        if self.last_of_account.len() <= account {
            self.last_of_account.resize(account + 1, 0);
        }
        let previous = self.last_of_account[account];
        order.account_prev = if previous == 0 || previous < self.base_id {
            0
        } else {
            // Both within the window, so the distance is below 2^20 either way.
            (order.id as i64 - previous as i64) as i32 as u32
        };
        order.prev = NIL;
        order.next = NIL;
        order.account_next = NIL;
        self.slots[offset] = order;
        self.last_of_account[account] = order.id;
    }

    fn evict_oldest(&mut self) {
        if self.slots.pop_front().is_some() {
            self.base_id += 1;
        }
    }

    /// A new trading day opens; orders closed before the previous one opened go.
    pub fn day_opened(&mut self, next_order_id: u64) {
        self.day_first_id = [next_order_id, self.day_first_id[0]];
        let keep_from = self.day_first_id[1];
        while !self.slots.is_empty() && self.base_id < keep_from {
            self.evict_oldest();
        }
        if self.slots.is_empty() {
            self.base_id = self.base_id.max(keep_from);
        }
    }

    pub fn get(&self, id: u64) -> Option<&Order> {
        let offset = id.checked_sub(self.base_id)?;
        self.slots
            .get(usize::try_from(offset).ok()?)
            .filter(|o| o.id == id && id != 0)
    }

    /// The closed orders of account slot `account`, most recently closed first, at most `max`.
    pub fn of_account(&self, account: u32, max: usize) -> Vec<Order> {
        let mut out = Vec::new();
        let mut id = self
            .last_of_account
            .get(account as usize)
            .copied()
            .unwrap_or(0);
        while out.len() < max {
            let Some(order) = self.get(id) else {
                break;
            };
            out.push(*order);
            match previous_id(order) {
                Some(previous) => id = previous,
                None => break,
            }
        }
        out
    }

    /// Every order kept, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.slots.iter().filter(|o| o.id != 0)
    }
}

/// The id of the order its account closed before `order` (None: none, or not an id).
fn previous_id(order: &Order) -> Option<u64> {
    let distance = i64::from(order.account_prev as i32);
    let previous = (order.id as i64).checked_sub(distance)?;
    (distance != 0 && previous > 0).then_some(previous as u64)
}

/// Snapshot encoding (version 4): the window, the day marks, each kept order, and each
/// account's most recently closed one. Canonical: equal stores give equal bytes.
pub(crate) fn write(w: &mut crate::snapshot::Writer, c: &ClosedOrders) {
    w.u64(c.base_id);
    w.u64(c.day_first_id[0]);
    w.u64(c.day_first_id[1]);
    w.len(c.iter().count());
    for o in c.iter() {
        w.u64(o.id);
        w.u64(o.client_order_id);
        w.i64(o.price_fen);
        w.u64(o.quantity_t);
        w.u64(o.filled_t);
        w.u32(o.account);
        w.u32(u32::from(o.instrument));
        w.u8(o.flags);
        w.u32(o.account_prev);
    }
    let last: Vec<(usize, u64)> = c
        .last_of_account
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, id)| c.get(id).is_some())
        .collect();
    w.len(last.len());
    for (slot, id) in last {
        w.u32(slot as u32);
        w.u64(id);
    }
}

pub(crate) fn read(
    r: &mut crate::snapshot::Reader<'_>,
    state: &mut crate::state::State,
) -> Result<(), crate::SnapshotError> {
    use crate::SnapshotError::Invalid;
    let mut c = ClosedOrders {
        base_id: r.u64()?,
        day_first_id: [r.u64()?, r.u64()?],
        ..ClosedOrders::with_window()
    };
    let count = r.len(53)?;
    if count > CLOSED_ORDER_IDS_MAX {
        return Err(Invalid("closed order count"));
    }
    for _ in 0..count {
        let order = Order {
            id: r.u64()?,
            client_order_id: r.u64()?,
            price_fen: r.i64()?,
            quantity_t: r.u64()?,
            filled_t: r.u64()?,
            account: r.u32()?,
            instrument: u16::try_from(r.u32()?).map_err(|_| Invalid("closed order"))?,
            flags: r.u8()?,
            account_prev: r.u32()?,
            ..Order::FREE
        };
        let offset = order.id.checked_sub(c.base_id).map(|o| o as usize);
        let in_order = offset.is_some_and(|o| o >= c.slots.len() && o < CLOSED_ORDER_IDS_MAX);
        if !in_order
            || order.id >= state.next_order_id
            || order.account as usize >= state.accounts.len()
            || usize::from(order.instrument) >= state.instruments.len()
            || order.filled_t > order.quantity_t
            || (order.account_prev != 0 && previous_id(&order).is_none())
        {
            return Err(Invalid("closed order"));
        }
        while c.slots.len() < offset.unwrap_or(0) {
            c.slots.push_back(Order::FREE);
        }
        c.slots.push_back(order);
    }
    c.last_of_account = vec![0; state.accounts.len()];
    for _ in 0..r.len(12)? {
        let (slot, id) = (r.u32()? as usize, r.u64()?);
        let owned = c.get(id).is_some_and(|o| o.account as usize == slot);
        if slot >= c.last_of_account.len() || !owned {
            return Err(Invalid("closed order of account"));
        }
        c.last_of_account[slot] = id;
    }
    state.closed = c;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: u64, account: u32, filled_t: u64) -> Order {
        Order {
            id,
            client_order_id: id * 10,
            quantity_t: 100,
            filled_t,
            account,
            ..Order::FREE
        }
    }

    #[test]
    fn an_accounts_closed_orders_come_back_newest_first() {
        let mut c = ClosedOrders::default();
        // Ids 5, 7 and 6 close in that order for account 1; 8 for account 2.
        for (id, account) in [(5, 1), (7, 1), (6, 1), (8, 2)] {
            c.record(order(id, account, 100));
        }
        let ids =
            |c: &ClosedOrders, a| c.of_account(a, 10).iter().map(|o| o.id).collect::<Vec<_>>();
        assert_eq!(ids(&c, 1), vec![6, 7, 5]);
        assert_eq!(ids(&c, 2), vec![8]);
        assert_eq!(c.of_account(1, 2).len(), 2, "at most max");
        assert!(c.get(4).is_none() && c.get(9).is_none() && c.get(0).is_none());
        assert_eq!(c.get(7).map(|o| o.client_order_id), Some(70));
    }

    #[test]
    fn two_trading_days_are_kept() {
        let mut c = ClosedOrders::default();
        c.day_opened(1);
        c.record(order(1, 1, 100));
        // Day 2 opens at id 2: day 1's orders stay.
        c.day_opened(2);
        c.record(order(2, 1, 0));
        assert!(c.get(1).is_some());
        // Day 3 opens at id 3: what closed before day 2 opened (id 1) goes.
        c.day_opened(3);
        assert!(c.get(1).is_none());
        assert_eq!(
            c.of_account(1, 10).iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn the_window_is_bounded_by_ids() {
        let mut c = ClosedOrders::default();
        c.record(order(1, 1, 100));
        let far = 1 + CLOSED_ORDER_IDS_MAX as u64;
        c.record(order(far, 1, 100));
        // Id 1 left the window of CLOSED_ORDER_IDS_MAX ids ending at `far`, which starts
        // at far + 1 - CLOSED_ORDER_IDS_MAX = 2.
        assert!(c.get(1).is_none());
        assert_eq!(c.base_id, 2);
        assert_eq!(
            c.slots.len(),
            CLOSED_ORDER_IDS_MAX,
            "never wider than the bound"
        );
        assert_eq!(c.of_account(1, 10).len(), 1);
        // An order older than the window is not recorded.
        c.record(order(1, 1, 100));
        assert!(c.get(1).is_none());
    }
}
