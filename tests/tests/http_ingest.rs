//! JSON over HTTP on the ingest port (issue 31), on both databases, as a shop's backend or
//! `curl` sees it: the same transactions sent by gRPC and by `POST /api/v1/transactions` give
//! identical ledger rows and totals; a resend is DUPLICATE; `amount` in major units is
//! converted exactly; `GET /api/v1/whoami`; and the refusals' statuses: 401, 409 without an
//! event, 400 naming the byte offset or the field, 405, 404, 413 before the body is read, 415,
//! 429 with `Retry-After` (403 and 503 map from their gRPC codes by the same function, tested
//! in the crate).

use saleboard_proto::json;
use saleboard_proto::v1::{
    GetSiteTotalsRequest, Outcome, SubmitTransactionsRequest, SubmitTransactionsResponse,
    Transaction, WhoAmIResponse,
};
use saleboard_tests::data::{refund, sale};
use saleboard_tests::http::request;
use saleboard_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    json_over_http_counts_what_grpc_counts,
    every_refusal_has_its_http_status,
);

/// `POST /api/v1/transactions` with `secret` and `body` (JSON): (status, headers, body).
async fn post(
    app: &TestApp,
    secret: &str,
    body: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    request(
        app.ingest_addr,
        "POST",
        "/api/v1/transactions",
        &format!("Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"),
        body.as_bytes(),
    )
    .await
}

/// The proto3 JSON of a request of `transactions`.
fn body_of(transactions: &[Transaction]) -> String {
    json::to_string(&SubmitTransactionsRequest {
        transactions: transactions.to_vec(),
    })
    .expect("JSON")
}

fn outcomes(answer: &SubmitTransactionsResponse) -> Vec<Outcome> {
    answer
        .results
        .iter()
        .map(|r| Outcome::try_from(r.outcome).expect("a known outcome"))
        .collect()
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn json_over_http_counts_what_grpc_counts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, by_grpc) = app.site_with_key("grpc-shop").await;
    let (_, by_json) = app.site_with_key("json-shop").await;
    let transactions = vec![
        sale("o-1", "IDR", 150_000),
        sale("o-2", "USD", 1_999),
        Transaction {
            brand: "nestle".into(),
            category: "food".into(),
            ..sale("o-3", "IDR", 42_000)
        },
        refund("o-1-r", "o-1", "IDR", 50_000),
    ];

    // Act: the same transactions by gRPC and by JSON over HTTP.
    let grpc = app
        .ingest(&by_grpc)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: transactions.clone(),
        })
        .await
        .expect("gRPC")
        .into_inner();
    let (status, headers, text) = post(&app, &by_json, &body_of(&transactions)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(!headers.contains_key("grpc-status"), "{headers:?}");
    let answer: SubmitTransactionsResponse = json::from_str(&text).expect("the response's JSON");
    assert_eq!(outcomes(&grpc), [Outcome::Accepted; 4]);
    assert_eq!(outcomes(&answer), outcomes(&grpc));
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.position > 0 && !r.event_id.is_empty())
    );

    // The same ledger rows (but the site, its key, the time received) and the same totals.
    app.settle().await;
    let rows = app.store.read_ledger(0, 100).await.expect("ledger");
    let of = |site: &str| -> Vec<_> {
        rows.iter()
            .filter(|r| r.site.as_str() == site)
            .map(|r| (r.tx.clone(), r.event_id.clone()))
            .collect()
    };
    assert_eq!(of("grpc-shop").len(), 4);
    assert_eq!(of("grpc-shop"), of("json-shop"));
    let mut board = app.leaderboard().await;
    let mut totals = Vec::new();
    for site in ["grpc-shop", "json-shop"] {
        let t = board
            .get_site_totals(GetSiteTotalsRequest {
                site_id: site.into(),
                ..Default::default()
            })
            .await
            .expect("GetSiteTotals")
            .into_inner();
        totals.push(t.totals);
    }
    assert_eq!(totals[0], totals[1]);

    // A resend is a duplicate, counted once.
    let (status, _, text) = post(&app, &by_json, &body_of(&transactions)).await;
    assert_eq!(status, 200, "{text}");
    let again: SubmitTransactionsResponse = json::from_str(&text).expect("JSON");
    assert_eq!(outcomes(&again), [Outcome::Duplicate; 4]);

    // `amount` in major units, as a string or a number, converted by the currency's decimals;
    // amount_minor as a number (proto3 JSON takes both spellings of an int64).
    let occurred = json::to_value(&sale("x", "IDR", 1)).expect("JSON")["occurred_at"].clone();
    let body = serde_json::json!({"transactions": [
        {"transaction_id": "m-1", "kind": "TRANSACTION_KIND_SALE", "currency": "USD",
         "amount": "15.99", "occurred_at": occurred},
        {"transactionId": "m-2", "kind": "TRANSACTION_KIND_SALE", "currency": "IDR",
         "amount": 2500, "occurredAt": occurred},
        {"transaction_id": "m-3", "kind": "TRANSACTION_KIND_SALE", "currency": "JPY",
         "amount_minor": 700, "occurred_at": occurred},
    ]});
    let (status, _, text) = post(&app, &by_json, &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let converted: SubmitTransactionsResponse = json::from_str(&text).expect("JSON");
    assert_eq!(outcomes(&converted), [Outcome::Accepted; 3], "{text}");
    let rows = app.store.read_ledger(8, 100).await.expect("ledger");
    let amounts: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.tx.id.as_str(), r.tx.amount_minor))
        .collect();
    assert_eq!(amounts, [("m-1", 1_599), ("m-2", 250_000), ("m-3", 700)]);

    // Per-transaction rejections are a 200 with their reasons, as over gRPC.
    let bad = body_of(&[sale("bad id", "IDR", 5), sale("ok-1", "XXX", 5)]);
    let (status, _, text) = post(&app, &by_json, &bad).await;
    assert_eq!(status, 200, "{text}");
    let rejected: SubmitTransactionsResponse = json::from_str(&text).expect("JSON");
    let reasons: Vec<&str> = rejected.results.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["INVALID_TRANSACTION_ID", "INVALID_CURRENCY"]);

    // whoami.
    let (status, _, text) = request(
        app.ingest_addr,
        "GET",
        "/api/v1/whoami",
        &format!("Authorization: Bearer {by_json}\r\n"),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let who: WhoAmIResponse = json::from_str(&text).expect("JSON");
    assert_eq!(who.site_id, "json-shop");
    assert_eq!(who.event.expect("the event").event_id, "harbolnas-test");
}

async fn every_refusal_has_its_http_status(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.site_rate_limit = 1;
        c.site_rate_burst = 20;
        c.max_batch = 10;
    })
    .await
    else {
        return;
    };
    let (_, secret) = app.site_with_key("toko").await;
    let one = body_of(&[sale("s-1", "IDR", 5)]);
    let check =
        |(status, headers, text): (u16, std::collections::HashMap<String, String>, String),
         want: u16,
         code: &str|
         -> Value {
            assert_eq!(status, want, "{text}");
            assert_eq!(
                headers.get("content-type").map(String::as_str),
                Some("application/json"),
                "{headers:?}"
            );
            let v = parsed(&text);
            assert_eq!(v["code"], code, "{v}");
            assert!(!headers.contains_key("grpc-status"), "{headers:?}");
            v
        };

    // No event yet: 409.
    check(post(&app, &secret, &one).await, 409, "FAILED_PRECONDITION");
    app.set_event().await;

    // 401: no credential, an unknown key.
    let none = request(
        app.ingest_addr,
        "POST",
        "/api/v1/transactions",
        "Content-Type: application/json\r\n",
        one.as_bytes(),
    )
    .await;
    let v = check(none, 401, "UNAUTHENTICATED");
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("Bearer")),
        "{v}"
    );
    check(
        post(&app, "sbk_not_a_key", &one).await,
        401,
        "UNAUTHENTICATED",
    );

    // 415: another content type.
    let plain = request(
        app.ingest_addr,
        "POST",
        "/api/v1/transactions",
        &format!("Authorization: Bearer {secret}\r\nContent-Type: text/plain\r\n"),
        one.as_bytes(),
    )
    .await;
    check(plain, 415, "INVALID_ARGUMENT");

    // 400: not JSON (the byte offset), not the message's JSON (the field).
    let v = check(
        post(&app, &secret, "{\"transactions\": [}").await,
        400,
        "INVALID_ARGUMENT",
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("byte offset 18")),
        "{v}"
    );
    let v = check(
        post(
            &app,
            &secret,
            r#"{"transactions": [{"transaction_id": "a", "amount_minor": "abc"}]}"#,
        )
        .await,
        400,
        "INVALID_ARGUMENT",
    );
    assert_eq!(v["field"], "transactions[0].amount_minor", "{v}");
    let v = check(
        post(&app, &secret, r#"{"transactions": [], "extra": 1}"#).await,
        400,
        "INVALID_ARGUMENT",
    );
    assert_eq!(v["field"], "extra", "{v}");
    let v = check(
        post(
            &app,
            &secret,
            r#"{"transactions": [{"currency": "IDR", "amount": "1", "amount_minor": "100"}]}"#,
        )
        .await,
        400,
        "INVALID_ARGUMENT",
    );
    assert_eq!(v["field"], "transactions[0].amount", "{v}");
    let v = check(
        post(
            &app,
            &secret,
            r#"{"transactions": [{"currency": "JPY", "amount": "1.5"}]}"#,
        )
        .await,
        400,
        "INVALID_ARGUMENT",
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("decimals")),
        "{v}"
    );
    // More than --max-batch: the handler's own check, naming the field.
    let eleven: Vec<Transaction> = (0..11).map(|i| sale(&format!("b-{i}"), "IDR", 5)).collect();
    let v = check(
        post(&app, &secret, &body_of(&eleven)).await,
        400,
        "INVALID_ARGUMENT",
    );
    assert_eq!(v["field"], "transactions", "{v}");

    // 413 from Content-Length alone, before a byte of the body is read; and while reading.
    let bound = saleboard_ingest::http::max_body_bytes(10);
    let declared = request(
        app.ingest_addr,
        "POST",
        "/api/v1/transactions",
        &format!(
            "Authorization: Bearer {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            bound + 1
        ),
        b"",
    )
    .await;
    check(declared, 413, "RESOURCE_EXHAUSTED");
    let padded = format!("{{\"transactions\": []{}}}", " ".repeat(bound));
    check(
        post(&app, &secret, &padded).await,
        413,
        "RESOURCE_EXHAUSTED",
    );

    // 405 and 404.
    let get = request(
        app.ingest_addr,
        "GET",
        "/api/v1/transactions",
        &format!("Authorization: Bearer {secret}\r\n"),
        b"",
    )
    .await;
    assert_eq!(get.0, 405, "{}", get.2);
    let missing = request(app.ingest_addr, "GET", "/nothing-here", "", b"").await;
    check(missing, 404, "NOT_FOUND");

    // 429 with Retry-After once the site's budget (1/s, burst 20, most of it spent above) is
    // spent; nothing of a refused request is stored.
    let head = app.store.ledger_head().await.expect("head");
    let mut refused = None;
    let mut answered = 0;
    for i in 0..40 {
        let (status, headers, text) = post(
            &app,
            &secret,
            &body_of(&[sale(&format!("r-{i}"), "IDR", 5)]),
        )
        .await;
        if status == 429 {
            refused = Some((status, headers, text));
            break;
        }
        assert_eq!(status, 200, "{text}");
        answered += 1;
    }
    let (status, headers, text) = refused.expect("the rate limit refuses within forty requests");
    assert_eq!(headers.get("retry-after").map(String::as_str), Some("1"));
    let v = check((status, headers, text), 429, "RESOURCE_EXHAUSTED");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("rate limit")),
        "{v}"
    );
    // Every answered request stored its sale; the refused one nothing.
    assert_eq!(
        app.store.ledger_head().await.expect("head") - head,
        answered
    );
}

/// 503 with `Retry-After` while the database cannot take writes (SQLite on a tmpfs that
/// fills), naming the fault; nothing of the refused request is stored; 200 again once the
/// space comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_a_503_and_passes() {
    use saleboard_tests::fault::{FaultApp, Load, Tmpfs, eventually, sites, sqlite_url};
    use std::time::Duration;
    let Some(fs) = Tmpfs::mount(4 * 1024) else {
        return;
    };
    let app = FaultApp::spawn(&sqlite_url(&fs.path().join("saleboard.db"))).await;
    let sites = sites(app.store.as_ref(), 3).await;
    let (_, secret) = sites[2].clone();
    let load = Load::start(app.ingest_addr, &sites[..2], 200);
    eventually(
        Duration::from_secs(60),
        "writes failing on a full disk",
        || async {
            app.store.write_fault().map(|w| w.fault) == Some(saleboard_storage::Fault::DiskFull)
        },
    )
    .await;
    // A commit may still find room now and then: the first refusal within twenty tries.
    let mut refused = None;
    for i in 0..20 {
        let body = body_of(&[sale(&format!("full-{i}"), "IDR", 5)]);
        let answer = request(
            app.ingest_addr,
            "POST",
            "/api/v1/transactions",
            &format!("Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"),
            body.as_bytes(),
        )
        .await;
        if answer.0 == 503 {
            refused = Some((format!("full-{i}"), answer));
            break;
        }
        assert_eq!(answer.0, 200, "{}", answer.2);
    }
    let (id, (_, headers, text)) = refused.expect("a 503 while the disk is full");
    assert_eq!(headers.get("retry-after").map(String::as_str), Some("1"));
    let v = parsed(&text);
    assert_eq!(v["code"], "UNAVAILABLE", "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk is full")),
        "{v}"
    );
    // The space comes back: the same request is taken.
    fs.resize(64 * 1024);
    let mut taken = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !taken {
        let (status, _, text) =
            post_to(app.ingest_addr, &secret, &body_of(&[sale(&id, "IDR", 5)])).await;
        taken = status == 200;
        assert!(
            taken || tokio::time::Instant::now() < deadline,
            "never taken again: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(load.finish().await);
    app.stop().await;
}

async fn post_to(
    addr: std::net::SocketAddr,
    secret: &str,
    body: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    request(
        addr,
        "POST",
        "/api/v1/transactions",
        &format!("Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"),
        body.as_bytes(),
    )
    .await
}
