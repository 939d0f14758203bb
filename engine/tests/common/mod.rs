//! Test harness: sequences commands, checks invariants after every one, returns the events.

#![allow(dead_code)]

use engine::*;

pub const A: AccountId = AccountId(101);
pub const B: AccountId = AccountId(102);
pub const C: AccountId = AccountId(103);
pub const FEES: AccountId = AccountId(1);
pub const CEA: InstrumentId = InstrumentId(0);

/// SplitMix64: tiny, seedable, good enough for test streams.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

pub struct Harness {
    pub engine: Engine,
    pub seq: u64,
    pub ts: u64,
    next_client_id: u64,
    next_transfer: u64,
}

impl Harness {
    pub fn new(config: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(config),
            seq: 0,
            ts: 1_700_000_000_000_000_000,
            next_client_id: 1,
            next_transfer: 1,
        }
    }

    pub fn config() -> EngineConfig {
        EngineConfig {
            fee_account: FEES,
            limits: Limits {
                accounts_max: 64,
                instruments_max: 8,
                orders_max: 256,
                orders_per_account_max: 64,
                ..Limits::default()
            },
            ..EngineConfig::default()
        }
    }

    /// One listed instrument CEA2025 at RMB 80.00 (band 72.00-88.00), accounts A, B, C with
    /// RMB 1,000,000.00 and 10,000 t each, trading day open and continuous.
    pub fn market() -> Harness {
        Harness::market_with(InstrumentSpec::listed(
            Symbol::new("CEA2025").unwrap(),
            8_000,
        ))
    }

    pub fn market_with(spec: InstrumentSpec) -> Harness {
        let mut h = Harness::new(Harness::config());
        h.ok(CommandKind::CreateInstrument(spec));
        for account in [A, B, C] {
            h.ok(CommandKind::OpenAccount {
                account,
                stp: StpMode::CancelIncoming,
            });
            h.credit(account, 100_000_000);
            h.deposit(account, 10_000);
        }
        h.ok(CommandKind::OpenDay { date: 20250102 });
        h.ok(CommandKind::SetPhase {
            phase: Phase::Continuous,
        });
        h
    }

    /// Applies a command and returns its events (seq stripped), checking invariants.
    pub fn run(&mut self, kind: CommandKind) -> Vec<EventKind> {
        self.seq += 1;
        self.ts += 1_000;
        let mut out = Vec::new();
        self.engine
            .apply(
                &Command {
                    seq: self.seq,
                    timestamp_ns: self.ts,
                    kind,
                },
                &mut out,
            )
            .unwrap();
        assert!(
            out.iter().all(|e| e.seq == self.seq),
            "every event carries the command's sequence"
        );
        if let Err(violation) = self.engine.check_invariants() {
            panic!("invariant broken after {kind:?}: {violation}");
        }
        out.into_iter().map(|e| e.kind).collect()
    }

    /// Applies a command that must succeed.
    pub fn ok(&mut self, kind: CommandKind) -> Vec<EventKind> {
        let events = self.run(kind);
        if let Some(EventKind::Rejected { reason }) = events.first() {
            panic!("{kind:?} rejected: {}", reason.code());
        }
        events
    }

    /// Applies a command that must be rejected with `reason`, and checks it changed nothing.
    pub fn rejects(&mut self, kind: CommandKind, reason: Reject) {
        let before = self.engine.state_hash_without_seq();
        let events = self.run(kind);
        assert_eq!(events, vec![EventKind::Rejected { reason }], "{kind:?}");
        assert_eq!(
            self.engine.state_hash_without_seq(),
            before,
            "a rejected command changed state"
        );
    }

    /// A limit DAY order that must be rejected with `reason`.
    pub fn rejects_order(
        &mut self,
        account: AccountId,
        side: Side,
        price_fen: i64,
        quantity_t: u64,
        reason: Reject,
    ) {
        let order = self.order(account, side, price_fen, quantity_t);
        self.rejects(CommandKind::PlaceOrder(order), reason);
    }

    pub fn credit(&mut self, account: AccountId, amount_fen: i64) {
        let transfer = TransferId(self.next_transfer);
        self.next_transfer += 1;
        self.ok(CommandKind::CreditFunds {
            transfer,
            account,
            amount_fen,
        });
    }

    pub fn deposit(&mut self, account: AccountId, quantity_t: u64) {
        let transfer = TransferId(self.next_transfer);
        self.next_transfer += 1;
        self.ok(CommandKind::DepositAllowances {
            transfer,
            account,
            instrument: CEA,
            quantity_t,
        });
    }

    pub fn order(
        &mut self,
        account: AccountId,
        side: Side,
        price_fen: i64,
        quantity_t: u64,
    ) -> NewOrder {
        let client_order_id = ClientOrderId(self.next_client_id);
        self.next_client_id += 1;
        NewOrder {
            account,
            client_order_id,
            instrument: CEA,
            side,
            kind: OrderKind::Limit,
            time_in_force: TimeInForce::Day,
            price_fen,
            quantity_t,
            post_only: false,
        }
    }

    /// Places a limit DAY order and returns its id and events.
    pub fn place(
        &mut self,
        account: AccountId,
        side: Side,
        price_fen: i64,
        quantity_t: u64,
    ) -> (OrderId, Vec<EventKind>) {
        let order = self.order(account, side, price_fen, quantity_t);
        self.place_order(order)
    }

    pub fn place_order(&mut self, order: NewOrder) -> (OrderId, Vec<EventKind>) {
        let events = self.ok(CommandKind::PlaceOrder(order));
        let id = match events.first() {
            Some(EventKind::Accepted(report)) => report.order,
            other => panic!("expected Accepted, got {other:?}"),
        };
        (id, events)
    }

    pub fn funds(&self, account: AccountId) -> (i64, i64, i64) {
        let v = self.engine.account_view(account).unwrap();
        (v.free_fen, v.locked_fen, v.pending_fen)
    }

    pub fn position(&self, account: AccountId) -> (u64, u64, u64) {
        let v = self.engine.account_view(account).unwrap();
        let p = v.positions[CEA.0 as usize];
        (p.free_t, p.locked_t, p.pending_t)
    }
}

/// Only the events of one shape, for focused assertions.
pub fn trades(events: &[EventKind]) -> Vec<TradeReport> {
    events
        .iter()
        .filter_map(|e| {
            if let EventKind::Trade(t) = e {
                Some(*t)
            } else {
                None
            }
        })
        .collect()
}

pub fn cancels(events: &[EventKind]) -> Vec<(OrderId, u64, CancelReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::Cancelled {
                order,
                cancelled_t,
                reason,
                ..
            } => Some((*order, *cancelled_t, *reason)),
            _ => None,
        })
        .collect()
}

pub fn levels(events: &[EventKind]) -> Vec<(Side, i64, u64, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::Level {
                side,
                price_fen,
                quantity_t,
                orders,
                ..
            } => Some((*side, *price_fen, *quantity_t, *orders)),
            _ => None,
        })
        .collect()
}
