//! Aluminium smelting, CETS-AG-04.01-V01-2024, per electrolysis process (its allocation
//! unit): anode (energy-as-feedstock) CO2 = net anode consumption x (1 - S - Ash) x 44/12,
//! and the anode-effect PFCs, CF4 and C2F6, by the slope method (minutes per cell-day x
//! slope x aluminium) where the plan measures the minutes, else the default factors, as
//! CO2e with the guideline's GWPs. Other combustion at the enterprise. The formula forms
//! and every factor are unconfirmed (MRV.md §3): all are data in the factors file.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::annual::Annual;
use crate::cement::combustion;
use crate::factors::{Aluminium, Factors, MaterialKind};
use crate::month::Role;
use crate::plan::{Dqcp, Param, ProcessKind, Scope, Subject};
use crate::report::{FacilityResult, Line, Term, per_t, sum};
use crate::round;

pub(crate) fn compute(
    factors: &Factors,
    plan: &Dqcp,
    annual: &Annual,
) -> (Vec<Line>, Vec<FacilityResult>) {
    let mut lines = combustion(factors, annual, Scope::Enterprise);
    let mut facilities = Vec::new();
    let Some(al) = factors.aluminium else {
        return (lines, facilities);
    };
    for f in plan
        .facilities
        .iter()
        .filter(|f| f.kind == ProcessKind::Electrolysis)
    {
        let scope = Scope::Facility(f.id);
        let metal_t: Decimal = annual.items(scope, Role::Produced).map(|(_, q)| q).sum();
        let mut own = anode_lines(factors, &al, annual, f.id);
        let anode_t = sum(&own);
        let pfc = pfc_lines(&al, annual, f.id, metal_t);
        let pfc_co2e_t = sum(&pfc);
        own.extend(pfc);
        facilities.push(FacilityResult {
            id: f.id,
            name: f.name.clone(),
            kind: f.kind,
            emissions_t: anode_t,
            pfc_co2e_t,
            output_t: metal_t,
            intensity: per_t(anode_t + pfc_co2e_t, metal_t),
            carbide_slag_rate: None,
        });
        lines.extend(own);
    }
    (lines, facilities)
}

/// A measured parameter's annual value, else `default`.
fn param(annual: &Annual, param: Param, id: u32, default: Decimal) -> Decimal {
    annual
        .params
        .get(&(param, Subject::Facility(id)))
        .map_or(default, |w| w.annual)
}

fn anode_lines(factors: &Factors, al: &Aluminium, annual: &Annual, id: u32) -> Vec<Line> {
    let scope = Scope::Facility(id);
    let sulfur = param(annual, Param::AnodeSulfur, id, al.anode_sulfur);
    let ash = param(annual, Param::AnodeAsh, id, al.anode_ash);
    annual
        .items(scope, Role::Consumed)
        .filter(|(item, _)| {
            factors
                .material(item)
                .is_some_and(|m| m.kind == MaterialKind::Anode)
        })
        .map(|(item, q)| {
            let emissions_t =
                round::emissions(q * (Decimal::ONE - sulfur - ash) * dec!(44) / dec!(12));
            Line {
                scope,
                term: Term::Anode,
                item: item.to_string(),
                emissions_t,
                working: format!("{q} t x (1 - S {sulfur} - Ash {ash}) x 44/12 = {emissions_t}"),
            }
        })
        .collect()
}

fn pfc_lines(al: &Aluminium, annual: &Annual, id: u32, metal_t: Decimal) -> Vec<Line> {
    let scope = Scope::Facility(id);
    let minutes = annual
        .params
        .get(&(Param::AnodeEffectMinutes, Subject::Facility(id)));
    let gases = [
        (
            Term::Cf4,
            "cf4",
            al.slope_cf4,
            al.ef_cf4_kg_per_t,
            al.gwp_cf4,
        ),
        (
            Term::C2f6,
            "c2f6",
            al.slope_c2f6,
            al.ef_c2f6_kg_per_t,
            al.gwp_c2f6,
        ),
    ];
    gases
        .into_iter()
        .map(|(term, gas, slope, ef, gwp)| {
            let (kg_per_t, how) = match minutes {
                Some(w) => (
                    slope * w.annual,
                    format!("slope {slope} x AEM {}", w.annual),
                ),
                None => (ef, format!("EF {ef}")),
            };
            let gas_t = kg_per_t * metal_t / dec!(1000);
            let emissions_t = round::emissions(gas_t * gwp);
            let working = format!("{how} kg/t x {metal_t} t / 1000 x GWP {gwp} = {emissions_t}");
            Line {
                scope,
                term,
                item: gas.to_string(),
                emissions_t,
                working,
            }
        })
        .collect()
}
