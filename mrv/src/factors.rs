//! A guideline's default factors as versioned data: the TOML file beside the allocation
//! plans (`registry/factors/*.toml`: decimals written as strings, so no float ever touches a
//! factor), parsed and validated here (unknown keys refused, every value bounded). A
//! computation records the version it used; the registry journals the file's text.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::Deserialize;

use crate::round::{CC_DP, NCV_DP, places};

/// Largest factors file accepted, bytes.
pub const FACTORS_TOML_BYTES_MAX: usize = 64 * 1024;
/// Longest version label or code, bytes.
pub const CODE_BYTES_MAX: usize = 64;
/// Most entries in one table of a factors file.
pub const TABLE_ENTRIES_MAX: usize = 200;

/// The industrial sectors with an accounting guideline here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sector {
    Steel,
    Cement,
    Aluminium,
}

impl Sector {
    pub fn name(self) -> &'static str {
        match self {
            Sector::Steel => "steel",
            Sector::Cement => "cement",
            Sector::Aluminium => "aluminium",
        }
    }

    pub fn parse(text: &str) -> Option<Sector> {
        [Sector::Steel, Sector::Cement, Sector::Aluminium]
            .into_iter()
            .find(|s| s.name() == text)
    }
}

/// A fuel's physical state: it picks the oxidation factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Solid,
    Liquid,
    Gas,
}

/// A fossil fuel of Table A.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fuel {
    pub code: String,
    pub name: String,
    pub state: State,
    /// `t` or `10^4 Nm3` (most gases; refinery dry gas is in t).
    pub unit: String,
    /// Default net calorific value, GJ per unit.
    pub ncv: Decimal,
    /// Carbon content, tC/GJ (always the default).
    pub cc: Decimal,
    /// The guideline allows only the default NCV (coke).
    pub ncv_default_only: bool,
    /// Steel: the processes whose output this fuel is (formula (2)'s w: coke and coke-oven
    /// gas of coking, blast-furnace gas of ironmaking, converter gas of BOF steelmaking).
    pub made_by: Vec<String>,
}

/// Which term of its sector's formula a material feeds. Whether its carbon adds or is
/// deducted is the row's role (purchased in: added; sold out: deducted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaterialKind {
    /// Steel: limestone, dolomite.
    Carbonate,
    /// Steel: electrodes.
    Electrode,
    /// Steel: carbon-bearing inputs and products (pig iron, DRI, ferroalloys, scrap, crude
    /// steel, tar, crude benzene).
    CarbonBearing,
    /// Cement: carbide slag in the raw meal (its EF is the deduction coefficient).
    CarbideSlag,
    /// Aluminium: carbon anodes consumed (carbon from its sulfur and ash contents).
    Anode,
}

impl MaterialKind {
    fn parse(text: &str) -> Option<MaterialKind> {
        Some(match text {
            "carbonate" => MaterialKind::Carbonate,
            "electrode" => MaterialKind::Electrode,
            "carbon_bearing" => MaterialKind::CarbonBearing,
            "carbide_slag" => MaterialKind::CarbideSlag,
            "anode" => MaterialKind::Anode,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MaterialKind::Carbonate => "carbonate",
            MaterialKind::Electrode => "electrode",
            MaterialKind::CarbonBearing => "carbon-bearing material",
            MaterialKind::CarbideSlag => "carbide slag",
            MaterialKind::Anode => "anode",
        }
    }

    fn sector(self) -> Sector {
        match self {
            MaterialKind::CarbideSlag => Sector::Cement,
            MaterialKind::Anode => Sector::Aluminium,
            _ => Sector::Steel,
        }
    }
}

/// A material of Table A.2 (or its sector's equivalent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub code: String,
    pub name: String,
    pub kind: MaterialKind,
    /// t CO2 per t (zero for anodes, whose carbon is computed).
    pub ef: Decimal,
}

/// A production-data item (crude steel, sinter, clinker, liquid aluminium, MWh...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub unit: String,
    /// The process kinds that make it (`enterprise`: the enterprise's product).
    pub made_by: Vec<String>,
}

/// Oxidation factors by state (steel: formula (3) only; cement and aluminium combustion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oxidation {
    pub solid: Decimal,
    pub liquid: Decimal,
    pub gas: Decimal,
}

impl Oxidation {
    pub fn of(&self, state: State) -> Decimal {
        match state {
            State::Solid => self.solid,
            State::Liquid => self.liquid,
            State::Gas => self.gas,
        }
    }
}

/// Cement: a clinker type's process emission factor, t CO2 per t clinker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClinkerType {
    pub code: String,
    pub name: String,
    pub ef: Decimal,
}

/// Aluminium: the anode and anode-effect parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aluminium {
    /// Default anode sulfur and ash contents, fractions.
    pub anode_sulfur: Decimal,
    pub anode_ash: Decimal,
    /// Global warming potentials, t CO2e per t.
    pub gwp_cf4: Decimal,
    pub gwp_c2f6: Decimal,
    /// Slope method: kg of the gas per t aluminium per anode-effect minute per cell-day.
    pub slope_cf4: Decimal,
    pub slope_c2f6: Decimal,
    /// Default method: kg of the gas per t aluminium.
    pub ef_cf4_kg_per_t: Decimal,
    pub ef_c2f6_kg_per_t: Decimal,
}

/// One guideline's factors, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factors {
    pub guideline: String,
    pub version: String,
    pub sector: Sector,
    /// carbonx's plausibility band for a measured NCV: within this share of the default.
    pub measured_ncv_band: Decimal,
    pub oxidation: Oxidation,
    pub fuels: BTreeMap<String, Fuel>,
    pub materials: BTreeMap<String, Material>,
    pub products: BTreeMap<String, Product>,
    pub clinker: BTreeMap<String, ClinkerType>,
    pub aluminium: Option<Aluminium>,
}

/// Why a factors file was refused: the key at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("factors {key}: {why}")]
pub struct FactorsError {
    pub key: String,
    pub why: String,
}

fn err(key: &str, why: impl Into<String>) -> FactorsError {
    FactorsError {
        key: key.into(),
        why: why.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactorsFile {
    guideline: String,
    version: String,
    sector: String,
    measured_ncv_band: String,
    oxidation: OxidationFile,
    fuels: BTreeMap<String, FuelFile>,
    #[serde(default)]
    materials: BTreeMap<String, MaterialFile>,
    products: BTreeMap<String, ProductFile>,
    #[serde(default)]
    clinker: BTreeMap<String, ClinkerFile>,
    aluminium: Option<AluminiumFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OxidationFile {
    solid: String,
    liquid: String,
    gas: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FuelFile {
    name: String,
    state: String,
    unit: String,
    ncv: String,
    cc: String,
    #[serde(default)]
    ncv_default_only: bool,
    #[serde(default)]
    made_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaterialFile {
    name: String,
    kind: String,
    ef: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    name: String,
    unit: String,
    made_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClinkerFile {
    name: String,
    ef: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AluminiumFile {
    anode_sulfur: String,
    anode_ash: String,
    gwp_cf4: String,
    gwp_c2f6: String,
    slope_cf4: String,
    slope_c2f6: String,
    ef_cf4_kg_per_t: String,
    ef_c2f6_kg_per_t: String,
}

fn decimal(key: &str, text: &str, min: Decimal, max: Decimal) -> Result<Decimal, FactorsError> {
    let value = Decimal::from_str(text.trim())
        .map_err(|_| err(key, format!("{text:?} is not a decimal number")))?;
    if value < min || value > max {
        return Err(err(key, format!("{value} is outside {min} to {max}")));
    }
    Ok(value)
}

fn positive(key: &str, text: &str, max: Decimal) -> Result<Decimal, FactorsError> {
    let value = decimal(key, text, Decimal::ZERO, max)?;
    if value.is_zero() {
        return Err(err(key, "must be above 0"));
    }
    Ok(value)
}

fn code(key: &str, text: &str) -> Result<String, FactorsError> {
    let ok = !text.is_empty()
        && text.len() <= CODE_BYTES_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(err(key, "a code is 1-64 of a-z, 0-9 and _"));
    }
    Ok(text.to_string())
}

fn label(key: &str, text: &str) -> Result<String, FactorsError> {
    if text.trim().is_empty() || text.len() > CODE_BYTES_MAX || text.chars().any(char::is_control) {
        return Err(err(key, "must be 1-64 bytes of printable text"));
    }
    Ok(text.to_string())
}

fn made_by(key: &str, kinds: &[String]) -> Result<Vec<String>, FactorsError> {
    if kinds.len() > 16 {
        return Err(err(key, "more than 16 process kinds"));
    }
    let known = |k: &String| k == "enterprise" || crate::plan::ProcessKind::parse(k).is_some();
    match kinds.iter().find(|k| !known(k)) {
        Some(k) => Err(err(key, format!("{k:?} is not a process kind"))),
        None => Ok(kinds.to_vec()),
    }
}

fn table_size<T>(key: &str, table: &BTreeMap<String, T>) -> Result<(), FactorsError> {
    if table.len() > TABLE_ENTRIES_MAX {
        return Err(err(key, format!("more than {TABLE_ENTRIES_MAX} entries")));
    }
    Ok(())
}

impl Factors {
    /// Parses and validates a factors file.
    pub fn from_toml(text: &str) -> Result<Factors, FactorsError> {
        if text.len() > FACTORS_TOML_BYTES_MAX {
            return Err(err(
                "file",
                format!("larger than {FACTORS_TOML_BYTES_MAX} bytes"),
            ));
        }
        let file: FactorsFile = toml::from_str(text).map_err(|e| err("file", e.message()))?;
        let sector = Sector::parse(&file.sector)
            .ok_or_else(|| err("sector", "must be steel, cement or aluminium"))?;
        let factors = Factors {
            guideline: label("guideline", &file.guideline)?,
            version: label("version", &file.version)?,
            sector,
            measured_ncv_band: decimal(
                "measured_ncv_band",
                &file.measured_ncv_band,
                dec!(0.01),
                dec!(0.9),
            )?,
            oxidation: oxidation(&file.oxidation)?,
            fuels: fuels(&file.fuels)?,
            materials: materials(sector, &file.materials)?,
            products: products(&file.products)?,
            clinker: clinker(&file.clinker)?,
            aluminium: file.aluminium.as_ref().map(aluminium).transpose()?,
        };
        factors.check_sector()?;
        Ok(factors)
    }

    fn check_sector(&self) -> Result<(), FactorsError> {
        match self.sector {
            Sector::Cement if self.clinker.is_empty() => {
                Err(err("clinker", "a cement file lists its clinker types"))
            }
            Sector::Aluminium if self.aluminium.is_none() => Err(err(
                "aluminium",
                "an aluminium file gives its anode and PFC factors",
            )),
            Sector::Steel | Sector::Aluminium if !self.clinker.is_empty() => {
                Err(err("clinker", "only a cement file lists clinker types"))
            }
            Sector::Steel | Sector::Cement if self.aluminium.is_some() => Err(err(
                "aluminium",
                "only an aluminium file gives anode factors",
            )),
            _ => Ok(()),
        }
    }

    pub fn fuel(&self, code: &str) -> Option<&Fuel> {
        self.fuels.get(code)
    }

    pub fn material(&self, code: &str) -> Option<&Material> {
        self.materials.get(code)
    }

    pub fn product(&self, code: &str) -> Option<&Product> {
        self.products.get(code)
    }

    /// The range a measured NCV of `fuel` must fall in.
    pub fn ncv_range(&self, fuel: &Fuel) -> (Decimal, Decimal) {
        let band = fuel.ncv * self.measured_ncv_band;
        (fuel.ncv - band, fuel.ncv + band)
    }
}

fn oxidation(file: &OxidationFile) -> Result<Oxidation, FactorsError> {
    Ok(Oxidation {
        solid: positive("oxidation.solid", &file.solid, Decimal::ONE)?,
        liquid: positive("oxidation.liquid", &file.liquid, Decimal::ONE)?,
        gas: positive("oxidation.gas", &file.gas, Decimal::ONE)?,
    })
}

fn fuels(table: &BTreeMap<String, FuelFile>) -> Result<BTreeMap<String, Fuel>, FactorsError> {
    table_size("fuels", table)?;
    if table.is_empty() {
        return Err(err("fuels", "lists no fuel"));
    }
    let mut out = BTreeMap::new();
    for (key, f) in table {
        let at = format!("fuels.{key}");
        let state = match f.state.as_str() {
            "solid" => State::Solid,
            "liquid" => State::Liquid,
            "gas" => State::Gas,
            _ => return Err(err(&format!("{at}.state"), "must be solid, liquid or gas")),
        };
        if f.unit != "t" && f.unit != "10^4 Nm3" {
            return Err(err(&format!("{at}.unit"), "must be t or 10^4 Nm3"));
        }
        let ncv = positive(&format!("{at}.ncv"), &f.ncv, dec!(1000))?;
        let cc = positive(&format!("{at}.cc"), &f.cc, dec!(0.1))?;
        if places(ncv) > NCV_DP || places(cc) > CC_DP {
            return Err(err(
                &at,
                format!("NCV has at most {NCV_DP} places, CC {CC_DP}"),
            ));
        }
        let fuel = Fuel {
            code: code(&at, key)?,
            name: label(&format!("{at}.name"), &f.name)?,
            state,
            unit: f.unit.clone(),
            ncv,
            cc,
            ncv_default_only: f.ncv_default_only,
            made_by: made_by(&format!("{at}.made_by"), &f.made_by)?,
        };
        out.insert(key.clone(), fuel);
    }
    Ok(out)
}

fn materials(
    sector: Sector,
    table: &BTreeMap<String, MaterialFile>,
) -> Result<BTreeMap<String, Material>, FactorsError> {
    table_size("materials", table)?;
    let mut out = BTreeMap::new();
    for (key, m) in table {
        let at = format!("materials.{key}");
        let kind = MaterialKind::parse(&m.kind)
            .filter(|k| k.sector() == sector)
            .ok_or_else(|| err(&format!("{at}.kind"), "not a material kind of this sector"))?;
        let ef = match (kind, &m.ef) {
            (MaterialKind::Anode, None) => Decimal::ZERO,
            (MaterialKind::Anode, Some(_)) => {
                return Err(err(&format!("{at}.ef"), "an anode's carbon is computed"));
            }
            (_, Some(text)) => decimal(&format!("{at}.ef"), text, Decimal::ZERO, dec!(10))?,
            (_, None) => return Err(err(&format!("{at}.ef"), "missing")),
        };
        let material = Material {
            code: code(&at, key)?,
            name: label(&format!("{at}.name"), &m.name)?,
            kind,
            ef,
        };
        out.insert(key.clone(), material);
    }
    Ok(out)
}

fn products(
    table: &BTreeMap<String, ProductFile>,
) -> Result<BTreeMap<String, Product>, FactorsError> {
    table_size("products", table)?;
    let mut out = BTreeMap::new();
    for (key, p) in table {
        let at = format!("products.{key}");
        let product = Product {
            code: code(&at, key)?,
            name: label(&format!("{at}.name"), &p.name)?,
            unit: label(&format!("{at}.unit"), &p.unit)?,
            made_by: made_by(&format!("{at}.made_by"), &p.made_by)?,
        };
        out.insert(key.clone(), product);
    }
    Ok(out)
}

fn clinker(
    table: &BTreeMap<String, ClinkerFile>,
) -> Result<BTreeMap<String, ClinkerType>, FactorsError> {
    table_size("clinker", table)?;
    let mut out = BTreeMap::new();
    for (key, c) in table {
        let at = format!("clinker.{key}");
        let kind = ClinkerType {
            code: code(&at, key)?,
            name: label(&format!("{at}.name"), &c.name)?,
            ef: positive(&format!("{at}.ef"), &c.ef, Decimal::ONE)?,
        };
        out.insert(key.clone(), kind);
    }
    Ok(out)
}

fn aluminium(file: &AluminiumFile) -> Result<Aluminium, FactorsError> {
    let max_content = dec!(0.2);
    let sulfur = decimal(
        "aluminium.anode_sulfur",
        &file.anode_sulfur,
        Decimal::ZERO,
        max_content,
    )?;
    let ash = decimal(
        "aluminium.anode_ash",
        &file.anode_ash,
        Decimal::ZERO,
        max_content,
    )?;
    Ok(Aluminium {
        anode_sulfur: sulfur,
        anode_ash: ash,
        gwp_cf4: positive("aluminium.gwp_cf4", &file.gwp_cf4, dec!(100000))?,
        gwp_c2f6: positive("aluminium.gwp_c2f6", &file.gwp_c2f6, dec!(100000))?,
        slope_cf4: decimal(
            "aluminium.slope_cf4",
            &file.slope_cf4,
            Decimal::ZERO,
            dec!(10),
        )?,
        slope_c2f6: decimal(
            "aluminium.slope_c2f6",
            &file.slope_c2f6,
            Decimal::ZERO,
            dec!(10),
        )?,
        ef_cf4_kg_per_t: decimal(
            "aluminium.ef_cf4_kg_per_t",
            &file.ef_cf4_kg_per_t,
            Decimal::ZERO,
            dec!(10),
        )?,
        ef_c2f6_kg_per_t: decimal(
            "aluminium.ef_c2f6_kg_per_t",
            &file.ef_c2f6_kg_per_t,
            Decimal::ZERO,
            dec!(10),
        )?,
    })
}
