//! Seeded simulation: random valid and invalid commands go to the engine and to a naive
//! reference book; their event streams must be identical, `check_invariants()` must hold after
//! every command, every order report must satisfy quantity = filled + leaves, and a snapshot
//! restored mid-run must carry on exactly like the original.
//!
//! On failure the seed is printed; rerun one with `CARBONX_SEED=<seed> cargo test -p engine
//! --test differential`. `CARBONX_SIM_STEPS` sets the commands per seed.

mod common;
mod reference;

use common::Rng;
use engine::*;
use reference::Reference;

const ACCOUNTS: [AccountId; 5] = [
    AccountId(11),
    AccountId(12),
    AccountId(13),
    AccountId(14),
    AccountId(15),
];

struct Sim {
    rng: Rng,
    engine: Engine,
    reference: Reference,
    seq: u64,
    date: u32,
    orders: Vec<OrderId>,
    seed: u64,
    log: Vec<Event>,
    max_resting: usize,
}

impl Sim {
    fn new(seed: u64, config: EngineConfig) -> Sim {
        Sim {
            rng: Rng(seed),
            engine: Engine::new(config),
            reference: Reference::new(config),
            seq: 0,
            date: 20250102,
            orders: Vec::new(),
            seed,
            log: Vec::new(),
            max_resting: 0,
        }
    }

    fn step(&mut self, kind: CommandKind) {
        self.seq += 1;
        let command = Command {
            seq: self.seq,
            timestamp_ns: self.seq * 1_000,
            kind,
        };
        let mut out = Vec::new();
        self.engine.apply(&command, &mut out).expect("in sequence");
        let got: Vec<EventKind> = out.iter().map(|e| e.kind).collect();
        self.log.extend_from_slice(&out);
        let want = self.reference.apply(&kind);
        if got != want {
            panic!(
                "seed {} step {}: engine and reference differ on {kind:?}\nengine:    {got:#?}\nreference: {want:#?}",
                self.seed, self.seq
            );
        }
        if let Err(v) = self.engine.check_invariants() {
            panic!(
                "seed {} step {}: invariant broken after {kind:?}: {v}",
                self.seed, self.seq
            );
        }
        for event in &got {
            self.check_report(event);
        }
        self.max_resting = self.max_resting.max(self.engine.live_orders());
    }

    fn check_report(&mut self, event: &EventKind) {
        let seed = self.seed;
        match event {
            EventKind::Accepted(r) | EventKind::Amended { report: r, .. } => {
                assert_eq!(
                    r.quantity_t,
                    r.filled_t + r.leaves_t,
                    "seed {seed}: {event:?}"
                );
                if let EventKind::Accepted(r) = event {
                    self.orders.push(r.order);
                }
            }
            EventKind::Trade(t) => {
                assert!(t.quantity_t > 0, "seed {seed}: zero-quantity trade");
                assert_ne!(t.buy.account, t.sell.account, "seed {seed}: self trade");
            }
            EventKind::Cancelled {
                quantity_t,
                filled_t,
                cancelled_t,
                ..
            } => {
                assert_eq!(
                    *quantity_t,
                    filled_t + cancelled_t,
                    "seed {seed}: {event:?}"
                );
                assert!(*cancelled_t > 0, "seed {seed}: empty cancel");
            }
            _ => {}
        }
    }

    fn setup(&mut self) {
        let listed = InstrumentSpec {
            maker_fee_bp: 2,
            taker_fee_bp: 5,
            max_order_t: 999,
            large_holder_t: 6_000,
            ..InstrumentSpec::listed(Symbol::new("CEA2025").unwrap(), 8_000)
        };
        let plain = InstrumentSpec {
            tick_fen: 5,
            lot_t: 10,
            ..InstrumentSpec::plain(Symbol::new("CEA2024").unwrap(), 6_000)
        };
        self.step(CommandKind::CreateInstrument(listed));
        self.step(CommandKind::CreateInstrument(plain));
        for (n, account) in ACCOUNTS.iter().enumerate() {
            let stp = [
                StpMode::CancelIncoming,
                StpMode::CancelResting,
                StpMode::CancelBoth,
            ][n % 3];
            self.step(CommandKind::OpenAccount {
                account: *account,
                stp,
            });
            self.step(CommandKind::CreditFunds {
                transfer: TransferId(1_000 + n as u64),
                account: *account,
                amount_fen: 50_000_000,
            });
            for instrument in [InstrumentId(0), InstrumentId(1)] {
                let transfer = TransferId(2_000 + n as u64 * 10 + u64::from(instrument.0));
                self.step(CommandKind::DepositAllowances {
                    transfer,
                    account: *account,
                    instrument,
                    quantity_t: 5_000,
                });
            }
        }
        self.step(CommandKind::OpenDay { date: self.date });
        self.step(CommandKind::SetPhase {
            phase: Phase::Continuous,
        });
    }

    /// Deep books: `n` passive GTC orders spread over the band, none crossing.
    fn fill_book(&mut self, n: usize) {
        for i in 0..n {
            let instrument = InstrumentId((i % 2) as u32);
            let (reference, _) = self.engine.reference(instrument).unwrap_or((8_000, None));
            let side = if i % 4 < 2 { Side::Buy } else { Side::Sell };
            let tick = if instrument.0 == 1 { 5 } else { 1 };
            let offset = (50 + self.rng.below(reference as u64 / 12) as i64) / tick * tick;
            let price_fen = if side == Side::Buy {
                reference - offset
            } else {
                reference + offset
            };
            let quantity_t = 10 * (1 + self.rng.below(5));
            self.step(CommandKind::PlaceOrder(NewOrder {
                account: ACCOUNTS[i % ACCOUNTS.len()],
                client_order_id: ClientOrderId(1_000 + i as u64),
                instrument,
                side,
                kind: OrderKind::Limit,
                time_in_force: TimeInForce::Gtc,
                price_fen,
                quantity_t,
                post_only: false,
            }));
        }
    }

    fn account(&mut self) -> AccountId {
        if self.rng.chance(2) {
            AccountId(99)
        } else {
            self.rng.pick(&ACCOUNTS)
        }
    }

    fn instrument(&mut self) -> InstrumentId {
        if self.rng.chance(1) {
            InstrumentId(7)
        } else {
            InstrumentId(self.rng.below(2) as u32)
        }
    }

    fn price(&mut self, instrument: InstrumentId) -> i64 {
        self.price_for(instrument, None)
    }

    /// A price near the reference: mostly passive for `side` (building depth), sometimes
    /// aggressive, sometimes anywhere in or beyond the band.
    fn price_for(&mut self, instrument: InstrumentId, side: Option<Side>) -> i64 {
        let (reference, _) = self.engine.reference(instrument).unwrap_or((8_000, None));
        let offset = self.rng.below(60) as i64;
        let raw = match (side, self.rng.below(10)) {
            (_, 0) => reference - reference / 8 + self.rng.below(reference as u64 / 4 + 1) as i64,
            (Some(Side::Buy), 1..=6) => reference - offset,
            (Some(Side::Sell), 1..=6) => reference + offset,
            (Some(Side::Buy), _) => reference - 10 + offset,
            (Some(Side::Sell), _) => reference + 10 - offset,
            (None, _) => reference - 30 + offset,
        };
        let tick = if instrument.0 == 1 { 5 } else { 1 };
        if self.rng.chance(3) {
            raw
        } else {
            raw / tick * tick
        }
    }

    fn quantity(&mut self) -> u64 {
        match self.rng.below(20) {
            0 => 0,
            1 => 1_000 + self.rng.below(500),
            2..=15 => 10 * (1 + self.rng.below(30)),
            _ => 1 + self.rng.below(300),
        }
    }

    fn order_id(&mut self) -> OrderId {
        if self.orders.is_empty() || self.rng.chance(5) {
            return OrderId(self.rng.below(self.orders.len() as u64 + 3));
        }
        self.orders
            .retain(|id| self.engine.order(*id).is_some() || id.0 % 7 == 0);
        let live: Vec<OrderId> = self
            .orders
            .iter()
            .copied()
            .filter(|id| self.engine.order(*id).is_some())
            .collect();
        if live.is_empty() || self.rng.chance(10) {
            let n = self.orders.len().max(1) as u64;
            return self
                .orders
                .get(self.rng.below(n) as usize)
                .copied()
                .unwrap_or(OrderId(1));
        }
        self.rng.pick(&live)
    }

    fn new_order(&mut self) -> CommandKind {
        let instrument = self.instrument();
        let kind = if self.rng.chance(8) {
            OrderKind::Market
        } else {
            OrderKind::Limit
        };
        let side = if self.rng.chance(50) {
            Side::Buy
        } else {
            Side::Sell
        };
        let time_in_force = self.rng.pick(&[
            TimeInForce::Day,
            TimeInForce::Day,
            TimeInForce::Day,
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
        ]);
        CommandKind::PlaceOrder(NewOrder {
            account: self.account(),
            client_order_id: ClientOrderId(self.rng.below(60)),
            instrument,
            side,
            kind,
            time_in_force,
            price_fen: self.price_for(instrument, Some(side)),
            quantity_t: self.quantity(),
            post_only: self.rng.chance(8),
        })
    }

    fn admin(&mut self) -> CommandKind {
        let account = self.account();
        let instrument = self.instrument();
        match self.rng.below(9) {
            0 => CommandKind::SetStpMode {
                account,
                stp: self.rng.pick(&[
                    StpMode::CancelIncoming,
                    StpMode::CancelResting,
                    StpMode::CancelBoth,
                ]),
            },
            1 => CommandKind::RestrictAccount {
                account,
                restricted: self.rng.chance(10),
                cancel_orders: self.rng.chance(50),
            },
            2 if self.rng.chance(40) => CommandKind::SetInstrumentLimits {
                instrument,
                position_limit_t: match self.rng.below(3) {
                    0 => None,
                    1 => Some(u64::MAX),
                    _ => Some(5_000 + self.rng.below(6_000)),
                },
                large_holder_t: self.rng.chance(50).then(|| 4_000 + self.rng.below(6_000)),
            },
            2 => CommandKind::SetPositionLimit {
                account,
                instrument,
                limit_t: 4_000 + self.rng.below(4_000),
            },
            3 if self.rng.chance(30) => CommandKind::HaltInstrument {
                instrument,
                cancel_orders: self.rng.chance(30),
            },
            3 | 4 => CommandKind::ResumeInstrument { instrument },
            5 => CommandKind::SetReferencePrice {
                instrument,
                price_fen: self.price(instrument),
            },
            6 => CommandKind::SetPhase {
                phase: self.rng.pick(&[
                    Phase::Continuous,
                    Phase::Break,
                    Phase::PostClose,
                    Phase::PreOpen,
                ]),
            },
            7 => CommandKind::CancelAll {
                account,
                instrument: if self.rng.chance(50) {
                    Some(instrument)
                } else {
                    None
                },
            },
            _ => CommandKind::OpenAccount {
                account: AccountId(11 + self.rng.below(8)),
                stp: StpMode::CancelIncoming,
            },
        }
    }

    fn transfer(&mut self) -> CommandKind {
        let transfer = TransferId(5_000 + self.rng.below(400));
        let account = self.account();
        let instrument = self.instrument();
        let amount = self.rng.below(3_000) as i64;
        let quantity_t = self.rng.below(800);
        match self.rng.below(4) {
            0 => CommandKind::CreditFunds {
                transfer,
                account,
                amount_fen: amount * 100,
            },
            1 => CommandKind::DebitFunds {
                transfer,
                account,
                amount_fen: amount * 100,
            },
            2 => CommandKind::DepositAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            },
            _ => CommandKind::WithdrawAllowances {
                transfer,
                account,
                instrument,
                quantity_t,
            },
        }
    }

    fn next_day(&mut self) {
        self.step(CommandKind::CloseDay);
        self.date += 1;
        if self.rng.chance(20) {
            let instrument = self.instrument();
            let price = self.price(instrument);
            self.step(CommandKind::SetReferencePrice {
                instrument,
                price_fen: price,
            });
        }
        self.step(CommandKind::OpenDay { date: self.date });
        self.step(CommandKind::SetPhase {
            phase: Phase::Continuous,
        });
    }

    fn random_command(&mut self) {
        let roll = self.rng.below(1_000);
        let kind = match roll {
            0..=579 => self.new_order(),
            580..=629 => {
                let order = self.order_id();
                let account = match self.engine.order(order) {
                    Some(v) if self.rng.chance(90) => v.account,
                    _ => self.account(),
                };
                CommandKind::CancelOrder { account, order }
            }
            630..=849 => {
                let order = self.order_id();
                let view = self.engine.order(order);
                let account = match view {
                    Some(v) if self.rng.chance(95) => v.account,
                    _ => self.account(),
                };
                let instrument = view.map_or(InstrumentId(0), |v| v.instrument);
                let price_fen = self.rng.chance(60).then(|| self.price(instrument));
                let quantity_t =
                    (price_fen.is_none() || self.rng.chance(40)).then(|| self.quantity());
                CommandKind::AmendOrder {
                    account,
                    order,
                    price_fen,
                    quantity_t,
                }
            }
            850..=929 => self.transfer(),
            930..=989 => self.admin(),
            _ if self.rng.chance(25) => {
                self.next_day();
                return;
            }
            _ => self.new_order(),
        };
        self.step(kind);
        if self.rng.chance(10) {
            let instrument = self.instrument();
            self.step(CommandKind::ResumeInstrument { instrument });
        }
        if self.engine.phase() != Phase::Continuous
            && self.rng.chance(30)
            && self.engine.phase() != Phase::Closed
        {
            self.step(CommandKind::SetPhase {
                phase: Phase::Continuous,
            });
        }
    }

    /// Replaces the engine by one restored from its own snapshot; they must hash the same.
    fn roundtrip_snapshot(&mut self) {
        let hash = self.engine.state_hash();
        // The server's way: the copy on the engine thread, the checksum elsewhere.
        let mut sealed = self.engine.snapshot_unsealed();
        engine::seal_snapshot(&mut sealed);
        assert!(
            sealed == self.engine.snapshot(),
            "seed {}: sealing the unsealed copy gives other bytes",
            self.seed
        );
        let restored = Engine::restore(&sealed)
            .unwrap_or_else(|e| panic!("seed {}: restore failed: {e}", self.seed));
        assert_eq!(
            restored.state_hash(),
            hash,
            "seed {}: restored state differs",
            self.seed
        );
        self.engine = restored;
    }
}

fn steps() -> u64 {
    std::env::var("CARBONX_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000)
}

fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("CARBONX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => default.collect(),
    }
}

fn run(seed: u64, config: EngineConfig) {
    let mut sim = Sim::new(seed, config);
    sim.setup();
    sim.fill_book(240);
    for step in 0..steps() {
        sim.random_command();
        if step % 700 == 699 {
            sim.roundtrip_snapshot();
        }
    }
    let count = |f: fn(&EventKind) -> bool| sim.log.iter().filter(|e| f(&e.kind)).count();
    let trades = count(|e| matches!(e, EventKind::Trade(_)));
    let rejects = count(|e| matches!(e, EventKind::Rejected { .. }));
    let cancels = count(|e| matches!(e, EventKind::Cancelled { .. }));
    let amends = count(|e| matches!(e, EventKind::Amended { .. }));
    let accepted = count(|e| matches!(e, EventKind::Accepted(_)));
    eprintln!(
        "seed {seed}: {accepted} accepted, {trades} trades, {amends} amends, {cancels} cancels, {rejects} rejects, {} resting at most",
        sim.max_resting
    );
    let mut reasons = std::collections::BTreeMap::new();
    for e in &sim.log {
        if let EventKind::Rejected { reason } = e.kind {
            *reasons.entry(reason.code()).or_insert(0) += 1;
        }
    }
    eprintln!("seed {seed}: rejects {reasons:?}");
    assert!(
        trades > 200 && cancels > 100 && amends > 100 && sim.max_resting > 200,
        "seed {seed}: the stream should exercise matching"
    );
}

fn config() -> EngineConfig {
    EngineConfig {
        fee_account: AccountId(1),
        limits: Limits {
            accounts_max: 12,
            instruments_max: 4,
            orders_max: 300,
            orders_per_account_max: 80,
            ..Limits::default()
        },
        ..EngineConfig::default()
    }
}

#[test]
fn engine_matches_the_reference_with_risk_checks() {
    for seed in seeds(1..9) {
        run(seed, config());
    }
}

#[test]
fn engine_matches_the_reference_with_deferred_proceeds() {
    for seed in seeds(100..104) {
        run(
            seed,
            EngineConfig {
                proceeds_same_day: false,
                ..config()
            },
        );
    }
}

#[test]
fn engine_matches_the_reference_as_a_plain_fifo_book() {
    for seed in seeds(200..204) {
        run(
            seed,
            EngineConfig {
                risk_checks: false,
                ..config()
            },
        );
    }
}

#[test]
fn the_same_commands_give_byte_identical_events_and_state() {
    // The second run restores from a snapshot half way and replays the rest from there.
    let record = |seed, restore_at: Option<u64>| {
        let mut sim = Sim::new(seed, config());
        sim.setup();
        for step in 0..2_000 {
            sim.random_command();
            if Some(step) == restore_at {
                sim.roundtrip_snapshot();
            }
        }
        (
            format!("{:?}", sim.log).into_bytes(),
            sim.engine.state_hash(),
            sim.engine.snapshot(),
        )
    };
    for seed in seeds(300..303) {
        let first = record(seed, None);
        assert!(first == record(seed, None), "seed {seed}: two runs differ");
        assert!(
            first == record(seed, Some(1_000)),
            "seed {seed}: restore + replay differs"
        );
    }
}
