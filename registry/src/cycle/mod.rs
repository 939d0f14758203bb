//! The compliance cycle kept in the registry: covered entities and their facilities, annual
//! activity data, verified emissions, the allocation plans of each year, pre-allocation and
//! true-up runs, surrender counts, year close and the deductions carried to the next year.
//!
//! Every change is a journaled [`crate::tx::Op`] executed by the ledger like any other
//! transaction: all of its checks pass before anything changes, and the allowances it moves
//! (issuance into the authority, allocation to entities, claw-back, forced surrender,
//! release) are ordinary holding movements, so issued = sum of holdings still holds after
//! every step. The rules themselves are the pure functions of [`crate::compliance`].
//!
//! Allocation accounting per entity and year (all whole tonnes):
//! `credited = delivered + held + forced + deducted - clawed - excess_owed`, where `delivered`
//! went to the entity's account, `held` stays in the authority's account for a differentiated
//! entity (`forced`: what of it the year close surrendered), `deducted` was absorbed by a
//! deduction it owed, `clawed` was taken back from its account, and `excess_owed` is an over-allocation it could not give back (now a deduction
//! owed). A true-up moves `credited` to the run's final allocation; a re-run with the same
//! plan and data finds nothing to move.
//!
//! - `mod.rs`: the model (`Entity`, `Activity`, `Year`, `Standing`, `Cycle`) and the
//!   cycle's reason codes (`CycleCode`).
//! - `ops.rs`: the cycle's operations on the ledger (register a plan, load entities and
//!   data, record verified emissions, pre-allocate, true up, surrender counts, close a year).
//! - `report.rs`: totals and the CSV reports (one writer per report, for the API, the CLI
//!   and the dashboard).
//! - `codec.rs`: the storage encoding of the cycle's records.

pub mod carry;
mod codec;
mod ops;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use rust_decimal::Decimal;

use crate::allocation::{PowerUnit, UnitCategory};
use crate::codec::{Reader, Writer};
use crate::compliance::{
    self, Compliance, EntityYear, Plan, StatusCode, Totals, check_surrender, pre_allocation,
};
use crate::error::RegistryError;
use crate::industry::{Process, ProcessYear, SpecialCase};
use crate::ledger::Ledger;
use crate::model::{AccountId, AccountType, Leg, Sector, TxKind, UnitId, UnitKind};
use crate::plans::{decode_plan, encode_plan};
use crate::tx::{Outcome, TEXT_BYTES_MAX};

pub(crate) use codec::{
    decode_entity, decode_standing, decode_year, encode_entity, encode_standing, encode_year,
    get_activity, get_entity_row, get_entity_row_v1, get_rows, put_activity, put_entity_row,
};
pub use ops::check_force_reason;
pub(crate) use ops::open_year;
pub use report::{csv_field, totals_csv};

/// Why a compliance-cycle operation was refused beyond a bad field: its stable reason code
/// (every one listed in [`CycleCode::ALL`], for clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CycleCode {
    /// A pre-allocation re-run or true-up under another plan than the year's first run.
    PlanMismatch,
    /// A pre-allocation after the year's true-up.
    AlreadyTruedUp,
    /// Verified emissions without the product output an intensity method needs.
    ActivityMissing,
    /// A year without a registered plan.
    YearNotAdministered,
    /// The cycle's records disagree with the holdings (a broken invariant).
    Inconsistent,
    /// A year closed on or before its surrender deadline without a forcing reason.
    BeforeDeadline,
    /// Carry-over limits fixed on or before the holdings date, or an application after
    /// the last day.
    CarryOverWindow,
    /// Carry-over limits into the year are fixed already.
    CarryOverFixed,
    /// An application before the limits are fixed.
    CarryOverNotFixed,
    /// An entity that missed an earlier year's compliance may not carry over.
    CarryOverBarred,
    /// Applications past the entity's limit.
    CarryOverLimit,
}

impl CycleCode {
    pub const ALL: [CycleCode; 11] = [
        CycleCode::PlanMismatch,
        CycleCode::AlreadyTruedUp,
        CycleCode::ActivityMissing,
        CycleCode::YearNotAdministered,
        CycleCode::Inconsistent,
        CycleCode::BeforeDeadline,
        CycleCode::CarryOverWindow,
        CycleCode::CarryOverFixed,
        CycleCode::CarryOverNotFixed,
        CycleCode::CarryOverBarred,
        CycleCode::CarryOverLimit,
    ];

    pub fn code(self) -> &'static str {
        match self {
            CycleCode::PlanMismatch => "PLAN_MISMATCH",
            CycleCode::AlreadyTruedUp => "ALREADY_TRUED_UP",
            CycleCode::ActivityMissing => "ACTIVITY_MISSING",
            CycleCode::YearNotAdministered => "YEAR_NOT_ADMINISTERED",
            CycleCode::Inconsistent => "CORRUPT",
            CycleCode::BeforeDeadline => "BEFORE_DEADLINE",
            CycleCode::CarryOverWindow => "CARRY_OVER_WINDOW",
            CycleCode::CarryOverFixed => "CARRY_OVER_FIXED",
            CycleCode::CarryOverNotFixed => "CARRY_OVER_NOT_FIXED",
            CycleCode::CarryOverBarred => "CARRY_OVER_BARRED",
            CycleCode::CarryOverLimit => "CARRY_OVER_LIMIT",
        }
    }
}

/// Most entity rows in one load.
pub const ENTITY_ROWS_MAX: usize = 5_000;
/// Most activity or verified-emissions rows in one load.
pub const DATA_ROWS_MAX: usize = 20_000;
/// Most facilities (generating units, product lines) of one entity.
pub const FACILITIES_PER_ENTITY_MAX: usize = 64;
/// Most plan versions registered for one compliance year.
pub const PLANS_PER_YEAR_MAX: usize = 32;
/// Longest reason the authority gives for closing a year before its deadline, bytes.
pub const FORCE_REASON_BYTES_MAX: usize = 256;
/// Longest province or product-line name, bytes.
pub const LABEL_BYTES_MAX: usize = 64;
/// Largest activity figure accepted (MWh, GJ, t): ten billion.
pub const ACTIVITY_MAX: u64 = 10_000_000_000;
/// Most decimal places in an activity figure.
pub const ACTIVITY_SCALE_MAX: u32 = 6;
/// Largest verified-emissions figure of one entity, t.
pub const VERIFIED_T_MAX: u64 = 1_000_000_000;
/// Largest rated capacity of one generating unit, MW.
pub const CAPACITY_MW_MAX: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fuel {
    Coal,
    /// Coal gangue, circulating fluidised bed and other unconventional coal units.
    UnconventionalCoal,
    Gas,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FacilityKind {
    /// A generating unit.
    Power { fuel: Fuel, capacity_mw: u32 },
    /// A process of an industrial entity (its allocation unit or part of its intensity).
    Industry {
        product_line: String,
        process: Process,
    },
}

impl FacilityKind {
    /// The benchmark category of a generating unit (coal units split at 400 MW).
    pub fn category(&self) -> Option<UnitCategory> {
        match self {
            FacilityKind::Power { fuel, capacity_mw } => Some(match fuel {
                Fuel::Gas => UnitCategory::Gas,
                Fuel::UnconventionalCoal => UnitCategory::UnconventionalCoal,
                Fuel::Coal if *capacity_mw >= 400 => UnitCategory::CoalLarge,
                Fuel::Coal => UnitCategory::CoalSmall,
            }),
            FacilityKind::Industry { .. } => None,
        }
    }
}

/// One covered entity as loaded (its account is opened if it does not exist).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityRow {
    pub account: AccountId,
    pub name: String,
    pub sector: Sector,
    pub province: String,
    pub differentiated: bool,
    pub facilities: Vec<(u32, FacilityKind)>,
    /// The legal entity's unified social credit code; empty when the load gives none (a
    /// reload then keeps the code registered before).
    pub credit_code: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entity {
    pub sector: Sector,
    pub province: String,
    pub differentiated: bool,
    pub facilities: BTreeMap<u32, FacilityKind>,
    /// The unified social credit code: one covered-entity account per legal entity. Empty
    /// for entities registered before codes were kept, or loaded without one.
    pub credit_code: String,
}

/// A facility's activity data for one year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activity {
    Power {
        electricity_mwh: Decimal,
        heat_gj: Decimal,
        /// A fraction (0.55 for 55%).
        load_factor: Decimal,
        /// The unit's emissions, t (gas units are topped up to them).
        emissions_t: Decimal,
    },
    Industry {
        /// The process's product, t: hot metal, sinter, clinker, liquid aluminium.
        output_t: Decimal,
        /// The process's verified emissions, t CO2 (cement: fuel + process; aluminium: the
        /// anode CO2). Zero in records of the first format.
        emissions_t: Decimal,
        /// Aluminium: anode-effect PFC emissions, t CO2e.
        pfc_co2e_t: Decimal,
        /// Cement: the carbide-slag substitution rate, a fraction.
        carbide_slag_rate: Decimal,
        /// A special case of the plan declared for the year (allocation = E).
        special: Option<SpecialCase>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActivityRow {
    pub account: AccountId,
    pub facility: u32,
    pub activity: Activity,
}

/// Verified emissions of an entity for a year: CO2, plus PFCs (CF4, C2F6) as CO2e for
/// aluminium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifiedRow {
    pub account: AccountId,
    pub co2_t: u64,
    pub pfc_co2e_t: u64,
}

/// A pre-allocation or true-up run: the plan used and where the units came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub plan_version: String,
    pub unit: UnitId,
    pub authority: AccountId,
    /// Journal entry of the last run.
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearClose {
    pub average_price_fen: i64,
    pub seq: u64,
    /// The registry's local date of the close, `YYYYMMDD` (0: closed before dates were kept).
    pub date: u32,
    /// Why the authority closed before the deadline, if it did.
    pub forced_reason: Option<String>,
}

/// One compliance year: its plans (in registration order), runs and close.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Year {
    pub plans: Vec<Plan>,
    pub pre: Option<RunRecord>,
    pub trued: Option<RunRecord>,
    pub closed: Option<YearClose>,
}

impl Year {
    pub fn plan(&self, version: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.version == version)
    }

    /// The plan whose rules apply to surrender and close: the one of the latest true-up,
    /// else of the pre-allocation, else the latest registered.
    pub fn rules(&self) -> Option<&Plan> {
        self.trued
            .as_ref()
            .or(self.pre.as_ref())
            .and_then(|r| self.plan(&r.plan_version))
            .or(self.plans.last())
    }
}

/// What closing the year recorded for an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosingRecord {
    pub status: StatusCode,
    pub forced_t: u64,
    pub released_t: u64,
    pub shortfall_t: u64,
    pub penalty_fen: i64,
}

/// An entity's standing for one year.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub verified_co2_t: Option<u64>,
    pub verified_pfc_t: u64,
    /// The pre-allocation computed for the entity (before deductions).
    pub pre_t: u64,
    pub pre_done: bool,
    /// The final allocation of the latest true-up.
    pub final_t: Option<u64>,
    pub method: String,
    pub explanation: String,
    pub plan_version: String,
    pub delivered_t: u64,
    pub held_t: u64,
    pub deducted_t: u64,
    pub clawed_t: u64,
    pub excess_owed_t: u64,
    pub surrendered_cea_t: u64,
    pub surrendered_ccer_t: u64,
    pub closing: Option<ClosingRecord>,
}

impl Standing {
    pub fn verified_t(&self) -> Option<u64> {
        self.verified_co2_t.map(|c| c + self.verified_pfc_t)
    }

    /// What counts as allocated to the entity for the year so far (units surrendered by
    /// force at the close were allocated too).
    /// Never negative: `Ledger::check_invariants` checks that what was taken back stays
    /// within what was given (and debug builds assert it here).
    pub fn credited_t(&self) -> u64 {
        let forced = self.closing.map_or(0, |c| c.forced_t);
        let given = self.delivered_t + self.held_t + forced + self.deducted_t;
        let taken = self.clawed_t + self.excess_owed_t;
        debug_assert!(taken <= given, "standing took back {taken} t of {given} t");
        given.saturating_sub(taken)
    }

    pub fn compliance(&self) -> Compliance {
        Compliance {
            obligation_t: self.verified_t(),
            surrendered_cea_t: self.surrendered_cea_t,
            surrendered_ccer_t: self.surrendered_ccer_t,
        }
    }
}

/// The compliance cycle's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cycle {
    pub entities: BTreeMap<AccountId, Entity>,
    pub activity: BTreeMap<(u16, AccountId, u32), Activity>,
    pub years: BTreeMap<u16, Year>,
    pub standing: BTreeMap<(u16, AccountId), Standing>,
    /// Deductions owed (unpaid shortfalls, over-allocations not given back), netted at the
    /// next issuance.
    pub deductions: BTreeMap<AccountId, u64>,
    /// CEA sold minus bought at the exchange, by (account, vintage, trade year).
    pub net_sales: carry::NetSales,
    /// Carry-over limits by (year carried into, account).
    pub quotas: BTreeMap<(u16, AccountId), carry::Quota>,
    /// Carry-over applications by id.
    pub applications: BTreeMap<u64, carry::Application>,
}

/// Cycle records changed by the current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleDirty {
    pub entities: BTreeSet<AccountId>,
    pub activity: BTreeSet<(u16, AccountId, u32)>,
    pub years: BTreeSet<u16>,
    pub standing: BTreeSet<(u16, AccountId)>,
    pub deductions: BTreeSet<AccountId>,
    pub net_sales: BTreeSet<(AccountId, u16, u16)>,
    pub quotas: BTreeSet<(u16, AccountId)>,
    pub applications: BTreeSet<u64>,
}

impl Cycle {
    pub fn standing(&self, year: u16, account: AccountId) -> Standing {
        self.standing
            .get(&(year, account))
            .cloned()
            .unwrap_or_default()
    }

    /// The inputs of the allocation rules for every entity of `year`.
    pub fn entity_years(&self, year: u16) -> Vec<EntityYear> {
        self.entities
            .iter()
            .map(|(account, e)| {
                let mut units = Vec::new();
                let mut processes = Vec::new();
                for (&(_, _, facility), activity) in self
                    .activity
                    .range((year, *account, 0)..=(year, *account, u32::MAX))
                {
                    let kind = e.facilities.get(&facility);
                    match (kind, activity) {
                        (
                            Some(kind @ FacilityKind::Power { .. }),
                            Activity::Power {
                                electricity_mwh,
                                heat_gj,
                                load_factor,
                                emissions_t,
                            },
                        ) => {
                            if let Some(category) = kind.category() {
                                units.push(PowerUnit {
                                    category,
                                    electricity_mwh: *electricity_mwh,
                                    heat_gj: *heat_gj,
                                    load_factor: *load_factor,
                                    verified_t: *emissions_t,
                                });
                            }
                        }
                        (
                            Some(FacilityKind::Industry { process, .. }),
                            Activity::Industry {
                                output_t,
                                emissions_t,
                                pfc_co2e_t,
                                carbide_slag_rate,
                                special,
                            },
                        ) => processes.push(ProcessYear {
                            facility,
                            process: *process,
                            output_t: *output_t,
                            emissions_t: *emissions_t,
                            pfc_co2e_t: *pfc_co2e_t,
                            carbide_slag_rate: *carbide_slag_rate,
                            special: *special,
                        }),
                        _ => {}
                    }
                }
                EntityYear {
                    account: *account,
                    sector: e.sector,
                    province: e.province.clone(),
                    differentiated: e.differentiated,
                    units,
                    processes,
                    verified_t: self.standing(year, *account).verified_t(),
                }
            })
            .collect()
    }

    /// The compliance status of an entity for a year, now.
    pub fn status(&self, year: u16, account: AccountId) -> StatusCode {
        self.standing(year, account).compliance().status()
    }
}

impl Cycle {
    fn year_mut(&mut self, year: u16, dirty: &mut CycleDirty) -> &mut Year {
        dirty.years.insert(year);
        self.years.entry(year).or_default()
    }

    fn standing_mut(
        &mut self,
        year: u16,
        account: AccountId,
        dirty: &mut CycleDirty,
    ) -> &mut Standing {
        dirty.standing.insert((year, account));
        self.standing.entry((year, account)).or_default()
    }
}
