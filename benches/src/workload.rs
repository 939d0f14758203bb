//! The engine workload of the throughput harness and the criterion benches.
//!
//! The command stream is recorded by driving a *generator* engine (so amends and cancels
//! always name orders that are live at that point), then replayed on a fresh engine with the
//! same setup. Determinism guarantees the replay sees exactly the same book.

use engine::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event, EventKind,
    InstrumentId, InstrumentSpec, Limits, NewOrder, OrderId, OrderKind, Phase, Side, StpMode,
    Symbol, TimeInForce, TransferId,
};

pub const REFERENCE_FEN: i64 = 8_000;
pub const INSTRUMENT: InstrumentId = InstrumentId(0);

/// The seeded SplitMix64 every test and benchmark uses.
pub use tests::Rng;

/// An engine with one listed instrument and `accounts` funded accounts (ids 1000..), the
/// trading day open and continuous. Returns the engine and the next sequence number.
pub fn setup(accounts: u32, orders_max: u32, orders_per_account_max: u32) -> (Engine, u64) {
    setup_with_band(accounts, orders_max, orders_per_account_max, Some(1_000))
}

/// [`setup`] with the instrument's band: `Some(bp)` books use the tick ladder, `None` books
/// use the tree of levels.
pub fn setup_with_band(
    accounts: u32,
    orders_max: u32,
    orders_per_account_max: u32,
    band_bp: Option<u32>,
) -> (Engine, u64) {
    setup_instrument(accounts, orders_max, orders_per_account_max, band_bp, false)
}

/// [`setup_with_band`], optionally with the opening call auction: then the day is left in
/// the `OpeningCall` phase instead of continuous trading.
pub fn setup_instrument(
    accounts: u32,
    orders_max: u32,
    orders_per_account_max: u32,
    band_bp: Option<u32>,
    opening_call: bool,
) -> (Engine, u64) {
    let (engine, commands) = setup_recorded(
        accounts,
        orders_max,
        orders_per_account_max,
        band_bp,
        opening_call,
    );
    (engine, commands.len() as u64)
}

/// [`setup_instrument`], also returning the commands it applied (sequences from 1), for
/// journals that start from an empty engine.
pub fn setup_recorded(
    accounts: u32,
    orders_max: u32,
    orders_per_account_max: u32,
    band_bp: Option<u32>,
    opening_call: bool,
) -> (Engine, Vec<Command>) {
    let config = EngineConfig {
        fee_account: AccountId(1),
        limits: Limits {
            accounts_max: accounts + 1,
            instruments_max: 4,
            orders_max,
            orders_per_account_max,
            ..Limits::default()
        },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config);
    let mut seq = 0;
    let mut out = Vec::new();
    let mut recorded = Vec::new();
    let mut apply = |engine: &mut Engine, kind: CommandKind| {
        seq += 1;
        out.clear();
        let command = Command {
            seq,
            timestamp_ns: seq,
            kind,
        };
        recorded.push(command);
        engine.apply(&command, &mut out).expect("in sequence");
        assert!(
            !matches!(
                out.first(),
                Some(Event {
                    kind: EventKind::Rejected { .. },
                    ..
                })
            ),
            "setup rejected {kind:?}"
        );
    };
    let spec = InstrumentSpec {
        band_bp,
        opening_call,
        maker_fee_bp: 1,
        taker_fee_bp: 2,
        ..InstrumentSpec::listed(Symbol::new("CEA2025").expect("symbol"), REFERENCE_FEN)
    };
    apply(&mut engine, CommandKind::CreateInstrument(spec));
    for n in 0..u64::from(accounts) {
        let account = AccountId(1_000 + n);
        apply(
            &mut engine,
            CommandKind::OpenAccount {
                account,
                stp: StpMode::CancelIncoming,
            },
        );
        apply(
            &mut engine,
            CommandKind::CreditFunds {
                transfer: TransferId(2 * n + 1),
                account,
                amount_fen: 1 << 50,
            },
        );
        apply(
            &mut engine,
            CommandKind::DepositAllowances {
                transfer: TransferId(2 * n + 2),
                account,
                instrument: INSTRUMENT,
                quantity_t: 1 << 40,
            },
        );
    }
    apply(&mut engine, CommandKind::OpenDay { date: 20250102 });
    apply(
        &mut engine,
        CommandKind::SetPhase {
            phase: if opening_call {
                Phase::OpeningCall
            } else {
                Phase::Continuous
            },
        },
    );
    (engine, recorded)
}

/// A passive limit order `offset` ticks away from the reference on `side`.
pub fn passive(
    account: AccountId,
    client: u64,
    side: Side,
    offset: i64,
    quantity_t: u64,
    tif: TimeInForce,
) -> NewOrder {
    let price_fen = match side {
        Side::Buy => REFERENCE_FEN - 1 - offset,
        Side::Sell => REFERENCE_FEN + 1 + offset,
    };
    NewOrder {
        account,
        client_order_id: ClientOrderId(client),
        instrument: INSTRUMENT,
        side,
        kind: OrderKind::Limit,
        time_in_force: tif,
        price_fen,
        quantity_t,
        post_only: false,
    }
}

/// The mixed workload: about 10% new GTC, 5% IOC, 10% cancel, 75% amend, around `resting`
/// resting orders over `accounts` accounts.
#[derive(Debug)]
pub struct Workload {
    pub setup_seq: u64,
    pub commands: Vec<Command>,
    pub accounts: u32,
    pub orders_max: u32,
}

impl Workload {
    pub fn fresh_engine(&self) -> Engine {
        setup(self.accounts, self.orders_max, 1_000).0
    }

    /// A fresh engine whose book uses the tree of levels instead of the tick ladder.
    pub fn fresh_tree_engine(&self) -> Engine {
        setup_with_band(self.accounts, self.orders_max, 1_000, None).0
    }

    /// Records `count` commands after a prefill of `resting` orders.
    pub fn record(seed: u64, accounts: u32, resting: usize, count: usize) -> Workload {
        Workload::record_with(seed, accounts, resting, count, 1 << 16)
    }

    /// `record`, on engines whose order capacity (and so index tables) is `orders_max`.
    pub fn record_with(
        seed: u64,
        accounts: u32,
        resting: usize,
        count: usize,
        orders_max: u32,
    ) -> Workload {
        let (mut generator, setup_seq) = setup(accounts, orders_max, 1_000);
        let mut recorder = Recorder {
            rng: Rng(seed),
            seq: setup_seq,
            live: Vec::new(),
            position: Default::default(),
            commands: Vec::with_capacity(count + resting),
            out: Vec::with_capacity(1024),
            next_client: 1,
            accounts,
        };
        for _ in 0..resting {
            let order = recorder.new_passive(TimeInForce::Gtc);
            recorder.apply(&mut generator, CommandKind::PlaceOrder(order));
        }
        while recorder.commands.len() < resting + count {
            let kind = recorder.next_command(&generator, resting);
            recorder.apply(&mut generator, kind);
        }
        Workload {
            setup_seq,
            commands: recorder.commands,
            accounts,
            orders_max,
        }
    }
}

struct Recorder {
    rng: Rng,
    seq: u64,
    live: Vec<(OrderId, AccountId)>,
    position: std::collections::HashMap<OrderId, usize>,
    commands: Vec<Command>,
    out: Vec<Event>,
    next_client: u64,
    accounts: u32,
}

impl Recorder {
    fn account(&mut self) -> AccountId {
        AccountId(1_000 + self.rng.below(u64::from(self.accounts)))
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn new_passive(&mut self, tif: TimeInForce) -> NewOrder {
        let account = self.account();
        let side = self.side();
        let offset = self.rng.below(50) as i64;
        let quantity = 1 + self.rng.below(100);
        self.next_client += 1;
        passive(account, self.next_client, side, offset, quantity, tif)
    }

    fn next_command(&mut self, engine: &Engine, resting: usize) -> CommandKind {
        let roll = self.rng.below(100);
        let low = self.live.len() < resting * 9 / 10;
        let high = self.live.len() > resting * 11 / 10;
        // Keep the book near `resting`: below 90% a cancel becomes a new order, above 110%
        // a new order becomes a cancel.
        let new_order = (roll < 10 && !high) || (low && (15..25).contains(&roll));
        if self.live.is_empty() || new_order {
            return CommandKind::PlaceOrder(self.new_passive(TimeInForce::Gtc));
        }
        if (10..15).contains(&roll) {
            // IOC that crosses a little: trades against the top of the book.
            let mut order = self.new_passive(TimeInForce::Ioc);
            order.quantity_t = 1 + self.rng.below(20);
            let through = self.rng.below(4) as i64 + 1;
            order.price_fen = match order.side {
                Side::Buy => engine.best_ask(INSTRUMENT).unwrap_or(REFERENCE_FEN) + through,
                Side::Sell => engine.best_bid(INSTRUMENT).unwrap_or(REFERENCE_FEN) - through,
            };
            return CommandKind::PlaceOrder(order);
        }
        let pick = self.rng.below(self.live.len() as u64) as usize;
        let (order, account) = self.live[pick];
        if roll < 25 {
            // A cancel (or, when the book is too full, a new order turned into a cancel).
            return CommandKind::CancelOrder { account, order };
        }
        let view = engine.order(order).expect("live");
        if self.rng.below(2) == 0 && view.quantity_t > view.filled_t + 1 {
            // Quantity down: keeps priority.
            let quantity = view.filled_t + 1 + self.rng.below(view.quantity_t - view.filled_t - 1);
            return CommandKind::AmendOrder {
                account,
                order,
                price_fen: None,
                quantity_t: Some(quantity),
            };
        }
        // Price change, staying passive: loses priority.
        let offset = self.rng.below(50) as i64;
        let price = match view.side {
            Side::Buy => REFERENCE_FEN - 1 - offset,
            Side::Sell => REFERENCE_FEN + 1 + offset,
        };
        let price = if price == view.price_fen {
            price + if view.side == Side::Buy { -1 } else { 1 }
        } else {
            price
        };
        CommandKind::AmendOrder {
            account,
            order,
            price_fen: Some(price),
            quantity_t: None,
        }
    }

    fn apply(&mut self, engine: &mut Engine, kind: CommandKind) {
        self.seq += 1;
        let command = Command {
            seq: self.seq,
            timestamp_ns: self.seq,
            kind,
        };
        self.out.clear();
        engine.apply(&command, &mut self.out).expect("in sequence");
        self.commands.push(command);
        for index in 0..self.out.len() {
            match self.out[index].kind {
                EventKind::Accepted(report) if report.time_in_force == TimeInForce::Gtc => {
                    self.position.insert(report.order, self.live.len());
                    self.live.push((report.order, report.account));
                }
                EventKind::Cancelled { order, .. } => self.forget(order),
                EventKind::Trade(trade) => {
                    if trade.buy.leaves_t == 0 {
                        self.forget(trade.buy.order);
                    }
                    if trade.sell.leaves_t == 0 {
                        self.forget(trade.sell.order);
                    }
                }
                EventKind::Rejected { reason } => {
                    panic!("workload command rejected: {} ({kind:?})", reason.code())
                }
                _ => {}
            }
        }
    }

    fn forget(&mut self, order: OrderId) {
        let Some(index) = self.position.remove(&order) else {
            return;
        };
        self.live.swap_remove(index);
        if let Some(moved) = self.live.get(index) {
            self.position.insert(moved.0, index);
        }
    }
}
