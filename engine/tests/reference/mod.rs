//! A naive reference engine: the same rules as `engine`, written for obviousness instead of
//! speed. Books are `BTreeMap<price, VecDeque<order>>`; balance, position and level events are
//! computed by diffing the whole state before and after each command.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use engine::*;

#[derive(Clone, Copy, Debug)]
struct ROrder {
    id: u64,
    client: u64,
    account: AccountId,
    instrument: usize,
    side: Side,
    tif: TimeInForce,
    post_only: bool,
    kind: OrderKind,
    price: i64,
    quantity: u64,
    filled: u64,
}

impl ROrder {
    fn leaves(&self) -> u64 {
        self.quantity - self.filled
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct RPos {
    free: u64,
    locked: u64,
    pending: u64,
    open_buy: u64,
    limit: Option<u64>,
}

#[derive(Clone, Debug)]
struct RAccount {
    stp: StpMode,
    restricted: bool,
    free: i64,
    locked: i64,
    pending: i64,
    positions: Vec<RPos>,
}

#[derive(Clone, Debug, Default)]
struct RDay {
    open: i64,
    high: i64,
    low: i64,
    last: i64,
    volume: u64,
    turnover: i64,
    trades: u64,
}

#[derive(Clone, Debug)]
struct RInstrument {
    spec: InstrumentSpec,
    halted: bool,
    band: Option<(i64, i64)>,
    bids: BTreeMap<i64, VecDeque<ROrder>>,
    asks: BTreeMap<i64, VecDeque<ROrder>>,
    day: RDay,
}

impl RInstrument {
    fn book(&self, side: Side) -> &BTreeMap<i64, VecDeque<ROrder>> {
        if side == Side::Buy {
            &self.bids
        } else {
            &self.asks
        }
    }
    fn book_mut(&mut self, side: Side) -> &mut BTreeMap<i64, VecDeque<ROrder>> {
        if side == Side::Buy {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }
    fn best(&self, side: Side) -> Option<i64> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }
    fn levels(&self) -> BTreeMap<(bool, i64), (u64, u32)> {
        let mut out = BTreeMap::new();
        for (sell, book) in [(false, &self.bids), (true, &self.asks)] {
            for (price, queue) in book {
                out.insert(
                    (sell, *price),
                    (queue.iter().map(|o| o.leaves()).sum(), queue.len() as u32),
                );
            }
        }
        out
    }
}

/// Per (is-sell, price): (total quantity, order count).
type LevelTotals = BTreeMap<(bool, i64), (u64, u32)>;

pub struct Reference {
    config: EngineConfig,
    phase: Phase,
    date: u32,
    next_order: u64,
    next_trade: u64,
    accounts: BTreeMap<AccountId, RAccount>,
    instruments: Vec<RInstrument>,
    transfers: BTreeMap<u64, (u8, AccountId, u32, u64)>,
    events: Vec<EventKind>,
}

fn crosses(side: Side, limit: i64, best: i64) -> bool {
    if side == Side::Buy {
        best <= limit
    } else {
        best >= limit
    }
}

fn band(reference: i64, bp: u32, tick: i64) -> (i64, i64) {
    let low = (reference as i128 * (10_000 - bp.min(10_000) as i128) + 10_000 * tick as i128 - 1)
        / (10_000 * tick as i128)
        * tick as i128;
    let high = reference as i128 * (10_000 + bp as i128) / (10_000 * tick as i128) * tick as i128;
    ((low as i64).max(tick), high as i64)
}

impl Reference {
    pub fn new(config: EngineConfig) -> Reference {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            config.fee_account,
            RAccount {
                stp: StpMode::CancelIncoming,
                restricted: false,
                free: 0,
                locked: 0,
                pending: 0,
                positions: vec![],
            },
        );
        Reference {
            config,
            phase: Phase::Closed,
            date: 0,
            next_order: 1,
            next_trade: 1,
            accounts,
            instruments: vec![],
            transfers: BTreeMap::new(),
            events: vec![],
        }
    }

    fn lock_bp(&self, i: usize) -> u32 {
        self.instruments[i]
            .spec
            .maker_fee_bp
            .max(self.instruments[i].spec.taker_fee_bp)
    }

    fn required(&self, i: usize, leaves: u64, price: i64) -> i64 {
        let notional = leaves as i64 * price;
        notional + notional * self.lock_bp(i) as i64 / 10_000
    }

    fn live_orders(&self) -> impl Iterator<Item = &ROrder> {
        self.instruments
            .iter()
            .flat_map(|i| i.bids.values().chain(i.asks.values()).flatten())
    }

    fn find(&self, id: u64) -> Option<ROrder> {
        self.live_orders().find(|o| o.id == id).copied()
    }

    /// Applies a command and returns its events, like `Engine::apply`.
    pub fn apply(&mut self, kind: &CommandKind) -> Vec<EventKind> {
        let accounts_before = self.accounts.clone();
        let levels_before: Vec<_> = self.instruments.iter().map(|i| i.levels()).collect();
        self.events.clear();
        if let Err(reason) = self.dispatch(kind) {
            return vec![EventKind::Rejected { reason }];
        }
        let mut events = std::mem::take(&mut self.events);
        self.diff(&accounts_before, &levels_before, &mut events);
        events
    }

    fn diff(
        &self,
        before: &BTreeMap<AccountId, RAccount>,
        levels_before: &[LevelTotals],
        events: &mut Vec<EventKind>,
    ) {
        let empty = RAccount {
            stp: StpMode::CancelIncoming,
            restricted: false,
            free: 0,
            locked: 0,
            pending: 0,
            positions: vec![],
        };
        for (id, a) in &self.accounts {
            let b = before.get(id).unwrap_or(&empty);
            if (a.free, a.locked, a.pending) != (b.free, b.locked, b.pending) {
                events.push(EventKind::Balance {
                    account: *id,
                    free_fen: a.free,
                    locked_fen: a.locked,
                    pending_fen: a.pending,
                });
            }
        }
        let pos_before = |id: &AccountId, i: usize| {
            before
                .get(id)
                .and_then(|b| b.positions.get(i).copied())
                .unwrap_or_default()
        };
        for (id, a) in &self.accounts {
            for (i, p) in a.positions.iter().enumerate() {
                let q = pos_before(id, i);
                if (p.free, p.locked, p.pending) != (q.free, q.locked, q.pending) {
                    events.push(EventKind::Position {
                        account: *id,
                        instrument: InstrumentId(i as u32),
                        free_t: p.free,
                        locked_t: p.locked,
                        pending_t: p.pending,
                    });
                }
            }
        }
        for (id, a) in &self.accounts {
            for (i, p) in a.positions.iter().enumerate() {
                let q = pos_before(id, i);
                let threshold = self.instruments[i].spec.large_holder_t;
                let (h0, h1) = (q.free + q.locked + q.pending, p.free + p.locked + p.pending);
                if h0 < threshold && h1 >= threshold {
                    events.push(EventKind::LargeHolder {
                        account: *id,
                        instrument: InstrumentId(i as u32),
                        holding_t: h1,
                    });
                }
            }
        }
        for (i, instrument) in self.instruments.iter().enumerate() {
            let after = instrument.levels();
            let empty = BTreeMap::new();
            let before = levels_before.get(i).unwrap_or(&empty);
            let mut keys: Vec<_> = after.keys().chain(before.keys()).copied().collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (q1, n1) = after.get(&key).copied().unwrap_or((0, 0));
                if before.get(&key).copied().unwrap_or((0, 0)) != (q1, n1) {
                    let side = if key.0 { Side::Sell } else { Side::Buy };
                    events.push(EventKind::Level {
                        instrument: InstrumentId(i as u32),
                        side,
                        price_fen: key.1,
                        quantity_t: q1,
                        orders: n1,
                    });
                }
            }
        }
    }

    fn account(&self, id: AccountId) -> Result<AccountId, Reject> {
        if self.accounts.contains_key(&id) {
            Ok(id)
        } else {
            Err(Reject::UnknownAccount)
        }
    }

    fn instrument(&self, id: InstrumentId) -> Result<usize, Reject> {
        if (id.0 as usize) < self.instruments.len() {
            Ok(id.0 as usize)
        } else {
            Err(Reject::UnknownInstrument)
        }
    }

    fn dispatch(&mut self, kind: &CommandKind) -> Result<(), Reject> {
        match *kind {
            CommandKind::CreateInstrument(spec) => self.create_instrument(spec),
            CommandKind::OpenAccount { account, stp } => {
                if self.accounts.contains_key(&account) {
                    return Err(Reject::AccountExists);
                }
                if self.accounts.len() >= self.config.limits.accounts_max as usize {
                    return Err(Reject::AccountsLimit);
                }
                let positions = vec![RPos::default(); self.instruments.len()];
                self.accounts.insert(
                    account,
                    RAccount {
                        stp,
                        restricted: false,
                        free: 0,
                        locked: 0,
                        pending: 0,
                        positions,
                    },
                );
                self.events.push(EventKind::AccountOpened { account });
                Ok(())
            }
            CommandKind::SetStpMode { account, stp } => {
                self.account(account)?;
                self.accounts.get_mut(&account).unwrap().stp = stp;
                self.events.push(EventKind::StpModeSet { account });
                Ok(())
            }
            CommandKind::RestrictAccount {
                account,
                restricted,
                cancel_orders,
            } => {
                self.account(account)?;
                self.accounts.get_mut(&account).unwrap().restricted = restricted;
                self.events.push(EventKind::AccountRestricted {
                    account,
                    restricted,
                });
                if restricted && cancel_orders {
                    self.cancel_where(|o| o.account == account, CancelReason::Restricted);
                }
                Ok(())
            }
            CommandKind::SetInstrumentLimits {
                instrument,
                position_limit_t,
                large_holder_t,
            } => {
                let i = self.instrument(instrument)?;
                let spec = &mut self.instruments[i].spec;
                if let Some(limit_t) = position_limit_t {
                    spec.position_limit_t = limit_t;
                }
                if let Some(threshold_t) = large_holder_t {
                    spec.large_holder_t = threshold_t;
                }
                self.events.push(EventKind::InstrumentLimitsSet {
                    instrument,
                    position_limit_t: spec.position_limit_t,
                    large_holder_t: spec.large_holder_t,
                });
                Ok(())
            }
            CommandKind::SetPositionLimit {
                account,
                instrument,
                limit_t,
            } => {
                self.account(account)?;
                let i = self.instrument(instrument)?;
                self.accounts.get_mut(&account).unwrap().positions[i].limit = Some(limit_t);
                self.events.push(EventKind::PositionLimitSet {
                    account,
                    instrument,
                    limit_t,
                });
                Ok(())
            }
            CommandKind::CreditFunds {
                transfer,
                account,
                amount_fen,
            } => self.funds(transfer, account, amount_fen, true),
            CommandKind::DebitFunds {
                transfer,
                account,
                amount_fen,
            } => self.funds(transfer, account, amount_fen, false),
            CommandKind::DepositAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            } => self.allowances(transfer, account, instrument, quantity_t, true),
            CommandKind::WithdrawAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            } => self.allowances(transfer, account, instrument, quantity_t, false),
            CommandKind::OpenDay { date } => self.open_day(date),
            CommandKind::SetPhase { phase } => {
                if self.phase == Phase::Closed {
                    return Err(Reject::DayNotOpen);
                }
                if matches!(phase, Phase::Closed | Phase::PreOpen) || phase == self.phase {
                    return Err(Reject::InvalidPhaseChange);
                }
                self.phase = phase;
                self.events.push(EventKind::PhaseChanged { phase });
                Ok(())
            }
            CommandKind::CloseDay => self.close_day(),
            CommandKind::HaltInstrument {
                instrument,
                cancel_orders,
            } => {
                let i = self.instrument(instrument)?;
                self.instruments[i].halted = true;
                self.events.push(EventKind::InstrumentHalted { instrument });
                if cancel_orders {
                    self.cancel_where(|o| o.instrument == i, CancelReason::Halt);
                }
                Ok(())
            }
            CommandKind::ResumeInstrument { instrument } => {
                let i = self.instrument(instrument)?;
                self.instruments[i].halted = false;
                self.events
                    .push(EventKind::InstrumentResumed { instrument });
                Ok(())
            }
            CommandKind::SetReferencePrice {
                instrument,
                price_fen,
            } => {
                let i = self.instrument(instrument)?;
                if self.phase != Phase::Closed {
                    return Err(Reject::DayAlreadyOpen);
                }
                if price_fen <= 0 {
                    return Err(Reject::InvalidPrice);
                }
                if price_fen % self.instruments[i].spec.tick_fen != 0 {
                    return Err(Reject::PriceNotOnTick);
                }
                self.instruments[i].spec.reference_price_fen = price_fen;
                self.events.push(EventKind::ReferencePriceSet {
                    instrument,
                    price_fen,
                });
                Ok(())
            }
            CommandKind::PlaceOrder(order) => self.place(order),
            CommandKind::CancelOrder { account, order } => {
                let o = self.owned(account, order)?;
                self.cancel_order(o.id, CancelReason::User);
                Ok(())
            }
            CommandKind::CancelAll {
                account,
                instrument,
            } => {
                self.account(account)?;
                let i = instrument.map(|i| self.instrument(i)).transpose()?;
                self.cancel_where(
                    |o| o.account == account && i.is_none_or(|i| o.instrument == i),
                    CancelReason::CancelAll,
                );
                Ok(())
            }
            CommandKind::AmendOrder {
                account,
                order,
                price_fen,
                quantity_t,
            } => self.amend(account, order, price_fen, quantity_t),
            // Auctions and negotiated trades are checked by their own tests and simulation.
            _ => panic!("the reference book covers continuous trading only: {kind:?}"),
        }
    }

    fn create_instrument(&mut self, spec: InstrumentSpec) -> Result<(), Reject> {
        if self
            .instruments
            .iter()
            .any(|i| i.spec.symbol == spec.symbol)
        {
            return Err(Reject::InstrumentExists);
        }
        if self.instruments.len() >= self.config.limits.instruments_max as usize {
            return Err(Reject::InstrumentsLimit);
        }
        if spec.tick_fen <= 0
            || spec.lot_t == 0
            || spec.max_order_t < spec.lot_t
            || spec.maker_fee_bp > 1_000
            || spec.taker_fee_bp > 1_000
            || spec.band_bp.is_some_and(|b| b > 10_000)
        {
            return Err(Reject::InvalidParameter);
        }
        if spec.reference_price_fen <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if spec.reference_price_fen % spec.tick_fen != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        let b = spec
            .band_bp
            .map(|bp| band(spec.reference_price_fen, bp, spec.tick_fen));
        self.instruments.push(RInstrument {
            spec,
            halted: false,
            band: b,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            day: RDay::default(),
        });
        for a in self.accounts.values_mut() {
            a.positions.push(RPos::default());
        }
        self.events.push(EventKind::InstrumentCreated {
            instrument: InstrumentId(self.instruments.len() as u32 - 1),
            symbol: spec.symbol,
        });
        Ok(())
    }

    fn seen(
        &self,
        transfer: TransferId,
        record: (u8, AccountId, u32, u64),
    ) -> Result<bool, Reject> {
        match self.transfers.get(&transfer.0) {
            None => Ok(false),
            Some(r) if *r == record => Ok(true),
            Some(_) => Err(Reject::DuplicateTransferId),
        }
    }

    fn funds(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        amount: i64,
        credit: bool,
    ) -> Result<(), Reject> {
        self.account(account)?;
        if amount <= 0 || amount > FUNDS_FEN_MAX {
            return Err(Reject::InvalidParameter);
        }
        let record = (if credit { 1 } else { 2 }, account, u32::MAX, amount as u64);
        if self.seen(transfer, record)? {
            self.events
                .push(EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        let a = self.accounts.get_mut(&account).unwrap();
        if credit {
            if a.free.checked_add(amount).is_none_or(|t| t > FUNDS_FEN_MAX) {
                return Err(Reject::Overflow);
            }
            a.free += amount;
            self.events.push(EventKind::FundsCredited {
                transfer,
                account,
                amount_fen: amount,
            });
        } else {
            if a.free < amount {
                return Err(Reject::InsufficientFunds);
            }
            a.free -= amount;
            self.events.push(EventKind::FundsDebited {
                transfer,
                account,
                amount_fen: amount,
            });
        }
        self.transfers.insert(transfer.0, record);
        Ok(())
    }

    fn allowances(
        &mut self,
        transfer: TransferId,
        account: AccountId,
        instrument: InstrumentId,
        quantity: u64,
        deposit: bool,
    ) -> Result<(), Reject> {
        self.account(account)?;
        let i = self.instrument(instrument)?;
        if quantity == 0 || quantity > ALLOWANCES_T_MAX {
            return Err(Reject::InvalidQuantity);
        }
        let record = (if deposit { 3 } else { 4 }, account, instrument.0, quantity);
        if self.seen(transfer, record)? {
            self.events
                .push(EventKind::TransferAlreadyApplied { transfer });
            return Ok(());
        }
        let p = &mut self.accounts.get_mut(&account).unwrap().positions[i];
        if deposit {
            if p.free + p.locked + p.pending + p.open_buy + quantity > ALLOWANCES_T_MAX {
                return Err(Reject::Overflow);
            }
            p.free += quantity;
            self.events.push(EventKind::AllowancesDeposited {
                transfer,
                account,
                instrument,
                quantity_t: quantity,
            });
        } else {
            if p.free < quantity {
                return Err(Reject::InsufficientAllowances);
            }
            p.free -= quantity;
            self.events.push(EventKind::AllowancesWithdrawn {
                transfer,
                account,
                instrument,
                quantity_t: quantity,
            });
        }
        self.transfers.insert(transfer.0, record);
        Ok(())
    }

    fn open_day(&mut self, date: u32) -> Result<(), Reject> {
        if self.phase != Phase::Closed {
            return Err(Reject::DayAlreadyOpen);
        }
        let (y, m, d) = (date / 10_000, date / 100 % 100, date % 100);
        if !(1990..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || !(1..=31).contains(&d)
            || date <= self.date
        {
            return Err(Reject::InvalidDate);
        }
        self.date = date;
        self.phase = Phase::PreOpen;
        self.events.push(EventKind::DayOpened { date });
        for a in self.accounts.values_mut() {
            a.free += a.pending;
            a.pending = 0;
            for p in &mut a.positions {
                p.free += p.pending;
                p.pending = 0;
            }
        }
        for (i, instrument) in self.instruments.iter_mut().enumerate() {
            instrument.day = RDay::default();
            if let Some(bp) = instrument.spec.band_bp {
                let (low, high) = band(
                    instrument.spec.reference_price_fen,
                    bp,
                    instrument.spec.tick_fen,
                );
                instrument.band = Some((low, high));
                self.events.push(EventKind::PriceBand {
                    instrument: InstrumentId(i as u32),
                    reference_fen: instrument.spec.reference_price_fen,
                    low_fen: low,
                    high_fen: high,
                });
            }
        }
        Ok(())
    }

    fn close_day(&mut self) -> Result<(), Reject> {
        if self.phase == Phase::Closed {
            return Err(Reject::DayNotOpen);
        }
        self.cancel_where(|o| o.tif == TimeInForce::Day, CancelReason::Expiry);
        for (i, instrument) in self.instruments.iter_mut().enumerate() {
            let d = &instrument.day;
            let spec = instrument.spec;
            let close = if d.volume == 0 {
                spec.reference_price_fen
            } else {
                match spec.closing_method {
                    ClosingPriceMethod::LastTrade => d.last,
                    ClosingPriceMethod::Vwap => {
                        let v = d.volume as i128 * spec.tick_fen as i128;
                        ((2 * d.turnover as i128 + v) / (2 * v) * spec.tick_fen as i128) as i64
                    }
                }
            };
            instrument.spec.reference_price_fen = close;
            self.events.push(EventKind::ClosingPrice(DailyBar {
                instrument: InstrumentId(i as u32),
                date: self.date,
                open_fen: d.open,
                high_fen: d.high,
                low_fen: d.low,
                close_fen: close,
                volume_t: d.volume,
                turnover_fen: d.turnover,
                trades: d.trades,
            }));
        }
        self.phase = Phase::Closed;
        self.events.push(EventKind::DayClosed { date: self.date });
        Ok(())
    }

    fn cancel_where(&mut self, keep: impl Fn(&ROrder) -> bool, reason: CancelReason) {
        let mut ids: Vec<u64> = self
            .live_orders()
            .filter(|o| keep(o))
            .map(|o| o.id)
            .collect();
        ids.sort();
        for id in ids {
            self.cancel_order(id, reason);
        }
    }

    /// Removes a live order from its queue and returns it.
    fn take(&mut self, id: u64) -> ROrder {
        let o = self.find(id).unwrap();
        let book = self.instruments[o.instrument].book_mut(o.side);
        let queue = book.get_mut(&o.price).unwrap();
        let at = queue.iter().position(|x| x.id == id).unwrap();
        let o = queue.remove(at).unwrap();
        if queue.is_empty() {
            book.remove(&o.price);
        }
        o
    }

    fn unlock(&mut self, o: &ROrder, leaves: u64) {
        if !self.config.risk_checks || leaves == 0 {
            return;
        }
        let required = self.required(o.instrument, leaves, o.price);
        let a = self.accounts.get_mut(&o.account).unwrap();
        match o.side {
            Side::Buy => {
                a.free += required;
                a.locked -= required;
                a.positions[o.instrument].open_buy -= leaves;
            }
            Side::Sell => {
                a.positions[o.instrument].locked -= leaves;
                a.positions[o.instrument].free += leaves;
            }
        }
    }

    fn lock(&mut self, o: &ROrder) {
        if !self.config.risk_checks {
            return;
        }
        let required = self.required(o.instrument, o.leaves(), o.price);
        let a = self.accounts.get_mut(&o.account).unwrap();
        match o.side {
            Side::Buy => {
                a.free -= required;
                a.locked += required;
                a.positions[o.instrument].open_buy += o.leaves();
            }
            Side::Sell => {
                a.positions[o.instrument].free -= o.leaves();
                a.positions[o.instrument].locked += o.leaves();
            }
        }
    }

    fn cancel_order(&mut self, id: u64, reason: CancelReason) {
        let o = self.take(id);
        self.unlock(&o, o.leaves());
        self.events.push(cancelled(&o, reason));
    }

    fn owned(&self, account: AccountId, order: OrderId) -> Result<ROrder, Reject> {
        self.account(account)?;
        let Some(o) = self.find(order.0) else {
            return Err(if order.0 > 0 && order.0 < self.next_order {
                Reject::OrderClosed
            } else {
                Reject::UnknownOrder
            });
        };
        if o.account != account {
            return Err(Reject::NotOrderOwner);
        }
        Ok(o)
    }

    fn check_tradable(&self, account: AccountId, i: usize) -> Result<(), Reject> {
        if self.phase != Phase::Continuous {
            return Err(Reject::MarketClosed);
        }
        if self.instruments[i].halted {
            return Err(Reject::InstrumentHalted);
        }
        if self.accounts[&account].restricted {
            return Err(Reject::AccountRestricted);
        }
        Ok(())
    }

    fn check_quantity(&self, i: usize, q: u64) -> Result<(), Reject> {
        let s = &self.instruments[i].spec;
        if q == 0 {
            return Err(Reject::InvalidQuantity);
        }
        if !q.is_multiple_of(s.lot_t) {
            return Err(Reject::QuantityNotOnLot);
        }
        if q > s.max_order_t {
            return Err(Reject::QuantityAboveMax);
        }
        Ok(())
    }

    fn check_price(&self, i: usize, p: i64) -> Result<(), Reject> {
        let instrument = &self.instruments[i];
        if p <= 0 {
            return Err(Reject::InvalidPrice);
        }
        if p % instrument.spec.tick_fen != 0 {
            return Err(Reject::PriceNotOnTick);
        }
        if let Some((low, high)) = instrument.band
            && (p < low || p > high)
        {
            return Err(Reject::PriceOutsideBand);
        }
        Ok(())
    }

    fn check_risk(&self, o: &ROrder, old_required: i64, old_leaves: u64) -> Result<(), Reject> {
        if !self.config.risk_checks {
            return Ok(());
        }
        let a = &self.accounts[&o.account];
        let p = &a.positions[o.instrument];
        match o.side {
            Side::Buy => {
                if self.required(o.instrument, o.leaves(), o.price) - old_required > a.free {
                    return Err(Reject::InsufficientFunds);
                }
                let limit = p
                    .limit
                    .unwrap_or(self.instruments[o.instrument].spec.position_limit_t);
                if (p.free + p.locked + p.pending + p.open_buy - old_leaves)
                    .saturating_add(o.leaves())
                    > limit
                {
                    return Err(Reject::PositionLimitExceeded);
                }
            }
            Side::Sell => {
                if o.leaves() > old_leaves && o.leaves() - old_leaves > p.free {
                    return Err(Reject::InsufficientAllowances);
                }
            }
        }
        Ok(())
    }

    /// Orders the incoming order would meet, in priority order, within its limit.
    fn reachable(&self, o: &ROrder) -> Vec<ROrder> {
        let book = self.instruments[o.instrument].book(o.side.opposite());
        let levels: Vec<_> = match o.side {
            Side::Buy => book.iter().collect(),
            Side::Sell => book.iter().rev().collect(),
        };
        levels
            .into_iter()
            .take_while(|(p, _)| crosses(o.side, o.price, **p))
            .flat_map(|(_, q)| q.iter().copied())
            .collect()
    }

    fn fillable(&self, o: &ROrder) -> bool {
        let stp = self.accounts[&o.account].stp;
        let mut sum = 0;
        for r in self.reachable(o) {
            if r.account == o.account {
                if stp != StpMode::CancelResting {
                    return false;
                }
                continue;
            }
            sum += r.leaves();
            if sum >= o.leaves() {
                return true;
            }
        }
        false
    }

    fn place(&mut self, n: NewOrder) -> Result<(), Reject> {
        self.account(n.account)?;
        let i = self.instrument(n.instrument)?;
        self.check_tradable(n.account, i)?;
        self.check_quantity(i, n.quantity_t)?;
        let price = match n.kind {
            OrderKind::Limit => {
                self.check_price(i, n.price_fen)?;
                n.price_fen
            }
            OrderKind::Market => {
                if n.post_only || n.time_in_force == TimeInForce::Gtc {
                    return Err(Reject::InvalidParameter);
                }
                let (low, high) = self.instruments[i].band.ok_or(Reject::NoPriceProtection)?;
                if n.side == Side::Buy { high } else { low }
            }
        };
        if n.post_only && matches!(n.time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
            return Err(Reject::InvalidParameter);
        }
        if price as i128 * n.quantity_t as i128 > NOTIONAL_FEN_MAX {
            return Err(Reject::Overflow);
        }
        if self
            .live_orders()
            .any(|o| o.account == n.account && o.client == n.client_order_id.0)
        {
            return Err(Reject::DuplicateClientOrderId);
        }
        if n.kind == OrderKind::Limit
            && matches!(n.time_in_force, TimeInForce::Day | TimeInForce::Gtc)
        {
            if self
                .live_orders()
                .filter(|o| o.account == n.account)
                .count()
                >= self.config.limits.orders_per_account_max as usize
            {
                return Err(Reject::OrdersPerAccountLimit);
            }
            if self.live_orders().count() >= self.config.limits.orders_max as usize {
                return Err(Reject::OrdersLimit);
            }
        }
        let o = ROrder {
            id: self.next_order,
            client: n.client_order_id.0,
            account: n.account,
            instrument: i,
            side: n.side,
            tif: n.time_in_force,
            post_only: n.post_only,
            kind: n.kind,
            price,
            quantity: n.quantity_t,
            filled: 0,
        };
        self.check_risk(&o, 0, 0)?;
        if o.post_only
            && self.instruments[i]
                .best(o.side.opposite())
                .is_some_and(|b| crosses(o.side, o.price, b))
        {
            return Err(Reject::PostOnlyWouldTrade);
        }
        if o.tif == TimeInForce::Fok && !self.fillable(&o) {
            return Err(Reject::FokNotFillable);
        }
        self.next_order += 1;
        self.lock(&o);
        self.events.push(EventKind::Accepted(report(&o)));
        self.execute(o);
        Ok(())
    }

    fn execute(&mut self, mut o: ROrder) {
        let stp = self.accounts[&o.account].stp;
        let mut stopped = false;
        'outer: while o.leaves() > 0 {
            let Some(best) = self.instruments[o.instrument].best(o.side.opposite()) else {
                break;
            };
            if !crosses(o.side, o.price, best) {
                break;
            }
            let resting = *self.instruments[o.instrument].book(o.side.opposite())[&best]
                .front()
                .unwrap();
            if resting.account == o.account {
                match stp {
                    StpMode::CancelIncoming => {
                        stopped = true;
                        break 'outer;
                    }
                    StpMode::CancelResting => {
                        self.cancel_order(resting.id, CancelReason::SelfTrade)
                    }
                    StpMode::CancelBoth => {
                        self.cancel_order(resting.id, CancelReason::SelfTrade);
                        stopped = true;
                        break 'outer;
                    }
                }
                continue;
            }
            self.fill(&mut o, resting, best);
        }
        if o.leaves() == 0 {
            return;
        }
        let reason = if stopped {
            Some(CancelReason::SelfTrade)
        } else if o.kind == OrderKind::Market {
            Some(CancelReason::MarketResidual)
        } else if matches!(o.tif, TimeInForce::Ioc | TimeInForce::Fok) {
            Some(CancelReason::IocResidual)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.unlock(&o, o.leaves());
                self.events.push(cancelled(&o, reason));
            }
            None => {
                self.instruments[o.instrument]
                    .book_mut(o.side)
                    .entry(o.price)
                    .or_default()
                    .push_back(o);
            }
        }
    }

    fn fill(&mut self, o: &mut ROrder, resting: ROrder, price: i64) {
        let q = o.leaves().min(resting.leaves());
        let notional = q as i64 * price;
        let spec = self.instruments[o.instrument].spec;
        let taker = notional * spec.taker_fee_bp as i64 / 10_000;
        let maker = notional * spec.maker_fee_bp as i64 / 10_000;
        let (buy_fee, sell_fee) = if o.side == Side::Buy {
            (taker, maker)
        } else {
            (maker, taker)
        };
        let (buyer, seller) = if o.side == Side::Buy {
            (*o, resting)
        } else {
            (resting, *o)
        };
        if self.config.risk_checks {
            let released = self.required(o.instrument, buyer.leaves(), buyer.price)
                - self.required(o.instrument, buyer.leaves() - q, buyer.price);
            let same_day = self.config.proceeds_same_day;
            let b = self.accounts.get_mut(&buyer.account).unwrap();
            b.locked -= released;
            b.free += released - notional - buy_fee;
            b.positions[o.instrument].open_buy -= q;
            if spec.t_plus_one {
                b.positions[o.instrument].pending += q;
            } else {
                b.positions[o.instrument].free += q;
            }
            let s = self.accounts.get_mut(&seller.account).unwrap();
            s.positions[o.instrument].locked -= q;
            if same_day {
                s.free += notional - sell_fee;
            } else {
                s.pending += notional - sell_fee;
            }
            self.accounts
                .get_mut(&self.config.fee_account)
                .unwrap()
                .free += buy_fee + sell_fee;
        }
        o.filled += q;
        let side = resting.side;
        let queue = self.instruments[o.instrument]
            .book_mut(side)
            .get_mut(&price)
            .unwrap();
        queue.front_mut().unwrap().filled += q;
        let r = *queue.front().unwrap();
        if r.leaves() == 0 {
            queue.pop_front();
            if queue.is_empty() {
                self.instruments[o.instrument].book_mut(side).remove(&price);
            }
        }
        let d = &mut self.instruments[o.instrument].day;
        if d.trades == 0 {
            (d.open, d.high, d.low) = (price, price, price);
        }
        d.high = d.high.max(price);
        d.low = d.low.min(price);
        d.last = price;
        d.volume += q;
        d.turnover += notional;
        d.trades += 1;
        let side_of = |x: &ROrder, fee| FillSide {
            order: OrderId(x.id),
            account: x.account,
            fee_fen: fee,
            filled_t: x.filled,
            leaves_t: x.leaves(),
        };
        let (b, s) = if o.side == Side::Buy {
            (side_of(o, buy_fee), side_of(&r, sell_fee))
        } else {
            (side_of(&r, buy_fee), side_of(o, sell_fee))
        };
        self.events.push(EventKind::Trade(TradeReport {
            trade: TradeId(self.next_trade),
            instrument: InstrumentId(o.instrument as u32),
            price_fen: price,
            quantity_t: q,
            aggressor: Some(o.side),
            kind: TradeKind::Continuous,
            buy: b,
            sell: s,
        }));
        self.next_trade += 1;
    }

    fn amend(
        &mut self,
        account: AccountId,
        order: OrderId,
        price: Option<i64>,
        quantity: Option<u64>,
    ) -> Result<(), Reject> {
        let o = self.owned(account, order)?;
        self.check_tradable(account, o.instrument)?;
        if let Some(p) = price {
            self.check_price(o.instrument, p)?;
        }
        if let Some(q) = quantity {
            self.check_quantity(o.instrument, q)?;
        }
        let (np, nq) = (price.unwrap_or(o.price), quantity.unwrap_or(o.quantity));
        if np == o.price && nq == o.quantity {
            return Err(Reject::AmendNoChange);
        }
        if nq <= o.filled {
            return Err(Reject::AmendBelowFilled);
        }
        if np == o.price && nq < o.quantity {
            self.unlock(&o, o.leaves());
            let reduced = ROrder { quantity: nq, ..o };
            self.lock(&reduced);
            let queue = self.instruments[o.instrument]
                .book_mut(o.side)
                .get_mut(&o.price)
                .unwrap();
            queue.iter_mut().find(|x| x.id == o.id).unwrap().quantity = nq;
            self.events.push(EventKind::Amended {
                report: report(&reduced),
                priority_kept: true,
            });
            return Ok(());
        }
        let replacement = ROrder {
            price: np,
            quantity: nq,
            ..o
        };
        if np as i128 * nq as i128 > NOTIONAL_FEN_MAX {
            return Err(Reject::Overflow);
        }
        let old_required = if o.side == Side::Buy {
            self.required(o.instrument, o.leaves(), o.price)
        } else {
            0
        };
        self.check_risk(&replacement, old_required, o.leaves())?;
        if o.post_only
            && self.instruments[o.instrument]
                .best(o.side.opposite())
                .is_some_and(|b| crosses(o.side, np, b))
        {
            return Err(Reject::PostOnlyWouldTrade);
        }
        self.unlock(&o, o.leaves());
        self.take(o.id);
        self.lock(&replacement);
        self.events.push(EventKind::Amended {
            report: report(&replacement),
            priority_kept: false,
        });
        self.execute(replacement);
        Ok(())
    }
}

fn report(o: &ROrder) -> OrderReport {
    OrderReport {
        order: OrderId(o.id),
        client_order_id: ClientOrderId(o.client),
        account: o.account,
        instrument: InstrumentId(o.instrument as u32),
        side: o.side,
        kind: o.kind,
        time_in_force: o.tif,
        price_fen: o.price,
        quantity_t: o.quantity,
        filled_t: o.filled,
        leaves_t: o.leaves(),
    }
}

fn cancelled(o: &ROrder, reason: CancelReason) -> EventKind {
    EventKind::Cancelled {
        order: OrderId(o.id),
        account: o.account,
        instrument: InstrumentId(o.instrument as u32),
        side: o.side,
        quantity_t: o.quantity,
        filled_t: o.filled,
        cancelled_t: o.leaves(),
        reason,
    }
}
