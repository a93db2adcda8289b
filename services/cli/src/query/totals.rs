//! `saleboard totals SITE [--hourly]` and `saleboard national`: totals per currency, one
//! site's or the nation's.

use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{GetNationalTotalsRequest, GetSiteTotalsRequest};

use super::QueryArgs;
use super::figures::{money, national_money, unconverted_warning};
use super::table::totals_table;
use crate::client::{self, Output};

/// Arguments of `saleboard totals`.
#[derive(Debug, clap::Args)]
pub struct TotalsArgs {
    /// The site (default: the site of --key).
    pub site: Option<String>,
    /// Ingest service endpoint, to learn the site of --key when no site is named.
    #[arg(
        long = "ingest-endpoint",
        env = "SALEBOARD_INGEST_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub ingest_endpoint: String,
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

/// `saleboard totals SITE`.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn totals(args: &TotalsArgs) -> anyhow::Result<()> {
    let endpoint = &args.query.endpoint;
    let secret = args.token.as_deref().or(args.key.as_deref());
    let site = match (&args.site, &args.key) {
        (Some(site), _) => site.clone(),
        (None, Some(key)) => {
            // The key says whose it is.
            let mut ingest = saleboard_proto::v1::ingest_service_client::IngestServiceClient::new(
                client::connect(&args.ingest_endpoint, Some(key)).await?,
            );
            ingest
                .who_am_i(saleboard_proto::v1::WhoAmIRequest {})
                .await
                .map_err(|s| client::explain(&args.ingest_endpoint, "WhoAmI", &s))?
                .into_inner()
                .site_id
        }
        (None, None) => anyhow::bail!(
            "name the site (saleboard totals SITE), or give its key (--key or \
             SALEBOARD_API_KEY) to see its own totals"
        ),
    };
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, secret).await?);
    let t = client
        .get_site_totals(GetSiteTotalsRequest {
            site_id: site,
            include_hourly: args.hourly,
            event_id: args.query.event.clone(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetSiteTotals", &s))?
        .into_inner();
    match args.query.output {
        Output::Json => println!("{}", client::json(&t)?),
        Output::Table => {
            println!(
                "{} ({}) at ledger position {}",
                t.site_id, t.display_name, t.watermark
            );
            print!("{}", totals_table(&t.totals));
            if args.hourly {
                let zone = &args.query.zone(&mut client, &args.query.event).await;
                println!(
                    "{:<40} {:<8} {:>10} {:>30}",
                    format!("hour ({})", zone.label()),
                    "currency",
                    "sales",
                    "net"
                );
                for h in &t.hourly {
                    println!(
                        "{:<40} {:<8} {:>10} {:>30}",
                        zone.show(h.hour_start.as_ref()),
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
        .get_national_totals(GetNationalTotalsRequest {
            event_id: args.query.event.clone(),
            baseline_event_id: args.query.baseline.clone(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetNationalTotals", &s))?
        .into_inner();
    match args.query.output {
        Output::Json => println!("{}", client::json(&n)?),
        Output::Table => {
            println!(
                "{}: national net {} ({} sites, ledger position {})",
                n.event_id,
                national_money(
                    n.net_reporting_minor,
                    &n.net_reporting_decimal,
                    &n.reporting_currency
                ),
                n.site_count,
                n.watermark
            );
            print!("{}", totals_table(&n.totals));
            if !n.unconverted_currencies.is_empty() {
                println!("{}", unconverted_warning(&n.unconverted_currencies));
            }
        }
    }
    Ok(())
}
