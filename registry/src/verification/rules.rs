//! A year's verification rules as versioned data (`registry/verification/<year>.toml`): the
//! deadlines of the calendar (Notice 2026), the working-day windows of an objection and its
//! decision (Measures 2021 Art. 27), and the range of the allocation reduction for data
//! fraud. Unknown keys are refused and every value is bounded; the journal keeps the text.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::plans::valid_date;

/// Largest rules file accepted, bytes.
pub const RULES_TOML_BYTES_MAX: usize = 16 * 1024;
/// Most versions of one year's rules.
pub const RULES_VERSIONS_MAX: usize = 16;

/// The rules of one compliance year's verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub year: u16,
    pub version: String,
    /// The annual report's deadline, `YYYYMMDD`.
    pub report_due: u32,
    /// Verification concluded and notified: power entities.
    pub notified_by_power: u32,
    /// Verification concluded and notified: steel, cement, aluminium.
    pub notified_by_industry: u32,
    /// Working days after notification to object.
    pub objection_working_days: u32,
    /// Working days after an objection for the province's decision.
    pub decision_working_days: u32,
    /// The verification bodies' evaluation is published by this date.
    pub evaluation_by: u32,
    /// A data-fraud finding reduces the next allocation by a share in this range.
    pub fraud_reduction_min: Decimal,
    pub fraud_reduction_max: Decimal,
}

/// A version of a year's rules as registered: what the journal keeps is the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesRecord {
    pub rules: Rules,
    pub text: String,
    pub seq: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    year: u16,
    version: String,
    report_due: u32,
    notified_by_power: u32,
    notified_by_industry: u32,
    objection_working_days: u32,
    decision_working_days: u32,
    evaluation_by: u32,
    fraud_reduction_min: String,
    fraud_reduction_max: String,
}

/// What is wrong with a rules file: the key and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {why}")]
pub struct RulesError {
    pub key: String,
    pub why: String,
}

fn err(key: &str, why: impl Into<String>) -> RulesError {
    RulesError {
        key: key.into(),
        why: why.into(),
    }
}

fn share(key: &str, text: &str) -> Result<Decimal, RulesError> {
    let v: Decimal = text
        .parse()
        .map_err(|_| err(key, format!("{text:?} is not a decimal")))?;
    if v <= Decimal::ZERO || v > Decimal::ONE {
        return Err(err(key, "a share above 0 and at most 1"));
    }
    Ok(v)
}

impl Rules {
    pub fn from_toml(text: &str) -> Result<Rules, RulesError> {
        if text.len() > RULES_TOML_BYTES_MAX {
            return Err(err("(file)", "larger than 16 KiB"));
        }
        let f: RulesFile = toml::from_str(text).map_err(|e| err("(file)", e.message()))?;
        if !(2013..=2100).contains(&f.year) {
            return Err(err("year", "2013 to 2100"));
        }
        if f.version.is_empty() || f.version.len() > 64 {
            return Err(err("version", "1 to 64 bytes"));
        }
        let after_year = |key: &str, v: u32| {
            if valid_date(v) && v / 10_000 > u32::from(f.year) {
                Ok(v)
            } else {
                Err(err(key, "a date YYYYMMDD after the compliance year"))
            }
        };
        after_year("report_due", f.report_due)?;
        after_year("notified_by_power", f.notified_by_power)?;
        after_year("notified_by_industry", f.notified_by_industry)?;
        after_year("evaluation_by", f.evaluation_by)?;
        for (key, days) in [
            ("objection_working_days", f.objection_working_days),
            ("decision_working_days", f.decision_working_days),
        ] {
            if !(1..=60).contains(&days) {
                return Err(err(key, "1 to 60 working days"));
            }
        }
        let min = share("fraud_reduction_min", &f.fraud_reduction_min)?;
        let max = share("fraud_reduction_max", &f.fraud_reduction_max)?;
        if min > max {
            return Err(err("fraud_reduction_min", "at most fraud_reduction_max"));
        }
        Ok(Rules {
            year: f.year,
            version: f.version,
            report_due: f.report_due,
            notified_by_power: f.notified_by_power,
            notified_by_industry: f.notified_by_industry,
            objection_working_days: f.objection_working_days,
            decision_working_days: f.decision_working_days,
            evaluation_by: f.evaluation_by,
            fraud_reduction_min: min,
            fraud_reduction_max: max,
        })
    }

    /// The notification deadline of an entity of `sector`.
    pub fn notified_by(&self, sector: crate::model::Sector) -> u32 {
        match sector {
            crate::model::Sector::Power => self.notified_by_power,
            _ => self.notified_by_industry,
        }
    }
}
