//! Emissions accounting in the registry: the guidelines' factors in force, each covered
//! entity's data-quality control plan, its monthly deposits and its annual report, all
//! journaled like every registry change. The formulas are the pure `mrv` crate's; this
//! module keeps the versions, the dates and the evidence, and hands a confirmed report's
//! figures to the compliance cycle.
//!
//! **Evidence** (ledgers, lab reports, calibration certificates) is kept as its SHA-256,
//! size and metadata only, never its content: the hash-chained journal then proves which
//! document was deposited (the verifier checks the file the entity shows against it)
//! without the registry's journal, snapshots and standby copying megabytes of scans per
//! entity-month.

pub mod codec;
pub mod ops;

use std::collections::{BTreeMap, BTreeSet};

use mrv::factors::{Factors, Sector};
use mrv::month::Month;
use mrv::plan::Dqcp;
use rust_decimal::Decimal;

use crate::model::AccountId;

/// Most evidence documents with one month's deposit.
pub const EVIDENCE_PER_MONTH_MAX: usize = 100;
/// Longest evidence name or kind, bytes.
pub const EVIDENCE_TEXT_BYTES_MAX: usize = 256;
/// Largest evidence document described, bytes (1 GiB: a scan, never a stream).
pub const EVIDENCE_BYTES_MAX: u64 = 1 << 30;
/// Most versions of one month (the deposit and its corrections).
pub const MONTH_VERSIONS_MAX: usize = 32;
/// Most versions of one entity's plan for a year.
pub const PLAN_VERSIONS_MAX: usize = 32;
/// Most factors versions for one sector and year.
pub const FACTORS_VERSIONS_MAX: usize = 16;
/// Most submissions of one annual report.
pub const REPORT_VERSIONS_MAX: usize = 32;

/// Reason codes of the emissions operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmissionsCode {
    /// The data break a rule of the guideline or the plan (the field says which).
    InvalidData,
    /// No factors registered for the sector and year.
    FactorsMissing,
    /// The entity has no plan for the year.
    PlanMissing,
    /// A month deposited again without being marked a correction.
    MonthDeposited,
    /// A correction of a month never deposited.
    NothingToCorrect,
    /// A deposit before the month has ended.
    MonthNotEnded,
    /// An annual report before all twelve months are deposited.
    MonthsMissing,
    /// Confirming a report never submitted.
    ReportMissing,
    /// The entity is not an industrial covered entity.
    NotIndustrial,
    /// A limit of versions reached.
    TooManyVersions,
}

impl EmissionsCode {
    pub const ALL: [EmissionsCode; 10] = [
        EmissionsCode::InvalidData,
        EmissionsCode::FactorsMissing,
        EmissionsCode::PlanMissing,
        EmissionsCode::MonthDeposited,
        EmissionsCode::NothingToCorrect,
        EmissionsCode::MonthNotEnded,
        EmissionsCode::MonthsMissing,
        EmissionsCode::ReportMissing,
        EmissionsCode::NotIndustrial,
        EmissionsCode::TooManyVersions,
    ];

    pub fn code(self) -> &'static str {
        match self {
            EmissionsCode::InvalidData => "INVALID_EMISSIONS_DATA",
            EmissionsCode::FactorsMissing => "FACTORS_MISSING",
            EmissionsCode::PlanMissing => "MONITORING_PLAN_MISSING",
            EmissionsCode::MonthDeposited => "MONTH_ALREADY_DEPOSITED",
            EmissionsCode::NothingToCorrect => "NOTHING_TO_CORRECT",
            EmissionsCode::MonthNotEnded => "MONTH_NOT_ENDED",
            EmissionsCode::MonthsMissing => "MONTHS_MISSING",
            EmissionsCode::ReportMissing => "REPORT_MISSING",
            EmissionsCode::NotIndustrial => "NOT_INDUSTRIAL",
            EmissionsCode::TooManyVersions => "TOO_MANY_VERSIONS",
        }
    }
}

/// A document behind a month's data: its hash, size and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evidence {
    /// Ledger, lab report, calibration certificate...
    pub kind: String,
    pub name: String,
    pub sha256: [u8; 32],
    pub bytes: u64,
}

/// A factors file registered for a sector and year: the text is what the journal keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactorsRecord {
    pub factors: Factors,
    pub text: String,
    pub seq: u64,
}

/// A version of an entity's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRecord {
    pub plan: Dqcp,
    pub seq: u64,
    pub date: u32,
}

/// A version of a month's deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub month: Month,
    pub evidence: Vec<Evidence>,
    /// The registry's local date of the deposit, `YYYYMMDD`.
    pub date: u32,
    /// Deposited after the 40 days (accepted, flagged).
    pub late: bool,
    /// The plan's meters past their 12-month calibration cycle at the month's end.
    pub stale_meters: Vec<String>,
    /// The plan version (1-based) it was checked against.
    pub plan_version: u32,
    pub seq: u64,
}

/// What a submitted report computed for one facility: the allocation unit's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacilityFigures {
    pub id: u32,
    pub output_t: Decimal,
    pub emissions_t: Decimal,
    pub pfc_co2e_t: Decimal,
    pub carbide_slag_rate: Decimal,
}

impl FacilityFigures {
    /// The allocation units' figures of a computed report, one per facility.
    pub fn of(report: &mrv::report::Report) -> Vec<FacilityFigures> {
        report
            .facilities
            .iter()
            .map(|f| FacilityFigures {
                id: f.id,
                output_t: f.output_t,
                emissions_t: f.emissions_t,
                pfc_co2e_t: f.pfc_co2e_t,
                carbide_slag_rate: f.carbide_slag_rate.unwrap_or_default(),
            })
            .collect()
    }
}

/// A submitted annual report: what it was computed from and what it computed. The lines
/// are recomputed from the same deposits, plan and factors whenever they are shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub seq: u64,
    pub date: u32,
    pub factors_version: String,
    pub plan_version: u32,
    /// The version (1-based) of each month's deposit it used.
    pub month_versions: [u32; 12],
    pub total_t: u64,
    pub co2_t: u64,
    pub pfc_co2e_t: u64,
    pub facilities: Vec<FacilityFigures>,
    /// The journal entry that confirmed it into the compliance cycle.
    pub confirmed_seq: Option<u64>,
}

/// The registry's emissions records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Emissions {
    pub factors: BTreeMap<(u16, Sector), Vec<FactorsRecord>>,
    pub plans: BTreeMap<(u16, AccountId), Vec<PlanRecord>>,
    pub months: BTreeMap<(u16, AccountId, u8), Vec<Deposit>>,
    pub reports: BTreeMap<(u16, AccountId), Vec<Submission>>,
}

/// Emissions records changed by the current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmissionsDirty {
    pub factors: BTreeSet<(u16, Sector)>,
    pub plans: BTreeSet<(u16, AccountId)>,
    pub months: BTreeSet<(u16, AccountId, u8)>,
    pub reports: BTreeSet<(u16, AccountId)>,
}

impl Emissions {
    /// The factors in force for a sector's year: the latest registered.
    pub fn factors_of(&self, year: u16, sector: Sector) -> Option<&FactorsRecord> {
        self.factors.get(&(year, sector)).and_then(|v| v.last())
    }

    pub fn plan_of(&self, year: u16, account: AccountId) -> Option<&PlanRecord> {
        self.plans.get(&(year, account)).and_then(|v| v.last())
    }

    /// The latest version of each month deposited.
    pub fn latest_months(&self, year: u16, account: AccountId) -> Vec<&Deposit> {
        (1..=12)
            .filter_map(|m| self.months.get(&(year, account, m)).and_then(|v| v.last()))
            .collect()
    }

    pub fn report_of(&self, year: u16, account: AccountId) -> Option<&Submission> {
        self.reports.get(&(year, account)).and_then(|v| v.last())
    }

    /// Recomputes the latest submission's report (lines and working) from what it used.
    pub fn recompute(&self, year: u16, account: AccountId) -> Option<mrv::report::Report> {
        let s = self.report_of(year, account)?;
        let (factors, plan, months) = self.inputs_of(year, account, s)?;
        mrv::compute(factors, plan, &months).ok()
    }

    /// The plan version a submission was computed under.
    pub fn plan_of_submission(
        &self,
        year: u16,
        account: AccountId,
        s: &Submission,
    ) -> Option<&PlanRecord> {
        let versions = self.plans.get(&(year, account))?;
        versions.get((s.plan_version as usize).checked_sub(1)?)
    }

    /// What a submission was computed from: the factors and plan versions it used and the
    /// versions of the twelve months.
    pub fn inputs_of(
        &self,
        year: u16,
        account: AccountId,
        s: &Submission,
    ) -> Option<(&Factors, &Dqcp, Vec<Month>)> {
        let plan = self.plan_of_submission(year, account, s)?;
        let factors = self
            .factors
            .get(&(year, plan.plan.sector))?
            .iter()
            .find(|f| f.factors.version == s.factors_version)?;
        let months: Option<Vec<Month>> = (1..=12u8)
            .map(|m| {
                let versions = self.months.get(&(year, account, m))?;
                let v = s.month_versions[usize::from(m - 1)] as usize;
                versions.get(v.checked_sub(1)?).map(|d| d.month.clone())
            })
            .collect();
        Some((&factors.factors, &plan.plan, months?))
    }
}
