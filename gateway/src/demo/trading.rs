//! The trading days: the paid-allocation auction on the first, a block trade on the
//! second, every day's orders in a seeded order, and the settlement day after the last.

use std::collections::BTreeMap;
use std::fmt::Write;

use client::money::{grouped as g, money};
use client::names;
use proto::v1 as pb;

use super::year::{Year, read_positions};
use super::{AUTHORITY, FIRST_DAY, INSTRUMENT, REFERENCE_FEN, fail};

/// What the trading days carry from one to the next.
#[derive(Debug)]
pub(super) struct Market {
    pub reference: i64,
    pub client_order: u64,
    pub auction_line: String,
    pub block_line: String,
    pub left_to_sell: BTreeMap<u64, u64>,
    pub left_to_buy: BTreeMap<u64, u64>,
    pub member_stock: BTreeMap<u64, u64>,
    pub orders_sent: u64,
}

impl Market {
    pub fn new() -> Market {
        Market {
            reference: REFERENCE_FEN,
            client_order: 0,
            auction_line: String::new(),
            block_line: String::new(),
            left_to_sell: BTreeMap::new(),
            left_to_buy: BTreeMap::new(),
            member_stock: BTreeMap::new(),
            orders_sent: 0,
        }
    }

    fn next_order(&mut self) -> u64 {
        self.client_order += 1;
        self.client_order
    }
}

fn limit(
    account: u64,
    client_order_id: u64,
    side: pb::Side,
    price_fen: i64,
    quantity_t: u64,
) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        account_id: account,
        client_order_id,
        instrument: INSTRUMENT.into(),
        side: side as i32,
        order_type: pb::OrderType::Limit as i32,
        time_in_force: pb::TimeInForce::Day as i32,
        price_fen,
        quantity_t,
        post_only: false,
    }
}

/// A price `bp` basis points from `reference`, kept inside the +/-10% band.
fn price(reference: i64, bp: i64) -> i64 {
    let p = reference + reference * bp / 10_000;
    p.clamp(reference * 91 / 100 + 1, reference * 109 / 100)
}

/// The `n`-th weekday from `first` (a Monday), `YYYYMMDD`.
pub(super) fn trading_date(first: u32, n: u32) -> u32 {
    let (mut y, mut m, mut d) = (first / 10_000, first / 100 % 100, first % 100);
    let mut weekday = 0; // Monday
    let mut left = n;
    while left > 0 {
        let month_days = match m {
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        d += 1;
        if d > month_days {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
        weekday = (weekday + 1) % 7;
        if weekday < 5 {
            left -= 1;
        }
    }
    y * 10_000 + m * 100 + d
}

impl Year<'_> {
    /// One trading day: open, the day's special (auction, block trade), the orders, close,
    /// and where everyone stands after it.
    pub(super) async fn trading_day(&mut self, day: u32) -> Result<(), String> {
        if day == 0 {
            self.market.left_to_sell = self.sell.clone();
            self.market.left_to_buy = self.buy.clone();
        }
        let date = trading_date(FIRST_DAY, day);
        self.clock.set(date);
        let admin = &mut self.who.operator.admin;
        admin
            .open_trading_day(pb::OpenTradingDayRequest { trading_date: date })
            .await
            .map_err(fail("open day"))?;
        admin
            .set_phase(pb::SetPhaseRequest {
                phase: pb::Phase::Continuous as i32,
            })
            .await
            .map_err(fail("continuous"))?;
        if day == 0 {
            self.paid_allocation_auction(date).await?;
        }
        if day == 1 {
            self.block_trade(date).await?;
        }
        let orders = self.orders_of_the_day(day);
        self.send(orders).await?;
        self.who
            .operator
            .admin
            .close_trading_day(pb::CloseTradingDayRequest {})
            .await
            .map_err(fail("close day"))?;
        self.after_the_day(date).await
    }

    /// Paid allocation: a one-way bidding auction of the authority's reserve, uniform
    /// price, reserve at the previous close, at most 20% to one bidder.
    async fn paid_allocation_auction(&mut self, date: u32) -> Result<(), String> {
        let id = self
            .who
            .ministry
            .auction
            .announce_bidding(pb::AnnounceBiddingRequest {
                seller_account_id: AUTHORITY,
                instrument: INSTRUMENT.into(),
                quantity_t: self.paid_t,
                reserve: pb::ReserveRule::PreviousClose as i32,
                pricing: pb::Pricing::Uniform as i32,
                bidder_max_bp: 2_000,
            })
            .await
            .map_err(fail("announce bidding"))?
            .into_inner()
            .auction_id;
        let auction = &mut self.who.operator.auction;
        auction
            .open_bidding(pb::AuctionActionRequest { auction_id: id })
            .await
            .map_err(fail("open bidding"))?;
        let bidders = self.bid(id).await?;
        let result = self
            .who
            .operator
            .auction
            .close_bidding(pb::AuctionActionRequest { auction_id: id })
            .await
            .map_err(fail("close bidding"))?
            .into_inner();
        let _ = write!(
            self.market.auction_line,
            "paid allocation auction ({}): {} t offered by the ministry, {bidders} member bidders, {} t sold at a uniform {} yuan, {} t unsold",
            names::date(date),
            g(self.paid_t),
            g(result.sold_t),
            money(result.clearing_fen),
            g(result.unsold_t)
        );
        Ok(())
    }

    /// Sealed bids of most members; returns how many bid.
    async fn bid(&mut self, auction_id: u64) -> Result<u32, String> {
        let mut bidders = 0;
        for m in self.members {
            if !self.rng.chance(70) {
                continue;
            }
            bidders += 1;
            let client_order_id = self.market.next_order();
            let price_fen = price(self.market.reference, self.rng.range(0, 800) as i64);
            let quantity_t = (self.paid_t * self.rng.range(8, 20) / 100).max(1);
            self.who
                .of(*m)
                .auction
                .place_bid(pb::PlaceBidRequest {
                    auction_id,
                    account_id: *m,
                    client_order_id,
                    price_fen,
                    quantity_t,
                })
                .await
                .map_err(fail("bid"))?;
        }
        Ok(bidders)
    }

    /// A block trade in the afternoon window: the largest seller to a member.
    async fn block_trade(&mut self, date: u32) -> Result<(), String> {
        let Some((&seller, &q)) = self
            .market
            .left_to_sell
            .iter()
            .max_by_key(|(a, q)| (**q, **a))
        else {
            return Ok(());
        };
        if q < 100_000 {
            return Ok(());
        }
        let buyer = self.members[0];
        let block_q = q.min(300_000);
        let block_price = price(self.market.reference, -200);
        let window = |open| pb::SetBlockWindowRequest { open };
        self.who
            .operator
            .admin
            .set_block_window(window(true))
            .await
            .map_err(fail("block window"))?;
        let client_order_id = self.market.next_order();
        let proposal = self
            .who
            .of(seller)
            .trading
            .propose_block(pb::ProposeBlockRequest {
                account_id: seller,
                counterparty_account_id: buyer,
                client_order_id,
                instrument: INSTRUMENT.into(),
                side: pb::Side::Sell as i32,
                price_fen: block_price,
                quantity_t: block_q,
            })
            .await
            .map_err(fail("propose block"))?
            .into_inner();
        self.who
            .of(buyer)
            .trading
            .accept_block(pb::BlockActionRequest {
                account_id: buyer,
                block_id: proposal.block_id,
            })
            .await
            .map_err(fail("accept block"))?;
        self.who
            .operator
            .admin
            .set_block_window(window(false))
            .await
            .map_err(fail("block window"))?;
        if let Some(left) = self.market.left_to_sell.get_mut(&seller) {
            *left -= block_q;
        }
        let _ = write!(
            self.market.block_line,
            "block trade ({}): {} t from entity {seller} to member {buyer} at {} yuan",
            names::date(date),
            g(block_q),
            money(block_price)
        );
        Ok(())
    }

    /// The day's orders, in a seeded order: sellers, buyers (keener as the deadline
    /// nears), and members making a market.
    fn orders_of_the_day(&mut self, day: u32) -> Vec<pb::PlaceOrderRequest> {
        let mut orders: Vec<pb::PlaceOrderRequest> = Vec::new();
        let reference = self.market.reference;
        let days_left = u64::from(self.options.days - day);
        for (account, left) in &self.market.left_to_sell {
            if *left == 0 || !self.rng.chance(70) {
                continue;
            }
            let q = (left / days_left.max(1)).clamp(1, 99_999).min(*left);
            let p = price(reference, self.rng.range(0, 350) as i64 - 100);
            orders.push(limit(*account, 0, pb::Side::Sell, p, q));
        }
        for (account, left) in &self.market.left_to_buy {
            if *left == 0 || !self.rng.chance(80) {
                continue;
            }
            let q = (left / days_left.max(1) + 1).clamp(1, 99_999).min(*left);
            // On the last day buyers pay up.
            let premium = if days_left == 1 {
                self.rng.range(300, 600) as i64
            } else {
                self.rng.range(0, 350) as i64 - 200 + 60 * i64::from(day)
            };
            orders.push(limit(
                *account,
                0,
                pb::Side::Buy,
                price(reference, premium),
                q,
            ));
        }
        self.member_orders(day, &mut orders);
        self.rng.shuffle(&mut orders);
        orders
    }

    fn member_orders(&mut self, day: u32, orders: &mut Vec<pb::PlaceOrderRequest>) {
        let reference = self.market.reference;
        for m in self.members {
            for _ in 0..2 {
                let p = price(reference, self.rng.range(0, 300) as i64 - 300);
                let q = self.rng.range(5_000, 50_000);
                orders.push(limit(*m, 0, pb::Side::Buy, p, q));
            }
            let stock = self.market.member_stock.get(m).copied().unwrap_or(0);
            if day > 0 && stock > 0 {
                let q = (stock / 2).clamp(1, 99_999);
                let p = price(reference, self.rng.range(0, 300) as i64);
                orders.push(limit(*m, 0, pb::Side::Sell, p, q));
            }
        }
    }

    /// Sends the orders one at a time, in their order.
    async fn send(&mut self, orders: Vec<pb::PlaceOrderRequest>) -> Result<(), String> {
        for mut o in orders {
            o.client_order_id = self.market.next_order();
            let account = o.account_id;
            match self.who.of(account).trading.place_order(o).await {
                Ok(_) => self.market.orders_sent += 1,
                // A member without the funds for another bid: skip it, as a broker would.
                Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                Err(s) => return Err(fail("order")(s)),
            }
        }
        Ok(())
    }

    /// Where everyone stands after the day: sellers' unsold, buyers' purchases, members'
    /// stock; the day's close becomes the next reference.
    async fn after_the_day(&mut self, date: u32) -> Result<(), String> {
        let m = &mut self.market;
        let accounts = m
            .left_to_sell
            .keys()
            .chain(m.left_to_buy.keys())
            .chain(self.members)
            .copied()
            .collect();
        let positions = read_positions(&self.who, accounts).await?;
        let held = |account: &u64| positions.get(account).copied().unwrap_or(0);
        for (account, left) in m.left_to_sell.iter_mut() {
            *left = (*left).min(held(account));
        }
        for (account, left) in m.left_to_buy.iter_mut() {
            *left = self.buy[account].saturating_sub(held(account));
        }
        for member in self.members {
            m.member_stock.insert(*member, held(member));
        }
        let bars = self
            .who
            .auditor
            .market
            .get_daily_bars(pb::GetDailyBarsRequest {
                instrument: INSTRUMENT.into(),
                from_date: date,
                to_date: date,
            })
            .await
            .map_err(fail("bars"))?
            .into_inner()
            .bars;
        if let Some(b) = bars.first()
            && b.close_fen > 0
        {
            self.market.reference = b.close_fen;
        }
        self.progress.step(&format!(
            "trading day {}: {} orders so far; close {} yuan",
            names::date(date),
            g(self.market.orders_sent),
            money(self.market.reference)
        ));
        Ok(())
    }

    /// T+1 purchases become free; everyone withdraws to the registry.
    pub(super) async fn settlement_day(&mut self) -> Result<(), String> {
        let settle_date = trading_date(FIRST_DAY, self.options.days);
        self.clock.set(settle_date);
        self.who
            .operator
            .admin
            .open_trading_day(pb::OpenTradingDayRequest {
                trading_date: settle_date,
            })
            .await
            .map_err(fail("open settlement day"))?;
        let mut accounts: Vec<u64> = self.sell.keys().chain(self.buy.keys()).copied().collect();
        accounts.sort_unstable();
        accounts.dedup();
        let positions = read_positions(&self.who, accounts).await?;
        let withdrawals: Vec<(u64, u64)> = positions.into_iter().filter(|(_, q)| *q > 0).collect();
        self.move_each(withdrawals, false).await?;
        self.who
            .operator
            .admin
            .close_trading_day(pb::CloseTradingDayRequest {})
            .await
            .map_err(fail("close settlement day"))?;
        self.progress
            .step("purchases and unsold deposits withdrawn to the registry");
        Ok(())
    }
}
