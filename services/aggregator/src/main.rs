//! `saleboard-aggregator`: parse settings, start telemetry, open the database, fold the ledger until SIGTERM
//! or Ctrl-C, then drain within the shutdown deadline and flush telemetry.

use anyhow::Context as _;
use clap::Parser;
use saleboard_aggregator::{AggregatorConfig, AggregatorServer};
use saleboard_runtime::shutdown::{self, ShutdownArgs};
use saleboard_runtime::telemetry::{self, TelemetryArgs};

/// Saleboard aggregator: folds the ledger into totals per site and currency, exactly once.
#[derive(Debug, Parser)]
#[command(name = "saleboard-aggregator", version)]
struct Cli {
    #[command(flatten)]
    config: AggregatorConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let telemetry = telemetry::init("saleboard-aggregator", &cli.telemetry)?;
    // A failure is logged once, with its causes, by `run`: nothing more to print.
    Ok(telemetry.run("saleboard-aggregator", run(cli)).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = cli.config.database.open().await?;
    let server = AggregatorServer::build(cli.config, store)
        .await
        .context("starting the aggregator")?;
    shutdown::serve_until_signal(cli.shutdown.deadline(), |stop| {
        server.run_until_stopped(stop)
    })
    .await
    .context("running the aggregator")
}

/// jemalloc, as in ingest (defaults in `.cargo/config.toml`): the fold allocates and
/// frees strings for every ledger row it reads, and the system allocator spent about a tenth
/// of this process's CPU more on that (BENCHMARKS.md, issue 15).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
