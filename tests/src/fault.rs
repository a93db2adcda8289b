//! Storage faults for the fault tests (issue 24): a small tmpfs the test mounts for a
//! database's files and grows again, the suite in-process over any database URL, a load of
//! well-behaved clients (each retries UNAVAILABLE and RESOURCE_EXHAUSTED until its batch is
//! answered) whose acknowledgements are checked against the ledger, and the waits and checks
//! every fault test ends with.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use saleboard::suite::Suite;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{GetNationalTotalsRequest, Outcome, SubmitTransactionsRequest};
use saleboard_storage::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Code;

use crate::app::{admin_client, channel, ingest_client};

/// Whether this process runs as root (mounting needs it).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB. `None` (after printing SKIPPED) when this process cannot
    /// mount (not root); under `CI=true` that fails the test instead.
    ///
    /// # Panics
    /// When mounting fails as root, or under CI without root.
    #[must_use]
    pub fn mount(kib: u64) -> Option<Self> {
        if !is_root() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "the disk-full tests mount a tmpfs and need root (they run as root in CI)"
            );
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("a mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0777"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Some(Self { dir })
    }

    /// Where it is mounted.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows (or shrinks) it to `kib` KiB, keeping its files.
    ///
    /// # Panics
    /// When remounting fails.
    pub fn resize(&self, kib: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -o remount failed: {status}");
    }

    /// KiB in use.
    ///
    /// # Panics
    /// When `df` fails.
    #[must_use]
    pub fn used_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["-k", "--output=used"])
            .arg(self.dir.path())
            .output()
            .expect("run df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the KiB used")
    }

    /// Hands the mount point to `user` (PostgreSQL refuses a data directory it does not own).
    ///
    /// # Panics
    /// When chown fails.
    pub fn chown(&self, user: &str) {
        let status = Command::new("chown")
            .arg(format!("{user}:{user}"))
            .arg(self.dir.path())
            .status()
            .expect("run chown");
        assert!(status.success(), "chown failed: {status}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a service still holding a file must not leave the mount behind.
        drop(
            Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status(),
        );
    }
}

/// The suite in-process over `url` (migrated here), with the standard test event set and
/// no per-site rate limit.
#[derive(Debug)]
pub struct FaultApp {
    /// The store the services share (their pool: its connection counts are theirs).
    pub store: Arc<dyn Store>,
    /// The database URL.
    pub url: String,
    /// Where IngestService listens.
    pub ingest_addr: SocketAddr,
    /// Where LeaderboardService listens (the public port).
    pub leaderboard_addr: SocketAddr,
    /// Where AdminService listens.
    pub admin_addr: SocketAddr,
    /// The organizer token.
    pub token: String,
    serving: crate::app::Serving,
}

impl FaultApp {
    /// Starts the services on `url`.
    ///
    /// # Panics
    /// When the database cannot be opened or a service cannot start.
    pub async fn spawn(url: &str) -> Self {
        let store = saleboard_storage::connect(&saleboard_storage::ConnectOptions {
            url: url.to_owned(),
            max_connections: 8,
            create_if_missing: true,
        })
        .await
        .expect("open the database");
        store.migrate().await.expect("migrate");
        let token = "organizer-test-token".to_owned();
        let mut config = crate::app::suite_config(url, &token);
        config.ingest.site_rate_limit = 0;
        let suite = Suite::build(config, store.clone())
            .await
            .expect("the suite starts");
        let (ingest_addr, leaderboard_addr, admin_addr) = (
            suite.ingest_addr(),
            suite.leaderboard_addr(),
            suite.admin_addr(),
        );
        let serving = crate::app::Serving::start(suite);
        admin_client(admin_addr, Some(&token))
            .await
            .set_event(crate::data::event())
            .await
            .expect("SetEvent");
        Self {
            store,
            url: url.to_owned(),
            ingest_addr,
            leaderboard_addr,
            admin_addr,
            token,
            serving,
        }
    }

    /// Stops the services and waits for them.
    ///
    /// # Panics
    /// When a service failed.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// Registers `n` sites with a key each in `store`: (site_id, secret).
pub async fn sites(store: &dyn Store, n: usize) -> Vec<(String, String)> {
    let mut sites = Vec::new();
    for i in 0..n {
        let site = format!("toko{i}");
        let secret = crate::db::register_site(store, &site, &site).await;
        sites.push((site, secret));
    }
    sites
}

/// What the clients of a [`Load`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every (site, transaction id) answered ACCEPTED or DUPLICATE.
    pub acknowledged: BTreeSet<(String, String)>,
    /// Retryable statuses by code and message, with how many times each was seen.
    pub retried: HashMap<(Code, String), u64>,
}

/// Clients pushing batches of new sales, one per site, each retrying its batch until it is
/// answered (UNAVAILABLE and RESOURCE_EXHAUSTED; any other error fails the test).
#[derive(Debug)]
pub struct Load {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Seen>>,
    /// Batches answered so far, by every client.
    pub answered: watch::Receiver<u64>,
}

impl Load {
    /// Starts one client per site, batches of `batch` sales.
    #[must_use]
    pub fn start(ingest: SocketAddr, sites: &[(String, String)], batch: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (count, answered) = watch::channel(0_u64);
        let count = Arc::new(count);
        let tasks = sites
            .iter()
            .map(|(site, secret)| {
                tokio::spawn(client(
                    ingest,
                    site.clone(),
                    secret.clone(),
                    batch,
                    stopped.clone(),
                    count.clone(),
                ))
            })
            .collect();
        Self {
            stop,
            tasks,
            answered,
        }
    }

    /// Waits until `more` batches have been answered after now, at most `within`.
    ///
    /// # Panics
    /// When they are not.
    pub async fn advance(&mut self, more: u64, within: Duration) {
        let target = *self.answered.borrow() + more;
        tokio::time::timeout(within, self.answered.wait_for(|n| *n >= target))
            .await
            .unwrap_or_else(|_| panic!("{more} more batches were not answered within {within:?}"))
            .expect("the load runs");
    }

    /// Stops the clients once their batch in progress is answered, and returns what they saw.
    ///
    /// # Panics
    /// When a client failed.
    pub async fn finish(self) -> Seen {
        self.stop.send_replace(true);
        let mut seen = Seen::default();
        for task in self.tasks {
            let s = task.await.expect("a load client");
            seen.acknowledged.extend(s.acknowledged);
            for (k, n) in s.retried {
                *seen.retried.entry(k).or_default() += n;
            }
        }
        seen
    }
}

async fn client(
    ingest: SocketAddr,
    site: String,
    secret: String,
    batch: usize,
    stop: watch::Receiver<bool>,
    answered: Arc<watch::Sender<u64>>,
) -> Seen {
    let mut seen = Seen::default();
    let mut client = ingest_client(ingest, Some(&secret)).await;
    let mut next = 0_usize;
    while !*stop.borrow() {
        let ids: Vec<String> = (next..next + batch)
            .map(|i| format!("{site}-{i}"))
            .collect();
        next += batch;
        let started = Instant::now();
        loop {
            let txs = ids
                .iter()
                .map(|id| crate::data::sale(id, "IDR", 1_000))
                .collect();
            let mut request = tonic::Request::new(SubmitTransactionsRequest { transactions: txs });
            request.set_timeout(Duration::from_secs(10));
            match client.submit_transactions(request).await {
                Ok(r) => {
                    for (id, result) in ids.iter().zip(&r.into_inner().results) {
                        let outcome = result.outcome();
                        assert!(
                            matches!(outcome, Outcome::Accepted | Outcome::Duplicate),
                            "{id}: {outcome:?} {}",
                            result.message
                        );
                        seen.acknowledged.insert((site.clone(), id.clone()));
                    }
                    answered.send_modify(|n| *n += 1);
                    break;
                }
                Err(s) if matches!(s.code(), Code::Unavailable | Code::ResourceExhausted) => {
                    *seen
                        .retried
                        .entry((s.code(), s.message().to_owned()))
                        .or_default() += 1;
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "{site}: a batch unanswered for a minute: {s:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(s) => panic!("{site}: a push failed with a status clients do not retry: {s:?}"),
            }
        }
    }
    seen
}

/// Asserts the ledger holds exactly `acknowledged`: every acknowledged transaction is
/// stored, once, and nothing else is.
///
/// # Panics
/// When it does not.
pub async fn assert_ledger_is(store: &dyn Store, acknowledged: &BTreeSet<(String, String)>) {
    let rows = store
        .read_ledger(0, u32::MAX)
        .await
        .expect("read the ledger");
    let stored: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.site.to_string(), r.tx.id.to_string()))
        .collect();
    assert_eq!(rows.len(), stored.len(), "a transaction stored twice");
    let lost: Vec<_> = acknowledged.difference(&stored).take(5).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let extra: Vec<_> = stored.difference(acknowledged).take(5).collect();
    assert!(extra.is_empty(), "stored but never acknowledged: {extra:?}");
}

/// Waits until the leaderboard's watermark reaches the ledger head, at most `within`, and
/// returns how long it took.
///
/// # Panics
/// When it does not.
pub async fn board_reaches_head(
    store: &dyn Store,
    admin: SocketAddr,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let mut board = LeaderboardServiceClient::new(channel(admin).await);
    loop {
        let head = store.ledger_head().await.ok();
        let watermark = board
            .get_national_totals(GetNationalTotalsRequest::default())
            .await
            .ok()
            .map(|n| n.into_inner().watermark);
        if let (Some(head), Some(watermark)) = (head, watermark)
            && watermark >= head
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the board did not reach the head within {within:?} (watermark {watermark:?}, head {head:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `saleboard verify` on `url`: every stored total equals the ledger's.
///
/// # Panics
/// When it does not pass.
pub async fn assert_verify_passes(url: &str) {
    let args = saleboard::verify::VerifyArgs {
        database: saleboard_runtime::database::DatabaseArgs {
            url: url.to_owned(),
            pool_size: Some(2),
        },
        wait_ms: 5_000,
    };
    assert!(
        saleboard::verify::run(&args).await.expect("verify runs"),
        "verify found differences"
    );
}

/// Polls `check` every 50 ms until it holds, at most `within`; returns how long it took.
///
/// # Panics
/// When it does not hold in time.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The gRPC health of the server at `addr` (`None`: no answer within 2 s).
pub async fn health(
    addr: SocketAddr,
) -> Option<tonic_health::pb::health_check_response::ServingStatus> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel(addr).await);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(2));
    client
        .check(request)
        .await
        .ok()
        .map(|r| r.into_inner().status())
}

/// `path` as a `sqlite:` URL.
#[must_use]
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}", PathBuf::from(path).display())
}
