//! Negotiated trades: block agreements between two named members, and one-way bidding
//! (a seller's auction of a fixed quantity, which also serves paid allocation).
//!
//! Block: the proposer's side is locked at proposal, the counterparty's is checked and settled
//! at acceptance; proposals expire when the block window closes or the day ends.
//! Bidding: the offered quantity is locked in the seller's allowances at announcement; each
//! sealed bid locks `price x quantity + fee` when accepted; at the close bids rank by price,
//! then time, the marginal bid fills partly, and the unsold rest returns to the seller.
//! Both kinds settle like any trade, with the maker fee on each side, and do not enter the
//! day's closing-price statistics (those are on-book trades only).

use crate::command::{Pricing, ReserveRule};
use crate::engine::Engine;
use crate::event::{Event, EventKind, FillSide, TradeReport};
use crate::orders::{NOTIONAL_FEN_MAX, buy_required_fen, fee_fen, lock_bp};
use crate::reason::Reject;
use crate::state::{Bid, Bidding, BlockProposal};
use crate::types::{
    AccountId, ClientOrderId, Fen, InstrumentId, OrderId, Phase, Side, Tonnes, TradeId, TradeKind,
};

/// An auction to record: the seller's slot, the instrument's index, the quantity (locked
/// already), the reserve rule, pricing and bidder share, and the disposal it sells.
pub(crate) struct Offer {
    pub seller: u32,
    pub index: usize,
    pub quantity_t: Tonnes,
    pub terms: (ReserveRule, Pricing, u32),
    pub disposal: Option<u64>,
}

/// What one side of a negotiated trade is: account slot, order id, and for a buyer the funds
/// it had locked for this trade.
struct Party {
    account: u32,
    order: u64,
    locked_fen: Fen,
}

impl Engine {
    fn lock_funds(&mut self, account: u32, amount_fen: Fen) {
        if self.state.config.risk_checks {
            self.touch_account(account);
            let a = &mut self.state.accounts[account as usize];
            a.free_fen -= amount_fen;
            a.locked_fen += amount_fen;
        }
    }

    fn unlock_funds(&mut self, account: u32, amount_fen: Fen) {
        if self.state.config.risk_checks {
            self.touch_account(account);
            let a = &mut self.state.accounts[account as usize];
            a.free_fen += amount_fen;
            a.locked_fen -= amount_fen;
        }
    }

    pub(crate) fn lock_allowances(
        &mut self,
        account: u32,
        index: usize,
        quantity_t: Tonnes,
        lock: bool,
    ) {
        if self.state.config.risk_checks {
            self.touch_position(account, index);
            let p = &mut self.state.accounts[account as usize].positions[index];
            if lock {
                p.free_t -= quantity_t;
                p.locked_t += quantity_t;
            } else {
                p.locked_t -= quantity_t;
                p.free_t += quantity_t;
            }
        }
    }

    /// Funds or allowances for one side of a negotiated trade, checked before anything moves.
    fn check_side(
        &self,
        account: u32,
        index: usize,
        side: Side,
        price_fen: Fen,
        quantity_t: Tonnes,
    ) -> Result<Fen, Reject> {
        if i128::from(price_fen) * i128::from(quantity_t) > NOTIONAL_FEN_MAX {
            return Err(Reject::Overflow);
        }
        let instrument = &self.state.instruments[index];
        let required = buy_required_fen(quantity_t, price_fen, lock_bp(instrument));
        if !self.state.config.risk_checks {
            return Ok(required);
        }
        let a = &self.state.accounts[account as usize];
        let p = &a.positions[index];
        match side {
            Side::Buy if required > a.free_fen => Err(Reject::InsufficientFunds),
            Side::Buy if self.over_position_limit(account, index, 0, quantity_t) => {
                Err(Reject::PositionLimitExceeded)
            }
            Side::Sell if quantity_t > p.free_t => Err(Reject::InsufficientAllowances),
            _ => Ok(required),
        }
    }

    /// Settles a negotiated trade: the buyer pays from `buyer.locked_fen`, the seller's
    /// allowances were locked; both pay the maker fee.
    fn settle_negotiated(
        &mut self,
        index: usize,
        buyer: Party,
        seller: Party,
        (price_fen, quantity_t): (Fen, Tonnes),
        kind: TradeKind,
        out: &mut Vec<Event>,
    ) -> Fen {
        let notional = quantity_t as i64 * price_fen;
        let fee = fee_fen(notional, self.state.instruments[index].spec.maker_fee_bp);
        let mut seller_net_fen = 0;
        if self.state.config.risk_checks {
            let t_plus_one = self.state.instruments[index].spec.t_plus_one;
            self.touch_account(buyer.account);
            self.touch_position(buyer.account, index);
            let b = &mut self.state.accounts[buyer.account as usize];
            debug_assert!(buyer.locked_fen >= notional + fee);
            b.locked_fen -= buyer.locked_fen;
            b.free_fen += buyer.locked_fen - notional - fee;
            if t_plus_one {
                b.positions[index].pending_t += quantity_t;
            } else {
                b.positions[index].free_t += quantity_t;
            }
            seller_net_fen = notional - fee;
            self.settle_sell(seller.account, index, quantity_t, seller_net_fen);
            self.collect_fee(2 * fee);
        }
        let trade = TradeId(self.state.next_trade_id);
        self.state.next_trade_id += 1;
        let side = |engine: &Engine, party: &Party| FillSide {
            order: OrderId(party.order),
            account: engine.state.accounts[party.account as usize].id,
            fee_fen: fee,
            filled_t: quantity_t,
            leaves_t: 0,
        };
        let (buy, sell) = (side(self, &buyer), side(self, &seller));
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
        seller_net_fen
    }

    pub(crate) fn set_block_window(
        &mut self,
        open: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if open && self.state.phase == Phase::Closed {
            return Err(Reject::DayNotOpen);
        }
        self.state.block_window = open;
        self.emit(out, EventKind::BlockWindow { open });
        if !open {
            self.expire_blocks(out);
        }
        Ok(())
    }

    fn expire_blocks(&mut self, out: &mut Vec<Event>) {
        let blocks = std::mem::take(&mut self.state.blocks);
        for block in &blocks {
            self.release_block(block);
            self.emit(
                out,
                EventKind::BlockExpired {
                    block: OrderId(block.id),
                },
            );
        }
    }

    fn release_block(&mut self, block: &BlockProposal) {
        match block.side {
            Side::Buy => {
                let required = buy_required_fen(
                    block.quantity_t,
                    block.price_fen,
                    lock_bp(&self.state.instruments[block.instrument]),
                );
                self.unlock_funds(block.proposer, required);
            }
            Side::Sell => {
                self.lock_allowances(block.proposer, block.instrument, block.quantity_t, false)
            }
        }
    }

    /// Ends the day's negotiated business: pending blocks expire, open auctions close.
    pub(crate) fn close_negotiated(&mut self, out: &mut Vec<Event>) {
        self.state.block_window = false;
        self.expire_blocks(out);
        while let Some(auction) = self.state.auctions.first() {
            let id = auction.id;
            self.close_bidding(OrderId(id), out).ok();
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn propose_block(
        &mut self,
        proposer: AccountId,
        counterparty: AccountId,
        client_order_id: ClientOrderId,
        instrument: InstrumentId,
        side: Side,
        price_fen: Fen,
        quantity_t: Tonnes,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (p, c) = (self.account(proposer)?, self.account(counterparty)?);
        let index = self.instrument(instrument)?;
        if !self.state.block_window {
            return Err(Reject::BlockWindowClosed);
        }
        if p == c {
            return Err(Reject::NotCounterparty);
        }
        self.check_block_terms(p, index, price_fen, quantity_t)?;
        if self.state.blocks.len() >= self.state.config.limits.blocks_max as usize {
            return Err(Reject::BlocksLimit);
        }
        let required = self.check_side(p, index, side, price_fen, quantity_t)?;
        let id = self.state.next_order_id;
        self.state.next_order_id += 1;
        match side {
            Side::Buy => self.lock_funds(p, required),
            Side::Sell => self.lock_allowances(p, index, quantity_t, true),
        }
        self.state.blocks.push(BlockProposal {
            id,
            client_order_id: client_order_id.0,
            proposer: p,
            counterparty: c,
            instrument: index,
            side,
            price_fen,
            quantity_t,
        });
        self.emit(
            out,
            EventKind::BlockProposed {
                block: OrderId(id),
                proposer,
                counterparty,
                instrument,
                side,
                price_fen,
                quantity_t,
            },
        );
        Ok(())
    }

    fn check_block_terms(
        &self,
        account: u32,
        index: usize,
        price_fen: Fen,
        quantity_t: Tonnes,
    ) -> Result<(), Reject> {
        let instrument = &self.state.instruments[index];
        let spec = &instrument.spec;
        if instrument.halted {
            return Err(Reject::InstrumentHalted);
        }
        if self.state.accounts[account as usize].restricted {
            return Err(Reject::AccountRestricted);
        }
        if quantity_t < spec.block_min_t || quantity_t == 0 {
            return Err(Reject::QuantityBelowMin);
        }
        if !quantity_t.is_multiple_of(spec.lot_t) {
            return Err(Reject::QuantityNotOnLot);
        }
        if price_fen <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if price_fen % spec.tick_fen != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        let (low, high) =
            crate::state::band_of(spec.reference_price_fen, spec.block_band_bp, spec.tick_fen);
        if price_fen < low || price_fen > high {
            return Err(Reject::PriceOutsideBand);
        }
        Ok(())
    }

    /// The pending block `block` addressed to (or, for cancel, proposed by) `account`.
    fn pending_block(
        &self,
        account: AccountId,
        block: OrderId,
        proposer: bool,
    ) -> Result<(usize, u32), Reject> {
        let slot = self.account(account)?;
        let at = self
            .state
            .blocks
            .iter()
            .position(|b| b.id == block.0)
            .ok_or(Reject::UnknownBlock)?;
        let b = &self.state.blocks[at];
        let party = if proposer { b.proposer } else { b.counterparty };
        if party != slot {
            return Err(Reject::NotCounterparty);
        }
        Ok((at, slot))
    }

    pub(crate) fn accept_block(
        &mut self,
        account: AccountId,
        block: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (at, slot) = self.pending_block(account, block, false)?;
        if !self.state.block_window {
            return Err(Reject::BlockWindowClosed);
        }
        let b = self.state.blocks[at];
        self.check_block_terms(slot, b.instrument, b.price_fen, b.quantity_t)?;
        let side = b.side.opposite();
        let required = self.check_side(slot, b.instrument, side, b.price_fen, b.quantity_t)?;
        self.state.blocks.remove(at);
        let proposer_required = buy_required_fen(
            b.quantity_t,
            b.price_fen,
            lock_bp(&self.state.instruments[b.instrument]),
        );
        let accept_id = self.state.next_order_id;
        self.state.next_order_id += 1;
        let proposer = Party {
            account: b.proposer,
            order: b.id,
            locked_fen: proposer_required,
        };
        let acceptor = Party {
            account: slot,
            order: accept_id,
            locked_fen: required,
        };
        let (buyer, seller) = match b.side {
            Side::Buy => (proposer, acceptor),
            Side::Sell => {
                self.lock_funds(slot, required);
                (acceptor, proposer)
            }
        };
        if b.side == Side::Buy {
            self.lock_allowances(slot, b.instrument, b.quantity_t, true);
        }
        self.settle_negotiated(
            b.instrument,
            buyer,
            seller,
            (b.price_fen, b.quantity_t),
            TradeKind::Block,
            out,
        );
        Ok(())
    }

    pub(crate) fn reject_block(
        &mut self,
        account: AccountId,
        block: OrderId,
        by_proposer: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (at, _) = self.pending_block(account, block, by_proposer)?;
        let b = self.state.blocks.remove(at);
        self.release_block(&b);
        let kind = if by_proposer {
            EventKind::BlockCancelled { block }
        } else {
            EventKind::BlockRejected { block }
        };
        self.emit(out, kind);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn announce_bidding(
        &mut self,
        seller: AccountId,
        instrument: InstrumentId,
        quantity_t: Tonnes,
        reserve: ReserveRule,
        pricing: Pricing,
        bidder_max_bp: u32,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.account(seller)?;
        let index = self.instrument(instrument)?;
        let min_t = self.state.instruments[index].spec.bidding_min_t;
        self.check_bidding_terms(index, quantity_t, bidder_max_bp, min_t)?;
        let spec = self.state.instruments[index].spec;
        self.check_side(
            slot,
            index,
            Side::Sell,
            spec.reference_price_fen,
            quantity_t,
        )?;
        self.lock_allowances(slot, index, quantity_t, true);
        let offer = Offer {
            seller: slot,
            index,
            quantity_t,
            terms: (reserve, pricing, bidder_max_bp),
            disposal: None,
        };
        self.push_auction(offer, out);
        Ok(())
    }

    /// Records an announced auction of allowances already locked; its id.
    pub(crate) fn push_auction(&mut self, offer: Offer, out: &mut Vec<Event>) -> u64 {
        let (reserve, pricing, bidder_max_bp) = offer.terms;
        let spec = self.state.instruments[offer.index].spec;
        let reference = spec.reference_price_fen;
        let reserve_fen = match reserve {
            ReserveRule::PreviousClose => reference,
            ReserveRule::TenPercentBelow => {
                crate::state::band_of(reference, 1_000, spec.tick_fen).0
            }
        };
        let cap_fen = crate::state::band_of(reference, spec.bid_cap_bp, spec.tick_fen).1;
        let quantity_t = offer.quantity_t;
        let bidder_max_t =
            u64::try_from(u128::from(quantity_t) * u128::from(bidder_max_bp) / 10_000)
                .unwrap_or(quantity_t);
        let id = self.state.next_order_id;
        self.state.next_order_id += 1;
        let uniform = pricing == Pricing::Uniform;
        self.state.auctions.push(Bidding {
            id,
            seller: offer.seller,
            instrument: offer.index,
            quantity_t,
            reserve_fen,
            cap_fen,
            uniform,
            bidder_max_t,
            open: false,
            bids: Vec::new(),
            disposal: offer.disposal,
        });
        self.emit(
            out,
            EventKind::BiddingAnnounced {
                auction: OrderId(id),
                seller: self.state.accounts[offer.seller as usize].id,
                instrument: InstrumentId(offer.index as u32),
                quantity_t,
                reserve_fen,
                cap_fen,
                uniform,
            },
        );
        id
    }

    /// An announcement's terms: the day open, the instrument trading, the quantity at
    /// least the minimum and on the lot, the bidder share a fraction, room for one more.
    pub(crate) fn check_bidding_terms(
        &self,
        index: usize,
        quantity_t: Tonnes,
        bidder_max_bp: u32,
        min_t: Tonnes,
    ) -> Result<(), Reject> {
        if self.state.phase == Phase::Closed {
            return Err(Reject::DayNotOpen);
        }
        let spec = self.state.instruments[index].spec;
        if self.state.instruments[index].halted {
            return Err(Reject::InstrumentHalted);
        }
        if quantity_t < min_t || quantity_t == 0 {
            return Err(Reject::QuantityBelowMin);
        }
        if !quantity_t.is_multiple_of(spec.lot_t) {
            return Err(Reject::QuantityNotOnLot);
        }
        if bidder_max_bp == 0 || bidder_max_bp > 10_000 {
            return Err(Reject::InvalidParameter);
        }
        if self.state.auctions.len() >= self.state.config.limits.auctions_max as usize {
            return Err(Reject::AuctionsLimit);
        }
        Ok(())
    }

    fn auction_at(&self, auction: OrderId) -> Result<usize, Reject> {
        self.state
            .auctions
            .iter()
            .position(|a| a.id == auction.0)
            .ok_or(Reject::UnknownAuction)
    }

    pub(crate) fn open_bidding(
        &mut self,
        auction: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let at = self.auction_at(auction)?;
        if self.state.auctions[at].open {
            return Err(Reject::AuctionNotOpen);
        }
        self.state.auctions[at].open = true;
        self.emit(out, EventKind::BiddingOpened { auction });
        Ok(())
    }

    pub(crate) fn place_bid(
        &mut self,
        auction: OrderId,
        bidder: AccountId,
        client_order_id: ClientOrderId,
        price_fen: Fen,
        quantity_t: Tonnes,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let at = self.auction_at(auction)?;
        let slot = self.account(bidder)?;
        self.check_bid(at, slot, price_fen, quantity_t)?;
        let instrument = self.state.auctions[at].instrument;
        let required = self.check_side(slot, instrument, Side::Buy, price_fen, quantity_t)?;
        let id = self.state.next_order_id;
        self.state.next_order_id += 1;
        self.lock_funds(slot, required);
        self.state.auctions[at].bids.push(Bid {
            id,
            client_order_id: client_order_id.0,
            bidder: slot,
            price_fen,
            quantity_t,
        });
        self.emit(
            out,
            EventKind::BidAccepted {
                auction,
                bid: OrderId(id),
                bidder,
                price_fen,
                quantity_t,
            },
        );
        Ok(())
    }

    /// A bid's terms: the auction open, the bidder not the seller and not restricted, the
    /// price on the tick between reserve and cap, the quantity on the lot within the
    /// bidder's share, room for one more bid.
    fn check_bid(
        &self,
        at: usize,
        slot: u32,
        price_fen: Fen,
        quantity_t: Tonnes,
    ) -> Result<(), Reject> {
        let a = &self.state.auctions[at];
        let spec = self.state.instruments[a.instrument].spec;
        if !a.open {
            return Err(Reject::AuctionNotOpen);
        }
        if slot == a.seller {
            return Err(Reject::NotCounterparty);
        }
        if self.state.accounts[slot as usize].restricted {
            return Err(Reject::AccountRestricted);
        }
        if price_fen <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if price_fen % spec.tick_fen != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        if price_fen < a.reserve_fen {
            return Err(Reject::BidBelowReserve);
        }
        if price_fen > a.cap_fen {
            return Err(Reject::BidAboveCap);
        }
        if quantity_t == 0 {
            return Err(Reject::InvalidQuantity);
        }
        if !quantity_t.is_multiple_of(spec.lot_t) {
            return Err(Reject::QuantityNotOnLot);
        }
        let already: Tonnes = a
            .bids
            .iter()
            .filter(|b| b.bidder == slot)
            .map(|b| b.quantity_t)
            .sum();
        if already + quantity_t > a.bidder_max_t {
            return Err(Reject::BidderLimitExceeded);
        }
        if a.bids.len() >= self.state.config.limits.bids_per_auction_max as usize {
            return Err(Reject::BidsLimit);
        }
        Ok(())
    }

    pub(crate) fn close_bidding(
        &mut self,
        auction: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let at = self.auction_at(auction)?;
        let a = self.state.auctions.remove(at);
        let mut ranked: Vec<Bid> = a.bids.clone();
        // Price, then time (bid ids rise with arrival).
        ranked.sort_by_key(|b| (core::cmp::Reverse(b.price_fen), b.id));
        let mut left = a.quantity_t;
        let fills: Vec<(Bid, Tonnes)> = ranked
            .iter()
            .map(|b| {
                let fill = b.quantity_t.min(left);
                left -= fill;
                (*b, fill)
            })
            .collect();
        let clearing_fen = fills
            .iter()
            .filter(|(_, f)| *f > 0)
            .map(|(b, _)| b.price_fen)
            .min()
            .unwrap_or(0);
        let bp = lock_bp(&self.state.instruments[a.instrument]);
        let mut proceeds_fen = 0;
        for (bid, fill) in fills {
            let locked = buy_required_fen(bid.quantity_t, bid.price_fen, bp);
            if fill == 0 {
                self.unlock_funds(bid.bidder, locked);
                continue;
            }
            let price = if a.uniform {
                clearing_fen
            } else {
                bid.price_fen
            };
            let buyer = Party {
                account: bid.bidder,
                order: bid.id,
                locked_fen: locked,
            };
            let seller = Party {
                account: a.seller,
                order: a.id,
                locked_fen: 0,
            };
            proceeds_fen += self.settle_negotiated(
                a.instrument,
                buyer,
                seller,
                (price, fill),
                TradeKind::Bidding,
                out,
            );
        }
        if left > 0 && a.disposal.is_none() {
            self.lock_allowances(a.seller, a.instrument, left, false);
        }
        self.emit(
            out,
            EventKind::BiddingClosed {
                auction,
                clearing_fen,
                sold_t: a.quantity_t - left,
                unsold_t: left,
            },
        );
        if let Some(disposal) = a.disposal {
            self.settle_disposal(disposal, auction, proceeds_fen, left, out);
        }
        Ok(())
    }
}
