//! `saleboard-leaderboard`: parse settings, open the database, serve until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser;
use saleboard_leaderboard::{LeaderboardConfig, LeaderboardServer};
use saleboard_runtime::logging::{self, LogFormat};

/// Saleboard leaderboard service: live totals and ranking, and the organizer's AdminService.
#[derive(Debug, Parser)]
#[command(name = "saleboard-leaderboard", version)]
struct Cli {
    #[command(flatten)]
    config: LeaderboardConfig,
    /// Log format.
    #[arg(long, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let store = cli.config.database.open().await?;
    let server = LeaderboardServer::build(cli.config, store)
        .await
        .context("starting the leaderboard service")?;
    server
        .run_until_stopped(saleboard_runtime::shutdown::signal())
        .await
        .context("running the leaderboard service")
}
