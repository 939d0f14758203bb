//! TradingService: order entry, queries, execution reports and block trades.

use engine::{AccountId, ClientOrderId, CommandKind, EventKind, OrderId};
use proto::v1 as pb;
use proto::v1::trading_service_server::TradingService;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Principal, Rpc, authorize, take_slot};
use crate::core::Applied;
use crate::error::ApiError;
use crate::hub::Item;
use crate::services::Ctx;
use crate::services::convert::{self, order_reply, side_out};
use crate::services::convert::{id, price, quantity};
use crate::services::entry::{Entry, EntryReplies, Pending, refused};
use crate::services::stream::{ItemStream, subscribe};

#[derive(Clone, Debug)]
pub struct Trading {
    pub ctx: Ctx,
}

fn amend_command(r: &pb::AmendOrderRequest, prefix: &str) -> Result<CommandKind, ApiError> {
    amend_fields(r).map_err(|e| e.prefixed(prefix))
}

fn amend_fields(r: &pb::AmendOrderRequest) -> Result<CommandKind, ApiError> {
    let account = id(r.account_id, "account_id")?;
    let order = id(r.order_id, "order_id")?;
    let price_fen = match r.price_fen {
        0 => None,
        p => Some(price(p, "price_fen")?),
    };
    let quantity_t = match r.quantity_t {
        0 => None,
        q => Some(quantity(q, "quantity_t")?),
    };
    if price_fen.is_none() && quantity_t.is_none() {
        return Err(ApiError::field(
            "price_fen",
            "set a new price_fen or quantity_t (both are 0)",
        ));
    }
    Ok(CommandKind::AmendOrder {
        account: AccountId(account),
        order: OrderId(order),
        price_fen,
        quantity_t,
    })
}

fn cancel_command(r: &pb::CancelOrderRequest, prefix: &str) -> Result<CommandKind, ApiError> {
    Ok(CommandKind::CancelOrder {
        account: AccountId(id(r.account_id, "account_id").map_err(|e| e.prefixed(prefix))?),
        order: OrderId(id(r.order_id, "order_id").map_err(|e| e.prefixed(prefix))?),
    })
}

impl Trading {
    async fn run(
        &self,
        call: &crate::services::Call,
        kind: CommandKind,
        method: &'static str,
    ) -> Result<Applied, Status> {
        self.ctx.member_command(call, kind, method).await
    }

    /// Checks and submits one request of an order-entry stream; its reply comes later,
    /// through `entry`'s sink.
    fn entry_request(
        &self,
        principal: &std::sync::Arc<Principal>,
        request: pb::OrderEntryRequest,
        entry: &Entry,
    ) -> Pending {
        let correlation_id = request.correlation_id;
        let rejected = |e: ApiError| {
            self.ctx.core.metrics.reject(e.reason);
            refused(correlation_id, &e)
        };
        let (kind, rpc, account, order) = match &request.request {
            Some(pb::order_entry_request::Request::Place(p)) => {
                match convert::new_order(p, &self.ctx.core.catalog, "place.") {
                    Ok(o) => (
                        CommandKind::PlaceOrder(o),
                        Rpc::PlaceOrder,
                        p.account_id,
                        None,
                    ),
                    Err(e) => return rejected(e),
                }
            }
            Some(pb::order_entry_request::Request::Cancel(c)) => match cancel_command(c, "cancel.")
            {
                Ok(k) => (k, Rpc::CancelOrder, c.account_id, Some(OrderId(c.order_id))),
                Err(e) => return rejected(e),
            },
            Some(pb::order_entry_request::Request::Amend(a)) => match amend_command(a, "amend.") {
                Ok(k) => (k, Rpc::AmendOrder, a.account_id, Some(OrderId(a.order_id))),
                Err(e) => return rejected(e),
            },
            None => return rejected(ApiError::field("request", "set place, cancel or amend")),
        };
        if let Err(e) = authorize(principal, rpc, &[account]) {
            return rejected(e);
        }
        let slot = match take_slot(principal, false, self.ctx.limits.in_flight_per_principal) {
            Ok(s) => s,
            Err(e) => return rejected(e),
        };
        match self.ctx.core.submit_to(kind, &entry.sink) {
            Ok(()) => Pending::Waiting {
                correlation_id,
                order,
                _slot: slot,
            },
            Err(e) => rejected(e),
        }
    }
}

/// Closed orders one ListOrders returns at most (the most recently closed), so a busy
/// account's reply stays far below the message-size limits.
pub const CLOSED_ORDERS_LISTED_MAX: usize = 1_000;

fn execution_keep(account: u64) -> impl Fn(&Item) -> bool + Send + 'static {
    move |item: &Item| match &item.event.kind {
        EventKind::Accepted(r) => r.account.0 == account,
        EventKind::Amended { report, .. } => report.account.0 == account,
        EventKind::Trade(t) => t.buy.account.0 == account || t.sell.account.0 == account,
        EventKind::Cancelled { account: a, .. } => a.0 == account,
        _ => false,
    }
}

fn execution_report(
    item: &Item,
    account: u64,
    catalog: &crate::catalog::Catalog,
) -> Option<pb::ExecutionReport> {
    let position = Some(pb::StreamPosition {
        sequence: item.pos.0,
        index: item.pos.1,
    });
    let base = pb::ExecutionReport {
        position,
        timestamp_ns: item.timestamp_ns,
        ..pb::ExecutionReport::default()
    };
    Some(match &item.event.kind {
        EventKind::Accepted(r) => pb::ExecutionReport {
            execution_type: pb::ExecutionType::New as i32,
            order: Some(convert::report_out(r, catalog)),
            ..base
        },
        EventKind::Amended { report, .. } => pb::ExecutionReport {
            execution_type: pb::ExecutionType::Amended as i32,
            order: Some(convert::report_out(report, catalog)),
            ..base
        },
        EventKind::Trade(t) => {
            let (fill, side) = if t.buy.account.0 == account {
                (&t.buy, engine::Side::Buy)
            } else {
                (&t.sell, engine::Side::Sell)
            };
            let quantity_t = fill.filled_t + fill.leaves_t;
            pb::ExecutionReport {
                execution_type: pb::ExecutionType::Trade as i32,
                order: Some(pb::Order {
                    order_id: fill.order.0,
                    account_id: account,
                    instrument: catalog.symbol(t.instrument),
                    side: side_out(side),
                    quantity_t,
                    filled_t: fill.filled_t,
                    leaves_t: fill.leaves_t,
                    status: if fill.leaves_t == 0 {
                        pb::OrderStatus::Filled as i32
                    } else {
                        pb::OrderStatus::PartiallyFilled as i32
                    },
                    ..pb::Order::default()
                }),
                fill: Some(pb::Fill {
                    trade_id: t.trade.0,
                    price_fen: t.price_fen,
                    quantity_t: t.quantity_t,
                    fee_fen: fill.fee_fen,
                    aggressor: t.aggressor == Some(side),
                    kind: convert::trade_kind_out(t.kind),
                }),
                ..base
            }
        }
        EventKind::Cancelled {
            order,
            account: a,
            instrument,
            side,
            quantity_t,
            filled_t,
            cancelled_t,
            reason,
        } => pb::ExecutionReport {
            execution_type: pb::ExecutionType::Cancelled as i32,
            order: Some(pb::Order {
                order_id: order.0,
                account_id: a.0,
                instrument: catalog.symbol(*instrument),
                side: side_out(*side),
                quantity_t: *quantity_t,
                filled_t: *filled_t,
                leaves_t: 0,
                status: pb::OrderStatus::Cancelled as i32,
                ..pb::Order::default()
            }),
            cancel_reason: convert::cancel_reason(*reason),
            cancelled_t: *cancelled_t,
            ..base
        },
        _ => return None,
    })
}

fn block_reply(applied: &Applied) -> Result<pb::BlockReply, ApiError> {
    if let Some(reason) = applied.rejection() {
        return Err(ApiError::engine(reason));
    }
    let mut reply = pb::BlockReply {
        sequence: applied.seq,
        ..pb::BlockReply::default()
    };
    for e in &applied.events {
        match e.kind {
            EventKind::BlockProposed { block, .. } => reply.block_id = block.0,
            EventKind::Trade(t) => reply.trade_id = t.trade.0,
            _ => {}
        }
    }
    Ok(reply)
}

#[tonic::async_trait]
impl TradingService for Trading {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let m = "PlaceOrder";
        let call = self.ctx.begin(
            &request,
            m,
            Rpc::PlaceOrder,
            &[request.get_ref().account_id],
        )?;
        let order = convert::new_order(request.get_ref(), &self.ctx.core.catalog, "")
            .map_err(|e| self.ctx.refuse(m, e))?;
        let applied = self.run(&call, CommandKind::PlaceOrder(order), m).await?;
        order_reply(&applied, None, &self.ctx.core.catalog)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let m = "CancelOrder";
        let call = self.ctx.begin(
            &request,
            m,
            Rpc::CancelOrder,
            &[request.get_ref().account_id],
        )?;
        let kind = cancel_command(request.get_ref(), "").map_err(|e| self.ctx.refuse(m, e))?;
        let applied = self.run(&call, kind, m).await?;
        order_reply(
            &applied,
            Some(OrderId(request.get_ref().order_id)),
            &self.ctx.core.catalog,
        )
        .map(Response::new)
        .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn amend_order(
        &self,
        request: Request<pb::AmendOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let m = "AmendOrder";
        let call = self.ctx.begin(
            &request,
            m,
            Rpc::AmendOrder,
            &[request.get_ref().account_id],
        )?;
        let kind = amend_command(request.get_ref(), "").map_err(|e| self.ctx.refuse(m, e))?;
        let applied = self.run(&call, kind, m).await?;
        order_reply(
            &applied,
            Some(OrderId(request.get_ref().order_id)),
            &self.ctx.core.catalog,
        )
        .map(Response::new)
        .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn cancel_all(
        &self,
        request: Request<pb::CancelAllRequest>,
    ) -> Result<Response<pb::CancelAllReply>, Status> {
        let m = "CancelAll";
        let r = request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::CancelAll, &[r.account_id])?;
        let account = id(r.account_id, "account_id").map_err(|e| self.ctx.refuse(m, e))?;
        let instrument = if r.instrument.is_empty() {
            None
        } else {
            Some(
                convert::instrument(&self.ctx.core.catalog, &r.instrument, "instrument")
                    .map_err(|e| self.ctx.refuse(m, e))?,
            )
        };
        let applied = self
            .run(
                &call,
                CommandKind::CancelAll {
                    account: AccountId(account),
                    instrument,
                },
                m,
            )
            .await?;
        if let Some(reason) = applied.rejection() {
            return Err(self.ctx.refuse(m, ApiError::engine(reason)));
        }
        let cancelled_count = applied
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Cancelled { .. }))
            .count() as u64;
        Ok(Response::new(pb::CancelAllReply {
            sequence: applied.seq,
            cancelled_count,
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let m = "GetOrder";
        let r = *request.get_ref();
        let _call = self
            .ctx
            .begin(&request, m, Rpc::GetOrder, &[r.account_id])?;
        let account = id(r.account_id, "account_id").map_err(|e| self.ctx.refuse(m, e))?;
        let order = id(r.order_id, "order_id").map_err(|e| self.ctx.refuse(m, e))?;
        let (live, closed) = self
            .ctx
            .core
            .query(move |e| (e.order(OrderId(order)), e.closed_order(OrderId(order))))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let catalog = &self.ctx.core.catalog;
        match (live, closed) {
            (Some(v), _) if v.account.0 == account => {
                Ok(Response::new(convert::view_out(&v, catalog)))
            }
            (None, Some(c)) if c.view.account.0 == account => {
                Ok(Response::new(convert::closed_out(&c, catalog)))
            }
            _ => Err(self.ctx.refuse(
                m,
                ApiError::not_found(
                    "UNKNOWN_ORDER",
                    "order_id",
                    format!("account {account} has no order {order} live or closed since the previous trading day (older ones are on StreamExecutions)"),
                ),
            )),
        }
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersReply>, Status> {
        let m = "ListOrders";
        let r = request.get_ref();
        let _call = self
            .ctx
            .begin(&request, m, Rpc::ListOrders, &[r.account_id])?;
        let account = id(r.account_id, "account_id").map_err(|e| self.ctx.refuse(m, e))?;
        let filter = if r.instrument.is_empty() {
            None
        } else {
            Some(
                convert::instrument(&self.ctx.core.catalog, &r.instrument, "instrument")
                    .map_err(|e| self.ctx.refuse(m, e))?,
            )
        };
        let include_closed = r.include_closed;
        let (views, closed) = self
            .ctx
            .core
            .query(move |e| {
                let closed = if include_closed {
                    e.closed_orders_of(AccountId(account), CLOSED_ORDERS_LISTED_MAX)
                } else {
                    Vec::new()
                };
                (e.orders_of(AccountId(account)), closed)
            })
            .await
            .map_err(|e| self.ctx.refuse(m, e))?;
        let catalog = &self.ctx.core.catalog;
        let wanted = |i: engine::InstrumentId| filter.is_none_or(|f| i == f);
        let live = views
            .iter()
            .filter(|v| wanted(v.instrument))
            .map(|v| convert::view_out(v, catalog));
        let closed = closed
            .iter()
            .filter(|c| wanted(c.view.instrument))
            .map(|c| convert::closed_out(c, catalog));
        let orders = live.chain(closed).collect();
        Ok(Response::new(pb::ListOrdersReply { orders }))
    }

    async fn get_trading_account(
        &self,
        request: Request<pb::GetTradingAccountRequest>,
    ) -> Result<Response<pb::TradingAccount>, Status> {
        let m = "GetTradingAccount";
        let r = *request.get_ref();
        let _call = self
            .ctx
            .begin(&request, m, Rpc::GetTradingAccount, &[r.account_id])?;
        let account = id(r.account_id, "account_id").map_err(|e| self.ctx.refuse(m, e))?;
        let view = self
            .ctx
            .core
            .query(move |e| e.account_view(AccountId(account)))
            .await
            .map_err(|e| self.ctx.refuse(m, e))?
            .ok_or_else(|| {
                self.ctx
                    .refuse(m, ApiError::engine(engine::Reject::UnknownAccount))
            })?;
        let catalog = &self.ctx.core.catalog;
        Ok(Response::new(pb::TradingAccount {
            account_id: account,
            funds_free_fen: view.free_fen,
            funds_locked_fen: view.locked_fen,
            funds_pending_fen: view.pending_fen,
            positions: view
                .positions
                .iter()
                .filter(|p| p.free_t + p.locked_t + p.pending_t > 0)
                .map(|p| pb::Position {
                    instrument: catalog.symbol(p.instrument),
                    free_t: p.free_t,
                    locked_t: p.locked_t,
                    pending_t: p.pending_t,
                })
                .collect(),
            restricted: view.restricted,
            live_orders: view.live_orders,
        }))
    }

    type OrderEntryStream = EntryReplies;

    async fn order_entry(
        &self,
        request: Request<Streaming<pb::OrderEntryRequest>>,
    ) -> Result<Response<Self::OrderEntryStream>, Status> {
        let m = "OrderEntry";
        let call = self.ctx.begin(&request, m, Rpc::OrderEntry, &[])?;
        let principal = call.principal.clone();
        let stream_slot = take_slot(&principal, true, self.ctx.limits.streams_per_principal)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let mut incoming = request.into_inner();
        let entry = Entry::new(self.ctx.limits.in_flight_per_connection);
        let reader = entry.clone();
        let this = self.clone();
        let mut shutdown = self.ctx.shutdown.clone();
        tokio::spawn(async move {
            // One future for the whole stream (made per request it cost ~0.06 us each).
            let stopping = shutdown.wait_for(|down| *down);
            tokio::pin!(stopping);
            loop {
                let next = tokio::select! {
                    biased;
                    // Shutting down: what was taken is answered, then the stream ends.
                    _ = &mut stopping => {
                        reader.push(Pending::Failed(shutting_down()));
                        break;
                    }
                    next = async {
                        if reader.room().await {
                            incoming.next().await
                        } else {
                            None
                        }
                    } => next,
                };
                match next {
                    Some(Ok(request)) => {
                        let pending = this.entry_request(&principal, request, &reader);
                        reader.push(pending);
                    }
                    Some(Err(status)) => {
                        // An over-size message on the stream is refused as a unary call's.
                        let status = crate::oversize::refusal(&status).map_or(status, Status::from);
                        reader.push(Pending::Failed(status));
                        break;
                    }
                    None => break,
                }
            }
            // Given back before the replies can end, so a client that opens its next
            // stream once this one ended never finds the slot still taken.
            drop(stream_slot);
            reader.finish();
        });
        Ok(Response::new(EntryReplies::new(
            entry,
            self.ctx.core.catalog.clone(),
        )))
    }

    type StreamExecutionsStream = ItemStream<pb::ExecutionReport>;

    async fn stream_executions(
        &self,
        request: Request<pb::StreamExecutionsRequest>,
    ) -> Result<Response<Self::StreamExecutionsStream>, Status> {
        let m = "StreamExecutions";
        let r = *request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::StreamExecutions, &[r.account_id])?;
        let account = id(r.account_id, "account_id").map_err(|e| self.ctx.refuse(m, e))?;
        let slot = take_slot(&call.principal, true, self.ctx.limits.streams_per_principal)
            .map_err(|e| self.ctx.refuse(m, e))?;
        let catalog = self.ctx.core.catalog.clone();
        let after = r.after.map(|p| (p.sequence, p.index));
        subscribe(
            &self.ctx,
            after,
            r.from_now,
            execution_keep(account),
            move |item| execution_report(item, account, &catalog),
            slot,
        )
        .map(Response::new)
        .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn propose_block(
        &self,
        request: Request<pb::ProposeBlockRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        let m = "ProposeBlock";
        let r = request.get_ref();
        let call = self
            .ctx
            .begin(&request, m, Rpc::ProposeBlock, &[r.account_id])?;
        let kind = (|| {
            Ok::<_, ApiError>(CommandKind::ProposeBlock {
                proposer: AccountId(id(r.account_id, "account_id")?),
                counterparty: AccountId(id(r.counterparty_account_id, "counterparty_account_id")?),
                client_order_id: ClientOrderId(id(r.client_order_id, "client_order_id")?),
                instrument: convert::instrument(
                    &self.ctx.core.catalog,
                    &r.instrument,
                    "instrument",
                )?,
                side: convert::side(r.side, "side")?,
                price_fen: price(r.price_fen, "price_fen")?,
                quantity_t: quantity(r.quantity_t, "quantity_t")?,
            })
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let applied = self.run(&call, kind, m).await?;
        block_reply(&applied)
            .map(Response::new)
            .map_err(|e| self.ctx.refuse(m, e))
    }

    async fn accept_block(
        &self,
        request: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        self.block_action(request, "AcceptBlock", Rpc::AcceptBlock)
            .await
    }

    async fn reject_block(
        &self,
        request: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        self.block_action(request, "RejectBlock", Rpc::RejectBlock)
            .await
    }

    async fn cancel_block(
        &self,
        request: Request<pb::BlockActionRequest>,
    ) -> Result<Response<pb::BlockReply>, Status> {
        self.block_action(request, "CancelBlock", Rpc::CancelBlock)
            .await
    }
}

impl Trading {
    async fn block_action(
        &self,
        request: Request<pb::BlockActionRequest>,
        m: &'static str,
        rpc: Rpc,
    ) -> Result<Response<pb::BlockReply>, Status> {
        let r = *request.get_ref();
        let call = self.ctx.begin(&request, m, rpc, &[r.account_id])?;
        let (account, block) = (|| {
            Ok::<_, ApiError>((
                AccountId(id(r.account_id, "account_id")?),
                OrderId(id(r.block_id, "block_id")?),
            ))
        })()
        .map_err(|e| self.ctx.refuse(m, e))?;
        let kind = match rpc {
            Rpc::AcceptBlock => CommandKind::AcceptBlock { account, block },
            Rpc::RejectBlock => CommandKind::RejectBlock { account, block },
            _ => CommandKind::CancelBlock { account, block },
        };
        let applied = self.run(&call, kind, m).await?;
        block_reply(&applied)
            .map(|mut reply| {
                reply.block_id = block.0;
                Response::new(reply)
            })
            .map_err(|e| self.ctx.refuse(m, e))
    }
}

/// How an `OrderEntry` stream ends when the server shuts down: every request answered
/// before this status was taken (and is durable); the others were not read.
fn shutting_down() -> Status {
    Status::from(ApiError::new(
        tonic::Code::Unavailable,
        "SHUTTING_DOWN",
        "",
        "the server is shutting down: the requests answered before this were taken, the \
         others were not read; send them again once it is back",
    ))
}
