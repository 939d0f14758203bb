//! Twelve months into the year's figures: quantities summed per scope, role and item (the
//! month-by-month tables plus the annual column), and the measured parameters weighted as
//! the guideline says (a fuel's annual NCV by its monthly consumption; anode contents by
//! the anodes consumed; anode-effect minutes by the aluminium made).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::factors::Factors;
use crate::month::{Month, Role};
use crate::plan::{DataError, Dqcp, Param, Scope, Subject, refuse};
use crate::round;

/// A quantity's twelve months and the year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub months: [Decimal; 12],
    pub annual: Decimal,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            months: [Decimal::ZERO; 12],
            annual: Decimal::ZERO,
        }
    }
}

/// Where the annual value of a parameter came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    /// Weighted from the months' readings (months without a reading take the default).
    Measured,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Measured => "measured",
        }
    }
}

/// A parameter's months (the default where a month has no reading) and the year's
/// weighted value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weighted {
    pub months: [Decimal; 12],
    pub annual: Decimal,
    pub source: Source,
}

/// The year of one entity, aggregated.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Annual {
    pub quantities: BTreeMap<(Scope, Role, String), Series>,
    pub params: BTreeMap<(Param, Subject), Weighted>,
    /// Days each facility stood still, per month.
    pub stoppages: BTreeMap<u32, [u8; 12]>,
}

impl Annual {
    /// The year's quantity of a row key (zero if never given).
    pub fn quantity(&self, scope: Scope, role: Role, item: &str) -> Decimal {
        self.quantities
            .get(&(scope, role, item.to_string()))
            .map_or(Decimal::ZERO, |s| s.annual)
    }

    /// The row keys of `scope` and `role`, in item order.
    pub fn items(&self, scope: Scope, role: Role) -> impl Iterator<Item = (&str, Decimal)> {
        self.quantities
            .iter()
            .filter(move |((s, r, _), _)| *s == scope && *r == role)
            .map(|((_, _, item), series)| (item.as_str(), series.annual))
    }
}

/// Checks that `months` are the plan year's twelve, each valid, and aggregates them.
pub fn assemble(factors: &Factors, plan: &Dqcp, months: &[Month]) -> Result<Annual, DataError> {
    plan.validate(factors)?;
    let mut by_month: [Option<&Month>; 12] = [None; 12];
    for (i, m) in months.iter().enumerate() {
        m.validate_shape(factors, plan)
            .map_err(|e| refuse(format!("months[{i}].{}", e.field), e.why))?;
        let slot = &mut by_month[usize::from(m.month - 1)];
        if slot.is_some() {
            return Err(refuse(
                format!("months[{i}].month"),
                format!("month {} given twice", m.month),
            ));
        }
        *slot = Some(m);
    }
    if let Some(missing) = by_month.iter().position(Option::is_none) {
        let why = format!("month {} of {} has no data", missing + 1, plan.year);
        return Err(refuse("months", why));
    }
    let months: Vec<&Month> = by_month.into_iter().flatten().collect();
    let mut annual = Annual::default();
    for (m, month) in months.iter().enumerate() {
        for row in &month.rows {
            let key = (row.scope, row.role, row.item.clone());
            let series = annual.quantities.entry(key).or_default();
            series.months[m] = row.quantity;
            series.annual += row.quantity;
        }
        for s in &month.stoppages {
            annual.stoppages.entry(s.facility).or_insert([0; 12])[m] = s.days;
        }
    }
    for series in annual.quantities.values_mut() {
        series.annual = round::quantity(series.annual);
    }
    weigh_ncvs(factors, plan, &months, &mut annual);
    weigh_anodes(factors, plan, &months, &mut annual)?;
    Ok(annual)
}

/// A month's value of a measured parameter, if its reading was given.
fn reading(month: &Month, param: Param, subject: &Subject) -> Option<Decimal> {
    month
        .readings
        .iter()
        .find(|r| r.param == param && &r.subject == subject)
        .map(|r| r.value)
}

/// The weighted mean of the months' values (by `weights`), or `fallback` with no weight.
fn weighted(values: &[Decimal; 12], weights: &[Decimal; 12], fallback: Decimal) -> Decimal {
    let total: Decimal = weights.iter().copied().sum();
    if total.is_zero() {
        return fallback;
    }
    let sum: Decimal = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    sum / total
}

fn weigh_ncvs(factors: &Factors, plan: &Dqcp, months: &[&Month], annual: &mut Annual) {
    for fuel in factors.fuels.values() {
        let subject = Subject::Fuel(fuel.code.clone());
        if !plan.is_measured(Param::Ncv, &subject) {
            continue;
        }
        // A month's weight: every quantity of the fuel that month (in and out, any scope).
        let mut weights = [Decimal::ZERO; 12];
        for (key, series) in &annual.quantities {
            if key.2 == fuel.code {
                for (w, q) in weights.iter_mut().zip(series.months) {
                    *w += q;
                }
            }
        }
        let values: [Decimal; 12] =
            std::array::from_fn(|m| reading(months[m], Param::Ncv, &subject).unwrap_or(fuel.ncv));
        let annual_ncv = round::ncv(weighted(&values, &weights, fuel.ncv));
        let w = Weighted {
            months: values,
            annual: annual_ncv,
            source: Source::Measured,
        };
        annual.params.insert((Param::Ncv, subject), w);
    }
}

fn weigh_anodes(
    factors: &Factors,
    plan: &Dqcp,
    months: &[&Month],
    annual: &mut Annual,
) -> Result<(), DataError> {
    let Some(al) = factors.aluminium else {
        return Ok(());
    };
    let measured: Vec<(Param, Subject)> = plan
        .measured
        .iter()
        .filter(|(p, _)| *p != Param::Ncv)
        .cloned()
        .collect();
    for (param, subject) in measured {
        let Subject::Facility(id) = subject else {
            continue;
        };
        let role = match param {
            Param::AnodeEffectMinutes => Role::Produced,
            _ => Role::Consumed,
        };
        let mut weights = [Decimal::ZERO; 12];
        for ((scope, r, _), series) in &annual.quantities {
            if *scope == Scope::Facility(id) && *r == role {
                for (w, q) in weights.iter_mut().zip(series.months) {
                    *w += q;
                }
            }
        }
        let fallback = match param {
            Param::AnodeSulfur => al.anode_sulfur,
            Param::AnodeAsh => al.anode_ash,
            _ => Decimal::ZERO,
        };
        // The slope method needs every producing month's minutes: no default stands in.
        let gap = (0..12).find(|&m| {
            param == Param::AnodeEffectMinutes
                && !weights[m].is_zero()
                && reading(months[m], param, &subject).is_none()
        });
        if let Some(m) = gap {
            let why = format!("facility {id}: month {} has no anode-effect minutes", m + 1);
            return Err(refuse("months", why));
        }
        let values: [Decimal; 12] =
            std::array::from_fn(|m| reading(months[m], param, &subject).unwrap_or(fallback));
        let value = round::fraction(weighted(&values, &weights, fallback));
        let w = Weighted {
            months: values,
            annual: value,
            source: Source::Measured,
        };
        annual.params.insert((param, subject), w);
    }
    Ok(())
}
