//! `saleboard`: the command line of the suite.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use saleboard::{
    admin, backup, bench, dev, floor, health, loadgen, migrate, push, query, report, verify, whoami,
};
use saleboard_runtime::telemetry::{self, LogFormat, TelemetryArgs};

/// Saleboard: live totals and a national leaderboard for an online shopping day.
#[derive(Debug, Parser)]
#[command(name = "saleboard", version)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// OTLP/gRPC endpoint for the command's own trace (and the services' with `dev`); unset:
    /// nothing is exported, requests still carry a W3C traceparent.
    #[arg(
        long = "otlp-endpoint",
        global = true,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole suite in this process on an embedded SQLite file, with two demo events
    /// (today's, live, with no transactions at first; last year's, closed, with a small
    /// history to compare with), demo sites and their keys, and demo exchange rates.
    Dev(dev::DevArgs),
    /// Apply pending database migrations.
    Migrate(migrate::MigrateArgs),
    /// Recompute every total from the ledger and compare with the stored totals; exit 1 on any
    /// difference.
    Verify(verify::VerifyArgs),
    /// Write a consistent, checksummed backup of the database (sites, API key hashes, events,
    /// exchange rates, the ledger) to a file.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty database (created and migrated if need be); the
    /// aggregator then folds the restored ledger into the totals.
    Restore(backup::RestoreArgs),
    /// Send transactions from CSV or JSON Lines files (retailers).
    Push(push::PushArgs),
    /// Show what an API key is: its site, the event window and the limits (retailers; needs
    /// only the key).
    Whoami(whoami::WhoAmIArgs),
    /// Show the national leaderboard, once or live (--watch).
    Leaderboard(query::LeaderboardArgs),
    /// Show one site's totals per currency (and per hour with --hourly).
    Totals(query::TotalsArgs),
    /// Show the national totals per currency.
    National(query::NationalArgs),
    /// Compare an event with its baseline (or --with another event) at the same point: each
    /// site's net, the baseline's and the growth.
    Compare(query::CompareArgs),
    /// What sold, not only where: the figures by brand, category or origin (domestic,
    /// cross-border), ranked, national or one site's (--site).
    Breakdown(query::BreakdownArgs),
    /// Manage sites, keys, the event and exchange rates (organizers).
    Admin(admin::AdminArgs),
    /// The official report of an event (organizers): PDF, HTML, CSV and JSON files with a
    /// SHA-256 manifest; `report check DIR` checks a copy (and, with --database-url, every
    /// figure against the database).
    Report(report::ReportArgs),
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
    /// Benchmark: the transport's cost per message, under ingest's (a do-nothing ingest and
    /// its load).
    #[command(hide = true)]
    BenchTransport(floor::TransportArgs),
}

impl Command {
    /// The subcommand's name, for the command's span.
    fn name(&self) -> &'static str {
        match self {
            Self::Dev(_) => "dev",
            Self::Migrate(_) => "migrate",
            Self::Verify(_) => "verify",
            Self::Backup(_) => "backup",
            Self::Restore(_) => "restore",
            Self::Push(_) => "push",
            Self::Whoami(_) => "whoami",
            Self::Leaderboard(_) => "leaderboard",
            Self::Totals(_) => "totals",
            Self::National(_) => "national",
            Self::Compare(_) => "compare",
            Self::Breakdown(_) => "breakdown",
            Self::Admin(_) => "admin",
            Self::Report(_) => "report",
            Self::Health(_) => "health",
            Self::Loadgen(_) => "loadgen",
            Self::BenchCopy(_) => "bench-copy",
            Self::BenchQuery(_) => "bench-query",
            Self::BenchTransport(_) => "bench-transport",
        }
    }
}

async fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Dev(args) => dev::run(args).await.map(|()| 0),
        Command::Migrate(args) => migrate::run(&args).await.map(|()| 0),
        Command::Verify(args) => verify::run(&args).await.map(|ok| if ok { 0 } else { 1 }),
        Command::Backup(args) => backup::backup(&args).await.map(|()| 0),
        Command::Restore(args) => backup::restore(&args).await.map(|()| 0),
        Command::Push(args) => push::run(&args).await,
        Command::Whoami(args) => whoami::run(&args).await.map(|()| 0),
        Command::Leaderboard(args) => query::leaderboard(&args).await.map(|()| 0),
        Command::Totals(args) => query::totals(&args).await.map(|()| 0),
        Command::National(args) => query::national(&args).await.map(|()| 0),
        Command::Compare(args) => query::compare(&args).await.map(|()| 0),
        Command::Breakdown(args) => query::breakdown(&args).await.map(|()| 0),
        Command::Admin(args) => admin::run(&args).await.map(|()| 0),
        Command::Report(args) => report::run(&args).await,
        Command::Loadgen(args) => loadgen::command(&args).await,
        Command::Health(args) => health::run(&args).await.map(|ok| if ok { 0 } else { 1 }),
        Command::BenchCopy(args) => bench::copy(&args).await.map(|()| 0),
        Command::BenchQuery(args) => bench::query(&args).await.map(|()| 0),
        Command::BenchTransport(args) => floor::run(&args).await.map(|()| 0),
    }
}

// The system allocator, as in the leaderboard (ingest and the aggregator use jemalloc): with
// mimalloc, loadgen's ack p99 at 40,000/s read 99-228 ms against 52-112 (most likely its own
// pauses, counted as the services' latency), and measuring is this binary's job (BENCHMARKS.md,
// issue 15).
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = TelemetryArgs {
        log_format: cli.log_format,
        otlp_endpoint: cli.otlp_endpoint.clone(),
    };
    let telemetry = match telemetry::init("saleboard-cli", &args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // When exporting, the command is a root span and every request a child of it; otherwise
    // requests carry a random trace context (see client::trace).
    let root = telemetry.exporting().then(|| {
        tracing::info_span!(target: "saleboard::cli", "command", otel.name = format!("saleboard {}", cli.command.name()), otel.kind = "client")
    });
    if let Some(root) = &root {
        saleboard::client::set_trace(telemetry::span_context(root));
    }
    let result = run(cli.command).await;
    drop(root);
    telemetry.shutdown().await;
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
