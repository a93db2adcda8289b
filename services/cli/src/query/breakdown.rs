//! `saleboard breakdown brand|category|origin`: what sold, ranked, national or one site's.

use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;

use super::QueryArgs;
use super::table::breakdown_table;
use crate::client::{self, Output};

/// A breakdown dimension, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DimensionArg {
    /// By brand.
    Brand,
    /// By product category.
    Category,
    /// Domestic against cross-border.
    Origin,
}

impl From<DimensionArg> for saleboard_domain::Dimension {
    fn from(d: DimensionArg) -> Self {
        match d {
            DimensionArg::Brand => Self::Brand,
            DimensionArg::Category => Self::Category,
            DimensionArg::Origin => Self::Origin,
        }
    }
}

pub use saleboard_leaderboard::breakdown::dimension_msg;

/// Arguments of `saleboard breakdown`.
#[derive(Debug, clap::Args)]
pub struct BreakdownArgs {
    /// What to break the figures down by.
    #[arg(value_enum)]
    pub dimension: DimensionArg,
    /// One site's breakdown (needs the organizer token or that site's API key, unless the
    /// leaderboard runs with --public-site-detail); default national.
    #[arg(long, default_value = "")]
    pub site: String,
    /// Keys to show (at most 1,000 per page).
    #[arg(long, env = "SALEBOARD_LIMIT", default_value_t = 10)]
    pub limit: u32,
    /// Continue from a previous page's `next_page_token` (same snapshot).
    #[arg(long)]
    pub page_token: Option<String>,
    /// Organizer token, for a site's breakdown.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The site's own API key, for its breakdown.
    #[arg(long, env = "SALEBOARD_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
}

/// `saleboard breakdown brand|category|origin`: what sold, ranked, national or one site's.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn breakdown(args: &BreakdownArgs) -> anyhow::Result<()> {
    if !args.query.baseline.is_empty() {
        anyhow::bail!(
            "breakdown has no comparison: --baseline (SALEBOARD_BASELINE) is for leaderboard, \
             national and compare; leave it out, or look at the baseline with --event {}",
            args.query.baseline
        );
    }
    let endpoint = &args.query.endpoint;
    let secret = if args.site.is_empty() {
        None
    } else {
        args.token.as_deref().or(args.key.as_deref())
    };
    let mut client = LeaderboardServiceClient::new(client::connect(endpoint, secret).await?);
    let b = client
        .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
            event_id: args.query.event.clone(),
            dimension: dimension_msg(args.dimension.into()).into(),
            site_id: args.site.clone(),
            limit: args.limit,
            page_token: args.page_token.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetBreakdown", &s))?
        .into_inner();
    match args.query.output {
        Output::Json => println!("{}", client::json(&b)?),
        Output::Table => {
            let zone = args.query.zone(&mut client, &b.event_id).await;
            print!("{}", breakdown_table(&b, &zone));
        }
    }
    Ok(())
}
