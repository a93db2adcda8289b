//! `saleboard-leaderboard`: parse settings, start telemetry, open the database, serve until SIGTERM
//! or Ctrl-C, then drain within the shutdown deadline and flush telemetry.

use anyhow::Context as _;
use clap::Parser;
use saleboard_leaderboard::{LeaderboardConfig, LeaderboardServer};
use saleboard_runtime::shutdown::{self, ShutdownArgs};
use saleboard_runtime::telemetry::{self, TelemetryArgs};

/// Saleboard leaderboard service: live totals and ranking, and the organizer's AdminService.
#[derive(Debug, Parser)]
#[command(name = "saleboard-leaderboard", version)]
struct Cli {
    #[command(flatten)]
    config: LeaderboardConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

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
