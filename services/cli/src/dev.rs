//! `saleboard dev`: the whole suite (ingest, aggregator, leaderboard) in one process on an
//! embedded SQLite file, with a demo event, demo sites, exchange rates and fresh keys, printed
//! for copy and paste.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use saleboard_aggregator::AggregatorConfig;
use saleboard_domain::{Currency, Event, Rate, SiteId, UnixNanos};
use saleboard_ingest::IngestConfig;
use saleboard_leaderboard::LeaderboardConfig;
use saleboard_runtime::auth::{new_api_key, random_secret};
use saleboard_runtime::database::DatabaseArgs;
use saleboard_storage::{StorageError, Store};
use tokio::sync::watch;

use crate::suite::{Suite, SuiteConfig};

/// Demo sites: (site_id, display name).
const DEMO_SITES: [(&str, &str); 3] = [
    ("toko-satu", "Toko Satu"),
    ("toko-dua", "Toko Dua"),
    ("toko-tiga", "Toko Tiga"),
];

/// Demo exchange rates into IDR.
const DEMO_RATES: [(&str, &str); 4] = [
    ("USD", "15850.25"),
    ("SGD", "11790"),
    ("MYR", "3560.5"),
    ("JPY", "105.75"),
];

/// Arguments of `saleboard dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// Ingest service address.
    #[arg(
        long = "ingest-listen",
        env = "SALEBOARD_INGEST_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub ingest_listen: SocketAddr,
    /// Aggregator status address.
    #[arg(
        long = "aggregator-listen",
        env = "SALEBOARD_AGGREGATOR_LISTEN",
        default_value = "127.0.0.1:50053"
    )]
    pub aggregator_listen: SocketAddr,
    /// Leaderboard and admin service address.
    #[arg(
        long = "leaderboard-listen",
        env = "SALEBOARD_LEADERBOARD_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub leaderboard_listen: SocketAddr,
    /// Organizer token; a random one is made and printed when not given.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: Option<String>,
}

/// Creates what is missing of the demo: event, sites, rates. Returns one fresh key per site
/// (secrets cannot be read back, so each run issues new ones).
async fn seed(store: &Arc<dyn Store>) -> anyhow::Result<Vec<(String, String)>> {
    if store.get_event().await?.is_none() {
        let now = UnixNanos::now();
        let event = Event::new(
            "harbolnas-demo",
            "Harbolnas demo",
            now.saturating_add_secs(-24 * 3_600),
            now.saturating_add_secs(3 * 24 * 3_600),
            "IDR",
        )?;
        store.set_event(&event).await?;
    }
    let mut keys = Vec::new();
    for (id, name) in DEMO_SITES {
        let site = SiteId::parse(id)?;
        match store.create_site(&site, name, UnixNanos::now()).await {
            Ok(_) | Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let key = new_api_key().context("no randomness for a demo key")?;
        store
            .create_api_key(&key.key_id, &site, &key.secret_hash, UnixNanos::now())
            .await?;
        keys.push((id.to_owned(), key.secret));
    }
    if store.list_exchange_rates().await?.is_empty() {
        let rates = DEMO_RATES
            .iter()
            .map(|(c, r)| Ok((Currency::parse(c)?, Rate::parse(r)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.set_exchange_rates(&rates).await?;
    }
    Ok(keys)
}

/// Runs the command until Ctrl-C or SIGTERM.
///
/// # Errors
/// When the database cannot be opened or a server cannot start.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    // A second `dev` (or anything else on these ports) is told so before it touches the
    // database or issues keys.
    for (addr, setting) in [
        (args.ingest_listen, "--ingest-listen"),
        (args.leaderboard_listen, "--leaderboard-listen"),
        (args.aggregator_listen, "--aggregator-listen"),
    ] {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            anyhow::bail!(
                "{addr} is not free ({e}): is saleboard dev already running? Stop it, or choose \
                 other addresses with {setting}"
            );
        }
    }
    let store = args.database.open().await?;
    let keys = seed(&store)
        .await
        .context("creating the demo event, sites and keys")?;
    let token = match args.organizer_token {
        Some(t) if !t.trim().is_empty() => t,
        _ => random_secret("sbo_", 24).context("no randomness for the organizer token")?,
    };

    let mut config = SuiteConfig {
        ingest: IngestConfig::defaults()?,
        leaderboard: LeaderboardConfig::with_token(&token)?,
        aggregator: AggregatorConfig::defaults()?,
    };
    config.ingest.listen = args.ingest_listen;
    config.ingest.database = args.database.clone();
    config.leaderboard.listen = args.leaderboard_listen;
    config.leaderboard.database = args.database.clone();
    config.aggregator.listen = args.aggregator_listen;
    config.aggregator.database = args.database.clone();
    let suite = Suite::build(config, store).await?;

    println!(
        "Saleboard dev suite on {}",
        saleboard_storage::redact(&args.database.url)
    );
    println!("  ingest:       http://{}", suite.ingest_addr());
    println!(
        "  leaderboard:  http://{}  (AdminService too)",
        suite.leaderboard_addr()
    );
    println!(
        "  aggregator:   http://{}  (status)",
        suite.aggregator_addr()
    );
    println!("  organizer token: {token}");
    for (site, secret) in &keys {
        println!("  API key of {site}: {secret}");
    }
    if let Some((site, _)) = keys.first() {
        println!(
            "No transactions yet: push a file with `saleboard push FILE --endpoint http://{} --key <the key of {site}>`, or simulate a day with `saleboard loadgen`.",
            suite.ingest_addr()
        );
    }
    println!("Ctrl-C stops.");

    let (stop_tx, stop_rx) = watch::channel(false);
    let running = suite.start(&stop_rx);
    saleboard_runtime::shutdown::signal().await;
    stop_tx.send_replace(true);
    running.wait().await?;
    Ok(())
}
