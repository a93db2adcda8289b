//! `saleboard-aggregator`: parse settings, open the database, fold the ledger until SIGTERM or
//! Ctrl-C.

use anyhow::Context as _;
use clap::Parser;
use saleboard_aggregator::{AggregatorConfig, AggregatorServer};
use saleboard_runtime::logging::{self, LogFormat};

/// Saleboard aggregator: folds the ledger into totals per site and currency, exactly once.
#[derive(Debug, Parser)]
#[command(name = "saleboard-aggregator", version)]
struct Cli {
    #[command(flatten)]
    config: AggregatorConfig,
    /// Log format.
    #[arg(long, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let store = cli.config.database.open().await?;
    let server = AggregatorServer::build(cli.config, store)
        .await
        .context("starting the aggregator")?;
    server
        .run_until_stopped(saleboard_runtime::shutdown::signal())
        .await
        .context("running the aggregator")
}
