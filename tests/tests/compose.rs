//! The docker-compose stack in `deploy/`, tested without a Docker engine:
//! - the compose file is valid against the Compose specification (typed, fully validated
//!   parse by the `compose_spec` crate; a misspelled key fails it);
//! - every Saleboard service's command and healthcheck run a binary the Dockerfile builds and
//!   copies into the image, with flags and environment variables that binary accepts;
//! - the same services started natively with the compose file's own commands and environment
//!   (host names mapped to 127.0.0.1 on free ports, PostgreSQL from the test helper, the OTLP
//!   collector replaced by a receiver in the test): migrate runs once, the healthchecks pass, a
//!   site is created, a file is pushed and the leaderboard shows it; the services' traces reach
//!   the "collector".

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use saleboard_tests::otlp::OtlpReceiver;
use saleboard_tests::proc::{ServiceProcess, bin_dir, free_addr};
use saleboard_tests::{Backend, TestDb};
use serde_yaml::Value;

/// The services built from Saleboard's image, in start order.
const SALEBOARD_SERVICES: [&str; 4] = ["migrate", "ingest", "aggregator", "leaderboard"];

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn compose_text() -> String {
    std::fs::read_to_string(deploy().join("docker-compose.yml")).expect("deploy/docker-compose.yml")
}

fn compose() -> Value {
    serde_yaml::from_str(&compose_text()).expect("compose file is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("compose has a {name} service"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("string item").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn command(compose: &Value, name: &str) -> Vec<String> {
    let c = strings(&service(compose, name)["command"]);
    assert!(!c.is_empty(), "{name} has a command in exec (list) form");
    c
}

/// What the operator exports before `docker compose up`, for the `${VAR:?...}` the file
/// requires.
const OPERATOR_ENV: &[(&str, &str)] =
    &[("SALEBOARD_ORGANIZER_TOKEN", "compose-test-organizer-7f3a9c")];

/// Compose's interpolation of one value: `${VAR:?message}` (required) and `${VAR:-default}`
/// from [`OPERATOR_ENV`]; a required variable the operator did not set is a test failure.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("a closing brace") + at;
        let inner = &rest[at + 2..end];
        let (var, default) = match inner.split_once(":?") {
            Some((var, _)) => (var, None),
            None => inner
                .split_once(":-")
                .map_or((inner, None), |(var, d)| (var, Some(d))),
        };
        out.push_str(
            &OPERATOR_ENV
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| default.map(str::to_owned))
                .unwrap_or_else(|| panic!("{var} is required by the compose file")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The raw environment of a service, before interpolation.
fn raw_environment(compose: &Value, name: &str) -> BTreeMap<String, String> {
    service(compose, name)["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => panic!("{name}: environment value {other:?}"),
                    };
                    (k.as_str().expect("key").to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The environment of a service as compose would pass it.
fn environment(compose: &Value, name: &str) -> BTreeMap<String, String> {
    raw_environment(compose, name)
        .into_iter()
        .map(|(k, v)| (k, interpolate(&v)))
        .collect()
}

/// The healthcheck's command (after `CMD`), if any.
fn healthcheck(compose: &Value, name: &str) -> Option<Vec<String>> {
    let test = strings(&service(compose, name)["healthcheck"]["test"]);
    (!test.is_empty()).then(|| {
        assert_eq!(
            test[0], "CMD",
            "{name}: exec-form healthcheck (no shell in the image)"
        );
        test[1..].to_vec()
    })
}

/// Binaries the Dockerfile builds (`--bin`) and copies into the runtime image.
fn dockerfile_binaries() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).expect("deploy/Dockerfile");
    // Join continued lines.
    let joined = text.replace("\\\n", " ");
    let mut built = BTreeSet::new();
    let mut copied = BTreeSet::new();
    for line in joined.lines().map(str::trim) {
        if line.starts_with("RUN cargo build") {
            let words: Vec<_> = line.split_whitespace().collect();
            for pair in words.windows(2) {
                if pair[0] == "--bin" {
                    built.insert(pair[1].to_owned());
                }
            }
        }
        if let Some(rest) = line.strip_prefix("COPY --from=builder ") {
            let parts: Vec<_> = rest.split_whitespace().collect();
            if let [from, to] = parts[..]
                && from.starts_with("/src/target/release/")
                && to.starts_with("/usr/local/bin/")
            {
                let name = from.trim_start_matches("/src/target/release/");
                assert_eq!(
                    to.trim_start_matches("/usr/local/bin/"),
                    name,
                    "copied under its own name"
                );
                copied.insert(name.to_owned());
            }
        }
    }
    (built, copied)
}

#[test]
fn compose_file_is_valid_against_the_compose_specification() {
    // As compose reads it: interpolated with the operator's environment.
    let text = interpolate(&compose_text());
    let parsed = compose_spec::Compose::options()
        .from_yaml_str(&text)
        .unwrap_or_else(|e| panic!("deploy/docker-compose.yml: {e}"));
    parsed
        .validate_all()
        .unwrap_or_else(|e| panic!("deploy/docker-compose.yml: {e}"));
    for name in
        SALEBOARD_SERVICES
            .iter()
            .chain(&["postgres", "otel-collector", "jaeger", "prometheus"])
    {
        assert!(
            parsed.services.keys().any(|k| k.as_str() == *name),
            "service {name}"
        );
    }
    // The check bites: a misspelled key or a bad value is refused.
    let typo = text.replacen("    healthcheck:", "    healtcheck:", 1);
    assert!(
        compose_spec::Compose::options()
            .from_yaml_str(&typo)
            .is_err(),
        "a misspelled key must fail the check"
    );
    let bad = text.replacen("condition: service_healthy", "condition: when_ready", 1);
    assert!(
        compose_spec::Compose::options()
            .from_yaml_str(&bad)
            .is_err(),
        "an unknown depends_on condition must fail the check"
    );
}

#[test]
fn no_secret_ships_with_the_stack() {
    let c = compose();
    for name in SALEBOARD_SERVICES {
        for (k, v) in raw_environment(&c, name) {
            if k.contains("TOKEN") || k.contains("SECRET") || k.contains("API_KEY") {
                assert!(
                    v.starts_with(&format!("${{{k}:?")),
                    "{name}: {k} must be required from the operator (${{{k}:?...}}), not {v:?}"
                );
            }
        }
    }
    assert!(
        raw_environment(&c, "leaderboard").contains_key("SALEBOARD_ORGANIZER_TOKEN"),
        "the leaderboard gets the organizer token from the operator"
    );
}

#[test]
fn compose_stack_shape() {
    let c = compose();
    // PostgreSQL: a healthcheck and a named volume.
    let pg = service(&c, "postgres");
    assert!(pg["healthcheck"]["test"].is_sequence());
    let volumes = strings(&pg["volumes"]);
    assert!(
        volumes.iter().any(|v| v.starts_with("pgdata:")),
        "{volumes:?}"
    );
    assert!(c["volumes"].get("pgdata").is_some());
    // migrate is one-shot and waits for a healthy database; the services wait for it.
    let migrate = service(&c, "migrate");
    assert_eq!(migrate["restart"].as_str(), Some("no"));
    assert_eq!(
        migrate["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    for name in ["ingest", "aggregator", "leaderboard"] {
        let s = service(&c, name);
        assert_eq!(
            s["depends_on"]["migrate"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} starts after migrations succeeded"
        );
        let check = healthcheck(&c, name).unwrap_or_else(|| panic!("{name} has a healthcheck"));
        assert_eq!(
            check[..2],
            ["saleboard", "health"],
            "{name}: gRPC health via the image's binary"
        );
        assert_eq!(
            environment(&c, name)
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(String::as_str),
            Some("http://otel-collector:4317"),
            "{name} exports to the collector"
        );
    }
    // The organizer's controls listen apart from the public port, and the host publishes them
    // on its loopback only (127.0.0.1 unless SALEBOARD_HOST_IP names another loopback address),
    // like every port of the stack.
    let board = service(&c, "leaderboard");
    let published: Vec<String> = strings(&board["ports"])
        .iter()
        .map(|p| interpolate(p))
        .collect();
    assert!(
        published.iter().any(|p| p == "127.0.0.1:50054:50054"),
        "AdminService published on the host's loopback: {published:?}"
    );
    for name in c["services"].as_mapping().expect("services").keys() {
        let name = name.as_str().expect("name");
        for p in strings(&service(&c, name)["ports"]) {
            assert!(
                p.starts_with("${SALEBOARD_HOST_IP:-127.0.0.1}:"),
                "{name} publishes {p} on the host's loopback"
            );
        }
    }
    assert!(
        command(&c, "leaderboard")
            .windows(2)
            .any(|w| w[0] == "--admin-listen" && w[1].ends_with(":50054")),
        "the leaderboard's AdminService listens on 50054"
    );
    // One image for every Saleboard service, built from the Dockerfile.
    assert_eq!(
        migrate["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    let image = migrate["image"].as_str().expect("image");
    for name in SALEBOARD_SERVICES {
        assert_eq!(service(&c, name)["image"].as_str(), Some(image), "{name}");
    }
    // The collector feeds Jaeger (traces) and a Prometheus endpoint that Prometheus scrapes.
    let collector =
        std::fs::read_to_string(deploy().join("otel-collector.yaml")).expect("collector config");
    let collector: Value = serde_yaml::from_str(&collector).expect("collector YAML");
    assert_eq!(
        collector["exporters"]["otlp/jaeger"]["endpoint"].as_str(),
        Some("jaeger:4317")
    );
    let prom_port = collector["exporters"]["prometheus"]["endpoint"]
        .as_str()
        .and_then(|e| e.rsplit(':').next())
        .expect("prometheus exporter endpoint")
        .to_owned();
    let prometheus =
        std::fs::read_to_string(deploy().join("prometheus.yml")).expect("prometheus config");
    assert!(
        prometheus.contains(&format!("otel-collector:{prom_port}")),
        "Prometheus scrapes the collector's exporter"
    );
    assert!(
        service(&c, "jaeger")["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("jaegertracing/jaeger:2")),
        "Jaeger v2"
    );
}

#[test]
fn every_compose_command_is_built_by_the_dockerfile_and_accepted_by_its_binary() {
    let c = compose();
    let (built, copied) = dockerfile_binaries();
    assert_eq!(
        built, copied,
        "every binary built is copied, and only those"
    );
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("USER ") && !l.contains("root")),
        "the image runs as a non-root user"
    );
    assert!(
        dockerfile.contains("cargo chef cook"),
        "dependencies are cached in their own layer"
    );
    for name in SALEBOARD_SERVICES {
        let mut commands = vec![command(&c, name)];
        commands.extend(healthcheck(&c, name));
        let env = environment(&c, name);
        for cmd in &commands {
            assert!(
                copied.contains(&cmd[0]),
                "{name}: {} is not copied into the image by the Dockerfile",
                cmd[0]
            );
            assert!(
                bin_dir().join(&cmd[0]).exists(),
                "{name}: {} is a binary of this workspace",
                cmd[0]
            );
            // Flags: the binary parses them (clap stops at --help only after parsing what
            // comes before it).
            let out = Command::new(bin_dir().join(&cmd[0]))
                .args(&cmd[1..])
                .arg("--help")
                .env_clear()
                .output()
                .expect("binary runs");
            let help = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{name}: {cmd:?} is refused by its binary: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Environment: every variable is one the binary documents (and so reads).
            if *cmd == commands[0] {
                for key in env.keys() {
                    assert!(
                        mentions(&help, key),
                        "{name}: {key} is not a setting of {cmd:?}:\n{help}"
                    );
                }
            }
        }
    }
}

/// Whether `text` names `word` as a whole identifier (not as part of a longer one).
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Rewrites `host:port` of compose's network (service names, 0.0.0.0, localhost) to
/// 127.0.0.1 and the port this test picked for it.
fn localize(text: &str, hosts: &[String], ports: &BTreeMap<u16, u16>) -> String {
    let mut out = text.to_owned();
    for host in hosts {
        for (from, to) in ports {
            out = out.replace(&format!("{host}:{from}"), &format!("127.0.0.1:{to}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_services_run_natively_with_their_own_commands() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let otlp = OtlpReceiver::start().await;
    let c = compose();
    let mut hosts: Vec<String> = c["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .map(|k| k.as_str().expect("name").to_owned())
        .collect();
    hosts.extend(["0.0.0.0".into(), "127.0.0.1".into(), "localhost".into()]);
    let mut ports = BTreeMap::new();
    for port in [50051u16, 50052, 50053, 50054] {
        ports.insert(port, free_addr().port());
    }
    ports.insert(4317, otlp.addr.port());
    let listen_of = |name: &str| -> std::net::SocketAddr {
        let cmd = command(&c, name);
        let at = cmd
            .iter()
            .position(|a| a.ends_with("-listen"))
            .unwrap_or_else(|| panic!("{name} sets its listen address"));
        localize(&cmd[at + 1], &hosts, &ports)
            .parse()
            .expect("address")
    };
    let env_of = |name: &str| -> Vec<(String, String)> {
        environment(&c, name)
            .into_iter()
            .map(|(k, v)| {
                let v = if k == "SALEBOARD_DATABASE_URL" {
                    assert!(
                        v.starts_with("postgres://") && v.contains("@postgres:5432/"),
                        "{v}"
                    );
                    db.url.clone()
                } else {
                    localize(&v, &hosts, &ports)
                };
                (k, v)
            })
            .collect()
    };

    // migrate: one shot, exit 0.
    let cmd = command(&c, "migrate");
    let out = Command::new(bin_dir().join(&cmd[0]))
        .args(&cmd[1..])
        .env_clear()
        .envs(env_of("migrate"))
        .output()
        .expect("migrate runs");
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut running = Vec::new();
    for name in ["ingest", "aggregator", "leaderboard"] {
        let cmd: Vec<String> = command(&c, name)
            .iter()
            .map(|a| localize(a, &hosts, &ports))
            .collect();
        let env = env_of(name);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
        running.push((
            name,
            ServiceProcess::start(&cmd[0], &args, &env, listen_of(name)).await,
        ));
    }
    for name in ["ingest", "aggregator", "leaderboard"] {
        let check: Vec<String> = healthcheck(&c, name)
            .expect("healthcheck")
            .iter()
            .map(|a| localize(a, &hosts, &ports))
            .collect();
        let out = Command::new(bin_dir().join(&check[0]))
            .args(&check[1..])
            .output()
            .expect("healthcheck runs");
        assert!(
            out.status.success(),
            "{name} healthcheck {check:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The README's walk-through against the stack: event, site, key, push, leaderboard.
    let token = environment(&c, "leaderboard")["SALEBOARD_ORGANIZER_TOKEN"].clone();
    let board = format!("http://{}", listen_of("leaderboard"));
    let ingest = format!("http://{}", listen_of("ingest"));
    let cli = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(bin_dir().join("saleboard"))
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().copied())
            .output()
            .expect("saleboard runs");
        assert!(
            out.status.success(),
            "saleboard {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let admin = {
        let cmd = command(&c, "leaderboard");
        let at = cmd
            .iter()
            .position(|a| a == "--admin-listen")
            .expect("the leaderboard sets its admin address");
        format!("http://{}", localize(&cmd[at + 1], &hosts, &ports))
    };
    let organizer = [
        ("SALEBOARD_ORGANIZER_TOKEN", token.as_str()),
        ("SALEBOARD_ADMIN_ENDPOINT", admin.as_str()),
    ];
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    cli(
        &[
            "admin",
            "event",
            "set",
            "--id",
            "harbolnas-compose",
            "--starts",
            &rfc(now - time::Duration::days(1)),
            "--ends",
            &rfc(now + time::Duration::days(2)),
        ],
        &organizer,
    );
    cli(&["admin", "sites", "create", "toko-compose"], &organizer);
    let key: serde_json::Value = serde_json::from_str(&cli(
        &[
            "admin",
            "keys",
            "create",
            "toko-compose",
            "--output",
            "json",
        ],
        &organizer,
    ))
    .expect("key JSON");
    let secret = key["secret"].as_str().expect("secret").to_owned();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("orders.csv");
    let at = rfc(now - time::Duration::minutes(1));
    std::fs::write(
        &file,
        format!(
            "transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n\
             C1,jkt,SALE,IDR,150000,{at},\nC2,jkt,SALE,IDR,50000,{at},\n"
        ),
    )
    .expect("write");
    let pushed = cli(
        &["push", file.to_str().expect("utf-8"), "--endpoint", &ingest],
        &[("SALEBOARD_API_KEY", secret.as_str())],
    );
    assert!(pushed.contains("2 accepted"), "{pushed}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = cli(
            &["leaderboard", "--endpoint", &board, "--output", "json"],
            &[],
        );
        let b: serde_json::Value = serde_json::from_str(&text).expect("leaderboard JSON");
        let entry = b["entries"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["site_id"] == "toko-compose"))
            .cloned();
        if entry
            .as_ref()
            .is_some_and(|e| e["net_reporting_minor"] == "200000")
        {
            assert_eq!(entry.expect("entry")["rank"], 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the push reaches the leaderboard: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM like `docker compose stop`: each exits 0 and flushes its spans to the collector.
    for (name, mut process) in running.into_iter().rev() {
        assert!(
            process.terminate(Duration::from_secs(20)).await,
            "{name} stops cleanly"
        );
    }
    for service in ["saleboard-ingest", "saleboard-leaderboard"] {
        assert!(
            !otlp.spans(service).is_empty(),
            "{service} traces reach the collector"
        );
    }
}

// --- The stack on a real Docker engine ----------------------------------------------------------

/// Says a figure of the run (a build's time, the image's size) on the test's stderr past
/// libtest's capture, so CI's log shows it for a passing test too.
macro_rules! say {
    ($($arg:tt)*) => {
        saleboard_tests::docker::say(&format!($($arg)*))
    };
}

/// The ports the stack publishes on the host.
const PUBLISHED: [u16; 7] = [50051, 50052, 50053, 50054, 4317, 16686, 9090];

/// The lines of the first ```sh block after `heading` in the README.
fn readme_block(heading: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let from = readme.find(heading).expect("the heading is in the README");
    let rest = &readme[from..];
    let open = rest.find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block closes");
    rest[open..open + close]
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A line without its comment (the README's blocks never quote a `#`).
fn without_comment(line: &str) -> &str {
    line.find('#').map_or(line, |i| &line[..i]).trim()
}

/// Runs one command line with bash, from the repository's root, with exactly `env` added.
fn bash(line: &str, env: &BTreeMap<String, String>) -> std::process::Output {
    Command::new("bash")
        .args(["-c", line])
        .current_dir(saleboard_tests::docker::repo())
        .env_remove("SALEBOARD_API_KEY")
        .env_remove("SALEBOARD_ORGANIZER_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env)
        .output()
        .expect("bash runs")
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn both(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `line` until `good` holds of its stdout (a command that reads what the stack settles to:
/// the aggregator's lag, the metrics' export and scrape), for at most `within`.
fn until(
    line: &str,
    env: &BTreeMap<String, String>,
    within: Duration,
    good: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let out = bash(line, env);
        let text = stdout_of(&out);
        if out.status.success() && good(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{line}: not as expected within {within:?}:\n{}",
            both(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Orders of one site, as a shop exports them: `n` sales of 10,000.00 IDR + i sen, and one
/// refund of 2,500.00 IDR of the first; with the net they add up to.
fn orders(prefix: &str, n: u64) -> (String, i64) {
    let at = (time::OffsetDateTime::now_utc() - time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let mut csv =
        String::from("transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n");
    let mut net = 0i64;
    for i in 0..n {
        let amount = 1_000_000 + i64::try_from(i).expect("small");
        net += amount;
        csv.push_str(&format!("{prefix}-{i},jkt,SALE,IDR,{amount},{at},\n"));
    }
    csv.push_str(&format!(
        "{prefix}-R,jkt,REFUND,IDR,250000,{at},{prefix}-0\n"
    ));
    (csv, net - 250_000)
}

/// `(accepted, duplicates)` of `saleboard push --output json`'s one file.
fn push_counts(json: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("push --output json");
    let file = &v[0];
    (
        file["accepted"].as_u64().expect("accepted"),
        file["duplicate"].as_u64().expect("duplicates"),
    )
}

/// The position `saleboard verify` (inside the stack) checked every total up to.
fn verify_in_stack(stack: &saleboard_tests::docker::Stack) -> u64 {
    let out = stack.ok(&["exec", "-T", "ingest", "saleboard", "verify"]);
    let position = out
        .lines()
        .find_map(|l| {
            // `verify` also reports the audit log's chain on its own "verified: " line.
            l.strip_prefix("verified: ")
                .and_then(|l| l.rsplit_once("up to position "))
                .map(|(_, position)| position)
        })
        .unwrap_or_else(|| panic!("verify reports a match: {out}"));
    position.trim().parse().expect("a position")
}

/// Net of `site` on the big screen's JSON (`/api/v1/leaderboard`), read until it equals `want`.
async fn screen_net(board: std::net::SocketAddr, site: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = saleboard_tests::http::get(board, "/api/v1/leaderboard").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let net = v["entries"].as_array().and_then(|e| {
            e.iter()
                .find(|e| e["site_id"] == site)
                .and_then(|e| e["net_reporting_minor"].as_str()?.parse::<i64>().ok())
        });
        if status == 200 && net == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the big screen's JSON shows {site} at {want}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The tests on the Docker engine, one at a time: each builds images on the machine's two cores
/// and runs a stack of its own.
static ON_THE_ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine's and Compose's versions; `None` (the test says it skipped, and why) when no
/// engine answers, or when Compose v2 is missing outside CI (under `CI=true` an engine without
/// Compose v2 fails the test).
fn engine_and_compose() -> Option<(String, String)> {
    use saleboard_tests::docker;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let engine = match docker::engine() {
        Ok(v) => v,
        Err(why) => {
            docker::skipped(&why);
            return None;
        }
    };
    match docker::compose_v2() {
        Ok(compose) => Some((engine, compose)),
        Err(why) if !ci => {
            docker::skipped(&why);
            None
        }
        Err(why) => panic!("the Docker engine {engine} answers but {why}"),
    }
}

/// The stack as users run it, on the Docker engine of this machine: `docker compose build` (the
/// Dockerfile's multi-stage build from source), `up -d --wait`, the README's compose block line
/// by line from the host, the screen's JSON and Prometheus's scrape; `restart`, `down` and `up`
/// with the volume kept; ingest SIGKILLed mid-push; `down -v` leaving nothing behind.
///
/// Base images cannot be pulled here: `tests/docker/standins.sh` makes stand-ins under the
/// names the Dockerfile and compose file use, from Debian's packages, and
/// `tests/docker/compose.standins.yml` puts the tests' OTLP receiver in place of the collector
/// and Jaeger. Where no engine answers, it says it skipped and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_runs_on_a_docker_engine() {
    use saleboard_tests::docker;
    let _alone = ON_THE_ENGINE.lock().await;
    let Some((engine, compose)) = engine_and_compose() else {
        return;
    };
    let started = std::time::Instant::now();
    say!("compose test: Docker engine {engine}, Compose {compose}");
    let standins = docker::make_standins(&bin_dir().join("otlp-receiver"));
    say!("compose test: stand-in images ready in {standins:.0?}");

    // The operator's shell: the CLI on PATH, a project and loopback address of this run's own.
    let host_ip = docker::free_loopback(&PUBLISHED);
    let project = format!(
        "saleboard-test-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let mut env: BTreeMap<String, String> = BTreeMap::from([
        (
            "PATH".to_owned(),
            format!(
                "{}:{}",
                bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        ("COMPOSE_PROJECT_NAME".to_owned(), project.clone()),
        ("SALEBOARD_HOST_IP".to_owned(), host_ip.to_string()),
    ]);
    let mut stack = docker::Stack::new(
        project.clone(),
        env.iter()
            .filter(|(k, _)| k.as_str() != "PATH")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let (csv, orders_net) = orders("C", 40);
    let orders_file = dir.path().join("orders.csv");
    std::fs::write(&orders_file, &csv).expect("orders.csv");
    let localize = |line: &str| line.replace("127.0.0.1", &host_ip.to_string());
    let override_file = docker::standins_override();

    // The README's block, as written: each line is recognised and run, or the test fails.
    let mut key = None::<String>;
    let mut trace = None::<String>;
    let mut ran = Vec::new();
    for line in readme_block("## The docker-compose stack") {
        let mut cmd = without_comment(&line).to_owned();
        if cmd.is_empty() {
            continue;
        }
        cmd = localize(&cmd).replace(
            "-f deploy/docker-compose.yml",
            &format!(
                "-f deploy/docker-compose.yml -f {}",
                override_file.display()
            ),
        );
        if let Some(key) = &key {
            cmd = cmd.replace("sbk_...", key);
        }
        cmd = cmd.replace(" orders.csv", &format!(" {}", orders_file.display()));
        if let Some(assignment) = cmd.strip_prefix("export ") {
            let (name, value) = assignment.split_once('=').expect("export NAME=VALUE");
            let value = stdout_of(&bash(&format!("printf %s {value}"), &env));
            assert!(!value.is_empty(), "{line}: an empty value");
            if name == "SALEBOARD_ORGANIZER_TOKEN" {
                stack.env.push((name.to_owned(), value.clone()));
            }
            env.insert(name.to_owned(), value);
            ran.push(line);
            continue;
        }
        let timed = std::time::Instant::now();
        let out = if cmd.starts_with("saleboard leaderboard") {
            // The aggregator folds the push within moments: the table shows the site then.
            until(&cmd, &env, Duration::from_secs(60), |t| {
                t.contains("toko-satu")
            })
        } else if cmd.starts_with("curl") && cmd.contains(":9090/") {
            // Exported every 10 s, scraped every 5 s.
            until(&cmd, &env, Duration::from_secs(90), |t| {
                t.contains("\"outcome\":\"accepted\"")
            })
        } else if cmd.starts_with("curl") {
            until(&cmd, &env, Duration::from_secs(60), |t| {
                t.contains("toko-satu")
            })
        } else {
            let out = bash(&cmd, &env);
            assert!(out.status.success(), "{line}\n{}", both(&out));
            stdout_of(&out)
        };
        let took = timed.elapsed();
        if cmd.contains(" build") {
            say!("compose test: `docker compose build` took {took:.0?}");
            let size = Command::new("docker")
                .args(["image", "inspect", "-f", "{{.Size}}", "saleboard:local"])
                .output()
                .expect("docker runs");
            let bytes: u64 = String::from_utf8_lossy(&size.stdout)
                .trim()
                .parse()
                .expect("image size");
            say!(
                "compose test: image saleboard:local is {} MB",
                bytes / 1_000_000
            );
            // The runtime stage holds four binaries on a slim Debian, not the toolchain.
            assert!(bytes < 250_000_000, "the image is {bytes} bytes");
        }
        if cmd.contains(" up ") {
            say!("compose test: `up -d --wait` took {took:.0?}");
        }
        if cmd.ends_with(" ps") {
            for name in ["ingest", "aggregator", "leaderboard"] {
                assert!(
                    out.lines()
                        .any(|l| l.contains(name) && l.contains("(healthy)")),
                    "{name} is healthy:\n{out}"
                );
            }
        }
        if cmd.contains("keys create") {
            key = out
                .split_whitespace()
                .find(|w| w.starts_with("sbk_"))
                .map(str::to_owned);
            assert!(key.is_some(), "keys create prints the secret: {out}");
        }
        if cmd.contains(" push ") {
            assert!(out.contains("41 accepted"), "{out}");
            trace = out
                .lines()
                .find_map(|l| l.strip_prefix("trace "))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_owned);
        }
        if cmd.contains(" verify") {
            assert!(out.contains("verified: "), "{out}");
        }
        ran.push(line);
    }
    for needed in [
        "compose -f deploy/docker-compose.yml build",
        "up -d --wait",
        "keys create",
        " push ",
        "saleboard leaderboard",
        "/api/v1/leaderboard",
        ":9090/api/v1/query",
        " verify",
    ] {
        assert!(
            ran.iter().any(|l| l.contains(needed)),
            "the README's compose block runs `{needed}`: {ran:#?}"
        );
    }

    // What the walk-through showed, exactly: the screen's JSON, Prometheus, the spans.
    let board: std::net::SocketAddr = format!("{host_ip}:50052").parse().expect("address");
    screen_net(board, "toko-satu", orders_net).await;
    let prometheus: std::net::SocketAddr = format!("{host_ip}:9090").parse().expect("address");
    let query = "/api/v1/query?query=sum(saleboard_ingest_transactions_total%7Boutcome%3D%22accepted%22%7D)";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, body) = saleboard_tests::http::get(prometheus, query).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let value = v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned);
        if value.as_deref() == Some("41") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus scrapes 41 accepted transactions: {body}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let trace = trace.expect("push printed its trace id");
    let logs = stack.ok(&["logs", "--no-color", "otel-collector"]);
    assert!(
        logs.contains(&format!(
            "service=saleboard-ingest trace_id={trace} name=saleboard.v1.IngestService/StreamTransactions"
        )),
        "ingest's span of the push (trace {trace}) reaches the collector's stand-in:\n{logs}"
    );
    assert!(
        logs.contains("service=saleboard-leaderboard "),
        "the leaderboard's spans reach it too:\n{logs}"
    );
    let key = key.expect("the key");
    let push = |file: &std::path::Path| {
        bash(
            &format!(
                "saleboard push {} --endpoint http://{host_ip}:50051 --output json",
                file.display()
            ),
            &BTreeMap::from([
                ("PATH".to_owned(), env["PATH"].clone()),
                ("SALEBOARD_API_KEY".to_owned(), key.clone()),
            ]),
        )
    };
    let mut rows = verify_in_stack(&stack);
    assert_eq!(rows, 41, "every accepted transaction is in the ledger");

    // Restart, then down and up with the volume kept: every row still there, once.
    for how in [&["restart"][..], &["down"][..]] {
        stack.ok(how);
        stack.ok(&["up", "-d", "--wait"]);
        let again = push(&orders_file);
        assert_eq!(
            push_counts(&stdout_of(&again)),
            (0, 41),
            "after {how:?} every transaction is stored, once: {}",
            both(&again)
        );
        screen_net(board, "toko-satu", orders_net).await;
        assert_eq!(verify_in_stack(&stack), rows, "after {how:?}");
    }

    // ingest SIGKILLed in the middle of a push: the push rides it out (the operator brings
    // ingest back), and nothing it was told ACCEPTED is lost.
    let (big, big_net) = orders("K", 30_000);
    let big_file = dir.path().join("big.csv");
    std::fs::write(&big_file, big).expect("big.csv");
    let pushing = {
        let file = big_file.clone();
        let env = env["PATH"].clone();
        let key = key.clone();
        let ingest = format!("http://{host_ip}:50051");
        std::thread::spawn(move || {
            Command::new(bin_dir().join("saleboard"))
                .args(["push", file.to_str().expect("utf-8"), "--endpoint", &ingest])
                .args(["--output", "json", "--batch-size", "100"])
                .env("PATH", env)
                .env("SALEBOARD_API_KEY", key)
                .output()
                .expect("push runs")
        })
    };
    // Kill once the ledger has moved, while the push is still sending.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = stack.ok(&[
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "saleboard",
            "-d",
            "saleboard",
            "-tAc",
            "SELECT count(*) FROM ledger",
        ]);
        if out.trim().parse::<u64>().expect("a count") > rows + 500 {
            break;
        }
        assert!(
            !pushing.is_finished(),
            "the push ended before the ledger moved: {}",
            both(&pushing.join().expect("push thread"))
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the big push starts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !pushing.is_finished(),
        "the push is still running when ingest is killed"
    );
    stack.ok(&["kill", "-s", "SIGKILL", "ingest"]);
    stack.ok(&["up", "-d", "--wait"]);
    let out = pushing.join().expect("push thread");
    assert!(
        out.status.success(),
        "the push rides out the kill: {}",
        both(&out)
    );
    let (accepted, duplicates) = push_counts(&stdout_of(&out));
    assert_eq!(
        accepted + duplicates,
        30_001,
        "every row answered ACCEPTED or DUPLICATE (a resend of a stored row): {}",
        both(&out)
    );
    let again = push(&big_file);
    assert_eq!(
        push_counts(&stdout_of(&again)),
        (0, 30_001),
        "every row of the killed push is stored, once: {}",
        both(&again)
    );
    rows += 30_001;
    screen_net(board, "toko-satu", orders_net + big_net).await;
    assert_eq!(verify_in_stack(&stack), rows, "after the kill");

    // The runbook's checks from the host: gRPC health of each published service.
    for port in [50051, 50052, 50053] {
        let out = bash(&format!("saleboard health http://{host_ip}:{port}"), &env);
        assert!(
            out.status.success() && stdout_of(&out).contains("SERVING"),
            "health of :{port}: {}",
            both(&out)
        );
    }
    // One service restarted alone: the leaderboard comes back with every figure; PostgreSQL
    // restarted alone: the services reconnect, a push after it is stored, verify agrees.
    stack.ok(&["restart", "leaderboard"]);
    stack.ok(&["up", "-d", "--wait"]);
    screen_net(board, "toko-satu", orders_net + big_net).await;
    stack.ok(&["restart", "postgres"]);
    stack.ok(&["up", "-d", "--wait"]);
    let (after_db, after_db_net) = orders("D", 20);
    let after_db_file = dir.path().join("after-db.csv");
    std::fs::write(&after_db_file, after_db).expect("after-db.csv");
    let out = push(&after_db_file);
    assert_eq!(
        push_counts(&stdout_of(&out)),
        (21, 0),
        "a push after PostgreSQL restarted: {}",
        both(&out)
    );
    rows += 21;
    let net = orders_net + big_net + after_db_net;
    screen_net(board, "toko-satu", net).await;
    assert_eq!(verify_in_stack(&stack), rows, "after PostgreSQL restarted");

    // The README's backup and restore in the stack, as written: a backup from the running
    // stack, checked on the host, restored into a fresh stack (down -v, up): every row and
    // figure back, resent rows duplicates.
    let backup_file = dir.path().join("saleboard.backup");
    let lines = readme_block("In the compose stack the image has the command line");
    let stack_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("docker compose"))
        .collect();
    assert_eq!(
        stack_lines.len(),
        2,
        "the README's backup and restore lines: {lines:#?}"
    );
    let in_stack = |line: &str| {
        without_comment(line)
            .replace(
                "-f deploy/docker-compose.yml",
                &format!(
                    "-f deploy/docker-compose.yml -f {}",
                    override_file.display()
                ),
            )
            .replace("saleboard.backup", &backup_file.display().to_string())
    };
    let out = bash(&in_stack(stack_lines[0]), &env);
    assert!(out.status.success(), "{}: {}", stack_lines[0], both(&out));
    // The runbook's other backup (section 4), at the same moment: PostgreSQL's own dump.
    let dump_file = dir.path().join("saleboard.dump");
    let dump = stack.run(&[
        "exec",
        "-T",
        "postgres",
        "pg_dump",
        "-U",
        "saleboard",
        "-Fc",
        "saleboard",
    ]);
    assert!(dump.status.success(), "pg_dump: {}", both(&dump));
    std::fs::write(&dump_file, &dump.stdout).expect("saleboard.dump");
    // And verify run in another service's container (the runbook's way when ingest is down).
    let out = stack.run(&["exec", "-T", "aggregator", "saleboard", "verify"]);
    assert!(
        out.status.success(),
        "verify in the aggregator's container: {}",
        both(&out)
    );
    let out = bash(
        &format!("saleboard restore --check {}", backup_file.display()),
        &env,
    );
    assert!(
        out.status.success() && stdout_of(&out).contains(&format!("{rows} ledger rows")),
        "{}",
        both(&out)
    );
    stack.ok(&["down", "-v"]);
    stack.ok(&["up", "-d", "--wait"]);
    let out = bash(&in_stack(stack_lines[1]), &env);
    assert!(out.status.success(), "{}: {}", stack_lines[1], both(&out));
    screen_net(board, "toko-satu", net).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = stack.run(&["exec", "-T", "ingest", "saleboard", "verify"]);
        if out.status.success() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "verify after the restore: {}",
            both(&out)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(verify_in_stack(&stack), rows, "after the restore");
    let again = push(&orders_file);
    assert_eq!(
        push_counts(&stdout_of(&again)),
        (0, 41),
        "resent after the restore: {}",
        both(&again)
    );

    // The runbook's host-lost recovery with the dump instead (section 5.7): a fresh volume,
    // PostgreSQL alone, pg_restore, then the rest of the stack: the totals come back as they
    // were (nothing to refold), verify passes, the screen shows them.
    stack.ok(&["down", "-v"]);
    stack.ok(&["up", "-d", "--wait", "postgres"]);
    let restored = stack
        .command()
        .args([
            "exec",
            "-T",
            "postgres",
            "pg_restore",
            "-U",
            "saleboard",
            "-d",
            "saleboard",
            "--no-owner",
        ])
        .stdin(std::fs::File::open(&dump_file).expect("saleboard.dump"))
        .output()
        .expect("docker compose runs");
    assert!(restored.status.success(), "pg_restore: {}", both(&restored));
    stack.ok(&["up", "-d", "--wait"]);
    assert_eq!(verify_in_stack(&stack), rows, "after pg_restore");
    screen_net(board, "toko-satu", net).await;
    let again = push(&orders_file);
    assert_eq!(
        push_counts(&stdout_of(&again)),
        (0, 41),
        "resent after pg_restore: {}",
        both(&again)
    );

    // down -v: nothing of the project is left on the engine.
    stack.down();
    let left = stack.leftovers();
    assert!(left.is_empty(), "down -v leaves nothing: {left:?}");
    say!(
        "compose test: the whole test took {:.0?}",
        started.elapsed()
    );
}

/// `git` in the repository, which must succeed: its stdout, trimmed.
fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(saleboard_tests::docker::repo())
        .output()
        .map_err(|e| format!("git cannot run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The previous release, for an upgrade: the commit before the one that added the latest
/// PostgreSQL migration (the project has no release tags yet), and that migration's number.
fn previous_release() -> Result<(String, u32), String> {
    let dir = saleboard_tests::docker::repo().join("services/storage/migrations/postgres");
    let latest = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sql"))
        .max()
        .ok_or("no migration")?;
    let number: u32 = latest
        .split('_')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{latest} is not numbered"))?;
    let path = format!("services/storage/migrations/postgres/{latest}");
    let added = git(&["log", "--diff-filter=A", "--format=%H", "--", &path])?;
    let added = added
        .lines()
        .last()
        .ok_or_else(|| format!("this checkout's history does not hold the commit adding {path}"))?;
    let previous = git(&["rev-parse", "--short=12", &format!("{added}^")])?;
    Ok((previous, number))
}

/// `after` with only the object keys `before` has at the same place (arrays element by
/// element): what an older release wrote, read from a newer one's answer.
fn keys_of(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => Value::Object(
            a.iter()
                .filter_map(|(k, v)| b.get(k).map(|bv| (k.clone(), keys_of(bv, v))))
                .collect(),
        ),
        (Value::Array(b), Value::Array(a)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| b.get(i).map_or_else(|| v.clone(), |bv| keys_of(bv, v)))
                .collect(),
        ),
        (_, a) => a.clone(),
    }
}

/// Panics unless every key `after` has and `before` lacks (at the same place) holds its
/// default in the proto3 JSON mapping: false, 0, "0", "", an empty list or object.
fn additions_are_defaults(before: &serde_json::Value, after: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                let path = format!("{at}.{k}");
                match b.get(k) {
                    Some(bv) => additions_are_defaults(bv, v, &path),
                    None => {
                        let default = match v {
                            Value::Bool(x) => !x,
                            Value::Number(n) => n.as_f64() == Some(0.0),
                            Value::String(s) => s.is_empty() || s == "0",
                            Value::Array(x) => x.is_empty(),
                            Value::Object(x) => x.is_empty(),
                            Value::Null => true,
                        };
                        assert!(
                            default,
                            "{path} is new in this release and not its default: {v}"
                        );
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                additions_are_defaults(bv, av, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The JSON at `path` of the big screen, without the keys that name when it was read.
async fn screen_json(board: std::net::SocketAddr, path: &str) -> serde_json::Value {
    fn without_times(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("as_of");
                map.values_mut().for_each(without_times);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(without_times),
            _ => {}
        }
    }
    let (status, _, body) = saleboard_tests::http::get(board, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let mut v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    without_times(&mut v);
    v
}

/// An upgrade as an operator makes one: the stack of the previous release (its image built
/// from that commit's source, as users would have built it) is filled through the command
/// line; then the current image is built and `up -d` recreates the services, the one-shot
/// `migrate` service applying the new migrations. Every row, every figure on the big screen
/// and `verify` are unchanged, new pushes go on; the previous release refuses the migrated
/// database, and the current one refuses a database a newer release migrated, naming both
/// versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_keeps_every_row_and_figure() {
    use saleboard_tests::docker;
    let _alone = ON_THE_ENGINE.lock().await;
    if engine_and_compose().is_none() {
        return;
    }
    let (previous, migration) = match previous_release() {
        Ok(found) => found,
        Err(why) => {
            // A shallow clone: nothing to build the previous release from.
            docker::skipped(&format!("the upgrade test has no previous release: {why}"));
            return;
        }
    };
    let started = std::time::Instant::now();
    docker::make_standins(&bin_dir().join("otlp-receiver"));

    // The previous release's image, from its own source and Dockerfile (kept on the engine
    // under its commit: a later run on this machine reuses it).
    let old_image = format!("saleboard-upgrade:{previous}");
    let new_image = "saleboard-upgrade:current";
    let exists = Command::new("docker")
        .args(["image", "inspect", &old_image])
        .output()
        .expect("docker runs")
        .status
        .success();
    if !exists {
        let tree = tempfile::tempdir().expect("tmp");
        let archive = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "git archive --format=tar {previous} | tar -x -C '{}'",
                tree.path().display()
            ))
            .current_dir(docker::repo())
            .output()
            .expect("git archive runs");
        assert!(archive.status.success(), "{}", both(&archive));
        let timed = std::time::Instant::now();
        let build = Command::new("docker")
            .args([
                "build",
                "-q",
                "-f",
                "deploy/Dockerfile",
                "-t",
                &old_image,
                ".",
            ])
            .current_dir(tree.path())
            .output()
            .expect("docker build runs");
        assert!(
            build.status.success(),
            "building {previous}: {}",
            both(&build)
        );
        say!(
            "compose test: the previous release's image ({previous}) built in {:.0?}",
            timed.elapsed()
        );
    }

    let dir = tempfile::tempdir().expect("tmp");
    let images = |image: &str| {
        let mut text = String::from("services:\n");
        for service in ["migrate", "ingest", "aggregator", "leaderboard"] {
            text.push_str(&format!("  {service}:\n    image: {image}\n"));
        }
        text
    };
    let old_file = dir.path().join("previous.yml");
    let new_file = dir.path().join("current.yml");
    std::fs::write(&old_file, images(&old_image)).expect("write");
    std::fs::write(&new_file, images(new_image)).expect("write");
    let host_ip = docker::free_loopback(&PUBLISHED);
    let token = "upgrade-test-organizer-token-0123";
    let mut stack = docker::Stack::new(
        format!(
            "saleboard-upgrade-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp()
        ),
        vec![
            ("SALEBOARD_HOST_IP".to_owned(), host_ip.to_string()),
            ("SALEBOARD_ORGANIZER_TOKEN".to_owned(), token.to_owned()),
        ],
    );
    stack.files = vec![old_file.clone()];
    stack.ok(&["up", "-d", "--wait"]);

    // Filled through the previous release: an event, two sites, keys, a push each.
    let cli_env = BTreeMap::from([
        (
            "PATH".to_owned(),
            format!(
                "{}:{}",
                bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        ("SALEBOARD_ORGANIZER_TOKEN".to_owned(), token.to_owned()),
        (
            "SALEBOARD_ENDPOINT".to_owned(),
            format!("http://{host_ip}:50052"),
        ),
        (
            "SALEBOARD_ADMIN_ENDPOINT".to_owned(),
            format!("http://{host_ip}:50054"),
        ),
    ]);
    let run = |cmd: &str| {
        let out = bash(cmd, &cli_env);
        assert!(out.status.success(), "{cmd}\n{}", both(&out));
        stdout_of(&out)
    };
    let push_as = |key: &str, file: &std::path::Path| {
        push_counts(&run(&format!(
            "SALEBOARD_API_KEY={key} saleboard push {} --endpoint http://{host_ip}:50051 --output json",
            file.display()
        )))
    };
    run("saleboard admin event set --id harbolnas-2026 --starts now-1h --ends now+3d");
    let mut files = Vec::new();
    let mut keys = Vec::new();
    for (site, prefix, n) in [("toko-satu", "P", 40_u64), ("toko-dua", "Q", 25)] {
        run(&format!(
            "saleboard admin sites create {site} --name {site}"
        ));
        let out = run(&format!("saleboard admin keys create {site}"));
        let key = out
            .split_whitespace()
            .find(|w| w.starts_with("sbk_"))
            .expect("keys create prints the secret")
            .to_owned();
        let (csv, _) = orders(prefix, n);
        let file = dir.path().join(format!("{site}.csv"));
        std::fs::write(&file, csv).expect("write");
        assert_eq!(push_as(&key, &file), (n + 1, 0), "{site}");
        files.push(file);
        keys.push(key);
    }
    let (_, satu_net) = orders("P", 40);
    let board: std::net::SocketAddr = format!("{host_ip}:50052").parse().expect("address");
    screen_net(board, "toko-satu", satu_net).await;
    let (_, dua_net) = orders("Q", 25);
    screen_net(board, "toko-dua", dua_net).await;
    let rows = verify_in_stack(&stack);
    assert_eq!(
        rows, 67,
        "every accepted row is in the previous release's ledger"
    );
    let figures = [
        screen_json(board, "/api/v1/leaderboard").await,
        screen_json(board, "/api/v1/national").await,
    ];

    // The upgrade: build the current image, recreate the services on it (migrate first).
    stack.files = vec![new_file.clone()];
    let timed = std::time::Instant::now();
    stack.ok(&["build"]);
    say!(
        "compose test: the current image built in {:.0?}",
        timed.elapsed()
    );
    stack.ok(&["up", "-d", "--wait"]);
    let migrated = stack.ok(&["logs", "--no-color", "migrate"]);
    say!(
        "compose test: upgraded from {previous} (migration {migration} applied) in {:.0?}",
        started.elapsed()
    );
    assert!(!migrated.contains("ERROR"), "{migrated}");
    assert_eq!(verify_in_stack(&stack), rows, "verify after the upgrade");
    screen_net(board, "toko-satu", satu_net).await;
    // The new release may add fields to the contract: each holds its default (nothing the
    // previous release counted moved into it), and every field the previous release wrote is
    // as it was.
    let after = [
        screen_json(board, "/api/v1/leaderboard").await,
        screen_json(board, "/api/v1/national").await,
    ];
    for (before, after) in figures.iter().zip(&after) {
        additions_are_defaults(before, after, "");
    }
    assert_eq!(
        [
            keys_of(&figures[0], &after[0]),
            keys_of(&figures[1], &after[1]),
        ],
        figures,
        "every figure on the big screen is what it was before the upgrade"
    );
    // Every row stays stored once; new rows go on from the kept head.
    for (file, key) in files.iter().zip(&keys) {
        let (accepted, duplicates) = push_as(key, file);
        assert_eq!(accepted, 0, "{}", file.display());
        assert!(duplicates > 0, "{}", file.display());
    }
    let (csv, more_net) = orders("R", 10);
    let more = dir.path().join("more.csv");
    std::fs::write(&more, csv).expect("write");
    assert_eq!(
        push_as(&keys[0], &more),
        (11, 0),
        "pushed after the upgrade"
    );
    screen_net(board, "toko-satu", satu_net + more_net).await;
    assert_eq!(
        verify_in_stack(&stack),
        rows + 11,
        "verify after new pushes"
    );

    // The previous release refuses the migrated database: a release with the newer-schema
    // check names both versions; an older one, sqlx names the migration it lacks.
    stack.files = vec![old_file.clone()];
    let refused = stack.run(&["run", "--rm", "--no-deps", "migrate"]);
    let said = both(&refused);
    assert!(
        !refused.status.success(),
        "the previous release ran on the upgraded schema: {said}"
    );
    assert!(
        said.contains(&format!(
            "postgres migration {migration} is applied, this build knows migrations up to {}",
            migration - 1
        )) || said.contains(&format!(
            "migration {migration} was previously applied but is missing"
        )),
        "{said}"
    );

    // The current release refuses a database a newer release migrated, naming both versions.
    stack.files = vec![new_file.clone()];
    let newer = migration + 1;
    stack.ok(&[
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "saleboard",
        "-d",
        "saleboard",
        "-c",
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({newer}, 'from a newer release', TRUE, '\\x00'::bytea, 1)"
        ),
    ]);
    let refused = stack.run(&["run", "--rm", "--no-deps", "migrate"]);
    let said = both(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "postgres migration {newer} is applied, this build knows migrations up to {migration}"
        )),
        "{said}"
    );

    stack.down();
    let left = stack.leftovers();
    assert!(left.is_empty(), "down -v leaves nothing: {left:?}");
    say!(
        "compose test: the upgrade test took {:.0?}",
        started.elapsed()
    );
}
