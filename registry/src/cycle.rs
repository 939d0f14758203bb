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
//! entity (`forced`: what of it the year close surrendered), `deducted` was absorbed by a deduction it owed, `clawed` was taken back from its
//! account, and `excess_owed` is an over-allocation it could not give back (now a deduction
//! owed). A true-up moves `credited` to the run's final allocation; a re-run with the same
//! plan and data finds nothing to move.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use rust_decimal::Decimal;

use crate::allocation::{PowerUnit, UnitCategory};
use crate::codec::{Reader, Writer};
use crate::compliance::{
    self, Compliance, EntityYear, Plan, StatusCode, Totals, check_surrender, pre_allocation,
};
use crate::error::RegistryError;
use crate::ledger::Ledger;
use crate::model::{AccountId, AccountType, Leg, Sector, TxKind, UnitId, UnitKind};
use crate::plans::{decode_plan, encode_plan};
use crate::tx::{Outcome, TEXT_BYTES_MAX};

/// Most entity rows in one load.
pub const ENTITY_ROWS_MAX: usize = 5_000;
/// Most activity or verified-emissions rows in one load.
pub const DATA_ROWS_MAX: usize = 20_000;
/// Most facilities (generating units, product lines) of one entity.
pub const FACILITIES_PER_ENTITY_MAX: usize = 64;
/// Most plan versions registered for one compliance year.
pub const PLANS_PER_YEAR_MAX: usize = 32;
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
    /// A product line of the sector's intensity product.
    Industry { product_line: String },
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entity {
    pub sector: Sector,
    pub province: String,
    pub differentiated: bool,
    pub facilities: BTreeMap<u32, FacilityKind>,
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
        /// Output of the intensity product (hot metal, clinker, liquid aluminium), t.
        output_t: Decimal,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YearClose {
    pub average_price_fen: i64,
    pub seq: u64,
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
    pub fn credited_t(&self) -> u64 {
        let forced = self.closing.map_or(0, |c| c.forced_t);
        (self.delivered_t + self.held_t + forced + self.deducted_t)
            .saturating_sub(self.clawed_t + self.excess_owed_t)
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
}

/// Cycle records changed by the current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleDirty {
    pub entities: BTreeSet<AccountId>,
    pub activity: BTreeSet<(u16, AccountId, u32)>,
    pub years: BTreeSet<u16>,
    pub standing: BTreeSet<(u16, AccountId)>,
    pub deductions: BTreeSet<AccountId>,
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
                let mut output_t = Decimal::ZERO;
                for (&(_, _, facility), activity) in self
                    .activity
                    .range((year, *account, 0)..=(year, *account, u32::MAX))
                {
                    match activity {
                        Activity::Power {
                            electricity_mwh,
                            heat_gj,
                            load_factor,
                            emissions_t,
                        } => {
                            if let Some(category) =
                                e.facilities.get(&facility).and_then(FacilityKind::category)
                            {
                                units.push(PowerUnit {
                                    category,
                                    electricity_mwh: *electricity_mwh,
                                    heat_gj: *heat_gj,
                                    load_factor: *load_factor,
                                    verified_t: *emissions_t,
                                });
                            }
                        }
                        Activity::Industry { output_t: o } => output_t += *o,
                    }
                }
                EntityYear {
                    account: *account,
                    sector: e.sector,
                    province: e.province.clone(),
                    differentiated: e.differentiated,
                    units,
                    output_t,
                    verified_t: self.standing(year, *account).verified_t(),
                }
            })
            .collect()
    }

    /// The compliance status of an entity for a year, now.
    pub fn status(&self, year: u16, account: AccountId) -> StatusCode {
        self.standing(year, account).compliance().status()
    }

    /// Totals of a year by sector (`by_province == false`) or by province.
    pub fn totals(&self, year: u16, by_province: bool) -> BTreeMap<String, Totals> {
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for (account, e) in &self.entities {
            let key = if by_province {
                e.province.clone()
            } else {
                compliance::sector_label(e.sector).to_string()
            };
            let s = self.standing(year, *account);
            let c = s.compliance();
            let t = out.entry(key).or_default();
            t.entities += 1;
            t.obligation_t += c.obligation_t.unwrap_or(0);
            t.allocated_t += s.credited_t();
            t.surrendered_t += c.surrendered_cea_t + c.surrendered_ccer_t;
            t.shortfall_t += c.shortfall_t();
            t.penalty_fen += s.closing.map_or(0, |c| c.penalty_fen);
            match c.status() {
                StatusCode::Compliant => t.compliant += 1,
                StatusCode::Short => t.short += 1,
                StatusCode::EmissionsNotEntered => t.emissions_not_entered += 1,
            }
        }
        out
    }

    /// CSV: every entity's allocation for a year with its inputs, method, plan and the
    /// computation step by step.
    pub fn allocation_csv(&self, year: u16, names: &BTreeMap<AccountId, String>) -> String {
        let mut out = String::from(
            "year,account,name,sector,province,differentiated,verified_t,output_t,electricity_mwh,heat_gj,plan,method,pre_allocated_t,allocated_t,delivered_t,held_t,deducted_t,clawed_back_t,explanation\n",
        );
        for (account, e) in &self.entities {
            let s = self.standing(year, *account);
            let (mut output, mut electricity, mut heat) =
                (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
            for a in self
                .activity
                .range((year, *account, 0)..=(year, *account, u32::MAX))
                .map(|(_, a)| a)
            {
                match a {
                    Activity::Power {
                        electricity_mwh,
                        heat_gj,
                        ..
                    } => {
                        electricity += *electricity_mwh;
                        heat += *heat_gj;
                    }
                    Activity::Industry { output_t } => output += *output_t,
                }
            }
            let _ = writeln!(
                out,
                "{year},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                account.0,
                compliance::csv_field(names.get(account).map_or("", String::as_str)),
                compliance::sector_label(e.sector),
                compliance::csv_field(&e.province),
                e.differentiated,
                s.verified_t().map_or(String::new(), |v| v.to_string()),
                output,
                electricity,
                heat,
                compliance::csv_field(&s.plan_version),
                s.method,
                s.pre_t,
                s.final_t.map_or(String::new(), |v| v.to_string()),
                s.delivered_t,
                s.held_t,
                s.deducted_t,
                s.clawed_t,
                compliance::csv_field(&s.explanation),
            );
        }
        out
    }

    /// CSV: every entity's compliance status for a year.
    pub fn status_csv(&self, year: u16, names: &BTreeMap<AccountId, String>) -> String {
        let mut out = String::from(
            "year,account,name,sector,province,obligation_t,surrendered_cea_t,surrendered_ccer_t,shortfall_t,status,closed,forced_t,penalty_fen,deduction_owed_t\n",
        );
        for (account, e) in &self.entities {
            let s = self.standing(year, *account);
            let c = s.compliance();
            let _ = writeln!(
                out,
                "{year},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                account.0,
                compliance::csv_field(names.get(account).map_or("", String::as_str)),
                compliance::sector_label(e.sector),
                compliance::csv_field(&e.province),
                c.obligation_t.map_or(String::new(), |o| o.to_string()),
                c.surrendered_cea_t,
                c.surrendered_ccer_t,
                c.shortfall_t(),
                c.status().code(),
                s.closing.is_some(),
                s.closing.map_or(0, |c| c.forced_t),
                s.closing.map_or(0, |c| c.penalty_fen),
                self.deductions.get(account).copied().unwrap_or(0),
            );
        }
        out
    }

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

fn row_err(row: usize, field: &'static str, why: impl Into<String>) -> RegistryError {
    RegistryError::InvalidRow {
        row,
        field,
        why: why.into(),
    }
}

fn cycle_err(code: &'static str, why: impl Into<String>) -> RegistryError {
    RegistryError::Cycle {
        code,
        why: why.into(),
    }
}

fn check_figure(row: usize, field: &'static str, v: Decimal) -> Result<(), RegistryError> {
    if v.is_sign_negative() && !v.is_zero() {
        return Err(row_err(row, field, "must not be negative"));
    }
    if v > Decimal::from(ACTIVITY_MAX) {
        return Err(row_err(row, field, "must be at most 10,000,000,000"));
    }
    if v.scale() > ACTIVITY_SCALE_MAX {
        return Err(row_err(row, field, "at most 6 decimal places"));
    }
    Ok(())
}

fn check_label(row: usize, field: &'static str, v: &str, max: usize) -> Result<(), RegistryError> {
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(row_err(
            row,
            field,
            format!("must be 1 to {max} bytes without control characters"),
        ));
    }
    Ok(())
}

fn open_year(cycle: &Cycle, year: u16) -> Result<Option<&Year>, RegistryError> {
    let y = cycle.years.get(&year);
    if y.is_some_and(|y| y.closed.is_some()) {
        return Err(RegistryError::Surrender(
            compliance::SurrenderError::YearClosed(year),
        ));
    }
    Ok(y)
}

/// The movements an issuance run makes, computed before anything changes.
#[derive(Debug, Default)]
struct Moves {
    issue_t: u64,
    deliver: Vec<(AccountId, u64)>,
    claw: Vec<(AccountId, u64)>,
}

impl Ledger {
    /// The cycle ops all work on a copy of the cycle state and swap it in only when every
    /// check has passed and the holding movements are known to be possible.
    pub(crate) fn register_plan(&mut self, plan: &Plan) -> Result<Outcome, RegistryError> {
        plan.validate()
            .map_err(|(field, why)| RegistryError::InvalidField { field, why })?;
        open_year(&self.cycle, plan.year)?;
        if let Some(existing) = self
            .cycle
            .years
            .get(&plan.year)
            .and_then(|y| y.plan(&plan.version))
        {
            return if existing == plan {
                Ok(Outcome::Unchanged)
            } else {
                Err(RegistryError::PlanExists {
                    year: plan.year,
                    version: plan.version.clone(),
                })
            };
        }
        if self
            .cycle
            .years
            .get(&plan.year)
            .is_some_and(|y| y.plans.len() >= PLANS_PER_YEAR_MAX)
        {
            return Err(RegistryError::InvalidField {
                field: "version",
                why: "at most 32 plan versions per compliance year",
            });
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        self.cycle
            .year_mut(plan.year, &mut dirty)
            .plans
            .push(plan.clone());
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    pub(crate) fn load_entities(&mut self, rows: &[EntityRow]) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > ENTITY_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 5,000 entities",
            });
        }
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            if row.account.0 == 0 {
                return Err(row_err(i, "account_id", "must be positive"));
            }
            if !seen.insert(row.account) {
                return Err(row_err(i, "account_id", "appears twice in this load"));
            }
            check_label(i, "name", &row.name, TEXT_BYTES_MAX)?;
            check_label(i, "province", &row.province, LABEL_BYTES_MAX)?;
            if let Some(account) = self.accounts.get(&row.account)
                && account.kind != AccountType::CoveredEntity(row.sector)
            {
                return Err(row_err(
                    i,
                    "account_id",
                    "exists and is not a covered entity of this sector",
                ));
            }
            if row.facilities.is_empty() || row.facilities.len() > FACILITIES_PER_ENTITY_MAX {
                return Err(row_err(i, "facilities", "must hold 1 to 64 facilities"));
            }
            let mut ids = BTreeSet::new();
            for (id, kind) in &row.facilities {
                if !ids.insert(*id) {
                    return Err(row_err(i, "facility_id", "appears twice for this entity"));
                }
                match kind {
                    FacilityKind::Power { capacity_mw, .. } => {
                        if row.sector != Sector::Power {
                            return Err(row_err(
                                i,
                                "facility_kind",
                                "generating units belong to power entities",
                            ));
                        }
                        if *capacity_mw == 0 || *capacity_mw > CAPACITY_MW_MAX {
                            return Err(row_err(i, "capacity_mw", "must be 1 to 10,000 MW"));
                        }
                    }
                    FacilityKind::Industry { product_line } => {
                        if row.sector == Sector::Power {
                            return Err(row_err(
                                i,
                                "facility_kind",
                                "power entities have generating units",
                            ));
                        }
                        check_label(i, "product_line", product_line, LABEL_BYTES_MAX)?;
                    }
                }
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            if !self.accounts.contains_key(&row.account) {
                self.insert_account(
                    row.account,
                    AccountType::CoveredEntity(row.sector),
                    &row.name,
                );
            }
            self.cycle.entities.insert(
                row.account,
                Entity {
                    sector: row.sector,
                    province: row.province.clone(),
                    differentiated: row.differentiated,
                    facilities: row.facilities.iter().cloned().collect(),
                },
            );
            dirty.entities.insert(row.account);
        }
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    pub(crate) fn load_activity(
        &mut self,
        seq: u64,
        year: u16,
        rows: &[ActivityRow],
    ) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > DATA_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 20,000 rows",
            });
        }
        open_year(&self.cycle, year)?;
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let entity =
                self.cycle.entities.get(&row.account).ok_or_else(|| {
                    row_err(i, "account_id", "is not a registered covered entity")
                })?;
            let facility = entity
                .facilities
                .get(&row.facility)
                .ok_or_else(|| row_err(i, "facility_id", "is not a facility of this entity"))?;
            if !seen.insert((row.account, row.facility)) {
                return Err(row_err(i, "facility_id", "appears twice in this load"));
            }
            match (facility, row.activity) {
                (
                    FacilityKind::Power { .. },
                    Activity::Power {
                        electricity_mwh,
                        heat_gj,
                        load_factor,
                        emissions_t,
                    },
                ) => {
                    check_figure(i, "electricity_mwh", electricity_mwh)?;
                    check_figure(i, "heat_gj", heat_gj)?;
                    check_figure(i, "emissions_t", emissions_t)?;
                    check_figure(i, "load_factor", load_factor)?;
                    if load_factor > Decimal::ONE {
                        return Err(row_err(i, "load_factor", "must be a fraction from 0 to 1"));
                    }
                }
                (FacilityKind::Industry { .. }, Activity::Industry { output_t }) => {
                    check_figure(i, "output_t", output_t)?;
                }
                (FacilityKind::Power { .. }, _) => {
                    return Err(row_err(
                        i,
                        "electricity_mwh",
                        "a generating unit reports electricity, heat, load factor and emissions",
                    ));
                }
                (FacilityKind::Industry { .. }, _) => {
                    return Err(row_err(i, "output_t", "a product line reports its output"));
                }
            }
        }
        let before = self.snapshot_if_trued(year);
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            self.cycle
                .activity
                .insert((year, row.account, row.facility), row.activity);
            dirty.activity.insert((year, row.account, row.facility));
        }
        self.dirty.cycle = dirty;
        self.recompute_or_restore(seq, year, before)
    }

    pub(crate) fn record_verified(
        &mut self,
        seq: u64,
        year: u16,
        rows: &[VerifiedRow],
    ) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > DATA_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 20,000 rows",
            });
        }
        open_year(&self.cycle, year)?;
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let entity =
                self.cycle.entities.get(&row.account).ok_or_else(|| {
                    row_err(i, "account_id", "is not a registered covered entity")
                })?;
            if !seen.insert(row.account) {
                return Err(row_err(i, "account_id", "appears twice in this load"));
            }
            if row.pfc_co2e_t > 0 && entity.sector != Sector::Aluminium {
                return Err(row_err(
                    i,
                    "pfc_co2e_t",
                    "PFC emissions are reported by aluminium entities only",
                ));
            }
            if row.co2_t > VERIFIED_T_MAX
                || row.pfc_co2e_t > VERIFIED_T_MAX
                || row.co2_t + row.pfc_co2e_t > VERIFIED_T_MAX
            {
                return Err(row_err(i, "co2_t", "at most 1,000,000,000 t per entity"));
            }
        }
        let before = self.snapshot_if_trued(year);
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            let s = self.cycle.standing_mut(year, row.account, &mut dirty);
            s.verified_co2_t = Some(row.co2_t);
            s.verified_pfc_t = row.pfc_co2e_t;
        }
        self.dirty.cycle = dirty;
        self.recompute_or_restore(seq, year, before)
    }

    /// After a data correction in a year already trued up: re-run the true-up with the same
    /// plan, topping up or clawing back. On failure the cycle state is put back.
    fn snapshot_if_trued(&self, year: u16) -> Option<Cycle> {
        self.cycle
            .years
            .get(&year)
            .is_some_and(|y| y.trued.is_some())
            .then(|| self.cycle.clone())
    }

    fn recompute_or_restore(
        &mut self,
        seq: u64,
        year: u16,
        before: Option<Cycle>,
    ) -> Result<Outcome, RegistryError> {
        let (Some(before), Some(run)) = (
            before,
            self.cycle.years.get(&year).and_then(|y| y.trued.clone()),
        ) else {
            return Ok(Outcome::Done);
        };
        match self.true_up(seq, year, &run.plan_version, run.unit, run.authority) {
            Ok(_) => Ok(Outcome::Done),
            Err(e) => {
                self.cycle = before;
                self.dirty.cycle = CycleDirty::default();
                Err(e)
            }
        }
    }

    fn check_run(
        &self,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Plan, RegistryError> {
        let y = open_year(&self.cycle, year)?;
        let plan = y
            .and_then(|y| y.plan(version))
            .ok_or_else(|| RegistryError::PlanNotFound {
                year,
                version: version.to_string(),
            })?
            .clone();
        let def = self.unit(unit)?;
        if def.kind != UnitKind::Cea || def.vintage != year {
            return Err(RegistryError::InvalidField {
                field: "unit",
                why: "allocation is made in CEA of the compliance year's vintage",
            });
        }
        if self.account(authority)?.kind != AccountType::NationalAuthority {
            return Err(RegistryError::InvalidField {
                field: "authority",
                why: "allocation runs from the national authority's account",
            });
        }
        Ok(plan)
    }

    /// Moves each entity's credited allocation to `targets` (account -> tonnes to reach),
    /// netting deductions owed and clawing back any excess. Checks first, then changes.
    fn settle_allocations(
        &mut self,
        year: u16,
        unit: UnitId,
        authority: AccountId,
        targets: &[(AccountId, u64)],
        dirty: &mut CycleDirty,
    ) -> Result<Moves, RegistryError> {
        let mut moves = Moves::default();
        let mut standings = Vec::with_capacity(targets.len());
        let mut owed_after = Vec::new();
        for &(account, target) in targets {
            let mut s = self.cycle.standing(year, account);
            let differentiated = self
                .cycle
                .entities
                .get(&account)
                .is_some_and(|e| e.differentiated);
            let mut owed = self.cycle.deductions.get(&account).copied().unwrap_or(0);
            let owed_before = owed;
            let credited = s.credited_t();
            if target > credited {
                let due = target - credited;
                let applied = due.min(owed);
                owed -= applied;
                s.deducted_t += applied;
                let give = due - applied;
                if give > 0 {
                    moves.issue_t = moves
                        .issue_t
                        .checked_add(give)
                        .ok_or(RegistryError::Overflow)?;
                    if differentiated {
                        s.held_t += give;
                    } else {
                        self.check_leg(account, unit, TxKind::Allocate, Leg::Credit)?;
                        s.delivered_t += give;
                        moves.deliver.push((account, give));
                    }
                }
            } else if target < credited {
                let mut need = credited - target;
                let from_held = need.min(s.held_t);
                s.held_t -= from_held;
                need -= from_held;
                let available = if self
                    .check_leg(account, unit, TxKind::Reverse, Leg::Debit)
                    .is_ok()
                {
                    self.holding(account, unit).registry_available_t
                } else {
                    0
                };
                let take = need.min(available);
                if take > 0 {
                    s.clawed_t += take;
                    moves.claw.push((account, take));
                    need -= take;
                }
                s.excess_owed_t += need;
                owed += need;
            }
            if owed != owed_before {
                owed_after.push((account, owed));
            }
            standings.push((account, s));
        }
        if moves.issue_t > 0 {
            self.check_leg(authority, unit, TxKind::Issue, Leg::Credit)?;
            let issued = self.issued.get(&unit).copied().unwrap_or(0);
            issued
                .checked_add(moves.issue_t)
                .ok_or(RegistryError::Overflow)?;
            self.holding(authority, unit)
                .total_t()
                .checked_add(moves.issue_t)
                .ok_or(RegistryError::Overflow)?;
        }
        if !moves.deliver.is_empty() {
            self.check_leg(authority, unit, TxKind::Allocate, Leg::Debit)?;
        }
        if !moves.claw.is_empty() {
            self.check_leg(authority, unit, TxKind::Reverse, Leg::Credit)?;
        }
        // Everything checked: change.
        for (account, s) in standings {
            if self.cycle.standing.get(&(year, account)) != Some(&s) {
                dirty.standing.insert((year, account));
                self.cycle.standing.insert((year, account), s);
            }
        }
        for (account, owed) in owed_after {
            dirty.deductions.insert(account);
            if owed == 0 {
                self.cycle.deductions.remove(&account);
            } else {
                self.cycle.deductions.insert(account, owed);
            }
        }
        if moves.issue_t > 0 {
            let issued = self.issued.get(&unit).copied().unwrap_or(0);
            self.issued.insert(unit, issued + moves.issue_t);
            self.dirty.units.insert(unit);
            self.holding_mut(authority, unit).registry_available_t += moves.issue_t;
        }
        for &(account, q) in &moves.deliver {
            self.move_available(authority, account, unit, q);
        }
        for &(account, q) in &moves.claw {
            self.move_available(account, authority, unit, q);
        }
        Ok(moves)
    }

    /// Pre-allocation: the plan's share of each entity's previous-year verified emissions,
    /// once per entity (entities registered later get theirs on a re-run).
    pub(crate) fn pre_allocate(
        &mut self,
        seq: u64,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let plan = self.check_run(year, version, unit, authority)?;
        let y = self.cycle.years.get(&year).cloned().unwrap_or_default();
        if let Some(pre) = &y.pre
            && pre.plan_version != version
        {
            return Err(cycle_err(
                "PLAN_MISMATCH",
                format!(
                    "{year} was pre-allocated under plan {:?}; re-run with that plan",
                    pre.plan_version
                ),
            ));
        }
        if y.trued.is_some() {
            return Err(cycle_err(
                "ALREADY_TRUED_UP",
                format!("{year} is trued up already; pre-allocation comes before the true-up"),
            ));
        }
        let mut targets = Vec::new();
        let mut pre_amounts = Vec::new();
        for account in self.cycle.entities.keys() {
            let s = self.cycle.standing(year, *account);
            if s.pre_done {
                continue;
            }
            let Some(previous) = year
                .checked_sub(1)
                .and_then(|p| self.cycle.standing.get(&(p, *account)))
                .and_then(Standing::verified_t)
            else {
                continue;
            };
            let pre = pre_allocation(&plan, previous);
            targets.push((*account, s.credited_t() + pre));
            pre_amounts.push((*account, pre));
        }
        if targets.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let result = self.settle_allocations(year, unit, authority, &targets, &mut dirty);
        if let Err(e) = result {
            self.dirty.cycle = CycleDirty::default();
            return Err(e);
        }
        for (account, pre) in pre_amounts {
            let s = self.cycle.standing_mut(year, account, &mut dirty);
            s.pre_t = pre;
            s.pre_done = true;
            s.plan_version = version.to_string();
        }
        self.cycle.year_mut(year, &mut dirty).pre = Some(RunRecord {
            plan_version: version.to_string(),
            unit,
            authority,
            seq,
        });
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    /// The true-up: final allocations by the plan's methods from the verified data, then
    /// issue the rest or claw back the excess. Idempotent: the same plan and data move
    /// nothing (and the registry then records no entry).
    pub(crate) fn true_up(
        &mut self,
        seq: u64,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let plan = self.check_run(year, version, unit, authority)?;
        let inputs = self.cycle.entity_years(year);
        if matches!(plan.industry, compliance::IndustryMethod::Intensity { .. })
            && let Some(e) = inputs.iter().find(|e| {
                e.sector != Sector::Power
                    && e.verified_t.is_some_and(|v| v > 0)
                    && e.output_t.is_zero()
            })
        {
            return Err(cycle_err(
                "ACTIVITY_MISSING",
                format!(
                    "entity {} has verified emissions for {year} but no product output",
                    e.account.0
                ),
            ));
        }
        let run = compliance::allocate(&plan, &inputs)?;
        let mut changed = false;
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let targets: Vec<(AccountId, u64)> = run
            .allocations
            .iter()
            .map(|a| (a.account, a.allocated_t))
            .collect();
        // Checks everything before it changes anything.
        let moves = match self.settle_allocations(year, unit, authority, &targets, &mut dirty) {
            Ok(m) => m,
            Err(e) => {
                self.dirty.cycle = CycleDirty::default();
                return Err(e);
            }
        };
        changed |= moves.issue_t > 0 || !moves.deliver.is_empty() || !moves.claw.is_empty();
        changed |= !dirty.standing.is_empty() || !dirty.deductions.is_empty();
        for a in &run.allocations {
            let s = self.cycle.standing(year, a.account);
            if s.final_t != Some(a.allocated_t)
                || s.explanation != a.explanation
                || s.plan_version != run.plan_version
                || s.method != a.method
            {
                let s = self.cycle.standing_mut(year, a.account, &mut dirty);
                s.final_t = Some(a.allocated_t);
                s.method = a.method.to_string();
                s.explanation = a.explanation.clone();
                s.plan_version = run.plan_version.clone();
                changed = true;
            }
        }
        let y = self.cycle.years.get(&year);
        if y.and_then(|y| y.trued.as_ref())
            .map(|r| (&r.plan_version[..], r.unit, r.authority))
            != Some((version, unit, authority))
        {
            changed = true;
        }
        if !changed {
            self.dirty.cycle = dirty;
            return Ok(Outcome::Unchanged);
        }
        self.cycle.year_mut(year, &mut dirty).trued = Some(RunRecord {
            plan_version: version.to_string(),
            unit,
            authority,
            seq,
        });
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    /// Surrender rules when the year has a plan: the account must be a registered entity,
    /// the plan's vintage and CCER rules hold, the year is open. Returns whether the units
    /// are CCER (to count them).
    pub(crate) fn check_compliance_surrender(
        &self,
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
        year: u16,
    ) -> Result<Option<bool>, RegistryError> {
        let Some(y) = self.cycle.years.get(&year) else {
            return Ok(None);
        };
        let Some(plan) = y.rules() else {
            return Ok(None);
        };
        if !self.cycle.entities.contains_key(&account) {
            return Err(RegistryError::NotCovered(account.0));
        }
        let def = *self.unit(unit)?;
        let s = self.cycle.standing(year, account);
        check_surrender(plan, y.closed.is_some(), &s.compliance(), &def, quantity_t)?;
        Ok(Some(def.kind == UnitKind::Ccer))
    }

    pub(crate) fn count_surrender(
        &mut self,
        account: AccountId,
        year: u16,
        ccer: bool,
        quantity_t: u64,
    ) {
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let s = self.cycle.standing_mut(year, account, &mut dirty);
        if ccer {
            s.surrendered_ccer_t += quantity_t;
        } else {
            s.surrendered_cea_t += quantity_t;
        }
        self.dirty.cycle = dirty;
    }

    /// Closes a compliance year: forced surrender for differentiated entities from what the
    /// authority holds for them (the rest released to them), final statuses, penalties at
    /// the plan's multiple of `average_price_fen`, shortfalls carried as deductions.
    pub(crate) fn close_year(
        &mut self,
        seq: u64,
        year: u16,
        average_price_fen: i64,
        retirement: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let y = open_year(&self.cycle, year)?
            .cloned()
            .ok_or_else(|| cycle_err("YEAR_NOT_ADMINISTERED", format!("{year} has no plan")))?;
        let plan = y
            .rules()
            .cloned()
            .ok_or_else(|| cycle_err("YEAR_NOT_ADMINISTERED", format!("{year} has no plan")))?;
        if average_price_fen <= 0 || average_price_fen > 100_000_000 {
            return Err(RegistryError::InvalidField {
                field: "average_price_fen",
                why: "must be 1 to 100,000,000 fen",
            });
        }
        let source = y.trued.as_ref().or(y.pre.as_ref());
        let mut closings = Vec::new();
        let mut forced_total = 0u64;
        let mut released = Vec::new();
        for (account, e) in &self.cycle.entities {
            let s = self.cycle.standing(year, *account);
            // What the authority holds for an entity is used for it at the close even if
            // it stopped being differentiated during the year.
            let c = compliance::close(
                &plan,
                *account,
                &s.compliance(),
                e.differentiated || s.held_t > 0,
                s.held_t,
                average_price_fen,
            );
            forced_total += c.forced_t;
            if c.released_t > 0 {
                released.push((*account, c.released_t));
            }
            closings.push((*account, c));
        }
        if forced_total > 0 || !released.is_empty() {
            let Some(run) = source else {
                return Err(cycle_err(
                    "CORRUPT",
                    "units held for entities without an allocation run",
                ));
            };
            let (unit, authority) = (run.unit, run.authority);
            let held: u64 = forced_total + released.iter().map(|r| r.1).sum::<u64>();
            if self.holding(authority, unit).registry_available_t < held {
                return Err(RegistryError::InsufficientAvailable {
                    available: self.holding(authority, unit).registry_available_t,
                    wanted: held,
                });
            }
            if forced_total > 0 {
                self.check_leg(authority, unit, TxKind::Surrender, Leg::Debit)?;
                self.check_leg(retirement, unit, TxKind::Surrender, Leg::Credit)?;
            }
            for (account, _) in &released {
                self.check_leg(*account, unit, TxKind::Allocate, Leg::Credit)?;
            }
            if forced_total > 0 {
                self.move_available(authority, retirement, unit, forced_total);
            }
            for (account, q) in &released {
                self.move_available(authority, *account, unit, *q);
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for (account, c) in closings {
            let s = self.cycle.standing_mut(year, account, &mut dirty);
            s.surrendered_cea_t += c.forced_t;
            s.held_t -= c.forced_t + c.released_t;
            s.delivered_t += c.released_t;
            s.closing = Some(ClosingRecord {
                status: c.status,
                forced_t: c.forced_t,
                released_t: c.released_t,
                shortfall_t: c.shortfall_t,
                penalty_fen: c.penalty_fen,
            });
            if c.deduction_t > 0 {
                *self.cycle.deductions.entry(account).or_default() += c.deduction_t;
                dirty.deductions.insert(account);
            }
        }
        self.cycle.year_mut(year, &mut dirty).closed = Some(YearClose {
            average_price_fen,
            seq,
        });
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }
}

// ---- storage encoding of the cycle's records ----

fn sector_code(s: Sector) -> u8 {
    match s {
        Sector::Power => 0,
        Sector::Steel => 1,
        Sector::Cement => 2,
        Sector::Aluminium => 3,
    }
}

pub(crate) fn sector_of(c: u8) -> Result<Sector, RegistryError> {
    Ok(match c {
        0 => Sector::Power,
        1 => Sector::Steel,
        2 => Sector::Cement,
        3 => Sector::Aluminium,
        _ => return Err(RegistryError::Corrupt("sector".into())),
    })
}

pub(crate) fn put_sector(w: &mut Writer, s: Sector) {
    w.u8(sector_code(s));
}

fn put_facility(w: &mut Writer, id: u32, kind: &FacilityKind) {
    w.u32(id);
    match kind {
        FacilityKind::Power { fuel, capacity_mw } => {
            w.u8(0)
                .u8(match fuel {
                    Fuel::Coal => 0,
                    Fuel::UnconventionalCoal => 1,
                    Fuel::Gas => 2,
                })
                .u32(*capacity_mw);
        }
        FacilityKind::Industry { product_line } => {
            w.u8(1).str(product_line);
        }
    }
}

fn get_facility(r: &mut Reader<'_>) -> Result<(u32, FacilityKind), RegistryError> {
    let id = r.u32()?;
    let kind = match r.u8()? {
        0 => {
            let fuel = match r.u8()? {
                0 => Fuel::Coal,
                1 => Fuel::UnconventionalCoal,
                2 => Fuel::Gas,
                _ => return Err(RegistryError::Corrupt("fuel".into())),
            };
            FacilityKind::Power {
                fuel,
                capacity_mw: r.u32()?,
            }
        }
        1 => FacilityKind::Industry {
            product_line: r.str()?,
        },
        _ => return Err(RegistryError::Corrupt("facility".into())),
    };
    Ok((id, kind))
}

/// Bounds a decoded count so corrupt bytes cannot ask for a huge allocation.
fn count(r: &mut Reader<'_>, max: usize) -> Result<usize, RegistryError> {
    let n = r.u32()? as usize;
    if n > max {
        return Err(RegistryError::Corrupt("count".into()));
    }
    Ok(n)
}

pub(crate) fn put_entity_row(w: &mut Writer, row: &EntityRow) {
    w.u64(row.account.0).str(&row.name);
    put_sector(w, row.sector);
    w.str(&row.province).bool(row.differentiated);
    w.u32(row.facilities.len() as u32);
    for (id, kind) in &row.facilities {
        put_facility(w, *id, kind);
    }
}

pub(crate) fn get_entity_row(r: &mut Reader<'_>) -> Result<EntityRow, RegistryError> {
    let account = AccountId(r.u64()?);
    let name = r.str()?;
    let sector = sector_of(r.u8()?)?;
    let province = r.str()?;
    let differentiated = r.bool()?;
    let n = count(r, FACILITIES_PER_ENTITY_MAX)?;
    let mut facilities = Vec::with_capacity(n);
    for _ in 0..n {
        facilities.push(get_facility(r)?);
    }
    Ok(EntityRow {
        account,
        name,
        sector,
        province,
        differentiated,
        facilities,
    })
}

pub(crate) fn put_activity(w: &mut Writer, a: &Activity) {
    match a {
        Activity::Power {
            electricity_mwh,
            heat_gj,
            load_factor,
            emissions_t,
        } => {
            w.u8(0)
                .dec(*electricity_mwh)
                .dec(*heat_gj)
                .dec(*load_factor)
                .dec(*emissions_t);
        }
        Activity::Industry { output_t } => {
            w.u8(1).dec(*output_t);
        }
    }
}

pub(crate) fn get_activity(r: &mut Reader<'_>) -> Result<Activity, RegistryError> {
    Ok(match r.u8()? {
        0 => Activity::Power {
            electricity_mwh: r.dec()?,
            heat_gj: r.dec()?,
            load_factor: r.dec()?,
            emissions_t: r.dec()?,
        },
        1 => Activity::Industry { output_t: r.dec()? },
        _ => return Err(RegistryError::Corrupt("activity".into())),
    })
}

pub(crate) fn get_rows<T>(
    r: &mut Reader<'_>,
    max: usize,
    mut one: impl FnMut(&mut Reader<'_>) -> Result<T, RegistryError>,
) -> Result<Vec<T>, RegistryError> {
    let n = count(r, max)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(one(r)?);
    }
    Ok(rows)
}

pub(crate) fn encode_entity(e: &Entity) -> Vec<u8> {
    let mut w = Writer::default();
    put_sector(&mut w, e.sector);
    w.str(&e.province).bool(e.differentiated);
    w.u32(e.facilities.len() as u32);
    for (id, kind) in &e.facilities {
        put_facility(&mut w, *id, kind);
    }
    w.0
}

pub(crate) fn decode_entity(bytes: &[u8]) -> Result<Entity, RegistryError> {
    let mut r = Reader::new(bytes);
    let sector = sector_of(r.u8()?)?;
    let province = r.str()?;
    let differentiated = r.bool()?;
    let n = count(&mut r, FACILITIES_PER_ENTITY_MAX)?;
    let mut facilities = BTreeMap::new();
    for _ in 0..n {
        let (id, kind) = get_facility(&mut r)?;
        facilities.insert(id, kind);
    }
    r.done()?;
    Ok(Entity {
        sector,
        province,
        differentiated,
        facilities,
    })
}

fn put_run(w: &mut Writer, run: &Option<RunRecord>) {
    match run {
        None => {
            w.u8(0);
        }
        Some(r) => {
            w.u8(1)
                .str(&r.plan_version)
                .u32(r.unit.0)
                .u64(r.authority.0)
                .u64(r.seq);
        }
    }
}

fn get_run(r: &mut Reader<'_>) -> Result<Option<RunRecord>, RegistryError> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(RunRecord {
            plan_version: r.str()?,
            unit: UnitId(r.u32()?),
            authority: AccountId(r.u64()?),
            seq: r.u64()?,
        }),
    })
}

pub(crate) fn encode_year(y: &Year) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(y.plans.len() as u32);
    for p in &y.plans {
        encode_plan(&mut w, p);
    }
    put_run(&mut w, &y.pre);
    put_run(&mut w, &y.trued);
    match y.closed {
        None => {
            w.u8(0);
        }
        Some(c) => {
            w.u8(1).u64(c.average_price_fen as u64).u64(c.seq);
        }
    }
    w.0
}

pub(crate) fn decode_year(bytes: &[u8]) -> Result<Year, RegistryError> {
    let mut r = Reader::new(bytes);
    let plans = get_rows(&mut r, PLANS_PER_YEAR_MAX, decode_plan)?;
    let pre = get_run(&mut r)?;
    let trued = get_run(&mut r)?;
    let closed = match r.u8()? {
        0 => None,
        _ => Some(YearClose {
            average_price_fen: r.u64()? as i64,
            seq: r.u64()?,
        }),
    };
    r.done()?;
    Ok(Year {
        plans,
        pre,
        trued,
        closed,
    })
}

fn status_code(s: StatusCode) -> u8 {
    match s {
        StatusCode::Compliant => 0,
        StatusCode::Short => 1,
        StatusCode::EmissionsNotEntered => 2,
    }
}

pub(crate) fn encode_standing(s: &Standing) -> Vec<u8> {
    let mut w = Writer::default();
    match s.verified_co2_t {
        None => w.u8(0),
        Some(v) => w.u8(1).u64(v),
    };
    w.u64(s.verified_pfc_t).u64(s.pre_t).bool(s.pre_done);
    match s.final_t {
        None => w.u8(0),
        Some(v) => w.u8(1).u64(v),
    };
    w.str(&s.method)
        .str(&s.explanation)
        .str(&s.plan_version)
        .u64(s.delivered_t)
        .u64(s.held_t)
        .u64(s.deducted_t)
        .u64(s.clawed_t)
        .u64(s.excess_owed_t)
        .u64(s.surrendered_cea_t)
        .u64(s.surrendered_ccer_t);
    match s.closing {
        None => {
            w.u8(0);
        }
        Some(c) => {
            w.u8(1)
                .u8(status_code(c.status))
                .u64(c.forced_t)
                .u64(c.released_t)
                .u64(c.shortfall_t)
                .u64(c.penalty_fen as u64);
        }
    }
    w.0
}

pub(crate) fn decode_standing(bytes: &[u8]) -> Result<Standing, RegistryError> {
    let mut r = Reader::new(bytes);
    let opt = |r: &mut Reader<'_>| -> Result<Option<u64>, RegistryError> {
        Ok(match r.u8()? {
            0 => None,
            _ => Some(r.u64()?),
        })
    };
    let verified_co2_t = opt(&mut r)?;
    let verified_pfc_t = r.u64()?;
    let pre_t = r.u64()?;
    let pre_done = r.bool()?;
    let final_t = opt(&mut r)?;
    let s = Standing {
        verified_co2_t,
        verified_pfc_t,
        pre_t,
        pre_done,
        final_t,
        method: r.str()?,
        explanation: r.str()?,
        plan_version: r.str()?,
        delivered_t: r.u64()?,
        held_t: r.u64()?,
        deducted_t: r.u64()?,
        clawed_t: r.u64()?,
        excess_owed_t: r.u64()?,
        surrendered_cea_t: r.u64()?,
        surrendered_ccer_t: r.u64()?,
        closing: match r.u8()? {
            0 => None,
            _ => Some(ClosingRecord {
                status: match r.u8()? {
                    0 => StatusCode::Compliant,
                    1 => StatusCode::Short,
                    2 => StatusCode::EmissionsNotEntered,
                    _ => return Err(RegistryError::Corrupt("status code".into())),
                },
                forced_t: r.u64()?,
                released_t: r.u64()?,
                shortfall_t: r.u64()?,
                penalty_fen: r.u64()? as i64,
            }),
        },
    };
    r.done()?;
    Ok(s)
}
