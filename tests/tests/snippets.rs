//! The README's client snippets ("From your own code"), run as written against the suite where
//! their runtime is installed: Python with grpcio and grpcio-tools (`.ci/run` installs them),
//! Node with @grpc/grpc-js and @grpc/proto-loader (not installable here: no npm registry, so
//! that one says it is skipped). Each must push its sale and print it ACCEPTED.

use std::path::Path;
use std::process::Command;

use saleboard_tests::{Backend, TestApp};

/// The first fenced block of `language` after `heading`.
fn block(readme: &str, heading: &str, language: &str) -> String {
    let from = readme.find(heading).expect("the heading is in the README");
    let rest = &readme[from..];
    let fence = format!("```{language}\n");
    let open = rest.find(&fence).expect("the block is there") + fence.len();
    let close = rest[open..].find("```").expect("the block closes");
    rest[open..open + close].to_owned()
}

/// Whether `program` runs with `args` (a runtime and its packages are there).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

async fn suite() -> (TestApp, String) {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    app.set_event().await;
    let (_, key) = app.site_with_key("toko-kode").await;
    (app, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_snippet_pushes_a_sale() {
    if !runs("python3", &["-c", "import grpc, grpc_tools"]) {
        let why = "python3 with grpcio and grpcio-tools is not installed (pip install grpcio grpcio-tools)";
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but the Python snippet cannot run: {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let readme = include_str!("../../README.md");
    let code = block(readme, "## From your own code", "python");
    let (app, key) = suite().await;
    let dir = tempfile::tempdir().expect("tmp");
    // Generated as the README says, into a directory of its own.
    let out = dir.path().to_str().expect("utf-8");
    let generated = Command::new("python3")
        .args([
            "-m",
            "grpc_tools.protoc",
            "-I",
            "proto",
            &format!("--python_out={out}"),
            &format!("--grpc_python_out={out}"),
            "proto/saleboard/v1/ingest.proto",
        ])
        .current_dir(repository())
        .output()
        .expect("protoc runs");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    std::fs::write(dir.path().join("client.py"), code).expect("write the snippet");
    let ran = Command::new("python3")
        .arg("client.py")
        .current_dir(dir.path())
        .env("SALEBOARD_API_KEY", &key)
        .env("SALEBOARD_INGEST", app.ingest_addr.to_string())
        .output()
        .expect("python3 runs");
    let printed = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && printed.contains("PY-1 OUTCOME_ACCEPTED"),
        "{printed}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_snippet_pushes_a_sale() {
    let readme = include_str!("../../README.md");
    let code = block(readme, "## From your own code", "javascript");
    assert!(
        code.contains("keepCase: true"),
        "the Node snippet keeps the proto's field names"
    );
    let packages = "require('@grpc/grpc-js'); require('@grpc/proto-loader')";
    if !runs("node", &["-e", packages]) {
        // No npm registry here, in CI either: the packages cannot be installed.
        eprintln!(
            "SKIPPED: node with @grpc/grpc-js and @grpc/proto-loader is not installed (npm install @grpc/grpc-js @grpc/proto-loader)"
        );
        return;
    }
    let (app, key) = suite().await;
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("client.js");
    std::fs::write(&script, code).expect("write the snippet");
    let ran = Command::new("node")
        .arg(&script)
        .current_dir(repository())
        .env("SALEBOARD_API_KEY", &key)
        .env("SALEBOARD_INGEST", app.ingest_addr.to_string())
        .output()
        .expect("node runs");
    let printed = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && printed.contains("JS-1 OUTCOME_ACCEPTED"),
        "{printed}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    app.stop().await;
}

/// Runs `program args...` with the site's key and the ingest port's HTTP address, as the
/// README's "JSON over HTTP" snippets expect; returns what it printed.
fn run_http_snippet(program: &str, args: &[&str], app: &TestApp, key: &str) -> String {
    let ran = Command::new(program)
        .args(args)
        .env("SALEBOARD_API_KEY", key)
        .env(
            "SALEBOARD_INGEST_HTTP",
            format!("http://{}", app.ingest_addr),
        )
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let printed = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(
        ran.status.success(),
        "{program}: {printed}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    printed
}

/// The README's `curl` line pushes a sale as JSON, ACCEPTED, its amount converted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_curl_snippet_pushes_a_sale_as_json() {
    if !runs("curl", &["--version"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but curl is not installed"
        );
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let readme = include_str!("../../README.md");
    let code = block(readme, "## JSON over HTTP", "sh");
    let (app, key) = suite().await;
    let printed = run_http_snippet("sh", &["-c", &code], &app, &key);
    assert!(
        printed.contains(r#""transaction_id":"CURL-1","outcome":"OUTCOME_ACCEPTED""#),
        "{printed}"
    );
    let rows = app.store.read_ledger(0, 10).await.expect("ledger");
    assert_eq!(rows[0].tx.amount_minor, 15_000_000, "Rp 150.000,00");
    app.stop().await;
}

/// The README's Python (standard library) snippet pushes a sale as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_http_snippet_pushes_a_sale_as_json() {
    if !runs("python3", &["--version"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but python3 is not installed"
        );
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let readme = include_str!("../../README.md");
    let code = block(readme, "## JSON over HTTP", "python");
    let (app, key) = suite().await;
    let printed = run_http_snippet("python3", &["-c", &code], &app, &key);
    assert!(printed.contains("PY-HTTP-1 OUTCOME_ACCEPTED"), "{printed}");
    app.stop().await;
}

/// The README's Node snippet (`fetch`, no package) pushes a sale as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_fetch_snippet_pushes_a_sale_as_json() {
    if !runs(
        "node",
        &["-e", "if (typeof fetch !== 'function') process.exit(1)"],
    ) {
        eprintln!("SKIPPED: node 18 or later (with fetch) is not installed");
        return;
    }
    let readme = include_str!("../../README.md");
    let code = block(readme, "## JSON over HTTP", "javascript");
    let (app, key) = suite().await;
    let printed = run_http_snippet("node", &["-e", &code], &app, &key);
    assert!(printed.contains("JS-HTTP-1 OUTCOME_ACCEPTED"), "{printed}");
    app.stop().await;
}
