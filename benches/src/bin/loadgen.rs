#![allow(clippy::float_arithmetic)] // rates and ratios for the report, never state
//! Load generator for the carbonx gateway.
//!
//! `cargo run --release -p benches --bin loadgen -- [--target ADDR --tokens FILE] [options]`
//!
//! Without `--target` it starts the real server in-process on a temporary data directory
//! (sync durability, the test principals) and opens the test market. With `--target` the
//! server must know the test principals (`tests::PRINCIPALS`, written by `--write-tokens`)
//! and have the test market open (`--setup` does that).
//!
//! Modes: closed loop (each client keeps `--window` requests in flight) or open loop (a
//! constant offered rate; latency is measured from the *intended* send time, so queueing
//! counts). APIs: unary `PlaceOrder`/`CancelOrder`/`AmendOrder`, or the `OrderEntry` stream.
//! `--baseline` runs the same load against a trivial tonic service that answers at once,
//! with replies the gateway sent to requests of the same kind in the run before (so both
//! send the same message sizes: every run prints its mean reply size), and reports the
//! gateway as a ratio of it.
//! `--windows a,b,c` runs once per window and compares peaks; `--repeat N` runs each
//! window N times (gateway and echo alternating) and reports each side's median run.
//! `--targets` judges the issue's two targets in one command: the sweep's peak ratio
//! (>= 0.50), then the open loop at half of the gateway's peak (p99 <= 2 ms).
//!
//! The last line is machine-readable:
//! `throughput_per_s=N p50_us=N p99_us=N p999_us=N max_us=N errors=N`

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use proto::v1 as pb;
use proto::v1::trading_service_server::{TradingService, TradingServiceServer};
use server::config::Durability;
use tempfile::TempDir;
use tests::{
    Clients, E1, M1, M2, M3, Principals, Supply, TestServer, limit, open_market_at, supply,
    test_config,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Closed,
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Api {
    Unary,
    Stream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EchoReplies {
    Recorded,
    Fixed,
}

#[derive(Clone, Debug, Parser)]
#[command(about = "carbonx load generator")]
struct Args {
    /// A running server (default: start one in-process).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// With --target: open the test market first (accounts, instrument, funds, day).
    #[arg(long)]
    setup: bool,
    /// Write the test principals' tokens file here and exit (for `carbonx serve --tokens`).
    #[arg(long)]
    write_tokens: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    #[arg(long, value_enum, default_value = "stream")]
    api: Api,
    /// Concurrent clients (each its own connection), spread over the four test accounts.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Closed loop: requests in flight per client (stream) or concurrent calls (unary).
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Open loop: total offered requests per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds of measured load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Also run the same load against a trivial echo service and print the ratio.
    #[arg(long)]
    baseline: bool,
    /// Closed loop: run once per window (e.g. `64,128,256,512,1024`; a fresh in-process
    /// server each time), print a table, and end with the best run's line (with
    /// --baseline: the ratio of the gateway's peak to the echo's peak).
    #[arg(long, value_delimiter = ',')]
    windows: Vec<usize>,
    /// Run each window this many times (with --baseline: gateway and echo alternating, so
    /// both see the same moments of a noisy machine) and report each side's median run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=50))]
    repeat: u64,
    /// What the echo baseline answers with. `recorded` (the default): replies the gateway
    /// sent in the run before, by request kind (fills, cancel reasons, rejections and all),
    /// so the baseline sends the gateway's message sizes; `fixed`: the order echoed back
    /// with no fills (what the figures before 2026-11-29 12:00 used).
    #[arg(long, value_enum, default_value = "recorded")]
    echo_replies: EchoReplies,
    /// In-process server: snapshot the engine every this many commands (default: the
    /// server's default; 0: only at shutdown).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// In-process server: journal durability. `async` (fsync at most every few ms) shows
    /// what the fsync per batch costs; the issue's targets are for `sync`.
    #[arg(long, value_enum, default_value = "sync")]
    durability: Durability,
    /// Judge the issue's two targets in one command: a closed-loop sweep of `--windows`
    /// (default 64,256,1024,2048) against the gateway and the echo (the ratio of their
    /// peaks, target >= 0.50 with sync durability), then the open loop at half of the
    /// gateway's peak (target p99 <= 2 ms); each step `--repeat` times, medians. Ends with
    /// the peak's line plus `ratio=`, `half_peak_rate=`, `half_peak_p99_us=` and
    /// `targets_met=`; exits 1 while a target is not met.
    #[arg(long, conflicts_with_all = ["mode", "rate"])]
    targets: bool,
    /// In-process server: preallocate journal segments (as `carbonx serve` does by default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    journal_preallocate: bool,
}

/// One request of the mix: 70% new limit orders (a fifth IOC), 20% cancels, 10% amends;
/// and a cancel of the client's oldest live order whenever it has `LIVE_MAX` of them, so
/// each client's resting orders (and the allowances and funds they hold) stay bounded and
/// the market stays in a steady state (without it, resting orders piled up until most
/// orders were refused for the account's order limit or its allowances).
fn next_request(
    rng: &mut u64,
    account: u64,
    client_id: &mut u64,
    live: &mut VecDeque<u64>,
) -> pb::order_entry_request::Request {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let roll = *rng % 100;
    if live.len() >= LIVE_MAX
        && let Some(id) = live.pop_front()
    {
        return pb::order_entry_request::Request::Cancel(pb::CancelOrderRequest {
            account_id: account,
            order_id: id,
        });
    }
    if roll < 20
        && let Some(id) = live.swap_remove_back((*rng >> 8) as usize % live.len().max(1))
    {
        return pb::order_entry_request::Request::Cancel(pb::CancelOrderRequest {
            account_id: account,
            order_id: id,
        });
    }
    if roll < 30 && !live.is_empty() {
        let id = live[(*rng >> 8) as usize % live.len()];
        return pb::order_entry_request::Request::Amend(pb::AmendOrderRequest {
            account_id: account,
            order_id: id,
            price_fen: 8_300 + ((*rng >> 20) % 400) as i64,
            quantity_t: 0,
        });
    }
    *client_id += 1;
    let side = if (*rng >> 3) & 1 == 0 {
        pb::Side::Buy
    } else {
        pb::Side::Sell
    };
    // Buys below, sells above the reference, overlapping in the middle so some trade.
    let offset = ((*rng >> 24) % 300) as i64;
    let price = match side {
        pb::Side::Buy => 8_350 + offset,
        _ => 8_650 - offset,
    };
    let mut order = limit(account, *client_id, side, price, 1 + (*rng >> 40) % 20);
    if roll.is_multiple_of(5) {
        order.time_in_force = pb::TimeInForce::Ioc as i32;
    }
    pb::order_entry_request::Request::Place(order)
}

#[derive(Default)]
struct Stats {
    latency: Option<Histogram<u64>>,
    done: u64,
    errors: u64,
    /// Encoded size of the replies counted, in bytes (the gRPC message, before framing).
    reply_bytes: u64,
}

fn record(
    stats: &Mutex<Stats>,
    started: Instant,
    measuring_from: Instant,
    ok: bool,
    reply_bytes: usize,
) {
    let now = Instant::now();
    if started < measuring_from {
        return;
    }
    let mut s = stats.lock();
    s.reply_bytes += reply_bytes as u64;
    if ok {
        s.done += 1;
    } else {
        s.errors += 1;
    }
    let us = now.duration_since(started).as_micros() as u64;
    if let Some(h) = s.latency.as_mut() {
        let _ = h.record(us.max(1));
    }
}

/// How many live orders a client keeps: at this many its next request cancels the oldest.
const LIVE_MAX: usize = 200;

/// Live order ids from a reply.
fn track(reply: &pb::OrderReply, live: &mut VecDeque<u64>) {
    if let Some(o) = &reply.order
        && o.leaves_t > 0
        && reply.cancel_reason.is_empty()
        && !live.contains(&o.order_id)
    {
        live.push_back(o.order_id);
    }
}

/// A request's kind, which picks the echo's recorded reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Place = 0,
    Cancel = 1,
    Amend = 2,
}

impl Kind {
    fn of(request: &pb::order_entry_request::Request) -> Kind {
        match request {
            pb::order_entry_request::Request::Place(_) => Kind::Place,
            pb::order_entry_request::Request::Cancel(_) => Kind::Cancel,
            pb::order_entry_request::Request::Amend(_) => Kind::Amend,
        }
    }

    fn from_bits(bits: u64) -> Kind {
        match bits & 3 {
            1 => Kind::Cancel,
            2 => Kind::Amend,
            _ => Kind::Place,
        }
    }
}

/// Replies kept per request kind for the echo (a few hundred ms of the gateway's replies).
const REPLY_BOOK_MAX: usize = 4_096;
/// A client offers every this-many-th measured reply to the book (each offer takes the
/// book's lock).
const REPLY_BOOK_STRIDE: u64 = 16;

/// Replies the gateway sent, by request kind, which the echo baseline answers with: the
/// issue asks for a baseline with the gateway's message sizes, and the gateway's replies
/// carry fills, cancel reasons and rejections that a reply built from the request alone
/// does not (measured: 55 bytes on average against the fixed echo's 37). The unary calls
/// refuse with a gRPC status instead of an inline rejection: those are kept too.
#[derive(Debug, Default)]
struct ReplyBook {
    kinds: [parking_lot::RwLock<Sample>; 3],
    next: [std::sync::atomic::AtomicUsize; 3],
}

/// A uniform sample of the replies offered (reservoir sampling): the whole run's replies,
/// not its first moments (sequences and order ids, and with them the varints, grow).
#[derive(Debug, Default)]
struct Sample {
    kept: Vec<Outcome>,
    offered: u64,
    rng: u64,
}

/// What the gateway answered: a reply, or (unary calls) a refusal's status.
#[derive(Clone, Debug)]
enum Outcome {
    Reply(pb::OrderReply),
    Refused(Status),
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Reply(a), Outcome::Reply(b)) => a == b,
            (Outcome::Refused(a), Outcome::Refused(b)) => {
                (a.code(), a.message()) == (b.code(), b.message())
            }
            _ => false,
        }
    }
}

impl Outcome {
    fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Outcome::Reply(r) => r.encoded_len(),
            Outcome::Refused(_) => 0,
        }
    }
}

impl ReplyBook {
    fn clear(&self) {
        for kind in &self.kinds {
            *kind.write() = Sample::default();
        }
    }

    fn offer(&self, kind: Kind, outcome: Outcome) {
        let mut sample = self.kinds[kind as usize].write();
        sample.offered += 1;
        if sample.kept.len() < REPLY_BOOK_MAX {
            sample.kept.push(outcome);
            return;
        }
        // The n-th offer replaces a kept reply with probability MAX / n.
        sample.rng = sample
            .rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let at = (sample.rng >> 16) % sample.offered;
        if let Some(slot) = sample.kept.get_mut(at as usize) {
            *slot = outcome;
        }
    }

    /// The next recorded outcome for `kind`, round the book, if any was recorded.
    fn pick(&self, kind: Kind) -> Option<Outcome> {
        let kept = &self.kinds[kind as usize].read().kept;
        if kept.is_empty() {
            return None;
        }
        let n = self.next[kind as usize].fetch_add(1, Ordering::Relaxed);
        kept.get(n % kept.len()).cloned()
    }

    /// (replies, encoded bytes) kept, for the report.
    fn size(&self) -> (usize, usize) {
        self.kinds.iter().fold((0, 0), |(n, bytes), kind| {
            let kept = &kind.read().kept;
            (
                n + kept.len(),
                bytes + kept.iter().map(Outcome::encoded_len).sum::<usize>(),
            )
        })
    }
}

/// Slots of a stream's [`SendTimes`]: far more than a stream can have in flight (the
/// server reads at most `limits.in_flight_per_connection`, 1,024 by default, ahead of its
/// replies; the request channel and HTTP/2's stream window hold a few thousand more).
const SEND_TIME_SLOTS: usize = 1 << 16;

/// When each request in flight on a stream was (meant to be) sent, by correlation id: the
/// client numbers its requests 1, 2, 3..., so a request's slot is its number modulo the
/// ring's size. The sending task writes, the reading task reads; a hash map shared by the
/// two cost a cache miss per reply on this 2-core machine (perf: a sixth of all samples at
/// 620 k/s, the client's CPU taken from the server it measures), the ring's neighbouring
/// slots share cache lines.
struct SendTimes {
    base: Instant,
    /// (correlation id, nanoseconds since `base` << 2 | the request's [`Kind`]);
    /// correlation 0 is never used.
    slots: Box<[(AtomicU64, AtomicU64)]>,
}

impl SendTimes {
    fn new() -> SendTimes {
        SendTimes {
            base: Instant::now(),
            slots: (0..SEND_TIME_SLOTS)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        }
    }

    fn slot(&self, correlation: u64) -> &(AtomicU64, AtomicU64) {
        &self.slots[correlation as usize % SEND_TIME_SLOTS]
    }

    fn put(&self, correlation: u64, at: Instant, kind: Kind) {
        let slot = self.slot(correlation);
        let nanos = at.saturating_duration_since(self.base).as_nanos() as u64;
        slot.1.store(nanos << 2 | kind as u64, Ordering::Relaxed);
        slot.0.store(correlation, Ordering::Release);
    }

    /// The send time and kind of `correlation`'s request, if its slot still holds it.
    fn get(&self, correlation: u64) -> Option<(Instant, Kind)> {
        let slot = self.slot(correlation);
        (slot.0.load(Ordering::Acquire) == correlation).then(|| {
            let packed = slot.1.load(Ordering::Relaxed);
            (
                self.base + Duration::from_nanos(packed >> 2),
                Kind::from_bits(packed),
            )
        })
    }
}

async fn run_client(
    addr: SocketAddr,
    n: usize,
    args: Arc<Args>,
    stats: Arc<Mutex<Stats>>,
    (measuring_from, end): (Instant, Instant),
    ticks: tokio::sync::mpsc::UnboundedReceiver<Vec<Instant>>,
    book: Option<Arc<ReplyBook>>,
) {
    use prost::Message;
    let (name, account) = [("m1", M1), ("m2", M2), ("m3", M3), ("e1", E1)][n % 4];
    let Ok(mut c) = Clients::at(addr, name).await else {
        stats.lock().errors += 1;
        return;
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (n as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    // Client order ids unique per client and per run (a run against a server that an
    // earlier run used must not repeat that run's ids).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() & 0xFFFF);
    let mut client_id = (run << 48) | ((n as u64 + 1) << 32);
    let mut live = VecDeque::new();
    // Measured replies seen, for the book's sample (every `REPLY_BOOK_STRIDE`-th).
    let mut measured = 0u64;
    match args.api {
        Api::Stream => {
            let (tx, rx) = mpsc::channel::<pb::OrderEntryRequest>(args.window.max(1) * 2);
            let mut replies = match c.trading.order_entry(ReceiverStream::new(rx)).await {
                Ok(r) => r.into_inner(),
                Err(_) => {
                    stats.lock().errors += 1;
                    return;
                }
            };
            let sent = Arc::new(SendTimes::new());
            let window = Arc::new(tokio::sync::Semaphore::new(args.window.max(1)));
            let live_shared = Arc::new(Mutex::new(VecDeque::<u64>::new()));
            let reader = {
                let sent = sent.clone();
                let stats = stats.clone();
                let window = window.clone();
                let live_shared = live_shared.clone();
                tokio::spawn(async move {
                    while let Some(Ok(reply)) = replies.next().await {
                        let bytes = reply.encoded_len();
                        let sent_as = sent.get(reply.correlation_id);
                        let r = reply.reply.unwrap_or_default();
                        track(&r, &mut live_shared.lock());
                        if let Some((started, kind)) = sent_as {
                            if started >= measuring_from {
                                sample(&book, &mut measured, kind, || Outcome::Reply(r.clone()));
                            }
                            record(
                                &stats,
                                started,
                                measuring_from,
                                r.rejection
                                    .as_ref()
                                    .is_none_or(|x| x.reason != "QUEUE_FULL"),
                                bytes,
                            );
                        }
                        window.add_permits(1);
                    }
                })
            };
            let mut correlation = 0u64;
            let mut ticks = Ticks {
                rx: ticks,
                due: Vec::new().into_iter(),
            };
            while Instant::now() < end {
                let intended = match args.mode {
                    Mode::Open => {
                        let Some(at) = ticks.next().await else { break };
                        at
                    }
                    Mode::Closed => {
                        let Ok(permit) = window.acquire().await else {
                            break;
                        };
                        permit.forget();
                        Instant::now()
                    }
                };
                correlation += 1;
                let request = {
                    let mut l = live_shared.lock();
                    next_request(&mut rng, account, &mut client_id, &mut l)
                };
                sent.put(correlation, intended, Kind::of(&request));
                if tx
                    .send(pb::OrderEntryRequest {
                        correlation_id: correlation,
                        request: Some(request),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            drop(tx);
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        Api::Unary => {
            let mut ticks = Ticks {
                rx: ticks,
                due: Vec::new().into_iter(),
            };
            let mut inflight = tokio::task::JoinSet::new();
            while Instant::now() < end {
                let intended = match args.mode {
                    Mode::Open => {
                        let Some(at) = ticks.next().await else { break };
                        at
                    }
                    Mode::Closed => {
                        while inflight.len() >= args.window.max(1) {
                            if let Some(Ok(answered)) = inflight.join_next().await {
                                unary_answered(answered, &mut live, &book, &mut measured);
                            }
                        }
                        Instant::now()
                    }
                };
                let request = next_request(&mut rng, account, &mut client_id, &mut live);
                let kind = Kind::of(&request);
                let mut t = c.trading.clone();
                let stats = stats.clone();
                inflight.spawn(async move {
                    let result = match request {
                        pb::order_entry_request::Request::Place(p) => t.place_order(p).await,
                        pb::order_entry_request::Request::Cancel(x) => t.cancel_order(x).await,
                        pb::order_entry_request::Request::Amend(a) => t.amend_order(a).await,
                    };
                    let ok = match &result {
                        Ok(_) => true,
                        Err(s) => {
                            s.code() != tonic::Code::ResourceExhausted
                                && s.code() != tonic::Code::Unavailable
                        }
                    };
                    let bytes = result.as_ref().map_or(0, |r| r.get_ref().encoded_len());
                    record(&stats, intended, measuring_from, ok, bytes);
                    let measuring = intended >= measuring_from;
                    let outcome = match result {
                        Ok(reply) => Some(Outcome::Reply(reply.into_inner())),
                        Err(status) if ok => Some(Outcome::Refused(status)),
                        Err(_) => None,
                    };
                    (kind, measuring, outcome)
                });
                while let Some(done) = inflight.try_join_next() {
                    if let Ok(answered) = done {
                        unary_answered(answered, &mut live, &book, &mut measured);
                    }
                }
            }
            while inflight.join_next().await.is_some() {}
        }
    }
}

/// A unary call's answer: (its request's kind, whether it was measured, the reply or
/// the gateway's refusal; `None` when the server was overloaded or gone).
type Answered = (Kind, bool, Option<Outcome>);

/// Tracks a unary reply's order and samples the measured answers for the book.
fn unary_answered(
    (kind, measuring, outcome): Answered,
    live: &mut VecDeque<u64>,
    book: &Option<Arc<ReplyBook>>,
    measured: &mut u64,
) {
    let Some(outcome) = outcome else { return };
    if let Outcome::Reply(r) = &outcome {
        track(r, live);
    }
    if measuring {
        sample(book, measured, kind, || outcome);
    }
}

/// Counts one of a client's measured answers and offers every `REPLY_BOOK_STRIDE`-th to
/// the book, if there is one (made only then).
fn sample(
    book: &Option<Arc<ReplyBook>>,
    measured: &mut u64,
    kind: Kind,
    outcome: impl FnOnce() -> Outcome,
) {
    if let Some(book) = book {
        *measured += 1;
        if measured.is_multiple_of(REPLY_BOOK_STRIDE) {
            book.offer(kind, outcome());
        }
    }
}

/// A client's share of the pacer's send times, one at a time.
struct Ticks {
    rx: tokio::sync::mpsc::UnboundedReceiver<Vec<Instant>>,
    due: std::vec::IntoIter<Instant>,
}

impl Ticks {
    async fn next(&mut self) -> Option<Instant> {
        loop {
            if let Some(at) = self.due.next() {
                return Some(at);
            }
            self.due = self.rx.recv().await?.into_iter();
        }
    }
}

/// Open loop: the intended send times at the offered rate, dealt round-robin to the
/// clients by one thread that sleeps with the OS's high-resolution timer (tokio's timer
/// wheel has 1 ms granularity). It wakes every `PACER_TICK` and hands each client the
/// send times due by then in one message: latency is still measured from each request's
/// own intended time (so the generator's lateness counts against the server, never for
/// it), while the generator's own wake-ups stay few (waking for every request cost
/// about a tenth of this 2-core machine at 230 k/s).
const PACER_TICK: Duration = Duration::from_micros(100);

fn pacer(
    rate: u64,
    clients: usize,
    end: Instant,
) -> Vec<tokio::sync::mpsc::UnboundedReceiver<Vec<Instant>>> {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..clients.max(1))
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    std::thread::spawn(move || {
        let mut next = Instant::now();
        let mut n = 0usize;
        let mut due: Vec<Vec<Instant>> = vec![Vec::new(); txs.len()];
        while next < end {
            let now = Instant::now();
            while next <= now {
                due[n % txs.len()].push(next);
                n += 1;
                next += interval;
            }
            for (tx, times) in txs.iter().zip(due.iter_mut()) {
                if !times.is_empty() && tx.send(std::mem::take(times)).is_err() {
                    return;
                }
            }
            std::thread::sleep((next.max(now + PACER_TICK)) - now);
        }
    });
    rxs
}

/// The baseline: answers every trading call at once, with a reply the gateway sent to a
/// request of the same kind, as it was (ids and sequence too, so even the varints are the
/// gateway's size: this echo answers twice as many requests, and numbering them itself
/// made its replies 1.5 bytes longer), or without a book, one built from the request.
#[derive(Clone, Debug)]
struct Echo {
    book: Option<Arc<ReplyBook>>,
}

impl Echo {
    /// The answer to a unary call: a recorded reply or refusal, as the gateway gave it.
    fn answer(&self, request: &pb::order_entry_request::Request) -> Result<pb::OrderReply, Status> {
        match self.book.as_ref().and_then(|b| b.pick(Kind::of(request))) {
            Some(Outcome::Reply(reply)) => Ok(reply),
            Some(Outcome::Refused(status)) => Err(status),
            None => Ok(echo_reply(request, seq())),
        }
    }

    /// The reply on an `OrderEntry` stream (where the gateway's rejections are inline, so
    /// its book holds replies only).
    fn reply(&self, request: &pb::order_entry_request::Request) -> pb::OrderReply {
        self.answer(request)
            .unwrap_or_else(|_| echo_reply(request, seq()))
    }
}

fn echo_reply(request: &pb::order_entry_request::Request, seq: u64) -> pb::OrderReply {
    let order = match request {
        pb::order_entry_request::Request::Place(p) => pb::Order {
            order_id: seq,
            account_id: p.account_id,
            client_order_id: p.client_order_id,
            instrument: p.instrument.clone(),
            side: p.side,
            order_type: p.order_type,
            time_in_force: p.time_in_force,
            price_fen: p.price_fen,
            quantity_t: p.quantity_t,
            filled_t: 0,
            leaves_t: p.quantity_t,
            status: pb::OrderStatus::New as i32,
        },
        pb::order_entry_request::Request::Cancel(c) => pb::Order {
            order_id: c.order_id,
            account_id: c.account_id,
            status: pb::OrderStatus::Cancelled as i32,
            ..Default::default()
        },
        pb::order_entry_request::Request::Amend(a) => pb::Order {
            order_id: a.order_id,
            account_id: a.account_id,
            price_fen: a.price_fen,
            status: pb::OrderStatus::New as i32,
            ..Default::default()
        },
    };
    pb::OrderReply {
        sequence: seq,
        order: Some(order),
        ..Default::default()
    }
}

static ECHO_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn seq() -> u64 {
    ECHO_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

#[tonic::async_trait]
impl TradingService for Echo {
    async fn place_order(
        &self,
        r: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        self.answer(&pb::order_entry_request::Request::Place(r.into_inner()))
            .map(Response::new)
    }
    async fn cancel_order(
        &self,
        r: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        self.answer(&pb::order_entry_request::Request::Cancel(r.into_inner()))
            .map(Response::new)
    }
    async fn amend_order(
        &self,
        r: Request<pb::AmendOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        self.answer(&pb::order_entry_request::Request::Amend(r.into_inner()))
            .map(Response::new)
    }
    async fn cancel_all(
        &self,
        _: Request<pb::CancelAllRequest>,
    ) -> Result<Response<pb::CancelAllReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn get_order(
        &self,
        _: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn list_orders(
        &self,
        _: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn get_trading_account(
        &self,
        _: Request<pb::GetTradingAccountRequest>,
    ) -> Result<Response<pb::TradingAccount>, Status> {
        Err(Status::unimplemented("echo"))
    }
    type OrderEntryStream = ReceiverStream<Result<pb::OrderEntryReply, Status>>;
    async fn order_entry(
        &self,
        r: Request<Streaming<pb::OrderEntryRequest>>,
    ) -> Result<Response<Self::OrderEntryStream>, Status> {
        let mut incoming = r.into_inner();
        let (tx, rx) = mpsc::channel(8_192);
        let echo = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = incoming.next().await {
                let reply = req.request.as_ref().map(|x| echo.reply(x));
                if tx
                    .send(Ok(pb::OrderEntryReply {
                        correlation_id: req.correlation_id,
                        reply,
                    }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
    type StreamExecutionsStream = ReceiverStream<Result<pb::ExecutionReport, Status>>;
    async fn stream_executions(
        &self,
        _: Request<pb::StreamExecutionsRequest>,
    ) -> Result<Response<Self::StreamExecutionsStream>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn propose_block(
        &self,
        _: Request<pb::ProposeBlockRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn accept_block(
        &self,
        _: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn reject_block(
        &self,
        _: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn cancel_block(
        &self,
        _: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        Err(Status::unimplemented("echo"))
    }
}

/// Starts the echo service on its own runtime (as a separate server would be).
fn start_echo(book: Option<Arc<ReplyBook>>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = tx.send(listener.local_addr().expect("addr"));
            let _ = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(TradingServiceServer::new(Echo { book }))
                .serve_with_incoming(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await;
        });
    });
    rx.recv().expect("echo address")
}

#[derive(Default)]
struct Summary {
    /// Requests answered per second while measuring.
    throughput: u64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    errors: u64,
    /// CPU time of this whole process (clients, and the server when in-process) per
    /// request answered while measuring, in nanoseconds.
    cpu_ns_per_request: Option<u64>,
    /// Mean encoded reply, in hundredths of a byte.
    reply_centibytes: u64,
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`, in
/// microseconds (the kernel counts in USER_HZ = 100 ticks per second).
fn process_cpu_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10_000)
}

/// One run against `addr`; with `book`, a sample of the replies is kept there.
fn run(
    addr: SocketAddr,
    args: &Arc<Args>,
    runtime: &tokio::runtime::Runtime,
    book: Option<&Arc<ReplyBook>>,
) -> Summary {
    // One set of statistics per client (no lock shared between clients on the reply
    // path), merged at the end.
    let per_client: Vec<Arc<Mutex<Stats>>> = (0..args.clients)
        .map(|_| {
            Arc::new(Mutex::new(Stats {
                latency: Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
                ..Stats::default()
            }))
        })
        .collect();
    let measuring_from = Instant::now() + Duration::from_secs(1);
    let end = measuring_from + Duration::from_secs(args.duration);
    let cpu = runtime.spawn(async move {
        tokio::time::sleep_until(measuring_from.into()).await;
        let from = process_cpu_us();
        tokio::time::sleep_until(end.into()).await;
        Some(process_cpu_us()?.saturating_sub(from?))
    });
    runtime.block_on(async {
        let mut tasks = Vec::new();
        let mut ticks = if args.mode == Mode::Open {
            pacer(args.rate, args.clients, end)
        } else {
            Vec::new()
        };
        for (n, stats) in per_client.iter().enumerate() {
            let t = if ticks.is_empty() {
                tokio::sync::mpsc::unbounded_channel().1
            } else {
                ticks.remove(0)
            };
            tasks.push(tokio::spawn(run_client(
                addr,
                n,
                args.clone(),
                stats.clone(),
                (measuring_from, end),
                t,
                book.cloned(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut s = Stats {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
        ..Stats::default()
    };
    for c in &per_client {
        let c = c.lock();
        s.done += c.done;
        s.errors += c.errors;
        s.reply_bytes += c.reply_bytes;
        if let (Some(all), Some(h)) = (s.latency.as_mut(), c.latency.as_ref()) {
            let _ = all.add(h);
        }
    }
    let cpu_us = runtime.block_on(cpu).ok().flatten();
    let h = s.latency.as_ref();
    let q = |p: f64| h.map_or(0, |h| h.value_at_quantile(p));
    Summary {
        throughput: s.done / args.duration.max(1),
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        max: h.map_or(0, Histogram::max),
        errors: s.errors,
        cpu_ns_per_request: cpu_us.filter(|_| s.done > 0).map(|us| us * 1_000 / s.done),
        reply_centibytes: (s.reply_bytes * 100)
            .checked_div(s.done + s.errors)
            .unwrap_or(0),
    }
}

/// What the in-process server's metrics endpoint says about a run: how the load was batched.
#[derive(Debug, Default)]
struct ServerCounts {
    commands: u64,
    batches: u64,
    fsync_us: u64,
}

impl ServerCounts {
    fn scrape(addr: SocketAddr) -> ServerCounts {
        use std::io::{Read, Write};
        let mut text = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: loadgen\r\n\r\n");
            let _ = s.read_to_string(&mut text);
        }
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .map(str::trim)
        };
        let count = |name: &str| value(name).and_then(|v| v.parse::<u64>().ok());
        ServerCounts {
            commands: count("carbonx_commands_total").unwrap_or(0),
            batches: count("carbonx_journal_batches_total").unwrap_or(0),
            fsync_us: value("carbonx_journal_fsync_seconds_sum")
                .and_then(seconds_to_us)
                .unwrap_or(0),
        }
    }

    fn since(&self, before: &ServerCounts) -> String {
        let commands = self.commands.saturating_sub(before.commands);
        let batches = self.batches.saturating_sub(before.batches).max(1);
        format!(
            "server:   commands={commands} journal_batches={batches} commands_per_batch={} \
             write_fsync_mean_us={}",
            commands / batches,
            self.fsync_us.saturating_sub(before.fsync_us) / batches
        )
    }
}

/// `"12.3456789"` (seconds, as the metrics text writes them) in whole microseconds.
fn seconds_to_us(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let micros: String = fraction.chars().chain("000000".chars()).take(6).collect();
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros.parse().ok()?)
}

/// This process's CPU per request (`whose` says what runs in it) and the mean reply size.
fn cpu_line(name: &str, s: &Summary, whose: &str) {
    if let Some(ns) = s.cpu_ns_per_request {
        println!(
            "# {name}: process CPU {}.{:02} us per request ({whose}); replies {}.{:02} bytes on average",
            ns / 1_000,
            ns % 1_000 / 10,
            s.reply_centibytes / 100,
            s.reply_centibytes % 100
        );
    }
}

fn line(s: &Summary) -> String {
    format!(
        "throughput_per_s={} p50_us={} p99_us={} p999_us={} max_us={} errors={}",
        s.throughput, s.p50, s.p99, s.p999, s.max, s.errors
    )
}

/// Allowances each test account gets on top of the test market's, in its trading account.
const DEPTH_T: u64 = 100_000_000;
/// Funds each test account gets on top of the test market's (1 bn yuan).
const DEPTH_FEN: i64 = 100_000_000_000;

/// Opens the test market and deepens it for load: allowances bought today are sellable
/// only tomorrow (T+1), so with the test market's 50,000 t per account the day's supply was
/// sold within the first second and from then on every sell was refused
/// (`INSUFFICIENT_ALLOWANCES`); with `DEPTH_T` per account a run of minutes keeps trading.
async fn open_load_market(addr: SocketAddr) {
    open_market_at(addr).await;
    supply(
        addr,
        &Supply {
            tag: "loadgen-",
            issue_t: DEPTH_T * 4,
            transfer_t: |_| DEPTH_T,
            deposit_t: DEPTH_T,
            funds_fen: DEPTH_FEN,
            funds_transfer_base: 1_000,
        },
    )
    .await;
}

/// The server under test, in-process on a temp dir (sync durability), its market open.
fn start_embedded(args: &Args, runtime: &tokio::runtime::Runtime) -> (TestServer, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    config.journal_preallocate = args.journal_preallocate;
    config.durability = args.durability;
    if let Some(n) = args.snapshot_every {
        config.snapshot_every = n;
    }
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = TestServer::start_with(config);
    runtime.block_on(open_load_market(server.addr));
    (server, dir)
}

/// One row per run: window, gateway and echo throughput, ratio.
fn print_table(title: &str, rows: &[(usize, Summary, Option<Summary>)]) {
    println!("# window  gateway/s  echo/s  ratio{title}");
    for (window, gateway, base) in rows {
        match base {
            Some(base) => println!(
                "# {window:>6} {:>10} {:>7} {:>6}",
                gateway.throughput,
                base.throughput,
                ratio(gateway, base)
            ),
            None => println!("# {window:>6} {:>10}", gateway.throughput),
        }
    }
}

/// Per window, in the order first run, each side's median run by throughput (the upper
/// one of an even count).
fn medians(rows: Vec<(usize, Summary, Option<Summary>)>) -> Vec<(usize, Summary, Option<Summary>)> {
    let mut windows: Vec<usize> = Vec::new();
    for (window, _, _) in &rows {
        if !windows.contains(window) {
            windows.push(*window);
        }
    }
    let mut by_window: Vec<(Vec<Summary>, Vec<Summary>)> =
        windows.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for (window, gateway, base) in rows {
        let Some(at) = windows.iter().position(|w| *w == window) else {
            continue;
        };
        by_window[at].0.push(gateway);
        by_window[at].1.extend(base);
    }
    let median = |mut runs: Vec<Summary>| {
        runs.sort_by_key(|s| s.throughput);
        let middle = runs.len() / 2;
        runs.into_iter().nth(middle)
    };
    windows
        .into_iter()
        .zip(by_window)
        .filter_map(|(window, (gateways, bases))| Some((window, median(gateways)?, median(bases))))
        .collect()
}

/// The run with the highest throughput, with its window.
fn peak<'a>(runs: impl Iterator<Item = (usize, &'a Summary)>) -> Option<(usize, &'a Summary)> {
    runs.max_by_key(|run| run.1.throughput)
}

/// The issue's throughput target: the gateway's peak at least this share of the echo's.
const TARGET_RATIO_PERCENT: u64 = 50;
/// The issue's latency target: p99 at half of the gateway's peak rate, in microseconds.
const TARGET_P99_US: u64 = 2_000;
/// `--targets` without `--windows`: from a shallow window to past the gateway's peak.
const TARGET_WINDOWS: [usize; 4] = [64, 256, 1_024, 2_048];

/// Both targets judged from the sweep's peaks and the runs at half of the gateway's peak.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    ratio: String,
    throughput_met: bool,
    half_rate: u64,
    /// The median of the half-peak runs' p99 (the upper one of an even count).
    p99: u64,
    latency_met: bool,
}

impl Verdict {
    fn judge(gateway_peak: &Summary, echo_peak: &Summary, half: &[Summary]) -> Option<Verdict> {
        let p99 = median_p99(half.iter())?;
        Some(Verdict {
            ratio: ratio(gateway_peak, echo_peak),
            throughput_met: gateway_peak.throughput * 100
                >= echo_peak.throughput * TARGET_RATIO_PERCENT,
            half_rate: half_rate(gateway_peak),
            p99,
            latency_met: p99 <= TARGET_P99_US,
        })
    }

    fn met(&self) -> bool {
        self.throughput_met && self.latency_met
    }
}

/// The median of the runs' p99 (the upper one of an even count: the stricter).
fn median_p99<'a>(runs: impl Iterator<Item = &'a Summary>) -> Option<u64> {
    let mut p99s: Vec<u64> = runs.map(|s| s.p99).collect();
    p99s.sort_unstable();
    p99s.get(p99s.len() / 2).copied()
}

/// The open loop's offered rate for the latency target: half of the gateway's peak.
fn half_rate(gateway_peak: &Summary) -> u64 {
    (gateway_peak.throughput / 2).max(1)
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "NOT met" }
}

/// Gateway throughput over the echo's, to two decimals (rounded), e.g. `0.46`.
fn ratio(gateway: &Summary, base: &Summary) -> String {
    let hundredths = (gateway.throughput * 100 + base.throughput / 2)
        .checked_div(base.throughput)
        .unwrap_or(0);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// One run of `args` against the gateway (a fresh in-process server unless `--target`),
/// then, with `--baseline`, the same load against the echo; each result printed as it ends.
fn run_pair(
    args: &Arc<Args>,
    runtime: &tokio::runtime::Runtime,
    book: Option<&Arc<ReplyBook>>,
    echo: Option<SocketAddr>,
) -> (Summary, Option<Summary>) {
    // A fresh in-process server for every run, so each starts from the same book.
    let embedded = args.target.is_none().then(|| start_embedded(args, runtime));
    let addr = match (&embedded, args.target) {
        (Some((server, _)), _) => server.addr,
        (None, Some(addr)) => addr,
        (None, None) => unreachable!("no target and no in-process server"),
    };
    println!(
        "# loadgen: {:?} loop, {:?} API, {} clients, window {}, rate {}/s, {} s; target {addr}{}",
        args.mode,
        args.api,
        args.clients,
        args.window,
        args.rate,
        args.duration,
        if embedded.is_some() {
            match args.durability {
                Durability::Sync => " (in-process server, sync durability)",
                Durability::Async => " (in-process server, ASYNC durability)",
            }
        } else {
            ""
        }
    );
    let metrics = embedded.as_ref().and_then(|(server, _)| server.metrics);
    let before = metrics.map(ServerCounts::scrape);
    if let Some(book) = book {
        book.clear();
    }
    let gateway = run(addr, args, runtime, book);
    println!("gateway:  {}", line(&gateway));
    cpu_line(
        "gateway",
        &gateway,
        if embedded.is_some() {
            "server and clients"
        } else {
            "clients only: the server is another process"
        },
    );
    if let (Some(addr), Some(before)) = (metrics, before) {
        println!("{}", ServerCounts::scrape(addr).since(&before));
    }
    drop(embedded);
    if let Some(book) = book {
        let (n, bytes) = book.size();
        println!(
            "# echo answers with {n} of the gateway's replies (OrderReply {} bytes on average)",
            bytes.checked_div(n).unwrap_or(0)
        );
    }
    let base = echo.map(|echo| {
        // Its order ids and sequences start where the gateway's did, as in a fresh
        // server (the same varint sizes).
        ECHO_SEQ.store(0, Ordering::Relaxed);
        let base = run(echo, args, runtime, None);
        println!("baseline: {}", line(&base));
        cpu_line("baseline", &base, "echo server and clients");
        base
    });
    (gateway, base)
}

fn main() {
    let args = Arc::new(Args::parse());
    if let Some(path) = &args.write_tokens {
        tests::write_tokens(path);
        println!("wrote {}", path.display());
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(addr) = args.target
        && args.setup
    {
        runtime.block_on(open_load_market(addr));
    }
    if args.targets && (args.api != Api::Stream || args.durability != Durability::Sync) {
        eprintln!(
            "loadgen: --targets measures the OrderEntry stream with sync durability \
             (the issue's targets): drop --api unary / --durability async"
        );
        std::process::exit(2);
    }
    let windows = match (args.windows.is_empty(), args.targets) {
        (false, _) => args.windows.clone(),
        (true, true) => TARGET_WINDOWS.to_vec(),
        (true, false) => vec![args.window],
    };
    let args = if args.targets {
        Arc::new(Args {
            baseline: true,
            ..(*args).clone()
        })
    } else {
        args
    };
    // The gateway's replies for the echo to answer with (`--echo-replies recorded`).
    let book = (args.baseline && args.echo_replies == EchoReplies::Recorded)
        .then(|| Arc::new(ReplyBook::default()));
    let echo = args.baseline.then(|| start_echo(book.clone()));
    // (window, gateway, echo) for the sweep's table, one per run.
    let mut rows = Vec::new();
    let runs = windows
        .iter()
        .flat_map(|&window| std::iter::repeat_n(window, args.repeat as usize));
    for window in runs {
        let args = Arc::new(Args {
            window,
            ..(*args).clone()
        });
        let (gateway, base) = run_pair(&args, &runtime, book.as_ref(), echo);
        rows.push((window, gateway, base));
    }
    if args.repeat > 1 {
        print_table("  (every run)", &rows);
    }
    let rows = medians(rows);
    if rows.len() > 1 {
        // Each side at its own best window: the peak throughput of each.
        print_table(if args.repeat > 1 { "  (medians)" } else { "" }, &rows);
    }
    let gateways = rows.iter().map(|(window, gateway, _)| (*window, gateway));
    let echoes = rows
        .iter()
        .filter_map(|(window, _, base)| Some((*window, base.as_ref()?)));
    let Some((gw_window, gateway)) = peak(gateways) else {
        return;
    };
    match peak(echoes) {
        Some((echo_window, base)) => {
            if rows.len() > 1 {
                println!("# peaks: gateway at window {gw_window}, echo at window {echo_window}");
            }
            if args.targets {
                let met = check_targets(&args, &runtime, book.as_ref(), echo, gateway, base);
                std::process::exit(if met { 0 } else { 1 });
            }
            println!("{} ratio={}", line(gateway), ratio(gateway, base));
        }
        None => println!("{}", line(gateway)),
    }
}

/// `--targets` after the sweep: the open loop at half of the gateway's peak, `--repeat`
/// times (the echo at the same rate after each, for reference), then both targets judged
/// and the last line. Whether both are met.
fn check_targets(
    args: &Arc<Args>,
    runtime: &tokio::runtime::Runtime,
    book: Option<&Arc<ReplyBook>>,
    echo: Option<SocketAddr>,
    gateway_peak: &Summary,
    echo_peak: &Summary,
) -> bool {
    let open = Arc::new(Args {
        mode: Mode::Open,
        rate: half_rate(gateway_peak),
        ..(**args).clone()
    });
    let (half, echo_half): (Vec<Summary>, Vec<Option<Summary>>) = (0..args.repeat)
        .map(|_| run_pair(&open, runtime, book, echo))
        .unzip();
    let Some(verdict) = Verdict::judge(gateway_peak, echo_peak, &half) else {
        return false;
    };
    println!(
        "# target: streaming throughput >= 0.{TARGET_RATIO_PERCENT} of the echo's (peaks, sync durability): \
         {} / {} = {}: {}",
        gateway_peak.throughput,
        echo_peak.throughput,
        verdict.ratio,
        met(verdict.throughput_met)
    );
    println!(
        "# target: p99 <= {TARGET_P99_US} us at half of the gateway's peak ({}/s, open loop): \
         p99 {} us (median of {}: {}): {}",
        verdict.half_rate,
        verdict.p99,
        half.len(),
        half.iter()
            .map(|s| s.p99.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        met(verdict.latency_met)
    );
    if let Some(p99) = median_p99(echo_half.iter().flatten()) {
        println!("# the echo at the same rate: p99 {p99} us (median; what tonic alone does here)");
    }
    println!(
        "{} ratio={} half_peak_rate={} half_peak_p99_us={} targets_met={}",
        line(gateway_peak),
        verdict.ratio,
        verdict.half_rate,
        verdict.p99,
        u8::from(verdict.met())
    );
    verdict.met()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn place(account: u64, client_order_id: u64) -> pb::order_entry_request::Request {
        pb::order_entry_request::Request::Place(limit(
            account,
            client_order_id,
            pb::Side::Buy,
            8_500,
            5,
        ))
    }

    fn summary(throughput: u64, p99: u64) -> Summary {
        Summary {
            throughput,
            p99,
            ..Summary::default()
        }
    }

    #[test]
    fn the_targets_are_judged_on_the_peaks_and_the_median_p99_at_half_the_peak() {
        let gateway = summary(1_190_000, 5_000);
        let echo = summary(1_820_000, 900);
        let half = [
            summary(595_000, 4_200),
            summary(595_000, 2_500),
            summary(595_000, 1_900),
        ];
        assert_eq!(
            Verdict::judge(&gateway, &echo, &half),
            Some(Verdict {
                ratio: "0.65".into(),
                throughput_met: true,
                half_rate: 595_000,
                p99: 2_500,
                latency_met: false,
            })
        );
        // Exactly half of the echo, exactly 2 ms: both met; one request per second less,
        // one microsecond more: not.
        let at_limit = Verdict::judge(
            &summary(500_000, 0),
            &summary(1_000_000, 0),
            &[summary(250_000, 2_000)],
        );
        assert!(at_limit.is_some_and(|v| v.met()));
        let short = Verdict::judge(
            &summary(499_999, 0),
            &summary(1_000_000, 0),
            &[summary(250_000, 2_001)],
        );
        assert!(short.is_some_and(|v| !v.throughput_met && !v.latency_met && !v.met()));
        // An even count takes the upper of the two middle runs (the stricter one).
        let even = Verdict::judge(&gateway, &echo, &[summary(1, 1_000), summary(1, 3_000)]);
        assert_eq!(even.map(|v| v.p99), Some(3_000));
        // Nothing measured at half the peak: no verdict.
        assert_eq!(Verdict::judge(&gateway, &echo, &[]), None);
    }

    #[test]
    fn send_times_keep_each_request_time_and_kind() {
        let sent = SendTimes::new();
        let at = sent.base + Duration::from_nanos(123_456_789);
        for (correlation, kind) in [(1, Kind::Place), (2, Kind::Cancel), (3, Kind::Amend)] {
            sent.put(correlation, at, kind);
            assert_eq!(sent.get(correlation), Some((at, kind)));
        }
        // A slot taken over by a later request no longer answers for the earlier one.
        sent.put(1 + SEND_TIME_SLOTS as u64, at, Kind::Amend);
        assert_eq!(sent.get(1), None);
    }

    #[test]
    fn the_echo_answers_with_the_recorded_replies_of_the_same_kind() {
        let book = Arc::new(ReplyBook::default());
        let filled = pb::OrderReply {
            sequence: 77,
            order: Some(pb::Order {
                order_id: 9_999,
                account_id: 1,
                client_order_id: 5,
                instrument: "CEA".into(),
                quantity_t: 5,
                filled_t: 5,
                status: pb::OrderStatus::Filled as i32,
                ..pb::Order::default()
            }),
            fills: vec![pb::Fill {
                trade_id: 3,
                price_fen: 8_500,
                quantity_t: 5,
                aggressor: true,
                ..pb::Fill::default()
            }],
            ..pb::OrderReply::default()
        };
        let closed = pb::OrderReply {
            sequence: 78,
            rejection: Some(pb::Rejection {
                reason: "ORDER_CLOSED".into(),
                ..pb::Rejection::default()
            }),
            ..pb::OrderReply::default()
        };
        book.offer(Kind::Place, Outcome::Reply(filled.clone()));
        book.offer(Kind::Cancel, Outcome::Reply(closed.clone()));
        let echo = Echo {
            book: Some(book.clone()),
        };

        assert_eq!(echo.reply(&place(42, 1_001)), filled);

        let cancel = pb::order_entry_request::Request::Cancel(pb::CancelOrderRequest {
            account_id: 42,
            order_id: 17,
        });
        assert_eq!(echo.reply(&cancel), closed);
        // Round the book.
        assert_eq!(echo.reply(&place(42, 1_002)), filled);

        // Nothing recorded for amends: the reply is built from the request.
        let amend = pb::order_entry_request::Request::Amend(pb::AmendOrderRequest {
            account_id: 42,
            order_id: 17,
            price_fen: 8_600,
            quantity_t: 0,
        });
        let reply = echo.reply(&amend);
        assert!(reply.fills.is_empty() && reply.rejection.is_none());
        assert_eq!(
            reply.order.map(|o| (o.order_id, o.price_fen)),
            Some((17, 8_600))
        );

        // A unary refusal is kept as the status the gateway sent, and given back as such.
        let refused = Status::failed_precondition("ORDER_CLOSED: the order is closed");
        book.offer(Kind::Amend, Outcome::Refused(refused.clone()));
        let answer = echo.answer(&amend).err().unwrap_or_else(|| Status::ok(""));
        assert_eq!(
            (answer.code(), answer.message()),
            (refused.code(), refused.message())
        );
        assert_eq!(book.pick(Kind::Amend), Some(Outcome::Refused(refused)));
        // A stream's echo has no status to send for it: it echoes the request.
        assert_eq!(
            echo.reply(&amend).order.map(|o| o.order_id),
            Some(17),
            "stream replies never carry a unary refusal"
        );

        assert_eq!(book.size().0, 3);
        book.clear();
        assert_eq!(book.size(), (0, 0));
        assert!(
            Echo { book: Some(book) }
                .reply(&place(1, 2))
                .fills
                .is_empty()
        );
    }
}
