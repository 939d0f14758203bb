//! Allocation plans as data: the TOML file the ministry edits (decimals written as strings,
//! so no float ever touches a coefficient), its validation, and the canonical binary
//! encoding recorded in the journal with every run that uses it.
//!
//! ```toml
//! year = 2024
//! version = "2024.1"
//! pre_allocation_share = "0.70"
//! ccer_cap_bp = 500
//! ccer_registered_by = 0
//! earliest_vintage = 2019
//! penalty_multiple = "5"
//! deadline = 20251231
//!
//! [power]
//! floor_share = "0.8"
//! gas_top_up = true
//! benchmarks = { coal_large = "0.7910", coal_small = "0.8049", unconventional_coal = "0.8244",
//!                gas = "0.3288", heat_coal = "0.1033", heat_gas = "0.0533" }
//! load_correction = { kind = "exponential", base = "1.015", offset = "16", slope = "20",
//!                     threshold = "0.65" }
//!
//! [industry]
//! method = "grandfathering"   # or "intensity" with slope, band, cap, tolerance_t, iterations_max
//! ```

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::allocation::{IntensityCoefficients, LoadCorrection, PowerBenchmarks, PowerPlan};
use crate::codec::{Reader, Writer};
use crate::compliance::{IndustryMethod, Plan};
use crate::error::RegistryError;

/// Longest plan version label, bytes.
pub const PLAN_VERSION_BYTES_MAX: usize = 64;
/// Largest plan file accepted, bytes.
pub const PLAN_TOML_BYTES_MAX: usize = 64 * 1024;

/// Why a plan file was refused: the key at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plan {key}: {why}")]
pub struct PlanError {
    pub key: String,
    pub why: String,
}

fn err(key: &str, why: impl Into<String>) -> PlanError {
    PlanError {
        key: key.into(),
        why: why.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    year: u16,
    version: String,
    pre_allocation_share: String,
    ccer_cap_bp: u32,
    #[serde(default)]
    ccer_registered_by: u32,
    earliest_vintage: u16,
    penalty_multiple: String,
    deadline: u32,
    power: PowerFile,
    industry: IndustryFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerFile {
    floor_share: String,
    gas_top_up: bool,
    benchmarks: BenchmarksFile,
    load_correction: LoadCorrectionFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchmarksFile {
    coal_large: String,
    coal_small: String,
    unconventional_coal: String,
    gas: String,
    heat_coal: String,
    heat_gas: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadCorrectionFile {
    kind: String,
    base: Option<String>,
    offset: Option<String>,
    slope: Option<String>,
    threshold: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndustryFile {
    method: String,
    slope: Option<String>,
    band: Option<String>,
    cap: Option<String>,
    tolerance_t: Option<String>,
    iterations_max: Option<u32>,
}

fn decimal(key: &str, text: &str) -> Result<Decimal, PlanError> {
    Decimal::from_str_exact(text.trim())
        .or_else(|_| Decimal::from_str(text.trim()))
        .map_err(|_| err(key, format!("{text:?} is not a decimal number")))
}

fn required(key: &str, value: &Option<String>) -> Result<Decimal, PlanError> {
    match value {
        Some(text) => decimal(key, text),
        None => Err(err(key, "missing")),
    }
}

fn fraction(key: &str, value: Decimal) -> Result<Decimal, PlanError> {
    if value < Decimal::ZERO || value > Decimal::ONE {
        return Err(err(key, "must be a fraction from 0 to 1"));
    }
    Ok(value)
}

fn positive(key: &str, value: Decimal, max: Decimal) -> Result<Decimal, PlanError> {
    if value <= Decimal::ZERO || value > max {
        return Err(err(key, format!("must be above 0 and at most {max}")));
    }
    Ok(value)
}

fn unit_interval(d: Decimal) -> bool {
    d >= Decimal::ZERO && d <= Decimal::ONE
}

fn benchmarks(b: &BenchmarksFile) -> Result<PowerBenchmarks, PlanError> {
    let benchmark = |key: &str, v: &str| positive(key, decimal(key, v)?, Decimal::from(10));
    Ok(PowerBenchmarks {
        coal_large: benchmark("power.benchmarks.coal_large", &b.coal_large)?,
        coal_small: benchmark("power.benchmarks.coal_small", &b.coal_small)?,
        unconventional_coal: benchmark(
            "power.benchmarks.unconventional_coal",
            &b.unconventional_coal,
        )?,
        gas: benchmark("power.benchmarks.gas", &b.gas)?,
        heat_coal: benchmark("power.benchmarks.heat_coal", &b.heat_coal)?,
        heat_gas: benchmark("power.benchmarks.heat_gas", &b.heat_gas)?,
    })
}

fn load_correction(l: &LoadCorrectionFile) -> Result<LoadCorrection, PlanError> {
    Ok(match l.kind.as_str() {
        "none" => LoadCorrection::None,
        "exponential" => LoadCorrection::Exponential {
            base: positive(
                "power.load_correction.base",
                required("power.load_correction.base", &l.base)?,
                Decimal::from(2),
            )?,
            offset: required("power.load_correction.offset", &l.offset)?,
            slope: required("power.load_correction.slope", &l.slope)?,
            threshold: fraction(
                "power.load_correction.threshold",
                required("power.load_correction.threshold", &l.threshold)?,
            )?,
        },
        other => {
            return Err(err(
                "power.load_correction.kind",
                format!("{other:?} is not \"none\" or \"exponential\""),
            ));
        }
    })
}

fn industry(i: &IndustryFile) -> Result<IndustryMethod, PlanError> {
    Ok(match i.method.as_str() {
        "grandfathering" => IndustryMethod::Grandfathering,
        "intensity" => IndustryMethod::Intensity {
            coefficients: IntensityCoefficients {
                slope: fraction("industry.slope", required("industry.slope", &i.slope)?)?,
                band: fraction("industry.band", required("industry.band", &i.band)?)?,
                cap: fraction("industry.cap", required("industry.cap", &i.cap)?)?,
            },
            tolerance_t: positive(
                "industry.tolerance_t",
                required("industry.tolerance_t", &i.tolerance_t)?,
                Decimal::from(1_000),
            )?,
            iterations_max: match i.iterations_max {
                Some(n @ 1..=1_000) => n,
                _ => return Err(err("industry.iterations_max", "must be 1 to 1000")),
            },
        },
        other => {
            return Err(err(
                "industry.method",
                format!("{other:?} is not \"grandfathering\" or \"intensity\""),
            ));
        }
    })
}

fn valid_date(v: u32) -> bool {
    let (y, m, d) = (v / 10_000, v / 100 % 100, v % 100);
    (2013..=2101).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

impl Plan {
    /// Parses and validates a plan file.
    pub fn from_toml(text: &str) -> Result<Plan, PlanError> {
        if text.len() > PLAN_TOML_BYTES_MAX {
            return Err(err("(file)", "larger than 64 KiB"));
        }
        let f: PlanFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let key = message
                .split('`')
                .nth(1)
                .map_or_else(|| "(file)".to_string(), str::to_string);
            err(&key, message)
        })?;
        let load_correction = load_correction(&f.power.load_correction)?;
        let industry = industry(&f.industry)?;
        let benchmarks = benchmarks(&f.power.benchmarks)?;
        let plan = Plan {
            year: f.year,
            version: f.version,
            power: PowerPlan {
                benchmarks,
                load_correction,
                floor_share: fraction(
                    "power.floor_share",
                    decimal("power.floor_share", &f.power.floor_share)?,
                )?,
                gas_top_up: f.power.gas_top_up,
            },
            industry,
            pre_allocation_share: fraction(
                "pre_allocation_share",
                decimal("pre_allocation_share", &f.pre_allocation_share)?,
            )?,
            ccer_cap_bp: f.ccer_cap_bp,
            ccer_registered_by: f.ccer_registered_by,
            earliest_vintage: f.earliest_vintage,
            penalty_multiple: decimal("penalty_multiple", &f.penalty_multiple)?,
            deadline: f.deadline,
        };
        plan.validate()
            .map_err(|(key, why)| err(key, why.to_string()))?;
        Ok(plan)
    }

    /// The checks every plan passes, whether it came from a file or the journal.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(2013..=2100).contains(&self.year) {
            return Err(("year", "must be a year from 2013 to 2100"));
        }
        if self.version.is_empty()
            || self.version.len() > PLAN_VERSION_BYTES_MAX
            || !self
                .version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err((
                "version",
                "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
            ));
        }
        self.validate_power()?;
        self.validate_industry()?;
        if !unit_interval(self.pre_allocation_share) {
            return Err(("pre_allocation_share", "must be a fraction from 0 to 1"));
        }
        if self.ccer_cap_bp > 10_000 {
            return Err(("ccer_cap_bp", "must be at most 10000 (100%)"));
        }
        if self.ccer_registered_by != 0 && !valid_date(self.ccer_registered_by) {
            return Err(("ccer_registered_by", "must be 0 or a date YYYYMMDD"));
        }
        if self.earliest_vintage < 2013 || self.earliest_vintage > self.year {
            return Err((
                "earliest_vintage",
                "must be from 2013 to the plan's compliance year",
            ));
        }
        // Regulations 2024 Art. 24: 5 to 10 times the average price.
        if self.penalty_multiple < Decimal::from(5) || self.penalty_multiple > Decimal::from(10) {
            return Err(("penalty_multiple", "must be from 5 to 10"));
        }
        if !valid_date(self.deadline) || self.deadline / 10_000 <= u32::from(self.year) {
            return Err((
                "deadline",
                "must be a date YYYYMMDD after the compliance year",
            ));
        }
        Ok(())
    }

    fn validate_power(&self) -> Result<(), (&'static str, &'static str)> {
        let b = &self.power.benchmarks;
        if [
            b.coal_large,
            b.coal_small,
            b.unconventional_coal,
            b.gas,
            b.heat_coal,
            b.heat_gas,
        ]
        .iter()
        .any(|d| *d <= Decimal::ZERO || *d > Decimal::from(10))
        {
            return Err(("power.benchmarks", "each must be above 0 and at most 10"));
        }
        if let LoadCorrection::Exponential {
            base,
            offset,
            slope,
            threshold,
        } = self.power.load_correction
        {
            let hundred = Decimal::from(100);
            if base <= Decimal::ZERO || base > Decimal::new(15, 1) {
                return Err((
                    "power.load_correction.base",
                    "must be above 0 and at most 1.5",
                ));
            }
            if offset.abs() > hundred || slope.abs() > hundred {
                return Err((
                    "power.load_correction.offset",
                    "offset and slope must be from -100 to 100",
                ));
            }
            if !unit_interval(threshold) {
                return Err(("power.load_correction.threshold", "must be a fraction"));
            }
        }
        if !unit_interval(self.power.floor_share) {
            return Err(("power.floor_share", "must be a fraction from 0 to 1"));
        }
        Ok(())
    }

    fn validate_industry(&self) -> Result<(), (&'static str, &'static str)> {
        if let IndustryMethod::Intensity {
            coefficients: c,
            tolerance_t,
            iterations_max,
        } = &self.industry
        {
            if !unit_interval(c.slope) || !unit_interval(c.band) || !unit_interval(c.cap) {
                return Err(("industry.slope", "slope, band and cap must be fractions"));
            }
            if *tolerance_t <= Decimal::ZERO || *tolerance_t > Decimal::from(1_000) {
                return Err(("industry.tolerance_t", "must be above 0 and at most 1000"));
            }
            if !(1..=1_000).contains(iterations_max) {
                return Err(("industry.iterations_max", "must be 1 to 1000"));
            }
        }
        Ok(())
    }

    /// The plan as a TOML file (what `from_toml` reads back to the same plan).
    pub fn to_toml(&self) -> String {
        let b = &self.power.benchmarks;
        let load = match self.power.load_correction {
            LoadCorrection::None => "{ kind = \"none\" }".to_string(),
            LoadCorrection::Exponential {
                base,
                offset,
                slope,
                threshold,
            } => format!(
                "{{ kind = \"exponential\", base = \"{base}\", offset = \"{offset}\", slope = \"{slope}\", threshold = \"{threshold}\" }}"
            ),
        };
        let industry = match &self.industry {
            IndustryMethod::Grandfathering => "method = \"grandfathering\"\n".to_string(),
            IndustryMethod::Intensity {
                coefficients,
                tolerance_t,
                iterations_max,
            } => format!(
                "method = \"intensity\"\nslope = \"{}\"\nband = \"{}\"\ncap = \"{}\"\ntolerance_t = \"{tolerance_t}\"\niterations_max = {iterations_max}\n",
                coefficients.slope, coefficients.band, coefficients.cap
            ),
        };
        format!(
            "year = {}\nversion = \"{}\"\npre_allocation_share = \"{}\"\nccer_cap_bp = {}\nccer_registered_by = {}\nearliest_vintage = {}\npenalty_multiple = \"{}\"\ndeadline = {}\n\n[power]\nfloor_share = \"{}\"\ngas_top_up = {}\nbenchmarks = {{ coal_large = \"{}\", coal_small = \"{}\", unconventional_coal = \"{}\", gas = \"{}\", heat_coal = \"{}\", heat_gas = \"{}\" }}\nload_correction = {load}\n\n[industry]\n{industry}",
            self.year,
            self.version,
            self.pre_allocation_share,
            self.ccer_cap_bp,
            self.ccer_registered_by,
            self.earliest_vintage,
            self.penalty_multiple,
            self.deadline,
            self.power.floor_share,
            self.power.gas_top_up,
            b.coal_large,
            b.coal_small,
            b.unconventional_coal,
            b.gas,
            b.heat_coal,
            b.heat_gas,
        )
    }
}

pub(crate) fn encode_plan(w: &mut Writer, p: &Plan) {
    w.u16(p.year).str(&p.version);
    let b = &p.power.benchmarks;
    for d in [
        b.coal_large,
        b.coal_small,
        b.unconventional_coal,
        b.gas,
        b.heat_coal,
        b.heat_gas,
    ] {
        w.dec(d);
    }
    match p.power.load_correction {
        LoadCorrection::None => {
            w.u8(0);
        }
        LoadCorrection::Exponential {
            base,
            offset,
            slope,
            threshold,
        } => {
            w.u8(1).dec(base).dec(offset).dec(slope).dec(threshold);
        }
    }
    w.dec(p.power.floor_share).bool(p.power.gas_top_up);
    match &p.industry {
        IndustryMethod::Grandfathering => {
            w.u8(0);
        }
        IndustryMethod::Intensity {
            coefficients,
            tolerance_t,
            iterations_max,
        } => {
            w.u8(1)
                .dec(coefficients.slope)
                .dec(coefficients.band)
                .dec(coefficients.cap)
                .dec(*tolerance_t)
                .u32(*iterations_max);
        }
    }
    w.dec(p.pre_allocation_share)
        .u32(p.ccer_cap_bp)
        .u32(p.ccer_registered_by)
        .u16(p.earliest_vintage)
        .dec(p.penalty_multiple)
        .u32(p.deadline);
}

pub(crate) fn decode_plan(r: &mut Reader<'_>) -> Result<Plan, RegistryError> {
    let year = r.u16()?;
    let version = r.str()?;
    let benchmarks = PowerBenchmarks {
        coal_large: r.dec()?,
        coal_small: r.dec()?,
        unconventional_coal: r.dec()?,
        gas: r.dec()?,
        heat_coal: r.dec()?,
        heat_gas: r.dec()?,
    };
    let load_correction = match r.u8()? {
        0 => LoadCorrection::None,
        1 => LoadCorrection::Exponential {
            base: r.dec()?,
            offset: r.dec()?,
            slope: r.dec()?,
            threshold: r.dec()?,
        },
        _ => return Err(RegistryError::Corrupt("load correction".into())),
    };
    let power = PowerPlan {
        benchmarks,
        load_correction,
        floor_share: r.dec()?,
        gas_top_up: r.bool()?,
    };
    let industry = match r.u8()? {
        0 => IndustryMethod::Grandfathering,
        1 => IndustryMethod::Intensity {
            coefficients: IntensityCoefficients {
                slope: r.dec()?,
                band: r.dec()?,
                cap: r.dec()?,
            },
            tolerance_t: r.dec()?,
            iterations_max: r.u32()?,
        },
        _ => return Err(RegistryError::Corrupt("industry method".into())),
    };
    Ok(Plan {
        year,
        version,
        power,
        industry,
        pre_allocation_share: r.dec()?,
        ccer_cap_bp: r.u32()?,
        ccer_registered_by: r.u32()?,
        earliest_vintage: r.u16()?,
        penalty_multiple: r.dec()?,
        deadline: r.u32()?,
    })
}
