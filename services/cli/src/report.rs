//! `saleboard report EVENT`: the official report of an event (issue 29), from
//! `AdminService.GetEventReport` (organizer credentials), written as files: `report.pdf`,
//! `report.html`, the CSV files, `summary.json` and `MANIFEST.sha256`. `saleboard report check
//! DIR` checks a copy against its manifest and, with `--database-url`, makes the report again
//! from the database (the same code as the service: one snapshot of the stored totals and one
//! pass over the event's ledger rows) and names every figure that differs, and every stored
//! total that differs from the ledger.

use std::path::{Path, PathBuf};

use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::{EventReport, GetEventReportRequest, ReportStatus};
use saleboard_report::format::money;

use crate::client::{self, Authed};

/// Arguments of `saleboard report`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    /// The event (its id; `current` for the current one).
    #[arg(required = true)]
    pub event: Option<String>,
    /// The directory to write the files into (made if missing) [default: report-EVENT].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with this event instead of the event's own baseline.
    #[arg(long, default_value = "")]
    pub baseline: String,
    /// AdminService endpoint: the leaderboard's admin listener (--admin-listen).
    #[arg(
        long = "admin-endpoint",
        env = "SALEBOARD_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:50054"
    )]
    pub admin_endpoint: String,
    /// The organizer's secret (`sbo_...`), or the organizer token from configuration.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: Option<ReportCommand>,
}

/// `saleboard report check`.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Check a report's files: every file against MANIFEST.sha256 and, with --database-url,
    /// every figure against the report made again from the database. Exit 1 on a difference.
    Check(CheckArgs),
}

/// Arguments of `saleboard report check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The report's directory.
    pub dir: PathBuf,
    /// The database to recompute the figures from (`sqlite:PATH` or `postgres://...`);
    /// without it only the manifest is checked.
    #[arg(
        long = "database-url",
        env = "SALEBOARD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// Runs `saleboard report`: 0 when written (or the check holds), 1 when the check finds a
/// difference.
///
/// # Errors
/// When the service refuses, the files cannot be written, or the database cannot be read.
pub async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    if let Some(ReportCommand::Check(check_args)) = &args.command {
        return check(check_args).await;
    }
    let event = args.event.as_deref().unwrap_or_default();
    let event = if event == "current" { "" } else { event };
    let Some(token) = args.token.as_deref() else {
        anyhow::bail!(
            "the report needs an organizer's secret: --token or SALEBOARD_ORGANIZER_TOKEN"
        );
    };
    let endpoint = &args.admin_endpoint;
    let mut admin: AdminServiceClient<Authed> =
        AdminServiceClient::new(client::connect(endpoint, Some(token)).await?);
    let report = fetch(&mut admin, endpoint, event, &args.baseline).await?;
    let event_id = report
        .event
        .as_ref()
        .map_or_else(String::new, |e| e.event_id.clone());
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("report-{event_id}")));
    let names = write(&dir, &report)?;
    let head = report.headline.clone().unwrap_or_default();
    println!(
        "{} report of {event_id}: net {} ({} sales, {} refunds, {} sites sending), ledger position {}",
        saleboard_report::status_word(&report),
        money(&head.net_minor, saleboard_report::currency(&report)),
        head.sale_count,
        head.refund_count,
        head.sending_sites,
        report.watermark
    );
    println!(
        "{} files in {}: {}",
        names.len(),
        dir.display(),
        names.join(", ")
    );
    let v = report.verification.unwrap_or_default();
    if !v.totals_match_ledger || !v.sites_add_up {
        eprintln!("warning: the report's verification failed:");
        for d in &v.differences {
            eprintln!("  {d}");
        }
        return Ok(1);
    }
    Ok(0)
}

/// The metadata key of a report's progress on an UNAVAILABLE answer (the service's
/// `saleboard_leaderboard::admin::REPORT_PROGRESS`).
const PROGRESS: &str = saleboard_leaderboard::admin::REPORT_PROGRESS;

/// Asks for the report until it is made: a large event's takes longer than one call may last,
/// and the service answers UNAVAILABLE with its progress meanwhile (shown on a bar).
async fn fetch(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    event: &str,
    baseline: &str,
) -> anyhow::Result<EventReport> {
    let mut bar: Option<indicatif::ProgressBar> = None;
    loop {
        let answer = admin
            .get_event_report(GetEventReportRequest {
                event_id: event.to_owned(),
                baseline_event_id: baseline.to_owned(),
            })
            .await;
        match answer {
            Ok(report) => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                return Ok(report.into_inner());
            }
            Err(status) if status.code() == tonic::Code::Unavailable => {
                let Some((read, of)) = status
                    .metadata()
                    .get(PROGRESS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_once('/'))
                    .and_then(|(r, o)| Some((r.parse::<u64>().ok()?, o.parse::<u64>().ok()?)))
                else {
                    return Err(client::explain(endpoint, "GetEventReport", &status));
                };
                let bar = bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(of);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "reading the ledger {bar:30} {pos}/{len} positions, {eta} left",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar
                });
                bar.set_length(of);
                bar.set_position(read);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(status) => return Err(client::explain(endpoint, "GetEventReport", &status)),
        }
    }
}

/// Writes every file of `report` into `dir`, the PDF included.
///
/// # Errors
/// When a file cannot be made or written.
pub fn write(dir: &Path, report: &EventReport) -> anyhow::Result<Vec<String>> {
    let hashes = saleboard_report::data_hashes(report)?;
    let pdf = saleboard_report_pdf::render(report, &hashes)?;
    Ok(saleboard_report::write_dir(dir, report, Some(&pdf))?)
}

async fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let mut problems = saleboard_report::check_manifest(&args.dir)?;
    if problems.is_empty() {
        println!("MANIFEST.sha256: every file has its hash");
    }
    if let Some(url) = &args.database_url {
        let summary = std::fs::read_to_string(args.dir.join("summary.json"))
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.dir.join("summary.json").display()))?;
        let held: EventReport = saleboard_proto::json::from_str(&summary)
            .map_err(|e| anyhow::anyhow!("summary.json: {e}"))?;
        let event_id = held.event.as_ref().map_or("", |e| e.event_id.as_str());
        let baseline = held
            .comparison
            .as_ref()
            .map_or("", |c| c.baseline_event_id.as_str());
        let database = saleboard_runtime::database::DatabaseArgs {
            url: url.clone(),
            pool_size: None,
        };
        let store = database.open_existing().await?;
        let board = saleboard_leaderboard::board::Board::new(store.clone()).await?;
        let fresh = saleboard_leaderboard::report::build(
            store.as_ref(),
            &board,
            event_id,
            baseline,
            saleboard_domain::UnixNanos::now(),
        )
        .await?;
        let mut differ = saleboard_report::compare_dir(&args.dir, &fresh)?;
        let pdf = args.dir.join("report.pdf");
        if pdf.exists() {
            let hashes = saleboard_report::data_hashes(&fresh)?;
            let again = saleboard_report_pdf::render(&fresh, &hashes)?;
            match saleboard_report::read_regular(&pdf) {
                Ok(held) if held == again => {}
                Ok(_) => differ.push(
                    "report.pdf: differs from the PDF of the report made again from the database"
                        .to_owned(),
                ),
                Err(e) => differ.push(format!("report.pdf: {e}")),
            }
        }
        if differ.is_empty() {
            println!(
                "every figure equals the report made again from {}",
                saleboard_storage::redact(url)
            );
        } else if held.status != ReportStatus::Final as i32 {
            println!(
                "the report is PROVISIONAL (ledger position {}): figures may have moved since (now {})",
                held.watermark, fresh.watermark
            );
        }
        problems.extend(differ);
        let v = fresh.verification.unwrap_or_default();
        for d in v.differences {
            problems.push(format!(
                "the database's stored totals differ from its ledger: {d}"
            ));
        }
        if !v.sites_add_up {
            problems
                .push("the database's site figures do not add up to its national figure".into());
        }
    }
    for p in &problems {
        println!("DIFFERS: {p}");
    }
    Ok(u8::from(!problems.is_empty()))
}
