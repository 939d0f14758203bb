//! The engine: applies one command at a time and emits the events it caused.

use crate::command::{Command, CommandKind, InstrumentSpec};
use crate::event::{Event, EventKind};
use crate::levels::SideLevels;
use crate::reason::Reject;
use crate::state::{Account, DayStats, EngineConfig, Instrument, State, band_of};
use crate::types::{AccountId, Fen, InstrumentId, Phase, Seq, Side, StpMode, Tonnes};

/// The largest fee rate accepted, in basis points (10%).
pub const FEE_BP_MAX: u32 = 1_000;
/// The widest band accepted, in basis points (100%).
pub const BAND_BP_MAX: u32 = 10_000;

/// A command arrived out of sequence: a bug in the caller, never applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceError {
    pub expected: Seq,
    pub got: Seq,
}

/// A level touched by the current command, with its totals before.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LevelTouch {
    pub instrument: u32,
    pub side: Side,
    pub price_fen: Fen,
    pub quantity_t: Tonnes,
    pub orders: u32,
}

/// The matching engine. Single-threaded, deterministic, no IO, no clock.
#[derive(Debug)]
pub struct Engine {
    pub(crate) state: State,
    pub(crate) seq: Seq,
    pub(crate) touched_accounts: Vec<u32>,
    pub(crate) touched_positions: Vec<(u32, u32)>,
    pub(crate) touched_levels: Vec<LevelTouch>,
    pub(crate) scratch: Vec<(u64, u32)>,
    /// Bid levels, ask levels and uncross candidates, reused by the call auction.
    pub(crate) level_scratch: LevelScratch,
}

pub(crate) type LevelScratch = (
    Vec<(Fen, Tonnes)>,
    Vec<(Fen, Tonnes)>,
    Vec<(Fen, Tonnes, Tonnes)>,
);

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine::from_state(State::new(config))
    }

    pub(crate) fn from_state(state: State) -> Engine {
        Engine {
            seq: state.last_seq,
            state,
            touched_accounts: Vec::with_capacity(64),
            touched_positions: Vec::with_capacity(64),
            touched_levels: Vec::with_capacity(256),
            scratch: Vec::with_capacity(1024),
            level_scratch: (
                Vec::with_capacity(2_048),
                Vec::with_capacity(2_048),
                Vec::with_capacity(4_096),
            ),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.state.config
    }

    pub fn last_seq(&self) -> Seq {
        self.state.last_seq
    }

    /// The journal's record `seq` is not an engine command (a registry transaction, a
    /// settlement point): the engine's sequence moves past it, so the next command follows
    /// it. Like a command, it must follow the last sequence.
    pub fn pass(&mut self, seq: Seq) -> Result<(), SequenceError> {
        let expected = self.state.last_seq + 1;
        if seq != expected {
            return Err(SequenceError { expected, got: seq });
        }
        self.state.last_seq = seq;
        self.seq = seq;
        Ok(())
    }

    /// Applies one command, appending the events it caused to `out`. The command's sequence
    /// must follow the last one applied (or passed).
    pub fn apply(&mut self, command: &Command, out: &mut Vec<Event>) -> Result<(), SequenceError> {
        let expected = self.state.last_seq + 1;
        if command.seq != expected {
            return Err(SequenceError {
                expected,
                got: command.seq,
            });
        }
        self.state.last_seq = command.seq;
        self.seq = command.seq;
        let first = out.len();
        if let Err(reason) = self.dispatch(&command.kind, out) {
            // Every handler checks before it mutates, so a rejection changed nothing.
            debug_assert_eq!(out.len(), first, "a rejected command emitted events");
            debug_assert!(self.touched_accounts.is_empty() && self.touched_levels.is_empty());
            out.push(Event {
                seq: command.seq,
                kind: EventKind::Rejected { reason },
            });
            return Ok(());
        }
        self.flush_touched(out);
        self.publish_indicative(out);
        Ok(())
    }

    fn dispatch(&mut self, kind: &CommandKind, out: &mut Vec<Event>) -> Result<(), Reject> {
        match *kind {
            CommandKind::CreateInstrument(spec) => self.create_instrument(spec, out),
            CommandKind::OpenAccount { account, stp } => self.open_account(account, stp, out),
            CommandKind::SetStpMode { account, stp } => {
                let slot = self.account(account)?;
                self.state.accounts[slot as usize].stp = stp;
                self.emit(out, EventKind::StpModeSet { account });
                Ok(())
            }
            CommandKind::RestrictAccount {
                account,
                restricted,
                cancel_orders,
            } => self.restrict(account, restricted, cancel_orders, out),
            CommandKind::SetInstrumentLimits {
                instrument,
                position_limit_t,
                large_holder_t,
            } => {
                let index = self.instrument(instrument)?;
                let spec = &mut self.state.instruments[index].spec;
                spec.position_limit_t = position_limit_t.unwrap_or(spec.position_limit_t);
                spec.large_holder_t = large_holder_t.unwrap_or(spec.large_holder_t);
                let kind = EventKind::InstrumentLimitsSet {
                    instrument,
                    position_limit_t: spec.position_limit_t,
                    large_holder_t: spec.large_holder_t,
                };
                self.emit(out, kind);
                Ok(())
            }
            CommandKind::SetPositionLimit {
                account,
                instrument,
                limit_t,
            } => {
                let slot = self.account(account)?;
                let index = self.instrument(instrument)?;
                self.state.accounts[slot as usize].positions[index].limit_t = Some(limit_t);
                self.emit(
                    out,
                    EventKind::PositionLimitSet {
                        account,
                        instrument,
                        limit_t,
                    },
                );
                Ok(())
            }
            CommandKind::CreditFunds {
                transfer,
                account,
                amount_fen,
            } => self.credit_funds(transfer, account, amount_fen, out),
            CommandKind::DebitFunds {
                transfer,
                account,
                amount_fen,
            } => self.debit_funds(transfer, account, amount_fen, out),
            CommandKind::DepositAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            } => self.deposit(transfer, account, instrument, quantity_t, out),
            CommandKind::WithdrawAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            } => self.withdraw(transfer, account, instrument, quantity_t, out),
            CommandKind::OpenDay { date } => self.open_day(date, out),
            CommandKind::SetPhase { phase } => self.set_phase(phase, out),
            CommandKind::CloseDay => self.close_day(out),
            CommandKind::HaltInstrument {
                instrument,
                cancel_orders,
            } => self.halt(instrument, cancel_orders, out),
            CommandKind::ResumeInstrument { instrument } => {
                let index = self.instrument(instrument)?;
                self.state.instruments[index].halted = false;
                self.emit(out, EventKind::InstrumentResumed { instrument });
                Ok(())
            }
            CommandKind::SetReferencePrice {
                instrument,
                price_fen,
            } => self.set_reference(instrument, price_fen, out),
            CommandKind::PlaceOrder(order) => self.place(&order, out),
            CommandKind::CancelOrder { account, order } => self.cancel(account, order, out),
            CommandKind::CancelAll {
                account,
                instrument,
            } => self.cancel_all(account, instrument, out),
            CommandKind::AmendOrder {
                account,
                order,
                price_fen,
                quantity_t,
            } => self.amend(account, order, price_fen, quantity_t, out),
            CommandKind::SetBlockWindow { open } => self.set_block_window(open, out),
            CommandKind::ProposeBlock {
                proposer,
                counterparty,
                client_order_id,
                instrument,
                side,
                price_fen,
                quantity_t,
            } => self.propose_block(
                proposer,
                counterparty,
                client_order_id,
                instrument,
                side,
                price_fen,
                quantity_t,
                out,
            ),
            CommandKind::AcceptBlock { account, block } => self.accept_block(account, block, out),
            CommandKind::RejectBlock { account, block } => {
                self.reject_block(account, block, false, out)
            }
            CommandKind::CancelBlock { account, block } => {
                self.reject_block(account, block, true, out)
            }
            CommandKind::AnnounceBidding {
                seller,
                instrument,
                quantity_t,
                reserve,
                pricing,
                bidder_max_bp,
            } => self.announce_bidding(
                seller,
                instrument,
                quantity_t,
                reserve,
                pricing,
                bidder_max_bp,
                out,
            ),
            CommandKind::DepositForDisposal {
                transfer,
                disposal,
                pledgor,
                pledgee,
                instrument,
                quantity_t,
                claim_fen,
            } => {
                let d = crate::disposal::NewDisposal {
                    disposal,
                    pledgor,
                    pledgee,
                    instrument,
                    quantity_t,
                    claim_fen,
                };
                self.deposit_for_disposal(transfer, d, out)
            }
            CommandKind::AnnounceDisposal {
                disposal,
                reserve,
                pricing,
                bidder_max_bp,
            } => self.announce_disposal(disposal, (reserve, pricing, bidder_max_bp), out),
            CommandKind::OpenBidding { auction } => self.open_bidding(auction, out),
            CommandKind::PlaceBid {
                auction,
                bidder,
                client_order_id,
                price_fen,
                quantity_t,
            } => self.place_bid(auction, bidder, client_order_id, price_fen, quantity_t, out),
            CommandKind::CloseBidding { auction } => self.close_bidding(auction, out),
        }
    }

    #[inline]
    pub(crate) fn emit(&self, out: &mut Vec<Event>, kind: EventKind) {
        out.push(Event {
            seq: self.seq,
            kind,
        });
    }

    #[inline]
    pub(crate) fn account(&self, id: AccountId) -> Result<u32, Reject> {
        self.state.account_slot(id).ok_or(Reject::UnknownAccount)
    }

    #[inline]
    pub(crate) fn instrument(&self, id: InstrumentId) -> Result<usize, Reject> {
        let index = id.0 as usize;
        if index < self.state.instruments.len() {
            Ok(index)
        } else {
            Err(Reject::UnknownInstrument)
        }
    }

    fn create_instrument(
        &mut self,
        spec: InstrumentSpec,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let state = &self.state;
        if state
            .instruments
            .iter()
            .any(|i| i.spec.symbol == spec.symbol)
        {
            return Err(Reject::InstrumentExists);
        }
        if state.instruments.len() >= state.config.limits.instruments_max as usize
            || state.instruments.len() >= usize::from(u16::MAX)
        {
            return Err(Reject::InstrumentsLimit);
        }
        validate_spec(&spec)?;
        let band = spec
            .band_bp
            .map(|bp| band_of(spec.reference_price_fen, bp, spec.tick_fen));
        let (bids, asks) = match band {
            Some((low, high)) => (
                SideLevels::ladder(Side::Buy, low, high, spec.tick_fen),
                SideLevels::ladder(Side::Sell, low, high, spec.tick_fen),
            ),
            None => (SideLevels::tree(Side::Buy), SideLevels::tree(Side::Sell)),
        };
        let id = InstrumentId(
            u32::try_from(state.instruments.len()).map_err(|_| Reject::InstrumentsLimit)?,
        );
        self.state.instruments.push(Instrument {
            spec,
            halted: false,
            band,
            bids,
            asks,
            day: DayStats::default(),
            net_deposited_t: 0,
            indicative: (0, 0, 0),
        });
        for account in &mut self.state.accounts {
            account.positions.push(Default::default());
        }
        self.emit(
            out,
            EventKind::InstrumentCreated {
                instrument: id,
                symbol: spec.symbol,
            },
        );
        Ok(())
    }

    fn open_account(
        &mut self,
        id: AccountId,
        stp: StpMode,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if self.state.account_slot(id).is_some() {
            return Err(Reject::AccountExists);
        }
        if self.state.accounts.len() >= self.state.config.limits.accounts_max as usize {
            return Err(Reject::AccountsLimit);
        }
        let instruments = self.state.instruments.len();
        self.state
            .insert_account(Account::new(id, stp, instruments));
        self.emit(out, EventKind::AccountOpened { account: id });
        Ok(())
    }

    fn restrict(
        &mut self,
        id: AccountId,
        restricted: bool,
        cancel_orders: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(id)?;
        self.state.accounts[slot as usize].restricted = restricted;
        self.emit(
            out,
            EventKind::AccountRestricted {
                account: id,
                restricted,
            },
        );
        if restricted && cancel_orders {
            self.cancel_account_orders(slot, None, crate::types::CancelReason::Restricted, out);
        }
        Ok(())
    }

    fn set_reference(
        &mut self,
        id: InstrumentId,
        price_fen: Fen,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let index = self.instrument(id)?;
        if self.state.phase != Phase::Closed {
            return Err(Reject::DayAlreadyOpen);
        }
        let tick = self.state.instruments[index].spec.tick_fen;
        if price_fen <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if price_fen % tick != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        self.state.instruments[index].spec.reference_price_fen = price_fen;
        self.emit(
            out,
            EventKind::ReferencePriceSet {
                instrument: id,
                price_fen,
            },
        );
        Ok(())
    }

    fn halt(
        &mut self,
        id: InstrumentId,
        cancel_orders: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let index = self.instrument(id)?;
        self.state.instruments[index].halted = true;
        self.emit(out, EventKind::InstrumentHalted { instrument: id });
        if cancel_orders {
            let instrument = u16::try_from(index).unwrap_or(u16::MAX);
            self.cancel_matching(
                |o| o.instrument == instrument,
                crate::types::CancelReason::Halt,
                out,
            );
        }
        Ok(())
    }
}

fn validate_spec(spec: &InstrumentSpec) -> Result<(), Reject> {
    if spec.tick_fen <= 0 || spec.lot_t == 0 || spec.max_order_t < spec.lot_t {
        return Err(Reject::InvalidParameter);
    }
    if spec.maker_fee_bp > FEE_BP_MAX || spec.taker_fee_bp > FEE_BP_MAX {
        return Err(Reject::InvalidParameter);
    }
    if spec.band_bp.is_some_and(|bp| bp > BAND_BP_MAX) {
        return Err(Reject::InvalidParameter);
    }
    if spec.reference_price_fen <= 0 {
        return Err(Reject::InvalidPrice);
    }
    if spec.reference_price_fen % spec.tick_fen != 0 {
        return Err(Reject::PriceNotOnTick);
    }
    Ok(())
}
