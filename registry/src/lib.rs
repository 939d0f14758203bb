//! # carbonx registry
//!
//! The book of record for every allowance, on RocksDB. This crate is the only one in the
//! workspace that touches RocksDB: everything else reaches storage through its API.
//!
//! So far it holds the storage layer ([`store::Store`]): open a database, commit a batch of
//! writes atomically with fsync, read back. The ledger (accounts, holdings, transfers,
//! pledges, the hash-chained journal) is built on it.

pub mod store;
