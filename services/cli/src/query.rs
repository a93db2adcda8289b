//! Organizer queries: `saleboard leaderboard [--watch]`, `saleboard totals SITE [--hourly]`,
//! `saleboard national`. Tables for people, `--output json` for scripts.

use std::io::Write as _;

use saleboard_domain::Currency;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    CurrencyTotals, GetLeaderboardRequest, GetNationalTotalsRequest, GetSiteTotalsRequest,
    Leaderboard, WatchLeaderboardRequest,
};
use serde_json::json;

use crate::client::{self, Output};

/// Where the leaderboard service is and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Leaderboard service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// Output format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

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
}

/// Arguments of `saleboard totals`.
#[derive(Debug, clap::Args)]
pub struct TotalsArgs {
    /// The site.
    pub site: String,
    /// Include the hourly series (needs the organizer token or that site's API key, unless the
    /// leaderboard runs with --public-site-detail).
    #[arg(long)]
    pub hourly: bool,
    /// Organizer token, for another site's hourly series.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The site's own API key, for its hourly series.
    #[arg(long, env = "SALEBOARD_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
}

/// Arguments of `saleboard national`.
#[derive(Debug, clap::Args)]
pub struct NationalArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
}

/// Minor units in major units of `currency` (the raw number when the code is unknown).
#[must_use]
pub fn money(minor: i64, currency: &str) -> String {
    Currency::parse(currency).map_or_else(|_| minor.to_string(), |c| c.format_minor(minor))
}

fn timestamp_text(ts: Option<&saleboard_proto::Timestamp>) -> String {
    ts.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The leaderboard as JSON.
#[must_use]
pub fn leaderboard_json(b: &Leaderboard) -> serde_json::Value {
    json!({
        "event_id": b.event_id,
        "reporting_currency": b.reporting_currency,
        "as_of": timestamp_text(b.as_of.as_ref()),
        "watermark": b.watermark,
        "national_net_reporting_minor": b.national_net_reporting_minor,
        "national_net_reporting_decimal": b.national_net_reporting_decimal,
        "national_out_of_range": b.national_out_of_range,
        "out_of_range_sites": b.out_of_range_sites,
        "next_page_token": b.next_page_token,
        "entries": b.entries.iter().map(|e| json!({
            "rank": e.rank,
            "site_id": e.site_id,
            "display_name": e.display_name,
            "net_reporting_minor": e.net_reporting_minor,
            "sale_count": e.sale_count,
            "refund_count": e.refund_count,
            "unconverted_currencies": e.unconverted_currencies,
            "out_of_range": e.out_of_range,
            "out_of_range_currencies": e.out_of_range_currencies,
        })).collect::<Vec<_>>(),
    })
}

/// The leaderboard as a table.
#[must_use]
pub fn leaderboard_table(b: &Leaderboard) -> String {
    let mut out = format!(
        "{} — net in {} as of {} (ledger position {})\n{:>4}  {:<24} {:>22} {:>10} {:>8}  {}\n",
        b.event_id,
        b.reporting_currency,
        timestamp_text(b.as_of.as_ref()),
        b.watermark,
        "rank",
        "site",
        "net",
        "sales",
        "refunds",
        "not converted"
    );
    for e in &b.entries {
        out.push_str(&format!(
            "{:>4}  {:<24} {:>22} {:>10} {:>8}  {}\n",
            e.rank,
            e.site_id,
            money(e.net_reporting_minor, &b.reporting_currency),
            e.sale_count,
            e.refund_count,
            e.unconverted_currencies.join(" ")
        ));
    }
    out.push_str(&format!(
        "      {:<24} {:>22}\n",
        "national",
        money(b.national_net_reporting_minor, &b.reporting_currency)
    ));
    out
}

fn totals_json(t: &CurrencyTotals) -> serde_json::Value {
    json!({
        "currency": t.currency,
        "sale_count": t.sale_count,
        "gross_minor": t.gross_minor,
        "refund_count": t.refund_count,
        "refunded_minor": t.refunded_minor,
        "net_minor": t.net_minor,
    })
}

fn totals_table(totals: &[CurrencyTotals]) -> String {
    let mut out = format!(
        "{:<8} {:>10} {:>22} {:>8} {:>22} {:>22}\n",
        "currency", "sales", "gross", "refunds", "refunded", "net"
    );
    for t in totals {
        out.push_str(&format!(
            "{:<8} {:>10} {:>22} {:>8} {:>22} {:>22}\n",
            t.currency,
            t.sale_count,
            money(t.gross_minor, &t.currency),
            t.refund_count,
            money(t.refunded_minor, &t.currency),
            money(t.net_minor, &t.currency)
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
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetLeaderboard", &s))?
            .into_inner();
        match args.query.output {
            Output::Table => print!("{}", leaderboard_table(&b)),
            Output::Json => println!("{}", leaderboard_json(&b)),
        }
        return Ok(());
    }
    let request = WatchLeaderboardRequest {
        limit: args.limit,
        min_interval_ms: args.interval_ms,
    };
    // The first watch must open (a wrong endpoint or flag is an error at once); after that a
    // screen never goes dark: a dropped stream or a restarted server is retried with backoff.
    let mut stream = client
        .watch_leaderboard(request)
        .await
        .map_err(|s| client::explain(endpoint, "WatchLeaderboard", &s))?
        .into_inner();
    let mut backoff = RECONNECT_MIN;
    loop {
        let why = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            m = stream.message() => match m {
                Ok(Some(b)) => {
                    backoff = RECONNECT_MIN;
                    match args.query.output {
                        // Clear the screen and draw from the top: a live view in place.
                        Output::Table => print!("\x1b[2J\x1b[H{}", leaderboard_table(&b)),
                        Output::Json => println!("{}", leaderboard_json(&b)),
                    }
                    std::io::stdout().flush().ok();
                    continue;
                }
                Ok(None) => "the server ended the stream".to_owned(),
                Err(status) => format!("{:?}: {}", status.code(), status.message()),
            },
        };
        stream = loop {
            eprintln!("reconnecting to {endpoint} in {backoff:?} ({why}); Ctrl-C stops");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
            let Ok(channel) = client::connect(endpoint, None).await else {
                continue;
            };
            if let Ok(opened) = LeaderboardServiceClient::new(channel)
                .watch_leaderboard(request)
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

/// `saleboard totals SITE`.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn totals(args: &TotalsArgs) -> anyhow::Result<()> {
    let endpoint = &args.query.endpoint;
    let secret = args.token.as_deref().or(args.key.as_deref());
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, secret).await?);
    let t = client
        .get_site_totals(GetSiteTotalsRequest {
            site_id: args.site.clone(),
            include_hourly: args.hourly,
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetSiteTotals", &s))?
        .into_inner();
    match args.query.output {
        Output::Json => println!(
            "{}",
            json!({
                "site_id": t.site_id,
                "display_name": t.display_name,
                "watermark": t.watermark,
                "totals": t.totals.iter().map(totals_json).collect::<Vec<_>>(),
                "hourly": t.hourly.iter().map(|h| json!({
                    "hour_start": timestamp_text(h.hour_start.as_ref()),
                    "currency": h.currency,
                    "sale_count": h.sale_count,
                    "net_minor": h.net_minor,
                })).collect::<Vec<_>>(),
            })
        ),
        Output::Table => {
            println!(
                "{} ({}) at ledger position {}",
                t.site_id, t.display_name, t.watermark
            );
            print!("{}", totals_table(&t.totals));
            if args.hourly {
                println!(
                    "{:<26} {:<8} {:>10} {:>22}",
                    "hour (UTC)", "currency", "sales", "net"
                );
                for h in &t.hourly {
                    println!(
                        "{:<26} {:<8} {:>10} {:>22}",
                        timestamp_text(h.hour_start.as_ref()),
                        h.currency,
                        h.sale_count,
                        money(h.net_minor, &h.currency)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `saleboard national`.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn national(args: &NationalArgs) -> anyhow::Result<()> {
    let endpoint = &args.query.endpoint;
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, None).await?);
    let n = client
        .get_national_totals(GetNationalTotalsRequest {})
        .await
        .map_err(|s| client::explain(endpoint, "GetNationalTotals", &s))?
        .into_inner();
    match args.query.output {
        Output::Json => println!(
            "{}",
            json!({
                "event_id": n.event_id,
                "reporting_currency": n.reporting_currency,
                "site_count": n.site_count,
                "watermark": n.watermark,
                "net_reporting_minor": n.net_reporting_minor,
                "net_reporting_decimal": n.net_reporting_decimal,
                "net_reporting_out_of_range": n.net_reporting_out_of_range,
                "out_of_range_sites": n.out_of_range_sites,
                "totals": n.totals.iter().map(totals_json).collect::<Vec<_>>(),
            })
        ),
        Output::Table => {
            println!(
                "{} sites, ledger position {}; national net (reporting currency minor units): {}",
                n.site_count, n.watermark, n.net_reporting_minor
            );
            print!("{}", totals_table(&n.totals));
        }
    }
    Ok(())
}
