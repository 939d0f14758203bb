//! A refusal as a gRPC status in the standard richer error model, the one form every
//! refusal takes (the server's `ApiError`, this crate's codec): `grpc-status-details-bin`
//! holds a `google.rpc.Status` whose details are a `google.rpc.ErrorInfo` (reason, domain,
//! the field in its metadata), for an invalid field a `google.rpc.BadRequest` violation
//! naming it, and the `carbonx.v1.Rejection`; the reason and field are also sent as
//! `x-carbonx-reason` / `x-carbonx-field` metadata. grpcio-status's
//! `rpc_status.from_call` and the Go and Java status helpers read it.

use prost::Message;
use tonic::{Code, Status};
use tonic_types::pb::{BadRequest, ErrorInfo, bad_request::FieldViolation};

/// Where the reason codes come from, in `google.rpc.ErrorInfo.domain`.
pub const ERROR_DOMAIN: &str = "carbonx.cn";

fn any(full_name: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{full_name}"),
        value,
    }
}

/// The status refusing a request with `code`, `rejection.reason` (a stable code),
/// `rejection.field` (may be empty) and `rejection.message` (already bounded by the caller).
pub fn refusal(code: Code, rejection: &crate::v1::Rejection) -> Status {
    let mut metadata = std::collections::HashMap::new();
    if !rejection.field.is_empty() {
        metadata.insert("field".to_string(), rejection.field.clone());
    }
    let info = ErrorInfo {
        reason: rejection.reason.clone(),
        domain: ERROR_DOMAIN.to_string(),
        metadata,
    };
    let mut details = vec![any("google.rpc.ErrorInfo", info.encode_to_vec())];
    if code == Code::InvalidArgument && !rejection.field.is_empty() {
        let violation = FieldViolation {
            field: rejection.field.clone(),
            description: rejection.message.clone(),
            ..Default::default()
        };
        let bad = BadRequest {
            field_violations: vec![violation],
        };
        details.push(any("google.rpc.BadRequest", bad.encode_to_vec()));
    }
    details.push(any("carbonx.v1.Rejection", rejection.encode_to_vec()));
    let rich = tonic_types::pb::Status {
        code: code as i32,
        message: rejection.message.clone(),
        details,
    };
    let mut status =
        Status::with_details(code, rejection.message.clone(), rich.encode_to_vec().into());
    let metadata = status.metadata_mut();
    if let Ok(v) = rejection.reason.parse() {
        metadata.insert("x-carbonx-reason", v);
    }
    if !rejection.field.is_empty()
        && let Ok(v) = rejection.field.parse()
    {
        metadata.insert("x-carbonx-field", v);
    }
    status
}

/// The refusal a status carries, if any: the `carbonx.v1.Rejection` among its
/// `google.rpc.Status` details.
pub fn rejection_of(status: &Status) -> Option<crate::v1::Rejection> {
    let rich = tonic_types::pb::Status::decode(status.details()).ok()?;
    rich.details
        .iter()
        .find(|any| any.type_url.ends_with("/carbonx.v1.Rejection"))
        .and_then(|any| crate::v1::Rejection::decode(any.value.as_slice()).ok())
}
