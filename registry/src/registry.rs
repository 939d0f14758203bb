//! The registry on RocksDB: every transaction commits in one WriteBatch with its journal
//! entry, the records it changed and its idempotency record.
//!
//! Standing alone (`apply_group`) each group is synced. Under the gateway the registry is
//! state derived from the gateway's journal (`apply_journaled`): groups are written
//! without an fsync, with the journal sequence they reach, and a registry found damaged,
//! missing or behind is rebuilt from a checkpoint (`checkpoint`) and the journal.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::codec::{Reader, Writer};
use crate::cycle;
use crate::error::RegistryError;
use crate::ledger::{Ledger, Movement};
use crate::model::{
    Account, AccountId, FreezeReason, Holding, Pledge, PledgeState, Proposal, ProposalState,
    UnitDef, UnitId, UnitKind,
};
use crate::store::{Batch, Store};
use crate::tx::{
    IDEMPOTENCY_KEY_BYTES_MAX, Outcome, Receipt, Tx, get_account_type, put_account_type,
    status_code, status_of,
};

/// Most transactions committed in one group (one WriteBatch, one fsync).
pub const GROUP_TXS_MAX: usize = 4_096;

/// How the registry commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryOptions {
    /// fsync every commit (the default; `false` only for tests and benchmarks of the CPU path).
    pub sync: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions { sync: true }
    }
}

/// One journal entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub tx: Tx,
}

/// What `verify_journal` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalReport {
    pub entries: u64,
    pub head_hash: [u8; 32],
}

const META: &[u8] = b"M";

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix];
    for part in parts {
        k.extend_from_slice(part);
    }
    k
}

fn account_key(id: AccountId) -> Vec<u8> {
    key(b'a', &[&id.0.to_be_bytes()])
}
fn unit_key(id: UnitId) -> Vec<u8> {
    key(b'u', &[&id.0.to_be_bytes()])
}
fn holding_key(account: AccountId, unit: UnitId) -> Vec<u8> {
    key(b'h', &[&account.0.to_be_bytes(), &unit.0.to_be_bytes()])
}
fn pledge_key(id: u64) -> Vec<u8> {
    key(b'p', &[&id.to_be_bytes()])
}
fn proposal_key(id: u64) -> Vec<u8> {
    key(b'x', &[&id.to_be_bytes()])
}
fn movement_key(seq: u64) -> Vec<u8> {
    key(b'm', &[&seq.to_be_bytes()])
}
fn journal_key(seq: u64) -> Vec<u8> {
    key(b'j', &[&seq.to_be_bytes()])
}
/// Idempotency keys are the caller's own: scoped by the principal that sent them, so one
/// principal can neither take nor probe another's.
fn idempotency_key(actor: u64, k: &str) -> Vec<u8> {
    key(b'k', &[&actor.to_be_bytes(), k.as_bytes()])
}
fn entity_key(id: AccountId) -> Vec<u8> {
    key(b'E', &[&id.0.to_be_bytes()])
}
fn activity_key(year: u16, id: AccountId, facility: u32) -> Vec<u8> {
    key(
        b'F',
        &[
            &year.to_be_bytes(),
            &id.0.to_be_bytes(),
            &facility.to_be_bytes(),
        ],
    )
}
fn year_key(year: u16) -> Vec<u8> {
    key(b'Y', &[&year.to_be_bytes()])
}
fn standing_key(year: u16, id: AccountId) -> Vec<u8> {
    key(b'S', &[&year.to_be_bytes(), &id.0.to_be_bytes()])
}
fn deduction_key(id: AccountId) -> Vec<u8> {
    key(b'D', &[&id.0.to_be_bytes()])
}
fn net_sales_key(id: AccountId, vintage: u16, year: u16) -> Vec<u8> {
    key(
        b'N',
        &[
            &id.0.to_be_bytes(),
            &vintage.to_be_bytes(),
            &year.to_be_bytes(),
        ],
    )
}
fn quota_key(year: u16, id: AccountId) -> Vec<u8> {
    key(b'Q', &[&year.to_be_bytes(), &id.0.to_be_bytes()])
}
fn application_key(id: u64) -> Vec<u8> {
    key(b'A', &[&id.to_be_bytes()])
}
fn factors_key(year: u16, sector: mrv::factors::Sector) -> Vec<u8> {
    key(b'G', &[&year.to_be_bytes(), sector.name().as_bytes()])
}
fn monitoring_plan_key(year: u16, id: AccountId) -> Vec<u8> {
    key(b'V', &[&year.to_be_bytes(), &id.0.to_be_bytes()])
}
fn deposit_key(year: u16, id: AccountId, month: u8) -> Vec<u8> {
    key(b'W', &[&year.to_be_bytes(), &id.0.to_be_bytes(), &[month]])
}
fn report_key(year: u16, id: AccountId) -> Vec<u8> {
    key(b'R', &[&year.to_be_bytes(), &id.0.to_be_bytes()])
}

fn verification_rules_key(year: u16) -> Vec<u8> {
    key(b'L', &[&year.to_be_bytes()])
}

fn body_key(body: u32) -> Vec<u8> {
    key(b'B', &[&body.to_be_bytes()])
}

fn engagement_key(year: u16, id: AccountId, body: u32) -> Vec<u8> {
    key(
        b'C',
        &[
            &year.to_be_bytes(),
            &id.0.to_be_bytes(),
            &body.to_be_bytes(),
        ],
    )
}

fn verification_file_key(year: u16, id: AccountId) -> Vec<u8> {
    key(b'K', &[&year.to_be_bytes(), &id.0.to_be_bytes()])
}

/// The chained hash of entry `seq`.
pub fn entry_hash(prev: &[u8; 32], seq: u64, payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize().into()
}

fn digest(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

fn arr32(r: &mut Reader<'_>) -> Result<[u8; 32], RegistryError> {
    let mut out = [0u8; 32];
    for b in &mut out {
        *b = r.u8()?;
    }
    Ok(out)
}

fn encode_outcome(w: &mut Writer, outcome: Outcome) {
    match outcome {
        Outcome::Done => w.u8(0).u64(0),
        Outcome::Proposed { proposal } => w.u8(1).u64(proposal),
        Outcome::Pledged { pledge } => w.u8(2).u64(pledge),
        Outcome::Unchanged => w.u8(3).u64(0),
    };
}

fn decode_outcome(r: &mut Reader<'_>) -> Result<Outcome, RegistryError> {
    let (tag, id) = (r.u8()?, r.u64()?);
    Ok(match tag {
        0 => Outcome::Done,
        1 => Outcome::Proposed { proposal: id },
        2 => Outcome::Pledged { pledge: id },
        3 => Outcome::Unchanged,
        _ => return Err(RegistryError::Corrupt("outcome".into())),
    })
}

fn encode_holding(h: &Holding) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(h.registry_available_t)
        .u64(h.trading_t)
        .u32(h.frozen.len() as u32);
    for (reason, quantity) in &h.frozen {
        let (tag, id) = match reason {
            FreezeReason::Pledge(id) => (0, *id),
            FreezeReason::Judicial(id) => (1, *id),
            FreezeReason::Pending(id) => (2, *id),
            FreezeReason::CarryOver(id) => (3, *id),
        };
        w.u8(tag).u64(id).u64(*quantity);
    }
    w.0
}

fn decode_holding(bytes: &[u8]) -> Result<Holding, RegistryError> {
    let mut r = Reader::new(bytes);
    let mut h = Holding {
        registry_available_t: r.u64()?,
        trading_t: r.u64()?,
        ..Holding::default()
    };
    for _ in 0..r.u32()? {
        let (tag, id, quantity) = (r.u8()?, r.u64()?, r.u64()?);
        let reason = match tag {
            0 => FreezeReason::Pledge(id),
            1 => FreezeReason::Judicial(id),
            2 => FreezeReason::Pending(id),
            3 => FreezeReason::CarryOver(id),
            _ => return Err(RegistryError::Corrupt("freeze reason".into())),
        };
        h.frozen.insert(reason, quantity);
    }
    r.done()?;
    Ok(h)
}

fn pledge_state_code(s: PledgeState) -> u8 {
    match s {
        PledgeState::Registered => 0,
        PledgeState::Released => 1,
        PledgeState::EnforcedToPledgee => 2,
        PledgeState::EnforcedForAuction => 3,
    }
}

fn proposal_state_code(s: ProposalState) -> u8 {
    match s {
        ProposalState::Pending => 0,
        ProposalState::Approved => 1,
        ProposalState::Cancelled => 2,
    }
}

/// The registry: the ledger in memory, RocksDB underneath, one writer.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    ledger: Ledger,
    seq: u64,
    head: [u8; 32],
    options: RegistryOptions,
    poisoned: bool,
    /// The gateway journal's sequence through which every record has been applied here
    /// (0 standing alone).
    journal_seq: u64,
    /// Write batches the store refused (a full disk), oldest first, written again before
    /// anything newer: what they hold is in memory and in the journal already.
    unwritten: VecDeque<Batch>,
    /// The idempotency records inside `unwritten`, for retries looked up meanwhile.
    unwritten_keys: HashMap<Vec<u8>, Vec<u8>>,
}

/// A key seen earlier in the same group: (actor, key) -> (request digest, receipt).
type Seen<'a> = HashMap<(u64, &'a str), ([u8; 32], Receipt)>;

impl Registry {
    /// Opens (creating if missing) the registry at `path` and loads it into memory.
    pub fn open(path: &Path, options: RegistryOptions) -> Result<Registry, RegistryError> {
        let store = Store::open(path)?;
        let mut registry = Registry {
            store,
            ledger: Ledger::new(),
            seq: 0,
            head: [0; 32],
            options,
            poisoned: false,
            journal_seq: 0,
            unwritten: VecDeque::new(),
            unwritten_keys: HashMap::new(),
        };
        registry.load()?;
        registry
            .ledger
            .check_invariants()
            .map_err(RegistryError::Corrupt)?;
        Ok(registry)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The last journal sequence committed.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a registry database exists at `path` (a directory RocksDB has written).
    pub fn exists(path: &Path) -> bool {
        path.join("CURRENT").exists()
    }

    /// The gateway journal's sequence through which this registry has applied every
    /// record (for a database written before the journal carried registry records: the
    /// engine sequence it settled through).
    pub fn journal_seq(&self) -> u64 {
        self.journal_seq
    }

    /// Write batches waiting for the store to take them again (a full disk).
    pub fn unwritten(&self) -> usize {
        self.unwritten.len()
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.head
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        self.ledger.check_invariants()
    }

    /// Applies one transaction, synced on its own.
    pub fn apply(&mut self, tx: &Tx) -> Result<Receipt, RegistryError> {
        self.apply_group(std::slice::from_ref(tx))
            .pop()
            .unwrap_or(Err(RegistryError::Poisoned))
    }

    /// Applies transactions in order and commits all that succeeded in one WriteBatch with one
    /// fsync (group commit). Each result is as if applied alone, in this order.
    pub fn apply_group(&mut self, txs: &[Tx]) -> Vec<Result<Receipt, RegistryError>> {
        self.apply_group_with(txs, self.options.sync)
    }

    /// `apply_group`, committing with or without an fsync. Without one, a crash may lose
    /// the group (never part of it, and never a group before a later synced one: RocksDB's
    /// log is sequential). Only for what the caller can rebuild from its own durable
    /// record: the gateway's settlement of the engine journal, re-settled from the
    /// journal after `settled_seq` on recovery.
    pub fn apply_group_with(
        &mut self,
        txs: &[Tx],
        sync: bool,
    ) -> Vec<Result<Receipt, RegistryError>> {
        if self.poisoned {
            return txs.iter().map(|_| Err(RegistryError::Poisoned)).collect();
        }
        if txs.len() > GROUP_TXS_MAX {
            return txs
                .iter()
                .map(|_| {
                    Err(RegistryError::InvalidField {
                        field: "txs",
                        why: "more than 4,096 transactions in one group",
                    })
                })
                .collect();
        }
        let mut batch = Batch::default();
        let mut seen = Seen::new();
        let mut results = Vec::with_capacity(txs.len());
        for tx in txs {
            let result = self.stage(tx, &mut batch, &mut seen);
            results.push(result);
        }
        if batch.is_empty() {
            return results;
        }
        self.put_meta(&mut batch);
        if let Err(e) = self.store.commit(&batch, sync && self.options.sync) {
            // Memory is ahead of disk now: refuse everything until a restart reloads.
            self.poisoned = true;
            let message = e.to_string();
            return results
                .into_iter()
                .map(|r| {
                    r.and(Err(RegistryError::Corrupt(format!(
                        "commit failed: {message}"
                    ))))
                })
                .collect();
        }
        results
    }

    /// Applies the registry records of the gateway's journal through `journal_seq` (a
    /// group of them, in journal order) and writes them, with that sequence, in one
    /// WriteBatch without an fsync: the journal is their durable record. Each result is
    /// what the ledger made of the transaction, whatever the store does: a batch the
    /// store refuses (a full disk) is kept and written again before the next
    /// (`retry_unwritten`), never dropped and never a reason to answer otherwise.
    pub fn apply_journaled(
        &mut self,
        txs: &[Tx],
        journal_seq: u64,
    ) -> Vec<Result<Receipt, RegistryError>> {
        let mut batch = Batch::default();
        let mut seen = Seen::new();
        let results: Vec<_> = txs
            .iter()
            .map(|tx| self.stage(tx, &mut batch, &mut seen))
            .collect();
        self.journal_seq = self.journal_seq.max(journal_seq);
        self.put_meta(&mut batch);
        self.unwritten.push_back(batch);
        self.retry_unwritten();
        results
    }

    /// Writes the batches the store refused earlier, oldest first; returns whether none
    /// is left.
    pub fn retry_unwritten(&mut self) -> bool {
        while let Some(batch) = self.unwritten.front() {
            if let Err(e) = self.store.commit(batch, false) {
                if self.unwritten.len() == 1 || self.unwritten.len().is_multiple_of(1_024) {
                    tracing::warn!(
                        waiting = self.unwritten.len(),
                        "registry: the store refused a write ({e}); kept in memory, written again later"
                    );
                }
                let keys: Vec<_> = batch
                    .puts()
                    .into_iter()
                    .filter(|(k, _)| k.first() == Some(&b'k'))
                    .collect();
                self.unwritten_keys.extend(keys);
                return false;
            }
            self.unwritten.pop_front();
        }
        self.unwritten_keys.clear();
        true
    }

    /// A consistent, durable copy of the registry at `path` (which must not exist), at
    /// `journal_seq()`. Refused while the store is behind memory.
    pub fn checkpoint(&mut self, path: &Path) -> Result<(), RegistryError> {
        if !self.retry_unwritten() {
            return Err(RegistryError::Corrupt(
                "the store is behind (a full disk): no checkpoint now".into(),
            ));
        }
        self.store.checkpoint(path)?;
        Ok(())
    }

    /// Executes `tx` in memory and adds its writes to `batch`.
    fn stage<'a>(
        &mut self,
        tx: &'a Tx,
        batch: &mut Batch,
        seen: &mut Seen<'a>,
    ) -> Result<Receipt, RegistryError> {
        if tx.key.is_empty() || tx.key.len() > IDEMPOTENCY_KEY_BYTES_MAX {
            return Err(RegistryError::InvalidField {
                field: "idempotency_key",
                why: "must be 1 to 128 bytes",
            });
        }
        let payload = tx.encode();
        // A retry is the same key, actor and operation; the time it was sent may differ.
        let payload_digest = digest(&tx.request_bytes());
        if let Some(previous) = self.previous(tx.actor, &tx.key, seen)? {
            return if previous.0 == payload_digest {
                Ok(previous.1)
            } else {
                Err(RegistryError::DuplicateKeyDifferentPayload)
            };
        }
        let seq = self.seq + 1;
        let outcome = self.ledger.execute(seq, tx)?;
        if outcome == Outcome::Unchanged {
            // A re-run that finds nothing to do: no entry, nothing written.
            return Ok(Receipt {
                seq: self.seq,
                outcome,
            });
        }
        self.seq = seq;
        let hash = entry_hash(&self.head, seq, &payload);
        let mut entry = Writer::default();
        for b in self.head.iter().chain(hash.iter()) {
            entry.u8(*b);
        }
        entry.bytes(&payload);
        batch.put(&journal_key(seq), &entry.0);
        self.head = hash;
        let receipt = Receipt { seq, outcome };
        let mut record = Writer::default();
        for b in payload_digest {
            record.u8(b);
        }
        record.u64(seq);
        encode_outcome(&mut record, outcome);
        batch.put(&idempotency_key(tx.actor, &tx.key), &record.0);
        seen.insert((tx.actor, &tx.key), (payload_digest, receipt));
        self.put_dirty(batch);
        self.put_cycle(batch);
        Ok(receipt)
    }

    fn previous(
        &self,
        actor: u64,
        k: &str,
        seen: &Seen<'_>,
    ) -> Result<Option<([u8; 32], Receipt)>, RegistryError> {
        if let Some(found) = seen.get(&(actor, k)) {
            return Ok(Some(*found));
        }
        let stored_key = idempotency_key(actor, k);
        let stored = match self.unwritten_keys.get(&stored_key) {
            Some(bytes) => Some(bytes.clone()),
            None => self.store.get(&stored_key)?,
        };
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let mut r = Reader::new(&bytes);
        let payload_digest = arr32(&mut r)?;
        let seq = r.u64()?;
        let outcome = decode_outcome(&mut r)?;
        Ok(Some((payload_digest, Receipt { seq, outcome })))
    }

    /// Whether `actor` committed a transaction with this idempotency key, and its receipt.
    pub fn receipt(&self, actor: u64, k: &str) -> Result<Option<Receipt>, RegistryError> {
        Ok(self
            .previous(actor, k, &Seen::new())?
            .map(|(_, receipt)| receipt))
    }

    /// What `tx` would be if it is a retry: the original receipt when its key was used by
    /// the same principal for the same request, `DuplicateKeyDifferentPayload` for another
    /// request, `None` for a key not used yet. Answering a retry from here journals
    /// nothing new.
    pub fn retry_of(&self, tx: &Tx) -> Result<Option<Receipt>, RegistryError> {
        match self.previous(tx.actor, &tx.key, &Seen::new())? {
            None => Ok(None),
            Some((d, receipt)) if d == digest(&tx.request_bytes()) => Ok(Some(receipt)),
            Some(_) => Err(RegistryError::DuplicateKeyDifferentPayload),
        }
    }

    fn put_dirty(&self, batch: &mut Batch) {
        let l = &self.ledger;
        for id in &l.dirty.accounts {
            if let Some(a) = l.accounts.get(id) {
                let mut w = Writer::default();
                put_account_type(&mut w, a.kind);
                w.u8(status_code(a.status)).str(&a.name);
                batch.put(&account_key(*id), &w.0);
            }
        }
        for id in &l.dirty.units {
            if let Some(def) = l.units.get(id) {
                let mut w = Writer::default();
                w.u8(match def.kind {
                    UnitKind::Cea => 0,
                    UnitKind::Ccer => 1,
                })
                .u16(def.vintage)
                .u64(def.project_id)
                .u32(def.registered);
                w.u64(l.issued.get(id).copied().unwrap_or(0));
                batch.put(&unit_key(*id), &w.0);
            }
        }
        for (account, unit) in &l.dirty.holdings {
            match l.holdings.get(&(*account, *unit)) {
                Some(h) => batch.put(&holding_key(*account, *unit), &encode_holding(h)),
                None => batch.delete(&holding_key(*account, *unit)),
            }
        }
        for id in &l.dirty.pledges {
            if let Some(p) = l.pledges.get(id) {
                let mut w = Writer::default();
                w.u64(p.pledgor.0)
                    .u64(p.pledgee.0)
                    .u32(p.unit.0)
                    .u64(p.quantity_t)
                    .u8(pledge_state_code(p.state))
                    .u64(p.secured_fen)
                    .u64(p.claim_fen);
                batch.put(&pledge_key(*id), &w.0);
            }
        }
        for id in &l.dirty.proposals {
            if let Some(p) = l.proposals.get(id) {
                let mut w = Writer::default();
                w.u64(p.from.0)
                    .u64(p.to.0)
                    .u32(p.unit.0)
                    .u64(p.quantity_t)
                    .u64(p.proposer)
                    .u8(proposal_state_code(p.state));
                batch.put(&proposal_key(*id), &w.0);
            }
        }
        for seq in &l.dirty.movements {
            if let Some(m) = l.movements.get(seq) {
                let mut w = Writer::default();
                w.u64(m.from.0)
                    .u64(m.to.0)
                    .u32(m.unit.0)
                    .u64(m.quantity_t)
                    .u8(u8::from(m.reversed));
                batch.put(&movement_key(*seq), &w.0);
            }
        }
    }

    fn put_cycle(&self, batch: &mut Batch) {
        let c = &self.ledger.cycle;
        let d = &self.ledger.dirty.cycle;
        for id in &d.entities {
            if let Some(e) = c.entities.get(id) {
                batch.put(&entity_key(*id), &cycle::encode_entity(e));
            }
        }
        for &(year, id, facility) in &d.activity {
            if let Some(a) = c.activity.get(&(year, id, facility)) {
                let mut w = Writer::default();
                cycle::put_activity(&mut w, a);
                batch.put(&activity_key(year, id, facility), &w.0);
            }
        }
        for year in &d.years {
            if let Some(y) = c.years.get(year) {
                batch.put(&year_key(*year), &cycle::encode_year(y));
            }
        }
        for &(year, id) in &d.standing {
            if let Some(s) = c.standing.get(&(year, id)) {
                batch.put(&standing_key(year, id), &cycle::encode_standing(s));
            }
        }
        for id in &d.deductions {
            match c.deductions.get(id) {
                Some(owed) => batch.put(&deduction_key(*id), &owed.to_le_bytes()),
                None => batch.delete(&deduction_key(*id)),
            }
        }
        self.put_carry_over(batch);
        self.put_emissions(batch);
        self.put_verification(batch);
    }

    fn put_verification(&self, batch: &mut Batch) {
        use crate::verification::codec;
        let v = &self.ledger.verification;
        let d = &self.ledger.dirty.verification;
        for &year in &d.rules {
            if let Some(r) = v.rules.get(&year) {
                batch.put(&verification_rules_key(year), &codec::encode_rules(r));
            }
        }
        for &body in &d.bodies {
            if let Some(b) = v.bodies.get(&body) {
                batch.put(&body_key(body), &codec::encode_body(b));
            }
        }
        for &(year, id, body) in &d.engagements {
            batch.put(&engagement_key(year, id, body), &[]);
        }
        for &(year, id) in &d.files {
            if let Some(f) = v.files.get(&(year, id)) {
                batch.put(&verification_file_key(year, id), &codec::encode_file(f));
            }
        }
    }

    fn put_emissions(&self, batch: &mut Batch) {
        use crate::emissions::codec;
        let e = &self.ledger.emissions;
        let d = &self.ledger.dirty.emissions;
        for &(year, sector) in &d.factors {
            if let Some(v) = e.factors.get(&(year, sector)) {
                batch.put(&factors_key(year, sector), &codec::encode_factors(v));
            }
        }
        for &(year, id) in &d.plans {
            if let Some(v) = e.plans.get(&(year, id)) {
                batch.put(&monitoring_plan_key(year, id), &codec::encode_plans(v));
            }
        }
        for &(year, id, month) in &d.months {
            if let Some(v) = e.months.get(&(year, id, month)) {
                batch.put(&deposit_key(year, id, month), &codec::encode_deposits(v));
            }
        }
        for &(year, id) in &d.reports {
            if let Some(v) = e.reports.get(&(year, id)) {
                batch.put(&report_key(year, id), &codec::encode_reports(v));
            }
        }
    }

    fn put_carry_over(&self, batch: &mut Batch) {
        let c = &self.ledger.cycle;
        let d = &self.ledger.dirty.cycle;
        for &(id, vintage, year) in &d.net_sales {
            if let Some(n) = c.net_sales.get(&(id, vintage, year)) {
                batch.put(&net_sales_key(id, vintage, year), &n.to_le_bytes());
            }
        }
        for &(year, id) in &d.quotas {
            if let Some(q) = c.quotas.get(&(year, id)) {
                batch.put(&quota_key(year, id), &cycle::carry::encode_quota(q));
            }
        }
        for id in &d.applications {
            if let Some(a) = c.applications.get(id) {
                batch.put(&application_key(*id), &cycle::carry::encode_application(a));
            }
        }
    }

    fn put_meta(&self, batch: &mut Batch) {
        let mut w = Writer::default();
        w.u64(self.seq);
        for b in self.head {
            w.u8(b);
        }
        w.u64(self.ledger.next_pledge)
            .u64(self.ledger.next_proposal)
            .u64(self.ledger.four_eyes_t)
            .u64(self.ledger.settled_seq)
            .u64(self.journal_seq);
        batch.put(META, &w.0);
    }
}

mod load;

pub use load::decode_entry;
