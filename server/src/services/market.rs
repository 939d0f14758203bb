//! MarketDataService: book, trades, daily bars, market status and the resumable stream.

use engine::EventKind;
use proto::v1 as pb;
use proto::v1::market_data_service_server::MarketDataService;
use tonic::{Request, Response, Status};

use crate::auth::{Rpc, take_slot};
use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::hub::Item;
use crate::services::Ctx;
use crate::services::convert::{self, bar_out, phase_out, side_out, trade_out};
use crate::services::stream::{ItemStream, subscribe};

/// Most levels per side in one GetBook.
pub const BOOK_DEPTH_MAX: u32 = 1_000;
/// Most trades in one GetTrades.
pub const TRADES_LIMIT_MAX: u32 = 1_000;
/// Most instruments named in one StreamMarketData.
pub const STREAM_INSTRUMENTS_MAX: usize = 64;

#[derive(Clone, Debug)]
pub struct MarketData {
    pub ctx: Ctx,
}

fn instrument_of(kind: &EventKind) -> Option<engine::InstrumentId> {
    Some(match kind {
        EventKind::Trade(t) => t.instrument,
        EventKind::Level { instrument, .. }
        | EventKind::PriceBand { instrument, .. }
        | EventKind::InstrumentHalted { instrument }
        | EventKind::InstrumentResumed { instrument }
        | EventKind::Indicative { instrument, .. }
        | EventKind::AuctionUncross { instrument, .. }
        | EventKind::BiddingAnnounced { instrument, .. } => *instrument,
        EventKind::ClosingPrice(bar) => bar.instrument,
        _ => return None,
    })
}

fn public(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Trade(_)
            | EventKind::Level { .. }
            | EventKind::ClosingPrice(_)
            | EventKind::DayOpened { .. }
            | EventKind::PhaseChanged { .. }
            | EventKind::PriceBand { .. }
            | EventKind::InstrumentHalted { .. }
            | EventKind::InstrumentResumed { .. }
            | EventKind::Indicative { .. }
            | EventKind::AuctionUncross { .. }
            | EventKind::BiddingAnnounced { .. }
            | EventKind::BiddingClosed { .. }
    )
}

pub fn market_event(item: &Item, catalog: &Catalog) -> Option<pb::MarketDataEvent> {
    use pb::market_data_event::Event as E;
    let event = match &item.event.kind {
        EventKind::Trade(t) => E::Trade(trade_out(t, item.pos.0, item.timestamp_ns, catalog)),
        EventKind::Level {
            instrument,
            side,
            price_fen,
            quantity_t,
            orders,
        } => E::Level(pb::LevelUpdate {
            instrument: catalog.symbol(*instrument),
            side: side_out(*side),
            price_fen: *price_fen,
            quantity_t: *quantity_t,
            order_count: *orders,
        }),
        EventKind::ClosingPrice(bar) => E::ClosingPrice(bar_out(bar, catalog)),
        EventKind::DayOpened { date } => E::Phase(pb::PhaseChange {
            phase: pb::Phase::PreOpen as i32,
            trading_date: *date,
        }),
        EventKind::PhaseChanged { phase } => E::Phase(pb::PhaseChange {
            phase: phase_out(*phase),
            trading_date: 0,
        }),
        EventKind::PriceBand {
            instrument,
            reference_fen,
            low_fen,
            high_fen,
        } => E::Band(pb::PriceBand {
            instrument: catalog.symbol(*instrument),
            reference_fen: *reference_fen,
            low_fen: *low_fen,
            high_fen: *high_fen,
        }),
        EventKind::InstrumentHalted { instrument } => E::Status(pb::InstrumentStatus {
            instrument: catalog.symbol(*instrument),
            halted: true,
        }),
        EventKind::InstrumentResumed { instrument } => E::Status(pb::InstrumentStatus {
            instrument: catalog.symbol(*instrument),
            halted: false,
        }),
        EventKind::Indicative {
            instrument,
            price_fen,
            volume_t,
            imbalance_t,
        } => E::Indicative(pb::Indicative {
            instrument: catalog.symbol(*instrument),
            price_fen: *price_fen,
            volume_t: *volume_t,
            imbalance_t: *imbalance_t,
        }),
        EventKind::AuctionUncross {
            instrument,
            price_fen,
            volume_t,
        } => E::Uncross(pb::AuctionUncross {
            instrument: catalog.symbol(*instrument),
            price_fen: *price_fen,
            volume_t: *volume_t,
        }),
        EventKind::BiddingAnnounced {
            auction,
            instrument,
            quantity_t,
            reserve_fen,
            cap_fen,
            uniform,
            ..
        } => E::BiddingAnnounced(pb::BiddingAnnounced {
            auction_id: auction.0,
            instrument: catalog.symbol(*instrument),
            quantity_t: *quantity_t,
            reserve_fen: *reserve_fen,
            cap_fen: *cap_fen,
            uniform_price: *uniform,
        }),
        EventKind::BiddingClosed {
            auction,
            clearing_fen,
            sold_t,
            unsold_t,
        } => E::BiddingClosed(pb::BiddingClosed {
            auction_id: auction.0,
            clearing_fen: *clearing_fen,
            sold_t: *sold_t,
            unsold_t: *unsold_t,
        }),
        _ => return None,
    };
    Some(pb::MarketDataEvent {
        position: Some(pb::StreamPosition {
            sequence: item.pos.0,
            index: item.pos.1,
        }),
        timestamp_ns: item.timestamp_ns,
        event: Some(event),
    })
}

#[tonic::async_trait]
impl MarketDataService for MarketData {
    async fn get_book(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::Book>, Status> {
        let m = "GetBook";
        let _call = self.ctx.begin(&request, m, Rpc::MarketData, &[])?;
        let r = request.into_inner();
        let catalog = self.ctx.core.catalog.clone();
        let instrument = convert::instrument(&catalog, &r.instrument, "instrument")
            .map_err(|e| self.ctx.refuse(m, e))?;
        let depth = match r.depth {
            0 => 10,
            d if d > BOOK_DEPTH_MAX => {
                return Err(self.ctx.refuse(m, ApiError::field("depth", "at most 1000")));
            }
            d => d,
        } as usize;
        let (seq, book) = self
            .ctx
            .core
            .query(move |e| (e.last_seq(), e.book(instrument, depth)))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let book = book.unwrap_or(engine::BookView {
            instrument,
            bids: Vec::new(),
            asks: Vec::new(),
        });
        let level = |l: &engine::BookLevel| pb::BookLevel {
            price_fen: l.price_fen,
            quantity_t: l.quantity_t,
            order_count: l.orders,
        };
        Ok(Response::new(pb::Book {
            instrument: r.instrument,
            sequence: seq,
            bids: book.bids.iter().map(level).collect(),
            asks: book.asks.iter().map(level).collect(),
        }))
    }

    type StreamMarketDataStream = ItemStream<pb::MarketDataEvent>;

    async fn stream_market_data(
        &self,
        request: Request<pb::StreamMarketDataRequest>,
    ) -> Result<Response<Self::StreamMarketDataStream>, Status> {
        let m = "StreamMarketData";
        let call = self.ctx.begin(&request, m, Rpc::MarketData, &[])?;
        let r = request.into_inner();
        if r.instruments.len() > STREAM_INSTRUMENTS_MAX {
            return Err(self
                .ctx
                .refuse(m, ApiError::field("instruments", "at most 64")));
        }
        let catalog = self.ctx.core.catalog.clone();
        let mut wanted = Vec::new();
        for (n, symbol) in r.instruments.iter().enumerate() {
            wanted.push(
                convert::instrument(&catalog, symbol, &format!("instruments[{n}]"))
                    .map_err(|e| self.ctx.refuse(m, e))?,
            );
        }
        let slot = take_slot(&call.principal, true, self.ctx.limits.streams_per_principal)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let keep = move |item: &Item| {
            public(&item.event.kind)
                && (wanted.is_empty()
                    || instrument_of(&item.event.kind).is_none_or(|i| wanted.contains(&i)))
        };
        subscribe(
            &self.ctx,
            r.after.map(|p| (p.sequence, p.index)),
            r.from_now,
            keep,
            move |item| market_event(item, &catalog),
            slot,
        )
        .map(Response::new)
        .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn get_trades(
        &self,
        request: Request<pb::GetTradesRequest>,
    ) -> Result<Response<pb::GetTradesReply>, Status> {
        let m = "GetTrades";
        let _call = self.ctx.begin(&request, m, Rpc::MarketData, &[])?;
        let r = request.into_inner();
        let catalog = &self.ctx.core.catalog;
        let instrument = convert::instrument(catalog, &r.instrument, "instrument")
            .map_err(|e| self.ctx.refuse(m, e))?;
        let limit = match r.limit {
            0 => 100,
            l if l > TRADES_LIMIT_MAX => {
                return Err(self.ctx.refuse(m, ApiError::field("limit", "at most 1000")));
            }
            l => l,
        } as usize;
        let trades = self
            .ctx
            .core
            .hub
            .trades(instrument, r.after_trade_id, limit)
            .iter()
            .map(|t| trade_out(&t.trade, t.seq, t.timestamp_ns, catalog))
            .collect();
        Ok(Response::new(pb::GetTradesReply { trades }))
    }

    async fn get_daily_bars(
        &self,
        request: Request<pb::GetDailyBarsRequest>,
    ) -> Result<Response<pb::GetDailyBarsReply>, Status> {
        let m = "GetDailyBars";
        let _call = self.ctx.begin(&request, m, Rpc::MarketData, &[])?;
        let r = request.into_inner();
        let catalog = &self.ctx.core.catalog;
        let instrument = convert::instrument(catalog, &r.instrument, "instrument")
            .map_err(|e| self.ctx.refuse(m, e))?;
        if r.to_date != 0 && r.to_date < r.from_date {
            return Err(self.ctx.refuse(
                m,
                ApiError::field("to_date", "must not be before from_date"),
            ));
        }
        let bars = self
            .ctx
            .core
            .hub
            .bars(instrument, r.from_date, r.to_date)
            .iter()
            .map(|b| bar_out(b, catalog))
            .collect();
        Ok(Response::new(pb::GetDailyBarsReply { bars }))
    }

    async fn get_market_status(
        &self,
        request: Request<pb::GetMarketStatusRequest>,
    ) -> Result<Response<pb::MarketStatus>, Status> {
        let m = "GetMarketStatus";
        let _call = self.ctx.begin(&request, m, Rpc::MarketData, &[])?;
        let catalog = self.ctx.core.catalog.clone();
        let status = self
            .ctx
            .core
            .query(move |e| {
                let instruments = e
                    .instruments()
                    .into_iter()
                    .map(|i| {
                        let id = i.instrument;
                        let (low, high) = i.band.unwrap_or((0, 0));
                        pb::InstrumentInfo {
                            instrument: catalog.symbol(id),
                            reference_price_fen: i.reference_price_fen,
                            band_low_fen: low,
                            band_high_fen: high,
                            halted: i.halted,
                            best_bid_fen: e.best_bid(id).unwrap_or(0),
                            best_ask_fen: e.best_ask(id).unwrap_or(0),
                        }
                    })
                    .collect();
                pb::MarketStatus {
                    sequence: e.last_seq(),
                    trading_date: e.trading_date(),
                    phase: phase_out(e.phase()),
                    instruments,
                }
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        Ok(Response::new(status))
    }
}
