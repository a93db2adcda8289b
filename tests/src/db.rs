//! A fresh database of either backend, removed when dropped (SQLite) or with the test
//! cluster (PostgreSQL).

use std::sync::Arc;

use saleboard_storage::{ConnectOptions, Store};

/// Which storage implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// Production.
    Postgres,
}

/// A fresh, empty database.
#[derive(Debug)]
pub struct TestDb {
    /// URL services connect to.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database, or `None` when Postgres tests are skipped (see [`crate::pg`]).
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite:{}", dir.path().join("saleboard.db").display());
                Some(Self {
                    url,
                    backend,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => crate::pg::fresh_database().await.map(|url| Self {
                url,
                backend,
                _dir: None,
            }),
        }
    }

    /// A store on this database migrated only up to `version`: the schema an earlier release
    /// left, for the tests of the migrations after it.
    ///
    /// # Panics
    /// When it cannot be opened or migrated.
    pub async fn store_until(&self, version: i64) -> Arc<dyn Store> {
        let store = saleboard_storage::connect(&ConnectOptions {
            url: self.url.clone(),
            max_connections: 2,
            create_if_missing: true,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url));
        store
            .migrate_until(version)
            .await
            .expect("the earlier release's migrations apply");
        store
    }

    /// A migrated store on this database.
    ///
    /// # Panics
    /// When the database cannot be opened or migrated.
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = saleboard_storage::connect(&ConnectOptions {
            url: self.url.clone(),
            max_connections: 8,
            create_if_missing: true,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url));
        store.migrate().await.expect("migrations apply");
        store
    }
}

impl TestDb {
    /// Runs one SQL statement behind the services' backs (to corrupt or inspect a table).
    ///
    /// # Panics
    /// When the database refuses it.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection as _;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut c).await.expect("execute");
            }
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut c).await.expect("execute");
            }
        }
    }

    /// Sets an event around now (reporting IDR) and registers `site_id` with one API key;
    /// returns the key's secret. For tests that start service processes on this database.
    ///
    /// # Panics
    /// When storage refuses.
    pub async fn seed_site(&self, site_id: &str) -> String {
        seed_site(self.store().await.as_ref(), site_id).await
    }
}

/// Sets an event around now (reporting IDR) and registers `site_id` with one API key in
/// `store`; returns the key's secret.
///
/// # Panics
/// When storage refuses.
pub async fn seed_site(store: &dyn Store, site_id: &str) -> String {
    use saleboard_domain::{Event, UnixNanos};
    let now = UnixNanos::now();
    let event = Event::new(
        "seeded",
        "Seeded event",
        now.saturating_add_secs(-86_400),
        now.saturating_add_secs(86_400),
        "IDR",
    )
    .expect("event");
    store
        .set_event(
            &event,
            saleboard_domain::UnixNanos::now(),
            saleboard_storage::Audit::ok(&seed_call("SetEvent")),
        )
        .await
        .expect("event");
    register_site(store, site_id, site_id).await
}

/// Registers `site_id` (shown as `display_name`) with one API key in `store`; returns the
/// key's secret.
///
/// # Panics
/// When storage refuses.
pub async fn register_site(store: &dyn Store, site_id: &str, display_name: &str) -> String {
    use saleboard_domain::{SiteId, UnixNanos};
    let now = UnixNanos::now();
    let site = SiteId::parse(site_id).expect("site id");
    store
        .create_site(
            &site,
            display_name,
            now,
            saleboard_storage::Audit::ok(&seed_call("CreateSite")),
        )
        .await
        .expect("site");
    let key = saleboard_runtime::auth::new_api_key().expect("key");
    store
        .create_api_key(
            &key.key_id,
            &site,
            &key.secret_hash,
            now,
            saleboard_storage::Audit::ok(&seed_call("CreateApiKey")),
        )
        .await
        .expect("key");
    key.secret
}

/// The audit record of a change a test makes to storage directly (its set-up), as
/// `bootstrap`.
#[must_use]
pub fn seed_call(rpc: &str) -> saleboard_storage::AuditCall {
    saleboard_storage::AuditCall {
        at: saleboard_domain::UnixNanos::now(),
        organizer: saleboard_domain::audit::BOOTSTRAP.to_owned(),
        rpc: rpc.to_owned(),
        request_json: "{}".to_owned(),
    }
}
