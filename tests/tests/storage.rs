//! The storage contract, run against PostgreSQL and SQLite alike.

use std::sync::Arc;

use saleboard_domain::action::{ActionKind, ActionRefusal, ActionState};
use saleboard_domain::event::EventChangeError;
use saleboard_domain::integrity::{FlagState, Rule};
use saleboard_domain::resolve::Decision;
use saleboard_domain::{
    Currency, Event, Kind, PushedKind, Rate, Reason, SiteId, TransactionId, TransactionInput,
    UnixNanos,
};
use saleboard_storage::{
    ActionDecision, ActionRecord, Audit, AuditCall, Candidate, FlagEvaluation, FlagRecord,
    FlagReview, StorageError, Store,
};
use saleboard_tests::{Backend, TestDb, backend_tests};
use sqlx::Connection as _;

/// The audit record of a test's own change.
fn call() -> AuditCall {
    saleboard_tests::db::seed_call("test")
}

/// The audit entry of a test's own change: `OK`.
fn ok<T>(call: &AuditCall) -> Audit<'_, T> {
    Audit::ok(call)
}

fn site(s: &str) -> SiteId {
    SiteId::parse(s).expect("valid site")
}

fn candidate(
    site_id: &str,
    id: &str,
    kind: Kind,
    amount: i64,
    refund_of: Option<&str>,
) -> Candidate {
    Candidate {
        site: site(site_id),
        key_id: "key_test".into(),
        received_at: UnixNanos(2_000),
        tx: saleboard_domain::transaction::validate(
            &TransactionInput {
                transaction_id: id.into(),
                store_id: "s-1".into(),
                kind: match (kind, refund_of) {
                    (Kind::Sale, None) => PushedKind::Sale,
                    (Kind::Refund, Some(_)) => PushedKind::Refund,
                    other => panic!("not a valid transaction: {other:?}"),
                },
                currency: "IDR".into(),
                amount_minor: amount,
                occurred_at: Some(UnixNanos(1_000).to_parts()),
                refund_of: refund_of.unwrap_or_default().into(),
                ..TransactionInput::default()
            },
            UnixNanos(2_000),
            &saleboard_domain::Limits::default(),
        )
        .expect("a valid transaction"),
    }
}

fn sale(site_id: &str, id: &str, amount: i64) -> Candidate {
    candidate(site_id, id, Kind::Sale, amount, None)
}

fn reason(d: &Decision) -> Option<Reason> {
    match d {
        Decision::Rejected(r) => Some(r.reason),
        _ => None,
    }
}

async fn open(backend: Backend) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = TestDb::create(backend).await?;
    let store = db.store().await;
    for s in ["a", "b"] {
        store
            .create_site(&site(s), s, UnixNanos(1), ok(&call()))
            .await
            .expect("create site");
    }
    store
        .set_event(&test_event(0), UnixNanos::now(), ok(&call()))
        .await
        .expect("event");
    Some((db, store))
}

/// The event every candidate here falls in: from `starts` (ns) to 2096.
fn test_event(starts: i64) -> Event {
    Event::new(
        "test",
        "Test",
        UnixNanos(starts),
        UnixNanos::from_parts(4_000_000_000, 0).expect("2096"),
        "IDR",
    )
    .expect("event")
}

async fn sites_and_keys(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let err = store
        .create_site(&site("a"), "again", UnixNanos(2), ok(&call()))
        .await
        .expect_err("taken");
    assert!(matches!(err, StorageError::AlreadyExists { .. }), "{err}");
    let sites: Vec<_> = store
        .list_sites()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.site_id.to_string())
        .collect();
    assert_eq!(sites, ["a", "b"]);

    let err = store
        .create_api_key("k0", &site("zz"), "h0", UnixNanos(3), ok(&call()))
        .await
        .expect_err("unknown site");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    let k1 = store
        .create_api_key("k1", &site("a"), "h1", UnixNanos(3), ok(&call()))
        .await
        .expect("key");
    assert_eq!(
        (k1.key_id.as_str(), k1.site_id.as_str(), k1.revoked_at),
        ("k1", "a", None)
    );
    store
        .create_api_key("k2", &site("b"), "h2", UnixNanos(4), ok(&call()))
        .await
        .expect("key");
    assert_eq!(store.active_keys().await.expect("active").len(), 2);
    assert_eq!(
        store
            .find_active_key("h1")
            .await
            .expect("find")
            .map(|k| k.key_id),
        Some("k1".into())
    );

    let revoked = store
        .revoke_api_key("k1", UnixNanos(10), ok(&call()))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(UnixNanos(10)));
    let again = store
        .revoke_api_key("k1", UnixNanos(20), ok(&call()))
        .await
        .expect("revoke again");
    assert_eq!(
        again.revoked_at,
        Some(UnixNanos(10)),
        "the first revocation time stands"
    );
    assert!(matches!(
        store
            .revoke_api_key("nope", UnixNanos(1), ok(&call()))
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(store.find_active_key("h1").await.expect("find"), None);
    let active: Vec<_> = store
        .active_keys()
        .await
        .expect("active")
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(active, ["k2"]);
    assert_eq!(
        store
            .list_api_keys(Some(&site("a")))
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(store.list_api_keys(None).await.expect("list").len(), 2);
}

async fn event_and_rates(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let now = UnixNanos::now();
    assert_eq!(
        store.get_event().await.expect("get"),
        Some(test_event(0)),
        "the live one"
    );
    // Windows never overlap.
    let e1 = Event::new("e1", "One", UnixNanos(1), UnixNanos(2), "IDR").expect("event");
    let err = store
        .set_event(&e1, now, ok(&call()))
        .await
        .expect_err("overlaps test");
    assert!(
        matches!(&err, StorageError::EventChange(EventChangeError::Overlaps { event, .. }) if event == "e1")
            && err.to_string().contains("\"test\""),
        "{err}"
    );
    let next = Event::new(
        "next",
        "Next",
        UnixNanos::from_parts(4_100_000_000, 0).expect("t"),
        UnixNanos::from_parts(4_200_000_000, 0).expect("t"),
        "USD",
    )
    .expect("event");
    store
        .set_event(&next, now, ok(&call()))
        .await
        .expect("a later event");
    assert_eq!(store.events().await.expect("events").as_slice().len(), 2);
    assert_eq!(
        store.get_event().await.expect("get").map(|e| e.event_id),
        Some("test".to_owned()),
        "the live event stays current"
    );
    // A closed event keeps its figures; its name may change.
    let old = Event::new("old", "Old", UnixNanos(-100), UnixNanos(-50), "IDR").expect("event");
    store
        .set_event(&old, now, ok(&call()))
        .await
        .expect("a past event");
    let moved = Event::new("old", "Old", UnixNanos(-100), UnixNanos(-40), "IDR").expect("event");
    let err = store
        .set_event(&moved, now, ok(&call()))
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, StorageError::EventChange(EventChangeError::Closed { event, .. }) if event == "old")
            && err.to_string().contains("final"),
        "{err}"
    );
    let renamed =
        Event::new("old", "Renamed", UnixNanos(-100), UnixNanos(-50), "IDR").expect("event");
    store
        .set_event(&renamed, now, ok(&call()))
        .await
        .expect("a new name");
    // Narrowing is refused while accepted sales would fall outside.
    store.append(&[sale("a", "N1", 10)]).await.expect("append");
    let err = store
        .set_event(&test_event(2_000), now, ok(&call()))
        .await
        .expect_err("the sale at 1000 would fall outside");
    assert!(
        matches!(
            &err,
            StorageError::EventChange(EventChangeError::Strands { outside: 1, .. })
        ) && err.to_string().contains("1 accepted sales"),
        "{err}"
    );
    store
        .set_event(&test_event(-10), now, ok(&call()))
        .await
        .expect("widening is allowed (up to the next event)");

    let usd = Currency::parse("USD").expect("USD");
    let jpy = Currency::parse("JPY").expect("JPY");
    let r = |s: &str| Rate::parse(s).expect("rate");
    store
        .set_exchange_rates(
            "test",
            &[(usd, r("15850.25")), (jpy, r("105"))],
            ok(&call()),
        )
        .await
        .expect("set");
    let all = store
        .set_exchange_rates("test", &[(usd, r("16000.5"))], ok(&call()))
        .await
        .expect("upsert");
    assert_eq!(all, vec![(jpy, r("105")), (usd, r("16000.5"))]);
    assert_eq!(store.list_exchange_rates("test").await.expect("list"), all);
    // Rates belong to their event.
    assert!(
        store
            .list_exchange_rates("next")
            .await
            .expect("list")
            .is_empty()
    );
    store
        .set_exchange_rates("next", &[(usd, r("1"))], ok(&call()))
        .await
        .expect("another event's rates");
    assert_eq!(store.list_exchange_rates("test").await.expect("list"), all);
}

async fn append_decides_and_stores(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    assert_eq!(store.ledger_head().await.expect("head"), 0);
    let first = vec![
        sale("a", "S1", 100),
        sale("a", "S1", 100),
        sale("a", "S1", 999),
        sale("b", "S1", 50),
        candidate("a", "R1", Kind::Refund, 40, Some("S1")),
    ];
    let d = store.append(&first).await.expect("append");
    assert_eq!(
        d[0],
        Decision::Accepted {
            position: 1,
            event_id: "test".into()
        }
    );
    assert_eq!(
        d[1],
        Decision::Duplicate {
            position: 1,
            event_id: "test".into()
        }
    );
    assert_eq!(reason(&d[2]), Some(Reason::IdConflict));
    assert_eq!(
        d[3],
        Decision::Accepted {
            position: 2,
            event_id: "test".into()
        }
    );
    assert_eq!(
        d[4],
        Decision::Accepted {
            position: 3,
            event_id: "test".into()
        }
    );
    assert_eq!(store.ledger_head().await.expect("head"), 3);

    // A later batch sees what is stored: duplicates, conflicts, refunded sums.
    let second = vec![
        sale("a", "S1", 100),
        sale("a", "S1", 101),
        candidate("a", "R2", Kind::Refund, 61, Some("S1")),
        candidate("a", "R3", Kind::Refund, 60, Some("S1")),
        candidate("a", "R4", Kind::Refund, 1, Some("S1")),
        candidate("a", "R5", Kind::Refund, 1, Some("R1")),
        candidate("a", "R6", Kind::Refund, 1, Some("nope")),
        candidate("b", "R7", Kind::Refund, 1, Some("R3")),
    ];
    let d = store.append(&second).await.expect("append");
    assert_eq!(
        d[0],
        Decision::Duplicate {
            position: 1,
            event_id: "test".into()
        }
    );
    assert_eq!(reason(&d[1]), Some(Reason::IdConflict));
    assert_eq!(reason(&d[2]), Some(Reason::RefundExceedsSale));
    assert_eq!(
        d[3],
        Decision::Accepted {
            position: 4,
            event_id: "test".into()
        }
    );
    assert_eq!(reason(&d[4]), Some(Reason::RefundExceedsSale));
    assert_eq!(reason(&d[5]), Some(Reason::RefundOfNonSale));
    assert_eq!(reason(&d[6]), Some(Reason::UnknownSale));
    assert_eq!(
        reason(&d[7]),
        Some(Reason::UnknownSale),
        "site b cannot refund site a's rows"
    );

    let rows = store.read_ledger(0, 100).await.expect("read");
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.position,
                r.site.to_string(),
                r.tx.id.to_string(),
                r.tx.amount_minor,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "a".into(), "S1".into(), 100),
            (2, "b".into(), "S1".into(), 50),
            (3, "a".into(), "R1".into(), 40),
            (4, "a".into(), "R3".into(), 60),
        ]
    );
    assert_eq!(
        rows[2].tx.refund_of().map(TransactionId::as_str),
        Some("S1")
    );
    assert_eq!(rows[0].tx, first[0].tx, "content round-trips exactly");
    assert_eq!(
        (rows[0].key_id.as_str(), rows[0].received_at),
        ("key_test", UnixNanos(2_000))
    );
    assert_eq!(store.read_ledger(2, 1).await.expect("read").len(), 1);
    assert_eq!(store.read_ledger(2, 1).await.expect("read")[0].position, 3);
    assert!(store.append(&[]).await.expect("empty").is_empty());
}

/// The ledger refuses an UPDATE and a DELETE behind the services' backs.
async fn assert_append_only(db: &TestDb, backend: Backend) {
    for sql in ["UPDATE ledger SET amount_minor = 1", "DELETE FROM ledger"] {
        let result = match backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
                sqlx::query(sql).execute(&mut c).await.map(|_| ())
            }
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&db.url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut c).await.map(|_| ())
            }
        };
        let err = result.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

async fn ledger_is_append_only(backend: Backend) {
    let Some((db, store)) = open(backend).await else {
        return;
    };
    store.append(&[sale("a", "S1", 100)]).await.expect("append");
    assert_append_only(&db, backend).await;
    assert_eq!(
        store.read_ledger(0, 10).await.expect("read")[0]
            .tx
            .amount_minor,
        100
    );
}

/// Two stores on one database stand for two ingest processes: their appends interleave, yet
/// positions stay unique and gapless and every id is stored once.
async fn concurrent_writers_keep_positions_gapless(backend: Backend) {
    let Some((db, store)) = open(backend).await else {
        return;
    };
    let other = db.store().await;
    let mut tasks = Vec::new();
    for (w, s) in [
        (0, store.clone()),
        (1, other.clone()),
        (2, store.clone()),
        (3, other),
    ] {
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for round in 0..20 {
                // Overlapping ids between writers 0/2 and 1/3: only one copy may win.
                let batch: Vec<_> = (0..50)
                    .map(|i| sale("a", &format!("w{}-{round}-{i}", w % 2), 10))
                    .collect();
                let d = s.append(&batch).await.expect("append");
                accepted += d
                    .iter()
                    .filter(|d| matches!(d, Decision::Accepted { .. }))
                    .count();
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.expect("task");
    }
    assert_eq!(accepted, 2 * 20 * 50, "each id accepted exactly once");
    let rows = store.read_ledger(0, 10_000).await.expect("read");
    let positions: Vec<u64> = rows.iter().map(|r| r.position).collect();
    assert_eq!(positions, (1..=2_000).collect::<Vec<u64>>());
    assert_eq!(store.ledger_head().await.expect("head"), 2_000);
}

async fn migrate_is_idempotent(backend: Backend) {
    let Some((db, store)) = open(backend).await else {
        return;
    };
    store.migrate().await.expect("second migrate");
    db.store()
        .await
        .migrate()
        .await
        .expect("another connection");
    assert_eq!(store.list_sites().await.expect("list").len(), 2);
}

/// Each store looks up only the ids its filter of the ledger's keys cannot rule out: a store
/// opened on a ledger that already has rows (its filter loading, then loaded), and two stores
/// writing by turns (each catching up on the other's rows under the lock), never take an id
/// that is stored for new.
async fn stored_ids_are_never_taken_for_new(backend: Backend) {
    let Some((db, first)) = open(backend).await else {
        return;
    };
    let old: Vec<_> = (0..300)
        .map(|i| sale("a", &format!("old-{i}"), 10))
        .collect();
    first.append(&old).await.expect("append");
    let second = db.store().await;
    let is_duplicate = |d: &Decision| matches!(d, Decision::Duplicate { .. });
    let is_accepted = |d: &Decision| matches!(d, Decision::Accepted { .. });
    for round in 0..40 {
        // The first store writes new ids; the second resends them and old ones, and writes
        // its own, which the first then resends.
        let mine = [
            sale("a", &format!("first-{round}"), 10),
            sale("b", &format!("first-{round}"), 10),
        ];
        let d = first.append(&mine).await.expect("append");
        assert!(d.iter().all(is_accepted), "round {round}: {d:?}");
        let d = second
            .append(&[
                sale("a", &format!("first-{round}"), 10),
                sale("b", &format!("first-{round}"), 10),
                sale("a", &format!("old-{}", round * 7), 10),
                sale("a", &format!("second-{round}"), 10),
            ])
            .await
            .expect("append");
        assert!(d[..3].iter().all(is_duplicate), "round {round}: {d:?}");
        assert!(is_accepted(&d[3]), "round {round}: {d:?}");
        let d = first
            .append(&[
                sale("a", &format!("second-{round}"), 10),
                sale("a", &format!("old-{}", 299 - round), 10),
            ])
            .await
            .expect("append");
        assert!(d.iter().all(is_duplicate), "round {round}: {d:?}");
        // Give the filters time to load part-way through.
        if round % 10 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_eq!(first.ledger_head().await.expect("head"), 300 + 40 * 3);
}

/// The late figures (issue 28) and each event's window are written with the breakdowns (by a
/// headline apply carrying them or a breakdown write), replaced in place, read back exactly
/// (beyond `i64`), and per event with the breakdown watermark.
async fn late_figures_follow_the_book(backend: Backend) {
    use saleboard_domain::late::{LateChanges, LateTotals, LateWindow};
    use saleboard_domain::totals::Changes;
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let idr = Currency::parse("IDR").expect("IDR");
    let usd = Currency::parse("USD").expect("USD");
    // Each with denominators of its own (distinct from the late figures).
    let figures = |refunded: i128, sales: i128| LateTotals {
        late_refunded_minor: refunded,
        late_sales_minor: sales,
        sale_count: 2,
        gross_minor: sales + 1_000,
        round_count: 1,
    };
    let window = |ends: i64, latest: i64| LateWindow {
        ends_at: UnixNanos(ends),
        latest_received: UnixNanos(latest),
    };
    let huge = i128::from(i64::MAX) * 1_000;
    let first = Changes {
        late: LateChanges {
            figures: vec![
                (("test".to_owned(), site("a"), idr), figures(40, 0)),
                (("test".to_owned(), site("b"), usd), figures(0, huge)),
                (("other".to_owned(), site("a"), idr), figures(7, 8)),
            ],
            windows: vec![
                ("other".to_owned(), window(5, 9)),
                ("test".to_owned(), window(100, 200)),
            ],
        },
        breakdowns: true,
        ..Changes::default()
    };
    store
        .apply_totals(0, 0, &first, UnixNanos::now())
        .await
        .expect("a headline apply carrying them");
    let loaded = store.load_totals().await.expect("load").late;
    assert_eq!(loaded.figures().len(), 3);
    assert_eq!(
        loaded.figures()[&("test".to_owned(), site("b"), usd)],
        figures(0, huge)
    );
    assert_eq!(loaded.window("test"), Some(window(100, 200)));
    assert_eq!(loaded.window("other"), Some(window(5, 9)));
    assert!(!loaded.pending(), "loaded figures are not changes");
    // Replaced in place by a breakdown write: one key, one window.
    let second = Changes {
        late: LateChanges {
            figures: vec![(("test".to_owned(), site("a"), idr), figures(55, 3))],
            windows: vec![("test".to_owned(), window(150, 300))],
        },
        breakdowns: true,
        ..Changes::default()
    };
    store
        .apply_breakdowns(0, 0, &second)
        .await
        .expect("a breakdown write");
    let (watermark, event) = store.event_late("test").await.expect("event_late");
    assert_eq!(watermark, 0);
    assert_eq!(
        event,
        vec![
            (("test".to_owned(), site("a"), idr), figures(55, 3)),
            (("test".to_owned(), site("b"), usd), figures(0, huge)),
        ]
    );
    let loaded = store.load_totals().await.expect("load").late;
    assert_eq!(loaded.window("test"), Some(window(150, 300)));
    assert_eq!(
        loaded.figures()[&("other".to_owned(), site("a"), idr)],
        figures(7, 8)
    );
    assert!(store.event_late("none").await.expect("empty").1.is_empty());
}

/// Per-site breakdown rows are written as the aggregator's book says: new ones inserted,
/// stored ones rewritten. Where the book says new of a stored row, PostgreSQL (which inserts
/// new rows plainly) fails the whole apply and writes nothing; SQLite upserts. A row said
/// stored is upserted by both. Never a figure added twice or a row lost.
async fn breakdown_rows_follow_the_book(backend: Backend) {
    use saleboard_domain::Dimension;
    use saleboard_domain::totals::{Changes, CurrencyTotals};
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let idr = Currency::parse("IDR").expect("IDR");
    let figures = |n: u64| CurrencyTotals {
        sale_count: n,
        gross_minor: i128::from(n) * 100,
        refund_count: 0,
        refunded_minor: 0,
    };
    let row = |brand: &str, n: u64, new: bool| {
        (
            (
                "test".to_owned(),
                Dimension::Brand,
                brand.to_owned(),
                site("a"),
            ),
            idr,
            figures(n),
            new,
        )
    };
    let stored = |store: Arc<dyn Store>| async move {
        let t = store.load_totals().await.expect("load");
        let rows: Vec<(String, u64)> = t
            .book
            .segment_sites()
            .into_iter()
            .map(|((_, _, k, _), list)| (k, list[0].1.sale_count))
            .collect();
        (t.applied, rows)
    };
    let apply = |from: u64, rows: Vec<_>| {
        let store = store.clone();
        async move {
            let changes = Changes {
                segment_sites: rows,
                ..Changes::default()
            };
            store
                .apply_totals(from, from, &changes, UnixNanos::now())
                .await
        }
    };
    apply(0, vec![row("nestle", 1, true), row("unilever", 2, true)])
        .await
        .expect("new rows");
    apply(0, vec![row("nestle", 3, false), row("wings", 4, true)])
        .await
        .expect("a stored row and a new one");
    let good = vec![
        ("nestle".to_owned(), 3),
        ("unilever".to_owned(), 2),
        ("wings".to_owned(), 4),
    ];
    assert_eq!(stored(store.clone()).await, (0, good));

    // The book wrong both ways: a stored row said new, a missing row said stored.
    let wrong_new = apply(0, vec![row("unilever", 5, true), row("mayora", 6, false)]).await;
    let wrong_stored = apply(0, vec![row("orang-tua", 7, false)]).await;
    wrong_stored.expect("a missing row said stored is inserted");
    let rows = match backend {
        Backend::Postgres => {
            assert!(
                matches!(wrong_new, Err(StorageError::Database(_))),
                "{wrong_new:?}"
            );
            // The first apply wrote nothing (not even its upsert of "mayora").
            vec![
                ("nestle".to_owned(), 3),
                ("orang-tua".to_owned(), 7),
                ("unilever".to_owned(), 2),
                ("wings".to_owned(), 4),
            ]
        }
        Backend::Sqlite => {
            wrong_new.expect("SQLite upserts");
            vec![
                ("mayora".to_owned(), 6),
                ("nestle".to_owned(), 3),
                ("orang-tua".to_owned(), 7),
                ("unilever".to_owned(), 5),
                ("wings".to_owned(), 4),
            ]
        }
    };
    assert_eq!(stored(store.clone()).await, (0, rows));
}

/// An apply's site totals, all in IDR: (site, sales), each sale of 100.
fn site_totals(rows: &[(&str, u64)]) -> saleboard_domain::totals::Changes {
    let idr = Currency::parse("IDR").expect("IDR");
    saleboard_domain::totals::Changes {
        totals: rows
            .iter()
            .map(|(s, n)| {
                (
                    ("test".to_owned(), site(s), idr),
                    saleboard_domain::totals::CurrencyTotals {
                        sale_count: *n,
                        gross_minor: i128::from(*n) * 100,
                        refund_count: 0,
                        refunded_minor: 0,
                    },
                )
            })
            .collect(),
        ..saleboard_domain::totals::Changes::default()
    }
}

/// What the board holds after a read: its sites and every total, merged as the board does.
#[derive(Debug, Default)]
struct HeldRead {
    applied: u64,
    breakdown_applied: u64,
    sites_version: u64,
    sites: Vec<saleboard_storage::SiteRecord>,
    totals: saleboard_storage::EventTotals,
    disabled_origins: Vec<(SiteId, Vec<saleboard_storage::SegmentSiteRow>)>,
}

impl HeldRead {
    fn take(&mut self, data: &saleboard_storage::BoardData) {
        self.applied = data.applied;
        self.breakdown_applied = data.segments.applied;
        self.disabled_origins
            .clone_from(&data.segments.disabled_origins);
        self.sites_version = data.sites_version;
        if let Some(sites) = &data.sites {
            self.sites.clone_from(sites);
        }
        if data.totals_full {
            self.totals.clear();
        }
        for (s, c, t) in &data.totals {
            self.totals.entry(s.clone()).or_default().insert(*c, *t);
        }
    }

    fn cursor(&self) -> saleboard_storage::BoardCursor<'_> {
        saleboard_storage::BoardCursor {
            event_id: "test",
            applied: self.applied,
            breakdown_applied: self.breakdown_applied,
            sites_version: self.sites_version,
            sites: &self.sites,
            totals: &self.totals,
            disabled_origins: &self.disabled_origins,
        }
    }
}

/// (site, sales) of a read's totals, by site.
fn sales(data: &saleboard_storage::BoardData) -> Vec<(String, u64)> {
    let mut rows: Vec<_> = data
        .totals
        .iter()
        .map(|(s, _, t)| (s.to_string(), t.sale_count))
        .collect();
    rows.sort();
    rows
}

fn site_ids(data: &saleboard_storage::BoardData) -> Option<Vec<(String, bool)>> {
    data.sites.as_ref().map(|sites| {
        sites
            .iter()
            .map(|s| (s.site_id.to_string(), s.disabled_at.is_some()))
            .collect()
    })
}

/// The leaderboard's read with a cursor takes only what changed since it (issue 26): the site
/// totals changed by later applies, the sites only when one was created, enabled or disabled;
/// without a cursor (or for another event) everything. The disabled sites' breakdown rows are
/// read again when a site is disabled or its totals move, judged on the merged totals.
async fn board_reads_only_what_changed(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let owned = |rows: &[(&str, u64)]| -> Vec<(String, u64)> {
        rows.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    let yes = |rows: &[(&str, bool)]| -> Option<Vec<(String, bool)>> {
        Some(rows.iter().map(|(s, d)| ((*s).to_owned(), *d)).collect())
    };
    store
        .apply_totals(0, 1, &site_totals(&[("a", 1), ("b", 2)]), UnixNanos::now())
        .await
        .expect("apply");
    let mut held = HeldRead::default();
    let first = store.read_board(None, None).await.expect("read");
    assert!(first.totals_full && first.segments.full);
    assert_eq!(sales(&first), owned(&[("a", 1), ("b", 2)]));
    assert_eq!(site_ids(&first), yes(&[("a", false), ("b", false)]));
    held.take(&first);

    // Nothing changed: nothing read.
    let idle = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert!(
        !idle.totals_full && idle.totals.is_empty(),
        "{:?}",
        idle.totals
    );
    assert_eq!(site_ids(&idle), None, "the sites did not change");
    held.take(&idle);

    // Two applies change a, then c's first total: those alone come back.
    store
        .apply_totals(1, 2, &site_totals(&[("a", 3)]), UnixNanos::now())
        .await
        .expect("apply");
    store
        .create_site(&site("c"), "c", UnixNanos(5), ok(&call()))
        .await
        .expect("site");
    store
        .apply_totals(2, 3, &site_totals(&[("c", 4)]), UnixNanos::now())
        .await
        .expect("apply");
    let delta = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert!(!delta.totals_full);
    assert_eq!(sales(&delta), owned(&[("a", 3), ("c", 4)]));
    assert_eq!(
        site_ids(&delta),
        yes(&[("a", false), ("b", false), ("c", false)]),
        "a site was created"
    );
    assert_eq!(delta.applied, 3);
    held.take(&delta);
    let all = store.read_board(None, None).await.expect("read");
    assert!(all.totals_full);
    assert_eq!(sales(&all), owned(&[("a", 3), ("b", 2), ("c", 4)]));
    assert!(all.sites.is_some(), "without a cursor the sites are read");
    let merged: Vec<(String, u64)> = held
        .totals
        .iter()
        .map(|(s, per)| (s.to_string(), per.values().map(|t| t.sale_count).sum()))
        .collect();
    assert_eq!(merged, sales(&all), "the merged totals are the stored ones");
    // A cursor of another event counts for nothing.
    let other = saleboard_storage::BoardCursor {
        event_id: "another",
        ..held.cursor()
    };
    let again = store.read_board(None, Some(other)).await.expect("read");
    assert!(again.totals_full && again.segments.full && again.sites.is_some());
    assert_eq!(sales(&again), sales(&all));

    // Disabling b (whose totals did not move) moves the version: the sites come back, and
    // b's held totals make it a disabled site whose rows are read.
    let disabled = store
        .set_site_enabled(&site("b"), false, UnixNanos(10), ok(&call()))
        .await
        .expect("disable");
    assert_eq!(disabled.disabled_at, Some(UnixNanos(10)));
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert!(read.totals.is_empty());
    assert_eq!(
        site_ids(&read),
        yes(&[("a", false), ("b", true), ("c", false)])
    );
    let disabled_sales: Vec<(String, u64)> = read
        .segments
        .disabled_totals
        .iter()
        .map(|(s, _, t)| (s.to_string(), t.sale_count))
        .collect();
    assert_eq!(disabled_sales, owned(&[("b", 2)]));
    let reread: Vec<String> = read
        .segments
        .disabled
        .iter()
        .map(|(s, _)| s.to_string())
        .collect();
    assert_eq!(reread, ["b"], "a newly disabled site's rows are read");
    held.take(&read);

    // Disabled again: nothing changes, not even the version; its rows are not read again.
    let twice = store
        .set_site_enabled(&site("b"), false, UnixNanos(20), ok(&call()))
        .await
        .expect("disable twice");
    assert_eq!(
        twice.disabled_at,
        Some(UnixNanos(10)),
        "the first time stays"
    );
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert_eq!(site_ids(&read), None);
    assert_eq!(read.segments.disabled_totals.len(), 1);
    assert!(read.segments.disabled.is_empty());
    held.take(&read);

    // Its totals move: its hourly rows are read again; its breakdown rows, which carry their
    // own watermark, only once its origin rows move.
    store
        .apply_totals(3, 4, &site_totals(&[("b", 6)]), UnixNanos::now())
        .await
        .expect("apply");
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert_eq!(sales(&read), owned(&[("b", 6)]));
    assert_eq!(read.segments.disabled_hourly.len(), 1);
    assert!(read.segments.disabled.is_empty());
    assert_eq!(read.segments.disabled_totals[0].2.sale_count, 6);
    held.take(&read);
    let idr = Currency::parse("IDR").expect("IDR");
    let origin_moved = saleboard_domain::totals::Changes {
        segment_sites: vec![(
            (
                "test".to_owned(),
                saleboard_domain::Dimension::Origin,
                String::new(),
                site("b"),
            ),
            idr,
            saleboard_domain::totals::CurrencyTotals {
                sale_count: 6,
                gross_minor: 600,
                refund_count: 0,
                refunded_minor: 0,
            },
            true,
        )],
        breakdowns: true,
        ..saleboard_domain::totals::Changes::default()
    };
    store
        .apply_totals(4, 4, &origin_moved, UnixNanos::now())
        .await
        .expect("apply");
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert!(read.totals.is_empty() && read.segments.disabled_hourly.is_empty());
    assert_eq!(read.segments.disabled.len(), 1, "its breakdown rows moved");
    assert_eq!(read.segments.applied, 4);
    held.take(&read);

    // Enabled: the sites come back, no disabled site is left.
    store
        .set_site_enabled(&site("b"), true, UnixNanos(30), ok(&call()))
        .await
        .expect("enable");
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert_eq!(
        site_ids(&read),
        yes(&[("a", false), ("b", false), ("c", false)])
    );
    assert!(read.segments.disabled_totals.is_empty());
    held.take(&read);
    // Enabled twice, or an unknown site: nothing to read.
    store
        .set_site_enabled(&site("b"), true, UnixNanos(40), ok(&call()))
        .await
        .expect("enable twice");
    assert!(matches!(
        store
            .set_site_enabled(&site("zz"), true, UnixNanos(40), ok(&call()))
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .create_site(&site("a"), "a", UnixNanos(40), ok(&call()))
            .await,
        Err(StorageError::AlreadyExists { .. })
    ));
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert_eq!(site_ids(&read), None, "no call above changed a site");
}

/// A database with sites and totals from before the incremental board migrates: its totals
/// are read in full without a cursor, and a site created after it moves the new version.
async fn a_database_from_before_the_incremental_board_migrates(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let previous = match backend {
        Backend::Postgres => 10,
        Backend::Sqlite => 9,
    };
    // Written as that release did (this code bumps a version and appends to an audit log it
    // does not have).
    let old = db.store_until(previous).await;
    db.execute("INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ('a', 'a', 1)")
        .await;
    let event = test_event(0);
    db.execute(&format!(
        "INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, \
         reporting_currency) VALUES ('{}', 'Test', {}, {}, {}, 'IDR')",
        event.event_id, event.starts_at.0, event.ends_at.0, event.closes_at.0
    ))
    .await;
    drop(old);
    db.execute(
        "INSERT INTO site_totals (event_id, site_id, currency, sale_count, gross_minor, \
         refund_count, refunded_minor, net_minor) VALUES ('test', 'a', 'IDR', 1, '5000', 0, \
         '0', '5000')",
    )
    .await;
    db.execute("UPDATE aggregator_state SET applied_position = 1 WHERE id = 1")
        .await;

    let store = db.store().await;
    let mut held = HeldRead::default();
    let read = store.read_board(None, None).await.expect("read");
    assert_eq!(sales(&read), [("a".to_owned(), 1)]);
    assert_eq!(site_ids(&read), Some(vec![("a".to_owned(), false)]));
    held.take(&read);
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert!(read.totals.is_empty() && read.sites.is_none());
    store
        .create_site(&site("b"), "b", UnixNanos(2), ok(&call()))
        .await
        .expect("site");
    let read = store
        .read_board(None, Some(held.cursor()))
        .await
        .expect("read");
    assert_eq!(
        site_ids(&read),
        Some(vec![("a".to_owned(), false), ("b".to_owned(), false)])
    );
}

/// Admin writes and refusals from many tasks at once: one entry each, numbered 1, 2, 3, ...
/// without gaps in commit order, chained; a write refused by storage leaves no entry of its
/// own (the caller records the refusal).
async fn concurrent_admin_writes_chain_their_entries(backend: Backend) {
    use saleboard_domain::audit::ChainCheck;
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let call = AuditCall {
                rpc: "CreateSite".into(),
                organizer: format!("org-{i}"),
                ..call()
            };
            if i % 4 == 0 {
                store
                    .record_refusal(&call, "INVALID_ARGUMENT no")
                    .await
                    .map(|_| ())
            } else {
                let outcome = |r: &saleboard_storage::SiteRecord| format!("OK {}", r.site_id);
                store
                    .create_site(
                        &site(&format!("s{i}")),
                        "s",
                        UnixNanos(2),
                        Audit::new(&call, &outcome),
                    )
                    .await
                    .map(|_| ())
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("write");
    }
    let taken = store
        .create_site(&site("a"), "again", UnixNanos(3), ok(&call()))
        .await;
    assert!(matches!(taken, Err(StorageError::AlreadyExists { .. })));

    let entries = store
        .audit_log(&saleboard_storage::AuditQuery {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("audit log");
    // `open` made three entries (two sites, the event).
    assert_eq!(entries.len(), 3 + 16);
    let mut check = ChainCheck::default();
    for e in &entries {
        check
            .check(e)
            .unwrap_or_else(|why| panic!("entry {}: {why}", e.position));
    }
    let (head, sha256) = store.audit_head().await.expect("head");
    assert_eq!(head, 19);
    assert_eq!(Some(&sha256), entries.last().map(|e| &e.sha256));
    assert!(
        entries
            .iter()
            .any(|e| e.outcome == "OK s5" && e.organizer == "org-5")
    );

    let page = store
        .audit_log(&saleboard_storage::AuditQuery {
            after: 3,
            organizer: Some("org-5".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("filtered");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].organizer, "org-5");
}

/// A pending action of `kind` on `site` in the test event, proposed by `by`.
fn proposal(id: &str, kind: ActionKind, site_id: &str, by: &str) -> ActionRecord {
    ActionRecord {
        action_id: id.into(),
        kind,
        state: ActionState::Pending,
        event_id: "test".into(),
        site_id: site(site_id),
        reason: "refunds after the window".into(),
        proposed_by: by.into(),
        proposed_at: UnixNanos(10),
        decided_by: None,
        decided_at: None,
        decision_note: String::new(),
        adjustment: saleboard_storage::Adjustment::default(),
    }
}

/// Four eyes in storage: a proposal is pending and changes nothing; its proposer cannot decide
/// it; another organizer's approval holds the site (read with the sites by the board, which
/// reads them again because the version moved); a decision is final; one pending action per
/// site; a release puts the site back; unknown sites, events and actions are named.
async fn actions_hold_and_release_with_four_eyes(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let decide = |id: &'static str, approve: bool, by: &'static str| ActionDecision {
        action_id: id,
        approve,
        organizer: by,
        note: "checked",
        at: UnixNanos(20),
    };
    let before = store.read_board(Some("test"), None).await.expect("board");
    assert_eq!(before.held, Some(Vec::new()));

    let hold = store
        .propose_action(
            &proposal("act-1", ActionKind::Hold, "a", "ana"),
            ok(&call()),
        )
        .await
        .expect("proposed");
    assert_eq!(hold.state, ActionState::Pending);
    assert_eq!(hold.decided_by, None);
    assert!(store.held_sites("test").await.expect("held").is_empty());
    // One pending action per site, of either kind.
    let again = store
        .propose_action(
            &proposal("act-2", ActionKind::Hold, "a", "budi"),
            ok(&call()),
        )
        .await;
    assert!(
        matches!(again, Err(StorageError::Action(ActionRefusal::Pending { ref action_id, .. })) if action_id == "act-1"),
        "{again:?}"
    );
    // Nothing to release.
    let release = store
        .propose_action(
            &proposal("act-3", ActionKind::Release, "b", "ana"),
            ok(&call()),
        )
        .await;
    assert!(
        matches!(
            release,
            Err(StorageError::Action(ActionRefusal::AlreadySo {
                held: false,
                ..
            }))
        ),
        "{release:?}"
    );
    for (bad, what) in [
        (proposal("act-4", ActionKind::Hold, "nobody", "ana"), "site"),
        (
            ActionRecord {
                event_id: "no-such-event".into(),
                ..proposal("act-5", ActionKind::Hold, "b", "ana")
            },
            "event",
        ),
    ] {
        let refused = store.propose_action(&bad, ok(&call())).await;
        assert!(
            matches!(refused, Err(StorageError::NotFound { what: w, .. }) if w == what),
            "{refused:?}"
        );
    }

    // The proposer cannot decide it: nothing changes.
    let own = store
        .decide_action(&decide("act-1", true, "ana"), ok(&call()))
        .await;
    assert!(
        matches!(own, Err(StorageError::Action(ref r)) if r.is_permission()),
        "{own:?}"
    );
    assert!(store.held_sites("test").await.expect("held").is_empty());
    let missing = store
        .decide_action(&decide("act-404", true, "budi"), ok(&call()))
        .await;
    assert!(
        matches!(missing, Err(StorageError::NotFound { what: "action", .. })),
        "{missing:?}"
    );

    let cursor_data = store.read_board(Some("test"), None).await.expect("board");
    let applied = store
        .decide_action(&decide("act-1", true, "budi"), ok(&call()))
        .await
        .expect("approved");
    assert_eq!(applied.state, ActionState::Applied);
    assert_eq!(applied.decided_by.as_deref(), Some("budi"));
    assert_eq!(applied.decided_at, Some(UnixNanos(20)));
    assert_eq!(
        store.held_sites("test").await.expect("held"),
        vec![site("a")]
    );
    // The sites' version moved: a board read with the last cursor reads sites and holds again.
    let sites = cursor_data.sites.clone().expect("sites");
    let totals = saleboard_storage::EventTotals::new();
    let after = store
        .read_board(
            Some("test"),
            Some(saleboard_storage::BoardCursor {
                event_id: "test",
                applied: cursor_data.applied,
                breakdown_applied: cursor_data.segments.applied,
                sites_version: cursor_data.sites_version,
                sites: &sites,
                totals: &totals,
                disabled_origins: &[],
            }),
        )
        .await
        .expect("board");
    assert_eq!(after.held, Some(vec![site("a")]));
    // A decision is final, whoever asks.
    for who in ["budi", "ana", "citra"] {
        let twice = store
            .decide_action(&decide("act-1", false, who), ok(&call()))
            .await;
        assert!(
            matches!(
                twice,
                Err(StorageError::Action(ActionRefusal::Decided {
                    state: ActionState::Applied,
                    ..
                }))
            ),
            "{twice:?}"
        );
    }
    // Held already: a second hold is refused; a release is proposed, rejected, then approved.
    let held_again = store
        .propose_action(
            &proposal("act-6", ActionKind::Hold, "a", "citra"),
            ok(&call()),
        )
        .await;
    assert!(
        matches!(
            held_again,
            Err(StorageError::Action(ActionRefusal::AlreadySo {
                held: true,
                ..
            }))
        ),
        "{held_again:?}"
    );
    store
        .propose_action(
            &proposal("act-7", ActionKind::Release, "a", "citra"),
            ok(&call()),
        )
        .await
        .expect("release proposed");
    let rejected = store
        .decide_action(&decide("act-7", false, "ana"), ok(&call()))
        .await
        .expect("rejected");
    assert_eq!(rejected.state, ActionState::Rejected);
    assert_eq!(rejected.decision_note, "checked");
    assert_eq!(
        store.held_sites("test").await.expect("held"),
        vec![site("a")]
    );
    store
        .propose_action(
            &proposal("act-8", ActionKind::Release, "a", "citra"),
            ok(&call()),
        )
        .await
        .expect("release proposed again");
    store
        .decide_action(&decide("act-8", true, "ana"), ok(&call()))
        .await
        .expect("released");
    assert!(store.held_sites("test").await.expect("held").is_empty());

    let all = store.list_actions(None, None).await.expect("actions");
    let ids: Vec<&str> = all.iter().map(|a| a.action_id.as_str()).collect();
    // Newest first (equal times: by id, descending).
    assert_eq!(ids, ["act-8", "act-7", "act-1"]);
    let rejected_only = store
        .list_actions(Some("test"), Some(ActionState::Rejected))
        .await
        .expect("rejected");
    assert_eq!(rejected_only.len(), 1);
    assert_eq!(rejected_only[0].action_id, "act-7");
    assert!(
        store
            .list_actions(Some("other"), None)
            .await
            .expect("none")
            .is_empty()
    );
}

fn flag_record(id: &str, site_id: &str, rule: Rule, watermark: u64) -> FlagRecord {
    FlagRecord {
        flag_id: id.into(),
        event_id: "test".into(),
        site_id: site(site_id),
        rule,
        rule_version: 1,
        severity: rule.severity(),
        state: FlagState::Open,
        statistic: "0.400000".into(),
        threshold: "0.130000".into(),
        national: "0.030000".into(),
        inputs_json: r#"[["site_gross_minor","100000"]]"#.into(),
        watermark,
        raised_at: UnixNanos(i64::try_from(watermark).expect("small")),
        cleared_at_watermark: None,
        reviewed_by: None,
        reviewed_at: None,
        note: String::new(),
        // Past i64::MAX: the seed's 64 bits round-trip through a signed column.
        sample_seed: u64::MAX - 7,
    }
}

/// Flags in storage: one holding flag per (site, rule) however many evaluations store it
/// (several leaderboards may), cleared with a position and kept, a new one raised after;
/// filters; a review moves the sites' version and the board reads the site under review.
async fn flags_are_kept_once_cleared_and_reviewed(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let first = [flag_record("flg-1", "a", Rule::RefundRate, 10)];
    for _ in 0..2 {
        store
            .record_flags(&FlagEvaluation {
                event_id: "test",
                watermark: 10,
                at: UnixNanos(1),
                raised: &first,
                cleared: &[],
                undecided_sites: 1,
            })
            .await
            .expect("recorded");
    }
    // The same site and rule from another evaluation (another id): still one holding flag.
    let again = [flag_record("flg-2", "a", Rule::RefundRate, 11)];
    store
        .record_flags(&FlagEvaluation {
            event_id: "test",
            watermark: 11,
            at: UnixNanos(2),
            raised: &again,
            cleared: &[],
            undecided_sites: 0,
        })
        .await
        .expect("recorded");
    let holding = store.holding_flags("test").await.expect("holding");
    assert_eq!(holding.len(), 1);
    assert_eq!(holding[0], flag_record("flg-1", "a", Rule::RefundRate, 10));
    let (listed, undecided) = store.list_flags("test", None, None).await.expect("listed");
    assert_eq!((listed.len(), undecided), (1, 0));

    // Cleared at 12: kept; a raise after that is a new flag.
    store
        .record_flags(&FlagEvaluation {
            event_id: "test",
            watermark: 12,
            at: UnixNanos(3),
            raised: &[],
            cleared: &["flg-1".to_owned()],
            undecided_sites: 0,
        })
        .await
        .expect("cleared");
    assert!(
        store
            .holding_flags("test")
            .await
            .expect("holding")
            .is_empty()
    );
    let later = [flag_record("flg-3", "a", Rule::RefundRate, 13)];
    store
        .record_flags(&FlagEvaluation {
            event_id: "test",
            watermark: 13,
            at: UnixNanos(4),
            raised: &later,
            cleared: &[],
            undecided_sites: 0,
        })
        .await
        .expect("raised again");
    // A process behind (figures at 12) cannot clear what was raised at 13, nor raise again.
    store
        .record_flags(&FlagEvaluation {
            event_id: "test",
            watermark: 12,
            at: UnixNanos(5),
            raised: &[flag_record("flg-4", "b", Rule::RefundRate, 12)],
            cleared: &["flg-3".to_owned()],
            undecided_sites: 7,
        })
        .await
        .expect("an older evaluation");
    let (all, undecided) = store.list_flags("test", None, None).await.expect("all");
    assert_eq!(undecided, 0, "the stored evaluation stands");
    let ids: Vec<(&str, Option<u64>)> = all
        .iter()
        .map(|f| (f.flag_id.as_str(), f.cleared_at_watermark))
        .collect();
    assert_eq!(ids, [("flg-3", None), ("flg-1", Some(12))]);
    assert!(
        store
            .list_flags("test", Some(&site("b")), None)
            .await
            .expect("b")
            .0
            .is_empty()
    );

    // A review: audited by the caller's entry, moves the sites' version.
    let before = store.read_board(Some("test"), None).await.expect("board");
    assert_eq!(before.under_review, Some(Vec::new()));
    let reviewed = store
        .review_flag(
            &FlagReview {
                flag_id: "flg-3",
                state: FlagState::UnderReview,
                note: "asked",
                organizer: "ana",
                at: UnixNanos(5),
            },
            ok(&call()),
        )
        .await
        .expect("reviewed");
    assert_eq!(reviewed.state, FlagState::UnderReview);
    assert_eq!(reviewed.reviewed_by.as_deref(), Some("ana"));
    let after = store.read_board(Some("test"), None).await.expect("board");
    assert!(after.sites_version > before.sites_version);
    assert_eq!(after.under_review, Some(vec![site("a")]));
    let under = store
        .list_flags("test", None, Some(FlagState::UnderReview))
        .await
        .expect("under review");
    assert_eq!(under.0.len(), 1);
    let missing = store
        .review_flag(
            &FlagReview {
                flag_id: "flg-404",
                state: FlagState::Cleared,
                note: "x",
                organizer: "ana",
                at: UnixNanos(6),
            },
            ok(&call()),
        )
        .await;
    assert!(
        matches!(missing, Err(StorageError::NotFound { what: "flag", .. })),
        "{missing:?}"
    );
    assert_eq!(
        store
            .flag("flg-1")
            .await
            .expect("flag")
            .map(|f| f.cleared_at_watermark),
        Some(Some(12))
    );
}

/// A proposed adjustment of `ids` on site `site_id` in the test event, by `by`.
fn adjustment(id: &str, site_id: &str, ids: &[&str], by: &str) -> ActionRecord {
    ActionRecord {
        adjustment: saleboard_storage::Adjustment {
            transaction_ids: ids.iter().map(|&i| i.to_owned()).collect(),
            flag_id: String::new(),
            ..saleboard_storage::Adjustment::default()
        },
        reason: "the site could not justify them".into(),
        ..proposal(id, ActionKind::Adjust, site_id, by)
    }
}

/// Every row of the ledger folded as the aggregator folds them: the test event's totals of a
/// site in IDR.
async fn folded(store: &Arc<dyn Store>, site_id: &str) -> saleboard_domain::totals::CurrencyTotals {
    let mut book = saleboard_domain::totals::TotalsBook::default();
    for row in store.read_ledger(0, 10_000).await.expect("ledger") {
        book.apply(&row.event_id, &row.site, &row.tx)
            .expect("folds");
    }
    book.totals()
        .get(&(
            "test".to_owned(),
            site(site_id),
            Currency::parse("IDR").expect("IDR"),
        ))
        .copied()
        .unwrap_or_default()
}

/// A site's folded (sales, gross, refunds, refunded) in IDR in the test event.
async fn figures(store: &Arc<dyn Store>, site_id: &str) -> (u64, i128, u64, i128) {
    let t = folded(store, site_id).await;
    (
        t.sale_count,
        t.gross_minor,
        t.refund_count,
        t.refunded_minor,
    )
}

/// Organizers' adjustments in storage: proposed against the ledger as it is (an unknown id,
/// refused naming it), decided with four eyes, applied by appending a void per row (a sale's
/// refunds with it) at the next positions, each row voided once; a refund of a voided sale is
/// REJECTED SALE_VOIDED, and the fold of the ledger no longer counts what was voided.
async fn adjustments_append_voids_with_four_eyes(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let decisions = store
        .append(&[
            sale("a", "S1", 100),
            sale("a", "S2", 50),
            candidate("a", "R1", Kind::Refund, 30, Some("S1")),
            sale("b", "S1", 70),
        ])
        .await
        .expect("append");
    assert!(
        decisions.iter().all(|d| reason(d).is_none()),
        "{decisions:?}"
    );
    let unknown = store
        .propose_action(&adjustment("act-0", "a", &["S2", "ZZ"], "ana"), ok(&call()))
        .await;
    assert!(
        matches!(unknown, Err(StorageError::Adjust(ref r)) if r.is_unknown() && r.to_string().contains("transaction_ids[1] \"ZZ\"")),
        "{unknown:?}"
    );
    let proposed = store
        .propose_action(&adjustment("act-1", "a", &["S1"], "ana"), ok(&call()))
        .await
        .expect("proposed");
    assert_eq!(proposed.state, ActionState::Pending);
    assert_eq!(proposed.kind, ActionKind::Adjust);
    assert_eq!(proposed.adjustment.transaction_ids, ["S1"]);
    assert_eq!(proposed.adjustment.voided_rows, 0);
    // Nothing changes while it is pending; its proposer cannot approve it.
    assert_eq!(store.ledger_head().await.expect("head"), 4);
    let decide = |by: &'static str| ActionDecision {
        action_id: "act-1",
        approve: true,
        organizer: by,
        note: "",
        at: UnixNanos(30),
    };
    let own = store.decide_action(&decide("ana"), ok(&call())).await;
    assert!(
        matches!(
            own,
            Err(StorageError::Action(ActionRefusal::OwnAction { .. }))
        ),
        "{own:?}"
    );
    assert_eq!(store.ledger_head().await.expect("head"), 4);
    let applied = store
        .decide_action(&decide("budi"), ok(&call()))
        .await
        .expect("approved");
    assert_eq!(applied.state, ActionState::Applied);
    assert_eq!(applied.decided_by.as_deref(), Some("budi"));
    assert_eq!(
        (
            applied.adjustment.voided_rows,
            applied.adjustment.through_position
        ),
        (2, 6)
    );
    let voids = store.read_ledger(4, 10).await.expect("ledger");
    let got: Vec<_> = voids
        .iter()
        .map(|r| {
            (
                r.position,
                r.site.as_str(),
                r.tx.id.as_str(),
                r.tx.kind(),
                r.tx.nature.names().map(TransactionId::as_str),
                r.tx.amount_minor,
                r.key_id.as_str(),
                r.received_at,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                5,
                "a",
                "void/S1",
                Kind::VoidSale,
                Some("S1"),
                100,
                "act-1",
                UnixNanos(2_000)
            ),
            (
                6,
                "a",
                "void/R1",
                Kind::VoidRefund,
                Some("R1"),
                30,
                "act-1",
                UnixNanos(2_000)
            ),
        ]
    );
    // The same content as its target but the kind and id: every figure takes away exactly it.
    let sale_row = store.read_ledger(0, 1).await.expect("ledger");
    assert_eq!(voids[0].tx.segments, sale_row[0].tx.segments);
    assert_eq!(voids[0].tx.store_id, sale_row[0].tx.store_id);
    assert_eq!(voids[0].tx.occurred_at, sale_row[0].tx.occurred_at);
    assert_eq!(figures(&store, "a").await, (1, 50, 0, 0));
    let b = folded(&store, "b").await;
    assert_eq!(
        (b.sale_count, b.gross_minor),
        (1, 70),
        "another site's S1 stands"
    );
    // A refund of the voided sale is refused; of another sale, or another site's S1, taken.
    let after = store
        .append(&[
            candidate("a", "R2", Kind::Refund, 1, Some("S1")),
            candidate("a", "R3", Kind::Refund, 1, Some("S2")),
            candidate("b", "R2", Kind::Refund, 1, Some("S1")),
            sale("a", "S1", 100),
        ])
        .await
        .expect("append");
    assert_eq!(reason(&after[0]), Some(Reason::SaleVoided));
    assert_eq!(reason(&after[1]), None);
    assert_eq!(reason(&after[2]), None);
    // The voided sale sent again is the stored one (its first version stands).
    assert!(
        matches!(after[3], Decision::Duplicate { position: 1, .. }),
        "{:?}",
        after[3]
    );
    // Each row voided once: the sale, or its refund (voided with it).
    for (id, ids) in [("act-2", ["S1"]), ("act-3", ["R1"])] {
        let twice = store
            .propose_action(&adjustment(id, "a", &ids, "ana"), ok(&call()))
            .await;
        assert!(
            matches!(
                twice,
                Err(StorageError::Adjust(
                    saleboard_domain::adjust::AdjustRefusal::Voided { .. }
                ))
            ),
            "{twice:?}"
        );
    }
    // A refund voided alone.
    store
        .propose_action(&adjustment("act-4", "a", &["R3"], "ana"), ok(&call()))
        .await
        .expect("proposed");
    let listed = store
        .list_actions(Some("test"), None)
        .await
        .expect("actions");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].adjustment.transaction_ids, ["R3"]);
    assert_eq!(listed[1].adjustment.voided_rows, 2);
    let refund_only = store
        .decide_action(
            &ActionDecision {
                action_id: "act-4",
                ..decide("budi")
            },
            ok(&call()),
        )
        .await
        .expect("approved");
    assert_eq!(refund_only.adjustment.voided_rows, 1);
    assert_eq!(figures(&store, "a").await, (1, 50, 0, 0), "R3 voided alone");
    // A sample's population: the sales not voided up to its position (stable afterwards).
    assert_eq!(
        store.sale_ids("test", &site("a"), 4).await.expect("ids"),
        ["S1", "S2"]
    );
    let head = store.ledger_head().await.expect("head");
    assert_eq!(
        store.sale_ids("test", &site("a"), head).await.expect("ids"),
        ["S2"]
    );
    // The approval plans again against the ledger as it is then: a refund stored between
    // the proposal and the approval is voided with its sale.
    store.append(&[sale("a", "S3", 40)]).await.expect("append");
    store
        .propose_action(&adjustment("act-5", "a", &["S3"], "ana"), ok(&call()))
        .await
        .expect("proposed");
    let late_refund = store
        .append(&[candidate("a", "R5", Kind::Refund, 10, Some("S3"))])
        .await
        .expect("append");
    assert_eq!(reason(&late_refund[0]), None);
    let with_refund = store
        .decide_action(
            &ActionDecision {
                action_id: "act-5",
                ..decide("budi")
            },
            ok(&call()),
        )
        .await
        .expect("approved");
    assert_eq!(with_refund.adjustment.voided_rows, 2, "S3 and R5");
    assert_eq!(figures(&store, "a").await, (1, 50, 0, 0));
}

/// A database from before voids (its ledger rows, a hold) migrates: rows and hold are as
/// they were, and an adjustment voids an old row.
async fn a_database_from_before_voids_migrates(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let previous = match backend {
        Backend::Postgres => 15,
        Backend::Sqlite => 14,
    };
    let old = db.store_until(previous).await;
    old.create_site(&site("a"), "a", UnixNanos(1), ok(&call()))
        .await
        .expect("site");
    old.set_event(&test_event(0), UnixNanos::now(), ok(&call()))
        .await
        .expect("event");
    old.append(&[
        sale("a", "S1", 100),
        candidate("a", "R1", Kind::Refund, 30, Some("S1")),
    ])
    .await
    .expect("append");
    db.execute(
        "INSERT INTO admin_actions (action_id, kind, state, event_id, site_id, reason, \
         proposed_by, proposed_at_ns, decided_by, decided_at_ns) VALUES ('act-old', 'hold', \
         'applied', 'test', 'a', 'r', 'ana', 1, 'budi', 2)",
    )
    .await;
    db.execute(
        "INSERT INTO site_holds (event_id, site_id, action_id, held_at_ns) \
         VALUES ('test', 'a', 'act-old', 2)",
    )
    .await;
    drop(old);
    let store = db.store().await;
    let rows = store.read_ledger(0, 10).await.expect("ledger");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1].tx.refund_of().map(TransactionId::as_str),
        Some("S1")
    );
    assert_eq!(store.held_sites("test").await.expect("held"), [site("a")]);
    let old_hold = store.list_actions(None, None).await.expect("actions");
    assert_eq!(old_hold[0].kind, ActionKind::Hold);
    assert_eq!(
        old_hold[0].adjustment,
        saleboard_storage::Adjustment::default()
    );
    store
        .propose_action(&adjustment("act-1", "a", &["S1"], "ana"), ok(&call()))
        .await
        .expect("proposed");
    let applied = store
        .decide_action(
            &ActionDecision {
                action_id: "act-1",
                approve: true,
                organizer: "budi",
                note: "",
                at: UnixNanos(3),
            },
            ok(&call()),
        )
        .await
        .expect("approved");
    assert_eq!(applied.adjustment.voided_rows, 2);
    assert_eq!(folded(&store, "a").await, Default::default());
    // The rebuilt ledger is still append-only.
    assert_append_only(&db, backend).await;
}

backend_tests!(
    flags_are_kept_once_cleared_and_reviewed,
    actions_hold_and_release_with_four_eyes,
    concurrent_admin_writes_chain_their_entries,
    sites_and_keys,
    event_and_rates,
    append_decides_and_stores,
    ledger_is_append_only,
    concurrent_writers_keep_positions_gapless,
    stored_ids_are_never_taken_for_new,
    migrate_is_idempotent,
    breakdown_rows_follow_the_book,
    late_figures_follow_the_book,
    board_reads_only_what_changed,
    a_database_from_before_the_incremental_board_migrates,
    adjustments_append_voids_with_four_eyes,
    a_database_from_before_voids_migrates,
);

/// The benchmarks' COPY baseline loads rows in the ledger's current columns (event and segments
/// included), as CSV and in the binary format ingest writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_copy_in_loads_the_ledger_columns() {
    use saleboard_storage::postgres::CopyFormat;
    use saleboard_storage::{AdminStore as _, LedgerStore as _};
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let _migrated = db.store().await;
    let pg = saleboard_storage::postgres::PgStore::connect(&db.url, 2)
        .await
        .expect("connect");
    pg.create_site(&site("a"), "a", UnixNanos(1), ok(&call()))
        .await
        .expect("site");
    let csv = "1,a,T1,s,1,IDR,100,1000,\"\",key_copy,2000,bench-copy,brand-1,food,2\n\
               2,a,T2,s,1,IDR,200,1000,\"\",key_copy,2000,bench-copy,\"\",\"\",0\n";
    assert_eq!(
        pg.copy_in_ledger(csv.as_bytes(), CopyFormat::Csv, 2)
            .await
            .expect("copy"),
        2
    );
    let mut binary = saleboard_storage::pg_copy::BinaryRows::new(
        saleboard_storage::postgres::LEDGER_COPY_FIELDS,
        1,
    );
    saleboard_storage::postgres::LedgerCopyRow {
        position: 3,
        site_id: "a",
        transaction_id: "R3",
        store_id: "s",
        kind: 2,
        currency: "IDR",
        amount_minor: 50,
        occurred_at_ns: 1000,
        refund_of: "T1",
        key_id: "key_copy",
        received_at_ns: 2000,
        event_id: "bench-copy",
        brand: "brand-1",
        category: "food",
        origin: 1,
    }
    .write(&mut binary)
    .expect("row");
    assert_eq!(
        pg.copy_in_ledger(&binary.finish(), CopyFormat::Binary, 3)
            .await
            .expect("binary copy"),
        1
    );
    let rows = pg.read_ledger(0, 10).await.expect("ledger");
    let got: Vec<(u64, &str, &str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.position,
                r.tx.id.as_str(),
                r.event_id.as_str(),
                r.tx.segments.key(saleboard_domain::Dimension::Origin),
                r.tx.refund_of()
                    .map(saleboard_domain::TransactionId::as_str),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "T1", "bench-copy", "cross-border", None),
            (2, "T2", "bench-copy", "", None),
            (3, "R3", "bench-copy", "domestic", Some("T1")),
        ]
    );
}
