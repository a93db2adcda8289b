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

/// jemalloc, with the defaults in `.cargo/config.toml` (two arenas, freed pages returned after
/// 1 s): about a fifth less CPU per row than the system allocator, at the same peak RSS.
/// mimalloc saved as much CPU but took the peak past the 64 MiB ingest must stay under
/// (BENCHMARKS.md, issue 15).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
