//! `saleboard-ingest`: parse settings, start telemetry, open the database, serve until SIGTERM
//! or Ctrl-C, then drain within the shutdown deadline and flush telemetry.

use anyhow::Context as _;
use clap::Parser;
use saleboard_ingest::{IngestConfig, IngestServer};
use saleboard_runtime::shutdown::{self, ShutdownArgs};
use saleboard_runtime::telemetry::{self, TelemetryArgs};

/// Saleboard ingest service: retailers push transactions over gRPC.
#[derive(Debug, Parser)]
#[command(name = "saleboard-ingest", version)]
struct Cli {
    #[command(flatten)]
    config: IngestConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

// The system allocator on purpose: mimalloc cut ingest's CPU per row by about a sixth too, but
// took its peak RSS from about 50 MiB to 64 (v2) or over 100 (v3), and ingest must stay under
// 64 MiB (BENCHMARKS.md, issue 15). The aggregator and the leaderboard use mimalloc.
#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let telemetry = telemetry::init("saleboard-ingest", &cli.telemetry)?;
    // A failure is logged once, with its causes, by `run`: nothing more to print.
    Ok(telemetry.run("saleboard-ingest", run(cli)).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // SQLite: a writer and a spare connection, unless --db-pool-size says otherwise.
    let store = cli
        .config
        .database
        .clone()
        .with_sqlite_default_pool(2)
        .open()
        .await?;
    let server = IngestServer::build(cli.config, store)
        .await
        .context("starting the ingest service")?;
    shutdown::serve_until_signal(cli.shutdown.deadline(), |stop| {
        server.run_until_stopped(stop)
    })
    .await
    .context("running the ingest service")
}
