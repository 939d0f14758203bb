//! Wire <-> registry conversions of the VerificationService: a finding's target from the
//! request's fields (errors name the field), a file and the queue out.

use mrv::month::Role;
use mrv::plan::{Param, Scope, Subject};
use proto::v1 as pb;
use registry::verification::queue::Row;
use registry::verification::{Body, Conclusion, File, Finding, Resolution, Step, Target};

use crate::auth::Tokens;
use crate::error::ApiError;
use crate::services::convert::sector_out;

/// Longest fuel or item code, bytes.
const CODE_BYTES_MAX: usize = 64;

fn code(value: &str, field: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > CODE_BYTES_MAX {
        let why = format!("a code of 1 to {CODE_BYTES_MAX} bytes");
        return Err(ApiError::field(field, why));
    }
    Ok(value.to_string())
}

/// What a finding concerns: a measured parameter when `parameter` is given, else the rows
/// of a facility, role and item.
pub fn target_in(r: &pb::RaiseFindingRequest) -> Result<Target, ApiError> {
    if !r.parameter.is_empty() {
        if !r.role.is_empty() || !r.item.is_empty() {
            let why = "a parameter's finding names no role or item";
            return Err(ApiError::field("role", why));
        }
        let param = Param::parse(&r.parameter).ok_or_else(|| {
            let why = "one of ncv, anode_sulfur, anode_ash, anode_effect_minutes";
            ApiError::field("parameter", why)
        })?;
        let subject = match (param, r.facility_id) {
            (Param::Ncv, 0) => Subject::Fuel(code(&r.fuel, "fuel")?),
            (Param::Ncv, _) => {
                return Err(ApiError::field("facility_id", "an NCV names its fuel only"));
            }
            (_, 0) => {
                let why = "an anode parameter names its facility";
                return Err(ApiError::field("facility_id", why));
            }
            (_, id) if r.fuel.is_empty() => Subject::Facility(id),
            _ => return Err(ApiError::field("fuel", "an anode parameter names no fuel")),
        };
        return Ok(Target::Reading { param, subject });
    }
    if !r.fuel.is_empty() {
        let why = "a quantity's finding names its item, not a fuel";
        return Err(ApiError::field("fuel", why));
    }
    let role = Role::parse(&r.role)
        .ok_or_else(|| ApiError::field("role", "one of consumed, sold, produced"))?;
    Ok(Target::Row {
        scope: match r.facility_id {
            0 => Scope::Enterprise,
            id => Scope::Facility(id),
        },
        role,
        item: code(&r.item, "item")?,
    })
}

fn finding_out(f: &Finding) -> pb::Finding {
    let mut out = pb::Finding {
        id: f.id,
        round: f.round,
        month: u32::from(f.month),
        target: f.target.describe(),
        text: f.text.clone(),
        raised_seq: f.raised_seq,
        ..pb::Finding::default()
    };
    match &f.target {
        Target::Row { scope, role, item } => {
            out.facility_id = match scope {
                Scope::Enterprise => 0,
                Scope::Facility(id) => *id,
            };
            out.role = role.name().into();
            out.item = item.clone();
        }
        Target::Reading { param, subject } => {
            out.parameter = param.name().into();
            match subject {
                Subject::Fuel(fuel) => out.fuel = fuel.clone(),
                Subject::Facility(id) => out.facility_id = *id,
            }
        }
    }
    match &f.resolution {
        Some((Resolution::Corrected { report_version }, seq)) => {
            out.resolution = "corrected".into();
            out.report_version = *report_version;
            out.resolved_seq = *seq;
        }
        Some((Resolution::Estimated { value }, seq)) => {
            out.resolution = "estimated".into();
            out.estimate = value.to_string();
            out.resolved_seq = *seq;
        }
        None => {}
    }
    out
}

fn conclusion_out(c: &Conclusion) -> pb::Conclusion {
    pb::Conclusion {
        round: c.round,
        journal_seq: c.seq,
        date: c.date,
        report_version: c.report_version,
        total_t: c.total_t,
        co2_t: c.co2_t,
        pfc_co2e_t: c.pfc_co2e_t,
        reported_t: c.reported_t,
        facilities: c
            .facilities
            .iter()
            .map(|x| pb::ConcludedFacility {
                id: x.id,
                emissions_t: x.emissions_t.to_string(),
                output_t: x.output_t.to_string(),
            })
            .collect(),
    }
}

fn step_out(s: &Step, tokens: &Tokens) -> pb::FileStep {
    pb::FileStep {
        what: s.what.clone(),
        actor: s.actor,
        actor_name: tokens.name_of(s.actor).unwrap_or_default(),
        journal_seq: s.seq,
        date: s.date,
        late: s.late,
    }
}

/// The file as the API, the CLI and the dashboard show it.
#[derive(Debug)]
pub struct FileView<'a> {
    pub year: u16,
    pub account: u64,
    pub name: String,
    pub body: Option<&'a Body>,
    pub file: &'a File,
}

pub fn file_out(v: &FileView<'_>, tokens: &Tokens) -> pb::VerificationFile {
    let f = v.file;
    let (notified, objection_until) = f.notified.unwrap_or((0, 0));
    let mut out = pb::VerificationFile {
        year: u32::from(v.year),
        account_id: v.account,
        name: v.name.clone(),
        province: f.province.clone(),
        body_id: f.body,
        body_name: v.body.map(|b| b.name.clone()).unwrap_or_default(),
        stage: f.stage.name().into(),
        round: f.round,
        late: f.late(),
        findings: f.findings.iter().map(finding_out).collect(),
        conclusions: f.conclusions.iter().map(conclusion_out).collect(),
        notified,
        objection_until,
        steps: f.steps.iter().map(|s| step_out(s, tokens)).collect(),
        ..pb::VerificationFile::default()
    };
    if let Some(o) = &f.objection {
        out.objection_reason = o.reason.clone();
        out.objected = o.date;
        out.decide_by = o.decide_by;
        if let Some(d) = &o.decision {
            out.decision = if d.upheld { "upheld" } else { "dismissed" }.into();
            out.decision_reason = d.reason.clone();
            out.decided = d.date;
        }
    }
    out
}

pub fn queue_row_out(r: &Row) -> pb::QueueRow {
    pb::QueueRow {
        account_id: r.account.0,
        name: r.name.clone(),
        province: r.province.clone(),
        sector: sector_out(r.sector) as i32,
        state: r.state.name().into(),
        body_id: r.body.unwrap_or(0),
        round: r.round,
        open_findings: r.open_findings as u32,
        late: r.late,
        reported_t: r.reported_t.unwrap_or(0),
        verified_t: r.verified_t.unwrap_or(0),
    }
}

pub fn body_out(id: u32, b: &Body) -> pb::VerificationBody {
    pb::VerificationBody {
        body_id: id,
        name: b.name.clone(),
        credit_code: b.credit_code.clone(),
    }
}
