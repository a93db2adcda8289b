//! `saleboard leaderboard [--watch]`: the ranking as a table (with the top categories under it)
//! or JSON, once or live; a watch reconnects by itself.

use std::io::Write as _;

use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{GetLeaderboardRequest, WatchLeaderboardRequest};

use super::QueryArgs;
use super::figures::{money, share};
use super::table::leaderboard_table;
use super::zone::Zone;
use crate::client::{self, Output};

/// Arguments of `saleboard leaderboard`.
#[derive(Debug, clap::Args)]
pub struct LeaderboardArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
    /// Sites to show.
    #[arg(long, env = "SALEBOARD_LIMIT", default_value_t = 10)]
    pub limit: u32,
    /// Continue from a previous page's `next_page_token` (same snapshot).
    #[arg(long, conflicts_with = "watch")]
    pub page_token: Option<String>,
    /// Keep the table live, redrawn in place on every change.
    #[arg(long)]
    pub watch: bool,
    /// With --watch, at most one redraw per this many milliseconds.
    #[arg(long, env = "SALEBOARD_WATCH_INTERVAL_MS", default_value_t = 500)]
    pub interval_ms: u32,
    /// Under the table, the top N categories of the event, with their share (0: none).
    #[arg(long, env = "SALEBOARD_TOP_CATEGORIES", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub categories: u32,
}

/// The top `n` categories of an event, as lines under the leaderboard table (empty when `n`
/// is 0 or the breakdown cannot be read: the board stays up).
async fn categories_block(
    client: &mut LeaderboardServiceClient<client::Authed>,
    event_id: &str,
    n: u32,
) -> String {
    if n == 0 {
        return String::new();
    }
    let Ok(b) = client
        .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
            event_id: event_id.to_owned(),
            dimension: saleboard_proto::v1::Dimension::Category.into(),
            site_id: String::new(),
            limit: n,
            page_token: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
    else {
        return String::new();
    };
    let mut out = String::from("\ntop categories\n");
    for e in &b.entries {
        out.push_str(&format!(
            "{:>4}  {:<24} {:>30} {:>7}\n",
            e.rank,
            if e.key.is_empty() { "(none)" } else { &e.key },
            money(e.net_reporting_minor, &b.reporting_currency),
            share(e.net_reporting_minor, b.total_net_reporting_minor)
        ));
    }
    out
}

/// `saleboard leaderboard`.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn leaderboard(args: &LeaderboardArgs) -> anyhow::Result<()> {
    let endpoint = &args.query.endpoint;
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, None).await?);
    if !args.watch {
        let b = client
            .get_leaderboard(GetLeaderboardRequest {
                limit: args.limit,
                page_token: args.page_token.clone().unwrap_or_default(),
                event_id: args.query.event.clone(),
                baseline_event_id: args.query.baseline.clone(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetLeaderboard", &s))?
            .into_inner();
        match args.query.output {
            Output::Table => {
                let zone = args.query.zone(&mut client, &b.event_id).await;
                let categories = categories_block(&mut client, &b.event_id, args.categories).await;
                print!("{}{categories}", leaderboard_table(&b, &zone));
            }
            Output::Json => println!("{}", client::json(&b)?),
        }
        return Ok(());
    }
    let request = WatchLeaderboardRequest {
        limit: args.limit,
        min_interval_ms: args.interval_ms,
        event_id: args.query.event.clone(),
        baseline_event_id: args.query.baseline.clone(),
    };
    // The first watch must open (a wrong endpoint or flag is an error at once); after that a
    // screen never goes dark: a dropped stream or a restarted server is retried with backoff.
    let mut stream = client
        .watch_leaderboard(request.clone())
        .await
        .map_err(|s| client::explain(endpoint, "WatchLeaderboard", &s))?
        .into_inner();
    let mut backoff = RECONNECT_MIN;
    let mut zone_cache: Option<Zone> = None;
    loop {
        let why = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            m = stream.message() => match m {
                Ok(Some(b)) => {
                    backoff = RECONNECT_MIN;
                    match args.query.output {
                        // Clear the screen and draw from the top: a live view in place.
                        Output::Table => {
                            let zone = match &zone_cache {
                                Some(zone) => zone.clone(),
                                None => args.query.zone(&mut client, &b.event_id).await,
                            };
                            let categories =
                                categories_block(&mut client, &b.event_id, args.categories).await;
                            print!("\x1b[2J\x1b[H{}{categories}", leaderboard_table(&b, &zone));
                            zone_cache = Some(zone);
                        }
                        Output::Json => println!("{}", client::json(&b)?),
                    }
                    std::io::stdout().flush().ok();
                    continue;
                }
                Ok(None) => "the server ended the stream".to_owned(),
                Err(status) => format!("{}: {}", client::code_name(status.code()), status.message()),
            },
        };
        stream = loop {
            eprintln!(
                "reconnecting to {endpoint} in {} ms ({why}); Ctrl-C stops",
                backoff.as_millis()
            );
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
            let Ok(channel) = client::connect(endpoint, None).await else {
                continue;
            };
            if let Ok(opened) = LeaderboardServiceClient::new(channel)
                .watch_leaderboard(request.clone())
                .await
            {
                break opened.into_inner();
            }
        };
    }
}

/// First wait before reconnecting a watch.
const RECONNECT_MIN: std::time::Duration = std::time::Duration::from_millis(250);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: std::time::Duration = std::time::Duration::from_secs(5);
