//! Errors of the storage crate.

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A record with this id exists.
    #[error("{what} {id:?} already exists")]
    AlreadyExists {
        /// Kind of record.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// No record with this id.
    #[error("{what} {id:?} does not exist")]
    NotFound {
        /// Kind of record.
        what: &'static str,
        /// The id looked for.
        id: String,
    },
    /// The aggregator's applied position is not the one this apply started from: another
    /// aggregator moved it. Nothing was written.
    #[error("another aggregator moved the applied position (expected {expected}, found {found})")]
    Fenced {
        /// Position this apply started from.
        expected: u64,
        /// Position found.
        found: u64,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected postgres://... or sqlite:PATH")]
    UnsupportedUrl(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row breaks the schema's rules (e.g. an unknown currency): never expected.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table read.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl StorageError {
    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}
