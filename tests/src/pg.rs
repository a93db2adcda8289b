//! A throw-away PostgreSQL cluster for the whole test process, started on first use: `initdb`
//! and `pg_ctl` from `/usr/lib/postgresql/*/bin` (or `PG_BIN`), run as the `postgres` user when
//! the tests run as root, in a temporary directory on a free port, with unix sockets in that
//! directory. A watchdog stops it and removes the directory when the test process exits. With
//! `DATABASE_URL` set, that server is used instead. Each test gets its own database.
//!
//! Without either, Postgres tests fail with a message saying what is missing (under `CI=true`
//! and elsewhere); `SALEBOARD_SKIP_POSTGRES=1` skips them loudly on a machine without
//! PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};
use sqlx::Connection as _;

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// What to do when there is no PostgreSQL.
#[derive(Debug, PartialEq, Eq)]
pub enum Availability {
    /// A server URL (of its `postgres` database).
    Url(String),
    /// Skipped on purpose (`SALEBOARD_SKIP_POSTGRES=1`, never under CI).
    Skipped,
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    candidates.sort();
    candidates.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_as_postgres(bin: &Path, args: &[&str], cwd: &Path, root: bool) -> anyhow::Result<()> {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {:?} failed: {}\n{}",
            bin.display(),
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A throw-away cluster this process started.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    root: bool,
}

impl Cluster {
    /// `postgres://` URL of its `postgres` database.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let data = self.data.to_string_lossy().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        run_as_postgres(&self.bin.join("pg_ctl"), &all, &self.dir, self.root)
    }

    /// Starts (or restarts) the server on its port.
    ///
    /// # Errors
    /// When `pg_ctl start` fails (e.g. the port is taken).
    pub fn start(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=500 -c shared_buffers=128MB",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").to_string_lossy().to_string();
        self.pg_ctl(&["-o", &opts, "-l", &log, "-w", "-t", "60", "start"])
    }

    /// Stops the server (fast mode: connections are cut, as in an outage).
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])
    }

    /// Whether its server is running (it stops by itself when it cannot write its WAL).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.pg_ctl(&["status"]).is_ok()
    }
}

fn start_cluster(bin: &Path) -> anyhow::Result<Cluster> {
    let dir = tempfile::Builder::new()
        .prefix("saleboard-pg-")
        .tempdir()
        .context("creating the cluster directory")?
        .keep();
    start_cluster_in(bin, dir, &[])
}

/// Initialises a cluster in `dir` (data, sockets, log) with `initdb_extra` arguments, and
/// starts it.
fn start_cluster_in(bin: &Path, dir: PathBuf, initdb_extra: &[&str]) -> anyhow::Result<Cluster> {
    let root = is_root();
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .context("chown of the cluster directory")?;
        if !status.success() {
            bail!("chown postgres {} failed", dir.display());
        }
    }
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let mut args = vec![
        "-D",
        &data_s,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--no-instructions",
    ];
    args.extend_from_slice(initdb_extra);
    run_as_postgres(&bin.join("initdb"), &args, &dir, root)?;
    let mut last_err = None;
    for _ in 0..3 {
        let cluster = Cluster {
            bin: bin.to_path_buf(),
            dir: dir.clone(),
            data: data.clone(),
            port: free_port()?,
            root,
        };
        match cluster.start() {
            Ok(()) => {
                spawn_watchdog(&dir, &data);
                return Ok(cluster);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("pg_ctl start failed")))
}

/// A cluster of the test's own, to stop and start (an outage), or `None` when PostgreSQL
/// tests are skipped (see [`availability`]).
///
/// # Panics
/// When it cannot be started, or there are no server binaries and skipping was not asked for.
#[must_use]
pub fn own_cluster() -> Option<Cluster> {
    let Some(bin) = find_bin_dir() else {
        let why = "an outage test needs the PostgreSQL server binaries (initdb, pg_ctl) in \
                   /usr/lib/postgresql/*/bin or PG_BIN, to stop and start a server of its own";
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let skip = std::env::var("SALEBOARD_SKIP_POSTGRES").is_ok_and(|v| v == "1");
        assert!(skip && !ci, "{why}");
        eprintln!("SKIPPED (SALEBOARD_SKIP_POSTGRES=1): {why}");
        return None;
    };
    Some(start_cluster(&bin).unwrap_or_else(|e| panic!("cannot start a PostgreSQL cluster: {e:#}")))
}

/// A cluster of the test's own with everything in `dir` (data directory, sockets, log), e.g.
/// a small filesystem the test fills; 1 MB WAL segments, so a full disk is met by relations
/// and WAL alike. `None` when PostgreSQL tests are skipped (see [`own_cluster`]).
///
/// # Panics
/// When it cannot be started, or there are no server binaries and skipping was not asked for.
#[must_use]
pub fn own_cluster_in(dir: &Path) -> Option<Cluster> {
    let Some(bin) = find_bin_dir() else {
        let why = "this test needs the PostgreSQL server binaries (initdb, pg_ctl) in \
                   /usr/lib/postgresql/*/bin or PG_BIN, to run a server of its own";
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let skip = std::env::var("SALEBOARD_SKIP_POSTGRES").is_ok_and(|v| v == "1");
        assert!(skip && !ci, "{why}");
        eprintln!("SKIPPED (SALEBOARD_SKIP_POSTGRES=1): {why}");
        return None;
    };
    Some(
        start_cluster_in(&bin, dir.to_path_buf(), &["--wal-segsize=1"])
            .unwrap_or_else(|e| panic!("cannot start a PostgreSQL cluster: {e:#}")),
    )
}

/// Stops the cluster (immediate mode) and removes its directory once this process is gone.
fn spawn_watchdog(dir: &Path, data: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -QUIT $(head -n 1 '{data}/postmaster.pid') 2>/dev/null; sleep 2; rm -rf '{dir}'",
        pid = std::process::id(),
        data = data.display(),
        dir = dir.display()
    );
    // Detached: it outlives this process on purpose.
    let spawned = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("warning: no watchdog for the test PostgreSQL cluster: {e}");
    }
}

fn server() -> Result<String, String> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return Ok(url);
            }
            let Some(bin) = find_bin_dir() else {
                return Err(
                    "PostgreSQL tests need either DATABASE_URL (a server where the tests \
                            may create databases) or the PostgreSQL server binaries (initdb, \
                            pg_ctl) in /usr/lib/postgresql/*/bin or PG_BIN; found neither"
                        .to_owned(),
                );
            };
            start_cluster(&bin)
                .map(|c| c.url())
                .map_err(|e| format!("cannot start a throw-away PostgreSQL: {e:#}"))
        })
        .clone()
}

/// The server to create test databases on, or why there is none.
///
/// # Panics
/// When there is no PostgreSQL and skipping was not asked for, or under `CI=true` always.
#[must_use]
pub fn availability() -> Availability {
    match server() {
        Ok(url) => Availability::Url(url),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            let skip = std::env::var("SALEBOARD_SKIP_POSTGRES").is_ok_and(|v| v == "1");
            if skip && !ci {
                eprintln!("SKIPPED (SALEBOARD_SKIP_POSTGRES=1): {why}");
                Availability::Skipped
            } else {
                panic!(
                    "{why}. Set DATABASE_URL, install PostgreSQL server binaries, or (not in CI) SALEBOARD_SKIP_POSTGRES=1 to skip."
                );
            }
        }
    }
}

/// Creates a fresh database and returns its URL, or `None` when Postgres tests are skipped.
///
/// # Panics
/// When the server refuses to create the database.
pub async fn fresh_database() -> Option<String> {
    let Availability::Url(admin_url) = availability() else {
        return None;
    };
    let name = format!(
        "sb_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL {admin_url}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let base = base.split('?').next().unwrap_or(base);
    Some(format!("{base}/{name}"))
}
