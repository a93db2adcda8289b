//! The services as real processes: built once per test process with the same profile as the
//! tests, started with flags and environment, killed or stopped by signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

static BUILT: OnceLock<PathBuf> = OnceLock::new();

/// The directory holding the service binaries, building them first (once per process) so they
/// are never stale.
///
/// # Panics
/// When the build fails.
pub fn bin_dir() -> PathBuf {
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>
            let dir = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("test binary lives in target/<profile>/deps")
                .to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            // Every binary of the workspace, with the profile settings of the tests themselves
            // (`test` shares `target/debug`), so nothing the test build compiled is rebuilt.
            cmd.args(["build", "--workspace", "--bins"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            } else {
                cmd.args(["--profile", "test"]);
            }
            let status = cmd
                .status()
                .expect("running cargo build for the service binaries");
            assert!(status.success(), "building the service binaries failed");
            dir
        })
        .clone()
}

/// Runs the `saleboard` command line with `args`, and only the credentials and telemetry
/// settings that `env` gives (none inherited from the shell running the tests).
///
/// # Panics
/// When the binary cannot be started.
#[must_use]
pub fn saleboard(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin_dir().join("saleboard"))
        .args(args)
        .env_remove("SALEBOARD_API_KEY")
        .env_remove("SALEBOARD_ORGANIZER_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env.iter().copied())
        .output()
        .expect("saleboard runs")
}

/// A free TCP port on 127.0.0.1 (for a process that must be told its port).
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local address")
}

/// A running service process, killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts binary `name` with `args` and `env`, listening on `addr`, and waits until the
    /// port accepts connections (at most 30 s). A leaderboard's AdminService listens on a port
    /// of its own choosing (`SALEBOARD_ADMIN_LISTEN=127.0.0.1:0`) unless `args` or `env` say
    /// otherwise, so processes started side by side never contend for its default port.
    ///
    /// # Panics
    /// When it does not start or exits early.
    pub async fn start(name: &str, args: &[&str], env: &[(&str, &str)], addr: SocketAddr) -> Self {
        let bin = bin_dir().join(name);
        let log = std::env::temp_dir().join(format!(
            "saleboard-test-{name}-{}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(&bin)
            .env("SALEBOARD_ADMIN_LISTEN", "127.0.0.1:0")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("process status") {
                panic!(
                    "{name} exited with {status} before serving:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} did not listen on {addr} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr, log }
    }

    /// The process id, e.g. to read `/proc/<pid>/status`.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A figure of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    ///
    /// # Panics
    /// When the process is gone or the figure is missing.
    #[must_use]
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc status of the service");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub fn kill(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }

    /// SIGTERM, then waits for the exit (at most `timeout`) and returns whether it exited 0.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit in time.
    pub async fn terminate(&mut self, timeout: Duration) -> bool {
        self.send_term();
        self.wait_exit(timeout).await
    }

    /// Sends SIGTERM and returns at once.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn send_term(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `timeout`) and returns whether it exited 0.
    ///
    /// # Panics
    /// When the process does not exit in time.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return status.success();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `saleboard dev`, killed when dropped.
pub struct DevSuite {
    /// Its ingest address.
    pub ingest: SocketAddr,
    /// Its leaderboard's public address.
    pub leaderboard: SocketAddr,
    /// Its AdminService address.
    pub admin: SocketAddr,
    /// What it printed up to "Ctrl-C stops.".
    pub banner: String,
    child: std::process::Child,
}

impl DevSuite {
    /// The organizer token dev printed in its banner.
    ///
    /// # Panics
    /// When the banner does not name one.
    #[must_use]
    pub fn organizer_token(&self) -> String {
        self.banner
            .lines()
            .find_map(|l| l.split("organizer token: ").nth(1))
            .expect("dev prints the token")
            .trim()
            .to_owned()
    }
}

impl Drop for DevSuite {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// Starts `saleboard dev` on `database_url` (stdout to `dir/out`, stderr beside it) on free
/// ports and waits for its banner. A free port can be taken by another process between
/// choosing it and dev binding it: when dev exits saying so, it is started again on new ports
/// (at most three times).
///
/// # Panics
/// When it does not start or print its banner within 30 s; the panic shows what dev printed on
/// both streams and how it exited.
pub async fn start_dev(database_url: &str, dir: &std::path::Path, out: &str) -> DevSuite {
    let stdout_path = dir.join(out);
    let stderr_path = dir.join(format!("{out}.err"));
    for attempt in 1..=3 {
        let (ingest, leaderboard, admin, aggregator) =
            (free_addr(), free_addr(), free_addr(), free_addr());
        let mut child = std::process::Command::new(bin_dir().join("saleboard"))
            .args([
                "dev",
                "--ingest-listen",
                &ingest.to_string(),
                "--leaderboard-listen",
                &leaderboard.to_string(),
                "--admin-listen",
                &admin.to_string(),
                "--aggregator-listen",
                &aggregator.to_string(),
            ])
            .env("SALEBOARD_DATABASE_URL", database_url)
            .env_remove("SALEBOARD_ORGANIZER_TOKEN")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(std::fs::File::create(&stdout_path).expect("dev's stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("dev's stderr file"))
            .spawn()
            .expect("dev starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            if text.contains("Ctrl-C stops.") {
                return DevSuite {
                    ingest,
                    leaderboard,
                    admin,
                    banner: text,
                    child,
                };
            }
            let errors = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if let Some(status) = child.try_wait().expect("dev's status") {
                // Either listener's refusal of a port taken meanwhile (ingest says "already
                // running?", the admin listener "another instance running?").
                if attempt < 3
                    && (errors.contains("already running?")
                        || errors.contains("Address already in use"))
                {
                    break; // a chosen port was taken meanwhile: again, on new ports
                }
                panic!("dev exited ({status}) before its banner:\n{text}\n{errors}");
            }
            if tokio::time::Instant::now() >= deadline {
                drop(child.kill());
                panic!("dev printed only, in 30 s:\n{text}\n(stderr:)\n{errors}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    unreachable!("the third attempt returns or panics")
}
