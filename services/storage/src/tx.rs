//! Transactions that never go back to the pool open.
//!
//! sqlx keeps a connection's transaction depth itself and lowers it only when its COMMIT or
//! ROLLBACK succeeds. When SQLite fails a statement or a COMMIT with `SQLITE_FULL`,
//! `SQLITE_IOERR` or `SQLITE_BUSY`, it may already have rolled the transaction back; the
//! ROLLBACK sqlx then sends when its `Transaction` drops fails ("no transaction is active"),
//! the depth stays at one, and the connection went back to the pool looking as if it were
//! inside a transaction: every later `begin_with` on it failed ("attempted to call begin_with
//! at non-zero transaction depth") and `begin` opened a savepoint instead, until a restart
//! (issue 24).
//!
//! So every transaction of this crate is a [`Tx`]: it owns its pooled connection, and unless
//! its COMMIT (or an explicit ROLLBACK) succeeded, dropping it rolls back and closes the
//! connection instead of returning it, whatever failed (a statement, the COMMIT itself, a
//! timeout, a cancelled future). And every pool refuses to hand out a connection still inside
//! a transaction ([`guarded`]), counting it: that count stays at zero unless some path
//! bypasses [`Tx`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{Database, Pool, SqlSafeStr as _};
use sqlx_core::transaction::TransactionManager as _;

use crate::Result;

/// A store's counts of connections whose transaction did not end cleanly (shared by its
/// clones and its pool's hook).
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounters {
    discarded: AtomicU64,
    refused: AtomicU64,
}

impl ConnectionCounters {
    /// The counts so far.
    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            discarded: self.discarded.load(Ordering::Relaxed),
            refused_in_transaction: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// What became of the connections whose transaction did not end cleanly, since the store was
/// opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Closed instead of returned to the pool because their transaction failed or was
    /// abandoned before it committed (a storage fault or a cancelled request: expected).
    pub discarded: u64,
    /// Refused by the pool because they were still inside a transaction when handed out:
    /// a path that bypassed [`Tx`] (a bug; always zero).
    pub refused_in_transaction: u64,
}

/// Pool options that refuse (close) a connection still inside a transaction when it is taken
/// from the pool. The pool pings a connection when it comes back, so a rollback queued by a
/// dropped transaction has run by then: only a connection whose transaction really is still
/// open (as sqlx counts it) is refused.
pub(crate) fn guarded<DB: Database>(
    options: PoolOptions<DB>,
    counters: &Arc<ConnectionCounters>,
) -> PoolOptions<DB> {
    let counters = counters.clone();
    options.before_acquire(move |conn, _meta| {
        let in_transaction = sqlx::Connection::is_in_transaction(&*conn);
        if in_transaction {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "a pooled connection was still inside a transaction; closed it (a bug: a \
                 transaction that bypassed storage's guard)"
            );
        }
        Box::pin(std::future::ready(Ok(!in_transaction)))
    })
}

/// A transaction on a pooled connection it owns. Dropped before its commit succeeded, it
/// rolls back and closes the connection: it never goes back to the pool open.
pub(crate) struct Tx<DB: Database> {
    conn: PoolConnection<DB>,
    /// Until COMMIT or ROLLBACK succeeded.
    open: bool,
    counters: Arc<ConnectionCounters>,
}

impl<DB: Database> Tx<DB> {
    /// Takes a connection and begins a transaction on it with `statement` (`BEGIN ...`).
    pub(crate) async fn begin(
        pool: &Pool<DB>,
        statement: &'static str,
        counters: &Arc<ConnectionCounters>,
    ) -> Result<Self> {
        let conn = pool.acquire().await?;
        // Open from before BEGIN: a BEGIN that failed or was cancelled half way closes the
        // connection too.
        let mut tx = Self {
            conn,
            open: true,
            counters: counters.clone(),
        };
        DB::TransactionManager::begin(&mut tx.conn, Some(statement.into_sql_str())).await?;
        Ok(tx)
    }

    /// Commits. On failure the transaction is dropped: rolled back and its connection closed.
    pub(crate) async fn commit(mut self) -> Result<()> {
        DB::TransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    /// Rolls back (a read that is done). On failure the connection is closed.
    pub(crate) async fn rollback(mut self) -> Result<()> {
        DB::TransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl<DB: Database> Drop for Tx<DB> {
    fn drop(&mut self) {
        if self.open {
            // Release the database's locks as soon as the connection's worker gets to it,
            // then close the connection rather than trust its state.
            DB::TransactionManager::start_rollback(&mut self.conn);
            self.conn.close_on_drop();
            self.counters.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<DB: Database> std::ops::Deref for Tx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: Database> std::ops::DerefMut for Tx<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}
