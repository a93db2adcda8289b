//! `saleboard-leaderboard`: parse settings, start telemetry, open the database, serve until SIGTERM
//! or Ctrl-C, then drain within the shutdown deadline and flush telemetry.

use anyhow::Context as _;
use clap::Parser;
use saleboard_leaderboard::{LeaderboardConfig, LeaderboardServer};
use saleboard_runtime::shutdown::{self, ShutdownArgs};
use saleboard_runtime::telemetry::{self, TelemetryArgs};

/// Saleboard leaderboard service: live totals and ranking, and the organizer's AdminService.
#[derive(Debug, Parser)]
#[command(
    name = "saleboard-leaderboard",
    version,
    after_help = "The same port serves the big screen over HTTP/1.1: open http://ADDRESS/ in a \
                  browser (the default: http://127.0.0.1:50052/; ?event=ID for another event, \
                  ?limit=N sites). Read-only JSON: /api/v1/leaderboard, /api/v1/national, \
                  /api/v1/events, /api/v1/breakdown/{brand,category,origin}; a live stream of \
                  the screen's figures: /events/leaderboard (Server-Sent Events)."
)]
struct Cli {
    #[command(flatten)]
    config: LeaderboardConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

// The system allocator, unlike ingest and the aggregator: jemalloc took a little CPU off each
// refresh, but GetBreakdown's p99 read 2.3-2.7 ms in five of six alternating rounds against
// 0.9-2.0 ms with glibc (BENCHMARKS.md, issue 15).
#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let telemetry = telemetry::init("saleboard-leaderboard", &cli.telemetry)?;
    // A failure is logged once, with its causes, by `run`: nothing more to print.
    Ok(telemetry.run("saleboard-leaderboard", run(cli)).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Before anything is opened: a bad token fails at once.
    saleboard_leaderboard::config::check_token(&cli.config.organizer_token)?;
    let store = cli.config.database.open().await?;
    let server = LeaderboardServer::build(cli.config, store)
        .await
        .context("starting the leaderboard service")?;
    shutdown::serve_until_signal(cli.shutdown.deadline(), |stop| {
        server.run_until_stopped(stop)
    })
    .await
    .context("running the leaderboard service")
}
