//! Allocation plans as data: the TOML file the ministry edits (decimals written as strings,
//! so no float ever touches a coefficient), its validation, and the canonical binary
//! encoding recorded in the journal with every run that uses it.
//!
//! ```toml
//! year = 2025
//! version = "2025.draft"
//! ccer_cap_bp = 500
//! ccer_registered_after = 20240122   # 0: any registration date
//! earliest_vintage = 2025
//! penalty_multiple = "5"
//! deadline = 20261231
//!
//! [pre_allocation]                   # a share per sector
//! power = "0.50"
//! steel = "0.70"
//! cement = "0.70"
//! aluminium = "0.70"
//!
//! [power]
//! floor_share = "0.8"
//! gas_top_up = true
//! floor_parts = true                 # optional, default false
//! shortfall_rate_dp = 2              # optional, default unrounded
//! benchmarks = { coal_large = "0.7902", coal_small = "0.8017", unconventional_coal = "0.8162",
//!                gas = "0.3288", heat_coal = "0.1027", heat_gas = "0.0533" }
//! # kind "none", "exponential" (base, offset, slope, threshold) or "exponential_decay":
//! load_correction = { kind = "exponential_decay", constant = "7.254", a1 = "0.633",
//!                     s1 = "29.822", a2 = "5.643", s2 = "6.871", threshold_pct = "50",
//!                     round_dp = 6 }
//!
//! [industry]
//! method = "intensity"               # or "grandfathering"
//! slope = "0.15"
//! band = "0.20"
//! cap = "0.03"
//! tolerance_t = "0.5"
//! iterations_max = 200
//! small_unit_t = 26000
//! carbide_slag_rate_max = "0.15"
//! ```
//!
//! The journal encoding starts with the marker `0xFFFF` (never a plan year) and a format
//! number; an encoding without the marker is the first format (one pre-allocation share
//! for every sector, no CCER lower bound), still read.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::allocation::{LoadCorrection, PowerBenchmarks, PowerPlan};
use crate::codec::{Reader, Writer};
use crate::compliance::{IndustryMethod, Plan, SectorShares};
use crate::cycle::carry::CarryOverRule;
use crate::error::RegistryError;
use crate::industry::{IntensityCoefficients, IntensityPlan};

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
    ccer_cap_bp: u32,
    #[serde(default)]
    ccer_registered_after: u32,
    earliest_vintage: u16,
    penalty_multiple: String,
    deadline: u32,
    pre_allocation: SharesFile,
    power: PowerFile,
    industry: IndustryFile,
    carry_over: Option<CarryOverFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarryOverFile {
    base_t: u64,
    sales_multiple: String,
    vintage_from: u16,
    vintage_to: u16,
    sales_year_from: u16,
    sales_year_to: u16,
    holdings_date: u32,
    applications_until: u32,
    barred_if_missed: Vec<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFile {
    power: String,
    steel: String,
    cement: String,
    aluminium: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerFile {
    floor_share: String,
    gas_top_up: bool,
    #[serde(default)]
    floor_parts: bool,
    shortfall_rate_dp: Option<u32>,
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
    constant: Option<String>,
    a1: Option<String>,
    s1: Option<String>,
    a2: Option<String>,
    s2: Option<String>,
    threshold_pct: Option<String>,
    round_dp: Option<u32>,
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
    small_unit_t: Option<u64>,
    carbide_slag_rate_max: Option<String>,
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
        "exponential_decay" => {
            let key = |k: &str| format!("power.load_correction.{k}");
            let get = |k: &str, v: &Option<String>| required(&key(k), v);
            LoadCorrection::ExponentialDecay {
                constant: get("constant", &l.constant)?,
                a1: get("a1", &l.a1)?,
                s1: get("s1", &l.s1)?,
                a2: get("a2", &l.a2)?,
                s2: get("s2", &l.s2)?,
                threshold_pct: get("threshold_pct", &l.threshold_pct)?,
                round_dp: l.round_dp.ok_or_else(|| err(&key("round_dp"), "missing"))?,
            }
        }
        other => {
            return Err(err(
                "power.load_correction.kind",
                format!("{other:?} is not \"none\", \"exponential\" or \"exponential_decay\""),
            ));
        }
    })
}

fn industry(i: &IndustryFile) -> Result<IndustryMethod, PlanError> {
    Ok(match i.method.as_str() {
        "grandfathering" => IndustryMethod::Grandfathering,
        "intensity" => IndustryMethod::Intensity(IntensityPlan {
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
            small_unit_t: i
                .small_unit_t
                .ok_or_else(|| err("industry.small_unit_t", "missing"))?,
            carbide_slag_rate_max: fraction(
                "industry.carbide_slag_rate_max",
                required("industry.carbide_slag_rate_max", &i.carbide_slag_rate_max)?,
            )?,
        }),
        other => {
            return Err(err(
                "industry.method",
                format!("{other:?} is not \"grandfathering\" or \"intensity\""),
            ));
        }
    })
}

pub(crate) fn valid_date(v: u32) -> bool {
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
        let share = |key: &str, v: &str| fraction(key, decimal(key, v)?);
        let pre = &f.pre_allocation;
        let pre_allocation = SectorShares {
            power: share("pre_allocation.power", &pre.power)?,
            steel: share("pre_allocation.steel", &pre.steel)?,
            cement: share("pre_allocation.cement", &pre.cement)?,
            aluminium: share("pre_allocation.aluminium", &pre.aluminium)?,
        };
        let industry = industry(&f.industry)?;
        let benchmarks = benchmarks(&f.power.benchmarks)?;
        let carry_over = match &f.carry_over {
            None => None,
            Some(c) => Some(CarryOverRule {
                base_t: c.base_t,
                sales_multiple: decimal("carry_over.sales_multiple", &c.sales_multiple)?,
                vintage_from: c.vintage_from,
                vintage_to: c.vintage_to,
                sales_year_from: c.sales_year_from,
                sales_year_to: c.sales_year_to,
                holdings_date: c.holdings_date,
                applications_until: c.applications_until,
                barred_if_missed: c.barred_if_missed.clone(),
            }),
        };
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
                floor_parts: f.power.floor_parts,
                shortfall_rate_dp: f.power.shortfall_rate_dp,
            },
            industry,
            pre_allocation,
            ccer_cap_bp: f.ccer_cap_bp,
            ccer_registered_after: f.ccer_registered_after,
            earliest_vintage: f.earliest_vintage,
            penalty_multiple: decimal("penalty_multiple", &f.penalty_multiple)?,
            deadline: f.deadline,
            carry_over,
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
        if self
            .pre_allocation
            .all()
            .iter()
            .any(|(_, d)| !unit_interval(*d))
        {
            return Err((
                "pre_allocation",
                "each share must be a fraction from 0 to 1",
            ));
        }
        if self.ccer_cap_bp > 10_000 {
            return Err(("ccer_cap_bp", "must be at most 10000 (100%)"));
        }
        if self.ccer_registered_after != 0 && !valid_date(self.ccer_registered_after) {
            return Err(("ccer_registered_after", "must be 0 or a date YYYYMMDD"));
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
        if let Some(c) = &self.carry_over {
            c.validate(self.year)?;
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
        validate_load_correction(&self.power.load_correction)?;
        if self.power.shortfall_rate_dp.is_some_and(|dp| dp > 12) {
            return Err(("power.shortfall_rate_dp", "must be 0 to 12"));
        }
        if !unit_interval(self.power.floor_share) {
            return Err(("power.floor_share", "must be a fraction from 0 to 1"));
        }
        Ok(())
    }

    fn validate_industry(&self) -> Result<(), (&'static str, &'static str)> {
        if let IndustryMethod::Intensity(p) = &self.industry {
            let c = &p.coefficients;
            if !unit_interval(c.slope) || !unit_interval(c.band) || !unit_interval(c.cap) {
                return Err(("industry.slope", "slope, band and cap must be fractions"));
            }
            if p.tolerance_t <= Decimal::ZERO || p.tolerance_t > Decimal::from(1_000) {
                return Err(("industry.tolerance_t", "must be above 0 and at most 1000"));
            }
            if !(1..=1_000).contains(&p.iterations_max) {
                return Err(("industry.iterations_max", "must be 1 to 1000"));
            }
            if p.small_unit_t > crate::cycle::VERIFIED_T_MAX {
                return Err(("industry.small_unit_t", "must be at most 1,000,000,000 t"));
            }
            if !unit_interval(p.carbide_slag_rate_max) {
                return Err(("industry.carbide_slag_rate_max", "must be a fraction"));
            }
        }
        Ok(())
    }

    /// The plan as a TOML file (what `from_toml` reads back to the same plan).
    pub fn to_toml(&self) -> String {
        let b = &self.power.benchmarks;
        let pre = &self.pre_allocation;
        let shortfall = self
            .power
            .shortfall_rate_dp
            .map_or(String::new(), |dp| format!("shortfall_rate_dp = {dp}\n"));
        format!(
            "year = {}\nversion = \"{}\"\nccer_cap_bp = {}\nccer_registered_after = {}\nearliest_vintage = {}\npenalty_multiple = \"{}\"\ndeadline = {}\n\n[pre_allocation]\npower = \"{}\"\nsteel = \"{}\"\ncement = \"{}\"\naluminium = \"{}\"\n\n[power]\nfloor_share = \"{}\"\ngas_top_up = {}\nfloor_parts = {}\n{shortfall}benchmarks = {{ coal_large = \"{}\", coal_small = \"{}\", unconventional_coal = \"{}\", gas = \"{}\", heat_coal = \"{}\", heat_gas = \"{}\" }}\nload_correction = {}\n\n[industry]\n{}",
            self.year,
            self.version,
            self.ccer_cap_bp,
            self.ccer_registered_after,
            self.earliest_vintage,
            self.penalty_multiple,
            self.deadline,
            pre.power,
            pre.steel,
            pre.cement,
            pre.aluminium,
            self.power.floor_share,
            self.power.gas_top_up,
            self.power.floor_parts,
            b.coal_large,
            b.coal_small,
            b.unconventional_coal,
            b.gas,
            b.heat_coal,
            b.heat_gas,
            load_correction_toml(&self.power.load_correction),
            industry_toml(&self.industry),
        ) + &self
            .carry_over
            .as_ref()
            .map_or(String::new(), CarryOverRule::to_toml)
    }
}

/// The bounds of each load-correction family's parameters.
fn validate_load_correction(l: &LoadCorrection) -> Result<(), (&'static str, &'static str)> {
    if let LoadCorrection::Exponential {
        base,
        offset,
        slope,
        threshold,
    } = *l
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
    if let LoadCorrection::ExponentialDecay {
        constant,
        a1,
        s1,
        a2,
        s2,
        threshold_pct,
        round_dp,
    } = *l
    {
        let hundred = Decimal::ONE_HUNDRED;
        if [constant, a1, a2].iter().any(|d| d.abs() > hundred) {
            return Err((
                "power.load_correction.constant",
                "constant, a1 and a2 must be from -100 to 100",
            ));
        }
        // The scales divide the load; below 0.1 the exponent leaves Decimal's range.
        if [s1, s2]
            .iter()
            .any(|d| *d < Decimal::new(1, 1) || *d > hundred)
        {
            return Err((
                "power.load_correction.s1",
                "s1 and s2 must be from 0.1 to 100",
            ));
        }
        if threshold_pct < Decimal::ZERO || threshold_pct > hundred {
            return Err(("power.load_correction.threshold_pct", "must be 0 to 100"));
        }
        if round_dp > 12 {
            return Err(("power.load_correction.round_dp", "must be 0 to 12"));
        }
    }
    Ok(())
}

fn load_correction_toml(l: &LoadCorrection) -> String {
    match *l {
        LoadCorrection::None => "{ kind = \"none\" }".to_string(),
        LoadCorrection::Exponential {
            base,
            offset,
            slope,
            threshold,
        } => format!(
            "{{ kind = \"exponential\", base = \"{base}\", offset = \"{offset}\", slope = \"{slope}\", threshold = \"{threshold}\" }}"
        ),
        LoadCorrection::ExponentialDecay {
            constant,
            a1,
            s1,
            a2,
            s2,
            threshold_pct,
            round_dp,
        } => format!(
            "{{ kind = \"exponential_decay\", constant = \"{constant}\", a1 = \"{a1}\", s1 = \"{s1}\", a2 = \"{a2}\", s2 = \"{s2}\", threshold_pct = \"{threshold_pct}\", round_dp = {round_dp} }}"
        ),
    }
}

fn industry_toml(m: &IndustryMethod) -> String {
    match m {
        IndustryMethod::Grandfathering => "method = \"grandfathering\"\n".to_string(),
        IndustryMethod::Intensity(p) => format!(
            "method = \"intensity\"\nslope = \"{}\"\nband = \"{}\"\ncap = \"{}\"\ntolerance_t = \"{}\"\niterations_max = {}\nsmall_unit_t = {}\ncarbide_slag_rate_max = \"{}\"\n",
            p.coefficients.slope,
            p.coefficients.band,
            p.coefficients.cap,
            p.tolerance_t,
            p.iterations_max,
            p.small_unit_t,
            p.carbide_slag_rate_max
        ),
    }
}

/// Marks the second and later encodings (the first began with the year, never 0xFFFF).
const FORMAT_MARKER: u16 = 0xFFFF;
/// The encoding written now.
const FORMAT: u8 = 3;

pub(crate) fn encode_plan(w: &mut Writer, p: &Plan) {
    w.u16(FORMAT_MARKER).u8(FORMAT).u16(p.year).str(&p.version);
    encode_power(w, &p.power);
    match &p.industry {
        IndustryMethod::Grandfathering => {
            w.u8(0);
        }
        IndustryMethod::Intensity(i) => {
            w.u8(1)
                .dec(i.coefficients.slope)
                .dec(i.coefficients.band)
                .dec(i.coefficients.cap)
                .dec(i.tolerance_t)
                .u32(i.iterations_max)
                .u64(i.small_unit_t)
                .dec(i.carbide_slag_rate_max);
        }
    }
    for (_, share) in p.pre_allocation.all() {
        w.dec(share);
    }
    w.u32(p.ccer_cap_bp)
        .u32(p.ccer_registered_after)
        .u16(p.earliest_vintage)
        .dec(p.penalty_multiple)
        .u32(p.deadline);
    match &p.carry_over {
        None => {
            w.u8(0);
        }
        Some(c) => {
            w.u8(1);
            c.encode(w);
        }
    }
}

fn encode_power(w: &mut Writer, p: &PowerPlan) {
    let b = &p.benchmarks;
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
    match p.load_correction {
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
        LoadCorrection::ExponentialDecay {
            constant,
            a1,
            s1,
            a2,
            s2,
            threshold_pct,
            round_dp,
        } => {
            w.u8(2)
                .dec(constant)
                .dec(a1)
                .dec(s1)
                .dec(a2)
                .dec(s2)
                .dec(threshold_pct)
                .u32(round_dp);
        }
    }
    w.dec(p.floor_share).bool(p.gas_top_up).bool(p.floor_parts);
    match p.shortfall_rate_dp {
        None => w.u8(0),
        Some(dp) => w.u8(1).u32(dp),
    };
}

fn decode_power(r: &mut Reader<'_>, format: u8) -> Result<PowerPlan, RegistryError> {
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
        2 if format >= 2 => LoadCorrection::ExponentialDecay {
            constant: r.dec()?,
            a1: r.dec()?,
            s1: r.dec()?,
            a2: r.dec()?,
            s2: r.dec()?,
            threshold_pct: r.dec()?,
            round_dp: r.u32()?,
        },
        _ => return Err(RegistryError::Corrupt("load correction".into())),
    };
    let floor_share = r.dec()?;
    let gas_top_up = r.bool()?;
    let (floor_parts, shortfall_rate_dp) = if format >= 2 {
        let parts = r.bool()?;
        let dp = match r.u8()? {
            0 => None,
            _ => Some(r.u32()?),
        };
        (parts, dp)
    } else {
        (false, None)
    };
    Ok(PowerPlan {
        benchmarks,
        load_correction,
        floor_share,
        gas_top_up,
        floor_parts,
        shortfall_rate_dp,
    })
}

fn decode_industry(r: &mut Reader<'_>, format: u8) -> Result<IndustryMethod, RegistryError> {
    Ok(match r.u8()? {
        0 => IndustryMethod::Grandfathering,
        1 => {
            let coefficients = IntensityCoefficients {
                slope: r.dec()?,
                band: r.dec()?,
                cap: r.dec()?,
            };
            let tolerance_t = r.dec()?;
            let iterations_max = r.u32()?;
            // The first format had no special cases beyond what it was told: no small-unit
            // threshold, no carbide-slag limit.
            let (small_unit_t, carbide_slag_rate_max) = if format >= 2 {
                (r.u64()?, r.dec()?)
            } else {
                (0, Decimal::ONE)
            };
            IndustryMethod::Intensity(IntensityPlan {
                coefficients,
                tolerance_t,
                iterations_max,
                small_unit_t,
                carbide_slag_rate_max,
            })
        }
        _ => return Err(RegistryError::Corrupt("industry method".into())),
    })
}

pub(crate) fn decode_plan(r: &mut Reader<'_>) -> Result<Plan, RegistryError> {
    let first = r.u16()?;
    let (format, year) = if first == FORMAT_MARKER {
        match r.u8()? {
            f @ (2 | 3) => (f, r.u16()?),
            _ => return Err(RegistryError::Corrupt("plan format".into())),
        }
    } else {
        (1, first)
    };
    let version = r.str()?;
    let power = decode_power(r, format)?;
    let industry = decode_industry(r, format)?;
    let pre_allocation = if format >= 2 {
        SectorShares {
            power: r.dec()?,
            steel: r.dec()?,
            cement: r.dec()?,
            aluminium: r.dec()?,
        }
    } else {
        let share = r.dec()?;
        SectorShares {
            power: share,
            steel: share,
            cement: share,
            aluminium: share,
        }
    };
    let ccer_cap_bp = r.u32()?;
    let ccer_registered_after = r.u32()?;
    if format < 2 && ccer_registered_after != 0 {
        // The first format's field was an upper bound on the registration date, which the
        // plans never set; one that did cannot be read as the lower bound it is now.
        return Err(RegistryError::Corrupt(
            "plan of the first format with a CCER upper bound".into(),
        ));
    }
    let (earliest_vintage, penalty_multiple, deadline) = (r.u16()?, r.dec()?, r.u32()?);
    let carry_over = match (format, if format >= 3 { r.u8()? } else { 0 }) {
        (_, 0) => None,
        (_, 1) => Some(CarryOverRule::decode(r)?),
        _ => return Err(RegistryError::Corrupt("plan carry-over".into())),
    };
    Ok(Plan {
        year,
        version,
        power,
        industry,
        pre_allocation,
        ccer_cap_bp,
        ccer_registered_after,
        earliest_vintage,
        penalty_multiple,
        deadline,
        carry_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan journaled in the first format (before per-sector shares and the marker) still
    /// reads: its one share for every sector, no CCER bound, no small-unit threshold.
    #[test]
    fn a_plan_of_the_first_format_still_reads() {
        let mut w = Writer::default();
        w.u16(2025).str("2025.old");
        for d in ["0.7910", "0.8049", "0.8244", "0.3288", "0.1033", "0.0533"] {
            w.dec(Decimal::from_str(d).unwrap_or_default());
        }
        w.u8(0).dec(Decimal::new(8, 1)).bool(true);
        w.u8(1)
            .dec(Decimal::new(15, 2))
            .dec(Decimal::new(20, 2))
            .dec(Decimal::new(3, 2))
            .dec(Decimal::new(5, 1))
            .u32(200);
        w.dec(Decimal::new(50, 2)).u32(500).u32(0).u16(2025);
        w.dec(Decimal::from(5)).u32(20_261_231);
        let plan = decode_plan(&mut Reader::new(&w.0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.year, 2025);
        assert_eq!(
            plan.pre_allocation.of(crate::model::Sector::Cement),
            Decimal::new(50, 2)
        );
        assert_eq!(plan.ccer_registered_after, 0);
        match plan.industry {
            IndustryMethod::Intensity(p) => {
                assert_eq!((p.small_unit_t, p.carbide_slag_rate_max), (0, Decimal::ONE));
            }
            IndustryMethod::Grandfathering => panic!("method lost"),
        }
        // Re-encoded, it is the second format and reads back the same.
        let mut again = Writer::default();
        encode_plan(&mut again, &plan);
        let read = decode_plan(&mut Reader::new(&again.0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, plan);
    }
}
