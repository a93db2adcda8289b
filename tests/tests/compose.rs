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
    let Some(rest) = value.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
        assert!(
            !value.contains("${"),
            "only whole-value interpolation is expected: {value}"
        );
        return value.to_owned();
    };
    let (var, default) = match rest.split_once(":?") {
        Some((var, _)) => (var, None),
        None => rest
            .split_once(":-")
            .map_or((rest, None), |(var, d)| (var, Some(d))),
    };
    OPERATOR_ENV
        .iter()
        .find(|(k, _)| *k == var)
        .map(|(_, v)| (*v).to_owned())
        .or_else(|| default.map(str::to_owned))
        .unwrap_or_else(|| panic!("{var} is required by the compose file"))
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
    let text = compose_text();
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
    // on its loopback only.
    let board = service(&c, "leaderboard");
    let published = strings(&board["ports"]);
    assert!(
        published.iter().any(|p| p == "127.0.0.1:50054:50054"),
        "AdminService published on the host's loopback: {published:?}"
    );
    assert!(
        published.iter().all(|p| p.starts_with("127.0.0.1:")),
        "{published:?}"
    );
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
