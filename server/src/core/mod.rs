//! The path from a request to the state and back, on one thread (`core`) fed by a bounded
//! queue (std's `sync_channel`, a lock-free array queue):
//!
//! ```text
//! handlers --try_send--> core thread, per batch (sequencer.rs):
//!                          1. stamp seq + time on every command and registry
//!                             transaction, add settlement points, journal the batch:
//!                             one write + fsync
//!                          2. apply it (only once durable): engine commands to the
//!                             engine; run queries (pipeline.rs)
//!                          3. dispatch: reply to callers (a oneshot, or a stream's sink
//!                             woken at its first result and at the end of the batch),
//!                             publish to the stream hub, hand registry transactions and
//!                             settlements to the registry writer, in journal order
//! ```
//! One thread, because on a small machine every hand-off between threads costs a wake-up
//! and a context switch per batch, and while the fsync is in flight the requests that
//! arrive form the next batch anyway (measured: BENCHMARKS.md, issue 9).
//! A handler never waits on a full queue: `try_send` fails at once with RESOURCE_EXHAUSTED.
//! The core blocks on the registry writer's bounded queue, so a slow registry slows intake
//! (and then sheds load) instead of growing a queue without bound.
//! While the disk is full (`Metrics::disk_full`) or the server runs read-only, changes are
//! refused at the queue, before anything is journaled; queries still run.

mod pipeline;
mod sequencer;
mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{CommandKind, Engine, Event, EventKind, InstrumentId};
use registry::tx::{Receipt, Tx};
use tokio::sync::{oneshot, watch};

use crate::catalog::Catalog;
use crate::config::Durability;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::regworker::RegistryHandle;
use journal::Journal;

pub use pipeline::{MetricCounts, engine_holdings, settlement_legs, tally};
pub use sink::ReplySink;

/// A command as applied: its sequence, stamp and events. Sequence 0 means it was refused
/// before it was journaled (the journal could not take the batch: a full disk), so it
/// never happened.
#[derive(Clone, Debug)]
pub struct Applied {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub events: Vec<Event>,
}

impl Applied {
    /// The engine's rejection of this command, if it was refused.
    pub fn rejection(&self) -> Option<engine::Reject> {
        self.events.iter().find_map(|e| match e.kind {
            EventKind::Rejected { reason } => Some(reason),
            _ => None,
        })
    }

    /// A command refused before it was journaled.
    pub(crate) fn not_journaled() -> Applied {
        Applied {
            seq: 0,
            timestamp_ns: 0,
            events: Vec::new(),
        }
    }

    /// Whether the command was refused before it was journaled (see `not_journaled`).
    pub fn was_journaled(&self) -> bool {
        self.seq != 0
    }
}

/// Holdings of every (account, instrument) at one engine sequence: free + locked + pending.
#[derive(Clone, Debug, Default)]
pub struct EngineHoldings {
    pub seq: u64,
    pub holdings: Vec<(u64, InstrumentId, u64)>,
}

pub type EngineQuery = Box<dyn FnOnce(&Engine) + Send>;

/// Where an applied command goes once it is durable and applied.
pub(crate) enum Reply {
    Once(oneshot::Sender<Applied>),
    /// Appended to a stream's sink, which the dispatcher wakes at most twice per batch.
    Sink(Arc<ReplySink>),
}

/// Where a registry transaction's result goes.
pub type RegistryReply = oneshot::Sender<Result<Receipt, ApiError>>;

pub(crate) enum Submission {
    Command {
        kind: CommandKind,
        reply: Reply,
    },
    /// A registry or compliance transaction: journaled, then applied by the registry
    /// writer in journal order.
    Registry {
        tx: Tx,
        reply: RegistryReply,
    },
    Query(EngineQuery),
    /// Capture the engine's holdings, then compare in the registry once settled to there.
    Reconcile(oneshot::Sender<crate::regworker::ReconcileOutcome>),
    /// Snapshot the engine now; the reply carries the sequence once the file is durable.
    Snapshot(oneshot::Sender<Result<u64, String>>),
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Submission")
    }
}

/// The handle services use.
#[derive(Clone, Debug)]
pub struct Core {
    tx: SyncSender<Submission>,
    pub metrics: Arc<Metrics>,
    pub hub: Arc<Hub>,
    pub catalog: Arc<Catalog>,
    pub registry: RegistryHandle,
    settled: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
    read_only: bool,
}

/// Threads of the pipeline, joined at shutdown.
#[derive(Debug)]
pub struct Threads {
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

#[derive(Debug)]
pub struct CoreParts {
    pub engine: Engine,
    pub journal: Journal,
    pub durability: Durability,
    pub async_flush: Duration,
    pub queue_depth: usize,
    pub batch_max: usize,
    pub metrics: Arc<Metrics>,
    pub hub: Arc<Hub>,
    pub catalog: Arc<Catalog>,
    pub registry: RegistryHandle,
    /// The journal sequence of the last settlement the registry applied.
    pub settled: watch::Receiver<u64>,
    /// Snapshot the engine every this many commands (0: only when asked).
    pub snapshot_every: u64,
    /// Where the snapshot writer hands the last copy's buffer back.
    pub copy_buffer: crate::snapshot::CopyBuffer,
    /// Refuse every change (the operator inspects a state the server would not serve).
    pub read_only: bool,
    /// The time stamped on commands and settlement points (the registry dates trades by
    /// it; tests move it by hand).
    pub clock: crate::scheduler::Clock,
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Core {
    /// Starts the core thread.
    pub fn start(parts: CoreParts) -> std::io::Result<(Core, Threads)> {
        let (tx, rx) = sync_channel::<Submission>(parts.queue_depth);
        let stop = Arc::new(AtomicBool::new(false));
        let core = Core {
            tx,
            metrics: parts.metrics.clone(),
            hub: parts.hub.clone(),
            catalog: parts.catalog.clone(),
            registry: parts.registry.clone(),
            settled: parts.settled.clone(),
            stop: stop.clone(),
            read_only: parts.read_only,
        };
        let handle = std::thread::Builder::new()
            .name("core".into())
            .spawn(move || sequencer::run(parts, rx, &stop))?;
        Ok((
            core,
            Threads {
                handles: vec![handle],
            },
        ))
    }

    /// Stops the pipeline once the queue is drained (later submissions are refused).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether this server refuses every change.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    fn send(&self, submission: Submission) -> Result<(), ApiError> {
        if self.stop.load(Ordering::Acquire) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        if matches!(
            submission,
            Submission::Command { .. } | Submission::Registry { .. }
        ) {
            if self.read_only {
                return Err(ApiError::read_only());
            }
            if self.metrics.halted.load(Ordering::Acquire) {
                return Err(ApiError::new(
                    tonic::Code::FailedPrecondition,
                    "SETTLEMENT_STOPPED",
                    "",
                    "the registry refused a settlement; no changes are accepted until an operator restarts the server",
                ));
            }
            if self.metrics.disk_full.load(Ordering::Acquire) {
                self.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::disk_full());
            }
        }
        match self.tx.try_send(submission) {
            Ok(()) => {
                self.metrics.sequencer_queue.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::exhausted(
                    "QUEUE_FULL",
                    "the sequencer queue is full; retry with backoff",
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::unavailable("the server is shutting down"))
            }
        }
    }

    /// Queues a command; the receiver resolves once it is durable and applied.
    pub fn submit(&self, kind: CommandKind) -> Result<oneshot::Receiver<Applied>, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.send(Submission::Command {
            kind,
            reply: Reply::Once(reply),
        })?;
        Ok(rx)
    }

    /// Queues a command whose result goes to `sink` (an order-entry stream's).
    pub fn submit_to(&self, kind: CommandKind, sink: &Arc<ReplySink>) -> Result<(), ApiError> {
        self.send(Submission::Command {
            kind,
            reply: Reply::Sink(sink.clone()),
        })
    }

    /// Submits and waits for the command to be durable and applied.
    pub async fn execute(&self, kind: CommandKind) -> Result<Applied, ApiError> {
        let rx = self.submit(kind)?;
        let applied = rx
            .await
            .map_err(|_| ApiError::unavailable("the engine stopped before replying"))?;
        if !applied.was_journaled() {
            return Err(ApiError::disk_full());
        }
        Ok(applied)
    }

    /// `execute` for a transfer (funds credited or debited, allowances deposited or
    /// withdrawn) that is not a retry: a transfer the engine applied before is answered
    /// with the command that applied it, and nothing new is journaled.
    pub async fn execute_once(&self, kind: CommandKind) -> Result<Applied, ApiError> {
        use engine::CommandKind as K;
        let transfer = match kind {
            K::CreditFunds { transfer, .. }
            | K::DebitFunds { transfer, .. }
            | K::DepositAllowances { transfer, .. }
            | K::WithdrawAllowances { transfer, .. } => transfer,
            _ => return self.execute(kind).await,
        };
        let probe = kind;
        match self.query(move |e| e.transfer_seen(&probe)).await? {
            engine::TransferSeen::Applied(seq) => Ok(Applied {
                seq,
                timestamp_ns: 0,
                events: vec![Event {
                    seq,
                    kind: EventKind::TransferAlreadyApplied { transfer },
                }],
            }),
            _ => self.execute(kind).await,
        }
    }

    /// Journals a registry transaction and waits for the registry writer's result (once
    /// the journal holds it durably, in every durability mode).
    pub async fn registry_tx(&self, tx: Tx) -> Result<Receipt, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.send(Submission::Registry { tx, reply })?;
        rx.await
            .map_err(|_| ApiError::unavailable("the registry stopped before replying"))?
    }

    /// Runs `f` on the engine thread, in sequence with commands (reads see every earlier
    /// command of the same caller).
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.send(Submission::Query(Box::new(move |engine: &Engine| {
            let _ = reply.send(f(engine));
        })))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the engine stopped before replying"))
    }

    /// Snapshots the engine (and checkpoints the registry) at the journal's current
    /// sequence; resolves once both are durable.
    pub async fn snapshot(&self) -> Result<u64, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.send(Submission::Snapshot(reply))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the server stopped before the snapshot"))?
            .map_err(ApiError::unavailable)
    }

    pub async fn reconcile(&self) -> Result<crate::regworker::ReconcileOutcome, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.send(Submission::Reconcile(reply))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the server stopped before reconciling"))
    }

    /// Waits until the registry has settled the engine through `seq`.
    pub async fn wait_settled(&self, seq: u64) -> Result<(), ApiError> {
        let mut rx = self.settled.clone();
        rx.wait_for(|s| *s >= seq)
            .await
            .map(|_| ())
            .map_err(|_| ApiError::unavailable("settlement stopped"))
    }
}
