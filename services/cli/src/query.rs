//! Organizer queries: `saleboard leaderboard [--watch]`, `saleboard totals SITE [--hourly]`,
//! `saleboard national`. Tables for people, `--output json` for scripts.

use std::io::Write as _;

use saleboard_domain::Currency;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    CurrencyTotals, GetLeaderboardRequest, GetNationalTotalsRequest, GetSiteTotalsRequest,
    Leaderboard, WatchLeaderboardRequest,
};

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
    /// The event (default: the current one: live, else last ended, else next).
    #[arg(long, env = "SALEBOARD_EVENT", default_value = "")]
    pub event: String,
    /// The event to compare with (default: the event's own baseline, if it has one).
    #[arg(long, env = "SALEBOARD_BASELINE", default_value = "")]
    pub baseline: String,
    /// Time zone of the times in tables: UTC, an offset such as +07:00, or an IANA name such
    /// as Asia/Jakarta. JSON output stays RFC 3339 in UTC.
    /// Default: the event's own time zone when it has one, else UTC.
    #[arg(long, env = "SALEBOARD_TZ", value_parser = Zone::parse)]
    pub tz: Option<Zone>,
}

impl QueryArgs {
    /// The zone to show times in: `--tz`, else the event's own time zone, else UTC.
    async fn zone(
        &self,
        client: &mut LeaderboardServiceClient<client::Authed>,
        event_id: &str,
    ) -> Zone {
        if let Some(zone) = &self.tz {
            return zone.clone();
        }
        let events = client
            .list_events(saleboard_proto::v1::ListEventsRequest {})
            .await
            .map(|r| r.into_inner().events)
            .unwrap_or_default();
        // "" is the current event: the live one, else the latest that started.
        let live = saleboard_proto::v1::EventState::Live;
        let event = if event_id.is_empty() {
            events.iter().find(|e| e.state() == live).or_else(|| {
                events
                    .iter()
                    .find(|e| e.state() != saleboard_proto::v1::EventState::Scheduled)
            })
        } else {
            events.iter().find(|e| e.event_id == event_id)
        };
        event
            .filter(|e| !e.time_zone.is_empty())
            .and_then(|e| Zone::parse(&e.time_zone).ok())
            .unwrap_or_else(Zone::utc)
    }
}

/// A time zone for display, with the label it is shown with.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    label: String,
}

impl Zone {
    /// `UTC` (or `Z`), a fixed offset (`+07:00`, `-0530`), or an IANA name (`Asia/Jakarta`).
    ///
    /// # Errors
    /// A sentence saying what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Self::utc());
        }
        if let Some(offset) = fixed_offset(text) {
            let offset = jiff::tz::Offset::from_seconds(offset)
                .map_err(|e| format!("time zone {text:?}: {e}"))?;
            return Ok(Self {
                tz: jiff::tz::TimeZone::fixed(offset),
                label: text.to_owned(),
            });
        }
        let tz = jiff::tz::TimeZone::get(text).map_err(|e| {
            format!(
                "time zone {text:?} is not UTC, an offset such as +07:00, or a known IANA name \
                 such as Asia/Jakarta ({e})"
            )
        })?;
        Ok(Self {
            tz,
            label: text.to_owned(),
        })
    }

    /// UTC.
    #[must_use]
    pub fn utc() -> Self {
        Self {
            tz: jiff::tz::TimeZone::UTC,
            label: "UTC".to_owned(),
        }
    }

    /// The zone's name as given (`UTC`, `+07:00`, `Asia/Jakarta`).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A time in this zone, with its offset and the zone's name: `2026-12-12 17:00:00 +07:00
    /// Asia/Jakarta`, `2026-12-12 10:00:00 UTC`.
    #[must_use]
    pub fn show(&self, ts: Option<&saleboard_proto::Timestamp>) -> String {
        let Some(at) = ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()) else {
            return String::new();
        };
        let zoned = at.to_zoned_datetime(self.tz.clone());
        if self.label == "UTC" {
            format!("{} UTC", zoned.strftime("%Y-%m-%d %H:%M:%S"))
        } else {
            format!("{} {}", zoned.strftime("%Y-%m-%d %H:%M:%S %:z"), self.label)
        }
    }
}

/// Seconds east of UTC of `+07:00`, `-05:30`, `+0700` or `+07`.
fn fixed_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
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

fn dimension_name(b: &saleboard_proto::v1::Breakdown) -> &'static str {
    match b.dimension() {
        saleboard_proto::v1::Dimension::Brand => "brand",
        saleboard_proto::v1::Dimension::Category => "category",
        saleboard_proto::v1::Dimension::Origin => "origin",
        saleboard_proto::v1::Dimension::Unspecified => "?",
    }
}

/// A breakdown as a table: rank, key (`(none)` for transactions without the field), net,
/// share of the total, counts.
#[must_use]
pub fn breakdown_table(b: &saleboard_proto::v1::Breakdown, zone: &Zone) -> String {
    let scope = if b.site_id.is_empty() {
        "national".to_owned()
    } else {
        format!("site {}", b.site_id)
    };
    let mut out = format!(
        "{} by {}, {scope}, in {} as of {} (ledger position {})\n{:>4}  {:<28} {:>30} {:>7} {:>10} {:>8} {:>6}\n",
        b.event_id,
        dimension_name(b),
        b.reporting_currency,
        zone.show(b.as_of.as_ref()),
        b.watermark,
        "rank",
        dimension_name(b),
        "net",
        "share",
        "sales",
        "refunds",
        "sites",
    );
    for e in &b.entries {
        let key = if e.key.is_empty() {
            "(none)"
        } else {
            e.key.as_str()
        };
        let net = if e.out_of_range {
            "out of range".to_owned()
        } else {
            money(e.net_reporting_minor, &b.reporting_currency)
        };
        out.push_str(&format!(
            "{:>4}  {:<28} {:>30} {:>7} {:>10} {:>8} {:>6}\n",
            e.rank,
            key,
            net,
            share(e.net_reporting_minor, b.total_net_reporting_minor),
            e.sale_count,
            e.refund_count,
            e.site_count
        ));
    }
    out.push_str(&format!(
        "      {:<28} {:>30}\n",
        "total",
        money(b.total_net_reporting_minor, &b.reporting_currency)
    ));
    if !b.next_page_token.is_empty() {
        out.push_str(&format!("more: --page-token {}\n", b.next_page_token));
    }
    if !b.unconverted_currencies.is_empty() {
        out.push_str(&unconverted_warning(&b.unconverted_currencies));
        out.push('\n');
    }
    out
}

/// `n / d` in tenths of a percent (`n x 1000 / d`), rounded half to even; `d` is not 0.
fn tenths_of_percent(n: i128, d: i128) -> i128 {
    let n = n * 1_000;
    let (q, r) = (n / d, n % d);
    let twice = (r * 2).abs();
    if twice > d.abs() || (twice == d.abs() && q % 2 != 0) {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

/// Tenths of a percent as text, with `plus` before a figure that is not negative.
fn percent_text(tenths: i128, plus: &str) -> String {
    let sign = if tenths < 0 { "-" } else { plus };
    format!("{sign}{}.{}%", tenths.abs() / 10, tenths.abs() % 10)
}

/// `part` of `whole` in percent to a tenth (half to even), from the two integers.
#[must_use]
pub fn share(part: i64, whole: i64) -> String {
    if whole == 0 {
        return "n/a".to_owned();
    }
    percent_text(tenths_of_percent(i128::from(part), i128::from(whole)), "")
}

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

/// Money as people read it: `IDR 6,557,786.00` (the raw number and code when the code is
/// unknown).
#[must_use]
pub fn money(minor: i64, currency: &str) -> String {
    wide_money(i128::from(minor), currency)
}

/// As [`money`], for a figure that may pass `i64` (sent as decimal text).
#[must_use]
pub fn wide_money(minor: i128, currency: &str) -> String {
    Currency::parse(currency).map_or_else(
        |_| format!("{currency} {minor} (minor units)"),
        |c| c.display_minor(minor),
    )
}

/// A national figure: the exact decimal text when the service sent one, else the int64.
fn national_money(minor: i64, decimal: &str, currency: &str) -> String {
    decimal.parse::<i128>().map_or_else(
        |_| money(minor, currency),
        |wide| wide_money(wide, currency),
    )
}

/// The line that says the national figure leaves sales out.
#[must_use]
pub fn unconverted_warning(currencies: &[String]) -> String {
    format!(
        "warning: sales in {} have no exchange rate and are left out of the national figure; \
         set a rate with `saleboard admin rates set FILE`",
        currencies.join(", ")
    )
}

/// The leaderboard as a table, times in `zone`.
#[must_use]
pub fn leaderboard_table(b: &Leaderboard, zone: &Zone) -> String {
    let mut out = format!(
        "{} — net in {} as of {} (ledger position {})\n{:>4}  {:<24} {:>30} {:>10} {:>8}  {}\n",
        b.event_id,
        b.reporting_currency,
        zone.show(b.as_of.as_ref()),
        b.watermark,
        "rank",
        "site",
        "net",
        "sales",
        "refunds",
        "not converted"
    );
    for e in &b.entries {
        let net = if e.out_of_range {
            format!("out of range ({})", e.out_of_range_currencies.join(" "))
        } else {
            money(e.net_reporting_minor, &b.reporting_currency)
        };
        // A site without any transaction has no rank (0): shown as a dash.
        let rank = if e.rank == 0 {
            "-".to_owned()
        } else {
            e.rank.to_string()
        };
        out.push_str(&format!(
            "{:>4}  {:<24} {:>30} {:>10} {:>8}  {}\n",
            rank,
            e.site_id,
            net,
            e.sale_count,
            e.refund_count,
            e.unconverted_currencies.join(" ")
        ));
    }
    out.push_str(&format!(
        "      {:<24} {:>30}\n",
        "national",
        national_money(
            b.national_net_reporting_minor,
            &b.national_net_reporting_decimal,
            &b.reporting_currency
        )
    ));
    if !b.baseline_event_id.is_empty() {
        out.push_str(&format!(
            "      {:<24} {:>30}  {}\n",
            format!("vs {}", b.baseline_event_id),
            money(b.baseline_net_reporting_minor, &b.reporting_currency),
            growth(
                b.national_net_reporting_minor,
                b.baseline_net_reporting_minor
            )
        ));
    }
    if !b.unconverted_currencies.is_empty() {
        out.push_str(&unconverted_warning(&b.unconverted_currencies));
        out.push('\n');
    }
    out
}

/// Growth of `now` over `then`, to a tenth of a percent (half to even), from the two integers:
/// `+23.4%`; `n/a` when the baseline is zero.
#[must_use]
pub fn growth(now: i64, then: i64) -> String {
    if then == 0 {
        return "n/a".to_owned();
    }
    let (now, then) = (i128::from(now), i128::from(then));
    percent_text(tenths_of_percent(now - then, then), "+")
}

fn totals_table(totals: &[CurrencyTotals]) -> String {
    let mut out = format!(
        "{:<8} {:>10} {:>30} {:>8} {:>30} {:>30}\n",
        "currency", "sales", "gross", "refunds", "refunded", "net"
    );
    for t in totals {
        out.push_str(&format!(
            "{:<8} {:>10} {:>30} {:>8} {:>30} {:>30}\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_utc_offsets_or_iana_names() {
        let at = saleboard_proto::Timestamp {
            seconds: 1_765_533_600, // 2025-12-12T10:00:00Z
            nanos: 0,
        };
        let show = |zone: &str| Zone::parse(zone).expect(zone).show(Some(&at));
        assert_eq!(show("UTC"), "2025-12-12 10:00:00 UTC");
        assert_eq!(show("Z"), "2025-12-12 10:00:00 UTC");
        assert_eq!(show("+07:00"), "2025-12-12 17:00:00 +07:00 +07:00");
        assert_eq!(show("-0530"), "2025-12-12 04:30:00 -05:30 -0530");
        assert_eq!(show("+09"), "2025-12-12 19:00:00 +09:00 +09");
        assert_eq!(
            show("Asia/Jakarta"),
            "2025-12-12 17:00:00 +07:00 Asia/Jakarta"
        );
        for bad in ["Mars/Olympus", "+25:00", "+07:60", "7", "", "+7"] {
            assert!(Zone::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Zone::utc().show(None), "");
    }

    #[test]
    fn shares_round_half_to_even() {
        assert_eq!(share(4_500, 8_500), "52.9%");
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(1, 8), "12.5%");
        assert_eq!(share(1, 16), "6.2%", "62.5 tenths -> 62");
        assert_eq!(share(3, 16), "18.8%", "187.5 tenths -> 188");
        assert_eq!(share(-1, 3), "-33.3%");
        assert_eq!(share(5, 0), "n/a");
    }

    #[test]
    fn growth_from_two_integers() {
        assert_eq!(growth(1_234, 1_000), "+23.4%");
        assert_eq!(growth(1_000, 1_000), "+0.0%");
        assert_eq!(growth(500, 1_000), "-50.0%");
        assert_eq!(
            growth(10_005, 10_000),
            "+0.0%",
            "0.05% rounds half to even: 0"
        );
        assert_eq!(
            growth(10_015, 10_000),
            "+0.2%",
            "0.15% rounds half to even: 0.2"
        );
        assert_eq!(growth(1, 0), "n/a");
    }

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(655_778_600, "IDR"), "IDR 6,557,786.00");
        assert_eq!(
            national_money(0, "92233720368547758070", "IDR"),
            "IDR 922,337,203,685,477,580.70"
        );
        assert_eq!(national_money(150, "", "USD"), "USD 1.50");
        assert_eq!(money(5, "???"), "??? 5 (minor units)");
    }
}
