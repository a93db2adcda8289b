//! Records read and written by the store.

use std::collections::BTreeMap;

use saleboard_domain::totals::{
    CurrencyTotals, HourlyTotals, NationalHourKey, SegmentFigures, SegmentKey,
};
use saleboard_domain::{Currency, Dimension, SiteId, UnixNanos, ValidTransaction};

use crate::{Result, StorageError};

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRecord {
    /// Its id.
    pub site_id: SiteId,
    /// Shown on screens.
    pub display_name: String,
    /// When it was registered.
    pub created_at: UnixNanos,
    /// When it was disabled (its keys refused, off the leaderboard); `None` while enabled.
    pub disabled_at: Option<UnixNanos>,
}

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id of the key, used to revoke it.
    pub key_id: String,
    /// The site whose transactions it pushes.
    pub site_id: SiteId,
    /// When it was issued.
    pub created_at: UnixNanos,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixNanos>,
}

/// A key that authenticates: what the ingest cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    /// Public id of the key.
    pub key_id: String,
    /// The site it pushes for.
    pub site_id: SiteId,
    /// SHA-256 of its secret, hex.
    pub secret_hash: String,
}

/// A named organizer as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizerRecord {
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: UnixNanos,
    /// The organizer who created it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixNanos>,
}

/// An organizer's action on a site's standing in an event (see
/// [`saleboard_domain::action`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    /// `act-` + 32 hex digits.
    pub action_id: String,
    /// What it does when approved.
    pub kind: saleboard_domain::action::ActionKind,
    /// Where it is in its life.
    pub state: saleboard_domain::action::ActionState,
    /// The event.
    pub event_id: String,
    /// The site.
    pub site_id: SiteId,
    /// Why, as proposed.
    pub reason: String,
    /// Who proposed it.
    pub proposed_by: String,
    /// When.
    pub proposed_at: UnixNanos,
    /// Who approved or rejected it (`None` while pending).
    pub decided_by: Option<String>,
    /// When (`None` while pending).
    pub decided_at: Option<UnixNanos>,
    /// The decider's note.
    pub decision_note: String,
    /// What an adjustment voids, and what it did; empty for a hold or a release.
    pub adjustment: Adjustment,
}

/// An adjustment's part of an action: the transactions it names, the flag it answers, and,
/// once applied, the voids it appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adjustment {
    /// The transaction ids named, as named (each a valid id, none twice).
    pub transaction_ids: Vec<String>,
    /// The integrity flag it answers (may be empty).
    pub flag_id: String,
    /// Voids appended when applied (a sale's refunds are voided with it); 0 before.
    pub voided_rows: u64,
    /// The ledger position of the last void appended (figures at or past it count every
    /// void); 0 before.
    pub through_position: u64,
}

/// An event's integrity thresholds as organizers set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The event.
    pub event_id: String,
    /// Only the fields set, as the proto3 JSON of `IntegrityPolicy` (the storage does not read
    /// it).
    pub overrides_json: String,
    /// When it was set.
    pub updated_at: UnixNanos,
    /// By whom.
    pub updated_by: String,
}

/// An integrity flag as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRecord {
    /// `flg-` + 32 hex digits.
    pub flag_id: String,
    /// The event.
    pub event_id: String,
    /// The site.
    pub site_id: SiteId,
    /// The rule.
    pub rule: saleboard_domain::integrity::Rule,
    /// The rules' version it was evaluated under.
    pub rule_version: u32,
    /// Its severity.
    pub severity: saleboard_domain::integrity::Severity,
    /// Its review state.
    pub state: saleboard_domain::integrity::FlagState,
    /// The site's statistic, exact decimal text.
    pub statistic: String,
    /// The threshold it reached.
    pub threshold: String,
    /// The nation's same figure without the site.
    pub national: String,
    /// Every input of the evaluation, as JSON (`[["name","decimal"],...]`).
    pub inputs_json: String,
    /// The ledger position of the figures it was raised on.
    pub watermark: u64,
    /// When it was raised.
    pub raised_at: UnixNanos,
    /// The position of the figures that showed it no longer holds.
    pub cleared_at_watermark: Option<u64>,
    /// The organizer of the last review.
    pub reviewed_by: Option<String>,
    /// When.
    pub reviewed_at: Option<UnixNanos>,
    /// Their note.
    pub note: String,
    /// The seed of the sample of transaction ids the site is asked to justify.
    pub sample_seed: u64,
}

/// One evaluation of an event's flags, to store: the flags raised (those already holding are
/// kept as they are), the holding ones that no longer hold, at the position read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagEvaluation<'a> {
    /// The event.
    pub event_id: &'a str,
    /// The ledger position of the figures evaluated.
    pub watermark: u64,
    /// When.
    pub at: UnixNanos,
    /// Flags found holding, new or not (a flag of the same site and rule still holding is
    /// left as it is).
    pub raised: &'a [FlagRecord],
    /// Holding flags that no longer hold, by id.
    pub cleared: &'a [String],
    /// Sites without enough support for a decision.
    pub undecided_sites: u32,
}

/// A review of a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagReview<'a> {
    /// The flag.
    pub flag_id: &'a str,
    /// Its new state.
    pub state: saleboard_domain::integrity::FlagState,
    /// What was found.
    pub note: &'a str,
    /// Who.
    pub organizer: &'a str,
    /// When.
    pub at: UnixNanos,
}

/// A decision on a pending action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDecision<'a> {
    /// The action.
    pub action_id: &'a str,
    /// Approve (apply it) or reject it.
    pub approve: bool,
    /// Who decides.
    pub organizer: &'a str,
    /// Their note (may be empty).
    pub note: &'a str,
    /// When.
    pub at: UnixNanos,
}

/// An admin call as the audit log records it, but for its outcome and its place in the chain
/// (which the write that records it decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCall {
    /// When the call was made.
    pub at: UnixNanos,
    /// Who made it.
    pub organizer: String,
    /// The method, e.g. `CreateSite`.
    pub rpc: String,
    /// The request in the proto3 JSON mapping, secrets removed.
    pub request_json: String,
}

/// The audit entry of an admin change: the call, and how to state its outcome from what the
/// change produced. Every admin write takes one and appends the entry in its own transaction,
/// so a change without its entry cannot commit.
pub struct Audit<'a, T> {
    /// The call.
    pub call: &'a AuditCall,
    /// The outcome of a change that produced `T` (`None`: `OK` alone).
    pub outcome: Option<&'a (dyn Fn(&T) -> String + Send + Sync)>,
}

impl<'a, T> Audit<'a, T> {
    /// The entry of `call`, its outcome stated by `outcome`.
    #[must_use]
    pub fn new(call: &'a AuditCall, outcome: &'a (dyn Fn(&T) -> String + Send + Sync)) -> Self {
        Self {
            call,
            outcome: Some(outcome),
        }
    }

    /// The entry of `call` with the outcome `OK` alone (set-up outside AdminService: `dev`'s
    /// demo data, tests).
    #[must_use]
    pub fn ok(call: &'a AuditCall) -> Self {
        Self {
            call,
            outcome: None,
        }
    }

    /// The outcome of a change that produced `value`.
    pub(crate) fn outcome_of(&self, value: &T) -> String {
        self.outcome.map_or_else(|| "OK".to_owned(), |f| f(value))
    }
}

impl<T> std::fmt::Debug for Audit<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("call", self.call)
            .finish_non_exhaustive()
    }
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries after this position.
    pub after: u64,
    /// Only this organizer's entries (`None`: everyone's).
    pub organizer: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<UnixNanos>,
    /// At most this many entries.
    pub limit: u32,
}

/// A transaction to append, with who sent it and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Site of the key that pushed it.
    pub site: SiteId,
    /// The key that pushed it.
    pub key_id: String,
    /// When the server received it.
    pub received_at: UnixNanos,
    /// The validated transaction.
    pub tx: ValidTransaction,
}

/// A row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Position in the ledger, from 1, without gaps.
    pub position: u64,
    /// The event it was counted in.
    pub event_id: String,
    /// Site of the key that pushed it.
    pub site: SiteId,
    /// The key that pushed it.
    pub key_id: String,
    /// When the server received it.
    pub received_at: UnixNanos,
    /// The transaction.
    pub tx: ValidTransaction,
}

/// Converts a position for the database (positions start at 1 and stay far below i64::MAX).
pub(crate) fn db_position(position: u64) -> Result<i64> {
    i64::try_from(position)
        .map_err(|_| StorageError::corrupt("ledger_head", "position beyond i64::MAX"))
}

/// The totals as stored, with the ledger position they include.
#[derive(Debug, Clone, Default)]
pub struct StoredTotals {
    /// Every ledger row at or below this position is in the totals, none above.
    pub applied: u64,
    /// The same for the breakdown figures (never above `applied`): the rows after it are in
    /// the headline figures of `book` but not yet in its breakdowns.
    pub breakdown_applied: u64,
    /// The totals (national breakdown figures derived from the per-site ones).
    pub book: saleboard_domain::totals::TotalsBook,
    /// The national breakdown rows as stored (what the leaderboard reads): they should equal
    /// the book's derived ones; the aggregator rewrites any that do not, `verify` reports them.
    pub segments: BTreeMap<SegmentKey, SegmentFigures>,
    /// The national hourly rows as stored: derived from the per-site ones like `segments`.
    pub national_hourly: BTreeMap<NationalHourKey, HourlyTotals>,
    /// The late figures and windows (at the breakdown watermark).
    pub late: saleboard_domain::late::LateBook,
}

/// One hour of a figure: currency, start of the hour, its totals.
pub type HourRow = (Currency, UnixNanos, HourlyTotals);

/// One national breakdown row: dimension, key, currency, totals, the key's site count.
pub type SegmentRow = (Dimension, String, Currency, CurrencyTotals, u32);

/// One site's breakdown row: site, dimension, key, currency, totals.
pub type SegmentSiteRow = (SiteId, Dimension, String, Currency, CurrencyTotals);

/// A site's totals in one currency: what tells whether its breakdown rows moved (every row
/// folds into both in the same transaction).
pub type SiteCurrencyTotals = (SiteId, Currency, CurrencyTotals);

/// An event's totals by site, then currency: what the board holds between two reads.
pub type EventTotals = BTreeMap<SiteId, BTreeMap<Currency, CurrencyTotals>>;

/// Where the board's last read of an event was, and what it holds from it: a read with it
/// reads only what changed since.
#[derive(Debug, Clone, Copy)]
pub struct BoardCursor<'a> {
    /// The event read.
    pub event_id: &'a str,
    /// The applied position of that read: only the site totals changed after it are read.
    pub applied: u64,
    /// The breakdown watermark of that read ([`SegmentRead::applied`]): only the national
    /// breakdown rows changed after it are read.
    pub breakdown_applied: u64,
    /// The version of the sites table at that read: the sites are read again only when it
    /// moved.
    pub sites_version: u64,
    /// Every site as held (as of that read, or read before it at the same version).
    pub sites: &'a [SiteRecord],
    /// Every total of the event as held (that read's merged into the ones before): the
    /// disabled sites' hourly rows are read again only when theirs moved.
    pub totals: &'a EventTotals,
    /// The disabled sites' origin breakdown rows at that read: their breakdown rows are read
    /// again only when these differ (every ledger row moves a site's origin figures, and they
    /// are at the breakdown watermark, as the rows they stand for).
    pub disabled_origins: &'a [(SiteId, Vec<SegmentSiteRow>)],
}

/// An event's national breakdown rows, as the board reads them.
#[derive(Debug, Clone, Default)]
pub struct SegmentRead {
    /// The breakdown figures' own watermark: every ledger row up to it is in them (never
    /// above [`BoardData::applied`]; below it while the aggregator defers breakdown writes).
    pub applied: u64,
    /// Every row of the event (replace what was held); `false`: only the rows changed since
    /// the cursor's position (merge them in).
    pub full: bool,
    /// The rows.
    pub rows: Vec<SegmentRow>,
    /// The disabled sites' totals in the event as of this read (the cursor's updated by the
    /// rows read), by site and currency.
    pub disabled_totals: Vec<SiteCurrencyTotals>,
    /// The disabled sites' origin breakdown rows as of this read, by site (see
    /// [`BoardCursor::disabled_origins`]).
    pub disabled_origins: Vec<(SiteId, Vec<SegmentSiteRow>)>,
    /// The breakdown rows of each disabled site whose origin rows differ from the cursor's
    /// (all of them without a cursor), to take out of national figures (disabled sites are
    /// off the national figure). A disabled site not named here is unchanged; a site named in
    /// the cursor but no longer in `disabled_totals` is no longer disabled (or has no figures).
    pub disabled: Vec<(SiteId, Vec<SegmentSiteRow>)>,
    /// The hourly rows of each disabled site whose totals differ from the cursor's (all of
    /// them without a cursor), likewise.
    pub disabled_hourly: Vec<(SiteId, Vec<HourRow>)>,
}

/// One site's breakdown in one dimension, read in one consistent transaction.
#[derive(Debug, Clone)]
pub struct SiteBreakdownData {
    /// The site.
    pub site: SiteRecord,
    /// The event (`None`: no such event, or none configured).
    pub event: Option<saleboard_domain::Event>,
    /// The event's exchange rates.
    pub rates: Vec<(Currency, saleboard_domain::Rate)>,
    /// (key, currency, totals) of the site in the dimension.
    pub rows: Vec<(String, Currency, CurrencyTotals)>,
    /// Ledger position the figures include.
    pub applied: u64,
}

/// What the leaderboard snapshot is built from, read in one consistent transaction.
#[derive(Debug, Clone, Default)]
pub struct BoardData {
    /// Ledger position the totals include.
    pub applied: u64,
    /// The event these figures are of (`None`: no such event, or none configured).
    pub event: Option<saleboard_domain::Event>,
    /// Every event, read in the same transaction (states, windows, baselines).
    pub events: saleboard_domain::Events,
    /// The version of the sites table this read saw.
    pub sites_version: u64,
    /// Every site, by id; `None`: the cursor's (their version did not move). Always read
    /// without a cursor.
    pub sites: Option<Vec<SiteRecord>>,
    /// The sites held in the event (off its ranking, in its national figures), by id; read
    /// with `sites` (a hold moves the sites' version), `None` with them.
    pub held: Option<Vec<SiteId>>,
    /// The sites with a flag under review in the event, by id; read with `sites` likewise (a
    /// review moves the sites' version).
    pub under_review: Option<Vec<SiteId>>,
    /// The event's per-currency totals: every one when `totals_full`, else only those changed
    /// since the cursor's position (merge them into the cursor's).
    pub totals: Vec<SiteCurrencyTotals>,
    /// `totals` are all of the event's (replace what was held).
    pub totals_full: bool,
    /// Every exchange rate.
    pub rates: Vec<(Currency, saleboard_domain::Rate)>,
    /// The event's national breakdown rows (all, or those changed since a position).
    pub segments: SegmentRead,
    /// The event's national hourly rows (every site's summed), by hour then currency.
    pub national_hourly: Vec<HourRow>,
    /// The applied position at which the event's baseline's figures last changed (`None`
    /// without a baseline): the board reads the baseline's data again only when it moved.
    pub baseline_changed_at: Option<u64>,
}

/// One site's totals, read in one consistent transaction.
#[derive(Debug, Clone)]
pub struct SiteTotalsData {
    /// The site.
    pub site: SiteRecord,
    /// Per-currency totals, by currency.
    pub totals: Vec<(Currency, saleboard_domain::totals::CurrencyTotals)>,
    /// Hourly totals by hour then currency (empty unless asked for).
    pub hourly: Vec<(UnixNanos, Currency, saleboard_domain::totals::HourlyTotals)>,
    /// Ledger position the figures include.
    pub applied: u64,
}

/// The aggregator's state row and the ledger head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatorState {
    /// Last ledger position in the totals.
    pub applied: u64,
    /// Highest ledger position.
    pub head: u64,
    /// Holder of the lease ('' when none).
    pub holder: String,
    /// Lease end.
    pub lease_until: UnixNanos,
    /// Last time the totals moved.
    pub updated_at: UnixNanos,
}

pub(crate) fn to_u64(table: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|e| StorageError::corrupt(table, e))
}

pub(crate) fn to_i64(table: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|e| StorageError::corrupt(table, e))
}

pub(crate) fn currency(table: &'static str, code: &str) -> Result<Currency> {
    Currency::parse(code).map_err(|e| StorageError::corrupt(table, e))
}

/// Site ids as `table` stores them.
pub(crate) fn site_ids(table: &'static str, ids: &[String]) -> Result<Vec<SiteId>> {
    ids.iter().map(|s| site_id(table, s)).collect()
}

pub(crate) fn site_id(table: &'static str, id: &str) -> Result<SiteId> {
    SiteId::parse(id).map_err(|e| StorageError::corrupt(table, e))
}

/// A money sum stored as decimal text (NUMERIC on PostgreSQL, TEXT on SQLite).
pub(crate) fn wide(table: &'static str, text: &str) -> Result<i128> {
    text.parse().map_err(|e| StorageError::corrupt(table, e))
}
