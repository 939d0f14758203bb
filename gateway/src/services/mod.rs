//! The tonic services. Each handler: authenticate, authorize (one table), validate and
//! convert the wire message, run it through the core or the registry writer, convert back.

pub mod admin;
pub mod compliance;
pub mod convert;
pub mod entry;
pub mod market;
pub mod registry;
pub mod stream;
pub mod trading;

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Status};

use crate::auth::{Principal, Rpc, Scope, Tokens, authorize};
use crate::config::Limits;
use crate::core::Core;
use crate::error::ApiError;
use crate::metrics::Histogram;

/// What every service shares.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub core: Core,
    pub tokens: Arc<Tokens>,
    pub limits: Limits,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The server runs TLS (the dashboard's cookie is then `Secure`).
    pub tls: bool,
}

/// A request in progress: who asked, and the latency timer.
#[derive(Debug)]
pub struct Call {
    pub principal: Arc<Principal>,
    pub scope: Scope,
    started: Instant,
    histogram: Arc<Histogram>,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.histogram
            .observe_us(self.started.elapsed().as_micros() as u64);
    }
}

impl Ctx {
    /// The principal behind the bearer token of `request`.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Arc<Principal>, ApiError> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                ApiError::new(
                    tonic::Code::Unauthenticated,
                    "MISSING_TOKEN",
                    "authorization",
                    "send `authorization: Bearer <token>` metadata",
                )
            })?
            .to_str()
            .map_err(|_| {
                ApiError::new(
                    tonic::Code::Unauthenticated,
                    "BAD_TOKEN",
                    "authorization",
                    "the authorization metadata is not text",
                )
            })?;
        // Exactly `Bearer <token>`: no bare token, no other scheme, no stray spaces.
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(
                tonic::Code::Unauthenticated,
                "BAD_TOKEN",
                "authorization",
                "the authorization metadata must be `Bearer <token>`",
            )
        })?;
        self.tokens.authenticate(token).ok_or_else(|| {
            ApiError::new(
                tonic::Code::Unauthenticated,
                "BAD_TOKEN",
                "authorization",
                "unknown token",
            )
        })
    }

    /// Authenticates and authorizes `rpc` for `accounts`; the returned call records the
    /// request's latency when dropped.
    pub fn begin<T>(
        &self,
        request: &Request<T>,
        method: &'static str,
        rpc: Rpc,
        accounts: &[u64],
    ) -> Result<Call, Status> {
        let histogram = self.core.metrics.request(method);
        let started = Instant::now();
        let principal = self
            .authenticate(request)
            .map_err(|e| self.refuse(method, e))?;
        let scope = authorize(&principal, rpc, accounts).map_err(|e| self.refuse(method, e))?;
        let span = tracing::Span::current();
        span.record("principal", principal.name.as_str());
        span.record("accounts", tracing::field::debug(accounts));
        tracing::debug!(method, "request");
        Ok(Call {
            principal,
            scope,
            started,
            histogram,
        })
    }

    /// Applies a registry transaction for `principal` (its id is the actor four-eyes checks;
    /// the core stamps the time): journaled, then applied in journal order. A retry (the
    /// principal's key again, for the same request) is answered with the original receipt
    /// and journals nothing; the key for another request is refused the same way.
    pub async fn registry_tx(
        &self,
        principal: &crate::auth::Principal,
        key: String,
        op: ::registry::tx::Op,
    ) -> Result<::registry::tx::Receipt, ApiError> {
        let tx = ::registry::tx::Tx {
            key,
            actor: principal.id,
            timestamp_ns: 0,
            op,
        };
        let probe = tx.clone();
        let retry = self
            .core
            .registry
            .read(move |r| r.retry_of(&probe))
            .await?
            .map_err(|e| ApiError::registry(&e))?;
        match retry {
            Some(receipt) => Ok(receipt),
            None => self.core.registry_tx(tx).await,
        }
    }

    /// Counts and converts a refusal.
    pub fn refuse(&self, method: &'static str, e: ApiError) -> Status {
        if !e.from_engine {
            self.core.metrics.reject(e.reason);
        }
        tracing::debug!(method, reason = e.reason, field = %e.field, "refused: {}", e.message);
        Status::from(e)
    }
}

/// Validates an idempotency key (1 to 128 bytes).
pub fn idempotency_key(key: &str, field: &str) -> Result<String, ApiError> {
    if key.is_empty() || key.len() > ::registry::tx::IDEMPOTENCY_KEY_BYTES_MAX {
        return Err(ApiError::field(field, "must be 1 to 128 bytes"));
    }
    Ok(key.to_string())
}

/// A required non-zero id.
pub fn id(value: u64, field: &str) -> Result<u64, ApiError> {
    if value == 0 {
        return Err(ApiError::field(field, "must be set (non-zero)"));
    }
    Ok(value)
}

/// A required positive quantity.
pub fn quantity(value: u64, field: &str) -> Result<u64, ApiError> {
    if value == 0 {
        return Err(ApiError::field(field, "must be at least 1 t"));
    }
    if value > engine::ALLOWANCES_T_MAX {
        return Err(ApiError::field(field, "too large"));
    }
    Ok(value)
}

/// A required positive price.
pub fn price(value: i64, field: &str) -> Result<i64, ApiError> {
    if value <= 0 {
        return Err(ApiError::field(field, "must be a positive number of fen"));
    }
    if value > engine::FUNDS_FEN_MAX / 1_000_000 {
        return Err(ApiError::field(field, "too large"));
    }
    Ok(value)
}
