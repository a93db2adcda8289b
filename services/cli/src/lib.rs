//! The `saleboard` command line.
//!
//! Layout:
//! - [`suite`]: the three services in one process from one configuration (used by `dev` and the
//!   black-box tests).
//! - [`dev`]: `saleboard dev`, the whole suite in one process on an embedded SQLite file, with a
//!   demo event, demo sites and their keys.
//! - [`migrate`]: `saleboard migrate`, apply the schema to a database.
//! - [`verify`]: `saleboard verify`, recompute every total from the ledger and compare, and the
//!   audit log's hash chain.
//! - [`backup`]: `saleboard backup --out FILE` and `saleboard restore FILE`.
//! - [`push`]: `saleboard push FILE...`, retailers send CSV or JSON Lines files.
//! - [`query`]: `saleboard leaderboard`, `totals`, `national` for organizers.
//! - [`admin`]: `saleboard admin` sites, keys, event, rates, organizers and the audit log.
//! - [`report`]: `saleboard report EVENT` (the official report's files) and `report check DIR`.
//! - [`loadgen`]: `saleboard loadgen`, an event day simulated, measured and reconciled.
//! - [`health`]: `saleboard health ENDPOINT`, a gRPC health probe.
//! - [`bench`]: `saleboard bench-copy` / `bench-query`, helpers of `bench/run`; [`floor`]:
//!   `saleboard bench-transport`, the transport's floor under ingest's cost per message.
//! - [`input`]: reading transaction files; [`client`]: connections and error sentences;
//!   [`retry`]: the backoff of `push` and `loadgen` on UNAVAILABLE and RESOURCE_EXHAUSTED.

pub mod admin;
pub mod backup;
pub mod bench;
pub mod client;
pub mod dev;
pub mod floor;
pub mod health;
pub mod input;
pub mod loadgen;
pub mod migrate;
pub mod push;
pub mod query;
pub mod report;
pub mod retry;
pub mod suite;
pub mod verify;
pub mod whoami;

/// Seconds since the Unix epoch now.
#[must_use]
pub fn client_now() -> i64 {
    saleboard_domain::UnixNanos::now().to_parts().0
}
