//! # carbonx client
//!
//! What every program that talks to `carbonx serve` needs, in one place: [`Clients`] (each
//! service's generated client, authenticated by one bearer token), the refusal a status
//! carries ([`rejection_of`]), money as people type and read it ([`money`]), the names of
//! wire enums ([`names`]), and the ministry's CSV files ([`csv`]). The operator CLI, the
//! demo, the load generator and the end-to-end tests all use it; it depends on the wire
//! types (`proto`) only.

pub mod csv;
pub mod money;
pub mod names;

use proto::v1 as pb;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub use pb::admin_service_client::AdminServiceClient;
pub use pb::auction_service_client::AuctionServiceClient;
pub use pb::carry_over_service_client::CarryOverServiceClient;
pub use pb::compliance_service_client::ComplianceServiceClient;
pub use pb::emissions_service_client::EmissionsServiceClient;
pub use pb::market_data_service_client::MarketDataServiceClient;
pub use pb::registry_service_client::RegistryServiceClient;
pub use pb::trading_service_client::TradingServiceClient;
pub use pb::verification_service_client::VerificationServiceClient;

/// Adds `authorization: Bearer <token>` to every request (nothing without a token).
#[derive(Clone, Debug)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::invalid_argument("the token is not valid metadata"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// Every service's client, authenticated as one principal (or none).
#[derive(Clone, Debug)]
pub struct Clients {
    pub trading: TradingServiceClient<Authed>,
    pub market: MarketDataServiceClient<Authed>,
    pub registry: RegistryServiceClient<Authed>,
    pub admin: AdminServiceClient<Authed>,
    pub auction: AuctionServiceClient<Authed>,
    pub compliance: ComplianceServiceClient<Authed>,
    pub carry_over: CarryOverServiceClient<Authed>,
    pub emissions: EmissionsServiceClient<Authed>,
    pub verification: VerificationServiceClient<Authed>,
}

impl Clients {
    pub fn new(channel: Channel, token: Option<&str>) -> Clients {
        let b = Bearer(token.map(str::to_string));
        Clients {
            trading: TradingServiceClient::with_interceptor(channel.clone(), b.clone()),
            market: MarketDataServiceClient::with_interceptor(channel.clone(), b.clone()),
            registry: RegistryServiceClient::with_interceptor(channel.clone(), b.clone()),
            admin: AdminServiceClient::with_interceptor(channel.clone(), b.clone()),
            auction: AuctionServiceClient::with_interceptor(channel.clone(), b.clone()),
            compliance: ComplianceServiceClient::with_interceptor(channel.clone(), b.clone()),
            carry_over: CarryOverServiceClient::with_interceptor(channel.clone(), b.clone()),
            emissions: EmissionsServiceClient::with_interceptor(channel.clone(), b.clone()),
            verification: VerificationServiceClient::with_interceptor(channel, b),
        }
    }

    /// Clients of the server at `uri` (`http://host:port`), as the principal of `token`.
    pub async fn connect(uri: &str, token: &str) -> Result<Clients, String> {
        let channel = Channel::from_shared(uri.to_string())
            .map_err(|e| format!("{uri:?}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot reach {uri}: {e}"))?;
        Ok(Clients::new(channel, Some(token)))
    }
}

/// The refusal a status carries, if any: the `carbonx.v1.Rejection` among the details of
/// its `google.rpc.Status` (gRPC's richer error model; the same status also holds a
/// `google.rpc.ErrorInfo` with the reason, and a `BadRequest` for an invalid field).
pub fn rejection_of(status: &Status) -> Option<pb::Rejection> {
    proto::status::rejection_of(status)
}

/// A refused call as one line: `refused: REASON (field F): message`.
pub fn failed(status: &Status) -> String {
    match rejection_of(status) {
        Some(r) if !r.reason.is_empty() => {
            let field = if r.field.is_empty() {
                String::new()
            } else {
                format!(" (field {})", r.field)
            };
            format!("refused: {}{field}: {}", r.reason, r.message)
        }
        _ => format!("failed: {:?}: {}", status.code(), status.message()),
    }
}
