//! The `saleboard.v1` gRPC contract, generated at build time from `proto/saleboard/v1/*.proto`.
//!
//! This crate holds no logic: services and clients depend on it for messages, clients and
//! server traits, and for the one JSON mapping of those messages (`json`).

pub mod codec;
pub mod json;
pub mod openapi;

/// Messages, clients and server traits of package `saleboard.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]
    tonic::include_proto!("saleboard.v1");
}

/// Encoded `FileDescriptorSet` of the whole contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("saleboard_descriptor");

pub use prost_types::Timestamp;
