//! Registry transactions: what a caller asks for, and how it is encoded in the journal.

use crate::codec::{Reader, Writer};
use crate::compliance::Plan;
use crate::cycle::{
    ActivityRow, DATA_ROWS_MAX, ENTITY_ROWS_MAX, EntityRow, VerifiedRow, get_activity,
    get_entity_row, get_entity_row_v1, get_rows, put_activity, put_entity_row,
};
use crate::emissions;
use crate::error::RegistryError;
use crate::model::{AccountId, AccountStatus, AccountType, Sector, UnitDef, UnitId, UnitKind};
use crate::plans::{decode_plan, encode_plan};

/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Longest account name or reason text accepted, in bytes.
pub const TEXT_BYTES_MAX: usize = 256;

/// One transaction request. `key` makes it idempotent; `actor` is the principal asking (for
/// four-eyes); `timestamp_ns` is recorded in the journal (the registry reads no clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    pub key: String,
    pub actor: u64,
    pub timestamp_ns: u64,
    pub op: Op,
}

/// How a pledge is enforced on default.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Enforcement {
    /// The frozen units go to the pledgee's registry holding.
    ToPledgee,
    /// The frozen units move to the pledgor's trading position for a one-way auction at the
    /// exchange; the proceeds belong to the pledgee.
    ForAuction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    OpenAccount {
        account: AccountId,
        kind: AccountType,
        name: String,
    },
    SetStatus {
        account: AccountId,
        status: AccountStatus,
    },
    CreateUnit {
        unit: UnitId,
        def: UnitDef,
    },
    /// Creates `quantity_t` of a unit into the national authority's account.
    Issue {
        authority: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    Allocate {
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    /// At or above the four-eyes threshold this only proposes; `ApproveTransfer` runs it.
    Transfer {
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    ApproveTransfer {
        proposal: u64,
    },
    CancelProposal {
        proposal: u64,
    },
    MoveToTrading {
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    MoveFromTrading {
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    /// Judicial freeze under a court order number.
    Freeze {
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
        order: u64,
    },
    Unfreeze {
        account: AccountId,
        unit: UnitId,
        order: u64,
    },
    PledgeRegister {
        pledgor: AccountId,
        pledgee: AccountId,
        unit: UnitId,
        quantity_t: u64,
        /// The most the pledge secures, in fen (0: not recorded, pledges from before
        /// amounts were; an enforcement for auction then names its claim).
        secured_fen: u64,
    },
    PledgeRelease {
        pledge: u64,
    },
    PledgeEnforce {
        pledge: u64,
        how: Enforcement,
        /// For auction: what the sale pays the pledgee first, in fen, at most the secured
        /// amount. `None` only in journals from before claims (their units went to the
        /// pledgor's free trading position).
        claim_fen: Option<u64>,
    },
    /// Surrender against a compliance year: the units are retired for good.
    Surrender {
        account: AccountId,
        retirement: AccountId,
        unit: UnitId,
        quantity_t: u64,
        year: u16,
    },
    VoluntaryCancel {
        account: AccountId,
        cancellation: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    /// Correction by the authority: undoes an allocation or transfer journal entry.
    Reverse {
        entry: u64,
        reason: String,
    },
    /// Transfers of at least this quantity need a second approver (`u64::MAX`: never).
    SetFourEyesThreshold {
        quantity_t: u64,
    },
    /// Exchange settlement: the trades and withdrawals of the engine's commands up to and
    /// including `through_seq`, applied all or nothing. Each engine sequence settles once:
    /// `through_seq` must be above the last one settled.
    Settle {
        through_seq: u64,
        legs: Vec<SettleLeg>,
    },
    /// Fixes every covered entity's carry-over limit into `year` under the plan's rule
    /// (`date`: the exchange's local date, after the rule's holdings date).
    FixCarryOver {
        year: u16,
        plan_version: String,
        date: u32,
    },
    /// An entity applies to carry old-vintage units into `year`; they are frozen.
    ApplyCarryOver {
        year: u16,
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
        date: u32,
    },
    /// Converts the open applications into `year`: old units cancelled, `unit` issued.
    ConvertCarryOver {
        year: u16,
        unit: UnitId,
        cancellation: AccountId,
    },
    /// Registers an allocation plan version for its compliance year.
    RegisterPlan {
        plan: Box<Plan>,
    },
    /// Registers a guideline's factors file (its TOML text) for a compliance year.
    RegisterFactors {
        year: u16,
        text: String,
    },
    /// Sets or revises a covered entity's data-quality control plan for its year.
    SetMonitoringPlan {
        account: AccountId,
        plan: Box<mrv::plan::Dqcp>,
        date: u32,
    },
    /// A month of an entity's accounting data, with its evidence's hashes; `correction`
    /// deposits a new version of a month deposited before. `date` is the registry's local
    /// date (a deposit after the 40 days is accepted and flagged late).
    DepositMonth {
        account: AccountId,
        month: Box<mrv::month::Month>,
        evidence: Vec<crate::emissions::Evidence>,
        correction: bool,
        date: u32,
    },
    /// Assembles an entity's annual report from its twelve months and submits it.
    SubmitReport {
        account: AccountId,
        year: u16,
        date: u32,
    },
    /// Takes the latest submitted report's figures into the compliance cycle as the year's
    /// verified emissions and allocation data.
    ConfirmReport {
        account: AccountId,
        year: u16,
    },
    /// Registers a year's verification rules (deadlines, objection windows: TOML text).
    RegisterVerificationRules {
        text: String,
    },
    /// Registers (or renames) a verification body.
    RegisterBody {
        body: u32,
        name: String,
        credit_code: String,
    },
    /// `body` served `account` as its technical service body (consultant) in `year`.
    /// `province` is the acting province (empty: the ministry).
    RecordEngagement {
        year: u16,
        account: AccountId,
        body: u32,
        province: String,
    },
    /// The province assigns a body to verify an entity's year.
    AssignBody {
        year: u16,
        account: AccountId,
        body: u32,
        province: String,
        date: u32,
    },
    /// The assigned body (`body`: the acting staff's) starts its document review or
    /// records its on-site check.
    ReviewStep {
        year: u16,
        account: AccountId,
        body: u32,
        stage: crate::verification::Stage,
        date: u32,
    },
    /// The assigned body records a non-conformity of a month's parameter.
    RaiseFinding {
        year: u16,
        account: AccountId,
        body: u32,
        month: u8,
        target: crate::verification::Target,
        text: String,
        date: u32,
    },
    /// The assigned body closes a finding: corrected (`estimate` none) or estimated.
    ResolveFinding {
        year: u16,
        account: AccountId,
        body: u32,
        finding: u32,
        estimate: Option<rust_decimal::Decimal>,
        date: u32,
    },
    /// The assigned body's conclusion.
    Conclude {
        year: u16,
        account: AccountId,
        body: u32,
        date: u32,
    },
    /// The province notifies the conclusion: the year's verified emissions.
    Notify {
        year: u16,
        account: AccountId,
        province: String,
        date: u32,
        objection_until: u32,
    },
    /// The entity objects to the notified conclusion.
    Object {
        year: u16,
        account: AccountId,
        reason: String,
        date: u32,
        decide_by: u32,
    },
    /// The province decides the objection.
    DecideObjection {
        year: u16,
        account: AccountId,
        province: String,
        upheld: bool,
        reason: String,
        date: u32,
    },
    /// Registers (or updates) covered entities and their facilities, opening missing
    /// accounts; all rows or none.
    LoadEntities {
        rows: Vec<EntityRow>,
    },
    /// Annual activity data per facility; all rows or none. A year already trued up is
    /// recomputed (top-up or claw-back).
    LoadActivity {
        year: u16,
        rows: Vec<ActivityRow>,
    },
    /// Verified emissions per entity (the verifier); a year already trued up is recomputed.
    RecordVerified {
        year: u16,
        rows: Vec<VerifiedRow>,
    },
    /// Pre-allocation of a year under a registered plan, issued from `authority`.
    PreAllocate {
        year: u16,
        plan_version: String,
        unit: UnitId,
        authority: AccountId,
    },
    /// The true-up of a year under a registered plan.
    TrueUp {
        year: u16,
        plan_version: String,
        unit: UnitId,
        authority: AccountId,
    },
    /// Closes a compliance year after its deadline, at the exchange's average price. `date`
    /// is the registry's local date (`YYYYMMDD`) when the authority asked; closing on or
    /// before the plan's deadline needs `forced_reason`, recorded with the close.
    CloseYear {
        year: u16,
        average_price_fen: i64,
        retirement: AccountId,
        date: u32,
        forced_reason: Option<String>,
    },
}

/// The reason a close journaled before the deadline rule carries on replay.
pub const CLOSED_BEFORE_DEADLINE_RULE: &str = "closed before the deadline rule existed";

/// Most legs in one settlement transaction.
pub const SETTLE_LEGS_MAX: usize = 1 << 20;

/// One movement of exchange settlement.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SettleLeg {
    /// A trade: the seller's trading position goes to the buyer's.
    Trade {
        seller: AccountId,
        buyer: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
    /// Allowances withdrawn from the exchange: trading position back to registry-available.
    Withdraw {
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
    },
}

/// What a committed transaction did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Done,
    /// A transfer waiting for a second approver.
    Proposed {
        proposal: u64,
    },
    Pledged {
        pledge: u64,
    },
    /// Nothing to do (a re-run with the same plan and data): no journal entry is written.
    Unchanged,
}

/// A committed transaction: its journal sequence and outcome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Receipt {
    pub seq: u64,
    pub outcome: Outcome,
}

fn sector_code(s: Sector) -> u8 {
    match s {
        Sector::Power => 0,
        Sector::Steel => 1,
        Sector::Cement => 2,
        Sector::Aluminium => 3,
    }
}

fn sector_of(c: u8) -> Result<Sector, RegistryError> {
    Ok(match c {
        0 => Sector::Power,
        1 => Sector::Steel,
        2 => Sector::Cement,
        3 => Sector::Aluminium,
        _ => return Err(RegistryError::Corrupt("sector".into())),
    })
}

pub(crate) fn put_account_type(w: &mut Writer, t: AccountType) {
    let (code, sector) = match t {
        AccountType::NationalAuthority => (0, 0),
        AccountType::ProvincialAuthority => (1, 0),
        AccountType::CoveredEntity(s) => (2, sector_code(s)),
        AccountType::MemberFirm => (3, 0),
        AccountType::Pledgee => (4, 0),
        AccountType::ExchangeCustody => (5, 0),
        AccountType::Retirement => (6, 0),
        AccountType::Cancellation => (7, 0),
    };
    w.u8(code).u8(sector);
}

pub(crate) fn get_account_type(r: &mut Reader<'_>) -> Result<AccountType, RegistryError> {
    let (code, sector) = (r.u8()?, r.u8()?);
    Ok(match code {
        0 => AccountType::NationalAuthority,
        1 => AccountType::ProvincialAuthority,
        2 => AccountType::CoveredEntity(sector_of(sector)?),
        3 => AccountType::MemberFirm,
        4 => AccountType::Pledgee,
        5 => AccountType::ExchangeCustody,
        6 => AccountType::Retirement,
        7 => AccountType::Cancellation,
        _ => return Err(RegistryError::Corrupt("account type".into())),
    })
}

pub(crate) fn status_code(s: AccountStatus) -> u8 {
    match s {
        AccountStatus::Open => 0,
        AccountStatus::Restricted => 1,
        AccountStatus::Frozen => 2,
        AccountStatus::Closed => 3,
    }
}

pub(crate) fn status_of(c: u8) -> Result<AccountStatus, RegistryError> {
    Ok(match c {
        0 => AccountStatus::Open,
        1 => AccountStatus::Restricted,
        2 => AccountStatus::Frozen,
        3 => AccountStatus::Closed,
        _ => return Err(RegistryError::Corrupt("status".into())),
    })
}

impl Tx {
    /// Canonical bytes of the transaction: the journal payload and the idempotency check.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(&self.key).u64(self.actor).u64(self.timestamp_ns);
        encode_op(&mut w, &self.op);
        w.0
    }

    /// What makes two requests the same for idempotency: key, actor and operation (not
    /// the time they were sent).
    pub fn request_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(&self.key).u64(self.actor);
        encode_op(&mut w, &self.op);
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Tx, RegistryError> {
        let mut r = Reader::new(bytes);
        let key = r.str()?;
        let actor = r.u64()?;
        let timestamp_ns = r.u64()?;
        let op = decode_op(&mut r)?;
        r.done()?;
        Ok(Tx {
            key,
            actor,
            timestamp_ns,
            op,
        })
    }
}

fn encode_op(w: &mut Writer, op: &Op) {
    match op {
        Op::OpenAccount {
            account,
            kind,
            name,
        } => {
            w.u8(1).u64(account.0);
            put_account_type(w, *kind);
            w.str(name);
        }
        Op::SetStatus { account, status } => {
            w.u8(2).u64(account.0).u8(status_code(*status));
        }
        Op::CreateUnit { unit, def } => {
            w.u8(3).u32(unit.0).u8(match def.kind {
                UnitKind::Cea => 0,
                UnitKind::Ccer => 1,
            });
            w.u16(def.vintage).u64(def.project_id).u32(def.registered);
        }
        Op::Issue {
            authority,
            unit,
            quantity_t,
        } => {
            w.u8(4).u64(authority.0).u32(unit.0).u64(*quantity_t);
        }
        Op::Allocate {
            from,
            to,
            unit,
            quantity_t,
        } => {
            w.u8(5).u64(from.0).u64(to.0).u32(unit.0).u64(*quantity_t);
        }
        Op::Transfer {
            from,
            to,
            unit,
            quantity_t,
        } => {
            w.u8(6).u64(from.0).u64(to.0).u32(unit.0).u64(*quantity_t);
        }
        Op::ApproveTransfer { proposal } => {
            w.u8(7).u64(*proposal);
        }
        Op::CancelProposal { proposal } => {
            w.u8(8).u64(*proposal);
        }
        Op::MoveToTrading {
            account,
            unit,
            quantity_t,
        } => {
            w.u8(9).u64(account.0).u32(unit.0).u64(*quantity_t);
        }
        Op::MoveFromTrading {
            account,
            unit,
            quantity_t,
        } => {
            w.u8(10).u64(account.0).u32(unit.0).u64(*quantity_t);
        }
        Op::Freeze {
            account,
            unit,
            quantity_t,
            order,
        } => {
            w.u8(11)
                .u64(account.0)
                .u32(unit.0)
                .u64(*quantity_t)
                .u64(*order);
        }
        Op::Unfreeze {
            account,
            unit,
            order,
        } => {
            w.u8(12).u64(account.0).u32(unit.0).u64(*order);
        }
        Op::PledgeRegister {
            pledgor,
            pledgee,
            unit,
            quantity_t,
            secured_fen,
        } => {
            w.u8(30)
                .u64(pledgor.0)
                .u64(pledgee.0)
                .u32(unit.0)
                .u64(*quantity_t)
                .u64(*secured_fen);
        }
        Op::PledgeRelease { pledge } => {
            w.u8(14).u64(*pledge);
        }
        Op::PledgeEnforce {
            pledge,
            how,
            claim_fen,
        } => {
            let how = match how {
                Enforcement::ToPledgee => 0,
                Enforcement::ForAuction => 1,
            };
            match claim_fen {
                None => w.u8(15).u64(*pledge).u8(how),
                Some(claim) => w.u8(31).u64(*pledge).u8(how).u64(*claim),
            };
        }
        Op::Surrender {
            account,
            retirement,
            unit,
            quantity_t,
            year,
        } => {
            w.u8(16)
                .u64(account.0)
                .u64(retirement.0)
                .u32(unit.0)
                .u64(*quantity_t)
                .u16(*year);
        }
        Op::VoluntaryCancel {
            account,
            cancellation,
            unit,
            quantity_t,
        } => {
            w.u8(17)
                .u64(account.0)
                .u64(cancellation.0)
                .u32(unit.0)
                .u64(*quantity_t);
        }
        Op::Reverse { entry, reason } => {
            w.u8(18).u64(*entry).str(reason);
        }
        Op::SetFourEyesThreshold { quantity_t } => {
            w.u8(19).u64(*quantity_t);
        }
        Op::Settle { through_seq, legs } => {
            w.u8(20).u64(*through_seq).u64(legs.len() as u64);
            for leg in legs {
                match *leg {
                    SettleLeg::Trade {
                        seller,
                        buyer,
                        unit,
                        quantity_t,
                    } => {
                        w.u8(0)
                            .u64(seller.0)
                            .u64(buyer.0)
                            .u32(unit.0)
                            .u64(quantity_t);
                    }
                    SettleLeg::Withdraw {
                        account,
                        unit,
                        quantity_t,
                    } => {
                        w.u8(1).u64(account.0).u32(unit.0).u64(quantity_t);
                    }
                }
            }
        }
        Op::RegisterPlan { plan } => {
            w.u8(21);
            encode_plan(w, plan);
        }
        Op::RegisterFactors { year, text } => {
            w.u8(40).u16(*year).str(text);
        }
        Op::SetMonitoringPlan {
            account,
            plan,
            date,
        } => {
            w.u8(41).u64(account.0).u32(*date);
            emissions::codec::put_plan(w, plan);
        }
        Op::DepositMonth {
            account,
            month,
            evidence,
            correction,
            date,
        } => {
            w.u8(42).u64(account.0).u32(*date).bool(*correction);
            emissions::codec::put_month(w, month);
            emissions::codec::put_evidence(w, evidence);
        }
        Op::SubmitReport {
            account,
            year,
            date,
        } => {
            w.u8(43).u64(account.0).u16(*year).u32(*date);
        }
        Op::ConfirmReport { account, year } => {
            w.u8(44).u64(account.0).u16(*year);
        }
        Op::RegisterVerificationRules { .. }
        | Op::RegisterBody { .. }
        | Op::RecordEngagement { .. }
        | Op::AssignBody { .. }
        | Op::ReviewStep { .. }
        | Op::RaiseFinding { .. }
        | Op::ResolveFinding { .. }
        | Op::Conclude { .. }
        | Op::Notify { .. }
        | Op::Object { .. }
        | Op::DecideObjection { .. } => crate::verification::codec::put_op(w, op),
        Op::LoadEntities { rows } => {
            w.u8(29).u32(rows.len() as u32);
            for row in rows {
                put_entity_row(w, row);
            }
        }
        Op::LoadActivity { year, rows } => {
            w.u8(23).u16(*year).u32(rows.len() as u32);
            for row in rows {
                w.u64(row.account.0).u32(row.facility);
                put_activity(w, &row.activity);
            }
        }
        Op::RecordVerified { year, rows } => {
            w.u8(24).u16(*year).u32(rows.len() as u32);
            for row in rows {
                w.u64(row.account.0).u64(row.co2_t).u64(row.pfc_co2e_t);
            }
        }
        Op::PreAllocate {
            year,
            plan_version,
            unit,
            authority,
        } => {
            w.u8(25)
                .u16(*year)
                .str(plan_version)
                .u32(unit.0)
                .u64(authority.0);
        }
        Op::TrueUp {
            year,
            plan_version,
            unit,
            authority,
        } => {
            w.u8(26)
                .u16(*year)
                .str(plan_version)
                .u32(unit.0)
                .u64(authority.0);
        }
        Op::FixCarryOver {
            year,
            plan_version,
            date,
        } => {
            w.u8(32).u16(*year).str(plan_version).u32(*date);
        }
        Op::ApplyCarryOver {
            year,
            account,
            unit,
            quantity_t,
            date,
        } => {
            w.u8(33)
                .u16(*year)
                .u64(account.0)
                .u32(unit.0)
                .u64(*quantity_t)
                .u32(*date);
        }
        Op::ConvertCarryOver {
            year,
            unit,
            cancellation,
        } => {
            w.u8(34).u16(*year).u32(unit.0).u64(cancellation.0);
        }
        Op::CloseYear {
            year,
            average_price_fen,
            retirement,
            date,
            forced_reason,
        } => {
            w.u8(28)
                .u16(*year)
                .u64(*average_price_fen as u64)
                .u64(retirement.0)
                .u32(*date);
            match forced_reason {
                None => w.u8(0),
                Some(why) => w.u8(1).str(why),
            };
        }
    }
}

fn decode_op(r: &mut Reader<'_>) -> Result<Op, RegistryError> {
    let a = |r: &mut Reader<'_>| r.u64().map(AccountId);
    let u = |r: &mut Reader<'_>| r.u32().map(UnitId);
    let tag = r.u8()?;
    Ok(match tag {
        1 => Op::OpenAccount {
            account: a(r)?,
            kind: get_account_type(r)?,
            name: r.str()?,
        },
        2 => Op::SetStatus {
            account: a(r)?,
            status: status_of(r.u8()?)?,
        },
        3 => {
            let unit = u(r)?;
            let kind = match r.u8()? {
                0 => UnitKind::Cea,
                1 => UnitKind::Ccer,
                _ => return Err(RegistryError::Corrupt("unit kind".into())),
            };
            Op::CreateUnit {
                unit,
                def: UnitDef {
                    kind,
                    vintage: r.u16()?,
                    project_id: r.u64()?,
                    registered: r.u32()?,
                },
            }
        }
        4 => Op::Issue {
            authority: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        5 => Op::Allocate {
            from: a(r)?,
            to: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        6 => Op::Transfer {
            from: a(r)?,
            to: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        7 => Op::ApproveTransfer { proposal: r.u64()? },
        8 => Op::CancelProposal { proposal: r.u64()? },
        9 => Op::MoveToTrading {
            account: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        10 => Op::MoveFromTrading {
            account: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        11 => Op::Freeze {
            account: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
            order: r.u64()?,
        },
        12 => Op::Unfreeze {
            account: a(r)?,
            unit: u(r)?,
            order: r.u64()?,
        },
        13 => Op::PledgeRegister {
            pledgor: a(r)?,
            pledgee: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
            secured_fen: 0,
        },
        30 => Op::PledgeRegister {
            pledgor: a(r)?,
            pledgee: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
            secured_fen: r.u64()?,
        },
        14 => Op::PledgeRelease { pledge: r.u64()? },
        15 | 31 => {
            let pledge = r.u64()?;
            let how = match r.u8()? {
                0 => Enforcement::ToPledgee,
                1 => Enforcement::ForAuction,
                _ => return Err(RegistryError::Corrupt("enforcement".into())),
            };
            let claim_fen = if tag == 31 { Some(r.u64()?) } else { None };
            Op::PledgeEnforce {
                pledge,
                how,
                claim_fen,
            }
        }
        16 => Op::Surrender {
            account: a(r)?,
            retirement: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
            year: r.u16()?,
        },
        17 => Op::VoluntaryCancel {
            account: a(r)?,
            cancellation: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
        },
        18 => Op::Reverse {
            entry: r.u64()?,
            reason: r.str()?,
        },
        19 => Op::SetFourEyesThreshold {
            quantity_t: r.u64()?,
        },
        20 => {
            let through_seq = r.u64()?;
            let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
            if n > SETTLE_LEGS_MAX {
                return Err(RegistryError::Corrupt("settlement legs".into()));
            }
            let mut legs = Vec::with_capacity(n);
            for _ in 0..n {
                legs.push(match r.u8()? {
                    0 => SettleLeg::Trade {
                        seller: a(r)?,
                        buyer: a(r)?,
                        unit: u(r)?,
                        quantity_t: r.u64()?,
                    },
                    1 => SettleLeg::Withdraw {
                        account: a(r)?,
                        unit: u(r)?,
                        quantity_t: r.u64()?,
                    },
                    _ => return Err(RegistryError::Corrupt("settlement leg".into())),
                });
            }
            Op::Settle { through_seq, legs }
        }
        21 => Op::RegisterPlan {
            plan: Box::new(decode_plan(r)?),
        },
        40 => Op::RegisterFactors {
            year: r.u16()?,
            text: r.str()?,
        },
        41 => Op::SetMonitoringPlan {
            account: AccountId(r.u64()?),
            date: r.u32()?,
            plan: Box::new(emissions::codec::get_plan(r)?),
        },
        42 => Op::DepositMonth {
            account: AccountId(r.u64()?),
            date: r.u32()?,
            correction: r.bool()?,
            month: Box::new(emissions::codec::get_month(r)?),
            evidence: emissions::codec::get_evidence(r)?,
        },
        43 => Op::SubmitReport {
            account: AccountId(r.u64()?),
            year: r.u16()?,
            date: r.u32()?,
        },
        44 => Op::ConfirmReport {
            account: AccountId(r.u64()?),
            year: r.u16()?,
        },
        45..=55 => crate::verification::codec::get_op(tag, r)?,
        // Entity rows journaled before credit codes were kept.
        22 => Op::LoadEntities {
            rows: get_rows(r, ENTITY_ROWS_MAX, get_entity_row_v1)?,
        },
        29 => Op::LoadEntities {
            rows: get_rows(r, ENTITY_ROWS_MAX, get_entity_row)?,
        },
        23 => {
            let year = r.u16()?;
            let rows = get_rows(r, DATA_ROWS_MAX, |r| {
                Ok(ActivityRow {
                    account: AccountId(r.u64()?),
                    facility: r.u32()?,
                    activity: get_activity(r)?,
                })
            })?;
            Op::LoadActivity { year, rows }
        }
        24 => {
            let year = r.u16()?;
            let rows = get_rows(r, DATA_ROWS_MAX, |r| {
                Ok(VerifiedRow {
                    account: AccountId(r.u64()?),
                    co2_t: r.u64()?,
                    pfc_co2e_t: r.u64()?,
                })
            })?;
            Op::RecordVerified { year, rows }
        }
        25 => Op::PreAllocate {
            year: r.u16()?,
            plan_version: r.str()?,
            unit: u(r)?,
            authority: a(r)?,
        },
        26 => Op::TrueUp {
            year: r.u16()?,
            plan_version: r.str()?,
            unit: u(r)?,
            authority: a(r)?,
        },
        // Before the deadline rule: no date kept, and the close stood whenever it came.
        32 => Op::FixCarryOver {
            year: r.u16()?,
            plan_version: r.str()?,
            date: r.u32()?,
        },
        33 => Op::ApplyCarryOver {
            year: r.u16()?,
            account: a(r)?,
            unit: u(r)?,
            quantity_t: r.u64()?,
            date: r.u32()?,
        },
        34 => Op::ConvertCarryOver {
            year: r.u16()?,
            unit: u(r)?,
            cancellation: a(r)?,
        },
        27 => Op::CloseYear {
            year: r.u16()?,
            average_price_fen: r.u64()? as i64,
            retirement: a(r)?,
            date: 0,
            forced_reason: Some(CLOSED_BEFORE_DEADLINE_RULE.into()),
        },
        28 => Op::CloseYear {
            year: r.u16()?,
            average_price_fen: r.u64()? as i64,
            retirement: a(r)?,
            date: r.u32()?,
            forced_reason: match r.u8()? {
                0 => None,
                _ => Some(r.str()?),
            },
        },
        _ => return Err(RegistryError::Corrupt("op".into())),
    })
}
