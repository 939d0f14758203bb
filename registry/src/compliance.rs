//! The compliance cycle's rules as pure functions over plain data: the yearly allocation
//! run by sector method, pre-allocation and true-up with deductions, the surrender rules,
//! compliance status, year close with penalties, and the CSV reports. Every coefficient comes
//! from the [`Plan`] passed in (data, versioned per compliance year), never from code.
//! Amounts are computed in `rust_decimal` and floored to whole tonnes (and fen) at the end.
//!
//! Persistence (plans, runs, statuses in the registry's journal) and the gRPC
//! `ComplianceService` build on this module.

use std::collections::BTreeMap;
use std::fmt::Write;

use rust_decimal::prelude::*;
use rust_decimal_macros::dec;

use crate::allocation::{AllocationError, PowerPlan, PowerUnit, allocate_power, floor_t};
use crate::industry::{
    BalanceSolution, EntityInput, IntensityPlan, ProcessYear, UnitAllocation, allocate_sector,
};
use crate::model::{AccountId, Sector, UnitDef, UnitKind};

/// How steel, cement and aluminium are allocated in a year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndustryMethod {
    /// Allocation = verified emissions (2024).
    Grandfathering,
    /// Intensity coefficients with the sector balance value solved each year (from 2025).
    Intensity(IntensityPlan),
}

/// A share per sector (pre-allocation: a per-sector, per-year plan value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectorShares {
    pub power: Decimal,
    pub steel: Decimal,
    pub cement: Decimal,
    pub aluminium: Decimal,
}

impl SectorShares {
    pub fn of(&self, sector: Sector) -> Decimal {
        match sector {
            Sector::Power => self.power,
            Sector::Steel => self.steel,
            Sector::Cement => self.cement,
            Sector::Aluminium => self.aluminium,
        }
    }

    pub fn all(&self) -> [(Sector, Decimal); 4] {
        [
            (Sector::Power, self.power),
            (Sector::Steel, self.steel),
            (Sector::Cement, self.cement),
            (Sector::Aluminium, self.aluminium),
        ]
    }
}

/// One compliance year's allocation plan: every number the rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub year: u16,
    /// Recorded with each allocation.
    pub version: String,
    pub power: PowerPlan,
    pub industry: IndustryMethod,
    /// Share of the previous year's verified emissions pre-allocated early in the year, per
    /// sector (industry 2024: none).
    pub pre_allocation: SectorShares,
    /// CCER may cover at most this share of an obligation, basis points (500 = 5%).
    pub ccer_cap_bp: u32,
    /// Only CCER registered strictly after this date (`YYYYMMDD`) count (0: any date). The
    /// 2025-2026 draft: 20240122.
    pub ccer_registered_after: u32,
    /// CEA vintages before this year are not usable for this year's obligation.
    pub earliest_vintage: u16,
    /// Penalty per tonne short: this multiple of the average price before the deadline.
    pub penalty_multiple: Decimal,
    /// Surrender deadline, `YYYYMMDD` (31 December of the next year).
    pub deadline: u32,
    /// Old vintages carried into this year's vintage, if the plan provides for it.
    pub carry_over: Option<crate::cycle::carry::CarryOverRule>,
}

impl Plan {
    /// The 2024 plan: power benchmarks of 2023-24, 70% pre-allocation; industry
    /// grandfathered with no pre-allocation.
    pub fn plan_2024() -> Plan {
        Plan {
            year: 2024,
            version: "2024.1".into(),
            power: PowerPlan::plan_2024(),
            industry: IndustryMethod::Grandfathering,
            pre_allocation: SectorShares {
                power: dec!(0.70),
                steel: Decimal::ZERO,
                cement: Decimal::ZERO,
                aluminium: Decimal::ZERO,
            },
            ccer_cap_bp: 500,
            ccer_registered_after: 0,
            earliest_vintage: 2019,
            penalty_multiple: dec!(5),
            deadline: 20_251_231,
            carry_over: None,
        }
    }

    /// The 2025 draft: its power benchmarks and curve, the intensity method for industry,
    /// CCER registered after 2024-01-22 only, old vintages only after conversion (modelled
    /// as: 2025 and later only).
    pub fn draft_2025() -> Plan {
        Plan {
            year: 2025,
            version: "2025.draft".into(),
            power: PowerPlan::draft_2025(),
            industry: IndustryMethod::Intensity(IntensityPlan::draft_2025()),
            // Power: at most 50%. Industry 2025: 70% of 2024 verified [S], a parameter.
            pre_allocation: SectorShares {
                power: dec!(0.50),
                steel: dec!(0.70),
                cement: dec!(0.70),
                aluminium: dec!(0.70),
            },
            ccer_cap_bp: 500,
            ccer_registered_after: 20_240_122,
            earliest_vintage: 2025,
            penalty_multiple: dec!(5),
            deadline: 20_261_231,
            carry_over: Some(crate::cycle::carry::CarryOverRule {
                base_t: 10_000,
                sales_multiple: dec!(1.5),
                vintage_from: 2019,
                vintage_to: 2024,
                sales_year_from: 2024,
                sales_year_to: 2025,
                holdings_date: 20_251_231,
                applications_until: 20_260_610,
                barred_if_missed: vec![2023, 2024],
            }),
        }
    }
}

/// A covered entity's data for one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityYear {
    pub account: AccountId,
    pub sector: Sector,
    pub province: String,
    /// Keeps its allocation in the authority's account for forced surrender.
    pub differentiated: bool,
    /// Power: its generating units' activity data.
    pub units: Vec<PowerUnit>,
    /// Industry: its processes' data for the year.
    pub processes: Vec<ProcessYear>,
    /// Verified emissions of the year (CO2e), `None` until the verifier records them.
    pub verified_t: Option<u64>,
}

/// One entity's allocation and how it was computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub account: AccountId,
    pub sector: Sector,
    pub method: &'static str,
    pub allocated_t: u64,
    /// The computation, step by step, for reports and the dashboard.
    pub explanation: String,
}

/// The result of an allocation run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub year: u16,
    pub plan_version: String,
    pub allocations: Vec<Allocation>,
    /// Per industrial sector (intensity method only): the solved balance value.
    pub balance: BTreeMap<Sector, BalanceSolution>,
}

fn sector_name(s: Sector) -> &'static str {
    match s {
        Sector::Power => "power",
        Sector::Steel => "steel",
        Sector::Cement => "cement",
        Sector::Aluminium => "aluminium",
    }
}

/// The year's final allocation of every entity with verified emissions. Deterministic:
/// the same plan and data give the same tonnes (entities in account order).
pub fn allocate(plan: &Plan, entities: &[EntityYear]) -> Result<Run, AllocationError> {
    let mut sorted: Vec<&EntityYear> = entities.iter().filter(|e| e.verified_t.is_some()).collect();
    sorted.sort_by_key(|e| e.account);
    let mut allocations = Vec::with_capacity(sorted.len());
    let mut balance = BTreeMap::new();
    // Industry by sector first (the balance value needs the whole sector).
    for sector in [Sector::Steel, Sector::Cement, Sector::Aluminium] {
        let members: Vec<&EntityYear> = sorted
            .iter()
            .copied()
            .filter(|e| e.sector == sector)
            .collect();
        if members.is_empty() {
            continue;
        }
        match &plan.industry {
            IndustryMethod::Grandfathering => {
                allocations.extend(members.iter().map(|e| grandfathered(e)));
            }
            IndustryMethod::Intensity(intensity) => {
                let (solution, by_entity) = by_intensity(intensity, &members)?;
                allocations.extend(by_entity);
                if let Some(solution) = solution {
                    balance.insert(sector, solution);
                }
            }
        }
    }
    for e in sorted.iter().filter(|e| e.sector == Sector::Power) {
        allocations.push(by_power_benchmark(plan, e)?);
    }
    allocations.sort_by_key(|a| a.account);
    Ok(Run {
        year: plan.year,
        plan_version: plan.version.clone(),
        allocations,
        balance,
    })
}

fn grandfathered(e: &EntityYear) -> Allocation {
    let v = e.verified_t.unwrap_or(0);
    Allocation {
        account: e.account,
        sector: e.sector,
        method: "grandfathering",
        allocated_t: v,
        explanation: format!("allocation = verified emissions = {v} t"),
    }
}

/// A sector's entities by the intensity method: its units allocated at the solved balance
/// value, summed per entity and explained unit by unit.
fn by_intensity(
    plan: &IntensityPlan,
    members: &[&EntityYear],
) -> Result<(Option<BalanceSolution>, Vec<Allocation>), AllocationError> {
    let inputs: Vec<EntityInput<'_>> = members
        .iter()
        .map(|e| EntityInput {
            account: e.account,
            sector: e.sector,
            verified_t: e.verified_t.unwrap_or(0),
            processes: &e.processes,
        })
        .collect();
    let run = allocate_sector(plan, &inputs)?;
    let bp = run.balance.map(|b| b.balance_value);
    let mut by_account: BTreeMap<AccountId, Vec<&UnitAllocation>> = BTreeMap::new();
    for u in &run.units {
        by_account.entry(u.unit.account).or_default().push(u);
    }
    let allocations = members
        .iter()
        .map(|e| {
            let mine = by_account.remove(&e.account).unwrap_or_default();
            let allocated_t = mine.iter().map(|u| u.allocated_t).sum::<u64>();
            let mut explanation = mine
                .iter()
                .map(|u| u.explain(bp))
                .collect::<Vec<_>>()
                .join(". ");
            if mine.len() > 1 {
                let _ = write!(explanation, ". entity = sum of its units = {allocated_t} t");
            } else if mine.is_empty() {
                explanation = "no allocation unit with emissions: 0 t".into();
            }
            Allocation {
                account: e.account,
                sector: e.sector,
                method: "intensity",
                allocated_t,
                explanation,
            }
        })
        .collect();
    Ok((run.balance, allocations))
}

/// A power entity's allocation: the sum of its units' benchmark allocations, at least the
/// plan's floor share of its verified emissions; explained unit by unit.
fn by_power_benchmark(plan: &Plan, e: &EntityYear) -> Result<Allocation, AllocationError> {
    let verified = Decimal::from(e.verified_t.unwrap_or(0));
    let x = allocate_power(&plan.power, &e.units, verified)?;
    let mut text = String::new();
    for (n, (u, input)) in x.units.iter().zip(&e.units).enumerate() {
        let _ = write!(
            text,
            "unit {}: Qe x Be x Ff = {} x {} x {} = {}; Qh x Bh = {}; unit = {}. ",
            n + 1,
            input.electricity_mwh,
            u.benchmark,
            u.load_factor_correction.round_dp(6),
            u.electricity_part_t.round_dp(4),
            u.heat_part_t.round_dp(4),
            u.unit_t.round_dp(4)
        );
    }
    let _ = write!(
        text,
        "units {} t; floor {} x verified {} = {} t; allocation max(...) = {} -> {} t",
        x.units_sum_t.round_dp(4),
        plan.power.floor_share,
        verified,
        x.floor_t.round_dp(4),
        x.exact_t.round_dp(4),
        x.allocated_t
    );
    Ok(Allocation {
        account: e.account,
        sector: Sector::Power,
        method: "benchmark",
        allocated_t: x.allocated_t,
        explanation: text,
    })
}

/// Pre-allocation early in the year: the plan's share for the entity's sector of last
/// year's verified emissions, floored.
pub fn pre_allocation(
    plan: &Plan,
    sector: Sector,
    previous_verified_t: u64,
) -> Result<u64, AllocationError> {
    floor_t(Decimal::from(previous_verified_t) * plan.pre_allocation.of(sector))
}

/// What issuance does for one entity, deductions netted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Issuance {
    /// Units to issue to the entity now.
    pub issue_t: u64,
    /// Units to take back (the pre-allocation exceeded the final allocation).
    pub claw_back_t: u64,
    /// Deduction owed that this issuance absorbed.
    pub deduction_applied_t: u64,
    /// Deduction still owed afterwards (carried forward).
    pub deduction_carried_t: u64,
}

/// Nets `due_t` (to issue) against a deduction owed: the deduction is taken from what would
/// be issued; any remainder is carried forward.
pub fn net_issuance(due_t: u64, deduction_owed_t: u64) -> Issuance {
    let applied = due_t.min(deduction_owed_t);
    Issuance {
        issue_t: due_t - applied,
        claw_back_t: 0,
        deduction_applied_t: applied,
        deduction_carried_t: deduction_owed_t - applied,
    }
}

/// The true-up after verification: issue the rest of the final allocation or claw back the
/// excess of the pre-allocation; a deduction still owed is netted against what is issued.
pub fn true_up(final_t: u64, pre_allocated_t: u64, deduction_owed_t: u64) -> Issuance {
    if final_t >= pre_allocated_t {
        net_issuance(final_t - pre_allocated_t, deduction_owed_t)
    } else {
        Issuance {
            issue_t: 0,
            claw_back_t: pre_allocated_t - final_t,
            deduction_applied_t: 0,
            deduction_carried_t: deduction_owed_t,
        }
    }
}

/// Why a surrender is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SurrenderError {
    #[error("vintage {vintage} is later than compliance year {year} (no borrowing)")]
    VintageAfterYear { vintage: u16, year: u16 },
    #[error("vintage {vintage} is older than {earliest}, the earliest usable for this year")]
    VintageTooOld { vintage: u16, earliest: u16 },
    #[error(
        "CCER may cover at most {cap_t} t of this obligation; {used_t} t used, {wanted_t} t more asked"
    )]
    CcerLimitExceeded {
        cap_t: u64,
        used_t: u64,
        wanted_t: u64,
    },
    #[error(
        "this CCER was registered on {registered}; the plan counts only CCER registered after {after}"
    )]
    CcerNotEligible { registered: u32, after: u32 },
    #[error("the verified emissions of the year are not entered yet")]
    EmissionsNotEntered,
    #[error("compliance year {0} is closed")]
    YearClosed(u16),
}

impl SurrenderError {
    pub fn code(&self) -> &'static str {
        match self {
            SurrenderError::VintageAfterYear { .. } => "VINTAGE_AFTER_YEAR",
            SurrenderError::VintageTooOld { .. } => "VINTAGE_TOO_OLD",
            SurrenderError::CcerLimitExceeded { .. } => "CCER_LIMIT_EXCEEDED",
            SurrenderError::CcerNotEligible { .. } => "CCER_NOT_ELIGIBLE",
            SurrenderError::EmissionsNotEntered => "EMISSIONS_NOT_ENTERED",
            SurrenderError::YearClosed(_) => "YEAR_CLOSED",
        }
    }
}

/// Status code of an entity for a year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    Compliant,
    Short,
    EmissionsNotEntered,
}

impl StatusCode {
    pub fn code(self) -> &'static str {
        match self {
            StatusCode::Compliant => "COMPLIANT",
            StatusCode::Short => "SHORT",
            StatusCode::EmissionsNotEntered => "EMISSIONS_NOT_ENTERED",
        }
    }
}

/// One entity's compliance for one year, at any moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compliance {
    /// Verified emissions (the obligation), once entered.
    pub obligation_t: Option<u64>,
    pub surrendered_cea_t: u64,
    pub surrendered_ccer_t: u64,
}

impl Compliance {
    pub fn shortfall_t(&self) -> u64 {
        self.obligation_t.map_or(0, |o| {
            o.saturating_sub(self.surrendered_cea_t + self.surrendered_ccer_t)
        })
    }

    pub fn status(&self) -> StatusCode {
        match self.obligation_t {
            None => StatusCode::EmissionsNotEntered,
            Some(_) if self.shortfall_t() == 0 => StatusCode::Compliant,
            Some(_) => StatusCode::Short,
        }
    }

    /// The most CCER this obligation admits: `ccer_cap_bp` (at most 10,000: plans are
    /// validated) of it, floored, in integers.
    pub fn ccer_cap_t(&self, plan: &Plan) -> u64 {
        let obligation_t = u128::from(self.obligation_t.unwrap_or(0));
        let cap_t = obligation_t * u128::from(plan.ccer_cap_bp.min(10_000)) / 10_000;
        // At most the obligation, so it fits.
        cap_t.min(obligation_t) as u64
    }
}

/// Checks a surrender of `quantity_t` of `unit` against year `plan.year` (the registry then
/// moves the units to retirement).
pub fn check_surrender(
    plan: &Plan,
    closed: bool,
    status: &Compliance,
    unit: &UnitDef,
    quantity_t: u64,
) -> Result<(), SurrenderError> {
    if closed {
        return Err(SurrenderError::YearClosed(plan.year));
    }
    if status.obligation_t.is_none() {
        return Err(SurrenderError::EmissionsNotEntered);
    }
    if unit.vintage > plan.year {
        return Err(SurrenderError::VintageAfterYear {
            vintage: unit.vintage,
            year: plan.year,
        });
    }
    match unit.kind {
        UnitKind::Cea => {
            if unit.vintage < plan.earliest_vintage {
                return Err(SurrenderError::VintageTooOld {
                    vintage: unit.vintage,
                    earliest: plan.earliest_vintage,
                });
            }
        }
        UnitKind::Ccer => {
            if plan.ccer_registered_after != 0 && unit.registered <= plan.ccer_registered_after {
                return Err(SurrenderError::CcerNotEligible {
                    registered: unit.registered,
                    after: plan.ccer_registered_after,
                });
            }
            let cap_t = status.ccer_cap_t(plan);
            if status.surrendered_ccer_t + quantity_t > cap_t {
                return Err(SurrenderError::CcerLimitExceeded {
                    cap_t,
                    used_t: status.surrendered_ccer_t,
                    wanted_t: quantity_t,
                });
            }
        }
    }
    Ok(())
}

/// What closing the year does to one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    pub account: AccountId,
    pub status: StatusCode,
    /// Differentiated entities: units surrendered from the authority's account for them.
    pub forced_t: u64,
    /// Differentiated entities: what was kept for them and is now released to them.
    pub released_t: u64,
    pub shortfall_t: u64,
    /// Shortfall x multiple x average price, floored to the fen.
    pub penalty_fen: i64,
    /// Carried as a deduction from next year's allocation.
    pub deduction_t: u64,
}

/// Closes the year for one entity. `held_for_t` is what the authority holds for a
/// differentiated entity; `average_price_fen` is the average price of the month before the
/// deadline (from the exchange).
pub fn close(
    plan: &Plan,
    account: AccountId,
    status: &Compliance,
    differentiated: bool,
    held_for_t: u64,
    average_price_fen: i64,
) -> Closing {
    let mut after = *status;
    let mut forced_t = 0;
    let mut released_t = 0;
    if differentiated {
        forced_t = after.shortfall_t().min(held_for_t);
        after.surrendered_cea_t += forced_t;
        released_t = held_for_t - forced_t;
    }
    let shortfall_t = after.shortfall_t();
    let penalty =
        Decimal::from(shortfall_t) * plan.penalty_multiple * Decimal::from(average_price_fen);
    Closing {
        account,
        status: after.status(),
        forced_t,
        released_t,
        shortfall_t,
        penalty_fen: penalty.floor().to_i64().unwrap_or(i64::MAX),
        deduction_t: shortfall_t,
    }
}

/// Totals by a key (sector or province): entities, obligation, allocated, surrendered,
/// shortfall, penalties, and entities by status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub entities: u64,
    pub obligation_t: u64,
    pub allocated_t: u64,
    pub surrendered_t: u64,
    pub shortfall_t: u64,
    pub penalty_fen: i64,
    pub compliant: u64,
    pub short: u64,
    pub emissions_not_entered: u64,
}

pub fn sector_label(s: Sector) -> &'static str {
    sector_name(s)
}
