//! The mapping between the engine's instruments and the registry's units (one CEA vintage
//! each), shared by the core thread (settlement) and the services (symbols on the wire).

use std::collections::HashMap;

use engine::InstrumentId;
use parking_lot::RwLock;
use registry::model::{UnitDef, UnitId, UnitKind};

/// The wire name of a unit: `CEA2025`, or `CCER2023-<project id>`.
pub fn unit_name(def: &UnitDef) -> String {
    match def.kind {
        UnitKind::Cea => format!("CEA{}", def.vintage),
        UnitKind::Ccer => format!("CCER{}-{}", def.vintage, def.project_id),
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Instrument symbol by engine instrument index, with its registry unit.
    instruments: Vec<(String, Option<UnitId>)>,
    units_by_name: HashMap<String, UnitId>,
    names_by_unit: HashMap<UnitId, String>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
}

impl Catalog {
    pub fn add_unit(&self, unit: UnitId, def: &UnitDef) {
        let name = unit_name(def);
        let mut inner = self.inner.write();
        inner.units_by_name.insert(name.clone(), unit);
        inner.names_by_unit.insert(unit, name);
    }

    /// Called by the core thread for every `InstrumentCreated` event, in order.
    pub fn add_instrument(&self, instrument: InstrumentId, symbol: &str) {
        let mut inner = self.inner.write();
        let unit = inner.units_by_name.get(symbol).copied();
        let index = instrument.0 as usize;
        if inner.instruments.len() <= index {
            inner.instruments.resize(index + 1, (String::new(), None));
        }
        inner.instruments[index] = (symbol.to_string(), unit);
    }

    pub fn unit(&self, name: &str) -> Option<UnitId> {
        self.inner.read().units_by_name.get(name).copied()
    }

    pub fn unit_name(&self, unit: UnitId) -> String {
        self.inner
            .read()
            .names_by_unit
            .get(&unit)
            .cloned()
            .unwrap_or_else(|| format!("UNIT{}", unit.0))
    }

    pub fn next_unit_id(&self) -> UnitId {
        UnitId(
            self.inner
                .read()
                .names_by_unit
                .keys()
                .map(|u| u.0 + 1)
                .max()
                .unwrap_or(1),
        )
    }

    pub fn symbol(&self, instrument: InstrumentId) -> String {
        self.inner
            .read()
            .instruments
            .get(instrument.0 as usize)
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    }

    pub fn instrument(&self, symbol: &str) -> Option<InstrumentId> {
        self.inner
            .read()
            .instruments
            .iter()
            .position(|(s, _)| s == symbol)
            .map(|i| InstrumentId(i as u32))
    }

    pub fn unit_of(&self, instrument: InstrumentId) -> Option<UnitId> {
        self.inner
            .read()
            .instruments
            .get(instrument.0 as usize)
            .and_then(|(_, u)| *u)
    }

    pub fn instrument_of_unit(&self, unit: UnitId) -> Option<InstrumentId> {
        self.inner
            .read()
            .instruments
            .iter()
            .position(|(_, u)| *u == Some(unit))
            .map(|i| InstrumentId(i as u32))
    }

    pub fn symbols(&self) -> Vec<String> {
        self.inner
            .read()
            .instruments
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }
}
