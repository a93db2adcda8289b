//! The leaderboard service process: organizers manage the event through `AdminService` here
//! (the read-only `LeaderboardService` joins it in the next step).
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`server`]: the tower stack and gRPC server; `run_until_stopped`.
//! - [`admin`]: the `AdminService` implementation: sites, API keys, the event, exchange rates.

pub mod admin;
pub mod config;
pub mod server;

pub use config::LeaderboardConfig;
pub use server::LeaderboardServer;
