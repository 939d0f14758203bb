//! Snapshot and restore: the whole engine state as bytes at a sequence number.
//!
//! Format (little endian): magic `CBXSNAP1`, then config, counters, instruments, accounts,
//! books (levels from the best, orders in FIFO order), transfer ids sorted, and a trailing
//! FNV-1a 64 checksum of everything before it. The encoding is canonical: equal states give
//! equal bytes, so [`Engine::state_hash`] is a hash of the snapshot.
//! Restoring validates every reference and then runs `check_invariants()`: a corrupt or
//! crafted snapshot is an error, never a panic.

use crate::command::InstrumentSpec;
use crate::engine::Engine;
use crate::levels::SideLevels;
use crate::state::{
    Account, Bid, Bidding, BlockProposal, DayStats, EngineConfig, Instrument, Limits, Order,
    Position, State, TransferRecord,
};
use crate::types::{
    AccountId, ClosingPriceMethod, Phase, Side, StpMode, Symbol, TimeInForce, TransferId,
};

/// Version 4: the closed orders kept for queries.
const MAGIC: &[u8; 8] = b"CBXSNAP4";
/// Version 3: pledge disposals, and the disposal an auction sells.
const MAGIC_V3: &[u8; 8] = b"CBXSNAP3";
/// Version 2: each transfer record carries the command that applied it.
const MAGIC_V2: &[u8; 8] = b"CBXSNAP2";
/// Snapshots written before transfer records had their sequence (read as 0).
const MAGIC_V1: &[u8; 8] = b"CBXSNAP1";

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    BadMagic,
    Truncated,
    Checksum,
    Invalid(&'static str),
    Invariant(String),
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SnapshotError::BadMagic => f.write_str("not a carbonx engine snapshot"),
            SnapshotError::Truncated => f.write_str("snapshot truncated"),
            SnapshotError::Checksum => f.write_str("snapshot checksum mismatch"),
            SnapshotError::Invalid(what) => write!(f, "invalid snapshot: {what}"),
            SnapshotError::Invariant(what) => write!(f, "snapshot breaks an invariant: {what}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Appends the checksum to [`Engine::snapshot_unsealed`]'s bytes, giving exactly what
/// [`Engine::snapshot`] returns.
pub fn seal_snapshot(bytes: &mut Vec<u8>) {
    let checksum = fnv1a64(bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
}

/// FNV-1a 64: small, dependency-free, deterministic.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

/// Bytes of one resting order in a snapshot...
const ORDER_BYTES: usize = 8 + 8 + 4 + 8 + 8 + 1 + 1;
/// ...and of the price and order count before a level's orders.
const LEVEL_HEADER_BYTES: usize = 8 + 4;
/// Levels whose order lists a snapshot walks at once (see `write_side`).
const SNAPSHOT_LANES: usize = 16;

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl Reader<'_> {
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let end = self.at.checked_add(N).ok_or(SnapshotError::Truncated)?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(SnapshotError::Truncated)?;
        self.at = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Invalid("bool")),
        }
    }
    pub(crate) fn opt_u64(&mut self) -> Result<Option<u64>, SnapshotError> {
        let some = self.bool()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    /// A count, bounded by what the remaining bytes could hold.
    pub(crate) fn len(&mut self, min_item_bytes: usize) -> Result<usize, SnapshotError> {
        let n = usize::try_from(self.u64()?).map_err(|_| SnapshotError::Invalid("count"))?;
        if n.saturating_mul(min_item_bytes.max(1)) > self.bytes.len() - self.at {
            return Err(SnapshotError::Truncated);
        }
        Ok(n)
    }
}

pub(crate) fn phase_code(phase: Phase) -> u8 {
    match phase {
        Phase::Closed => 0,
        Phase::PreOpen => 1,
        Phase::Continuous => 2,
        Phase::Break => 3,
        Phase::PostClose => 4,
        Phase::OpeningCall => 5,
    }
}

pub(crate) fn phase_of(code: u8) -> Result<Phase, SnapshotError> {
    Ok(match code {
        0 => Phase::Closed,
        1 => Phase::PreOpen,
        2 => Phase::Continuous,
        3 => Phase::Break,
        4 => Phase::PostClose,
        5 => Phase::OpeningCall,
        _ => return Err(SnapshotError::Invalid("phase")),
    })
}

pub(crate) fn stp_code(stp: StpMode) -> u8 {
    match stp {
        StpMode::CancelIncoming => 0,
        StpMode::CancelResting => 1,
        StpMode::CancelBoth => 2,
    }
}

pub(crate) fn stp_of(code: u8) -> Result<StpMode, SnapshotError> {
    Ok(match code {
        0 => StpMode::CancelIncoming,
        1 => StpMode::CancelResting,
        2 => StpMode::CancelBoth,
        _ => return Err(SnapshotError::Invalid("stp mode")),
    })
}

pub(crate) fn tif_code(tif: TimeInForce) -> u8 {
    match tif {
        TimeInForce::Day => 0,
        TimeInForce::Gtc => 1,
        TimeInForce::Ioc => 2,
        TimeInForce::Fok => 3,
    }
}

fn tif_of(code: u8) -> Result<TimeInForce, SnapshotError> {
    Ok(match code {
        0 => TimeInForce::Day,
        1 => TimeInForce::Gtc,
        _ => return Err(SnapshotError::Invalid("resting time in force")),
    })
}

impl Engine {
    /// The whole state as bytes (see the module docs for the format).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut bytes = self.snapshot_unsealed();
        seal_snapshot(&mut bytes);
        bytes
    }

    /// [`Engine::snapshot`] without its trailing checksum: the part that needs the engine.
    /// [`seal_snapshot`] completes it on any thread, so that the engine's owner is held up
    /// only for the copy.
    pub fn snapshot_unsealed(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.snapshot_unsealed_into(&mut bytes);
        bytes
    }

    /// [`Engine::snapshot_unsealed`] into `bytes` (cleared first): a buffer kept from an
    /// earlier snapshot is already mapped, so the copy does not page-fault its way through
    /// megabytes of fresh memory.
    pub fn snapshot_unsealed_into(&self, bytes: &mut Vec<u8>) {
        bytes.clear();
        bytes.reserve(4096 + self.state.live_orders() * 48);
        let mut w = Writer(std::mem::take(bytes));
        w.0.extend_from_slice(MAGIC);
        self.write_body(&mut w);
        *bytes = w.0;
    }

    /// A hash of the whole state: equal for equal states.
    pub fn state_hash(&self) -> u64 {
        let snapshot = self.snapshot();
        fnv1a64(&snapshot[..snapshot.len() - 8])
    }

    /// A hash of the whole state except the last sequence number: a rejected command (which
    /// consumes a sequence number and nothing else) leaves it unchanged.
    pub fn state_hash_without_seq(&self) -> u64 {
        let mut w = Writer(Vec::new());
        self.write_body_with_seq(&mut w, 0);
        fnv1a64(&w.0)
    }

    fn write_body(&self, w: &mut Writer) {
        self.write_body_with_seq(w, self.state.last_seq);
    }

    fn write_body_with_seq(&self, w: &mut Writer, last_seq: u64) {
        let s = &self.state;
        let c = &s.config;
        w.u64(c.fee_account.0);
        w.bool(c.risk_checks);
        w.bool(c.proceeds_same_day);
        for limit in [
            c.limits.accounts_max,
            c.limits.instruments_max,
            c.limits.orders_max,
            c.limits.orders_per_account_max,
            c.limits.blocks_max,
            c.limits.auctions_max,
            c.limits.bids_per_auction_max,
        ] {
            w.u32(limit);
        }
        w.u64(last_seq);
        w.u8(phase_code(s.phase));
        w.u32(s.date);
        w.u64(s.next_order_id);
        w.u64(s.next_trade_id);
        w.i64(s.net_funds_fen);
        w.len(s.instruments.len());
        for instrument in &s.instruments {
            write_instrument(w, instrument);
        }
        w.len(s.accounts.len());
        for account in &s.accounts {
            write_account(w, account);
        }
        for instrument in &s.instruments {
            for side in [Side::Buy, Side::Sell] {
                self.write_side(w, instrument.side(side));
            }
        }
        let mut transfers: Vec<_> = s.transfers.iter().collect();
        transfers.sort_unstable_by_key(|(id, _)| **id);
        w.len(transfers.len());
        for (id, record) in transfers {
            w.u64(id.0);
            w.u8(record.kind);
            w.u64(record.account.0);
            w.u32(record.instrument);
            w.u64(record.amount);
            w.u64(record.seq);
        }
        self.write_negotiated(w);
    }

    fn write_negotiated(&self, w: &mut Writer) {
        let s = &self.state;
        w.bool(s.block_window);
        w.len(s.blocks.len());
        for b in &s.blocks {
            w.u64(b.id);
            w.u64(b.client_order_id);
            w.u32(b.proposer);
            w.u32(b.counterparty);
            w.u32(b.instrument as u32);
            w.bool(b.side == Side::Sell);
            w.i64(b.price_fen);
            w.u64(b.quantity_t);
        }
        w.len(s.auctions.len());
        for a in &s.auctions {
            w.u64(a.id);
            w.u32(a.seller);
            w.u32(a.instrument as u32);
            w.u64(a.quantity_t);
            w.i64(a.reserve_fen);
            w.i64(a.cap_fen);
            w.bool(a.uniform);
            w.u64(a.bidder_max_t);
            w.bool(a.open);
            w.len(a.bids.len());
            for b in &a.bids {
                w.u64(b.id);
                w.u64(b.client_order_id);
                w.u32(b.bidder);
                w.i64(b.price_fen);
                w.u64(b.quantity_t);
            }
            w.bool(a.disposal.is_some());
            if let Some(id) = a.disposal {
                w.u64(id);
            }
        }
        w.len(s.disposals.len());
        for d in &s.disposals {
            w.u64(d.id);
            w.u32(d.pledgor);
            w.u32(d.pledgee);
            w.u32(d.instrument as u32);
            w.u64(d.quantity_t);
            w.i64(d.claim_fen);
            w.bool(d.auction.is_some());
            if let Some(a) = d.auction {
                w.u64(a);
            }
        }
        crate::closed::write(w, &s.closed);
    }

    fn write_side(&self, w: &mut Writer, levels: &SideLevels) {
        let range = levels.ladder_range();
        w.bool(range.is_some());
        let (low, high) = range.unwrap_or((0, 0));
        w.i64(low);
        w.i64(high);
        let levels: Vec<(crate::types::Fen, &crate::levels::Level)> =
            levels.iter_from_best().collect();
        w.len(levels.len());
        // Each level's orders are a linked list through the order table, one cache miss
        // per order when walked alone (most of a snapshot's time with tens of thousands
        // resting). Up to `SNAPSHOT_LANES` levels are walked at once, a step of each in
        // turn, so that many misses are in flight together, each writing its orders
        // straight to their place (a level's count says how long its run is): the same
        // bytes as walking one level after another, which is what happens should a list's
        // length ever differ from its count.
        let start = w.0.len();
        let mut runs = level_runs(w, &levels);
        if !self.walk_levels_together(w, &levels, &mut runs) {
            w.0.truncate(start);
            self.write_levels_one_by_one(w, &levels);
        }
    }

    /// Writes the levels' orders into their runs, up to `SNAPSHOT_LANES` lists a step at
    /// a time; false when a list's length differs from its level's count.
    fn walk_levels_together(
        &self,
        w: &mut Writer,
        levels: &[(crate::types::Fen, &crate::levels::Level)],
        runs: &mut [(usize, usize)],
    ) -> bool {
        let mut lanes: Vec<(usize, u32)> = Vec::with_capacity(SNAPSHOT_LANES);
        let mut next_level = 0;
        loop {
            while lanes.len() < SNAPSHOT_LANES && next_level < levels.len() {
                lanes.push((next_level, levels[next_level].1.head));
                next_level += 1;
            }
            if lanes.is_empty() {
                return true;
            }
            let mut lane = 0;
            while lane < lanes.len() {
                let (level, slot) = lanes[lane];
                let Some(o) = (slot != crate::levels::NIL)
                    .then(|| self.state.orders.get(slot as usize))
                    .flatten()
                else {
                    let (next, end) = runs[level];
                    if next != end {
                        return false;
                    }
                    lanes.swap_remove(lane);
                    continue;
                };
                let (next, end) = &mut runs[level];
                let Some(place) =
                    w.0.get_mut(*next..*next + ORDER_BYTES)
                        .filter(|_| *next < *end)
                else {
                    return false;
                };
                place.copy_from_slice(&order_bytes(o));
                *next += ORDER_BYTES;
                lanes[lane].1 = o.next;
                lane += 1;
            }
        }
    }

    fn write_levels_one_by_one(
        &self,
        w: &mut Writer,
        levels: &[(crate::types::Fen, &crate::levels::Level)],
    ) {
        for (price, level) in levels {
            w.i64(*price);
            w.u32(level.orders);
            let mut slot = level.head;
            while let Some(o) = (slot != crate::levels::NIL)
                .then(|| self.state.orders.get(slot as usize))
                .flatten()
            {
                write_order(w, o);
                slot = o.next;
            }
        }
    }

    /// Rebuilds an engine from [`Engine::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        if bytes.len() < MAGIC.len() + 8 {
            return Err(SnapshotError::BadMagic);
        }
        let version = match &bytes[..MAGIC.len()] {
            m if m == MAGIC => 4,
            m if m == MAGIC_V3 => 3,
            m if m == MAGIC_V2 => 2,
            m if m == MAGIC_V1 => 1,
            _ => return Err(SnapshotError::BadMagic),
        };
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(tail);
        if fnv1a64(body) != u64::from_le_bytes(checksum) {
            return Err(SnapshotError::Checksum);
        }
        let mut r = Reader {
            bytes: body,
            at: MAGIC.len(),
        };
        let engine = read_body(&mut r, version)?;
        if r.at != body.len() {
            return Err(SnapshotError::Invalid("trailing bytes"));
        }
        engine
            .check_invariants()
            .map_err(|v| SnapshotError::Invariant(v.0))?;
        Ok(engine)
    }
}

fn write_instrument(w: &mut Writer, i: &Instrument) {
    write_spec(w, &i.spec);
    write_instrument_state(w, i);
}

pub(crate) fn write_spec(w: &mut Writer, s: &InstrumentSpec) {
    w.0.extend_from_slice(s.symbol.as_str().as_bytes());
    w.0.extend(core::iter::repeat_n(
        0u8,
        Symbol::LEN_MAX - s.symbol.as_str().len(),
    ));
    w.i64(s.tick_fen);
    w.u64(s.lot_t);
    w.i64(s.reference_price_fen);
    w.opt_u64(s.band_bp.map(u64::from));
    w.u64(s.max_order_t);
    w.u32(s.maker_fee_bp);
    w.u32(s.taker_fee_bp);
    w.bool(s.t_plus_one);
    w.u8(match s.closing_method {
        ClosingPriceMethod::Vwap => 0,
        ClosingPriceMethod::LastTrade => 1,
    });
    w.u64(s.position_limit_t);
    w.u64(s.large_holder_t);
    w.bool(s.opening_call);
    w.u64(s.block_min_t);
    w.u32(s.block_band_bp);
    w.u64(s.bidding_min_t);
    w.u32(s.bid_cap_bp);
}

fn write_instrument_state(w: &mut Writer, i: &Instrument) {
    w.bool(i.halted);
    w.bool(i.band.is_some());
    let (low, high) = i.band.unwrap_or((0, 0));
    w.i64(low);
    w.i64(high);
    let d = &i.day;
    for v in [d.open_fen, d.high_fen, d.low_fen, d.last_fen] {
        w.i64(v);
    }
    w.u64(d.volume_t);
    w.i64(d.turnover_fen);
    w.u64(d.trades);
    w.u64(i.net_deposited_t);
    w.i64(i.indicative.0);
    w.u64(i.indicative.1);
    w.i64(i.indicative.2);
}

/// One resting order.
fn write_order(w: &mut Writer, o: &Order) {
    w.0.extend_from_slice(&order_bytes(o));
}

/// Room for every level's header and orders, the headers written: each level's run of
/// order bytes as (next write, end) positions.
fn level_runs(
    w: &mut Writer,
    levels: &[(crate::types::Fen, &crate::levels::Level)],
) -> Vec<(usize, usize)> {
    let mut runs = Vec::with_capacity(levels.len());
    let mut at = w.0.len();
    for (_, level) in levels {
        at += LEVEL_HEADER_BYTES;
        let end = at + level.orders as usize * ORDER_BYTES;
        runs.push((at, end));
        at = end;
    }
    w.0.resize(at, 0);
    for ((price, level), (first, _)) in levels.iter().zip(&runs) {
        let header = first - LEVEL_HEADER_BYTES;
        w.0[header..header + 8].copy_from_slice(&price.to_le_bytes());
        w.0[header + 8..*first].copy_from_slice(&level.orders.to_le_bytes());
    }
    runs
}

/// One resting order as a snapshot holds it.
fn order_bytes(o: &Order) -> [u8; ORDER_BYTES] {
    let mut b = [0u8; ORDER_BYTES];
    b[0..8].copy_from_slice(&o.id.to_le_bytes());
    b[8..16].copy_from_slice(&o.client_order_id.to_le_bytes());
    b[16..20].copy_from_slice(&o.account.to_le_bytes());
    b[20..28].copy_from_slice(&o.quantity_t.to_le_bytes());
    b[28..36].copy_from_slice(&o.filled_t.to_le_bytes());
    b[36] = tif_code(o.time_in_force());
    b[37] = u8::from(o.post_only());
    b
}

fn write_account(w: &mut Writer, a: &Account) {
    w.u64(a.id.0);
    w.u8(stp_code(a.stp));
    w.bool(a.restricted);
    w.i64(a.free_fen);
    w.i64(a.locked_fen);
    w.i64(a.pending_fen);
    for p in &a.positions {
        w.u64(p.free_t);
        w.u64(p.locked_t);
        w.u64(p.pending_t);
        w.u64(p.open_buy_t);
        w.opt_u64(p.limit_t);
    }
}

fn read_config(r: &mut Reader<'_>) -> Result<EngineConfig, SnapshotError> {
    let fee_account = AccountId(r.u64()?);
    let risk_checks = r.bool()?;
    let proceeds_same_day = r.bool()?;
    let limits = Limits {
        accounts_max: r.u32()?,
        instruments_max: r.u32()?,
        orders_max: r.u32()?,
        orders_per_account_max: r.u32()?,
        blocks_max: r.u32()?,
        auctions_max: r.u32()?,
        bids_per_auction_max: r.u32()?,
    };
    Ok(EngineConfig {
        fee_account,
        risk_checks,
        proceeds_same_day,
        limits,
    })
}

fn read_body(r: &mut Reader<'_>, version: u8) -> Result<Engine, SnapshotError> {
    let config = read_config(r)?;
    let (fee_account, limits) = (config.fee_account, config.limits);
    let mut state = State::new(config);
    state.accounts.clear();
    state.account_index.clear();
    state.last_seq = r.u64()?;
    state.phase = phase_of(r.u8()?)?;
    state.date = r.u32()?;
    state.next_order_id = r.u64()?;
    state.next_trade_id = r.u64()?;
    state.net_funds_fen = r.i64()?;
    let instruments = r.len(100)?;
    if instruments > limits.instruments_max as usize || instruments > usize::from(u16::MAX) {
        return Err(SnapshotError::Invalid("instrument count"));
    }
    for _ in 0..instruments {
        state.instruments.push(read_instrument(r)?);
    }
    // id, stp, restricted and three balances; positions add 41 bytes per instrument.
    let accounts = r.len(34 + 41 * instruments)?;
    if accounts == 0 || accounts > limits.accounts_max as usize {
        return Err(SnapshotError::Invalid("account count"));
    }
    for _ in 0..accounts {
        let account = read_account(r, instruments)?;
        if state.account_slot(account.id).is_some() {
            return Err(SnapshotError::Invalid("duplicate account"));
        }
        state.insert_account(account);
    }
    if state.accounts[0].id != fee_account {
        return Err(SnapshotError::Invalid("fee account not first"));
    }
    let mut engine = Engine::from_state(state);
    for index in 0..instruments {
        for side in [Side::Buy, Side::Sell] {
            read_side(r, &mut engine, index, side)?;
        }
    }
    read_transfers(r, &mut engine, version)?;
    read_negotiated(r, &mut engine, version)?;
    if version >= 3 {
        read_disposals(r, &mut engine)?;
    }
    if version >= 4 {
        crate::closed::read(r, &mut engine.state)?;
    }
    engine.seq = engine.state.last_seq;
    Ok(engine)
}

/// The applied transfers (version 2 records the sequence that applied each).
fn read_transfers(
    r: &mut Reader<'_>,
    engine: &mut Engine,
    version: u8,
) -> Result<(), SnapshotError> {
    let transfers = r.len(if version >= 2 { 37 } else { 29 })?;
    for _ in 0..transfers {
        let id = TransferId(r.u64()?);
        let record = TransferRecord {
            kind: r.u8()?,
            account: AccountId(r.u64()?),
            instrument: r.u32()?,
            amount: r.u64()?,
            seq: if version >= 2 { r.u64()? } else { 0 },
        };
        engine.state.transfers.insert(id, record);
    }
    Ok(())
}

fn read_negotiated(
    r: &mut Reader<'_>,
    engine: &mut Engine,
    version: u8,
) -> Result<(), SnapshotError> {
    let state = &mut engine.state;
    let (accounts, instruments) = (state.accounts.len(), state.instruments.len());
    let valid = |account: u32, instrument: u32| {
        (account as usize) < accounts && (instrument as usize) < instruments
    };
    state.block_window = r.bool()?;
    for _ in 0..r.len(45)? {
        let (id, client_order_id, proposer, counterparty, instrument) =
            (r.u64()?, r.u64()?, r.u32()?, r.u32()?, r.u32()?);
        let side = if r.bool()? { Side::Sell } else { Side::Buy };
        let (price_fen, quantity_t) = (r.i64()?, r.u64()?);
        if !valid(proposer, instrument)
            || counterparty as usize >= accounts
            || id >= state.next_order_id
        {
            return Err(SnapshotError::Invalid("block proposal"));
        }
        state.blocks.push(BlockProposal {
            id,
            client_order_id,
            proposer,
            counterparty,
            instrument: instrument as usize,
            side,
            price_fen,
            quantity_t,
        });
    }
    for _ in 0..r.len(50)? {
        let (id, seller, instrument, quantity_t) = (r.u64()?, r.u32()?, r.u32()?, r.u64()?);
        let (reserve_fen, cap_fen, uniform, bidder_max_t, open) =
            (r.i64()?, r.i64()?, r.bool()?, r.u64()?, r.bool()?);
        if !valid(seller, instrument) || id >= state.next_order_id {
            return Err(SnapshotError::Invalid("auction"));
        }
        let mut bids = Vec::new();
        for _ in 0..r.len(36)? {
            let bid = Bid {
                id: r.u64()?,
                client_order_id: r.u64()?,
                bidder: r.u32()?,
                price_fen: r.i64()?,
                quantity_t: r.u64()?,
            };
            if bid.bidder as usize >= accounts {
                return Err(SnapshotError::Invalid("bid"));
            }
            bids.push(bid);
        }
        let disposal = if version >= 3 && r.bool()? {
            Some(r.u64()?)
        } else {
            None
        };
        state.auctions.push(Bidding {
            id,
            seller,
            instrument: instrument as usize,
            quantity_t,
            reserve_fen,
            cap_fen,
            uniform,
            bidder_max_t,
            open,
            bids,
            disposal,
        });
    }
    Ok(())
}

/// The pledge disposals (version 3), each tied to a live auction or to none.
fn read_disposals(r: &mut Reader<'_>, engine: &mut Engine) -> Result<(), SnapshotError> {
    let state = &mut engine.state;
    let count = r.len(37)?;
    if count > crate::DISPOSALS_MAX {
        return Err(SnapshotError::Invalid("disposal count"));
    }
    for _ in 0..count {
        let (id, pledgor, pledgee, instrument) = (r.u64()?, r.u32()?, r.u32()?, r.u32()?);
        let (quantity_t, claim_fen) = (r.u64()?, r.i64()?);
        let auction = if r.bool()? { Some(r.u64()?) } else { None };
        let linked = auction.is_none_or(|a| {
            state
                .auctions
                .iter()
                .any(|b| b.id == a && b.disposal == Some(id))
        });
        if pledgor as usize >= state.accounts.len()
            || pledgee as usize >= state.accounts.len()
            || instrument as usize >= state.instruments.len()
            || claim_fen <= 0
            || !linked
            || state.disposals.iter().any(|d| d.id == id)
        {
            return Err(SnapshotError::Invalid("disposal"));
        }
        state.disposals.push(crate::state::Disposal {
            id,
            pledgor,
            pledgee,
            instrument: instrument as usize,
            quantity_t,
            claim_fen,
            auction,
        });
    }
    let orphan = state.auctions.iter().any(|a| {
        a.disposal.is_some_and(|id| {
            !state
                .disposals
                .iter()
                .any(|d| d.id == id && d.auction == Some(a.id))
        })
    });
    if orphan {
        return Err(SnapshotError::Invalid("auction of no disposal"));
    }
    Ok(())
}

fn read_instrument(r: &mut Reader<'_>) -> Result<Instrument, SnapshotError> {
    let spec = read_spec(r)?;
    read_instrument_state(r, spec)
}

pub(crate) fn read_spec(r: &mut Reader<'_>) -> Result<InstrumentSpec, SnapshotError> {
    let raw: [u8; Symbol::LEN_MAX] = r.take()?;
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let text = core::str::from_utf8(&raw[..len]).map_err(|_| SnapshotError::Invalid("symbol"))?;
    let symbol = Symbol::new(text).ok_or(SnapshotError::Invalid("symbol"))?;
    let tick_fen = r.i64()?;
    let lot_t = r.u64()?;
    let reference_price_fen = r.i64()?;
    let band_bp = r
        .opt_u64()?
        .map(|bp| u32::try_from(bp).map_err(|_| SnapshotError::Invalid("band")))
        .transpose()?;
    let spec = InstrumentSpec {
        symbol,
        tick_fen,
        lot_t,
        reference_price_fen,
        band_bp,
        max_order_t: r.u64()?,
        maker_fee_bp: r.u32()?,
        taker_fee_bp: r.u32()?,
        t_plus_one: r.bool()?,
        closing_method: match r.u8()? {
            0 => ClosingPriceMethod::Vwap,
            1 => ClosingPriceMethod::LastTrade,
            _ => return Err(SnapshotError::Invalid("closing method")),
        },
        position_limit_t: r.u64()?,
        large_holder_t: r.u64()?,
        opening_call: r.bool()?,
        block_min_t: r.u64()?,
        block_band_bp: r.u32()?,
        bidding_min_t: r.u64()?,
        bid_cap_bp: r.u32()?,
    };
    if tick_fen <= 0 || lot_t == 0 || reference_price_fen <= 0 {
        return Err(SnapshotError::Invalid("instrument spec"));
    }
    Ok(spec)
}

fn read_instrument_state(
    r: &mut Reader<'_>,
    spec: InstrumentSpec,
) -> Result<Instrument, SnapshotError> {
    let halted = r.bool()?;
    let has_band = r.bool()?;
    let (low, high) = (r.i64()?, r.i64()?);
    let day = DayStats {
        open_fen: r.i64()?,
        high_fen: r.i64()?,
        low_fen: r.i64()?,
        last_fen: r.i64()?,
        volume_t: r.u64()?,
        turnover_fen: r.i64()?,
        trades: r.u64()?,
    };
    Ok(Instrument {
        spec,
        halted,
        band: has_band.then_some((low, high)),
        bids: SideLevels::tree(Side::Buy),
        asks: SideLevels::tree(Side::Sell),
        day,
        net_deposited_t: r.u64()?,
        indicative: (r.i64()?, r.u64()?, r.i64()?),
    })
}

fn read_account(r: &mut Reader<'_>, instruments: usize) -> Result<Account, SnapshotError> {
    let id = AccountId(r.u64()?);
    let stp = stp_of(r.u8()?)?;
    let mut account = Account::new(id, stp, 0);
    account.restricted = r.bool()?;
    account.free_fen = r.i64()?;
    account.locked_fen = r.i64()?;
    account.pending_fen = r.i64()?;
    for _ in 0..instruments {
        account.positions.push(Position {
            free_t: r.u64()?,
            locked_t: r.u64()?,
            pending_t: r.u64()?,
            open_buy_t: r.u64()?,
            limit_t: r.opt_u64()?,
            ..Position::default()
        });
    }
    Ok(account)
}

fn read_side(
    r: &mut Reader<'_>,
    engine: &mut Engine,
    index: usize,
    side: Side,
) -> Result<(), SnapshotError> {
    let is_ladder = r.bool()?;
    let (low, high) = (r.i64()?, r.i64()?);
    let tick = engine.state.instruments[index].spec.tick_fen;
    if is_ladder {
        let span = high
            .checked_sub(low)
            .ok_or(SnapshotError::Invalid("ladder range"))?;
        if low <= 0 || span < 0 || span / tick > 1 << 24 || span % tick != 0 {
            return Err(SnapshotError::Invalid("ladder range"));
        }
        *engine.state.instruments[index].side_mut(side) = SideLevels::ladder(side, low, high, tick);
    }
    let levels = r.len(12)?;
    for _ in 0..levels {
        let price = r.i64()?;
        let orders = r.u32()?;
        if price <= 0 || !engine.state.instruments[index].side(side).can_hold(price) {
            return Err(SnapshotError::Invalid("level price"));
        }
        for _ in 0..orders {
            read_order(r, engine, index, side, price)?;
        }
    }
    Ok(())
}

fn read_order(
    r: &mut Reader<'_>,
    engine: &mut Engine,
    index: usize,
    side: Side,
    price: i64,
) -> Result<(), SnapshotError> {
    let (id, client_order_id, account) = (r.u64()?, r.u64()?, r.u32()?);
    let (quantity_t, filled_t) = (r.u64()?, r.u64()?);
    let tif = tif_of(r.u8()?)?;
    let post_only = r.bool()?;
    let state = &engine.state;
    if account as usize >= state.accounts.len() || filled_t >= quantity_t {
        return Err(SnapshotError::Invalid("order"));
    }
    if id == 0
        || id >= state.next_order_id
        || state.order_slot(id).is_some()
        || state.client_slot(account, client_order_id).is_some()
    {
        return Err(SnapshotError::Invalid("order id"));
    }
    let slot = state.free_order;
    if slot == crate::levels::NIL {
        return Err(SnapshotError::Invalid("more orders than the arena holds"));
    }
    let mut order = Order {
        id,
        client_order_id,
        price_fen: price,
        quantity_t,
        filled_t,
        account,
        instrument: u16::try_from(index).map_err(|_| SnapshotError::Invalid("instrument"))?,
        ..Order::FREE
    };
    order.set_flags(side, tif, post_only);
    engine.state.free_order = engine.state.orders[slot as usize].next;
    engine.link(slot, order);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, CommandKind, NewOrder};
    use crate::event::EventKind;
    use crate::types::{ClientOrderId, InstrumentId, OrderId, OrderKind};

    /// The plain walk `write_side` replaced: one level after another, each list in order.
    fn write_side_one_level_at_a_time(engine: &Engine, w: &mut Writer, levels: &SideLevels) {
        let range = levels.ladder_range();
        w.bool(range.is_some());
        let (low, high) = range.unwrap_or((0, 0));
        w.i64(low);
        w.i64(high);
        w.len(levels.count_levels());
        for (price, level) in levels.iter_from_best() {
            w.i64(price);
            w.u32(level.orders);
            let mut slot = level.head;
            while slot != crate::levels::NIL {
                let o = &engine.state.orders[slot as usize];
                w.u64(o.id);
                w.u64(o.client_order_id);
                w.u32(o.account);
                w.u64(o.quantity_t);
                w.u64(o.filled_t);
                w.u8(tif_code(o.time_in_force()));
                w.bool(o.post_only());
                slot = o.next;
            }
        }
    }

    fn apply(engine: &mut Engine, kind: CommandKind) -> Vec<EventKind> {
        let seq = engine.last_seq() + 1;
        let mut out = Vec::new();
        engine
            .apply(
                &Command {
                    seq,
                    timestamp_ns: seq,
                    kind,
                },
                &mut out,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        out.into_iter().map(|e| e.kind).collect()
    }

    /// An engine with one listed instrument, three funded accounts and the day open.
    fn market(accounts: &[AccountId]) -> Engine {
        let mut engine = Engine::new(EngineConfig {
            fee_account: AccountId(1),
            ..EngineConfig::default()
        });
        let spec = InstrumentSpec::listed(
            Symbol::new("CEA2025").unwrap_or_else(|| panic!("symbol")),
            8_000,
        );
        apply(&mut engine, CommandKind::CreateInstrument(spec));
        for (n, account) in accounts.iter().enumerate() {
            let (account, n) = (*account, n as u64);
            let stp = StpMode::CancelIncoming;
            apply(&mut engine, CommandKind::OpenAccount { account, stp });
            apply(
                &mut engine,
                CommandKind::CreditFunds {
                    transfer: TransferId(2 * n + 1),
                    account,
                    amount_fen: 10_000_000_000,
                },
            );
            apply(
                &mut engine,
                CommandKind::DepositAllowances {
                    transfer: TransferId(2 * n + 2),
                    account,
                    instrument: InstrumentId(0),
                    quantity_t: 1_000_000,
                },
            );
        }
        apply(&mut engine, CommandKind::OpenDay { date: 20250102 });
        let phase = Phase::Continuous;
        apply(&mut engine, CommandKind::SetPhase { phase });
        engine
    }

    /// Resting orders on 40 levels a side (more than the lanes), of uneven lengths, and
    /// cancels in between so that the order table's slots are reused out of order.
    fn deep_book(engine: &mut Engine, accounts: &[AccountId]) {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut live: Vec<(AccountId, OrderId)> = Vec::new();
        for n in 0..3_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng.is_multiple_of(4) && !live.is_empty() {
                let (account, order) = live.swap_remove((rng >> 8) as usize % live.len());
                apply(engine, CommandKind::CancelOrder { account, order });
                continue;
            }
            let side = if rng & 16 == 0 { Side::Buy } else { Side::Sell };
            let ticks = ((rng >> 20) % 40) as i64 * ((rng >> 30) % 3 + 1) as i64 % 40;
            let price_fen = match side {
                Side::Buy => 7_990 - ticks,
                Side::Sell => 8_010 + ticks,
            };
            let account = accounts[(rng >> 40) as usize % accounts.len()];
            let order = NewOrder {
                account,
                client_order_id: ClientOrderId(n + 1),
                instrument: InstrumentId(0),
                side,
                kind: OrderKind::Limit,
                time_in_force: TimeInForce::Day,
                price_fen,
                quantity_t: 1 + (rng >> 50) % 30,
                post_only: rng & 32 == 0,
            };
            for event in apply(engine, CommandKind::PlaceOrder(order)) {
                if let EventKind::Accepted(report) = event {
                    live.push((account, report.order));
                }
            }
        }
    }

    /// Both sides written level by level and all together give the same bytes.
    fn same_bytes(engine: &Engine, at_least: usize) {
        let instrument = &engine.state.instruments[0];
        for side in [Side::Buy, Side::Sell] {
            let levels = instrument.side(side);
            assert!(
                levels.count_levels() > SNAPSHOT_LANES,
                "{side:?}: too few levels"
            );
            let mut together = Writer(b"prefix".to_vec());
            engine.write_side(&mut together, levels);
            let mut one_by_one = Writer(b"prefix".to_vec());
            write_side_one_level_at_a_time(engine, &mut one_by_one, levels);
            assert!(
                one_by_one.0.len() > at_least,
                "{side:?}: {} bytes",
                one_by_one.0.len()
            );
            assert!(together.0 == one_by_one.0, "{side:?}: the bytes differ");
        }
    }

    #[test]
    fn walking_levels_together_writes_the_bytes_of_walking_them_one_by_one() {
        let accounts = [AccountId(101), AccountId(102), AccountId(103)];
        let mut engine = market(&accounts);
        deep_book(&mut engine, &accounts);
        same_bytes(&engine, 20_000);
        let restored = Engine::restore(&engine.snapshot()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored.state_hash(), engine.state_hash());
        // A buffer kept from an earlier snapshot gives the same bytes.
        let mut kept = b"an earlier snapshot".repeat(1000);
        engine.snapshot_unsealed_into(&mut kept);
        assert!(kept == engine.snapshot_unsealed());

        // Were a level's count ever wrong (an invariant the engine keeps), the walk would
        // still write what walking one level after another writes: too low, too high.
        let (best_bid, best_ask) = (
            engine.state.instruments[0].side(Side::Buy).best(),
            engine.state.instruments[0].side(Side::Sell).best(),
        );
        let (Some(bid), Some(ask)) = (best_bid, best_ask) else {
            panic!("an empty side")
        };
        for (side, price, delta) in [(Side::Buy, bid, -1i64), (Side::Sell, ask, 2)] {
            let level = engine.state.instruments[0]
                .side_mut(side)
                .get_mut(price)
                .unwrap_or_else(|| panic!("best level"));
            level.orders = (i64::from(level.orders) + delta) as u32;
        }
        same_bytes(&engine, 20_000);
    }
}
