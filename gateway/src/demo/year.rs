//! The compliance year, one method per phase: the registry set up, allocation, funds and
//! deposits with pledges, the trading days (`trading.rs`), the settlement day, the
//! pledges' end, surrender and the year close; then the report (`report.rs`).

use std::collections::BTreeMap;

use client::Clients;
use proto::v1 as pb;
use tonic::transport::Channel;

use super::market::Entity;
use super::{
    AUTHORITY, BANK, CANCELLATION, DemoOptions, FIRST_MEMBER, INSTRUMENT, PLAN_2024, Progress,
    REFERENCE_FEN, RETIREMENT, Rng, concurrently, fail, token,
};

/// Clients of the principals the demo acts as.
pub(super) struct Who {
    pub ministry: Clients,
    pub verifier: Clients,
    pub operator: Clients,
    pub bank: Clients,
    pub auditor: Clients,
    pub channel: Channel,
    pub seed: u64,
}

impl Who {
    /// The clients of the member or entity that owns `account`.
    pub fn of(&self, account: u64) -> Clients {
        Clients::new(self.channel.clone(), Some(&token(self.seed, account)))
    }
}

/// The year as it is played: what every phase found and left for the next.
pub(super) struct Year<'a> {
    pub who: Who,
    pub options: &'a DemoOptions,
    pub entities: &'a [Entity],
    pub members: &'a [u64],
    pub progress: &'a Progress,
    pub rng: Rng,
    pub facilities: usize,
    pub pre: pb::RunAllocationReply,
    pub trued: pb::RunAllocationReply,
    pub paid_t: u64,
    /// Per entity: registry-available CEA2024 and what it owes (verified emissions).
    pub standing: BTreeMap<u64, (u64, u64)>,
    /// (pledge, pledgor, quantity).
    pub pledges: Vec<(u64, u64, u64)>,
    pub sell: BTreeMap<u64, u64>,
    pub buy: BTreeMap<u64, u64>,
    pub market: super::trading::Market,
    pub released: usize,
    pub enforced: Option<(u64, u64)>,
    pub surrendered_t: u64,
    pub clock: super::calendar::DemoClock,
    pub verification: super::verification::Outcome,
    /// The file whose entity will object to its estimate after the true-up.
    pub objector: Option<super::verification::File>,
}

/// Plays the year against the server at `addr`; returns the report.
pub(super) async fn play(
    addr: std::net::SocketAddr,
    options: &DemoOptions,
    entities: &[Entity],
    members: &[u64],
    progress: &Progress,
    clock: super::calendar::DemoClock,
) -> Result<String, String> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let seed = options.seed;
    let as_ = |n| Clients::new(channel.clone(), Some(&token(seed, n)));
    let who = Who {
        ministry: as_(1),
        verifier: as_(2),
        operator: as_(3),
        bank: as_(4),
        auditor: as_(5),
        channel: channel.clone(),
        seed,
    };
    let mut year = Year {
        who,
        options,
        entities,
        members,
        progress,
        rng: Rng(seed ^ 0xdec0_de00),
        facilities: entities.iter().map(|e| e.row.facilities.len()).sum(),
        pre: pb::RunAllocationReply::default(),
        trued: pb::RunAllocationReply::default(),
        paid_t: 0,
        standing: BTreeMap::new(),
        pledges: Vec::new(),
        sell: BTreeMap::new(),
        buy: BTreeMap::new(),
        market: super::trading::Market::new(),
        released: 0,
        enforced: None,
        surrendered_t: 0,
        clock,
        verification: Default::default(),
        objector: None,
    };
    year.set_up_registry().await?;
    year.allocate().await?;
    year.issue_paid_allocation().await?;
    year.fund_and_pledge().await?;
    year.deposit().await?;
    for day in 0..options.days {
        year.trading_day(day).await?;
    }
    year.settlement_day().await?;
    year.end_pledges().await?;
    year.surrender().await?;
    year.close_and_report().await
}

impl Year<'_> {
    /// Accounts, the vintage, the plan, the entities.
    async fn set_up_registry(&mut self) -> Result<(), String> {
        let mut opened: Vec<(u64, pb::AccountType, String)> = vec![
            (
                AUTHORITY,
                pb::AccountType::NationalAuthority,
                "Ministry of Ecology and Environment".into(),
            ),
            (RETIREMENT, pb::AccountType::Retirement, "Retirement".into()),
            (
                CANCELLATION,
                pb::AccountType::Cancellation,
                "Voluntary cancellation".into(),
            ),
            (BANK, pb::AccountType::Pledgee, "Green Bank".into()),
        ];
        for m in self.members {
            let name = format!("Member Firm {}", m - FIRST_MEMBER + 1);
            opened.push((*m, pb::AccountType::MemberFirm, name));
        }
        for (id, kind, name) in opened {
            self.who
                .ministry
                .registry
                .open_account(pb::OpenAccountRequest {
                    idempotency_key: format!("open-{id}"),
                    account_id: id,
                    account_type: kind as i32,
                    sector: 0,
                    name,
                })
                .await
                .map_err(fail("open account"))?;
        }
        self.who
            .operator
            .admin
            .create_instrument(pb::CreateInstrumentRequest {
                vintage: 2024,
                reference_price_fen: REFERENCE_FEN,
                ..Default::default()
            })
            .await
            .map_err(fail("create CEA2024"))?;
        self.register_plan_and_entities().await
    }

    async fn register_plan_and_entities(&mut self) -> Result<(), String> {
        let compliance = &mut self.who.ministry.compliance;
        compliance
            .register_plan(pb::RegisterPlanRequest {
                idempotency_key: "plan-2024".into(),
                plan_toml: PLAN_2024.into(),
            })
            .await
            .map_err(fail("register plan"))?;
        for (n, chunk) in self.entities.chunks(1_000).enumerate() {
            compliance
                .load_entities(pb::LoadEntitiesRequest {
                    idempotency_key: format!("entities-{n}"),
                    rows: chunk.iter().map(|e| e.row.clone()).collect(),
                })
                .await
                .map_err(fail("load entities"))?;
        }
        self.progress.step(&format!(
            "{} covered entities with {} facilities, {} members, plan 2024.1 registered",
            self.entities.len(),
            self.facilities,
            self.members.len()
        ));
        Ok(())
    }

    /// Pre-allocation on 2023 emissions, then the 2024 data and the true-up.
    async fn allocate(&mut self) -> Result<(), String> {
        let verified_2023 = self
            .entities
            .iter()
            .map(|e| pb::VerifiedRow {
                account_id: e.id,
                co2_t: e.verified_2023,
                pfc_co2e_t: 0,
            })
            .collect();
        let compliance = &mut self.who.ministry.compliance;
        compliance
            .record_verified(pb::RecordVerifiedRequest {
                idempotency_key: "verified-2023".into(),
                year: 2023,
                rows: verified_2023,
            })
            .await
            .map_err(fail("2023 emissions"))?;
        self.pre = run_allocation(compliance, "pre-2024", pb::RunKind::PreAllocation)
            .await
            .map_err(fail("pre-allocation"))?;
        self.progress.step(&format!(
            "pre-allocation: {} t to {} entities",
            self.pre.allocated_t, self.pre.entities
        ));
        self.record_2024().await?;
        self.clock.set(super::calendar::dates::TRUE_UP);
        let compliance = &mut self.who.ministry.compliance;
        self.trued = run_allocation(compliance, "true-up-2024", pb::RunKind::TrueUp)
            .await
            .map_err(fail("true-up"))?;
        self.progress.step(&format!(
            "verified emissions recorded; true-up: {} t allocated to {} entities ({} t held for differentiated entities)",
            self.trued.allocated_t, self.trued.entities, self.trued.held_t
        ));
        self.objection().await
    }

    /// The industrial entities' 2024 emissions from their own monthly deposits, computed
    /// and submitted (`accounting.rs`); the power plants' activity data (the ministry) and
    /// verified emissions (the verifier); the industrial reports verified through their
    /// provinces and bodies (`verification.rs`).
    async fn record_2024(&mut self) -> Result<(), String> {
        super::accounting::account_for_2024(&self.who, self.entities, &self.clock).await?;
        let industrial = self
            .entities
            .iter()
            .filter(|e| e.accounting.is_some())
            .count();
        self.progress.step(&format!(
            "emissions accounting: {industrial} industrial entities' plans, 12 months each \
             deposited, reports computed and submitted"
        ));
        self.clock.set(super::calendar::dates::POWER_VERIFIED);
        let power = || self.entities.iter().filter(|e| e.accounting.is_none());
        let activity: Vec<pb::ActivityRow> = power().flat_map(|e| e.activity.clone()).collect();
        for (n, chunk) in activity.chunks(10_000).enumerate() {
            self.who
                .ministry
                .compliance
                .load_activity(pb::LoadActivityRequest {
                    idempotency_key: format!("activity-2024-{n}"),
                    year: 2024,
                    rows: chunk.to_vec(),
                })
                .await
                .map_err(fail("activity"))?;
        }
        let rows = power()
            .map(|e| pb::VerifiedRow {
                account_id: e.id,
                co2_t: e.co2_2024,
                pfc_co2e_t: e.pfc_2024,
            })
            .collect();
        self.who
            .verifier
            .compliance
            .record_verified(pb::RecordVerifiedRequest {
                idempotency_key: "verified-2024".into(),
                year: 2024,
                rows,
            })
            .await
            .map_err(fail("2024 emissions"))?;
        self.verify().await
    }

    /// Each entity's position after the true-up; the authority's paid-allocation reserve,
    /// issued and moved to the exchange for auction.
    async fn issue_paid_allocation(&mut self) -> Result<(), String> {
        self.clock.set(super::calendar::dates::FUNDS);
        self.standing = read_standings(&self.who, self.entities).await?;
        self.paid_t = (self.trued.allocated_t / 2_000).clamp(100_000, 5_000_000);
        let registry = &mut self.who.ministry.registry;
        registry
            .issue(pb::IssueRequest {
                idempotency_key: "issue-paid".into(),
                authority_account_id: AUTHORITY,
                unit: INSTRUMENT.into(),
                quantity_t: self.paid_t,
            })
            .await
            .map_err(fail("issue paid allocation"))?;
        registry
            .move_to_trading(pb::MoveRequest {
                idempotency_key: "paid-to-trading".into(),
                account_id: AUTHORITY,
                unit: INSTRUMENT.into(),
                quantity_t: self.paid_t,
            })
            .await
            .map_err(fail("paid allocation to the exchange"))?;
        Ok(())
    }

    /// Funds from the settlement bank; the bank lends against allowances of entities with
    /// a surplus.
    async fn fund_and_pledge(&mut self) -> Result<(), String> {
        let mut credits: Vec<(u64, i64)> =
            self.members.iter().map(|m| (*m, 20_000_000_000)).collect();
        credits.extend(self.entities.iter().map(|e| (e.id, 5_000_000_000)));
        let operator = self.who.operator.clone();
        concurrently(credits, move |(account, amount)| {
            let mut admin = operator.admin.clone();
            async move {
                admin
                    .credit_funds(pb::FundsRequest {
                        transfer_id: account,
                        account_id: account,
                        amount_fen: amount,
                    })
                    .await
                    .map(drop)
                    .map_err(fail("credit funds"))
            }
        })
        .await?;
        let mut pledgors: Vec<(u64, u64)> = self
            .standing
            .iter()
            .filter(|(_, (available, owed))| available > &(owed + 200_000))
            .map(|(id, (available, owed))| (*id, (available - owed) / 4))
            .collect();
        self.rng.shuffle(&mut pledgors);
        pledgors.truncate(12);
        pledgors.sort_unstable();
        for (id, q) in &pledgors {
            let p = self
                .who
                .bank
                .registry
                .register_pledge(pb::PledgeRequest {
                    idempotency_key: format!("pledge-{id}"),
                    pledgor_account_id: *id,
                    pledgee_account_id: BANK,
                    unit: INSTRUMENT.into(),
                    quantity_t: *q,
                    // A loan of RMB 60.00 a tonne pledged (about 70% of the price).
                    secured_fen: q * 6_000,
                })
                .await
                .map_err(fail("register pledge"))?
                .into_inner();
            self.pledges.push((p.pledge_id, *id, *q));
        }
        Ok(())
    }

    /// Sellers deposit most of their surplus (pledged units stay frozen in the registry);
    /// buyers will need their shortfall (careless ones only half of it).
    async fn deposit(&mut self) -> Result<(), String> {
        let pledged: BTreeMap<u64, u64> = self.pledges.iter().map(|p| (p.1, p.2)).collect();
        for e in self.entities {
            let (available, owed) = self.standing[&e.id];
            let available = available - pledged.get(&e.id).copied().unwrap_or(0);
            if e.row.differentiated {
                continue;
            }
            if available > owed + 1_000 {
                let q = (available - owed) * self.rng.range(50, 100) / 100;
                if q > 0 {
                    self.sell.insert(e.id, q);
                }
            } else if owed > available {
                let need = owed - available;
                self.buy
                    .insert(e.id, if e.careless { need / 2 } else { need });
            }
        }
        let deposits: Vec<(u64, u64)> = self.sell.iter().map(|(a, q)| (*a, *q)).collect();
        self.move_each(deposits, true).await?;
        self.progress.step(&format!(
            "funds credited; {} sellers deposited {} t at the exchange; {} buyers need {} t; {} pledges registered",
            self.sell.len(),
            self.sell.values().sum::<u64>(),
            self.buy.len(),
            self.buy.values().sum::<u64>(),
            self.pledges.len()
        ));
        Ok(())
    }

    /// Moves each `(account, quantity)` to the exchange (`to_trading`) or back, by the
    /// account's own principal, concurrently.
    pub(super) async fn move_each(
        &self,
        moves: Vec<(u64, u64)>,
        to_trading: bool,
    ) -> Result<(), String> {
        let (channel, seed) = (self.who.channel.clone(), self.who.seed);
        concurrently(moves, move |(account, q)| {
            let mut c = Clients::new(channel.clone(), Some(&token(seed, account)));
            async move {
                let what = if to_trading { "deposit" } else { "withdraw" };
                let req = pb::MoveRequest {
                    idempotency_key: format!("{what}-{account}"),
                    account_id: account,
                    unit: INSTRUMENT.into(),
                    quantity_t: q,
                };
                let sent = if to_trading {
                    c.registry.move_to_trading(req).await
                } else {
                    c.registry.move_from_trading(req).await
                };
                sent.map(drop).map_err(fail(what))
            }
        })
        .await
    }

    /// Most loans are repaid; one borrower defaults.
    async fn end_pledges(&mut self) -> Result<(), String> {
        let count = self.pledges.len();
        for (n, (id, pledgor, q)) in self.pledges.clone().into_iter().enumerate() {
            let bank = &mut self.who.bank.registry;
            if n == 0 {
                bank.enforce_pledge(pb::PledgeActionRequest {
                    idempotency_key: format!("enforce-{id}"),
                    pledge_id: id,
                    enforcement: pb::Enforcement::ToPledgee as i32,
                    claim_fen: 0,
                })
                .await
                .map_err(fail("enforce pledge"))?;
                self.enforced = Some((pledgor, q));
            } else if n + 2 < count {
                bank.release_pledge(pb::PledgeActionRequest {
                    idempotency_key: format!("release-{id}"),
                    pledge_id: id,
                    enforcement: 0,
                    claim_fen: 0,
                })
                .await
                .map_err(fail("release pledge"))?;
                self.released += 1;
            }
        }
        Ok(())
    }

    /// Every entity gives up what it owes, as far as it can.
    async fn surrender(&mut self) -> Result<(), String> {
        let standing = read_standings(&self.who, self.entities).await?;
        let surrenders: Vec<(u64, u64)> = self
            .entities
            .iter()
            .filter(|e| !e.row.differentiated)
            .map(|e| {
                let (available, owed) = standing[&e.id];
                (e.id, available.min(owed))
            })
            .filter(|(_, q)| *q > 0)
            .collect();
        self.surrendered_t = surrenders.iter().map(|s| s.1).sum();
        let (channel, seed) = (self.who.channel.clone(), self.who.seed);
        concurrently(surrenders, move |(account, q)| {
            let mut c = Clients::new(channel.clone(), Some(&token(seed, account)));
            async move {
                c.compliance
                    .surrender(pb::SurrenderRequest {
                        idempotency_key: format!("surrender-{account}"),
                        account_id: account,
                        unit: INSTRUMENT.into(),
                        quantity_t: q,
                        year: 2024,
                    })
                    .await
                    .map(drop)
                    .map_err(fail("surrender"))
            }
        })
        .await?;
        self.progress
            .step(&format!("entities surrendered {} t", self.surrendered_t));
        Ok(())
    }
}

async fn run_allocation(
    compliance: &mut client::ComplianceServiceClient<client::Authed>,
    key: &str,
    kind: pb::RunKind,
) -> Result<pb::RunAllocationReply, tonic::Status> {
    compliance
        .run_allocation(pb::RunAllocationRequest {
            idempotency_key: key.into(),
            year: 2024,
            plan_version: "2024.1".into(),
            kind: kind as i32,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Registry-available CEA2024 and the obligation (the verified emissions the registry
/// holds) of each entity.
pub(super) async fn read_standings(
    who: &Who,
    entities: &[Entity],
) -> Result<BTreeMap<u64, (u64, u64)>, String> {
    let out = std::sync::Arc::new(parking_lot::Mutex::new(BTreeMap::new()));
    let auditor = who.auditor.clone();
    let sink = out.clone();
    let accounts: Vec<u64> = entities.iter().map(|e| e.id).collect();
    concurrently(accounts, move |account| {
        let (mut registry, mut compliance) = (auditor.registry.clone(), auditor.compliance.clone());
        let sink = sink.clone();
        async move {
            let holdings = registry
                .get_holdings(pb::GetHoldingsRequest {
                    account_id: account,
                })
                .await
                .map_err(fail("holdings"))?
                .into_inner()
                .holdings;
            let available = holdings
                .iter()
                .find(|h| h.unit == INSTRUMENT)
                .map_or(0, |h| h.registry_available_t);
            let owed = compliance
                .get_compliance(pb::GetComplianceRequest {
                    year: 2024,
                    account_id: account,
                })
                .await
                .map_err(fail("compliance"))?
                .into_inner()
                .obligation_t;
            sink.lock().insert(account, (available, owed));
            Ok(())
        }
    })
    .await?;
    let map = std::mem::take(&mut *out.lock());
    Ok(map)
}

/// Free + locked + pending CEA2024 at the exchange of each account.
pub(super) async fn read_positions(
    who: &Who,
    accounts: Vec<u64>,
) -> Result<BTreeMap<u64, u64>, String> {
    let out = std::sync::Arc::new(parking_lot::Mutex::new(BTreeMap::new()));
    let auditor = who.auditor.clone();
    let sink = out.clone();
    concurrently(accounts, move |account| {
        let mut trading = auditor.trading.clone();
        let sink = sink.clone();
        async move {
            let a = trading
                .get_trading_account(pb::GetTradingAccountRequest {
                    account_id: account,
                })
                .await
                .map_err(fail("trading account"))?
                .into_inner();
            let held = a
                .positions
                .iter()
                .find(|p| p.instrument == INSTRUMENT)
                .map_or(0, |p| p.free_t + p.locked_t + p.pending_t);
            sink.lock().insert(account, held);
            Ok(())
        }
    })
    .await?;
    let map = std::mem::take(&mut *out.lock());
    Ok(map)
}
