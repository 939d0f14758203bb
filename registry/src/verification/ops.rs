//! The verification operations on the ledger, each checked in full before anything changes.
//! A province acts on the entities of its jurisdiction (an empty province is the ministry,
//! national); a body acts on the files assigned to it.

use mrv::month::QUANTITY_MAX;
use rust_decimal::Decimal;

use super::rules::{RULES_VERSIONS_MAX, Rules, RulesRecord};
use super::{
    BODIES_MAX, Body, Conclusion, Decision, ENGAGEMENTS_PER_YEAR_MAX, FINDINGS_MAX, File, Finding,
    Objection, ROUNDS_MAX, Resolution, STEPS_MAX, Stage, Step, Target, VERIFICATION_TEXT_BYTES_MAX,
    VerificationCode as Code,
};
use crate::emissions::FacilityFigures;
use crate::emissions::ops::Figures;
use crate::error::RegistryError;
use crate::ledger::Ledger;
use crate::model::AccountId;
use crate::plans::valid_date;
use crate::tx::Outcome;

pub(crate) fn verification_err(
    code: Code,
    field: impl Into<String>,
    why: impl Into<String>,
) -> RegistryError {
    RegistryError::Verification {
        code,
        field: field.into(),
        why: why.into(),
    }
}

fn text(field: &str, t: &str) -> Result<(), RegistryError> {
    if t.trim().is_empty() || t.len() > VERIFICATION_TEXT_BYTES_MAX {
        let why = format!("1 to {VERIFICATION_TEXT_BYTES_MAX} bytes");
        return Err(verification_err(Code::InvalidData, field, why));
    }
    Ok(())
}

fn date(field: &str, d: u32) -> Result<(), RegistryError> {
    if !valid_date(d) {
        return Err(verification_err(
            Code::InvalidData,
            field,
            "a date YYYYMMDD",
        ));
    }
    Ok(())
}

fn stage_err(file: &File, wants: &str) -> RegistryError {
    let why = format!("the file is {}; this step needs {wants}", file.stage.name());
    verification_err(Code::WrongStage, "account_id", why)
}

/// A submission, and the factors, plan and months it was computed from.
type ReportInputs<'a> = (
    &'a crate::emissions::Submission,
    &'a mrv::factors::Factors,
    &'a mrv::plan::Dqcp,
    Vec<mrv::month::Month>,
);

/// Who takes a step, for the file's history.
#[derive(Clone, Copy, Debug)]
pub(crate) struct By {
    pub actor: u64,
    pub seq: u64,
    pub date: u32,
}

impl Ledger {
    /// Registers a year's rules; the same version again with the same text changes nothing.
    pub(crate) fn register_verification_rules(
        &mut self,
        seq: u64,
        text: &str,
    ) -> Result<Outcome, RegistryError> {
        let rules = Rules::from_toml(text)
            .map_err(|e| verification_err(Code::InvalidData, format!("rules.{}", e.key), e.why))?;
        let versions = self.verification.rules.get(&rules.year);
        let versions = versions.map_or(&[][..], Vec::as_slice);
        if let Some(same) = versions.iter().find(|r| r.rules.version == rules.version) {
            if same.text == text {
                return Ok(Outcome::Unchanged);
            }
            let why = format!("version {} is registered with other values", rules.version);
            return Err(verification_err(Code::InvalidData, "rules.version", why));
        }
        if versions.len() >= RULES_VERSIONS_MAX {
            let why = format!("at most {RULES_VERSIONS_MAX} versions");
            return Err(verification_err(Code::TooMany, "rules", why));
        }
        let year = rules.year;
        let record = RulesRecord {
            rules,
            text: text.into(),
            seq,
        };
        self.verification
            .rules
            .entry(year)
            .or_default()
            .push(record);
        self.dirty.verification.rules.insert(year);
        Ok(Outcome::Done)
    }

    /// Registers a verification body, or renames one.
    pub(crate) fn register_body(
        &mut self,
        seq: u64,
        body: u32,
        name: &str,
        credit_code: &str,
    ) -> Result<Outcome, RegistryError> {
        if body == 0 {
            return Err(verification_err(Code::InvalidData, "body_id", "1 or more"));
        }
        text("name", name)?;
        if credit_code.len() > 18 || !credit_code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let why = "the 18-character unified social credit code, or empty";
            return Err(verification_err(Code::InvalidData, "credit_code", why));
        }
        let known = self.verification.bodies.get(&body);
        if known.is_some_and(|b| b.name == name && b.credit_code == credit_code) {
            return Ok(Outcome::Unchanged);
        }
        if known.is_none() && self.verification.bodies.len() >= BODIES_MAX {
            let why = format!("at most {BODIES_MAX} bodies");
            return Err(verification_err(Code::TooMany, "body_id", why));
        }
        let record = Body {
            name: name.into(),
            credit_code: credit_code.into(),
            seq,
        };
        self.verification.bodies.insert(body, record);
        self.dirty.verification.bodies.insert(body);
        Ok(Outcome::Done)
    }

    fn body_known(&self, body: u32) -> Result<(), RegistryError> {
        if !self.verification.bodies.contains_key(&body) {
            let why = format!("no verification body {body}");
            return Err(verification_err(Code::BodyUnknown, "body_id", why));
        }
        Ok(())
    }

    /// The entity, if it is in `province`'s jurisdiction (an empty province: national).
    fn in_jurisdiction(
        &self,
        account: AccountId,
        province: &str,
    ) -> Result<crate::model::Sector, RegistryError> {
        let entity = self
            .cycle
            .entities
            .get(&account)
            .ok_or(RegistryError::NotCovered(account.0))?;
        if !province.is_empty() && entity.province != province {
            let why = format!(
                "account {} is an entity of {}, not of {province}",
                account.0, entity.province
            );
            return Err(verification_err(
                Code::OutsideJurisdiction,
                "account_id",
                why,
            ));
        }
        Ok(entity.sector)
    }

    /// Records that `body` served `account` as its technical service body in `year`: it
    /// may then verify neither that year nor the next.
    pub(crate) fn record_engagement(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        province: &str,
    ) -> Result<Outcome, RegistryError> {
        self.in_jurisdiction(account, province)?;
        self.body_known(body)?;
        let key = (year, account, body);
        if self.verification.engagements.contains(&key) {
            return Ok(Outcome::Unchanged);
        }
        for y in [year, year.saturating_add(1)] {
            if self
                .verification
                .file_of(y, account)
                .is_some_and(|f| f.body == body)
            {
                let why = format!("body {body} verifies account {} for {y}", account.0);
                return Err(verification_err(Code::ConsultantConflict, "body_id", why));
            }
        }
        let in_year = self
            .verification
            .engagements
            .range((year, AccountId(0), 0)..=(year, AccountId(u64::MAX), u32::MAX))
            .count();
        if in_year >= ENGAGEMENTS_PER_YEAR_MAX {
            let why = format!("at most {ENGAGEMENTS_PER_YEAR_MAX} engagements a year");
            return Err(verification_err(Code::TooMany, "year", why));
        }
        self.verification.engagements.insert(key);
        self.dirty.verification.engagements.insert(key);
        Ok(Outcome::Done)
    }

    /// Whether a step of `account`'s year taken on `date` is past the notification
    /// deadline of the year's rules (none registered: nothing is flagged).
    fn late(&self, year: u16, account: AccountId, on: u32) -> bool {
        let sector = self.cycle.entities.get(&account).map(|e| e.sector);
        match (self.verification.rules_of(year), sector) {
            (Some(rules), Some(sector)) => on > rules.notified_by(sector),
            _ => false,
        }
    }

    fn push_step(file: &mut File, what: String, by: By, late: bool) -> Result<(), RegistryError> {
        if file.steps.len() >= STEPS_MAX {
            let why = format!("at most {STEPS_MAX} steps");
            return Err(verification_err(Code::TooMany, "account_id", why));
        }
        file.steps.push(Step {
            what,
            actor: by.actor,
            seq: by.seq,
            date: by.date,
            late,
        });
        Ok(())
    }

    fn save_file(&mut self, year: u16, account: AccountId, file: File) {
        self.verification.files.insert((year, account), file);
        self.dirty.verification.files.insert((year, account));
    }

    /// The province assigns a body to an entity's submitted report (or another body,
    /// before the review has started).
    pub(crate) fn assign_body(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        province: &str,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        self.in_jurisdiction(account, province)?;
        self.body_known(body)?;
        if self.emissions.report_of(year, account).is_none() {
            let why = format!("account {} submitted no report for {year}", account.0);
            let code = crate::emissions::EmissionsCode::ReportMissing;
            return Err(crate::emissions::ops::emissions_err(code, "year", why));
        }
        if self.verification.consulted(year, account, body) {
            let why = format!(
                "body {body} served account {} as technical service body in {} or {year}",
                account.0,
                year.saturating_sub(1)
            );
            return Err(verification_err(Code::ConsultantConflict, "body_id", why));
        }
        let entity_province = self
            .cycle
            .entities
            .get(&account)
            .map(|e| e.province.clone());
        let mut file = match self.verification.file_of(year, account) {
            None => File {
                body,
                province: entity_province.unwrap_or_default(),
                stage: Stage::Assigned,
                round: 1,
                findings: Vec::new(),
                conclusions: Vec::new(),
                notified: None,
                objection: None,
                steps: Vec::new(),
            },
            Some(f) if f.stage == Stage::Assigned => {
                if f.body == body {
                    return Ok(Outcome::Unchanged);
                }
                f.clone()
            }
            Some(f) => {
                return Err(stage_err(
                    f,
                    "assigned (a body is reassigned before review)",
                ));
            }
        };
        file.body = body;
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, format!("assigned to body {body}"), by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The entity's file for the year (a copy, to change and save), or why not.
    fn file(&self, year: u16, account: AccountId) -> Result<File, RegistryError> {
        let Some(file) = self.verification.file_of(year, account) else {
            let why = format!("no body is assigned to account {} for {year}", account.0);
            return Err(verification_err(Code::FileMissing, "account_id", why));
        };
        Ok(file.clone())
    }

    /// The assigned body's file, or why not.
    fn body_file(&self, year: u16, account: AccountId, body: u32) -> Result<File, RegistryError> {
        let file = self.file(year, account)?;
        if file.body != body {
            let why = format!(
                "account {}'s {year} verification is assigned to body {}, not {body}",
                account.0, file.body
            );
            return Err(verification_err(Code::NotAssigned, "account_id", why));
        }
        Ok(file)
    }

    /// The body starts its document review, or records its on-site check.
    pub(crate) fn review_step(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        stage: Stage,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        let mut file = self.body_file(year, account, body)?;
        let (from, what) = match stage {
            Stage::DocumentReview => (Stage::Assigned, "document review started"),
            Stage::OnSite => (Stage::DocumentReview, "on-site check made"),
            _ => {
                let why = "document_review or on_site";
                return Err(verification_err(Code::InvalidData, "stage", why));
            }
        };
        if file.stage == stage {
            return Ok(Outcome::Unchanged);
        }
        if file.stage != from {
            return Err(stage_err(&file, from.name()));
        }
        file.stage = stage;
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, what.into(), by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The body records a non-conformity of one month's parameter.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn raise_finding(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        month: u8,
        target: &Target,
        what: &str,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        text("text", what)?;
        if !(1..=12).contains(&month) {
            return Err(verification_err(Code::InvalidData, "month", "1 to 12"));
        }
        if let Target::Row { item, .. } = target {
            text("item", item)?;
        }
        let mut file = self.body_file(year, account, body)?;
        if !matches!(file.stage, Stage::DocumentReview | Stage::OnSite) {
            return Err(stage_err(&file, "document_review or on_site"));
        }
        if file.findings.len() >= FINDINGS_MAX {
            let why = format!("at most {FINDINGS_MAX} findings");
            return Err(verification_err(Code::TooMany, "findings", why));
        }
        let reports = self
            .emissions
            .reports
            .get(&(year, account))
            .map_or(0, Vec::len);
        let id = file.findings.len() as u32 + 1;
        file.findings.push(Finding {
            id,
            round: file.round,
            month,
            target: target.clone(),
            text: what.into(),
            reports_at_raise: reports as u32,
            raised_seq: by.seq,
            resolution: None,
        });
        let step = format!("finding {id}: {} of month {month}", target.describe());
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, step, by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The body closes a finding: corrected (the entity resubmitted its report since), or
    /// estimated conservatively at `estimate` (the month's figure the conclusion uses).
    pub(crate) fn resolve_finding(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        finding: u32,
        estimate: Option<Decimal>,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        let mut file = self.body_file(year, account, body)?;
        if !matches!(file.stage, Stage::DocumentReview | Stage::OnSite) {
            return Err(stage_err(&file, "document_review or on_site"));
        }
        let Some(i) = file.findings.iter().position(|f| f.id == finding) else {
            let why = format!("the file has no finding {finding}");
            return Err(verification_err(Code::FindingUnknown, "finding_id", why));
        };
        if file.findings[i].resolution.is_some() {
            let why = format!("finding {finding} is resolved already");
            return Err(verification_err(Code::InvalidData, "finding_id", why));
        }
        let reports = self
            .emissions
            .reports
            .get(&(year, account))
            .map_or(0, Vec::len) as u32;
        let resolution = match estimate {
            None if reports <= file.findings[i].reports_at_raise => {
                let why = format!(
                    "account {} has not resubmitted its report since finding {finding}",
                    account.0
                );
                return Err(verification_err(Code::NotCorrected, "finding_id", why));
            }
            None => Resolution::Corrected {
                report_version: reports,
            },
            Some(value) => {
                self.check_estimate(year, account, &file.findings[i], value)?;
                Resolution::Estimated { value }
            }
        };
        let step = match &resolution {
            Resolution::Corrected { report_version } => {
                format!("finding {finding} corrected (report version {report_version})")
            }
            Resolution::Estimated { value } => {
                format!("finding {finding} estimated conservatively at {value}")
            }
        };
        file.findings[i].resolution = Some((resolution, by.seq));
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, step, by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// An estimate is a value the month's data could hold: the month with it applied
    /// passes the guideline's checks.
    fn check_estimate(
        &self,
        year: u16,
        account: AccountId,
        finding: &Finding,
        value: Decimal,
    ) -> Result<(), RegistryError> {
        if value.is_sign_negative() || value > QUANTITY_MAX || value.scale() > 4 {
            let why = "0 to 100,000,000 with at most 4 places";
            return Err(verification_err(Code::InvalidData, "estimate", why));
        }
        let (_, factors, plan, mut months) = self.report_inputs(year, account)?;
        let month = &mut months[usize::from(finding.month - 1)];
        finding.target.apply(month, value);
        month.validate_shape(factors, plan).map_err(|e| {
            let why = format!("{}: {}", e.field, e.why);
            verification_err(Code::InvalidData, "estimate", why)
        })
    }

    /// The body's conclusion: the latest report's figures recomputed with its estimates.
    pub(crate) fn conclude(
        &mut self,
        year: u16,
        account: AccountId,
        body: u32,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        let mut file = self.body_file(year, account, body)?;
        let ready =
            file.stage == Stage::OnSite || (file.stage == Stage::DocumentReview && file.round > 1);
        if !ready {
            return Err(stage_err(&file, "on_site (a re-review: document_review)"));
        }
        let open: Vec<String> = file
            .findings
            .iter()
            .filter(|f| f.resolution.is_none())
            .map(|f| f.id.to_string())
            .collect();
        if !open.is_empty() {
            let why = format!("findings {} are not resolved", open.join(", "));
            return Err(verification_err(Code::FindingsOpen, "account_id", why));
        }
        let conclusion = self.conclusion_of(year, account, &file, by)?;
        let step = format!(
            "concluded: {} t verified ({} t reported)",
            conclusion.total_t, conclusion.reported_t
        );
        file.conclusions.push(conclusion);
        file.stage = Stage::Concluded;
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, step, by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The latest submission and what it was computed from.
    fn report_inputs(
        &self,
        year: u16,
        account: AccountId,
    ) -> Result<ReportInputs<'_>, RegistryError> {
        let submission = self.emissions.report_of(year, account);
        let inputs =
            submission.and_then(|s| Some((s, self.emissions.inputs_of(year, account, s)?)));
        let Some((s, (factors, plan, months))) = inputs else {
            let why = format!("account {} submitted no report for {year}", account.0);
            return Err(verification_err(Code::InvalidData, "year", why));
        };
        Ok((s, factors, plan, months))
    }

    /// The verified report: the latest submission's inputs with every estimate applied.
    pub fn verified_report(
        &self,
        year: u16,
        account: AccountId,
        file: &File,
    ) -> Result<(u32, u64, mrv::report::Report), RegistryError> {
        let reports = self.emissions.reports.get(&(year, account));
        let version = reports.map_or(0, Vec::len) as u32;
        let (s, factors, plan, mut months) = self.report_inputs(year, account)?;
        for (month, target, value) in file.estimates() {
            target.apply(&mut months[usize::from(month - 1)], value);
        }
        let report = mrv::compute(factors, plan, &months).map_err(|e| {
            let why = format!("{}: {}", e.field, e.why);
            verification_err(Code::InvalidData, "estimate", why)
        })?;
        Ok((version, s.total_t, report))
    }

    fn conclusion_of(
        &self,
        year: u16,
        account: AccountId,
        file: &File,
        by: By,
    ) -> Result<Conclusion, RegistryError> {
        let (report_version, reported_t, report) = self.verified_report(year, account, file)?;
        let facilities = FacilityFigures::of(&report);
        Ok(Conclusion {
            round: file.round,
            seq: by.seq,
            date: by.date,
            report_version,
            total_t: report.total_t,
            co2_t: report.co2_t,
            pfc_co2e_t: report.pfc_co2e_t,
            facilities,
            reported_t,
        })
    }

    /// The province notifies the conclusion: it becomes the year's verified emissions (a
    /// year already trued up is recomputed: claw-back or top-up). `objection_until` is the
    /// last day to object (the server counts the working days).
    pub(crate) fn notify(
        &mut self,
        year: u16,
        account: AccountId,
        province: &str,
        objection_until: u32,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        date("objection_until", objection_until)?;
        if objection_until < by.date {
            let why = "on or after the notification";
            return Err(verification_err(Code::InvalidData, "objection_until", why));
        }
        self.in_jurisdiction(account, province)?;
        let mut file = self.file(year, account)?;
        if file.stage != Stage::Concluded {
            return Err(stage_err(&file, Stage::Concluded.name()));
        }
        let Some(c) = file.conclusion().cloned() else {
            return Err(stage_err(&file, Stage::Concluded.name()));
        };
        let plan = self.plan_of_report(year, account, c.report_version)?;
        let figures = Figures {
            co2_t: c.co2_t,
            pfc_co2e_t: c.pfc_co2e_t,
            facilities: &c.facilities,
        };
        let late = self.late(year, account, by.date);
        Self::push_step(&mut file, format!("notified: {} t", c.total_t), by, late)?;
        self.take_into_cycle(by.seq, account, year, &plan, &figures)?;
        file.stage = Stage::Notified;
        file.notified = Some((by.date, objection_until));
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The plan a report version was computed under.
    fn plan_of_report(
        &self,
        year: u16,
        account: AccountId,
        version: u32,
    ) -> Result<mrv::plan::Dqcp, RegistryError> {
        let s = self
            .emissions
            .reports
            .get(&(year, account))
            .and_then(|v| v.get((version as usize).checked_sub(1)?));
        match s.and_then(|s| self.emissions.plan_of_submission(year, account, s)) {
            Some(p) => Ok(p.plan.clone()),
            None => {
                let why = "the report's plan is missing";
                Err(verification_err(Code::InvalidData, "year", why))
            }
        }
    }

    /// The entity objects to the notified conclusion, within its window, once.
    pub(crate) fn object(
        &mut self,
        year: u16,
        account: AccountId,
        reason: &str,
        decide_by: u32,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        date("decide_by", decide_by)?;
        text("reason", reason)?;
        let mut file = self.file(year, account)?;
        if file.stage != Stage::Notified {
            return Err(stage_err(&file, Stage::Notified.name()));
        }
        if file.objection.is_some() {
            let why = "an objection was decided already; the re-review's conclusion stands";
            return Err(verification_err(Code::ObjectionClosed, "account_id", why));
        }
        let until = file.notified.map_or(0, |(_, until)| until);
        if by.date > until {
            let why = format!("the window to object closed on {until}");
            return Err(verification_err(Code::ObjectionClosed, "date", why));
        }
        file.objection = Some(Objection {
            reason: reason.into(),
            date: by.date,
            seq: by.seq,
            decide_by,
            decision: None,
        });
        file.stage = Stage::Objected;
        Self::push_step(&mut file, format!("objection: {reason}"), by, false)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }

    /// The province decides an objection: upheld starts a re-review by the body (a new
    /// conclusion follows), dismissed leaves the conclusion standing.
    pub(crate) fn decide_objection(
        &mut self,
        year: u16,
        account: AccountId,
        province: &str,
        upheld: bool,
        reason: &str,
        by: By,
    ) -> Result<Outcome, RegistryError> {
        date("date", by.date)?;
        text("reason", reason)?;
        self.in_jurisdiction(account, province)?;
        let mut file = self.file(year, account)?;
        if file.stage != Stage::Objected {
            return Err(stage_err(&file, Stage::Objected.name()));
        }
        if upheld && file.round >= ROUNDS_MAX {
            let why = format!("at most {ROUNDS_MAX} rounds");
            return Err(verification_err(Code::TooMany, "upheld", why));
        }
        let Some(objection) = file.objection.as_mut() else {
            return Err(stage_err(&file, Stage::Objected.name()));
        };
        let late = by.date > objection.decide_by;
        objection.decision = Some(Decision {
            upheld,
            reason: reason.into(),
            date: by.date,
            seq: by.seq,
        });
        let step = if upheld {
            file.round += 1;
            file.stage = Stage::DocumentReview;
            format!("objection upheld: re-review (round {})", file.round)
        } else {
            file.stage = Stage::Notified;
            "objection dismissed: the conclusion stands".to_string()
        };
        Self::push_step(&mut file, format!("{step}; {reason}"), by, late)?;
        self.save_file(year, account, file);
        Ok(Outcome::Done)
    }
}
