//! Criterion micro-benchmarks of the engine: add, cancel, amend, match-sweep, and the mixed
//! workload on the tick ladder against the same workload on a tree of levels.

use std::time::{Duration, Instant};

use benches::workload::{Rng, Workload, passive, setup, setup_instrument};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use engine::{
    AccountId, Command, CommandKind, Engine, Event, EventKind, OrderId, Side, TimeInForce,
};

const RESTING: u64 = 1_000;

struct Bench {
    engine: Engine,
    seq: u64,
    out: Vec<Event>,
    client: u64,
}

impl Bench {
    /// 1,000 accounts and ~1,000 resting orders spread over 50 ticks a side.
    fn new() -> Bench {
        Bench::with_prefill(RESTING)
    }

    fn with_prefill(resting: u64) -> Bench {
        let (engine, seq) = setup(1_000, 1 << 16, 1_000);
        let mut bench = Bench {
            engine,
            seq,
            out: Vec::with_capacity(1_024),
            client: 1 << 32,
        };
        for n in 0..resting {
            let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
            bench.place(
                AccountId(1_000 + n),
                side,
                (n % 50) as i64,
                10,
                TimeInForce::Gtc,
            );
        }
        bench
    }

    fn apply(&mut self, kind: CommandKind) -> &[Event] {
        self.seq += 1;
        self.out.clear();
        self.engine
            .apply(
                &Command {
                    seq: self.seq,
                    timestamp_ns: self.seq,
                    kind,
                },
                &mut self.out,
            )
            .expect("in sequence");
        &self.out
    }

    fn place(
        &mut self,
        account: AccountId,
        side: Side,
        offset: i64,
        quantity: u64,
        tif: TimeInForce,
    ) -> OrderId {
        self.client += 1;
        let order = passive(account, self.client, side, offset, quantity, tif);
        match self
            .apply(CommandKind::PlaceOrder(order))
            .first()
            .map(|e| e.kind)
        {
            Some(EventKind::Accepted(report)) => report.order,
            other => panic!("not accepted: {other:?}"),
        }
    }
}

fn add_and_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("add", |b| {
        let mut bench = Bench::new();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut placed = Vec::with_capacity(1_000);
            for i in 0..iters {
                let account = AccountId(1_000 + i % 1_000);
                let t0 = Instant::now();
                let id = bench.place(account, Side::Buy, (i % 50) as i64, 5, TimeInForce::Gtc);
                total += t0.elapsed();
                placed.push((account, id));
                if placed.len() == 1_000 {
                    for (account, order) in placed.drain(..) {
                        bench.apply(CommandKind::CancelOrder { account, order });
                    }
                }
            }
            for (account, order) in placed.drain(..) {
                bench.apply(CommandKind::CancelOrder { account, order });
            }
            total
        });
    });
    group.bench_function("cancel", |b| {
        let mut bench = Bench::new();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut placed = Vec::with_capacity(1_000);
            let mut left = iters;
            while left > 0 {
                let batch = left.min(1_000);
                for i in 0..batch {
                    let account = AccountId(1_000 + i);
                    placed.push((
                        account,
                        bench.place(account, Side::Sell, (i % 50) as i64, 5, TimeInForce::Gtc),
                    ));
                }
                let t0 = Instant::now();
                for (account, order) in placed.drain(..) {
                    bench.apply(CommandKind::CancelOrder { account, order });
                }
                total += t0.elapsed();
                left -= batch;
            }
            total
        });
    });
    group.finish();
}

fn amend(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("amend_price", |b| {
        let mut bench = Bench::new();
        let account = AccountId(1_000);
        let order = bench.place(account, Side::Buy, 10, 50, TimeInForce::Gtc);
        let mut i = 0i64;
        b.iter(|| {
            i += 1;
            let price = 8_000 - 1 - (i % 40);
            bench
                .apply(CommandKind::AmendOrder {
                    account,
                    order,
                    price_fen: Some(price),
                    quantity_t: None,
                })
                .len()
        });
    });
    group.bench_function("amend_quantity_down", |b| {
        let mut bench = Bench::new();
        let account = AccountId(1_001);
        let mut order = bench.place(account, Side::Sell, 10, 99_999, TimeInForce::Gtc);
        let mut quantity = 99_999u64;
        b.iter(|| {
            if quantity == 1 {
                bench.apply(CommandKind::CancelOrder { account, order });
                order = bench.place(account, Side::Sell, 10, 99_999, TimeInForce::Gtc);
                quantity = 99_999;
            }
            quantity -= 1;
            bench
                .apply(CommandKind::AmendOrder {
                    account,
                    order,
                    price_fen: None,
                    quantity_t: Some(quantity),
                })
                .len()
        });
    });
    group.finish();
}

fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("match_sweep_10_levels", |b| {
        // An empty book each time: ten asks on ten ticks, then one IOC buy takes them all.
        let mut bench = Bench::with_prefill(0);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                for level in 0..10 {
                    bench.place(
                        AccountId(1_100 + level),
                        Side::Sell,
                        level as i64,
                        10,
                        TimeInForce::Gtc,
                    );
                }
                let mut order = passive(
                    AccountId(1_500 + i % 100),
                    0,
                    Side::Buy,
                    0,
                    100,
                    TimeInForce::Ioc,
                );
                order.price_fen = 8_010;
                bench.client += 1;
                order.client_order_id = engine::ClientOrderId(bench.client);
                let t0 = Instant::now();
                let events = bench.apply(CommandKind::PlaceOrder(order)).len();
                total += t0.elapsed();
                assert!(events > 10);
                assert_eq!(bench.engine.best_ask(engine::InstrumentId(0)), None);
            }
            total
        });
    });
    group.finish();
}

fn ladder_vs_tree(c: &mut Criterion) {
    let workload = Workload::record(7, 1_000, 1_000, 200_000);
    let (prefill, measured) = workload.commands.split_at(1_000);
    let mut group = c.benchmark_group("levels");
    group.throughput(Throughput::Elements(measured.len() as u64));
    group.sample_size(10);
    for (name, make) in [
        (
            "ladder_mixed_workload",
            Workload::fresh_engine as fn(&Workload) -> Engine,
        ),
        ("tree_mixed_workload", Workload::fresh_tree_engine),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut out = Vec::with_capacity(1_024);
                for _ in 0..iters {
                    let mut engine = make(&workload);
                    for command in prefill {
                        out.clear();
                        engine.apply(command, &mut out).expect("in sequence");
                    }
                    let t0 = Instant::now();
                    for command in measured {
                        out.clear();
                        engine.apply(command, &mut out).expect("in sequence");
                    }
                    total += t0.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

/// The opening call's uncross with 100,000 orders in the call book: price determination
/// over every level, then execution of every crossing order.
fn uncross(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    group.sample_size(10);
    group.bench_function("uncross_100k_orders", |b| {
        b.iter_batched(
            || {
                let (mut engine, mut seq) = setup_instrument(1_000, 1 << 17, 1_000, Some(1_000), true);
                let mut out = Vec::with_capacity(64);
                let mut rng = Rng(11);
                for n in 0..100_000u64 {
                    let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
                    let mut order = passive(AccountId(1_000 + n % 1_000), n, side, 0, 1 + rng.below(100), TimeInForce::Gtc);
                    // Prices 7,950-8,050 on both sides: a deeply crossed call book.
                    order.price_fen = 7_950 + rng.below(101) as i64;
                    seq += 1;
                    out.clear();
                    engine.apply(&Command { seq, timestamp_ns: seq, kind: CommandKind::PlaceOrder(order) }, &mut out).expect("in sequence");
                }
                (engine, seq + 1)
            },
            |(mut engine, seq)| {
                let mut out = Vec::with_capacity(200_000);
                let kind = CommandKind::SetPhase { phase: engine::Phase::Continuous };
                engine.apply(&Command { seq, timestamp_ns: seq, kind }, &mut out).expect("in sequence");
                assert!(matches!(out[0].kind, EventKind::AuctionUncross { volume_t, .. } if volume_t > 0));
                (engine, out)
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("uncross_price_1601_levels_a_side", |b| {
        let bids: Vec<(i64, u64)> = (0..1_601)
            .map(|i| (8_800 - i, 10 + (i as u64 % 7)))
            .collect();
        let asks: Vec<(i64, u64)> = (0..1_601)
            .map(|i| (7_200 + i, 10 + (i as u64 % 5)))
            .collect();
        let mut candidates = Vec::with_capacity(4_096);
        b.iter(|| engine::uncross_price(&bids, &asks, 8_000, &mut candidates));
    });
    group.finish();
}

criterion_group!(
    benches,
    add_and_cancel,
    amend,
    sweep,
    ladder_vs_tree,
    uncross
);
criterion_main!(benches);
