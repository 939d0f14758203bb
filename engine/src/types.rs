//! Domain scalars: integer fen, integer tonnes, ids, and the small enums of an order.

use core::fmt;

/// RMB 0.01, the unit of every price and amount of money in the engine.
pub type Fen = i64;
/// Tonnes CO2e, the unit of every quantity of allowances.
pub type Tonnes = u64;
/// An engine sequence number: the position of a command in the journal.
pub type Seq = u64;
/// Nanoseconds since the Unix epoch, carried in by commands (the engine never reads a clock).
pub type TimestampNs = u64;

/// A trading account, chosen by whoever opens it (the gateway uses the registry account id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AccountId(pub u64);

/// An order id, assigned by the engine in increasing order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct OrderId(pub u64);

/// A client-chosen order id, unique per account among its live orders.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ClientOrderId(pub u64);

/// An instrument: the dense index it was given when created (0, 1, 2, ...).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct InstrumentId(pub u32);

/// A trade id, assigned by the engine in increasing order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TradeId(pub u64);

/// A caller-supplied id that makes a deposit, withdrawal or funds movement idempotent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TransferId(pub u64);

/// A trading date as `YYYYMMDD`.
pub type TradingDate = u32;

/// An instrument symbol such as `CEA2025`: up to 12 ASCII bytes, stored inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::LEN_MAX],
}

impl Symbol {
    /// Longest symbol accepted.
    pub const LEN_MAX: usize = 12;

    /// A symbol from ASCII letters and digits; `None` if empty, too long or not alphanumeric.
    pub fn new(text: &str) -> Option<Symbol> {
        let raw = text.as_bytes();
        if raw.is_empty() || raw.len() > Self::LEN_MAX {
            return None;
        }
        if !raw.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [0u8; Self::LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Symbol {
            len: u8::try_from(raw.len()).ok()?,
            bytes,
        })
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored, so this cannot fail.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum TimeInForce {
    /// Rests until filled, cancelled, or the end of the trading day.
    #[default]
    Day,
    /// Rests until filled or cancelled, across trading days.
    Gtc,
    /// Fills what it can at once; the residual is cancelled and never rests.
    Ioc,
    /// Fills completely at once or not at all.
    Fok,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OrderKind {
    /// Trades at its limit price or better.
    Limit,
    /// Trades at any price inside the band (the band edge is its protection price); the
    /// residual is cancelled. Rejected on an instrument without a band.
    Market,
}

/// What happens when an order would trade against a resting order of the same account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum StpMode {
    /// Cancel the incoming order's residual; the resting order stays.
    #[default]
    CancelIncoming,
    /// Cancel the resting order and keep matching.
    CancelResting,
    /// Cancel both.
    CancelBoth,
}

/// Trading phase of the market (one for the whole engine) within a trading day.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Phase {
    /// No trading day is open.
    Closed,
    /// The day is open, before the first session (orders rejected, cancels allowed).
    PreOpen,
    /// Opening call auction: instruments with `opening_call` collect limit orders without
    /// matching; leaving this phase uncrosses them at one price.
    OpeningCall,
    /// Continuous trading session (09:30-11:30, 13:00-15:00 by default).
    Continuous,
    /// Midday break: no new orders or amends.
    Break,
    /// After the last session, before the day is closed.
    PostClose,
}

/// How the closing price (the next day's reference) is determined.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ClosingPriceMethod {
    /// Volume-weighted average price of the day's trades, rounded half up to the tick;
    /// the previous close when nothing traded.
    #[default]
    Vwap,
    /// Price of the day's last trade; the previous close when nothing traded.
    LastTrade,
}

/// How a trade came about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TradeKind {
    /// Continuous trading: an incoming order met a resting one.
    Continuous,
    /// The opening call auction's uncross.
    OpeningAuction,
    /// A negotiated block agreement.
    Block,
    /// A one-way bidding auction (including paid allocation).
    Bidding,
}

/// Why an order left the book without being filled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CancelReason {
    User,
    CancelAll,
    IocResidual,
    MarketResidual,
    SelfTrade,
    Expiry,
    Halt,
    Restricted,
}

impl CancelReason {
    /// Stable code for reports and the wire.
    pub fn code(self) -> &'static str {
        match self {
            CancelReason::User => "USER",
            CancelReason::CancelAll => "CANCEL_ALL",
            CancelReason::IocResidual => "IOC_RESIDUAL",
            CancelReason::MarketResidual => "MARKET_RESIDUAL",
            CancelReason::SelfTrade => "STP",
            CancelReason::Expiry => "EXPIRY",
            CancelReason::Halt => "HALT",
            CancelReason::Restricted => "RESTRICTED",
        }
    }
}
