//! The in-memory ledger: pure execution of transactions (no IO). Every operation checks
//! everything first and mutates only after, so a rejection changes nothing. Mutations mark
//! the records they touch so the storage layer writes exactly those.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::RegistryError;
use crate::model::{
    Account, AccountId, AccountStatus, AccountType, FreezeReason, Holding, Leg, Pledge,
    PledgeState, Proposal, ProposalState, TxKind, UnitDef, UnitId, UnitKind, permitted,
};
use crate::tx::{Enforcement, Op, Outcome, SETTLE_LEGS_MAX, SettleLeg, TEXT_BYTES_MAX, Tx};

/// An allocation or transfer, kept so the authority can reverse it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Movement {
    pub from: AccountId,
    pub to: AccountId,
    pub unit: UnitId,
    pub quantity_t: u64,
    pub reversed: bool,
}

/// Records changed by the current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    pub accounts: BTreeSet<AccountId>,
    pub units: BTreeSet<UnitId>,
    pub holdings: BTreeSet<(AccountId, UnitId)>,
    pub pledges: BTreeSet<u64>,
    pub proposals: BTreeSet<u64>,
    pub movements: BTreeSet<u64>,
    pub cycle: crate::cycle::CycleDirty,
    pub emissions: crate::emissions::EmissionsDirty,
    pub verification: crate::verification::VerificationDirty,
}

/// Everything the registry knows, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub accounts: BTreeMap<AccountId, Account>,
    pub units: BTreeMap<UnitId, UnitDef>,
    pub issued: BTreeMap<UnitId, u64>,
    pub holdings: BTreeMap<(AccountId, UnitId), Holding>,
    pub pledges: BTreeMap<u64, Pledge>,
    pub proposals: BTreeMap<u64, Proposal>,
    pub movements: BTreeMap<u64, Movement>,
    pub next_pledge: u64,
    pub next_proposal: u64,
    pub four_eyes_t: u64,
    /// The last engine sequence whose trades and withdrawals are settled here.
    pub settled_seq: u64,
    /// The compliance cycle: entities, activity, plans, runs, standings, deductions.
    pub cycle: crate::cycle::Cycle,
    /// Emissions accounting: factors, monitoring plans, monthly deposits, reports.
    pub emissions: crate::emissions::Emissions,
    /// Verification: the year's rules, bodies, engagements, each entity-year's file.
    pub verification: crate::verification::Verification,
    #[doc(hidden)]
    pub dirty: Dirty,
}

fn what(kind: TxKind) -> &'static str {
    match kind {
        TxKind::Issue => "issuance",
        TxKind::Allocate => "allocation",
        TxKind::Transfer => "transfer",
        TxKind::MoveToTrading => "a move to trading",
        TxKind::MoveFromTrading => "a move from trading",
        TxKind::Freeze => "a freeze",
        TxKind::Pledge => "a pledge",
        TxKind::PledgeEnforce => "pledge enforcement",
        TxKind::Surrender => "surrender",
        TxKind::VoluntaryCancel => "voluntary cancellation",
        TxKind::Reverse => "a reversal",
    }
}

/// Largest secured amount or claim of a pledge: RMB 10 trillion, in fen.
pub const PLEDGE_FEN_MAX: u64 = 1_000_000_000_000_000;

/// A claim on the sale of a pledge: at least a fen, at most what the pledge secures (when
/// it recorded an amount).
fn check_claim(p: &Pledge, claim_fen: u64) -> Result<u64, RegistryError> {
    let why = if claim_fen == 0 {
        "must be at least 1 fen"
    } else if claim_fen > PLEDGE_FEN_MAX {
        "more than RMB 10 trillion"
    } else if p.secured_fen > 0 && claim_fen > p.secured_fen {
        "more than the pledge secures"
    } else {
        return Ok(claim_fen);
    };
    Err(RegistryError::InvalidField {
        field: "claim_fen",
        why,
    })
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger {
            next_pledge: 1,
            next_proposal: 1,
            four_eyes_t: u64::MAX,
            ..Ledger::default()
        }
    }

    pub fn holding(&self, account: AccountId, unit: UnitId) -> Holding {
        self.holdings
            .get(&(account, unit))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn account(&self, id: AccountId) -> Result<&Account, RegistryError> {
        self.accounts
            .get(&id)
            .ok_or(RegistryError::UnknownAccount(id.0))
    }

    pub(crate) fn unit(&self, id: UnitId) -> Result<&UnitDef, RegistryError> {
        self.units.get(&id).ok_or(RegistryError::UnknownUnit(id.0))
    }

    /// The account may take `leg` of `kind` in `unit`, and its status allows it.
    pub(crate) fn check_leg(
        &self,
        id: AccountId,
        unit: UnitId,
        kind: TxKind,
        leg: Leg,
    ) -> Result<(), RegistryError> {
        let account = self.account(id)?;
        let def = self.unit(unit)?;
        if !permitted(kind, leg, account.kind, def.kind) {
            return Err(RegistryError::UnitNotAllowed {
                account: id.0,
                what: what(kind),
            });
        }
        match (account.status, leg) {
            (AccountStatus::Closed, _) => Err(RegistryError::AccountClosed(id.0)),
            (AccountStatus::Frozen, _) => Err(RegistryError::AccountFrozen(id.0)),
            (AccountStatus::Restricted, Leg::Debit) => Err(RegistryError::AccountRestricted(id.0)),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_available(
        &self,
        id: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<(), RegistryError> {
        if quantity_t == 0 {
            return Err(RegistryError::InvalidQuantity);
        }
        let available = self.holding(id, unit).registry_available_t;
        if available < quantity_t {
            return Err(RegistryError::InsufficientAvailable {
                available,
                wanted: quantity_t,
            });
        }
        Ok(())
    }

    fn check_credit_room(
        &self,
        id: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<(), RegistryError> {
        let total = self.holding(id, unit).total_t();
        total
            .checked_add(quantity_t)
            .map(|_| ())
            .ok_or(RegistryError::Overflow)
    }

    pub(crate) fn holding_mut(&mut self, id: AccountId, unit: UnitId) -> &mut Holding {
        self.dirty.holdings.insert((id, unit));
        self.holdings.entry((id, unit)).or_default()
    }

    pub(crate) fn move_available(
        &mut self,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) {
        self.holding_mut(from, unit).registry_available_t -= quantity_t;
        self.holding_mut(to, unit).registry_available_t += quantity_t;
    }

    pub(crate) fn freeze(
        &mut self,
        id: AccountId,
        unit: UnitId,
        reason: FreezeReason,
        quantity_t: u64,
    ) {
        let holding = self.holding_mut(id, unit);
        holding.registry_available_t -= quantity_t;
        *holding.frozen.entry(reason).or_default() += quantity_t;
    }

    /// Removes a freeze and returns its quantity (0 if there was none).
    pub(crate) fn take_frozen(&mut self, id: AccountId, unit: UnitId, reason: FreezeReason) -> u64 {
        self.holding_mut(id, unit)
            .frozen
            .remove(&reason)
            .unwrap_or(0)
    }

    /// Executes one transaction as journal entry `seq`.
    pub fn execute(&mut self, seq: u64, tx: &Tx) -> Result<Outcome, RegistryError> {
        self.dirty = Dirty::default();
        match &tx.op {
            Op::OpenAccount {
                account,
                kind,
                name,
            } => self.open_account(*account, *kind, name),
            Op::SetStatus { account, status } => {
                let mut record = self.account(*account)?.clone();
                record.status = *status;
                self.accounts.insert(*account, record);
                self.dirty.accounts.insert(*account);
                Ok(Outcome::Done)
            }
            Op::CreateUnit { unit, def } => self.create_unit(*unit, *def),
            Op::Issue {
                authority,
                unit,
                quantity_t,
            } => self.issue(*authority, *unit, *quantity_t),
            Op::Allocate {
                from,
                to,
                unit,
                quantity_t,
            } => self.movement(seq, TxKind::Allocate, *from, *to, *unit, *quantity_t),
            Op::Transfer {
                from,
                to,
                unit,
                quantity_t,
            } => self.transfer(seq, tx.actor, *from, *to, *unit, *quantity_t),
            Op::ApproveTransfer { proposal } => self.approve(seq, tx.actor, *proposal),
            Op::CancelProposal { proposal } => self.cancel_proposal(*proposal),
            Op::MoveToTrading {
                account,
                unit,
                quantity_t,
            } => self.move_to_trading(*account, *unit, *quantity_t),
            Op::MoveFromTrading {
                account,
                unit,
                quantity_t,
            } => self.move_from_trading(*account, *unit, *quantity_t),
            Op::Freeze {
                account,
                unit,
                quantity_t,
                order,
            } => self.judicial_freeze(*account, *unit, *quantity_t, *order),
            Op::Unfreeze {
                account,
                unit,
                order,
            } => {
                self.unit(*unit)?;
                self.account(*account)?;
                if !self
                    .holding(*account, *unit)
                    .frozen
                    .contains_key(&FreezeReason::Judicial(*order))
                {
                    return Err(RegistryError::FreezeNotFound(*order));
                }
                let quantity = self.take_frozen(*account, *unit, FreezeReason::Judicial(*order));
                self.holding_mut(*account, *unit).registry_available_t += quantity;
                Ok(Outcome::Done)
            }
            Op::PledgeRegister {
                pledgor,
                pledgee,
                unit,
                quantity_t,
                secured_fen,
            } => self.pledge(*pledgor, *pledgee, *unit, *quantity_t, *secured_fen),
            Op::PledgeRelease { pledge } => self.release(*pledge),
            Op::PledgeEnforce {
                pledge,
                how,
                claim_fen,
            } => self.enforce(*pledge, *how, *claim_fen),
            Op::Surrender {
                account,
                retirement,
                unit,
                quantity_t,
                year,
            } => {
                // A year with an allocation plan applies the plan's rules and counts the
                // surrender against the entity's obligation; a year without one only
                // refuses later vintages.
                let counted =
                    self.check_compliance_surrender(*account, *unit, *quantity_t, *year)?;
                if counted.is_none() && self.unit(*unit)?.vintage > *year {
                    return Err(RegistryError::InvalidField {
                        field: "year",
                        why: "the unit's vintage is later than the compliance year",
                    });
                }
                let outcome =
                    self.retire(TxKind::Surrender, *account, *retirement, *unit, *quantity_t)?;
                if let Some(ccer) = counted {
                    self.count_surrender(*account, *year, ccer, *quantity_t);
                }
                Ok(outcome)
            }
            Op::VoluntaryCancel {
                account,
                cancellation,
                unit,
                quantity_t,
            } => self.retire(
                TxKind::VoluntaryCancel,
                *account,
                *cancellation,
                *unit,
                *quantity_t,
            ),
            Op::Reverse { entry, reason } => self.reverse(*entry, reason),
            Op::SetFourEyesThreshold { quantity_t } => {
                if *quantity_t == 0 {
                    return Err(RegistryError::InvalidQuantity);
                }
                self.four_eyes_t = *quantity_t;
                Ok(Outcome::Done)
            }
            Op::Settle { through_seq, legs } => self.settle(*through_seq, legs, tx.timestamp_ns),
            Op::FixCarryOver {
                year,
                plan_version,
                date,
            } => self.fix_carry_over(*year, plan_version, *date),
            Op::ApplyCarryOver {
                year,
                account,
                unit,
                quantity_t,
                date,
            } => self.apply_carry_over(*year, *account, *unit, *quantity_t, *date),
            Op::ConvertCarryOver {
                year,
                unit,
                cancellation,
            } => self.convert_carry_over(*year, *unit, *cancellation),
            Op::RegisterPlan { plan } => self.register_plan(plan),
            Op::RegisterFactors { year, text } => self.register_factors(seq, *year, text),
            Op::SetMonitoringPlan {
                account,
                plan,
                date,
            } => self.set_monitoring_plan(seq, *account, plan, *date),
            Op::DepositMonth {
                account,
                month,
                evidence,
                correction,
                date,
            } => self.deposit_month(seq, *account, month, evidence, *correction, *date),
            Op::SubmitReport {
                account,
                year,
                date,
            } => self.submit_report(seq, *account, *year, *date),
            Op::ConfirmReport { account, year } => self.confirm_report(seq, *account, *year),
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
            | Op::DecideObjection { .. } => self.verification_op(seq, tx),
            Op::LoadEntities { rows } => self.load_entities(rows),
            Op::LoadActivity { year, rows } => self.load_activity(seq, *year, rows),
            Op::RecordVerified { year, rows } => self.record_verified(seq, *year, rows),
            Op::PreAllocate {
                year,
                plan_version,
                unit,
                authority,
            } => self.pre_allocate(seq, *year, plan_version, *unit, *authority),
            Op::TrueUp {
                year,
                plan_version,
                unit,
                authority,
            } => self.true_up(seq, *year, plan_version, *unit, *authority),
            Op::CloseYear {
                year,
                average_price_fen,
                retirement,
                date,
                forced_reason,
            } => self.close_year(
                seq,
                *year,
                (*average_price_fen, *retirement),
                *date,
                forced_reason.as_deref(),
            ),
        }
    }

    /// Applies a settlement batch all or nothing: every leg is checked against the net
    /// effect of the legs before it, then everything moves.
    fn settle(
        &mut self,
        through_seq: u64,
        legs: &[SettleLeg],
        timestamp_ns: u64,
    ) -> Result<Outcome, RegistryError> {
        if through_seq <= self.settled_seq {
            return Err(RegistryError::InvalidField {
                field: "through_seq",
                why: "that engine sequence is settled already",
            });
        }
        if legs.len() > SETTLE_LEGS_MAX {
            return Err(RegistryError::InvalidField {
                field: "legs",
                why: "more than 1,048,576 legs in one settlement",
            });
        }
        self.check_settlement(legs)?;
        for leg in legs {
            match *leg {
                SettleLeg::Trade {
                    seller,
                    buyer,
                    unit,
                    quantity_t,
                } => {
                    self.holding_mut(seller, unit).trading_t -= quantity_t;
                    self.holding_mut(buyer, unit).trading_t += quantity_t;
                }
                SettleLeg::Withdraw {
                    account,
                    unit,
                    quantity_t,
                } => {
                    let holding = self.holding_mut(account, unit);
                    holding.trading_t -= quantity_t;
                    holding.registry_available_t += quantity_t;
                }
            }
        }
        self.count_net_sales(legs, timestamp_ns);
        self.settled_seq = through_seq;
        Ok(Outcome::Done)
    }

    /// Every leg of a settlement checked against the net effect of the legs before it:
    /// no trading balance goes below zero, no balance overflows.
    fn check_settlement(&self, legs: &[SettleLeg]) -> Result<(), RegistryError> {
        let mut trading: BTreeMap<(AccountId, UnitId), u64> = BTreeMap::new();
        let mut check = |ledger: &Ledger, account: AccountId, unit: UnitId, delta: i128| {
            ledger.account(account)?;
            ledger.unit(unit)?;
            let now = *trading
                .entry((account, unit))
                .or_insert_with(|| ledger.holding(account, unit).trading_t);
            let after = i128::from(now) + delta;
            if after < 0 {
                return Err(RegistryError::InsufficientTrading {
                    available: now,
                    wanted: u64::try_from(-delta).unwrap_or(u64::MAX),
                });
            }
            let after = u64::try_from(after).map_err(|_| RegistryError::Overflow)?;
            trading.insert((account, unit), after);
            Ok(())
        };
        for leg in legs {
            match *leg {
                SettleLeg::Trade {
                    seller,
                    buyer,
                    unit,
                    quantity_t,
                } => {
                    if quantity_t == 0 {
                        return Err(RegistryError::InvalidQuantity);
                    }
                    check(self, seller, unit, -i128::from(quantity_t))?;
                    check(self, buyer, unit, i128::from(quantity_t))?;
                }
                SettleLeg::Withdraw {
                    account,
                    unit,
                    quantity_t,
                } => {
                    if quantity_t == 0 {
                        return Err(RegistryError::InvalidQuantity);
                    }
                    check(self, account, unit, -i128::from(quantity_t))?;
                    let available = self.holding(account, unit).registry_available_t;
                    available
                        .checked_add(quantity_t)
                        .ok_or(RegistryError::Overflow)?;
                }
            }
        }
        Ok(())
    }

    fn open_account(
        &mut self,
        id: AccountId,
        kind: AccountType,
        name: &str,
    ) -> Result<Outcome, RegistryError> {
        if self.accounts.contains_key(&id) {
            return Err(RegistryError::AccountExists(id.0));
        }
        if name.is_empty() || name.len() > TEXT_BYTES_MAX {
            return Err(RegistryError::InvalidField {
                field: "name",
                why: "must be 1 to 256 bytes",
            });
        }
        self.insert_account(id, kind, name);
        Ok(Outcome::Done)
    }

    pub(crate) fn insert_account(&mut self, id: AccountId, kind: AccountType, name: &str) {
        self.accounts.insert(
            id,
            Account {
                id,
                kind,
                status: AccountStatus::Open,
                name: name.to_string(),
            },
        );
        self.dirty.accounts.insert(id);
    }

    fn create_unit(&mut self, id: UnitId, def: UnitDef) -> Result<Outcome, RegistryError> {
        if self.units.contains_key(&id) {
            return Err(RegistryError::UnitExists(id.0));
        }
        if !(2013..=2100).contains(&def.vintage) {
            return Err(RegistryError::InvalidField {
                field: "vintage",
                why: "must be a year from 2013 to 2100",
            });
        }
        match def.kind {
            UnitKind::Cea if def.project_id != 0 || def.registered != 0 => {
                return Err(RegistryError::InvalidField {
                    field: "project_id",
                    why: "CEA units have no project",
                });
            }
            UnitKind::Ccer if def.project_id == 0 || def.registered < 20_120_101 => {
                return Err(RegistryError::InvalidField {
                    field: "project_id",
                    why: "CCER units need a project and a registration date",
                });
            }
            _ => {}
        }
        self.units.insert(id, def);
        self.issued.insert(id, 0);
        self.dirty.units.insert(id);
        Ok(Outcome::Done)
    }

    fn issue(
        &mut self,
        authority: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        self.check_leg(authority, unit, TxKind::Issue, Leg::Credit)?;
        if quantity_t == 0 {
            return Err(RegistryError::InvalidQuantity);
        }
        let issued = self.issued.get(&unit).copied().unwrap_or(0);
        let total = issued
            .checked_add(quantity_t)
            .ok_or(RegistryError::Overflow)?;
        self.check_credit_room(authority, unit, quantity_t)?;
        self.issued.insert(unit, total);
        self.dirty.units.insert(unit);
        self.holding_mut(authority, unit).registry_available_t += quantity_t;
        Ok(Outcome::Done)
    }

    fn check_movement(
        &self,
        kind: TxKind,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<(), RegistryError> {
        if from == to {
            return Err(RegistryError::InvalidField {
                field: "to",
                why: "must differ from the source account",
            });
        }
        self.check_leg(from, unit, kind, Leg::Debit)?;
        self.check_leg(to, unit, kind, Leg::Credit)?;
        self.check_available(from, unit, quantity_t)?;
        self.check_credit_room(to, unit, quantity_t)
    }

    fn movement(
        &mut self,
        seq: u64,
        kind: TxKind,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        self.check_movement(kind, from, to, unit, quantity_t)?;
        self.move_available(from, to, unit, quantity_t);
        self.record_movement(seq, from, to, unit, quantity_t);
        Ok(Outcome::Done)
    }

    fn record_movement(
        &mut self,
        seq: u64,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) {
        self.movements.insert(
            seq,
            Movement {
                from,
                to,
                unit,
                quantity_t,
                reversed: false,
            },
        );
        self.dirty.movements.insert(seq);
    }

    fn transfer(
        &mut self,
        seq: u64,
        actor: u64,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        if quantity_t < self.four_eyes_t {
            return self.movement(seq, TxKind::Transfer, from, to, unit, quantity_t);
        }
        self.check_movement(TxKind::Transfer, from, to, unit, quantity_t)?;
        let id = self.next_proposal;
        self.next_proposal += 1;
        self.freeze(from, unit, FreezeReason::Pending(id), quantity_t);
        self.proposals.insert(
            id,
            Proposal {
                id,
                from,
                to,
                unit,
                quantity_t,
                proposer: actor,
                state: ProposalState::Pending,
            },
        );
        self.dirty.proposals.insert(id);
        Ok(Outcome::Proposed { proposal: id })
    }

    fn pending_proposal(&self, id: u64) -> Result<Proposal, RegistryError> {
        let proposal = *self
            .proposals
            .get(&id)
            .ok_or(RegistryError::ProposalNotFound(id))?;
        if proposal.state != ProposalState::Pending {
            return Err(RegistryError::ProposalNotPending(id));
        }
        Ok(proposal)
    }

    fn approve(&mut self, seq: u64, actor: u64, id: u64) -> Result<Outcome, RegistryError> {
        let p = self.pending_proposal(id)?;
        if actor == p.proposer {
            return Err(RegistryError::SameApprover);
        }
        self.check_leg(p.to, p.unit, TxKind::Transfer, Leg::Credit)?;
        self.check_credit_room(p.to, p.unit, p.quantity_t)?;
        let quantity = self.take_frozen(p.from, p.unit, FreezeReason::Pending(id));
        debug_assert_eq!(quantity, p.quantity_t);
        self.holding_mut(p.to, p.unit).registry_available_t += quantity;
        self.proposals.insert(
            id,
            Proposal {
                state: ProposalState::Approved,
                ..p
            },
        );
        self.dirty.proposals.insert(id);
        self.record_movement(seq, p.from, p.to, p.unit, p.quantity_t);
        Ok(Outcome::Done)
    }

    fn cancel_proposal(&mut self, id: u64) -> Result<Outcome, RegistryError> {
        let p = self.pending_proposal(id)?;
        let quantity = self.take_frozen(p.from, p.unit, FreezeReason::Pending(id));
        self.holding_mut(p.from, p.unit).registry_available_t += quantity;
        self.proposals.insert(
            id,
            Proposal {
                state: ProposalState::Cancelled,
                ..p
            },
        );
        self.dirty.proposals.insert(id);
        Ok(Outcome::Done)
    }

    fn move_to_trading(
        &mut self,
        id: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        self.check_leg(id, unit, TxKind::MoveToTrading, Leg::Debit)?;
        self.check_available(id, unit, quantity_t)?;
        let holding = self.holding_mut(id, unit);
        holding.registry_available_t -= quantity_t;
        holding.trading_t += quantity_t;
        Ok(Outcome::Done)
    }

    fn move_from_trading(
        &mut self,
        id: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        self.check_leg(id, unit, TxKind::MoveFromTrading, Leg::Credit)?;
        if quantity_t == 0 {
            return Err(RegistryError::InvalidQuantity);
        }
        let trading = self.holding(id, unit).trading_t;
        if trading < quantity_t {
            return Err(RegistryError::InsufficientTrading {
                available: trading,
                wanted: quantity_t,
            });
        }
        let holding = self.holding_mut(id, unit);
        holding.trading_t -= quantity_t;
        holding.registry_available_t += quantity_t;
        Ok(Outcome::Done)
    }

    fn judicial_freeze(
        &mut self,
        id: AccountId,
        unit: UnitId,
        quantity_t: u64,
        order: u64,
    ) -> Result<Outcome, RegistryError> {
        let account = self.account(id)?;
        let def = self.unit(unit)?;
        if !permitted(TxKind::Freeze, Leg::Debit, account.kind, def.kind) {
            return Err(RegistryError::UnitNotAllowed {
                account: id.0,
                what: what(TxKind::Freeze),
            });
        }
        if account.status == AccountStatus::Closed {
            return Err(RegistryError::AccountClosed(id.0));
        }
        self.check_available(id, unit, quantity_t)?;
        self.freeze(id, unit, FreezeReason::Judicial(order), quantity_t);
        Ok(Outcome::Done)
    }

    fn pledge(
        &mut self,
        pledgor: AccountId,
        pledgee: AccountId,
        unit: UnitId,
        quantity_t: u64,
        secured_fen: u64,
    ) -> Result<Outcome, RegistryError> {
        if secured_fen > PLEDGE_FEN_MAX {
            return Err(RegistryError::InvalidField {
                field: "secured_fen",
                why: "more than RMB 10 trillion",
            });
        }
        self.check_leg(pledgor, unit, TxKind::Pledge, Leg::Debit)?;
        self.check_leg(pledgee, unit, TxKind::Pledge, Leg::Credit)?;
        self.check_available(pledgor, unit, quantity_t)?;
        let id = self.next_pledge;
        self.next_pledge += 1;
        self.freeze(pledgor, unit, FreezeReason::Pledge(id), quantity_t);
        self.pledges.insert(
            id,
            Pledge {
                id,
                pledgor,
                pledgee,
                unit,
                quantity_t,
                state: PledgeState::Registered,
                secured_fen,
                claim_fen: 0,
            },
        );
        self.dirty.pledges.insert(id);
        Ok(Outcome::Pledged { pledge: id })
    }

    fn active_pledge(&self, id: u64) -> Result<Pledge, RegistryError> {
        let pledge = *self
            .pledges
            .get(&id)
            .ok_or(RegistryError::PledgeNotFound(id))?;
        if pledge.state != PledgeState::Registered {
            return Err(RegistryError::PledgeNotActive(id));
        }
        Ok(pledge)
    }

    fn release(&mut self, id: u64) -> Result<Outcome, RegistryError> {
        let p = self.active_pledge(id)?;
        let quantity = self.take_frozen(p.pledgor, p.unit, FreezeReason::Pledge(id));
        self.holding_mut(p.pledgor, p.unit).registry_available_t += quantity;
        self.pledges.insert(
            id,
            Pledge {
                state: PledgeState::Released,
                ..p
            },
        );
        self.dirty.pledges.insert(id);
        Ok(Outcome::Done)
    }

    /// To the pledgee: the units become its own. For auction: they go to the pledgor's
    /// trading position, where the exchange holds them for the pledgee's sale (the claim
    /// is what the sale pays the pledgee first).
    fn enforce(
        &mut self,
        id: u64,
        how: Enforcement,
        claim_fen: Option<u64>,
    ) -> Result<Outcome, RegistryError> {
        let p = self.active_pledge(id)?;
        let (state, claim_fen) = match how {
            Enforcement::ToPledgee => {
                if claim_fen.is_some() {
                    return Err(RegistryError::InvalidField {
                        field: "claim_fen",
                        why: "only an enforcement for auction has a claim",
                    });
                }
                self.check_leg(p.pledgee, p.unit, TxKind::PledgeEnforce, Leg::Credit)?;
                self.check_credit_room(p.pledgee, p.unit, p.quantity_t)?;
                let quantity = self.take_frozen(p.pledgor, p.unit, FreezeReason::Pledge(id));
                self.holding_mut(p.pledgee, p.unit).registry_available_t += quantity;
                (PledgeState::EnforcedToPledgee, 0)
            }
            Enforcement::ForAuction => {
                let claim_fen = claim_fen.map(|c| check_claim(&p, c)).transpose()?;
                let quantity = self.take_frozen(p.pledgor, p.unit, FreezeReason::Pledge(id));
                self.holding_mut(p.pledgor, p.unit).trading_t += quantity;
                (PledgeState::EnforcedForAuction, claim_fen.unwrap_or(0))
            }
        };
        let enforced = Pledge {
            state,
            claim_fen,
            ..p
        };
        self.pledges.insert(id, enforced);
        self.dirty.pledges.insert(id);
        Ok(Outcome::Done)
    }

    /// Surrender or voluntary cancellation: units leave for a retirement / cancellation account.
    fn retire(
        &mut self,
        kind: TxKind,
        from: AccountId,
        to: AccountId,
        unit: UnitId,
        quantity_t: u64,
    ) -> Result<Outcome, RegistryError> {
        self.check_movement(kind, from, to, unit, quantity_t)?;
        self.move_available(from, to, unit, quantity_t);
        Ok(Outcome::Done)
    }

    fn reverse(&mut self, entry: u64, reason: &str) -> Result<Outcome, RegistryError> {
        if reason.is_empty() || reason.len() > TEXT_BYTES_MAX {
            return Err(RegistryError::InvalidField {
                field: "reason",
                why: "must be 1 to 256 bytes",
            });
        }
        let m = *self
            .movements
            .get(&entry)
            .ok_or(RegistryError::NotReversible(entry))?;
        if m.reversed {
            return Err(RegistryError::NotReversible(entry));
        }
        self.check_leg(m.to, m.unit, TxKind::Reverse, Leg::Debit)?;
        self.check_leg(m.from, m.unit, TxKind::Reverse, Leg::Credit)?;
        self.check_available(m.to, m.unit, m.quantity_t)?;
        self.move_available(m.to, m.from, m.unit, m.quantity_t);
        self.movements.insert(
            entry,
            Movement {
                reversed: true,
                ..m
            },
        );
        self.dirty.movements.insert(entry);
        Ok(Outcome::Done)
    }

    /// Per unit, issued equals the sum of every holding (retired and cancelled included);
    /// every pledge and pending proposal is frozen exactly; no empty freeze entries; the
    /// compliance cycle's entities and held allocations agree with the accounts.
    pub fn check_invariants(&self) -> Result<(), String> {
        let held = self.check_holdings()?;
        for (unit, issued) in &self.issued {
            let sum = held.get(unit).copied().unwrap_or(0);
            if sum != *issued {
                return Err(format!(
                    "unit {}: issued {issued} t but holdings add up to {sum} t",
                    unit.0
                ));
            }
        }
        self.check_frozen_records()?;
        self.check_cycle()
    }

    /// Every holding of a known account and unit, every freeze entry matched by its record;
    /// returns the sum held per unit.
    fn check_holdings(&self) -> Result<BTreeMap<UnitId, u64>, String> {
        let mut held: BTreeMap<UnitId, u64> = BTreeMap::new();
        for ((account, unit), holding) in &self.holdings {
            if !self.accounts.contains_key(account) || !self.units.contains_key(unit) {
                return Err(format!(
                    "holding of unknown account {} or unit {}",
                    account.0, unit.0
                ));
            }
            if holding.frozen.values().any(|q| *q == 0) {
                return Err(format!(
                    "account {} unit {}: empty freeze entry",
                    account.0, unit.0
                ));
            }
            *held.entry(*unit).or_default() += holding.total_t();
            for (reason, quantity) in &holding.frozen {
                if self.freeze_expected(*account, *unit, reason, *quantity) != Some(*quantity) {
                    return Err(format!(
                        "account {} unit {}: freeze {reason:?} of {quantity} t has no matching record",
                        account.0, unit.0
                    ));
                }
            }
        }
        Ok(held)
    }

    /// What a freeze entry of `account`'s `unit` should hold: its pledge's or proposal's
    /// quantity while that is live (a judicial freeze is its own record).
    fn freeze_expected(
        &self,
        account: AccountId,
        unit: UnitId,
        reason: &FreezeReason,
        quantity: u64,
    ) -> Option<u64> {
        match reason {
            FreezeReason::Pledge(id) => self
                .pledges
                .get(id)
                .filter(|p| {
                    p.state == PledgeState::Registered && p.pledgor == account && p.unit == unit
                })
                .map(|p| p.quantity_t),
            FreezeReason::Pending(id) => self
                .proposals
                .get(id)
                .filter(|p| {
                    p.state == ProposalState::Pending && p.from == account && p.unit == unit
                })
                .map(|p| p.quantity_t),
            FreezeReason::CarryOver(id) => self
                .cycle
                .applications
                .get(id)
                .filter(|a| !a.converted && a.account == account && a.unit == unit)
                .map(|a| a.quantity_t),
            FreezeReason::Judicial(_) => Some(quantity),
        }
    }

    /// Every registered pledge and pending proposal is frozen exactly.
    fn check_frozen_records(&self) -> Result<(), String> {
        let frozen =
            |account, unit, reason| self.holding(account, unit).frozen.get(&reason).copied();
        for p in self
            .pledges
            .values()
            .filter(|p| p.state == PledgeState::Registered)
        {
            let f = frozen(p.pledgor, p.unit, FreezeReason::Pledge(p.id));
            if f != Some(p.quantity_t) {
                return Err(format!(
                    "pledge {}: {} t pledged, {f:?} frozen",
                    p.id, p.quantity_t
                ));
            }
        }
        for p in self
            .proposals
            .values()
            .filter(|p| p.state == ProposalState::Pending)
        {
            let f = frozen(p.from, p.unit, FreezeReason::Pending(p.id));
            if f != Some(p.quantity_t) {
                return Err(format!(
                    "proposal {}: {} t proposed, {f:?} frozen",
                    p.id, p.quantity_t
                ));
            }
        }
        Ok(())
    }

    /// Every covered entity is a covered-entity account of its sector, no standing took
    /// back more than it credited, and the authority holds at least what it keeps for
    /// differentiated entities.
    fn check_cycle(&self) -> Result<(), String> {
        for (account, e) in &self.cycle.entities {
            if self.accounts.get(account).map(|a| a.kind)
                != Some(AccountType::CoveredEntity(e.sector))
            {
                return Err(format!(
                    "entity {} is not a covered-entity account of its sector",
                    account.0
                ));
            }
        }
        // What was taken back never exceeds what was credited (`Standing::credited_t`).
        for ((year, account), s) in &self.cycle.standing {
            let forced = s.closing.map_or(0, |c| c.forced_t);
            let given = s.delivered_t + s.held_t + forced + s.deducted_t;
            if s.clawed_t + s.excess_owed_t > given {
                return Err(format!(
                    "{year} entity {}: {} t clawed back or owed of {given} t credited",
                    account.0,
                    s.clawed_t + s.excess_owed_t
                ));
            }
        }
        for (year, y) in &self.cycle.years {
            let Some(run) = y.trued.as_ref().or(y.pre.as_ref()) else {
                continue;
            };
            let held: u64 = self
                .cycle
                .standing
                .range((*year, AccountId(0))..=(*year, AccountId(u64::MAX)))
                .map(|(_, s)| s.held_t)
                .sum();
            let available = self.holding(run.authority, run.unit).registry_available_t;
            if held > available {
                return Err(format!(
                    "{year}: {held} t held for differentiated entities, the authority has {available} t"
                ));
            }
        }
        Ok(())
    }
}
