//! The registry's single writer thread. Requests and settlement batches arrive on one
//! bounded queue and are committed in groups (one RocksDB WriteBatch and one fsync per
//! group), in arrival order; reads run between writes on the same thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use registry::model::{AccountId, UnitId};
use registry::tx::{Op, Outcome, Receipt, SettleLeg, Tx};
use registry::{Registry, RegistryError};
use tokio::sync::{oneshot, watch};

use crate::catalog::Catalog;
use crate::core::EngineHoldings;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub type RegistryRead = Box<dyn FnOnce(&Registry) + Send>;

pub enum RegJob {
    Tx(Tx, oneshot::Sender<Result<Receipt, RegistryError>>),
    /// Settlement of the engine through `through_seq` (legs may be empty: then only the
    /// watermark moves).
    Settle {
        through_seq: u64,
        timestamp_ns: u64,
        legs: Vec<SettleLeg>,
    },
    Read(RegistryRead),
    Reconcile {
        holdings: EngineHoldings,
        reply: oneshot::Sender<ReconcileOutcome>,
    },
    /// An engine snapshot at `seq` (the engine's bytes and the daily bars): settle the
    /// watermark up to `seq`, then hand it to the snapshot writer, which encodes (CRC
    /// included) and writes the file off the core thread and the writer's thread.
    Snapshot {
        seq: u64,
        /// `Engine::snapshot_unsealed`: the snapshot writer adds the checksum.
        engine: Vec<u8>,
        bars: Vec<engine::DailyBar>,
        reply: Option<oneshot::Sender<Result<u64, String>>>,
    },
    /// Sent by the core thread after its last settlement: finish and stop.
    Stop,
}

impl std::fmt::Debug for RegJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegJob")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub account: u64,
    pub unit: UnitId,
    pub registry_trading_t: u64,
    pub exchange_t: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileOutcome {
    pub seq: u64,
    pub differences: Vec<Difference>,
    pub problems: Vec<String>,
    pub accounts_checked: u64,
}

impl ReconcileOutcome {
    pub fn clean(&self) -> bool {
        self.differences.is_empty() && self.problems.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct RegistryHandle {
    tx: SyncSender<RegJob>,
    metrics: Arc<Metrics>,
}

impl RegistryHandle {
    /// A handle with no writer behind it: what the core hands on is left in the receiver
    /// for a test to read.
    #[cfg(test)]
    pub(crate) fn detached(
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> (RegistryHandle, std::sync::mpsc::Receiver<RegJob>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        (RegistryHandle { tx, metrics }, rx)
    }

    fn try_send(&self, job: RegJob) -> Result<(), ApiError> {
        match self.tx.try_send(job) {
            Ok(()) => {
                self.metrics.registry_queue.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::exhausted(
                    "QUEUE_FULL",
                    "the registry queue is full; retry with backoff",
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::unavailable("the registry is shutting down"))
            }
        }
    }

    /// For the dispatcher: waits for room (settlement must never be dropped).
    pub fn send_blocking(&self, job: RegJob) {
        self.metrics.registry_queue.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(job).is_err() {
            tracing::error!(
                "registry writer gone; settlement resumes from the watermark at restart"
            );
        }
    }

    pub fn settle(&self, through_seq: u64, timestamp_ns: u64, legs: Vec<SettleLeg>) {
        self.send_blocking(RegJob::Settle {
            through_seq,
            timestamp_ns,
            legs,
        });
    }

    /// Commits one transaction (grouped with others) and returns its receipt.
    pub async fn apply(&self, tx: Tx) -> Result<Receipt, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.try_send(RegJob::Tx(tx, reply))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the registry stopped before replying"))?
            .map_err(|e| ApiError::registry(&e))
    }

    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Registry) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.try_send(RegJob::Read(Box::new(move |r: &Registry| {
            let _ = reply.send(f(r));
        })))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the registry stopped before replying"))
    }
}

/// Where the snapshot writer thread puts snapshot files and what it does after each.
#[derive(Debug)]
pub struct SnapshotFiles {
    pub dir: std::path::PathBuf,
    /// The journal directory whose segments recovery no longer needs go to its archive.
    pub archive_journal: Option<std::path::PathBuf>,
    /// Where the engine copy's buffer goes back to the core thread once written.
    pub copy_buffer: crate::snapshot::CopyBuffer,
}

/// Starts the writer thread; `settled` reports the settlement watermark.
pub fn start(
    registry: Registry,
    queue_depth: usize,
    group_max: usize,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    snapshots: SnapshotFiles,
) -> std::io::Result<(RegistryHandle, watch::Receiver<u64>, JoinHandle<()>)> {
    let SnapshotFiles {
        dir: snapshot_dir,
        archive_journal,
        copy_buffer,
    } = snapshots;
    let (tx, rx) = sync_channel(queue_depth);
    let (settled_tx, settled_rx) = watch::channel(registry.ledger().settled_seq);
    metrics
        .settled_seq
        .store(registry.ledger().settled_seq, Ordering::Relaxed);
    let m = metrics.clone();
    // Snapshot files are written by their own thread: one waiting at most, later ones are
    // skipped while it is busy (the next interval brings another).
    let (snap_tx, snap_rx) = sync_channel::<SnapshotJob>(1);
    std::thread::Builder::new()
        .name("snapshot-writer".into())
        .spawn(move || {
            while let Ok((seq, engine, bars, reply)) = snap_rx.recv() {
                let started = std::time::Instant::now();
                let mut engine = engine;
                engine::seal_snapshot(&mut engine);
                let bytes = crate::snapshot::encode(seq, &engine, &bars);
                engine.clear();
                *copy_buffer.lock() = Some(engine);
                let result = crate::snapshot::write(&snapshot_dir, seq, &bytes)
                    .map(|_| seq)
                    .map_err(|e| e.to_string());
                match &result {
                    Ok(_) => tracing::info!(
                        seq,
                        bytes = bytes.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "snapshot written"
                    ),
                    Err(e) => tracing::error!(seq, "snapshot not written: {e}"),
                }
                if result.is_ok()
                    && let Some(journal) = &archive_journal
                {
                    archive(journal, &snapshot_dir);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        })?;
    let handle = std::thread::Builder::new()
        .name("registry".into())
        .spawn(move || writer_loop(registry, rx, group_max, &catalog, &m, &settled_tx, &snap_tx))?;
    Ok((RegistryHandle { tx, metrics }, settled_rx, handle))
}

/// Moves the journal segments recovery no longer needs to the archive: those wholly at or
/// before the older of the snapshots kept (the registry settled through both before they
/// were written, and recovery falls back to the older one at worst).
fn archive(journal: &std::path::Path, snapshot_dir: &std::path::Path) {
    let kept = match crate::snapshot::list(snapshot_dir) {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!("journal not archived: snapshots: {e}");
            return;
        }
    };
    if kept.len() < crate::snapshot::SNAPSHOTS_KEPT {
        return;
    }
    let Some(&(older, _)) = kept.last() else {
        return;
    };
    match crate::journal::archive_through(journal, older) {
        Ok(moved) if moved.is_empty() => {}
        Ok(moved) => tracing::info!(
            through = older,
            segments = moved.len(),
            "journal segments archived"
        ),
        Err(e) => tracing::warn!("journal not archived: {e}"),
    }
}

type SnapshotJob = (
    u64,
    Vec<u8>,
    Vec<engine::DailyBar>,
    Option<oneshot::Sender<Result<u64, String>>>,
);

enum Pending {
    Reply(oneshot::Sender<Result<Receipt, RegistryError>>),
    Settle { through: u64, has_tx: bool },
}

fn writer_loop(
    mut registry: Registry,
    rx: Receiver<RegJob>,
    group_max: usize,
    catalog: &Catalog,
    metrics: &Metrics,
    settled: &watch::Sender<u64>,
    snapshots: &SyncSender<SnapshotJob>,
) {
    let mut failed = false;
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else {
            break;
        };
        let mut jobs = vec![first];
        while jobs.len() < group_max {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics
            .registry_queue
            .fetch_sub(jobs.len() as i64, Ordering::Relaxed);
        let mut txs: Vec<Tx> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        for job in jobs {
            match job {
                RegJob::Tx(tx, reply) => {
                    txs.push(tx);
                    pending.push(Pending::Reply(reply));
                }
                RegJob::Settle {
                    through_seq,
                    timestamp_ns,
                    legs,
                } => {
                    if failed {
                        continue;
                    }
                    let has_tx = !legs.is_empty();
                    if has_tx {
                        txs.push(settle_tx(through_seq, timestamp_ns, legs));
                    }
                    pending.push(Pending::Settle {
                        through: through_seq,
                        has_tx,
                    });
                }
                RegJob::Read(f) => {
                    flush(
                        &mut registry,
                        &mut txs,
                        &mut pending,
                        metrics,
                        settled,
                        &mut failed,
                        false,
                    );
                    f(&registry);
                }
                RegJob::Reconcile { holdings, reply } => {
                    flush(
                        &mut registry,
                        &mut txs,
                        &mut pending,
                        metrics,
                        settled,
                        &mut failed,
                        false,
                    );
                    let _ = reply.send(reconcile(&registry, &holdings, catalog));
                }
                RegJob::Snapshot {
                    seq,
                    engine,
                    bars,
                    reply,
                } => {
                    flush(
                        &mut registry,
                        &mut txs,
                        &mut pending,
                        metrics,
                        settled,
                        &mut failed,
                        true,
                    );
                    let refuse = |reply: Option<oneshot::Sender<Result<u64, String>>>,
                                  why: String| {
                        tracing::warn!(seq, "snapshot skipped: {why}");
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(why));
                        }
                    };
                    if failed {
                        refuse(reply, "settlement has stopped".into());
                        continue;
                    }
                    // A snapshot may only be used once the registry has settled everything
                    // it covers: move the watermark up to it (an empty settlement).
                    if registry.ledger().settled_seq < seq
                        && let Err(e) = registry.apply(&settle_tx(seq, 0, Vec::new()))
                    {
                        refuse(reply, format!("watermark: {e}"));
                        continue;
                    }
                    if let Err(std::sync::mpsc::TrySendError::Full((_, _, _, reply))) =
                        snapshots.try_send((seq, engine, bars, reply))
                    {
                        refuse(reply, "the previous snapshot is still being written".into());
                    }
                }
                RegJob::Stop => stopping = true,
            }
        }
        flush(
            &mut registry,
            &mut txs,
            &mut pending,
            metrics,
            settled,
            &mut failed,
            stopping,
        );
    }
}

pub fn settle_tx(through_seq: u64, timestamp_ns: u64, legs: Vec<SettleLeg>) -> Tx {
    Tx {
        key: format!("settle:{through_seq}"),
        actor: 0,
        timestamp_ns,
        op: Op::Settle { through_seq, legs },
    }
}

fn flush(
    registry: &mut Registry,
    txs: &mut Vec<Tx>,
    pending: &mut Vec<Pending>,
    metrics: &Metrics,
    settled: &watch::Sender<u64>,
    failed: &mut bool,
    sync: bool,
) {
    if pending.is_empty() {
        return;
    }
    // Settlement alone is rebuilt from the engine journal after a crash (recovery
    // re-settles everything after the registry's durable `settled_seq`), so it commits
    // without an fsync; anything answered to a caller is synced (and with it, RocksDB's
    // log being sequential, every settlement before it). A snapshot's flush is synced too,
    // so the snapshot is usable after a crash.
    let sync = sync || pending.iter().any(|p| matches!(p, Pending::Reply(_)));
    let mut results = if txs.is_empty() {
        Vec::new()
    } else {
        metrics.registry_groups.fetch_add(1, Ordering::Relaxed);
        registry.apply_group_with(txs, sync)
    }
    .into_iter();
    txs.clear();
    for p in pending.drain(..) {
        match p {
            Pending::Reply(reply) => {
                let result = results.next().unwrap_or(Err(RegistryError::Poisoned));
                let _ = reply.send(result);
            }
            Pending::Settle { through, has_tx } => {
                if has_tx && let Some(Err(e)) = results.next() {
                    *failed = true;
                    metrics.settlement_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(through, error = %e, code = e.code(),
                            "settlement refused by the registry; settlement stopped, Reconcile will show the difference");
                }
                if !*failed {
                    settled.send_replace(through);
                    metrics.settled_seq.store(through, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Registry trading positions against the engine's holdings, and the registry's own
/// conservation invariants.
pub fn reconcile(
    registry: &Registry,
    engine: &EngineHoldings,
    catalog: &Catalog,
) -> ReconcileOutcome {
    let mut exchange: BTreeMap<(u64, UnitId), u64> = BTreeMap::new();
    let mut problems = Vec::new();
    for &(account, instrument, total) in &engine.holdings {
        match catalog.unit_of(instrument) {
            Some(unit) => *exchange.entry((account, unit)).or_insert(0) += total,
            None => problems.push(format!(
                "engine instrument {} has no registry unit",
                instrument.0
            )),
        }
    }
    let ledger = registry.ledger();
    let mut keys: Vec<(u64, UnitId)> = exchange.keys().copied().collect();
    for ((account, unit), h) in &ledger.holdings {
        if h.trading_t > 0 {
            keys.push((account.0, *unit));
        }
    }
    keys.sort();
    keys.dedup();
    let mut differences = Vec::new();
    for (account, unit) in keys {
        let registry_trading_t = ledger.holding(AccountId(account), unit).trading_t;
        let exchange_t = exchange.get(&(account, unit)).copied().unwrap_or(0);
        if registry_trading_t != exchange_t {
            differences.push(Difference {
                account,
                unit,
                registry_trading_t,
                exchange_t,
            });
        }
    }
    if let Err(e) = registry.check_invariants() {
        problems.push(e);
    }
    ReconcileOutcome {
        seq: engine.seq,
        differences,
        problems,
        accounts_checked: ledger.accounts.len() as u64,
    }
}

/// Outcome to a journal-facing receipt id.
pub fn outcome_ids(outcome: Outcome) -> (u64, u64) {
    match outcome {
        Outcome::Done | Outcome::Unchanged => (0, 0),
        Outcome::Proposed { proposal } => (proposal, 0),
        Outcome::Pledged { pledge } => (0, pledge),
    }
}
