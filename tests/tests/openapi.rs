//! The OpenAPI 3.1 documents of both HTTP ports (issue 31), served at `/api/v1/openapi.json`:
//! every route they state answers a status they state, its JSON body has exactly the fields of
//! the message the document names; and schemathesis (PyPI; `.ci/run` installs it) fuzzes both
//! ports from them without a server error or an answer off its schema.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Command;

use saleboard_tests::http::{ask_stream, request};
use saleboard_tests::{Backend, TestApp};
use serde_json::Value;

async fn suite() -> (TestApp, String) {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    app.set_event().await;
    let (_, key) = app.site_with_key("toko-api").await;
    // Something to rank and break down.
    app.ingest(&key)
        .await
        .submit_transactions(saleboard_proto::v1::SubmitTransactionsRequest {
            transactions: vec![saleboard_tests::data::sale("API-1", "IDR", 5_000)],
        })
        .await
        .expect("push");
    app.settle().await;
    (app, key)
}

async fn document(addr: SocketAddr) -> Value {
    let (status, headers, body) = request(addr, "GET", "/api/v1/openapi.json", "", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let doc: Value = serde_json::from_str(&body).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    doc
}

/// Every operation of `doc` called on `addr` (path parameters: the first value their schema
/// allows, or its first example; bearer routes with `key`): a documented status, and for a JSON answer naming a
/// message, exactly that message's fields.
async fn every_route_answers_as_stated(addr: SocketAddr, doc: &Value, key: &str) -> usize {
    let schemas = &doc["components"]["schemas"];
    let mut called = 0;
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (method, op) in methods.as_object().expect("methods") {
            let mut concrete = path.clone();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let value = p["schema"]["enum"][0]
                        .as_str()
                        .or_else(|| p["schema"]["examples"][0].as_str())
                        .expect("an enum or an example")
                        .to_owned();
                    concrete = concrete
                        .replace(&format!("{{{}}}", p["name"].as_str().unwrap_or("")), &value);
                }
            }
            let auth = if op["security"].is_array() {
                format!("Authorization: Bearer {key}\r\n")
            } else {
                String::new()
            };
            let stated: BTreeSet<u16> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(|k| k.parse().expect("a status"))
                .collect();
            if op["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
            {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (status, _, _) = ask_stream(stream, &concrete, "").await;
                assert!(stated.contains(&status), "{method} {concrete}: {status}");
                called += 1;
                continue;
            }
            let (status, headers, body) = if method == "post" {
                request(
                    addr,
                    "POST",
                    &concrete,
                    &format!("{auth}Content-Type: application/json\r\n"),
                    br#"{"transactions": []}"#,
                )
                .await
            } else {
                request(addr, "GET", &concrete, &auth, b"").await
            };
            assert!(
                stated.contains(&status),
                "{method} {concrete}: {status} is not stated ({stated:?}): {body}"
            );
            let content = &op["responses"][status.to_string()]["content"];
            if let Some(reference) = content["application/json"]["schema"]["$ref"].as_str() {
                let name = reference.trim_start_matches("#/components/schemas/");
                let fields: BTreeSet<String> = schemas[name]["properties"]
                    .as_object()
                    .expect("properties")
                    .keys()
                    .cloned()
                    .collect();
                let answer: HashMap<String, Value> =
                    serde_json::from_str(&body).expect("a JSON object");
                let got: BTreeSet<String> = answer.keys().cloned().collect();
                if name == "Error" {
                    assert!(got.is_subset(&fields) && got.contains("code"), "{got:?}");
                } else {
                    assert_eq!(got, fields, "{method} {concrete}: {name}");
                }
                assert_eq!(
                    headers.get("content-type").map(String::as_str),
                    Some("application/json")
                );
            }
            called += 1;
        }
    }
    called
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documents_state_every_route() {
    let (app, key) = suite().await;
    let ingest = document(app.ingest_addr).await;
    let board = document(app.leaderboard_addr).await;
    let paths = |doc: &Value| -> BTreeSet<String> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        paths(&ingest),
        [
            "/api/v1/openapi.json",
            "/api/v1/transactions",
            "/api/v1/whoami"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );
    for path in [
        "/",
        "/screen.css",
        "/screen.js",
        "/events/leaderboard",
        "/api/v1/leaderboard",
        "/api/v1/national",
        "/api/v1/events",
        "/api/v1/breakdown/{dimension}",
        "/api/v1/openapi.json",
        "/report/{event}",
    ] {
        assert!(paths(&board).contains(path), "{path}");
    }
    // The transaction's `amount` (major units) is stated beside the message's fields.
    assert!(
        ingest["components"]["schemas"]["saleboard.v1.Transaction"]["properties"]["amount"]
            .is_object()
    );
    assert_eq!(
        every_route_answers_as_stated(app.ingest_addr, &ingest, &key).await,
        3
    );
    assert_eq!(
        every_route_answers_as_stated(app.leaderboard_addr, &board, &key).await,
        10
    );
    // A path the document does not state is not served.
    let (status, _, _) = request(app.ingest_addr, "GET", "/api/v1/nothing", "", b"").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// schemathesis, from each port's document: no 5xx, every answer of a stated status, content
/// type and schema. Bounded (examples per operation) to keep CI within its time. The SSE
/// stream, which never ends, is left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_nothing_wrong_on_either_port() {
    let installed = Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let why = "schemathesis is not installed (pip install schemathesis)";
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but the API cannot be fuzzed: {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let (app, key) = suite().await;
    for (addr, auth) in [(app.ingest_addr, true), (app.leaderboard_addr, false)] {
        let addr = addr.to_string();
        let header = format!("Authorization: Bearer {key}");
        let mut args = vec![
            "run",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--exclude-path",
            "/events/leaderboard",
        ];
        if auth {
            args.extend(["-H", header.as_str()]);
        }
        let location = format!("http://{addr}/api/v1/openapi.json");
        args.push(&location);
        // Its caches (.schemathesis, .hypothesis) go to a directory of the test's own.
        let scratch = tempfile::tempdir().expect("tmp");
        let out = tokio::task::spawn_blocking({
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            let dir = scratch.path().to_owned();
            move || Command::new("st").args(&args).current_dir(dir).output()
        })
        .await
        .expect("joined")
        .expect("st runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "schemathesis against {addr}:\n{said}");
        assert!(said.contains("passed"), "{said}");
    }
    app.stop().await;
}
