//! The leaderboard service process: the read-only `LeaderboardService` (live ranking, totals)
//! and the organizer's `AdminService`.
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`server`]: the tower stacks and gRPC server; `run_until_stopped`.
//! - [`board`]: owns the current snapshot and refreshes it when the figures change.
//! - [`snapshot`]: figures built from one consistent read, ranked once.
//! - [`grpc`]: the `LeaderboardService` implementation.
//! - [`admin`]: the `AdminService` implementation: sites, API keys, the event, exchange rates.
//! - [`changes`]: the organizer's changes in the log, a burst of one kind summed in one line.

pub mod admin;
pub mod board;
pub mod breakdown;
pub mod changes;
pub mod config;
pub mod grpc;
pub mod server;
pub mod snapshot;
pub mod web;

pub use config::LeaderboardConfig;
pub use server::LeaderboardServer;
