//! The verification records' canonical encoding (journal payloads and stored records).
//! Enums are written by their names, as the emissions records are.

use mrv::month::Role;
use mrv::plan::Param;

use super::rules::{Rules, RulesRecord};
use super::{
    Body, Conclusion, Decision, File, Finding, Objection, Resolution, Stage, Step, Target,
};
use crate::codec::{Reader, Writer};
use crate::cycle::get_rows;
use crate::emissions::codec::{
    decode_texts, encode_texts, get_facilities, get_scope, get_subject, named, put_facilities,
    put_scope, put_subject,
};
use crate::error::RegistryError;
use crate::model::AccountId;
use crate::tx::Op;

fn corrupt(what: &str) -> RegistryError {
    RegistryError::Corrupt(format!("verification record: {what}"))
}

/// Bounds of decoded lists (a record never holds more than its operation accepted).
const LIST_MAX: usize = 1 << 16;

pub(crate) fn put_target(w: &mut Writer, t: &Target) {
    match t {
        Target::Row { scope, role, item } => {
            w.u8(0);
            put_scope(w, *scope);
            w.str(role.name()).str(item);
        }
        Target::Reading { param, subject } => {
            w.u8(1).str(param.name());
            put_subject(w, subject);
        }
    }
}

pub(crate) fn get_target(r: &mut Reader<'_>) -> Result<Target, RegistryError> {
    match r.u8()? {
        0 => Ok(Target::Row {
            scope: get_scope(r)?,
            role: named(r, "role", Role::parse)?,
            item: r.str()?,
        }),
        1 => Ok(Target::Reading {
            param: named(r, "parameter", Param::parse)?,
            subject: get_subject(r)?,
        }),
        _ => Err(corrupt("target")),
    }
}

pub(crate) fn put_stage(w: &mut Writer, s: Stage) {
    w.str(s.name());
}

pub(crate) fn get_stage(r: &mut Reader<'_>) -> Result<Stage, RegistryError> {
    named(r, "stage", Stage::parse)
}

pub(crate) fn encode_rules(versions: &[RulesRecord]) -> Vec<u8> {
    encode_texts(versions.iter().map(|v| (v.text.as_str(), v.seq)))
}

pub(crate) fn decode_rules(bytes: &[u8]) -> Result<Vec<RulesRecord>, RegistryError> {
    decode_texts(bytes, |text, seq| {
        let rules = Rules::from_toml(&text).map_err(|e| e.to_string())?;
        Ok(RulesRecord { rules, text, seq })
    })
}

pub(crate) fn encode_body(b: &Body) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&b.name).str(&b.credit_code).u64(b.seq);
    w.0
}

pub(crate) fn decode_body(bytes: &[u8]) -> Result<Body, RegistryError> {
    let mut r = Reader::new(bytes);
    let body = Body {
        name: r.str()?,
        credit_code: r.str()?,
        seq: r.u64()?,
    };
    r.done()?;
    Ok(body)
}

fn put_finding(w: &mut Writer, f: &Finding) {
    w.u32(f.id).u32(f.round).u8(f.month);
    put_target(w, &f.target);
    w.str(&f.text).u32(f.reports_at_raise).u64(f.raised_seq);
    match &f.resolution {
        None => w.u8(0),
        Some((Resolution::Corrected { report_version }, seq)) => {
            w.u8(1).u32(*report_version).u64(*seq)
        }
        Some((Resolution::Estimated { value }, seq)) => w.u8(2).dec(*value).u64(*seq),
    };
}

fn get_finding(r: &mut Reader<'_>) -> Result<Finding, RegistryError> {
    let (id, round, month) = (r.u32()?, r.u32()?, r.u8()?);
    let target = get_target(r)?;
    let (text, reports_at_raise, raised_seq) = (r.str()?, r.u32()?, r.u64()?);
    let resolution = match r.u8()? {
        0 => None,
        1 => {
            let report_version = r.u32()?;
            Some((Resolution::Corrected { report_version }, r.u64()?))
        }
        2 => {
            let value = r.dec()?;
            Some((Resolution::Estimated { value }, r.u64()?))
        }
        _ => return Err(corrupt("resolution")),
    };
    Ok(Finding {
        id,
        round,
        month,
        target,
        text,
        reports_at_raise,
        raised_seq,
        resolution,
    })
}

fn put_conclusion(w: &mut Writer, c: &Conclusion) {
    w.u32(c.round).u64(c.seq).u32(c.date).u32(c.report_version);
    w.u64(c.total_t)
        .u64(c.co2_t)
        .u64(c.pfc_co2e_t)
        .u64(c.reported_t);
    put_facilities(w, &c.facilities);
}

fn get_conclusion(r: &mut Reader<'_>) -> Result<Conclusion, RegistryError> {
    let (round, seq, date, report_version) = (r.u32()?, r.u64()?, r.u32()?, r.u32()?);
    let (total_t, co2_t, pfc_co2e_t, reported_t) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let facilities = get_facilities(r)?;
    Ok(Conclusion {
        round,
        seq,
        date,
        report_version,
        total_t,
        co2_t,
        pfc_co2e_t,
        facilities,
        reported_t,
    })
}

fn put_objection(w: &mut Writer, o: &Objection) {
    w.str(&o.reason).u32(o.date).u64(o.seq).u32(o.decide_by);
    match &o.decision {
        None => w.bool(false),
        Some(d) => w
            .bool(true)
            .bool(d.upheld)
            .str(&d.reason)
            .u32(d.date)
            .u64(d.seq),
    };
}

fn get_objection(r: &mut Reader<'_>) -> Result<Objection, RegistryError> {
    let (reason, date, seq, decide_by) = (r.str()?, r.u32()?, r.u64()?, r.u32()?);
    let decision = if r.bool()? {
        Some(Decision {
            upheld: r.bool()?,
            reason: r.str()?,
            date: r.u32()?,
            seq: r.u64()?,
        })
    } else {
        None
    };
    Ok(Objection {
        reason,
        date,
        seq,
        decide_by,
        decision,
    })
}

pub(crate) fn encode_file(f: &File) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(f.body).str(&f.province);
    put_stage(&mut w, f.stage);
    w.u32(f.round).u32(f.findings.len() as u32);
    for x in &f.findings {
        put_finding(&mut w, x);
    }
    w.u32(f.conclusions.len() as u32);
    for c in &f.conclusions {
        put_conclusion(&mut w, c);
    }
    let (notified, until) = f.notified.unwrap_or((0, 0));
    w.u32(notified).u32(until);
    match &f.objection {
        None => w.bool(false),
        Some(o) => {
            w.bool(true);
            put_objection(&mut w, o);
            &mut w
        }
    };
    w.u32(f.steps.len() as u32);
    for s in &f.steps {
        w.str(&s.what)
            .u64(s.actor)
            .u64(s.seq)
            .u32(s.date)
            .bool(s.late);
    }
    w.0
}

pub(crate) fn decode_file(bytes: &[u8]) -> Result<File, RegistryError> {
    let mut r = Reader::new(bytes);
    let (body, province) = (r.u32()?, r.str()?);
    let stage = get_stage(&mut r)?;
    let round = r.u32()?;
    let findings = get_rows(&mut r, LIST_MAX, get_finding)?;
    let conclusions = get_rows(&mut r, LIST_MAX, get_conclusion)?;
    let (notified, until) = (r.u32()?, r.u32()?);
    let objection = if r.bool()? {
        Some(get_objection(&mut r)?)
    } else {
        None
    };
    let steps = get_rows(&mut r, LIST_MAX, |r| {
        Ok(Step {
            what: r.str()?,
            actor: r.u64()?,
            seq: r.u64()?,
            date: r.u32()?,
            late: r.bool()?,
        })
    })?;
    r.done()?;
    Ok(File {
        body,
        province,
        stage,
        round,
        findings,
        conclusions,
        notified: (notified != 0).then_some((notified, until)),
        objection,
        steps,
    })
}

/// Journal encoding of the verification operations (tags 45 to 55).
pub(crate) fn put_op(w: &mut Writer, op: &Op) {
    match op {
        Op::RegisterVerificationRules { text } => {
            w.u8(45).str(text);
        }
        Op::RegisterBody {
            body,
            name,
            credit_code,
        } => {
            w.u8(46).u32(*body).str(name).str(credit_code);
        }
        Op::RecordEngagement {
            year,
            account,
            body,
            province,
        } => {
            w.u8(47).u16(*year).u64(account.0).u32(*body).str(province);
        }
        Op::AssignBody {
            year,
            account,
            body,
            province,
            date,
        } => {
            w.u8(48).u16(*year).u64(account.0).u32(*body);
            w.str(province).u32(*date);
        }
        Op::ReviewStep {
            year,
            account,
            body,
            stage,
            date,
        } => {
            w.u8(49).u16(*year).u64(account.0).u32(*body);
            put_stage(w, *stage);
            w.u32(*date);
        }
        Op::RaiseFinding {
            year,
            account,
            body,
            month,
            target,
            text,
            date,
        } => {
            w.u8(50).u16(*year).u64(account.0).u32(*body).u8(*month);
            put_target(w, target);
            w.str(text).u32(*date);
        }
        Op::ResolveFinding {
            year,
            account,
            body,
            finding,
            estimate,
            date,
        } => {
            w.u8(51).u16(*year).u64(account.0).u32(*body).u32(*finding);
            match estimate {
                Some(v) => w.bool(true).dec(*v),
                None => w.bool(false),
            };
            w.u32(*date);
        }
        Op::Conclude {
            year,
            account,
            body,
            date,
        } => {
            w.u8(52).u16(*year).u64(account.0).u32(*body).u32(*date);
        }
        Op::Notify {
            year,
            account,
            province,
            date,
            objection_until,
        } => {
            w.u8(53).u16(*year).u64(account.0).str(province);
            w.u32(*date).u32(*objection_until);
        }
        Op::Object {
            year,
            account,
            reason,
            date,
            decide_by,
        } => {
            w.u8(54).u16(*year).u64(account.0).str(reason);
            w.u32(*date).u32(*decide_by);
        }
        Op::DecideObjection {
            year,
            account,
            province,
            upheld,
            reason,
            date,
        } => {
            w.u8(55).u16(*year).u64(account.0).str(province);
            w.bool(*upheld).str(reason).u32(*date);
        }
        _ => {}
    }
}

pub(crate) fn get_op(tag: u8, r: &mut Reader<'_>) -> Result<Op, RegistryError> {
    let a = |r: &mut Reader<'_>| r.u64().map(AccountId);
    Ok(match tag {
        45 => Op::RegisterVerificationRules { text: r.str()? },
        46 => Op::RegisterBody {
            body: r.u32()?,
            name: r.str()?,
            credit_code: r.str()?,
        },
        47 => Op::RecordEngagement {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            province: r.str()?,
        },
        48 => Op::AssignBody {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            province: r.str()?,
            date: r.u32()?,
        },
        49 => Op::ReviewStep {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            stage: get_stage(r)?,
            date: r.u32()?,
        },
        50 => Op::RaiseFinding {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            month: r.u8()?,
            target: get_target(r)?,
            text: r.str()?,
            date: r.u32()?,
        },
        51 => Op::ResolveFinding {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            finding: r.u32()?,
            estimate: if r.bool()? { Some(r.dec()?) } else { None },
            date: r.u32()?,
        },
        52 => Op::Conclude {
            year: r.u16()?,
            account: a(r)?,
            body: r.u32()?,
            date: r.u32()?,
        },
        53 => Op::Notify {
            year: r.u16()?,
            account: a(r)?,
            province: r.str()?,
            date: r.u32()?,
            objection_until: r.u32()?,
        },
        54 => Op::Object {
            year: r.u16()?,
            account: a(r)?,
            reason: r.str()?,
            date: r.u32()?,
            decide_by: r.u32()?,
        },
        55 => Op::DecideObjection {
            year: r.u16()?,
            account: a(r)?,
            province: r.str()?,
            upheld: r.bool()?,
            reason: r.str()?,
            date: r.u32()?,
        },
        _ => return Err(corrupt("operation tag")),
    })
}
