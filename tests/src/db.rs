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

    /// A migrated store on this database.
    ///
    /// # Panics
    /// When the database cannot be opened or migrated.
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = saleboard_storage::connect(&ConnectOptions {
            url: self.url.clone(),
            max_connections: 8,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url));
        store.migrate().await.expect("migrations apply");
        store
    }
}
