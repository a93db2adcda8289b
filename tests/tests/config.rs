//! Configuration of the service binaries: `--help` documents every flag with its environment
//! variable; an invalid setting stops the process at start with a message naming the setting
//! (flag or variable); the organizer token is never echoed.

use std::process::{Command, Output};

use saleboard_tests::proc::bin_dir;

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin_dir().join(bin));
    command.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SALEBOARD_") || k.starts_with("OTEL_") {
            command.env_remove(k);
        }
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let common = [
        "--database-url",
        "SALEBOARD_DATABASE_URL",
        "--db-pool-size",
        "SALEBOARD_DB_POOL_SIZE",
        "--log-format",
        "SALEBOARD_LOG_FORMAT",
        "--otlp-endpoint",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "--shutdown-deadline-ms",
        "SALEBOARD_SHUTDOWN_DEADLINE_MS",
    ];
    for (bin, own) in [
        (
            "saleboard-ingest",
            &[
                "--ingest-listen",
                "SALEBOARD_INGEST_LISTEN",
                "--max-batch",
                "SALEBOARD_MAX_MESSAGE_BYTES",
                "SALEBOARD_CONCURRENCY_LIMIT",
                "SALEBOARD_SITE_RATE_LIMIT",
            ][..],
        ),
        (
            "saleboard-leaderboard",
            &[
                "--leaderboard-listen",
                "SALEBOARD_LEADERBOARD_LISTEN",
                "--organizer-token",
                "SALEBOARD_ORGANIZER_TOKEN",
                "--admin-listen",
                "SALEBOARD_ADMIN_LISTEN",
                "--admin-on-public-port",
                "SALEBOARD_ADMIN_ON_PUBLIC_PORT",
                "--http-idle-timeout-ms",
                "SALEBOARD_HTTP_IDLE_TIMEOUT_MS",
                "--watchers-per-peer-allow",
                "SALEBOARD_WATCHERS_PER_PEER_ALLOW",
                "--max-connections-per-address",
                "SALEBOARD_MAX_CONNECTIONS_PER_ADDRESS",
            ][..],
        ),
        (
            "saleboard-aggregator",
            &["--aggregator-listen", "SALEBOARD_AGGREGATOR_LISTEN"][..],
        ),
    ] {
        let out = run(bin, &["--help"], &[]);
        assert!(out.status.success(), "{bin} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        for word in common.iter().chain(own) {
            assert!(help.contains(word), "{bin} --help lacks {word}:\n{help}");
        }
    }
}

/// A binary, its arguments, its environment, and the setting the error must name.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn invalid_settings_fail_at_start_naming_the_setting() {
    let cases: &[Case] = &[
        (
            "saleboard-ingest",
            &["--database-url", "mysql://x/y"],
            &[],
            "--database-url",
        ),
        (
            "saleboard-ingest",
            &[],
            &[("SALEBOARD_MAX_BATCH", "0")],
            "--max-batch",
        ),
        (
            "saleboard-ingest",
            &["--ingest-listen", "localhost"],
            &[],
            "--ingest-listen",
        ),
        (
            "saleboard-ingest",
            &["--max-message-bytes", "10"],
            &[],
            "--max-message-bytes",
        ),
        (
            "saleboard-ingest",
            &["--log-format", "xml"],
            &[],
            "--log-format",
        ),
        (
            "saleboard-aggregator",
            &[],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            "saleboard-aggregator",
            &["--otlp-endpoint", "http://127.0.0.1:4317"],
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            "saleboard-aggregator",
            &["--shutdown-deadline-ms", "ten"],
            &[],
            "--shutdown-deadline-ms",
        ),
        ("saleboard-leaderboard", &[], &[], "--organizer-token"),
        (
            "saleboard-leaderboard",
            &[],
            &[("SALEBOARD_ORGANIZER_TOKEN", "short secret")],
            "--organizer-token",
        ),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("never.db").display());
    for (bin, args, env, setting) in cases {
        let mut env = env.to_vec();
        if !args.contains(&"--database-url") {
            env.push(("SALEBOARD_DATABASE_URL", db.as_str()));
        }
        let out = run(bin, args, &env);
        let text = stderr(&out);
        assert!(
            !out.status.success(),
            "{bin} {args:?} {env:?} started:\n{text}"
        );
        assert!(
            text.contains(setting),
            "{bin} {args:?} {env:?}: the message names {setting}:\n{text}"
        );
        assert!(
            !text.contains("short secret"),
            "the token is never echoed:\n{text}"
        );
    }
    assert!(
        !dir.path().join("never.db").exists(),
        "nothing was opened on a bad configuration"
    );
}

/// An address in use is reported once, naming the flag and variable that set it.
#[test]
fn an_address_in_use_is_reported_once_with_its_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("t.db").display());
    for (bin, flag, extra) in [
        ("saleboard-ingest", "--ingest-listen", vec![]),
        ("saleboard-aggregator", "--aggregator-listen", vec![]),
        (
            "saleboard-leaderboard",
            "--leaderboard-listen",
            vec!["--organizer-token", "a-test-organizer-token"],
        ),
    ] {
        let mut args = vec![flag, addr.as_str(), "--database-url", db.as_str()];
        args.extend(extra);
        let out = run(bin, &args, &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{bin}: {err}");
        assert_eq!(
            err.matches("cannot listen on").count(),
            1,
            "{bin} reports it once: {err}"
        );
        assert!(err.contains(flag), "{bin} names {flag}: {err}");
    }
}
