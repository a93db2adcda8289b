//! A Docker engine and one compose project of the stack in `deploy/`, for the test of that stack
//! on a real engine (`tests/tests/compose.rs`): whether an engine and Compose v2 answer, the
//! stand-in images made from Debian's packages where no registry can be reached
//! (`tests/docker/standins.sh`), and a project with a name of its own that is taken down, with
//! its volumes, when dropped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Says on the test's stderr, past libtest's output capture (so a passing `cargo test` shows
/// it too), that the compose test was skipped, and why.
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "compose test SKIPPED: {why}");
}

/// Says `line` on the test's stderr past libtest's output capture (a passing test shows it
/// too): what a compose test measured.
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The repository's root (where the README runs `docker compose -f deploy/...` from).
#[must_use]
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// The compose override that swaps the telemetry images for the tests' OTLP receiver.
#[must_use]
pub fn standins_override() -> PathBuf {
    repo().join("tests/docker/compose.standins.yml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// The engine's version, or why no engine answers (within 30 s).
///
/// # Errors
/// The reason, in words, when there is no usable engine.
pub fn engine() -> Result<String, String> {
    let out = Command::new("timeout")
        .args(["30", "docker", "version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("the docker command cannot be run: {e}"))?;
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "no Docker engine answers `docker version`: {}",
            text(&out.stderr)
        ))
    }
}

/// Compose v2's version (`docker compose`), or why it is missing.
///
/// # Errors
/// The reason when `docker compose` does not run.
pub fn compose_v2() -> Result<String, String> {
    let out = Command::new("docker")
        .args(["compose", "version", "--short"])
        .output()
        .map_err(|e| format!("the docker command cannot be run: {e}"))?;
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "`docker compose` (Compose v2) does not run: {} (.ci/run installs Debian's plugin)",
            text(&out.stderr)
        ))
    }
}

/// Makes (or finds, by their recipe's digest) the stand-in images: Debian's base, the Rust
/// toolchain image, PostgreSQL, Prometheus and the OTLP receiver built from `otlp_receiver`.
///
/// # Panics
/// When the script fails.
pub fn make_standins(otlp_receiver: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(repo().join("tests/docker/standins.sh"))
        .arg(otlp_receiver)
        .status()
        .expect("running tests/docker/standins.sh");
    assert!(status.success(), "tests/docker/standins.sh failed");
    started.elapsed()
}

/// A loopback address on which every port of `ports` is free, other than 127.0.0.1 (kept for
/// a stack someone runs by hand), derived from this process's id.
///
/// # Panics
/// When none of the addresses tried has them all free.
#[must_use]
pub fn free_loopback(ports: &[u16]) -> Ipv4Addr {
    let pid = std::process::id();
    for i in 0..64u32 {
        let n = pid.wrapping_add(i * 7919) % (250 * 250);
        let ip = Ipv4Addr::new(
            127,
            77,
            u8::try_from(n / 250 + 1).expect("below 251"),
            u8::try_from(n % 250 + 1).expect("below 251"),
        );
        if ports
            .iter()
            .all(|p| TcpListener::bind(SocketAddrV4::new(ip, *p)).is_ok())
        {
            return ip;
        }
    }
    panic!("no loopback address 127.77.x.y with the ports {ports:?} free");
}

/// One compose project of the stack: `docker compose -p PROJECT -f deploy/docker-compose.yml -f
/// tests/docker/compose.standins.yml`, from the repository's root, with `env`. Dropped without
/// [`Stack::down`], it prints the end of every service's log and takes the project down with
/// its volumes.
#[derive(Debug)]
pub struct Stack {
    /// The compose project's name (unique per run).
    pub project: String,
    /// The environment every compose command gets (the operator's exports).
    pub env: Vec<(String, String)>,
    /// More compose files after the stand-ins' override (`-f FILE` each, in order).
    pub files: Vec<PathBuf>,
    down: bool,
}

impl Stack {
    /// A project named `project` (nothing is started).
    #[must_use]
    pub fn new(project: String, env: Vec<(String, String)>) -> Self {
        Self {
            project,
            env,
            files: Vec::new(),
            down: false,
        }
    }

    /// The command `docker compose` with this project's name, files and environment.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.current_dir(repo())
            .args([
                "compose",
                "-p",
                &self.project,
                "-f",
                "deploy/docker-compose.yml",
                "-f",
            ])
            .arg(standins_override());
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `docker compose ARGS`.
    ///
    /// # Panics
    /// When docker cannot be started.
    #[must_use]
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("docker compose runs")
    }

    /// Runs `docker compose ARGS`, which must succeed; its stdout.
    ///
    /// # Panics
    /// When it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker compose {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the engine still holds of this project: containers, networks and volumes (by the
    /// project label compose puts on each), as `kind name` lines.
    ///
    /// # Panics
    /// When docker cannot be started.
    #[must_use]
    pub fn leftovers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let mut left = Vec::new();
        for (kind, args) in [
            ("container", vec!["ps", "-a", "--format", "{{.Names}}"]),
            ("network", vec!["network", "ls", "--format", "{{.Name}}"]),
            ("volume", vec!["volume", "ls", "--format", "{{.Name}}"]),
        ] {
            let out = Command::new("docker")
                .args(&args[..args.len() - 2])
                .args(["--filter", &label])
                .args(&args[args.len() - 2..])
                .output()
                .expect("docker runs");
            left.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("{kind} {l}")),
            );
        }
        left
    }

    /// `docker compose down -v --remove-orphans`, which must succeed.
    ///
    /// # Panics
    /// When it fails.
    pub fn down(&mut self) {
        self.ok(&["down", "-v", "--remove-orphans", "--timeout", "20"]);
        self.down = true;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        // A failed test: say what the services said, then leave nothing behind.
        if let Ok(out) = self
            .command()
            .args(["logs", "--no-color", "--tail", "40"])
            .output()
        {
            eprintln!(
                "--- the stack's logs (last 40 lines of each) ---\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = self
            .command()
            .args(["down", "-v", "--remove-orphans", "--timeout", "5"])
            .output();
    }
}
