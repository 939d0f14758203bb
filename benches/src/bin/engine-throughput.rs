//! Engine throughput harness: a recorded mixed workload (about 10% new GTC, 5% IOC,
//! 10% cancel, 75% amend; 1 instrument, 1,000 accounts, ~1,000 resting orders) replayed on one
//! thread. Prints commands/s (untimed-per-command pass), latency percentiles from an HDR
//! histogram (second pass, each command timed), allocations per command in steady state
//! (counting allocator), and bytes per resting order at 1 M resting orders. Ends with
//! `commands_per_s=N p50_ns=N p99_ns=N p999_ns=N allocs_per_command=N`.
//!
//! `cargo run --release -p benches --bin engine-throughput -- [--commands N] [--seed N]`

use std::time::Instant;

use benches::alloc_counter::CountingAllocator;
use benches::workload::{Workload, passive, setup};
use engine::{AccountId, Command, CommandKind, Engine, Event, Side, TimeInForce};
use hdrhistogram::Histogram;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

struct Args {
    commands: usize,
    resting: usize,
    accounts: u32,
    seed: u64,
    memory_orders: u64,
    /// Order capacity of the engines (index tables are twice this many buckets).
    orders_max: u32,
}

fn parse_args() -> Args {
    let mut args = Args {
        commands: 3_000_000,
        resting: 1_000,
        accounts: 1_000,
        seed: 42,
        memory_orders: 1_000_000,
        orders_max: 1 << 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        let Some(value) = value else {
            eprintln!(
                "usage: engine-throughput [--commands N] [--resting N] [--accounts N] [--seed N] [--memory-orders N] [--orders-max N]"
            );
            std::process::exit(2);
        };
        match flag.as_str() {
            "--commands" => args.commands = value as usize,
            "--resting" => args.resting = value as usize,
            "--accounts" => args.accounts = value as u32,
            "--seed" => args.seed = value,
            "--memory-orders" => args.memory_orders = value,
            "--orders-max" => args.orders_max = value.clamp(1_024, 1 << 24) as u32,
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    args
}

fn run(engine: &mut Engine, commands: &[Command], out: &mut Vec<Event>) {
    for command in commands {
        out.clear();
        engine.apply(command, out).expect("in sequence");
        std::hint::black_box(&out);
    }
}

/// `numerator / denominator` with six decimals, in integers.
fn ratio(numerator: u64, denominator: u64) -> String {
    if numerator == 0 {
        return "0".to_string();
    }
    let micro = u128::from(numerator) * 1_000_000 / u128::from(denominator.max(1));
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

/// Bytes held per resting order with `count` orders resting on one instrument.
fn bytes_per_resting_order(count: u64) -> u64 {
    let before = ALLOCATOR.live_bytes();
    let accounts = 1_000u32;
    let per_account = u32::try_from(count / u64::from(accounts) + 1).unwrap_or(u32::MAX);
    let orders_max = u32::try_from(count).unwrap_or(u32::MAX).next_power_of_two();
    let (mut engine, mut seq) = setup(accounts, orders_max, per_account);
    let mut out = Vec::with_capacity(64);
    for n in 0..count {
        let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
        let order = passive(
            AccountId(1_000 + n % u64::from(accounts)),
            n,
            side,
            (n % 790) as i64,
            1,
            TimeInForce::Gtc,
        );
        seq += 1;
        out.clear();
        engine
            .apply(
                &Command {
                    seq,
                    timestamp_ns: seq,
                    kind: CommandKind::PlaceOrder(order),
                },
                &mut out,
            )
            .expect("in sequence");
    }
    assert_eq!(engine.live_orders() as u64, count, "every order rests");
    let bytes = (ALLOCATOR.live_bytes() - before) as u64;
    println!(
        "memory: {count} resting orders, {} MiB held by the engine ({} MiB arena + indexes, arena capacity {orders_max})",
        bytes >> 20,
        engine.order_memory_bytes() >> 20
    );
    bytes / count
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let workload = Workload::record_with(
        args.seed,
        args.accounts,
        args.resting,
        args.commands,
        args.orders_max,
    );
    let (prefill, measured) = workload.commands.split_at(args.resting);
    let (warmup, timed) = measured.split_at(measured.len() / 10);
    println!(
        "workload: {} accounts, {} prefill orders, {} warm-up + {} measured commands (recorded in {} ms)",
        args.accounts,
        prefill.len(),
        warmup.len(),
        timed.len(),
        started.elapsed().as_millis()
    );

    let mut mix = [0u64; 4];
    for command in measured {
        let slot = match command.kind {
            CommandKind::PlaceOrder(o) if o.time_in_force == TimeInForce::Gtc => 0,
            CommandKind::PlaceOrder(_) => 1,
            CommandKind::CancelOrder { .. } => 2,
            _ => 3,
        };
        mix[slot] += 1;
    }
    let pct = |n: u64| n * 100 / measured.len().max(1) as u64;
    println!(
        "mix: {}% new GTC, {}% IOC, {}% cancel, {}% amend",
        pct(mix[0]),
        pct(mix[1]),
        pct(mix[2]),
        pct(mix[3])
    );

    // Pass 1: throughput and allocations, no per-command timing.
    let mut out = Vec::with_capacity(4_096);
    let mut engine = workload.fresh_engine();
    run(&mut engine, prefill, &mut out);
    run(&mut engine, warmup, &mut out);
    let allocations_before = ALLOCATOR.allocations();
    let start = Instant::now();
    run(&mut engine, timed, &mut out);
    let elapsed_ns = start.elapsed().as_nanos().max(1);
    let allocations = ALLOCATOR.allocations() - allocations_before;
    let commands_per_s = timed.len() as u128 * 1_000_000_000 / elapsed_ns;
    println!("resting orders at the end: {}", engine.live_orders());

    // Pass 2: the same commands on a fresh engine, each one timed.
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram bounds");
    let mut engine = workload.fresh_engine();
    run(&mut engine, prefill, &mut out);
    run(&mut engine, warmup, &mut out);
    for command in timed {
        out.clear();
        let t0 = Instant::now();
        engine.apply(command, &mut out).expect("in sequence");
        let ns = t0.elapsed().as_nanos() as u64;
        std::hint::black_box(&out);
        histogram.saturating_record(ns.max(1));
    }
    let (p50, p99, p999, max) = (
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    );
    println!("latency per command (ns): p50 {p50}  p99 {p99}  p99.9 {p999}  max {max}");

    if args.memory_orders > 0 {
        let bytes = bytes_per_resting_order(args.memory_orders);
        println!(
            "bytes_per_resting_order={bytes} (at {} resting orders)",
            args.memory_orders
        );
    }
    println!(
        "commands_per_s={commands_per_s} p50_ns={p50} p99_ns={p99} p999_ns={p999} allocs_per_command={}",
        ratio(allocations, timed.len() as u64)
    );
}
