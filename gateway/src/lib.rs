//! # carbonx gateway
//!
//! The `carbonx` server: tonic services in front of the single-threaded engine and the
//! registry. Wire types (`proto`) stop here: handlers convert them into engine commands and
//! registry transactions and back.
//!
//! - [`config`]: defaults < TOML < environment < flags; every limit named.
//! - [`auth`]: bearer tokens to principals; the one authorization table.
//! - [`error`]: every refusal as a gRPC status with a stable reason code.
//! - [`journal`]: the one journal of every state change: segmented, checksummed,
//!   group-committed, with its durable mark.
//! - [`core`]: the core thread (journal + fsync, engine, dispatch) behind one bounded queue.
//! - [`regworker`]: the registry's single writer (journal order, settlement, checkpoints,
//!   reconcile).
//! - [`hub`]: stream history for resumable executions and market data.
//! - [`services`]: the tonic services.
//! - [`snapshot`]: snapshots (engine file + registry checkpoint; newest two kept).
//! - [`recovery`]: the state rebuilt from the journal at start-up, or refused.
//! - [`disk`]: free space watched; changes refused while the disk is full.
//! - [`server`]: start-up, serving, graceful shutdown.
//! - [`cli`]: the operator commands (`carbonx ctl ...`) over gRPC.

pub mod auth;
pub mod calendar;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod core;
pub mod csvfile;
pub mod dashboard;
pub mod demo;
pub mod disk;
pub mod error;
pub mod http;
pub mod hub;
pub mod journal;
pub mod metrics;
pub mod recovery;
pub mod regworker;
pub mod scheduler;
pub mod server;
pub mod services;
pub mod snapshot;
