//! `saleboard compare EVENT [--with BASELINE]`: each site beside its baseline at the same point.

use saleboard_proto::v1::GetLeaderboardRequest;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;

use super::figures::{growth, money, unconverted_warning};
use crate::client::{self, Output};

/// Arguments of `saleboard compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The event (or --event, as every query takes it; default: the current one).
    pub event_id: Option<String>,
    /// The event (as the positional EVENT).
    #[arg(long, env = "SALEBOARD_EVENT", conflicts_with = "event_id")]
    pub event: Option<String>,
    /// The event to compare with (default: the event's own baseline); --baseline as every
    /// query takes it.
    #[arg(
        long = "with",
        alias = "baseline",
        env = "SALEBOARD_BASELINE",
        default_value = ""
    )]
    pub with: String,
    /// Sites to show.
    #[arg(long, default_value_t = 1_000)]
    pub limit: u32,
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

/// `saleboard compare EVENT [--with BASELINE]`: each site's net and its baseline at the same
/// point, with the growth.
///
/// # Errors
/// When the service cannot be reached or refuses (an unknown event, no baseline).
pub async fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let endpoint = &args.endpoint;
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, None).await?);
    let b = client
        .get_leaderboard(GetLeaderboardRequest {
            limit: args.limit,
            page_token: String::new(),
            event_id: args
                .event_id
                .clone()
                .or_else(|| args.event.clone())
                .unwrap_or_default(),
            baseline_event_id: args.with.clone(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetLeaderboard", &s))?
        .into_inner();
    if b.baseline_event_id.is_empty() {
        anyhow::bail!(
            "event {} has no baseline; name one with --with EVENT (or set its baseline: saleboard admin event set ... --baseline EVENT)",
            b.event_id
        );
    }
    let currency = &b.reporting_currency;
    match args.output {
        // The answer itself: each site's net beside its baseline_net_reporting_minor and
        // in_baseline, the national figures beside baseline_net_reporting_minor.
        Output::Json => println!("{}", client::json(&b)?),
        Output::Table => {
            println!(
                "{} against {} at the same point, in {currency}",
                b.event_id, b.baseline_event_id
            );
            println!(
                "{:<24} {:>30} {:>30} {:>9}",
                "site", b.event_id, b.baseline_event_id, "growth"
            );
            for e in &b.entries {
                let (then, change) = if e.in_baseline {
                    (
                        money(e.baseline_net_reporting_minor, currency),
                        growth(e.net_reporting_minor, e.baseline_net_reporting_minor),
                    )
                } else {
                    ("(not in it)".to_owned(), "new".to_owned())
                };
                println!(
                    "{:<24} {:>30} {:>30} {:>9}",
                    e.site_id,
                    money(e.net_reporting_minor, currency),
                    then,
                    change
                );
            }
            println!(
                "{:<24} {:>30} {:>30} {:>9}",
                "national",
                money(b.national_net_reporting_minor, currency),
                money(b.baseline_net_reporting_minor, currency),
                growth(
                    b.national_net_reporting_minor,
                    b.baseline_net_reporting_minor
                )
            );
            if !b.unconverted_currencies.is_empty() {
                println!("{}", unconverted_warning(&b.unconverted_currencies));
            }
        }
    }
    Ok(())
}
