//! Allocation formulas (section 5 of the market rules), in `rust_decimal`, floored to whole
//! tonnes only at the end. Every coefficient comes from the plan passed in, never from code.
//!
//! Power (benchmark method), per generating unit: `A = Qe x Be x Ff + Qh x Bh` (gas: no Ff);
//! gas units topped up to their verified emissions; the entity topped up to the plan's floor
//! share of its verified emissions.
//! Steel, cement, aluminium from 2025 (intensity coefficient): `A = E x (1 + a)`, with
//! `X = (BP - I) / BP` and `a = slope x X` inside `(-band, band)`, `+cap` at `X >= band`,
//! `-cap` at `X <= -band`. The sector balance value BP is solved so that the sector's
//! allocation equals its verified emissions: `f(BP) = sum E_i a_i(BP)` is continuous and
//! non-decreasing in BP (slope x band = cap), negative or zero at the lowest intensity and
//! positive or zero at the highest, so bisection between them converges; it stops when
//! `|f(BP)| < tolerance_t` or after `iterations_max` halvings.

use rust_decimal::prelude::*;
use rust_decimal_macros::dec;

/// Why an allocation could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("invalid input {field}: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
    #[error("the sector has no entity with emissions")]
    EmptySector,
    /// The formulas give a figure from 0 to 2^64 t; one outside is a broken invariant,
    /// refused (never floored to 0 t in silence).
    #[error("a computed allocation of {0} t is outside 0 to 2^64 t")]
    OutOfRange(Decimal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitCategory {
    /// Conventional coal, rated capacity >= 400 MW.
    CoalLarge,
    /// Conventional coal, < 400 MW.
    CoalSmall,
    /// Unconventional coal (coal gangue, CFB...).
    UnconventionalCoal,
    Gas,
}

/// Benchmarks of the plan: tCO2/MWh for electricity, tCO2/GJ for heat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerBenchmarks {
    pub coal_large: Decimal,
    pub coal_small: Decimal,
    pub unconventional_coal: Decimal,
    pub gas: Decimal,
    pub heat_coal: Decimal,
    pub heat_gas: Decimal,
}

impl PowerBenchmarks {
    /// The 2023-2024 power plan's values.
    pub fn plan_2024() -> PowerBenchmarks {
        PowerBenchmarks {
            coal_large: dec!(0.7910),
            coal_small: dec!(0.8049),
            unconventional_coal: dec!(0.8244),
            gas: dec!(0.3288),
            heat_coal: dec!(0.1033),
            heat_gas: dec!(0.0533),
        }
    }

    fn electricity(&self, category: UnitCategory) -> Decimal {
        match category {
            UnitCategory::CoalLarge => self.coal_large,
            UnitCategory::CoalSmall => self.coal_small,
            UnitCategory::UnconventionalCoal => self.unconventional_coal,
            UnitCategory::Gas => self.gas,
        }
    }

    fn heat(&self, category: UnitCategory) -> Decimal {
        if category == UnitCategory::Gas {
            self.heat_gas
        } else {
            self.heat_coal
        }
    }
}

/// The load-correction factor Ff as a function of the load factor F (a fraction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadCorrection {
    /// Ff = 1.
    None,
    /// Ff = base^(offset - slope x F) for F < threshold, else 1; applies to conventional coal
    /// only. The 2023-2024 plan: base 1.015, offset 16, slope 20, threshold 0.65.
    Exponential {
        base: Decimal,
        offset: Decimal,
        slope: Decimal,
        threshold: Decimal,
    },
}

impl LoadCorrection {
    pub fn plan_2024() -> LoadCorrection {
        LoadCorrection::Exponential {
            base: dec!(1.015),
            offset: dec!(16),
            slope: dec!(20),
            threshold: dec!(0.65),
        }
    }

    pub fn factor(&self, category: UnitCategory, load_factor: Decimal) -> Decimal {
        match (self, category) {
            (
                LoadCorrection::Exponential {
                    base,
                    offset,
                    slope,
                    threshold,
                },
                UnitCategory::CoalLarge | UnitCategory::CoalSmall,
            ) if load_factor < *threshold => base.powd(*offset - *slope * load_factor),
            _ => Decimal::ONE,
        }
    }
}

/// The power part of an allocation plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerPlan {
    pub benchmarks: PowerBenchmarks,
    pub load_correction: LoadCorrection,
    /// Entity allocation is at least this share of its verified emissions (0.8).
    pub floor_share: Decimal,
    /// Gas units get at least their verified emissions.
    pub gas_top_up: bool,
}

impl PowerPlan {
    pub fn plan_2024() -> PowerPlan {
        PowerPlan {
            benchmarks: PowerBenchmarks::plan_2024(),
            load_correction: LoadCorrection::plan_2024(),
            floor_share: dec!(0.8),
            gas_top_up: true,
        }
    }
}

/// One generating unit's activity data for the year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerUnit {
    pub category: UnitCategory,
    /// Electricity supplied, MWh.
    pub electricity_mwh: Decimal,
    /// Heat supplied, GJ.
    pub heat_gj: Decimal,
    /// Load factor as a fraction (0.55 for 55%).
    pub load_factor: Decimal,
    /// Verified emissions of the unit, tCO2.
    pub verified_t: Decimal,
}

/// How one unit's allocation was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitExplanation {
    pub benchmark: Decimal,
    pub load_factor_correction: Decimal,
    pub electricity_part_t: Decimal,
    pub heat_part_t: Decimal,
    /// After the gas top-up, if any.
    pub unit_t: Decimal,
}

/// How an entity's allocation was computed, step by step to the floored tonnes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityExplanation {
    pub units: Vec<UnitExplanation>,
    pub units_sum_t: Decimal,
    pub floor_t: Decimal,
    pub exact_t: Decimal,
    pub allocated_t: u64,
}

fn non_negative(value: Decimal, field: &'static str) -> Result<(), AllocationError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(AllocationError::Invalid {
            field,
            why: "must not be negative",
        });
    }
    Ok(())
}

/// Floors a computed allocation to whole tonnes (refused outside 0 to 2^64 t).
pub fn floor_t(value: Decimal) -> Result<u64, AllocationError> {
    value
        .floor()
        .to_u64()
        .ok_or(AllocationError::OutOfRange(value))
}

/// A power entity's allocation for the year.
pub fn allocate_power(
    plan: &PowerPlan,
    units: &[PowerUnit],
    entity_verified_t: Decimal,
) -> Result<EntityExplanation, AllocationError> {
    non_negative(entity_verified_t, "verified_t")?;
    let mut explained = Vec::with_capacity(units.len());
    for unit in units {
        non_negative(unit.electricity_mwh, "electricity_mwh")?;
        non_negative(unit.heat_gj, "heat_gj")?;
        non_negative(unit.verified_t, "unit verified_t")?;
        if unit.load_factor.is_sign_negative() || unit.load_factor > Decimal::ONE {
            return Err(AllocationError::Invalid {
                field: "load_factor",
                why: "must be a fraction from 0 to 1",
            });
        }
        let benchmark = plan.benchmarks.electricity(unit.category);
        let ff = plan.load_correction.factor(unit.category, unit.load_factor);
        let electricity_part_t = unit.electricity_mwh * benchmark * ff;
        let heat_part_t = unit.heat_gj * plan.benchmarks.heat(unit.category);
        let raw = electricity_part_t + heat_part_t;
        let unit_t = if plan.gas_top_up && unit.category == UnitCategory::Gas {
            raw.max(unit.verified_t)
        } else {
            raw
        };
        explained.push(UnitExplanation {
            benchmark,
            load_factor_correction: ff,
            electricity_part_t,
            heat_part_t,
            unit_t,
        });
    }
    let units_sum_t: Decimal = explained.iter().map(|u| u.unit_t).sum();
    let floor_t_exact = entity_verified_t * plan.floor_share;
    let exact_t = units_sum_t.max(floor_t_exact);
    Ok(EntityExplanation {
        units: explained,
        units_sum_t,
        floor_t: floor_t_exact,
        exact_t,
        allocated_t: floor_t(exact_t)?,
    })
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

/// One industrial entity: verified emissions E (t) and intensity I (t CO2 per t product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndustryEntity {
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
    /// Sum of verified emissions minus the sum of floored allocations (0 <= residual < entities).
    pub floored_shortfall_t: Decimal,
}

/// Allocation of one entity at balance value `bp`, exact (before flooring).
pub fn intensity_allocation(
    entity: &IndustryEntity,
    bp: Decimal,
    c: &IntensityCoefficients,
) -> Decimal {
    let x = (bp - entity.intensity) / bp;
    entity.verified_t * (Decimal::ONE + c.adjustment(x))
}

/// Solves the sector balance value BP by bisection (see the module docs).
pub fn solve_balance_value(
    entities: &[IndustryEntity],
    c: &IntensityCoefficients,
    tolerance_t: Decimal,
    iterations_max: u32,
) -> Result<BalanceSolution, AllocationError> {
    let active: Vec<&IndustryEntity> = entities
        .iter()
        .filter(|e| !e.verified_t.is_zero())
        .collect();
    for e in &active {
        non_negative(e.verified_t, "verified_t")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_600_mw_coal_unit_at_load_factor_055() {
        // Ff = 1.015^(16 - 20 x 0.55) = 1.015^5 = 1.077284003884375.
        // A = 3,000,000 MWh x 0.7910 x Ff + 500,000 GJ x 0.1033 = 2,556,394.94 + 51,650
        //   = 2,608,044.9412176... -> 2,608,044 t.
        let unit = PowerUnit {
            category: UnitCategory::CoalLarge,
            electricity_mwh: dec!(3_000_000),
            heat_gj: dec!(500_000),
            load_factor: dec!(0.55),
            verified_t: dec!(2_500_000),
        };
        let result = allocate_power(&PowerPlan::plan_2024(), &[unit], dec!(2_500_000)).unwrap();
        let ff = result.units[0].load_factor_correction;
        assert!(
            (ff - dec!(1.077284003884375)).abs() < dec!(0.000000000001),
            "{ff}"
        );
        assert_eq!(result.units[0].heat_part_t, dec!(51_650));
        assert_eq!(result.allocated_t, 2_608_044);
        // At or above 65% load there is no correction.
        let full = PowerUnit {
            load_factor: dec!(0.65),
            ..unit
        };
        let result = allocate_power(&PowerPlan::plan_2024(), &[full], dec!(0)).unwrap();
        assert_eq!(result.units[0].load_factor_correction, Decimal::ONE);
        assert_eq!(result.allocated_t, 2_373_000 + 51_650);
    }

    #[test]
    fn gas_units_and_the_entity_floor_are_topped_up() {
        // Gas: 1,000,000 MWh x 0.3288 + 100,000 GJ x 0.0533 = 328,800 + 5,330 = 334,130 t,
        // topped up to its verified 350,000 t.
        let gas = PowerUnit {
            category: UnitCategory::Gas,
            electricity_mwh: dec!(1_000_000),
            heat_gj: dec!(100_000),
            load_factor: dec!(0.3),
            verified_t: dec!(350_000),
        };
        let result = allocate_power(&PowerPlan::plan_2024(), &[gas], dec!(350_000)).unwrap();
        assert_eq!(
            result.units[0].electricity_part_t + result.units[0].heat_part_t,
            dec!(334_130)
        );
        assert_eq!(result.allocated_t, 350_000);
        // A small coal unit at full load: 100,000 MWh x 0.8049 = 80,490 t, but the entity
        // verified 120,000 t: at least 80% = 96,000 t.
        let coal = PowerUnit {
            category: UnitCategory::CoalSmall,
            electricity_mwh: dec!(100_000),
            heat_gj: dec!(0),
            load_factor: dec!(0.8),
            verified_t: dec!(120_000),
        };
        let result = allocate_power(&PowerPlan::plan_2024(), &[coal], dec!(120_000)).unwrap();
        assert_eq!(
            (result.units_sum_t, result.allocated_t),
            (dec!(80_490), 96_000)
        );
        let bad = PowerUnit {
            load_factor: dec!(1.2),
            ..coal
        };
        assert!(allocate_power(&PowerPlan::plan_2024(), &[bad], dec!(1)).is_err());
    }

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
            IndustryEntity {
                verified_t: dec!(1_000_000),
                intensity: dec!(0.80),
            },
            IndustryEntity {
                verified_t: dec!(2_000_000),
                intensity: dec!(0.85),
            },
            IndustryEntity {
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
