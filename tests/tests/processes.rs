//! The three services as separate processes over one database: several ingest processes
//! writing at once while the aggregator tails (no row skipped), the aggregator killed and
//! restarted again and again, two aggregators at once; `saleboard verify` and the leaderboard
//! agree with what ingest said was ACCEPTED.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use saleboard_domain::{Event, UnixNanos};
use saleboard_proto::v1::aggregator_service_client::AggregatorServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    AggregatorStatus, GetAggregatorStatusRequest, GetNationalTotalsRequest, GetSiteTotalsRequest,
    Outcome, SubmitTransactionsRequest, Transaction,
};
use saleboard_tests::app::{channel, ingest_client};
use saleboard_tests::data::{now_secs, refund};
use saleboard_tests::load::{SplitMix, sale_of};
use saleboard_tests::proc::{ServiceProcess, bin_dir, free_addr};
use saleboard_tests::{Backend, TestDb, backend_tests};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const TOKEN: &str = "organizer-process-token";

struct Suite {
    db: TestDb,
    secrets: Vec<String>,
}

/// Per (site, currency): (sales, gross, refunds, refunded) told ACCEPTED.
type Accepted = BTreeMap<(String, String), [i64; 4]>;

impl Suite {
    async fn new(backend: Backend, sites: usize) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let store = db.store().await;
        let now = UnixNanos::now();
        let event = Event::new(
            "e",
            "E",
            now.saturating_add_secs(-86_400),
            now.saturating_add_secs(86_400),
            "IDR",
        )
        .expect("event");
        store
            .set_event(
                &event,
                saleboard_domain::UnixNanos::now(),
                saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetEvent")),
            )
            .await
            .expect("event");
        let mut secrets = Vec::new();
        for s in 0..sites {
            secrets.push(
                saleboard_tests::db::register_site(store.as_ref(), &format!("site-{s}"), "S").await,
            );
        }
        Some(Self { db, secrets })
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("SALEBOARD_DATABASE_URL", self.db.url.as_str()),
            ("RUST_LOG", "info"),
        ]
    }

    async fn ingest(&self) -> ServiceProcess {
        let addr = free_addr();
        let listen = addr.to_string();
        ServiceProcess::start(
            "saleboard-ingest",
            &["--ingest-listen", &listen, "--site-rate-limit", "0"],
            &self.env(),
            addr,
        )
        .await
    }

    async fn aggregator(&self) -> ServiceProcess {
        self.aggregator_with(&["--aggregator-lease-ms", "1000"])
            .await
    }

    async fn aggregator_with(&self, args: &[&str]) -> ServiceProcess {
        let addr = free_addr();
        let listen = addr.to_string();
        let mut all = vec![
            "--aggregator-listen",
            listen.as_str(),
            "--aggregator-batch",
            "3000",
        ];
        all.extend_from_slice(args);
        ServiceProcess::start("saleboard-aggregator", &all, &self.env(), addr).await
    }

    async fn leaderboard(&self) -> ServiceProcess {
        let addr = free_addr();
        let listen = addr.to_string();
        ServiceProcess::start(
            "saleboard-leaderboard",
            &["--leaderboard-listen", &listen, "--organizer-token", TOKEN],
            &self.env(),
            addr,
        )
        .await
    }

    /// Waits until the aggregator has applied the whole ledger.
    async fn settle(&self) {
        let store = self.db.store().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state = store.aggregator_state().await.expect("state");
            if state.applied == state.head {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "aggregator stuck at {} of {}",
                state.applied,
                state.head
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `saleboard verify`; returns (exit ok, output).
    fn verify(&self) -> (bool, String) {
        self.verify_with(&[])
    }

    /// Runs `saleboard verify ARGS`; returns (exit ok, output).
    fn verify_with(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin_dir().join("saleboard"))
            .arg("verify")
            .args(args)
            .env("SALEBOARD_DATABASE_URL", &self.db.url)
            .output()
            .expect("saleboard verify runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// One client's stream: `n` transactions of `site`, IDR and USD, with segments, some refunds
/// of its own earlier sales and some resubmissions; returns what it was told ACCEPTED per
/// (site, currency) and per ("dimension/key", currency).
async fn push(
    addr: std::net::SocketAddr,
    secret: String,
    site: usize,
    client: usize,
    n: usize,
) -> (Accepted, Accepted) {
    let occurred = now_secs() - 30;
    let mut rng = SplitMix::new((site * 100 + client) as u64 + 7);
    let mut sales: Vec<Transaction> = Vec::new();
    let mut txs = Vec::with_capacity(n);
    for i in 0..n {
        let roll = rng.below(100);
        let t = if roll < 5 && !sales.is_empty() {
            let s = &sales[usize::try_from(rng.below(sales.len() as u64)).expect("index")];
            let mut r = refund(
                &format!("s{site}c{client}r{i}"),
                &s.transaction_id,
                &s.currency,
                s.amount_minor / 4 + 1,
            );
            r.occurred_at = s.occurred_at;
            // Half the refunds name their sale's segments, half leave them to it.
            if rng.below(2) == 0 {
                r.brand.clone_from(&s.brand);
                r.origin = s.origin;
            }
            r
        } else if roll < 10 && !txs.is_empty() {
            let prev: &Transaction =
                &txs[usize::try_from(rng.below(txs.len() as u64)).expect("index")];
            prev.clone()
        } else {
            let mut t = sale_of(&format!("s{site}c{client}t{i}"), occurred);
            if roll.is_multiple_of(3) {
                t.currency = "USD".into();
            }
            // Segments: five brands and none, three categories, both origins.
            let brand = rng.below(6);
            if brand > 0 {
                t.brand = format!("b{brand}");
            }
            t.category = format!("c{}", rng.below(3));
            t.origin = 1 + i32::from(rng.below(2) == 0);
            sales.push(t.clone());
            t
        };
        txs.push(t);
    }
    let requests: Vec<_> = txs
        .chunks(250)
        .map(|c| SubmitTransactionsRequest {
            transactions: c.to_vec(),
        })
        .collect();
    let mut client_ = ingest_client(addr, Some(&secret)).await;
    let mut stream = client_
        .stream_transactions(tokio_stream::iter(requests.clone()))
        .await
        .expect("stream")
        .into_inner();
    let mut accepted = Accepted::new();
    let mut segments = Accepted::new();
    let by_id: BTreeMap<&str, &Transaction> =
        txs.iter().map(|t| (t.transaction_id.as_str(), t)).collect();
    let mut i = 0;
    while let Some(r) = stream.message().await.expect("response") {
        for (t, result) in requests[i].transactions.iter().zip(r.results) {
            // The generator may refund one sale more than it holds; nothing else may be refused.
            if result.outcome() == Outcome::Rejected {
                assert_eq!(
                    result.reason, "REFUND_EXCEEDS_SALE",
                    "{}: {}",
                    t.transaction_id, result.message
                );
            }
            if result.outcome() == Outcome::Accepted {
                let e = accepted
                    .entry((format!("site-{site}"), t.currency.clone()))
                    .or_default();
                let moved = if t.refund_of.is_empty() {
                    [1, t.amount_minor, 0, 0]
                } else {
                    [0, 0, 1, t.amount_minor]
                };
                for (f, v) in e.iter_mut().zip(moved) {
                    *f += v;
                }
                // A refund counts under its sale's segments.
                let of = if t.refund_of.is_empty() {
                    t
                } else {
                    by_id[t.refund_of.as_str()]
                };
                let origin = match of.origin {
                    1 => "domestic",
                    2 => "cross-border",
                    _ => "",
                };
                for key in [
                    format!("brand/{}", of.brand),
                    format!("category/{}", of.category),
                    format!("origin/{origin}"),
                ] {
                    let e = segments.entry((key, t.currency.clone())).or_default();
                    for (f, v) in e.iter_mut().zip(moved) {
                        *f += v;
                    }
                }
            }
        }
        i += 1;
    }
    assert_eq!(i, requests.len());
    (accepted, segments)
}

fn merge(into: &mut Accepted, from: Accepted) {
    for (k, v) in from {
        let e = into.entry(k).or_default();
        for i in 0..4 {
            e[i] += v[i];
        }
    }
}

async fn leaderboard_totals(addr: std::net::SocketAddr, sites: usize) -> Accepted {
    let mut client = LeaderboardServiceClient::new(channel(addr).await);
    let mut out = Accepted::new();
    for s in 0..sites {
        let t = client
            .get_site_totals(GetSiteTotalsRequest {
                site_id: format!("site-{s}"),
                include_hourly: false,
                event_id: String::new(),
            })
            .await
            .expect("site totals")
            .into_inner();
        for c in t.totals {
            assert_eq!(c.net_minor, c.gross_minor - c.refunded_minor);
            out.insert(
                (t.site_id.clone(), c.currency),
                [
                    i64::try_from(c.sale_count).expect("count"),
                    c.gross_minor,
                    i64::try_from(c.refund_count).expect("count"),
                    c.refunded_minor,
                ],
            );
        }
    }
    out
}

async fn several_ingest_processes_while_the_aggregator_tails(backend: Backend) {
    let Some(suite) = Suite::new(backend, 3).await else {
        return;
    };
    let ingests = [
        suite.ingest().await,
        suite.ingest().await,
        suite.ingest().await,
    ];
    let _aggregator = suite.aggregator().await;
    let board = suite.leaderboard().await;

    let mut tasks = Vec::new();
    for client in 0..6 {
        let site = client % 3;
        let addr = ingests[client % 3].addr;
        tasks.push(tokio::spawn(push(
            addr,
            suite.secrets[site].clone(),
            site,
            client,
            4_000,
        )));
    }
    let mut accepted = Accepted::new();
    for t in tasks {
        merge(&mut accepted, t.await.expect("client").0);
    }
    suite.settle().await;
    let (ok, output) = suite.verify();
    assert!(ok, "saleboard verify failed:\n{output}");
    assert!(output.contains("verified"), "{output}");

    // The leaderboard process reads the same figures, within a second of the aggregator.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = leaderboard_totals(board.addr, 3).await;
        if got == accepted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leaderboard {got:?} != accepted {accepted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = LeaderboardServiceClient::new(channel(board.addr).await);
    let national = client
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    let head = suite.db.store().await.ledger_head().await.expect("head");
    assert_eq!(national.watermark, head);
}

async fn aggregator_killed_again_and_again_stays_exact(backend: Backend) {
    let Some(suite) = Suite::new(backend, 2).await else {
        return;
    };
    let ingest = suite.ingest().await;
    let pushers: Vec<_> = (0..2)
        .map(|site| {
            tokio::spawn(push(
                ingest.addr,
                suite.secrets[site].clone(),
                site,
                0,
                12_000,
            ))
        })
        .collect();

    let mut aggregator = suite.aggregator().await;
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(300 + 50 * round)).await;
        aggregator.kill();
        aggregator = suite.aggregator().await;
    }
    // Two at once: one active, one standby; kill the active one midway.
    let second = suite.aggregator().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    aggregator.kill();
    let mut accepted = Accepted::new();
    let mut segments = Accepted::new();
    for p in pushers {
        let (sites, segs) = p.await.expect("pusher");
        merge(&mut accepted, sites);
        merge(&mut segments, segs);
    }
    suite.settle().await;
    drop(second);
    let (ok, output) = suite.verify();
    assert!(ok, "saleboard verify failed:\n{output}");

    let stored = suite.db.store().await.load_totals().await.expect("totals");
    let got: Accepted = stored
        .book
        .totals()
        .iter()
        .map(|((_, s, c), t)| {
            (
                (s.to_string(), c.code().to_owned()),
                [
                    i64::try_from(t.sale_count).expect("count"),
                    i64::try_from(t.gross_minor).expect("small totals"),
                    i64::try_from(t.refund_count).expect("count"),
                    i64::try_from(t.refunded_minor).expect("small totals"),
                ],
            )
        })
        .collect();
    assert_eq!(got, accepted, "totals equal what was ACCEPTED");
    // So do the breakdowns, national (as stored for the leaderboard, and as the per-site rows
    // add up) and per site added up.
    let flat = |figures: &BTreeMap<
        saleboard_domain::totals::SegmentKey,
        saleboard_domain::totals::SegmentFigures,
    >| {
        figures
            .iter()
            .flat_map(|((_, d, k), f)| {
                f.totals.iter().map(move |(c, t)| {
                    (
                        (format!("{d}/{k}"), c.code().to_owned()),
                        [
                            i64::try_from(t.sale_count).expect("count"),
                            i64::try_from(t.gross_minor).expect("small totals"),
                            i64::try_from(t.refund_count).expect("count"),
                            i64::try_from(t.refunded_minor).expect("small totals"),
                        ],
                    )
                })
            })
            .collect::<Accepted>()
    };
    assert_eq!(flat(&stored.segments), segments, "national breakdown rows");
    assert_eq!(
        flat(&stored.book.segments()),
        segments,
        "per-site breakdown rows"
    );
    for ((_, d, k), f) in &stored.segments {
        assert!(
            f.site_count >= 1 && f.site_count <= 2,
            "{d} {k}: {} sites",
            f.site_count
        );
    }
}

async fn verify_reports_a_difference(backend: Backend) {
    let Some(suite) = Suite::new(backend, 1).await else {
        return;
    };
    let ingest = suite.ingest().await;
    push(ingest.addr, suite.secrets[0].clone(), 0, 0, 300).await;
    let aggregator = suite.aggregator().await;
    suite.settle().await;
    drop(aggregator);
    let (ok, output) = suite.verify();
    assert!(ok, "{output}");
    // Tamper with a stored total behind the aggregator's back: verify must notice.
    let store = suite.db.store().await;
    let state = store.load_totals().await.expect("totals");
    let (key, mut t) = state
        .book
        .totals()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), *v))
        .expect("a total");
    t.gross_minor += 1;
    let changes = saleboard_domain::totals::Changes {
        totals: vec![(key, t)],
        ..saleboard_domain::totals::Changes::default()
    };
    store
        .apply_totals(state.applied, state.applied, &changes, UnixNanos::now())
        .await
        .expect("tamper");
    let (ok, output) = suite.verify();
    assert!(!ok, "verify must fail on a wrong total:\n{output}");
    assert!(output.contains("difference"), "{output}");
    assert!(
        output.contains("sales, gross") && !output.contains("CurrencyTotals"),
        "the difference reads as figures, not Rust debug output: {output}"
    );
}

/// A stored row that breaks the schema stops the aggregator with a non-zero exit and a message
/// naming the table, instead of a "lost lease" retried forever.
async fn a_corrupt_row_stops_the_aggregator(backend: Backend) {
    let Some(suite) = Suite::new(backend, 1).await else {
        return;
    };
    let ingest = suite.ingest().await;
    push(ingest.addr, suite.secrets[0].clone(), 0, 0, 50).await;
    let mut aggregator = suite.aggregator().await;
    suite.settle().await;
    aggregator.kill();
    suite
        .db
        .execute("UPDATE site_totals SET currency = 'ZZZ' WHERE currency = 'USD'")
        .await;
    let log = std::env::temp_dir().join(format!("saleboard-corrupt-{}.log", std::process::id()));
    let mut child = Command::new(bin_dir().join("saleboard-aggregator"))
        .args(["--aggregator-listen", &free_addr().to_string()])
        .env("SALEBOARD_DATABASE_URL", &suite.db.url)
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(log.with_extension("err")).expect("log"))
        .spawn()
        .expect("aggregator starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aggregator kept running on a corrupt row"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
    );
    assert!(!status.success(), "exit {status}: {output}");
    assert!(output.contains("corrupt row in site_totals"), "{output}");
}

async fn status_of(addr: std::net::SocketAddr) -> AggregatorStatus {
    AggregatorServiceClient::new(channel(addr).await)
        .get_status(GetAggregatorStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner()
}

async fn health_of(addr: std::net::SocketAddr) -> ServingStatus {
    HealthClient::new(channel(addr).await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status()
}

/// Stale is visible: with the active aggregator gone and its lease not yet lapsed, the rows
/// that keep coming are not folded; the standby says so (GetStatus, health) and `verify`
/// fails saying by how much, instead of "verified".
async fn stale_totals_are_visible(backend: Backend) {
    let Some(suite) = Suite::new(backend, 1).await else {
        return;
    };
    let ingest = suite.ingest().await;
    let slow = [
        "--aggregator-lease-ms",
        "600000",
        "--aggregator-stale-ms",
        "1000",
    ];
    let mut active = suite.aggregator_with(&slow).await;
    push(ingest.addr, suite.secrets[0].clone(), 0, 0, 200).await;
    suite.settle().await;
    assert!(status_of(active.addr).await.active);
    let standby = suite.aggregator_with(&slow).await;
    assert_eq!(health_of(standby.addr).await, ServingStatus::Serving);
    active.kill();
    push(ingest.addr, suite.secrets[0].clone(), 0, 1, 50).await;
    let head = suite.db.store().await.ledger_head().await.expect("head");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = status_of(standby.addr).await;
        if status.stale {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reported stale: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.active && status.database_reachable);
    assert_eq!(status.ledger_head, head);
    assert!(
        status.lag > 0 && status.stalled_for_ms >= 1_000,
        "{status:?}"
    );
    assert_eq!(health_of(standby.addr).await, ServingStatus::NotServing);

    let (ok, output) = suite.verify_with(&["--wait-ms", "300"]);
    assert!(!ok, "verify must fail while the totals lag:\n{output}");
    assert!(
        output.contains(&format!("lag the ledger by {} rows", status.lag)),
        "{output}"
    );
}

/// A database migrated by a newer release (one migration past this build's last) is refused
/// by the store, `saleboard migrate` and every service, each naming both versions, and nothing
/// is applied to it.
async fn a_newer_schema_is_refused_naming_both_versions(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    drop(db.store().await);
    let known: i64 = {
        use sqlx::Connection as _;
        let query = "SELECT MAX(version) FROM _sqlx_migrations";
        match backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
                sqlx::query_scalar(query).fetch_one(&mut c).await
            }
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&db.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(query).fetch_one(&mut c).await
            }
        }
        .expect("the last migration")
    };
    let newer = known + 1;
    let checksum = match backend {
        Backend::Postgres => "'\\x00'::bytea",
        Backend::Sqlite => "X'00'",
    };
    db.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({newer}, 'from a newer release', TRUE, {checksum}, 1)"
    ))
    .await;
    let backend_name = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let says_both = |text: &str| {
        text.contains(&format!(
            "{backend_name} migration {newer} is applied, this build knows migrations up to {known}"
        ))
    };

    // The store.
    let store = saleboard_storage::connect(&saleboard_storage::ConnectOptions {
        url: db.url.clone(),
        max_connections: 2,
        create_if_missing: false,
    })
    .await
    .expect("connect");
    let refused = store
        .migrate()
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(refused, saleboard_storage::StorageError::NewerSchema { found, known: k, .. } if found == newer && k == known),
        "{refused:?}"
    );
    assert!(says_both(&refused.to_string()), "{refused}");

    // `saleboard migrate`, and each service at its start.
    let out = Command::new(bin_dir().join("saleboard"))
        .arg("migrate")
        .env("SALEBOARD_DATABASE_URL", &db.url)
        .output()
        .expect("saleboard migrate runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && says_both(&text), "{text}");
    for (service, flags) in [
        ("saleboard-ingest", vec!["--ingest-listen".to_owned()]),
        (
            "saleboard-aggregator",
            vec!["--aggregator-listen".to_owned()],
        ),
        (
            "saleboard-leaderboard",
            vec![
                "--leaderboard-listen".to_owned(),
                free_addr().to_string(),
                "--admin-listen".to_owned(),
            ],
        ),
    ] {
        let mut args = flags;
        args.push(free_addr().to_string());
        let mut child = Command::new(bin_dir().join(service))
            .args(&args)
            .env("SALEBOARD_DATABASE_URL", &db.url)
            .env("SALEBOARD_ORGANIZER_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the service starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("status") {
                break status;
            }
            if tokio::time::Instant::now() > deadline {
                drop(child.kill());
                panic!("{service} kept running on a newer schema");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut text)
            .expect("read stderr");
        assert!(!status.success(), "{service}: exit {status}: {text}");
        assert!(says_both(&text), "{service}: {text}");
    }

    // Refused again on a second try (the refusal changed nothing that would let it through).
    let again = store.migrate().await.expect_err("still refused");
    assert!(says_both(&again.to_string()), "{again}");
}

backend_tests!(
    a_newer_schema_is_refused_naming_both_versions,
    stale_totals_are_visible,
    several_ingest_processes_while_the_aggregator_tails,
    aggregator_killed_again_and_again_stays_exact,
    verify_reports_a_difference,
    a_corrupt_row_stops_the_aggregator,
);
