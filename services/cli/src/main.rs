//! `saleboard`: the command line of the suite.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use saleboard::{admin, bench, dev, health, loadgen, migrate, push, query, verify};
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
    /// Send transactions from CSV or JSON Lines files (retailers).
    Push(push::PushArgs),
    /// Show the national leaderboard, once or live (--watch).
    Leaderboard(query::LeaderboardArgs),
    /// Show one site's totals per currency (and per hour with --hourly).
    Totals(query::TotalsArgs),
    /// Show the national totals per currency.
    National(query::NationalArgs),
    /// Manage sites, keys, the event and exchange rates (organizers).
    Admin(admin::AdminArgs),
    /// Ask a service whether it is serving (gRPC health); exit 0 when SERVING.
    Health(health::HealthArgs),
    /// Simulate an event day against a running suite, measure it and reconcile the totals.
    Loadgen(loadgen::LoadgenArgs),
    /// Benchmark baseline: load rows straight into a PostgreSQL ledger with COPY.
    #[command(hide = true)]
    BenchCopy(bench::CopyArgs),
    /// Benchmark: time GetLeaderboard calls.
    #[command(hide = true)]
    BenchQuery(bench::QueryArgs),
}

async fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Dev(args) => dev::run(args).await.map(|()| 0),
        Command::Migrate(args) => migrate::run(&args).await.map(|()| 0),
        Command::Verify(args) => verify::run(&args).await.map(|ok| if ok { 0 } else { 1 }),
        Command::Push(args) => push::run(&args).await,
        Command::Leaderboard(args) => query::leaderboard(&args).await.map(|()| 0),
        Command::Totals(args) => query::totals(&args).await.map(|()| 0),
        Command::National(args) => query::national(&args).await.map(|()| 0),
        Command::Admin(args) => admin::run(&args).await.map(|()| 0),
        Command::Loadgen(args) => loadgen::command(&args).await,
        Command::Health(args) => health::run(&args).await.map(|ok| if ok { 0 } else { 1 }),
        Command::BenchCopy(args) => bench::copy(&args).await.map(|()| 0),
        Command::BenchQuery(args) => bench::query(&args).await.map(|()| 0),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match run(cli.command).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
