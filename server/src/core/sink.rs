//! The reply sink of an `OrderEntry` stream: where the dispatcher appends the stream's
//! results and wakes the task that writes them, with the event buffers that task hands
//! back kept for reuse (the core thread allocates nothing per command).

use engine::Event;

use super::Applied;

/// The applied commands of one order-entry stream, in the order it submitted them. The
/// dispatcher wakes the stream's reply poller (the task that writes the replies) at the
/// stream's first result of a batch, so it starts sending while the core dispatches the
/// rest, and once more at the end of the batch if it is waiting again: at most two
/// wake-ups per stream per batch.
#[derive(Debug, Default)]
pub struct ReplySink {
    state: parking_lot::Mutex<SinkState>,
}

#[derive(Debug, Default)]
struct SinkState {
    applied: std::collections::VecDeque<Applied>,
    /// Emptied event buffers the stream's poller gave back, reused for its next results:
    /// the core thread then allocates nothing per command, and nothing it allocated is
    /// freed on another thread (with glibc that was a fifth of the core thread's samples).
    spare: Vec<Vec<Event>>,
    waker: Option<std::task::Waker>,
}

/// A sink and its reply task keep at most this many spare event buffers (a stream has at most
/// `in_flight_per_connection` results out, 1,024 by default, each in one buffer)...
const SINK_SPARE_MAX: usize = 1_024;
/// ...each with room for at most this many events (a command makes two or three; a buffer
/// grown by a large sweep is dropped rather than kept): at most 1,024 x 8 x 120 bytes,
/// about 1 MiB, per stream.
const SINK_SPARE_EVENTS_MAX: usize = 8;

impl ReplySink {
    /// Moves everything applied so far (oldest first) into `into`, which must be empty:
    /// the two queues trade places, so each keeps its capacity and neither side allocates
    /// per batch. When there is nothing, `waker` is woken at the next batch that brings
    /// something. The event buffers in `spare` (emptied by the caller) go back to the
    /// sink for reuse.
    pub fn take_or_register(
        &self,
        waker: &std::task::Waker,
        into: &mut std::collections::VecDeque<Applied>,
        spare: &mut Vec<Vec<Event>>,
    ) {
        debug_assert!(into.is_empty());
        let mut state = self.state.lock();
        let room = SINK_SPARE_MAX.saturating_sub(state.spare.len());
        if room >= spare.len() {
            state.spare.append(spare);
        } else {
            state.spare.extend(spare.drain(..room));
            spare.clear();
        }
        if state.applied.is_empty() {
            match &state.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => state.waker = Some(waker.clone()),
            }
            return;
        }
        std::mem::swap(&mut state.applied, into);
    }

    /// Wakes `waker` at the next batch that brings something, or now if something is here.
    pub fn register_or_wake(&self, waker: std::task::Waker) {
        let mut state = self.state.lock();
        if state.applied.is_empty() {
            state.waker = Some(waker);
        } else {
            drop(state);
            waker.wake();
        }
    }

    /// Keeps an answered result's event buffer in `spare` (the reply task's, handed to the
    /// sink with its next `take_or_register`), emptied and with room for
    /// `SINK_SPARE_EVENTS_MAX` events, unless it grew larger or `spare` is full. Grown
    /// here, on the reply task's thread: a spare kept at the size of a small result (a
    /// cancel's two events) was too small for a trade's, and the core thread grew it
    /// (perf: malloc and realloc 1-3.5% of the core thread's samples with the trading mix).
    pub fn keep_spare(spare: &mut Vec<Vec<Event>>, mut events: Vec<Event>) {
        if events.capacity() <= SINK_SPARE_EVENTS_MAX && spare.len() < SINK_SPARE_MAX {
            events.clear();
            events.reserve_exact(SINK_SPARE_EVENTS_MAX);
            spare.push(events);
        }
    }

    /// Appends one command's result, its events copied into a spare buffer if there is one
    /// (else a new one, with a spare's room).
    pub(super) fn push(&self, seq: u64, timestamp_ns: u64, events: &[Event]) {
        let mut state = self.state.lock();
        let mut buffer = state
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(SINK_SPARE_EVENTS_MAX.max(events.len())));
        buffer.extend_from_slice(events);
        state.applied.push_back(Applied {
            seq,
            timestamp_ns,
            events: buffer,
        });
    }

    /// Wakes the poller registered by `take_or_register`, if any.
    pub(super) fn wake(&self) {
        let waker = self.state.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{AccountId, EventKind};

    fn opened(seq: u64, account: u64) -> Event {
        Event {
            seq,
            kind: EventKind::AccountOpened {
                account: AccountId(account),
            },
        }
    }

    #[test]
    fn a_sink_reuses_the_event_buffers_its_poller_gives_back() {
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        let mut spare = Vec::new();

        // Nothing yet: the poller registers and gets nothing.
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(taken.is_empty());

        sink.push(1, 10, &[opened(1, 7)]);
        sink.push(2, 20, &[opened(2, 8), opened(2, 9)]);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let first = taken.pop_front().unwrap();
        let second = taken.pop_front().unwrap();
        assert_eq!(
            (first.seq, first.timestamp_ns, first.events),
            (1, 10, vec![opened(1, 7)])
        );
        assert_eq!(second.events, vec![opened(2, 8), opened(2, 9)]);

        // The poller gives an emptied buffer back with the next take; the next result
        // arrives in that very buffer.
        let mut buffer = Vec::with_capacity(12);
        let address = buffer.as_ptr();
        buffer.push(opened(0, 1));
        buffer.clear();
        spare.push(buffer);
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(spare.is_empty());
        sink.push(3, 30, &[opened(3, 5)]);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let third = taken.pop_front().unwrap();
        assert_eq!(third.events, vec![opened(3, 5)]);
        assert_eq!(
            (third.events.as_ptr(), third.events.capacity()),
            (address, 12)
        );
    }

    #[test]
    fn a_kept_spare_has_room_for_a_trade_without_growing_on_the_core_thread() {
        // A cancel's result (two events) comes back in a buffer just large enough for it.
        let mut small = Vec::with_capacity(2);
        small.extend([opened(1, 1), opened(1, 2)]);
        let mut spare = Vec::new();
        ReplySink::keep_spare(&mut spare, small);
        assert_eq!(spare.len(), 1);
        assert!(spare[0].is_empty() && spare[0].capacity() >= SINK_SPARE_EVENTS_MAX);
        let address = spare[0].as_ptr();

        // A result of SINK_SPARE_EVENTS_MAX events lands in that buffer as it is.
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        sink.take_or_register(waker, &mut taken, &mut spare);
        let events: Vec<Event> = (0..SINK_SPARE_EVENTS_MAX as u64)
            .map(|n| opened(2, n))
            .collect();
        sink.push(2, 20, &events);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let result = taken.pop_front().unwrap();
        assert_eq!(result.events, events);
        assert_eq!(result.events.as_ptr(), address);

        // A buffer grown past the limit by a large sweep is not kept.
        let large: Vec<Event> = Vec::with_capacity(SINK_SPARE_EVENTS_MAX + 1);
        ReplySink::keep_spare(&mut spare, large);
        assert!(spare.is_empty());
    }

    #[test]
    fn a_sink_keeps_at_most_its_limit_of_spare_buffers() {
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        let mut spare: Vec<Vec<Event>> = (0..SINK_SPARE_MAX + 10).map(|_| Vec::new()).collect();
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(spare.is_empty());
        assert_eq!(sink.state.lock().spare.len(), SINK_SPARE_MAX);
        let mut more = vec![Vec::new(); 3];
        sink.take_or_register(waker, &mut taken, &mut more);
        assert!(more.is_empty());
        assert_eq!(sink.state.lock().spare.len(), SINK_SPARE_MAX);
    }
}
