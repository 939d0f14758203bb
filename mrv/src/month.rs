//! One month's deposited data ("月度信息化存证", §10.2): quantities per scope, measured
//! parameters with their lab reports, stoppages; validated against the factors and the
//! entity's plan before anything keeps it.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::factors::{Factors, MaterialKind, Sector};
use crate::plan::{DataError, Dqcp, Facility, Param, ProcessKind, Scope, Subject, refuse};
use crate::round::{NCV_DP, QUANTITY_DP, places};

/// Most quantity rows in one month.
pub const MONTH_ROWS_MAX: usize = 1_000;
/// Most measured readings in one month.
pub const MONTH_READINGS_MAX: usize = 200;
/// Largest quantity of one row, t or 10^4 Nm3 (or MWh, GJ): a hundred million, far above
/// any one entity's month (the largest blast furnaces make about 0.5 Mt of hot metal a
/// month); above it a figure is a typing error.
pub const QUANTITY_MAX: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);
/// Longest evidence reference (lab report number), bytes.
pub const EVIDENCE_REF_BYTES_MAX: usize = 128;
/// Largest anode-effect figure, minutes per cell-day.
pub const ANODE_EFFECT_MINUTES_MAX: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

/// Which way a row's quantity moves carbon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Burned or used in: a fuel (steel enterprise: net purchased; a process: its input),
    /// a material purchased, carbide slag, anodes.
    Consumed,
    /// Steel enterprise: self-produced coke or gas sold (or burned in units covered as
    /// power), carbon-bearing products sold (pig iron, tar, crude benzene).
    Sold,
    /// A process's output: a fuel of formula (2) (coke, gases) or a product (production
    /// data: crude steel, sinter, hot metal, clinker, liquid aluminium, MWh...).
    Produced,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Consumed => "consumed",
            Role::Sold => "sold",
            Role::Produced => "produced",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Consumed, Role::Sold, Role::Produced]
            .into_iter()
            .find(|r| r.name() == text)
    }
}

/// One quantity of the month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub scope: Scope,
    pub role: Role,
    /// A fuel, material or product code of the factors file.
    pub item: String,
    /// t (gases 10^4 Nm3; products in their unit), at most 2 places.
    pub quantity: Decimal,
}

/// A measured parameter of the month: the month's NCV of a fuel (weighted by the batches
/// received), or an electrolysis process's anode contents or anode-effect minutes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub param: Param,
    pub subject: Subject,
    pub value: Decimal,
    /// The lab report (CMA/CNAS) or record it comes from.
    pub evidence: String,
}

/// Days a facility stood still in the month (stoppages and restarts, a key parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stoppage {
    pub facility: u32,
    pub days: u8,
}

/// An entity's data for one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Month {
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    pub rows: Vec<Row>,
    pub readings: Vec<Reading>,
    pub stoppages: Vec<Stoppage>,
}

impl Month {
    /// Checks a month before it is deposited: [`Month::validate_shape`], and every
    /// parameter the plan measures that has data this month has its reading (taking the
    /// default after measured was chosen is refused, §6.2).
    pub fn validate(&self, factors: &Factors, plan: &Dqcp) -> Result<(), DataError> {
        self.validate_shape(factors, plan)?;
        for (param, subject) in &plan.measured {
            let given = self
                .readings
                .iter()
                .any(|r| r.param == *param && &r.subject == subject);
            if self.uses(*param, subject) && !given {
                let what = match subject {
                    Subject::Fuel(code) => code.clone(),
                    Subject::Facility(id) => format!("facility {id}"),
                };
                let why = format!("{what}: measured was chosen in the plan; no reading given");
                return Err(refuse(format!("readings.{}", param.name()), why));
            }
        }
        Ok(())
    }

    /// Checks the month against the factors and the plan: every row's scope, role, item
    /// and quantity; every reading of a parameter the plan measures; nothing twice. (A
    /// month deposited before a revision chose to measure a parameter keeps its default.)
    pub fn validate_shape(&self, factors: &Factors, plan: &Dqcp) -> Result<(), DataError> {
        if self.year != plan.year {
            return Err(refuse("year", format!("the plan is of {}", plan.year)));
        }
        if !(1..=12).contains(&self.month) {
            return Err(refuse("month", "must be 1 to 12"));
        }
        if self.rows.len() > MONTH_ROWS_MAX {
            return Err(refuse("rows", format!("more than {MONTH_ROWS_MAX}")));
        }
        let mut seen = BTreeSet::new();
        for (i, row) in self.rows.iter().enumerate() {
            check_row(factors, plan, row)
                .map_err(|(field, why)| refuse(format!("rows[{i}].{field}"), why))?;
            if !seen.insert((row.scope, row.role, row.item.as_str())) {
                let why = format!(
                    "{} {} at {} given twice",
                    row.role.name(),
                    row.item,
                    row.scope
                );
                return Err(refuse(format!("rows[{i}]"), why));
            }
        }
        self.validate_readings(factors, plan)?;
        self.validate_stoppages(plan)
    }

    fn validate_readings(&self, factors: &Factors, plan: &Dqcp) -> Result<(), DataError> {
        if self.readings.len() > MONTH_READINGS_MAX {
            return Err(refuse(
                "readings",
                format!("more than {MONTH_READINGS_MAX}"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, r) in self.readings.iter().enumerate() {
            check_reading(factors, plan, r)
                .map_err(|(field, why)| refuse(format!("readings[{i}].{field}"), why))?;
            if !seen.insert((r.param, &r.subject)) {
                return Err(refuse(
                    format!("readings[{i}]"),
                    "this parameter is given twice",
                ));
            }
        }
        Ok(())
    }

    /// The month has data that `param` of `subject` applies to.
    fn uses(&self, param: Param, subject: &Subject) -> bool {
        self.rows.iter().any(|r| match (param, subject) {
            (Param::Ncv, Subject::Fuel(code)) => &r.item == code && !r.quantity.is_zero(),
            (Param::AnodeEffectMinutes, Subject::Facility(id)) => {
                r.scope == Scope::Facility(*id) && r.role == Role::Produced
            }
            (_, Subject::Facility(id)) => {
                r.scope == Scope::Facility(*id) && r.role == Role::Consumed
            }
            _ => false,
        })
    }

    fn validate_stoppages(&self, plan: &Dqcp) -> Result<(), DataError> {
        let days = crate::plan::days_in(u32::from(self.year), u32::from(self.month));
        let mut seen = BTreeSet::new();
        for (i, s) in self.stoppages.iter().enumerate() {
            if plan.facility(s.facility).is_none() || !seen.insert(s.facility) {
                let why = format!("facility {} unknown or given twice", s.facility);
                return Err(refuse(format!("stoppages[{i}].facility_id"), why));
            }
            if u32::from(s.days) > days {
                return Err(refuse(
                    format!("stoppages[{i}].days"),
                    format!("at most {days}"),
                ));
            }
        }
        Ok(())
    }
}

type Fault = (&'static str, String);

fn check_row(factors: &Factors, plan: &Dqcp, row: &Row) -> Result<(), Fault> {
    if row.quantity.is_sign_negative() && !row.quantity.is_zero() {
        return Err(("quantity", format!("{} is negative", row.quantity)));
    }
    if row.quantity > QUANTITY_MAX {
        return Err((
            "quantity",
            format!("{} is above {QUANTITY_MAX}", row.quantity),
        ));
    }
    if places(row.quantity) > QUANTITY_DP {
        let why = format!(
            "{}: quantities have at most {QUANTITY_DP} places",
            row.quantity
        );
        return Err(("quantity", why));
    }
    let facility = match row.scope {
        Scope::Enterprise => None,
        Scope::Facility(id) => match plan.facility(id) {
            Some(f) => Some(f),
            None => return Err(("facility_id", format!("facility {id} is not in the plan"))),
        },
    };
    let item = item_of(factors, row.role, &row.item)?;
    if fits(factors.sector, facility, row.role, item) {
        return Ok(());
    }
    let place = facility.map_or("the enterprise", |f| f.kind.name());
    let why = format!(
        "{} {} {} is not data of {place}",
        row.role.name(),
        item.word(),
        row.item
    );
    Err(("role", why))
}

/// What a row's item code is in the factors file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item<'a> {
    Fuel(&'a crate::factors::Fuel),
    Material(MaterialKind),
    Product(&'a crate::factors::Product),
}

impl Item<'_> {
    fn word(self) -> &'static str {
        match self {
            Item::Fuel(_) => "fuel",
            Item::Material(kind) => kind.name(),
            Item::Product(_) => "product",
        }
    }
}

/// A produced code is a product first (crude steel is also a Table A.2 material).
fn item_of<'a>(factors: &'a Factors, role: Role, code: &str) -> Result<Item<'a>, Fault> {
    if let Some(p) = factors.product(code).filter(|_| role == Role::Produced) {
        return Ok(Item::Product(p));
    }
    if let Some(f) = factors.fuel(code) {
        return Ok(Item::Fuel(f));
    }
    if let Some(m) = factors.material(code) {
        return Ok(Item::Material(m.kind));
    }
    if let Some(p) = factors.product(code) {
        return Ok(Item::Product(p));
    }
    let why = format!(
        "{code:?} is no fuel, material or product of {}",
        factors.version
    );
    Err(("item", why))
}

/// The table of what data each scope of each sector takes (the formulas' terms).
fn fits(sector: Sector, facility: Option<&Facility>, role: Role, item: Item<'_>) -> bool {
    let kind = facility.map(|f| f.kind);
    let made_here = |made_by: &[String]| {
        let here = kind.map_or("enterprise", ProcessKind::name);
        made_by.iter().any(|k| k == here)
    };
    use MaterialKind as M;
    match (sector, kind, role, item) {
        // Steel, formula (1): fuels net, materials in and out, the enterprise's product.
        (Sector::Steel, None, Role::Consumed | Role::Sold, Item::Fuel(_)) => true,
        (Sector::Steel, None, Role::Consumed, Item::Material(_)) => true,
        (Sector::Steel, None, Role::Sold, Item::Material(M::CarbonBearing)) => true,
        // Formulas (2) and (3): fuel in; the process's own gases and coke out.
        (Sector::Steel, Some(_), Role::Consumed, Item::Fuel(_)) => true,
        (Sector::Steel, Some(k), Role::Produced, Item::Fuel(f)) => {
            k.is_steel_process() && made_here(&f.made_by)
        }
        // Cement: kiln fuel and carbide slag per line, other combustion at the enterprise.
        (
            Sector::Cement,
            Some(ProcessKind::ClinkerLine),
            Role::Consumed,
            Item::Material(M::CarbideSlag),
        ) => true,
        (
            Sector::Aluminium,
            Some(ProcessKind::Electrolysis),
            Role::Consumed,
            Item::Material(M::Anode),
        ) => true,
        (Sector::Cement, _, Role::Consumed, Item::Fuel(_)) => true,
        (Sector::Aluminium, None, Role::Consumed, Item::Fuel(_)) => true,
        // Production data wherever the factors file says the product is made.
        (_, _, Role::Produced, Item::Product(p)) => made_here(&p.made_by),
        _ => false,
    }
}

fn check_reading(factors: &Factors, plan: &Dqcp, r: &Reading) -> Result<(), Fault> {
    if r.evidence.trim().is_empty() || r.evidence.len() > EVIDENCE_REF_BYTES_MAX {
        return Err((
            "evidence",
            format!("the lab report's reference, 1 to {EVIDENCE_REF_BYTES_MAX} bytes"),
        ));
    }
    if !plan.is_measured(r.param, &r.subject) {
        return Err((
            "parameter",
            format!("the plan takes the default {} here", r.param.name()),
        ));
    }
    match (r.param, &r.subject) {
        (Param::Ncv, Subject::Fuel(code)) => {
            let Some(fuel) = factors.fuel(code) else {
                return Err(("fuel", format!("unknown fuel {code:?}")));
            };
            let (low, high) = factors.ncv_range(fuel);
            if r.value < low || r.value > high {
                let why = format!(
                    "{} is outside the plausible {low} to {high} for {code}",
                    r.value
                );
                return Err(("value", why));
            }
            if places(r.value) > NCV_DP {
                return Err(("value", format!("an NCV has at most {NCV_DP} places")));
            }
        }
        (Param::AnodeEffectMinutes, _) => {
            if r.value.is_sign_negative() || r.value > ANODE_EFFECT_MINUTES_MAX {
                return Err(("value", format!("must be 0 to {ANODE_EFFECT_MINUTES_MAX}")));
            }
        }
        (Param::AnodeSulfur | Param::AnodeAsh, _) => {
            if r.value.is_sign_negative() || r.value > Decimal::new(2, 1) {
                return Err(("value", "a content fraction must be 0 to 0.2".to_string()));
            }
        }
        (Param::Ncv, Subject::Facility(_)) => {
            return Err(("fuel", "an NCV is of a fuel".into()));
        }
    }
    Ok(())
}
