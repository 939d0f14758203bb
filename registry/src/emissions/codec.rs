//! The emissions records' canonical encoding (journal payloads and stored records). Enums
//! are written by their names, so a record reads the same whatever order the code lists
//! them in.

use mrv::factors::{Factors, Sector};
use mrv::month::{Month, Reading, Role, Row, Stoppage};
use mrv::plan::{Dqcp, Facility, Meter, Param, ProcessKind, Scope, Subject};

use super::{Deposit, Evidence, FacilityFigures, FactorsRecord, PlanRecord, Submission};
use crate::codec::{Reader, Writer};
use crate::cycle::get_rows;
use crate::error::RegistryError;

fn corrupt(what: &str) -> RegistryError {
    RegistryError::Corrupt(format!("emissions record: {what}"))
}

/// Bounds of decoded lists (a record never holds more than its operation accepted).
const LIST_MAX: usize = 1 << 16;

pub(crate) fn named<T>(
    r: &mut Reader<'_>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, RegistryError> {
    parse(&r.str()?).ok_or_else(|| corrupt(what))
}

pub(crate) fn put_sector(w: &mut Writer, s: Sector) {
    w.str(s.name());
}

pub(crate) fn get_sector(r: &mut Reader<'_>) -> Result<Sector, RegistryError> {
    named(r, "sector", Sector::parse)
}

pub(crate) fn put_scope(w: &mut Writer, s: Scope) {
    match s {
        Scope::Enterprise => w.u8(0),
        Scope::Facility(id) => w.u8(1).u32(id),
    };
}

pub(crate) fn get_scope(r: &mut Reader<'_>) -> Result<Scope, RegistryError> {
    match r.u8()? {
        0 => Ok(Scope::Enterprise),
        1 => Ok(Scope::Facility(r.u32()?)),
        _ => Err(corrupt("scope")),
    }
}

pub(crate) fn put_subject(w: &mut Writer, s: &Subject) {
    match s {
        Subject::Fuel(code) => w.u8(0).str(code),
        Subject::Facility(id) => w.u8(1).u32(*id),
    };
}

pub(crate) fn get_subject(r: &mut Reader<'_>) -> Result<Subject, RegistryError> {
    match r.u8()? {
        0 => Ok(Subject::Fuel(r.str()?)),
        1 => Ok(Subject::Facility(r.u32()?)),
        _ => Err(corrupt("subject")),
    }
}

pub(crate) fn put_plan(w: &mut Writer, p: &Dqcp) {
    w.u16(p.year);
    put_sector(w, p.sector);
    w.u32(p.facilities.len() as u32);
    for f in &p.facilities {
        w.u32(f.id).str(&f.name).str(f.kind.name());
        w.str(f.clinker_type.as_deref().unwrap_or(""));
    }
    w.u32(p.meters.len() as u32);
    for m in &p.meters {
        w.str(&m.id).str(&m.measures).u32(m.calibrated);
    }
    w.u32(p.measured.len() as u32);
    for (param, subject) in &p.measured {
        w.str(param.name());
        put_subject(w, subject);
    }
}

pub(crate) fn get_plan(r: &mut Reader<'_>) -> Result<Dqcp, RegistryError> {
    let year = r.u16()?;
    let sector = get_sector(r)?;
    let facilities = get_rows(r, LIST_MAX, |r| {
        let id = r.u32()?;
        let name = r.str()?;
        let kind = named(r, "process kind", ProcessKind::parse)?;
        let clinker = r.str()?;
        Ok(Facility {
            id,
            name,
            kind,
            clinker_type: (!clinker.is_empty()).then_some(clinker),
        })
    })?;
    let meters = get_rows(r, LIST_MAX, |r| {
        Ok(Meter {
            id: r.str()?,
            measures: r.str()?,
            calibrated: r.u32()?,
        })
    })?;
    let measured = get_rows(r, LIST_MAX, |r| {
        Ok((named(r, "parameter", Param::parse)?, get_subject(r)?))
    })?;
    Ok(Dqcp {
        year,
        sector,
        facilities,
        meters,
        measured: measured.into_iter().collect(),
    })
}

pub(crate) fn put_month(w: &mut Writer, m: &Month) {
    w.u16(m.year).u8(m.month).u32(m.rows.len() as u32);
    for row in &m.rows {
        put_scope(w, row.scope);
        w.str(row.role.name()).str(&row.item).dec(row.quantity);
    }
    w.u32(m.readings.len() as u32);
    for x in &m.readings {
        w.str(x.param.name());
        put_subject(w, &x.subject);
        w.dec(x.value).str(&x.evidence);
    }
    w.u32(m.stoppages.len() as u32);
    for s in &m.stoppages {
        w.u32(s.facility).u8(s.days);
    }
}

pub(crate) fn get_month(r: &mut Reader<'_>) -> Result<Month, RegistryError> {
    let year = r.u16()?;
    let month = r.u8()?;
    let rows = get_rows(r, LIST_MAX, |r| {
        Ok(Row {
            scope: get_scope(r)?,
            role: named(r, "role", Role::parse)?,
            item: r.str()?,
            quantity: r.dec()?,
        })
    })?;
    let readings = get_rows(r, LIST_MAX, |r| {
        Ok(Reading {
            param: named(r, "parameter", Param::parse)?,
            subject: get_subject(r)?,
            value: r.dec()?,
            evidence: r.str()?,
        })
    })?;
    let stoppages = get_rows(r, LIST_MAX, |r| {
        Ok(Stoppage {
            facility: r.u32()?,
            days: r.u8()?,
        })
    })?;
    Ok(Month {
        year,
        month,
        rows,
        readings,
        stoppages,
    })
}

pub(crate) fn put_evidence(w: &mut Writer, evidence: &[Evidence]) {
    w.u32(evidence.len() as u32);
    for e in evidence {
        w.str(&e.kind).str(&e.name).bytes(&e.sha256).u64(e.bytes);
    }
}

pub(crate) fn get_evidence(r: &mut Reader<'_>) -> Result<Vec<Evidence>, RegistryError> {
    get_rows(r, LIST_MAX, |r| {
        let kind = r.str()?;
        let name = r.str()?;
        let sha256: [u8; 32] = r.bytes()?.try_into().map_err(|_| corrupt("sha256"))?;
        Ok(Evidence {
            kind,
            name,
            sha256,
            bytes: r.u64()?,
        })
    })
}

pub(crate) fn encode_factors(versions: &[FactorsRecord]) -> Vec<u8> {
    encode_texts(versions.iter().map(|f| (f.text.as_str(), f.seq)))
}

pub(crate) fn decode_factors(bytes: &[u8]) -> Result<Vec<FactorsRecord>, RegistryError> {
    decode_texts(bytes, |text, seq| {
        let factors = Factors::from_toml(&text).map_err(|e| e.to_string())?;
        Ok(FactorsRecord { factors, text, seq })
    })
}

pub(crate) fn encode_plans(versions: &[PlanRecord]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(versions.len() as u32);
    for p in versions {
        put_plan(&mut w, &p.plan);
        w.u64(p.seq).u32(p.date);
    }
    w.0
}

pub(crate) fn decode_plans(bytes: &[u8]) -> Result<Vec<PlanRecord>, RegistryError> {
    let mut r = Reader::new(bytes);
    let versions = get_rows(&mut r, LIST_MAX, |r| {
        Ok(PlanRecord {
            plan: get_plan(r)?,
            seq: r.u64()?,
            date: r.u32()?,
        })
    })?;
    r.done()?;
    Ok(versions)
}

pub(crate) fn encode_deposits(versions: &[Deposit]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(versions.len() as u32);
    for d in versions {
        put_month(&mut w, &d.month);
        put_evidence(&mut w, &d.evidence);
        w.u32(d.date).bool(d.late).u32(d.stale_meters.len() as u32);
        for m in &d.stale_meters {
            w.str(m);
        }
        w.u32(d.plan_version).u64(d.seq);
    }
    w.0
}

pub(crate) fn decode_deposits(bytes: &[u8]) -> Result<Vec<Deposit>, RegistryError> {
    let mut r = Reader::new(bytes);
    let versions = get_rows(&mut r, LIST_MAX, |r| {
        Ok(Deposit {
            month: get_month(r)?,
            evidence: get_evidence(r)?,
            date: r.u32()?,
            late: r.bool()?,
            stale_meters: get_rows(r, LIST_MAX, |r| r.str())?,
            plan_version: r.u32()?,
            seq: r.u64()?,
        })
    })?;
    r.done()?;
    Ok(versions)
}

pub(crate) fn put_facilities(w: &mut Writer, facilities: &[FacilityFigures]) {
    w.u32(facilities.len() as u32);
    for f in facilities {
        w.u32(f.id).dec(f.output_t).dec(f.emissions_t);
        w.dec(f.pfc_co2e_t).dec(f.carbide_slag_rate);
    }
}

pub(crate) fn get_facilities(r: &mut Reader<'_>) -> Result<Vec<FacilityFigures>, RegistryError> {
    get_rows(r, LIST_MAX, |r| {
        Ok(FacilityFigures {
            id: r.u32()?,
            output_t: r.dec()?,
            emissions_t: r.dec()?,
            pfc_co2e_t: r.dec()?,
            carbide_slag_rate: r.dec()?,
        })
    })
}

/// Versions of a data file as the journal keeps them: each one's text and entry seq.
pub(crate) fn encode_texts<'a>(versions: impl ExactSizeIterator<Item = (&'a str, u64)>) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(versions.len() as u32);
    for (text, seq) in versions {
        w.str(text).u64(seq);
    }
    w.0
}

/// Decodes [`encode_texts`], parsing each text with `parse` (its error: the record is corrupt).
pub(crate) fn decode_texts<T>(
    bytes: &[u8],
    parse: impl Fn(String, u64) -> Result<T, String>,
) -> Result<Vec<T>, RegistryError> {
    let mut r = Reader::new(bytes);
    let versions = get_rows(&mut r, LIST_MAX, |r| {
        let text = r.str()?;
        parse(text, r.u64()?).map_err(|e| corrupt(&e))
    })?;
    r.done()?;
    Ok(versions)
}

pub(crate) fn encode_reports(versions: &[Submission]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(versions.len() as u32);
    for s in versions {
        w.u64(s.seq)
            .u32(s.date)
            .str(&s.factors_version)
            .u32(s.plan_version);
        for v in s.month_versions {
            w.u32(v);
        }
        w.u64(s.total_t).u64(s.co2_t).u64(s.pfc_co2e_t);
        put_facilities(&mut w, &s.facilities);
        w.u64(s.confirmed_seq.unwrap_or(0));
    }
    w.0
}

pub(crate) fn decode_reports(bytes: &[u8]) -> Result<Vec<Submission>, RegistryError> {
    let mut r = Reader::new(bytes);
    let versions = get_rows(&mut r, LIST_MAX, |r| {
        let (seq, date, factors_version, plan_version) = (r.u64()?, r.u32()?, r.str()?, r.u32()?);
        let mut month_versions = [0u32; 12];
        for v in &mut month_versions {
            *v = r.u32()?;
        }
        let (total_t, co2_t, pfc_co2e_t) = (r.u64()?, r.u64()?, r.u64()?);
        let facilities = get_facilities(r)?;
        let confirmed = r.u64()?;
        Ok(Submission {
            seq,
            date,
            factors_version,
            plan_version,
            month_versions,
            total_t,
            co2_t,
            pfc_co2e_t,
            facilities,
            confirmed_seq: (confirmed != 0).then_some(confirmed),
        })
    })?;
    r.done()?;
    Ok(versions)
}
