//! `saleboard`: the command line of the suite.

use clap::{Parser, Subcommand};
use saleboard::{dev, migrate, verify};
use saleboard_runtime::logging::{self, LogFormat};

/// Saleboard: live totals and a national leaderboard for an online shopping day.
#[derive(Debug, Parser)]
#[command(name = "saleboard", version)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole suite in this process on an embedded SQLite file, with demo data.
    Dev(dev::DevArgs),
    /// Apply pending database migrations.
    Migrate(migrate::MigrateArgs),
    /// Recompute every total from the ledger and compare with the stored totals; exit 1 on any
    /// difference.
    Verify(verify::VerifyArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Migrate(args) => migrate::run(&args).await,
        Command::Verify(args) => {
            if verify::run(&args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}
