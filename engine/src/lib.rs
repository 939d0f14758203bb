//! # carbonx matching engine
//!
//! A pure, deterministic, single-threaded state machine that owns the order books of every
//! allowance vintage and the trading sub-ledger (funds and allowances of each trading
//! account). It does no IO, reads no clock and takes no lock: a [`Command`] carries its
//! sequence number and timestamp in, and [`Engine::apply`] appends the [`Event`]s it caused.
//! Applying the same commands to the same state always yields the same events, byte for byte.
//!
//! Integers throughout: prices and money in fen (RMB 0.01), quantities in tonnes.

mod call;
mod closed;
mod day;
mod disposal;
mod engine;
mod funds;
mod index;
mod invariants;
mod levels;
mod negotiated;
mod orders;
mod query;
mod snapshot;
mod touch;

pub mod codec;
pub mod command;
pub mod event;
pub mod reason;
mod state;
pub mod types;

pub use call::{Uncross, uncross_price};
pub use closed::CLOSED_ORDER_IDS_MAX;
pub use codec::{COMMAND_BYTES_MAX, CodecError, decode_command, encode_command};
pub use command::{Command, CommandKind, InstrumentSpec, NewOrder, Pricing, ReserveRule};
pub use disposal::DISPOSALS_MAX;
pub use engine::{BAND_BP_MAX, Engine, FEE_BP_MAX, SequenceError};
pub use event::{DailyBar, Event, EventKind, FillSide, OrderReport, TradeReport};
pub use funds::{ALLOWANCES_T_MAX, FUNDS_FEN_MAX, TransferSeen};
pub use invariants::InvariantViolation;
pub use orders::{NOTIONAL_FEN_MAX, buy_required_fen, fee_fen};
pub use query::{
    AccountView, BookLevel, BookView, ClosedView, HolderView, InstrumentView, LargeHoldersView,
    OrderView, PositionView,
};
pub use reason::Reject;
pub use snapshot::{SnapshotError, seal_snapshot};
pub use state::{EngineConfig, Limits};
pub use types::*;
