//! The emissions operations on the ledger, each checked in full before anything changes.

use mrv::factors::{Factors, Sector as MrvSector};
use mrv::month::Month;
use mrv::plan::{DataError, Dqcp, ProcessKind, deposit_deadline, month_end};

use super::{
    Deposit, EVIDENCE_BYTES_MAX, EVIDENCE_PER_MONTH_MAX, EVIDENCE_TEXT_BYTES_MAX, EmissionsCode,
    Evidence, FACTORS_VERSIONS_MAX, FacilityFigures, FactorsRecord, MONTH_VERSIONS_MAX,
    PLAN_VERSIONS_MAX, PlanRecord, REPORT_VERSIONS_MAX, Submission,
};
use crate::cycle::{Activity, FacilityKind, VerifiedRow};
use crate::error::RegistryError;
use crate::industry::Process;
use crate::ledger::Ledger;
use crate::model::{AccountId, Sector};
use crate::tx::Outcome;

pub(crate) fn emissions_err(
    code: EmissionsCode,
    field: impl Into<String>,
    why: impl Into<String>,
) -> RegistryError {
    RegistryError::Emissions {
        code,
        field: field.into(),
        why: why.into(),
    }
}

fn data_err(e: DataError) -> RegistryError {
    emissions_err(EmissionsCode::InvalidData, e.field, e.why)
}

/// The accounting guideline's sector of a registry sector (power has none here).
pub fn mrv_sector(sector: Sector) -> Option<MrvSector> {
    match sector {
        Sector::Steel => Some(MrvSector::Steel),
        Sector::Cement => Some(MrvSector::Cement),
        Sector::Aluminium => Some(MrvSector::Aluminium),
        Sector::Power => None,
    }
}

fn too_many(field: &str, max: usize) -> RegistryError {
    let why = format!("at most {max} versions");
    emissions_err(EmissionsCode::TooManyVersions, field, why)
}

impl Ledger {
    fn industrial(&self, account: AccountId) -> Result<MrvSector, RegistryError> {
        let entity = self
            .cycle
            .entities
            .get(&account)
            .ok_or(RegistryError::NotCovered(account.0))?;
        mrv_sector(entity.sector).ok_or_else(|| {
            let why = "power entities report under the power guideline";
            emissions_err(EmissionsCode::NotIndustrial, "account_id", why)
        })
    }

    /// Registers a guideline's factors file for a year; the same version again with the
    /// same text changes nothing.
    pub(crate) fn register_factors(
        &mut self,
        seq: u64,
        year: u16,
        text: &str,
    ) -> Result<Outcome, RegistryError> {
        let factors = Factors::from_toml(text).map_err(|e| {
            emissions_err(
                EmissionsCode::InvalidData,
                format!("factors.{}", e.key),
                e.why,
            )
        })?;
        let key = (year, factors.sector);
        let versions = self
            .emissions
            .factors
            .get(&key)
            .map_or(&[][..], Vec::as_slice);
        if let Some(same) = versions
            .iter()
            .find(|f| f.factors.version == factors.version)
        {
            if same.text == text {
                return Ok(Outcome::Unchanged);
            }
            let why = format!(
                "version {} is registered already with other values",
                factors.version
            );
            return Err(emissions_err(
                EmissionsCode::InvalidData,
                "factors.version",
                why,
            ));
        }
        if versions.len() >= FACTORS_VERSIONS_MAX {
            return Err(too_many("factors", FACTORS_VERSIONS_MAX));
        }
        let record = FactorsRecord {
            factors,
            text: text.to_string(),
            seq,
        };
        self.emissions.factors.entry(key).or_default().push(record);
        self.dirty.emissions.factors.insert(key);
        Ok(Outcome::Done)
    }

    /// Sets (or revises) an entity's plan for its year.
    pub(crate) fn set_monitoring_plan(
        &mut self,
        seq: u64,
        account: AccountId,
        plan: &Dqcp,
        date: u32,
    ) -> Result<Outcome, RegistryError> {
        let sector = self.industrial(account)?;
        if plan.sector != sector {
            let why = format!("the entity is {}", sector.name());
            return Err(emissions_err(EmissionsCode::InvalidData, "sector", why));
        }
        let factors = self.factors_for(plan.year, sector)?;
        plan.validate(&factors.factors).map_err(data_err)?;
        let key = (plan.year, account);
        let versions = self
            .emissions
            .plans
            .get(&key)
            .map_or(&[][..], Vec::as_slice);
        if let Some(old) = versions.last() {
            if &old.plan == plan {
                return Ok(Outcome::Unchanged);
            }
            plan.check_revision(&old.plan).map_err(data_err)?;
        }
        if versions.len() >= PLAN_VERSIONS_MAX {
            return Err(too_many("plan", PLAN_VERSIONS_MAX));
        }
        let record = PlanRecord {
            plan: plan.clone(),
            seq,
            date,
        };
        self.emissions.plans.entry(key).or_default().push(record);
        self.dirty.emissions.plans.insert(key);
        Ok(Outcome::Done)
    }

    fn factors_for(&self, year: u16, sector: MrvSector) -> Result<&FactorsRecord, RegistryError> {
        self.emissions.factors_of(year, sector).ok_or_else(|| {
            let why = format!("no {} factors registered for {year}", sector.name());
            emissions_err(EmissionsCode::FactorsMissing, "year", why)
        })
    }

    fn plan_for(&self, year: u16, account: AccountId) -> Result<(u32, &PlanRecord), RegistryError> {
        let versions = self.emissions.plans.get(&(year, account));
        match versions.and_then(|v| v.last().map(|p| (v.len() as u32, p))) {
            Some(found) => Ok(found),
            None => {
                let why = format!("account {} has no monitoring plan for {year}", account.0);
                Err(emissions_err(EmissionsCode::PlanMissing, "year", why))
            }
        }
    }

    /// Deposits a month (or, with `correction`, a new version of one deposited).
    pub(crate) fn deposit_month(
        &mut self,
        seq: u64,
        account: AccountId,
        month: &Month,
        evidence: &[Evidence],
        correction: bool,
        date: u32,
    ) -> Result<Outcome, RegistryError> {
        let sector = self.industrial(account)?;
        let factors = &self.factors_for(month.year, sector)?.factors;
        let (plan_version, plan) = self.plan_for(month.year, account)?;
        month.validate(factors, &plan.plan).map_err(data_err)?;
        check_evidence(evidence)?;
        if date <= month_end(month.year, month.month) {
            let why = format!("{}-{:02} has not ended", month.year, month.month);
            return Err(emissions_err(EmissionsCode::MonthNotEnded, "month", why));
        }
        let key = (month.year, account, month.month);
        let versions = self.emissions.months.get(&key).map_or(0, Vec::len);
        match (versions, correction) {
            (0, true) => {
                let why = format!("month {} was never deposited", month.month);
                return Err(emissions_err(
                    EmissionsCode::NothingToCorrect,
                    "correction",
                    why,
                ));
            }
            (1.., false) => {
                let why = format!("month {} is deposited; send a correction", month.month);
                return Err(emissions_err(EmissionsCode::MonthDeposited, "month", why));
            }
            _ if versions >= MONTH_VERSIONS_MAX => {
                return Err(too_many("month", MONTH_VERSIONS_MAX));
            }
            _ => {}
        }
        let stale_meters = plan
            .plan
            .stale_meters(month.month)
            .iter()
            .map(|m| m.id.clone())
            .collect();
        let deposit = Deposit {
            month: month.clone(),
            evidence: evidence.to_vec(),
            date,
            late: date > deposit_deadline(month.year, month.month),
            stale_meters,
            plan_version,
            seq,
        };
        self.emissions.months.entry(key).or_default().push(deposit);
        self.dirty.emissions.months.insert(key);
        Ok(Outcome::Done)
    }

    /// Assembles and submits the annual report from the latest version of each month.
    pub(crate) fn submit_report(
        &mut self,
        seq: u64,
        account: AccountId,
        year: u16,
        date: u32,
    ) -> Result<Outcome, RegistryError> {
        let sector = self.industrial(account)?;
        let factors = self.factors_for(year, sector)?;
        let (plan_version, plan) = self.plan_for(year, account)?;
        let deposits = self.emissions.latest_months(year, account);
        if deposits.len() < 12 {
            let have: Vec<u8> = deposits.iter().map(|d| d.month.month).collect();
            let missing: Vec<String> = (1..=12)
                .filter(|m| !have.contains(m))
                .map(|m| m.to_string())
                .collect();
            let why = format!("months {} of {year} are not deposited", missing.join(", "));
            return Err(emissions_err(EmissionsCode::MonthsMissing, "year", why));
        }
        let months: Vec<Month> = deposits.iter().map(|d| d.month.clone()).collect();
        let report = mrv::compute(&factors.factors, &plan.plan, &months).map_err(data_err)?;
        let month_versions: [u32; 12] = std::array::from_fn(|m| {
            self.emissions
                .months
                .get(&(year, account, m as u8 + 1))
                .map_or(0, |v| v.len() as u32)
        });
        let key = (year, account);
        if self.emissions.reports.get(&key).map_or(0, Vec::len) >= REPORT_VERSIONS_MAX {
            return Err(too_many("report", REPORT_VERSIONS_MAX));
        }
        let facilities = FacilityFigures::of(&report);
        let submission = Submission {
            seq,
            date,
            factors_version: report.factors_version.clone(),
            plan_version,
            month_versions,
            total_t: report.total_t,
            co2_t: report.co2_t,
            pfc_co2e_t: report.pfc_co2e_t,
            facilities,
            confirmed_seq: None,
        };
        self.emissions
            .reports
            .entry(key)
            .or_default()
            .push(submission);
        self.dirty.emissions.reports.insert(key);
        Ok(Outcome::Done)
    }

    /// Takes the latest submitted report into the compliance cycle: its total becomes the
    /// year's verified emissions and its facilities' figures the allocation units' data
    /// (a year already trued up is recomputed, as with any verified figure).
    pub(crate) fn confirm_report(
        &mut self,
        seq: u64,
        account: AccountId,
        year: u16,
    ) -> Result<Outcome, RegistryError> {
        let key = (year, account);
        let Some(submission) = self.emissions.report_of(year, account).cloned() else {
            let why = format!("account {} submitted no report for {year}", account.0);
            return Err(emissions_err(EmissionsCode::ReportMissing, "year", why));
        };
        if submission.confirmed_seq.is_some() {
            return Ok(Outcome::Unchanged);
        }
        let (_, plan) = self.plan_for(year, account)?;
        let plan = plan.plan.clone();
        let figures = Figures {
            co2_t: submission.co2_t,
            pfc_co2e_t: submission.pfc_co2e_t,
            facilities: &submission.facilities,
        };
        self.take_into_cycle(seq, account, year, &plan, &figures)?;
        if let Some(s) = self
            .emissions
            .reports
            .get_mut(&key)
            .and_then(|v| v.last_mut())
        {
            s.confirmed_seq = Some(seq);
        }
        self.dirty.emissions.reports.insert(key);
        Ok(Outcome::Done)
    }

    /// Takes verified figures into the compliance cycle: the facilities' activity (each
    /// registered facility whose process matches the plan's kind) and the year's verified
    /// emissions, in a year already trued up recomputing the allocation. Nothing changes
    /// if it is refused.
    pub(crate) fn take_into_cycle(
        &mut self,
        seq: u64,
        account: AccountId,
        year: u16,
        plan: &Dqcp,
        figures: &Figures<'_>,
    ) -> Result<(), RegistryError> {
        let activity = self.activity_of(account, year, plan, figures.facilities);
        let saved_dirty = self.dirty.cycle.clone();
        let old: Vec<_> = activity
            .iter()
            .map(|(k, _)| (*k, self.cycle.activity.get(k).copied()))
            .collect();
        for (k, a) in &activity {
            self.cycle.activity.insert(*k, *a);
            self.dirty.cycle.activity.insert(*k);
        }
        let row = VerifiedRow {
            account,
            co2_t: figures.co2_t,
            pfc_co2e_t: figures.pfc_co2e_t,
        };
        if let Err(e) = self.record_verified(seq, year, &[row]) {
            for (k, a) in old {
                match a {
                    Some(a) => self.cycle.activity.insert(k, a),
                    None => self.cycle.activity.remove(&k),
                };
            }
            self.dirty.cycle = saved_dirty;
            return Err(e);
        }
        Ok(())
    }

    /// The cycle's activity rows from a report: each facility the entity registered with
    /// the cycle, by id, whose process matches the plan's kind.
    fn activity_of(
        &self,
        account: AccountId,
        year: u16,
        plan: &Dqcp,
        facilities: &[FacilityFigures],
    ) -> Vec<((u16, AccountId, u32), Activity)> {
        let Some(entity) = self.cycle.entities.get(&account) else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for f in facilities {
            let Some(FacilityKind::Industry { process, .. }) = entity.facilities.get(&f.id) else {
                continue;
            };
            let kind = plan.facility(f.id).map(|p| p.kind);
            if !matches_process(kind, *process) {
                continue;
            }
            let special = match self.cycle.activity.get(&(year, account, f.id)) {
                Some(Activity::Industry { special, .. }) => *special,
                _ => None,
            };
            let activity = Activity::Industry {
                output_t: f.output_t,
                emissions_t: f.emissions_t,
                pfc_co2e_t: f.pfc_co2e_t,
                carbide_slag_rate: f.carbide_slag_rate,
                special,
            };
            rows.push(((year, account, f.id), activity));
        }
        rows
    }
}

/// Verified figures on their way into the cycle: a confirmed report's or a conclusion's.
#[derive(Debug)]
pub(crate) struct Figures<'a> {
    pub co2_t: u64,
    pub pfc_co2e_t: u64,
    pub facilities: &'a [FacilityFigures],
}

fn matches_process(kind: Option<ProcessKind>, process: Process) -> bool {
    matches!(
        (kind, process),
        (Some(ProcessKind::Ironmaking), Process::Ironmaking)
            | (Some(ProcessKind::Sintering), Process::Sintering)
            | (Some(ProcessKind::ClinkerLine), Process::ClinkerLine)
            | (Some(ProcessKind::Electrolysis), Process::Electrolysis)
    )
}

fn check_evidence(evidence: &[Evidence]) -> Result<(), RegistryError> {
    if evidence.len() > EVIDENCE_PER_MONTH_MAX {
        let why = format!("at most {EVIDENCE_PER_MONTH_MAX} documents");
        return Err(emissions_err(EmissionsCode::InvalidData, "evidence", why));
    }
    for (i, e) in evidence.iter().enumerate() {
        let text_ok = |t: &str| !t.trim().is_empty() && t.len() <= EVIDENCE_TEXT_BYTES_MAX;
        if !text_ok(&e.kind) || !text_ok(&e.name) {
            let why = format!("kind and name are 1 to {EVIDENCE_TEXT_BYTES_MAX} bytes");
            return Err(emissions_err(
                EmissionsCode::InvalidData,
                format!("evidence[{i}]"),
                why,
            ));
        }
        if e.bytes == 0 || e.bytes > EVIDENCE_BYTES_MAX {
            let why = format!("a document is 1 to {EVIDENCE_BYTES_MAX} bytes");
            return Err(emissions_err(
                EmissionsCode::InvalidData,
                format!("evidence[{i}].bytes"),
                why,
            ));
        }
    }
    Ok(())
}
