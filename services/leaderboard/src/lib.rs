//! The leaderboard service process: the read-only `LeaderboardService` (live ranking, totals)
//! and the organizer's `AdminService`.
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`server`]: the tower stacks and gRPC server; `run_until_stopped`.
//! - [`board`]: the read model: owns the current snapshot and refreshes it when the figures
//!   change (incrementally where it can), marks it stale while storage cannot be read, and
//!   keeps the baselines' data for comparisons.
//! - [`snapshot`]: every figure a view shows (ranking, national figures, breakdowns, the hourly
//!   curve, the comparison with the baseline), built from one consistent read, computed once.
//! - [`grpc`]: the `LeaderboardService` implementation: pages of the snapshot.
//! - [`breakdown`]: `GetBreakdown`'s pages, and one site's breakdown (read when asked).
//! - [`web`]: the big screen, its SSE stream and the JSON API: views of the same snapshot,
//!   through the gRPC service's own code.
//! - [`admin`]: the `AdminService` implementation: sites, API keys, the event, exchange rates,
//!   organizers, and the audit log every change is recorded in (with the change).
//! - [`changes`]: the organizer's changes in the log, a burst of one kind summed in one line.
//! - [`messages`]: domain values as the contract carries them (a leaf: no cycle through it).
//! - [`policy`]: an event's integrity thresholds between the contract and the domain.
//! - [`integrity`]: the integrity flags, evaluated from the board's snapshot every few seconds.

pub mod admin;
pub mod board;
pub mod breakdown;
pub mod changes;
pub mod config;
pub mod grpc;
pub mod integrity;
pub mod messages;
pub mod policy;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod web;

pub use config::LeaderboardConfig;
pub use server::LeaderboardServer;
