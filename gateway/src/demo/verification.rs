//! Verification of the industrial entities' 2024 reports, as the provinces organise it
//! (MRV.md section 4): the ministry sets the year's rules and registers the national list
//! of bodies; each province assigns a body to each of its entities (a body that served an
//! entity as its consultant is refused, CONSULTANT_CONFLICT, and another one assigned); the
//! bodies review their files and check on site, where a few find something: a month the
//! entity corrects and resubmits, or a month the body estimates conservatively. The files
//! are concluded and the provinces notify them, which makes each conclusion the year's
//! verified emissions; those with findings took longer and are notified after the 31 July
//! deadline, flagged late. After the true-up one entity objects to its estimate, its
//! province upholds the objection, the body re-reviews and the changed conclusion claws the
//! difference back in the same transaction.
//!
//! Each phase is one date of the demo's calendar (`calendar.rs`), its steps sent
//! concurrently (different files).

use proto::v1 as pb;

use super::calendar::dates;
use super::year::Year;
use super::{BODY_TOKENS, PROVINCE_TOKENS, concurrently, fail};

pub(super) const RULES_2024: &str = include_str!("../../../registry/verification/2024.toml");
const YEAR: u32 = 2024;

/// The national list of verification bodies (made-up names).
pub(super) const BODIES: &[(u32, &str)] = &[
    (1, "Zhonghuan Verification Centre"),
    (2, "Huaxia Carbon Assurance"),
    (3, "Beifang Inspection and Testing"),
    (4, "Nanfang Low-Carbon Verification"),
    (5, "Xibu Quality Assurance"),
    (6, "Dongfang Carbon Services"),
];

/// The month a correction concerns, and the month a body estimates.
const CORRECTED_MONTH: u32 = 6;
const ESTIMATED_MONTH: u32 = 9;

/// What happened to one file on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Finding {
    None,
    /// The entity's weighbridge counted 2% too much: it corrects the month.
    Corrected,
    /// Invoices show 10% more than deposited: the body estimates the month.
    Estimated,
}

/// One industrial entity's file as the demo drives it.
#[derive(Clone, Debug)]
pub(super) struct File {
    account: u64,
    province: u64,
    body: u32,
    finding: Finding,
    /// The month the finding concerns, as deposited.
    month: pb::DepositMonthRequest,
}

/// The upheld objection: the entity, and its verified figure and allocation before and
/// after the re-review.
#[derive(Clone, Debug, Default)]
pub(super) struct Objection {
    pub account: u64,
    pub verified_t: (u64, u64),
    pub allocated_t: (u64, u64),
    pub clawed_back_t: u64,
}

/// What the report says of the verification besides what the files say.
#[derive(Clone, Debug, Default)]
pub(super) struct Outcome {
    /// Entities whose province first chose their consultant (refused).
    pub conflicts: usize,
    pub objection: Option<Objection>,
}

/// The enterprise-level row a finding names: limestone (steel), quarry diesel (cement),
/// natural gas (aluminium); the first row if the month has none of them.
fn target_row(month: &pb::DepositMonthRequest) -> Option<&pb::EmissionsRow> {
    month
        .rows
        .iter()
        .find(|r| {
            r.facility_id == 0
                && r.role == "consumed"
                && ["limestone", "diesel", "natural_gas"].contains(&r.item.as_str())
        })
        .or(month.rows.first())
}

/// A deposit's 2-place quantity scaled by `percent`, in the same format.
fn scaled(quantity: &str, percent: u64) -> String {
    let (whole, frac) = quantity.split_once('.').unwrap_or((quantity, "0"));
    let cents = whole.parse::<u64>().unwrap_or(0) * 100 + frac.parse::<u64>().unwrap_or(0);
    let out = cents * percent / 100;
    format!("{}.{:02}", out / 100, out % 100)
}

fn finding_request(f: &File, key: &str, text: &str) -> pb::RaiseFindingRequest {
    let row = target_row(&f.month).cloned().unwrap_or_default();
    pb::RaiseFindingRequest {
        idempotency_key: format!("{key}-{}", f.account),
        year: YEAR,
        account_id: f.account,
        month: f.month.month,
        facility_id: row.facility_id,
        role: row.role,
        item: row.item,
        text: text.into(),
        ..Default::default()
    }
}

/// The `estimate` (percent of the deposited quantity) of the file's latest finding.
async fn estimate_latest(
    mut body: client::Clients,
    f: &File,
    key: &str,
    percent: u64,
) -> Result<(), String> {
    let file = body
        .verification
        .get_verification_file(pb::GetVerificationFileRequest {
            year: YEAR,
            account_id: f.account,
        })
        .await
        .map_err(fail("verification file"))?
        .into_inner();
    let finding_id = file.findings.last().map_or(0, |x| x.id);
    let quantity = target_row(&f.month).map_or(String::new(), |r| r.quantity.clone());
    body.verification
        .resolve_finding(pb::ResolveFindingRequest {
            idempotency_key: format!("{key}-{}", f.account),
            year: YEAR,
            account_id: f.account,
            finding_id,
            estimate: scaled(&quantity, percent),
        })
        .await
        .map(drop)
        .map_err(fail("estimate"))
}

impl Year<'_> {
    /// The files of the industrial entities: province, body, finding.
    fn files(&mut self) -> Vec<File> {
        let industrial: Vec<_> = self
            .entities
            .iter()
            .filter_map(|e| e.accounting.as_ref().map(|a| (e, a)))
            .collect();
        // About one file in forty with each kind of finding, at least one of each.
        let n = industrial.len();
        let every = n.clamp(2, 40);
        industrial
            .iter()
            .enumerate()
            .map(|(i, (e, a))| {
                let finding = match i % every {
                    0 => Finding::Estimated,
                    r if r == every / 2 => Finding::Corrected,
                    _ => Finding::None,
                };
                let month = match finding {
                    Finding::Corrected => CORRECTED_MONTH,
                    _ => ESTIMATED_MONTH,
                };
                let province = super::market::PROVINCES
                    .iter()
                    .position(|p| *p == e.row.province)
                    .unwrap_or(0);
                File {
                    account: e.id,
                    province: PROVINCE_TOKENS + province as u64,
                    body: 1 + (e.id % BODIES.len() as u64) as u32,
                    finding,
                    month: a.months[month as usize - 1].clone(),
                }
            })
            .collect()
    }

    /// The ministry's rules and bodies; a few consultancies; each province assigns.
    async fn assign(&mut self, files: &mut [File]) -> Result<(), String> {
        self.clock.set(dates::ASSIGNED);
        let v = &mut self.who.ministry.verification;
        v.register_verification_rules(pb::RegisterVerificationRulesRequest {
            idempotency_key: format!("verification-rules-{YEAR}"),
            rules_toml: RULES_2024.into(),
        })
        .await
        .map_err(fail("verification rules"))?;
        for (id, name) in BODIES {
            v.register_body(pb::RegisterBodyRequest {
                idempotency_key: format!("body-{id}"),
                body_id: *id,
                name: (*name).into(),
                credit_code: String::new(),
            })
            .await
            .map_err(fail("register body"))?;
        }
        // Every 25th entity had its first-choice body as its consultant in 2024 (its
        // monitoring plan and report): its province must pick another.
        for f in files.iter_mut().step_by(25) {
            let mut province = self.who.of(f.province);
            province
                .verification
                .record_engagement(pb::RecordEngagementRequest {
                    idempotency_key: format!("engagement-{}", f.account),
                    year: YEAR,
                    account_id: f.account,
                    body_id: f.body,
                })
                .await
                .map_err(fail("engagement"))?;
            let refused = province
                .verification
                .assign_body(assignment(f.account, f.body))
                .await;
            match refused {
                Err(s)
                    if client::rejection_of(&s)
                        .is_some_and(|r| r.reason == "CONSULTANT_CONFLICT") => {}
                other => return Err(format!("a consultant assigned: {other:?}")),
            }
            f.body = 1 + f.body % BODIES.len() as u32;
            self.verification.conflicts += 1;
        }
        self.each(files, |mut c, f| async move {
            c.verification
                .assign_body(assignment(f.account, f.body))
                .await
                .map(drop)
                .map_err(fail("assign body"))
        })
        .await
    }

    /// Runs `step` for every file with the clients of its province (`by_province`) or of
    /// its body.
    async fn each_as<F, Fut>(
        &self,
        files: &[File],
        by_province: bool,
        step: F,
    ) -> Result<(), String>
    where
        F: Fn(client::Clients, File) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let work: Vec<(client::Clients, File)> = files
            .iter()
            .map(|f| {
                let n = if by_province {
                    f.province
                } else {
                    BODY_TOKENS + u64::from(f.body)
                };
                (self.who.of(n), f.clone())
            })
            .collect();
        concurrently(work, |(c, f)| step(c, f)).await
    }

    /// [`Self::each_as`] by the files' provinces.
    async fn each<F, Fut>(&self, files: &[File], step: F) -> Result<(), String>
    where
        F: Fn(client::Clients, File) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.each_as(files, true, step).await
    }

    /// The bodies' review: documents, the site, the findings and how they were resolved,
    /// the conclusions.
    async fn review(&mut self, files: &[File]) -> Result<(), String> {
        for (date, stage) in [
            (dates::DOCUMENT_REVIEW, "document_review"),
            (dates::ON_SITE, "on_site"),
        ] {
            self.clock.set(date);
            self.each_as(files, false, move |mut c, f| async move {
                c.verification
                    .review_step(pb::ReviewStepRequest {
                        idempotency_key: format!("{stage}-{}", f.account),
                        year: YEAR,
                        account_id: f.account,
                        stage: stage.into(),
                    })
                    .await
                    .map(drop)
                    .map_err(fail("review step"))
            })
            .await?;
        }
        let found: Vec<File> = files
            .iter()
            .filter(|f| f.finding != Finding::None)
            .cloned()
            .collect();
        self.clock.set(dates::FINDINGS);
        self.each_as(&found, false, |mut c, f| async move {
            let text = match f.finding {
                Finding::Corrected => "weighbridge slips: 2% less than deposited",
                _ => "purchase invoices: 10% more than deposited, not corrected",
            };
            c.verification
                .raise_finding(finding_request(&f, "finding", text))
                .await
                .map(drop)
                .map_err(fail("finding"))
        })
        .await?;
        self.correct(&found).await?;
        self.clock.set(dates::CONCLUDED);
        self.each_as(files, false, |mut c, f| async move {
            c.verification
                .conclude(pb::ConcludeRequest {
                    idempotency_key: format!("conclude-{}", f.account),
                    year: YEAR,
                    account_id: f.account,
                })
                .await
                .map(drop)
                .map_err(fail("conclude"))
        })
        .await
    }

    /// The entities with a correction deposit the month again and resubmit; the bodies
    /// accept the corrections and estimate the rest conservatively.
    async fn correct(&mut self, found: &[File]) -> Result<(), String> {
        self.clock.set(dates::CORRECTIONS);
        let corrected: Vec<File> = found
            .iter()
            .filter(|f| f.finding == Finding::Corrected)
            .cloned()
            .collect();
        let work: Vec<(client::Clients, File)> = corrected
            .iter()
            .map(|f| (self.who.of(f.account), f.clone()))
            .collect();
        concurrently(work, |(c, f)| corrected_month(c, f)).await?;
        self.clock.set(dates::RESOLVED);
        self.each_as(found, false, |mut c, f| async move {
            if f.finding == Finding::Estimated {
                return estimate_latest(c, &f, "estimate", 110).await;
            }
            c.verification
                .resolve_finding(pb::ResolveFindingRequest {
                    idempotency_key: format!("corrected-{}", f.account),
                    year: YEAR,
                    account_id: f.account,
                    finding_id: 1,
                    estimate: String::new(),
                })
                .await
                .map(drop)
                .map_err(fail("corrected"))
        })
        .await
    }

    /// The provinces notify: files without findings on time, the others late.
    async fn notify(&mut self, files: &[File]) -> Result<(), String> {
        for (date, with_findings) in [(dates::NOTIFIED, false), (dates::NOTIFIED_LATE, true)] {
            self.clock.set(date);
            let batch: Vec<File> = files
                .iter()
                .filter(|f| (f.finding != Finding::None) == with_findings)
                .cloned()
                .collect();
            self.each(&batch, |mut c, f| async move {
                c.verification
                    .notify(notify_request(f.account, "notify"))
                    .await
                    .map(drop)
                    .map_err(fail("notify"))
            })
            .await?;
        }
        Ok(())
    }

    /// The industrial entities' verification up to notification.
    pub(super) async fn verify(&mut self) -> Result<(), String> {
        let mut files = self.files();
        self.assign(&mut files).await?;
        self.review(&files).await?;
        self.notify(&files).await?;
        self.objector = files
            .iter()
            .find(|f| f.finding == Finding::Estimated)
            .cloned();
        self.progress.step(&format!(
            "verification: {} files assigned by their provinces to {} bodies, reviewed, \
             concluded and notified",
            files.len(),
            BODIES.len()
        ));
        Ok(())
    }

    /// After the true-up: the objection to an estimate, upheld; the re-review's new
    /// conclusion claws back the difference.
    pub(super) async fn objection(&mut self) -> Result<(), String> {
        let Some(f) = self.objector.take() else {
            return Ok(());
        };
        let before = self.compliance_of(f.account).await?;
        self.clock.set(dates::OBJECTION);
        self.who
            .of(f.account)
            .verification
            .object(pb::ObjectRequest {
                idempotency_key: format!("object-{}", f.account),
                year: YEAR,
                account_id: f.account,
                reason: "part of the invoiced quantity was resold to a neighbour".into(),
            })
            .await
            .map_err(fail("object"))?;
        self.clock.set(dates::DECISION);
        let mut province = self.who.of(f.province);
        province
            .verification
            .decide_objection(pb::DecideObjectionRequest {
                idempotency_key: format!("decide-{}", f.account),
                year: YEAR,
                account_id: f.account,
                upheld: true,
                reason: "resale documented: half of the difference stands".into(),
            })
            .await
            .map_err(fail("decide objection"))?;
        self.re_review(&f).await?;
        let after = self.compliance_of(f.account).await?;
        self.verification.objection = Some(Objection {
            account: f.account,
            verified_t: (before.obligation_t, after.obligation_t),
            allocated_t: (before.allocated_t, after.allocated_t),
            clawed_back_t: after.clawed_back_t - before.clawed_back_t.min(after.clawed_back_t),
        });
        Ok(())
    }

    /// Round 2: the body estimates again (5% over the deposit, not 10%), concludes, and
    /// the province notifies.
    async fn re_review(&mut self, f: &File) -> Result<(), String> {
        self.clock.set(dates::RE_REVIEW);
        let mut body = self.who.of(BODY_TOKENS + u64::from(f.body));
        body.verification
            .raise_finding(finding_request(f, "re-review", "re-review: 5% more"))
            .await
            .map_err(fail("re-review finding"))?;
        estimate_latest(body.clone(), f, "re-estimate", 105).await?;
        self.clock.set(dates::RE_CONCLUDED);
        body.verification
            .conclude(pb::ConcludeRequest {
                idempotency_key: format!("conclude-2-{}", f.account),
                year: YEAR,
                account_id: f.account,
            })
            .await
            .map_err(fail("conclude 2"))?;
        self.clock.set(dates::RE_NOTIFIED);
        self.who
            .of(f.province)
            .verification
            .notify(notify_request(f.account, "notify-2"))
            .await
            .map_err(fail("notify 2"))?;
        Ok(())
    }

    async fn compliance_of(&self, account: u64) -> Result<pb::EntityCompliance, String> {
        self.who
            .auditor
            .compliance
            .clone()
            .get_compliance(pb::GetComplianceRequest {
                year: YEAR,
                account_id: account,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(fail("compliance"))
    }
}

fn assignment(account: u64, body: u32) -> pb::AssignBodyRequest {
    pb::AssignBodyRequest {
        idempotency_key: format!("assign-{account}-{body}"),
        year: YEAR,
        account_id: account,
        body_id: body,
    }
}

fn notify_request(account: u64, key: &str) -> pb::NotifyRequest {
    pb::NotifyRequest {
        idempotency_key: format!("{key}-{account}"),
        year: YEAR,
        account_id: account,
    }
}

/// The entity deposits the month again with the weighbridge's 2% taken off the row the
/// finding names, and resubmits its report.
async fn corrected_month(mut c: client::Clients, f: File) -> Result<(), String> {
    let mut month = f.month.clone();
    month.idempotency_key = format!("correction-{}-{}", f.account, month.month);
    month.correction = true;
    let target = target_row(&f.month).cloned().unwrap_or_default();
    for row in &mut month.rows {
        if (row.facility_id, &row.role, &row.item)
            == (target.facility_id, &target.role, &target.item)
        {
            row.quantity = scaled(&row.quantity, 98);
        }
    }
    c.emissions
        .deposit_month(month)
        .await
        .map_err(fail("correction"))?;
    c.emissions
        .submit_report(pb::SubmitReportRequest {
            idempotency_key: format!("report-2-{}-{YEAR}", f.account),
            account_id: f.account,
            year: YEAR,
        })
        .await
        .map(drop)
        .map_err(fail("resubmit"))
}
