//! Benchmark helpers behind `saleboard bench-copy` and `saleboard bench-query` (used by
//! `bench/run`): the COPY baseline that Saleboard's ingest rate is compared with, and
//! GetLeaderboard latency.

use std::time::{Duration, Instant};

use saleboard_domain::{SiteId, UnixNanos};
use saleboard_proto::v1::GetLeaderboardRequest;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_storage::postgres::{CopyFormat, LedgerCopyRow, PgStore};
use serde_json::json;

use crate::client;
use crate::loadgen::quantile;

/// Arguments of `saleboard bench-copy`.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// An empty PostgreSQL database (it is migrated and given the sites).
    #[arg(long, env = "SALEBOARD_DATABASE_URL")]
    pub database_url: String,
    /// Rows to load.
    #[arg(long, default_value_t = 500_000)]
    pub count: u64,
    /// Sites the rows spread over.
    #[arg(long, default_value_t = 130)]
    pub sites: u32,
    /// The COPY format: `binary` (how ingest writes the ledger, the server's cheapest) or `csv`.
    #[arg(long, value_enum, default_value_t = CopyFormatArg::Binary)]
    pub format: CopyFormatArg,
}

/// `--format` of `saleboard bench-copy`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CopyFormatArg {
    /// PostgreSQL's binary COPY format.
    Binary,
    /// CSV.
    Csv,
}

/// Loads `count` ledger rows shaped like the load generator's with COPY and prints
/// `{"rows":..,"seconds":..,"rows_per_s":..}`.
///
/// # Errors
/// When the database refuses.
pub async fn copy(args: &CopyArgs) -> anyhow::Result<()> {
    let store = PgStore::connect(&args.database_url, 2).await?;
    saleboard_storage::Store::migrate(&store).await?;
    let now = UnixNanos::now();
    let mut sites = Vec::new();
    for i in 1..=args.sites {
        let site = SiteId::parse(&format!("cp-{i:03}"))?;
        // The benchmark's own set-up, recorded as `bootstrap` like dev's demo data.
        let call = saleboard_storage::AuditCall {
            at: now,
            organizer: saleboard_domain::audit::BOOTSTRAP.to_owned(),
            rpc: "CreateSite (saleboard bench-copy)".to_owned(),
            request_json: serde_json::json!({ "site_id": site.as_str() }).to_string(),
        };
        saleboard_storage::AdminStore::create_site(
            &store,
            &site,
            "copy",
            now,
            saleboard_storage::Audit::ok(&call),
        )
        .await?;
        sites.push(site);
    }
    // Build the data first: the timing is the database's, not the generator's.
    let mut csv = Vec::new();
    let rows = usize::try_from(args.count).unwrap_or(0);
    let mut binary = saleboard_storage::pg_copy::BinaryRows::new(
        saleboard_storage::postgres::LEDGER_COPY_FIELDS,
        if matches!(args.format, CopyFormatArg::Binary) {
            rows
        } else {
            0
        },
    );
    let currencies = ["IDR", "IDR", "IDR", "IDR", "USD", "SGD", "MYR", "JPY"];
    for position in 1..=args.count {
        let i = usize::try_from(position).unwrap_or(0);
        let site = &sites[i % sites.len()];
        let currency = currencies[i % currencies.len()];
        // Segments as the load generator's: a brand of a few hundred, its category, an
        // origin (1 domestic, 2 cross-border).
        let brand = 1 + (i * 31) % 300;
        let (store_id, amount) = (format!("store-{}", i % 20), 1_000 + (i * 7_919) % 1_000_000);
        let (brand, category) = (
            format!("brand-{brand}"),
            format!("category-{}", 1 + (brand - 1) % 12),
        );
        let origin: i16 = if i % 5 == 0 { 2 } else { 1 };
        let transaction_id = format!("cp-{position}");
        let row = LedgerCopyRow {
            position: i64::try_from(position)?,
            site_id: site.as_str(),
            transaction_id: &transaction_id,
            store_id: &store_id,
            kind: 1,
            currency,
            amount_minor: i64::try_from(amount)?,
            occurred_at_ns: now.0 - 1_000_000_000,
            refund_of: "",
            key_id: "key_copy",
            received_at_ns: now.0,
            event_id: "bench-copy",
            brand: &brand,
            category: &category,
            origin,
        };
        match args.format {
            CopyFormatArg::Binary => row.write(&mut binary)?,
            // The same row, in the same column order ("" quoted: empty, not NULL).
            CopyFormatArg::Csv => csv.extend_from_slice(
                format!(
                    "{},{},{},{},{},{},{},{},\"{}\",{},{},{},{},{},{}\n",
                    row.position,
                    row.site_id,
                    row.transaction_id,
                    row.store_id,
                    row.kind,
                    row.currency,
                    row.amount_minor,
                    row.occurred_at_ns,
                    row.refund_of,
                    row.key_id,
                    row.received_at_ns,
                    row.event_id,
                    row.brand,
                    row.category,
                    row.origin,
                )
                .as_bytes(),
            ),
        }
    }
    let (data, format) = match args.format {
        CopyFormatArg::Csv => (csv, CopyFormat::Csv),
        CopyFormatArg::Binary => (binary.finish(), CopyFormat::Binary),
    };
    let started = Instant::now();
    let rows = store.copy_in_ledger(&data, format, args.count).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rate = rows as f64 / seconds;
    println!(
        "{}",
        json!({"rows": rows, "seconds": seconds, "rows_per_s": rate})
    );
    Ok(())
}

/// Arguments of `saleboard bench-query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Leaderboard service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// Requests to time.
    #[arg(long, default_value_t = 2_000)]
    pub requests: u32,
    /// Entries per request.
    #[arg(long, default_value_t = 1_000)]
    pub limit: u32,
    /// Time GetBreakdown of this dimension (national) instead of GetLeaderboard.
    #[arg(long, value_enum)]
    pub breakdown: Option<crate::query::DimensionArg>,
    /// Open this many big-screen streams (`/events/leaderboard`, Server-Sent Events) first and
    /// keep reading them while timing; each must have sent its first message.
    #[arg(long, default_value_t = 0)]
    pub sse: u32,
    /// After printing the report, keep the streams open this long (ms), so the server's memory
    /// can be read with them open.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
}

/// Opens one SSE stream on `addr` and counts its messages in `messages`; `first` is told when
/// the first one arrived.
async fn sse_client(
    addr: String,
    messages: std::sync::Arc<std::sync::atomic::AtomicU64>,
    first: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    stream
        .write_all(
            format!(
                "GET /events/leaderboard?limit=10 HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut told = false;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let seen = buf[..n].windows(5).filter(|w| w == b"data:").count() as u64;
        if seen > 0 {
            messages.fetch_add(seen, std::sync::atomic::Ordering::Relaxed);
            if !told {
                told = true;
                first.send(()).await.ok();
            }
        }
    }
}

/// Times sequential GetLeaderboard (or GetBreakdown) calls and prints `{"p50_ms":..,"p99_ms":..,"entries":..}`.
///
/// # Errors
/// When the service cannot be reached or refuses.
pub async fn query(args: &QueryArgs) -> anyhow::Result<()> {
    let messages = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut streams = Vec::new();
    if args.sse > 0 {
        let addr = args
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let (tx, mut rx) = tokio::sync::mpsc::channel(args.sse as usize);
        for _ in 0..args.sse {
            streams.push(tokio::spawn(sse_client(
                addr.clone(),
                messages.clone(),
                tx.clone(),
            )));
        }
        for _ in 0..args.sse {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("not every SSE stream sent a first message in 30 s")
                })?;
        }
    }
    let mut client = LeaderboardServiceClient::new(client::connect(&args.endpoint, None).await?);
    let mut samples = Vec::with_capacity(args.requests as usize);
    let mut entries = 0;
    for _ in 0..args.requests {
        let started = Instant::now();
        entries = match args.breakdown {
            None => client
                .get_leaderboard(GetLeaderboardRequest {
                    limit: args.limit,
                    page_token: String::new(),
                    event_id: String::new(),
                    baseline_event_id: String::new(),
                })
                .await
                .map_err(|s| client::explain(&args.endpoint, "GetLeaderboard", &s))?
                .into_inner()
                .entries
                .len(),
            Some(dimension) => client
                .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
                    dimension: crate::query::dimension_msg(dimension.into()).into(),
                    limit: args.limit,
                    ..saleboard_proto::v1::GetBreakdownRequest::default()
                })
                .await
                .map_err(|s| client::explain(&args.endpoint, "GetBreakdown", &s))?
                .into_inner()
                .entries
                .len(),
        };
        #[allow(clippy::cast_possible_truncation)]
        samples.push(started.elapsed().as_micros() as u64);
    }
    samples.sort_unstable();
    let ms = |q| Duration::from_micros(quantile(&samples, q)).as_secs_f64() * 1e3;
    println!(
        "{}",
        json!({"requests": args.requests, "entries": entries, "p50_ms": ms(0.5), "p99_ms": ms(0.99),
               "sse_streams": args.sse,
               "sse_messages": messages.load(std::sync::atomic::Ordering::Relaxed)})
    );
    use std::io::Write as _;
    std::io::stdout().flush()?;
    if args.hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(args.hold_ms)).await;
    }
    for s in streams {
        s.abort();
    }
    Ok(())
}
