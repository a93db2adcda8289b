//! The aggregator: reads the ledger in position order and folds it into totals per site and
//! currency (and per UTC hour), exactly once.
//!
//! Exactly once: the totals and the applied position change in one database transaction, and
//! that transaction only commits if the applied position is still the one the batch started
//! from (fencing). One aggregator is active at a time (it holds a lease in the database); others
//! wait as standbys and take over when the lease runs out.
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`engine`]: the lease, the fold loop, and the status it publishes.
//! - [`monitor`]: whether the totals keep up with the ledger (stale, database reachable), and,
//!   while active, the lag metric and progress log.
//! - [`grpc`]: the status service (`GetStatus`): a fresh read, or the monitor's last one when the
//!   database does not answer in 500 ms.
//! - [`server`]: runs the engine and the gRPC server until stopped.

pub mod config;
pub mod engine;
pub mod grpc;
pub mod monitor;
pub mod server;

pub use config::AggregatorConfig;
pub use server::AggregatorServer;
