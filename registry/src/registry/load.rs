//! Loading the registry from RocksDB, reading the journal, and verifying it.

use super::*;

/// Decodes a stored journal entry.
pub fn decode_entry(seq: u64, bytes: &[u8]) -> Result<JournalEntry, RegistryError> {
    let mut r = Reader::new(bytes);
    let prev_hash = arr32(&mut r)?;
    let hash = arr32(&mut r)?;
    let payload = r.bytes()?;
    r.done()?;
    Ok(JournalEntry {
        seq,
        prev_hash,
        hash,
        tx: Tx::decode(payload)?,
    })
}

fn be_u64(bytes: &[u8]) -> Result<u64, RegistryError> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| RegistryError::Corrupt("key".into()))?;
    Ok(u64::from_be_bytes(raw))
}

fn be_u32(bytes: &[u8]) -> Result<u32, RegistryError> {
    let raw: [u8; 4] = bytes
        .try_into()
        .map_err(|_| RegistryError::Corrupt("key".into()))?;
    Ok(u32::from_be_bytes(raw))
}

impl Registry {
    pub(super) fn load(&mut self) -> Result<(), RegistryError> {
        if let Some(meta) = self.store.get(META)? {
            let mut r = Reader::new(&meta);
            self.seq = r.u64()?;
            self.head = arr32(&mut r)?;
            self.ledger.next_pledge = r.u64()?;
            self.ledger.next_proposal = r.u64()?;
            self.ledger.four_eyes_t = r.u64()?;
            self.ledger.settled_seq = r.u64()?;
            // Written before registry records were journaled: the engine sequence
            // settled through is where the journal is to be replayed from.
            self.journal_seq = if r.is_done() {
                self.ledger.settled_seq
            } else {
                r.u64()?
            };
            r.done()?;
        }
        let ledger = &mut self.ledger;
        self.store.scan(b"a", b"a", |k, v| {
            let id = AccountId(be_u64(&k[1..])?);
            let mut r = Reader::new(v);
            let kind = get_account_type(&mut r)?;
            let status = status_of(r.u8()?)?;
            let name = r.str()?;
            ledger.accounts.insert(
                id,
                Account {
                    id,
                    kind,
                    status,
                    name,
                },
            );
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"u", b"u", |k, v| {
            let id = UnitId(be_u32(&k[1..])?);
            let mut r = Reader::new(v);
            let kind = if r.u8()? == 0 {
                UnitKind::Cea
            } else {
                UnitKind::Ccer
            };
            let def = UnitDef {
                kind,
                vintage: r.u16()?,
                project_id: r.u64()?,
                registered: r.u32()?,
            };
            ledger.units.insert(id, def);
            ledger.issued.insert(id, r.u64()?);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"h", b"h", |k, v| {
            if k.len() != 13 {
                return Err(RegistryError::Corrupt("holding key".into()));
            }
            let id = (AccountId(be_u64(&k[1..9])?), UnitId(be_u32(&k[9..13])?));
            ledger.holdings.insert(id, decode_holding(v)?);
            Ok(true)
        })?;
        self.load_records()
    }

    fn load_records(&mut self) -> Result<(), RegistryError> {
        let ledger = &mut self.ledger;
        self.store.scan(b"p", b"p", |k, v| {
            let pledge = decode_pledge(be_u64(&k[1..])?, v)?;
            ledger.pledges.insert(pledge.id, pledge);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"x", b"x", |k, v| {
            let proposal = decode_proposal(be_u64(&k[1..])?, v)?;
            ledger.proposals.insert(proposal.id, proposal);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"m", b"m", |k, v| {
            let seq = be_u64(&k[1..])?;
            let mut r = Reader::new(v);
            let m = Movement {
                from: AccountId(r.u64()?),
                to: AccountId(r.u64()?),
                unit: UnitId(r.u32()?),
                quantity_t: r.u64()?,
                reversed: r.u8()? != 0,
            };
            ledger.movements.insert(seq, m);
            Ok::<_, RegistryError>(true)
        })?;
        self.load_cycle()
    }

    fn load_cycle(&mut self) -> Result<(), RegistryError> {
        let c = &mut self.ledger.cycle;
        let bad = || RegistryError::Corrupt("compliance record key".into());
        self.store.scan(b"E", b"E", |k, v| {
            c.entities
                .insert(AccountId(be_u64(&k[1..])?), cycle::decode_entity(v)?);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"F", b"F", |k, v| {
            if k.len() != 15 {
                return Err(bad());
            }
            let year = u16::from_be_bytes([k[1], k[2]]);
            let account = AccountId(be_u64(&k[3..11])?);
            let facility = be_u32(&k[11..15])?;
            let mut r = Reader::new(v);
            let activity = cycle::get_activity(&mut r)?;
            r.done()?;
            c.activity.insert((year, account, facility), activity);
            Ok(true)
        })?;
        self.store.scan(b"Y", b"Y", |k, v| {
            if k.len() != 3 {
                return Err(bad());
            }
            c.years
                .insert(u16::from_be_bytes([k[1], k[2]]), cycle::decode_year(v)?);
            Ok(true)
        })?;
        self.store.scan(b"S", b"S", |k, v| {
            if k.len() != 11 {
                return Err(bad());
            }
            let year = u16::from_be_bytes([k[1], k[2]]);
            c.standing.insert(
                (year, AccountId(be_u64(&k[3..11])?)),
                cycle::decode_standing(v)?,
            );
            Ok(true)
        })?;
        self.store.scan(b"D", b"D", |k, v| {
            let owed: [u8; 8] = v.try_into().map_err(|_| bad())?;
            c.deductions
                .insert(AccountId(be_u64(&k[1..])?), u64::from_le_bytes(owed));
            Ok::<_, RegistryError>(true)
        })?;
        self.load_carry_over()?;
        self.load_emissions()?;
        self.load_verification()
    }

    fn load_verification(&mut self) -> Result<(), RegistryError> {
        use crate::verification::codec;
        let v = &mut self.ledger.verification;
        let bad = || RegistryError::Corrupt("verification record key".into());
        let year_of = |k: &[u8]| u16::from_be_bytes([k[1], k[2]]);
        self.store.scan(b"L", b"L", |k, val| {
            if k.len() != 3 {
                return Err(bad());
            }
            v.rules.insert(year_of(k), codec::decode_rules(val)?);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"B", b"B", |k, val| {
            let id: [u8; 4] = k.get(1..).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
            v.bodies
                .insert(u32::from_be_bytes(id), codec::decode_body(val)?);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"C", b"C", |k, _| {
            if k.len() != 15 {
                return Err(bad());
            }
            let id = AccountId(be_u64(&k[3..11])?);
            let body = u32::from_be_bytes([k[11], k[12], k[13], k[14]]);
            v.engagements.insert((year_of(k), id, body));
            Ok(true)
        })?;
        self.store.scan(b"K", b"K", |k, val| {
            if k.len() != 11 {
                return Err(bad());
            }
            let id = AccountId(be_u64(&k[3..11])?);
            v.files.insert((year_of(k), id), codec::decode_file(val)?);
            Ok(true)
        })?;
        Ok(())
    }

    fn load_emissions(&mut self) -> Result<(), RegistryError> {
        use crate::emissions::codec;
        let e = &mut self.ledger.emissions;
        let bad = || RegistryError::Corrupt("emissions record key".into());
        let year_of = |k: &[u8]| u16::from_be_bytes([k[1], k[2]]);
        self.store.scan(b"G", b"G", |k, v| {
            if k.len() < 4 {
                return Err(bad());
            }
            let sector = std::str::from_utf8(&k[3..]).ok();
            let sector = sector
                .and_then(mrv::factors::Sector::parse)
                .ok_or_else(bad)?;
            e.factors
                .insert((year_of(k), sector), codec::decode_factors(v)?);
            Ok::<_, RegistryError>(true)
        })?;
        self.store.scan(b"V", b"V", |k, v| {
            if k.len() != 11 {
                return Err(bad());
            }
            let id = AccountId(be_u64(&k[3..11])?);
            e.plans.insert((year_of(k), id), codec::decode_plans(v)?);
            Ok(true)
        })?;
        self.store.scan(b"W", b"W", |k, v| {
            if k.len() != 12 {
                return Err(bad());
            }
            let id = AccountId(be_u64(&k[3..11])?);
            e.months
                .insert((year_of(k), id, k[11]), codec::decode_deposits(v)?);
            Ok(true)
        })?;
        self.store.scan(b"R", b"R", |k, v| {
            if k.len() != 11 {
                return Err(bad());
            }
            let id = AccountId(be_u64(&k[3..11])?);
            e.reports
                .insert((year_of(k), id), codec::decode_reports(v)?);
            Ok(true)
        })?;
        Ok(())
    }

    fn load_carry_over(&mut self) -> Result<(), RegistryError> {
        let c = &mut self.ledger.cycle;
        let bad = || RegistryError::Corrupt("carry-over record key".into());
        self.store.scan(b"N", b"N", |k, v| {
            if k.len() != 13 {
                return Err(bad());
            }
            let n: [u8; 8] = v.try_into().map_err(|_| bad())?;
            let key = (
                AccountId(be_u64(&k[1..9])?),
                u16::from_be_bytes([k[9], k[10]]),
                u16::from_be_bytes([k[11], k[12]]),
            );
            c.net_sales.insert(key, i64::from_le_bytes(n));
            Ok(true)
        })?;
        self.store.scan(b"Q", b"Q", |k, v| {
            if k.len() != 11 {
                return Err(bad());
            }
            let key = (
                u16::from_be_bytes([k[1], k[2]]),
                AccountId(be_u64(&k[3..11])?),
            );
            c.quotas.insert(key, cycle::carry::decode_quota(v)?);
            Ok(true)
        })?;
        self.store.scan(b"A", b"A", |k, v| {
            c.applications
                .insert(be_u64(&k[1..])?, cycle::carry::decode_application(v)?);
            Ok::<_, RegistryError>(true)
        })?;
        Ok(())
    }

    /// Journal entries from `from` (inclusive), at most `limit`.
    pub fn journal(&self, from: u64, limit: usize) -> Result<Vec<JournalEntry>, RegistryError> {
        let mut entries = Vec::new();
        if limit == 0 {
            return Ok(entries);
        }
        self.store.scan(b"j", &journal_key(from.max(1)), |k, v| {
            entries.push(decode_entry(be_u64(&k[1..])?, v)?);
            Ok::<_, RegistryError>(entries.len() < limit)
        })?;
        Ok(entries)
    }

    /// Recomputes the hash chain from the first entry and every record from the journal
    /// alone, and compares them with what is stored.
    pub fn verify_journal(&self) -> Result<JournalReport, RegistryError> {
        let mut replay = Ledger::new();
        let mut prev = [0u8; 32];
        let mut expected_seq = 1u64;
        self.store.scan(b"j", &journal_key(1), |k, v| {
            let seq = be_u64(&k[1..])?;
            if seq != expected_seq {
                return Err(RegistryError::Corrupt(format!(
                    "journal gap: expected entry {expected_seq}, found {seq}"
                )));
            }
            let entry = decode_entry(seq, v)?;
            if entry.prev_hash != prev {
                return Err(RegistryError::Corrupt(format!(
                    "entry {seq}: previous hash does not chain"
                )));
            }
            if entry.hash != entry_hash(&prev, seq, &entry.tx.encode()) {
                return Err(RegistryError::Corrupt(format!(
                    "entry {seq}: hash mismatch"
                )));
            }
            replay
                .execute(seq, &entry.tx)
                .map_err(|e| RegistryError::Corrupt(format!("entry {seq} does not replay: {e}")))?;
            prev = entry.hash;
            expected_seq += 1;
            Ok(true)
        })?;
        let entries = expected_seq - 1;
        if entries != self.seq || prev != self.head {
            return Err(RegistryError::Corrupt(format!(
                "journal has {entries} entries, registry is at {}",
                self.seq
            )));
        }
        replay.dirty = Default::default();
        let mut stored = self.ledger.clone();
        stored.dirty = Default::default();
        if replay != stored {
            return Err(RegistryError::Corrupt(
                "balances recomputed from the journal differ from the stored ones".into(),
            ));
        }
        Ok(JournalReport {
            entries,
            head_hash: prev,
        })
    }
}

fn decode_pledge(id: u64, v: &[u8]) -> Result<Pledge, RegistryError> {
    let mut r = Reader::new(v);
    let (pledgor, pledgee, unit, quantity_t) = (
        AccountId(r.u64()?),
        AccountId(r.u64()?),
        UnitId(r.u32()?),
        r.u64()?,
    );
    let state = match r.u8()? {
        0 => PledgeState::Registered,
        1 => PledgeState::Released,
        2 => PledgeState::EnforcedToPledgee,
        3 => PledgeState::EnforcedForAuction,
        _ => return Err(RegistryError::Corrupt("pledge state".into())),
    };
    // Records from before amounts end here.
    let (secured_fen, claim_fen) = if r.is_done() {
        (0, 0)
    } else {
        (r.u64()?, r.u64()?)
    };
    r.done()?;
    Ok(Pledge {
        id,
        pledgor,
        pledgee,
        unit,
        quantity_t,
        state,
        secured_fen,
        claim_fen,
    })
}

fn decode_proposal(id: u64, v: &[u8]) -> Result<Proposal, RegistryError> {
    let mut r = Reader::new(v);
    let (from, to, unit, quantity_t, proposer) = (
        AccountId(r.u64()?),
        AccountId(r.u64()?),
        UnitId(r.u32()?),
        r.u64()?,
        r.u64()?,
    );
    let state = match r.u8()? {
        0 => ProposalState::Pending,
        1 => ProposalState::Approved,
        2 => ProposalState::Cancelled,
        _ => return Err(RegistryError::Corrupt("proposal state".into())),
    };
    Ok(Proposal {
        id,
        from,
        to,
        unit,
        quantity_t,
        proposer,
        state,
    })
}
