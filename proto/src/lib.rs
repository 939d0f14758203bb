//! carbonx.v1 wire types and tonic service stubs.
//!
//! These types stop at the gateway: the gateway converts them with `TryFrom` into domain
//! commands of the `engine` and `registry` crates, and back. No other crate depends on them.

#![allow(missing_debug_implementations, clippy::large_enum_variant)]

pub mod codec;
pub mod status;

/// Package `carbonx.v1`.
pub mod v1 {
    tonic::include_proto!("carbonx.v1");
}

/// The encoded `FileDescriptorSet` of every carbonx `.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/carbonx_descriptor.bin"));
