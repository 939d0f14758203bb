//! The intensity-coefficient method of steel, cement and aluminium (2025-2026 draft §3(二),
//! Tables 2-2 to 2-4), as pure functions over plain data.
//!
//! **Allocation units** differ by sector, each with its own E and intensity I:
//! - steel: the legal entity, `E` = its verified emissions,
//!   `I = (E_ironmaking + E_sintering) / ironmaking product` (process-level emissions of its
//!   ironmaking and sintering processes over their hot metal, not its total over output);
//! - cement: each clinker line, `E` = the line's fuel + process emissions,
//!   `I = E / clinker`; the entity's allocation is the sum over its lines;
//! - aluminium: each electrolysis process, `E` = anode CO2 + PFC CO2e,
//!   `I = E / liquid aluminium`.
//!
//! A unit's allocation is `A = E x (1 + a)` with `X = (BP - I) / BP` and `a = slope x X`
//! inside `(-band, band)`, `+cap` at `X >= band`, `-cap` at `X <= -band`, floored per unit.
//! **Special cases** get `A = E` and are left out of the balance: white Portland clinker,
//! carbide-slag substitution above the plan's rate, gypsum-sulfuric-acid co-product clinker,
//! the hydrogen-rich carbon-cycle oxygen blast furnace, units closed before allocation, newly
//! commissioned units, and units verified below the plan's small-unit threshold.
//!
//! The sector balance value BP is solved over the other units so that their allocation
//! equals their verified emissions: `f(BP) = sum E_i a_i(BP)` is continuous and
//! non-decreasing in BP (slope x band = cap), negative or zero at the lowest intensity and
//! positive or zero at the highest, so bisection between them converges; it stops when
//! `|f(BP)| < tolerance_t` or after `iterations_max` halvings.

use std::fmt::Write;

use rust_decimal::prelude::*;
use rust_decimal_macros::dec;

use crate::allocation::{AllocationError, floor_t};
use crate::model::{AccountId, Sector};

/// What a facility of an industrial entity is, for its sector's allocation unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    /// Recorded before processes were named: refused by the intensity method until the
    /// entity is loaded again.
    Unspecified,
    /// Steel: blast furnace or other ironmaking (its output: hot metal, DRI...).
    Ironmaking,
    /// Steel: sintering (and pelletising).
    Sintering,
    /// Cement: a clinker production line.
    ClinkerLine,
    /// Aluminium: an electrolysis process (pot line).
    Electrolysis,
    /// Any other process: reported, not an allocation unit or part of an intensity.
    Other,
}

impl Process {
    /// The processes an entity of `sector` may have.
    pub fn fits(self, sector: Sector) -> bool {
        match self {
            Process::Unspecified => false,
            Process::Other => sector != Sector::Power,
            Process::Ironmaking | Process::Sintering => sector == Sector::Steel,
            Process::ClinkerLine => sector == Sector::Cement,
            Process::Electrolysis => sector == Sector::Aluminium,
        }
    }

    /// Its output is the product its sector's intensity divides by (hot metal, clinker,
    /// liquid aluminium).
    pub fn makes_intensity_product(self) -> bool {
        matches!(
            self,
            Process::Ironmaking | Process::ClinkerLine | Process::Electrolysis
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Process::Unspecified => "unspecified",
            Process::Ironmaking => "ironmaking",
            Process::Sintering => "sintering",
            Process::ClinkerLine => "clinker_line",
            Process::Electrolysis => "electrolysis",
            Process::Other => "other",
        }
    }
}

/// A special case declared for a facility's year (the plan's list; allocation = E).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialCase {
    /// Cement: the line makes white Portland clinker only.
    WhitePortlandClinker,
    /// Cement: clinker co-produced with sulfuric acid from gypsum.
    GypsumSulfuricAcid,
    /// Steel: a hydrogen-rich carbon-cycle oxygen blast furnace.
    HydrogenRichBlastFurnace,
    /// Closed before the allocation.
    ClosedBeforeAllocation,
    /// Newly commissioned in the year.
    NewlyCommissioned,
}

impl SpecialCase {
    pub fn name(self) -> &'static str {
        match self {
            SpecialCase::WhitePortlandClinker => "white_portland_clinker",
            SpecialCase::GypsumSulfuricAcid => "gypsum_sulfuric_acid",
            SpecialCase::HydrogenRichBlastFurnace => "hydrogen_rich_blast_furnace",
            SpecialCase::ClosedBeforeAllocation => "closed_before_allocation",
            SpecialCase::NewlyCommissioned => "newly_commissioned",
        }
    }

    /// The special cases a facility of `process` may declare.
    pub fn fits(self, process: Process) -> bool {
        match self {
            SpecialCase::WhitePortlandClinker | SpecialCase::GypsumSulfuricAcid => {
                process == Process::ClinkerLine
            }
            SpecialCase::HydrogenRichBlastFurnace => process == Process::Ironmaking,
            SpecialCase::ClosedBeforeAllocation | SpecialCase::NewlyCommissioned => {
                process != Process::Unspecified
            }
        }
    }
}

/// Why a unit is allocated its verified emissions instead of by intensity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exemption {
    Declared(SpecialCase),
    /// Cement: carbide-slag substitution rate above the plan's.
    CarbideSlag {
        rate: Decimal,
        max: Decimal,
    },
    /// Verified below the plan's small-unit threshold.
    Small {
        threshold_t: u64,
    },
}

impl Exemption {
    fn describe(&self) -> String {
        match self {
            Exemption::Declared(c) => c.name().to_string(),
            Exemption::CarbideSlag { rate, max } => {
                format!("carbide-slag rate {rate} above {max}")
            }
            Exemption::Small { threshold_t } => format!("verified below {threshold_t} t"),
        }
    }
}

/// A facility's data for the year, as the intensity method reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessYear {
    pub facility: u32,
    pub process: Process,
    /// The process's product, t: hot metal (ironmaking), sinter, clinker, liquid aluminium.
    pub output_t: Decimal,
    /// The process's verified emissions, t CO2 (cement: fuel + process; aluminium: anode).
    pub emissions_t: Decimal,
    /// Aluminium: anode-effect PFC emissions, t CO2e.
    pub pfc_co2e_t: Decimal,
    /// Cement: carbide-slag substitution rate (a fraction).
    pub carbide_slag_rate: Decimal,
    pub special: Option<SpecialCase>,
}

/// The intensity method's parameters (plan data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntensityPlan {
    pub coefficients: IntensityCoefficients,
    pub tolerance_t: Decimal,
    pub iterations_max: u32,
    /// Units verified below this are special cases (2026 draft: 26,000 t).
    pub small_unit_t: u64,
    /// Clinker lines above this carbide-slag rate are special cases (2025: 0.15; 2026: 0.30).
    pub carbide_slag_rate_max: Decimal,
}

impl IntensityPlan {
    pub fn draft_2025() -> IntensityPlan {
        IntensityPlan {
            coefficients: IntensityCoefficients::draft_2025(),
            tolerance_t: dec!(0.5),
            iterations_max: 200,
            small_unit_t: 26_000,
            carbide_slag_rate_max: dec!(0.15),
        }
    }
}

/// Coefficients of the intensity method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntensityCoefficients {
    pub slope: Decimal,
    pub band: Decimal,
    pub cap: Decimal,
}

impl IntensityCoefficients {
    /// The 2025-2026 draft plan: a = 0.15 X within +/-20%, +/-0.03 beyond.
    pub fn draft_2025() -> IntensityCoefficients {
        IntensityCoefficients {
            slope: dec!(0.15),
            band: dec!(0.20),
            cap: dec!(0.03),
        }
    }

    /// The adjustment `a` for deviation `x`.
    pub fn adjustment(&self, x: Decimal) -> Decimal {
        if x >= self.band {
            self.cap
        } else if x <= -self.band {
            -self.cap
        } else {
            self.slope * x
        }
    }
}

/// One allocation unit: verified emissions E (t) and intensity I (t CO2 per t product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntensityUnit {
    pub verified_t: Decimal,
    pub intensity: Decimal,
}

/// The solved balance value and how well it balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceSolution {
    pub balance_value: Decimal,
    pub iterations: u32,
    /// Sector allocation minus verified emissions before flooring, tonnes.
    pub residual_t: Decimal,
    /// Sum of verified emissions minus the sum of floored allocations of the units the
    /// balance value was solved over: `-tolerance_t < shortfall < units + tolerance_t`
    /// (each floor loses less than one tonne).
    pub floored_shortfall_t: Decimal,
}

/// Allocation of one unit at balance value `bp`, exact (before flooring).
pub fn intensity_allocation(
    entity: &IntensityUnit,
    bp: Decimal,
    c: &IntensityCoefficients,
) -> Decimal {
    let x = (bp - entity.intensity) / bp;
    entity.verified_t * (Decimal::ONE + c.adjustment(x))
}

/// Solves the sector balance value BP by bisection (see the module docs).
pub fn solve_balance_value(
    entities: &[IntensityUnit],
    c: &IntensityCoefficients,
    tolerance_t: Decimal,
    iterations_max: u32,
) -> Result<BalanceSolution, AllocationError> {
    let active: Vec<&IntensityUnit> = entities
        .iter()
        .filter(|e| !e.verified_t.is_zero())
        .collect();
    for e in &active {
        if e.verified_t.is_sign_negative() {
            return Err(AllocationError::Invalid {
                field: "verified_t",
                why: "must not be negative",
            });
        }
        if e.intensity <= Decimal::ZERO {
            return Err(AllocationError::Invalid {
                field: "intensity",
                why: "must be positive",
            });
        }
    }
    let residual = |bp: Decimal| {
        active
            .iter()
            .map(|e| e.verified_t * c.adjustment((bp - e.intensity) / bp))
            .sum::<Decimal>()
    };
    let mut low = active
        .iter()
        .map(|e| e.intensity)
        .min()
        .ok_or(AllocationError::EmptySector)?;
    let mut high = active
        .iter()
        .map(|e| e.intensity)
        .max()
        .ok_or(AllocationError::EmptySector)?;
    let mut iterations = 0;
    let mut bp = (low + high) / dec!(2);
    let mut r = residual(bp);
    while r.abs() >= tolerance_t && iterations < iterations_max && high > low {
        if r > Decimal::ZERO {
            high = bp;
        } else {
            low = bp;
        }
        bp = (low + high) / dec!(2);
        r = residual(bp);
        iterations += 1;
    }
    let verified: Decimal = active.iter().map(|e| e.verified_t).sum();
    let floored = active
        .iter()
        .map(|e| floor_t(intensity_allocation(e, bp, c)).map(Decimal::from))
        .sum::<Result<Decimal, AllocationError>>()?;
    Ok(BalanceSolution {
        balance_value: bp,
        iterations,
        residual_t: r,
        floored_shortfall_t: verified - floored,
    })
}

/// One allocation unit and how its E and I were formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub account: AccountId,
    /// The clinker line or electrolysis process; `None` for a steel entity.
    pub facility: Option<u32>,
    pub verified_t: Decimal,
    /// Zero for an exempt unit without output.
    pub intensity: Decimal,
    pub exemption: Option<Exemption>,
    /// How E and I were formed, for the explanation.
    pub basis: String,
}

/// An industrial entity's year as the method reads it.
#[derive(Clone, Copy, Debug)]
pub struct EntityInput<'a> {
    pub account: AccountId,
    pub sector: Sector,
    /// The entity's verified emissions (its obligation), t CO2e.
    pub verified_t: u64,
    pub processes: &'a [ProcessYear],
}

fn missing(account: AccountId, what: impl Into<String>) -> AllocationError {
    AllocationError::ActivityMissing {
        account: account.0,
        what: what.into(),
    }
}

fn ratio(e: Decimal, q: Decimal) -> Decimal {
    if q.is_zero() { Decimal::ZERO } else { e / q }
}

/// The allocation units of one entity (none at zero emissions).
pub fn units_of(plan: &IntensityPlan, e: &EntityInput<'_>) -> Result<Vec<Unit>, AllocationError> {
    match e.sector {
        Sector::Steel => steel_unit(plan, e),
        Sector::Cement => line_units(plan, e, Process::ClinkerLine),
        Sector::Aluminium => line_units(plan, e, Process::Electrolysis),
        Sector::Power => Err(AllocationError::Invalid {
            field: "sector",
            why: "power is allocated by benchmark",
        }),
    }
}

/// Steel: the entity is the unit; its intensity is its ironmaking and sintering emissions
/// over its ironmaking product.
fn steel_unit(plan: &IntensityPlan, e: &EntityInput<'_>) -> Result<Vec<Unit>, AllocationError> {
    if e.verified_t == 0 {
        return Ok(Vec::new());
    }
    let sum = |process: Process, figure: fn(&ProcessYear) -> Decimal| -> Decimal {
        e.processes
            .iter()
            .filter(|p| p.process == process)
            .map(figure)
            .sum()
    };
    let e_iron = sum(Process::Ironmaking, |p| p.emissions_t);
    let e_sinter = sum(Process::Sintering, |p| p.emissions_t);
    let q_iron = sum(Process::Ironmaking, |p| p.output_t);
    let exemption = e
        .processes
        .iter()
        .find_map(|p| p.special.map(Exemption::Declared))
        .or_else(|| {
            (e.verified_t < plan.small_unit_t).then_some(Exemption::Small {
                threshold_t: plan.small_unit_t,
            })
        });
    if q_iron.is_zero() && exemption.is_none() {
        return Err(missing(e.account, "no ironmaking output for its intensity"));
    }
    let intensity = ratio(e_iron + e_sinter, q_iron);
    Ok(vec![Unit {
        account: e.account,
        facility: None,
        verified_t: Decimal::from(e.verified_t),
        intensity,
        exemption,
        basis: format!(
            "E = verified {} t; I = (E_ironmaking {e_iron} + E_sintering {e_sinter}) / ironmaking product {q_iron} t = {}",
            e.verified_t,
            intensity.round_dp(6)
        ),
    }])
}

/// Cement and aluminium: each clinker line or electrolysis process is a unit of its own.
fn line_units(
    plan: &IntensityPlan,
    e: &EntityInput<'_>,
    process: Process,
) -> Result<Vec<Unit>, AllocationError> {
    let mut units = Vec::new();
    for p in e.processes.iter().filter(|p| p.process == process) {
        let verified = p.emissions_t + p.pfc_co2e_t;
        if verified.is_zero() {
            continue;
        }
        let exemption = p
            .special
            .map(Exemption::Declared)
            .or_else(|| {
                (p.carbide_slag_rate > plan.carbide_slag_rate_max).then_some(
                    Exemption::CarbideSlag {
                        rate: p.carbide_slag_rate,
                        max: plan.carbide_slag_rate_max,
                    },
                )
            })
            .or_else(|| {
                (verified < Decimal::from(plan.small_unit_t)).then_some(Exemption::Small {
                    threshold_t: plan.small_unit_t,
                })
            });
        if p.output_t.is_zero() && exemption.is_none() {
            return Err(missing(
                e.account,
                format!("facility {} has emissions but no output", p.facility),
            ));
        }
        let intensity = ratio(verified, p.output_t);
        let basis = if process == Process::Electrolysis {
            format!(
                "process {}: E = anode CO2 {} + PFC {} CO2e = {verified} t; I = E / liquid aluminium {} t = {}",
                p.facility,
                p.emissions_t,
                p.pfc_co2e_t,
                p.output_t,
                intensity.round_dp(6)
            )
        } else {
            format!(
                "line {}: E = {verified} t; I = E / clinker {} t = {}",
                p.facility,
                p.output_t,
                intensity.round_dp(6)
            )
        };
        units.push(Unit {
            account: e.account,
            facility: Some(p.facility),
            verified_t: verified,
            intensity,
            exemption,
            basis,
        });
    }
    if units.is_empty() && e.verified_t > 0 {
        return Err(missing(
            e.account,
            format!("verified emissions but no {} emissions", process.name()),
        ));
    }
    Ok(units)
}

/// One unit's allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitAllocation {
    pub unit: Unit,
    /// The deviation X and adjustment a (by intensity only).
    pub x: Option<Decimal>,
    pub a: Option<Decimal>,
    pub exact_t: Decimal,
    pub allocated_t: u64,
}

impl UnitAllocation {
    /// The computation in one line, for reports.
    pub fn explain(&self, bp: Option<Decimal>) -> String {
        let mut text = self.unit.basis.clone();
        match (&self.unit.exemption, self.x, self.a, bp) {
            (Some(why), ..) => {
                let _ = write!(
                    text,
                    "; special case ({}): A = E -> {} t",
                    why.describe(),
                    self.allocated_t
                );
            }
            (None, Some(x), Some(a), Some(bp)) => {
                let _ = write!(
                    text,
                    "; BP = {}; X = (BP - I)/BP = {}; a = {}; A = E x (1 + a) = {} -> {} t",
                    bp.round_dp(6),
                    x.round_dp(6),
                    a.round_dp(6),
                    self.exact_t.round_dp(4),
                    self.allocated_t
                );
            }
            _ => {}
        }
        text
    }
}

/// A sector's allocation: its balance value (if any unit is not a special case) and every
/// unit's allocation, in the entities' order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorAllocation {
    pub balance: Option<BalanceSolution>,
    pub units: Vec<UnitAllocation>,
}

/// Allocates one sector: units formed, BP solved over those not special, each floored.
pub fn allocate_sector(
    plan: &IntensityPlan,
    entities: &[EntityInput<'_>],
) -> Result<SectorAllocation, AllocationError> {
    let mut units = Vec::new();
    for e in entities {
        units.extend(units_of(plan, e)?);
    }
    let balanced: Vec<IntensityUnit> = units
        .iter()
        .filter(|u| u.exemption.is_none())
        .map(|u| IntensityUnit {
            verified_t: u.verified_t,
            intensity: u.intensity,
        })
        .collect();
    let balance = if balanced.is_empty() {
        None
    } else {
        Some(solve_balance_value(
            &balanced,
            &plan.coefficients,
            plan.tolerance_t,
            plan.iterations_max,
        )?)
    };
    let c = &plan.coefficients;
    let units = units
        .into_iter()
        .map(|unit| {
            let (x, a, exact_t) = match (&unit.exemption, &balance) {
                (None, Some(b)) => {
                    let bp = b.balance_value;
                    let x = (bp - unit.intensity) / bp;
                    let a = c.adjustment(x);
                    (Some(x), Some(a), unit.verified_t * (Decimal::ONE + a))
                }
                _ => (None, None, unit.verified_t),
            };
            Ok(UnitAllocation {
                allocated_t: floor_t(exact_t)?,
                unit,
                x,
                a,
                exact_t,
            })
        })
        .collect::<Result<Vec<_>, AllocationError>>()?;
    Ok(SectorAllocation { balance, units })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adjustment_is_continuous_at_the_band_edges() {
        let c = IntensityCoefficients::draft_2025();
        assert_eq!(c.adjustment(dec!(0.2)), dec!(0.03));
        assert_eq!(c.adjustment(dec!(0.19)), dec!(0.0285));
        assert_eq!(c.adjustment(dec!(-0.5)), dec!(-0.03));
        assert_eq!(c.adjustment(dec!(0)), dec!(0));
    }

    #[test]
    fn the_balance_value_solver_balances_the_sector() {
        // Three cement producers: intensities 0.80, 0.85, 0.95 t CO2 / t clinker.
        let entities = [
            IntensityUnit {
                verified_t: dec!(1_000_000),
                intensity: dec!(0.80),
            },
            IntensityUnit {
                verified_t: dec!(2_000_000),
                intensity: dec!(0.85),
            },
            IntensityUnit {
                verified_t: dec!(1_500_000),
                intensity: dec!(0.95),
            },
        ];
        let c = IntensityCoefficients::draft_2025();
        let solution = solve_balance_value(&entities, &c, dec!(0.5), 200).unwrap();
        assert!(
            solution.residual_t.abs() < dec!(0.5),
            "residual {}",
            solution.residual_t
        );
        let exact: Decimal = entities
            .iter()
            .map(|e| intensity_allocation(e, solution.balance_value, &c))
            .sum();
        assert!((exact - dec!(4_500_000)).abs() < dec!(0.5));
        // Flooring each of three entities loses less than one tonne each.
        assert!(
            solution.floored_shortfall_t >= Decimal::ZERO && solution.floored_shortfall_t < dec!(3)
        );
        // The cleanest producer gains, the dirtiest loses.
        assert!(intensity_allocation(&entities[0], solution.balance_value, &c) > dec!(1_000_000));
        assert!(intensity_allocation(&entities[2], solution.balance_value, &c) < dec!(1_500_000));
        assert!(solution.iterations < 100);
    }
}
