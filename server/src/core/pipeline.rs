//! What the core thread does with a durable batch: apply it (`Applier`), then hand the
//! results on (`Dispatcher`): replies, the stream hub, and the registry writer, which gets
//! registry transactions and settlements in journal order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use engine::{Engine, Event, EventKind};
use registry::tx::{SettleLeg, Tx};
use tokio::sync::oneshot;

use super::sequencer::{DISPATCH_CHUNK, SETTLE_LEGS_MAX, Sequenced, fatal};
use super::{Applied, EngineHoldings, RegistryReply, Reply, ReplySink};
use crate::catalog::Catalog;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::regworker::{RegJob, RegistryHandle};

/// One batch as sequenced, then its results: both drained every batch and kept, so a
/// batch of a few hundred commands does not allocate (and free) two large buffers.
pub(super) struct Pipeline {
    pub applier: Applier,
    pub dispatcher: Dispatcher,
    pub batch: Vec<Sequenced>,
    pub out: Vec<Out>,
}

impl Pipeline {
    pub fn new(applier: Applier, dispatcher: Dispatcher) -> Pipeline {
        Pipeline {
            applier,
            dispatcher,
            batch: Vec::with_capacity(DISPATCH_CHUNK),
            out: Vec::with_capacity(DISPATCH_CHUNK),
        }
    }

    /// Whether the batch about to be committed must be durable before what it hands on
    /// goes out, even with async durability: it holds a registry transaction (answered
    /// only once durable, in every mode), snapshots the engine or reconciles with the
    /// registry, or settlement held back for the journal is at its limit.
    pub fn needs_durable(&self) -> bool {
        self.batch.iter().any(|item| {
            matches!(
                item,
                Sequenced::Registry { .. } | Sequenced::Snapshot { .. } | Sequenced::Reconcile(_)
            )
        }) || self.dispatcher.held_legs() >= SETTLE_LEGS_MAX
    }
}

/// A result of the batch, for the dispatcher.
pub(super) enum Out {
    /// A command as applied; its events are `events` of the batch's event buffer.
    Applied {
        seq: u64,
        timestamp_ns: u64,
        events: std::ops::Range<usize>,
        reply: Reply,
    },
    Registry {
        seq: u64,
        tx: Tx,
        reply: RegistryReply,
    },
    Settle {
        seq: u64,
        through_seq: u64,
        timestamp_ns: u64,
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

/// Applies sequenced (durable) batches to the engine.
pub(super) struct Applier {
    engine: Engine,
    /// The engine writes the events of a whole batch here, back to back (reused, so it
    /// stays in cache); each result names its range. A reply copies its command's events
    /// into a buffer its stream gave back (`ReplySink::push`); a fresh
    /// `Vec::with_capacity(8)` per command was 960 bytes of new memory each time (an
    /// `Event` is 120 bytes, a command makes two or three), allocated here and freed on
    /// another thread.
    pub events: Vec<Event>,
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
    pub fn new(engine: Engine, copy_buffer: crate::snapshot::CopyBuffer) -> Applier {
        Applier {
            engine,
            events: Vec::with_capacity(64),
            copy_buffer,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies `items` (durable, in sequence), appending the results to `out`; the events
    /// they refer to are in `events` until the next call.
    pub fn apply(&mut self, items: impl Iterator<Item = Sequenced>, out: &mut Vec<Out>) {
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
                }
                Sequenced::Registry { seq, tx, reply } => {
                    pass(engine, seq);
                    out.push(Out::Registry { seq, tx, reply });
                }
                Sequenced::Settle {
                    seq,
                    through_seq,
                    timestamp_ns,
                } => {
                    pass(engine, seq);
                    out.push(Out::Settle {
                        seq,
                        through_seq,
                        timestamp_ns,
                    });
                }
                Sequenced::Snapshot { seq, reply } => out.push(Out::Snapshot {
                    seq,
                    bytes: snapshot_copy(engine, &self.copy_buffer),
                    reply,
                }),
                Sequenced::Query(f) => f(engine),
                Sequenced::Reconcile(reply) => out.push(Out::Reconcile {
                    holdings: engine_holdings(engine),
                    reply,
                }),
            }
        }
    }
}

/// A registry record's sequence, which the engine steps over.
fn pass(engine: &mut Engine, seq: u64) {
    if let Err(e) = engine.pass(seq) {
        fatal(&format!("engine out of sequence: {e:?}"));
    }
}

/// Every non-zero (account, instrument) holding of the engine.
pub fn engine_holdings(engine: &Engine) -> EngineHoldings {
    EngineHoldings {
        seq: engine.last_seq(),
        holdings: engine
            .holdings()
            .into_iter()
            .map(|(account, instrument, t)| (account.0, instrument, t))
            .collect(),
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

/// A settlement point waiting for the journal to be durable through it (async
/// durability), with the legs it settles.
struct Held {
    seq: u64,
    through_seq: u64,
    timestamp_ns: u64,
    legs: Vec<SettleLeg>,
}

/// Hands applied commands on: replies, the stream hub, settlement legs to the registry.
pub(super) struct Dispatcher {
    hub: Arc<Hub>,
    catalog: Arc<Catalog>,
    registry: RegistryHandle,
    metrics: Arc<Metrics>,
    /// Legs of commands no settlement point has covered yet.
    legs: Vec<SettleLeg>,
    /// Settlement points journaled but not yet durable, oldest first.
    held: VecDeque<Held>,
    woken: Vec<Arc<ReplySink>>,
}

impl Dispatcher {
    pub fn new(
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
            held: VecDeque::new(),
            woken: Vec::new(),
        }
    }

    /// Legs no settlement point covers yet.
    pub fn pending_legs(&self) -> usize {
        self.legs.len()
    }

    fn held_legs(&self) -> usize {
        self.held.iter().map(|h| h.legs.len()).sum::<usize>() + self.legs.len()
    }

    /// Dispatches (and empties) `batch`, whose events are in `events`; the journal is
    /// durable through `durable`.
    pub fn dispatch(&mut self, batch: &mut Vec<Out>, events: &[Event], durable: u64) {
        let mut counts = MetricCounts::default();
        // The stream hub takes the whole batch at once (its locks once per batch, not per
        // command), before any reply goes out. A snapshot or reconciliation in the batch
        // takes the hub's bars as of its own point, so such a batch publishes command by
        // command instead.
        let published = batch.iter().all(|out| {
            matches!(
                out,
                Out::Applied { .. } | Out::Registry { .. } | Out::Settle { .. }
            )
        });
        if published {
            self.hub
                .publish_all(batch.iter().filter_map(|out| match out {
                    Out::Applied {
                        seq,
                        timestamp_ns,
                        events: range,
                        ..
                    } => Some((*seq, *timestamp_ns, slice(events, range))),
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
                    let events = slice(events, &range);
                    settlement_legs(events, &self.catalog, &mut self.legs);
                    counts.count(&self.metrics, events);
                    if !published {
                        self.hub.publish(seq, timestamp_ns, events);
                    }
                    self.reply(seq, timestamp_ns, events, reply);
                }
                Out::Registry { seq, tx, reply } => {
                    // Its batch was committed with an fsync (`Pipeline::needs_durable`).
                    assert!(
                        seq <= durable,
                        "registry record {seq} past the durable journal {durable}"
                    );
                    self.release(durable);
                    self.registry.send_blocking(RegJob::Tx {
                        journal_seq: seq,
                        tx,
                        reply,
                    });
                }
                Out::Settle {
                    seq,
                    through_seq,
                    timestamp_ns,
                } => self.held.push_back(Held {
                    seq,
                    through_seq,
                    timestamp_ns,
                    legs: std::mem::take(&mut self.legs),
                }),
                Out::Reconcile { holdings, reply } => {
                    self.release(durable);
                    self.registry
                        .send_blocking(RegJob::Reconcile { holdings, reply });
                }
                Out::Snapshot { seq, bytes, reply } => {
                    assert!(
                        seq <= durable,
                        "snapshot {seq} past the durable journal {durable}"
                    );
                    self.release(durable);
                    self.registry.send_blocking(RegJob::Snapshot {
                        seq,
                        engine: bytes,
                        bars: self.hub.all_bars(),
                        trades: self.hub.all_trades(),
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
        self.release(durable);
    }

    fn reply(&mut self, seq: u64, timestamp_ns: u64, events: &[Event], reply: Reply) {
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
                    // Woken at its first result: its task starts sending while the rest
                    // of the batch is dispatched (and again at the end).
                    sink.wake();
                    self.woken.push(sink);
                }
            }
        }
    }

    /// Answers a command the journal refused (see `Applied::not_journaled`).
    pub fn refuse(&mut self, reply: Reply) {
        match reply {
            Reply::Once(reply) => {
                let _ = reply.send(Applied::not_journaled());
            }
            Reply::Sink(sink) => {
                sink.push(0, 0, &[]);
                sink.wake();
            }
        }
    }

    /// Sends the settlements held back whose points the journal holds durably (with async
    /// durability they wait for the next flush: a registry settled beyond the journal
    /// that a machine crash leaves would never match the engine again).
    pub fn release(&mut self, durable: u64) {
        while let Some(front) = self.held.front()
            && front.seq <= durable
        {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.registry
                .settle(h.seq, h.through_seq, h.timestamp_ns, h.legs);
        }
    }

    /// The engine stopped: everything it produced that is durable is queued for the
    /// registry; let the writer finish it and stop. (What is not, the journal's last flush
    /// having failed, recovery settles from whatever the journal holds.)
    pub fn stop(&mut self, durable: u64) {
        self.release(durable);
        self.registry.send_blocking(RegJob::Stop);
    }
}

/// The events of one result, which the applier recorded in range of its buffer.
fn slice<'a>(events: &'a [Event], range: &std::ops::Range<usize>) -> &'a [Event] {
    match events.get(range.clone()) {
        Some(events) => events,
        None => fatal(&format!(
            "a result's events {range:?} are outside the batch's {} events",
            events.len()
        )),
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
