//! `saleboard loadgen`: simulates an event day against a running suite and reports what it saw.
//!
//! One stream per site (130 by default); each site's batch size follows a Zipf law, so in
//! closed loop (every stream as fast as the server answers) site volumes follow it too. A
//! currency mix (mostly IDR, some USD, SGD, MYR, JPY), 3% refunds of the stream's earlier sales
//! (never more than a sale holds), 2% resubmissions of already-sent transactions. Sales carry
//! segments: a brand drawn by a Zipf law over `--brands` (300), its category (one of
//! `--categories`, 12), 20% cross-border; refunds take their sale's (half of them say them
//! again, half leave them empty). Open loop (`--rate`) paces each site's batches to its share
//! of the target rate.
//!
//! It reports accepted per second, ack latency percentiles, freshness (from a batch's ACCEPTED
//! to the leaderboard watermark covering it) and, at the end, reconciles every site's totals,
//! the national totals and (in a run's own event) every national breakdown against what it was
//! told ACCEPTED, to the minor unit.
//!
//! Layout:
//! - `workload`: the transactions a site's stream sends (honest, or inflated by a pattern of
//!   `--inflate`), and their wire messages.
//! - `stream`: one stream per site, its sender and receiver, reopened after a failure.
//! - `tally`: the answers counted, and what was ACCEPTED.
//! - `setup`: the run's sites, keys, rates and event, and the clean-up after it.
//! - `observe`: what the leaderboard says: totals, watermarks, breakdowns.
//! - `report`: what a run measured, and the reconciliation.

mod observe;
mod report;
mod setup;
mod stream;
mod tally;
mod workload;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;

pub use report::{Figures, Movement, Report, SegmentFigures, quantile, reconcile};
pub use workload::{Inflate, Pattern};

use crate::client::{self, Output};
use observe::{freshness, reconcile_breakdowns, site_totals, wait_for_watermark, watch_watermarks};
use setup::{LoadSite, RunEvent, clean_up, close_own_event, setup};
use stream::Plan;

/// Arguments of `saleboard loadgen`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Ingest service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_INGEST_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub ingest: String,
    /// Leaderboard service endpoint (the public port: figures and watches).
    #[arg(
        long,
        env = "SALEBOARD_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// AdminService endpoint (the leaderboard's admin listener), to set up the event, sites and
    /// keys.
    #[arg(
        long,
        env = "SALEBOARD_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:50054"
    )]
    pub admin_endpoint: String,
    /// Organizer token, to set up sites and keys.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Number of sites.
    #[arg(long, env = "SALEBOARD_LOADGEN_SITES", default_value_t = 130, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sites: u32,
    /// Zipf exponent of site volumes.
    #[arg(long, env = "SALEBOARD_LOADGEN_ZIPF", default_value_t = 1.0)]
    pub zipf: f64,
    /// Transactions to send (closed or open loop); ignored when --duration is set.
    #[arg(long, env = "SALEBOARD_LOADGEN_COUNT", default_value_t = 200_000)]
    pub count: u64,
    /// Seconds to run instead of a count.
    #[arg(long, env = "SALEBOARD_LOADGEN_DURATION")]
    pub duration: Option<u64>,
    /// Target transactions per second (open loop); 0 runs closed loop, as fast as acknowledged.
    #[arg(long, env = "SALEBOARD_LOADGEN_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Batch size of the largest site (smaller sites send smaller batches, by the Zipf law).
    #[arg(long, env = "SALEBOARD_LOADGEN_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub batch: u32,
    /// Batches in flight per stream.
    #[arg(long, env = "SALEBOARD_LOADGEN_DEPTH", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub depth: u32,
    /// Share of refunds of earlier sales.
    #[arg(long, env = "SALEBOARD_LOADGEN_REFUNDS", default_value_t = 0.03)]
    pub refunds: f64,
    /// Share of resubmissions of already-sent transactions.
    #[arg(long, env = "SALEBOARD_LOADGEN_RESUBMITS", default_value_t = 0.02)]
    pub resubmits: f64,
    /// Brands sold, with Zipf volumes (`brand-1` the biggest); each belongs to one category.
    #[arg(long, env = "SALEBOARD_LOADGEN_BRANDS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub brands: u32,
    /// Zipf exponent of brand volumes (0: every brand alike, to fill a breakdown's
    /// cardinality).
    #[arg(long, env = "SALEBOARD_LOADGEN_BRAND_ZIPF", default_value_t = 1.0)]
    pub brand_zipf: f64,
    /// Product categories.
    #[arg(long, env = "SALEBOARD_LOADGEN_CATEGORIES", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub categories: u32,
    /// Share of cross-border sales (the rest are domestic; 3% of sales say no brand).
    #[arg(long, env = "SALEBOARD_LOADGEN_CROSS_BORDER", default_value_t = 0.2)]
    pub cross_border: f64,
    /// Prefix of the site ids (`PREFIX-001`...).
    #[arg(long, env = "SALEBOARD_LOADGEN_SITE_PREFIX", default_value = "lg")]
    pub site_prefix: String,
    /// The event to load (it must be live). Default: an event of the run's own, in a free
    /// one-day window before now, closed after the run, so a real event is never touched.
    #[arg(long, env = "SALEBOARD_LOADGEN_EVENT", default_value = "")]
    pub event: String,
    /// Leave the load sites on the leaderboard and their keys active. By default loadgen cleans
    /// up after itself: at the end it revokes the keys it issued and disables its sites, so
    /// they leave the board (their ledger rows stay; the next run enables them again).
    #[arg(long, env = "SALEBOARD_LOADGEN_KEEP_SITES")]
    pub keep_sites: bool,
    /// Leave the run's own event settling (open for refunds) instead of closing it after the
    /// run: its integrity flags keep being evaluated, for an organizer to look at.
    #[arg(long, env = "SALEBOARD_LOADGEN_KEEP_OPEN")]
    pub keep_open: bool,
    /// Make a site inflate its figures, to show an integrity rule at work (repeatable):
    /// `SITE=PATTERN`, the site as the run names it (`lg-001` is the biggest), the pattern one
    /// of `late-refunds` (40% of its sales refunded in full), `backdated` (3 sales in 10
    /// occurred 2 h before they are sent), `burst` (half its sales in one second), `new-store`
    /// (half its sales from `store-999`), `round-amounts` (6 in 10 at a round amount, as
    /// Rp 2.000.000), `growth` (orders 5 times the others'). A site may follow several
    /// patterns; the other sites stay honest.
    #[arg(long = "inflate", value_name = "SITE=PATTERN")]
    pub inflate: Vec<Inflate>,
    /// Report format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl LoadgenArgs {
    /// `saleboard loadgen`'s own defaults against these endpoints, with this organizer token:
    /// for a program that drives a run (the tests do), which then sets only what it changes.
    ///
    /// # Panics
    /// Never for well-formed endpoints: the arguments are the command line's own.
    #[must_use]
    pub fn against(ingest: &str, endpoint: &str, admin_endpoint: &str, token: &str) -> Self {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: LoadgenArgs,
        }
        let command: Command = clap::Parser::try_parse_from([
            "loadgen",
            "--ingest",
            ingest,
            "--endpoint",
            endpoint,
            "--admin-endpoint",
            admin_endpoint,
            "--token",
            token,
        ])
        .unwrap_or_else(|e| panic!("loadgen's own arguments: {e}"));
        command.args
    }
}

/// Runs the load and reconciles.
///
/// # Errors
/// When the services cannot be reached or refuse the setup or a stream.
pub async fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let (sites, run_event) = setup(args).await?;
    let report = drive(args, &sites, &run_event).await;
    if run_event.own && !args.keep_open {
        close_own_event(args, &run_event)
            .await
            .context("closing the run's own event")?;
    }
    if !args.keep_sites {
        clean_up(args, &sites)
            .await
            .context("cleaning up the load sites (--keep-sites skips this)")?;
    }
    report
}

/// The load itself, then the reconciliation.
async fn drive(args: &LoadgenArgs, sites: &[LoadSite], run: &RunEvent) -> anyhow::Result<Report> {
    let names: Vec<String> = sites.iter().map(|(s, _, _)| s.clone()).collect();
    let mut board = LeaderboardServiceClient::new(client::connect(&args.endpoint, None).await?);
    let event = run.event_id.as_str();
    let before = site_totals(&mut board, &args.endpoint, &names, event).await?;
    let (watermarks, watcher) = watch_watermarks(&mut board, &args.endpoint, event).await?;

    let mut plan = Plan::new(args, sites.len());
    plan.clock = run.clock;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, (site, _, secret)) in sites.iter().enumerate() {
        tasks.push(plan.start_site(args, index, site.clone(), secret).await?);
    }
    for (sender, receiver) in tasks {
        sender.await?;
        receiver.await??;
    }
    let mut t = std::mem::take(&mut *plan.tally.lock().await);
    let elapsed = t
        .last_ack
        .map_or(Duration::ZERO, |l| l.duration_since(started));

    // Wait for the leaderboard to cover everything that was accepted, then reconcile.
    let top = t.acks.iter().map(|(p, _)| *p).max().unwrap_or(0);
    wait_for_watermark(&mut board, &args.endpoint, top, event).await?;
    // Let the watcher see the final watermark too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    watcher.abort();
    let after = site_totals(&mut board, &args.endpoint, &names, event).await?;
    let mut mismatches = reconcile(&t.expected(), &before, &after);
    if run.own {
        // The run's own event holds nothing else: every breakdown is exactly what it sent.
        mismatches.extend(
            reconcile_breakdowns(args, &mut board, event, &t.expected_segments(), top).await?,
        );
    }
    let fresh_us = freshness(&t.acks, &watermarks.lock().await);
    t.ack_us.sort_unstable();
    Ok(Report {
        sent: t.accepted + t.duplicate + t.rejected.values().sum::<u64>(),
        accepted: t.accepted,
        recovered: t.recovered,
        duplicate: t.duplicate,
        reopened: t.reopened,
        rejected: t.rejected,
        elapsed,
        ack_us: t.ack_us,
        fresh_us,
        mismatches,
        event_id: run.event_id.clone(),
        page: screen_page(&args.endpoint, &run.event_id),
    })
}

/// The big screen's address for `event` on the leaderboard at `endpoint` (its public port).
fn screen_page(endpoint: &str, event: &str) -> String {
    let base = if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", endpoint.trim_end_matches('/'))
    };
    format!("{base}/?event={event}")
}

/// Runs the command: prints the report; exit 1 when reconciliation fails.
///
/// # Errors
/// When the run cannot start or a stream fails.
pub async fn command(args: &LoadgenArgs) -> anyhow::Result<u8> {
    let report = run(args).await?;
    match args.output {
        Output::Table => print!("{}", report.table()),
        Output::Json => println!("{}", report.json()),
    }
    Ok(u8::from(!report.mismatches.is_empty()))
}
