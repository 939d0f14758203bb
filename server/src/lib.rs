//! # carbonx gateway
//!
//! The server library: tonic services in front of the single-threaded engine and the
//! registry, on the one journal. Wire types (`proto`) stop here: handlers convert them
//! into engine commands and registry transactions and back. The binary (`carbonx`) runs
//! [`server::serve`] and starts the dashboard (`dashboard`) beside it.
//!
//! - [`config`]: defaults < TOML < environment < flags; every limit named.
//! - [`auth`]: bearer tokens to principals; the one authorization table.
//! - [`error`]: every refusal as a gRPC status with a stable reason code ([`oversize`]:
//!   also tonic's own refusal of an over-size message).
//! - the journal is its own crate (`journal`): the one record of every state change.
//! - [`core`]: the core thread (journal + fsync, engine, dispatch) behind one bounded queue.
//! - [`regworker`]: the registry's single writer (journal order, settlement, checkpoints,
//!   reconcile).
//! - [`hub`]: stream history for resumable executions and market data.
//! - [`services`]: the tonic services.
//! - [`snapshot`]: snapshots (engine file + registry checkpoint; newest two kept).
//! - [`recovery`]: the state rebuilt from the journal at start-up, or refused.
//! - [`disk`]: free space watched; changes refused while the disk is full.
//! - [`server`]: start-up, serving, graceful shutdown.

pub mod auth;
pub mod calendar;
pub mod catalog;
pub mod catchup;
pub mod config;
pub mod core;
pub mod disk;
pub mod error;
pub mod http;
pub mod hub;
pub mod methods;
pub mod metrics;
pub mod oversize;
pub mod recovery;
pub mod regworker;
pub mod scheduler;
pub mod server;
pub mod services;
pub mod snapshot;
