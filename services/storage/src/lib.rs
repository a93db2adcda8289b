//! Saleboard's storage: the only crate that runs SQL. Two implementations of one narrow
//! interface, [`Store`]: PostgreSQL for production and SQLite as the embedded default. Both are
//! checked by the same test suite (`tests/tests/storage.rs`).
//!
//! Layout:
//! - [`error`]: the crate's error type.
//! - [`model`]: records read and written (sites, keys, candidates, ledger rows).
//! - `sql`: the SQL that reads the same on both databases, as named constants; `rows`: the
//!   rows those queries return (`sqlx::FromRow`) and their conversion to records.
//! - `backend`: the one trait that says what differs per database (how a write begins and
//!   locks, how a consistent read begins, notification, how a batch of rows travels).
//! - `known`: a Bloom filter of the ledger's keys, so an append looks up only the ids that
//!   may be duplicates.
//! - `tx`: every transaction owns its pooled connection and closes it unless it committed
//!   (or rolled back) cleanly; the pools refuse a connection still inside a transaction.
//!   `writes`: whether the database takes writes (episodes of failed writes, logged once).
//! - `shared` and `totals`: [`AdminStore`], [`LedgerStore`] (the append skeleton) and
//!   [`TotalsStore`], written once, generic over the backend.
//! - [`postgres`], [`sqlite`]: the two backends, their connection set-up and migrations.
//! - [`backup`]: [`BackupStore`], a consistent, checksummed file of what cannot be rebuilt
//!   (sites, keys, events, rates, the ledger) and its restore into an empty database.
//!
//! The ledger's write path: [`LedgerStore::append`] takes the writer lock (the `ledger_head`
//! row in PostgreSQL, SQLite's write lock), loads the rows the batch names, lets
//! [`saleboard_domain::resolve::LedgerState`] decide every outcome, inserts the accepted rows
//! with consecutive positions, moves the head and commits. Positions therefore become visible
//! in order, which is what lets readers tail the ledger by position without skipping a row.

mod backend;
pub mod backup;
pub mod error;
mod known;
pub mod model;
pub mod pg_copy;
pub mod postgres;
mod rows;
mod shared;
mod sql;
pub mod sqlite;
mod totals;
mod tx;
mod writes;

use std::sync::Arc;

use async_trait::async_trait;
use saleboard_domain::{Currency, Event, Events, Rate, SiteId, UnixNanos, resolve::Decision};

pub use backup::{BackupError, BackupStore};
pub use error::{Fault, StorageError};
pub use model::{
    ActionDecision, ActionRecord, ActiveKey, Adjustment, AggregatorState, ApiKeyRecord, Audit,
    AuditCall, AuditQuery, BoardCursor, BoardData, Candidate, EventTotals, FlagEvaluation,
    FlagRecord, FlagReview, HourRow, LedgerRow, OrganizerRecord, PolicyRecord, SegmentRead,
    SegmentRow, SegmentSiteRow, SiteBreakdownData, SiteCurrencyTotals, SiteRecord, SiteTotalsData,
    StoredTotals,
};
pub use saleboard_domain::audit::Entry as AuditEntry;
pub use tx::ConnectionStats;
pub use writes::WriteFault;

/// Result of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Sites, keys, the event, exchange rates and organizers: what organizers manage, and the audit
/// log of their calls. Every write takes the [`Audit`] entry of the call that makes it and
/// appends it in the same transaction as the change (the audit log's head locked last, so
/// entries are numbered 1, 2, 3, ... in commit order); a write that fails stores neither.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Registers a site. [`StorageError::AlreadyExists`] when the id is taken.
    async fn create_site(
        &self,
        site: &SiteId,
        display_name: &str,
        now: UnixNanos,
        audit: Audit<'_, SiteRecord>,
    ) -> Result<SiteRecord>;
    /// Every site, by id.
    async fn list_sites(&self) -> Result<Vec<SiteRecord>>;
    /// Disables a site (keeps the first time when disabled twice) or enables it.
    /// [`StorageError::NotFound`] for an unknown site.
    async fn set_site_enabled(
        &self,
        site: &SiteId,
        enabled: bool,
        now: UnixNanos,
        audit: Audit<'_, SiteRecord>,
    ) -> Result<SiteRecord>;
    /// Stores a new key (its secret only as a hash). [`StorageError::NotFound`] for an unknown
    /// site.
    async fn create_api_key(
        &self,
        key_id: &str,
        site: &SiteId,
        secret_hash: &str,
        now: UnixNanos,
        audit: Audit<'_, ApiKeyRecord>,
    ) -> Result<ApiKeyRecord>;
    /// Marks a key revoked (idempotent: revoking twice keeps the first time).
    /// [`StorageError::NotFound`] for an unknown key.
    async fn revoke_api_key(
        &self,
        key_id: &str,
        now: UnixNanos,
        audit: Audit<'_, ApiKeyRecord>,
    ) -> Result<ApiKeyRecord>;
    /// Keys of one site, or of every site.
    async fn list_api_keys(&self, site: Option<&SiteId>) -> Result<Vec<ApiKeyRecord>>;
    /// Every key that authenticates (not revoked, of an enabled site), for the authentication
    /// cache.
    async fn active_keys(&self) -> Result<Vec<ActiveKey>>;
    /// The key with this secret hash, if it authenticates.
    async fn find_active_key(&self, secret_hash: &str) -> Result<Option<ActiveKey>>;
    /// Creates or updates the event with this id, under the writer lock (so no append
    /// decides with the old version once this returns). [`StorageError::EventChange`] when
    /// its window would overlap another event's, when a closed event would change more than
    /// its name, baseline or time zone, or when a narrowed window would leave accepted sales
    /// outside (saying how many).
    async fn set_event(&self, event: &Event, now: UnixNanos, audit: Audit<'_, ()>) -> Result<()>;
    /// The current event at `now` (live, else the most recently ended, else the next), if any.
    async fn get_event(&self) -> Result<Option<Event>>;
    /// Every event.
    async fn events(&self) -> Result<Events>;
    /// Upserts an event's rates in one transaction and returns every rate of that event, by
    /// currency.
    async fn set_exchange_rates(
        &self,
        event_id: &str,
        rates: &[(Currency, Rate)],
        audit: Audit<'_, Vec<(Currency, Rate)>>,
    ) -> Result<Vec<(Currency, Rate)>>;
    /// Every rate of an event, by currency.
    async fn list_exchange_rates(&self, event_id: &str) -> Result<Vec<(Currency, Rate)>>;
    /// Adds a named organizer (its secret only as a hash). [`StorageError::AlreadyExists`]
    /// when the name is taken.
    async fn create_organizer(
        &self,
        name: &str,
        secret_hash: &str,
        now: UnixNanos,
        audit: Audit<'_, OrganizerRecord>,
    ) -> Result<OrganizerRecord>;
    /// Marks an organizer revoked (revoking twice keeps the first time).
    /// [`StorageError::NotFound`] for an unknown name.
    async fn revoke_organizer(
        &self,
        name: &str,
        now: UnixNanos,
        audit: Audit<'_, OrganizerRecord>,
    ) -> Result<OrganizerRecord>;
    /// Every named organizer, by name.
    async fn list_organizers(&self) -> Result<Vec<OrganizerRecord>>;
    /// The name of the organizer with this secret hash, if it is not revoked.
    async fn find_active_organizer(&self, secret_hash: &str) -> Result<Option<String>>;
    /// Records a call that changed nothing (a refused one) in a transaction of its own, with
    /// its outcome; the entry as stored.
    async fn record_refusal(&self, call: &AuditCall, outcome: &str) -> Result<AuditEntry>;
    /// Audit entries in position order, as `query` selects them.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// The audit log's head: the last entry's position and sha256 (0 and
    /// [`saleboard_domain::audit::GENESIS`] for an empty log).
    async fn audit_head(&self) -> Result<(u64, String)>;
    /// Stores `action` (pending, as [`saleboard_domain::action::check_proposal`] allows it
    /// against the site's standing and pending action, read under the site's row lock; an
    /// adjustment also as [`saleboard_domain::adjust::plan`] allows it against the ledger as
    /// it is, and only in an event not closed).
    /// [`StorageError::NotFound`] for an unknown site or event, [`StorageError::Action`] or
    /// [`StorageError::Adjust`] for a refusal.
    async fn propose_action(
        &self,
        action: &ActionRecord,
        audit: Audit<'_, ActionRecord>,
    ) -> Result<ActionRecord>;
    /// Approves (and applies) or rejects a pending action, as
    /// [`saleboard_domain::action::check_decision`] allows; an applied hold or release moves
    /// the sites' version (the board reads them again); an applied adjustment appends its
    /// voids to the ledger under the writer lock, planned again against the ledger as it is
    /// then (a refund stored since the proposal is voided with its sale; a row voided since
    /// refuses the approval). [`StorageError::NotFound`] for an unknown action,
    /// [`StorageError::Action`] or [`StorageError::Adjust`] for a refusal.
    async fn decide_action(
        &self,
        decision: &ActionDecision<'_>,
        audit: Audit<'_, ActionRecord>,
    ) -> Result<ActionRecord>;
    /// Actions of one event (`None`: every event) in one state (`None`: every state), newest
    /// first.
    async fn list_actions(
        &self,
        event_id: Option<&str>,
        state: Option<saleboard_domain::action::ActionState>,
    ) -> Result<Vec<ActionRecord>>;
    /// The sites held in an event, by id.
    async fn held_sites(&self, event_id: &str) -> Result<Vec<SiteId>>;
    /// Sets (replaces) an event's integrity policy. [`StorageError::NotFound`] for an unknown
    /// event.
    async fn set_integrity_policy(
        &self,
        policy: &PolicyRecord,
        audit: Audit<'_, PolicyRecord>,
    ) -> Result<PolicyRecord>;
    /// An event's integrity policy as last set (`None`: never set, the defaults).
    async fn integrity_policy(&self, event_id: &str) -> Result<Option<PolicyRecord>>;
    /// Stores an evaluation of an event's flags in one transaction: inserts the raised flags
    /// no flag of the same site and rule still holds for (another process may have stored the
    /// same evaluation), marks the cleared ones with the position (never one raised at a later
    /// position), records the position and the undecided sites. An evaluation at a position
    /// below the stored one changes nothing (a process behind another). Not audited: the
    /// system's, not an organizer's.
    async fn record_flags(&self, evaluation: &FlagEvaluation<'_>) -> Result<()>;
    /// The flags of an event that still hold.
    async fn holding_flags(&self, event_id: &str) -> Result<Vec<FlagRecord>>;
    /// Flags of an event, of one site (`None`: every site) in one state (`None`: every
    /// state), newest first, and the undecided sites of its last evaluation.
    async fn list_flags(
        &self,
        event_id: &str,
        site: Option<&SiteId>,
        state: Option<saleboard_domain::integrity::FlagState>,
    ) -> Result<(Vec<FlagRecord>, u32)>;
    /// One flag.
    async fn flag(&self, flag_id: &str) -> Result<Option<FlagRecord>>;
    /// Stores an event's places by gross at its end (first place first), unless one is
    /// stored: the first stored stands.
    async fn record_end_ranking(
        &self,
        event_id: &str,
        sites: &[SiteId],
        watermark: u64,
    ) -> Result<()>;
    /// An event's places by gross at its end (`None`: not taken yet).
    async fn end_ranking(&self, event_id: &str) -> Result<Option<Vec<SiteId>>>;
    /// The ids of a site's sales in an event up to a ledger position, by id: a sample's
    /// population (read on an organizer's request, never by the evaluation).
    async fn sale_ids(&self, event_id: &str, site: &SiteId, upto: u64) -> Result<Vec<String>>;
    /// Sets a flag's review state and note; moves the sites' version (the board shows "under
    /// review" from it). [`StorageError::NotFound`] for an unknown flag.
    async fn review_flag(
        &self,
        review: &FlagReview<'_>,
        audit: Audit<'_, FlagRecord>,
    ) -> Result<FlagRecord>;
}

/// The append-only ledger.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Decides and durably appends a batch in one database transaction. Returns one decision
    /// per candidate, in order; ACCEPTED rows are committed when this returns `Ok`. On `Err`
    /// nothing of the batch was stored.
    async fn append(&self, batch: &[Candidate]) -> Result<Vec<Decision>>;
    /// Highest committed position (0 for an empty ledger).
    async fn ledger_head(&self) -> Result<u64>;
    /// Rows with `after < position`, in position order, at most `limit`.
    async fn read_ledger(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>>;
    /// Writes and commits one row without changing anything (the ledger head set to itself):
    /// whether the database takes writes now. Ends an episode of failed writes when it does.
    async fn probe_write(&self) -> Result<()>;
}

/// The totals: written by the aggregator only, read by the leaderboard and `verify`.
#[async_trait]
pub trait TotalsStore: Send + Sync {
    /// Every total and the position they include, read consistently.
    async fn load_totals(&self) -> Result<StoredTotals>;
    /// Writes changed totals and moves the applied position from `from` to `to`, in one
    /// transaction; with `changes.breakdowns` the breakdown watermark moves to `to` too (the
    /// changes hold every breakdown change up to it). [`StorageError::Fenced`] (and nothing
    /// written) when the stored position is not `from`: another aggregator moved it.
    async fn apply_totals(
        &self,
        from: u64,
        to: u64,
        changes: &saleboard_domain::totals::Changes,
        now: UnixNanos,
    ) -> Result<()>;
    /// Writes breakdown changes (`changes.segment_sites` and `segments`; nothing else) and
    /// moves the breakdown watermark from `from` to `at`, which the totals must include
    /// already, in one transaction: a write of its own, beside the headline applies (it locks
    /// the state row only at its end). [`StorageError::Fenced`] (and nothing written) when the
    /// stored breakdown watermark is not `from` or the totals are behind `at`.
    async fn apply_breakdowns(
        &self,
        from: u64,
        at: u64,
        changes: &saleboard_domain::totals::Changes,
    ) -> Result<()>;
    /// An event's late figures (issue 28) and the breakdown watermark they are at, read
    /// consistently: only keys with a late row.
    async fn event_late(
        &self,
        event_id: &str,
    ) -> Result<(
        u64,
        Vec<(
            saleboard_domain::totals::TotalsKey,
            saleboard_domain::late::LateTotals,
        )>,
    )>;
    /// Takes or renews the aggregator lease for `holder` until `until`; false when another
    /// holder's lease is still running.
    async fn try_lease(&self, holder: &str, now: UnixNanos, until: UnixNanos) -> Result<bool>;
    /// Gives the lease up (when `holder` has it).
    async fn release_lease(&self, holder: &str) -> Result<()>;
    /// The aggregator's state row and the ledger head.
    async fn aggregator_state(&self) -> Result<AggregatorState>;
    /// The applied position alone (cheap: one row by primary key).
    async fn applied_position(&self) -> Result<u64>;
    /// Everything a leaderboard snapshot of an event needs (`None`: the current event), read
    /// consistently. `BoardData::event` is `None` for an unknown event.
    /// With a `cursor` of the event chosen, only the site totals changed since its applied
    /// position and the breakdown rows changed since its breakdown watermark are read
    /// (`BoardData::totals_full` and `segments.full` are false), the sites only when they
    /// changed (`BoardData::sites` is `None` otherwise), and the disabled sites' rows only when
    /// their figures moved.
    async fn read_board(
        &self,
        event_id: Option<&str>,
        cursor: Option<BoardCursor<'_>>,
    ) -> Result<BoardData>;
    /// One site's breakdown in a dimension, in an event (`None`: the current one), read
    /// consistently, at the breakdown watermark; `None` for an unknown site.
    async fn site_breakdown(
        &self,
        site: &SiteId,
        event_id: Option<&str>,
        dimension: saleboard_domain::Dimension,
    ) -> Result<Option<SiteBreakdownData>>;
    /// Every hourly net of an event (for comparisons with it).
    async fn event_hourly(
        &self,
        event_id: &str,
    ) -> Result<Vec<saleboard_domain::comparison::HourlyNet>>;
    /// One site's totals in an event (`None`: the current one), and the hourly series when
    /// asked, read consistently; `None` for an unknown site.
    async fn site_totals(
        &self,
        site: &SiteId,
        event_id: Option<&str>,
        include_hourly: bool,
    ) -> Result<Option<SiteTotalsData>>;
}

/// Everything a service needs from storage.
#[async_trait]
pub trait Store: AdminStore + LedgerStore + TotalsStore + BackupStore + std::fmt::Debug {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Applies pending migrations up to `version` only: builds a database as an earlier
    /// release left it, for the tests of the migrations that follow.
    async fn migrate_until(&self, version: i64) -> Result<()>;
    /// Which implementation this is, for logs: `"postgres"` or `"sqlite"`.
    fn backend(&self) -> &'static str;
    /// Why this store's writes are failing, while they are: set by a write that failed with a
    /// retryable fault, cleared by the next one that commits (or [`LedgerStore::probe_write`]).
    fn write_fault(&self) -> Option<WriteFault>;
    /// What became of connections whose transaction did not end cleanly.
    fn connection_stats(&self) -> ConnectionStats;
    /// The aggregator's (applied position, breakdown watermark), updated as either moves (a
    /// quiet aggregator writes deferred breakdowns without moving the applied position):
    /// PostgreSQL delivers them by LISTEN/NOTIFY (with a slow poll as a safety net); SQLite,
    /// which has no notifications, reads the one-row state every [`SQLITE_FEED_POLL`]. The
    /// feeding task ends when every receiver is dropped.
    async fn applied_feed(&self) -> Result<tokio::sync::watch::Receiver<(u64, u64)>>;
}

/// Publishes (applied position, breakdown watermark) on an applied feed when either is newer
/// than what receivers have seen (`None`: not known from this signal).
pub(crate) fn advance_feed(
    feed: &tokio::sync::watch::Sender<(u64, u64)>,
    applied: Option<u64>,
    breakdowns: Option<u64>,
) {
    feed.send_if_modified(|current| {
        let mut newer = false;
        for (seen, now) in [(&mut current.0, applied), (&mut current.1, breakdowns)] {
            if let Some(now) = now
                && now > *seen
            {
                *seen = now;
                newer = true;
            }
        }
        newer
    });
}

/// The applied position and the breakdown watermark, as the feeds read them.
pub(crate) fn watermarks(row: (i64, i64)) -> Result<(u64, u64)> {
    Ok((
        model::to_u64("aggregator_state", row.0)?,
        model::to_u64("aggregator_state", row.1)?,
    ))
}

/// How often the SQLite applied feed reads the aggregator's state row (one primary-key read).
pub const SQLITE_FEED_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// How often the PostgreSQL applied feed re-reads the state in case a notification was lost
/// (for example while its connection was re-established).
pub const PG_FEED_SAFETY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Connection settings shared by both implementations.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `postgres://...` or `sqlite:PATH` / `sqlite://PATH`.
    pub url: String,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Create a SQLite file that does not exist (`dev`, `migrate`, the services); commands
    /// that read an existing database refuse instead of creating an empty one.
    pub create_if_missing: bool,
}

/// Opens the store the URL names. Does not migrate.
///
/// # Errors
/// When the URL's scheme is neither PostgreSQL nor SQLite, or the database cannot be reached.
pub async fn connect(options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    let url = options.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PgStore::connect(url, options.max_connections).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(url, options.max_connections, options.create_if_missing)
                .await?,
        ))
    } else {
        Err(StorageError::UnsupportedUrl(redact(url)))
    }
}

/// The URL without its password, for messages and logs.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://sb:secret@db:5432/sb"),
            "postgres://sb:***@db:5432/sb"
        );
        assert_eq!(redact("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(redact("sqlite:saleboard.db"), "sqlite:saleboard.db");
    }
}
