//! AuctionService: one-way bidding (a seller's auction, paid allocation) and the sale of
//! pledges enforced for auction, whose proceeds pay the pledgee first.

use engine::{AccountId, ClientOrderId, CommandKind, EventKind, OrderId};
use proto::v1 as pb;
use proto::v1::auction_service_server::AuctionService;
use tonic::{Request, Response, Status};

use crate::auth::Rpc;
use crate::core::Applied;
use crate::error::ApiError;
use crate::services::Ctx;
use crate::services::convert::{self, id, price, quantity};

#[derive(Clone, Debug)]
pub struct Auctions {
    pub ctx: Ctx,
}

fn auction_reply(applied: &Applied, auction: u64) -> Result<pb::AuctionReply, ApiError> {
    if let Some(reason) = applied.rejection() {
        return Err(ApiError::engine(reason));
    }
    let mut reply = pb::AuctionReply {
        sequence: applied.seq,
        auction_id: auction,
        bid_id: 0,
    };
    for e in &applied.events {
        match e.kind {
            EventKind::BiddingAnnounced { auction, .. } => reply.auction_id = auction.0,
            EventKind::BidAccepted { bid, .. } => reply.bid_id = bid.0,
            _ => {}
        }
    }
    Ok(reply)
}

/// Reserve rule, pricing and the largest share of one bidder (0 = all of it).
fn auction_terms(
    reserve: i32,
    pricing: i32,
    bidder_max_bp: u32,
) -> Result<(engine::ReserveRule, engine::Pricing, u32), ApiError> {
    let reserve = match pb::ReserveRule::try_from(reserve) {
        Ok(pb::ReserveRule::PreviousClose) => engine::ReserveRule::PreviousClose,
        Ok(pb::ReserveRule::TenPercentBelow) => engine::ReserveRule::TenPercentBelow,
        _ => return Err(ApiError::field("reserve", "must be a RESERVE_RULE_ value")),
    };
    let pricing = match pb::Pricing::try_from(pricing) {
        Ok(pb::Pricing::Uniform) => engine::Pricing::Uniform,
        Ok(pb::Pricing::PayAsBid) => engine::Pricing::PayAsBid,
        _ => return Err(ApiError::field("pricing", "must be a PRICING_ value")),
    };
    let bidder_max_bp = match bidder_max_bp {
        0 => 10_000,
        bp if bp > 10_000 => return Err(ApiError::field("bidder_max_bp", "at most 10000")),
        bp => bp,
    };
    Ok((reserve, pricing, bidder_max_bp))
}

/// How a pledge sale's close shared its proceeds, on the wire.
fn disposal_settlement(kind: &EventKind) -> Option<pb::DisposalSettlement> {
    match *kind {
        EventKind::DisposalSettled {
            disposal,
            pledgee,
            paid_fen,
            claim_left_fen,
            kept_t,
            released_t,
            ..
        } => Some(pb::DisposalSettlement {
            pledge_id: disposal,
            pledgee_account_id: pledgee.0,
            paid_fen,
            claim_left_fen,
            kept_t,
            released_t,
        }),
        _ => None,
    }
}

impl Auctions {
    async fn run<T>(
        &self,
        request: &Request<T>,
        m: &'static str,
        rpc: Rpc,
        accounts: &[u64],
        kind: impl FnOnce() -> Result<CommandKind, ApiError>,
    ) -> Result<Applied, Status> {
        let call = self.ctx.begin(request, m, rpc, accounts)?;
        let kind = kind().map_err(|e| self.ctx.refuse(m, e))?;
        // The same path as the trading service's: the in-flight limit applies to bids.
        self.ctx.member_command(&call, kind, m).await
    }
}

#[tonic::async_trait]
impl AuctionService for Auctions {
    async fn announce_bidding(
        &self,
        request: Request<pb::AnnounceBiddingRequest>,
    ) -> Result<Response<pb::AuctionReply>, Status> {
        let m = "AnnounceBidding";
        let r = request.get_ref();
        let catalog = self.ctx.core.catalog.clone();
        let applied = self
            .run(
                &request,
                m,
                Rpc::AnnounceBidding,
                &[r.seller_account_id],
                || {
                    let (reserve, pricing, bidder_max_bp) =
                        auction_terms(r.reserve, r.pricing, r.bidder_max_bp)?;
                    Ok(CommandKind::AnnounceBidding {
                        seller: AccountId(id(r.seller_account_id, "seller_account_id")?),
                        instrument: convert::instrument(&catalog, &r.instrument, "instrument")?,
                        quantity_t: quantity(r.quantity_t, "quantity_t")?,
                        reserve,
                        pricing,
                        bidder_max_bp,
                    })
                },
            )
            .await?;
        auction_reply(&applied, 0)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn announce_disposal(
        &self,
        request: Request<pb::AnnounceDisposalRequest>,
    ) -> Result<Response<pb::AuctionReply>, Status> {
        let m = "AnnounceDisposal";
        let r = *request.get_ref();
        // As for pledge actions: authenticate, then authorize against the pledge's pledgee
        // before revealing whether it exists.
        self.ctx
            .authenticate(&request)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let pledge_id = id(r.pledge_id, "pledge_id").map_err(|e| self.ctx.refuse(m, e))?;
        let pledgee = self
            .ctx
            .core
            .registry
            .read(move |reg| reg.ledger().pledges.get(&pledge_id).map(|p| p.pledgee.0))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .unwrap_or(0);
        let applied = self
            .run(&request, m, Rpc::AnnounceDisposal, &[pledgee], || {
                let (reserve, pricing, bidder_max_bp) =
                    auction_terms(r.reserve, r.pricing, r.bidder_max_bp)?;
                Ok(CommandKind::AnnounceDisposal {
                    disposal: pledge_id,
                    reserve,
                    pricing,
                    bidder_max_bp,
                })
            })
            .await?;
        auction_reply(&applied, 0)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn open_bidding(
        &self,
        request: Request<pb::AuctionActionRequest>,
    ) -> Result<Response<pb::AuctionReply>, Status> {
        let m = "OpenBidding";
        let auction = request.get_ref().auction_id;
        let applied = self
            .run(&request, m, Rpc::OpenBidding, &[], || {
                Ok(CommandKind::OpenBidding {
                    auction: OrderId(id(auction, "auction_id")?),
                })
            })
            .await?;
        auction_reply(&applied, auction)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn place_bid(
        &self,
        request: Request<pb::PlaceBidRequest>,
    ) -> Result<Response<pb::AuctionReply>, Status> {
        let m = "PlaceBid";
        let r = *request.get_ref();
        let applied = self
            .run(&request, m, Rpc::PlaceBid, &[r.account_id], || {
                Ok(CommandKind::PlaceBid {
                    auction: OrderId(id(r.auction_id, "auction_id")?),
                    bidder: AccountId(id(r.account_id, "account_id")?),
                    client_order_id: ClientOrderId(id(r.client_order_id, "client_order_id")?),
                    price_fen: price(r.price_fen, "price_fen")?,
                    quantity_t: quantity(r.quantity_t, "quantity_t")?,
                })
            })
            .await?;
        auction_reply(&applied, r.auction_id)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn close_bidding(
        &self,
        request: Request<pb::AuctionActionRequest>,
    ) -> Result<Response<pb::BiddingResult>, Status> {
        let m = "CloseBidding";
        let auction = request.get_ref().auction_id;
        let applied = self
            .run(&request, m, Rpc::CloseBidding, &[], || {
                Ok(CommandKind::CloseBidding {
                    auction: OrderId(id(auction, "auction_id")?),
                })
            })
            .await?;
        if let Some(reason) = applied.rejection() {
            return Err(self.ctx.refuse(m, ApiError::engine(reason)));
        }
        let mut result = pb::BiddingResult {
            sequence: applied.seq,
            auction_id: auction,
            ..pb::BiddingResult::default()
        };
        for e in &applied.events {
            if let EventKind::BiddingClosed {
                clearing_fen,
                sold_t,
                unsold_t,
                ..
            } = e.kind
            {
                result.clearing_fen = clearing_fen;
                result.sold_t = sold_t;
                result.unsold_t = unsold_t;
            }
            if let Some(d) = disposal_settlement(&e.kind) {
                result.disposal = Some(d);
            }
        }
        Ok(Response::new(result))
    }
}
