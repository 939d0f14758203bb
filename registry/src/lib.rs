//! # carbonx registry
//!
//! The book of record for every allowance, on RocksDB. This crate is the only one in the
//! workspace that touches RocksDB: everything else reaches storage through its API.
//!
//! - [`model`]: accounts, units, holdings (available / trading / frozen by reason), pledges,
//!   four-eyes proposals, and the declarative permission table.
//! - [`tx`]: transactions ([`tx::Tx`], [`tx::Op`]) and their canonical encoding.
//! - [`ledger`]: pure in-memory execution with check-before-mutate, and `check_invariants`.
//! - [`registry`]: [`Registry`], which commits each transaction (or group) in one synced
//!   RocksDB WriteBatch with its hash-chained journal entry and idempotency record.
//! - [`emissions`]: factors, monitoring plans, monthly deposits and annual reports (the
//!   formulas are the pure `mrv` crate's).
//! - [`store`]: the narrow RocksDB interface.

pub mod allocation;
pub mod codec;
pub mod compliance;
pub mod cycle;
pub mod describe;
pub mod emissions;
pub mod error;
pub mod industry;
pub mod ledger;
pub mod model;
pub mod plans;
pub mod registry;
pub mod store;
pub mod tx;
pub mod uscc;
pub mod verification;

pub use error::RegistryError;
pub use registry::{GROUP_TXS_MAX, JournalEntry, JournalReport, Registry, RegistryOptions};
