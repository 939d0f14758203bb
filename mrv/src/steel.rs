//! Steel, CETS-AG-03.01-V01-2024: the enterprise mass balance (1), the processes' fuel in
//! minus fuel out (2), the co-firing units (3), and the rest (4).

use rust_decimal::Decimal;

use crate::annual::Annual;
use crate::factors::{Factors, MaterialKind};
use crate::month::Role;
use crate::plan::{Dqcp, ProcessKind, Scope};
use crate::report::{
    FacilityResult, Line, SteelIntensity, Term, factor_line, fuel_line, per_t, sum,
};

const PLUS: Decimal = Decimal::ONE;
const MINUS: Decimal = Decimal::NEGATIVE_ONE;

/// The lines, the facilities and steel's allocation figures.
pub(crate) fn compute(
    factors: &Factors,
    plan: &Dqcp,
    annual: &Annual,
) -> (Vec<Line>, Vec<FacilityResult>, SteelIntensity) {
    let mut lines = enterprise(factors, annual);
    let enterprise_t = sum(&lines);
    let mut facilities = Vec::new();
    let (mut ironmaking_t, mut sintering_t, mut iron_t) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for f in &plan.facilities {
        let scope = Scope::Facility(f.id);
        let own = facility_lines(factors, annual, scope, f.kind);
        let emissions_t = sum(&own);
        let output_t = output_of(factors, annual, scope);
        match f.kind {
            ProcessKind::Ironmaking => {
                ironmaking_t += emissions_t;
                iron_t += output_t;
            }
            ProcessKind::Sintering => sintering_t += emissions_t,
            _ => {}
        }
        lines.extend(own);
        facilities.push(FacilityResult {
            id: f.id,
            name: f.name.clone(),
            kind: f.kind,
            emissions_t,
            pfc_co2e_t: Decimal::ZERO,
            output_t,
            intensity: None,
            carbide_slag_rate: None,
        });
    }
    let processes_t: Decimal = facilities.iter().map(|f| f.emissions_t).sum();
    let steel = SteelIntensity {
        ironmaking_t,
        sintering_t,
        iron_t,
        intensity: per_t(ironmaking_t + sintering_t, iron_t),
        other_t: enterprise_t - processes_t,
    };
    (lines, facilities, steel)
}

/// A facility's products: production data, and the solid fuel a coking process makes
/// (coke is both its product and formula (2)'s output).
fn output_of(factors: &Factors, annual: &Annual, scope: Scope) -> Decimal {
    let counts = |item: &str| {
        factors.product(item).is_some() || factors.fuel(item).is_some_and(|f| f.unit == "t")
    };
    annual
        .items(scope, Role::Produced)
        .filter(|(item, _)| counts(item))
        .map(|(_, q)| q)
        .sum()
}

/// The annual NCV of a fuel: the months' weighted measured value, else the default.
pub(crate) fn ncv_of(factors: &Factors, annual: &Annual, code: &str) -> Decimal {
    let subject = crate::plan::Subject::Fuel(code.to_string());
    match annual.params.get(&(crate::plan::Param::Ncv, subject)) {
        Some(w) => w.annual,
        None => factors.fuel(code).map_or(Decimal::ZERO, |f| f.ncv),
    }
}

/// Formula (1): net purchased fuels, carbonates, electrodes, carbon-bearing inputs, minus
/// the carbon in products (no oxidation factor at enterprise level).
fn enterprise(factors: &Factors, annual: &Annual) -> Vec<Line> {
    let scope = Scope::Enterprise;
    let mut lines = Vec::new();
    for fuel in factors.fuels.values() {
        let consumed = annual.quantity(scope, Role::Consumed, &fuel.code);
        let sold = annual.quantity(scope, Role::Sold, &fuel.code);
        if consumed.is_zero() && sold.is_zero() {
            continue;
        }
        let ncv = ncv_of(factors, annual, &fuel.code);
        let mut line = fuel_line(scope, Term::NetFuel, fuel, consumed - sold, ncv, None, PLUS);
        if !sold.is_zero() {
            line.working = format!("({consumed} - {sold} sold) = {}", line.working);
        }
        lines.push(line);
    }
    for (item, q) in annual.items(scope, Role::Consumed) {
        let Some(m) = factors.material(item) else {
            continue;
        };
        let term = match m.kind {
            MaterialKind::Carbonate => Term::Carbonate,
            MaterialKind::Electrode => Term::Electrode,
            _ => Term::CarbonInput,
        };
        lines.push(factor_line(scope, term, item, q, m.ef, PLUS));
    }
    // Carbon leaving: carbon-bearing products sold, and the enterprise's own product
    // (crude steel) where Table A.2 gives it a factor.
    for role in [Role::Sold, Role::Produced] {
        for (item, q) in annual.items(scope, role) {
            if let Some(m) = factors.material(item) {
                lines.push(factor_line(scope, Term::CarbonOutput, item, q, m.ef, MINUS));
            }
        }
    }
    lines
}

/// Formula (2) for a process (fuel in minus its own fuels out), (3) for a co-firing unit.
fn facility_lines(
    factors: &Factors,
    annual: &Annual,
    scope: Scope,
    kind: ProcessKind,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for (item, q) in annual.items(scope, Role::Consumed) {
        let Some(fuel) = factors.fuel(item) else {
            continue;
        };
        let ncv = ncv_of(factors, annual, item);
        let line = if kind == ProcessKind::CoFiring {
            let of = factors.oxidation.of(fuel.state);
            fuel_line(scope, Term::Combustion, fuel, q, ncv, Some(of), PLUS)
        } else {
            fuel_line(scope, Term::FuelIn, fuel, q, ncv, None, PLUS)
        };
        lines.push(line);
    }
    for (item, q) in annual.items(scope, Role::Produced) {
        let Some(fuel) = factors.fuel(item) else {
            continue;
        };
        let ncv = ncv_of(factors, annual, item);
        lines.push(fuel_line(scope, Term::FuelOut, fuel, q, ncv, None, MINUS));
    }
    lines
}
