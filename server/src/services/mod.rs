//! The tonic services. Each handler: authenticate, authorize (one table), validate and
//! convert the wire message, run it through the core or the registry writer, convert back.

pub mod admin;
pub mod auction;
pub mod carry_over;
pub mod compliance;
pub mod convert;
pub mod emissions;
pub mod emissions_convert;
pub mod entry;
pub mod market;
pub mod registry;
pub mod risk;
pub mod stream;
pub mod trading;
pub mod verification;
pub mod verification_convert;

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Status};

use engine::CommandKind;

use crate::auth::{Principal, Rpc, Scope, Tokens, authorize, take_slot};
use crate::config::{Limits, MarketSection};
use crate::core::{Applied, Core};
use crate::error::ApiError;
use crate::metrics::Histogram;
use crate::scheduler::Clock;

/// Why a province or body principal may not read `accounts`' records of `year`.
fn scope_refusal(
    ledger: &::registry::ledger::Ledger,
    principal: &Principal,
    scope: Scope,
    year: u16,
    accounts: &[u64],
) -> Option<ApiError> {
    use ::registry::model::AccountId;
    accounts.iter().find_map(|&a| match scope {
        Scope::Jurisdiction => {
            let province = ledger
                .cycle
                .entities
                .get(&AccountId(a))
                .map(|e| &e.province);
            (province != principal.province.as_ref()).then(|| {
                ApiError::new(
                    tonic::Code::PermissionDenied,
                    "OUTSIDE_JURISDICTION",
                    "account_id",
                    format!(
                        "account {a} is not an entity of {}'s province",
                        principal.name
                    ),
                )
            })
        }
        Scope::Assigned => {
            let file = ledger.verification.file_of(year, AccountId(a));
            (principal.body.is_none() || file.map(|f| f.body) != principal.body).then(|| {
                ApiError::new(
                    tonic::Code::PermissionDenied,
                    "BODY_NOT_ASSIGNED",
                    "account_id",
                    format!(
                        "{}'s body is not assigned to account {a} for {year}",
                        principal.name
                    ),
                )
            })
        }
        Scope::Own | Scope::Any => None,
    })
}

/// What every service shares.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub core: Core,
    pub tokens: Arc<Tokens>,
    pub limits: Limits,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The server runs TLS (the dashboard's cookie is then `Secure`).
    pub tls: bool,
    /// Wall time, for the dates the registry records (the surrender deadline).
    pub clock: Clock,
    /// The exchange's local time relative to UTC, as in the calendar.
    pub utc_offset_minutes: i32,
    /// Market-wide risk limits for instruments created without their own.
    pub market: MarketSection,
    /// The trading calendar's holidays (`YYYYMMDD`): working-day windows skip them.
    pub holidays: Arc<Vec<u32>>,
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
    /// Today's local date, `YYYYMMDD`.
    pub fn today(&self) -> u32 {
        crate::calendar::local_date(self.clock.now_ns(), i64::from(self.utc_offset_minutes))
    }

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
        let call = self.begin_unscoped(request, method, rpc, accounts)?;
        // A province's or a body's row needs its check against the registry: reads take
        // `begin_scoped`; these operations are checked by the registry itself (the acting
        // province and body travel in the operation), and the queue is filtered by the
        // principal's province or body.
        let checked_elsewhere = matches!(
            rpc,
            Rpc::Assign | Rpc::Notify | Rpc::Review | Rpc::ListVerificationQueue
        );
        if matches!(call.scope, Scope::Jurisdiction | Scope::Assigned) && !checked_elsewhere {
            let e = ApiError::new(
                tonic::Code::Internal,
                "INTERNAL",
                "",
                format!("{method}: a scoped row read without its check"),
            );
            return Err(self.refuse(method, e));
        }
        Ok(call)
    }

    fn begin_unscoped<T>(
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

    /// [`Ctx::begin`] for a read whose row of the table may scope the caller to a
    /// province's entities or a body's files of `year`: those are checked against the
    /// registry here (OUTSIDE_JURISDICTION, BODY_NOT_ASSIGNED), before anything is read.
    pub async fn begin_scoped<T>(
        &self,
        request: &Request<T>,
        method: &'static str,
        rpc: Rpc,
        accounts: &[u64],
        year: u16,
    ) -> Result<Call, Status> {
        let call = self.begin_unscoped(request, method, rpc, accounts)?;
        self.check_scope(&call.principal, call.scope, year, accounts)
            .await
            .map_err(|e| self.refuse(method, e))?;
        Ok(call)
    }

    /// Whether `principal`, authorized with `scope`, may read `accounts`' records of
    /// `year`: a province only its province's entities, a body only its files (the API's
    /// reads and the dashboard's pages both ask here).
    pub async fn check_scope(
        &self,
        principal: &Arc<Principal>,
        scope: Scope,
        year: u16,
        accounts: &[u64],
    ) -> Result<(), ApiError> {
        if matches!(scope, Scope::Own | Scope::Any) {
            return Ok(());
        }
        let (principal, accounts) = (principal.clone(), accounts.to_vec());
        let refusal = self
            .core
            .registry
            .read(move |r| scope_refusal(r.ledger(), &principal, scope, year, &accounts))
            .await?;
        refusal.map_or(Ok(()), Err)
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

    /// The registry's one account of `kind` (the national authority, the retirement or the
    /// cancellation account); FAILED_PRECONDITION `reason` when there is none.
    pub async fn account_of_kind(
        &self,
        kind: ::registry::model::AccountType,
        reason: &'static str,
    ) -> Result<::registry::model::AccountId, ApiError> {
        self.core
            .registry
            .read(move |r| {
                r.ledger()
                    .accounts
                    .values()
                    .find(|a| a.kind == kind)
                    .map(|a| a.id)
            })
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    tonic::Code::FailedPrecondition,
                    reason,
                    "",
                    format!("the registry has no {kind:?} account"),
                )
            })
    }

    /// A registry transaction RPC: authorize, build the operation (its errors name their
    /// field), journal it; the receipt (journal sequence 0 when nothing changed).
    pub async fn registry_receipt<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        accounts: &[u64],
        build: impl FnOnce() -> Result<(String, ::registry::tx::Op), ApiError>,
    ) -> Result<tonic::Response<proto::v1::Receipt>, Status> {
        let call = self.begin(request, m, rpc, accounts)?;
        let (key, op) = build().map_err(|e| self.refuse(m, e))?;
        let r = self
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.refuse(m, e))?;
        Ok(tonic::Response::new(proto::v1::Receipt {
            journal_sequence: if r.outcome == ::registry::tx::Outcome::Unchanged {
                0
            } else {
                r.seq
            },
            ..proto::v1::Receipt::default()
        }))
    }

    /// A member's command to the engine, from whichever service it came (an order, an
    /// amendment, a bid, an auction step): it holds one of the principal's
    /// `limits.in_flight_per_principal` slots until the engine answers, so a principal
    /// cannot get round the limit by sending its commands through another service.
    pub async fn member_command(
        &self,
        call: &Call,
        kind: CommandKind,
        method: &'static str,
    ) -> Result<Applied, Status> {
        let _slot = take_slot(&call.principal, false, self.limits.in_flight_per_principal)
            .map_err(|e| self.refuse(method, e))?;
        self.core
            .execute(kind)
            .await
            .map_err(|e| self.refuse(method, e))
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
