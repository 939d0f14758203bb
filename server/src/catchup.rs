//! After recovery, before serving: the engine brought in line with registry moves it may
//! have missed in a crash, the two ledgers reconciled (a state whose ledgers disagree is
//! not served), and the streams' history rebuilt so subscribers resume across a restart.

use std::collections::HashSet;
use std::time::Instant;

use engine::{AccountId as EngineAccount, CommandKind, Engine};
use journal::Record;
use registry::tx::{Enforcement, Op};

use crate::config::{Config, engine_config, journal_dir, snapshot_dir};
use crate::core::Core;
use crate::hub::Hub;
use crate::services::registry::{deposit_transfer, disposal_deposit, trades};

/// Streams resume across a restart (and recent trades stay on the market pages): the
/// history before the newest snapshot is rebuilt by replaying, on a scratch copy of the
/// previous snapshot, the journal between the two (at most one snapshot interval). Without
/// a previous snapshot, a journal of at most one snapshot interval is replayed from its
/// start on a fresh engine; a longer one leaves the history starting at `newest`.
pub(crate) fn rebuild_history(config: &Config, hub: &Hub, newest: u64) -> Result<(), String> {
    let started = Instant::now();
    let older = crate::snapshot::older_than(&snapshot_dir(config), newest)
        .map_err(|e| format!("snapshots: {e}"))?;
    let interval = if config.snapshot_every == 0 {
        1_000_000
    } else {
        config.snapshot_every
    };
    let journal_from = journal::first_seq(&journal_dir(config)).unwrap_or(1);
    let (from, mut scratch) = match older {
        Some(older) => (older.seq, older.engine),
        None if newest <= interval => (0, Engine::new(engine_config(config))),
        None => {
            hub.set_floor(newest, Vec::new());
            return Ok(());
        }
    };
    if from + 1 < journal_from {
        // The journal before it was archived: the history starts at `newest` (recovery
        // itself needs only the journal after `newest`).
        hub.set_floor(newest, Vec::new());
        return Ok(());
    }
    hub.set_floor(from, Vec::new());
    let mut events = Vec::with_capacity(64);
    let replayed = journal::replay(&journal_dir(config), from + 1, |record| {
        if record.seq() > newest {
            return Ok(());
        }
        let Record::Engine(command) = record else {
            return scratch.pass(record.seq()).map_err(|e| format!("{e:?}"));
        };
        events.clear();
        scratch
            .apply(command, &mut events)
            .map_err(|e| format!("{e:?}"))?;
        hub.publish(command.seq, command.timestamp_ns, &events);
        Ok(())
    })
    .map_err(|e| format!("rebuilding the stream history: {e}"))?;
    tracing::info!(
        from,
        to = newest,
        replayed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovery: stream history rebuilt"
    );
    Ok(())
}

/// Brings the engine in line with registry facts it may have missed in a crash: trading
/// accounts for every registry account, deposits for every move into trading.
pub(crate) async fn repair(core: &Core) -> Result<(usize, usize), String> {
    let accounts: Vec<(u64, bool)> = core
        .registry
        .read(|r| {
            r.ledger()
                .accounts
                .values()
                .map(|a| (a.id.0, trades(a.kind)))
                .collect()
        })
        .await
        .map_err(|e| e.message)?;
    let known: HashSet<u64> = core
        .query(|e| e.account_ids().iter().map(|a| a.0).collect())
        .await
        .map_err(|e| e.message)?;
    let mut opened = 0;
    for (account, trades) in accounts {
        if trades && !known.contains(&account) {
            core.execute(CommandKind::OpenAccount {
                account: EngineAccount(account),
                stp: engine::StpMode::default(),
            })
            .await
            .map_err(|e| e.message)?;
            opened += 1;
        }
    }
    let candidates = registry_deposits(core).await?;
    let missing: Vec<CommandKind> = core
        .query(move |e| {
            candidates
                .into_iter()
                .filter(|kind| match kind {
                    CommandKind::DepositAllowances { transfer, .. } => {
                        !e.transfer_applied(*transfer)
                    }
                    _ => false,
                })
                .collect()
        })
        .await
        .map_err(|e| e.message)?;
    let deposits = missing.len();
    for kind in missing {
        core.execute(kind).await.map_err(|e| e.message)?;
    }
    Ok((opened, deposits))
}

/// The engine deposit every registry move into trading calls for (moves and pledges
/// enforced for auction), read from the registry's journal.
async fn registry_deposits(core: &Core) -> Result<Vec<CommandKind>, String> {
    let mut deposits = Vec::new();
    let mut from = 1;
    loop {
        let entries = core
            .registry
            .read(move |r| r.journal(from, 4_096))
            .await
            .map_err(|e| e.message)?
            .map_err(|e| e.to_string())?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(deposits);
        };
        for entry in entries {
            if let Some(kind) = deposit_of(core, entry.seq, &entry.tx.op).await? {
                deposits.push(kind);
            }
        }
        from = last + 1;
    }
}

/// The engine deposit one registry entry calls for: a move to trading, or a pledge
/// enforced for auction (locked for its sale; from before claims, a plain deposit).
async fn deposit_of(core: &Core, seq: u64, op: &Op) -> Result<Option<CommandKind>, String> {
    let (account, unit, quantity_t) = match *op {
        Op::MoveToTrading {
            account,
            unit,
            quantity_t,
        } => (account, unit, quantity_t),
        Op::PledgeEnforce {
            pledge,
            how: Enforcement::ForAuction,
            claim_fen,
        } => {
            let found = core
                .registry
                .read(move |r| r.ledger().pledges.get(&pledge).copied())
                .await
                .map_err(|e| e.message)?;
            let Some(p) = found else { return Ok(None) };
            if let (Some(claim_fen), Some(instrument)) =
                (claim_fen, core.catalog.instrument_of_unit(p.unit))
            {
                return Ok(Some(disposal_deposit(seq, &p, instrument, claim_fen)));
            }
            (p.pledgor, p.unit, p.quantity_t)
        }
        _ => return Ok(None),
    };
    Ok(core
        .catalog
        .instrument_of_unit(unit)
        .map(|instrument| CommandKind::DepositAllowances {
            transfer: deposit_transfer(seq),
            account: EngineAccount(account.0),
            instrument,
            quantity_t,
        }))
}

/// Start-up's reconciliation: a state whose two ledgers disagree is not served.
pub(crate) async fn check_reconciled(core: &Core, read_only: bool) -> Result<(), String> {
    let t = Instant::now();
    let outcome = core.reconcile().await.map_err(|e| e.message)?;
    if outcome.clean() {
        tracing::info!(
            seq = outcome.seq,
            accounts = outcome.accounts_checked,
            elapsed_ms = t.elapsed().as_millis() as u64,
            "recovery: reconciliation clean"
        );
        return Ok(());
    }
    let why = format!(
        "reconciliation at engine sequence {} is not clean: differences {:?}, problems {:?}",
        outcome.seq, outcome.differences, outcome.problems
    );
    if read_only {
        tracing::error!("read-only: {why}");
        return Ok(());
    }
    Err(format!("refusing to serve: {why}"))
}
