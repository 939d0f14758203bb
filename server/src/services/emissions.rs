//! EmissionsService: the factors in force, covered entities' monitoring plans, monthly
//! deposits and annual reports (the registry's `emissions`, the formulas `mrv`'s). Dates
//! are the exchange's local date from the server's clock.

use ::registry::model::AccountId;
use ::registry::tx::Op;
use proto::v1 as pb;
use proto::v1::emissions_service_server::EmissionsService;
use tonic::{Request, Response, Status};

use crate::auth::Rpc;
use crate::error::ApiError;
use crate::services::Ctx;
use crate::services::compliance::year;
use crate::services::convert::{id, idempotency_key};
use crate::services::emissions_convert as conv;

#[derive(Clone, Debug)]
pub struct EmissionsApi {
    pub ctx: Ctx,
}

impl EmissionsApi {
    async fn read<T: Send + 'static>(
        &self,
        m: &'static str,
        f: impl FnOnce(&::registry::Registry) -> T + Send + 'static,
    ) -> Result<T, Status> {
        self.ctx
            .core
            .registry
            .read(f)
            .await
            .map_err(|e| self.ctx.refuse(m, e))
    }
}

fn not_found(what: String) -> ApiError {
    ApiError::not_found("NOT_FOUND", "year", what)
}

#[tonic::async_trait]
impl EmissionsService for EmissionsApi {
    async fn register_factors(
        &self,
        request: Request<pb::RegisterFactorsRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let m = "RegisterFactors";
        self.ctx
            .registry_receipt(&request, m, Rpc::RegisterFactors, &[], || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::RegisterFactors {
                        year: year(r.year)?,
                        text: r.factors_toml.clone(),
                    },
                ))
            })
            .await
    }

    async fn set_monitoring_plan(
        &self,
        request: Request<pb::SetMonitoringPlanRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "SetMonitoringPlan";
        let account = request.get_ref().account_id;
        // The plan is of the entity's sector; an account that is not an industrial covered
        // entity is refused by the registry (after the caller is authorized).
        let sector = self
            .read(m, move |reg| {
                let entity = reg.ledger().cycle.entities.get(&AccountId(account));
                entity.and_then(|e| ::registry::emissions::ops::mrv_sector(e.sector))
            })
            .await?
            .unwrap_or(mrv::factors::Sector::Steel);
        let r = request.get_ref();
        let date = self.ctx.today();
        self.ctx
            .registry_receipt(&request, m, Rpc::SetMonitoringPlan, &[account], || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::SetMonitoringPlan {
                        account: AccountId(id(r.account_id, "account_id")?),
                        plan: Box::new(conv::plan_in(r, year(r.year)?, sector)?),
                        date,
                    },
                ))
            })
            .await
    }

    async fn deposit_month(
        &self,
        request: Request<pb::DepositMonthRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let date = self.ctx.today();
        self.ctx
            .registry_receipt(
                &request,
                "DepositMonth",
                Rpc::DepositMonth,
                &[r.account_id],
                || {
                    Ok((
                        idempotency_key(&r.idempotency_key, "idempotency_key")?,
                        Op::DepositMonth {
                            account: AccountId(id(r.account_id, "account_id")?),
                            month: Box::new(conv::month_in(r, year(r.year)?)?),
                            evidence: conv::evidence_in(&r.evidence)?,
                            correction: r.correction,
                            date,
                        },
                    ))
                },
            )
            .await
    }

    async fn submit_report(
        &self,
        request: Request<pb::SubmitReportRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let date = self.ctx.today();
        self.ctx
            .registry_receipt(
                &request,
                "SubmitReport",
                Rpc::SubmitReport,
                &[r.account_id],
                || {
                    Ok((
                        idempotency_key(&r.idempotency_key, "idempotency_key")?,
                        Op::SubmitReport {
                            account: AccountId(id(r.account_id, "account_id")?),
                            year: year(r.year)?,
                            date,
                        },
                    ))
                },
            )
            .await
    }

    async fn confirm_report(
        &self,
        request: Request<pb::ConfirmReportRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.ctx
            .registry_receipt(
                &request,
                "ConfirmReport",
                Rpc::ConfirmReport,
                &[r.account_id],
                || {
                    Ok((
                        idempotency_key(&r.idempotency_key, "idempotency_key")?,
                        Op::ConfirmReport {
                            account: AccountId(id(r.account_id, "account_id")?),
                            year: year(r.year)?,
                        },
                    ))
                },
            )
            .await
    }

    async fn get_month(
        &self,
        request: Request<pb::GetMonthRequest>,
    ) -> Result<Response<pb::GetMonthReply>, Status> {
        let m = "GetMonth";
        let r = request.get_ref();
        let _call = self
            .ctx
            .begin_scoped(&request, m, Rpc::GetMonth, &[r.account_id], 0)
            .await?;
        let (account, y, month) = (|| {
            Ok::<_, ApiError>((
                id(r.account_id, "account_id")?,
                year(r.year)?,
                conv::month_number(r.month)?,
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let versions = self
            .read(m, move |reg| {
                let e = &reg.ledger().emissions;
                let found = e.months.get(&(y, AccountId(account), month));
                let out =
                    found.map(|v| v.iter().enumerate().map(|(i, d)| conv::month_out(i + 1, d)));
                out.map(Iterator::collect::<Vec<_>>).unwrap_or_default()
            })
            .await?;
        Ok(Response::new(pb::GetMonthReply { versions }))
    }

    async fn get_emissions_report(
        &self,
        request: Request<pb::GetEmissionsReportRequest>,
    ) -> Result<Response<pb::EmissionsReport>, Status> {
        let m = "GetEmissionsReport";
        let r = request.get_ref();
        let _call = self
            .ctx
            .begin_scoped(&request, m, Rpc::GetEmissionsReport, &[r.account_id], 0)
            .await?;
        let (account, y) =
            (|| Ok::<_, ApiError>((id(r.account_id, "account_id")?, year(r.year)?)))()
                .map_err(|e| self.ctx.refuse(m, e))?;
        let found = self
            .read(m, move |reg| {
                let e = &reg.ledger().emissions;
                let account = AccountId(account);
                let versions = e.reports.get(&(y, account))?;
                let report = e.recompute(y, account)?;
                let latest = versions.last()?;
                Some(conv::report_out(versions.len(), latest, &report))
            })
            .await?;
        let report = found.ok_or_else(|| {
            self.ctx.refuse(
                m,
                not_found(format!(
                    "account {} submitted no report for {y}",
                    r.account_id
                )),
            )
        })?;
        Ok(Response::new(report))
    }
}
