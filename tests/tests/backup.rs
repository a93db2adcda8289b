//! Backup and restore (issue 30, item 3), black-box with the command line on both databases: a
//! database filled through the services (three events, a baseline, rates, segments, refunds, a
//! revoked key, a disabled site, two named organizers, one revoked, a held site and a pending
//! action, and the audit log of every change) is backed up with `saleboard backup`, restored with
//! `saleboard restore` into a new database of each kind, and served again: `verify` passes,
//! every figure (leaderboard, national totals and curve, breakdowns, a site's hourly series)
//! equals the original, the keys and organizers authenticate as before, resent transactions
//! are duplicates, and the audit log is the same entry for entry, its chain going on from
//! the restored head. An audit entry altered in the file is restored as evidence, and named. A non-empty database, a truncated, an altered and a newer file are refused,
//! and a refused restore leaves nothing behind.

use std::path::Path;

use saleboard_proto::Timestamp;
use saleboard_proto::v1::{
    AdminAction, ApproveActionRequest, AuditEntry, Breakdown, CreateOrganizerRequest,
    CreateSiteRequest, Dimension, Event, ExchangeRate, FlagState, GetBreakdownRequest,
    GetLeaderboardRequest, GetNationalTotalsRequest, GetSiteTotalsRequest, IntegrityFlag,
    IntegrityPolicy, Leaderboard, ListActionsRequest, ListAuditLogRequest,
    ListIntegrityFlagsRequest, ListOrganizersRequest, NationalTotals, Organizer, Origin, Outcome,
    ReviewIntegrityFlagRequest, RevokeApiKeyRequest, RevokeOrganizerRequest,
    SetExchangeRatesRequest, SetSiteEnabledRequest, SetSiteHoldRequest, SiteTotals,
    SubmitTransactionsRequest, Transaction, WhoAmIRequest,
};
use saleboard_tests::app::admin_client;
use saleboard_tests::data::{now_secs, refund, sale};
use saleboard_tests::proc::saleboard;
use saleboard_tests::{Backend, TestApp, TestDb, backend_tests};
use tonic::Code;

fn seg(mut t: Transaction, brand: &str, category: &str, origin: Origin) -> Transaction {
    t.brand = brand.into();
    t.category = category.into();
    t.origin = origin.into();
    t
}

/// What a site pushes: sales in two currencies with segments, refunds of some.
fn transactions(prefix: &str, n: i64) -> Vec<Transaction> {
    let mut txs = Vec::new();
    for i in 0..n {
        let currency = if i % 3 == 0 { "USD" } else { "IDR" };
        let origin = if i % 2 == 0 {
            Origin::Domestic
        } else {
            Origin::CrossBorder
        };
        txs.push(seg(
            sale(&format!("{prefix}-{i}"), currency, 1_000 + i * 37),
            &format!("brand-{}", i % 4),
            if i % 5 == 0 { "" } else { "food" },
            origin,
        ));
        if i % 4 == 1 {
            txs.push(refund(
                &format!("{prefix}-r{i}"),
                &format!("{prefix}-{i}"),
                currency,
                100 + i,
            ));
        }
    }
    txs
}

async fn push(app: &TestApp, secret: &str, txs: Vec<Transaction>) -> Vec<Outcome> {
    app.ingest(secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("push")
        .into_inner()
        .results
        .into_iter()
        .map(|r| r.outcome())
        .collect()
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// What a filled database answers: every figure the services serve, without the fields that
/// name the moment (as_of) or the snapshot (page tokens).
#[derive(Debug, PartialEq)]
struct Figures {
    leaderboard: Leaderboard,
    national: NationalTotals,
    breakdowns: Vec<Breakdown>,
    site: SiteTotals,
}

async fn figures(app: &TestApp) -> Figures {
    app.settle().await;
    let mut board = app.leaderboard_as(&app.token).await;
    let mut leaderboard = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("GetLeaderboard")
        .into_inner();
    leaderboard.as_of = None;
    leaderboard.next_page_token.clear();
    let mut national = board
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("GetNationalTotals")
        .into_inner();
    national.as_of = None;
    let mut breakdowns = Vec::new();
    for dimension in [Dimension::Brand, Dimension::Category, Dimension::Origin] {
        for site_id in ["", "alpha"] {
            let mut b = board
                .get_breakdown(GetBreakdownRequest {
                    dimension: dimension.into(),
                    site_id: site_id.into(),
                    limit: 1_000,
                    ..Default::default()
                })
                .await
                .expect("GetBreakdown")
                .into_inner();
            b.as_of = None;
            b.next_page_token.clear();
            breakdowns.push(b);
        }
    }
    let mut site = board
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "alpha".into(),
            include_hourly: true,
            event_id: String::new(),
        })
        .await
        .expect("GetSiteTotals")
        .into_inner();
    site.as_of = None;
    Figures {
        leaderboard,
        national,
        breakdowns,
        site,
    }
}

/// Every named organizer, every audit entry and every organizers' action, as AdminService
/// lists them.
async fn organizers_and_log(app: &TestApp) -> (Vec<Organizer>, Vec<AuditEntry>, Vec<AdminAction>) {
    let mut admin = app.admin().await;
    let actions = admin
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    let organizers = admin
        .list_organizers(ListOrganizersRequest {})
        .await
        .expect("ListOrganizers")
        .into_inner()
        .organizers;
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_audit_log(ListAuditLogRequest {
                page_token,
                limit: 1_000,
                ..Default::default()
            })
            .await
            .expect("ListAuditLog")
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return (organizers, entries, actions);
        }
        page_token = page.next_page_token;
    }
}

/// The integrity flags of the current event, as organizers list them.
async fn flags_of(app: &TestApp) -> Vec<IntegrityFlag> {
    app.admin()
        .await
        .list_integrity_flags(ListIntegrityFlagsRequest::default())
        .await
        .expect("ListIntegrityFlags")
        .into_inner()
        .flags
}

/// The keys of a filled database: (alpha's live key, alpha's revoked key, the disabled
/// site's key), what each pushed, and the named organizers' secrets (alice's live, bob's
/// revoked).
struct Filled {
    app: TestApp,
    alpha: String,
    revoked: String,
    disabled: String,
    pushed: Vec<(String, Vec<Transaction>)>,
    alice: String,
    bob: String,
}

/// A database filled through the services.
async fn fill(backend: Backend) -> Option<Filled> {
    let app = TestApp::spawn(backend).await?;
    let mut admin = app.admin().await;
    let now = now_secs();
    admin
        .set_event(Event {
            event_id: "last-year".into(),
            display_name: "Last year".into(),
            starts_at: at(now - 400 * 86_400),
            ends_at: at(now - 399 * 86_400),
            reporting_currency: "IDR".into(),
            time_zone: "Asia/Jakarta".into(),
            ..Event::default()
        })
        .await
        .expect("SetEvent last-year");
    admin
        .set_event(Event {
            baseline_event_id: "last-year".into(),
            ..saleboard_tests::data::event()
        })
        .await
        .expect("SetEvent");
    admin
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: vec![ExchangeRate {
                currency: "USD".into(),
                rate: "15850.25".into(),
            }],
            event_id: String::new(),
        })
        .await
        .expect("SetExchangeRates");
    admin
        .set_event(Event {
            event_id: "next".into(),
            display_name: "The next one".into(),
            starts_at: at(now + 30 * 86_400),
            ends_at: at(now + 31 * 86_400),
            reporting_currency: "SGD".into(),
            ..Event::default()
        })
        .await
        .expect("SetEvent next");
    admin
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: vec![ExchangeRate {
                currency: "IDR".into(),
                rate: "0.000085".into(),
            }],
            event_id: "next".into(),
        })
        .await
        .expect("SetExchangeRates next");
    let (_, alpha) = app.site_with_key("alpha").await;
    let (old_key, revoked) = {
        let key = admin
            .create_api_key(saleboard_proto::v1::CreateApiKeyRequest {
                site_id: "alpha".into(),
            })
            .await
            .expect("CreateApiKey")
            .into_inner();
        (key.key_id, key.secret)
    };
    let (_, beta) = app.site_with_key("beta").await;
    let (_, gamma) = app.site_with_key("gamma").await;
    let mut pushed = Vec::new();
    for (secret, prefix, n) in [
        (&alpha, "a", 40),
        (&revoked, "ar", 6),
        (&beta, "b", 25),
        (&gamma, "g", 12),
    ] {
        let txs = transactions(prefix, n);
        let outcomes = push(&app, secret, txs.clone()).await;
        assert!(
            outcomes.iter().all(|o| *o == Outcome::Accepted),
            "{prefix}: {outcomes:?}"
        );
        pushed.push((secret.clone(), txs));
    }
    // Two named organizers: alice makes the last changes (one refused: the log keeps
    // refusals too), bob is revoked.
    let mut secrets = Vec::new();
    for name in ["alice", "bob"] {
        let created = admin
            .create_organizer(CreateOrganizerRequest { name: name.into() })
            .await
            .expect("CreateOrganizer")
            .into_inner();
        secrets.push(created.secret);
    }
    let mut alice_admin = admin_client(app.admin_addr, Some(&secrets[0])).await;
    alice_admin
        .revoke_api_key(RevokeApiKeyRequest { key_id: old_key })
        .await
        .expect("RevokeApiKey");
    alice_admin
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "gamma".into(),
            enabled: false,
        })
        .await
        .expect("SetSiteEnabled");
    let taken = alice_admin
        .create_site(CreateSiteRequest {
            site_id: "alpha".into(),
            display_name: "Alpha again".into(),
        })
        .await
        .expect_err("a taken site id");
    assert_eq!(taken.code(), Code::AlreadyExists);
    // Beta is held (alice proposes, bootstrap approves: off the ranking, in the national
    // figure); a hold of alpha waits for approval.
    let hold = alice_admin
        .set_site_hold(SetSiteHoldRequest {
            event_id: String::new(),
            site_id: "beta".into(),
            held: true,
            reason: "refunds under review".into(),
        })
        .await
        .expect("SetSiteHold")
        .into_inner();
    admin
        .approve_action(ApproveActionRequest {
            action_id: hold.action_id,
        })
        .await
        .expect("ApproveAction");
    alice_admin
        .set_site_hold(SetSiteHoldRequest {
            event_id: String::new(),
            site_id: "alpha".into(),
            held: true,
            reason: "pending at the backup".into(),
        })
        .await
        .expect("SetSiteHold pending");
    // Beta's sale b-1 and its refund voided (alice proposes, bootstrap approves): the voids
    // are ledger rows, the adjustment an action with its own columns.
    let adjustment = alice_admin
        .adjust_transactions(saleboard_proto::v1::AdjustTransactionsRequest {
            event_id: String::new(),
            site_id: "beta".into(),
            transaction_ids: vec!["b-1".into(), "b-2".into()],
            reason: "could not be justified".into(),
            flag_id: String::new(),
        })
        .await
        .expect("AdjustTransactions")
        .into_inner();
    let applied = admin
        .approve_action(ApproveActionRequest {
            action_id: adjustment.action_id,
        })
        .await
        .expect("ApproveAction adjustment")
        .into_inner();
    assert_eq!(applied.voided_rows, 3, "b-1, its refund b-r1, b-2");
    // Integrity: a policy under which the sites refunding the most are flagged (every site
    // decided), and alice's review of one flag.
    app.settle().await;
    admin
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            refund_rate_times: Some(1),
            refund_rate_points: Some(0),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let flag = loop {
        if let Some(f) = flags_of(&app).await.into_iter().next() {
            break f;
        }
        assert!(tokio::time::Instant::now() < deadline, "no flag raised");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    alice_admin
        .review_integrity_flag(ReviewIntegrityFlagRequest {
            flag_id: flag.flag_id,
            state: FlagState::UnderReview.into(),
            note: "asked for the refund records".into(),
        })
        .await
        .expect("ReviewIntegrityFlag");
    admin
        .revoke_organizer(RevokeOrganizerRequest { name: "bob".into() })
        .await
        .expect("RevokeOrganizer");
    let bob = secrets.pop().expect("bob");
    let alice = secrets.pop().expect("alice");
    Some(Filled {
        app,
        alpha,
        revoked,
        disabled: gamma,
        pushed,
        alice,
        bob,
    })
}

/// `saleboard ARGS` on `url`: (exit ok, stdout and stderr).
fn cli(args: &[&str], url: &str) -> (bool, String) {
    let out = saleboard(args, &[("SALEBOARD_DATABASE_URL", url)]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn backup(url: &str, file: &Path) -> String {
    let (ok, text) = cli(&["backup", "--out", &file.display().to_string()], url);
    assert!(ok, "backup failed: {text}");
    assert!(file.exists(), "no backup at {}", file.display());
    text
}

fn restore(url: &str, file: &Path) -> (bool, String) {
    cli(&["restore", &file.display().to_string()], url)
}

/// `text` (a backup) with its trailer's SHA-256 computed again over what precedes it.
fn with_trailer_recomputed(text: &str) -> String {
    use sha2::Digest as _;
    let trailer = text
        .trim_end_matches('\n')
        .rfind('\n')
        .expect("a line before the trailer")
        + 1;
    let body = &text[..trailer];
    let mut value: serde_json::Value =
        serde_json::from_str(text[trailer..].trim_end()).expect("the trailer is JSON");
    value["trailer"]["sha256"] = format!("{:x}", sha2::Sha256::digest(body.as_bytes())).into();
    format!("{body}{value}\n")
}

async fn restores_into_either_database(source: Backend) {
    let Some(filled) = fill(source).await else {
        return;
    };
    let before = figures(&filled.app).await;
    let (organizers, log, actions) = organizers_and_log(&filled.app).await;
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|a| a.voided_rows == 3 && a.transaction_ids == ["b-1", "b-2"]),
        "{actions:?}"
    );
    assert_eq!(before.leaderboard.held_sites, ["beta"]);
    let flags = flags_of(&filled.app).await;
    assert!(
        flags
            .iter()
            .any(|f| f.state == i32::from(FlagState::UnderReview)),
        "{flags:#?}"
    );
    // `bootstrap` (listed first, the configured token: no row, not in the file), alice, bob.
    assert_eq!(organizers.len(), 3, "{organizers:?}");
    assert!(log.iter().any(|e| e.organizer == "alice"), "{log:?}");
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("saleboard.backup");
    let said = backup(&filled.app.db.url, &file);
    assert!(
        said.contains(&format!(
            "3 sites, 4 API keys, 3 events, 2 exchange rates, 2 named organizers, {} audit log entries",
            log.len()
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "the audit log's {} entries are chained, none altered",
            log.len()
        )),
        "{said}"
    );

    for target in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::create(target).await else {
            continue;
        };
        // Act: restore, then serve the restored database (SQLite); restore into a freshly
        // started, empty suite (PostgreSQL: the compose stack's way), which picks it up.
        let url = db.url.clone();
        let app = if target == Backend::Sqlite {
            let (ok, said) = restore(&url, &file);
            assert!(ok, "restore into {target:?} failed: {said}");
            assert!(
                said.contains("saleboard verify"),
                "says what comes next: {said}"
            );
            TestApp::spawn_on(db).await
        } else {
            let app = TestApp::spawn_on(db).await;
            let (ok, said) = restore(&url, &file);
            assert!(ok, "restore into a running {target:?} suite failed: {said}");
            // The board learns of the restored event at its next refresh (the aggregator's
            // first fold, or the 5 s safety refresh).
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut board = app.leaderboard().await;
            while let Err(status) = board
                .get_national_totals(GetNationalTotalsRequest::default())
                .await
            {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the running board never saw the restored event"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            app
        };

        // Every figure as before, once the aggregator has folded the restored ledger.
        let after = figures(&app).await;
        assert_eq!(after, before, "{source:?} -> {target:?}");
        let (ok, text) = cli(&["verify"], &app.db.url);
        assert!(ok, "verify after restore into {target:?}: {text}");

        // The same keys authenticate (and only those): the live key, not the revoked one,
        // not the disabled site's.
        let who = app
            .ingest(&filled.alpha)
            .await
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("alpha's key authenticates after restore")
            .into_inner();
        assert_eq!(who.site_id, "alpha");
        for secret in [&filled.revoked, &filled.disabled] {
            let refused = app
                .ingest(secret)
                .await
                .who_am_i(WhoAmIRequest {})
                .await
                .expect_err("a revoked key or a disabled site's stays refused");
            assert_eq!(refused.code(), Code::Unauthenticated);
        }
        // The organizers and the audit log, as they were: alice acts under her name, bob stays
        // revoked, and the next change chains on from the restored head.
        assert_eq!(
            organizers_and_log(&app).await,
            (organizers.clone(), log.clone(), actions.clone()),
            "{source:?} -> {target:?}"
        );
        // The flags with their reviews (the restored suite evaluates the same figures: none
        // raised or cleared anew).
        assert_eq!(flags_of(&app).await, flags, "{source:?} -> {target:?}");
        let mut alice = admin_client(app.admin_addr, Some(&filled.alice)).await;
        alice
            .create_site(CreateSiteRequest {
                site_id: "delta".into(),
                display_name: "Delta".into(),
            })
            .await
            .expect("alice's secret works after restore");
        let refused = admin_client(app.admin_addr, Some(&filled.bob))
            .await
            .list_organizers(ListOrganizersRequest {})
            .await
            .expect_err("bob stays revoked");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        let (_, after_log, _) = organizers_and_log(&app).await;
        let last = log.last().expect("entries");
        let next = after_log.last().expect("the new entry");
        assert_eq!(
            (next.position, next.organizer.as_str(), next.rpc.as_str()),
            (last.position + 1, "alice", "CreateSite"),
            "{next:?}"
        );
        assert_eq!(next.prev_sha256, last.sha256);

        // What was stored is still known: a resend is a duplicate, a new sale goes on from
        // the restored head.
        let (secret, txs) = &filled.pushed[0];
        let outcomes = push(&app, secret, txs.clone()).await;
        assert!(
            outcomes.iter().all(|o| *o == Outcome::Duplicate),
            "{outcomes:?}"
        );
        let head = app.store.ledger_head().await.expect("head");
        let outcomes = push(&app, secret, vec![sale("after-restore", "IDR", 5)]).await;
        assert_eq!(outcomes, vec![Outcome::Accepted]);
        assert_eq!(app.store.ledger_head().await.expect("head"), head + 1);
        app.settle().await;
        let (ok, text) = cli(&["verify"], &app.db.url);
        assert!(
            ok,
            "verify after a push into the restored {target:?}: {text}"
        );
        app.stop().await;
    }
    filled.app.stop().await;
}

async fn bad_files_and_full_databases_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let outcomes = push(&app, &secret, transactions("a", 60)).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Accepted));
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("good.backup");
    backup(&app.db.url, &file);
    let text = std::fs::read_to_string(&file).expect("read the backup");
    let Some(target) = TestDb::create(backend).await else {
        return;
    };

    // A non-empty database: the source itself.
    let (ok, said) = restore(&app.db.url, &file);
    assert!(!ok, "restored into a full database: {said}");
    assert!(
        said.contains("not empty") && said.contains("sites") && said.contains("ledger rows"),
        "{said}"
    );

    // Truncated in the middle of the ledger (and at a line's end: a whole line missing).
    let ledger = text
        .find(r#""section":"ledger""#)
        .expect("a ledger section");
    for cut in [
        ledger + 200,
        text[..ledger + 400].rfind('\n').expect("a line") + 1,
    ] {
        let truncated = dir.path().join("truncated.backup");
        std::fs::write(&truncated, &text[..cut]).expect("write");
        let (ok, said) = restore(&target.url, &truncated);
        assert!(!ok, "restored a truncated file: {said}");
        assert!(said.contains("truncated"), "{said}");
        assert!(said.contains("nothing was restored"), "{said}");
    }

    // One amount changed: still well-formed, but not what was written.
    let row = text.find(r#"["alpha","a-7","#).expect("a row of a-7");
    let amount = text[row..].find(",\"IDR\",").expect("its currency") + row + 7;
    let mut altered = text.clone().into_bytes();
    altered[amount] = if altered[amount] == b'9' { b'8' } else { b'9' };
    let altered_file = dir.path().join("altered.backup");
    std::fs::write(&altered_file, &altered).expect("write");
    let (ok, said) = restore(&target.url, &altered_file);
    assert!(!ok, "restored an altered file: {said}");
    assert!(said.contains("checksum does not match"), "{said}");
    let (ok, said) = cli(
        &["restore", "--check", &altered_file.display().to_string()],
        &target.url,
    );
    assert!(!ok && said.contains("checksum does not match"), "{said}");

    // An audit entry altered in the file and its checksum recomputed, as anyone holding the
    // file could: restored as the file holds it (evidence), with a warning naming the entry,
    // and `verify` on the restored database names the same entry.
    let entry = text.find("\n[2,").expect("audit entry 2") + 1;
    let end = text[entry..].find('\n').expect("its line's end") + entry;
    let line = &text[entry..end];
    assert!(line.contains(r#""bootstrap""#), "{line}");
    let forged = line.replacen(r#""bootstrap""#, r#""mallory""#, 1);
    let tampered = with_trailer_recomputed(&format!("{}{forged}{}", &text[..entry], &text[end..]));
    let tampered_file = dir.path().join("tampered.backup");
    std::fs::write(&tampered_file, tampered).expect("write");
    let (ok, said) = cli(
        &["restore", "--check", &tampered_file.display().to_string()],
        &target.url,
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("WARNING: the audit log's chain breaks at entry 2"),
        "{said}"
    );
    if let Some(evidence) = TestDb::create(backend).await {
        let (ok, said) = restore(&evidence.url, &tampered_file);
        assert!(ok, "{said}");
        assert!(
            said.contains("WARNING: the audit log's chain breaks at entry 2"),
            "{said}"
        );
        let (ok, said) = cli(&["verify"], &evidence.url);
        assert!(!ok, "verify passed a forged audit entry: {said}");
        assert!(
            said.contains("the audit log's chain breaks at entry 2 (") && said.contains("mallory"),
            "{said}"
        );
    }

    // Audit entries out of order (checksum recomputed): refused, naming the position, so a
    // restored head can never fall behind an entry.
    let third = text.find("\n[3,").expect("audit entry 3") + 1;
    let third_end = text[third..].find('\n').expect("its line's end") + third;
    let swapped = format!(
        "{}{}\n{}{}",
        &text[..entry],
        &text[third..third_end],
        &text[entry..end],
        &text[third_end..]
    );
    assert_eq!(end + 1, third, "entries 2 and 3 are adjacent lines");
    let swapped_file = dir.path().join("swapped.backup");
    std::fs::write(&swapped_file, with_trailer_recomputed(&swapped)).expect("write");
    let (ok, said) = restore(&target.url, &swapped_file);
    assert!(!ok, "restored audit entries out of order: {said}");
    assert!(
        said.contains("position 2 after 3: positions only increase"),
        "{said}"
    );

    // A newer format version.
    let newer = dir.path().join("newer.backup");
    std::fs::write(
        &newer,
        text.replacen(r#"{"saleboard_backup":1,"#, r#"{"saleboard_backup":2,"#, 1),
    )
    .expect("write");
    let (ok, said) = restore(&target.url, &newer);
    assert!(!ok, "restored a newer format: {said}");
    assert!(said.contains("format version 2, newer"), "{said}");

    // Not a backup at all.
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, "transaction_id,kind\nS1,SALE\n").expect("write");
    let (ok, said) = restore(&target.url, &csv);
    assert!(!ok && said.contains("not a Saleboard backup"), "{said}");

    // Every refusal left the target empty: the good file restores into it, checked first.
    let (ok, said) = cli(
        &["restore", "--check", &file.display().to_string()],
        &target.url,
    );
    assert!(ok && said.contains("a complete backup"), "{said}");
    let (ok, said) = restore(&target.url, &file);
    assert!(ok, "the good file after the refusals: {said}");
    let restored = target.store().await;
    assert_eq!(
        restored.ledger_head().await.expect("head"),
        app.store.ledger_head().await.expect("head")
    );
    // And once it is restored, that database is full in turn.
    let (ok, said) = restore(&target.url, &file);
    assert!(!ok && said.contains("not empty"), "{said}");

    // A backup that cannot be written leaves no file.
    let nowhere = dir.path().join("missing-dir").join("x.backup");
    let (ok, _) = cli(
        &["backup", "--out", &nowhere.display().to_string()],
        &app.db.url,
    );
    assert!(!ok);
    assert!(!nowhere.exists());
    app.stop().await;
}

backend_tests!(
    restores_into_either_database,
    bad_files_and_full_databases_are_refused
);
