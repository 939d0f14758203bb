//! Start-up recovery: the journal is the one truth; the engine and the registry's RocksDB
//! are both derived from it.
//!
//! 1. The journal is opened (a torn tail cut; damage, or an end before the durable mark,
//!    refused) and flushed (a crashed process's page cache is not yet the disk).
//! 2. The registry: opened when it is whole; rebuilt from the newest checkpoint that opens
//!    when it is missing, damaged or behind that checkpoint (a damaged one is moved aside,
//!    never deleted); from empty when no checkpoint exists and the journal starts at 1.
//! 3. The engine: the newest snapshot at or below what the registry has applied (the
//!    checkpoint and the snapshot of one sequence are a pair), or a fresh engine.
//! 4. The journal after the snapshot is replayed: engine commands into the engine (and the
//!    stream hub), registry records the registry has not applied yet into the registry,
//!    settlement points settling the legs the replayed engine produced, so the registry's
//!    hash-chained entries come out as they were written.
//!
//! A state that disagrees with the journal is refused (`Refusal`): a registry or a
//! snapshot past the journal's end, a settlement the registry refuses. `--read-only`
//! starts anyway, to inspect, and changes nothing on disk but a registry copy to read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::Engine;
use registry::tx::{SettleLeg, Tx};
use registry::{GROUP_TXS_MAX, Registry, RegistryOptions};

use crate::catalog::Catalog;
use crate::config::{Config, Durability};
use crate::config::{engine_config, journal_dir, registry_dir, snapshot_dir};
use crate::core::{MetricCounts, settlement_legs};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::regworker::settle_tx;
use journal::{self, Journal, Record, RegistryEntry};

/// What recovery did, for the log and for tests.
#[derive(Debug, Default)]
pub struct Recovered {
    pub replayed: u64,
    pub last_seq: u64,
    /// The journal sequence the registry had applied when it was opened (or restored).
    pub registry_from: u64,
    /// The registry was rebuilt: from the checkpoint at this sequence (0: from empty).
    pub registry_restored: Option<u64>,
    pub settle_legs: usize,
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Why this state must not be served (only `--read-only` gets this far with one).
    pub refusals: Vec<String>,
}

/// What recovery hands the server.
#[derive(Debug)]
pub struct State {
    pub engine: Engine,
    pub journal: Journal,
    pub registry: Registry,
    pub recovered: Recovered,
}

/// Recovers the state from the data directory; a state known to be wrong is an error
/// unless `read_only`.
pub fn recover(
    config: &Config,
    read_only: bool,
    catalog: &Catalog,
    hub: &Hub,
    metrics: &Metrics,
) -> Result<State, String> {
    let started = Instant::now();
    let (mut journal, report) = open_journal(config, read_only)?;
    let mut recovered = Recovered {
        last_seq: report.last_seq,
        truncated: report.truncated.clone(),
        ..Recovered::default()
    };
    if read_only && report.durable_mark > report.last_seq {
        recovered.refusals.push(format!(
            "the journal ends at {} but was durable through {}",
            report.last_seq, report.durable_mark
        ));
    }
    let mut registry =
        registry_for_replay(config, report.last_seq, read_only, catalog, &mut recovered)?;
    let (mut engine, from) = load_engine(config, registry.journal_seq(), catalog, hub)?;
    let mut replay = Replay::new(&mut registry, metrics, hub, catalog);
    recovered.replayed = journal::replay(&journal_dir(config), from, |record| {
        replay.record(&mut engine, record)
    })
    .map_err(|e| format!("journal replay: {e}"))?;
    if !read_only {
        replay.settle_the_rest(&mut journal, &mut engine)?;
    }
    replay.flush();
    recovered.settle_legs = replay.settle_legs;
    for why in std::mem::take(&mut replay.refused) {
        refuse(&mut recovered, read_only, why)?;
    }
    replay.counts.add_to(metrics);
    hub.notify();
    tracing::info!(
        replayed = recovered.replayed,
        from,
        last_seq = journal.last_seq(),
        registry_from = recovered.registry_from,
        registry_restored = ?recovered.registry_restored,
        settle_legs = recovered.settle_legs,
        tally = ?replay.tally,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovery: journal replayed"
    );
    Ok(State {
        engine,
        journal,
        registry,
        recovered,
    })
}

/// The registry opened (or rebuilt) for the replay, its units in the catalog; one past
/// the journal's end is refused.
fn registry_for_replay(
    config: &Config,
    journal_end: u64,
    read_only: bool,
    catalog: &Catalog,
    recovered: &mut Recovered,
) -> Result<Registry, String> {
    let (registry, restored) = open_registry(config, journal_end, read_only)?;
    recovered.registry_restored = restored;
    recovered.registry_from = registry.journal_seq();
    for (unit, def) in &registry.ledger().units {
        catalog.add_unit(*unit, def);
    }
    if registry.journal_seq() > journal_end {
        refuse(
            recovered,
            read_only,
            format!(
                "the registry has applied the journal through {} but the journal ends at {}: \
                 acknowledged records are missing from the journal",
                registry.journal_seq(),
                journal_end
            ),
        )?;
    }
    Ok(registry)
}

/// Records why the state must not be served: an error, or with `read_only` a note.
fn refuse(recovered: &mut Recovered, read_only: bool, why: String) -> Result<(), String> {
    if !read_only {
        return Err(format!("refusing to serve: {why}"));
    }
    tracing::error!("read-only: {why}");
    recovered.refusals.push(why);
    Ok(())
}

fn open_journal(
    config: &Config,
    read_only: bool,
) -> Result<(Journal, journal::OpenReport), String> {
    let dir = journal_dir(config);
    let opened = if read_only {
        Journal::open_read_only(&dir, config.limits.journal_segment_bytes)
    } else {
        Journal::open_with(
            &dir,
            config.limits.journal_segment_bytes,
            config.journal_preallocate,
        )
    };
    let (mut journal, report) = opened.map_err(|e| format!("refusing to serve: {e}"))?;
    journal.set_reserve(config.limits.disk_reserve_bytes);
    // Direct I/O where every batch is fsync'd into preallocated blocks: only the blocks a
    // batch touches reach the disk (journal/mod.rs). With async durability buffered writes
    // stay (a direct write waits for the device, which async mode exists to avoid).
    if !read_only && config.journal_preallocate && config.durability == Durability::Sync {
        let direct = journal
            .use_direct_io()
            .map_err(|e| format!("journal: {e}"))?;
        tracing::info!(direct_io = direct, "journal: write mode");
    }
    if let Some((segment, offset, bytes)) = &report.truncated {
        tracing::warn!(segment = %segment.display(), offset, bytes, read_only, "journal: torn tail (a batch cut before its fsync returned)");
    }
    journal.flush().map_err(|e| format!("journal: {e}"))?;
    Ok((journal, report))
}

/// The registry to recover into: as found when whole and not behind the newest
/// checkpoint, else rebuilt (see the module's notes). Returns it and, when it was rebuilt,
/// the checkpoint's sequence (0: from empty).
fn open_registry(
    config: &Config,
    journal_end: u64,
    read_only: bool,
) -> Result<(Registry, Option<u64>), String> {
    let dir = registry_dir(config);
    let options = RegistryOptions { sync: false };
    let newest_checkpoint = crate::snapshot::checkpoints(&snapshot_dir(config))
        .map_err(|e| format!("snapshots: {e}"))?
        .into_iter()
        .find(|(seq, _)| *seq <= journal_end)
        .map(|(seq, _)| seq);
    if Registry::exists(&dir) {
        match Registry::open(&dir, options) {
            Ok(r) if newest_checkpoint.is_none_or(|c| c <= r.journal_seq()) => {
                return Ok((r, None));
            }
            Ok(r) => tracing::warn!(
                applied = r.journal_seq(),
                checkpoint = newest_checkpoint,
                "recovery: the registry is behind its newest checkpoint; rebuilding from it"
            ),
            Err(e) => tracing::error!(
                "recovery: the registry does not open ({e}); rebuilding it from a checkpoint and the journal"
            ),
        }
    } else if journal_end == 0 && newest_checkpoint.is_none() {
        let r = Registry::open(&dir, options).map_err(|e| format!("registry: {e}"))?;
        return Ok((r, None));
    } else {
        tracing::error!(path = %dir.display(), "recovery: the registry is missing; rebuilding it from a checkpoint and the journal");
    }
    let target = if read_only {
        config.data_dir.join("registry.inspect")
    } else {
        set_aside(&dir)?;
        dir
    };
    rebuild_registry(config, &target, journal_end)
}

/// Moves a damaged or outdated registry out of the way (kept for the operator).
fn set_aside(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let aside = dir.with_extension(format!("damaged-{}", crate::core::now_ns() / 1_000_000_000));
    std::fs::rename(dir, &aside).map_err(|e| format!("moving {} aside: {e}", dir.display()))?;
    tracing::warn!(to = %aside.display(), "recovery: the old registry is kept there");
    Ok(())
}

/// A registry at `target` from the newest checkpoint (at or below the journal's end)
/// that opens, or empty when there is none and the journal starts at 1.
fn rebuild_registry(
    config: &Config,
    target: &Path,
    journal_end: u64,
) -> Result<(Registry, Option<u64>), String> {
    let options = RegistryOptions { sync: false };
    let checkpoints = crate::snapshot::checkpoints(&snapshot_dir(config))
        .map_err(|e| format!("snapshots: {e}"))?;
    for (seq, path) in checkpoints
        .into_iter()
        .filter(|(seq, _)| *seq <= journal_end)
    {
        let _ = std::fs::remove_dir_all(target);
        if let Err(e) = copy_dir(&path, target) {
            tracing::warn!(checkpoint = %path.display(), "recovery: checkpoint not copied: {e}");
            continue;
        }
        match Registry::open(target, options) {
            Ok(r) if r.journal_seq() == seq => {
                tracing::info!(seq, "recovery: registry restored from its checkpoint");
                return Ok((r, Some(seq)));
            }
            Ok(r) => tracing::warn!(
                seq,
                applied = r.journal_seq(),
                "recovery: checkpoint at another sequence; skipped"
            ),
            Err(e) => {
                tracing::warn!(checkpoint = %path.display(), "recovery: checkpoint does not open: {e}")
            }
        }
    }
    let first = journal::first_seq(&journal_dir(config)).unwrap_or(1);
    if first > 1 {
        return Err(format!(
            "refusing to serve: the registry must be rebuilt from the journal's start, but the \
             journal starts at {first}: move the archived segments back into {}",
            journal_dir(config).display()
        ));
    }
    let _ = std::fs::remove_dir_all(target);
    tracing::warn!(
        "recovery: no usable checkpoint; the registry is rebuilt from the whole journal"
    );
    let r = Registry::open(target, options).map_err(|e| format!("registry: {e}"))?;
    Ok((r, Some(0)))
}

/// Copies the files of a checkpoint (a flat directory) to `to`, synced.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest)?;
        std::fs::File::open(&dest)?.sync_all()?;
    }
    std::fs::File::open(to)?.sync_all()
}

/// The engine at the newest snapshot the registry has applied through (its stream
/// history, bars and recent trades restored), or a fresh one; and the journal sequence to
/// replay from.
fn load_engine(
    config: &Config,
    applied: u64,
    catalog: &Catalog,
    hub: &Hub,
) -> Result<(Engine, u64), String> {
    let (snapshot, skipped) = crate::snapshot::load_newest(&snapshot_dir(config), applied)
        .map_err(|e| format!("snapshots: {e}"))?;
    for why in skipped {
        tracing::warn!("recovery: snapshot skipped: {why}");
    }
    let Some(loaded) = snapshot else {
        return Ok((Engine::new(engine_config(config)), 1));
    };
    tracing::info!(seq = loaded.seq, path = %loaded.path.display(), "recovery: snapshot loaded");
    for i in loaded.engine.instruments() {
        catalog.add_instrument(i.instrument, i.symbol.as_str());
    }
    crate::catchup::rebuild_history(config, hub, loaded.seq)?;
    hub.set_bars(loaded.bars);
    if !loaded.trades.is_empty() {
        hub.set_trades(loaded.trades);
    }
    Ok((loaded.engine, loaded.seq + 1))
}

/// Replaying the journal into the engine and the registry.
struct Replay<'a> {
    registry: &'a mut Registry,
    metrics: &'a Metrics,
    hub: &'a Hub,
    catalog: &'a Catalog,
    /// Legs of the engine commands after the last settlement point.
    legs: Vec<SettleLeg>,
    /// Registry records to apply, in journal order, through `through`.
    group: Vec<Tx>,
    through: u64,
    events: Vec<engine::Event>,
    counts: MetricCounts,
    tally: BTreeMap<&'static str, u64>,
    settle_legs: usize,
    refused: Vec<String>,
    /// The latest time stamp replayed: the settlement point journaled for the legs left
    /// over carries it (their trades' time, not the restart's; the registry dates net
    /// sales by it).
    last_ts: u64,
}

impl<'a> Replay<'a> {
    fn new(
        registry: &'a mut Registry,
        metrics: &'a Metrics,
        hub: &'a Hub,
        catalog: &'a Catalog,
    ) -> Replay<'a> {
        Replay {
            registry,
            metrics,
            hub,
            catalog,
            legs: Vec::new(),
            group: Vec::new(),
            through: 0,
            events: Vec::with_capacity(64),
            counts: MetricCounts::default(),
            tally: BTreeMap::new(),
            settle_legs: 0,
            refused: Vec::new(),
            last_ts: 0,
        }
    }

    fn record(&mut self, engine: &mut Engine, record: &Record) -> Result<(), String> {
        let applied = self.registry.journal_seq();
        match record {
            Record::Engine(command) => {
                self.last_ts = self.last_ts.max(command.timestamp_ns);
                self.events.clear();
                engine
                    .apply(command, &mut self.events)
                    .map_err(|e| format!("{e:?}"))?;
                crate::core::tally(&self.events, &mut self.tally);
                self.counts.count(self.metrics, &self.events);
                self.hub
                    .publish(command.seq, command.timestamp_ns, &self.events);
                settlement_legs(&self.events, self.catalog, &mut self.legs);
            }
            Record::Registry { seq, .. } if *seq <= applied => {
                engine.pass(*seq).map_err(|e| format!("{e:?}"))?;
                // The registry has this one; a settlement point's legs are settled.
                if let Record::Registry {
                    entry: RegistryEntry::Settle { .. },
                    ..
                } = record
                {
                    self.legs.clear();
                }
            }
            Record::Registry {
                seq,
                timestamp_ns,
                entry,
            } => {
                engine.pass(*seq).map_err(|e| format!("{e:?}"))?;
                match entry {
                    RegistryEntry::Tx(tx) => {
                        // As the live path does before it creates the instrument: the
                        // engine's next `InstrumentCreated` finds its unit.
                        if let registry::tx::Op::CreateUnit { unit, def } = &tx.op {
                            self.catalog.add_unit(*unit, def);
                        }
                        self.group.push(tx.clone());
                    }
                    RegistryEntry::Settle { through_seq } => {
                        if !self.legs.is_empty() {
                            self.settle_legs += self.legs.len();
                            let legs = std::mem::take(&mut self.legs);
                            self.group
                                .push(settle_tx(*through_seq, *timestamp_ns, legs));
                        }
                    }
                }
                self.through = *seq;
                if self.group.len() >= GROUP_TXS_MAX {
                    self.flush();
                }
            }
        }
        Ok(())
    }

    /// Applies the registry records gathered, with the journal sequence they reach.
    fn flush(&mut self) {
        if self.through <= self.registry.journal_seq() {
            return;
        }
        let txs = std::mem::take(&mut self.group);
        let results = self.registry.apply_journaled(&txs, self.through);
        for (tx, result) in txs.iter().zip(results) {
            if let (registry::tx::Op::Settle { through_seq, .. }, Err(e)) = (&tx.op, result) {
                self.refused.push(format!(
                    "the registry refuses the settlement of the engine through {through_seq}: {e}"
                ));
            }
        }
        self.hub.notify();
    }

    /// Legs of the last engine commands, which no settlement point covers yet: a point is
    /// journaled for them now, so a later recovery settles them the same way.
    fn settle_the_rest(
        &mut self,
        journal: &mut Journal,
        engine: &mut Engine,
    ) -> Result<(), String> {
        if self.legs.is_empty() {
            return Ok(());
        }
        let through_seq = engine.last_seq();
        let timestamp_ns = self.last_ts;
        let seq = journal.append_settle(timestamp_ns, through_seq);
        journal
            .commit(true)
            .map_err(|e| format!("journal: settlement point after recovery: {e}"))?;
        engine.pass(seq).map_err(|e| format!("{e:?}"))?;
        self.settle_legs += self.legs.len();
        let legs = std::mem::take(&mut self.legs);
        self.group.push(settle_tx(through_seq, timestamp_ns, legs));
        self.through = seq;
        Ok(())
    }
}
