//! Pledge disposal: the units of a pledge enforced for auction arrive in the pledgor's
//! position locked (the pledgor cannot sell or withdraw them), are sold by one-way bidding,
//! and each sale's net proceeds (after the seller's fee) pay the pledgee first, up to what
//! it is still owed, the pledgor the rest, to the fen, in the same command as the sale.
//! Unsold units stay locked for another auction while a claim is left; once the claim is
//! paid they go back to the pledgor, and once none are left the disposal is over (a claim
//! still open is then unsecured, outside the exchange).

use crate::command::{Pricing, ReserveRule};
use crate::engine::Engine;
use crate::event::{Event, EventKind};
use crate::funds::{FUNDS_FEN_MAX, Seen, allowance_record};
use crate::negotiated::Offer;
use crate::reason::Reject;
use crate::state::{Disposal, TRANSFER_DISPOSAL, TransferRecord};
use crate::types::{AccountId, Fen, InstrumentId, OrderId, Tonnes, TransferId};

/// Most disposals open at once (each holds a pledge's units until sold).
pub const DISPOSALS_MAX: usize = 4_096;

/// A `DepositForDisposal`'s terms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewDisposal {
    pub disposal: u64,
    pub pledgor: AccountId,
    pub pledgee: AccountId,
    pub instrument: InstrumentId,
    pub quantity_t: Tonnes,
    pub claim_fen: Fen,
}

impl Engine {
    pub(crate) fn deposit_for_disposal(
        &mut self,
        transfer: TransferId,
        d: NewDisposal,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let pledgor = self.account(d.pledgor)?;
        let pledgee = self.account(d.pledgee)?;
        let index = self.instrument(d.instrument)?;
        if pledgor == pledgee || d.claim_fen <= 0 || d.claim_fen > FUNDS_FEN_MAX {
            return Err(Reject::InvalidParameter);
        }
        let record = allowance_record(TRANSFER_DISPOSAL, d.pledgor, d.instrument, d.quantity_t)?;
        if let Seen::Retry = self.seen(transfer, record)? {
            self.emit(out, EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        if self.state.disposals.iter().any(|x| x.id == d.disposal) {
            return Err(Reject::InvalidParameter);
        }
        if self.state.disposals.len() >= DISPOSALS_MAX {
            return Err(Reject::AuctionsLimit);
        }
        let position = &self.state.accounts[pledgor as usize].positions[index];
        if position.holding_t() + position.open_buy_t + d.quantity_t > crate::ALLOWANCES_T_MAX {
            return Err(Reject::Overflow);
        }
        self.touch_position(pledgor, index);
        self.state.accounts[pledgor as usize].positions[index].locked_t += d.quantity_t;
        self.state.instruments[index].net_deposited_t += d.quantity_t;
        self.state.transfers.insert(
            transfer,
            TransferRecord {
                seq: self.seq,
                ..record
            },
        );
        self.state.disposals.push(Disposal {
            id: d.disposal,
            pledgor,
            pledgee,
            instrument: index,
            quantity_t: d.quantity_t,
            claim_fen: d.claim_fen,
            auction: None,
        });
        let kind = EventKind::DisposalOpened {
            disposal: d.disposal,
            pledgor: d.pledgor,
            pledgee: d.pledgee,
            instrument: d.instrument,
            quantity_t: d.quantity_t,
            claim_fen: d.claim_fen,
        };
        self.emit(out, kind);
        Ok(())
    }

    /// Puts every locked unit of a disposal up for one-way bidding.
    pub(crate) fn announce_disposal(
        &mut self,
        disposal: u64,
        terms: (ReserveRule, Pricing, u32),
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let at = self.disposal_at(disposal)?;
        let d = self.state.disposals[at];
        if d.auction.is_some() {
            return Err(Reject::DisposalInAuction);
        }
        // Any quantity on the lot: the block minimum is for sellers who choose to auction.
        self.check_bidding_terms(d.instrument, d.quantity_t, terms.2, 1)?;
        let offer = Offer {
            seller: d.pledgor,
            index: d.instrument,
            quantity_t: d.quantity_t,
            terms,
            disposal: Some(disposal),
        };
        let auction = self.push_auction(offer, out);
        let d = &mut self.state.disposals[at];
        d.quantity_t = 0;
        d.auction = Some(auction);
        Ok(())
    }

    fn disposal_at(&self, disposal: u64) -> Result<usize, Reject> {
        self.state
            .disposals
            .iter()
            .position(|d| d.id == disposal)
            .ok_or(Reject::UnknownDisposal)
    }

    /// A disposal auction closed with `proceeds_fen` net to the pledgor and `unsold_t` of
    /// its units still locked: the pledgee's share moves, the rest waits or goes back.
    pub(crate) fn settle_disposal(
        &mut self,
        disposal: u64,
        auction: OrderId,
        proceeds_fen: Fen,
        unsold_t: Tonnes,
        out: &mut Vec<Event>,
    ) {
        let Ok(at) = self.disposal_at(disposal) else {
            debug_assert!(
                false,
                "auction {auction:?} of a missing disposal {disposal}"
            );
            return;
        };
        let d = self.state.disposals[at];
        let paid_fen = proceeds_fen.min(d.claim_fen);
        if paid_fen > 0 {
            self.pay_pledgee(d.pledgor, d.pledgee, paid_fen);
        }
        let claim_left_fen = d.claim_fen - paid_fen;
        let (kept_t, released_t) = if claim_left_fen > 0 {
            (unsold_t, 0)
        } else {
            (0, unsold_t)
        };
        if released_t > 0 {
            self.lock_allowances(d.pledgor, d.instrument, released_t, false);
        }
        if kept_t > 0 {
            let d = &mut self.state.disposals[at];
            d.quantity_t = kept_t;
            d.claim_fen = claim_left_fen;
            d.auction = None;
        } else {
            self.state.disposals.remove(at);
        }
        let kind = EventKind::DisposalSettled {
            disposal,
            auction,
            pledgee: self.state.accounts[d.pledgee as usize].id,
            paid_fen,
            claim_left_fen,
            kept_t,
            released_t,
        };
        self.emit(out, kind);
    }

    /// Moves the pledgee's share of proceeds just credited to the pledgor, from the same
    /// balance they were credited to (free, or pending when proceeds wait for tomorrow).
    fn pay_pledgee(&mut self, pledgor: u32, pledgee: u32, amount_fen: Fen) {
        let same_day = self.state.config.proceeds_same_day;
        self.touch_account(pledgor);
        self.touch_account(pledgee);
        let from = &mut self.state.accounts[pledgor as usize];
        if same_day {
            from.free_fen -= amount_fen;
        } else {
            from.pending_fen -= amount_fen;
        }
        let to = &mut self.state.accounts[pledgee as usize];
        if same_day {
            to.free_fen += amount_fen;
        } else {
            to.pending_fen += amount_fen;
        }
    }
}
