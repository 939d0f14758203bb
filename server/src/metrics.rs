//! Counters, gauges and latency histograms, rendered in the Prometheus text format. All
//! lock-free on the hot path except the per-reason and per-method maps (small, rare keys).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

/// Bucket upper bounds in microseconds.
const BUCKETS_US: [u64; 14] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Microseconds as decimal seconds, without floating point.
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The bucket bound at or below which `q` (per mille) of the observations fall.
    pub fn quantile_us(&self, per_mille: u64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let want = (total * per_mille).div_ceil(1_000);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= want {
                return BUCKETS_US[i];
            }
        }
        u64::MAX
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = seconds(BUCKETS_US[i]);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = seconds(self.sum_us.load(Ordering::Relaxed));
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub commands: AtomicU64,
    pub orders: AtomicU64,
    pub trades: AtomicU64,
    pub traded_t: AtomicU64,
    pub rejects: Mutex<BTreeMap<&'static str, u64>>,
    pub journal_batches: AtomicU64,
    pub journal_fsync: Histogram,
    pub requests: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
    pub sequencer_queue: AtomicI64,
    pub registry_queue: AtomicI64,
    pub streams_open: AtomicI64,
    pub slow_consumers_dropped: AtomicU64,
    pub overloaded: AtomicU64,
    pub settled_seq: AtomicU64,
    /// The engine sequence through which the journal is fsync'd (with async durability it
    /// trails the last command by up to `async_flush_ms`).
    pub journal_durable_seq: AtomicU64,
    pub settlement_failures: AtomicU64,
    pub registry_groups: AtomicU64,
    /// The disk holding the data is full or below its reserve: changes are refused.
    pub disk_full: std::sync::atomic::AtomicBool,
    /// The registry refused a settlement: changes are refused (see `regworker`).
    pub halted: std::sync::atomic::AtomicBool,
    /// Registry write batches the store refused and holds in memory (a full disk).
    pub registry_unwritten: AtomicU64,
}

impl Metrics {
    pub fn reject(&self, reason: &'static str) {
        *self.rejects.lock().entry(reason).or_insert(0) += 1;
    }

    pub fn request(&self, method: &'static str) -> std::sync::Arc<Histogram> {
        self.requests.lock().entry(method).or_default().clone()
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8_192);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let loadi = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0);
        counter(
            &mut out,
            "carbonx_commands_total",
            "Commands sequenced and applied.",
            load(&self.commands),
        );
        counter(
            &mut out,
            "carbonx_orders_total",
            "Orders accepted by the engine.",
            load(&self.orders),
        );
        counter(
            &mut out,
            "carbonx_trades_total",
            "Trades.",
            load(&self.trades),
        );
        counter(
            &mut out,
            "carbonx_traded_tonnes_total",
            "Tonnes traded.",
            load(&self.traded_t),
        );
        let _ = writeln!(
            out,
            "# HELP carbonx_rejects_total Rejections by reason code.\n# TYPE carbonx_rejects_total counter"
        );
        for (reason, n) in self.rejects.lock().iter() {
            let _ = writeln!(out, "carbonx_rejects_total{{reason=\"{reason}\"}} {n}");
        }
        counter(
            &mut out,
            "carbonx_journal_batches_total",
            "Journal batches written (one fsync each in sync mode).",
            load(&self.journal_batches),
        );
        let _ = writeln!(
            out,
            "# HELP carbonx_journal_fsync_seconds Journal batch write+fsync latency.\n# TYPE carbonx_journal_fsync_seconds histogram"
        );
        self.journal_fsync
            .render(&mut out, "carbonx_journal_fsync_seconds", "");
        let _ = writeln!(
            out,
            "# HELP carbonx_request_seconds Request latency by method.\n# TYPE carbonx_request_seconds histogram"
        );
        for (method, h) in self.requests.lock().iter() {
            h.render(
                &mut out,
                "carbonx_request_seconds",
                &format!("method=\"{method}\""),
            );
        }
        gauge(
            &mut out,
            "carbonx_queue_depth_sequencer",
            "Commands waiting for the sequencer.",
            loadi(&self.sequencer_queue),
        );
        gauge(
            &mut out,
            "carbonx_queue_depth_registry",
            "Jobs waiting for the registry writer.",
            loadi(&self.registry_queue),
        );
        gauge(
            &mut out,
            "carbonx_streams_open",
            "Open streams.",
            loadi(&self.streams_open),
        );
        counter(
            &mut out,
            "carbonx_slow_consumers_dropped_total",
            "Streams dropped for not keeping up.",
            load(&self.slow_consumers_dropped),
        );
        counter(
            &mut out,
            "carbonx_overloaded_total",
            "Requests refused with RESOURCE_EXHAUSTED because a queue was full.",
            load(&self.overloaded),
        );
        gauge(
            &mut out,
            "carbonx_settled_sequence",
            "Journal sequence of the last settlement point applied in the registry.",
            load(&self.settled_seq) as i64,
        );
        gauge(
            &mut out,
            "carbonx_journal_durable_sequence",
            "Last journal sequence fsync'd (settlement never passes it).",
            load(&self.journal_durable_seq) as i64,
        );
        counter(
            &mut out,
            "carbonx_settlement_failures_total",
            "Settlement batches the registry refused.",
            load(&self.settlement_failures),
        );
        counter(
            &mut out,
            "carbonx_registry_groups_total",
            "Registry group commits.",
            load(&self.registry_groups),
        );
        gauge(
            &mut out,
            "carbonx_disk_full",
            "1 while the data directory's disk is below its reserve (changes refused).",
            i64::from(self.disk_full.load(Ordering::Relaxed)),
        );
        gauge(
            &mut out,
            "carbonx_registry_unwritten_batches",
            "Registry write batches held in memory because the store refused them.",
            load(&self.registry_unwritten) as i64,
        );
        out
    }
}
