//! AdminService: exchange operations (instruments, the day, funds, restrictions, risk
//! limits, reconciliation).

use engine::{AccountId, CommandKind, InstrumentSpec, Symbol};
use proto::v1 as pb;
use proto::v1::admin_service_server::AdminService;
use registry::model::{UnitDef, UnitKind};
use registry::tx::Op;
use tonic::{Request, Response, Status};

use crate::auth::Rpc;
use crate::catalog::unit_name;
use crate::config::MarketSection;
use crate::core::Applied;
use crate::error::ApiError;
use crate::services::convert::{self, phase};
use crate::services::convert::{id, price, quantity};
use crate::services::{Ctx, risk};

/// Client transfer ids for funds stay below 2^62; the gateway derives deposit and
/// withdrawal ids above it.
pub const CLIENT_TRANSFER_ID_MAX: u64 = (1 << 62) - 1;

#[derive(Clone, Debug)]
pub struct Admin {
    pub ctx: Ctx,
}

fn admin_reply(applied: &Applied) -> Result<pb::AdminReply, ApiError> {
    match applied.rejection() {
        Some(reason) => Err(ApiError::engine(reason)),
        None => Ok(pb::AdminReply {
            sequence: applied.seq,
        }),
    }
}

impl Admin {
    async fn command<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        kind: impl FnOnce() -> Result<CommandKind, ApiError>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let _call = self.ctx.begin(request, m, rpc, &[])?;
        let kind = kind().map_err(|e| self.ctx.refuse(m, e))?;
        // Funds credits and debits: a retry (the same transfer id and request) is answered
        // with the command that applied it, journaling nothing new.
        let applied = self
            .ctx
            .core
            .execute_once(kind)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        admin_reply(&applied)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }
}

/// A new instrument's spec from its request: CEA of the vintage, price and band, order
/// size, fees, opening call, position limit and large-holder threshold.
fn instrument_spec(
    r: &pb::CreateInstrumentRequest,
    market: &MarketSection,
) -> Result<InstrumentSpec, ApiError> {
    if !(2013..=2100).contains(&r.vintage) {
        return Err(ApiError::field(
            "vintage",
            "must be a year from 2013 to 2100",
        ));
    }
    let symbol = Symbol::new(&format!("CEA{}", r.vintage))
        .ok_or_else(|| ApiError::field("vintage", "not a valid symbol"))?;
    let mut spec =
        InstrumentSpec::listed(symbol, price(r.reference_price_fen, "reference_price_fen")?);
    if r.price_band_bp != 0 {
        if r.price_band_bp > engine::BAND_BP_MAX {
            return Err(ApiError::field("price_band_bp", "too wide"));
        }
        spec.band_bp = Some(r.price_band_bp);
    }
    if r.max_order_t != 0 {
        spec.max_order_t = quantity(r.max_order_t, "max_order_t")?;
    }
    for (v, f) in [
        (r.maker_fee_bp, "maker_fee_bp"),
        (r.taker_fee_bp, "taker_fee_bp"),
    ] {
        if v > engine::FEE_BP_MAX {
            return Err(ApiError::field(f, "too high"));
        }
    }
    spec.maker_fee_bp = r.maker_fee_bp;
    spec.taker_fee_bp = r.taker_fee_bp;
    spec.opening_call = r.opening_call;
    risk::creation_limits(&mut spec, r, market)?;
    Ok(spec)
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn create_instrument(
        &self,
        request: Request<pb::CreateInstrumentRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let m = "CreateInstrument";
        let call = self.ctx.begin(&request, m, Rpc::Instruments, &[])?;
        let r = request.into_inner();
        let spec = instrument_spec(&r, &self.ctx.market).map_err(|e| self.ctx.refuse(m, e))?;
        let name = spec.symbol.as_str().to_string();
        let catalog = self.ctx.core.catalog.clone();
        if catalog.unit(&name).is_none() {
            let unit = catalog.next_unit_id();
            let def = UnitDef {
                kind: UnitKind::Cea,
                vintage: r.vintage as u16,
                project_id: 0,
                registered: 0,
            };
            self.ctx
                .registry_tx(
                    &call.principal,
                    format!("unit:{}", unit_name(&def)),
                    Op::CreateUnit { unit, def },
                )
                .await
                .map_err(|e| self.ctx.refuse(m, e))?;
            catalog.add_unit(unit, &def);
        }
        let applied = self
            .ctx
            .core
            .execute(CommandKind::CreateInstrument(spec))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        admin_reply(&applied)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn halt_instrument(
        &self,
        request: Request<pb::HaltInstrumentRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        self.command(&request, "HaltInstrument", Rpc::Instruments, || {
            Ok(CommandKind::HaltInstrument {
                instrument: convert::instrument(&catalog, &r.instrument, "instrument")?,
                cancel_orders: r.cancel_orders,
            })
        })
        .await
    }

    async fn resume_instrument(
        &self,
        request: Request<pb::InstrumentRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        self.command(&request, "ResumeInstrument", Rpc::Instruments, || {
            Ok(CommandKind::ResumeInstrument {
                instrument: convert::instrument(&catalog, &r.instrument, "instrument")?,
            })
        })
        .await
    }

    async fn open_trading_day(
        &self,
        request: Request<pb::OpenTradingDayRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let date = request.get_ref().trading_date;
        self.command(&request, "OpenTradingDay", Rpc::TradingDay, || {
            let (y, md) = (date / 10_000, date % 10_000);
            let (mo, d) = (md / 100, md % 100);
            if !(2000..=2100).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
                return Err(ApiError::field("trading_date", "must be YYYYMMDD"));
            }
            Ok(CommandKind::OpenDay { date })
        })
        .await
    }

    async fn set_phase(
        &self,
        request: Request<pb::SetPhaseRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let p = request.get_ref().phase;
        self.command(&request, "SetPhase", Rpc::TradingDay, || {
            Ok(CommandKind::SetPhase {
                phase: phase(p, "phase")?,
            })
        })
        .await
    }

    async fn close_trading_day(
        &self,
        request: Request<pb::CloseTradingDayRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(&request, "CloseTradingDay", Rpc::TradingDay, || {
            Ok(CommandKind::CloseDay)
        })
        .await
    }

    async fn set_block_window(
        &self,
        request: Request<pb::SetBlockWindowRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let open = request.get_ref().open;
        self.command(&request, "SetBlockWindow", Rpc::TradingDay, || {
            Ok(CommandKind::SetBlockWindow { open })
        })
        .await
    }

    async fn set_reference_price(
        &self,
        request: Request<pb::SetReferencePriceRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        self.command(&request, "SetReferencePrice", Rpc::Instruments, || {
            Ok(CommandKind::SetReferencePrice {
                instrument: convert::instrument(&catalog, &r.instrument, "instrument")?,
                price_fen: price(r.price_fen, "price_fen")?,
            })
        })
        .await
    }

    async fn credit_funds(
        &self,
        request: Request<pb::FundsRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = *request.get_ref();
        self.command(&request, "CreditFunds", Rpc::Funds, || {
            let (transfer, account, amount_fen) = funds(&r)?;
            Ok(CommandKind::CreditFunds {
                transfer,
                account,
                amount_fen,
            })
        })
        .await
    }

    async fn debit_funds(
        &self,
        request: Request<pb::FundsRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = *request.get_ref();
        self.command(&request, "DebitFunds", Rpc::Funds, || {
            let (transfer, account, amount_fen) = funds(&r)?;
            Ok(CommandKind::DebitFunds {
                transfer,
                account,
                amount_fen,
            })
        })
        .await
    }

    async fn restrict_trading_account(
        &self,
        request: Request<pb::RestrictRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = *request.get_ref();
        self.command(
            &request,
            "RestrictTradingAccount",
            Rpc::RestrictTradingAccount,
            || {
                Ok(CommandKind::RestrictAccount {
                    account: AccountId(id(r.account_id, "account_id")?),
                    restricted: r.restricted,
                    cancel_orders: r.cancel_orders,
                })
            },
        )
        .await
    }

    async fn set_instrument_limits(
        &self,
        request: Request<pb::SetInstrumentLimitsRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        self.command(&request, "SetInstrumentLimits", Rpc::RiskLimits, || {
            risk::instrument_limits(&catalog, r)
        })
        .await
    }

    async fn set_position_limit(
        &self,
        request: Request<pb::SetPositionLimitRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        self.command(&request, "SetPositionLimit", Rpc::RiskLimits, || {
            risk::position_limit(&catalog, r)
        })
        .await
    }

    async fn get_large_holders(
        &self,
        request: Request<pb::GetLargeHoldersRequest>,
    ) -> Result<Response<pb::LargeHoldersReply>, Status> {
        let m = "GetLargeHolders";
        let _call = self.ctx.begin(&request, m, Rpc::LargeHolders, &[])?;
        let catalog = self.ctx.core.catalog.clone();
        let instrument = convert::instrument(&catalog, &request.get_ref().instrument, "instrument")
            .map_err(|e| self.ctx.refuse(m, e))?;
        let view = self
            .ctx
            .core
            .query(move |e| e.large_holders(instrument))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx
                    .refuse(m, ApiError::engine(engine::Reject::UnknownInstrument))
            })?;
        Ok(Response::new(risk::large_holders_reply(&catalog, &view)))
    }

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::ReconcileReply>, Status> {
        let m = "Reconcile";
        let _call = self.ctx.begin(&request, m, Rpc::Reconcile, &[])?;
        let outcome = self
            .ctx
            .core
            .reconcile()
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let catalog = &self.ctx.core.catalog;
        Ok(Response::new(pb::ReconcileReply {
            clean: outcome.clean(),
            sequence: outcome.seq,
            differences: outcome
                .differences
                .iter()
                .map(|d| pb::ReconcileDifference {
                    account_id: d.account,
                    unit: catalog.unit_name(d.unit),
                    registry_trading_t: d.registry_trading_t,
                    exchange_t: d.exchange_t,
                })
                .collect(),
            problems: outcome.problems.clone(),
            accounts_checked: outcome.accounts_checked,
        }))
    }
}

fn funds(r: &pb::FundsRequest) -> Result<(engine::TransferId, AccountId, i64), ApiError> {
    let transfer = id(r.transfer_id, "transfer_id")?;
    if transfer > CLIENT_TRANSFER_ID_MAX {
        return Err(ApiError::field("transfer_id", "must be below 2^62"));
    }
    let account = id(r.account_id, "account_id")?;
    if r.amount_fen <= 0 {
        return Err(ApiError::field(
            "amount_fen",
            "must be a positive amount of fen",
        ));
    }
    if r.amount_fen > engine::FUNDS_FEN_MAX {
        return Err(ApiError::field(
            "amount_fen",
            format!("too large: at most {} fen", engine::FUNDS_FEN_MAX),
        ));
    }
    Ok((
        engine::TransferId(transfer),
        AccountId(account),
        r.amount_fen,
    ))
}
