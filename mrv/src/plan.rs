//! An entity's boundary and data-quality control plan for a year (the guideline's §9 and
//! Annex B): its facilities, where each parameter comes from, its meters, and the NCV (and
//! anode) parameters it chose to measure. Measured is locked: a revision may add measured
//! parameters, never drop one.

use std::collections::BTreeSet;

use crate::factors::{Factors, Sector};

/// Most facilities in one entity's boundary.
pub const FACILITIES_MAX: usize = 100;
/// Most meters in one plan.
pub const METERS_MAX: usize = 500;
/// Longest facility or meter name and meter id, bytes.
pub const NAME_BYTES_MAX: usize = 128;

/// A process of the guideline's boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessKind {
    Coking,
    Sintering,
    Pelletizing,
    /// Blast furnace, non-BF ironmaking, RKEF nickel-iron.
    Ironmaking,
    /// Basic oxygen furnace steelmaking.
    Bof,
    /// Electric arc furnace steelmaking.
    Eaf,
    /// A power unit co-firing self-produced secondary energy (formula (3)).
    CoFiring,
    /// Cement: a clinker production line (its allocation unit).
    ClinkerLine,
    /// Aluminium: an electrolysis process (its allocation unit).
    Electrolysis,
}

const KINDS: [ProcessKind; 9] = [
    ProcessKind::Coking,
    ProcessKind::Sintering,
    ProcessKind::Pelletizing,
    ProcessKind::Ironmaking,
    ProcessKind::Bof,
    ProcessKind::Eaf,
    ProcessKind::CoFiring,
    ProcessKind::ClinkerLine,
    ProcessKind::Electrolysis,
];

impl ProcessKind {
    pub fn name(self) -> &'static str {
        match self {
            ProcessKind::Coking => "coking",
            ProcessKind::Sintering => "sintering",
            ProcessKind::Pelletizing => "pelletizing",
            ProcessKind::Ironmaking => "ironmaking",
            ProcessKind::Bof => "bof",
            ProcessKind::Eaf => "eaf",
            ProcessKind::CoFiring => "co_firing",
            ProcessKind::ClinkerLine => "clinker_line",
            ProcessKind::Electrolysis => "electrolysis",
        }
    }

    pub fn parse(text: &str) -> Option<ProcessKind> {
        KINDS.into_iter().find(|k| k.name() == text)
    }

    pub fn sector(self) -> Sector {
        match self {
            ProcessKind::ClinkerLine => Sector::Cement,
            ProcessKind::Electrolysis => Sector::Aluminium,
            _ => Sector::Steel,
        }
    }

    /// Steel's formula (2) processes (fuel in minus fuel out).
    pub fn is_steel_process(self) -> bool {
        self.sector() == Sector::Steel && self != ProcessKind::CoFiring
    }
}

/// Where a row of data belongs: the enterprise (its mass balance, or its other combustion),
/// or one facility of the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Enterprise,
    Facility(u32),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Enterprise => f.write_str("enterprise"),
            Scope::Facility(id) => write!(f, "facility {id}"),
        }
    }
}

/// A facility of the boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facility {
    pub id: u32,
    pub name: String,
    pub kind: ProcessKind,
    /// Cement: the clinker type the line makes (a code of the factors file).
    pub clinker_type: Option<String>,
}

/// A parameter an entity may measure instead of taking the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    /// A fuel's net calorific value (the subject is the fuel's code).
    Ncv,
    /// Aluminium: an electrolysis process's anode sulfur content, a fraction.
    AnodeSulfur,
    /// Aluminium: its anode ash content, a fraction.
    AnodeAsh,
    /// Aluminium: anode-effect minutes per cell-day (the slope method of the PFCs).
    AnodeEffectMinutes,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::Ncv => "ncv",
            Param::AnodeSulfur => "anode_sulfur",
            Param::AnodeAsh => "anode_ash",
            Param::AnodeEffectMinutes => "anode_effect_minutes",
        }
    }

    pub fn parse(text: &str) -> Option<Param> {
        [
            Param::Ncv,
            Param::AnodeSulfur,
            Param::AnodeAsh,
            Param::AnodeEffectMinutes,
        ]
        .into_iter()
        .find(|p| p.name() == text)
    }
}

/// What a measured parameter is of: NCV of a fuel (entity-wide), the others of one
/// electrolysis facility.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Fuel(String),
    Facility(u32),
}

/// A meter of the plan: what it measures and when it was last calibrated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meter {
    pub id: String,
    /// What it measures, in words ("bituminous coal weighbridge, stockyard 2").
    pub measures: String,
    /// Last calibration, `YYYYMMDD`.
    pub calibrated: u32,
}

/// An entity's data-quality control plan for one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dqcp {
    pub year: u16,
    pub sector: Sector,
    pub facilities: Vec<Facility>,
    pub meters: Vec<Meter>,
    /// The parameters measured; every other one takes the factors file's default.
    pub measured: BTreeSet<(Param, Subject)>,
}

/// Why a plan or a month's data was refused: the field at fault (`rows[3].quantity`,
/// `facilities[1].kind`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct DataError {
    pub field: String,
    pub why: String,
}

pub(crate) fn refuse(field: impl Into<String>, why: impl Into<String>) -> DataError {
    DataError {
        field: field.into(),
        why: why.into(),
    }
}

/// `YYYYMMDD` is a calendar date.
pub fn is_date(date: u32) -> bool {
    let (y, m, d) = (date / 10_000, date / 100 % 100, date % 100);
    (1900..=2999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in(y, m)
}

pub(crate) fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Dqcp {
    pub fn facility(&self, id: u32) -> Option<&Facility> {
        self.facilities.iter().find(|f| f.id == id)
    }

    pub fn is_measured(&self, param: Param, subject: &Subject) -> bool {
        self.measured.contains(&(param, subject.clone()))
    }

    /// Checks the plan against its sector's factors.
    pub fn validate(&self, factors: &Factors) -> Result<(), DataError> {
        if self.sector != factors.sector {
            return Err(refuse("sector", "differs from the factors file's sector"));
        }
        self.validate_facilities(factors)?;
        self.validate_meters()?;
        for (param, subject) in &self.measured {
            self.validate_measured(factors, *param, subject)?;
        }
        Ok(())
    }

    fn validate_facilities(&self, factors: &Factors) -> Result<(), DataError> {
        if self.facilities.len() > FACILITIES_MAX {
            return Err(refuse("facilities", format!("more than {FACILITIES_MAX}")));
        }
        let mut ids = BTreeSet::new();
        for (i, f) in self.facilities.iter().enumerate() {
            let at = |field: &str| format!("facilities[{i}].{field}");
            if !ids.insert(f.id) {
                return Err(refuse(at("id"), format!("facility {} listed twice", f.id)));
            }
            if f.name.trim().is_empty() || f.name.len() > NAME_BYTES_MAX {
                return Err(refuse(at("name"), format!("1 to {NAME_BYTES_MAX} bytes")));
            }
            if f.kind.sector() != self.sector {
                let why = format!(
                    "{} is not a process of {}",
                    f.kind.name(),
                    self.sector.name()
                );
                return Err(refuse(at("kind"), why));
            }
            let clinker = f.clinker_type.as_deref();
            match (f.kind, clinker) {
                (ProcessKind::ClinkerLine, Some(c)) if factors.clinker.contains_key(c) => {}
                (ProcessKind::ClinkerLine, Some(c)) => {
                    return Err(refuse(
                        at("clinker_type"),
                        format!("unknown clinker type {c:?}"),
                    ));
                }
                (ProcessKind::ClinkerLine, None) => {
                    return Err(refuse(at("clinker_type"), "a clinker line names its type"));
                }
                (_, Some(_)) => {
                    return Err(refuse(at("clinker_type"), "only a clinker line has one"));
                }
                (_, None) => {}
            }
        }
        Ok(())
    }

    fn validate_meters(&self) -> Result<(), DataError> {
        if self.meters.len() > METERS_MAX {
            return Err(refuse("meters", format!("more than {METERS_MAX}")));
        }
        let mut ids = BTreeSet::new();
        for (i, m) in self.meters.iter().enumerate() {
            let at = |field: &str| format!("meters[{i}].{field}");
            if m.id.trim().is_empty() || m.id.len() > NAME_BYTES_MAX || !ids.insert(&m.id) {
                return Err(refuse(at("id"), "empty, too long or listed twice"));
            }
            if m.measures.len() > NAME_BYTES_MAX {
                return Err(refuse(
                    at("measures"),
                    format!("at most {NAME_BYTES_MAX} bytes"),
                ));
            }
            if !is_date(m.calibrated) {
                return Err(refuse(at("calibrated"), "not a date YYYYMMDD"));
            }
        }
        Ok(())
    }

    fn validate_measured(
        &self,
        factors: &Factors,
        param: Param,
        subject: &Subject,
    ) -> Result<(), DataError> {
        let at = format!("measured.{}", param.name());
        match (param, subject) {
            (Param::Ncv, Subject::Fuel(code)) => match factors.fuel(code) {
                None => Err(refuse(at, format!("unknown fuel {code:?}"))),
                Some(f) if f.ncv_default_only => Err(refuse(
                    at,
                    format!("{code}: the guideline allows only the default NCV"),
                )),
                Some(_) => Ok(()),
            },
            (Param::Ncv, Subject::Facility(_)) => Err(refuse(at, "an NCV is of a fuel")),
            (_, Subject::Facility(id)) => match self.facility(*id) {
                Some(f) if f.kind == ProcessKind::Electrolysis => Ok(()),
                _ => Err(refuse(
                    at,
                    format!("facility {id} is not an electrolysis process"),
                )),
            },
            (_, Subject::Fuel(_)) => Err(refuse(at, "an anode parameter is of a facility")),
        }
    }

    /// Checks that `self` may replace `old` (the same year's earlier version): once
    /// measured is chosen, a later default is refused (§6.2: the choice is fixed).
    pub fn check_revision(&self, old: &Dqcp) -> Result<(), DataError> {
        if self.year != old.year || self.sector != old.sector {
            return Err(refuse("year", "a revision is of the same year and sector"));
        }
        if let Some((param, subject)) = old.measured.difference(&self.measured).next() {
            let what = match subject {
                Subject::Fuel(code) => code.clone(),
                Subject::Facility(id) => format!("facility {id}"),
            };
            let why = format!("{what}: measured was chosen for the year; default is refused");
            return Err(refuse(format!("measured.{}", param.name()), why));
        }
        Ok(())
    }

    /// The meters whose last calibration is more than 12 months before the end of
    /// `month` of the plan's year (the guideline's calibration cycle is at most 12 months).
    pub fn stale_meters(&self, month: u8) -> Vec<&Meter> {
        let year = u32::from(self.year);
        let month = u32::from(month.clamp(1, 12));
        let month_end = year * 10_000 + month * 100 + days_in(year, month);
        // A year before the month's end (29 Feb steps back to 28 Feb).
        let due = (year - 1) * 10_000 + month * 100 + days_in(year - 1, month).min(month_end % 100);
        self.meters.iter().filter(|m| m.calibrated < due).collect()
    }
}

/// Days the guideline gives for a month's deposit after the month ends (§10.2).
pub const DEPOSIT_DAYS_AFTER_MONTH: u32 = 40;

/// The last day (`YYYYMMDD`) a month's data is on time: 40 calendar days after its end.
pub fn deposit_deadline(year: u16, month: u8) -> u32 {
    let (mut y, mut m) = (u32::from(year), u32::from(month.clamp(1, 12)));
    let mut day = days_in(y, m) + DEPOSIT_DAYS_AFTER_MONTH;
    while day > days_in(y, m) {
        day -= days_in(y, m);
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    y * 10_000 + m * 100 + day
}

/// The last day of a month, `YYYYMMDD`.
pub fn month_end(year: u16, month: u8) -> u32 {
    let (y, m) = (u32::from(year), u32::from(month.clamp(1, 12)));
    y * 10_000 + m * 100 + days_in(y, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deposit_deadline_is_forty_days_after_the_month() {
        // January ends on the 31st: + 28 days of February 2025 + 12 = 12 March.
        assert_eq!(deposit_deadline(2025, 1), 20250312);
        // February 2024 (leap) ends on the 29th: + 31 days of March + 9 = 9 April.
        assert_eq!(deposit_deadline(2024, 2), 20240409);
        // December's runs into the next year: 31 days of January + 9 = 9 February.
        assert_eq!(deposit_deadline(2025, 12), 20260209);
        assert_eq!(month_end(2025, 2), 20250228);
    }
}
