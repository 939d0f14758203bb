//! Every RPC against every role, naming accounts the caller does and does not own: zero
//! unauthorized successes, and no authorized call refused for permission.

use proto::v1 as pb;
use server::auth::{Rpc, Scope, rule};
use tests::*;
use tonic::{Code, Status};

/// Each RPC, the table row it is checked against, and the account it names (0: none, or
/// an object that does not exist so only `Any` roles pass).
const RPCS: &[(&str, Rpc, u64)] = &[
    ("PlaceOrder", Rpc::PlaceOrder, M1),
    ("CancelOrder", Rpc::CancelOrder, M1),
    ("AmendOrder", Rpc::AmendOrder, M1),
    ("CancelAll", Rpc::CancelAll, M1),
    ("GetOrder", Rpc::GetOrder, M1),
    ("ListOrders", Rpc::ListOrders, M1),
    ("GetTradingAccount", Rpc::GetTradingAccount, M1),
    ("OrderEntry", Rpc::OrderEntry, M1),
    ("StreamExecutions", Rpc::StreamExecutions, M1),
    ("ProposeBlock", Rpc::ProposeBlock, M1),
    ("AcceptBlock", Rpc::AcceptBlock, M1),
    ("RejectBlock", Rpc::RejectBlock, M1),
    ("CancelBlock", Rpc::CancelBlock, M1),
    ("GetBook", Rpc::MarketData, 0),
    ("StreamMarketData", Rpc::MarketData, 0),
    ("GetTrades", Rpc::MarketData, 0),
    ("GetDailyBars", Rpc::MarketData, 0),
    ("GetMarketStatus", Rpc::MarketData, 0),
    ("AnnounceBidding", Rpc::AnnounceBidding, M1),
    ("OpenBidding", Rpc::OpenBidding, 0),
    ("PlaceBid", Rpc::PlaceBid, M1),
    ("CloseBidding", Rpc::CloseBidding, 0),
    ("AnnounceDisposal", Rpc::AnnounceDisposal, 0),
    ("OpenAccount", Rpc::OpenAccount, 0),
    ("GetAccount", Rpc::GetAccount, M1),
    ("SetAccountStatus", Rpc::SetAccountStatus, 0),
    ("GetHoldings", Rpc::GetHoldings, M1),
    ("Issue", Rpc::Issue, 0),
    ("RegisterCcer", Rpc::Issue, 0),
    ("Allocate", Rpc::Allocate, AUTHORITY),
    ("ProposeTransfer", Rpc::ProposeTransfer, M1),
    ("ApproveTransfer", Rpc::ApproveTransfer, 0),
    ("CancelTransfer", Rpc::CancelTransfer, 0),
    ("SetFourEyesThreshold", Rpc::SetFourEyesThreshold, 0),
    ("ListProposals", Rpc::ListProposals, 0),
    ("MoveToTrading", Rpc::MoveToTrading, M1),
    ("MoveFromTrading", Rpc::MoveFromTrading, M1),
    ("Freeze", Rpc::Freeze, 0),
    ("Unfreeze", Rpc::Unfreeze, 0),
    ("RegisterPledge", Rpc::RegisterPledge, BANK),
    ("ReleasePledge", Rpc::ReleasePledge, 0),
    ("EnforcePledge", Rpc::EnforcePledge, 0),
    ("ListPledges", Rpc::ListPledges, BANK),
    ("VoluntaryCancel", Rpc::VoluntaryCancel, M1),
    ("ReadJournal", Rpc::ReadJournal, 0),
    ("VerifyJournal", Rpc::VerifyJournal, 0),
    ("CreateInstrument", Rpc::Instruments, 0),
    ("HaltInstrument", Rpc::Instruments, 0),
    ("ResumeInstrument", Rpc::Instruments, 0),
    ("SetReferencePrice", Rpc::Instruments, 0),
    ("OpenTradingDay", Rpc::TradingDay, 0),
    ("SetPhase", Rpc::TradingDay, 0),
    ("SetBlockWindow", Rpc::TradingDay, 0),
    ("CreditFunds", Rpc::Funds, 0),
    ("DebitFunds", Rpc::Funds, 0),
    ("RestrictTradingAccount", Rpc::RestrictTradingAccount, 0),
    ("SetInstrumentLimits", Rpc::RiskLimits, 0),
    ("SetPositionLimit", Rpc::RiskLimits, 0),
    ("GetLargeHolders", Rpc::LargeHolders, 0),
    ("Reconcile", Rpc::Reconcile, 0),
    ("RegisterPlan", Rpc::RegisterPlan, 0),
    ("GetPlan", Rpc::GetPlan, 0),
    ("LoadEntities", Rpc::LoadEntities, 0),
    ("LoadActivity", Rpc::LoadActivity, 0),
    ("RecordVerified", Rpc::RecordVerified, 0),
    ("RunAllocation", Rpc::RunAllocation, 0),
    ("Surrender", Rpc::Surrender, E1),
    ("GetCompliance", Rpc::GetCompliance, E1),
    ("ListCompliance", Rpc::ListCompliance, 0),
    ("GetTotals", Rpc::GetTotals, 0),
    ("CloseYear", Rpc::CloseYear, 0),
    ("ExportReport", Rpc::ExportReport, 0),
    ("FixCarryOver", Rpc::FixCarryOver, 0),
    ("ApplyCarryOver", Rpc::ApplyCarryOver, E1),
    ("ConvertCarryOver", Rpc::ConvertCarryOver, 0),
    ("GetCarryOver", Rpc::GetCarryOver, E1),
    ("RegisterFactors", Rpc::RegisterFactors, 0),
    ("SetMonitoringPlan", Rpc::SetMonitoringPlan, E1),
    ("DepositMonth", Rpc::DepositMonth, E1),
    ("SubmitReport", Rpc::SubmitReport, E1),
    ("ConfirmReport", Rpc::ConfirmReport, E1),
    ("GetMonth", Rpc::GetMonth, E1),
    ("GetEmissionsReport", Rpc::GetEmissionsReport, E1),
    (
        "RegisterVerificationRules",
        Rpc::RegisterVerificationRules,
        0,
    ),
    ("RegisterBody", Rpc::RegisterBody, 0),
    ("RecordEngagement", Rpc::Assign, E1),
    ("AssignBody", Rpc::Assign, E1),
    ("ReviewStep", Rpc::Review, E1),
    ("RaiseFinding", Rpc::Review, E1),
    ("ResolveFinding", Rpc::Review, E1),
    ("Conclude", Rpc::Review, E1),
    ("Notify", Rpc::Notify, E1),
    ("Object", Rpc::Object, E1),
    ("DecideObjection", Rpc::Notify, E1),
    ("GetVerificationFile", Rpc::GetVerificationFile, E1),
    ("ListVerificationQueue", Rpc::ListVerificationQueue, 0),
    ("ListBodies", Rpc::ListBodies, 0),
    // Last: it ends the trading day.
    ("CloseTradingDay", Rpc::TradingDay, 0),
];

fn key(n: &mut u64) -> String {
    *n += 1;
    format!("authz-{n}")
}

async fn invoke(c: &mut Clients, name: &str, n: &mut u64) -> Result<(), Status> {
    let unit = || "CEA2025".to_string();
    match name {
        "PlaceOrder" => c
            .trading
            .place_order(limit(M1, 90_000 + *n, pb::Side::Buy, 8_000, 1))
            .await
            .map(drop),
        "CancelOrder" => c
            .trading
            .cancel_order(pb::CancelOrderRequest {
                account_id: M1,
                order_id: 999_999,
            })
            .await
            .map(drop),
        "AmendOrder" => c
            .trading
            .amend_order(pb::AmendOrderRequest {
                account_id: M1,
                order_id: 999_999,
                price_fen: 8_000,
                quantity_t: 0,
            })
            .await
            .map(drop),
        "CancelAll" => c
            .trading
            .cancel_all(pb::CancelAllRequest {
                account_id: M1,
                instrument: String::new(),
            })
            .await
            .map(drop),
        "GetOrder" => c
            .trading
            .get_order(pb::GetOrderRequest {
                account_id: M1,
                order_id: 1,
            })
            .await
            .map(drop),
        "ListOrders" => c
            .trading
            .list_orders(pb::ListOrdersRequest {
                account_id: M1,
                instrument: String::new(),
                include_closed: false,
            })
            .await
            .map(drop),
        "GetTradingAccount" => c
            .trading
            .get_trading_account(pb::GetTradingAccountRequest { account_id: M1 })
            .await
            .map(drop),
        "OrderEntry" => {
            *n += 1;
            let request = pb::OrderEntryRequest {
                correlation_id: 1,
                request: Some(pb::order_entry_request::Request::Place(limit(
                    M1,
                    80_000 + *n,
                    pb::Side::Buy,
                    8_000,
                    1,
                ))),
            };
            let mut replies = c
                .trading
                .order_entry(tokio_stream::iter(vec![request]))
                .await?
                .into_inner();
            match replies.message().await? {
                Some(reply) => match reply.reply.and_then(|r| r.rejection) {
                    Some(r)
                        if r.reason == "ACCOUNT_NOT_ALLOWED" || r.reason == "ROLE_NOT_ALLOWED" =>
                    {
                        // The in-band refusal as the status a unary call would have given.
                        let reason = if r.reason == "ACCOUNT_NOT_ALLOWED" {
                            "ACCOUNT_NOT_ALLOWED"
                        } else {
                            "ROLE_NOT_ALLOWED"
                        };
                        Err(Status::from(server::error::ApiError::permission(
                            reason,
                            r.message.clone(),
                        )))
                    }
                    _ => Ok(()),
                },
                None => Err(Status::internal("no reply")),
            }
        }
        "StreamExecutions" => c
            .trading
            .stream_executions(pb::StreamExecutionsRequest {
                account_id: M1,
                after: None,
                from_now: true,
            })
            .await
            .map(drop),
        "ProposeBlock" => c
            .trading
            .propose_block(pb::ProposeBlockRequest {
                account_id: M1,
                counterparty_account_id: M2,
                client_order_id: 1,
                instrument: unit(),
                side: pb::Side::Sell as i32,
                price_fen: 8_500,
                quantity_t: 100_000,
            })
            .await
            .map(drop),
        "AcceptBlock" => c
            .trading
            .accept_block(pb::BlockActionRequest {
                account_id: M1,
                block_id: 999_999,
            })
            .await
            .map(drop),
        "RejectBlock" => c
            .trading
            .reject_block(pb::BlockActionRequest {
                account_id: M1,
                block_id: 999_999,
            })
            .await
            .map(drop),
        "CancelBlock" => c
            .trading
            .cancel_block(pb::BlockActionRequest {
                account_id: M1,
                block_id: 999_999,
            })
            .await
            .map(drop),
        "GetBook" => c
            .market
            .get_book(pb::GetBookRequest {
                instrument: unit(),
                depth: 5,
            })
            .await
            .map(drop),
        "StreamMarketData" => c
            .market
            .stream_market_data(pb::StreamMarketDataRequest {
                instruments: vec![],
                after: None,
                from_now: true,
            })
            .await
            .map(drop),
        "GetTrades" => c
            .market
            .get_trades(pb::GetTradesRequest {
                instrument: unit(),
                after_trade_id: 0,
                limit: 10,
            })
            .await
            .map(drop),
        "GetDailyBars" => c
            .market
            .get_daily_bars(pb::GetDailyBarsRequest {
                instrument: unit(),
                from_date: 0,
                to_date: 0,
            })
            .await
            .map(drop),
        "GetMarketStatus" => c
            .market
            .get_market_status(pb::GetMarketStatusRequest {})
            .await
            .map(drop),
        "AnnounceBidding" => c
            .auction
            .announce_bidding(pb::AnnounceBiddingRequest {
                seller_account_id: M1,
                instrument: unit(),
                quantity_t: 100_000,
                reserve: pb::ReserveRule::PreviousClose as i32,
                pricing: pb::Pricing::Uniform as i32,
                bidder_max_bp: 0,
            })
            .await
            .map(drop),
        "OpenBidding" => c
            .auction
            .open_bidding(pb::AuctionActionRequest {
                auction_id: 999_999,
            })
            .await
            .map(drop),
        "PlaceBid" => c
            .auction
            .place_bid(pb::PlaceBidRequest {
                auction_id: 999_999,
                account_id: M1,
                client_order_id: 1,
                price_fen: 8_500,
                quantity_t: 10,
            })
            .await
            .map(drop),
        "CloseBidding" => c
            .auction
            .close_bidding(pb::AuctionActionRequest {
                auction_id: 999_999,
            })
            .await
            .map(drop),
        "AnnounceDisposal" => c
            .auction
            .announce_disposal(pb::AnnounceDisposalRequest {
                pledge_id: 999_999,
                reserve: pb::ReserveRule::PreviousClose as i32,
                pricing: pb::Pricing::Uniform as i32,
                bidder_max_bp: 0,
            })
            .await
            .map(drop),
        "OpenAccount" => {
            let k = key(n);
            c.registry
                .open_account(pb::OpenAccountRequest {
                    idempotency_key: k,
                    account_id: 9_000 + *n,
                    account_type: pb::AccountType::MemberFirm as i32,
                    sector: 0,
                    name: "new".into(),
                })
                .await
                .map(drop)
        }
        "GetAccount" => c
            .registry
            .get_account(pb::GetAccountRequest { account_id: M1 })
            .await
            .map(drop),
        "SetAccountStatus" => c
            .registry
            .set_account_status(pb::SetAccountStatusRequest {
                idempotency_key: key(n),
                account_id: M3,
                status: pb::AccountStatus::Open as i32,
            })
            .await
            .map(drop),
        "GetHoldings" => c
            .registry
            .get_holdings(pb::GetHoldingsRequest { account_id: M1 })
            .await
            .map(drop),
        "Issue" => c
            .registry
            .issue(pb::IssueRequest {
                idempotency_key: key(n),
                authority_account_id: AUTHORITY,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "Allocate" => c
            .registry
            .allocate(pb::TransferRequest {
                idempotency_key: key(n),
                from_account_id: AUTHORITY,
                to_account_id: E1,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "ProposeTransfer" => c
            .registry
            .propose_transfer(pb::TransferRequest {
                idempotency_key: key(n),
                from_account_id: M1,
                to_account_id: M2,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "ApproveTransfer" => c
            .registry
            .approve_transfer(pb::ProposalRequest {
                idempotency_key: key(n),
                proposal_id: 999_999,
            })
            .await
            .map(drop),
        "CancelTransfer" => c
            .registry
            .cancel_transfer(pb::ProposalRequest {
                idempotency_key: key(n),
                proposal_id: 999_999,
            })
            .await
            .map(drop),
        "SetFourEyesThreshold" => c
            .registry
            .set_four_eyes_threshold(pb::FourEyesRequest {
                idempotency_key: key(n),
                threshold_t: 1_000_000_000,
            })
            .await
            .map(drop),
        "ListProposals" => c
            .registry
            .list_proposals(pb::ListProposalsRequest { pending_only: true })
            .await
            .map(drop),
        "MoveToTrading" => c
            .registry
            .move_to_trading(pb::MoveRequest {
                idempotency_key: key(n),
                account_id: M1,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "MoveFromTrading" => c
            .registry
            .move_from_trading(pb::MoveRequest {
                idempotency_key: key(n),
                account_id: M1,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "Freeze" => c
            .registry
            .freeze(pb::FreezeRequest {
                idempotency_key: key(n),
                account_id: M3,
                unit: unit(),
                quantity_t: 1,
                court_order: 7 + *n,
            })
            .await
            .map(drop),
        "Unfreeze" => c
            .registry
            .unfreeze(pb::FreezeRequest {
                idempotency_key: key(n),
                account_id: M3,
                unit: unit(),
                quantity_t: 0,
                court_order: 999_999,
            })
            .await
            .map(drop),
        "RegisterPledge" => c
            .registry
            .register_pledge(pb::PledgeRequest {
                idempotency_key: key(n),
                pledgor_account_id: M3,
                pledgee_account_id: BANK,
                unit: unit(),
                quantity_t: 1,
                secured_fen: 1,
            })
            .await
            .map(drop),
        "ReleasePledge" => c
            .registry
            .release_pledge(pb::PledgeActionRequest {
                idempotency_key: key(n),
                pledge_id: 999_999,
                enforcement: 0,
                claim_fen: 0,
            })
            .await
            .map(drop),
        "EnforcePledge" => c
            .registry
            .enforce_pledge(pb::PledgeActionRequest {
                idempotency_key: key(n),
                pledge_id: 999_999,
                enforcement: pb::Enforcement::ToPledgee as i32,
                claim_fen: 0,
            })
            .await
            .map(drop),
        "ListPledges" => c
            .registry
            .list_pledges(pb::ListPledgesRequest {
                pledgee_account_id: BANK,
            })
            .await
            .map(drop),
        "VoluntaryCancel" => c
            .registry
            .voluntary_cancel(pb::MoveRequest {
                idempotency_key: key(n),
                account_id: M1,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "ReadJournal" => c
            .registry
            .read_journal(pb::ReadJournalRequest {
                from_sequence: 1,
                limit: 5,
            })
            .await
            .map(drop),
        "VerifyJournal" => c
            .registry
            .verify_journal(pb::VerifyJournalRequest {})
            .await
            .map(drop),
        "CreateInstrument" => c
            .admin
            .create_instrument(pb::CreateInstrumentRequest {
                vintage: 2026,
                reference_price_fen: 9_000,
                ..Default::default()
            })
            .await
            .map(drop),
        "HaltInstrument" => c
            .admin
            .halt_instrument(pb::HaltInstrumentRequest {
                instrument: unit(),
                cancel_orders: false,
            })
            .await
            .map(drop),
        "ResumeInstrument" => c
            .admin
            .resume_instrument(pb::InstrumentRequest { instrument: unit() })
            .await
            .map(drop),
        "SetReferencePrice" => c
            .admin
            .set_reference_price(pb::SetReferencePriceRequest {
                instrument: unit(),
                price_fen: 8_500,
            })
            .await
            .map(drop),
        "OpenTradingDay" => c
            .admin
            .open_trading_day(pb::OpenTradingDayRequest {
                trading_date: 20_261_130,
            })
            .await
            .map(drop),
        "SetPhase" => c
            .admin
            .set_phase(pb::SetPhaseRequest {
                phase: pb::Phase::Continuous as i32,
            })
            .await
            .map(drop),
        "SetBlockWindow" => c
            .admin
            .set_block_window(pb::SetBlockWindowRequest { open: true })
            .await
            .map(drop),
        "CreditFunds" => c
            .admin
            .credit_funds(pb::FundsRequest {
                transfer_id: 50_000 + *n,
                account_id: M1,
                amount_fen: 1,
            })
            .await
            .map(drop),
        "DebitFunds" => c
            .admin
            .debit_funds(pb::FundsRequest {
                transfer_id: 60_000 + *n,
                account_id: M1,
                amount_fen: 1,
            })
            .await
            .map(drop),
        "RestrictTradingAccount" => c
            .admin
            .restrict_trading_account(pb::RestrictRequest {
                account_id: M3,
                restricted: false,
                cancel_orders: false,
            })
            .await
            .map(drop),
        "SetInstrumentLimits" => c
            .admin
            .set_instrument_limits(pb::SetInstrumentLimitsRequest {
                instrument: unit(),
                large_holder_t: 1_000_000_000,
                ..Default::default()
            })
            .await
            .map(drop),
        "SetPositionLimit" => c
            .admin
            .set_position_limit(pb::SetPositionLimitRequest {
                account_id: M3,
                instrument: unit(),
                limit_t: 1_000_000_000,
                unlimited: false,
            })
            .await
            .map(drop),
        "GetLargeHolders" => c
            .admin
            .get_large_holders(pb::GetLargeHoldersRequest { instrument: unit() })
            .await
            .map(drop),
        "Reconcile" => c.admin.reconcile(pb::ReconcileRequest {}).await.map(drop),
        "CloseTradingDay" => c
            .admin
            .close_trading_day(pb::CloseTradingDayRequest {})
            .await
            .map(drop),
        "RegisterPlan" => c
            .compliance
            .register_plan(pb::RegisterPlanRequest {
                idempotency_key: key(n),
                plan_toml: "not a plan".into(),
            })
            .await
            .map(drop),
        "GetPlan" => c
            .compliance
            .get_plan(pb::GetPlanRequest {
                year: 2024,
                plan_version: String::new(),
            })
            .await
            .map(drop),
        "LoadEntities" => c
            .compliance
            .load_entities(pb::LoadEntitiesRequest {
                idempotency_key: key(n),
                rows: Vec::new(),
            })
            .await
            .map(drop),
        "LoadActivity" => c
            .compliance
            .load_activity(pb::LoadActivityRequest {
                idempotency_key: key(n),
                year: 2024,
                rows: Vec::new(),
            })
            .await
            .map(drop),
        "RecordVerified" => c
            .compliance
            .record_verified(pb::RecordVerifiedRequest {
                idempotency_key: key(n),
                year: 2024,
                rows: Vec::new(),
            })
            .await
            .map(drop),
        "RunAllocation" => c
            .compliance
            .run_allocation(pb::RunAllocationRequest {
                idempotency_key: key(n),
                year: 2024,
                plan_version: "none".into(),
                kind: pb::RunKind::TrueUp as i32,
            })
            .await
            .map(drop),
        "Surrender" => c
            .compliance
            .surrender(pb::SurrenderRequest {
                idempotency_key: key(n),
                account_id: E1,
                unit: unit(),
                quantity_t: 1,
                year: 2024,
            })
            .await
            .map(drop),
        "GetCompliance" => c
            .compliance
            .get_compliance(pb::GetComplianceRequest {
                year: 2024,
                account_id: E1,
            })
            .await
            .map(drop),
        "ListCompliance" => c
            .compliance
            .list_compliance(pb::ListComplianceRequest {
                year: 2024,
                ..Default::default()
            })
            .await
            .map(drop),
        "GetTotals" => c
            .compliance
            .get_totals(pb::GetTotalsRequest {
                year: 2024,
                by: pb::TotalsBy::Sector as i32,
            })
            .await
            .map(drop),
        "CloseYear" => c
            .compliance
            .close_year(pb::CloseYearRequest {
                idempotency_key: key(n),
                year: 2019,
                ..Default::default()
            })
            .await
            .map(drop),
        "ExportReport" => c
            .compliance
            .export_report(pb::ExportReportRequest {
                year: 2024,
                report: pb::Report::Status as i32,
            })
            .await
            .map(drop),
        "FixCarryOver" => c
            .carry_over
            .fix_carry_over(pb::FixCarryOverRequest {
                idempotency_key: key(n),
                year: 2025,
                plan_version: "no-such-plan".into(),
            })
            .await
            .map(drop),
        "ApplyCarryOver" => c
            .carry_over
            .apply_carry_over(pb::ApplyCarryOverRequest {
                idempotency_key: key(n),
                year: 2025,
                account_id: E1,
                unit: unit(),
                quantity_t: 1,
            })
            .await
            .map(drop),
        "ConvertCarryOver" => c
            .carry_over
            .convert_carry_over(pb::ConvertCarryOverRequest {
                idempotency_key: key(n),
                year: 2025,
            })
            .await
            .map(drop),
        "GetCarryOver" => c
            .carry_over
            .get_carry_over(pb::GetCarryOverRequest {
                year: 2025,
                account_id: E1,
            })
            .await
            .map(drop),
        "RegisterCcer" => c
            .registry
            .register_ccer(pb::RegisterCcerRequest {
                idempotency_key: key(n),
                authority_account_id: AUTHORITY,
                project_id: 4_242,
                registered: 20_240_301,
                vintage: 2024,
                quantity_t: 1,
            })
            .await
            .map(drop),
        other => invoke_mrv(c, other, n).await,
    }
}

/// The emissions accounting and verification calls (E1's, year 2025).
async fn invoke_mrv(c: &mut Clients, name: &str, n: &mut u64) -> Result<(), Status> {
    let (year, account_id) = (2025, E1);
    let (e, v) = (&mut c.emissions, &mut c.verification);
    match name {
        "RegisterFactors" => e
            .register_factors(pb::RegisterFactorsRequest {
                idempotency_key: key(n),
                year,
                factors_toml: "not a factors file".into(),
            })
            .await
            .map(drop),
        "SetMonitoringPlan" => e
            .set_monitoring_plan(pb::SetMonitoringPlanRequest {
                idempotency_key: key(n),
                account_id,
                year,
                ..Default::default()
            })
            .await
            .map(drop),
        "DepositMonth" => e
            .deposit_month(pb::DepositMonthRequest {
                idempotency_key: key(n),
                account_id,
                year,
                month: 1,
                ..Default::default()
            })
            .await
            .map(drop),
        "SubmitReport" => e
            .submit_report(pb::SubmitReportRequest {
                idempotency_key: key(n),
                account_id,
                year,
            })
            .await
            .map(drop),
        "ConfirmReport" => e
            .confirm_report(pb::ConfirmReportRequest {
                idempotency_key: key(n),
                account_id,
                year,
            })
            .await
            .map(drop),
        "GetMonth" => e
            .get_month(pb::GetMonthRequest {
                account_id,
                year,
                month: 1,
            })
            .await
            .map(drop),
        "GetEmissionsReport" => e
            .get_emissions_report(pb::GetEmissionsReportRequest { account_id, year })
            .await
            .map(drop),
        "RegisterVerificationRules" => v
            .register_verification_rules(pb::RegisterVerificationRulesRequest {
                idempotency_key: key(n),
                rules_toml: "not rules".into(),
            })
            .await
            .map(drop),
        "RegisterBody" => v
            .register_body(pb::RegisterBodyRequest {
                idempotency_key: key(n),
                body_id: 7,
                name: "Body Seven".into(),
                credit_code: String::new(),
            })
            .await
            .map(drop),
        "RecordEngagement" => v
            .record_engagement(pb::RecordEngagementRequest {
                idempotency_key: key(n),
                year,
                account_id,
                body_id: 99,
            })
            .await
            .map(drop),
        "AssignBody" => v
            .assign_body(pb::AssignBodyRequest {
                idempotency_key: key(n),
                year,
                account_id,
                body_id: 99,
            })
            .await
            .map(drop),
        "ReviewStep" => v
            .review_step(pb::ReviewStepRequest {
                idempotency_key: key(n),
                year,
                account_id,
                stage: "document_review".into(),
            })
            .await
            .map(drop),
        "RaiseFinding" => v
            .raise_finding(pb::RaiseFindingRequest {
                idempotency_key: key(n),
                year,
                account_id,
                month: 1,
                role: "consumed".into(),
                item: "coke".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "ResolveFinding" => v
            .resolve_finding(pb::ResolveFindingRequest {
                idempotency_key: key(n),
                year,
                account_id,
                finding_id: 1,
                estimate: String::new(),
            })
            .await
            .map(drop),
        "Conclude" => v
            .conclude(pb::ConcludeRequest {
                idempotency_key: key(n),
                year,
                account_id,
            })
            .await
            .map(drop),
        "Notify" => v
            .notify(pb::NotifyRequest {
                idempotency_key: key(n),
                year,
                account_id,
            })
            .await
            .map(drop),
        "Object" => v
            .object(pb::ObjectRequest {
                idempotency_key: key(n),
                year,
                account_id,
                reason: "no".into(),
            })
            .await
            .map(drop),
        "DecideObjection" => v
            .decide_objection(pb::DecideObjectionRequest {
                idempotency_key: key(n),
                year,
                account_id,
                upheld: false,
                reason: "no".into(),
            })
            .await
            .map(drop),
        "GetVerificationFile" => v
            .get_verification_file(pb::GetVerificationFileRequest { year, account_id })
            .await
            .map(drop),
        "ListVerificationQueue" => v
            .list_verification_queue(pb::ListVerificationQueueRequest {
                year,
                ..Default::default()
            })
            .await
            .map(drop),
        "ListBodies" => v.list_bodies(pb::ListBodiesRequest {}).await.map(drop),
        other => panic!("no call for {other}"),
    }
}

fn denied(status: &Status) -> bool {
    status.code() == Code::PermissionDenied
        && matches!(
            reason(status).as_str(),
            "ROLE_NOT_ALLOWED" | "ACCOUNT_NOT_ALLOWED"
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_against_every_role_has_zero_unauthorized_successes() {
    let server = TestServer::start();
    open_market(&server).await;
    let channel = server.channel().await;
    let mut n = 0u64;
    let mut unauthorized_successes = Vec::new();
    let mut wrongly_denied = Vec::new();
    let mut cells = 0;
    for &(name, rpc, account) in RPCS {
        // No token at all: always UNAUTHENTICATED.
        let mut anonymous = Clients::new(channel.clone(), None);
        match invoke(&mut anonymous, name, &mut n).await {
            Err(s) if s.code() == Code::Unauthenticated => {}
            other => unauthorized_successes.push(format!("{name} without a token: {other:?}")),
        }
        let mut bad = Clients::new(channel.clone(), Some("not-a-real-token-at-all"));
        match invoke(&mut bad, name, &mut n).await {
            Err(s) if s.code() == Code::Unauthenticated => {}
            other => unauthorized_successes.push(format!("{name} with a bad token: {other:?}")),
        }
        for &(principal, role, token, owned) in PRINCIPALS {
            cells += 1;
            // A province's or a body's scope passes the table and is checked against the
            // registry after (OUTSIDE_JURISDICTION, BODY_NOT_ASSIGNED: the verification
            // tests take those cells one by one).
            let allowed = rule(rpc).iter().any(|(r, scope)| {
                format!("{r:?}").eq_ignore_ascii_case(role)
                    && match scope {
                        Scope::Own => owned.contains(&account),
                        Scope::Any | Scope::Jurisdiction | Scope::Assigned => true,
                    }
            });
            let mut c = Clients::new(channel.clone(), Some(token));
            let result = invoke(&mut c, name, &mut n).await;
            match (&result, allowed) {
                (Err(s), false) if denied(s) => {}
                (_, false) => {
                    unauthorized_successes.push(format!("{name} as {principal}: {result:?}"))
                }
                (Err(s), true) if denied(s) => {
                    wrongly_denied.push(format!("{name} as {principal}: {s:?}"))
                }
                (_, true) => {}
            }
        }
    }
    assert!(cells >= 98 * 13, "{cells} cells");
    assert!(
        unauthorized_successes.is_empty(),
        "{} unauthorized successes:\n{}",
        unauthorized_successes.len(),
        unauthorized_successes.join("\n")
    );
    assert!(
        wrongly_denied.is_empty(),
        "wrongly denied:\n{}",
        wrongly_denied.join("\n")
    );
}

#[test]
fn every_method_of_the_protos_is_in_the_matrix() {
    let missing: Vec<&str> = server::methods::METHODS
        .iter()
        .map(|(path, _)| path.rsplit('/').next().unwrap_or(path))
        .filter(|m| !RPCS.iter().any(|(name, _, _)| name == m))
        .collect();
    assert!(missing.is_empty(), "not in RPCS: {missing:?}");
    for (path, rpc) in server::methods::METHODS {
        let name = path.rsplit('/').next().unwrap_or(path);
        let row = RPCS.iter().find(|(n, _, _)| *n == name).map(|r| r.1);
        assert_eq!(row, Some(rpc), "{path}");
    }
}

#[test]
fn the_table_says_what_a_national_registry_needs() {
    let roles = |rpc| {
        rule(rpc)
            .iter()
            .map(|(r, s)| (format!("{r:?}"), *s))
            .collect::<Vec<_>>()
    };
    // Only members and entities trade, for their own accounts.
    assert_eq!(
        roles(Rpc::PlaceOrder),
        vec![
            ("Member".to_string(), Scope::Own),
            ("Entity".to_string(), Scope::Own)
        ]
    );
    // Only the authority issues; nobody else touches supply.
    assert_eq!(
        roles(Rpc::Issue),
        vec![("Authority".to_string(), Scope::Any)]
    );
    // Verified emissions: the verifier, or the authority that confirms them (README and
    // proto say the same).
    assert_eq!(
        roles(Rpc::RecordVerified),
        vec![
            ("Verifier".to_string(), Scope::Any),
            ("Authority".to_string(), Scope::Any)
        ]
    );
    // Carry-over: the authority fixes and converts; each entity applies for itself.
    assert_eq!(
        roles(Rpc::ApplyCarryOver),
        vec![("Entity".to_string(), Scope::Own)]
    );
    // Pledges belong to the pledgee bank.
    assert_eq!(
        roles(Rpc::EnforcePledge),
        vec![("Pledgee".to_string(), Scope::Own)]
    );
    // The auditor reads but never writes.
    for rpc in [
        Rpc::PlaceOrder,
        Rpc::Issue,
        Rpc::Funds,
        Rpc::ProposeTransfer,
        Rpc::OpenAccount,
    ] {
        assert!(!roles(rpc).iter().any(|(r, _)| r == "Auditor"), "{rpc:?}");
    }
    assert!(
        roles(Rpc::VerifyJournal)
            .iter()
            .any(|(r, _)| r == "Auditor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_the_exchange_are_barred_from_trading_and_nothing_else() {
    // An exchange employee with a member login on M1: the same role and account as m1,
    // flagged as staff.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = test_config(dir.path());
    let tokens = config
        .tokens_file
        .clone()
        .unwrap_or_else(|| panic!("tokens"));
    let mut text = std::fs::read_to_string(&tokens).unwrap_or_else(|e| panic!("{e}"));
    text.push_str(&format!(
        "[[principal]]\nid = 900\nname = \"clerk\"\nrole = \"member\"\ntoken = \"token-staff-0001\"\naccounts = [{M1}]\nstaff_of = \"exchange\"\n"
    ));
    std::fs::write(&tokens, text).unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(config);
    open_market(&server).await;
    let channel = server.channel().await;
    let mut n = 0u64;
    let (mut barred, mut barred_member) = (Vec::new(), Vec::new());
    for &(name, _, _) in RPCS {
        let mut staff = Clients::new(channel.clone(), Some("token-staff-0001"));
        if let Err(s) = invoke(&mut staff, name, &mut n).await
            && reason(&s) == "STAFF_BARRED"
        {
            assert_eq!(s.code(), Code::PermissionDenied, "{name}");
            barred.push(name);
        }
        let mut m1 = Clients::new(channel.clone(), Some(token("m1")));
        if let Err(s) = invoke(&mut m1, name, &mut n).await
            && reason(&s) == "STAFF_BARRED"
        {
            barred_member.push(name);
        }
    }
    assert_eq!(
        barred,
        [
            "PlaceOrder",
            "AmendOrder",
            "OrderEntry",
            "ProposeBlock",
            "AcceptBlock",
            "PlaceBid"
        ]
    );
    assert!(barred_member.is_empty(), "{barred_member:?}");
}
