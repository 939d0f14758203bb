//! Allocation formulas (section 5 of the market rules), in `rust_decimal`, floored to whole
//! tonnes only at the end. Every coefficient comes from the plan passed in, never from code.
//!
//! Power (benchmark method), per generating unit: `A = Qe x Be x Ff + Qh x Bh` (gas: no Ff);
//! gas units topped up to their verified emissions; the entity raised to the plan's floor
//! share of its verified emissions. The load correction Ff is a named family of curves with
//! its parameters in the plan (the 2023-24 power law, the 2025-26 draft's exponential
//! decay). The intensity method of steel, cement and aluminium is [`crate::industry`].

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
    /// An industrial entity lacks the activity data its allocation unit needs.
    #[error("entity {account}: {what}")]
    ActivityMissing { account: u64, what: String },
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
    /// Ff = constant - a1 (1 - e^(-P/s1)) - a2 (1 - e^(-P/s2)) with the load P in percent,
    /// for P below `threshold_pct`, else 1; rounded to `round_dp` places; conventional coal
    /// only. The 2025-2026 draft: 7.254, 0.633 / 29.822, 5.643 / 6.871, below 50%, 6 dp.
    ExponentialDecay {
        constant: Decimal,
        a1: Decimal,
        s1: Decimal,
        a2: Decimal,
        s2: Decimal,
        threshold_pct: Decimal,
        round_dp: u32,
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
            (
                LoadCorrection::ExponentialDecay {
                    constant,
                    a1,
                    s1,
                    a2,
                    s2,
                    threshold_pct,
                    round_dp,
                },
                UnitCategory::CoalLarge | UnitCategory::CoalSmall,
            ) if load_factor * Decimal::ONE_HUNDRED < *threshold_pct => {
                let pct = load_factor * Decimal::ONE_HUNDRED; // the curve reads F in percent
                let decay = |a: Decimal, s: Decimal| a * (Decimal::ONE - (-pct / s).exp());
                (*constant - decay(*a1, *s1) - decay(*a2, *s2)).round_dp(*round_dp)
            }
            _ => Decimal::ONE,
        }
    }

    /// The 2025-2026 draft's curve.
    pub fn draft_2025() -> LoadCorrection {
        LoadCorrection::ExponentialDecay {
            constant: dec!(7.254),
            a1: dec!(0.633),
            s1: dec!(29.822),
            a2: dec!(5.643),
            s2: dec!(6.871),
            threshold_pct: dec!(50),
            round_dp: 6,
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
    /// The electricity part, the heat part and the unit's total each floored to whole
    /// tonnes (2025-2026 draft), instead of one floor of the entity's total.
    pub floor_parts: bool,
    /// The shortfall rate `(verified - units) / verified` that decides the entity floor is
    /// rounded to this many places first (2025-2026 draft: 2); `None`: not rounded.
    pub shortfall_rate_dp: Option<u32>,
}

impl PowerPlan {
    pub fn plan_2024() -> PowerPlan {
        PowerPlan {
            benchmarks: PowerBenchmarks::plan_2024(),
            load_correction: LoadCorrection::plan_2024(),
            floor_share: dec!(0.8),
            gas_top_up: true,
            floor_parts: false,
            shortfall_rate_dp: None,
        }
    }

    /// The 2025-2026 draft for 2025: its benchmarks, load curve and rounding.
    pub fn draft_2025() -> PowerPlan {
        PowerPlan {
            benchmarks: PowerBenchmarks {
                coal_large: dec!(0.7902),
                coal_small: dec!(0.8017),
                unconventional_coal: dec!(0.8162),
                gas: dec!(0.3288),
                heat_coal: dec!(0.1027),
                heat_gas: dec!(0.0533),
            },
            load_correction: LoadCorrection::draft_2025(),
            floor_share: dec!(0.8),
            gas_top_up: true,
            floor_parts: true,
            shortfall_rate_dp: Some(2),
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
    /// `(verified - units) / verified`, rounded as the plan says; `None` at 0 t verified.
    pub shortfall_rate: Option<Decimal>,
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

/// One generating unit's allocation, its parts floored when the plan says so.
fn power_unit(plan: &PowerPlan, unit: &PowerUnit) -> Result<UnitExplanation, AllocationError> {
    non_negative(unit.electricity_mwh, "electricity_mwh")?;
    non_negative(unit.heat_gj, "heat_gj")?;
    non_negative(unit.verified_t, "unit verified_t")?;
    if unit.load_factor.is_sign_negative() || unit.load_factor > Decimal::ONE {
        return Err(AllocationError::Invalid {
            field: "load_factor",
            why: "must be a fraction from 0 to 1",
        });
    }
    let floor = |d: Decimal| -> Result<Decimal, AllocationError> {
        if plan.floor_parts {
            Ok(Decimal::from(floor_t(d)?))
        } else {
            Ok(d)
        }
    };
    let benchmark = plan.benchmarks.electricity(unit.category);
    let ff = plan.load_correction.factor(unit.category, unit.load_factor);
    let electricity_part_t = floor(unit.electricity_mwh * benchmark * ff)?;
    let heat_part_t = floor(unit.heat_gj * plan.benchmarks.heat(unit.category))?;
    let raw = electricity_part_t + heat_part_t;
    let topped = if plan.gas_top_up && unit.category == UnitCategory::Gas {
        raw.max(unit.verified_t)
    } else {
        raw
    };
    Ok(UnitExplanation {
        benchmark,
        load_factor_correction: ff,
        electricity_part_t,
        heat_part_t,
        unit_t: floor(topped)?,
    })
}

/// A power entity's allocation for the year: its units' sum, raised to the plan's floor
/// share of its verified emissions when the shortfall rate (rounded as the plan says)
/// exceeds `1 - floor_share`.
pub fn allocate_power(
    plan: &PowerPlan,
    units: &[PowerUnit],
    entity_verified_t: Decimal,
) -> Result<EntityExplanation, AllocationError> {
    non_negative(entity_verified_t, "verified_t")?;
    let explained = units
        .iter()
        .map(|u| power_unit(plan, u))
        .collect::<Result<Vec<_>, _>>()?;
    let units_sum_t: Decimal = explained.iter().map(|u| u.unit_t).sum();
    let floor_t_exact = entity_verified_t * plan.floor_share;
    let shortfall_rate = (!entity_verified_t.is_zero()).then(|| {
        let rate = (entity_verified_t - units_sum_t) / entity_verified_t;
        plan.shortfall_rate_dp.map_or(rate, |dp| rate.round_dp(dp))
    });
    let raised = shortfall_rate.is_some_and(|r| r > Decimal::ONE - plan.floor_share);
    let exact_t = if raised { floor_t_exact } else { units_sum_t };
    Ok(EntityExplanation {
        units: explained,
        units_sum_t,
        floor_t: floor_t_exact,
        shortfall_rate,
        exact_t,
        allocated_t: floor_t(exact_t)?,
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
}
