//! The trading-day lifecycle: open (T+1 release, bands), phases, close (expiry, closing
//! prices).

use crate::engine::Engine;
use crate::event::{DailyBar, Event, EventKind};
use crate::levels::SideLevels;
use crate::reason::Reject;
use crate::state::{DayStats, band_of};
use crate::types::{CancelReason, InstrumentId, Phase, Side, TimeInForce, TradingDate};

/// Whether `date` reads as a plausible `YYYYMMDD`.
fn valid_date(date: TradingDate) -> bool {
    let (year, month, day) = (date / 10_000, date / 100 % 100, date % 100);
    (1990..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

impl Engine {
    pub(crate) fn open_day(
        &mut self,
        date: TradingDate,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if self.state.phase != Phase::Closed {
            return Err(Reject::DayAlreadyOpen);
        }
        if !valid_date(date) || date <= self.state.date {
            return Err(Reject::InvalidDate);
        }
        self.state.date = date;
        self.state.phase = Phase::PreOpen;
        self.state.closed.day_opened(self.state.next_order_id);
        self.emit(out, EventKind::DayOpened { date });
        self.release_pending();
        for index in 0..self.state.instruments.len() {
            self.set_day_band(index, out);
        }
        Ok(())
    }

    /// Yesterday's purchases (T+1) and pending proceeds become free.
    fn release_pending(&mut self) {
        for slot in 0..self.state.accounts.len() {
            let account = &self.state.accounts[slot];
            let pending_positions = account.positions.iter().any(|p| p.pending_t > 0);
            if account.pending_fen > 0 {
                self.touch_account(slot as u32);
                let account = &mut self.state.accounts[slot];
                account.free_fen += account.pending_fen;
                account.pending_fen = 0;
            }
            if pending_positions {
                for index in 0..self.state.instruments.len() {
                    if self.state.accounts[slot].positions[index].pending_t == 0 {
                        continue;
                    }
                    self.touch_position(slot as u32, index);
                    let position = &mut self.state.accounts[slot].positions[index];
                    position.free_t += position.pending_t;
                    position.pending_t = 0;
                }
            }
        }
    }

    /// Today's band from the reference price; the ladder is re-based to cover it and every
    /// resting order.
    fn set_day_band(&mut self, index: usize, out: &mut Vec<Event>) {
        let instrument = &mut self.state.instruments[index];
        instrument.day = DayStats::default();
        let spec = instrument.spec;
        let Some(bp) = spec.band_bp else { return };
        let (low, high) = band_of(spec.reference_price_fen, bp, spec.tick_fen);
        instrument.band = Some((low, high));
        for side in [Side::Buy, Side::Sell] {
            let levels = instrument.side_mut(side);
            let (mut range_low, mut range_high) = (low, high);
            for (price, _) in levels.iter_from_best() {
                range_low = range_low.min(price);
                range_high = range_high.max(price);
            }
            if levels.ladder_range() != Some((range_low, range_high)) {
                let mut ladder = SideLevels::ladder(side, range_low, range_high, spec.tick_fen);
                for (price, level) in levels.iter_from_best() {
                    if let Some(slot) = ladder.get_or_insert(price) {
                        *slot = *level;
                    }
                }
                *levels = ladder;
            }
        }
        self.emit(
            out,
            EventKind::PriceBand {
                instrument: InstrumentId(index as u32),
                reference_fen: spec.reference_price_fen,
                low_fen: low,
                high_fen: high,
            },
        );
    }

    pub(crate) fn set_phase(&mut self, phase: Phase, out: &mut Vec<Event>) -> Result<(), Reject> {
        let current = self.state.phase;
        if current == Phase::Closed {
            return Err(Reject::DayNotOpen);
        }
        if matches!(phase, Phase::Closed | Phase::PreOpen) || phase == current {
            return Err(Reject::InvalidPhaseChange);
        }
        if phase == Phase::OpeningCall && current != Phase::PreOpen {
            return Err(Reject::InvalidPhaseChange);
        }
        if current == Phase::OpeningCall {
            // The call ends: uncross first, in the call phase, then move on.
            self.uncross_all(out);
        }
        self.state.phase = phase;
        self.emit(out, EventKind::PhaseChanged { phase });
        Ok(())
    }

    pub(crate) fn close_day(&mut self, out: &mut Vec<Event>) -> Result<(), Reject> {
        if self.state.phase == Phase::Closed {
            return Err(Reject::DayNotOpen);
        }
        if self.state.phase == Phase::OpeningCall {
            self.uncross_all(out);
        }
        self.close_negotiated(out);
        self.cancel_matching(
            |o| o.time_in_force() == TimeInForce::Day,
            CancelReason::Expiry,
            out,
        );
        let date = self.state.date;
        for index in 0..self.state.instruments.len() {
            let instrument = &mut self.state.instruments[index];
            let spec = instrument.spec;
            let day = instrument.day;
            let close_fen = day.close(spec.closing_method, spec.tick_fen, spec.reference_price_fen);
            instrument.spec.reference_price_fen = close_fen;
            self.emit(
                out,
                EventKind::ClosingPrice(DailyBar {
                    instrument: InstrumentId(index as u32),
                    date,
                    open_fen: day.open_fen,
                    high_fen: day.high_fen,
                    low_fen: day.low_fen,
                    close_fen,
                    volume_t: day.volume_t,
                    turnover_fen: day.turnover_fen,
                    trades: day.trades,
                }),
            );
        }
        self.state.phase = Phase::Closed;
        self.emit(out, EventKind::DayClosed { date });
        Ok(())
    }
}
