//! A request over the message-size limit refused like every other refusal. tonic answers
//! it itself, before any handler runs, with a bare OUT_OF_RANGE; this layer, around every
//! service, turns that answer into the API's own: RESOURCE_EXHAUSTED (the code gRPC's
//! specification gives an over-size message), reason `MESSAGE_TOO_LARGE`, the limit in
//! the message, in the richer error model with the `x-carbonx-*` metadata.

use crate::error::ApiError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::codegen::{Service, http};

/// What tonic's decoder says when a message is over the limit (tonic 0.14 `codec/decode.rs`);
/// `oversize_layer_rewrites_tonics_answer` in the tests pins it.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// The API's refusal for tonic's over-size status, or None for any other status.
pub fn refusal(status: &Status) -> Option<ApiError> {
    if status.code() != tonic::Code::OutOfRange || !status.message().starts_with(TONIC_TOO_LARGE) {
        return None;
    }
    // "…: found N bytes, the limit is: M bytes" -> "request of N bytes is over the limit of M".
    let words: Vec<&str> = status.message().split_whitespace().collect();
    let found = words
        .iter()
        .position(|w| *w == "found")
        .and_then(|i| words.get(i + 1));
    let limit = words
        .iter()
        .position(|w| *w == "is:")
        .and_then(|i| words.get(i + 1));
    let message = match (found, limit) {
        (Some(found), Some(limit)) => format!(
            "the request's message is {found} bytes, over this service's limit of {limit} bytes \
             (limits.message_bytes_max; the compliance service's bulk loads: \
             limits.bulk_message_bytes_max): split it"
        ),
        _ => "the request's message is over this service's size limit: split it".to_string(),
    };
    Some(ApiError::exhausted("MESSAGE_TOO_LARGE", message))
}

/// The layer for `tonic::transport::Server::layer`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OversizeLayer;

impl<S> tower_layer::Layer<S> for OversizeLayer {
    type Service = Oversize<S>;
    fn layer(&self, inner: S) -> Oversize<S> {
        Oversize { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Oversize<S> {
    inner: S,
}

impl<S, Req, B> Service<Req> for Oversize<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            rewrite(&mut response);
            Ok(response)
        })
    }
}

/// tonic's trailers-only answer (the status in the headers, the `Status` in the
/// extensions) given the API's headers instead.
fn rewrite<B>(response: &mut http::Response<B>) {
    let Some(api) = response.extensions().get::<Status>().and_then(refusal) else {
        return;
    };
    let ours: http::Response<()> = Status::from(api).into_http();
    let (parts, ()) = ours.into_parts();
    let headers = response.headers_mut();
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove(Status::GRPC_STATUS_DETAILS);
    for (name, value) in &parts.headers {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(status) = parts.extensions.get::<Status>() {
        response.extensions_mut().insert(status.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_layer_rewrites_tonics_answer() {
        // What tonic's decoder returns for a 70,000-byte message against a 65,536 limit.
        let tonic_status = Status::out_of_range(
            "Error, decoded message length too large: found 70000 bytes, the limit is: 65536 bytes",
        );
        let mut response: http::Response<()> = tonic_status.into_http();
        rewrite(&mut response);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // RESOURCE_EXHAUSTED is 8.
        assert_eq!(header("grpc-status").as_deref(), Some("8"));
        assert_eq!(
            header("x-carbonx-reason").as_deref(),
            Some("MESSAGE_TOO_LARGE")
        );
        assert!(header("grpc-status-details-bin").is_some());
        let status = response.extensions().get::<Status>().expect("status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status
                .message()
                .contains("70000 bytes, over this service's limit of 65536 bytes"),
            "{}",
            status.message()
        );
        // Any other status passes untouched.
        let mut other: http::Response<()> = Status::out_of_range("no such page").into_http();
        rewrite(&mut other);
        assert_eq!(
            other
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()),
            Some("11")
        );
    }
}
