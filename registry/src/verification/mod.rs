//! Verification of annual reports (核查), as the provinces organise it: registered
//! verification bodies, the technical-service engagements that bar a body from verifying its
//! client, one file per entity and year that walks assigned -> document review -> on-site
//! check -> findings (corrected by the entity, or estimated conservatively by the body) ->
//! conclusion -> notification -> objection and its decision, and the year's rules (deadlines,
//! windows) as versioned data. Every step is a journaled registry transaction that records
//! who and when.
//!
//! The notification is where a conclusion becomes the year's verified emissions: its figures
//! go into the compliance cycle exactly as a confirmed report's do, so a conclusion changed
//! after allocation (an upheld objection's re-review) recomputes the allocation in the same
//! transaction, clawing back or topping up.
//!
//! The working-day windows (7 to object, 10 to decide) are counted by the server from the
//! trading calendar's holidays and carried in the operation (`objection_until`,
//! `decide_by`), so replay never depends on a calendar file.
//!
//! - `mod.rs`: the model and the reason codes; `rules.rs`: the year's rules file;
//!   `ops.rs`: the operations, `dispatch.rs` from the journal's `Op` and in words;
//!   `codec.rs`: their encoding; `queue.rs`: where each entity's year stands.

pub mod codec;
mod dispatch;
pub mod ops;
pub mod queue;
pub mod rules;

pub use dispatch::{account_of, describe};

use std::collections::{BTreeMap, BTreeSet};

use mrv::month::{Month, Reading, Role, Row};
use mrv::plan::{Param, Scope, Subject};
use rust_decimal::Decimal;

use crate::emissions::FacilityFigures;
use crate::model::AccountId;
pub use rules::Rules;

/// Most verification bodies registered.
pub const BODIES_MAX: usize = 10_000;
/// Most findings in one file (over all its rounds).
pub const FINDINGS_MAX: usize = 64;
/// Most steps in one file's history.
pub const STEPS_MAX: usize = 256;
/// Most review rounds of a file (the first, and a re-review after an upheld objection).
pub const ROUNDS_MAX: u32 = 2;
/// Longest name, reason or finding text, bytes.
pub const VERIFICATION_TEXT_BYTES_MAX: usize = 2_000;
/// Most technical-service engagements recorded for one year.
pub const ENGAGEMENTS_PER_YEAR_MAX: usize = 100_000;

/// Reason codes of the verification operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerificationCode {
    /// A field out of its bounds (the field says which).
    InvalidData,
    /// No verification body with that id.
    BodyUnknown,
    /// The body served the entity as its technical service body (consultant) in the year
    /// or the year before.
    ConsultantConflict,
    /// The acting body is not the one assigned to the entity's file.
    NotAssigned,
    /// The entity is not in the acting province's jurisdiction.
    OutsideJurisdiction,
    /// The file is not at the stage this step needs.
    WrongStage,
    /// A conclusion while findings of the round are unresolved.
    FindingsOpen,
    /// No finding with that id in the file.
    FindingUnknown,
    /// Marked corrected, but the entity has not resubmitted its report since the finding.
    NotCorrected,
    /// An objection after its window, or a second one.
    ObjectionClosed,
    /// No verification file for the entity and year (no body assigned yet).
    FileMissing,
    /// The year's verification rules are not registered.
    RulesMissing,
    /// A limit of the file reached (findings, steps, rounds).
    TooMany,
}

impl VerificationCode {
    pub const ALL: [VerificationCode; 13] = [
        VerificationCode::InvalidData,
        VerificationCode::BodyUnknown,
        VerificationCode::ConsultantConflict,
        VerificationCode::NotAssigned,
        VerificationCode::OutsideJurisdiction,
        VerificationCode::WrongStage,
        VerificationCode::FindingsOpen,
        VerificationCode::FindingUnknown,
        VerificationCode::NotCorrected,
        VerificationCode::ObjectionClosed,
        VerificationCode::FileMissing,
        VerificationCode::RulesMissing,
        VerificationCode::TooMany,
    ];

    pub fn code(self) -> &'static str {
        match self {
            VerificationCode::InvalidData => "INVALID_VERIFICATION_DATA",
            VerificationCode::BodyUnknown => "VERIFICATION_BODY_UNKNOWN",
            VerificationCode::ConsultantConflict => "CONSULTANT_CONFLICT",
            VerificationCode::NotAssigned => "BODY_NOT_ASSIGNED",
            VerificationCode::OutsideJurisdiction => "OUTSIDE_JURISDICTION",
            VerificationCode::WrongStage => "VERIFICATION_STAGE",
            VerificationCode::FindingsOpen => "FINDINGS_OPEN",
            VerificationCode::FindingUnknown => "FINDING_UNKNOWN",
            VerificationCode::NotCorrected => "FINDING_NOT_CORRECTED",
            VerificationCode::ObjectionClosed => "OBJECTION_CLOSED",
            VerificationCode::FileMissing => "VERIFICATION_FILE_MISSING",
            VerificationCode::RulesMissing => "VERIFICATION_RULES_MISSING",
            VerificationCode::TooMany => "VERIFICATION_LIMIT",
        }
    }
}

/// A registered verification body (a technical service organisation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub name: String,
    /// Its unified social credit code (may be empty).
    pub credit_code: String,
    pub seq: u64,
}

/// Where a file stands (declared, and so ordered, along the path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The province assigned a body; the review has not started.
    Assigned,
    /// The body is reviewing the report's documents (a re-review starts here too).
    DocumentReview,
    /// The body has made its on-site check.
    OnSite,
    /// The body issued its conclusion; the province has not notified it yet.
    Concluded,
    /// The conclusion was notified: it is the year's verified emissions.
    Notified,
    /// The entity objected; the province has not decided.
    Objected,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Assigned,
        Stage::DocumentReview,
        Stage::OnSite,
        Stage::Concluded,
        Stage::Notified,
        Stage::Objected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Assigned => "assigned",
            Stage::DocumentReview => "document_review",
            Stage::OnSite => "on_site",
            Stage::Concluded => "concluded",
            Stage::Notified => "notified",
            Stage::Objected => "objected",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// What a finding concerns: a quantity of the month (by scope, role and item) or a
/// measured parameter (by parameter and subject).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Row {
        scope: Scope,
        role: Role,
        item: String,
    },
    Reading {
        param: Param,
        subject: Subject,
    },
}

impl Target {
    /// Applies a conservative estimate to a month: the rows of the target are replaced by
    /// one row of `value` (added if the entity reported none), or the reading's value is
    /// replaced (added if missing).
    pub fn apply(&self, month: &mut Month, value: Decimal) {
        match self {
            Target::Row { scope, role, item } => {
                month
                    .rows
                    .retain(|r| !(r.scope == *scope && r.role == *role && r.item == *item));
                month.rows.push(Row {
                    scope: *scope,
                    role: *role,
                    item: item.clone(),
                    quantity: value,
                });
            }
            Target::Reading { param, subject } => {
                let mut found = false;
                for r in &mut month.readings {
                    if r.param == *param && r.subject == *subject {
                        r.value = value;
                        found = true;
                    }
                }
                if !found {
                    month.readings.push(Reading {
                        param: *param,
                        subject: subject.clone(),
                        value,
                        evidence: "verification body's conservative estimate".into(),
                    });
                }
            }
        }
    }

    /// In words, for the file's history and the dashboard.
    pub fn describe(&self) -> String {
        match self {
            Target::Row { scope, role, item } => format!("{item} {} ({scope})", role.name()),
            Target::Reading { param, subject } => match subject {
                Subject::Fuel(code) => format!("{} of {code}", param.name()),
                Subject::Facility(id) => format!("{} of facility {id}", param.name()),
            },
        }
    }
}

/// How a finding was resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The entity corrected the month and resubmitted: the report version it resubmitted.
    Corrected { report_version: u32 },
    /// Not corrected: the body estimated the month's figure on the conservative principle.
    Estimated { value: Decimal },
}

/// A non-conformity (不符合项) the body found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 1-based in the file.
    pub id: u32,
    pub round: u32,
    pub month: u8,
    pub target: Target,
    pub text: String,
    /// The number of report submissions when it was raised (a correction resubmits).
    pub reports_at_raise: u32,
    pub raised_seq: u64,
    pub resolution: Option<(Resolution, u64)>,
}

/// A body's conclusion: the verified figures, from the report it reviewed with its
/// estimates applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conclusion {
    pub round: u32,
    pub seq: u64,
    pub date: u32,
    /// The report version (1-based) it reviewed.
    pub report_version: u32,
    pub total_t: u64,
    pub co2_t: u64,
    pub pfc_co2e_t: u64,
    pub facilities: Vec<FacilityFigures>,
    /// What the entity's report said, t (the difference is the verification's).
    pub reported_t: u64,
}

/// An entity's objection to a notified conclusion, and the province's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objection {
    pub reason: String,
    pub date: u32,
    pub seq: u64,
    /// The 10th working day after it was filed.
    pub decide_by: u32,
    pub decision: Option<Decision>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub upheld: bool,
    pub reason: String,
    pub date: u32,
    pub seq: u64,
}

/// One step of a file, with who took it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub actor: u64,
    pub seq: u64,
    pub date: u32,
    /// Taken after the year's deadline for it (accepted, flagged).
    pub late: bool,
}

/// One entity's verification for one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub body: u32,
    pub province: String,
    pub stage: Stage,
    pub round: u32,
    pub findings: Vec<Finding>,
    pub conclusions: Vec<Conclusion>,
    /// The notification of the latest conclusion: its date and the last day to object.
    pub notified: Option<(u32, u32)>,
    pub objection: Option<Objection>,
    pub steps: Vec<Step>,
}

impl File {
    /// The conclusion in force (the latest).
    pub fn conclusion(&self) -> Option<&Conclusion> {
        self.conclusions.last()
    }

    /// Whether any step was taken late.
    pub fn late(&self) -> bool {
        self.steps.iter().any(|s| s.late)
    }

    /// The estimates to apply, in the order they were made (a later one of the same month
    /// and target wins).
    pub fn estimates(&self) -> impl Iterator<Item = (u8, &Target, Decimal)> {
        self.findings.iter().filter_map(|f| match &f.resolution {
            Some((Resolution::Estimated { value }, _)) => Some((f.month, &f.target, *value)),
            _ => None,
        })
    }
}

/// The registry's verification records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub rules: BTreeMap<u16, Vec<rules::RulesRecord>>,
    pub bodies: BTreeMap<u32, Body>,
    /// Technical-service engagements: (year, entity, body).
    pub engagements: BTreeSet<(u16, AccountId, u32)>,
    pub files: BTreeMap<(u16, AccountId), File>,
}

/// Verification records changed by the current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerificationDirty {
    pub rules: BTreeSet<u16>,
    pub bodies: BTreeSet<u32>,
    pub engagements: BTreeSet<(u16, AccountId, u32)>,
    pub files: BTreeSet<(u16, AccountId)>,
}

impl Verification {
    /// The year's rules in force (the latest version registered).
    pub fn rules_of(&self, year: u16) -> Option<&Rules> {
        self.rules
            .get(&year)
            .and_then(|v| v.last())
            .map(|r| &r.rules)
    }

    pub fn file_of(&self, year: u16, account: AccountId) -> Option<&File> {
        self.files.get(&(year, account))
    }

    /// Whether `body` served `account` as its technical service body in `year` or the
    /// year before.
    pub fn consulted(&self, year: u16, account: AccountId, body: u32) -> bool {
        self.engagements.contains(&(year, account, body))
            || self
                .engagements
                .contains(&(year.wrapping_sub(1), account, body))
    }
}
