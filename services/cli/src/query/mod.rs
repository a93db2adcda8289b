//! Organizer queries: `saleboard leaderboard [--watch]`, `totals SITE [--hourly]`, `national`,
//! `compare`, `breakdown`. Tables for people, `--output json` for scripts (the answer's message
//! in the proto3 JSON mapping, `client::json`).
//!
//! Layout: one module per command (`leaderboard`, `totals` with `national`, `compare`,
//! `breakdown`), and what they share: `zone` (time zones for display), `figures` (money, shares
//! and growth as people read them) and `table` (the tables).

mod breakdown;
mod compare;
mod figures;
mod leaderboard;
mod table;
mod totals;
mod zone;

use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;

pub use breakdown::{BreakdownArgs, DimensionArg, breakdown, dimension_msg};
pub use compare::{CompareArgs, compare};
pub use figures::{growth, money, share, unconverted_warning, wide_money};
pub use leaderboard::{LeaderboardArgs, leaderboard};
pub use table::{breakdown_table, leaderboard_table};
pub use totals::{NationalArgs, TotalsArgs, national, totals};
pub use zone::Zone;

use crate::client::{self, Output};

/// Where the leaderboard service is and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Leaderboard service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// Output format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The event (default: the current one: live, else last ended, else next).
    #[arg(long, env = "SALEBOARD_EVENT", default_value = "")]
    pub event: String,
    /// The event to compare with (default: the event's own baseline, if it has one).
    #[arg(long, env = "SALEBOARD_BASELINE", default_value = "")]
    pub baseline: String,
    /// Time zone of the times in tables: UTC, an offset such as +07:00, or an IANA name such
    /// as Asia/Jakarta. JSON output stays RFC 3339 in UTC.
    /// Default: the event's own time zone when it has one, else UTC.
    #[arg(long, env = "SALEBOARD_TZ", value_parser = Zone::parse)]
    pub tz: Option<Zone>,
}

impl QueryArgs {
    /// The zone to show times in: `--tz`, else the event's own time zone, else UTC.
    async fn zone(
        &self,
        client: &mut LeaderboardServiceClient<client::Authed>,
        event_id: &str,
    ) -> Zone {
        if let Some(zone) = &self.tz {
            return zone.clone();
        }
        let events = client
            .list_events(saleboard_proto::v1::ListEventsRequest {})
            .await
            .map(|r| r.into_inner().events)
            .unwrap_or_default();
        // "" is the current event: the live one, else the latest that started.
        let live = saleboard_proto::v1::EventState::Live;
        let event = if event_id.is_empty() {
            events.iter().find(|e| e.state() == live).or_else(|| {
                events
                    .iter()
                    .find(|e| e.state() != saleboard_proto::v1::EventState::Scheduled)
            })
        } else {
            events.iter().find(|e| e.event_id == event_id)
        };
        event
            .filter(|e| !e.time_zone.is_empty())
            .and_then(|e| Zone::parse(&e.time_zone).ok())
            .unwrap_or_else(Zone::utc)
    }
}
