//! `saleboard whoami`: what an API key is, from the ingest service, with the key alone: its
//! site, the event window transactions must fall in, and the service's limits. A retailer checks
//! its set-up before the first push without asking the organizer.

use saleboard_proto::v1::WhoAmIRequest;

use crate::client::{self, Output};
use crate::query::Zone;

/// Arguments of `saleboard whoami`.
#[derive(Debug, clap::Args)]
pub struct WhoAmIArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ingest: client::IngestTarget,
    /// Output format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Time zone of the event window's times (UTC, +07:00, Asia/Jakarta).
    #[arg(long, env = "SALEBOARD_TZ", default_value = "UTC", value_parser = Zone::parse)]
    pub tz: Zone,
}

/// Runs the command.
///
/// # Errors
/// When the service cannot be reached or refuses the key, explained.
pub async fn run(args: &WhoAmIArgs) -> anyhow::Result<()> {
    let mut ingest = args.ingest.connect().await?;
    let me = ingest
        .who_am_i(WhoAmIRequest {})
        .await
        .map_err(|s| client::explain(&args.ingest.endpoint, "WhoAmI", &s))?
        .into_inner();
    match args.output {
        Output::Json => println!("{}", client::json(&me)?),
        Output::Table => {
            println!("key {} pushes for site {}", me.key_id, me.site_id);
            match &me.event {
                Some(e) => println!(
                    "event {} ({}): sales from {} until {}, reported in {}",
                    e.event_id,
                    e.display_name,
                    args.tz.show(e.starts_at.as_ref()),
                    args.tz.show(e.ends_at.as_ref()),
                    e.reporting_currency
                ),
                None => println!(
                    "no event is configured yet: every transaction is refused until the \
                     organizer sets one"
                ),
            }
            let rate = if me.site_rate_limit == 0 {
                "no request rate limit".to_owned()
            } else {
                format!("at most {} requests per second", me.site_rate_limit)
            };
            println!(
                "limits: up to {} transactions per request, {rate}",
                me.max_batch
            );
        }
    }
    Ok(())
}
