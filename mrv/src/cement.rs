//! Cement, CETS-AG-02.01-V01-2024, per clinker line (its allocation unit): kiln fuel
//! combustion, plus clinker x the clinker type's process factor less the carbide-slag
//! deduction; the carbide-slag substitution rate; other combustion at the enterprise.
//! The guideline's full text was not available: the process-term form and its factors are
//! marked unconfirmed in the factors file.

use rust_decimal::Decimal;

use crate::annual::Annual;
use crate::factors::{Factors, MaterialKind};
use crate::month::Role;
use crate::plan::{Dqcp, ProcessKind, Scope};
use crate::report::{FacilityResult, Line, Term, factor_line, fuel_line, per_t, sum};
use crate::round;
use crate::steel::ncv_of;

pub(crate) fn compute(
    factors: &Factors,
    plan: &Dqcp,
    annual: &Annual,
) -> (Vec<Line>, Vec<FacilityResult>) {
    let mut lines = combustion(factors, annual, Scope::Enterprise);
    let mut facilities = Vec::new();
    for f in plan
        .facilities
        .iter()
        .filter(|f| f.kind == ProcessKind::ClinkerLine)
    {
        let scope = Scope::Facility(f.id);
        let mut own = combustion(factors, annual, scope);
        let clinker_t: Decimal = annual.items(scope, Role::Produced).map(|(_, q)| q).sum();
        let kind = f
            .clinker_type
            .as_deref()
            .and_then(|c| factors.clinker.get(c));
        let ef = kind.map_or(Decimal::ZERO, |k| k.ef);
        let code = kind.map_or("clinker", |k| k.code.as_str());
        own.push(factor_line(
            scope,
            Term::ClinkerProcess,
            code,
            clinker_t,
            ef,
            Decimal::ONE,
        ));
        let mut deducted = Decimal::ZERO;
        for (item, q) in annual.items(scope, Role::Consumed) {
            let Some(m) = factors
                .material(item)
                .filter(|m| m.kind == MaterialKind::CarbideSlag)
            else {
                continue;
            };
            deducted += q * m.ef;
            own.push(factor_line(
                scope,
                Term::CarbideSlag,
                item,
                q,
                m.ef,
                Decimal::NEGATIVE_ONE,
            ));
        }
        let emissions_t = sum(&own);
        let process_t = clinker_t * ef;
        let rate = (!process_t.is_zero()).then(|| round::fraction(deducted / process_t));
        facilities.push(FacilityResult {
            id: f.id,
            name: f.name.clone(),
            kind: f.kind,
            emissions_t,
            pfc_co2e_t: Decimal::ZERO,
            output_t: clinker_t,
            intensity: per_t(emissions_t, clinker_t),
            carbide_slag_rate: rate,
        });
        lines.extend(own);
    }
    (lines, facilities)
}

/// Fuel combustion at a scope: q x NCV x CC x OF x 44/12 per fuel.
pub(crate) fn combustion(factors: &Factors, annual: &Annual, scope: Scope) -> Vec<Line> {
    annual
        .items(scope, Role::Consumed)
        .filter_map(|(item, q)| {
            let fuel = factors.fuel(item)?;
            let ncv = ncv_of(factors, annual, item);
            let of = factors.oxidation.of(fuel.state);
            Some(fuel_line(
                scope,
                Term::Combustion,
                fuel,
                q,
                ncv,
                Some(of),
                Decimal::ONE,
            ))
        })
        .collect()
}
