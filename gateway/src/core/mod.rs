//! The path from a request to the engine and back, on one thread (`core`) fed by a
//! bounded queue (std's `sync_channel`, a lock-free array queue):
//!
//! ```text
//! handlers --try_send--> core thread, per batch:
//!                          1. stamp seq + time, journal the batch, one write + fsync
//!                          2. apply it to the engine (only once durable); run queries
//!                          3. dispatch: reply to callers (a oneshot, or a stream's sink
//!                             woken at its first result and at the end of the batch),
//!                             publish to the stream hub, hand settlement legs to the
//!                             registry writer
//! ```
//! One thread, because on a small machine every hand-off between threads costs a wake-up
//! and a context switch per batch, and while the fsync is in flight the requests that
//! arrive form the next batch anyway (measured: BENCHMARKS.md, issue 9).
//! A handler never waits on a full queue: `try_send` fails at once with RESOURCE_EXHAUSTED.
//! The core blocks on the registry writer's bounded queue, so a slow registry slows intake
//! (and then sheds load) instead of growing a queue without bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::{Command, CommandKind, Engine, Event, EventKind, InstrumentId};
use registry::tx::SettleLeg;
use tokio::sync::{oneshot, watch};

use crate::catalog::Catalog;
use crate::config::Durability;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::regworker::{RegJob, RegistryHandle};

/// A command as applied: its sequence, stamp and events.
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

/// The applied commands of one order-entry stream, in the order it submitted them. The
/// dispatcher wakes the stream's reply poller (the task that writes the replies) at the
/// stream's first result of a batch, so it starts sending while the core dispatches the
/// rest, and once more at the end of the batch if it is waiting again: at most two
/// wake-ups per stream per batch.
#[derive(Debug, Default)]
pub struct ReplySink {
    state: parking_lot::Mutex<SinkState>,
}

#[derive(Debug, Default)]
struct SinkState {
    applied: std::collections::VecDeque<Applied>,
    /// Emptied event buffers the stream's poller gave back, reused for its next results:
    /// the core thread then allocates nothing per command, and nothing it allocated is
    /// freed on another thread (with glibc that was a fifth of the core thread's samples).
    spare: Vec<Vec<Event>>,
    waker: Option<std::task::Waker>,
}

/// A sink and its reply task keep at most this many spare event buffers (a stream has at most
/// `in_flight_per_connection` results out, 1,024 by default, each in one buffer)...
const SINK_SPARE_MAX: usize = 1_024;
/// ...each with room for at most this many events (a command makes two or three; a buffer
/// grown by a large sweep is dropped rather than kept): at most 1,024 x 8 x 120 bytes,
/// about 1 MiB, per stream.
const SINK_SPARE_EVENTS_MAX: usize = 8;

impl ReplySink {
    /// Moves everything applied so far (oldest first) into `into`, which must be empty:
    /// the two queues trade places, so each keeps its capacity and neither side allocates
    /// per batch. When there is nothing, `waker` is woken at the next batch that brings
    /// something. The event buffers in `spare` (emptied by the caller) go back to the
    /// sink for reuse.
    pub fn take_or_register(
        &self,
        waker: &std::task::Waker,
        into: &mut std::collections::VecDeque<Applied>,
        spare: &mut Vec<Vec<Event>>,
    ) {
        debug_assert!(into.is_empty());
        let mut state = self.state.lock();
        let room = SINK_SPARE_MAX.saturating_sub(state.spare.len());
        if room >= spare.len() {
            state.spare.append(spare);
        } else {
            state.spare.extend(spare.drain(..room));
            spare.clear();
        }
        if state.applied.is_empty() {
            match &state.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => state.waker = Some(waker.clone()),
            }
            return;
        }
        std::mem::swap(&mut state.applied, into);
    }

    /// Wakes `waker` at the next batch that brings something, or now if something is here.
    pub fn register_or_wake(&self, waker: std::task::Waker) {
        let mut state = self.state.lock();
        if state.applied.is_empty() {
            state.waker = Some(waker);
        } else {
            drop(state);
            waker.wake();
        }
    }

    /// Keeps an answered result's event buffer in `spare` (the reply task's, handed to the
    /// sink with its next `take_or_register`), emptied and with room for
    /// `SINK_SPARE_EVENTS_MAX` events, unless it grew larger or `spare` is full. Grown
    /// here, on the reply task's thread: a spare kept at the size of a small result (a
    /// cancel's two events) was too small for a trade's, and the core thread grew it
    /// (perf: malloc and realloc 1-3.5% of the core thread's samples with the trading mix).
    pub fn keep_spare(spare: &mut Vec<Vec<Event>>, mut events: Vec<Event>) {
        if events.capacity() <= SINK_SPARE_EVENTS_MAX && spare.len() < SINK_SPARE_MAX {
            events.clear();
            events.reserve_exact(SINK_SPARE_EVENTS_MAX);
            spare.push(events);
        }
    }

    /// Appends one command's result, its events copied into a spare buffer if there is one
    /// (else a new one, with a spare's room).
    fn push(&self, seq: u64, timestamp_ns: u64, events: &[Event]) {
        let mut state = self.state.lock();
        let mut buffer = state
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(SINK_SPARE_EVENTS_MAX.max(events.len())));
        buffer.extend_from_slice(events);
        state.applied.push_back(Applied {
            seq,
            timestamp_ns,
            events: buffer,
        });
    }

    /// Wakes the poller registered by `take_or_register`, if any.
    fn wake(&self) {
        let waker = self.state.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

pub(crate) enum Submission {
    Command {
        kind: CommandKind,
        reply: Reply,
    },
    Query(EngineQuery),
    /// Capture the engine's holdings, then compare in the registry once settled to there.
    Reconcile(oneshot::Sender<crate::regworker::ReconcileOutcome>),
    /// Snapshot the engine now; the reply carries the sequence once the file is durable.
    Snapshot(oneshot::Sender<Result<u64, String>>),
}

enum Sequenced {
    Command { command: Command, reply: Reply },
    Query(EngineQuery),
    Reconcile(oneshot::Sender<crate::regworker::ReconcileOutcome>),
    Snapshot(oneshot::Sender<Result<u64, String>>),
}

enum Out {
    /// A command as applied; its events are `events` of the batch's event buffer.
    Applied {
        seq: u64,
        timestamp_ns: u64,
        events: std::ops::Range<usize>,
        reply: Reply,
    },
    Reconcile {
        holdings: EngineHoldings,
        reply: oneshot::Sender<crate::regworker::ReconcileOutcome>,
    },
    Snapshot {
        seq: u64,
        bytes: Vec<u8>,
        reply: Option<oneshot::Sender<Result<u64, String>>>,
    },
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
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Submission")
    }
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
    pub settled: watch::Receiver<u64>,
    /// Snapshot the engine every this many commands (0: only when asked).
    pub snapshot_every: u64,
    /// Where the snapshot writer hands the last copy's buffer back.
    pub copy_buffer: crate::snapshot::CopyBuffer,
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
        let metrics = parts.metrics.clone();
        let journal = parts.journal;
        let durability = parts.durability;
        let batch_max = parts.batch_max;
        let async_flush = parts.async_flush;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seq = stop.clone();
        let applier = Applier::new(parts.engine, parts.snapshot_every, parts.copy_buffer);
        let dispatcher = Dispatcher::new(
            parts.hub.clone(),
            parts.catalog.clone(),
            parts.registry.clone(),
            metrics.clone(),
        );
        let m = metrics.clone();
        let core = std::thread::Builder::new()
            .name("core".into())
            .spawn(move || {
                let mut pipeline = Pipeline::new(applier, dispatcher);
                let durable = sequencer_loop(
                    rx,
                    &mut pipeline,
                    journal,
                    durability,
                    async_flush,
                    batch_max,
                    &m,
                    &stop_seq,
                );
                pipeline.dispatcher.stop(durable);
            })?;
        Ok((
            Core {
                tx,
                metrics,
                hub: parts.hub,
                catalog: parts.catalog,
                registry: parts.registry,
                settled: parts.settled,
                stop,
            },
            Threads {
                handles: vec![core],
            },
        ))
    }

    /// Stops the pipeline once the queue is drained (later submissions are refused).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn send(&self, submission: Submission) -> Result<(), ApiError> {
        if self.stop.load(Ordering::Acquire) {
            return Err(ApiError::unavailable("the server is shutting down"));
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
        rx.await
            .map_err(|_| ApiError::unavailable("the engine stopped before replying"))
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

    /// Snapshots the engine at its current sequence; resolves once the file is durable.
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

/// A durable batch is applied and handed on at most this many commands at a time. After
/// an fsync stall the next batch holds everything that arrived during it (thousands of
/// commands); in chunks the tokio workers start sending the first replies on the other CPU
/// while the core applies the rest, instead of waiting for the whole batch. Ordinary
/// batches (tens to a few hundred) are one chunk.
const DISPATCH_CHUNK: usize = 256;

/// Runs the core until it is stopped; returns the sequence through which the journal is
/// durable (fsync'd) at the end.
///
/// `durable` is that sequence as the loop goes: with sync durability every batch's, with
/// async durability the last flush's. Nothing handed to the registry or written as a
/// snapshot passes it (the dispatcher holds settlement back until it may go): otherwise a
/// machine crash could leave the registry settled, or a snapshot taken, beyond the end of
/// the journal that recovery finds.
#[allow(clippy::too_many_arguments)]
fn sequencer_loop(
    rx: Receiver<Submission>,
    pipeline: &mut Pipeline,
    mut journal: Journal,
    durability: Durability,
    async_flush: Duration,
    batch_max: usize,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> u64 {
    let mut last_ts = 0u64;
    let mut last_flush = Instant::now();
    let mut unflushed = false;
    // Recovery flushed what it found before settling from it (`server::recover`: a crashed
    // process's page cache is not yet the disk), so the journal starts durable.
    let mut durable = durable_now(&journal, metrics);
    loop {
        let first = match rx.try_recv() {
            Ok(s) => Ok(s),
            Err(_) => {
                // Nothing waiting: hand on what was held back for a busier moment.
                pipeline.dispatcher.idle(durable);
                rx.recv_timeout(async_flush)
            }
        };
        let first = match first {
            Ok(s) => s,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                if unflushed {
                    flush(&mut journal);
                    unflushed = false;
                    last_flush = Instant::now();
                    durable = durable_now(&journal, metrics);
                    pipeline.dispatcher.idle(durable);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let batch = &mut pipeline.batch;
        let mut taken = 1;
        let mut next = Some(first);
        let now = now_ns();
        while let Some(submission) = next.take() {
            match submission {
                Submission::Command { kind, reply } => {
                    last_ts = last_ts.max(now);
                    let command = Command {
                        seq: journal.last_seq() + 1,
                        timestamp_ns: last_ts,
                        kind,
                    };
                    if let Err(e) = journal.append(&command) {
                        fatal(&format!("journal append failed: {e}"));
                    }
                    batch.push(Sequenced::Command { command, reply });
                }
                Submission::Query(f) => batch.push(Sequenced::Query(f)),
                Submission::Reconcile(r) => batch.push(Sequenced::Reconcile(r)),
                Submission::Snapshot(r) => batch.push(Sequenced::Snapshot(r)),
            }
            if taken < batch_max
                && let Ok(s) = rx.try_recv()
            {
                next = Some(s);
                taken += 1;
            }
        }
        metrics
            .sequencer_queue
            .fetch_sub(taken as i64, Ordering::Relaxed);
        let started = Instant::now();
        let sync = match durability {
            Durability::Sync => true,
            Durability::Async => last_flush.elapsed() >= async_flush || pipeline.needs_durable(),
        };
        match journal.commit(sync) {
            Ok(0) => {
                // Nothing new to write (queries, a reconciliation): what was written
                // before is flushed if it must be.
                if sync && unflushed {
                    flush(&mut journal);
                    unflushed = false;
                    last_flush = Instant::now();
                }
            }
            Ok(_) => {
                metrics.journal_batches.fetch_add(1, Ordering::Relaxed);
                metrics
                    .journal_fsync
                    .observe_us(started.elapsed().as_micros() as u64);
                if sync {
                    last_flush = Instant::now();
                    unflushed = false;
                } else {
                    unflushed = true;
                }
            }
            Err(e) => fatal(&format!("journal write failed: {e}")),
        }
        if sync {
            durable = durable_now(&journal, metrics);
        }
        // Applied and handed on a chunk at a time: the first replies of a large batch
        // (the backlog after an fsync stall) leave while the rest is applied.
        let mut items = pipeline.batch.drain(..);
        while items.len() > 0 {
            pipeline
                .applier
                .apply(items.by_ref().take(DISPATCH_CHUNK), &mut pipeline.out);
            if !pipeline.out.is_empty() {
                pipeline
                    .dispatcher
                    .dispatch(&mut pipeline.out, &pipeline.applier.events, durable);
            }
        }
    }
    if unflushed {
        match journal.flush() {
            Ok(()) => durable = durable_now(&journal, metrics),
            Err(e) => tracing::error!("journal flush at shutdown failed: {e}"),
        }
    }
    durable
}

/// fsyncs what the journal wrote without sync; a failure stops the process.
fn flush(journal: &mut Journal) {
    if let Err(e) = journal.flush() {
        fatal(&format!("journal flush failed: {e}"));
    }
}

/// The journal's last sequence, just made durable, as the metrics report it.
fn durable_now(journal: &Journal, metrics: &Metrics) -> u64 {
    let seq = journal.last_seq();
    metrics.journal_durable_seq.store(seq, Ordering::Relaxed);
    seq
}

/// The journal cannot take writes: nothing more may be acknowledged. Stop the process;
/// recovery replays what is durable.
fn fatal(message: &str) -> ! {
    tracing::error!("{message}; stopping so that nothing unjournaled is acknowledged");
    std::process::exit(70);
}

/// What the core thread does with a durable batch: apply it, then dispatch the results.
struct Pipeline {
    applier: Applier,
    dispatcher: Dispatcher,
    /// One batch as sequenced, then its results: both drained every batch and kept, so a
    /// batch of a few hundred commands does not allocate (and free) two large buffers.
    batch: Vec<Sequenced>,
    out: Vec<Out>,
}

impl Pipeline {
    fn new(applier: Applier, dispatcher: Dispatcher) -> Pipeline {
        Pipeline {
            applier,
            dispatcher,
            batch: Vec::with_capacity(DISPATCH_CHUNK),
            out: Vec::with_capacity(DISPATCH_CHUNK),
        }
    }

    /// Whether the batch about to be committed must be durable before what it hands on
    /// goes out, even with async durability: it snapshots the engine or reconciles with
    /// the registry (both settle everything before them), or settlement held back for the
    /// journal is at its limit.
    fn needs_durable(&self) -> bool {
        let mut commands = 0u64;
        for item in &self.batch {
            match item {
                Sequenced::Command { .. } => commands += 1,
                Sequenced::Snapshot(_) | Sequenced::Reconcile(_) => return true,
                Sequenced::Query(_) => {}
            }
        }
        self.applier.snapshot_due(commands) || self.dispatcher.legs.len() >= SETTLE_LEGS_MAX
    }
}

/// Applies sequenced (durable) batches to the engine.
struct Applier {
    engine: Engine,
    since_snapshot: u64,
    snapshot_every: u64,
    /// The engine writes the events of a whole batch here, back to back (reused, so it
    /// stays in cache); each result names its range. A reply copies its command's events
    /// into a buffer its stream gave back (`ReplySink::push`); a fresh
    /// `Vec::with_capacity(8)` per command was 960 bytes of new memory each time (an
    /// `Event` is 120 bytes, a command makes two or three), allocated here and freed on
    /// another thread.
    events: Vec<Event>,
    copy_buffer: crate::snapshot::CopyBuffer,
}

/// The engine's state for a snapshot file, copied into the buffer the snapshot writer
/// handed back, if it did.
fn snapshot_copy(engine: &Engine, buffer: &crate::snapshot::CopyBuffer) -> Vec<u8> {
    let mut bytes = buffer.lock().take().unwrap_or_default();
    engine.snapshot_unsealed_into(&mut bytes);
    bytes
}

impl Applier {
    fn new(
        engine: Engine,
        snapshot_every: u64,
        copy_buffer: crate::snapshot::CopyBuffer,
    ) -> Applier {
        Applier {
            engine,
            since_snapshot: 0,
            snapshot_every,
            events: Vec::with_capacity(64),
            copy_buffer,
        }
    }

    /// Applies `items` (durable, in sequence), appending the results to `out`; the events
    /// they refer to are in `events` until the next call.
    fn apply(&mut self, items: impl Iterator<Item = Sequenced>, out: &mut Vec<Out>) {
        let engine = &mut self.engine;
        self.events.clear();
        for item in items {
            match item {
                Sequenced::Command { command, reply } => {
                    let first = self.events.len();
                    if let Err(e) = engine.apply(&command, &mut self.events) {
                        fatal(&format!("engine out of sequence: {e:?}"));
                    }
                    out.push(Out::Applied {
                        seq: command.seq,
                        timestamp_ns: command.timestamp_ns,
                        events: first..self.events.len(),
                        reply,
                    });
                    self.since_snapshot += 1;
                }
                Sequenced::Snapshot(reply) => {
                    self.since_snapshot = 0;
                    out.push(Out::Snapshot {
                        seq: engine.last_seq(),
                        bytes: snapshot_copy(engine, &self.copy_buffer),
                        reply: Some(reply),
                    });
                }
                Sequenced::Query(f) => f(engine),
                Sequenced::Reconcile(reply) => out.push(Out::Reconcile {
                    holdings: engine_holdings(engine),
                    reply,
                }),
            }
        }
        if self.snapshot_due(0) {
            // The copy is made here, on the engine's thread; the registry writer settles up
            // to it and another thread checksums it and writes the file.
            self.since_snapshot = 0;
            out.push(Out::Snapshot {
                seq: self.engine.last_seq(),
                bytes: snapshot_copy(&self.engine, &self.copy_buffer),
                reply: None,
            });
        }
    }

    /// Whether the periodic snapshot comes after `commands` more commands.
    fn snapshot_due(&self, commands: u64) -> bool {
        self.snapshot_every > 0 && self.since_snapshot + commands >= self.snapshot_every
    }
}

/// Every non-zero (account, instrument) holding of the engine.
pub fn engine_holdings(engine: &Engine) -> EngineHoldings {
    let state = engine.state();
    let mut holdings = Vec::new();
    for account in &state.accounts {
        for (index, p) in account.positions.iter().enumerate() {
            let total = p.free_t + p.locked_t + p.pending_t;
            if total > 0 {
                holdings.push((account.id.0, InstrumentId(index as u32), total));
            }
        }
    }
    EngineHoldings {
        seq: engine.last_seq(),
        holdings,
    }
}

/// Settlement legs of one command's events.
pub fn settlement_legs(events: &[Event], catalog: &Catalog, legs: &mut Vec<SettleLeg>) {
    for event in events {
        match event.kind {
            EventKind::Trade(t) => match catalog.unit_of(t.instrument) {
                Some(unit) => legs.push(SettleLeg::Trade {
                    seller: registry::model::AccountId(t.sell.account.0),
                    buyer: registry::model::AccountId(t.buy.account.0),
                    unit,
                    quantity_t: t.quantity_t,
                }),
                None => tracing::error!(
                    instrument = t.instrument.0,
                    "trade of an instrument without a registry unit"
                ),
            },
            EventKind::AllowancesWithdrawn {
                account,
                instrument,
                quantity_t,
                ..
            } => match catalog.unit_of(instrument) {
                Some(unit) => legs.push(SettleLeg::Withdraw {
                    account: registry::model::AccountId(account.0),
                    unit,
                    quantity_t,
                }),
                None => tracing::error!(
                    instrument = instrument.0,
                    "withdrawal of an instrument without a registry unit"
                ),
            },
            EventKind::InstrumentCreated { instrument, symbol } => {
                catalog.add_instrument(instrument, symbol.as_str());
            }
            _ => {}
        }
    }
}

/// What the metrics endpoint counts about commands, summed over a batch (or a replay) and
/// added to the shared counters once (four atomic additions per batch rather than up to
/// four per command on the core thread).
#[derive(Debug, Default)]
pub struct MetricCounts {
    commands: u64,
    orders: u64,
    trades: u64,
    traded_t: u64,
}

impl MetricCounts {
    /// Counts one command; an engine rejection goes to the metrics at once (rare, and
    /// keyed by reason).
    pub fn count(&mut self, metrics: &Metrics, events: &[Event]) {
        self.commands += 1;
        for event in events {
            match event.kind {
                EventKind::Accepted(_) => self.orders += 1,
                EventKind::Trade(t) => {
                    self.trades += 1;
                    self.traded_t += t.quantity_t;
                }
                EventKind::Rejected { reason } => metrics.reject(reason.code()),
                _ => {}
            }
        }
    }

    /// Adds what was counted to `metrics`.
    pub fn add_to(self, metrics: &Metrics) {
        for (counter, n) in [
            (&metrics.commands, self.commands),
            (&metrics.orders, self.orders),
            (&metrics.trades, self.trades),
            (&metrics.traded_t, self.traded_t),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Hands applied commands on: replies, the stream hub, settlement legs to the registry.
struct Dispatcher {
    hub: Arc<Hub>,
    catalog: Arc<Catalog>,
    registry: RegistryHandle,
    metrics: Arc<Metrics>,
    legs: Vec<SettleLeg>,
    /// Settlement held back: (through seq, its timestamp), with `legs`.
    unsettled: Option<(u64, u64)>,
    last_settle: Instant,
    woken: Vec<Arc<ReplySink>>,
}

/// Under load, settlement goes to the registry writer at most this often (one wake-up and
/// one RocksDB write for many batches); as soon as the core thread has nothing to do,
/// whatever is held back goes at once.
const SETTLE_INTERVAL: Duration = Duration::from_millis(2);
/// ...or once this many legs are held back.
const SETTLE_LEGS_MAX: usize = 4_096;

impl Dispatcher {
    fn new(
        hub: Arc<Hub>,
        catalog: Arc<Catalog>,
        registry: RegistryHandle,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        Dispatcher {
            hub,
            catalog,
            registry,
            metrics,
            legs: Vec::new(),
            unsettled: None,
            last_settle: Instant::now(),
            woken: Vec::new(),
        }
    }

    /// Dispatches (and empties) `batch`, whose events are in `events`; the journal is
    /// durable through `durable`.
    fn dispatch(&mut self, batch: &mut Vec<Out>, events: &[Event], durable: u64) {
        let (mut through, mut last_ts) = match self.unsettled.take() {
            Some((seq, ts)) => (Some(seq), ts),
            None => (None, 0),
        };
        let mut counts = MetricCounts::default();
        // The stream hub takes the whole batch at once (its locks once per batch, not per
        // command), before any reply goes out. A snapshot or reconciliation in the batch
        // takes the hub's bars as of its own point, so such a batch publishes command by
        // command instead.
        let published = batch.iter().all(|out| matches!(out, Out::Applied { .. }));
        if published {
            self.hub
                .publish_all(batch.iter().filter_map(|out| match out {
                    Out::Applied {
                        seq,
                        timestamp_ns,
                        events: range,
                        ..
                    } => Some((
                        *seq,
                        *timestamp_ns,
                        events.get(range.clone()).unwrap_or_default(),
                    )),
                    _ => None,
                }));
        }
        for out in batch.drain(..) {
            match out {
                Out::Applied {
                    seq,
                    timestamp_ns,
                    events: range,
                    reply,
                } => {
                    let events = events.get(range).unwrap_or_default();
                    settlement_legs(events, &self.catalog, &mut self.legs);
                    counts.count(&self.metrics, events);
                    if !published {
                        self.hub.publish(seq, timestamp_ns, events);
                    }
                    through = Some(seq);
                    last_ts = timestamp_ns;
                    match reply {
                        Reply::Once(reply) => {
                            let _ = reply.send(Applied {
                                seq,
                                timestamp_ns,
                                events: events.to_vec(),
                            });
                        }
                        Reply::Sink(sink) => {
                            sink.push(seq, timestamp_ns, events);
                            if !self.woken.iter().any(|s| Arc::ptr_eq(s, &sink)) {
                                // Woken at its first result: its task starts sending while
                                // the rest of the batch is dispatched (and again at the end).
                                sink.wake();
                                self.woken.push(sink);
                            }
                        }
                    }
                }
                Out::Reconcile { holdings, reply } => {
                    // Its batch was committed with an fsync (`Pipeline::needs_durable`).
                    debug_assert!(through.is_none_or(|seq| seq <= durable));
                    if let Some(seq) = through.take() {
                        self.registry
                            .settle(seq, last_ts, std::mem::take(&mut self.legs));
                    }
                    self.registry
                        .send_blocking(RegJob::Reconcile { holdings, reply });
                }
                Out::Snapshot { seq, bytes, reply } => {
                    debug_assert!(seq <= durable);
                    if let Some(seq) = through.take() {
                        self.registry
                            .settle(seq, last_ts, std::mem::take(&mut self.legs));
                    }
                    self.registry.send_blocking(RegJob::Snapshot {
                        seq,
                        engine: bytes,
                        bars: self.hub.all_bars(),
                        reply,
                    });
                }
            }
        }
        counts.add_to(&self.metrics);
        for sink in self.woken.drain(..) {
            sink.wake();
        }
        self.hub.notify();
        if let Some(seq) = through {
            self.unsettled = Some((seq, last_ts));
            if self.last_settle.elapsed() >= SETTLE_INTERVAL || self.legs.len() >= SETTLE_LEGS_MAX {
                self.idle(durable);
            }
        }
    }

    /// Sends the settlement held back, if any, once the journal is durable through all of
    /// it (with async durability it waits for the next flush: a registry settled beyond
    /// the journal that a machine crash leaves would never match the engine again).
    fn idle(&mut self, durable: u64) {
        if let Some((seq, ts)) = self.unsettled
            && seq <= durable
        {
            self.unsettled = None;
            self.registry
                .settle(seq, ts, std::mem::take(&mut self.legs));
            self.last_settle = Instant::now();
        }
    }

    /// The engine stopped: everything it produced that is durable is queued for the
    /// registry; let the writer finish it and stop. (What is not, the journal's last flush
    /// having failed, recovery settles from whatever the journal holds.)
    fn stop(&mut self, durable: u64) {
        self.idle(durable);
        self.registry.send_blocking(RegJob::Stop);
    }
}

/// Summary of how many of each event a replay produced (for the recovery log).
pub fn tally(events: &[Event], into: &mut BTreeMap<&'static str, u64>) {
    for e in events {
        let name = match e.kind {
            EventKind::Trade(_) => "trades",
            EventKind::Accepted(_) => "orders",
            EventKind::Rejected { .. } => "rejections",
            _ => continue,
        };
        *into.entry(name).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::AccountId;

    fn opened(seq: u64, account: u64) -> Event {
        Event {
            seq,
            kind: EventKind::AccountOpened {
                account: AccountId(account),
            },
        }
    }

    /// A batch of two and a half chunks (queued before the core starts, so one batch and
    /// one fsync), with a query among the second chunk's commands: the first chunk is
    /// answered before the second is applied (the query finds its first reply sent), the
    /// query sees the engine after the commands before it, every command is answered with
    /// its own sequence and events, and the hub has published through the last.
    #[test]
    fn a_batch_larger_than_a_chunk_is_answered_whole_and_in_sequence() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let metrics = Arc::new(Metrics::default());
        let (registry, _settlement) = RegistryHandle::detached(16, metrics.clone());
        let hub = Arc::new(Hub::new(4_096, 16));
        let mut pipeline = Pipeline::new(
            Applier::new(
                Engine::new(engine::EngineConfig::default()),
                0,
                Default::default(),
            ),
            Dispatcher::new(hub.clone(), Arc::default(), registry, metrics.clone()),
        );
        let n = DISPATCH_CHUNK as u64 * 2 + DISPATCH_CHUNK as u64 / 2;
        let query_after = DISPATCH_CHUNK as u64 + 10;
        let (tx, rx) = sync_channel(n as usize + 1);
        let mut replies = Vec::new();
        let (seen_tx, seen_rx) = oneshot::channel();
        let mut seen_tx = Some(seen_tx);
        for i in 1..=n {
            let (reply, answer) = oneshot::channel();
            let queued = tx.try_send(Submission::Command {
                kind: CommandKind::OpenAccount {
                    account: AccountId(1_000 + i),
                    stp: Default::default(),
                },
                reply: Reply::Once(reply),
            });
            assert!(queued.is_ok(), "queue full at {i}");
            replies.push(Some(answer));
            if i == query_after
                && let (Some(mut first), Some(seen)) = (replies[0].take(), seen_tx.take())
            {
                // Runs while the second chunk is applied: the first is answered by then.
                let query: EngineQuery = Box::new(move |engine| {
                    let first_answered = first.try_recv().ok().map(|a| a.seq);
                    let _ = seen.send((engine.last_seq(), first_answered));
                });
                assert!(tx.try_send(Submission::Query(query)).is_ok());
            }
        }
        drop(tx);
        let stop = AtomicBool::new(false);
        let durable = sequencer_loop(
            rx,
            &mut pipeline,
            journal,
            Durability::Sync,
            Duration::from_millis(1),
            4_096,
            &metrics,
            &stop,
        );

        assert_eq!(durable, n);
        assert_eq!(metrics.journal_batches.load(Ordering::Relaxed), 1);
        assert_eq!(seen_rx.blocking_recv().ok(), Some((query_after, Some(1))));
        for (i, answer) in (1..=n).zip(replies) {
            let Some(mut answer) = answer else { continue };
            let applied = answer
                .try_recv()
                .unwrap_or_else(|e| panic!("command {i} unanswered: {e}"));
            assert_eq!(applied.seq, i);
            assert_eq!(applied.events, vec![opened(i, 1_000 + i)]);
        }
        assert_eq!(hub.latest_seq(), n);
    }

    #[test]
    fn a_sink_reuses_the_event_buffers_its_poller_gives_back() {
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        let mut spare = Vec::new();

        // Nothing yet: the poller registers and gets nothing.
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(taken.is_empty());

        sink.push(1, 10, &[opened(1, 7)]);
        sink.push(2, 20, &[opened(2, 8), opened(2, 9)]);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let first = taken.pop_front().unwrap();
        let second = taken.pop_front().unwrap();
        assert_eq!(
            (first.seq, first.timestamp_ns, first.events),
            (1, 10, vec![opened(1, 7)])
        );
        assert_eq!(second.events, vec![opened(2, 8), opened(2, 9)]);

        // The poller gives an emptied buffer back with the next take; the next result
        // arrives in that very buffer.
        let mut buffer = Vec::with_capacity(12);
        let address = buffer.as_ptr();
        buffer.push(opened(0, 1));
        buffer.clear();
        spare.push(buffer);
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(spare.is_empty());
        sink.push(3, 30, &[opened(3, 5)]);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let third = taken.pop_front().unwrap();
        assert_eq!(third.events, vec![opened(3, 5)]);
        assert_eq!(
            (third.events.as_ptr(), third.events.capacity()),
            (address, 12)
        );
    }

    #[test]
    fn a_kept_spare_has_room_for_a_trade_without_growing_on_the_core_thread() {
        // A cancel's result (two events) comes back in a buffer just large enough for it.
        let mut small = Vec::with_capacity(2);
        small.extend([opened(1, 1), opened(1, 2)]);
        let mut spare = Vec::new();
        ReplySink::keep_spare(&mut spare, small);
        assert_eq!(spare.len(), 1);
        assert!(spare[0].is_empty() && spare[0].capacity() >= SINK_SPARE_EVENTS_MAX);
        let address = spare[0].as_ptr();

        // A result of SINK_SPARE_EVENTS_MAX events lands in that buffer as it is.
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        sink.take_or_register(waker, &mut taken, &mut spare);
        let events: Vec<Event> = (0..SINK_SPARE_EVENTS_MAX as u64)
            .map(|n| opened(2, n))
            .collect();
        sink.push(2, 20, &events);
        sink.take_or_register(waker, &mut taken, &mut spare);
        let result = taken.pop_front().unwrap();
        assert_eq!(result.events, events);
        assert_eq!(result.events.as_ptr(), address);

        // A buffer grown past the limit by a large sweep is not kept.
        let large: Vec<Event> = Vec::with_capacity(SINK_SPARE_EVENTS_MAX + 1);
        ReplySink::keep_spare(&mut spare, large);
        assert!(spare.is_empty());
    }

    #[test]
    fn a_sink_keeps_at_most_its_limit_of_spare_buffers() {
        let sink = ReplySink::default();
        let waker = std::task::Waker::noop();
        let mut taken = std::collections::VecDeque::new();
        let mut spare: Vec<Vec<Event>> = (0..SINK_SPARE_MAX + 10).map(|_| Vec::new()).collect();
        sink.take_or_register(waker, &mut taken, &mut spare);
        assert!(spare.is_empty());
        assert_eq!(sink.state.lock().spare.len(), SINK_SPARE_MAX);
        let mut more = vec![Vec::new(); 3];
        sink.take_or_register(waker, &mut taken, &mut more);
        assert!(more.is_empty());
        assert_eq!(sink.state.lock().spare.len(), SINK_SPARE_MAX);
    }
}
