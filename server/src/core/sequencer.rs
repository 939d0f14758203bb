//! The core thread's loop: take what is queued as one batch, give each change its
//! sequence and time stamp, journal the batch (one write, one fsync), then apply and
//! dispatch it (`pipeline.rs`).
//!
//! Besides the callers' commands and registry transactions, the sequencer journals the
//! settlement points: a record after which every trade and withdrawal not yet settled is
//! settled in the registry, in one transaction. One goes into a batch when settlement is
//! due (every `SETTLE_INTERVAL` under load, or `SETTLE_LEGS_MAX` legs), when the queue runs
//! empty with legs waiting, and before every snapshot and reconciliation (which see
//! everything settled). Being records, they make the registry a function of the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use engine::Command;
use registry::tx::Tx;
use tokio::sync::oneshot;

use super::pipeline::{Applier, Dispatcher, Pipeline};
use super::{CoreParts, EngineQuery, RegistryReply, Reply, Submission};
use crate::config::Durability;
use crate::error::ApiError;
use crate::metrics::Metrics;
use journal::Journal;

/// Under load, a settlement point goes into the journal at most this often (one registry
/// transaction and one RocksDB write for many batches); as soon as the core thread has
/// nothing to do, one goes at once.
pub(super) const SETTLE_INTERVAL: Duration = Duration::from_millis(2);
/// ...or once this many legs are waiting.
pub(super) const SETTLE_LEGS_MAX: usize = 4_096;

/// A durable batch is applied and handed on at most this many commands at a time. After
/// an fsync stall the next batch holds everything that arrived during it (thousands of
/// commands); in chunks the tokio workers start sending the first replies on the other CPU
/// while the core applies the rest, instead of waiting for the whole batch. Ordinary
/// batches (tens to a few hundred) are one chunk.
pub(super) const DISPATCH_CHUNK: usize = 256;

/// One item of a batch, as sequenced.
pub(super) enum Sequenced {
    Command {
        command: Command,
        reply: Reply,
    },
    Registry {
        seq: u64,
        tx: Tx,
        reply: RegistryReply,
    },
    /// A settlement point at `seq`, of the engine through `through_seq`.
    Settle {
        seq: u64,
        through_seq: u64,
        timestamp_ns: u64,
    },
    Query(EngineQuery),
    Reconcile(oneshot::Sender<crate::regworker::ReconcileOutcome>),
    /// A snapshot of the state at journal sequence `seq` (a settlement point or a
    /// registry record: everything before it is settled).
    Snapshot {
        seq: u64,
        reply: Option<oneshot::Sender<Result<u64, String>>>,
    },
}

/// Runs the core thread until it is stopped.
pub(super) fn run(parts: CoreParts, rx: Receiver<Submission>, stop: &AtomicBool) {
    let metrics = parts.metrics.clone();
    let applier = Applier::new(parts.engine, parts.copy_buffer);
    let dispatcher = Dispatcher::new(parts.hub, parts.catalog, parts.registry, metrics.clone());
    let mut pipeline = Pipeline::new(applier, dispatcher);
    let mut sequencer = Sequencer::new(
        parts.journal,
        parts.durability,
        parts.async_flush,
        parts.batch_max,
        parts.snapshot_every,
        metrics,
        parts.clock,
    );
    let durable = sequencer.run(&rx, &mut pipeline, stop);
    pipeline.dispatcher.stop(durable);
}

pub(super) struct Sequencer {
    clock: crate::scheduler::Clock,
    journal: Journal,
    durability: Durability,
    async_flush: Duration,
    batch_max: usize,
    snapshot_every: u64,
    metrics: Arc<Metrics>,
    last_ts: u64,
    last_flush: Instant,
    /// Written without an fsync (async durability) since `last_flush`.
    unflushed: bool,
    /// The journal is fsync'd through this sequence: with sync durability every batch's,
    /// with async durability the last flush's. Nothing handed to the registry or written
    /// as a snapshot passes it (the dispatcher holds settlement back until it may go):
    /// otherwise a machine crash could leave the registry, or a snapshot, beyond the end
    /// of the journal that recovery finds.
    durable: u64,
    /// The last engine command journaled after the last settlement point.
    unsettled: Option<u64>,
    last_settle: Instant,
    since_snapshot: u64,
    /// `unsettled` and `since_snapshot` before the batch being built: where a batch the
    /// journal refused leaves them.
    before_batch: (Option<u64>, u64),
}

impl Sequencer {
    pub(super) fn new(
        journal: Journal,
        durability: Durability,
        async_flush: Duration,
        batch_max: usize,
        snapshot_every: u64,
        metrics: Arc<Metrics>,
        clock: crate::scheduler::Clock,
    ) -> Sequencer {
        Sequencer {
            clock,
            journal,
            durability,
            async_flush,
            batch_max,
            snapshot_every,
            metrics,
            last_ts: 0,
            last_flush: Instant::now(),
            unflushed: false,
            durable: 0,
            unsettled: None,
            last_settle: Instant::now(),
            since_snapshot: 0,
            before_batch: (None, 0),
        }
    }

    /// Runs until stopped; returns the sequence through which the journal is durable.
    pub(super) fn run(
        &mut self,
        rx: &Receiver<Submission>,
        pipeline: &mut Pipeline,
        stop: &AtomicBool,
    ) -> u64 {
        // Recovery flushed what it found (`server::recover`: a crashed process's page
        // cache is not yet the disk), so the journal starts durable.
        self.durable = self.durable_now();
        loop {
            let first = match rx.try_recv() {
                Ok(s) => s,
                Err(_) => {
                    // Nothing waiting: settle what waits, hand on what was held back.
                    self.idle(pipeline);
                    match rx.recv_timeout(self.async_flush) {
                        Ok(s) => s,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if stop.load(Ordering::Acquire) {
                                break;
                            }
                            self.flush_if_unflushed(pipeline);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            let taken = self.take_batch(first, rx, pipeline);
            self.metrics
                .sequencer_queue
                .fetch_sub(taken as i64, Ordering::Relaxed);
            self.commit_and_apply(pipeline);
        }
        if self.unflushed {
            match self.journal.flush() {
                Ok(()) => self.durable = self.durable_now(),
                Err(e) => tracing::error!("journal flush at shutdown failed: {e}"),
            }
        }
        self.durable
    }

    /// Sequences `first` and whatever else is queued (up to the batch limit) into the
    /// pipeline's batch, with the settlement point and the periodic snapshot when due;
    /// returns how many submissions it took.
    fn take_batch(
        &mut self,
        first: Submission,
        rx: &Receiver<Submission>,
        pipeline: &mut Pipeline,
    ) -> usize {
        let now = self.clock.now_ns();
        self.before_batch = (self.unsettled, self.since_snapshot);
        let mut taken = 1;
        let mut next = Some(first);
        while let Some(submission) = next.take() {
            self.sequence(submission, now, &mut pipeline.batch);
            if taken < self.batch_max
                && let Ok(s) = rx.try_recv()
            {
                next = Some(s);
                taken += 1;
            }
        }
        let legs = pipeline.dispatcher.pending_legs();
        if legs > 0 && (self.last_settle.elapsed() >= SETTLE_INTERVAL || legs >= SETTLE_LEGS_MAX) {
            self.settle_point(now, &mut pipeline.batch);
        }
        if self.snapshot_every > 0 && self.since_snapshot >= self.snapshot_every {
            self.snapshot_point(now, None, &mut pipeline.batch);
        }
        taken
    }

    /// Gives one submission its sequence and time stamp and adds it to `batch`.
    fn sequence(&mut self, submission: Submission, now: u64, batch: &mut Vec<Sequenced>) {
        match submission {
            Submission::Command { kind, reply } => {
                let command = Command {
                    seq: self.journal.last_seq() + 1,
                    timestamp_ns: self.stamp(now),
                    kind,
                };
                if let Err(e) = self.journal.append(&command) {
                    fatal(&format!("journal append failed: {e}"));
                }
                self.unsettled = Some(command.seq);
                self.since_snapshot += 1;
                batch.push(Sequenced::Command { command, reply });
            }
            Submission::Registry { mut tx, reply } => {
                tx.timestamp_ns = self.stamp(now);
                match self.journal.append_tx(tx.timestamp_ns, &tx) {
                    Ok(seq) => batch.push(Sequenced::Registry { seq, tx, reply }),
                    Err(e) => {
                        let _ = reply.send(Err(ApiError::exhausted("TOO_LARGE", e.to_string())));
                    }
                }
            }
            Submission::Query(f) => batch.push(Sequenced::Query(f)),
            Submission::Reconcile(reply) => {
                self.settle_point(now, batch);
                batch.push(Sequenced::Reconcile(reply));
            }
            Submission::Snapshot(reply) => self.snapshot_point(now, Some(reply), batch),
        }
    }

    fn stamp(&mut self, now: u64) -> u64 {
        self.last_ts = self.last_ts.max(now);
        self.last_ts
    }

    /// A settlement point, if any engine command came after the last one.
    fn settle_point(&mut self, now: u64, batch: &mut Vec<Sequenced>) {
        let Some(through_seq) = self.unsettled.take() else {
            return;
        };
        let timestamp_ns = self.stamp(now);
        let seq = self.journal.append_settle(timestamp_ns, through_seq);
        self.last_settle = Instant::now();
        batch.push(Sequenced::Settle {
            seq,
            through_seq,
            timestamp_ns,
        });
    }

    /// A snapshot here: after a settlement point, at the journal's last sequence.
    fn snapshot_point(
        &mut self,
        now: u64,
        reply: Option<oneshot::Sender<Result<u64, String>>>,
        batch: &mut Vec<Sequenced>,
    ) {
        self.settle_point(now, batch);
        self.since_snapshot = 0;
        batch.push(Sequenced::Snapshot {
            seq: self.journal.last_seq(),
            reply,
        });
    }

    /// Commits the batch (fsync'd as the durability mode and the batch ask), then applies
    /// and dispatches it a chunk at a time; a batch the journal could not take (a full
    /// disk) is refused whole instead.
    fn commit_and_apply(&mut self, pipeline: &mut Pipeline) {
        let started = Instant::now();
        let sync = match self.durability {
            Durability::Sync => true,
            Durability::Async => {
                self.last_flush.elapsed() >= self.async_flush || pipeline.needs_durable()
            }
        };
        match self.journal.commit(sync) {
            Ok(0) => {
                // Nothing new to write (queries): what was written before is flushed if
                // it must be.
                if sync && self.unflushed {
                    self.flush();
                }
            }
            Ok(_) => {
                self.metrics.journal_batches.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .journal_fsync
                    .observe_us(started.elapsed().as_micros() as u64);
                if sync {
                    self.last_flush = Instant::now();
                    self.unflushed = false;
                } else {
                    self.unflushed = true;
                }
            }
            Err(e) if e.is_disk_full() => return self.refuse_batch(pipeline),
            Err(e) => fatal(&format!("journal write failed: {e}")),
        }
        if sync {
            self.durable = self.durable_now();
        }
        let mut items = pipeline.batch.drain(..);
        while items.len() > 0 {
            pipeline
                .applier
                .apply(items.by_ref().take(DISPATCH_CHUNK), &mut pipeline.out);
            if !pipeline.out.is_empty() {
                pipeline.dispatcher.dispatch(
                    &mut pipeline.out,
                    &pipeline.applier.events,
                    self.durable,
                );
            }
        }
    }

    /// The journal could not write the batch (the disk is full) and took it back:
    /// nothing of it happened. Every change is refused with DISK_FULL; queries still run.
    /// New changes are refused at the queue until the disk watcher sees space again.
    fn refuse_batch(&mut self, pipeline: &mut Pipeline) {
        tracing::error!(
            last_seq = self.journal.last_seq(),
            "journal: the disk is full; the batch is refused and nothing more is accepted until space returns"
        );
        self.metrics.disk_full.store(true, Ordering::Release);
        (self.unsettled, self.since_snapshot) = self.before_batch;
        for item in pipeline.batch.drain(..) {
            match item {
                Sequenced::Command { reply, .. } => pipeline.dispatcher.refuse(reply),
                Sequenced::Registry { reply, .. } => {
                    let _ = reply.send(Err(ApiError::disk_full()));
                }
                // What the dropped point would have settled waits for the next one.
                Sequenced::Settle { .. } => {}
                Sequenced::Query(f) => f(pipeline.applier.engine()),
                Sequenced::Reconcile(_) => {}
                Sequenced::Snapshot { reply, .. } => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err("the disk is full".into()));
                    }
                }
            }
        }
    }

    /// The queue is empty: journal a settlement point if legs wait for one (not while
    /// the disk is full), or hand on what was held back for the journal to be durable.
    fn idle(&mut self, pipeline: &mut Pipeline) {
        if pipeline.dispatcher.pending_legs() > 0
            && self.unsettled.is_some()
            && !self.metrics.disk_full.load(Ordering::Acquire)
        {
            self.before_batch = (self.unsettled, self.since_snapshot);
            self.settle_point(self.clock.now_ns(), &mut pipeline.batch);
            self.commit_and_apply(pipeline);
        } else {
            pipeline.dispatcher.release(self.durable);
        }
    }

    fn flush_if_unflushed(&mut self, pipeline: &mut Pipeline) {
        if self.unflushed {
            self.flush();
            self.durable = self.durable_now();
            pipeline.dispatcher.release(self.durable);
        }
    }

    /// fsyncs what the journal wrote without sync; a failure stops the process.
    fn flush(&mut self) {
        if let Err(e) = self.journal.flush() {
            fatal(&format!("journal flush failed: {e}"));
        }
        self.unflushed = false;
        self.last_flush = Instant::now();
    }

    /// The journal's last sequence, just made durable, as the metrics report it.
    fn durable_now(&self) -> u64 {
        let seq = self.journal.last_seq();
        self.metrics
            .journal_durable_seq
            .store(seq, Ordering::Relaxed);
        seq
    }
}

/// The journal cannot take writes: nothing more may be acknowledged. Stop the process;
/// recovery replays what is durable.
pub(super) fn fatal(message: &str) -> ! {
    tracing::error!("{message}; stopping so that nothing unjournaled is acknowledged");
    eprintln!("carbonx: {message}; stopping so that nothing unjournaled is acknowledged");
    std::process::exit(70);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::regworker::RegistryHandle;
    use engine::{AccountId, CommandKind, Engine, Event, EventKind};
    use std::sync::mpsc::sync_channel;

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
        let mut sequencer = Sequencer::new(
            journal,
            Durability::Sync,
            Duration::from_millis(1),
            4_096,
            0,
            metrics.clone(),
            crate::scheduler::Clock::from_fn(|| 1_700_000_000_000_000_000),
        );
        let durable = sequencer.run(&rx, &mut pipeline, &stop);

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
}
