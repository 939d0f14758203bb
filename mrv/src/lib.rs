//! Emissions accounting (MRV) for steel, cement and aluminium: one entity's year of
//! monthly data, by its sector guideline's formulas over a versioned factors file, into its
//! emissions with the working of every line.
//!
//! Pure: no IO, no clock, no floats; the same factors, plan and months give the same
//! report. Every figure is `rust_decimal`, rounded only where the guideline says
//! ([`round`]). The registry keeps the deposits and the journal; this crate only checks
//! and computes.
//!
//! - [`factors::Factors`]: a guideline's default factors, parsed from TOML and validated;
//! - [`plan::Dqcp`]: an entity's boundary and data-quality control plan for a year;
//! - [`month::Month`]: one month's data, validated before it is deposited;
//! - [`compute`]: twelve months into a [`report::Report`].

pub mod aluminium;
pub mod annual;
pub mod cement;
pub mod factors;
pub mod month;
pub mod plan;
pub mod report;
pub mod round;
pub mod steel;

use factors::{Factors, Sector};
use month::Month;
use plan::{DataError, Dqcp, refuse};
use report::Report;

/// Computes an entity's year from its plan and its twelve months.
pub fn compute(factors: &Factors, plan: &Dqcp, months: &[Month]) -> Result<Report, DataError> {
    let annual = annual::assemble(factors, plan, months)?;
    let (lines, facilities, steel) = match factors.sector {
        Sector::Steel => {
            let (lines, facilities, steel) = steel::compute(factors, plan, &annual);
            (lines, facilities, Some(steel))
        }
        Sector::Cement => {
            let (lines, facilities) = cement::compute(factors, plan, &annual);
            (lines, facilities, None)
        }
        Sector::Aluminium => {
            let (lines, facilities) = aluminium::compute(factors, plan, &annual);
            (lines, facilities, None)
        }
    };
    // Steel's enterprise figure is its own mass balance (1), which the process lines (2)
    // and (3) break down; cement's and aluminium's is the sum of their units and the rest.
    let enterprise_t: rust_decimal::Decimal = lines
        .iter()
        .filter(|l| factors.sector != Sector::Steel || l.scope == plan::Scope::Enterprise)
        .map(|l| l.emissions_t)
        .sum();
    let pfc: rust_decimal::Decimal = lines
        .iter()
        .filter(|l| l.term.is_pfc())
        .map(|l| l.emissions_t)
        .sum();
    let Some(total_t) = round::total_t(enterprise_t) else {
        let why = format!("the enterprise's emissions come to {enterprise_t} t, below zero");
        return Err(refuse("months", why));
    };
    let pfc_co2e_t = round::total_t(pfc).unwrap_or(0);
    Ok(Report {
        sector: factors.sector,
        year: plan.year,
        guideline: factors.guideline.clone(),
        factors_version: factors.version.clone(),
        lines,
        facilities,
        enterprise_t,
        total_t,
        pfc_co2e_t,
        co2_t: total_t - pfc_co2e_t,
        steel,
        annual,
    })
}
