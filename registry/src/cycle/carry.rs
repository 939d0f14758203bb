//! Carry-over of old vintages into the plan year's (Annex 5 of the 2023-24 plan): each
//! covered entity may convert old-vintage units, up to its limit
//! `T = min(floor(base + multiple x max(0, net sales)), holdings)`, into the plan year's
//! vintage; an entity that missed an earlier year's compliance may not.
//!
//! - Net sales: every settled exchange trade of a CEA unit counts for the seller (+) and the
//!   buyer (-) by vintage and trade year (the settlement's UTC year, which during trading
//!   hours, 09:15-15:30 Beijing = 01:15-07:30 UTC, is the local one), from the first trade.
//! - `FixCarryOver` (the authority, after the plan's holdings date) records each entity's
//!   limit from the net sales and its holdings then (registry-available + trading +
//!   judicially frozen old-vintage units; pledged ones do not count).
//! - `ApplyCarryOver` (the entity, until the plan's last day): units in the registry
//!   position (moved back from trading first), frozen from the application.
//! - `ConvertCarryOver` (the authority): each open application's units go to the
//!   cancellation account and as many of the plan year's vintage are issued to the entity.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::codec::{Reader, Writer};
use crate::cycle::{CycleCode, open_year};
use crate::error::RegistryError;
use crate::ledger::Ledger;
use crate::model::{AccountId, AccountType, FreezeReason, UnitId, UnitKind};
use crate::tx::{Outcome, SettleLeg};

/// The carry-over terms of a plan: every number is plan data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarryOverRule {
    /// `T` before net sales (10,000 t).
    pub base_t: u64,
    /// Tonnes of limit per tonne of net sales (1.5).
    pub sales_multiple: Decimal,
    /// The old vintages that may be carried over (2019 to 2024).
    pub vintage_from: u16,
    pub vintage_to: u16,
    /// The calendar years whose net sales count (2024 and 2025).
    pub sales_year_from: u16,
    pub sales_year_to: u16,
    /// Holdings are counted at the end of this day (`YYYYMMDD`, 20251231): the limits are
    /// fixed after it.
    pub holdings_date: u32,
    /// The last day to apply (`YYYYMMDD`, 20260610).
    pub applications_until: u32,
    /// Entities short in any of these years' compliance are barred (2023, 2024).
    pub barred_if_missed: Vec<u16>,
}

impl CarryOverRule {
    /// The bounds every rule keeps (`plan_year` is the vintage carried into).
    pub fn validate(&self, plan_year: u16) -> Result<(), (&'static str, &'static str)> {
        if self.base_t > 1_000_000_000 {
            return Err(("carry_over.base_t", "must be at most 1,000,000,000 t"));
        }
        if self.sales_multiple < Decimal::ZERO || self.sales_multiple > Decimal::from(10) {
            return Err(("carry_over.sales_multiple", "must be from 0 to 10"));
        }
        if self.vintage_from < 2013 || self.vintage_from > self.vintage_to {
            return Err((
                "carry_over.vintage_from",
                "must be 2013 or later, at most vintage_to",
            ));
        }
        if self.vintage_to >= plan_year {
            return Err(("carry_over.vintage_to", "must be before the plan's year"));
        }
        if self.sales_year_from < 2013 || self.sales_year_from > self.sales_year_to {
            return Err((
                "carry_over.sales_year_from",
                "must be 2013 or later, at most sales_year_to",
            ));
        }
        if self.sales_year_to > plan_year + 1 {
            return Err((
                "carry_over.sales_year_to",
                "must be at most the year after the plan's",
            ));
        }
        if !crate::plans::valid_date(self.holdings_date) {
            return Err(("carry_over.holdings_date", "must be a date YYYYMMDD"));
        }
        if !crate::plans::valid_date(self.applications_until)
            || self.applications_until <= self.holdings_date
        {
            return Err((
                "carry_over.applications_until",
                "must be a date after holdings_date",
            ));
        }
        if self.barred_if_missed.len() > 10 || self.barred_if_missed.iter().any(|y| *y >= plan_year)
        {
            return Err((
                "carry_over.barred_if_missed",
                "at most 10 years before the plan's",
            ));
        }
        Ok(())
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.base_t)
            .dec(self.sales_multiple)
            .u16(self.vintage_from)
            .u16(self.vintage_to)
            .u16(self.sales_year_from)
            .u16(self.sales_year_to)
            .u32(self.holdings_date)
            .u32(self.applications_until)
            .u32(self.barred_if_missed.len() as u32);
        for y in &self.barred_if_missed {
            w.u16(*y);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<CarryOverRule, RegistryError> {
        let mut rule = CarryOverRule {
            base_t: r.u64()?,
            sales_multiple: r.dec()?,
            vintage_from: r.u16()?,
            vintage_to: r.u16()?,
            sales_year_from: r.u16()?,
            sales_year_to: r.u16()?,
            holdings_date: r.u32()?,
            applications_until: r.u32()?,
            barred_if_missed: Vec::new(),
        };
        let n = r.u32()?;
        if n > 10 {
            return Err(RegistryError::Corrupt("carry-over barred years".into()));
        }
        for _ in 0..n {
            rule.barred_if_missed.push(r.u16()?);
        }
        Ok(rule)
    }

    /// The `[carry_over]` section of a plan file.
    pub(crate) fn to_toml(&self) -> String {
        let barred: Vec<String> = self.barred_if_missed.iter().map(u16::to_string).collect();
        format!(
            "\n[carry_over]\nbase_t = {}\nsales_multiple = \"{}\"\nvintage_from = {}\nvintage_to = {}\nsales_year_from = {}\nsales_year_to = {}\nholdings_date = {}\napplications_until = {}\nbarred_if_missed = [{}]\n",
            self.base_t,
            self.sales_multiple,
            self.vintage_from,
            self.vintage_to,
            self.sales_year_from,
            self.sales_year_to,
            self.holdings_date,
            self.applications_until,
            barred.join(", ")
        )
    }
}

/// One entity's carry-over limit, as fixed, and what it has applied for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    pub plan_version: String,
    /// Sold minus bought of the old vintages in the sales years (may be negative).
    pub net_sales_t: i64,
    /// `floor(base + multiple x max(0, net sales))`.
    pub formula_t: u64,
    /// Old-vintage holdings when the limit was fixed.
    pub holdings_t: u64,
    /// `min(formula, holdings)`, or 0 when barred.
    pub limit_t: u64,
    pub applied_t: u64,
    /// Short in one of the rule's earlier years: no carry-over.
    pub barred: bool,
}

/// An application: old-vintage units frozen until converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Application {
    pub year: u16,
    pub account: AccountId,
    pub unit: UnitId,
    pub quantity_t: u64,
    pub converted: bool,
}

/// Civil year of a UTC time stamp (days from 1970-01-01 to the proleptic Gregorian year).
pub fn utc_year(timestamp_ns: u64) -> u16 {
    let days = (timestamp_ns / 86_400_000_000_000) as i64;
    // Howard Hinnant's days-to-civil, year only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month_from_march = mp + if mp < 10 { 3 } else { -9 };
    let year = yoe + era * 400 + i64::from(month_from_march <= 2);
    u16::try_from(year).unwrap_or(u16::MAX)
}

fn code(code: CycleCode, message: String) -> RegistryError {
    RegistryError::Cycle { code, why: message }
}

impl Ledger {
    /// Net sales of every CEA trade in a settlement, by account, vintage and trade year.
    pub(crate) fn count_net_sales(&mut self, legs: &[SettleLeg], timestamp_ns: u64) {
        let year = utc_year(timestamp_ns);
        for leg in legs {
            let SettleLeg::Trade {
                seller,
                buyer,
                unit,
                quantity_t,
            } = *leg
            else {
                continue;
            };
            let Some(def) = self.units.get(&unit) else {
                continue;
            };
            if def.kind != UnitKind::Cea {
                continue;
            }
            let q = i64::try_from(quantity_t).unwrap_or(i64::MAX);
            for (account, delta) in [(seller, q), (buyer, -q)] {
                let key = (account, def.vintage, year);
                let n = self.cycle.net_sales.entry(key).or_default();
                *n = n.saturating_add(delta);
                self.dirty.cycle.net_sales.insert(key);
            }
        }
    }

    fn carry_rule(
        &self,
        year: u16,
        version: &str,
    ) -> Result<crate::cycle::carry::CarryOverRule, RegistryError> {
        let y = open_year(&self.cycle, year)?;
        let plan = y
            .and_then(|y| y.plan(version))
            .ok_or_else(|| RegistryError::PlanNotFound {
                year,
                version: version.to_string(),
            })?;
        plan.carry_over.clone().ok_or(RegistryError::InvalidField {
            field: "plan_version",
            why: "the plan has no carry-over",
        })
    }

    /// Old-vintage units of an account counted for its limit: registry-available, trading
    /// and judicially frozen.
    fn old_holdings_t(&self, account: AccountId, rule: &CarryOverRule) -> u64 {
        self.holdings
            .range((account, UnitId(0))..=(account, UnitId(u32::MAX)))
            .filter(|((_, unit), _)| {
                self.units.get(unit).is_some_and(|d| {
                    d.kind == UnitKind::Cea
                        && (rule.vintage_from..=rule.vintage_to).contains(&d.vintage)
                })
            })
            .map(|(_, h)| {
                let judicial: u64 = h
                    .frozen
                    .iter()
                    .filter(|(r, _)| matches!(r, FreezeReason::Judicial(_)))
                    .map(|(_, q)| *q)
                    .sum();
                h.registry_available_t + h.trading_t + judicial
            })
            .sum()
    }

    /// One entity's limit under `rule`, from its net sales and holdings now.
    fn quota(&self, account: AccountId, rule: &CarryOverRule, version: &str) -> Quota {
        let net_sales_t: i64 = self
            .cycle
            .net_sales
            .range((account, 0, 0)..=(account, u16::MAX, u16::MAX))
            .filter(|((_, vintage, year), _)| {
                (rule.vintage_from..=rule.vintage_to).contains(vintage)
                    && (rule.sales_year_from..=rule.sales_year_to).contains(year)
            })
            .map(|(_, n)| *n)
            .fold(0i64, i64::saturating_add);
        let formula =
            Decimal::from(rule.base_t) + rule.sales_multiple * Decimal::from(net_sales_t.max(0));
        let formula_t = formula.floor().to_u64().unwrap_or(u64::MAX);
        let holdings_t = self.old_holdings_t(account, rule);
        let barred = rule.barred_if_missed.iter().any(|y| {
            self.cycle
                .standing
                .get(&(*y, account))
                .and_then(|s| s.closing)
                .is_some_and(|c| c.shortfall_t > 0)
        });
        Quota {
            plan_version: version.to_string(),
            net_sales_t,
            formula_t,
            holdings_t,
            limit_t: if barred { 0 } else { formula_t.min(holdings_t) },
            applied_t: 0,
            barred,
        }
    }

    /// Fixes every covered entity's limit for carrying old vintages into `year`.
    pub(crate) fn fix_carry_over(
        &mut self,
        year: u16,
        version: &str,
        date: u32,
    ) -> Result<Outcome, RegistryError> {
        let rule = self.carry_rule(year, version)?;
        if date <= rule.holdings_date {
            return Err(code(
                CycleCode::CarryOverWindow,
                format!(
                    "limits are fixed after the holdings date {}",
                    rule.holdings_date
                ),
            ));
        }
        if self.cycle.quotas.keys().any(|(y, _)| *y == year) {
            return Err(code(
                CycleCode::CarryOverFixed,
                format!("the carry-over limits into {year} are fixed already"),
            ));
        }
        let quotas: Vec<(AccountId, Quota)> = self
            .cycle
            .entities
            .keys()
            .map(|a| (*a, self.quota(*a, &rule, version)))
            .collect();
        for (account, quota) in quotas {
            self.cycle.quotas.insert((year, account), quota);
            self.dirty.cycle.quotas.insert((year, account));
        }
        Ok(Outcome::Done)
    }

    /// An entity applies to carry `quantity_t` of an old-vintage unit into `year`.
    pub(crate) fn apply_carry_over(
        &mut self,
        year: u16,
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
        date: u32,
    ) -> Result<Outcome, RegistryError> {
        let a = Application {
            year,
            account,
            unit,
            quantity_t,
            converted: false,
        };
        let mut quota = self.check_application(&a, date)?;
        self.check_available(account, unit, quantity_t)?;
        let id = self
            .cycle
            .applications
            .keys()
            .next_back()
            .map_or(1, |k| k + 1);
        self.freeze(account, unit, FreezeReason::CarryOver(id), quantity_t);
        self.cycle.applications.insert(id, a);
        self.dirty.cycle.applications.insert(id);
        quota.applied_t += quantity_t;
        self.cycle.quotas.insert((year, account), quota);
        self.dirty.cycle.quotas.insert((year, account));
        Ok(Outcome::Done)
    }

    /// An application's rules: a fixed limit, in time, not barred, an old vintage the
    /// plan carries, within the limit; the entity's quota as it stands.
    fn check_application(&self, a: &Application, date: u32) -> Result<Quota, RegistryError> {
        let quota = self
            .cycle
            .quotas
            .get(&(a.year, a.account))
            .cloned()
            .ok_or_else(|| {
                let why = format!(
                    "no carry-over limit into {} for account {}",
                    a.year, a.account.0
                );
                code(CycleCode::CarryOverNotFixed, why)
            })?;
        let rule = self.carry_rule(a.year, &quota.plan_version)?;
        if date > rule.applications_until {
            let why = format!("applications closed on {}", rule.applications_until);
            return Err(code(CycleCode::CarryOverWindow, why));
        }
        if quota.barred {
            let why = format!(
                "account {} missed an earlier year's compliance",
                a.account.0
            );
            return Err(code(CycleCode::CarryOverBarred, why));
        }
        let def = self.unit(a.unit)?;
        if def.kind != UnitKind::Cea
            || !(rule.vintage_from..=rule.vintage_to).contains(&def.vintage)
        {
            return Err(RegistryError::InvalidField {
                field: "unit",
                why: "must be CEA of a vintage the plan carries over",
            });
        }
        if a.quantity_t == 0 {
            return Err(RegistryError::InvalidQuantity);
        }
        if quota.applied_t.saturating_add(a.quantity_t) > quota.limit_t {
            let why = format!(
                "{} t applied + {} t is over the limit of {} t",
                quota.applied_t, a.quantity_t, quota.limit_t
            );
            return Err(code(CycleCode::CarryOverLimit, why));
        }
        Ok(quota)
    }

    /// Converts every open application into `year`: the old units are cancelled and as
    /// many of `unit` (the year's vintage) issued to the entity.
    pub(crate) fn convert_carry_over(
        &mut self,
        year: u16,
        unit: UnitId,
        cancellation: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let def = self.unit(unit)?;
        if def.kind != UnitKind::Cea || def.vintage != year {
            return Err(RegistryError::InvalidField {
                field: "unit",
                why: "carry-over issues CEA of the year it carries into",
            });
        }
        if self.account(cancellation)?.kind != AccountType::Cancellation {
            return Err(RegistryError::InvalidField {
                field: "cancellation",
                why: "must be the cancellation account",
            });
        }
        let open: Vec<(u64, Application)> = self
            .cycle
            .applications
            .iter()
            .filter(|(_, a)| a.year == year && !a.converted)
            .map(|(id, a)| (*id, *a))
            .collect();
        if open.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let issued: u64 = open.iter().map(|(_, a)| a.quantity_t).sum();
        let before = self.issued.get(&unit).copied().unwrap_or(0);
        let total = before.checked_add(issued).ok_or(RegistryError::Overflow)?;
        for (id, a) in open {
            let q = self.take_frozen(a.account, a.unit, FreezeReason::CarryOver(id));
            self.holding_mut(cancellation, a.unit).registry_available_t += q;
            self.holding_mut(a.account, unit).registry_available_t += q;
            self.cycle.applications.insert(
                id,
                Application {
                    converted: true,
                    ..a
                },
            );
            self.dirty.cycle.applications.insert(id);
        }
        self.issued.insert(unit, total);
        self.dirty.units.insert(unit);
        Ok(Outcome::Done)
    }
}

pub(crate) fn encode_quota(q: &Quota) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&q.plan_version)
        .u64(q.net_sales_t as u64)
        .u64(q.formula_t)
        .u64(q.holdings_t)
        .u64(q.limit_t)
        .u64(q.applied_t)
        .bool(q.barred);
    w.0
}

pub(crate) fn decode_quota(v: &[u8]) -> Result<Quota, RegistryError> {
    let mut r = Reader::new(v);
    let q = Quota {
        plan_version: r.str()?,
        net_sales_t: r.u64()? as i64,
        formula_t: r.u64()?,
        holdings_t: r.u64()?,
        limit_t: r.u64()?,
        applied_t: r.u64()?,
        barred: r.bool()?,
    };
    r.done()?;
    Ok(q)
}

pub(crate) fn encode_application(a: &Application) -> Vec<u8> {
    let mut w = Writer::default();
    w.u16(a.year)
        .u64(a.account.0)
        .u32(a.unit.0)
        .u64(a.quantity_t)
        .bool(a.converted);
    w.0
}

pub(crate) fn decode_application(v: &[u8]) -> Result<Application, RegistryError> {
    let mut r = Reader::new(v);
    let a = Application {
        year: r.u16()?,
        account: AccountId(r.u64()?),
        unit: UnitId(r.u32()?),
        quantity_t: r.u64()?,
        converted: r.bool()?,
    };
    r.done()?;
    Ok(a)
}

/// Net sales by (account, vintage, trade year), the map the cycle keeps.
pub type NetSales = BTreeMap<(AccountId, u16, u16), i64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_years_turn_at_midnight_utc() {
        // 2024-01-01T00:00:00Z = 1,704,067,200 s; one nanosecond before is 2023.
        let ns = 1_704_067_200u64 * 1_000_000_000;
        assert_eq!(utc_year(ns), 2024);
        assert_eq!(utc_year(ns - 1), 2023);
        // 2025-12-31T07:00:00Z (15:00 Beijing, the close) is still 2025.
        assert_eq!(utc_year(1_767_164_400 * 1_000_000_000), 2025);
        assert_eq!(utc_year(0), 1970);
    }
}
