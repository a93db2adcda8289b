//! Errors of the storage crate. Callers see kinds (unavailable, conflict, corrupt...), never a
//! driver's error type: only this crate knows sqlx.

/// The cause of a database error, kept for logs; its text never reaches a client.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The change contradicts what is stored (an overlapping window, a closed event, rows
    /// that would fall outside a narrowed window); the message says what and how to proceed.
    #[error("{0}")]
    Precondition(String),
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected postgres://... or sqlite:PATH")]
    UnsupportedUrl(String),
    /// The database cannot be reached now (connection refused or lost, no connection free in
    /// time): retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(Cause),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(Cause),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(Cause),
    /// The SQLite database file does not exist (and the caller asked not to create it).
    #[error(
        "there is no database at {path}: run `saleboard migrate` (or `saleboard dev`) first, or point --database-url / SALEBOARD_DATABASE_URL at the right file"
    )]
    MissingFile {
        /// The file looked for.
        path: std::path::PathBuf,
    },
    /// The SQLite writer lock file could not be opened or locked.
    #[error("cannot lock {path}: {error}")]
    LockFile {
        /// The sidecar file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A stored row breaks the schema's rules (e.g. an unknown currency): never expected.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table read.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL: connection exceptions (class 08), the server shutting down or not yet
            // accepting connections.
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
            }),
            _ => false,
        };
        if unavailable {
            Self::Unavailable(Box::new(e))
        } else {
            Self::Database(Box::new(e))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(Box::new(e))
    }
}

impl StorageError {
    /// Whether retrying later may succeed (the database could not be reached).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_the_rest_are_not() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::other("reset")),
        ] {
            assert!(StorageError::from(e).is_unavailable());
        }
        let e = StorageError::from(sqlx::Error::RowNotFound);
        assert!(matches!(e, StorageError::Database(_)), "{e}");
    }
}
