//! VerificationService: the provinces' organisation of the verification of annual reports,
//! the bodies' review, the entities' objections (the registry's `verification`). The
//! acting province and body come from the caller's principal, never from the request;
//! dates are the exchange's local date, and the working-day windows are counted here from
//! the trading calendar's holidays and carried in the operation.

use ::registry::model::AccountId;
use ::registry::tx::Op;
use ::registry::verification::Stage;
use ::registry::verification::queue::{Filter, queue};

use proto::v1 as pb;
use proto::v1::verification_service_server::VerificationService;
use tonic::{Code, Request, Response, Status};

use crate::auth::{Principal, Role, Rpc};
use crate::calendar::working_days_after;
use crate::error::ApiError;
use crate::services::Ctx;
use crate::services::compliance::year;
use crate::services::convert::{id, idempotency_key};
use crate::services::emissions_convert::{decimal, month_number};
use crate::services::verification_convert as conv;

/// Most rows of one page of the queue.
pub const QUEUE_PAGE_MAX: u32 = 1_000;

/// Which working-day window of the year's rules.
type WindowDays = fn(&::registry::verification::Rules) -> u32;

#[derive(Clone, Debug)]
pub struct VerificationApi {
    pub ctx: Ctx,
}

/// The acting province: a province principal's, or "" (national) for the ministry.
fn province_of(p: &Principal) -> String {
    match p.role {
        Role::Province => p.province.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The acting body: the verifier's.
fn body_of(p: &Principal) -> Result<u32, ApiError> {
    p.body.ok_or_else(|| {
        let why = format!(
            "{} is staff of no verification body (`body` in the tokens file)",
            p.name
        );
        ApiError::new(Code::PermissionDenied, "BODY_NOT_ASSIGNED", "", why)
    })
}

/// Whose queue `p` sees: a province its entities, a body its assignments; the ministry
/// and auditors all, or the `province` and `body` they ask for (0: any).
pub fn queue_filter(p: &Principal, province: &str, body: u32) -> Result<Filter, ApiError> {
    let mut filter = Filter {
        province: (!province.is_empty()).then(|| province.to_string()),
        body: (body != 0).then_some(body),
    };
    match p.role {
        Role::Province if !province.is_empty() => {
            let why = "a province sees its own queue; leave province empty";
            return Err(ApiError::field("province", why));
        }
        Role::Province => filter.province = p.province.clone(),
        Role::Verifier if !province.is_empty() || body != 0 => {
            let why = "a body sees its own assignments; leave province and body empty";
            return Err(ApiError::field("province", why));
        }
        Role::Verifier => filter.body = Some(body_of(p)?),
        _ => {}
    }
    Ok(filter)
}

fn body_id(v: u32) -> Result<u32, ApiError> {
    if v == 0 {
        return Err(ApiError::field("body_id", "must be 1 or more"));
    }
    Ok(v)
}

fn rules_missing(year: u16) -> ApiError {
    let why = format!("no verification rules registered for {year}");
    ApiError::new(Code::NotFound, "VERIFICATION_RULES_MISSING", "year", why)
}

impl VerificationApi {
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

    /// A step of the file: authorized against `rpc`'s row, built from the principal and
    /// today's date.
    async fn step<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        account: u64,
        build: impl FnOnce(&Principal, u32) -> Result<(String, Op), ApiError>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.step_with_window(request, m, rpc, account, None, |p, date, _| build(p, date))
            .await
    }

    /// [`Self::step`] with the end of a working-day window of the year's rules (`pick`
    /// of year `window.0`), counted after authorization so an outsider learns nothing.
    async fn step_with_window<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        account: u64,
        window: Option<(u32, WindowDays)>,
        build: impl FnOnce(&Principal, u32, u32) -> Result<(String, Op), ApiError>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let call = self.ctx.begin(request, m, rpc, &[account])?;
        let until = match window {
            Some((y, pick)) => self.window(m, y, pick).await?,
            None => 0,
        };
        let today = self.ctx.today();
        let (key, op) = build(&call.principal, today, until).map_err(|e| self.ctx.refuse(m, e))?;
        let r = self
            .ctx
            .registry_tx(&call.principal, key, op)
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(pb::Receipt {
            journal_sequence: if r.outcome == ::registry::tx::Outcome::Unchanged {
                0
            } else {
                r.seq
            },
            ..pb::Receipt::default()
        }))
    }

    /// The `n` working days of the year's rules (`pick`) after today, or refused when the
    /// year has no rules.
    async fn window(&self, m: &'static str, y: u32, pick: WindowDays) -> Result<u32, Status> {
        let y = year(y).map_err(|e| self.ctx.refuse(m, e))?;
        let days = self
            .read(m, move |r| r.ledger().verification.rules_of(y).map(pick))
            .await?
            .ok_or_else(|| self.ctx.refuse(m, rules_missing(y)))?;
        Ok(working_days_after(
            self.ctx.today(),
            days,
            &self.ctx.holidays,
        ))
    }
}

#[tonic::async_trait]
impl VerificationService for VerificationApi {
    async fn register_verification_rules(
        &self,
        request: Request<pb::RegisterVerificationRulesRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let m = "RegisterVerificationRules";
        self.ctx
            .registry_receipt(&request, m, Rpc::RegisterVerificationRules, &[], || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::RegisterVerificationRules {
                        text: r.rules_toml.clone(),
                    },
                ))
            })
            .await
    }

    async fn register_body(
        &self,
        request: Request<pb::RegisterBodyRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.ctx
            .registry_receipt(&request, "RegisterBody", Rpc::RegisterBody, &[], || {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::RegisterBody {
                        body: body_id(r.body_id)?,
                        name: r.name.clone(),
                        credit_code: r.credit_code.clone(),
                    },
                ))
            })
            .await
    }

    async fn record_engagement(
        &self,
        request: Request<pb::RecordEngagementRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let (m, rpc) = ("RecordEngagement", Rpc::Assign);
        self.step(&request, m, rpc, r.account_id, |p, _| {
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::RecordEngagement {
                    year: year(r.year)?,
                    account: AccountId(id(r.account_id, "account_id")?),
                    body: body_id(r.body_id)?,
                    province: province_of(p),
                },
            ))
        })
        .await
    }

    async fn assign_body(
        &self,
        request: Request<pb::AssignBodyRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.step(
            &request,
            "AssignBody",
            Rpc::Assign,
            r.account_id,
            |p, date| {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::AssignBody {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        body: body_id(r.body_id)?,
                        province: province_of(p),
                        date,
                    },
                ))
            },
        )
        .await
    }

    async fn review_step(
        &self,
        request: Request<pb::ReviewStepRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.step(
            &request,
            "ReviewStep",
            Rpc::Review,
            r.account_id,
            |p, date| {
                let stage = match Stage::parse(&r.stage) {
                    Some(s @ (Stage::DocumentReview | Stage::OnSite)) => s,
                    _ => return Err(ApiError::field("stage", "document_review or on_site")),
                };
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::ReviewStep {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        body: body_of(p)?,
                        stage,
                        date,
                    },
                ))
            },
        )
        .await
    }

    async fn raise_finding(
        &self,
        request: Request<pb::RaiseFindingRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.step(
            &request,
            "RaiseFinding",
            Rpc::Review,
            r.account_id,
            |p, date| {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::RaiseFinding {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        body: body_of(p)?,
                        month: month_number(r.month)?,
                        target: conv::target_in(r)?,
                        text: r.text.clone(),
                        date,
                    },
                ))
            },
        )
        .await
    }

    async fn resolve_finding(
        &self,
        request: Request<pb::ResolveFindingRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.step(
            &request,
            "ResolveFinding",
            Rpc::Review,
            r.account_id,
            |p, date| {
                let estimate = match r.estimate.as_str() {
                    "" => None,
                    v => Some(decimal(v, "estimate")?),
                };
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::ResolveFinding {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        body: body_of(p)?,
                        finding: r.finding_id,
                        estimate,
                        date,
                    },
                ))
            },
        )
        .await
    }

    async fn conclude(
        &self,
        request: Request<pb::ConcludeRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        self.step(
            &request,
            "Conclude",
            Rpc::Review,
            r.account_id,
            |p, date| {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::Conclude {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        body: body_of(p)?,
                        date,
                    },
                ))
            },
        )
        .await
    }

    async fn notify(
        &self,
        request: Request<pb::NotifyRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "Notify";
        let r = request.get_ref();
        let window: WindowDays = |x| x.objection_working_days;
        let w = Some((r.year, window));
        self.step_with_window(
            &request,
            m,
            Rpc::Notify,
            r.account_id,
            w,
            |p, date, until| {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::Notify {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        province: province_of(p),
                        date,
                        objection_until: until,
                    },
                ))
            },
        )
        .await
    }

    async fn object(
        &self,
        request: Request<pb::ObjectRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let m = "Object";
        let r = request.get_ref();
        let window: WindowDays = |x| x.decision_working_days;
        let w = Some((r.year, window));
        self.step_with_window(
            &request,
            m,
            Rpc::Object,
            r.account_id,
            w,
            |_, date, decide_by| {
                Ok((
                    idempotency_key(&r.idempotency_key, "idempotency_key")?,
                    Op::Object {
                        year: year(r.year)?,
                        account: AccountId(id(r.account_id, "account_id")?),
                        reason: r.reason.clone(),
                        date,
                        decide_by,
                    },
                ))
            },
        )
        .await
    }

    async fn decide_objection(
        &self,
        request: Request<pb::DecideObjectionRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let r = request.get_ref();
        let m = "DecideObjection";
        self.step(&request, m, Rpc::Notify, r.account_id, |p, date| {
            Ok((
                idempotency_key(&r.idempotency_key, "idempotency_key")?,
                Op::DecideObjection {
                    year: year(r.year)?,
                    account: AccountId(id(r.account_id, "account_id")?),
                    province: province_of(p),
                    upheld: r.upheld,
                    reason: r.reason.clone(),
                    date,
                },
            ))
        })
        .await
    }

    async fn get_verification_file(
        &self,
        request: Request<pb::GetVerificationFileRequest>,
    ) -> Result<Response<pb::VerificationFile>, Status> {
        let m = "GetVerificationFile";
        let r = request.get_ref();
        let y = year(r.year).map_err(|e| self.ctx.refuse(m, e))?;
        let account = r.account_id;
        let call = self
            .ctx
            .begin_scoped(&request, m, Rpc::GetVerificationFile, &[account], y)
            .await?;
        drop(call);
        let tokens = self.ctx.tokens.clone();
        let found = self
            .read(m, move |reg| {
                let l = reg.ledger();
                let file = l.verification.file_of(y, AccountId(account))?;
                let view = conv::FileView {
                    year: y,
                    account,
                    name: l
                        .accounts
                        .get(&AccountId(account))
                        .map(|a| a.name.clone())
                        .unwrap_or_default(),
                    body: l.verification.bodies.get(&file.body),
                    file,
                };
                Some(conv::file_out(&view, &tokens))
            })
            .await?;
        found.map(Response::new).ok_or_else(|| {
            let why = format!("account {account} has no verification file for {y}");
            let e = ApiError::new(
                Code::NotFound,
                "VERIFICATION_FILE_MISSING",
                "account_id",
                why,
            );
            self.ctx.refuse(m, e)
        })
    }

    async fn list_verification_queue(
        &self,
        request: Request<pb::ListVerificationQueueRequest>,
    ) -> Result<Response<pb::ListVerificationQueueReply>, Status> {
        let m = "ListVerificationQueue";
        let call = self
            .ctx
            .begin(&request, m, Rpc::ListVerificationQueue, &[])?;
        let r = request.get_ref();
        let p = &call.principal;
        let (y, filter) = (|| {
            if r.page_size > QUEUE_PAGE_MAX {
                return Err(ApiError::field("page_size", "at most 1,000"));
            }
            Ok((year(r.year)?, queue_filter(p, &r.province, 0)?))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let today = self.ctx.today();
        let (offset, size) = (
            r.offset as usize,
            if r.page_size == 0 { 100 } else { r.page_size },
        );
        let reply = self
            .read(m, move |reg| {
                let rows = queue(reg.ledger(), y, &filter, today);
                pb::ListVerificationQueueReply {
                    total: rows.len() as u64,
                    rows: rows
                        .iter()
                        .skip(offset)
                        .take(size as usize)
                        .map(conv::queue_row_out)
                        .collect(),
                }
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn list_bodies(
        &self,
        request: Request<pb::ListBodiesRequest>,
    ) -> Result<Response<pb::ListBodiesReply>, Status> {
        let m = "ListBodies";
        let _call = self.ctx.begin(&request, m, Rpc::ListBodies, &[])?;
        let bodies = self
            .read(m, |reg| {
                let v = &reg.ledger().verification;
                v.bodies
                    .iter()
                    .map(|(id, b)| conv::body_out(*id, b))
                    .collect()
            })
            .await?;
        Ok(Response::new(pb::ListBodiesReply { bodies }))
    }
}
