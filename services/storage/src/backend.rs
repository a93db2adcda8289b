//! What differs between the two databases, as one small trait: how a write begins (and takes
//! the writer lock), how the locked head and state rows are read, how a consistent read
//! begins, how a move of the totals is announced, and how a batch of rows travels (arrays
//! with `UNNEST` on PostgreSQL, one JSON array with `json_each` on SQLite). Everything else is
//! written once, generic over the backend, in [`crate::shared`] and [`crate::totals`].

use std::future::Future;

use saleboard_domain::totals::Changes;
use sqlx::{Database, Pool};

use crate::rows::{RefundedRow, StoredRow};
use crate::tx::{ConnectionCounters, Tx};
use crate::writes::WriteHealth;
use crate::{Candidate, Result};

/// A write transaction holding the writer lock; dropping it before its commit rolls back and
/// closes its connection ([`Tx`]), then releases any lock taken outside the database (fields
/// drop in order).
pub(crate) struct Writing<DB: Database> {
    /// The transaction.
    pub(crate) tx: Tx<DB>,
    /// SQLite's writer queue (a locked sidecar file), held until the transaction ends.
    pub(crate) _queue: Option<std::fs::File>,
}

impl<DB: Database> Writing<DB> {
    /// Rolls back a write that found a reason to stop (a precondition, a fence) and returns
    /// that reason; a failed rollback closes the connection ([`Tx`]).
    pub(crate) async fn abandon(self, reason: crate::StorageError) -> crate::StorageError {
        drop(self.tx.rollback().await);
        reason
    }
}

/// An accepted candidate: its position and its event.
pub(crate) struct Accepted<'a> {
    /// The candidate.
    pub(crate) candidate: &'a Candidate,
    /// Its ledger position.
    pub(crate) position: u64,
    /// The event it is counted in.
    pub(crate) event_id: &'a str,
    /// Its segments as stored (a refund's are its sale's).
    pub(crate) segments: &'a saleboard_domain::Segments,
}

/// One database's dialect and batch encoding.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database;
    /// Begins a read-only transaction that sees one consistent state of every table.
    const BEGIN_READ: &'static str;
    /// Reads the ledger head inside a write, locking it until commit.
    const LOCK_HEAD: &'static str;
    /// Reads the audit log's head (position, sha256) inside a write, locking it until commit:
    /// taken last in every admin write, so entries are numbered in commit order and no two
    /// writes lock in opposite orders.
    const LOCK_AUDIT: &'static str;
    /// Reads a site's row inside a write, locking it until commit (an organizer's action on
    /// the site is proposed or decided under it); no row for an unknown site.
    const LOCK_SITE: &'static str;
    /// Reads the applied position inside a write, locking it until commit.
    const LOCK_STATE: &'static str;
    /// Announces a new applied position (`$1`, decimal text) on commit, where the database can.
    const NOTIFY_APPLIED: Option<&'static str>;
    /// Whether the database has sqlx's migrations table (a boolean).
    const MIGRATED: &'static str;

    /// The pool.
    fn pool(&self) -> &Pool<Self::Db>;

    /// What this store knows of the ledger's keys (shared by its clones).
    fn known(&self) -> &std::sync::Arc<crate::known::KnownKeys>;

    /// This store's counts of connections closed or refused (shared by its clones and pool).
    fn counters(&self) -> &std::sync::Arc<ConnectionCounters>;

    /// Whether this store's writes are failing (shared by its clones).
    fn writes(&self) -> &std::sync::Arc<WriteHealth>;

    /// Begins a transaction with `statement` on a connection of the pool.
    fn begin(&self, statement: &'static str) -> impl Future<Output = Result<Tx<Self::Db>>> + Send {
        Tx::begin(self.pool(), statement, self.counters())
    }

    /// Begins a write that other writers, in any process, queue behind.
    fn begin_write(&self) -> impl Future<Output = Result<Writing<Self::Db>>> + Send;

    /// The stored rows with these (site_id, transaction_id) keys.
    fn stored_rows(
        conn: &mut <Self::Db as Database>::Connection,
        keys: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<StoredRow>>> + Send;

    /// The refunded sums of these (site_id, sale id) pairs that have refunds.
    fn refunded_sums(
        conn: &mut <Self::Db as Database>::Connection,
        sales: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<RefundedRow>>> + Send;

    /// The ledger rows after `after`, in order, at most `limit`.
    fn ledger_after(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::LedgerRow>>> + Send;

    /// Inserts accepted candidates at their positions, in their events, in one statement.
    fn insert_accepted(
        conn: &mut <Self::Db as Database>::Connection,
        accepted: &[Accepted<'_>],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes the changed late figures (`late_totals`): every (event, site, currency) with a
    /// sale has a row, so a breakdown write carries one per key changed since the last.
    fn upsert_late(
        conn: &mut <Self::Db as Database>::Connection,
        figures: &[(
            saleboard_domain::totals::TotalsKey,
            saleboard_domain::late::LateTotals,
        )],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes the changed totals of one apply: one statement per table.
    /// The site totals and national breakdown rows written are marked changed at `position`
    /// (the applied position this write moves to): the board reads only the rows changed
    /// since its last read.
    fn upsert_totals(
        conn: &mut <Self::Db as Database>::Connection,
        changes: &Changes,
        position: u64,
    ) -> impl Future<Output = Result<()>> + Send;
}
