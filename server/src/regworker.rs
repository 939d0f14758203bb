//! The registry's single writer thread. The journal's registry records (transactions and
//! settlements) arrive from the core thread in journal order, once durable, on one bounded
//! queue, and are applied in groups (one RocksDB WriteBatch per group, without an fsync:
//! the journal is their durable record, and the registry records in each group the journal
//! sequence it reached); reads run between writes on the same thread. At each snapshot the
//! writer checkpoints the registry at the snapshot's sequence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use registry::Registry;
use registry::model::{AccountId, UnitId};
use registry::tx::{Op, Outcome, SettleLeg, Tx};
use tokio::sync::{oneshot, watch};

use crate::catalog::Catalog;
use crate::core::{EngineHoldings, RegistryReply};
use crate::error::ApiError;
use crate::metrics::Metrics;

pub type RegistryRead = Box<dyn FnOnce(&Registry) + Send>;

pub enum RegJob {
    /// The registry transaction journaled at `journal_seq`.
    Tx {
        journal_seq: u64,
        tx: Tx,
        reply: RegistryReply,
    },
    /// The settlement point journaled at `journal_seq`: the engine's trades and
    /// withdrawals through `through_seq` (legs may be empty: then only the watermark moves).
    Settle {
        journal_seq: u64,
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
        trades: Vec<crate::hub::TradeRecord>,
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

    pub fn settle(
        &self,
        journal_seq: u64,
        through_seq: u64,
        timestamp_ns: u64,
        legs: Vec<SettleLeg>,
    ) {
        self.send_blocking(RegJob::Settle {
            journal_seq,
            through_seq,
            timestamp_ns,
            legs,
        });
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

/// Starts the writer thread; `settled` reports the journal sequence of the last
/// settlement applied.
pub fn start(
    registry: Registry,
    queue_depth: usize,
    group_max: usize,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    snapshots: SnapshotFiles,
) -> std::io::Result<(RegistryHandle, watch::Receiver<u64>, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(queue_depth);
    let (settled_tx, settled_rx) = watch::channel(registry.journal_seq());
    metrics
        .settled_seq
        .store(registry.journal_seq(), Ordering::Relaxed);
    let m = metrics.clone();
    let snapshot_dir = snapshots.dir.clone();
    let snap_tx = start_snapshot_writer(snapshots)?;
    let writer = Writer {
        registry,
        group_max,
        catalog,
        metrics: m,
        settled: settled_tx,
        snapshots: snap_tx,
        snapshot_dir,
    };
    let handle = std::thread::Builder::new()
        .name("registry".into())
        .spawn(move || writer.run(rx))?;
    Ok((RegistryHandle { tx, metrics }, settled_rx, handle))
}

/// Snapshot files are written by their own thread: one waiting at most, later ones are
/// skipped while it is busy (the next interval brings another).
fn start_snapshot_writer(snapshots: SnapshotFiles) -> std::io::Result<SyncSender<SnapshotJob>> {
    let SnapshotFiles {
        dir: snapshot_dir,
        archive_journal,
        copy_buffer,
    } = snapshots;
    let (snap_tx, snap_rx) = sync_channel::<SnapshotJob>(1);
    std::thread::Builder::new()
        .name("snapshot-writer".into())
        .spawn(move || {
            while let Ok(job) = snap_rx.recv() {
                let started = std::time::Instant::now();
                let mut engine = job.engine;
                engine::seal_snapshot(&mut engine);
                let bytes = crate::snapshot::encode(job.seq, &engine, &job.bars, &job.trades);
                engine.clear();
                *copy_buffer.lock() = Some(engine);
                let result = crate::snapshot::write(&snapshot_dir, job.seq, &bytes)
                    .map(|_| job.seq)
                    .map_err(|e| e.to_string());
                match &result {
                    Ok(_) => tracing::info!(
                        seq = job.seq,
                        bytes = bytes.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "snapshot written"
                    ),
                    Err(e) => tracing::error!(seq = job.seq, "snapshot not written: {e}"),
                }
                if result.is_ok()
                    && let Some(journal) = &archive_journal
                {
                    archive(journal, &snapshot_dir);
                }
                if let Some(reply) = job.reply {
                    let _ = reply.send(result);
                }
            }
        })?;
    Ok(snap_tx)
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
    match journal::archive_through(journal, older) {
        Ok(moved) if moved.is_empty() => {}
        Ok(moved) => tracing::info!(
            through = older,
            segments = moved.len(),
            "journal segments archived"
        ),
        Err(e) => tracing::warn!("journal not archived: {e}"),
    }
}

/// A snapshot for the snapshot writer thread, its registry checkpoint made.
struct SnapshotJob {
    seq: u64,
    engine: Vec<u8>,
    bars: Vec<engine::DailyBar>,
    trades: Vec<crate::hub::TradeRecord>,
    reply: Option<oneshot::Sender<Result<u64, String>>>,
}

/// What a group's result goes back to.
enum Pending {
    Reply(RegistryReply),
    /// A settlement point at this journal sequence (with a transaction when it has legs).
    Settle {
        journal_seq: u64,
        has_tx: bool,
    },
}

/// The registry writer thread's state.
struct Writer {
    registry: Registry,
    group_max: usize,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    settled: watch::Sender<u64>,
    snapshots: SyncSender<SnapshotJob>,
    snapshot_dir: std::path::PathBuf,
}

/// A group being built: transactions to apply together, what each result answers, and
/// the journal sequence the group reaches.
#[derive(Default)]
struct Group {
    txs: Vec<Tx>,
    pending: Vec<Pending>,
    journal_seq: u64,
}

/// While the store refuses writes (a full disk), they are tried again this often.
const RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl Writer {
    fn run(mut self, rx: Receiver<RegJob>) {
        let mut stopping = false;
        while !stopping {
            let first = if self.registry.unwritten() > 0 {
                match rx.recv_timeout(RETRY_INTERVAL) {
                    Ok(job) => job,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.retry();
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            let mut jobs = vec![first];
            while jobs.len() < self.group_max {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.metrics
                .registry_queue
                .fetch_sub(jobs.len() as i64, Ordering::Relaxed);
            let mut group = Group::default();
            for job in jobs {
                stopping |= self.take(job, &mut group);
            }
            self.commit(&mut group);
        }
    }

    /// Adds a journaled job to `group`, or commits the group and runs the job (reads,
    /// reconciliation, snapshots run after everything before them). True at `Stop`.
    fn take(&mut self, job: RegJob, group: &mut Group) -> bool {
        match job {
            RegJob::Tx {
                journal_seq,
                tx,
                reply,
            } => {
                group.txs.push(tx);
                group.pending.push(Pending::Reply(reply));
                group.journal_seq = journal_seq;
            }
            RegJob::Settle {
                journal_seq,
                through_seq,
                timestamp_ns,
                legs,
            } => {
                let has_tx = !legs.is_empty();
                if has_tx {
                    group.txs.push(settle_tx(through_seq, timestamp_ns, legs));
                }
                group.pending.push(Pending::Settle {
                    journal_seq,
                    has_tx,
                });
                group.journal_seq = journal_seq;
            }
            RegJob::Read(f) => {
                self.commit(group);
                f(&self.registry);
            }
            RegJob::Reconcile { holdings, reply } => {
                self.commit(group);
                let _ = reply.send(reconcile(&self.registry, &holdings, &self.catalog));
            }
            RegJob::Snapshot {
                seq,
                engine,
                bars,
                trades,
                reply,
            } => {
                self.commit(group);
                self.snapshot(SnapshotJob {
                    seq,
                    engine,
                    bars,
                    trades,
                    reply,
                });
            }
            RegJob::Stop => {
                self.commit(group);
                self.retry();
                return true;
            }
        }
        false
    }

    /// Applies the group in one WriteBatch (written again later if the store refuses it)
    /// and answers each of its jobs.
    fn commit(&mut self, group: &mut Group) {
        if group.pending.is_empty() {
            return;
        }
        if !group.txs.is_empty() {
            self.metrics.registry_groups.fetch_add(1, Ordering::Relaxed);
        }
        let results = self.registry.apply_journaled(&group.txs, group.journal_seq);
        self.metrics
            .registry_unwritten
            .store(self.registry.unwritten() as u64, Ordering::Relaxed);
        group.txs.clear();
        let mut results = results.into_iter();
        for p in group.pending.drain(..) {
            match p {
                Pending::Reply(reply) => {
                    let result = results
                        .next()
                        .unwrap_or_else(|| fatal("a registry group lost a result"));
                    let _ = reply.send(result.map_err(|e| ApiError::registry(&e)));
                }
                Pending::Settle {
                    journal_seq,
                    has_tx,
                } => {
                    if has_tx && let Some(Err(e)) = results.next() {
                        // The two ledgers disagree (a broken invariant). The refusal is
                        // what the journal makes of this record (a rebuild refuses it
                        // too), but no more changes are taken: health says NOT_SERVING,
                        // Reconcile shows the difference, start-up refuses to serve it.
                        self.metrics
                            .settlement_failures
                            .fetch_add(1, Ordering::Relaxed);
                        self.metrics.halted.store(true, Ordering::Release);
                        tracing::error!(journal_seq, error = %e, code = e.code(),
                            "settlement refused by the registry; no more changes are accepted");
                    }
                    self.settled.send_replace(journal_seq);
                    self.metrics
                        .settled_seq
                        .store(journal_seq, Ordering::Relaxed);
                }
            }
        }
    }

    fn retry(&mut self) {
        self.registry.retry_unwritten();
        self.metrics
            .registry_unwritten
            .store(self.registry.unwritten() as u64, Ordering::Relaxed);
    }

    /// Checkpoints the registry at the snapshot's sequence, then hands the engine's part
    /// to the snapshot writer thread. Without its checkpoint no snapshot file is written.
    fn snapshot(&mut self, job: SnapshotJob) {
        let seq = job.seq;
        let refuse = |reply: Option<oneshot::Sender<Result<u64, String>>>, why: String| {
            tracing::warn!(seq, "snapshot skipped: {why}");
            if let Some(reply) = reply {
                let _ = reply.send(Err(why));
            }
        };
        // Every record through `seq` is applied (the core sent them before this); the
        // last ones may have been engine commands only.
        let _ = self.registry.apply_journaled(&[], job.seq);
        let path = crate::snapshot::checkpoint_path(&self.snapshot_dir, job.seq);
        if !path.exists() {
            let made = std::fs::create_dir_all(&self.snapshot_dir)
                .map_err(|e| e.to_string())
                .and_then(|()| self.registry.checkpoint(&path).map_err(|e| e.to_string()));
            if let Err(e) = made {
                return refuse(job.reply, format!("registry checkpoint: {e}"));
            }
        }
        if let Err(std::sync::mpsc::TrySendError::Full(job)) = self.snapshots.try_send(job) {
            refuse(
                job.reply,
                "the previous snapshot is still being written".into(),
            );
        }
    }
}

/// A broken invariant between the ledgers: stop before anything more is answered;
/// recovery rebuilds the registry from the journal.
fn fatal(message: &str) -> ! {
    tracing::error!("{message}; stopping");
    eprintln!("carbonx: {message}; stopping");
    std::process::exit(70);
}

pub fn settle_tx(through_seq: u64, timestamp_ns: u64, legs: Vec<SettleLeg>) -> Tx {
    Tx {
        key: format!("settle:{through_seq}"),
        actor: 0,
        timestamp_ns,
        op: Op::Settle { through_seq, legs },
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
