//! # carbonx
//!
//! The `carbonx` binary's commands, as a library so the end-to-end tests run them:
//! [`ctl`] (the operator and ministry commands over gRPC) and [`demo`] (a compliance year
//! of a synthetic market on an embedded server), [`apidoc`] (`docs/API.md`, generated). `main.rs` adds `serve` (the server from
//! `gateway` with the dashboard from `dashboard`) and `journal verify|dump`.

pub mod apidoc;
pub mod ctl;
pub mod demo;
