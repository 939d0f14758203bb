//! CarryOverService: old vintages carried into a plan year's (the registry's
//! `cycle::carry`): the authority fixes the limits and converts, each entity applies and
//! reads its limit. Dates are the exchange's local date from the server's clock.

use ::registry::model::{AccountId, AccountType};
use ::registry::tx::Op;
use proto::v1 as pb;
use proto::v1::carry_over_service_server::CarryOverService;
use tonic::{Request, Response, Status};

use crate::auth::Rpc;
use crate::error::ApiError;
use crate::services::Ctx;
use crate::services::compliance::year;
use crate::services::convert::{self, id, idempotency_key, quantity};

#[derive(Clone, Debug)]
pub struct CarryOverApi {
    pub ctx: Ctx,
}

#[tonic::async_trait]
impl CarryOverService for CarryOverApi {
    async fn fix_carry_over(
        &self,
        request: Request<pb::FixCarryOverRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let date = self.ctx.today();
        self.ctx
            .registry_receipt(&request, "FixCarryOver", Rpc::FixCarryOver, &[], || {
                if r.plan_version.is_empty() {
                    return Err(ApiError::field(
                        "plan_version",
                        "must name a registered plan",
                    ));
                }
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::FixCarryOver {
                        year: year(r.year)?,
                        plan_version: r.plan_version.clone(),
                        date,
                    },
                ))
            })
            .await
    }

    async fn apply_carry_over(
        &self,
        request: Request<pb::ApplyCarryOverRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let date = self.ctx.today();
        let accounts = [r.account_id];
        self.ctx
            .registry_receipt(
                &request,
                "ApplyCarryOver",
                Rpc::ApplyCarryOver,
                &accounts,
                || {
                    Ok((
                        idempotency_key(&r.idempotency_key, "idempotency_key")?,
                        Op::ApplyCarryOver {
                            year: year(r.year)?,
                            account: AccountId(id(r.account_id, "account_id")?),
                            unit: convert::unit(&self.ctx.core.catalog, &r.unit, "unit")?,
                            quantity_t: quantity(r.quantity_t, "quantity_t")?,
                            date,
                        },
                    ))
                },
            )
            .await
    }

    async fn convert_carry_over(
        &self,
        request: Request<pb::ConvertCarryOverRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "ConvertCarryOver";
        let r = request.get_ref();
        let cancellation = self
            .ctx
            .account_of_kind(AccountType::Cancellation, "NO_CANCELLATION_ACCOUNT")
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let catalog = self.ctx.core.catalog.clone();
        self.ctx
            .registry_receipt(&request, m, Rpc::ConvertCarryOver, &[], || {
                let y = year(r.year)?;
                let unit = catalog.unit(&format!("CEA{y}")).ok_or_else(|| {
                    ApiError::not_found("UNKNOWN_UNIT", "year", format!("no unit CEA{y}"))
                })?;
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::ConvertCarryOver {
                        year: y,
                        unit,
                        cancellation,
                    },
                ))
            })
            .await
    }

    async fn get_carry_over(
        &self,
        request: Request<pb::GetCarryOverRequest>,
    ) -> Result<Response<pb::CarryOverQuota>, Status> {
        let m = "GetCarryOver";
        let r = *request.get_ref();
        let _call = self
            .ctx
            .begin(&request, m, Rpc::GetCarryOver, &[r.account_id])?;
        let (y, account) =
            (|| Ok::<_, ApiError>((year(r.year)?, id(r.account_id, "account_id")?)))()
                .map_err(|e| self.ctx.refuse(m, e))?;
        let quota = self
            .ctx
            .core
            .registry
            .read(move |reg| {
                reg.ledger()
                    .cycle
                    .quotas
                    .get(&(y, AccountId(account)))
                    .cloned()
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::not_found(
                        "CARRY_OVER_NOT_FIXED",
                        "account_id",
                        format!("no carry-over limit into {y} for account {account}"),
                    ),
                )
            })?;
        Ok(Response::new(pb::CarryOverQuota {
            year: r.year,
            account_id: account,
            plan_version: quota.plan_version,
            net_sales_t: quota.net_sales_t,
            formula_t: quota.formula_t,
            holdings_t: quota.holdings_t,
            limit_t: quota.limit_t,
            applied_t: quota.applied_t,
            barred: quota.barred,
        }))
    }
}
