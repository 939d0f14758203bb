//! Every gRPC method of `carbonx.v1` with the row of the authorization table
//! ([`crate::auth::rule`]) its handler checks: what the API reference (`carbonx docs api`)
//! prints as "who may call". A test there holds it equal to the protos' methods.

use crate::auth::Rpc;

/// (`package.Service/Method`, its authorization row), in the protos' order.
pub const METHODS: [(&str, Rpc); 98] = [
    ("carbonx.v1.AdminService/CreateInstrument", Rpc::Instruments),
    ("carbonx.v1.AdminService/HaltInstrument", Rpc::Instruments),
    ("carbonx.v1.AdminService/ResumeInstrument", Rpc::Instruments),
    ("carbonx.v1.AdminService/OpenTradingDay", Rpc::TradingDay),
    ("carbonx.v1.AdminService/SetPhase", Rpc::TradingDay),
    ("carbonx.v1.AdminService/CloseTradingDay", Rpc::TradingDay),
    ("carbonx.v1.AdminService/SetBlockWindow", Rpc::TradingDay),
    (
        "carbonx.v1.AdminService/SetReferencePrice",
        Rpc::Instruments,
    ),
    ("carbonx.v1.AdminService/CreditFunds", Rpc::Funds),
    ("carbonx.v1.AdminService/DebitFunds", Rpc::Funds),
    (
        "carbonx.v1.AdminService/RestrictTradingAccount",
        Rpc::RestrictTradingAccount,
    ),
    (
        "carbonx.v1.AdminService/SetInstrumentLimits",
        Rpc::RiskLimits,
    ),
    ("carbonx.v1.AdminService/SetPositionLimit", Rpc::RiskLimits),
    ("carbonx.v1.AdminService/GetLargeHolders", Rpc::LargeHolders),
    ("carbonx.v1.AdminService/Reconcile", Rpc::Reconcile),
    (
        "carbonx.v1.AuctionService/AnnounceBidding",
        Rpc::AnnounceBidding,
    ),
    ("carbonx.v1.AuctionService/OpenBidding", Rpc::OpenBidding),
    ("carbonx.v1.AuctionService/PlaceBid", Rpc::PlaceBid),
    ("carbonx.v1.AuctionService/CloseBidding", Rpc::CloseBidding),
    (
        "carbonx.v1.AuctionService/AnnounceDisposal",
        Rpc::AnnounceDisposal,
    ),
    (
        "carbonx.v1.CarryOverService/FixCarryOver",
        Rpc::FixCarryOver,
    ),
    (
        "carbonx.v1.CarryOverService/ApplyCarryOver",
        Rpc::ApplyCarryOver,
    ),
    (
        "carbonx.v1.CarryOverService/ConvertCarryOver",
        Rpc::ConvertCarryOver,
    ),
    (
        "carbonx.v1.CarryOverService/GetCarryOver",
        Rpc::GetCarryOver,
    ),
    (
        "carbonx.v1.ComplianceService/RegisterPlan",
        Rpc::RegisterPlan,
    ),
    (
        "carbonx.v1.EmissionsService/RegisterFactors",
        Rpc::RegisterFactors,
    ),
    (
        "carbonx.v1.EmissionsService/SetMonitoringPlan",
        Rpc::SetMonitoringPlan,
    ),
    (
        "carbonx.v1.EmissionsService/DepositMonth",
        Rpc::DepositMonth,
    ),
    (
        "carbonx.v1.EmissionsService/SubmitReport",
        Rpc::SubmitReport,
    ),
    (
        "carbonx.v1.EmissionsService/ConfirmReport",
        Rpc::ConfirmReport,
    ),
    ("carbonx.v1.EmissionsService/GetMonth", Rpc::GetMonth),
    (
        "carbonx.v1.EmissionsService/GetEmissionsReport",
        Rpc::GetEmissionsReport,
    ),
    ("carbonx.v1.ComplianceService/GetPlan", Rpc::GetPlan),
    (
        "carbonx.v1.ComplianceService/LoadEntities",
        Rpc::LoadEntities,
    ),
    (
        "carbonx.v1.ComplianceService/LoadActivity",
        Rpc::LoadActivity,
    ),
    (
        "carbonx.v1.ComplianceService/RecordVerified",
        Rpc::RecordVerified,
    ),
    (
        "carbonx.v1.ComplianceService/RunAllocation",
        Rpc::RunAllocation,
    ),
    ("carbonx.v1.ComplianceService/Surrender", Rpc::Surrender),
    (
        "carbonx.v1.ComplianceService/GetCompliance",
        Rpc::GetCompliance,
    ),
    (
        "carbonx.v1.ComplianceService/ListCompliance",
        Rpc::ListCompliance,
    ),
    ("carbonx.v1.ComplianceService/GetTotals", Rpc::GetTotals),
    ("carbonx.v1.ComplianceService/CloseYear", Rpc::CloseYear),
    (
        "carbonx.v1.ComplianceService/ExportReport",
        Rpc::ExportReport,
    ),
    ("carbonx.v1.MarketDataService/GetBook", Rpc::MarketData),
    (
        "carbonx.v1.MarketDataService/StreamMarketData",
        Rpc::MarketData,
    ),
    ("carbonx.v1.MarketDataService/GetTrades", Rpc::MarketData),
    ("carbonx.v1.MarketDataService/GetDailyBars", Rpc::MarketData),
    (
        "carbonx.v1.MarketDataService/GetMarketStatus",
        Rpc::MarketData,
    ),
    ("carbonx.v1.RegistryService/OpenAccount", Rpc::OpenAccount),
    ("carbonx.v1.RegistryService/GetAccount", Rpc::GetAccount),
    (
        "carbonx.v1.RegistryService/SetAccountStatus",
        Rpc::SetAccountStatus,
    ),
    ("carbonx.v1.RegistryService/GetHoldings", Rpc::GetHoldings),
    ("carbonx.v1.RegistryService/Issue", Rpc::Issue),
    ("carbonx.v1.RegistryService/RegisterCcer", Rpc::Issue),
    ("carbonx.v1.RegistryService/Allocate", Rpc::Allocate),
    (
        "carbonx.v1.RegistryService/ProposeTransfer",
        Rpc::ProposeTransfer,
    ),
    (
        "carbonx.v1.RegistryService/ApproveTransfer",
        Rpc::ApproveTransfer,
    ),
    (
        "carbonx.v1.RegistryService/CancelTransfer",
        Rpc::CancelTransfer,
    ),
    (
        "carbonx.v1.RegistryService/SetFourEyesThreshold",
        Rpc::SetFourEyesThreshold,
    ),
    (
        "carbonx.v1.RegistryService/ListProposals",
        Rpc::ListProposals,
    ),
    (
        "carbonx.v1.RegistryService/MoveToTrading",
        Rpc::MoveToTrading,
    ),
    (
        "carbonx.v1.RegistryService/MoveFromTrading",
        Rpc::MoveFromTrading,
    ),
    ("carbonx.v1.RegistryService/Freeze", Rpc::Freeze),
    ("carbonx.v1.RegistryService/Unfreeze", Rpc::Unfreeze),
    (
        "carbonx.v1.RegistryService/RegisterPledge",
        Rpc::RegisterPledge,
    ),
    (
        "carbonx.v1.RegistryService/ReleasePledge",
        Rpc::ReleasePledge,
    ),
    (
        "carbonx.v1.RegistryService/EnforcePledge",
        Rpc::EnforcePledge,
    ),
    ("carbonx.v1.RegistryService/ListPledges", Rpc::ListPledges),
    (
        "carbonx.v1.RegistryService/VoluntaryCancel",
        Rpc::VoluntaryCancel,
    ),
    ("carbonx.v1.RegistryService/ReadJournal", Rpc::ReadJournal),
    (
        "carbonx.v1.RegistryService/VerifyJournal",
        Rpc::VerifyJournal,
    ),
    ("carbonx.v1.TradingService/PlaceOrder", Rpc::PlaceOrder),
    ("carbonx.v1.TradingService/CancelOrder", Rpc::CancelOrder),
    ("carbonx.v1.TradingService/AmendOrder", Rpc::AmendOrder),
    ("carbonx.v1.TradingService/CancelAll", Rpc::CancelAll),
    ("carbonx.v1.TradingService/GetOrder", Rpc::GetOrder),
    ("carbonx.v1.TradingService/ListOrders", Rpc::ListOrders),
    (
        "carbonx.v1.TradingService/GetTradingAccount",
        Rpc::GetTradingAccount,
    ),
    ("carbonx.v1.TradingService/OrderEntry", Rpc::OrderEntry),
    (
        "carbonx.v1.TradingService/StreamExecutions",
        Rpc::StreamExecutions,
    ),
    ("carbonx.v1.TradingService/ProposeBlock", Rpc::ProposeBlock),
    ("carbonx.v1.TradingService/AcceptBlock", Rpc::AcceptBlock),
    ("carbonx.v1.TradingService/RejectBlock", Rpc::RejectBlock),
    ("carbonx.v1.TradingService/CancelBlock", Rpc::CancelBlock),
    (
        "carbonx.v1.VerificationService/RegisterVerificationRules",
        Rpc::RegisterVerificationRules,
    ),
    (
        "carbonx.v1.VerificationService/RegisterBody",
        Rpc::RegisterBody,
    ),
    (
        "carbonx.v1.VerificationService/RecordEngagement",
        Rpc::Assign,
    ),
    ("carbonx.v1.VerificationService/AssignBody", Rpc::Assign),
    ("carbonx.v1.VerificationService/ReviewStep", Rpc::Review),
    ("carbonx.v1.VerificationService/RaiseFinding", Rpc::Review),
    ("carbonx.v1.VerificationService/ResolveFinding", Rpc::Review),
    ("carbonx.v1.VerificationService/Conclude", Rpc::Review),
    ("carbonx.v1.VerificationService/Notify", Rpc::Notify),
    ("carbonx.v1.VerificationService/Object", Rpc::Object),
    (
        "carbonx.v1.VerificationService/DecideObjection",
        Rpc::Notify,
    ),
    (
        "carbonx.v1.VerificationService/GetVerificationFile",
        Rpc::GetVerificationFile,
    ),
    (
        "carbonx.v1.VerificationService/ListVerificationQueue",
        Rpc::ListVerificationQueue,
    ),
    ("carbonx.v1.VerificationService/ListBodies", Rpc::ListBodies),
];
