//! IngestService and AdminService over gRPC, black-box, on PostgreSQL and SQLite.

use std::time::Duration;

use saleboard_proto::Timestamp;
use saleboard_proto::v1::{
    CreateApiKeyRequest, CreateSiteRequest, ExchangeRate, GetEventRequest, GetLeaderboardRequest,
    GetNationalTotalsRequest, ListSitesRequest, Outcome, RevokeApiKeyRequest,
    SetExchangeRatesRequest, SetSiteEnabledRequest, SubmitTransactionsRequest,
    SubmitTransactionsResponse, Transaction, WhoAmIRequest,
};
use saleboard_tests::app::{admin_client, ingest_client};
use saleboard_tests::data::{event, now_secs, refund, sale};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;
use tonic_types::StatusExt as _;

fn req(transactions: Vec<Transaction>) -> SubmitTransactionsRequest {
    SubmitTransactionsRequest { transactions }
}

/// (outcome, reason) of each result, in order.
fn outcomes(resp: &SubmitTransactionsResponse) -> Vec<(Outcome, String)> {
    resp.results
        .iter()
        .map(|r| (r.outcome(), r.reason.clone()))
        .collect()
}

fn accepted() -> (Outcome, String) {
    (Outcome::Accepted, String::new())
}

fn duplicate() -> (Outcome, String) {
    (Outcome::Duplicate, String::new())
}

fn rejected(reason: &str) -> (Outcome, String) {
    (Outcome::Rejected, reason.to_owned())
}

/// A running suite with the test event, site "alpha" and its key secret.
async fn ready(backend: Backend) -> Option<(TestApp, String)> {
    let app = TestApp::spawn(backend).await?;
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    Some((app, secret))
}

async fn submit(app: &TestApp, secret: &str, txs: Vec<Transaction>) -> SubmitTransactionsResponse {
    app.ingest(secret)
        .await
        .submit_transactions(req(txs))
        .await
        .expect("SubmitTransactions")
        .into_inner()
}

async fn accepted_duplicate_and_conflict(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let r = submit(&app, &secret, vec![sale("T-1", "IDR", 150_000)]).await;
    assert_eq!(outcomes(&r), [accepted()]);
    assert_eq!(
        (r.results[0].transaction_id.as_str(), r.results[0].position),
        ("T-1", 1)
    );

    let r = submit(&app, &secret, vec![sale("T-1", "IDR", 150_000)]).await;
    assert_eq!(outcomes(&r), [duplicate()]);
    assert_eq!(r.results[0].position, 1);

    let r = submit(&app, &secret, vec![sale("T-1", "IDR", 150_001)]).await;
    assert_eq!(outcomes(&r), [rejected("ID_CONFLICT")]);
    assert!(
        r.results[0].message.contains("transaction_id"),
        "{}",
        r.results[0].message
    );

    let rows = app.store.read_ledger(0, 10).await.expect("ledger");
    assert_eq!(rows.len(), 1, "counted once");
    assert_eq!(rows[0].tx.amount_minor, 150_000, "the first version stands");
    assert_eq!(
        rows[0].site.as_str(),
        "alpha",
        "the site comes from the key"
    );
}

async fn duplicates_inside_one_request(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let r = submit(
        &app,
        &secret,
        vec![
            sale("A", "IDR", 10),
            sale("A", "IDR", 10),
            sale("A", "IDR", 11),
            sale("B", "IDR", 5),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&r),
        [accepted(), duplicate(), rejected("ID_CONFLICT"), accepted()]
    );
    assert_eq!(app.store.ledger_head().await.expect("head"), 2);
}

async fn two_sites_may_share_an_id(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let (_, other) = app.site_with_key("beta").await;
    assert_eq!(
        outcomes(&submit(&app, &secret, vec![sale("X", "IDR", 1)]).await),
        [accepted()]
    );
    assert_eq!(
        outcomes(&submit(&app, &other, vec![sale("X", "IDR", 2)]).await),
        [accepted()]
    );
    let sites: Vec<_> = app
        .store
        .read_ledger(0, 10)
        .await
        .expect("ledger")
        .into_iter()
        .map(|r| r.site.to_string())
        .collect();
    assert_eq!(sites, ["alpha", "beta"]);
}

async fn every_rejection_reason(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let now = now_secs();
    let at = |seconds: i64, nanos: i32| Some(Timestamp { seconds, nanos });
    let cases: Vec<(Transaction, &str)> = vec![
        (sale("", "IDR", 1), "INVALID_TRANSACTION_ID"),
        (sale(&"x".repeat(65), "IDR", 1), "INVALID_TRANSACTION_ID"),
        (sale("has space", "IDR", 1), "INVALID_TRANSACTION_ID"),
        (
            Transaction {
                store_id: "a/b".into(),
                ..sale("c1", "IDR", 1)
            },
            "INVALID_STORE_ID",
        ),
        (
            Transaction {
                kind: 0,
                ..sale("c2", "IDR", 1)
            },
            "INVALID_KIND",
        ),
        (
            Transaction {
                kind: 9,
                ..sale("c3", "IDR", 1)
            },
            "INVALID_KIND",
        ),
        (sale("c4", "ABC", 1), "INVALID_CURRENCY"),
        (sale("c5", "usd", 1), "INVALID_CURRENCY"),
        (sale("c6", "XAU", 1), "INVALID_CURRENCY"),
        (sale("c7", "IDR", 0), "AMOUNT_NOT_POSITIVE"),
        (sale("c8", "IDR", -100), "AMOUNT_NOT_POSITIVE"),
        (sale("c9", "IDR", 1_000_000_000_000_001), "AMOUNT_TOO_LARGE"),
        (
            Transaction {
                occurred_at: None,
                ..sale("c10", "IDR", 1)
            },
            "MISSING_OCCURRED_AT",
        ),
        (
            Transaction {
                occurred_at: at(now, -1),
                ..sale("c11", "IDR", 1)
            },
            "INVALID_OCCURRED_AT",
        ),
        (
            Transaction {
                occurred_at: at(now - 2 * 86_400, 0),
                ..sale("c12", "IDR", 1)
            },
            "OUTSIDE_EVENT_WINDOW",
        ),
        (
            Transaction {
                occurred_at: at(now + 301, 0),
                ..sale("c13", "IDR", 1)
            },
            "OCCURRED_IN_FUTURE",
        ),
        (
            Transaction {
                refund_of: "c0".into(),
                ..sale("c14", "IDR", 1)
            },
            "SALE_WITH_REFUND_OF",
        ),
        (refund("c15", "", "IDR", 1), "MISSING_REFUND_OF"),
        (refund("c16", "bad id", "IDR", 1), "INVALID_REFUND_OF"),
        (refund("c17", "no-such-sale", "IDR", 1), "UNKNOWN_SALE"),
    ];
    let (txs, want): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let r = submit(&app, &secret, txs).await;
    let got: Vec<String> = r.results.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(got, want);
    for result in &r.results {
        assert_eq!(result.outcome(), Outcome::Rejected);
        assert!(
            !result.message.is_empty(),
            "{} has a message",
            result.reason
        );
    }
    let outside = r
        .results
        .iter()
        .find(|r| r.reason == "OUTSIDE_EVENT_WINDOW")
        .expect("an outside-window result");
    assert!(
        outside.message.contains("from ") && outside.message.contains("Z to "),
        "the message names the window: {}",
        outside.message
    );
    assert_eq!(
        app.store.ledger_head().await.expect("head"),
        0,
        "nothing stored"
    );
}

async fn refunds(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let (_, other_site) = app.site_with_key("beta").await;
    let r = submit(
        &app,
        &secret,
        vec![sale("S1", "IDR", 100_000), sale("S2", "USD", 2_500)],
    )
    .await;
    assert_eq!(outcomes(&r), [accepted(), accepted()]);

    let r = submit(
        &app,
        &secret,
        vec![
            refund("R1", "S1", "IDR", 30_000), // partial
            refund("R2", "S1", "IDR", 70_001), // over what is left
            refund("R3", "S1", "IDR", 70_000), // exactly the rest
            refund("R4", "S1", "IDR", 1),      // nothing left
            refund("R5", "S2", "IDR", 100),    // other currency
            refund("R6", "S9", "IDR", 1),      // unknown sale
            refund("R7", "R1", "IDR", 1),      // a refund is not a sale
            sale("S3", "JPY", 500),
            refund("R8", "S3", "JPY", 200), // sale earlier in the same request
            refund("R1", "S1", "IDR", 30_000), // resent refund: duplicate, not over-refund
        ],
    )
    .await;
    assert_eq!(
        outcomes(&r),
        [
            accepted(),
            rejected("REFUND_EXCEEDS_SALE"),
            accepted(),
            rejected("REFUND_EXCEEDS_SALE"),
            rejected("REFUND_CURRENCY_MISMATCH"),
            rejected("UNKNOWN_SALE"),
            rejected("REFUND_OF_NON_SALE"),
            accepted(),
            accepted(),
            duplicate(),
        ]
    );
    // Another site cannot refund alpha's sale.
    let r = submit(&app, &other_site, vec![refund("R9", "S2", "USD", 1)]).await;
    assert_eq!(outcomes(&r), [rejected("UNKNOWN_SALE")]);
    // A refund of a sale that was itself rejected in the same request is unknown.
    let r = submit(
        &app,
        &secret,
        vec![sale("S4", "IDR", 0), refund("R10", "S4", "IDR", 1)],
    )
    .await;
    assert_eq!(
        outcomes(&r),
        [rejected("AMOUNT_NOT_POSITIVE"), rejected("UNKNOWN_SALE")]
    );
}

async fn auth(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let call = |secret: Option<String>| {
        let addr = app.ingest_addr;
        async move {
            ingest_client(addr, secret.as_deref())
                .await
                .submit_transactions(req(vec![sale("A1", "IDR", 1)]))
                .await
        }
    };
    assert_eq!(
        call(None).await.expect_err("no key").code(),
        Code::Unauthenticated
    );
    assert_eq!(
        call(Some("sbk_wrong".into()))
            .await
            .expect_err("wrong key")
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        call(Some(app.token.clone()))
            .await
            .expect_err("organizer token is no API key")
            .code(),
        Code::Unauthenticated
    );
    call(Some(secret.clone())).await.expect("valid key");

    // A retailer key on AdminService, and no token at all.
    let err = admin_client(app.admin_addr, Some(&secret))
        .await
        .list_sites(ListSitesRequest {})
        .await
        .expect_err("retailer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = admin_client(app.admin_addr, None)
        .await
        .list_sites(ListSitesRequest {})
        .await
        .expect_err("none");
    assert_eq!(err.code(), Code::Unauthenticated);

    // Revocation takes effect within 2 seconds.
    let (key_id, doomed) = app.site_with_key("beta").await;
    let doomed_call = || {
        let addr = app.ingest_addr;
        let doomed = doomed.clone();
        async move {
            ingest_client(addr, Some(&doomed))
                .await
                .submit_transactions(req(vec![sale(&format!("B{}", now_secs()), "IDR", 1)]))
                .await
        }
    };
    doomed_call().await.expect("new key works at once");
    let revoked = app
        .admin()
        .await
        .revoke_api_key(RevokeApiKeyRequest { key_id })
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.key.and_then(|k| k.revoked_at).is_some());
    let started = tokio::time::Instant::now();
    loop {
        match doomed_call().await {
            Err(s) if s.code() == Code::Unauthenticated => break,
            Err(s) => panic!("unexpected status {s:?}"),
            Ok(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "revoked key still works after 2 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    call(Some(secret)).await.expect("other keys keep working");
}

async fn whole_request_limits(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let mut client = app.ingest(&secret).await;
    let err = client
        .submit_transactions(req(vec![]))
        .await
        .expect_err("empty");
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    assert_eq!(
        details
            .bad_request()
            .expect("field details")
            .field_violations[0]
            .field,
        "transactions"
    );

    let many: Vec<_> = (0..1_001)
        .map(|i| sale(&format!("M{i}"), "IDR", 1))
        .collect();
    let err = client
        .submit_transactions(req(many))
        .await
        .expect_err("too many");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("1000"), "{}", err.message());
    let exactly: Vec<_> = (0..1_000)
        .map(|i| sale(&format!("M{i}"), "IDR", 1))
        .collect();
    let r = client
        .submit_transactions(req(exactly))
        .await
        .expect("1,000 is allowed")
        .into_inner();
    assert!(r.results.iter().all(|r| r.outcome() == Outcome::Accepted));
}

async fn no_event_is_failed_precondition(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, secret) = app.site_with_key("alpha").await;
    let err = app
        .ingest(&secret)
        .await
        .submit_transactions(req(vec![sale("A", "IDR", 1)]))
        .await
        .expect_err("no event");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = app
        .admin()
        .await
        .get_event(GetEventRequest::default())
        .await
        .expect_err("no event");
    assert_eq!(err.code(), Code::NotFound);
    app.set_event().await;
    app.ingest(&secret)
        .await
        .submit_transactions(req(vec![sale("A", "IDR", 1)]))
        .await
        .expect("event set");
}

async fn site_rate_limit(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.site_rate_limit = 1;
        c.site_rate_burst = 3;
    })
    .await
    else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let (_, other) = app.site_with_key("beta").await;
    let mut client = app.ingest(&secret).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let started = tokio::time::Instant::now();
        let r = client
            .submit_transactions(req(vec![sale(&format!("L{i}"), "IDR", 1)]))
            .await;
        codes.push(r.err().map(|s| (s.code(), started.elapsed())));
    }
    assert!(
        codes[..3].iter().all(Option::is_none),
        "the burst passes: {codes:?}"
    );
    let (code, took) = codes[4].expect("over the limit");
    assert_eq!(code, Code::ResourceExhausted);
    assert!(took < Duration::from_secs(1), "refused fast, took {took:?}");
    // Other sites have their own budget.
    app.ingest(&other)
        .await
        .submit_transactions(req(vec![sale("O", "IDR", 1)]))
        .await
        .expect("other site");
}

async fn oversized_messages_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.max_message_bytes = Some(16 * 1024)).await
    else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let big: Vec<_> = (0..900)
        .map(|i| sale(&format!("BIG-{i:0>40}"), "IDR", 1))
        .collect();
    let err = app
        .ingest(&secret)
        .await
        .submit_transactions(req(big))
        .await
        .expect_err("too big");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    app.ingest(&secret)
        .await
        .submit_transactions(req(vec![sale("small", "IDR", 1)]))
        .await
        .expect("small passes");
}

async fn streaming_answers_in_order(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let requests = vec![
        req(vec![sale("S1", "IDR", 100), sale("S2", "IDR", 100)]),
        req(vec![refund("R1", "S1", "IDR", 100)]), // refunds a sale of an earlier message
        req(vec![sale("S1", "IDR", 100), sale("S3", "XXX", 1)]),
        req((0..200).map(|i| sale(&format!("B{i}"), "IDR", 1)).collect()),
    ];
    let stream = tokio_stream::iter(requests);
    let mut responses = app
        .ingest(&secret)
        .await
        .stream_transactions(stream)
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = responses.message().await.expect("response") {
        got.push(r);
    }
    assert_eq!(got.len(), 4, "one response per request");
    assert_eq!(outcomes(&got[0]), [accepted(), accepted()]);
    assert_eq!(outcomes(&got[1]), [accepted()]);
    assert_eq!(
        outcomes(&got[2]),
        [duplicate(), rejected("INVALID_CURRENCY")]
    );
    assert_eq!(got[3].results.len(), 200);
    assert_eq!(got[3].results[199].transaction_id, "B199");
    assert_eq!(app.store.ledger_head().await.expect("head"), 203);
}

async fn stream_ends_with_the_status_of_a_bad_request(backend: Backend) {
    let Some((app, secret)) = ready(backend).await else {
        return;
    };
    let requests = vec![
        req(vec![sale("S1", "IDR", 1)]),
        req(vec![]),
        req(vec![sale("S2", "IDR", 1)]),
    ];
    let mut responses = app
        .ingest(&secret)
        .await
        .stream_transactions(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("first")
        .expect("a response");
    assert_eq!(outcomes(&first), [accepted()]);
    let err = responses
        .message()
        .await
        .expect_err("empty request ends the stream");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

async fn admin_validation(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut admin = app.admin().await;
    for bad in ["", "Upper", "has space", &"a".repeat(41)] {
        let err = admin
            .create_site(CreateSiteRequest {
                site_id: bad.into(),
                display_name: "x".into(),
            })
            .await
            .expect_err(bad);
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(
            err.get_error_details()
                .bad_request()
                .expect("details")
                .field_violations[0]
                .field,
            "site_id"
        );
    }
    let site = admin
        .create_site(CreateSiteRequest {
            site_id: "toko".into(),
            display_name: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(
        site.display_name, "toko",
        "an empty display name defaults to the id"
    );
    assert!(site.created_at.is_some());
    let err = admin
        .create_site(CreateSiteRequest {
            site_id: "toko".into(),
            display_name: "again".into(),
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = admin
        .create_api_key(CreateApiKeyRequest {
            site_id: "nobody".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .revoke_api_key(RevokeApiKeyRequest {
            key_id: "key_nope".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    let mut bad_event = event();
    bad_event.ends_at = bad_event.starts_at;
    let err = admin.set_event(bad_event).await.expect_err("empty window");
    assert_eq!(
        err.get_error_details()
            .bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "ends_at"
    );
    let mut bad_event = event();
    bad_event.reporting_currency = "XXX".into();
    let err = admin.set_event(bad_event).await.expect_err("no minor unit");
    assert_eq!(err.code(), Code::InvalidArgument);
    let set = admin.set_event(event()).await.expect("set").into_inner();
    assert_eq!(
        admin
            .get_event(GetEventRequest::default())
            .await
            .expect("get")
            .into_inner(),
        set
    );

    let rate = |c: &str, r: &str| ExchangeRate {
        currency: c.into(),
        rate: r.into(),
    };
    for (rates, field) in [
        (vec![rate("USD", "abc")], "rates[0].rate"),
        (vec![rate("USD", "-1")], "rates[0].rate"),
        (
            vec![rate("USD", "1"), rate("usd", "1")],
            "rates[1].currency",
        ),
        (
            vec![rate("USD", "1"), rate("USD", "2")],
            "rates[1].currency",
        ),
    ] {
        let err = admin
            .set_exchange_rates(SetExchangeRatesRequest {
                rates,
                event_id: String::new(),
            })
            .await
            .expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(
            err.get_error_details()
                .bad_request()
                .expect("details")
                .field_violations[0]
                .field,
            field
        );
    }
    let all = admin
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: vec![rate("USD", "15850.250"), rate("JPY", "105.5")],
            event_id: String::new(),
        })
        .await
        .expect("rates")
        .into_inner();
    assert_eq!(
        all.rates,
        vec![rate("JPY", "105.5"), rate("USD", "15850.25")]
    );
    // The key secret is shown once; listings never carry it.
    let key = admin
        .create_api_key(CreateApiKeyRequest {
            site_id: "toko".into(),
        })
        .await
        .expect("key")
        .into_inner();
    assert!(key.secret.starts_with("sbk_") && key.secret.len() > 40);
    let listed = admin
        .list_api_keys(saleboard_proto::v1::ListApiKeysRequest {
            site_id: "toko".into(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.keys.len(), 1);
    assert!(listed.keys[0].secret.is_empty());
}

async fn overload_is_shed_fast(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.concurrency_limit = 1;
        c.site_rate_limit = 0;
    })
    .await
    else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let mut calls = Vec::new();
    for c in 0..24 {
        let mut client = app.ingest(&secret).await;
        calls.push(tokio::spawn(async move {
            let txs = (0..1_000)
                .map(|i| sale(&format!("O{c}-{i}"), "IDR", 1))
                .collect();
            let started = tokio::time::Instant::now();
            let r = client.submit_transactions(req(txs)).await;
            (r.map(|r| r.into_inner().results.len()), started.elapsed())
        }));
    }
    let (mut ok, mut shed) = (0, 0);
    for c in calls {
        match c.await.expect("call") {
            (Ok(n), _) => {
                assert_eq!(n, 1_000);
                ok += 1;
            }
            (Err(s), took) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                assert!(
                    s.message().contains("concurrent requests"),
                    "{}",
                    s.message()
                );
                assert!(took < Duration::from_secs(1), "shed at once, took {took:?}");
                shed += 1;
            }
        }
    }
    assert!(
        ok >= 1 && shed >= 1,
        "some served, some shed: {ok} ok, {shed} shed"
    );
    assert_eq!(app.store.ledger_head().await.expect("head"), 1_000 * ok);
}

async fn an_open_stream_does_not_hold_the_limit(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.concurrency_limit = 1).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut streaming = app.ingest(&secret).await;
    let mut responses = streaming
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream opens")
        .into_inner();
    tx.send(req(vec![sale("S1", "IDR", 1)]))
        .await
        .expect("send");
    assert_eq!(
        outcomes(&responses.message().await.expect("ok").expect("one")),
        [accepted()]
    );
    // The limit counts work in progress: an open stream between batches holds no permit.
    let served = app
        .ingest(&secret)
        .await
        .submit_transactions(req(vec![sale("U1", "IDR", 1)]))
        .await
        .expect("served beside an idle stream");
    assert_eq!(outcomes(&served.into_inner()), [accepted()]);
    tx.send(req(vec![sale("S2", "IDR", 1)]))
        .await
        .expect("send");
    assert_eq!(
        outcomes(&responses.message().await.expect("ok").expect("one")),
        [accepted()]
    );
    drop(tx);
    assert!(responses.message().await.expect("clean end").is_none());
}

async fn sites_can_be_disabled_and_enabled(backend: Backend) {
    let Some((app, alpha)) = ready(backend).await else {
        return;
    };
    let (_, beta) = app.site_with_key("beta").await;
    assert_eq!(
        outcomes(&submit(&app, &alpha, vec![sale("A1", "IDR", 1_000)]).await),
        [accepted()]
    );
    assert_eq!(
        outcomes(&submit(&app, &beta, vec![sale("B1", "IDR", 500)]).await),
        [accepted()]
    );
    // A stream opened before the site is disabled.
    let (stream_tx, stream_rx) = tokio::sync::mpsc::channel(4);
    let mut responses = app
        .ingest(&alpha)
        .await
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(stream_rx))
        .await
        .expect("stream opens")
        .into_inner();
    stream_tx
        .send(req(vec![sale("A2", "IDR", 10)]))
        .await
        .expect("send");
    let first = responses
        .message()
        .await
        .expect("answer")
        .expect("a message");
    assert_eq!(outcomes(&first), [accepted()]);

    let mut admin = app.admin().await;
    let site = admin
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "alpha".into(),
            enabled: false,
        })
        .await
        .expect("disable")
        .into_inner();
    assert!(site.disabled && site.disabled_at.is_some(), "{site:?}");
    let disabled_at = site.disabled_at;
    let again = admin
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "alpha".into(),
            enabled: false,
        })
        .await
        .expect("disable twice")
        .into_inner();
    assert_eq!(
        again.disabled_at, disabled_at,
        "idempotent: the first time stays"
    );

    // Its key is refused everywhere within 2 s, and its open stream ends.
    let disabled = tokio::time::Instant::now();
    loop {
        let refused = app
            .ingest(&alpha)
            .await
            .submit_transactions(req(vec![sale("A3", "IDR", 1)]))
            .await;
        match refused {
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                break;
            }
            Ok(_) => assert!(
                disabled.elapsed() < Duration::from_secs(2),
                "a disabled site's key still pushes after 2 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The open stream stops accepting within the same 2 s (a message racing the key reload
    // may still be taken just before).
    let mut n = 0;
    loop {
        n += 1;
        let _ = stream_tx
            .send(req(vec![sale(&format!("A4-{n}"), "IDR", 1)]))
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(3), responses.message())
            .await
            .expect("the stream answers within 3 s");
        if !matches!(&answer, Ok(Some(r)) if outcomes(r) == [accepted()]) {
            break;
        }
        assert!(
            disabled.elapsed() < Duration::from_secs(2),
            "the open stream still accepts 2 s after the site was disabled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stream_tx);
    drop(responses);

    // It leaves the leaderboard and the national figures; its rows stay.
    app.settle().await;
    let mut board = app.leaderboard().await;
    let shown = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("board")
        .into_inner();
    let ids: Vec<&str> = shown.entries.iter().map(|e| e.site_id.as_str()).collect();
    assert_eq!(ids, ["beta"]);
    assert_eq!(shown.national_net_reporting_minor, 500);
    let national = board
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert_eq!(
        (national.site_count, national.net_reporting_minor),
        (1, 500)
    );
    let listed = admin
        .list_sites(ListSitesRequest {})
        .await
        .expect("list")
        .into_inner()
        .sites;
    assert!(listed.iter().any(|s| s.site_id == "alpha" && s.disabled));
    assert!(listed.iter().any(|s| s.site_id == "beta" && !s.disabled));
    // A3 or A4 may have landed inside the 2 s the contract allows.
    let rows = app.store.read_ledger(0, 100).await.expect("ledger");
    assert!(rows.len() >= 3, "rows stay: {}", rows.len());
    let out = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .arg("verify")
        .env("SALEBOARD_DATABASE_URL", &app.db.url)
        .output()
        .expect("verify runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified"),
        "verify still covers the disabled site's rows: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Enabled again: the same key pushes, and every total comes back.
    admin
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "alpha".into(),
            enabled: true,
        })
        .await
        .expect("enable");
    let enabled = tokio::time::Instant::now();
    loop {
        let pushed = app
            .ingest(&alpha)
            .await
            .submit_transactions(req(vec![sale("A5", "IDR", 5)]))
            .await;
        if pushed.is_ok() {
            break;
        }
        assert!(
            enabled.elapsed() < Duration::from_secs(3),
            "an enabled site's key still refused after 3 s: {pushed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settle().await;
    let shown = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("board")
        .into_inner();
    let alpha_entry = shown
        .entries
        .iter()
        .find(|e| e.site_id == "alpha")
        .expect("back on the board");
    let alpha_net: i64 = app
        .store
        .read_ledger(0, 100)
        .await
        .expect("ledger")
        .iter()
        .filter(|r| r.site.as_str() == "alpha")
        .map(|r| r.tx.amount_minor)
        .sum();
    assert!(alpha_net >= 1_015, "A1, A2 and A5 at least: {alpha_net}");
    assert_eq!(
        alpha_entry.net_reporting_minor, alpha_net,
        "every total comes back"
    );
    assert_eq!(shown.national_net_reporting_minor, alpha_net + 500);

    for (site_id, code) in [
        ("nobody", Code::NotFound),
        ("Not A Slug", Code::InvalidArgument),
    ] {
        let status = admin
            .set_site_enabled(SetSiteEnabledRequest {
                site_id: site_id.into(),
                enabled: false,
            })
            .await
            .expect_err(site_id);
        assert_eq!(status.code(), code, "{status:?}");
    }
}

async fn who_am_i(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (key_id, secret) = app.site_with_key("alpha").await;
    let me = app
        .ingest(&secret)
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("the API key alone is enough")
        .into_inner();
    assert_eq!(
        (me.key_id.as_str(), me.site_id.as_str()),
        (key_id.as_str(), "alpha")
    );
    assert!(me.event.is_none(), "no event yet");
    assert!(me.max_batch >= 1);
    app.set_event().await;
    let me = app
        .ingest(&secret)
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    let window = me.event.expect("the event window");
    // The event as stored (data::event() is relative to the clock: computed again it may be a
    // second later).
    let expected = app
        .admin()
        .await
        .get_event(GetEventRequest::default())
        .await
        .expect("the event")
        .into_inner();
    assert_eq!(window.event_id, expected.event_id);
    assert_eq!(window.starts_at, expected.starts_at);
    assert_eq!(window.ends_at, expected.ends_at);
    assert_eq!(window.reporting_currency, "IDR");
    let refused = ingest_client(app.ingest_addr, Some(&app.token))
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("the organizer token is no API key");
    assert_eq!(refused.code(), Code::Unauthenticated);
}

backend_tests!(
    sites_can_be_disabled_and_enabled,
    who_am_i,
    an_open_stream_does_not_hold_the_limit,
    overload_is_shed_fast,
    accepted_duplicate_and_conflict,
    duplicates_inside_one_request,
    two_sites_may_share_an_id,
    every_rejection_reason,
    refunds,
    auth,
    whole_request_limits,
    no_event_is_failed_precondition,
    site_rate_limit,
    oversized_messages_are_refused,
    streaming_answers_in_order,
    stream_ends_with_the_status_of_a_bad_request,
    admin_validation,
);
