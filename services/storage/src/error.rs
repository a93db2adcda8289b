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
    /// A change of an event breaks a rule of the domain against what is stored (an
    /// overlapping window, a closed event, rows that would fall outside a narrowed window); the
    /// message says what and how to proceed.
    #[error(transparent)]
    EventChange(#[from] saleboard_domain::event::EventChangeError),
    /// An organizer's action cannot be proposed or decided now (the site stands so already,
    /// another action is pending, the action was decided, or its proposer tries to decide it).
    #[error(transparent)]
    Action(#[from] saleboard_domain::action::ActionRefusal),
    /// An adjustment cannot void what it names (an unknown id, a row voided already, a row of
    /// another event, a closed event).
    #[error(transparent)]
    Adjust(#[from] saleboard_domain::adjust::AdjustRefusal),
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected postgres://... or sqlite:PATH")]
    UnsupportedUrl(String),
    /// The database cannot take the work now (unreachable, its disk full, an I/O error, busy):
    /// retrying later may succeed, and nothing of a failed write was stored.
    #[error("the database is unavailable ({fault}): {cause}")]
    Unavailable {
        /// Which kind of fault, for clients and operators.
        fault: Fault,
        /// The driver's error, for logs only.
        cause: Cause,
    },
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(Cause),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(Cause),
    /// The database was migrated by a newer release: this build must not run on it (its
    /// statements would miss columns, tables and rules the newer schema relies on).
    #[error(
        "the database's schema is newer than this saleboard knows: {backend} migration {found} is applied, this build knows migrations up to {known}; run the release that migrated it (or a newer one)"
    )]
    NewerSchema {
        /// `postgres` or `sqlite` (the two number their migrations apart).
        backend: &'static str,
        /// The last migration applied to the database.
        found: i64,
        /// The last migration this build has.
        known: i64,
    },
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

/// Why the database cannot take work now: each is retryable, and each is said to clients and
/// operators in plain words (never the driver's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The connection was refused or lost, the server is shutting down or starting, or no
    /// connection came free in time.
    Unreachable,
    /// The database's disk (or quota) is full.
    DiskFull,
    /// The database reported an I/O error reading or writing its files.
    Io,
    /// The database is locked or busy (SQLite's busy timeout, PostgreSQL's lock timeout,
    /// serialization failure or deadlock, a cancelled statement).
    Busy,
}

impl Fault {
    /// The fault in plain words, for a status message and logs.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unreachable => "the database is unreachable",
            Self::DiskFull => "the database's disk is full",
            Self::Io => "the database reports an I/O error",
            Self::Busy => "the database is busy",
        }
    }

    /// The fault's short name, for metrics and structured logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::DiskFull => "disk_full",
            Self::Io => "io",
            Self::Busy => "busy",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The retryable fault an error is, if any.
fn fault_of(e: &sqlx::Error) -> Option<Fault> {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            Some(Fault::DiskFull)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Fault::Unreachable),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_fault(code.parse().ok()?)
            } else {
                pg_fault(&code)
            }
        }
        _ => None,
    }
}

/// SQLite's (extended) result codes: the primary code is the low byte.
fn sqlite_fault(code: i32) -> Option<Fault> {
    match code & 0xff {
        // SQLITE_FULL
        13 => Some(Fault::DiskFull),
        // SQLITE_IOERR, SQLITE_CANTOPEN
        10 | 14 => Some(Fault::Io),
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL
        5 | 6 | 15 => Some(Fault::Busy),
        _ => None,
    }
}

/// PostgreSQL's SQLSTATEs.
fn pg_fault(code: &str) -> Option<Fault> {
    match code {
        // disk_full
        "53100" => Some(Fault::DiskFull),
        // io_error, and the other system errors of class 58
        c if c.starts_with("58") => Some(Fault::Io),
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled
        // (a statement or lock timeout), insufficient resources, too many connections,
        // a read-only transaction (a standby)
        "40001" | "40P01" | "55P03" | "57014" | "53000" | "53200" | "53300" | "25006" => {
            Some(Fault::Busy)
        }
        // connection exceptions (class 08), the server shutting down, crashed, or not yet
        // accepting connections
        c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") => {
            Some(Fault::Unreachable)
        }
        _ => None,
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match fault_of(&e) {
            Some(fault) => Self::Unavailable {
                fault,
                cause: Box::new(e),
            },
            None => Self::Database(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(Box::new(e))
    }
}

impl StorageError {
    /// Whether retrying later may succeed (the database could not take the work now).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The retryable fault this is, if it is one.
    #[must_use]
    pub fn fault(&self) -> Option<Fault> {
        match self {
            Self::Unavailable { fault, .. } => Some(*fault),
            _ => None,
        }
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

    #[test]
    fn faults_are_named_by_their_codes() {
        assert_eq!(sqlite_fault(13), Some(Fault::DiskFull));
        // SQLITE_IOERR_WRITE (extended)
        assert_eq!(sqlite_fault(778), Some(Fault::Io));
        // SQLITE_BUSY_SNAPSHOT (extended)
        assert_eq!(sqlite_fault(517), Some(Fault::Busy));
        // SQLITE_CONSTRAINT_UNIQUE: a bug or a conflict, not a fault
        assert_eq!(sqlite_fault(2067), None);
        assert_eq!(pg_fault("53100"), Some(Fault::DiskFull));
        assert_eq!(pg_fault("58030"), Some(Fault::Io));
        assert_eq!(pg_fault("40001"), Some(Fault::Busy));
        assert_eq!(pg_fault("08006"), Some(Fault::Unreachable));
        assert_eq!(pg_fault("57P01"), Some(Fault::Unreachable));
        assert_eq!(pg_fault("23505"), None);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(
            StorageError::from(sqlx::Error::Io(full)).fault(),
            Some(Fault::DiskFull)
        );
    }
}
