//! `saleboard dev`: the whole suite (ingest, aggregator, leaderboard) in one process on an
//! embedded SQLite file, with a demo event, demo sites, exchange rates and keys, printed for
//! copy and paste. The organizer token and the keys are kept beside the database file, so a
//! restart prints (and accepts) the same ones.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use saleboard_aggregator::AggregatorConfig;
use saleboard_domain::{Currency, Event, PushedOrigin, Rate, SiteId, UnixNanos};
use saleboard_ingest::IngestConfig;
use saleboard_leaderboard::LeaderboardConfig;
use saleboard_runtime::auth::{new_api_key, random_secret, secret_hash};
use saleboard_runtime::database::DatabaseArgs;
use saleboard_storage::{ActiveKey, Audit, AuditCall, StorageError, Store};
use serde_json::json;
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
    /// Leaderboard address (its public port: figures, the big screen).
    #[arg(
        long = "leaderboard-listen",
        env = "SALEBOARD_LEADERBOARD_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub leaderboard_listen: SocketAddr,
    /// AdminService address (the organizer's controls, apart from the public port).
    #[arg(
        long = "admin-listen",
        env = "SALEBOARD_ADMIN_LISTEN",
        default_value = "127.0.0.1:50054"
    )]
    pub admin_listen: SocketAddr,
    /// Organizer token; a random one is made and printed when not given.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: Option<String>,
}

/// The demo's secrets, kept beside the SQLite file (`FILE-dev-credentials.json`, mode 0600)
/// so a restarted `dev` prints and accepts the same organizer token and API keys.
#[derive(Debug, Default)]
struct Credentials {
    /// Where they are kept; `None` for a database without a file (in memory, PostgreSQL).
    path: Option<PathBuf>,
    organizer_token: Option<String>,
    /// (site_id, key_id, secret).
    keys: Vec<(String, String, String)>,
}

impl Credentials {
    /// The file beside a `sqlite:` database, read when it exists.
    fn load(database_url: &str) -> anyhow::Result<Self> {
        let Some(path) = credentials_path(database_url) else {
            return Ok(Self::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: Some(path),
                    ..Self::default()
                });
            }
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the JSON dev writes", path.display()))?;
        let keys = json["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| {
                        Some((
                            k["site_id"].as_str()?.to_owned(),
                            k["key_id"].as_str()?.to_owned(),
                            k["secret"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            organizer_token: json["organizer_token"].as_str().map(str::to_owned),
            keys,
            path: Some(path),
        })
    }

    /// Writes the file (readable by its owner only).
    fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::json!({
            "organizer_token": self.organizer_token,
            "keys": self.keys.iter().map(|(site, key, secret)| serde_json::json!({
                "site_id": site, "key_id": key, "secret": secret,
            })).collect::<Vec<_>>(),
        });
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, format!("{json:#}\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// The kept secret of `site`'s key, when that key is still active in the database.
    fn active_secret(&self, site: &str, active: &[ActiveKey]) -> Option<String> {
        self.keys
            .iter()
            .find(|(s, key_id, secret)| {
                s == site
                    && active.iter().any(|a| {
                        &a.key_id == key_id
                            && a.site_id.as_str() == site
                            && a.secret_hash == secret_hash(secret)
                    })
            })
            .map(|(_, _, secret)| secret.clone())
    }
}

/// `FILE-dev-credentials.json` beside the file of a `sqlite:` URL; `None` in memory or for
/// another database.
fn credentials_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        return None;
    }
    Some(PathBuf::from(format!("{file}-dev-credentials.json")))
}

/// Creates what is missing of the demo: event, sites, rates, and a key per site (the kept key
/// when it is still active, else a new one, which is kept).
async fn seed(
    store: &Arc<dyn Store>,
    credentials: &mut Credentials,
) -> anyhow::Result<Vec<(String, String)>> {
    let fresh = store.events().await?.is_empty();
    let active = store.active_keys().await?;
    let mut keys = Vec::new();
    for (id, name) in DEMO_SITES {
        let site = SiteId::parse(id)?;
        let call = demo_call("CreateSite", &json!({"site_id": id, "display_name": name}));
        match store
            .create_site(&site, name, call.at, Audit::ok(&call))
            .await
        {
            Ok(_) | Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(secret) = credentials.active_secret(id, &active) {
            keys.push((id.to_owned(), secret));
            continue;
        }
        let key = new_api_key().context("no randomness for a demo key")?;
        let call = demo_call("CreateApiKey", &json!({"site_id": id}));
        store
            .create_api_key(
                &key.key_id,
                &site,
                &key.secret_hash,
                call.at,
                Audit::ok(&call),
            )
            .await?;
        credentials.keys.retain(|(s, _, _)| s != id);
        credentials
            .keys
            .push((id.to_owned(), key.key_id, key.secret.clone()));
        keys.push((id.to_owned(), key.secret));
    }
    if fresh {
        demo_events(store).await?;
    }
    Ok(keys)
}

/// Last year's demo event (closed, with a small history) and today's (live, compared with it),
/// so the comparison shows at once.
async fn demo_events(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    const DAY: i64 = 86_400;
    const YEAR: i64 = 365 * DAY;
    let now = UnixNanos::now();
    let rates = DEMO_RATES
        .iter()
        .map(|(c, r)| Ok((Currency::parse(c)?, Rate::parse(r)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let starts = now.saturating_add_secs(-DAY);
    let ends = now.saturating_add_secs(3 * DAY);
    let last = Event::new(
        "harbolnas-demo-last-year",
        "Harbolnas demo, last year",
        starts.saturating_add_secs(-YEAR),
        ends.saturating_add_secs(-YEAR),
        "IDR",
    )?;
    let set_event = |e: &Event| demo_call("SetEvent", &json!({"event_id": e.event_id}));
    let set_rates = |e: &Event| demo_call("SetExchangeRates", &json!({"event_id": e.event_id}));
    // Open while its history goes in, then closed: final.
    store
        .set_event(
            &last.clone().closing_at(now.saturating_add_secs(DAY))?,
            now,
            Audit::ok(&set_event(&last)),
        )
        .await?;
    store
        .set_exchange_rates(&last.event_id, &rates, Audit::ok(&set_rates(&last)))
        .await?;
    store.append(&demo_history(&last)?).await?;
    store
        .set_event(&last, now, Audit::ok(&set_event(&last)))
        .await?;
    let today = Event::new("harbolnas-demo", "Harbolnas demo", starts, ends, "IDR")?
        .compared_with(&last.event_id)?;
    store
        .set_event(&today, now, Audit::ok(&set_event(&today)))
        .await?;
    store
        .set_exchange_rates(&today.event_id, &rates, Audit::ok(&set_rates(&today)))
        .await?;
    Ok(())
}

/// The audit record of a change `dev` makes to its demo data itself (not through
/// AdminService): made by `bootstrap`, the organizer of the token `dev` prints, and said so.
fn demo_call(rpc: &str, request: &serde_json::Value) -> AuditCall {
    AuditCall {
        at: UnixNanos::now(),
        organizer: saleboard_domain::audit::BOOTSTRAP.to_owned(),
        rpc: format!("{rpc} (saleboard dev, demo data)"),
        request_json: request.to_string(),
    }
}

/// Brand, category and origin of a demo sale: local and imported brands in a few categories.
fn demo_segments(n: i64) -> anyhow::Result<(&'static str, &'static str, PushedOrigin)> {
    const BRANDS: [(&str, &str, PushedOrigin); 6] = [
        ("wardah", "beauty", PushedOrigin::Domestic),
        ("indomie", "food", PushedOrigin::Domestic),
        ("eiger", "fashion", PushedOrigin::Domestic),
        ("samsung", "electronics", PushedOrigin::CrossBorder),
        ("uniqlo", "fashion", PushedOrigin::CrossBorder),
        ("xiaomi", "electronics", PushedOrigin::CrossBorder),
    ];
    Ok(BRANDS[usize::try_from(n.rem_euclid(6))?])
}

/// A few hundred sales of the demo sites spread over the first two days of `event`, each
/// validated like a pushed transaction.
fn demo_history(event: &Event) -> anyhow::Result<Vec<saleboard_storage::Candidate>> {
    let mut history = Vec::new();
    let now = UnixNanos::now();
    let limits = saleboard_domain::Limits::default();
    for (per_hour, (site, _)) in [4_i64, 3, 2].into_iter().zip(DEMO_SITES) {
        let site = SiteId::parse(site)?;
        for hour in 0..48_i64 {
            for n in 0..per_hour {
                let at = event
                    .starts_at
                    .saturating_add_secs(hour * 3_600 + n * 600 + 60);
                let (brand, category, origin) = demo_segments(hour + n)?;
                let input = saleboard_domain::TransactionInput {
                    transaction_id: format!("last-year-{hour}-{n}"),
                    store_id: String::new(),
                    kind: saleboard_domain::PushedKind::Sale,
                    currency: "IDR".into(),
                    // Rp 50.000 to Rp 500.000, varied by the hour.
                    amount_minor: 5_000_000 + ((hour * 7 + n * 13) % 10) * 5_000_000,
                    occurred_at: Some(at.to_parts()),
                    refund_of: String::new(),
                    brand: brand.into(),
                    category: category.into(),
                    origin,
                };
                let tx = saleboard_domain::transaction::validate(&input, now, &limits)
                    .map_err(|r| anyhow::anyhow!("a demo sale is invalid: {}", r.message))?;
                history.push(saleboard_storage::Candidate {
                    site: site.clone(),
                    key_id: "dev-history".into(),
                    received_at: at,
                    tx,
                });
            }
        }
    }
    Ok(history)
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
        (args.admin_listen, "--admin-listen"),
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
    let mut credentials = Credentials::load(&args.database.url)?;
    let keys = seed(&store, &mut credentials)
        .await
        .context("creating the demo event, sites and keys")?;
    let token = match (args.organizer_token, credentials.organizer_token.clone()) {
        (Some(t), _) if !t.trim().is_empty() => t,
        (_, Some(kept)) if !kept.trim().is_empty() => kept,
        _ => {
            let made =
                random_secret("sbo_", 24).context("no randomness for the organizer token")?;
            credentials.organizer_token = Some(made.clone());
            made
        }
    };
    credentials.save()?;

    let mut config = SuiteConfig {
        ingest: IngestConfig::defaults()?,
        leaderboard: LeaderboardConfig::with_token(&token)?,
        aggregator: AggregatorConfig::defaults()?,
    };
    config.ingest.listen = args.ingest_listen;
    config.ingest.database = args.database.clone();
    config.leaderboard.listen = args.leaderboard_listen;
    config.leaderboard.admin_listen = args.admin_listen;
    config.leaderboard.database = args.database.clone();
    config.aggregator.listen = args.aggregator_listen;
    config.aggregator.database = args.database.clone();
    // What today's demo event already holds (a restarted dev keeps its ledger).
    let today: u64 = store
        .read_board(Some("harbolnas-demo"), None)
        .await
        .context("reading the demo event's totals")?
        .totals
        .iter()
        .map(|(_, _, t)| t.sale_count.saturating_add(t.refund_count))
        .sum();
    let suite = Suite::build(config, store).await?;

    println!(
        "Saleboard dev suite on {}",
        saleboard_storage::redact(&args.database.url)
    );
    println!("  ingest:       http://{}", suite.ingest_addr());
    println!("  leaderboard:  http://{}", suite.leaderboard_addr());
    println!(
        "  admin:        http://{}  (AdminService, the organizer's; saleboard admin --admin-endpoint)",
        suite.admin_addr()
    );
    println!(
        "  aggregator:   http://{}  (status)",
        suite.aggregator_addr()
    );
    println!(
        "  big screen:   http://{}/  (open it in a browser; JSON at /api/v1/leaderboard)",
        suite.leaderboard_addr()
    );
    println!("  organizer token: {token}");
    for (site, secret) in &keys {
        println!("  API key of {site}: {secret}");
    }
    match &credentials.path {
        Some(path) => println!(
            "  (kept in {}: the same token and keys on every start with this database)",
            path.display()
        ),
        None => println!("  (new keys and token on every start: the database has no file)"),
    }
    if let Ok(me) = std::env::current_exe() {
        println!(
            "  this command:  {}  (on your PATH: cargo install --path services/cli)",
            me.display()
        );
    }
    if let Some((site, _)) = keys.first() {
        let held = if today == 0 {
            "No transactions yet in today's".to_owned()
        } else {
            format!("Today's holds {today} transactions so far; add more")
        };
        println!(
            "Demo events: harbolnas-demo (live, compared with harbolnas-demo-last-year, closed, which has a small history). {held}: push a file with `saleboard push FILE --endpoint http://{} --key <the key of {site}>`, or simulate a day with `saleboard loadgen`.",
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
