//! `saleboard-ingest`: parse settings, open the database, serve until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser;
use saleboard_ingest::{IngestConfig, IngestServer};
use saleboard_runtime::logging::{self, LogFormat};

/// Saleboard ingest service: retailers push transactions over gRPC.
#[derive(Debug, Parser)]
#[command(name = "saleboard-ingest", version)]
struct Cli {
    #[command(flatten)]
    config: IngestConfig,
    /// Log format.
    #[arg(long, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let store = cli.config.database.open().await?;
    let server = IngestServer::build(cli.config, store)
        .await
        .context("starting the ingest service")?;
    server
        .run_until_stopped(saleboard_runtime::shutdown::signal())
        .await
        .context("running the ingest service")
}
