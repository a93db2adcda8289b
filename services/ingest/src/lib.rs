//! The ingest service: retailers push sale and refund transactions over gRPC; every ACCEPTED
//! transaction is committed to the ledger exactly once before it is acknowledged.
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`server`]: builds the tower stack and the gRPC server; `run_until_stopped`.
//! - [`grpc`]: the `IngestService` implementation and the key authentication of the auth layer:
//!   with [`http`], the only module touching tonic statuses and protobuf messages (errors
//!   become statuses here, in one place).
//! - [`http`]: JSON over HTTP on the same port (`POST /api/v1/transactions`,
//!   `GET /api/v1/whoami`), calling the gRPC handlers behind the same layers; statuses as
//!   HTTP statuses.
//! - [`directory`]: cached API keys and event, refreshed from storage (revocations apply
//!   within a refresh interval); finds the retailer of a key.
//! - [`error`]: `IngestError`, what goes wrong below the gRPC edge.
//! - [`metrics`]: counters and histograms of what ingest answered and committed.
//! - [`rate_limit`]: per-site token buckets as a tower layer.
//! - [`writer`]: the group-commit writer: one task batching what arrives together into one
//!   database transaction.

pub mod config;
pub mod directory;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod rate_limit;
pub mod server;
pub mod writer;

pub use config::IngestConfig;
pub use server::IngestServer;
