//! The storage encoding of the cycle's records.

use super::*;

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
        FacilityKind::Industry {
            product_line,
            process,
        } => {
            w.u8(2).str(product_line).u8(process_code(*process));
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
        // The first format named no process.
        1 => FacilityKind::Industry {
            product_line: r.str()?,
            process: Process::Unspecified,
        },
        2 => FacilityKind::Industry {
            product_line: r.str()?,
            process: process_of(r.u8()?)?,
        },
        _ => return Err(RegistryError::Corrupt("facility".into())),
    };
    Ok((id, kind))
}

fn process_code(p: Process) -> u8 {
    match p {
        Process::Unspecified => 0,
        Process::Ironmaking => 1,
        Process::Sintering => 2,
        Process::ClinkerLine => 3,
        Process::Electrolysis => 4,
        Process::Other => 5,
    }
}

fn process_of(c: u8) -> Result<Process, RegistryError> {
    Ok(match c {
        0 => Process::Unspecified,
        1 => Process::Ironmaking,
        2 => Process::Sintering,
        3 => Process::ClinkerLine,
        4 => Process::Electrolysis,
        5 => Process::Other,
        _ => return Err(RegistryError::Corrupt("process".into())),
    })
}

/// Storage codes of the special cases (0: none); fixed here, never derived from an order.
fn special_code(s: Option<SpecialCase>) -> u8 {
    match s {
        None => 0,
        Some(SpecialCase::WhitePortlandClinker) => 1,
        Some(SpecialCase::GypsumSulfuricAcid) => 2,
        Some(SpecialCase::HydrogenRichBlastFurnace) => 3,
        Some(SpecialCase::ClosedBeforeAllocation) => 4,
        Some(SpecialCase::NewlyCommissioned) => 5,
    }
}

fn special_of(c: u8) -> Result<Option<SpecialCase>, RegistryError> {
    Ok(match c {
        0 => None,
        1 => Some(SpecialCase::WhitePortlandClinker),
        2 => Some(SpecialCase::GypsumSulfuricAcid),
        3 => Some(SpecialCase::HydrogenRichBlastFurnace),
        4 => Some(SpecialCase::ClosedBeforeAllocation),
        5 => Some(SpecialCase::NewlyCommissioned),
        _ => return Err(RegistryError::Corrupt("special case".into())),
    })
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
    w.str(&row.credit_code);
}

/// An entity row as journaled since credit codes were kept (op 29).
pub(crate) fn get_entity_row(r: &mut Reader<'_>) -> Result<EntityRow, RegistryError> {
    let mut row = get_entity_row_v1(r)?;
    row.credit_code = r.str()?;
    Ok(row)
}

/// An entity row as journaled before credit codes were kept (op 22).
pub(crate) fn get_entity_row_v1(r: &mut Reader<'_>) -> Result<EntityRow, RegistryError> {
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
        credit_code: String::new(),
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
        Activity::Industry {
            output_t,
            emissions_t,
            pfc_co2e_t,
            carbide_slag_rate,
            special,
        } => {
            w.u8(2)
                .dec(*output_t)
                .dec(*emissions_t)
                .dec(*pfc_co2e_t)
                .dec(*carbide_slag_rate)
                .u8(special_code(*special));
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
        // The first format: output only.
        1 => Activity::Industry {
            output_t: r.dec()?,
            emissions_t: Decimal::ZERO,
            pfc_co2e_t: Decimal::ZERO,
            carbide_slag_rate: Decimal::ZERO,
            special: None,
        },
        2 => Activity::Industry {
            output_t: r.dec()?,
            emissions_t: r.dec()?,
            pfc_co2e_t: r.dec()?,
            carbide_slag_rate: r.dec()?,
            special: special_of(r.u8()?)?,
        },
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
    w.str(&e.credit_code);
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
    // Records written before credit codes were kept end here.
    let credit_code = if r.is_done() { String::new() } else { r.str()? };
    r.done()?;
    Ok(Entity {
        sector,
        province,
        differentiated,
        facilities,
        credit_code,
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
    match &y.closed {
        None => {
            w.u8(0);
        }
        Some(c) => {
            w.u8(2)
                .u64(c.average_price_fen as u64)
                .u64(c.seq)
                .u32(c.date);
            match &c.forced_reason {
                None => w.u8(0),
                Some(why) => w.u8(1).str(why),
            };
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
        // Closed before the deadline rule: no date or reason kept.
        1 => Some(YearClose {
            average_price_fen: r.u64()? as i64,
            seq: r.u64()?,
            date: 0,
            forced_reason: None,
        }),
        _ => Some(YearClose {
            average_price_fen: r.u64()? as i64,
            seq: r.u64()?,
            date: r.u32()?,
            forced_reason: match r.u8()? {
                0 => None,
                _ => Some(r.str()?),
            },
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
