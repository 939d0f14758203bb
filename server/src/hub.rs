//! What the core thread publishes: a bounded in-memory history of stream items (for resume),
//! the recent trades per instrument, and the daily bars. Subscribers read it at their own
//! pace from their own task; the core thread only appends and notifies, so no consumer can
//! stall the engine. A consumer that falls behind the history is told so and dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;

use engine::{DailyBar, Event, EventKind, InstrumentId, TradeReport};
use parking_lot::RwLock;
use tokio::sync::watch;

/// A stream position: (engine sequence, index of the event within its command).
pub type Pos = (u64, u32);

#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub pos: Pos,
    pub timestamp_ns: u64,
    pub event: Event,
}

#[derive(Clone, Copy, Debug)]
pub struct TradeRecord {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub trade: TradeReport,
}

/// Why a resume point cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    pub oldest: Pos,
}

#[derive(Debug)]
pub struct Hub {
    /// Stored by value (no allocation per item on the core thread; readers copy).
    items: RwLock<VecDeque<Item>>,
    /// The newest item ever evicted from `items`, or the snapshot recovery started from:
    /// nothing at or before it can be served.
    evicted: RwLock<Option<Pos>>,
    capacity: usize,
    trades: RwLock<HashMap<InstrumentId, VecDeque<TradeRecord>>>,
    trades_retained: usize,
    bars: RwLock<Vec<DailyBar>>,
    latest: watch::Sender<u64>,
    /// The last sequence published (subscribers are told at [`Hub::notify`]).
    published: std::sync::atomic::AtomicU64,
    /// Sequence and date of the last trading day opened (today's trades come after it).
    day_opened: RwLock<(u64, u32)>,
}

/// Once the history is full, the oldest items go up to this many at a time, so the core
/// thread reads an evicted item's position and records it once per chunk rather than once
/// per command (perf: reading the item being evicted, a cache miss in a history of ~150
/// MB, and the lock recording it were a third of `publish`'s samples). The history then
/// holds between `capacity - chunk` and `capacity` items.
const EVICT_CHUNK_MAX: usize = 1_024;

/// Whether an event goes into the stream history.
fn streamed(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Accepted(_)
            | EventKind::Amended { .. }
            | EventKind::Trade(_)
            | EventKind::Cancelled { .. }
            | EventKind::Level { .. }
            | EventKind::ClosingPrice(_)
            | EventKind::DayOpened { .. }
            | EventKind::PhaseChanged { .. }
            | EventKind::PriceBand { .. }
            | EventKind::InstrumentHalted { .. }
            | EventKind::InstrumentResumed { .. }
            | EventKind::Indicative { .. }
            | EventKind::AuctionUncross { .. }
            | EventKind::BiddingAnnounced { .. }
            | EventKind::BiddingClosed { .. }
    )
}

impl Hub {
    pub fn new(capacity: usize, trades_retained: usize) -> Hub {
        Hub {
            items: RwLock::new(VecDeque::with_capacity(capacity.min(1 << 16))),
            evicted: RwLock::new(None),
            capacity,
            trades: RwLock::new(HashMap::new()),
            trades_retained,
            bars: RwLock::new(Vec::new()),
            latest: watch::channel(0).0,
            published: std::sync::atomic::AtomicU64::new(0),
            day_opened: RwLock::new((0, 0)),
        }
    }

    /// Publishes the events of one command (core thread only).
    pub fn publish(&self, seq: u64, timestamp_ns: u64, events: &[Event]) {
        self.publish_all([(seq, timestamp_ns, events)]);
    }

    /// Publishes the events of several commands, (sequence, timestamp, events) in order,
    /// taking each lock once for all of them (core thread only).
    pub fn publish_all<'a>(&self, commands: impl IntoIterator<Item = (u64, u64, &'a [Event])>) {
        let mut items = self.items.write();
        let mut trades = None;
        let mut evicted = None;
        let mut last = None;
        for (seq, timestamp_ns, events) in commands {
            last = Some(seq);
            for (index, event) in events.iter().enumerate() {
                match event.kind {
                    EventKind::Trade(trade) => {
                        let trades = trades.get_or_insert_with(|| self.trades.write());
                        let list = trades.entry(trade.instrument).or_default();
                        if list.len() == self.trades_retained {
                            list.pop_front();
                        }
                        list.push_back(TradeRecord {
                            seq,
                            timestamp_ns,
                            trade,
                        });
                    }
                    EventKind::ClosingPrice(bar) => self.bars.write().push(bar),
                    EventKind::DayOpened { date } => *self.day_opened.write() = (seq, date),
                    _ => {}
                }
                if !streamed(&event.kind) {
                    continue;
                }
                if items.len() >= self.capacity {
                    let n = self.evict_chunk().min(items.len());
                    if let Some(newest_gone) = n.checked_sub(1).and_then(|i| items.get(i)) {
                        evicted = Some(newest_gone.pos);
                    }
                    items.drain(..n);
                }
                items.push_back(Item {
                    pos: (seq, index as u32),
                    timestamp_ns,
                    event: *event,
                });
            }
        }
        drop(trades);
        if let Some(pos) = evicted {
            // Before the items lock is released: a reader never sees an item gone
            // without the eviction recorded.
            *self.evicted.write() = Some(pos);
        }
        drop(items);
        if let Some(seq) = last {
            self.published.store(seq, Ordering::Release);
        }
    }

    /// How many of the oldest items go at once when the history is full: a 64th of it,
    /// at most `EVICT_CHUNK_MAX` (one item for a history of fewer than 128).
    fn evict_chunk(&self) -> usize {
        (self.capacity / 64).clamp(1, EVICT_CHUNK_MAX)
    }

    /// Wakes subscribers for everything published so far (the core thread calls this once
    /// per batch, not per command).
    pub fn notify(&self) {
        let seq = self.published.load(Ordering::Acquire);
        self.latest.send_if_modified(|latest| {
            let changed = *latest != seq;
            *latest = seq;
            changed
        });
    }

    /// Recovery started from a snapshot at `seq`: items up to it are not available.
    pub fn set_floor(&self, seq: u64, bars: Vec<DailyBar>) {
        *self.evicted.write() = Some((seq, u32::MAX));
        *self.bars.write() = bars;
        self.published.store(seq, Ordering::Release);
        self.latest.send_replace(seq);
    }

    /// The daily bars as of a snapshot (replacing any rebuilt before it).
    pub fn set_bars(&self, bars: Vec<DailyBar>) {
        *self.bars.write() = bars;
    }

    /// Where a subscription "from the oldest retained" starts.
    pub fn oldest(&self) -> Pos {
        self.evicted.read().unwrap_or((0, 0))
    }

    /// Sequence and date of the last trading day opened, as far as the history reaches
    /// (`(0, 0)` when it does not reach the last day open).
    pub fn day_opened(&self) -> (u64, u32) {
        *self.day_opened.read()
    }

    /// Every trade kept for `GetTrades`, per instrument oldest first (for a snapshot).
    pub fn all_trades(&self) -> Vec<TradeRecord> {
        let trades = self.trades.read();
        let mut instruments: Vec<_> = trades.keys().copied().collect();
        instruments.sort_by_key(|i| i.0);
        instruments
            .iter()
            .flat_map(|i| trades.get(i).into_iter().flatten().copied())
            .collect()
    }

    /// The trades kept as of a snapshot (replacing any rebuilt before it), each
    /// instrument's newest `trades_retained`.
    pub fn set_trades(&self, records: Vec<TradeRecord>) {
        let mut trades = self.trades.write();
        trades.clear();
        for record in records {
            let list = trades.entry(record.trade.instrument).or_default();
            if list.len() == self.trades_retained {
                list.pop_front();
            }
            list.push_back(record);
        }
    }

    pub fn all_bars(&self) -> Vec<DailyBar> {
        self.bars.read().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    pub fn latest_seq(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Up to `max` items after `after` that pass `keep`; refuses a point already evicted.
    pub fn read_after(
        &self,
        after: Pos,
        max: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Pos), TooOld> {
        let items = self.items.read();
        if let Some(evicted) = *self.evicted.read()
            && after < evicted
        {
            return Err(TooOld {
                oldest: items.front().map_or(evicted, |i| i.pos),
            });
        }
        let start = items.partition_point(|i| i.pos <= after);
        let mut out = Vec::new();
        let mut last = after;
        for item in items.range(start..) {
            last = item.pos;
            if keep(item) {
                out.push(*item);
                if out.len() == max {
                    break;
                }
            }
        }
        Ok((out, last))
    }

    /// Trades of an instrument with an id above `after`, oldest first.
    pub fn trades(&self, instrument: InstrumentId, after: u64, limit: usize) -> Vec<TradeRecord> {
        let trades = self.trades.read();
        let Some(list) = trades.get(&instrument) else {
            return Vec::new();
        };
        let start = list.partition_point(|t| t.trade.trade.0 <= after);
        list.range(start..).take(limit).copied().collect()
    }

    /// The newest `n` trades of an instrument, oldest first.
    pub fn recent_trades(&self, instrument: InstrumentId, n: usize) -> Vec<TradeRecord> {
        let trades = self.trades.read();
        let Some(list) = trades.get(&instrument) else {
            return Vec::new();
        };
        list.iter()
            .skip(list.len().saturating_sub(n))
            .copied()
            .collect()
    }

    pub fn bars(&self, instrument: InstrumentId, from: u32, to: u32) -> Vec<DailyBar> {
        self.bars
            .read()
            .iter()
            .filter(|b| b.instrument == instrument && b.date >= from && (to == 0 || b.date <= to))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One streamed event per command (`DayOpened`, the simplest streamed kind).
    fn command(seq: u64) -> Vec<Event> {
        vec![Event {
            seq,
            kind: EventKind::DayOpened {
                date: 20_260_000 + seq as u32,
            },
        }]
    }

    fn positions(hub: &Hub) -> Vec<Pos> {
        hub.items.read().iter().map(|i| i.pos).collect()
    }

    #[test]
    fn publishing_a_batch_at_once_is_publishing_its_commands_one_by_one() {
        let (one_by_one, at_once) = (Hub::new(64, 10), Hub::new(64, 10));
        let commands: Vec<(u64, Vec<Event>)> = (1..=40).map(|s| (s, command(s))).collect();
        for (seq, events) in &commands {
            one_by_one.publish(*seq, seq * 10, events);
        }
        at_once.publish_all(commands.iter().map(|(s, e)| (*s, s * 10, e.as_slice())));
        assert_eq!(positions(&one_by_one), positions(&at_once));
        assert_eq!(at_once.latest_seq(), 40);
        assert_eq!(at_once.day_opened(), one_by_one.day_opened());
        // An empty batch publishes nothing and moves nothing.
        at_once.publish_all([]);
        assert_eq!(at_once.latest_seq(), 40);
    }

    #[test]
    fn a_small_history_evicts_one_item_at_a_time() {
        let hub = Hub::new(8, 10);
        for seq in 1..=20 {
            hub.publish(seq, seq, &command(seq));
        }
        let expected: Vec<Pos> = (13..=20).map(|s| (s, 0)).collect();
        assert_eq!(positions(&hub), expected);
        assert_eq!(hub.oldest(), (12, 0));
        assert_eq!(
            hub.read_after((11, 0), 100, |_| true).err(),
            Some(TooOld { oldest: (13, 0) })
        );
        let (items, last) = hub
            .read_after((12, 0), 100, |_| true)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((items.len(), last), (8, (20, 0)));
    }

    #[test]
    fn a_large_history_evicts_its_oldest_items_a_chunk_at_a_time() {
        // 640 items: chunks of 10.
        let hub = Hub::new(640, 10);
        for seq in 1..=640 {
            hub.publish(seq, seq, &command(seq));
        }
        assert_eq!(hub.items.read().len(), 640);
        assert_eq!(hub.oldest(), (0, 0), "nothing evicted while it fits");
        hub.publish(641, 641, &command(641));
        // Items 1..=10 went at once; the history holds 631 and says where it starts.
        assert_eq!(hub.items.read().len(), 631);
        assert_eq!(hub.oldest(), (10, 0));
        assert!(hub.read_after((9, 0), 1, |_| true).is_err());
        let (items, _) = hub
            .read_after((10, 0), 1, |_| true)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(items[0].pos, (11, 0));
        // It never holds more than its capacity.
        for seq in 642..=2_000 {
            hub.publish(seq, seq, &command(seq));
            assert!(hub.items.read().len() <= 640);
        }
        assert_eq!(positions(&hub).last(), Some(&(2_000, 0)));
    }
}
