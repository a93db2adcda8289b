//! Organizers by name and the audit log (issue 27), on both databases: each organizer acts with
//! its own secret and is named in the log; a revoked one is refused within 2 s (unary calls
//! and open streams); `bootstrap` cannot be revoked; the chain verifies, and a tampered entry
//! is named; no secret reaches the log; a change and its entry commit together.

use std::time::Duration;

use futures::StreamExt as _;
use saleboard_domain::audit::{ChainBreak, ChainCheck, Entry};
use saleboard_proto::v1::{
    AuditEntry, CreateApiKeyRequest, CreateOrganizerRequest, CreateSiteRequest,
    ListAuditLogRequest, ListOrganizersRequest, ListSitesRequest, RevokeOrganizerRequest,
    WatchLeaderboardRequest,
};
use saleboard_tests::app::admin_client;
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

backend_tests!(
    organizers_act_under_their_own_names,
    a_revoked_organizer_is_refused_within_two_seconds,
    the_chain_verifies_and_a_tampered_entry_is_named,
    a_change_and_its_entry_commit_together,
    the_database_refuses_to_rewrite_the_log,
);

/// Every entry of the audit log, page by page (`limit` per page).
async fn audit_log(app: &TestApp, limit: u32, organizer: &str) -> Vec<AuditEntry> {
    let mut admin = app.admin().await;
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_audit_log(ListAuditLogRequest {
                page_token: page_token.clone(),
                limit,
                organizer: organizer.to_owned(),
                since: None,
            })
            .await
            .expect("ListAuditLog")
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        page_token = page.next_page_token;
    }
}

fn domain_entry(e: &AuditEntry) -> Entry {
    let at = e.at.as_ref().expect("at");
    Entry {
        position: e.position,
        at: saleboard_domain::UnixNanos::from_parts(at.seconds, at.nanos).expect("time"),
        organizer: e.organizer.clone(),
        rpc: e.rpc.clone(),
        request_json: e.request_json.clone(),
        outcome: e.outcome.clone(),
        prev_sha256: e.prev_sha256.clone(),
        sha256: e.sha256.clone(),
    }
}

/// The first entry that breaks the chain, and how.
fn first_break(entries: &[AuditEntry]) -> Option<(u64, ChainBreak)> {
    let mut check = ChainCheck::default();
    entries.iter().find_map(|e| {
        check
            .check(&domain_entry(e))
            .err()
            .map(|why| (e.position, why))
    })
}

async fn organizers_act_under_their_own_names(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut bootstrap = app.admin().await;

    // Arrange: two organizers, each with a secret of its own.
    let created = bootstrap
        .create_organizer(CreateOrganizerRequest {
            name: "alice".into(),
        })
        .await
        .expect("CreateOrganizer")
        .into_inner();
    assert!(created.secret.starts_with("sbo_"), "{}", created.secret);
    assert_eq!(created.created_by, "bootstrap");
    let alice_secret = created.secret;
    let budi_secret = app.create_organizer("budi").await;
    assert_ne!(alice_secret, budi_secret);
    for taken in ["alice", "bootstrap"] {
        let err = bootstrap
            .create_organizer(CreateOrganizerRequest { name: taken.into() })
            .await
            .expect_err(taken);
        assert_eq!(err.code(), Code::AlreadyExists, "{taken}: {err:?}");
    }
    let listed = bootstrap
        .list_organizers(ListOrganizersRequest {})
        .await
        .expect("ListOrganizers")
        .into_inner()
        .organizers;
    let names: Vec<&str> = listed.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["bootstrap", "alice", "budi"]);
    assert!(listed.iter().all(|o| o.secret.is_empty()), "{listed:?}");

    // Act: each organizer changes something with its own secret; some calls are refused.
    let mut alice = admin_client(app.admin_addr, Some(&alice_secret)).await;
    let mut budi = admin_client(app.admin_addr, Some(&budi_secret)).await;
    alice
        .create_site(CreateSiteRequest {
            site_id: "alice-shop".into(),
            display_name: "Alice's shop".into(),
        })
        .await
        .expect("alice creates a site");
    let key = budi
        .create_api_key(CreateApiKeyRequest {
            site_id: "alice-shop".into(),
        })
        .await
        .expect("budi issues a key")
        .into_inner();
    let refused = alice
        .create_site(CreateSiteRequest {
            site_id: "Not A Slug".into(),
            display_name: String::new(),
        })
        .await
        .expect_err("an invalid id");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let refused = budi
        .revoke_organizer(RevokeOrganizerRequest {
            name: "bootstrap".into(),
        })
        .await
        .expect_err("bootstrap cannot be revoked");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Reads are not changes: not recorded.
    alice
        .list_sites(ListSitesRequest {})
        .await
        .expect("ListSites");

    // Assert: every call is attributed, in order, numbered without gaps.
    let log = audit_log(&app, 0, "").await;
    let calls: Vec<(u64, &str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.position,
                e.organizer.as_str(),
                e.rpc.as_str(),
                e.outcome.split(' ').next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (1, "bootstrap", "CreateOrganizer", "OK"),
            (2, "bootstrap", "CreateOrganizer", "OK"),
            (3, "bootstrap", "CreateOrganizer", "ALREADY_EXISTS"),
            (4, "bootstrap", "CreateOrganizer", "ALREADY_EXISTS"),
            (5, "alice", "CreateSite", "OK"),
            (6, "budi", "CreateApiKey", "OK"),
            (7, "alice", "CreateSite", "INVALID_ARGUMENT"),
            (8, "budi", "RevokeOrganizer", "PERMISSION_DENIED"),
        ]
    );
    let site_entry = &log[4];
    let request: serde_json::Value =
        serde_json::from_str(&site_entry.request_json).expect("request_json is JSON");
    assert_eq!(request["site_id"], "alice-shop");
    assert!(
        site_entry.outcome.contains("\"site_id\":\"alice-shop\""),
        "the resource produced: {}",
        site_entry.outcome
    );
    assert!(log[5].outcome.contains(&key.key_id), "{}", log[5].outcome);
    assert_eq!(first_break(&log), None, "the chain verifies");

    // No secret anywhere in the log: neither an organizer's, nor the API key's, nor the token.
    for e in &log {
        let text = format!("{e:?}");
        for secret in [&alice_secret, &budi_secret, &key.secret, &app.token] {
            assert!(!text.contains(secret.as_str()), "a secret in entry {text}");
        }
        assert!(!text.contains("sbo_") && !text.contains("sbk_"), "{text}");
    }

    // Filtered by organizer, and paged: the same entries.
    let alices = audit_log(&app, 1, "alice").await;
    assert_eq!(
        alices.iter().map(|e| e.position).collect::<Vec<_>>(),
        [5, 7]
    );
    let paged = audit_log(&app, 3, "").await;
    assert_eq!(paged, log);
    app.stop().await;
}

async fn a_revoked_organizer_is_refused_within_two_seconds(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let secret = app.create_organizer("carla").await;
    let mut carla = admin_client(app.admin_addr, Some(&secret)).await;
    carla
        .list_sites(ListSitesRequest {})
        .await
        .expect("carla may call AdminService");
    // Carla's open stream, and a public one beside it.
    let mut carla_board = app.leaderboard_as(&secret).await;
    let mut stream = carla_board
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect("carla watches")
        .into_inner();
    stream
        .next()
        .await
        .expect("a first message")
        .expect("the leaderboard");
    let mut public = app
        .leaderboard()
        .await
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect("a public watch")
        .into_inner();
    public.next().await.expect("a message").expect("public");

    // Act
    app.admin()
        .await
        .revoke_organizer(RevokeOrganizerRequest {
            name: "carla".into(),
        })
        .await
        .expect("RevokeOrganizer");
    let revoked_at = tokio::time::Instant::now();

    // Assert: unary calls at once, the open stream within 2 s; the public stream goes on.
    let err = carla
        .list_sites(ListSitesRequest {})
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let ended = tokio::time::timeout(Duration::from_millis(2_500), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => {}
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends within 2 s");
    let status = ended.expect("the stream ends with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        revoked_at.elapsed() <= Duration::from_secs(2),
        "{:?}",
        revoked_at.elapsed()
    );
    let err = carla_board
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect_err("a new stream is refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    app.admin()
        .await
        .create_site(CreateSiteRequest {
            site_id: "after".into(),
            display_name: String::new(),
        })
        .await
        .expect("a change moves the board");
    tokio::time::timeout(Duration::from_secs(5), public.next())
        .await
        .expect("the public stream goes on")
        .expect("a message")
        .expect("public");

    // Bootstrap cannot be revoked, by anyone; revoking twice keeps the first time.
    let err = app
        .admin()
        .await
        .revoke_organizer(RevokeOrganizerRequest {
            name: "bootstrap".into(),
        })
        .await
        .expect_err("bootstrap");
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = app
        .admin()
        .await
        .list_organizers(ListOrganizersRequest {})
        .await
        .expect("ListOrganizers")
        .into_inner()
        .organizers;
    assert!(listed[0].revoked_at.is_none() && listed[0].name == "bootstrap");
    assert!(listed[1].revoked_at.is_some() && listed[1].name == "carla");
    app.stop().await;
}

async fn the_chain_verifies_and_a_tampered_entry_is_named(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut admin = app.admin().await;
    for site in ["one", "two", "three"] {
        admin
            .create_site(CreateSiteRequest {
                site_id: site.into(),
                display_name: String::new(),
            })
            .await
            .expect("CreateSite");
    }
    let log = audit_log(&app, 0, "").await;
    assert_eq!(log.len(), 3);
    assert_eq!(first_break(&log), None);
    assert_eq!(log[0].prev_sha256, saleboard_domain::audit::GENESIS);
    assert_eq!(log[1].prev_sha256, log[0].sha256);
    assert!(
        saleboard::verify::audit_chain(app.store.as_ref())
            .await
            .expect("verify")
    );
    let endpoint = format!("http://{}", app.admin_addr);
    let env = [
        ("SALEBOARD_ORGANIZER_TOKEN", app.token.as_str()),
        ("SALEBOARD_ADMIN_ENDPOINT", endpoint.as_str()),
    ];
    let out = saleboard_tests::proc::saleboard(&["admin", "audit", "verify"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Act: an attacker with database access lifts the trigger and rewrites who made entry 2.
    match backend {
        Backend::Sqlite => app.db.execute("DROP TRIGGER audit_log_no_update").await,
        Backend::Postgres => {
            app.db
                .execute("DROP TRIGGER audit_log_no_update ON audit_log")
                .await;
        }
    }
    app.db
        .execute("UPDATE audit_log SET organizer = 'mallory' WHERE position = 2")
        .await;

    // Assert: the API's entries, `saleboard verify`'s check and the CLI name entry 2.
    let log = audit_log(&app, 0, "").await;
    assert_eq!(first_break(&log), Some((2, ChainBreak::Altered)));
    assert!(
        !saleboard::verify::audit_chain(app.store.as_ref())
            .await
            .expect("verify")
    );
    let out = saleboard_tests::proc::saleboard(&["admin", "audit", "verify"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 2"), "{err}");
    app.stop().await;
}

async fn a_change_and_its_entry_commit_together(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Arrange: the database refuses every new audit entry (a failure between the change and
    // its entry).
    match backend {
        Backend::Sqlite => {
            app.db
                .execute(
                    "CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                )
                .await;
        }
        Backend::Postgres => {
            app.db
                .execute(
                    "CREATE FUNCTION audit_log_broken() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'injected failure'; END; $$",
                )
                .await;
            app.db
                .execute(
                    "CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_broken()",
                )
                .await;
        }
    }
    let mut admin = app.admin().await;

    // Act
    let err = admin
        .create_site(CreateSiteRequest {
            site_id: "ghost".into(),
            display_name: String::new(),
        })
        .await
        .expect_err("the entry cannot be written");

    // Assert: neither the site nor an entry.
    assert_ne!(err.code(), Code::Ok);
    let sites = admin
        .list_sites(ListSitesRequest {})
        .await
        .expect("ListSites")
        .into_inner()
        .sites;
    assert!(sites.iter().all(|s| s.site_id != "ghost"), "{sites:?}");
    match backend {
        Backend::Sqlite => app.db.execute("DROP TRIGGER audit_log_broken").await,
        Backend::Postgres => {
            app.db
                .execute("DROP TRIGGER audit_log_broken ON audit_log")
                .await;
        }
    }
    assert!(audit_log(&app, 0, "").await.is_empty());
    admin
        .create_site(CreateSiteRequest {
            site_id: "ghost".into(),
            display_name: String::new(),
        })
        .await
        .expect("the site was never created");
    let log = audit_log(&app, 0, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].position, 1);
    app.stop().await;
}

async fn the_database_refuses_to_rewrite_the_log(backend: Backend) {
    use sqlx::Connection as _;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_organizer("dewi").await;
    for statement in [
        "UPDATE audit_log SET organizer = 'mallory'",
        "DELETE FROM audit_log",
    ] {
        let refused = match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&app.db.url)
                    .await
                    .expect("connect");
                sqlx::query(statement).execute(&mut c).await.is_err()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&app.db.url)
                    .await
                    .expect("connect");
                sqlx::query(statement).execute(&mut c).await.is_err()
            }
        };
        assert!(refused, "{statement} was not refused");
    }
    let log = audit_log(&app, 0, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].organizer, "bootstrap");
    assert_eq!(first_break(&log), None);
    app.stop().await;
}
