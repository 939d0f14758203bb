//! RegistryService: the book of record over gRPC. Moves to and from trading cross to the
//! engine exactly once (transfer ids derived from the registry entry or the idempotency key).

use ::registry::model::{
    AccountId, AccountStatus, AccountType, FreezeReason, PledgeState, ProposalState, UnitDef,
    UnitId, UnitKind,
};
use ::registry::tx::{Enforcement, Op, Receipt};
use engine::{AccountId as EngineAccount, CommandKind, TransferId};
use proto::v1 as pb;
use proto::v1::registry_service_server::RegistryService;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::auth::Rpc;
use crate::catalog::unit_name;
use crate::error::ApiError;
use crate::regworker::outcome_ids;
use crate::services::Ctx;
use crate::services::convert::{
    account_status_out, account_type, account_type_out, id, idempotency_key, quantity,
};

/// Most journal entries in one ReadJournal.
pub const JOURNAL_READ_MAX: u32 = 10_000;

/// Engine transfer ids the gateway derives (clients use ids below 2^62).
const DEPOSIT_TAG: u64 = 1 << 63;
const WITHDRAW_TAG: u64 = 1 << 62;

/// The engine transfer id of the deposit that follows registry entry `seq`.
pub fn deposit_transfer(seq: u64) -> TransferId {
    TransferId(DEPOSIT_TAG | seq)
}

/// The engine transfer id of a withdrawal requested with `key` for `account`.
pub fn withdraw_transfer(account: u64, key: &str) -> TransferId {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in account.to_le_bytes().iter().chain(key.as_bytes()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    TransferId(WITHDRAW_TAG | (hash & (WITHDRAW_TAG - 1)))
}

/// The engine command that locks an enforced pledge's units for its sale; the deposit's
/// transfer id is the registry entry's, as for a move to trading (recovery re-drives it).
pub fn disposal_deposit(
    entry: u64,
    pledge: &::registry::model::Pledge,
    instrument: engine::InstrumentId,
    claim_fen: u64,
) -> CommandKind {
    CommandKind::DepositForDisposal {
        transfer: deposit_transfer(entry),
        disposal: pledge.id,
        pledgor: EngineAccount(pledge.pledgor.0),
        pledgee: EngineAccount(pledge.pledgee.0),
        instrument,
        quantity_t: pledge.quantity_t,
        // At most PLEDGE_FEN_MAX (10^15), well inside i64.
        claim_fen: claim_fen as i64,
    }
}

/// A RegisterCcer request's fields: key, authority, the unit's definition, quantity.
fn ccer_issuance(
    r: &pb::RegisterCcerRequest,
) -> Result<(String, AccountId, UnitDef, u64), ApiError> {
    let key = idempotency_key(&r.idempotency_key, "idempotency_key")?;
    let authority = AccountId(id(r.authority_account_id, "authority_account_id")?);
    let project_id = id(r.project_id, "project_id")?;
    let (y, md) = (r.registered / 10_000, r.registered % 10_000);
    if !(2012..=2100).contains(&y)
        || !(1..=12).contains(&(md / 100))
        || !(1..=31).contains(&(md % 100))
    {
        return Err(ApiError::field("registered", "must be a date YYYYMMDD"));
    }
    let vintage = u16::try_from(r.vintage)
        .ok()
        .filter(|v| (2012..=2100).contains(v))
        .ok_or_else(|| ApiError::field("vintage", "must be a year from 2012 to 2100"))?;
    let def = UnitDef {
        kind: UnitKind::Ccer,
        vintage,
        project_id,
        registered: r.registered,
    };
    Ok((key, authority, def, quantity(r.quantity_t, "quantity_t")?))
}

/// A pledge's secured amount or claim, fen: 1 to RMB 10 trillion.
fn pledge_fen(value: u64, field: &'static str) -> Result<u64, ApiError> {
    if value == 0 || value > ::registry::ledger::PLEDGE_FEN_MAX {
        return Err(ApiError::field(
            field,
            "must be 1 fen to RMB 10 trillion (1e15 fen)",
        ));
    }
    Ok(value)
}

/// An EnforcePledge request as the registry operation: to the pledgee, or for auction
/// with the claim (the request's, else the pledge's secured amount).
fn enforcement(
    r: &pb::PledgeActionRequest,
    pledge: &::registry::model::Pledge,
) -> Result<Op, ApiError> {
    let (how, claim_fen) = match pb::Enforcement::try_from(r.enforcement) {
        Ok(pb::Enforcement::ToPledgee) if r.claim_fen != 0 => {
            return Err(ApiError::field(
                "claim_fen",
                "only an enforcement for auction has a claim",
            ));
        }
        Ok(pb::Enforcement::ToPledgee) => (Enforcement::ToPledgee, None),
        Ok(pb::Enforcement::ForAuction) => {
            let claim = match (r.claim_fen, pledge.secured_fen) {
                (0, 0) => {
                    return Err(ApiError::field(
                        "claim_fen",
                        "the pledge records no secured amount: give what is owed",
                    ));
                }
                (0, secured) => secured,
                (claim, _) => pledge_fen(claim, "claim_fen")?,
            };
            (Enforcement::ForAuction, Some(claim))
        }
        _ => {
            return Err(ApiError::field(
                "enforcement",
                "must be an ENFORCEMENT_ value",
            ));
        }
    };
    Ok(Op::PledgeEnforce {
        pledge: pledge.id,
        how,
        claim_fen,
    })
}

/// Registry account types that also get a trading account at the exchange.
pub fn trades(kind: AccountType) -> bool {
    !matches!(
        kind,
        AccountType::Retirement | AccountType::Cancellation | AccountType::ExchangeCustody
    )
}

#[derive(Clone, Debug)]
pub struct RegistryApi {
    pub ctx: Ctx,
}

fn receipt(r: Receipt) -> pb::Receipt {
    let (proposal_id, pledge_id) = outcome_ids(r.outcome);
    pb::Receipt {
        journal_sequence: r.seq,
        proposal_id,
        pledge_id,
        engine_sequence: 0,
    }
}

/// UPPER_SNAKE name of an operation, for journal readers.
fn op_kind(op: &Op) -> String {
    let debug = format!("{op:?}");
    let name = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl RegistryApi {
    fn unit(&self, name: &str, field: &str) -> Result<UnitId, ApiError> {
        crate::services::convert::unit(&self.ctx.core.catalog, name, field)
    }

    /// Runs a simple registry transaction RPC.
    async fn simple<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        accounts: &[u64],
        build: impl FnOnce() -> Result<(String, Op), ApiError>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let call = self.ctx.begin(request, m, rpc, accounts)?;
        let (key, op) = build().map_err(|e| self.ctx.refuse(m, e))?;
        let r = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(receipt(r)))
    }

    /// Credits the engine with a registry move into trading (idempotent by entry).
    /// The registry unit of a CCER project's vintage, created on its first issuance; a
    /// registration date other than the one on record is refused.
    async fn ccer_unit(
        &self,
        principal: &crate::auth::Principal,
        def: &UnitDef,
    ) -> Result<UnitId, ApiError> {
        let catalog = self.ctx.core.catalog.clone();
        if let Some(unit) = catalog.unit(&unit_name(def)) {
            let on_record = self
                .ctx
                .core
                .registry
                .read(move |r| r.ledger().units.get(&unit).copied())
                .await?;
            if on_record.is_some_and(|d| d.registered != def.registered) {
                return Err(ApiError::field(
                    "registered",
                    "differs from the project's registration date on record",
                ));
            }
            return Ok(unit);
        }
        let unit = catalog.next_unit_id();
        let op = Op::CreateUnit { unit, def: *def };
        self.ctx
            .registry_tx(principal, format!("unit:{}", unit_name(def)), op)
            .await?;
        catalog.add_unit(unit, def);
        Ok(unit)
    }

    /// The instrument that trades a unit.
    fn traded(&self, unit: UnitId) -> Result<engine::InstrumentId, ApiError> {
        self.ctx
            .core
            .catalog
            .instrument_of_unit(unit)
            .ok_or_else(|| {
                ApiError::new(
                    tonic::Code::FailedPrecondition,
                    "NOT_TRADED",
                    "unit",
                    "no instrument trades this unit",
                )
            })
    }

    async fn deposit(
        &self,
        entry: u64,
        account: u64,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<u64, ApiError> {
        let instrument = self.traded(unit)?;
        let applied = self
            .ctx
            .core
            .execute_once(CommandKind::DepositAllowances {
                transfer: deposit_transfer(entry),
                account: EngineAccount(account),
                instrument,
                quantity_t,
            })
            .await?;
        if let Some(reason) = applied.rejection() {
            tracing::error!(
                entry,
                account,
                ?reason,
                "the engine refused a deposit the registry committed; it is retried at the next start"
            );
            return Err(ApiError::engine(reason));
        }
        Ok(applied.seq)
    }

    /// The engine's side of a pledge enforced for auction: the units locked in the
    /// pledgor's trading account for the pledgee's sale.
    async fn dispose(
        &self,
        entry: u64,
        pledge: &::registry::model::Pledge,
        claim_fen: u64,
    ) -> Result<u64, ApiError> {
        let instrument = self.traded(pledge.unit)?;
        let applied = self
            .ctx
            .core
            .execute_once(disposal_deposit(entry, pledge, instrument, claim_fen))
            .await?;
        if let Some(reason) = applied.rejection() {
            tracing::error!(
                entry,
                pledge = pledge.id,
                ?reason,
                "the engine refused a disposal the registry committed; it is retried at the next start"
            );
            return Err(ApiError::engine(reason));
        }
        Ok(applied.seq)
    }

    async fn lookup_pledge(&self, pledge: u64) -> Result<::registry::model::Pledge, ApiError> {
        self.ctx
            .core
            .registry
            .read(move |r| r.ledger().pledges.get(&pledge).copied())
            .await?
            .ok_or_else(|| ApiError::registry(&::registry::RegistryError::PledgeNotFound(pledge)))
    }
}

type JournalStream = ReceiverStream<Result<pb::JournalEntry, Status>>;

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "OpenAccount";
        let call = self.ctx.begin(&request, m, Rpc::OpenAccount, &[])?;
        let r = request.into_inner();
        let (key, account, kind) = (|| {
            Ok::<_, ApiError>((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                id(r.account_id, "account_id")?,
                account_type(r.account_type, r.sector)?,
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let rec = self
            .ctx
            .registry_tx(
                &call.principal,
                key,
                Op::OpenAccount {
                    account: AccountId(account),
                    kind,
                    name: r.name,
                },
            )
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let mut reply = receipt(rec);
        if trades(kind) {
            let applied = self
                .ctx
                .core
                .execute(CommandKind::OpenAccount {
                    account: EngineAccount(account),
                    stp: engine::StpMode::default(),
                })
                .await
                .map_err(|e| self.ctx.refuse(m, e))?;
            match applied.rejection() {
                None | Some(engine::Reject::AccountExists) => reply.engine_sequence = applied.seq,
                Some(reason) => return Err(self.ctx.refuse(m, ApiError::engine(reason))),
            }
        }
        Ok(Response::new(reply))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::RegistryAccount>, Status> {
        let m = "GetAccount";
        let account = request.get_ref().account_id;
        let _call = self.ctx.begin(&request, m, Rpc::GetAccount, &[account])?;
        let found = self
            .ctx
            .core
            .registry
            .read(move |r| r.ledger().accounts.get(&AccountId(account)).cloned())
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::registry(&::registry::RegistryError::UnknownAccount(account)),
                )
            })?;
        let (account_type, sector) = account_type_out(found.kind);
        Ok(Response::new(pb::RegistryAccount {
            account_id: account,
            account_type,
            sector,
            name: found.name,
            status: account_status_out(found.status),
        }))
    }

    async fn set_account_status(
        &self,
        request: Request<pb::SetAccountStatusRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(
            &request,
            "SetAccountStatus",
            Rpc::SetAccountStatus,
            &[],
            || {
                let status = match pb::AccountStatus::try_from(r.status) {
                    Ok(pb::AccountStatus::Open) => AccountStatus::Open,
                    Ok(pb::AccountStatus::Restricted) => AccountStatus::Restricted,
                    Ok(pb::AccountStatus::Frozen) => AccountStatus::Frozen,
                    Ok(pb::AccountStatus::Closed) => AccountStatus::Closed,
                    _ => {
                        return Err(ApiError::field(
                            "status",
                            "must be an ACCOUNT_STATUS_ value",
                        ));
                    }
                };
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::SetStatus {
                        account: AccountId(id(r.account_id, "account_id")?),
                        status,
                    },
                ))
            },
        )
        .await
    }

    async fn get_holdings(
        &self,
        request: Request<pb::GetHoldingsRequest>,
    ) -> Result<Response<pb::Holdings>, Status> {
        let m = "GetHoldings";
        let account = request.get_ref().account_id;
        let _call = self.ctx.begin(&request, m, Rpc::GetHoldings, &[account])?;
        let catalog = self.ctx.core.catalog.clone();
        let holdings = self
            .ctx
            .core
            .registry
            .read(move |r| {
                let ledger = r.ledger();
                if !ledger.accounts.contains_key(&AccountId(account)) {
                    return None;
                }
                Some(
                    ledger
                        .holdings
                        .range(
                            (AccountId(account), UnitId(0))
                                ..=(AccountId(account), UnitId(u32::MAX)),
                        )
                        .map(|((_, unit), h)| pb::Holding {
                            unit: catalog.unit_name(*unit),
                            registry_available_t: h.registry_available_t,
                            trading_t: h.trading_t,
                            frozen_t: h.frozen_t(),
                            frozen: h
                                .frozen
                                .iter()
                                .map(|(reason, q)| {
                                    let (reason, reference) = match reason {
                                        FreezeReason::Pledge(p) => ("PLEDGE", *p),
                                        FreezeReason::Judicial(o) => ("JUDICIAL", *o),
                                        FreezeReason::Pending(p) => ("PENDING_TRANSFER", *p),
                                        FreezeReason::CarryOver(a) => ("CARRY_OVER", *a),
                                    };
                                    pb::FrozenQuantity {
                                        reason: reason.into(),
                                        reference,
                                        quantity_t: *q,
                                    }
                                })
                                .collect(),
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::registry(&::registry::RegistryError::UnknownAccount(account)),
                )
            })?;
        Ok(Response::new(pb::Holdings {
            account_id: account,
            holdings,
        }))
    }

    async fn issue(
        &self,
        request: Request<pb::IssueRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(&request, "Issue", Rpc::Issue, &[], || {
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::Issue {
                    authority: AccountId(id(r.authority_account_id, "authority_account_id")?),
                    unit: self.unit(&r.unit, "unit")?,
                    quantity_t: quantity(r.quantity_t, "quantity_t")?,
                },
            ))
        })
        .await
    }

    async fn register_ccer(
        &self,
        request: Request<pb::RegisterCcerRequest>,
    ) -> Result<Response<pb::RegisterCcerReply>, Status> {
        let m = "RegisterCcer";
        let call = self.ctx.begin(&request, m, Rpc::Issue, &[])?;
        let r = request.into_inner();
        let (key, authority, def, quantity_t) =
            ccer_issuance(&r).map_err(|e| self.ctx.refuse(m, e))?;
        let unit = self
            .ccer_unit(&call.principal, &def)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let op = Op::Issue {
            authority,
            unit,
            quantity_t,
        };
        let rec = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::RegisterCcerReply {
            journal_sequence: rec.seq,
            unit: unit_name(&def),
        }))
    }

    async fn allocate(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(
            &request,
            "Allocate",
            Rpc::Allocate,
            &[r.from_account_id],
            || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::Allocate {
                        from: AccountId(id(r.from_account_id, "from_account_id")?),
                        to: AccountId(id(r.to_account_id, "to_account_id")?),
                        unit: self.unit(&r.unit, "unit")?,
                        quantity_t: quantity(r.quantity_t, "quantity_t")?,
                    },
                ))
            },
        )
        .await
    }

    async fn propose_transfer(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(
            &request,
            "ProposeTransfer",
            Rpc::ProposeTransfer,
            &[r.from_account_id],
            || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::Transfer {
                        from: AccountId(id(r.from_account_id, "from_account_id")?),
                        to: AccountId(id(r.to_account_id, "to_account_id")?),
                        unit: self.unit(&r.unit, "unit")?,
                        quantity_t: quantity(r.quantity_t, "quantity_t")?,
                    },
                ))
            },
        )
        .await
    }

    async fn approve_transfer(
        &self,
        request: Request<pb::ProposalRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.proposal_action(request, "ApproveTransfer", Rpc::ApproveTransfer)
            .await
    }

    async fn cancel_transfer(
        &self,
        request: Request<pb::ProposalRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.proposal_action(request, "CancelTransfer", Rpc::CancelTransfer)
            .await
    }

    async fn set_four_eyes_threshold(
        &self,
        request: Request<pb::FourEyesRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(
            &request,
            "SetFourEyesThreshold",
            Rpc::SetFourEyesThreshold,
            &[],
            || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::SetFourEyesThreshold {
                        quantity_t: quantity(r.threshold_t, "threshold_t")?,
                    },
                ))
            },
        )
        .await
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Result<Response<pb::ListProposalsReply>, Status> {
        let m = "ListProposals";
        let _call = self.ctx.begin(&request, m, Rpc::ListProposals, &[])?;
        let pending_only = request.get_ref().pending_only;
        let catalog = self.ctx.core.catalog.clone();
        let proposals = self
            .ctx
            .core
            .registry
            .read(move |r| {
                r.ledger()
                    .proposals
                    .values()
                    .filter(|p| !pending_only || p.state == ProposalState::Pending)
                    .map(|p| pb::Proposal {
                        proposal_id: p.id,
                        from_account_id: p.from.0,
                        to_account_id: p.to.0,
                        unit: catalog.unit_name(p.unit),
                        quantity_t: p.quantity_t,
                        proposer: p.proposer,
                        state: match p.state {
                            ProposalState::Pending => "PENDING",
                            ProposalState::Approved => "APPROVED",
                            ProposalState::Cancelled => "CANCELLED",
                        }
                        .into(),
                    })
                    .collect()
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::ListProposalsReply { proposals }))
    }

    async fn move_to_trading(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "MoveToTrading";
        let r = request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::MoveToTrading, &[r.account_id])?;
        let (key, account, unit, quantity_t) =
            self.move_fields(r).map_err(|e| self.ctx.refuse(m, e))?;
        if self.ctx.core.catalog.instrument_of_unit(unit).is_none() {
            return Err(self.ctx.refuse(
                m,
                ApiError::new(
                    tonic::Code::FailedPrecondition,
                    "NOT_TRADED",
                    "unit",
                    "no instrument trades this unit",
                ),
            ));
        }
        let rec = self
            .ctx
            .registry_tx(
                &call.principal,
                key,
                Op::MoveToTrading {
                    account: AccountId(account),
                    unit,
                    quantity_t,
                },
            )
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let engine_sequence = self
            .deposit(rec.seq, account, unit, quantity_t)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let mut reply = receipt(rec);
        reply.engine_sequence = engine_sequence;
        Ok(Response::new(reply))
    }

    async fn move_from_trading(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "MoveFromTrading";
        let r = request.get_ref();
        let _call = self
            .ctx
            .begin(&request, m, Rpc::MoveFromTrading, &[r.account_id])?;
        let (key, account, unit, quantity_t) =
            self.move_fields(r).map_err(|e| self.ctx.refuse(m, e))?;
        let instrument = self
            .ctx
            .core
            .catalog
            .instrument_of_unit(unit)
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::new(
                        tonic::Code::FailedPrecondition,
                        "NOT_TRADED",
                        "unit",
                        "no instrument trades this unit",
                    ),
                )
            })?;
        let applied = self
            .ctx
            .core
            .execute_once(CommandKind::WithdrawAllowances {
                transfer: withdraw_transfer(account, &key),
                account: EngineAccount(account),
                instrument,
                quantity_t,
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        if let Some(reason) = applied.rejection() {
            let mut e = ApiError::engine(reason);
            if reason == engine::Reject::DuplicateTransferId {
                e.field = "idempotency_key".into();
            }
            return Err(self.ctx.refuse(m, e));
        }
        // Reply once the withdrawal is settled in the registry (registry-available again).
        self.ctx
            .core
            .wait_settled(applied.seq)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::Receipt {
            engine_sequence: applied.seq,
            ..pb::Receipt::default()
        }))
    }

    async fn freeze(
        &self,
        request: Request<pb::FreezeRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(&request, "Freeze", Rpc::Freeze, &[], || {
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::Freeze {
                    account: AccountId(id(r.account_id, "account_id")?),
                    unit: self.unit(&r.unit, "unit")?,
                    quantity_t: quantity(r.quantity_t, "quantity_t")?,
                    order: id(r.court_order, "court_order")?,
                },
            ))
        })
        .await
    }

    async fn unfreeze(
        &self,
        request: Request<pb::FreezeRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(&request, "Unfreeze", Rpc::Unfreeze, &[], || {
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::Unfreeze {
                    account: AccountId(id(r.account_id, "account_id")?),
                    unit: self.unit(&r.unit, "unit")?,
                    order: id(r.court_order, "court_order")?,
                },
            ))
        })
        .await
    }

    async fn register_pledge(
        &self,
        request: Request<pb::PledgeRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.simple(
            &request,
            "RegisterPledge",
            Rpc::RegisterPledge,
            &[r.pledgee_account_id],
            || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::PledgeRegister {
                        pledgor: AccountId(id(r.pledgor_account_id, "pledgor_account_id")?),
                        pledgee: AccountId(id(r.pledgee_account_id, "pledgee_account_id")?),
                        unit: self.unit(&r.unit, "unit")?,
                        quantity_t: quantity(r.quantity_t, "quantity_t")?,
                        secured_fen: pledge_fen(r.secured_fen, "secured_fen")?,
                    },
                ))
            },
        )
        .await
    }

    async fn release_pledge(
        &self,
        request: Request<pb::PledgeActionRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.pledge_action(request, "ReleasePledge", Rpc::ReleasePledge)
            .await
    }

    async fn enforce_pledge(
        &self,
        request: Request<pb::PledgeActionRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.pledge_action(request, "EnforcePledge", Rpc::EnforcePledge)
            .await
    }

    async fn list_pledges(
        &self,
        request: Request<pb::ListPledgesRequest>,
    ) -> Result<Response<pb::ListPledgesReply>, Status> {
        let m = "ListPledges";
        let pledgee = request.get_ref().pledgee_account_id;
        let _call = self.ctx.begin(&request, m, Rpc::ListPledges, &[pledgee])?;
        let catalog = self.ctx.core.catalog.clone();
        let pledges = self
            .ctx
            .core
            .registry
            .read(move |r| {
                r.ledger()
                    .pledges
                    .values()
                    .filter(|p| pledgee == 0 || p.pledgee.0 == pledgee)
                    .map(|p| pb::Pledge {
                        pledge_id: p.id,
                        pledgor_account_id: p.pledgor.0,
                        pledgee_account_id: p.pledgee.0,
                        unit: catalog.unit_name(p.unit),
                        quantity_t: p.quantity_t,
                        secured_fen: p.secured_fen,
                        claim_fen: p.claim_fen,
                        state: match p.state {
                            PledgeState::Registered => "REGISTERED",
                            PledgeState::Released => "RELEASED",
                            PledgeState::EnforcedToPledgee => "ENFORCED_TO_PLEDGEE",
                            PledgeState::EnforcedForAuction => "ENFORCED_FOR_AUCTION",
                        }
                        .into(),
                    })
                    .collect()
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::ListPledgesReply { pledges }))
    }

    async fn voluntary_cancel(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "VoluntaryCancel";
        let r = request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::VoluntaryCancel, &[r.account_id])?;
        let (key, account, unit, quantity_t) =
            self.move_fields(r).map_err(|e| self.ctx.refuse(m, e))?;
        let cancellation = self
            .ctx
            .core
            .registry
            .read(|r| {
                r.ledger()
                    .accounts
                    .values()
                    .find(|a| a.kind == AccountType::Cancellation)
                    .map(|a| a.id)
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::new(
                        tonic::Code::FailedPrecondition,
                        "NO_CANCELLATION_ACCOUNT",
                        "",
                        "the authority has not opened a cancellation account",
                    ),
                )
            })?;
        let rec = self
            .ctx
            .registry_tx(
                &call.principal,
                key,
                Op::VoluntaryCancel {
                    account: AccountId(account),
                    cancellation,
                    unit,
                    quantity_t,
                },
            )
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(receipt(rec)))
    }

    type ReadJournalStream = JournalStream;

    async fn read_journal(
        &self,
        request: Request<pb::ReadJournalRequest>,
    ) -> Result<Response<Self::ReadJournalStream>, Status> {
        let m = "ReadJournal";
        let _call = self.ctx.begin(&request, m, Rpc::ReadJournal, &[])?;
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 1_000,
            l if l > JOURNAL_READ_MAX => {
                return Err(self
                    .ctx
                    .refuse(m, ApiError::field("limit", "at most 10000")));
            }
            l => l,
        } as usize;
        let from = r.from_sequence.max(1);
        let entries = self
            .ctx
            .core
            .registry
            .read(move |reg| reg.journal(from, limit))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .map_err(|e| self.ctx.refuse(m, ApiError::registry(&e)))?;
        let (tx, rx) = tokio::sync::mpsc::channel(entries.len().max(1));
        let catalog = &self.ctx.core.catalog;
        let unit = |u: registry::model::UnitId| catalog.unit_name(u);
        for e in entries {
            let _ = tx.try_send(Ok(pb::JournalEntry {
                sequence: e.seq,
                kind: op_kind(&e.tx.op),
                hash: e.hash.to_vec(),
                prev_hash: e.prev_hash.to_vec(),
                detail: registry::describe::describe(&e.tx.op, &unit, None),
                actor: e.tx.actor,
                timestamp_ns: e.tx.timestamp_ns,
                idempotency_key: e.tx.key,
            }));
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn verify_journal(
        &self,
        request: Request<pb::VerifyJournalRequest>,
    ) -> Result<Response<pb::VerifyJournalReply>, Status> {
        let m = "VerifyJournal";
        let _call = self.ctx.begin(&request, m, Rpc::VerifyJournal, &[])?;
        let result = self
            .ctx
            .core
            .registry
            .read(|reg| reg.verify_journal())
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(match result {
            Ok(report) => pb::VerifyJournalReply {
                ok: true,
                entries: report.entries,
                head_hash: report.head_hash.to_vec(),
                problem: String::new(),
            },
            Err(e) => pb::VerifyJournalReply {
                ok: false,
                problem: e.to_string(),
                ..pb::VerifyJournalReply::default()
            },
        }))
    }
}

impl RegistryApi {
    fn move_fields(&self, r: &pb::MoveRequest) -> Result<(String, u64, UnitId, u64), ApiError> {
        Ok((
            idempotency_key(&r.idempotency_key, "idempotency_key")?,
            id(r.account_id, "account_id")?,
            self.unit(&r.unit, "unit")?,
            quantity(r.quantity_t, "quantity_t")?,
        ))
    }

    async fn proposal_action(
        &self,
        request: Request<pb::ProposalRequest>,
        m: &'static str,
        rpc: Rpc,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        // Authenticate first; the accounts involved come from the proposal itself.
        // Unauthenticated callers are refused before anything is looked up; `begin` below
        // authorizes once the proposal's account is known.
        self.ctx
            .authenticate(&request)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let (key, proposal) = (|| {
            Ok::<_, ApiError>((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                id(r.proposal_id, "proposal_id")?,
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let from = self
            .ctx
            .core
            .registry
            .read(move |reg| reg.ledger().proposals.get(&proposal).map(|p| p.from.0))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let call = self.ctx.begin(&request, m, rpc, &[from.unwrap_or(0)])?;
        let op = match rpc {
            Rpc::ApproveTransfer => Op::ApproveTransfer { proposal },
            _ => Op::CancelProposal { proposal },
        };
        let rec = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(receipt(rec)))
    }

    async fn pledge_action(
        &self,
        request: Request<pb::PledgeActionRequest>,
        m: &'static str,
        rpc: Rpc,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        // As for proposals: authenticate first, authorize once the pledgee is known.
        self.ctx
            .authenticate(&request)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let (key, pledge_id) = (|| {
            Ok::<_, ApiError>((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                id(r.pledge_id, "pledge_id")?,
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        // Authorize against the pledge's pledgee before revealing whether it exists.
        let pledge = self.lookup_pledge(pledge_id).await.ok();
        let pledgee = pledge.map_or(0, |p| p.pledgee.0);
        let call = self.ctx.begin(&request, m, rpc, &[pledgee])?;
        let Some(pledge) = pledge else {
            return Err(self.ctx.refuse(
                m,
                ApiError::registry(&::registry::RegistryError::PledgeNotFound(pledge_id)),
            ));
        };
        let op = match rpc {
            Rpc::ReleasePledge => Op::PledgeRelease { pledge: pledge_id },
            _ => enforcement(r, &pledge).map_err(|e| self.ctx.refuse(m, e))?,
        };
        let claim_fen = match op {
            Op::PledgeEnforce {
                how: Enforcement::ForAuction,
                claim_fen,
                ..
            } => claim_fen,
            _ => None,
        };
        if claim_fen.is_some() {
            // Refused before the registry commits: units the registry put at the exchange
            // must reach it.
            self.traded(pledge.unit)
                .map_err(|e| self.ctx.refuse(m, e))?;
        }
        let rec = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let mut reply = receipt(rec);
        if let Some(claim_fen) = claim_fen {
            reply.engine_sequence = self
                .dispose(rec.seq, &pledge, claim_fen)
                .await
                .map_err(|e| self.ctx.refuse(m, e))?;
        }
        Ok(Response::new(reply))
    }
}
