//! What a computation gives: every emissions line with its working, the facilities'
//! results (the allocation units' E, product and intensity), and the enterprise total.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::annual::Annual;
use crate::factors::{Fuel, Sector};
use crate::plan::{ProcessKind, Scope};
use crate::round;

/// Which term of the guideline's formulas a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// Steel (1): a purchased fossil fuel's net consumption (sold coke and gas deducted).
    NetFuel,
    /// Steel (1): carbonates purchased.
    Carbonate,
    /// Steel (1): electrodes purchased.
    Electrode,
    /// Steel (1): carbon-bearing inputs purchased.
    CarbonInput,
    /// Steel (1): carbon leaving in products (deducted).
    CarbonOutput,
    /// Steel (2): a fuel into a process.
    FuelIn,
    /// Steel (2): a fuel out of a process (deducted).
    FuelOut,
    /// Steel (3), cement and aluminium: fuel combustion with its oxidation factor.
    Combustion,
    /// Cement: clinker x the clinker type's process factor.
    ClinkerProcess,
    /// Cement: the carbide-slag deduction.
    CarbideSlag,
    /// Aluminium: anode (energy-as-feedstock) CO2.
    Anode,
    /// Aluminium: CF4 from anode effects, as CO2e.
    Cf4,
    /// Aluminium: C2F6 from anode effects, as CO2e.
    C2f6,
}

impl Term {
    pub fn name(self) -> &'static str {
        match self {
            Term::NetFuel => "net fossil fuel",
            Term::Carbonate => "carbonate",
            Term::Electrode => "electrode",
            Term::CarbonInput => "carbon-bearing input",
            Term::CarbonOutput => "carbon in products",
            Term::FuelIn => "fuel in",
            Term::FuelOut => "fuel out",
            Term::Combustion => "fuel combustion",
            Term::ClinkerProcess => "clinker process",
            Term::CarbideSlag => "carbide-slag deduction",
            Term::Anode => "anode CO2",
            Term::Cf4 => "CF4 (CO2e)",
            Term::C2f6 => "C2F6 (CO2e)",
        }
    }

    /// A PFC line (CO2e), kept apart from CO2 in the verified figures.
    pub fn is_pfc(self) -> bool {
        matches!(self, Term::Cf4 | Term::C2f6)
    }
}

/// One emissions line, rounded to 2 places, with how it was computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub scope: Scope,
    pub term: Term,
    pub item: String,
    /// t CO2 (PFC lines t CO2e); negative for deductions.
    pub emissions_t: Decimal,
    pub working: String,
}

/// A facility's year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacilityResult {
    pub id: u32,
    pub name: String,
    pub kind: ProcessKind,
    /// Its emissions, t CO2: steel (2) or (3), cement fuel + process, aluminium anode CO2.
    pub emissions_t: Decimal,
    /// Aluminium: its PFCs, t CO2e.
    pub pfc_co2e_t: Decimal,
    /// Its products, summed (hot metal, sinter, clinker, liquid aluminium...).
    pub output_t: Decimal,
    /// Cement and aluminium: (emissions + PFCs) / output, 4 places.
    pub intensity: Option<Decimal>,
    /// Cement: the carbide-slag substitution rate, 4 places.
    pub carbide_slag_rate: Option<Decimal>,
}

/// Steel's figures for its allocation (2025-26 draft Table 2-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteelIntensity {
    pub ironmaking_t: Decimal,
    pub sintering_t: Decimal,
    /// The ironmaking processes' product, t.
    pub iron_t: Decimal,
    /// (E_ironmaking + E_sintering) / iron, 4 places; `None` without iron.
    pub intensity: Option<Decimal>,
    /// Formula (4): E_ent - processes - co-firing units.
    pub other_t: Decimal,
}

/// One entity's year, computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub sector: Sector,
    pub year: u16,
    pub guideline: String,
    pub factors_version: String,
    pub lines: Vec<Line>,
    pub facilities: Vec<FacilityResult>,
    /// The enterprise's emissions, the sum of its lines (2 places).
    pub enterprise_t: Decimal,
    /// The summary table's integer total (C.5): the obligation.
    pub total_t: u64,
    /// Of the total: PFCs as CO2e (whole tonnes), the rest CO2.
    pub pfc_co2e_t: u64,
    pub co2_t: u64,
    pub steel: Option<SteelIntensity>,
    pub annual: Annual,
}

impl Report {
    pub fn facility(&self, id: u32) -> Option<&FacilityResult> {
        self.facilities.iter().find(|f| f.id == id)
    }

    pub fn lines_of(&self, scope: Scope) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(move |l| l.scope == scope)
    }
}

/// Sums lines' emissions (each already 2 places).
pub(crate) fn sum(lines: &[Line]) -> Decimal {
    lines.iter().map(|l| l.emissions_t).sum()
}

/// `q x NCV x CC [x OF] x 44/12`, the fuel line of every formula, rounded to 2 places;
/// `sign` -1 for a deduction.
pub(crate) fn fuel_line(
    scope: Scope,
    term: Term,
    fuel: &Fuel,
    quantity: Decimal,
    ncv: Decimal,
    oxidation: Option<Decimal>,
    sign: Decimal,
) -> Line {
    let cc = round::round_dp(fuel.cc, round::CC_DP);
    let of = oxidation.unwrap_or(Decimal::ONE);
    let exact = quantity * ncv * cc * of * dec!(44) / dec!(12);
    let emissions_t = round::emissions(exact * sign);
    let of_text = oxidation.map_or(String::new(), |of| format!(" x OF {of}"));
    let minus = if sign.is_sign_negative() { "- " } else { "" };
    let working = format!(
        "{minus}{quantity} {unit} x NCV {ncv} GJ/{unit} x CC {cc} tC/GJ{of_text} x 44/12 = {emissions_t}",
        unit = fuel.unit,
    );
    Line {
        scope,
        term,
        item: fuel.code.clone(),
        emissions_t,
        working,
    }
}

/// `q x EF`, a material line, rounded to 2 places.
pub(crate) fn factor_line(
    scope: Scope,
    term: Term,
    item: &str,
    quantity: Decimal,
    ef: Decimal,
    sign: Decimal,
) -> Line {
    let emissions_t = round::emissions(quantity * ef * sign);
    let minus = if sign.is_sign_negative() { "- " } else { "" };
    Line {
        scope,
        term,
        item: item.to_string(),
        emissions_t,
        working: format!("{minus}{quantity} t x EF {ef} tCO2/t = {emissions_t}"),
    }
}

/// `numerator / output` to 4 places, `None` without output.
pub(crate) fn per_t(numerator: Decimal, output_t: Decimal) -> Option<Decimal> {
    (!output_t.is_zero()).then(|| round::intensity(numerator / output_t))
}
