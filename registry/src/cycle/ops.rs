//! The compliance cycle's operations on the ledger: every check passes before anything
//! changes, and the allowances they move are ordinary holding movements.

use super::*;

fn row_err(row: usize, field: &'static str, why: impl Into<String>) -> RegistryError {
    RegistryError::InvalidRow {
        row,
        field,
        why: why.into(),
    }
}

fn cycle_err(code: CycleCode, why: impl Into<String>) -> RegistryError {
    RegistryError::Cycle {
        code,
        why: why.into(),
    }
}

fn check_figure(row: usize, field: &'static str, v: Decimal) -> Result<(), RegistryError> {
    if v.is_sign_negative() && !v.is_zero() {
        return Err(row_err(row, field, "must not be negative"));
    }
    if v > Decimal::from(ACTIVITY_MAX) {
        return Err(row_err(row, field, "must be at most 10,000,000,000"));
    }
    if v.scale() > ACTIVITY_SCALE_MAX {
        return Err(row_err(row, field, "at most 6 decimal places"));
    }
    Ok(())
}

/// Hours in the longest year: no unit generates more than its capacity for all of them.
const HOURS_PER_YEAR_MAX: u32 = 366 * 24;

/// A generating unit's electricity is physically possible: at most its capacity for every
/// hour of the year (a plausibility bound, so a typo of a few zeros is caught at entry).
fn check_generation(row: usize, capacity_mw: u32, mwh: Decimal) -> Result<(), RegistryError> {
    let most = Decimal::from(capacity_mw) * Decimal::from(HOURS_PER_YEAR_MAX);
    if mwh > most {
        return Err(row_err(
            row,
            "electricity_mwh",
            format!("more than a {capacity_mw} MW unit can generate in a year ({most} MWh)"),
        ));
    }
    Ok(())
}

fn check_label(row: usize, field: &'static str, v: &str, max: usize) -> Result<(), RegistryError> {
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(row_err(
            row,
            field,
            format!("must be 1 to {max} bytes without control characters"),
        ));
    }
    Ok(())
}

/// A facility fits its entity's sector: generating units for power, product lines for
/// industry.
fn check_facility(i: usize, sector: Sector, kind: &FacilityKind) -> Result<(), RegistryError> {
    match kind {
        FacilityKind::Power { capacity_mw, .. } => {
            if sector != Sector::Power {
                return Err(row_err(
                    i,
                    "facility_kind",
                    "generating units belong to power entities",
                ));
            }
            if *capacity_mw == 0 || *capacity_mw > CAPACITY_MW_MAX {
                return Err(row_err(i, "capacity_mw", "must be 1 to 10,000 MW"));
            }
        }
        FacilityKind::Industry {
            product_line,
            process,
        } => {
            if sector == Sector::Power {
                return Err(row_err(
                    i,
                    "facility_kind",
                    "power entities have generating units",
                ));
            }
            if !process.fits(sector) {
                return Err(row_err(
                    i,
                    "process",
                    "steel: ironmaking, sintering or other; cement: clinker_line or other; aluminium: electrolysis or other",
                ));
            }
            check_label(i, "product_line", product_line, LABEL_BYTES_MAX)?;
        }
    }
    Ok(())
}

/// An allocation error, with missing activity data under the cycle's own reason code.
fn allocation_err(year: u16, e: crate::allocation::AllocationError) -> RegistryError {
    match e {
        crate::allocation::AllocationError::ActivityMissing { account, what } => cycle_err(
            CycleCode::ActivityMissing,
            format!("entity {account}, {year}: {what}"),
        ),
        e => e.into(),
    }
}

/// A process's activity: figures in range, and only what its process reports (PFCs for
/// electrolysis, the carbide-slag rate for clinker lines, each special case where it
/// belongs).
fn check_process_activity(
    i: usize,
    process: Process,
    activity: &Activity,
) -> Result<(), RegistryError> {
    let Activity::Industry {
        output_t,
        emissions_t,
        pfc_co2e_t,
        carbide_slag_rate,
        special,
    } = *activity
    else {
        return Ok(());
    };
    check_figure(i, "output_t", output_t)?;
    check_figure(i, "emissions_t", emissions_t)?;
    check_figure(i, "pfc_co2e_t", pfc_co2e_t)?;
    check_figure(i, "carbide_slag_rate", carbide_slag_rate)?;
    if !pfc_co2e_t.is_zero() && process != Process::Electrolysis {
        return Err(row_err(
            i,
            "pfc_co2e_t",
            "only an electrolysis process emits PFCs",
        ));
    }
    if !carbide_slag_rate.is_zero() && process != Process::ClinkerLine {
        return Err(row_err(
            i,
            "carbide_slag_rate",
            "only a clinker line has a carbide-slag rate",
        ));
    }
    if carbide_slag_rate > Decimal::ONE {
        return Err(row_err(
            i,
            "carbide_slag_rate",
            "must be a fraction from 0 to 1",
        ));
    }
    if let Some(case) = special
        && !case.fits(process)
    {
        return Err(row_err(
            i,
            "special_case",
            format!(
                "{} does not apply to a {} process",
                case.name(),
                process.name()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn open_year(cycle: &Cycle, year: u16) -> Result<Option<&Year>, RegistryError> {
    let y = cycle.years.get(&year);
    if y.is_some_and(|y| y.closed.is_some()) {
        return Err(RegistryError::Surrender(
            compliance::SurrenderError::YearClosed(year),
        ));
    }
    Ok(y)
}

/// The movements an issuance run makes, computed before anything changes.
#[derive(Debug, Default)]
struct Moves {
    issue_t: u64,
    deliver: Vec<(AccountId, u64)>,
    claw: Vec<(AccountId, u64)>,
}

/// What an issuance run changes, checked before anything changes.
#[derive(Debug, Default)]
struct AllocationChanges {
    moves: Moves,
    standings: Vec<(AccountId, Standing)>,
    /// Accounts whose deduction owed changes, with the new figure.
    owed_after: Vec<(AccountId, u64)>,
}

impl Ledger {
    /// The cycle ops all work on a copy of the cycle state and swap it in only when every
    /// check has passed and the holding movements are known to be possible.
    pub(crate) fn register_plan(&mut self, plan: &Plan) -> Result<Outcome, RegistryError> {
        plan.validate()
            .map_err(|(field, why)| RegistryError::InvalidField { field, why })?;
        open_year(&self.cycle, plan.year)?;
        if let Some(existing) = self
            .cycle
            .years
            .get(&plan.year)
            .and_then(|y| y.plan(&plan.version))
        {
            return if existing == plan {
                Ok(Outcome::Unchanged)
            } else {
                Err(RegistryError::PlanExists {
                    year: plan.year,
                    version: plan.version.clone(),
                })
            };
        }
        if self
            .cycle
            .years
            .get(&plan.year)
            .is_some_and(|y| y.plans.len() >= PLANS_PER_YEAR_MAX)
        {
            return Err(RegistryError::InvalidField {
                field: "version",
                why: "at most 32 plan versions per compliance year",
            });
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        self.cycle
            .year_mut(plan.year, &mut dirty)
            .plans
            .push(plan.clone());
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    pub(crate) fn load_entities(&mut self, rows: &[EntityRow]) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > ENTITY_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 5,000 entities",
            });
        }
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            if !seen.insert(row.account) {
                return Err(row_err(i, "account_id", "appears twice in this load"));
            }
            self.check_entity_row(i, row)?;
        }
        self.check_credit_codes(rows)?;
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            if !self.accounts.contains_key(&row.account) {
                self.insert_account(
                    row.account,
                    AccountType::CoveredEntity(row.sector),
                    &row.name,
                );
            }
            let credit_code = match self.cycle.entities.get(&row.account) {
                Some(e) if row.credit_code.is_empty() => e.credit_code.clone(),
                _ => row.credit_code.clone(),
            };
            self.cycle.entities.insert(
                row.account,
                Entity {
                    sector: row.sector,
                    province: row.province.clone(),
                    differentiated: row.differentiated,
                    facilities: row.facilities.iter().cloned().collect(),
                    credit_code,
                },
            );
            dirty.entities.insert(row.account);
        }
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    /// One covered-entity account per legal entity: a code given in a load is well formed,
    /// appears once in it, and is not held by another entity's account (a reload of the same
    /// account with its own code is fine).
    fn check_credit_codes(&self, rows: &[EntityRow]) -> Result<(), RegistryError> {
        let mut holders: BTreeMap<&str, AccountId> = self
            .cycle
            .entities
            .iter()
            .filter(|(_, e)| !e.credit_code.is_empty())
            .map(|(a, e)| (e.credit_code.as_str(), *a))
            .collect();
        // Accounts reloaded in this load give up their old code unless they keep it.
        for row in rows.iter().filter(|r| !r.credit_code.is_empty()) {
            if let Some(e) = self.cycle.entities.get(&row.account) {
                holders.remove(e.credit_code.as_str());
            }
        }
        for (i, row) in rows.iter().enumerate() {
            if row.credit_code.is_empty() {
                continue;
            }
            crate::uscc::check_uscc(&row.credit_code)
                .map_err(|why| row_err(i, "credit_code", why))?;
            match holders.insert(row.credit_code.as_str(), row.account) {
                Some(holder) if holder != row.account => {
                    return Err(RegistryError::CreditCodeTaken {
                        row: i,
                        code: row.credit_code.clone(),
                        holder: holder.0,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One entity row of a load: its account (new, or a covered entity of its sector),
    /// labels and facilities.
    fn check_entity_row(&self, i: usize, row: &EntityRow) -> Result<(), RegistryError> {
        if row.account.0 == 0 {
            return Err(row_err(i, "account_id", "must be positive"));
        }
        check_label(i, "name", &row.name, TEXT_BYTES_MAX)?;
        check_label(i, "province", &row.province, LABEL_BYTES_MAX)?;
        if let Some(account) = self.accounts.get(&row.account)
            && account.kind != AccountType::CoveredEntity(row.sector)
        {
            return Err(row_err(
                i,
                "account_id",
                "exists and is not a covered entity of this sector",
            ));
        }
        if row.facilities.is_empty() || row.facilities.len() > FACILITIES_PER_ENTITY_MAX {
            return Err(row_err(i, "facilities", "must hold 1 to 64 facilities"));
        }
        let mut ids = BTreeSet::new();
        for (id, kind) in &row.facilities {
            if !ids.insert(*id) {
                return Err(row_err(i, "facility_id", "appears twice for this entity"));
            }
            check_facility(i, row.sector, kind)?;
        }
        Ok(())
    }

    pub(crate) fn load_activity(
        &mut self,
        seq: u64,
        year: u16,
        rows: &[ActivityRow],
    ) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > DATA_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 20,000 rows",
            });
        }
        open_year(&self.cycle, year)?;
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let entity =
                self.cycle.entities.get(&row.account).ok_or_else(|| {
                    row_err(i, "account_id", "is not a registered covered entity")
                })?;
            let facility = entity
                .facilities
                .get(&row.facility)
                .ok_or_else(|| row_err(i, "facility_id", "is not a facility of this entity"))?;
            if !seen.insert((row.account, row.facility)) {
                return Err(row_err(i, "facility_id", "appears twice in this load"));
            }
            match (facility, row.activity) {
                (
                    FacilityKind::Power { capacity_mw, .. },
                    Activity::Power {
                        electricity_mwh,
                        heat_gj,
                        load_factor,
                        emissions_t,
                    },
                ) => {
                    check_figure(i, "electricity_mwh", electricity_mwh)?;
                    check_generation(i, *capacity_mw, electricity_mwh)?;
                    check_figure(i, "heat_gj", heat_gj)?;
                    check_figure(i, "emissions_t", emissions_t)?;
                    check_figure(i, "load_factor", load_factor)?;
                    if load_factor > Decimal::ONE {
                        return Err(row_err(i, "load_factor", "must be a fraction from 0 to 1"));
                    }
                }
                (FacilityKind::Industry { process, .. }, activity @ Activity::Industry { .. }) => {
                    check_process_activity(i, *process, &activity)?;
                }
                (FacilityKind::Power { .. }, _) => {
                    return Err(row_err(
                        i,
                        "electricity_mwh",
                        "a generating unit reports electricity, heat, load factor and emissions",
                    ));
                }
                (FacilityKind::Industry { .. }, _) => {
                    return Err(row_err(i, "output_t", "a product line reports its output"));
                }
            }
        }
        let before = self.snapshot_if_trued(year);
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            self.cycle
                .activity
                .insert((year, row.account, row.facility), row.activity);
            dirty.activity.insert((year, row.account, row.facility));
        }
        self.dirty.cycle = dirty;
        self.recompute_or_restore(seq, year, before)
    }

    pub(crate) fn record_verified(
        &mut self,
        seq: u64,
        year: u16,
        rows: &[VerifiedRow],
    ) -> Result<Outcome, RegistryError> {
        if rows.is_empty() || rows.len() > DATA_ROWS_MAX {
            return Err(RegistryError::InvalidField {
                field: "rows",
                why: "must hold 1 to 20,000 rows",
            });
        }
        open_year(&self.cycle, year)?;
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let entity =
                self.cycle.entities.get(&row.account).ok_or_else(|| {
                    row_err(i, "account_id", "is not a registered covered entity")
                })?;
            if !seen.insert(row.account) {
                return Err(row_err(i, "account_id", "appears twice in this load"));
            }
            if row.pfc_co2e_t > 0 && entity.sector != Sector::Aluminium {
                return Err(row_err(
                    i,
                    "pfc_co2e_t",
                    "PFC emissions are reported by aluminium entities only",
                ));
            }
            if row.co2_t > VERIFIED_T_MAX
                || row.pfc_co2e_t > VERIFIED_T_MAX
                || row.co2_t + row.pfc_co2e_t > VERIFIED_T_MAX
            {
                return Err(row_err(i, "co2_t", "at most 1,000,000,000 t per entity"));
            }
        }
        let before = self.snapshot_if_trued(year);
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for row in rows {
            let s = self.cycle.standing_mut(year, row.account, &mut dirty);
            s.verified_co2_t = Some(row.co2_t);
            s.verified_pfc_t = row.pfc_co2e_t;
        }
        self.dirty.cycle = dirty;
        self.recompute_or_restore(seq, year, before)
    }

    /// After a data correction in a year already trued up: re-run the true-up with the same
    /// plan, topping up or clawing back. On failure the cycle state is put back.
    fn snapshot_if_trued(&self, year: u16) -> Option<Cycle> {
        self.cycle
            .years
            .get(&year)
            .is_some_and(|y| y.trued.is_some())
            .then(|| self.cycle.clone())
    }

    fn recompute_or_restore(
        &mut self,
        seq: u64,
        year: u16,
        before: Option<Cycle>,
    ) -> Result<Outcome, RegistryError> {
        let (Some(before), Some(run)) = (
            before,
            self.cycle.years.get(&year).and_then(|y| y.trued.clone()),
        ) else {
            return Ok(Outcome::Done);
        };
        match self.true_up(seq, year, &run.plan_version, run.unit, run.authority) {
            Ok(_) => Ok(Outcome::Done),
            Err(e) => {
                self.cycle = before;
                self.dirty.cycle = CycleDirty::default();
                Err(e)
            }
        }
    }

    fn check_run(
        &self,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Plan, RegistryError> {
        let y = open_year(&self.cycle, year)?;
        let plan = y
            .and_then(|y| y.plan(version))
            .ok_or_else(|| RegistryError::PlanNotFound {
                year,
                version: version.to_string(),
            })?
            .clone();
        let def = self.unit(unit)?;
        if def.kind != UnitKind::Cea || def.vintage != year {
            return Err(RegistryError::InvalidField {
                field: "unit",
                why: "allocation is made in CEA of the compliance year's vintage",
            });
        }
        if self.account(authority)?.kind != AccountType::NationalAuthority {
            return Err(RegistryError::InvalidField {
                field: "authority",
                why: "allocation runs from the national authority's account",
            });
        }
        Ok(plan)
    }

    /// Moves each entity's credited allocation to `targets` (account -> tonnes to reach),
    /// netting deductions owed and clawing back any excess. Checks first, then changes.
    fn settle_allocations(
        &mut self,
        year: u16,
        unit: UnitId,
        authority: AccountId,
        targets: &[(AccountId, u64)],
        dirty: &mut CycleDirty,
    ) -> Result<Moves, RegistryError> {
        let changes = self.allocation_changes(year, unit, targets)?;
        self.check_authority_moves(authority, unit, &changes.moves)?;
        // Everything checked: change.
        Ok(self.apply_allocation_changes(year, unit, authority, changes, dirty))
    }

    /// The standings, deductions and movements that bring every target's credited
    /// allocation to its target; nothing changed yet.
    fn allocation_changes(
        &self,
        year: u16,
        unit: UnitId,
        targets: &[(AccountId, u64)],
    ) -> Result<AllocationChanges, RegistryError> {
        let mut c = AllocationChanges::default();
        for &(account, target) in targets {
            let mut s = self.cycle.standing(year, account);
            let owed_before = self.cycle.deductions.get(&account).copied().unwrap_or(0);
            let credited = s.credited_t();
            let owed = if target > credited {
                let due = target - credited;
                self.top_up(account, unit, &mut s, due, owed_before, &mut c.moves)?
            } else if target < credited {
                let need = credited - target;
                self.take_back(account, unit, &mut s, need, owed_before, &mut c.moves)
            } else {
                owed_before
            };
            if owed != owed_before {
                c.owed_after.push((account, owed));
            }
            c.standings.push((account, s));
        }
        Ok(c)
    }

    /// `due` more for `account`: first absorbed by a deduction it owes, the rest issued and
    /// delivered to its account (or held for it by the authority when differentiated).
    /// Returns the deduction it still owes.
    fn top_up(
        &self,
        account: AccountId,
        unit: UnitId,
        s: &mut Standing,
        due: u64,
        owed: u64,
        moves: &mut Moves,
    ) -> Result<u64, RegistryError> {
        let applied = due.min(owed);
        s.deducted_t += applied;
        let give = due - applied;
        if give > 0 {
            moves.issue_t = moves
                .issue_t
                .checked_add(give)
                .ok_or(RegistryError::Overflow)?;
            let differentiated = self
                .cycle
                .entities
                .get(&account)
                .is_some_and(|e| e.differentiated);
            if differentiated {
                s.held_t += give;
            } else {
                self.check_leg(account, unit, TxKind::Allocate, Leg::Credit)?;
                s.delivered_t += give;
                moves.deliver.push((account, give));
            }
        }
        Ok(owed - applied)
    }

    /// `need` back from `account`: first from what the authority holds for it, then clawed
    /// back from its account as far as it has it; the rest becomes a deduction owed.
    /// Returns the deduction it owes.
    fn take_back(
        &self,
        account: AccountId,
        unit: UnitId,
        s: &mut Standing,
        mut need: u64,
        owed: u64,
        moves: &mut Moves,
    ) -> u64 {
        let from_held = need.min(s.held_t);
        s.held_t -= from_held;
        need -= from_held;
        let reversible = self
            .check_leg(account, unit, TxKind::Reverse, Leg::Debit)
            .is_ok();
        let available = if reversible {
            self.holding(account, unit).registry_available_t
        } else {
            0
        };
        let take = need.min(available);
        if take > 0 {
            s.clawed_t += take;
            moves.claw.push((account, take));
            need -= take;
        }
        s.excess_owed_t += need;
        owed + need
    }

    /// The authority's side of the movements: it may take the issuance, allocate and take
    /// back, and nothing overflows.
    fn check_authority_moves(
        &self,
        authority: AccountId,
        unit: UnitId,
        moves: &Moves,
    ) -> Result<(), RegistryError> {
        if moves.issue_t > 0 {
            self.check_leg(authority, unit, TxKind::Issue, Leg::Credit)?;
            let issued = self.issued.get(&unit).copied().unwrap_or(0);
            issued
                .checked_add(moves.issue_t)
                .ok_or(RegistryError::Overflow)?;
            self.holding(authority, unit)
                .total_t()
                .checked_add(moves.issue_t)
                .ok_or(RegistryError::Overflow)?;
        }
        if !moves.deliver.is_empty() {
            self.check_leg(authority, unit, TxKind::Allocate, Leg::Debit)?;
        }
        if !moves.claw.is_empty() {
            self.check_leg(authority, unit, TxKind::Reverse, Leg::Credit)?;
        }
        Ok(())
    }

    fn apply_allocation_changes(
        &mut self,
        year: u16,
        unit: UnitId,
        authority: AccountId,
        changes: AllocationChanges,
        dirty: &mut CycleDirty,
    ) -> Moves {
        for (account, s) in changes.standings {
            if self.cycle.standing.get(&(year, account)) != Some(&s) {
                dirty.standing.insert((year, account));
                self.cycle.standing.insert((year, account), s);
            }
        }
        for (account, owed) in changes.owed_after {
            dirty.deductions.insert(account);
            if owed == 0 {
                self.cycle.deductions.remove(&account);
            } else {
                self.cycle.deductions.insert(account, owed);
            }
        }
        let moves = changes.moves;
        if moves.issue_t > 0 {
            let issued = self.issued.get(&unit).copied().unwrap_or(0);
            self.issued.insert(unit, issued + moves.issue_t);
            self.dirty.units.insert(unit);
            self.holding_mut(authority, unit).registry_available_t += moves.issue_t;
        }
        for &(account, q) in &moves.deliver {
            self.move_available(authority, account, unit, q);
        }
        for &(account, q) in &moves.claw {
            self.move_available(account, authority, unit, q);
        }
        moves
    }

    /// Pre-allocation: the plan's share of each entity's previous-year verified emissions,
    /// once per entity (entities registered later get theirs on a re-run).
    pub(crate) fn pre_allocate(
        &mut self,
        seq: u64,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let plan = self.check_run(year, version, unit, authority)?;
        let y = self.cycle.years.get(&year).cloned().unwrap_or_default();
        if let Some(pre) = &y.pre
            && pre.plan_version != version
        {
            return Err(cycle_err(
                CycleCode::PlanMismatch,
                format!(
                    "{year} was pre-allocated under plan {:?}; re-run with that plan",
                    pre.plan_version
                ),
            ));
        }
        if y.trued.is_some() {
            return Err(cycle_err(
                CycleCode::AlreadyTruedUp,
                format!("{year} is trued up already; pre-allocation comes before the true-up"),
            ));
        }
        let mut targets = Vec::new();
        let mut pre_amounts = Vec::new();
        for (account, entity) in &self.cycle.entities {
            let s = self.cycle.standing(year, *account);
            if s.pre_done {
                continue;
            }
            let Some(previous) = year
                .checked_sub(1)
                .and_then(|p| self.cycle.standing.get(&(p, *account)))
                .and_then(Standing::verified_t)
            else {
                continue;
            };
            let pre = pre_allocation(&plan, entity.sector, previous)?;
            targets.push((*account, s.credited_t() + pre));
            pre_amounts.push((*account, pre));
        }
        if targets.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let result = self.settle_allocations(year, unit, authority, &targets, &mut dirty);
        if let Err(e) = result {
            self.dirty.cycle = CycleDirty::default();
            return Err(e);
        }
        for (account, pre) in pre_amounts {
            let s = self.cycle.standing_mut(year, account, &mut dirty);
            s.pre_t = pre;
            s.pre_done = true;
            s.plan_version = version.to_string();
        }
        self.cycle.year_mut(year, &mut dirty).pre = Some(RunRecord {
            plan_version: version.to_string(),
            unit,
            authority,
            seq,
        });
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    /// The true-up: final allocations by the plan's methods from the verified data, then
    /// issue the rest or claw back the excess. Idempotent: the same plan and data move
    /// nothing (and the registry then records no entry).
    pub(crate) fn true_up(
        &mut self,
        seq: u64,
        year: u16,
        version: &str,
        unit: UnitId,
        authority: AccountId,
    ) -> Result<Outcome, RegistryError> {
        let plan = self.check_run(year, version, unit, authority)?;
        let inputs = self.cycle.entity_years(year);
        let run = compliance::allocate(&plan, &inputs).map_err(|e| allocation_err(year, e))?;
        let mut changed = false;
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let targets: Vec<(AccountId, u64)> = run
            .allocations
            .iter()
            .map(|a| (a.account, a.allocated_t))
            .collect();
        // Checks everything before it changes anything.
        let moves = match self.settle_allocations(year, unit, authority, &targets, &mut dirty) {
            Ok(m) => m,
            Err(e) => {
                self.dirty.cycle = CycleDirty::default();
                return Err(e);
            }
        };
        changed |= moves.issue_t > 0 || !moves.deliver.is_empty() || !moves.claw.is_empty();
        changed |= !dirty.standing.is_empty() || !dirty.deductions.is_empty();
        changed |= self.record_final_allocations(year, &run, &mut dirty);
        let y = self.cycle.years.get(&year);
        if y.and_then(|y| y.trued.as_ref())
            .map(|r| (&r.plan_version[..], r.unit, r.authority))
            != Some((version, unit, authority))
        {
            changed = true;
        }
        if !changed {
            self.dirty.cycle = dirty;
            return Ok(Outcome::Unchanged);
        }
        self.cycle.year_mut(year, &mut dirty).trued = Some(RunRecord {
            plan_version: version.to_string(),
            unit,
            authority,
            seq,
        });
        self.dirty.cycle = dirty;
        Ok(Outcome::Done)
    }

    /// Each entity's final allocation, method, plan and explanation recorded in its
    /// standing; whether any changed.
    fn record_final_allocations(
        &mut self,
        year: u16,
        run: &compliance::Run,
        dirty: &mut CycleDirty,
    ) -> bool {
        let mut changed = false;
        for a in &run.allocations {
            let s = self.cycle.standing(year, a.account);
            if s.final_t != Some(a.allocated_t)
                || s.explanation != a.explanation
                || s.plan_version != run.plan_version
                || s.method != a.method
            {
                let s = self.cycle.standing_mut(year, a.account, dirty);
                s.final_t = Some(a.allocated_t);
                s.method = a.method.to_string();
                s.explanation = a.explanation.clone();
                s.plan_version = run.plan_version.clone();
                changed = true;
            }
        }
        changed
    }

    /// Surrender rules when the year has a plan: the account must be a registered entity,
    /// the plan's vintage and CCER rules hold, the year is open. Returns whether the units
    /// are CCER (to count them).
    pub(crate) fn check_compliance_surrender(
        &self,
        account: AccountId,
        unit: UnitId,
        quantity_t: u64,
        year: u16,
    ) -> Result<Option<bool>, RegistryError> {
        let Some(y) = self.cycle.years.get(&year) else {
            return Ok(None);
        };
        let Some(plan) = y.rules() else {
            return Ok(None);
        };
        if !self.cycle.entities.contains_key(&account) {
            return Err(RegistryError::NotCovered(account.0));
        }
        let def = *self.unit(unit)?;
        let s = self.cycle.standing(year, account);
        check_surrender(plan, y.closed.is_some(), &s.compliance(), &def, quantity_t)?;
        Ok(Some(def.kind == UnitKind::Ccer))
    }

    pub(crate) fn count_surrender(
        &mut self,
        account: AccountId,
        year: u16,
        ccer: bool,
        quantity_t: u64,
    ) {
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        let s = self.cycle.standing_mut(year, account, &mut dirty);
        if ccer {
            s.surrendered_ccer_t += quantity_t;
        } else {
            s.surrendered_cea_t += quantity_t;
        }
        self.dirty.cycle = dirty;
    }

    /// Closes a compliance year: forced surrender for differentiated entities from what the
    /// authority holds for them (the rest released to them), final statuses, penalties at
    /// the plan's multiple of `average_price_fen`, shortfalls carried as deductions.
    pub(crate) fn close_year(
        &mut self,
        seq: u64,
        year: u16,
        (average_price_fen, retirement): (i64, AccountId),
        date: u32,
        forced_reason: Option<&str>,
    ) -> Result<Outcome, RegistryError> {
        let y = open_year(&self.cycle, year)?.cloned().ok_or_else(|| {
            cycle_err(
                CycleCode::YearNotAdministered,
                format!("{year} has no plan"),
            )
        })?;
        let plan = y.rules().cloned().ok_or_else(|| {
            cycle_err(
                CycleCode::YearNotAdministered,
                format!("{year} has no plan"),
            )
        })?;
        if average_price_fen <= 0 || average_price_fen > 100_000_000 {
            return Err(RegistryError::InvalidField {
                field: "average_price_fen",
                why: "must be 1 to 100,000,000 fen",
            });
        }
        check_close_date(&plan, date, forced_reason)?;
        let closings = self.closings(&plan, year, average_price_fen);
        let forced_t: u64 = closings.iter().map(|(_, c)| c.forced_t).sum();
        let released: Vec<(AccountId, u64)> = closings
            .iter()
            .filter(|(_, c)| c.released_t > 0)
            .map(|(a, c)| (*a, c.released_t))
            .collect();
        if forced_t > 0 || !released.is_empty() {
            let Some(run) = y.trued.as_ref().or(y.pre.as_ref()) else {
                return Err(cycle_err(
                    CycleCode::Inconsistent,
                    "units held for entities without an allocation run",
                ));
            };
            self.move_held_at_close(run, retirement, forced_t, &released)?;
        }
        let close = YearClose {
            average_price_fen,
            seq,
            date,
            forced_reason: forced_reason.map(str::to_owned),
        };
        self.record_closings(year, close, closings);
        Ok(Outcome::Done)
    }

    /// Every entity's close under `plan`. What the authority holds for an entity is used
    /// for it at the close even if it stopped being differentiated during the year.
    fn closings(
        &self,
        plan: &Plan,
        year: u16,
        average_price_fen: i64,
    ) -> Vec<(AccountId, compliance::Closing)> {
        self.cycle
            .entities
            .iter()
            .map(|(account, e)| {
                let s = self.cycle.standing(year, *account);
                let c = compliance::close(
                    plan,
                    *account,
                    &s.compliance(),
                    e.differentiated || s.held_t > 0,
                    s.held_t,
                    average_price_fen,
                );
                (*account, c)
            })
            .collect()
    }

    /// What the authority holds for entities at the close: `forced_t` surrendered into
    /// `retirement`, the rest released to the entities. Checked, then moved.
    fn move_held_at_close(
        &mut self,
        run: &RunRecord,
        retirement: AccountId,
        forced_t: u64,
        released: &[(AccountId, u64)],
    ) -> Result<(), RegistryError> {
        let (unit, authority) = (run.unit, run.authority);
        let held: u64 = forced_t + released.iter().map(|r| r.1).sum::<u64>();
        let available = self.holding(authority, unit).registry_available_t;
        if available < held {
            return Err(RegistryError::InsufficientAvailable {
                available,
                wanted: held,
            });
        }
        if forced_t > 0 {
            self.check_leg(authority, unit, TxKind::Surrender, Leg::Debit)?;
            self.check_leg(retirement, unit, TxKind::Surrender, Leg::Credit)?;
        }
        for (account, _) in released {
            self.check_leg(*account, unit, TxKind::Allocate, Leg::Credit)?;
        }
        if forced_t > 0 {
            self.move_available(authority, retirement, unit, forced_t);
        }
        for (account, q) in released {
            self.move_available(authority, *account, unit, *q);
        }
        Ok(())
    }

    /// The closes written into the standings, deductions carried, the year closed.
    fn record_closings(
        &mut self,
        year: u16,
        close: YearClose,
        closings: Vec<(AccountId, compliance::Closing)>,
    ) {
        let mut dirty = std::mem::take(&mut self.dirty.cycle);
        for (account, c) in closings {
            let s = self.cycle.standing_mut(year, account, &mut dirty);
            s.surrendered_cea_t += c.forced_t;
            s.held_t -= c.forced_t + c.released_t;
            s.delivered_t += c.released_t;
            s.closing = Some(ClosingRecord {
                status: c.status,
                forced_t: c.forced_t,
                released_t: c.released_t,
                shortfall_t: c.shortfall_t,
                penalty_fen: c.penalty_fen,
            });
            if c.deduction_t > 0 {
                *self.cycle.deductions.entry(account).or_default() += c.deduction_t;
                dirty.deductions.insert(account);
            }
        }
        self.cycle.year_mut(year, &mut dirty).closed = Some(close);
        self.dirty.cycle = dirty;
    }
}

/// An early close's reason: 1 to 256 bytes, not blank (the one rule, also checked at the API
/// edge before anything is journaled).
pub fn check_force_reason(why: &str) -> Result<(), RegistryError> {
    if why.trim().is_empty() || why.len() > FORCE_REASON_BYTES_MAX {
        return Err(RegistryError::InvalidField {
            field: "force_reason",
            why: "must be 1 to 256 bytes, not blank",
        });
    }
    Ok(())
}

/// A year closes after its surrender deadline (the last day to surrender), or earlier only
/// when the authority forces it with a reason that is not blank and fits the limit.
fn check_close_date(
    plan: &Plan,
    date: u32,
    forced_reason: Option<&str>,
) -> Result<(), RegistryError> {
    match forced_reason {
        Some(why) => check_force_reason(why),
        None if date <= plan.deadline => Err(cycle_err(
            CycleCode::BeforeDeadline,
            format!(
                "{} closes after its deadline {}; today is {date} (a forced close needs a reason)",
                plan.year, plan.deadline
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_unit_generates_at_most_its_capacity_every_hour_of_a_leap_year() {
        // 600 MW x 366 x 24 h = 5,270,400 MWh.
        assert!(check_generation(0, 600, dec!(5270400)).is_ok());
        assert!(check_generation(0, 600, dec!(5270400.000001)).is_err());
        assert!(check_generation(3, 1, dec!(10000000000)).is_err());
    }
}
