//! ComplianceService: the yearly cycle over gRPC. Requests become the registry's journaled
//! compliance transactions; every figure in a reply is read from the registry's own state
//! (`registry::cycle`), the same code the CSV reports and the dashboard use.

use std::collections::BTreeMap;
use std::str::FromStr;

use ::registry::compliance::{Plan, StatusCode};
use ::registry::cycle::{
    Activity, ActivityRow, DATA_ROWS_MAX, ENTITY_ROWS_MAX, EntityRow, FacilityKind, Fuel,
    VerifiedRow,
};
use ::registry::industry::{Process, SpecialCase};
use ::registry::ledger::Ledger;
use ::registry::model::{AccountId, AccountType, UnitId, UnitKind};
use ::registry::tx::{Op, Outcome};
use engine::{AccountId as EngineAccount, CommandKind};
use proto::v1 as pb;
use proto::v1::compliance_service_server::ComplianceService;
use rust_decimal::Decimal;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use crate::auth::Rpc;
use crate::error::ApiError;
use crate::services::Ctx;
use crate::services::convert::{
    compliance_status_out, id, idempotency_key, quantity, sector_in, sector_out,
};

/// Most rows of one ListCompliance page.
pub const COMPLIANCE_PAGE_MAX: u32 = 1_000;
/// Bytes of CSV in one ReportChunk.
pub const REPORT_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct ComplianceApi {
    pub ctx: Ctx,
}

pub(crate) fn year(v: u32) -> Result<u16, ApiError> {
    u16::try_from(v)
        .ok()
        .filter(|y| (2013..=2100).contains(y))
        .ok_or_else(|| ApiError::field("year", "must be a year from 2013 to 2100"))
}

fn row_error(row: usize, field: &str, why: impl Into<String>) -> ApiError {
    let field = format!("rows[{row}].{field}");
    let why = why.into();
    ApiError::new(
        Code::InvalidArgument,
        "INVALID_ROW",
        &field,
        format!("{field}: {why}"),
    )
}

fn decimal(row: usize, field: &str, text: &str) -> Result<Decimal, ApiError> {
    if text.is_empty() {
        return Err(row_error(row, field, "missing"));
    }
    if text.len() > 40 {
        return Err(row_error(row, field, "longer than 40 characters"));
    }
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_str(text))
        .map_err(|_| row_error(row, field, format!("{text:?} is not a decimal number")))
}

fn entity_row(i: usize, r: &pb::EntityRow) -> Result<EntityRow, ApiError> {
    if r.account_id == 0 {
        return Err(row_error(i, "account_id", "must be set (non-zero)"));
    }
    let sector = sector_in(r.sector, "sector")
        .map_err(|_| row_error(i, "sector", "must be a SECTOR_ value"))?;
    let mut facilities = Vec::with_capacity(r.facilities.len());
    for f in &r.facilities {
        let kind = match pb::FacilityKind::try_from(f.kind) {
            Ok(pb::FacilityKind::GeneratingUnit) => FacilityKind::Power {
                fuel: match pb::Fuel::try_from(f.fuel) {
                    Ok(pb::Fuel::Coal) => Fuel::Coal,
                    Ok(pb::Fuel::UnconventionalCoal) => Fuel::UnconventionalCoal,
                    Ok(pb::Fuel::Gas) => Fuel::Gas,
                    _ => return Err(row_error(i, "fuel", "must be a FUEL_ value")),
                },
                capacity_mw: f.capacity_mw,
            },
            Ok(pb::FacilityKind::ProductLine) => FacilityKind::Industry {
                product_line: f.product_line.clone(),
                process: match pb::IndustrialProcess::try_from(f.process) {
                    Ok(pb::IndustrialProcess::Ironmaking) => Process::Ironmaking,
                    Ok(pb::IndustrialProcess::Sintering) => Process::Sintering,
                    Ok(pb::IndustrialProcess::ClinkerLine) => Process::ClinkerLine,
                    Ok(pb::IndustrialProcess::Electrolysis) => Process::Electrolysis,
                    Ok(pb::IndustrialProcess::Other) => Process::Other,
                    _ => {
                        return Err(row_error(
                            i,
                            "process",
                            "a product line names its INDUSTRIAL_PROCESS_ value",
                        ));
                    }
                },
            },
            _ => {
                return Err(row_error(
                    i,
                    "facility_kind",
                    "must be a FACILITY_KIND_ value",
                ));
            }
        };
        facilities.push((f.facility_id, kind));
    }
    Ok(EntityRow {
        account: AccountId(r.account_id),
        name: r.name.clone(),
        sector,
        province: r.province.clone(),
        differentiated: r.differentiated,
        facilities,
        credit_code: r.credit_code.clone(),
    })
}

/// A generating unit's row: its four figures, none of a product line's.
fn power_activity(i: usize, r: &pb::ActivityRow) -> Result<Activity, ApiError> {
    for (field, set) in [
        ("pfc_co2e_t", !r.pfc_co2e_t.is_empty()),
        ("carbide_slag_rate", !r.carbide_slag_rate.is_empty()),
        ("special_case", r.special_case != 0),
    ] {
        if set {
            return Err(row_error(
                i,
                field,
                "only a product line (with output_t) reports it",
            ));
        }
    }
    Ok(Activity::Power {
        electricity_mwh: decimal(i, "electricity_mwh", &r.electricity_mwh)?,
        heat_gj: decimal(i, "heat_gj", &r.heat_gj)?,
        load_factor: decimal(i, "load_factor", &r.load_factor)?,
        emissions_t: decimal(i, "emissions_t", &r.emissions_t)?,
    })
}

/// A product line's row: its output, and its emissions, PFCs and carbide-slag rate where
/// given (empty: 0), and a special case if declared.
fn industry_activity(i: usize, r: &pb::ActivityRow) -> Result<Activity, ApiError> {
    for (field, v) in [
        ("electricity_mwh", &r.electricity_mwh),
        ("heat_gj", &r.heat_gj),
        ("load_factor", &r.load_factor),
    ] {
        if !v.is_empty() {
            return Err(row_error(
                i,
                field,
                "a generating unit's figure, not a product line's",
            ));
        }
    }
    let optional = |field: &'static str, v: &str| {
        if v.is_empty() {
            Ok(Decimal::ZERO)
        } else {
            decimal(i, field, v)
        }
    };
    Ok(Activity::Industry {
        output_t: decimal(i, "output_t", &r.output_t)?,
        emissions_t: optional("emissions_t", &r.emissions_t)?,
        pfc_co2e_t: optional("pfc_co2e_t", &r.pfc_co2e_t)?,
        carbide_slag_rate: optional("carbide_slag_rate", &r.carbide_slag_rate)?,
        special: special_case(i, r.special_case)?,
    })
}

fn special_case(i: usize, v: i32) -> Result<Option<SpecialCase>, ApiError> {
    Ok(match pb::SpecialCase::try_from(v) {
        Ok(pb::SpecialCase::None) => None,
        Ok(pb::SpecialCase::WhitePortlandClinker) => Some(SpecialCase::WhitePortlandClinker),
        Ok(pb::SpecialCase::GypsumSulfuricAcid) => Some(SpecialCase::GypsumSulfuricAcid),
        Ok(pb::SpecialCase::HydrogenRichBlastFurnace) => {
            Some(SpecialCase::HydrogenRichBlastFurnace)
        }
        Ok(pb::SpecialCase::ClosedBeforeAllocation) => Some(SpecialCase::ClosedBeforeAllocation),
        Ok(pb::SpecialCase::NewlyCommissioned) => Some(SpecialCase::NewlyCommissioned),
        Err(_) => {
            return Err(row_error(
                i,
                "special_case",
                "must be a SPECIAL_CASE_ value",
            ));
        }
    })
}

fn activity_row(i: usize, r: &pb::ActivityRow) -> Result<ActivityRow, ApiError> {
    let activity = if r.output_t.is_empty() {
        power_activity(i, r)?
    } else {
        industry_activity(i, r)?
    };
    Ok(ActivityRow {
        account: AccountId(r.account_id),
        facility: r.facility_id,
        activity,
    })
}

fn rows_limit(n: usize, max: usize) -> Result<(), ApiError> {
    if n == 0 || n > max {
        return Err(ApiError::field(
            "rows",
            format!("must hold 1 to {max} rows"),
        ));
    }
    Ok(())
}

/// One entity's compliance for a year, from the registry's state.
pub fn entity_compliance(
    ledger: &Ledger,
    year: u16,
    account: AccountId,
) -> Option<pb::EntityCompliance> {
    let e = ledger.cycle.entities.get(&account)?;
    let s = ledger.cycle.standing(year, account);
    let c = s.compliance();
    let status = c.status();
    let closing = s.closing;
    Some(pb::EntityCompliance {
        year: u32::from(year),
        account_id: account.0,
        name: ledger
            .accounts
            .get(&account)
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        sector: sector_out(e.sector) as i32,
        province: e.province.clone(),
        differentiated: e.differentiated,
        verified: c.obligation_t.is_some(),
        obligation_t: c.obligation_t.unwrap_or(0),
        verified_pfc_co2e_t: s.verified_pfc_t,
        surrendered_cea_t: c.surrendered_cea_t,
        surrendered_ccer_t: c.surrendered_ccer_t,
        shortfall_t: c.shortfall_t(),
        status: compliance_status_out(status) as i32,
        status_code: status.code().to_string(),
        pre_allocated_t: s.pre_t,
        trued_up: s.final_t.is_some(),
        allocated_t: s.final_t.unwrap_or(0),
        method: s.method.clone(),
        explanation: s.explanation.clone(),
        plan_version: s.plan_version.clone(),
        delivered_t: s.delivered_t,
        held_t: s.held_t,
        deducted_t: s.deducted_t,
        clawed_back_t: s.clawed_t,
        excess_owed_t: s.excess_owed_t,
        closed: closing.is_some(),
        forced_t: closing.map_or(0, |c| c.forced_t),
        released_t: closing.map_or(0, |c| c.released_t),
        penalty_fen: closing.map_or(0, |c| c.penalty_fen),
        deduction_owed_t: ledger.cycle.deductions.get(&account).copied().unwrap_or(0),
        credit_code: e.credit_code.clone(),
        emissions_source: emissions_source(ledger, year, account, &s).into(),
    })
}

/// "verification" when the verified figures are a notified verification conclusion's,
/// "report" when they are a confirmed report's, "loaded" when they were typed in
/// (historic years, or a figure recorded over the report), "" before either.
fn emissions_source(
    ledger: &Ledger,
    year: u16,
    account: AccountId,
    s: &registry::cycle::Standing,
) -> &'static str {
    let Some(co2_t) = s.verified_co2_t else {
        return "";
    };
    let figures = (co2_t, s.verified_pfc_t);
    let file = ledger.verification.files.get(&(year, account));
    let notified = file
        .filter(|f| f.notified.is_some())
        .and_then(|f| f.conclusion())
        .is_some_and(|c| (c.co2_t, c.pfc_co2e_t) == figures);
    if notified {
        return "verification";
    }
    match ledger.emissions.report_of(year, account) {
        Some(r) if r.confirmed_seq.is_some() && (r.co2_t, r.pfc_co2e_t) == figures => "report",
        _ => "loaded",
    }
}

/// Totals of a year by sector or province, from the registry's state.
pub fn totals(ledger: &Ledger, year: u16, by_province: bool) -> Vec<pb::Totals> {
    ledger
        .cycle
        .totals(year, by_province)
        .into_iter()
        .map(|(key, t)| pb::Totals {
            key,
            entities: t.entities,
            obligation_t: t.obligation_t,
            allocated_t: t.allocated_t,
            surrendered_t: t.surrendered_t,
            shortfall_t: t.shortfall_t,
            penalty_fen: t.penalty_fen,
            compliant: t.compliant,
            short: t.short,
            emissions_not_entered: t.emissions_not_entered,
        })
        .collect()
}

/// Filtered, ordered page of a year's entities.
pub fn list_compliance(
    ledger: &Ledger,
    r: &pb::ListComplianceRequest,
    year: u16,
) -> pb::ListComplianceReply {
    let mut rows: Vec<pb::EntityCompliance> = ledger
        .cycle
        .entities
        .iter()
        .filter(|(_, e)| {
            (r.sector == 0 || sector_out(e.sector) as i32 == r.sector)
                && (r.province.is_empty() || e.province == r.province)
        })
        .filter_map(|(account, _)| entity_compliance(ledger, year, *account))
        .filter(|c| r.status == 0 || c.status == r.status)
        .collect();
    match pb::ComplianceOrder::try_from(r.order) {
        Ok(pb::ComplianceOrder::Shortfall) => {
            rows.sort_by(|a, b| {
                b.shortfall_t
                    .cmp(&a.shortfall_t)
                    .then(a.account_id.cmp(&b.account_id))
            });
        }
        Ok(pb::ComplianceOrder::Obligation) => {
            rows.sort_by(|a, b| {
                b.obligation_t
                    .cmp(&a.obligation_t)
                    .then(a.account_id.cmp(&b.account_id))
            });
        }
        _ => {}
    }
    let total = rows.len() as u64;
    let size = if r.page_size == 0 { 100 } else { r.page_size } as usize;
    let rows = rows
        .into_iter()
        .skip(r.offset as usize)
        .take(size)
        .collect();
    pb::ListComplianceReply { rows, total }
}

/// The report as CSV, from the registry's state.
pub fn report_csv(ledger: &Ledger, year: u16, report: pb::Report) -> String {
    let names = || -> BTreeMap<AccountId, String> {
        ledger
            .cycle
            .entities
            .keys()
            .filter_map(|a| ledger.accounts.get(a).map(|x| (*a, x.name.clone())))
            .collect()
    };
    match report {
        pb::Report::Allocation => ledger.cycle.allocation_csv(year, &names()),
        pb::Report::Status => ledger.cycle.status_csv(year, &names()),
        pb::Report::SectorTotals => {
            ::registry::cycle::totals_csv("sector", &ledger.cycle.totals(year, false))
        }
        pb::Report::ProvinceTotals | pb::Report::Unspecified => {
            ::registry::cycle::totals_csv("province", &ledger.cycle.totals(year, true))
        }
    }
}

/// The volume-weighted average price of the calendar month before the deadline's month,
/// or of the latest earlier month with trades: (fen, YYYYMM).
pub fn average_price_before(bars: &[engine::DailyBar], deadline: u32) -> Option<(i64, u32)> {
    let month_of = |date: u32| date / 100;
    let deadline_month = month_of(deadline);
    let mut by_month: BTreeMap<u32, (i128, i128)> = BTreeMap::new();
    for b in bars
        .iter()
        .filter(|b| b.volume_t > 0 && month_of(b.date) < deadline_month)
    {
        let m = by_month.entry(month_of(b.date)).or_default();
        m.0 += i128::from(b.turnover_fen);
        m.1 += i128::from(b.volume_t);
    }
    let (month, (turnover, volume)) = by_month.into_iter().next_back()?;
    i64::try_from(turnover / volume).ok().map(|p| (p, month))
}

impl ComplianceApi {
    async fn receipt<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        accounts: &[u64],
        build: impl FnOnce() -> Result<(String, Op), ApiError>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.ctx
            .registry_receipt(request, m, rpc, accounts, build)
            .await
    }

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

    /// The registry account of a kind (the national authority, the retirement account).
    /// The price penalties of year `y` are computed at: the average of the month before
    /// its plan's deadline month (and that month).
    async fn penalty_price(&self, m: &'static str, y: u16) -> Result<(i64, u32), Status> {
        let deadline = self
            .read(m, move |reg| {
                reg.ledger()
                    .cycle
                    .years
                    .get(&y)
                    .and_then(|year| year.rules())
                    .map(|p| p.deadline)
            })
            .await?
            .ok_or_else(|| {
                self.ctx.refuse(
                    m,
                    ApiError::new(
                        Code::FailedPrecondition,
                        "YEAR_NOT_ADMINISTERED",
                        "year",
                        format!("{y} has no allocation plan"),
                    ),
                )
            })?;
        average_price_before(&self.ctx.core.hub.all_bars(), deadline).ok_or_else(|| {
            self.ctx.refuse(
                m,
                ApiError::new(
                    Code::FailedPrecondition,
                    "NO_PRICE_HISTORY",
                    "year",
                    format!("no trades before the deadline {deadline} to price penalties"),
                ),
            )
        })
    }

    /// The CEA unit of vintage `y` (created with its instrument).
    async fn cea_unit(&self, m: &'static str, y: u16) -> Result<UnitId, Status> {
        self.read(m, move |reg| {
            reg.ledger()
                .units
                .iter()
                .find(|(_, d)| d.kind == UnitKind::Cea && d.vintage == y)
                .map(|(u, _)| *u)
        })
        .await?
        .ok_or_else(|| {
            self.ctx.refuse(
                m,
                ApiError::new(
                    Code::FailedPrecondition,
                    "UNIT_NOT_CREATED",
                    "year",
                    format!("no CEA{y} unit: create it first (AdminService.CreateInstrument)"),
                ),
            )
        })
    }

    async fn account_of_kind(
        &self,
        m: &'static str,
        kind: AccountType,
        reason: &'static str,
    ) -> Result<AccountId, Status> {
        self.ctx
            .account_of_kind(kind, reason)
            .await
            .map_err(|e| self.ctx.refuse(m, e))
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found("NOT_FOUND", "account_id", format!("{what} not found"))
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    async fn register_plan(
        &self,
        request: Request<pb::RegisterPlanRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.receipt(&request, "RegisterPlan", Rpc::RegisterPlan, &[], || {
            let plan = Plan::from_toml(&r.plan_toml).map_err(|e| {
                ApiError::new(
                    Code::InvalidArgument,
                    "INVALID_PLAN",
                    &format!("plan_toml.{}", e.key),
                    e.to_string(),
                )
            })?;
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::RegisterPlan {
                    plan: Box::new(plan),
                },
            ))
        })
        .await
    }

    async fn get_plan(
        &self,
        request: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::GetPlanReply>, Status> {
        let m = "GetPlan";
        let _call = self.ctx.begin(&request, m, Rpc::GetPlan, &[])?;
        let r = request.into_inner();
        let y = year(r.year).map_err(|e| self.ctx.refuse(m, e))?;
        let found = self
            .read(m, move |reg| {
                let year = reg.ledger().cycle.years.get(&y)?;
                let plan = if r.plan_version.is_empty() {
                    year.rules()
                } else {
                    year.plan(&r.plan_version)
                }?;
                Some(pb::GetPlanReply {
                    plan_toml: plan.to_toml(),
                    versions: year.plans.iter().map(|p| p.version.clone()).collect(),
                })
            })
            .await?;
        found.map(Response::new).ok_or_else(|| {
            self.ctx.refuse(
                m,
                ApiError::not_found(
                    "PLAN_NOT_FOUND",
                    "plan_version",
                    "no such plan for that year",
                ),
            )
        })
    }

    async fn load_entities(
        &self,
        request: Request<pb::LoadEntitiesRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "LoadEntities";
        let call = self.ctx.begin(&request, m, Rpc::LoadEntities, &[])?;
        let r = request.into_inner();
        let (key, rows) = (|| {
            let key = idempotency_key(&r.idempotency_key, "idempotency_key")?;
            rows_limit(r.rows.len(), ENTITY_ROWS_MAX)?;
            let rows = r
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| entity_row(i, row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ApiError>((key, rows))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let accounts: Vec<u64> = rows.iter().map(|r| r.account.0).collect();
        let receipt = self
            .ctx
            .registry_tx(&call.principal, key, Op::LoadEntities { rows })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        // Each covered entity trades on its own account: open the missing ones at the
        // exchange (a retry re-drives them; existing ones are left alone).
        let mut pending = Vec::with_capacity(accounts.len());
        for account in accounts {
            let rx = self
                .ctx
                .core
                .submit(CommandKind::OpenAccount {
                    account: EngineAccount(account),
                    stp: engine::StpMode::default(),
                })
                .map_err(|e| self.ctx.refuse(m, e))?;
            pending.push(rx);
        }
        let mut engine_sequence = 0;
        for rx in pending {
            let applied = rx.await.map_err(|_| {
                self.ctx
                    .refuse(m, ApiError::unavailable("the engine stopped"))
            })?;
            match applied.rejection() {
                None | Some(engine::Reject::AccountExists) => {
                    engine_sequence = engine_sequence.max(applied.seq);
                }
                Some(reason) => return Err(self.ctx.refuse(m, ApiError::engine(reason))),
            }
        }
        Ok(Response::new(pb::Receipt {
            journal_sequence: receipt.seq,
            engine_sequence,
            ..pb::Receipt::default()
        }))
    }

    async fn load_activity(
        &self,
        request: Request<pb::LoadActivityRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.receipt(&request, "LoadActivity", Rpc::LoadActivity, &[], || {
            let key = idempotency_key(&r.idempotency_key, "idempotency_key")?;
            let year = year(r.year)?;
            rows_limit(r.rows.len(), DATA_ROWS_MAX)?;
            let rows = r
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| activity_row(i, row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((key, Op::LoadActivity { year, rows }))
        })
        .await
    }

    async fn record_verified(
        &self,
        request: Request<pb::RecordVerifiedRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.receipt(&request, "RecordVerified", Rpc::RecordVerified, &[], || {
            let key = idempotency_key(&r.idempotency_key, "idempotency_key")?;
            let year = year(r.year)?;
            rows_limit(r.rows.len(), DATA_ROWS_MAX)?;
            let rows = r
                .rows
                .iter()
                .map(|row| VerifiedRow {
                    account: AccountId(row.account_id),
                    co2_t: row.co2_t,
                    pfc_co2e_t: row.pfc_co2e_t,
                })
                .collect();
            Ok((key, Op::RecordVerified { year, rows }))
        })
        .await
    }

    async fn run_allocation(
        &self,
        request: Request<pb::RunAllocationRequest>,
    ) -> Result<Response<pb::RunAllocationReply>, Status> {
        let m = "RunAllocation";
        let call = self.ctx.begin(&request, m, Rpc::RunAllocation, &[])?;
        let r = request.into_inner();
        let (key, y, kind) = run_request(&r).map_err(|e| self.ctx.refuse(m, e))?;
        let authority = self
            .account_of_kind(m, AccountType::NationalAuthority, "NO_AUTHORITY_ACCOUNT")
            .await?;
        let unit = self.cea_unit(m, y).await?;
        let plan_version = r.plan_version.clone();
        let op = match kind {
            pb::RunKind::PreAllocation => Op::PreAllocate {
                year: y,
                plan_version,
                unit,
                authority,
            },
            _ => Op::TrueUp {
                year: y,
                plan_version,
                unit,
                authority,
            },
        };
        let receipt = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let pre = kind == pb::RunKind::PreAllocation;
        let mut reply = self
            .read(m, move |reg| run_summary(reg.ledger(), y, unit, pre))
            .await?;
        reply.journal_sequence = if receipt.outcome == Outcome::Unchanged {
            0
        } else {
            receipt.seq
        };
        reply.unchanged = receipt.outcome == Outcome::Unchanged;
        Ok(Response::new(reply))
    }

    async fn surrender(
        &self,
        request: Request<pb::SurrenderRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "Surrender";
        let r = request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::Surrender, &[r.account_id])?;
        let (key, account, unit, quantity_t, y) = (|| {
            Ok::<_, ApiError>((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                id(r.account_id, "account_id")?,
                self.ctx.core.catalog.unit(&r.unit).ok_or_else(|| {
                    ApiError::not_found("UNKNOWN_UNIT", "unit", format!("no unit {:?}", r.unit))
                })?,
                quantity(r.quantity_t, "quantity_t")?,
                year(r.year)?,
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let retirement = self
            .account_of_kind(m, AccountType::Retirement, "NO_RETIREMENT_ACCOUNT")
            .await?;
        let rec = self
            .ctx
            .registry_tx(
                &call.principal,
                key,
                Op::Surrender {
                    account: AccountId(account),
                    retirement,
                    unit,
                    quantity_t,
                    year: y,
                },
            )
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::Receipt {
            journal_sequence: rec.seq,
            ..pb::Receipt::default()
        }))
    }

    async fn get_compliance(
        &self,
        request: Request<pb::GetComplianceRequest>,
    ) -> Result<Response<pb::EntityCompliance>, Status> {
        let m = "GetCompliance";
        let account = request.get_ref().account_id;
        let _call = self
            .ctx
            .begin_scoped(&request, m, Rpc::GetCompliance, &[account], 0)
            .await?;
        let y = year(request.get_ref().year).map_err(|e| self.ctx.refuse(m, e))?;
        self.read(m, move |reg| {
            entity_compliance(reg.ledger(), y, AccountId(account))
        })
        .await?
        .map(Response::new)
        .ok_or_else(|| self.ctx.refuse(m, not_found("covered entity")))
    }

    async fn list_compliance(
        &self,
        request: Request<pb::ListComplianceRequest>,
    ) -> Result<Response<pb::ListComplianceReply>, Status> {
        let m = "ListCompliance";
        let _call = self.ctx.begin(&request, m, Rpc::ListCompliance, &[])?;
        let r = request.into_inner();
        let y = (|| {
            if r.page_size > COMPLIANCE_PAGE_MAX {
                return Err(ApiError::field("page_size", "at most 1,000"));
            }
            if r.sector != 0 {
                sector_in(r.sector, "sector")?;
            }
            if r.status != 0 && pb::ComplianceStatus::try_from(r.status).is_err() {
                return Err(ApiError::field(
                    "status",
                    "must be a COMPLIANCE_STATUS_ value",
                ));
            }
            if pb::ComplianceOrder::try_from(r.order).is_err() {
                return Err(ApiError::field(
                    "order",
                    "must be a COMPLIANCE_ORDER_ value",
                ));
            }
            year(r.year)
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        self.read(m, move |reg| list_compliance(reg.ledger(), &r, y))
            .await
            .map(Response::new)
    }

    async fn get_totals(
        &self,
        request: Request<pb::GetTotalsRequest>,
    ) -> Result<Response<pb::GetTotalsReply>, Status> {
        let m = "GetTotals";
        let _call = self.ctx.begin(&request, m, Rpc::GetTotals, &[])?;
        let r = request.into_inner();
        let (y, by_province) = (|| {
            let by = match pb::TotalsBy::try_from(r.by) {
                Ok(pb::TotalsBy::Sector) => false,
                Ok(pb::TotalsBy::Province) => true,
                _ => return Err(ApiError::field("by", "must be a TOTALS_BY_ value")),
            };
            Ok((year(r.year)?, by))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let rows = self
            .read(m, move |reg| totals(reg.ledger(), y, by_province))
            .await?;
        Ok(Response::new(pb::GetTotalsReply { rows }))
    }

    async fn close_year(
        &self,
        request: Request<pb::CloseYearRequest>,
    ) -> Result<Response<pb::CloseYearReply>, Status> {
        let m = "CloseYear";
        let call = self.ctx.begin(&request, m, Rpc::CloseYear, &[])?;
        let r = request.into_inner();
        let key = idempotency_key(&r.idempotency_key, "idempotency_key");
        let (key, y, forced_reason) = key
            .and_then(|key| Ok((key, year(r.year)?, force_reason(&r.force_reason)?)))
            .map_err(|e| self.ctx.refuse(m, e))?;
        let (average_price_fen, price_month) = self.penalty_price(m, y).await?;
        let retirement = self
            .account_of_kind(m, AccountType::Retirement, "NO_RETIREMENT_ACCOUNT")
            .await?;
        let receipt = self
            .ctx
            .registry_tx(
                &call.principal,
                key,
                Op::CloseYear {
                    year: y,
                    average_price_fen,
                    retirement,
                    date: self.ctx.today(),
                    forced_reason,
                },
            )
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let mut reply = self
            .read(m, move |reg| close_summary(reg.ledger(), y))
            .await?;
        reply.journal_sequence = receipt.seq;
        if reply.average_price_fen == average_price_fen {
            reply.price_month = price_month;
        }
        Ok(Response::new(reply))
    }

    type ExportReportStream = ReceiverStream<Result<pb::ReportChunk, Status>>;

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<Self::ExportReportStream>, Status> {
        let m = "ExportReport";
        let _call = self.ctx.begin(&request, m, Rpc::ExportReport, &[])?;
        let r = request.into_inner();
        let (y, report) = (|| {
            let report = match pb::Report::try_from(r.report) {
                Ok(pb::Report::Unspecified) | Err(_) => {
                    return Err(ApiError::field("report", "must be a REPORT_ value"));
                }
                Ok(report) => report,
            };
            Ok((year(r.year)?, report))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let csv = self
            .read(m, move |reg| report_csv(reg.ledger(), y, report))
            .await?;
        let chunks: Vec<Vec<u8>> = csv
            .into_bytes()
            .chunks(REPORT_CHUNK_BYTES)
            .map(<[u8]>::to_vec)
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(chunks.len().max(1));
        for csv in chunks {
            let _ = tx.try_send(Ok(pb::ReportChunk { csv }));
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// What a run left for a year: entities, allocated, issued, held, deducted, clawed back.
/// A run request's fields: (idempotency key, year, kind).
fn run_request(r: &pb::RunAllocationRequest) -> Result<(String, u16, pb::RunKind), ApiError> {
    let key = idempotency_key(&r.idempotency_key, "idempotency_key")?;
    let y = year(r.year)?;
    if r.plan_version.is_empty() {
        return Err(ApiError::field("plan_version", "must be set"));
    }
    let kind = match pb::RunKind::try_from(r.kind) {
        Ok(k @ (pb::RunKind::PreAllocation | pb::RunKind::TrueUp)) => k,
        _ => return Err(ApiError::field("kind", "must be a RUN_KIND_ value")),
    };
    Ok((key, y, kind))
}

/// An early close's reason: empty for none; otherwise 1 to 256 bytes, not blank.
fn force_reason(text: &str) -> Result<Option<String>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    registry::cycle::check_force_reason(text).map_err(|e| ApiError::registry(&e))?;
    Ok(Some(text.to_owned()))
}

/// What a year's close did, summed over its entities.
fn close_summary(ledger: &Ledger, y: u16) -> pb::CloseYearReply {
    let c = &ledger.cycle;
    let mut out = pb::CloseYearReply::default();
    for account in c.entities.keys() {
        let Some(closing) = c.standing(y, *account).closing else {
            continue;
        };
        out.entities += 1;
        match closing.status {
            StatusCode::Compliant => out.compliant += 1,
            StatusCode::Short => out.short += 1,
            StatusCode::EmissionsNotEntered => out.emissions_not_entered += 1,
        }
        out.shortfall_t += closing.shortfall_t;
        out.penalty_fen += closing.penalty_fen;
        out.forced_t += closing.forced_t;
        out.released_t += closing.released_t;
    }
    if let Some(close) = c.years.get(&y).and_then(|year| year.closed.as_ref()) {
        out.average_price_fen = close.average_price_fen;
        out.close_date = close.date;
        out.force_reason = close.forced_reason.clone().unwrap_or_default();
    }
    out
}

fn run_summary(ledger: &Ledger, year: u16, unit: UnitId, pre: bool) -> pb::RunAllocationReply {
    let mut reply = pb::RunAllocationReply {
        issued_t: ledger.issued.get(&unit).copied().unwrap_or(0),
        ..pb::RunAllocationReply::default()
    };
    for account in ledger.cycle.entities.keys() {
        let s = ledger.cycle.standing(year, *account);
        let allocated = if pre {
            s.pre_done.then_some(s.pre_t)
        } else {
            s.final_t
        };
        if let Some(a) = allocated {
            reply.entities += 1;
            reply.allocated_t += a;
        }
        reply.held_t += s.held_t;
        reply.deducted_t += s.deducted_t;
        reply.clawed_back_t += s.clawed_t;
    }
    reply
}
